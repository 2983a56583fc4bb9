//! Profiles fetched from the LCFG server over HTTP(S) into a local mirror.
//!
//! The LCFG server publishes each machine's profile at
//! `{base}/{domain}/{node}/XML/profile.xml` (the URL is a template:
//! [`HttpSourceConfig::url_template`]). A [`Fetcher`] keeps a **mirror** of them: a
//! directory in the LCFG layout `<domain>/<node>/XML/profile.xml`, always stored
//! decompressed, which the engine then reads as one more profile directory. Its blake3
//! cache skips the files that did not change, so a profile fetched again costs no parse.
//!
//! - **Layout**: beside the profiles, `.meta/<node.domain>.json` holds what the server
//!   said about each one (ETag, Last-Modified, the URL and when it was last fetched), and
//!   `.tmp/` the files being written. Every file is written to `.tmp/` and renamed into
//!   place, so a reader never sees half a profile. The engine only lists `*.xml` and
//!   `*.xml.gz`, so neither directory is mistaken for a profile.
//! - **Conditional GET**: each request carries `If-None-Match` and `If-Modified-Since`
//!   from the metadata, which survives a restart; a `304 Not Modified` leaves the file
//!   as it is (not even its mtime changes). A `200` whose body is the file's content
//!   again does not rewrite it either.
//! - **Compression**: `Accept-Encoding: gzip`; a `Content-Encoding: gzip` body, a
//!   `.gz` URL and a body that starts with gzip's magic bytes are all decompressed, and
//!   [`HttpSourceConfig::max_bytes`] bounds the *decompressed* profile (a gzip bomb fails
//!   its machine).
//! - **Failures never delete**: a timeout, a refused connection, a 5xx, a TLS error or a
//!   truncated body keeps the last good file and is a warning ([`SyncReport::failed`]);
//!   a 404 is an error for that machine ([`SyncReport::missing`]) and keeps the file too.
//!   When the machine list cannot be fetched nothing is fetched and nothing is reported
//!   as removed. A machine that leaves the list is only *reported*
//!   ([`SyncReport::removed_from_list`]): the caller removes it with
//!   [`Fetcher::remove_machine`] once the removal guard allows.
//! - **Backoff**: a machine whose fetch failed is skipped by the next `2^failures - 1`
//!   syncs (at most 32); a sync that names it ([`Fetcher::sync`] with `only`) tries it at
//!   once.
//! - **Bounded**: one [`ureq::Agent`] (keep-alive) shared by at most
//!   [`HttpSourceConfig::connections`] fetches in flight, each bounded as a whole by
//!   [`HttpSourceConfig::timeout`] (connecting, TLS, headers and body: a server that
//!   trickles bytes fails that machine, never stalls the sync). The environment's proxy
//!   variables are ignored.
//! - **Credentials**: HTTP basic auth from a file of mode 0600 or stricter. The client
//!   builds the `Authorization` header itself, and every text this module produces (errors,
//!   [`MachineProblem`]s, `tracing` events, `Debug` output) is scrubbed of the password and
//!   the header, and names URLs without any `user:password@`. (ureq's own `log` output
//!   redacts headers up to the `debug` level; its `trace` level logs the wire unredacted,
//!   so never enable `ureq=trace` with credentials.)
//! - **Names**: the node and domain of each listed machine become path components, so
//!   they must be letters, digits, `-`, `_` and `.` (no `..`, no leading `.`, no `/`);
//!   any other name is a [`MachineProblem`], never a path outside the mirror.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use ureq::tls::{ClientCert, PemItem, RootCerts, TlsConfig, TlsProvider};

/// The default [`HttpSourceConfig::url_template`]: the LCFG server's layout.
pub const DEFAULT_URL_TEMPLATE: &str = "{base}/{domain}/{node}/XML/profile.xml";
/// The default [`HttpSourceConfig::connections`].
pub const DEFAULT_CONNECTIONS: usize = 8;
/// The default [`HttpSourceConfig::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default [`HttpSourceConfig::max_bytes`]: 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;
/// The most syncs a failing machine is skipped by.
pub const MAX_BACKOFF_SYNCS: u32 = 32;

/// The profile file under each machine's directory of the mirror.
const PROFILE: &str = "XML/profile.xml";
/// The directory of the metadata, under the mirror.
const META_DIR: &str = ".meta";
/// The directory of files being written, under the mirror.
const TMP_DIR: &str = ".tmp";

/// Where the profiles come from and how to fetch them. Its `Debug` output shows no
/// `user:password@` of a URL.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpSourceConfig {
    /// The server's base URL, such as `https://lcfg.example.org/profiles` (no trailing
    /// slash needed).
    pub base: String,
    /// The URL of one profile: `{base}`, `{domain}`, `{node}` and `{machine}`
    /// (`node.domain`) are replaced. Default [`DEFAULT_URL_TEMPLATE`]. A URL ending in
    /// `.gz` is decompressed.
    pub url_template: String,
    /// Where the machine list comes from.
    pub list: MachineList,
    /// The mirror: the fetched profiles and their metadata (`STATE/http-profiles`).
    pub mirror_dir: PathBuf,
    /// A PEM file of the CA certificates to trust (`None`: the bundled Mozilla roots).
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate (chain) and its PEM private key, for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// A file whose first line is `user:password` for HTTP basic auth. It must not be
    /// readable by group or others (mode 0600 or stricter).
    pub basic_auth_file: Option<PathBuf>,
    /// How many fetches may be in flight at once (default [`DEFAULT_CONNECTIONS`]).
    pub connections: usize,
    /// The bound on each request as a whole, body included (default [`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
    /// The largest profile, after decompression (default [`DEFAULT_MAX_BYTES`]).
    pub max_bytes: u64,
}

impl HttpSourceConfig {
    /// A configuration with the defaults: the LCFG URL layout, no CA file (the Mozilla
    /// roots), no client certificate, no basic auth, [`DEFAULT_CONNECTIONS`],
    /// [`DEFAULT_TIMEOUT`] and [`DEFAULT_MAX_BYTES`].
    pub fn new(base: impl Into<String>, list: MachineList, mirror_dir: impl Into<PathBuf>) -> HttpSourceConfig {
        HttpSourceConfig {
            base: base.into(),
            url_template: DEFAULT_URL_TEMPLATE.to_string(),
            list,
            mirror_dir: mirror_dir.into(),
            ca_file: None,
            client_cert: None,
            basic_auth_file: None,
            connections: DEFAULT_CONNECTIONS,
            timeout: DEFAULT_TIMEOUT,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// Where the list of machines comes from. A list file (local or fetched) holds one
/// `node.domain` per line; `#` starts a comment, blank lines are ignored. Its `Debug`
/// output shows no `user:password@` of a URL.
#[derive(Clone, PartialEq, Eq)]
pub enum MachineList {
    /// A local file of `node.domain` lines.
    File(PathBuf),
    /// A URL of `node.domain` lines, fetched with the same client and credentials as the
    /// profiles (a gzipped list is decompressed).
    Url(String),
    /// The server's directory index (nginx's or Apache's autoindex HTML): the
    /// subdirectories of `{base}/` are the domains, those of `{base}/{domain}/` their
    /// nodes.
    Autoindex,
}

/// Why a [`Fetcher`] could not be made. No variant holds a password.
#[derive(Debug, Error)]
pub enum HttpSourceError {
    /// A file of the configuration could not be read.
    #[error("cannot read the {what} {}: {source}", path.display())]
    Read {
        /// Which file: "CA file", "client certificate", …
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The basic auth file may be read by group or others.
    #[error(
        "the basic auth file {} has mode {mode:04o}: it must not be readable by group or others (chmod 0600)",
        path.display()
    )]
    AuthFileMode {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The basic auth file's first line is not `user:password`.
    #[error("the basic auth file {} does not hold `user:password` on its first line", path.display())]
    AuthFileFormat {
        /// The file.
        path: PathBuf,
    },
    /// A PEM file could not be parsed.
    #[error("{}: not a valid PEM file: {message}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        message: String,
    },
    /// A PEM file holds no certificate.
    #[error("{} holds no certificate", path.display())]
    NoCertificates {
        /// The file.
        path: PathBuf,
    },
    /// The client key file holds no private key.
    #[error("{} holds no private key", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// The URL template cannot name one profile per machine.
    #[error("the URL template {template:?} {why}")]
    Template {
        /// The template (without credentials).
        template: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A URL is not `http://` or `https://`.
    #[error("{url:?} is not an http:// or https:// URL")]
    Scheme {
        /// The URL (without credentials).
        url: String,
    },
    /// The mirror directory could not be made.
    #[error("cannot create the mirror directory {}: {source}", path.display())]
    Mirror {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// What one [`Fetcher::sync`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncReport {
    /// How many machines the list names.
    pub listed: usize,
    /// Machines answered with a profile (200), whether or not it changed.
    pub fetched: usize,
    /// Machines answered `304 Not Modified`.
    pub not_modified: usize,
    /// Machines that could not be fetched (warnings: their last good profile is kept),
    /// those skipped by the backoff, and listed names that are not safe.
    pub failed: Vec<MachineProblem>,
    /// Listed machines the server has no profile for (404 or 410): an error for each
    /// machine; the last good profile is kept.
    pub missing: Vec<MachineProblem>,
    /// Machines in the mirror that the list no longer names, sorted. They are not
    /// removed: see [`Fetcher::remove_machine`].
    pub removed_from_list: Vec<String>,
    /// Why the machine list could not be had; then nothing was fetched and nothing is in
    /// `removed_from_list`.
    pub list_error: Option<String>,
    /// How long the sync took, in milliseconds.
    pub millis: f64,
}

/// A problem with one machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineProblem {
    /// The machine, `node.domain` (as listed).
    pub machine: String,
    /// Its profile's URL, never with credentials (empty when the name was not usable).
    pub url: String,
    /// What went wrong.
    pub message: String,
}

/// The metadata of one mirrored profile: `.meta/<node.domain>.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Meta {
    /// The URL it was fetched from (without credentials); conditional headers are only
    /// sent for the same URL.
    url: String,
    /// The server's `ETag`.
    #[serde(default)]
    etag: Option<String>,
    /// The server's `Last-Modified`.
    #[serde(default)]
    last_modified: Option<String>,
    /// When the server last sent the profile (a 200), in seconds since the epoch.
    #[serde(default)]
    last_success: u64,
    /// The blake3 hash of the mirrored file.
    #[serde(default)]
    blake3: String,
}

/// A machine's failures, in memory only.
#[derive(Debug, Clone, Default)]
struct Backoff {
    /// Consecutive failed fetches.
    failures: u32,
    /// Syncs still to skip it.
    skip: u32,
    /// The last failure's message.
    last: String,
}

/// One fetch to make.
struct Job {
    machine: String,
    node: String,
    domain: String,
    url: String,
}

/// How one fetch ended.
enum Outcome {
    Fetched,
    NotModified,
    Failed(String),
    Missing(String),
}

/// Things to keep out of every text: the password, the `user:password` line and its
/// base64 form.
#[derive(Clone, Default)]
struct Secrets(Vec<String>);

impl Secrets {
    fn scrub(&self, text: &str) -> String {
        self.0
            .iter()
            .filter(|s| !s.is_empty())
            .fold(text.to_string(), |t, s| t.replace(s.as_str(), "[redacted]"))
    }
}

/// Keeps the mirror of the profiles on an LCFG server.
pub struct Fetcher {
    cfg: HttpSourceConfig,
    agent: ureq::Agent,
    /// `Basic …`, when basic auth is configured.
    authorization: Option<String>,
    secrets: Secrets,
    backoff: HashMap<String, Backoff>,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.cfg)
            .field("authorization", &self.authorization.as_ref().map(|_| "[redacted]"))
            .field("backing_off", &self.backoff.len())
            .finish()
    }
}

impl fmt::Debug for MachineList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MachineList::File(p) => f.debug_tuple("File").field(p).finish(),
            MachineList::Url(u) => f.debug_tuple("Url").field(&redact_url(u)).finish(),
            MachineList::Autoindex => f.write_str("Autoindex"),
        }
    }
}

impl fmt::Debug for HttpSourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSourceConfig")
            .field("base", &redact_url(&self.base))
            .field("url_template", &redact_url(&self.url_template))
            .field("list", &self.list)
            .field("mirror_dir", &self.mirror_dir)
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("basic_auth_file", &self.basic_auth_file)
            .field("connections", &self.connections)
            .field("timeout", &self.timeout)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl Fetcher {
    /// A fetcher for `cfg`: reads the CA, client certificate and basic auth files, checks
    /// the URLs and makes the mirror directory. Stored metadata is used from the first
    /// sync on.
    pub fn new(cfg: HttpSourceConfig) -> Result<Fetcher, HttpSourceError> {
        let mut secrets = Secrets::default();
        for url in [Some(&cfg.base), Some(&cfg.url_template), list_url(&cfg.list)]
            .into_iter()
            .flatten()
        {
            secrets.0.extend(url_secrets(url));
        }
        let template = cfg.url_template.replace("{base}", &cfg.base);
        if !template.contains("{node}") && !template.contains("{machine}") {
            return Err(HttpSourceError::Template {
                template: redact_url(&cfg.url_template),
                why: "names neither {node} nor {machine}: every machine would have the same URL",
            });
        }
        for url in [Some(&template), list_url(&cfg.list)].into_iter().flatten() {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(HttpSourceError::Scheme { url: redact_url(url) });
            }
        }
        if cfg.list == MachineList::Autoindex && !(cfg.base.starts_with("http://") || cfg.base.starts_with("https://"))
        {
            return Err(HttpSourceError::Scheme {
                url: redact_url(&cfg.base),
            });
        }
        let authorization = match &cfg.basic_auth_file {
            Some(path) => {
                let (line, password) = read_auth_file(path)?;
                let token = base64::engine::general_purpose::STANDARD.encode(&line);
                secrets.0.extend([password, line, token.clone()]);
                Some(format!("Basic {token}"))
            }
            None => None,
        };
        let roots = match &cfg.ca_file {
            Some(path) => RootCerts::Specific(Arc::new(read_certs(path, "CA file")?)),
            None => RootCerts::WebPki,
        };
        let client_cert = match &cfg.client_cert {
            Some((cert, key)) => Some(ClientCert::new_with_certs(
                &read_certs(cert, "client certificate")?,
                read_key(key)?,
            )),
            None => None,
        };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(roots)
            .client_cert(client_cert)
            .build();
        let connections = cfg.connections.max(1);
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .proxy(None)
            .http_status_as_error(false)
            .timeout_global(Some(cfg.timeout))
            .max_idle_connections(connections.max(10))
            .max_idle_connections_per_host(connections)
            .user_agent(concat!("monitor-compile/", env!("CARGO_PKG_VERSION")))
            .build();
        for dir in [
            cfg.mirror_dir.clone(),
            cfg.mirror_dir.join(META_DIR),
            cfg.mirror_dir.join(TMP_DIR),
        ] {
            std::fs::create_dir_all(&dir).map_err(|source| HttpSourceError::Mirror { path: dir, source })?;
        }
        // Leftovers of an interrupted write.
        if let Ok(entries) = std::fs::read_dir(cfg.mirror_dir.join(TMP_DIR)) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(Fetcher {
            cfg,
            agent: ureq::Agent::new_with_config(config),
            authorization,
            secrets,
            backoff: HashMap::new(),
        })
    }

    /// The mirror directory (what the engine reads).
    pub fn dir(&self) -> &Path {
        &self.cfg.mirror_dir
    }

    /// Where machine `node.domain`'s profile is mirrored (whether or not it exists);
    /// `None` for a name that is not safe.
    pub fn profile_path(&self, machine: &str) -> Option<PathBuf> {
        let (node, domain) = split_machine(machine).ok()?;
        Some(self.cfg.mirror_dir.join(domain).join(node).join(PROFILE))
    }

    /// The URL of machine `node.domain`'s profile, without credentials; `None` for a
    /// name that is not safe.
    pub fn url_of(&self, machine: &str) -> Option<String> {
        let (node, domain) = split_machine(machine).ok()?;
        Some(redact_url(&self.url(node, domain)))
    }

    /// Fetch the machine list, then every machine (or only `only`, when Some: the "fetch
    /// these now" path), with conditional GET.
    ///
    /// With `only`, the named machines are fetched whatever their backoff; a name the
    /// list does not hold is a problem in [`SyncReport::failed`]. When the list cannot be
    /// had, nothing is fetched ([`SyncReport::list_error`]).
    pub fn sync(&mut self, only: Option<&[String]>) -> SyncReport {
        let start = Instant::now();
        let mut report = SyncReport::default();
        let listed = match self.machine_list() {
            Ok(l) => l,
            Err(e) => {
                let e = self.secrets.scrub(&e);
                tracing::debug!(error = %e, "cannot fetch the machine list");
                report.list_error = Some(e);
                report.millis = start.elapsed().as_secs_f64() * 1000.0;
                return report;
            }
        };
        report.listed = listed.len();
        report.removed_from_list = self.mirrored().into_iter().filter(|m| !listed.contains(m)).collect();

        let wanted: Vec<(String, bool)> = match only {
            Some(names) => {
                let names: BTreeSet<&String> = names.iter().collect();
                let mut v = Vec::new();
                for m in names {
                    if listed.contains(m) {
                        v.push((m.clone(), true));
                    } else {
                        report.failed.push(MachineProblem {
                            machine: m.clone(),
                            url: self.url_of(m).unwrap_or_default(),
                            message: "not in the machine list".into(),
                        });
                    }
                }
                v
            }
            None => listed.iter().map(|m| (m.clone(), false)).collect(),
        };
        let mut jobs = Vec::new();
        for (machine, forced) in wanted {
            let (node, domain) = match split_machine(&machine) {
                Ok(nd) => nd,
                Err(why) => {
                    report.failed.push(MachineProblem {
                        machine: machine.clone(),
                        url: String::new(),
                        message: format!("not a usable machine name: {why}"),
                    });
                    continue;
                }
            };
            let url = self.url(node, domain);
            if !forced
                && let Some(b) = self.backoff.get_mut(&machine)
                && b.skip > 0
            {
                b.skip -= 1;
                report.failed.push(MachineProblem {
                    machine: machine.clone(),
                    url: redact_url(&url),
                    message: format!(
                        "not tried: backing off after {} failure{} (tried again {}); last error: {}",
                        b.failures,
                        if b.failures == 1 { "" } else { "s" },
                        match b.skip {
                            0 => "at the next sync".to_string(),
                            n => format!("in {} syncs", n + 1),
                        },
                        b.last
                    ),
                });
                continue;
            }
            jobs.push(Job {
                node: node.to_string(),
                domain: domain.to_string(),
                machine,
                url,
            });
        }

        let outcomes = self.fetch_all(&jobs);
        for (job, outcome) in jobs.iter().zip(outcomes) {
            let problem = |message: String| MachineProblem {
                machine: job.machine.clone(),
                url: redact_url(&job.url),
                message,
            };
            match outcome {
                Outcome::Fetched => {
                    report.fetched += 1;
                    self.backoff.remove(&job.machine);
                }
                Outcome::NotModified => {
                    report.not_modified += 1;
                    self.backoff.remove(&job.machine);
                }
                Outcome::Missing(m) => {
                    self.backoff.remove(&job.machine);
                    let m = self.secrets.scrub(&m);
                    tracing::debug!(machine = %job.machine, url = %redact_url(&job.url), "{m}");
                    report.missing.push(problem(m));
                }
                Outcome::Failed(m) => {
                    let m = self.secrets.scrub(&m);
                    tracing::debug!(machine = %job.machine, url = %redact_url(&job.url), "{m}");
                    let b = self.backoff.entry(job.machine.clone()).or_default();
                    b.failures = b.failures.saturating_add(1);
                    b.skip = backoff_syncs(b.failures);
                    b.last = m.clone();
                    report.failed.push(problem(m));
                }
            }
        }
        report.failed.sort_by(|a, b| a.machine.cmp(&b.machine));
        report.missing.sort_by(|a, b| a.machine.cmp(&b.machine));
        report.millis = start.elapsed().as_secs_f64() * 1000.0;
        tracing::debug!(
            listed = report.listed,
            fetched = report.fetched,
            not_modified = report.not_modified,
            failed = report.failed.len(),
            missing = report.missing.len(),
            removed_from_list = report.removed_from_list.len(),
            ms = report.millis,
            "http profile sync"
        );
        report
    }

    /// Remove machine `node.domain` from the mirror: its profile, its metadata and the
    /// directories left empty. Removing a machine that is not there is no error.
    pub fn remove_machine(&mut self, machine: &str) -> io::Result<()> {
        let (node, domain) = split_machine(machine).map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, why))?;
        self.backoff.remove(machine);
        let ok_if_gone = |r: io::Result<()>| match r {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
        let domain_dir = self.cfg.mirror_dir.join(domain);
        let node_dir = domain_dir.join(node);
        ok_if_gone(std::fs::remove_file(node_dir.join(PROFILE)))?;
        ok_if_gone(std::fs::remove_file(self.meta_path(machine)))?;
        // Only directories left empty: anything else in them stays.
        for dir in [node_dir.join("XML"), node_dir, domain_dir] {
            let _ = std::fs::remove_dir(dir);
        }
        tracing::debug!(machine, "removed from the http profile mirror");
        Ok(())
    }

    /// The URL of a machine's profile (possibly with credentials: never shown as is).
    fn url(&self, node: &str, domain: &str) -> String {
        self.cfg
            .url_template
            .replace("{base}", self.cfg.base.trim_end_matches('/'))
            .replace("{machine}", &format!("{node}.{domain}"))
            .replace("{domain}", domain)
            .replace("{node}", node)
    }

    fn meta_path(&self, machine: &str) -> PathBuf {
        self.cfg.mirror_dir.join(META_DIR).join(format!("{machine}.json"))
    }

    /// The machines of the list (sorted, no duplicates), or why there is none.
    fn machine_list(&self) -> Result<BTreeSet<String>, String> {
        match &self.cfg.list {
            MachineList::File(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read the machine list {}: {e}", path.display()))?;
                Ok(parse_list(&text))
            }
            MachineList::Url(url) => {
                let body = self.get_text(url)?;
                Ok(parse_list(&body))
            }
            MachineList::Autoindex => {
                let base = self.cfg.base.trim_end_matches('/');
                let mut out = BTreeSet::new();
                for domain in autoindex_dirs(&self.get_text(&format!("{base}/"))?) {
                    if let Err(why) = check_domain(&domain) {
                        tracing::debug!(domain = %domain, "skipping a directory of the index: {why}");
                        continue;
                    }
                    for node in autoindex_dirs(&self.get_text(&format!("{base}/{domain}/"))?) {
                        out.insert(format!("{node}.{domain}"));
                    }
                }
                Ok(out)
            }
        }
    }

    /// A small text document (a list or an index): a 200 with at most `max_bytes`.
    fn get_text(&self, url: &str) -> Result<String, String> {
        let shown = redact_url(url);
        let mut req = self.agent.get(url).header("Accept-Encoding", "gzip");
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        let resp = req.call().map_err(|e| format!("{shown}: {}", self.describe(&e)))?;
        let status = resp.status();
        if status.as_u16() != 200 {
            return Err(format!("{shown}: HTTP {}", status_text(status)));
        }
        let mut out = Vec::new();
        self.read_body(resp, url, &mut out)
            .map_err(|e| format!("{shown}: {e}"))?;
        String::from_utf8(out).map_err(|_| format!("{shown}: not UTF-8 text"))
    }

    /// The machines that are in the mirror: a profile file or metadata.
    fn mirrored(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        if let Ok(entries) = std::fs::read_dir(self.cfg.mirror_dir.join(META_DIR)) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(m) = name.strip_suffix(".json")
                    && split_machine(m).is_ok()
                {
                    out.insert(m.to_string());
                }
            }
        }
        let subdirs = |dir: &Path| -> Vec<String> {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        };
        for domain in subdirs(&self.cfg.mirror_dir) {
            for node in subdirs(&self.cfg.mirror_dir.join(&domain)) {
                let m = format!("{node}.{domain}");
                if split_machine(&m).is_ok() && self.cfg.mirror_dir.join(&domain).join(&node).join(PROFILE).exists() {
                    out.insert(m);
                }
            }
        }
        out
    }

    /// Fetch every job, at most `connections` at once, in the jobs' order.
    fn fetch_all(&self, jobs: &[Job]) -> Vec<Outcome> {
        let next = AtomicUsize::new(0);
        let workers = self.cfg.connections.max(1).min(jobs.len());
        let mut results: Vec<(usize, Outcome)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    s.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(job) = jobs.get(i) else { break };
                            done.push((i, self.fetch_one(job)));
                        }
                        done
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| {
                    h.join()
                        .unwrap_or_else(|_| vec![(usize::MAX, Outcome::Failed("the fetch panicked".into()))])
                })
                .collect()
        });
        results.sort_by_key(|(i, _)| *i);
        let mut by_index: Vec<Option<Outcome>> = (0..jobs.len()).map(|_| None).collect();
        for (i, o) in results {
            if let Some(slot) = by_index.get_mut(i) {
                *slot = Some(o);
            }
        }
        by_index
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Outcome::Failed("the fetch panicked".into())))
            .collect()
    }

    /// Fetch one machine's profile into the mirror.
    fn fetch_one(&self, job: &Job) -> Outcome {
        let shown_url = redact_url(&job.url);
        let dest = self.cfg.mirror_dir.join(&job.domain).join(&job.node).join(PROFILE);
        let meta_path = self.meta_path(&job.machine);
        let meta: Option<Meta> = std::fs::read(&meta_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|m: &Meta| m.url == shown_url && dest.is_file());
        let mut req = self.agent.get(&job.url).header("Accept-Encoding", "gzip");
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        let mut conditional = false;
        if let Some(m) = &meta {
            if let Some(etag) = &m.etag {
                req = req.header("If-None-Match", etag);
                conditional = true;
            }
            if let Some(lm) = &m.last_modified {
                req = req.header("If-Modified-Since", lm);
                conditional = true;
            }
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(self.describe(&e)),
        };
        let status = resp.status();
        match status.as_u16() {
            200 => {}
            304 if conditional => return Outcome::NotModified,
            404 | 410 => return Outcome::Missing(format!("HTTP {}: the server has no profile", status_text(status))),
            _ => return Outcome::Failed(format!("HTTP {}", status_text(status))),
        }
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header("etag");
        let last_modified = header("last-modified");

        let tmp_dir = self.cfg.mirror_dir.join(TMP_DIR);
        let mut tmp = match tempfile::Builder::new().prefix("fetch-").tempfile_in(&tmp_dir) {
            Ok(t) => t,
            Err(e) => return Outcome::Failed(format!("cannot write to {}: {e}", tmp_dir.display())),
        };
        let mut sink = HashingWriter {
            inner: io::BufWriter::new(tmp.as_file_mut()),
            hasher: blake3::Hasher::new(),
            len: 0,
        };
        if let Err(e) = self.read_body(resp, &job.url, &mut sink) {
            return Outcome::Failed(e);
        }
        let (hash, len) = (sink.hasher.finalize(), sink.len);
        if let Err(e) = sink.inner.flush() {
            return Outcome::Failed(format!("cannot write to {}: {e}", tmp_dir.display()));
        }
        drop(sink);
        if len == 0 {
            return Outcome::Failed("the server sent an empty profile".into());
        }
        let unchanged = std::fs::metadata(&dest).is_ok_and(|m| m.len() == len) && hash_file(&dest).ok() == Some(hash);
        if !unchanged {
            let placed = (|| {
                use std::os::unix::fs::PermissionsExt;
                tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o640))?;
                tmp.as_file().sync_data()?;
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                tmp.persist(&dest).map_err(|e| e.error)?;
                Ok::<_, io::Error>(())
            })();
            if let Err(e) = placed {
                return Outcome::Failed(format!("cannot write {}: {e}", dest.display()));
            }
        }
        let meta = Meta {
            url: shown_url,
            etag,
            last_modified,
            last_success: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            blake3: hash.to_hex().to_string(),
        };
        let written = serde_json::to_vec_pretty(&meta)
            .map_err(io::Error::other)
            .and_then(|json| write_atomic_in(&meta_path, &tmp_dir, &json));
        if let Err(e) = written {
            // Without its metadata the profile is fetched whole next time, never
            // answered 304 against a stale ETag.
            let _ = std::fs::remove_file(&meta_path);
            return Outcome::Failed(format!(
                "profile stored, but cannot write its metadata {}: {e}",
                meta_path.display()
            ));
        }
        Outcome::Fetched
    }

    /// Copy a response body into `out`: decompressed (gzip `Content-Encoding`, a `.gz`
    /// URL or gzip's magic bytes), at most `max_bytes` of it, and complete (a body that
    /// ends before its `Content-Length`, or a gzip stream cut short, is an error).
    fn read_body(&self, resp: ureq::http::Response<ureq::Body>, url: &str, out: &mut dyn Write) -> Result<(), String> {
        let max = self.cfg.max_bytes;
        // ureq decodes a `Content-Encoding: gzip` body itself (and drops the header), so
        // its limit counts decompressed bytes too.
        let raw = resp
            .into_body()
            .into_with_config()
            .limit(max.saturating_add(1))
            .reader();
        let mut raw = BufReader::with_capacity(64 * 1024, raw);
        let too_large = || format!("the profile is larger than the limit of {max} bytes (counted decompressed)");
        let is_limit = |e: &io::Error| {
            e.get_ref()
                .and_then(|i| i.downcast_ref::<ureq::Error>())
                .is_some_and(|u| matches!(u, ureq::Error::BodyExceedsLimit(_)))
        };
        let head = raw.fill_buf().map_err(|e| {
            if is_limit(&e) {
                too_large()
            } else {
                self.describe_io(&e)
            }
        })?;
        let gzipped = head.starts_with(&[0x1f, 0x8b]) || url.split(['?', '#']).next().unwrap_or(url).ends_with(".gz");
        let mut reader: Box<dyn Read + '_> = if gzipped {
            Box::new(flate2::bufread::MultiGzDecoder::new(raw))
        } else {
            Box::new(raw)
        };
        let mut buf = vec![0u8; 64 * 1024];
        let mut total: u64 = 0;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(if is_limit(&e) {
                        too_large()
                    } else if gzipped && !is_ureq_error(&e) {
                        format!("the gzip data is damaged or cut short: {e}")
                    } else {
                        self.describe_io(&e)
                    });
                }
            };
            total += n as u64;
            if total > max {
                return Err(too_large());
            }
            out.write_all(&buf[..n])
                .map_err(|e| format!("cannot write the profile: {e}"))?;
        }
        Ok(())
    }

    /// A transport error, scrubbed.
    fn describe(&self, e: &ureq::Error) -> String {
        let text = match e {
            ureq::Error::Timeout(_) => format!("timed out after {:?}", self.cfg.timeout),
            ureq::Error::BodyExceedsLimit(_) => {
                format!(
                    "the profile is larger than the limit of {} bytes (counted decompressed)",
                    self.cfg.max_bytes
                )
            }
            ureq::Error::Io(io) => self.describe_plain_io(io),
            ureq::Error::HostNotFound => "host not found".to_string(),
            ureq::Error::ConnectionFailed => "connection failed".to_string(),
            ureq::Error::Tls(m) => format!("TLS: {m}"),
            ureq::Error::Rustls(e) => format!("TLS: {e}"),
            other => other.to_string(),
        };
        self.secrets.scrub(&text)
    }

    /// An error while reading a body: ureq's own (a timeout, the limit) or the stream's.
    fn describe_io(&self, e: &io::Error) -> String {
        if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<ureq::Error>()) {
            return self.describe(inner);
        }
        self.secrets.scrub(&self.describe_plain_io(e))
    }

    fn describe_plain_io(&self, e: &io::Error) -> String {
        match e.kind() {
            io::ErrorKind::UnexpectedEof => format!("the body ended early (truncated): {e}"),
            io::ErrorKind::TimedOut => format!("timed out after {:?}", self.cfg.timeout),
            io::ErrorKind::ConnectionRefused => format!("connection refused: {e}"),
            // What rustls reports (a certificate not trusted, a bad record): ureq speaks
            // plain HTTP errors as `Error::Protocol`, not as io errors.
            io::ErrorKind::InvalidData => format!("TLS: {e}"),
            _ => e.to_string(),
        }
    }
}

/// Whether an io error came out of ureq (rather than the gzip decoder).
fn is_ureq_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<ureq::Error>())
        || matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::ConnectionReset)
}

/// `404 Not Found`.
fn status_text(status: ureq::http::StatusCode) -> String {
    match status.canonical_reason() {
        Some(r) => format!("{} {r}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// How many syncs skip a machine after `failures` failures in a row.
fn backoff_syncs(failures: u32) -> u32 {
    if failures >= 6 {
        MAX_BACKOFF_SYNCS
    } else {
        ((1u32 << failures) - 1).min(MAX_BACKOFF_SYNCS)
    }
}

/// A writer that hashes and counts what goes through it.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: blake3::Hasher,
    len: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hash_file(path: &Path) -> io::Result<blake3::Hash> {
    let mut h = blake3::Hasher::new();
    h.update_reader(std::fs::File::open(path)?)?;
    Ok(h.finalize())
}

/// Write `path` through a temporary file in `tmp_dir` (same file system) and a rename.
fn write_atomic_in(path: &Path, tmp_dir: &Path, content: &[u8]) -> io::Result<()> {
    let mut tmp = tempfile::Builder::new().prefix("meta-").tempfile_in(tmp_dir)?;
    tmp.write_all(content)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The list's URL, if it has one.
fn list_url(list: &MachineList) -> Option<&String> {
    match list {
        MachineList::Url(u) => Some(u),
        _ => None,
    }
}

/// Read a basic auth file: (`user:password`, password).
fn read_auth_file(path: &Path) -> Result<(String, String), HttpSourceError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| HttpSourceError::Read {
        what: "basic auth file",
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(HttpSourceError::AuthFileMode {
            path: path.to_path_buf(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| HttpSourceError::Read {
        what: "basic auth file",
        path: path.to_path_buf(),
        source,
    })?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r').to_string();
    match line.split_once(':') {
        Some((user, password)) if !user.is_empty() && !password.is_empty() => {
            let password = password.to_string();
            Ok((line, password))
        }
        _ => Err(HttpSourceError::AuthFileFormat {
            path: path.to_path_buf(),
        }),
    }
}

/// The certificates of a PEM file.
fn read_certs(path: &Path, what: &'static str) -> Result<Vec<ureq::tls::Certificate<'static>>, HttpSourceError> {
    crate::tls::read_pem_certs(path).map_err(|e| match e {
        crate::tls::PemError::Read(source) => HttpSourceError::Read {
            what,
            path: path.to_path_buf(),
            source,
        },
        crate::tls::PemError::Parse(message) => HttpSourceError::Pem {
            path: path.to_path_buf(),
            message,
        },
        crate::tls::PemError::Empty => HttpSourceError::NoCertificates {
            path: path.to_path_buf(),
        },
    })
}

/// The private key of a PEM file.
fn read_key(path: &Path) -> Result<ureq::tls::PrivateKey<'static>, HttpSourceError> {
    let pem = std::fs::read(path).map_err(|source| HttpSourceError::Read {
        what: "client key",
        path: path.to_path_buf(),
        source,
    })?;
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::PrivateKey(k)) => return Ok(k),
            Ok(_) => {}
            Err(e) => {
                return Err(HttpSourceError::Pem {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                });
            }
        }
    }
    Err(HttpSourceError::NoPrivateKey {
        path: path.to_path_buf(),
    })
}

/// A URL without the `user:password@` of its authority.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}://[redacted]@{}", &url[..scheme_end], &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The secrets of a URL's `user:password@`: the password as written and decoded.
fn url_secrets(url: &str) -> Vec<String> {
    let Some(scheme_end) = url.find("://") else {
        return Vec::new();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return Vec::new();
    };
    let userinfo = &rest[..at];
    let mut out = vec![userinfo.to_string()];
    if let Some((_, pw)) = userinfo.split_once(':')
        && !pw.is_empty()
    {
        out.push(pw.to_string());
        out.push(percent_decode(pw));
    }
    out
}

/// The machines of a list: one `node.domain` per line, `#` comments, blank lines.
fn parse_list(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether `s` may be a path component of the mirror.
fn check_component(s: &str, what: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("an empty {what}"));
    }
    if s.len() > 255 {
        return Err(format!("the {what} is longer than 255 characters"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "the {what} {s:?} holds {c:?} (only letters, digits, '-', '_' and '.')"
        ));
    }
    if s.starts_with('.') {
        return Err(format!("the {what} {s:?} starts with '.'"));
    }
    if s.contains("..") {
        return Err(format!("the {what} {s:?} holds \"..\""));
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), String> {
    check_component(domain, "domain")
}

/// `node.domain` → (node, domain), both safe path components.
fn split_machine(machine: &str) -> Result<(&str, &str), String> {
    let Some((node, domain)) = machine.split_once('.') else {
        return Err(format!("{machine:?} is not node.domain"));
    };
    check_component(node, "node")?;
    check_domain(domain)?;
    Ok((node, domain))
}

/// `%xx` decoded (invalid sequences stay as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The subdirectories an autoindex page (nginx's or Apache's HTML) links to, in the
/// page's order without duplicates: relative links ending in `/`, without the parent
/// directory, the sort links (`?C=N;O=D`) and absolute links.
pub fn autoindex_dirs(html: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut pos = 0;
    while let Some(found) = lower[pos..].find("href") {
        let start = pos + found + 4;
        pos = start;
        let rest = &html[start..];
        let trimmed = rest.trim_start();
        let Some(after_eq) = trimmed.strip_prefix('=') else {
            continue;
        };
        let after_eq = after_eq.trim_start();
        let value = match after_eq.chars().next() {
            Some(q @ ('"' | '\'')) => after_eq[1..].split(q).next().unwrap_or(""),
            Some(_) => after_eq
                .split(|c: char| c.is_ascii_whitespace() || c == '>')
                .next()
                .unwrap_or(""),
            None => "",
        };
        let value = value.replace("&amp;", "&");
        let value = value.strip_prefix("./").unwrap_or(&value);
        if value.starts_with(['?', '#', '/']) || value.contains("://") || value.starts_with("..") {
            continue;
        }
        let Some(dir) = value.strip_suffix('/') else {
            continue;
        };
        let dir = percent_decode(dir);
        if dir.is_empty() || dir.contains('/') || dir == "." || dir == ".." {
            continue;
        }
        if !out.contains(&dir) {
            out.push(dir);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apache's fancy index (a table), as `mod_autoindex` writes it.
    const APACHE_TABLE: &str = r#"<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html>
 <head>
  <title>Index of /profiles</title>
 </head>
 <body>
<h1>Index of /profiles</h1>
  <table>
   <tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th><th><a href="?C=S;O=A">Size</a></th><th><a href="?C=D;O=A">Description</a></th></tr>
   <tr><th colspan="5"><hr></th></tr>
<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td><td><a href="/">Parent Directory</a></td><td>&nbsp;</td><td align="right">  - </td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/folder.gif" alt="[DIR]"></td><td><a href="example.org/">example.org/</a></td><td align="right">2024-03-01 10:00  </td><td align="right">  - </td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/folder.gif" alt="[DIR]"></td><td><a href="inf.ed.ac.uk/">inf.ed.ac.uk/</a></td><td align="right">2024-03-02 11:30  </td><td align="right">  - </td><td>&nbsp;</td></tr>
<tr><td valign="top"><img src="/icons/text.gif" alt="[TXT]"></td><td><a href="README.txt">README.txt</a></td><td align="right">2024-03-02 11:30  </td><td align="right">1.2K</td><td>&nbsp;</td></tr>
   <tr><th colspan="5"><hr></th></tr>
</table>
<address>Apache/2.4.62 (Debian) Server at lcfg.example.org Port 443</address>
</body></html>
"#;

    /// Apache's plain index (`IndexOptions -FancyIndexing`): a list.
    const APACHE_LIST: &str = r#"<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html>
 <head>
  <title>Index of /profiles/example.org</title>
 </head>
 <body>
<h1>Index of /profiles/example.org</h1>
<ul><li><a href="/profiles/"> Parent Directory</a></li>
<li><a href="kdc1/"> kdc1/</a></li>
<li><a href="web_2/"> web_2/</a></li>
<li><a href="db-3/"> db-3/</a></li>
</ul>
</body></html>
"#;

    /// nginx's `autoindex on`.
    const NGINX: &str = r#"<html>
<head><title>Index of /profiles/</title></head>
<body>
<h1>Index of /profiles/</h1><hr><pre><a href="../">../</a>
<a href="example.org/">example.org/</a>                                       01-Mar-2024 10:00                   -
<a href="my%20domain/">my domain/</a>                                         01-Mar-2024 10:00                   -
<a href="profile.xml">profile.xml</a>                                         01-Mar-2024 10:00                 123
</pre><hr></body>
</html>
"#;

    #[test]
    fn apache_autoindex_is_parsed() {
        assert_eq!(autoindex_dirs(APACHE_TABLE), ["example.org", "inf.ed.ac.uk"]);
        assert_eq!(autoindex_dirs(APACHE_LIST), ["kdc1", "web_2", "db-3"]);
    }

    #[test]
    fn nginx_autoindex_is_parsed() {
        // The decoded name is listed; it is then rejected as a path component.
        assert_eq!(autoindex_dirs(NGINX), ["example.org", "my domain"]);
        assert!(check_domain("my domain").is_err());
        assert_eq!(autoindex_dirs("<a HREF='a/'>a</a> <a href=b/>b</a>"), ["a", "b"]);
    }

    #[test]
    fn machine_names_are_safe_path_components() {
        assert_eq!(split_machine("kdc1.example.org").unwrap(), ("kdc1", "example.org"));
        assert_eq!(split_machine("web_2.inf.ed.ac.uk").unwrap(), ("web_2", "inf.ed.ac.uk"));
        for bad in [
            "nodot",
            "../x.org",
            "x/y.org",
            "x.../etc",
            ".hidden.org",
            "x..org",
            "x.org/..",
            "x.a b",
            "x.",
            ".x",
            "x.org\0",
            "x.%2e%2e",
            "x.meta/../..",
        ] {
            assert!(split_machine(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lists_take_comments_and_blank_lines() {
        let l =
            parse_list("# the fleet\n\nkdc1.example.org\n  web2.example.org  # the web server\r\nkdc1.example.org\n");
        assert_eq!(
            l.into_iter().collect::<Vec<_>>(),
            ["kdc1.example.org", "web2.example.org"]
        );
    }

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact_url("https://u:p%40ss@lcfg.example.org/profiles?x=a@b"),
            "https://[redacted]@lcfg.example.org/profiles?x=a@b"
        );
        assert_eq!(
            redact_url("https://lcfg.example.org/a@b"),
            "https://lcfg.example.org/a@b"
        );
        assert_eq!(url_secrets("https://u:p%40ss@h/"), ["u:p%40ss", "p%40ss", "p@ss"]);
    }

    #[test]
    fn backoff_doubles_up_to_32() {
        let skips: Vec<u32> = (1..=8).map(backoff_syncs).collect();
        assert_eq!(skips, [1, 3, 7, 15, 31, 32, 32, 32]);
    }
}
