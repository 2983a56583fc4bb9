//! What lcfg-core makes of a resource's attributes and text: tag-list templates and the
//! substitution of tags into them, resource types and canonical values.

use super::tree::ResourceType;

/// One template of a tag list: `vhost_alias_$_$` has field `vhost_alias` and 2 tags.
pub(crate) struct Template {
    text: String,
    pub(crate) field: String,
    dollars: usize,
}

pub(crate) fn parse_templates(attr: &str) -> Result<Vec<Template>, String> {
    attr.split_whitespace()
        .map(|t| {
            let Some(i) = t.find("_$") else {
                return Err(format!("template '{t}' has no '_$' placeholder"));
            };
            Ok(Template {
                text: t.to_string(),
                field: t[..i].to_string(),
                dollars: t.matches('$').count(),
            })
        })
        .collect()
}

/// Substitute tags into a template, working from the tail: the last `$` gets the
/// innermost (last) tag, as lcfg-core does.
pub(crate) fn substitute(t: &Template, tags: &[String]) -> Result<String, String> {
    if t.dollars > tags.len() {
        return Err(format!("insufficient tags for template '{}'", t.text));
    }
    let mut used = tags[tags.len() - t.dollars..].iter();
    let mut out = String::with_capacity(t.text.len() + 16);
    for c in t.text.chars() {
        match c {
            // The count of '$' equals the number of tags taken, so `used` has one here.
            '$' => out.push_str(used.next().map(String::as_str).unwrap_or_default()),
            c => out.push(c),
        }
    }
    Ok(out)
}

pub(crate) fn parse_type(t: &str) -> Option<ResourceType> {
    let t = t.trim().trim_start_matches('%');
    [
        ("integer", ResourceType::Integer),
        ("boolean", ResourceType::Boolean),
        ("list", ResourceType::List),
        ("publish", ResourceType::Publish),
        ("subscribe", ResourceType::Subscribe),
        ("string", ResourceType::String),
    ]
    .into_iter()
    .find(|(word, _)| t.starts_with(word))
    .map(|(_, ty)| ty)
}

pub(crate) fn canonical(rtype: ResourceType, value: String) -> Result<String, String> {
    match rtype {
        ResourceType::Boolean => match value.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" => Ok("yes".into()),
            "no" | "false" | "off" | "0" | "" => Ok(String::new()),
            _ => Err(format!("invalid value '{value}' for boolean resource")),
        },
        ResourceType::Integer => {
            let digits = value.strip_prefix('-').unwrap_or(&value);
            let ok = value.is_empty()
                || (!digits.is_empty()
                    && digits.bytes().all(|c| c.is_ascii_digit())
                    && (digits == "0" || !digits.starts_with('0')));
            if ok {
                Ok(value)
            } else {
                Err(format!("invalid value '{value}' for integer resource"))
            }
        }
        _ => Ok(value),
    }
}
