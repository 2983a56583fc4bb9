//! What the Icinga 2 writer must never do, held by a test of its own source and manifest:
//! like the engine, it maps objects and returns a set; it never touches the file system,
//! runs a program (icinga2 included) or loads a plugin, and it does not depend on
//! `monitor-runtime`, which does those things.

use std::path::Path;

const FORBIDDEN: &[&str] = &[
    "std::fs",
    "std::process",
    "process::Command",
    "File::",
    "libloading",
    "dlopen",
];

#[test]
fn the_writer_never_touches_files_or_runs_programs() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offences = Vec::new();
    let mut files = 0;
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for f in FORBIDDEN {
                if line.contains(f) {
                    offences.push(format!("{}:{}: {f}", path.display(), n + 1));
                }
            }
        }
    }
    assert!(files >= 5, "the writer's sources were found ({files} files)");
    assert!(
        offences.is_empty(),
        "the writer must not do this:\n{}",
        offences.join("\n")
    );
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    assert!(
        !manifest.contains("monitor-runtime"),
        "the writer depends on no runtime crate"
    );
}
