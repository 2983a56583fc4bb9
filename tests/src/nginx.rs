//! A real nginx on 127.0.0.1 for the tests of the HTTP profile source: static files from
//! a root directory with `autoindex` and `gzip`, optionally TLS (with a test CA made by
//! the `openssl` CLI), client certificates, basic auth and a throttled `/slow/`.
//!
//! Tests that need nginx fail (never skip) when it is missing: `.ci/run` installs the
//! `nginx` package. The system's nginx service is not used: each [`Nginx`] is its own
//! master process with its own configuration, logs and temporary files in its
//! directory, and runs as root (`user root;`) so that it can read the test's files.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::listeners::free_port;

/// How long nginx may take to accept connections.
const STARTUP_BOUND: Duration = Duration::from_secs(20);

/// The nginx binary: `$NGINX_BIN` or Debian's `/usr/sbin/nginx`.
pub fn nginx_bin() -> PathBuf {
    let bin = std::env::var_os("NGINX_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"));
    assert!(
        bin.exists(),
        "{} is missing: install nginx (apt-get install nginx, as .ci/run does)",
        bin.display()
    );
    bin
}

/// A certificate and its private key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertKey {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8).
    pub key: PathBuf,
}

/// A test CA and what it signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestPki {
    /// The CA certificate (PEM): what clients trust.
    pub ca: PathBuf,
    /// The server's certificate, for `localhost` and `127.0.0.1`.
    pub server: CertKey,
    /// A client certificate (CN `mc-client`), for mutual TLS.
    pub client: CertKey,
}

/// Run `openssl` with `args` in `dir`; panics with its output when it fails.
pub(crate) fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl (install openssl)");
    assert!(
        out.status.success(),
        "openssl {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Make a test CA in `dir` (`ca.pem`, `ca.key`), a server certificate for `localhost`
/// (subject alternative names `DNS:localhost` and `IP:127.0.0.1`) and a client
/// certificate, all P-256 keys, with the `openssl` CLI.
pub fn make_test_pki(dir: &Path) -> TestPki {
    std::fs::create_dir_all(dir).expect("create the PKI directory");
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca_args = vec!["req", "-x509"];
    ca_args.extend(ec);
    ca_args.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "3650",
        "-subj",
        "/CN=monitor-compile test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca_args);
    let issue = |name: &str, cn: &str, ext: &str| -> CertKey {
        let (key, csr, cert, extfile) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(dir.join(&extfile), ext).expect("write the extensions file");
        let subj = format!("/CN={cn}");
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &cert,
                "-days",
                "3650",
                "-extfile",
                &extfile,
            ],
        );
        CertKey {
            cert: dir.join(cert),
            key: dir.join(key),
        }
    };
    let server = issue(
        "server",
        "localhost",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    );
    let client = issue(
        "client",
        "mc-client",
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    );
    TestPki {
        ca: dir.join("ca.pem"),
        server,
        client,
    }
}

/// What the server does beyond serving its root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NginxOptions {
    /// Listen with TLS, with this certificate and key.
    pub tls: Option<CertKey>,
    /// Require a client certificate signed by this CA (with `tls`).
    pub client_ca: Option<PathBuf>,
    /// HTTP basic auth: (user, password), hashed into an htpasswd file with
    /// `openssl passwd -apr1`.
    pub basic_auth: Option<(String, String)>,
    /// Serve `/slow/` at 10 bytes a second (`limit_rate 10;`).
    pub slow: bool,
    /// More directives for the `server` block, such as `location /x/ { return 500; }`.
    pub extra: String,
}

/// A running nginx, stopped (and reaped) on drop.
#[derive(Debug)]
pub struct Nginx {
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    /// The document root: `DIR/www` (made by [`Nginx::start`]).
    pub root: PathBuf,
    /// Its directory: configuration, logs, pid file, temporary files.
    pub dir: PathBuf,
    tls: bool,
    child: Child,
}

impl Nginx {
    /// Start nginx in `dir` (made if missing) on a free port, serving `dir/www`.
    pub fn start(dir: &Path, opts: NginxOptions) -> Nginx {
        let mut last = String::new();
        for _ in 0..5 {
            match Nginx::try_start(dir, &opts, free_port()) {
                Ok(n) => return n,
                Err(e) => last = e,
            }
        }
        panic!("nginx did not start: {last}");
    }

    /// Start nginx in `dir` on `port` (such as the port of one stopped before, to
    /// restart it).
    pub fn start_on_port(dir: &Path, opts: NginxOptions, port: u16) -> Nginx {
        Nginx::try_start(dir, &opts, port).unwrap_or_else(|e| panic!("nginx did not start: {e}"))
    }

    fn try_start(dir: &Path, opts: &NginxOptions, port: u16) -> Result<Nginx, String> {
        let bin = nginx_bin();
        let root = dir.join("www");
        let tmp = dir.join("tmp");
        for d in [&root, &tmp] {
            std::fs::create_dir_all(d).expect("create the nginx directories");
        }
        let d = |p: &Path| p.display().to_string();
        let mut server = String::new();
        match &opts.tls {
            Some(tls) => {
                server.push_str(&format!(
                    "        listen 127.0.0.1:{port} ssl;\n        ssl_certificate {};\n        ssl_certificate_key {};\n",
                    d(&tls.cert),
                    d(&tls.key)
                ));
                if let Some(ca) = &opts.client_ca {
                    server.push_str(&format!(
                        "        ssl_client_certificate {};\n        ssl_verify_client on;\n",
                        d(ca)
                    ));
                }
            }
            None => server.push_str(&format!("        listen 127.0.0.1:{port};\n")),
        }
        if let Some((user, password)) = &opts.basic_auth {
            let out = Command::new("openssl")
                .args(["passwd", "-apr1", "-stdin"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .and_then(|mut c| {
                    use std::io::Write;
                    c.stdin.take().expect("stdin").write_all(password.as_bytes())?;
                    c.wait_with_output()
                })
                .expect("run openssl passwd (install openssl)");
            assert!(
                out.status.success(),
                "openssl passwd: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let htpasswd = dir.join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).expect("write htpasswd");
            server.push_str(&format!(
                "        auth_basic \"monitor-compile test\";\n        auth_basic_user_file {};\n",
                d(&htpasswd)
            ));
        }
        if opts.slow {
            server
                .push_str("        location /slow/ {\n            limit_rate 10;\n            gzip off;\n        }\n");
        }
        server.push_str(&opts.extra);
        let conf = format!(
            r#"user root;
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{
    worker_connections 256;
}}
http {{
    types {{
        text/xml xml;
        text/plain txt;
        text/html html;
        application/gzip gz;
    }}
    default_type application/octet-stream;
    log_format mc '$status "$request" $body_bytes_sent enc="$sent_http_content_encoding" inm="$http_if_none_match" ims="$http_if_modified_since" conn=$connection';
    access_log {dir}/access.log mc;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_timeout 30s;
    server {{
{server}        root {root};
        autoindex on;
        gzip on;
        gzip_types application/xml text/xml text/plain;
        gzip_min_length 1;
    }}
}}
"#,
            dir = d(dir),
            tmp = d(&tmp),
            root = d(&root),
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let stderr = std::fs::File::create(dir.join("stderr.log")).expect("create stderr.log");
        let mut child = Command::new(&bin)
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let end = Instant::now() + STARTUP_BOUND;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
                return Err(format!(
                    "nginx exited ({status}) on port {port}:\n{}{}",
                    log("stderr.log"),
                    log("error.log")
                ));
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if Instant::now() > end {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("nginx did not accept on port {port} within {STARTUP_BOUND:?}"));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Ok(Nginx {
            port,
            root,
            dir: dir.to_path_buf(),
            tls: opts.tls.is_some(),
            child,
        })
    }

    /// `https://localhost:PORT` or `http://127.0.0.1:PORT` (TLS verifies `localhost`).
    pub fn url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}", self.port)
        } else {
            format!("http://127.0.0.1:{}", self.port)
        }
    }

    /// The access log so far, one line a request:
    /// `STATUS "REQUEST" BYTES enc="CONTENT-ENCODING" inm="IF-NONE-MATCH" ims="IF-MODIFIED-SINCE" conn=N`
    /// (`N`: nginx's connection serial number, the same for requests on one keep-alive
    /// connection).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }

    /// The error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// The access log's lines whose request path contains `path_part`.
    pub fn requests_for(&self, path_part: &str) -> Vec<String> {
        self.access_log()
            .lines()
            .filter(|l| l.split('"').nth(1).is_some_and(|r| r.contains(path_part)))
            .map(str::to_string)
            .collect()
    }

    /// [`Nginx::requests_for`], once it holds at least `n` lines or 5 s have passed:
    /// nginx logs a request after it has answered, so a client can see the answer
    /// before the log has its line.
    pub fn wait_for_requests(&self, path_part: &str, n: usize) -> Vec<String> {
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let lines = self.requests_for(path_part);
            if lines.len() >= n || Instant::now() > end {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stop it now (as dropping it does).
    pub fn stop(self) {}
}

impl Drop for Nginx {
    /// SIGTERM (nginx's fast shutdown: open connections are closed, a throttled
    /// response is not waited for), SIGKILL to its process group when it has not exited
    /// within 10 s; then reap it.
    fn drop(&mut self) {
        crate::stop_child(&mut self.child, Duration::from_secs(10));
    }
}
