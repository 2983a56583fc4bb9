//! Contacts and contact groups from an LDAP directory: a [`UserSource`] over `ldap://`
//! (optionally with StartTLS), `ldaps://` or `ldapi://` (a Unix socket).
//!
//! Every pass, [`LdapUsers::contacts`] binds, looks up the groups (only the wanted ones
//! when [`LdapUsers::set_wanted_groups`] names them), looks up the users, and builds one
//! [`ContactInfo`] per user, sorted by name. Every value goes through the checks of the
//! TOML source ([`check_email`], [`check_xmpp`], [`check_slack`]), and names through
//! [`check_name`]: a refused address is left out of its contact with a warning naming
//! the entry's DN and the attribute; a user whose name is not a safe Nagios object name
//! is left out with a warning naming the DN. Nothing is dropped silently, and no refused
//! value is repeated in a warning.
//!
//! Fail-safe: when the directory cannot be reached, the bind fails or a search fails,
//! the last good user set is returned (kept in memory, and in the state file so that a
//! restart during an outage still has it) with a warning saying from when it is. Only
//! when there is no last good set at all is it an error, and the engine then holds the
//! pass: contacts are never dropped because LDAP blinked.
//!
//! The simple bind password is read from a file (mode 0600 or stricter) at every bind
//! and appears in no error, warning, log line or `Debug` output.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{LdapConn, LdapConnSettings, Scope, SearchEntry, ldap_escape};
use monitor_engine::users::{ContactInfo, UserSource, UsersError, check_email, check_slack, check_xmpp};
use monitor_sdk::nagios::Value;
use monitor_sdk::nagios::value::check_name;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The page size of the paged searches (RFC 2696), below the common server limits
/// (OpenLDAP's default size limit is 500, Active Directory's page size 1,000).
const PAGE_SIZE: i32 = 400;

/// How often an unchanged user set is saved again, so that the time the state file
/// gives stays close to the last time LDAP answered.
const SAVE_UNCHANGED_EVERY: Duration = Duration::from_secs(60);

/// The version of the state file's format.
const STATE_VERSION: u32 = 1;

/// How to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LdapBind {
    /// No bind: the directory's anonymous access.
    Anonymous,
    /// A simple bind as `dn`, with the password in `password_file` (its first line; the
    /// file must be mode 0600 or stricter).
    Simple { dn: String, password_file: PathBuf },
    /// SASL EXTERNAL: over `ldapi://`, the identity of this process's user, which the
    /// server maps to a DN (OpenLDAP: `gidNumber=G+uidNumber=U,cn=peercred,cn=external,cn=auth`).
    SaslExternal,
}

/// How a group names its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// `posixGroup`: `memberUid` values are users' `uid`s.
    MemberUid,
    /// `groupOfNames`: `member` values are users' DNs.
    MemberDn,
}

/// Which user attributes give a contact's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrMap {
    /// The contact name (default `uid`).
    pub name: String,
    /// The alias (default `cn`).
    pub alias: String,
    /// The e-mail address (default `mail`).
    pub email: String,
    /// The XMPP address (default none; for example `jabberID`).
    pub xmpp: Option<String>,
    /// The Slack destination (default none).
    pub slack: Option<String>,
}

impl Default for AttrMap {
    fn default() -> Self {
        AttrMap {
            name: "uid".into(),
            alias: "cn".into(),
            email: "mail".into(),
            xmpp: None,
            slack: None,
        }
    }
}

/// Where and how to read the users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapConfig {
    /// `ldap://host[:port]`, `ldaps://host[:port]` or `ldapi://%2Fpath%2Fto%2Fsocket`.
    pub url: String,
    /// StartTLS on an `ldap://` URL.
    pub starttls: bool,
    /// PEM CA certificates for `ldaps://` or StartTLS (default: the system's).
    pub ca_file: Option<PathBuf>,
    pub bind: LdapBind,
    /// The search base for users and groups.
    pub base_dn: String,
    /// Default `(objectClass=posixAccount)`.
    pub user_filter: String,
    /// Default `(|(objectClass=posixGroup)(objectClass=groupOfNames))`.
    pub group_filter: String,
    pub membership: Membership,
    pub attrs: AttrMap,
    /// The attribute that names a group (default `cn`).
    pub group_name_attr: String,
    /// When set, only these groups are looked up (the groups the translators
    /// registered); one LDAP does not have is defined with no members, with a warning.
    pub wanted_groups: Option<Vec<String>>,
    /// For connecting and for each operation.
    pub timeout: Duration,
    /// Where the last good user set is kept (JSON, mode 0600).
    pub state_file: PathBuf,
}

impl LdapConfig {
    /// A configuration with the defaults: anonymous bind, `posixAccount` users and
    /// `posixGroup`/`groupOfNames` groups by `memberUid`, `uid`/`cn`/`mail`, 10 s timeout.
    pub fn new(url: impl Into<String>, base_dn: impl Into<String>, state_file: impl Into<PathBuf>) -> Self {
        LdapConfig {
            url: url.into(),
            starttls: false,
            ca_file: None,
            bind: LdapBind::Anonymous,
            base_dn: base_dn.into(),
            user_filter: "(objectClass=posixAccount)".into(),
            group_filter: "(|(objectClass=posixGroup)(objectClass=groupOfNames))".into(),
            membership: Membership::MemberUid,
            attrs: AttrMap::default(),
            group_name_attr: "cn".into(),
            wanted_groups: None,
            timeout: Duration::from_secs(10),
            state_file: state_file.into(),
        }
    }
}

/// The configuration cannot be used.
#[derive(Debug, Error)]
pub enum LdapError {
    #[error("LDAP URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("LDAP configuration: {0}")]
    Config(String),
    #[error("LDAP password file {}: {reason}", file.display())]
    PasswordFile { file: PathBuf, reason: String },
    #[error("LDAP CA file {}: {reason}", file.display())]
    CaFile { file: PathBuf, reason: String },
}

/// Contacts from LDAP. Clones share their state, so a caller may keep one to call
/// [`LdapUsers::set_wanted_groups`] after handing another to the engine.
#[derive(Clone)]
pub struct LdapUsers {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: LdapConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    wanted: Mutex<Option<Vec<String>>>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    last_good: Option<LastGood>,
    /// Warnings of the last `contacts()` call.
    warnings: Vec<String>,
    /// Warnings from `new()` (an unusable state file), given with the next call's.
    pending: Vec<String>,
}

#[derive(Clone)]
struct LastGood {
    at: SystemTime,
    saved: Option<SystemTime>,
    contacts: Vec<ContactInfo>,
}

impl fmt::Debug for LdapUsers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The configuration holds no password (only the password file's path).
        f.debug_struct("LdapUsers")
            .field("cfg", &self.inner.cfg)
            .field("tls_ca", &self.inner.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// A password, kept out of `Debug` and `Display`.
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<password>")
    }
}

impl Secret {
    /// `text` with every occurrence of the password replaced.
    fn scrub(&self, text: String) -> String {
        if self.0.is_empty() || !text.contains(&self.0) {
            text
        } else {
            text.replace(&self.0, "<password>")
        }
    }
}

impl LdapUsers {
    /// Check the configuration (URL, filters, password file, CA file) and load the last
    /// good user set from the state file, if there is one. A state file that cannot be
    /// used is not an error: it is reported as a warning of the first `contacts()` call.
    pub fn new(cfg: LdapConfig) -> Result<LdapUsers, LdapError> {
        let scheme = cfg.url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        let url_err = |reason: &str| LdapError::Url {
            url: cfg.url.clone(),
            reason: reason.into(),
        };
        let scheme = match scheme.as_deref() {
            Some(s @ ("ldap" | "ldaps" | "ldapi")) => s.to_string(),
            _ => return Err(url_err("the scheme must be ldap://, ldaps:// or ldapi://")),
        };
        if cfg.starttls && scheme != "ldap" {
            return Err(url_err("StartTLS is for ldap:// URLs only"));
        }
        let encrypted = scheme == "ldaps" || scheme == "ldapi" || cfg.starttls;
        match &cfg.bind {
            LdapBind::Anonymous => {}
            LdapBind::Simple { dn, password_file } => {
                if dn.trim().is_empty() {
                    return Err(LdapError::Config("a simple bind needs a DN".into()));
                }
                if !encrypted {
                    return Err(url_err(
                        "a simple bind over ldap:// without StartTLS would send the password in clear",
                    ));
                }
                read_password(password_file)?;
            }
            LdapBind::SaslExternal => {
                if scheme != "ldapi" {
                    return Err(url_err(
                        "SASL EXTERNAL is supported over ldapi:// only (no client certificate is configured)",
                    ));
                }
            }
        }
        if cfg.base_dn.trim().is_empty() {
            return Err(LdapError::Config("the base DN is empty".into()));
        }
        for (what, filter) in [("user filter", &cfg.user_filter), ("group filter", &cfg.group_filter)] {
            if ldap3::parse_filter(filter).is_err() {
                return Err(LdapError::Config(format!(
                    "the {what} {filter:?} is not an LDAP filter"
                )));
            }
        }
        let mut attrs = vec![
            &cfg.attrs.name,
            &cfg.attrs.alias,
            &cfg.attrs.email,
            &cfg.group_name_attr,
        ];
        attrs.extend(cfg.attrs.xmpp.iter());
        attrs.extend(cfg.attrs.slack.iter());
        if let Some(a) = attrs.iter().find(|a| !is_attr_name(a)) {
            return Err(LdapError::Config(format!("{a:?} is not an attribute name")));
        }
        if cfg.timeout.is_zero() {
            return Err(LdapError::Config("the timeout is zero".into()));
        }
        let tls = match &cfg.ca_file {
            Some(file) => Some(tls_config(file)?),
            None => None,
        };

        let mut state = State::default();
        match load_state(&cfg.state_file) {
            Ok(Some(last)) => {
                tracing::info!(
                    file = %cfg.state_file.display(),
                    contacts = last.contacts.len(),
                    from = %humantime::format_rfc3339_seconds(last.at),
                    "loaded the last good LDAP user set"
                );
                state.last_good = Some(last);
            }
            Ok(None) => {}
            Err(e) => {
                let w = format!(
                    "the state file {} cannot be used ({e}); there is no last good user set to fall back on",
                    cfg.state_file.display()
                );
                tracing::warn!("{w}");
                state.pending.push(w);
            }
        }
        let wanted = cfg.wanted_groups.clone();
        Ok(LdapUsers {
            inner: Arc::new(Inner {
                cfg,
                tls,
                wanted: Mutex::new(wanted),
                state: Mutex::new(state),
            }),
        })
    }

    /// Look up only these groups from now on (the groups the translators registered).
    pub fn set_wanted_groups(&self, groups: Vec<String>) {
        *lock(&self.inner.wanted) = Some(groups);
    }

    /// The configuration.
    pub fn config(&self) -> &LdapConfig {
        &self.inner.cfg
    }

    /// Read the directory once: the contacts, or why not (no fallback here).
    fn fetch(&self, warnings: &mut Vec<String>) -> Result<Vec<ContactInfo>, String> {
        let cfg = &self.inner.cfg;
        let mut settings = LdapConnSettings::new().set_conn_timeout(cfg.timeout);
        if cfg.starttls {
            settings = settings.set_starttls(true);
        }
        if let Some(tls) = &self.inner.tls {
            settings = settings.set_config(tls.clone());
        }
        let mut conn = LdapConn::with_settings(settings, &cfg.url).map_err(|e| format!("cannot connect: {e}"))?;
        let result = self.bind_and_read(&mut conn, warnings);
        let _ = conn.unbind();
        result
    }

    fn bind_and_read(&self, conn: &mut LdapConn, warnings: &mut Vec<String>) -> Result<Vec<ContactInfo>, String> {
        let cfg = &self.inner.cfg;
        match &cfg.bind {
            LdapBind::Anonymous => {}
            LdapBind::Simple { dn, password_file } => {
                let pw = read_password(password_file).map_err(|e| e.to_string())?;
                let res = conn
                    .with_timeout(cfg.timeout)
                    .simple_bind(dn, &pw.0)
                    .and_then(|r| r.success());
                if let Err(e) = res {
                    return Err(pw.scrub(format!("simple bind as {dn:?} failed: {e}")));
                }
            }
            LdapBind::SaslExternal => {
                conn.with_timeout(cfg.timeout)
                    .sasl_external_bind()
                    .and_then(|r| r.success())
                    .map_err(|e| format!("SASL EXTERNAL bind failed: {e}"))?;
            }
        }
        let wanted = lock(&self.inner.wanted).clone();
        let groups = self.read_groups(conn, wanted.as_deref(), warnings)?;
        self.read_users(conn, &groups, warnings)
    }

    /// Group name → its members (`memberUid` values, or normalised member DNs).
    fn read_groups(
        &self,
        conn: &mut LdapConn,
        wanted: Option<&[String]>,
        warnings: &mut Vec<String>,
    ) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
        let cfg = &self.inner.cfg;
        let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let filter = match wanted {
            Some([]) => return Ok(groups),
            Some(names) => {
                let mut f = format!("(&{}(|", parenthesised(&cfg.group_filter));
                for n in names.iter().collect::<BTreeSet<_>>() {
                    f.push_str(&format!("({}={})", cfg.group_name_attr, ldap_escape(n.as_str())));
                }
                f.push_str("))");
                f
            }
            None => cfg.group_filter.clone(),
        };
        let member_attr = match cfg.membership {
            Membership::MemberUid => "memberUid",
            Membership::MemberDn => "member",
        };
        let entries = search(
            conn,
            cfg,
            &filter,
            vec![cfg.group_name_attr.clone(), member_attr.to_string()],
        )?;
        let mut found: BTreeSet<&str> = BTreeSet::new();
        for e in &entries {
            let names = values(e, &cfg.group_name_attr);
            let members = values(e, member_attr).into_iter().map(|m| match cfg.membership {
                Membership::MemberUid => m.to_string(),
                Membership::MemberDn => normalise_dn(m),
            });
            let members: BTreeSet<String> = members.collect();
            match wanted {
                Some(wanted) => {
                    // The wanted spelling is the group's name: the translators refer to it.
                    let lower: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
                    for w in wanted.iter().filter(|w| lower.contains(&w.to_lowercase())) {
                        found.insert(w.as_str());
                        groups.entry(w.clone()).or_default().extend(members.iter().cloned());
                    }
                }
                None => {
                    let Some(name) = pick(&e.dn, &cfg.group_name_attr, &names) else {
                        warnings.push(format!(
                            "group entry {} has no {}; the group is left out",
                            shown(&e.dn),
                            cfg.group_name_attr
                        ));
                        continue;
                    };
                    if let Err(err) = check_name("contactgroup_name", name) {
                        warnings.push(format!(
                            "group entry {}: {} is not a safe Nagios object name ({}); the group is left out",
                            shown(&e.dn),
                            cfg.group_name_attr,
                            err.reason
                        ));
                        continue;
                    }
                    groups.entry(name.to_string()).or_default().extend(members);
                }
            }
        }
        if let Some(wanted) = wanted {
            for w in wanted.iter().collect::<BTreeSet<_>>() {
                if !found.contains(w.as_str()) {
                    warnings.push(format!("group {w} is not in LDAP; it is defined with no members"));
                    groups.entry(w.clone()).or_default();
                }
            }
        }
        Ok(groups)
    }

    fn read_users(
        &self,
        conn: &mut LdapConn,
        groups: &BTreeMap<String, BTreeSet<String>>,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<ContactInfo>, String> {
        let cfg = &self.inner.cfg;
        let a = &cfg.attrs;
        let mut attrs = vec![a.name.clone(), a.alias.clone(), a.email.clone()];
        attrs.extend(a.xmpp.iter().cloned());
        attrs.extend(a.slack.iter().cloned());
        if cfg.membership == Membership::MemberUid {
            attrs.push("uid".into());
        }
        attrs.sort();
        attrs.dedup();
        let mut entries = search(conn, cfg, &cfg.user_filter, attrs)?;
        if entries.is_empty() {
            let had = lock(&self.inner.state)
                .last_good
                .as_ref()
                .is_some_and(|l| !l.contacts.is_empty());
            if had {
                // Everyone gone at once is far likelier a directory or ACL fault than
                // the truth: keep the last good set (remove the state file to accept it).
                return Err(format!(
                    "the user search under {:?} for {} found no entry, where the last good set has users",
                    cfg.base_dn, cfg.user_filter
                ));
            }
            warnings.push(format!(
                "the user search under {:?} for {} found no entry",
                cfg.base_dn, cfg.user_filter
            ));
        }
        entries.sort_by(|x, y| x.dn.cmp(&y.dn));
        let mut by_name: BTreeMap<String, (String, ContactInfo)> = BTreeMap::new();
        for e in &entries {
            let dn = shown(&e.dn);
            for (attr, vals) in &e.bin_attrs {
                if !vals.is_empty() {
                    warnings.push(format!(
                        "user entry {dn}: attribute {attr} has a value that is not UTF-8; it is not used"
                    ));
                }
            }
            let names = values(e, &a.name);
            let Some(name) = pick(&e.dn, &a.name, &names) else {
                warnings.push(format!("user entry {dn} has no {}; the user is left out", a.name));
                continue;
            };
            if let Err(err) = check_name("contact_name", name) {
                warnings.push(format!(
                    "user entry {dn}: {} is not a safe Nagios object name ({}); the user is left out",
                    a.name, err.reason
                ));
                continue;
            }
            if let Some((other, _)) = by_name.get(name) {
                warnings.push(format!(
                    "user entry {dn}: {} {name} is also the name of user entry {other}; this entry is left out",
                    a.name
                ));
                continue;
            }
            let alias = values(e, &a.alias)
                .first()
                .and_then(|v| match Value::Text(v.to_string()).check("alias") {
                    Ok(()) => Some(v.to_string()),
                    Err(err) => {
                        warnings.push(format!(
                            "user entry {dn}: attribute {}: the value {}; it is not used",
                            a.alias, err.reason
                        ));
                        None
                    }
                });
            let mut address = |attr: Option<&String>, check: fn(&str) -> Result<(), String>| {
                let attr = attr?;
                let mut chosen = None;
                for v in values(e, attr) {
                    match check(v) {
                        Ok(()) if chosen.is_none() => chosen = Some(v.to_string()),
                        Ok(()) => warnings.push(format!(
                            "user entry {dn}: attribute {attr} has more than one value; only the first is used"
                        )),
                        Err(reason) => warnings.push(format!(
                            "user entry {dn}: attribute {attr}: refused, {}; the contact is kept without it",
                            without_value(&reason, v)
                        )),
                    }
                }
                chosen
            };
            let email = address(Some(&a.email), check_email);
            let xmpp = address(a.xmpp.as_ref(), check_xmpp);
            let slack = address(a.slack.as_ref(), check_slack);
            let keys: Vec<String> = match cfg.membership {
                Membership::MemberUid => values(e, "uid").into_iter().map(str::to_string).collect(),
                Membership::MemberDn => vec![normalise_dn(&e.dn)],
            };
            let member_of: Vec<String> = groups
                .iter()
                .filter(|(_, members)| keys.iter().any(|k| members.contains(k)))
                .map(|(g, _)| g.clone())
                .collect();
            let contact = ContactInfo {
                name: name.to_string(),
                alias,
                email,
                groups: member_of,
                xmpp,
                slack,
            };
            by_name.insert(name.to_string(), (dn, contact));
        }
        Ok(by_name.into_values().map(|(_, c)| c).collect())
    }

    /// Keep `contacts` as the last good set, in memory and in the state file.
    fn keep(&self, contacts: &[ContactInfo], warnings: &mut Vec<String>) {
        let now = SystemTime::now();
        let mut state = lock(&self.inner.state);
        let (changed, saved) = match &state.last_good {
            Some(l) => (l.contacts != contacts, l.saved),
            None => (true, None),
        };
        let due = saved.is_none_or(|s| now.duration_since(s).unwrap_or_default() >= SAVE_UNCHANGED_EVERY);
        let mut saved = saved;
        if changed || due {
            match save_state(&self.inner.cfg.state_file, &self.inner.cfg.url, now, contacts) {
                Ok(()) => saved = Some(now),
                Err(e) => {
                    let w = format!(
                        "cannot save the user set to {} ({e}): a restart during an LDAP outage would not have it",
                        self.inner.cfg.state_file.display()
                    );
                    tracing::warn!("{w}");
                    warnings.push(w);
                }
            }
        }
        state.last_good = Some(LastGood {
            at: now,
            saved,
            contacts: contacts.to_vec(),
        });
    }
}

impl UserSource for LdapUsers {
    fn contacts(&self) -> Result<Vec<ContactInfo>, UsersError> {
        let t0 = Instant::now();
        let mut warnings = std::mem::take(&mut lock(&self.inner.state).pending);
        let fetched = self.fetch(&mut warnings);
        let result = match fetched {
            Ok(contacts) => {
                tracing::info!(
                    url = %self.inner.cfg.url,
                    contacts = contacts.len(),
                    warnings = warnings.len(),
                    ms = t0.elapsed().as_secs_f64() * 1000.0,
                    "read the users from LDAP"
                );
                for w in &warnings {
                    tracing::warn!(url = %self.inner.cfg.url, "{w}");
                }
                self.keep(&contacts, &mut warnings);
                Ok(contacts)
            }
            Err(reason) => {
                let last = lock(&self.inner.state).last_good.clone();
                match last {
                    Some(last) => {
                        let w = format!(
                            "LDAP unreachable ({reason}); using the last good user set from {}",
                            humantime::format_rfc3339_seconds(last.at)
                        );
                        tracing::warn!(url = %self.inner.cfg.url, contacts = last.contacts.len(), "{w}");
                        warnings.push(w);
                        Ok(last.contacts)
                    }
                    None => {
                        tracing::error!(url = %self.inner.cfg.url, "LDAP unreachable ({reason}); no last good user set");
                        Err(UsersError::Unavailable {
                            origin: self.describe(),
                            reason: format!(
                                "LDAP unreachable ({reason}) and there is no last good user set to fall back on"
                            ),
                        })
                    }
                }
            }
        };
        lock(&self.inner.state).warnings = warnings;
        result
    }

    fn describe(&self) -> String {
        self.inner.cfg.url.clone()
    }

    fn warnings(&self) -> Vec<String> {
        lock(&self.inner.state).warnings.clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One paged subtree search under the base DN; referrals and intermediate messages
/// are skipped. Any failure, a size limit included, fails the whole read.
fn search(conn: &mut LdapConn, cfg: &LdapConfig, filter: &str, attrs: Vec<String>) -> Result<Vec<SearchEntry>, String> {
    let adapters: Vec<Box<dyn Adapter<String, Vec<String>>>> =
        vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(PAGE_SIZE))];
    let fail = |e: ldap3::LdapError| format!("search under {:?} for {filter} failed: {e}", cfg.base_dn);
    let mut stream = conn
        .with_timeout(cfg.timeout)
        .streaming_search_with(adapters, &cfg.base_dn, Scope::Subtree, filter, attrs)
        .map_err(fail)?;
    let mut out = Vec::new();
    loop {
        match stream.next() {
            Ok(Some(entry)) => {
                // `construct` panics on a malformed entry: a broken answer, not a crash.
                let entry = std::panic::catch_unwind(AssertUnwindSafe(|| SearchEntry::construct(entry)))
                    .map_err(|_| format!("search under {:?} for {filter}: a malformed entry", cfg.base_dn))?;
                out.push(entry);
            }
            Ok(None) => break,
            Err(e) => return Err(fail(e)),
        }
    }
    stream.result().success().map_err(fail)?;
    Ok(out)
}

/// An entry's values of `attr` (attribute names are case-insensitive).
fn values<'e>(e: &'e SearchEntry, attr: &str) -> Vec<&'e str> {
    e.attrs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(attr))
        .flat_map(|(_, v)| v.iter().map(String::as_str))
        .collect()
}

/// The one value naming an entry: the only one, or the entry's RDN value when `attr`
/// has several, or the first.
fn pick<'v>(dn: &str, attr: &str, vals: &[&'v str]) -> Option<&'v str> {
    match vals {
        [] => None,
        [one] => Some(one),
        many => {
            let rdn = dn.split(',').next().unwrap_or_default();
            let rdn_value = rdn
                .split_once('=')
                .filter(|(a, _)| a.trim().eq_ignore_ascii_case(attr))
                .map(|(_, v)| v.trim());
            rdn_value
                .and_then(|r| many.iter().find(|v| v.eq_ignore_ascii_case(r)).copied())
                .or(Some(many[0]))
        }
    }
}

/// A DN in a comparable form: lower case, no spaces around `,`, `=` and `+`.
fn normalise_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut escaped = false;
    let mut skip_spaces = true;
    for c in dn.chars() {
        if escaped {
            out.extend(c.to_lowercase());
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                out.push(c);
                escaped = true;
                skip_spaces = false;
            }
            ',' | '=' | '+' => {
                while out.ends_with(' ') && !out.ends_with("\\ ") {
                    out.pop();
                }
                out.push(c);
                skip_spaces = true;
            }
            ' ' if skip_spaces => {}
            _ => {
                out.extend(c.to_lowercase());
                skip_spaces = false;
            }
        }
    }
    while out.ends_with(' ') && !out.ends_with("\\ ") {
        out.pop();
    }
    out
}

/// Untrusted text (a DN) for a warning: quoted, with control characters escaped.
fn shown(s: &str) -> String {
    format!("{s:?}")
}

/// A check's reason without the refused value itself (which the reason quotes).
fn without_value(reason: &str, v: &str) -> String {
    reason.replacen(&format!(" {v:?}"), "", 1)
}

fn parenthesised(filter: &str) -> String {
    let f = filter.trim();
    if f.starts_with('(') {
        f.to_string()
    } else {
        format!("({f})")
    }
}

fn is_attr_name(a: &str) -> bool {
    let mut chars = a.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn read_password(file: &Path) -> Result<Secret, LdapError> {
    let err = |reason: String| LdapError::PasswordFile {
        file: file.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(file).map_err(|e| err(e.to_string()))?;
    if !meta.is_file() {
        return Err(err("not a regular file".into()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(err(format!(
            "mode {mode:04o} lets other users read it: it must be 0600 or stricter"
        )));
    }
    let text = std::fs::read_to_string(file).map_err(|e| err(e.to_string()))?;
    let pw = text.lines().next().unwrap_or_default();
    if pw.is_empty() {
        // An empty password makes a simple bind an unauthenticated (anonymous) one.
        return Err(err("the password is empty".into()));
    }
    Ok(Secret(pw.to_string()))
}

fn tls_config(file: &Path) -> Result<Arc<rustls::ClientConfig>, LdapError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let err = |reason: String| LdapError::CaFile {
        file: file.to_path_buf(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(file).map_err(|e| err(e.to_string()))? {
        let cert = cert.map_err(|e| err(e.to_string()))?;
        roots.add(cert).map_err(|e| err(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(err("holds no PEM certificate".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    version: u32,
    /// The LDAP URL the set was read from (for people reading the file).
    source: String,
    /// When LDAP last gave this set (seconds since the epoch).
    saved_at: u64,
    contacts: Vec<SavedContact>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedContact {
    name: String,
    alias: Option<String>,
    email: Option<String>,
    groups: Vec<String>,
    xmpp: Option<String>,
    slack: Option<String>,
}

fn save_state(file: &Path, source: &str, at: SystemTime, contacts: &[ContactInfo]) -> Result<(), String> {
    let state = StateFile {
        version: STATE_VERSION,
        source: source.to_string(),
        saved_at: at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs(),
        contacts: contacts
            .iter()
            .map(|c| SavedContact {
                name: c.name.clone(),
                alias: c.alias.clone(),
                email: c.email.clone(),
                groups: c.groups.clone(),
                xmpp: c.xmpp.clone(),
                slack: c.slack.clone(),
            })
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&state).map_err(|e| e.to_string())?;
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // A temporary file is created mode 0600; renamed over the old one when complete.
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| e.to_string())?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    tmp.write_all(&json).map_err(|e| e.to_string())?;
    tmp.as_file().sync_all().map_err(|e| e.to_string())?;
    tmp.persist(file).map_err(|e| e.error.to_string())?;
    Ok(())
}

/// The saved set, checked again as if it came from LDAP: `Ok(None)` when there is no
/// state file.
fn load_state(file: &Path) -> Result<Option<LastGood>, String> {
    let text = match std::fs::read(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let meta = std::fs::metadata(file).map_err(|e| e.to_string())?;
    if meta.mode() & 0o022 != 0 {
        return Err(format!("mode {:04o} lets other users write it", meta.mode() & 0o777));
    }
    let state: StateFile = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
    if state.version != STATE_VERSION {
        return Err(format!("format version {} is not {STATE_VERSION}", state.version));
    }
    let mut contacts = Vec::with_capacity(state.contacts.len());
    let mut names = HashMap::new();
    for c in state.contacts {
        check_name("contact_name", &c.name).map_err(|e| e.to_string())?;
        if names.insert(c.name.clone(), ()).is_some() {
            return Err(format!("contact {} is there twice", c.name));
        }
        for g in &c.groups {
            check_name("contactgroup_name", g).map_err(|e| e.to_string())?;
        }
        if let Some(a) = &c.alias {
            Value::Text(a.clone()).check("alias").map_err(|e| e.to_string())?;
        }
        for (v, check) in [
            (&c.email, check_email as fn(&str) -> Result<(), String>),
            (&c.xmpp, check_xmpp),
            (&c.slack, check_slack),
        ] {
            if let Some(v) = v {
                check(v).map_err(|e| format!("contact {}: {}", c.name, without_value(&e, v)))?;
            }
        }
        contacts.push(ContactInfo {
            name: c.name,
            alias: c.alias,
            email: c.email,
            groups: c.groups,
            xmpp: c.xmpp,
            slack: c.slack,
        });
    }
    contacts.sort_by(|a, b| a.name.cmp(&b.name));
    let at = UNIX_EPOCH + Duration::from_secs(state.saved_at);
    Ok(Some(LastGood {
        at,
        saved: Some(at),
        contacts,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_are_compared_without_case_or_spaces() {
        assert_eq!(
            normalise_dn("uid=Alice , ou=People,  dc=Example,dc=org"),
            "uid=alice,ou=people,dc=example,dc=org"
        );
        assert_eq!(normalise_dn("cn=a\\, b,dc=x"), "cn=a\\, b,dc=x");
    }

    #[test]
    fn a_refused_value_is_not_repeated() {
        let v = "x@example.org\n$USER1$'; touch /tmp/x";
        let reason = check_email(v).unwrap_err();
        let w = without_value(&reason, v);
        assert!(!w.contains("USER1") && !w.contains("touch"), "{w}");
    }

    #[test]
    fn the_rdn_value_names_a_multi_valued_entry() {
        assert_eq!(pick("cn=kdc,ou=g,dc=x", "cn", &["Kerberos", "kdc"]), Some("kdc"));
        assert_eq!(pick("uid=a,dc=x", "cn", &["B", "C"]), Some("B"));
    }
}
