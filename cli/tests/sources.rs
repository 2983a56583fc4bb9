//! The daemon with its real sources: profiles fetched over HTTP from a real nginx started
//! on 127.0.0.1 (the machine list a URL on it), contacts from a real slapd on an
//! `ldapi://` socket. A fetch that fails changes nothing and warns; a shrinking list goes
//! through the removal guard; LDAP going away keeps the last good contacts;
//! `monitor-compile fetch` fetches one machine at once. Waits are bounded polls.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use monitor_integration_tests::nginx::{Nginx, NginxOptions};
use monitor_integration_tests::slapd::Slapd;
use monitor_integration_tests::{nagios_bin, samples};

const LDIF: &str = "dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups

dn: uid=lena,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
objectClass: posixAccount
uid: lena
cn: Lena Directory
sn: Directory
uidNumber: 1001
gidNumber: 1001
homeDirectory: /home/lena
mail: lena@example.org

dn: cn=kdc,ou=groups,dc=example,dc=org
objectClass: posixGroup
cn: kdc
gidNumber: 2001
memberUid: lena
";

struct Site {
    dir: tempfile::TempDir,
    daemon: Option<Child>,
}

impl Site {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("daemon.log")).unwrap_or_default()
    }

    fn status(&self) -> serde_json::Value {
        std::fs::read_to_string(self.path("state/status.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    fn live_text(&self) -> String {
        let mut out = String::new();
        for f in walk(&self.path("nagios/generated")) {
            out.push_str(&std::fs::read_to_string(f).unwrap_or_default());
        }
        out
    }

    fn wait(&self, what: &str, mut ok: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(120);
        while Instant::now() < end {
            if ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "gave up waiting for {what}\n--- status ---\n{:#}\n--- daemon log ---\n{}",
            self.status(),
            self.log()
        );
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn publish(root: &Path, machines: &[&str]) {
    for m in machines {
        let node = m.split('.').next().unwrap();
        let dir = root.join("example.org").join(node).join("XML");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(samples().join(format!("{node}.xml")), dir.join("profile.xml")).unwrap();
    }
    let list: String = machines.iter().map(|m| format!("{m}\n")).collect();
    std::fs::write(root.join("machines.txt"), list).unwrap();
}

#[test]
fn the_daemon_fetches_profiles_over_http_and_reads_contacts_from_ldap() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    for sub in ["nagios", "var/checkresults", "state", "web", "ldap", "translators"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let nginx = Nginx::start(&d.join("web"), NginxOptions::default());
    let all = ["kdc1.example.org", "jabber1.example.org", "web1.example.org"];
    publish(&nginx.root, &all);
    let mut slapd = Slapd::start(&d.join("ldap"), LDIF);
    monitor_integration_tests::write_daemon_nagios_config(&d);
    let cfg = format!(
        "output = \"{d}/nagios/generated\"\nstate_dir = \"{d}/state\"\nnagios_config = \"{d}/nagios/nagios.cfg\"\n\
         nagios_bin = \"{bin}\"\ncommand_file = \"{d}/var/nagios.cmd\"\ntranslators = [\"{d}/translators\"]\n\
         debounce_ms = 200\nrescan_seconds = 2\nerror_grace_seconds = 1\nsubmit_delay_seconds = 1\nbind_paths = true\n\
         [reload]\nmethod = \"none\"\n\
         [http]\nbase = \"{url}\"\nlist = {{ url = \"{url}/machines.txt\" }}\npoll_seconds = 1\nsplay_seconds = 0\ntimeout_seconds = 5\n\
         [ldap]\nurl = \"{ldap}\"\nbase_dn = \"dc=example,dc=org\"\n",
        d = d.display(),
        bin = nagios_bin().display(),
        url = nginx.url(),
        ldap = slapd.url(),
    );
    std::fs::write(d.join("monitor-compile.toml"), cfg).unwrap();
    let log = std::fs::File::create(d.join("daemon.log")).unwrap();
    let mut site = Site { dir, daemon: None };
    site.daemon = Some(
        Command::new(env!("CARGO_BIN_EXE_monitor-compile"))
            .arg("--config")
            .arg(site.path("monitor-compile.toml"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );

    // 1. The fetched profiles are compiled, with the contacts LDAP has.
    site.wait("the first deploy", || {
        site.status()["deploy"]["result"] == "deployed"
            && site
                .live_text()
                .contains("host_name                       web1.example.org")
    });
    let text = site.live_text();
    for m in all {
        assert!(text.contains(&format!("host_name                       {m}\n")), "{m}");
    }
    assert!(text.contains("contact_name                    lena"), "{text}");
    assert!(text.contains("email                           lena@example.org"));
    assert!(
        site.path("state/http-profiles/example.org/kdc1/XML/profile.xml")
            .exists(),
        "the mirror is in the LCFG layout"
    );

    // Later polls are conditional: every profile a 304, and the passes parse nothing.
    site.wait("a poll of 304s and a pass that parses nothing", || {
        nginx
            .requests_for("/example.org/kdc1/XML/profile.xml")
            .iter()
            .any(|l| l.starts_with("304 "))
            && site.status()["parsed"] == 0
    });

    // 2. The web server stops: nothing is removed, and the pass warns.
    let port = nginx.port;
    let root = nginx.root.clone();
    drop(nginx);
    site.wait("a warning about the failed fetch", || {
        site.status()["warnings"].to_string().contains("machine list")
    });
    let text = site.live_text();
    for m in all {
        assert!(
            text.contains(&format!("host_name                       {m}\n")),
            "{m} is still there"
        );
    }

    // 3. LDAP goes away: the last good contacts stay, with a warning.
    slapd.stop();
    site.wait("a warning about LDAP", || {
        site.status()["warnings"].to_string().contains("last good user set")
    });
    assert!(site.live_text().contains("contact_name                    lena"));

    // 4. The server is back with a list of one machine: two of three hosts would go, and
    //    the removal guard holds the set.
    let nginx = Nginx::start_on_port(&site.path("web"), NginxOptions::default(), port);
    assert_eq!(nginx.root, root);
    publish(&nginx.root, &["kdc1.example.org"]);
    site.wait("the removal guard to hold the set", || {
        site.status()["deploy"]["result"] == "held"
    });
    let text = site.live_text();
    assert!(
        text.contains("host_name                       web1.example.org\n"),
        "still live"
    );

    // 5. `monitor-compile fetch` fetches a machine at once (the list is whole again).
    publish(&nginx.root, &all);
    std::fs::write(
        nginx.root.join("example.org/web1/XML/profile.xml"),
        std::fs::read_to_string(samples().join("web1.xml"))
            .unwrap()
            .replace("<vhosts", "<!-- changed --><vhosts"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_monitor-compile"))
        .args(["fetch", "--config"])
        .arg(site.path("monitor-compile.toml"))
        .arg("web1.example.org")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    site.wait("the fetch request", || {
        site.log().contains("SIGUSR2: fetching these machines now")
    });
    // The whole list again: the live set (a comment changes no object) is no longer held.
    site.wait("the set to be live again", || {
        site.status()["deploy"]["result"] == "unchanged"
    });
    assert!(site.status()["held"].is_null());
    assert!(
        !nginx.requests_for("/example.org/web1/XML/profile.xml").is_empty(),
        "web1 was fetched"
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_monitor-compile"))
        .args(["fetch", "--config"])
        .arg(site.path("monitor-compile.toml"))
        .arg("web1.example.org; rm -rf /")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a machine name"));
}
