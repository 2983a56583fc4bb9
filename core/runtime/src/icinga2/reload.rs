//! Reloading Icinga 2 by a signal, sent only to a process that is icinga2.
//!
//! icinga2 writes the pid of its *umbrella* process to `InitRunDir/icinga2.pid`
//! (`/run/icinga2/icinga2.pid` on Debian). On SIGHUP the umbrella starts a new worker with
//! the new configuration, and replaces the old one only once the new one has loaded: a
//! configuration that does not load leaves the old worker running. A reload is confirmed
//! by the API's `program_start` moving forward ([`super::api::ApiClient::program_start`]).

use std::path::{Path, PathBuf};

/// Whether `pid` is icinga2: its executable (`/proc/PID/exe`) is `icinga_bin`
/// (canonicalized), or a file named `icinga2` in a `…/icinga2/sbin/` directory. The
/// latter is how Debian installs the real binary, which its `/usr/sbin/icinga2` (a shell
/// script) `exec`s, so that a daemon started as `/usr/sbin/icinga2` never runs that path.
/// A binary replaced since the daemon started (a package upgrade) still counts. A stale
/// pid file names some other process, which a SIGHUP would kill.
pub fn is_our_icinga(pid: i32, icinga_bin: &Path) -> Result<(), String> {
    if pid <= 1 {
        return Err("not a daemon's pid".into());
    }
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).map_err(|e| format!("no such process ({e})"))?;
    // The kernel marks a binary replaced since exec so.
    let exe = match exe.to_str().and_then(|s| s.strip_suffix(" (deleted)")) {
        Some(s) => PathBuf::from(s),
        None => exe,
    };
    let want = std::fs::canonicalize(icinga_bin).unwrap_or_else(|_| icinga_bin.to_path_buf());
    if exe == want || is_real_icinga_path(&exe) {
        Ok(())
    } else {
        Err(format!(
            "it runs {}, not {} (nor an icinga2 under …/icinga2/sbin/)",
            exe.display(),
            want.display()
        ))
    }
}

/// `…/icinga2/sbin/icinga2`.
fn is_real_icinga_path(exe: &Path) -> bool {
    let name = |p: Option<&Path>| p.and_then(Path::file_name).and_then(|n| n.to_str()).map(str::to_owned);
    let sbin = exe.parent();
    name(Some(exe)).as_deref() == Some("icinga2")
        && name(sbin).as_deref() == Some("sbin")
        && name(sbin.and_then(Path::parent)).as_deref() == Some("icinga2")
}

/// Send SIGHUP to the pid in `pid_file`, when that process is icinga2 ([`is_our_icinga`]).
pub fn reload_by_pid_file(pid_file: &Path, icinga_bin: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(pid_file).map_err(|e| format!("{}: {e}", pid_file.display()))?;
    let pid: i32 = text
        .trim()
        .parse()
        .map_err(|_| format!("{}: no pid in {text:?}", pid_file.display()))?;
    is_our_icinga(pid, icinga_bin)
        .map_err(|why| format!("pid {pid} in {}: {why}; not signalled", pid_file.display()))?;
    tracing::info!(pid, "sending SIGHUP to icinga2");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGHUP)
        .map_err(|e| format!("SIGHUP to pid {pid}: {e}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// `PROGRAM 30` with SIGHUP at its default action (`env --default-signal` resets it,
    /// which the test runner may have ignored), once it has become `PROGRAM`.
    fn sleeper(program: &Path) -> std::process::Child {
        let child = std::process::Command::new("env")
            .arg("--default-signal=HUP")
            .arg(program)
            .arg("30")
            .spawn()
            .unwrap();
        let comm = format!("/proc/{}/comm", child.id());
        let name = program.file_name().unwrap().to_str().unwrap();
        while std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() != name) {
            std::thread::sleep(Duration::from_millis(5));
        }
        child
    }

    #[test]
    fn only_icinga2_is_signalled() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("icinga2.pid");
        // A bystander whose pid a stale pid file names.
        let mut bystander = sleeper(Path::new("/usr/bin/sleep"));
        std::fs::write(&pid_file, format!("{}\n", bystander.id())).unwrap();
        let e = reload_by_pid_file(&pid_file, Path::new("/usr/sbin/icinga2")).unwrap_err();
        assert!(e.contains("not signalled") && e.contains("/usr/bin/sleep"), "{e}");
        assert!(bystander.try_wait().unwrap().is_none(), "the bystander lives");
        // The configured binary itself.
        reload_by_pid_file(&pid_file, Path::new("/usr/bin/sleep")).unwrap();
        let status = bystander.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(1));
        // A binary where Debian puts the real icinga2, started by another name.
        let sbin = dir.path().join("lib/icinga2/sbin");
        std::fs::create_dir_all(&sbin).unwrap();
        let fake = sbin.join("icinga2");
        std::fs::copy("/usr/bin/sleep", &fake).unwrap();
        let mut child = sleeper(&fake);
        std::fs::write(&pid_file, format!("{}\n", child.id())).unwrap();
        reload_by_pid_file(&pid_file, Path::new("/usr/sbin/icinga2")).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(1));
        // No pid, or no daemon's pid.
        std::fs::write(&pid_file, "x").unwrap();
        assert!(reload_by_pid_file(&pid_file, &fake).unwrap_err().contains("no pid"));
        std::fs::write(&pid_file, "1").unwrap();
        assert!(
            reload_by_pid_file(&pid_file, &fake)
                .unwrap_err()
                .contains("not a daemon's pid")
        );
        assert!(is_real_icinga_path(Path::new(
            "/usr/lib/x86_64-linux-gnu/icinga2/sbin/icinga2"
        )));
        assert!(!is_real_icinga_path(Path::new("/usr/sbin/icinga2")));
    }
}
