//! The component tree that translators read.
//!
//! Every active resource of a component is kept twice over, without copying: as a flat
//! LCFG resource (`vhost_alias_www_bare`) and as a node in the tree that the tag lists
//! describe (`vhosts.www.vhost_aliases.bare.vhost_alias`).

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// The declared LCFG type of a resource (`cfg:type`); string when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceType {
    /// `string` (or no `cfg:type`).
    String,
    /// `integer`.
    Integer,
    /// `boolean`.
    Boolean,
    /// `list`: a tag list.
    List,
    /// `publish`: a spanning map resource published to other machines.
    Publish,
    /// `subscribe`: a spanning map resource subscribed to.
    Subscribe,
}

/// One active resource, after context resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// The flat LCFG name, such as `slave_host_kdc2`.
    pub name: String,
    /// The value. Booleans are canonical (`yes` or empty); a tag list holds its tags.
    pub value: String,
    /// Its declared type.
    pub rtype: ResourceType,
    /// `cfg:derivation`, kept as the server wrote it.
    pub derivation: Option<String>,
    /// Position in the tree, such as `["slaves", "kdc2", "slave_host"]`.
    pub path: Vec<String>,
}

/// A node of the component tree: a resource, a list, or a list entry (tag).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    children: IndexMap<String, Node>,
    /// Index into [`Component::resources`] when this node is a resource.
    resource: Option<usize>,
}

/// The answer of [`Component::lookup`]: a leaf's value or an internal node's children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// A resource's value.
    Value(&'a str),
    /// The names of an internal node's children, in document order.
    Children(Vec<&'a str>),
}

/// One component of one machine's profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Component {
    name: String,
    resources: Vec<Resource>,
    by_name: IndexMap<String, usize>,
    root: Node,
}

impl Component {
    pub(crate) fn new(name: &str) -> Self {
        Component {
            name: name.to_string(),
            ..Component::default()
        }
    }

    /// Build a component from resolved resources, in document order.
    pub(crate) fn from_resources(name: &str, resources: Vec<Resource>) -> Self {
        let mut comp = Component::new(name);
        for res in resources {
            let idx = comp.resources.len();
            let mut node = &mut comp.root;
            for step in &res.path {
                node = node.children.entry(step.clone()).or_default();
            }
            node.resource = Some(idx);
            comp.by_name.insert(res.name.clone(), idx);
            comp.resources.push(res);
        }
        comp
    }

    /// Rebuild a component from its name and resolved resources (as sent to a plugin).
    pub fn from_parts(name: &str, resources: Vec<Resource>) -> Self {
        Component::from_resources(name, resources)
    }

    /// The component's name, such as `kerberos`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every active resource in document order, in flat form.
    pub fn resources(&self) -> &[Resource] {
        &self.resources
    }

    /// True when the profile has no active resource for this component.
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// A resource by its flat LCFG name (`vhost_alias_www_bare`).
    pub fn resource(&self, flat_name: &str) -> Option<&Resource> {
        self.by_name.get(flat_name).map(|&i| &self.resources[i])
    }

    /// The value of a resource by flat name; `None` when it is absent.
    pub fn get(&self, flat_name: &str) -> Option<&str> {
        self.resource(flat_name).map(|r| r.value.as_str())
    }

    /// The value of a resource by flat name, trimmed; `None` when absent or blank.
    pub fn get_nonempty(&self, flat_name: &str) -> Option<&str> {
        self.get(flat_name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// A component of plain top-level resources, for tests and tools:
    /// `Component::from_flat("kerberos", &[("realm", "EXAMPLE.ORG")])`.
    pub fn from_flat(name: &str, pairs: &[(&str, &str)]) -> Self {
        let resources = pairs
            .iter()
            .map(|(k, v)| Resource {
                name: k.to_string(),
                value: v.to_string(),
                rtype: ResourceType::String,
                derivation: None,
                path: vec![k.to_string()],
            })
            .collect();
        Component::from_resources(name, resources)
    }

    /// A top-level child node (`k('slaves')` in the Perl guide).
    pub fn child(&self, name: &str) -> Option<NodeRef<'_>> {
        self.root.children.get(name).map(|node| NodeRef { comp: self, node })
    }

    /// The top-level nodes, in document order.
    pub fn children(&self) -> impl Iterator<Item = (&str, NodeRef<'_>)> {
        self.root
            .children
            .iter()
            .map(move |(k, node)| (k.as_str(), NodeRef { comp: self, node }))
    }

    /// Look up a dotted tree path (`vhosts.www.vhost_aliases.bare.vhost_alias`) or, when
    /// no tree path matches, a flat LCFG name (`vhost_alias_www_bare`).
    ///
    /// A leaf gives its value; an internal node, or any list, gives its children's names.
    pub fn lookup(&self, path: &str) -> Option<Lookup<'_>> {
        let mut node = &self.root;
        let mut found = true;
        for step in path.split('.') {
            match node.children.get(step) {
                Some(next) => node = next,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if found && !path.is_empty() {
            return Some(NodeRef { comp: self, node }.as_lookup());
        }
        let res = self.resource(path)?;
        let mut node = &self.root;
        for step in &res.path {
            node = &node.children[step.as_str()];
        }
        Some(NodeRef { comp: self, node }.as_lookup())
    }
}

/// A node together with the component it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct NodeRef<'a> {
    comp: &'a Component,
    node: &'a Node,
}

impl<'a> NodeRef<'a> {
    /// The resource at this node, when the node is a resource or a list.
    pub fn resource(&self) -> Option<&'a Resource> {
        self.node.resource.map(|i| &self.comp.resources[i])
    }

    /// The value of this node (`d` in the Perl guide); `None` for a tag node.
    pub fn value(&self) -> Option<&'a str> {
        self.resource().map(|r| r.value.as_str())
    }

    /// A child node (`k(name)` in the Perl guide).
    pub fn child(&self, name: &str) -> Option<NodeRef<'a>> {
        self.node
            .children
            .get(name)
            .map(|node| NodeRef { comp: self.comp, node })
    }

    /// The children, in document order (`kids` in the Perl guide).
    pub fn children(&self) -> impl Iterator<Item = (&'a str, NodeRef<'a>)> + 'a {
        let comp = self.comp;
        self.node
            .children
            .iter()
            .map(move |(k, node)| (k.as_str(), NodeRef { comp, node }))
    }

    /// The value of a child leaf, `None` when absent.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.child(name).and_then(|c| c.value())
    }

    fn is_list(&self) -> bool {
        self.resource().is_some_and(|r| r.rtype == ResourceType::List)
    }

    fn as_lookup(&self) -> Lookup<'a> {
        if self.is_list() || !self.node.children.is_empty() || self.node.resource.is_none() {
            Lookup::Children(self.node.children.keys().map(String::as_str).collect())
        } else {
            Lookup::Value(self.value().unwrap_or(""))
        }
    }
}
