//! The LDAP users source against a real `slapd` over `ldapi://` (the harness in
//! `tests/src/slapd.rs`; CI installs `slapd` and `ldap-utils`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use monitor_engine::users::{ContactInfo, UserSource};
use monitor_integration_tests::slapd::{ROOT_DN, ROOT_PW, Slapd};
use monitor_runtime::users_ldap::{LdapBind, LdapConfig, LdapUsers, Membership};

const BASE: &str = "dc=example,dc=org";

/// posixAccount users and posixGroup groups (memberUid). alice has a jabberID.
const POSIX_SITE: &str = "dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
objectClass: posixAccount
objectClass: jabberUser
uid: alice
cn: Alice Example
sn: Example
uidNumber: 1001
gidNumber: 1001
homeDirectory: /home/alice
mail: alice@example.org
jabberID: alice@jabber.example.org

dn: uid=bob,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
objectClass: posixAccount
uid: bob
cn: Bob Example
sn: Example
uidNumber: 1002
gidNumber: 1002
homeDirectory: /home/bob
mail: bob@example.org

dn: uid=carol,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
objectClass: posixAccount
uid: carol
cn: Carol Example
sn: Example
uidNumber: 1003
gidNumber: 1003
homeDirectory: /home/carol
mail: carol@example.org

dn: cn=kdc,ou=groups,dc=example,dc=org
objectClass: posixGroup
cn: kdc
gidNumber: 2001
memberUid: alice
memberUid: bob

dn: cn=web,ou=groups,dc=example,dc=org
objectClass: posixGroup
cn: web
gidNumber: 2002
memberUid: bob
";

/// inetOrgPerson users and groupOfNames groups (member DNs, one written with other
/// case and spaces than the entry's DN).
const GROUP_OF_NAMES_SITE: &str = "dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups

dn: uid=dora,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: dora
cn: Dora Example
sn: Example
mail: dora@example.org

dn: uid=erik,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: erik
cn: Erik Example
sn: Example
mail: erik@example.org

dn: cn=jabber,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: jabber
member: uid=dora,ou=people,dc=example,dc=org
member: UID=Erik, OU=People, DC=Example, DC=Org

dn: cn=infrastructure,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: infrastructure
member: uid=erik,ou=people,dc=example,dc=org
";

fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn state_file(dir: &Path) -> PathBuf {
    dir.join("ldap-users.json")
}

fn posix_config(slapd: &Slapd, dir: &Path) -> LdapConfig {
    let mut cfg = LdapConfig::new(slapd.url(), BASE, state_file(dir));
    cfg.attrs.xmpp = Some("jabberID".into());
    cfg
}

fn contact<'c>(contacts: &'c [ContactInfo], name: &str) -> &'c ContactInfo {
    contacts
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no contact {name} in {contacts:?}"))
}

fn names(contacts: &[ContactInfo]) -> Vec<&str> {
    contacts.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn posix_groups_give_contacts_with_their_groups_and_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path(), POSIX_SITE);
    let users = LdapUsers::new(posix_config(&slapd, dir.path())).unwrap();
    let contacts = users.contacts().unwrap();
    assert_eq!(names(&contacts), ["alice", "bob", "carol"]);
    let alice = contact(&contacts, "alice");
    assert_eq!(alice.alias.as_deref(), Some("Alice Example"));
    assert_eq!(alice.email.as_deref(), Some("alice@example.org"));
    assert_eq!(alice.xmpp.as_deref(), Some("alice@jabber.example.org"));
    assert_eq!(alice.slack, None);
    assert_eq!(alice.groups, ["kdc"]);
    let bob = contact(&contacts, "bob");
    assert_eq!(bob.email.as_deref(), Some("bob@example.org"));
    assert_eq!(bob.xmpp, None);
    assert_eq!(bob.groups, ["kdc", "web"]);
    assert!(contact(&contacts, "carol").groups.is_empty());
    assert!(users.warnings().is_empty(), "{:?}", users.warnings());
    assert!(users.describe().starts_with("ldapi://"), "{}", users.describe());

    // The last good set is kept, mode 0600.
    let mode = std::fs::metadata(state_file(dir.path())).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn group_of_names_members_are_matched_by_dn() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path(), GROUP_OF_NAMES_SITE);
    let mut cfg = LdapConfig::new(slapd.url(), BASE, state_file(dir.path()));
    cfg.user_filter = "(objectClass=inetOrgPerson)".into();
    cfg.group_filter = "(objectClass=groupOfNames)".into();
    cfg.membership = Membership::MemberDn;
    let users = LdapUsers::new(cfg).unwrap();
    let contacts = users.contacts().unwrap();
    assert_eq!(names(&contacts), ["dora", "erik"]);
    assert_eq!(contact(&contacts, "dora").groups, ["jabber"]);
    assert_eq!(contact(&contacts, "erik").groups, ["infrastructure", "jabber"]);
    assert_eq!(contact(&contacts, "erik").email.as_deref(), Some("erik@example.org"));
    assert!(users.warnings().is_empty(), "{:?}", users.warnings());
}

#[test]
fn a_wanted_group_ldap_does_not_have_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path(), POSIX_SITE);
    let mut cfg = posix_config(&slapd, dir.path());
    cfg.wanted_groups = Some(vec!["kdc".into(), "ghosts".into()]);
    let users = LdapUsers::new(cfg).unwrap();
    let contacts = users.contacts().unwrap();
    assert_eq!(names(&contacts), ["alice", "bob", "carol"]);
    // Only wanted groups: bob's "web" is not looked up.
    assert_eq!(contact(&contacts, "bob").groups, ["kdc"]);
    assert_eq!(contact(&contacts, "alice").groups, ["kdc"]);
    assert_eq!(
        users.warnings(),
        ["group ghosts is not in LDAP; it is defined with no members"]
    );

    // set_wanted_groups, on a clone handed elsewhere, applies to the next read.
    let handle = users.clone();
    handle.set_wanted_groups(vec!["web".into()]);
    let contacts = users.contacts().unwrap();
    assert_eq!(contact(&contacts, "bob").groups, ["web"]);
    assert!(contact(&contacts, "alice").groups.is_empty());
    assert!(users.warnings().is_empty(), "{:?}", users.warnings());
}

#[test]
fn hostile_values_are_refused_with_a_warning_naming_the_entry() {
    let hostile_mail = "eve@example.org\n$USER1$'; touch /tmp/x";
    let ldif = format!(
        "{POSIX_SITE}
dn: uid=eve,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
objectClass: posixAccount
objectClass: jabberUser
uid: eve
cn: Eve Example
sn: Example
uidNumber: 1005
gidNumber: 1005
homeDirectory: /home/eve
mail:: {}
jabberID: eve@jabber.example.org

dn: uid=frank,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
objectClass: posixAccount
uid: frank
cn:: {}
sn: Example
uidNumber: 1006
gidNumber: 1006
homeDirectory: /home/frank
mail: -oProxyCommand=frank@example.org
mail: frank@example.org

dn: uid=mal!ory,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
objectClass: posixAccount
uid: mal!ory
cn: Mallory
sn: Example
uidNumber: 1007
gidNumber: 1007
homeDirectory: /home/mallory
mail: mallory@example.org

dn: cn=evil,ou=groups,dc=example,dc=org
objectClass: posixGroup
cn: evil
gidNumber: 2666
memberUid: eve
",
        b64(hostile_mail.as_bytes()),
        b64(b"Frank $HOSTNAME$"),
    );
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path(), &ldif);
    let users = LdapUsers::new(posix_config(&slapd, dir.path())).unwrap();
    let contacts = users.contacts().unwrap();
    let warnings = users.warnings();

    // The user with an unsafe name is left out, naming its DN.
    assert_eq!(names(&contacts), ["alice", "bob", "carol", "eve", "frank"]);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("uid=mal!ory,ou=people,dc=example,dc=org") && w.contains("left out")),
        "{warnings:?}"
    );
    // eve is kept, without the hostile address, with her XMPP address.
    let eve = contact(&contacts, "eve");
    assert_eq!(eve.email, None);
    assert_eq!(eve.xmpp.as_deref(), Some("eve@jabber.example.org"));
    assert_eq!(eve.groups, ["evil"]);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("uid=eve,ou=people,dc=example,dc=org") && w.contains("attribute mail")),
        "{warnings:?}"
    );
    // frank keeps his good address; the option-like one and the macro alias are refused.
    let frank = contact(&contacts, "frank");
    assert_eq!(frank.email.as_deref(), Some("frank@example.org"));
    assert_eq!(frank.alias, None);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("uid=frank,ou=people,dc=example,dc=org") && w.contains("attribute mail")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("uid=frank,ou=people,dc=example,dc=org") && w.contains("attribute cn")),
        "{warnings:?}"
    );
    // Nothing hostile in any contact, nor repeated in a warning.
    for c in &contacts {
        let all = format!(
            "{} {:?} {:?} {:?} {:?} {:?}",
            c.name, c.alias, c.email, c.groups, c.xmpp, c.slack
        );
        for bad in ["$", "'", "\\n", "touch", "-o", "!"] {
            assert!(!all.contains(bad), "{bad:?} in {all}");
        }
    }
    for w in &warnings {
        for bad in ["USER1", "touch", "ProxyCommand", "HOSTNAME", "\n"] {
            assert!(!w.contains(bad), "{bad:?} in warning {w:?}");
        }
    }
    // The saved set is as clean.
    let saved = std::fs::read_to_string(state_file(dir.path())).unwrap();
    assert!(!saved.contains("touch") && !saved.contains("USER1"), "{saved}");
}

fn password_file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let f = dir.join(name);
    std::fs::write(&f, text).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
    f
}

#[test]
fn simple_bind_reads_the_password_file_and_never_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path(), POSIX_SITE);
    let pw = password_file(dir.path(), "bind.pw", &format!("{ROOT_PW}\n"), 0o600);
    let mut cfg = posix_config(&slapd, dir.path());
    cfg.bind = LdapBind::Simple {
        dn: ROOT_DN.into(),
        password_file: pw.clone(),
    };

    // A password file others may read is refused.
    let loose = password_file(dir.path(), "loose.pw", ROOT_PW, 0o640);
    let mut loose_cfg = cfg.clone();
    loose_cfg.bind = LdapBind::Simple {
        dn: ROOT_DN.into(),
        password_file: loose,
    };
    let e = LdapUsers::new(loose_cfg).unwrap_err().to_string();
    assert!(e.contains("0640") && e.contains("0600"), "{e}");
    assert!(!e.contains(ROOT_PW), "{e}");

    let users = LdapUsers::new(cfg.clone()).unwrap();
    assert!(!format!("{users:?}").contains(ROOT_PW));
    let good = users.contacts().unwrap();
    assert_eq!(names(&good), ["alice", "bob", "carol"]);
    assert!(users.warnings().is_empty(), "{:?}", users.warnings());

    // The password is read at every bind: a wrong one fails the read, which falls back
    // on the last good set with a warning that does not show it.
    let wrong = "not-the-root-password-4711";
    std::fs::write(&pw, wrong).unwrap();
    let again = users.contacts().unwrap();
    assert_eq!(again, good);
    let w = users.warnings().join("\n");
    assert!(
        w.contains("LDAP unreachable (") && w.contains("invalidCredentials"),
        "{w}"
    );
    assert!(!w.contains(wrong) && !w.contains(ROOT_PW), "{w}");

    // With no last good set, a wrong password is an error, again without it.
    let mut fresh = cfg;
    fresh.state_file = dir.path().join("other-state.json");
    let e = LdapUsers::new(fresh).unwrap().contacts().unwrap_err().to_string();
    assert!(e.contains("bind") && e.contains("invalidCredentials"), "{e}");
    assert!(!e.contains(wrong) && !e.contains(ROOT_PW), "{e}");
}

#[test]
fn sasl_external_over_ldapi_binds_as_the_mapped_root_dn() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path(), POSIX_SITE);

    // What slapd makes of the socket's peer credentials (root → the root DN, by the
    // harness's authz-regexp).
    let mut conn = ldap3::LdapConn::new(slapd.url()).unwrap();
    conn.sasl_external_bind().unwrap().success().unwrap();
    let (exop, _) = conn.extended(ldap3::exop::WhoAmI).unwrap().success().unwrap();
    let whoami: ldap3::exop::WhoAmIResp = exop.parse();
    if nix::unistd::geteuid().is_root() {
        assert_eq!(whoami.authzid, format!("dn:{ROOT_DN}"));
    } else {
        assert!(
            whoami.authzid.contains("cn=peercred,cn=external,cn=auth"),
            "{}",
            whoami.authzid
        );
    }
    conn.unbind().unwrap();

    let mut cfg = posix_config(&slapd, dir.path());
    cfg.bind = LdapBind::SaslExternal;
    let users = LdapUsers::new(cfg).unwrap();
    assert_eq!(names(&users.contacts().unwrap()), ["alice", "bob", "carol"]);
    assert!(users.warnings().is_empty(), "{:?}", users.warnings());

    // EXTERNAL needs the socket (no client certificate is configured).
    let mut tcp = LdapConfig::new("ldap://ldap.example.org", BASE, state_file(dir.path()));
    tcp.bind = LdapBind::SaslExternal;
    assert!(LdapUsers::new(tcp).is_err());
}

fn assert_fell_back(users: &LdapUsers) {
    let w = users.warnings();
    assert!(
        w.iter()
            .any(|w| w.starts_with("LDAP unreachable (") && w.contains("; using the last good user set from ")),
        "{w:?}"
    );
}

#[test]
fn an_outage_keeps_the_last_good_set_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut slapd = Slapd::start(dir.path(), POSIX_SITE);
    let users = LdapUsers::new(posix_config(&slapd, dir.path())).unwrap();
    let good = users.contacts().unwrap();
    assert_eq!(names(&good), ["alice", "bob", "carol"]);

    slapd.stop();
    assert_eq!(users.contacts().unwrap(), good);
    assert_fell_back(&users);

    // A restart of monitor-compile during the outage: the state file has the set.
    let restarted = LdapUsers::new(posix_config(&slapd, dir.path())).unwrap();
    assert_eq!(restarted.contacts().unwrap(), good);
    assert_fell_back(&restarted);

    // No state file and LDAP down: an error (the engine holds the pass).
    let mut cfg = posix_config(&slapd, dir.path());
    cfg.state_file = dir.path().join("never-written.json");
    let e = LdapUsers::new(cfg).unwrap().contacts().unwrap_err().to_string();
    assert!(
        e.contains("LDAP unreachable") && e.contains("no last good user set"),
        "{e}"
    );

    // LDAP back: fresh data, no warning.
    slapd.restart();
    assert_eq!(restarted.contacts().unwrap(), good);
    assert!(restarted.warnings().is_empty(), "{:?}", restarted.warnings());
}

#[test]
fn a_directory_that_suddenly_has_no_users_keeps_the_last_good_set() {
    let dir = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(dir.path(), POSIX_SITE);
    let users = LdapUsers::new(posix_config(&slapd, dir.path())).unwrap();
    let good = users.contacts().unwrap();

    let mut conn = ldap3::LdapConn::new(slapd.url()).unwrap();
    conn.simple_bind(ROOT_DN, ROOT_PW).unwrap().success().unwrap();
    for u in ["alice", "bob", "carol"] {
        conn.delete(&format!("uid={u},ou=people,{BASE}"))
            .unwrap()
            .success()
            .unwrap();
    }
    conn.unbind().unwrap();

    assert_eq!(users.contacts().unwrap(), good);
    assert_fell_back(&users);
    assert!(users.warnings()[0].contains("found no entry"), "{:?}", users.warnings());
}

#[test]
fn the_fallback_warning_reaches_the_pass_report() {
    let dir = tempfile::tempdir().unwrap();
    let mut slapd = Slapd::start(&dir.path().join("ldap").tap_mkdir(), POSIX_SITE);
    let profiles = dir.path().join("profiles").tap_mkdir();
    monitor_integration_tests::copy_samples(&profiles);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&profiles)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let users = LdapUsers::new(posix_config(&slapd, dir.path())).unwrap();
    let mut engine = monitor_engine::Engine::new(
        monitor_integration_tests::translators(),
        Box::new(users),
        monitor_engine::base::BaseConfig::default(),
    );
    let fallback = |r: &monitor_engine::report::PassReport| {
        r.warnings
            .iter()
            .filter(|p| p.to_string().contains("LDAP unreachable"))
            .count()
    };
    let first = engine.run_pass(&files).unwrap();
    assert_eq!(fallback(&first.report), 0, "{:?}", first.report.warnings);

    // Same inputs: the assembly is reused, and the fallback warning is still reported.
    slapd.stop();
    let second = engine.run_pass(&files).unwrap();
    assert_eq!(second.report.assembly, monitor_engine::report::Assembly::Reused);
    assert_eq!(fallback(&second.report), 1, "{:?}", second.report.warnings);
    assert_eq!(second.output, first.output);

    // LDAP back: no stale warning from the kept report.
    slapd.restart();
    let third = engine.run_pass(&files).unwrap();
    assert_eq!(fallback(&third.report), 0, "{:?}", third.report.warnings);
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}
