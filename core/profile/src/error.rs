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
    /// The file could not be read.
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
    /// A gzip stream that does not decompress.
    #[error("cannot decompress gzip data: {0}")]
    Gzip(std::io::Error),
    /// Not well-formed XML (or an encoding that is not read).
    #[error("XML syntax error: {0}")]
    Xml(String),
    /// The document ends before its elements are closed.
    #[error("unexpected end of file: {0}")]
    Truncated(String),
    /// Well-formed XML, but not an LCFG profile (no `<profile>`, `<lcfg>`, ...).
    #[error("not an LCFG profile: {0}")]
    NotAProfile(String),
    /// A component, resource or tag name that LCFG does not allow.
    #[error("invalid {what} name {name:?}")]
    InvalidName {
        /// What kind of name (`component`, `resource`, `tag`).
        what: &'static str,
        /// The name.
        name: String,
    },
    /// A resource that cannot be read (a bad type, template or list).
    #[error("resource {component}.{resource}: {message}")]
    Resource {
        /// Its component.
        component: String,
        /// Its name.
        resource: String,
        /// What is wrong.
        message: String,
    },
    /// Two values of one resource at the same context priority.
    #[error(
        "resource {component}.{resource}: conflicting values {first:?} and {second:?} at equal priority {priority}"
    )]
    Conflict {
        /// Its component.
        component: String,
        /// Its name.
        resource: String,
        /// One value.
        first: String,
        /// The other value.
        second: String,
        /// The priority both have.
        priority: i32,
    },
    /// A resource whose `cfg:context` expression cannot be read.
    #[error("resource {component}.{resource}: {source}")]
    Context {
        /// Its component.
        component: String,
        /// Its name.
        resource: String,
        /// The expression's error.
        source: ContextError,
    },
    /// `profile.node` is missing or empty.
    #[error("missing resource profile.node: the machine has no name")]
    NoMachineName,
    /// A file or a decompressed stream over `MAX_PROFILE_BYTES`.
    #[error("{0}")]
    TooLarge(String),
    /// A nesting depth, value size or entity expansion over the reader's limits.
    #[error("{0}")]
    Limit(String),
    /// `profile.node` and `profile.domain` do not make a host name.
    #[error("machine name {name:?} (profile.node and profile.domain) is not a host name: {reason}")]
    BadMachineName {
        /// The name.
        name: String,
        /// Why it is not a host name.
        reason: &'static str,
    },
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
