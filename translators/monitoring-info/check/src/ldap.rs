//! `ldap`: a simple bind with `--bind-dn` and `--password-file` (anonymous without), then
//! a base-scope search of `--base` (default the root DSE), with ldap3's sync API.
//!
//! We open the TCP connection ourselves (bounded by the timeout) and hand it to ldap3,
//! whose URL then names `--name`: that is the TLS name rustls verifies and sends as SNI,
//! while the connection goes to `-H`. The verifier is the strict one of `tls` (or the
//! accepting one with `--ignore-invalid`), so no bind is sent to a server whose
//! certificate fails.

use std::sync::Arc;

use ldap3::{LdapConn, LdapConnSettings, Scope, StdStream};

use crate::cli::{LdapArgs, nonempty, nonempty_path};
use crate::nagios::{Check, Outcome};
use crate::password;
use crate::tls;

/// A host for an URL: IPv6 addresses bracketed.
fn url_host(h: &str) -> String {
    if h.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{h}]")
    } else {
        h.to_string()
    }
}

/// Run the check.
pub fn run(a: &LdapArgs) -> Check {
    let tls = a.tls.settings(&a.conn.host);
    let ep = a.conn.endpoint(if tls.is_some() { 636 } else { 389 });
    let creds = password::credentials(nonempty(&a.bind_dn), nonempty_path(&a.password_file), "--bind-dn")?;
    let started = std::time::Instant::now();
    let mut settings = LdapConnSettings::new().set_conn_timeout(ep.timeout);
    let mut verifier = None;
    let url = match &tls {
        Some(t) => {
            let v = t.verifier(true)?;
            settings = settings.set_config(tls::client_config(Arc::clone(&v))?);
            verifier = Some(v);
            t.server_name()?;
            format!("ldaps://{}:{}", url_host(&t.name), ep.port)
        }
        None => format!("ldap://{}:{}", url_host(&ep.host), ep.port),
    };
    let tcp = ep.tcp()?;
    settings = settings.set_std_stream(StdStream::Tcp(tcp));
    let fail = |doing: &str, e: ldap3::LdapError| {
        let why = verifier
            .as_ref()
            .and_then(|v| v.problem())
            .unwrap_or_else(|| e.to_string());
        Outcome::critical(format!("{}: {doing}: {why}", ep.display()))
    };
    let mut conn = LdapConn::with_settings(settings, &url).map_err(|e| fail("connecting", e))?;
    let who = match &creds {
        Some((dn, pw)) => {
            conn.with_timeout(ep.timeout)
                .simple_bind(dn, pw.expose())
                .and_then(|r| r.success())
                .map_err(|e| fail(&format!("bind as {dn:?} failed"), e))?;
            format!("bound as {dn:?}")
        }
        None => "anonymous".to_string(),
    };
    let base = if a.base.is_empty() {
        "the root DSE".to_string()
    } else {
        format!("{:?}", a.base)
    };
    let (entries, _) = conn
        .with_timeout(ep.timeout)
        .search(&a.base, Scope::Base, "(objectClass=*)", vec!["1.1"])
        .and_then(|r| r.success())
        .map_err(|e| fail(&format!("base search of {base}"), e))?;
    let _ = conn.unbind();
    let secs = started.elapsed().as_secs_f64();
    let tls_words = match &tls {
        Some(t) if t.ignore_invalid => " over TLS (certificate not verified)",
        Some(_) => " over TLS",
        None => "",
    };
    Ok(Outcome::ok(format!(
        "{}: {who}{tls_words}, base search of {base} found {} entr{} in {secs:.3} s",
        ep.display(),
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" }
    ))
    .perf(format!("time={secs:.6}s")))
}
