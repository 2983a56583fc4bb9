//! Directive values and how they are made safe for Nagios object files.
//!
//! Every value is checked by [`Value::check`] before it is written, and escaped by
//! [`Value::render`] as it is written:
//! - a newline (or carriage return) in any value is an error, so no value can start a
//!   new directive, close an object (`}`) or define a new one;
//! - `;` starts a comment in Nagios object files, so it is written as `\;`, which Nagios
//!   reads back as `;` (it removes the one backslash before a `;`);
//! - object names refuse Nagios's default `illegal_object_name_chars`
//!   (`` `~!$%^&*|'"<>?,()= ``), which `nagios -v` would reject;
//! - free text refuses `$`, which Nagios would expand as a macro in some directives;
//! - check command arguments escape `!` as `\!` (so a value cannot split arguments) and
//!   `$` as `$$` (Nagios expands macros inside arguments; `$$` is a literal `$`). An
//!   argument may not end in `\`, which would escape the `!` that follows it;
//! - Nagios hands command lines to `/bin/sh`, so every `$ARGn$` in a `command_line` must
//!   stand inside single quotes, and an argument may not contain a single quote: then no
//!   argument can reach the shell as anything but one literal word.
//!
//! A `}` inside a value is harmless: Nagios only ends an object on a line that is `}`
//! alone, and a value is always written after its directive name.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Characters Nagios refuses in object names by default.
pub const ILLEGAL_NAME_CHARS: &str = "`~!$%^&*|'\"<>?,()=";

/// A value that cannot be written safely.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("directive {directive}: {reason} (value {value:?})")]
pub struct ValueError {
    /// The directive whose value was refused.
    pub directive: String,
    /// The refused value (empty when the directive name or an empty list is refused).
    pub value: String,
    /// Why the value was refused.
    pub reason: String,
}

/// A check command reference: a command name and its `!`-separated arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckCommand {
    /// The name of the command to run (a `command_name`).
    pub name: String,
    /// The arguments, as plain text: they are escaped when written (`!` as `\!`, `$` as `$$`).
    pub args: Vec<String>,
}

impl CheckCommand {
    /// A check command with no arguments yet; add them with [`CheckCommand::arg`].
    pub fn new(name: impl Into<String>) -> Self {
        CheckCommand {
            name: name.into(),
            args: Vec::new(),
        }
    }

    /// Append one argument; it is escaped when written, so any text is safe here.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }
}

/// The value of one directive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    /// An object name or reference (`host_name`, `use`, `check_period`, ...).
    Name(String),
    /// A comma-separated list of names (`contact_groups`, `members`, ...).
    Names(Vec<String>),
    /// Free text (`alias`, `notes`, `email`, ...).
    Text(String),
    /// A number or option letters written by code (`max_check_attempts`, `notification_options`).
    Plain(String),
    /// `check_command` / `event_handler`: a command name and escaped arguments.
    Command(CheckCommand),
    /// A `command_line`, written by a translator author: macros (`$ARG1$`) are kept.
    CommandLine(String),
}

fn fail(directive: &str, value: &str, reason: &str) -> ValueError {
    ValueError {
        directive: directive.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn check_line(directive: &str, v: &str) -> Result<(), ValueError> {
    if v.contains(['\n', '\r']) {
        return Err(fail(directive, v, "contains a newline"));
    }
    if v.contains('\0') {
        return Err(fail(directive, v, "contains a NUL byte"));
    }
    // In every position: the end of a value may be the end of its line.
    if v.ends_with('\\') {
        return Err(fail(
            directive,
            v,
            "ends with '\\', which Nagios reads as joining the next line",
        ));
    }
    Ok(())
}

/// Check an object name: non-empty, one line, no illegal characters, no outer spaces.
pub fn check_name(directive: &str, v: &str) -> Result<(), ValueError> {
    check_line(directive, v)?;
    if v.trim().is_empty() {
        return Err(fail(directive, v, "is empty"));
    }
    if v.trim() != v {
        return Err(fail(directive, v, "has leading or trailing white space"));
    }
    if let Some(c) = v.chars().find(|c| ILLEGAL_NAME_CHARS.contains(*c)) {
        return Err(fail(
            directive,
            v,
            &format!("contains '{c}', which Nagios does not allow in names"),
        ));
    }
    Ok(())
}

/// Every `$ARGn$` of a command line must be inside single quotes, so the shell takes
/// the argument's value literally.
fn check_args_quoted(directive: &str, line: &str) -> Result<(), ValueError> {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Single,
        Double,
    }
    let b = line.as_bytes();
    let mut q = Quote::None;
    let mut i = 0;
    while i < b.len() {
        match (&q, b[i]) {
            (Quote::None | Quote::Double, b'\\') => i += 1,
            (Quote::None, b'\'') => q = Quote::Single,
            (Quote::Single, b'\'') => q = Quote::None,
            (Quote::None, b'"') => q = Quote::Double,
            (Quote::Double, b'"') => q = Quote::None,
            (Quote::None | Quote::Double, b'$') if b[i + 1..].starts_with(b"ARG") => {
                return Err(fail(directive, line, "$ARGn$ must be inside single quotes ('$ARG1$')"));
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

impl Value {
    /// Check that the value can be written safely.
    pub fn check(&self, directive: &str) -> Result<(), ValueError> {
        match self {
            Value::Name(n) => check_name(directive, n),
            Value::Names(ns) => {
                if ns.is_empty() {
                    return Err(fail(directive, "", "is an empty list"));
                }
                ns.iter().try_for_each(|n| check_name(directive, n))
            }
            Value::Text(t) => {
                check_line(directive, t)?;
                if t.contains('$') {
                    return Err(fail(directive, t, "contains '$', which Nagios would expand as a macro"));
                }
                Ok(())
            }
            Value::Plain(p) => {
                check_line(directive, p)?;
                if p.is_empty()
                    || !p
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ',' | '-' | '_' | ':' | ' '))
                {
                    return Err(fail(directive, p, "is not a plain number or option list"));
                }
                Ok(())
            }
            Value::Command(c) => {
                check_name(directive, &c.name)?;
                for a in &c.args {
                    check_line(directive, a)?;
                    if a.contains('\'') {
                        return Err(fail(directive, a, "an argument contains a single quote"));
                    }
                }
                Ok(())
            }
            Value::CommandLine(l) => {
                check_line(directive, l)?;
                if l.trim().is_empty() {
                    return Err(fail(directive, l, "is empty"));
                }
                check_args_quoted(directive, l)
            }
        }
    }

    /// Append the value as written in the object file, without intermediate strings.
    pub fn render_into(&self, out: &mut String) {
        fn text(out: &mut String, s: &str) {
            for part in s.split(';').enumerate() {
                if part.0 > 0 {
                    out.push_str("\\;");
                }
                out.push_str(part.1);
            }
        }
        match self {
            Value::Name(n) | Value::Text(n) | Value::Plain(n) | Value::CommandLine(n) => text(out, n),
            Value::Names(ns) => {
                for (i, n) in ns.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    text(out, n);
                }
            }
            Value::Command(c) => {
                text(out, &c.name);
                for a in &c.args {
                    out.push('!');
                    for ch in a.chars() {
                        match ch {
                            '!' => out.push_str("\\!"),
                            '$' => out.push_str("$$"),
                            ';' => out.push_str("\\;"),
                            ch => out.push(ch),
                        }
                    }
                }
            }
        }
    }

    /// The value as written in the object file (after [`Value::check`] passed).
    pub fn render(&self) -> String {
        let raw = match self {
            Value::Name(n) | Value::Text(n) | Value::Plain(n) | Value::CommandLine(n) => n.clone(),
            Value::Names(ns) => ns.join(","),
            Value::Command(c) => {
                let mut s = c.name.clone();
                for a in &c.args {
                    s.push('!');
                    for ch in a.chars() {
                        match ch {
                            '!' => s.push_str("\\!"),
                            '$' => s.push_str("$$"),
                            ch => s.push(ch),
                        }
                    }
                }
                s
            }
        };
        raw.replace(';', "\\;")
    }

    /// The name(s) this value refers to, for reference checks.
    pub fn names(&self) -> Vec<&str> {
        match self {
            Value::Name(n) => vec![n.as_str()],
            Value::Names(ns) => ns.iter().map(String::as_str).collect(),
            Value::Command(c) => vec![c.name.as_str()],
            _ => Vec::new(),
        }
    }

    /// The value as a single string, when it is one (names, text, plain).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Name(s) | Value::Text(s) | Value::Plain(s) | Value::CommandLine(s) => Some(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailing_backslash_is_refused_in_every_position() {
        for v in [
            Value::Text("kdc\\".into()),
            Value::Name("example.org\\".into()),
            Value::Names(vec!["a".into(), "kdc\\".into()]),
            Value::Plain("1\\".into()),
            Value::CommandLine("/bin/x '$ARG1$' \\".into()),
            Value::Command(CheckCommand::new("c").arg("a").arg("last\\")),
            Value::Command(CheckCommand::new("c").arg("first\\").arg("b")),
        ] {
            let e = v.check("d").unwrap_err();
            assert!(
                e.to_string().contains("joining the next line") || e.to_string().contains("plain"),
                "{v:?}: {e}"
            );
        }
        assert!(Value::Text("a\\b".into()).check("notes").is_ok());
    }

    #[test]
    fn hostile_values_are_refused_or_escaped() {
        assert!(Value::Text("x\n}\ndefine command{".into()).check("notes").is_err());
        assert!(Value::Name("a$b".into()).check("host_name").is_err());
        assert!(Value::Name("".into()).check("host_name").is_err());
        assert!(Value::Text("cost $5".into()).check("notes").is_err());
        assert_eq!(Value::Text("a;b".into()).render(), "a\\;b");
        let c = Value::Command(CheckCommand::new("check_x").arg("a!b").arg("$USER1$;x"));
        assert!(c.check("check_command").is_ok());
        assert_eq!(c.render(), "check_x!a\\!b!$$USER1$$\\;x");
        let mut direct = String::new();
        c.render_into(&mut direct);
        assert_eq!(direct, c.render(), "render_into and render agree");
        let names = Value::Names(vec!["a;b".into(), "c".into()]);
        let mut direct = String::new();
        names.render_into(&mut direct);
        assert_eq!(direct, names.render());
        assert!(
            Value::Command(CheckCommand::new("c").arg("it's"))
                .check("check_command")
                .is_err()
        );
        assert!(
            Value::CommandLine("$USER1$/x -H $HOSTADDRESS$ -p '$ARG1$'".into())
                .check("command_line")
                .is_ok()
        );
        assert!(
            Value::CommandLine("$USER1$/x -p $ARG1$".into())
                .check("command_line")
                .is_err()
        );
        assert!(
            Value::CommandLine("$USER1$/x -e \"$ARG1$\"".into())
                .check("command_line")
                .is_err()
        );
        assert!(
            Value::CommandLine("x -e \"it's\" '$ARG1$'".into())
                .check("command_line")
                .is_ok()
        );
        let bad = Value::Command(CheckCommand::new("check_x").arg("a\\").arg("b"));
        assert!(bad.check("check_command").is_err());
        assert!(
            Value::Command(CheckCommand::new("c").arg("x\ny"))
                .check("check_command")
                .is_err()
        );
    }
}
