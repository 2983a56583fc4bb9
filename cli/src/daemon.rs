//! The daemon: watch the profile and translator directories, debounce bursts of changes
//! into one pass, rescan periodically as a safety net, keep the cache on disk, hold
//! sets that would remove too much (the removal guard), deploy every other change
//! safely, and report each (machine, component)'s result, and its own deploy result,
//! through Nagios: changed results at once, every result whenever Nagios (re)starts.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use monitor_engine::base::BaseConfig;
use monitor_engine::cache::FragmentCache;
use monitor_engine::{DEPLOY_SERVICE, DeployService, Engine, Listing, Output, PassReport, list_profiles};
use monitor_runtime::blame;
use monitor_runtime::deploy::{self, DeployConfig, DeployTimings, Deployed, Icinga2Deploy, ServiceResult};
use monitor_runtime::guard::{Inventory, InventoryCache, Removal};
use monitor_runtime::icinga2::api::ApiClient;
use monitor_runtime::icinga2::validate::Validator;
use monitor_runtime::plugin_host::PluginSet;
use monitor_runtime::store::Store;
use monitor_runtime::users_ldap::LdapUsers;
use notify::Watcher;
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::config::{self, Overrides, Settings};

/// How long each phase of the last pass took, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimes {
    /// Plugin refresh and listing the profile directories.
    pub scan_ms: f64,
    /// The compile pass (read, parse, translate, assemble) and saving the cache.
    pub compile_ms: f64,
    /// Writing and syncing the new set.
    pub write_ms: f64,
    /// `nagios -v`.
    pub validate_ms: f64,
    /// The swap and the reload.
    pub reload_ms: f64,
    /// Submitting results through the command file.
    pub submit_ms: f64,
}

/// A set (or a pass) the daemon did not deploy, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    /// The held set's digest (none when the inputs themselves were missing or empty).
    pub set: Option<String>,
    /// Unix time it was first held.
    pub since: u64,
    pub reasons: Vec<String>,
    /// What it would remove from the live set.
    pub removal: Option<Removal>,
}

/// What the last pass did, written to `STATE_DIR/status.json` for `monitor-compile status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    /// Unix time the pass started.
    pub started_at: u64,
    pub duration_ms: u64,
    #[serde(default)]
    pub phases: PhaseTimes,
    /// The pass's report: machines, services, parsed, cache hits, errors, warnings, ...
    #[serde(flatten)]
    pub report: PassReport,
    /// Profiles that do not parse but are still within the grace period.
    pub pending_profiles: Vec<PathBuf>,
    /// The set held by the removal guard (or the held inputs), if any.
    #[serde(default)]
    pub held: Option<Held>,
    /// The deploy's result.
    pub deploy: serde_json::Value,
    /// Results written to the command file in this pass.
    #[serde(default)]
    pub submitted: usize,
    /// `persistent`, or why the fragment cache is not (saved on disk).
    #[serde(default)]
    pub cache: String,
    /// Machines held at their last good configuration, with the nagios -v errors that
    /// named them.
    #[serde(default)]
    pub held_machines: BTreeMap<String, HeldMachine>,
}

/// A machine held at its live configuration: the new text nagios -v rejected, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeldMachine {
    #[serde(skip)]
    rejected: String,
    pub errors: Vec<String>,
}

/// The machines held, the set written without their new text, and its deploy.
type HeldDeploy = (
    BTreeMap<String, HeldMachine>,
    Output,
    Result<Deployed, deploy::DeployError>,
);

/// The lock file of a state directory.
pub fn lock_path(state_dir: &Path) -> PathBuf {
    state_dir.join("lock")
}

/// Take the exclusive lock on `state_dir` (its `lock` file, which then holds our pid). A
/// second daemon on the same state directory would delete the first's cache and deploy
/// beside it: it stops here, naming the holder.
pub fn lock_state_dir(state_dir: &Path) -> Result<std::fs::File, String> {
    use std::io::{Read, Seek, Write};
    std::fs::create_dir_all(state_dir)
        .map_err(|e| format!("{}: cannot create the state directory: {e}", state_dir.display()))?;
    let path = lock_path(state_dir);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("{}: cannot open the lock file: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(format!(
                "another monitor-compile daemon (pid {}) holds {}: one daemon per state directory",
                if holder.is_empty() { "unknown" } else { holder },
                path.display()
            ));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(format!("{}: cannot lock: {e}", path.display()));
        }
    }
    let pid = std::process::id();
    file.set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| writeln!(file, "{pid}"))
        .map_err(|e| format!("{}: cannot write our pid: {e}", path.display()))?;
    Ok(file)
}

/// The file `monitor-compile approve` writes: the digest of the held set to deploy.
pub fn approval_path(state_dir: &Path) -> PathBuf {
    state_dir.join("approved-set")
}

enum Event {
    Changed,
    Signal(i32),
}

/// A watched directory and the identity (device, inode) it had when the watch was set.
struct Watched {
    path: PathBuf,
    recursive: bool,
    id: Option<(u64, u64)>,
}

fn dir_id(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

struct Daemon {
    config_file: Option<PathBuf>,
    overrides: Overrides,
    settings: Settings,
    engine: Engine,
    /// `None`: the store could not be opened, and the daemon runs on its memory cache.
    store: Option<Store>,
    /// Why the cache is in memory only, for status.json.
    cache_problem: Option<String>,
    /// The exclusive lock on the state directory, held while the daemon runs.
    lock: std::fs::File,
    plugins: PluginSet,
    /// When each currently unparseable profile was first seen unparseable.
    first_broken: HashMap<PathBuf, Instant>,
    watcher: Option<notify::RecommendedWatcher>,
    watched: Vec<Watched>,
    /// The hosts and services of the live set (read from disk at start).
    live_inventory: Option<Inventory>,
    inventory_cache: InventoryCache,
    held: Option<Held>,
    /// The results of the last pass, to (re)submit.
    results: Vec<ServiceResult>,
    /// What Nagios was last told, per (host, service).
    submitted: HashMap<(String, String), (u8, String)>,
    /// Nagios's status file and the `program_start` last seen in it.
    status_file: Option<PathBuf>,
    nagios_start: Option<u64>,
    /// After a reload: the Unix time it was sent, and when to give up waiting for
    /// Nagios to restart; results wait until then.
    awaiting_restart: Option<(u64, Instant)>,
    /// Machines held at their live text because nagios -v rejected their new text.
    held_machines: BTreeMap<String, HeldMachine>,
    /// Profiles fetched over HTTP into a mirror (the `[http]` table).
    http: Option<crate::sources::HttpSource>,
    /// The LDAP users source, told after each pass which groups the translators registered.
    ldap: Option<LdapUsers>,
    ldap_groups: Option<Vec<String>>,
    /// After a deploy that failed or was rolled back (Nagios down): the wait before the
    /// next try, doubled each time up to a minute; a Nagios (re)start retries at once.
    retry_backoff: Option<Duration>,
}

/// Run until SIGTERM or SIGINT.
pub fn run(config_file: Option<PathBuf>, overrides: Overrides) -> Result<(), String> {
    let settings = config::load(config_file.as_deref(), &overrides)?;
    // Held for the daemon's life (in `Daemon::lock`): one daemon per state directory.
    let lock = lock_state_dir(&settings.state_dir)?;
    let (tx, rx) = mpsc::channel::<Event>();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGUSR1,
        signal_hook::consts::SIGUSR2,
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
    let mut d = Daemon::new(config_file, overrides, settings, lock)?;
    d.watch(tx.clone())?;
    tracing::info!(profiles = ?d.settings.profiles, output = %d.settings.output.display(), "monitor-compile daemon started");

    let mut due: Option<Instant> = Some(Instant::now());
    let mut burst_start: Option<Instant> = None;
    let mut next_rescan = Instant::now() + Duration::from_secs(d.settings.rescan_seconds);
    let mut next_poll = Instant::now();
    // The first fetch comes before the first pass (the mirror of an earlier run, if any,
    // is there already: an unreachable server changes nothing).
    if let Some(h) = d.http.as_mut() {
        h.sync(None);
    }
    loop {
        let now = Instant::now();
        if let Some(h) = d.http.as_mut()
            && now >= h.next
        {
            if h.sync(None) {
                due = Some(due.unwrap_or(now).min(now));
            }
            continue;
        }
        if due.is_some_and(|t| now >= t) {
            due = None;
            burst_start = None;
            d.check_watches();
            let retry = d.pass();
            next_rescan = Instant::now() + Duration::from_secs(d.settings.rescan_seconds);
            if let Some(at) = retry {
                due = Some(at);
            }
            if d.update_ldap_groups() {
                due = Some(Instant::now());
            }
            continue;
        }
        if now >= next_poll {
            if d.poll_nagios() {
                due = Some(Instant::now());
            }
            next_poll = now + Duration::from_millis(d.settings.nagios_poll_ms.max(100));
        }
        let mut wake = due.unwrap_or(next_rescan).min(next_rescan).min(next_poll);
        if let Some(h) = &d.http {
            wake = wake.min(h.next);
        }
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
            Ok(Event::Signal(s)) if s == signal_hook::consts::SIGUSR2 => {
                let names = crate::sources::take_requests(&d.settings.state_dir);
                tracing::info!(machines = ?names, "SIGUSR2: fetching these machines now");
                if let Some(h) = d.http.as_mut()
                    && !names.is_empty()
                    && h.sync(Some(&names))
                {
                    due = Some(Instant::now());
                }
            }
            Ok(Event::Signal(s)) if s == signal_hook::consts::SIGUSR1 => {
                tracing::info!("SIGUSR1: compiling now (an approval, or a request)");
                due = Some(Instant::now());
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

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

impl Daemon {
    fn new(
        config_file: Option<PathBuf>,
        overrides: Overrides,
        settings: Settings,
        lock: std::fs::File,
    ) -> Result<Daemon, String> {
        let (store, cache, cache_problem) = open_store(&settings);
        let (mut engine, ldap) = make_engine(&settings)?;
        engine.set_cache(cache);
        let plugins = settings.plugin_set(settings.translators.clone(), settings.state_dir.join("plugins"))?;
        deploy::recover(&deploy_config(&settings)).map_err(|e| e.to_string())?;
        let status_file = settings.nagios_status_file();
        let nagios_start = status_file.as_deref().and_then(deploy::nagios_program_start);
        warn_about_main_config(&settings);
        let http = match &settings.http {
            Some(h) => Some(crate::sources::HttpSource::new(h, &settings.state_dir)?),
            None => None,
        };
        Ok(Daemon {
            config_file,
            overrides,
            settings,
            engine,
            store,
            cache_problem,
            lock,
            plugins,
            first_broken: HashMap::new(),
            watcher: None,
            watched: Vec::new(),
            live_inventory: None,
            inventory_cache: InventoryCache::default(),
            held: None,
            results: Vec::new(),
            submitted: HashMap::new(),
            status_file,
            nagios_start,
            awaiting_restart: None,
            retry_backoff: None,
            held_machines: BTreeMap::new(),
            http,
            ldap,
            ldap_groups: None,
        })
    }

    /// Watch the profile directories (recursively), the translator directories, the users
    /// file, and the parent of each, so that a directory that is replaced (a remount, a
    /// rename) or appears later is noticed and watched again.
    fn watch(&mut self, tx: mpsc::Sender<Event>) -> Result<(), String> {
        let (watcher, watched) = build_watcher(&self.settings, tx)?;
        self.watcher = Some(watcher);
        self.watched = watched;
        Ok(())
    }

    fn add_watch(&mut self, dir: &Path, recursive: bool) -> Option<(u64, u64)> {
        add_watch(self.watcher.as_mut()?, dir, recursive)
    }

    /// Watch again every directory that was replaced or has appeared since its watch
    /// was set.
    fn check_watches(&mut self) {
        for i in 0..self.watched.len() {
            let (path, recursive, id) = {
                let w = &self.watched[i];
                (w.path.clone(), w.recursive, w.id)
            };
            let now = dir_id(&path);
            if now == id {
                continue;
            }
            if let Some(w) = self.watcher.as_mut() {
                let _ = w.unwatch(&path);
            }
            let id = if now.is_some() {
                self.add_watch(&path, recursive)
            } else {
                None
            };
            if id.is_some() {
                tracing::info!(dir = %path.display(), "directory replaced or back: watching it again");
            }
            self.watched[i].id = id;
        }
    }

    /// Apply the configuration file again, whole or not at all: everything that can fail
    /// (loading, the state directory's lock, the cache store, the watches) is prepared
    /// first, and only then does the new configuration replace the old.
    fn reconfigure(&mut self, tx: mpsc::Sender<Event>) -> Result<(), String> {
        let settings = config::load(self.config_file.as_deref(), &self.overrides)?;
        let lock = if settings.state_dir != self.settings.state_dir {
            Some(lock_state_dir(&settings.state_dir)?)
        } else {
            None
        };
        let store = if settings.cache_path() != self.settings.cache_path() {
            let (store, cache) = Store::open(&settings.cache_path()).map_err(|e| e.to_string())?;
            Some((store, cache))
        } else {
            None
        };
        let (watcher, watched) = build_watcher(&settings, tx)?;
        let (engine, ldap) = make_engine(&settings)?;
        let http = match (&settings.http, &self.http) {
            (Some(new), Some(old)) if *new == old.settings && settings.state_dir == self.settings.state_dir => None,
            (Some(new), _) => Some(Some(crate::sources::HttpSource::new(new, &settings.state_dir)?)),
            (None, _) => Some(None),
        };
        if settings.state_dir != self.settings.state_dir {
            deploy::recover(&deploy_config(&settings)).map_err(|e| e.to_string())?;
        }
        // Nothing below fails.
        if let Some(lock) = lock {
            self.lock = lock;
        }
        if let Some(http) = http {
            self.http = http;
        }
        let cache = match store {
            Some((store, cache)) => {
                self.store = Some(store);
                self.cache_problem = None;
                cache
            }
            None => self.engine.take_cache(),
        };
        self.engine = engine;
        self.ldap = ldap;
        self.ldap_groups = None;
        self.engine.set_cache(cache);
        self.plugins = settings.plugin_set(settings.translators.clone(), settings.state_dir.join("plugins"))?;
        if settings.output != self.settings.output {
            self.live_inventory = None;
        }
        self.status_file = settings.nagios_status_file();
        warn_about_main_config(&settings);
        self.settings = settings;
        self.watcher = Some(watcher);
        self.watched = watched;
        Ok(())
    }

    /// Look at Nagios's status file: when Nagios has (re)started, it knows none of our
    /// results (or only retained ones): submit every result.
    /// Returns whether a pass should run now: Nagios is back after a failed deploy.
    fn poll_nagios(&mut self) -> bool {
        let Some(f) = &self.status_file else { return false };
        let start = deploy::nagios_program_start(f);
        if let Some(started) = start
            && start != self.nagios_start
        {
            self.nagios_start = start;
            match self.awaiting_restart {
                Some((sent, _)) if started >= sent => {
                    // Our own reload: Nagios kept its states (if it retains them), so
                    // only what changed (new services among it) is submitted.
                    tracing::debug!(program_start = started, "Nagios restarted after the reload");
                    self.awaiting_restart = None;
                    if !self.settings.nagios_retains_state() {
                        self.submitted.clear();
                    }
                }
                _ => {
                    // Started or restarted by someone else (or before our reload): it may
                    // know none of our results.
                    tracing::info!(program_start = started, "Nagios (re)started: submitting every result");
                    self.submitted.clear();
                }
            }
            self.submit();
            if self.retry_backoff.is_some() {
                tracing::info!("Nagios is up again: retrying the deploy");
                return true;
            }
        } else if self.awaiting_restart.is_some_and(|(_, t)| Instant::now() >= t) {
            tracing::warn!("Nagios did not restart after the reload in time: submitting every result anyway");
            self.awaiting_restart = None;
            self.submitted.clear();
            self.submit();
        }
        false
    }

    /// Submit the results that Nagios has not been told yet. Returns how many.
    fn submit(&mut self) -> usize {
        if self.awaiting_restart.is_some() {
            return 0;
        }
        let changed: Vec<&ServiceResult> = self
            .results
            .iter()
            .filter(|r| {
                self.submitted.get(&(r.host.clone(), r.description.clone())) != Some(&(r.code, r.output.clone()))
            })
            .collect();
        if changed.is_empty() {
            return 0;
        }
        match self.send_results(&changed) {
            Ok(()) => {
                let n = changed.len();
                tracing::debug!(results = n, "results submitted");
                let keys: Vec<((String, String), (u8, String))> = changed
                    .iter()
                    .map(|r| ((r.host.clone(), r.description.clone()), (r.code, r.output.clone())))
                    .collect();
                self.submitted.extend(keys);
                n
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot submit results (they are sent again on the next pass)");
                0
            }
        }
    }

    /// Tell the LDAP source which groups the translators registered (the first pass reads
    /// every group the group filter finds). Returns whether a group is new since the last
    /// pass, whose members the next pass, at once, reads.
    fn update_ldap_groups(&mut self) -> bool {
        let Some(l) = &self.ldap else { return false };
        let groups = crate::sources::registered_groups(self.engine.cache());
        if self.ldap_groups.as_ref() == Some(&groups) {
            return false;
        }
        let new = self
            .ldap_groups
            .as_ref()
            .is_some_and(|old| groups.iter().any(|g| !old.contains(g)));
        l.set_wanted_groups(groups.clone());
        self.ldap_groups = Some(groups);
        new
    }

    /// Send results: to Nagios's (or Icinga 2's) command file, or through Icinga 2's API.
    fn send_results(&self, results: &[&ServiceResult]) -> Result<(), String> {
        let api = match (&self.settings.backend, &self.settings.icinga2) {
            (Backend::Icinga2, s) if s.results == crate::backend::Results::Api => s.api.as_ref(),
            _ => None,
        };
        let Some(api) = api else {
            return deploy::submit_service_results(&self.settings.command_file, results);
        };
        let client = ApiClient::new(&api.client_config()).map_err(|e| e.to_string())?;
        let mut failed = Vec::new();
        for r in results {
            let output = deploy::sanitize(&r.output);
            if let Err(e) = client.process_check_result(&r.host, &r.description, r.code, &output) {
                failed.push(format!("{}/{}: {e}", r.host, r.description));
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} of {} results not accepted by the Icinga 2 API: {}",
                failed.len(),
                results.len(),
                failed.join("; ")
            ))
        }
    }

    /// List every profile directory. A directory that is missing, empty or cannot be
    /// listed holds the pass: it is never read as "these machines are gone".
    ///
    /// With `[monitoring_info]`, the registered hosts' profiles are made first; what could
    /// not be read of them comes back as problems for the report.
    fn list_profiles(&self) -> Result<(Listing, Vec<monitor_engine::Problem>), Vec<String>> {
        let mut listing = Listing::default();
        let mut info_problems = Vec::new();
        let mut problems = Vec::new();
        let mirror = self.http.as_ref().map(|h| h.fetcher.dir().to_path_buf());
        for dir in self.settings.profiles.iter().chain(mirror.as_ref()) {
            match list_profile_dir(dir, self.settings.follow_symlinks_out) {
                Ok(l) => listing.extend(l),
                Err(e) => problems.push(e),
            }
        }
        if let Some(info) = &self.settings.monitoring_info {
            match crate::monitoring_info::registered_profiles(&self.settings.state_dir, info) {
                Ok((l, p)) => {
                    listing.extend(l);
                    info_problems = p;
                }
                Err(e) => problems.push(e),
            }
        }
        if problems.is_empty() {
            Ok((listing, info_problems))
        } else {
            Err(problems)
        }
    }

    fn deploy_result(&self, code: u8, output: String) -> Option<ServiceResult> {
        Some(ServiceResult {
            host: self.settings.self_host.clone(),
            description: DEPLOY_SERVICE.into(),
            code,
            output,
        })
    }

    /// One pass: compile, persist, guard, deploy, report. Returns when to retry early (a
    /// profile still within its grace period).
    fn pass(&mut self) -> Option<Instant> {
        let started = Instant::now();
        let started_at = unix_now();
        let clock = (started, started_at);
        let mut phases = PhaseTimes::default();
        crate::refresh_plugins(&mut self.plugins, &mut self.engine);
        let (files, info_problems) = match self.list_profiles() {
            Ok(listed) => listed,
            Err(problems) => {
                phases.scan_ms = ms_since(started);
                for p in &problems {
                    tracing::error!("{p}; the pass is held and the live configuration is unchanged");
                }
                let since = match &self.held {
                    Some(h) if h.set.is_none() => h.since,
                    _ => started_at,
                };
                self.held = Some(Held {
                    set: None,
                    since,
                    reasons: problems.clone(),
                    removal: None,
                });
                let msg = format!("CRITICAL: pass held: {}", problems.join(" / "));
                self.results.retain(|r| r.description != DEPLOY_SERVICE);
                self.results.extend(self.deploy_result(2, msg));
                let t = Instant::now();
                let submitted = self.submit();
                phases.submit_ms = ms_since(t);
                let deploy = serde_json::json!({ "result": "held", "reasons": problems });
                self.record(clock, phases, PassReport::default(), Vec::new(), deploy, submitted);
                return None;
            }
        };
        phases.scan_ms = ms_since(started);
        let t = Instant::now();
        let mut result = match self.engine.run_listing(&files) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "pass failed; the live configuration is unchanged");
                return None;
            }
        };
        // The Icinga 2 backend maps the assembled objects to its tree of zones.
        if self.settings.backend == Backend::Icinga2 {
            let mapped = self
                .settings
                .icinga_tree()
                .and_then(|tree| crate::backend::icinga_output(&result.output, &tree, &mut result.report));
            match mapped {
                Ok((output, _)) => result.output = output,
                Err(e) => {
                    tracing::error!(error = %e, "pass failed; the live configuration is unchanged");
                    return None;
                }
            }
        }
        match &mut self.store {
            Some(store) => {
                if let Err(e) = store.save(self.engine.cache(), &result.changed_files) {
                    tracing::error!(error = %e, "cannot save the cache; it is saved on the next pass that can");
                    self.cache_problem = Some(e.to_string());
                } else {
                    self.cache_problem = None;
                }
            }
            None => tracing::warn!("running without a persistent cache: a restart parses and translates every profile"),
        }
        phases.compile_ms = ms_since(t);
        result.report.errors.extend(info_problems);
        // What the last fetch could not do.
        if let Some(h) = &self.http {
            let (warnings, errors) = h.problems();
            result.report.warnings.extend(warnings);
            result.report.errors.extend(errors);
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
        let machine_results: Vec<ServiceResult> = outcomes
            .iter()
            .filter(|o| !pending.contains(&o.file))
            .map(ServiceResult::of_outcome)
            .collect();

        // The removal guard.
        let cfg = DeployConfig {
            pause_at: self.overrides.test_pause_at,
            ..deploy_config(&self.settings)
        };
        // Machines held at their live text since nagios -v rejected their new one stay
        // held while their new text is the one rejected; a changed one is tried again.
        self.held_machines
            .retain(|m, h| blame::machine_block(&result.output, m) == Some(h.rejected.as_str()));
        let output = if self.held_machines.is_empty() {
            result.output.clone()
        } else {
            let held: BTreeSet<String> = self.held_machines.keys().cloned().collect();
            blame::hold(&result.output, &self.settings.output, &held)
        };
        let set = deploy::digest(&output);
        let ti = Instant::now();
        let mut new_inventory = self.inventory_cache.inventory(&output);
        // The guard's inventory counts as compiling.
        phases.compile_ms += ms_since(ti);
        let live = match &self.live_inventory {
            Some(l) => Ok(l.clone()),
            None => Inventory::of_dir(&self.settings.output)
                .map_err(|e| format!("{}: cannot read the live set: {e}", self.settings.output.display())),
        };
        let (removal, mut reasons) = match &live {
            Ok(l) => {
                self.live_inventory = Some(l.clone());
                let r = Removal::between(l, &new_inventory);
                let why = r.exceeds(&self.settings.removal_guard);
                (Some(r), why)
            }
            Err(e) => (None, vec![e.clone()]),
        };
        let approved = std::fs::read_to_string(approval_path(&self.settings.state_dir)).is_ok_and(|a| a.trim() == set);
        if approved && !reasons.is_empty() {
            tracing::warn!(set, summary = %removal.as_ref().map(Removal::summary).unwrap_or_default(), "removal approved by an administrator: deploying");
            reasons.clear();
        }

        let mut timings = DeployTimings::default();
        let mut deploy_retry: Option<Instant> = None;
        let (deploy_json, deploy_result, wait_for_restart, submit_machines) = if !reasons.is_empty() {
            let summary = removal.as_ref().map(Removal::summary).unwrap_or_default();
            tracing::error!(
                set,
                reasons = %reasons.join("; "),
                %summary,
                "configuration held by the removal guard; the live configuration is unchanged. Run `monitor-compile approve` to deploy it"
            );
            let since = match &self.held {
                Some(h) if h.set.as_deref() == Some(set.as_str()) => h.since,
                _ => started_at,
            };
            self.held = Some(Held {
                set: Some(set.clone()),
                since,
                reasons: reasons.clone(),
                removal: removal.clone(),
            });
            (
                serde_json::json!({ "result": "held", "set": set, "reasons": reasons, "summary": summary }),
                self.deploy_result(
                    2,
                    format!(
                        "CRITICAL: new configuration held: {}; {summary}; run monitor-compile approve to deploy it",
                        reasons.join("; ")
                    ),
                ),
                false,
                true,
            )
        } else {
            let mut deployed = deploy::deploy_timed(&cfg, &output, &mut timings);
            // Holding single machines back reads Nagios's errors; an Icinga 2 set is
            // rejected whole.
            if let Ok(Deployed::Rejected { errors, .. }) = &deployed
                && self.settings.backend == Backend::Nagios
                && let Some((held, spliced, again)) =
                    self.deploy_without_rejected(&cfg, &result.output, &output, errors)
            {
                self.held_machines = held;
                new_inventory = self.inventory_cache.inventory(&spliced);
                deployed = again;
            }
            phases.write_ms = timings.write_ms;
            phases.validate_ms = timings.validate_ms;
            phases.reload_ms = timings.reload_ms;
            let json = match &deployed {
                Ok(d) => serde_json::to_value(d).unwrap_or_default(),
                Err(e) => serde_json::json!({ "result": "error", "error": e.to_string() }),
            };
            let hosts = new_inventory.hosts.len();
            let services = new_inventory.services.len();
            let held_note = if self.held_machines.is_empty() {
                String::new()
            } else {
                let names: Vec<&str> = self.held_machines.keys().map(String::as_str).collect();
                format!(
                    "; {} machines held at their last good configuration, as nagios -v rejected their new one: {}",
                    names.len(),
                    names.join(", ")
                )
            };
            let ok_code = if held_note.is_empty() { 0 } else { 1 };
            let ok = |set: &str| {
                let state = if held_note.is_empty() { "OK" } else { "WARNING" };
                format!("{state}: configuration {set} is live ({hosts} hosts, {services} services){held_note}")
            };
            let mut wait = false;
            let res = match &deployed {
                Ok(Deployed::Deployed {
                    set,
                    reload_error: None,
                    ..
                }) => {
                    // With a status file the deploy saw Nagios restart on it already.
                    match &self.status_file {
                        Some(f) => {
                            self.nagios_start = deploy::nagios_program_start(f);
                            if !self.settings.nagios_retains_state() {
                                // The restart forgot every result.
                                self.submitted.clear();
                            }
                            tracing::info!(set, hosts, services, program_start = ?self.nagios_start, "deployed, and Nagios restarted on it");
                        }
                        None => {
                            tracing::info!(set, hosts, services, "deployed and reloaded");
                            wait = !matches!(cfg.reload, deploy::Reload::None);
                        }
                    }
                    (ok_code, ok(set))
                }
                Ok(Deployed::Deployed {
                    set,
                    reload_error: Some(reason),
                    ..
                }) => {
                    // Only the very first set is kept without a reload (there is nothing
                    // to roll back to): Nagios is not running yet, and loads it when it starts.
                    tracing::warn!(set, %reason, "deployed; Nagios could not be reloaded (is it running?)");
                    (ok_code, format!("{}; Nagios was not running to reload", ok(set)))
                }
                Ok(Deployed::Unchanged { set }) => {
                    tracing::debug!("configuration unchanged");
                    (ok_code, ok(set))
                }
                Ok(Deployed::Rejected { errors, .. }) => (
                    2,
                    format!(
                        "CRITICAL: nagios -v rejected the new configuration ({} errors): {}",
                        errors.len(),
                        errors.first().map(String::as_str).unwrap_or("")
                    ),
                ),
                Ok(Deployed::RolledBack { reason, .. }) => {
                    tracing::error!(%reason, "the reload failed; the previous configuration was restored");
                    (
                        1,
                        format!("WARNING: reload failed, previous configuration restored: {reason}"),
                    )
                }
                Err(e) => {
                    tracing::error!(error = %e, "deploy failed; the live configuration is unchanged");
                    (2, format!("CRITICAL: deploy failed: {e}"))
                }
            };
            if matches!(deployed, Ok(Deployed::Deployed { .. } | Deployed::Unchanged { .. })) {
                self.held = None;
                self.live_inventory = Some(new_inventory);
                let _ = std::fs::remove_file(approval_path(&self.settings.state_dir));
            }
            let machines = !matches!(deployed, Ok(Deployed::Rejected { .. }) | Err(_));
            if matches!(deployed, Ok(Deployed::RolledBack { .. }) | Err(_)) {
                let wait = self
                    .retry_backoff
                    .map_or(Duration::from_secs(2), |b| (b * 2).min(Duration::from_secs(60)));
                tracing::info!(
                    seconds = wait.as_secs(),
                    "retrying the deploy later (or as soon as Nagios is back)"
                );
                self.retry_backoff = Some(wait);
                deploy_retry = Some(Instant::now() + wait);
            } else {
                self.retry_backoff = None;
            }
            (json, self.deploy_result(res.0, res.1), wait, machines)
        };

        // Results: the machines' (unless the set is not what Nagios runs) and the deploy's.
        // A held machine's say why, on its own services (its owner's contacts).
        let mut machine_results = machine_results;
        for r in machine_results.iter_mut() {
            if let Some(h) = self.held_machines.get(&r.host) {
                r.code = 2;
                r.output = format!(
                    "CRITICAL: nagios -v rejected this machine's new configuration; its last good one is kept: {}",
                    h.errors.first().map(String::as_str).unwrap_or("")
                );
            }
        }
        if submit_machines {
            self.results = machine_results;
        }
        self.results.retain(|r| r.description != DEPLOY_SERVICE);
        self.results.extend(deploy_result);
        let t = Instant::now();
        let submitted = if wait_for_restart {
            match &self.status_file {
                // Nagios is restarting: submit everything once it has (poll_nagios).
                Some(_) => {
                    self.awaiting_restart = Some((started_at, Instant::now() + Duration::from_secs(60)));
                    0
                }
                None => {
                    std::thread::sleep(Duration::from_secs(self.settings.submit_delay_seconds));
                    self.submitted.clear();
                    self.submit()
                }
            }
        } else {
            self.submit()
        };
        phases.submit_ms = ms_since(t);
        self.record(clock, phases, result.report, pending, deploy_json, submitted);
        match (retry, deploy_retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// `nagios -v` rejected `output` with `errors`. When every error names a machine, hold
    /// those machines at their live text (with those held already) and deploy the rest:
    /// the held machines, the set without them, and how its deploy went, when it went
    /// live. `None` (logged): the errors name no machine, or the rest was rejected too,
    /// and the whole set is held.
    fn deploy_without_rejected(
        &self,
        cfg: &DeployConfig,
        compiled: &Output,
        output: &Output,
        errors: &[String],
    ) -> Option<HeldDeploy> {
        // Nagios stops at its first bad object: each round may name another machine.
        const ROUNDS: usize = 10;
        let mut held = self.held_machines.clone();
        let mut errors = errors.to_vec();
        let mut current = output.clone();
        for _ in 0..ROUNDS {
            let named = match blame::blame(&errors, &current) {
                Ok(named) => named,
                Err(unmapped) => {
                    tracing::error!(error = %unmapped, "nagios -v rejected the set with an error that names no machine: the whole set is held");
                    return None;
                }
            };
            for (machine, errors) in named {
                let Some(rejected) = blame::machine_block(compiled, &machine) else {
                    tracing::error!(
                        machine,
                        "nagios -v names a machine the set does not write: the whole set is held"
                    );
                    return None;
                };
                if held.contains_key(&machine) {
                    tracing::error!(
                        machine,
                        "nagios -v still rejects a machine held at its live configuration: the whole set is held"
                    );
                    return None;
                }
                held.insert(
                    machine,
                    HeldMachine {
                        rejected: rejected.to_string(),
                        errors,
                    },
                );
            }
            let names: BTreeSet<String> = held.keys().cloned().collect();
            tracing::error!(machines = ?names, "nagios -v rejected these machines' new configuration: deploying the rest, with them at their last good configuration");
            let spliced = blame::hold(compiled, &self.settings.output, &names);
            let again = deploy::deploy_timed(cfg, &spliced, &mut DeployTimings::default());
            match again {
                Ok(Deployed::Deployed { .. } | Deployed::Unchanged { .. }) => return Some((held, spliced, again)),
                Ok(Deployed::Rejected { errors: more, .. }) => {
                    errors = more;
                    current = spliced;
                }
                _ => {
                    tracing::error!("the set without those machines was not deployed either: the whole set is held");
                    return None;
                }
            }
        }
        tracing::error!(
            rounds = ROUNDS,
            "nagios -v kept naming more machines: the whole set is held"
        );
        None
    }

    /// Write `status.json` for the pass that started at `clock`.
    fn record(
        &self,
        clock: (Instant, u64),
        phases: PhaseTimes,
        report: PassReport,
        pending_profiles: Vec<PathBuf>,
        deploy: serde_json::Value,
        submitted: usize,
    ) {
        let status = Status {
            pid: std::process::id(),
            started_at: clock.1,
            duration_ms: clock.0.elapsed().as_millis() as u64,
            phases,
            report,
            pending_profiles,
            held: self.held.clone(),
            deploy,
            submitted,
            cache: match (&self.store, &self.cache_problem) {
                (Some(_), None) => "persistent".into(),
                (Some(_), Some(p)) => format!("persistent, last save failed: {p}"),
                (None, p) => format!(
                    "memory only: {}",
                    p.as_deref().unwrap_or("the store could not be opened")
                ),
            },
            held_machines: self.held_machines.clone(),
        };
        write_status(&self.settings.state_dir, &status);
    }
}

/// The profiles of one configured directory, or why the pass must be held.
pub fn list_profile_dir(dir: &Path, follow_symlinks_out: bool) -> Result<Listing, String> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("{}: the profile directory is missing", dir.display()));
        }
        Err(e) => return Err(format!("{}: {e}", dir.display())),
        Ok(m) if !m.is_dir() => return Err(format!("{}: not a directory", dir.display())),
        Ok(_) => {}
    }
    let listing = list_profiles(dir, follow_symlinks_out)
        .map_err(|e| format!("{}: cannot list the profiles: {e}", dir.display()))?;
    if listing.files.is_empty() {
        return Err(format!(
            "{}: the profile directory holds no profiles (*.xml, *.xml.gz)",
            dir.display()
        ));
    }
    Ok(listing)
}

/// A watcher over what `s` names: the profile directories (recursively), the translator
/// directories, the users file, and the parent of each (for what happens to them only).
fn build_watcher(s: &Settings, tx: mpsc::Sender<Event>) -> Result<(notify::RecommendedWatcher, Vec<Watched>), String> {
    // The users file, unless the contacts come from LDAP (then `users` is unset: an empty
    // path would be a prefix of every path).
    let users = (s.ldap.is_none() && !s.users.as_os_str().is_empty()).then_some(&s.users);
    // Registrations (written by the forced command) and the site's overrides.
    let info: Vec<(PathBuf, bool)> = match &s.monitoring_info {
        Some(i) => {
            let registered = crate::monitoring_info::registered_dir(&s.state_dir);
            let _ = std::fs::create_dir_all(&registered);
            vec![(registered, false), (i.overrides.clone(), true)]
        }
        None => Vec::new(),
    };
    let ours: Vec<PathBuf> = s
        .profiles
        .iter()
        .chain(&s.translators)
        .chain(users)
        .chain(info.iter().map(|(d, _)| d))
        .cloned()
        .collect();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res
            && !matches!(ev.kind, notify::EventKind::Access(_))
            && ev.paths.iter().any(|p| ours.iter().any(|d| p.starts_with(d)))
        {
            let _ = tx.send(Event::Changed);
        }
    })
    .map_err(|e| format!("cannot watch the profile directories: {e}"))?;
    let dirs: Vec<(PathBuf, bool)> = s
        .profiles
        .iter()
        .map(|d| (d.clone(), true))
        .chain(s.translators.iter().map(|d| (d.clone(), false)))
        .chain(info.iter().cloned())
        .collect();
    let mut parents: Vec<PathBuf> = Vec::new();
    let mut watched = Vec::new();
    for (dir, recursive) in dirs {
        if let Some(p) = dir.parent().filter(|p| !p.as_os_str().is_empty())
            && !parents.iter().any(|q| q == p)
        {
            parents.push(p.to_path_buf());
        }
        let id = add_watch(&mut watcher, &dir, recursive);
        watched.push(Watched {
            path: dir,
            recursive,
            id,
        });
    }
    // The users file is replaced by editors (a rename): watch its directory.
    if let Some(p) = users.and_then(|u| u.parent()).filter(|p| !p.as_os_str().is_empty())
        && !parents.iter().any(|q| q == p)
    {
        parents.push(p.to_path_buf());
    }
    for p in parents {
        add_watch(&mut watcher, &p, false);
    }
    Ok((watcher, watched))
}

fn add_watch(w: &mut notify::RecommendedWatcher, dir: &Path, recursive: bool) -> Option<(u64, u64)> {
    use notify::Watcher;
    let mode = if recursive {
        notify::RecursiveMode::Recursive
    } else {
        notify::RecursiveMode::NonRecursive
    };
    match w.watch(dir, mode) {
        Ok(()) => dir_id(dir),
        Err(e) => {
            tracing::debug!(dir = %dir.display(), error = %e, "cannot watch (yet)");
            None
        }
    }
}

/// What in Nagios's main config would make our output unsafe, at ERROR level.
fn warn_about_main_config(s: &Settings) {
    if let Ok(main) = std::fs::read_to_string(&s.nagios_config)
        && let Some(why) = monitor_runtime::validate::macro_output_unsafe(&main)
    {
        tracing::error!(config = %s.nagios_config.display(), "{why}");
    }
}

/// Open the cache store. A store that cannot be opened (nor removed and rebuilt: an
/// immutable file, a read-only disk) does not stop the daemon: it runs on a memory cache,
/// says so at ERROR level and in status.json.
fn open_store(s: &Settings) -> (Option<Store>, FragmentCache, Option<String>) {
    match Store::open(&s.cache_path()) {
        Ok((store, cache)) => (Some(store), cache, None),
        Err(e) => {
            tracing::error!(error = %e, "RUNNING WITHOUT A PERSISTENT CACHE: every restart parses and translates every profile; fix the cache file and restart");
            (None, FragmentCache::default(), Some(e.to_string()))
        }
    }
}

fn make_engine(s: &Settings) -> Result<(Engine, Option<LdapUsers>), String> {
    let base = s.base_config().unwrap_or_else(|e| {
        // `config::load` refuses such settings; keep the defaults rather than fail here.
        tracing::error!(error = %e, "the base definitions' settings are invalid; using the defaults");
        BaseConfig::default()
    });
    let (users, ldap) = s.user_source()?;
    let mut engine = Engine::new(crate::builtin_translators(), users, base);
    engine.set_status_services(true);
    engine.set_bind_paths(s.bind_paths);
    // `config::load` checked the zones.
    engine.set_zones(s.engine_zones().unwrap_or_default());
    engine.set_deploy_service(Some(DeployService {
        host: s.self_host.clone(),
        contact_groups: s.admin_groups.clone(),
    }));
    Ok((engine, ldap))
}

fn deploy_config(s: &Settings) -> DeployConfig {
    let icinga2 = (s.backend == Backend::Icinga2).then(|| {
        let user = s.icinga2.validate_user.as_deref().or(Some("nagios"));
        let run_as = monitor_runtime::validate::validation_user(user).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot validate as the configured user; validating as this process");
            None
        });
        let nodes = s.icinga_tree().map(|t| t.nodes()).unwrap_or_default();
        Icinga2Deploy {
            validator: Validator {
                bin: s.icinga2.bin.clone(),
                plugin_dir: s.icinga2.plugin_dir.clone(),
                run_as,
                work_dir: s.state_dir.join("verify-icinga2"),
            },
            nodes,
        }
    });
    DeployConfig {
        live: s.output.clone(),
        state_dir: s.state_dir.clone(),
        nagios_bin: if icinga2.is_some() {
            s.icinga2.bin.clone()
        } else {
            s.nagios_bin.clone()
        },
        icinga2,
        nagios_config: s.nagios_config.clone(),
        reload: s.reload_method(),
        keep_rejected: s.keep_rejected,
        validate_user: s.validate_user.clone(),
        status_file: s.nagios_status_file(),
        reload_timeout: Duration::from_secs(s.reload_timeout_seconds),
        pause_at: None,
    }
}

/// The status file's path.
pub fn status_path(state_dir: &Path) -> PathBuf {
    state_dir.join("status.json")
}

fn write_status(state_dir: &Path, status: &Status) {
    let text = serde_json::to_string_pretty(status).unwrap_or_default();
    if let Err(e) = std::fs::create_dir_all(state_dir)
        .and_then(|_| monitor_runtime::writer::write_private(&status_path(state_dir), text.as_bytes()))
    {
        tracing::error!(error = %e, "cannot write status.json");
    }
}
