//! A client of the Icinga 2 REST API (`ApiListener`, port 5665): passive check results,
//! the state of a service, the list of services and when the daemon last (re)started.
//!
//! - **Transport**: HTTPS only (ureq with rustls), never through a proxy (the
//!   environment's `HTTPS_PROXY` is ignored), every call bounded by
//!   [`ApiConfig::timeout`].
//! - **Trust**: with [`ApiConfig::ca_file`], that PEM file's certificates are the only
//!   roots (the Icinga CA, `/var/lib/icinga2/certs/ca.crt`); without one, the Mozilla
//!   roots that ship with the client (webpki-roots).
//! - **Host name**: the server's certificate is verified against the host of
//!   [`ApiConfig::url`]; the client cannot connect to one address and verify another name
//!   (ureq 3 takes the name for SNI and verification from the URL and offers no stable
//!   way to override either). Icinga's certificates carry their CN, the endpoint name,
//!   as a DNS subject alternative name, so the URL must name the endpoint by its name:
//!   `https://master1.example.org:5665`, not an IP address. (The tests issue their
//!   certificate to `localhost` and connect to `https://localhost:PORT`.)
//! - **Credentials**: HTTP basic auth as an `ApiUser`, with the password from the first
//!   line of a file. ureq only sends basic auth from a URL's `user:password@`, which would
//!   put the password in every URL an error or log names, so the client builds the
//!   `Authorization` header itself. No [`ApiError`] contains the password or the header:
//!   every text that comes from the transport or the server is scrubbed of both.
//! - **Filters**: values never become filter text: a filter names variables
//!   (`host.name==mc_host`) and the values travel in `filter_vars`, so a host named
//!   `h1" || true || "` matches nothing rather than everything.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use thiserror::Error;
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};

/// Where the API is and who we are to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// The API's base URL, such as `https://master1.example.org:5665` (see the module
    /// docs on host names).
    pub url: String,
    /// A PEM file of the CA certificates to trust (`None`: the bundled Mozilla roots).
    pub ca_file: Option<PathBuf>,
    /// The `ApiUser`.
    pub user: String,
    /// A file whose first line is the `ApiUser`'s password.
    pub password_file: PathBuf,
    /// The bound on each call: connecting, sending and reading the answer.
    pub timeout: Duration,
}

/// The state of one service, as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    /// 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    pub state: u8,
    /// The output of its last check result (`None`: never checked).
    pub last_check_result_output: Option<String>,
    pub check_command: String,
}

/// A failed API call. Never contains the password or the `Authorization` header.
#[derive(Debug, Error)]
pub enum ApiError {
    #[error("cannot read the API password file {}: {source}", path.display())]
    PasswordFile { path: PathBuf, source: std::io::Error },
    #[error("the API password file {} holds no password on its first line", path.display())]
    EmptyPassword { path: PathBuf },
    #[error("cannot read the API CA file {}: {source}", path.display())]
    CaRead { path: PathBuf, source: std::io::Error },
    #[error("the API CA file {} is not PEM: {message}", path.display())]
    CaPem { path: PathBuf, message: String },
    #[error("the API CA file {} holds no certificate", path.display())]
    NoCertificates { path: PathBuf },
    #[error("the API URL {url:?} is not https:// (the password would travel in clear)")]
    NotHttps { url: String },
    /// No answer: the connection, TLS (an untrusted certificate, a wrong host name), a
    /// timeout.
    #[error("{method} {url}: {message}")]
    Transport {
        method: &'static str,
        url: String,
        message: String,
    },
    #[error("{method} {url}: the API refused the credentials of user {user:?} (401)")]
    Unauthorized {
        method: &'static str,
        url: String,
        user: String,
    },
    /// An HTTP error status, with icinga2's explanation.
    #[error("{method} {url}: HTTP {status}: {message}")]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        message: String,
    },
    /// An answer that is not what the API answers.
    #[error("{method} {url}: unexpected answer: {message}")]
    BadResponse {
        method: &'static str,
        url: String,
        message: String,
    },
    #[error("no such service: {service:?} on host {host:?}")]
    NoSuchService { host: String, service: String },
    /// icinga2 found the service but did not take the check result.
    #[error("the check result for service {service:?} on host {host:?} was refused: {message}")]
    Refused {
        host: String,
        service: String,
        message: String,
    },
    #[error("exit status {0} is no service state (0 to 3)")]
    ExitStatus(u8),
}

/// A client of one Icinga 2 API.
pub struct ApiClient {
    agent: ureq::Agent,
    base: String,
    user: String,
    /// `Basic base64(user:password)`.
    authorization: String,
    /// What an error text must never show: the password and the header's token.
    secrets: Vec<String>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("url", &self.base)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// How large an answer may be: every service of a big site.
const BODY_LIMIT: u64 = 512 << 20;

/// The filter of one service, by variables bound in `filter_vars`.
const SERVICE_FILTER: &str = "host.name==mc_host && service.name==mc_service";

#[derive(Clone, Copy)]
enum Method {
    Get,
    Post,
    /// POST with `X-HTTP-Method-Override: GET`: a query with a JSON body.
    Query,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Query => "GET (POST)",
        }
    }
}

impl ApiClient {
    /// Read the password file and the CA file, and build the HTTPS agent.
    pub fn new(cfg: &ApiConfig) -> Result<ApiClient, ApiError> {
        if !cfg.url.to_ascii_lowercase().starts_with("https://") {
            return Err(ApiError::NotHttps { url: cfg.url.clone() });
        }
        let text = std::fs::read_to_string(&cfg.password_file).map_err(|source| ApiError::PasswordFile {
            path: cfg.password_file.clone(),
            source,
        })?;
        let password = text.lines().next().unwrap_or("").trim_end_matches('\r');
        if password.is_empty() {
            return Err(ApiError::EmptyPassword {
                path: cfg.password_file.clone(),
            });
        }
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", cfg.user));
        let roots = match &cfg.ca_file {
            Some(path) => RootCerts::Specific(Arc::new(read_ca(path)?)),
            None => RootCerts::WebPki,
        };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(roots)
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .proxy(None)
            .https_only(true)
            .http_status_as_error(false)
            .timeout_global(Some(cfg.timeout))
            .build();
        Ok(ApiClient {
            agent: ureq::Agent::new_with_config(config),
            base: cfg.url.trim_end_matches('/').to_string(),
            user: cfg.user.clone(),
            authorization: format!("Basic {token}"),
            secrets: vec![password.to_string(), token],
        })
    }

    /// Submit a passive check result for service `service` of host `host`
    /// (`POST /v1/actions/process-check-result`). A service that does not exist is
    /// [`ApiError::NoSuchService`].
    pub fn process_check_result(
        &self,
        host: &str,
        service: &str,
        exit_status: u8,
        plugin_output: &str,
    ) -> Result<(), ApiError> {
        if exit_status > 3 {
            return Err(ApiError::ExitStatus(exit_status));
        }
        let body = json!({
            "type": "Service",
            "filter": SERVICE_FILTER,
            "filter_vars": { "mc_host": host, "mc_service": service },
            "exit_status": exit_status,
            "plugin_output": plugin_output,
        });
        let path = "/v1/actions/process-check-result";
        let (status, answer) = self.call(Method::Post, path, Some(&body))?;
        let results = answer.get("results").and_then(Value::as_array);
        // icinga2 answers 500 with no results when the filter matches nothing (404 for
        // some requests).
        if results.is_some_and(|r| r.is_empty()) || status == 404 {
            return Err(ApiError::NoSuchService {
                host: host.to_string(),
                service: service.to_string(),
            });
        }
        if !(200..300).contains(&status) {
            return Err(self.status_error(Method::Post, path, status, &answer));
        }
        for r in results.into_iter().flatten() {
            let code = r.get("code").and_then(Value::as_f64).unwrap_or(0.0);
            if code != 200.0 {
                return Err(ApiError::Refused {
                    host: host.to_string(),
                    service: service.to_string(),
                    message: self.scrub(&message_of(r).unwrap_or_else(|| r.to_string())),
                });
            }
        }
        tracing::debug!(host, service, exit_status, "check result submitted to icinga2");
        Ok(())
    }

    /// When the running icinga2 (its current worker) started, in seconds since the
    /// epoch: it moves forward on every reload.
    pub fn program_start(&self) -> Result<f64, ApiError> {
        let path = "/v1/status/IcingaApplication";
        let answer = self.ok(Method::Get, path, None)?;
        answer
            .pointer("/results/0/status/icingaapplication/app/program_start")
            .and_then(Value::as_f64)
            .ok_or_else(|| {
                self.bad(
                    Method::Get,
                    path,
                    "no results[0].status.icingaapplication.app.program_start",
                )
            })
    }

    /// The state of service `service` of host `host` (`None`: no such service).
    pub fn service_state(&self, host: &str, service: &str) -> Result<Option<ServiceState>, ApiError> {
        let body = json!({
            "filter": SERVICE_FILTER,
            "filter_vars": { "mc_host": host, "mc_service": service },
            "attrs": ["state", "last_check_result", "check_command"],
        });
        let path = "/v1/objects/services";
        let (status, answer) = self.call(Method::Query, path, Some(&body))?;
        let results = answer.get("results").and_then(Value::as_array);
        let Some(first) = results.and_then(|r| r.first()) else {
            if status == 404 || (200..300).contains(&status) {
                return Ok(None);
            }
            return Err(self.status_error(Method::Query, path, status, &answer));
        };
        if !(200..300).contains(&status) {
            return Err(self.status_error(Method::Query, path, status, &answer));
        }
        let attrs = first
            .get("attrs")
            .ok_or_else(|| self.bad(Method::Query, path, "a result without attrs"))?;
        let state = attrs
            .get("state")
            .and_then(Value::as_f64)
            .filter(|s| (0.0..=3.0).contains(s))
            .ok_or_else(|| self.bad(Method::Query, path, "no state from 0 to 3"))?;
        Ok(Some(ServiceState {
            // A whole number from 0 to 3 (checked above).
            state: state as u8,
            last_check_result_output: attrs
                .pointer("/last_check_result/output")
                .and_then(Value::as_str)
                .map(str::to_string),
            check_command: attrs
                .get("check_command")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        }))
    }

    /// Every service, as `(host name, service name)`, sorted.
    pub fn service_names(&self) -> Result<Vec<(String, String)>, ApiError> {
        let path = "/v1/objects/services";
        let answer = self.ok(Method::Query, path, Some(&json!({ "attrs": ["host_name", "name"] })))?;
        let results = answer
            .get("results")
            .and_then(Value::as_array)
            .ok_or_else(|| self.bad(Method::Query, path, "no results"))?;
        let mut names = results
            .iter()
            .map(|r| {
                let attr = |k: &str| r.pointer(&format!("/attrs/{k}")).and_then(Value::as_str);
                match (attr("host_name"), attr("name")) {
                    (Some(h), Some(s)) => Ok((h.to_string(), s.to_string())),
                    _ => Err(self.bad(Method::Query, path, "a service without host_name and name")),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        names.sort();
        Ok(names)
    }

    /// A call whose answer must be a success.
    fn ok(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, ApiError> {
        let (status, answer) = self.call(method, path, body)?;
        if (200..300).contains(&status) {
            Ok(answer)
        } else {
            Err(self.status_error(method, path, status, &answer))
        }
    }

    /// One call: its status and its JSON answer. 401 is [`ApiError::Unauthorized`].
    fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<(u16, Value), ApiError> {
        let url = format!("{}{path}", self.base);
        let transport = |e: ureq::Error| ApiError::Transport {
            method: method.name(),
            url: url.clone(),
            message: self.scrub(&e.to_string()),
        };
        let result = match method {
            Method::Get => self
                .agent
                .get(&url)
                .header("Accept", "application/json")
                .header("Authorization", &self.authorization)
                .call(),
            Method::Post | Method::Query => {
                let mut req = self
                    .agent
                    .post(&url)
                    .header("Accept", "application/json")
                    .header("Content-Type", "application/json")
                    .header("Authorization", &self.authorization);
                if matches!(method, Method::Query) {
                    req = req.header("X-HTTP-Method-Override", "GET");
                }
                req.send(body.map(Value::to_string).unwrap_or_default())
            }
        };
        let mut response = result.map_err(transport)?;
        let status = response.status().as_u16();
        if status == 401 {
            return Err(ApiError::Unauthorized {
                method: method.name(),
                url,
                user: self.user.clone(),
            });
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .lossy_utf8(true)
            .read_to_string()
            .map_err(transport)?;
        match serde_json::from_str(&text) {
            Ok(v) => Ok((status, v)),
            Err(_) if !(200..300).contains(&status) => Ok((status, Value::String(text))),
            Err(e) => Err(self.bad(method, path, &format!("not JSON ({e})"))),
        }
    }

    fn status_error(&self, method: Method, path: &str, status: u16, answer: &Value) -> ApiError {
        let message = match answer {
            Value::String(s) => s.chars().take(300).collect(),
            v => message_of(v)
                .or_else(|| v.pointer("/results/0").and_then(message_of))
                .unwrap_or_else(|| v.to_string().chars().take(300).collect()),
        };
        ApiError::Status {
            method: method.name(),
            url: format!("{}{path}", self.base),
            status,
            message: self.scrub(&message),
        }
    }

    fn bad(&self, method: Method, path: &str, message: &str) -> ApiError {
        ApiError::BadResponse {
            method: method.name(),
            url: format!("{}{path}", self.base),
            message: message.to_string(),
        }
    }

    /// `text` without the password or the header's token.
    fn scrub(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_string(), |t, s| t.replace(s.as_str(), "[redacted]"))
    }
}

/// icinga2's explanation in an answer: its `status` text.
fn message_of(v: &Value) -> Option<String> {
    v.get("status").and_then(Value::as_str).map(str::to_string)
}

/// The certificates of a PEM file.
fn read_ca(path: &std::path::Path) -> Result<Vec<ureq::tls::Certificate<'static>>, ApiError> {
    crate::tls::read_pem_certs(path).map_err(|e| match e {
        crate::tls::PemError::Read(source) => ApiError::CaRead {
            path: path.to_path_buf(),
            source,
        },
        crate::tls::PemError::Parse(message) => ApiError::CaPem {
            path: path.to_path_buf(),
            message,
        },
        crate::tls::PemError::Empty => ApiError::NoCertificates {
            path: path.to_path_buf(),
        },
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    const PASSWORD: &str = "Sup3r-s3cret!pw";

    fn config(dir: &std::path::Path, url: String, ca: Option<PathBuf>) -> ApiConfig {
        let password_file = dir.join("password");
        std::fs::write(&password_file, format!("{PASSWORD}\nsecond line\n")).unwrap();
        ApiConfig {
            url,
            ca_file: ca,
            user: "mc-test".into(),
            password_file,
            timeout: Duration::from_secs(5),
        }
    }

    fn assert_clean(e: &ApiError, token: &str) {
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains(PASSWORD), "{text}");
            assert!(!text.contains(token), "{text}");
        }
    }

    #[test]
    fn no_error_shows_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let token = base64::engine::general_purpose::STANDARD.encode(format!("mc-test:{PASSWORD}"));
        // Nobody listens: connection refused.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let client = ApiClient::new(&config(dir.path(), format!("https://127.0.0.1:{port}/"), None)).unwrap();
        assert!(!format!("{client:?}").contains(PASSWORD));
        let errors = [
            client.program_start().unwrap_err(),
            client.process_check_result("h", "s", 2, "x").unwrap_err(),
            client.service_state("h", "s").unwrap_err(),
            client.service_names().unwrap_err(),
        ];
        for e in &errors {
            assert!(matches!(e, ApiError::Transport { .. }), "{e}");
            assert!(e.to_string().contains(&format!("https://127.0.0.1:{port}/v1/")), "{e}");
            assert_clean(e, &token);
        }
        // A server that answers garbage instead of TLS: it even echoes what it got.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let n = s.read(&mut buf).unwrap_or(0);
            let _ = s.write_all(b"HTTP/1.1 401 Unauthorized\r\n\r\n");
            let _ = s.write_all(&buf[..n]);
        });
        let client = ApiClient::new(&config(dir.path(), format!("https://127.0.0.1:{port}"), None)).unwrap();
        let e = client.program_start().unwrap_err();
        assert!(matches!(e, ApiError::Transport { .. }), "{e}");
        assert_clean(&e, &token);
        server.join().unwrap();
        // Bad configuration.
        let mut cfg = config(dir.path(), "http://127.0.0.1:5665".into(), None);
        let e = ApiClient::new(&cfg).unwrap_err();
        assert!(matches!(e, ApiError::NotHttps { .. }), "{e}");
        cfg.url = "https://127.0.0.1:5665".into();
        cfg.ca_file = Some(dir.path().join("password"));
        let e = ApiClient::new(&cfg).unwrap_err();
        assert!(matches!(e, ApiError::NoCertificates { .. }), "{e}");
        assert_clean(&e, &token);
        cfg.ca_file = Some(dir.path().join("missing.crt"));
        assert!(matches!(ApiClient::new(&cfg).unwrap_err(), ApiError::CaRead { .. }));
        cfg.ca_file = None;
        std::fs::write(&cfg.password_file, "\n").unwrap();
        assert!(matches!(
            ApiClient::new(&cfg).unwrap_err(),
            ApiError::EmptyPassword { .. }
        ));
        cfg.password_file = dir.path().join("missing");
        assert!(matches!(
            ApiClient::new(&cfg).unwrap_err(),
            ApiError::PasswordFile { .. }
        ));
        let e = client.process_check_result("h", "s", 4, "x").unwrap_err();
        assert!(matches!(e, ApiError::ExitStatus(4)), "{e}");
    }

    #[test]
    fn scrub_removes_every_secret() {
        let dir = tempfile::tempdir().unwrap();
        let client = ApiClient::new(&config(dir.path(), "https://localhost:1".into(), None)).unwrap();
        let token = client.secrets[1].clone();
        let text = client.scrub(&format!("a {PASSWORD} b Basic {token} c"));
        assert_eq!(text, "a [redacted] b Basic [redacted] c");
    }
}
