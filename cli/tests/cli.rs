//! The binaries as a user runs them: exit codes, summaries, `--format json`,
//! `--validate` with the real nagios4, and `monitor-test`.

use std::path::{Path, PathBuf};
use std::process::Command;

use monitor_engine::machine_file;
use monitor_integration_tests::output_dir;

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles-sample")
}

fn compile(profiles: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_monitor-compile"));
    cmd.args(["--once", "--profiles"])
        .arg(profiles)
        .arg("--output")
        .arg(out)
        .arg("--users")
        .arg(samples().join("users.toml"))
        .args(extra);
    // Hermetic: never load what happens to be installed in the package directory.
    let none = tempfile::tempdir().unwrap();
    if !extra.contains(&"--translators") {
        cmd.arg("--translators").arg(none.path());
    }
    cmd.output().expect("run monitor-compile")
}

fn copy_samples(dir: &Path) {
    for f in ["kdc1.xml", "jabber1.xml", "web1.xml"] {
        std::fs::copy(samples().join(f), dir.join(f)).unwrap();
    }
}

#[test]
fn once_on_samples_validates_and_exits_zero() {
    let out = output_dir();
    let r = compile(&samples(), out.path(), &["--validate"]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("monitor-compile: 5 machines, 23 services, 0 errors, 0 warnings, 0 unknown components"),
        "{stderr}"
    );
    assert!(stderr.contains("nagios -v: ok (0 errors, 0 warnings)"), "{stderr}");
    assert!(
        std::fs::read_to_string(out.path().join(machine_file("kdc1.example.org")))
            .unwrap()
            .contains("kdc1.example.org")
    );
}

#[test]
fn json_summary_goes_to_stdout() {
    let out = output_dir();
    let r = compile(&samples(), out.path(), &["--format", "json"]);
    assert_eq!(r.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).expect("stdout is JSON");
    assert_eq!(v["report"]["machines"], 5);
    assert_eq!(v["report"]["services"], 23);
    assert_eq!(v["report"]["errors"].as_array().unwrap().len(), 0);
    assert_eq!(
        v["written"]["written"], 12,
        "base, start, 5 machines, contacts, clusters, dependencies, ACL, finish"
    );
}

#[test]
fn broken_profile_exits_one_and_the_rest_is_written() {
    let dir = tempfile::tempdir().unwrap();
    copy_samples(dir.path());
    let text = std::fs::read_to_string(samples().join("kdc1.xml")).unwrap();
    std::fs::write(dir.path().join("broken.xml"), &text[..text.len() / 3]).unwrap();
    let out = output_dir();
    let r = compile(dir.path(), out.path(), &["--validate"]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("broken.xml:"),
        "the error names the file and line: {stderr}"
    );
    assert!(out.path().join(machine_file("jabber1.example.org")).exists());
    assert!(stderr.contains("nagios -v: ok"), "{stderr}");
}

#[test]
fn missing_profile_directory_is_fatal() {
    let out = output_dir();
    let r = compile(Path::new("/nonexistent/profiles"), out.path(), &[]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("/nonexistent/profiles: the profile directory is missing"));
}

fn monitor_test(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_monitor-test"))
        .args(args)
        .output()
        .expect("run monitor-test")
}

#[test]
fn monitor_test_prints_fragments_and_registrations() {
    let kdc = samples().join("kdc1.xml");
    let r = monitor_test(&["kerberos", kdc.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(stdout.contains("# machine: kdc1.example.org"), "{stdout}");
    assert!(
        stdout.contains("command_name                    mc-check-kdc"),
        "{stdout}"
    );
    assert!(
        stdout.contains("service_description             Kerberos KDC"),
        "{stdout}"
    );
    assert!(
        stdout.contains("## registrations\nnotifies contact group kdc\nnotifies contact group infrastructure\n"),
        "{stdout}"
    );
}

#[test]
fn monitor_test_fails_on_translator_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(samples().join("kdc1.xml")).unwrap();
    let no_realm = text.replace("EXAMPLE.ORG</realm>", "</realm>");
    let f = dir.path().join("norealm.xml");
    std::fs::write(&f, no_realm).unwrap();
    let r = monitor_test(&["kerberos", f.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains("kdc1.example.org kerberos: translate: missing resource realm"),
        "{stderr}"
    );
}

#[test]
fn monitor_test_dump_prints_flat_resources_sorted() {
    let web = samples().join("web1.xml");
    let r = monitor_test(&["--dump", web.to_str().unwrap()]);
    assert!(r.status.success());
    let stdout = String::from_utf8_lossy(&r.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "web1.example.org");
    let mut sorted = lines[1..].to_vec();
    sorted.sort();
    assert_eq!(lines[1..], sorted[..]);
    assert!(lines.contains(&"apacheconf.vhost_alias_www_bare=example.org"));
    assert!(lines.contains(&"apacheconf.loglevel=debug"));
    assert!(lines.contains(&"apacheconf.listen_addr_80=*:80"));
    assert!(lines.contains(&"apacheconf.vhost_aliases_weblogin="));
}

#[test]
fn notifier_posts_valid_slack_json() {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    let curl = dir.path().join("curl");
    std::fs::write(
        &curl,
        format!(
            "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = --data ] && printf '%s' \"$2\" > {}; shift; done\n",
            body.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&curl, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let notify = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/notify");
    let path = format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap());
    let r = Command::new(notify)
        .args([
            "--channel",
            "slack",
            "--to",
            "@bob",
            "--subject",
            "PROBLEM \"kdc\"",
            "--message",
            "line1\nline2 \\ end",
        ])
        .env("PATH", path)
        .env("MONITOR_NOTIFY_SLACK_WEBHOOK", "http://127.0.0.1:9/hook")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&body).unwrap()).expect("valid JSON");
    assert_eq!(v["channel"], "@bob");
    assert_eq!(v["text"], "*PROBLEM \"kdc\"*\nline1 line2 \\ end");
    let bad = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/notify"))
        .args(["--channel", "pigeon", "--to", "x"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn monitor_test_libs_uses_the_library_and_says_which() {
    let libs = monitor_integration_tests::plugin_libs();
    let dir = libs.jabberd.parent().unwrap();
    let jabber = samples().join("jabber1.xml");
    let from_lib = monitor_test(&["--libs", dir.to_str().unwrap(), "jabberd", jabber.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&from_lib.stdout);
    assert!(
        from_lib.status.success(),
        "{}",
        String::from_utf8_lossy(&from_lib.stderr)
    );
    let first = stdout.lines().next().unwrap();
    assert!(
        first.starts_with("# translator: jabberd 0.1.0 from library ") && first.contains("jabberd.so (blake3 "),
        "{first}"
    );
    let builtin = monitor_test(&["jabberd", jabber.to_str().unwrap()]);
    let builtin = String::from_utf8_lossy(&builtin.stdout);
    let body = |s: &str| s.split_once("# machine:").map(|(_, b)| b.to_string()).unwrap();
    assert_eq!(
        body(&stdout),
        body(&builtin),
        "same fragments and registrations as the built-in"
    );

    let none = monitor_test(&["--libs", dir.to_str().unwrap(), "nosuch", jabber.to_str().unwrap()]);
    assert_eq!(none.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert!(
        stderr.contains("no library there serves component nosuch") && stderr.contains("ABI version 999"),
        "{stderr}"
    );
}

#[test]
fn translators_dir_plugins_replace_builtins_and_broken_ones_are_reported() {
    let libs = monitor_integration_tests::plugin_libs();
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(&libs.jabberd, plugins.path().join("jabberd.so")).unwrap();
    let out = output_dir();
    let r = compile(
        &samples(),
        out.path(),
        &["--format", "json", "--translators", plugins.path().to_str().unwrap()],
    );
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let jabberd = v["translators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["component"] == "jabberd")
        .unwrap();
    assert!(
        jabberd["origin"]
            .as_str()
            .unwrap()
            .starts_with(&format!("plugin {}", plugins.path().join("jabberd.so").display()))
    );
    let kerberos = v["translators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["component"] == "kerberos")
        .unwrap();
    assert_eq!(kerberos["origin"], "builtin");
    let builtin_out = tempfile::tempdir().unwrap();
    compile(&samples(), builtin_out.path(), &["--translators", "/nonexistent"]);
    let jabber = monitor_engine::machine_file("jabber1.example.org");
    for f in [std::path::Path::new("10-start-pass.cfg"), jabber.as_path()] {
        assert_eq!(
            std::fs::read(out.path().join(f)).unwrap(),
            std::fs::read(builtin_out.path().join(f)).unwrap(),
            "{}",
            f.display()
        );
    }

    std::fs::copy(&libs.bad_abi, plugins.path().join("zz-bad.so")).unwrap();
    let r = compile(
        &samples(),
        out.path(),
        &["--translators", plugins.path().to_str().unwrap()],
    );
    assert_eq!(r.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains("error: broken translator library: ")
            && stderr.contains("zz-bad.so: built for plugin ABI version 999"),
        "{stderr}"
    );
}

#[test]
fn once_holds_a_mass_removal_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    copy_samples(dir.path());
    let out = tempfile::tempdir().unwrap();
    assert_eq!(compile(dir.path(), out.path(), &[]).status.code(), Some(0));
    let jabber = out.path().join(machine_file("jabber1.example.org"));
    let before = std::fs::read_to_string(&jabber).unwrap();
    // Two of the three machines vanish (a folder gone): 2 of 4 hosts (with the cluster host).
    std::fs::remove_file(dir.path().join("jabber1.xml")).unwrap();
    std::fs::remove_file(dir.path().join("web1.xml")).unwrap();
    let r = compile(dir.path(), out.path(), &[]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("held by the removal guard: it removes 2 of 4 hosts, more than max_hosts_percent = 10%"),
        "{stderr}"
    );
    assert!(stderr.contains("jabber1.example.org, web1.example.org"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&jabber).unwrap(), before, "nothing written");
    let r = compile(dir.path(), out.path(), &["--format", "json"]);
    assert_eq!(r.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["held"]["removal"]["removed_hosts"].as_array().unwrap().len(), 2);
    // Accepted on purpose.
    let r = compile(dir.path(), out.path(), &["--allow-removals"]);
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(!std::fs::read_to_string(&jabber).is_ok_and(|t| t.contains("# machine jabber1")));
}

#[test]
fn empty_inputs_and_wrong_paths_are_fatal_and_clear() {
    let empty = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let r = compile(empty.path(), &out.path().join("cfg"), &[]);
    assert_eq!(r.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(stderr.contains("holds no profiles"), "{stderr}");
    assert!(!out.path().join("cfg").exists(), "no empty configuration written");

    let file = out.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let r = compile(&samples(), &file, &[]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("--output exists and is not a directory"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let r = compile(&file, &out.path().join("cfg"), &[]);
    assert!(String::from_utf8_lossy(&r.stderr).contains("a-file: not a directory"));

    // A fatal error in JSON mode is a JSON object on stdout.
    let r = compile(empty.path(), &out.path().join("cfg"), &["--format", "json"]);
    assert_eq!(r.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).expect("stdout is JSON");
    assert_eq!(v["fatal"], true);
    assert!(v["error"].as_str().unwrap().contains("holds no profiles"), "{v}");
}

#[test]
fn the_summary_comes_last_with_the_elapsed_time() {
    let dir = tempfile::tempdir().unwrap();
    copy_samples(dir.path());
    std::fs::write(dir.path().join("broken.xml"), "<profile>").unwrap();
    let out = tempfile::tempdir().unwrap();
    let r = compile(dir.path(), out.path(), &["--validate"]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let last = lines.last().unwrap();
    assert!(last.starts_with("monitor-compile: 3 machines,"), "{stderr}");
    let secs = last.rsplit_once(" in ").unwrap().1;
    assert!(
        secs.ends_with(" s") && secs.trim_end_matches(" s").parse::<f64>().is_ok(),
        "{last}"
    );
    let error_at = lines.iter().position(|l| l.starts_with("error: ")).unwrap();
    assert!(error_at < lines.len() - 1);
}

#[test]
fn users_file_typos_are_errors_and_silent_contacts_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    copy_samples(dir.path());
    let users = dir.path().join("users.toml");
    let text = std::fs::read_to_string(samples().join("users.toml")).unwrap();
    std::fs::write(
        &users,
        format!("{text}\n[contacts.mallory]\nemial = \"m@example.org\"\n"),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = |users: &Path| {
        Command::new(env!("CARGO_BIN_EXE_monitor-compile"))
            .args(["--once", "--translators"])
            .arg(dir.path().join("none"))
            .arg("--profiles")
            .arg(dir.path())
            .arg("--output")
            .arg(out.path())
            .arg("--users")
            .arg(users)
            .output()
            .unwrap()
    };
    let r = run(&users);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    let line = text.lines().count() + 3;
    assert!(
        stderr.contains("users.toml") && stderr.contains(&format!("line {line}")) && stderr.contains("emial"),
        "{stderr}"
    );
    std::fs::write(&users, format!("{text}\n[contacts.mallory]\ngroups = [\"kdc\"]\n")).unwrap();
    let r = run(&users);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: ") && stderr.contains("contact mallory has no notification address"),
        "{stderr}"
    );
}

#[test]
fn monitor_test_names_itself() {
    let r = monitor_test(&["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&r.stdout).trim(),
        format!("monitor-test {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn once_survives_hostile_profiles_and_reports_where_they_fail() {
    let dir = tempfile::tempdir().unwrap();
    copy_samples(dir.path());
    let head = std::fs::read_to_string(samples().join("kdc1.xml")).unwrap();
    let at = head.find("<realm").unwrap();
    // kdc1's own profile with a million levels inside its kerberos component.
    let deep = format!("{}{}{}", &head[..at], "<a>".repeat(1_000_000), &head[at..]);
    std::fs::write(dir.path().join("deep.xml"), deep).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &vec![b' '; 100 << 20]).unwrap();
    std::fs::write(dir.path().join("bomb.xml.gz"), gz.finish().unwrap()).unwrap();
    let out = output_dir();
    let r = compile(dir.path(), out.path(), &["--format", "json"]);
    assert_eq!(r.status.code(), Some(1), "{}", String::from_utf8_lossy(&r.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    let errors = summary["report"]["errors"].as_array().unwrap();
    let of = |name: &str| {
        errors
            .iter()
            .find(|e| e["file"].as_str().is_some_and(|f| f.ends_with(name)))
            .unwrap_or_else(|| panic!("{name}: {errors:#?}"))
    };
    let deep = of("deep.xml");
    assert!(
        deep["message"]
            .as_str()
            .unwrap()
            .contains("nest more than 256 levels deep"),
        "{deep}"
    );
    assert!(
        deep["line"].as_u64().is_some() && deep["column"].as_u64().is_some(),
        "{deep}"
    );
    assert!(
        deep["element"]
            .as_str()
            .unwrap()
            .starts_with("lcfg/components/kerberos/"),
        "{deep}"
    );
    assert!(
        of("bomb.xml.gz")["message"]
            .as_str()
            .unwrap()
            .contains("larger than the 64 MiB limit")
    );
    // Every other machine compiled and was written.
    assert_eq!(summary["report"]["machines"], 3, "{summary}");
    for m in ["kdc1", "jabber1", "web1"] {
        assert!(
            out.path().join(machine_file(&format!("{m}.example.org"))).exists(),
            "{m}"
        );
    }
}

#[test]
fn once_and_the_daemon_read_one_config_file_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cfg");
    let none = tempfile::tempdir().unwrap();
    let config = dir.path().join("monitor-compile.toml");
    let write = |extra: &str| {
        std::fs::write(
            &config,
            format!(
                "profiles = [{:?}]\nusers = {:?}\noutput = {:?}\ntranslators = [{:?}]\n{extra}",
                samples().display().to_string(),
                samples().join("users.toml").display().to_string(),
                out.display().to_string(),
                none.path().display().to_string(),
            ),
        )
        .unwrap();
    };
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_monitor-compile"))
            .args(["--once", "--config"])
            .arg(&config)
            .output()
            .expect("run monitor-compile")
    };
    // Everything from the file; the daemon's Nagios keys are not needed for --once.
    write("");
    let r = run();
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(out.join("00-base.cfg").is_file());
    // A typo is an error naming the file and the key, as for the daemon.
    write("follow_symlink_out = true\n");
    let r = run();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&config.display().to_string()), "{stderr}");
    assert!(stderr.contains("unknown field `follow_symlink_out`"), "{stderr}");
    // A value of the wrong type likewise.
    write("bind_paths = \"yes\"\n");
    let r = run();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bind_paths"), "{stderr}");
    // A key --once honours now: bind_paths (the samples are named for their machines).
    write("bind_paths = true\n");
    let r = run();
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
}

#[test]
fn monitor_test_libs_says_how_the_worker_died() {
    let libs = monitor_integration_tests::plugin_libs();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&libs.evil, dir.path().join("evil.so")).unwrap();
    for (mode, reason) in [
        (
            "segv",
            "the translator's worker was killed by SIGSEGV (segmentation fault)",
        ),
        ("abort", "the translator's worker was killed by SIGABRT"),
        (
            "loop",
            "the translator's worker did not answer within 2 s and was killed",
        ),
        ("garbage", "the translator's worker sent a message of 2147483647 bytes"),
        ("panic", "translator panicked: evil panics on evil1.example.org"),
    ] {
        let profile = dir.path().join("evil1.xml");
        std::fs::write(
            &profile,
            monitor_integration_tests::profile_xml(
                "evil1",
                "evil",
                &format!("<evil><mode>{mode}</mode><nagios_groups>infrastructure</nagios_groups></evil>"),
            ),
        )
        .unwrap();
        let r = monitor_test(&[
            "--libs",
            dir.path().to_str().unwrap(),
            "--timeout",
            "2",
            "evil",
            profile.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{mode}: {stderr}");
        assert!(
            stderr.contains(&format!("monitor-test: evil1.example.org evil: translate: {reason}")),
            "{mode}: {stderr}"
        );
        assert!(
            String::from_utf8_lossy(&r.stdout).contains("in a worker process"),
            "{mode}"
        );
    }
}
