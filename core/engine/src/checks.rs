//! Our own checks, run before Nagios sees the output. They catch what `nagios -v` only
//! warns about (a duplicate host + service_description silently keeps one), and name
//! the translator and machine responsible, which Nagios cannot.

use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use monitor_sdk::nagios::{Bundle, Object, ObjectKind};

/// The objects defined anywhere in the pass, for reference checks. Maps are nested by
/// kind and by host so that every lookup borrows its key (no allocation per reference),
/// and who defined an object is shared per `define` call.
#[derive(Debug, Default)]
pub struct Definitions {
    /// kind → name → who defined it.
    named: HashMap<ObjectKind, HashMap<String, Arc<str>>>,
    /// Templates (`name` + `register 0`): kind → name → who defined it.
    templates: HashMap<ObjectKind, HashMap<String, Arc<str>>>,
    /// host → service_description → who defined it.
    services: HashMap<String, HashMap<String, Arc<str>>>,
}

impl Definitions {
    /// Record the named objects of `bundle`; a name defined twice is an error for the
    /// later source, naming both.
    pub fn define(&mut self, bundle: &Bundle, source: &str) -> Result<(), String> {
        let who: Arc<str> = Arc::from(source);
        let mut errors = Vec::new();
        let mut added: Vec<(ObjectKind, &str)> = Vec::new();
        // Sets, not lists: a manager's bundle holds thousands of objects, and a list's
        // `contains` made defining it quadratic (0.5 s for the clusters of 100,000 machines).
        let mut added_services: rustc_hash::FxHashSet<(&str, &str)> = Default::default();
        // Templates are recorded only when the whole bundle is accepted.
        let mut added_templates: rustc_hash::FxHashSet<(ObjectKind, &str)> = Default::default();
        for o in bundle {
            if o.kind == ObjectKind::Service && !o.is_template() {
                match (o.get_str("host_name"), o.get_str("service_description")) {
                    (Some(h), Some(d)) => {
                        let first = match self.services.get(h).and_then(|m| m.get(d)) {
                            Some(first) => Some(&**first),
                            None if added_services.contains(&(h, d)) => Some(source),
                            None => None,
                        };
                        match first {
                            Some(first) => errors.push(format!(
                                "duplicate service '{d}' on host {h}: defined by {first} and by {source}"
                            )),
                            None => {
                                added_services.insert((h, d));
                            }
                        }
                    }
                    _ => errors.push("a service needs host_name and service_description".into()),
                }
                continue;
            }
            if o.is_template() {
                if let Some(n) = o.get_str("name") {
                    // Nagios refuses a template name defined twice for one kind.
                    let first = match self.templates.get(&o.kind).and_then(|m| m.get(n)) {
                        Some(first) => Some(&**first),
                        None if added_templates.contains(&(o.kind, n)) => Some(source),
                        None => None,
                    };
                    match first {
                        Some(first) => errors.push(format!(
                            "{} template '{n}' is defined by both {first} and {source}",
                            o.kind.keyword()
                        )),
                        None => {
                            added_templates.insert((o.kind, n));
                        }
                    }
                }
                continue;
            }
            if let Some(n) = o.kind.name_directive().and_then(|d| o.get_str(d)) {
                let names = self.named.entry(o.kind).or_default();
                if let Some(first) = names.get(n) {
                    errors.push(format!(
                        "{} '{n}' is defined by both {first} and {source}",
                        o.kind.keyword()
                    ));
                } else {
                    names.insert(n.to_string(), who.clone());
                    added.push((o.kind, n));
                }
            }
        }
        if errors.is_empty() {
            for (kind, n) in added_templates {
                self.templates
                    .entry(kind)
                    .or_default()
                    .insert(n.to_string(), who.clone());
            }
            for (h, d) in added_services {
                match self.services.get_mut(h) {
                    Some(m) => {
                        m.insert(d.to_string(), who.clone());
                    }
                    None => {
                        let mut m = HashMap::default();
                        m.insert(d.to_string(), who.clone());
                        self.services.insert(h.to_string(), m);
                    }
                }
            }
            Ok(())
        } else {
            for (kind, n) in added {
                if let Some(names) = self.named.get_mut(&kind) {
                    names.remove(n);
                }
            }
            Err(errors.join("; "))
        }
    }

    /// Add a contact group defined by the user manager.
    pub fn define_group(&mut self, group: &str) {
        let names = self.named.entry(ObjectKind::ContactGroup).or_default();
        if !names.contains_key(group) {
            names.insert(group.to_string(), Arc::from("the user manager"));
        }
    }

    /// Record an object defined outside the output (the site's own definition of a base
    /// object, `site_objects`): references to it count as defined.
    pub fn define_external(&mut self, kind: ObjectKind, name: &str, template: bool, source: &str) {
        let names = if template {
            self.templates.entry(kind).or_default()
        } else {
            self.named.entry(kind).or_default()
        };
        if !names.contains_key(name) {
            names.insert(name.to_string(), Arc::from(source));
        }
    }

    pub fn is_defined(&self, kind: ObjectKind, name: &str) -> bool {
        self.named.get(&kind).is_some_and(|m| m.contains_key(name))
    }

    fn remove_service(&mut self, host: &str, description: &str) {
        if let Some(m) = self.services.get_mut(host) {
            m.remove(description);
        }
    }

    /// Forget what `define` recorded for `bundle` under `source`: its services, and the
    /// named objects and templates `source` defined.
    pub fn undefine(&mut self, bundle: &Bundle, source: &str) {
        for o in bundle {
            match definition_key(o) {
                Some(DefKey::Service(h, d)) => self.remove_service(h, d),
                Some(DefKey::Named(kind, n)) => {
                    if let Some(names) = self.named.get_mut(&kind)
                        && names.get(n).is_some_and(|s| &**s == source)
                    {
                        names.remove(n);
                    }
                }
                Some(DefKey::Template(kind, n)) => {
                    if let Some(names) = self.templates.get_mut(&kind)
                        && names.get(n).is_some_and(|s| &**s == source)
                    {
                        names.remove(n);
                    }
                }
                None => {}
            }
        }
    }

    pub fn has_service(&self, host: Option<&str>, desc: Option<&str>) -> bool {
        match (host, desc) {
            (Some(h), Some(d)) => self.services.get(h).is_some_and(|m| m.contains_key(d)),
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
                if !self.templates.get(&o.kind).is_some_and(|t| t.contains_key(n)) {
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
        // Group members and parents: plain names only (`*` and `!name` are Nagios's own
        // patterns, which it resolves itself).
        let members = |k: ObjectKind, directive: &str, errors: &mut Vec<String>| {
            if let Some(v) = o.get(directive) {
                for n in v.names() {
                    if n != "*" && !n.starts_with('!') && !self.is_defined(k, n) {
                        errors.push(format!(
                            "{kind} refers to undefined {} '{n}' in {directive}",
                            k.keyword()
                        ));
                    }
                }
            }
        };
        match o.kind {
            ObjectKind::Host => {
                members(ObjectKind::Host, "parents", errors);
                members(ObjectKind::HostGroup, "hostgroups", errors);
            }
            ObjectKind::HostGroup => {
                members(ObjectKind::Host, "members", errors);
                members(ObjectKind::HostGroup, "hostgroup_members", errors);
            }
            ObjectKind::Service => {
                need(ObjectKind::Host, "host_name", errors);
                members(ObjectKind::ServiceGroup, "servicegroups", errors);
            }
            ObjectKind::ServiceEscalation => service("host_name", "service_description", errors),
            ObjectKind::ServiceDependency => {
                service("host_name", "service_description", errors);
                service("dependent_host_name", "dependent_service_description", errors);
            }
            ObjectKind::ServiceGroup => {
                if let Some(v) = o.get("members") {
                    for pair in v.names().chunks(2) {
                        if let [h, d] = pair
                            && !self.has_service(Some(h), Some(d))
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

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_sdk::nagios::{Service, Value};

    #[test]
    fn a_rejected_bundle_defines_no_template() {
        let mut defs = Definitions::default();
        let svc = Service::new("").host_name("h").service_description("S");
        defs.define(&Bundle::new().with(svc.clone()), "a").unwrap();
        let mut t = Object::new(ObjectKind::Service);
        t.set("name", Value::Name("tpl".into()));
        t.set("register", Value::Plain("0".into()));
        let bad = Bundle::new().with(t).with(svc);
        assert!(defs.define(&bad, "b").is_err());
        let mut u = Service::new("tpl")
            .host_name("h")
            .service_description("T")
            .into_object();
        u.set("check_command", Value::Name("c".into()));
        let errs = defs.check_references(&Bundle::new().with(u), "").unwrap_err();
        assert!(errs.contains("uses undefined template 'tpl'"), "{errs}");
    }

    fn template(name: &str) -> Object {
        let mut t = Object::new(ObjectKind::Service);
        t.set("name", Value::Name(name.into()));
        t.set("register", Value::Plain("0".into()));
        t
    }

    #[test]
    fn a_template_defined_twice_is_an_error_and_undefine_forgets_its_owners_only() {
        let mut defs = Definitions::default();
        defs.define(&Bundle::new().with(template("tpl")), "a").unwrap();
        defs.define(
            &Bundle::new().with(monitor_sdk::nagios::Host::new("").host_name("h")),
            "a",
        )
        .unwrap();
        let err = defs.define(&Bundle::new().with(template("tpl")), "b").unwrap_err();
        assert_eq!(err, "service template 'tpl' is defined by both a and b");
        let user = Bundle::new().with(Service::new("tpl").host_name("h").service_description("S"));
        // b was rejected: forgetting b leaves a's template.
        defs.undefine(&Bundle::new().with(template("tpl")), "b");
        assert!(defs.check_references(&user, "").is_ok());
        defs.undefine(&Bundle::new().with(template("tpl")), "a");
        let errs = defs.check_references(&user, "").unwrap_err();
        assert!(errs.contains("uses undefined template 'tpl'"), "{errs}");
    }

    #[test]
    fn group_members_and_parents_must_be_defined() {
        let mut defs = Definitions::default();
        let mut hg = Object::new(ObjectKind::HostGroup);
        hg.set("hostgroup_name", Value::Name("g".into()));
        hg.set(
            "members",
            Value::Names(vec!["h1".into(), "!h2".into(), "nohost".into()]),
        );
        defs.define(
            &Bundle::new().with(monitor_sdk::nagios::Host::new("").host_name("h1")),
            "a",
        )
        .unwrap();
        let errs = defs.check_references(&Bundle::new().with(hg), "").unwrap_err();
        assert_eq!(errs, "hostgroup refers to undefined host 'nohost' in members");
        let h = monitor_sdk::nagios::Host::new("")
            .host_name("h3")
            .set("parents", Value::Names(vec!["gone".into()]));
        let errs = defs.check_references(&Bundle::new().with(h), "").unwrap_err();
        assert_eq!(errs, "host refers to undefined host 'gone' in parents");
    }
}
