//! Translators as dynamic libraries: real `.so` files built from this workspace, loaded
//! through the C ABI.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use monitor_engine::base::BaseConfig;
use monitor_engine::users::TomlUsers;
use monitor_engine::{Engine, find_profiles, machine_file};
use monitor_integration_tests::*;
use monitor_runtime::plugin_host::{AddPlugin, LoadError, PluginSet, load};
use monitor_runtime::validate::validate_dir;
use monitor_runtime::writer::write_output;
use monitor_sdk::translator::Translator;

fn users() -> Box<TomlUsers> {
    Box::new(TomlUsers::new(samples().join("users.toml")))
}

#[test]
fn jabberd_plugin_produces_the_same_output_as_the_builtin() {
    let libs = plugin_libs();
    let copies = tempfile::tempdir().unwrap();
    let plugin = load(&libs.jabberd, copies.path()).unwrap();
    assert_eq!(plugin.component(), "jabberd");
    assert_eq!(plugin.version(), translator_jabberd::Jabberd.version());
    assert_eq!(plugin.name, "translator-jabberd-plugin");
    assert!(plugin.build_info.starts_with("monitor-sdk "), "{}", plugin.build_info);
    let files = find_profiles(&samples()).unwrap();

    let builtin = engine().run_pass(&files).unwrap();
    let mut without: Vec<Box<dyn Translator>> = translators();
    without.retain(|t| t.component() != "jabberd");
    let mut e = Engine::new(without, users(), BaseConfig::default());
    e.add_plugin(plugin);
    assert!(
        e.translators()
            .any(|id| id.component == "jabberd" && id.origin.starts_with("plugin "))
    );
    let dynamic = e.run_pass(&files).unwrap();
    assert!(dynamic.report.errors.is_empty(), "{:#?}", dynamic.report.errors);
    assert_eq!(dynamic.output, builtin.output, "byte-identical configuration");
    assert_eq!(dynamic.report.services, builtin.report.services);
    // The identity used in the cache key includes the library's content hash.
    let digest = blake3::hash(&std::fs::read(&libs.jabberd).unwrap())
        .to_hex()
        .to_string();
    assert!(
        e.translators()
            .any(|id| id.component == "jabberd" && id.origin.ends_with(&digest))
    );
}

fn flaky_profiles(dir: &Path) {
    for node in ["ok1", "boom1"] {
        let xml = profile_xml(
            node,
            "flaky",
            "<flaky><nagios_groups>infrastructure</nagios_groups></flaky>",
        );
        std::fs::write(dir.join(format!("{node}.xml")), xml).unwrap();
    }
    copy_samples(dir);
}

#[test]
fn a_panic_in_a_plugin_is_an_error_for_that_machine_only() {
    let libs = plugin_libs();
    let dir = tempfile::tempdir().unwrap();
    flaky_profiles(dir.path());
    let copies = tempfile::tempdir().unwrap();
    let mut e = engine();
    e.add_plugin(load(&libs.flaky_v1, copies.path()).unwrap());
    let r = e.run_pass(&find_profiles(dir.path()).unwrap()).unwrap();
    assert_eq!(r.report.errors.len(), 1, "{:#?}", r.report.errors);
    let err = &r.report.errors[0];
    assert_eq!(err.machine.as_deref(), Some("boom1.example.org"));
    assert_eq!(err.component.as_deref(), Some("flaky"));
    assert!(
        err.message.contains("translator panicked: boom on boom1.example.org"),
        "{err}"
    );
    assert!(r.output.files[&machine_file("ok1.example.org")].contains("Flaky v1"));
    assert_eq!(r.report.machines, 5, "every other machine compiled");
    // The plugin is still usable after the panic.
    let again = e.run_pass(&find_profiles(dir.path()).unwrap()).unwrap();
    assert_eq!(again.output, r.output);
}

#[test]
fn a_plugin_with_the_wrong_abi_version_is_refused() {
    let libs = plugin_libs();
    let copies = tempfile::tempdir().unwrap();
    let err = load(&libs.bad_abi, copies.path()).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::AbiVersion {
                found: 999,
                expected: 1,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("bad-abi.so: built for plugin ABI version 999, but this monitor-compile speaks version 1"),
        "{msg}"
    );
    // Not a plugin at all.
    let not = copies.path().join("not-a-plugin.so");
    std::fs::write(&not, b"not an ELF file").unwrap();
    assert!(matches!(load(&not, copies.path()), Err(LoadError::Dlopen { .. })));
}

/// A writer that keeps what the host's log subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_plugin_log_line_appears_in_the_host_log() {
    let libs = plugin_libs();
    let copies = tempfile::tempdir().unwrap();
    let plugin = load(&libs.flaky_v1, copies.path()).unwrap();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let comp = monitor_sdk::profile::Component::from_flat("flaky", &[("nagios_groups", "ops")]);
    tracing::subscriber::with_default(subscriber, || {
        let mut ctx = monitor_sdk::translator::Context::new("ok2.example.org", "flaky");
        plugin.translate("ok2.example.org", &comp, &mut ctx).unwrap();
        let _ = plugin.translate("boom2.example.org", &comp, &mut ctx);
    });
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("INFO plugin: flaky plugin translating machine=ok2.example.org flavour=v1"),
        "{log}"
    );
    assert!(
        log.contains("ERROR plugin: panicked at") && log.contains("boom on boom2.example.org"),
        "{log}"
    );
}

#[test]
fn replacing_a_library_between_passes_uses_the_new_code() {
    let libs = plugin_libs();
    let dir = tempfile::tempdir().unwrap();
    let xml = profile_xml(
        "ok1",
        "flaky",
        "<flaky><nagios_groups>infrastructure</nagios_groups></flaky>",
    );
    std::fs::write(dir.path().join("ok1.xml"), xml).unwrap();
    copy_samples(dir.path());
    let files = find_profiles(dir.path()).unwrap();
    let plugin_dir = tempfile::tempdir().unwrap();
    let installed = plugin_dir.path().join("flaky.so");
    std::fs::copy(&libs.flaky_v1, &installed).unwrap();
    let copies = tempfile::tempdir().unwrap();
    let mut set = PluginSet::new(vec![plugin_dir.path().to_path_buf()], copies.path().to_path_buf());
    let mut e = engine();

    let refresh = set.refresh();
    assert_eq!(refresh.loaded.len(), 1);
    refresh.loaded.into_iter().for_each(|p| e.add_plugin(p));
    let first = e.run_pass(&files).unwrap();
    let cfg = &machine_file("ok1.example.org");
    assert!(first.output.files[cfg].contains("Flaky v1"));
    assert!(
        set.refresh().loaded.is_empty(),
        "an unchanged library is not loaded again"
    );

    // The package manager replaces the file in place, as dpkg does (same path).
    std::fs::copy(&libs.flaky_v2, &installed).unwrap();
    let refresh = set.refresh();
    assert_eq!(refresh.loaded.len(), 1);
    refresh.loaded.into_iter().for_each(|p| e.add_plugin(p));
    let second = e.run_pass(&files).unwrap();
    assert!(
        second.output.files[cfg].contains("Flaky v2"),
        "{}",
        second.output.files[cfg]
    );
    assert_eq!(
        second.report.translated, 1,
        "the new version re-translated its machine only"
    );
    assert!(
        e.translators()
            .any(|id| id.component == "flaky" && id.version == "2.0.0")
    );
}

/// The samples in a directory, and an engine whose jabberd translator is the plugin
/// library installed in a plugin directory (`installed`), with `set` scanning it.
struct JabberdPlugin {
    dir: tempfile::TempDir,
    files: Vec<std::path::PathBuf>,
    plugin_dir: tempfile::TempDir,
    installed: std::path::PathBuf,
    _copies: tempfile::TempDir,
    set: PluginSet,
    e: Engine,
}

fn jabberd_plugin(also: &[(&Path, &str)]) -> JabberdPlugin {
    let dir = tempfile::tempdir().unwrap();
    copy_samples(dir.path());
    let files = find_profiles(dir.path()).unwrap();
    let plugin_dir = tempfile::tempdir().unwrap();
    let installed = plugin_dir.path().join("jabberd.so");
    std::fs::copy(&plugin_libs().jabberd, &installed).unwrap();
    for (lib, name) in also {
        std::fs::copy(lib, plugin_dir.path().join(name)).unwrap();
    }
    let copies = tempfile::tempdir().unwrap();
    let set = PluginSet::new(vec![plugin_dir.path().to_path_buf()], copies.path().to_path_buf());
    let mut without = translators();
    without.retain(|t| t.component() != "jabberd");
    let e = Engine::new(without, users(), BaseConfig::default());
    JabberdPlugin {
        dir,
        files,
        plugin_dir,
        installed,
        _copies: copies,
        set,
        e,
    }
}

#[test]
fn a_broken_library_keeps_its_machines_last_good_configuration() {
    let libs = plugin_libs();
    // Every directory is bound: a field left to `..` would be dropped (deleted) here.
    let JabberdPlugin {
        dir,
        files,
        installed,
        mut set,
        mut e,
        plugin_dir: _plugin_dir,
        _copies,
    } = jabberd_plugin(&[]);
    set.refresh().loaded.into_iter().for_each(|p| e.add_plugin(p));
    let good = e.run_pass(&files).unwrap();
    assert!(good.report.errors.is_empty());

    // A bad upgrade: the library no longer loads. Touch jabber1 so it is re-parsed too.
    std::fs::copy(&libs.bad_abi, &installed).unwrap();
    let refresh = set.refresh();
    assert!(refresh.loaded.is_empty());
    assert_eq!(refresh.broken.len(), 1);
    for b in &refresh.broken {
        if let LoadError::AbiVersion { path, .. } = b {
            e.note_broken_library(path, &b.to_string());
        }
    }
    e.remove_translator("jabberd");
    let text = std::fs::read_to_string(dir.path().join("jabber1.xml"))
        .unwrap()
        .replace("lcfgsrv1", "lcfgsrv2");
    std::fs::write(dir.path().join("jabber1.xml"), text).unwrap();
    let r = e.run_pass(&files).unwrap();
    let jabber = &machine_file("jabber1.example.org");
    assert_eq!(
        r.output.files[jabber], good.output.files[jabber],
        "last good jabberd fragments kept"
    );
    let errs: Vec<String> = r.report.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs[0].contains("broken translator library") && errs[0].contains("ABI version 999"),
        "{errs:#?}"
    );
    assert!(
        errs[1].contains("[jabber1.example.org jabberd") && errs[1].contains("translator unavailable"),
        "{errs:#?}"
    );
    let out = output_dir();
    write_output(out.path(), &r.output).unwrap();
    assert!(validate_dir(&nagios_bin(), out.path()).unwrap().ok);
}

#[test]
fn an_uninstalled_library_stops_serving_and_a_deleted_broken_one_is_forgotten() {
    // Every directory is bound: a field left to `..` would be dropped (deleted) here.
    let JabberdPlugin {
        dir: _dir,
        files,
        plugin_dir,
        installed,
        mut set,
        mut e,
        _copies,
    } = jabberd_plugin(&[(&plugin_libs().bad_abi, "zz-bad.so")]);
    let broken = plugin_dir.path().join("zz-bad.so");
    let refresh = set.refresh();
    refresh.loaded.into_iter().for_each(|p| e.add_plugin(p));
    for b in &refresh.broken {
        if let LoadError::AbiVersion { path, .. } = b {
            e.note_broken_library(path, &b.to_string());
        }
    }
    let first = e.run_pass(&files).unwrap();
    let jabber = &machine_file("jabber1.example.org");
    assert!(first.output.files[jabber].contains("Jabber SSL"));
    assert_eq!(
        first.report.errors.len(),
        1,
        "the broken library: {:?}",
        first.report.errors
    );

    // The broken one is deleted: no longer reported.
    std::fs::remove_file(&broken).unwrap();
    let refresh = set.refresh();
    assert_eq!(refresh.removed, vec![broken.clone()]);
    assert_eq!(e.library_removed(&broken), None, "it served nothing");
    let second = e.run_pass(&files).unwrap();
    assert!(second.report.errors.is_empty(), "{:?}", second.report.errors);

    // The package is uninstalled: its old code no longer serves, its services go.
    std::fs::remove_file(&installed).unwrap();
    let refresh = set.refresh();
    assert_eq!(refresh.removed, vec![installed.clone()]);
    assert_eq!(e.library_removed(&installed).as_deref(), Some("jabberd"));
    let third = e.run_pass(&files).unwrap();
    assert!(!third.output.files[jabber].contains("Jabber SSL"));
    assert!(third.report.errors.is_empty(), "{:?}", third.report.errors);
    assert!(
        third
            .report
            .unknown_components
            .iter()
            .any(|u| u.machine.as_deref() == Some("jabber1.example.org") && u.component.as_deref() == Some("jabberd")),
        "{:?}",
        third.report.unknown_components
    );
    assert!(e.translators().all(|t| t.component != "jabberd"));
    assert!(set.refresh().removed.is_empty(), "reported once");
}
