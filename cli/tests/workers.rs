//! Plugin libraries in worker processes, with the real worker (this package's
//! `monitor-compile` binary) and real `.so` files built from the workspace: every way a
//! library can fail its worker fails only the (machine, component) in flight; its
//! machines keep their last good services and say why on their `monitoring:` services;
//! the worker comes back; a library whose worker dies three times in a row is broken
//! until its file changes; a library refused at load time is reported the same way.

use std::path::{Path, PathBuf};
use std::time::Duration;

use monitor_engine::{Engine, PassResult};
use monitor_integration_tests::{plugin_libs, profile_xml, samples};
use monitor_runtime::plugin_host::PluginSet;
use monitor_runtime::worker::WorkerSettings;

struct Site {
    _dir: tempfile::TempDir,
    profiles: PathBuf,
    libs: PathBuf,
    set: PluginSet,
    engine: Engine,
}

fn evil_xml(node: &str, mode: &str) -> String {
    profile_xml(
        node,
        "evil",
        &format!("   <evil><mode>{mode}</mode><nagios_groups>infrastructure</nagios_groups></evil>"),
    )
}

/// Write `text` as `file` so that the engine sees a change (a new inode).
fn write(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

impl Site {
    fn new(evil_lib: &Path) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let (profiles, libs) = (dir.path().join("profiles"), dir.path().join("libs"));
        std::fs::create_dir_all(&profiles).unwrap();
        std::fs::create_dir_all(&libs).unwrap();
        std::fs::copy(samples().join("jabber1.xml"), profiles.join("jabber1.xml")).unwrap();
        for node in ["evil1", "evil2"] {
            write(&profiles.join(format!("{node}.xml")), &evil_xml(node, "ok"));
        }
        std::fs::copy(&plugin_libs().jabberd, libs.join("jabberd.so")).unwrap();
        std::fs::copy(evil_lib, libs.join("evil.so")).unwrap();
        let mut settings = WorkerSettings::new(
            PathBuf::from(env!("CARGO_BIN_EXE_monitor-compile")),
            dir.path().join("copies"),
        );
        settings.call_timeout = Duration::from_secs(3);
        settings.pass_timeout = Duration::from_secs(10);
        settings.memory_mb = 512;
        settings.cpu_seconds = 20;
        let set = PluginSet::with_workers(vec![libs.clone()], settings);
        let mut engine = monitor_integration_tests::engine();
        engine.set_status_services(true);
        Site {
            _dir: dir,
            profiles,
            libs,
            set,
            engine,
        }
    }

    fn pass(&mut self) -> PassResult {
        monitor_compile::refresh_plugins(&mut self.set, &mut self.engine);
        let files = monitor_engine::find_profiles(&self.profiles).unwrap();
        self.engine.run_pass(&files).unwrap()
    }
}

fn text(r: &PassResult) -> String {
    r.output.files.values().map(|t| t.to_string()).collect()
}

/// The errors of the pass for `machine`.
fn errors_of(r: &PassResult, machine: &str) -> Vec<String> {
    r.report
        .errors
        .iter()
        .filter(|p| p.machine.as_deref() == Some(machine))
        .map(|p| p.message.clone())
        .collect()
}

/// The machine's `monitoring: evil` outcome errors (what its status service says).
fn outcome(site: &Site, r: &PassResult, machine: &str) -> Vec<String> {
    site.engine
        .outcomes(&r.report)
        .into_iter()
        .find(|o| o.machine == machine && o.component == "evil")
        .map(|o| o.errors)
        .unwrap_or_else(|| panic!("no evil outcome for {machine}"))
}

fn has_service(r: &PassResult, machine: &str, description: &str) -> bool {
    let t = text(r);
    t.split("define service {").any(|o| {
        o.contains(&format!("host_name                       {machine}\n"))
            && o.contains(&format!("service_description             {description}\n"))
    })
}

#[test]
fn every_failure_mode_fails_only_its_machine_and_the_worker_comes_back() {
    let mut site = Site::new(&plugin_libs().evil);
    let first = site.pass();
    assert!(first.report.errors.is_empty(), "{:?}", first.report.errors);
    assert!(has_service(&first, "evil1.example.org", "Evil"));
    let jabber_services = |r: &PassResult| has_service(r, "jabber1.example.org", "Jabber");
    assert!(jabber_services(&first));
    let modes: [(&str, &[&str]); 7] = [
        ("segv", &["was killed by SIGSEGV (segmentation fault)"]),
        ("abort", &["was killed by SIGABRT"]),
        ("stack", &["was killed by SIGSEGV", "was killed by SIGABRT"]),
        ("loop", &["did not answer within 3 s and was killed"]),
        (
            "alloc",
            &["was killed by SIGABRT (aborted: a failed allocation under the 512 MiB memory limit"],
        ),
        ("garbage", &["over the 268435456-byte limit and was killed"]),
        ("panic", &["translator panicked: evil panics on evil1.example.org"]),
    ];
    for (mode, expected) in modes {
        write(&site.profiles.join("evil1.xml"), &evil_xml("evil1", mode));
        // evil2 changes too: translated by the same library in the same batch, it is
        // answered by a worker started again after evil1's killed the first.
        write(
            &site.profiles.join("evil2.xml"),
            &evil_xml("evil2", &format!("ok-{mode}")),
        );
        // jabber1 changes in the same pass, and compiles.
        let jabber = std::fs::read_to_string(samples().join("jabber1.xml"))
            .unwrap()
            .replace("5222", if mode.len() % 2 == 0 { "5232" } else { "5242" });
        write(&site.profiles.join("jabber1.xml"), &jabber);
        let r = site.pass();
        let errors = errors_of(&r, "evil1.example.org");
        assert_eq!(errors.len(), 1, "{mode}: {errors:?}");
        assert!(
            expected.iter().any(|e| errors[0].contains(e)),
            "{mode}: {:?} says none of {expected:?}",
            errors[0]
        );
        assert!(
            errors[0].contains("keeping its last good configuration"),
            "{mode}: {}",
            errors[0]
        );
        // Its last good service stands; its status service says why.
        assert!(has_service(&r, "evil1.example.org", "Evil"), "{mode}");
        assert_eq!(outcome(&site, &r, "evil1.example.org"), errors, "{mode}");
        // Everything else compiled in the same pass.
        assert!(errors_of(&r, "jabber1.example.org").is_empty(), "{mode}");
        assert!(
            text(&r).contains(if mode.len() % 2 == 0 { "!5232" } else { "!5242" }),
            "{mode}"
        );
        assert!(outcome(&site, &r, "evil2.example.org").is_empty(), "{mode}");
        assert_eq!(r.report.errors.len(), 1, "{mode}: {:?}", r.report.errors);
        // Back to good: the worker is started again (after its backoff) and serves.
        write(&site.profiles.join("evil1.xml"), &evil_xml("evil1", "ok"));
        let r = site.pass();
        assert!(r.report.errors.is_empty(), "{mode}, after: {:?}", r.report.errors);
        assert!(outcome(&site, &r, "evil1.example.org").is_empty(), "{mode}");
    }
}

#[test]
fn three_deaths_in_a_row_break_the_library_until_its_file_changes() {
    let mut site = Site::new(&plugin_libs().evil);
    write(&site.profiles.join("evil3.xml"), &evil_xml("evil3", "ok"));
    assert!(site.pass().report.errors.is_empty());
    for node in ["evil1", "evil2", "evil3"] {
        write(&site.profiles.join(format!("{node}.xml")), &evil_xml(node, "segv"));
    }
    let r = site.pass();
    for node in ["evil1", "evil2", "evil3"] {
        let machine = format!("{node}.example.org");
        assert_eq!(errors_of(&r, &machine).len(), 1, "{node}: {:?}", r.report.errors);
        assert!(has_service(&r, &machine, "Evil"), "{node} keeps its last good service");
    }
    // The next pass knows the library is broken: it is not started again, and every
    // machine of its component says so, with its last good services.
    for node in ["evil1", "evil2", "evil3"] {
        write(&site.profiles.join(format!("{node}.xml")), &evil_xml(node, "ok"));
    }
    let r = site.pass();
    for node in ["evil1", "evil2", "evil3"] {
        let machine = format!("{node}.example.org");
        let errors = outcome(&site, &r, &machine);
        assert!(
            errors
                .iter()
                .any(|e| e.contains("its worker died 3 times in a row; the last time it was killed by SIGSEGV")),
            "{node}: {errors:?}"
        );
        assert!(has_service(&r, &machine, "Evil"), "{node} keeps its last good service");
    }
    assert!(
        r.report
            .errors
            .iter()
            .any(|p| p.message.starts_with("broken translator library: ")),
        "{:?}",
        r.report.errors
    );
    assert!(errors_of(&r, "jabber1.example.org").is_empty());
    // A new library file (another build) brings its machines back on the next pass.
    std::fs::copy(&plugin_libs().evil_v2, site.libs.join("evil.so")).unwrap();
    let r = site.pass();
    assert!(r.report.errors.is_empty(), "{:?}", r.report.errors);
    let ids: Vec<String> = site.engine.translators().map(|t| t.to_string()).collect();
    assert!(ids.iter().any(|t| t.starts_with("evil 1.0.1 (plugin ")), "{ids:?}");
}

#[test]
fn a_library_that_exits_in_start_pass_sits_out_and_a_good_one_brings_it_back() {
    let mut site = Site::new(&plugin_libs().evil);
    assert!(site.pass().report.errors.is_empty());
    std::fs::copy(&plugin_libs().evil_exit, site.libs.join("evil.so")).unwrap();
    write(&site.profiles.join("evil1.xml"), &evil_xml("evil1", "ok2"));
    let r = site.pass();
    let start = r
        .report
        .errors
        .iter()
        .map(|p| p.message.clone())
        .find(|m| m.contains("start_pass failed"));
    let start = start.unwrap_or_else(|| panic!("{:?}", r.report.errors));
    assert!(start.contains("exited with status 3"), "{start}");
    // Its machines keep their last good services, and say why.
    assert!(has_service(&r, "evil1.example.org", "Evil"));
    assert!(!outcome(&site, &r, "evil1.example.org").is_empty());
    assert!(errors_of(&r, "jabber1.example.org").is_empty());
    std::fs::copy(&plugin_libs().evil_v2, site.libs.join("evil.so")).unwrap();
    let r = site.pass();
    assert!(r.report.errors.is_empty(), "{:?}", r.report.errors);
}

#[test]
fn a_library_refused_at_load_time_is_reported_on_its_machines_status_services() {
    let mut site = Site::new(&plugin_libs().evil);
    assert!(site.pass().report.errors.is_empty());
    // The package of component evil now holds a library of another ABI.
    std::fs::copy(&plugin_libs().bad_abi, site.libs.join("evil.so")).unwrap();
    write(&site.profiles.join("evil1.xml"), &evil_xml("evil1", "ok2"));
    let r = site.pass();
    for node in ["evil1", "evil2"] {
        let machine = format!("{node}.example.org");
        let errors = outcome(&site, &r, &machine);
        assert!(
            errors.iter().any(|e| e.contains("built for plugin ABI version 999")),
            "{node}: {errors:?}"
        );
        assert!(has_service(&r, &machine, "Evil"), "{node} keeps its last good service");
        assert!(
            has_service(&r, &machine, "monitoring: evil"),
            "{node} has its status service"
        );
    }
    assert!(errors_of(&r, "jabber1.example.org").is_empty());
}
