//! `--password-file`: the password is the file's first line, without its `\n` or `\r\n`.
//! A file that "other" may read is refused (UNKNOWN), and the password is registered as a
//! secret so that no output line can show it.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::nagios::{self, Outcome};

/// The longest password file read.
const MAX_BYTES: u64 = 64 * 1024;

/// A password; its `Debug` does not show it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// The password.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(********)")
    }
}

/// Read the password of `path` (UNKNOWN when it cannot be, or when others may read it).
pub fn read(path: &Path) -> Result<Password, Outcome> {
    let shown = path.display();
    let mut f = std::fs::File::open(path)
        .map_err(|e| Outcome::unknown(format!("cannot open the password file {shown}: {e}")))?;
    // The mode of the file opened, not of whatever the path names a moment later.
    let meta = f
        .metadata()
        .map_err(|e| Outcome::unknown(format!("cannot stat the password file {shown}: {e}")))?;
    if !meta.is_file() {
        return Err(Outcome::unknown(format!(
            "the password file {shown} is not a regular file"
        )));
    }
    let mode = meta.permissions().mode();
    if mode & 0o004 != 0 {
        return Err(Outcome::unknown(format!(
            "the password file {shown} is readable by others (mode {:04o}): chmod o-r it",
            mode & 0o7777
        )));
    }
    let mut bytes = Vec::new();
    f.by_ref()
        .take(MAX_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| Outcome::unknown(format!("cannot read the password file {shown}: {e}")))?;
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let password = String::from_utf8(line.to_vec())
        .map_err(|_| Outcome::unknown(format!("the password in {shown} is not UTF-8")))?;
    if password.is_empty() {
        return Err(Outcome::unknown(format!(
            "the password file {shown} has an empty first line"
        )));
    }
    nagios::add_secret(&password);
    Ok(Password(password))
}

/// `--user`/`--bind-dn` and `--password-file` together, or neither (UNKNOWN for one alone).
pub fn credentials(
    user: Option<&str>,
    file: Option<&std::path::PathBuf>,
    user_option: &str,
) -> Result<Option<(String, Password)>, Outcome> {
    match (user, file) {
        (None, None) => Ok(None),
        (Some(u), Some(f)) => Ok(Some((u.to_string(), read(f)?))),
        (Some(_), None) => Err(Outcome::unknown(format!("{user_option} needs --password-file"))),
        (None, Some(_)) => Err(Outcome::unknown(format!("--password-file needs {user_option}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_without_its_line_end_and_mode_checked() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("pw");
        std::fs::write(&p, "s3cret\r\nsecond\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(read(&p).unwrap().expose(), "s3cret");
        std::fs::write(&p, "only").unwrap();
        assert_eq!(read(&p).unwrap().expose(), "only");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read(&p).unwrap_err();
        assert_eq!(e.status, nagios::Status::Unknown);
        assert!(e.message.contains("readable by others"), "{}", e.message);
        assert!(!e.message.contains("only"));
        assert_eq!(format!("{:?}", Password("x".into())), "Password(********)");
    }
}
