//! Translator for monitoring-info declarations: services that packages declare for
//! themselves (the PackageMonitorInfo spec, `../shared/seeds/003_*`), from either source:
//!
//! - **an LCFG profile**: the `monitoring_info` component, listed in
//!   `nagios_client.components`, with the tag list `services`; each tag is one service
//!   (named by the tag, or by `name_<tag>`), its keys are resources `<key>_<tag>`
//!   (`type_apache2`, `port_apache2`, ...);
//! - **a registering host**: the monitoring server makes a profile for each host that
//!   registered over SSH (docs/monitoring-info.md); its `monitoring_info` component holds
//!   the stored registration as text in `registration`, the site's overrides in
//!   `overrides`, and the names of their files in `registration_origin` and
//!   `overrides_origin`.
//!
//! Both become the same [`declare::Declaration`]s and the same services on the machine's
//! host, notifying the component's `nagios_groups`. A declaration that breaks a rule
//! fails that service alone: it is a warning naming the file (or profile resource), line,
//! section and key, and the host's other services are still monitored.
//!
//! Overrides are sections of the same name: their keys replace the registration's, and
//! `disabled = yes` leaves the service out (the seed's opt-out use case).
//!
//! Credentials: `password` is never taken from a declaration. Registration moves each
//! password into a file of the monitoring server (mode 0640, group nagios), and the
//! declaration then names that file in `password_file`, which is all that reaches the
//! objects: `check_monitoring_info` reads the file when it runs.

pub mod checks;
pub mod declare;
pub mod format;

use std::collections::BTreeMap;

use monitor_sdk::helpers::{DEFAULT_SERVICE, handle_contacts, resource_list};
use monitor_sdk::nagios::{Bundle, Service};
use monitor_sdk::profile::Component;
use monitor_sdk::translator::{Context, TranslateError, Translator};

use crate::declare::{DeclError, Declaration, declare, is_disabled};
use crate::format::{Origin, Pair, Section, parse};

/// The component this translator serves.
pub const COMPONENT: &str = "monitoring_info";

/// The keys a profile's tag list may give, as `<key>_<tag>`.
pub const PROFILE_KEYS: [&str; 19] = [
    "type",
    "port",
    "uri",
    "accept_redirection",
    "hostname",
    "email",
    "mailflowid",
    "username",
    "password",
    "password_file",
    "base",
    "seconds",
    "id",
    "ssl",
    "ssl_hostname",
    "ignore_invalid_ssl",
    "expire_before_days",
    "disabled",
    "name",
];

/// The keys whose values are booleans.
const BOOLEAN_KEYS: [&str; 4] = ["accept_redirection", "ssl", "ignore_invalid_ssl", "disabled"];

/// The `monitoring_info` translator.
#[derive(Debug, Clone, Copy, Default)]
pub struct MonitoringInfo;

/// The sections of the profile's tag list `services`.
fn profile_sections(component: &Component) -> Vec<Section> {
    resource_list(component, "services")
        .into_iter()
        .map(|tag| {
            let origin_of = |res: &str| Origin {
                file: match component.resource(res).and_then(|r| r.derivation.as_deref()) {
                    Some(d) => format!("profile resource {COMPONENT}.{res} (from {d})"),
                    None => format!("profile resource {COMPONENT}.{res}"),
                },
                line: 0,
            };
            let pairs = PROFILE_KEYS
                .iter()
                .filter(|k| **k != "name")
                .filter_map(|key| {
                    let res = format!("{key}_{tag}");
                    // An LCFG boolean is `yes` or empty: present and empty is false.
                    let value = if BOOLEAN_KEYS.contains(key) {
                        component.get(&res).map(|v| if v.trim().is_empty() { "no" } else { v })
                    } else {
                        component.get_nonempty(&res)
                    };
                    value.map(|value| Pair {
                        key: key.to_string(),
                        value: value.to_string(),
                        origin: origin_of(&res),
                    })
                })
                .collect();
            Section {
                name: component
                    .get_nonempty(&format!("name_{tag}"))
                    .unwrap_or(&tag)
                    .to_string(),
                origin: origin_of("services"),
                pairs,
            }
        })
        .collect()
}

/// Apply `overrides` to `sections`: keys replace, `disabled = yes` removes. Returns the
/// sections that remain, and a warning for each override of a service not declared.
pub fn apply_overrides(sections: Vec<Section>, overrides: &[Section]) -> (Vec<Section>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut by_name: BTreeMap<&str, &Section> = BTreeMap::new();
    for o in overrides {
        if let Some(first) = by_name.insert(&o.name, o) {
            warnings.push(format!(
                "{}: override [{}] given twice (first at {}): this one is used",
                o.origin, o.name, first.origin
            ));
        }
    }
    for o in overrides {
        if !sections.iter().any(|s| s.name == o.name) {
            warnings.push(format!(
                "{}: override [{}] names no service this host declares: it changes nothing",
                o.origin, o.name
            ));
        }
    }
    let out = sections
        .into_iter()
        .filter_map(|mut s| match by_name.get(s.name.as_str()) {
            None => Some(s),
            Some(o) if is_disabled(o) => None,
            Some(o) => {
                for p in &o.pairs {
                    s.pairs.retain(|q| q.key != p.key);
                    s.pairs.push(p.clone());
                }
                Some(s)
            }
        })
        .collect();
    (out, warnings)
}

/// Every declaration of the component, and why each failed one failed.
pub fn declarations(machine: &str, component: &Component) -> (Vec<Declaration>, Vec<String>) {
    let mut warnings = Vec::new();
    let mut sections = profile_sections(component);

    if let Some(text) = component.get("registration") {
        let file = component.get_nonempty("registration_origin").unwrap_or("registration");
        let (s, e) = parse(file, &format!("{machine}:/etc/monitoring-info/"), text);
        warnings.extend(e.iter().map(ToString::to_string));
        sections.extend(s);
    }
    let overrides = match component.get("overrides") {
        Some(text) => {
            let file = component.get_nonempty("overrides_origin").unwrap_or("overrides");
            let dir = file.rsplit_once('/').map(|(d, _)| format!("{d}/")).unwrap_or_default();
            let (s, e) = parse(file, &dir, text);
            warnings.extend(e.iter().map(ToString::to_string));
            s
        }
        None => Vec::new(),
    };

    // A name declared twice: the first stands, the second fails.
    let mut seen: BTreeMap<String, Origin> = BTreeMap::new();
    let mut unique = Vec::new();
    for s in sections {
        if let Some(first) = seen.get(&s.name) {
            warnings.push(
                DeclError {
                    section: s.name.clone(),
                    key: None,
                    origin: s.origin.clone(),
                    reason: format!("a duplicate section (first at {first}): not monitored"),
                }
                .to_string(),
            );
            continue;
        }
        seen.insert(s.name.clone(), s.origin.clone());
        unique.push(s);
    }
    let (sections, w) = apply_overrides(unique, &overrides);
    warnings.extend(w);

    let mut out = Vec::new();
    for s in &sections {
        if is_disabled(s) {
            continue;
        }
        match declare(s, machine) {
            Ok(d) => out.push(d),
            Err(e) => warnings.push(format!("service not monitored: {e}")),
        }
    }
    (out, warnings)
}

impl Translator for MonitoringInfo {
    fn component(&self) -> &str {
        COMPONENT
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn start_pass(&mut self) -> Result<Bundle, TranslateError> {
        Ok(checks::command_bundle())
    }

    fn translate(&self, machine: &str, component: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
        let groups = handle_contacts(component, ctx)?;
        let (decls, warnings) = declarations(machine, component);
        for w in warnings {
            ctx.warn(w);
        }
        let mut bundle = Bundle::new();
        let mut descriptions = std::collections::BTreeSet::new();
        for d in &decls {
            let service = |description: String, check| {
                Service::new(DEFAULT_SERVICE)
                    .host_name(machine)
                    .service_description(description)
                    .check_command(check)
                    .contact_groups(&groups)
            };
            let mut services = vec![service(d.name.clone(), checks::check_command(d))];
            if let Some(c) = checks::certificate_command(d) {
                services.push(service(format!("{}{}", d.name, checks::CERTIFICATE_SUFFIX), c));
            }
            // The value rules again, as the writer applies them: a failure is this
            // service's, not the machine's.
            if let Some(e) = services.iter().find_map(|s| s.object().check().err()) {
                ctx.warn(format!("service not monitored: {}: [{}]: {e}", d.origin, d.name));
                continue;
            }
            if let Some(taken) = services
                .iter()
                .filter_map(|s| s.description())
                .find(|desc| descriptions.contains(*desc))
            {
                ctx.warn(format!(
                    "service not monitored: {}: [{}]: its service {taken:?} is already declared",
                    d.origin, d.name
                ));
                continue;
            }
            descriptions.extend(services.iter().filter_map(|s| s.description().map(str::to_string)));
            for s in services {
                bundle.push(s);
            }
        }
        Ok(bundle)
    }
}
