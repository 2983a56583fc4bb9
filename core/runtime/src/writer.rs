//! Writes an assembled [`Output`] into a directory: only files whose contents changed
//! are rewritten (each through a temporary file and a rename), and `.cfg` files that
//! are no longer part of the output are removed. Unchanged machine files are left
//! alone, so an incremental pass touches only what changed.
//!
//! Files get the mode `File::create` would give them, and directories that of
//! `create_dir`: 0666 and 0777 less the process umask (0644 and 0755 with the usual 022),
//! because Nagios reads them as its own user.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use monitor_engine::Output;

/// What [`write_output`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WriteStats {
    pub written: usize,
    pub unchanged: usize,
    pub removed: usize,
}

/// Write `output` into `dir`.
pub fn write_output(dir: &Path, output: &Output) -> io::Result<WriteStats> {
    use rayon::prelude::*;
    let mut stats = WriteStats::default();
    let umask = process_umask();
    std::fs::create_dir_all(dir)?;
    let parents: std::collections::BTreeSet<PathBuf> = output
        .files
        .keys()
        .filter_map(|rel| dir.join(rel).parent().map(Path::to_path_buf))
        .collect();
    for p in parents {
        std::fs::create_dir_all(p)?;
    }
    // Files are independent: compare and write them on every core.
    let written: Vec<bool> = output
        .files
        .par_iter()
        .map(|(rel, content)| -> io::Result<bool> {
            let path = dir.join(rel);
            if has_contents(&path, content.as_bytes()) {
                // Written by an earlier version (0600), or chmod-ed since: give it the
                // mode a new file would have, or Nagios may not be able to read it.
                fix_mode(&path, umask)?;
                return Ok(false);
            }
            write_atomic(&path, content.as_bytes())?;
            Ok(true)
        })
        .collect::<io::Result<_>>()?;
    stats.written = written.iter().filter(|w| **w).count();
    stats.unchanged = written.len() - stats.written;
    let wanted: HashSet<PathBuf> = output.files.keys().map(|rel| dir.join(rel)).collect();
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.map_err(io::Error::other)?;
        let path = entry.path();
        if entry.file_type().is_file() && path.extension().is_some_and(|e| e == "cfg") && !wanted.contains(path) {
            std::fs::remove_file(path)?;
            stats.removed += 1;
        }
    }
    Ok(stats)
}

/// True when the file at `path` holds exactly `content`.
pub fn has_contents(path: &Path, content: &[u8]) -> bool {
    std::fs::read(path).is_ok_and(|old| old == content)
}

/// The mode of a new file before the umask, as `File::create` uses it.
const FILE_MODE: u32 = 0o666;

/// Write through a temporary file in the same directory and rename it into place. The
/// file gets the mode `File::create` would give it (0666 less the process umask).
pub fn write_atomic(path: &Path, content: &[u8]) -> io::Result<()> {
    write_atomic_mode(path, content, FILE_MODE)
}

/// [`write_atomic`] for a state file that may hold secrets or profile contents (such as
/// the daemon's `status.json`): readable and writable by its owner only (0600).
pub fn write_private(path: &Path, content: &[u8]) -> io::Result<()> {
    write_atomic_mode(path, content, 0o600)
}

fn write_atomic_mode(path: &Path, content: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    // The kernel applies the umask to `mode`, as it does for `File::create`.
    let mut tmp = tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    io::Write::write_all(&mut tmp, content)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The process umask, read without changing it (`umask(2)` can only set it, which would
/// race with other threads creating files): the `Umask:` line of `/proc/self/status`.
/// `None` where that is not available.
pub fn process_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
}

/// Give an existing file the mode a new one would get, when it differs.
fn fix_mode(path: &Path, umask: Option<u32>) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let Some(umask) = umask else { return Ok(()) };
    let want = FILE_MODE & !umask;
    let have = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    if have != want {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(want))?;
    }
    Ok(())
}

/// A writer for repeated passes into the same directory: it remembers the digest of
/// every file it wrote, so an unchanged file is neither read back nor rewritten, and only
/// the files of changed machines touch the disk.
#[derive(Debug)]
pub struct OutputWriter {
    dir: PathBuf,
    /// What this writer last wrote, to compare with: shared with the engine's output, so
    /// an unchanged file compares by pointer, and a changed one by memcmp.
    written: std::collections::HashMap<PathBuf, std::sync::Arc<str>>,
    primed: bool,
}

impl OutputWriter {
    pub fn new(dir: &Path) -> Self {
        OutputWriter {
            dir: dir.to_path_buf(),
            written: std::collections::HashMap::new(),
            primed: false,
        }
    }

    /// Write `output`. The first call compares with what is on disk; later calls compare
    /// with what this writer wrote.
    pub fn write(&mut self, output: &Output) -> io::Result<WriteStats> {
        if !self.primed {
            let stats = write_output(&self.dir, output)?;
            self.written = output.files.clone().into_iter().collect();
            self.primed = true;
            return Ok(stats);
        }
        let mut stats = WriteStats::default();
        for (rel, content) in &output.files {
            if self.written.get(rel) == Some(content) {
                stats.unchanged += 1;
                continue;
            }
            let path = self.dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            write_atomic(&path, content.as_bytes())?;
            self.written.insert(rel.clone(), content.clone());
            stats.written += 1;
        }
        let gone: Vec<PathBuf> = self
            .written
            .keys()
            .filter(|k| !output.files.contains_key(*k))
            .cloned()
            .collect();
        for rel in gone {
            match std::fs::remove_file(self.dir.join(&rel)) {
                Ok(()) => stats.removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            self.written.remove(&rel);
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn files_get_the_mode_of_file_create_and_state_files_stay_private() {
        // The umask is process-wide: read it, never set it here (cli/tests sets it in a
        // child process).
        let umask = process_umask().expect("Linux has /proc/self/status");
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::File::create(&plain).unwrap();
        let atomic = dir.path().join("atomic");
        write_atomic(&atomic, b"x").unwrap();
        assert_eq!(mode(&atomic), 0o666 & !umask);
        assert_eq!(mode(&atomic), mode(&plain));
        let private = dir.path().join("private");
        write_private(&private, b"x").unwrap();
        assert_eq!(mode(&private), 0o600);

        // An unchanged file left 0600 by an earlier version gets the usual mode back.
        let out = dir.path().join("out");
        let output = Output {
            files: [(PathBuf::from("20-machines/00.cfg"), std::sync::Arc::from("x\n"))].into(),
        };
        write_output(&out, &output).unwrap();
        let shard = out.join("20-machines/00.cfg");
        assert_eq!(mode(&shard), 0o666 & !umask);
        assert_eq!(mode(&out.join("20-machines")), 0o777 & !umask);
        std::fs::set_permissions(&shard, std::fs::Permissions::from_mode(0o600)).unwrap();
        let stats = write_output(&out, &output).unwrap();
        assert_eq!((stats.written, stats.unchanged), (0, 1));
        assert_eq!(mode(&shard), 0o666 & !umask);
    }
}
