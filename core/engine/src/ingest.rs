//! Ingest: read one profile, hash it, and either reuse its cache entry or parse it and
//! translate its monitored components, while the bytes are hot.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use lcfg_profile::{Select, parse_profile};
use monitor_sdk::nagios::Bundle;
use monitor_sdk::translator::{Context, TranslateError};

use crate::cache::{ComponentRecord, Entry, FileStat, FragmentCache, MachineRecord, Translated};
use crate::registry::{Registry, Slot, guarded};
use crate::source::with_file_bytes;

/// What reading one file found.
// `Fresh` is what a cold pass makes for every file: boxing it would add an allocation
// per file to save stack space in a vector that lives for one chunk.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Processed {
    /// The cached entry stands as it is.
    Reuse,
    /// The cached entry stands; the file was touched without a content change.
    NewStat(FileStat),
    /// A new entry (parsed and translated, or a new error).
    Fresh(Entry),
}

/// The CPU time of the files phase by step, in nanoseconds summed over the threads.
#[derive(Debug, Default)]
pub(crate) struct IngestTimes {
    /// Stat, open and read (the kernel's copy included).
    pub(crate) read: AtomicU64,
    pub(crate) hash: AtomicU64,
    pub(crate) parse: AtomicU64,
    /// Translate, render and check the fragments, and build the records.
    pub(crate) translate: AtomicU64,
}

impl IngestTimes {
    fn add(counter: &AtomicU64, since: Instant) -> Instant {
        let now = Instant::now();
        counter.fetch_add((now - since).as_nanos() as u64, Ordering::Relaxed);
        now
    }

    /// As phase times, in milliseconds.
    pub(crate) fn phases(&self) -> Vec<crate::report::PhaseTime> {
        [
            ("read", &self.read),
            ("hash", &self.hash),
            ("parse", &self.parse),
            ("translate", &self.translate),
        ]
        .into_iter()
        .map(|(n, c)| crate::report::PhaseTime {
            phase: format!("files cpu: {n}"),
            ms: c.load(Ordering::Relaxed) as f64 / 1e6,
        })
        .collect()
    }
}

/// What reading a profile needs of the engine: its cache, its translators, the files it
/// must not open, and the pass's counters.
pub(crate) struct Ingest<'a> {
    pub(crate) cache: &'a FragmentCache,
    pub(crate) registry: &'a Registry,
    pub(crate) not_read: &'a rustc_hash::FxHashSet<PathBuf>,
    pub(crate) parsed: &'a AtomicUsize,
    pub(crate) translated: &'a AtomicUsize,
    pub(crate) times: &'a IngestTimes,
}

impl Ingest<'_> {
    /// Call `notify_unchanged` for a machine whose cached entry is reused (on the
    /// reading thread: like `translate`, it runs for several machines at once).
    pub(crate) fn notify_unchanged(&self, entry: &Entry) {
        let Some(rec) = &entry.record else { return };
        for c in &rec.components {
            if let Some(&i) = self.registry.by_component.get(&c.component) {
                let t = &self.registry.slots[i].translator;
                let _ = guarded(|| {
                    t.notify_unchanged(&rec.machine);
                    Ok(())
                });
            }
        }
    }

    /// Read one file: what it comes to without translating, or its parsed profile.
    fn read_file<'f>(&'f self, file: &'f Path) -> Step<'f> {
        let previous = self.cache.get(file);
        if self.not_read.contains(file) {
            return Step::Done(Processed::Fresh(Entry {
                hash: [0; 32],
                stat: None,
                record: previous.and_then(|p| p.record.clone()),
                profile_error: Some(format!(
                    "{}: not read: its path cannot be listed or leads out of the profile tree (keeping the last good configuration)",
                    file.display()
                )),
                profile_error_at: None,
            }));
        }
        let started = Instant::now();
        let stat = FileStat::of_path(file);
        // The cheap change test: same size, times and inode as when last read.
        if let (Some(p), Some(st)) = (previous, stat)
            && p.stat == Some(st)
            && FragmentCache::reusable(p, &p.hash, |c| self.registry.record_current(c))
        {
            self.notify_unchanged(p);
            return Step::Done(Processed::Reuse);
        }
        // Hash and parse while the bytes are hot, in this one read.
        let read = with_file_bytes(file, |raw| {
            let t = IngestTimes::add(&self.times.read, started);
            let hash = *blake3::hash(raw).as_bytes();
            let t = IngestTimes::add(&self.times.hash, t);
            if previous.is_some_and(|p| FragmentCache::reusable(p, &hash, |c| self.registry.record_current(c))) {
                return (hash, None);
            }
            self.parsed.fetch_add(1, Ordering::Relaxed);
            let parsed = parse_profile(file, raw, Select::Monitoring);
            IngestTimes::add(&self.times.parse, t);
            (hash, Some(parsed))
        });
        let (hash, parsed) = match read {
            Ok(read) => read,
            Err(e) => {
                return Step::Done(Processed::Fresh(Entry {
                    hash: [0; 32],
                    stat: None,
                    record: previous.and_then(|p| p.record.clone()),
                    profile_error: Some(format!("{}: cannot read file: {e}", file.display())),
                    profile_error_at: None,
                }));
            }
        };
        let Some(parsed) = parsed else {
            // Touched but not changed: only the stat is new.
            if let Some(p) = previous {
                self.notify_unchanged(p);
                if let Some(st) = stat
                    && p.stat != Some(st)
                {
                    return Step::Done(Processed::NewStat(st));
                }
            }
            return Step::Done(Processed::Reuse);
        };
        let profile = match parsed {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "profile rejected; keeping the last good configuration");
                return Step::Done(Processed::Fresh(Entry {
                    hash,
                    stat,
                    record: previous.and_then(|p| p.record.clone()),
                    profile_error: Some(e.to_string()),
                    profile_error_at: Some(crate::cache::ErrorAt {
                        line: e.line,
                        column: e.column,
                        element: e.element.clone(),
                    }),
                }));
            }
        };
        Step::Parsed(ParsedFile {
            file,
            previous,
            hash,
            stat,
            profile,
        })
    }

    /// Read a run of files, then translate all their monitored components, each
    /// translator's in one batch when it [`batches`](Translator::batches) (a worker
    /// process then answers them in one round trip).
    pub(crate) fn process_chunk(&self, files: &[PathBuf]) -> Vec<Processed> {
        let mut done: Vec<Option<Processed>> = Vec::with_capacity(files.len());
        let mut parsed: Vec<(usize, ParsedFile<'_>)> = Vec::new();
        for (k, file) in files.iter().enumerate() {
            match self.read_file(file) {
                Step::Done(p) => done.push(Some(p)),
                Step::Parsed(p) => {
                    done.push(None);
                    parsed.push((k, p));
                }
            }
        }
        if parsed.is_empty() {
            // Invariant: every file without a parsed profile is done.
            return done.into_iter().flatten().collect();
        }
        // Per parsed file, its records in monitored order; translations to make are holes,
        // listed by translator.
        let mut records: Vec<Vec<Option<ComponentRecord>>> = Vec::with_capacity(parsed.len());
        let mut wanted: BTreeMap<usize, Vec<(usize, usize)>> = BTreeMap::new();
        for (f, (_, p)) in parsed.iter().enumerate() {
            let old = p.old_record();
            let mut recs = Vec::new();
            let mut seen = BTreeSet::new();
            for name in &p.profile.monitored {
                if !seen.insert(name.as_str()) {
                    continue;
                }
                let previous_record = old.and_then(|r| r.components.iter().find(|c| &c.component == name));
                if let Some(prev) = previous_record.filter(|p| p.translator.is_some())
                    && self.registry.unavailable_reason(name).is_some()
                    && !self.registry.uninstalled(name)
                {
                    // The translator cannot run now: keep what it produced last time.
                    recs.push(Some(prev.clone()));
                    continue;
                }
                match self
                    .registry
                    .by_component
                    .get(name)
                    .filter(|_| !self.registry.unavailable.contains_key(name))
                {
                    Some(&slot) => {
                        wanted.entry(slot).or_default().push((f, recs.len()));
                        recs.push(None);
                    }
                    None => recs.push(Some(ComponentRecord {
                        component: name.clone(),
                        translator: None,
                        good: None,
                        error: None,
                    })),
                }
            }
            records.push(recs);
        }
        let started = Instant::now();
        let empty = lcfg_profile::Component::default();
        for (slot, holes) in wanted {
            let slot = &self.registry.slots[slot];
            let name = slot.id.component.as_str();
            let inputs: Vec<(&str, &lcfg_profile::Component)> = holes
                .iter()
                .map(|&(f, _)| {
                    let p = &parsed[f].1.profile;
                    (p.machine.as_str(), p.component(name).unwrap_or(&empty))
                })
                .collect();
            self.translated.fetch_add(inputs.len(), Ordering::Relaxed);
            let results: Vec<(Result<Bundle, TranslateError>, Context)> = if slot.translator.batches() {
                match guarded(|| Ok(slot.translator.translate_batch(&inputs))) {
                    Ok(r) if r.len() == inputs.len() => r,
                    Ok(r) => inputs
                        .iter()
                        .map(|(m, _)| {
                            let e = format!("the translator answered {} of {} machines", r.len(), inputs.len());
                            (Err(TranslateError::Other(e)), Context::new(m, name))
                        })
                        .collect(),
                    Err(e) => inputs
                        .iter()
                        .map(|(m, _)| (Err(e.clone()), Context::new(m, name)))
                        .collect(),
                }
            } else {
                inputs
                    .iter()
                    .map(|(machine, comp)| {
                        let mut ctx = Context::new(machine, name);
                        let r = guarded(|| slot.translator.translate(machine, comp, &mut ctx));
                        (r, ctx)
                    })
                    .collect()
            };
            for (&(f, pos), (result, ctx)) in holes.iter().zip(results) {
                let p = &parsed[f].1;
                records[f][pos] = Some(record_of(slot, p, result, ctx));
            }
        }
        for ((k, p), recs) in parsed.into_iter().zip(records) {
            done[k] = Some(Processed::Fresh(Entry {
                hash: p.hash,
                stat: p.stat,
                record: Some(MachineRecord {
                    zone: p
                        .profile
                        .component("nagios_client")
                        .and_then(|c| c.get_nonempty(crate::zones::ZONE_RESOURCE))
                        .map(str::to_string),
                    machine: p.profile.machine,
                    // Invariant: every hole was filled by its translator's results.
                    components: recs.into_iter().flatten().collect(),
                }),
                profile_error: None,
                profile_error_at: None,
            }));
        }
        IngestTimes::add(&self.times.translate, started);
        // Invariant: every file is done now.
        done.into_iter().flatten().collect()
    }
}

/// What reading one file came to.
enum Step<'f> {
    /// No translation needed.
    Done(Processed),
    /// A profile to translate.
    Parsed(ParsedFile<'f>),
}

/// A profile read and parsed, waiting for its translations.
struct ParsedFile<'f> {
    file: &'f Path,
    previous: Option<&'f Entry>,
    hash: [u8; 32],
    stat: Option<FileStat>,
    profile: lcfg_profile::Profile,
}

impl<'f> ParsedFile<'f> {
    /// The last record of this file, when it was of the same machine.
    fn old_record(&self) -> Option<&'f MachineRecord> {
        self.previous
            .and_then(|p| p.record.as_ref())
            .filter(|r| r.machine == self.profile.machine)
    }
}

/// A translation's record: the fragments checked, or the error with the last good ones.
fn record_of(slot: &Slot, p: &ParsedFile<'_>, result: Result<Bundle, TranslateError>, ctx: Context) -> ComponentRecord {
    let name = &slot.id.component;
    let result = result.and_then(|b| {
        b.check()
            .map_err(|e| TranslateError::Other(format!("unsafe output: {e}")))?;
        Ok(b)
    });
    match result {
        Ok(mut fragments) => {
            let (registrations, warnings) = ctx.into_parts();
            // Kept until the machine changes: exactly the room the objects and the text use.
            fragments.compact();
            let rendered = render_exact(&fragments);
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
            tracing::warn!(machine = %p.profile.machine, component = %name, file = %p.file.display(), error = %e, "translation failed");
            let last_good = p
                .old_record()
                .and_then(|r| r.components.iter().find(|c| &c.component == name))
                .and_then(|c| c.good.clone());
            ComponentRecord {
                component: name.clone(),
                translator: Some(slot.id.clone()),
                good: last_good,
                error: Some(e.to_string()),
            }
        }
    }
}

thread_local! {
    /// Each reading thread's scratch text for rendering fragments.
    static SCRATCH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// The fragments rendered into a text of exactly their length: rendered first into the
/// thread's scratch text (which grows once), then copied once.
fn render_exact(fragments: &Bundle) -> String {
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.clear();
        for o in fragments {
            o.render_into(scratch);
        }
        String::from(scratch.as_str())
    })
}
