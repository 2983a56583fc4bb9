//! A plugin's log lines cross from its worker process into the host's log with their
//! levels, filtered in the worker at the host's level: a test binary of its own, since it
//! installs the process-wide subscriber.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use monitor_integration_tests::{plugin_libs, profile_xml};
use monitor_runtime::plugin_host::{AddWorkerPlugin, PluginSet};
use monitor_runtime::worker::WorkerSettings;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn plugin_log_lines_reach_the_host_with_their_levels() {
    let buf = Buffer::default();
    let writer = buf.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let dir = tempfile::tempdir().unwrap();
    let libs = dir.path().join("libs");
    std::fs::create_dir_all(&libs).unwrap();
    std::fs::copy(&plugin_libs().flaky_v1, libs.join("flaky.so")).unwrap();
    let profiles = dir.path().join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(
        profiles.join("ok1.xml"),
        profile_xml(
            "ok1",
            "flaky",
            "<flaky><nagios_groups>infrastructure</nagios_groups></flaky>",
        ),
    )
    .unwrap();
    let settings = WorkerSettings::new(
        PathBuf::from(env!("CARGO_BIN_EXE_monitor-compile")),
        dir.path().join("copies"),
    );
    let mut set = PluginSet::with_workers(vec![libs.clone()], settings);
    let mut engine = monitor_integration_tests::engine();
    for t in set.refresh().workers {
        engine.add_worker_plugin(t);
    }
    let r = engine
        .run_pass(&monitor_engine::find_profiles(&profiles).unwrap())
        .unwrap();
    assert!(r.report.errors.is_empty(), "{:?}", r.report.errors);
    drop(engine);
    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("flaky plugin translating machine=ok1.example.org flavour=v1"))
        .unwrap_or_else(|| panic!("no plugin line in\n{log}"));
    assert!(line.contains(" INFO plugin: "), "{line}");
    assert!(
        line.contains(&format!("library={}", libs.join("flaky.so").display())),
        "{line}"
    );
}
