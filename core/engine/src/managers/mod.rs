//! Managers: they see the registrations of every machine in the pass (fresh or
//! replayed from the cache) and assemble the objects that span machines.
//!
//! - [`users`]: contacts and contact groups;
//! - [`clusters`]: a servicegroup and a `check_cluster` service per cluster;
//! - [`dependencies`]: dependency tags across hosts, `servicedependency` objects, and
//!   circular-dependency detection;
//! - [`passive`]: the passive-check ACL.
//!
//! Managers never parse profiles or call translators; they work only from
//! [`Registration`] data and the services the translators produced.

pub mod clusters;
pub mod dependencies;
pub mod passive;
pub mod users;

use rustc_hash::FxHashMap as HashMap;

use monitor_sdk::nagios::Object;
use monitor_sdk::translator::{Registration, ServiceRef};

/// One (machine, component)'s registrations, as the managers see them.
#[derive(Debug, Clone, Copy)]
pub struct Registered<'a> {
    pub machine: &'a str,
    pub component: &'a str,
    pub registrations: &'a [Registration],
}

/// A problem a manager found, attributed to a machine and component where it can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub machine: Option<String>,
    pub component: Option<String>,
    pub message: String,
}

impl Finding {
    pub fn at(r: &Registered<'_>, message: impl Into<String>) -> Self {
        Finding {
            machine: Some(r.machine.to_string()),
            component: Some(r.component.to_string()),
            message: message.into(),
        }
    }

    pub fn global(message: impl Into<String>) -> Self {
        Finding {
            machine: None,
            component: None,
            message: message.into(),
        }
    }
}

/// The directives of a service that any manager reads (through [`ServiceIndex`]). The
/// incremental assembly relies on this list: a change to a registered service that
/// leaves these the same cannot change the managers' output. A manager that reads
/// another directive must add it here.
pub const SERVICE_DIRECTIVES_READ: [&str; 3] = ["contact_groups", "active_checks_enabled", "passive_checks_enabled"];

/// Every service of the pass, by (host, description), borrowed from the fragments.
pub type ServiceIndex<'a> = HashMap<(&'a str, &'a str), &'a Object>;

/// The index key of a service reference.
pub fn index_key(s: &ServiceRef) -> (&str, &str) {
    (&s.host, &s.description)
}
