//! The fragment cache: what each profile file produced last time, keyed by the blake3
//! hash of its bytes and the identity of the translators that ran.
//!
//! An entry is reused when the file's hash and every translator identity match; then the
//! machine is neither parsed nor translated, and its recorded registrations are replayed
//! to the managers. An entry also remembers the last *good* result, so that a machine
//! whose new profile is broken keeps its previous configuration.
//!
//! The cache is plain serde data, so it can be persisted as it is.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use monitor_sdk::nagios::Bundle;
use monitor_sdk::translator::Registration;

/// The version of the cache's serialized form (an [`Entry`] per profile file, and the
/// [`PassOutput`]s), as the persistent store keeps it. Bump it when that form changes
/// incompatibly: a store of another version is discarded and rebuilt. The form is held by
/// the snapshot test `core/engine/tests/cache_format.rs`.
pub const CACHE_FORMAT: &str = "monitor-compile-cache-2";

/// Who produced a component's fragments: part of the cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TranslatorId {
    pub component: String,
    pub version: String,
    /// Where the code came from: `builtin`, or the blake3 of a plugin library.
    pub origin: String,
}

impl std::fmt::Display for TranslatorId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({})", self.component, self.version, self.origin)
    }
}

/// What one translator produced for one machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Translated {
    pub fragments: Bundle,
    /// The fragments in Nagios syntax, rendered once when they were made.
    #[serde(default)]
    pub rendered: String,
    pub registrations: Vec<Registration>,
    pub warnings: Vec<String>,
}

/// One monitored component of one machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentRecord {
    pub component: String,
    /// `None` when no translator serves the component.
    pub translator: Option<TranslatorId>,
    /// The last good output (possibly from an earlier profile when `error` is set).
    pub good: Option<Translated>,
    /// The error of the latest attempt, if it failed.
    pub error: Option<String>,
}

/// The last successful parse of a machine's profile, with its components.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineRecord {
    pub machine: String,
    pub components: Vec<ComponentRecord>,
    /// The zone its profile names (`nagios_client.zone`), if it names one.
    #[serde(default)]
    pub zone: Option<String>,
}

/// Everything remembered about one profile file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// blake3 of the file's bytes as last read.
    pub hash: [u8; 32],
    /// The file's size, times and inode when it was read: when they are all the same, the
    /// file is not read again (a cheap change test; the hash confirms any difference).
    #[serde(default)]
    pub stat: Option<FileStat>,
    /// The last good machine record.
    pub record: Option<MachineRecord>,
    /// Why the file's current bytes could not be parsed, if they could not.
    pub profile_error: Option<String>,
    /// Where in the file, when known.
    #[serde(default)]
    pub profile_error_at: Option<ErrorAt>,
}

/// Where a profile error is: line, column and element path, each when known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAt {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub element: Option<String>,
}

/// What `stat(2)` says of a file, for the cheap change test. A writer that replaces a
/// file (rename) changes the inode; one that rewrites it in place changes the size or the
/// nanosecond mtime and ctime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub ino: u64,
    pub dev: u64,
}

impl FileStat {
    pub fn of(m: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileStat {
            size: m.len(),
            mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
            ctime_ns: m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128,
            ino: m.ino(),
            dev: m.dev(),
        }
    }

    /// The stat of `path`, if it can be trusted for the change test.
    pub fn of_path(path: &std::path::Path) -> Option<FileStat> {
        std::fs::metadata(path)
            .ok()
            .map(|m| FileStat::of(&m))
            .and_then(FileStat::settled)
    }

    /// A stat is trusted for the cheap change test only once the file's mtime and ctime
    /// are a little in the past: a rewrite of the same size within one timestamp tick of
    /// the last read would otherwise go unseen ("racy" timestamps, as git calls them).
    /// Such a file is simply read and hashed again next time.
    pub fn settled(self) -> Option<FileStat> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos() as i128;
        (now - self.mtime_ns >= 2_000_000_000 && now - self.ctime_ns >= 2_000_000_000).then_some(self)
    }
}

/// A translator's last good `start_pass` and `finish_pass` output, used while the
/// translator cannot run (broken, failing, or its library missing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassOutput {
    pub start: Option<Bundle>,
    pub finish: Option<Bundle>,
}

/// The whole cache: one entry per profile file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FragmentCache {
    pub entries: rustc_hash::FxHashMap<PathBuf, Entry>,
    /// Per component: the translator's last good pass-level output.
    #[serde(default)]
    pub pass_outputs: std::collections::BTreeMap<String, PassOutput>,
}

impl FragmentCache {
    pub fn get(&self, file: &std::path::Path) -> Option<&Entry> {
        self.entries.get(file)
    }

    /// True when `entry` can be reused for a file whose bytes hash to `hash`, given
    /// the current translators (`current(record)` says whether a component's recorded
    /// result still stands: same translator identity, not always-run).
    pub fn reusable(entry: &Entry, hash: &[u8; 32], current: impl Fn(&ComponentRecord) -> bool) -> bool {
        if &entry.hash != hash {
            return false;
        }
        let Some(record) = &entry.record else {
            // The same broken bytes: the error stands.
            return entry.profile_error.is_some();
        };
        if entry.profile_error.is_some() {
            return true;
        }
        record.components.iter().all(current)
    }
}
