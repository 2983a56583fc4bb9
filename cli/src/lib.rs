//! Shared pieces of the `monitor-compile` and `monitor-test` binaries: the built-in
//! translator set, logging setup, the one config loader, the daemon loop and the human
//! summary. A pass is `monitor-engine`'s and the live system `monitor-runtime`'s; this
//! crate parses arguments, loads the configuration, runs the daemon and prints.

pub mod backend;
pub mod config;
pub mod daemon;
pub mod monitoring_info;
pub mod sources;

use std::path::PathBuf;

use monitor_engine::{Engine, PassReport};
use monitor_runtime::plugin_host::{AddPlugin, AddWorkerPlugin, BrokenLibrary, DEFAULT_TRANSLATOR_DIR, PluginSet};
use monitor_sdk::translator::Translator;

/// The translators compiled into the binaries, one per component.
pub fn builtin_translators() -> Vec<Box<dyn Translator>> {
    monitor_translators::builtin()
}

/// Log through `tracing` to stderr. `RUST_LOG` overrides the default level. Under
/// systemd (`JOURNAL_STREAM` set) lines carry no timestamp or colour: journald adds its
/// own timestamp, and the level word stays first for `journalctl` readers.
pub fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .try_init();
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// The human report of a pass, for stderr: every error, warning and unknown component.
pub fn problems(report: &PassReport) -> String {
    let mut s = String::new();
    for e in &report.errors {
        s.push_str(&format!("error: {e}\n"));
    }
    for w in &report.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    for u in &report.unknown_components {
        s.push_str(&format!("unknown component: {u}\n"));
    }
    s
}

/// The one summary line of a pass, printed last, with the elapsed time.
pub fn summary(report: &PassReport, elapsed: std::time::Duration) -> String {
    format!(
        "monitor-compile: {} machines, {} services, {} errors, {} warnings, {} unknown components ({} files: {} parsed, {} translate calls, {} from cache) in {:.2} s\n",
        report.machines,
        report.services,
        report.errors.len(),
        report.warnings.len(),
        report.unknown_components.len(),
        report.files,
        report.parsed,
        report.translated,
        report.cache_hits,
        elapsed.as_secs_f64(),
    )
}

/// The translator directories to scan: those given, or the package directory.
pub fn translator_dirs(given: &[PathBuf]) -> Vec<PathBuf> {
    if given.is_empty() {
        vec![PathBuf::from(DEFAULT_TRANSLATOR_DIR)]
    } else {
        given.to_vec()
    }
}

/// Load (or reload) the plugin libraries of `set` into `engine`: new and upgraded
/// libraries replace what was loaded for their component (built-ins included); broken
/// ones are recorded so that every pass reports them.
pub fn refresh_plugins(set: &mut PluginSet, engine: &mut Engine) {
    let refresh = set.refresh();
    for path in &refresh.removed {
        // An uninstalled plugin stops serving; a built-in translator of the same component
        // (which it had replaced) serves again.
        if let Some(component) = engine.library_removed(path)
            && let Some(builtin) = builtin_translators().into_iter().find(|t| t.component() == component)
        {
            tracing::info!(component, "the built-in translator serves again");
            engine.add_translator(builtin, "builtin");
        }
    }
    for p in refresh.loaded {
        engine.add_plugin(p);
    }
    for p in refresh.workers {
        engine.add_worker_plugin(p);
    }
    // A library that cannot load, or whose worker kept dying, is broken until its file
    // changes: a stand-in serves its component, so that its machines keep their last
    // good configuration and their `monitoring:` services say why.
    let mut broken: Vec<(PathBuf, Option<String>, String)> = refresh
        .broken
        .iter()
        .map(|e| (e.path().to_path_buf(), None, e.to_string()))
        .collect();
    for (path, component, why) in set.newly_broken() {
        tracing::error!(library = %path.display(), component, "translator library broken: {why}");
        broken.push((path.clone(), Some(component), format!("{}: {why}", path.display())));
    }
    for (path, component, why) in broken {
        if let Some(stand_in) = BrokenLibrary::new(&path, component.as_deref(), &why) {
            engine.add_library_translator(Box::new(stand_in), &path, "broken");
        }
        engine.note_broken_library(&path, &why);
    }
}
