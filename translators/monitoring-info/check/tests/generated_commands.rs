//! The command lines the monitoring-info translator generates, run as Nagios runs them
//! (`/bin/sh -c`, macros expanded, `$USER1$` the plugin directory) against real
//! listeners on 127.0.0.1: nginx with and without TLS (a test CA, an expired and a
//! soon-expiring certificate), the test mail server (SMTP, IMAP, POP3, with and without
//! TLS), a TCP banner, a UDP responder, an SSH banner and slapd on loopback (plain and
//! ldaps). Each type passes while its service is up and fails once it is down, the SSL
//! options behave as the seed says, and the mail flow chain runs end to end.
//!
//! The plugins are the real monitoring-plugins (`/usr/lib/nagios/plugins`, which
//! `.ci/run` installs) and our `check_monitoring_info` built from this crate. The tests
//! fail, never skip, when any of them is missing.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use monitor_integration_tests::listeners::{SshBanner, TcpBanner, UdpResponder, free_port};
use monitor_integration_tests::mail::{MailOptions, MailServer};
use monitor_integration_tests::nginx::{CertKey, Nginx, NginxOptions, TestPki, make_test_pki};
use monitor_integration_tests::pki::{make_cert_expiring_in, make_expired_cert};
use monitor_integration_tests::slapd::{ROOT_DN, ROOT_PW, Slapd};
use monitor_sdk::nagios::Value;
use monitor_sdk::profile::Component;
use monitor_sdk::translator::{Context, Translator};
use translator_monitoring_info::MonitoringInfo;
use translator_monitoring_info::checks::expand;

const PLUGINS: &str = "/usr/lib/nagios/plugins";
/// The machine: the name the test certificates are for.
const MACHINE: &str = "localhost";

/// A plugin directory for `$USER1$`: the real monitoring-plugins and our plugin.
struct Site {
    dir: tempfile::TempDir,
    user1: PathBuf,
    pki: TestPki,
    env: Vec<(String, String)>,
}

impl Site {
    fn new() -> Site {
        assert!(
            Path::new(PLUGINS).join("check_http").exists(),
            "{PLUGINS}/check_http is missing: install monitoring-plugins (as .ci/run does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let user1 = dir.path().join("plugins");
        std::fs::create_dir(&user1).unwrap();
        for e in std::fs::read_dir(PLUGINS).unwrap().flatten() {
            // An installed check_monitoring_info (the monitor-compile package) gives way to
            // the one built here.
            if e.file_name() != "check_monitoring_info" {
                std::os::unix::fs::symlink(e.path(), user1.join(e.file_name())).unwrap();
            }
        }
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_check_monitoring_info"),
            user1.join("check_monitoring_info"),
        )
        .unwrap();
        let pki = make_test_pki(&dir.path().join("pki"));
        let env = vec![
            (
                "CHECK_MONITORING_INFO_STORE".into(),
                dir.path().join("store").display().to_string(),
            ),
            ("CHECK_MONITORING_INFO_CA_FILE".into(), pki.ca.display().to_string()),
        ];
        Site { dir, user1, pki, env }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The services the translator makes of `registration`: description → command line,
    /// expanded as Nagios would for a host at 127.0.0.1.
    fn services(&self, registration: &str) -> BTreeMap<String, String> {
        let mut t = MonitoringInfo;
        let commands: BTreeMap<String, String> = t
            .start_pass()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o.name().unwrap().to_string(),
                    o.get_str("command_line").unwrap().to_string(),
                )
            })
            .collect();
        let component = Component::from_flat(
            "monitoring_info",
            &[("nagios_groups", "admins"), ("registration", registration)],
        );
        let mut ctx = Context::new(MACHINE, "monitoring_info");
        let bundle = t.translate(MACHINE, &component, &mut ctx).unwrap();
        assert!(ctx.warnings().is_empty(), "{registration}: {:?}", ctx.warnings());
        bundle
            .iter()
            .map(|o| {
                let Some(Value::Command(c)) = o.get("check_command") else {
                    panic!("no check_command: {o:?}")
                };
                let line =
                    expand(&commands[&c.name], c, "127.0.0.1").replace("$USER1$", &self.user1.display().to_string());
                (o.get_str("service_description").unwrap().to_string(), line)
            })
            .collect()
    }

    /// Run one generated line as Nagios does: (exit code, first line of output).
    fn run(&self, line: &str) -> (i32, String) {
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(line)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        eprintln!("{line}\n  -> {:?}: {text}", out.status.code());
        (out.status.code().unwrap_or(-1), text)
    }

    /// Run the service `name` of `registration`, and expect `code`.
    #[track_caller]
    fn expect(&self, registration: &str, name: &str, code: i32) -> String {
        let services = self.services(registration);
        let line = services
            .get(name)
            .unwrap_or_else(|| panic!("no service {name:?} in {services:?}"));
        let (got, text) = self.run(line);
        assert_eq!(got, code, "{name}: {line}\n{text}");
        text
    }

    fn password_file(&self, name: &str, password: &str) -> PathBuf {
        let f = self.path(name);
        std::fs::write(&f, format!("{password}\n")).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        f
    }
}

fn nginx(site: &Site, name: &str, tls: Option<CertKey>) -> Nginx {
    let n = Nginx::start(
        &site.path(name),
        NginxOptions {
            tls,
            extra: "location = /moved { return 301 /; }\nlocation = /missing { return 404; }\n".into(),
            ..NginxOptions::default()
        },
    );
    std::fs::write(n.root.join("index.html"), "ok\n").unwrap();
    n
}

#[test]
fn http_with_redirection_and_down() {
    let site = Site::new();
    let n = nginx(&site, "web", None);
    let p = n.port;
    let text = site.expect(&format!("[web]\ntype = http\nport = {p}\n"), "web", 0);
    assert!(text.starts_with("HTTP OK"), "{text}");
    site.expect(&format!("[web]\ntype = http\nport = {p}\nuri = /moved\n"), "web", 0);
    site.expect(
        &format!("[web]\ntype = http\nport = {p}\nuri = /moved\naccept_redirection = no\n"),
        "web",
        2,
    );
    site.expect(&format!("[web]\ntype = http\nport = {p}\nuri = /missing\n"), "web", 2);
    // The Host header is `hostname`: nginx logs it.
    site.expect(
        &format!("[web]\ntype = http\nport = {p}\nhostname = intranet.example.org\n"),
        "web",
        0,
    );
    drop(n);
    site.expect(&format!("[web]\ntype = http\nport = {p}\n"), "web", 2);
}

#[test]
fn https_and_its_certificate_checks() {
    let site = Site::new();
    let good = nginx(&site, "good", Some(site.pki.server.clone()));
    let reg = |port: u16, more: &str| format!("[web]\ntype = http\nssl = yes\nport = {port}\n{more}");
    let p = good.port;
    let text = site.expect(&reg(p, ""), "web", 0);
    assert!(text.starts_with("HTTP OK"), "{text}");
    let text = site.expect(&reg(p, ""), "web certificate", 0);
    assert!(text.starts_with("CERT OK"), "{text}");
    // The name must match: `ssl_hostname` overrides the FQDN.
    let text = site.expect(&reg(p, "ssl_hostname = www.example.org\n"), "web certificate", 2);
    assert!(text.contains("does not match"), "{text}");
    // ... unless invalid certificates are ignored: then only expiry counts, and only with
    // `expire_before_days` is there a certificate service at all.
    assert!(
        !site
            .services(&reg(p, "ignore_invalid_ssl = yes\n"))
            .contains_key("web certificate")
    );
    site.expect(
        &reg(
            p,
            "ssl_hostname = www.example.org\nignore_invalid_ssl = yes\nexpire_before_days = 7\n",
        ),
        "web certificate",
        0,
    );
    // A trusted CA: without the test CA, the system's roots do not trust it.
    let mut untrusting = Site {
        env: Vec::new(),
        ..Site::new()
    };
    untrusting.env.push((
        "CHECK_MONITORING_INFO_STORE".into(),
        untrusting.path("store").display().to_string(),
    ));
    let text = untrusting.expect(&reg(p, ""), "web certificate", 2);
    assert!(text.contains("does not verify"), "{text}");
    // Expired.
    let expired = nginx(&site, "expired", Some(make_expired_cert(&site.path("pki"), &site.pki)));
    let text = site.expect(&reg(expired.port, ""), "web certificate", 2);
    assert!(text.contains("expired"), "{text}");
    site.expect(
        &reg(expired.port, "ignore_invalid_ssl = yes\nexpire_before_days = 1\n"),
        "web certificate",
        2,
    );
    // Expiring in 5 days: a failure within 30, fine within 3.
    let soon = nginx(
        &site,
        "soon",
        Some(make_cert_expiring_in(&site.path("pki"), &site.pki, 5)),
    );
    let text = site.expect(&reg(soon.port, "expire_before_days = 30\n"), "web certificate", 2);
    assert!(text.contains("within 30 days"), "{text}");
    site.expect(&reg(soon.port, "expire_before_days = 3\n"), "web certificate", 0);
    // Down: both fail.
    drop(good);
    site.expect(&reg(p, ""), "web", 2);
    site.expect(&reg(p, ""), "web certificate", 2);
}

#[test]
fn tcp_udp_and_ssh_up_and_down() {
    let site = Site::new();
    let banner = TcpBanner::start("220 hello\r\n");
    let p = banner.port;
    site.expect(&format!("[db]\ntype = tcp\nport = {p}\n"), "db", 0);
    // TLS on a port that speaks none fails; on nginx's TLS port it passes.
    site.expect(&format!("[db]\ntype = tcp\nport = {p}\nssl = yes\n"), "db", 2);
    let tls = nginx(&site, "tls", Some(site.pki.server.clone()));
    site.expect(&format!("[t]\ntype = tcp\nport = {}\nssl = yes\n", tls.port), "t", 0);
    site.expect(
        &format!("[t]\ntype = tcp\nport = {}\nssl = yes\n", tls.port),
        "t certificate",
        0,
    );
    drop(banner);
    site.expect(&format!("[db]\ntype = tcp\nport = {p}\n"), "db", 2);

    let udp = UdpResponder::start(b"pong\n");
    let u = udp.port;
    site.expect(&format!("[dns]\ntype = udp\nport = {u}\n"), "dns", 0);
    drop(udp);
    site.expect(&format!("[dns]\ntype = udp\nport = {u}\n"), "dns", 2);

    let ssh = SshBanner::start();
    let s = ssh.port;
    let text = site.expect(&format!("[ssh]\ntype = ssh\nport = {s}\n"), "ssh", 0);
    assert!(text.contains("OpenSSH"), "{text}");
    drop(ssh);
    site.expect(&format!("[ssh]\ntype = ssh\nport = {s}\n"), "ssh", 2);
    site.expect(&format!("[ssh]\ntype = ssh\nport = {}\n", free_port()), "ssh", 2);
}

const USER: &str = "probe@example.org";
const PASSWORD: &str = "pw with 'quotes' and $dollars";

fn mail(tls: Option<CertKey>) -> MailServer {
    MailServer::start(MailOptions {
        user: USER.into(),
        password: PASSWORD.into(),
        tls,
    })
}

#[test]
fn smtp_imap_and_pop3_with_and_without_tls_and_logins() {
    let site = Site::new();
    let pw = site.password_file("pw", PASSWORD);
    let wrong = site.password_file("wrong", "not-the-password");
    for tls in [false, true] {
        let m = mail(tls.then(|| site.pki.server.clone()));
        let ssl = if tls { "ssl = yes\n" } else { "" };
        let (smtp, imap, pop3) = (m.smtp_port, m.imap_port, m.pop3_port);
        site.expect(&format!("[smtp]\ntype = smtp\nport = {smtp}\n{ssl}"), "smtp", 0);
        site.expect(&format!("[imap]\ntype = imap\nport = {imap}\n{ssl}"), "imap", 0);
        site.expect(&format!("[pop3]\ntype = pop3\nport = {pop3}\n{ssl}"), "pop3", 0);
        if tls {
            site.expect(
                &format!("[imap]\ntype = imap\nport = {imap}\n{ssl}"),
                "imap certificate",
                0,
            );
        }
        for (kind, port) in [("imap", imap), ("pop3", pop3)] {
            let login = |f: &Path| {
                format!(
                    "[m]\ntype = {kind}\nport = {port}\n{ssl}username = {USER}\npassword_file = {}\n",
                    f.display()
                )
            };
            site.expect(&login(&pw), "m", 0);
            let text = site.expect(&login(&wrong), "m", 2);
            assert!(!text.contains("not-the-password"), "{text}");
            if tls {
                // The password goes only to a server whose certificate verifies...
                let mut untrusting = Site {
                    env: Vec::new(),
                    ..Site::new()
                };
                untrusting.user1 = site.user1.clone();
                untrusting.expect(&login(&pw), "m", 2);
                // ... unless `ignore_invalid_ssl`.
                let any = login(&pw) + "ignore_invalid_ssl = yes\n";
                untrusting.expect(&any, "m", 0);
            }
        }
        drop(m);
        site.expect(&format!("[smtp]\ntype = smtp\nport = {smtp}\n{ssl}"), "smtp", 2);
        site.expect(&format!("[imap]\ntype = imap\nport = {imap}\n{ssl}"), "imap", 2);
        site.expect(&format!("[pop3]\ntype = pop3\nport = {pop3}\n{ssl}"), "pop3", 2);
    }
}

#[test]
fn the_mailflow_chain_end_to_end() {
    let site = Site::new();
    let pw = site.password_file("pw", PASSWORD);
    for tls in [false, true] {
        let m = mail(tls.then(|| site.pki.server.clone()));
        let ssl = if tls { "ssl = yes\n" } else { "" };
        let id = if tls { "main-tls" } else { "main" };
        let reg = format!(
            "[send]\ntype = smtp\nport = {}\n{ssl}email = {USER}\nmailflowid = {id}\n\
             [fetch]\ntype = imap\nport = {}\n{ssl}username = {USER}\npassword_file = {}\nmailflowid = {id}\n\
             [pop]\ntype = pop3\nport = {}\n{ssl}username = {USER}\npassword_file = {}\nmailflowid = {id}\n\
             [flow]\ntype = mailflow\nid = {id}\nseconds = 1\n",
            m.smtp_port,
            m.imap_port,
            pw.display(),
            m.pop3_port,
            pw.display()
        );
        // A sent token is found and consumed (by IMAP, then by POP3).
        for reader in ["fetch", "pop"] {
            site.expect(&reg, "send", 0);
            assert_eq!(m.messages().len(), 1, "{:?}", m.messages());
            let text = site.expect(&reg, reader, 0);
            assert!(text.contains("consumed 1 mail flow token"), "{text}");
            assert!(m.messages().is_empty());
            std::thread::sleep(std::time::Duration::from_millis(1100));
            site.expect(&reg, "flow", 0);
        }
        // A lost token: CRITICAL once it is older than `seconds`.
        site.expect(&reg, "send", 0);
        m.drop_all();
        site.expect(&reg, "fetch", 0);
        std::thread::sleep(std::time::Duration::from_secs(2));
        let text = site.expect(&reg, "flow", 2);
        assert!(text.starts_with("MAILFLOW CRITICAL"), "{text}");
    }
}

#[test]
fn ldap_anonymous_bound_ldaps_and_down() {
    let site = Site::new();
    let mut slapd = Slapd::start_on_loopback(&site.path("ldap"), "", Some(&site.pki.server));
    let (p, ps) = (slapd.ldap_port.unwrap(), slapd.ldaps_port.unwrap());
    let pw = site.password_file("pw", ROOT_PW);
    let wrong = site.password_file("wrong", "nope");
    let base = "base = dc=example,dc=org\n";
    site.expect(&format!("[dir]\ntype = ldap\nport = {p}\n{base}"), "dir", 0);
    let bound = |f: &Path| {
        format!(
            "[dir]\ntype = ldap\nport = {p}\n{base}username = {ROOT_DN}\npassword_file = {}\n",
            f.display()
        )
    };
    site.expect(&bound(&pw), "dir", 0);
    site.expect(&bound(&wrong), "dir", 2);
    site.expect(&format!("[dir]\ntype = ldap\nport = {ps}\nssl = yes\n{base}"), "dir", 0);
    site.expect(
        &format!("[dir]\ntype = ldap\nport = {ps}\nssl = yes\n{base}"),
        "dir certificate",
        0,
    );
    site.expect(
        &format!(
            "[dir]\ntype = ldap\nport = {ps}\nssl = yes\n{base}username = {ROOT_DN}\npassword_file = {}\n",
            pw.display()
        ),
        "dir",
        0,
    );
    slapd.stop();
    site.expect(&format!("[dir]\ntype = ldap\nport = {p}\n{base}"), "dir", 2);
    site.expect(&bound(&pw), "dir", 2);
}
