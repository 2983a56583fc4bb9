//! The registration client, `cli/packaging/monitoring-info/monitor-compile-register`,
//! against a real sshd (`monitor_integration_tests::sshd`): what it sends is byte-exactly
//! the `monitoring-info-registration 1` stream of the files it accepts, in C order.
//!
//! The server side is an authorized key whose forced command stores stdin
//! (`command="cat > DIR/received",no-pty,...`), as the monitoring server's key does with
//! its own command. These tests fail (never skip) when sshd or ssh is missing: install
//! `openssh-server` and `openssh-client`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use monitor_integration_tests::listeners::free_port;
use monitor_integration_tests::sshd::{Sshd, keygen, ssh_bin};

/// The script under test.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cli/packaging/monitoring-info/monitor-compile-register")
}

/// The file with odd bytes: quotes, `$`, backquotes, a line that is only `end`, a line
/// that looks like a record header, NUL and 0xff, and no trailing newline.
const ODD: &[u8] = b"[odd]\ntype = tcp\nname = \"double\" 'single' $HOME ${x} `id` \\n\nend\nfile fake 3\nabc\n\x00\xff\r\nno newline at the end";
const APACHE: &[u8] = b"[http]\ntype = http\nport = 80\n";

/// The expected stream for `files` (name, bytes), in the order given.
fn stream(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut s = b"monitoring-info-registration 1\n".to_vec();
    for (name, bytes) in files {
        s.extend_from_slice(format!("file {name} {}\n", bytes.len()).as_bytes());
        s.extend_from_slice(bytes);
        s.push(b'\n');
    }
    s.extend_from_slice(b"end\n");
    s
}

/// A test's world: a monitoring-info directory, a client key, an sshd whose authorized
/// key stores what it receives, and a known_hosts file with its host key.
struct World {
    tmp: tempfile::TempDir,
    info: PathBuf,
    key: PathBuf,
    public: String,
    known_hosts: PathBuf,
    sshd: Sshd,
}

impl World {
    fn new() -> World {
        // Fail, never skip, without the client.
        ssh_bin();
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let info = tmp.path().join("monitoring-info");
        std::fs::create_dir(&info).expect("create the monitoring-info directory");
        let (key, public) = keygen(tmp.path(), "client");
        let sshd = Sshd::start(&tmp.path().join("sshd"), "");
        let world = World {
            info,
            key,
            public,
            known_hosts: tmp.path().join("known_hosts"),
            sshd,
            tmp,
        };
        world.authorize("");
        std::fs::write(&world.known_hosts, format!("{}\n", world.sshd.known_hosts_line())).expect("write known_hosts");
        world
    }

    /// Where the forced command stores what it receives.
    fn received_path(&self) -> PathBuf {
        self.tmp.path().join("received")
    }

    fn received(&self) -> Vec<u8> {
        std::fs::read(self.received_path()).unwrap_or_else(|e| {
            panic!(
                "{}: {e}\nsshd log:\n{}",
                self.received_path().display(),
                self.sshd.log()
            )
        })
    }

    /// Authorize the client key with the forced command `cat > received` and then
    /// `after` (shell, may be empty).
    fn authorize(&self, after: &str) {
        self.sshd.set_authorized_keys(&format!(
            "command=\"cat > {}{after}\",no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding {}",
            self.received_path().display(),
            self.public
        ));
    }

    /// Write the defaults file: these lines, as given.
    fn defaults(&self, lines: &str) -> PathBuf {
        let path = self.tmp.path().join("defaults");
        std::fs::write(&path, lines).expect("write the defaults file");
        path
    }

    /// A defaults file with everything needed to register with the test sshd.
    fn full_defaults(&self) -> PathBuf {
        self.defaults(&format!(
            "# test defaults\nSERVER=127.0.0.1\nSSH_USER={}\nSSH_PORT={}\nKEY='{}'\nDIR='{}'\nKNOWN_HOSTS='{}'\n",
            self.sshd.user,
            self.sshd.port,
            self.key.display(),
            self.info.display(),
            self.known_hosts.display()
        ))
    }

    /// The two files to register and the names to skip.
    fn populate(&self) {
        let w = |name: &str, bytes: &[u8]| std::fs::write(self.info.join(name), bytes).expect("write a file");
        w("apache2", APACHE);
        w("Zodd_file.v1", ODD);
        for skipped in ["x.dpkg-old", "y~", ".hidden", "z.bak", "w.ucf-dist", "bad name"] {
            w(skipped, b"[skipped]\ntype = tcp\nport = 1\n");
        }
        std::fs::create_dir(self.info.join("subdir")).expect("create a subdirectory");
    }

    /// Run the script with `args`, reading `defaults`.
    fn run(&self, defaults: &Path, args: &[&str]) -> Output {
        Command::new(script())
            .args(args)
            .env("MONITOR_COMPILE_REGISTER_DEFAULTS", defaults)
            // The caller's environment is not the defaults file: these are ignored.
            .env("SERVER", "192.0.2.1")
            .env("DIR", "/nonexistent")
            .env("LANG", "en_US.UTF-8")
            .stdin(Stdio::null())
            .output()
            .expect("run monitor-compile-register")
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn registers_the_accepted_files_byte_exactly_in_c_order() {
    let world = World::new();
    world.populate();
    let out = world.run(&world.full_defaults(), &[]);
    assert!(
        out.status.success(),
        "exit {:?}\n{}\nsshd log:\n{}",
        out.status,
        stderr(&out),
        world.sshd.log()
    );
    // C order: 'Z' before 'a'.
    let expected = stream(&[("Zodd_file.v1", ODD), ("apache2", APACHE)]);
    assert_eq!(
        world.received(),
        expected,
        "received:\n{}",
        String::from_utf8_lossy(&world.received())
    );
    let err = stderr(&out);
    for skipped in [
        "x.dpkg-old",
        "y~",
        ".hidden",
        "z.bak",
        "w.ucf-dist",
        "bad name",
        "subdir",
    ] {
        assert!(
            err.contains(&format!("skipping {skipped}:")),
            "{skipped} not reported:\n{err}"
        );
    }
    assert!(
        !err.contains("skipping apache2") && !err.contains("skipping Zodd"),
        "{err}"
    );
    assert!(
        world.sshd.log().contains("Accepted publickey for"),
        "{}",
        world.sshd.log()
    );
}

#[test]
fn an_empty_directory_registers_an_empty_set_and_options_override_the_defaults() {
    let world = World::new();
    // Defaults that would fail: another port, a missing key, another directory.
    let defaults = world.defaults(&format!(
        "SSH_PORT={}\nKEY=/nonexistent/key\nDIR=/nonexistent\n",
        free_port()
    ));
    let port = world.sshd.port.to_string();
    let (key, dir, known_hosts) = (
        world.key.display().to_string(),
        world.info.display().to_string(),
        world.known_hosts.display().to_string(),
    );
    let out = world.run(
        &defaults,
        &[
            "--server",
            "127.0.0.1",
            "--user",
            &world.sshd.user,
            "--port",
            &port,
            "--key",
            &key,
            "--dir",
            &dir,
            "--known-hosts",
            &known_hosts,
        ],
    );
    assert!(out.status.success(), "exit {:?}\n{}", out.status, stderr(&out));
    assert_eq!(world.received(), b"monitoring-info-registration 1\nend\n");
}

#[test]
fn without_a_server_nothing_is_sent_and_the_exit_status_is_0() {
    let world = World::new();
    world.populate();
    // Everything but SERVER (the lone machine: Joe's laptop).
    let defaults = world.defaults(&format!(
        "SSH_USER={}\nSSH_PORT={}\nKEY='{}'\nDIR='{}'\n",
        world.sshd.user,
        world.sshd.port,
        world.key.display(),
        world.info.display()
    ));
    let out = world.run(&defaults, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no monitoring server configured: nothing registered"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
    assert!(!world.received_path().exists(), "something was registered");
    assert!(!world.sshd.log().contains("Accepted publickey"), "{}", world.sshd.log());
    // A defaults file named in the environment must exist: a usage error.
    let out = Command::new(script())
        .env("MONITOR_COMPILE_REGISTER_DEFAULTS", world.tmp.path().join("missing"))
        .output()
        .expect("run the script");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn dry_run_prints_the_stream_and_sends_nothing() {
    let world = World::new();
    world.populate();
    let defaults = world.full_defaults();
    let out = world.run(&defaults, &["--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, stream(&[("Zodd_file.v1", ODD), ("apache2", APACHE)]));
    assert!(!world.received_path().exists(), "--dry-run registered");
    // Nor does it need a server.
    let out = world.run(
        &world.defaults(&format!("DIR='{}'\n", world.info.display())),
        &["--dry-run"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, stream(&[("Zodd_file.v1", ODD), ("apache2", APACHE)]));
}

#[test]
fn an_unreadable_file_fails_naming_it_and_registers_nothing() {
    let world = World::new();
    world.populate();
    // A regular file that cannot be read, even by root: /proc/self/mem at offset 0.
    std::os::unix::fs::symlink("/proc/self/mem", world.info.join("mem")).expect("symlink");
    let out = world.run(&world.full_defaults(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("cannot read {}", world.info.join("mem").display())),
        "{}",
        stderr(&out)
    );
    assert!(!world.received_path().exists(), "something was registered");
}

#[test]
fn the_servers_answer_and_exit_status_pass_through() {
    let world = World::new();
    world.populate();
    world.authorize("; echo registered 2 files; exit 3");
    let out = world.run(&world.full_defaults(), &[]);
    assert_eq!(out.status.code(), Some(3), "{}\n{}", stderr(&out), world.sshd.log());
    assert_eq!(out.stdout, b"registered 2 files\n");
    assert_eq!(world.received(), stream(&[("Zodd_file.v1", ODD), ("apache2", APACHE)]));

    // A key the server refuses: ssh's 255, nothing registered.
    std::fs::remove_file(world.received_path()).expect("remove received");
    world.sshd.set_authorized_keys("");
    let out = world.run(&world.full_defaults(), &[]);
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    assert!(!world.received_path().exists());

    // KNOWN_HOSTS is the only trusted host key: another key there, and ssh refuses the
    // server before any login.
    world.authorize("");
    let (_, other_host) = keygen(world.tmp.path(), "other-host");
    let other_host: Vec<&str> = other_host.split_whitespace().take(2).collect();
    std::fs::write(
        &world.known_hosts,
        format!("[127.0.0.1]:{} {}\n", world.sshd.port, other_host.join(" ")),
    )
    .expect("write known_hosts");
    let out = world.run(&world.full_defaults(), &[]);
    assert_eq!(out.status.code(), Some(255), "{}", stderr(&out));
    assert!(stderr(&out).contains("IDENTIFICATION HAS CHANGED"), "{}", stderr(&out));
    assert!(!world.received_path().exists());
}
