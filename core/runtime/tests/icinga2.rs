//! The Icinga 2 backend against the real icinga2: `daemon -C` per node, and the REST
//! API and reload of a real daemon (the harness of `tests/src/icinga.rs`). icinga2 must
//! be installed (CI installs it); the tests fail, never skip, without it. Nothing here
//! asserts on timing: every wait is a bounded poll.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use monitor_integration_tests::icinga::{self, Icinga, icinga2_bin};
use monitor_runtime::icinga2::api::{ApiClient, ApiError};
use monitor_runtime::icinga2::reload::is_our_icinga;
use monitor_runtime::icinga2::validate::{IcingaCheck, Node, NodeCheck, Validator};
use monitor_runtime::validate::{RunAs, validation_user};

/// A temporary directory others can enter (0755): the validation runs as `nagios`.
fn open_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o755))
        .tempdir()
        .expect("a temporary directory")
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const MASTER_ZONES: &str = r#"object Endpoint "master1" { }
object Zone "master" { endpoints = [ "master1" ] }
object Endpoint "sat1a" { host = "127.0.0.1" }
object Zone "sat1" { endpoints = [ "sat1a" ]; parent = "master" }
object Zone "global-templates" { global = true }
"#;

const SAT1_ZONES: &str = r#"object Endpoint "master1" { host = "127.0.0.1" }
object Zone "master" { endpoints = [ "master1" ] }
object Endpoint "sat1a" { }
object Zone "sat1" { endpoints = [ "sat1a" ]; parent = "master" }
object Zone "global-templates" { global = true }
"#;

/// A set: master zone `master` (host `router`), satellite zone `sat1` (host `web1`,
/// with a Dependency on `router`, which only the master has) and `global-templates`.
fn write_set(set: &Path) {
    write(&set.join("zones.conf"), MASTER_ZONES);
    write(&set.join("nodes/sat1/zones.conf"), SAT1_ZONES);
    write(
        &set.join("zones.d/global-templates/templates.conf"),
        "template Host \"generic-host\" {\n  check_command = \"dummy\"\n}\n",
    );
    write(
        &set.join("zones.d/master/hosts.conf"),
        "object Host \"router\" {\n  import \"generic-host\"\n  address = \"127.0.0.1\"\n}\n",
    );
    write(
        &set.join("zones.d/sat1/hosts/web1.conf"),
        "object Host \"web1\" {\n  import \"generic-host\"\n  address = \"127.0.0.1\"\n}\n",
    );
    write(
        &set.join("zones.d/sat1/deps.conf"),
        "object Dependency \"web1-router\" {\n  parent_host_name = \"router\"\n  child_host_name = \"web1\"\n}\n",
    );
}

fn master(dirs: &[&str]) -> Node {
    Node {
        endpoint: "master1".into(),
        zone: "master".into(),
        zones_conf: "zones.conf".into(),
        dirs: dirs.iter().map(|d| d.to_string()).collect(),
    }
}

fn sat1() -> Node {
    Node {
        endpoint: "sat1a".into(),
        zone: "sat1".into(),
        zones_conf: "nodes/sat1/zones.conf".into(),
        dirs: vec!["sat1".into(), "global-templates".into()],
    }
}

/// The `nagios` user, as validation runs as root (which CI is).
fn nagios() -> RunAs {
    let user = validation_user(None).expect("look up the nagios user");
    user.expect("these tests run as root, with a nagios user (as CI does): they validate as nagios")
}

fn validator(work: &Path) -> Validator {
    Validator {
        bin: icinga2_bin(),
        run_as: Some(nagios()),
        ..Validator::new(work)
    }
}

fn node<'a>(check: &'a IcingaCheck, endpoint: &str) -> &'a NodeCheck {
    check
        .nodes
        .iter()
        .find(|n| n.endpoint == endpoint)
        .expect("the node's check")
}

#[test]
fn each_node_is_validated_on_what_it_loads() {
    let dir = open_dir();
    let set = dir.path().join("set");
    write_set(&set);
    let work = dir.path().join("work");
    let check = validator(&work)
        .validate(&set, &[master(&["global-templates", "master", "sat1"]), sat1()])
        .unwrap();
    assert!(!check.ok, "the satellite's slice must fail");
    assert_eq!(check.nodes.len(), 2);
    let m = node(&check, "master1");
    assert!(m.ok, "{:#?}\n{}", m.errors, m.output);
    assert!(m.errors.is_empty(), "{:#?}", m.errors);
    // The zone directories are symlinks into the set, and icinga2 loaded them.
    assert!(m.output.contains("Instantiated 2 Hosts"), "{}", m.output);
    assert!(m.output.contains("Instantiated 1 Dependency"), "{}", m.output);
    assert!(!work.join("master1").exists(), "a passed node's directory is removed");

    let s = node(&check, "sat1a");
    assert!(!s.ok);
    assert_eq!(s.zone, "sat1");
    // The error names the Dependency's file in the set (not the scratch directory), and
    // its line.
    let deps = set.canonicalize().unwrap().join("zones.d/sat1/deps.conf");
    let e = s
        .errors
        .iter()
        .find(|e| e.contains("Dependency"))
        .unwrap_or_else(|| panic!("{:#?}\n{}", s.errors, s.output));
    assert!(
        e.contains("Object 'router' of type 'Host' does not exist")
            && e.contains(&format!("Location: in {}: 2:", deps.display())),
        "{e}"
    );
    assert!(
        work.join("sat1a/icinga2.conf").exists(),
        "a failed node's directory is kept"
    );
    assert!(
        std::fs::symlink_metadata(work.join("sat1a/zones.d/sat1"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let main = std::fs::read_to_string(work.join("sat1a/icinga2.conf")).unwrap();
    assert!(
        main.starts_with("const NodeName = \"sat1a\"\nconst ZoneName = \"sat1\"\n"),
        "{main}"
    );
    // Nothing made writable by others.
    for entry in walk(&work) {
        let mode = std::fs::symlink_metadata(&entry).unwrap().permissions().mode();
        if !std::fs::symlink_metadata(&entry).unwrap().file_type().is_symlink() {
            assert_eq!(mode & 0o002, 0, "{} is world-writable", entry.display());
        }
    }
    // The slice alone, validated again, fails the same way (the kept directory is
    // replaced).
    let again = validator(&work).validate(&set, &[sat1()]).unwrap();
    assert!(!again.ok);
    assert_eq!(again.nodes[0].errors, s.errors);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn a_directory_of_no_zone_is_an_error() {
    let dir = open_dir();
    let set = dir.path().join("set");
    write_set(&set);
    write(
        &set.join("zones.d/bogus/b.conf"),
        "object Host \"b\" {\n  check_command = \"dummy\"\n}\n",
    );
    let check = validator(&dir.path().join("work"))
        .validate(&set, &[master(&["global-templates", "master", "sat1", "bogus"])])
        .unwrap();
    let m = node(&check, "master1");
    assert!(!check.ok && !m.ok, "{}", m.output);
    assert!(
        m.errors
            .iter()
            .any(|e| e.contains("Ignoring directory") && e.contains("for unknown zone 'bogus'")),
        "{:#?}\n{}",
        m.errors,
        m.output
    );
}

#[test]
fn a_file_only_root_can_read_fails_as_nagios() {
    let dir = open_dir();
    let set = dir.path().join("set");
    write_set(&set);
    let secret = set.join("zones.d/master/hosts.conf");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o700)).unwrap();
    let nodes = [master(&["global-templates", "master", "sat1"])];
    let check = validator(&dir.path().join("work")).validate(&set, &nodes).unwrap();
    let m = node(&check, "master1");
    assert!(!check.ok && !m.ok, "{}", m.output);
    let real = secret.canonicalize().unwrap();
    assert!(
        m.errors
            .iter()
            .any(|e| e.contains("Cannot compile file") && e.contains(&real.display().to_string())),
        "{:#?}\n{}",
        m.errors,
        m.output
    );
    // As root (this process) the same tree passes: it is the user that fails it.
    let as_root = Validator {
        run_as: None,
        ..validator(&dir.path().join("work-root"))
    };
    let check = as_root.validate(&set, &nodes).unwrap();
    assert!(check.ok, "{:#?}", check.nodes[0].errors);
}

/// A daemon of zone `master` with host `h1` and the passive service `s1`.
fn daemon(dir: &Path) -> Icinga {
    let setup = Icinga::prepare(dir, "master");
    let live = dir.join("live");
    write(
        &live.join("zones.conf"),
        &format!(
            "object Endpoint \"{}\" {{ }}\nobject Zone \"master\" {{ endpoints = [ \"{}\" ] }}\n",
            icinga::NODE_NAME,
            icinga::NODE_NAME
        ),
    );
    write(
        &live.join("zones.d/master/h1.conf"),
        "object Host \"h1\" {\n  check_command = \"dummy\"\n  enable_active_checks = false\n}\n\n\
         object Service \"s1\" {\n  host_name = \"h1\"\n  check_command = \"dummy\"\n  enable_active_checks = false\n}\n",
    );
    let main = setup.write_main_conf(&format!("include \"{}\"\n", live.join("zones.conf").display()));
    Icinga::start(setup, &main, &live.join("zones.d"))
}

/// Poll until `s1` shows `state` with `output` (bounded).
fn wait_for_state(client: &ApiClient, state: u8, output: &str) {
    let end = Instant::now() + icinga::STARTUP_BOUND;
    let mut last = None;
    while Instant::now() < end {
        last = client.service_state("h1", "s1").unwrap();
        if last
            .as_ref()
            .is_some_and(|s| s.state == state && s.last_check_result_output.as_deref() == Some(output))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("s1 never showed state {state} with {output:?}; last {last:?}");
}

#[test]
fn check_results_go_in_and_states_come_out_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let icinga = daemon(dir.path());
    let client = icinga.client();

    let before = client.service_state("h1", "s1").unwrap().expect("s1 exists");
    assert_eq!(before.check_command, "dummy");
    client.process_check_result("h1", "s1", 2, "CRITICAL: x").unwrap();
    wait_for_state(&client, 2, "CRITICAL: x");
    assert_eq!(client.service_names().unwrap(), [("h1".to_string(), "s1".to_string())]);

    // A name that would widen a filter built by concatenation matches nothing.
    let hostile = r#"h1" || true || ""#;
    let e = client
        .process_check_result(hostile, "s1", 0, "OK: injected")
        .unwrap_err();
    assert!(
        matches!(e, ApiError::NoSuchService { .. }) && e.to_string().contains("no such service"),
        "{e}"
    );
    let e = client
        .process_check_result("h1", hostile, 0, "OK: injected")
        .unwrap_err();
    assert!(matches!(e, ApiError::NoSuchService { .. }), "{e}");
    assert_eq!(client.service_state(hostile, "s1").unwrap(), None);
    assert_eq!(client.service_state("h1", "nope").unwrap(), None);
    // … and s1 kept its state.
    let now = client.service_state("h1", "s1").unwrap().unwrap();
    assert_eq!(
        (now.state, now.last_check_result_output.as_deref()),
        (2, Some("CRITICAL: x"))
    );

    // A wrong password: refused, and the error shows neither password.
    let right = std::fs::read_to_string(&icinga.api.password_file).unwrap();
    let wrong_file = dir.path().join("wrong-password");
    std::fs::write(&wrong_file, "not-the-Password-42\n").unwrap();
    let mut wrong = icinga.api.clone();
    wrong.password_file = wrong_file;
    let e = ApiClient::new(&wrong).unwrap().program_start().unwrap_err();
    assert!(matches!(e, ApiError::Unauthorized { .. }), "{e}");
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(
            !text.contains("not-the-Password-42") && !text.contains(right.trim()),
            "{text}"
        );
        assert!(text.contains("mc-test"), "{text}");
    }

    // The certificate is for "localhost": by IP address, host name verification fails.
    let mut by_ip = icinga.api.clone();
    by_ip.url = format!("https://127.0.0.1:{}", icinga.api_port);
    let e = ApiClient::new(&by_ip).unwrap().program_start().unwrap_err();
    assert!(matches!(e, ApiError::Transport { .. }), "{e}");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    // Without the Icinga CA (the public roots), the certificate is not trusted.
    let mut no_ca = icinga.api.clone();
    no_ca.ca_file = None;
    let e = ApiClient::new(&no_ca).unwrap().program_start().unwrap_err();
    assert!(matches!(e, ApiError::Transport { .. }), "{e}");
}

#[test]
fn sighup_reloads_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let icinga = daemon(dir.path());
    let client = icinga.client();
    let pid = i32::try_from(icinga.pid()).unwrap();
    // Started as the wrapper script, it runs the real binary: still ours.
    is_our_icinga(pid, &icinga2_bin()).unwrap();
    let pid_file = std::fs::read_to_string(icinga.pid_file()).unwrap();
    assert_eq!(
        pid_file.trim(),
        pid.to_string(),
        "the pid file names the process we started"
    );
    let e = is_our_icinga(std::process::id() as i32, &icinga2_bin()).unwrap_err();
    assert!(e.contains("it runs"), "{e}");

    let before = client.program_start().unwrap();
    icinga.reload();
    let after = icinga.wait_for_program_start_after(before);
    assert!(after > before);
    // The same daemon, with its objects, answers after the reload.
    assert!(client.service_state("h1", "s1").unwrap().is_some());
    is_our_icinga(pid, &icinga2_bin()).unwrap();
}
