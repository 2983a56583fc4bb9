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

/// Whether `line` spells an output file name: `NN-name.cfg`, the machines' directory or
/// the passive ACL.
fn spells_an_output_file(line: &str) -> bool {
    let bytes = line.as_bytes();
    let numbered = bytes.windows(4).enumerate().any(|(i, w)| {
        w[0] == b'"' && w[1].is_ascii_digit() && w[2].is_ascii_digit() && w[3] == b'-' && line[i..].contains(".cfg\"")
    });
    numbered || line.contains("\"20-machines") || line.contains("\"passive-acl.conf")
}

#[test]
fn only_the_layout_spells_output_file_names() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut offences = Vec::new();
    for dir in ["core/engine/src", "core/runtime/src", "cli/src"] {
        for entry in walkdir::WalkDir::new(root.join(dir)) {
            let entry = entry.unwrap();
            if entry.path().extension().is_none_or(|e| e != "rs") || entry.path().ends_with("layout.rs") {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (n, line) in code.lines().enumerate() {
                if !line.trim_start().starts_with("//") && spells_an_output_file(line) {
                    offences.push(format!("{}:{}: {}", entry.path().display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        spells_an_output_file(r#"PathBuf::from("31-clusters.cfg")"#),
        "the check finds a name"
    );
    assert!(
        offences.is_empty(),
        "output file names outside layout.rs:\n{}",
        offences.join("\n")
    );
}
