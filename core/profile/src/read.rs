//! Reading one profile: gzip, encoding, the skeleton scan and the components asked for.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::error::{ProfileError, ProfileErrorKind};
use crate::tree::Component;
use crate::{check_host_name, parse, scan};

/// Which components to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// Every component (for `monitor-test --dump`).
    All,
    /// `profile`, `nagios_client` and the monitored components only.
    Monitoring,
}

/// One machine's parsed profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// `profile.node` + `.` + `profile.domain`.
    pub machine: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Metadata elements of `<lcfg>` (`published_by`, `last_modified`, ...).
    pub meta: Vec<(String, String)>,
    /// The components listed in `nagios_client.components`, in listed order.
    pub monitored: Vec<String>,
    components: IndexMap<String, Component>,
}

impl Profile {
    /// A parsed component. A monitored component missing from the profile is present
    /// here as an empty component.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.get(name)
    }

    /// All parsed components, in document order.
    pub fn components(&self) -> impl Iterator<Item = &Component> {
        self.components.values()
    }
}

/// The largest profile read, decompressed: 64 MiB. A file or a gzip stream over it is
/// refused (as it streams, for gzip) before it is held whole.
pub const MAX_PROFILE_BYTES: u64 = 64 << 20;

/// Gunzip `raw` when it starts with the gzip magic bytes; otherwise borrow it. Either way
/// no more than [`MAX_PROFILE_BYTES`] are accepted.
pub fn decode<'a>(file: &Path, raw: &'a [u8]) -> Result<Cow<'a, [u8]>, ProfileError> {
    let too_large = |what: &str| {
        ProfileError::new(
            file,
            ProfileErrorKind::TooLarge(format!(
                "{what} is larger than the {} MiB limit",
                MAX_PROFILE_BYTES >> 20
            )),
        )
    };
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity((raw.len() * 8).min(MAX_PROFILE_BYTES as usize));
        // Member after member (concatenated gzip streams are one file); bytes after the
        // last member that do not start another are ignored, as zlib's gzread does.
        let mut rest: &[u8] = raw;
        while rest.starts_with(&[0x1f, 0x8b]) {
            let left = MAX_PROFILE_BYTES + 1 - out.len() as u64;
            let mut member = flate2::bufread::GzDecoder::new(rest);
            (&mut member)
                .take(left)
                .read_to_end(&mut out)
                .map_err(|e| ProfileError::new(file, ProfileErrorKind::Gzip(e)))?;
            if out.len() as u64 > MAX_PROFILE_BYTES {
                return Err(too_large("the decompressed profile"));
            }
            rest = member.into_inner();
        }
        Ok(Cow::Owned(out))
    } else if raw.len() as u64 > MAX_PROFILE_BYTES {
        Err(too_large("the profile"))
    } else {
        Ok(Cow::Borrowed(raw))
    }
}

/// The encoding an XML declaration at the start of `doc` names, lower-cased.
fn declared_encoding(doc: &[u8]) -> Option<String> {
    let head = doc.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(doc);
    let decl = head.strip_prefix(b"<?xml")?;
    let end = memchr::memmem::find(decl, b"?>")?;
    let decl = std::str::from_utf8(&decl[..end]).ok()?;
    let at = decl.find("encoding")? + "encoding".len();
    let rest = decl[at..].trim_start().strip_prefix('=')?.trim_start();
    let q = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..1 + rest[1..].find(q)?];
    Some(value.to_ascii_lowercase())
}

/// `doc` as UTF-8: an ISO-8859-1 (Latin-1) declaration is honoured (each byte is the
/// code point of the same number), as lcfg-core does; UTF-8 and US-ASCII are read as
/// they are; any other declared encoding is an error. Error offsets in a transcoded
/// file count the UTF-8 text.
fn to_utf8<'a>(file: &Path, doc: Cow<'a, [u8]>) -> Result<Cow<'a, [u8]>, ProfileError> {
    match declared_encoding(&doc).as_deref() {
        None | Some("utf-8" | "utf8" | "us-ascii" | "ascii") => Ok(doc),
        Some("iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" | "l1") => {
            if doc.is_ascii() {
                return Ok(doc);
            }
            let text: String = doc.iter().map(|&b| char::from(b)).collect();
            Ok(Cow::Owned(text.into_bytes()))
        }
        Some(other) => Err(ProfileError::new(
            file,
            ProfileErrorKind::Xml(format!(
                "unsupported encoding {other:?} (UTF-8 and ISO-8859-1 are read)"
            )),
        )),
    }
}

/// Parse a profile from its raw bytes (as read from `file`; gzip is detected).
pub fn parse_profile(file: &Path, raw: &[u8], select: Select) -> Result<Profile, ProfileError> {
    let gzipped = raw.starts_with(&[0x1f, 0x8b]);
    parse_document(file, raw, select).map_err(|mut e| {
        e.decompressed = gzipped && e.offset.is_some();
        e
    })
}

fn parse_document(file: &Path, raw: &[u8], select: Select) -> Result<Profile, ProfileError> {
    let doc = to_utf8(file, decode(file, raw)?)?;
    let doc: &[u8] = &doc;
    let skel = scan::scan(doc).map_err(|e| e.into_profile_error(file, doc))?;
    // A later element for the same component replaces the earlier one wholesale.
    let mut spans: HashMap<&str, &scan::Span> = HashMap::with_capacity(skel.components.len());
    for span in &skel.components {
        spans.insert(&span.name, span);
    }
    let parse = |name: &str| -> Result<Component, ProfileError> {
        match spans.get(name) {
            Some(span) => parse::parse_component(doc, span, &skel.entities, &skel.lcfg_prefixes)
                .map_err(|e| e.into_profile_error(file, doc)),
            None => Ok(Component::new(name)),
        }
    };

    let mut components = IndexMap::new();
    let profile = parse("profile")?;
    let nagios = parse("nagios_client")?;
    let monitored: Vec<String> = nagios
        .get("components")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let machine = machine_name(&profile).ok_or_else(|| ProfileError::new(file, ProfileErrorKind::NoMachineName))?;
    if let Err(reason) = check_host_name(&machine) {
        return Err(ProfileError::new(
            file,
            ProfileErrorKind::BadMachineName { name: machine, reason },
        ));
    }

    match select {
        Select::All => {
            for span in &skel.components {
                if components.contains_key(&span.name) {
                    continue;
                }
                let comp = match span.name.as_str() {
                    "profile" => profile.clone(),
                    "nagios_client" => nagios.clone(),
                    name => parse(name)?,
                };
                components.insert(span.name.clone(), comp);
            }
        }
        Select::Monitoring => {
            components.insert("profile".to_string(), profile);
            components.insert("nagios_client".to_string(), nagios);
            for name in &monitored {
                if !components.contains_key(name) {
                    components.insert(name.clone(), parse(name)?);
                }
            }
        }
    }
    Ok(Profile {
        machine,
        file: file.to_path_buf(),
        meta: skel.meta,
        monitored,
        components,
    })
}

/// Read and parse a profile file.
pub fn read_profile(file: &Path, select: Select) -> Result<Profile, ProfileError> {
    let raw = std::fs::read(file).map_err(|e| ProfileError::new(file, ProfileErrorKind::Io(e)))?;
    parse_profile(file, &raw, select)
}

fn machine_name(profile: &Component) -> Option<String> {
    let node = profile.get_nonempty("node")?.trim();
    match profile.get_nonempty("domain") {
        Some(domain) => Some(format!("{node}.{}", domain.trim())),
        None => Some(node.to_string()),
    }
}

/// Every active resource in flat form, `component.resource=value`, sorted, one per line.
/// Values are escaped (`\\`, `\n`, `\r`, `\t`) so that each stays on one line.
pub fn dump(profile: &Profile) -> String {
    let mut lines: Vec<String> = profile
        .components()
        .flat_map(|c| {
            c.resources()
                .iter()
                .map(move |r| format!("{}.{}={}", c.name(), r.name, escape_line(&r.value)))
        })
        .collect();
    lines.sort();
    let mut out = String::with_capacity(lines.len() * 40);
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

fn escape_line(v: &str) -> Cow<'_, str> {
    if !v.contains(['\\', '\n', '\r', '\t']) {
        return Cow::Borrowed(v);
    }
    let mut s = String::with_capacity(v.len() + 8);
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c => s.push(c),
        }
    }
    Cow::Owned(s)
}
