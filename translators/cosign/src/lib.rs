//! Translator for the LCFG `cosign` component: monitors a Cosign web single sign-on
//! server.
//!
//! The Perl guide's case study lists the four services the component launches, and this
//! translator monitors each of them:
//! - `Cosign HTTP`: the login server's Apache on the plain HTTP port (`mc-check-http`);
//! - `Cosign HTTPS`: the same over TLS, warning when the certificate expires within a
//!   number of days (`mc-cosign-check-https`, defined by `start_pass`);
//! - `cosignd`: the cosign daemon, which must greet with
//!   `220 2 Collaborative Web Single Sign-On` (`mc-check-tcp-expect`);
//! - `monsterd`: only when the server is replicated. It listens on no port and cannot be
//!   checked from the monitoring server, so it is a passive service: a script on the
//!   machine submits its results, and the service goes CRITICAL when none has arrived
//!   for `monster_freshness` seconds.
//!
//! When the server is replicated, `cosignd` is also a member of a cluster named
//! `cosign-<login host>`, the host part of `loginurl`, which every replica shares. When
//! `loginurl` is unset or has no usable host, the cluster is named `cosign-` followed by
//! the sorted host names of this machine and its replicas, joined with `+` (this needs
//! every replica to list the others, so that all of them arrive at the same name). Host
//! names in cluster names are lower-cased.
//!
//! Resources read:
//! - `nagios_groups` (required): the contact groups to notify;
//! - `http_port` (optional, default `80`), `https_port` (optional, default `443`): the
//!   login server's ports;
//! - `cert_warn_days` (optional, default `28`, at least 1): warn when the HTTPS
//!   certificate expires within this many days;
//! - `port` (optional, default `6663`): the cosignd port;
//! - `nagios_depends` (optional): dependency tags that `cosignd` depends on;
//! - `replicas` (optional tag list) with `replica_host_<tag>` (the replica's host name,
//!   the tag itself when unset): the other servers of a replicated service;
//! - `loginurl` (optional): the login URL, whose host names the cluster;
//! - `nagios_cluster_threshold` (optional): how many cluster members may be down before
//!   the cluster check is CRITICAL (the cluster manager's default when unset);
//! - `monster_freshness` (optional, default `1200`): seconds without a monsterd result
//!   before it is CRITICAL (`0` lets Nagios choose);
//! - `nagios_passive_identity` (optional, default `host/<machine>`): the identity that may
//!   submit monsterd's passive results;
//! - `nagios_escalations` (optional tag list): escalations, as read by
//!   [`monitor_sdk::helpers::construct_escalation`], for any of the services above.
//!
//! It deliberately does not log in through the login page or check the CGI (it checks
//! that the web server answers, not that a user can authenticate), does not read the
//! certificate or the cosign configuration files (they are on the monitored machine),
//! does not check replication between the replicas itself (monsterd's passive results
//! do that), does not submit monsterd's results (a client-side script does), and does
//! not monitor the `type` of server: a machine with the component listed in
//! `nagios_client.components` is monitored as a login server.

use std::collections::BTreeSet;

use monitor_sdk::helpers::{
    DEFAULT_SERVICE, get_port, get_u32, handle_contacts, handle_dependencies, merge_escalation, passive_service,
    resource_list,
};
use monitor_sdk::nagios::{Bundle, CheckCommand, Command, Service};
use monitor_sdk::names::{CHECK_HTTP, CHECK_TCP_EXPECT};
use monitor_sdk::profile::Component;
use monitor_sdk::translator::{Context, TranslateError, Translator};

/// The HTTPS check command name.
pub const COSIGN_CHECK_HTTPS: &str = "mc-cosign-check-https";
/// The HTTPS check command line: `$ARG1$` port, `$ARG2$` certificate warning days.
pub const COSIGN_CHECK_HTTPS_LINE: &str = "$USER1$/check_http -I '$HOSTADDRESS$' -S -p '$ARG1$' -C '$ARG2$'";
/// The greeting of a working cosignd.
pub const COSIGND_BANNER: &str = "220 2 Collaborative Web Single Sign-On";
/// The plain HTTP port when `http_port` is unset.
pub const DEFAULT_HTTP_PORT: u16 = 80;
/// The HTTPS port when `https_port` is unset.
pub const DEFAULT_HTTPS_PORT: u16 = 443;
/// The cosignd port when `port` is unset.
pub const DEFAULT_COSIGND_PORT: u16 = 6663;
/// The certificate expiry warning, in days, when `cert_warn_days` is unset.
pub const DEFAULT_CERT_WARN_DAYS: u32 = 28;
/// Seconds without a monsterd result before it is CRITICAL, when `monster_freshness` is unset.
pub const DEFAULT_MONSTER_FRESHNESS: u32 = 1200;

/// The description of the plain HTTP service.
pub const HTTP_SERVICE: &str = "Cosign HTTP";
/// The description of the HTTPS service.
pub const HTTPS_SERVICE: &str = "Cosign HTTPS";
/// The description of the cosignd service.
pub const COSIGND_SERVICE: &str = "cosignd";
/// The description of the passive monsterd service (replicated servers only).
pub const MONSTERD_SERVICE: &str = "monsterd";

/// The `cosign` translator.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cosign;

/// True for a host name we are willing to put in a cluster name: letters, digits, `.`,
/// `-` and `_` only. Cluster names become object names and command-line words.
fn is_host_name(h: &str) -> bool {
    !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// The host part of a login URL, lower-cased: the scheme (`https://` or `http://`) is
/// removed, and the host ends at the first `/`, `:`, `?` or `#`. `None` when the URL has
/// another scheme or no usable host name.
///
/// ```
/// use translator_cosign::login_host;
/// let url = "https://WebLogin.example.org/cosign-bin/cosign.cgi?cosign-cs";
/// assert_eq!(login_host(url).as_deref(), Some("weblogin.example.org"));
/// assert_eq!(login_host("http://login:8080").as_deref(), Some("login"));
/// assert_eq!(login_host("ftp://login/"), None);
/// ```
pub fn login_host(url: &str) -> Option<String> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url["https://".len()..]
    } else if lower.starts_with("http://") {
        &url["http://".len()..]
    } else if url.contains("://") {
        return None;
    } else {
        url
    };
    let host = rest.split(['/', ':', '?', '#']).next().unwrap_or_default();
    is_host_name(host).then(|| host.to_ascii_lowercase())
}

/// The cluster of a replicated server: from `loginurl`, or from the sorted host names of
/// this machine and its replicas.
fn cluster_name(machine: &str, component: &Component, replicas: &[String]) -> Result<String, TranslateError> {
    if let Some(host) = component.get_nonempty("loginurl").and_then(login_host) {
        return Ok(format!("cosign-{host}"));
    }
    let mut hosts = BTreeSet::new();
    hosts.insert(machine.to_ascii_lowercase());
    for tag in replicas {
        let resource = format!("replica_host_{tag}");
        let host = component.get_nonempty(&resource).unwrap_or(tag);
        if !is_host_name(host) {
            return Err(TranslateError::invalid(&resource, host, "not a host name"));
        }
        hosts.insert(host.to_ascii_lowercase());
    }
    Ok(format!("cosign-{}", hosts.into_iter().collect::<Vec<_>>().join("+")))
}

/// What a replicated server adds: its cluster and monsterd.
struct Replication {
    cluster: String,
    threshold: Option<u32>,
    freshness: u32,
    identity: String,
}

impl Replication {
    fn read(machine: &str, component: &Component) -> Result<Option<Replication>, TranslateError> {
        let replicas = resource_list(component, "replicas");
        if replicas.is_empty() {
            return Ok(None);
        }
        let cluster = cluster_name(machine, component, &replicas)?;
        let threshold = match component.get_nonempty("nagios_cluster_threshold") {
            Some(_) => Some(get_u32(component, "nagios_cluster_threshold", 0)?),
            None => None,
        };
        let freshness = get_u32(component, "monster_freshness", DEFAULT_MONSTER_FRESHNESS)?;
        let identity = match component.get_nonempty("nagios_passive_identity") {
            Some(id) => id.to_string(),
            None => format!("host/{machine}"),
        };
        Ok(Some(Replication {
            cluster,
            threshold,
            freshness,
            identity,
        }))
    }
}

impl Translator for Cosign {
    fn component(&self) -> &str {
        "cosign"
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn start_pass(&mut self) -> Result<Bundle, TranslateError> {
        Ok(Bundle::new().with(Command::new(COSIGN_CHECK_HTTPS, COSIGN_CHECK_HTTPS_LINE)))
    }

    fn translate(&self, machine: &str, component: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
        // Read and validate every value before registering anything.
        let http_port = get_port(component, "http_port", DEFAULT_HTTP_PORT)?;
        let https_port = get_port(component, "https_port", DEFAULT_HTTPS_PORT)?;
        let days = get_u32(component, "cert_warn_days", DEFAULT_CERT_WARN_DAYS)?;
        if days == 0 {
            return Err(TranslateError::invalid(
                "cert_warn_days",
                "0",
                "expected at least one day",
            ));
        }
        let cosignd_port = get_port(component, "port", DEFAULT_COSIGND_PORT)?;
        let replication = Replication::read(machine, component)?;

        let groups = handle_contacts(component, ctx)?;
        let service = |description: &str, check: CheckCommand| {
            Service::new(DEFAULT_SERVICE)
                .host_name(machine)
                .service_description(description)
                .check_command(check)
                .contact_groups(&groups)
        };

        let mut bundle = Bundle::new();
        bundle.extend(merge_escalation(
            service(HTTP_SERVICE, CheckCommand::new(CHECK_HTTP).arg(http_port.to_string())),
            component,
        )?);
        bundle.extend(merge_escalation(
            service(
                HTTPS_SERVICE,
                CheckCommand::new(COSIGN_CHECK_HTTPS)
                    .arg(https_port.to_string())
                    .arg(days.to_string()),
            ),
            component,
        )?);

        let cosignd = service(
            COSIGND_SERVICE,
            CheckCommand::new(CHECK_TCP_EXPECT)
                .arg(cosignd_port.to_string())
                .arg(COSIGND_BANNER),
        );
        handle_dependencies(component, ctx, cosignd.object())?;
        if let Some(r) = &replication {
            ctx.add_cluster(&r.cluster, cosignd.object(), r.threshold)?;
        }
        bundle.extend(merge_escalation(cosignd, component)?);

        if let Some(r) = replication {
            let monsterd = passive_service(machine, MONSTERD_SERVICE, Some(r.freshness)).contact_groups(&groups);
            ctx.add_passive_check(monsterd.object(), &r.identity)?;
            bundle.extend(merge_escalation(monsterd, component)?);
        }
        Ok(bundle)
    }
}
