//! `smtp`: a greeting, EHLO and QUIT; with `--to`, a message whose subject carries a new
//! mail flow token, recorded in the store for the mail flow id.
//!
//! The client is lettre's blocking `SmtpConnection` (one connection: greeting, EHLO, then
//! MAIL/RCPT/DATA, QUIT), with implicit TLS by rustls, the roots of `--ca-file` only
//! (`CertificateStore::None`), or lettre's own accept-anything verifier for
//! `--ignore-invalid`, and `--name` as the TLS name. lettre checks that the greeting is a
//! positive (2xx) reply and that every reply is; it does not expose the greeting's code,
//! so a 2xx greeting other than 220 passes too.
//!
//! # When the token is recorded
//!
//! **Before** the message is handed to the server: after the greeting and EHLO succeeded,
//! before MAIL FROM. So a token is in the store before its message can possibly be in
//! the mailbox, and a mailbox check can never find a message whose token is recorded only
//! later (which, with a fast local delivery and a concurrent imap check, would delete the
//! message as unknown and leave its token to turn mailflow CRITICAL: a false alarm).
//! The price: a token whose message the server never accepted, or accepted and then lost,
//! stays recorded, and `mailflow` turns CRITICAL once it is older than its `--seconds`.
//! That is the point: mail did not flow. A crash between accepting and recording cannot
//! happen in this order; a crash after recording and before sending is the same as a
//! lost message (CRITICAL later, as it should be: the check did not get mail through).
//! A message whose token is unknown (its record lost) is deleted and ignored by the
//! mailbox checks.

use lettre::Address;
use lettre::message::{Mailbox, Message, header::ContentType};
use lettre::transport::smtp::client::{Certificate, CertificateStore, SmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use crate::cli::{SmtpArgs, nonempty};
use crate::mailbox::SUBJECT_MARK;
use crate::nagios::{Check, Outcome};
use crate::store::{self, Store};
use crate::tls::{self, TlsSettings, fmt_utc};

/// This machine's host name (`localhost` when it cannot be had).
pub fn local_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

fn lettre_tls(t: &TlsSettings) -> Result<TlsParameters, Outcome> {
    let mut b = TlsParameters::builder(t.name.clone()).certificate_store(CertificateStore::None);
    if t.ignore_invalid {
        b = b
            .dangerous_accept_invalid_certs(true)
            .dangerous_accept_invalid_hostnames(true);
    } else {
        t.server_name()?;
        // Checked here for a clear UNKNOWN: lettre's own error would not name the file.
        t.roots()?;
        let pem = std::fs::read(&t.ca_file)
            .map_err(|e| Outcome::unknown(format!("cannot read the CA file {}: {e}", t.ca_file.display())))?;
        let certs = Certificate::from_pem(&pem)
            .map_err(|e| Outcome::unknown(format!("the CA file {}: {e}", t.ca_file.display())))?;
        b = b.add_root_certificate(certs);
    }
    b.build_rustls()
        .map_err(|e| Outcome::unknown(format!("TLS configuration: {e}")))
}

/// What to send.
struct Send {
    to: Address,
    from: Address,
    id: String,
    store: Store,
}

/// Run the check.
pub fn run(a: &SmtpArgs) -> Check {
    let tls = a.tls.settings(&a.conn.host);
    let ep = a.conn.endpoint(if tls.is_some() { 465 } else { 25 });
    let hostname = local_hostname();
    let send = match nonempty(&a.to) {
        None => None,
        Some(to) => {
            let to: Address = to
                .parse()
                .map_err(|e| Outcome::unknown(format!("--to {to:?} is not an e-mail address: {e}")))?;
            let from = match nonempty(&a.from) {
                Some(f) => f.to_string(),
                None => format!("monitor-compile@{hostname}"),
            };
            let from: Address = from.parse().map_err(|e| {
                Outcome::unknown(format!(
                    "the sender {from:?} is not an e-mail address ({e}): give --from"
                ))
            })?;
            let id = nonempty(&a.mailflow_id).unwrap_or(to.as_ref()).to_string();
            let store = Store::new(&a.store);
            store
                .id_dir(&id)
                .map_err(|e| Outcome::unknown(format!("mail flow store: {e}")))?;
            Some(Send { to, from, id, store })
        }
    };
    let params = tls.as_ref().map(lettre_tls).transpose()?;
    let started = std::time::Instant::now();
    let fail = |doing: &str, e: lettre::transport::smtp::Error| {
        let why = match (&tls, tls::rustls_error(&e)) {
            (Some(t), Some(r)) => tls::describe_tls_error(r, &t.name, &t.ca_file),
            _ => e.to_string(),
        };
        Outcome::critical(format!("{} ({doing}): {why}", ep.display()))
    };
    let mut conn = SmtpConnection::connect(
        (ep.host.as_str(), ep.port),
        Some(ep.timeout),
        &ClientId::Domain(hostname.clone()),
        params.as_ref(),
        None,
    )
    .map_err(|e| fail("greeting and EHLO", e))?;
    let tls_words = match &tls {
        Some(t) if t.ignore_invalid => " over TLS (certificate not verified)",
        Some(_) => " over TLS",
        None => "",
    };
    let Some(send) = send else {
        conn.quit().map_err(|e| fail("QUIT", e))?;
        let secs = started.elapsed().as_secs_f64();
        return Ok(Outcome::ok(format!(
            "{}: greeting, EHLO and QUIT answered{tls_words} in {secs:.3} s",
            ep.display()
        ))
        .perf(format!("time={secs:.6}s")));
    };
    let token = store::new_token();
    let now = store::now_secs();
    let message = Message::builder()
        .from(Mailbox::new(
            Some("monitor-compile mail flow".into()),
            send.from.clone(),
        ))
        .to(Mailbox::new(None, send.to.clone()))
        .subject(format!("{SUBJECT_MARK} {token}"))
        .header(ContentType::TEXT_PLAIN)
        .body(format!(
            "This message tests mail flow for the monitoring system (mail flow id {:?}).\r\n\
             It was sent by check_monitoring_info on {hostname} at {}.\r\n\
             A mailbox check deletes it when it finds it: nobody needs to read it.\r\n",
            send.id,
            fmt_utc(i64::try_from(now).unwrap_or(0)),
        ))
        .map_err(|e| Outcome::unknown(format!("cannot build the message: {e}")))?;
    // Recorded before the server sees MAIL FROM: see the module comment.
    if let Err(e) = send.store.record(&send.id, &token, now) {
        conn.abort();
        return Err(Outcome::unknown(format!("mail flow store: {e}")));
    }
    let accepted = conn.send(message.envelope(), &message.formatted()).map_err(|e| {
        Outcome::critical(format!(
            "{}: the message to {} was not accepted: {e} (its token stays recorded: mailflow for {:?} turns CRITICAL)",
            ep.display(),
            send.to,
            send.id
        ))
    })?;
    conn.quit().map_err(|e| fail("QUIT after sending", e))?;
    let secs = started.elapsed().as_secs_f64();
    let queued = accepted.message().collect::<Vec<_>>().join(" ");
    Ok(Outcome::ok(format!(
        "{}: sent mail flow token {} to {} for {:?}{tls_words} in {secs:.3} s (server: {} {queued})",
        ep.display(),
        &token[..8],
        send.to,
        send.id,
        accepted.code()
    ))
    .perf(format!("time={secs:.6}s")))
}
