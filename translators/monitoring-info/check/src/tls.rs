//! TLS for every check: rustls with ring, the roots of a CA file, and one certificate
//! verifier that always records the chain the server presented.
//!
//! - In **strict** mode (the protocol checks without `--ignore-invalid`) the verifier
//!   refuses the handshake when the chain does not verify against the CA file, the
//!   certificate does not match `--name`, or it is outside its validity, so nothing (no
//!   password) is ever sent over such a connection; it keeps the reason, in words, for
//!   the output.
//! - Otherwise (the `cert` check, and `--ignore-invalid`) it accepts any chain, still
//!   checks the handshake signatures against the presented key, and the caller judges the
//!   recorded chain afterwards with [`judge`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

use crate::nagios::Outcome;

/// The default CA file (Debian's bundle of the system's roots).
pub const DEFAULT_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The ring provider (the only one compiled in).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What the TLS options of a check say.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// The name to verify the certificate against and to send as SNI.
    pub name: String,
    /// Do not verify the chain or the name.
    pub ignore_invalid: bool,
    /// The trusted roots (PEM).
    pub ca_file: PathBuf,
}

impl TlsSettings {
    /// `--name` as a rustls server name (UNKNOWN when it is neither a DNS name nor an IP
    /// address).
    pub fn server_name(&self) -> Result<ServerName<'static>, Outcome> {
        ServerName::try_from(self.name.clone()).map_err(|_| {
            Outcome::unknown(format!(
                "--name {:?} is neither a DNS name nor an IP address",
                self.name
            ))
        })
    }

    /// The roots of the CA file (UNKNOWN when it cannot be read or holds none).
    pub fn roots(&self) -> Result<RootCertStore, Outcome> {
        load_roots(&self.ca_file)
    }

    /// A verifier: strict (refuses bad certificates) unless `--ignore-invalid` or
    /// `strict` is false.
    pub fn verifier(&self, strict: bool) -> Result<Arc<Verifier>, Outcome> {
        let strict = if strict && !self.ignore_invalid {
            Some(Strict {
                roots: self.roots()?,
                name: self.server_name()?,
                ca_file: self.ca_file.clone(),
            })
        } else {
            None
        };
        Ok(Arc::new(Verifier {
            provider: provider(),
            strict,
            seen: Mutex::new(Vec::new()),
            problem: Mutex::new(None),
        }))
    }
}

/// A client configuration with `verifier`.
pub fn client_config(verifier: Arc<Verifier>) -> Result<Arc<ClientConfig>, Outcome> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Outcome::unknown(format!("TLS configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The certificates of a PEM file as roots.
pub fn load_roots(path: &Path) -> Result<RootCertStore, Outcome> {
    let bytes = std::fs::read(path)
        .map_err(|e| Outcome::unknown(format!("cannot read the CA file {}: {e}", path.display())))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes).filter_map(Result::ok).collect();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(Outcome::unknown(format!(
            "the CA file {} holds no usable certificate",
            path.display()
        )));
    }
    Ok(roots)
}

#[derive(Debug)]
struct Strict {
    roots: RootCertStore,
    name: ServerName<'static>,
    ca_file: PathBuf,
}

/// The verifier of every connection (see the module comment).
#[derive(Debug)]
pub struct Verifier {
    provider: Arc<CryptoProvider>,
    strict: Option<Strict>,
    seen: Mutex<Vec<CertificateDer<'static>>>,
    problem: Mutex<Option<String>>,
}

impl Verifier {
    /// The chain the server presented (leaf first), once the handshake got that far.
    pub fn presented(&self) -> Vec<CertificateDer<'static>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Why a strict verifier refused the certificate, in words.
    pub fn problem(&self) -> Option<String> {
        self.problem.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn algorithms(&self) -> &WebPkiSupportedAlgorithms {
        &self.provider.signature_verification_algorithms
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let mut chain = vec![end_entity.clone().into_owned()];
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = chain.clone();
        let Some(strict) = &self.strict else {
            return Ok(ServerCertVerified::assertion());
        };
        let problems = match judge(
            &chain,
            Some((&strict.roots, &strict.ca_file)),
            &strict.name,
            now.as_secs(),
            self.algorithms(),
        ) {
            Ok(j) => j.problems(),
            Err(e) => vec![e],
        };
        if problems.is_empty() {
            return Ok(ServerCertVerified::assertion());
        }
        *self.problem.lock().unwrap_or_else(|e| e.into_inner()) = Some(problems.join("; "));
        Err(Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, self.algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, self.algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms().supported_schemes()
    }
}

/// What the leaf certificate says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// Its subject, such as `CN=localhost`.
    pub subject: String,
    /// Its issuer.
    pub issuer: String,
    /// Valid from (unix seconds).
    pub not_before: i64,
    /// Valid until (unix seconds).
    pub not_after: i64,
    /// The names it is for: `DNS:…`/`IP:…` (subject alternative names), else `CN=…`.
    pub names: Vec<String>,
}

/// Parse the leaf with x509-parser.
pub fn parse_leaf(der: &[u8]) -> Result<Leaf, String> {
    use x509_parser::prelude::*;
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| format!("the server's certificate cannot be parsed: {e}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => names.push(format!("DNS:{d}")),
                GeneralName::IPAddress(ip) => {
                    let ip = match ip.len() {
                        4 => <[u8; 4]>::try_from(*ip)
                            .ok()
                            .map(|a| std::net::IpAddr::from(a).to_string()),
                        16 => <[u8; 16]>::try_from(*ip)
                            .ok()
                            .map(|a| std::net::IpAddr::from(a).to_string()),
                        _ => None,
                    };
                    names.push(format!("IP:{}", ip.unwrap_or_else(|| "?".into())));
                }
                _ => {}
            }
        }
    }
    if names.is_empty() {
        for cn in cert.subject().iter_common_name() {
            if let Ok(cn) = cn.as_str() {
                names.push(format!("CN={cn}"));
            }
        }
    }
    let v = cert.validity();
    Ok(Leaf {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: v.not_before.timestamp(),
        not_after: v.not_after.timestamp(),
        names,
    })
}

/// A judged chain: the leaf and each problem found (`None`: none found, or not checked).
#[derive(Debug, Clone)]
pub struct Judgement {
    /// The leaf.
    pub leaf: Leaf,
    /// The chain does not verify against the roots.
    pub chain: Option<String>,
    /// The certificate does not match the name.
    pub name: Option<String>,
    /// The certificate has expired or is not yet valid.
    pub time: Option<String>,
}

impl Judgement {
    /// Every problem, in words.
    pub fn problems(&self) -> Vec<String> {
        [&self.time, &self.chain, &self.name]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }
}

/// Judge `chain` (leaf first) at `now` (unix seconds): always its validity period; with
/// `roots` (and the CA file's path, for the words) also whether it verifies against them
/// and matches `name`.
pub fn judge(
    chain: &[CertificateDer<'_>],
    roots: Option<(&RootCertStore, &Path)>,
    name: &ServerName<'_>,
    now: u64,
    algs: &WebPkiSupportedAlgorithms,
) -> Result<Judgement, String> {
    let Some(ee) = chain.first() else {
        return Err("the server presented no certificate".into());
    };
    let leaf = parse_leaf(ee)?;
    let now_i = i64::try_from(now).unwrap_or(i64::MAX);
    let time = if now_i > leaf.not_after {
        Some(format!(
            "the certificate expired on {} ({} ago)",
            fmt_utc(leaf.not_after),
            fmt_days(now_i - leaf.not_after)
        ))
    } else if now_i < leaf.not_before {
        Some(format!(
            "the certificate is not valid before {}",
            fmt_utc(leaf.not_before)
        ))
    } else {
        None
    };
    let mut j = Judgement {
        leaf,
        chain: None,
        name: None,
        time,
    };
    let Some((roots, ca_file)) = roots else {
        return Ok(j);
    };
    let parsed =
        ParsedCertificate::try_from(ee).map_err(|e| format!("the server's certificate cannot be used: {e}"))?;
    if let Err(e) = verify_server_name(&parsed, name) {
        j.name = Some(match e {
            Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => format!(
                "the certificate does not match {} (it is for {})",
                server_name_str(name),
                j.leaf.names.join(", ")
            ),
            e => format!(
                "the certificate's names cannot be checked against {}: {e}",
                server_name_str(name)
            ),
        });
    }
    let at = |secs: i64| UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(secs).unwrap_or(0)));
    let intermediates = &chain[1..];
    let mut result = verify_server_cert_signed_by_trust_anchor(&parsed, roots, intermediates, at(now_i), algs.all);
    if j.time.is_some() && result.as_ref().is_err_and(is_time_error) {
        // The leaf's own dates stop webpki before it looks at the issuer: try again at a
        // time within them. A time error then too is another certificate's dates at that
        // time, which says nothing of the chain today: left unjudged.
        let within = if now_i > j.leaf.not_after {
            j.leaf.not_after
        } else {
            j.leaf.not_before
        };
        result = verify_server_cert_signed_by_trust_anchor(&parsed, roots, intermediates, at(within), algs.all);
        if result.as_ref().is_err_and(is_time_error) {
            result = Ok(());
        }
    }
    if let Err(e) = result {
        j.chain = Some(describe_chain_error(&e, ca_file));
    }
    Ok(j)
}

fn is_time_error(e: &Error) -> bool {
    matches!(
        e,
        Error::InvalidCertificate(
            CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. }
        )
    )
}

fn describe_chain_error(e: &Error, ca_file: &Path) -> String {
    match e {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
            "the certificate chain does not verify: not issued by a CA of {}",
            ca_file.display()
        ),
        Error::InvalidCertificate(CertificateError::BadSignature) => {
            "the certificate chain does not verify: a signature is invalid".to_string()
        }
        Error::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => {
            "the certificate chain does not verify: a CA certificate of it has expired or is not yet valid".to_string()
        }
        Error::InvalidCertificate(
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. },
        ) => "the certificate chain does not verify: the certificate is not for TLS servers".to_string(),
        e => format!("the certificate chain does not verify: {e}"),
    }
}

/// A TLS error as words: certificate problems named as [`judge`] names them, for the
/// clients whose verifier is not ours (lettre's).
pub fn describe_tls_error(e: &Error, name: &str, ca_file: &Path) -> String {
    match e {
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!("the certificate does not match {name}"),
        Error::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            "the certificate has expired".to_string()
        }
        Error::InvalidCertificate(CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }) => {
            "the certificate is not yet valid".to_string()
        }
        Error::InvalidCertificate(_) => describe_chain_error(e, ca_file),
        e => format!("TLS: {e}"),
    }
}

/// The rustls error behind `e`, if any (directly, or inside an I/O error, along the
/// chain of sources).
pub fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Error>() {
            return Some(r);
        }
        if let Some(r) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<Error>())
        {
            return Some(r);
        }
        cur = err.source();
    }
    None
}

/// A server name as text.
pub fn server_name_str(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(d) => d.as_ref().to_string(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

/// `N days` (whole days, rounded down) or, under a day, `N hours`.
pub fn fmt_days(secs: i64) -> String {
    let days = secs / 86_400;
    if days == 0 && secs.abs() < 86_400 {
        let hours = secs / 3600;
        return if hours == 1 {
            "1 hour".into()
        } else {
            format!("{hours} hours")
        };
    }
    if days == 1 {
        "1 day".into()
    } else {
        format!("{days} days")
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
pub fn fmt_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The civil date of a day number (days since 1970-01-01), after Howard Hinnant.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(fmt_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_utc(1_609_459_200), "2021-01-01 00:00:00 UTC");
        assert_eq!(fmt_utc(951_825_600 + 3661), "2000-02-29 13:01:01 UTC");
        assert_eq!(fmt_days(86_400 * 5 + 10), "5 days");
        assert_eq!(fmt_days(86_400), "1 day");
        assert_eq!(fmt_days(7200), "2 hours");
    }
}
