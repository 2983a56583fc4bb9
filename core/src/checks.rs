//! Our own checks, run before Nagios sees the output. They catch what `nagios -v` only
//! warns about (a duplicate host + service_description silently keeps one), and name
//! the translator and machine responsible, which Nagios cannot.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::nagios::{Bundle, Object, ObjectKind};

/// The objects defined anywhere in the pass, for reference checks.
#[derive(Debug, Default)]
pub struct Definitions {
    /// (kind, name) → who defined it.
    named: HashMap<(ObjectKind, String), String>,
    /// Templates (`name` + `register 0`) by kind.
    templates: HashSet<(ObjectKind, String)>,
    /// (host, service_description) → who defined it.
    services: HashMap<(String, String), String>,
}

impl Definitions {
    /// Record the named objects of `bundle`; a name defined twice is an error for the
    /// later source, naming both.
    pub fn define(&mut self, bundle: &Bundle, source: &str) -> Result<(), String> {
        let mut errors = Vec::new();
        let mut added: Vec<(ObjectKind, String)> = Vec::new();
        let mut added_services: Vec<(String, String)> = Vec::new();
        for o in bundle {
            if o.kind == ObjectKind::Service && !o.is_template() {
                match (o.get_str("host_name"), o.get_str("service_description")) {
                    (Some(h), Some(d)) => {
                        let key = (h.to_string(), d.to_string());
                        let first = match self.services.get(&key) {
                            Some(first) => Some(first.as_str()),
                            None if added_services.contains(&key) => Some(source),
                            None => None,
                        };
                        match first {
                            Some(first) => errors.push(format!(
                                "duplicate service '{d}' on host {h}: defined by {first} and by {source}"
                            )),
                            None => added_services.push(key),
                        }
                    }
                    _ => errors.push("a service needs host_name and service_description".into()),
                }
                continue;
            }
            if o.is_template() {
                if let Some(n) = o.get_str("name") {
                    self.templates.insert((o.kind, n.to_string()));
                }
                continue;
            }
            if let Some(n) = o.kind.name_directive().and_then(|d| o.get_str(d)) {
                let key = (o.kind, n.to_string());
                if let Some(first) = self.named.get(&key) {
                    errors.push(format!(
                        "{} '{n}' is defined by both {first} and {source}",
                        o.kind.keyword()
                    ));
                } else {
                    self.named.insert(key.clone(), source.to_string());
                    added.push(key);
                }
            }
        }
        if errors.is_empty() {
            for key in added_services {
                self.services.insert(key, source.to_string());
            }
            Ok(())
        } else {
            for k in added {
                self.named.remove(&k);
            }
            Err(errors.join("; "))
        }
    }

    /// Add a contact group defined by the user manager.
    pub fn define_group(&mut self, group: &str) {
        self.named
            .entry((ObjectKind::ContactGroup, group.to_string()))
            .or_insert_with(|| "the user manager".into());
    }

    pub fn is_defined(&self, kind: ObjectKind, name: &str) -> bool {
        self.named.contains_key(&(kind, name.to_string()))
    }

    /// Forget what `define` recorded for `bundle`'s services (its source was dropped).
    pub fn undefine_services(&mut self, bundle: &Bundle) {
        for o in bundle {
            if let (ObjectKind::Service, Some(h), Some(d)) =
                (o.kind, o.get_str("host_name"), o.get_str("service_description"))
            {
                self.services.remove(&(h.to_string(), d.to_string()));
            }
        }
    }

    /// Forget what `define` recorded for `bundle` under `source`: its services and the
    /// named objects `source` defined (templates stay: they carry no owner).
    pub fn undefine(&mut self, bundle: &Bundle, source: &str) {
        for o in bundle {
            match definition_key(o) {
                Some(DefKey::Service(h, d)) => {
                    self.services.remove(&(h.to_string(), d.to_string()));
                }
                Some(DefKey::Named(kind, n)) => {
                    let key = (kind, n.to_string());
                    if self.named.get(&key).is_some_and(|s| s == source) {
                        self.named.remove(&key);
                    }
                }
                Some(DefKey::Template(..)) | None => {}
            }
        }
    }

    pub fn has_service(&self, host: Option<&str>, desc: Option<&str>) -> bool {
        match (host, desc) {
            (Some(h), Some(d)) => self.services.contains_key(&(h.to_string(), d.to_string())),
            _ => false,
        }
    }

    /// Check the references of `bundle` against everything defined in the pass.
    pub fn check_references(&self, bundle: &Bundle, _source: &str) -> Result<(), String> {
        let mut errors = Vec::new();
        for o in bundle {
            self.check_object(o, &mut errors);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    fn check_object(&self, o: &Object, errors: &mut Vec<String>) {
        let kind = o.kind.keyword();
        let need = |k: ObjectKind, directive: &str, errors: &mut Vec<String>| {
            if let Some(v) = o.get(directive) {
                for n in v.names() {
                    if !self.is_defined(k, n) {
                        errors.push(format!(
                            "{kind} refers to undefined {} '{n}' in {directive}",
                            k.keyword()
                        ));
                    }
                }
            }
        };
        if let Some(v) = o.get("use") {
            for n in v.names() {
                if !self.templates.contains(&(o.kind, n.to_string())) {
                    errors.push(format!("{kind} uses undefined template '{n}'"));
                }
            }
        }
        need(ObjectKind::Command, "check_command", errors);
        need(ObjectKind::Command, "event_handler", errors);
        need(ObjectKind::Command, "host_notification_commands", errors);
        need(ObjectKind::Command, "service_notification_commands", errors);
        need(ObjectKind::ContactGroup, "contact_groups", errors);
        need(ObjectKind::Contact, "contacts", errors);
        need(ObjectKind::TimePeriod, "check_period", errors);
        need(ObjectKind::TimePeriod, "notification_period", errors);
        need(ObjectKind::TimePeriod, "escalation_period", errors);
        let service = |h: &str, d: &str, errors: &mut Vec<String>| {
            if !self.has_service(o.get_str(h), o.get_str(d)) {
                errors.push(format!(
                    "{kind} refers to undefined service '{}' on host {}",
                    o.get_str(d).unwrap_or_default(),
                    o.get_str(h).unwrap_or_default()
                ));
            }
        };
        match o.kind {
            ObjectKind::Service => need(ObjectKind::Host, "host_name", errors),
            ObjectKind::ServiceEscalation => service("host_name", "service_description", errors),
            ObjectKind::ServiceDependency => {
                service("host_name", "service_description", errors);
                service("dependent_host_name", "dependent_service_description", errors);
            }
            ObjectKind::ServiceGroup => {
                if let Some(v) = o.get("members") {
                    for pair in v.names().chunks(2) {
                        if let [h, d] = pair
                            && !self.services.contains_key(&(h.to_string(), d.to_string()))
                        {
                            errors.push(format!("servicegroup member '{d}' on host {h} is not defined"));
                        }
                    }
                }
            }
            _ => {}
        }
        if let Some(name_dir) = o.kind.name_directive()
            && !o.is_template()
            && o.get(name_dir).is_none()
        {
            errors.push(format!("{kind} has no {name_dir}"));
        }
    }
}

/// What one object defines, as `define` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DefKey<'a> {
    /// A named object (host, command, contact group, ...).
    Named(ObjectKind, &'a str),
    /// A template (`name` with `register 0`).
    Template(ObjectKind, &'a str),
    /// A service, by host and description.
    Service(&'a str, &'a str),
}

/// What `o` defines, if anything.
pub fn definition_key(o: &Object) -> Option<DefKey<'_>> {
    if o.is_template() {
        return o.get_str("name").map(|n| DefKey::Template(o.kind, n));
    }
    if o.kind == ObjectKind::Service {
        return match (o.get_str("host_name"), o.get_str("service_description")) {
            (Some(h), Some(d)) => Some(DefKey::Service(h, d)),
            _ => None,
        };
    }
    o.kind
        .name_directive()
        .and_then(|d| o.get_str(d))
        .map(|n| DefKey::Named(o.kind, n))
}

/// The services (host, description) that `o` refers to: both ends of a dependency, the
/// service of an escalation, and the members of a servicegroup.
pub fn service_references(o: &Object) -> Vec<(&str, &str)> {
    let pair = |h: &str, d: &str| Some((o.get_str(h)?, o.get_str(d)?));
    match o.kind {
        ObjectKind::ServiceEscalation => pair("host_name", "service_description").into_iter().collect(),
        ObjectKind::ServiceDependency => pair("host_name", "service_description")
            .into_iter()
            .chain(pair("dependent_host_name", "dependent_service_description"))
            .collect(),
        ObjectKind::ServiceGroup => o
            .get("members")
            .map(|v| {
                v.names()
                    .chunks(2)
                    .filter_map(|p| match p {
                        [h, d] => Some((*h, *d)),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}
