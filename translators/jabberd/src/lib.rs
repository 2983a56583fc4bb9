//! Translator for the LCFG `jabberd` component: monitors a machine's Jabber (XMPP)
//! client-to-server service.
//!
//! It emits a `Jabber` service that opens an XMPP stream on the plain client port and
//! checks the server's stream header and, when the component is configured with a
//! certificate, a `Jabber SSL` service that does the same over TLS on the SSL port and
//! warns when the certificate expires within a number of days. `start_pass` defines the
//! `mc-check-jabber` and `mc-check-jabber-ssl` commands, which the Nagios plugins do not ship:
//! the stream header the stock `check_jabber` expects differs in attribute order from
//! the one jabberd sends, so the commands pass their own expect string.
//!
//! Resources read:
//! - `c2s_port` (optional, default `5222`): the plain client port;
//! - `c2s_pemfile`, `c2s_oldpemfile` (optional): when either is set, the SSL service is
//!   monitored too;
//! - `c2s_ssl_port` (optional, default `5223`): the SSL client port;
//! - `cert_warn_days` (optional, default `28`): warn when the certificate expires
//!   within this many days;
//! - `nagios_groups` (required): the contact groups to notify.
//!
//! It deliberately does not monitor server-to-server federation (`s2s_*`), does not log
//! in or check the `admins` accounts, does not read the certificate files themselves
//! (they are on the monitored machine, not the monitoring server). Escalations come from
//! the component's `nagios_escalations`, for each service, as the Perl translator's
//! `constructEscalation` did.

use monitor_sdk::helpers::{DEFAULT_SERVICE, handle_contacts, merge_escalation};
use monitor_sdk::nagios::{Bundle, CheckCommand, Command, Service};
use monitor_sdk::profile::Component;
use monitor_sdk::translator::{Context, TranslateError, Translator};

/// The plain check command name.
pub const CHECK_JABBER: &str = "mc-check-jabber";
/// The SSL check command name.
pub const CHECK_JABBER_SSL: &str = "mc-check-jabber-ssl";
/// The start of the stream header jabberd sends, in jabberd's attribute order.
pub const EXPECT_XML: &str =
    "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client'";
/// The plain client port when `c2s_port` is unset.
pub const DEFAULT_PORT: u16 = 5222;
/// The SSL client port when `c2s_ssl_port` is unset.
pub const DEFAULT_SSL_PORT: u16 = 5223;
/// The certificate expiry warning, in days, when `cert_warn_days` is unset.
pub const DEFAULT_CERT_WARN_DAYS: u32 = 28;

/// The `jabberd` translator.
#[derive(Debug, Clone, Copy, Default)]
pub struct Jabberd;

/// The `mc-check-jabber` command line: `$ARG1$` port.
pub fn check_jabber_line() -> String {
    format!("$USER1$/check_jabber -H '$HOSTADDRESS$' -p '$ARG1$' -e \"{EXPECT_XML}\"")
}

/// The `mc-check-jabber-ssl` command line: `$ARG1$` port, `$ARG2$` certificate warning days.
pub fn check_jabber_ssl_line() -> String {
    format!("$USER1$/check_jabber -H '$HOSTADDRESS$' -p '$ARG1$' --ssl -D '$ARG2$' -e \"{EXPECT_XML}\"")
}

/// A resource's value, trimmed, or `None` when it is absent or blank.
fn resource<'a>(component: &'a Component, name: &str) -> Option<&'a str> {
    component.get_nonempty(name).map(str::trim)
}

/// A TCP port from resource `name`, or `default` when it is unset.
fn port(component: &Component, name: &str, default: u16) -> Result<u16, TranslateError> {
    match resource(component, name) {
        None => Ok(default),
        Some(v) => match v.parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(TranslateError::invalid(
                name,
                v,
                "not a port number between 1 and 65535",
            )),
        },
    }
}

/// A positive whole number from resource `name`, or `default` when it is unset.
fn positive(component: &Component, name: &str, default: u32) -> Result<u32, TranslateError> {
    match resource(component, name) {
        None => Ok(default),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(TranslateError::invalid(name, v, "not a positive whole number")),
        },
    }
}

impl Translator for Jabberd {
    fn component(&self) -> &str {
        "jabberd"
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn start_pass(&mut self) -> Result<Bundle, TranslateError> {
        Ok(Bundle::new()
            .with(Command::new(CHECK_JABBER, check_jabber_line()))
            .with(Command::new(CHECK_JABBER_SSL, check_jabber_ssl_line())))
    }

    fn translate(&self, machine: &str, component: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
        // Validate everything before registering anything, so a bad value leaves no
        // contact group behind.
        let c2s_port = port(component, "c2s_port", DEFAULT_PORT)?;
        let ssl = resource(component, "c2s_pemfile").is_some() || resource(component, "c2s_oldpemfile").is_some();
        let ssl_check = if ssl {
            let ssl_port = port(component, "c2s_ssl_port", DEFAULT_SSL_PORT)?;
            let days = positive(component, "cert_warn_days", DEFAULT_CERT_WARN_DAYS)?;
            Some(
                CheckCommand::new(CHECK_JABBER_SSL)
                    .arg(ssl_port.to_string())
                    .arg(days.to_string()),
            )
        } else {
            None
        };
        let groups = handle_contacts(component, ctx)?;

        let mut bundle = merge_escalation(
            Service::new(DEFAULT_SERVICE)
                .host_name(machine)
                .service_description("Jabber")
                .check_command(CheckCommand::new(CHECK_JABBER).arg(c2s_port.to_string()))
                .contact_groups(groups.iter().cloned()),
            component,
        )?;
        if let Some(check) = ssl_check {
            bundle.extend(merge_escalation(
                Service::new(DEFAULT_SERVICE)
                    .host_name(machine)
                    .service_description("Jabber SSL")
                    .check_command(check)
                    .contact_groups(groups),
                component,
            )?);
        }
        Ok(bundle)
    }
}
