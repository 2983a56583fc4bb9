//! The daemon's configuration: a TOML file (`--config`), overridden by command-line
//! flags. Every key is documented in docs/daemon.md, with a sample in
//! `profiles-sample/monitor-compile.toml`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::backend::{Backend, Icinga2Settings, ZoneSettings};
use monitor_engine::base::BaseConfig;
use monitor_runtime::deploy::{DeployPoint, Reload};
use monitor_runtime::guard::RemovalPolicy;
use monitor_runtime::plugin_host::PluginSet;
use monitor_runtime::worker::WorkerSettings;
use serde::Deserialize;

/// Everything the daemon needs, after the file and the flags are merged.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Directories of profiles (`*.xml`, `*.xml.gz`, searched recursively).
    #[serde(default)]
    pub profiles: Vec<PathBuf>,
    /// Directories of translator plugin libraries.
    #[serde(default = "default_translators")]
    pub translators: Vec<PathBuf>,
    /// The users file (TOML); not read when `[ldap]` is given.
    #[serde(default)]
    pub users: PathBuf,
    /// The live output path: a symlink, named by `cfg_dir=` in the Nagios main config.
    pub output: PathBuf,
    /// Sets, staging, rejected sets, plugin copies and status.json live here.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// The persistent cache (redb). Default: `STATE_DIR/cache.redb`.
    #[serde(default)]
    pub cache: Option<PathBuf>,
    /// The site's Nagios main configuration file (required by the daemon).
    #[serde(default)]
    pub nagios_config: PathBuf,
    /// The Nagios binary, for `nagios -v`.
    #[serde(default = "default_nagios_bin")]
    pub nagios_bin: PathBuf,
    /// The external command file, for passive results (required by the daemon).
    #[serde(default)]
    pub command_file: PathBuf,
    /// How to reload Nagios. Default: `RESTART_PROGRAM` through `command_file`.
    #[serde(default)]
    pub reload: Option<Reload>,
    /// Quiet time after a profile change before compiling, in milliseconds.
    #[serde(default = "default_debounce_ms")]
    pub debounce_ms: u64,
    /// Full rescan (and resubmission of results) interval, in seconds.
    #[serde(default = "default_rescan_seconds")]
    pub rescan_seconds: u64,
    /// How long a profile may stay unparseable (being written) before it is reported, in
    /// seconds.
    #[serde(default = "default_error_grace_seconds")]
    pub error_grace_seconds: u64,
    /// Rejected sets kept for inspection.
    #[serde(default = "default_keep_rejected")]
    pub keep_rejected: usize,
    /// Seconds to wait after a reload before submitting results (Nagios restarts).
    #[serde(default = "default_submit_delay_seconds")]
    pub submit_delay_seconds: u64,
    /// Follow symlinks under a profile directory that lead out of it (off: such a link
    /// is an error for its path, and not read).
    #[serde(default)]
    pub follow_symlinks_out: bool,
    /// Require each profile's path to name its machine (`node.xml`, `node.domain.xml` or
    /// `<domain>/<node>/XML/profile.xml`): a file claiming another machine is an error.
    #[serde(default)]
    pub bind_paths: bool,
    /// How long a reload may take to show in Nagios's status file (`program_start`)
    /// before it counts as failed and is rolled back.
    #[serde(default = "default_reload_timeout_seconds")]
    pub reload_timeout_seconds: u64,
    /// The notifier for XMPP and Slack notifications.
    #[serde(default)]
    pub notifier: Option<PathBuf>,
    /// The mail program for e-mail notifications.
    #[serde(default)]
    pub mail_command: Option<PathBuf>,
    /// How much one deploy may remove before it is held for `monitor-compile approve`.
    #[serde(default)]
    pub removal_guard: RemovalPolicy,
    /// The host of the `monitor-compile: deploy` service: the monitoring server's own
    /// machine when it is compiled from a profile, or else a virtual host of this name.
    #[serde(default = "default_self_host")]
    pub self_host: String,
    /// Contact groups notified by the deploy service (held, rejected or failed deploys).
    #[serde(default)]
    pub admin_groups: Vec<String>,
    /// Nagios's status file, polled to notice that Nagios (re)started. Default: the
    /// `status_file=` of `nagios_config`.
    #[serde(default)]
    pub status_file: Option<PathBuf>,
    /// How often to look at the status file, in milliseconds.
    #[serde(default = "default_nagios_poll_ms")]
    pub nagios_poll_ms: u64,
    /// Base objects the site defines itself, by our names (`mc-24x7`, ...): not written,
    /// counted as defined (docs/daemon.md).
    #[serde(default)]
    pub site_objects: BTreeSet<String>,
    /// Whom `nagios -v` runs as when the daemon is root. Default: the main config's
    /// `nagios_user` (`root`: the daemon's own user).
    #[serde(default)]
    pub validate_user: Option<String>,
    /// How plugin libraries are run: the `[plugins]` table (docs/daemon.md).
    #[serde(default)]
    pub plugins: PluginSettings,
    /// `"nagios"` (default) or `"icinga2"` (docs/icinga2.md).
    #[serde(default)]
    pub backend: Backend,
    /// The zones: the `[zones]` table (docs/icinga2.md). Without it every machine is in
    /// one master zone, and the Nagios backend writes no zone hostgroups.
    #[serde(default)]
    pub zones: Option<ZoneSettings>,
    /// The Icinga 2 backend's settings: the `[icinga2]` table.
    #[serde(default)]
    pub icinga2: Icinga2Settings,
    /// Profiles fetched over HTTP(S) from the LCFG server: the `[http]` table
    /// (docs/sources.md). The daemon reads its mirror as one more profile directory.
    #[serde(default)]
    pub http: Option<crate::sources::HttpSettings>,
    /// Contacts and groups from LDAP: the `[ldap]` table (docs/sources.md).
    #[serde(default)]
    pub ldap: Option<crate::sources::LdapSettings>,
    /// Hosts that register their own monitoring over SSH: the `[monitoring_info]` table
    /// (docs/monitoring-info.md). Their profiles are made in the state directory, which
    /// is then read as one more profile directory.
    #[serde(default)]
    pub monitoring_info: Option<crate::monitoring_info::MonitoringInfoSettings>,
}

/// Where plugin libraries run.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// In worker processes of their own (the default): a crash ends a worker, not the
    /// daemon.
    #[default]
    Worker,
    /// In the daemon's own process: faster to start, and a crash ends the daemon.
    InProcess,
}

/// The `[plugins]` table: how plugin libraries run, and the limits of their workers.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PluginSettings {
    /// `"worker"` (default) or `"in-process"`.
    pub isolation: Isolation,
    /// Worker processes per library.
    pub workers: usize,
    /// Seconds one `translate` (or the batch of `notify_unchanged`) may take.
    pub call_timeout_seconds: u64,
    /// Seconds loading, `start_pass` or `finish_pass` may take.
    pub pass_timeout_seconds: u64,
    /// Each worker's address-space limit in MiB (0: none).
    pub memory_mb: u64,
    /// CPU seconds one call may use (0: none).
    pub cpu_seconds: u64,
}

impl Default for PluginSettings {
    /// The runtime's defaults ([`WorkerSettings::new`]), in workers.
    fn default() -> Self {
        let w = WorkerSettings::new(PathBuf::new(), PathBuf::new());
        PluginSettings {
            isolation: Isolation::Worker,
            workers: w.workers,
            call_timeout_seconds: w.call_timeout.as_secs(),
            pass_timeout_seconds: w.pass_timeout.as_secs(),
            memory_mb: w.memory_mb,
            cpu_seconds: w.cpu_seconds,
        }
    }
}

fn default_self_host() -> String {
    "monitor-compile".into()
}
fn default_nagios_poll_ms() -> u64 {
    1000
}

fn default_translators() -> Vec<PathBuf> {
    vec![PathBuf::from(monitor_runtime::plugin_host::DEFAULT_TRANSLATOR_DIR)]
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/monitor-compile")
}
fn default_nagios_bin() -> PathBuf {
    PathBuf::from(monitor_runtime::validate::DEFAULT_NAGIOS)
}
fn default_debounce_ms() -> u64 {
    2000
}
fn default_rescan_seconds() -> u64 {
    300
}
fn default_error_grace_seconds() -> u64 {
    30
}
fn default_keep_rejected() -> usize {
    5
}
fn default_reload_timeout_seconds() -> u64 {
    60
}

fn default_submit_delay_seconds() -> u64 {
    2
}

/// Command-line values that override the file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Directory of profiles (`*.xml`, `*.xml.gz`, searched recursively). Repeatable.
    #[arg(long = "profiles", value_name = "DIR")]
    pub profiles: Vec<PathBuf>,
    /// Output directory (one-shot) or live symlink (daemon).
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Users file (TOML) with contacts and their groups.
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,
    /// Directory of translator plugin libraries (`*.so`). Repeatable; by default
    /// /usr/lib/monitor-compile/translators. A plugin replaces the built-in translator of
    /// the same component.
    #[arg(long = "translators", value_name = "DIR")]
    pub translators: Vec<PathBuf>,
    /// The Nagios binary (for --validate and the daemon's validation).
    #[arg(long, value_name = "PATH")]
    pub nagios_bin: Option<PathBuf>,
    /// The notifier program for XMPP and Slack notifications.
    #[arg(long, value_name = "PATH")]
    pub notifier: Option<PathBuf>,
    /// The mail program used by e-mail notifications.
    #[arg(long, value_name = "PATH")]
    pub mail_command: Option<PathBuf>,
    /// Whom `nagios -v` runs as when we are root (default: `nagios` for --once, the main
    /// config's `nagios_user` for the daemon; `root`: ourselves).
    #[arg(long, value_name = "USER")]
    pub validate_user: Option<String>,
    /// Daemon: the site's Nagios main config.
    #[arg(long, value_name = "FILE")]
    pub nagios_config: Option<PathBuf>,
    /// Daemon: the external command file.
    #[arg(long, value_name = "FILE")]
    pub command_file: Option<PathBuf>,
    /// Daemon: the state directory.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Daemon: the persistent cache file.
    #[arg(long, value_name = "FILE")]
    pub cache: Option<PathBuf>,
    /// Daemon: debounce interval in milliseconds.
    #[arg(long, value_name = "MS")]
    pub debounce_ms: Option<u64>,
    /// Daemon: full rescan interval in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub rescan_seconds: Option<u64>,
    /// Daemon: grace period for profiles being written, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub error_grace_seconds: Option<u64>,
    /// The monitoring core to write for: nagios (default) or icinga2.
    #[arg(long, value_enum, value_name = "CORE")]
    pub backend: Option<Backend>,
    /// Daemon, for tests only: stop every deploy for good at this point (`staged`,
    /// `validated`, `renamed` or `swapped`), for a test to `kill -9` the daemon there.
    #[arg(long, hide = true, value_name = "POINT")]
    pub test_pause_at: Option<DeployPoint>,
}

/// What the settings are for: each needs its own keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `--once`: profiles, users and output; the Nagios keys are not needed.
    Once,
    /// The daemon: also `nagios_config` and `command_file`.
    Daemon,
}

/// The daemon's settings: [`load_for`] in [`Mode::Daemon`].
pub fn load(file: Option<&Path>, o: &Overrides) -> Result<Settings, String> {
    load_for(file, o, Mode::Daemon)
}

/// Read `file` (if any) and apply `o` on top: the one loader of `--once` and the daemon.
/// Every key is checked (an unknown key, a typo, is an error), and the keys `mode` needs
/// must be given in the file or as flags. Errors name the file and the key.
pub fn load_for(file: Option<&Path>, o: &Overrides, mode: Mode) -> Result<Settings, String> {
    let mut table: toml::Table = match file {
        Some(f) => {
            let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
            text.parse().map_err(|e| format!("{}: {e}", f.display()))?
        }
        None => toml::Table::new(),
    };
    let path = |p: &PathBuf| toml::Value::String(p.display().to_string());
    let paths = |v: &[PathBuf]| toml::Value::Array(v.iter().map(path).collect());
    if !o.profiles.is_empty() {
        table.insert("profiles".into(), paths(&o.profiles));
    }
    if !o.translators.is_empty() {
        table.insert("translators".into(), paths(&o.translators));
    }
    for (key, value) in [
        ("output", &o.output),
        ("users", &o.users),
        ("nagios_bin", &o.nagios_bin),
        ("notifier", &o.notifier),
        ("mail_command", &o.mail_command),
        ("nagios_config", &o.nagios_config),
        ("command_file", &o.command_file),
        ("state_dir", &o.state_dir),
        ("cache", &o.cache),
    ] {
        if let Some(v) = value {
            table.insert(key.into(), path(v));
        }
    }
    if let Some(b) = o.backend {
        let name = match b {
            Backend::Nagios => "nagios",
            Backend::Icinga2 => "icinga2",
        };
        table.insert("backend".into(), toml::Value::String(name.into()));
    }
    if let Some(u) = &o.validate_user {
        table.insert("validate_user".into(), toml::Value::String(u.clone()));
    }
    for (key, value) in [
        ("debounce_ms", o.debounce_ms),
        ("rescan_seconds", o.rescan_seconds),
        ("error_grace_seconds", o.error_grace_seconds),
    ] {
        if let Some(v) = value {
            table.insert(key.into(), toml::Value::Integer(v as i64));
        }
    }
    let what = file
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| "the command line".into());
    let mut required = vec![("output", "--output")];
    if !table.contains_key("ldap") {
        required.insert(0, ("users", "--users"));
    }
    // Profiles come from directories, or (the daemon) from the LCFG server over HTTP.
    if !(mode == Mode::Daemon && table.contains_key("http")) {
        required.insert(0, ("profiles", "--profiles"));
    }
    let icinga = table.get("backend").and_then(toml::Value::as_str) == Some("icinga2");
    if mode == Mode::Daemon && !icinga {
        required.extend([("nagios_config", "--nagios-config"), ("command_file", "--command-file")]);
    }
    for (key, flag) in required {
        let empty = match table.get(key) {
            None => true,
            Some(toml::Value::Array(a)) => a.is_empty(),
            Some(_) => false,
        };
        if empty {
            return Err(match file {
                Some(f) => format!("{flag} is required (or `{key}` in {})", f.display()),
                None => format!("{flag} is required"),
            });
        }
    }
    let settings: Settings = toml::Value::Table(table)
        .try_into()
        .map_err(|e| format!("{what}: {e}"))?;
    settings.base_config().map_err(|e| format!("{what}: {e}"))?;
    settings.engine_zones().map_err(|e| format!("{what}: {e}"))?;
    if let Some(h) = &settings.http {
        h.fetcher_config(&settings.state_dir)
            .map_err(|e| format!("{what}: {e}"))?;
    }
    settings.user_source().map_err(|e| format!("{what}: {e}"))?;
    if settings.backend == Backend::Icinga2 {
        settings.icinga_tree().map_err(|e| format!("{what}: {e}"))?;
        if mode == Mode::Daemon {
            match settings.icinga2.results {
                crate::backend::Results::Api if settings.icinga2.api.is_none() => {
                    return Err(format!(
                        "{what}: [icinga2] results = \"api\" needs an [icinga2.api] table (url, user, password_file)"
                    ));
                }
                crate::backend::Results::CommandPipe if settings.command_file.as_os_str().is_empty() => {
                    return Err(format!(
                        "{what}: [icinga2] results = \"command-pipe\" needs command_file"
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(settings)
}

/// The base definitions' settings: the defaults with what is given on top, checked.
pub fn base_config(
    notifier: Option<PathBuf>,
    mail_command: Option<PathBuf>,
    site_objects: BTreeSet<String>,
) -> Result<BaseConfig, monitor_engine::base::BaseConfigError> {
    let mut base = BaseConfig::default();
    if let Some(n) = notifier {
        base.notifier = n;
    }
    if let Some(m) = mail_command {
        base.mail_command = m;
    }
    base.site_objects = site_objects;
    base.check()?;
    Ok(base)
}

impl Settings {
    /// The state directory used when the configuration does not name one.
    /// The plugin libraries of `dirs`, run as `[plugins]` says; content-addressed copies
    /// go to `copy_dir`. Workers are this program, started again as workers.
    pub fn plugin_set(&self, dirs: Vec<PathBuf>, copy_dir: PathBuf) -> Result<PluginSet, String> {
        let p = &self.plugins;
        Ok(match p.isolation {
            Isolation::InProcess => PluginSet::new(dirs, copy_dir),
            Isolation::Worker => {
                let program = std::env::current_exe()
                    .map_err(|e| format!("cannot find this program to start plugin workers: {e}"))?;
                PluginSet::with_workers(
                    dirs,
                    WorkerSettings {
                        program,
                        copy_dir,
                        workers: p.workers.max(1),
                        call_timeout: Duration::from_secs(p.call_timeout_seconds.max(1)),
                        pass_timeout: Duration::from_secs(p.pass_timeout_seconds.max(1)),
                        memory_mb: p.memory_mb,
                        cpu_seconds: p.cpu_seconds,
                    },
                )
            }
        })
    }

    /// The users source: LDAP with `[ldap]` (returned also on its own, for the daemon to
    /// tell it which groups the translators registered), else the TOML users file.
    pub fn user_source(
        &self,
    ) -> Result<
        (
            Box<dyn monitor_engine::users::UserSource>,
            Option<monitor_runtime::users_ldap::LdapUsers>,
        ),
        String,
    > {
        match &self.ldap {
            Some(l) => {
                let users = monitor_runtime::users_ldap::LdapUsers::new(l.config(&self.state_dir))
                    .map_err(|e| format!("[ldap]: {e}"))?;
                Ok((Box::new(users.clone()), Some(users)))
            }
            None => Ok((Box::new(monitor_engine::users::TomlUsers::new(&self.users)), None)),
        }
    }

    /// The engine's zones (none unless `[zones]` is given).
    pub fn engine_zones(&self) -> Result<monitor_engine::zones::Zones, String> {
        match &self.zones {
            Some(z) => z.engine_zones(),
            None => Ok(Default::default()),
        }
    }

    /// The Icinga 2 zone tree: `[zones]`, or one master zone of this machine.
    pub fn icinga_tree(&self) -> Result<monitor_icinga2::Tree, String> {
        self.zones.clone().unwrap_or_default().tree()
    }

    pub fn default_state_dir() -> PathBuf {
        default_state_dir()
    }

    /// The base definitions' settings (checked when the settings were loaded).
    pub fn base_config(&self) -> Result<BaseConfig, monitor_engine::base::BaseConfigError> {
        base_config(
            self.notifier.clone(),
            self.mail_command.clone(),
            self.site_objects.clone(),
        )
    }

    pub fn cache_path(&self) -> PathBuf {
        self.cache.clone().unwrap_or_else(|| self.state_dir.join("cache.redb"))
    }

    /// The status file to poll: `status_file`, or the main config's `status_file=`.
    pub fn nagios_status_file(&self) -> Option<PathBuf> {
        if self.backend == Backend::Icinga2 {
            return None;
        }
        if let Some(f) = &self.status_file {
            return Some(f.clone());
        }
        let main = std::fs::read_to_string(&self.nagios_config).ok()?;
        let dir = self.nagios_config.parent().unwrap_or(Path::new("/"));
        monitor_runtime::deploy::main_config_path(&main, dir, "status_file")
    }

    /// Whether Nagios keeps its states across a restart: `retain_state_information=1`
    /// with a `state_retention_file` in its main config. Without it, a restart forgets
    /// every result, and the daemon submits them all again after its own reloads.
    pub fn nagios_retains_state(&self) -> bool {
        let Ok(main) = std::fs::read_to_string(&self.nagios_config) else {
            return false;
        };
        let last = |k| {
            monitor_runtime::validate::main_config_values(&main, k)
                .last()
                .map(str::trim)
        };
        last("retain_state_information") == Some("1") && last("state_retention_file").is_some_and(|v| !v.is_empty())
    }

    pub fn reload_method(&self) -> Reload {
        self.reload.clone().unwrap_or_else(|| match self.backend {
            Backend::Nagios => Reload::CommandFile {
                path: self.command_file.clone(),
            },
            Backend::Icinga2 => Reload::Icinga2Signal {
                pid_file: PathBuf::from(monitor_runtime::icinga2::DEFAULT_PID_FILE),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nagios_retains_state_only_when_its_main_config_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("nagios.cfg");
        let s = |text: &str| {
            std::fs::write(&main, text).unwrap();
            let f = dir.path().join("c.toml");
            std::fs::write(
                &f,
                format!(
                    "profiles = [\"/p\"]\nusers = \"/u.toml\"\noutput = \"/o\"\nnagios_config = \"{}\"\ncommand_file = \"/c\"\n",
                    main.display()
                ),
            )
            .unwrap();
            load(Some(&f), &Overrides::default()).unwrap().nagios_retains_state()
        };
        assert!(s("retain_state_information=1\nstate_retention_file=/var/r.dat\n"));
        assert!(!s("state_retention_file=/var/r.dat\n"));
        assert!(!s(
            "retain_state_information=1\nretain_state_information=0\nstate_retention_file=/r\n"
        ));
        assert!(!s("retain_state_information=1\n"));
    }

    #[test]
    fn flags_override_the_file_and_defaults_apply() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "profiles = [\"/p\"]\nusers = \"/u.toml\"\noutput = \"/o\"\nnagios_config = \"/n.cfg\"\ncommand_file = \"/c\"\n[reload]\nmethod = \"signal\"\nlock_file = \"/run/nagios.lock\"\n",
        )
        .unwrap();
        let o = Overrides {
            users: Some("/other.toml".into()),
            debounce_ms: Some(50),
            ..Default::default()
        };
        let s = load(Some(&f), &o).unwrap();
        assert_eq!(s.profiles, [PathBuf::from("/p")]);
        assert_eq!(s.users, PathBuf::from("/other.toml"));
        assert_eq!(s.debounce_ms, 50);
        assert_eq!(s.rescan_seconds, 300);
        assert_eq!(s.cache_path(), PathBuf::from("/var/lib/monitor-compile/cache.redb"));
        assert_eq!(
            s.reload_method(),
            Reload::Signal {
                lock_file: "/run/nagios.lock".into()
            }
        );
        std::fs::write(&f, "profiles = [\"/p\"]\nuser = \"typo\"\n").unwrap();
        let e = load(Some(&f), &Overrides::default()).unwrap_err();
        assert!(e.contains("c.toml") && e.contains("user"), "{e}");
    }
}

#[cfg(test)]
mod site_objects {
    #[test]
    fn site_objects_and_validate_user_load_and_unknown_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        let base = "profiles = [\"/p\"]\nusers = \"/u.toml\"\noutput = \"/o\"\nnagios_config = \"/n.cfg\"\ncommand_file = \"/c\"\n";
        std::fs::write(
            &f,
            format!("{base}site_objects = [\"mc-24x7\"]\nvalidate_user = \"nagios\"\n"),
        )
        .unwrap();
        let s = super::load(Some(&f), &super::Overrides::default()).unwrap();
        assert!(s.site_objects.contains("mc-24x7"));
        assert_eq!(s.validate_user.as_deref(), Some("nagios"));
        assert!(s.base_config().unwrap().site_objects.contains("mc-24x7"));
        std::fs::write(&f, format!("{base}site_objects = [\"24x7\"]\n")).unwrap();
        let e = super::load(Some(&f), &super::Overrides::default()).unwrap_err();
        assert!(e.contains("c.toml") && e.contains("site_objects"), "{e}");
    }
}

#[cfg(test)]
mod sample {
    #[test]
    fn the_sample_configuration_loads() {
        let f = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles-sample/monitor-compile.toml");
        let s = super::load(Some(&f), &super::Overrides::default()).unwrap();
        assert_eq!(s.output, std::path::PathBuf::from("/etc/nagios4/monitor-compile"));
        assert_eq!(s.debounce_ms, 2000);
        assert!(matches!(
            s.reload_method(),
            monitor_runtime::deploy::Reload::CommandFile { .. }
        ));
    }
}
