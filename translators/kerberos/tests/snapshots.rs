//! Snapshots of the kerberos translator's output on the sample profiles.

use std::path::Path;

use monitor_core::profile::{Select, read_profile};
use monitor_core::translator::{Context, Translator};
use translator_kerberos::Kerberos;

/// Translate the `kerberos` component of a sample profile; return the machine name,
/// the rendered bundle and the registrations, one per line.
fn translate_sample(file: &str) -> (String, String, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../profiles-sample")
        .join(file);
    let profile = read_profile(&path, Select::Monitoring).unwrap();
    let component = profile.component("kerberos").unwrap();
    let mut ctx = Context::new(&profile.machine, "kerberos");
    let bundle = Kerberos.translate(&profile.machine, component, &mut ctx).unwrap();
    bundle.check().unwrap();
    assert!(ctx.warnings().is_empty(), "unexpected warnings: {:?}", ctx.warnings());
    let registrations: String = ctx.registrations().iter().map(|r| format!("{r}\n")).collect();
    (profile.machine.clone(), bundle.render(), registrations)
}

#[test]
fn start_pass_defines_check_kdc() {
    let bundle = Kerberos.start_pass().unwrap();
    bundle.check().unwrap();
    insta::assert_snapshot!("start_pass", bundle.render());
}

#[test]
fn kdc1_master() {
    let (machine, rendered, registrations) = translate_sample("kdc1.xml");
    assert_eq!(machine, "kdc1.example.org");
    insta::assert_snapshot!("kdc1_translate", rendered);
    insta::assert_snapshot!("kdc1_registrations", registrations);
}

#[test]
fn jabber1_slave() {
    let (machine, rendered, registrations) = translate_sample("jabber1.xml");
    assert_eq!(machine, "jabber1.example.org");
    insta::assert_snapshot!("jabber1_translate", rendered);
    insta::assert_snapshot!("jabber1_registrations", registrations);
}
