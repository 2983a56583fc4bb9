//! The built `check_monitoring_info` against the in-process test mail server
//! (`monitor_integration_tests::mail`), with and without TLS, and against test
//! certificates (`monitor_integration_tests::pki`). Every run is checked for its exit
//! code and its output, and for the password never appearing in either stream.
//!
//! They need `openssl` (for the test PKI) and the system's CA bundle
//! `/etc/ssl/certs/ca-certificates.crt` (for "untrusted CA"): they fail, never skip,
//! without them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use monitor_integration_tests::mail::{MailOptions, MailServer};
use monitor_integration_tests::nginx::{CertKey, TestPki, make_test_pki};
use monitor_integration_tests::pki::{make_cert_expiring_in, make_expired_cert};

const BIN: &str = env!("CARGO_BIN_EXE_check_monitoring_info");
const USER: &str = "flow@example.org";
/// Quotes, a backslash, spaces and non-ASCII: an IMAP literal, and raw bytes for POP3.
const PASSWORD: &str = "Tr0ub4dor \"&\" \\ ünïcode";
/// The mail flow id of the tests, and the name of its directory in the store.
const FLOW: &str = "flow";
const FLOW_DIR: &str = "666c6f77";

/// A finished run of the plugin.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Run the plugin with `args`; the password must appear in neither output.
fn run(args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run check_monitoring_info");
    let r = Run {
        code: out.status.code().expect("an exit code, not a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for secret in [PASSWORD, "Tr0ub4dor", "wrong-password-123"] {
        assert!(
            !r.stdout.contains(secret) && !r.stderr.contains(secret),
            "the password is in the output of {args:?}: {r:?}"
        );
    }
    // Shown with --nocapture.
    eprintln!("{args:?} -> {}: {}", r.code, r.stdout.trim_end());
    r
}

/// Assert the exit code, that stdout is one line starting with `start`, and that it
/// contains each of `has`.
#[track_caller]
fn expect(r: &Run, code: i32, start: &str, has: &[&str]) {
    assert_eq!(r.code, code, "exit code: {r:?}");
    assert!(r.stdout.starts_with(start), "expected {start:?}: {r:?}");
    assert_eq!(r.stdout.lines().count(), 1, "one line: {r:?}");
    for h in has {
        assert!(r.stdout.contains(h), "expected {h:?} in the output: {r:?}");
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    pki: TestPki,
    store: PathBuf,
    password_file: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let pki = make_test_pki(&dir.path().join("pki"));
        let password_file = write_password(dir.path(), "password", PASSWORD, 0o600);
        Fixture {
            store: dir.path().join("store"),
            dir,
            pki,
            password_file,
        }
    }

    fn server(&self, tls: bool) -> MailServer {
        self.server_with(tls.then(|| self.pki.server.clone()))
    }

    fn server_with(&self, tls: Option<CertKey>) -> MailServer {
        MailServer::start(MailOptions {
            user: USER.to_string(),
            password: PASSWORD.to_string(),
            tls,
        })
    }

    fn s(p: &Path) -> String {
        p.display().to_string()
    }

    /// `-H 127.0.0.1 -p PORT` and, with TLS, `--ssl --ca-file CA`.
    fn conn(&self, port: u16, tls: bool) -> Vec<String> {
        let mut a = vec!["-H".to_string(), "127.0.0.1".into(), "-p".into(), port.to_string()];
        if tls {
            a.extend(["--ssl".to_string(), "--ca-file".into(), Fixture::s(&self.pki.ca)]);
        }
        a
    }

    fn smtp_send(&self, m: &MailServer) -> Run {
        let mut a = vec!["smtp".to_string()];
        a.extend(self.conn(m.smtp_port, m.tls()));
        a.extend(["--to".into(), USER.into(), "--mailflow-id".into(), FLOW.into()]);
        a.extend(["--store".into(), Fixture::s(&self.store)]);
        run(&a.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn mailbox(&self, proto: &str, m: &MailServer, password_file: &Path) -> Run {
        let port = if proto == "imap" { m.imap_port } else { m.pop3_port };
        let mut a = vec![proto.to_string()];
        a.extend(self.conn(port, m.tls()));
        a.extend([
            "--user".into(),
            USER.into(),
            "--password-file".into(),
            Fixture::s(password_file),
        ]);
        a.extend([
            "--store".into(),
            Fixture::s(&self.store),
            "--mailflow-id".into(),
            FLOW.into(),
        ]);
        run(&a.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn mailflow(&self, seconds: u64) -> Run {
        run(&[
            "mailflow",
            "--store",
            &Fixture::s(&self.store),
            "--id",
            FLOW,
            "--seconds",
            &seconds.to_string(),
        ])
    }

    /// The files in the flow's directory of the store.
    fn store_files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.store.join(FLOW_DIR))
            .expect("the flow's directory exists")
            .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

fn write_password(dir: &Path, name: &str, password: &str, mode: u32) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{password}\n")).expect("write the password file");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod the password file");
    p
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn greetings_are_ok_with_and_without_tls() {
    let f = Fixture::new();
    for tls in [false, true] {
        let m = f.server(tls);
        let over = if tls { " over TLS" } else { "" };
        let mut a = vec!["smtp".to_string()];
        a.extend(f.conn(m.smtp_port, tls));
        expect(
            &run(&args(&a)),
            0,
            "SMTP OK - ",
            &["greeting, EHLO and QUIT answered", over],
        );
        let mut a = vec!["imap".to_string()];
        a.extend(f.conn(m.imap_port, tls));
        expect(
            &run(&args(&a)),
            0,
            "IMAP OK - ",
            &["greeting and LOGOUT answered", over],
        );
        let mut a = vec!["pop3".to_string()];
        a.extend(f.conn(m.pop3_port, tls));
        expect(&run(&args(&a)), 0, "POP3 OK - ", &["greeting and QUIT answered", over]);
        // The TLS name given apart from the address (the certificate is for both).
        if tls {
            let mut a = vec!["imap".to_string()];
            a.extend(f.conn(m.imap_port, tls));
            a.extend(["--name".into(), "localhost".into()]);
            expect(&run(&args(&a)), 0, "IMAP OK - ", &["over TLS"]);
        }
        // Nothing was sent, nothing recorded.
        assert!(m.messages().is_empty());
        assert!(!f.store.exists());
    }
}

#[test]
fn a_stopped_server_is_critical() {
    let f = Fixture::new();
    for tls in [false, true] {
        let m = f.server(tls);
        let (smtp, imap, pop3) = (m.smtp_port, m.imap_port, m.pop3_port);
        m.stop();
        for (proto, port, prefix) in [("smtp", smtp, "SMTP"), ("imap", imap, "IMAP"), ("pop3", pop3, "POP3")] {
            let mut a = vec![proto.to_string()];
            a.extend(f.conn(port, tls));
            let r = run(&args(&a));
            expect(&r, 2, &format!("{prefix} CRITICAL - "), &[&format!("127.0.0.1:{port}")]);
            assert!(r.stdout.to_lowercase().contains("refused"), "{r:?}");
        }
        // The mail flow send fails too, and records nothing (it fails before any token).
        let mut a = vec!["smtp".to_string()];
        a.extend(f.conn(smtp, tls));
        a.extend(["--to".into(), USER.into(), "--store".into(), Fixture::s(&f.store)]);
        expect(&run(&args(&a)), 2, "SMTP CRITICAL - ", &[]);
        assert!(!f.store.exists());
    }
}

#[test]
fn a_wrong_password_is_critical() {
    let f = Fixture::new();
    let wrong = write_password(f.dir.path(), "wrong", "wrong-password-123", 0o400);
    for tls in [false, true] {
        let m = f.server(tls);
        expect(
            &f.mailbox("imap", &m, &wrong),
            2,
            "IMAP CRITICAL - ",
            &[&format!("login as \"{USER}\" failed"), "AUTHENTICATIONFAILED"],
        );
        expect(
            &f.mailbox("pop3", &m, &wrong),
            2,
            "POP3 CRITICAL - ",
            &[&format!("login as \"{USER}\" failed (PASS): -ERR [AUTH]")],
        );
        // The right one logs in (and finds nothing).
        expect(
            &f.mailbox("imap", &m, &f.password_file),
            0,
            "IMAP OK - ",
            &["consumed 0 mail flow tokens"],
        );
        expect(
            &f.mailbox("pop3", &m, &f.password_file),
            0,
            "POP3 OK - ",
            &["consumed 0 mail flow tokens"],
        );
    }
}

fn mail_flow_through(proto: &str, prefix: &str) {
    let f = Fixture::new();
    for tls in [false, true] {
        let m = f.server(tls);
        let sent = f.smtp_send(&m);
        expect(
            &sent,
            0,
            "SMTP OK - ",
            &["sent mail flow token", USER, "for \"flow\"", "250"],
        );
        let subjects = m.messages();
        assert_eq!(subjects.len(), 1, "{subjects:?}");
        let token = subjects[0]
            .strip_prefix("monitor-compile mailflow ")
            .unwrap_or_else(|| panic!("the subject {:?}", subjects[0]));
        assert!(token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert!(sent.stdout.contains(&token[..8]), "{sent:?}");
        assert_eq!(f.store_files(), vec![token.to_string()]);
        expect(
            &f.mailflow(60),
            0,
            "MAILFLOW OK - ",
            &[
                "1 mail flow token pending for \"flow\", none older than 60 s",
                "pending=1",
            ],
        );
        // The mailbox check consumes it and deletes the message.
        let got = f.mailbox(proto, &m, &f.password_file);
        expect(
            &got,
            0,
            &format!("{prefix} OK - "),
            &[
                &format!("logged in as \"{USER}\""),
                "consumed 1 mail flow token",
                "deleted 1 message",
            ],
        );
        assert!(m.messages().is_empty(), "{:?}", m.messages());
        assert!(f.store_files().is_empty(), "{:?}", f.store_files());
        expect(
            &f.mailflow(1),
            0,
            "MAILFLOW OK - ",
            &["no mail flow tokens pending for \"flow\"", "pending=0"],
        );
        // Again: nothing left to consume.
        expect(
            &f.mailbox(proto, &m, &f.password_file),
            0,
            &format!("{prefix} OK - "),
            &["consumed 0 mail flow tokens"],
        );
    }
}

#[test]
fn smtp_sends_a_token_and_imap_consumes_it() {
    mail_flow_through("imap", "IMAP");
}

#[test]
fn smtp_sends_a_token_and_pop3_consumes_it() {
    mail_flow_through("pop3", "POP3");
}

#[test]
fn a_lost_token_turns_mailflow_critical() {
    let f = Fixture::new();
    let m = f.server(false);
    expect(&f.smtp_send(&m), 0, "SMTP OK - ", &[]);
    m.drop_all();
    expect(
        &f.mailbox("imap", &m, &f.password_file),
        0,
        "IMAP OK - ",
        &["consumed 0 mail flow tokens"],
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    expect(
        &f.mailflow(1),
        2,
        "MAILFLOW CRITICAL - ",
        &[
            "1 of 1 mail flow token for \"flow\" sent more than 1 s ago and not yet received",
            "late=1",
        ],
    );
    // A generous limit still holds it as pending, not late.
    expect(&f.mailflow(3600), 0, "MAILFLOW OK - ", &["1 mail flow token pending"]);
}

#[test]
fn messages_with_unknown_tokens_are_deleted_and_others_kept() {
    let f = Fixture::new();
    for proto in ["imap", "pop3"] {
        let m = f.server(false);
        // A token recorded for the flow, so that the store exists.
        expect(&f.smtp_send(&m), 0, "SMTP OK - ", &[]);
        m.deliver("From: a@example.org\nSubject: monitor-compile mailflow 0123456789abcdef0123456789abcdef\n\nold\n");
        m.deliver("From: a@example.org\nSubject: hello\n\n.leading dot\n");
        let r = f.mailbox(proto, &m, &f.password_file);
        expect(&r, 0, "", &["consumed 1 mail flow token", "deleted 2 messages"]);
        assert_eq!(m.messages(), vec!["hello".to_string()]);
        assert!(m.raw_messages()[0].contains("\r\n.leading dot\r\n"));
    }
}

#[test]
fn mailflow_without_a_store_or_an_id_is_unknown() {
    let f = Fixture::new();
    expect(
        &f.mailflow(60),
        3,
        "MAILFLOW UNKNOWN - ",
        &[&format!(
            "no mailflow store at {}: has the smtp check ever sent a token?",
            f.store.display()
        )],
    );
    std::fs::create_dir_all(&f.store).unwrap();
    expect(
        &f.mailflow(60),
        3,
        "MAILFLOW UNKNOWN - ",
        &["no mail flow token was ever recorded for \"flow\""],
    );
}

#[test]
fn a_world_readable_password_file_is_unknown() {
    let f = Fixture::new();
    let open = write_password(f.dir.path(), "open", PASSWORD, 0o644);
    let m = f.server(false);
    for (proto, prefix) in [("imap", "IMAP"), ("pop3", "POP3")] {
        expect(
            &f.mailbox(proto, &m, &open),
            3,
            &format!("{prefix} UNKNOWN - "),
            &["is readable by others (mode 0644)", &open.display().to_string()],
        );
    }
    let r = run(&[
        "ldap",
        "-H",
        "127.0.0.1",
        "-p",
        "1",
        "--bind-dn",
        "cn=x",
        "--password-file",
        &open.display().to_string(),
    ]);
    expect(&r, 3, "LDAP UNKNOWN - ", &["is readable by others"]);
}

#[test]
fn bad_arguments_are_unknown() {
    expect(
        &run(&["imap", "-p", "143"]),
        3,
        "IMAP UNKNOWN - bad arguments: ",
        &["--host"],
    );
    expect(
        &run(&["smtp", "-H", "x", "--bogus"]),
        3,
        "SMTP UNKNOWN - bad arguments: ",
        &["--bogus"],
    );
    expect(
        &run(&["frobnicate"]),
        3,
        "MONITORING-INFO UNKNOWN - bad arguments: ",
        &[],
    );
    expect(
        &run(&["mailflow", "--id", "x", "--seconds", "soon"]),
        3,
        "MAILFLOW UNKNOWN - bad arguments: ",
        &[],
    );
    expect(
        &run(&["imap", "-H", "127.0.0.1", "--user", "u"]),
        3,
        "IMAP UNKNOWN - ",
        &["--user needs --password-file"],
    );
    expect(
        &run(&["smtp", "-H", "127.0.0.1", "--to", "not an address"]),
        3,
        "SMTP UNKNOWN - ",
        &["--to \"not an address\" is not an e-mail address"],
    );
}

/// `cert -H 127.0.0.1 -p PORT` and `extra`.
fn cert(port: u16, extra: &[&str]) -> Run {
    let port = port.to_string();
    let mut a = vec!["cert", "-H", "127.0.0.1", "-p", &port];
    a.extend_from_slice(extra);
    run(&a)
}

#[test]
fn certificates_are_judged() {
    let f = Fixture::new();
    let ca = f.pki.ca.display().to_string();
    let ca = ca.as_str();
    let good = f.server(true);
    let p = good.smtp_port;
    // Valid: subject, issuer, expiry date and days left.
    expect(
        &cert(p, &["--name", "localhost", "--ca-file", ca]),
        0,
        "CERT OK - ",
        &[
            "CN=localhost, issued by CN=monitor-compile test CA, expires 20",
            "days left)",
            "days_left=",
        ],
    );
    expect(
        &cert(p, &["--name", "127.0.0.1", "--ca-file", ca, "--days", "30"]),
        0,
        "CERT OK - ",
        &[],
    );
    // Wrong name.
    expect(
        &cert(p, &["--name", "wrong.example.org", "--ca-file", ca]),
        2,
        "CERT CRITICAL - ",
        &["the certificate does not match wrong.example.org (it is for DNS:localhost, IP:127.0.0.1)"],
    );
    // Untrusted: the system's roots do not hold the test CA.
    expect(
        &cert(p, &["--name", "localhost"]),
        2,
        "CERT CRITICAL - ",
        &["the certificate chain does not verify: not issued by a CA of /etc/ssl/certs/ca-certificates.crt"],
    );
    // Neither checked with --ignore-invalid.
    expect(
        &cert(p, &["--name", "wrong.example.org", "--ignore-invalid"]),
        0,
        "CERT OK - ",
        &["CN=localhost", "(chain and name not checked)"],
    );
    // The protocol checks refuse such a certificate unless told to ignore it.
    let mut a = vec!["imap".to_string()];
    a.extend(f.conn(good.imap_port, true));
    a.extend(["--name".into(), "wrong.example.org".into()]);
    expect(
        &run(&args(&a)),
        2,
        "IMAP CRITICAL - ",
        &["does not match wrong.example.org"],
    );
    a.push("--ignore-invalid".into());
    expect(&run(&args(&a)), 0, "IMAP OK - ", &["certificate not verified"]);
    let r = run(&["pop3", "-H", "127.0.0.1", "-p", &good.pop3_port.to_string(), "--ssl"]);
    expect(
        &r,
        2,
        "POP3 CRITICAL - ",
        &["not issued by a CA of /etc/ssl/certs/ca-certificates.crt"],
    );
    let r = run(&["smtp", "-H", "127.0.0.1", "-p", &good.smtp_port.to_string(), "--ssl"]);
    expect(
        &r,
        2,
        "SMTP CRITICAL - ",
        &["not issued by a CA of /etc/ssl/certs/ca-certificates.crt"],
    );
    let mut a = vec!["smtp".to_string()];
    a.extend(f.conn(good.smtp_port, true));
    a.extend(["--name".into(), "wrong.example.org".into()]);
    expect(
        &run(&args(&a)),
        2,
        "SMTP CRITICAL - ",
        &["the certificate does not match wrong.example.org"],
    );
    let r = run(&[
        "smtp",
        "-H",
        "127.0.0.1",
        "-p",
        &good.smtp_port.to_string(),
        "--ssl",
        "--ignore-invalid",
    ]);
    expect(&r, 0, "SMTP OK - ", &["certificate not verified"]);
    drop(good);

    // Expired: CRITICAL, with or without --ignore-invalid.
    let expired = f.server_with(Some(make_expired_cert(&f.dir.path().join("expired"), &f.pki)));
    for extra in [&["--name", "localhost", "--ca-file", ca][..], &["--ignore-invalid"][..]] {
        expect(
            &cert(expired.smtp_port, extra),
            2,
            "CERT CRITICAL - ",
            &["the certificate expired on 2021-01-01 00:00:00 UTC", "CN=localhost"],
        );
    }
    let mut a = vec!["imap".to_string()];
    a.extend(f.conn(expired.imap_port, true));
    expect(&run(&args(&a)), 2, "IMAP CRITICAL - ", &["expired on 2021-01-01"]);
    let mut a = vec!["smtp".to_string()];
    a.extend(f.conn(expired.smtp_port, true));
    expect(&run(&args(&a)), 2, "SMTP CRITICAL - ", &["the certificate has expired"]);
    drop(expired);

    // Expiring in 5 days: CRITICAL with --days 30, OK with --days 3.
    let soon = f.server_with(Some(make_cert_expiring_in(&f.dir.path().join("soon"), &f.pki, 5)));
    expect(
        &cert(
            soon.smtp_port,
            &["--name", "localhost", "--ca-file", ca, "--days", "30"],
        ),
        2,
        "CERT CRITICAL - ",
        &["the certificate expires within 30 days", "left)"],
    );
    expect(
        &cert(soon.smtp_port, &["--name", "localhost", "--ca-file", ca, "--days", "3"]),
        0,
        "CERT OK - ",
        &["days left)"],
    );
    expect(
        &cert(soon.smtp_port, &["--ignore-invalid", "--days", "30"]),
        2,
        "CERT CRITICAL - ",
        &["within 30 days"],
    );
    drop(soon);

    // Nothing listening.
    let m = f.server(true);
    let port = m.smtp_port;
    m.stop();
    let r = cert(port, &["--ca-file", ca]);
    expect(&r, 2, "CERT CRITICAL - ", &[]);
    assert!(r.stdout.to_lowercase().contains("refused"), "{r:?}");
    // A missing CA file is UNKNOWN.
    expect(
        &cert(port, &["--ca-file", "/nonexistent/ca.pem"]),
        3,
        "CERT UNKNOWN - ",
        &["cannot read the CA file"],
    );
}

#[test]
fn a_silent_server_times_out() {
    // Accepts, never greets.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let started = std::time::Instant::now();
    let r = run(&["imap", "-H", "127.0.0.1", "-p", &port, "-t", "1"]);
    expect(&r, 2, "IMAP CRITICAL - ", &[]);
    assert!(r.stdout.contains("1 s"), "{r:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    drop(l);
}

/// The monitoring-plugins directory (Debian's `monitoring-plugins-standard`).
const PLUGINS: &str = "/usr/lib/nagios/plugins";

#[test]
fn the_real_monitoring_plugins_accept_the_test_server() {
    let f = Fixture::new();
    for tls in [false, true] {
        let m = f.server(tls);
        let plugins: [(&str, u16, &str); 3] = if tls {
            [
                ("check_ssmtp", m.smtp_port, "SMTP OK"),
                ("check_simap", m.imap_port, "IMAP OK"),
                ("check_spop", m.pop3_port, "POP OK"),
            ]
        } else {
            [
                ("check_smtp", m.smtp_port, "SMTP OK"),
                ("check_imap", m.imap_port, "IMAP OK"),
                ("check_pop", m.pop3_port, "POP OK"),
            ]
        };
        for (plugin, port, ok) in plugins {
            let bin = Path::new(PLUGINS).join(plugin);
            assert!(
                bin.exists(),
                "{} is missing: install monitoring-plugins (as .ci/run does)",
                bin.display()
            );
            let mut c = Command::new(&bin);
            c.args(["-H", "127.0.0.1", "-p", &port.to_string(), "-t", "10"]);
            if tls {
                c.args(["--sni", "localhost"]);
            }
            let out = c.output().expect("run the plugin");
            let stdout = String::from_utf8_lossy(&out.stdout);
            eprintln!("{plugin} -> {:?}: {}", out.status.code(), stdout.trim_end());
            assert_eq!(
                out.status.code(),
                Some(0),
                "{plugin}: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(stdout.contains(ok), "{plugin}: {stdout}");
        }
        // And, once it is stopped, CRITICAL.
        m.stop();
        for (plugin, port, _) in plugins {
            let out = Command::new(Path::new(PLUGINS).join(plugin))
                .args(["-H", "127.0.0.1", "-p", &port.to_string(), "-t", "10"])
                .output()
                .expect("run the plugin");
            let stdout = String::from_utf8_lossy(&out.stdout);
            // (check_tcp's family prints only "connect to address …: Connection refused".)
            assert_eq!(out.status.code(), Some(2), "{plugin} on a stopped server: {stdout}");
            assert!(stdout.contains("Connection refused"), "{plugin}: {stdout}");
        }
    }
}

/// The number after "consumed " in a mailbox check's output.
fn consumed(r: &Run) -> usize {
    let rest = r
        .stdout
        .split("consumed ")
        .nth(1)
        .unwrap_or_else(|| panic!("no count: {r:?}"));
    rest.split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count: {r:?}"))
}

#[test]
fn concurrent_checks_consume_every_token_exactly_once() {
    const SENDERS: usize = 6;
    let f = std::sync::Arc::new(Fixture::new());
    let m = std::sync::Arc::new(f.server(false));
    // Senders, mailbox checks and mailflow checks, all at once, each its own process.
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let (f, m) = (std::sync::Arc::clone(&f), std::sync::Arc::clone(&m));
        senders.push(std::thread::spawn(move || f.smtp_send(&m)));
    }
    let mut readers = Vec::new();
    for i in 0..3 {
        let (f, m) = (std::sync::Arc::clone(&f), std::sync::Arc::clone(&m));
        readers.push(std::thread::spawn(move || {
            let mut runs = Vec::new();
            for _ in 0..4 {
                runs.push(f.mailbox("imap", &m, &f.password_file));
                if i == 0 && f.store.join(FLOW_DIR).exists() {
                    let r = f.mailflow(3600);
                    assert_eq!(r.code, 0, "{r:?}");
                }
            }
            runs
        }));
    }
    for s in senders {
        expect(&s.join().unwrap(), 0, "SMTP OK - ", &["sent mail flow token"]);
    }
    let mut total = 0;
    for r in readers {
        for run in r.join().unwrap() {
            expect(&run, 0, "IMAP OK - ", &[]);
            total += consumed(&run);
        }
    }
    // Whatever the concurrent readers did not see yet.
    let last = f.mailbox("imap", &m, &f.password_file);
    expect(&last, 0, "IMAP OK - ", &[]);
    total += consumed(&last);
    assert_eq!(total, SENDERS, "every token consumed exactly once");
    assert!(m.messages().is_empty(), "{:?}", m.messages());
    assert!(f.store_files().is_empty(), "{:?}", f.store_files());
    expect(&f.mailflow(1), 0, "MAILFLOW OK - ", &["no mail flow tokens pending"]);
}
