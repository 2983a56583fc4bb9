//! The compile engine: one pass from profile files to an assembled configuration.
//!
//! 1. read every profile's bytes and blake3-hash them (in parallel, on every core);
//! 2. for a file whose hash and translator identities match the cache, reuse the cached
//!    fragments and registrations and call `notify_unchanged` — nothing is parsed;
//! 3. otherwise parse (monitored components only) and `translate`, while the bytes are
//!    still hot, and drop the profile tree at once;
//! 4. `finish_pass`, our own checks, the managers, and assembly.
//!
//! Output order is deterministic: base definitions, `start_pass` output, machines sorted
//! by name (components in listed order), managers, `finish_pass` output.
//!
//! The engine never writes files, runs Nagios or watches directories.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

mod incremental;

use crate::base::{BaseConfig, base_definitions, site_definitions};
use crate::cache::{ComponentRecord, Entry, FileStat, FragmentCache, MachineRecord, Translated, TranslatorId};
use crate::checks::Definitions;
use crate::helpers::DEFAULT_HOST;
use crate::managers::dependencies::Explicit;
use crate::managers::{Finding, Registered, ServiceIndex, clusters, dependencies, passive, users};
use crate::nagios::{Bundle, Host, ObjectKind};
use crate::profile::{Select, parse_profile};
use crate::translator::{Context, Registration, ServiceRef, TranslateError, Translator};
use crate::users::{UserSource, UsersError};

/// A failure that stops the whole pass (nothing is written).
#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Users(#[from] UsersError),
}

/// One problem, attributed as precisely as possible: for a profile that could not be
/// read, also the line, column and element path, as fields of the JSON report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub element: Option<String>,
    pub message: String,
}

impl Problem {
    fn new(message: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            ..Problem::default()
        }
    }
    fn at(mut self, at: Option<&crate::cache::ErrorAt>) -> Self {
        if let Some(a) = at {
            self.line = a.line;
            self.column = a.column;
            self.element = a.element.clone();
        }
        self
    }
    fn file(mut self, f: &Path) -> Self {
        self.file = Some(f.to_path_buf());
        self
    }
    fn machine(mut self, m: &str) -> Self {
        self.machine = Some(m.to_string());
        self
    }
    fn component(mut self, c: &str) -> Self {
        self.component = Some(c.to_string());
        self
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(m) = &self.machine {
            parts.push(m.clone());
        }
        if let Some(c) = &self.component {
            parts.push(c.clone());
        }
        if let Some(file) = &self.file
            && !self.message.starts_with(&file.display().to_string())
        {
            parts.push(file.display().to_string());
        }
        if parts.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "[{}] {}", parts.join(" "), self.message)
        }
    }
}

/// What a pass did, for the summary and for `--format json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PassReport {
    /// Profile files seen.
    pub files: usize,
    /// Monitored machines in the output.
    pub machines: usize,
    /// Services in the output.
    pub services: usize,
    /// Profiles parsed in this pass.
    pub parsed: usize,
    /// `translate` calls in this pass.
    pub translated: usize,
    /// Files reused from the cache without parsing.
    pub cache_hits: usize,
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
    /// Listed components that no translator serves.
    pub unknown_components: Vec<Problem>,
    /// How the configuration was assembled in this pass.
    #[serde(default)]
    pub assembly: Assembly,
}

/// How a pass assembled its configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Assembly {
    /// From every machine: the first pass, or a change the incremental path cannot take.
    #[default]
    Full,
    /// The last pass's assembly patched with the changed machines only.
    Incremental,
    /// Nothing the assembly depends on changed: the last one stands as it is.
    Reused,
}

pub use crate::output::Output;

/// How one monitored (machine, component) fared in a pass: reported to Nagios on its
/// `monitoring: <component>` service by the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub file: PathBuf,
    pub machine: String,
    pub component: String,
    /// The errors for this machine and component (or for the whole machine), if any.
    pub errors: Vec<String>,
    /// True when the error is that the profile could not be read.
    pub profile_error: bool,
}

/// The description of the status service of `component`.
pub fn status_service_description(component: &str) -> String {
    format!("monitoring: {component}")
}

/// The result of one pass.
#[derive(Debug)]
pub struct PassResult {
    pub output: Output,
    pub report: PassReport,
    /// Profile files whose cache entry changed or went away in this pass.
    pub changed_files: Vec<PathBuf>,
}

/// Debug timings of the assembly's phases (`RUST_LOG=monitor_core=debug`).
struct Phases {
    last: std::time::Instant,
    marks: Vec<(&'static str, f64)>,
}

impl Phases {
    fn start() -> Self {
        Phases {
            last: std::time::Instant::now(),
            marks: Vec::new(),
        }
    }

    fn mark(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.marks.push((name, (now - self.last).as_secs_f64() * 1000.0));
        self.last = now;
    }

    fn log(&self, what: &str) {
        let marks: Vec<String> = self.marks.iter().map(|(n, ms)| format!("{n} {ms:.1}")).collect();
        tracing::debug!("{what} phases (ms): {}", marks.join(", "));
    }
}

/// What reading one file found.
enum Processed {
    /// The cached entry stands as it is.
    Reuse,
    /// The cached entry stands; the file was touched without a content change.
    NewStat(FileStat),
    /// A new entry (parsed and translated, or a new error).
    Fresh(Entry),
}

/// Where the machine files go inside the output directory.
pub const MACHINES_DIR: &str = "20-machines";

/// How many files the machines are spread over. A fleet of 10,000 machines is written as
/// 256 files of about 40 machines each, not 10,000 files: creating files dominates a cold
/// compile and every deploy otherwise.
pub const MACHINE_SHARDS: u32 = 256;

/// The output file (relative to the output directory) that holds `machine`'s host and
/// services: `20-machines/<xx>.cfg`, chosen by the machine name's hash, so it stays the
/// same as the fleet grows and shrinks.
pub fn machine_file(machine: &str) -> PathBuf {
    shard_file(shard_of(machine))
}

/// The shard (0 to [`MACHINE_SHARDS`] - 1) of `machine`.
fn shard_of(machine: &str) -> usize {
    (blake3::hash(machine.as_bytes()).as_bytes()[0] as u32 % MACHINE_SHARDS) as usize
}

/// The output file of a shard.
fn shard_file(shard: usize) -> PathBuf {
    Path::new(MACHINES_DIR).join(format!("{shard:02x}.cfg"))
}

struct Slot {
    translator: Box<dyn Translator>,
    id: TranslatorId,
    /// Consecutive passes whose start_pass or finish_pass failed.
    failures: u32,
    /// Set after [`MAX_FAILURES`] such passes: the translator is no longer called.
    broken: Option<String>,
}

impl Slot {
    /// Count a failing `start_pass` or `finish_pass`; after [`MAX_FAILURES`] in a row the
    /// translator is marked broken. Returns the reason to report.
    fn failed(&mut self, reason: String) -> String {
        self.failures += 1;
        if self.failures < MAX_FAILURES {
            return reason;
        }
        let reason = format!("broken after {} failing passes: {reason}", self.failures);
        tracing::error!(translator = %self.id, "{reason}");
        self.broken = Some(reason.clone());
        reason
    }
}

/// A translator whose `start_pass` or `finish_pass` fails this many passes in a row is
/// marked broken until it is replaced (a new library, or a restart).
pub const MAX_FAILURES: u32 = 3;

/// The compile engine. Keep one alive across passes to benefit from its cache.
pub struct Engine {
    slots: Vec<Slot>,
    by_component: rustc_hash::FxHashMap<String, usize>,
    cache: FragmentCache,
    users: Box<dyn UserSource>,
    base: BaseConfig,
    parsed: AtomicUsize,
    translated: AtomicUsize,
    /// Components whose translator cannot be used in this pass, and why.
    unavailable: HashMap<String, String>,
    /// Translator libraries that failed to load, reported on every pass until fixed.
    broken_libraries: BTreeMap<PathBuf, String>,
    /// Add a passive `monitoring: <component>` service per machine and component.
    status_services: bool,
    /// The last assembly, reused when nothing it depends on changed.
    last: Option<LastPass>,
    /// Keep what the incremental assembly needs (off for a single pass).
    incremental: bool,
    /// The daemon's own `monitor-compile: deploy` service, if any.
    deploy_service: Option<DeployService>,
    /// Which file each machine came from in the last full assembly: when a second file
    /// claims a machine, its owner keeps it.
    owners: std::sync::Mutex<BTreeMap<String, PathBuf>>,
    /// A file whose path does not name its machine is an error (`set_bind_paths`).
    bind_paths: bool,
    /// Files this pass keeps at their last good configuration without opening them
    /// (under a path the listing could not list or must not follow).
    not_read: rustc_hash::FxHashSet<PathBuf>,
}

/// The passive service that carries the daemon's deploy result (held, rejected, rolled
/// back or deployed), on the monitoring server's own host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployService {
    /// The host it belongs to: a compiled machine of that name, or else a virtual host
    /// of that name defined here.
    pub host: String,
    /// Contact groups notified (those the users source defines; others are warned about).
    pub contact_groups: Vec<String>,
}

/// The description of the daemon's deploy service.
pub const DEPLOY_SERVICE: &str = "monitor-compile: deploy";

/// The output file that holds the deploy service (and its virtual host).
pub const DEPLOY_FILE: &str = "35-monitor-compile.cfg";

/// The pass error for an output without a single service, which Nagios refuses to load.
pub const NO_SERVICE: &str = "the output defines no service, and Nagios refuses to start without one";

struct LastPass {
    fingerprint: blake3::Hash,
    output: Output,
    report: PassReport,
    /// What the incremental path needs to patch this assembly; only kept for an
    /// assembly without errors.
    delta: Option<incremental::DeltaState>,
}

/// The source name of the cluster manager's definitions.
const CLUSTER_SOURCE: &str = "the cluster manager";

pub(crate) const HEADER: &str = "# Generated by monitor-compile. Do not edit: changes are overwritten.\n\n";

impl Engine {
    /// An engine with these translators (one per component; a later one for the same
    /// component replaces an earlier one, with a log line).
    pub fn new(translators: Vec<Box<dyn Translator>>, users: Box<dyn UserSource>, base: BaseConfig) -> Self {
        let mut engine = Engine {
            slots: Vec::new(),
            by_component: Default::default(),
            cache: FragmentCache::default(),
            users,
            base,
            parsed: AtomicUsize::new(0),
            translated: AtomicUsize::new(0),
            unavailable: HashMap::new(),
            broken_libraries: BTreeMap::new(),
            status_services: false,
            last: None,
            incremental: true,
            deploy_service: None,
            owners: Default::default(),
            bind_paths: false,
            not_read: Default::default(),
        };
        for t in translators {
            engine.add_translator(t, "builtin");
        }
        engine
    }

    /// Add (or replace) the translator for its component. `origin` is part of its
    /// identity in the cache key.
    pub fn add_translator(&mut self, translator: Box<dyn Translator>, origin: &str) {
        let id = TranslatorId {
            component: translator.component().to_string(),
            version: translator.version().to_string(),
            origin: origin.to_string(),
        };
        let slot = Slot {
            translator,
            id,
            failures: 0,
            broken: None,
        };
        match self.by_component.get(&slot.id.component) {
            Some(&i) => {
                tracing::info!(component = %slot.id.component, old = %self.slots[i].id, new = %slot.id, "translator replaced");
                self.slots[i] = slot;
            }
            None => self.slots.push(slot),
        }
        self.reindex();
    }

    /// Keep the slots sorted by component (the start/finish order) and the index in step.
    fn reindex(&mut self) {
        self.slots.sort_by(|a, b| a.id.component.cmp(&b.id.component));
        self.by_component = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.component.clone(), i))
            .collect();
    }

    /// The identities of the loaded translators, sorted by component.
    pub fn translators(&self) -> impl Iterator<Item = &TranslatorId> {
        self.slots.iter().map(|s| &s.id)
    }

    /// The cache (for persistence).
    pub fn cache(&self) -> &FragmentCache {
        &self.cache
    }

    /// Take the cache out (to move it to a new engine), leaving an empty one.
    pub fn take_cache(&mut self) -> FragmentCache {
        std::mem::take(&mut self.cache)
    }

    /// Replace the cache (after loading a persisted one).
    pub fn set_cache(&mut self, cache: FragmentCache) {
        self.cache = cache;
    }

    /// Add a passive `monitoring: <component>` service for every monitored machine and
    /// component, notifying the component's contact groups, so that the daemon can report
    /// each one's compile result through Nagios.
    pub fn set_status_services(&mut self, on: bool) {
        self.status_services = on;
    }

    /// Add the daemon's `monitor-compile: deploy` passive service (see [`DeployService`]).
    /// Require every profile's path to name its machine (see [`path_names_machine`]): a
    /// site in the LCFG layout, or with files named after their machines, thus binds each
    /// machine to one file, and a file claiming another machine is an error.
    pub fn set_bind_paths(&mut self, on: bool) {
        self.bind_paths = on;
    }

    pub fn set_deploy_service(&mut self, service: Option<DeployService>) {
        self.deploy_service = service;
    }

    /// Whether to keep, after a full assembly, what the next pass needs to patch it
    /// (`engine::incremental`; on by default). A single pass (`--once`) turns it off.
    pub fn set_incremental(&mut self, on: bool) {
        self.incremental = on;
    }

    /// Remove the translator of `component` (its library was removed or is broken). Its
    /// machines keep their last good configuration, with an error, until one returns.
    pub fn remove_translator(&mut self, component: &str) {
        self.slots.retain(|s| s.id.component != component);
        self.reindex();
    }

    /// Install a plugin translator. A plugin replaces a built-in translator of the same
    /// component (installing a package is an explicit choice); the replacement is logged.
    pub fn add_plugin(&mut self, plugin: crate::plugin::host::PluginTranslator) {
        self.broken_libraries.remove(&plugin.path);
        if let Some(&i) = self.by_component.get(plugin.component()) {
            tracing::info!(
                component = %plugin.component(),
                replaced = %self.slots[i].id,
                library = %plugin.path.display(),
                "the plugin library takes precedence over the translator already loaded"
            );
        }
        let origin = format!("plugin {} {}", plugin.path.display(), plugin.digest);
        self.add_translator(Box::new(plugin), &origin);
    }

    /// Record a library that failed to load: it is reported on every pass until it
    /// loads, and the machines of its component keep their last good configuration.
    pub fn note_broken_library(&mut self, path: &Path, reason: &str) {
        self.broken_libraries.insert(path.to_path_buf(), reason.to_string());
    }

    /// A translator library is gone from disk (its package was uninstalled): forget it
    /// as broken, and remove the translator it provided. Returns that translator's
    /// component. Its machines lose that component's services on the next pass (no
    /// translator serves it any more), which the daemon's removal guard sees and names.
    pub fn library_removed(&mut self, path: &Path) -> Option<String> {
        self.broken_libraries.remove(path);
        let prefix = format!("plugin {} ", path.display());
        let component = self
            .slots
            .iter()
            .find(|s| s.id.origin.starts_with(&prefix))
            .map(|s| s.id.component.clone())?;
        tracing::warn!(
            component,
            library = %path.display(),
            "translator uninstalled: its services are removed from every machine"
        );
        self.remove_translator(&component);
        Some(component)
    }

    /// True when no translator serves `component` and none is expected to: it is not
    /// loaded, did not fail this pass, and no library is broken (a broken library may be
    /// the one that serves it, so then its machines keep their last good output).
    fn uninstalled(&self, component: &str) -> bool {
        !self.by_component.contains_key(component)
            && !self.unavailable.contains_key(component)
            && self.broken_libraries.is_empty()
    }

    /// Whether a cached component record can stand for this pass.
    fn record_current(&self, c: &ComponentRecord) -> bool {
        if c.translator.is_some() && self.uninstalled(&c.component) {
            // Its translator is gone for good: translate again, without it.
            return false;
        }
        if c.translator.is_some() && self.unavailable_reason(&c.component).is_some() {
            // The translator cannot run: the last good output stands.
            return true;
        }
        match self.by_component.get(&c.component) {
            Some(&i) => !self.slots[i].translator.always_run() && Some(&self.slots[i].id) == c.translator.as_ref(),
            None => c.translator.is_none(),
        }
    }

    /// Why `component`'s translator cannot be used in this pass, if it cannot.
    fn unavailable_reason(&self, component: &str) -> Option<String> {
        if let Some(r) = self.unavailable.get(component) {
            return Some(r.clone());
        }
        if self.by_component.contains_key(component) {
            return None;
        }
        let broken: Vec<String> = self.broken_libraries.keys().map(|p| p.display().to_string()).collect();
        Some(if broken.is_empty() {
            "no translator is loaded for it".to_string()
        } else {
            format!(
                "no translator is loaded for it (broken libraries: {})",
                broken.join(", ")
            )
        })
    }

    /// Run one pass over `files` (sorted here; duplicates ignored).
    /// A pass over `listing`: its files, and the files last read under each of its
    /// problem paths, which keep their last good configuration without being opened,
    /// rather than being taken as removed. Each problem is an error naming its path.
    pub fn run_listing(&mut self, listing: &Listing) -> Result<PassResult, EngineError> {
        let mut files = listing.files.clone();
        let mut held = rustc_hash::FxHashSet::default();
        for (path, _) in &listing.problems {
            held.extend(self.cache.entries.keys().filter(|f| f.starts_with(path)).cloned());
        }
        files.extend(held.iter().cloned());
        // Held files are not opened (a symlink out of the tree must never be read).
        self.not_read = held;
        let result = self.run_pass(&files);
        self.not_read.clear();
        let mut result = result?;
        for (path, why) in &listing.problems {
            result.report.errors.push(
                Problem::new(format!(
                    "{}: {why}; what it held keeps its last good configuration",
                    path.display()
                ))
                .file(path),
            );
        }
        Ok(result)
    }

    pub fn run_pass(&mut self, files: &[PathBuf]) -> Result<PassResult, EngineError> {
        let mut phase = Phases::start();
        let contacts = self.users.contacts()?;
        let mut files: Vec<PathBuf> = files.to_vec();
        files.sort();
        files.dedup();
        let parsed0 = self.parsed.load(Ordering::Relaxed);
        let translated0 = self.translated.load(Ordering::Relaxed);
        let mut report = PassReport {
            files: files.len(),
            ..PassReport::default()
        };

        for c in contacts.iter().filter(|c| !c.has_address()) {
            report.warnings.push(Problem::new(format!(
                "{}: contact {} has no notification address (email, xmpp or slack): nobody is told through it",
                self.users.describe(),
                c.name
            )));
        }
        for reason in self.broken_libraries.values() {
            report
                .errors
                .push(Problem::new(format!("broken translator library: {reason}")));
        }
        // start_pass, in component order. A translator that fails here sits this pass
        // out: its machines keep their last good configuration, and its last good
        // start_pass output stands.
        self.unavailable.clear();
        let mut start = Vec::new();
        for slot in &mut self.slots {
            let comp = slot.id.component.clone();
            let reason = match &slot.broken {
                Some(reason) => reason.clone(),
                None => match guarded(|| slot.translator.start_pass()) {
                    Ok(b) => {
                        self.cache.pass_outputs.entry(comp.clone()).or_default().start = Some(b.clone());
                        start.push((comp, b));
                        continue;
                    }
                    Err(e) => slot.failed(format!("start_pass failed: {e}")),
                },
            };
            self.unavailable.insert(comp, reason);
        }
        // Translators that are unavailable, or whose library is gone while machines still
        // carry their output: their last good pass-level output stands.
        // (Which components machines still carry output of is only needed when some
        // translator is gone.)
        let gone = self
            .cache
            .pass_outputs
            .keys()
            .any(|c| !self.by_component.contains_key(c));
        let referenced: BTreeSet<&str> = if gone {
            self.cache
                .entries
                .values()
                .filter_map(|e| e.record.as_ref())
                .flat_map(|r| {
                    r.components
                        .iter()
                        .filter(|c| c.good.is_some())
                        .map(|c| c.component.as_str())
                })
                .collect()
        } else {
            BTreeSet::new()
        };
        let stale: Vec<String> = self
            .cache
            .pass_outputs
            .keys()
            .filter(|c| {
                self.unavailable.contains_key(*c)
                    || (!self.by_component.contains_key(*c) && referenced.contains(c.as_str()))
            })
            .cloned()
            .collect();
        let mut last_finish = Vec::new();
        for comp in stale {
            let last = &self.cache.pass_outputs[&comp];
            if let Some(b) = &last.start {
                start.push((comp.clone(), b.clone()));
            }
            if let Some(b) = &last.finish {
                last_finish.push((comp, b.clone()));
            }
        }
        start.sort_by(|a, b| a.0.cmp(&b.0));

        // Read, hash, and (for changed files) parse and translate, in parallel.
        phase.mark("start_pass");
        let this = &*self;
        let fresh: Vec<(usize, Processed)> = files
            .par_iter()
            .enumerate()
            .map(|(i, file)| (i, this.process_file(file)))
            .collect();
        let mut hits = vec![false; files.len()];
        let mut changed_files = Vec::new();
        // Files with a fresh entry, with the entry it replaced: the incremental assembly
        // compares the two.
        let mut fresh_entries: Vec<(PathBuf, Option<Entry>)> = Vec::new();
        for (i, processed) in fresh {
            match processed {
                Processed::Fresh(e) => {
                    if self.cache.entries.get(&files[i]) != Some(&e) {
                        changed_files.push(files[i].clone());
                    }
                    let old = self.cache.entries.insert(files[i].clone(), e);
                    fresh_entries.push((files[i].clone(), old));
                }
                Processed::NewStat(st) => {
                    hits[i] = true;
                    changed_files.push(files[i].clone());
                    if let Some(e) = self.cache.entries.get_mut(&files[i]) {
                        e.stat = Some(st);
                    }
                }
                Processed::Reuse => hits[i] = true,
            }
        }
        report.cache_hits = hits.iter().filter(|h| **h).count();
        phase.mark("files");
        // Every file now has an entry: entries beyond them are of files gone.
        if self.cache.entries.len() > files.len() {
            let keep: std::collections::HashSet<&PathBuf> = files.iter().collect();
            self.cache.entries.retain(|f, _| {
                let kept = keep.contains(f);
                if !kept {
                    changed_files.push(f.clone());
                }
                kept
            });
        }

        phase.mark("forget removed");
        let mut finish = Vec::new();
        for slot in &mut self.slots {
            let comp = slot.id.component.clone();
            if self.unavailable.contains_key(&comp) {
                continue;
            }
            match guarded(|| slot.translator.finish_pass()) {
                Ok(b) => {
                    slot.failures = 0;
                    self.cache.pass_outputs.entry(comp.clone()).or_default().finish = Some(b.clone());
                    finish.push((comp, b));
                }
                Err(e) => {
                    slot.failed(format!("finish_pass failed: {e}"));
                    report
                        .errors
                        .push(Problem::new(format!("finish_pass failed: {e}")).component(&comp));
                }
            }
        }

        finish.extend(last_finish);
        finish.sort_by(|a, b| a.0.cmp(&b.0));
        phase.mark("finish_pass");
        // When no entry changed and every other input of the assembly is the same as last
        // time, so is the assembled output: reuse it. When only some machines' entries
        // changed, patch the last assembly with them if that is provably the same as
        // assembling again (see `incremental`); otherwise assemble from every machine.
        let fingerprint = self.fingerprint(&files, &start, &finish, &contacts);
        phase.mark("fingerprint");
        let same_inputs = self.last.as_ref().is_some_and(|l| l.fingerprint == fingerprint);
        let patched = match self.last.take() {
            Some(last) if same_inputs && fresh_entries.is_empty() => Some((last, Assembly::Reused)),
            Some(last) if same_inputs && report.errors.is_empty() => match self.patch(last, &fresh_entries) {
                Ok(last) => Some((last, Assembly::Incremental)),
                Err(why) => {
                    tracing::debug!(why, "assembling in full");
                    None
                }
            },
            _ => None,
        };
        let output = match patched {
            Some((last, how)) => {
                let (files_n, hits) = (report.files, report.cache_hits);
                report = last.report.clone();
                report.files = files_n;
                report.cache_hits = hits;
                report.assembly = how;
                let output = last.output.clone();
                self.last = Some(last);
                output
            }
            None => {
                let (output, delta) = self.assemble(&files, start, finish, &contacts, &mut report);
                report.assembly = Assembly::Full;
                self.last = Some(LastPass {
                    fingerprint,
                    output: output.clone(),
                    report: report.clone(),
                    delta,
                });
                output
            }
        };
        phase.mark("assemble");
        let mut output = output;
        if let Some(d) = &self.deploy_service {
            self.add_deploy_service(d, &contacts, &mut output, &mut report);
        }
        // Nagios refuses to start on an output without a service: say so before it does.
        if report.services == 0 {
            report.errors.push(Problem::new(NO_SERVICE));
        }
        report.parsed = self.parsed.load(Ordering::Relaxed) - parsed0;
        report.translated = self.translated.load(Ordering::Relaxed) - translated0;
        phase.log("pass");
        changed_files.sort();
        Ok(PassResult {
            output,
            report,
            changed_files,
        })
    }

    /// Everything the assembly depends on besides the cache entries.
    fn fingerprint(
        &self,
        files: &[PathBuf],
        start: &[(String, Bundle)],
        finish: &[(String, Bundle)],
        contacts: &[crate::users::ContactInfo],
    ) -> blake3::Hash {
        let mut h = blake3::Hasher::new();
        for f in files {
            h.update(f.as_os_str().as_encoded_bytes());
            h.update(&[0]);
        }
        let ids: Vec<&TranslatorId> = self.translators().collect();
        let mut unavailable: Vec<(&String, &String)> = self.unavailable.iter().collect();
        unavailable.sort();
        // Contact names are the users file's keys, not serialised with the contacts.
        let names: Vec<&str> = contacts.iter().map(|c| c.name.as_str()).collect();
        let rest = (
            start,
            finish,
            contacts,
            names,
            ids,
            unavailable,
            &self.broken_libraries,
            self.status_services,
            &self.base,
        );
        h.update(&serde_json::to_vec(&rest).unwrap_or_default());
        h.finalize()
    }

    /// How each monitored (machine, component) with a translator fared in the pass that
    /// produced `report` (the last pass), sorted: what the daemon reports through Nagios.
    /// Not part of the pass itself, which needs none of it.
    pub fn outcomes(&self, report: &PassReport) -> Vec<Outcome> {
        let mut files: Vec<&PathBuf> = self.cache.entries.keys().collect();
        files.sort();
        let mut errors: HashMap<(&str, Option<&str>), Vec<String>> = HashMap::new();
        for p in &report.errors {
            if let Some(m) = &p.machine {
                errors
                    .entry((m.as_str(), p.component.as_deref()))
                    .or_default()
                    .push(p.message.clone());
            }
        }
        let mut out = Vec::new();
        for file in files {
            let Some(entry) = self.cache.get(file) else { continue };
            let Some(rec) = &entry.record else { continue };
            for c in rec.components.iter().filter(|c| c.translator.is_some()) {
                let mut errs: Vec<String> = errors.get(&(rec.machine.as_str(), None)).cloned().unwrap_or_default();
                errs.extend(
                    errors
                        .get(&(rec.machine.as_str(), Some(c.component.as_str())))
                        .cloned()
                        .unwrap_or_default(),
                );
                out.push(Outcome {
                    file: file.to_path_buf(),
                    machine: rec.machine.clone(),
                    component: c.component.clone(),
                    errors: errs,
                    profile_error: entry.profile_error.is_some(),
                });
            }
        }
        out.sort_by(|a, b| (&a.machine, &a.component).cmp(&(&b.machine, &b.component)));
        out.dedup_by(|a, b| a.machine == b.machine && a.component == b.component);
        out
    }

    /// Call `notify_unchanged` for a machine whose cached entry is reused (on the
    /// reading thread: like `translate`, it runs for several machines at once).
    fn notify_unchanged(&self, entry: &Entry) {
        let Some(rec) = &entry.record else { return };
        for c in &rec.components {
            if let Some(&i) = self.by_component.get(&c.component) {
                let t = &self.slots[i].translator;
                let _ = guarded(|| {
                    t.notify_unchanged(&rec.machine);
                    Ok(())
                });
            }
        }
    }

    /// Read one file; `None` when the cache entry can be reused as it is.
    fn process_file(&self, file: &Path) -> Processed {
        let previous = self.cache.get(file);
        if self.not_read.contains(file) {
            return Processed::Fresh(Entry {
                hash: [0; 32],
                stat: None,
                record: previous.and_then(|p| p.record.clone()),
                profile_error: Some(format!(
                    "{}: not read: its path cannot be listed or leads out of the profile tree (keeping the last good configuration)",
                    file.display()
                )),
                profile_error_at: None,
            });
        }
        let stat = FileStat::of_path(file);
        // The cheap change test: same size, times and inode as when last read.
        if let (Some(p), Some(st)) = (previous, stat)
            && p.stat == Some(st)
            && FragmentCache::reusable(p, &p.hash, |c| self.record_current(c))
        {
            self.notify_unchanged(p);
            return Processed::Reuse;
        }
        // Hash and parse while the bytes are hot, in this one read.
        let read = with_file_bytes(file, |raw| {
            let hash = *blake3::hash(raw).as_bytes();
            if previous.is_some_and(|p| FragmentCache::reusable(p, &hash, |c| self.record_current(c))) {
                return (hash, None);
            }
            self.parsed.fetch_add(1, Ordering::Relaxed);
            (hash, Some(parse_profile(file, raw, Select::Monitoring)))
        });
        let (hash, parsed) = match read {
            Ok(read) => read,
            Err(e) => {
                return Processed::Fresh(Entry {
                    hash: [0; 32],
                    stat: None,
                    record: previous.and_then(|p| p.record.clone()),
                    profile_error: Some(format!("{}: cannot read file: {e}", file.display())),
                    profile_error_at: None,
                });
            }
        };
        let Some(parsed) = parsed else {
            // Touched but not changed: only the stat is new.
            if let Some(p) = previous {
                self.notify_unchanged(p);
                if let Some(st) = stat
                    && p.stat != Some(st)
                {
                    return Processed::NewStat(st);
                }
            }
            return Processed::Reuse;
        };
        let profile = match parsed {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "profile rejected; keeping the last good configuration");
                return Processed::Fresh(Entry {
                    hash,
                    stat,
                    record: previous.and_then(|p| p.record.clone()),
                    profile_error: Some(e.to_string()),
                    profile_error_at: Some(crate::cache::ErrorAt {
                        line: e.line,
                        column: e.column,
                        element: e.element.clone(),
                    }),
                });
            }
        };
        let old = previous
            .and_then(|p| p.record.as_ref())
            .filter(|r| r.machine == profile.machine);
        let mut components = Vec::new();
        let mut seen = BTreeSet::new();
        for name in &profile.monitored {
            if !seen.insert(name.as_str()) {
                continue;
            }
            let previous_record = old.and_then(|r| r.components.iter().find(|c| &c.component == name));
            if let Some(prev) = previous_record.filter(|p| p.translator.is_some())
                && self.unavailable_reason(name).is_some()
                && !self.uninstalled(name)
            {
                // The translator cannot run now: keep what it produced last time.
                components.push(prev.clone());
                continue;
            }
            let Some(&i) = self
                .by_component
                .get(name)
                .filter(|_| !self.unavailable.contains_key(name))
            else {
                components.push(ComponentRecord {
                    component: name.clone(),
                    translator: None,
                    good: None,
                    error: None,
                });
                continue;
            };
            let slot = &self.slots[i];
            let empty = crate::profile::Component::default();
            let comp = profile.component(name).unwrap_or(&empty);
            let mut ctx = Context::new(&profile.machine, name);
            self.translated.fetch_add(1, Ordering::Relaxed);
            let result = guarded(|| slot.translator.translate(&profile.machine, comp, &mut ctx)).and_then(|b| {
                b.check()
                    .map_err(|e| TranslateError::Other(format!("unsafe output: {e}")))?;
                Ok(b)
            });
            let record = match result {
                Ok(fragments) => {
                    let (registrations, warnings) = ctx.into_parts();
                    let rendered = fragments.render();
                    ComponentRecord {
                        component: name.clone(),
                        translator: Some(slot.id.clone()),
                        good: Some(Translated {
                            fragments,
                            rendered,
                            registrations,
                            warnings,
                        }),
                        error: None,
                    }
                }
                Err(e) => {
                    tracing::warn!(machine = %profile.machine, component = %name, error = %e, "translation failed");
                    let last_good = old
                        .and_then(|r| r.components.iter().find(|c| &c.component == name))
                        .and_then(|c| c.good.clone());
                    ComponentRecord {
                        component: name.clone(),
                        translator: Some(slot.id.clone()),
                        good: last_good,
                        error: Some(e.to_string()),
                    }
                }
            };
            components.push(record);
        }
        Processed::Fresh(Entry {
            hash,
            stat,
            record: Some(MachineRecord {
                machine: profile.machine,
                components,
            }),
            profile_error: None,
            profile_error_at: None,
        })
    }

    fn assemble(
        &self,
        files: &[PathBuf],
        start: Vec<(String, Bundle)>,
        finish: Vec<(String, Bundle)>,
        contacts: &[crate::users::ContactInfo],
        report: &mut PassReport,
    ) -> (Output, Option<incremental::DeltaState>) {
        // Machines, sorted by name, each from the one file that owns it.
        let mut claims: BTreeMap<&str, Vec<(&Path, &MachineRecord)>> = BTreeMap::new();
        for file in files {
            let Some(entry) = self.cache.get(file) else {
                continue;
            };
            if let Some(err) = &entry.profile_error {
                let mut p = Problem::new(err.clone()).file(file).at(entry.profile_error_at.as_ref());
                if let Some(r) = &entry.record {
                    p = p.machine(&r.machine);
                }
                report.errors.push(p);
            }
            let Some(rec) = &entry.record else { continue };
            if self.bind_paths && !path_names_machine(file, &rec.machine) {
                report.errors.push(
                    Problem::new(format!(
                        "this file's path does not name machine {} (bind_paths): it is ignored",
                        rec.machine
                    ))
                    .file(file)
                    .machine(&rec.machine),
                );
                continue;
            }
            claims.entry(&rec.machine).or_default().push((file, rec));
        }
        // A poisoned lock only means a panic elsewhere: the map itself is whole.
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        let mut machines: BTreeMap<&str, (&Path, &MachineRecord)> = BTreeMap::new();
        for (machine, claimants) in claims {
            if let [only] = claimants[..] {
                machines.insert(machine, only);
                continue;
            }
            machines.extend(resolve_claims(machine, &claimants, owners.get(machine), report).map(|c| (machine, c)));
        }
        owners.clear();
        owners.extend(machines.iter().map(|(m, (f, _))| (m.to_string(), f.to_path_buf())));
        drop(owners);

        let mut phase = Phases::start();
        let base = base_definitions(&self.base);
        let mut defs = Definitions::default();
        if let Err(e) = defs.define(&base, "the base definitions") {
            report.errors.push(Problem::new(e));
        }
        for (kind, name, template) in site_definitions(&self.base) {
            defs.define_external(kind, &name, template, "the site (site_objects)");
        }
        let start_ok = accept_pass_output(&mut defs, start, "start_pass", report);
        let finish_ok = accept_pass_output(&mut defs, finish, "finish_pass", report);

        phase.mark("machines");
        // Per machine: which components' fragments survive our checks.
        let mut kept: Kept<'_> = BTreeMap::new();
        for (machine, (file, rec)) in &machines {
            let mut parts = Vec::new();
            // The engine's host for the machine is defined first: a translator that emits
            // a host of the machine's name is then an error for that component.
            if !rec.components.is_empty()
                && let Err(e) = defs.define(
                    &Bundle::new().with(Host::new(DEFAULT_HOST).host_name(*machine)),
                    "the engine",
                )
            {
                report.errors.push(Problem::new(e).file(file).machine(machine));
            }
            for c in &rec.components {
                if c.translator.is_some()
                    && let Some(reason) = self.unavailable_reason(&c.component)
                {
                    report.errors.push(
                        Problem::new(format!(
                            "translator unavailable: {reason} (keeping the last good configuration)"
                        ))
                        .file(file)
                        .machine(machine)
                        .component(&c.component),
                    );
                } else if c.translator.is_none() {
                    // Reported with the machine's output (`render_machine`).
                    continue;
                }
                if let Some(e) = &c.error {
                    let kept_note = if c.good.is_some() {
                        " (keeping its last good configuration)"
                    } else {
                        ""
                    };
                    report.errors.push(
                        Problem::new(format!("{e}{kept_note}"))
                            .file(file)
                            .machine(machine)
                            .component(&c.component),
                    );
                }
                let Some(t) = &c.good else { continue };
                let source = fragment_source(&c.component, machine);
                match defs.define(&t.fragments, &source) {
                    Ok(()) => parts.push(Part {
                        component: &c.component,
                        translated: t,
                    }),
                    Err(e) => {
                        let by = c
                            .translator
                            .as_ref()
                            .map(|id| format!("translator {id}: "))
                            .unwrap_or_default();
                        report.errors.push(
                            Problem::new(format!("{by}{e}"))
                                .file(file)
                                .machine(machine)
                                .component(&c.component),
                        )
                    }
                }
            }
            if !rec.components.is_empty() {
                kept.insert(machine, (file, parts));
            }
        }
        let file_of = |m: &Option<String>| m.as_deref().and_then(|m| machines.get(m)).map(|(f, _)| *f);
        let finding = |f: &Finding| Problem {
            file: file_of(&f.machine).map(Path::to_path_buf),
            machine: f.machine.clone(),
            component: f.component.clone(),
            message: f.message.clone(),
            ..Problem::default()
        };

        phase.mark("define");
        // Contact groups are defined by the user manager, from every registration.
        let users_out = {
            let registered = registered_of(&kept);
            users::assemble(registered.iter().copied(), contacts)
        };
        for e in &users_out.errors {
            report.errors.push(Problem::new(e.clone()));
        }
        for g in &users_out.groups {
            defs.define_group(g);
        }

        phase.mark("users");
        // Reference checks, repeated until no fragment is dropped: a dropped fragment's
        // definitions may be what another fragment referred to. Only fragments that pass
        // feed the other managers. Checking is read-only: a first pass on every core says
        // whether anything fails at all (usually nothing does).
        let mut check = kept.values().collect::<Vec<_>>().par_iter().any(|(_, parts)| {
            parts
                .iter()
                .any(|p| defs.check_references(&p.translated.fragments, "").is_err())
        });
        // The managers run on the fragments that will be written. A translator's own
        // dependencies that form a cycle leave its fragment out; the managers then run
        // again without it (its services may be cluster members, tags or passive checks),
        // until no fragment is left out.
        let (clusters_out, deps_out, passive_out, explicit) = loop {
            while check {
                check = false;
                for (machine, (file, parts)) in kept.iter_mut() {
                    parts.retain(|p| match defs.check_references(&p.translated.fragments, "") {
                        Ok(()) => true,
                        Err(e) => {
                            report
                                .errors
                                .push(Problem::new(e).file(file).machine(machine).component(p.component));
                            defs.undefine(&p.translated.fragments, &fragment_source(p.component, machine));
                            check = true;
                            false
                        }
                    });
                }
            }
            phase.mark("checks");
            let (clusters_out, deps_out, passive_out, explicit) = {
                let registered = registered_of(&kept);
                let mut services: ServiceIndex<'_> = ServiceIndex::default();
                let mut explicit = Vec::new();
                for (machine, (_, parts)) in &kept {
                    for p in parts {
                        for o in &p.translated.fragments {
                            match o.kind {
                                ObjectKind::Service if !o.is_template() => {
                                    if let (Some(h), Some(d)) =
                                        (o.get_str("host_name"), o.get_str("service_description"))
                                    {
                                        services.insert((h, d), o);
                                    }
                                }
                                ObjectKind::ServiceDependency => {
                                    if let Some((master, dependent)) = dependencies::dependency_ends(o) {
                                        explicit.push(Explicit {
                                            master,
                                            dependent,
                                            machine: machine.to_string(),
                                            component: p.component.to_string(),
                                        });
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                }
                phase.mark("index");
                let clusters_out = clusters::assemble(&registered, &services);
                phase.mark("clusters");
                let deps_out = dependencies::assemble(&registered, &clusters_out.provides, &explicit);
                phase.mark("dependencies");
                let passive_out = passive::assemble(&registered, &services);
                phase.mark("passive");
                (clusters_out, deps_out, passive_out, explicit)
            };
            if deps_out.cyclic_sources.is_empty() {
                break (clusters_out, deps_out, passive_out, explicit);
            }
            // The cycles are reported once, naming each fragment left out; the managers'
            // other findings come from the run on the survivors.
            for f in &deps_out.cycle_errors {
                report.errors.push(finding(f));
            }
            for (machine, component) in &deps_out.cyclic_sources {
                if let Some((_, parts)) = kept.get_mut(machine.as_str()) {
                    parts.retain(|p| {
                        let cyclic = p.component == component;
                        if cyclic {
                            defs.undefine(&p.translated.fragments, &fragment_source(component, machine));
                        }
                        !cyclic
                    });
                }
            }
            check = true;
        };
        for f in clusters_out
            .errors
            .iter()
            .chain(&deps_out.cycle_errors)
            .chain(&deps_out.errors)
            .chain(&passive_out.errors)
        {
            report.errors.push(finding(f));
        }
        for f in clusters_out.warnings.iter().chain(&deps_out.warnings) {
            report.warnings.push(finding(f));
        }
        let manager_warnings = report.warnings.clone();
        let mut clusters_out = clusters_out;
        let mut deps_out = deps_out;
        for (name, b) in [
            ("the cluster manager", &mut clusters_out.objects),
            ("the dependency manager", &mut deps_out.objects),
        ] {
            if let Err(e) = b.check() {
                report
                    .errors
                    .push(Problem::new(format!("{name}: unsafe output left out: {e}")));
                *b = Bundle::new();
            }
        }
        if let Err(e) = defs.define(&clusters_out.objects, CLUSTER_SOURCE) {
            report.errors.push(Problem::new(e));
        }

        phase.mark("managers");
        // Reference checks and rendering, in output order.
        fn checked(defs: &Definitions, b: &Bundle, source: &str, report: &mut PassReport) -> bool {
            match defs.check_references(b, source) {
                Ok(()) => true,
                Err(e) => {
                    report.errors.push(Problem::new(format!("{source}: {e}")));
                    false
                }
            }
        }
        let mut files_out = BTreeMap::new();
        checked(&defs, &base, "the base definitions", report);
        files_out.insert(
            PathBuf::from("00-base.cfg"),
            format!("{HEADER}{}", base.render()).into(),
        );
        let mut text = String::from(HEADER);
        for (comp, b) in &start_ok {
            if checked(&defs, b, &format!("{comp} start_pass"), report) {
                text.push_str(&b.render());
            }
        }
        files_out.insert(PathBuf::from("10-start-pass.cfg"), text.into());

        let mut services = 0;
        // Machines go into hash-sharded files (see `machine_file`), sorted by name within
        // each; a change rewrites only its shard.
        let rendered: Vec<(&str, MachineOut)> = kept
            .iter()
            .collect::<Vec<_>>()
            .par_iter()
            .map(|(machine, (file, parts))| {
                let rec = machines[*machine].1;
                (**machine, self.render_machine(machine, file, rec, parts, &defs))
            })
            .collect();
        phase.mark("render machines");
        let shard_count = MACHINE_SHARDS as usize;
        let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); shard_count];
        for (i, (_, out)) in rendered.iter().enumerate() {
            by_shard[out.shard].push(i);
            services += out.services;
            report.warnings.extend(out.warnings.iter().cloned());
            report.errors.extend(out.errors.iter().cloned());
            report.unknown_components.extend(out.unknown.iter().cloned());
        }
        // Each shard is filled (in name order) on its own.
        let shards: Vec<String> = by_shard
            .par_iter()
            .map(|idx| {
                if idx.is_empty() {
                    return String::new();
                }
                let size = HEADER.len() + idx.iter().map(|&i| rendered[i].1.text.len()).sum::<usize>();
                let mut text = String::with_capacity(size);
                text.push_str(HEADER);
                for &i in idx {
                    text.push_str(&rendered[i].1.text);
                }
                text
            })
            .collect();
        // Sorted by name already: the map is built in one sweep.
        let outs: BTreeMap<String, MachineOut> = rendered.into_iter().map(|(m, o)| (m.to_string(), o)).collect();
        files_out.extend(
            shards
                .into_iter()
                .enumerate()
                .filter(|(_, text)| !text.is_empty())
                .map(|(i, text)| (shard_file(i), text.into())),
        );
        report.machines = kept.len();

        files_out.insert(
            PathBuf::from("30-contacts.cfg"),
            format!("{HEADER}{}", users_out.objects.render()).into(),
        );
        let mut text = String::from(HEADER);
        if checked(&defs, &clusters_out.objects, "the cluster manager", report) {
            services += clusters_out
                .objects
                .iter()
                .filter(|o| o.kind == ObjectKind::Service)
                .count();
            text.push_str(&clusters_out.objects.render());
        }
        files_out.insert(PathBuf::from("31-clusters.cfg"), text.into());

        let mut text = String::from(HEADER);
        if checked(&defs, &deps_out.objects, "the dependency manager", report) {
            text.push_str(&deps_out.objects.render());
        }
        files_out.insert(PathBuf::from("32-dependencies.cfg"), text.into());

        files_out.insert(PathBuf::from(passive::ACL_FILE), passive_out.acl.into());
        let mut text = String::from(HEADER);
        for (comp, b) in &finish_ok {
            if checked(&defs, b, &format!("{comp} finish_pass"), report) {
                text.push_str(&b.render());
            }
        }
        files_out.insert(PathBuf::from("40-finish-pass.cfg"), text.into());
        report.services = services;
        phase.mark("render");
        // Only an assembly without errors is patched later: the incremental path then
        // needs to show only that a change adds none.
        let delta = (self.incremental && report.errors.is_empty()).then(|| {
            let mut bundles: Vec<&Bundle> = vec![&base, &clusters_out.objects, &deps_out.objects];
            bundles.extend(start_ok.iter().chain(&finish_ok).map(|(_, b)| b));
            for (_, parts) in kept.values() {
                bundles.extend(parts.iter().map(|p| &p.translated.fragments));
            }
            incremental::DeltaState::new(
                defs,
                &clusters_out.objects,
                outs,
                &registered_of(&kept),
                &bundles,
                &explicit,
                manager_warnings,
            )
        });
        phase.mark("incremental state");
        phase.log("assembly");
        (Output { files: files_out }, delta)
    }

    /// One kept machine's text in its shard file (host, fragments and status services),
    /// and what it adds to the report. The full and the incremental assembly both use it.
    fn render_machine(
        &self,
        machine: &str,
        file: &Path,
        rec: &MachineRecord,
        parts: &[Part<'_>],
        defs: &Definitions,
    ) -> MachineOut {
        let size: usize = parts.iter().map(|p| p.translated.rendered.len()).sum();
        let mut out = MachineOut {
            text: String::with_capacity(size + 512),
            shard: shard_of(machine),
            ..MachineOut::default()
        };
        for c in rec.components.iter().filter(|c| c.translator.is_none()) {
            out.unknown.push(
                Problem::new(format!("no translator for component {}", c.component))
                    .file(file)
                    .machine(machine)
                    .component(&c.component),
            );
        }
        // Every byte the engine writes passes the same value rules as a translator's: the
        // machine name (checked when read, and again here), the host, the status services.
        let unsafe_output = |what: String| {
            Problem::new(format!("{what}; the machine is left out"))
                .file(file)
                .machine(machine)
        };
        if let Err(why) = crate::profile::check_host_name(machine) {
            out.errors
                .push(unsafe_output(format!("the machine name is not a host name: {why}")));
            return out;
        }
        // Only groups the user manager defined (it refuses a name Nagios cannot take).
        let groups: BTreeSet<&str> = parts
            .iter()
            .flat_map(|p| p.translated.registrations.iter())
            .filter_map(|r| match r {
                Registration::ContactGroup { group } => Some(group.as_str()),
                _ => None,
            })
            .filter(|g| defs.is_defined(ObjectKind::ContactGroup, g))
            .collect();
        let mut host = Host::new(DEFAULT_HOST)
            .host_name(machine)
            .alias(machine)
            .address(machine);
        if !groups.is_empty() {
            host = host.contact_groups(groups.iter().copied());
        }
        if let Err(e) = host.object().check() {
            out.errors
                .push(unsafe_output(format!("its host object is unsafe: {e}")));
            return out;
        }
        let text = &mut out.text;
        text.push_str(&format!("# machine {machine}\n\n"));
        host.object().render_into(text);
        for p in parts {
            out.services += p
                .translated
                .fragments
                .iter()
                .filter(|o| o.kind == ObjectKind::Service && !o.is_template())
                .count();
            if p.translated.rendered.is_empty() && !p.translated.fragments.is_empty() {
                text.push_str(&p.translated.fragments.render());
            } else {
                text.push_str(&p.translated.rendered);
            }
            for w in &p.translated.warnings {
                out.warnings.push(
                    Problem::new(w.clone())
                        .file(file)
                        .machine(machine)
                        .component(p.component),
                );
            }
        }
        if self.status_services {
            for c in rec.components.iter().filter(|c| c.translator.is_some()) {
                let regs = c.good.as_ref().map(|g| g.registrations.as_slice()).unwrap_or_default();
                let svc = self.status_service(machine, &c.component, regs, |g| {
                    defs.is_defined(ObjectKind::ContactGroup, g)
                });
                if let Err(e) = svc.check() {
                    out.errors.push(
                        Problem::new(format!("its status service is unsafe and is left out: {e}"))
                            .file(file)
                            .machine(machine)
                            .component(&c.component),
                    );
                    continue;
                }
                svc.render_into(text);
                out.services += 1;
            }
        }
        out
    }
}

impl Engine {
    /// Add [`DEPLOY_FILE`] to `output`: the deploy service, on a compiled machine of the
    /// configured name or on a virtual host of that name.
    fn add_deploy_service(
        &self,
        d: &DeployService,
        contacts: &[crate::users::ContactInfo],
        output: &mut Output,
        report: &mut PassReport,
    ) {
        let known: BTreeSet<&str> = contacts
            .iter()
            .flat_map(|c| c.groups.iter().map(String::as_str))
            .collect();
        let mut groups = Vec::new();
        for g in &d.contact_groups {
            if known.contains(g.as_str()) {
                groups.push(g.as_str());
            } else {
                report.warnings.push(Problem::new(format!(
                    "admin_groups: contact group {g} is not in the users source; the deploy service does not notify it"
                )));
            }
        }
        let marker = format!("# machine {}\n\n", d.host);
        let compiled = output
            .files
            .get(&machine_file(&d.host))
            .is_some_and(|t| t.contains(&marker));
        let mut objects = Bundle::new();
        if !compiled {
            let mut host = Host::new(DEFAULT_HOST)
                .host_name(&d.host)
                .alias("monitor-compile on the monitoring server")
                .address("127.0.0.1")
                .set(
                    "check_command",
                    crate::nagios::Value::Command(crate::nagios::CheckCommand::new(crate::base::CHECK_DUMMY_UP)),
                );
            if !groups.is_empty() {
                host = host.contact_groups(groups.iter().copied());
            }
            objects.push(host);
        }
        let mut svc = crate::helpers::passive_service(&d.host, DEPLOY_SERVICE, None).text(
            "notes",
            "Whether the daemon could deploy the latest configuration (held, rejected or deployed)",
        );
        if !groups.is_empty() {
            svc = svc.contact_groups(groups);
        }
        objects.push(svc);
        match objects.check() {
            Ok(()) => {
                output.files.insert(
                    PathBuf::from(DEPLOY_FILE),
                    format!("{HEADER}{}", objects.render()).into(),
                );
                report.services += 1;
            }
            Err(e) => report
                .errors
                .push(Problem::new(format!("the deploy service is left out: {e}"))),
        }
    }

    /// The passive service that carries a (machine, component)'s compile result.
    fn status_service(
        &self,
        machine: &str,
        component: &str,
        registrations: &[Registration],
        defined: impl Fn(&str) -> bool,
    ) -> crate::nagios::Object {
        let groups: Vec<&str> = registrations
            .iter()
            .filter_map(|r| match r {
                Registration::ContactGroup { group } if defined(group) => Some(group.as_str()),
                _ => None,
            })
            .collect();
        let mut svc = crate::helpers::passive_service(machine, &status_service_description(component), None).text(
            "notes",
            format!("Whether monitor-compile could translate the {component} component"),
        );
        if !groups.is_empty() {
            svc = svc.contact_groups(groups);
        }
        svc.into_object()
    }
}

/// Check and define translators' `start_pass` or `finish_pass` output; a bundle that fails
/// is left out with an error for its translator.
fn accept_pass_output(
    defs: &mut Definitions,
    outputs: Vec<(String, Bundle)>,
    call: &str,
    report: &mut PassReport,
) -> Vec<(String, Bundle)> {
    let mut ok = Vec::new();
    for (comp, b) in outputs {
        match b
            .check()
            .map_err(|e| e.to_string())
            .and_then(|_| defs.define(&b, &format!("{comp} {call}")))
        {
            Ok(()) => ok.push((comp, b)),
            Err(e) => report
                .errors
                .push(Problem::new(format!("{call} output rejected: {e}")).component(&comp)),
        }
    }
    ok
}

/// One kept machine's share of the output.
#[derive(Debug, Clone, Default)]
struct MachineOut {
    /// Its text in its shard file.
    text: String,
    /// Its shard (see [`machine_file`]).
    shard: usize,
    /// Its services (the machine's own and its status services).
    services: usize,
    /// Its translators' warnings.
    warnings: Vec<Problem>,
    /// Its components that no translator serves.
    unknown: Vec<Problem>,
    /// What the engine's own objects for it could not write safely.
    errors: Vec<Problem>,
}

/// Open a profile for reading: a regular file only (a FIFO would block the pass for
/// ever, a device or a directory is no profile), and no larger than
/// [`crate::profile::MAX_PROFILE_BYTES`]. Opened without blocking, then checked.
fn open_profile(file: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(file)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a directory, FIFO, socket or device)",
        ));
    }
    if meta.len() > crate::profile::MAX_PROFILE_BYTES {
        return Err(too_large());
    }
    Ok(f)
}

fn too_large() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "larger than the {} MiB limit for a profile",
            crate::profile::MAX_PROFILE_BYTES >> 20
        ),
    )
}

/// Read `file` into this thread's reusable buffer and run `f` on its bytes. Each thread
/// reads profile after profile: a new buffer for each would cost a page fault (and the
/// kernel zeroing a page) for every 4 KiB read.
fn with_file_bytes<T>(file: &Path, f: impl FnOnce(&[u8]) -> T) -> std::io::Result<T> {
    use std::io::Read;
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUFFER.with(|buffer| {
        // Busy only if `f` re-entered (a nested rayon task on this thread): then read into
        // a buffer of its own.
        let Ok(mut buf) = buffer.try_borrow_mut() else {
            let mut own = Vec::new();
            open_profile(file)?
                .take(crate::profile::MAX_PROFILE_BYTES + 1)
                .read_to_end(&mut own)?;
            if own.len() as u64 > crate::profile::MAX_PROFILE_BYTES {
                return Err(too_large());
            }
            return Ok(f(&own));
        };
        buf.clear();
        open_profile(file)?
            .take(crate::profile::MAX_PROFILE_BYTES + 1)
            .read_to_end(&mut buf)?;
        if buf.len() as u64 > crate::profile::MAX_PROFILE_BYTES {
            return Err(too_large());
        }
        let out = f(&buf);
        if buf.capacity() > 16 << 20 {
            // Do not keep an outsized profile's buffer for the rest of the process.
            *buf = Vec::new();
        }
        Ok(out)
    })
}

/// One (machine, component)'s kept output during assembly.
struct Part<'a> {
    component: &'a str,
    translated: &'a Translated,
}

type Kept<'a> = BTreeMap<&'a str, (&'a Path, Vec<Part<'a>>)>;

/// Two or more files claim `machine`. Its owner in the last assembly keeps it; failing
/// that, the one file whose path names the machine (see [`path_names_machine`]); failing
/// that, nobody, until one claim remains. Every claimant gets an error, and so the
/// machine's own status services (whose contacts are the owner's) report the claim.
fn resolve_claims<'a>(
    machine: &str,
    claimants: &[(&'a Path, &'a MachineRecord)],
    previous: Option<&PathBuf>,
    report: &mut PassReport,
) -> Option<(&'a Path, &'a MachineRecord)> {
    let named: Vec<_> = claimants
        .iter()
        .filter(|(f, _)| path_names_machine(f, machine))
        .collect();
    let (chosen, why) = match claimants
        .iter()
        .find(|(f, _)| Some(*f) == previous.map(PathBuf::as_path))
    {
        Some(c) => (Some(*c), "owned it before"),
        None if named.len() == 1 => (Some(*named[0]), "is named for it"),
        None => (None, ""),
    };
    let list = |except: Option<&Path>| {
        claimants
            .iter()
            .filter(|(f, _)| Some(*f) != except)
            .map(|(f, _)| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (file, _) in claimants {
        let message = match chosen {
            Some((owner, _)) if owner == *file => format!(
                "machine {machine} is also claimed by {}; keeping this file's configuration, since this file {why}",
                list(Some(owner))
            ),
            Some((owner, _)) => format!(
                "this file claims machine {machine}, which {} owns; this file is ignored",
                owner.display()
            ),
            None => format!(
                "machine {machine} is claimed by {}, and none of them owned it before or is named for it: the machine is left out until one claim remains",
                list(None)
            ),
        };
        report.errors.push(Problem::new(message).file(file).machine(machine));
    }
    chosen
}

/// Whether a profile's path names `machine`: its file name is the machine or its first
/// label (`kdc1.xml`, `kdc1.example.org.xml`, optionally gzipped), or it stands in the
/// LCFG layout `<domain>/<node>/XML/profile.xml`.
pub fn path_names_machine(file: &Path, machine: &str) -> bool {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let stem = name
        .strip_suffix(".gz")
        .unwrap_or(name)
        .strip_suffix(".xml")
        .unwrap_or_default();
    let node = machine.split('.').next().unwrap_or_default();
    if !stem.is_empty() && (stem == machine || stem == node) {
        return true;
    }
    let parts: Vec<&str> = file.iter().rev().take(4).filter_map(|p| p.to_str()).collect();
    match parts[..] {
        ["profile.xml" | "profile.xml.gz", "XML", n, domain] => format!("{n}.{domain}") == machine,
        _ => false,
    }
}

/// Who defined a fragment's objects, as `Definitions` records it: the same string when a
/// fragment is defined and when it is left out again.
pub(super) fn fragment_source(component: &str, machine: &str) -> String {
    format!("{component} on {machine}")
}

fn registered_of<'a>(kept: &'a Kept<'_>) -> Vec<Registered<'a>> {
    kept.iter()
        .flat_map(|(m, (_, parts))| {
            parts.iter().map(move |p| Registered {
                machine: m,
                component: p.component,
                registrations: &p.translated.registrations,
            })
        })
        .collect()
}

/// Run translator code, turning a panic into an error for that call.
fn guarded<T>(f: impl FnOnce() -> Result<T, TranslateError>) -> Result<T, TranslateError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(TranslateError::Other(format!("translator panicked: {msg}")))
        }
    }
}

/// Every `*.xml` and `*.xml.gz` file under `dir`, recursively, sorted.
/// The profiles under a directory, and each path under it that could not be listed or is
/// no profile though named like one.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub files: Vec<PathBuf>,
    /// (path, why): a dangling symlink or a loop, an unreadable directory, a directory
    /// named `*.xml`, a symlink that leads out of the tree.
    pub problems: Vec<(PathBuf, String)>,
}

impl Listing {
    /// Add another directory's listing.
    pub fn extend(&mut self, other: Listing) {
        self.files.extend(other.files);
        self.problems.extend(other.problems);
    }
}

/// List the profiles (`*.xml`, `*.xml.gz`) under `dir`. Only `dir` itself failing is an
/// error: anything wrong below it is a problem of that path alone, and the rest of the tree
/// is listed as usual. Symlinks are followed only while they stay inside `dir`, unless
/// `follow_outside`. A FIFO or device named like a profile is listed: reading it is then
/// that file's error.
pub fn list_profiles(dir: &Path, follow_outside: bool) -> std::io::Result<Listing> {
    let root = std::fs::canonicalize(dir)?;
    if !std::fs::metadata(&root)?.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a directory",
        ));
    }
    std::fs::read_dir(&root)?;
    let mut out = Listing::default();
    let named_like_profile = |p: &Path| {
        let name = p.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        name.ends_with(".xml") || name.ends_with(".xml.gz")
    };
    let mut walk = walkdir::WalkDir::new(dir).follow_links(true).into_iter();
    while let Some(entry) = walk.next() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().map(Path::to_path_buf).unwrap_or_else(|| dir.to_path_buf());
                let why = if e.loop_ancestor().is_some() {
                    "a symlink loop".to_string()
                } else {
                    match e.io_error() {
                        Some(io) if io.kind() == std::io::ErrorKind::NotFound => "a dangling symlink".to_string(),
                        Some(io) => format!("cannot be listed: {io}"),
                        None => e.to_string(),
                    }
                };
                out.problems.push((path, why));
                continue;
            }
        };
        if entry.path_is_symlink() && !follow_outside {
            match std::fs::canonicalize(entry.path()) {
                Ok(target) if target.starts_with(&root) => {}
                Ok(target) => {
                    out.problems.push((
                        entry.path().to_path_buf(),
                        format!(
                            "a symlink out of the profile tree (to {}), not followed",
                            target.display()
                        ),
                    ));
                    if entry.file_type().is_dir() {
                        walk.skip_current_dir();
                    }
                    continue;
                }
                Err(e) => {
                    out.problems
                        .push((entry.path().to_path_buf(), format!("cannot be resolved: {e}")));
                    continue;
                }
            }
        }
        let ft = entry.file_type();
        if ft.is_dir() {
            if entry.depth() > 0 && named_like_profile(entry.path()) {
                out.problems.push((
                    entry.path().to_path_buf(),
                    "a directory named like a profile".to_string(),
                ));
            } else if entry.depth() > 0 && is_empty_mount_point(entry.path()) {
                out.problems.push((
                    entry.path().to_path_buf(),
                    "an empty mount point (a file system mounted empty, or in place of the profiles)".to_string(),
                ));
            }
            continue;
        }
        if named_like_profile(entry.path()) {
            out.files.push(entry.into_path());
        }
    }
    out.files.sort();
    out.problems.sort();
    Ok(out)
}

/// An empty directory on another device than its parent: a mount point whose file
/// system holds nothing, which must not read as "these machines are gone".
fn is_empty_mount_point(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Some(parent), Ok(meta)) = (dir.parent(), std::fs::metadata(dir)) else {
        return false;
    };
    std::fs::metadata(parent).is_ok_and(|p| p.dev() != meta.dev())
        && std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

pub fn find_profiles(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(true) {
        let entry = entry.map_err(std::io::Error::other)?;
        if !entry.file_type().is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        if name.ends_with(".xml") || name.ends_with(".xml.gz") {
            out.push(entry.into_path());
        }
    }
    out.sort();
    Ok(out)
}
