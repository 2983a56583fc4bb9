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
    let mut stats = WriteStats::default();
    std::fs::create_dir_all(dir)?;
    for (rel, content) in &output.files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if std::fs::read(&path).is_ok_and(|old| old == content.as_bytes()) {
            stats.unchanged += 1;
            continue;
        }
        write_atomic(&path, content.as_bytes())?;
        stats.written += 1;
    }
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

/// Write through a temporary file in the same directory and rename it into place.
pub fn write_atomic(path: &Path, content: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    io::Write::write_all(&mut tmp, content)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
