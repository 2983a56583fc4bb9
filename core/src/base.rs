//! The base definitions every generated configuration starts with: the `24x7`
//! timeperiod, the `default-host`, `default-service` and `generic-contact` templates,
//! host checking, and the notification commands.
//!
//! Notification commands use the conventional names (`notify-host-by-email`, ...), so the
//! output is a complete object configuration on its own: do not load the distribution's
//! sample object files beside it, or their commands will be defined twice.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::helpers::{DEFAULT_HOST, DEFAULT_SERVICE};
use crate::nagios::{Bundle, Command, Object, ObjectKind, Value};

/// The name of the contact template.
pub const GENERIC_CONTACT: &str = "generic-contact";
/// `check_tcp!PORT`.
pub const CHECK_TCP: &str = "check_tcp";
/// `check_tcp_expect!PORT!EXPECTED-BANNER`.
pub const CHECK_TCP_EXPECT: &str = "check_tcp_expect";
/// `check_http!PORT`: plain HTTP on the host's address.
pub const CHECK_HTTP: &str = "check_http";
/// The dummy command of passive services: CRITICAL when Nagios has to run it (stale).
pub const CHECK_PASSIVE: &str = "check_passive";
/// Always UP: the host check of virtual hosts.
pub const CHECK_DUMMY_UP: &str = "check-dummy-up";
/// The timeperiod every template uses.
pub const ALWAYS: &str = "24x7";

/// Site settings that the base definitions depend on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseConfig {
    /// The mail program used by the e-mail notification commands.
    pub mail_command: PathBuf,
    /// The notifier used for XMPP and Slack notifications (see docs/notifications.md):
    /// it is called as `NOTIFIER --channel xmpp|slack --to RECIPIENT --subject S --message M`.
    pub notifier: PathBuf,
}

impl Default for BaseConfig {
    fn default() -> Self {
        BaseConfig {
            mail_command: PathBuf::from("/usr/bin/mail"),
            notifier: PathBuf::from("/usr/lib/monitor-compile/notify"),
        }
    }
}

fn template(kind: ObjectKind, name: &str, directives: &[(&str, &str)]) -> Object {
    let mut o = Object::new(kind);
    o.set("name", Value::Name(name.into()));
    for (d, v) in directives {
        let value = match *d {
            "check_period"
            | "notification_period"
            | "host_notification_period"
            | "service_notification_period"
            | "check_command" => Value::Name((*v).into()),
            "host_notification_commands" | "service_notification_commands" => {
                Value::Names(v.split(',').map(str::to_string).collect())
            }
            _ => Value::Plain((*v).into()),
        };
        o.set(d, value);
    }
    o.set("register", Value::Plain("0".into()));
    o
}

/// The base definitions, in output order.
pub fn base_definitions(cfg: &BaseConfig) -> Bundle {
    let mut b = Bundle::new();
    let mut tp = Object::new(ObjectKind::TimePeriod);
    tp.set("timeperiod_name", Value::Name(ALWAYS.into()));
    tp.set("alias", Value::Text("24 Hours A Day, 7 Days A Week".into()));
    for day in [
        "sunday",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
    ] {
        tp.set(day, Value::Plain("00:00-24:00".into()));
    }
    b.push(tp);

    let mail = cfg.mail_command.display();
    b.push(Command::new(
        "notify-host-by-email",
        format!(
            "/usr/bin/printf \"%b\" \"***** monitor-compile *****\\n\\nNotification Type: $NOTIFICATIONTYPE$\\nHost: $HOSTNAME$\\nState: $HOSTSTATE$\\nAddress: $HOSTADDRESS$\\nInfo: $HOSTOUTPUT$\\n\\nDate/Time: $LONGDATETIME$\\n\" | {mail} -s \"** $NOTIFICATIONTYPE$ Host Alert: $HOSTNAME$ is $HOSTSTATE$ **\" $CONTACTEMAIL$"
        ),
    ));
    b.push(Command::new(
        "notify-service-by-email",
        format!(
            "/usr/bin/printf \"%b\" \"***** monitor-compile *****\\n\\nNotification Type: $NOTIFICATIONTYPE$\\n\\nService: $SERVICEDESC$\\nHost: $HOSTALIAS$\\nAddress: $HOSTADDRESS$\\nState: $SERVICESTATE$\\n\\nDate/Time: $LONGDATETIME$\\n\\nAdditional Info:\\n\\n$SERVICEOUTPUT$\\n\" | {mail} -s \"** $NOTIFICATIONTYPE$ Service Alert: $HOSTALIAS$/$SERVICEDESC$ is $SERVICESTATE$ **\" $CONTACTEMAIL$"
        ),
    ));
    let notifier = cfg.notifier.display();
    for (channel, address) in [("xmpp", "$CONTACTADDRESS1$"), ("slack", "$CONTACTADDRESS2$")] {
        b.push(Command::new(
            format!("notify-host-by-{channel}"),
            format!(
                "{notifier} --channel {channel} --to \"{address}\" --subject \"$NOTIFICATIONTYPE$ Host Alert: $HOSTNAME$ is $HOSTSTATE$\" --message \"$HOSTOUTPUT$ ($LONGDATETIME$)\""
            ),
        ));
        b.push(Command::new(
            format!("notify-service-by-{channel}"),
            format!(
                "{notifier} --channel {channel} --to \"{address}\" --subject \"$NOTIFICATIONTYPE$ Service Alert: $HOSTALIAS$/$SERVICEDESC$ is $SERVICESTATE$\" --message \"$SERVICEOUTPUT$ ($LONGDATETIME$)\""
            ),
        ));
    }
    // Standard plugins every site has; translators use them rather than defining their own.
    b.push(Command::new(
        CHECK_TCP,
        "$USER1$/check_tcp -H '$HOSTADDRESS$' -p '$ARG1$'",
    ));
    b.push(Command::new(
        CHECK_TCP_EXPECT,
        "$USER1$/check_tcp -H '$HOSTADDRESS$' -p '$ARG1$' -e '$ARG2$'",
    ));
    b.push(Command::new(
        CHECK_HTTP,
        "$USER1$/check_http -I '$HOSTADDRESS$' -p '$ARG1$'",
    ));
    b.push(Command::new(
        CHECK_PASSIVE,
        "$USER1$/check_dummy 2 'CRITICAL: no passive check result received'",
    ));
    b.push(Command::new(CHECK_DUMMY_UP, "$USER1$/check_dummy 0 'virtual host'"));
    b.push(Command::new(
        "check-host-alive",
        "$USER1$/check_ping -H $HOSTADDRESS$ -w 3000.0,80% -c 5000.0,100% -p 5",
    ));

    b.push(template(
        ObjectKind::Contact,
        GENERIC_CONTACT,
        &[
            ("host_notifications_enabled", "1"),
            ("service_notifications_enabled", "1"),
            ("host_notification_period", ALWAYS),
            ("service_notification_period", ALWAYS),
            ("host_notification_options", "d,u,r,f,s"),
            ("service_notification_options", "w,u,c,r,f,s"),
            ("host_notification_commands", "notify-host-by-email"),
            ("service_notification_commands", "notify-service-by-email"),
        ],
    ));
    b.push(template(
        ObjectKind::Host,
        DEFAULT_HOST,
        &[
            ("check_command", "check-host-alive"),
            ("check_period", ALWAYS),
            ("max_check_attempts", "5"),
            ("check_interval", "5"),
            ("retry_interval", "1"),
            ("notification_period", ALWAYS),
            ("notification_interval", "60"),
            ("notification_options", "d,u,r"),
            ("notifications_enabled", "1"),
            ("event_handler_enabled", "1"),
            ("flap_detection_enabled", "1"),
            ("process_perf_data", "1"),
            ("retain_status_information", "1"),
            ("retain_nonstatus_information", "1"),
        ],
    ));
    b.push(template(
        ObjectKind::Service,
        DEFAULT_SERVICE,
        &[
            ("check_period", ALWAYS),
            ("max_check_attempts", "3"),
            ("check_interval", "5"),
            ("retry_interval", "1"),
            ("active_checks_enabled", "1"),
            ("passive_checks_enabled", "1"),
            ("notification_period", ALWAYS),
            ("notification_interval", "60"),
            ("notification_options", "w,u,c,r"),
            ("notifications_enabled", "1"),
            ("event_handler_enabled", "1"),
            ("flap_detection_enabled", "1"),
            ("process_perf_data", "1"),
            ("retain_status_information", "1"),
            ("retain_nonstatus_information", "1"),
            ("obsess_over_service", "0"),
        ],
    ));
    b
}
