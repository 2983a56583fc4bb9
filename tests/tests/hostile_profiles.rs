//! Hostile and broken profiles, and bad paths under a profile directory: each fails only
//! its own file, with a clear error, and every other machine of the pass compiles.

use std::io::Write;
use std::path::Path;

use lcfg_profile::{MAX_PROFILE_BYTES, Select, parse_profile};
use monitor_engine::{Engine, list_profiles};
use monitor_integration_tests::*;

/// A profile for `node` whose monitored kerberos component holds `inner` (raw XML) inside
/// its realm element, with `doctype` before the root.
fn hostile(node: &str, doctype: &str, inner: &str) -> String {
    let doc = profile_xml(node, "kerberos", &kerberos_xml("master", &format!("R{inner}"), "kdc"));
    match doc.find("<profile") {
        Some(i) if !doctype.is_empty() => format!("{}{doctype}\n{}", &doc[..i], &doc[i..]),
        _ => doc,
    }
}

fn nested(depth: usize) -> String {
    let mut s = String::with_capacity(depth * 7);
    for _ in 0..depth {
        s.push_str("<a>");
    }
    for _ in 0..depth {
        s.push_str("</a>");
    }
    s
}

/// Run one pass over the samples plus `files` (name, bytes); every sample machine must
/// compile, and each of `files` must be an error naming it that contains `expect`.
fn only_its_own_file(files: &[(&str, Vec<u8>, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    copy_samples(dir.path());
    for (name, bytes, _) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let mut e: Engine = engine();
    let listing = list_profiles(dir.path(), false).unwrap();
    let r = e.run_listing(&listing).unwrap();
    let text: String = r.output.files.values().map(|t| &**t).collect();
    for m in ["kdc1", "jabber1", "web1"] {
        assert!(
            text.contains(&format!("# machine {m}.example.org\n")),
            "{m} compiles: {:#?}",
            r.report.errors
        );
    }
    for (name, _, expect) in files {
        let mine: Vec<String> = r
            .report
            .errors
            .iter()
            .filter(|p| p.file.as_deref().is_some_and(|f| f.ends_with(name)))
            .map(|p| p.to_string())
            .collect();
        assert_eq!(mine.len(), 1, "{name}: {:#?}", r.report.errors);
        assert!(mine[0].contains(expect), "{name}: {}", mine[0]);
    }
}

#[test]
fn deep_nesting_fails_only_its_file() {
    only_its_own_file(&[
        (
            "deep300.xml",
            hostile("deep300", "", &nested(300)).into_bytes(),
            "nest more than 256 levels deep",
        ),
        (
            "deep10k.xml",
            hostile("deep10k", "", &nested(10_000)).into_bytes(),
            "nest more than 256 levels deep",
        ),
        (
            "deep1m.xml",
            hostile("deep1m", "", &nested(1_000_000)).into_bytes(),
            "nest more than 256 levels deep",
        ),
    ]);
    // 250 levels are read.
    let ok = hostile("deep250", "", &nested(250));
    parse_profile(Path::new("deep250.xml"), ok.as_bytes(), Select::Monitoring).unwrap();
}

#[test]
fn entity_amplification_billion_laughs_and_external_entities_fail_only_their_file() {
    let big = "x".repeat(100_000);
    let amplify = hostile(
        "amp",
        &format!("<!DOCTYPE profile [<!ENTITY big \"{big}\">]>"),
        &"&big;".repeat(10_000),
    );
    let mut laughs = String::from("<!DOCTYPE profile [<!ENTITY lol \"lol\">");
    laughs.push_str("<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">");
    for i in 2..10 {
        laughs.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">",
            format!("&lol{};", i - 1).repeat(10)
        ));
    }
    laughs.push_str("]>");
    let laughs = hostile("laughs", &laughs, "&lol9;");
    let external = hostile(
        "external",
        "<!DOCTYPE profile [<!ENTITY secret SYSTEM \"file:///etc/passwd\">]>",
        "&secret;",
    );
    only_its_own_file(&[
        ("amp.xml", amplify.into_bytes(), "entity amplification"),
        ("laughs.xml", laughs.into_bytes(), "laughs.xml"),
        ("external.xml", external.into_bytes(), "unknown entity '&secret;'"),
    ]);
}

#[test]
fn a_huge_value_and_a_compression_bomb_fail_only_their_file() {
    let value = hostile("bigvalue", "", &"v".repeat(50 << 20));
    // 100 MB of zeros inside a profile, compressed to about 100 KB.
    let mut bomb = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let head = hostile("bomb", "", "");
    let cut = head.find("</realm>").unwrap();
    bomb.write_all(&head.as_bytes()[..cut]).unwrap();
    let zeros = vec![b'0'; 1 << 20];
    for _ in 0..100 {
        bomb.write_all(&zeros).unwrap();
    }
    bomb.write_all(&head.as_bytes()[cut..]).unwrap();
    let bomb = bomb.finish().unwrap();
    assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
    only_its_own_file(&[
        ("bigvalue.xml", value.into_bytes(), "longer than 10000000 bytes"),
        (
            "bomb.xml.gz",
            bomb,
            &format!("larger than the {} MiB limit", MAX_PROFILE_BYTES >> 20),
        ),
    ]);
}

#[test]
fn bad_paths_fail_only_their_own_path_and_keep_what_they_held() {
    let dir = tempfile::tempdir().unwrap();
    copy_samples(dir.path());
    let d = dir.path();
    // A machine read once, whose file then becomes a dangling symlink.
    let kept = profile_xml("kept", "kerberos", &kerberos_xml("slave", "EXAMPLE.ORG", "kdc"));
    std::fs::write(d.join("kept.xml"), &kept).unwrap();
    // And one that then becomes a symlink out of the tree, to a file it must not read.
    let out = profile_xml("out", "kerberos", &kerberos_xml("slave", "EXAMPLE.ORG", "kdc"));
    std::fs::write(d.join("out.xml"), &out).unwrap();
    let mut e = engine();
    let first = e.run_listing(&list_profiles(d, false).unwrap()).unwrap();
    assert!(first.report.errors.is_empty(), "{:#?}", first.report.errors);
    std::fs::remove_file(d.join("kept.xml")).unwrap();
    std::os::unix::fs::symlink(d.join("gone.xml"), d.join("kept.xml")).unwrap();
    std::fs::remove_file(d.join("out.xml")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.join("out.xml")).unwrap();
    // Bad paths of every kind.
    std::os::unix::fs::symlink(d.join("loop-b"), d.join("loop-a")).unwrap();
    std::os::unix::fs::symlink(d.join("loop-a"), d.join("loop-b")).unwrap();
    std::fs::create_dir(d.join("dir.xml")).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(d.join("fifo.xml"))
            .status()
            .unwrap()
            .success()
    );
    std::os::unix::fs::symlink("/etc/shadow", d.join("shadow.xml")).unwrap();
    let listing = list_profiles(d, false).unwrap();
    let r = e.run_listing(&listing).unwrap();
    let errs: Vec<String> = r.report.errors.iter().map(|p| p.to_string()).collect();
    let has = |path: &str, what: &str| {
        assert!(
            errs.iter().any(|e| e.contains(path) && e.contains(what)),
            "{path}: {what}: {errs:#?}"
        )
    };
    has("kept.xml", "a dangling symlink");
    has("loop-a", "");
    has("dir.xml", "a directory named like a profile");
    has("fifo.xml", "not a regular file");
    has("shadow.xml", "a symlink out of the profile tree");
    assert!(
        !errs.iter().any(|e| e.contains("bytes") && e.contains("shadow")),
        "{errs:#?}"
    );
    // kept keeps its last good configuration; the samples compile.
    let text: String = r.output.files.values().map(|t| &**t).collect();
    assert!(text.contains("# machine kept.example.org\n"), "{errs:#?}");
    assert!(text.contains("# machine out.example.org\n"), "{errs:#?}");
    has("out.xml", "a symlink out of the profile tree (to /etc/passwd)");
    has("out.xml", "not read");
    assert!(
        !errs.iter().any(|e| e.contains("root:")),
        "/etc/passwd was read: {errs:#?}"
    );
    assert!(r.report.machines >= 4, "{:#?}", r.report.errors);
}

#[test]
fn an_empty_file_system_mounted_over_profiles_keeps_their_machines() {
    let dir = tempfile::tempdir().unwrap();
    copy_samples(dir.path());
    let sub = dir.path().join("site2");
    std::fs::create_dir(&sub).unwrap();
    for n in ["m1", "m2"] {
        std::fs::write(
            sub.join(format!("{n}.xml")),
            profile_xml(n, "kerberos", &kerberos_xml("slave", "EXAMPLE.ORG", "kdc")),
        )
        .unwrap();
    }
    let mut e = engine();
    let first = e.run_listing(&list_profiles(dir.path(), false).unwrap()).unwrap();
    assert_eq!(first.report.machines, 5, "{:#?}", first.report.errors);
    // An empty tmpfs over site2, as after a mount gone wrong (CI runs as root).
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&sub)
        .status()
        .unwrap();
    assert!(st.success(), "mount a tmpfs");
    let listing = list_profiles(dir.path(), false);
    let r = listing.map(|l| e.run_listing(&l));
    let _ = std::process::Command::new("umount").arg("-l").arg(&sub).status();
    let r = r.unwrap().unwrap();
    assert_eq!(r.report.machines, 5, "m1 and m2 keep their last good configuration");
    assert!(
        r.report
            .errors
            .iter()
            .any(|p| p.message.contains("site2") && p.message.contains("an empty mount point")),
        "{:#?}",
        r.report.errors
    );
}
