//! Nagios command lines as Icinga 2 commands.
//!
//! Nagios hands a command line to `/bin/sh` after replacing its macros. Icinga 2 runs a
//! command given as an array directly, each element one argument, with its macros
//! resolved inside that element. So:
//! - a command line of plain words (quoted or not) becomes an array, one element per
//!   word, and no macro value can ever split or join words;
//! - a command line that needs a shell (a pipe, a redirection, `;`, `&&`, ...) becomes
//!   `[ "/bin/sh", "-c", SCRIPT, "monitor-compile", ARG1, ARG2, ... ]`, where SCRIPT is the
//!   line with each macro replaced by a positional parameter (`"$1"`), and each ARG is the
//!   macro: a value reaches the shell as data, never as code.
//!
//! `$USER1$` is Icinga's `PluginDir`; `$USERn$` (n > 1) is the constant
//! `MonitorCompileUsern`, which the site defines in its `constants.conf`. `$ARGn$` is the
//! custom variable `mc_argN` (event handlers: `mc_event_argN`). Every other macro maps
//! by [`macro_of`]; one that has no Icinga 2 equivalent is an error for the command.

use crate::dsl::{Expr, Piece};

/// What a command is used as: the role decides the `$ARGn$` variables and the type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// A host or service check: `CheckCommand`.
    Check,
    /// An event handler: `EventCommand`.
    Event,
    /// A contact's notification command: `NotificationCommand`.
    Notification,
}

impl Role {
    /// The Icinga 2 type.
    pub fn kind(self) -> &'static str {
        match self {
            Role::Check => "CheckCommand",
            Role::Event => "EventCommand",
            Role::Notification => "NotificationCommand",
        }
    }

    /// The custom variable that holds `$ARGn$`.
    pub fn arg_var(self, n: usize) -> String {
        match self {
            Role::Event => format!("mc_event_arg{n}"),
            _ => format!("mc_arg{n}"),
        }
    }
}

/// A piece of a command line word.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bit {
    Lit(String),
    Macro(String),
}

/// The Icinga 2 macro for a Nagios macro.
pub fn macro_of(name: &str, role: Role) -> Result<String, String> {
    if let Some(n) = name.strip_prefix("ARG").and_then(|n| n.parse::<usize>().ok()) {
        if role == Role::Notification {
            return Err(format!("${name}$: notification commands take no arguments in Icinga 2"));
        }
        return Ok(role.arg_var(n));
    }
    if let Some(n) = name
        .strip_prefix("CONTACTADDRESS")
        .and_then(|n| n.parse::<usize>().ok())
    {
        return Ok(format!("user.vars.address{n}"));
    }
    let m = match name {
        "HOSTADDRESS" => "address",
        "HOSTNAME" => "host.name",
        "HOSTALIAS" | "HOSTDISPLAYNAME" => "host.display_name",
        "HOSTSTATE" => "host.state",
        "HOSTSTATEID" => "host.state_id",
        "HOSTSTATETYPE" => "host.state_type",
        "HOSTATTEMPT" => "host.check_attempt",
        "HOSTOUTPUT" | "LONGHOSTOUTPUT" => "host.output",
        "HOSTNOTES" => "host.notes",
        "SERVICEDESC" => "service.name",
        "SERVICEDISPLAYNAME" => "service.display_name",
        "SERVICESTATE" => "service.state",
        "SERVICESTATEID" => "service.state_id",
        "SERVICESTATETYPE" => "service.state_type",
        "SERVICEATTEMPT" => "service.check_attempt",
        "SERVICEOUTPUT" | "LONGSERVICEOUTPUT" => "service.output",
        "SERVICENOTES" => "service.notes",
        "NOTIFICATIONTYPE" => "notification.type",
        "NOTIFICATIONAUTHOR" => "notification.author",
        "NOTIFICATIONCOMMENT" => "notification.comment",
        "LONGDATETIME" => "icinga.long_date_time",
        "SHORTDATETIME" => "icinga.short_date_time",
        "DATE" => "icinga.date",
        "TIME" => "icinga.time",
        "TIMET" => "icinga.timet",
        "CONTACTNAME" => "user.name",
        "CONTACTALIAS" => "user.display_name",
        "CONTACTEMAIL" => "user.email",
        "CONTACTPAGER" => "user.pager",
        _ => return Err(format!("${name}$ has no Icinga 2 equivalent")),
    };
    Ok(m.to_string())
}

/// The line's words, each a run of bits; `None` when the line needs a shell.
fn words(line: &str) -> Option<Vec<Vec<Bit>>> {
    let mut words: Vec<Vec<Bit>> = Vec::new();
    let mut word: Option<Vec<Bit>> = None;
    let mut simple = true;
    let mut quote: Option<char> = None;
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let push_lit = |word: &mut Option<Vec<Bit>>, c: char| {
        let w = word.get_or_insert_with(Vec::new);
        match w.last_mut() {
            Some(Bit::Lit(s)) => s.push(c),
            _ => w.push(Bit::Lit(c.to_string())),
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '$' {
            let end = chars[i + 1..].iter().position(|&c| c == '$').map(|p| i + 1 + p);
            match end {
                Some(e) if e == i + 1 => {
                    push_lit(&mut word, '$');
                    i += 2;
                }
                Some(e) => {
                    let name: String = chars[i + 1..e].iter().collect();
                    word.get_or_insert_with(Vec::new).push(Bit::Macro(name));
                    i = e + 1;
                }
                None => {
                    simple = false;
                    push_lit(&mut word, '$');
                    i += 1;
                }
            }
            continue;
        }
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(Vec::new);
            }
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\' | '`') => {
                simple = false;
                push_lit(&mut word, c);
            }
            (Some(_), c) => push_lit(&mut word, c),
            (None, ' ' | '\t') => words.extend(word.take()),
            (None, c) if "|&;<>()`\\*?[]{}~#=!".contains(c) => {
                simple = false;
                push_lit(&mut word, c);
            }
            (None, c) => push_lit(&mut word, c),
        }
        i += 1;
    }
    if quote.is_some() {
        simple = false;
    }
    words.extend(word.take());
    simple.then_some(words)
}

/// A macro as an expression piece: `$USER1$` is `PluginDir`.
enum Mapped {
    Piece(Piece),
    Const(String),
}

fn map(name: &str, role: Role) -> Result<Mapped, String> {
    if let Some(n) = name.strip_prefix("USER").and_then(|n| n.parse::<usize>().ok()) {
        return Ok(Mapped::Const(if n == 1 {
            "PluginDir".into()
        } else {
            format!("MonitorCompileUser{n}")
        }));
    }
    Ok(Mapped::Piece(Piece::Macro(macro_of(name, role)?)))
}

fn word_expr(bits: &[Bit], role: Role) -> Result<Expr, String> {
    let mut expr: Option<Expr> = None;
    let mut pieces: Vec<Piece> = Vec::new();
    let flush = |expr: &mut Option<Expr>, pieces: &mut Vec<Piece>| {
        if pieces.is_empty() {
            return;
        }
        let s = Expr::Str(std::mem::take(pieces));
        *expr = Some(match expr.take() {
            None => s,
            Some(e) => Expr::Concat(Box::new(e), Box::new(s)),
        });
    };
    for b in bits {
        match b {
            Bit::Lit(s) => pieces.push(Piece::Text(s.clone())),
            Bit::Macro(m) => match map(m, role)? {
                Mapped::Piece(p) => pieces.push(p),
                Mapped::Const(c) => {
                    flush(&mut expr, &mut pieces);
                    let c = Expr::Const(c);
                    expr = Some(match expr.take() {
                        None => c,
                        Some(e) => Expr::Concat(Box::new(e), Box::new(c)),
                    });
                }
            },
        }
    }
    flush(&mut expr, &mut pieces);
    Ok(expr.unwrap_or_else(|| Expr::str("")))
}

/// The `command` attribute for a Nagios command line, and the `$ARGn$` it uses.
pub fn command_expr(line: &str, role: Role) -> Result<Expr, String> {
    if let Some(words) = words(line) {
        return Ok(Expr::Array(
            words.iter().map(|w| word_expr(w, role)).collect::<Result<_, _>>()?,
        ));
    }
    // The shell form: the script is the line with each macro a positional parameter.
    let mut script = String::new();
    let mut args = vec![Expr::str("/bin/sh"), Expr::str("-c")];
    let mut params: Vec<Expr> = Vec::new();
    let mut quote: Option<char> = None;
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut escaped = false;
    while i < chars.len() {
        let c = chars[i];
        if escaped {
            script.push(c);
            escaped = false;
            i += 1;
            continue;
        }
        if c == '$' {
            if let Some(e) = chars[i + 1..].iter().position(|&c| c == '$').map(|p| i + 1 + p) {
                if e == i + 1 {
                    // `$$`: a literal dollar.
                    script.push_str(if quote == Some('\'') { "$" } else { "\\$" });
                } else {
                    let name: String = chars[i + 1..e].iter().collect();
                    params.push(word_expr(&[Bit::Macro(name)], role)?);
                    let n = params.len();
                    match quote {
                        Some('\'') => script.push_str(&format!("'\"${{{n}}}\"'")),
                        Some(_) => script.push_str(&format!("${{{n}}}")),
                        None => script.push_str(&format!("\"${{{n}}}\"")),
                    }
                }
                i = e + 1;
                continue;
            }
            script.push_str("\\$");
            i += 1;
            continue;
        }
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => escaped = true,
            _ => {}
        }
        script.push(c);
        i += 1;
    }
    args.push(Expr::str(script));
    args.push(Expr::str("monitor-compile"));
    args.extend(params);
    Ok(Expr::Array(args))
}

/// The hosts (and services) whose states a `check_cluster` command line reads through
/// on-demand macros (`$SERVICESTATEID:host:service$`, `$HOSTSTATEID:host$`), with the line's
/// other words: the cluster check's mapping (see the crate docs).
pub struct ClusterLine {
    /// `true` for `--service` clusters.
    pub services: bool,
    /// The members: `[host]` or `[host, service]`.
    pub members: Vec<Vec<String>>,
}

/// The cluster members of a line, if it is a `check_cluster` line whose data is all
/// on-demand macros.
pub fn cluster_line(line: &str) -> Option<ClusterLine> {
    let words = words(line)?;
    let program = match words.first()?.as_slice() {
        [Bit::Macro(u), Bit::Lit(p)] if u == "USER1" => p.as_str(),
        _ => return None,
    };
    if program != "/check_cluster" {
        return None;
    }
    let mut members = Vec::new();
    let mut services = None;
    for w in &words {
        for b in w {
            if let Bit::Macro(m) = b {
                let mut parts = m.split(':');
                match (parts.next(), parts.next(), parts.next(), parts.next()) {
                    (Some("SERVICESTATEID"), Some(h), Some(s), None) => {
                        services.get_or_insert(true);
                        members.push(vec![h.to_string(), s.to_string()]);
                    }
                    (Some("HOSTSTATEID"), Some(h), None, None) => {
                        services.get_or_insert(false);
                        members.push(vec![h.to_string()]);
                    }
                    (Some("USER1"), None, None, None) => {}
                    _ => return None,
                }
            }
        }
    }
    let services = services?;
    if members.iter().any(|m| (m.len() == 2) != services) {
        return None;
    }
    Some(ClusterLine { services, members })
}

/// The `command` of a cluster check: the line with its on-demand macros replaced by the
/// one macro `$mc_cluster_states$`, which the command's lambda fills.
pub fn cluster_command_expr(line: &str) -> Option<Expr> {
    let words = words(line)?;
    let mut out = Vec::new();
    for w in &words {
        let on_demand = w.iter().any(|b| matches!(b, Bit::Macro(m) if m.contains(':')));
        if on_demand {
            out.push(Expr::Str(vec![Piece::Macro("mc_cluster_states".into())]));
        } else {
            out.push(word_expr(w, Role::Check).ok()?);
        }
    }
    Some(Expr::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsl::write_expr;

    fn text(line: &str, role: Role) -> String {
        let mut s = String::new();
        write_expr("t", &command_expr(line, role).unwrap(), 0, &mut s).unwrap();
        s
    }

    #[test]
    fn plain_words_become_an_array() {
        assert_eq!(
            text("$USER1$/check_tcp -H '$HOSTADDRESS$' -p '$ARG1$' -e 'a b'", Role::Check),
            r#"[ PluginDir + "/check_tcp", "-H", "$address$", "-p", "$mc_arg1$", "-e", "a b" ]"#
        );
        assert_eq!(
            text("/x/restart httpd '$SERVICESTATE$' '$ARG2$'", Role::Event),
            r#"[ "/x/restart", "httpd", "$service.state$", "$mc_event_arg2$" ]"#
        );
        assert_eq!(
            text("$USER1$/check_jabber -e \"<?xml version='1.0'?>\"", Role::Check),
            r#"[ PluginDir + "/check_jabber", "-e", "<?xml version='1.0'?>" ]"#
        );
    }

    #[test]
    fn a_pipeline_runs_in_a_shell_with_macros_as_parameters() {
        let t = text(
            "/usr/bin/printf '%b' 'Host: $HOSTNAME$\\n' | /usr/bin/mail -s \"$NOTIFICATIONTYPE$ x\" '$CONTACTEMAIL$'",
            Role::Notification,
        );
        assert_eq!(
            t,
            // The script's own `$` is `$$`: Icinga 2 resolves macros in every element.
            r#"[ "/bin/sh", "-c", "/usr/bin/printf '%b' 'Host: '\"$${1}\"'\\n' | /usr/bin/mail -s \"$${2} x\" ''\"$${3}\"''", "monitor-compile", "$host.name$", "$notification.type$", "$user.email$" ]"#
        );
        assert!(command_expr("x '$NOPE$'", Role::Check).is_err());
        assert!(command_expr("x '$ARG1$'", Role::Notification).is_err());
    }

    #[test]
    fn cluster_lines_are_recognised() {
        let l = "$USER1$/check_cluster --service -l 'k' -w 0 -c 1 -d '$SERVICESTATEID:a.org:Kerberos KDC$,$SERVICESTATEID:b.org:Kerberos KDC$'";
        let c = cluster_line(l).unwrap();
        assert!(c.services);
        assert_eq!(c.members, [["a.org", "Kerberos KDC"], ["b.org", "Kerberos KDC"]]);
        let mut s = String::new();
        write_expr("t", &cluster_command_expr(l).unwrap(), 0, &mut s).unwrap();
        assert_eq!(
            s,
            r#"[ PluginDir + "/check_cluster", "--service", "-l", "k", "-w", "0", "-c", "1", "-d", "$mc_cluster_states$" ]"#
        );
        assert!(cluster_line("$USER1$/check_tcp -H '$HOSTADDRESS$'").is_none());
    }
}
