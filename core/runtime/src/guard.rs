//! The removal guard: a configuration that would remove many hosts or services at once
//! is held, not deployed, until an administrator accepts it.
//!
//! A vanished profile folder (a failed mount, a half-finished sync), an uninstalled
//! translator package or a users file gone wrong all look, to the compiler, like a fleet
//! being decommissioned. Deploying that loses Nagios's retained state for every host it
//! drops: acknowledgements, downtimes, comments and notification history. So a set is
//! compared with the live one ([`Inventory`]) and held when it removes more than the
//! [`RemovalPolicy`] allows.
//!
//! The inventory is read from the rendered object files themselves (what Nagios will
//! load), not from the engine's records: it counts exactly the hosts and services that
//! would disappear.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use monitor_engine::Output;

/// How much one deploy may remove before it is held. The defaults are documented in
/// docs/daemon.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemovalPolicy {
    /// Held when more hosts than this are removed.
    pub max_hosts: usize,
    /// Held when more than this percentage of the live hosts are removed.
    pub max_hosts_percent: u32,
    /// Held when more than this percentage of the live services are removed.
    pub max_services_percent: u32,
    /// Removing at most this many hosts is never held by the percentage rule (so that a
    /// small site can decommission a machine without an approval).
    pub free_hosts: usize,
    /// Removing at most this many services is never held by the percentage rule.
    pub free_services: usize,
}

impl Default for RemovalPolicy {
    fn default() -> Self {
        RemovalPolicy {
            max_hosts: 50,
            max_hosts_percent: 10,
            max_services_percent: 10,
            free_hosts: 1,
            free_services: 10,
        }
    }
}

/// The hosts and services of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FileInventory {
    hosts: Vec<String>,
    services: Vec<(String, String)>,
}

/// The hosts and services a configuration defines (templates excluded), read from its
/// object files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub hosts: BTreeSet<String>,
    pub services: BTreeSet<(String, String)>,
}

/// The value of a directive line as we render it (`    name<spaces>value`), unescaped.
fn directive(line: &str) -> Option<(&str, String)> {
    let t = line.trim_start();
    let (name, rest) = t.split_once([' ', '\t'])?;
    Some((name, rest.trim().replace("\\;", ";")))
}

fn scan(text: &str) -> FileInventory {
    let mut inv = FileInventory::default();
    let mut kind: Option<&str> = None;
    let (mut host, mut desc, mut template) = (None, None, false);
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("define ") {
            kind = rest.split([' ', '{']).next();
            (host, desc, template) = (None, None, false);
            continue;
        }
        let Some(k) = kind else { continue };
        if t == "}" {
            match (k, host.take(), desc.take()) {
                _ if template => {}
                ("host", Some(h), _) => inv.hosts.push(h),
                ("service", Some(h), Some(d)) => inv.services.push((h, d)),
                _ => {}
            }
            kind = None;
            continue;
        }
        if let Some((name, value)) = directive(t) {
            match name {
                "host_name" => host = Some(value),
                "service_description" => desc = Some(value),
                "register" if value == "0" => template = true,
                _ => {}
            }
        }
    }
    inv
}

/// The hosts and services of an Icinga 2 file the writer wrote (`object Host "h" {`,
/// `object Service "s" {` with `host_name = "h"`).
fn scan_icinga(text: &str) -> FileInventory {
    let mut inv = FileInventory::default();
    let mut service: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("object Host ") {
            inv.hosts.extend(monitor_icinga2::dsl::unquote(rest));
        } else if let Some(rest) = line.strip_prefix("object Service ") {
            service = monitor_icinga2::dsl::unquote(rest);
        } else if let Some(rest) = line.strip_prefix("  host_name = ")
            && let Some(d) = service.take()
            && let Some(h) = monitor_icinga2::dsl::unquote(rest)
        {
            inv.services.push((h, d));
        } else if line == "}" {
            service = None;
        }
    }
    inv
}

fn is_object_file(rel: &Path) -> bool {
    rel.extension().is_some_and(|e| e == "cfg" || e == "conf")
}

/// The inventory of one object file: Nagios (`.cfg`) or Icinga 2 (`.conf`).
fn scan_file(rel: &Path, text: &str) -> FileInventory {
    if rel.extension().is_some_and(|e| e == "conf") {
        scan_icinga(text)
    } else {
        scan(text)
    }
}

impl Inventory {
    /// The inventory of an assembled output.
    pub fn of_output(output: &Output) -> Inventory {
        let mut cache = InventoryCache::default();
        cache.inventory(output)
    }

    /// The inventory of a configuration directory on disk (the live set, or an earlier
    /// `--once` output). A directory that does not exist has an empty inventory.
    pub fn of_dir(dir: &Path) -> std::io::Result<Inventory> {
        let mut inv = Inventory::default();
        if !dir.exists() {
            return Ok(inv);
        }
        for entry in walkdir::WalkDir::new(dir).follow_links(true) {
            let entry = entry.map_err(std::io::Error::other)?;
            if entry.file_type().is_file() && is_object_file(entry.path()) {
                let text = std::fs::read_to_string(entry.path())?;
                inv.add(&scan_file(entry.path(), &text));
            }
        }
        Ok(inv)
    }

    fn add(&mut self, f: &FileInventory) {
        self.hosts.extend(f.hosts.iter().cloned());
        self.services.extend(f.services.iter().cloned());
    }
}

/// Inventories of the files of successive outputs, recomputed only for files whose
/// contents changed (file contents are shared between passes, so an unchanged file is a
/// pointer comparison).
#[derive(Debug, Default)]
pub struct InventoryCache {
    files: BTreeMap<PathBuf, (Arc<str>, FileInventory)>,
}

impl InventoryCache {
    /// The inventory of `output`.
    pub fn inventory(&mut self, output: &Output) -> Inventory {
        self.files.retain(|rel, _| output.files.contains_key(rel));
        let mut inv = Inventory::default();
        for (rel, text) in &output.files {
            if !is_object_file(rel) {
                continue;
            }
            let fresh = match self.files.get(rel) {
                Some((seen, _)) => !Arc::ptr_eq(seen, text) && **seen != **text,
                None => true,
            };
            if fresh {
                self.files.insert(rel.clone(), (text.clone(), scan_file(rel, text)));
            }
            if let Some((_, f)) = self.files.get(rel) {
                inv.add(f);
            }
        }
        inv
    }
}

/// What a new set removes from the live one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removal {
    pub live_hosts: usize,
    pub live_services: usize,
    pub new_hosts: usize,
    pub new_services: usize,
    /// The hosts that go, sorted (all of them).
    pub removed_hosts: Vec<String>,
    /// How many services go (those of removed hosts included).
    pub removed_services: usize,
    /// The service descriptions that go, with how many of each, most first (at most 20).
    pub removed_by_description: Vec<(String, usize)>,
}

impl Removal {
    /// Compare the live inventory with a new one.
    pub fn between(live: &Inventory, new: &Inventory) -> Removal {
        let removed_hosts: Vec<String> = live.hosts.difference(&new.hosts).cloned().collect();
        let mut by_desc: BTreeMap<&str, usize> = BTreeMap::new();
        let mut removed_services = 0;
        for (_, d) in live.services.difference(&new.services) {
            removed_services += 1;
            *by_desc.entry(d.as_str()).or_default() += 1;
        }
        let mut removed_by_description: Vec<(String, usize)> =
            by_desc.into_iter().map(|(d, n)| (d.to_string(), n)).collect();
        removed_by_description.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        removed_by_description.truncate(20);
        Removal {
            live_hosts: live.hosts.len(),
            live_services: live.services.len(),
            new_hosts: new.hosts.len(),
            new_services: new.services.len(),
            removed_hosts,
            removed_services,
            removed_by_description,
        }
    }

    /// Why `policy` holds this removal; empty when it may be deployed.
    pub fn exceeds(&self, policy: &RemovalPolicy) -> Vec<String> {
        let mut why = Vec::new();
        let hosts = self.removed_hosts.len();
        let over = |n: usize, live: usize, pct: u32| n as u128 * 100 > live as u128 * pct as u128;
        if hosts > policy.max_hosts {
            why.push(format!(
                "it removes {hosts} hosts, more than max_hosts = {}",
                policy.max_hosts
            ));
        } else if hosts > policy.free_hosts && over(hosts, self.live_hosts, policy.max_hosts_percent) {
            why.push(format!(
                "it removes {hosts} of {} hosts, more than max_hosts_percent = {}%",
                self.live_hosts, policy.max_hosts_percent
            ));
        }
        if self.removed_services > policy.free_services
            && over(self.removed_services, self.live_services, policy.max_services_percent)
        {
            why.push(format!(
                "it removes {} of {} services, more than max_services_percent = {}%",
                self.removed_services, self.live_services, policy.max_services_percent
            ));
        }
        why
    }

    /// One line for logs and for the deploy service's output.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} -> {} hosts, {} -> {} services; removes {} hosts and {} services",
            self.live_hosts,
            self.new_hosts,
            self.live_services,
            self.new_services,
            self.removed_hosts.len(),
            self.removed_services
        );
        if !self.removed_hosts.is_empty() {
            let shown: Vec<&str> = self.removed_hosts.iter().take(5).map(String::as_str).collect();
            let more = self.removed_hosts.len().saturating_sub(shown.len());
            s.push_str(&format!(" (hosts: {}", shown.join(", ")));
            if more > 0 {
                s.push_str(&format!(" and {more} more"));
            }
            s.push(')');
        }
        if !self.removed_by_description.is_empty() {
            let shown: Vec<String> = self
                .removed_by_description
                .iter()
                .take(5)
                .map(|(d, n)| format!("{d} x{n}"))
                .collect();
            s.push_str(&format!(" (services: {})", shown.join(", ")));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_icinga2_tree_counts_its_hosts_and_services_not_its_templates() {
        let text = "// header\n\ntemplate Host \"tpl\" {\n  check_command = \"hostalive\"\n}\n\n\
            object Host \"h\\\"1\" {\n  import \"tpl\"\n}\n\n\
            object Service \"Cost $$5\" {\n  import \"s\"\n  host_name = \"h\\\"1\"\n}\n\n\
            template Service \"s\" {\n  host_name = \"no\"\n}\n\n\
            object Dependency \"d\" {\n  child_host_name = \"x\"\n}\n";
        let mut output = Output::default();
        output
            .files
            .insert(PathBuf::from("zones.d/master/20-machines/00.conf"), text.into());
        let inv = Inventory::of_output(&output);
        assert_eq!(inv.hosts.iter().collect::<Vec<_>>(), ["h\"1"]);
        assert_eq!(
            inv.services.iter().collect::<Vec<_>>(),
            [&("h\"1".to_string(), "Cost $5".to_string())]
        );
    }

    fn output(hosts: usize, services_each: usize) -> Output {
        let mut text = String::new();
        text.push_str("define host {\n    name    default-host\n    register    0\n}\n\n");
        for h in 0..hosts {
            text.push_str(&format!(
                "define host {{\n    use    default-host\n    host_name    h{h}\n}}\n\n"
            ));
            for s in 0..services_each {
                text.push_str(&format!(
                    "define service {{\n    host_name    h{h}\n    service_description    S{s}\\;x\n}}\n\n"
                ));
            }
        }
        let mut o = Output::default();
        o.files.insert(PathBuf::from("20-machines/00.cfg"), text.into());
        o.files.insert(
            PathBuf::from("passive-acl.conf"),
            "define host {\n host_name x\n}\n".into(),
        );
        o
    }

    #[test]
    fn the_inventory_counts_objects_not_templates() {
        let inv = Inventory::of_output(&output(3, 2));
        assert_eq!(inv.hosts.len(), 3);
        assert_eq!(inv.services.len(), 6);
        assert!(inv.services.contains(&("h0".to_string(), "S1;x".to_string())));
    }

    #[test]
    fn the_policy_holds_mass_removal_and_lets_small_changes_through() {
        let p = RemovalPolicy::default();
        let live = Inventory::of_output(&output(1000, 4));
        // 6 of 7 folders gone.
        let r = Removal::between(&live, &Inventory::of_output(&output(140, 4)));
        assert_eq!(r.removed_hosts.len(), 860);
        assert_eq!(r.removed_services, 3440);
        let why = r.exceeds(&p);
        assert_eq!(why.len(), 2, "{why:?}");
        assert!(why[0].contains("more than max_hosts = 50"), "{why:?}");
        // One decommissioned machine.
        let r = Removal::between(&live, &Inventory::of_output(&output(999, 4)));
        assert!(r.exceeds(&p).is_empty());
        // 10% exactly passes; 11% does not.
        let small = Inventory::of_output(&output(100, 1));
        assert!(
            Removal::between(&small, &Inventory::of_output(&output(90, 1)))
                .exceeds(&p)
                .is_empty()
        );
        let why = Removal::between(&small, &Inventory::of_output(&output(89, 1))).exceeds(&p);
        assert!(why[0].contains("11 of 100 hosts"), "{why:?}");
        // A translator uninstalled: every host stays, a service goes from each.
        let r = Removal::between(&live, &Inventory::of_output(&output(1000, 3)));
        assert_eq!(r.removed_by_description, vec![("S3;x".to_string(), 1000)]);
        let why = r.exceeds(&p);
        assert_eq!(why.len(), 1);
        assert!(why[0].contains("1000 of 4000 services"), "{why:?}");
        // A tiny site may remove one host of two.
        let two = Inventory::of_output(&output(2, 1));
        assert!(
            Removal::between(&two, &Inventory::of_output(&output(1, 1)))
                .exceeds(&p)
                .is_empty()
        );
        assert!(
            r.summary().contains("removes 0 hosts and 1000 services"),
            "{}",
            r.summary()
        );
    }

    #[test]
    fn the_cache_rescans_only_changed_files() {
        let mut cache = InventoryCache::default();
        let mut o = output(3, 1);
        assert_eq!(cache.inventory(&o).hosts.len(), 3);
        o.files.insert(
            PathBuf::from("20-machines/01.cfg"),
            "define host {\n    host_name    extra\n}\n".into(),
        );
        assert_eq!(cache.inventory(&o).hosts.len(), 4);
        o.files.remove(Path::new("20-machines/00.cfg"));
        let inv = cache.inventory(&o);
        assert_eq!(inv.hosts.into_iter().collect::<Vec<_>>(), ["extra"]);
    }
}
