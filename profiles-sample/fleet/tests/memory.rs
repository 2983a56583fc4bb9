//! The memory breakdown on a small generated fleet, under the counting allocator that
//! `fleet-memory` uses: its shares must add up, and the kept fragments must be compact.

use std::path::Path;

use cap::Cap;

#[global_allocator]
static ALLOCATOR: Cap<mimalloc::MiMalloc> = Cap::new(mimalloc::MiMalloc, usize::MAX);

fn share(b: &fleet::memory::Breakdown, what: &str) -> f64 {
    // The share names are the breakdown's own; a missing one is a failure of the test.
    b.shares
        .iter()
        .find(|s| s.what.trim() == what)
        .unwrap_or_else(|| panic!("no share {what:?} in {:?}", b.shares))
        .mb
}

#[test]
fn the_breakdown_adds_up_and_the_kept_fragments_are_compact() {
    let work = tempfile::tempdir().expect("a temporary directory");
    let users = Path::new(env!("CARGO_MANIFEST_DIR")).join("../users.toml");
    let b = fleet::memory::breakdown(40, work.path(), &users, 20, || ALLOCATOR.allocated(), || 0)
        .expect("a cold pass without errors");
    // Four machines in twenty are not monitored.
    assert_eq!((b.machines, b.monitored), (40, 32));

    let held = share(&b, "cache entries, as held");
    let cloned = share(&b, "as cloned (without the slack of growing strings and lists)");
    let parts = ["fragments as objects", "fragments as rendered text", "registrations"].map(|w| share(&b, w));
    let rest = share(
        &b,
        "the rest of each entry (path, names, translator ids, hash, stat, map)",
    );
    assert!(parts.iter().all(|&p| p > 0.0), "{:?}", b.shares);
    assert!(
        rest > 0.0,
        "the entries' own parts are more than their fragments: {:?}",
        b.shares
    );
    assert!((parts.iter().sum::<f64>() + rest - cloned).abs() < 1e-9);
    // Objects take more room than their rendered text.
    assert!(parts[0] > parts[1], "{:?}", b.shares);
    // Compacted fragments leave little slack: before `Bundle::compact` and the exact
    // rendered text, the cache held about 1.46 times its exact clone.
    assert!(held >= cloned, "{held} {cloned}");
    assert!(
        held < 1.3 * cloned,
        "the cache holds {held} MB for {cloned} MB of content"
    );

    let assembly = share(&b, "kept assembly, all");
    let output = share(&b, "the output files' text");
    assert!(output > 0.0 && assembly > output, "{:?}", b.shares);
    // Each machine's text is kept once, in its shard file: the incremental state is
    // smaller than the output it describes.
    let state = share(
        &b,
        "the incremental state (definitions, each machine's output, indexes) and last report",
    );
    assert!(state > 0.0 && state < output, "{:?}", b.shares);

    let total = held
        + assembly
        + share(
            &b,
            "the engine's other state (owners, zones, translators, per-thread buffers)",
        );
    assert!((total - b.live_mb).abs() < 1e-6, "{total} {}", b.live_mb);
    assert!(b.peak_rss_mb > b.live_mb);
}
