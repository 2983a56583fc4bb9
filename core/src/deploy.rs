//! Safe deployment of an assembled configuration to a running Nagios.
//!
//! Every generated set lives in a directory of its own, `STATE/sets/<blake3>`, and the
//! live path that the site's `nagios.cfg` names in `cfg_dir=` is a **symlink** to one of
//! them. A deploy:
//!
//! 1. skips everything when the set is byte-identical to the live one;
//! 2. writes the set into a staging directory and syncs it;
//! 3. runs `nagios -v` on a copy of the site's main config whose `cfg_dir=LIVE` line points
//!    at the staging directory instead;
//! 4. on failure, keeps the live set, logs the errors and moves the staging directory to
//!    `STATE/rejected/` for inspection (the newest few are kept);
//! 5. on success, renames the staging directory into place and swaps the symlink with a
//!    `rename(2)`, which is atomic: after a crash at any point the live path is the old or
//!    the new whole set, never a mix;
//! 6. reloads Nagios, and rolls the symlink back (and reloads again) if that fails; the
//!    set last reloaded is recorded, so that a crash between the swap and the reload is
//!    finished by a reload on the next pass.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::engine::{Outcome, Output};
use crate::validate::{
    NagiosCheck, is_executable_file, main_config_macros, main_config_values, missing_programs, run_verify,
    validation_user,
};

/// How Nagios is told to load the new configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum Reload {
    /// Write `RESTART_PROGRAM` to the external command file.
    CommandFile { path: PathBuf },
    /// Send SIGHUP to the pid in Nagios's lock file.
    Signal { lock_file: PathBuf },
    /// Run a command, such as `["systemctl", "reload", "nagios4"]`.
    Command { argv: Vec<String> },
    /// Do not reload (tests, or a site that reloads on its own).
    None,
}

/// Where and how to deploy.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// The live path: a symlink managed here, named by `cfg_dir=` in the main config.
    pub live: PathBuf,
    /// Sets, staging and rejected sets live under this directory.
    pub state_dir: PathBuf,
    pub nagios_bin: PathBuf,
    /// The site's main configuration file.
    pub nagios_config: PathBuf,
    pub reload: Reload,
    /// How many rejected sets to keep.
    pub keep_rejected: usize,
    /// Whom `nagios -v` runs as (when we are root); `None`: the main config's
    /// `nagios_user`, so that a set Nagios could not read is rejected.
    pub validate_user: Option<String>,
    /// Nagios's status file, whose `program_start` confirms a reload (`None`: not confirmed).
    pub status_file: Option<PathBuf>,
    /// How long a reload may take to show in the status file before it counts as failed.
    pub reload_timeout: Duration,
}

/// What a deploy did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Deployed {
    /// Byte-identical to the live set: nothing validated, nothing reloaded.
    Unchanged { set: String },
    /// Validated and swapped in; reloaded unless `reload_error` says why not (only when
    /// there was no earlier set to roll back to, such as before Nagios first started).
    Deployed {
        set: String,
        warnings: usize,
        reload_error: Option<String>,
    },
    /// `nagios -v` rejected it; the live set is unchanged.
    Rejected { kept_at: PathBuf, errors: Vec<String> },
    /// Swapped in, but the reload failed, so the previous set was restored.
    RolledBack { set: String, reason: String },
}

/// A deploy that could not be attempted properly.
#[derive(Debug, Error)]
pub enum DeployError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Validate(#[from] crate::validate::ValidateError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DeployError + '_ {
    move |source| DeployError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Test hook: with `MONITOR_COMPILE_PAUSE_AT=<point>` the deploy writes
/// `STATE/paused-at-<point>` and sleeps there, so that a test can `kill -9` it at a
/// chosen point. Points: `staged`, `validated`, `renamed`, `swapped`.
fn pause_point(cfg: &DeployConfig, point: &str) {
    if std::env::var("MONITOR_COMPILE_PAUSE_AT").is_ok_and(|p| p == point) {
        let marker = cfg.state_dir.join(format!("paused-at-{point}"));
        let _ = std::fs::write(&marker, std::process::id().to_string());
        tracing::warn!(point, "paused for a test (MONITOR_COMPILE_PAUSE_AT)");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
}

/// The content digest of a set: blake3 over every file name and contents, in order.
pub fn digest(output: &Output) -> String {
    let mut h = blake3::Hasher::new();
    for (path, text) in &output.files {
        h.update(path.to_string_lossy().as_bytes());
        h.update(&[0]);
        h.update(&(text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    h.finalize().to_hex()[..32].to_string()
}

/// The set the live symlink points at, if any.
pub fn live_set(cfg: &DeployConfig) -> Option<String> {
    let target = std::fs::read_link(&cfg.live).ok()?;
    target.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// Remove every staging directory under `sets`.
fn remove_staging(sets: &Path) -> Result<(), DeployError> {
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

/// The set Nagios was last successfully reloaded with (written after each reload).
fn reloaded_marker(cfg: &DeployConfig) -> PathBuf {
    cfg.state_dir.join("reloaded-set")
}

fn mark_reloaded(cfg: &DeployConfig, set: &str) -> Result<(), DeployError> {
    let path = reloaded_marker(cfg);
    crate::writer::write_atomic(&path, set.as_bytes()).map_err(io(&path))
}

/// How long each step of a deploy took, in milliseconds (zero for a step not taken).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DeployTimings {
    /// Writing and syncing the staging directory.
    pub write_ms: f64,
    /// `nagios -v`.
    pub validate_ms: f64,
    /// The swap and the reload (and a rollback, if any).
    pub reload_ms: f64,
}

fn ms_since(t: std::time::Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Deploy `output` (see the module docs).
pub fn deploy(cfg: &DeployConfig, output: &Output) -> Result<Deployed, DeployError> {
    deploy_timed(cfg, output, &mut DeployTimings::default())
}

/// [`deploy`], recording how long each step took in `timings`.
pub fn deploy_timed(cfg: &DeployConfig, output: &Output, timings: &mut DeployTimings) -> Result<Deployed, DeployError> {
    *timings = DeployTimings::default();
    let set = digest(output);
    let previous = live_set(cfg);
    if previous.as_deref() == Some(set.as_str()) {
        // Live already; but a crash between the swap and the reload would have left Nagios
        // on the old set: reload now if the last reload was not of this set.
        let reloaded = std::fs::read_to_string(reloaded_marker(cfg)).unwrap_or_default();
        if reloaded.trim() != set {
            tracing::info!(
                set,
                "the live set was never reloaded (interrupted deploy?): reloading now"
            );
            match reload_confirmed(cfg) {
                Ok(()) => mark_reloaded(cfg, &set)?,
                Err(reason) => tracing::warn!(%reason, "reload failed"),
            }
        }
        return Ok(Deployed::Unchanged { set });
    }
    if cfg.live.exists() && std::fs::symlink_metadata(&cfg.live).is_ok_and(|m| !m.file_type().is_symlink()) {
        return Err(DeployError::Config(format!(
            "{} exists and is not a symlink: monitor-compile manages it as a symlink to the current set; move it away",
            cfg.live.display()
        )));
    }
    let sets = cfg.state_dir.join("sets");
    std::fs::create_dir_all(&sets).map_err(io(&sets))?;
    // Staging directories of earlier attempts (a full disk, a crash) go first: the state
    // directory is ours alone (the daemon holds its lock).
    remove_staging(&sets)?;
    let staging = sets.join(format!(".staging-{set}-{}", std::process::id()));
    let previous_dir = previous.as_ref().map(|p| sets.join(p)).filter(|d| d.is_dir());
    let t = std::time::Instant::now();
    if let Err(e) = write_synced(&staging, output, previous_dir.as_deref()) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    timings.write_ms = ms_since(t);
    pause_point(cfg, "staged");

    let t = std::time::Instant::now();
    let check = match validate_staging(cfg, &staging, output) {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    timings.validate_ms = ms_since(t);
    if !check.ok {
        for e in &check.errors {
            tracing::error!(set = %set, "nagios -v: {e}");
        }
        let kept_at = keep_rejected(cfg, &staging, &set)?;
        tracing::error!(kept_at = %kept_at.display(), "configuration rejected by nagios -v; the live configuration is unchanged");
        return Ok(Deployed::Rejected {
            kept_at,
            errors: check.errors,
        });
    }
    pause_point(cfg, "validated");

    let t = std::time::Instant::now();
    let target = sets.join(&set);
    if target.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    } else {
        std::fs::rename(&staging, &target).map_err(io(&target))?;
        sync_dir(&sets)?;
    }
    pause_point(cfg, "renamed");
    swap(cfg, &target)?;
    pause_point(cfg, "swapped");

    let mut reload_error = None;
    if let Err(reason) = reload_confirmed(cfg).and_then(|()| mark_reloaded(cfg, &set).map_err(|e| e.to_string())) {
        match &previous {
            Some(prev) if sets.join(prev).is_dir() => {
                tracing::error!(%reason, "reload failed; rolling back to the previous configuration");
                swap(cfg, &sets.join(prev))?;
                if let Err(again) = reload_confirmed(cfg) {
                    tracing::error!(reason = %again, "reload after rollback failed too");
                }
                timings.reload_ms = ms_since(t);
                return Ok(Deployed::RolledBack { set, reason });
            }
            _ => {
                // The caller logs the outcome once ("deployed; Nagios not reloaded").
                reload_error = Some(reason);
            }
        }
    }
    timings.reload_ms = ms_since(t);
    collect_garbage(&sets, &set, previous.as_deref())?;
    Ok(Deployed::Deployed {
        set,
        warnings: check.warnings.len(),
        reload_error,
    })
}

/// Write `output` into `dir` and sync it. A file identical to the one in the previous set
/// is hard-linked instead (a set's files are never changed in place), so a change to a
/// few machines writes and syncs only their shards.
fn write_synced(dir: &Path, output: &Output, previous: Option<&Path>) -> Result<(), DeployError> {
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

fn sync_dir(dir: &Path) -> Result<(), DeployError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Point the live symlink at `target` with one atomic rename.
fn swap(cfg: &DeployConfig, target: &Path) -> Result<(), DeployError> {
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

/// The site's main config, with its `cfg_dir=LIVE` pointed at `staging`; relative paths
/// are made absolute so that the copy can live elsewhere.
pub fn verify_config(main: &str, main_dir: &Path, live: &Path, staging: &Path) -> Result<String, DeployError> {
    let live_abs = absolute(main_dir, live);
    let mut found = false;
    let mut out = String::with_capacity(main.len() + 64);
    for line in main.lines() {
        let t = line.trim();
        let rewritten = match t.split_once('=') {
            Some((key @ ("cfg_dir" | "cfg_file" | "resource_file"), value)) if !t.starts_with('#') => {
                let abs = absolute(main_dir, Path::new(value.trim()));
                if key == "cfg_dir" && same_path(&abs, &live_abs) {
                    found = true;
                    format!("cfg_dir={}", staging.display())
                } else {
                    format!("{key}={}", abs.display())
                }
            }
            _ => line.to_string(),
        };
        out.push_str(&rewritten);
        out.push('\n');
    }
    if !found {
        return Err(DeployError::Config(format!(
            "the Nagios main config has no cfg_dir={} line: add it so that Nagios loads the generated configuration",
            live.display()
        )));
    }
    Ok(out)
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() { p.to_path_buf() } else { base.join(p) }
}

fn same_path(a: &Path, b: &Path) -> bool {
    a.components().eq(b.components())
}

fn validate_staging(cfg: &DeployConfig, staging: &Path, output: &Output) -> Result<NagiosCheck, DeployError> {
    let main = std::fs::read_to_string(&cfg.nagios_config).map_err(io(&cfg.nagios_config))?;
    let main_dir = cfg.nagios_config.parent().unwrap_or(Path::new("/"));
    let text = verify_config(&main, main_dir, &cfg.live, staging)?;
    let verify_dir = cfg.state_dir.join("verify");
    std::fs::create_dir_all(&verify_dir).map_err(io(&verify_dir))?;
    let path = verify_dir.join("nagios.cfg");
    std::fs::write(&path, text).map_err(io(&path))?;
    let user = cfg
        .validate_user
        .as_deref()
        .or_else(|| main_config_values(&main, "nagios_user").last());
    let run_as = validation_user(user)?;
    let mut check = run_verify(&cfg.nagios_bin, &path, run_as.as_ref())?;
    check.missing_programs = missing_programs(output, &main_config_macros(&main, main_dir), is_executable_file);
    for m in &check.missing_programs {
        tracing::warn!("{m}");
    }
    Ok(check)
}

fn keep_rejected(cfg: &DeployConfig, staging: &Path, set: &str) -> Result<PathBuf, DeployError> {
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
fn collect_garbage(sets: &Path, live: &str, previous: Option<&str>) -> Result<(), DeployError> {
    for e in std::fs::read_dir(sets).map_err(io(sets))?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == live || Some(name.as_str()) == previous || name.starts_with('.') {
            continue;
        }
        std::fs::remove_dir_all(e.path()).map_err(io(&e.path()))?;
    }
    Ok(())
}

/// Tell Nagios to load the new configuration.
/// Ask Nagios to reload, as `cfg.reload` says (without confirming it: see
/// [`reload_confirmed`]). A signal goes only to a process that is the configured Nagios.
pub fn reload(cfg: &DeployConfig) -> Result<(), String> {
    match &cfg.reload {
        Reload::None => Ok(()),
        Reload::CommandFile { path } => write_commands(path, &[format!("[{}] RESTART_PROGRAM", now())]),
        Reload::Signal { lock_file } => {
            let text = std::fs::read_to_string(lock_file).map_err(|e| format!("{}: {e}", lock_file.display()))?;
            let pid: i32 = text
                .trim()
                .parse()
                .map_err(|_| format!("{}: no pid in {text:?}", lock_file.display()))?;
            is_our_nagios(pid, &cfg.nagios_bin, &cfg.nagios_config)
                .map_err(|why| format!("pid {pid} in {}: {why}; not signalled", lock_file.display()))?;
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGHUP)
                .map_err(|e| format!("SIGHUP to pid {pid}: {e}"))
        }
        Reload::Command { argv } => {
            let (prog, args) = argv.split_first().ok_or("the reload command is empty")?;
            let status = std::process::Command::new(prog)
                .args(args)
                .status()
                .map_err(|e| format!("{prog}: {e}"))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("{} exited with {status}", argv.join(" ")))
            }
        }
    }
}

/// Whether `pid` is the configured Nagios: its executable is `nagios_bin` and its
/// command line names the main config `nagios_config`. A stale lock file names some
/// other process, which a SIGHUP would kill.
pub fn is_our_nagios(pid: i32, nagios_bin: &Path, nagios_config: &Path) -> Result<(), String> {
    if pid <= 1 {
        return Err("not a daemon's pid".into());
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let exe = std::fs::read_link(proc_dir.join("exe")).map_err(|e| format!("no such process ({e})"))?;
    let want = std::fs::canonicalize(nagios_bin).unwrap_or_else(|_| nagios_bin.to_path_buf());
    if exe != want {
        return Err(format!("it runs {}, not {}", exe.display(), want.display()));
    }
    let cmdline = std::fs::read(proc_dir.join("cmdline")).map_err(|e| format!("cannot read its command line: {e}"))?;
    let config = std::fs::canonicalize(nagios_config).unwrap_or_else(|_| nagios_config.to_path_buf());
    let named = cmdline.split(|b| *b == 0).any(|arg| {
        let arg = Path::new(std::ffi::OsStr::from_bytes(arg));
        arg == nagios_config || std::fs::canonicalize(arg).is_ok_and(|a| a == config)
    });
    if named {
        Ok(())
    } else {
        Err(format!("its command line does not name {}", nagios_config.display()))
    }
}

/// Reload Nagios and confirm it: Nagios's `program_start` (in its status file) must move
/// past its value before the reload within `cfg.reload_timeout`. Without a status file
/// (or with `Reload::None`) the request alone counts.
pub fn reload_confirmed(cfg: &DeployConfig) -> Result<(), String> {
    let Some(status) = cfg
        .status_file
        .as_deref()
        .filter(|_| !matches!(cfg.reload, Reload::None))
    else {
        return reload(cfg);
    };
    let before = nagios_program_start(status);
    // program_start counts seconds: a restart in the second Nagios last started would
    // not show. Wait for the next second first.
    if before.is_some_and(|b| b >= now()) {
        let into_second = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_millis())
            .unwrap_or(0);
        std::thread::sleep(Duration::from_millis(u64::from(1000 - into_second.min(999))));
    }
    reload(cfg)?;
    let end = std::time::Instant::now() + cfg.reload_timeout;
    loop {
        if let Some(start) = nagios_program_start(status)
            && before.is_none_or(|b| start > b)
        {
            return Ok(());
        }
        if std::time::Instant::now() >= end {
            return Err(format!(
                "Nagios did not restart within {} s of the reload ({} shows program_start {})",
                cfg.reload_timeout.as_secs(),
                status.display(),
                before.map(|b| b.to_string()).unwrap_or_else(|| "none".into())
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Write external commands, one line each. Each line is one `write(2)` shorter than
/// `PIPE_BUF`, so lines from other writers cannot interleave with ours.
pub fn write_commands(command_file: &Path, lines: &[String]) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(command_file)
        .map_err(|e| {
            format!(
                "{}: cannot open the command file (is Nagios running?): {e}",
                command_file.display()
            )
        })?;
    // Nagios reads commands from a FIFO it makes itself: anything else (a regular file
    // left in its place) takes our lines and tells Nagios nothing.
    {
        use std::os::unix::fs::FileTypeExt;
        let kind = f
            .metadata()
            .map_err(|e| format!("{}: {e}", command_file.display()))?
            .file_type();
        if !kind.is_fifo() {
            return Err(format!(
                "{}: not a FIFO, so not Nagios's command file (is Nagios running with check_external_commands=1?)",
                command_file.display()
            ));
        }
    }
    for line in lines {
        let mut buf = line.clone().into_bytes();
        buf.push(b'\n');
        let mut tries = 0;
        loop {
            match f.write_all(&buf) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && tries < 500 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(format!("{}: {e}", command_file.display())),
            }
        }
    }
    Ok(())
}

/// Make text safe as the plugin output of an external command: one line, no `;` (the
/// field separator), no `|` (performance data), no control characters, at most 1000
/// bytes.
pub fn sanitize(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| match c {
            ';' => ',',
            '|' => '/',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.len() > 1000 {
        let mut cut = 1000;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// One passive check result for a service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceResult {
    pub host: String,
    pub description: String,
    /// 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    pub code: u8,
    /// The plugin output (sanitized when written).
    pub output: String,
}

impl ServiceResult {
    /// The result of one (machine, component): OK when it compiled, CRITICAL with the
    /// error when it did not.
    pub fn of_outcome(o: &Outcome) -> ServiceResult {
        let (code, output) = if o.errors.is_empty() {
            (0, format!("OK: {} compiled", o.component))
        } else {
            (2, format!("CRITICAL: {}", o.errors.join(" / ")))
        };
        ServiceResult {
            host: o.machine.clone(),
            description: crate::engine::status_service_description(&o.component),
            code,
            output,
        }
    }

    /// The `PROCESS_SERVICE_CHECK_RESULT` line. Every field is checked for the command
    /// file: the host must be a host name and the description free of `;` and control
    /// characters (either would let a value forge other results), and the output is
    /// sanitized. `None`, logged, for a result that cannot be written safely.
    pub fn command(&self, timestamp: u64) -> Option<String> {
        if let Err(why) = crate::profile::check_host_name(&self.host) {
            tracing::error!(host = ?self.host, why, "result not submitted: the host is not a host name");
            return None;
        }
        if self.description.is_empty() || self.description.contains(|c: char| c == ';' || c.is_control()) {
            tracing::error!(
                host = %self.host,
                description = ?self.description,
                "result not submitted: the service description cannot be written to the command file"
            );
            return None;
        }
        Some(format!(
            "[{timestamp}] PROCESS_SERVICE_CHECK_RESULT;{};{};{};{}",
            self.host,
            self.description,
            self.code,
            sanitize(&self.output)
        ))
    }
}

/// The `PROCESS_SERVICE_CHECK_RESULT` lines for a pass's outcomes: OK for the (machine,
/// component) pairs that compiled, CRITICAL with the error for those that did not.
pub fn result_commands(outcomes: &[&Outcome], timestamp: u64) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|o| ServiceResult::of_outcome(o).command(timestamp))
        .collect()
}

/// Submit `outcomes` through the command file.
pub fn submit_results(command_file: &Path, outcomes: &[&Outcome]) -> Result<(), String> {
    write_commands(command_file, &result_commands(outcomes, now()))
}

/// Submit `results` through the command file.
pub fn submit_service_results(command_file: &Path, results: &[&ServiceResult]) -> Result<(), String> {
    let ts = now();
    let lines: Vec<String> = results.iter().filter_map(|r| r.command(ts)).collect();
    write_commands(command_file, &lines)
}

/// The value of `key=` in a Nagios main config (the last one wins, as in Nagios),
/// relative paths taken from `main_dir`.
pub fn main_config_path(main: &str, main_dir: &Path, key: &str) -> Option<PathBuf> {
    crate::validate::main_config_values(main, key)
        .last()
        .map(|v| absolute(main_dir, Path::new(v)))
}

/// When the running Nagios last started (`program_start` in its status file), read
/// from the file's head (the `programstatus` block comes before any host). `None` when
/// the file cannot be read or holds no such line (Nagios never ran, or is starting).
pub fn nagios_program_start(status_file: &Path) -> Option<u64> {
    use std::io::Read;
    let mut head = Vec::with_capacity(64 << 10);
    std::fs::File::open(status_file)
        .ok()?
        .take(64 << 10)
        .read_to_end(&mut head)
        .ok()?;
    let text = String::from_utf8_lossy(&head);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("program_start="))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_line_carries_no_forged_field() {
        let r = |host: &str, description: &str| ServiceResult {
            host: host.into(),
            description: description.into(),
            code: 0,
            output: "all good; [1] PROCESS_SERVICE_CHECK_RESULT;web2;x;0;forged\nnext".into(),
        };
        assert_eq!(
            r("web1.example.org", "monitoring: kerberos").command(7).as_deref(),
            Some(
                "[7] PROCESS_SERVICE_CHECK_RESULT;web1.example.org;monitoring: kerberos;0;all good, [1] PROCESS_SERVICE_CHECK_RESULT,web2,x,0,forged next"
            )
        );
        assert_eq!(
            r("web1.example.org;Apache;0;all good", "monitoring: x").command(7),
            None
        );
        assert_eq!(r("web1.example.org", "a;b").command(7), None);
        assert_eq!(r("web1.example.org", "a\nb").command(7), None);
    }

    #[test]
    fn the_status_file_and_main_config_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("status.dat");
        std::fs::write(
            &f,
            "info {\n\tcreated=1\n}\n\nprogramstatus {\n\tnagios_pid=7\n\tprogram_start=1764700000\n}\n",
        )
        .unwrap();
        assert_eq!(nagios_program_start(&f), Some(1764700000));
        assert_eq!(nagios_program_start(&dir.path().join("missing")), None);
        let main = "status_file=/a\n#status_file=/b\nstatus_file = var/status.dat\n";
        assert_eq!(
            main_config_path(main, Path::new("/etc/n"), "status_file"),
            Some(PathBuf::from("/etc/n/var/status.dat"))
        );
        assert_eq!(main_config_path(main, Path::new("/"), "lock_file"), None);
    }

    #[test]
    fn sanitize_makes_one_safe_line() {
        let s = sanitize("bad\nvalue; [0] PROCESS_HOST_CHECK_RESULT;h;0;x | perf=1\r\u{7}end");
        assert_eq!(s, "bad value, [0] PROCESS_HOST_CHECK_RESULT,h,0,x / perf=1 end");
        assert_eq!(sanitize(&"é".repeat(800)).len(), 1000);
    }

    fn config(reload: Reload) -> DeployConfig {
        DeployConfig {
            live: "/nonexistent/live".into(),
            state_dir: "/nonexistent/state".into(),
            nagios_bin: "/usr/bin/sleep".into(),
            nagios_config: "/nonexistent/nagios.cfg".into(),
            reload,
            keep_rejected: 1,
            validate_user: None,
            status_file: None,
            reload_timeout: Duration::from_secs(1),
        }
    }

    /// `sleep ARGS` with SIGHUP at its default action (`env --default-signal` resets it,
    /// which the test runner may have ignored), once it has become `sleep`.
    fn sleeper(args: &[&str]) -> std::process::Child {
        let child = std::process::Command::new("env")
            .arg("--default-signal=HUP")
            .arg("sleep")
            .args(args)
            .spawn()
            .unwrap();
        let comm = format!("/proc/{}/comm", child.id());
        while std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() != "sleep") {
            std::thread::sleep(Duration::from_millis(5));
        }
        child
    }

    #[test]
    fn reload_methods_really_act() {
        // signal: SIGHUP to the pid in the lock file, when it is the configured program
        // with the configured main config on its command line.
        let dir = tempfile::tempdir().unwrap();
        // `sleep 30` stands for `nagios4 -d 30`: its command line names the main config "30".
        let main = PathBuf::from("30");
        let mut child = sleeper(&["30"]);
        let lock = dir.path().join("nagios.lock");
        std::fs::write(&lock, format!("{}\n", child.id())).unwrap();
        let mut cfg = config(Reload::Signal {
            lock_file: lock.clone(),
        });
        cfg.nagios_config = main.clone();
        reload(&cfg).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(1),
            "killed by SIGHUP"
        );
        std::fs::write(&lock, "not a pid").unwrap();
        assert!(reload(&cfg).unwrap_err().contains("no pid"));
        // command: its exit status decides.
        let marker = dir.path().join("reloaded");
        let argv = vec!["touch".to_string(), marker.display().to_string()];
        reload(&config(Reload::Command { argv })).unwrap();
        assert!(marker.exists());
        assert!(
            reload(&config(Reload::Command {
                argv: vec!["false".into()]
            }))
            .unwrap_err()
            .contains("exited with")
        );
        // command file: a line per command, into a FIFO (here with a reader of our own).
        let cmd = dir.path().join("nagios.cmd");
        nix::unistd::mkfifo(&cmd, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let reader = {
            let cmd = cmd.clone();
            std::thread::spawn(move || std::fs::read_to_string(cmd).unwrap())
        };
        // The reader opens the FIFO; the writer's non-blocking open needs it there.
        let mut text = None;
        for _ in 0..200 {
            if reload(&config(Reload::CommandFile { path: cmd.clone() })).is_ok() {
                text = Some(reader.join().unwrap());
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let text = text.expect("the FIFO took the command");
        assert!(
            text.starts_with('[') && text.ends_with("] RESTART_PROGRAM\n"),
            "{text:?}"
        );
        assert!(
            reload(&config(Reload::CommandFile {
                path: dir.path().join("missing.cmd")
            }))
            .unwrap_err()
            .contains("is Nagios running?")
        );
    }

    #[test]
    fn a_stale_pid_or_a_regular_command_file_is_never_taken_for_nagios() {
        let dir = tempfile::tempdir().unwrap();
        // A bystander whose pid a stale lock file names: not the configured Nagios.
        let mut bystander = sleeper(&["30"]);
        let lock = dir.path().join("nagios.lock");
        std::fs::write(&lock, format!("{}\n", bystander.id())).unwrap();
        let mut cfg = config(Reload::Signal { lock_file: lock });
        cfg.nagios_bin = "/usr/sbin/nagios4".into();
        let e = reload(&cfg).unwrap_err();
        assert!(e.contains("not signalled") && e.contains("/usr/bin/sleep"), "{e}");
        // The right program, but not with our main config.
        cfg.nagios_bin = "/usr/bin/sleep".into();
        let e = reload(&cfg).unwrap_err();
        assert!(e.contains("does not name /nonexistent/nagios.cfg"), "{e}");
        assert!(bystander.try_wait().unwrap().is_none(), "the bystander lives");
        let _ = bystander.kill();
        let _ = bystander.wait();
        // A regular file where the command file should be.
        let cmd = dir.path().join("nagios.cmd");
        std::fs::write(&cmd, "").unwrap();
        let e = reload(&config(Reload::CommandFile { path: cmd.clone() })).unwrap_err();
        assert!(e.contains("not a FIFO"), "{e}");
        assert_eq!(std::fs::read_to_string(&cmd).unwrap(), "", "nothing written to it");
        // An unconfirmed reload is a failure.
        let status = dir.path().join("status.dat");
        std::fs::write(&status, "programstatus {\n\tprogram_start=1000\n}\n").unwrap();
        let mut cfg = config(Reload::Command {
            argv: vec!["true".into()],
        });
        cfg.status_file = Some(status.clone());
        let e = reload_confirmed(&cfg).unwrap_err();
        assert!(e.contains("did not restart within 1 s"), "{e}");
        // Confirmed once program_start moves.
        let marker = status.display().to_string();
        cfg.reload = Reload::Command {
            argv: vec![
                "sh".into(),
                "-c".into(),
                format!("printf 'programstatus {{\\n\\tprogram_start=2000\\n}}\\n' > '{marker}'"),
            ],
        };
        reload_confirmed(&cfg).unwrap();
    }

    #[test]
    fn verify_config_points_the_live_dir_at_staging() {
        let main = "# site\ncfg_file=objects/commands.cfg\ncfg_dir=/etc/nagios4/generated\nresource_file=resource.cfg\nlog_file=/var/log/n.log\n";
        let out = verify_config(
            main,
            Path::new("/etc/nagios4"),
            Path::new("/etc/nagios4/generated"),
            Path::new("/s/x"),
        )
        .unwrap();
        assert_eq!(
            out,
            "# site\ncfg_file=/etc/nagios4/objects/commands.cfg\ncfg_dir=/s/x\nresource_file=/etc/nagios4/resource.cfg\nlog_file=/var/log/n.log\n"
        );
        assert!(verify_config("cfg_dir=/other\n", Path::new("/"), Path::new("/live"), Path::new("/s")).is_err());
    }
}
