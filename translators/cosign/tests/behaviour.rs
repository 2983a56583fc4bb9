//! Behaviour of the cosign translator on inline profiles.

use monitor_sdk::nagios::{Bundle, Object, ObjectKind, Value};
use monitor_sdk::translator::{Context, Registration, ServiceRef, TranslateError, Translator};
use translator_cosign::{Cosign, login_host};

use monitor_sdk_test::MACHINE;

/// Translate a flat `cosign` component.
fn translate_flat(pairs: &[(&str, &str)]) -> (Result<Bundle, TranslateError>, Context) {
    monitor_sdk_test::translate_flat(&Cosign, pairs).into_parts()
}

/// Translate a `cosign` component whose resources are the XML `body`.
fn translate_xml(body: &str) -> (Result<Bundle, TranslateError>, Context) {
    monitor_sdk_test::translate_xml(&Cosign, body).into_parts()
}

/// (kind, service_description, rendered check_command) of every object, in order.
fn summary(bundle: &Bundle) -> Vec<(&'static str, String, String)> {
    bundle
        .iter()
        .map(|o| {
            assert_eq!(o.get_str("host_name"), Some(MACHINE));
            (
                o.kind.keyword(),
                o.get_str("service_description").unwrap_or_default().to_string(),
                o.get("check_command").map(Value::render).unwrap_or_default(),
            )
        })
        .collect()
}

fn row(kind: &'static str, desc: &str, check: &str) -> (&'static str, String, String) {
    (kind, desc.to_string(), check.to_string())
}

fn service(description: &str) -> ServiceRef {
    ServiceRef {
        host: MACHINE.into(),
        description: description.into(),
    }
}

fn group(g: &str) -> Registration {
    Registration::ContactGroup { group: g.into() }
}

fn cluster(name: &str, threshold: Option<u32>) -> Registration {
    Registration::Cluster {
        name: name.into(),
        service: service("cosignd"),
        threshold,
    }
}

fn passive(identity: &str) -> Registration {
    Registration::PassiveCheck {
        service: service("monsterd"),
        identity: identity.into(),
    }
}

fn invalid(result: Result<Bundle, TranslateError>) -> (String, String) {
    match result {
        Err(TranslateError::InvalidValue { resource, value, .. }) => (resource, value),
        other => panic!("expected InvalidValue, got {other:?}"),
    }
}

/// The replicated resources of a login server, as in web1.
const REPLICATED: &[(&str, &str)] = &[
    (
        "loginurl",
        "https://weblogin.example.org/cosign-bin/cosign.cgi?cosign-cs&https://weblogin.example.org/",
    ),
    ("replicas", "web2"),
    ("replica_host_web2", "web2.example.org"),
    ("nagios_groups", "weblogin ops"),
];

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut v: Vec<_> = REPLICATED.to_vec();
    v.extend_from_slice(extra);
    v
}

#[test]
fn identifies_itself() {
    assert_eq!(Cosign.component(), "cosign");
    assert_eq!(Cosign.version(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn start_pass_command_line() {
    let bundle = Cosign.start_pass().unwrap();
    bundle.check().unwrap();
    assert_eq!(bundle.len(), 1);
    let o = &bundle.objects()[0];
    assert_eq!(o.kind, ObjectKind::Command);
    assert_eq!(o.get_str("command_name"), Some("mc-cosign-check-https"));
    assert_eq!(
        o.get_str("command_line"),
        Some("$USER1$/check_http -I '$HOSTADDRESS$' -S -p '$ARG1$' -C '$ARG2$'")
    );
}

#[test]
fn unreplicated_server_has_no_cluster_and_no_monsterd() {
    let (result, ctx) = translate_flat(&[("nagios_groups", "weblogin ops")]);
    let bundle = result.unwrap();
    assert_eq!(
        summary(&bundle),
        [
            row("service", "Cosign HTTP", "mc-check-http!80"),
            row("service", "Cosign HTTPS", "mc-cosign-check-https!443!28"),
            row(
                "service",
                "cosignd",
                "mc-check-tcp-expect!6663!220 2 Collaborative Web Single Sign-On"
            ),
        ]
    );
    for o in &bundle {
        assert_eq!(o.get_str("use"), Some("mc-default-service"));
        assert_eq!(
            o.get("contact_groups").map(Value::render).as_deref(),
            Some("weblogin,ops")
        );
    }
    assert_eq!(ctx.registrations(), [group("weblogin"), group("ops")]);
    assert!(ctx.warnings().is_empty());
}

#[test]
fn empty_replicas_list_is_unreplicated() {
    let (result, ctx) = translate_flat(&[
        ("replicas", " "),
        ("loginurl", "https://weblogin.example.org/"),
        ("nagios_groups", "weblogin"),
    ]);
    assert_eq!(result.unwrap().len(), 3);
    assert_eq!(ctx.registrations(), [group("weblogin")]);
}

#[test]
fn replicated_server_adds_cluster_and_passive_monsterd() {
    let (result, ctx) = translate_flat(REPLICATED);
    let bundle = result.unwrap();
    let names: Vec<String> = summary(&bundle).into_iter().map(|(_, d, _)| d).collect();
    assert_eq!(names, ["Cosign HTTP", "Cosign HTTPS", "cosignd", "monsterd"]);
    assert_eq!(
        ctx.registrations(),
        [
            group("weblogin"),
            group("ops"),
            cluster("cosign-weblogin.example.org", None),
            passive("host/h1.example.org"),
        ]
    );
}

#[test]
fn monsterd_is_passive_with_freshness() {
    let (result, _) = translate_flat(REPLICATED);
    let bundle = result.unwrap();
    let monsterd: &Object = &bundle.objects()[3];
    let directives: Vec<(&str, String)> = monsterd.directives().map(|(d, v)| (d, v.render())).collect();
    let expected = [
        ("use", "mc-default-service"),
        ("host_name", MACHINE),
        ("service_description", "monsterd"),
        ("check_command", "mc-check-passive"),
        ("active_checks_enabled", "0"),
        ("passive_checks_enabled", "1"),
        ("check_freshness", "1"),
        ("freshness_threshold", "1200"),
        ("contact_groups", "weblogin,ops"),
    ];
    let expected: Vec<(&str, String)> = expected.iter().map(|(d, v)| (*d, v.to_string())).collect();
    assert_eq!(directives, expected);
}

#[test]
fn monster_freshness_and_passive_identity_come_from_resources() {
    let (result, ctx) = translate_flat(&with(&[
        ("monster_freshness", "600"),
        ("nagios_passive_identity", "monster/h1.example.org@EXAMPLE.ORG"),
    ]));
    let bundle = result.unwrap();
    assert_eq!(bundle.objects()[3].get_str("freshness_threshold"), Some("600"));
    assert_eq!(
        ctx.registrations().last(),
        Some(&passive("monster/h1.example.org@EXAMPLE.ORG"))
    );
}

#[test]
fn blank_passive_identity_falls_back_to_host_principal() {
    let (_, ctx) = translate_flat(&with(&[("nagios_passive_identity", "  ")]));
    assert_eq!(ctx.registrations().last(), Some(&passive("host/h1.example.org")));
}

#[test]
fn cluster_name_without_loginurl_lists_sorted_hosts() {
    let (result, ctx) = translate_flat(&[
        ("replicas", "zeta alpha bare"),
        ("replica_host_zeta", "web9.example.org"),
        ("replica_host_alpha", "Web0.Example.org"),
        ("nagios_groups", "weblogin"),
    ]);
    result.unwrap();
    assert_eq!(
        ctx.registrations(),
        [
            group("weblogin"),
            cluster("cosign-bare+h1.example.org+web0.example.org+web9.example.org", None),
            passive("host/h1.example.org"),
        ]
    );
}

#[test]
fn unparseable_loginurl_falls_back_to_host_list() {
    for url in ["ftp://weblogin.example.org/", "https:///cosign", "https://we'b/", "  "] {
        let (result, ctx) = translate_flat(&[
            ("loginurl", url),
            ("replicas", "web2"),
            ("replica_host_web2", "web2.example.org"),
            ("nagios_groups", "weblogin"),
        ]);
        result.unwrap();
        assert_eq!(
            ctx.registrations()[1],
            cluster("cosign-h1.example.org+web2.example.org", None),
            "loginurl {url:?}"
        );
    }
}

#[test]
fn login_host_takes_the_host_part() {
    assert_eq!(
        login_host("https://weblogin.example.org/cosign-bin/cosign.cgi").as_deref(),
        Some("weblogin.example.org")
    );
    assert_eq!(
        login_host("http://login.example.org:8080/x").as_deref(),
        Some("login.example.org")
    );
    assert_eq!(
        login_host("HTTPS://Login.Example.org?x").as_deref(),
        Some("login.example.org")
    );
    assert_eq!(
        login_host("login.example.org/cosign").as_deref(),
        Some("login.example.org")
    );
    assert_eq!(login_host("https://user@login.example.org/"), None);
    assert_eq!(login_host("gopher://login.example.org/"), None);
    assert_eq!(login_host(""), None);
}

#[test]
fn bad_replica_host_is_invalid_without_loginurl() {
    let (result, ctx) = translate_flat(&[
        ("replicas", "web2"),
        ("replica_host_web2", "web2.example.org;rm"),
        ("nagios_groups", "weblogin"),
    ]);
    assert_eq!(
        invalid(result),
        ("replica_host_web2".into(), "web2.example.org;rm".into())
    );
    assert!(
        ctx.registrations().is_empty(),
        "nothing is registered for a failed machine"
    );
}

#[test]
fn cluster_threshold_from_resource() {
    let (result, ctx) = translate_flat(&with(&[("nagios_cluster_threshold", "1")]));
    result.unwrap();
    assert_eq!(ctx.registrations()[2], cluster("cosign-weblogin.example.org", Some(1)));

    let (result, _) = translate_flat(&with(&[("nagios_cluster_threshold", "one")]));
    assert_eq!(invalid(result), ("nagios_cluster_threshold".into(), "one".into()));
}

#[test]
fn ports_and_days_come_from_resources() {
    let (result, _) = translate_flat(&[
        ("http_port", "8080"),
        ("https_port", " 8443 "),
        ("cert_warn_days", "14"),
        ("port", "16663"),
        ("nagios_groups", "weblogin"),
    ]);
    assert_eq!(
        summary(&result.unwrap()),
        [
            row("service", "Cosign HTTP", "mc-check-http!8080"),
            row("service", "Cosign HTTPS", "mc-cosign-check-https!8443!14"),
            row(
                "service",
                "cosignd",
                "mc-check-tcp-expect!16663!220 2 Collaborative Web Single Sign-On"
            ),
        ]
    );
}

#[test]
fn invalid_ports_and_days_are_invalid_values() {
    for (resource, bad) in [
        ("port", "0"),
        ("port", "65536"),
        ("port", "cosign"),
        ("http_port", "-80"),
        ("https_port", "44 3"),
        ("cert_warn_days", "0"),
        ("cert_warn_days", "soon"),
        ("monster_freshness", "-1"),
    ] {
        let (result, ctx) = translate_flat(&with(&[(resource, bad)]));
        assert_eq!(
            invalid(result),
            (resource.to_string(), bad.to_string()),
            "{resource} {bad:?}"
        );
        assert!(
            ctx.registrations().is_empty(),
            "nothing is registered for a failed machine"
        );
    }
}

#[test]
fn missing_groups_is_missing_resource() {
    let (result, _) = translate_flat(&[("port", "6663")]);
    assert_eq!(result, Err(TranslateError::missing("nagios_groups")));
}

#[test]
fn nagios_depends_registers_cosignd_dependencies() {
    let (result, ctx) = translate_flat(&[("nagios_depends", "kdc ldap"), ("nagios_groups", "weblogin")]);
    result.unwrap();
    assert_eq!(
        ctx.registrations(),
        [
            group("weblogin"),
            Registration::DependsOn {
                tag: "kdc".into(),
                service: service("cosignd"),
            },
            Registration::DependsOn {
                tag: "ldap".into(),
                service: service("cosignd"),
            },
        ]
    );
}

#[test]
fn escalations_follow_the_services_they_name() {
    let (result, _) = translate_xml(
        "<loginurl>https://weblogin.example.org/</loginurl>\
         <replicas cfg:template=\"replica_host_$\"><replicas_RECORD cfg:name=\"web2\">\
         <replica_host>web2.example.org</replica_host></replicas_RECORD></replicas>\
         <nagios_groups>weblogin</nagios_groups>\
         <nagios_escalations cfg:template=\"escalation_first_$ escalation_last_$ escalation_interval_$ \
         escalation_groups_$ escalation_services_$\">\
         <nagios_escalations_RECORD cfg:name=\"oncall\"><escalation_first>2</escalation_first>\
         <escalation_last>0</escalation_last><escalation_interval>15</escalation_interval>\
         <escalation_groups>infrastructure</escalation_groups>\
         <escalation_services>cosignd,monsterd</escalation_services></nagios_escalations_RECORD>\
         </nagios_escalations>",
    );
    let bundle = result.unwrap();
    assert_eq!(
        summary(&bundle),
        [
            row("service", "Cosign HTTP", "mc-check-http!80"),
            row("service", "Cosign HTTPS", "mc-cosign-check-https!443!28"),
            row(
                "service",
                "cosignd",
                "mc-check-tcp-expect!6663!220 2 Collaborative Web Single Sign-On"
            ),
            row("serviceescalation", "cosignd", ""),
            row("service", "monsterd", "mc-check-passive"),
            row("serviceescalation", "monsterd", ""),
        ]
    );
    let e = &bundle.objects()[3];
    assert_eq!(e.get_str("first_notification"), Some("2"));
    assert_eq!(e.get_str("last_notification"), Some("0"));
    assert_eq!(e.get_str("notification_interval"), Some("15"));
    assert_eq!(
        e.get("contact_groups").map(Value::render).as_deref(),
        Some("infrastructure")
    );
}
