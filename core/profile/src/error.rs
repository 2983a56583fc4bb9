//! Errors from reading one profile. Each names the file, the element path and, where
//! the position is known, the line and byte offset.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

use super::context::ContextError;

/// A profile that could not be read. Only its own machine fails.
#[derive(Debug, Error)]
pub struct ProfileError {
    /// The profile file.
    pub file: PathBuf,
    /// 1-based line of the problem in the (decompressed) XML, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the problem on that line, when known.
    pub column: Option<usize>,
    /// The file was gzip: `offset` counts the decompressed text.
    pub decompressed: bool,
    /// Byte offset of the problem in the (decompressed) XML, when known.
    pub offset: Option<usize>,
    /// Element path, such as `lcfg/components/kerberos/realm`, when known.
    pub element: Option<String>,
    /// What went wrong.
    #[source]
    pub kind: Box<ProfileErrorKind>,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(offset) = self.offset {
            if self.decompressed {
                write!(f, " (byte {offset} of the decompressed text)")?;
            } else {
                write!(f, " (byte {offset})")?;
            }
        }
        if let Some(element) = &self.element {
            write!(f, " in <{element}>")?;
        }
        write!(f, ": {}", self.kind)
    }
}

/// The kinds of profile failure.
#[derive(Debug, Error)]
pub enum ProfileErrorKind {
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot decompress gzip data: {0}")]
    Gzip(std::io::Error),
    #[error("XML syntax error: {0}")]
    Xml(String),
    #[error("unexpected end of file: {0}")]
    Truncated(String),
    #[error("not an LCFG profile: {0}")]
    NotAProfile(String),
    #[error("invalid {what} name {name:?}")]
    InvalidName { what: &'static str, name: String },
    #[error("resource {component}.{resource}: {message}")]
    Resource {
        component: String,
        resource: String,
        message: String,
    },
    #[error(
        "resource {component}.{resource}: conflicting values {first:?} and {second:?} at equal priority {priority}"
    )]
    Conflict {
        component: String,
        resource: String,
        first: String,
        second: String,
        priority: i32,
    },
    #[error("resource {component}.{resource}: {source}")]
    Context {
        component: String,
        resource: String,
        source: ContextError,
    },
    #[error("missing resource profile.node: the machine has no name")]
    NoMachineName,
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Limit(String),
    #[error("machine name {name:?} (profile.node and profile.domain) is not a host name: {reason}")]
    BadMachineName { name: String, reason: &'static str },
}

impl ProfileError {
    pub(crate) fn new(file: &std::path::Path, kind: ProfileErrorKind) -> Self {
        ProfileError {
            file: file.to_path_buf(),
            line: None,
            column: None,
            decompressed: false,
            offset: None,
            element: None,
            kind: Box::new(kind),
        }
    }

    /// Attach a byte position in `doc`, computing the line from it.
    pub(crate) fn at(mut self, doc: &[u8], offset: usize) -> Self {
        let offset = offset.min(doc.len());
        let before = &doc[..offset];
        self.line = Some(memchr::memchr_iter(b'\n', before).count() + 1);
        let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
        // Characters, not bytes: a UTF-8 continuation byte starts no character.
        let chars = before[line_start..].iter().filter(|&&b| (b & 0xC0) != 0x80).count();
        self.column = Some(chars + 1);
        self.offset = Some(offset);
        self
    }

    pub(crate) fn in_element(mut self, element: impl Into<String>) -> Self {
        self.element = Some(element.into());
        self
    }
}
