//! The fixtures of `incremental_refusals.rs`: the test translator `Probe`, its profiles,
//! and a fixture directory with the assertions the tests share.

#![allow(dead_code)]

use monitor_engine::base::BaseConfig;
use monitor_engine::users::{ContactInfo, StaticUsers};
use monitor_engine::{Assembly, Engine, PassResult};
use monitor_sdk::helpers::{DEFAULT_SERVICE, handle_contacts, resource_list, service_dependency};
use monitor_sdk::nagios::{Bundle, CheckCommand, Command, Object, ObjectKind, Service, Value};
use monitor_sdk::names::CHECK_TCP;
use monitor_sdk::profile::Component;
use monitor_sdk::translator::{Context, TranslateError, Translator};
use std::path::{Path, PathBuf};

/// The test translator. For component `svc` (or another name), from its resources:
///
/// - `port` (required): the service `Main`, checked by `mc-check-tcp!PORT`, notifying
///   `nagios_groups` (required, registered as contact groups);
/// - `command`: another check command for `Main`;
/// - `passive` = `1`: `Main` has `active_checks_enabled 0` (a directive managers read);
/// - `cluster`: `Main` is a member of that cluster;
/// - `extra`: space-separated names; a service `Extra NAME` on this machine for each;
/// - `also_host` and `also_desc`: a service of that description on that host;
/// - `after_host` and `after_desc`: `Main` depends on that service (`servicedependency`);
/// - `template`: a service template of that name;
/// - `named_command`: a command of that name.
pub struct Probe {
    pub component: &'static str,
    /// `finish_pass` fails (every pass).
    pub finish_fails: bool,
}

pub fn probe(component: &'static str) -> Box<dyn Translator> {
    Box::new(Probe {
        component,
        finish_fails: false,
    })
}

impl Translator for Probe {
    fn component(&self) -> &str {
        self.component
    }

    fn version(&self) -> &str {
        "1"
    }

    fn finish_pass(&mut self) -> Result<Bundle, TranslateError> {
        if self.finish_fails {
            Err(TranslateError::Other("the probe's finish_pass fails".into()))
        } else {
            Ok(Bundle::new())
        }
    }

    fn translate(&self, machine: &str, c: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
        let port = c.get_nonempty("port").ok_or_else(|| TranslateError::missing("port"))?;
        let groups = handle_contacts(c, ctx)?;
        let command = c.get_nonempty("command").unwrap_or(CHECK_TCP);
        let mut main = Service::new(DEFAULT_SERVICE)
            .host_name(machine)
            .service_description("Main")
            .check_command(CheckCommand::new(command).arg(port))
            .contact_groups(groups.clone());
        if c.get("passive") == Some("1") {
            main = main.plain("active_checks_enabled", 0);
        }
        if let Some(cluster) = c.get_nonempty("cluster") {
            ctx.add_cluster(cluster, main.object(), None)?;
        }
        let mut b = Bundle::new().with(main);
        for name in resource_list(c, "extra") {
            b.push(
                Service::new(DEFAULT_SERVICE)
                    .host_name(machine)
                    .service_description(format!("Extra {name}"))
                    .check_command(CheckCommand::new(CHECK_TCP).arg(port))
                    .contact_groups(groups.clone()),
            );
        }
        if let (Some(host), Some(desc)) = (c.get_nonempty("also_host"), c.get_nonempty("also_desc")) {
            b.push(
                Service::new(DEFAULT_SERVICE)
                    .host_name(host)
                    .service_description(desc)
                    .check_command(CheckCommand::new(CHECK_TCP).arg(port))
                    .contact_groups(groups.clone()),
            );
        }
        if let (Some(host), Some(desc)) = (c.get_nonempty("after_host"), c.get_nonempty("after_desc")) {
            b.push(service_dependency(host, desc, machine, "Main"));
        }
        if let Some(name) = c.get_nonempty("template") {
            let mut t = Object::new(ObjectKind::Service);
            t.set("name", Value::Name(name.into()));
            t.set("register", Value::Plain("0".into()));
            b.push(t);
        }
        if let Some(name) = c.get_nonempty("named_command") {
            b.push(Command::new(name, "$USER1$/check_dummy 0"));
        }
        Ok(b)
    }
}

/// The usual translators: `svc` and `aux` (which no fixture configures unless it says so).
pub fn translators() -> Vec<Box<dyn Translator>> {
    vec![probe("svc"), probe("aux")]
}

/// The usual translators and one whose `finish_pass` fails on every pass.
pub fn translators_with_failing_finish() -> Vec<Box<dyn Translator>> {
    let mut t = translators();
    t.push(Box::new(Probe {
        component: "finisher",
        finish_fails: true,
    }));
    t
}

pub fn users() -> Box<StaticUsers> {
    Box::new(StaticUsers(vec![ContactInfo {
        name: "alice".into(),
        alias: None,
        email: Some("alice@example.org".into()),
        groups: vec!["ops".into(), "dev".into()],
        xmpp: None,
        slack: None,
    }]))
}

pub fn engine_with(translators: fn() -> Vec<Box<dyn Translator>>) -> Engine {
    Engine::new(translators(), users(), BaseConfig::default())
}

/// A profile for machine `node`.example.org monitoring `components`, with the `svc`
/// resources `port` 80 and `nagios_groups` ops unless `svc` gives them, then `svc`'s.
pub fn profile_of(node: &str, components: &str, svc: &[(&str, &str)]) -> String {
    let mut resources: Vec<(&str, &str)> = vec![("port", "80"), ("nagios_groups", "ops")];
    for (k, v) in svc {
        match resources.iter_mut().find(|(n, _)| n == k) {
            Some(r) => r.1 = v,
            None => resources.push((k, v)),
        }
    }
    let svc: String = resources.iter().map(|(k, v)| format!("<{k}>{v}</{k}>")).collect();
    format!(
        r#"<?xml version="1.0"?><profile xmlns:cfg="http://www.lcfg.org/namespace/profile-1.0"><lcfg><components><profile><node>{node}</node><domain>example.org</domain></profile><svc>{svc}</svc><nagios_client><components>{components}</components></nagios_client></components></lcfg></profile>"#
    )
}

/// A profile monitoring `svc` only.
pub fn profile(node: &str, svc: &[(&str, &str)]) -> String {
    profile_of(node, "svc", svc)
}

/// (Re)write a file through a new inode, so that the engine's cheap change test (size,
/// times, inode) always sees the change.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// A fixture: profiles in a temporary directory and a long-lived engine.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub files: Vec<PathBuf>,
    pub translators: fn() -> Vec<Box<dyn Translator>>,
    pub engine: Engine,
}

impl Fixture {
    /// The profiles `(file name, text)`, and an engine of `translators` that has not yet
    /// run a pass.
    pub fn new(translators: fn() -> Vec<Box<dyn Translator>>, profiles: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let files = profiles.iter().map(|(n, t)| write(dir.path(), n, t)).collect();
        Fixture {
            dir,
            files,
            translators,
            engine: engine_with(translators),
        }
    }

    /// The profiles, and a first (full) pass of the long-lived engine, without errors:
    /// it leaves the incremental state that the next pass may patch.
    pub fn clean(profiles: &[(&str, String)]) -> Self {
        let mut f = Fixture::new(translators, profiles);
        let first = f.pass();
        assert_eq!(first.report.assembly, Assembly::Full);
        assert!(first.report.errors.is_empty(), "{:#?}", first.report.errors);
        f
    }

    /// Rewrite (or add) a profile; a new file joins the pass.
    pub fn edit(&mut self, name: &str, text: String) {
        let path = write(self.dir.path(), name, &text);
        if !self.files.contains(&path) {
            self.files.push(path);
        }
    }

    /// A pass of the long-lived engine.
    pub fn pass(&mut self) -> PassResult {
        self.engine.run_pass(&self.files).unwrap()
    }

    /// A new engine's (full) assembly of the same files.
    pub fn fresh(&self) -> PassResult {
        let fresh = engine_with(self.translators).run_pass(&self.files).unwrap();
        assert_eq!(fresh.report.assembly, Assembly::Full);
        fresh
    }

    /// A pass of the long-lived engine that must assemble in full for `reason`, and give
    /// what a new engine assembles from the same files.
    pub fn refused(&mut self, reason: &str) -> PassResult {
        let pass = self.pass();
        assert_eq!(
            pass.report.assembly,
            Assembly::Full,
            "{reason}: {:#?}",
            pass.report.errors
        );
        assert_eq!(self.engine.full_assembly_reason(), Some(reason));
        assert_same(&pass, &self.fresh(), reason);
        pass
    }

    /// A pass of the long-lived engine that must be patched, and give what a new engine
    /// assembles from the same files.
    pub fn patched(&mut self, what: &str) -> PassResult {
        let pass = self.pass();
        assert_eq!(
            pass.report.assembly,
            Assembly::Incremental,
            "{what}: assembled in full because {:?}",
            self.engine.full_assembly_reason()
        );
        assert_eq!(self.engine.full_assembly_reason(), None, "{what}");
        assert_same(&pass, &self.fresh(), what);
        pass
    }
}

/// The long-lived engine's pass equals a new engine's full assembly: the same files,
/// and the same report (errors, warnings, unknown components, counts).
pub fn assert_same(pass: &PassResult, full: &PassResult, what: &str) {
    let (a, b) = (&pass.output.files, &full.output.files);
    let differ: Vec<&PathBuf> = a.keys().chain(b.keys()).filter(|f| a.get(*f) != b.get(*f)).collect();
    assert!(
        differ.is_empty(),
        "{what}: files differ from a full assembly: {differ:?}"
    );
    let (p, q) = (&pass.report, &full.report);
    assert_eq!(p.errors, q.errors, "{what}: errors");
    assert_eq!(p.warnings, q.warnings, "{what}: warnings");
    assert_eq!(p.unknown_components, q.unknown_components, "{what}: unknown components");
    assert_eq!((p.machines, p.services), (q.machines, q.services), "{what}: counts");
}

/// Whether the report has an error for `machine` whose message contains `text`.
pub fn has_error(pass: &PassResult, machine: &str, text: &str) -> bool {
    pass.report
        .errors
        .iter()
        .any(|e| e.machine.as_deref() == Some(machine) && e.message.contains(text))
}

/// All the output's text.
pub fn text_of(pass: &PassResult) -> String {
    pass.output.files.values().map(|t| t.to_string()).collect()
}

/// Two plain machines.
pub fn two_machines() -> Vec<(&'static str, String)> {
    vec![("h1.xml", profile("h1", &[])), ("h2.xml", profile("h2", &[]))]
}

// The positive control.
