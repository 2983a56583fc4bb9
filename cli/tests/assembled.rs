//! The whole assembled configuration as a snapshot: the bundled sample profiles in, every
//! file `monitor-compile --once` writes out, in name order, each under its name. Any change
//! in what the fleet's Nagios reads shows here, file by file, for review.

use std::path::{Path, PathBuf};
use std::process::Command;

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles-sample")
}

/// Every file under `dir`, relative and sorted, with its contents.
fn folder(dir: &Path) -> String {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = String::new();
    for f in files {
        let rel = f.strip_prefix(dir).unwrap().display().to_string();
        out.push_str(&format!("=== {rel} ===\n"));
        out.push_str(&std::fs::read_to_string(&f).unwrap());
    }
    out
}

fn compile(out: &Path) -> String {
    let none = tempfile::tempdir().unwrap();
    let r = Command::new(env!("CARGO_BIN_EXE_monitor-compile"))
        .args(["--once", "--profiles"])
        .arg(samples())
        .arg("--users")
        .arg(samples().join("users.toml"))
        .arg("--output")
        .arg(out)
        // Hermetic: never load what happens to be installed in the package directory.
        .arg("--translators")
        .arg(none.path())
        .output()
        .expect("run monitor-compile");
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    folder(out)
}

#[test]
fn the_samples_assemble_to_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cfg");
    let text = compile(&out);
    assert!(text.contains("=== 00-base.cfg ===\n"), "the output folder was read");
    insta::assert_snapshot!("samples_output_folder", text);
}

#[test]
fn two_compiles_are_byte_identical() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert_eq!(compile(&a.path().join("cfg")), compile(&b.path().join("cfg")));
}
