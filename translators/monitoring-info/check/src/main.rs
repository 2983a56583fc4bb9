//! `check_monitoring_info`: the Nagios plugin behind the checks of the monitoring-info
//! translator that the stock monitoring-plugins cannot do (certificate judgement with
//! SNI, mail flow through SMTP and a mailbox, IMAP/POP3 logins from a password file, an
//! LDAP bind from a password file).
//!
//! Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad arguments, unreadable files,
//! an unusable store). One line of output. Every network step is bounded by `-t`, and a
//! watchdog ends the whole check with CRITICAL when it has not finished by then. A panic
//! is reported as UNKNOWN, never as a Rust backtrace.

mod cert;
mod cli;
mod imap;
mod ldap;
mod mailbox;
mod mailflow;
mod nagios;
mod net;
mod password;
mod pop3;
mod smtp;
mod store;
mod tls;

use std::time::Duration;

use clap::Parser;
use clap::error::ErrorKind;

use cli::{Cli, Command};
use nagios::{Outcome, finish};

/// How long a `mailflow` check (no network) may take.
const MAILFLOW_TIMEOUT: Duration = Duration::from_secs(60);

/// The first word of the output for a subcommand.
fn prefix_of(sub: &str) -> Option<&'static str> {
    Some(match sub {
        "cert" => "CERT",
        "smtp" => "SMTP",
        "imap" => "IMAP",
        "pop3" => "POP3",
        "ldap" => "LDAP",
        "mailflow" => "MAILFLOW",
        _ => return None,
    })
}

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let prefix = args
        .get(1)
        .and_then(|a| a.to_str())
        .and_then(prefix_of)
        .unwrap_or("MONITORING-INFO");
    nagios::set_prefix(prefix);
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_string());
        finish(&Outcome::unknown(format!("internal error: {msg}")));
    }));
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                let _ = e.print();
                std::process::exit(nagios::Status::Unknown.code());
            }
            _ => {
                // clap's first paragraph, on one line ("the following required arguments
                // were not provided: --host <ADDR>"), without its tips and usage.
                let text = e.render().to_string();
                let first: Vec<&str> = text.lines().map(str::trim).take_while(|l| !l.is_empty()).collect();
                let first = first.join(" ");
                let first = first.strip_prefix("error: ").unwrap_or(&first);
                finish(&Outcome::unknown(format!("bad arguments: {first} (see --help)")));
            }
        },
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let timeout = match &cli.command {
        Command::Cert(a) => Duration::from_secs(a.timeout),
        Command::Smtp(a) => Duration::from_secs(a.conn.timeout),
        Command::Imap(a) | Command::Pop3(a) => Duration::from_secs(a.conn.timeout),
        Command::Ldap(a) => Duration::from_secs(a.conn.timeout),
        Command::Mailflow(_) => MAILFLOW_TIMEOUT,
    };
    std::thread::spawn(move || {
        std::thread::sleep(timeout);
        finish(&Outcome::critical(format!(
            "no result within {} s (timeout)",
            timeout.as_secs()
        )));
    });
    let result = match &cli.command {
        Command::Cert(a) => cert::run(a),
        Command::Smtp(a) => smtp::run(a),
        Command::Imap(a) => imap::run(a),
        Command::Pop3(a) => pop3::run(a),
        Command::Ldap(a) => ldap::run(a),
        Command::Mailflow(a) => mailflow::run(a),
    };
    finish(&result.unwrap_or_else(|o| o));
}
