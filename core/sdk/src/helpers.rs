//! Helpers that mirror the Perl guide's base classes: contact handling from
//! `nagios_groups` and `SimpleCheck` for one-service translators.

use crate::nagios::{Bundle, CheckCommand, Object, ObjectKind, Service, Value};
use crate::profile::Component;
use crate::translator::{Context, TranslateError, Translator};

pub use crate::names::{DEFAULT_HOST, DEFAULT_SERVICE};

/// Read the component's `nagios_groups` resource (space-separated in LCFG), register
/// every group with the user manager, and return them for `contact_groups` (which the
/// writer joins with commas, as Nagios wants).
pub fn handle_contacts(component: &Component, ctx: &mut Context) -> Result<Vec<String>, TranslateError> {
    let groups: Vec<String> = component
        .get("nagios_groups")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if groups.is_empty() {
        return Err(TranslateError::missing("nagios_groups"));
    }
    for g in &groups {
        ctx.add_contact_group(g);
    }
    Ok(groups)
}

/// A translator that monitors one service with one check command, notifying the
/// groups in `nagios_groups`. Wrap it in [`Simple`] to get a [`Translator`].
pub trait SimpleCheck: Send + Sync {
    /// The component this check serves, as [`Translator::component`].
    fn component(&self) -> &str;
    /// The translator's version, as [`Translator::version`] (part of the cache key).
    fn version(&self) -> &str;
    /// The `service_description`; unique on a host.
    fn service_description(&self) -> &str;
    /// Commands the check needs, defined once per pass (in `start_pass`). Empty when the
    /// check uses a command that is already defined.
    fn commands(&self) -> Bundle {
        Bundle::new()
    }
    /// The check command for this machine, or `None` to monitor nothing here (say why
    /// with `ctx.warn`).
    fn check_command(
        &self,
        machine: &str,
        component: &Component,
        ctx: &mut Context,
    ) -> Result<Option<CheckCommand>, TranslateError>;
}

/// Adapts a [`SimpleCheck`] into a [`Translator`].
pub struct Simple<T>(pub T);

impl<T: SimpleCheck> Translator for Simple<T> {
    fn component(&self) -> &str {
        self.0.component()
    }

    fn version(&self) -> &str {
        self.0.version()
    }

    fn start_pass(&mut self) -> Result<Bundle, TranslateError> {
        Ok(self.0.commands())
    }

    fn translate(&self, machine: &str, component: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
        let Some(cmd) = self.0.check_command(machine, component, ctx)? else {
            return Ok(Bundle::new());
        };
        let groups = handle_contacts(component, ctx)?;
        Ok(Bundle::new().with(
            Service::new(DEFAULT_SERVICE)
                .host_name(machine)
                .service_description(self.0.service_description())
                .check_command(cmd)
                .contact_groups(groups),
        ))
    }
}

/// A space-separated list resource (`nagios_groups`, `nagios_depends`), empty when absent.
pub fn resource_list(component: &Component, name: &str) -> Vec<String> {
    component
        .get(name)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// A non-negative integer resource, `default` when absent or blank.
pub fn get_u32(component: &Component, name: &str, default: u32) -> Result<u32, TranslateError> {
    match component.get_nonempty(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| TranslateError::invalid(name, v, "expected a whole number")),
    }
}

/// A TCP port resource (1..=65535), `default` when absent or blank.
pub fn get_port(component: &Component, name: &str, default: u16) -> Result<u16, TranslateError> {
    match component.get_nonempty(name) {
        None => Ok(default),
        Some(v) => match v.parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(TranslateError::invalid(
                name,
                v,
                "expected a port number from 1 to 65535",
            )),
        },
    }
}

fn service_key(o: &Object) -> Result<(&str, &str), TranslateError> {
    match (o.get_str("host_name"), o.get_str("service_description")) {
        (Some(h), Some(d)) => Ok((h, d)),
        _ => Err(TranslateError::Other(
            "a service needs host_name and service_description".into(),
        )),
    }
}

/// A dependency inside one translator (`createDependency` in the Perl guide): while
/// `master` is down, `dependent` does not notify. Use it for the many virtual hosts
/// that depend on the one Apache.
pub fn create_dependency(master: &Object, dependent: &Object) -> Result<Object, TranslateError> {
    let (mh, md) = service_key(master)?;
    let (dh, dd) = service_key(dependent)?;
    Ok(service_dependency(mh, md, dh, dd))
}

/// The `servicedependency` object every dependency uses: notifications of the dependent
/// are suppressed while the master is UNKNOWN or CRITICAL; its checks still run.
pub fn service_dependency(host: &str, description: &str, dependent_host: &str, dependent_description: &str) -> Object {
    let mut o = Object::new(ObjectKind::ServiceDependency);
    o.set("host_name", Value::Name(host.into()));
    o.set("service_description", Value::Name(description.into()));
    o.set("dependent_host_name", Value::Name(dependent_host.into()));
    o.set(
        "dependent_service_description",
        Value::Name(dependent_description.into()),
    );
    o.set("notification_failure_criteria", Value::Plain("u,c".into()));
    o
}

/// Register the dependency tags listed in the component's `nagios_depends` resource
/// (space-separated) for `service`.
pub fn handle_dependencies(component: &Component, ctx: &mut Context, service: &Object) -> Result<(), TranslateError> {
    for tag in resource_list(component, "nagios_depends") {
        ctx.add_dependency(&tag, service)?;
    }
    Ok(())
}

/// A passive service: active checks off, passive checks on, and `mc-check-passive` (which
/// reports CRITICAL) for when Nagios has to check it itself. With `freshness`, Nagios
/// does so when no result arrived for that many seconds. Register it with
/// [`Context::add_passive_check`] so that the ACL lets its submitter in.
pub fn passive_service(machine: &str, description: &str, freshness: Option<u32>) -> Service {
    let s = Service::new(DEFAULT_SERVICE)
        .host_name(machine)
        .service_description(description)
        .check_command(CheckCommand::new(crate::names::CHECK_PASSIVE))
        .plain("active_checks_enabled", 0)
        .plain("passive_checks_enabled", 1);
    match freshness {
        Some(secs) => s.plain("check_freshness", 1).plain("freshness_threshold", secs),
        None => s.plain("check_freshness", 0),
    }
}

/// The event handler named by the component's `nagios_event_handler` resource, if any.
/// The command must be defined somewhere in the configuration (the engine checks).
pub fn event_handler(component: &Component) -> Option<CheckCommand> {
    component.get_nonempty("nagios_event_handler").map(CheckCommand::new)
}

/// The escalation resources of a component: a tag list `nagios_escalations` whose
/// entries have `escalation_first` (first notification, from 1), `escalation_last` (last,
/// 0 for no end), `escalation_interval` (minutes between notifications),
/// `escalation_groups` (space-separated contact groups) and optionally
/// `escalation_services` (comma-separated service descriptions it applies to; all of
/// the component's services when absent). See docs/translator-guide.md.
pub fn construct_escalation(service: &Object, component: &Component) -> Result<Vec<Object>, TranslateError> {
    let (host, desc) = service_key(service)?;
    let Some(list) = component.child("nagios_escalations") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (tag, node) in list.children() {
        let field = |f: &str| format!("escalation_{f}_{tag}");
        if let Some(services) = node.get("escalation_services").map(str::trim).filter(|s| !s.is_empty())
            && !services.split(',').any(|s| s.trim() == desc)
        {
            continue;
        }
        let number = |f: &str, default: Option<u32>| -> Result<u32, TranslateError> {
            match (
                node.get(&format!("escalation_{f}"))
                    .map(str::trim)
                    .filter(|v| !v.is_empty()),
                default,
            ) {
                (Some(v), _) => v
                    .parse()
                    .map_err(|_| TranslateError::invalid(&field(f), v, "expected a whole number")),
                (None, Some(d)) => Ok(d),
                (None, None) => Err(TranslateError::missing(&field(f))),
            }
        };
        let first = number("first", None)?;
        let last = number("last", Some(0))?;
        let interval = number("interval", Some(60))?;
        if first == 0 {
            return Err(TranslateError::invalid(
                &field("first"),
                "0",
                "notifications are counted from 1",
            ));
        }
        if last != 0 && last < first {
            return Err(TranslateError::invalid(
                &field("last"),
                &last.to_string(),
                "is before the first notification",
            ));
        }
        let groups: Vec<String> = node
            .get("escalation_groups")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if groups.is_empty() {
            return Err(TranslateError::missing(&field("groups")));
        }
        let mut o = Object::new(ObjectKind::ServiceEscalation);
        o.set("host_name", Value::Name(host.into()));
        o.set("service_description", Value::Name(desc.into()));
        o.set("first_notification", Value::Plain(first.to_string()));
        o.set("last_notification", Value::Plain(last.to_string()));
        o.set("notification_interval", Value::Plain(interval.to_string()));
        o.set("contact_groups", Value::Names(groups));
        out.push(o);
    }
    Ok(out)
}

/// The service followed by its escalations (`mergeEscalation` in the Perl guide).
pub fn merge_escalation(service: impl Into<Object>, component: &Component) -> Result<Bundle, TranslateError> {
    let service = service.into();
    let escalations = construct_escalation(&service, component)?;
    let mut b = Bundle::new().with(service);
    for e in escalations {
        b.push(e);
    }
    Ok(b)
}
