//! The daemon end to end, against a real Nagios: `nagios4 -d` on a temporary directory
//! with its own main config and command file, and the real `monitor-compile` daemon.
//! Waits are bounded polls of Nagios's status.dat or the daemon's status.json, never
//! timing assertions.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use monitor_engine::machine_file;
use monitor_integration_tests::{nagios_bin, plugin_libs, profile_xml, samples};

struct Site {
    dir: tempfile::TempDir,
    daemon: Option<Child>,
    extra_env: Vec<(String, String)>,
    /// Flags added to the daemon's command line.
    extra_args: Vec<String>,
}

impl Site {
    fn new() -> Site {
        Site::with_reload(true)
    }

    /// A site whose daemon does not reload Nagios (tests that run no Nagios).
    fn without_nagios() -> Site {
        Site::with_reload(false)
    }

    fn with_reload(reload: bool) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in ["profiles", "translators", "nagios", "var/checkresults", "state"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        for f in ["kdc1.xml", "jabber1.xml", "web1.xml"] {
            std::fs::copy(samples().join(f), d.join("profiles").join(f)).unwrap();
        }
        std::fs::copy(&plugin_libs().flaky_v1, d.join("translators/flaky.so")).unwrap();
        let v = d.join("var");
        let main = format!(
            "cfg_dir={live}\nresource_file={n}/resource.cfg\ncheck_result_path={v}/checkresults\ntemp_path={v}\n\
             lock_file={v}/nagios.lock\nlog_file={v}/nagios.log\nstatus_file={v}/status.dat\n\
             retain_state_information=1\nstate_retention_file={v}/retention.dat\nobject_cache_file={v}/objects.cache\n\
             precached_object_file={v}/objects.precache\ncommand_file={v}/nagios.cmd\ncheck_external_commands=1\n\
             command_check_interval=-1\nstatus_update_interval=1\nexecute_service_checks=0\nexecute_host_checks=0\n\
             nagios_user=root\nnagios_group=root\nillegal_object_name_chars=`~!$%^&*|'\"<>?,()=\n\
             illegal_macro_output_chars=`~$&|'\"<>\n",
            live = d.join("nagios/generated").display(),
            n = d.join("nagios").display(),
            v = v.display()
        );
        std::fs::write(d.join("nagios/nagios.cfg"), main).unwrap();
        std::fs::write(d.join("nagios/resource.cfg"), "$USER1$=/usr/lib/nagios/plugins\n").unwrap();
        let cfg = format!(
            "profiles = [\"{d}/profiles\"]\ntranslators = [\"{d}/translators\"]\nusers = \"{users}\"\noutput = \"{d}/nagios/generated\"\n\
             state_dir = \"{d}/state\"\nnagios_config = \"{d}/nagios/nagios.cfg\"\nnagios_bin = \"{bin}\"\ncommand_file = \"{d}/var/nagios.cmd\"\n\
             debounce_ms = 200\nrescan_seconds = 2\nerror_grace_seconds = 2\nsubmit_delay_seconds = 1\n{reload}",
            reload = if reload { "" } else { "[reload]\nmethod = \"none\"\n" },
            d = d.display(),
            users = samples().join("users.toml").display(),
            bin = nagios_bin().display()
        );
        std::fs::write(d.join("monitor-compile.toml"), cfg).unwrap();
        Site {
            dir,
            daemon: None,
            extra_env: Vec::new(),
            extra_args: Vec::new(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn start_daemon(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("daemon.log"))
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_monitor-compile"));
        cmd.arg("--config")
            .arg(self.path("monitor-compile.toml"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd.args(&self.extra_args);
        self.daemon = Some(cmd.spawn().expect("start the daemon"));
    }

    fn stop_daemon(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }

    fn start_nagios(&self) {
        let st = Command::new(nagios_bin())
            .arg("-d")
            .arg(self.path("nagios/nagios.cfg"))
            .status()
            .unwrap();
        assert!(st.success(), "nagios4 -d failed: {}", self.log());
    }

    fn daemon_alive(&self) -> bool {
        // Running, not a zombie.
        self.daemon.as_ref().is_some_and(|d| {
            std::fs::read_to_string(format!("/proc/{}/stat", d.id())).is_ok_and(|st| {
                st.rsplit(')')
                    .next()
                    .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
            })
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("daemon.log")).unwrap_or_default()
    }

    fn status_json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(self.path("state/status.json")).ok()?).ok()
    }

    /// Every servicestatus block of status.dat, as directive maps.
    fn services(&self) -> Vec<HashMap<String, String>> {
        let text = std::fs::read_to_string(self.path("var/status.dat")).unwrap_or_default();
        let mut out = Vec::new();
        for block in text.split("servicestatus {").skip(1) {
            let body = block.split('}').next().unwrap_or_default();
            out.push(
                body.lines()
                    .filter_map(|l| l.trim().split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        }
        out
    }

    fn service(&self, host: &str, desc: &str) -> Option<HashMap<String, String>> {
        self.services().into_iter().find(|s| {
            s.get("host_name").map(String::as_str) == Some(host)
                && s.get("service_description").map(String::as_str) == Some(desc)
        })
    }

    fn wait(&self, what: &str, mut ok: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(90);
        while Instant::now() < end {
            if ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("gave up waiting for {what}\n--- daemon log ---\n{}", self.log());
    }

    fn live_target(&self) -> PathBuf {
        std::fs::read_link(self.path("nagios/generated")).unwrap()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Ok(pid) = std::fs::read_to_string(self.path("var/nagios.lock")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn state(s: &HashMap<String, String>) -> (&str, &str) {
    (s["current_state"].as_str(), s["plugin_output"].as_str())
}

impl Site {
    /// Put top-level keys before any table of the daemon's configuration file, or a
    /// table (`[name]` ...) after them.
    fn configure(&self, top: &str, tables: &str) {
        let path = self.path("monitor-compile.toml");
        let cfg = std::fs::read_to_string(&path).unwrap();
        let cfg = if top.contains("rescan_seconds") {
            cfg.replace("rescan_seconds = 2\n", "")
        } else {
            cfg
        };
        std::fs::write(&path, format!("{top}\n{cfg}\n{tables}\n")).unwrap();
    }

    fn run_cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_monitor-compile"))
            .args(args)
            .arg("--config")
            .arg(self.path("monitor-compile.toml"))
            .output()
            .unwrap()
    }

    fn signal(&self, sig: &str) {
        let pid = self.daemon.as_ref().unwrap().id().to_string();
        assert!(Command::new("kill").args([sig, &pid]).status().unwrap().success());
    }

    /// Lines of Nagios's log that are passive results it accepted.
    fn results_in_nagios_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("var/nagios.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("EXTERNAL COMMAND: PROCESS_SERVICE_CHECK_RESULT"))
            .map(str::to_string)
            .collect()
    }

    fn stop_nagios(&self) {
        let lock = self.path("var/nagios.lock");
        if let Ok(pid) = std::fs::read_to_string(&lock) {
            let pid = pid.trim().to_string();
            let _ = Command::new("kill").arg(&pid).status();
            self.wait("Nagios to stop", || !Path::new(&format!("/proc/{pid}")).exists());
        }
    }
}

/// A daemon without Nagios and without periodic rescans (so that only the watches can
/// start a pass), after its first deploy; `tables` is added to its configuration.
fn quiet_site(tables: &str) -> Site {
    let mut site = Site::without_nagios();
    site.configure("rescan_seconds = 600", tables);
    site.start_daemon();
    site.wait("the first deploy", || {
        site.status_json().is_some_and(|s| s["deploy"]["result"] == "deployed")
    });
    site
}

/// Start the daemon (its first deploy happens before Nagios runs), then Nagios.
fn running_site() -> Site {
    running(Site::new())
}

fn running(mut site: Site) -> Site {
    site.start_daemon();
    site.wait("the first deploy", || {
        site.path("nagios/generated").exists() && site.status_json().is_some()
    });
    site.start_nagios();
    site.wait("Nagios to load the sample hosts", || {
        site.service("kdc1.example.org", "Kerberos KDC").is_some()
    });
    site
}

/// Add (or rewrite) machine `m`, monitored for the flaky plugin's component.
fn add_flaky(site: &Site, m: &str) {
    write(
        site,
        &format!("profiles/{m}.xml"),
        &profile_xml(
            m,
            "flaky",
            "<flaky><nagios_groups>infrastructure</nagios_groups></flaky>",
        ),
    );
}

fn write(site: &Site, rel: &str, text: &str) {
    let tmp = site.path(&format!("{rel}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, site.path(rel)).unwrap();
}

#[test]
fn daemon_deploys_reports_and_keeps_last_good_config() {
    let site = running_site();
    // 1. Nagios runs the generated configuration.
    for (h, d) in [
        ("jabber1.example.org", "Jabber SSL"),
        ("web1.example.org", "vhost www.example.org"),
        ("monitor-compile-clusters", "Cluster kdc-EXAMPLE.ORG"),
    ] {
        assert!(site.service(h, d).is_some(), "{d} on {h}");
    }
    site.wait("OK results for every monitoring service", || {
        site.service("kdc1.example.org", "monitoring: kerberos")
            .is_some_and(|s| state(&s) == ("0", "OK: kerberos compiled"))
    });

    // Sets share the files that did not change (hard links), so a deploy writes little.
    let base_inode = |set: &std::path::Path| {
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(set.join("00-base.cfg")).unwrap())
    };
    let first_set = site.live_target();

    // 2. A profile gains a component: a new service appears after the reload.
    let xml = |comps: &str| {
        profile_xml(
            "ok1",
            comps,
            "<flaky><nagios_groups>infrastructure</nagios_groups></flaky>",
        )
    };
    write(&site, "profiles/ok1.xml", &xml(""));
    site.wait("the daemon to see ok1", || {
        site.status_json().is_some_and(|s| s["files"] == 4)
    });
    assert!(site.service("ok1.example.org", "Flaky v1").is_none());
    write(&site, "profiles/ok1.xml", &xml("flaky"));
    site.wait("the new service in status.dat", || {
        site.service("ok1.example.org", "Flaky v1").is_some()
    });
    let second_set = site.live_target();
    assert_ne!(second_set, first_set);
    assert_eq!(
        base_inode(&second_set),
        base_inode(&first_set),
        "unchanged files are hard-linked between sets"
    );

    // 3. A broken profile keeps its last good services, goes CRITICAL with the error, and
    //    turns OK when fixed.
    let good = std::fs::read_to_string(site.path("profiles/jabber1.xml")).unwrap();
    write(&site, "profiles/jabber1.xml", &good[..good.len() / 2]);
    site.wait("CRITICAL for the broken profile", || {
        site.service("jabber1.example.org", "monitoring: jabberd")
            .is_some_and(|s| s["current_state"] == "2")
    });
    let crit = site.service("jabber1.example.org", "monitoring: jabberd").unwrap();
    assert!(
        crit["plugin_output"].starts_with("CRITICAL: ") && crit["plugin_output"].contains("jabber1.xml:"),
        "{crit:?}"
    );
    assert!(
        site.service("jabber1.example.org", "Jabber SSL").is_some(),
        "last good services kept"
    );
    let live = site.path("nagios/generated").join(machine_file("jabber1.example.org"));
    assert!(std::fs::read_to_string(live).unwrap().contains("Jabber SSL"));
    write(&site, "profiles/jabber1.xml", &good);
    site.wait("OK after the fix", || {
        site.service("jabber1.example.org", "monitoring: jabberd")
            .is_some_and(|s| s["current_state"] == "0")
    });

    // 7. An error text cannot inject an external command: it arrives as one clean line.
    add_flaky(&site, "inject1");
    site.wait("CRITICAL for inject1", || {
        site.service("inject1.example.org", "monitoring: flaky")
            .is_some_and(|s| s["current_state"] == "2")
    });
    let s = site.service("inject1.example.org", "monitoring: flaky").unwrap();
    assert_eq!(
        s["plugin_output"],
        "CRITICAL: bad value [0] PROCESS_HOST_CHECK_RESULT,inject1.example.org,1,pwned, / perf=1"
    );
    assert_eq!(s.get("performance_data").map(String::as_str), Some(""));
    let nagios_log = std::fs::read_to_string(site.path("var/nagios.log")).unwrap();
    assert!(
        !nagios_log.contains("PROCESS_HOST_CHECK_RESULT;inject1"),
        "no injected command reached Nagios"
    );

    // status reports the last pass.
    let out = Command::new(env!("CARGO_BIN_EXE_monitor-compile"))
        .args(["status", "--format", "json", "--config"])
        .arg(site.path("monitor-compile.toml"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["machines"], 5);
    assert!(st["deploy"]["result"].is_string());
}

#[test]
fn a_configuration_nagios_rejects_is_not_deployed_and_is_kept() {
    let site = running_site();
    let before = site.live_target();
    let before_cfg = std::fs::read_to_string(site.path("nagios/generated/00-base.cfg")).unwrap();
    // An error nagios -v finds outside any machine (here a broken site file beside our
    // output): no machine can be held for it, so the whole set is.
    std::fs::write(
        site.path("nagios/broken.cfg"),
        "define host {\n    host_name broken\n}\n",
    )
    .unwrap();
    let main = std::fs::read_to_string(site.path("nagios/nagios.cfg")).unwrap();
    std::fs::write(
        site.path("nagios/nagios.cfg"),
        format!("{main}cfg_file={}\n", site.path("nagios/broken.cfg").display()),
    )
    .unwrap();
    add_flaky(&site, "new1");
    site.wait("a rejection", || {
        site.status_json().is_some_and(|s| s["deploy"]["result"] == "rejected")
    });
    assert!(
        site.log()
            .contains("an error that names no machine: the whole set is held"),
        "{}",
        site.log()
    );
    assert_eq!(site.live_target(), before, "the live configuration is unchanged");
    assert_eq!(
        std::fs::read_to_string(site.path("nagios/generated/00-base.cfg")).unwrap(),
        before_cfg
    );
    let status = site.status_json().unwrap();
    let kept = PathBuf::from(status["deploy"]["kept_at"].as_str().unwrap());
    assert!(
        kept.join(machine_file("new1.example.org")).exists(),
        "the rejected set is kept for inspection"
    );
    let errors = status["deploy"]["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e.as_str().unwrap().contains("broken.cfg")),
        "{errors:?}"
    );
    assert!(
        site.log().contains("configuration rejected by nagios -v"),
        "{}",
        site.log()
    );
    assert!(site.service("new1.example.org", "Flaky v1").is_none());

    // status tells it as text: the rejection, Nagios's own errors, and the count.
    let human = Command::new(env!("CARGO_BIN_EXE_monitor-compile"))
        .args(["status", "--config"])
        .arg(site.path("monitor-compile.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    let n = errors.len();
    assert!(text.contains("daemon: running (pid "), "{text}");
    assert!(
        text.contains(&format!("errors: {n} (0 from compiling, {n} from nagios -v)")),
        "{text}"
    );
    assert!(text.contains("last deploy: REJECTED by nagios -v"), "{text}");
    assert!(
        text.contains("  nagios: Error: ") && !text.contains("Array ["),
        "{text}"
    );
    assert!(
        text.contains("phases: scan ") && text.contains(" ms, validate "),
        "{text}"
    );
    let last_pass = text.lines().find(|l| l.starts_with("last pass: ")).unwrap();
    assert!(last_pass.contains("Z (") && last_pass.contains(" ago)"), "{last_pass}");
    // Nagios runs the old set: its deploy service says why the new one is not live.
    site.wait("the deploy service CRITICAL", || {
        site.service("monitor-compile", "monitor-compile: deploy")
            .is_some_and(|s| {
                s["current_state"] == "2"
                    && s["plugin_output"].starts_with("CRITICAL: nagios -v rejected the new configuration")
            })
    });
}

#[test]
fn restarting_with_unchanged_profiles_parses_and_translates_nothing() {
    let mut site = Site::without_nagios();
    site.start_daemon();
    site.wait("the first pass", || site.status_json().is_some());
    let first = site.status_json().unwrap();
    assert_eq!(first["parsed"], 3);
    site.stop_daemon();
    std::fs::remove_file(site.path("state/status.json")).unwrap();
    site.start_daemon();
    site.wait("a pass after the restart", || site.status_json().is_some());
    let after = site.status_json().unwrap();
    assert_eq!(
        (
            after["parsed"].as_u64(),
            after["translated"].as_u64(),
            after["cache_hits"].as_u64()
        ),
        (Some(0), Some(0), Some(3))
    );
    assert_eq!(after["deploy"]["result"], "unchanged", "{after}");
}

#[test]
fn a_corrupt_cache_is_discarded_and_rebuilt() {
    let mut site = Site::without_nagios();
    std::fs::write(site.path("state/cache.redb"), b"this is not a redb database").unwrap();
    site.start_daemon();
    site.wait("a pass", || site.status_json().is_some());
    assert_eq!(site.status_json().unwrap()["parsed"], 3);
    assert!(
        site.log().contains("discarding the cache store and rebuilding it"),
        "{}",
        site.log()
    );
}

#[test]
fn kill_9_during_a_deploy_leaves_a_valid_live_configuration() {
    for point in ["staged", "validated", "renamed", "swapped"] {
        let mut site = Site::without_nagios();
        // A first, complete deploy.
        site.start_daemon();
        site.wait("the first deploy", || site.status_json().is_some());
        site.stop_daemon();
        let first = site.live_target();
        // A change, deployed by a daemon that stops at `point` and is killed there.
        write(
            &site,
            "profiles/ok1.xml",
            &profile_xml(
                "ok1",
                "flaky",
                "<flaky><nagios_groups>infrastructure</nagios_groups></flaky>",
            ),
        );
        site.extra_args = vec!["--test-pause-at".into(), point.into()];
        site.start_daemon();
        let marker = site.path(&format!("state/paused-at-{point}"));
        site.wait(&format!("the daemon to pause at {point}"), || marker.exists());
        let pid = site.daemon.as_ref().unwrap().id();
        assert!(
            Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .unwrap()
                .success()
        );
        let _ = site.daemon.take().unwrap().wait();

        let live = site.live_target();
        let new = live != first;
        assert_eq!(
            new,
            point == "swapped",
            "at {point} the live set is the {}",
            if new { "new" } else { "old" }
        );
        // As this site's Nagios runs: as root (`nagios_user=root`).
        let check =
            monitor_runtime::validate::validate_dir_as(&nagios_bin(), &site.path("nagios/generated"), None).unwrap();
        assert!(check.ok, "after kill -9 at {point}: {}", check.output);
        let machine = site.path("nagios/generated").join(machine_file("ok1.example.org"));
        let has_ok1 =
            |p: &std::path::Path| std::fs::read_to_string(p).is_ok_and(|t| t.contains("# machine ok1.example.org"));
        assert_eq!(has_ok1(&machine), new, "a whole set, never a mix, at {point}");

        // A restart cleans up and completes the deploy.
        std::fs::remove_file(&marker).unwrap();
        site.extra_args.clear();
        std::fs::remove_file(site.path("state/status.json")).unwrap();
        site.start_daemon();
        site.wait("the deploy after restart", || site.status_json().is_some());
        assert!(has_ok1(&machine), "the change is deployed after the restart at {point}");
        let leftovers: Vec<_> = std::fs::read_dir(site.path("state/sets"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".staging"))
            .collect();
        assert!(leftovers.is_empty(), "staging left over after {point}");
    }
}

#[test]
fn sighup_rereads_the_configuration() {
    let mut site = Site::without_nagios();
    site.start_daemon();
    site.wait("the first pass", || site.status_json().is_some());
    // Point the daemon at a second profile directory holding one more machine.
    std::fs::create_dir_all(site.path("more")).unwrap();
    std::fs::copy(samples().join("kdc2.xml"), site.path("more/kdc2.xml")).unwrap();
    let cfg = std::fs::read_to_string(site.path("monitor-compile.toml"))
        .unwrap()
        .replacen(
            "profiles = [",
            &format!("profiles = [\"{}\", ", site.path("more").display()),
            1,
        );
    std::fs::write(site.path("monitor-compile.toml"), cfg).unwrap();
    let pid = site.daemon.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    site.wait("the new directory to be compiled", || {
        site.status_json().is_some_and(|s| s["files"] == 4)
    });
    let shard = std::fs::read_to_string(site.path("nagios/generated").join(machine_file("kdc2.example.org"))).unwrap();
    assert!(shard.contains("# machine kdc2.example.org"));
    site.stop_daemon();
}

#[test]
fn a_profile_being_written_is_retried_not_reported_at_once() {
    let mut site = Site::new();
    let cfg = std::fs::read_to_string(site.path("monitor-compile.toml"))
        .unwrap()
        .replace("error_grace_seconds = 2", "error_grace_seconds = 600");
    std::fs::write(site.path("monitor-compile.toml"), cfg).unwrap();
    site.start_daemon();
    site.wait("the first deploy", || {
        site.path("nagios/generated").exists() && site.status_json().is_some()
    });
    site.start_nagios();
    site.wait("OK for kdc1", || {
        site.service("kdc1.example.org", "monitoring: kerberos")
            .is_some_and(|s| s["current_state"] == "0")
    });
    // Half a file, as a writer would leave it for a moment: pending, not CRITICAL.
    let good = std::fs::read_to_string(site.path("profiles/kdc1.xml")).unwrap();
    std::fs::write(site.path("profiles/kdc1.xml"), &good[..good.len() / 2]).unwrap();
    site.wait("the pending profile", || {
        site.status_json()
            .is_some_and(|s| s["pending_profiles"].as_array().is_some_and(|a| !a.is_empty()))
    });
    // Results are resubmitted every rescan (2 s): wait for two more passes.
    let passes = |s: &Site| {
        s.status_json()
            .map(|j| j["started_at"].as_u64().unwrap_or(0))
            .unwrap_or(0)
    };
    let t0 = passes(&site);
    site.wait("two more passes", || passes(&site) >= t0 + 4);
    assert_eq!(
        site.service("kdc1.example.org", "monitoring: kerberos").unwrap()["current_state"],
        "0",
        "not reported during the grace period"
    );
    // The writer finishes: the next event retries it, and nothing was ever reported.
    std::fs::write(site.path("profiles/kdc1.xml"), &good).unwrap();
    site.wait("the profile to be good again", || {
        site.status_json().is_some_and(|s| {
            s["pending_profiles"].as_array().is_some_and(|a| a.is_empty())
                && s["errors"].as_array().is_some_and(|e| e.is_empty())
        })
    });
    assert_eq!(
        site.service("kdc1.example.org", "monitoring: kerberos").unwrap()["current_state"],
        "0"
    );
}

#[test]
fn a_mass_removal_is_held_until_an_administrator_approves_it() {
    // Three site folders; two of them vanish (a failed mount), and the daemon is told to
    // re-read its configuration.
    let site = Site::new();
    for (f, sub) in [("jabber1.xml", "b"), ("web1.xml", "c")] {
        std::fs::create_dir_all(site.path(&format!("profiles/{sub}"))).unwrap();
        std::fs::rename(
            site.path(&format!("profiles/{f}")),
            site.path(&format!("profiles/{sub}/{f}")),
        )
        .unwrap();
    }
    site.configure("admin_groups = [\"infrastructure\"]", "");
    let mut site = running(site);
    // Told once, and truthfully: the first set went in before Nagios ran.
    let first = site
        .log()
        .lines()
        .find(|l| l.contains(" deployed"))
        .unwrap_or_default()
        .to_string();
    assert!(
        first.contains("deployed; Nagios could not be reloaded"),
        "{}",
        site.log()
    );
    site.wait("the deploy service OK", || {
        site.service("monitor-compile", "monitor-compile: deploy")
            .is_some_and(|s| s["current_state"] == "0" && s["plugin_output"].starts_with("OK: configuration "))
    });
    let before = site.live_target();
    std::fs::rename(site.path("profiles/b"), site.path("away-b")).unwrap();
    std::fs::rename(site.path("profiles/c"), site.path("away-c")).unwrap();
    site.signal("-HUP");
    site.wait("the set to be held", || {
        site.status_json().is_some_and(|s| s["deploy"]["result"] == "held")
    });
    assert_eq!(site.live_target(), before, "the live configuration is unchanged");
    let st = site.status_json().unwrap();
    let reasons = st["held"]["reasons"].to_string();
    assert!(reasons.contains("it removes 2 of 5 hosts"), "{st}");
    assert_eq!(
        st["held"]["removal"]["removed_hosts"],
        serde_json::json!(["jabber1.example.org", "web1.example.org"])
    );
    assert!(
        site.log().contains("ERROR") && site.log().contains("held by the removal guard"),
        "{}",
        site.log()
    );
    site.wait("the deploy service CRITICAL in Nagios", || {
        site.service("monitor-compile", "monitor-compile: deploy")
            .is_some_and(|s| {
                s["current_state"] == "2"
                    && s["plugin_output"].starts_with("CRITICAL: new configuration held: it removes 2 of 5 hosts")
            })
    });
    assert!(
        site.service("jabber1.example.org", "Jabber SSL").is_some(),
        "still monitored"
    );
    let human = site.run_cli(&["status"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("daemon: running"), "{text}");
    assert!(
        text.contains("HELD since ") && text.contains("monitor-compile approve"),
        "{text}"
    );
    assert!(text.contains("removes 2 hosts"), "{text}");

    // The administrator accepts it: deployed at once.
    let r = site.run_cli(&["approve"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stderr).contains("deploys it now"));
    site.wait("the approved set deployed", || {
        site.status_json()
            .is_some_and(|s| s["deploy"]["result"] == "deployed" && s["held"].is_null())
    });
    site.wait("jabber1 gone from Nagios", || {
        site.service("jabber1.example.org", "Jabber SSL").is_none()
            && site.service("kdc1.example.org", "Kerberos KDC").is_some()
    });
    site.wait("the deploy service OK again", || {
        site.service("monitor-compile", "monitor-compile: deploy")
            .is_some_and(|s| s["current_state"] == "0")
    });
    assert!(!site.path("state/approved-set").exists(), "an approval is used once");
    site.stop_daemon();
}

#[test]
fn empty_missing_or_replaced_profile_directories_never_become_an_empty_configuration() {
    let mut site = quiet_site("");
    let before = site.live_target();
    // Emptied (a sync that removed everything first).
    std::fs::rename(site.path("profiles"), site.path("profiles.old")).unwrap();
    std::fs::create_dir(site.path("profiles")).unwrap();
    site.wait("an empty directory to hold the pass", || {
        site.status_json()
            .is_some_and(|s| s["held"]["reasons"].to_string().contains("holds no profiles"))
    });
    assert_eq!(site.live_target(), before);
    // Missing (an unmounted file system).
    std::fs::remove_dir(site.path("profiles")).unwrap();
    site.wait("a missing directory to hold the pass", || {
        site.status_json()
            .is_some_and(|s| s["held"]["reasons"].to_string().contains("is missing"))
    });
    assert_eq!(site.live_target(), before);
    assert!(
        site.log()
            .contains("the pass is held and the live configuration is unchanged")
    );
    // Replaced by a rename (a remount): the new directory is watched, not the old one.
    std::fs::write(
        site.path("profiles.old/ok1.xml"),
        profile_xml(
            "ok1",
            "flaky",
            "<flaky><nagios_groups>infrastructure</nagios_groups></flaky>",
        ),
    )
    .unwrap();
    std::fs::rename(site.path("profiles.old"), site.path("profiles")).unwrap();
    site.wait("the directory back, with its new machine", || {
        site.status_json()
            .is_some_and(|s| s["files"] == 4 && s["held"].is_null() && s["deploy"]["result"] == "deployed")
    });
    // A change inside the replaced directory is seen without waiting for a rescan.
    add_flaky(&site, "ok2");
    site.wait("a change in the replaced directory", || {
        site.status_json().is_some_and(|s| s["files"] == 5)
    });
    site.stop_daemon();
}

#[test]
fn translator_packages_installed_and_removed_are_noticed_and_removal_is_guarded() {
    let mut site = quiet_site("[removal_guard]\nfree_hosts = 0\nfree_services = 0\n");
    for m in ["ok1", "ok2", "ok3"] {
        write(
            &site,
            &format!("profiles/{m}.xml"),
            &profile_xml(
                m,
                "flaky",
                "<flaky><nagios_groups>infrastructure</nagios_groups></flaky>",
            ),
        );
    }
    site.wait("the three machines deployed", || {
        site.status_json()
            .is_some_and(|s| s["files"] == 6 && s["deploy"]["result"] == "deployed")
    });
    let shard = |m: &str| {
        std::fs::read_to_string(
            site.path("nagios/generated")
                .join(machine_file(&format!("{m}.example.org"))),
        )
        .unwrap_or_default()
    };
    assert!(shard("ok1").contains("Flaky v1"));
    // The package is uninstalled: its services would go from three machines. Held, and
    // named.
    std::fs::remove_file(site.path("translators/flaky.so")).unwrap();
    site.wait("the removal to be held", || {
        site.status_json().is_some_and(|s| s["deploy"]["result"] == "held")
    });
    let st = site.status_json().unwrap();
    assert!(
        st["held"]["removal"]["removed_by_description"]
            .to_string()
            .contains("[\"Flaky v1\",3]"),
        "{st}"
    );
    assert!(site.log().contains("translator uninstalled"), "{}", site.log());
    assert!(shard("ok1").contains("Flaky v1"), "not deployed");
    assert!(site.run_cli(&["approve"]).status.success());
    site.wait("the approved removal", || {
        site.status_json().is_some_and(|s| s["deploy"]["result"] == "deployed")
    });
    assert!(!shard("ok1").contains("Flaky v1"), "the old code no longer serves");
    // Installed again: used within the debounce, no rescan needed.
    std::fs::copy(&plugin_libs().flaky_v1, site.path("translators/flaky.so")).unwrap();
    site.wait("the new translator in use", || shard("ok1").contains("Flaky v1"));
    // A broken library is reported until it is deleted, not forever.
    std::fs::copy(&plugin_libs().bad_abi, site.path("translators/zz-bad.so")).unwrap();
    site.wait("the broken library reported", || {
        site.status_json()
            .is_some_and(|s| s["errors"].to_string().contains("broken translator library"))
    });
    std::fs::remove_file(site.path("translators/zz-bad.so")).unwrap();
    site.wait("the deleted library forgotten", || {
        site.status_json()
            .is_some_and(|s| !s["errors"].to_string().contains("broken translator library"))
    });
    site.stop_daemon();
}

#[test]
fn results_reach_a_nagios_started_later_and_deploys_submit_only_what_changed() {
    let mut site = Site::new();
    site.configure("rescan_seconds = 600", "");
    site.start_daemon();
    site.wait("the first deploy", || {
        site.path("nagios/generated").exists() && site.status_json().is_some()
    });
    // Nagios starts after the daemon (the documented order): results arrive without a
    // rescan or a SIGHUP.
    site.start_nagios();
    site.wait("OK for every monitoring service", || {
        let all: Vec<_> = site
            .services()
            .into_iter()
            .filter(|s| s["service_description"].starts_with("monitoring: "))
            .collect();
        !all.is_empty()
            && all
                .iter()
                .all(|s| s["has_been_checked"] == "1" && s["current_state"] == "0")
    });
    let first = site.results_in_nagios_log().len();
    assert!(
        site.log().contains("Nagios (re)started: submitting every result"),
        "{}",
        site.log()
    );

    // One machine changes: only its results (and the deploy's) are submitted.
    add_flaky(&site, "ok1");
    site.wait("ok1's result in Nagios", || {
        site.service("ok1.example.org", "monitoring: flaky")
            .is_some_and(|s| s["has_been_checked"] == "1" && s["current_state"] == "0")
    });
    site.wait("the deploy's result in Nagios", || {
        site.service("monitor-compile", "monitor-compile: deploy")
            .is_some_and(|s| s["has_been_checked"] == "1" && s["plugin_output"].contains("(6 hosts,"))
    });
    let lines = site.results_in_nagios_log();
    let new: Vec<&String> = lines[first..].iter().collect();
    assert!(
        !new.is_empty(),
        "{first} lines before; log: {}",
        std::fs::read_to_string(site.path("var/nagios.log")).unwrap_or_default()
    );
    assert!(
        new.iter()
            .all(|l| l.contains(";ok1.example.org;") || l.contains(";monitor-compile: deploy;")),
        "only what changed: {new:#?}\n{}",
        site.log()
    );

    // Nagios restarted by someone else, its retained state gone: every result again.
    site.stop_nagios();
    std::fs::remove_file(site.path("var/retention.dat")).ok();
    std::fs::remove_file(site.path("var/status.dat")).ok();
    site.start_nagios();
    site.wait("every result after the restart", || {
        site.service("kdc1.example.org", "monitoring: kerberos")
            .is_some_and(|s| s["has_been_checked"] == "1" && s["plugin_output"] == "OK: kerberos compiled")
    });
    site.stop_daemon();
}

/// A recorder for `mail_command` or `notifier`: writes its arguments, one per line, to
/// `out` (and its standard input beside it).
fn recorder(site: &Site, name: &str, out: &Path) -> PathBuf {
    let script = site.path(&format!("bin/{name}"));
    std::fs::create_dir_all(script.parent().unwrap()).unwrap();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{out}.tmp'\ncat > '{out}.stdin'\nmv '{out}.tmp' '{out}'\n",
            out = out.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn contact_addresses_reach_the_notifiers_intact_and_hostile_ones_are_refused() {
    let site = Site::new();
    // Addresses that are valid for their kind but full of shell syntax: only quoting keeps
    // them one literal argument.
    let email = "x&touch&y|z{a}#b~c@example.org";
    let jid = "bob@jabber.example.org/a&b|c`d`";
    let users = own_users(
        &site,
        &format!(
            "[contacts.bob]\nemail = \"{email}\"\nxmpp = \"{jid}\"\ngroups = [\"jabber\", \"infrastructure\", \"kdc\", \"www\", \"weblogin\"]\n"
        ),
    );
    let (mail_out, notify_out) = (site.path("mail.argv"), site.path("notify.argv"));
    let mail = recorder(&site, "mail", &mail_out);
    let notify = recorder(&site, "notify", &notify_out);
    site.configure(
        &format!(
            "mail_command = \"{}\"\nnotifier = \"{}\"",
            mail.display(),
            notify.display()
        ),
        "",
    );
    let site = running(site);
    let cmd = format!(
        "[{}] SEND_CUSTOM_SVC_NOTIFICATION;jabber1.example.org;monitoring: jabberd;2;tester;payload test\n",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(site.path("var/nagios.cmd"))
        .unwrap()
        .write_all(cmd.as_bytes())
        .unwrap();
    site.wait("both notifications", || mail_out.exists() && notify_out.exists());
    let mail_argv = std::fs::read_to_string(&mail_out).unwrap();
    let lines: Vec<&str> = mail_argv.lines().collect();
    assert_eq!(lines.len(), 3, "{mail_argv}");
    assert_eq!(lines[0], "-s");
    assert!(
        lines[1].starts_with("** CUSTOM Service Alert: jabber1.example.org/monitoring: jabberd is "),
        "{mail_argv}"
    );
    assert_eq!(
        lines[2], email,
        "the mail program got the address as one literal argument"
    );
    let notify_argv = std::fs::read_to_string(&notify_out).unwrap();
    assert!(
        notify_argv.starts_with(&format!("--channel\nxmpp\n--to\n{jid}\n--subject\n")),
        "{notify_argv}"
    );

    // Each hostile payload of the issue, in each address field: the users file is refused,
    // naming the file and line, and the live contacts stay as they were.
    let live_contacts = || std::fs::read_to_string(site.live_target().join("30-contacts.cfg")).unwrap();
    let before = live_contacts();
    for key in ["email", "xmpp", "slack"] {
        for payload in [
            "x@y;touch F",
            "x@y`touch F`",
            "x@y&touch F&",
            "x\" ; touch F ; echo \"",
            "`touch F`",
        ] {
            std::fs::write(
                &users,
                format!(
                    "[contacts.bob]\ngroups = [\"jabber\"]\n{key} = {}\n",
                    toml_string(payload)
                ),
            )
            .unwrap();
            let out = site.run_cli(&[
                "--once",
                "--format",
                "json",
                "--output",
                site.path("once").to_str().unwrap(),
            ]);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(!out.status.success(), "{key} = {payload:?} was accepted: {stdout}");
            assert!(
                stdout.contains(&format!("{}: invalid users file", users.display())) && stdout.contains("line 3"),
                "{key} = {payload:?}: {stdout}"
            );
        }
    }
    assert_eq!(live_contacts(), before);
    assert!(!site.path("F").exists() && !Path::new("/F").exists());
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[test]
fn a_second_daemon_on_one_state_directory_exits_naming_the_first() {
    let mut site = quiet_site("");
    let first = site.daemon.as_ref().unwrap().id();
    let state_before: Vec<_> = std::fs::read_dir(site.path("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let second = Command::new(env!("CARGO_BIN_EXE_monitor-compile"))
        .arg("--config")
        .arg(site.path("monitor-compile.toml"))
        .output()
        .unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains(&format!("another monitor-compile daemon (pid {first}) holds")),
        "{err}"
    );
    // The first is untouched and still deploys.
    assert!(site.daemon.as_mut().unwrap().try_wait().unwrap().is_none());
    for f in &state_before {
        assert!(site.path("state").join(f).exists(), "{f:?} is still there");
    }
    add_flaky(&site, "after");
    site.wait("the first daemon to deploy a change", || {
        std::fs::read_to_string(site.live_target().join(machine_file("after.example.org")))
            .is_ok_and(|t| t.contains("after.example.org"))
    });
    // Once it stops, the lock is free again.
    site.stop_daemon();
    site.start_daemon();
    site.wait("a new daemon to take the lock", || {
        std::fs::read_to_string(site.path("state/lock"))
            .is_ok_and(|p| p.trim() == site.daemon.as_ref().unwrap().id().to_string())
    });
}

/// Runs `chattr` (root and an ext4-like file system: what CI has).
fn chattr(flag: &str, path: &Path) {
    let st = Command::new("chattr").arg(flag).arg(path).status().unwrap();
    assert!(st.success(), "chattr {flag} {}", path.display());
}

#[test]
fn a_cache_file_that_cannot_be_replaced_leaves_the_daemon_running_on_memory() {
    let mut site = Site::without_nagios();
    let cache = site.path("state/cache.redb");
    std::fs::write(&cache, b"this is not a redb database").unwrap();
    chattr("+i", &cache);
    site.start_daemon();
    site.wait("a deploy", || {
        site.status_json().is_some_and(|s| s["deploy"]["result"] == "deployed")
    });
    let status = site.status_json().unwrap();
    chattr("-i", &cache);
    assert!(
        status["cache"]
            .as_str()
            .unwrap()
            .starts_with("memory only: cache store"),
        "{status}"
    );
    assert!(
        site.log().contains("RUNNING WITHOUT A PERSISTENT CACHE"),
        "{}",
        site.log()
    );
    assert_eq!(status["machines"], 3, "{status}");
}

/// A small tmpfs mounted by the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "mount a tmpfs (the test runs as root, as CI does)");
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_survived_and_the_cache_and_sets_recover() {
    let mut site = Site::without_nagios();
    let _fs = Tmpfs::mount(&site.path("state"), "4m");
    site.configure("rescan_seconds = 600", "");
    site.start_daemon();
    site.wait("the first deploy", || {
        site.status_json().is_some_and(|s| s["deploy"]["result"] == "deployed")
    });
    // Fill the disk.
    let filler = site.path("state/filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .stderr(Stdio::null())
        .status();
    add_flaky(&site, "full1");
    site.wait("a pass that cannot save", || {
        site.log().contains("cannot save the cache") && site.log().contains("deploy failed")
    });
    let staging = || {
        std::fs::read_dir(site.path("state/sets"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".staging-"))
            .count()
    };
    assert_eq!(staging(), 0, "a failed write leaves no staging directory");
    // The disk recovers: the next pass saves the cache and deploys.
    std::fs::remove_file(&filler).unwrap();
    add_flaky(&site, "full2");
    site.wait("a deploy after the disk recovered", || {
        std::fs::read_to_string(site.live_target().join(machine_file("full2.example.org")))
            .is_ok_and(|t| t.contains("full2.example.org"))
    });
    site.wait("status.json again", || {
        site.status_json().is_some_and(|s| s["cache"] == "persistent")
    });
    assert_eq!(staging(), 0);
    // Everything owed was saved: a restart parses nothing.
    site.stop_daemon();
    std::fs::remove_file(site.path("state/status.json")).unwrap();
    site.start_daemon();
    site.wait("a pass after the restart", || site.status_json().is_some());
    let after = site.status_json().unwrap();
    assert_eq!(after["parsed"], 0, "{after}");
    assert_eq!(after["machines"], 5, "{after}");
}

#[test]
fn a_configuration_that_fails_to_apply_is_not_applied_in_part() {
    let mut site = Site::without_nagios();
    site.configure("rescan_seconds = 600", "");
    site.start_daemon();
    site.wait("the first deploy", || {
        site.status_json().is_some_and(|s| s["deploy"]["result"] == "deployed")
    });
    // A new profile directory (which would apply) and a state directory that cannot be
    // made (under a regular file), which fails later.
    std::fs::create_dir_all(site.path("more")).unwrap();
    std::fs::copy(samples().join("kdc2.xml"), site.path("more/kdc2.xml")).unwrap();
    std::fs::write(site.path("notadir"), "").unwrap();
    let cfg = std::fs::read_to_string(site.path("monitor-compile.toml")).unwrap();
    let bad = cfg
        .replacen(
            "profiles = [",
            &format!("profiles = [\"{}\", ", site.path("more").display()),
            1,
        )
        .replace(
            &format!("state_dir = \"{}\"", site.path("state").display()),
            &format!("state_dir = \"{}\"", site.path("notadir/state").display()),
        );
    assert_ne!(bad, cfg);
    std::fs::write(site.path("monitor-compile.toml"), bad).unwrap();
    site.signal("-HUP");
    site.wait("the refusal", || site.log().contains("keeping the old configuration"));
    assert!(
        site.log().contains("cannot create the state directory"),
        "it failed after loading: {}",
        site.log()
    );
    // The old configuration is whole: its directories are watched, its state is used.
    add_flaky(&site, "still");
    site.wait("a change under the old configuration", || {
        std::fs::read_to_string(site.live_target().join(machine_file("still.example.org")))
            .is_ok_and(|t| t.contains("still.example.org"))
    });
    site.wait("the pass recorded", || {
        site.status_json()
            .is_some_and(|s| s["deploy"]["result"] == "deployed" && s["files"] != 3)
    });
    let status = site.status_json().unwrap();
    assert_eq!(
        status["files"], 4,
        "the new profile directory was not applied: {status}"
    );
    assert!(!site.path("notadir").is_dir());
}

/// Point the site at a users file of its own, with `text`.
fn own_users(site: &Site, text: &str) -> PathBuf {
    let users = site.path("users.toml");
    std::fs::write(&users, text).unwrap();
    let cfg = std::fs::read_to_string(site.path("monitor-compile.toml")).unwrap();
    std::fs::write(
        site.path("monitor-compile.toml"),
        cfg.replace(
            &format!("users = \"{}\"", samples().join("users.toml").display()),
            &format!("users = \"{}\"", users.display()),
        ),
    )
    .unwrap();
    users
}

#[test]
fn an_edited_users_file_takes_effect_without_a_restart() {
    let mut site = Site::without_nagios();
    let sample = std::fs::read_to_string(samples().join("users.toml")).unwrap();
    let users = own_users(&site, &sample);
    site.configure("rescan_seconds = 600", "");
    site.start_daemon();
    site.wait("the first deploy", || {
        site.status_json().is_some_and(|s| s["deploy"]["result"] == "deployed")
    });
    let contacts = || std::fs::read_to_string(site.live_target().join("30-contacts.cfg")).unwrap_or_default();
    assert!(contacts().contains("bob@example.org"));
    // As an editor saves: a new file renamed over the old one.
    let edited = sample.replace("bob@example.org", "robert@example.org");
    let tmp = site.path("users.toml.new");
    std::fs::write(&tmp, edited).unwrap();
    std::fs::rename(&tmp, &users).unwrap();
    site.wait("the new address to be live", || {
        contacts().contains("robert@example.org")
    });
    assert!(!contacts().contains("bob@example.org"));
}

#[test]
fn a_stale_pid_in_the_lock_file_is_never_signalled() {
    let mut site = Site::new();
    // The lock file names a bystander, as after Nagios died and its pid was reused.
    let mut bystander = Command::new("sleep").arg("300").spawn().unwrap();
    let lock = site.path("var/stale.lock");
    std::fs::write(&lock, format!("{}\n", bystander.id())).unwrap();
    site.configure(
        "rescan_seconds = 600",
        &format!("[reload]\nmethod = \"signal\"\nlock_file = \"{}\"\n", lock.display()),
    );
    site.start_daemon();
    site.wait("the first deploy", || site.status_json().is_some());
    add_flaky(&site, "stale1");
    site.wait("the refused reload", || site.log().contains("not signalled"));
    site.wait("the rollback", || {
        site.log().contains("the previous configuration was restored")
    });
    assert!(bystander.try_wait().unwrap().is_none(), "the bystander lives");
    assert!(
        site.log().contains(&format!("pid {} in", bystander.id())),
        "{}",
        site.log()
    );
    let _ = bystander.kill();
    let _ = bystander.wait();
}

#[test]
fn a_reload_nagios_never_saw_is_rolled_back_and_retried_when_nagios_is_back() {
    let mut site = Site::new();
    site.configure("rescan_seconds = 600", "");
    // A regular file where Nagios's command FIFO should be.
    std::fs::write(site.path("var/nagios.cmd"), "").unwrap();
    site.start_daemon();
    site.wait("the first deploy", || {
        site.path("nagios/generated").exists() && site.status_json().is_some()
    });
    let first = site.live_target();
    add_flaky(&site, "retry1");
    site.wait("the rollback", || {
        site.log().contains("not a FIFO") && site.log().contains("the previous configuration was restored")
    });
    assert_eq!(site.live_target(), first, "the live set is the previous one");
    assert!(
        !site.log().contains("deployed, and Nagios restarted on it"),
        "{}",
        site.log()
    );
    assert_eq!(
        std::fs::read_to_string(site.path("var/nagios.cmd")).unwrap(),
        "",
        "nothing was written to it"
    );
    // Nagios comes back (its FIFO in place): the deploy is retried without a change.
    std::fs::remove_file(site.path("var/nagios.cmd")).unwrap();
    site.start_nagios();
    site.wait("the retried deploy to be live in Nagios", || {
        site.service("retry1.example.org", "monitoring: flaky").is_some()
    });
    // The daemon logs once it has seen the restart in the status file too.
    site.wait("the deploy confirmed", || {
        site.log().contains("deployed, and Nagios restarted on it")
    });
}

#[test]
fn a_machine_name_with_a_semicolon_forges_no_result() {
    let site = running_site();
    site.wait("checked monitoring services", || {
        let all: Vec<_> = site
            .services()
            .into_iter()
            .filter(|s| s["service_description"].starts_with("monitoring: "))
            .collect();
        !all.is_empty() && all.iter().all(|s| s["has_been_checked"] == "1")
    });
    let before: Vec<(String, String, String, String)> = site
        .services()
        .into_iter()
        .map(|s| {
            (
                s["host_name"].clone(),
                s["service_description"].clone(),
                s["current_state"].clone(),
                s["plugin_output"].clone(),
            )
        })
        .collect();
    // The payload: a node whose name carries a forged result for web1's Apache.
    let forge = std::fs::read_to_string(samples().join("web1.xml")).unwrap().replace(
        ">example.org</domain>",
        ">example.org;monitoring: apacheconf;2;forged;x</domain>",
    );
    assert!(forge.contains("forged"));
    write(&site, "profiles/forge.xml", &forge);
    site.wait("the pass that refuses it", || {
        site.status_json().is_some_and(|s| {
            s["errors"].as_array().is_some_and(|e| {
                e.iter()
                    .any(|p| p["message"].as_str().unwrap_or("").contains("is not a host name"))
            })
        })
    });
    // Another deploy later, and the results are still every service's own.
    add_flaky(&site, "later");
    site.wait("the next deploy in Nagios", || {
        site.service("later.example.org", "monitoring: flaky")
            .is_some_and(|s| s["has_been_checked"] == "1")
    });
    for (host, desc, state_before, output_before) in before {
        let now = site.service(&host, &desc).unwrap();
        assert!(!now["plugin_output"].contains("forged"), "{host}/{desc}: {now:?}");
        if host == "web1.example.org" {
            assert_eq!(
                (now["current_state"].as_str(), now["plugin_output"].as_str()),
                (state_before.as_str(), output_before.as_str()),
                "{desc}"
            );
        }
    }
}

#[test]
fn a_machine_nagios_rejects_is_held_and_the_rest_deploys() {
    let site = running_site();
    // reject2 is live first with kerberos only; then it gains the flaky component, whose
    // output nagios -v rejects (max_check_attempts 0) though our checks pass it.
    let kdc = |comps: &str| {
        profile_xml(
            "reject2",
            comps,
            "   <kerberos><type>slave</type><realm>EXAMPLE.ORG</realm><nagios_groups>kdc</nagios_groups></kerberos>\n   <flaky><nagios_groups>infrastructure</nagios_groups></flaky>",
        )
    };
    write(&site, "profiles/reject2.xml", &kdc("kerberos"));
    site.wait("reject2 live", || {
        site.service("reject2.example.org", "monitoring: kerberos")
            .is_some_and(|s| s["has_been_checked"] == "1" && s["current_state"] == "0")
    });
    let live_reject2 = std::fs::read_to_string(site.live_target().join(machine_file("reject2.example.org"))).unwrap();
    // Its bad change, a new machine rejected outright, and a good change, together.
    write(&site, "profiles/reject2.xml", &kdc("kerberos flaky"));
    add_flaky(&site, "reject1");
    add_flaky(&site, "good1");
    site.wait("good1 live in Nagios", || {
        site.service("good1.example.org", "Flaky v1").is_some()
    });
    site.wait("the pass recorded", || {
        site.status_json()
            .is_some_and(|s| s["held_machines"].as_object().is_some_and(|m| m.len() == 2))
    });
    let status = site.status_json().unwrap();
    let held: Vec<&String> = status["held_machines"].as_object().unwrap().keys().collect();
    assert_eq!(held, ["reject1.example.org", "reject2.example.org"], "{status}");
    assert!(
        status["held_machines"]["reject2.example.org"]["errors"][0]
            .as_str()
            .unwrap()
            .contains("max_attempts"),
        "{status}"
    );
    // reject2 keeps its live text; reject1, never live, is not written.
    let live = site.live_target();
    let shard = std::fs::read_to_string(live.join(machine_file("reject2.example.org"))).unwrap();
    let block = |t: &str| {
        t[t.find("# machine reject2.example.org").unwrap()..]
            .split("\n# machine ")
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(block(&shard), block(&live_reject2));
    assert!(
        !std::fs::read_to_string(live.join(machine_file("reject1.example.org")))
            .unwrap_or_default()
            .contains("reject1")
    );
    // The held machine says so on its own services; the deploy service warns.
    site.wait("reject2's monitoring service CRITICAL", || {
        site.service("reject2.example.org", "monitoring: kerberos")
            .is_some_and(|s| {
                s["current_state"] == "2"
                    && s["plugin_output"].contains("nagios -v rejected this machine's new configuration")
            })
    });
    site.wait("the deploy service WARNING", || {
        site.service("monitor-compile", "monitor-compile: deploy")
            .is_some_and(|s| {
                s["current_state"] == "1"
                    && s["plugin_output"].contains("2 machines held")
                    && s["plugin_output"].contains("reject2.example.org")
            })
    });
    // Later changes deploy while the machines stay held.
    add_flaky(&site, "good2");
    site.wait("good2 live in Nagios", || {
        site.service("good2.example.org", "Flaky v1").is_some()
    });
    site.wait("the pass recorded", || {
        site.status_json().is_some_and(|s| s["files"] == 7)
    });
    assert_eq!(
        site.status_json().unwrap()["held_machines"].as_object().unwrap().len(),
        2
    );
    // Fixed (its flaky component gone again, as it was live) and the other removed: no
    // machine is held, and the set is the live one.
    write(&site, "profiles/reject2.xml", &kdc("kerberos"));
    std::fs::remove_file(site.path("profiles/reject1.xml")).unwrap();
    site.wait("no machine held", || {
        site.status_json().is_some_and(|s| {
            s["held_machines"].as_object().is_some_and(|m| m.is_empty()) && s["deploy"]["result"] == "unchanged"
        })
    });
}

#[test]
fn an_impersonating_profile_takes_nothing_and_the_owner_hears_of_it() {
    let site = running_site();
    site.wait("kdc1's monitoring service OK", || {
        site.service("kdc1.example.org", "monitoring: kerberos")
            .is_some_and(|s| s["has_been_checked"] == "1" && s["current_state"] == "0")
    });
    let shard = || std::fs::read_to_string(site.live_target().join(machine_file("kdc1.example.org"))).unwrap();
    let before = shard();
    // A file that sorts first declares kdc1, with the attacker's contact group and keytab.
    let attack = std::fs::read_to_string(samples().join("kdc1.xml"))
        .unwrap()
        .replace(">kdc infrastructure</nagios_groups>", ">www</nagios_groups>");
    assert!(attack.contains(">www</nagios_groups>"));
    write(&site, "profiles/aaa.xml", &attack);
    site.wait("kdc1's owner told of the claim", || {
        site.service("kdc1.example.org", "monitoring: kerberos")
            .is_some_and(|s| s["current_state"] == "2" && s["plugin_output"].contains("is also claimed by"))
    });
    let text = shard();
    let block = |t: &str| {
        t[t.find("# machine kdc1.example.org").unwrap()..]
            .split("\n# machine ")
            .next()
            .unwrap()
            .to_string()
    };
    let (now, then) = (block(&text), block(&before));
    // The configuration is the owner's; only the status text (never in the file) moved.
    assert_eq!(now, then, "kdc1 keeps its owner's configuration");
    assert!(!now.contains("www"), "{now}");
    // The monitoring service that says so notifies the owner's groups.
    assert!(now.contains("monitoring: kerberos") && now.contains("kdc"), "{now}");
}

#[test]
fn hostile_profiles_and_bad_paths_keep_the_machine_and_let_the_others_deploy() {
    let site = running_site();
    let victim = profile_xml(
        "victim",
        "kerberos",
        &monitor_integration_tests::kerberos_xml("slave", "EXAMPLE.ORG", "kdc"),
    );
    let path = site.path("profiles/victim.xml");
    let good = |site: &Site| {
        let _ = std::fs::remove_dir_all(&path);
        let _ = std::fs::remove_file(&path);
        write(site, "profiles/victim.xml", &victim);
        site.wait("victim OK", || {
            site.service("victim.example.org", "monitoring: kerberos")
                .is_some_and(|s| s["has_been_checked"] == "1" && s["current_state"] == "0")
        });
    };
    good(&site);
    let block = |site: &Site| {
        let t = std::fs::read_to_string(site.live_target().join(machine_file("victim.example.org"))).unwrap();
        t[t.find("# machine victim.example.org").unwrap()..]
            .split("\n# machine ")
            .next()
            .unwrap()
            .to_string()
    };
    let live = block(&site);
    let hostile = |inner: &str, doctype: &str| {
        let doc = profile_xml(
            "victim",
            "kerberos",
            &monitor_integration_tests::kerberos_xml("slave", &format!("EXAMPLE.ORG{inner}"), "kdc"),
        );
        let i = doc.find("<profile").unwrap();
        format!("{}{doctype}\n{}", &doc[..i], &doc[i..]).into_bytes()
    };
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    bomb.write_all(&vec![b' '; 80 << 20]).unwrap();
    let bomb = bomb.finish().unwrap();
    type Make = Box<dyn Fn(&Path)>;
    let bytes = |b: Vec<u8>| -> Make { Box::new(move |p: &Path| std::fs::write(p, &b).unwrap()) };
    let cases: Vec<(&str, Make)> = vec![
        ("deep nesting", bytes(hostile(&"<a>".repeat(10_000), ""))),
        (
            "entity amplification",
            bytes(hostile(
                &"&big;".repeat(10_000),
                &format!("<!DOCTYPE profile [<!ENTITY big \"{}\">]>", "x".repeat(100_000)),
            )),
        ),
        (
            "billion laughs",
            bytes(hostile("&l9;", &{
                let mut d = String::from("<!DOCTYPE profile [<!ENTITY l0 \"lol\">");
                for i in 1..10 {
                    d.push_str(&format!("<!ENTITY l{i} \"{}\">", format!("&l{};", i - 1).repeat(10)));
                }
                d + "]>"
            })),
        ),
        (
            "external entity",
            bytes(hostile(
                "&s;",
                "<!DOCTYPE profile [<!ENTITY s SYSTEM \"file:///etc/shadow\">]>",
            )),
        ),
        ("an 11 MB value", bytes(hostile(&"v".repeat(11 << 20), ""))),
        ("a gzip bomb", bytes(bomb)),
        (
            "a dangling symlink",
            Box::new(|p: &Path| std::os::unix::fs::symlink(p.with_file_name("gone.xml"), p).unwrap()),
        ),
        (
            "a symlink loop",
            Box::new(|p: &Path| std::os::unix::fs::symlink(p, p).unwrap()),
        ),
        (
            "a FIFO",
            Box::new(|p: &Path| assert!(Command::new("mkfifo").arg(p).status().unwrap().success())),
        ),
        ("a directory", Box::new(|p: &Path| std::fs::create_dir(p).unwrap())),
        (
            "a symlink to /etc/shadow",
            Box::new(|p: &Path| std::os::unix::fs::symlink("/etc/shadow", p).unwrap()),
        ),
    ];
    for (i, (what, make)) in cases.iter().enumerate() {
        std::fs::remove_file(&path).unwrap();
        make(&path);
        let other = format!("other{i}");
        add_flaky(&site, &other);
        site.wait(&format!("{what}: the other machine deployed"), || {
            site.service(&format!("{other}.example.org"), "Flaky v1").is_some()
        });
        site.wait(&format!("{what}: victim's monitoring service CRITICAL"), || {
            site.service("victim.example.org", "monitoring: kerberos")
                .is_some_and(|s| s["current_state"] == "2")
        });
        let s = site.service("victim.example.org", "monitoring: kerberos").unwrap();
        assert!(!s["plugin_output"].contains("root:"), "{what}: {s:?}");
        assert_eq!(block(&site), live, "{what}: victim keeps its last good configuration");
        assert!(site.daemon_alive(), "{what}: the daemon stays up");
        good(&site);
    }
}

#[test]
fn a_plugin_that_crashes_hangs_or_exits_never_takes_the_daemon_down() {
    let site = Site::new();
    site.configure(
        "",
        "[plugins]\ncall_timeout_seconds = 3\npass_timeout_seconds = 10\nmemory_mb = 512\n",
    );
    std::fs::copy(&plugin_libs().jabberd, site.path("translators/jabberd.so")).unwrap();
    std::fs::copy(&plugin_libs().evil, site.path("translators/evil.so")).unwrap();
    let evil = |mode: &str| {
        profile_xml(
            "evil1",
            "evil",
            &format!("<evil><mode>{mode}</mode><nagios_groups>infrastructure</nagios_groups></evil>"),
        )
    };
    write(&site, "profiles/evil1.xml", &evil("ok"));
    let mut site = running(site);
    let monitoring = |site: &Site| site.service("evil1.example.org", "monitoring: evil");
    site.wait("evil1 compiled, its status service OK", || {
        site.service("evil1.example.org", "Evil").is_some()
            && monitoring(&site).is_some_and(|s| s["current_state"] == "0")
    });
    let jabber = std::fs::read_to_string(samples().join("jabber1.xml")).unwrap();
    for (i, (mode, reason)) in [
        ("segv", "SIGSEGV"),
        ("abort", "SIGABRT"),
        ("stack", "was killed by SIG"),
        ("loop", "did not answer within 3 s"),
        ("alloc", "a failed allocation under the 512 MiB memory limit"),
        ("panic", "translator panicked"),
        ("garbage", "byte limit and was killed"),
    ]
    .into_iter()
    .enumerate()
    {
        // The bad machine and a jabber change, in one pass.
        let port = format!("{}", 6000 + i);
        write(
            &site,
            "profiles/jabber1.xml",
            &jabber.replace(">5222<", &format!(">{port}<")),
        );
        write(&site, "profiles/evil1.xml", &evil(mode));
        site.wait(&format!("{mode}: monitoring: evil CRITICAL with the reason"), || {
            monitoring(&site).is_some_and(|s| s["current_state"] == "2" && s["plugin_output"].contains(reason))
        });
        assert!(site.daemon_alive(), "{mode}: the daemon is up\n{}", site.log());
        let shard =
            std::fs::read_to_string(site.path("nagios/generated").join(machine_file("jabber1.example.org"))).unwrap();
        assert!(
            shard.contains(&format!("mc-check-jabber!{port}")),
            "{mode}: jabber1 deployed in the same pass"
        );
        assert!(
            site.service("evil1.example.org", "Evil").is_some(),
            "{mode}: the last good service stands"
        );
        write(&site, "profiles/evil1.xml", &evil("ok"));
        site.wait(&format!("{mode}: evil1 back to OK"), || {
            monitoring(&site).is_some_and(|s| s["current_state"] == "0")
        });
    }
    // A library that exits in start_pass: its machines keep their services and say why,
    // on every pass and across a restart, which does not loop.
    std::fs::copy(&plugin_libs().evil_exit, site.path("translators/evil.so")).unwrap();
    site.wait("the exiting library reported on evil1", || {
        monitoring(&site)
            .is_some_and(|s| s["current_state"] == "2" && s["plugin_output"].contains("exited with status 3"))
    });
    site.stop_daemon();
    site.start_daemon();
    let pid = site.daemon.as_ref().map(|d| d.id()).unwrap();
    site.wait("a pass after the restart", || {
        site.status_json()
            .is_some_and(|s| s["pid"] == pid && s["errors"].to_string().contains("exited with status 3"))
    });
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(site.daemon_alive(), "the restarted daemon is up\n{}", site.log());
    assert!(site.service("evil1.example.org", "Evil").is_some());
    // A good library brings its machines back on the next pass.
    std::fs::copy(&plugin_libs().evil_v2, site.path("translators/evil.so")).unwrap();
    site.wait("evil1 OK again", || {
        monitoring(&site).is_some_and(|s| s["current_state"] == "0")
    });
    site.stop_daemon();
    site.stop_nagios();
}
