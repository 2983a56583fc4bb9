//! The monitoring-info file format of the PackageMonitorInfo spec: INI-style files of
//! `[servicename]` sections, each with `key = value` lines.
//!
//! ```text
//! [apache2]
//! type = http
//! port = 8080
//! ```
//!
//! - a line is a section header `[name]`, a `key = value` pair (split at the first `=`,
//!   both sides trimmed), blank, or a comment starting with `#` or `;`;
//! - keys are case-insensitive (read lower-cased);
//! - a registration holds several files, one after another, each introduced by a marker
//!   comment `#@file NAME` (see [`FILE_MARKER`]): it only names the file in the errors.
//!
//! This module only splits the text into sections. What the keys mean, and which values
//! are acceptable, is [`crate::declare`]'s business.

use std::fmt;

/// The comment that starts the next file of a stored registration: `#@file apache2`.
pub const FILE_MARKER: &str = "#@file ";

/// Where something was declared: a file (or profile) and a line in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    /// The file, such as `web3.example.org:/etc/monitoring-info/apache2`, or the
    /// profile resource it came from.
    pub file: String,
    /// The line, from 1; 0 when unknown.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{} line {}", self.file, self.line)
        }
    }
}

/// One `key = value` line of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The key, lower-cased.
    pub key: String,
    /// The value, trimmed.
    pub value: String,
    /// Where it was written.
    pub origin: Origin,
}

/// One `[name]` section: the declaration of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The service's name, as written between the brackets (trimmed).
    pub name: String,
    /// Where the section header was written.
    pub origin: Origin,
    /// Its lines, in order.
    pub pairs: Vec<Pair>,
}

impl Section {
    /// The value of `key`, if the section has it (the first, when repeated: a repeated
    /// key is refused by [`crate::declare`]).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|p| p.key == key).map(|p| p.value.as_str())
    }
}

/// A line that could not be read. It is no section's, so it fails no service by itself,
/// but it is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub origin: Origin,
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.origin, self.message)
    }
}

/// What one line of a file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line<'a> {
    Blank,
    Comment,
    /// `#@file NAME`: the next file of a registration begins.
    File(&'a str),
    Section(&'a str),
    Pair(&'a str, &'a str),
    Bad(&'static str),
}

/// Classify one line (without its line ending).
pub fn lex(line: &str) -> Line<'_> {
    let t = line.trim();
    if t.is_empty() {
        return Line::Blank;
    }
    if let Some(name) = line.strip_prefix(FILE_MARKER) {
        return Line::File(name.trim());
    }
    if t.starts_with('#') || t.starts_with(';') {
        return Line::Comment;
    }
    if let Some(rest) = t.strip_prefix('[') {
        return match rest.strip_suffix(']') {
            Some(name) if !name.trim().is_empty() => Line::Section(name.trim()),
            Some(_) => Line::Bad("a section header with no name"),
            None => Line::Bad("a section header without its closing ']'"),
        };
    }
    match t.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Line::Pair(k.trim(), v.trim()),
        Some(_) => Line::Bad("a value with no key before its '='"),
        None => Line::Bad("neither a section header, a 'key = value' line nor a comment"),
    }
}

/// Split `text` into sections. `file` names the text in origins until a `#@file` marker
/// names the next file (then `prefix` followed by the marker's name). Lines outside any
/// section and unreadable lines are returned as errors; they fail no section.
pub fn parse(file: &str, prefix: &str, text: &str) -> (Vec<Section>, Vec<LineError>) {
    let mut sections: Vec<Section> = Vec::new();
    let mut errors = Vec::new();
    let mut current_file = file.to_string();
    let mut line_in_file = 0usize;
    let mut in_section = false;
    for raw in text.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        line_in_file += 1;
        let origin = || Origin {
            file: current_file.clone(),
            line: line_in_file,
        };
        match lex(raw) {
            Line::Blank | Line::Comment => {}
            Line::File(name) => {
                current_file = format!("{prefix}{name}");
                line_in_file = 0;
                in_section = false;
            }
            Line::Section(name) => {
                sections.push(Section {
                    name: name.to_string(),
                    origin: origin(),
                    pairs: Vec::new(),
                });
                in_section = true;
            }
            Line::Pair(key, value) => match sections.last_mut() {
                Some(s) if in_section => s.pairs.push(Pair {
                    key: key.to_ascii_lowercase(),
                    value: value.to_string(),
                    origin: origin(),
                }),
                _ => errors.push(LineError {
                    origin: origin(),
                    message: format!("key {key:?} outside any [section]: ignored"),
                }),
            },
            Line::Bad(why) => errors.push(LineError {
                origin: origin(),
                message: format!("{why}: ignored"),
            }),
        }
    }
    (sections, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_pairs_comments_and_file_markers() {
        let text = "# header\n[apache2]\ntype = http\nPort=8080\n; c\n\n#@file exim4\n[exim]\ntype = smtp\r\n";
        let (s, e) = parse("reg", "web3:/etc/monitoring-info/", text);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "apache2");
        assert_eq!(s[0].origin.to_string(), "reg line 2");
        assert_eq!(s[0].get("port"), Some("8080"));
        assert_eq!(s[0].pairs[1].origin.line, 4);
        assert_eq!(s[1].name, "exim");
        assert_eq!(s[1].origin.to_string(), "web3:/etc/monitoring-info/exim4 line 1");
        assert_eq!(s[1].get("type"), Some("smtp"));
    }

    #[test]
    fn bad_lines_are_reported_and_fail_no_section() {
        let (s, e) = parse("f", "", "port = 1\n[a\n[]\n[ok]\n= x\njunk\ntype = tcp\n");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].get("type"), Some("tcp"));
        let lines: Vec<usize> = e.iter().map(|e| e.origin.line).collect();
        assert_eq!(lines, [1, 2, 3, 5, 6]);
        assert!(e[0].message.contains("outside any [section]"), "{}", e[0]);
    }
}
