//! The full assembly: which file owns each machine, which fragments pass the checks,
//! the managers on the fragments that will be written, and the rendered output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use monitor_sdk::helpers::DEFAULT_HOST;
use monitor_sdk::nagios::{Bundle, Host, ObjectKind};
use rayon::prelude::*;

use crate::base::{BaseConfig, base_definitions, site_definitions};
use crate::cache::{FragmentCache, MachineRecord};
use crate::checks::Definitions;
use crate::incremental;
use crate::kept::{CLUSTER_SOURCE, Kept, Machines, Managed, Part, PassLevel, fragment_source, registered_of};
use crate::layout::Output;
use crate::managers::dependencies::Explicit;
use crate::managers::{Finding, ServiceIndex, clusters, dependencies, passive, users};
use crate::registry::Registry;
use crate::render::render_output;
use crate::report::{PassReport, Phases, Problem};
use crate::source::path_names_machine;
use crate::zones::{Placed, Placement, Zones};

/// What a full assembly reads of the engine: its cache, translators and settings, and the
/// record of which file owns each machine (the one state it updates).
pub(crate) struct Assembler<'a> {
    pub(crate) cache: &'a FragmentCache,
    pub(crate) registry: &'a Registry,
    pub(crate) base: &'a BaseConfig,
    pub(crate) owners: &'a std::sync::Mutex<BTreeMap<String, PathBuf>>,
    pub(crate) zones: &'a Zones,
    pub(crate) last_zones: &'a std::sync::Mutex<BTreeMap<String, String>>,
    pub(crate) bind_paths: bool,
    pub(crate) status_services: bool,
    pub(crate) incremental: bool,
}

impl Assembler<'_> {
    /// The full assembly, in its phases: [`claim_machines`](Self::claim_machines),
    /// [`define_pass_level`](Self::define_pass_level),
    /// [`keep_fragments`](Self::keep_fragments), [`run_managers`], then
    /// [`render_output`](Self::render_output) and, for a clean assembly, the state the
    /// incremental path patches. It reads the cache and the translators' output; it
    /// changes nothing but the record of which file owns each machine.
    pub(crate) fn assemble(
        &self,
        files: &[PathBuf],
        start: Vec<(String, Bundle)>,
        finish: Vec<(String, Bundle)>,
        contacts: &[crate::users::ContactInfo],
        report: &mut PassReport,
    ) -> (Output, Option<incremental::DeltaState>) {
        let machines = self.claim_machines(files, report);
        let mut phase = Phases::start();
        let (level, mut defs) = self.define_pass_level(start, finish, report);
        phase.mark("machines");
        let mut kept = self.keep_fragments(&machines, &mut defs, report);
        phase.mark("define");
        let managed = run_managers(&mut kept, &mut defs, &machines, contacts, report, &mut phase);
        phase.mark("managers");
        // A poisoned lock only means a panic elsewhere: the map itself is whole.
        let mut last_zones = self.last_zones.lock().unwrap_or_else(|e| e.into_inner());
        let placement = Placement {
            zones: self.zones,
            last: &last_zones,
        };
        let (files_out, outs) = render_output(
            self.status_services,
            &placement,
            &machines,
            &kept,
            &defs,
            &level,
            &managed,
            report,
            &mut phase,
        );
        phase.mark("render");
        *last_zones = outs
            .iter()
            .filter_map(|(m, o)| Some((m.clone(), o.zone.clone()?)))
            .collect();
        drop(last_zones);
        let PassLevel {
            base,
            start: start_ok,
            finish: finish_ok,
        } = level;
        let Managed {
            clusters: clusters_out,
            dependencies: deps_out,
            explicit,
            warnings: manager_warnings,
            ..
        } = managed;
        // Only an assembly without errors is patched later: the incremental path then
        // needs to show only that a change adds none.
        let delta = (self.incremental && report.errors.is_empty()).then(|| {
            let mut bundles: Vec<&Bundle> = vec![&base, &clusters_out.objects, &deps_out.objects];
            bundles.extend(start_ok.iter().chain(&finish_ok).map(|(_, b)| b));
            for (_, parts) in kept.values() {
                bundles.extend(parts.iter().map(|p| &p.translated.fragments));
            }
            incremental::DeltaState::new(
                defs,
                &clusters_out.objects,
                outs,
                &registered_of(&kept),
                &bundles,
                &explicit,
                manager_warnings,
            )
        });
        phase.mark("incremental state");
        phase.log("assembly");
        report.pass_phases = phase.times("assembly: ");
        (Output { files: files_out }, delta)
    }

    /// Phase 1: every monitored machine, sorted by name, from the one file that owns it
    /// (see [`resolve_claims`]); profile errors and unbound paths are reported here.
    pub(crate) fn claim_machines<'a>(&'a self, files: &'a [PathBuf], report: &mut PassReport) -> Machines<'a> {
        // Machines, sorted by name, each from the one file that owns it.
        let mut claims: BTreeMap<&str, Vec<(&Path, &MachineRecord)>> = BTreeMap::new();
        for file in files {
            let Some(entry) = self.cache.get(file) else {
                continue;
            };
            if let Some(err) = &entry.profile_error {
                let mut p = Problem::new(err.clone()).file(file).at(entry.profile_error_at.as_ref());
                if let Some(r) = &entry.record {
                    p = p.machine(&r.machine);
                }
                report.errors.push(p);
            }
            let Some(rec) = &entry.record else { continue };
            if self.bind_paths && !path_names_machine(file, &rec.machine) {
                report.errors.push(
                    Problem::new(format!(
                        "this file's path does not name machine {} (bind_paths): it is ignored",
                        rec.machine
                    ))
                    .file(file)
                    .machine(&rec.machine),
                );
                continue;
            }
            claims.entry(&rec.machine).or_default().push((file, rec));
        }
        // A poisoned lock only means a panic elsewhere: the map itself is whole.
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        let mut machines: BTreeMap<&str, (&Path, &MachineRecord)> = BTreeMap::new();
        for (machine, claimants) in claims {
            if let [only] = claimants[..] {
                machines.insert(machine, only);
                continue;
            }
            machines.extend(resolve_claims(machine, &claimants, owners.get(machine), report).map(|c| (machine, c)));
        }
        owners.clear();
        owners.extend(machines.iter().map(|(m, (f, _))| (m.to_string(), f.to_path_buf())));
        drop(owners);
        machines
    }

    /// Phase 2: define the base, the site's objects and the pass-level output.
    pub(crate) fn define_pass_level(
        &self,
        start: Vec<(String, Bundle)>,
        finish: Vec<(String, Bundle)>,
        report: &mut PassReport,
    ) -> (PassLevel, Definitions) {
        let mut base = base_definitions(self.base);
        for g in self.zones.hostgroups() {
            base.push(g);
        }
        let mut defs = Definitions::default();
        if let Err(e) = defs.define(&base, "the base definitions") {
            report.errors.push(Problem::new(e));
        }
        for (kind, name, template) in site_definitions(self.base) {
            defs.define_external(kind, &name, template, "the site (site_objects)");
        }
        let start_ok = accept_pass_output(&mut defs, start, "start_pass", report);
        let finish_ok = accept_pass_output(&mut defs, finish, "finish_pass", report);

        (
            PassLevel {
                base,
                start: start_ok,
                finish: finish_ok,
            },
            defs,
        )
    }

    /// Phase 3: per machine, the engine's host, then each component's last good fragment
    /// that defines without conflict; what cannot is reported for its (machine, component).
    pub(crate) fn keep_fragments<'a>(
        &self,
        machines: &Machines<'a>,
        defs: &mut Definitions,
        report: &mut PassReport,
    ) -> Kept<'a> {
        // Per machine: which components' fragments survive our checks.
        let mut kept: Kept<'_> = BTreeMap::new();
        // A poisoned lock only means a panic elsewhere: the map itself is whole.
        let last_zones = self.last_zones.lock().unwrap_or_else(|e| e.into_inner());
        let placement = Placement {
            zones: self.zones,
            last: &last_zones,
        };
        for (machine, (file, rec)) in machines {
            // A zone the configuration lacks: the machine stays in its last zone, or, new,
            // is left out (before the managers, which then never see its services).
            match placement.place(machine, rec.zone.as_deref()) {
                Placed::Kept(z, why) => report.errors.push(
                    Problem::new(format!("{why}; it stays in zone {z}, its zone in the last assembly"))
                        .file(file)
                        .machine(machine),
                ),
                Placed::Out(why) => {
                    report.errors.push(
                        Problem::new(format!("{why}; the machine is left out until its zone is fixed"))
                            .file(file)
                            .machine(machine),
                    );
                    continue;
                }
                Placed::In(_) | Placed::Nowhere => {}
            }
            let mut parts = Vec::new();
            // The engine's host for the machine is defined first: a translator that emits
            // a host of the machine's name is then an error for that component.
            if !rec.components.is_empty()
                && let Err(e) = defs.define(
                    &Bundle::new().with(Host::new(DEFAULT_HOST).host_name(*machine)),
                    "the engine",
                )
            {
                report.errors.push(Problem::new(e).file(file).machine(machine));
            }
            for c in &rec.components {
                if c.translator.is_some()
                    && let Some(reason) = self.registry.unavailable_reason(&c.component)
                {
                    report.errors.push(
                        Problem::new(format!(
                            "translator unavailable: {reason} (keeping the last good configuration)"
                        ))
                        .file(file)
                        .machine(machine)
                        .component(&c.component),
                    );
                } else if c.translator.is_none() {
                    // Reported with the machine's output (`render_machine`).
                    continue;
                }
                if let Some(e) = &c.error {
                    let kept_note = if c.good.is_some() {
                        " (keeping its last good configuration)"
                    } else {
                        ""
                    };
                    report.errors.push(
                        Problem::new(format!("{e}{kept_note}"))
                            .file(file)
                            .machine(machine)
                            .component(&c.component),
                    );
                }
                let Some(t) = &c.good else { continue };
                let source = fragment_source(&c.component, machine);
                match defs.define(&t.fragments, &source) {
                    Ok(()) => parts.push(Part {
                        component: &c.component,
                        translated: t,
                    }),
                    Err(e) => {
                        let by = c
                            .translator
                            .as_ref()
                            .map(|id| format!("translator {id}: "))
                            .unwrap_or_default();
                        report.errors.push(
                            Problem::new(format!("{by}{e}"))
                                .file(file)
                                .machine(machine)
                                .component(&c.component),
                        )
                    }
                }
            }
            if !rec.components.is_empty() {
                kept.insert(machine, (file, parts));
            }
        }
        drop(last_zones);
        kept
    }
}

/// Phase 4: the user manager on every registration; reference checks to a fixpoint (a
/// dropped fragment can break another); then the cluster, dependency and passive managers
/// on the surviving fragments only, again without any fragment left out for a cycle of
/// its own dependencies, until none is.
pub(crate) fn run_managers<'a>(
    kept: &mut Kept<'a>,
    defs: &mut Definitions,
    machines: &Machines<'_>,
    contacts: &[crate::users::ContactInfo],
    report: &mut PassReport,
    phase: &mut Phases,
) -> Managed {
    let file_of = |m: &Option<String>| m.as_deref().and_then(|m| machines.get(m)).map(|(f, _)| *f);
    let finding = |f: &Finding| Problem {
        file: file_of(&f.machine).map(Path::to_path_buf),
        machine: f.machine.clone(),
        component: f.component.clone(),
        message: f.message.clone(),
        ..Problem::default()
    };

    phase.mark("define");
    // Contact groups are defined by the user manager, from every registration.
    let users_out = {
        let registered = registered_of(kept);
        users::assemble(registered.iter().copied(), contacts)
    };
    for e in &users_out.errors {
        report.errors.push(Problem::new(e.clone()));
    }
    for g in &users_out.groups {
        defs.define_group(g);
    }

    phase.mark("users");
    // Reference checks, repeated until no fragment is dropped: a dropped fragment's
    // definitions may be what another fragment referred to. Only fragments that pass
    // feed the other managers. Checking is read-only: a first pass on every core says
    // whether anything fails at all (usually nothing does).
    let mut check = kept.values().collect::<Vec<_>>().par_iter().any(|(_, parts)| {
        parts
            .iter()
            .any(|p| defs.check_references(&p.translated.fragments, "").is_err())
    });
    // The managers run on the fragments that will be written. A translator's own
    // dependencies that form a cycle leave its fragment out; the managers then run
    // again without it (its services may be cluster members, tags or passive checks),
    // until no fragment is left out.
    let (clusters_out, deps_out, passive_out, explicit) = loop {
        while check {
            check = false;
            for (machine, (file, parts)) in kept.iter_mut() {
                parts.retain(|p| match defs.check_references(&p.translated.fragments, "") {
                    Ok(()) => true,
                    Err(e) => {
                        report
                            .errors
                            .push(Problem::new(e).file(file).machine(machine).component(p.component));
                        defs.undefine(&p.translated.fragments, &fragment_source(p.component, machine));
                        check = true;
                        false
                    }
                });
            }
        }
        phase.mark("checks");
        let (clusters_out, deps_out, passive_out, explicit) = {
            let registered = registered_of(kept);
            let mut services: ServiceIndex<'_> = ServiceIndex::default();
            let mut explicit = Vec::new();
            for (machine, (_, parts)) in kept.iter() {
                for p in parts {
                    for o in &p.translated.fragments {
                        match o.kind {
                            ObjectKind::Service if !o.is_template() => {
                                if let (Some(h), Some(d)) = (o.get_str("host_name"), o.get_str("service_description")) {
                                    services.insert((h, d), o);
                                }
                            }
                            ObjectKind::ServiceDependency => {
                                if let Some((master, dependent)) = dependencies::dependency_ends(o) {
                                    explicit.push(Explicit {
                                        master,
                                        dependent,
                                        machine: machine.to_string(),
                                        component: p.component.to_string(),
                                    });
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
            phase.mark("index");
            let clusters_out = clusters::assemble(&registered, &services);
            phase.mark("clusters");
            let deps_out = dependencies::assemble(&registered, &clusters_out.provides, &explicit);
            phase.mark("dependencies");
            let passive_out = passive::assemble(&registered, &services);
            phase.mark("passive");
            (clusters_out, deps_out, passive_out, explicit)
        };
        phase.mark("manager inputs dropped");
        if deps_out.cyclic_sources.is_empty() {
            break (clusters_out, deps_out, passive_out, explicit);
        }
        // The cycles are reported once, naming each fragment left out; the managers'
        // other findings come from the run on the survivors.
        for f in &deps_out.cycle_errors {
            report.errors.push(finding(f));
        }
        for (machine, component) in &deps_out.cyclic_sources {
            if let Some((_, parts)) = kept.get_mut(machine.as_str()) {
                parts.retain(|p| {
                    let cyclic = p.component == component;
                    if cyclic {
                        defs.undefine(&p.translated.fragments, &fragment_source(component, machine));
                    }
                    !cyclic
                });
            }
        }
        check = true;
    };
    for f in clusters_out
        .errors
        .iter()
        .chain(&deps_out.cycle_errors)
        .chain(&deps_out.errors)
        .chain(&passive_out.errors)
    {
        report.errors.push(finding(f));
    }
    for f in clusters_out.warnings.iter().chain(&deps_out.warnings) {
        report.warnings.push(finding(f));
    }
    let manager_warnings = report.warnings.clone();
    phase.mark("manager findings");
    let mut clusters_out = clusters_out;
    let mut deps_out = deps_out;
    for (name, b) in [
        ("the cluster manager", &mut clusters_out.objects),
        ("the dependency manager", &mut deps_out.objects),
    ] {
        if let Err(e) = b.check() {
            report
                .errors
                .push(Problem::new(format!("{name}: unsafe output left out: {e}")));
            *b = Bundle::new();
        }
    }
    phase.mark("manager output checked");
    if let Err(e) = defs.define(&clusters_out.objects, CLUSTER_SOURCE) {
        report.errors.push(Problem::new(e));
    }
    phase.mark("cluster objects defined");

    Managed {
        users: users_out,
        clusters: clusters_out,
        dependencies: deps_out,
        passive: passive_out,
        explicit,
        warnings: manager_warnings,
    }
}

/// Two or more files claim `machine`. Its owner in the last assembly keeps it; failing
/// that, the one file whose path names the machine (see [`path_names_machine`]); failing
/// that, nobody, until one claim remains. Every claimant gets an error, and so the
/// machine's own status services (whose contacts are the owner's) report the claim.
pub(crate) fn resolve_claims<'a>(
    machine: &str,
    claimants: &[(&'a Path, &'a MachineRecord)],
    previous: Option<&PathBuf>,
    report: &mut PassReport,
) -> Option<(&'a Path, &'a MachineRecord)> {
    let named: Vec<_> = claimants
        .iter()
        .filter(|(f, _)| path_names_machine(f, machine))
        .collect();
    let (chosen, why) = match claimants
        .iter()
        .find(|(f, _)| Some(*f) == previous.map(PathBuf::as_path))
    {
        Some(c) => (Some(*c), "owned it before"),
        None if named.len() == 1 => (Some(*named[0]), "is named for it"),
        None => (None, ""),
    };
    let list = |except: Option<&Path>| {
        claimants
            .iter()
            .filter(|(f, _)| Some(*f) != except)
            .map(|(f, _)| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (file, _) in claimants {
        let message = match chosen {
            Some((owner, _)) if owner == *file => format!(
                "machine {machine} is also claimed by {}; keeping this file's configuration, since this file {why}",
                list(Some(owner))
            ),
            Some((owner, _)) => format!(
                "this file claims machine {machine}, which {} owns; this file is ignored",
                owner.display()
            ),
            None => format!(
                "machine {machine} is claimed by {}, and none of them owned it before or is named for it: the machine is left out until one claim remains",
                list(None)
            ),
        };
        report.errors.push(Problem::new(message).file(file).machine(machine));
    }
    chosen
}

/// Check and define translators' `start_pass` or `finish_pass` output; a bundle that fails
/// is left out with an error for its translator.
pub(crate) fn accept_pass_output(
    defs: &mut Definitions,
    outputs: Vec<(String, Bundle)>,
    call: &str,
    report: &mut PassReport,
) -> Vec<(String, Bundle)> {
    let mut ok = Vec::new();
    for (comp, b) in outputs {
        match b
            .check()
            .map_err(|e| e.to_string())
            .and_then(|_| defs.define(&b, &format!("{comp} {call}")))
        {
            Ok(()) => ok.push((comp, b)),
            Err(e) => report
                .errors
                .push(Problem::new(format!("{call} output rejected: {e}")).component(&comp)),
        }
    }
    ok
}
