//! A throw-away OpenLDAP server for the LDAP users source tests.
//!
//! [`Slapd::start`] writes an old-style `slapd.conf` into a directory, loads the data
//! offline with `slapadd`, and runs `slapd` in the foreground as a child process that
//! listens on a Unix socket only (`ldapi://`), never on the network. Dropping the
//! [`Slapd`] stops it.
//!
//! The server has:
//! - the suffix [`SUFFIX`], whose entry is added when the LDIF does not begin with it;
//! - the root DN [`ROOT_DN`] with the password [`ROOT_PW`] (simple bind);
//! - SASL EXTERNAL over the socket mapped to the root DN for the local root user
//!   (`authz-regexp` of `gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth`);
//! - the core, cosine, nis and inetOrgPerson schemas, and a test schema with the
//!   `jabberID` attribute (auxiliary class `jabberUser`), which no schema of Debian's
//!   `slapd` defines;
//! - OpenLDAP's default access: everyone, anonymous included, may read everything.
//!
//! Tests that need it fail (never skip) when `slapd` is missing: install `slapd` and
//! `ldap-utils` (as CI does).

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The suffix of the test directory.
pub const SUFFIX: &str = "dc=example,dc=org";
/// The root DN, which may bind with [`ROOT_PW`] or by SASL EXTERNAL as local root.
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
/// The root DN's password.
pub const ROOT_PW: &str = "harness-root-secret";

const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";
const SCHEMA_DIR: &str = "/etc/ldap/schema";
const READY_WITHIN: Duration = Duration::from_secs(20);

/// An attribute and an auxiliary class for XMPP addresses, under OpenLDAP's
/// experimental OID arc (1.3.6.1.4.1.4203.666), for tests only.
const JABBER_SCHEMA: &str = r#"attributetype ( 1.3.6.1.4.1.4203.666.11.900.1 NAME 'jabberID'
  DESC 'XMPP address (test schema)'
  EQUALITY caseIgnoreIA5Match
  SUBSTR caseIgnoreIA5SubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{256} )

objectclass ( 1.3.6.1.4.1.4203.666.11.900.2 NAME 'jabberUser'
  DESC 'An entry with an XMPP address (test schema)'
  SUP top AUXILIARY
  MAY jabberID )
"#;

/// A running test `slapd`.
#[derive(Debug)]
pub struct Slapd {
    dir: PathBuf,
    child: Option<Child>,
    url: String,
    /// `ldap://127.0.0.1:PORT/`, when started with [`Slapd::start_on_loopback`].
    pub ldap_port: Option<u16>,
    /// `ldaps://127.0.0.1:PORT/`, when started with a certificate.
    pub ldaps_port: Option<u16>,
    /// Every URL it listens on (`-h`).
    listen: String,
}

impl Slapd {
    /// Configure a server in `dir` (which must exist), load `ldif` into it offline and
    /// start it. Panics, with slapd's own output, when any step fails.
    pub fn start(dir: &Path, ldif: &str) -> Slapd {
        Slapd::start_with(dir, ldif, None, None)
    }

    /// [`Slapd::start`], also listening on `ldap://127.0.0.1:PORT/` and, with `tls` (a
    /// certificate and key), on `ldaps://127.0.0.1:PORT/`: for the checks that reach a
    /// directory over the network.
    pub fn start_on_loopback(dir: &Path, ldif: &str, tls: Option<&crate::nginx::CertKey>) -> Slapd {
        let ldap = crate::listeners::free_port();
        let ldaps = tls.map(|_| crate::listeners::free_port());
        let mut s = Slapd::start_with(dir, ldif, Some(ldap), ldaps.zip(tls));
        s.ldap_port = Some(ldap);
        s.ldaps_port = ldaps;
        s
    }

    fn start_with(dir: &Path, ldif: &str, ldap: Option<u16>, ldaps: Option<(u16, &crate::nginx::CertKey)>) -> Slapd {
        for bin in [SLAPD, SLAPADD] {
            assert!(
                Path::new(bin).exists(),
                "{bin} is missing: install the slapd and ldap-utils packages (as CI does)"
            );
        }
        let dir = dir.to_path_buf();
        let db = dir.join("db");
        std::fs::create_dir_all(&db).expect("create the slapd database directory");
        let schema = dir.join("jabber.schema");
        std::fs::write(&schema, JABBER_SCHEMA).expect("write the test schema");
        let conf = dir.join("slapd.conf");
        let mut text = config(&schema, &db);
        if let Some((_, tls)) = ldaps {
            // Global directives: before the first `database`.
            text = format!(
                "TLSCertificateFile {}\nTLSCertificateKeyFile {}\n{text}",
                tls.cert.display(),
                tls.key.display()
            );
        }
        std::fs::write(&conf, text).expect("write slapd.conf");

        let data = dir.join("data.ldif");
        let ldif = if ldif
            .trim_start()
            .to_ascii_lowercase()
            .starts_with(&format!("dn: {SUFFIX}"))
        {
            ldif.to_string()
        } else {
            format!(
                "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n{}",
                ldif.trim_start()
            )
        };
        std::fs::write(&data, ldif).expect("write data.ldif");
        let out = Command::new(SLAPADD)
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(&data)
            .output()
            .expect("run slapadd");
        assert!(
            out.status.success(),
            "slapadd failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        let url = format!("ldapi://{}", url_encode_path(&dir.join("ldapi")));
        let mut listen = url.clone();
        if let Some(p) = ldap {
            listen.push_str(&format!(" ldap://127.0.0.1:{p}/"));
        }
        if let Some((p, _)) = ldaps {
            listen.push_str(&format!(" ldaps://127.0.0.1:{p}/"));
        }
        let mut slapd = Slapd {
            dir,
            child: None,
            url,
            ldap_port: None,
            ldaps_port: None,
            listen,
        };
        slapd.launch();
        slapd
    }

    /// Start the server again after [`Slapd::stop`], on the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// The `ldapi://` URL of the server's socket.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("ldapi")
    }

    /// True while the server runs.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Stop the server (SIGTERM, then SIGKILL after 5 s) and wait for it. Harmless when
    /// it is not running.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
        }
        let _ = child.wait();
        // slapd removes its socket on a clean exit; after SIGKILL the file stays.
        let _ = std::fs::remove_file(self.socket());
    }

    fn launch(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let log = self.dir.join("slapd.log");
        let log_file = std::fs::File::create(&log).expect("create slapd.log");
        let err_file = log_file.try_clone().expect("clone slapd.log");
        // `-d 0` keeps slapd in the foreground (it does not detach) with no debug output.
        let child = Command::new(SLAPD)
            .arg("-d")
            .arg("0")
            .arg("-f")
            .arg(self.dir.join("slapd.conf"))
            .arg("-h")
            .arg(&self.listen)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .expect("start slapd");
        self.child = Some(child);
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                panic!("slapd exited ({status}) before it answered:\n{}", read_log(&log));
            }
            if UnixStream::connect(self.socket()).is_ok() {
                return;
            }
            if Instant::now() >= deadline {
                self.stop();
                panic!(
                    "slapd did not answer on {} within {READY_WITHIN:?}:\n{}",
                    self.url,
                    read_log(&log)
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn config(jabber_schema: &Path, db: &Path) -> String {
    // slapd.conf's parser takes `\` as an escape, so the `+` of the peercred DN is
    // matched with `[+]`.
    format!(
        "include {SCHEMA_DIR}/core.schema
include {SCHEMA_DIR}/cosine.schema
include {SCHEMA_DIR}/nis.schema
include {SCHEMA_DIR}/inetorgperson.schema
include {schema}
modulepath /usr/lib/ldap
moduleload back_mdb
authz-regexp \"gidNumber=0[+]uidNumber=0,cn=peercred,cn=external,cn=auth\" \"{ROOT_DN}\"
database mdb
suffix \"{SUFFIX}\"
rootdn \"{ROOT_DN}\"
rootpw {ROOT_PW}
directory {db}
",
        schema = jabber_schema.display(),
        db = db.display(),
    )
}

fn read_log(path: &Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// Percent-encode a socket path for an `ldapi://` URL: everything but unreserved
/// characters, `/` included.
pub fn url_encode_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
