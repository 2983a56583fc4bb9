//! What a section declares: its type, its parameters with the seed's defaults, and the
//! value rules. A section that breaks a rule is a [`DeclError`] naming the file, line,
//! section and key; it fails that service only.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::format::{Origin, Section};

/// Why a section declares no service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclError {
    /// The section's name.
    pub section: String,
    /// The key at fault, when one is.
    pub key: Option<String>,
    /// Where: the key's line, or the section's.
    pub origin: Origin,
    /// Why. Never holds the value of a `password` key.
    pub reason: String,
}

impl fmt::Display for DeclError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "{}: [{}] {}: {}", self.origin, self.section, k, self.reason),
            None => write!(f, "{}: [{}]: {}", self.origin, self.section, self.reason),
        }
    }
}

/// The protocols a service can be checked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Type {
    Http,
    Tcp,
    Udp,
    Smtp,
    Imap,
    Pop3,
    Mailflow,
    Ldap,
    Ssh,
}

impl Type {
    /// Every type, in the order of the docs.
    pub const ALL: [Type; 9] = [
        Type::Http,
        Type::Tcp,
        Type::Udp,
        Type::Smtp,
        Type::Imap,
        Type::Pop3,
        Type::Mailflow,
        Type::Ldap,
        Type::Ssh,
    ];

    /// The `type = ` value.
    pub fn keyword(self) -> &'static str {
        match self {
            Type::Http => "http",
            Type::Tcp => "tcp",
            Type::Udp => "udp",
            Type::Smtp => "smtp",
            Type::Imap => "imap",
            Type::Pop3 => "pop3",
            Type::Mailflow => "mailflow",
            Type::Ldap => "ldap",
            Type::Ssh => "ssh",
        }
    }

    fn from_keyword(k: &str) -> Option<Type> {
        Type::ALL.into_iter().find(|t| t.keyword() == k)
    }

    /// Whether the seed makes it SSL capable.
    pub fn ssl_capable(self) -> bool {
        matches!(
            self,
            Type::Http | Type::Tcp | Type::Smtp | Type::Imap | Type::Pop3 | Type::Ldap
        )
    }

    /// The keys of this type beyond `type`, `disabled` and the SSL keys.
    fn keys(self) -> &'static [&'static str] {
        match self {
            Type::Http => &["port", "uri", "accept_redirection", "hostname"],
            Type::Tcp | Type::Udp => &["port"],
            Type::Smtp => &["port", "email", "mailflowid"],
            Type::Imap | Type::Pop3 => &["port", "username", "password", "password_file", "mailflowid"],
            Type::Mailflow => &["seconds", "id"],
            Type::Ldap => &["port", "username", "password", "password_file", "base"],
            Type::Ssh => &["port"],
        }
    }

    /// The port when none is given: `None` where the seed makes the port mandatory.
    fn default_port(self, ssl: bool) -> Option<u16> {
        match (self, ssl) {
            (Type::Http, false) => Some(80),
            (Type::Http, true) => Some(443),
            (Type::Smtp, false) => Some(25),
            (Type::Smtp, true) => Some(465),
            (Type::Imap, false) => Some(143),
            (Type::Imap, true) => Some(993),
            (Type::Pop3, false) => Some(110),
            (Type::Pop3, true) => Some(995),
            (Type::Ldap, false) => Some(389),
            (Type::Ldap, true) => Some(636),
            (Type::Ssh, _) => Some(22),
            (Type::Tcp | Type::Udp | Type::Mailflow, _) => None,
        }
    }
}

/// What registration leaves in place of a `password_file` a registering host sent: a host
/// may not make the server read a file of its choosing (another host's password).
pub const REFUSED_PASSWORD_FILE: &str = "refused:sent-by-the-host";

/// The SSL keys, valid on SSL-capable types.
const SSL_KEYS: [&str; 4] = ["ssl", "ssl_hostname", "ignore_invalid_ssl", "expire_before_days"];

/// The certificate checks of an SSL service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The name the certificate must match (`ssl_hostname`, default the host's FQDN).
    pub name: String,
    /// `ignore_invalid_ssl`: no chain or name check.
    pub ignore_invalid: bool,
    /// `expire_before_days`: fail this many days before expiry.
    pub expire_before_days: Option<u32>,
}

/// A login: `username` and the file on the monitoring server that holds the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub password_file: String,
}

/// A declared service, every default applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// The section's name: the service's description.
    pub name: String,
    pub origin: Origin,
    pub kind: Type,
    /// The port (every type but mailflow).
    pub port: Option<u16>,
    /// SSL, with its certificate checks.
    pub tls: Option<Tls>,
    /// http: `uri`.
    pub uri: String,
    /// http: `accept_redirection`.
    pub accept_redirection: bool,
    /// http: `hostname` (default the host's FQDN).
    pub hostname: String,
    /// smtp: `email`.
    pub email: Option<String>,
    /// smtp, imap, pop3: `mailflowid`; mailflow: `id`.
    pub mailflow_id: Option<String>,
    /// imap, pop3, ldap.
    pub login: Option<Login>,
    /// ldap: `base` (default the root DSE).
    pub base: String,
    /// mailflow: `seconds`.
    pub seconds: Option<u32>,
}

/// The characters no value may hold: they would end a line of an object file, be
/// expanded by Nagios as a macro, split a command's arguments, or end the single quotes
/// around an argument.
fn value_problem(v: &str) -> Option<&'static str> {
    if v.contains(['\n', '\r']) {
        Some("contains a newline")
    } else if v.chars().any(|c| c.is_control()) {
        Some("contains a control character")
    } else if v.contains('$') {
        Some("contains '$', which Nagios would expand as a macro")
    } else if v.contains('\'') {
        Some("contains a single quote")
    } else if v.contains('!') {
        Some("contains '!', which separates a Nagios command's arguments")
    } else if v.contains('`') {
        Some("contains a backquote")
    } else if v.ends_with('\\') {
        Some("ends with '\\', which Nagios reads as joining the next line")
    } else {
        None
    }
}

/// The characters of a service name beyond letters and digits.
const NAME_CHARS: &str = " ._-+:@/#";

fn is_host_name(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 253
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        && !v.starts_with(['-', '.'])
}

fn is_email(v: &str) -> bool {
    match v.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && local
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+' | b'='))
                && !local.starts_with('-')
                && is_host_name(domain)
        }
        None => false,
    }
}

fn is_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'@' | b'+'))
        && !v.starts_with('-')
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Some(true),
        "no" | "false" | "off" | "0" | "" => Some(false),
        _ => None,
    }
}

/// Build the declaration of `section`, on a host whose FQDN is `fqdn`.
pub fn declare(section: &Section, fqdn: &str) -> Result<Declaration, DeclError> {
    let err = |key: Option<&str>, origin: &Origin, reason: String| DeclError {
        section: section.name.clone(),
        key: key.map(str::to_string),
        origin: origin.clone(),
        reason,
    };
    if let Some(c) = section
        .name
        .chars()
        .find(|c| !(c.is_alphanumeric() || NAME_CHARS.contains(*c)))
    {
        return Err(err(
            None,
            &section.origin,
            format!("the service name holds {c:?}: a name is letters, digits, spaces and {NAME_CHARS:?}"),
        ));
    }
    if section.name.len() > 200 {
        return Err(err(
            None,
            &section.origin,
            "the service name is longer than 200 characters".into(),
        ));
    }

    // Every key once, every value clean.
    let mut values: BTreeMap<&str, (&str, &Origin)> = BTreeMap::new();
    for p in &section.pairs {
        if let Some((_, first)) = values.get(p.key.as_str()) {
            return Err(err(
                Some(&p.key),
                &p.origin,
                format!("given twice (first at line {})", first.line),
            ));
        }
        if let Some(why) = value_problem(&p.value) {
            return Err(err(Some(&p.key), &p.origin, format!("the value {why}")));
        }
        values.insert(&p.key, (&p.value, &p.origin));
    }

    let Some(&(type_value, type_origin)) = values.get("type") else {
        return Err(err(
            Some("type"),
            &section.origin,
            "missing: every service needs a type".into(),
        ));
    };
    let Some(kind) = Type::from_keyword(&type_value.to_ascii_lowercase()) else {
        let known: Vec<&str> = Type::ALL.iter().map(|t| t.keyword()).collect();
        return Err(err(
            Some("type"),
            type_origin,
            format!("unknown type {type_value:?} (known: {})", known.join(", ")),
        ));
    };

    // Only the keys of this type.
    let allowed: BTreeSet<&str> = kind
        .keys()
        .iter()
        .copied()
        .chain(["type", "disabled"])
        .chain(kind.ssl_capable().then_some(SSL_KEYS).into_iter().flatten())
        .collect();
    for (key, (_, origin)) in &values {
        if !allowed.contains(key) {
            let mut known: Vec<&str> = allowed.iter().copied().collect();
            known.sort_unstable();
            return Err(err(
                Some(key),
                origin,
                format!("not a key of type {} (its keys: {})", kind.keyword(), known.join(", ")),
            ));
        }
    }

    let get = |key: &str| values.get(key).copied().filter(|(v, _)| !v.is_empty());
    let boolean = |key: &str, default: bool| -> Result<bool, DeclError> {
        match get(key) {
            None => Ok(default),
            Some((v, o)) => {
                parse_bool(v).ok_or_else(|| err(Some(key), o, format!("{v:?} is not a boolean (yes or no)")))
            }
        }
    };
    let integer = |key: &str| -> Result<Option<u32>, DeclError> {
        match get(key) {
            None => Ok(None),
            Some((v, o)) => v
                .parse::<u32>()
                .map(Some)
                .map_err(|_| err(Some(key), o, format!("{v:?} is not an integer"))),
        }
    };
    let checked = |key: &str, ok: fn(&str) -> bool, what: &str| -> Result<Option<String>, DeclError> {
        match get(key) {
            None => Ok(None),
            Some((v, _)) if ok(v) => Ok(Some(v.to_string())),
            Some((v, o)) => Err(err(Some(key), o, format!("{v:?} is not {what}"))),
        }
    };

    let ssl = kind.ssl_capable() && boolean("ssl", false)?;
    let port = match integer("port")? {
        Some(p) if (1..=65535).contains(&p) => Some(p as u16),
        Some(p) => {
            let (_, o) = get("port").expect("present: it was just read");
            return Err(err(Some("port"), o, format!("{p} is not a port from 1 to 65535")));
        }
        None => match kind.default_port(ssl) {
            Some(p) => Some(p),
            None if kind == Type::Mailflow => None,
            None => {
                return Err(err(
                    Some("port"),
                    &section.origin,
                    format!("missing: type {} needs a port", kind.keyword()),
                ));
            }
        },
    };

    let tls = if ssl {
        let name = checked("ssl_hostname", is_host_name, "a host name")?.unwrap_or_else(|| fqdn.to_string());
        Some(Tls {
            name,
            ignore_invalid: boolean("ignore_invalid_ssl", false)?,
            expire_before_days: integer("expire_before_days")?,
        })
    } else {
        None
    };

    let uri = match get("uri") {
        None => "/".to_string(),
        Some((v, _)) if v.starts_with('/') && !v.contains(char::is_whitespace) => v.to_string(),
        Some((v, o)) => return Err(err(Some("uri"), o, format!("{v:?} is not a path starting with '/'"))),
    };

    let login = if matches!(kind, Type::Imap | Type::Pop3 | Type::Ldap) {
        if let Some((_, o)) = get("password") {
            // Only a file on the monitoring server may hold it: a value here would be in
            // the profile, the cache and the world-readable objects.
            return Err(err(
                Some("password"),
                o,
                "a password is not taken from a declaration: registration moves it into a file of \
                 the monitoring server; in a profile, name such a file with password_file"
                    .into(),
            ));
        }
        let username = get("username").map(|(v, _)| v.to_string());
        let password_file = match get("password_file") {
            Some((v, o)) if v == REFUSED_PASSWORD_FILE => {
                return Err(err(
                    Some("password_file"),
                    o,
                    "a registering host may not name a file of the monitoring server: send the \
                     password itself, which registration moves into a file of its own"
                        .into(),
                ));
            }
            Some((v, _)) if v.starts_with('/') && !v.contains(char::is_whitespace) => Some(v.to_string()),
            Some((v, o)) => return Err(err(Some("password_file"), o, format!("{v:?} is not an absolute path"))),
            None => None,
        };
        match (username, password_file) {
            (Some(username), Some(password_file)) => Some(Login {
                username,
                password_file,
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(err(
                    Some("username"),
                    &section.origin,
                    "given without a password".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(err(
                    Some("password"),
                    &section.origin,
                    "given without a username".into(),
                ));
            }
        }
    } else {
        None
    };

    let email = checked("email", is_email, "an e-mail address")?;
    let mailflow_id = if kind == Type::Mailflow {
        match checked("id", is_id, "a mailflow id (letters, digits, '.', '-', '_', '@', '+')")? {
            Some(id) => Some(id),
            None => {
                return Err(err(
                    Some("id"),
                    &section.origin,
                    "missing: type mailflow needs an id".into(),
                ));
            }
        }
    } else {
        checked(
            "mailflowid",
            is_id,
            "a mailflow id (letters, digits, '.', '-', '_', '@', '+')",
        )?
    };
    let seconds = if kind == Type::Mailflow {
        match integer("seconds")? {
            Some(s) if s > 0 => Some(s),
            Some(_) => {
                let (_, o) = get("seconds").expect("present: it was just read");
                return Err(err(Some("seconds"), o, "must be at least 1".into()));
            }
            None => {
                return Err(err(
                    Some("seconds"),
                    &section.origin,
                    "missing: type mailflow needs seconds".into(),
                ));
            }
        }
    } else {
        None
    };

    Ok(Declaration {
        name: section.name.clone(),
        origin: section.origin.clone(),
        kind,
        port,
        tls,
        uri,
        accept_redirection: boolean("accept_redirection", true)?,
        hostname: checked("hostname", is_host_name, "a host name")?.unwrap_or_else(|| fqdn.to_string()),
        email,
        mailflow_id,
        login,
        base: get("base").map(|(v, _)| v.to_string()).unwrap_or_default(),
        seconds,
    })
}

/// Whether the section says `disabled = yes` (an override's opt-out).
pub fn is_disabled(section: &Section) -> bool {
    section.get("disabled").and_then(parse_bool).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::parse;

    fn one(text: &str) -> Result<Declaration, DeclError> {
        let (s, e) = parse("f", "", text);
        assert!(e.is_empty(), "{e:?}");
        declare(&s[0], "web3.example.org")
    }

    #[test]
    fn defaults_follow_the_seed() {
        let d = one("[web]\ntype = http\n").unwrap();
        assert_eq!((d.port, d.uri.as_str(), d.accept_redirection), (Some(80), "/", true));
        assert_eq!(d.hostname, "web3.example.org");
        assert!(d.tls.is_none());
        let d = one("[web]\ntype = http\nssl = yes\n").unwrap();
        assert_eq!(d.port, Some(443));
        assert_eq!(d.tls.unwrap().name, "web3.example.org");
        for (t, plain, ssl) in [
            ("smtp", 25, 465),
            ("imap", 143, 993),
            ("pop3", 110, 995),
            ("ldap", 389, 636),
        ] {
            assert_eq!(one(&format!("[s]\ntype = {t}\n")).unwrap().port, Some(plain), "{t}");
            assert_eq!(
                one(&format!("[s]\ntype = {t}\nssl = true\n")).unwrap().port,
                Some(ssl),
                "{t}"
            );
        }
        assert_eq!(one("[s]\ntype = ssh\n").unwrap().port, Some(22));
        let d = one("[m]\ntype = mailflow\nid = main\nseconds = 600\n").unwrap();
        assert_eq!((d.mailflow_id.as_deref(), d.seconds), (Some("main"), Some(600)));
    }

    #[test]
    fn every_bad_input_names_its_key_and_line() {
        let cases = [
            ("[s]\ntype = gopher\n", "type", 2, "unknown type"),
            ("[s]\ntype = tcp\n", "port", 1, "needs a port"),
            ("[s]\ntype = udp\n", "port", 1, "needs a port"),
            ("[s]\ntype = tcp\nport = eighty\n", "port", 3, "not an integer"),
            ("[s]\ntype = tcp\nport = 70000\n", "port", 3, "not a port"),
            ("[s]\ntype = tcp\nport = 1\nport = 2\n", "port", 4, "given twice"),
            ("[s]\ntype = http\nuri = /$USER3$\n", "uri", 3, "'$'"),
            ("[s]\ntype = http\nhostname = a'b\n", "hostname", 3, "single quote"),
            ("[s]\ntype = tcp\nport = 1\nssl = maybe\n", "ssl", 4, "not a boolean"),
            (
                "[s]\ntype = udp\nport = 1\nssl = yes\n",
                "ssl",
                4,
                "not a key of type udp",
            ),
            ("[s]\ntype = mailflow\nseconds = 5\n", "id", 1, "needs an id"),
            ("[s]\ntype = mailflow\nid = x\n", "seconds", 1, "needs seconds"),
            ("[s]\ntype = smtp\nemail = not-an-address\n", "email", 3, "e-mail"),
            ("[s]\ntype = imap\nusername = u\n", "username", 1, "without a password"),
            ("[s]\ntype = http\nprot = 8080\n", "prot", 3, "not a key"),
        ];
        for (text, key, line, reason) in cases {
            let e = one(text).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{text}: {e}");
            assert_eq!(e.origin.line, line, "{text}: {e}");
            assert!(e.reason.contains(reason), "{text}: {e}");
            assert!(e.to_string().starts_with(&format!("f line {line}: [s] {key}:")), "{e}");
        }
    }

    #[test]
    fn a_password_never_reaches_a_message() {
        let e = one("[s]\ntype = imap\nusername = u\npassword = hunter2\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("password"));
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = one("[s]\ntype = imap\nusername = u\npassword = hunt$er2\n").unwrap_err();
        assert!(!e.to_string().contains("hunt"), "{e}");
    }

    #[test]
    fn hostile_service_names_are_refused() {
        for name in ["a;b", "a$b", "a'b", "a!b", "a,b", "a\"b", "x`id`"] {
            let e = one(&format!("[{name}]\ntype = ssh\n")).unwrap_err();
            assert_eq!(e.key, None, "{name}");
            assert!(e.reason.contains("service name"), "{name}: {e}");
        }
    }
}
