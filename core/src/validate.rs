//! Runs the real `nagios -v` on a generated object directory, through a minimal main
//! configuration written into a temporary directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;
use thiserror::Error;

/// `nagios -v` could not be run at all.
#[derive(Debug, Error)]
pub enum ValidateError {
    #[error("cannot prepare a validation directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot run {bin}: {source}")]
    Spawn { bin: PathBuf, source: std::io::Error },
}

/// What `nagios -v` said.
#[derive(Debug, Clone, Serialize)]
pub struct NagiosCheck {
    pub ok: bool,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// The full output, for logs.
    pub output: String,
}

/// The default Nagios binary (Debian's `nagios4-core`).
pub const DEFAULT_NAGIOS: &str = "/usr/sbin/nagios4";

/// A minimal main configuration that loads `objects_dir` and keeps every other path
/// inside `work_dir`.
pub fn minimal_main_config(objects_dir: &Path, work_dir: &Path) -> String {
    let w = work_dir.display();
    let mut cfg = format!(
        "cfg_dir={}\nresource_file={w}/resource.cfg\ncheck_result_path={w}/checkresults\ntemp_path={w}\n\
         lock_file={w}/nagios.lock\nlog_file={w}/nagios.log\nstatus_file={w}/status.dat\n\
         state_retention_file={w}/retention.dat\nobject_cache_file={w}/objects.cache\n\
         precached_object_file={w}/objects.precache\ncommand_file={w}/nagios.cmd\n\
         illegal_object_name_chars=`~!$%^&*|'\"<>?,()=\nillegal_macro_output_chars=`~$&|'\"<>\n",
        objects_dir.display()
    );
    if is_root() {
        cfg.push_str("nagios_user=root\nnagios_group=root\n");
    }
    cfg
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Prepare `work_dir` for [`minimal_main_config`]; returns the main config's path.
pub fn prepare_work_dir(objects_dir: &Path, work_dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(work_dir.join("checkresults"))?;
    std::fs::write(work_dir.join("resource.cfg"), "$USER1$=/usr/lib/nagios/plugins\n")?;
    let main = work_dir.join("nagios.cfg");
    std::fs::write(&main, minimal_main_config(objects_dir, work_dir))?;
    Ok(main)
}

/// Validate `objects_dir` with `nagios_bin -v`, using a throw-away main config.
pub fn validate_dir(nagios_bin: &Path, objects_dir: &Path) -> Result<NagiosCheck, ValidateError> {
    let work = tempfile::tempdir()?;
    let objects = std::fs::canonicalize(objects_dir)?;
    let main = prepare_work_dir(&objects, work.path())?;
    run_verify(nagios_bin, &main)
}

/// Run `nagios_bin -v main_cfg` and parse its verdict.
pub fn run_verify(nagios_bin: &Path, main_cfg: &Path) -> Result<NagiosCheck, ValidateError> {
    let out = Command::new(nagios_bin)
        .arg("-v")
        .arg(main_cfg)
        .output()
        .map_err(|source| ValidateError::Spawn {
            bin: nagios_bin.to_path_buf(),
            source,
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let errors: Vec<String> = text
        .lines()
        .filter(|l| l.contains("Error:"))
        .map(|l| l.trim().to_string())
        .collect();
    let warnings: Vec<String> = text
        .lines()
        .filter(|l| l.contains("Warning:"))
        .map(|l| l.trim().to_string())
        .collect();
    let total_zero = text.lines().any(|l| l.trim() == "Total Errors:   0");
    Ok(NagiosCheck {
        ok: out.status.success() && total_zero && errors.is_empty(),
        errors,
        warnings,
        output: text,
    })
}
