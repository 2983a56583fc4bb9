//! Behaviour of the kerberos translator on inline profiles.

use std::path::Path;

use monitor_core::nagios::{Bundle, Value};
use monitor_core::profile::{Select, parse_profile};
use monitor_core::translator::{Context, Registration, TranslateError, Translator};
use translator_kerberos::Kerberos;

const MACHINE: &str = "h1.example.org";

/// Translate a `kerberos` component whose resources are the XML `body`.
fn translate(body: &str) -> (Result<Bundle, TranslateError>, Context) {
    let xml = format!(
        "<?xml version=\"1.0\"?><profile xmlns:cfg=\"http://www.lcfg.org/namespace/profile-1.0\"><lcfg><components>\
         <profile><node>h1</node><domain>example.org</domain></profile>\
         <kerberos>{body}</kerberos>\
         <nagios_client><components>kerberos</components></nagios_client>\
         </components></lcfg></profile>"
    );
    let profile = parse_profile(Path::new("t.xml"), xml.as_bytes(), Select::Monitoring).unwrap();
    assert_eq!(profile.machine, MACHINE);
    let component = profile.component("kerberos").unwrap();
    let mut ctx = Context::new(&profile.machine, "kerberos");
    let result = Kerberos.translate(&profile.machine, component, &mut ctx);
    (result, ctx)
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
        "check_kdc!EX.ORG!nagios/monitor@EX.ORG!/etc/nagios4/krb5.keytab"
    );
    let o = &bundle.objects()[0];
    assert_eq!(o.get_str("host_name"), Some(MACHINE));
    assert_eq!(o.get_str("service_description"), Some("Kerberos KDC"));
    assert_eq!(o.get_str("use"), Some("default-service"));
    assert_eq!(o.get("contact_groups").map(Value::render).as_deref(), Some("a,b"));
    assert_eq!(
        ctx.registrations(),
        [
            Registration::ContactGroup { group: "a".into() },
            Registration::ContactGroup { group: "b".into() }
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
        "check_kdc!EX.ORG!probe/mon1@EX.ORG!/etc/probe.keytab"
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
        "check_kdc!EX.ORG!nagios/monitor@EX.ORG!/etc/nagios4/krb5.keytab"
    );
}

#[test]
fn command_arguments_are_escaped() {
    let (result, _) = translate("<type>master</type><realm>A!B$C;D</realm><nagios_groups>kdc</nagios_groups>");
    let bundle = result.unwrap();
    bundle.check().unwrap();
    assert_eq!(
        check_command(&bundle),
        "check_kdc!A\\!B$$C\\;D!nagios/monitor@A\\!B$$C\\;D!/etc/nagios4/krb5.keytab"
    );
}

#[test]
fn hostile_realm_cannot_be_written() {
    let (result, _) =
        translate("<type>master</type><realm>EX\n}\ndefine command{</realm><nagios_groups>kdc</nagios_groups>");
    let bundle = result.unwrap();
    let args = match bundle.objects()[0].get("check_command") {
        Some(Value::Command(c)) => c.args.clone(),
        other => panic!("unexpected check_command {other:?}"),
    };
    assert_eq!(
        args[0], "EX\n}\ndefine command{",
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
    assert_eq!(o.get_str("command_name"), Some("check_kdc"));
    assert_eq!(
        o.get_str("command_line"),
        Some("$USER1$/check_kdc -H '$HOSTADDRESS$' -r '$ARG1$' -P '$ARG2$' -k '$ARG3$'")
    );
}
