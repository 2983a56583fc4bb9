//! PEM files for the TLS clients (the Icinga 2 API and the HTTP profile source).

use std::path::Path;

/// Why a PEM file gave no certificates.
#[derive(Debug)]
pub enum PemError {
    /// It could not be read.
    Read(std::io::Error),
    /// It is not PEM.
    Parse(String),
    /// It holds no certificate.
    Empty,
}

/// The certificates of the PEM file at `path` (other items, such as keys, are skipped).
pub fn read_pem_certs(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, PemError> {
    let pem = std::fs::read(path).map_err(PemError::Read)?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| PemError::Parse(e.to_string()))? {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(PemError::Empty);
    }
    Ok(certs)
}
