//! Snapshots of the apacheconf translator's output on the sample profiles.

use std::path::Path;

use monitor_core::profile::{Select, read_profile};
use monitor_core::translator::{Context, Translator};
use translator_apacheconf::Apacheconf;

#[test]
fn start_pass_defines_vhost_checks_and_event_handler() {
    let bundle = Apacheconf.start_pass().unwrap();
    bundle.check().unwrap();
    insta::assert_snapshot!("start_pass", bundle.render());
}

#[test]
fn web1_apache_and_vhosts() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles-sample/web1.xml");
    let profile = read_profile(&path, Select::Monitoring).unwrap();
    assert_eq!(profile.machine, "web1.example.org");
    let component = profile.component("apacheconf").unwrap();
    let mut ctx = Context::new(&profile.machine, "apacheconf");
    let bundle = Apacheconf.translate(&profile.machine, component, &mut ctx).unwrap();
    bundle.check().unwrap();
    assert!(ctx.warnings().is_empty(), "unexpected warnings: {:?}", ctx.warnings());
    let registrations: String = ctx.registrations().iter().map(|r| format!("{r}\n")).collect();
    insta::assert_snapshot!("web1_translate", bundle.render());
    insta::assert_snapshot!("web1_registrations", registrations);
}
