//! What the engine must never do, held by a test of its own source and manifest: it never
//! writes files, runs a program (Nagios included), or loads a plugin. Those belong to
//! `monitor-runtime`, which it does not depend on.

use std::path::Path;

/// Calls that write to the file system, start a process or load a library.
const FORBIDDEN: &[&str] = &[
    "std::process",
    "process::Command",
    "fs::write",
    "File::create",
    ".write(true)",
    ".append(true)",
    ".create(true)",
    "create_dir",
    "remove_file",
    "remove_dir",
    "fs::rename",
    "fs::copy",
    "set_permissions",
    "hard_link",
    "unix::fs::symlink",
    "libloading",
    "dlopen",
];

#[test]
fn the_engine_never_writes_files_runs_programs_or_loads_plugins() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offences = Vec::new();
    let mut files = 0;
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.unwrap();
        if entry.path().extension().is_none_or(|e| e != "rs") {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(entry.path()).unwrap();
        // Unit tests may make temporary files: only the code before them counts.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            let line = line.trim_start();
            if line.starts_with("//") {
                continue;
            }
            for f in FORBIDDEN {
                if line.contains(f) {
                    offences.push(format!("{}:{}: {f}", entry.path().display(), n + 1));
                }
            }
        }
    }
    assert!(files >= 10, "the engine's sources were found ({files} files)");
    assert!(
        offences.is_empty(),
        "the engine must not do this:\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_engine_depends_on_no_runtime_crate() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|s| s.split("\n[").next())
        .expect("a [dependencies] table");
    for name in ["monitor-runtime", "libloading", "redb", "tempfile", "monitor-compile"] {
        assert!(
            !deps.lines().any(|l| l.trim_start().starts_with(name)),
            "monitor-engine depends on {name}"
        );
    }
}
