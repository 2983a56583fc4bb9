//! Snapshots of the jabberd translator's output on the sample profiles.

use std::path::Path;

use monitor_core::profile::{Select, read_profile};
use monitor_core::translator::{Context, Translator};
use translator_jabberd::Jabberd;

#[test]
fn start_pass_defines_both_commands() {
    let bundle = Jabberd.start_pass().unwrap();
    bundle.check().unwrap();
    insta::assert_snapshot!("start_pass", bundle.render());
}

#[test]
fn jabber1_plain_and_ssl() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles-sample/jabber1.xml");
    let profile = read_profile(&path, Select::Monitoring).unwrap();
    assert_eq!(profile.machine, "jabber1.example.org");
    let component = profile.component("jabberd").unwrap();
    let mut ctx = Context::new(&profile.machine, "jabberd");
    let bundle = Jabberd.translate(&profile.machine, component, &mut ctx).unwrap();
    bundle.check().unwrap();
    assert!(ctx.warnings().is_empty(), "unexpected warnings: {:?}", ctx.warnings());
    let registrations: String = ctx.registrations().iter().map(|r| format!("{r}\n")).collect();
    insta::assert_snapshot!("jabber1_translate", bundle.render());
    insta::assert_snapshot!("jabber1_registrations", registrations);
}
