//! Snapshots of the kerberos translator's output on the sample profiles.

use std::path::{Path, PathBuf};

use monitor_sdk::translator::Translator;
use monitor_sdk_test::{insta, translate_file};
use translator_kerberos::Kerberos;

/// Translate the `kerberos` component of a sample profile; return the machine name,
/// the rendered bundle and the registrations, one per line.
fn translate_sample(file: &str) -> (String, String, String) {
    let t = translate_file(&Kerberos, sample(file));
    assert_eq!(t.warnings(), "", "no warnings");
    (t.machine.clone(), t.rendered(), t.registrations())
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

/// A profile of the bundled samples.
fn sample(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../profiles-sample")
        .join(file)
}
