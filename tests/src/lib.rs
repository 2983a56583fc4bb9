//! Shared fixtures for the end-to-end tests: the sample fleet, profile builders and the
//! real Nagios binary. Tests that need Nagios fail (never skip) when it is missing:
//! `.ci/run` installs `nagios4-core` and `monitoring-plugins`.

use std::path::{Path, PathBuf};

use monitor_engine::Engine;
use monitor_engine::base::BaseConfig;
use monitor_engine::users::TomlUsers;
use monitor_sdk::translator::Translator;

pub mod icinga;
pub mod listeners;
pub mod mail;
pub mod nginx;
pub mod pki;
pub mod slapd;
pub mod sshd;

/// docs/translator-guide.md, included so that every Rust example in it is a doctest:
/// `cargo test -p monitor-integration-tests --doc`.
#[doc = include_str!("../../docs/translator-guide.md")]
pub mod translator_guide {}

/// README.md, whose translator example is a doctest too.
#[doc = include_str!("../../README.md")]
pub mod readme {}

/// The repository's `profiles-sample/` directory.
pub fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles-sample")
}

/// The Nagios binary: `$NAGIOS_BIN` or Debian's `/usr/sbin/nagios4`.
pub fn nagios_bin() -> PathBuf {
    let bin = std::env::var_os("NAGIOS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/nagios4"));
    assert!(
        bin.exists(),
        "{} is missing: install nagios4-core (as .ci/run does)",
        bin.display()
    );
    bin
}

/// A temporary output directory that Nagios can read: mode 0755, where
/// `tempfile::tempdir` makes 0700. Run as root, validation runs `nagios -v` as the
/// `nagios` user, which could not open a 0700 directory.
pub fn output_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o755))
        .tempdir()
        .expect("a temporary directory")
}

/// The built-in translators (the fleet tool's list, which the benchmark uses too).
pub fn translators() -> Vec<Box<dyn Translator>> {
    fleet::translators()
}

/// An engine over the built-in translators and the sample users.
pub fn engine() -> Engine {
    Engine::new(
        translators(),
        Box::new(TomlUsers::new(samples().join("users.toml"))),
        BaseConfig::default(),
    )
}

/// A profile document for machine `node`.example.org with the given component XML;
/// `monitored` goes into `nagios_client.components`.
pub fn profile_xml(node: &str, monitored: &str, components: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<profile xmlns="http://www.lcfg.org/namespace/profile-1.0" xmlns:cfg="http://www.lcfg.org/namespace/profile-1.0">
 <lcfg>
  <published_by>lcfgsrv1.example.org</published_by>
  <components>
   <profile>
    <node>{node}</node>
    <domain>example.org</domain>
   </profile>
{components}
   <nagios_client>
    <components>{monitored}</components>
   </nagios_client>
  </components>
  <packages>
   <package><name>lcfg-nagios-client</name><v>*</v><r>*</r></package>
  </packages>
 </lcfg>
</profile>
"#
    )
}

/// A KDC component.
pub fn kerberos_xml(kind: &str, realm: &str, groups: &str) -> String {
    format!("   <kerberos><type>{kind}</type><realm>{realm}</realm><nagios_groups>{groups}</nagios_groups></kerberos>")
}

/// Copy the three reference profiles (not users.toml) into `dir`.
pub fn copy_samples(dir: &Path) {
    for f in ["kdc1.xml", "jabber1.xml", "web1.xml"] {
        std::fs::copy(samples().join(f), dir.join(f)).expect("copy sample");
    }
}

/// Plugin libraries built from this workspace for the tests.
#[derive(Debug)]
pub struct PluginLibs {
    pub jabberd: PathBuf,
    pub flaky_v1: PathBuf,
    pub flaky_v2: PathBuf,
    pub bad_abi: PathBuf,
    /// `test-plugin-evil`: misbehaves in `translate` as a machine's `evil.mode` asks.
    pub evil: PathBuf,
    /// `test-plugin-evil` built to exit in `start_pass`.
    pub evil_exit: PathBuf,
    /// `test-plugin-evil` version 1.0.1: another good library file.
    pub evil_v2: PathBuf,
}

/// Build the plugin libraries once per test process, with the real cargo, into
/// `target/plugin-tests` (a target directory of their own, so that the `v2` feature of
/// the flaky plugin does not disturb the main build).
pub fn plugin_libs() -> &'static PluginLibs {
    static LIBS: std::sync::OnceLock<PluginLibs> = std::sync::OnceLock::new();
    LIBS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let target = root.join("target/plugin-tests");
        let out = target.join("libs");
        std::fs::create_dir_all(&out).expect("create plugin output dir");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let build = |features: &str, packages: &[&str]| {
            let mut cmd = std::process::Command::new(&cargo);
            cmd.current_dir(&root).arg("build").arg("--target-dir").arg(&target);
            if !features.is_empty() {
                cmd.args(["--features", features]);
            }
            for p in packages {
                cmd.args(["-p", p]);
            }
            let status = cmd.status().expect("run cargo build for the plugins");
            assert!(status.success(), "building the plugin libraries failed");
        };
        let lib = |name: &str| target.join("debug").join(format!("lib{name}.so"));
        let keep = |from: &str, to: &str| {
            let dest = out.join(to);
            std::fs::copy(lib(from), &dest).expect("copy plugin library");
            dest
        };
        build(
            "",
            &[
                "translator-jabberd-plugin",
                "test-plugin-flaky",
                "test-plugin-bad-abi",
                "test-plugin-evil",
            ],
        );
        let jabberd = keep("translator_jabberd_plugin", "jabberd.so");
        let flaky_v1 = keep("test_plugin_flaky", "flaky-v1.so");
        let bad_abi = keep("test_plugin_bad_abi", "bad-abi.so");
        let evil = keep("test_plugin_evil", "evil.so");
        build("test-plugin-evil/exit-in-start-pass", &["test-plugin-evil"]);
        let evil_exit = keep("test_plugin_evil", "evil-exit.so");
        build("test-plugin-evil/v2", &["test-plugin-evil"]);
        let evil_v2 = keep("test_plugin_evil", "evil-v2.so");
        build("test-plugin-flaky/v2", &["test-plugin-flaky"]);
        let flaky_v2 = keep("test_plugin_flaky", "flaky-v2.so");
        PluginLibs {
            jabberd,
            flaky_v1,
            flaky_v2,
            bad_abi,
            evil,
            evil_exit,
            evil_v2,
        }
    })
}

/// Stop a server a test started: SIGTERM, then, when it has not exited within `grace`,
/// SIGKILL to its whole process group (it was started as a group leader); then reap it.
pub fn stop_child(child: &mut std::process::Child, grace: std::time::Duration) {
    use nix::sys::signal::{Signal, kill, killpg};
    use nix::unistd::Pid;
    let Ok(pid) = i32::try_from(child.id()) else {
        return;
    };
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    let end = std::time::Instant::now() + grace;
    while std::time::Instant::now() < end {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Not reaped yet, so the group id is still its own.
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    let _ = child.wait();
}

/// Write a Nagios main configuration for a daemon test under `d`: `d/nagios/nagios.cfg`
/// (the live output `d/nagios/generated`, the rest under `d/var`, run as root, Debian's
/// illegal characters) and `d/nagios/resource.cfg`. Returns the main configuration.
pub fn write_daemon_nagios_config(d: &Path) -> PathBuf {
    for sub in ["nagios", "var/checkresults"] {
        std::fs::create_dir_all(d.join(sub)).expect("make the Nagios directories");
    }
    let v = d.join("var");
    let main = format!(
        "cfg_dir={live}\nresource_file={n}/resource.cfg\ncheck_result_path={v}/checkresults\ntemp_path={v}\n\
         lock_file={v}/nagios.lock\nlog_file={v}/nagios.log\nstatus_file={v}/status.dat\n\
         command_file={v}/nagios.cmd\ncheck_external_commands=1\nnagios_user=root\nnagios_group=root\n\
         illegal_object_name_chars=`~!$%^&*|'\"<>?,()=\nillegal_macro_output_chars=`~$&|'\"<>\n",
        live = d.join("nagios/generated").display(),
        n = d.join("nagios").display(),
        v = v.display()
    );
    let file = d.join("nagios/nagios.cfg");
    std::fs::write(&file, main).expect("write nagios.cfg");
    std::fs::write(d.join("nagios/resource.cfg"), "$USER1$=/usr/lib/nagios/plugins\n").expect("write resource.cfg");
    file
}
