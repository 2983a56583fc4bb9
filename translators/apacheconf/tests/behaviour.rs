//! Behaviour of the apacheconf translator on inline and sample profiles.

use std::path::Path;

use monitor_sdk::nagios::{Bundle, Object, ObjectKind, Value};
use monitor_sdk::translator::{Context, Registration, ServiceRef, TranslateError, Translator};
use translator_apacheconf::{Apacheconf, listen_port};

use monitor_sdk_test::MACHINE;

/// Translate a `apacheconf` component whose resources are the XML `body`.
fn translate(body: &str) -> (Result<Bundle, TranslateError>, Context) {
    monitor_sdk_test::translate_xml(&Apacheconf, body).into_parts()
}

/// Translate a flat `apacheconf` component.
fn translate_flat(pairs: &[(&str, &str)]) -> (Result<Bundle, TranslateError>, Context) {
    monitor_sdk_test::translate_flat(&Apacheconf, pairs).into_parts()
}

/// Translate web1's `apacheconf` component.
fn web1() -> (Bundle, Context) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles-sample/web1.xml");
    let (result, ctx) = monitor_sdk_test::translate_file(&Apacheconf, path).into_parts();
    (result.unwrap(), ctx)
}

/// A `<listen>` tag list of `(tag, address)` entries.
fn listen(entries: &[(&str, &str)]) -> String {
    let records: String = entries
        .iter()
        .map(|(tag, addr)| {
            format!("<listen_RECORD cfg:name=\"{tag}\"><listen_addr>{addr}</listen_addr></listen_RECORD>")
        })
        .collect();
    format!("<listen cfg:template=\"listen_addr_$\">{records}</listen>")
}

/// A `<vhosts>` tag list; every entry is `(tag, inner XML)`.
fn vhosts(entries: &[(&str, &str)]) -> String {
    let records: String = entries
        .iter()
        .map(|(tag, inner)| format!("<vhosts_RECORD cfg:name=\"{tag}\">{inner}</vhosts_RECORD>"))
        .collect();
    format!("<vhosts cfg:template=\"vhost_name_$ vhost_port_$ vhost_ssl_$ vhost_cert_days_$\">{records}</vhosts>")
}

const GROUPS: &str = "<nagios_groups>www</nagios_groups>";

/// (kind, description or dependent description, rendered check_command) of every object.
fn summary(bundle: &Bundle) -> Vec<(&'static str, String, String)> {
    bundle
        .iter()
        .map(|o| {
            let desc = match o.kind {
                ObjectKind::ServiceDependency => o.get_str("dependent_service_description"),
                _ => o.get_str("service_description"),
            };
            (
                o.kind.keyword(),
                desc.unwrap_or_default().to_string(),
                o.get("check_command").map(Value::render).unwrap_or_default(),
            )
        })
        .collect()
}

fn row(kind: &'static str, desc: &str, check: &str) -> (&'static str, String, String) {
    (kind, desc.to_string(), check.to_string())
}

/// Every directive of `o`, rendered.
fn directives(o: &Object) -> Vec<(String, String)> {
    o.directives().map(|(d, v)| (d.to_string(), v.render())).collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

fn invalid(result: Result<Bundle, TranslateError>) -> (String, String) {
    match result {
        Err(TranslateError::InvalidValue { resource, value, .. }) => (resource, value),
        other => panic!("expected InvalidValue, got {other:?}"),
    }
}

#[test]
fn identifies_itself() {
    assert_eq!(Apacheconf.component(), "apacheconf");
    assert_eq!(Apacheconf.version(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn start_pass_command_lines() {
    let bundle = Apacheconf.start_pass().unwrap();
    bundle.check().unwrap();
    let commands: Vec<(&str, &str)> = bundle
        .iter()
        .map(|o| (o.get_str("command_name").unwrap(), o.get_str("command_line").unwrap()))
        .collect();
    assert_eq!(
        commands,
        [
            (
                "mc-apacheconf-check-vhost",
                "$USER1$/check_http -I '$HOSTADDRESS$' -H '$ARG1$' -p '$ARG2$'"
            ),
            (
                "mc-apacheconf-check-vhost-ssl",
                "$USER1$/check_http -I '$HOSTADDRESS$' -H '$ARG1$' -p '$ARG2$' -S --sni -C '$ARG3$'"
            ),
            (
                "restart-apache",
                "/usr/lib/monitor-compile/eventhandlers/restart-service httpd \
                 '$SERVICESTATE$' '$SERVICESTATETYPE$' '$SERVICEATTEMPT$' '$HOSTADDRESS$'"
            ),
        ]
    );
}

#[test]
fn web1_has_apache_and_two_vhosts() {
    let (bundle, ctx) = web1();
    let services: Vec<&str> = bundle
        .iter()
        .filter(|o| o.kind == ObjectKind::Service)
        .map(|o| o.get_str("service_description").unwrap())
        .collect();
    assert_eq!(
        services,
        ["Apache", "vhost www.example.org", "vhost weblogin.example.org"]
    );
    let vhost_services = services.iter().filter(|d| d.starts_with("vhost ")).count();
    assert_eq!(vhost_services, 2, "aliases are not monitored");
    assert_eq!(
        summary(&bundle),
        [
            row("service", "Apache", "mc-check-http!80"),
            row(
                "service",
                "vhost www.example.org",
                "mc-apacheconf-check-vhost-ssl!www.example.org!443!21"
            ),
            row("servicedependency", "vhost www.example.org", ""),
            row(
                "service",
                "vhost weblogin.example.org",
                "mc-apacheconf-check-vhost-ssl!weblogin.example.org!443!21"
            ),
            row("servicedependency", "vhost weblogin.example.org", ""),
        ]
    );
    assert_eq!(
        ctx.registrations(),
        [
            Registration::ContactGroup { group: "www".into() },
            Registration::ContactGroup {
                group: "weblogin".into()
            },
        ]
    );
}

#[test]
fn every_vhost_depends_on_apache() {
    let (bundle, _) = web1();
    let dependencies: Vec<Vec<(String, String)>> = bundle
        .iter()
        .filter(|o| o.kind == ObjectKind::ServiceDependency)
        .map(directives)
        .collect();
    let dependency = |vhost: &str| {
        pairs(&[
            ("host_name", "web1.example.org"),
            ("service_description", "Apache"),
            ("dependent_host_name", "web1.example.org"),
            ("dependent_service_description", vhost),
            ("notification_failure_criteria", "u,c"),
        ])
    };
    assert_eq!(
        dependencies,
        [
            dependency("vhost www.example.org"),
            dependency("vhost weblogin.example.org")
        ]
    );
}

#[test]
fn apache_port_is_the_lowest_listen_port() {
    let (result, _) = translate(&format!(
        "{}{GROUPS}",
        listen(&[("a", "*:8443"), ("b", "10.0.0.1:8080"), ("c", "[::1]:9000")])
    ));
    assert_eq!(
        summary(&result.unwrap()),
        [row("service", "Apache", "mc-check-http!8080")]
    );
}

#[test]
fn apache_port_without_listen_comes_from_port() {
    let (result, _) = translate_flat(&[("nagios_groups", "www")]);
    assert_eq!(
        summary(&result.unwrap()),
        [row("service", "Apache", "mc-check-http!80")]
    );
    let (result, _) = translate_flat(&[("port", "8000"), ("nagios_groups", "www")]);
    assert_eq!(
        summary(&result.unwrap()),
        [row("service", "Apache", "mc-check-http!8000")]
    );
    let (result, _) = translate_flat(&[("port", "0"), ("nagios_groups", "www")]);
    assert_eq!(invalid(result), ("port".into(), "0".into()));
}

#[test]
fn listen_port_parses_apache_listen_addresses() {
    assert_eq!(listen_port("*:80"), Some(80));
    assert_eq!(listen_port("10.0.0.1:8080"), Some(8080));
    assert_eq!(listen_port("[2001:db8::1]:8443"), Some(8443));
    assert_eq!(listen_port("443"), Some(443));
    assert_eq!(listen_port(" 0.0.0.0:8443 https "), Some(8443));
    for bad in [
        "",
        "*:",
        "*:0",
        "*:65536",
        "*:http",
        "*:+80",
        "10.0.0.1",
        "*:80 https x",
        "*:80 8080",
    ] {
        assert_eq!(listen_port(bad), None, "{bad:?}");
    }
}

#[test]
fn bad_listen_addr_is_invalid_value() {
    let (result, ctx) = translate(&format!("{}{GROUPS}", listen(&[("_80", "*:80"), ("bad", "*:eighty")])));
    assert_eq!(invalid(result), ("listen_addr_bad".into(), "*:eighty".into()));
    assert!(
        ctx.registrations().is_empty(),
        "nothing is registered for a failed machine"
    );
}

#[test]
fn missing_listen_addr_is_missing_resource() {
    let (result, _) = translate_flat(&[("listen", "a"), ("nagios_groups", "www")]);
    assert_eq!(result, Err(TranslateError::missing("listen_addr_a")));
}

#[test]
fn vhost_ports_checks_and_certificate_days() {
    let (result, _) = translate(&format!(
        "{}<cert_warn_days>10</cert_warn_days>{GROUPS}",
        vhosts(&[
            ("plain", "<vhost_name>plain.example.org</vhost_name>"),
            (
                "alt",
                "<vhost_name>alt.example.org</vhost_name><vhost_port>8080</vhost_port>"
            ),
            (
                "tls",
                "<vhost_name>tls.example.org</vhost_name><vhost_ssl>yes</vhost_ssl>"
            ),
            (
                "own",
                "<vhost_name>own.example.org</vhost_name><vhost_ssl>yes</vhost_ssl>\
                 <vhost_port>8443</vhost_port><vhost_cert_days>45</vhost_cert_days>"
            ),
            ("off", "<vhost_name>off.example.org</vhost_name><vhost_ssl></vhost_ssl>"),
        ])
    ));
    let services: Vec<_> = summary(&result.unwrap())
        .into_iter()
        .filter(|r| r.0 == "service")
        .collect();
    assert_eq!(
        services,
        [
            row("service", "Apache", "mc-check-http!80"),
            row(
                "service",
                "vhost plain.example.org",
                "mc-apacheconf-check-vhost!plain.example.org!80"
            ),
            row(
                "service",
                "vhost alt.example.org",
                "mc-apacheconf-check-vhost!alt.example.org!8080"
            ),
            row(
                "service",
                "vhost tls.example.org",
                "mc-apacheconf-check-vhost-ssl!tls.example.org!443!10"
            ),
            row(
                "service",
                "vhost own.example.org",
                "mc-apacheconf-check-vhost-ssl!own.example.org!8443!45"
            ),
            row(
                "service",
                "vhost off.example.org",
                "mc-apacheconf-check-vhost!off.example.org!80"
            ),
        ]
    );
}

#[test]
fn missing_vhost_name_is_missing_resource() {
    let (result, ctx) = translate(&format!(
        "{}{GROUPS}",
        vhosts(&[
            ("www", "<vhost_name>www.example.org</vhost_name>"),
            ("noname", "<vhost_port>80</vhost_port>"),
        ])
    ));
    assert_eq!(result, Err(TranslateError::missing("vhost_name_noname")));
    assert!(
        ctx.registrations().is_empty(),
        "nothing is registered for a failed machine"
    );

    let (result, _) = translate(&format!(
        "{}{GROUPS}",
        vhosts(&[("blank", "<vhost_name>  </vhost_name>")])
    ));
    assert_eq!(result, Err(TranslateError::missing("vhost_name_blank")));
}

#[test]
fn bad_vhost_values_are_invalid_values() {
    let cases = [
        (
            "<vhost_name>w.example.org</vhost_name><vhost_port>0</vhost_port>",
            "vhost_port_v",
            "0",
        ),
        (
            "<vhost_name>w.example.org</vhost_name><vhost_port>https</vhost_port>",
            "vhost_port_v",
            "https",
        ),
        (
            "<vhost_name>w.example.org</vhost_name><vhost_ssl>yes</vhost_ssl><vhost_cert_days>0</vhost_cert_days>",
            "vhost_cert_days_v",
            "0",
        ),
        (
            "<vhost_name>*.example.org</vhost_name>",
            "vhost_name_v",
            "*.example.org",
        ),
    ];
    for (inner, resource, value) in cases {
        let (result, _) = translate(&format!("{}{GROUPS}", vhosts(&[("v", inner)])));
        assert_eq!(invalid(result), (resource.to_string(), value.to_string()), "{inner}");
    }
    let (result, _) = translate(&format!(
        "<cert_warn_days>0</cert_warn_days>{}{GROUPS}",
        vhosts(&[("v", "<vhost_name>w.example.org</vhost_name><vhost_ssl>yes</vhost_ssl>")])
    ));
    assert_eq!(invalid(result), ("cert_warn_days".into(), "0".into()));
}

#[test]
fn duplicate_vhost_names_are_invalid() {
    let (result, _) = translate(&format!(
        "{}{GROUPS}",
        vhosts(&[
            ("a", "<vhost_name>www.example.org</vhost_name>"),
            (
                "b",
                "<vhost_name>www.example.org</vhost_name><vhost_port>8080</vhost_port>"
            ),
        ])
    ));
    assert_eq!(invalid(result), ("vhost_name_b".into(), "www.example.org".into()));
}

#[test]
fn missing_groups_is_missing_resource() {
    let (result, _) = translate_flat(&[("port", "80")]);
    assert_eq!(result, Err(TranslateError::missing("nagios_groups")));
}

#[test]
fn event_handler_is_attached_to_apache_only() {
    let (result, _) = translate(&format!(
        "<nagios_event_handler>restart-apache</nagios_event_handler>{}{GROUPS}",
        vhosts(&[("www", "<vhost_name>www.example.org</vhost_name>")])
    ));
    let bundle = result.unwrap();
    let apache = &bundle.objects()[0];
    assert_eq!(
        directives(apache),
        pairs(&[
            ("use", "mc-default-service"),
            ("host_name", MACHINE),
            ("service_description", "Apache"),
            ("check_command", "mc-check-http!80"),
            ("contact_groups", "www"),
            ("event_handler", "restart-apache"),
            ("event_handler_enabled", "1"),
        ])
    );
    let vhost = &bundle.objects()[1];
    assert_eq!(vhost.get_str("service_description"), Some("vhost www.example.org"));
    assert!(vhost.get("event_handler").is_none());
}

#[test]
fn no_event_handler_without_the_resource() {
    for body in ["", "<nagios_event_handler>  </nagios_event_handler>"] {
        let (result, _) = translate(&format!(
            "{body}{}{GROUPS}",
            vhosts(&[("www", "<vhost_name>www.example.org</vhost_name>")])
        ));
        let bundle = result.unwrap();
        for o in &bundle {
            assert!(o.get("event_handler").is_none(), "{body:?}");
            assert!(o.get("event_handler_enabled").is_none(), "{body:?}");
        }
    }
}

const ESCALATIONS: &str = "<nagios_escalations cfg:template=\"escalation_first_$ escalation_last_$ \
    escalation_interval_$ escalation_groups_$ escalation_services_$\">\
    <nagios_escalations_RECORD cfg:name=\"oncall\"><escalation_first>3</escalation_first>\
    <escalation_last>0</escalation_last><escalation_interval>30</escalation_interval>\
    <escalation_groups>infrastructure</escalation_groups><escalation_services>Apache</escalation_services>\
    </nagios_escalations_RECORD></nagios_escalations>";

#[test]
fn escalation_for_apache_only() {
    let (result, _) = translate(&format!(
        "{}{ESCALATIONS}{GROUPS}",
        vhosts(&[
            ("www", "<vhost_name>www.example.org</vhost_name>"),
            (
                "tls",
                "<vhost_name>tls.example.org</vhost_name><vhost_ssl>yes</vhost_ssl>"
            ),
        ])
    ));
    let bundle = result.unwrap();
    assert_eq!(
        summary(&bundle),
        [
            row("service", "Apache", "mc-check-http!80"),
            row("serviceescalation", "Apache", ""),
            row(
                "service",
                "vhost www.example.org",
                "mc-apacheconf-check-vhost!www.example.org!80"
            ),
            row("servicedependency", "vhost www.example.org", ""),
            row(
                "service",
                "vhost tls.example.org",
                "mc-apacheconf-check-vhost-ssl!tls.example.org!443!21"
            ),
            row("servicedependency", "vhost tls.example.org", ""),
        ]
    );
    let escalations: Vec<_> = bundle
        .iter()
        .filter(|o| o.kind == ObjectKind::ServiceEscalation)
        .map(directives)
        .collect();
    assert_eq!(
        escalations,
        [pairs(&[
            ("host_name", MACHINE),
            ("service_description", "Apache"),
            ("first_notification", "3"),
            ("last_notification", "0"),
            ("notification_interval", "30"),
            ("contact_groups", "infrastructure"),
        ])]
    );
}

#[test]
fn nagios_depends_registers_apache_dependencies() {
    let (result, ctx) = translate_flat(&[("nagios_depends", "nfs-home"), ("nagios_groups", "www")]);
    result.unwrap();
    assert_eq!(
        ctx.registrations(),
        [
            Registration::ContactGroup { group: "www".into() },
            Registration::DependsOn {
                tag: "nfs-home".into(),
                service: ServiceRef {
                    host: MACHINE.into(),
                    description: "Apache".into(),
                },
            },
        ]
    );
}
