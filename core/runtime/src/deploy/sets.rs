//! A set's directories: staging, writing and syncing it, the atomic swap of the live
//! symlink, rejected sets, garbage collection and recovery after a crash.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use monitor_engine::Output;

use super::{DeployConfig, DeployError, io};

/// Remove every staging directory under `sets`.
pub(super) fn remove_staging(sets: &Path) -> Result<(), DeployError> {
    for e in std::fs::read_dir(sets).map_err(io(sets))?.flatten() {
        if e.file_name().to_string_lossy().starts_with(".staging-") {
            std::fs::remove_dir_all(e.path()).map_err(io(&e.path()))?;
        }
    }
    Ok(())
}

/// Remove staging directories left behind by a crash.
pub fn recover(cfg: &DeployConfig) -> Result<(), DeployError> {
    let sets = cfg.state_dir.join("sets");
    let Ok(entries) = std::fs::read_dir(&sets) else {
        return Ok(());
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(".staging-") {
            tracing::info!(path = %e.path().display(), "removing a staging directory left by an interrupted deploy");
            std::fs::remove_dir_all(e.path()).map_err(io(&e.path()))?;
        }
    }
    Ok(())
}

/// Write `output` into `dir` and sync it. A file identical to the one in the previous set
/// is hard-linked instead (a set's files are never changed in place), so a change to a
/// few machines writes and syncs only their shards.
pub(super) fn write_synced(dir: &Path, output: &Output, previous: Option<&Path>) -> Result<(), DeployError> {
    for (rel, text) in &output.files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        if let Some(prev) = previous.map(|p| p.join(rel))
            && crate::writer::has_contents(&prev, text.as_bytes())
            && std::fs::hard_link(&prev, &path).is_ok()
        {
            continue;
        }
        let mut f = std::fs::File::create(&path).map_err(io(&path))?;
        f.write_all(text.as_bytes()).map_err(io(&path))?;
        f.sync_all().map_err(io(&path))?;
    }
    for d in walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_dir())
    {
        sync_dir(d.path())?;
    }
    Ok(())
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), DeployError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Point the live symlink at `target` with one atomic rename.
pub(super) fn swap(cfg: &DeployConfig, target: &Path) -> Result<(), DeployError> {
    let parent = cfg.live.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let tmp = parent.join(format!(
        ".{}.swap-{}",
        cfg.live
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &cfg.live).map_err(io(&cfg.live))?;
    sync_dir(parent)
}

pub(super) fn keep_rejected(cfg: &DeployConfig, staging: &Path, set: &str) -> Result<PathBuf, DeployError> {
    let dir = cfg.state_dir.join("rejected");
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let kept = dir.join(format!("{stamp}-{set}"));
    if kept.exists() {
        std::fs::remove_dir_all(&kept).map_err(io(&kept))?;
    }
    std::fs::rename(staging, &kept).map_err(io(&kept))?;
    let mut all: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(io(&dir))?
        .flatten()
        .map(|e| e.path())
        .collect();
    all.sort();
    while all.len() > cfg.keep_rejected.max(1) {
        let old = all.remove(0);
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    Ok(kept)
}

/// Keep the live set and the one before it (for a rollback); remove the others.
pub(super) fn collect_garbage(sets: &Path, live: &str, previous: Option<&str>) -> Result<(), DeployError> {
    for e in std::fs::read_dir(sets).map_err(io(sets))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == live || Some(name.as_str()) == previous || name.starts_with('.') {
            continue;
        }
        std::fs::remove_dir_all(e.path()).map_err(io(&e.path()))?;
    }
    Ok(())
}
