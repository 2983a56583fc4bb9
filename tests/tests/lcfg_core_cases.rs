//! The profile reader against lcfg-core itself: every case in `tests/fixtures/lcfg-core-cases/`
//! (`NAME.xml` or `NAME.xml.gz`) is read and dumped as `monitor-test --dump` prints it (the
//! machine name, then `component.resource=value` sorted), and compared exactly with
//! `NAME.expected`, which is lcfg-core's own output for it (see the folder's README).
//! All cases are checked before the test fails, and each mismatch is shown in full.

use std::path::{Path, PathBuf};

use lcfg_profile::{Select, dump, read_profile};

fn cases() -> Vec<(String, PathBuf, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/lcfg-core-cases");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("the fixture folder") {
        let path = entry.expect("a fixture entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".xml.gz").or_else(|| name.strip_suffix(".xml")) else {
            continue;
        };
        let expected = dir.join(format!("{stem}.expected"));
        assert!(expected.exists(), "{name} has no {stem}.expected");
        out.push((stem.to_string(), path, expected));
    }
    out.sort();
    out
}

fn read(file: &Path) -> String {
    match read_profile(file, Select::All) {
        Ok(p) => format!("{}\n{}", p.machine, dump(&p)),
        Err(e) => format!("ERROR: {e}\n"),
    }
}

#[test]
fn the_reader_reads_what_lcfg_core_reads() {
    let cases = cases();
    assert!(cases.len() >= 21, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (name, file, expected) in &cases {
        let want = std::fs::read_to_string(expected).unwrap();
        let got = read(file);
        if got != want {
            failures.push(format!("--- {name}\nexpected (lcfg-core):\n{want}got:\n{got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from lcfg-core:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
