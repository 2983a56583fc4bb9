//! The memory breakdown: what a machine costs after a cold pass, by what holds it.
//!
//! Run by the `fleet-memory` binary, whose allocator counts the bytes it hands out
//! (`cap`, around mimalloc), so that each share is measured, not estimated:
//! - the cache entries, and within them the fragments as objects, the fragments as
//!   rendered text, the registrations, and the rest of each entry (its path, names,
//!   translator identities, hash and stat), each measured by the bytes a clone of it
//!   allocates (a clone is exact: it leaves out the slack a growing `Vec` or `String`
//!   kept, so the shares can add up to a little less than the whole);
//! - the kept assembly (the output files, the incremental state and the last report),
//!   measured by the bytes freed when the engine drops it;
//! - the engine's other state (which file owns each machine, each machine's zone).
//!
//! Requested bytes are counted: mimalloc's size classes and page headers, and the read
//! buffers and other freed memory it keeps, are the gap to the peak RSS, which is given
//! beside them.

use std::path::Path;

use monitor_engine::base::BaseConfig;
use monitor_engine::pass::Engine;
use monitor_engine::users::TomlUsers;
use serde::Serialize;

use crate::generate::Spec;

/// One share, in bytes and per machine.
#[derive(Debug, Clone, Serialize)]
pub struct Share {
    pub what: String,
    pub mb: f64,
    pub kb_per_machine: f64,
}

/// The breakdown for one fleet.
#[derive(Debug, Clone, Serialize)]
pub struct Breakdown {
    /// The profiles of the fleet: the "a machine" figures divide by this, as the
    /// benchmark's do.
    pub machines: usize,
    /// The machines the pass kept (the others are not monitored).
    pub monitored: usize,
    /// Bytes held after the cold pass (the engine and its kept assembly), counted.
    pub live_mb: f64,
    /// The most bytes held at once during the cold pass (sampled), which includes the
    /// pass's transient memory.
    pub peak_live_mb: f64,
    /// Peak RSS of the process, which includes the pass's transient memory.
    pub peak_rss_mb: f64,
    /// RSS after the cold pass.
    pub rss_after_mb: f64,
    pub shares: Vec<Share>,
}

/// MB as the benchmark gives them (MiB), and KB (KiB).
fn mb(b: i64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// A cold pass on the fleet of `machines` under `work`, then its breakdown. `live()` is
/// the number of bytes the process's allocator has handed out and not had back;
/// `peak()` the most it was since `peak()` was last called (sampled by the caller).
pub fn breakdown(
    machines: usize,
    work: &Path,
    users: &Path,
    avg_kb: usize,
    live: impl Fn() -> usize,
    peak: impl Fn() -> usize,
) -> std::io::Result<Breakdown> {
    let spec = Spec {
        machines,
        avg_kb,
        seed: 2026,
    };
    let (_, files) = crate::bench::prepare(&spec, work)?;
    let now = || live() as i64;
    let start = now();
    let mut engine = Engine::new(
        crate::translators(),
        Box::new(TomlUsers::new(users)),
        BaseConfig::default(),
    );
    let empty_engine = now() - start;
    peak();
    let result = engine.run_pass(&files).map_err(std::io::Error::other)?;
    let peak_live = peak() as i64 - start;
    if !result.report.errors.is_empty() {
        return Err(std::io::Error::other(format!(
            "the cold pass had {} errors, the first: {}",
            result.report.errors.len(),
            result.report.errors[0]
        )));
    }
    let monitored = result.report.machines;
    let output_text: i64 = result.output.files.values().map(|t| t.len() as i64).sum();
    drop(result);
    let held = now() - start;
    let peak_rss_mb = crate::bench::peak_rss_mb();
    let rss_after_mb = crate::bench::rss_mb();

    // The cache, by clones of its parts.
    let cache = engine.cache();
    let measure = |f: &dyn Fn() -> Box<dyn std::any::Any>| {
        let before = now();
        let kept = f();
        let bytes = now() - before;
        drop(kept);
        bytes
    };
    let whole = measure(&|| Box::new(cache.clone()));
    let goods = || {
        cache
            .entries
            .values()
            .filter_map(|e| e.record.as_ref())
            .flat_map(|r| &r.components)
            .filter_map(|c| c.good.as_ref())
    };
    let objects = measure(&|| Box::new(goods().map(|g| g.fragments.clone()).collect::<Vec<_>>()));
    let rendered = measure(&|| Box::new(goods().map(|g| g.rendered.clone()).collect::<Vec<_>>()));
    let registrations = measure(&|| Box::new(goods().map(|g| g.registrations.clone()).collect::<Vec<_>>()));
    // The collecting vectors themselves are not part of the cache.
    let vec_of = |size: usize| (goods().count() * size) as i64;
    let objects = objects - vec_of(std::mem::size_of::<monitor_sdk::nagios::Bundle>());
    let rendered = rendered - vec_of(std::mem::size_of::<String>());
    let registrations = registrations - vec_of(std::mem::size_of::<Vec<monitor_sdk::translator::Registration>>());

    let before_forget = now();
    engine.forget_last_assembly();
    let assembly = before_forget - now();
    // The cache itself, as the engine holds it (with its slack), by dropping it.
    let before_take = now();
    drop(engine.take_cache());
    let cache_held = before_take - now();
    let other = held - empty_engine - cache_held - assembly;

    let n = machines as f64;
    let share = |what: &str, b: i64| Share {
        what: what.to_string(),
        mb: mb(b),
        kb_per_machine: b as f64 / 1024.0 / n,
    };
    let shares = vec![
        share("cache entries, as held", cache_held),
        share("  as cloned (without the slack of growing strings and lists)", whole),
        share("    fragments as objects", objects),
        share("    fragments as rendered text", rendered),
        share("    registrations", registrations),
        share(
            "    the rest of each entry (path, names, translator ids, hash, stat, map)",
            whole - objects - rendered - registrations,
        ),
        share("kept assembly, all", assembly),
        share("  the output files' text", output_text),
        share(
            "  the incremental state (definitions, each machine's output, indexes) and last report",
            assembly - output_text,
        ),
        share(
            "the engine's other state (owners, zones, translators, per-thread buffers)",
            other + empty_engine,
        ),
    ];
    drop(engine);
    Ok(Breakdown {
        machines,
        monitored,
        live_mb: mb(held),
        peak_live_mb: mb(peak_live),
        peak_rss_mb,
        rss_after_mb,
        shares,
    })
}

/// The breakdowns as a Markdown table.
pub fn table(rows: &[Breakdown]) -> String {
    let mut s = String::new();
    for r in rows {
        s.push_str(&format!(
            "\n{} profiles ({} machines monitored): {:.0} MB held after the cold pass ({:.1} KB a machine), {:.0} MB at most during it; RSS {:.0} MB after it, peak {:.0} MB ({:.1} KB a machine)\n\n",
            r.machines,
            r.monitored,
            r.live_mb,
            r.live_mb * 1024.0 / r.machines as f64,
            r.peak_live_mb,
            r.rss_after_mb,
            r.peak_rss_mb,
            r.peak_rss_mb * 1024.0 / r.machines as f64
        ));
        s.push_str("| held by | MB | KB a machine |\n|---|---|---|\n");
        for sh in &r.shares {
            s.push_str(&format!("| {} | {:.1} | {:.2} |\n", sh.what, sh.mb, sh.kb_per_machine));
        }
    }
    s
}
