//! The profile source: listing a profile tree, and opening a profile safely.

use std::path::{Path, PathBuf};

/// Open a profile for reading: a regular file only (a FIFO would block the pass for
/// ever, a device or a directory is no profile), and no larger than
/// [`lcfg_profile::MAX_PROFILE_BYTES`]. Opened without blocking, then checked.
pub(crate) fn open_profile(file: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(file)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a directory, FIFO, socket or device)",
        ));
    }
    if meta.len() > lcfg_profile::MAX_PROFILE_BYTES {
        return Err(too_large());
    }
    Ok(f)
}

pub(crate) fn too_large() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "larger than the {} MiB limit for a profile",
            lcfg_profile::MAX_PROFILE_BYTES >> 20
        ),
    )
}

/// Read `file` into this thread's reusable buffer and run `f` on its bytes. Each thread
/// reads profile after profile: a new buffer for each would cost a page fault (and the
/// kernel zeroing a page) for every 4 KiB read.
pub(crate) fn with_file_bytes<T>(file: &Path, f: impl FnOnce(&[u8]) -> T) -> std::io::Result<T> {
    use std::io::Read;
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUFFER.with(|buffer| {
        // Busy only if `f` re-entered (a nested rayon task on this thread): then read into
        // a buffer of its own.
        let Ok(mut buf) = buffer.try_borrow_mut() else {
            let mut own = Vec::new();
            open_profile(file)?
                .take(lcfg_profile::MAX_PROFILE_BYTES + 1)
                .read_to_end(&mut own)?;
            if own.len() as u64 > lcfg_profile::MAX_PROFILE_BYTES {
                return Err(too_large());
            }
            return Ok(f(&own));
        };
        buf.clear();
        open_profile(file)?
            .take(lcfg_profile::MAX_PROFILE_BYTES + 1)
            .read_to_end(&mut buf)?;
        if buf.len() as u64 > lcfg_profile::MAX_PROFILE_BYTES {
            return Err(too_large());
        }
        let out = f(&buf);
        if buf.capacity() > 16 << 20 {
            // Do not keep an outsized profile's buffer for the rest of the process.
            *buf = Vec::new();
        }
        Ok(out)
    })
}

/// Every `*.xml` and `*.xml.gz` file under `dir`, recursively, sorted.
/// The profiles under a directory, and each path under it that could not be listed or is
/// no profile though named like one.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub files: Vec<PathBuf>,
    /// (path, why): a dangling symlink or a loop, an unreadable directory, a directory
    /// named `*.xml`, a symlink that leads out of the tree.
    pub problems: Vec<(PathBuf, String)>,
}

impl Listing {
    /// Add another directory's listing.
    pub fn extend(&mut self, other: Listing) {
        self.files.extend(other.files);
        self.problems.extend(other.problems);
    }
}

/// List the profiles (`*.xml`, `*.xml.gz`) under `dir`. Only `dir` itself failing is an
/// error: anything wrong below it is a problem of that path alone, and the rest of the tree
/// is listed as usual. Symlinks are followed only while they stay inside `dir`, unless
/// `follow_outside`. A FIFO or device named like a profile is listed: reading it is then
/// that file's error.
pub fn list_profiles(dir: &Path, follow_outside: bool) -> std::io::Result<Listing> {
    let root = std::fs::canonicalize(dir)?;
    if !std::fs::metadata(&root)?.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a directory",
        ));
    }
    std::fs::read_dir(&root)?;
    let mut out = Listing::default();
    let named_like_profile = |p: &Path| {
        let name = p.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        name.ends_with(".xml") || name.ends_with(".xml.gz")
    };
    let mut walk = walkdir::WalkDir::new(dir).follow_links(true).into_iter();
    while let Some(entry) = walk.next() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().map(Path::to_path_buf).unwrap_or_else(|| dir.to_path_buf());
                let why = if e.loop_ancestor().is_some() {
                    "a symlink loop".to_string()
                } else {
                    match e.io_error() {
                        Some(io) if io.kind() == std::io::ErrorKind::NotFound => "a dangling symlink".to_string(),
                        Some(io) => format!("cannot be listed: {io}"),
                        None => e.to_string(),
                    }
                };
                out.problems.push((path, why));
                continue;
            }
        };
        if entry.path_is_symlink() && !follow_outside {
            match std::fs::canonicalize(entry.path()) {
                Ok(target) if target.starts_with(&root) => {}
                Ok(target) => {
                    out.problems.push((
                        entry.path().to_path_buf(),
                        format!(
                            "a symlink out of the profile tree (to {}), not followed",
                            target.display()
                        ),
                    ));
                    if entry.file_type().is_dir() {
                        walk.skip_current_dir();
                    }
                    continue;
                }
                Err(e) => {
                    out.problems
                        .push((entry.path().to_path_buf(), format!("cannot be resolved: {e}")));
                    continue;
                }
            }
        }
        let ft = entry.file_type();
        if ft.is_dir() {
            if entry.depth() > 0 && named_like_profile(entry.path()) {
                out.problems.push((
                    entry.path().to_path_buf(),
                    "a directory named like a profile".to_string(),
                ));
            } else if entry.depth() > 0 && is_empty_mount_point(entry.path()) {
                out.problems.push((
                    entry.path().to_path_buf(),
                    "an empty mount point (a file system mounted empty, or in place of the profiles)".to_string(),
                ));
            }
            continue;
        }
        if named_like_profile(entry.path()) {
            out.files.push(entry.into_path());
        }
    }
    out.files.sort();
    out.problems.sort();
    Ok(out)
}

/// An empty directory on another device than its parent: a mount point whose file
/// system holds nothing, which must not read as "these machines are gone".
pub(crate) fn is_empty_mount_point(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Some(parent), Ok(meta)) = (dir.parent(), std::fs::metadata(dir)) else {
        return false;
    };
    std::fs::metadata(parent).is_ok_and(|p| p.dev() != meta.dev())
        && std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

pub fn find_profiles(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(true) {
        let entry = entry.map_err(std::io::Error::other)?;
        if !entry.file_type().is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        if name.ends_with(".xml") || name.ends_with(".xml.gz") {
            out.push(entry.into_path());
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a profile's path names `machine`: its file name is the machine or its first
/// label (`kdc1.xml`, `kdc1.example.org.xml`, optionally gzipped), or it stands in the
/// LCFG layout `<domain>/<node>/XML/profile.xml`.
pub fn path_names_machine(file: &Path, machine: &str) -> bool {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let stem = name
        .strip_suffix(".gz")
        .unwrap_or(name)
        .strip_suffix(".xml")
        .unwrap_or_default();
    let node = machine.split('.').next().unwrap_or_default();
    if !stem.is_empty() && (stem == machine || stem == node) {
        return true;
    }
    let parts: Vec<&str> = file.iter().rev().take(4).filter_map(|p| p.to_str()).collect();
    match parts[..] {
        ["profile.xml" | "profile.xml.gz", "XML", n, domain] => format!("{n}.{domain}") == machine,
        _ => false,
    }
}
