//! The Icinga 2 backend end to end: the samples compile to a tree of a master and two
//! satellite zones that the real `icinga2 daemon -C` accepts on the whole tree and on each
//! satellite's slice; hostile values stay strings; a zone the configuration lacks is an
//! error for its machine only; the Nagios backend writes a hostgroup per zone; and the
//! daemon deploys to a real `icinga2 daemon` and reports through its REST API. Waits are
//! bounded polls, never timing assertions.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use monitor_integration_tests::icinga::{Icinga, NODE_NAME, icinga2_bin};
use monitor_integration_tests::{nagios_bin, plugin_libs, profile_xml, samples};

fn compiler() -> Command {
    Command::new(env!("CARGO_BIN_EXE_monitor-compile"))
}

/// A temporary directory that the `nagios` user can read, as icinga2 reads the output.
fn readable_tempdir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    d
}

/// `--once --format json` with `args`; the summary and the exit code.
fn once(args: &[&str]) -> (serde_json::Value, i32) {
    let out = compiler()
        .args(["--once", "--format", "json"])
        .args(args)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let summary =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (summary, out.status.code().unwrap_or(-1))
}

/// Every file of `dir` as `=== path` and its text, in name order.
fn tree_text(dir: &Path) -> String {
    let mut files: Vec<PathBuf> = walk(dir);
    files.sort();
    files
        .iter()
        .map(|f| {
            format!(
                "=== {}\n{}",
                f.strip_prefix(dir).unwrap().display(),
                std::fs::read_to_string(f).unwrap()
            )
        })
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn sample_args(out: &Path) -> Vec<String> {
    vec![
        "--config".into(),
        samples().join("icinga2.toml").display().to_string(),
        "--profiles".into(),
        samples().display().to_string(),
        "--users".into(),
        samples().join("users.toml").display().to_string(),
        "--output".into(),
        out.display().to_string(),
        "--validate".into(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Every node's validation: (endpoint, zone, ok, errors, warnings).
fn nodes(summary: &serde_json::Value) -> Vec<(String, String, bool, usize, usize)> {
    summary["icinga2_validation"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no icinga2 validation in {summary}"))
        .iter()
        .map(|n| {
            (
                n["endpoint"].as_str().unwrap().to_string(),
                n["zone"].as_str().unwrap().to_string(),
                n["ok"].as_bool().unwrap(),
                n["errors"].as_array().unwrap().len(),
                n["warnings"].as_array().unwrap().len(),
            )
        })
        .collect()
}

#[test]
fn the_samples_compile_to_a_tree_every_node_accepts() {
    let dir = readable_tempdir();
    let out = dir.path().join("out");
    let (summary, code) = once(&strs(&sample_args(&out)));
    assert_eq!(code, 0, "{summary:#}");
    assert_eq!(summary["backend"], "icinga2");
    assert_eq!(summary["report"]["errors"], serde_json::json!([]), "{summary:#}");
    assert_eq!(summary["report"]["warnings"], serde_json::json!([]), "{summary:#}");
    // The master with the whole tree, and each satellite with its own slice: 0 errors and
    // 0 warnings each, as icinga2 validated them as the nagios user.
    assert_eq!(
        nodes(&summary),
        [
            ("icinga-master.example.org".into(), "master".into(), true, 0, 0),
            ("icinga-web.example.org".into(), "web".into(), true, 0, 0),
            ("icinga-kdc.example.org".into(), "kdc".into(), true, 0, 0),
        ],
        "{:#}",
        summary["icinga2_validation"]
    );
    // Hosts in their zones: by profile (web2), by rule (kdc2), by default.
    for (zone, host) in [
        ("web", "web2.example.org"),
        ("kdc", "kdc2.example.org"),
        ("master", "web1.example.org"),
        ("master", "kdc1.example.org"),
        ("master", "jabber1.example.org"),
        ("master", "monitor-compile-clusters"),
    ] {
        let here = walk(&out.join("zones.d").join(zone)).iter().any(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .contains(&format!("object Host \"{host}\" {{"))
        });
        assert!(here, "{host} is not in zone {zone}");
    }
    // A dependency across zones (kdc2 in zone kdc on kdc1 in the master; web2's cosignd
    // on the cluster check) is in the master, where both ends are seen; one inside a
    // zone (web2's vhost on its Apache) stays there.
    let master_deps = std::fs::read_to_string(out.join("zones.d/master/32-dependencies.conf")).unwrap();
    assert!(
        master_deps.contains("child_host_name = \"kdc2.example.org\""),
        "{master_deps}"
    );
    assert!(
        master_deps.contains("child_host_name = \"web2.example.org\""),
        "{master_deps}"
    );
    assert!(!out.join("zones.d/kdc/32-dependencies.conf").exists());
    let web: String = walk(&out.join("zones.d/web"))
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(
        web.contains("object Dependency \"mc-depends-on web2.example.org/Apache\""),
        "{web}"
    );
    insta::assert_snapshot!("samples_icinga2_tree", tree_text(&out));
    // Byte-identical on a second run.
    let again = dir.path().join("again");
    let (_, code) = once(&strs(&sample_args(&again)));
    assert_eq!(code, 0);
    assert_eq!(tree_text(&out), tree_text(&again));
}

#[test]
fn hostile_values_cannot_inject_dsl() {
    let dir = readable_tempdir();
    let profiles = dir.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    // Values that would end a string, open an object, start a lambda or expand a macro.
    let evil_keytab = r#"/k" } object Host "pwned" { check_command = "dummy" } object Service "x"#;
    let evil_principal = "$host.name$@{{ exit() }}\\x";
    let kerberos = format!(
        "   <kerberos><type>master</type><realm>EVIL.ORG</realm><nagios_groups>kdc</nagios_groups>\
         <nagios_keytab>{}</nagios_keytab><nagios_principal>{}</nagios_principal></kerberos>",
        evil_keytab
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('"', "&quot;"),
        evil_principal.replace('&', "&amp;")
    );
    std::fs::write(profiles.join("evil.xml"), profile_xml("evil", "kerberos", &kerberos)).unwrap();
    let users = dir.path().join("users.toml");
    std::fs::write(
        &users,
        "[contacts.mallory]\nalias = 'M\" } object Host \"pwned2\" { check_command = \"dummy\" } //'\nemail = \"m@example.org\"\ngroups = [\"kdc\"]\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let (summary, code) = once(&[
        "--backend",
        "icinga2",
        "--profiles",
        profiles.to_str().unwrap(),
        "--users",
        users.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--validate",
    ]);
    let text = tree_text(&out);
    assert!(text.contains("evil.example.org"), "{summary:#}\n{text}");
    assert_eq!(code, 0, "{summary:#}\n{text}");
    // icinga2 read every value as one string: no object "pwned", nothing but our hosts.
    for n in nodes(&summary) {
        assert!(n.2 && n.3 == 0, "{n:?}: {:#}", summary["icinga2_validation"]);
    }
    let hosts: Vec<&str> = text.lines().filter(|l| l.starts_with("object Host ")).collect();
    assert_eq!(
        hosts,
        [
            "object Host \"evil.example.org\" {",
            "object Host \"monitor-compile-clusters\" {"
        ],
        "{text}"
    );
    assert!(!text.lines().any(|l| l.starts_with("object Service \"x")), "{text}");
    assert!(
        text.contains(
            r#"vars.mc_arg3 = "/k\" } object Host \"pwned\" { check_command = \"dummy\" } object Service \"x""#
        ),
        "{text}"
    );
    // A macro in a value is a literal: `$$` is Icinga 2's literal dollar.
    assert!(text.contains(r#""$$host.name$$@{{ exit() }}\\x""#), "{text}");
    assert!(
        text.contains(r#"display_name = "M\" } object Host \"pwned2\" { check_command = \"dummy\" } //""#),
        "{text}"
    );
}

#[test]
fn a_zone_the_configuration_lacks_is_an_error_for_that_machine_only() {
    let dir = readable_tempdir();
    let profiles = dir.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    for f in ["kdc1.xml", "kdc2.xml", "jabber1.xml", "web1.xml", "web2.xml"] {
        std::fs::copy(samples().join(f), profiles.join(f)).unwrap();
    }
    let text = std::fs::read_to_string(samples().join("web2.xml")).unwrap();
    std::fs::write(
        profiles.join("web2.xml"),
        text.replace(">web</zone>", ">west\" } object Zone \"x</zone>"),
    )
    .unwrap();
    // The hidden-style edge cases fail per machine with this backend too.
    let deep = format!(
        "<?xml version=\"1.0\"?><profile><lcfg><components>{}{}</components></lcfg></profile>",
        "<a>".repeat(10_000),
        "</a>".repeat(10_000)
    );
    std::fs::write(profiles.join("deep.xml"), deep).unwrap();
    let out = dir.path().join("out");
    let mut args = sample_args(&out);
    args[3] = profiles.display().to_string();
    let (summary, code) = once(&strs(&args));
    assert_eq!(code, 1, "{summary:#}");
    let errors = summary["report"]["errors"].as_array().unwrap();
    let zone_error = errors
        .iter()
        .find(|e| e["machine"] == "web2.example.org")
        .unwrap_or_else(|| panic!("{errors:#?}"));
    let message = zone_error["message"].as_str().unwrap();
    assert!(
        message.contains("names zone") && message.contains("which the configuration does not have"),
        "{message}"
    );
    assert!(
        zone_error["file"].as_str().unwrap().ends_with("web2.xml"),
        "{zone_error}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e["file"].as_str().is_some_and(|f| f.ends_with("deep.xml"))),
        "{errors:#?}"
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
    // The other machines compiled, and the tree still validates everywhere.
    let text = tree_text(&out);
    assert!(!text.contains("object Host \"web2.example.org\""), "{text}");
    assert!(text.contains("object Host \"web1.example.org\""));
    assert!(text.contains("object Host \"kdc2.example.org\""));
    // Zone web is empty now (its one machine is left out); every node, its own too,
    // still validates with no warning: no notification rule is written where it would
    // match nothing.
    for n in nodes(&summary) {
        assert!(
            n.2 && n.3 == 0 && n.4 == 0,
            "{n:?}: {:#}",
            summary["icinga2_validation"]
        );
    }
}

#[test]
fn the_nagios_backend_writes_one_hostgroup_per_zone() {
    let dir = readable_tempdir();
    let out = dir.path().join("out");
    let mut args = sample_args(&out);
    args.extend(["--backend".into(), "nagios".into()]);
    args.extend(["--nagios-bin".into(), nagios_bin().display().to_string()]);
    let (summary, code) = once(&strs(&args));
    assert_eq!(code, 0, "{summary:#}");
    assert_eq!(summary["validation"]["ok"], true, "{summary:#}");
    let base = std::fs::read_to_string(out.join("00-base.cfg")).unwrap();
    for z in ["master", "web", "kdc"] {
        assert!(
            base.contains(&format!("hostgroup_name                  mc-zone-{z}\n")),
            "{base}"
        );
    }
    // Each host names its zone's hostgroup, which is what a mod_gearman worker's
    // `hostgroups=` or a Merlin poller selects.
    let all = tree_text(&out);
    for (host, zone) in [
        ("web2.example.org", "web"),
        ("web1.example.org", "master"),
        ("kdc2.example.org", "kdc"),
        ("jabber1.example.org", "master"),
    ] {
        let block = all
            .split("define host {")
            .find(|b| b.contains(&format!("host_name                       {host}\n")))
            .unwrap();
        assert!(
            block.contains(&format!("hostgroups                      mc-zone-{zone}\n")),
            "{block}"
        );
    }
}

// --- The daemon in front of a real icinga2 ---

struct Site {
    dir: tempfile::TempDir,
    daemon: Option<Child>,
    icinga: Option<Icinga>,
}

impl Site {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("daemon.log")).unwrap_or_default()
    }

    fn status_json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(self.path("state/status.json")).ok()?).ok()
    }

    fn wait(&self, what: &str, mut ok: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(120);
        while Instant::now() < end {
            if ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let icinga_log = self.icinga.as_ref().map(|i| i.log()).unwrap_or_default();
        panic!(
            "gave up waiting for {what}\n--- daemon log ---\n{}\n--- icinga2 log ---\n{icinga_log}",
            self.log()
        );
    }

    fn services(&self) -> Vec<(String, String)> {
        self.icinga
            .as_ref()
            .and_then(|i| i.client().service_names().ok())
            .unwrap_or_default()
    }

    fn write(&self, rel: &str, text: &str) {
        let tmp = self.path(&format!("{rel}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(tmp, self.path(rel)).unwrap();
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.icinga.take();
    }
}

fn flaky(m: &str) -> String {
    profile_xml(
        m,
        "flaky",
        "<flaky><nagios_groups>infrastructure</nagios_groups></flaky>",
    )
}

#[test]
fn the_daemon_deploys_to_a_running_icinga2_and_reports_through_its_api() {
    let dir = readable_tempdir();
    let d = dir.path();
    for sub in ["profiles", "translators", "state", "icinga"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    // The samples without their zones: this site is one master.
    for f in ["kdc1.xml", "jabber1.xml"] {
        let text = std::fs::read_to_string(samples().join(f)).unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.contains("<zone"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(d.join("profiles").join(f), text).unwrap();
    }
    std::fs::copy(&plugin_libs().flaky_v1, d.join("translators/flaky.so")).unwrap();
    let setup = Icinga::prepare(&d.join("icinga"), "master");
    let live = d.join("live");
    let ca = setup.pki.ca_crt.display().to_string();
    let password_file = setup.api.password_file.display().to_string();
    let pid_file = setup.dir.join("var/run/icinga2.pid");
    let cfg = format!(
        "backend = \"icinga2\"\nprofiles = [\"{d}/profiles\"]\ntranslators = [\"{d}/translators\"]\nusers = \"{users}\"\n\
         output = \"{live}\"\nstate_dir = \"{d}/state\"\ndebounce_ms = 200\nrescan_seconds = 2\nerror_grace_seconds = 1\n\
         submit_delay_seconds = 1\n\
         [reload]\nmethod = \"icinga2-signal\"\npid_file = \"{pid}\"\n\
         [zones]\nmaster = \"master\"\nmaster_endpoints = [{{ name = \"{node}\" }}]\n\
         [icinga2]\nbin = \"{bin}\"\nvalidate_user = \"root\"\nresults = \"api\"\n\
         [icinga2.api]\nurl = \"{url}\"\nca_file = \"{ca}\"\nuser = \"{user}\"\npassword_file = \"{password_file}\"\n",
        d = d.display(),
        users = samples().join("users.toml").display(),
        live = live.display(),
        pid = pid_file.display(),
        node = NODE_NAME,
        bin = icinga2_bin().display(),
        url = setup.api.url,
        user = setup.api.user,
    );
    std::fs::write(d.join("monitor-compile.toml"), cfg).unwrap();
    let main = setup.write_main_conf(&format!("include \"{}/zones.conf\"\n", live.display()));
    let log = std::fs::File::create(d.join("daemon.log")).unwrap();
    let mut site = Site {
        daemon: None,
        icinga: None,
        dir,
    };
    site.daemon = Some(
        compiler()
            .arg("--config")
            .arg(site.path("monitor-compile.toml"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    // The first set is deployed before icinga2 runs (there is nothing to reload yet).
    site.wait("the first deploy", || live.join("zones.conf").exists());
    site.icinga = Some(Icinga::start(setup, &main, &live.join("zones.d")));
    site.wait("icinga2 to load the sample services", || {
        let s = site.services();
        s.contains(&("kdc1.example.org".into(), "Kerberos KDC".into()))
            && s.contains(&("kdc1.example.org".into(), "monitoring: kerberos".into()))
    });

    // 1. A profile change appears in /v1/objects/services.
    site.write("profiles/new1.xml", &flaky("new1"));
    site.wait("the new machine's service in icinga2", || {
        site.services()
            .contains(&("new1.example.org".into(), "Flaky v1".into()))
    });
    let client = site.icinga.as_ref().unwrap().client();
    site.wait("the compile result of new1 through the API", || {
        client
            .service_state("new1.example.org", "monitoring: flaky")
            .ok()
            .flatten()
            .is_some_and(|s| s.state == 0)
    });

    // 2. A set icinga2 rejects is not deployed: the live one stays.
    let before = std::fs::read_link(&live).unwrap();
    site.write("profiles/reject1.xml", &flaky("reject1"));
    site.wait("a rejection", || {
        site.status_json().is_some_and(|s| s["deploy"]["result"] == "rejected")
    });
    assert_eq!(std::fs::read_link(&live).unwrap(), before, "the live set is unchanged");
    let status = site.status_json().unwrap();
    let errors = status["deploy"]["errors"].to_string();
    assert!(
        errors.contains("max_check_attempts") && errors.contains("reject1"),
        "{status:#}"
    );
    site.wait("the deploy service to say so", || {
        client
            .service_state("monitor-compile", monitor_engine::DEPLOY_SERVICE)
            .ok()
            .flatten()
            .is_some_and(|s| s.state == 2)
    });
    assert!(!site.services().iter().any(|(h, _)| h == "reject1.example.org"));
    std::fs::remove_file(site.path("profiles/reject1.xml")).unwrap();

    // 3. A broken profile's `monitoring:` service goes CRITICAL through the API, and its
    //    machine keeps its last good configuration.
    site.write("profiles/kdc1.xml", "<?xml version=\"1.0\"?><profile><lcfg>");
    site.wait("monitoring: kerberos on kdc1 CRITICAL", || {
        client
            .service_state("kdc1.example.org", "monitoring: kerberos")
            .ok()
            .flatten()
            .is_some_and(|s| s.state == 2 && s.last_check_result_output.is_some_and(|o| o.contains("kdc1.xml")))
    });
    assert!(
        site.services()
            .contains(&("kdc1.example.org".into(), "Kerberos KDC".into()))
    );
}
