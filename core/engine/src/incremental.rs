//! The incremental assembly: a pass in which only some machines changed patches the last
//! assembly with those machines instead of assembling every machine again.
//!
//! The patch must give exactly what a full assembly of the same inputs gives (same
//! files, same report), so it is taken only when that is provable, and otherwise the
//! engine assembles in full. It is provable when:
//!
//! - the last assembly had no errors, and nothing but machine entries changed since
//!   (the engine's fingerprint: files, translators, contacts, pass-level output);
//! - each changed machine is the same machine, monitored before and after, with no
//!   profile or translation error;
//! - its registrations are the same, so no manager's input changed; the services that
//!   any registration names are the same objects (the cluster and passive managers read
//!   them); its explicit service dependencies are the same (the dependency manager
//!   reads them); it defines the same named objects and templates;
//! - services it adds are defined nowhere else, services it removes are referred to by
//!   nothing, all its references resolve (without what the cluster manager defines, which
//!   a full assembly checks machines before), it defines nothing the cluster manager
//!   defines, and no new dependency edge of its own can close a cycle.
//!
//! Then the managers' output, every other machine's text and every other machine's
//! reference checks are unchanged; the machine's own text is rendered by the same
//! function the full assembly uses, and only its shard file is rebuilt.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use monitor_sdk::nagios::Bundle;
use monitor_sdk::translator::{Registration, ServiceRef};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::cache::{Entry, FragmentCache, MachineRecord};
use crate::checks::{DefKey, Definitions, definition_key, service_references};
use crate::kept::CLUSTER_SOURCE;
use crate::kept::{Part, fragment_source};
use crate::layout::{HEADER, MACHINE_SHARDS, Output, shard_file};
use crate::managers::dependencies::Explicit;
use crate::managers::{Registered, SERVICE_DIRECTIVES_READ};
use crate::registry::Registry;
use crate::render::{MachineOut, ToRender, render_machine};
use crate::report::{PassReport, Problem};

/// What the incremental path keeps from an assembly without errors.
pub(crate) struct DeltaState {
    /// Everything defined in the assembly.
    defs: Definitions,
    /// Each kept machine's share of the output, by name.
    machines: BTreeMap<String, MachineOut>,
    /// The machines of each shard file, sorted.
    members: Vec<Vec<String>>,
    /// Every service a registration names: the managers read these objects.
    registered_services: FxHashSet<ServiceKey>,
    /// How many objects of the output refer to each service.
    service_refs: FxHashMap<ServiceKey, u32>,
    /// The managers' warnings, which come first in the report's warnings.
    manager_warnings: Vec<Problem>,
    /// How many dependency edges (tag or explicit) leave each service: a new edge to a
    /// master that has none cannot close a cycle.
    dependents: FxHashMap<ServiceKey, u32>,
    /// What the cluster manager defines. A full assembly defines it after the reference
    /// checks, so `defs` leaves it out (a machine may not refer to it) and a machine that
    /// defines it is a duplicate the patch leaves to the full assembly.
    cluster_keys: FxHashSet<u64>,
}

/// A service (host, description) as a 64-bit hash. Every use is conservative under a
/// collision: a service wrongly seen as registered, referred to or depending sends the
/// pass to a full assembly, never to a wrong patch.
type ServiceKey = u64;

fn service_key(host: &str, description: &str) -> ServiceKey {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: deterministic, and well mixed for similar names.
    let mut h = std::hash::DefaultHasher::new();
    (host, description).hash(&mut h);
    h.finish()
}

/// A definition as a 64-bit hash (conservative under a collision, as [`ServiceKey`]).
fn def_key(k: DefKey<'_>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    match k {
        DefKey::Named(kind, n) => (0u8, kind.keyword(), n).hash(&mut h),
        DefKey::Template(kind, n) => (1u8, kind.keyword(), n).hash(&mut h),
        DefKey::Service(host, d) => (2u8, host, d).hash(&mut h),
    }
    h.finish()
}

fn ref_key(s: &ServiceRef) -> ServiceKey {
    service_key(&s.host, &s.description)
}

impl DeltaState {
    pub(crate) fn new(
        mut defs: Definitions,
        clusters: &Bundle,
        machines: BTreeMap<String, MachineOut>,
        registered: &[Registered<'_>],
        bundles: &[&Bundle],
        explicit: &[Explicit],
        manager_warnings: Vec<Problem>,
    ) -> Self {
        let mut members = vec![Vec::new(); MACHINE_SHARDS as usize];
        for (name, out) in &machines {
            members[out.shard].push(name.clone());
        }
        let registered_services = registered
            .iter()
            .flat_map(|r| r.registrations.iter().filter_map(registered_service))
            .map(ref_key)
            .collect();
        let mut service_refs = FxHashMap::default();
        for b in bundles {
            count_references(&mut service_refs, b, true);
        }
        let mut dependents = FxHashMap::default();
        for r in registered {
            for reg in r.registrations {
                if let Registration::DependsOn { service, .. } = reg {
                    bump(&mut dependents, ref_key(service), true);
                }
            }
        }
        for e in explicit {
            bump(&mut dependents, ref_key(&e.dependent), true);
        }
        defs.undefine(clusters, CLUSTER_SOURCE);
        let cluster_keys = clusters.iter().filter_map(definition_key).map(def_key).collect();
        DeltaState {
            cluster_keys,
            dependents,
            defs,
            machines,
            members,
            registered_services,
            service_refs,
            manager_warnings,
        }
    }
}

/// The service a registration names, if any.
fn registered_service(r: &Registration) -> Option<&ServiceRef> {
    match r {
        Registration::ContactGroup { .. } => None,
        Registration::Provides { service, .. }
        | Registration::DependsOn { service, .. }
        | Registration::Cluster { service, .. }
        | Registration::PassiveCheck { service, .. } => Some(service),
    }
}

/// Add (or take away) the service references of `bundle`'s objects.
fn count_references(refs: &mut FxHashMap<ServiceKey, u32>, bundle: &Bundle, add: bool) {
    for o in bundle {
        for (h, d) in service_references(o) {
            bump(refs, service_key(h, d), add);
        }
    }
}

/// A machine record the patch can take: parsed, with no error, every served
/// component translated with its translator available now.
fn clean_record<'a>(p: &Patcher<'_>, entry: &'a Entry) -> Option<&'a MachineRecord> {
    let rec = entry.record.as_ref().filter(|_| entry.profile_error.is_none())?;
    rec.components
        .iter()
        .all(|c| {
            c.translator.is_none()
                || (c.error.is_none() && c.good.is_some() && p.registry.unavailable_reason(&c.component).is_none())
        })
        .then_some(rec)
}

/// The parts of a clean record, in component order, as the full assembly keeps them.
fn parts_of(rec: &MachineRecord) -> Vec<Part<'_>> {
    rec.components
        .iter()
        .filter(|c| c.translator.is_some())
        .filter_map(|c| {
            Some(Part {
                component: &c.component,
                translated: c.good.as_ref()?,
            })
        })
        .collect()
}

/// What the parts define besides services (named objects and templates), sorted: this
/// must not change.
fn fixed_footprint<'a>(parts: &[Part<'a>]) -> Vec<DefKey<'a>> {
    let mut keys: Vec<DefKey<'a>> = parts
        .iter()
        .flat_map(|p| p.translated.fragments.iter())
        .filter_map(definition_key)
        .filter(|k| !matches!(k, DefKey::Service(..)))
        .collect();
    keys.sort();
    keys
}

/// The parts' own service dependencies as edges (dependent, master).
fn explicit_edges(parts: &[Part<'_>]) -> BTreeSet<(ServiceRef, ServiceRef)> {
    parts
        .iter()
        .flat_map(|p| p.translated.fragments.iter())
        .filter_map(crate::managers::dependencies::dependency_ends)
        .map(|(master, dependent)| (dependent, master))
        .collect()
}

/// Add (or take away) one to the count of `key`.
fn bump<K: std::hash::Hash + Eq>(counts: &mut FxHashMap<K, u32>, key: K, add: bool) {
    if add {
        *counts.entry(key).or_default() += 1;
    } else if let Some(n) = counts.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&key);
        }
    }
}

/// The services the parts define.
fn services_of<'a>(parts: &[Part<'a>]) -> Services<'a> {
    parts
        .iter()
        .flat_map(|p| p.translated.fragments.iter())
        .filter_map(|o| match definition_key(o) {
            Some(DefKey::Service(h, d)) => Some(((h, d), o)),
            _ => None,
        })
        .collect()
}

/// The parts' registrations, by component.
fn registrations<'a>(parts: &[Part<'a>]) -> Vec<(&'a str, &'a [Registration])> {
    parts
        .iter()
        .map(|p| (p.component, p.translated.registrations.as_slice()))
        .collect()
}

/// What the managers read of a service.
fn read_by_managers(o: &monitor_sdk::nagios::Object) -> [Option<&monitor_sdk::nagios::Value>; 3] {
    SERVICE_DIRECTIVES_READ.map(|d| o.get(d))
}

/// One changed machine.
struct Change<'a> {
    machine: &'a str,
    file: &'a Path,
    rec: &'a MachineRecord,
    old: Vec<Part<'a>>,
    new: Vec<Part<'a>>,
    /// The services the old and the new parts define.
    services_before: Services<'a>,
    services_after: Services<'a>,
    /// Their own dependency edges, before and after.
    edges_before: BTreeSet<(ServiceRef, ServiceRef)>,
    edges_after: BTreeSet<(ServiceRef, ServiceRef)>,
}

type Services<'a> = FxHashMap<(&'a str, &'a str), &'a monitor_sdk::nagios::Object>;

/// What patching an assembly reads of the engine.
pub(crate) struct Patcher<'a> {
    pub(crate) cache: &'a FragmentCache,
    pub(crate) registry: &'a Registry,
    pub(crate) status_services: bool,
    pub(crate) zones: &'a crate::zones::Zones,
    pub(crate) last_zones: &'a std::sync::Mutex<BTreeMap<String, String>>,
}

impl Patcher<'_> {
    /// Patch `last` with the fresh entries of this pass (file, entry it replaced). An error
    /// (why) when the patch cannot be shown to equal a full assembly; `last` is then spent.
    pub(crate) fn patch(
        &self,
        mut last: LastPass,
        changes: &[(PathBuf, Option<Entry>)],
    ) -> Result<LastPass, &'static str> {
        let t0 = std::time::Instant::now();
        let LastPass {
            output, report, delta, ..
        } = &mut last;
        let state = delta
            .as_mut()
            .ok_or("no incremental state: the last assembly had errors, or the state is off")?;

        // Each change must be one the patch can take.
        let mut work = Vec::new();
        for (file, old) in changes {
            let (old, new) = (
                old.as_ref().and_then(|o| clean_record(self, o)),
                self.cache.get(file).and_then(|e| clean_record(self, e)),
            );
            let (Some(old), Some(new)) = (old, new) else {
                return Err("a new machine, or a profile or translation error");
            };
            if old.machine != new.machine {
                return Err("a file now describes another machine");
            }
            match (old.components.is_empty(), new.components.is_empty()) {
                // Not monitored before or after: not part of the output.
                (true, true) => continue,
                (false, false) if state.machines.contains_key(&new.machine) => {}
                _ => return Err("a machine is monitored now and was not, or the reverse"),
            }
            let (old, new_parts) = (parts_of(old), parts_of(new));
            if registrations(&old) != registrations(&new_parts) || fixed_footprint(&old) != fixed_footprint(&new_parts)
            {
                return Err("registrations, or named objects or templates, changed");
            }
            let change = Change {
                machine: &new.machine,
                file,
                rec: new,
                services_before: services_of(&old),
                services_after: services_of(&new_parts),
                edges_before: explicit_edges(&old),
                edges_after: explicit_edges(&new_parts),
                old,
                new: new_parts,
            };
            // The services the managers read must be there before and after, with the same
            // values in the directives they read.
            let (before, after) = (&change.services_before, &change.services_after);
            for (key, o) in before.iter().chain(after.iter()) {
                let mine = Some(read_by_managers(o));
                let same = before.get(key).map(|o| read_by_managers(o)) == mine
                    && after.get(key).map(|o| read_by_managers(o)) == mine;
                if !same && state.registered_services.contains(&service_key(key.0, key.1)) {
                    return Err("a service that a registration names changed");
                }
            }
            work.push(change);
        }

        // Replace the changed machines' definitions: all the old ones out, then the new
        // ones in (a service may move between two changed machines).
        for c in &work {
            for p in &c.old {
                state
                    .defs
                    .undefine(&p.translated.fragments, &fragment_source(p.component, c.machine));
                count_references(&mut state.service_refs, &p.translated.fragments, false);
            }
            for (dependent, _) in &c.edges_before {
                bump(&mut state.dependents, ref_key(dependent), false);
            }
        }
        for c in &work {
            for p in &c.new {
                state
                    .defs
                    .define(&p.translated.fragments, &fragment_source(p.component, c.machine))
                    .map_err(|_| "a duplicate definition")?;
                count_references(&mut state.service_refs, &p.translated.fragments, true);
            }
            for (dependent, _) in &c.edges_after {
                bump(&mut state.dependents, ref_key(dependent), true);
            }
        }
        // The last assembly had no cycle, and a cycle through a new edge needs a way back
        // from its master: there is none when no edge leaves the master.
        for c in &work {
            for (_, master) in c.edges_after.difference(&c.edges_before) {
                if state.dependents.contains_key(&ref_key(master)) {
                    return Err("a new dependency may close a cycle");
                }
            }
        }
        for c in &work {
            for p in &c.new {
                if p.translated
                    .fragments
                    .iter()
                    .filter_map(definition_key)
                    .any(|k| state.cluster_keys.contains(&def_key(k)))
                {
                    return Err("a definition the cluster manager makes");
                }
                state
                    .defs
                    .check_references(&p.translated.fragments, "")
                    .map_err(|_| "an undefined reference")?;
            }
            // A service that went away must be referred to by nothing.
            for &(h, d) in c.services_before.keys().filter(|k| !c.services_after.contains_key(*k)) {
                if !state.defs.has_service(Some(h), Some(d)) && state.service_refs.contains_key(&service_key(h, d)) {
                    return Err("a removed service is still referred to");
                }
            }
        }

        // Render the changed machines and rebuild their shards.
        let mut dirty = BTreeSet::new();
        // The changed machines' new text, each on its own.
        let mut fresh: FxHashMap<&str, String> = FxHashMap::default();
        let mut listed = false;
        // A poisoned lock only means a panic elsewhere: the map itself is whole.
        let mut last_zones = self.last_zones.lock().unwrap_or_else(|e| e.into_inner());
        for c in &work {
            let placement = crate::zones::Placement {
                zones: self.zones,
                last: &last_zones,
            };
            if !matches!(
                placement.place(c.machine, c.rec.zone.as_deref()),
                crate::zones::Placed::In(_) | crate::zones::Placed::Nowhere
            ) {
                return Err("a machine names a zone the configuration does not have");
            }
            let mut text = String::new();
            let out = render_machine(
                self.status_services,
                &placement,
                &state.defs,
                ToRender {
                    machine: c.machine,
                    file: c.file,
                    rec: c.rec,
                    parts: &c.new,
                },
                &mut text,
            );
            if !out.errors.is_empty() {
                return Err("the engine's own objects for a machine are unsafe");
            }
            // Invariant: checked above that every changed machine is kept.
            let slot = state.machines.get_mut(c.machine).ok_or("a machine not kept")?;
            report.services = report.services - slot.services + out.services;
            listed |= slot.warnings != out.warnings || slot.unknown != out.unknown;
            if let Some(z) = &out.zone {
                last_zones.insert(c.machine.to_string(), z.clone());
            }
            *slot = out;
            dirty.insert(slot.shard);
            fresh.insert(c.machine, text);
        }
        drop(last_zones);
        // A dirty shard is its unchanged machines' text, taken from the file as it was,
        // and its changed machines' new text; every member's place in it is updated.
        for shard in dirty {
            let name = shard_file(shard);
            let old = output.files.get(&name).cloned().ok_or("a shard not kept")?;
            let mut text = String::with_capacity(old.len() + 4096);
            text.push_str(HEADER);
            for m in state.members.get(shard).ok_or("a shard not kept")? {
                let slot = state.machines.get_mut(m).ok_or("a machine not kept")?;
                let start = text.len();
                match fresh.get(m.as_str()) {
                    Some(new) => text.push_str(&new[slot.span.clone()]),
                    None => text.push_str(old.get(slot.span.clone()).ok_or("a machine's text not in its shard")?),
                }
                slot.span = start..text.len();
            }
            output.files.insert(name, text.into());
        }
        if listed {
            report.warnings = state.manager_warnings.clone();
            report.unknown_components.clear();
            for out in state.machines.values() {
                report.warnings.extend(out.warnings.iter().cloned());
                report.unknown_components.extend(out.unknown.iter().cloned());
            }
        }
        tracing::debug!(
            machines = work.len(),
            ms = t0.elapsed().as_secs_f64() * 1000.0,
            "incremental assembly"
        );
        Ok(last)
    }
}

/// The last assembly, and what the next pass needs to reuse or patch it.
pub(crate) struct LastPass {
    pub(crate) fingerprint: blake3::Hash,
    pub(crate) output: Output,
    pub(crate) report: PassReport,
    /// What the incremental path needs to patch this assembly; only kept for an
    /// assembly without errors.
    pub(crate) delta: Option<DeltaState>,
}
