//! The managers over the sample fleet and their error paths, against the real
//! `nagios4 -v`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use monitor_engine::base::BaseConfig;
use monitor_engine::users::TomlUsers;
use monitor_engine::{Engine, Output, PassResult, find_profiles, machine_file};
use monitor_integration_tests::*;
use monitor_runtime::validate::validate_dir;
use monitor_runtime::writer::write_output;
use monitor_sdk::helpers::{DEFAULT_SERVICE, handle_contacts, resource_list};
use monitor_sdk::nagios::{Bundle, CheckCommand, Service};
use monitor_sdk::profile::Component;
use monitor_sdk::translator::{Context, TranslateError, Translator};

fn all(output: &Output) -> String {
    output.files.values().map(|t| &**t).collect()
}

fn file<'a>(output: &'a Output, name: &str) -> &'a str {
    &output.files[Path::new(name)]
}

fn sample_pass(engine: &mut Engine) -> PassResult {
    engine.run_pass(&find_profiles(&samples()).unwrap()).unwrap()
}

#[test]
fn sample_fleet_exercises_every_manager_and_passes_nagios() {
    let result = sample_pass(&mut engine());
    let r = &result.report;
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    assert!(r.warnings.is_empty(), "{:#?}", r.warnings);
    assert!(r.unknown_components.is_empty());
    assert_eq!(r.machines, 5);
    // kdc1 1, kdc2 1, jabber1 3, web1 4 cosign + 3 apache, web2 4 cosign + 2 apache
    // + 3 monitoring_info (`status`, `status certificate`, `ssh`), 2 clusters.
    assert_eq!(r.services, 23);
    let out = output_dir();
    write_output(out.path(), &result.output).unwrap();
    let check = validate_dir(&nagios_bin(), out.path()).unwrap();
    assert!(check.ok, "{}", check.output);
    assert!(check.errors.is_empty());

    let text = all(&result.output);
    let once = |needle: &str| assert_eq!(text.matches(needle).count(), 1, "{needle:?} once:\n{text}");
    // Contacts and contact groups: each defined exactly once.
    for c in ["alice", "bob", "carol", "oncall-pager"] {
        once(&format!("contact_name                    {c}\n"));
    }
    for g in ["kdc", "infrastructure", "jabber", "www", "weblogin", "oncall"] {
        once(&format!("contactgroup_name               {g}\n"));
    }
    // Clusters: a servicegroup and a check_cluster service each.
    once("servicegroup_name               kdc-EXAMPLE.ORG\n");
    once(
        "members                         jabber1.example.org,Kerberos KDC,kdc1.example.org,Kerberos KDC,kdc2.example.org,Kerberos KDC\n",
    );
    once("servicegroup_name               cosign-weblogin.example.org\n");
    once(
        "    host_name                       monitor-compile-clusters\n    service_description             Cluster kdc-EXAMPLE.ORG\n    check_command",
    );
    let clusters = file(&result.output, "31-clusters.cfg");
    assert!(clusters.contains("$USER1$/check_cluster --service -l 'kdc-EXAMPLE.ORG' -w 0 -c 1 -d '$SERVICESTATEID:jabber1.example.org:Kerberos KDC$,$SERVICESTATEID:kdc1.example.org:Kerberos KDC$,$SERVICESTATEID:kdc2.example.org:Kerberos KDC$'"), "{clusters}");
    assert!(
        clusters.contains("-l 'cosign-weblogin.example.org' -w 0 -c 1 -d"),
        "default threshold: all but one down: {clusters}"
    );
    // Dependencies across hosts (tags, and a cluster as a tag) and inside a translator.
    let deps = file(&result.output, "32-dependencies.cfg");
    assert_eq!(deps.matches("define servicedependency").count(), 3, "{deps}");
    for dependent in ["jabber1.example.org", "kdc2.example.org"] {
        once(&format!(
            "    host_name                       kdc1.example.org\n    service_description             Kerberos KDC\n    dependent_host_name             {dependent}\n"
        ));
    }
    once(
        "    host_name                       monitor-compile-clusters\n    service_description             Cluster kdc-EXAMPLE.ORG\n    dependent_host_name             web2.example.org\n    dependent_service_description   cosignd\n",
    );
    once(
        "    dependent_host_name             web1.example.org\n    dependent_service_description   vhost www.example.org\n",
    );
    // Escalations from the profiles.
    assert_eq!(
        text.matches("define serviceescalation").count(),
        2,
        "kdc2's KDC, web2's Apache"
    );
    once(
        "    host_name                       kdc2.example.org\n    service_description             Kerberos KDC\n    first_notification              3\n    last_notification               0\n    notification_interval           30\n    contact_groups                  oncall,infrastructure\n",
    );
    // Event handler (self-healing) and passive checks.
    once("    event_handler                   restart-apache\n");
    let acl = file(&result.output, "passive-acl.conf");
    assert!(
        acl.ends_with(
            "host/web1.example.org\tweb1.example.org\tmonsterd\nhost/web2.example.org\tweb2.example.org\tmonsterd\n"
        ),
        "{acl}"
    );
    assert_eq!(
        text.matches("passive_checks_enabled          1\n    check_freshness")
            .count(),
        2
    );
}

/// A translator that provides and depends on the tags in its profile, joins its clusters
/// and depends on the services of its `master` machines itself, for error paths.
struct Tags;

impl Translator for Tags {
    fn component(&self) -> &str {
        "tags"
    }
    fn version(&self) -> &str {
        "1"
    }
    fn translate(&self, machine: &str, c: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
        let groups = handle_contacts(c, ctx)?;
        let svc = Service::new(DEFAULT_SERVICE)
            .host_name(machine)
            .service_description("Tagged")
            .check_command(CheckCommand::new("mc-check-tcp").arg("1"))
            .contact_groups(groups);
        for t in resource_list(c, "provides") {
            ctx.add_provides(&t, svc.object())?;
        }
        for t in resource_list(c, "depends") {
            ctx.add_dependency(&t, svc.object())?;
        }
        for name in resource_list(c, "cluster") {
            ctx.add_cluster(&name, svc.object(), None)?;
        }
        let mut b = Bundle::new().with(svc);
        // Its own dependency on the same service of another machine.
        for master in resource_list(c, "master") {
            b.push(monitor_sdk::helpers::service_dependency(
                &master, "Tagged", machine, "Tagged",
            ));
        }
        Ok(b)
    }
}

fn tag_engine(dir: &Path, profiles: &[(&str, &str)]) -> (Engine, Vec<std::path::PathBuf>) {
    for (node, body) in profiles {
        std::fs::write(
            dir.join(format!("{node}.xml")),
            profile_xml(
                node,
                "tags",
                &format!("<tags>{body}<nagios_groups>infrastructure</nagios_groups></tags>"),
            ),
        )
        .unwrap();
    }
    let mut t = translators();
    t.push(Box::new(Tags));
    let e = Engine::new(
        t,
        Box::new(TomlUsers::new(samples().join("users.toml"))),
        BaseConfig::default(),
    );
    (e, find_profiles(dir).unwrap())
}

#[test]
fn duplicate_tag_provider_is_an_error_naming_both_machines() {
    let dir = tempfile::tempdir().unwrap();
    let (mut e, files) = tag_engine(
        dir.path(),
        &[
            ("a", "<provides>db</provides>"),
            ("b", "<provides>db</provides>"),
            ("c", "<depends>db</depends>"),
        ],
    );
    let r = e.run_pass(&files).unwrap();
    assert_eq!(r.report.errors.len(), 1, "{:#?}", r.report.errors);
    let err = &r.report.errors[0];
    assert_eq!(err.machine.as_deref(), Some("b.example.org"));
    assert!(err.message.contains("tag db is provided twice: by 'Tagged' on a.example.org (tags on a.example.org) and by 'Tagged' on b.example.org"), "{err}");
    // The first provider is kept: c depends on a.
    assert!(file(&r.output, "32-dependencies.cfg").contains("host_name                       a.example.org\n    service_description             Tagged\n    dependent_host_name             c.example.org"));
}

#[test]
fn dependency_cycle_is_caught_before_nagios() {
    let dir = tempfile::tempdir().unwrap();
    let (mut e, files) = tag_engine(
        dir.path(),
        &[
            ("a", "<provides>ta</provides><depends>tb</depends>"),
            ("b", "<provides>tb</provides><depends>tc</depends>"),
            ("c", "<provides>tc</provides><depends>ta</depends>"),
        ],
    );
    let r = e.run_pass(&files).unwrap();
    let errs: Vec<String> = r.report.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].contains("circular service dependency among 'Tagged' on a.example.org, 'Tagged' on b.example.org, 'Tagged' on c.example.org; 3 tag dependencies left out"), "{errs:#?}");
    let out = output_dir();
    write_output(out.path(), &r.output).unwrap();
    let check = validate_dir(&nagios_bin(), out.path()).unwrap();
    assert!(check.ok, "{}", check.output);
}

#[test]
fn missing_tag_is_a_warning_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut e, files) = tag_engine(dir.path(), &[("a", "<depends>nobody-provides-this</depends>")]);
    let r = e.run_pass(&files).unwrap();
    assert!(r.report.errors.is_empty(), "{:#?}", r.report.errors);
    assert_eq!(r.report.warnings.len(), 1);
    assert_eq!(r.report.warnings[0].machine.as_deref(), Some("a.example.org"));
    assert!(
        r.report.warnings[0]
            .message
            .contains("depends on tag nobody-provides-this, which nothing provides")
    );
}

#[test]
fn escalation_for_an_undefined_group_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let esc = r#"<nagios_escalations cfg:template="escalation_first_$ escalation_groups_$"><nagios_escalations_RECORD cfg:name="x"><escalation_first>2</escalation_first><escalation_groups>no-such-group</escalation_groups></nagios_escalations_RECORD></nagios_escalations>"#;
    let xml = profile_xml(
        "esc",
        "kerberos",
        &format!(
            "<kerberos><type>master</type><realm>ESC.ORG</realm><nagios_groups>kdc</nagios_groups>{esc}</kerberos>"
        ),
    );
    std::fs::write(dir.path().join("esc.xml"), xml).unwrap();
    copy_samples(dir.path());
    let r = engine().run_pass(&find_profiles(dir.path()).unwrap()).unwrap();
    assert_eq!(r.report.errors.len(), 1, "{:#?}", r.report.errors);
    let err = &r.report.errors[0];
    assert_eq!(
        (err.machine.as_deref(), err.component.as_deref()),
        (Some("esc.example.org"), Some("kerberos"))
    );
    assert!(
        err.message
            .contains("serviceescalation refers to undefined contactgroup 'no-such-group'"),
        "{err}"
    );
    let out = output_dir();
    write_output(out.path(), &r.output).unwrap();
    let check = validate_dir(&nagios_bin(), out.path()).unwrap();
    assert!(check.ok, "{}", check.output);
}

/// Counts translate calls of the kerberos translator.
struct CountingKerberos(Arc<AtomicUsize>);

impl Translator for CountingKerberos {
    fn component(&self) -> &str {
        "kerberos"
    }
    fn version(&self) -> &str {
        translator_kerberos::Kerberos.version()
    }
    fn start_pass(&mut self) -> Result<Bundle, TranslateError> {
        translator_kerberos::Kerberos.start_pass()
    }
    fn translate(&self, machine: &str, c: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        translator_kerberos::Kerberos.translate(machine, c, ctx)
    }
}

#[test]
fn managers_replay_from_cache_and_change_only_what_depends_on_a_machine() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["kdc1.xml", "kdc2.xml", "jabber1.xml", "web1.xml", "web2.xml"] {
        std::fs::copy(samples().join(f), dir.path().join(f)).unwrap();
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let mut t = translators();
    t.retain(|t| t.component() != "kerberos");
    t.push(Box::new(CountingKerberos(calls.clone())));
    let mut e = Engine::new(
        t,
        Box::new(TomlUsers::new(samples().join("users.toml"))),
        BaseConfig::default(),
    );
    let files = find_profiles(dir.path()).unwrap();
    let first = e.run_pass(&files).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(first.report.errors.is_empty(), "{:#?}", first.report.errors);
    let second = e.run_pass(&files).unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "no translate: the registrations were replayed"
    );
    assert_eq!(second.report.translated, 0);
    assert_eq!(second.output, first.output, "byte-identical, managers included");

    // jabberd on jabber1 changes: only jabber1's file changes.
    let j = std::fs::read_to_string(dir.path().join("jabber1.xml"))
        .unwrap()
        .replace(">5222<", ">5269<");
    std::fs::write(dir.path().join("jabber1.xml"), j).unwrap();
    let third = e.run_pass(&files).unwrap();
    let changed: Vec<_> = third
        .output
        .files
        .iter()
        .filter(|(k, v)| second.output.files.get(*k) != Some(v))
        .map(|(k, _)| k.display().to_string())
        .collect();
    assert_eq!(changed, [machine_file("jabber1.example.org").display().to_string()]);

    // kdc2 leaves the cluster's realm: its machine file, the cluster and the dependencies change.
    let k = std::fs::read_to_string(dir.path().join("kdc2.xml"))
        .unwrap()
        .replace(">EXAMPLE.ORG<", ">OTHER.ORG<");
    std::fs::write(dir.path().join("kdc2.xml"), k).unwrap();
    let fourth = e.run_pass(&files).unwrap();
    let changed: Vec<_> = fourth
        .output
        .files
        .iter()
        .filter(|(k, v)| third.output.files.get(*k) != Some(v))
        .map(|(k, _)| k.display().to_string())
        .collect();
    assert_eq!(
        changed,
        [
            machine_file("kdc2.example.org").display().to_string().as_str(),
            "31-clusters.cfg",
            "32-dependencies.cfg"
        ]
    );
    assert_eq!(fourth.report.parsed, 1);
}

#[test]
fn a_cluster_name_nagios_cannot_take_fails_only_that_machine() {
    let dir = tempfile::tempdir().unwrap();
    copy_samples(dir.path());
    let xml = profile_xml("odd", "kerberos", &kerberos_xml("master", "A;B!C$X", "kdc"));
    std::fs::write(dir.path().join("odd.xml"), xml).unwrap();
    let r = engine().run_pass(&find_profiles(dir.path()).unwrap()).unwrap();
    assert_eq!(r.report.errors.len(), 1, "{:#?}", r.report.errors);
    let e = &r.report.errors[0];
    assert_eq!(e.machine.as_deref(), Some("odd.example.org"));
    assert!(
        e.message
            .contains("invalid value \"kdc-A;B!C$X\" for resource cluster name"),
        "{e}"
    );
    let out = output_dir();
    write_output(out.path(), &r.output).unwrap();
    let check = validate_dir(&nagios_bin(), out.path()).unwrap();
    assert!(check.ok, "{}", check.output);
}

/// Emits a host for the machine it translates (which the engine defines).
struct OwnHost;

impl Translator for OwnHost {
    fn component(&self) -> &str {
        "ownhost"
    }
    fn version(&self) -> &str {
        "1"
    }
    fn translate(&self, machine: &str, _: &Component, _: &mut Context) -> Result<Bundle, TranslateError> {
        Ok(Bundle::new().with(monitor_sdk::nagios::Host::new("").host_name(machine)))
    }
}

#[test]
fn a_translator_defining_its_machines_host_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    copy_samples(dir.path());
    std::fs::write(dir.path().join("own1.xml"), profile_xml("own1", "ownhost", "")).unwrap();
    let mut all = translators();
    all.push(Box::new(OwnHost));
    let mut e = Engine::new(
        all,
        Box::new(TomlUsers::new(samples().join("users.toml"))),
        BaseConfig::default(),
    );
    let r = e.run_pass(&find_profiles(dir.path()).unwrap()).unwrap();
    let errs: Vec<String> = r.report.errors.iter().map(|p| p.to_string()).collect();
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains("[own1.example.org ownhost")
            && errs[0].contains("translator ownhost 1 (builtin)")
            && errs[0].contains("host 'own1.example.org' is defined by both the engine"),
        "{errs:#?}"
    );
    let out = output_dir();
    write_output(out.path(), &r.output).unwrap();
    let check = validate_dir(&nagios_bin(), out.path()).unwrap();
    assert!(check.ok, "{}", check.output);
}

#[test]
fn a_fragment_left_out_for_a_cycle_is_in_no_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let (mut e, files) = tag_engine(
        dir.path(),
        &[
            ("a", "<cluster>pool</cluster><master>b.example.org</master>"),
            ("b", "<cluster>pool</cluster><master>a.example.org</master>"),
            ("c", "<cluster>pool</cluster>"),
        ],
    );
    let r = e.run_pass(&files).unwrap();
    let named: Vec<_> = r.report.errors.iter().map(|p| p.machine.as_deref()).collect();
    assert_eq!(
        named,
        [Some("a.example.org"), Some("b.example.org")],
        "{:#?}",
        r.report.errors
    );
    for p in &r.report.errors {
        assert_eq!(p.component.as_deref(), Some("tags"));
        assert!(p.message.contains("circular service dependency among 'Tagged' on a.example.org, 'Tagged' on b.example.org: this component's own service dependencies form it, so its output is left out"), "{p}");
    }
    // The cluster holds only the member that is written.
    let clusters = file(&r.output, "31-clusters.cfg");
    assert!(
        clusters.contains("members                         c.example.org,Tagged\n"),
        "{clusters}"
    );
    assert!(
        !clusters.contains("a.example.org") && !clusters.contains("b.example.org"),
        "{clusters}"
    );
    assert!(
        clusters.contains("-d '$SERVICESTATEID:c.example.org:Tagged$'"),
        "{clusters}"
    );
    let out = output_dir();
    write_output(out.path(), &r.output).unwrap();
    let check = validate_dir(&nagios_bin(), out.path()).unwrap();
    assert!(check.ok, "{}", check.output);
}
