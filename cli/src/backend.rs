//! The backend: which monitoring core the configuration is for (`backend = "nagios"`, the
//! default, or `"icinga2"`), the zones machines are placed in, and the Icinga 2 settings.
//! docs/icinga2.md describes every key.

use std::path::PathBuf;
use std::time::Duration;

use monitor_engine::zones::{ZoneName, ZoneRule, Zones};
use monitor_engine::{Output, PassReport, Problem};
use monitor_icinga2::{Endpoint, Tree, ZoneDef};
use monitor_runtime::icinga2::api::ApiConfig;
use monitor_runtime::icinga2::validate::Node;
use serde::Deserialize;

/// Which core the output is for.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A Nagios object directory (`cfg_dir=`).
    #[default]
    Nagios,
    /// An Icinga 2 tree: `zones.conf` and `zones.d/<zone>/`.
    Icinga2,
}

/// One satellite zone.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Satellite {
    /// The zone's name.
    pub name: String,
    /// Its parent zone (default: the master zone).
    #[serde(default)]
    pub parent: Option<String>,
    /// Its Icinga 2 endpoints.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

/// The `[zones]` table.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ZoneSettings {
    /// The master zone's name.
    #[serde(default = "default_master")]
    pub master: String,
    /// The master zone's endpoints (default: this machine's host name).
    #[serde(default)]
    pub master_endpoints: Vec<Endpoint>,
    /// The satellite zones.
    #[serde(default)]
    pub satellites: Vec<Satellite>,
    /// Domain rules: `{ domain = "east.example.org", zone = "east" }`, first match wins.
    #[serde(default)]
    pub rules: Vec<ZoneRule>,
    /// The global zone of templates, commands, users and notifications.
    #[serde(default = "default_global")]
    pub global_zone: String,
}

fn default_master() -> String {
    "master".into()
}
fn default_global() -> String {
    "global-templates".into()
}

impl Default for ZoneSettings {
    fn default() -> Self {
        ZoneSettings {
            master: default_master(),
            master_endpoints: Vec::new(),
            satellites: Vec::new(),
            rules: Vec::new(),
            global_zone: default_global(),
        }
    }
}

/// How `monitoring:` results reach Icinga 2.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Results {
    /// The REST API (`process-check-result`), with `[icinga2.api]`.
    #[default]
    Api,
    /// The external command pipe (`command_file`; the `command` feature).
    CommandPipe,
}

/// `[icinga2.api]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Such as `https://icinga-master.example.org:5665`.
    pub url: String,
    /// The CA to trust (`/var/lib/icinga2/certs/ca.crt`); default: the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The `ApiUser` (it needs `actions/process-check-result` and `objects/query/*`).
    pub user: String,
    /// A file, readable only by the daemon, whose first line is the password.
    pub password_file: PathBuf,
    /// Seconds one call may take.
    #[serde(default = "default_api_timeout")]
    pub timeout_seconds: u64,
}

fn default_api_timeout() -> u64 {
    10
}

/// The `[icinga2]` table.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Icinga2Settings {
    /// The icinga2 program.
    #[serde(default = "default_icinga2")]
    pub bin: PathBuf,
    /// `PluginDir` for validation.
    #[serde(default = "default_plugin_dir")]
    pub plugin_dir: PathBuf,
    /// Whom `icinga2 daemon -C` runs as when we are root (default `nagios`, Debian's
    /// `ICINGA2_USER`).
    #[serde(default)]
    pub validate_user: Option<String>,
    /// How results are sent.
    #[serde(default)]
    pub results: Results,
    /// The REST API, for `results = "api"`.
    #[serde(default)]
    pub api: Option<ApiSettings>,
}

fn default_icinga2() -> PathBuf {
    PathBuf::from(monitor_runtime::icinga2::DEFAULT_ICINGA2)
}
fn default_plugin_dir() -> PathBuf {
    PathBuf::from(monitor_runtime::icinga2::DEFAULT_PLUGIN_DIR)
}

impl Default for Icinga2Settings {
    fn default() -> Self {
        Icinga2Settings {
            bin: default_icinga2(),
            plugin_dir: default_plugin_dir(),
            validate_user: None,
            results: Results::default(),
            api: None,
        }
    }
}

impl ApiSettings {
    /// The client's configuration.
    pub fn client_config(&self) -> ApiConfig {
        ApiConfig {
            url: self.url.clone(),
            ca_file: self.ca_file.clone(),
            user: self.user.clone(),
            password_file: self.password_file.clone(),
            timeout: Duration::from_secs(self.timeout_seconds.max(1)),
        }
    }
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn check_endpoint(e: &Endpoint) -> Result<(), String> {
    let ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with(['.', '-'])
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    };
    if !ok(&e.name) {
        return Err(format!(
            "endpoint {:?}: may hold only letters, digits, '.', '-' and '_'",
            e.name
        ));
    }
    if let Some(h) = &e.host
        && !ok(h)
        && !h.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
    {
        return Err(format!("endpoint {}: host {h:?} is not a host name or address", e.name));
    }
    Ok(())
}

impl ZoneSettings {
    /// The engine's zones (names, parents and rules), checked.
    pub fn engine_zones(&self) -> Result<Zones, String> {
        let sats = self
            .satellites
            .iter()
            .map(|s| ZoneName {
                name: s.name.clone(),
                parent: s.parent.clone().unwrap_or_else(|| self.master.clone()),
            })
            .collect();
        let zones = Zones::new(&self.master, sats, self.rules.clone()).map_err(|e| format!("[zones]: {e}"))?;
        monitor_engine::zones::check_zone_name(&self.global_zone)
            .map_err(|why| format!("[zones] global_zone {:?}: {why}", self.global_zone))?;
        if zones.contains(&self.global_zone) {
            return Err(format!("[zones] global_zone {:?} is also a zone", self.global_zone));
        }
        for e in self
            .master_endpoints
            .iter()
            .chain(self.satellites.iter().flat_map(|s| &s.endpoints))
        {
            check_endpoint(e).map_err(|e| format!("[zones]: {e}"))?;
        }
        Ok(zones)
    }

    /// The Icinga 2 zone tree (zones in the engine's order: parents first).
    pub fn tree(&self) -> Result<Tree, String> {
        let zones = self.engine_zones()?;
        let master_endpoints = if self.master_endpoints.is_empty() {
            vec![Endpoint {
                name: this_host(),
                host: None,
                port: None,
            }]
        } else {
            self.master_endpoints.clone()
        };
        let mut defs = vec![ZoneDef {
            name: self.master.clone(),
            parent: None,
            endpoints: master_endpoints,
        }];
        for s in &zones.satellites {
            let endpoints = self
                .satellites
                .iter()
                .find(|x| x.name == s.name)
                .map(|x| x.endpoints.clone())
                .unwrap_or_default();
            if endpoints.is_empty() {
                return Err(format!("[zones] satellite {}: no endpoints", s.name));
            }
            defs.push(ZoneDef {
                name: s.name.clone(),
                parent: Some(s.parent.clone()),
                endpoints,
            });
        }
        Ok(Tree {
            zones: defs,
            global: self.global_zone.clone(),
        })
    }
}

/// The Icinga 2 set for an assembled Nagios `output`; what could not be mapped is
/// reported in `report` (errors leave the object out).
pub fn icinga_output(nagios: &Output, tree: &Tree, report: &mut PassReport) -> Result<(Output, Vec<Node>), String> {
    let written = monitor_icinga2::write(nagios, tree).map_err(|e| format!("icinga2 writer: {e}"))?;
    let to_problem = |p: &monitor_icinga2::Problem| Problem {
        machine: p.machine.clone(),
        message: format!("icinga2: {}", p.message),
        ..Problem::default()
    };
    report.errors.extend(written.errors.iter().map(to_problem));
    report.warnings.extend(written.warnings.iter().map(to_problem));
    Ok((written.output, written.nodes))
}
