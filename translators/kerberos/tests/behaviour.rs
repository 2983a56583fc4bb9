//! Behaviour of the kerberos translator on inline profiles.

use monitor_sdk::nagios::{Bundle, Value};
use monitor_sdk::translator::{Context, Registration, ServiceRef, TranslateError, Translator};
use translator_kerberos::Kerberos;

use monitor_sdk_test::MACHINE;

/// Translate a `kerberos` component whose resources are the XML `body`.
fn translate(body: &str) -> (Result<Bundle, TranslateError>, Context) {
    monitor_sdk_test::translate_xml(&Kerberos, body).into_parts()
}

fn check_command(bundle: &Bundle) -> String {
    assert_eq!(bundle.len(), 1);
    bundle.objects()[0].get("check_command").map(Value::render).unwrap()
}

#[test]
fn identifies_itself() {
    assert_eq!(Kerberos.component(), "kerberos");
    assert_eq!(Kerberos.version(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn missing_realm_is_missing_resource() {
    let (result, ctx) = translate("<type>master</type><nagios_groups>kdc</nagios_groups>");
    assert_eq!(
        result,
        Err(TranslateError::MissingResource {
            resource: "realm".into()
        })
    );
    assert!(
        ctx.registrations().is_empty(),
        "no contact group is registered for a failed machine"
    );
}

#[test]
fn empty_realm_is_missing_resource() {
    let (result, _) = translate("<type>master</type><realm>  </realm><nagios_groups>kdc</nagios_groups>");
    assert_eq!(result, Err(TranslateError::missing("realm")));
}

#[test]
fn missing_type_is_missing_resource() {
    let (result, _) = translate("<realm>EXAMPLE.ORG</realm><nagios_groups>kdc</nagios_groups>");
    assert_eq!(result, Err(TranslateError::missing("type")));
}

#[test]
fn client_type_warns_and_monitors_nothing() {
    let (result, ctx) = translate("<type>client</type><realm>EXAMPLE.ORG</realm><nagios_groups>kdc</nagios_groups>");
    let bundle = result.unwrap();
    assert!(bundle.is_empty());
    assert_eq!(
        ctx.warnings(),
        ["kerberos: monitoring machine 'h1.example.org' that is neither master nor slave"]
    );
    assert!(ctx.registrations().is_empty());
}

#[test]
fn missing_groups_is_missing_resource() {
    let (result, _) = translate("<type>slave</type><realm>EXAMPLE.ORG</realm>");
    assert_eq!(result, Err(TranslateError::missing("nagios_groups")));
}

#[test]
fn defaults_principal_and_keytab() {
    let (result, ctx) = translate("<type>slave</type><realm>EX.ORG</realm><nagios_groups>a b</nagios_groups>");
    let bundle = result.unwrap();
    bundle.check().unwrap();
    assert_eq!(
        check_command(&bundle),
        "mc-check-kdc!EX.ORG!nagios/monitor@EX.ORG!/etc/nagios4/krb5.keytab"
    );
    let o = &bundle.objects()[0];
    assert_eq!(o.get_str("host_name"), Some(MACHINE));
    assert_eq!(o.get_str("service_description"), Some("Kerberos KDC"));
    assert_eq!(o.get_str("use"), Some("mc-default-service"));
    assert_eq!(o.get("contact_groups").map(Value::render).as_deref(), Some("a,b"));
    assert_eq!(
        ctx.registrations(),
        [
            Registration::ContactGroup { group: "a".into() },
            Registration::ContactGroup { group: "b".into() },
            Registration::Cluster {
                name: "kdc-EX.ORG".into(),
                service: kdc_ref(),
                threshold: None
            },
            Registration::DependsOn {
                tag: "kdc-master-EX.ORG".into(),
                service: kdc_ref()
            },
        ]
    );
    assert!(ctx.warnings().is_empty());
}

#[test]
fn principal_and_keytab_resources_override_defaults() {
    let (result, _) = translate(
        "<type>master</type><realm>EX.ORG</realm><nagios_principal>probe/mon1@EX.ORG</nagios_principal>\
         <nagios_keytab>/etc/probe.keytab</nagios_keytab><nagios_groups>kdc</nagios_groups>",
    );
    assert_eq!(
        check_command(&result.unwrap()),
        "mc-check-kdc!EX.ORG!probe/mon1@EX.ORG!/etc/probe.keytab"
    );
}

#[test]
fn empty_principal_and_keytab_fall_back_to_defaults() {
    let (result, _) = translate(
        "<type>master</type><realm>EX.ORG</realm><nagios_principal></nagios_principal>\
         <nagios_keytab> </nagios_keytab><nagios_groups>kdc</nagios_groups>",
    );
    assert_eq!(
        check_command(&result.unwrap()),
        "mc-check-kdc!EX.ORG!nagios/monitor@EX.ORG!/etc/nagios4/krb5.keytab"
    );
}

#[test]
fn command_arguments_are_escaped() {
    let (result, _) = translate(
        "<type>master</type><realm>EX.ORG</realm><nagios_principal>a!b$c;d</nagios_principal><nagios_groups>kdc</nagios_groups>",
    );
    let bundle = result.unwrap();
    bundle.check().unwrap();
    assert_eq!(
        check_command(&bundle),
        "mc-check-kdc!EX.ORG!a\\!b$$c\\;d!/etc/nagios4/krb5.keytab"
    );
}

#[test]
fn realm_nagios_cannot_name_is_refused_before_registering() {
    for realm in ["A!B$C;D", "EX\n}\ndefine command{"] {
        let (result, ctx) = translate(&format!(
            "<type>master</type><realm>{realm}</realm><nagios_groups>kdc</nagios_groups>"
        ));
        match result {
            Err(TranslateError::InvalidValue { resource, value, .. }) => {
                assert_eq!(resource, "cluster name");
                assert_eq!(value, format!("kdc-{realm}"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            !ctx.registrations()
                .iter()
                .any(|r| matches!(r, Registration::Cluster { .. }))
        );
    }
}

#[test]
fn hostile_principal_cannot_be_written() {
    let (result, _) = translate(
        "<type>master</type><realm>EX.ORG</realm><nagios_principal>p\n}\ndefine command{</nagios_principal><nagios_groups>kdc</nagios_groups>",
    );
    let bundle = result.unwrap();
    let args = match bundle.objects()[0].get("check_command") {
        Some(Value::Command(c)) => c.args.clone(),
        other => panic!("unexpected check_command {other:?}"),
    };
    assert_eq!(
        args[1], "p\n}\ndefine command{",
        "the parser kept the newlines, so the test is meaningful"
    );
    let err = bundle.check().unwrap_err();
    assert_eq!(err.directive, "check_command");
    assert_eq!(err.reason, "contains a newline");
}

#[test]
fn start_pass_command_line() {
    let bundle = Kerberos.start_pass().unwrap();
    bundle.check().unwrap();
    assert_eq!(bundle.len(), 1);
    let o = &bundle.objects()[0];
    assert_eq!(o.get_str("command_name"), Some("mc-check-kdc"));
    assert_eq!(
        o.get_str("command_line"),
        Some("$USER1$/check_kdc -H '$HOSTADDRESS$' -r '$ARG1$' -P '$ARG2$' -k '$ARG3$'")
    );
}

fn kdc_ref() -> ServiceRef {
    ServiceRef {
        host: MACHINE.into(),
        description: "Kerberos KDC".into(),
    }
}

#[test]
fn master_provides_the_realm_tag_with_cluster_threshold() {
    let (result, ctx) = translate(
        "<type>master</type><realm>EX.ORG</realm><nagios_groups>a</nagios_groups><nagios_cluster_threshold>1</nagios_cluster_threshold><nagios_depends>dns ntp</nagios_depends>",
    );
    result.unwrap();
    assert_eq!(
        ctx.registrations()[1..],
        [
            Registration::Cluster {
                name: "kdc-EX.ORG".into(),
                service: kdc_ref(),
                threshold: Some(1)
            },
            Registration::Provides {
                tag: "kdc-master-EX.ORG".into(),
                service: kdc_ref()
            },
            Registration::DependsOn {
                tag: "dns".into(),
                service: kdc_ref()
            },
            Registration::DependsOn {
                tag: "ntp".into(),
                service: kdc_ref()
            },
        ]
    );
    let (result, _) = translate(
        "<type>master</type><realm>EX.ORG</realm><nagios_groups>a</nagios_groups><nagios_cluster_threshold>half</nagios_cluster_threshold>",
    );
    assert!(matches!(result, Err(TranslateError::InvalidValue { .. })));
}

#[test]
fn escalations_follow_the_kdc_service() {
    let (result, _) = translate(
        r#"<type>master</type><realm>EX.ORG</realm><nagios_groups>a</nagios_groups><nagios_escalations cfg:template="escalation_first_$ escalation_last_$ escalation_interval_$ escalation_groups_$"><nagios_escalations_RECORD cfg:name="night"><escalation_first>2</escalation_first><escalation_last>5</escalation_last><escalation_interval>15</escalation_interval><escalation_groups>oncall managers</escalation_groups></nagios_escalations_RECORD></nagios_escalations>"#,
    );
    let bundle = result.unwrap();
    assert_eq!(bundle.len(), 2);
    let e = &bundle.objects()[1];
    assert_eq!(e.kind, monitor_sdk::nagios::ObjectKind::ServiceEscalation);
    assert_eq!(e.get_str("service_description"), Some("Kerberos KDC"));
    assert_eq!(e.get_str("first_notification"), Some("2"));
    assert_eq!(e.get_str("last_notification"), Some("5"));
    assert_eq!(e.get_str("notification_interval"), Some("15"));
    assert_eq!(
        e.get("contact_groups").map(Value::render).as_deref(),
        Some("oncall,managers")
    );
}
