//! Zones: which part of a distributed monitoring setup checks each machine.
//!
//! A machine's zone comes from its profile (`nagios_client.zone`, [`ZONE_RESOURCE`]), or
//! else from the first [`ZoneRule`] whose domain matches its name, or else it is the
//! master zone. A profile that names a zone the configuration does not have is an error
//! for that machine: it stays in the zone it had in the last assembly, or, new, is left
//! out until the zone is fixed.
//!
//! The Nagios output carries the zone as the host's hostgroup [`hostgroup_of`] (one per
//! zone, defined with the base), so that mod_gearman or Merlin pollers can take a zone's
//! share by hostgroup; the Icinga 2 writer reads the same hostgroup to place the host.

use std::collections::{BTreeMap, BTreeSet};

use monitor_sdk::nagios::{Object, ObjectKind, Value};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The resource of the `nagios_client` component that names a machine's zone.
pub const ZONE_RESOURCE: &str = "zone";

/// The prefix of the hostgroup that holds a zone's hosts.
pub const ZONE_HOSTGROUP_PREFIX: &str = "mc-zone-";

/// The hostgroup of `zone`'s hosts.
pub fn hostgroup_of(zone: &str) -> String {
    format!("{ZONE_HOSTGROUP_PREFIX}{zone}")
}

/// A rule that puts machines in a zone by their domain or by a name pattern; it gives
/// one of the two.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneRule {
    /// A domain: the rule matches the domain itself and every name under it
    /// (`east.example.org` matches `a.east.example.org` and `b.c.east.example.org`).
    #[serde(default)]
    pub domain: Option<String>,
    /// A pattern of the whole machine name, in which `*` stands for any run of
    /// characters (`kdc*.example.org`, `*-lab.example.org`).
    #[serde(default)]
    pub name: Option<String>,
    /// The zone of the machines it matches.
    pub zone: String,
}

impl ZoneRule {
    /// Whether the rule matches `machine` (compared without case).
    pub fn matches(&self, machine: &str) -> bool {
        let name = machine.to_ascii_lowercase();
        if let Some(d) = &self.domain {
            let d = d.trim_start_matches("*.").trim_start_matches('.').to_ascii_lowercase();
            return name == d || name.strip_suffix(&d).is_some_and(|head| head.ends_with('.'));
        }
        self.name
            .as_deref()
            .is_some_and(|p| glob(&p.to_ascii_lowercase(), &name))
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    // Invariant: split yields at least one part.
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// One zone below the master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneName {
    /// The zone's name.
    pub name: String,
    /// Its parent zone: the master, or another satellite zone.
    pub parent: String,
}

/// The zones the engine places machines in. Empty (no satellites, no rules) unless the
/// site configures zones; then every machine is in the master zone and no hostgroup is
/// written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zones {
    /// The master zone (`None`: zones are not configured).
    pub master: Option<String>,
    /// The satellite zones, parents before children.
    pub satellites: Vec<ZoneName>,
    /// Domain rules, first match wins.
    pub rules: Vec<ZoneRule>,
}

/// A zone configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ZonesError {
    /// A zone name that is not a safe name.
    #[error("zone {name:?}: {why}")]
    BadName {
        /// The name.
        name: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// Two zones of one name.
    #[error("zone {0:?} is named twice")]
    Duplicate(String),
    /// A parent or rule naming no zone.
    #[error("{what} names zone {zone:?}, which is not configured")]
    Unknown {
        /// What names it.
        what: String,
        /// The zone named.
        zone: String,
    },
    /// Parents that form a loop.
    #[error("zone {0:?} is its own ancestor")]
    Cycle(String),
    /// A rule with both or neither of `domain` and `name`.
    #[error("a rule for zone {0:?} must give exactly one of `domain` and `name`")]
    Rule(String),
}

/// Whether `name` can be a zone: a directory name and a Nagios and Icinga 2 object name.
pub fn check_zone_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters long");
    }
    if name.starts_with(['.', '-']) {
        return Err("must not start with '.' or '-'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err("may hold only letters, digits, '.', '-' and '_'");
    }
    Ok(())
}

impl Zones {
    /// Zones with `master` at the top, checked: safe names, no duplicates, known parents,
    /// no loops, and rules that name configured zones. Satellites are reordered so that
    /// parents come first.
    pub fn new(master: &str, satellites: Vec<ZoneName>, rules: Vec<ZoneRule>) -> Result<Zones, ZonesError> {
        let bad = |name: &str, why| ZonesError::BadName {
            name: name.to_string(),
            why,
        };
        check_zone_name(master).map_err(|why| bad(master, why))?;
        let mut names = BTreeSet::from([master.to_string()]);
        for s in &satellites {
            check_zone_name(&s.name).map_err(|why| bad(&s.name, why))?;
            if !names.insert(s.name.clone()) {
                return Err(ZonesError::Duplicate(s.name.clone()));
            }
        }
        for s in &satellites {
            if !names.contains(&s.parent) {
                return Err(ZonesError::Unknown {
                    what: format!("the parent of zone {:?}", s.name),
                    zone: s.parent.clone(),
                });
            }
        }
        // Parents first; a zone whose parent never comes is in a loop.
        let mut placed = BTreeSet::from([master.to_string()]);
        let mut ordered = Vec::with_capacity(satellites.len());
        let mut rest = satellites;
        while !rest.is_empty() {
            let (ready, waiting): (Vec<_>, Vec<_>) = rest.into_iter().partition(|s| placed.contains(&s.parent));
            if ready.is_empty() {
                return Err(ZonesError::Cycle(waiting[0].name.clone()));
            }
            placed.extend(ready.iter().map(|s| s.name.clone()));
            ordered.extend(ready);
            rest = waiting;
        }
        for r in &rules {
            let what = match (&r.domain, &r.name) {
                (Some(d), None) => format!("the rule for domain {d:?}"),
                (None, Some(n)) => format!("the rule for names {n:?}"),
                _ => return Err(ZonesError::Rule(r.zone.clone())),
            };
            if !names.contains(&r.zone) {
                return Err(ZonesError::Unknown {
                    what,
                    zone: r.zone.clone(),
                });
            }
        }
        Ok(Zones {
            master: Some(master.to_string()),
            satellites: ordered,
            rules,
        })
    }

    /// Whether zones are configured at all.
    pub fn configured(&self) -> bool {
        self.master.is_some()
    }

    /// Every zone, the master first, then parents before children.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.master
            .iter()
            .map(String::as_str)
            .chain(self.satellites.iter().map(|s| s.name.as_str()))
    }

    /// Whether `zone` is configured.
    pub fn contains(&self, zone: &str) -> bool {
        self.names().any(|z| z == zone)
    }

    /// The zone of `machine`, whose profile names `resource` (`nagios_client.zone`), if
    /// it does. `None` when zones are not configured; an error (the message) when the
    /// profile names a zone that is not configured.
    pub fn resolve<'a>(&'a self, machine: &str, resource: Option<&str>) -> Option<Result<&'a str, String>> {
        let master = self.master.as_deref()?;
        let named = resource.map(str::trim).filter(|z| !z.is_empty());
        if let Some(z) = named {
            return Some(self.names().find(|n| *n == z).ok_or_else(|| {
                format!(
                    "nagios_client.{ZONE_RESOURCE} names zone {z:?}, which the configuration does not have (zones: {})",
                    self.names().collect::<Vec<_>>().join(", ")
                )
            }));
        }
        let by_rule = self.rules.iter().find(|r| r.matches(machine));
        Some(Ok(by_rule
            .and_then(|r| self.names().find(|n| *n == r.zone))
            .unwrap_or(master)))
    }

    /// The hostgroups of the zones, for the base definitions (none when zones are not
    /// configured).
    pub fn hostgroups(&self) -> Vec<Object> {
        self.names()
            .map(|z| {
                let mut o = Object::new(ObjectKind::HostGroup);
                o.set("hostgroup_name", Value::Name(hostgroup_of(z)));
                o.set("alias", Value::Text(format!("Hosts checked in zone {z}")));
                o
            })
            .collect()
    }
}

/// Where machines are placed in one assembly: the zones, and each machine's zone in the
/// last assembly (kept when its profile names an unknown zone).
pub(crate) struct Placement<'a> {
    pub(crate) zones: &'a Zones,
    pub(crate) last: &'a BTreeMap<String, String>,
}

/// Where one machine goes.
pub(crate) enum Placed<'a> {
    /// Zones are not configured.
    Nowhere,
    /// In this zone.
    In(&'a str),
    /// The profile names an unknown zone (the message); the machine stays in its last zone.
    Kept(&'a str, String),
    /// The profile names an unknown zone (the message), and the machine had none: it is
    /// left out.
    Out(String),
}

impl Placement<'_> {
    pub(crate) fn place(&self, machine: &str, resource: Option<&str>) -> Placed<'_> {
        match self.zones.resolve(machine, resource) {
            None => Placed::Nowhere,
            Some(Ok(z)) => Placed::In(z),
            Some(Err(why)) => match self.last.get(machine).filter(|z| self.zones.contains(z)) {
                Some(z) => Placed::Kept(z, why),
                None => Placed::Out(why),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones() -> Zones {
        Zones::new(
            "master",
            vec![
                ZoneName {
                    name: "west".into(),
                    parent: "east".into(),
                },
                ZoneName {
                    name: "east".into(),
                    parent: "master".into(),
                },
            ],
            vec![
                ZoneRule {
                    domain: Some("east.example.org".into()),
                    zone: "east".into(),
                    ..ZoneRule::default()
                },
                ZoneRule {
                    name: Some("lab*-?.EXAMPLE.org".into()),
                    zone: "west".into(),
                    ..ZoneRule::default()
                },
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_profile_zone_wins_then_a_rule_then_the_master() {
        let z = zones();
        assert_eq!(z.names().collect::<Vec<_>>(), ["master", "east", "west"]);
        assert_eq!(z.resolve("a.east.example.org", Some("west")), Some(Ok("west")));
        assert_eq!(z.resolve("a.east.example.org", None), Some(Ok("east")));
        assert_eq!(z.resolve("A.EAST.example.org", Some(" ")), Some(Ok("east")));
        assert_eq!(z.resolve("beast.example.org", None), Some(Ok("master")));
        assert_eq!(z.resolve("lab12-?.example.org", None), Some(Ok("west")));
        assert_eq!(z.resolve("lab-?.example.org", None), Some(Ok("west")));
        assert_eq!(z.resolve("lab12-x.example.org", None), Some(Ok("master")));
        assert!(glob("*1.example.org", "m000001.example.org") && !glob("*1.example.org", "m000012.example.org"));
        assert!(glob("a*b*c", "abc") && glob("a*b*c", "axxbyyc") && !glob("a*b*c", "acb"));
        let e = z.resolve("a.example.org", Some("north")).unwrap().unwrap_err();
        assert!(e.contains("\"north\"") && e.contains("master, east, west"), "{e}");
        assert_eq!(Zones::default().resolve("a", Some("x")), None);
    }

    #[test]
    fn bad_zone_configurations_are_refused() {
        let sat = |n: &str, p: &str| ZoneName {
            name: n.into(),
            parent: p.into(),
        };
        for (master, sats, want) in [
            ("m", vec![sat("a/b", "m")], "may hold only"),
            ("m", vec![sat("a", "m"), sat("a", "m")], "named twice"),
            ("m", vec![sat("a", "nowhere")], "not configured"),
            ("m", vec![sat("a", "b"), sat("b", "a")], "own ancestor"),
            ("..", vec![], "must not start"),
            ("m", vec![sat("x\"; }", "m")], "may hold only"),
        ] {
            let e = Zones::new(master, sats, vec![]).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        let e = Zones::new(
            "m",
            vec![],
            vec![ZoneRule {
                domain: Some("x.org".into()),
                zone: "y".into(),
                ..ZoneRule::default()
            }],
        )
        .unwrap_err();
        assert!(e.to_string().contains("the rule for domain \"x.org\""), "{e}");
        let both = ZoneRule {
            domain: Some("x.org".into()),
            name: Some("*".into()),
            zone: "m".into(),
        };
        let e = Zones::new("m", vec![], vec![both]).unwrap_err();
        assert!(e.to_string().contains("exactly one of"), "{e}");
    }
}
