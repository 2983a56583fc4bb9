//! The profile sources beyond local directories: the `[http]` table (profiles fetched from
//! the LCFG server into a local mirror, which the engine reads as one more profile
//! directory), and the `fetch` requests that fetch named machines at once
//! (docs/sources.md).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use monitor_runtime::http_source::{Fetcher, HttpSourceConfig, MachineList, SyncReport};
use serde::Deserialize;

/// Where the machine list comes from.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum ListSettings {
    /// A local file of `node.domain` lines.
    File(PathBuf),
    /// A URL of `node.domain` lines.
    Url(String),
    /// The web server's directory index of `{base}/` and `{base}/{domain}/`.
    Autoindex,
}

/// The `[http]` table.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Such as `https://lcfg.example.org/profiles`.
    pub base: String,
    /// Default `{base}/{domain}/{node}/XML/profile.xml`.
    #[serde(default = "default_template")]
    pub url_template: String,
    /// `list = { file = "…" }`, `{ url = "…" }` or `"autoindex"`.
    pub list: ListSettings,
    /// PEM CA bundle (default: the bundled Mozilla roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate and key, for servers that want one.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// A file, mode 0600, holding `user:password` for HTTP basic auth.
    #[serde(default)]
    pub basic_auth_file: Option<PathBuf>,
    /// Fetches in flight at once.
    #[serde(default = "default_connections")]
    pub connections: usize,
    /// Seconds one request may take, whole.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// The largest profile, decompressed, in MiB.
    #[serde(default = "default_max_mb")]
    pub max_mb: u64,
    /// How often every machine is asked for (conditional GET), in seconds.
    #[serde(default = "default_poll")]
    pub poll_seconds: u64,
    /// A random delay up to this many seconds is added to each poll.
    #[serde(default = "default_splay")]
    pub splay_seconds: u64,
}

fn default_template() -> String {
    "{base}/{domain}/{node}/XML/profile.xml".into()
}
fn default_connections() -> usize {
    8
}
fn default_timeout() -> u64 {
    30
}
fn default_max_mb() -> u64 {
    64
}
fn default_poll() -> u64 {
    300
}
fn default_splay() -> u64 {
    30
}

/// The mirror of fetched profiles, under the state directory.
pub fn mirror_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("http-profiles")
}

/// Where `monitor-compile fetch` leaves its requests for the daemon.
pub fn requests_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("fetch-requests")
}

impl HttpSettings {
    /// The fetcher's configuration.
    pub fn fetcher_config(&self, state_dir: &Path) -> Result<HttpSourceConfig, String> {
        let client_cert = match (&self.client_cert, &self.client_key) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            (None, None) => None,
            _ => return Err("[http]: client_cert and client_key go together".into()),
        };
        Ok(HttpSourceConfig {
            base: self.base.trim_end_matches('/').to_string(),
            url_template: self.url_template.clone(),
            list: match &self.list {
                ListSettings::File(f) => MachineList::File(f.clone()),
                ListSettings::Url(u) => MachineList::Url(u.clone()),
                ListSettings::Autoindex => MachineList::Autoindex,
            },
            mirror_dir: mirror_dir(state_dir),
            ca_file: self.ca_file.clone(),
            client_cert,
            basic_auth_file: self.basic_auth_file.clone(),
            connections: self.connections.max(1),
            timeout: Duration::from_secs(self.timeout_seconds.max(1)),
            max_bytes: self.max_mb.max(1) << 20,
        })
    }

    /// When the next poll is due after one at `now`: the interval plus a random splay.
    pub fn next_poll(&self, now: Instant) -> Instant {
        let splay = if self.splay_seconds == 0 {
            0
        } else {
            fastrand::u64(0..=self.splay_seconds * 1000)
        };
        now + Duration::from_secs(self.poll_seconds.max(1)) + Duration::from_millis(splay)
    }
}

/// The HTTP source of a running daemon: the fetcher, and the last sync's report.
pub struct HttpSource {
    pub settings: HttpSettings,
    pub fetcher: Fetcher,
    pub last: Option<SyncReport>,
    pub next: Instant,
}

impl HttpSource {
    /// A source for `settings`, its mirror under `state_dir`; the first poll is due now.
    pub fn new(settings: &HttpSettings, state_dir: &Path) -> Result<HttpSource, String> {
        let fetcher = Fetcher::new(settings.fetcher_config(state_dir)?).map_err(|e| format!("[http]: {e}"))?;
        Ok(HttpSource {
            settings: settings.clone(),
            fetcher,
            last: None,
            next: Instant::now(),
        })
    }

    /// Fetch (all, or `only`), log what happened, and remove the machines that left the
    /// list (their removal then goes through the removal guard of the next pass).
    /// Returns whether a pass should run.
    pub fn sync(&mut self, only: Option<&[String]>) -> bool {
        let report = self.fetcher.sync(only);
        if let Some(e) = &report.list_error {
            tracing::warn!(error = %e, "cannot fetch the machine list: nothing fetched or removed; the mirror stays as it is");
        }
        for p in &report.failed {
            tracing::warn!(machine = %p.machine, url = %p.url, "{}; keeping its last good profile", p.message);
        }
        for p in &report.missing {
            tracing::error!(machine = %p.machine, url = %p.url, "{}", p.message);
        }
        let mut removed = 0;
        for m in &report.removed_from_list {
            match self.fetcher.remove_machine(m) {
                Ok(()) => removed += 1,
                Err(e) => tracing::error!(machine = %m, error = %e, "cannot remove a machine that left the list"),
            }
        }
        tracing::info!(
            listed = report.listed,
            fetched = report.fetched,
            not_modified = report.not_modified,
            failed = report.failed.len(),
            missing = report.missing.len(),
            removed,
            ms = report.millis,
            "profiles fetched"
        );
        let changed = report.fetched > 0 || removed > 0;
        self.last = Some(report);
        if only.is_none() {
            self.next = self.settings.next_poll(Instant::now());
        }
        changed
    }

    /// The last sync's problems, for the pass report: failures are warnings (the last good
    /// profile is kept), a 404 for a listed machine is an error for that machine.
    pub fn problems(&self) -> (Vec<monitor_engine::Problem>, Vec<monitor_engine::Problem>) {
        let Some(r) = &self.last else {
            return (Vec::new(), Vec::new());
        };
        let p = |m: &monitor_runtime::http_source::MachineProblem, what: &str| monitor_engine::Problem {
            machine: Some(m.machine.clone()),
            message: format!("{what} {}: {}", m.url, m.message),
            ..monitor_engine::Problem::default()
        };
        let mut warnings: Vec<_> = r
            .failed
            .iter()
            .map(|m| p(m, "fetching"))
            .map(|mut q| {
                q.message.push_str("; keeping its last good profile");
                q
            })
            .collect();
        if let Some(e) = &r.list_error {
            warnings.push(monitor_engine::Problem {
                message: format!("fetching the machine list: {e}; nothing fetched or removed"),
                ..monitor_engine::Problem::default()
            });
        }
        let errors = r.missing.iter().map(|m| p(m, "fetching")).collect();
        (warnings, errors)
    }
}

/// Machine names asked for by `monitor-compile fetch`, taken from the requests directory
/// (each request file is removed once read).
pub fn take_requests(state_dir: &Path) -> Vec<String> {
    let dir = requests_dir(state_dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for f in files {
        if let Ok(text) = std::fs::read_to_string(&f) {
            names.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            );
        }
        let _ = std::fs::remove_file(&f);
    }
    names.sort();
    names.dedup();
    names
}

/// Leave a request for `machines` (each `node.domain`, checked) in the requests directory.
pub fn write_request(state_dir: &Path, machines: &[String]) -> Result<PathBuf, String> {
    for m in machines {
        lcfg_profile::check_host_name(m).map_err(|why| format!("{m:?} is not a machine name: {why}"))?;
    }
    let dir = requests_dir(state_dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join(format!("{}-{}", std::process::id(), fastrand::u64(..)));
    let text: String = machines.iter().map(|m| format!("{m}\n")).collect();
    monitor_runtime::writer::write_atomic(&path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// `bind = "anonymous"`, `"sasl-external"` or `{ simple = { dn = "…", password_file = "…" } }`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum BindSettings {
    /// The directory's anonymous access.
    #[default]
    Anonymous,
    /// SASL EXTERNAL (over `ldapi://`: this process's uid).
    SaslExternal,
    /// A simple bind; the password is the first line of `password_file` (mode 0600).
    Simple { dn: String, password_file: PathBuf },
}

/// `membership = "member-uid"` (posixGroup) or `"member-dn"` (groupOfNames).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum MembershipSettings {
    #[default]
    MemberUid,
    MemberDn,
}

/// `[ldap.attributes]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AttributeSettings {
    pub name: String,
    pub alias: String,
    pub email: String,
    pub xmpp: Option<String>,
    pub slack: Option<String>,
}

impl Default for AttributeSettings {
    fn default() -> Self {
        let a = monitor_runtime::users_ldap::AttrMap::default();
        AttributeSettings {
            name: a.name,
            alias: a.alias,
            email: a.email,
            xmpp: a.xmpp,
            slack: a.slack,
        }
    }
}

/// The `[ldap]` table: contacts and their groups from LDAP instead of the users file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LdapSettings {
    /// `ldap://…`, `ldaps://…` or `ldapi://%2Fpath%2Fto%2Fsocket`.
    pub url: String,
    #[serde(default)]
    pub starttls: bool,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub bind: BindSettings,
    pub base_dn: String,
    #[serde(default)]
    pub user_filter: Option<String>,
    #[serde(default)]
    pub group_filter: Option<String>,
    #[serde(default)]
    pub membership: MembershipSettings,
    #[serde(default)]
    pub attributes: AttributeSettings,
    #[serde(default)]
    pub group_name_attr: Option<String>,
    #[serde(default = "default_ldap_timeout")]
    pub timeout_seconds: u64,
    /// The last good user set (default `STATE_DIR/ldap-users.json`).
    #[serde(default)]
    pub state_file: Option<PathBuf>,
}

fn default_ldap_timeout() -> u64 {
    10
}

impl LdapSettings {
    /// The LDAP source's configuration.
    pub fn config(&self, state_dir: &Path) -> monitor_runtime::users_ldap::LdapConfig {
        use monitor_runtime::users_ldap::{AttrMap, LdapBind, LdapConfig, Membership};
        let state_file = self
            .state_file
            .clone()
            .unwrap_or_else(|| state_dir.join("ldap-users.json"));
        let mut c = LdapConfig::new(&self.url, &self.base_dn, state_file);
        c.starttls = self.starttls;
        c.ca_file = self.ca_file.clone();
        c.bind = match &self.bind {
            BindSettings::Anonymous => LdapBind::Anonymous,
            BindSettings::SaslExternal => LdapBind::SaslExternal,
            BindSettings::Simple { dn, password_file } => LdapBind::Simple {
                dn: dn.clone(),
                password_file: password_file.clone(),
            },
        };
        if let Some(f) = &self.user_filter {
            c.user_filter = f.clone();
        }
        if let Some(f) = &self.group_filter {
            c.group_filter = f.clone();
        }
        c.membership = match self.membership {
            MembershipSettings::MemberUid => Membership::MemberUid,
            MembershipSettings::MemberDn => Membership::MemberDn,
        };
        let a = &self.attributes;
        c.attrs = AttrMap {
            name: a.name.clone(),
            alias: a.alias.clone(),
            email: a.email.clone(),
            xmpp: a.xmpp.clone(),
            slack: a.slack.clone(),
        };
        if let Some(g) = &self.group_name_attr {
            c.group_name_attr = g.clone();
        }
        c.timeout = Duration::from_secs(self.timeout_seconds.max(1));
        c
    }
}

/// The contact groups the translators registered, as the engine's cache records them.
pub fn registered_groups(cache: &monitor_engine::cache::FragmentCache) -> Vec<String> {
    let mut groups = std::collections::BTreeSet::new();
    for e in cache.entries.values() {
        for c in e.record.iter().flat_map(|r| &r.components) {
            for r in c.good.iter().flat_map(|g| &g.registrations) {
                if let monitor_sdk::translator::Registration::ContactGroup { group } = r {
                    groups.insert(group.clone());
                }
            }
        }
    }
    groups.into_iter().collect()
}
