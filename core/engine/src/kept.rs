//! What a full assembly hands from one phase to the next: each machine with its owner,
//! the fragments kept, the pass-level output and the managers' output.

use std::collections::BTreeMap;
use std::path::Path;

use monitor_sdk::nagios::Bundle;

use crate::cache::{MachineRecord, Translated};
use crate::managers::dependencies::Explicit;
use crate::managers::{Registered, clusters, dependencies, passive, users};
use crate::report::Problem;

/// The managers' output on the fragments that will be written.
pub(crate) struct Managed {
    pub(crate) users: users::UsersOutput,
    pub(crate) clusters: clusters::ClusterOutput,
    pub(crate) dependencies: dependencies::DependencyOutput,
    pub(crate) passive: passive::PassiveOutput,
    /// The translators' own service dependencies, for the incremental state.
    pub(crate) explicit: Vec<Explicit>,
    /// The managers' warnings, which the incremental path reports again.
    pub(crate) warnings: Vec<Problem>,
}

/// What every machine's fragments are checked against: the base, the site's objects and
/// the translators' pass-level output.
pub(crate) struct PassLevel {
    pub(crate) base: Bundle,
    pub(crate) start: Vec<(String, Bundle)>,
    pub(crate) finish: Vec<(String, Bundle)>,
}

/// Each monitored machine of the pass, by name, with the one file that owns it.
pub(crate) type Machines<'a> = BTreeMap<&'a str, (&'a Path, &'a MachineRecord)>;

pub(crate) struct Part<'a> {
    pub(crate) component: &'a str,
    pub(crate) translated: &'a Translated,
}

pub(crate) type Kept<'a> = BTreeMap<&'a str, KeptEntry<'a>>;

/// One kept machine's profile file and kept components.
pub(crate) type KeptEntry<'a> = (&'a Path, Vec<Part<'a>>);

/// Who defined a fragment's objects, as `Definitions` records it: the same string when a
/// fragment is defined and when it is left out again.
pub(crate) fn fragment_source(component: &str, machine: &str) -> String {
    format!("{component} on {machine}")
}

pub(crate) fn registered_of<'a>(kept: &'a Kept<'_>) -> Vec<Registered<'a>> {
    kept.iter()
        .flat_map(|(m, (_, parts))| {
            parts.iter().map(move |p| Registered {
                machine: m,
                component: p.component,
                registrations: &p.translated.registrations,
            })
        })
        .collect()
}

/// The source name of the cluster manager's definitions.
pub(crate) const CLUSTER_SOURCE: &str = "the cluster manager";
