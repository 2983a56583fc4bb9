//! A drop-in for the stock Debian Nagios (docs/debian.md): the output loads beside the
//! packaged objects and plugin commands, its files have the usual modes (the umask
//! honoured), `--validate` reads it as the `nagios` user does, warns about programs that
//! are not installed, and a site can keep its own definitions of base objects.
//!
//! These tests need Debian's `nagios4-core` and `monitoring-plugins` (`.ci/run` installs
//! both); the ones about reading as `nagios` need root and the `nagios` user.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use monitor_integration_tests::{nagios_bin, output_dir, samples};
use monitor_runtime::validate::{NagiosCheck, run_verify, validation_user};

/// The packaged main configuration.
const STOCK_MAIN: &str = "/etc/nagios4/nagios.cfg";

/// `monitor-compile --once ARGS` on the sample profiles, under `umask` (set in the child
/// only: the umask is process-wide).
fn once(umask: &str, out: &Path, args: &[&str]) -> Output {
    let none = tempfile::tempdir().unwrap();
    Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_monitor-compile"))
        .args(["--once", "--profiles"])
        .arg(samples())
        .arg("--users")
        .arg(samples().join("users.toml"))
        .arg("--output")
        .arg(out)
        // Hermetic: never load what happens to be installed in the package directory.
        .arg("--translators")
        .arg(none.path())
        .args(args)
        .output()
        .expect("run monitor-compile")
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Every file and directory under `dir` (not `dir` itself) with its mode.
fn modes(dir: &Path) -> Vec<(PathBuf, bool, u32)> {
    walk(dir)
        .into_iter()
        .map(|p| {
            let is_dir = p.is_dir();
            let m = mode(&p);
            (p, is_dir, m)
        })
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

/// The packaged main config with nothing changed but one `cfg_dir=OUTPUT` line added
/// (and `extra` lines after it); `nagios -v` on it as Nagios would read it.
fn verify_with_stock_main(dir: &Path, output: &Path, extra: &str) -> NagiosCheck {
    let stock = std::fs::read_to_string(STOCK_MAIN).expect("nagios4-core's main config");
    let main = dir.join("nagios.cfg");
    std::fs::write(&main, format!("{stock}\ncfg_dir={}\n{extra}", output.display())).unwrap();
    let run_as = validation_user(None).unwrap();
    run_verify(&nagios_bin(), &main, run_as.as_ref()).unwrap()
}

fn totals(check: &NagiosCheck) -> (bool, bool) {
    let has = |l: &str| check.output.lines().any(|x| x.trim() == l);
    (has("Total Warnings: 0"), has("Total Errors:   0"))
}

#[test]
fn stock_debian_nagios_loads_the_output_beside_the_packaged_objects() {
    assert!(
        Path::new("/usr/lib/nagios/plugins/check_tcp").exists(),
        "install monitoring-plugins (as .ci/run does)"
    );
    let dir = output_dir();
    let out = dir.path().join("monitor-compile");
    let r = once("022", &out, &[]);
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let check = verify_with_stock_main(dir.path(), &out, "");
    assert_eq!(totals(&check), (true, true), "{}", check.output);
    assert!(
        check.ok && check.errors.is_empty() && check.warnings.is_empty(),
        "{}",
        check.output
    );
    // The packaged objects were loaded too: their five timeperiods beside our `mc-24x7`.
    assert!(check.output.contains("Checked 6 timeperiods"), "{}", check.output);
    let base = std::fs::read_to_string(out.join("00-base.cfg")).unwrap();
    assert!(base.contains("timeperiod_name                 mc-24x7"), "{base}");
}

#[test]
fn output_files_honour_the_umask() {
    for (umask, file, dir) in [("022", 0o644, 0o755), ("027", 0o640, 0o750)] {
        let tmp = output_dir();
        let out = tmp.path().join("out");
        let r = once(umask, &out, &[]);
        assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
        assert_eq!(mode(&out), dir, "umask {umask}: the output directory");
        let all = modes(&out);
        assert!(all.iter().any(|(_, d, _)| *d), "20-machines is a directory");
        for (p, is_dir, m) in all {
            let want = if is_dir { dir } else { file };
            assert_eq!(m, want, "umask {umask}: {} is {m:o}", p.display());
        }
    }
}

/// Root can read anything: only `nagios -v` run as `nagios` notices what Nagios could not
/// read.
fn as_nagios() -> bool {
    let user = validation_user(None).unwrap();
    if user.is_none() {
        eprintln!("not root, or no nagios user: nagios -v runs as this user; nothing to test here");
    }
    user.is_some()
}

#[test]
fn validate_reads_the_output_as_nagios_does() {
    if !as_nagios() {
        return;
    }
    // Normal output passes, as the nagios user.
    let tmp = output_dir();
    let out = tmp.path().join("out");
    let r = once("022", &out, &["--validate"]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("nagios -v: ok (0 errors, 0 warnings)"), "{stderr}");
    assert!(stderr.contains("nagios -v ran as user nagios"), "{stderr}");

    // Files 0600 root (as writes through tempfile made them): Nagios's own error.
    let tmp = output_dir();
    let out = tmp.path().join("out");
    let r = once("077", &out, &["--validate"]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(mode(&out.join("00-base.cfg")), 0o600);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("nagios -v: FAILED"), "{stderr}");
    assert!(
        stderr.contains("nagios: Error: Could not open config directory"),
        "{stderr}"
    );

    // Only one file unreadable, in a readable directory: validated without rewriting it.
    let tmp = output_dir();
    let out = tmp.path().join("out");
    assert_eq!(once("022", &out, &[]).status.code(), Some(0));
    let shard = walk(&out.join("20-machines")).into_iter().next().unwrap();
    std::fs::set_permissions(&shard, std::fs::Permissions::from_mode(0o600)).unwrap();
    let check = monitor_runtime::validate::validate_dir(&nagios_bin(), &out).unwrap();
    assert!(!check.ok, "{}", check.output);
    assert!(
        check.errors.iter().any(|e| e.contains(&*shard.to_string_lossy())),
        "the error names {}: {:?}",
        shard.display(),
        check.errors
    );
    // A later --once gives it the usual mode back, and it validates.
    let r = once("022", &out, &["--validate"]);
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(mode(&shard), 0o644);
}

#[test]
fn validate_warns_about_programs_that_are_not_installed() {
    let tmp = output_dir();
    let out = tmp.path().join("out");
    let r = once("022", &out, &["--validate", "--format", "json"]);
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).expect("stdout is JSON");
    let missing = v["validation"]["missing_programs"].as_array().expect("a list").clone();
    let kdc = serde_json::json!({"command": "mc-check-kdc", "program": "/usr/lib/nagios/plugins/check_kdc"});
    assert!(
        missing.contains(&kdc),
        "check_kdc is no monitoring-plugins plugin: {missing:?}"
    );
    // $USER1$ resolved, and the installed plugins are not reported.
    for m in &missing {
        let program = m["program"].as_str().unwrap();
        assert!(!program.contains("$USER"), "{m}");
        assert!(
            !Path::new(program).is_file() || mode(Path::new(program)) & 0o111 == 0,
            "{m}"
        );
        assert_ne!(m["command"], "mc-check-tcp", "{m}");
    }
    // The human summary says so too.
    let r = once("022", &out, &["--validate"]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(
        stderr.contains(
            "warning: command mc-check-kdc runs /usr/lib/nagios/plugins/check_kdc, which is not an executable file on this machine"
        ),
        "{stderr}"
    );
}

#[test]
fn a_site_can_keep_its_own_base_objects() {
    let tmp = output_dir();
    let out = tmp.path().join("out");
    let config = tmp.path().join("monitor-compile.toml");
    std::fs::write(
        &config,
        "site_objects = [\"mc-check-host-alive\", \"mc-generic-contact\"]\n",
    )
    .unwrap();
    let r = once("022", &out, &["--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(
        r.status.code(),
        Some(0),
        "references to them count as defined: {stderr}"
    );
    let base = std::fs::read_to_string(out.join("00-base.cfg")).unwrap();
    assert!(
        !base.contains("command_name                    mc-check-host-alive"),
        "{base}"
    );
    assert!(
        !base.contains("name                            mc-generic-contact"),
        "{base}"
    );
    assert!(
        base.contains("check_command                   mc-check-host-alive"),
        "{base}"
    );
    // The site defines them; with the packaged main config, all of it is valid.
    let site = tmp.path().join("site.cfg");
    std::fs::write(
        &site,
        "define command {\n    command_name mc-check-host-alive\n    command_line $USER1$/check_ping -H $HOSTADDRESS$ -w 100.0,20% -c 500.0,60% -p 3\n}\n\
         define contact {\n    name mc-generic-contact\n    use generic-contact\n    register 0\n}\n",
    )
    .unwrap();
    std::fs::set_permissions(&site, std::fs::Permissions::from_mode(0o644)).unwrap();
    let check = verify_with_stock_main(tmp.path(), &out, &format!("cfg_file={}\n", site.display()));
    assert_eq!(totals(&check), (true, true), "{}", check.output);

    // A name that is none of ours is refused, naming the key.
    std::fs::write(&config, "site_objects = [\"24x7\"]\n").unwrap();
    let r = once("022", &out, &["--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("site_objects: \"24x7\" is not one of the base definitions"),
        "{stderr}"
    );
}
