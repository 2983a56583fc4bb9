//! The fleet generator and the one-change scenario at a small scale: exactly one machine
//! is parsed and translated when one profile changes (counted, never timed).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use fleet::generate::{Spec, generate, touch, touch_one};
use lcfg_profile::{Component, Select, read_profile};
use monitor_engine::base::BaseConfig;
use monitor_engine::managers::clusters::{CLUSTER_HOST, cluster_service_description};
use monitor_engine::users::TomlUsers;
use monitor_engine::{Assembly, Engine, PassResult, find_profiles};
use monitor_integration_tests::samples;
use monitor_sdk::nagios::{Bundle, CheckCommand, Service};
use monitor_sdk::translator::{Context, TranslateError, Translator};

/// Wraps a translator and records the machines it translates.
struct Counting {
    inner: Box<dyn Translator>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Translator for Counting {
    fn component(&self) -> &str {
        self.inner.component()
    }
    fn version(&self) -> &str {
        self.inner.version()
    }
    fn start_pass(&mut self) -> Result<Bundle, TranslateError> {
        self.inner.start_pass()
    }
    fn translate(&self, machine: &str, c: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
        self.seen.lock().unwrap().push(machine.to_string());
        self.inner.translate(machine, c, ctx)
    }
}

#[test]
fn generated_fleet_is_realistic_and_reproducible() {
    let spec = Spec {
        machines: 40,
        avg_kb: 30,
        seed: 7,
    };
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let bytes = generate(&spec, a.path()).unwrap();
    generate(&spec, b.path()).unwrap();
    for f in find_profiles(a.path()).unwrap() {
        let name = f.file_name().unwrap();
        assert_eq!(
            std::fs::read(&f).unwrap(),
            std::fs::read(b.path().join(name)).unwrap(),
            "same seed, same bytes"
        );
    }
    assert!(bytes > 40 * 30 * 1000 / 2, "about the requested size: {bytes}");
    let kdc = read_profile(&a.path().join("m000000.xml"), Select::All).unwrap();
    assert_eq!(kdc.machine, "m000000.example.org");
    assert_eq!(kdc.monitored, ["kerberos"]);
    assert!(kdc.components().count() >= 38, "about 40 components");
    let web = read_profile(&a.path().join("m000012.xml"), Select::Monitoring).unwrap();
    assert_eq!(web.monitored, ["cosign", "apacheconf"]);
    assert!(
        web.component("apacheconf")
            .unwrap()
            .lookup("vhosts.v0.vhost_aliases.a.vhost_alias")
            .is_some(),
        "nested lists"
    );
    let text = std::fs::read_to_string(a.path().join("m000003.xml")).unwrap();
    assert!(text.matches("<package ").count() >= 500, "500 to 2,000 packages");
    assert!(!text.contains("<node>"), "every resource has a derivation");
    // touch makes real content changes.
    let before = std::fs::read(a.path().join("m000005.xml")).unwrap();
    touch_one(&spec, a.path(), 5, 1).unwrap();
    assert_ne!(std::fs::read(a.path().join("m000005.xml")).unwrap(), before);
    assert_eq!(touch(&spec, a.path(), 10, 3).unwrap().len(), 10);
}

#[test]
fn one_change_parses_and_translates_exactly_one_machine() {
    let (spec, dir, files) = small_fleet();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let translators: Vec<Box<dyn Translator>> = fleet::translators()
        .into_iter()
        .map(|inner| {
            Box::new(Counting {
                inner,
                seen: seen.clone(),
            }) as Box<dyn Translator>
        })
        .collect();
    let mut engine = Engine::new(
        translators,
        Box::new(TomlUsers::new(samples().join("users.toml"))),
        BaseConfig::default(),
    );
    let cold = engine.run_pass(&files).unwrap();
    assert!(cold.report.errors.is_empty(), "{:#?}", cold.report.errors);
    assert_eq!(cold.report.parsed, 60);
    let unchanged = engine.run_pass(&files).unwrap();
    assert_eq!((unchanged.report.parsed, unchanged.report.translated), (0, 0));

    seen.lock().unwrap().clear();
    // Machine 12 is a web server: cosign and apacheconf.
    touch_one(&spec, dir.path(), 12, 1).unwrap();
    let one = engine.run_pass(&files).unwrap();
    assert_eq!(one.report.parsed, 1, "exactly one profile parsed");
    assert_eq!(one.report.translated, 2, "its two components translated");
    let machines: BTreeSet<String> = seen.lock().unwrap().iter().cloned().collect();
    assert_eq!(machines, BTreeSet::from(["m000012.example.org".to_string()]));
}

/// What a full and an incremental assembly must agree on.
fn assembled(r: &PassResult) -> impl PartialEq + std::fmt::Debug {
    let p = &r.report;
    (
        r.output.clone(),
        p.machines,
        p.services,
        p.errors.clone(),
        p.warnings.clone(),
        p.unknown_components.clone(),
    )
}

fn fleet_engine() -> Engine {
    Engine::new(
        fleet::translators(),
        Box::new(TomlUsers::new(samples().join("users.toml"))),
        BaseConfig::default(),
    )
}

/// A generated fleet of 60 machines (three blocks of every role) in a temporary
/// directory, with its files.
fn small_fleet() -> (Spec, tempfile::TempDir, Vec<std::path::PathBuf>) {
    let spec = Spec {
        machines: 60,
        avg_kb: 20,
        seed: 11,
    };
    let dir = tempfile::tempdir().unwrap();
    generate(&spec, dir.path()).unwrap();
    let files = find_profiles(dir.path()).unwrap();
    (spec, dir, files)
}

/// One step's change to the fleet.
enum Change {
    /// `touch_one(machine, round)`.
    Touch(usize, u64),
    /// `touch(count, round)`.
    TouchMany(usize, u64),
    /// Replace the first `.1` by `.2` in profile `.0`.
    Edit(usize, &'static str, &'static str),
}

/// Replace `from` by `to` in profile `i`.
fn edit(dir: &Path, i: usize, from: &str, to: &str) {
    let path = dir.join(format!("m{i:06}.xml"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{from} in {}", path.display());
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn incremental_assembly_equals_a_full_assembly() {
    incremental_equals_full(false);
}

#[test]
fn incremental_assembly_equals_a_full_assembly_with_status_services() {
    incremental_equals_full(true);
}

/// Run a series of changes through one long-lived engine and compare each pass with a
/// new engine's full assembly of the same files (`status`: the daemon's status services).
fn incremental_equals_full(status: bool) {
    let fleet_engine = || {
        let mut e = fleet_engine();
        e.set_status_services(status);
        e
    };
    let (spec, dir, files) = small_fleet();
    let mut engine = fleet_engine();
    let cold = engine.run_pass(&files).unwrap();
    assert_eq!(cold.report.assembly, Assembly::Full);
    assert!(cold.report.errors.is_empty(), "{:#?}", cold.report.errors);
    let mut previous = cold;

    // Each step changes profiles, then the long-lived engine's pass must equal a new
    // engine's full assembly of the same files, and take the expected path.
    use Assembly::{Full, Incremental};
    use Change::{Edit, Touch, TouchMany};
    let steps = [
        ("a check argument (cosignd port)", Touch(12, 1), Incremental),
        (
            "a new virtual host: a new service and a new dependency",
            Touch(13, 0),
            Incremental,
        ),
        ("the virtual host removed again", Touch(13, 1), Incremental),
        ("ten machines of every role", TouchMany(10, 5), Incremental),
        (
            "a component without a translator",
            Edit(14, ">cosign apacheconf<", ">cosign apacheconf ntp<"),
            Incremental,
        ),
        (
            "only unmonitored resources",
            Edit(3, "<server_version>4.1.3<", "<server_version>4.1.4<"),
            Incremental,
        ),
        (
            "new contact groups: the managers' input changes",
            Edit(0, ">kdc infrastructure<", ">kdc infrastructure www<"),
            Full,
        ),
        ("a broken profile", Edit(15, "</cosign>", "</cosignx>"), Full),
        ("another change while one profile is broken", Touch(14, 1), Full),
        ("the broken profile mended", Edit(15, "</cosignx>", "</cosign>"), Full),
        ("a change after mending", Touch(32, 0), Incremental),
    ];
    for (what, change, expected) in steps {
        match change {
            Touch(i, round) => drop(touch_one(&spec, dir.path(), i, round).unwrap()),
            TouchMany(count, round) => drop(touch(&spec, dir.path(), count, round).unwrap()),
            Edit(i, from, to) => edit(dir.path(), i, from, to),
        }
        let pass = engine.run_pass(&files).unwrap();
        let full = fleet_engine().run_pass(&files).unwrap();
        assert_eq!(full.report.assembly, Assembly::Full);
        assert_eq!(pass.report.assembly, expected, "{what}: {:#?}", pass.report.errors);
        let differ = |a: &PassResult, b: &PassResult| -> Vec<String> {
            let mut names: BTreeSet<&Path> = a.output.files.keys().map(|p| p.as_path()).collect();
            names.extend(b.output.files.keys().map(|p| p.as_path()));
            names
                .into_iter()
                .filter(|f| a.output.files.get(*f) != b.output.files.get(*f))
                .map(|f| f.display().to_string())
                .collect()
        };
        // While a profile is broken its machine keeps its last good configuration, which
        // a new engine never saw: the long-lived engine reports it instead.
        if what == "a broken profile" || what.starts_with("another change while") {
            assert!(
                pass.report
                    .errors
                    .iter()
                    .any(|e| e.machine.as_deref() == Some("m000015.example.org")),
                "{what}: {:#?}",
                pass.report.errors
            );
            assert!(
                full.report
                    .errors
                    .iter()
                    .any(|e| e.machine.is_none() && e.file.as_ref().is_some_and(|f| f.ends_with("m000015.xml")))
            );
            assert!(
                (pass.output == previous.output) == (what == "a broken profile"),
                "{what}: the broken machine keeps its output; another change shows"
            );
            previous = pass;
            continue;
        }
        assert!(
            assembled(&pass) == assembled(&full),
            "{what}: not the same as a full assembly: files {:?}, reports {:#?} and {:#?}",
            differ(&pass, &full),
            pass.report,
            full.report
        );
        let same_output = what.starts_with("only unmonitored");
        assert_eq!(
            assembled(&pass) == assembled(&previous),
            same_output,
            "{what}: the step changes the output or the report (or not)"
        );
        if expected == Assembly::Incremental {
            let changed: Vec<_> = pass
                .output
                .files
                .iter()
                .filter(|(f, text)| previous.output.files.get(*f) != Some(*text))
                .map(|(f, _)| f.clone())
                .collect();
            assert!(
                changed.iter().all(|f| f.starts_with("20-machines")),
                "{what}: only machine shards change: {changed:?}"
            );
        }
        previous = pass;
    }
    let again = engine.run_pass(&files).unwrap();
    assert_eq!(again.report.assembly, Assembly::Reused);
    assert_eq!(assembled(&again), assembled(&previous));
}

/// A translator whose service may depend on a cluster's service (`watch`: the cluster's
/// name): a reference to an object only the cluster manager defines.
struct ClusterWatcher;

impl Translator for ClusterWatcher {
    fn component(&self) -> &str {
        "clusterwatch"
    }
    fn version(&self) -> &str {
        "1"
    }
    fn translate(&self, machine: &str, c: &Component, _ctx: &mut Context) -> Result<Bundle, TranslateError> {
        let mut b = Bundle::new().with(
            Service::new("mc-default-service")
                .host_name(machine)
                .service_description("Cluster watcher")
                .check_command(CheckCommand::new("mc-check-host-alive")),
        );
        if let Some(cluster) = c.get_nonempty("watch") {
            b.push(monitor_sdk::helpers::service_dependency(
                CLUSTER_HOST,
                &cluster_service_description(cluster),
                machine,
                "Cluster watcher",
            ));
        }
        Ok(b)
    }
}

#[test]
fn a_reference_to_a_cluster_object_is_left_to_the_full_assembly() {
    let (_, dir, files) = small_fleet();
    // Machine 12 also runs the watcher, watching nothing yet.
    edit(
        dir.path(),
        12,
        ">cosign apacheconf<",
        ">cosign apacheconf clusterwatch<",
    );
    edit(
        dir.path(),
        12,
        "   <nagios_client>",
        "   <clusterwatch>\n    <watch></watch>\n   </clusterwatch>\n   <nagios_client>",
    );
    let engine = || {
        let mut translators = fleet::translators();
        translators.push(Box::new(ClusterWatcher));
        Engine::new(
            translators,
            Box::new(TomlUsers::new(samples().join("users.toml"))),
            BaseConfig::default(),
        )
    };
    let mut long_lived = engine();
    let cold = long_lived.run_pass(&files).unwrap();
    assert!(cold.report.errors.is_empty(), "{:#?}", cold.report.errors);
    assert!(cold.output.files.values().any(|t| t.contains("Cluster watcher")));

    // Now it depends on a cluster's service. A full assembly checks machines before the
    // cluster manager defines its objects, so this is an error there; the patch must not
    // accept it either.
    edit(
        dir.path(),
        12,
        "<watch></watch>",
        "<watch>kdc-REALM0.EXAMPLE.ORG</watch>",
    );
    let pass = long_lived.run_pass(&files).unwrap();
    let full = engine().run_pass(&files).unwrap();
    assert_eq!(pass.report.assembly, Assembly::Full);
    assert!(
        pass.report
            .errors
            .iter()
            .any(|e| e.machine.as_deref() == Some("m000012.example.org")
                && e.component.as_deref() == Some("clusterwatch")
                && e.message.contains("undefined service 'Cluster kdc-REALM0.EXAMPLE.ORG'")),
        "{:#?}",
        pass.report.errors
    );
    assert!(assembled(&pass) == assembled(&full), "the same as a full assembly");
}

#[test]
fn without_incremental_state_every_change_assembles_in_full() {
    let (spec, dir, files) = small_fleet();
    let mut engine = fleet_engine();
    engine.set_incremental(false);
    engine.run_pass(&files).unwrap();
    assert_eq!(engine.run_pass(&files).unwrap().report.assembly, Assembly::Reused);
    touch_one(&spec, dir.path(), 12, 1).unwrap();
    let pass = engine.run_pass(&files).unwrap();
    assert_eq!(pass.report.assembly, Assembly::Full);
    let full = fleet_engine().run_pass(&files).unwrap();
    assert!(assembled(&pass) == assembled(&full));
}
