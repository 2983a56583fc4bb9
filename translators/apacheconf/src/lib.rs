//! Translator for the LCFG `apacheconf` component: monitors a machine's Apache web server
//! and each of its virtual hosts.
//!
//! It emits:
//! - `Apache`: plain HTTP on the lowest port Apache listens on (`mc-check-http`), with the
//!   component's event handler when one is named, so that Nagios can restart Apache
//!   itself (the self-healing set-up of the cfengine article);
//! - `vhost <name>` for every entry of the `vhosts` list, in list order: an HTTP request
//!   for the virtual host's name on its port (`mc-apacheconf-check-vhost`), or, for an SSL
//!   virtual host, an HTTPS request with SNI that also warns when the certificate expires
//!   within a number of days (`mc-apacheconf-check-vhost-ssl`). Every virtual host depends
//!   on `Apache` through a `servicedependency`, so that when Apache is down only
//!   `Apache` notifies, not every one of possibly hundreds of virtual hosts.
//!
//! `start_pass` defines the two virtual host commands and the `restart-apache` event
//! handler, which runs the site's `restart-service` script for `httpd`; a profile turns
//! it on with `nagios_event_handler` set to `restart-apache`.
//!
//! Resources read:
//! - `nagios_groups` (required): the contact groups to notify;
//! - `listen` (optional tag list) with `listen_addr_<tag>` (`*:80`, `10.0.0.1:8080`,
//!   `[::1]:8080`, `80`, optionally followed by a protocol such as `https`): the lowest
//!   port is the one `Apache` checks (over plain HTTP, so keep a plain port in the list);
//! - `port` (optional, default `80`): the port `Apache` checks when `listen` is empty;
//! - `vhosts` (optional tag list) with, per entry, `vhost_name` (required), `vhost_port`
//!   (optional, default `443` for SSL virtual hosts and `80` for the others), `vhost_ssl`
//!   (`yes` for SSL) and `vhost_cert_days` (optional: the certificate warning in days);
//! - `cert_warn_days` (optional, default `21`): the certificate warning of SSL virtual
//!   hosts without `vhost_cert_days`;
//! - `nagios_event_handler` (optional): the event handler of `Apache`;
//! - `nagios_depends` (optional): dependency tags that `Apache` depends on;
//! - `nagios_escalations` (optional tag list): escalations, as read by
//!   [`monitor_sdk::helpers::construct_escalation`]; they apply to `Apache` and to the
//!   virtual host services their `escalation_services` name.
//!
//! It deliberately does not monitor virtual host aliases (`vhost_aliases`: they are
//! served by the same virtual host, so they would only repeat its check), does not check
//! document roots or page content (`vhost_docroot` is on the monitored machine), does
//! not attach the event handler to virtual hosts (restarting Apache is a whole-server
//! remedy, and virtual hosts depend on `Apache` anyway), does not check SSL on
//! `Apache` itself (the SSL virtual hosts do), and does not read Apache's own
//! configuration files.

use std::collections::HashMap;

use monitor_sdk::helpers::{
    DEFAULT_SERVICE, create_dependency, event_handler, get_port, get_u32, handle_contacts, handle_dependencies,
    merge_escalation, resource_list,
};
use monitor_sdk::nagios::value::check_name;
use monitor_sdk::nagios::{Bundle, CheckCommand, Command, Service};
use monitor_sdk::names::CHECK_HTTP;
use monitor_sdk::profile::{Component, NodeRef};
use monitor_sdk::translator::{Context, TranslateError, Translator};

/// The plain virtual host check command name.
pub const CHECK_VHOST: &str = "mc-apacheconf-check-vhost";
/// The plain virtual host check: `$ARG1$` virtual host name, `$ARG2$` port.
pub const CHECK_VHOST_LINE: &str = "$USER1$/check_http -I '$HOSTADDRESS$' -H '$ARG1$' -p '$ARG2$'";
/// The SSL virtual host check command name.
pub const CHECK_VHOST_SSL: &str = "mc-apacheconf-check-vhost-ssl";
/// The SSL virtual host check: `$ARG1$` name, `$ARG2$` port, `$ARG3$` certificate warning days.
pub const CHECK_VHOST_SSL_LINE: &str =
    "$USER1$/check_http -I '$HOSTADDRESS$' -H '$ARG1$' -p '$ARG2$' -S --sni -C '$ARG3$'";
/// The event handler that restarts Apache.
pub const RESTART_APACHE: &str = "restart-apache";
/// The `restart-apache` command line. It has no arguments: the script decides from the
/// state, state type and attempt whether to restart `httpd` on the host.
pub const RESTART_APACHE_LINE: &str = "/usr/lib/monitor-compile/eventhandlers/restart-service httpd \
     '$SERVICESTATE$' '$SERVICESTATETYPE$' '$SERVICEATTEMPT$' '$HOSTADDRESS$'";
/// The description of the main Apache service.
pub const APACHE_SERVICE: &str = "Apache";
/// The port `Apache` checks when neither `listen` nor `port` is set.
pub const DEFAULT_PORT: u16 = 80;
/// The port of an SSL virtual host without `vhost_port`.
pub const DEFAULT_SSL_VHOST_PORT: u16 = 443;
/// The port of a plain virtual host without `vhost_port`.
pub const DEFAULT_VHOST_PORT: u16 = 80;
/// The certificate expiry warning, in days, when `cert_warn_days` is unset.
pub const DEFAULT_CERT_WARN_DAYS: u32 = 21;

/// The `apacheconf` translator.
#[derive(Debug, Clone, Copy, Default)]
pub struct Apacheconf;

/// The service description of virtual host `name`.
pub fn vhost_description(name: &str) -> String {
    format!("vhost {name}")
}

/// The port of an Apache `Listen` address: `*:80`, `10.0.0.1:8080`, `[::1]:8080` or
/// `80`, optionally followed by a protocol (`10.0.0.1:8443 https`).
///
/// ```
/// use translator_apacheconf::listen_port;
/// assert_eq!(listen_port("*:80"), Some(80));
/// assert_eq!(listen_port("10.0.0.1:8443 https"), Some(8443));
/// assert_eq!(listen_port("*:http"), None);
/// ```
pub fn listen_port(addr: &str) -> Option<u16> {
    let mut words = addr.split_whitespace();
    let address = words.next()?;
    let protocol_ok = match (words.next(), words.next()) {
        (None, _) => true,
        (Some(p), None) => p.bytes().all(|b| b.is_ascii_alphabetic()),
        (Some(_), Some(_)) => false,
    };
    if !protocol_ok {
        return None;
    }
    let port = address.rsplit(':').next()?;
    match port.parse::<u16>() {
        Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Some(p),
        _ => None,
    }
}

/// The port `Apache` is checked on: the lowest listen port, or `port`.
fn apache_port(component: &Component) -> Result<u16, TranslateError> {
    let mut lowest: Option<u16> = None;
    for tag in resource_list(component, "listen") {
        let resource = format!("listen_addr_{tag}");
        let addr = component
            .get_nonempty(&resource)
            .ok_or_else(|| TranslateError::missing(&resource))?;
        let port = listen_port(addr).ok_or_else(|| {
            TranslateError::invalid(
                &resource,
                addr,
                "expected [address:]port, such as *:80 or 10.0.0.1:8080",
            )
        })?;
        lowest = Some(lowest.map_or(port, |l| l.min(port)));
    }
    match lowest {
        Some(p) => Ok(p),
        None => get_port(component, "port", DEFAULT_PORT),
    }
}

/// A per-virtual-host leaf, trimmed; `None` when absent or blank.
fn leaf<'a>(node: &NodeRef<'a>, name: &str) -> Option<&'a str> {
    node.get(name).map(str::trim).filter(|v| !v.is_empty())
}

/// One virtual host, read and validated.
struct Vhost {
    name: String,
    check: CheckCommand,
}

impl Vhost {
    fn read(component: &Component, tag: &str, node: &NodeRef<'_>) -> Result<Vhost, TranslateError> {
        let name_resource = format!("vhost_name_{tag}");
        let name = leaf(node, "vhost_name").ok_or_else(|| TranslateError::missing(&name_resource))?;
        if let Err(e) = check_name("service_description", &vhost_description(name)) {
            return Err(TranslateError::invalid(&name_resource, name, e.reason));
        }
        let ssl = leaf(node, "vhost_ssl") == Some("yes");
        let port = match leaf(node, "vhost_port") {
            None if ssl => DEFAULT_SSL_VHOST_PORT,
            None => DEFAULT_VHOST_PORT,
            Some(v) => match v.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => {
                    return Err(TranslateError::invalid(
                        &format!("vhost_port_{tag}"),
                        v,
                        "expected a port number from 1 to 65535",
                    ));
                }
            },
        };
        let check = if ssl {
            let days = match leaf(node, "vhost_cert_days") {
                Some(v) => positive_days(&format!("vhost_cert_days_{tag}"), v)?,
                None => match get_u32(component, "cert_warn_days", DEFAULT_CERT_WARN_DAYS)? {
                    0 => {
                        return Err(TranslateError::invalid(
                            "cert_warn_days",
                            "0",
                            "expected at least one day",
                        ));
                    }
                    d => d,
                },
            };
            CheckCommand::new(CHECK_VHOST_SSL)
                .arg(name)
                .arg(port.to_string())
                .arg(days.to_string())
        } else {
            CheckCommand::new(CHECK_VHOST).arg(name).arg(port.to_string())
        };
        Ok(Vhost {
            name: name.to_string(),
            check,
        })
    }
}

/// A certificate warning in days: a whole number of at least one.
fn positive_days(resource: &str, v: &str) -> Result<u32, TranslateError> {
    match v.parse::<u32>() {
        Ok(d) if d > 0 => Ok(d),
        _ => Err(TranslateError::invalid(
            resource,
            v,
            "expected a whole number of days, at least one",
        )),
    }
}

/// Every virtual host of the `vhosts` list, in list order; two entries with the same
/// name are an error (they would be the same service).
fn vhosts(component: &Component) -> Result<Vec<Vhost>, TranslateError> {
    let Some(list) = component.child("vhosts") else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Vhost> = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for (tag, node) in list.children() {
        let vhost = Vhost::read(component, tag, &node)?;
        if let Some(first) = seen.insert(vhost.name.clone(), tag.to_string()) {
            return Err(TranslateError::invalid(
                &format!("vhost_name_{tag}"),
                &vhost.name,
                format!("is also the name of vhost entry {first}"),
            ));
        }
        out.push(vhost);
    }
    Ok(out)
}

impl Translator for Apacheconf {
    fn component(&self) -> &str {
        "apacheconf"
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn start_pass(&mut self) -> Result<Bundle, TranslateError> {
        Ok(Bundle::new()
            .with(Command::new(CHECK_VHOST, CHECK_VHOST_LINE))
            .with(Command::new(CHECK_VHOST_SSL, CHECK_VHOST_SSL_LINE))
            .with(Command::new(RESTART_APACHE, RESTART_APACHE_LINE)))
    }

    fn translate(&self, machine: &str, component: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
        // Read and validate every value before registering anything.
        let port = apache_port(component)?;
        let vhosts = vhosts(component)?;

        let groups = handle_contacts(component, ctx)?;
        let mut apache = Service::new(DEFAULT_SERVICE)
            .host_name(machine)
            .service_description(APACHE_SERVICE)
            .check_command(CheckCommand::new(CHECK_HTTP).arg(port.to_string()))
            .contact_groups(&groups);
        if let Some(cmd) = event_handler(component) {
            apache = apache.event_handler(cmd);
        }
        handle_dependencies(component, ctx, apache.object())?;
        let apache = apache.into_object();

        let mut bundle = merge_escalation(apache.clone(), component)?;
        for vhost in vhosts {
            let service = Service::new(DEFAULT_SERVICE)
                .host_name(machine)
                .service_description(vhost_description(&vhost.name))
                .check_command(vhost.check)
                .contact_groups(&groups)
                .into_object();
            let dependency = create_dependency(&apache, &service)?;
            bundle.extend(merge_escalation(service, component)?);
            bundle.push(dependency);
        }
        Ok(bundle)
    }
}
