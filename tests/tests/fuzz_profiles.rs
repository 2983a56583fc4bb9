//! A deterministic mutation fuzzer for the profile reader, on stable Rust and `cargo test`.
//!
//! The corpus is the sample profiles, the lcfg-core cases and a few hostile shapes. Each
//! input is a seed mutated with a seeded RNG: byte flips, inserted XML tokens, deleted,
//! duplicated or repeated ranges (deep nesting, entity use), truncation, gzip. For every
//! input the reader must:
//! - not panic (a panic is caught and reported with the input that caused it);
//! - answer `Ok` or a `ProfileError` whose text names the file;
//! - stay within a peak memory of `MEMORY_FACTOR` times the input plus `MEMORY_SLACK`
//!   (peak RSS, reset before each input through `/proc/self/clear_refs`).
//!
//! CI runs a fixed seed for a few seconds' worth of inputs. A long run:
//! `FUZZ_SECONDS=1800 FUZZ_THREADS=2 FUZZ_SEED=7 cargo test --release -p monitor-integration-tests --test fuzz_profiles -- --nocapture`
//! prints the inputs tried, the failures (0), and the worst time and memory
//! (`FUZZ_SHOW_WORST=1` also prints the slowest and the most memory-hungry input).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lcfg_profile::{Select, parse_profile};
use monitor_integration_tests::*;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const MEMORY_FACTOR: usize = 64;
const MEMORY_SLACK: usize = 96 << 20;

const TOKENS: &[&str] = &[
    "<",
    ">",
    "</",
    "/>",
    "<a>",
    "</a>",
    "<r>",
    "</r>",
    "&",
    ";",
    "&amp;",
    "&#65;",
    "&#x10FFFF;",
    "&e;",
    "]]>",
    "<![CDATA[",
    "<!--",
    "-->",
    "<?x?>",
    "<!DOCTYPE profile [<!ENTITY e \"EEEE&e;\">]>",
    "<!ENTITY x SYSTEM \"/etc/passwd\">",
    " cfg:context=\"",
    " cfg:template=\"x_$ y_$_$\"",
    " cfg:name=\"",
    " cfg:type=\"boolean\"",
    "_RECORD",
    "\"",
    "'",
    "\u{feff}",
    "\u{0}",
    "\r\n",
    " xmlns:cfg=\"http://www.lcfg.org/namespace/profile-1.0\"",
    "<lcfg>",
    "</lcfg>",
    "<components>",
    "</components>",
    "!",
    "(",
    ")",
    "|",
    "^",
    "=",
    "''",
];

fn corpus() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for f in ["kdc1.xml", "kdc2.xml", "jabber1.xml", "web1.xml", "web2.xml"] {
        out.push(std::fs::read(samples().join(f)).expect("a sample profile"));
    }
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/lcfg-core-cases");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&cases)
        .expect("the lcfg-core cases")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml" || x == "gz"))
        .collect();
    names.sort();
    for p in names {
        out.push(std::fs::read(p).expect("a case"));
    }
    out.push(
        profile_xml(
            "hostile",
            "kerberos",
            "<kerberos><l cfg:template=\"x_$\"><x cfg:name=\"a\" cfg:context=\"(a|b)&!c\">1</x></l><r>&lt;&#65;</r></kerberos>",
        )
        .into_bytes(),
    );
    out
}

fn gunzip_if(raw: &[u8]) -> Vec<u8> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        use std::io::Read;
        if flate2::read::MultiGzDecoder::new(raw).read_to_end(&mut out).is_ok() {
            return out;
        }
    }
    raw.to_vec()
}

fn mutate(rng: &mut ChaCha8Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = gunzip_if(seed);
    for _ in 0..rng.random_range(1..=6) {
        let len = v.len().max(1);
        match rng.random_range(0..9) {
            0 => {
                let i = rng.random_range(0..len);
                if let Some(b) = v.get_mut(i) {
                    *b ^= 1 << rng.random_range(0..8);
                }
            }
            1 | 2 => {
                let i = rng.random_range(0..=v.len());
                let t = TOKENS.choose(rng).expect("a token");
                v.splice(i..i, t.bytes());
            }
            3 => {
                let i = rng.random_range(0..len);
                let n = rng.random_range(0..=64.min(v.len() - i.min(v.len())));
                v.drain(i.min(v.len())..(i + n).min(v.len()));
            }
            4 => {
                // Repeat a range many times: deep nesting, amplification.
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=16).min(v.len().saturating_sub(i)).max(1);
                let piece: Vec<u8> = v[i.min(v.len())..(i + n).min(v.len())].to_vec();
                let times = *[2usize, 10, 300, 5_000].choose(rng).expect("a count");
                let rep: Vec<u8> = piece.iter().copied().cycle().take(piece.len() * times).collect();
                v.splice(i.min(v.len())..i.min(v.len()), rep);
            }
            5 => {
                let cut = rng.random_range(0..=v.len());
                v.truncate(cut);
            }
            6 => {
                // Nest a known element deeply.
                let depth = *[10usize, 255, 257, 20_000].choose(rng).expect("a depth");
                let i = rng.random_range(0..=v.len());
                let mut nest = "<r>".repeat(depth);
                nest.push_str(&"</r>".repeat(depth));
                v.splice(i..i, nest.into_bytes());
            }
            7 => {
                let i = rng.random_range(0..=v.len());
                let bytes: Vec<u8> = (0..rng.random_range(1..8)).map(|_| rng.random()).collect();
                v.splice(i..i, bytes);
            }
            _ => {
                let i = rng.random_range(0..len);
                let j = rng.random_range(0..len);
                if i < v.len() && j < v.len() {
                    v.swap(i, j);
                }
            }
        }
    }
    if rng.random_bool(0.1) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&v).expect("gzip into memory");
        v = gz.finish().expect("gzip into memory");
        if rng.random_bool(0.3) {
            v.extend_from_slice(b"trailing bytes");
        }
    }
    v
}

/// A `/proc/self/status` figure given in kB, in bytes (`None` where /proc has none).
fn status_bytes(key: &str) -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: usize = status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb << 10)
}

/// This process's peak RSS since the last reset.
fn peak_rss() -> Option<usize> {
    status_bytes("VmHWM:")
}

fn current_rss() -> Option<usize> {
    status_bytes("VmRSS:")
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[derive(Default)]
struct Figures {
    inputs: u64,
    ok: u64,
    errors: u64,
    failures: Vec<String>,
    worst_time: (Duration, usize),
    worst_memory: (usize, usize),
    worst_input: Vec<u8>,
    worst_memory_input: Vec<u8>,
}

fn run(seed: u64, deadline: Option<Instant>, max_inputs: u64, measure_memory: bool) -> Figures {
    let corpus = corpus();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut f = Figures::default();
    let file = Path::new("fuzz/input.xml");
    while f.inputs < max_inputs && deadline.is_none_or(|d| Instant::now() < d) {
        let seed_doc = corpus.choose(&mut rng).expect("a corpus");
        let input = mutate(&mut rng, seed_doc);
        f.inputs += 1;
        let base = if measure_memory {
            reset_peak();
            current_rss()
        } else {
            None
        };
        let t = Instant::now();
        let got = std::panic::catch_unwind(|| parse_profile(file, &input, Select::All));
        let took = t.elapsed();
        if took > f.worst_time.0 {
            f.worst_time = (took, input.len());
            f.worst_input = input.clone();
        }
        if let (Some(base), Some(peak)) = (base, peak_rss().filter(|_| measure_memory)) {
            let grew = peak.saturating_sub(base);
            if grew > f.worst_memory.0 {
                f.worst_memory = (grew, input.len());
                f.worst_memory_input = input.clone();
            }
            if grew > MEMORY_FACTOR * input.len() + MEMORY_SLACK {
                f.failures
                    .push(format!("memory: {grew} bytes for a {}-byte input", input.len()));
            }
        }
        match got {
            Ok(Ok(_)) => f.ok += 1,
            Ok(Err(e)) => {
                f.errors += 1;
                let text = e.to_string();
                if !text.starts_with("fuzz/input.xml") {
                    f.failures.push(format!("an error that does not name the file: {text}"));
                }
            }
            Err(_) => f.failures.push(format!(
                "panic on input {:?}",
                String::from_utf8_lossy(&input[..input.len().min(2000)])
            )),
        }
        if f.failures.len() > 5 {
            break;
        }
    }
    f
}

#[test]
fn the_reader_survives_any_mutation_of_its_corpus() {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let seed = env("FUZZ_SEED").unwrap_or(20261203);
    let seconds = env("FUZZ_SECONDS");
    let threads = env("FUZZ_THREADS").unwrap_or(1).max(1);
    // Peak RSS is per process: measured only with one thread.
    let measure = threads == 1;
    let deadline = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let max = if seconds.is_some() { u64::MAX } else { 3_000 };
    let t0 = Instant::now();
    let results: Vec<Figures> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| s.spawn(move || run(seed.wrapping_add(i), deadline, max, measure)))
            .collect();
        handles.into_iter().map(|h| h.join().expect("a fuzz thread")).collect()
    });
    let inputs: u64 = results.iter().map(|f| f.inputs).sum();
    let ok: u64 = results.iter().map(|f| f.ok).sum();
    let errors: u64 = results.iter().map(|f| f.errors).sum();
    let worst_time = results.iter().map(|f| f.worst_time).max().unwrap_or_default();
    let worst_memory = results.iter().map(|f| f.worst_memory).max().unwrap_or_default();
    let failures: Vec<&String> = results.iter().flat_map(|f| &f.failures).collect();
    eprintln!(
        "fuzz: seed {seed}, {threads} threads, {:.0} s, {inputs} inputs ({ok} read, {errors} refused), {} failures, worst time {:?} ({} bytes), worst memory growth {} KiB ({} bytes)",
        t0.elapsed().as_secs_f64(),
        failures.len(),
        worst_time.0,
        worst_time.1,
        worst_memory.0 >> 10,
        worst_memory.1
    );
    if std::env::var_os("FUZZ_SHOW_WORST").is_some() {
        for f in &results {
            eprintln!("slowest input: {:?}", String::from_utf8_lossy(&f.worst_input));
            eprintln!(
                "largest-memory input: {:?}",
                String::from_utf8_lossy(&f.worst_memory_input)
            );
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        ok > 0 && errors > 0,
        "the mutations both keep and break profiles: {ok} read, {errors} refused"
    );
}
