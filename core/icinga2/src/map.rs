//! Mapping the Nagios objects to Icinga 2 objects, and placing them in the tree.
//!
//! docs/icinga2.md has the table. In short: hosts, services, commands (by what they are
//! used as: check, event or notification), contacts as users, contact groups as user
//! groups, time periods, host and service groups, dependencies and escalations map one
//! to one; notifications become apply rules per notification command, which notify each
//! of an object's contact groups through the command's own user group (`COMMAND@GROUP`,
//! whose members are the group's users that have that command), so that a user is
//! notified exactly through the channels (e-mail, XMPP, Slack) their contact has.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use monitor_engine::Output;
use monitor_engine::layout::BASE_FILE;
use monitor_engine::zones::ZONE_HOSTGROUP_PREFIX;
use monitor_sdk::nagios::ObjectKind;
use serde::Serialize;

use crate::command::{Role, cluster_command_expr, cluster_line, command_expr};
use crate::dsl::{Expr, Head, IObject, quote};
use crate::read::{NObject, ReadError, read_output, split_command};
use crate::tree::{NODES_DIR, NodeSlice, Tree};
use crate::{HEADER, ZONES_CONF, ZONES_DIR};

/// Something the writer could not map: the object is left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The Nagios output file the object was in.
    pub file: PathBuf,
    /// The line of its `define`.
    pub line: usize,
    /// The machine it belongs to, when it is in a machine's section.
    pub machine: Option<String>,
    /// What went wrong.
    pub message: String,
}

/// The Icinga 2 set, what each node loads, and what could not be mapped.
#[derive(Debug, Clone, Default)]
pub struct Written {
    /// The files: `zones.conf`, `nodes/<zone>/zones.conf` and `zones.d/<zone>/…`.
    pub output: Output,
    /// The nodes to validate.
    pub nodes: Vec<NodeSlice>,
    /// Objects left out.
    pub errors: Vec<Problem>,
    /// Directives with no Icinga 2 equivalent (once per kind and directive).
    pub warnings: Vec<Problem>,
}

/// An ITL command that replaces one of the base commands.
struct Itl {
    ours: &'static str,
    theirs: &'static str,
    args: &'static [&'static str],
    fixed: &'static [(&'static str, Fixed)],
}

enum Fixed {
    Num(i64),
    Text(&'static str),
}

/// The base commands that the Icinga Template Library has (`hostalive` has the same
/// thresholds as `mc-check-host-alive`).
const ITL: &[Itl] = &[
    Itl {
        ours: "mc-check-host-alive",
        theirs: "hostalive",
        args: &[],
        fixed: &[],
    },
    Itl {
        ours: "mc-check-tcp",
        theirs: "tcp",
        args: &["tcp_port"],
        fixed: &[],
    },
    Itl {
        ours: "mc-check-tcp-expect",
        theirs: "tcp",
        args: &["tcp_port", "tcp_expect"],
        fixed: &[],
    },
    Itl {
        ours: "mc-check-http",
        theirs: "http",
        args: &["http_port"],
        fixed: &[],
    },
    Itl {
        ours: "mc-check-passive",
        theirs: "dummy",
        args: &[],
        fixed: &[
            ("dummy_state", Fixed::Num(2)),
            ("dummy_text", Fixed::Text("CRITICAL: no passive check result received")),
        ],
    },
    Itl {
        ours: "mc-check-dummy-up",
        theirs: "dummy",
        args: &[],
        fixed: &[
            ("dummy_state", Fixed::Num(0)),
            ("dummy_text", Fixed::Text("virtual host")),
        ],
    },
];

/// The lambda that gives `check_cluster` its data: the states of the members, in order.
const CLUSTER_SERVICE_STATES: &str = "{{\n    var states = []\n    for (m in macro(\"$mc_cluster_members$\")) {\n      var s = get_service(m[0], m[1])\n      if (s) { states.add(s.state) } else { states.add(3) }\n    }\n    return states.join(\",\")\n  }}";
const CLUSTER_HOST_STATES: &str = "{{\n    var states = []\n    for (m in macro(\"$mc_cluster_members$\")) {\n      var h = get_host(m[0])\n      if (h) { states.add(h.state) } else { states.add(2) }\n    }\n    return states.join(\",\")\n  }}";

/// Directives that have no Icinga 2 equivalent and are left out without a warning: they
/// are Nagios's own bookkeeping (docs/icinga2.md lists them).
const NAGIOS_ONLY: &[&str] = &[
    "retain_status_information",
    "retain_nonstatus_information",
    "obsess_over_service",
    "obsess_over_host",
    "parallelize_check",
    "failure_prediction_enabled",
    "initial_state",
    "stalking_options",
    "flap_detection_options",
    "check_freshness",
    "freshness_threshold",
    "register",
    "name",
    "use",
];

struct Ctx<'a> {
    tree: &'a Tree,
    templates: HashMap<(ObjectKind, &'a str), &'a NObject>,
    services: HashMap<(&'a str, &'a str), &'a NObject>,
    host_zone: HashMap<&'a str, String>,
    roles: BTreeMap<&'a str, BTreeSet<Role>>,
    base_commands: BTreeSet<&'a str>,
    broken: BTreeSet<String>,
    /// Notification commands by the kind they notify about: (host, service).
    host_commands: BTreeSet<String>,
    service_commands: BTreeSet<String>,
    group_users: BTreeMap<&'a str, BTreeSet<&'a str>>,
    user_groups: BTreeMap<&'a str, BTreeSet<&'a str>>,
    /// Users named by a `contacts` directive (they get per-user channel groups).
    named_users: BTreeSet<&'a str>,
    svc_groups: HashMap<(&'a str, &'a str), Vec<&'a str>>,
    host_groups: HashMap<&'a str, Vec<&'a str>>,
    emitted_services: BTreeSet<(String, String)>,
    emitted_hosts: BTreeSet<String>,
    /// Per (zone, host or service): the contact groups and contacts its objects notify.
    used: BTreeMap<(String, bool), (BTreeSet<String>, BTreeSet<String>)>,
    files: BTreeMap<PathBuf, String>,
    errors: Vec<Problem>,
    unmapped: BTreeMap<(&'static str, String), &'a NObject>,
}

fn problem(o: &NObject, message: String) -> Problem {
    Problem {
        file: o.file.clone(),
        line: o.line,
        machine: o.machine.clone(),
        message,
    }
}

fn bool_of(v: &str) -> Expr {
    Expr::Bool(v.trim() != "0")
}

fn minutes(v: &str) -> Option<Expr> {
    v.trim()
        .parse::<f64>()
        .ok()
        .map(|m| Expr::Secs((m * 60.0).round() as u64))
}

fn seconds_num(v: &str) -> Option<i64> {
    v.trim().parse::<f64>().ok().map(|m| (m * 60.0).round() as i64)
}

fn idents(names: &[&str]) -> Expr {
    Expr::Array(names.iter().map(|n| Expr::Ident(n.to_string())).collect())
}

/// Notification states and types for Nagios notification options.
fn notification_filter(options: &str, host: bool) -> (Vec<&'static str>, Vec<&'static str>) {
    let mut states = Vec::new();
    let mut types = vec!["Problem", "Acknowledgement", "Custom"];
    for o in options.split(',').map(str::trim) {
        match (o, host) {
            ("d" | "u", true) => states.push("Down"),
            ("w", false) => states.push("Warning"),
            ("u", false) => states.push("Unknown"),
            ("c", false) => states.push("Critical"),
            ("r", _) => {
                states.push(if host { "Up" } else { "OK" });
                types.push("Recovery");
            }
            ("f", _) => types.extend(["FlappingStart", "FlappingEnd"]),
            ("s", _) => types.extend(["DowntimeStart", "DowntimeEnd", "DowntimeRemoved"]),
            ("n", _) => {
                states.clear();
                types.clear();
                break;
            }
            _ => {}
        }
    }
    states.sort_unstable();
    states.dedup();
    (states, types)
}

impl<'a> Ctx<'a> {
    fn effective(&self, o: &'a NObject, d: &str) -> Option<&'a str> {
        fn walk<'a>(ctx: &Ctx<'a>, o: &'a NObject, d: &str, depth: usize) -> Option<&'a str> {
            if let Some(v) = o.get(d) {
                return Some(v);
            }
            if depth > 32 {
                return None;
            }
            o.names("use")
                .into_iter()
                .filter_map(|t| ctx.templates.get(&(o.kind, t)))
                .find_map(|t| walk(ctx, t, d, depth + 1))
        }
        walk(self, o, d, 0)
    }

    fn zone_of_host(&self, host: &str) -> Option<&str> {
        self.host_zone.get(host).map(String::as_str)
    }

    fn global_file(&self, src: &Path) -> PathBuf {
        PathBuf::from(ZONES_DIR)
            .join(&self.tree.global)
            .join(src.with_extension("conf"))
    }

    fn zone_file(&self, zone: &str, src: &Path) -> PathBuf {
        PathBuf::from(ZONES_DIR).join(zone).join(src.with_extension("conf"))
    }

    fn emit(&mut self, path: PathBuf, from: &NObject, io: &IObject) -> bool {
        let mut text = String::new();
        match io.write_into(&mut text) {
            Ok(()) => {
                self.files
                    .entry(path)
                    .or_insert_with(|| HEADER.to_string())
                    .push_str(&text);
                true
            }
            Err(e) => {
                self.errors
                    .push(problem(from, format!("{} {:?} is left out: {e}", io.kind, io.name)));
                false
            }
        }
    }

    fn index(&mut self, objs: &'a [NObject]) {
        for o in objs {
            if o.is_template() {
                if let Some(n) = o.get("name") {
                    self.templates.insert((o.kind, n), o);
                }
                continue;
            }
            match o.kind {
                ObjectKind::Service => {
                    if let (Some(h), Some(d)) = (o.get("host_name"), o.get("service_description")) {
                        self.services.insert((h, d), o);
                    }
                }
                ObjectKind::Command if o.file.as_path() == Path::new(BASE_FILE) => {
                    if let Some(n) = o.get("command_name") {
                        self.base_commands.insert(n);
                    }
                }
                ObjectKind::ContactGroup => {
                    if let Some(g) = o.get("contactgroup_name") {
                        let members = self.group_users.entry(g).or_default();
                        members.extend(o.names("members"));
                        for u in o.names("members") {
                            self.user_groups.entry(u).or_default().insert(g);
                        }
                    }
                }
                ObjectKind::ServiceGroup => {
                    if let Some(g) = o.get("servicegroup_name") {
                        let m = o.names("members");
                        for pair in m.chunks(2) {
                            if let [h, s] = pair {
                                self.svc_groups.entry((h, s)).or_default().push(g);
                            }
                        }
                    }
                }
                ObjectKind::HostGroup => {
                    if let Some(g) = o.get("hostgroup_name") {
                        for h in o.names("members") {
                            self.host_groups.entry(h).or_default().push(g);
                        }
                    }
                }
                _ => {}
            }
        }
        for o in objs {
            let cmd = |v: Option<&'a str>| v.map(split_command_name);
            match o.kind {
                ObjectKind::Host | ObjectKind::Service => {
                    if let Some(c) = cmd(o.get("check_command")) {
                        self.roles.entry(c).or_default().insert(Role::Check);
                    }
                    if let Some(c) = cmd(o.get("event_handler")) {
                        self.roles.entry(c).or_default().insert(Role::Event);
                    }
                    if !o.names("contacts").is_empty() {
                        self.named_users.extend(o.names("contacts"));
                    }
                }
                ObjectKind::ServiceEscalation | ObjectKind::HostEscalation => {
                    self.named_users.extend(o.names("contacts"));
                }
                ObjectKind::Contact => {
                    for (d, kind_host) in [
                        ("host_notification_commands", true),
                        ("service_notification_commands", false),
                    ] {
                        for c in o.names(d) {
                            self.roles.entry(c).or_default().insert(Role::Notification);
                            if kind_host {
                                self.host_commands.insert(c.to_string());
                            } else {
                                self.service_commands.insert(c.to_string());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        for o in objs.iter().filter(|o| o.kind == ObjectKind::Host && !o.is_template()) {
            let Some(h) = o.get("host_name") else { continue };
            let zone = self
                .effective(o, "hostgroups")
                .into_iter()
                .flat_map(|v| v.split(','))
                .filter_map(|g| g.trim().strip_prefix(ZONE_HOSTGROUP_PREFIX))
                .find(|z| self.tree.contains(z))
                .unwrap_or(self.tree.master())
                .to_string();
            self.host_zone.insert(h, zone);
        }
    }

    fn user_commands(&self, u: &'a str, objs_by_user: &HashMap<&'a str, &'a NObject>, host: bool) -> Vec<&'a str> {
        let d = if host {
            "host_notification_commands"
        } else {
            "service_notification_commands"
        };
        objs_by_user
            .get(u)
            .and_then(|o| self.effective(o, d))
            .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }

    /// `check_command` (and its arguments as `vars`).
    fn check_command(&self, v: &str, io: &mut IObject) -> Result<(), String> {
        let (name, args) = split_command(v);
        if let Some(itl) = ITL
            .iter()
            .find(|i| i.ours == name && self.base_commands.contains(name.as_str()))
        {
            io.set("check_command", Expr::str(itl.theirs));
            for (var, a) in itl.args.iter().zip(&args) {
                io.set(&format!("vars.{var}"), Expr::str(a));
            }
            for (var, value) in itl.fixed {
                let e = match value {
                    Fixed::Num(n) => Expr::Num(*n),
                    Fixed::Text(t) => Expr::str(*t),
                };
                io.set(&format!("vars.{var}"), e);
            }
            return Ok(());
        }
        if self.broken.contains(&name) {
            return Err(format!("its check command {name} could not be mapped"));
        }
        io.set("check_command", Expr::str(&name));
        for (i, a) in args.iter().enumerate() {
            io.set(&format!("vars.{}", Role::Check.arg_var(i + 1)), Expr::str(a));
        }
        Ok(())
    }

    /// The directives hosts and services share.
    fn checkable(&mut self, o: &'a NObject, io: &mut IObject, host: bool) -> Result<(), String> {
        let kind = if host { "host" } else { "service" };
        for (d, v) in &o.directives {
            let v = v.as_str();
            match d.as_str() {
                "host_name" | "service_description" | "hostgroups" | "servicegroups" => {}
                "alias" | "display_name" => {
                    io.set("display_name", Expr::str(v));
                }
                "address" => {
                    io.set("address", Expr::str(v));
                }
                "check_command" => self.check_command(v, io)?,
                "event_handler" => {
                    let (name, args) = split_command(v);
                    if self.broken.contains(&name) {
                        return Err(format!("its event handler {name} could not be mapped"));
                    }
                    io.set("event_command", Expr::str(&name));
                    for (i, a) in args.iter().enumerate() {
                        io.set(&format!("vars.{}", Role::Event.arg_var(i + 1)), Expr::str(a));
                    }
                }
                "max_check_attempts" => {
                    io.set("max_check_attempts", Expr::Num(v.trim().parse().unwrap_or(3)));
                }
                "check_interval" | "normal_check_interval" => {
                    if let Some(e) = minutes(v) {
                        io.set("check_interval", e);
                    }
                }
                "retry_interval" | "retry_check_interval" => {
                    if let Some(e) = minutes(v) {
                        io.set("retry_interval", e);
                    }
                }
                "check_period" => {
                    io.set("check_period", Expr::str(v));
                }
                "active_checks_enabled" => {
                    io.set("enable_active_checks", bool_of(v));
                }
                "passive_checks_enabled" => {
                    io.set("enable_passive_checks", bool_of(v));
                }
                "notifications_enabled" => {
                    io.set("enable_notifications", bool_of(v));
                }
                "event_handler_enabled" => {
                    io.set("enable_event_handler", bool_of(v));
                }
                "flap_detection_enabled" => {
                    io.set("enable_flapping", bool_of(v));
                }
                "process_perf_data" => {
                    io.set("enable_perfdata", bool_of(v));
                }
                "is_volatile" => {
                    io.set("volatile", bool_of(v));
                }
                "low_flap_threshold" | "high_flap_threshold" => {
                    if let Ok(n) = v.trim().parse::<i64>() {
                        let a = if d == "low_flap_threshold" {
                            "flapping_threshold_low"
                        } else {
                            "flapping_threshold_high"
                        };
                        io.set(a, Expr::Num(n));
                    }
                }
                "notes" | "notes_url" | "action_url" | "icon_image" | "icon_image_alt" => {
                    io.set(d, Expr::str(v));
                }
                "contact_groups" => {
                    io.set("vars.mc_contact_groups", Expr::strs(o.names(d)));
                }
                "contacts" => {
                    io.set("vars.mc_contacts", Expr::strs(o.names(d)));
                }
                "notification_interval" => {
                    if let Some(n) = seconds_num(v) {
                        io.set("vars.mc_notification_interval", Expr::Num(n));
                    }
                }
                "first_notification_delay" => {
                    if let Some(n) = seconds_num(v) {
                        io.set("vars.mc_first_notification_delay", Expr::Num(n));
                    }
                }
                "notification_period" => {
                    io.set("vars.mc_notification_period", Expr::str(v));
                }
                "notification_options" => {
                    let (states, types) = notification_filter(v, host);
                    io.set("vars.mc_notification_states", idents(&states));
                    io.set("vars.mc_notification_types", idents(&types));
                }
                d if NAGIOS_ONLY.contains(&d) => {}
                d if d.starts_with('_')
                    && d.len() > 1
                    && d[1..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
                {
                    io.set(&format!("vars.{}", d[1..].to_ascii_lowercase()), Expr::str(v));
                }
                d => {
                    self.unmapped.entry((kind, d.to_string())).or_insert(o);
                }
            }
        }
        // A passive check's freshness threshold is its check interval: Icinga 2 runs the
        // check command (the dummy) when no result came in that long.
        if o.get("check_freshness") == Some("1")
            && let Some(t) = o.get("freshness_threshold").and_then(|t| t.trim().parse::<u64>().ok())
        {
            io.set("check_interval", Expr::Secs(t));
        }
        Ok(())
    }

    fn imports(o: &NObject, io: &mut IObject) {
        io.imports = o.names("use").into_iter().map(str::to_string).collect();
    }

    fn host(&mut self, o: &'a NObject) {
        let template = o.is_template();
        let Some(name) = o.name() else { return };
        let mut io = IObject::new("Host", name, if template { Head::Template } else { Head::Object });
        Self::imports(o, &mut io);
        if let Err(why) = self.checkable(o, &mut io, true) {
            self.errors.push(problem(o, format!("host {name} is left out: {why}")));
            return;
        }
        let mut groups: Vec<String> = o.names("hostgroups").into_iter().map(str::to_string).collect();
        if let Some(extra) = self.host_groups.get(name) {
            groups.extend(extra.iter().map(|g| g.to_string()));
        }
        if !groups.is_empty() {
            io.set("groups", Expr::strs(groups));
        }
        let path = if template {
            self.global_file(&o.file)
        } else {
            let zone = self.zone_of_host(name).unwrap_or(self.tree.master()).to_string();
            self.zone_file(&zone, &o.file)
        };
        if self.emit(path, o, &io) && !template {
            self.emitted_hosts.insert(name.to_string());
            self.note_recipients(o, name, true);
        }
    }

    /// Which contact groups and contacts an object of `host`'s zone notifies (through
    /// its templates too): the notification rules of that zone iterate over them.
    fn note_recipients(&mut self, o: &'a NObject, host: &str, is_host: bool) {
        let zone = self.zone_of_host(host).unwrap_or(self.tree.master()).to_string();
        let list = |v: Option<&str>| -> Vec<String> {
            v.map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
        };
        let (groups, users) = (
            list(self.effective(o, "contact_groups")),
            list(self.effective(o, "contacts")),
        );
        let used = self.used.entry((zone, is_host)).or_default();
        used.0.extend(groups);
        used.1.extend(users);
    }

    fn service(&mut self, o: &'a NObject) {
        let template = o.is_template();
        let mut io = if template {
            let Some(name) = o.get("name") else { return };
            IObject::new("Service", name, Head::Template)
        } else {
            let (Some(h), Some(d)) = (o.get("host_name"), o.get("service_description")) else {
                self.errors.push(problem(
                    o,
                    "a service without host_name or service_description is left out".into(),
                ));
                return;
            };
            if !self.emitted_hosts.contains(h) && !self.host_zone.contains_key(h) {
                self.errors
                    .push(problem(o, format!("service {h}/{d}: its host is not defined")));
                return;
            }
            let mut io = IObject::new("Service", d, Head::Object);
            io.set("host_name", Expr::str(h));
            io
        };
        Self::imports(o, &mut io);
        // host_name is set first, before the imports' attributes.
        if let Err(why) = self.checkable(o, &mut io, false) {
            self.errors
                .push(problem(o, format!("service {:?} is left out: {why}", io.name)));
            return;
        }
        let mut groups: Vec<String> = o.names("servicegroups").into_iter().map(str::to_string).collect();
        if let (Some(h), Some(d)) = (o.get("host_name"), o.get("service_description"))
            && let Some(extra) = self.svc_groups.get(&(h, d))
        {
            groups.extend(extra.iter().map(|g| g.to_string()));
        }
        if !groups.is_empty() && !template {
            io.set("groups", Expr::strs(groups));
        }
        let path = if template {
            self.global_file(&o.file)
        } else {
            let h = o.get("host_name").unwrap_or_default();
            let zone = self.zone_of_host(h).unwrap_or(self.tree.master()).to_string();
            self.zone_file(&zone, &o.file)
        };
        if self.emit(path, o, &io) && !template {
            let host = o.get("host_name").unwrap_or_default();
            self.emitted_services.insert((host.to_string(), io.name.clone()));
            self.note_recipients(o, host, false);
        }
    }

    fn command(&mut self, o: &'a NObject) {
        let (Some(name), Some(line)) = (o.get("command_name"), o.get("command_line")) else {
            return;
        };
        let roles = self
            .roles
            .get(name)
            .cloned()
            .unwrap_or_else(|| BTreeSet::from([Role::Check]));
        for role in roles {
            if role == Role::Check && ITL.iter().any(|i| i.ours == name) && self.base_commands.contains(name) {
                continue;
            }
            let mut io = IObject::new(role.kind(), name, Head::Object);
            let cluster = (role == Role::Check).then(|| cluster_line(line)).flatten();
            let expr = match &cluster {
                Some(_) => cluster_command_expr(line).ok_or_else(|| "not a cluster command line".to_string()),
                None => command_expr(line, role),
            };
            match expr {
                Ok(e) => {
                    io.set("command", e);
                }
                Err(why) => {
                    self.errors.push(problem(
                        o,
                        format!("command {name} is left out, and what uses it: {why}"),
                    ));
                    self.broken.insert(name.to_string());
                    continue;
                }
            }
            if let Some(c) = cluster {
                io.set(
                    "vars.mc_cluster_members",
                    Expr::Array(c.members.iter().map(|m| Expr::strs(m.clone())).collect()),
                );
                io.set(
                    "vars.mc_cluster_states",
                    Expr::Code(if c.services {
                        CLUSTER_SERVICE_STATES
                    } else {
                        CLUSTER_HOST_STATES
                    }),
                );
            }
            let path = self.global_file(&o.file);
            self.emit(path, o, &io);
        }
    }

    fn timeperiod(&mut self, o: &'a NObject) {
        let Some(name) = o.name() else { return };
        let mut io = IObject::new(
            "TimePeriod",
            name,
            if o.is_template() { Head::Template } else { Head::Object },
        );
        Self::imports(o, &mut io);
        let mut ranges = Vec::new();
        for (d, v) in &o.directives {
            match d.as_str() {
                "timeperiod_name" | "name" | "use" | "register" => {}
                "alias" => {
                    io.set("display_name", Expr::str(v));
                }
                "exclude" => {
                    io.set("excludes", Expr::strs(o.names("exclude")));
                }
                _ => ranges.push((d.replace('_', " "), Expr::str(v))),
            }
        }
        if !ranges.is_empty() {
            io.set("ranges", Expr::Dict(ranges));
        }
        let path = self.global_file(&o.file);
        self.emit(path, o, &io);
    }

    fn contact(&mut self, o: &'a NObject, by_user: &HashMap<&'a str, &'a NObject>) {
        let Some(name) = o.name() else { return };
        let template = o.is_template();
        let mut io = IObject::new("User", name, if template { Head::Template } else { Head::Object });
        Self::imports(o, &mut io);
        let mut options = String::new();
        for (d, v) in &o.directives {
            match d.as_str() {
                "alias" => {
                    io.set("display_name", Expr::str(v));
                }
                "email" | "pager" => {
                    io.set(d, Expr::str(v));
                }
                d if d.starts_with("address") && d[7..].parse::<u8>().is_ok() => {
                    io.set(&format!("vars.{d}"), Expr::str(v));
                }
                "service_notification_period" | "host_notification_period"
                    if io.get("period").is_none() || d == "service_notification_period" =>
                {
                    io.set("period", Expr::str(v));
                }
                "host_notifications_enabled" | "service_notifications_enabled" => {
                    let on = v.trim() != "0";
                    let before = matches!(io.get("enable_notifications"), Some(Expr::Bool(true)));
                    io.set("enable_notifications", Expr::Bool(on || before));
                }
                "host_notification_options" | "service_notification_options" => {
                    let host = d.starts_with("host");
                    if !options.is_empty() {
                        options.push(',');
                    }
                    // Host options are told apart by a prefix; see `user_filter`.
                    for opt in v.split(',') {
                        options.push_str(if host { "h" } else { "s" });
                        options.push_str(opt.trim());
                        options.push(',');
                    }
                }
                _ => {}
            }
        }
        if !options.is_empty() {
            let mut states = BTreeSet::new();
            let mut types: Vec<&str> = Vec::new();
            for opt in options.split(',').filter(|s| s.len() > 1) {
                let (host, letter) = (opt.starts_with('h'), &opt[1..]);
                let (s, t) = notification_filter(letter, host);
                states.extend(s);
                for t in t {
                    if !types.contains(&t) {
                        types.push(t);
                    }
                }
            }
            let states: Vec<&str> = states.into_iter().collect();
            io.set("states", idents(&states));
            io.set("types", idents(&types));
        }
        if !template {
            let mut groups: BTreeSet<String> = BTreeSet::new();
            let mine: Vec<&str> = self
                .user_groups
                .get(name)
                .map(|g| g.iter().copied().collect())
                .unwrap_or_default();
            for host in [true, false] {
                for c in self.user_commands(name, by_user, host) {
                    for g in &mine {
                        groups.insert(format!("{c}@{g}"));
                    }
                    if self.named_users.contains(name) {
                        groups.insert(format!("{c}@~{name}"));
                    }
                }
            }
            groups.extend(mine.iter().map(|g| g.to_string()));
            if !groups.is_empty() {
                io.set("groups", Expr::strs(groups));
            }
        }
        let path = self.global_file(&o.file);
        self.emit(path, o, &io);
    }

    fn contactgroup(&mut self, o: &'a NObject) {
        let Some(name) = o.get("contactgroup_name") else { return };
        let mut io = IObject::new("UserGroup", name, Head::Object);
        if let Some(a) = o.get("alias") {
            io.set("display_name", Expr::str(a));
        }
        if !o.names("contactgroup_members").is_empty() {
            io.set("groups", Expr::strs(o.names("contactgroup_members")));
        }
        let path = self.global_file(&o.file);
        if !self.emit(path.clone(), o, &io) {
            return;
        }
        // Its channel groups: one per notification command.
        let commands: Vec<String> = self
            .host_commands
            .iter()
            .chain(&self.service_commands)
            .cloned()
            .collect();
        for c in commands {
            let mut g = IObject::new("UserGroup", format!("{c}@{name}"), Head::Object);
            g.set("display_name", Expr::str(format!("{name}, notified by {c}")));
            self.emit(path.clone(), o, &g);
        }
    }

    fn group(&mut self, o: &'a NObject, kind: &'static str, name_directive: &str) {
        let Some(name) = o.get(name_directive) else { return };
        let mut io = IObject::new(kind, name, Head::Object);
        if let Some(a) = o.get("alias") {
            io.set("display_name", Expr::str(a));
        }
        let path = self.global_file(&o.file);
        self.emit(path, o, &io);
    }

    fn dependency(&mut self, o: &'a NObject, service: bool) {
        let parents = o.names("host_name");
        let children = o.names("dependent_host_name");
        let (ps, cs) = (o.get("service_description"), o.get("dependent_service_description"));
        let all: &[&str] = if service {
            &["OK", "Warning", "Critical", "Unknown"]
        } else {
            &["Up", "Down"]
        };
        let failing = |criteria: Option<&str>| -> Vec<&'static str> {
            let mut out = Vec::new();
            for c in criteria.unwrap_or("n").split(',').map(str::trim) {
                let s = match (c, service) {
                    ("o", true) => "OK",
                    ("w", true) => "Warning",
                    ("c", true) => "Critical",
                    ("u", true) => "Unknown",
                    ("o", false) => "Up",
                    ("d" | "u", false) => "Down",
                    _ => continue,
                };
                out.push(s);
            }
            out
        };
        let (nf, ef) = (
            failing(o.get("notification_failure_criteria")),
            failing(o.get("execution_failure_criteria")),
        );
        let ok: Vec<&str> = all
            .iter()
            .copied()
            .filter(|s| !nf.contains(s) && !ef.contains(s))
            .collect();
        for p in &parents {
            for c in &children {
                let (Some(pz), Some(cz)) = (self.zone_of_host(p), self.zone_of_host(c)) else {
                    self.errors.push(problem(
                        o,
                        format!("a dependency between {p} and {c}: a host is not defined"),
                    ));
                    continue;
                };
                let zone = self.tree.meet(pz, cz);
                let name = match (service, ps) {
                    (true, Some(ps)) => format!("mc-depends-on {p}/{ps}"),
                    _ => format!("mc-depends-on {p}"),
                };
                if service
                    && let (Some(ps), Some(cs)) = (ps, cs)
                    && (!self.emitted_services.contains(&(p.to_string(), ps.to_string()))
                        || !self.emitted_services.contains(&(c.to_string(), cs.to_string())))
                {
                    self.errors.push(problem(
                        o,
                        format!("the dependency of {c}/{cs} on {p}/{ps} is left out: one of its services is"),
                    ));
                    continue;
                }
                let mut io = IObject::new("Dependency", name, Head::Object);
                io.set("parent_host_name", Expr::str(*p));
                if let (true, Some(ps)) = (service, ps) {
                    io.set("parent_service_name", Expr::str(ps));
                }
                io.set("child_host_name", Expr::str(*c));
                if let (true, Some(cs)) = (service, cs) {
                    io.set("child_service_name", Expr::str(cs));
                }
                io.set("disable_notifications", Expr::Bool(!nf.is_empty()));
                io.set("disable_checks", Expr::Bool(!ef.is_empty()));
                io.set("states", idents(&ok));
                if let Some(period) = o.get("dependency_period") {
                    io.set("period", Expr::str(period));
                }
                if o.get("inherits_parent") == Some("1") {
                    io.set("ignore_soft_states", Expr::Bool(false));
                }
                let path = self.zone_file(&zone, &o.file);
                self.emit(path, o, &io);
            }
        }
    }

    fn escalation(&mut self, o: &'a NObject, index: usize, by_user: &HashMap<&'a str, &'a NObject>, service: bool) {
        let Some(h) = o.get("host_name") else { return };
        let s = o.get("service_description");
        let target = s.and_then(|s| self.services.get(&(h, s)).copied());
        if service
            && (target.is_none()
                || !self
                    .emitted_services
                    .contains(&(h.to_string(), s.unwrap_or_default().to_string())))
        {
            self.errors.push(problem(
                o,
                format!(
                    "an escalation of {h}/{} is left out: its service is",
                    s.unwrap_or_default()
                ),
            ));
            return;
        }
        let Some(zone) = self.zone_of_host(h).map(str::to_string) else {
            self.errors.push(problem(
                o,
                format!("an escalation of host {h} is left out: the host is not defined"),
            ));
            return;
        };
        // The service's (or host's) own interval counts the notifications.
        let interval = target
            .and_then(|t| self.effective(t, "notification_interval"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(60);
        let num = |d: &str| o.get(d).and_then(|v| v.trim().parse::<u64>().ok());
        let first = num("first_notification").unwrap_or(1).max(1);
        let last = num("last_notification").unwrap_or(0);
        let every = num("notification_interval").unwrap_or(interval);
        let mut times = vec![("begin".to_string(), Expr::Secs((first - 1) * interval * 60))];
        if last > 0 {
            times.push((
                "end".to_string(),
                Expr::Secs((last - 1) * interval * 60 + interval * 30),
            ));
        }
        let (states, types) = o
            .get("escalation_options")
            .map(|v| notification_filter(v, !service))
            .unwrap_or_default();
        let mut recipients: Vec<(String, String)> = Vec::new();
        for g in o.names("contact_groups") {
            let members = self.group_users.get(g).cloned().unwrap_or_default();
            let mut cmds = BTreeSet::new();
            for u in members {
                cmds.extend(self.user_commands(u, by_user, !service));
            }
            recipients.extend(cmds.into_iter().map(|c| (c.to_string(), format!("{c}@{g}"))));
        }
        for u in o.names("contacts") {
            for c in self.user_commands(u, by_user, !service) {
                recipients.push((c.to_string(), format!("{c}@~{u}")));
            }
        }
        for (command, group) in recipients {
            let mut io = IObject::new("Notification", format!("mc-escalation-{index}-{group}"), Head::Object);
            io.set("host_name", Expr::str(h));
            if let Some(s) = s {
                io.set("service_name", Expr::str(s));
            }
            io.set("command", Expr::str(command));
            io.set("user_groups", Expr::strs([group]));
            io.set("interval", Expr::Secs(every * 60));
            io.set("times", Expr::Dict(times.clone()));
            if let Some(p) = o.get("escalation_period") {
                io.set("period", Expr::str(p));
            }
            if o.get("escalation_options").is_some() {
                io.set("states", idents(&states));
                io.set("types", idents(&types));
            }
            let path = self.zone_file(&zone, &o.file);
            self.emit(path, o, &io);
        }
    }

    /// The notification apply rules: per notification command, one notification per
    /// contact group (and per named contact) of each host or service.
    /// The notification apply rules of `zone`: per notification command, over the contact
    /// groups (and named contacts) of the zone's objects that have a user with that
    /// command, and only for the zone's objects. A rule is written only where it has
    /// something to notify, so every node that loads it finds it matching.
    fn notification_rules(
        &self,
        zone: &str,
        by_user: &HashMap<&'a str, &'a NObject>,
    ) -> Result<String, crate::dsl::DslError> {
        let mut out = String::new();
        for (kind, var, commands, host) in [
            ("Host", "host", &self.host_commands, true),
            ("Service", "service", &self.service_commands, false),
        ] {
            let Some((used_groups, used_users)) = self.used.get(&(zone.to_string(), host)) else {
                continue;
            };
            for c in commands {
                let has = |u: &str| self.user_commands(u, by_user, host).contains(&c.as_str());
                let groups: Vec<&str> = used_groups
                    .iter()
                    .map(String::as_str)
                    .filter(|g| {
                        self.group_users
                            .get(g)
                            .is_some_and(|users| users.iter().any(|u| has(u)))
                    })
                    .collect();
                let users: Vec<&str> = used_users.iter().map(String::as_str).filter(|u| has(u)).collect();
                for (list, prefix, reach) in [
                    ("mc_contact_groups", format!("{c}@"), groups),
                    ("mc_contacts", format!("{c}@~"), users),
                ] {
                    if reach.is_empty() {
                        continue;
                    }
                    let p = quote("notification", &prefix)?;
                    let reach = reach
                        .iter()
                        .map(|r| quote("notification", r))
                        .collect::<Result<Vec<_>, _>>()?
                        .join(", ");
                    out.push_str(&format!(
                        "apply Notification {p} for (mc_to in {var}.vars.{list}.filter((mc_g) => mc_g in [ {reach} ])) to {kind} {{\n  command = {}\n  user_groups = [ {p} + mc_to ]\n",
                        quote("notification", c)?
                    ));
                    for (attr, v) in [
                        ("interval", "mc_notification_interval"),
                        ("period", "mc_notification_period"),
                        ("states", "mc_notification_states"),
                        ("types", "mc_notification_types"),
                    ] {
                        out.push_str(&format!(
                            "  if ({var}.vars.{v} != null) {{ {attr} = {var}.vars.{v} }}\n"
                        ));
                    }
                    out.push_str(&format!(
                        "  if ({var}.vars.mc_first_notification_delay != null) {{ times = {{ begin = {var}.vars.mc_first_notification_delay }} }}\n  assign where typeof({var}.vars.{list}) == Array && {var}.zone == {}\n}}\n\n",
                        quote("notification", zone)?
                    ));
                }
            }
        }
        Ok(out)
    }
}

fn split_command_name(v: &str) -> &str {
    // The name ends at the first `!` (a name cannot hold one).
    v.split('!').next().unwrap_or(v)
}

/// Map the assembled Nagios configuration to an Icinga 2 set on `tree`.
pub fn write(nagios: &Output, tree: &Tree) -> Result<Written, ReadError> {
    let objs = read_output(nagios)?;
    let mut ctx = Ctx {
        tree,
        templates: HashMap::new(),
        services: HashMap::new(),
        host_zone: HashMap::new(),
        roles: BTreeMap::new(),
        base_commands: BTreeSet::new(),
        broken: BTreeSet::new(),
        host_commands: BTreeSet::new(),
        service_commands: BTreeSet::new(),
        group_users: BTreeMap::new(),
        user_groups: BTreeMap::new(),
        named_users: BTreeSet::new(),
        svc_groups: HashMap::new(),
        host_groups: HashMap::new(),
        emitted_services: BTreeSet::new(),
        emitted_hosts: BTreeSet::new(),
        used: BTreeMap::new(),
        files: BTreeMap::new(),
        errors: Vec::new(),
        unmapped: BTreeMap::new(),
    };
    ctx.index(&objs);
    let by_user: HashMap<&str, &NObject> = objs
        .iter()
        .filter(|o| o.kind == ObjectKind::Contact)
        .filter_map(|o| o.name().map(|n| (n, o)))
        .collect();
    // Commands first (a broken one leaves out what uses it), then hosts, services, and
    // what refers to them.
    for o in objs.iter().filter(|o| o.kind == ObjectKind::Command) {
        ctx.command(o);
    }
    for o in objs.iter().filter(|o| o.kind == ObjectKind::Host) {
        ctx.host(o);
    }
    for o in objs.iter().filter(|o| o.kind == ObjectKind::Service) {
        ctx.service(o);
    }
    let mut escalations: HashMap<(String, String), usize> = HashMap::new();
    for o in &objs {
        match o.kind {
            ObjectKind::TimePeriod => ctx.timeperiod(o),
            ObjectKind::Contact => ctx.contact(o, &by_user),
            ObjectKind::ContactGroup => ctx.contactgroup(o),
            ObjectKind::HostGroup => ctx.group(o, "HostGroup", "hostgroup_name"),
            ObjectKind::ServiceGroup => ctx.group(o, "ServiceGroup", "servicegroup_name"),
            ObjectKind::ServiceDependency => ctx.dependency(o, true),
            ObjectKind::HostDependency => ctx.dependency(o, false),
            ObjectKind::ServiceEscalation | ObjectKind::HostEscalation => {
                let key = (
                    o.get("host_name").unwrap_or_default().to_string(),
                    o.get("service_description").unwrap_or_default().to_string(),
                );
                let n = escalations.entry(key).or_insert(0);
                *n += 1;
                ctx.escalation(o, *n, &by_user, o.kind == ObjectKind::ServiceEscalation);
            }
            _ => {}
        }
    }
    // Per-user channel groups, for `contacts` directives.
    let named: Vec<&str> = ctx.named_users.iter().copied().collect();
    if !named.is_empty() {
        let commands: Vec<String> = ctx.host_commands.iter().chain(&ctx.service_commands).cloned().collect();
        let path = PathBuf::from(ZONES_DIR)
            .join(&tree.global)
            .join("05-notifications.conf");
        for u in named {
            for c in &commands {
                let mut g = IObject::new("UserGroup", format!("{c}@~{u}"), Head::Object);
                g.set("display_name", Expr::str(format!("{u}, notified by {c}")));
                let text = ctx.files.entry(path.clone()).or_insert_with(|| HEADER.to_string());
                let mut s = String::new();
                if g.write_into(&mut s).is_ok() {
                    text.push_str(&s);
                }
            }
        }
    }
    let mut rules = Vec::new();
    for z in &tree.zones {
        match ctx.notification_rules(&z.name, &by_user) {
            Ok(text) if !text.is_empty() => rules.push((z.name.clone(), text)),
            Ok(_) => {}
            Err(e) => ctx.errors.push(Problem {
                file: PathBuf::new(),
                line: 0,
                machine: None,
                message: format!("the notification rules of zone {} are left out: {e}", z.name),
            }),
        }
    }
    let mut warnings = Vec::new();
    for ((kind, d), o) in &ctx.unmapped {
        warnings.push(problem(
            o,
            format!("directive {d} of a {kind} has no Icinga 2 equivalent and is not written (first seen here)"),
        ));
    }
    let Ctx {
        mut files, mut errors, ..
    } = ctx;
    for (zone, text) in rules {
        let path = PathBuf::from(ZONES_DIR).join(zone).join("05-notifications.conf");
        files.insert(path, format!("{HEADER}{text}"));
    }
    // Every zone's directory exists, even when empty, so that each node loads it.
    for z in tree.zones.iter().map(|z| z.name.clone()).chain([tree.global.clone()]) {
        let keep = PathBuf::from(ZONES_DIR).join(&z).join("00-zone.conf");
        files
            .entry(keep)
            .or_insert_with(|| format!("{HEADER}// The objects of zone {z}.\n"));
    }
    match tree.zones_conf(None) {
        Ok(t) => {
            files.insert(PathBuf::from(ZONES_CONF), t);
        }
        Err(e) => errors.push(Problem {
            file: PathBuf::from(ZONES_CONF),
            line: 0,
            machine: None,
            message: format!("the zones cannot be written: {e}"),
        }),
    }
    for z in tree.zones.iter().filter(|z| z.parent.is_some()) {
        match tree.zones_conf(Some(&z.name)) {
            Ok(t) => {
                files.insert(PathBuf::from(NODES_DIR).join(&z.name).join(ZONES_CONF), t);
            }
            Err(e) => errors.push(Problem {
                file: PathBuf::from(ZONES_CONF),
                line: 0,
                machine: None,
                message: format!("zone {}: {e}", z.name),
            }),
        }
    }
    Ok(Written {
        output: Output {
            files: files.into_iter().map(|(p, t)| (p, t.into())).collect(),
        },
        nodes: tree.nodes(),
        errors,
        warnings,
    })
}
