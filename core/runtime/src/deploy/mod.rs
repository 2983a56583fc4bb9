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

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use monitor_engine::Output;

mod pause;
mod reload;
mod sets;
mod verify;

pub use crate::commands::{
    ServiceResult, result_commands, sanitize, submit_results, submit_service_results, write_commands,
};
pub use pause::DeployPoint;
pub use reload::{is_our_nagios, main_config_path, nagios_program_start, reload, reload_confirmed};
pub use sets::recover;
pub use verify::verify_config;

use pause::pause_point;
use sets::{collect_garbage, keep_rejected, remove_staging, swap, sync_dir, write_synced};
use verify::validate_staging;

/// How Nagios is told to load the new configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum Reload {
    /// Write `RESTART_PROGRAM` to the external command file.
    CommandFile { path: PathBuf },
    /// Send SIGHUP to the pid in Nagios's lock file.
    Signal { lock_file: PathBuf },
    /// Send SIGHUP to the pid in Icinga 2's pid file (only when it is Icinga 2).
    Icinga2Signal { pid_file: PathBuf },
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
    /// The Nagios binary, or for an Icinga 2 set the icinga2 binary (a SIGHUP goes only
    /// to a process running it).
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
    /// Test seam: stop the deploy at this point for good (see [`DeployPoint`]), so that a
    /// test can `kill -9` it there. `None` outside such tests.
    pub pause_at: Option<DeployPoint>,
    /// The set is an Icinga 2 tree: validated with `icinga2 daemon -C` on every node's
    /// slice instead of `nagios -v` (`None`: a Nagios set).
    pub icinga2: Option<Icinga2Deploy>,
}

/// How an Icinga 2 set is validated: the validator and the nodes whose slices it checks.
#[derive(Debug, Clone)]
pub struct Icinga2Deploy {
    pub validator: crate::icinga2::validate::Validator,
    pub nodes: Vec<crate::icinga2::validate::Node>,
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
    pause_point(cfg, DeployPoint::Staged);

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
    pause_point(cfg, DeployPoint::Validated);

    let t = std::time::Instant::now();
    let target = sets.join(&set);
    if target.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    } else {
        std::fs::rename(&staging, &target).map_err(io(&target))?;
        sync_dir(&sets)?;
    }
    pause_point(cfg, DeployPoint::Renamed);
    swap(cfg, &target)?;
    pause_point(cfg, DeployPoint::Swapped);

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

fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() { p.to_path_buf() } else { base.join(p) }
}
