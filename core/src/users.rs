//! Where contacts come from. The [`UserSource`] trait lets a site plug in LDAP or
//! another directory later; the TOML file is the built-in source:
//!
//! ```toml
//! [contacts.alice]
//! alias = "Alice Example"
//! email = "alice@example.org"
//! groups = ["kdc", "infrastructure"]
//! xmpp = "alice@jabber.example.org"   # optional: also notified over XMPP
//! slack = "@alice"                    # optional: also notified in Slack
//! ```

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One person who may be notified. Unknown keys are errors (a typo such as `emial`
/// would otherwise leave the contact without an address, silently).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactInfo {
    /// The Nagios `contact_name`.
    #[serde(skip)]
    pub name: String,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// XMPP JID; adds `notify-*-by-xmpp`.
    #[serde(default)]
    pub xmpp: Option<String>,
    /// Slack member or channel; adds `notify-*-by-slack`.
    #[serde(default)]
    pub slack: Option<String>,
}

impl ContactInfo {
    /// True when the contact has at least one way to be notified.
    pub fn has_address(&self) -> bool {
        [&self.email, &self.xmpp, &self.slack]
            .iter()
            .any(|a| a.as_deref().is_some_and(|a| !a.trim().is_empty()))
    }
}

/// The users source could not be read.
#[derive(Debug, Error)]
pub enum UsersError {
    #[error("{file}: cannot read users file: {source}")]
    Io { file: PathBuf, source: std::io::Error },
    #[error("{file}: invalid users file: {source}")]
    Toml { file: PathBuf, source: toml::de::Error },
}

/// A source of contacts and their group memberships.
pub trait UserSource: Send + Sync {
    /// Every contact, sorted by name.
    fn contacts(&self) -> Result<Vec<ContactInfo>, UsersError>;
    /// A short description for logs (`users.toml`, `ldap://...`).
    fn describe(&self) -> String;
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    contacts: IndexMap<String, ContactInfo>,
}

/// Contacts from a TOML file (re-read on every call, so edits are picked up).
#[derive(Debug, Clone)]
pub struct TomlUsers {
    path: PathBuf,
}

impl TomlUsers {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        TomlUsers { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Parse users from TOML text.
    pub fn parse(file: &Path, text: &str) -> Result<Vec<ContactInfo>, UsersError> {
        let parsed: UsersFile = toml::from_str(text).map_err(|source| UsersError::Toml {
            file: file.to_path_buf(),
            source,
        })?;
        let mut out: Vec<ContactInfo> = parsed
            .contacts
            .into_iter()
            .map(|(name, mut c)| {
                c.name = name;
                c
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

impl UserSource for TomlUsers {
    fn contacts(&self) -> Result<Vec<ContactInfo>, UsersError> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| UsersError::Io {
            file: self.path.clone(),
            source,
        })?;
        TomlUsers::parse(&self.path, &text)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// A fixed list of contacts (tests, or a site that builds them in code).
#[derive(Debug, Clone, Default)]
pub struct StaticUsers(pub Vec<ContactInfo>);

impl UserSource for StaticUsers {
    fn contacts(&self) -> Result<Vec<ContactInfo>, UsersError> {
        let mut v = self.0.clone();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    fn describe(&self) -> String {
        "built-in list".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_key_is_an_error_naming_the_file_and_line() {
        let text = "[contacts.alice]\nemail = \"alice@example.org\"\n\n[contacts.bob]\nemial = \"bob@example.org\"\n";
        let e = TomlUsers::parse(Path::new("site/users.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("site/users.toml: "), "{e}");
        assert!(e.contains("line 5") && e.contains("emial"), "{e}");
    }

    #[test]
    fn a_contact_without_any_address_is_noticed() {
        let text = "[contacts.alice]\ngroups = [\"kdc\"]\n[contacts.bob]\nslack = \"@bob\"\n";
        let c = TomlUsers::parse(Path::new("u.toml"), text).unwrap();
        assert!(!c[0].has_address());
        assert!(c[1].has_address());
    }
}
