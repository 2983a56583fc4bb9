//! The skeleton scan: finds `<lcfg>`, its metadata and the byte span of every component,
//! and passes over everything else (the package list, unmonitored components) without
//! tokenising it.
//!
//! Why skipping is safe: in XML a raw `<` may not appear in text or in attribute values.
//! So, in a region that holds no `<!` (comment, CDATA, DOCTYPE) and no `<?` (processing
//! instruction), every `</name` is a real end tag, and if the region also holds no start
//! tag `<name`, the first `</name>` closes the element we are skipping. When a region fails
//! that test we fall back to a careful scan that knows about comments, CDATA and quotes.
//! Skipped regions are checked for structure only, not for full well-formedness; the
//! components that are parsed go through quick-xml in full.

use std::collections::HashMap;

use memchr::memmem;
use quick_xml::events::Event;

use super::error::{ProfileError, ProfileErrorKind};

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

type ScanResult<T> = Result<T, ProfileErrorKind>;

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

fn mismatched(expected: &[u8], found: &[u8]) -> ProfileErrorKind {
    ProfileErrorKind::Xml(format!(
        "expected </{}>, found </{}>",
        String::from_utf8_lossy(expected),
        String::from_utf8_lossy(found)
    ))
}

fn skip_ws(doc: &[u8], mut pos: usize) -> usize {
    while pos < doc.len() && doc[pos].is_ascii_whitespace() {
        pos += 1;
    }
    pos
}

enum Markup<'a> {
    /// A start tag; `end` is just after its `>`.
    Start {
        name: &'a [u8],
        end: usize,
        empty: bool,
    },
    End {
        name: &'a [u8],
        end: usize,
    },
    /// Comment, CDATA or processing instruction.
    Other {
        end: usize,
    },
}

fn find_from(doc: &[u8], from: usize, pat: &[u8]) -> ScanResult<usize> {
    memmem::find(&doc[from..], pat)
        .map(|i| from + i + pat.len())
        .ok_or_else(|| ProfileErrorKind::Truncated(format!("missing {:?}", String::from_utf8_lossy(pat))))
}

fn name_end(doc: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < doc.len() && !matches!(doc[i], b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/') {
        i += 1;
    }
    i
}

/// Classify the markup that starts at `doc[pos] == b'<'`.
fn markup_at(doc: &[u8], pos: usize) -> ScanResult<Markup<'_>> {
    let rest = &doc[pos..];
    if rest.starts_with(b"<!--") {
        return Ok(Markup::Other {
            end: find_from(doc, pos + 4, b"-->")?,
        });
    }
    if rest.starts_with(b"<![CDATA[") {
        return Ok(Markup::Other {
            end: find_from(doc, pos + 9, b"]]>")?,
        });
    }
    if rest.starts_with(b"<?") {
        return Ok(Markup::Other {
            end: find_from(doc, pos + 2, b"?>")?,
        });
    }
    if rest.starts_with(b"<!") {
        return Err(ProfileErrorKind::Xml(
            "unexpected declaration inside the document".into(),
        ));
    }
    if rest.starts_with(b"</") {
        let ne = name_end(doc, pos + 2);
        let gt = skip_ws(doc, ne);
        if gt >= doc.len() {
            return Err(ProfileErrorKind::Truncated("end tag is not closed".into()));
        }
        if doc[gt] != b'>' {
            return Err(ProfileErrorKind::Xml("malformed end tag".into()));
        }
        return Ok(Markup::End {
            name: &doc[pos + 2..ne],
            end: gt + 1,
        });
    }
    let ne = name_end(doc, pos + 1);
    if ne == pos + 1 {
        return Err(ProfileErrorKind::Xml("malformed start tag".into()));
    }
    // Find the closing '>' outside quoted attribute values.
    let mut i = ne;
    loop {
        let Some(off) = memchr::memchr3(b'>', b'"', b'\'', &doc[i..]) else {
            return Err(ProfileErrorKind::Truncated("start tag is not closed".into()));
        };
        let at = i + off;
        match doc[at] {
            b'>' => {
                let empty = doc[at - 1] == b'/';
                return Ok(Markup::Start {
                    name: &doc[pos + 1..ne],
                    end: at + 1,
                    empty,
                });
            }
            q => {
                let Some(close) = memchr::memchr(q, &doc[at + 1..]) else {
                    return Err(ProfileErrorKind::Truncated("attribute value is not closed".into()));
                };
                i = at + 1 + close + 1;
            }
        }
    }
}

/// Skip the content of element `name` whose start tag ends at `from`; returns the
/// position just after its end tag.
pub(crate) fn skip_element(doc: &[u8], from: usize, name: &[u8]) -> ScanResult<usize> {
    // Found by the fuzzer: an element without a name (`< lcfg>`) would be searched for
    // as the empty string.
    if name.is_empty()
        || name
            .iter()
            .any(|b| b.is_ascii_whitespace() || matches!(b, b'<' | b'>' | b'/'))
    {
        return Err(ProfileErrorKind::Xml(format!(
            "invalid element name {:?}",
            String::from_utf8_lossy(name)
        )));
    }
    if from > doc.len() {
        return Err(ProfileErrorKind::Truncated("element is not closed".into()));
    }
    if let Some(end) = skip_fast(doc, from, name) {
        return Ok(end);
    }
    skip_careful(doc, from, name)
}

/// A finder for an element's name. On x86-64 its packed-pair filter compares the name's
/// first and last bytes at their distance: memmem's own choice of "rare" bytes can fall on
/// bytes that a longer, very frequent name shares (`package`, 2,000 times in a package
/// list, when looking for `packages`), and then every entry is a candidate to verify.
struct NameFinder {
    needle: Vec<u8>,
    memmem: memmem::Finder<'static>,
    #[cfg(target_arch = "x86_64")]
    pair: Option<memchr::arch::x86_64::avx2::packedpair::Finder>,
}

impl NameFinder {
    fn new(needle: &[u8]) -> Self {
        #[cfg(target_arch = "x86_64")]
        let pair = needle
            .len()
            .checked_sub(1)
            .and_then(|last| u8::try_from(last).ok())
            .filter(|last| *last > 0)
            .and_then(|last| memchr::arch::all::packedpair::Pair::with_indices(needle, 0, last))
            .and_then(|pair| memchr::arch::x86_64::avx2::packedpair::Finder::with_pair(needle, pair));
        NameFinder {
            needle: needle.to_vec(),
            memmem: memmem::Finder::new(needle).into_owned(),
            #[cfg(target_arch = "x86_64")]
            pair,
        }
    }

    fn find(&self, haystack: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if let Some(pair) = &self.pair
            && haystack.len() >= pair.min_haystack_len()
        {
            return pair.find(haystack, &self.needle);
        }
        self.memmem.find(haystack)
    }
}

/// Name finders, built once per element name and thread (building one costs more than
/// running it over a small component).
fn with_finder<T>(name: &[u8], f: impl FnOnce(&NameFinder) -> T) -> T {
    thread_local! {
        static FINDERS: std::cell::RefCell<HashMap<Vec<u8>, NameFinder>> =
            std::cell::RefCell::new(HashMap::new());
    }
    FINDERS.with(|cell| {
        let mut map = cell.borrow_mut();
        if !map.contains_key(name) {
            map.insert(name.to_vec(), NameFinder::new(name));
        }
        // Inserted just above when missing.
        f(&map[name])
    })
}

/// True when `region` holds `<!` or `<?` (a comment, CDATA section, declaration or
/// processing instruction): one SIMD pass for the rare `!` and `?` bytes.
fn has_special_markup(region: &[u8]) -> bool {
    memchr::memchr2_iter(b'!', b'?', region).any(|i| i > 0 && region[i - 1] == b'<')
}

/// The memmem fast path; `None` when the region needs the careful scan. One memmem pass
/// for the element's name finds both its end tag (`</name`) and any nested start tag of
/// the same name (`<name`, which sends the region to the careful scan); one `memchr2`
/// pass then checks the region for `<!` and `<?`.
fn skip_fast(doc: &[u8], from: usize, name: &[u8]) -> Option<usize> {
    let delimiter = |b: Option<&u8>| matches!(b, None | Some(b'>' | b'/' | b' ' | b'\t' | b'\r' | b'\n'));
    let (cand, end) = with_finder(name, |f| {
        let mut search = from;
        while let Some(i) = f.find(&doc[search..]) {
            let at = search + i;
            search = at + 1;
            let after = at + name.len();
            if at >= from + 2 && doc[at - 2] == b'<' && doc[at - 1] == b'/' {
                match doc.get(after) {
                    Some(b'>') => return Some((at - 2, after + 1)),
                    Some(c) if c.is_ascii_whitespace() => {
                        let gt = skip_ws(doc, after);
                        return (doc.get(gt) == Some(&b'>')).then_some((at - 2, gt + 1));
                    }
                    // A longer name (`</packagesx`): not this element's end tag.
                    Some(_) => continue,
                    None => return None,
                }
            }
            if at > from && doc[at - 1] == b'<' && delimiter(doc.get(after)) {
                // A nested element of the same name would make the first end tag its own.
                return None;
            }
        }
        None
    })?;
    if has_special_markup(&doc[from..cand]) {
        return None;
    }
    Some(end)
}

/// Depth-counting scan that understands comments, CDATA, PIs and quoted attributes.
fn skip_careful(doc: &[u8], from: usize, name: &[u8]) -> ScanResult<usize> {
    let mut depth = 1usize;
    let mut pos = from;
    loop {
        let Some(off) = memchr::memchr(b'<', &doc[pos..]) else {
            return Err(ProfileErrorKind::Truncated(format!(
                "<{}> is not closed",
                String::from_utf8_lossy(name)
            )));
        };
        pos += off;
        match markup_at(doc, pos)? {
            Markup::Other { end } => pos = end,
            Markup::Start { end, empty, .. } => {
                if !empty {
                    depth += 1;
                }
                pos = end;
            }
            Markup::End { name: n, end } => {
                depth -= 1;
                if depth == 0 {
                    if n != name {
                        return Err(mismatched(name, n));
                    }
                    return Ok(end);
                }
                pos = end;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_and_careful_skips_agree() {
        let doc = b"<a x='>'><b>t</b><a>nested</a></a>tail";
        assert_eq!(skip_element(doc, 9, b"a").unwrap(), doc.len() - 4);
        let doc = b"<a><!-- </a> --><![CDATA[</a>]]></a>tail";
        assert_eq!(skip_element(doc, 3, b"a").unwrap(), 36);
        let doc = b"<p><package><name>x</name></package></packages >";
        assert_eq!(skip_element(doc, 3, b"packages").unwrap(), doc.len());
        // The name in text, in a longer name, and as a longer end tag: none of them count.
        let doc = b"<p>packages <packagesx/><sub><subpackages/></sub></packagesx></packages>";
        assert_eq!(skip_fast(doc, 3, b"packages"), Some(doc.len()));
        // A nested start tag of the same name sends the region to the careful scan.
        let doc = b"<a><a >x</a></a>";
        assert_eq!(skip_fast(doc, 3, b"a"), None);
        assert_eq!(skip_element(doc, 3, b"a").unwrap(), doc.len());
    }

    #[test]
    fn truncated_region_is_an_error() {
        let doc = b"<a><b>text";
        assert!(skip_element(doc, 3, b"a").is_err());
    }
}
