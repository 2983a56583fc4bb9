//! The engine and one pass: start_pass, ingest, finish_pass, then a reused, patched or
//! full assembly.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use monitor_sdk::nagios::Bundle;
use monitor_sdk::translator::Translator;
use rayon::prelude::*;

use crate::assemble::Assembler;
use crate::base::BaseConfig;
use crate::cache::{Entry, FragmentCache, TranslatorId};
use crate::incremental::{LastPass, Patcher};
use crate::ingest::{Ingest, Processed};
use crate::registry::{Registry, guarded};
use crate::render::{DeployService, NO_SERVICE, add_deploy_service};
use crate::report::{Assembly, EngineError, Outcome, PassReport, PassResult, Phases, Problem};
use crate::source::Listing;
use crate::users::UserSource;

/// Files read (and their components translated) together: one batch per translator.
const INGEST_CHUNK: usize = 64;

/// The compile engine. Keep one alive across passes to benefit from its cache.
pub struct Engine {
    /// The translators, one per component.
    pub(crate) registry: Registry,
    pub(crate) cache: FragmentCache,
    pub(crate) users: Box<dyn UserSource>,
    pub(crate) base: BaseConfig,
    pub(crate) parsed: AtomicUsize,
    pub(crate) translated: AtomicUsize,
    /// Add a passive `monitoring: <component>` service per machine and component.
    pub(crate) status_services: bool,
    /// The last assembly, reused when nothing it depends on changed.
    pub(crate) last: Option<LastPass>,
    /// Keep what the incremental assembly needs (off for a single pass).
    pub(crate) incremental: bool,
    /// The daemon's own `monitor-compile: deploy` service, if any.
    pub(crate) deploy_service: Option<DeployService>,
    /// Which file each machine came from in the last full assembly: when a second file
    /// claims a machine, its owner keeps it.
    pub(crate) owners: std::sync::Mutex<BTreeMap<String, PathBuf>>,
    /// The zones machines are placed in (none configured by default).
    pub(crate) zones: crate::zones::Zones,
    /// Each machine's zone in the last assembly: kept when its profile names an unknown one.
    pub(crate) last_zones: std::sync::Mutex<BTreeMap<String, String>>,
    /// A file whose path does not name its machine is an error (`set_bind_paths`).
    pub(crate) bind_paths: bool,
    /// Files this pass keeps at their last good configuration without opening them
    /// (under a path the listing could not list or must not follow).
    pub(crate) not_read: rustc_hash::FxHashSet<PathBuf>,
    /// Why the last pass assembled in full, when it did.
    pub(crate) full_because: Option<&'static str>,
}

impl Engine {
    /// An engine with these translators (one per component; a later one for the same
    /// component replaces an earlier one, with a log line).
    pub fn new(translators: Vec<Box<dyn Translator>>, users: Box<dyn UserSource>, base: BaseConfig) -> Self {
        let mut engine = Engine {
            registry: Registry::default(),
            cache: FragmentCache::default(),
            users,
            base,
            parsed: AtomicUsize::new(0),
            translated: AtomicUsize::new(0),
            status_services: false,
            last: None,
            incremental: true,
            deploy_service: None,
            owners: Default::default(),
            zones: Default::default(),
            last_zones: Default::default(),
            bind_paths: false,
            not_read: Default::default(),
            full_because: None,
        };
        for t in translators {
            engine.add_translator(t, "builtin");
        }
        engine
    }

    /// Add (or replace) the translator for its component. `origin` is part of its
    /// identity in the cache key.
    pub fn add_translator(&mut self, translator: Box<dyn Translator>, origin: &str) {
        self.registry.add_translator(translator, origin);
    }

    /// The identities of the loaded translators, sorted by component.
    pub fn translators(&self) -> impl Iterator<Item = &TranslatorId> {
        self.registry.translators()
    }

    /// Remove the translator of `component` (its library was removed or is broken). Its
    /// machines keep their last good configuration, with an error, until one returns.
    pub fn remove_translator(&mut self, component: &str) {
        self.registry.remove_translator(component);
    }

    /// Install a translator loaded from the plugin library at `library`, whose content
    /// digest is `digest`. It replaces a built-in translator of the same component
    /// (installing a package is an explicit choice); the replacement is logged.
    pub fn add_library_translator(&mut self, translator: Box<dyn Translator>, library: &std::path::Path, digest: &str) {
        self.registry.add_library_translator(translator, library, digest);
    }

    /// Record a library that failed to load: it is reported on every pass until it
    /// loads, and the machines of its component keep their last good configuration.
    pub fn note_broken_library(&mut self, path: &std::path::Path, reason: &str) {
        self.registry.note_broken_library(path, reason);
    }

    /// A translator library is gone from disk (its package was uninstalled): forget it
    /// as broken, and remove the translator it provided. Returns that translator's
    /// component. Its machines lose that component's services on the next pass (no
    /// translator serves it any more), which the daemon's removal guard sees and names.
    pub fn library_removed(&mut self, path: &std::path::Path) -> Option<String> {
        self.registry.library_removed(path)
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

    /// Require every profile's path to name its machine (see [`path_names_machine`]): a
    /// site in the LCFG layout, or with files named after their machines, thus binds each
    /// machine to one file, and a file claiming another machine is an error.
    pub fn set_bind_paths(&mut self, on: bool) {
        self.bind_paths = on;
    }

    /// Place machines in zones (see [`crate::zones`]): each host joins its zone's
    /// hostgroup, which the base defines. Changing the zones discards the last assembly.
    pub fn set_zones(&mut self, zones: crate::zones::Zones) {
        if zones != self.zones {
            self.last = None;
        }
        self.zones = zones;
    }

    /// Add the daemon's `monitor-compile: deploy` passive service (see [`DeployService`]).
    pub fn set_deploy_service(&mut self, service: Option<DeployService>) {
        self.deploy_service = service;
    }

    /// Whether to keep, after a full assembly, what the next pass needs to patch it
    /// (`engine::incremental`; on by default). A single pass (`--once`) turns it off.
    pub fn set_incremental(&mut self, on: bool) {
        self.incremental = on;
    }

    /// Drop the last assembly and what the incremental path keeps of it, so that the
    /// next pass assembles in full. The cache is kept. (The benchmark's memory breakdown
    /// measures what the kept assembly holds by dropping it.)
    pub fn forget_last_assembly(&mut self) {
        self.last = None;
    }

    /// Why the last pass assembled in full rather than reusing or patching the assembly
    /// before it (see [`crate::incremental`]); `None` when it reused or patched it.
    pub fn full_assembly_reason(&self) -> Option<&'static str> {
        self.full_because
    }

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

    /// Run one pass over `files` (sorted here; duplicates ignored).
    pub fn run_pass(&mut self, files: &[PathBuf]) -> Result<PassResult, EngineError> {
        let mut phase = Phases::start();
        let contacts = self.users.contacts()?;
        let users_warnings = self.users.warnings();
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
        for reason in self.registry.broken_libraries.values() {
            report
                .errors
                .push(Problem::new(format!("broken translator library: {reason}")));
        }
        // start_pass, in component order. A translator that fails here sits this pass
        // out: its machines keep their last good configuration, and its last good
        // start_pass output stands.
        self.registry.unavailable.clear();
        let mut start = Vec::new();
        for slot in &mut self.registry.slots {
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
            self.registry.unavailable.insert(comp, reason);
        }
        // Translators that are unavailable, or whose library is gone while machines still
        // carry their output: their last good pass-level output stands.
        // (Which components machines still carry output of is only needed when some
        // translator is gone.)
        let gone = self
            .cache
            .pass_outputs
            .keys()
            .any(|c| !self.registry.by_component.contains_key(c));
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
                self.registry.unavailable.contains_key(*c)
                    || (!self.registry.by_component.contains_key(*c) && referenced.contains(c.as_str()))
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
        let times = crate::ingest::IngestTimes::default();
        let ingest = Ingest {
            cache: &self.cache,
            registry: &self.registry,
            not_read: &self.not_read,
            parsed: &self.parsed,
            translated: &self.translated,
            times: &times,
        };
        // In runs of files: a translator in a worker process answers a run's machines in
        // one round trip.
        let fresh: Vec<(usize, Processed)> = files
            .par_chunks(INGEST_CHUNK)
            .enumerate()
            .flat_map_iter(|(c, chunk)| {
                ingest
                    .process_chunk(chunk)
                    .into_iter()
                    .enumerate()
                    .map(move |(k, p)| (c * INGEST_CHUNK + k, p))
            })
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
        for slot in &mut self.registry.slots {
            let comp = slot.id.component.clone();
            if self.registry.unavailable.contains_key(&comp) {
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
        self.full_because = None;
        let patched = match self.last.take() {
            Some(last) if same_inputs && fresh_entries.is_empty() => Some((last, Assembly::Reused)),
            Some(last) if same_inputs && report.errors.is_empty() => match (Patcher {
                cache: &self.cache,
                registry: &self.registry,
                status_services: self.status_services,
                zones: &self.zones,
                last_zones: &self.last_zones,
            })
            .patch(last, &fresh_entries)
            {
                Ok(last) => Some((last, Assembly::Incremental)),
                Err(why) => {
                    tracing::debug!(why, "assembling in full");
                    self.full_because = Some(why);
                    None
                }
            },
            Some(_) if same_inputs => {
                self.full_because = Some("this pass has errors");
                None
            }
            Some(_) => {
                self.full_because = Some(
                    "an input besides the machine entries changed (files, translators, contacts or pass-level output)",
                );
                None
            }
            None => {
                self.full_because = Some(if self.incremental {
                    "there is no earlier assembly"
                } else {
                    "the incremental state is off"
                });
                None
            }
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
                let assembler = Assembler {
                    cache: &self.cache,
                    registry: &self.registry,
                    base: &self.base,
                    owners: &self.owners,
                    zones: &self.zones,
                    last_zones: &self.last_zones,
                    bind_paths: self.bind_paths,
                    status_services: self.status_services,
                    incremental: self.incremental,
                };
                let (output, delta) = assembler.assemble(&files, start, finish, &contacts, &mut report);
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
        // The users source's warnings are this pass's own: added after the assembly, so
        // that a reused or patched assembly (whose report is the last full pass's) shows
        // them, and no later pass shows them again from a kept report.
        for w in users_warnings {
            report
                .warnings
                .push(Problem::new(format!("{}: {w}", self.users.describe())));
        }
        let mut output = output;
        if let Some(d) = &self.deploy_service {
            add_deploy_service(d, &contacts, &mut output, &mut report);
        }
        // Nagios refuses to start on an output without a service: say so before it does.
        if report.services == 0 {
            report.errors.push(Problem::new(NO_SERVICE));
        }
        report.parsed = self.parsed.load(Ordering::Relaxed) - parsed0;
        report.translated = self.translated.load(Ordering::Relaxed) - translated0;
        phase.log("pass");
        // A reused or patched assembly's report is the last full pass's: its assembly
        // phases are not this pass's.
        let assembly_phases = match report.assembly {
            Assembly::Full => std::mem::take(&mut report.pass_phases),
            _ => Vec::new(),
        };
        report.pass_phases = phase.times("");
        report.pass_phases.extend(times.phases());
        report.pass_phases.extend(assembly_phases);
        changed_files.sort();
        Ok(PassResult {
            output,
            report,
            changed_files,
        })
    }

    /// Everything the assembly depends on besides the cache entries.
    pub(crate) fn fingerprint(
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
        let mut unavailable: Vec<(&String, &String)> = self.registry.unavailable.iter().collect();
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
            &self.registry.broken_libraries,
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
}
