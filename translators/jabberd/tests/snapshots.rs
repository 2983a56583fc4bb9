//! Snapshots of the jabberd translator's output on the sample profiles.

use std::path::{Path, PathBuf};

use monitor_sdk::translator::Translator;
use monitor_sdk_test::{insta, translate_file};
use translator_jabberd::Jabberd;

#[test]
fn start_pass_defines_both_commands() {
    let bundle = Jabberd.start_pass().unwrap();
    bundle.check().unwrap();
    insta::assert_snapshot!("start_pass", bundle.render());
}

#[test]
fn jabber1_plain_and_ssl() {
    let t = translate_file(&Jabberd, sample("jabber1.xml"));
    assert_eq!(t.machine, "jabber1.example.org");
    assert_eq!(t.warnings(), "", "no warnings");
    insta::assert_snapshot!("jabber1_translate", t.rendered());
    insta::assert_snapshot!("jabber1_registrations", t.registrations());
}

/// A profile of the bundled samples.
fn sample(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../profiles-sample")
        .join(file)
}
