//! A real OpenSSH server on 127.0.0.1 for the tests of the registration client
//! (`cli/packaging/monitoring-info/monitor-compile-register`) and of anything else that
//! talks to a monitoring server over ssh.
//!
//! [`Sshd::start`] writes an `sshd_config` of its own into a directory, with a throwaway
//! ed25519 host key (made by `ssh-keygen` there), an `AuthorizedKeysFile` the test writes
//! ([`Sshd::set_authorized_keys`]), `StrictModes no`, `UsePAM no`, public keys only, its
//! pid file and its log (`-E`, [`Sshd::log`]) in the directory, and runs `sshd -D` (in
//! the foreground, a child of the test, the leader of its own process group) on a free
//! port. The system's ssh service and `/etc/ssh` are not used. It runs as the user that
//! runs the tests, and that is the only user who can log in ([`Sshd::user`]): root in CI
//! (as root, sshd needs its privilege separation directory `/run/sshd`, which is made
//! when missing, as the `ssh` service does), or any other user. Dropping the [`Sshd`]
//! stops it (and its sessions) and reaps it.
//!
//! Without PAM, sshd refuses a user whose password field in `/etc/shadow` is locked
//! (begins with `!`): its log then says "not allowed because account is locked". Such a
//! user cannot run these tests; root with `*` or a password, or any ordinary user, can.
//!
//! Tests that need it fail (never skip) when `/usr/sbin/sshd` is missing: install the
//! `openssh-server` package (and `openssh-client` for `ssh` and `ssh-keygen`).

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::listeners::free_port;

/// The OpenSSH server (package `openssh-server`).
pub const SSHD: &str = "/usr/sbin/sshd";
/// The OpenSSH client (package `openssh-client`).
pub const SSH: &str = "/usr/bin/ssh";
/// The key generator (package `openssh-client`).
pub const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";

/// How long sshd may take to greet a connection.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// `/usr/sbin/sshd`; panics naming its package when it is missing.
pub fn sshd_bin() -> PathBuf {
    assert!(
        Path::new(SSHD).exists(),
        "{SSHD} is missing: install openssh-server (apt-get install openssh-server)"
    );
    PathBuf::from(SSHD)
}

/// `/usr/bin/ssh`; panics naming its package when it is missing.
pub fn ssh_bin() -> PathBuf {
    assert!(
        Path::new(SSH).exists(),
        "{SSH} is missing: install openssh-client (apt-get install openssh-client)"
    );
    PathBuf::from(SSH)
}

/// `/usr/bin/ssh-keygen`; panics naming its package when it is missing.
pub fn ssh_keygen_bin() -> PathBuf {
    assert!(
        Path::new(SSH_KEYGEN).exists(),
        "{SSH_KEYGEN} is missing: install openssh-client (apt-get install openssh-client)"
    );
    PathBuf::from(SSH_KEYGEN)
}

/// The name of the user running the tests (`id -un`).
pub fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id -un");
    assert!(out.status.success(), "id -un: {}", String::from_utf8_lossy(&out.stderr));
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!name.is_empty(), "id -un printed no user name");
    name
}

/// Whether the tests run as root (the owner of `/proc/self`, the effective user).
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// Make a throwaway ed25519 key pair without a passphrase, `dir/name` and
/// `dir/name.pub` (replacing any there), with `ssh-keygen`. Returns the private key's
/// path and the public key's line (`ssh-ed25519 AAAA... name`, no newline), ready for
/// an `authorized_keys` line.
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let bin = ssh_keygen_bin();
    std::fs::create_dir_all(dir).expect("create the key directory");
    let private = dir.join(name);
    let public = dir.join(format!("{name}.pub"));
    for f in [&private, &public] {
        match std::fs::remove_file(f) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                panic!("cannot replace {}: {e}", f.display())
            }
            _ => {}
        }
    }
    let out = Command::new(&bin)
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&private)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "ssh-keygen -f {} failed:\n{}{}",
        private.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = std::fs::read_to_string(&public).expect("read the public key");
    (private, line.trim().to_string())
}

/// A running test sshd, stopped and reaped on drop.
#[derive(Debug)]
pub struct Sshd {
    /// The port it listens on, on 127.0.0.1 only.
    pub port: u16,
    /// Its directory: `sshd_config`, the host key, `authorized_keys`, `sshd.pid`,
    /// `sshd.log`.
    pub dir: PathBuf,
    /// The user it runs as, the only one who can log in: the user running the tests.
    pub user: String,
    authorized_keys: PathBuf,
    host_key_pub: String,
    child: Child,
}

impl Sshd {
    /// Start sshd in `dir` (made if missing) on a free port of 127.0.0.1, with
    /// `authorized_keys_content` as the authorized keys of [`Sshd::user`]. Returns once
    /// it greets connections; panics, with its log, when it does not start.
    pub fn start(dir: &Path, authorized_keys_content: &str) -> Sshd {
        let bin = sshd_bin();
        std::fs::create_dir_all(dir).expect("create the sshd directory");
        let dir = std::fs::canonicalize(dir).expect("the sshd directory's absolute path");
        let user = current_user();
        if running_as_root() {
            // sshd's compiled-in privilege separation directory, which the ssh service
            // makes (RuntimeDirectory=sshd): sshd refuses to start as root without it.
            use std::os::unix::fs::DirBuilderExt;
            let privsep = Path::new("/run/sshd");
            if !privsep.is_dir() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(privsep)
                    .expect("create /run/sshd");
            }
        }
        let host_key = dir.join("ssh_host_ed25519_key");
        if !host_key.exists() {
            keygen(&dir, "ssh_host_ed25519_key");
        }
        let host_key_pub = std::fs::read_to_string(dir.join("ssh_host_ed25519_key.pub"))
            .expect("read the host key")
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let authorized_keys = dir.join("authorized_keys");
        let mut sshd = None;
        let mut last = String::new();
        for _ in 0..5 {
            match try_start(&bin, &dir, &host_key, &authorized_keys, free_port()) {
                Ok((port, child)) => {
                    sshd = Some(Sshd {
                        port,
                        dir: dir.clone(),
                        user: user.clone(),
                        authorized_keys: authorized_keys.clone(),
                        host_key_pub: host_key_pub.clone(),
                        child,
                    });
                    break;
                }
                Err(e) => last = e,
            }
        }
        let Some(sshd) = sshd else {
            panic!("sshd did not start in {}: {last}", dir.display());
        };
        sshd.set_authorized_keys(authorized_keys_content);
        sshd
    }

    /// The line for a client's `UserKnownHostsFile`: `[127.0.0.1]:PORT ssh-ed25519 AAAA...`
    /// (no newline).
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_key_pub)
    }

    /// Its log so far (`-E`, `LogLevel VERBOSE`: connections, accepted and refused keys).
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.dir.join("sshd.log")).unwrap_or_default()).into_owned()
    }

    /// Replace the authorized keys (whole lines, such as
    /// `command="...",no-pty ssh-ed25519 AAAA...`; a newline is added when missing).
    /// sshd reads the file at each login, so this applies to the next connection.
    pub fn set_authorized_keys(&self, content: &str) {
        let mut content = content.to_string();
        if !content.is_empty() && !content.ends_with('\n') {
            content.push('\n');
        }
        let tmp = self.dir.join("authorized_keys.new");
        std::fs::write(&tmp, content).expect("write the authorized keys");
        std::fs::rename(&tmp, &self.authorized_keys).expect("install the authorized keys");
    }

    /// An `ssh` command that logs in to it as [`Sshd::user`] with `key`, trusting only
    /// the host key in `known_hosts` (a file holding [`Sshd::known_hosts_line`]) and
    /// ignoring the user's ssh configuration (`-F /dev/null`, batch mode). Add the
    /// remote command, if any, and stdin.
    pub fn ssh_command(&self, key: &Path, known_hosts: &Path) -> Command {
        let mut cmd = Command::new(ssh_bin());
        cmd.arg("-F")
            .arg("/dev/null")
            .arg("-i")
            .arg(key)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "GlobalKnownHostsFile=/dev/null",
            ])
            .arg(format!("{}@127.0.0.1", self.user));
        cmd
    }

    /// Stop it now (as dropping it does).
    pub fn stop(self) {}
}

/// The configuration: nothing from `/etc/ssh`, public keys only.
fn config(dir: &Path, host_key: &Path, authorized_keys: &Path, port: u16) -> String {
    format!(
        "# A monitor-compile test sshd (tests/src/sshd.rs).
ListenAddress 127.0.0.1:{port}
AddressFamily inet
HostKey {host_key}
PidFile {pid}
AuthorizedKeysFile {authorized_keys}
AuthorizedPrincipalsFile none
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
PermitRootLogin prohibit-password
PermitUserEnvironment no
AllowAgentForwarding no
AllowTcpForwarding no
X11Forwarding no
PrintMotd no
PrintLastLog no
UseDNS no
LogLevel VERBOSE
",
        host_key = host_key.display(),
        pid = dir.join("sshd.pid").display(),
        authorized_keys = authorized_keys.display(),
    )
}

/// Write the configuration for `port`, check it (`sshd -t`), start sshd and wait until
/// it greets a connection.
fn try_start(
    bin: &Path,
    dir: &Path,
    host_key: &Path,
    authorized_keys: &Path,
    port: u16,
) -> Result<(u16, Child), String> {
    let conf = dir.join("sshd_config");
    std::fs::write(&conf, config(dir, host_key, authorized_keys, port)).expect("write sshd_config");
    let log_path = dir.join("sshd.log");
    let log = || String::from_utf8_lossy(&std::fs::read(&log_path).unwrap_or_default()).into_owned();
    let check = Command::new(bin)
        .arg("-t")
        .arg("-f")
        .arg(&conf)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !check.status.success() {
        // A bad configuration is no port clash: say so at once.
        panic!(
            "sshd -t -f {} rejected the configuration:\n{}{}",
            conf.display(),
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let stderr = std::fs::File::create(dir.join("sshd.stderr")).expect("create sshd.stderr");
    let mut child = Command::new(bin)
        .arg("-D")
        .arg("-f")
        .arg(&conf)
        .arg("-E")
        .arg(&log_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let end = Instant::now() + READY_WITHIN;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let stderr = std::fs::read_to_string(dir.join("sshd.stderr")).unwrap_or_default();
            return Err(format!("sshd exited ({status}) on port {port}:\n{stderr}{}", log()));
        }
        if greets(port) {
            return Ok((port, child));
        }
        if Instant::now() > end {
            crate::stop_child(&mut child, Duration::from_secs(5));
            return Err(format!(
                "sshd did not greet on port {port} within {READY_WITHIN:?}:\n{}",
                log()
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Whether something on `port` answers a connection with an SSH identification line.
fn greets(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 8];
    s.read_exact(&mut buf).is_ok() && &buf == b"SSH-2.0-"
}

impl Drop for Sshd {
    /// SIGTERM to its process group (the listener and the sessions it forked), then
    /// [`crate::stop_child`]: SIGKILL to the group when the listener has not exited
    /// within 5 s; then reap it.
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, killpg};
        use nix::unistd::Pid;
        if matches!(self.child.try_wait(), Ok(None))
            && let Ok(pid) = i32::try_from(self.child.id())
        {
            // Not reaped yet, so the group id is still its own.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
        }
        crate::stop_child(&mut self.child, Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_in_with_the_authorized_key_only_and_stops() {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let (key, public) = keygen(tmp.path(), "client");
        let (other, other_public) = keygen(tmp.path(), "other");
        let sshd = Sshd::start(&tmp.path().join("sshd"), &format!("command=\"printf forced\" {public}"));
        let known_hosts = tmp.path().join("known_hosts");
        std::fs::write(&known_hosts, format!("{}\n", sshd.known_hosts_line())).expect("write known_hosts");
        assert!(
            sshd.known_hosts_line()
                .starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 ", sshd.port))
        );

        let out = sshd
            .ssh_command(&key, &known_hosts)
            .arg("ignored")
            .stdin(Stdio::null())
            .output()
            .expect("run ssh");
        assert!(
            out.status.success(),
            "ssh: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            sshd.log()
        );
        assert_eq!(out.stdout, b"forced");
        assert!(sshd.log().contains("Accepted publickey for"), "{}", sshd.log());

        // Another key is refused; then authorized in its place, it logs in and the
        // first no longer does.
        let refused = sshd
            .ssh_command(&other, &known_hosts)
            .stdin(Stdio::null())
            .output()
            .expect("run ssh");
        assert_eq!(refused.status.code(), Some(255));
        sshd.set_authorized_keys(&format!("command=\"printf other\" {other_public}"));
        let out = sshd
            .ssh_command(&other, &known_hosts)
            .stdin(Stdio::null())
            .output()
            .expect("run ssh");
        assert_eq!(out.stdout, b"other", "{}", String::from_utf8_lossy(&out.stderr));
        let refused = sshd
            .ssh_command(&key, &known_hosts)
            .stdin(Stdio::null())
            .output()
            .expect("run ssh");
        assert_eq!(refused.status.code(), Some(255));

        // A wrong host key is refused by the client.
        let (_, wrong) = keygen(tmp.path(), "wrong-host");
        let wrong: Vec<&str> = wrong.split_whitespace().take(2).collect();
        std::fs::write(&known_hosts, format!("[127.0.0.1]:{} {}\n", sshd.port, wrong.join(" "))).expect("write");
        let out = sshd
            .ssh_command(&other, &known_hosts)
            .stdin(Stdio::null())
            .output()
            .expect("run ssh");
        assert_eq!(out.status.code(), Some(255));
        assert!(String::from_utf8_lossy(&out.stderr).contains("IDENTIFICATION HAS CHANGED"));

        let port = sshd.port;
        let pid_file = sshd.dir.join("sshd.pid");
        assert!(pid_file.exists());
        drop(sshd);
        let refused = std::net::TcpStream::connect(("127.0.0.1", port)).expect_err("stopped");
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}
