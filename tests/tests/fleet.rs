//! The fleet generator and the one-change scenario at a small scale: exactly one machine
//! is parsed and translated when one profile changes (counted, never timed).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use fleet::generate::{Spec, generate, touch, touch_one};
use monitor_core::base::BaseConfig;
use monitor_core::engine::{Engine, find_profiles};
use monitor_core::nagios::Bundle;
use monitor_core::profile::{Component, Select, read_profile};
use monitor_core::translator::{Context, TranslateError, Translator};
use monitor_core::users::TomlUsers;
use monitor_integration_tests::samples;

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
    let spec = Spec {
        machines: 60,
        avg_kb: 20,
        seed: 11,
    };
    let dir = tempfile::tempdir().unwrap();
    generate(&spec, dir.path()).unwrap();
    let files = find_profiles(dir.path()).unwrap();
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
