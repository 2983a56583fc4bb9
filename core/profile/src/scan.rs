//! The skeleton scan: finds `<lcfg>`, its metadata and the byte span of every component,
//! and passes over everything else (the package list, unmonitored components) without
//! tokenising it.
//!
//! How it passes over an element, and why that is safe: see the `skip` module.

use std::collections::HashMap;

use memchr::memmem;
use quick_xml::events::Event;

use super::error::{ProfileError, ProfileErrorKind};
use super::skip::{Markup, markup_at, mismatched, skip_element, skip_ws};

/// Byte span of one component element, from its `<` to after its closing `>`.
#[derive(Debug, Clone)]
pub(crate) struct Span {
    pub name: String,
    pub start: usize,
    pub end: usize,
}

/// What the scan found.
#[derive(Debug, Default)]
pub(crate) struct Skeleton {
    pub meta: Vec<(String, String)>,
    pub components: Vec<Span>,
    /// Internal entities declared in the DOCTYPE, expanded (`None`: too large).
    pub entities: HashMap<String, Option<String>>,
    /// The prefixes bound to the LCFG namespace on the root or `<lcfg>` (usually `cfg`).
    /// An attribute with any other prefix, or an undeclared one, is not LCFG's.
    pub lcfg_prefixes: Vec<Vec<u8>>,
}

/// The LCFG profile namespace.
pub(crate) const LCFG_NAMESPACE: &[u8] = b"http://www.lcfg.org/namespace/profile-1.0";

/// The `xmlns:P="LCFG_NAMESPACE"` prefixes declared in `head`.
fn lcfg_prefixes(head: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for at in memmem::find_iter(head, b"xmlns:") {
        let rest = &head[at + 6..];
        let name_len = rest
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')))
            .unwrap_or(rest.len());
        let (name, after) = rest.split_at(name_len);
        let after = after.trim_ascii_start();
        let Some(after) = after.strip_prefix(b"=") else {
            continue;
        };
        let after = after.trim_ascii_start();
        let Some(&q) = after.first().filter(|q| matches!(q, b'"' | b'\'')) else {
            continue;
        };
        if let Some(end) = after[1..].iter().position(|&c| c == q)
            && &after[1..1 + end] == LCFG_NAMESPACE
            && !out.iter().any(|p: &Vec<u8>| p == name)
        {
            out.push(name.to_vec());
        }
    }
    out
}

/// A failure at a byte position, turned into a [`ProfileError`] by the caller.
pub(crate) struct ScanError {
    pub offset: usize,
    pub element: String,
    pub kind: Box<ProfileErrorKind>,
}

impl ScanError {
    pub fn into_profile_error(self, file: &std::path::Path, doc: &[u8]) -> ProfileError {
        ProfileError::new(file, *self.kind)
            .at(doc, self.offset)
            .in_element(self.element)
    }
}

fn err(offset: usize, element: &str, kind: ProfileErrorKind) -> ScanError {
    ScanError {
        offset,
        element: element.to_string(),
        kind: Box::new(kind),
    }
}

/// Scan a whole (decompressed) profile document.
pub(crate) fn scan(doc: &[u8]) -> Result<Skeleton, ScanError> {
    let mut skel = Skeleton::default();
    let (root, lcfg_content) = find_lcfg(doc, &mut skel.entities)?;
    skel.lcfg_prefixes = lcfg_prefixes(&doc[..lcfg_content]);
    let mut pos = lcfg_content;
    let here = "lcfg";
    loop {
        pos = skip_ws(doc, pos);
        if pos >= doc.len() {
            return Err(err(
                pos,
                here,
                ProfileErrorKind::Truncated("<lcfg> is not closed".into()),
            ));
        }
        if doc[pos] != b'<' {
            // Text directly inside <lcfg> is skipped (lcfg-core).
            pos = memchr::memchr(b'<', &doc[pos..]).map_or(doc.len(), |i| pos + i);
            continue;
        }
        let m = markup_at(doc, pos).map_err(|k| err(pos, here, k))?;
        match m {
            Markup::Other { end } => pos = end,
            Markup::End { name, end } => {
                if name != b"lcfg" {
                    return Err(err(pos, here, mismatched(b"lcfg", name)));
                }
                pos = end;
                break;
            }
            Markup::Start { name, end, empty } => {
                let name_s = String::from_utf8_lossy(name).into_owned();
                if empty {
                    pos = end;
                    continue;
                }
                match name {
                    b"components" => pos = scan_components(doc, end, &mut skel.components)?,
                    b"packages" => {
                        pos = skip_element(doc, end, name).map_err(|k| err(pos, "lcfg/packages", k))?;
                    }
                    _ => {
                        let close = skip_element(doc, end, name).map_err(|k| err(pos, &name_s, k))?;
                        let inner = &doc[end..close - name.len() - 3];
                        if memchr::memchr(b'<', inner).is_none() {
                            let text = std::str::from_utf8(inner)
                                .map_err(|e| err(end, &name_s, ProfileErrorKind::Xml(e.to_string())))?;
                            // Internal entities may be used in metadata (lcfg-core).
                            let text = quick_xml::escape::unescape_with(text, |n| {
                                quick_xml::escape::resolve_predefined_entity(n).or_else(|| {
                                    skel.entities
                                        .get(n)
                                        .and_then(|v| v.as_deref())
                                        .filter(|v| !v.contains('&'))
                                })
                            })
                            .map_err(|e| err(end, &name_s, ProfileErrorKind::Xml(e.to_string())))?;
                            skel.meta.push((name_s, text.into_owned()));
                        }
                        pos = close;
                    }
                }
            }
        }
    }
    check_tail(doc, pos, root.as_deref())?;
    Ok(skel)
}

/// Walk the prolog with quick-xml (it knows DOCTYPE internal subsets) up to `<lcfg>`.
/// Returns the root element's name (`None` when `<lcfg>` is the root) and the position
/// just after the `<lcfg>` start tag.
fn find_lcfg(
    doc: &[u8],
    entities: &mut HashMap<String, Option<String>>,
) -> Result<(Option<Vec<u8>>, usize), ScanError> {
    // A UTF-8 byte order mark is accepted (lcfg-core); offsets still count it.
    let mut base = if doc.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    let mut reader = reader_at(doc, base);
    let mut root: Option<Vec<u8>> = None;
    loop {
        let before = base + reader.buffer_position() as usize;
        let ev = reader.read_event().map_err(|e| {
            err(
                base + reader.error_position() as usize,
                "",
                ProfileErrorKind::Xml(e.to_string()),
            )
        })?;
        match ev {
            Event::Start(e) => {
                let name = e.name().as_ref().as_bytes().to_vec();
                if name == b"lcfg" {
                    return Ok((root, base + reader.buffer_position() as usize));
                }
                if root.is_some() {
                    // Another element under the root, before <lcfg>: pass over it.
                    let end = skip_element(doc, base + reader.buffer_position() as usize, &name)
                        .map_err(|k| err(before, &String::from_utf8_lossy(&name), k))?;
                    // <lcfg> inside another element is at the wrong depth: say so.
                    let region = &doc[before..end];
                    if let Some(at) = memmem::find(region, b"<lcfg>").or_else(|| memmem::find(region, b"<lcfg ")) {
                        let parent = String::from_utf8_lossy(&name).into_owned();
                        let root_name = String::from_utf8_lossy(root.as_deref().unwrap_or_default()).into_owned();
                        return Err(err(
                            before + at,
                            &format!("{root_name}/{parent}/lcfg"),
                            ProfileErrorKind::NotAProfile(format!(
                                "<lcfg> is inside <{parent}>: it must be a child of the root element <{root_name}>"
                            )),
                        ));
                    }
                    base = end;
                    reader = reader_at(doc, end);
                    continue;
                }
                root = Some(name);
            }
            Event::Empty(e) if root.is_none() => {
                return Err(err(
                    before,
                    e.name().as_ref(),
                    ProfileErrorKind::NotAProfile("the document element is empty".into()),
                ));
            }
            Event::DocType(d) => collect_entities(&d.xml10_content(), entities),
            Event::End(_) | Event::Eof => {
                let what = if doc.iter().all(u8::is_ascii_whitespace) {
                    "the file is empty"
                } else {
                    "no <lcfg> element"
                };
                return Err(err(before, "", ProfileErrorKind::NotAProfile(what.into())));
            }
            _ => {}
        }
    }
}

/// A fresh reader positioned at `pos`. Used only in the prolog, where no state matters.
fn reader_at(doc: &[u8], pos: usize) -> quick_xml::Reader<&[u8]> {
    let mut r = quick_xml::Reader::from_reader(&doc[pos..]);
    r.config_mut().check_end_names = false;
    // After a skipped element the reader starts mid-document: the root's end tag is
    // unmatched for it.
    r.config_mut().allow_unmatched_ends = true;
    r
}

/// An entity whose replacement text would pass this is refused where it is used
/// (billion laughs): libxml2's limit for a text node.
pub(crate) const MAX_ENTITY_BYTES: usize = 10_000_000;

/// `<!ENTITY name "value">` declarations of the internal subset, their replacement text
/// expanded as XML says: character references and references to entities declared
/// before are replaced, and the first declaration of a name wins. One that would expand
/// past [`MAX_ENTITY_BYTES`] is kept as `None`. Parameter and external entities are not
/// supported (never read); a reference to one is an error later.
fn collect_entities(text: &str, entities: &mut HashMap<String, Option<String>>) {
    for decl in text.split("<!ENTITY").skip(1) {
        let decl = decl.trim_start();
        if decl.starts_with('%') {
            continue;
        }
        let name: String = decl.chars().take_while(|c| !c.is_whitespace()).collect();
        let rest = decl[name.len()..].trim_start();
        let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            continue;
        };
        if let Some(len) = rest[1..].find(q)
            && !entities.contains_key(&name)
        {
            let value = expand_entity_text(&rest[1..1 + len], entities);
            entities.insert(name, value);
        }
    }
}

/// Replace the character and entity references of an entity's literal value.
fn expand_entity_text(raw: &str, known: &HashMap<String, Option<String>>) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let name = &rest[1..end];
        let replaced: Option<String> = if let Some(num) = name.strip_prefix('#') {
            let code = match num.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => num.parse().ok(),
            };
            code.and_then(char::from_u32).map(String::from)
        } else if let Some(v) = quick_xml::escape::resolve_predefined_entity(name) {
            Some(v.to_string())
        } else {
            match known.get(name) {
                Some(Some(v)) => Some(v.clone()),
                Some(None) => return None,
                None => None,
            }
        };
        match replaced {
            Some(r) => out.push_str(&r),
            None => out.push_str(&rest[..=end]),
        }
        rest = &rest[end + 1..];
        if out.len() > MAX_ENTITY_BYTES {
            return None;
        }
    }
    out.push_str(rest);
    (out.len() <= MAX_ENTITY_BYTES).then_some(out)
}

fn scan_components(doc: &[u8], mut pos: usize, out: &mut Vec<Span>) -> Result<usize, ScanError> {
    let here = "lcfg/components";
    loop {
        pos = skip_ws(doc, pos);
        if pos >= doc.len() {
            return Err(err(
                pos,
                here,
                ProfileErrorKind::Truncated("<components> is not closed".into()),
            ));
        }
        if doc[pos] != b'<' {
            // Text directly inside <components> is skipped (lcfg-core).
            pos = memchr::memchr(b'<', &doc[pos..]).map_or(doc.len(), |i| pos + i);
            continue;
        }
        let start = pos;
        match markup_at(doc, pos).map_err(|k| err(pos, here, k))? {
            Markup::Other { end } => pos = end,
            Markup::End { name, end } => {
                if name != b"components" {
                    return Err(err(pos, here, mismatched(b"components", name)));
                }
                return Ok(end);
            }
            Markup::Start { name, end, empty } => {
                let name_s = String::from_utf8_lossy(name).into_owned();
                if !valid_name(&name_s) {
                    return Err(err(
                        pos,
                        here,
                        ProfileErrorKind::InvalidName {
                            what: "component",
                            name: name_s,
                        },
                    ));
                }
                if empty {
                    pos = end;
                    continue;
                }
                let close = skip_element(doc, end, name).map_err(|k| err(start, &format!("{here}/{name_s}"), k))?;
                out.push(Span {
                    name: name_s,
                    start,
                    end: close,
                });
                pos = close;
            }
        }
    }
}

/// After `</lcfg>`: the root's end tag (unless `<lcfg>` was the root), then only
/// white space, comments and processing instructions.
fn check_tail(doc: &[u8], mut pos: usize, root: Option<&[u8]>) -> Result<(), ScanError> {
    let mut open = root;
    loop {
        pos = skip_ws(doc, pos);
        if pos >= doc.len() {
            return match open {
                None => Ok(()),
                Some(r) => Err(err(
                    pos,
                    &String::from_utf8_lossy(r),
                    ProfileErrorKind::Truncated(format!("</{}> is missing", String::from_utf8_lossy(r))),
                )),
            };
        }
        if doc[pos] != b'<' {
            return Err(err(pos, "", ProfileErrorKind::Xml("text after </lcfg>".into())));
        }
        match markup_at(doc, pos).map_err(|k| err(pos, "", k))? {
            Markup::Other { end } => pos = end,
            Markup::End { name, end } if open == Some(name) => {
                open = None;
                pos = end;
            }
            _ => {
                return Err(err(
                    pos,
                    "",
                    ProfileErrorKind::Xml("unexpected markup after </lcfg>".into()),
                ));
            }
        }
    }
}

pub(crate) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
