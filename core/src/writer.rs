//! Writes an assembled [`Output`] into a directory: only files whose contents changed
//! are rewritten (each through a temporary file and a rename), and `.cfg` files that
//! are no longer part of the output are removed. Unchanged machine files are left
//! alone, so an incremental pass touches only what changed.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::engine::Output;

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

/// Write through a temporary file in the same directory and rename it into place.
pub fn write_atomic(path: &Path, content: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    io::Write::write_all(&mut tmp, content)?;
    tmp.persist(path).map_err(|e| e.error)?;
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
