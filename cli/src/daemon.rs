//! The daemon: watch the profile directories, debounce bursts of changes into one pass,
//! rescan periodically as a safety net, keep the cache on disk, deploy every change
//! safely, and report each (machine, component)'s result through Nagios.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use monitor_core::base::BaseConfig;
use monitor_core::deploy::{self, DeployConfig, Deployed};
use monitor_core::engine::{Engine, Outcome, PassReport, find_profiles};
use monitor_core::plugin::host::PluginSet;
use monitor_core::store::Store;
use monitor_core::users::TomlUsers;
use notify::Watcher;
use serde::{Deserialize, Serialize};

use crate::config::{self, Overrides, Settings};

/// What the last pass did, written to `STATE_DIR/status.json` for `monitor-compile status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    /// Unix time the pass started.
    pub started_at: u64,
    pub duration_ms: u64,
    /// The pass's report: machines, services, parsed, cache hits, errors, warnings, ...
    #[serde(flatten)]
    pub report: PassReport,
    /// Profiles that do not parse but are still within the grace period.
    pub pending_profiles: Vec<PathBuf>,
    pub deploy: serde_json::Value,
}

enum Event {
    Changed,
    Signal(i32),
}

struct Daemon {
    config_file: Option<PathBuf>,
    overrides: Overrides,
    settings: Settings,
    engine: Engine,
    store: Store,
    plugins: PluginSet,
    /// When each currently unparseable profile was first seen unparseable.
    first_broken: HashMap<PathBuf, Instant>,
    watcher: Option<notify::RecommendedWatcher>,
}

/// Run until SIGTERM or SIGINT.
pub fn run(config_file: Option<PathBuf>, overrides: Overrides) -> Result<(), String> {
    let settings = config::load(config_file.as_deref(), &overrides)?;
    let (tx, rx) = mpsc::channel::<Event>();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let sig_tx = tx.clone();
    std::thread::spawn(move || {
        for s in signals.forever() {
            if sig_tx.send(Event::Signal(s)).is_err() {
                break;
            }
        }
    });
    let mut d = Daemon::new(config_file, overrides, settings)?;
    d.watch(tx.clone())?;
    tracing::info!(profiles = ?d.settings.profiles, output = %d.settings.output.display(), "monitor-compile daemon started");

    let mut due: Option<Instant> = Some(Instant::now());
    let mut burst_start: Option<Instant> = None;
    let mut next_rescan = Instant::now() + Duration::from_secs(d.settings.rescan_seconds);
    loop {
        let now = Instant::now();
        if due.is_some_and(|t| now >= t) {
            due = None;
            burst_start = None;
            let retry = d.pass();
            next_rescan = Instant::now() + Duration::from_secs(d.settings.rescan_seconds);
            if let Some(at) = retry {
                due = Some(at);
            }
            continue;
        }
        let wake = due.unwrap_or(next_rescan).min(next_rescan);
        match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
            Ok(Event::Changed) => {
                // Debounce: wait for a quiet period, but never longer than 10 of them.
                let debounce = Duration::from_millis(d.settings.debounce_ms);
                let start = *burst_start.get_or_insert(Instant::now());
                due = Some((Instant::now() + debounce).min(start + debounce * 10));
            }
            Ok(Event::Signal(s)) if s == signal_hook::consts::SIGHUP => {
                tracing::info!("SIGHUP: re-reading the configuration");
                match d.reconfigure(tx.clone()) {
                    Ok(()) => due = Some(Instant::now()),
                    Err(e) => tracing::error!(error = %e, "keeping the old configuration"),
                }
            }
            Ok(Event::Signal(_)) => {
                tracing::info!("stopping");
                return Ok(());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if Instant::now() >= next_rescan {
                    tracing::debug!("periodic rescan");
                    due = Some(Instant::now());
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

impl Daemon {
    fn new(config_file: Option<PathBuf>, overrides: Overrides, settings: Settings) -> Result<Daemon, String> {
        let (store, cache) = Store::open(&settings.cache_path()).map_err(|e| e.to_string())?;
        let mut engine = make_engine(&settings);
        engine.set_cache(cache);
        let plugins = PluginSet::new(settings.translators.clone(), settings.state_dir.join("plugins"));
        deploy::recover(&deploy_config(&settings)).map_err(|e| e.to_string())?;
        Ok(Daemon {
            config_file,
            overrides,
            settings,
            engine,
            store,
            plugins,
            first_broken: HashMap::new(),
            watcher: None,
        })
    }

    fn watch(&mut self, tx: mpsc::Sender<Event>) -> Result<(), String> {
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res
                && !matches!(ev.kind, notify::EventKind::Access(_))
            {
                let _ = tx.send(Event::Changed);
            }
        })
        .map_err(|e| format!("cannot watch the profile directories: {e}"))?;
        for dir in &self.settings.profiles {
            watcher
                .watch(dir, notify::RecursiveMode::Recursive)
                .map_err(|e| format!("{}: cannot watch: {e}", dir.display()))?;
        }
        self.watcher = Some(watcher);
        Ok(())
    }

    fn reconfigure(&mut self, tx: mpsc::Sender<Event>) -> Result<(), String> {
        let settings = config::load(self.config_file.as_deref(), &self.overrides)?;
        let cache = if settings.cache_path() != self.settings.cache_path() {
            let (store, cache) = Store::open(&settings.cache_path()).map_err(|e| e.to_string())?;
            self.store = store;
            cache
        } else {
            self.engine.take_cache()
        };
        self.engine = make_engine(&settings);
        self.engine.set_cache(cache);
        self.plugins = PluginSet::new(settings.translators.clone(), settings.state_dir.join("plugins"));
        self.settings = settings;
        self.watch(tx)
    }

    /// One pass: compile, persist, deploy, report. Returns when to retry early (a profile
    /// still within its grace period).
    fn pass(&mut self) -> Option<Instant> {
        let started = Instant::now();
        let started_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        crate::refresh_plugins(&mut self.plugins, &mut self.engine);
        let mut files = Vec::new();
        for dir in &self.settings.profiles {
            match find_profiles(dir) {
                Ok(f) => files.extend(f),
                Err(e) => tracing::error!(dir = %dir.display(), error = %e, "cannot list profiles"),
            }
        }
        let result = match self.engine.run_pass(&files) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "pass failed; the live configuration is unchanged");
                return None;
            }
        };
        if let Err(e) = self.store.save(self.engine.cache(), &result.changed_files) {
            tracing::error!(error = %e, "cannot save the cache");
        }

        // A profile that does not parse may still be being written: hold its errors back
        // until it has stayed broken for the grace period.
        let grace = Duration::from_secs(self.settings.error_grace_seconds);
        let now = Instant::now();
        let outcomes = self.engine.outcomes(&result.report);
        let broken: Vec<PathBuf> = outcomes
            .iter()
            .filter(|o| o.profile_error)
            .map(|o| o.file.clone())
            .collect();
        self.first_broken.retain(|f, _| broken.contains(f));
        let mut retry = None;
        let mut pending = Vec::new();
        for f in &broken {
            let first = *self.first_broken.entry(f.clone()).or_insert(now);
            if now < first + grace {
                retry = Some(retry.map_or(first + grace, |r: Instant| r.min(first + grace)));
                if !pending.contains(f) {
                    pending.push(f.clone());
                }
            }
        }
        let reportable: Vec<&Outcome> = outcomes.iter().filter(|o| !pending.contains(&o.file)).collect();

        let deployed = deploy::deploy(&deploy_config(&self.settings), &result.output);
        let deploy_json = match &deployed {
            Ok(d) => serde_json::to_value(d).unwrap_or_default(),
            Err(e) => serde_json::json!({ "result": "error", "error": e.to_string() }),
        };
        match &deployed {
            Ok(Deployed::Deployed { set, .. }) => {
                tracing::info!(set, "deployed and reloaded");
                std::thread::sleep(Duration::from_secs(self.settings.submit_delay_seconds));
            }
            Ok(Deployed::Unchanged { .. }) => tracing::debug!("configuration unchanged"),
            Ok(other) => tracing::error!(result = ?other, "deploy did not go through"),
            Err(e) => tracing::error!(error = %e, "deploy failed; the live configuration is unchanged"),
        }
        if !matches!(deployed, Ok(Deployed::Rejected { .. }) | Err(_))
            && let Err(e) = deploy::submit_results(&self.settings.command_file, &reportable)
        {
            tracing::warn!(error = %e, "cannot submit results to Nagios");
        }
        let status = Status {
            pid: std::process::id(),
            started_at,
            duration_ms: started.elapsed().as_millis() as u64,
            report: result.report,
            pending_profiles: pending,
            deploy: deploy_json,
        };
        write_status(&self.settings.state_dir, &status);
        retry
    }
}

fn make_engine(s: &Settings) -> Engine {
    let base = s.base_config().unwrap_or_else(|e| {
        // `config::load` refuses such settings; keep the defaults rather than fail here.
        tracing::error!(error = %e, "the base definitions' settings are invalid; using the defaults");
        BaseConfig::default()
    });
    let mut engine = Engine::new(crate::builtin_translators(), Box::new(TomlUsers::new(&s.users)), base);
    engine.set_status_services(true);
    engine
}

fn deploy_config(s: &Settings) -> DeployConfig {
    DeployConfig {
        live: s.output.clone(),
        state_dir: s.state_dir.clone(),
        nagios_bin: s.nagios_bin.clone(),
        nagios_config: s.nagios_config.clone(),
        reload: s.reload_method(),
        keep_rejected: s.keep_rejected,
        validate_user: s.validate_user.clone(),
    }
}

/// The status file's path.
pub fn status_path(state_dir: &Path) -> PathBuf {
    state_dir.join("status.json")
}

fn write_status(state_dir: &Path, status: &Status) {
    let text = serde_json::to_string_pretty(status).unwrap_or_default();
    if let Err(e) = std::fs::create_dir_all(state_dir)
        .and_then(|_| monitor_core::writer::write_private(&status_path(state_dir), text.as_bytes()))
    {
        tracing::error!(error = %e, "cannot write status.json");
    }
}
