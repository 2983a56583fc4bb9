//! Typed Nagios objects, their builders, and ordered bundles of them (fragments).

use serde::{Deserialize, Serialize};

use super::value::{CheckCommand, Value, ValueError};

/// The kind of a Nagios object (`define <kind> { ... }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    /// `define host`.
    Host,
    /// `define service`.
    Service,
    /// `define command`.
    Command,
    /// `define contact`.
    Contact,
    /// `define contactgroup`.
    ContactGroup,
    /// `define timeperiod`.
    TimePeriod,
    /// `define hostgroup`.
    HostGroup,
    /// `define servicegroup`.
    ServiceGroup,
    /// `define servicedependency`.
    ServiceDependency,
    /// `define serviceescalation`.
    ServiceEscalation,
    /// `define hostdependency`.
    HostDependency,
    /// `define hostescalation`.
    HostEscalation,
}

impl ObjectKind {
    /// Every kind, in declaration order.
    pub const ALL: [ObjectKind; 12] = [
        ObjectKind::Host,
        ObjectKind::Service,
        ObjectKind::Command,
        ObjectKind::Contact,
        ObjectKind::ContactGroup,
        ObjectKind::TimePeriod,
        ObjectKind::HostGroup,
        ObjectKind::ServiceGroup,
        ObjectKind::ServiceDependency,
        ObjectKind::ServiceEscalation,
        ObjectKind::HostDependency,
        ObjectKind::HostEscalation,
    ];

    /// The kind whose [`keyword`](Self::keyword) is `keyword`.
    pub fn from_keyword(keyword: &str) -> Option<ObjectKind> {
        ObjectKind::ALL.into_iter().find(|k| k.keyword() == keyword)
    }

    /// The keyword after `define`.
    pub fn keyword(self) -> &'static str {
        match self {
            ObjectKind::Host => "host",
            ObjectKind::Service => "service",
            ObjectKind::Command => "command",
            ObjectKind::Contact => "contact",
            ObjectKind::ContactGroup => "contactgroup",
            ObjectKind::TimePeriod => "timeperiod",
            ObjectKind::HostGroup => "hostgroup",
            ObjectKind::ServiceGroup => "servicegroup",
            ObjectKind::ServiceDependency => "servicedependency",
            ObjectKind::ServiceEscalation => "serviceescalation",
            ObjectKind::HostDependency => "hostdependency",
            ObjectKind::HostEscalation => "hostescalation",
        }
    }

    /// The directive that names an object of this kind, where there is one.
    pub fn name_directive(self) -> Option<&'static str> {
        match self {
            ObjectKind::Host => Some("host_name"),
            ObjectKind::Command => Some("command_name"),
            ObjectKind::Contact => Some("contact_name"),
            ObjectKind::ContactGroup => Some("contactgroup_name"),
            ObjectKind::TimePeriod => Some("timeperiod_name"),
            ObjectKind::HostGroup => Some("hostgroup_name"),
            ObjectKind::ServiceGroup => Some("servicegroup_name"),
            _ => None,
        }
    }
}

/// One Nagios object: a kind and its directives, in the order they were set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Object {
    /// What the object defines: the keyword after `define`.
    pub kind: ObjectKind,
    directives: Vec<(String, Value)>,
}

impl Object {
    /// An object of `kind` with no directives.
    pub fn new(kind: ObjectKind) -> Self {
        Object {
            kind,
            directives: Vec::new(),
        }
    }

    /// Set a directive, replacing an earlier value of the same directive.
    pub fn set(&mut self, directive: &str, value: Value) -> &mut Self {
        match self.directives.iter_mut().find(|(d, _)| d == directive) {
            Some((_, v)) => *v = value,
            None => self.directives.push((directive.to_string(), value)),
        }
        self
    }

    /// Remove a directive.
    pub fn unset(&mut self, directive: &str) {
        self.directives.retain(|(d, _)| d != directive);
    }

    /// A directive's value, if it is set.
    pub fn get(&self, directive: &str) -> Option<&Value> {
        self.directives.iter().find(|(d, _)| d == directive).map(|(_, v)| v)
    }

    /// A directive's single string value.
    pub fn get_str(&self, directive: &str) -> Option<&str> {
        self.get(directive).and_then(Value::as_str)
    }

    /// Give the object's list of directives exactly the room it uses (a new allocation,
    /// so that the room is really given back).
    fn compact(&mut self) {
        if self.directives.capacity() > self.directives.len() {
            let mut exact = Vec::with_capacity(self.directives.len());
            exact.append(&mut self.directives);
            self.directives = exact;
        }
    }

    /// The directives and their values, in the order they were first set.
    pub fn directives(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.directives.iter().map(|(d, v)| (d.as_str(), v))
    }

    /// The object's own name (`host_name` of a host, ...), or a template's `name`.
    pub fn name(&self) -> Option<&str> {
        self.kind
            .name_directive()
            .and_then(|d| self.get_str(d))
            .or_else(|| self.get_str("name"))
    }

    /// True for a template (`register 0`).
    pub fn is_template(&self) -> bool {
        self.get_str("register") == Some("0")
    }

    /// Check every value; see [`crate::nagios::value`].
    pub fn check(&self) -> Result<(), ValueError> {
        self.directives.iter().try_for_each(|(d, v)| {
            // A directive name is written as it is: only `[a-z0-9_]` can never start a new
            // line, a value or an object.
            if d.is_empty()
                || !d
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(ValueError {
                    directive: d.clone(),
                    value: String::new(),
                    reason: "is not a directive name (only a-z, 0-9 and _ are allowed)".into(),
                });
            }
            v.check(d)?;
            // `$HOSTADDRESS$` reaches command lines (inside single quotes): an address is a
            // host name or an IP address, nothing a shell could read.
            if d == "address"
                && let Some(a) = self.get_str(d)
                && !a
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_' | b'%'))
            {
                return Err(ValueError {
                    directive: d.clone(),
                    value: a.to_string(),
                    reason: "is not a host name or IP address".into(),
                });
            }
            Ok(())
        })
    }

    /// Append the object in Nagios syntax. Call [`Object::check`] first.
    pub fn render_into(&self, out: &mut String) {
        out.push_str("define ");
        out.push_str(self.kind.keyword());
        out.push_str(" {\n");
        for (d, v) in &self.directives {
            out.push_str("    ");
            out.push_str(d);
            // Values start in column 36, and always after at least one space.
            for _ in 0..(32usize.saturating_sub(d.len())).max(1) {
                out.push(' ');
            }
            v.render_into(out);
            out.push('\n');
        }
        out.push_str("}\n\n");
    }

    /// The object in Nagios syntax, as [`Object::render_into`] writes it. Call
    /// [`Object::check`] first.
    pub fn render(&self) -> String {
        let mut s = String::new();
        self.render_into(&mut s);
        s
    }
}

macro_rules! builder {
    ($(#[$doc:meta])* $ty:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $ty(Object);

        impl $ty {
            /// Set any directive not covered by a typed method.
            pub fn set(mut self, directive: &str, value: Value) -> Self {
                self.0.set(directive, value);
                self
            }

            /// Free text directive (`notes`, `alias`, ...).
            pub fn text(self, directive: &str, value: impl Into<String>) -> Self {
                self.set(directive, Value::Text(value.into()))
            }

            /// A number or option letters (`max_check_attempts`, `notification_options`).
            pub fn plain(self, directive: &str, value: impl ToString) -> Self {
                self.set(directive, Value::Plain(value.to_string()))
            }

            /// The object built so far.
            pub fn object(&self) -> &Object {
                &self.0
            }

            /// The object built, consuming the builder.
            pub fn into_object(self) -> Object {
                self.0
            }
        }

        impl From<$ty> for Object {
            fn from(b: $ty) -> Object {
                b.0
            }
        }

        impl Default for $ty {
            fn default() -> Self {
                $ty(Object::new($kind))
            }
        }
    };
}

builder!(
    /// `define host`.
    Host,
    ObjectKind::Host
);
builder!(
    /// `define service`.
    Service,
    ObjectKind::Service
);
builder!(
    /// `define command`.
    Command,
    ObjectKind::Command
);
builder!(
    /// `define contact`.
    Contact,
    ObjectKind::Contact
);
builder!(
    /// `define contactgroup`.
    ContactGroup,
    ObjectKind::ContactGroup
);

fn names<I, S>(items: I) -> Value
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    Value::Names(items.into_iter().map(Into::into).collect())
}

impl Host {
    /// A host inheriting from template `use_template` (empty for none).
    pub fn new(use_template: &str) -> Self {
        let h = Host::default();
        if use_template.is_empty() {
            h
        } else {
            h.set("use", Value::Name(use_template.into()))
        }
    }
    /// Set `host_name`: the host's name.
    pub fn host_name(self, name: impl Into<String>) -> Self {
        self.set("host_name", Value::Name(name.into()))
    }
    /// Set `alias`: the host's longer, descriptive name.
    pub fn alias(self, alias: impl Into<String>) -> Self {
        self.text("alias", alias)
    }
    /// Set `address`: the host name or IP address that checks use (`$HOSTADDRESS$`).
    pub fn address(self, address: impl Into<String>) -> Self {
        self.text("address", address)
    }
    /// Set `contact_groups`: the contact groups notified about the host.
    pub fn contact_groups<I: IntoIterator<Item = S>, S: Into<String>>(self, groups: I) -> Self {
        self.set("contact_groups", names(groups))
    }
}

impl Service {
    /// A service inheriting from template `use_template` (empty for none), usually
    /// [`DEFAULT_SERVICE`](crate::names::DEFAULT_SERVICE).
    pub fn new(use_template: &str) -> Self {
        let s = Service::default();
        if use_template.is_empty() {
            s
        } else {
            s.set("use", Value::Name(use_template.into()))
        }
    }
    /// Set `host_name`: the host the service belongs to.
    pub fn host_name(self, name: impl Into<String>) -> Self {
        self.set("host_name", Value::Name(name.into()))
    }
    /// Set `service_description`: the service's name, unique on its host.
    pub fn service_description(self, desc: impl Into<String>) -> Self {
        self.set("service_description", Value::Name(desc.into()))
    }
    /// Set `check_command`: the command, and its arguments, that checks the service.
    pub fn check_command(self, cmd: CheckCommand) -> Self {
        self.set("check_command", Value::Command(cmd))
    }
    /// Set `contact_groups`: the contact groups notified about the service.
    pub fn contact_groups<I: IntoIterator<Item = S>, S: Into<String>>(self, groups: I) -> Self {
        self.set("contact_groups", names(groups))
    }
    /// An event handler (self-healing); the command must be defined.
    pub fn event_handler(self, cmd: CheckCommand) -> Self {
        self.set("event_handler", Value::Command(cmd))
            .plain("event_handler_enabled", 1)
    }
    /// The `host_name` set so far, if any.
    pub fn host(&self) -> Option<&str> {
        self.0.get_str("host_name")
    }
    /// The `service_description` set so far, if any.
    pub fn description(&self) -> Option<&str> {
        self.0.get_str("service_description")
    }
}

impl Command {
    /// A command: `command_name` is `name` and `command_line` is `command_line`, in which
    /// every `$ARGn$` must stand inside single quotes (see [`crate::nagios::value`]).
    pub fn new(name: impl Into<String>, command_line: impl Into<String>) -> Self {
        Command::default()
            .set("command_name", Value::Name(name.into()))
            .set("command_line", Value::CommandLine(command_line.into()))
    }
}

impl Contact {
    /// A contact named `name` (`contact_name`), inheriting from template `use_template`
    /// (empty for none), usually [`GENERIC_CONTACT`](crate::names::GENERIC_CONTACT).
    pub fn new(use_template: &str, name: impl Into<String>) -> Self {
        let c = Contact::default();
        let c = if use_template.is_empty() {
            c
        } else {
            c.set("use", Value::Name(use_template.into()))
        };
        c.set("contact_name", Value::Name(name.into()))
    }
    /// Set `alias`: the contact's full name.
    pub fn alias(self, alias: impl Into<String>) -> Self {
        self.text("alias", alias)
    }
    /// Set `email`: the address that e-mail notifications go to.
    pub fn email(self, email: impl Into<String>) -> Self {
        self.text("email", email)
    }
    /// Set `host_notification_commands`: the commands that notify the contact about hosts.
    pub fn host_notification_commands<I: IntoIterator<Item = S>, S: Into<String>>(self, cmds: I) -> Self {
        self.set("host_notification_commands", names(cmds))
    }
    /// Set `service_notification_commands`: the commands that notify the contact about
    /// services.
    pub fn service_notification_commands<I: IntoIterator<Item = S>, S: Into<String>>(self, cmds: I) -> Self {
        self.set("service_notification_commands", names(cmds))
    }
}

impl ContactGroup {
    /// A contact group: `contactgroup_name` is `name`, and `alias` is set to the same name.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        ContactGroup::default()
            .set("contactgroup_name", Value::Name(name.clone()))
            .text("alias", name)
    }
    /// Set `members`: the contacts in the group. An empty list leaves `members` unset.
    pub fn members<I: IntoIterator<Item = S>, S: Into<String>>(self, members: I) -> Self {
        let v: Vec<String> = members.into_iter().map(Into::into).collect();
        if v.is_empty() {
            self
        } else {
            self.set("members", Value::Names(v))
        }
    }
}

/// An ordered bundle of objects: what a translator returns. Order is preserved in the
/// output, as with the Perl `ConfigBundle`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    objects: Vec<Object>,
}

impl Bundle {
    /// An empty bundle.
    pub fn new() -> Self {
        Bundle::default()
    }

    /// Append one object (a builder or an [`Object`]).
    pub fn push(&mut self, object: impl Into<Object>) -> &mut Self {
        self.objects.push(object.into());
        self
    }

    /// Append one object and return the bundle, for chaining.
    pub fn with(mut self, object: impl Into<Object>) -> Self {
        self.push(object);
        self
    }

    /// Append all of `other`'s objects, in their order.
    pub fn extend(&mut self, other: Bundle) {
        self.objects.extend(other.objects);
    }

    /// The objects, in order.
    pub fn objects(&self) -> &[Object] {
        &self.objects
    }

    /// The objects, mutable: to edit, reorder or remove them in place.
    pub fn objects_mut(&mut self) -> &mut Vec<Object> {
        &mut self.objects
    }

    /// True when the bundle holds no objects.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// The objects, in order, one by one.
    pub fn iter(&self) -> std::slice::Iter<'_, Object> {
        self.objects.iter()
    }

    /// Give the bundle's lists exactly the room they use, for a bundle that is kept long
    /// (the engine keeps every machine's fragments between passes). The objects and
    /// their order are unchanged.
    pub fn compact(&mut self) {
        for o in &mut self.objects {
            o.compact();
        }
        if self.objects.capacity() > self.objects.len() {
            let mut exact = Vec::with_capacity(self.objects.len());
            exact.append(&mut self.objects);
            self.objects = exact;
        }
    }

    /// Check every object's values.
    pub fn check(&self) -> Result<(), ValueError> {
        self.objects.iter().try_for_each(Object::check)
    }

    /// All objects in Nagios syntax.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for o in &self.objects {
            o.render_into(&mut s);
        }
        s
    }
}

impl<'a> IntoIterator for &'a Bundle {
    type Item = &'a Object;
    type IntoIter = std::slice::Iter<'a, Object>;
    fn into_iter(self) -> Self::IntoIter {
        self.objects.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_keeps_the_objects_in_order_and_leaves_no_spare_room() {
        let mut b = Bundle::new();
        for i in 0..9 {
            let mut s = Service::new("generic-service")
                .host_name("web1")
                .service_description(format!("svc {i}"));
            for d in ["notes", "notes_url", "action_url", "icon_image", "max_check_attempts"] {
                s = s.set(d, Value::Plain(i.to_string()));
            }
            b.push(s);
        }
        let before = b.clone();
        let rendered = b.render();
        b.compact();
        assert_eq!(b, before);
        assert_eq!(b.render(), rendered);
        assert_eq!(b.objects.capacity(), b.objects.len());
        assert!(b.objects.iter().all(|o| o.directives.capacity() == o.directives.len()));
    }

    #[test]
    fn directive_names_cannot_inject() {
        for name in ["notes\ndefine command {", "a b", "}", "", "Notes", "x;y"] {
            let b = Bundle::new().with(Service::new("").set(name, Value::Plain("1".into())));
            let e = b.check().unwrap_err();
            assert_eq!(e.directive, name);
            assert!(e.reason.contains("not a directive name"), "{e}");
        }
        assert!(
            Bundle::new()
                .with(Service::new("").plain("max_check_attempts2", 3))
                .check()
                .is_ok()
        );
    }
}
