//! Server certificates with chosen validity dates, signed by the test CA of
//! [`crate::nginx::make_test_pki`]: an expired one and one that expires in a given number
//! of days, for `localhost` and `127.0.0.1` like the PKI's own server certificate.
//!
//! The `openssl` of Debian 12 (3.0) has no `x509 -not_before`, so they are issued with
//! `openssl ca`, whose `-startdate`/`-enddate` set any dates, from a minimal
//! configuration and database of their own in `DIR/ca-db`. Tests that need them fail
//! (never skip) when `openssl` is missing.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::nginx::{CertKey, TestPki, openssl};

/// The CA's key: `ca.key` beside `ca.pem`, where `make_test_pki` writes it.
fn ca_key(pki: &TestPki) -> PathBuf {
    pki.ca.with_file_name("ca.key")
}

/// `YYYYMMDDHHMMSSZ` of a unix time.
fn asn1_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn now() -> i64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(d.as_secs()).expect("a sane clock")
}

/// Issue a server certificate `DIR/NAME.pem` (key `DIR/NAME.key`) for `localhost` and
/// `127.0.0.1`, valid from `start` to `end` (`YYYYMMDDHHMMSSZ`), signed by the test CA.
pub fn issue_with_dates(dir: &Path, pki: &TestPki, name: &str, start: &str, end: &str) -> CertKey {
    let db = dir.join("ca-db");
    std::fs::create_dir_all(db.join("newcerts")).expect("create the CA database directory");
    let index = db.join("index.txt");
    if !index.exists() {
        std::fs::write(&index, "").expect("write index.txt");
    }
    // A serial of our own for each certificate: no two share one, whatever else the CA
    // signed.
    let serial: u64 = rand::random::<u64>() >> 1;
    std::fs::write(db.join("serial"), format!("{serial:016X}\n")).expect("write the serial");
    let d = |p: &Path| p.display().to_string();
    let conf = format!(
        "[ ca ]\n\
         default_ca = test_ca\n\
         [ test_ca ]\n\
         database = {index}\n\
         new_certs_dir = {newcerts}\n\
         serial = {serial}\n\
         certificate = {cert}\n\
         private_key = {key}\n\
         default_md = sha256\n\
         policy = policy_any\n\
         unique_subject = no\n\
         copy_extensions = none\n\
         [ policy_any ]\n\
         commonName = supplied\n\
         [ server_ext ]\n\
         basicConstraints = CA:FALSE\n\
         keyUsage = critical,digitalSignature\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = DNS:localhost,IP:127.0.0.1\n",
        index = d(&index),
        newcerts = d(&db.join("newcerts")),
        serial = d(&db.join("serial")),
        cert = d(&pki.ca),
        key = d(&ca_key(pki)),
    );
    let conf_path = db.join(format!("{name}.cnf"));
    std::fs::write(&conf_path, conf).expect("write the CA configuration");
    let (key, csr, cert) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"));
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            "/CN=localhost",
        ],
    );
    openssl(
        dir,
        &[
            "ca",
            "-batch",
            "-notext",
            "-config",
            &d(&conf_path),
            "-extensions",
            "server_ext",
            "-startdate",
            start,
            "-enddate",
            end,
            "-in",
            &csr,
            "-out",
            &cert,
        ],
    );
    CertKey {
        cert: dir.join(cert),
        key: dir.join(key),
    }
}

/// A server certificate for `localhost` / `127.0.0.1` signed by the test CA, valid from
/// 2020-01-01 to 2021-01-01: `DIR/expired.pem`, `DIR/expired.key`.
pub fn make_expired_cert(dir: &Path, pki: &TestPki) -> CertKey {
    issue_with_dates(dir, pki, "expired", "20200101000000Z", "20210101000000Z")
}

/// A server certificate for `localhost` / `127.0.0.1` signed by the test CA, valid from
/// a day ago until `days` days from now: `DIR/expiring-DAYS.pem`, `DIR/expiring-DAYS.key`.
pub fn make_cert_expiring_in(dir: &Path, pki: &TestPki, days: u32) -> CertKey {
    let now = now();
    issue_with_dates(
        dir,
        pki,
        &format!("expiring-{days}"),
        &asn1_time(now - 86_400),
        &asn1_time(now + i64::from(days) * 86_400),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asn1_times() {
        assert_eq!(asn1_time(0), "19700101000000Z");
        assert_eq!(asn1_time(1_609_459_200), "20210101000000Z");
        assert_eq!(asn1_time(951_825_600 + 3661), "20000229130101Z");
    }
}
