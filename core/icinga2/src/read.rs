//! Reading the assembled Nagios configuration back into objects.
//!
//! The writer maps what the engine assembled, as the engine wrote it: every file of the
//! Nagios [`Output`] is in the one form `Object::render_into` writes (`define kind {`,
//! one directive per line, `}`), with `;` written `\;`, and check command arguments with
//! `!` written `\!` and `$` written `$$`. Reading undoes exactly that, so a value reaches
//! the Icinga 2 writer as the translator gave it. Anything else in a file is an error.

use std::path::{Path, PathBuf};

use monitor_engine::Output;
use monitor_sdk::nagios::ObjectKind;
use thiserror::Error;

/// One object read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NObject {
    /// Its kind.
    pub kind: ObjectKind,
    /// Its directives and values (unescaped), in file order.
    pub directives: Vec<(String, String)>,
    /// The file it is in (relative to the output).
    pub file: PathBuf,
    /// The line of its `define`.
    pub line: usize,
    /// The machine whose section of a machine file it is in.
    pub machine: Option<String>,
}

impl NObject {
    /// A directive's value.
    pub fn get(&self, d: &str) -> Option<&str> {
        self.directives.iter().find(|(k, _)| k == d).map(|(_, v)| v.as_str())
    }

    /// A list directive's names (`contact_groups`, `members`).
    pub fn names(&self, d: &str) -> Vec<&str> {
        self.get(d)
            .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }

    /// True for a template (`register 0`).
    pub fn is_template(&self) -> bool {
        self.get("register") == Some("0")
    }

    /// Its name: the kind's name directive, or a template's `name`.
    pub fn name(&self) -> Option<&str> {
        if self.is_template() {
            return self.get("name");
        }
        self.kind.name_directive().and_then(|d| self.get(d))
    }
}

/// A file that is not in the form the engine writes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file}:{line}: {why}")]
pub struct ReadError {
    /// The file.
    pub file: String,
    /// The line.
    pub line: usize,
    /// What is wrong.
    pub why: String,
}

/// Undo the text escape: `\;` is `;`.
pub fn unescape_text(v: &str) -> String {
    v.replace("\\;", ";")
}

/// A `check_command` or `event_handler` value: the command name and its arguments, with
/// `\!` read as `!`, `\;` as `;` and `$$` as `$`.
pub fn split_command(v: &str) -> (String, Vec<String>) {
    let mut parts = vec![String::new()];
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        let ch = match c {
            '\\' if matches!(chars.peek(), Some('!') | Some(';')) => chars.next().unwrap_or(c),
            '!' => {
                parts.push(String::new());
                continue;
            }
            '$' if parts.len() > 1 && chars.peek() == Some(&'$') => {
                chars.next();
                '$'
            }
            c => c,
        };
        // Invariant: `parts` starts with one element and only grows.
        if let Some(p) = parts.last_mut() {
            p.push(ch);
        }
    }
    let name = parts.remove(0);
    (name, parts)
}

/// Every object of every `.cfg` file of `output`, file by file in name order.
pub fn read_output(output: &Output) -> Result<Vec<NObject>, ReadError> {
    let mut all = Vec::new();
    for (path, text) in &output.files {
        if path.extension().and_then(|e| e.to_str()) != Some("cfg") {
            continue;
        }
        read_file(path, text, &mut all)?;
    }
    Ok(all)
}

/// The objects of one file.
pub fn read_file(path: &Path, text: &str, out: &mut Vec<NObject>) -> Result<(), ReadError> {
    let err = |line: usize, why: String| ReadError {
        file: path.display().to_string(),
        line,
        why,
    };
    let mut machine: Option<String> = None;
    let mut current: Option<NObject> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(obj) = current.as_mut() {
            if line == "}" {
                // Invariant: `current` is Some in this branch.
                out.extend(current.take());
                continue;
            }
            let body = line
                .strip_prefix("    ")
                .ok_or_else(|| err(n, "expected a directive or '}'".into()))?;
            let (d, v) = body.split_once(' ').unwrap_or((body, ""));
            let value = v.trim();
            let value = if matches!(d, "check_command" | "event_handler") {
                value.to_string()
            } else {
                unescape_text(value)
            };
            obj.directives.push((d.to_string(), value));
            continue;
        }
        if line.is_empty() {
            continue;
        }
        if let Some(m) = line.strip_prefix("# machine ") {
            machine = Some(m.trim().to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let keyword = line
            .strip_prefix("define ")
            .and_then(|r| r.strip_suffix(" {"))
            .ok_or_else(|| err(n, format!("expected `define <kind> {{`, found {line:?}")))?;
        let kind =
            ObjectKind::from_keyword(keyword).ok_or_else(|| err(n, format!("unknown object kind {keyword:?}")))?;
        current = Some(NObject {
            kind,
            directives: Vec::new(),
            file: path.to_path_buf(),
            line: n,
            machine: machine.clone(),
        });
    }
    if current.is_some() {
        return Err(err(text.lines().count(), "the file ends inside an object".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_sdk::nagios::{Bundle, CheckCommand, Service};

    #[test]
    fn what_the_engine_writes_reads_back_unescaped() {
        let b = Bundle::new().with(
            Service::new("tpl")
                .host_name("h")
                .service_description("a;b")
                .check_command(CheckCommand::new("c").arg("x!y").arg("$5;").arg(r"back\!"))
                .text("notes", r"semi; and \; slash"),
        );
        let mut objs = Vec::new();
        read_file(Path::new("f.cfg"), &format!("# machine h\n\n{}", b.render()), &mut objs).unwrap();
        let o = &objs[0];
        assert_eq!(o.machine.as_deref(), Some("h"));
        assert_eq!(o.get("service_description"), Some("a;b"));
        assert_eq!(o.get("notes"), Some(r"semi; and \; slash"));
        let (name, args) = split_command(o.get("check_command").unwrap());
        assert_eq!(name, "c");
        assert_eq!(args, ["x!y", "$5;", r"back\!"]);
        let e = read_file(Path::new("f.cfg"), "define host {\n  x\n}\n", &mut Vec::new()).unwrap_err();
        assert_eq!(e.line, 2);
    }
}
