//! Hosts that register their own monitoring, end to end: the client script
//! (`cli/packaging/monitoring-info/monitor-compile-register`) sends `/etc/monitoring-info`
//! over SSH to a real sshd on 127.0.0.1, whose `authorized_keys` line (made by
//! `monitor-compile monitoring-info authorize`) forces `monitoring-info receive` for that
//! host alone; the compile turns the registrations into services checked by the real
//! `nagios -v`; a site override disables one; a host that never registers has nothing;
//! hostile declarations reach no object and no shell; passwords stay out of the objects;
//! and the daemon notices new registrations and overrides by itself.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use monitor_integration_tests::sshd::{Sshd, current_user, keygen};
use monitor_integration_tests::{nagios_bin, output_dir, samples};

const BIN: &str = env!("CARGO_BIN_EXE_monitor-compile");

fn client_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/monitoring-info/monitor-compile-register")
}

/// A site: the server's state and overrides, an sshd, and clients with their own keys.
struct Site {
    dir: tempfile::TempDir,
    sshd: Option<Sshd>,
    daemon: Option<Child>,
}

impl Site {
    fn new() -> Site {
        let dir = output_dir();
        for sub in ["state", "overrides", "sshd", "clients"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        Site {
            dir,
            sshd: None,
            daemon: None,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Give each host a key, authorized for that host only, and start sshd.
    fn start_sshd(&mut self, hosts: &[&str]) {
        let mut lines = String::new();
        for h in hosts {
            let cdir = self.path(&format!("clients/{h}"));
            std::fs::create_dir_all(cdir.join("info")).unwrap();
            let (_key, public) = keygen(&cdir, "id_ed25519");
            std::fs::write(cdir.join("id_ed25519.pub"), format!("{public}\n")).unwrap();
            let out = Command::new(BIN)
                .args(["monitoring-info", "authorize", "--state-dir"])
                .arg(self.path("state"))
                .args(["--host", h, "--key"])
                .arg(cdir.join("id_ed25519.pub"))
                .arg("--program")
                .arg(BIN)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let line = String::from_utf8(out.stdout).unwrap();
            assert!(line.starts_with("restrict,command=\""), "{line}");
            assert!(line.contains(&format!("--host {h}\"")), "{line}");
            lines.push_str(&line);
        }
        let sshd = Sshd::start(&self.path("sshd"), &lines);
        let known = sshd.known_hosts_line();
        for h in hosts {
            let cdir = self.path(&format!("clients/{h}"));
            std::fs::write(cdir.join("known_hosts"), format!("{known}\n")).unwrap();
            std::fs::write(
                cdir.join("defaults"),
                format!(
                    "SERVER=127.0.0.1\nSSH_USER={}\nSSH_PORT={}\nKEY={}\nDIR={}\nKNOWN_HOSTS={}\n",
                    current_user(),
                    sshd.port,
                    cdir.join("id_ed25519").display(),
                    cdir.join("info").display(),
                    cdir.join("known_hosts").display()
                ),
            )
            .unwrap();
        }
        self.sshd = Some(sshd);
    }

    /// Write a file of a client's `/etc/monitoring-info`.
    fn declare(&self, host: &str, file: &str, text: &str) {
        std::fs::write(self.path(&format!("clients/{host}/info/{file}")), text).unwrap();
    }

    /// Run the client script on `host`: (exit code, stdout, stderr).
    fn register(&self, host: &str) -> (i32, String, String) {
        let out = Command::new("sh")
            .arg(client_script())
            .env(
                "MONITOR_COMPILE_REGISTER_DEFAULTS",
                self.path(&format!("clients/{host}/defaults")),
            )
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn stored(&self, host: &str) -> Option<String> {
        std::fs::read_to_string(self.path(&format!("state/monitoring-info/registered/{host}.conf"))).ok()
    }

    fn config(&self, output: &Path) -> PathBuf {
        let cfg = format!(
            "profiles = [\"{samples}\"]\nusers = \"{samples}/users.toml\"\noutput = \"{out}\"\nstate_dir = \"{state}\"\n\
             [monitoring_info]\noverrides = \"{over}\"\ncontact_groups = [\"www\"]\n",
            samples = samples().display(),
            out = output.display(),
            state = self.path("state").display(),
            over = self.path("overrides").display(),
        );
        let f = self.path("monitor-compile.toml");
        std::fs::write(&f, cfg).unwrap();
        f
    }

    /// `monitor-compile --once --validate --format json`: (exit code, report, output text).
    fn compile(&self, output: &Path) -> (i32, serde_json::Value, String) {
        let out = Command::new(BIN)
            .arg("--once")
            .arg("--validate")
            .args(["--format", "json", "--config"])
            .arg(self.config(output))
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), report, text_of(output))
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            monitor_integration_tests::stop_child(&mut c, Duration::from_secs(5));
        }
    }
}

fn text_of(dir: &Path) -> String {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect()
}

/// The service descriptions on `host` in the configuration text.
fn services_of(text: &str, host: &str) -> Vec<String> {
    let mut out = Vec::new();
    for block in text.split("define service {").skip(1) {
        let block = block.split('}').next().unwrap_or_default();
        let get = |k: &str| {
            block
                .lines()
                .find_map(|l| l.trim().strip_prefix(k).map(|v| v.trim().to_string()))
                .unwrap_or_default()
        };
        if get("host_name ") == host {
            out.push(get("service_description "));
        }
    }
    out.sort();
    out
}

/// A registration stream, as the client script sends it.
fn stream(files: &[(&str, &str)]) -> String {
    let mut s = String::from("monitoring-info-registration 1\n");
    for (name, text) in files {
        s.push_str(&format!("file {name} {}\n{text}\n", text.len()));
    }
    s.push_str("end\n");
    s
}

const WEB3: &str = "web3.example.org";
const WEB4: &str = "web4.example.org";

#[test]
fn hosts_register_over_ssh_overrides_opt_out_and_a_lone_host_has_nothing() {
    let mut site = Site::new();
    site.start_sshd(&[WEB3, WEB4]);
    site.declare(WEB3, "apache2", "[apache2]\ntype = http\n");
    site.declare(WEB3, "openssh-server", "[ssh]\ntype = ssh\n");
    site.declare(
        WEB3,
        "dovecot",
        "[imap]\ntype = imap\nssl = yes\nusername = probe\npassword = pw'$(touch /tmp/mc-pwned)\nmailflowid = main\n\
         [broken]\ntype = tcp\n",
    );
    site.declare(WEB4, "apache2", "[apache2]\ntype = tcp\nport = 8080\n");

    // 1. web3 registers: the server tells it what it will monitor, and what it will not.
    let (code, stdout, stderr) = site.register(WEB3);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("web3.example.org: registered 3 file(s), 3 service(s): apache2, imap, ssh"),
        "{stdout}"
    );
    assert!(stdout.contains("[broken] port: missing"), "{stdout}");
    let stored = site.stored(WEB3).expect("web3's registration is stored");
    assert!(
        stored.starts_with("# Generated by monitor-compile from the registration of web3.example.org: do not edit.")
    );

    // 2. web4 registers too, and cannot touch web3's declarations, whatever it asks for.
    let (code, stdout, _) = site.register(WEB4);
    assert_eq!(code, 0, "{stdout}");
    let ssh = site.sshd.as_ref().unwrap();
    let cdir = site.path(&format!("clients/{WEB4}"));
    let forged = ssh
        .ssh_command(&cdir.join("id_ed25519"), &cdir.join("known_hosts"))
        .arg(format!(
            "monitoring-info receive --state-dir {} --host {WEB3}",
            site.path("state").display()
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(stream(&[("evil", "[apache2]\ntype = ssh\n")]).as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(String::from_utf8_lossy(&forged.stdout).contains("web4.example.org: registered 1 file(s)"));
    assert_eq!(
        site.stored(WEB3).as_deref(),
        Some(stored.as_str()),
        "web3's registration is untouched"
    );
    assert!(
        site.stored(WEB4).unwrap().contains("#@file evil\n"),
        "what web4 sent is web4's"
    );
    // Put web4's own declarations back.
    assert_eq!(site.register(WEB4).0, 0);

    // 3. The compile: the registered hosts' services, checked by nagios -v as the nagios user.
    let out = output_dir();
    let (code, report, text) = site.compile(&out.path().join("cfg"));
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        services_of(&text, WEB3),
        ["apache2", "imap", "imap certificate", "ssh"],
        "{report:#}"
    );
    assert_eq!(services_of(&text, WEB4), ["apache2"]);
    assert!(text.contains("check_command                   mc-info-tcp!8080"));
    let warnings = report["report"]["warnings"].to_string();
    assert!(
        warnings.contains("dovecot line 7: [broken] port: missing: type tcp needs a port"),
        "{warnings}"
    );
    // The password is in a file Nagios's group may read, and nowhere else.
    let secret = site.path(&format!("state/monitoring-info/secrets/{WEB3}/696d6170"));
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "pw'$(touch /tmp/mc-pwned)\n");
    assert_eq!(std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o640);
    // As production runs: the checks run as the nagios user, who can read it (and only
    // through the group: the file is not the nagios user's).
    let as_nagios = Command::new("runuser")
        .args(["-u", "nagios", "--", "cat"])
        .arg(&secret)
        .output()
        .unwrap();
    assert!(
        as_nagios.status.success(),
        "the nagios user cannot read the password file: {}",
        String::from_utf8_lossy(&as_nagios.stderr)
    );
    assert!(text.contains(&format!("!{}!", std::fs::canonicalize(&secret).unwrap().display())));
    for place in [text.as_str(), &report.to_string(), &ssh.log()] {
        assert!(!place.contains("touch /tmp/mc-pwned"), "the password leaked");
    }
    let profile = std::fs::read_to_string(site.path(&format!("state/monitoring-info/profiles/{WEB3}.xml"))).unwrap();
    assert!(!profile.contains("mc-pwned"), "{profile}");
    assert!(!Path::new("/tmp/mc-pwned").exists());

    // 4. The site opts web3 out of apache2 (Brian's use case), and changes ssh's port.
    std::fs::create_dir_all(site.path(&format!("overrides/{WEB3}"))).unwrap();
    std::fs::write(
        site.path(&format!("overrides/{WEB3}/local")),
        "[apache2]\ndisabled = yes\n[ssh]\nport = 2222\n",
    )
    .unwrap();
    let (code, report, text) = site.compile(&out.path().join("cfg"));
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(services_of(&text, WEB3), ["imap", "imap certificate", "ssh"]);
    assert!(text.contains("check_command                   mc-info-ssh!2222"));
    assert_eq!(services_of(&text, WEB4), ["apache2"], "web4's apache2 is web4's");

    // 5. A host that never registers has nothing (Joe's laptop), and a host that
    //    registers an empty directory declares nothing any more.
    assert!(!text.contains("web5.example.org"));
    std::fs::remove_file(site.path(&format!("clients/{WEB4}/info/apache2"))).unwrap();
    let (code, stdout, _) = site.register(WEB4);
    assert_eq!(code, 0);
    assert!(stdout.contains("registration removed"), "{stdout}");
    let cfg = out.path().join("cfg");
    let run = Command::new(BIN)
        .args(["--once", "--allow-removals", "--format", "json", "--config"])
        .arg(site.config(&cfg))
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let text = text_of(&cfg);
    assert!(!text.contains(WEB4), "web4 is gone");
    assert_eq!(services_of(&text, WEB3), ["imap", "imap certificate", "ssh"]);
}

#[test]
fn hostile_registrations_reach_no_object_and_no_shell() {
    let site = Site::new();
    let hostile = "[web]\ntype = http\nhostname = x'; touch /tmp/mc-hostile; '\n\
                   [x\ndefine host {\nhost_name evil\n}\n\
                   [mail]\ntype = smtp\nemail = a@b.org'$(touch /tmp/mc-hostile)\n\
                   [m2]\ntype = mailflow\nid = $USER3$\nseconds = 5\n\
                   [ok]\ntype = ssh\n\
                   [evil;name]\ntype = ssh\n\
                   [tab]\ntype = tcp\nport = 1\t\n\
                   [steal]\ntype = imap\nusername = u\npassword_file = /etc/shadow\n";
    let stream = stream(&[("evil", hostile)]);
    let mut child = Command::new(BIN)
        .args(["monitoring-info", "receive", "--state-dir"])
        .arg(site.path("state"))
        .args(["--host", "evil.example.org"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(stream.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        answer.contains("registered 1 file(s), 2 service(s): ok, tab"),
        "{answer}"
    );

    // A host name that is a path is refused before anything is written.
    let bad = Command::new(BIN)
        .args(["monitoring-info", "receive", "--state-dir"])
        .arg(site.path("state"))
        .args(["--host", "../../etc/x.org"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a host name"));

    let out = output_dir();
    let (code, report, text) = site.compile(&out.path().join("cfg"));
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(services_of(&text, "evil.example.org"), ["ok", "tab"]);
    assert!(!text.contains("host_name evil"), "no injected object");
    assert_eq!(
        text.matches("define host {").count(),
        8,
        "the five sample machines, evil, the deploy host and the host template"
    );
    assert!(!text.contains("mc-hostile") && !text.contains("USER3"), "{text}");
    assert!(!Path::new("/tmp/mc-hostile").exists());
    let warnings = report["report"]["warnings"].as_array().unwrap();
    // Four unreadable lines (`[x` and the three after it), and five refused services:
    // among them a host naming a file of the server for its password.
    assert_eq!(warnings.len(), 9, "{warnings:#?}");
    assert!(
        warnings.iter().any(|w| w["message"]
            .as_str()
            .unwrap()
            .contains("[steal] password_file: a registering host may not name a file of the monitoring server")),
        "{warnings:#?}"
    );
    assert!(!text.contains("/etc/shadow"));
}

#[test]
fn the_daemon_notices_registrations_and_overrides() {
    let mut site = Site::new();
    let d = site.dir.path().to_path_buf();
    monitor_integration_tests::write_daemon_nagios_config(&d);
    let cfg = format!(
        "profiles = [\"{samples}\"]\nusers = \"{samples}/users.toml\"\noutput = \"{d}/nagios/generated\"\nstate_dir = \"{d}/state\"\n\
         nagios_config = \"{d}/nagios/nagios.cfg\"\nnagios_bin = \"{bin}\"\ncommand_file = \"{d}/var/nagios.cmd\"\n\
         translators = []\ndebounce_ms = 200\nrescan_seconds = 3600\nsubmit_delay_seconds = 1\n\
         [reload]\nmethod = \"none\"\n\
         [monitoring_info]\noverrides = \"{d}/overrides\"\ncontact_groups = [\"www\"]\n",
        samples = samples().display(),
        d = d.display(),
        bin = nagios_bin().display(),
    );
    std::fs::write(d.join("monitor-compile.toml"), cfg).unwrap();
    let log = std::fs::File::create(d.join("daemon.log")).unwrap();
    site.daemon = Some(
        Command::new(BIN)
            .arg("--config")
            .arg(d.join("monitor-compile.toml"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let live = || text_of(&d.join("nagios/generated"));
    let wait = |what: &str, ok: &dyn Fn(&str) -> bool| {
        let end = Instant::now() + Duration::from_secs(120);
        while Instant::now() < end {
            if ok(&live()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "gave up waiting for {what}\n--- daemon log ---\n{}",
            std::fs::read_to_string(d.join("daemon.log")).unwrap_or_default()
        );
    };
    wait("the first deploy", &|t| {
        t.contains("host_name                       web1.example.org")
    });
    assert!(services_of(&live(), WEB3).is_empty(), "nothing before web3 registers");

    // A registration arrives (the forced command writes it): no signal, the daemon sees it.
    let stream = stream(&[("apache2", "[apache2]\ntype = http\nport = 8080\n")]);
    let mut child = Command::new(BIN)
        .args(["monitoring-info", "receive", "--state-dir"])
        .arg(d.join("state"))
        .args(["--host", WEB3])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(stream.as_bytes()).unwrap();
    }
    assert!(child.wait().unwrap().success());
    // (and the daemon's status service of the component).
    wait("web3's apache2", &|t| {
        services_of(t, WEB3) == ["apache2", "monitoring: monitoring_info"]
    });

    // The site overrides its port.
    std::fs::create_dir_all(d.join(format!("overrides/{WEB3}"))).unwrap();
    std::fs::write(d.join(format!("overrides/{WEB3}/port")), "[apache2]\nport = 8081\n").unwrap();
    wait("the override", &|t| t.contains(&format!("mc-info-http!{WEB3}!8081!")));
}
