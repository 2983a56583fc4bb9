//! Reloading Nagios: by its command file, by a signal (only to the configured Nagios) or
//! by a command, confirmed by the `program_start` of its status file.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{DeployConfig, Reload, absolute};
use crate::commands::{now, write_commands};

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
        Reload::Icinga2Signal { pid_file } => crate::icinga2::reload::reload_by_pid_file(pid_file, &cfg.nagios_bin),
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
            pause_at: None,
            icinga2: None,
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
        // Until `sleep` has replaced `env` (and the test binary before it): its name and
        // its whole command line, both read again after a failed read (bounded).
        let comm = format!("/proc/{}/comm", child.id());
        let cmdline = format!("/proc/{}/cmdline", child.id());
        let want: Vec<u8> = std::iter::once("sleep")
            .chain(args.iter().copied())
            .flat_map(|a| a.bytes().chain([0]))
            .collect();
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < end
            && !(std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "sleep")
                && std::fs::read(&cmdline).is_ok_and(|c| c == want))
        {
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
}
