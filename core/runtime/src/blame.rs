//! When `nagios -v` rejects a set: which machines its errors name, and the same set with
//! those machines held at their text in the live set, so that one bad machine does not
//! freeze the fleet.
//!
//! An error names a machine when it points into a machine shard (`config file '…/20-machines/NN.cfg',
//! starting on line N`: the machine is the `# machine NAME` block holding that line), or,
//! failing a file, names a host that is a machine of the set (`host 'NAME'`). An error
//! that names neither cannot be mapped, and then nothing is held: the whole set is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use monitor_engine::{MACHINES_DIR, Output, machine_file};

/// The marker that opens each machine's block in its shard file.
const MARKER: &str = "# machine ";

/// The machines `errors` name, each with its errors; or the first error that names none.
pub fn blame(errors: &[String], output: &Output) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in errors {
        let machine = by_file(e, output)
            .or_else(|| by_host(e, output))
            .ok_or_else(|| e.clone())?;
        out.entry(machine).or_default().push(e.clone());
    }
    Ok(out)
}

/// `file '<path>'` and the first `line <N>` after it.
fn file_and_line(error: &str) -> Option<(&str, usize)> {
    let start = error.find("file '")? + "file '".len();
    let len = error[start..].find('\'')?;
    let path = &error[start..start + len];
    let rest = &error[start + len..];
    let at = rest.find("line ")? + "line ".len();
    let digits: String = rest[at..].chars().take_while(char::is_ascii_digit).collect();
    Some((path, digits.parse().ok()?))
}

fn by_file(error: &str, output: &Output) -> Option<String> {
    let (path, line) = file_and_line(error)?;
    let rel = &path[path.rfind(&format!("{MACHINES_DIR}/"))?..];
    let text = output.files.get(Path::new(rel))?;
    text.lines()
        .take(line)
        .filter_map(|l| l.strip_prefix(MARKER))
        .last()
        .map(str::to_string)
}

fn by_host(error: &str, output: &Output) -> Option<String> {
    let start = error
        .find("host '")
        .map(|i| i + "host '".len())
        .or_else(|| error.find("host name '").map(|i| i + "host name '".len()))?;
    let len = error[start..].find('\'')?;
    let name = &error[start..start + len];
    let shard = output.files.get(&machine_file(name))?;
    shard.contains(&format!("{MARKER}{name}\n")).then(|| name.to_string())
}

/// A shard's text split into its header and its machines' blocks, by name.
fn blocks(text: &str) -> (&str, BTreeMap<&str, &str>) {
    let mut starts: Vec<usize> = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with(MARKER) {
            starts.push(at);
        }
        at += line.len();
    }
    let header = &text[..starts.first().copied().unwrap_or(text.len())];
    let mut out = BTreeMap::new();
    for (i, &s) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(text.len());
        let block = &text[s..end];
        let name = block[MARKER.len()..].lines().next().unwrap_or_default();
        out.insert(name, block);
    }
    (header, out)
}

/// The block of `machine` in `output`, if it is written.
pub fn machine_block<'a>(output: &'a Output, machine: &str) -> Option<&'a str> {
    let text = output.files.get(&machine_file(machine))?;
    blocks(text).1.get(machine).copied()
}

/// `output` with each of `machines` as it is in the live set at `live` (left out when
/// the live set does not have it). Blocks stay sorted by name, as the engine writes them.
pub fn hold(output: &Output, live: &Path, machines: &BTreeSet<String>) -> Output {
    let mut by_shard: BTreeMap<PathBuf, Vec<&str>> = BTreeMap::new();
    for m in machines {
        by_shard.entry(machine_file(m)).or_default().push(m);
    }
    let mut out = output.clone();
    for (rel, held) in by_shard {
        let new_text = output.files.get(&rel).map(|t| t.to_string()).unwrap_or_default();
        let live_text = std::fs::read_to_string(live.join(&rel)).unwrap_or_default();
        let (header, mut new_blocks) = blocks(&new_text);
        let (_, live_blocks) = blocks(&live_text);
        for m in held {
            new_blocks.remove(m);
            if let Some(b) = live_blocks.get(m) {
                new_blocks.insert(m, b);
            }
        }
        if new_blocks.is_empty() {
            out.files.remove(&rel);
            continue;
        }
        let header = if header.is_empty() {
            monitor_engine::HEADER
        } else {
            header
        };
        let mut text = String::from(header);
        for b in new_blocks.values() {
            text.push_str(b);
            if !b.ends_with('\n') {
                text.push('\n');
            }
        }
        out.files.insert(rel, text.into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(files: &[(&str, &str)]) -> Output {
        Output {
            files: files.iter().map(|(p, t)| (PathBuf::from(p), (*t).into())).collect(),
        }
    }

    #[test]
    fn errors_are_mapped_to_the_machine_block_they_point_into() {
        let a = machine_file("a.example.org");
        let shard = "# header\n\n# machine a.example.org\n\ndefine host {\n}\n";
        let o = output(&[(a.to_str().unwrap(), shard), ("31-clusters.cfg", "x\n")]);
        let e = format!(
            "Error: Could not find a service (config file '/s/sets/.staging-x/{}', starting on line 5)",
            a.display()
        );
        let got = blame(std::slice::from_ref(&e), &o).unwrap();
        assert_eq!(got.keys().collect::<Vec<_>>(), ["a.example.org"]);
        let by_name = "Error: Service 'x' on host 'a.example.org' has a problem".to_string();
        assert_eq!(blame(std::slice::from_ref(&by_name), &o).unwrap().len(), 1);
        let elsewhere = "Error: bad (config file '/s/31-clusters.cfg', starting on line 1)".to_string();
        assert_eq!(blame(&[e, elsewhere.clone()], &o).unwrap_err(), elsewhere);
        assert!(blame(&["Error: There are no services defined!".to_string()], &o).is_err());
    }

    #[test]
    fn held_machines_take_their_live_text_and_keep_the_order() {
        let live = tempfile::tempdir().unwrap();
        let names = ["a1", "b1", "c1"].map(|n| format!("{n}.example.org"));
        // Three machines in one shard would be luck: give each its own shard map.
        let mut new_files = Vec::new();
        for n in &names {
            let rel = machine_file(n);
            std::fs::create_dir_all(live.path().join(rel.parent().unwrap())).unwrap();
            std::fs::write(live.path().join(&rel), format!("H\n\n# machine {n}\n\nold {n}\n")).unwrap();
            new_files.push((rel, format!("H\n\n# machine {n}\n\nnew {n}\n")));
        }
        let o = Output {
            files: new_files.into_iter().map(|(p, t)| (p, t.into())).collect(),
        };
        let held = hold(&o, live.path(), &BTreeSet::from([names[1].clone()]));
        assert!(held.files[&machine_file(&names[0])].contains("new a1"));
        assert!(held.files[&machine_file(&names[1])].contains("old b1"));
        assert!(!held.files[&machine_file(&names[1])].contains("new b1"));
        // A machine the live set does not have is left out.
        let gone = hold(
            &o,
            tempfile::tempdir().unwrap().path(),
            &BTreeSet::from([names[2].clone()]),
        );
        assert!(!gone.files.values().any(|t| t.contains("c1.example.org")));
        let (_, b) = blocks("H\n\n# machine b\n\nx\n# machine a\n\ny\n");
        assert_eq!(b.keys().copied().collect::<Vec<_>>(), ["a", "b"]);
    }
}
