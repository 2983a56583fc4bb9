//! The crate graph is the architecture (docs/ARCHITECTURE.md): what each crate may depend
//! on, checked from the manifests, so that a new dependency that would let a translator
//! reach the engine, or the engine reach the live system, fails here.

use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The names of a manifest's `[dependencies]` (normal dependencies only).
fn dependencies(manifest: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join(manifest)).unwrap_or_else(|e| panic!("{manifest}: {e}"));
    let doc: toml::Table = text.parse().unwrap_or_else(|e| panic!("{manifest}: {e}"));
    doc.get("dependencies")
        .and_then(|d| d.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

const TRANSLATORS: [&str; 4] = ["kerberos", "jabberd", "cosign", "apacheconf"];

#[test]
fn a_translator_depends_on_the_sdk_alone() {
    for t in TRANSLATORS {
        assert_eq!(
            dependencies(&format!("translators/{t}/Cargo.toml")),
            set(&["monitor-sdk"]),
            "translator {t}"
        );
        assert_eq!(
            dependencies(&format!("translators/{t}/plugin/Cargo.toml")),
            set(&["monitor-sdk", &format!("translator-{t}")]),
            "the plugin crate of {t}"
        );
    }
}

#[test]
fn the_sdk_and_the_reader_stay_small() {
    let sdk = dependencies("core/sdk/Cargo.toml");
    let allowed = set(&["lcfg-profile", "serde", "serde_json", "thiserror", "tracing"]);
    assert!(
        sdk.is_subset(&allowed),
        "monitor-sdk depends on {:?}",
        sdk.difference(&allowed)
    );
    let reader = dependencies("core/profile/Cargo.toml");
    let allowed = set(&["indexmap", "serde", "thiserror", "quick-xml", "memchr", "flate2"]);
    assert!(
        reader.is_subset(&allowed),
        "lcfg-profile depends on {:?}",
        reader.difference(&allowed)
    );
}

#[test]
fn the_engine_does_not_reach_the_live_system() {
    let engine = dependencies("core/engine/Cargo.toml");
    for forbidden in [
        "monitor-runtime",
        "monitor-compile",
        "libloading",
        "redb",
        "tempfile",
        "notify",
    ] {
        assert!(!engine.contains(forbidden), "monitor-engine depends on {forbidden}");
    }
    let runtime = dependencies("core/runtime/Cargo.toml");
    assert!(
        !runtime.contains("monitor-compile"),
        "monitor-runtime depends on the binaries"
    );
}

/// The monitoring-info translator is built in only (no plugin crate), under the same rule;
/// its check plugin runs on its own under Nagios and reaches no part of monitor-compile.
#[test]
fn monitoring_info_stays_apart() {
    assert_eq!(
        dependencies("translators/monitoring-info/Cargo.toml"),
        set(&["monitor-sdk"]),
        "translator monitoring-info"
    );
    let check = dependencies("translators/monitoring-info/check/Cargo.toml");
    assert!(
        check
            .iter()
            .all(|d| !d.starts_with("monitor-") && !d.starts_with("translator-")),
        "check_monitoring_info depends on {check:?}"
    );
}
