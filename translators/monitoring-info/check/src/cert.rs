//! `cert`: a TLS handshake sending `--name` as SNI; the certificate the server presented
//! is then judged: its dates always (expired, not yet valid, within `--days` of expiry),
//! and unless `--ignore-invalid` whether its chain verifies against `--ca-file` and it
//! matches `--name`. Every problem found is named.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{CertArgs, nonempty};
use crate::nagios::{Check, Outcome};
use crate::net::Endpoint;
use crate::store::now_secs;
use crate::tls::{self, TlsSettings, fmt_days, fmt_utc, judge};

/// Run the check.
pub fn run(a: &CertArgs) -> Check {
    let settings = TlsSettings {
        name: nonempty(&a.name).unwrap_or(&a.host).to_string(),
        ignore_invalid: a.ignore_invalid,
        ca_file: a.ca_file.clone(),
    };
    let sni = settings.server_name()?;
    let roots = if a.ignore_invalid {
        None
    } else {
        Some(settings.roots()?)
    };
    let ep = Endpoint {
        host: a.host.clone(),
        port: a.port,
        timeout: Duration::from_secs(a.timeout),
    };
    // Accepts any chain (the signatures of the handshake are still checked), and records
    // it: judged below, so that every problem can be named.
    let verifier = settings.verifier(false)?;
    let config = tls::client_config(Arc::clone(&verifier))?;
    let mut stream = ep.tls(config, sni.clone(), &verifier)?;
    stream.conn.send_close_notify();
    let _ = stream.flush();
    drop(stream);
    let chain = verifier.presented();
    let now = now_secs();
    let provider = tls::provider();
    let j = judge(
        &chain,
        roots.as_ref().map(|r| (r, a.ca_file.as_path())),
        &sni,
        now,
        &provider.signature_verification_algorithms,
    )
    .map_err(|e| Outcome::critical(format!("{}: {e}", ep.display())))?;
    let now_i = i64::try_from(now).unwrap_or(i64::MAX);
    let left = j.leaf.not_after - now_i;
    let mut problems = j.problems();
    if j.time.is_none() && a.days > 0 && left < i64::from(a.days) * 86_400 {
        problems.insert(0, format!("the certificate expires within {} days", a.days));
    }
    let expiry = if left >= 0 {
        format!("expires {} ({} left)", fmt_utc(j.leaf.not_after), fmt_days(left))
    } else {
        format!("expired {}", fmt_utc(j.leaf.not_after))
    };
    let checked = if a.ignore_invalid {
        " (chain and name not checked)"
    } else {
        ""
    };
    let summary = format!(
        "{}: {}, issued by {}, {expiry}{checked}",
        ep.display(),
        j.leaf.subject,
        j.leaf.issuer
    );
    let perf = format!("days_left={}", left / 86_400);
    if problems.is_empty() {
        Ok(Outcome::ok(summary).perf(perf))
    } else {
        Ok(Outcome::critical(format!("{}; {summary}", problems.join("; "))).perf(perf))
    }
}
