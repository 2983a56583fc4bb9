//! The mail flow token store: which tokens the `smtp` check sent, for which mail flow id,
//! and when. Several checks use it at once (smtp records, imap and pop3 consume, mailflow
//! reads), each in its own process, and any of them may be killed at any point.
//!
//! # Layout
//!
//! ```text
//! STORE/                          mode 0750
//!   <hex of the id's bytes>/      mode 0750, one per mail flow id, never removed
//!     <token>                     32 lowercase hex digits; holds the send time, unix seconds
//!     .tmp-<token>-<pid>-<rand>   a record being written (or left by a crashed writer)
//! ```
//!
//! # Crash and concurrency semantics
//!
//! - **Record**: the time is written to a new temporary file in the id's directory
//!   (`create_new`, so O_EXCL: no two writers share one), fsynced, renamed to the token's
//!   name and the directory fsynced. A token file therefore always holds a complete time:
//!   a reader sees either no file or the whole record, never a part of one. A writer that
//!   crashes before the rename leaves only its temporary file; after the rename, the token
//!   is recorded (the directory fsync makes that durable across a power loss).
//! - **Consume**: the token file is read (for its send time) and removed. Only one of
//!   several concurrent consumers can remove it: the others get `ENOENT`, which means that
//!   another checker consumed it first, and is not an error (it is simply not counted as
//!   consumed by this one).
//! - **Readers** (`pending`, `holders`) look only at names that are tokens: temporary files
//!   are ignored, and any older than [`STALE_TEMP`] is removed on the way (a writer takes
//!   milliseconds, so such a file can only be a crashed writer's).
//! - Nothing is ever rewritten in place, and no lock is taken, so no crashed process can
//!   leave the store locked or half-written.
//!
//! Directories are made with mode 0750: the Nagios user runs the checks and owns them.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The store's default directory.
pub const DEFAULT_STORE: &str = "/var/lib/monitor-compile/mailflow";

/// A temporary file older than this is a crashed writer's, and is removed.
pub const STALE_TEMP: Duration = Duration::from_secs(3600);

/// The prefix of temporary files.
const TEMP_PREFIX: &str = ".tmp-";

/// The mode of the store's directories.
const DIR_MODE: u32 = 0o750;

/// The longest id: its hex form (twice as long) must fit a file name (255 bytes).
pub const MAX_ID_BYTES: usize = 120;

/// A token: 32 lowercase hex digits.
pub fn is_token(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A new random token.
pub fn new_token() -> String {
    let bytes: [u8; 16] = rand::random();
    hex(&bytes)
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The bytes of a lowercase hex string, if it is one.
fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            let pair = s.get(i..i + 2)?;
            if pair.bytes().any(|b| b.is_ascii_uppercase()) {
                return None;
            }
            u8::from_str_radix(pair, 16).ok()
        })
        .collect()
}

/// Now, in unix seconds.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A recorded token not yet consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The token.
    pub token: String,
    /// When it was sent (unix seconds).
    pub sent: u64,
}

/// The token store at a directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

/// An error of the store, naming the path.
#[derive(Debug)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(what: &str, path: &Path, e: io::Error) -> StoreError {
    StoreError(format!("cannot {what} {}: {e}", path.display()))
}

impl Store {
    /// The store at `root` (nothing is read or made until it is used).
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    /// Its directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether its directory exists.
    pub fn exists(&self) -> bool {
        self.root.is_dir()
    }

    /// The directory of `id`; an error for an empty or too long id.
    pub fn id_dir(&self, id: &str) -> Result<PathBuf, StoreError> {
        if id.is_empty() {
            return Err(StoreError("the mail flow id is empty".into()));
        }
        if id.len() > MAX_ID_BYTES {
            return Err(StoreError(format!(
                "the mail flow id is {} bytes long: at most {MAX_ID_BYTES} are allowed",
                id.len()
            )));
        }
        Ok(self.root.join(hex(id.as_bytes())))
    }

    /// Whether anything was ever recorded for `id` (its directory exists).
    pub fn has_id(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.id_dir(id)?.is_dir())
    }

    /// Make `dir` (and its missing parents) with mode 0750, and fsync the parent of each
    /// directory made so that the new entry is durable.
    fn make_dir(dir: &Path) -> Result<(), StoreError> {
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent()
            && !parent.as_os_str().is_empty()
        {
            Store::make_dir(parent)?;
        }
        match DirBuilder::new().mode(DIR_MODE).create(dir) {
            Ok(()) => {
                // The umask may have taken bits away: 0750 is what the checks need.
                fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
                    .map_err(|e| err("set the mode of", dir, e))?;
                if let Some(parent) = dir.parent() {
                    sync_dir(if parent.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        parent
                    })?;
                }
                Ok(())
            }
            // Another checker made it first.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
            Err(e) => Err(err("create the directory", dir, e)),
        }
    }

    /// Record `token` for `id`, sent at `sent` (unix seconds). Durable when it returns.
    pub fn record(&self, id: &str, token: &str, sent: u64) -> Result<(), StoreError> {
        if !is_token(token) {
            return Err(StoreError(format!("{token:?} is not a token")));
        }
        let dir = self.id_dir(id)?;
        Store::make_dir(&dir)?;
        remove_stale_temps(&dir);
        let suffix: u64 = rand::random();
        let tmp = dir.join(format!("{TEMP_PREFIX}{token}-{}-{suffix:016x}", std::process::id()));
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| err("create", &tmp, e))?;
        let written = f
            .write_all(format!("{sent}\n").as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| err("write", &tmp, e));
        drop(f);
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let target = dir.join(token);
        if let Err(e) = fs::rename(&tmp, &target) {
            let _ = fs::remove_file(&tmp);
            return Err(err("rename the record to", &target, e));
        }
        sync_dir(&dir)
    }

    /// Consume `token` of `id`: `Some(sent)` when this call removed it, `None` when it was
    /// not there (never recorded, or another checker consumed it first).
    pub fn consume(&self, id: &str, token: &str) -> Result<Option<u64>, StoreError> {
        if !is_token(token) {
            return Ok(None);
        }
        let dir = self.id_dir(id)?;
        let path = dir.join(token);
        let sent = match read_sent(&path) {
            Ok(sent) => sent,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            // Unreadable content (it cannot be partial: see the module comment): the file's
            // time stands in for it.
            Err(_) => None,
        };
        let sent = match sent {
            Some(s) => s,
            None => mtime_secs(&path).unwrap_or_else(now_secs),
        };
        match fs::remove_file(&path) {
            Ok(()) => {
                // Durability of the removal: a lost removal only brings the token back
                // (a false alarm), never loses one; sync anyway, ignoring failures.
                let _ = sync_dir(&dir);
                Ok(Some(sent))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(err("remove", &path, e)),
        }
    }

    /// The ids whose directories hold `token` (normally one, or none).
    pub fn holders(&self, token: &str) -> Result<Vec<String>, StoreError> {
        if !is_token(token) {
            return Ok(Vec::new());
        }
        let mut ids = Vec::new();
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(err("read the directory", &self.root, e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(id) = unhex(name).and_then(|b| String::from_utf8(b).ok()) else {
                continue;
            };
            if entry.path().join(token).is_file() {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// The tokens pending for `id`, oldest first (none when nothing was ever recorded).
    /// Temporary files are ignored; those older than [`STALE_TEMP`] are removed.
    pub fn pending(&self, id: &str) -> Result<Vec<Pending>, StoreError> {
        let dir = self.id_dir(id)?;
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(err("read the directory", &dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| err("read the directory", &dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with(TEMP_PREFIX) {
                remove_if_stale(&entry.path());
                continue;
            }
            if !is_token(name) {
                continue;
            }
            let path = entry.path();
            let sent = match read_sent(&path) {
                Ok(Some(s)) => s,
                // Consumed between the listing and now.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Ok(None) | Err(_) => match mtime_secs(&path) {
                    Some(s) => s,
                    None => continue,
                },
            };
            out.push(Pending {
                token: name.to_string(),
                sent,
            });
        }
        out.sort_by(|a, b| (a.sent, &a.token).cmp(&(b.sent, &b.token)));
        Ok(out)
    }
}

/// The send time in a token file: `Ok(None)` when the content is not a number.
fn read_sent(path: &Path) -> io::Result<Option<u64>> {
    let mut s = String::new();
    File::open(path)?.take(64).read_to_string(&mut s)?;
    Ok(s.trim().parse().ok())
}

fn mtime_secs(path: &Path) -> Option<u64> {
    let m = fs::metadata(path).ok()?.modified().ok()?;
    m.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// fsync a directory, so that the entries made or renamed in it are durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| err("fsync the directory", dir, e))
}

/// Remove the temporary files of `dir` older than [`STALE_TEMP`].
fn remove_stale_temps(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_str().is_some_and(|n| n.starts_with(TEMP_PREFIX)) {
                remove_if_stale(&entry.path());
            }
        }
    }
}

fn remove_if_stale(path: &Path) {
    let old = fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > STALE_TEMP);
    if old {
        // ENOENT: another reader removed it first.
        let _ = fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::sync::{Arc, Barrier};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::new(dir.path().join("var/lib/mailflow"));
        (dir, s)
    }

    #[test]
    fn tokens_are_32_lowercase_hex_digits_and_random() {
        let a = new_token();
        let b = new_token();
        assert!(is_token(&a) && is_token(&b), "{a} {b}");
        assert_ne!(a, b);
        assert!(!is_token(&a.to_uppercase()));
        assert!(!is_token(&a[1..]));
        assert!(!is_token(&format!("{}g", &a[1..])));
        assert!(!is_token(&format!("{TEMP_PREFIX}{a}")));
    }

    #[test]
    fn record_pending_consume() {
        let (_d, s) = store();
        assert!(!s.exists());
        assert!(s.pending("mail@example.org").unwrap().is_empty());
        assert!(!s.has_id("mail@example.org").unwrap());
        let t = new_token();
        s.record("mail@example.org", &t, 1000).unwrap();
        assert!(s.exists());
        assert!(s.has_id("mail@example.org").unwrap());
        assert_eq!(
            s.pending("mail@example.org").unwrap(),
            vec![Pending {
                token: t.clone(),
                sent: 1000
            }]
        );
        assert!(s.pending("other").unwrap().is_empty());
        assert_eq!(s.holders(&t).unwrap(), vec!["mail@example.org".to_string()]);
        assert_eq!(s.consume("other", &t).unwrap(), None);
        assert_eq!(s.consume("mail@example.org", &t).unwrap(), Some(1000));
        assert_eq!(s.consume("mail@example.org", &t).unwrap(), None);
        assert!(s.pending("mail@example.org").unwrap().is_empty());
        assert!(s.holders(&t).unwrap().is_empty());
    }

    #[test]
    fn directories_are_0750_and_named_by_the_hex_of_the_id() {
        let (_d, s) = store();
        s.record("a/../b", &new_token(), 1).unwrap();
        let dir = s.id_dir("a/../b").unwrap();
        assert_eq!(dir.file_name().unwrap(), "612f2e2e2f62");
        for d in [&dir, &s.root().to_path_buf(), &s.root().parent().unwrap().to_path_buf()] {
            let mode = fs::metadata(d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o750, "{}", d.display());
        }
        assert!(s.id_dir("").is_err());
        assert!(s.id_dir(&"x".repeat(MAX_ID_BYTES + 1)).is_err());
        assert!(s.id_dir(&"x".repeat(MAX_ID_BYTES)).is_ok());
    }

    #[test]
    fn pending_is_oldest_first() {
        let (_d, s) = store();
        let (a, b, c) = (new_token(), new_token(), new_token());
        s.record("id", &a, 30).unwrap();
        s.record("id", &b, 10).unwrap();
        s.record("id", &c, 20).unwrap();
        let sent: Vec<u64> = s.pending("id").unwrap().iter().map(|p| p.sent).collect();
        assert_eq!(sent, vec![10, 20, 30]);
    }

    #[test]
    fn a_crashed_writer_leaves_a_temp_file_that_readers_ignore_and_later_remove() {
        let (_d, s) = store();
        let t = new_token();
        s.record("id", &t, 5).unwrap();
        let dir = s.id_dir("id").unwrap();
        // What a writer killed between create_new and the rename leaves: a temporary file,
        // maybe empty, maybe partly written.
        let fresh = dir.join(format!("{TEMP_PREFIX}{}-1-0000000000000001", new_token()));
        let stale = dir.join(format!("{TEMP_PREFIX}{}-2-0000000000000002", new_token()));
        fs::write(&fresh, "12").unwrap();
        fs::write(&stale, "").unwrap();
        let old = SystemTime::now() - STALE_TEMP - Duration::from_secs(60);
        File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(old)
            .unwrap();
        // Readers see only the real token.
        assert_eq!(
            s.pending("id").unwrap(),
            vec![Pending {
                token: t.clone(),
                sent: 5
            }]
        );
        // The stale one is gone, the fresh one (a writer may still be at work) stays.
        assert!(!stale.exists());
        assert!(fresh.exists());
        let fresh_token = fresh.file_name().unwrap().to_str().unwrap()[TEMP_PREFIX.len()..][..32].to_string();
        assert!(s.holders(&fresh_token).unwrap().is_empty());
        assert_eq!(s.consume("id", &fresh_token).unwrap(), None);
        // A recorder cleans up too.
        File::options()
            .write(true)
            .open(&fresh)
            .unwrap()
            .set_modified(old)
            .unwrap();
        s.record("id", &new_token(), 6).unwrap();
        assert!(!fresh.exists());
        assert_eq!(s.pending("id").unwrap().len(), 2);
    }

    #[test]
    fn a_token_file_with_bad_content_counts_from_its_mtime() {
        let (_d, s) = store();
        let t = new_token();
        s.record("id", &t, 5).unwrap();
        fs::write(s.id_dir("id").unwrap().join(&t), "garbage").unwrap();
        let p = s.pending("id").unwrap();
        assert_eq!(p.len(), 1);
        assert!(p[0].sent + 60 > now_secs());
        assert!(s.consume("id", &t).unwrap().is_some());
    }

    #[test]
    fn concurrent_record_and_consume_lose_and_duplicate_nothing() {
        const THREADS: usize = 8;
        const PER_THREAD: usize = 50;
        let (_d, s) = store();
        let s = Arc::new(s);
        // Phase 1: every thread records its own tokens while the others consume whatever
        // they can see: each token must be consumed exactly once overall.
        let barrier = Arc::new(Barrier::new(THREADS * 2));
        let mut recorders = Vec::new();
        for _ in 0..THREADS {
            let (s, barrier) = (Arc::clone(&s), Arc::clone(&barrier));
            recorders.push(std::thread::spawn(move || {
                barrier.wait();
                let mut mine = Vec::new();
                for i in 0..PER_THREAD {
                    let t = new_token();
                    s.record("flow", &t, i as u64).unwrap();
                    mine.push(t);
                }
                mine
            }));
        }
        let mut consumers = Vec::new();
        for _ in 0..THREADS {
            let (s, barrier) = (Arc::clone(&s), Arc::clone(&barrier));
            consumers.push(std::thread::spawn(move || {
                barrier.wait();
                let mut got = Vec::new();
                for _ in 0..200 {
                    for p in s.pending("flow").unwrap() {
                        if s.consume("flow", &p.token).unwrap().is_some() {
                            got.push(p.token);
                        }
                    }
                }
                got
            }));
        }
        let recorded: Vec<String> = recorders.into_iter().flat_map(|h| h.join().unwrap()).collect();
        let mut consumed: Vec<String> = consumers.into_iter().flat_map(|h| h.join().unwrap()).collect();
        // Whatever is left, consume now, in one thread.
        for p in s.pending("flow").unwrap() {
            assert!(s.consume("flow", &p.token).unwrap().is_some());
            consumed.push(p.token);
        }
        let recorded_set: BTreeSet<&String> = recorded.iter().collect();
        let consumed_set: BTreeSet<&String> = consumed.iter().collect();
        assert_eq!(recorded.len(), THREADS * PER_THREAD);
        assert_eq!(recorded_set.len(), recorded.len(), "tokens are unique");
        assert_eq!(consumed.len(), consumed_set.len(), "no token consumed twice");
        assert_eq!(recorded_set, consumed_set, "no token lost");
        assert!(s.pending("flow").unwrap().is_empty());
        // No temporary file is left behind by a writer that finished.
        let left: Vec<_> = fs::read_dir(s.id_dir("flow").unwrap()).unwrap().flatten().collect();
        assert!(left.is_empty(), "{left:?}");

        // Phase 2: many threads race to consume the same tokens: exactly one wins each.
        let tokens: Vec<String> = (0..100).map(|_| new_token()).collect();
        for t in &tokens {
            s.record("flow", t, 1).unwrap();
        }
        let tokens = Arc::new(tokens);
        let barrier = Arc::new(Barrier::new(THREADS));
        let racers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (s, tokens, barrier) = (Arc::clone(&s), Arc::clone(&tokens), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    tokens
                        .iter()
                        .filter(|t| s.consume("flow", t).unwrap().is_some())
                        .count()
                })
            })
            .collect();
        let wins: usize = racers.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(wins, tokens.len());
    }

    #[test]
    fn concurrent_first_records_create_the_directories_once() {
        let (_d, s) = store();
        let s = Arc::new(s);
        let barrier = Arc::new(Barrier::new(8));
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let (s, barrier) = (Arc::clone(&s), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    s.record("fresh", &new_token(), 1)
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap().unwrap();
        }
        assert_eq!(s.pending("fresh").unwrap().len(), 8);
    }
}
