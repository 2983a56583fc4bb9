//! A real Icinga 2 daemon for tests: an offline PKI made with icinga2's own `pki`
//! commands, and `icinga2 daemon` run in the foreground on a temporary directory with its
//! REST API on a free port of 127.0.0.1.
//!
//! Tests that need icinga2 fail (never skip) when it is missing: CI installs `icinga2`
//! and `monitoring-plugins`. `$ICINGA2_BIN` names another binary.
//!
//! This file uses only `std`, `nix` and `monitor_runtime`, so that `monitor-runtime`'s
//! own integration tests include it too (`#[path]`), without depending on this crate.
//!
//! Use:
//!
//! ```no_run
//! # use monitor_integration_tests::icinga::Icinga;
//! let dir = tempfile::tempdir().unwrap();
//! let setup = Icinga::prepare(dir.path(), "master");
//! // … write zones.conf and zones.d/master/*.conf under dir …
//! let zones_conf = dir.path().join("zones.conf");
//! let main = setup.write_main_conf(&format!("include \"{}\"\n", zones_conf.display()));
//! let zones_d = dir.path().join("zones.d");
//! let icinga = Icinga::start(setup, &main, &zones_d);
//! let start = icinga.client().program_start().unwrap();
//! ```

use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use monitor_runtime::icinga2::api::{ApiClient, ApiConfig};
use monitor_runtime::icinga2::{DEFAULT_PLUGIN_DIR, dsl_literal, dsl_string, run_as_defines};

/// The node name of the test daemon. Its certificate is issued to this name (icinga2
/// puts the CN in the certificate as a DNS name) and the client connects to
/// `https://localhost:PORT`: the client verifies the host name of the URL, and cannot
/// connect to 127.0.0.1 while verifying another name.
pub const NODE_NAME: &str = "localhost";

/// The `ApiUser` of the test daemon.
pub const API_USER: &str = "mc-test";

/// How long the daemon may take to answer its API, or to show a reload.
pub const STARTUP_BOUND: Duration = Duration::from_secs(60);

/// The icinga2 binary: `$ICINGA2_BIN` or Debian's `/usr/sbin/icinga2`.
pub fn icinga2_bin() -> PathBuf {
    let bin = std::env::var_os("ICINGA2_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(monitor_runtime::icinga2::DEFAULT_ICINGA2));
    assert!(
        bin.exists(),
        "{} is missing: install icinga2 and monitoring-plugins (as .ci/run does)",
        bin.display()
    );
    bin
}

/// `-DRunAsUser=… -DRunAsGroup=…` naming this process's user, so that icinga2 stays
/// this user (run as root it would switch to `nagios`; run as anyone else, fail).
fn stay_as_we_are() -> [String; 2] {
    run_as_defines(None).expect("this process's user and group have names")
}

/// Run `icinga2 ARGS`, failing the test with its output when it fails.
fn icinga2(args: &[&str]) {
    let out = Command::new(icinga2_bin())
        .args(args)
        .args(stay_as_we_are())
        .stdin(Stdio::null())
        .output()
        .expect("run icinga2");
    assert!(
        out.status.success(),
        "icinga2 {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and one node certificate, made offline by icinga2.
#[derive(Debug, Clone)]
pub struct Pki {
    pub dir: PathBuf,
    /// The CA certificate (`DIR/data/ca/ca.crt`; its key is beside it).
    pub ca_crt: PathBuf,
    /// The node's certificate, signed by the CA, for CN (and DNS name) `cn`.
    pub node_crt: PathBuf,
    pub node_key: PathBuf,
}

/// Make a CA in `dir` and a certificate for `cn` signed by it, with `icinga2 pki
/// new-ca` (which writes into `DataDir/ca`: here `-DDataDir=DIR/data`), `icinga2 pki
/// new-cert --cn CN --key K --csr C` and `icinga2 pki sign-csr --csr C --cert CRT`.
pub fn make_pki(dir: &Path, cn: &str) -> Pki {
    std::fs::create_dir_all(dir).expect("create the PKI directory");
    let data = dir.join("data");
    let data_define = format!("-DDataDir={}", data.display());
    let file = |ext: &str| dir.join(format!("{cn}.{ext}"));
    let (key, csr, crt) = (file("key"), file("csr"), file("crt"));
    let s = |p: &Path| p.display().to_string();
    icinga2(&["pki", "new-ca", &data_define]);
    icinga2(&[
        "pki",
        "new-cert",
        &data_define,
        "--cn",
        cn,
        "--key",
        &s(&key),
        "--csr",
        &s(&csr),
    ]);
    icinga2(&["pki", "sign-csr", &data_define, "--csr", &s(&csr), "--cert", &s(&crt)]);
    Pki {
        dir: dir.to_path_buf(),
        ca_crt: data.join("ca/ca.crt"),
        node_crt: crt,
        node_key: key,
    }
}

/// A random password: 32 hex digits from the kernel's random source.
fn random_password() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A free port of 127.0.0.1 (free when asked: another process could take it before the
/// daemon binds it, which would show as a failed start).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("the port").port()
}

/// A daemon's directory before the start: PKI, certificates in place, port and
/// credentials chosen. [`IcingaSetup::main_conf_prefix`] is the beginning of its main
/// config.
#[derive(Debug, Clone)]
pub struct IcingaSetup {
    /// The daemon's directory: `pki/`, `var/{lib,cache,log,run}`, `api-password`.
    pub dir: PathBuf,
    pub zone: String,
    pub api_port: u16,
    /// How to reach its API as [`API_USER`].
    pub api: ApiConfig,
    pub pki: Pki,
    password: String,
}

/// A running `icinga2 daemon`, stopped (and reaped) on drop.
#[derive(Debug)]
pub struct Icinga {
    pub dir: PathBuf,
    pub api_port: u16,
    pub api: ApiConfig,
    child: Child,
    log: PathBuf,
}

impl IcingaSetup {
    /// The beginning of a main config, to which the caller appends its
    /// `include "<live>/zones.conf"` (an Endpoint [`NODE_NAME`] in zone `zone`): the
    /// constants `NodeName`, `ZoneName`, `PluginDir`, `PluginContribDir` and
    /// `ManubulonPluginDir`; the `ApiListener` on 127.0.0.1 (certificates from
    /// `DataDir/certs`, where [`Icinga::prepare`] put them; `accept_config = false`,
    /// `accept_commands = true`); the `ApiUser` [`API_USER`] with every permission; the
    /// `CheckerComponent`, so that checks run; and the ITL with the plugin commands,
    /// as the validator's main config includes them. It holds the password: write it
    /// with [`IcingaSetup::write_main_conf`], which makes the file 0600.
    pub fn main_conf_prefix(&self) -> String {
        let plugins = dsl_string(DEFAULT_PLUGIN_DIR);
        format!(
            "const NodeName = {node}\nconst ZoneName = {zone}\nconst PluginDir = {plugins}\n\
             const PluginContribDir = {plugins}\nconst ManubulonPluginDir = {plugins}\n\n\
             object ApiListener \"api\" {{\n  bind_host = \"127.0.0.1\"\n  bind_port = {port}\n  \
             accept_config = false\n  accept_commands = true\n}}\n\n\
             object ApiUser {user} {{\n  password = {password}\n  permissions = [ \"*\" ]\n}}\n\n\
             object CheckerComponent \"checker\" {{ }}\n\n\
             include <itl>\ninclude <plugins>\ninclude <plugins-contrib>\n\n",
            node = dsl_literal(NODE_NAME),
            zone = dsl_literal(&self.zone),
            port = self.api_port,
            user = dsl_literal(API_USER),
            password = dsl_literal(&self.password),
        )
    }

    /// Write `DIR/icinga2.conf` (mode 0600): [`IcingaSetup::main_conf_prefix`], then
    /// `rest`; returns its path.
    pub fn write_main_conf(&self, rest: &str) -> PathBuf {
        let main = self.dir.join("icinga2.conf");
        write_private(&main, &format!("{}{rest}", self.main_conf_prefix()));
        main
    }
}

fn write_private(path: &Path, text: &str) {
    use std::io::Write;
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

impl Icinga {
    /// Prepare `dir` for a daemon of zone `zone`: a PKI for [`NODE_NAME`] in `dir/pki`,
    /// its files copied where icinga2 (2.8 and later) looks for them
    /// (`DataDir/certs/NODE.crt`, `NODE.key`, `ca.crt`), a free port, and a random
    /// password in `dir/api-password` (0600).
    pub fn prepare(dir: &Path, zone: &str) -> IcingaSetup {
        let dir = dir.to_path_buf();
        let pki = make_pki(&dir.join("pki"), NODE_NAME);
        for v in ["lib/certs", "cache", "log", "run"] {
            std::fs::create_dir_all(dir.join("var").join(v)).expect("create the daemon's directories");
        }
        let certs = dir.join("var/lib/certs");
        for (from, to) in [
            (&pki.node_crt, format!("{NODE_NAME}.crt")),
            (&pki.node_key, format!("{NODE_NAME}.key")),
            (&pki.ca_crt, "ca.crt".to_string()),
        ] {
            std::fs::copy(from, certs.join(to)).expect("copy a PKI file");
        }
        let password = random_password();
        let password_file = dir.join("api-password");
        write_private(&password_file, &format!("{password}\n"));
        let api_port = free_port();
        IcingaSetup {
            api: ApiConfig {
                url: format!("https://{NODE_NAME}:{api_port}"),
                ca_file: Some(pki.ca_crt.clone()),
                user: API_USER.into(),
                password_file,
                timeout: Duration::from_secs(10),
            },
            dir,
            zone: zone.into(),
            api_port,
            pki,
            password,
        }
    }

    /// Start `icinga2 daemon` in the foreground (no `-d`) on `setup.dir`, with the main
    /// config `main_conf` that the caller wrote (see [`IcingaSetup::main_conf_prefix`])
    /// and `-DZonesDir=zones_dir`; its data, cache, log and run directories are in
    /// `setup.dir/var`, its output goes to `setup.dir/daemon.log`. Returns once its API
    /// answers `program_start` (within [`STARTUP_BOUND`]); fails the test with the
    /// daemon's output when it exits or never answers.
    pub fn start(setup: IcingaSetup, main_conf: &Path, zones_dir: &Path) -> Icinga {
        let var = setup.dir.join("var");
        let log = setup.dir.join("daemon.log");
        let out = std::fs::File::create(&log).expect("create the daemon's log");
        let err = out.try_clone().expect("clone the log's handle");
        let child = Command::new(icinga2_bin())
            .arg("daemon")
            .arg("-c")
            .arg(main_conf)
            .arg(format!("-DZonesDir={}", zones_dir.display()))
            .arg(format!("-DDataDir={}", var.join("lib").display()))
            .arg(format!("-DCacheDir={}", var.join("cache").display()))
            .arg(format!("-DLogDir={}", var.join("log").display()))
            .arg(format!("-DInitRunDir={}", var.join("run").display()))
            .args(stay_as_we_are())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // A group of its own: icinga2 forks a worker and a process spawner, which
            // the drop can then kill with it.
            .process_group(0)
            .spawn()
            .expect("start icinga2 daemon");
        let mut icinga = Icinga {
            dir: setup.dir,
            api_port: setup.api_port,
            api: setup.api,
            child,
            log,
        };
        icinga.wait_for_api();
        icinga
    }

    fn wait_for_api(&mut self) {
        let client = self.client();
        let end = Instant::now() + STARTUP_BOUND;
        loop {
            match client.program_start() {
                Ok(_) => return,
                Err(e) => {
                    if let Some(status) = self.child.try_wait().expect("poll the daemon") {
                        panic!(
                            "icinga2 daemon exited ({status}) before its API answered:\n{}",
                            self.log()
                        );
                    }
                    if Instant::now() >= end {
                        panic!(
                            "icinga2's API did not answer within {} s ({e}):\n{}",
                            STARTUP_BOUND.as_secs(),
                            self.log()
                        );
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A client of its API as [`API_USER`].
    pub fn client(&self) -> ApiClient {
        ApiClient::new(&self.api).expect("an API client for the test daemon")
    }

    /// The pid of the daemon we started (icinga2's umbrella process).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where icinga2 writes its pid (`InitRunDir/icinga2.pid`).
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("var/run/icinga2.pid")
    }

    /// What the daemon printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Send SIGHUP to the pid in [`Icinga::pid_file`], through
    /// [`monitor_runtime::icinga2::reload::reload_by_pid_file`].
    pub fn reload(&self) {
        monitor_runtime::icinga2::reload::reload_by_pid_file(&self.pid_file(), &icinga2_bin())
            .unwrap_or_else(|e| panic!("reload: {e}\n{}", self.log()));
    }

    /// Poll `program_start` until it is later than `before` (within [`STARTUP_BOUND`]);
    /// returns it.
    pub fn wait_for_program_start_after(&self, before: f64) -> f64 {
        let client = self.client();
        let end = Instant::now() + STARTUP_BOUND;
        loop {
            if let Ok(start) = client.program_start()
                && start > before
            {
                return start;
            }
            assert!(
                Instant::now() < end,
                "program_start did not move past {before} within {} s:\n{}",
                STARTUP_BOUND.as_secs(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Icinga {
    /// SIGTERM, which icinga2 answers by stopping its workers and exiting; SIGKILL to
    /// its whole process group when it has not exited within 30 s; then reap it.
    fn drop(&mut self) {
        crate::stop_child(&mut self.child, Duration::from_secs(30));
    }
}
