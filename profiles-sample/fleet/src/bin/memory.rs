//! `fleet-memory`: the memory breakdown of a cold pass (see `fleet::memory`), under an
//! allocator that counts the bytes it hands out. A binary of its own, so that the
//! benchmark's timings do not pay for the counting.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cap::Cap;
use clap::Parser;

#[global_allocator]
static ALLOCATOR: Cap<mimalloc::MiMalloc> = Cap::new(mimalloc::MiMalloc, usize::MAX);

/// What a machine costs after a cold pass, by what holds it.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[arg(long, value_delimiter = ',', default_value = "10000")]
    machines: Vec<usize>,
    /// Where fleets are kept (the benchmark's, reused).
    #[arg(long, default_value = "target/fleet")]
    work: PathBuf,
    #[arg(long, default_value = "profiles-sample/users.toml")]
    users: PathBuf,
    #[arg(long, default_value_t = 100)]
    avg_kb: usize,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// The most bytes held since it was last taken, as the sampler saw it.
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Take the peak since the last take, and start again from what is held now.
fn take_peak() -> usize {
    PEAK.swap(ALLOCATOR.allocated(), Ordering::Relaxed)
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Sample what is held every 0.2 ms (a spike shorter than that can be missed).
    std::thread::spawn(|| {
        loop {
            PEAK.fetch_max(ALLOCATOR.allocated(), Ordering::Relaxed);
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    let mut rows = Vec::new();
    for n in args.machines {
        match fleet::memory::breakdown(
            n,
            &args.work,
            &args.users,
            args.avg_kb,
            || ALLOCATOR.allocated(),
            take_peak,
        ) {
            Ok(row) => rows.push(row),
            Err(e) => {
                eprintln!("fleet-memory: {n} machines: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    print!("{}", fleet::memory::table(&rows));
    if let Some(path) = args.json {
        let text = match serde_json::to_string_pretty(&rows) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("fleet-memory: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("fleet-memory: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
