//! The pre-flight against the real `nagios4 -v`, on random fragment mixes.
//!
//! Each case is a random fleet whose machines run two test translators (`fuzza` and
//! `fuzzb`). Every (machine, component) gets a random plan: services (on its own
//! template, another machine's template, a command defined elsewhere), templates,
//! commands, extra hosts, host and service groups, explicit dependencies across machines,
//! tags, clusters and passive checks. Faults are injected at random: duplicates, dangling
//! references, explicit and tag dependency cycles, bad registrations.
//!
//! The properties, for every case:
//! - the written output is accepted by the real `nagios4 -v` with 0 errors: whatever
//!   Nagios would reject, our checks caught first and left out;
//! - every injected fault is named in the report (its machine, or for a tag cycle the
//!   cycle);
//! - a planned service missing from the output belongs to a machine the report names:
//!   nothing is dropped silently;
//! - a case without faults has no errors, and all its services are written.
//!
//! CI runs a fixed seed. A longer run: `PREFLIGHT_SEED=<n> PREFLIGHT_CASES=<m> cargo
//! test -p monitor-integration-tests --test preflight -- --nocapture` (docs/PERFORMANCE.md
//! names the figures of the last long run).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use monitor_engine::base::BaseConfig;
use monitor_engine::users::TomlUsers;
use monitor_engine::{Engine, NO_SERVICE, PassReport, find_profiles};
use monitor_integration_tests::*;
use monitor_runtime::validate::validate_dir;
use monitor_runtime::writer::write_output;
use monitor_sdk::helpers::{DEFAULT_HOST, DEFAULT_SERVICE, service_dependency};
use monitor_sdk::nagios::{Bundle, CheckCommand, Command, Host, Object, ObjectKind, Service, Value};
use monitor_sdk::profile::Component;
use monitor_sdk::translator::{Context, TranslateError, Translator};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const COMPONENTS: [&str; 2] = ["fuzza", "fuzzb"];
/// Contact groups the sample users file has members for.
const GROUPS: [&str; 3] = ["kdc", "infrastructure", "www"];

type ServiceKey = (String, String);

#[derive(Clone, Debug)]
struct Svc {
    desc: String,
    template: String,
    command: String,
    groups: Vec<String>,
    passive: bool,
}

/// What one translator emits for one machine.
#[derive(Clone, Debug, Default)]
struct Plan {
    services: Vec<Svc>,
    /// Service templates: name, parent template.
    templates: Vec<(String, String)>,
    commands: Vec<String>,
    hosts: Vec<String>,
    hostgroups: Vec<(String, Vec<String>)>,
    servicegroups: Vec<(String, Vec<ServiceKey>)>,
    /// (master, dependent).
    dependencies: Vec<(ServiceKey, ServiceKey)>,
    /// (tag, own service description).
    provides: Vec<(String, String)>,
    depends: Vec<(String, String)>,
    /// (cluster, own service description, threshold).
    clusters: Vec<(String, String, Option<u32>)>,
    /// (own service description, identity).
    passive: Vec<(String, String)>,
    /// Registrations of services the bundle does not hold (a translator bug).
    stray_clusters: Vec<(String, String)>,
    contact_groups: Vec<String>,
}

type Plans = BTreeMap<(String, String), Plan>;

/// A fault injected into a case: what it is, and the machines of which at least one must
/// be named by an error. For a tag cycle, an error about the cycle does as well (a tag
/// cycle leaves out tag dependencies, not fragments).
#[derive(Clone, Debug)]
struct Fault {
    what: String,
    machines: BTreeSet<String>,
    tag_cycle: bool,
}

struct Fuzz {
    component: &'static str,
    plans: Arc<Plans>,
}

fn service_object(machine: &str, s: &Svc) -> Service {
    let svc = Service::new(&s.template)
        .host_name(machine)
        .service_description(&s.desc)
        .check_command(CheckCommand::new(&s.command).arg("1"))
        .contact_groups(s.groups.clone());
    if s.passive {
        svc.plain("active_checks_enabled", 0).plain("passive_checks_enabled", 1)
    } else {
        svc
    }
}

impl Translator for Fuzz {
    fn component(&self) -> &str {
        self.component
    }
    fn version(&self) -> &str {
        "1"
    }
    fn translate(&self, machine: &str, _: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
        let Some(plan) = self.plans.get(&(machine.to_string(), self.component.to_string())) else {
            return Ok(Bundle::new());
        };
        let mut b = Bundle::new();
        for g in &plan.contact_groups {
            ctx.add_contact_group(g);
        }
        for (name, parent) in &plan.templates {
            b.push(
                Service::new(parent)
                    .set("name", Value::Name(name.clone()))
                    .plain("register", 0),
            );
        }
        for c in &plan.commands {
            b.push(Command::new(c, "$USER1$/check_dummy '$ARG1$'"));
        }
        for h in &plan.hosts {
            b.push(Host::new(DEFAULT_HOST).host_name(h).address("127.0.0.1"));
        }
        for (name, members) in &plan.hostgroups {
            let mut o = Object::new(ObjectKind::HostGroup);
            o.set("hostgroup_name", Value::Name(name.clone()))
                .set("alias", Value::Text(name.clone()));
            if !members.is_empty() {
                o.set("members", Value::Names(members.clone()));
            }
            b.push(o);
        }
        for (name, members) in &plan.servicegroups {
            let mut o = Object::new(ObjectKind::ServiceGroup);
            o.set("servicegroup_name", Value::Name(name.clone()))
                .set("alias", Value::Text(name.clone()));
            if !members.is_empty() {
                let flat = members.iter().flat_map(|(h, d)| [h.clone(), d.clone()]).collect();
                o.set("members", Value::Names(flat));
            }
            b.push(o);
        }
        let mut own = BTreeMap::new();
        for s in &plan.services {
            let o = service_object(machine, s);
            own.entry(s.desc.clone()).or_insert_with(|| o.object().clone());
            b.push(o);
        }
        let find = |desc: &str| own.get(desc).cloned();
        for (tag, d) in &plan.provides {
            if let Some(o) = find(d) {
                ctx.add_provides(tag, &o)?;
            }
        }
        for (tag, d) in &plan.depends {
            if let Some(o) = find(d) {
                ctx.add_dependency(tag, &o)?;
            }
        }
        for (name, d, threshold) in &plan.clusters {
            if let Some(o) = find(d) {
                ctx.add_cluster(name, &o, *threshold)?;
            }
        }
        for (name, d) in &plan.stray_clusters {
            let stray = Service::new(DEFAULT_SERVICE)
                .host_name(machine)
                .service_description(d)
                .check_command(CheckCommand::new("mc-check-tcp").arg("1"));
            ctx.add_cluster(name, stray.object(), None)?;
        }
        for (d, identity) in &plan.passive {
            if let Some(o) = find(d) {
                ctx.add_passive_check(&o, identity)?;
            }
        }
        for ((mh, md), (dh, dd)) in &plan.dependencies {
            b.push(service_dependency(mh, md, dh, dd));
        }
        Ok(b)
    }
}

/// One random case: the plans and the faults injected into them.
struct Case {
    machines: Vec<String>,
    plans: Plans,
    faults: Vec<Fault>,
}

fn one(m: &str) -> BTreeSet<String> {
    BTreeSet::from([m.to_string()])
}

fn generate(rng: &mut ChaCha8Rng, case: usize, fault_rate: f64) -> Case {
    let n = rng.random_range(3..=14);
    let machines: Vec<String> = (0..n).map(|i| format!("c{case}m{i:02}.example.org")).collect();
    let mut plans: Plans = BTreeMap::new();
    let mut faults = Vec::new();
    let fault = |rng: &mut ChaCha8Rng| rng.random_bool(fault_rate);
    let mut all_services: Vec<ServiceKey> = Vec::new();
    let mut templates: Vec<String> = Vec::new();
    let mut commands: Vec<String> = vec!["mc-check-tcp".into()];

    // First the definitions, so that others can refer to them.
    for (mi, m) in machines.iter().enumerate() {
        let comps = if rng.random_bool(0.5) {
            &COMPONENTS[..]
        } else {
            &COMPONENTS[..1]
        };
        for comp in comps {
            let mut p = Plan::default();
            for t in 0..rng.random_range(0..=2) {
                let name = format!("t-{mi}-{comp}-{t}");
                // A parent: the default, or an earlier template (possibly another machine's).
                let parent = templates
                    .choose(rng)
                    .filter(|_| rng.random_bool(0.3))
                    .cloned()
                    .unwrap_or_else(|| DEFAULT_SERVICE.into());
                p.templates.push((name.clone(), parent));
                templates.push(name);
            }
            for c in 0..rng.random_range(0..=2) {
                let name = format!("cmd-{mi}-{comp}-{c}");
                p.commands.push(name.clone());
                commands.push(name);
            }
            if rng.random_bool(0.3) {
                p.hosts.push(format!("extra-{mi}-{comp}.example.org"));
            }
            let how_many = rng.random_range(1..=2);
            let groups: Vec<String> = GROUPS.choose_multiple(rng, how_many).map(|g| g.to_string()).collect();
            p.contact_groups = groups.clone();
            for s in 0..rng.random_range(1..=4) {
                let desc = if rng.random_bool(0.3) {
                    format!("Svc {comp} {s}")
                } else {
                    format!("svc-{comp}-{s}")
                };
                all_services.push((m.clone(), desc.clone()));
                p.services.push(Svc {
                    desc,
                    template: DEFAULT_SERVICE.into(),
                    command: "mc-check-tcp".into(),
                    groups: groups.clone(),
                    passive: rng.random_bool(0.2),
                });
            }
            plans.insert((m.clone(), comp.to_string()), p);
        }
    }
    let keys: Vec<(String, String)> = plans.keys().cloned().collect();
    let hosts_defined: Vec<String> = plans.values().flat_map(|p| p.hosts.clone()).collect();
    let cluster_names = ["alpha", "beta", "gamma"];
    let tags = ["tag-a", "tag-b", "tag-c", "tag-d"];
    let mut provided: BTreeSet<&str> = BTreeSet::new();
    for (ki, key) in keys.iter().enumerate() {
        let m = key.0.clone();
        let p = plans.get_mut(key).expect("a planned key");
        // Valid cross references: templates and commands defined anywhere.
        for s in p.services.iter_mut() {
            if rng.random_bool(0.15)
                && let Some(t) = templates.choose(rng)
            {
                s.template = t.clone();
            }
            if rng.random_bool(0.15)
                && let Some(c) = commands.choose(rng)
            {
                s.command = c.clone();
            }
        }
        let own: Vec<String> = p.services.iter().map(|s| s.desc.clone()).collect();
        if rng.random_bool(0.3) {
            let members: Vec<String> = std::iter::once(m.clone())
                .chain(hosts_defined.choose(rng).cloned())
                .collect();
            p.hostgroups.push((format!("hg-{ki}"), members));
        }
        if rng.random_bool(0.2) {
            let members = all_services.choose_multiple(rng, 2).cloned().collect();
            p.servicegroups.push((format!("sg-{ki}"), members));
        }
        // A dependency on some other service, only "forward" in the list of all services,
        // so that explicit dependencies alone form no cycle.
        if rng.random_bool(0.3) {
            let d = own.choose(rng).expect("a service").clone();
            let dependent = (m.clone(), d);
            let pos = all_services.iter().position(|s| *s == dependent).expect("listed");
            if let Some(master) = all_services[pos + 1..].choose(rng) {
                p.dependencies.push((master.clone(), dependent));
            }
        }
        if rng.random_bool(0.3) {
            let tag = *tags.choose(rng).expect("a tag");
            // One provider per tag; tags provided only by later keys are depended on by
            // earlier ones, so tags alone form no cycle.
            if provided.insert(tag) {
                p.provides.push((tag.to_string(), own[0].clone()));
            }
        }
        if rng.random_bool(0.2) {
            p.clusters.push((
                cluster_names.choose(rng).expect("a name").to_string(),
                own.choose(rng).expect("a service").clone(),
                None,
            ));
        }
        for s in p.services.iter().filter(|s| s.passive) {
            if rng.random_bool(0.7) {
                p.passive.push((s.desc.clone(), format!("host/{m}")));
            }
        }
    }
    // Tag dependencies: a key depends on a tag provided by a later key.
    let providers: BTreeMap<String, usize> = keys
        .iter()
        .enumerate()
        .flat_map(|(i, k)| plans[k].provides.iter().map(move |(t, _)| (t.clone(), i)))
        .collect();
    for (ki, key) in keys.iter().enumerate() {
        if rng.random_bool(0.3) {
            let later: Vec<&String> = providers.iter().filter(|(_, i)| **i > ki).map(|(t, _)| t).collect();
            if let Some(tag) = later.choose(rng) {
                let p = plans.get_mut(key).expect("a planned key");
                let d = p.services.last().expect("a service").desc.clone();
                p.depends.push(((*tag).clone(), d));
            }
        }
    }

    // Faults.
    for (ki, key) in keys.iter().enumerate() {
        let m = key.0.clone();
        if fault(rng) {
            let kind = rng.random_range(0..14);
            let p = plans.get_mut(key).expect("a planned key");
            let s0 = p.services[0].desc.clone();
            match kind {
                0 => {
                    p.services[0].command = format!("nocmd-{ki}");
                    faults.push(Fault {
                        what: "an undefined command".into(),
                        machines: one(&m),
                        tag_cycle: false,
                    });
                }
                1 => {
                    p.services[0].template = format!("notmpl-{ki}");
                    faults.push(Fault {
                        what: "an undefined template".into(),
                        machines: one(&m),
                        tag_cycle: false,
                    });
                }
                2 => {
                    p.services[0].groups.push(format!("nogroup-{ki}"));
                    faults.push(Fault {
                        what: "an undefined contact group".into(),
                        machines: one(&m),
                        tag_cycle: false,
                    });
                }
                3 => {
                    let dup = p.services[0].clone();
                    p.services.push(dup);
                    faults.push(Fault {
                        what: "a service defined twice".into(),
                        machines: one(&m),
                        tag_cycle: false,
                    });
                }
                4 => {
                    p.hosts.push(m.clone());
                    faults.push(Fault {
                        what: "a host of the machine's own name".into(),
                        machines: one(&m),
                        tag_cycle: false,
                    });
                }
                5 => {
                    p.servicegroups
                        .push((format!("sgx-{ki}"), vec![(m.clone(), "no such service".into())]));
                    faults.push(Fault {
                        what: "a servicegroup member that does not exist".into(),
                        machines: one(&m),
                        tag_cycle: false,
                    });
                }
                6 => {
                    p.dependencies
                        .push(((format!("nohost-{ki}.example.org"), "nothing".into()), (m.clone(), s0)));
                    faults.push(Fault {
                        what: "a dependency on an undefined service".into(),
                        machines: one(&m),
                        tag_cycle: false,
                    });
                }
                7 => {
                    p.hostgroups
                        .push((format!("hgx-{ki}"), vec![format!("nohost-{ki}.example.org")]));
                    faults.push(Fault {
                        what: "a hostgroup member that does not exist".into(),
                        machines: one(&m),
                        tag_cycle: false,
                    });
                }
                8 => {
                    p.stray_clusters.push(("alpha".into(), "not in the bundle".into()));
                    faults.push(Fault {
                        what: "a cluster member the bundle does not hold".into(),
                        machines: one(&m),
                        tag_cycle: false,
                    });
                }
                9 => {
                    p.passive.push((s0, "bad identity".into()));
                    faults.push(Fault {
                        what: "a passive identity with a space".into(),
                        machines: one(&m),
                        tag_cycle: false,
                    });
                }
                10..=13 => {
                    // Needs another key: duplicates across machines, or cycles.
                    let other = keys.choose(rng).expect("a key").clone();
                    if other == *key {
                        continue;
                    }
                    let om = other.0.clone();
                    let both = BTreeSet::from([m.clone(), om.clone()]);
                    match kind {
                        10 => {
                            let o = &plans[&other];
                            let Some(c) = o.commands.first().cloned() else { continue };
                            plans.get_mut(key).expect("a planned key").commands.push(c);
                            faults.push(Fault {
                                what: "a command defined twice".into(),
                                machines: both,
                                tag_cycle: false,
                            });
                        }
                        11 => {
                            let o = &plans[&other];
                            let Some(t) = o.templates.first().cloned() else {
                                continue;
                            };
                            plans.get_mut(key).expect("a planned key").templates.push(t);
                            faults.push(Fault {
                                what: "a template defined twice".into(),
                                machines: both,
                                tag_cycle: false,
                            });
                        }
                        12 => {
                            // An explicit cycle between two machines' services.
                            let a = (m.clone(), s0);
                            let b = (om.clone(), plans[&other].services[0].desc.clone());
                            plans
                                .get_mut(key)
                                .expect("a planned key")
                                .dependencies
                                .push((b.clone(), a.clone()));
                            plans.get_mut(&other).expect("a planned key").dependencies.push((a, b));
                            faults.push(Fault {
                                what: "an explicit dependency cycle".into(),
                                machines: both,
                                tag_cycle: false,
                            });
                        }
                        _ => {
                            // A tag cycle: each provides a tag the other depends on.
                            let (ta, tb) = (format!("cyc-{ki}-a"), format!("cyc-{ki}-b"));
                            let b_desc = plans[&other].services[0].desc.clone();
                            let p = plans.get_mut(key).expect("a planned key");
                            p.provides.push((ta.clone(), s0.clone()));
                            p.depends.push((tb.clone(), s0));
                            let o = plans.get_mut(&other).expect("a planned key");
                            o.provides.push((tb, b_desc.clone()));
                            o.depends.push((ta, b_desc));
                            faults.push(Fault {
                                what: "a tag dependency cycle".into(),
                                machines: both,
                                tag_cycle: true,
                            });
                        }
                    }
                }
                _ => unreachable!("kinds are 0..14"),
            }
        }
    }
    Case {
        machines,
        plans,
        faults,
    }
}

/// The (host, description) of every service in the output, from its text.
fn written_services(text: &str) -> BTreeSet<ServiceKey> {
    let mut out = BTreeSet::new();
    for block in text.split("define service {").skip(1) {
        let body = block.split("\n}").next().unwrap_or_default();
        let get = |d: &str| {
            body.lines()
                .find_map(|l| l.trim_start().strip_prefix(d).map(|v| v.trim().to_string()))
        };
        if let (Some(h), Some(s)) = (get("host_name "), get("service_description ")) {
            out.insert((h, s));
        }
    }
    out
}

fn named(report: &PassReport) -> BTreeSet<String> {
    report.errors.iter().filter_map(|e| e.machine.clone()).collect()
}

fn run_case(case_no: usize, case: &Case) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    for m in &case.machines {
        let node = m.trim_end_matches(".example.org");
        let comps: Vec<&str> = COMPONENTS
            .iter()
            .copied()
            .filter(|c| case.plans.contains_key(&(m.clone(), c.to_string())))
            .collect();
        let body: String = comps.iter().map(|c| format!("<{c}><x>1</x></{c}>")).collect();
        std::fs::write(
            dir.path().join(format!("{node}.xml")),
            profile_xml(node, &comps.join(" "), &body),
        )
        .map_err(|e| e.to_string())?;
    }
    let plans = Arc::new(case.plans.clone());
    let mut all = translators();
    for c in COMPONENTS {
        all.push(Box::new(Fuzz {
            component: c,
            plans: plans.clone(),
        }));
    }
    let mut engine = Engine::new(
        all,
        Box::new(TomlUsers::new(samples().join("users.toml"))),
        BaseConfig::default(),
    );
    let result = engine
        .run_pass(&find_profiles(dir.path()).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let report = &result.report;
    let out = output_dir();
    write_output(out.path(), &result.output).map_err(|e| e.to_string())?;
    let check = validate_dir(&nagios_bin(), out.path()).map_err(|e| e.to_string())?;
    let context = || {
        format!(
            "case {case_no}: faults {:#?}\nreport errors {:#?}\nplans {:#?}",
            case.faults, report.errors, case.plans
        )
    };
    // Every machine left out: Nagios refuses an output without services, and our report
    // said so first.
    let no_service = report.errors.iter().any(|e| e.message == NO_SERVICE);
    if no_service && check.errors == ["Error: There are no services defined!"] {
        return Ok(());
    }
    if !check.ok || !check.errors.is_empty() {
        return Err(format!(
            "nagios -v rejected what our checks passed: {:#?}\n{}",
            check.errors,
            context()
        ));
    }
    let names = named(report);
    for f in &case.faults {
        let seen = !f.machines.is_disjoint(&names)
            || (f.tag_cycle && report.errors.iter().any(|e| e.message.contains("circular")));
        if !seen {
            return Err(format!(
                "fault not reported: {} ({:?})\n{}",
                f.what,
                f.machines,
                context()
            ));
        }
    }
    let text: String = result.output.files.values().map(|t| &**t).collect();
    let written = written_services(&text);
    for ((m, _), p) in &case.plans {
        for s in &p.services {
            if !written.contains(&(m.clone(), s.desc.clone())) && !names.contains(m) {
                return Err(format!(
                    "service '{}' on {m} was left out, and no error names {m}\n{}",
                    s.desc,
                    context()
                ));
            }
        }
    }
    if case.faults.is_empty() && !report.errors.is_empty() {
        return Err(format!("errors without a fault\n{}", context()));
    }
    Ok(())
}

#[test]
fn random_fragment_mixes_pass_nagios_whenever_our_checks_pass_them() {
    let seed: u64 = std::env::var("PREFLIGHT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261203);
    let cases: usize = std::env::var("PREFLIGHT_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(150);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut faults, mut machines, mut clean) = (0, 0, 0);
    for case_no in 0..cases {
        // A few cases without faults, most with a handful.
        let rate = if case_no % 5 == 0 { 0.0 } else { 0.12 };
        let case = generate(&mut rng, case_no, rate);
        faults += case.faults.len();
        machines += case.machines.len();
        clean += usize::from(case.faults.is_empty());
        if let Err(e) = run_case(case_no, &case) {
            panic!("seed {seed}: {e}");
        }
    }
    eprintln!(
        "preflight: seed {seed}, {cases} cases, {machines} machines, {faults} faults, {clean} cases without faults"
    );
    assert!(faults > cases / 2, "the generator injects faults: {faults}");
}
