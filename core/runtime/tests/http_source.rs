//! The HTTP profile source against a real nginx (TLS with a test CA, gzip, autoindex,
//! basic auth, a throttled location) and, for bodies nginx will not send (truncated
//! ones), a tiny server of our own.
//!
//! nginx must be installed (`apt-get install nginx`; `.ci/run` does): these tests fail,
//! never skip, without it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use monitor_integration_tests::nginx::{Nginx, NginxOptions, TestPki, make_test_pki};
use monitor_integration_tests::profile_xml;
use monitor_runtime::http_source::{Fetcher, HttpSourceConfig, HttpSourceError, MachineList, SyncReport};

/// `node00.example.org` … for `n` machines.
fn machines(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("node{i:02}.example.org")).collect()
}

fn split(machine: &str) -> (&str, &str) {
    machine.split_once('.').expect("node.domain")
}

/// A profile of `machine`, version `v` (versions differ in length, so nginx's ETag,
/// its mtime and size, changes even within one second).
fn content(machine: &str, v: usize) -> String {
    let (node, _) = split(machine);
    profile_xml(node, "", &format!("   <!-- version {v}{} -->", "+".repeat(v)))
}

/// Publish `machine`'s profile under `root/profiles` in the LCFG layout.
fn publish(root: &Path, machine: &str, body: &[u8]) {
    let (node, domain) = split(machine);
    let dir = root.join("profiles").join(domain).join(node).join("XML");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("profile.xml"), body).unwrap();
}

fn unpublish(root: &Path, machine: &str) {
    let (node, domain) = split(machine);
    std::fs::remove_file(root.join("profiles").join(domain).join(node).join("XML/profile.xml")).unwrap();
}

/// A list file of `machines`, with a comment and a blank line.
fn write_list(path: &Path, machines: &[String]) {
    let mut text = String::from("# the machines\n\n");
    for m in machines {
        text.push_str(&format!("{m}  # one\n"));
    }
    std::fs::write(path, text).unwrap();
}

fn config(base: String, list: MachineList, mirror: &Path) -> HttpSourceConfig {
    let mut cfg = HttpSourceConfig::new(base, list, mirror);
    cfg.connections = 4;
    cfg.timeout = Duration::from_secs(10);
    cfg
}

/// The mirror's copy of `machine`.
fn mirrored(mirror: &Path, machine: &str) -> PathBuf {
    let (node, domain) = split(machine);
    mirror.join(domain).join(node).join("XML/profile.xml")
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

/// Every mirrored file's content and mtime.
fn snapshot(mirror: &Path, machines: &[String]) -> Vec<(String, SystemTime)> {
    machines
        .iter()
        .map(|m| {
            let p = mirrored(mirror, m);
            (std::fs::read_to_string(&p).unwrap(), mtime(&p))
        })
        .collect()
}

fn names(problems: &[monitor_runtime::http_source::MachineProblem]) -> Vec<&str> {
    problems.iter().map(|p| p.machine.as_str()).collect()
}

fn plain_nginx(dir: &Path) -> Nginx {
    Nginx::start(&dir.join("nginx"), NginxOptions::default())
}

fn tls_nginx(dir: &Path, pki: &TestPki) -> Nginx {
    Nginx::start(
        &dir.join("nginx"),
        NginxOptions {
            tls: Some(pki.server.clone()),
            ..NginxOptions::default()
        },
    )
}

/// Tests 1-3: the first sync fetches all (over TLS, gzipped), the second gets 304s and
/// rewrites nothing, a changed profile is the only one fetched, and a restarted fetcher
/// uses the stored metadata.
#[test]
fn fetches_all_then_304s_then_only_what_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = make_test_pki(&tmp.path().join("pki"));
    let nginx = tls_nginx(tmp.path(), &pki);
    let all = machines(20);
    for (i, m) in all.iter().enumerate() {
        publish(&nginx.root, m, content(m, i % 3).as_bytes());
    }
    let list = tmp.path().join("machines");
    write_list(&list, &all);
    let mirror = tmp.path().join("mirror");
    let mut cfg = config(format!("{}/profiles", nginx.url()), MachineList::File(list), &mirror);
    cfg.ca_file = Some(pki.ca.clone());
    let mut f = Fetcher::new(cfg.clone()).unwrap();
    assert_eq!(f.dir(), mirror);

    let r = f.sync(None);
    assert_eq!((r.listed, r.fetched, r.not_modified), (20, 20, 0), "{r:#?}");
    assert!(r.failed.is_empty() && r.missing.is_empty() && r.removed_from_list.is_empty() && r.list_error.is_none());
    for (i, m) in all.iter().enumerate() {
        assert_eq!(
            std::fs::read_to_string(mirrored(&mirror, m)).unwrap(),
            content(m, i % 3)
        );
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(mirror.join(format!(".meta/{m}.json"))).unwrap()).unwrap();
        assert!(meta["etag"].as_str().is_some_and(|e| !e.is_empty()), "{meta}");
        assert!(meta["last_modified"].as_str().is_some(), "{meta}");
        assert!(
            meta["url"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/profiles/example.org/{}/XML/profile.xml", split(m).0))
        );
    }
    let first = nginx.wait_for_requests("/XML/profile.xml", 20);
    assert_eq!(first.len(), 20, "{first:#?}");
    assert!(
        first
            .iter()
            .all(|l| l.starts_with("200 ") && l.contains("enc=\"gzip\"")),
        "{first:#?}"
    );
    let before = snapshot(&mirror, &all);

    std::thread::sleep(Duration::from_millis(50));
    let r = f.sync(None);
    assert_eq!((r.listed, r.fetched, r.not_modified), (20, 0, 20), "{r:#?}");
    assert_eq!(snapshot(&mirror, &all), before, "a 304 rewrote a file");
    let log = nginx.wait_for_requests("/XML/profile.xml", 40);
    assert_eq!(log.len(), 40, "{log:#?}");
    // Keep-alive: 40 requests by 4 workers on a handful of connections.
    let connections: std::collections::BTreeSet<&str> = log.iter().filter_map(|l| l.rsplit("conn=").next()).collect();
    eprintln!("keep-alive: 40 requests on {} connections", connections.len());
    assert!(connections.len() <= 8, "{log:#?}");
    let second = &log[20..];
    assert_eq!(second.len(), 20);
    assert!(
        second
            .iter()
            .all(|l| l.starts_with("304 ") && !l.contains("inm=\"-\"") && !l.contains("ims=\"-\"")),
        "{second:#?}"
    );

    // One profile changes on the server.
    let changed = &all[7];
    publish(&nginx.root, changed, content(changed, 9).as_bytes());
    let r = f.sync(None);
    assert_eq!((r.fetched, r.not_modified), (1, 19), "{r:#?}");
    assert_eq!(
        std::fs::read_to_string(mirrored(&mirror, changed)).unwrap(),
        content(changed, 9)
    );
    let after = snapshot(&mirror, &all);
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        if i != 7 {
            assert_eq!(b, a, "{} was rewritten", all[i]);
        }
    }

    // A restart: the stored metadata makes every request conditional.
    drop(f);
    let mut f = Fetcher::new(cfg.clone()).unwrap();
    let r = f.sync(None);
    assert_eq!((r.fetched, r.not_modified), (0, 20), "{r:#?}");
    assert_eq!(snapshot(&mirror, &all), after);

    // Without the test CA the server is not trusted: a TLS failure for every machine.
    let other = tmp.path().join("mirror-untrusted");
    let mut untrusted = Fetcher::new(HttpSourceConfig {
        ca_file: None,
        mirror_dir: other.clone(),
        ..cfg
    })
    .unwrap();
    let r = untrusted.sync(None);
    assert_eq!((r.fetched, r.failed.len()), (0, 20), "{r:#?}");
    eprintln!("untrusted: {}", r.failed[0].message);
    assert!(!mirrored(&other, &all[0]).exists());
}

/// Test 4: with the server down, nothing is fetched, removed or changed; once it is back
/// the mirror is current again without a refetch.
#[test]
fn a_server_down_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let nginx_dir = tmp.path().join("nginx");
    let nginx = Nginx::start(&nginx_dir, NginxOptions::default());
    let port = nginx.port;
    let all = machines(5);
    for m in &all {
        publish(&nginx.root, m, content(m, 1).as_bytes());
    }
    write_list(&nginx.root.join("profiles/machines.txt"), &all);
    let list = tmp.path().join("machines");
    write_list(&list, &all);
    let base = format!("{}/profiles", nginx.url());
    let (m1, m2) = (tmp.path().join("m1"), tmp.path().join("m2"));
    let mut by_file = Fetcher::new(config(base.clone(), MachineList::File(list), &m1)).unwrap();
    let mut by_url = Fetcher::new(config(
        base.clone(),
        MachineList::Url(format!("{base}/machines.txt")),
        &m2,
    ))
    .unwrap();
    assert_eq!(by_file.sync(None).fetched, 5);
    assert_eq!(by_url.sync(None).fetched, 5);
    let (s1, s2) = (snapshot(&m1, &all), snapshot(&m2, &all));

    nginx.stop();
    let r = by_file.sync(None);
    assert_eq!(
        (r.listed, r.fetched, r.not_modified, r.failed.len()),
        (5, 0, 0, 5),
        "{r:#?}"
    );
    assert!(r.removed_from_list.is_empty() && r.missing.is_empty());
    eprintln!("server down: {}", r.failed[0].message);
    let r = by_url.sync(None);
    assert!(r.list_error.is_some(), "{r:#?}");
    eprintln!("list down: {}", r.list_error.as_deref().unwrap());
    assert_eq!(
        (r.listed, r.fetched, r.failed.len(), r.removed_from_list.len()),
        (0, 0, 0, 0),
        "{r:#?}"
    );
    assert_eq!(snapshot(&m1, &all), s1);
    assert_eq!(snapshot(&m2, &all), s2);

    // Back on the same port: the list fetcher is current at once; the other one backs
    // off the machines that failed, unless asked for them.
    let nginx = Nginx::start_on_port(&nginx_dir, NginxOptions::default(), port);
    let r = by_url.sync(None);
    assert_eq!((r.fetched, r.not_modified), (0, 5), "{r:#?}");
    let r = by_file.sync(None);
    assert_eq!((r.fetched, r.not_modified, r.failed.len()), (0, 0, 5), "{r:#?}");
    assert!(r.failed.iter().all(|p| p.message.contains("backing off")), "{r:#?}");
    let r = by_file.sync(Some(&all));
    assert_eq!((r.fetched, r.not_modified), (0, 5), "{r:#?}");
    assert_eq!(snapshot(&m1, &all), s1);
    drop(nginx);
}

/// What the tiny server answers for a path.
#[derive(Clone)]
enum Reply {
    Ok(Vec<u8>),
    /// A `Content-Length` larger than the body, then the connection closes.
    ShortBody(Vec<u8>),
    /// Chunked, without the last chunk.
    UnterminatedChunks(Vec<u8>),
    /// `Content-Encoding: gzip`, the stream cut in half, then the connection closes.
    CutGzip(Vec<u8>),
}

/// A tiny HTTP/1.1 server: one request a connection, answers from `replies`.
fn tiny_server(replies: Arc<Mutex<HashMap<String, Reply>>>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&req);
            let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
            let reply = replies.lock().unwrap().get(&path).cloned();
            let _ = match reply {
                None => s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
                Some(Reply::Ok(b)) => s
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            b.len()
                        )
                        .as_bytes(),
                    )
                    .and_then(|_| s.write_all(&b)),
                Some(Reply::ShortBody(b)) => s
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            b.len() * 2
                        )
                        .as_bytes(),
                    )
                    .and_then(|_| s.write_all(&b)),
                Some(Reply::UnterminatedChunks(b)) => s
                    .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                    .and_then(|_| s.write_all(format!("{:x}\r\n", b.len()).as_bytes()))
                    .and_then(|_| s.write_all(&b))
                    .and_then(|_| s.write_all(b"\r\n")),
                Some(Reply::CutGzip(b)) => {
                    let gz = gzip(&b);
                    s.write_all(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n")
                        .and_then(|_| s.write_all(&gz[..gz.len() / 2]))
                }
            };
            let _ = s.flush();
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    });
    port
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Test 5a: a body cut short (a `Content-Length` not met, chunks without their end, a
/// gzip stream cut in half) fails that machine alone and keeps its last good file.
#[test]
fn a_truncated_body_fails_only_that_machine() {
    let tmp = tempfile::tempdir().unwrap();
    let good = "good.example.org".to_string();
    let bad = "bad.example.org".to_string();
    let path = |m: &str| format!("/{}/{}/XML/profile.xml", split(m).1, split(m).0);
    let replies = Arc::new(Mutex::new(HashMap::new()));
    for m in [&good, &bad] {
        replies
            .lock()
            .unwrap()
            .insert(path(m), Reply::Ok(content(m, 1).into_bytes()));
    }
    let port = tiny_server(replies.clone());
    let list = tmp.path().join("machines");
    write_list(&list, &[good.clone(), bad.clone()]);
    let mirror = tmp.path().join("mirror");
    let mut f = Fetcher::new(config(
        format!("http://127.0.0.1:{port}"),
        MachineList::File(list),
        &mirror,
    ))
    .unwrap();
    let r = f.sync(None);
    assert_eq!(r.fetched, 2, "{r:#?}");
    let before = snapshot(&mirror, &[good.clone(), bad.clone()]);
    let long = content(&bad, 2).repeat(50).into_bytes();
    for reply in [
        Reply::ShortBody(long.clone()),
        Reply::UnterminatedChunks(long.clone()),
        Reply::CutGzip(long.clone()),
    ] {
        replies.lock().unwrap().insert(path(&bad), reply);
        let r = f.sync(Some(&[good.clone(), bad.clone()]));
        assert_eq!(r.fetched, 1, "{r:#?}");
        assert_eq!(names(&r.failed), [bad.as_str()], "{r:#?}");
        eprintln!("truncated: {}", r.failed[0].message);
        assert_eq!(snapshot(&mirror, &[good.clone(), bad.clone()]), before);
    }
    // The good reply again: fetched, and the backoff is over.
    replies
        .lock()
        .unwrap()
        .insert(path(&bad), Reply::Ok(content(&bad, 3).into_bytes()));
    let r = f.sync(Some(std::slice::from_ref(&bad)));
    assert_eq!(r.fetched, 1, "{r:#?}");
    assert_eq!(
        std::fs::read_to_string(mirrored(&mirror, &bad)).unwrap(),
        content(&bad, 3)
    );
}

/// Test 5b: a profile larger than `max_bytes` once decompressed (nginx gzips it: small on
/// the wire) and a gzip bomb (a gzip file served as profile.xml, which nginx gzips once
/// more) fail those machines alone and keep their last good files.
#[test]
fn too_large_and_gzip_bombs_fail_only_that_machine() {
    let tmp = tempfile::tempdir().unwrap();
    let nginx = plain_nginx(tmp.path());
    let [small, big, bomb] = ["small.example.org", "big.example.org", "bomb.example.org"].map(String::from);
    let all = [small.clone(), big.clone(), bomb.clone()];
    for m in &all {
        publish(&nginx.root, m, content(m, 1).as_bytes());
    }
    let list = tmp.path().join("machines");
    write_list(&list, &all);
    let mirror = tmp.path().join("mirror");
    let mut cfg = config(format!("{}/profiles", nginx.url()), MachineList::File(list), &mirror);
    cfg.max_bytes = 64 << 10;
    let mut f = Fetcher::new(cfg).unwrap();
    assert_eq!(f.sync(None).fetched, 3);
    let before = snapshot(&mirror, &all);

    let (node, _) = split(&big);
    publish(
        &nginx.root,
        &big,
        profile_xml(node, "", &format!("<!-- {} -->", "x".repeat(200 << 10))).as_bytes(),
    );
    publish(&nginx.root, &bomb, &gzip(&vec![b' '; 16 << 20]));
    let r = f.sync(None);
    assert_eq!((r.not_modified, r.fetched), (1, 0), "{r:#?}");
    assert_eq!(names(&r.failed), [big.as_str(), bomb.as_str()], "{r:#?}");
    for p in &r.failed {
        eprintln!("too large: {}: {}", p.machine, p.message);
        assert!(p.message.contains("larger than the limit"), "{p:?}");
    }
    assert_eq!(snapshot(&mirror, &all), before);
    let log = nginx.wait_for_requests("/big/", 2);
    assert!(log.last().unwrap().contains("enc=\"gzip\""), "{log:?}");
}

/// `.xml.gz` URLs and bodies that start with gzip's magic bytes are stored decompressed,
/// as `profile.xml`.
#[test]
fn gzipped_profiles_are_stored_decompressed() {
    let tmp = tempfile::tempdir().unwrap();
    let nginx = plain_nginx(tmp.path());
    let all = machines(3);
    for m in &all {
        let (node, domain) = split(m);
        let dir = nginx.root.join("profiles").join(domain).join(node).join("XML");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("profile.xml.gz"), gzip(content(m, 4).as_bytes())).unwrap();
        // The same, gzipped, under the plain name: found by its magic bytes.
        std::fs::write(dir.join("profile.xml"), gzip(content(m, 5).as_bytes())).unwrap();
    }
    let list = tmp.path().join("machines");
    write_list(&list, &all);
    let base = format!("{}/profiles", nginx.url());
    let gz_mirror = tmp.path().join("gz");
    let mut cfg = config(base.clone(), MachineList::File(list.clone()), &gz_mirror);
    cfg.url_template = "{base}/{domain}/{node}/XML/profile.xml.gz".into();
    let r = Fetcher::new(cfg).unwrap().sync(None);
    assert_eq!(r.fetched, 3, "{r:#?}");
    let magic_mirror = tmp.path().join("magic");
    let r = Fetcher::new(config(base, MachineList::File(list), &magic_mirror))
        .unwrap()
        .sync(None);
    assert_eq!(r.fetched, 3, "{r:#?}");
    for m in &all {
        assert_eq!(std::fs::read_to_string(mirrored(&gz_mirror, m)).unwrap(), content(m, 4));
        assert_eq!(
            std::fs::read_to_string(mirrored(&magic_mirror, m)).unwrap(),
            content(m, 5)
        );
    }
}

/// Test 6: a machine that leaves the list is reported, not removed, until the caller
/// removes it.
#[test]
fn a_machine_leaving_the_list_is_reported_not_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let nginx = plain_nginx(tmp.path());
    let all = machines(3);
    for m in &all {
        publish(&nginx.root, m, content(m, 1).as_bytes());
    }
    let list = nginx.root.join("profiles/machines.txt");
    write_list(&list, &all);
    let base = format!("{}/profiles", nginx.url());
    let mirror = tmp.path().join("mirror");
    let mut f = Fetcher::new(config(
        base.clone(),
        MachineList::Url(format!("{base}/machines.txt")),
        &mirror,
    ))
    .unwrap();
    assert_eq!(f.sync(None).fetched, 3);
    let gone = all[2].clone();
    write_list(&list, &all[..2]);
    for _ in 0..2 {
        let r = f.sync(None);
        assert_eq!((r.listed, r.not_modified), (2, 2), "{r:#?}");
        assert_eq!(r.removed_from_list, std::slice::from_ref(&gone), "{r:#?}");
        assert_eq!(
            std::fs::read_to_string(mirrored(&mirror, &gone)).unwrap(),
            content(&gone, 1)
        );
    }
    // Asking for it by name: it is not on the list any more.
    let r = f.sync(Some(std::slice::from_ref(&gone)));
    assert_eq!(r.fetched + r.not_modified, 0, "{r:#?}");
    assert_eq!(names(&r.failed), [gone.as_str()], "{r:#?}");
    assert!(r.failed[0].message.contains("not in the machine list"));

    f.remove_machine(&gone).unwrap();
    assert!(!mirrored(&mirror, &gone).exists());
    assert!(!mirror.join("example.org").join(split(&gone).0).exists());
    assert!(!mirror.join(format!(".meta/{gone}.json")).exists());
    assert!(mirrored(&mirror, &all[0]).exists());
    let r = f.sync(None);
    assert!(r.removed_from_list.is_empty(), "{r:#?}");
    // Removing what is not there is fine; a bad name is an error.
    f.remove_machine(&gone).unwrap();
    assert!(f.remove_machine("../x.example.org").is_err());
}

/// Test 7: a 404 for a listed machine is `missing`, and keeps the last good file.
#[test]
fn a_404_is_missing_and_keeps_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let nginx = plain_nginx(tmp.path());
    let all = machines(3);
    let ghost = "ghost.example.org".to_string();
    for m in &all {
        publish(&nginx.root, m, content(m, 1).as_bytes());
    }
    let list = tmp.path().join("machines");
    let mut listed = all.clone();
    listed.push(ghost.clone());
    write_list(&list, &listed);
    let mirror = tmp.path().join("mirror");
    let mut f = Fetcher::new(config(
        format!("{}/profiles", nginx.url()),
        MachineList::File(list),
        &mirror,
    ))
    .unwrap();
    let r = f.sync(None);
    assert_eq!((r.listed, r.fetched), (4, 3), "{r:#?}");
    assert_eq!(names(&r.missing), [ghost.as_str()], "{r:#?}");
    assert!(r.missing[0].message.contains("404"), "{r:#?}");
    assert!(r.failed.is_empty());

    unpublish(&nginx.root, &all[1]);
    let r = f.sync(None);
    assert_eq!(names(&r.missing), [ghost.as_str(), all[1].as_str()], "{r:#?}");
    assert_eq!(r.not_modified, 2);
    assert_eq!(
        std::fs::read_to_string(mirrored(&mirror, &all[1])).unwrap(),
        content(&all[1], 1)
    );
    // No backoff for a 404: asked again at the next sync.
    let n = nginx.wait_for_requests("/ghost/", 2).len();
    assert_eq!(n, 2);
    f.sync(None);
    assert_eq!(nginx.wait_for_requests("/ghost/", 3).len(), 3);
}

const PASSWORD: &str = "Sup3r-S3cret_pw!";

fn write_auth(path: &Path, line: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("{line}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every text of a report, and what `tracing` logged.
fn assert_no_secret(report: &SyncReport, logs: &str, secrets: &[&str]) {
    let texts = [
        format!("{report:?}"),
        serde_json::to_string(report).unwrap(),
        logs.to_string(),
    ];
    for t in texts {
        for s in secrets {
            assert!(!t.contains(s), "{s:?} in {t}");
        }
    }
}

/// A `tracing` subscriber that writes into a buffer.
#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn sync_logged(f: &mut Fetcher, buf: &Buf) -> SyncReport {
    let b = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || b.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || f.sync(None))
}

/// Test 8: basic auth: the right password works, a wrong one fails; the password is in
/// no error, problem, log line or `Debug` output, nor is a password in a URL.
#[test]
fn basic_auth_and_no_password_anywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = make_test_pki(&tmp.path().join("pki"));
    let nginx = Nginx::start(
        &tmp.path().join("nginx"),
        NginxOptions {
            tls: Some(pki.server.clone()),
            basic_auth: Some(("lcfg".into(), PASSWORD.into())),
            ..NginxOptions::default()
        },
    );
    let all = machines(3);
    for m in &all {
        publish(&nginx.root, m, content(m, 1).as_bytes());
    }
    write_list(&nginx.root.join("profiles/machines.txt"), &all);
    let list_file = tmp.path().join("machines");
    write_list(&list_file, &all);
    let base = format!("{}/profiles", nginx.url());
    let auth = tmp.path().join("auth");
    write_auth(&auth, &format!("lcfg:{PASSWORD}"), 0o600);
    let wrong_pw = format!("{PASSWORD}-wrong");
    let wrong = tmp.path().join("wrong");
    write_auth(&wrong, &format!("lcfg:{wrong_pw}"), 0o600);
    let token = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("lcfg:{wrong_pw}"))
    };
    let secrets = [PASSWORD, wrong_pw.as_str(), token.as_str()];
    let cfg = |list: MachineList, mirror: &str, auth_file: &Path| HttpSourceConfig {
        ca_file: Some(pki.ca.clone()),
        basic_auth_file: Some(auth_file.to_path_buf()),
        ..config(base.clone(), list, &tmp.path().join(mirror))
    };
    let url_list = MachineList::Url(format!("{base}/machines.txt"));
    let buf = Buf::default();

    let mut f = Fetcher::new(cfg(url_list.clone(), "mirror-ok", &auth)).unwrap();
    let r = sync_logged(&mut f, &buf);
    assert_eq!(r.fetched, 3, "{r:#?}");
    assert!(!format!("{f:?}").contains(PASSWORD));

    // A wrong password: 401 for the list …
    let mut f = Fetcher::new(cfg(url_list, "mirror-wrong-list", &wrong)).unwrap();
    let r = sync_logged(&mut f, &buf);
    let e = r.list_error.clone().expect("the list needs the password");
    assert!(e.contains("401"), "{e}");
    assert_no_secret(&r, "", &secrets);
    // … and for every machine.
    let mut f = Fetcher::new(cfg(MachineList::File(list_file.clone()), "mirror-wrong", &wrong)).unwrap();
    let r = sync_logged(&mut f, &buf);
    assert_eq!(r.failed.len(), 3, "{r:#?}");
    assert!(r.failed.iter().all(|p| p.message.contains("401")), "{r:#?}");
    assert_no_secret(&r, "", &secrets);
    for s in secrets {
        assert!(!format!("{f:?}").contains(s));
    }

    // An unreachable server, with a password in the URL too.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let unreachable_cfg = HttpSourceConfig {
        base: format!("https://lcfg:{PASSWORD}@localhost:{port}/profiles"),
        ..cfg(MachineList::File(list_file.clone()), "mirror-unreachable", &wrong)
    };
    let dbg = format!("{unreachable_cfg:?}");
    assert!(!dbg.contains(PASSWORD) && dbg.contains("[redacted]@localhost"), "{dbg}");
    let list_cfg = MachineList::Url(format!("https://lcfg:{PASSWORD}@localhost:{port}/list"));
    assert!(!format!("{list_cfg:?}").contains(PASSWORD));
    let mut unreachable = Fetcher::new(unreachable_cfg).unwrap();
    let r = sync_logged(&mut unreachable, &buf);
    assert_eq!(r.failed.len(), 3, "{r:#?}");
    assert!(
        r.failed
            .iter()
            .all(|p| p.url.starts_with("https://[redacted]@localhost")),
        "{r:#?}"
    );
    eprintln!("unreachable: {:?}", r.failed[0]);
    assert_no_secret(&r, "", &secrets);
    assert!(!format!("{unreachable:?}").contains(PASSWORD));
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("http profile sync"), "{logs}");
    assert_no_secret(&SyncReport::default(), &logs, &secrets);

    // An auth file others may read is refused, without showing what it holds.
    write_auth(&auth, &format!("lcfg:{PASSWORD}"), 0o640);
    let e = Fetcher::new(cfg(MachineList::File(list_file.clone()), "mirror-loose", &auth)).unwrap_err();
    assert!(matches!(e, HttpSourceError::AuthFileMode { mode: 0o640, .. }), "{e}");
    assert!(!e.to_string().contains(PASSWORD) && !format!("{e:?}").contains(PASSWORD));
    write_auth(&auth, "no colon here", 0o600);
    let e = Fetcher::new(cfg(MachineList::File(list_file), "mirror-bad", &auth)).unwrap_err();
    assert!(matches!(e, HttpSourceError::AuthFileFormat { .. }), "{e}");
}

/// Mutual TLS: with the client certificate the server answers, without it not.
#[test]
fn client_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = make_test_pki(&tmp.path().join("pki"));
    let nginx = Nginx::start(
        &tmp.path().join("nginx"),
        NginxOptions {
            tls: Some(pki.server.clone()),
            client_ca: Some(pki.ca.clone()),
            ..NginxOptions::default()
        },
    );
    let all = machines(2);
    for m in &all {
        publish(&nginx.root, m, content(m, 1).as_bytes());
    }
    let list = tmp.path().join("machines");
    write_list(&list, &all);
    let base = format!("{}/profiles", nginx.url());
    let mut cfg = config(base, MachineList::File(list), &tmp.path().join("with"));
    cfg.ca_file = Some(pki.ca.clone());
    let without = HttpSourceConfig {
        mirror_dir: tmp.path().join("without"),
        ..cfg.clone()
    };
    cfg.client_cert = Some((pki.client.cert.clone(), pki.client.key.clone()));
    let r = Fetcher::new(cfg).unwrap().sync(None);
    assert_eq!(r.fetched, 2, "{r:#?}");
    let r = Fetcher::new(without).unwrap().sync(None);
    assert_eq!((r.fetched, r.failed.len()), (0, 2), "{r:#?}");
    eprintln!("no client certificate: {}", r.failed[0].message);
}

/// Test 9: the machine list from nginx's autoindex pages of `{base}/` and
/// `{base}/{domain}/`.
#[test]
fn autoindex_lists_the_machines() {
    let tmp = tempfile::tempdir().unwrap();
    let nginx = plain_nginx(tmp.path());
    let good = [
        "a.example.org",
        "b.example.org",
        "c-3.example.org",
        "x_1.inf.example.net",
        "y.inf.example.net",
    ]
    .map(String::from);
    for m in &good {
        publish(&nginx.root, m, content(m, 1).as_bytes());
    }
    std::fs::write(nginx.root.join("profiles/README.txt"), "not a domain").unwrap();
    // Directories whose names are no path components of ours.
    std::fs::create_dir_all(nginx.root.join("profiles/bad domain/n1/XML")).unwrap();
    std::fs::create_dir_all(nginx.root.join("profiles/example.org/we ird/XML")).unwrap();
    let mirror = tmp.path().join("mirror");
    let mut f = Fetcher::new(config(
        format!("{}/profiles", nginx.url()),
        MachineList::Autoindex,
        &mirror,
    ))
    .unwrap();
    let r = f.sync(None);
    assert_eq!((r.listed, r.fetched), (6, 5), "{r:#?}");
    assert_eq!(names(&r.failed), ["we ird.example.org"], "{r:#?}");
    assert!(r.failed[0].message.contains("not a usable machine name"), "{r:#?}");
    for m in &good {
        assert_eq!(std::fs::read_to_string(mirrored(&mirror, m)).unwrap(), content(m, 1));
    }
    assert!(!mirror.join("bad domain").exists());
    // A domain's index that cannot be had is the list's error: nothing is fetched, and
    // that domain's machines are not taken as removed.
    let blocked = tmp.path().join("nginx2");
    let nginx2 = Nginx::start(
        &blocked,
        NginxOptions {
            extra: "        location = /profiles/inf.example.net/ { return 503; }\n".into(),
            ..NginxOptions::default()
        },
    );
    for m in &good {
        publish(&nginx2.root, m, content(m, 1).as_bytes());
    }
    let mut f = Fetcher::new(config(
        format!("{}/profiles", nginx2.url()),
        MachineList::Autoindex,
        &mirror,
    ))
    .unwrap();
    let r = f.sync(None);
    assert!(r.list_error.as_deref().is_some_and(|e| e.contains("503")), "{r:#?}");
    assert!(r.removed_from_list.is_empty() && r.fetched == 0, "{r:#?}");
}

/// Test 10: a response trickled at 10 bytes a second fails that machine within the
/// timeout; the sync does not stall; at most `connections` fetches are in flight.
#[test]
fn a_slow_endless_response_fails_within_the_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(
        &tmp.path().join("nginx"),
        NginxOptions {
            slow: true,
            ..NginxOptions::default()
        },
    );
    let slow: Vec<String> = (1..=4).map(|i| format!("slow{i}.example.org")).collect();
    for m in &slow {
        let dir = nginx.root.join("slow/example.org").join(split(m).0).join("XML");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("profile.xml"), content(m, 1).repeat(100)).unwrap();
    }
    let list = tmp.path().join("machines");
    write_list(&list, &slow);
    let mut cfg = config(
        format!("{}/slow", nginx.url()),
        MachineList::File(list),
        &tmp.path().join("mirror"),
    );
    cfg.timeout = Duration::from_secs(1);
    cfg.connections = 2;
    let r = Fetcher::new(cfg).unwrap().sync(None);
    assert_eq!(r.fetched, 0, "{r:#?}");
    assert_eq!(
        names(&r.failed),
        slow.iter().map(String::as_str).collect::<Vec<_>>(),
        "{r:#?}"
    );
    eprintln!("slow: {} ({:.0} ms)", r.failed[0].message, r.millis);
    assert!(r.failed.iter().all(|p| p.message.contains("timed out")), "{r:#?}");
    // Two at a time: four 1 s timeouts take two rounds (a lower bound only).
    assert!(r.millis >= 1900.0, "{r:#?}");
}

/// Backoff: a failing machine is skipped by the next 2^failures - 1 syncs, and tried at
/// once when asked for by name.
#[test]
fn a_failing_machine_is_backed_off() {
    let tmp = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(
        &tmp.path().join("nginx"),
        NginxOptions {
            extra: "        location /profiles/example.org/broken/ { return 500; }\n".into(),
            ..NginxOptions::default()
        },
    );
    let ok = "fine.example.org".to_string();
    let broken = "broken.example.org".to_string();
    publish(&nginx.root, &ok, content(&ok, 1).as_bytes());
    publish(&nginx.root, &broken, content(&broken, 1).as_bytes());
    let list = tmp.path().join("machines");
    write_list(&list, &[ok.clone(), broken.clone()]);
    let mut f = Fetcher::new(config(
        format!("{}/profiles", nginx.url()),
        MachineList::File(list),
        &tmp.path().join("mirror"),
    ))
    .unwrap();
    // Tried at syncs 1, 3 and 7.
    let expected = [1, 1, 2, 2, 2, 2, 3, 3];
    let mut tried = Vec::new();
    for want in expected {
        let r = f.sync(None);
        assert_eq!(names(&r.failed), [broken.as_str()], "{r:#?}");
        assert_eq!(r.fetched + r.not_modified, 1);
        tried.push(nginx.wait_for_requests("/broken/", want).len());
        eprintln!("backoff: {}", r.failed[0].message);
    }
    assert_eq!(tried, expected);
    let r = f.sync(Some(std::slice::from_ref(&broken)));
    assert!(r.failed[0].message.contains("500"), "{r:#?}");
    let log = nginx.wait_for_requests("/broken/", 4);
    assert_eq!(log.len(), 4, "{log:#?}");
    assert!(log.iter().all(|l| l.starts_with("500 ")), "{log:#?}");
}

/// Names that are no safe path components are problems, never paths.
#[test]
fn unsafe_names_never_leave_the_mirror() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = [
        "../escape.example.org",
        "x/../../escape.example.org",
        "nodot",
        ".hidden.example.org",
        "a..b",
        "n.example.org/../../../tmp",
        "n.-/..",
    ];
    let list = tmp.path().join("machines");
    let mut all: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
    all.push("fine.example.org".into());
    write_list(&list, &all);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mirror = tmp.path().join("sub/mirror");
    let mut f = Fetcher::new(config(
        format!("http://127.0.0.1:{port}"),
        MachineList::File(list),
        &mirror,
    ))
    .unwrap();
    let r = f.sync(None);
    assert_eq!(r.listed, all.len());
    assert_eq!(r.failed.len(), all.len(), "{r:#?}");
    for p in &r.failed {
        if p.machine == "fine.example.org" {
            assert!(!p.message.contains("usable"), "{p:?}");
        } else {
            assert!(
                p.message.contains("not a usable machine name") && p.url.is_empty(),
                "{p:?}"
            );
        }
    }
    let mut entries: Vec<String> = std::fs::read_dir(&mirror)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, [".meta", ".tmp"]);
    let mut top: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["machines", "sub"]);
}
