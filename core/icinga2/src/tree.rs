//! The zone tree: the master zone, satellite zones below it, and the global zone; where
//! an object goes, what each node loads, and the `zones.conf` files.
//!
//! **What a node sees.** The config master (the master zone's endpoint) loads every
//! directory of `zones.d/`. It syncs to each satellite endpoint the directory of that
//! satellite's own zone, of every zone below it (which the satellite passes on), and of
//! the global zones; never the directories of the zones above it. So an object placed in
//! zone Z is seen by Z's endpoints, by every zone above Z and by the master, and an object
//! in Z can only refer to objects in Z, in zones below Z and in the global zones.
//!
//! **Placement.** A host and its services go in the host's zone. An object that refers to
//! two hosts (a dependency) goes in the lowest zone that is the zone of both hosts or
//! above both: every node that loads it then sees both ends. The cluster manager's
//! virtual host and its cluster checks, which read services of any zone, go in the
//! master zone. Templates, commands, time periods, users, groups and the notification
//! rules go in the global zone.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::dsl::{Expr, Head, IObject};

/// One Icinga 2 endpoint (node) of a zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Its name: the node's `NodeName`, usually its FQDN (the CN of its certificate).
    pub name: String,
    /// Where the parent connects to it (omitted: it connects to its parent).
    #[serde(default)]
    pub host: Option<String>,
    /// Its API port (default 5665).
    #[serde(default)]
    pub port: Option<u16>,
}

/// One zone and its endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneDef {
    /// The zone's name.
    pub name: String,
    /// Its parent (`None` for the master zone).
    pub parent: Option<String>,
    /// Its endpoints; the first one is the node whose slice is validated.
    pub endpoints: Vec<Endpoint>,
}

/// The zones of an Icinga 2 setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// The master zone first, then satellites with parents before children.
    pub zones: Vec<ZoneDef>,
    /// The global zone for templates, commands, users, groups and notifications.
    pub global: String,
}

/// What one node loads, for its validation: its `NodeName` and zone, its `zones.conf`
/// (relative to the set) and the `zones.d/` directories it receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeSlice {
    /// The endpoint name.
    pub endpoint: String,
    /// Its zone.
    pub zone: String,
    /// Its `zones.conf`, relative to the set.
    pub zones_conf: PathBuf,
    /// The `zones.d/` directories it loads.
    pub dirs: Vec<String>,
}

/// The directory of the node-specific `zones.conf` files.
pub const NODES_DIR: &str = "nodes";

impl Tree {
    /// The master zone's name.
    pub fn master(&self) -> &str {
        // Invariant: a tree has its master zone first (built by the configuration).
        self.zones.first().map(|z| z.name.as_str()).unwrap_or("master")
    }

    fn parent(&self, zone: &str) -> Option<&str> {
        self.zones
            .iter()
            .find(|z| z.name == zone)
            .and_then(|z| z.parent.as_deref())
    }

    /// `zone` and the zones above it, nearest first.
    pub fn ancestry(&self, zone: &str) -> Vec<String> {
        let mut out = vec![zone.to_string()];
        let mut at = zone;
        while let Some(p) = self.parent(at) {
            if out.iter().any(|z| z == p) {
                break;
            }
            out.push(p.to_string());
            at = p;
        }
        out
    }

    /// Whether `zone` is one of the tree's zones.
    pub fn contains(&self, zone: &str) -> bool {
        self.zones.iter().any(|z| z.name == zone)
    }

    /// The lowest zone that is `a` or `b` or above both.
    pub fn meet(&self, a: &str, b: &str) -> String {
        let up: Vec<String> = self.ancestry(b);
        self.ancestry(a)
            .into_iter()
            .find(|z| up.contains(z))
            .unwrap_or_else(|| self.master().to_string())
    }

    /// `zone` and every zone below it.
    pub fn below(&self, zone: &str) -> Vec<String> {
        self.zones
            .iter()
            .filter(|z| self.ancestry(&z.name).iter().any(|a| a == zone))
            .map(|z| z.name.clone())
            .collect()
    }

    /// The nodes to validate: the master's endpoint with every directory, and the first
    /// endpoint of each satellite zone with its own slice.
    pub fn nodes(&self) -> Vec<NodeSlice> {
        let mut out = Vec::new();
        for z in &self.zones {
            let Some(e) = z.endpoints.first() else { continue };
            let (zones_conf, mut dirs) = if z.parent.is_none() {
                (
                    PathBuf::from("zones.conf"),
                    self.zones.iter().map(|z| z.name.clone()).collect::<Vec<_>>(),
                )
            } else {
                (
                    PathBuf::from(NODES_DIR).join(&z.name).join("zones.conf"),
                    self.below(&z.name),
                )
            };
            dirs.push(self.global.clone());
            out.push(NodeSlice {
                endpoint: e.name.clone(),
                zone: z.name.clone(),
                zones_conf,
                dirs,
            });
        }
        out
    }

    /// The `zones.conf` of a node in `zone` (`None`: the master's, with every zone). A
    /// satellite's has the zones above it (so that it can connect to them), its own and
    /// those below it, and the global zone.
    pub fn zones_conf(&self, zone: Option<&str>) -> Result<String, crate::dsl::DslError> {
        let wanted: BTreeSet<String> = match zone {
            None => self.zones.iter().map(|z| z.name.clone()).collect(),
            Some(z) => self.ancestry(z).into_iter().chain(self.below(z)).collect(),
        };
        let mut out = String::from(crate::HEADER);
        for z in self.zones.iter().filter(|z| wanted.contains(&z.name)) {
            for e in &z.endpoints {
                let mut o = IObject::new("Endpoint", &e.name, Head::Object);
                if let Some(h) = &e.host {
                    o.set("host", Expr::str(h));
                }
                if let Some(p) = e.port {
                    o.set("port", Expr::str(p.to_string()));
                }
                o.write_into(&mut out)?;
            }
            let mut o = IObject::new("Zone", &z.name, Head::Object);
            o.set("endpoints", Expr::strs(z.endpoints.iter().map(|e| e.name.clone())));
            if let Some(p) = &z.parent {
                o.set("parent", Expr::str(p));
            }
            o.write_into(&mut out)?;
        }
        let mut o = IObject::new("Zone", &self.global, Head::Object);
        o.set("global", Expr::Bool(true));
        o.write_into(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn tree() -> Tree {
        let z = |n: &str, p: Option<&str>| ZoneDef {
            name: n.into(),
            parent: p.map(Into::into),
            endpoints: vec![Endpoint {
                name: format!("{n}-1"),
                host: p.map(|_| format!("{n}.example.org")),
                port: None,
            }],
        };
        Tree {
            zones: vec![
                z("master", None),
                z("east", Some("master")),
                z("far-east", Some("east")),
                z("west", Some("master")),
            ],
            global: "global-templates".into(),
        }
    }

    #[test]
    fn objects_meet_in_the_lowest_zone_that_sees_both() {
        let t = tree();
        assert_eq!(t.meet("far-east", "east"), "east");
        assert_eq!(t.meet("far-east", "far-east"), "far-east");
        assert_eq!(t.meet("far-east", "west"), "master");
        assert_eq!(t.below("east"), ["east", "far-east"]);
        let nodes = t.nodes();
        assert_eq!(
            nodes[0].dirs,
            ["master", "east", "far-east", "west", "global-templates"]
        );
        assert_eq!(nodes[1].dirs, ["east", "far-east", "global-templates"]);
        assert_eq!(nodes[1].zones_conf, PathBuf::from("nodes/east/zones.conf"));
        let conf = t.zones_conf(Some("east")).unwrap();
        assert!(conf.contains("object Zone \"master\"") && conf.contains("object Zone \"far-east\""));
        assert!(!conf.contains("\"west\""), "{conf}");
    }
}
