//! Behaviour of the jabberd translator on inline profiles.

use monitor_sdk::nagios::{Bundle, Value};
use monitor_sdk::translator::{Context, Registration, TranslateError, Translator};
use translator_jabberd::{EXPECT_XML, Jabberd};

use monitor_sdk_test::MACHINE;

/// Translate a `jabberd` component whose resources are the XML `body`.
fn translate(body: &str) -> (Result<Bundle, TranslateError>, Context) {
    monitor_sdk_test::translate_xml(&Jabberd, body).into_parts()
}

/// (service_description, rendered check_command) of every object, in order.
fn services(bundle: &Bundle) -> Vec<(String, String)> {
    bundle
        .iter()
        .map(|o| {
            assert_eq!(o.get_str("host_name"), Some(MACHINE));
            assert_eq!(o.get_str("use"), Some("mc-default-service"));
            (
                o.get_str("service_description").unwrap().to_string(),
                o.get("check_command").unwrap().render(),
            )
        })
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

fn invalid(resource: &str, value: &str) -> Option<(String, String)> {
    match translate(&format!(
        "<{resource}>{value}</{resource}><c2s_pemfile>/p.pem</c2s_pemfile><nagios_groups>j</nagios_groups>"
    )) {
        (Err(TranslateError::InvalidValue { resource, value, .. }), ctx) => {
            assert!(
                ctx.registrations().is_empty(),
                "no contact group is registered for a failed machine"
            );
            Some((resource, value))
        }
        _ => None,
    }
}

#[test]
fn identifies_itself() {
    assert_eq!(Jabberd.component(), "jabberd");
    assert_eq!(Jabberd.version(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn no_pemfile_means_no_ssl_service() {
    let (result, ctx) = translate("<c2s_pemfile></c2s_pemfile><nagios_groups>jabber ops</nagios_groups>");
    let bundle = result.unwrap();
    bundle.check().unwrap();
    assert_eq!(services(&bundle), [pair("Jabber", "mc-check-jabber!5222")]);
    assert!(!bundle.render().contains("Jabber SSL"));
    assert_eq!(
        bundle.objects()[0].get("contact_groups").map(Value::render).as_deref(),
        Some("jabber,ops")
    );
    assert_eq!(
        ctx.registrations(),
        [
            Registration::ContactGroup { group: "jabber".into() },
            Registration::ContactGroup { group: "ops".into() }
        ]
    );
}

#[test]
fn pemfile_adds_ssl_service_with_defaults() {
    let (result, _) = translate("<c2s_pemfile>/p.pem</c2s_pemfile><nagios_groups>j</nagios_groups>");
    let bundle = result.unwrap();
    bundle.check().unwrap();
    assert_eq!(
        services(&bundle),
        [
            pair("Jabber", "mc-check-jabber!5222"),
            pair("Jabber SSL", "mc-check-jabber-ssl!5223!28")
        ]
    );
    assert_eq!(
        bundle.objects()[1].get("contact_groups").map(Value::render).as_deref(),
        Some("j")
    );
}

#[test]
fn old_pemfile_alone_adds_ssl_service() {
    let (result, _) = translate("<c2s_oldpemfile>/old.pem</c2s_oldpemfile><nagios_groups>j</nagios_groups>");
    let names: Vec<String> = services(&result.unwrap()).into_iter().map(|(d, _)| d).collect();
    assert_eq!(names, ["Jabber", "Jabber SSL"]);
}

#[test]
fn ports_and_days_come_from_resources() {
    let (result, _) = translate(
        "<c2s_port> 15222 </c2s_port><c2s_ssl_port>15223</c2s_ssl_port><cert_warn_days>7</cert_warn_days>\
         <c2s_pemfile>/p.pem</c2s_pemfile><nagios_groups>j</nagios_groups>",
    );
    assert_eq!(
        services(&result.unwrap()),
        [
            pair("Jabber", "mc-check-jabber!15222"),
            pair("Jabber SSL", "mc-check-jabber-ssl!15223!7")
        ]
    );
}

#[test]
fn invalid_c2s_port_is_invalid_value() {
    for bad in ["http", "0", "65536", "-1", "52 22", "5222\n}\ndefine command{"] {
        assert_eq!(
            invalid("c2s_port", bad),
            Some(pair("c2s_port", bad)),
            "c2s_port {bad:?}"
        );
    }
}

#[test]
fn invalid_ssl_port_and_days_are_invalid_values() {
    assert_eq!(invalid("c2s_ssl_port", "0"), Some(pair("c2s_ssl_port", "0")));
    assert_eq!(invalid("c2s_ssl_port", "99999"), Some(pair("c2s_ssl_port", "99999")));
    assert_eq!(invalid("cert_warn_days", "0"), Some(pair("cert_warn_days", "0")));
    assert_eq!(invalid("cert_warn_days", "-3"), Some(pair("cert_warn_days", "-3")));
    assert_eq!(invalid("cert_warn_days", "four"), Some(pair("cert_warn_days", "four")));
}

#[test]
fn ssl_resources_are_ignored_without_a_pemfile() {
    let (result, _) = translate(
        "<c2s_ssl_port>bogus</c2s_ssl_port><cert_warn_days>0</cert_warn_days><nagios_groups>j</nagios_groups>",
    );
    assert_eq!(services(&result.unwrap()), [pair("Jabber", "mc-check-jabber!5222")]);
}

#[test]
fn missing_groups_is_missing_resource() {
    let (result, _) = translate("<c2s_pemfile>/p.pem</c2s_pemfile>");
    assert_eq!(result, Err(TranslateError::missing("nagios_groups")));
}

/// Every `$` in a command line opens or closes one of the macros we mean to use.
fn only_known_macros(line: &str) -> bool {
    let parts: Vec<&str> = line.split('$').collect();
    parts.len() % 2 == 1
        && parts.iter().skip(1).step_by(2).all(|m| {
            matches!(*m, "USER1" | "HOSTADDRESS")
                || m.strip_prefix("ARG")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
}

#[test]
fn start_pass_command_lines() {
    let bundle = Jabberd.start_pass().unwrap();
    bundle.check().unwrap();
    let commands: Vec<(&str, &str)> = bundle
        .iter()
        .map(|o| (o.get_str("command_name").unwrap(), o.get_str("command_line").unwrap()))
        .collect();
    let quoted = format!("-e \"{EXPECT_XML}\"");
    assert_eq!(
        commands,
        [
            (
                "mc-check-jabber",
                format!("$USER1$/check_jabber -H '$HOSTADDRESS$' -p '$ARG1$' {quoted}").as_str()
            ),
            (
                "mc-check-jabber-ssl",
                format!("$USER1$/check_jabber -H '$HOSTADDRESS$' -p '$ARG1$' --ssl -D '$ARG2$' {quoted}").as_str()
            ),
        ]
    );
    assert!(
        EXPECT_XML.starts_with("<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' ")
    );
    assert!(!EXPECT_XML.contains(['"', '$', '\n', '\r', ';', '!']));
    for (_, line) in commands {
        assert!(only_known_macros(line), "{line}");
    }
}

#[test]
fn escalations_follow_each_service() {
    let xml = r#"<?xml version="1.0"?><profile xmlns:cfg="http://www.lcfg.org/namespace/profile-1.0"><lcfg><components><profile><node>h1</node><domain>example.org</domain></profile><jabberd><c2s_pemfile>/p.pem</c2s_pemfile><nagios_groups>jabber</nagios_groups><nagios_escalations cfg:template="escalation_first_$ escalation_groups_$ escalation_services_$"><nagios_escalations_RECORD cfg:name="ssl"><escalation_first>2</escalation_first><escalation_groups>oncall</escalation_groups><escalation_services>Jabber SSL</escalation_services></nagios_escalations_RECORD></nagios_escalations></jabberd><nagios_client><components>jabberd</components></nagios_client></components></lcfg></profile>"#;
    let t = monitor_sdk_test::translate_profile(&Jabberd, xml);
    let bundle = t.bundle();
    let kinds: Vec<(monitor_sdk::nagios::ObjectKind, Option<&str>)> = bundle
        .objects()
        .iter()
        .map(|o| (o.kind, o.get_str("service_description")))
        .collect();
    use monitor_sdk::nagios::ObjectKind::*;
    assert_eq!(
        kinds,
        [
            (Service, Some("Jabber")),
            (Service, Some("Jabber SSL")),
            (ServiceEscalation, Some("Jabber SSL"))
        ]
    );
    bundle.check().unwrap();
}
