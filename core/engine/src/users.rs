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
    #[serde(default, deserialize_with = "email_field")]
    pub email: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// XMPP JID; adds `notify-*-by-xmpp`.
    #[serde(default, deserialize_with = "xmpp_field")]
    pub xmpp: Option<String>,
    /// Slack member or channel; adds `notify-*-by-slack`.
    #[serde(default, deserialize_with = "slack_field")]
    pub slack: Option<String>,
}

/// What every address must also be, beyond its kind's syntax: the notification commands
/// pass it inside single quotes, so it may not hold a `'`, and a program takes it as one
/// argument, so it may not begin with `-`. `$` (a Nagios macro), `\` and control
/// characters are refused too.
fn check_carried(kind: &str, v: &str) -> Result<(), String> {
    if let Some(c) = v.chars().find(|c| matches!(c, '\'' | '$' | '\\') || c.is_control()) {
        return Err(format!(
            "{kind} address {v:?} contains {c:?}, which cannot be passed safely to a notification command"
        ));
    }
    if v.starts_with('-') {
        return Err(format!(
            "{kind} address {v:?} begins with '-', which a program would read as an option"
        ));
    }
    Ok(())
}

/// An e-mail address: an RFC 5322 addr-spec (no display name, no domain literal).
pub fn check_email(v: &str) -> Result<(), String> {
    check_carried("e-mail", v)?;
    let options = email_address::Options {
        allow_display_text: false,
        allow_domain_literal: false,
        minimum_sub_domains: 2,
        allow_long_local_parts: false,
    };
    email_address::EmailAddress::parse_with_options(v, options)
        .map(|_| ())
        .map_err(|e| format!("e-mail address {v:?} is not an addr-spec: {e}"))
}

/// An XMPP address: a bare or full JID with a node (`user@domain[/resource]`).
pub fn check_xmpp(v: &str) -> Result<(), String> {
    check_carried("XMPP", v)?;
    if v.contains(char::is_whitespace) {
        return Err(format!("XMPP address {v:?} contains white space"));
    }
    let jid = jid::Jid::new(v).map_err(|e| format!("XMPP address {v:?} is not a JID: {e}"))?;
    if jid.node().is_none() {
        return Err(format!("XMPP address {v:?} has no user part (user@domain)"));
    }
    Ok(())
}

/// A Slack destination: `#channel`, `@user`, or a member or channel ID (`U024BE7LH`).
pub fn check_slack(v: &str) -> Result<(), String> {
    check_carried("Slack", v)?;
    let ok = match v.as_bytes() {
        [b'#', rest @ ..] => {
            (1..=80).contains(&rest.len())
                && rest
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'))
        }
        [b'@', rest @ ..] => {
            (1..=80).contains(&rest.len())
                && rest
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        }
        [b'U' | b'W' | b'C' | b'G' | b'D', rest @ ..] => {
            (2..=20).contains(&rest.len()) && rest.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "Slack address {v:?} is not #channel (a-z, 0-9, - and _), @user, or a member or channel ID"
        ))
    }
}

fn checked_field<'de, D: serde::Deserializer<'de>>(
    d: D,
    check: fn(&str) -> Result<(), String>,
) -> Result<Option<String>, D::Error> {
    let v = Option::<String>::deserialize(d)?;
    if let Some(v) = &v {
        check(v).map_err(serde::de::Error::custom)?;
    }
    Ok(v)
}

fn email_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked_field(d, check_email)
}

fn xmpp_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked_field(d, check_xmpp)
}

fn slack_field<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked_field(d, check_slack)
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
    /// A directory (LDAP, ...) could not be read and there is no earlier user set to fall
    /// back on.
    #[error("{origin}: {reason}")]
    Unavailable { origin: String, reason: String },
}

/// A source of contacts and their group memberships.
pub trait UserSource: Send + Sync {
    /// Every contact, sorted by name.
    fn contacts(&self) -> Result<Vec<ContactInfo>, UsersError>;
    /// A short description for logs (`users.toml`, `ldap://...`).
    fn describe(&self) -> String;
    /// Warnings of the last [`UserSource::contacts`] call (entries left out or changed,
    /// a fallback on an earlier user set), for the pass report.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
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
    fn hostile_addresses_are_refused_naming_the_file_and_line() {
        let hostile = [
            ("email", "x@y;touch F"),
            ("email", "x@y`touch F`"),
            ("email", "x@y&touch F&"),
            ("email", "x\" ; touch F ; echo \""),
            ("email", "o'brien@example.org"),
            ("email", "x@y\\"),
            ("email", "-oProxyCommand=x@example.org"),
            ("xmpp", "x\" ; touch F ; echo \""),
            ("xmpp", "alice@jabber.example.org/`touch F`"),
            ("xmpp", "jabber.example.org"),
            ("slack", "`touch F`"),
            ("slack", "#chan;touch F"),
            ("slack", "@bob$(touch F)"),
        ];
        for (key, value) in hostile {
            let text = format!(
                "[contacts.alice]\ngroups = [\"kdc\"]\n{key} = {}\n",
                toml::Value::from(value)
            );
            let e = TomlUsers::parse(Path::new("u.toml"), &text)
                .map(|c| format!("accepted: {c:?}"))
                .unwrap_or_else(|e| e.to_string());
            assert!(
                e.starts_with("u.toml: ") && e.contains("line 3"),
                "{key} = {value:?}: {e}"
            );
            assert!(e.contains("address"), "{key} = {value:?}: {e}");
        }
        for (key, value) in [
            ("email", "alice.o-brien+nagios@example.org"),
            ("xmpp", "alice@jabber.example.org/nagios"),
            ("slack", "#ops-alerts"),
            ("slack", "@bob"),
            ("slack", "U024BE7LH"),
        ] {
            let text = format!("[contacts.alice]\n{key} = {}\n", toml::Value::from(value));
            assert!(
                TomlUsers::parse(Path::new("u.toml"), &text).is_ok(),
                "{key} = {value:?}"
            );
        }
    }

    #[test]
    fn a_contact_without_any_address_is_noticed() {
        let text = "[contacts.alice]\ngroups = [\"kdc\"]\n[contacts.bob]\nslack = \"@bob\"\n";
        let c = TomlUsers::parse(Path::new("u.toml"), text).unwrap();
        assert!(!c[0].has_address());
        assert!(c[1].has_address());
    }
}
