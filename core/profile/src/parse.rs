//! Parse one component element with quick-xml into resolved resources: tag lists,
//! records, nested lists, types and context alternatives, following lcfg-core.

use std::collections::HashMap;

use indexmap::IndexMap;
use indexmap::map::Entry;
use quick_xml::events::{BytesStart, Event};

use super::context;
use super::error::ProfileErrorKind;
use super::scan::{ScanError, Span, valid_name};
use super::tree::{Component, Resource, ResourceType};
use super::values::{Template, canonical, parse_templates, parse_type, substitute};

/// One occurrence of a resource, before context alternatives are resolved.
struct Occurrence {
    res: Resource,
    priority: i32,
    offset: usize,
}

#[derive(Default)]
struct Attrs {
    name: Option<String>,
    template: Option<String>,
    context: Option<String>,
    derivation: Option<String>,
    rtype: Option<String>,
}

/// The context a child inherits from its list: the combined expression and its priority.
type BaseContext = Option<(String, i32)>;

struct Parser<'a> {
    reader: quick_xml::Reader<&'a [u8]>,
    base: usize,
    comp: &'a str,
    entities: &'a HashMap<String, Option<String>>,
    /// Prefixes bound to the LCFG namespace.
    prefixes: &'a [Vec<u8>],
    occurrences: Vec<Occurrence>,
    /// Bytes that declared entities may still add, against amplification.
    entity_budget: usize,
    /// Resource names added so far (a repeated child adds no second tag).
    added: std::collections::HashSet<String>,
}

/// The deepest nesting read inside a component, as libxml2 refuses more than 256 levels.
/// The parser recurses once per level, so this also bounds its stack.
pub const MAX_DEPTH: usize = 256;

/// The longest single value: 10 MB, libxml2's limit for a text node.
pub const MAX_VALUE_BYTES: usize = 10_000_000;

/// Declared entities may add at most this many times the component's own size (libxml2's
/// default amplification factor), plus a small allowance.
const ENTITY_AMPLIFICATION: usize = 5;
const ENTITY_ALLOWANCE: usize = 64 << 10;

/// Parse the component element at `span` of `doc`.
pub(crate) fn parse_component(
    doc: &[u8],
    span: &Span,
    entities: &HashMap<String, Option<String>>,
    prefixes: &[Vec<u8>],
) -> Result<Component, ScanError> {
    let mut reader = quick_xml::Reader::from_reader(&doc[span.start..span.end]);
    reader.config_mut().check_end_names = true;
    let mut p = Parser {
        reader,
        base: span.start,
        comp: &span.name,
        entities,
        prefixes,
        occurrences: Vec::new(),
        entity_budget: (span.end - span.start) * ENTITY_AMPLIFICATION + ENTITY_ALLOWANCE,
        added: Default::default(),
    };
    p.component()?;
    p.resolve()
}

impl<'a> Parser<'a> {
    fn pos(&self) -> usize {
        self.base + self.reader.buffer_position() as usize
    }

    fn fail(&self, offset: usize, element: &str, kind: ProfileErrorKind) -> ScanError {
        ScanError {
            offset,
            element: format!("lcfg/components/{}{element}", self.comp),
            kind: Box::new(kind),
        }
    }

    fn resource_error(&self, offset: usize, resource: &str, message: impl Into<String>) -> ScanError {
        self.fail(
            offset,
            &format!("/{resource}"),
            ProfileErrorKind::Resource {
                component: self.comp.to_string(),
                resource: resource.to_string(),
                message: message.into(),
            },
        )
    }

    fn next(&mut self) -> Result<Event<'a>, ScanError> {
        self.reader.read_event().map_err(|e| {
            let at = self.base + self.reader.error_position() as usize;
            ScanError {
                offset: at,
                element: format!("lcfg/components/{}", self.comp),
                kind: Box::new(xml_error(e)),
            }
        })
    }

    fn component(&mut self) -> Result<(), ScanError> {
        // The span starts with the component's own start tag.
        match self.next()? {
            Event::Start(_) => {}
            _ => {
                return Err(self.fail(
                    self.base,
                    "",
                    ProfileErrorKind::Xml("component start tag expected".into()),
                ));
            }
        }
        loop {
            let at = self.pos();
            match self.next()? {
                Event::Start(e) => {
                    self.resource(&e, at, false, None, &[], None, &[])?;
                }
                Event::Empty(e) => {
                    self.resource(&e, at, true, None, &[], None, &[])?;
                }
                Event::End(_) => return Ok(()),
                Event::Eof => {
                    return Err(self.fail(at, "", ProfileErrorKind::Truncated("component is not closed".into())));
                }
                _ => {}
            }
        }
    }

    fn attrs(&self, e: &BytesStart, at: usize, element: &str) -> Result<Attrs, ScanError> {
        let mut a = Attrs::default();
        for attr in e.attributes() {
            let attr = attr.map_err(|err| self.fail(at, element, ProfileErrorKind::Xml(err.to_string())))?;
            let key: &[u8] = attr.key.as_ref().as_bytes();
            // An attribute is LCFG's when its prefix is bound to the LCFG namespace (an
            // undeclared `cfg:` is not: lcfg-core does not see it).
            let Some(i) = memchr::memchr(b':', key) else { continue };
            let (prefix, local) = (&key[..i], &key[i + 1..]);
            if !self.prefixes.iter().any(|p| p.as_slice() == prefix) {
                continue;
            }
            let slot = match local {
                b"name" => &mut a.name,
                b"template" => &mut a.template,
                b"context" => &mut a.context,
                b"derivation" => &mut a.derivation,
                b"type" => &mut a.rtype,
                _ => continue,
            };
            if slot.is_some() && key.starts_with(b"cfg:") || slot.is_none() {
                // Internal entities may be used in attributes too (lcfg-core).
                let value = attr
                    // Our entity values are expanded already: one whose text still holds
                    // `&` (a reference it could not expand, such as itself) is refused
                    // here, as quick-xml would expand it again, and again (the fuzzer
                    // found an 8^8-fold growth).
                    .normalized_value_with(quick_xml::XmlVersion::Implicit1_0, 1, |name| {
                        quick_xml::escape::resolve_predefined_entity(name).or_else(|| {
                            self.entities
                                .get(name)
                                .and_then(|v| v.as_deref())
                                .filter(|v| !v.contains('&'))
                        })
                    })
                    .map_err(|err| self.fail(at, element, ProfileErrorKind::Xml(err.to_string())))?;
                *slot = Some(value.into_owned());
            }
        }
        Ok(a)
    }

    /// Process one resource element. Returns its tag when it carries `cfg:name`.
    #[allow(clippy::too_many_arguments)]
    fn resource(
        &mut self,
        e: &BytesStart,
        at: usize,
        empty: bool,
        templates: Option<&[Template]>,
        tags: &[String],
        base: BaseContext,
        parent_path: &[String],
    ) -> Result<Option<String>, ScanError> {
        let local = e.name().as_ref().to_string();
        if parent_path.len() >= MAX_DEPTH {
            return Err(self.too_deep(at, &local));
        }
        if !valid_name(&local) {
            return Err(self.fail(
                at,
                &format!("/{local}"),
                ProfileErrorKind::InvalidName {
                    what: "resource",
                    name: local,
                },
            ));
        }
        let attrs = self.attrs(e, at, &format!("/{local}"))?;
        let tag = match &attrs.name {
            Some(raw) => Some(self.tag(raw, at, &local)?),
            None => None,
        };
        let mut tags2 = tags.to_vec();
        let mut path = parent_path.to_vec();
        if let Some(t) = &tag {
            tags2.push(t.clone());
            if templates.is_some() {
                path.push(t.clone());
            }
        }
        path.push(local.clone());
        let flat = match templates {
            Some(ts) => {
                let Some(t) = ts.iter().find(|t| t.field == local) else {
                    if empty && tag.is_none() {
                        // An empty element with no template inside a list is ignored.
                        return Ok(None);
                    }
                    return Err(self.resource_error(at, &local, format!("no template for field '{local}'")));
                };
                substitute(t, &tags2).map_err(|m| self.resource_error(at, &local, m))?
            }
            None => local.clone(),
        };

        let (context, priority) = self.context(&attrs, base, at, &flat)?;
        let rtype = match attrs.rtype.as_deref().map(str::trim) {
            // An empty cfg:type means string (lcfg-core).
            None | Some("") => ResourceType::String,
            Some(t) => parse_type(t).ok_or_else(|| self.resource_error(at, &flat, format!("unknown type '{t}'")))?,
        };
        let own_templates = match &attrs.template {
            // An empty cfg:template is no template (lcfg-core).
            Some(t) if !t.trim().is_empty() => Some(parse_templates(t).map_err(|m| self.resource_error(at, &flat, m))?),
            _ => None,
        };
        let is_list = own_templates.is_some() || rtype == ResourceType::List;
        if empty {
            // `<x/>` creates no resource, and adds no tag to its list (lcfg-core).
            return Ok(None);
        }

        let child_base = context.clone().map(|c| (c, priority));
        let mut text = String::new();
        let mut in_text = false;
        let mut in_cdata = false;
        let mut had_records = false;
        let mut child_tags: Vec<String> = Vec::new();
        loop {
            let cat = self.pos();
            match self.next()? {
                Event::Text(t) => {
                    in_cdata = false;
                    if !in_text {
                        text.clear();
                        in_text = true;
                    }
                    text.push_str(&t.xml10_content());
                    if text.len() > MAX_VALUE_BYTES {
                        return Err(self.value_too_long(cat, &flat));
                    }
                }
                Event::GeneralRef(r) => {
                    in_cdata = false;
                    if !in_text {
                        text.clear();
                        in_text = true;
                    }
                    let resolved = self.entity(&r).map_err(|m| self.resource_error(cat, &flat, m))?;
                    text.push_str(&resolved);
                    if text.len() > MAX_VALUE_BYTES {
                        return Err(self.value_too_long(cat, &flat));
                    }
                }
                Event::CData(c) => {
                    // lcfg-core keeps the last text node; a CDATA section is a node of its
                    // own, but adjacent sections are one node (libxml2 merges them).
                    if in_cdata {
                        text.push_str(&c.xml10_content());
                    } else {
                        text = c.xml10_content().into_owned();
                    }
                    in_text = false;
                    in_cdata = true;
                    if text.len() > MAX_VALUE_BYTES {
                        return Err(self.value_too_long(cat, &flat));
                    }
                }
                ev @ (Event::Start(_) | Event::Empty(_)) => {
                    in_text = false;
                    in_cdata = false;
                    let (child, child_empty) = match &ev {
                        Event::Start(c) => (c, false),
                        Event::Empty(c) => (c, true),
                        _ => unreachable!("matched Start or Empty above"),
                    };
                    let element = if child.name().as_ref().ends_with("_RECORD") {
                        had_records = true;
                        Self::record
                    } else {
                        Self::resource
                    };
                    let child_tag = element(
                        self,
                        child,
                        cat,
                        child_empty,
                        own_templates.as_deref(),
                        &tags2,
                        child_base.clone(),
                        &path,
                    )?;
                    if let Some(t) = child_tag {
                        child_tags.push(t);
                    }
                }
                Event::End(_) => break,
                Event::Eof => {
                    return Err(self.fail(
                        cat,
                        &format!("/{local}"),
                        ProfileErrorKind::Truncated("element is not closed".into()),
                    ));
                }
                _ => {
                    in_text = false;
                    in_cdata = false;
                }
            }
        }
        // A resource with `_RECORD` children takes their tags even without a template.
        let is_list = is_list || had_records;
        let value = if is_list {
            child_tags.join(" ")
        } else {
            canonical(rtype, text).map_err(|m| self.resource_error(at, &flat, m))?
        };
        // A child adds its tag only when its resource is active and newly added (a
        // repeated identical child adds it once).
        let newly = priority >= 0 && self.added.insert(flat.clone());
        if priority >= 0 {
            let rtype = if is_list { ResourceType::List } else { rtype };
            self.occurrences.push(Occurrence {
                res: Resource {
                    name: flat,
                    value,
                    rtype,
                    derivation: attrs.derivation,
                    path,
                },
                priority,
                offset: at,
            });
        }
        Ok(tag.filter(|_| newly))
    }

    /// A `*_RECORD` element: its tag names one entry of the enclosing list.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        e: &BytesStart,
        at: usize,
        empty: bool,
        templates: Option<&[Template]>,
        tags: &[String],
        base: BaseContext,
        parent_path: &[String],
    ) -> Result<Option<String>, ScanError> {
        let local = e.name().as_ref().to_string();
        if parent_path.len() >= MAX_DEPTH {
            return Err(self.too_deep(at, &local));
        }
        let attrs = self.attrs(e, at, &format!("/{local}"))?;
        let Some(raw) = attrs.name else {
            return Err(self.resource_error(
                at,
                &local,
                format!("missing cfg:name attribute for '{local}' record node"),
            ));
        };
        let tag = self.tag(&raw, at, &local)?;
        if empty {
            return Ok(Some(tag));
        }
        let mut tags2 = tags.to_vec();
        tags2.push(tag.clone());
        let mut path = parent_path.to_vec();
        path.push(tag.clone());
        // A record's own cfg:context is ignored, as lcfg-core does.
        loop {
            let cat = self.pos();
            match self.next()? {
                Event::Start(c) => {
                    self.resource(&c, cat, false, templates, &tags2, base.clone(), &path)?;
                }
                Event::Empty(c) => {
                    self.resource(&c, cat, true, templates, &tags2, base.clone(), &path)?;
                }
                Event::End(_) => return Ok(Some(tag)),
                Event::Eof => {
                    return Err(self.fail(
                        cat,
                        &format!("/{local}"),
                        ProfileErrorKind::Truncated("record is not closed".into()),
                    ));
                }
                _ => {}
            }
        }
    }

    /// Unescape a `cfg:name`: the server prefixes one `_`, stripped when the value has
    /// at least two characters.
    fn tag(&self, raw: &str, at: usize, element: &str) -> Result<String, ScanError> {
        // cfg:name is trimmed (lcfg-core).
        let raw = raw.trim();
        let tag = if raw.len() >= 2 {
            raw.strip_prefix('_').unwrap_or(raw)
        } else {
            raw
        };
        if tag.is_empty() || !tag.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
            return Err(self.resource_error(at, element, format!("invalid tag name '{tag}'")));
        }
        Ok(tag.to_string())
    }

    fn context(
        &self,
        attrs: &Attrs,
        base: BaseContext,
        at: usize,
        flat: &str,
    ) -> Result<(Option<String>, i32), ScanError> {
        let own = attrs.context.as_deref().map(str::trim).filter(|c| !c.is_empty());
        let own = match own {
            Some(expr) => Some((
                expr.to_string(),
                context::priority(expr).map_err(|source| {
                    self.fail(
                        at,
                        &format!("/{flat}"),
                        ProfileErrorKind::Context {
                            component: self.comp.to_string(),
                            resource: flat.to_string(),
                            source,
                        },
                    )
                })?,
            )),
            None => None,
        };
        Ok(match (base, own) {
            (None, None) => (None, 0),
            (Some((c, p)), None) | (None, Some((c, p))) => (Some(c), p),
            (Some((bc, bp)), Some((oc, op))) => {
                let (first, second) = if bc <= oc { (bc, oc) } else { (oc, bc) };
                (Some(format!("({first}) & ({second})")), context::and(bp, op))
            }
        })
    }

    fn entity(&mut self, r: &quick_xml::events::BytesRef) -> Result<String, String> {
        if let Some(c) = r.resolve_char_ref().map_err(|e| e.to_string())? {
            return Ok(c.to_string());
        }
        let name: &str = r;
        if let Some(v) = quick_xml::escape::resolve_predefined_entity(name) {
            return Ok(v.to_string());
        }
        let value = self
            .entities
            .get(name)
            .ok_or_else(|| format!("unknown entity '&{name};'"))?
            .as_ref()
            .ok_or_else(|| format!("entity '&{name};' expands past {MAX_VALUE_BYTES} bytes (entity amplification)"))?;
        self.entity_budget = self.entity_budget.checked_sub(value.len()).ok_or_else(|| {
            format!(
                "entity '&{name};' expands the component past {ENTITY_AMPLIFICATION} times its size (entity amplification)"
            )
        })?;
        Ok(value.clone())
    }

    fn too_deep(&self, at: usize, local: &str) -> ScanError {
        self.fail(
            at,
            &format!("/{local}"),
            ProfileErrorKind::Limit(format!("elements nest more than {MAX_DEPTH} levels deep")),
        )
    }

    fn value_too_long(&self, at: usize, resource: &str) -> ScanError {
        self.resource_error(
            at,
            resource,
            format!("the value is longer than {MAX_VALUE_BYTES} bytes"),
        )
    }

    /// Resolve context alternatives: the highest priority wins; equal priority with a
    /// different value or context is a conflict.
    fn resolve(self) -> Result<Component, ScanError> {
        let mut winners: IndexMap<String, Occurrence> = IndexMap::new();
        for occ in self.occurrences {
            match winners.entry(occ.res.name.clone()) {
                Entry::Vacant(v) => {
                    v.insert(occ);
                }
                Entry::Occupied(mut o) => {
                    let w = o.get();
                    if occ.priority > w.priority {
                        o.insert(occ);
                    } else if occ.priority == w.priority && occ.res.value != w.res.value {
                        // The same value at equal priority, under any contexts, is merged
                        // (lcfg-core).
                        return Err(ScanError {
                            offset: occ.offset,
                            element: format!("lcfg/components/{}/{}", self.comp, occ.res.path.join("/")),
                            kind: Box::new(ProfileErrorKind::Conflict {
                                component: self.comp.to_string(),
                                resource: occ.res.name.clone(),
                                first: w.res.value.clone(),
                                second: occ.res.value,
                                priority: occ.priority,
                            }),
                        });
                    }
                }
            }
        }
        Ok(Component::from_resources(
            self.comp,
            winners.into_values().map(|o| o.res).collect(),
        ))
    }
}

fn xml_error(e: quick_xml::Error) -> ProfileErrorKind {
    match e {
        quick_xml::Error::Syntax(s) => ProfileErrorKind::Truncated(s.to_string()),
        other => ProfileErrorKind::Xml(other.to_string()),
    }
}
