//! Markup classification and element skipping for the skeleton scan.
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

use super::error::ProfileErrorKind;

pub(crate) type ScanResult<T> = Result<T, ProfileErrorKind>;

pub(crate) fn mismatched(expected: &[u8], found: &[u8]) -> ProfileErrorKind {
    ProfileErrorKind::Xml(format!(
        "expected </{}>, found </{}>",
        String::from_utf8_lossy(expected),
        String::from_utf8_lossy(found)
    ))
}

pub(crate) fn skip_ws(doc: &[u8], mut pos: usize) -> usize {
    while pos < doc.len() && doc[pos].is_ascii_whitespace() {
        pos += 1;
    }
    pos
}

pub(crate) enum Markup<'a> {
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
pub(crate) fn markup_at(doc: &[u8], pos: usize) -> ScanResult<Markup<'_>> {
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
