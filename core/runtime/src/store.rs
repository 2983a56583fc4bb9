//! The persistent fragment cache: the [`FragmentCache`] on disk, in an embedded,
//! crash-safe redb database, so that after a restart unchanged machines are neither
//! parsed nor translated.
//!
//! Each profile file's entry is one record (JSON), written in one transaction per pass
//! together with the removals and the translators' pass-level output. A database that
//! cannot be opened, is of another format version, or holds a record that cannot be
//! decoded is discarded with a log line and rebuilt: it never stops the daemon.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use thiserror::Error;

use monitor_engine::cache::{CACHE_FORMAT, Entry, FragmentCache};

const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("entries");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// The stored data's version ([`CACHE_FORMAT`]): a store of another version is rebuilt.
const FORMAT: &[u8] = CACHE_FORMAT.as_bytes();

/// The store could not be written (reading problems are recovered from, not returned).
#[derive(Debug, Error)]
#[error("cache store {path}: {message}")]
pub struct StoreError {
    pub path: PathBuf,
    pub message: String,
}

/// The on-disk cache.
pub struct Store {
    /// `None` after a failed write: the database is opened again on the next save (redb
    /// refuses every later write on a handle that saw an I/O error).
    db: Option<Database>,
    path: PathBuf,
    /// The files stored, to delete the entries of files that went away.
    stored: HashSet<PathBuf>,
    /// Files changed since the last save that succeeded: written by the next one.
    unsaved: HashSet<PathBuf>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("entries", &self.stored.len())
            .finish()
    }
}

impl Store {
    /// Open (or create) the store at `path` and load the cache in it. A damaged or
    /// incompatible store is replaced by an empty one.
    pub fn open(path: &Path) -> Result<(Store, FragmentCache), StoreError> {
        match Self::try_open(path) {
            Ok(found) => Ok(found),
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason, "discarding the cache store and rebuilding it");
                if path.exists() {
                    std::fs::remove_file(path).map_err(|e| err(path, format!("cannot remove it: {e}")))?;
                }
                let (store, cache) = Self::try_open(path).map_err(|m| err(path, m))?;
                Ok((store, cache))
            }
        }
    }

    fn try_open(path: &Path) -> Result<(Store, FragmentCache), String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        let db = Database::create(path).map_err(|e| e.to_string())?;
        let mut cache = FragmentCache::default();
        let mut stored = HashSet::new();
        {
            let w = db.begin_write().map_err(|e| e.to_string())?;
            {
                let mut meta = w.open_table(META).map_err(|e| e.to_string())?;
                let format = meta
                    .get("format")
                    .map_err(|e| e.to_string())?
                    .map(|v| v.value().to_vec());
                match format {
                    None => {
                        meta.insert("format", FORMAT).map_err(|e| e.to_string())?;
                    }
                    Some(f) if f == FORMAT => {}
                    Some(f) => {
                        return Err(format!(
                            "format {:?}, expected {:?}",
                            String::from_utf8_lossy(&f),
                            String::from_utf8_lossy(FORMAT)
                        ));
                    }
                }
                if let Some(v) = meta.get("pass_outputs").map_err(|e| e.to_string())? {
                    cache.pass_outputs = serde_json::from_slice(v.value()).map_err(|e| format!("pass outputs: {e}"))?;
                }
                w.open_table(ENTRIES).map_err(|e| e.to_string())?;
            }
            w.commit().map_err(|e| e.to_string())?;
        }
        let r = db.begin_read().map_err(|e| e.to_string())?;
        let table = r.open_table(ENTRIES).map_err(|e| e.to_string())?;
        for row in table.iter().map_err(|e| e.to_string())? {
            let (k, v) = row.map_err(|e| e.to_string())?;
            let entry: Entry = serde_json::from_slice(v.value()).map_err(|e| format!("entry {}: {e}", k.value()))?;
            let file = PathBuf::from(k.value());
            stored.insert(file.clone());
            cache.entries.insert(file, entry);
        }
        drop(table);
        drop(r);
        Ok((
            Store {
                db: Some(db),
                path: path.to_path_buf(),
                stored,
                unsaved: HashSet::new(),
            },
            cache,
        ))
    }

    /// Write the entries of `changed` files (and of those a failed save left unsaved) and
    /// drop those no longer in the cache, in one transaction. After a failure (a full
    /// disk) the next save opens the database again and writes everything owed.
    pub fn save(&mut self, cache: &FragmentCache, changed: &[PathBuf]) -> Result<(), StoreError> {
        self.unsaved.extend(changed.iter().cloned());
        let owed: Vec<PathBuf> = self.unsaved.iter().cloned().collect();
        match self.try_save(cache, &owed) {
            Ok(()) => {
                self.unsaved.clear();
                Ok(())
            }
            Err(e) => {
                self.db = None;
                Err(e)
            }
        }
    }

    fn try_save(&mut self, cache: &FragmentCache, changed: &[PathBuf]) -> Result<(), StoreError> {
        let e = |m: String| err(&self.path, m);
        if self.db.is_none() {
            let db = Database::create(&self.path).map_err(|x| e(format!("cannot open it again: {x}")))?;
            tracing::info!(path = %self.path.display(), "cache store open again");
            self.db = Some(db);
        }
        // Invariant: set just above when it was None.
        let db = self.db.as_ref().expect("the database is open");
        let w = db.begin_write().map_err(|x| e(x.to_string()))?;
        let mut now_stored = self.stored.clone();
        {
            let mut table = w.open_table(ENTRIES).map_err(|x| e(x.to_string()))?;
            for file in changed {
                let key = file.to_string_lossy();
                match cache.entries.get(file) {
                    Some(entry) => {
                        let bytes = serde_json::to_vec(entry).map_err(|x| e(x.to_string()))?;
                        table
                            .insert(key.as_ref(), bytes.as_slice())
                            .map_err(|x| e(x.to_string()))?;
                        now_stored.insert(file.clone());
                    }
                    None => {
                        table.remove(key.as_ref()).map_err(|x| e(x.to_string()))?;
                        now_stored.remove(file);
                    }
                }
            }
            let gone: Vec<PathBuf> = now_stored
                .iter()
                .filter(|f| !cache.entries.contains_key(*f))
                .cloned()
                .collect();
            for file in gone {
                table
                    .remove(file.to_string_lossy().as_ref())
                    .map_err(|x| e(x.to_string()))?;
                now_stored.remove(&file);
            }
            let mut meta = w.open_table(META).map_err(|x| e(x.to_string()))?;
            let outputs = serde_json::to_vec(&cache.pass_outputs).map_err(|x| e(x.to_string()))?;
            meta.insert("pass_outputs", outputs.as_slice())
                .map_err(|x| e(x.to_string()))?;
        }
        w.commit().map_err(|x| e(x.to_string()))?;
        self.stored = now_stored;
        Ok(())
    }
}

fn err(path: &Path, message: String) -> StoreError {
    StoreError {
        path: path.to_path_buf(),
        message,
    }
}
