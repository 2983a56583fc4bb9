//! How each declaration is checked: the commands (the real monitoring-plugins, and our
//! own `check_monitoring_info` where no plugin does the job) and the services that use
//! them. docs/monitoring-info.md has the same mapping as a table.
//!
//! Every SSL service is two services: the protocol over TLS (`NAME`), whose plugin does
//! not judge the certificate (except a login, which sends its password only to a server
//! whose certificate verifies, unless `ignore_invalid_ssl`), and `NAME certificate`, which checks that it has not
//! expired (nor will within `expire_before_days`), that it matches `ssl_hostname` (the
//! host's FQDN by default), and that a trusted CA signed it. With `ignore_invalid_ssl`
//! the certificate service checks the expiry only, and exists only when
//! `expire_before_days` is set.

use monitor_sdk::nagios::{Bundle, CheckCommand, Command};

use crate::declare::{Declaration, Type};

/// Our own plugin, installed with monitor-compile beside the monitoring-plugins.
pub const PLUGIN: &str = "$USER1$/check_monitoring_info";

/// `check_http`'s `-e` when 3xx answers count as success (`accept_redirection`, the default).
pub const EXPECT_2XX_3XX: &str = "HTTP/1.0 2,HTTP/1.1 2,HTTP/1.0 3,HTTP/1.1 3";
/// `check_http`'s `-e` when only 2xx answers count.
pub const EXPECT_2XX: &str = "HTTP/1.0 2,HTTP/1.1 2";

/// The suffix of the certificate service's description.
pub const CERTIFICATE_SUFFIX: &str = " certificate";

/// Every command this translator's services use: (name, command line).
pub fn commands() -> Vec<(&'static str, String)> {
    let p = PLUGIN;
    let u = "$USER1$";
    let h = "-H '$HOSTADDRESS$'";
    vec![
        (
            "mc-info-http",
            format!("{u}/check_http -I '$HOSTADDRESS$' -H '$ARG1$' -p '$ARG2$' -u '$ARG3$' -e '$ARG4$'"),
        ),
        (
            "mc-info-https",
            format!("{u}/check_http -I '$HOSTADDRESS$' -H '$ARG1$' -p '$ARG2$' -u '$ARG3$' -e '$ARG4$' -S --sni"),
        ),
        (
            "mc-info-cert",
            format!("{p} cert {h} -p '$ARG1$' --name '$ARG2$' --days '$ARG3$'"),
        ),
        (
            "mc-info-cert-expiry",
            format!("{p} cert {h} -p '$ARG1$' --name '$ARG2$' --days '$ARG3$' --ignore-invalid"),
        ),
        ("mc-info-tcp", format!("{u}/check_tcp {h} -p '$ARG1$'")),
        (
            "mc-info-tcp-ssl",
            format!("{u}/check_tcp {h} -p '$ARG1$' -S --sni '$ARG2$'"),
        ),
        (
            "mc-info-udp",
            format!("{u}/check_udp {h} -p '$ARG1$' -s 'monitor-compile' -e '' -M ok"),
        ),
        ("mc-info-ssh", format!("{u}/check_ssh {h} -p '$ARG1$'")),
        ("mc-info-smtp", format!("{u}/check_smtp {h} -p '$ARG1$'")),
        (
            "mc-info-smtp-ssl",
            format!("{u}/check_ssmtp {h} -p '$ARG1$' --sni '$ARG2$'"),
        ),
        (
            "mc-info-smtp-send",
            format!("{p} smtp {h} -p '$ARG1$' --to '$ARG2$' --mailflow-id '$ARG3$'"),
        ),
        (
            "mc-info-smtp-send-ssl",
            format!(
                "{p} smtp {h} -p '$ARG1$' --to '$ARG2$' --mailflow-id '$ARG3$' --ssl --ignore-invalid --name '$ARG4$'"
            ),
        ),
        ("mc-info-imap", format!("{u}/check_imap {h} -p '$ARG1$'")),
        (
            "mc-info-imap-ssl",
            format!("{u}/check_simap {h} -p '$ARG1$' --sni '$ARG2$'"),
        ),
        (
            "mc-info-imap-login",
            format!("{p} imap {h} -p '$ARG1$' --user '$ARG2$' --password-file '$ARG3$' --mailflow-id '$ARG4$'"),
        ),
        (
            "mc-info-imap-login-ssl",
            format!(
                "{p} imap {h} -p '$ARG1$' --user '$ARG2$' --password-file '$ARG3$' --mailflow-id '$ARG4$' --ssl --name '$ARG5$'"
            ),
        ),
        (
            "mc-info-imap-login-ssl-any",
            format!(
                "{p} imap {h} -p '$ARG1$' --user '$ARG2$' --password-file '$ARG3$' --mailflow-id '$ARG4$' --ssl --ignore-invalid --name '$ARG5$'"
            ),
        ),
        ("mc-info-pop3", format!("{u}/check_pop {h} -p '$ARG1$'")),
        (
            "mc-info-pop3-ssl",
            format!("{u}/check_spop {h} -p '$ARG1$' --sni '$ARG2$'"),
        ),
        (
            "mc-info-pop3-login",
            format!("{p} pop3 {h} -p '$ARG1$' --user '$ARG2$' --password-file '$ARG3$' --mailflow-id '$ARG4$'"),
        ),
        (
            "mc-info-pop3-login-ssl",
            format!(
                "{p} pop3 {h} -p '$ARG1$' --user '$ARG2$' --password-file '$ARG3$' --mailflow-id '$ARG4$' --ssl --name '$ARG5$'"
            ),
        ),
        (
            "mc-info-pop3-login-ssl-any",
            format!(
                "{p} pop3 {h} -p '$ARG1$' --user '$ARG2$' --password-file '$ARG3$' --mailflow-id '$ARG4$' --ssl --ignore-invalid --name '$ARG5$'"
            ),
        ),
        (
            "mc-info-ldap",
            format!("/usr/bin/env LDAPTLS_REQCERT=never {u}/check_ldap {h} -p '$ARG1$' -b '$ARG2$' -3"),
        ),
        (
            "mc-info-ldap-ssl",
            format!("/usr/bin/env LDAPTLS_REQCERT=never {u}/check_ldap {h} -p '$ARG1$' -b '$ARG2$' -3 -S"),
        ),
        (
            "mc-info-ldap-bind",
            format!("{p} ldap {h} -p '$ARG1$' --base '$ARG2$' --bind-dn '$ARG3$' --password-file '$ARG4$'"),
        ),
        (
            "mc-info-ldap-bind-ssl",
            format!(
                "{p} ldap {h} -p '$ARG1$' --base '$ARG2$' --bind-dn '$ARG3$' --password-file '$ARG4$' --ssl --name '$ARG5$'"
            ),
        ),
        (
            "mc-info-ldap-bind-ssl-any",
            format!(
                "{p} ldap {h} -p '$ARG1$' --base '$ARG2$' --bind-dn '$ARG3$' --password-file '$ARG4$' --ssl --ignore-invalid --name '$ARG5$'"
            ),
        ),
        (
            "mc-info-mailflow",
            format!("{p} mailflow --id '$ARG1$' --seconds '$ARG2$'"),
        ),
    ]
}

/// The commands, as objects for `start_pass`.
pub fn command_bundle() -> Bundle {
    let mut b = Bundle::new();
    for (name, line) in commands() {
        b.push(Command::new(name, line));
    }
    b
}

fn cmd(name: &str, args: &[&str]) -> CheckCommand {
    args.iter().fold(CheckCommand::new(name), |c, a| c.arg(*a))
}

/// The check command of the declaration's main service.
pub fn check_command(d: &Declaration) -> CheckCommand {
    let port = d.port.map(|p| p.to_string()).unwrap_or_default();
    let port = port.as_str();
    let tls = d.tls.as_ref();
    let name = tls.map(|t| t.name.as_str()).unwrap_or_default();
    let id = d.mailflow_id.as_deref().unwrap_or_default();
    let login = d.login.as_ref();
    let (user, pwfile) = login
        .map(|l| (l.username.as_str(), l.password_file.as_str()))
        .unwrap_or_default();
    let ssl = tls.is_some();
    // A login sends a password: over TLS, only to a server whose certificate verifies,
    // unless `ignore_invalid_ssl` says otherwise.
    let any = if tls.is_some_and(|t| t.ignore_invalid) {
        "-any"
    } else {
        ""
    };
    match d.kind {
        Type::Http => {
            let expect = if d.accept_redirection {
                EXPECT_2XX_3XX
            } else {
                EXPECT_2XX
            };
            let c = if ssl { "mc-info-https" } else { "mc-info-http" };
            cmd(c, &[&d.hostname, port, &d.uri, expect])
        }
        Type::Tcp if ssl => cmd("mc-info-tcp-ssl", &[port, name]),
        Type::Tcp => cmd("mc-info-tcp", &[port]),
        Type::Udp => cmd("mc-info-udp", &[port]),
        Type::Ssh => cmd("mc-info-ssh", &[port]),
        Type::Smtp => match (&d.email, ssl) {
            (Some(to), false) => cmd("mc-info-smtp-send", &[port, to, d.mailflow_id.as_deref().unwrap_or(to)]),
            (Some(to), true) => cmd(
                "mc-info-smtp-send-ssl",
                &[port, to, d.mailflow_id.as_deref().unwrap_or(to), name],
            ),
            (None, false) => cmd("mc-info-smtp", &[port]),
            (None, true) => cmd("mc-info-smtp-ssl", &[port, name]),
        },
        Type::Imap | Type::Pop3 => {
            let base = if d.kind == Type::Imap {
                "mc-info-imap"
            } else {
                "mc-info-pop3"
            };
            match (login, ssl) {
                (Some(_), false) => cmd(&format!("{base}-login"), &[port, user, pwfile, id]),
                (Some(_), true) => cmd(&format!("{base}-login-ssl{any}"), &[port, user, pwfile, id, name]),
                (None, false) => cmd(base, &[port]),
                (None, true) => cmd(&format!("{base}-ssl"), &[port, name]),
            }
        }
        Type::Ldap => match (login, ssl) {
            (Some(_), false) => cmd("mc-info-ldap-bind", &[port, &d.base, user, pwfile]),
            (Some(_), true) => cmd(
                &format!("mc-info-ldap-bind-ssl{any}"),
                &[port, &d.base, user, pwfile, name],
            ),
            (None, false) => cmd("mc-info-ldap", &[port, &d.base]),
            (None, true) => cmd("mc-info-ldap-ssl", &[port, &d.base]),
        },
        Type::Mailflow => {
            let seconds = d.seconds.map(|s| s.to_string()).unwrap_or_default();
            cmd("mc-info-mailflow", &[id, &seconds])
        }
    }
}

/// The check command of the certificate service, if the declaration has one.
pub fn certificate_command(d: &Declaration) -> Option<CheckCommand> {
    let tls = d.tls.as_ref()?;
    let port = d.port?.to_string();
    let days = tls.expire_before_days.unwrap_or(0).to_string();
    if tls.ignore_invalid {
        tls.expire_before_days?;
        Some(cmd("mc-info-cert-expiry", &[&port, &tls.name, &days]))
    } else {
        Some(cmd("mc-info-cert", &[&port, &tls.name, &days]))
    }
}

/// Replace `$HOSTADDRESS$` and `$ARGn$` in `line` as Nagios would for `check` on a host
/// at `address` (`$USER1$` is left): for tests that run the generated command lines.
pub fn expand(line: &str, check: &CheckCommand, address: &str) -> String {
    let mut out = line.replace("$HOSTADDRESS$", address);
    for (i, a) in check.args.iter().enumerate().rev() {
        out = out.replace(&format!("$ARG{}$", i + 1), a);
    }
    out
}
