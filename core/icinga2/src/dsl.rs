//! Icinga 2 DSL values that are safe by construction.
//!
//! Every value the writer takes from the Nagios configuration (and so from a profile or
//! the users source) reaches the Icinga 2 files only as an [`Expr::Str`]: a double-quoted
//! string in which `\` is written `\\`, `"` is written `\"`, a tab `\t`, and `$` is written
//! `$$` (Icinga 2 resolves `$name$` macros at run time in command lines and custom
//! variables, and custom variables recursively: measured with 2.13, a variable holding
//! `$host.name$` reaches a command as the host's name, and one holding `a$$b` as `a$b`).
//! Object names refuse `$` and `!`. Any other control character is refused. Such a
//! string cannot end early, so no value can start an expression, an attribute or an
//! object. Macros are written only by the writer itself ([`Piece::Macro`]), with names it
//! checked, and code only from the writer's own constants ([`Expr::Code`]).

use std::fmt::Write;

use thiserror::Error;

/// A value that cannot be written as an Icinga 2 string.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{what}: {why} (value {value:?})")]
pub struct DslError {
    /// What the value is for (attribute or object).
    pub what: String,
    /// The refused value.
    pub value: String,
    /// Why.
    pub why: &'static str,
}

/// One piece of a string: literal text, or a run-time macro the writer chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text, escaped when written.
    Text(String),
    /// A macro name (`address`, `service.name`, `mc_arg1`): `[a-z0-9_.]` only.
    Macro(String),
}

/// An Icinga 2 expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A string literal of text and macros.
    Str(Vec<Piece>),
    /// A constant's name (`PluginDir`): an identifier, checked when written.
    Const(String),
    /// `left + right` (`PluginDir + "/check_tcp"`).
    Concat(Box<Expr>, Box<Expr>),
    /// A number.
    Num(i64),
    /// A duration in seconds, written as `90s`.
    Secs(u64),
    /// `true` or `false`.
    Bool(bool),
    /// A bare identifier such as a state or type name (`Critical`), checked when written.
    Ident(String),
    /// An array.
    Array(Vec<Expr>),
    /// A dictionary with string keys.
    Dict(Vec<(String, Expr)>),
    /// Code written by the writer itself (lambdas of the cluster check): never holds a value.
    Code(&'static str),
}

impl Expr {
    /// A plain string.
    pub fn str(s: impl Into<String>) -> Expr {
        Expr::Str(vec![Piece::Text(s.into())])
    }

    /// An array of plain strings.
    pub fn strs<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Expr {
        Expr::Array(items.into_iter().map(Expr::str).collect())
    }
}

/// Write `s` as the body of a string literal (without the quotes).
pub fn escape_into(what: &str, s: &str, out: &mut String) -> Result<(), DslError> {
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("$$"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                return Err(DslError {
                    what: what.to_string(),
                    value: s.to_string(),
                    why: "contains a control character (a newline, a NUL, ...)",
                });
            }
            c => out.push(c),
        }
    }
    Ok(())
}

/// An object name as a quoted literal: no `$` (it would be doubled where no macro is
/// resolved) and no `!` (Icinga 2's separator of host and service in full names).
pub fn quote_name(what: &str, s: &str) -> Result<String, DslError> {
    if s.is_empty() || s.contains(['$', '!']) {
        return Err(DslError {
            what: what.to_string(),
            value: s.to_string(),
            why: "is not an object name (empty, or holds '$' or '!')",
        });
    }
    quote(what, s)
}

/// The text of a string literal as [`quote`] writes it, at the start of `s` (what follows
/// the closing quote is ignored); `None` when `s` does not start with one.
pub fn unquote(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.strip_prefix('"')?.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                't' => out.push('\t'),
                c => out.push(c),
            },
            '$' => {
                chars.next();
                out.push('$');
            }
            c => out.push(c),
        }
    }
    None
}

/// `s` as a quoted Icinga 2 string literal.
pub fn quote(what: &str, s: &str) -> Result<String, DslError> {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    escape_into(what, s, &mut out)?;
    out.push('"');
    Ok(out)
}

fn check_macro(what: &str, name: &str) -> Result<(), DslError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
    {
        return Err(DslError {
            what: what.to_string(),
            value: name.to_string(),
            why: "is not a macro name",
        });
    }
    Ok(())
}

fn check_ident(what: &str, name: &str) -> Result<(), DslError> {
    let mut b = name.bytes();
    if !b.next().is_some_and(|c| c.is_ascii_alphabetic()) || !b.all(|c| c.is_ascii_alphanumeric() || c == b'_') {
        return Err(DslError {
            what: what.to_string(),
            value: name.to_string(),
            why: "is not an identifier",
        });
    }
    Ok(())
}

/// Write `e` (at indentation `indent` for nested dictionaries).
pub fn write_expr(what: &str, e: &Expr, indent: usize, out: &mut String) -> Result<(), DslError> {
    match e {
        Expr::Str(pieces) => {
            out.push('"');
            for p in pieces {
                match p {
                    Piece::Text(t) => escape_into(what, t, out)?,
                    Piece::Macro(m) => {
                        check_macro(what, m)?;
                        out.push('$');
                        out.push_str(m);
                        out.push('$');
                    }
                }
            }
            out.push('"');
        }
        Expr::Const(c) => {
            check_ident(what, c)?;
            out.push_str(c);
        }
        Expr::Code(c) => out.push_str(c),
        Expr::Concat(a, b) => {
            write_expr(what, a, indent, out)?;
            out.push_str(" + ");
            write_expr(what, b, indent, out)?;
        }
        // Writing to a String cannot fail.
        Expr::Num(n) => {
            let _ = write!(out, "{n}");
        }
        Expr::Secs(s) => {
            let _ = write!(out, "{s}s");
        }
        Expr::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Expr::Ident(i) => {
            check_ident(what, i)?;
            out.push_str(i);
        }
        Expr::Array(items) => {
            out.push_str("[ ");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_expr(what, item, indent, out)?;
            }
            out.push_str(if items.is_empty() { "]" } else { " ]" });
        }
        Expr::Dict(entries) => {
            out.push_str("{\n");
            for (k, v) in entries {
                push_indent(out, indent + 1);
                out.push_str(&quote(what, k)?);
                out.push_str(" = ");
                write_expr(what, v, indent + 1, out)?;
                out.push('\n');
            }
            push_indent(out, indent);
            out.push('}');
        }
    }
    Ok(())
}

fn push_indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push_str("  ");
    }
}

/// What an object is: `object`, `template` or an `apply` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// `object Type "name"`.
    Object,
    /// `template Type "name"`.
    Template,
}

/// One Icinga 2 object or template, built attribute by attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct IObject {
    /// The object's type (`Host`, `Service`, `CheckCommand`, ...): a writer constant.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// Object or template.
    pub head: Head,
    /// Templates it imports, in order.
    pub imports: Vec<String>,
    /// Attributes (`vars.x` included), in order; a later set replaces an earlier one.
    pub attrs: Vec<(String, Expr)>,
}

impl IObject {
    /// An object of `kind` named `name`.
    pub fn new(kind: &'static str, name: impl Into<String>, head: Head) -> IObject {
        IObject {
            kind,
            name: name.into(),
            head,
            imports: Vec::new(),
            attrs: Vec::new(),
        }
    }

    /// Set an attribute; `attr` is a writer constant (`address`, `vars.mc_arg1`).
    pub fn set(&mut self, attr: &str, value: Expr) -> &mut Self {
        match self.attrs.iter_mut().find(|(a, _)| a == attr) {
            Some((_, v)) => *v = value,
            None => self.attrs.push((attr.to_string(), value)),
        }
        self
    }

    /// An attribute's value.
    pub fn get(&self, attr: &str) -> Option<&Expr> {
        self.attrs.iter().find(|(a, _)| a == attr).map(|(_, v)| v)
    }

    /// Write the object. Attribute names are checked (`[a-z0-9_.]`, as the writer makes
    /// them), every value is escaped.
    pub fn write_into(&self, out: &mut String) -> Result<(), DslError> {
        let what = format!("{} {:?}", self.kind, self.name);
        let head = match self.head {
            Head::Object => "object",
            Head::Template => "template",
        };
        let _ = write!(out, "{head} {} ", self.kind);
        out.push_str(&quote_name(&what, &self.name)?);
        out.push_str(" {\n");
        for i in &self.imports {
            out.push_str("  import ");
            out.push_str(&quote_name(&what, i)?);
            out.push('\n');
        }
        for (a, v) in &self.attrs {
            if a.is_empty()
                || !a
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
            {
                return Err(DslError {
                    what,
                    value: a.clone(),
                    why: "is not an attribute name",
                });
            }
            out.push_str("  ");
            out.push_str(a);
            out.push_str(" = ");
            write_expr(&what, v, 1, out)?;
            out.push('\n');
        }
        out.push_str("}\n\n");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_strings_stay_strings() {
        for (hostile, want) in [
            (
                r#"x" } object Host "evil" { address = "1"#,
                r#""x\" } object Host \"evil\" { address = \"1""#,
            ),
            (r"a\", r#""a\\""#),
            ("$(rm -rf /)$", r#""$$(rm -rf /)$$""#),
            ("{{ exit() }}", r#""{{ exit() }}""#),
            ("tab\there", r#""tab\there""#),
        ] {
            assert_eq!(quote("t", hostile).unwrap(), want);
        }
        for bad in ["a\nb", "a\rb", "a\0b", "\u{1b}[31m"] {
            assert!(quote("t", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unquote_reads_back_what_quote_writes() {
        for v in [r#"a "b" \ c"#, "$x$ 5$$", "tab\there", ""] {
            assert_eq!(unquote(&format!("{} {{", quote("t", v).unwrap())).as_deref(), Some(v));
        }
        assert_eq!(unquote("no quote"), None);
    }

    #[test]
    fn objects_refuse_writer_mistakes() {
        let mut o = IObject::new("Host", "h", Head::Object);
        o.set("vars.ok", Expr::Ident("Critical".into()));
        let mut s = String::new();
        o.write_into(&mut s).unwrap();
        assert_eq!(s, "object Host \"h\" {\n  vars.ok = Critical\n}\n\n");
        o.set("x = 1\n  y", Expr::Num(1));
        assert!(o.write_into(&mut String::new()).is_err());
        let mut o = IObject::new("Host", "h", Head::Object);
        o.set("a", Expr::Ident("x; exit()".into()));
        assert!(o.write_into(&mut String::new()).is_err());
        o.set("a", Expr::Str(vec![Piece::Macro("x$ + y".into())]));
        assert!(o.write_into(&mut String::new()).is_err());
    }
}
