//! Ingest: read one profile, hash it, and either reuse its cache entry or parse it and
//! translate its monitored components, while the bytes are hot.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use lcfg_profile::{Select, parse_profile};
use monitor_sdk::translator::{Context, TranslateError};

use crate::cache::{ComponentRecord, Entry, FileStat, FragmentCache, MachineRecord, Translated};
use crate::registry::{Registry, guarded};
use crate::source::with_file_bytes;

/// What reading one file found.
pub(crate) enum Processed {
    /// The cached entry stands as it is.
    Reuse,
    /// The cached entry stands; the file was touched without a content change.
    NewStat(FileStat),
    /// A new entry (parsed and translated, or a new error).
    Fresh(Entry),
}

/// What reading a profile needs of the engine: its cache, its translators, the files it
/// must not open, and the pass's counters.
pub(crate) struct Ingest<'a> {
    pub(crate) cache: &'a FragmentCache,
    pub(crate) registry: &'a Registry,
    pub(crate) not_read: &'a rustc_hash::FxHashSet<PathBuf>,
    pub(crate) parsed: &'a AtomicUsize,
    pub(crate) translated: &'a AtomicUsize,
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

    /// Read one file; `None` when the cache entry can be reused as it is.
    pub(crate) fn process_file(&self, file: &Path) -> Processed {
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
            && FragmentCache::reusable(p, &p.hash, |c| self.registry.record_current(c))
        {
            self.notify_unchanged(p);
            return Processed::Reuse;
        }
        // Hash and parse while the bytes are hot, in this one read.
        let read = with_file_bytes(file, |raw| {
            let hash = *blake3::hash(raw).as_bytes();
            if previous.is_some_and(|p| FragmentCache::reusable(p, &hash, |c| self.registry.record_current(c))) {
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
                && self.registry.unavailable_reason(name).is_some()
                && !self.registry.uninstalled(name)
            {
                // The translator cannot run now: keep what it produced last time.
                components.push(prev.clone());
                continue;
            }
            let Some(&i) = self
                .registry
                .by_component
                .get(name)
                .filter(|_| !self.registry.unavailable.contains_key(name))
            else {
                components.push(ComponentRecord {
                    component: name.clone(),
                    translator: None,
                    good: None,
                    error: None,
                });
                continue;
            };
            let slot = &self.registry.slots[i];
            let empty = lcfg_profile::Component::default();
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
}
