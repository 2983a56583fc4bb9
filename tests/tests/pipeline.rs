//! Profiles in, validated Nagios configuration out: the engine against real profiles
//! and the real `nagios4 -v`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use monitor_engine::base::BaseConfig;
use monitor_engine::users::TomlUsers;
use monitor_engine::{Engine, find_profiles, machine_file};
use monitor_integration_tests::*;
use monitor_runtime::validate::validate_dir;
use monitor_runtime::writer::write_output;
use monitor_sdk::nagios::{Bundle, CheckCommand, Service};
use monitor_sdk::profile::Component;
use monitor_sdk::translator::{Context, TranslateError, Translator};

fn read_tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = walk(dir)
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(dir).unwrap().display().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn sample_fleet_passes_real_nagios_with_zero_errors() {
    let out = output_dir();
    let files = find_profiles(&samples()).unwrap();
    assert_eq!(files.len(), 5);
    let result = engine().run_pass(&files).unwrap();
    assert!(result.report.errors.is_empty(), "{:?}", result.report.errors);
    assert_eq!(result.report.machines, 5);
    assert_eq!(result.report.services, 23);
    write_output(out.path(), &result.output).unwrap();
    let check = validate_dir(&nagios_bin(), out.path()).unwrap();
    assert!(check.ok, "nagios -v failed:\n{}", check.output);
    assert!(check.errors.is_empty());
    let jabber = std::fs::read_to_string(out.path().join(machine_file("jabber1.example.org"))).unwrap();
    assert!(jabber.contains("service_description             Jabber SSL"));
    assert!(jabber.contains("check_command                   mc-check-kdc!EXAMPLE.ORG!"));
    let contacts = std::fs::read_to_string(out.path().join("30-contacts.cfg")).unwrap();
    for group in ["kdc", "infrastructure", "jabber"] {
        assert_eq!(
            contacts
                .matches(&format!("contactgroup_name               {group}\n"))
                .count(),
            1,
            "{group} defined once"
        );
    }
}

#[test]
fn hostile_profile_value_cannot_create_an_object() {
    let dir = tempfile::tempdir().unwrap();
    let evil = "EXAMPLE.ORG\n}\ndefine command{\n command_name evil\n command_line /bin/rm -rf /\n}\ndefine service{";
    let xml = profile_xml(
        "evil",
        "kerberos",
        &kerberos_xml("master", &evil.replace('<', "&lt;"), "kdc"),
    );
    std::fs::write(dir.path().join("evil.xml"), xml).unwrap();
    let semi = profile_xml(
        "semi",
        "kerberos",
        "<kerberos><type>master</type><realm>SEMI.ORG</realm><nagios_principal>a;b!c$USER1$</nagios_principal><nagios_groups>kdc</nagios_groups></kerberos>",
    );
    std::fs::write(dir.path().join("semi.xml"), semi).unwrap();
    copy_samples(dir.path());
    let out = output_dir();
    let result = engine().run_pass(&find_profiles(dir.path()).unwrap()).unwrap();
    write_output(out.path(), &result.output).unwrap();
    let all: String = read_tree(out.path())
        .into_iter()
        .map(|(_, b)| String::from_utf8(b).unwrap())
        .collect();
    assert!(
        !all.contains("rm -rf") && !all.contains("command_name evil"),
        "the hostile value reached the output"
    );
    for (name, text) in read_tree(out.path()) {
        if name.starts_with("20-machines/") {
            assert!(
                !text.windows(14).any(|w| w == b"define command"),
                "{name} defines a command"
            );
        }
    }
    assert_eq!(result.report.errors.len(), 1, "{:?}", result.report.errors);
    let e = &result.report.errors[0];
    assert_eq!(e.machine.as_deref(), Some("evil.example.org"));
    assert!(e.message.contains("newline"), "{e}");
    // ; ! and $ are escaped, not passed through.
    let semi = std::fs::read_to_string(out.path().join(machine_file("semi.example.org"))).unwrap();
    assert!(
        semi.contains("mc-check-kdc!SEMI.ORG!a\\;b\\!c$$USER1$$!/etc/nagios4/krb5.keytab"),
        "{semi}"
    );
    let check = validate_dir(&nagios_bin(), out.path()).unwrap();
    assert!(check.ok, "{}", check.output);
    // Every machine is still there (evil's host without its failed service).
    assert_eq!(result.report.machines, 5);
}

#[test]
fn malformed_profiles_fail_only_their_own_machine() {
    let dir = tempfile::tempdir().unwrap();
    copy_samples(dir.path());
    let good = profile_xml("trunc", "kerberos", &kerberos_xml("master", "EXAMPLE.ORG", "kdc"));
    std::fs::write(dir.path().join("trunc.xml"), &good[..good.len() / 2]).unwrap();
    std::fs::write(
        dir.path().join("wrongroot.xml"),
        "<?xml version=\"1.0\"?><notaprofile><x/></notaprofile>",
    )
    .unwrap();
    let conflict = profile_xml(
        "conflict",
        "kerberos",
        "   <kerberos><type>master</type><realm>A</realm><realm>B</realm><nagios_groups>kdc</nagios_groups></kerberos>",
    );
    std::fs::write(dir.path().join("conflict.xml"), conflict).unwrap();
    let result = engine().run_pass(&find_profiles(dir.path()).unwrap()).unwrap();
    let errs: Vec<String> = result.report.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(
        errs.iter()
            .any(|e| e.contains("trunc.xml") && e.contains("unexpected end of file")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("wrongroot.xml") && e.contains("not an LCFG profile")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("conflict.xml:") && e.contains("kerberos.realm") && e.contains("equal priority")),
        "{errs:#?}"
    );
    assert_eq!(result.report.machines, 3, "the samples still compile");
    // The report keeps where each error is, as fields (the JSON report's too).
    let conflict = result
        .report
        .errors
        .iter()
        .find(|p| p.message.contains("equal priority"))
        .unwrap();
    assert_eq!(conflict.element.as_deref(), Some("lcfg/components/kerberos/realm"));
    assert!(conflict.line.is_some() && conflict.column.is_some(), "{conflict:?}");
}

#[test]
fn unknown_components_contexts_nested_lists_gzip_and_doctype_compile() {
    let dir = tempfile::tempdir().unwrap();
    copy_samples(dir.path());
    let ctx = profile_xml(
        "ctx",
        "kerberos mystery",
        r#"   <kerberos><type cfg:context="debug">client</type><type>slave</type><realm>EXAMPLE.ORG</realm><nagios_groups cfg:context="!production">kdc</nagios_groups><nagios_groups>nobody</nagios_groups></kerberos>"#,
    );
    std::fs::write(dir.path().join("ctx.xml"), &ctx).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(
        &mut gz,
        profile_xml("zipped", "kerberos", &kerberos_xml("slave", "EXAMPLE.ORG", "kdc")).as_bytes(),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("nested")).unwrap();
    std::fs::write(dir.path().join("nested/zipped.xml.gz"), gz.finish().unwrap()).unwrap();
    let doctype = profile_xml("dt", "kerberos", &kerberos_xml("master", "&realm;", "kdc")).replacen(
        "<profile ",
        "<!DOCTYPE profile [ <!ENTITY realm \"DT.ORG\"> ]>\n<profile ",
        1,
    );
    std::fs::write(dir.path().join("dt.xml"), doctype).unwrap();
    let result = engine().run_pass(&find_profiles(dir.path()).unwrap()).unwrap();
    assert!(result.report.errors.is_empty(), "{:?}", result.report.errors);
    assert_eq!(result.report.machines, 6);
    let unknown: Vec<_> = result
        .report
        .unknown_components
        .iter()
        .map(|u| format!("{} {}", u.machine.as_deref().unwrap(), u.component.as_deref().unwrap()))
        .collect();
    assert_eq!(unknown, ["ctx.example.org mystery"]);
    let out = output_dir();
    write_output(out.path(), &result.output).unwrap();
    let ctx_cfg = std::fs::read_to_string(out.path().join(machine_file("ctx.example.org"))).unwrap();
    assert!(
        ctx_cfg.contains("contact_groups                  kdc\n"),
        "!production wins: {ctx_cfg}"
    );
    assert!(
        std::fs::read_to_string(out.path().join(machine_file("dt.example.org")))
            .unwrap()
            .contains("mc-check-kdc!DT.ORG")
    );
    assert!(
        std::fs::read_to_string(out.path().join(machine_file("zipped.example.org")))
            .unwrap()
            .contains("host_name                       zipped.example.org")
    );
    assert!(validate_dir(&nagios_bin(), out.path()).unwrap().ok);
}

/// Counts calls, to prove what the cache skips.
struct Counting {
    translates: Arc<AtomicUsize>,
    unchanged: Arc<AtomicUsize>,
}

impl Translator for Counting {
    fn component(&self) -> &str {
        "kerberos"
    }
    fn version(&self) -> &str {
        "1"
    }
    fn translate(&self, machine: &str, c: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
        self.translates.fetch_add(1, Ordering::SeqCst);
        let groups = monitor_sdk::helpers::handle_contacts(c, ctx)?;
        let realm = c
            .get_nonempty("realm")
            .ok_or_else(|| TranslateError::missing("realm"))?;
        Ok(Bundle::new().with(
            Service::new("mc-default-service")
                .host_name(machine)
                .service_description("Kerberos KDC")
                .check_command(CheckCommand::new("mc-check-host-alive").arg(realm))
                .contact_groups(groups),
        ))
    }
    fn notify_unchanged(&self, _machine: &str) {
        self.unchanged.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn second_pass_over_unchanged_profiles_parses_and_translates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    copy_samples(dir.path());
    let translates = Arc::new(AtomicUsize::new(0));
    let unchanged = Arc::new(AtomicUsize::new(0));
    let counting = Counting {
        translates: translates.clone(),
        unchanged: unchanged.clone(),
    };
    let mut engine = Engine::new(
        vec![Box::new(counting), Box::new(translator_jabberd::Jabberd)],
        Box::new(TomlUsers::new(samples().join("users.toml"))),
        BaseConfig::default(),
    );
    let files = find_profiles(dir.path()).unwrap();
    let out = output_dir();

    let first = engine.run_pass(&files).unwrap();
    assert_eq!(translates.load(Ordering::SeqCst), 2, "kdc1 and jabber1");
    assert_eq!(first.report.parsed, 3);
    write_output(out.path(), &first.output).unwrap();
    let before = read_tree(out.path());

    let second = engine.run_pass(&files).unwrap();
    assert_eq!(translates.load(Ordering::SeqCst), 2, "no translate on the second pass");
    assert_eq!(
        unchanged.load(Ordering::SeqCst),
        2,
        "notify_unchanged for kdc1 and jabber1"
    );
    assert_eq!(second.report.parsed, 0, "nothing parsed");
    assert_eq!(second.report.translated, 0);
    assert_eq!(second.report.cache_hits, 3);
    let stats = write_output(out.path(), &second.output).unwrap();
    assert_eq!(stats.written, 0, "nothing rewritten");
    assert_eq!(read_tree(out.path()), before, "byte-identical output");
    // Contact groups registered on the first pass are replayed from the cache.
    assert!(second.output.files[Path::new("30-contacts.cfg")].contains("contactgroup_name               kdc\n"));

    // One changed profile: exactly one machine is parsed and translated.
    let kdc = std::fs::read_to_string(dir.path().join("kdc1.xml"))
        .unwrap()
        .replace("EXAMPLE.ORG", "NEW.ORG");
    std::fs::write(dir.path().join("kdc1.xml"), kdc).unwrap();
    let third = engine.run_pass(&files).unwrap();
    assert_eq!(third.report.parsed, 1);
    assert_eq!(translates.load(Ordering::SeqCst), 3);
    let stats = write_output(out.path(), &third.output).unwrap();
    assert_eq!(stats.written, 1, "only kdc1's file changes");
}

#[test]
fn broken_new_profile_keeps_last_good_configuration() {
    let dir = tempfile::tempdir().unwrap();
    copy_samples(dir.path());
    let files = find_profiles(dir.path()).unwrap();
    let mut engine = engine();
    let first = engine.run_pass(&files).unwrap();
    let kdc_path = &machine_file("kdc1.example.org");
    let good = first.output.files[kdc_path].clone();
    let text = std::fs::read_to_string(dir.path().join("kdc1.xml")).unwrap();
    std::fs::write(dir.path().join("kdc1.xml"), &text[..text.len() - 40]).unwrap();
    let second = engine.run_pass(&files).unwrap();
    assert_eq!(second.report.errors.len(), 1, "{:?}", second.report.errors);
    assert_eq!(second.report.errors[0].machine.as_deref(), Some("kdc1.example.org"));
    assert_eq!(second.output.files[kdc_path], good, "last good configuration kept");
}

#[test]
fn duplicate_services_and_undefined_references_are_caught_before_nagios() {
    struct Dup;
    impl Translator for Dup {
        fn component(&self) -> &str {
            "dup"
        }
        fn version(&self) -> &str {
            "1"
        }
        fn translate(&self, machine: &str, _c: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
            ctx.add_contact_group("kdc");
            Ok(Bundle::new().with(
                Service::new("mc-default-service")
                    .host_name(machine)
                    .service_description("Kerberos KDC")
                    .check_command(CheckCommand::new("mc-check-kdc"))
                    .contact_groups(["kdc"]),
            ))
        }
    }
    struct Undefined;
    impl Translator for Undefined {
        fn component(&self) -> &str {
            "undef"
        }
        fn version(&self) -> &str {
            "1"
        }
        fn translate(&self, machine: &str, _c: &Component, _ctx: &mut Context) -> Result<Bundle, TranslateError> {
            Ok(Bundle::new().with(
                Service::new("mc-default-service")
                    .host_name(machine)
                    .service_description("Thing")
                    .check_command(CheckCommand::new("check_nothing_defines_this"))
                    .contact_groups(["unregistered"]),
            ))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let xml = profile_xml("d", "kerberos dup undef", &kerberos_xml("master", "EXAMPLE.ORG", "kdc"));
    std::fs::write(dir.path().join("d.xml"), xml).unwrap();
    let mut t = translators();
    t.push(Box::new(Dup));
    t.push(Box::new(Undefined));
    let mut engine = Engine::new(
        t,
        Box::new(TomlUsers::new(samples().join("users.toml"))),
        BaseConfig::default(),
    );
    let result = engine.run_pass(&find_profiles(dir.path()).unwrap()).unwrap();
    let errs: Vec<String> = result.report.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(errs[0].contains("duplicate service 'Kerberos KDC' on host d.example.org: defined by kerberos on d.example.org and by dup on d.example.org"), "{errs:#?}");
    assert!(
        errs[1].contains("undefined command 'check_nothing_defines_this'")
            && errs[1].contains("undefined contactgroup 'unregistered'"),
        "{errs:#?}"
    );
    let out = output_dir();
    write_output(out.path(), &result.output).unwrap();
    assert!(
        validate_dir(&nagios_bin(), out.path()).unwrap().ok,
        "the rejected fragments were left out"
    );
}

/// A translator whose start_pass fails while `fail` is set.
struct Failing {
    fail: Arc<std::sync::atomic::AtomicBool>,
    starts: Arc<AtomicUsize>,
}

impl Translator for Failing {
    fn component(&self) -> &str {
        "kerberos"
    }
    fn version(&self) -> &str {
        "1"
    }
    fn start_pass(&mut self) -> Result<Bundle, TranslateError> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(TranslateError::Other("the KDC command database is unreachable".into()));
        }
        translator_kerberos::Kerberos.start_pass()
    }
    fn translate(&self, machine: &str, c: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
        translator_kerberos::Kerberos.translate(machine, c, ctx)
    }
}

#[test]
fn a_translator_that_keeps_failing_in_start_pass_is_broken_and_its_machines_keep_their_config() {
    let dir = tempfile::tempdir().unwrap();
    copy_samples(dir.path());
    let files = find_profiles(dir.path()).unwrap();
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let starts = Arc::new(AtomicUsize::new(0));
    let mut t = translators();
    t.retain(|t| t.component() != "kerberos");
    t.push(Box::new(Failing {
        fail: fail.clone(),
        starts: starts.clone(),
    }));
    let mut engine = Engine::new(
        t,
        Box::new(TomlUsers::new(samples().join("users.toml"))),
        BaseConfig::default(),
    );
    let good = engine.run_pass(&files).unwrap();
    assert!(good.report.errors.is_empty(), "{:#?}", good.report.errors);

    fail.store(true, Ordering::SeqCst);
    // Change kdc1 so it would need translating.
    let kdc = std::fs::read_to_string(dir.path().join("kdc1.xml"))
        .unwrap()
        .replace("lcfgsrv1", "lcfgsrv9");
    std::fs::write(dir.path().join("kdc1.xml"), kdc).unwrap();
    for pass in 1..=4 {
        let r = engine.run_pass(&files).unwrap();
        assert_eq!(
            r.output, good.output,
            "pass {pass}: the last good configuration stands, commands included"
        );
        let kdc_err = r
            .report
            .errors
            .iter()
            .find(|e| e.machine.as_deref() == Some("kdc1.example.org"))
            .unwrap();
        assert!(kdc_err.message.contains("translator unavailable"), "{kdc_err}");
        if pass >= 3 {
            assert!(kdc_err.message.contains("broken after 3 failing passes"), "{kdc_err}");
        }
    }
    assert_eq!(
        starts.load(Ordering::SeqCst),
        4,
        "one good start, three failing ones, then no more calls"
    );
}

#[test]
fn a_machine_name_that_is_not_a_host_name_fails_only_its_file() {
    let dir = tempfile::tempdir().unwrap();
    copy_samples(dir.path());
    let forge = profile_xml("web1", "kerberos", &kerberos_xml("master", "EXAMPLE.ORG", "kdc")).replace(
        "<domain>example.org</domain>",
        "<domain>example.org;Apache;0;all good</domain>",
    );
    std::fs::write(dir.path().join("forge.xml"), forge).unwrap();
    let newline = profile_xml(
        "evil\n}\ndefine host {\nhost_name injected",
        "kerberos",
        &kerberos_xml("master", "EXAMPLE.ORG", "kdc"),
    );
    std::fs::write(dir.path().join("newline.xml"), newline).unwrap();
    let backslash = profile_xml("kdc9", "kerberos", &kerberos_xml("master", "EXAMPLE.ORG", "kdc"))
        .replace("<domain>example.org</domain>", "<domain>example.org\\</domain>");
    std::fs::write(dir.path().join("backslash.xml"), backslash).unwrap();
    let result = engine().run_pass(&find_profiles(dir.path()).unwrap()).unwrap();
    let errs: Vec<String> = result.report.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 3, "{errs:#?}");
    for f in ["forge.xml", "newline.xml", "backslash.xml"] {
        assert!(
            errs.iter().any(|e| e.contains(f) && e.contains("is not a host name")),
            "{f}: {errs:#?}"
        );
    }
    assert_eq!(result.report.machines, 3, "the samples still compile");
    let text: String = result.output.files.values().map(|t| &**t).collect();
    assert!(!text.contains("injected") && !text.contains("all good"), "{text}");
    let out = output_dir();
    write_output(out.path(), &result.output).unwrap();
    let check = validate_dir(&nagios_bin(), out.path()).unwrap();
    assert!(check.ok, "{}", check.output);
}

#[test]
fn a_file_claiming_another_machine_takes_nothing_from_its_owner() {
    let dir = tempfile::tempdir().unwrap();
    copy_samples(dir.path());
    let mut e = engine();
    let first = e.run_pass(&find_profiles(dir.path()).unwrap()).unwrap();
    assert!(first.report.errors.is_empty(), "{:#?}", first.report.errors);
    let kdc1 = |r: &monitor_engine::PassResult| {
        let shard = &r.output.files[&machine_file("kdc1.example.org")];
        let start = shard.find("# machine kdc1.example.org\n").expect("kdc1 is written");
        let rest = &shard[start + 1..];
        rest[..rest.find("# machine ").unwrap_or(rest.len())].to_string()
    };
    // A file that sorts first declares kdc1 with the attacker's contact groups.
    let sample = std::fs::read_to_string(dir.path().join("kdc1.xml")).unwrap();
    let attack = sample.replace(">kdc infrastructure</nagios_groups>", ">www</nagios_groups>");
    assert_ne!(attack, sample);
    std::fs::write(dir.path().join("aaa.xml"), &attack).unwrap();
    let second = e.run_pass(&find_profiles(dir.path()).unwrap()).unwrap();
    let errs: Vec<String> = second.report.errors.iter().map(|p| p.to_string()).collect();
    assert_eq!(errs.len(), 2, "an error for both files: {errs:#?}");
    assert!(
        errs.iter().any(|e| e.contains("aaa.xml")
            && e.contains("this file claims machine kdc1.example.org, which")
            && e.contains("kdc1.xml owns; this file is ignored")),
        "{errs:#?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("kdc1.xml")
            && e.contains("is also claimed by")
            && e.contains("since this file owned it before")),
        "{errs:#?}"
    );
    assert!(
        second
            .report
            .errors
            .iter()
            .all(|p| p.machine.as_deref() == Some("kdc1.example.org"))
    );
    assert_eq!(kdc1(&second), kdc1(&first), "kdc1 keeps its owner's configuration");

    // Without history, the file named for the machine owns it.
    let fresh = engine().run_pass(&find_profiles(dir.path()).unwrap()).unwrap();
    assert_eq!(kdc1(&fresh), kdc1(&first));
    assert!(
        fresh
            .report
            .errors
            .iter()
            .any(|p| p.message.contains("since this file is named for it"))
    );

    // Neither owned nor named: nobody gets it, and both are told.
    std::fs::rename(dir.path().join("kdc1.xml"), dir.path().join("zzz.xml")).unwrap();
    let none = engine().run_pass(&find_profiles(dir.path()).unwrap()).unwrap();
    let errs: Vec<String> = none.report.errors.iter().map(|p| p.to_string()).collect();
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs.iter()
            .all(|e| e.contains("none of them owned it before or is named for it")),
        "{errs:#?}"
    );
    assert!(
        !none
            .output
            .files
            .values()
            .any(|t| t.contains("# machine kdc1.example.org\n"))
    );
}

#[test]
fn paths_that_name_their_machine() {
    use monitor_engine::path_names_machine;
    for (path, yes) in [
        ("p/kdc1.xml", true),
        ("p/kdc1.example.org.xml.gz", true),
        ("example.org/kdc1/XML/profile.xml", true),
        ("web/example.org/kdc1/XML/profile.xml.gz", true),
        ("example.com/kdc1/XML/profile.xml", false),
        ("p/aaa.xml", false),
    ] {
        assert_eq!(path_names_machine(Path::new(path), "kdc1.example.org"), yes, "{path}");
    }
}

/// Registers the contact groups in its profile as they are, newlines and all.
struct RawGroups;

impl Translator for RawGroups {
    fn component(&self) -> &str {
        "rawgroups"
    }
    fn version(&self) -> &str {
        "1"
    }
    fn translate(&self, machine: &str, c: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
        ctx.add_contact_group("kdc");
        if let Some(g) = c.get("group") {
            ctx.add_contact_group(g);
        }
        Ok(Bundle::new().with(
            Service::new(monitor_sdk::helpers::DEFAULT_SERVICE)
                .host_name(machine)
                .service_description("Raw")
                .check_command(CheckCommand::new("mc-check-tcp").arg("1"))
                .contact_groups(["kdc"]),
        ))
    }
}

#[test]
fn a_hostile_contact_group_never_reaches_the_engines_own_objects() {
    let dir = tempfile::tempdir().unwrap();
    copy_samples(dir.path());
    let evil = "kdc\n}\ndefine command {\n command_name evil\n command_line /bin/touch /tmp/F\n}\ndefine host {";
    std::fs::write(
        dir.path().join("raw1.xml"),
        profile_xml(
            "raw1",
            "rawgroups",
            &format!("<rawgroups><group>{evil}</group></rawgroups>"),
        ),
    )
    .unwrap();
    let mut all = translators();
    all.push(Box::new(RawGroups));
    let mut e = Engine::new(
        all,
        Box::new(TomlUsers::new(samples().join("users.toml"))),
        BaseConfig::default(),
    );
    e.set_status_services(true);
    let result = e.run_pass(&find_profiles(dir.path()).unwrap()).unwrap();
    let text: String = result.output.files.values().map(|t| &**t).collect();
    assert!(
        !text.contains("command_name evil") && !text.contains("/tmp/F"),
        "{text}"
    );
    // The user manager refused the group; raw1 is still monitored, without it.
    assert!(
        result
            .report
            .errors
            .iter()
            .any(|p| p.message.contains("contact group") && p.message.contains("newline")),
        "{:#?}",
        result.report.errors
    );
    assert!(
        text.contains("# machine raw1.example.org\n"),
        "{:#?}",
        result.report.errors
    );
    let out = output_dir();
    write_output(out.path(), &result.output).unwrap();
    let check = validate_dir(&nagios_bin(), out.path()).unwrap();
    assert!(check.ok, "{}", check.output);
}

#[test]
fn with_bound_paths_a_file_must_name_its_machine() {
    let dir = tempfile::tempdir().unwrap();
    copy_samples(dir.path());
    let sample = std::fs::read_to_string(dir.path().join("kdc1.xml")).unwrap();
    std::fs::write(dir.path().join("aaa.xml"), &sample).unwrap();
    let mut e = engine();
    e.set_bind_paths(true);
    let r = e.run_pass(&find_profiles(dir.path()).unwrap()).unwrap();
    let errs: Vec<String> = r.report.errors.iter().map(|p| p.to_string()).collect();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains("aaa.xml") && errs[0].contains("does not name machine kdc1.example.org (bind_paths)"),
        "{errs:#?}"
    );
    assert_eq!(r.report.machines, 3);
}
