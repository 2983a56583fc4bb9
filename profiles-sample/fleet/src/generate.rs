//! A realistic fleet of LCFG profiles, reproducible from a seed.
//!
//! Each machine has about 40 components, most of them not monitored, with plain
//! resources, tag lists and nested lists, a `cfg:derivation` on every resource, and a
//! package list sized so that profiles average the requested size (500 to 2,000
//! packages). Machines take roles: KDCs (kerberos; realms of up to eight, the first the
//! master), jabber servers (jabberd and a kerberos slave), web servers (cosign in pairs of
//! replicas, and apacheconf with nested vhost lists) and plain machines.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

/// Unmonitored components every machine carries (real LCFG component names).
const OTHER: [&str; 36] = [
    "auth",
    "boot",
    "client",
    "cron",
    "dns",
    "file",
    "fstab",
    "grub",
    "hardware",
    "inv",
    "iptables",
    "kernel",
    "ldap",
    "logrotate",
    "mailng",
    "network",
    "nfs",
    "ntp",
    "openssh",
    "pam",
    "postgresql",
    "rpmcache",
    "sysinfo",
    "syslog",
    "systemd",
    "tmpdir",
    "updaterpms",
    "sudo",
    "snmp",
    "smartd",
    "sysctl",
    "udev",
    "usermgmt",
    "x509",
    "yum",
    "xinetd",
];

/// How the fleet is shaped.
#[derive(Debug, Clone)]
pub struct Spec {
    pub machines: usize,
    pub avg_kb: usize,
    pub seed: u64,
}

/// The role of machine `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Kdc { realm: usize, master: bool },
    Jabber { realm: usize },
    Web { pair: usize },
    Plain { realm: usize },
}

fn role(i: usize) -> Role {
    // Blocks of 20 machines: 8 KDCs of one realm, 4 jabber, 4 web (two replica pairs), 4 plain.
    let block = i / 20;
    match i % 20 {
        k @ 0..=7 => Role::Kdc {
            realm: block,
            master: k == 0,
        },
        8..=11 => Role::Jabber { realm: block },
        k @ 12..=15 => Role::Web {
            pair: block * 2 + (k - 12) / 2,
        },
        _ => Role::Plain { realm: block },
    }
}

/// The file name of machine `i`.
pub fn file_name(i: usize) -> String {
    format!("m{i:06}.xml")
}

fn node(i: usize) -> String {
    format!("m{i:06}")
}

struct Writer {
    s: String,
    line: u32,
}

impl Writer {
    fn drv(&mut self, file: &str) -> String {
        self.line += 1;
        format!("/var/lcfg/conf/server/{file}:{}", self.line)
    }

    fn res(&mut self, name: &str, value: &str, file: &str) {
        let d = self.drv(file);
        let _ = writeln!(self.s, "    <{name} cfg:derivation=\"{d}\">{value}</{name}>");
    }
}

/// One machine's profile. `generation` changes real resource values (for `touch`): an
/// unmonitored component's and kerberos's log level, the cosignd port (a check's
/// argument), and on odd generations one more apacheconf virtual host (a new service).
pub fn profile(spec: &Spec, i: usize, generation: u64) -> String {
    let mut rng = fastrand::Rng::with_seed(spec.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut w = Writer {
        s: String::with_capacity(spec.avg_kb * 1024 + 4096),
        line: 0,
    };
    let role = role(i);
    let monitored: Vec<&str> = match role {
        Role::Kdc { .. } => vec!["kerberos"],
        Role::Jabber { .. } => vec!["kerberos", "jabberd"],
        Role::Web { .. } => vec!["cosign", "apacheconf"],
        Role::Plain { .. } => vec![],
    };
    w.s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<profile xmlns=\"http://www.lcfg.org/namespace/profile-1.0\" xmlns:cfg=\"http://www.lcfg.org/namespace/profile-1.0\">\n <lcfg>\n");
    let _ = writeln!(
        w.s,
        "  <published_by>lcfgsrv1.example.org</published_by>\n  <published_at>{}</published_at>\n  <server_version>4.1.3</server_version>",
        1_741_600_000 + generation
    );
    w.s.push_str("  <components>\n   <profile>\n");
    w.res("node", &node(i), "source/node");
    w.res("domain", "example.org", "include/site/example.h");
    let mut all: Vec<&str> = OTHER.to_vec();
    all.extend(&monitored);
    all.push("nagios_client");
    w.res("components", &all.join(" "), "defaults/profile-2.def");
    w.s.push_str("   </profile>\n");

    for (k, comp) in OTHER.iter().enumerate() {
        let _ = writeln!(w.s, "   <{comp}>");
        let file = format!("defaults/{comp}-1.def");
        for r in 0..rng.usize(2..6) {
            let value = format!("value-{k}-{r}-{}", rng.u32(..100_000));
            w.res(&format!("setting{r}"), &value, &file);
        }
        w.res(
            "loglevel",
            if generation.is_multiple_of(2) { "info" } else { "notice" },
            &file,
        );
        if k % 4 == 0 {
            // A tag list with records.
            let tags: Vec<String> = (0..rng.usize(2..4)).map(|t| format!("t{t}")).collect();
            let d = w.drv(&file);
            let _ = writeln!(
                w.s,
                "    <entries cfg:template=\"entry_name_$ entry_value_$\" cfg:derivation=\"{d}\">"
            );
            for t in &tags {
                let _ = writeln!(w.s, "     <entries_RECORD cfg:name=\"{t}\">");
                w.res("entry_name", &format!("{comp}-{t}"), &file);
                w.res("entry_value", &format!("{}", rng.u32(..1000)), &file);
                w.s.push_str("     </entries_RECORD>\n");
            }
            w.s.push_str("    </entries>\n");
        }
        if k % 9 == 0 {
            // A nested list.
            let d = w.drv(&file);
            let _ = writeln!(
                w.s,
                "    <groups cfg:template=\"group_name_$ members_$\" cfg:derivation=\"{d}\">"
            );
            for g in 0..2 {
                let _ = writeln!(w.s, "     <groups_RECORD cfg:name=\"g{g}\">");
                w.res("group_name", &format!("group{g}"), &file);
                let d = w.drv(&file);
                let _ = writeln!(
                    w.s,
                    "      <members cfg:template=\"member_$_$\" cfg:derivation=\"{d}\">"
                );
                for m in 0..3 {
                    let _ = writeln!(w.s, "       <members_RECORD cfg:name=\"u{m}\">");
                    w.res("member", &format!("user{m}"), &file);
                    w.s.push_str("       </members_RECORD>\n");
                }
                w.s.push_str("      </members>\n     </groups_RECORD>\n");
            }
            w.s.push_str("    </groups>\n");
        }
        let _ = writeln!(w.s, "   </{comp}>");
    }

    match role {
        Role::Kdc { realm, master } => kerberos(&mut w, realm, if master { "master" } else { "slave" }, generation),
        Role::Jabber { realm } => {
            kerberos(&mut w, realm, "slave", generation);
            w.s.push_str("   <jabberd>\n");
            w.res("hostname", &format!("{}.example.org", node(i)), "include/site/jabber.h");
            w.res("c2s_pemfile", "/etc/pki/jabberd/server.pem", "include/site/jabber.h");
            w.res("c2s_port", "5222", "defaults/jabberd-1.def");
            w.res("nagios_groups", "jabber infrastructure", "include/site/jabber.h");
            w.s.push_str("   </jabberd>\n");
        }
        Role::Web { pair } => {
            let partner = if i.is_multiple_of(2) { i + 1 } else { i - 1 };
            w.s.push_str("   <cosign>\n");
            w.res("type", "server", "include/site/weblogin.h");
            // A new generation moves cosignd to another port: a change to a check.
            w.res("port", &(6663 + generation).to_string(), "defaults/cosign-2.def");
            w.res(
                "loginurl",
                &format!("https://weblogin{pair}.example.org/cosign-bin/cosign.cgi?cosign-cs&amp;x"),
                "include/site/weblogin.h",
            );
            let d = w.drv("include/site/weblogin.h");
            let _ = writeln!(
                w.s,
                "    <replicas cfg:template=\"replica_host_$\" cfg:derivation=\"{d}\">\n     <replicas_RECORD cfg:name=\"{}\">",
                node(partner)
            );
            w.res(
                "replica_host",
                &format!("{}.example.org", node(partner)),
                "include/site/weblogin.h",
            );
            w.s.push_str("     </replicas_RECORD>\n    </replicas>\n");
            w.res("nagios_groups", "weblogin", "include/site/weblogin.h");
            w.s.push_str("   </cosign>\n   <apacheconf>\n");
            let d = w.drv("include/site/web.h");
            let _ = writeln!(
                w.s,
                "    <vhosts cfg:template=\"vhost_name_$ vhost_port_$ vhost_ssl_$ vhost_aliases_$\" cfg:derivation=\"{d}\">"
            );
            let vhosts = rng.usize(1..5);
            // An odd generation adds a site: a new service.
            for v in 0..vhosts + (generation % 2) as usize {
                let _ = writeln!(w.s, "     <vhosts_RECORD cfg:name=\"v{v}\">");
                w.res(
                    "vhost_name",
                    &format!("site{v}.{}.example.org", node(i)),
                    "include/site/web.h",
                );
                w.res("vhost_port", "443", "include/site/web.h");
                w.res("vhost_ssl", "yes", "include/site/web.h");
                let d = w.drv("include/site/web.h");
                let _ = writeln!(
                    w.s,
                    "      <vhost_aliases cfg:template=\"vhost_alias_$_$\" cfg:derivation=\"{d}\">\n       <vhost_aliases_RECORD cfg:name=\"a\">"
                );
                w.res("vhost_alias", &format!("alias{v}.example.org"), "include/site/web.h");
                w.s.push_str("       </vhost_aliases_RECORD>\n      </vhost_aliases>\n     </vhosts_RECORD>\n");
            }
            w.s.push_str("    </vhosts>\n");
            w.res("nagios_groups", "www", "include/site/web.h");
            w.s.push_str("   </apacheconf>\n");
        }
        Role::Plain { .. } => {}
    }
    w.s.push_str("   <nagios_client>\n");
    w.res("components", &monitored.join(" "), "include/site/nagios.h");
    w.s.push_str("   </nagios_client>\n  </components>\n  <packages>\n");

    // Fill to the target size with packages (500 to 2,000 of them).
    let target = (spec.avg_kb * 1024) as f64 * (0.7 + rng.f64() * 0.6);
    let mut count = 0;
    while count < 2000 && (count < 500 || (w.s.len() as f64) < target) {
        let d = w.drv("packages/site/base.rpms");
        let _ = writeln!(
            w.s,
            "   <package cfg:derivation=\"{d}\"><name>pkg-{}-{count}</name><v>{}.{}.{}</v><r>{}.el9/x86_64</r></package>",
            rng.u32(..50_000),
            rng.u8(..10),
            rng.u8(..30),
            rng.u8(..100),
            rng.u8(1..9)
        );
        count += 1;
    }
    w.s.push_str("  </packages>\n </lcfg>\n</profile>\n");
    w.s
}

fn kerberos(w: &mut Writer, realm: usize, kind: &str, generation: u64) {
    w.s.push_str("   <kerberos>\n");
    w.res("type", kind, "include/site/kdc.h");
    w.res("realm", &format!("REALM{realm}.EXAMPLE.ORG"), "defaults/kerberos-3.def");
    w.res(
        "loglevel",
        if generation.is_multiple_of(2) { "info" } else { "debug" },
        "defaults/kerberos-3.def",
    );
    w.res("nagios_groups", "kdc infrastructure", "include/site/kdc.h");
    w.s.push_str("   </kerberos>\n");
}

/// Write the whole fleet into `dir` (in parallel). Returns the bytes written.
pub fn generate(spec: &Spec, dir: &Path) -> std::io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    (0..spec.machines)
        .into_par_iter()
        .map(|i| {
            let text = profile(spec, i, 0);
            std::fs::write(dir.join(file_name(i)), &text)?;
            Ok(text.len() as u64)
        })
        .sum()
}

/// Give machine `i` a real content change (generation `round + 1`).
pub fn touch_one(spec: &Spec, dir: &Path, i: usize, round: u64) -> std::io::Result<PathBuf> {
    let path = dir.join(file_name(i));
    std::fs::write(&path, profile(spec, i, round + 1))?;
    Ok(path)
}

/// Give `count` machines a real content change (a new generation), chosen from the seed.
/// Returns the files changed.
pub fn touch(spec: &Spec, dir: &Path, count: usize, round: u64) -> std::io::Result<Vec<PathBuf>> {
    let mut rng = fastrand::Rng::with_seed(spec.seed.wrapping_add(round));
    let mut chosen = std::collections::BTreeSet::new();
    while chosen.len() < count.min(spec.machines) {
        chosen.insert(rng.usize(..spec.machines));
    }
    let mut out = Vec::new();
    for i in chosen {
        let path = dir.join(file_name(i));
        std::fs::write(&path, profile(spec, i, round + 1))?;
        out.push(path);
    }
    Ok(out)
}
