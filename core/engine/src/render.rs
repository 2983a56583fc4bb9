//! Rendering: each machine's text in its shard file, the status services, and the
//! daemon's deploy service.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use monitor_sdk::helpers::DEFAULT_HOST;
use monitor_sdk::nagios::{Bundle, Host, ObjectKind, Value};
use monitor_sdk::translator::Registration;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::cache::MachineRecord;
use crate::checks::Definitions;
use crate::kept::{Kept, KeptEntry, Machines, Managed, Part, PassLevel};
use crate::layout::{
    ACL_FILE, BASE_FILE, CLUSTERS_FILE, CONTACTS_FILE, DEPENDENCIES_FILE, DEPLOY_FILE, FINISH_PASS_FILE, HEADER,
    MACHINE_SHARDS, Output, START_PASS_FILE, machine_file, shard_file, shard_of,
};

use crate::report::{PassReport, Phases, Problem, status_service_description};
use crate::zones::{Placed, Placement, hostgroup_of};

/// One kept machine, as [`render_machine`] takes it.
pub(crate) struct ToRender<'a, 'p> {
    pub(crate) machine: &'a str,
    /// Its profile file.
    pub(crate) file: &'a Path,
    pub(crate) rec: &'a MachineRecord,
    /// Its kept components' fragments.
    pub(crate) parts: &'a [Part<'p>],
}

/// One kept machine's text (host, fragments and status services), appended to its
/// shard file's `text`, and what it adds to the report. The full and the incremental
/// assembly both use it.
pub(crate) fn render_machine(
    status_services: bool,
    placement: &Placement<'_>,
    defs: &Definitions,
    m: ToRender<'_, '_>,
    text: &mut String,
) -> MachineOut {
    let ToRender {
        machine,
        file,
        rec,
        parts,
    } = m;
    let start = text.len();
    let mut out = MachineOut {
        span: start..start,
        shard: shard_of(machine),
        ..MachineOut::default()
    };
    for c in rec.components.iter().filter(|c| c.translator.is_none()) {
        out.unknown.push(
            Problem::new(format!("no translator for component {}", c.component))
                .file(file)
                .machine(machine)
                .component(&c.component),
        );
    }
    // Every byte the engine writes passes the same value rules as a translator's: the
    // machine name (checked when read, and again here), the host, the status services.
    let unsafe_output = |what: String| {
        Problem::new(format!("{what}; the machine is left out"))
            .file(file)
            .machine(machine)
    };
    if let Err(why) = lcfg_profile::check_host_name(machine) {
        out.errors
            .push(unsafe_output(format!("the machine name is not a host name: {why}")));
        return out;
    }
    // Only groups the user manager defined (it refuses a name Nagios cannot take).
    let groups: BTreeSet<&str> = parts
        .iter()
        .flat_map(|p| p.translated.registrations.iter())
        .filter_map(|r| match r {
            Registration::ContactGroup { group } => Some(group.as_str()),
            _ => None,
        })
        .filter(|g| defs.is_defined(ObjectKind::ContactGroup, g))
        .collect();
    let mut host = Host::new(DEFAULT_HOST)
        .host_name(machine)
        .alias(machine)
        .address(machine);
    if !groups.is_empty() {
        host = host.contact_groups(groups.iter().copied());
    }
    // A machine whose zone cannot be placed was left out before (`keep_fragments`), or
    // made the incremental path refuse.
    let zone = match placement.place(machine, rec.zone.as_deref()) {
        Placed::In(z) | Placed::Kept(z, _) => Some(z),
        Placed::Nowhere | Placed::Out(_) => None,
    };
    if let Some(z) = zone {
        host = host.set("hostgroups", Value::Names(vec![hostgroup_of(z)]));
        out.zone = Some(z.to_string());
    }
    if let Err(e) = host.object().check() {
        out.errors
            .push(unsafe_output(format!("its host object is unsafe: {e}")));
        return out;
    }
    text.push_str(&format!("# machine {machine}\n\n"));
    host.object().render_into(text);
    for p in parts {
        out.services += p
            .translated
            .fragments
            .iter()
            .filter(|o| o.kind == ObjectKind::Service && !o.is_template())
            .count();
        if p.translated.rendered.is_empty() && !p.translated.fragments.is_empty() {
            text.push_str(&p.translated.fragments.render());
        } else {
            text.push_str(&p.translated.rendered);
        }
        for w in &p.translated.warnings {
            out.warnings.push(
                Problem::new(w.clone())
                    .file(file)
                    .machine(machine)
                    .component(p.component),
            );
        }
    }
    if status_services {
        for c in rec.components.iter().filter(|c| c.translator.is_some()) {
            let regs = c.good.as_ref().map(|g| g.registrations.as_slice()).unwrap_or_default();
            let svc = status_service(machine, &c.component, regs, |g| {
                defs.is_defined(ObjectKind::ContactGroup, g)
            });
            if let Err(e) = svc.check() {
                out.errors.push(
                    Problem::new(format!("its status service is unsafe and is left out: {e}"))
                        .file(file)
                        .machine(machine)
                        .component(&c.component),
                );
                continue;
            }
            svc.render_into(text);
            out.services += 1;
        }
    }
    out.span = start..text.len();
    out
}

/// Add [`DEPLOY_FILE`] to `output`: the deploy service, on a compiled machine of the
/// configured name or on a virtual host of that name.
pub(crate) fn add_deploy_service(
    d: &DeployService,
    contacts: &[crate::users::ContactInfo],
    output: &mut Output,
    report: &mut PassReport,
) {
    let known: BTreeSet<&str> = contacts
        .iter()
        .flat_map(|c| c.groups.iter().map(String::as_str))
        .collect();
    let mut groups = Vec::new();
    for g in &d.contact_groups {
        if known.contains(g.as_str()) {
            groups.push(g.as_str());
        } else {
            report.warnings.push(Problem::new(format!(
                "admin_groups: contact group {g} is not in the users source; the deploy service does not notify it"
            )));
        }
    }
    let marker = format!("# machine {}\n\n", d.host);
    let compiled = output
        .files
        .get(&machine_file(&d.host))
        .is_some_and(|t| t.contains(&marker));
    let mut objects = Bundle::new();
    if !compiled {
        let mut host = Host::new(DEFAULT_HOST)
            .host_name(&d.host)
            .alias("monitor-compile on the monitoring server")
            .address("127.0.0.1")
            .set(
                "check_command",
                monitor_sdk::nagios::Value::Command(monitor_sdk::nagios::CheckCommand::new(
                    crate::base::CHECK_DUMMY_UP,
                )),
            );
        if !groups.is_empty() {
            host = host.contact_groups(groups.iter().copied());
        }
        objects.push(host);
    }
    let mut svc = monitor_sdk::helpers::passive_service(&d.host, DEPLOY_SERVICE, None).text(
        "notes",
        "Whether the daemon could deploy the latest configuration (held, rejected or deployed)",
    );
    if !groups.is_empty() {
        svc = svc.contact_groups(groups);
    }
    objects.push(svc);
    match objects.check() {
        Ok(()) => {
            output.files.insert(
                PathBuf::from(DEPLOY_FILE),
                format!("{HEADER}{}", objects.render()).into(),
            );
            report.services += 1;
        }
        Err(e) => report
            .errors
            .push(Problem::new(format!("the deploy service is left out: {e}"))),
    }
}

/// The passive service that carries a (machine, component)'s compile result.
pub(crate) fn status_service(
    machine: &str,
    component: &str,
    registrations: &[Registration],
    defined: impl Fn(&str) -> bool,
) -> monitor_sdk::nagios::Object {
    let groups: Vec<&str> = registrations
        .iter()
        .filter_map(|r| match r {
            Registration::ContactGroup { group } if defined(group) => Some(group.as_str()),
            _ => None,
        })
        .collect();
    let mut svc = monitor_sdk::helpers::passive_service(machine, &status_service_description(component), None).text(
        "notes",
        format!("Whether monitor-compile could translate the {component} component"),
    );
    if !groups.is_empty() {
        svc = svc.contact_groups(groups);
    }
    svc.into_object()
}

/// One kept machine's share of the output.
#[derive(Debug, Clone, Default)]
pub(crate) struct MachineOut {
    /// Where its text is in its shard file (the text is kept once, in the file).
    pub(crate) span: std::ops::Range<usize>,
    /// Its shard (see [`machine_file`]).
    pub(crate) shard: usize,
    /// Its services (the machine's own and its status services).
    pub(crate) services: usize,
    /// Its translators' warnings.
    pub(crate) warnings: Vec<Problem>,
    /// Its components that no translator serves.
    pub(crate) unknown: Vec<Problem>,
    /// What the engine's own objects for it could not write safely.
    pub(crate) errors: Vec<Problem>,
    /// Its zone, when zones are configured.
    pub(crate) zone: Option<String>,
}

/// The passive service that carries the daemon's deploy result (held, rejected, rolled
/// back or deployed), on the monitoring server's own host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployService {
    /// The host it belongs to: a compiled machine of that name, or else a virtual host
    /// of that name defined here.
    pub host: String,
    /// Contact groups notified (those the users source defines; others are warned about).
    pub contact_groups: Vec<String>,
}

/// The description of the daemon's deploy service.
pub const DEPLOY_SERVICE: &str = "monitor-compile: deploy";

/// The pass error for an output without a single service, which Nagios refuses to load.
pub const NO_SERVICE: &str = "the output defines no service, and Nagios refuses to start without one";

/// Phase 5: the output files, in output order, each bundle checked against the
/// definitions once more; the machines rendered in parallel into their shards.
// The phases hand their products on explicitly, each one named.
#[allow(clippy::too_many_arguments)]
pub(crate) fn render_output(
    status_services: bool,
    placement: &Placement<'_>,
    machines: &Machines<'_>,
    kept: &Kept<'_>,
    defs: &Definitions,
    level: &PassLevel,
    managed: &Managed,
    report: &mut PassReport,
    phase: &mut Phases,
) -> (BTreeMap<PathBuf, std::sync::Arc<str>>, BTreeMap<String, MachineOut>) {
    let PassLevel {
        base,
        start: start_ok,
        finish: finish_ok,
    } = level;
    let (users_out, clusters_out, deps_out, passive_out) = (
        &managed.users,
        &managed.clusters,
        &managed.dependencies,
        &managed.passive,
    );
    // Reference checks and rendering, in output order.
    fn checked(defs: &Definitions, b: &Bundle, source: &str, report: &mut PassReport) -> bool {
        match defs.check_references(b, source) {
            Ok(()) => true,
            Err(e) => {
                report.errors.push(Problem::new(format!("{source}: {e}")));
                false
            }
        }
    }
    let mut files_out = BTreeMap::new();
    checked(defs, base, "the base definitions", report);
    files_out.insert(PathBuf::from(BASE_FILE), format!("{HEADER}{}", base.render()).into());
    let mut text = String::from(HEADER);
    for (comp, b) in start_ok {
        if checked(defs, b, &format!("{comp} start_pass"), report) {
            text.push_str(&b.render());
        }
    }
    files_out.insert(PathBuf::from(START_PASS_FILE), text.into());

    let mut services = 0;
    // Machines go into hash-sharded files (see `machine_file`), sorted by name within
    // each; a change rewrites only its shard. Each shard is rendered (in name order) on
    // its own, straight into its file's text.
    let shard_count = MACHINE_SHARDS as usize;
    let mut by_shard: Vec<Vec<(&str, &KeptEntry<'_>)>> = vec![Vec::new(); shard_count];
    for (machine, entry) in kept.iter() {
        by_shard[shard_of(machine)].push((machine, entry));
    }
    let rendered: Vec<(String, Vec<(&str, MachineOut)>)> = by_shard
        .par_iter()
        .map(|members| {
            if members.is_empty() {
                return (String::new(), Vec::new());
            }
            let size: usize = members
                .iter()
                .flat_map(|(_, (_, parts))| parts.iter())
                .map(|p| p.translated.rendered.len())
                .sum();
            let mut text = String::with_capacity(HEADER.len() + size + 512 * members.len());
            text.push_str(HEADER);
            let outs = members
                .iter()
                .map(|&(machine, (file, parts))| {
                    let rec = machines[machine].1;
                    let out = render_machine(
                        status_services,
                        placement,
                        defs,
                        ToRender {
                            machine,
                            file,
                            rec,
                            parts,
                        },
                        &mut text,
                    );
                    (machine, out)
                })
                .collect();
            (text, outs)
        })
        .collect();
    phase.mark("render machines");
    let mut shards = Vec::with_capacity(shard_count);
    let mut outs: BTreeMap<String, MachineOut> = BTreeMap::new();
    for (text, members) in rendered {
        shards.push(text);
        outs.extend(members.into_iter().map(|(m, o)| (m.to_string(), o)));
    }
    // In name order, as the report has always listed them.
    for out in outs.values() {
        services += out.services;
        report.warnings.extend(out.warnings.iter().cloned());
        report.errors.extend(out.errors.iter().cloned());
        report.unknown_components.extend(out.unknown.iter().cloned());
    }
    files_out.extend(
        shards
            .into_iter()
            .enumerate()
            .filter(|(_, text)| !text.is_empty())
            .map(|(i, text)| (shard_file(i), text.into())),
    );
    report.machines = kept.len();

    files_out.insert(
        PathBuf::from(CONTACTS_FILE),
        format!("{HEADER}{}", users_out.objects.render()).into(),
    );
    let mut text = String::from(HEADER);
    if checked(defs, &clusters_out.objects, "the cluster manager", report) {
        services += clusters_out
            .objects
            .iter()
            .filter(|o| o.kind == ObjectKind::Service)
            .count();
        text.push_str(&clusters_out.objects.render());
    }
    files_out.insert(PathBuf::from(CLUSTERS_FILE), text.into());

    let mut text = String::from(HEADER);
    if checked(defs, &deps_out.objects, "the dependency manager", report) {
        text.push_str(&deps_out.objects.render());
    }
    files_out.insert(PathBuf::from(DEPENDENCIES_FILE), text.into());

    files_out.insert(PathBuf::from(ACL_FILE), passive_out.acl.as_str().into());
    let mut text = String::from(HEADER);
    for (comp, b) in finish_ok {
        if checked(defs, b, &format!("{comp} finish_pass"), report) {
            text.push_str(&b.render());
        }
    }
    files_out.insert(PathBuf::from(FINISH_PASS_FILE), text.into());
    report.services = services;
    (files_out, outs)
}
