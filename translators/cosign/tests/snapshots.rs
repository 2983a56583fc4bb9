//! Snapshots of the cosign translator's output on the sample profiles.

use std::path::{Path, PathBuf};

use monitor_sdk::translator::Translator;
use monitor_sdk_test::{insta, translate_file};
use translator_cosign::Cosign;

#[test]
fn start_pass_defines_https_check() {
    let bundle = Cosign.start_pass().unwrap();
    bundle.check().unwrap();
    insta::assert_snapshot!("start_pass", bundle.render());
}

#[test]
fn web1_replicated_server() {
    let t = translate_file(&Cosign, sample("web1.xml"));
    assert_eq!(t.machine, "web1.example.org");
    assert_eq!(t.warnings(), "", "no warnings");
    insta::assert_snapshot!("web1_translate", t.rendered());
    insta::assert_snapshot!("web1_registrations", t.registrations());
}

/// A profile of the bundled samples.
fn sample(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../profiles-sample")
        .join(file)
}
