//! The command line (the monitoring-info translator writes these lines: keep the option
//! names).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::net::Endpoint;
use crate::store::DEFAULT_STORE;
use crate::tls::{DEFAULT_CA_FILE, TlsSettings};

/// Nagios checks for the services declared in /etc/monitoring-info: certificates, SMTP,
/// IMAP, POP3 and LDAP, and mail flow from an SMTP server to a mailbox.
#[derive(Debug, Parser)]
#[command(name = "check_monitoring_info", version, disable_help_subcommand = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The TLS certificate of a server: trusted, matching its name, not expired (nor
    /// within --days of expiry).
    Cert(CertArgs),
    /// An SMTP greeting, EHLO and QUIT; with --to, also send a mail flow token.
    Smtp(SmtpArgs),
    /// An IMAP greeting and LOGOUT; with credentials, log in and consume mail flow tokens.
    Imap(MailboxArgs),
    /// A POP3 greeting and QUIT; with credentials, log in and consume mail flow tokens.
    Pop3(MailboxArgs),
    /// An LDAP bind (simple with credentials, else anonymous) and a base-scope search.
    Ldap(LdapArgs),
    /// The mail flow tokens of an id: CRITICAL when one is older than --seconds.
    Mailflow(MailflowArgs),
}

/// Where to connect.
#[derive(Debug, Args)]
pub struct ConnArgs {
    /// The server's address or host name.
    #[arg(short = 'H', long = "host", value_name = "ADDR")]
    pub host: String,
    /// The port (default: the protocol's, by --ssl).
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    pub port: Option<u16>,
    /// Seconds that the whole check, and each connect, read and write, may take.
    #[arg(short = 't', long = "timeout", value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

impl ConnArgs {
    /// The endpoint, with `default_port` when -p is not given.
    pub fn endpoint(&self, default_port: u16) -> Endpoint {
        Endpoint {
            host: self.host.clone(),
            port: self.port.unwrap_or(default_port),
            timeout: Duration::from_secs(self.timeout),
        }
    }
}

/// The TLS options.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// Implicit TLS: the connection starts with a TLS handshake.
    #[arg(long = "ssl")]
    pub ssl: bool,
    /// The name to verify the certificate against and send as SNI (default: -H).
    #[arg(long = "name", value_name = "NAME")]
    pub name: Option<String>,
    /// Do not verify the certificate's chain or name.
    #[arg(long = "ignore-invalid")]
    pub ignore_invalid: bool,
    /// The trusted CA certificates (PEM).
    #[arg(long = "ca-file", value_name = "FILE", default_value = DEFAULT_CA_FILE, env = "CHECK_MONITORING_INFO_CA_FILE")]
    pub ca_file: PathBuf,
}

impl TlsArgs {
    /// The settings when --ssl is given.
    pub fn settings(&self, host: &str) -> Option<TlsSettings> {
        self.ssl.then(|| TlsSettings {
            name: nonempty(&self.name).unwrap_or(host).to_string(),
            ignore_invalid: self.ignore_invalid,
            ca_file: self.ca_file.clone(),
        })
    }
}

#[derive(Debug, Args)]
pub struct CertArgs {
    /// The server's address or host name.
    #[arg(short = 'H', long = "host", value_name = "ADDR")]
    pub host: String,
    /// The port.
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    pub port: u16,
    /// Seconds that the check, and each connect, read and write, may take.
    #[arg(short = 't', long = "timeout", value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    /// The name the certificate must match, sent as SNI (default: -H).
    #[arg(long = "name", value_name = "NAME")]
    pub name: Option<String>,
    /// CRITICAL when the certificate expires within this many days (0: only once expired).
    #[arg(long = "days", value_name = "N", default_value_t = 0)]
    pub days: u32,
    /// Do not verify the chain or the name (the dates still count).
    #[arg(long = "ignore-invalid")]
    pub ignore_invalid: bool,
    /// The trusted CA certificates (PEM).
    #[arg(long = "ca-file", value_name = "FILE", default_value = DEFAULT_CA_FILE, env = "CHECK_MONITORING_INFO_CA_FILE")]
    pub ca_file: PathBuf,
}

#[derive(Debug, Args)]
pub struct SmtpArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Send a mail flow token to this address.
    #[arg(long = "to", value_name = "EMAIL")]
    pub to: Option<String>,
    /// The sender (default: monitor-compile@ this machine's host name).
    #[arg(long = "from", value_name = "EMAIL")]
    pub from: Option<String>,
    /// The mail flow token store.
    #[arg(long = "store", value_name = "DIR", default_value = DEFAULT_STORE, env = "CHECK_MONITORING_INFO_STORE")]
    pub store: PathBuf,
    /// The mail flow id the token is recorded for (default: the --to address).
    #[arg(long = "mailflow-id", value_name = "ID")]
    pub mailflow_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct MailboxArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Log in as this user (with --password-file).
    #[arg(long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// The password: the file's first line. The file must not be readable by others.
    #[arg(long = "password-file", value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// The mail flow token store.
    #[arg(long = "store", value_name = "DIR", default_value = DEFAULT_STORE, env = "CHECK_MONITORING_INFO_STORE")]
    pub store: PathBuf,
    /// Consume only the tokens of this mail flow id (default: whichever id holds one).
    #[arg(long = "mailflow-id", value_name = "ID")]
    pub mailflow_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct LdapArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Bind as this DN (with --password-file); anonymous without.
    #[arg(long = "bind-dn", value_name = "DN")]
    pub bind_dn: Option<String>,
    /// The password: the file's first line. The file must not be readable by others.
    #[arg(long = "password-file", value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// The entry to search with base scope (default: the root DSE).
    #[arg(long = "base", value_name = "BASE", default_value = "")]
    pub base: String,
}

#[derive(Debug, Args)]
pub struct MailflowArgs {
    /// The mail flow token store.
    #[arg(long = "store", value_name = "DIR", default_value = DEFAULT_STORE, env = "CHECK_MONITORING_INFO_STORE")]
    pub store: PathBuf,
    /// The mail flow id.
    #[arg(long = "id", value_name = "ID")]
    pub id: String,
    /// CRITICAL when a token was sent longer ago than this.
    #[arg(long = "seconds", value_name = "N")]
    pub seconds: u64,
}

/// `Some(s)` unless it is missing or empty (the translator may pass `''`).
pub fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// A path option, unless it is missing or empty.
pub fn nonempty_path(p: &Option<PathBuf>) -> Option<&PathBuf> {
    p.as_ref().filter(|p| !p.as_os_str().is_empty())
}
