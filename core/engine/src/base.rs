//! The base definitions every generated configuration starts with: the `mc-24x7`
//! timeperiod, the `mc-default-host`, `mc-default-service` and `mc-generic-contact`
//! templates, host checking, the commands of the standard plugins that translators share,
//! and the notification commands.
//!
//! Every object monitor-compile names itself (these, the commands translators define in
//! `start_pass`, the cluster manager's commands) starts with [`PREFIX`], so that the
//! output loads beside the distribution's sample objects (`/etc/nagios4/objects/*.cfg`)
//! and the plugin packages' command definitions (`/etc/nagios-plugins/config/*.cfg`),
//! which use the conventional unprefixed names (`24x7`, `check_tcp`,
//! `notify-host-by-email`, ...). A site that wants its own definition of one of these
//! lists it in [`BaseConfig::site_objects`].

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::checks::{DefKey, definition_key};
use monitor_sdk::nagios::{Bundle, Command, Object, ObjectKind, Value};
use monitor_sdk::names::{DEFAULT_HOST, DEFAULT_SERVICE};

// The names of the base objects live in `names` (part of the SDK: translators use
// them); they are re-exported here for the engine's side.
pub use monitor_sdk::names::{
    ALWAYS, CHECK_DUMMY_UP, CHECK_HOST_ALIVE, CHECK_HTTP, CHECK_PASSIVE, CHECK_TCP, CHECK_TCP_EXPECT, GENERIC_CONTACT,
    PREFIX, notify_command,
};

/// Site settings that the base definitions depend on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseConfig {
    /// The mail program used by the e-mail notification commands.
    pub mail_command: PathBuf,
    /// The notifier used for XMPP and Slack notifications (see docs/notifications.md):
    /// it is called as `NOTIFIER --channel xmpp|slack --to RECIPIENT --subject S --message M`.
    pub notifier: PathBuf,
    /// Base objects the site defines itself, by our names (`mc-24x7`,
    /// `mc-check-host-alive`, ...): they are not written, and references to them count
    /// as defined. The site's object of that name and kind must exist in its own
    /// configuration (`nagios -v` through the site's main config checks it). See
    /// docs/daemon.md.
    #[serde(default)]
    pub site_objects: BTreeSet<String>,
}

/// A [`BaseConfig`] that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BaseConfigError {
    #[error("site_objects: {name:?} is not one of the base definitions (they are: {known})")]
    UnknownSiteObject { name: String, known: String },
}

impl Default for BaseConfig {
    fn default() -> Self {
        BaseConfig {
            mail_command: PathBuf::from("/usr/bin/mail"),
            notifier: PathBuf::from("/usr/lib/monitor-compile/notify"),
            site_objects: BTreeSet::new(),
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

impl BaseConfig {
    /// Refuse a `site_objects` entry that names none of the base definitions (a typo
    /// would otherwise leave our own definition in place unnoticed).
    pub fn check(&self) -> Result<(), BaseConfigError> {
        let all = all_definitions(self);
        let names: BTreeSet<&str> = all.iter().filter_map(base_name).collect();
        match self.site_objects.iter().find(|n| !names.contains(n.as_str())) {
            None => Ok(()),
            Some(name) => Err(BaseConfigError::UnknownSiteObject {
                name: name.clone(),
                known: names.into_iter().collect::<Vec<_>>().join(", "),
            }),
        }
    }
}

/// The name a base object is known by (its `name` for a template).
fn base_name(o: &Object) -> Option<&str> {
    match definition_key(o)? {
        DefKey::Named(_, n) | DefKey::Template(_, n) => Some(n),
        DefKey::Service(..) => None,
    }
}

fn is_site_object(cfg: &BaseConfig, o: &Object) -> bool {
    base_name(o).is_some_and(|n| cfg.site_objects.contains(n))
}

/// The base definitions we write, in output order: all of them but the site's own
/// ([`BaseConfig::site_objects`]).
pub fn base_definitions(cfg: &BaseConfig) -> Bundle {
    let mut b = all_definitions(cfg);
    b.objects_mut().retain(|o| !is_site_object(cfg, o));
    b
}

/// What the site defines itself instead of us: the keys of the base definitions named in
/// [`BaseConfig::site_objects`], for the reference checks.
pub fn site_definitions(cfg: &BaseConfig) -> Vec<(ObjectKind, String, bool)> {
    all_definitions(cfg)
        .iter()
        .filter(|o| is_site_object(cfg, o))
        .filter_map(|o| base_name(o).map(|n| (o.kind, n.to_string(), o.is_template())))
        .collect()
}

fn all_definitions(cfg: &BaseConfig) -> Bundle {
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

    // Every macro stands inside single quotes, so the shell parses none of it: Nagios
    // expands macros before `/bin/sh` sees the line. A contact address can hold no `'`
    // (users::check_email and friends); plugin output ($HOSTOUTPUT$, $SERVICEOUTPUT$) has
    // `'` stripped by Nagios's `illegal_macro_output_chars`, which `--validate` and the
    // daemon require.
    let mail = cfg.mail_command.display();
    b.push(Command::new(
        notify_command("host", "email"),
        format!(
            "/usr/bin/printf '%b' '***** monitor-compile *****\\n\\nNotification Type: $NOTIFICATIONTYPE$\\nHost: $HOSTNAME$\\nState: $HOSTSTATE$\\nAddress: $HOSTADDRESS$\\nInfo: $HOSTOUTPUT$\\n\\nDate/Time: $LONGDATETIME$\\n' | {mail} -s '** $NOTIFICATIONTYPE$ Host Alert: $HOSTNAME$ is $HOSTSTATE$ **' '$CONTACTEMAIL$'"
        ),
    ));
    b.push(Command::new(
        notify_command("service", "email"),
        format!(
            "/usr/bin/printf '%b' '***** monitor-compile *****\\n\\nNotification Type: $NOTIFICATIONTYPE$\\n\\nService: $SERVICEDESC$\\nHost: $HOSTNAME$\\nAddress: $HOSTADDRESS$\\nState: $SERVICESTATE$\\n\\nDate/Time: $LONGDATETIME$\\n\\nAdditional Info:\\n\\n$SERVICEOUTPUT$\\n' | {mail} -s '** $NOTIFICATIONTYPE$ Service Alert: $HOSTNAME$/$SERVICEDESC$ is $SERVICESTATE$ **' '$CONTACTEMAIL$'"
        ),
    ));
    let notifier = cfg.notifier.display();
    for (channel, address) in [("xmpp", "$CONTACTADDRESS1$"), ("slack", "$CONTACTADDRESS2$")] {
        b.push(Command::new(
            notify_command("host", channel),
            format!(
                "{notifier} --channel {channel} --to '{address}' --subject '$NOTIFICATIONTYPE$ Host Alert: $HOSTNAME$ is $HOSTSTATE$' --message '$HOSTOUTPUT$ ($LONGDATETIME$)'"
            ),
        ));
        b.push(Command::new(
            notify_command("service", channel),
            format!(
                "{notifier} --channel {channel} --to '{address}' --subject '$NOTIFICATIONTYPE$ Service Alert: $HOSTNAME$/$SERVICEDESC$ is $SERVICESTATE$' --message '$SERVICEOUTPUT$ ($LONGDATETIME$)'"
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
        CHECK_HOST_ALIVE,
        "$USER1$/check_ping -H '$HOSTADDRESS$' -w 3000.0,80% -c 5000.0,100% -p 5",
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
            ("host_notification_commands", &notify_command("host", "email")),
            ("service_notification_commands", &notify_command("service", "email")),
        ],
    ));
    b.push(template(
        ObjectKind::Host,
        DEFAULT_HOST,
        &[
            ("check_command", CHECK_HOST_ALIVE),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_base_object_carries_the_prefix() {
        let all = all_definitions(&BaseConfig::default());
        assert!(all.len() > 10);
        for o in &all {
            let n = base_name(o).expect("every base object is named");
            assert!(n.starts_with(PREFIX), "{n}");
        }
    }

    #[test]
    fn site_objects_are_left_out_and_known_to_the_checks() {
        let mut cfg = BaseConfig::default();
        assert_eq!(cfg.check(), Ok(()));
        cfg.site_objects = [ALWAYS.to_string(), DEFAULT_HOST.to_string()].into();
        assert_eq!(cfg.check(), Ok(()));
        let written = base_definitions(&cfg);
        assert_eq!(written.len() + 2, all_definitions(&cfg).len());
        assert!(written.iter().all(|o| !is_site_object(&cfg, o)));
        let mut site = site_definitions(&cfg);
        site.sort();
        let mut want = vec![
            (ObjectKind::Host, DEFAULT_HOST.to_string(), true),
            (ObjectKind::TimePeriod, ALWAYS.to_string(), false),
        ];
        want.sort();
        assert_eq!(site, want);
        cfg.site_objects.insert("24x7".into());
        let e = cfg.check().unwrap_err();
        assert!(
            e.to_string().contains("\"24x7\" is not one of the base definitions"),
            "{e}"
        );
        assert!(e.to_string().contains(ALWAYS), "{e}");
    }
}
