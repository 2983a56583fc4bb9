//! Behaviour of the monitoring-info translator on inline profiles: the LCFG tag list, the
//! registered text with overrides, per-service failures, and hostile values.

use monitor_sdk::nagios::{Bundle, Value};
use monitor_sdk::translator::{Context, Registration, TranslateError, Translator};
use monitor_sdk_test::MACHINE;
use translator_monitoring_info::MonitoringInfo;

fn translate_xml(body: &str) -> (Result<Bundle, TranslateError>, Context) {
    monitor_sdk_test::translate_xml(&MonitoringInfo, body).into_parts()
}

fn translate_flat(pairs: &[(&str, &str)]) -> (Result<Bundle, TranslateError>, Context) {
    monitor_sdk_test::translate_flat(&MonitoringInfo, pairs).into_parts()
}

/// (service_description, rendered check_command) of every object.
fn summary(bundle: &Bundle) -> Vec<(String, String)> {
    bundle
        .iter()
        .map(|o| {
            assert_eq!(o.get_str("host_name"), Some(MACHINE));
            (
                o.get_str("service_description").unwrap_or_default().to_string(),
                o.get("check_command").map(Value::render).unwrap_or_default(),
            )
        })
        .collect()
}

fn rows(r: &[(&str, &str)]) -> Vec<(String, String)> {
    r.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

/// A tag list record of `services`.
fn record(tag: &str, keys: &[(&str, &str)]) -> String {
    let body: String = keys.iter().map(|(k, v)| format!("<{k}>{v}</{k}>")).collect();
    format!("<services_RECORD cfg:name=\"{tag}\">{body}</services_RECORD>")
}

fn profile(records: &[String]) -> String {
    let template: Vec<String> = translator_monitoring_info::PROFILE_KEYS
        .iter()
        .map(|k| format!("{k}_$"))
        .collect();
    format!(
        "<nagios_groups>web</nagios_groups><services cfg:template=\"{}\">{}</services>",
        template.join(" "),
        records.concat()
    )
}

#[test]
fn an_lcfg_tag_list_declares_services_with_the_machines_groups() {
    let (r, ctx) = translate_xml(&profile(&[
        record("apache2", &[("type", "http")]),
        record(
            "intranet",
            &[
                ("type", "http"),
                ("ssl", "yes"),
                ("uri", "/status"),
                ("accept_redirection", ""),
            ],
        ),
        record("exim", &[("type", "smtp"), ("port", "2525")]),
        record("ssh", &[("type", "ssh")]),
    ]));
    let bundle = r.unwrap();
    assert!(ctx.warnings().is_empty(), "{:?}", ctx.warnings());
    assert_eq!(
        summary(&bundle),
        rows(&[
            (
                "apache2",
                "mc-info-http!h1.example.org!80!/!HTTP/1.0 2,HTTP/1.1 2,HTTP/1.0 3,HTTP/1.1 3"
            ),
            (
                "intranet",
                "mc-info-https!h1.example.org!443!/status!HTTP/1.0 2,HTTP/1.1 2"
            ),
            ("intranet certificate", "mc-info-cert!443!h1.example.org!0"),
            ("exim", "mc-info-smtp!2525"),
            ("ssh", "mc-info-ssh!22"),
        ])
    );
    for o in bundle.iter() {
        assert_eq!(o.get("contact_groups"), Some(&Value::Names(vec!["web".into()])));
    }
    assert_eq!(
        ctx.registrations(),
        [Registration::ContactGroup { group: "web".into() }]
    );
}

#[test]
fn a_registration_with_overrides_disables_and_changes() {
    let registration = "# generated\n#@file apache2\n[apache2]\ntype = http\n\n#@file exim4\n[exim]\ntype = smtp\nemail = probe@example.org\nmailflowid = main\n\
                        #@file mailflow\n[mailflow]\ntype = mailflow\nid = main\nseconds = 900\n";
    let overrides = "#@file apache2\n[apache2]\ndisabled = yes\n#@file exim\n[exim]\nport = 587\n[nothere]\nport = 1\n";
    let (r, ctx) = translate_flat(&[
        ("nagios_groups", "mail"),
        ("registration", registration),
        ("registration_origin", "state/web3.conf"),
        ("overrides", overrides),
        ("overrides_origin", "site/h1.example.org/x"),
    ]);
    let bundle = r.unwrap();
    assert_eq!(
        summary(&bundle),
        rows(&[
            ("exim", "mc-info-smtp-send!587!probe@example.org!main"),
            ("mailflow", "mc-info-mailflow!main!900"),
        ])
    );
    assert_eq!(ctx.warnings().len(), 1, "{:?}", ctx.warnings());
    assert!(
        ctx.warnings()[0].starts_with("site/h1.example.org/exim line 3: override [nothere] names no service"),
        "{:?}",
        ctx.warnings()
    );
}

#[test]
fn bad_input_fails_only_that_service_naming_file_section_and_key() {
    let registration = "#@file good\n[good]\ntype = tcp\nport = 5432\n\
                        #@file bad\n[unknown]\ntype = gopher\n[noport]\ntype = tcp\n[notint]\ntype = tcp\nport = 80a\n\
                        [good]\ntype = ssh\n[dollar]\ntype = http\nuri = /$USER3$\n";
    let (r, ctx) = translate_flat(&[("nagios_groups", "web"), ("registration", registration)]);
    assert_eq!(summary(&r.unwrap()), rows(&[("good", "mc-info-tcp!5432")]));
    let w = ctx.warnings();
    let prefix = "h1.example.org:/etc/monitoring-info/bad";
    assert_eq!(w.len(), 5, "{w:#?}");
    assert_eq!(
        w[0],
        format!(
            "{prefix} line 8: [good]: a duplicate section (first at h1.example.org:/etc/monitoring-info/good line 1): not monitored"
        )
    );
    assert!(
        w[1].starts_with(&format!(
            "service not monitored: {prefix} line 2: [unknown] type: unknown type \"gopher\""
        )),
        "{}",
        w[1]
    );
    assert!(
        w[2].starts_with(&format!(
            "service not monitored: {prefix} line 3: [noport] port: missing"
        )),
        "{}",
        w[2]
    );
    assert!(
        w[3].starts_with(&format!(
            "service not monitored: {prefix} line 7: [notint] port: \"80a\" is not an integer"
        )),
        "{}",
        w[3]
    );
    assert!(
        w[4].starts_with(&format!(
            "service not monitored: {prefix} line 12: [dollar] uri: the value contains '$'"
        )),
        "{}",
        w[4]
    );
}

#[test]
fn a_newline_in_a_profile_value_fails_that_service() {
    let (r, ctx) = translate_xml(&profile(&[
        record("ok", &[("type", "ssh")]),
        record("evil", &[("type", "http"), ("hostname", "a&#10;define host{")]),
    ]));
    assert_eq!(summary(&r.unwrap()), rows(&[("ok", "mc-info-ssh!22")]));
    assert_eq!(ctx.warnings().len(), 1);
    assert!(
        ctx.warnings()[0].contains("[evil] hostname: the value contains a newline"),
        "{:?}",
        ctx.warnings()
    );
    assert!(
        ctx.warnings()[0].contains("profile resource monitoring_info.hostname_evil"),
        "{:?}",
        ctx.warnings()
    );
}

#[test]
fn hostile_values_reach_no_object_and_no_shell() {
    let hostile = [
        "x'; touch /tmp/pwned; echo '",
        "$USER3$",
        "a!b",
        "`id`",
        "a\\",
        "x\ndefine command{",
    ];
    for h in hostile {
        for key in ["hostname", "uri", "ssl_hostname"] {
            let text = format!("[svc]\ntype = http\nssl = yes\n{key} = {h}\n");
            let (r, ctx) = translate_flat(&[("nagios_groups", "web"), ("registration", &text)]);
            let bundle = r.unwrap();
            let rendered = bundle.render();
            assert!(
                !rendered.contains("pwned") && !rendered.contains("USER3") && !rendered.contains("id`"),
                "{key}={h:?}: {rendered}"
            );
            assert!(!ctx.warnings().is_empty(), "{key}={h:?} was accepted");
        }
    }
    // In a section name.
    let (r, ctx) = translate_flat(&[
        ("nagios_groups", "web"),
        ("registration", "[a;b]\ntype = ssh\n[c}\ndefine]\ntype = ssh\n"),
    ]);
    assert!(r.unwrap().is_empty());
    // The unclosed header and the line after it are unreadable lines; `[a;b]` a bad name.
    assert_eq!(ctx.warnings().len(), 3, "{:?}", ctx.warnings());
}

#[test]
fn a_password_never_reaches_the_objects_or_the_warnings() {
    let registration = "[mail]\ntype = imap\nusername = probe\npassword = s3cret-pw\n";
    let (r, ctx) = translate_flat(&[("nagios_groups", "mail"), ("registration", registration)]);
    let bundle = r.unwrap();
    assert!(bundle.is_empty());
    assert!(!bundle.render().contains("s3cret"));
    assert!(
        ctx.warnings().iter().all(|w| !w.contains("s3cret")),
        "{:?}",
        ctx.warnings()
    );
    assert!(ctx.warnings()[0].contains("[mail] password"), "{:?}", ctx.warnings());
    // What registration makes of it: the password in a file of the server.
    let registration = "[mail]\ntype = imap\nssl = yes\nusername = probe\npassword_file = /var/lib/monitor-compile/monitoring-info/secrets/h1/6d61696c\nmailflowid = main\n";
    let (r, ctx) = translate_flat(&[("nagios_groups", "mail"), ("registration", registration)]);
    assert!(ctx.warnings().is_empty(), "{:?}", ctx.warnings());
    assert_eq!(
        summary(&r.unwrap()),
        rows(&[
            (
                "mail",
                "mc-info-imap-login-ssl!993!probe!/var/lib/monitor-compile/monitoring-info/secrets/h1/6d61696c!main!h1.example.org"
            ),
            ("mail certificate", "mc-info-cert!993!h1.example.org!0"),
        ])
    );
}

#[test]
fn ssl_options_shape_the_certificate_service() {
    let text = "[a]\ntype = tcp\nport = 8443\nssl = yes\nssl_hostname = www.example.org\nexpire_before_days = 30\n\
                [b]\ntype = pop3\nssl = yes\nignore_invalid_ssl = yes\n\
                [c]\ntype = ldap\nssl = yes\nignore_invalid_ssl = yes\nexpire_before_days = 14\n";
    let (r, ctx) = translate_flat(&[("nagios_groups", "web"), ("registration", text)]);
    assert!(ctx.warnings().is_empty(), "{:?}", ctx.warnings());
    assert_eq!(
        summary(&r.unwrap()),
        rows(&[
            ("a", "mc-info-tcp-ssl!8443!www.example.org"),
            ("a certificate", "mc-info-cert!8443!www.example.org!30"),
            ("b", "mc-info-pop3-ssl!995!h1.example.org"),
            ("c", "mc-info-ldap-ssl!636!"),
            ("c certificate", "mc-info-cert-expiry!636!h1.example.org!14"),
        ])
    );
}

#[test]
fn no_groups_fails_the_component_and_no_declaration_produces_nothing() {
    let (r, _) = translate_flat(&[("registration", "[a]\ntype = ssh\n")]);
    assert_eq!(r.unwrap_err(), TranslateError::missing("nagios_groups"));
    let (r, ctx) = translate_flat(&[("nagios_groups", "web")]);
    assert!(r.unwrap().is_empty());
    assert!(ctx.warnings().is_empty());
}

#[test]
fn every_command_is_defined_once_and_checks_clean() {
    let mut t = MonitoringInfo;
    let b = t.start_pass().unwrap();
    b.check().unwrap();
    let mut names: Vec<&str> = b.iter().filter_map(|o| o.name()).collect();
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n);
}
