//! `fleet`: generate realistic LCFG profile fleets, simulate a day's edits, and run the
//! monitor-compile benchmark. See docs/PERFORMANCE.md.

use fleet::{bench, generate};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// The pass allocates many small strings on every core: mimalloc's per-thread heaps cost
// much less than the system allocator there (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Generate profile fleets and benchmark monitor-compile on them.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Write N realistic profiles into DIR.
    Generate {
        #[arg(long)]
        machines: usize,
        #[arg(long)]
        out: PathBuf,
        /// Average profile size in KB.
        #[arg(long, default_value_t = 100)]
        avg_kb: usize,
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
    /// Give K machines of a generated fleet a real content change.
    Touch {
        #[arg(long)]
        machines: usize,
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        count: usize,
        /// Which day of edits (a different round changes different content).
        #[arg(long, default_value_t = 1)]
        round: u64,
        #[arg(long, default_value_t = 100)]
        avg_kb: usize,
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
    /// Run the benchmark scenarios at each size.
    Bench {
        #[arg(long, value_delimiter = ',', default_value = "1000,10000,50000")]
        machines: Vec<usize>,
        /// Where fleets and outputs are kept (reused between runs).
        #[arg(long, default_value = "target/fleet")]
        work: PathBuf,
        #[arg(long, default_value = "profiles-sample/users.toml")]
        users: PathBuf,
        #[arg(long, default_value = "/usr/sbin/nagios4")]
        nagios_bin: PathBuf,
        #[arg(long, default_value_t = 100)]
        avg_kb: usize,
        /// Also write the figures as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Run the change-to-live scenario instead: a real daemon and a real Nagios
        /// (build `monitor-compile` first: cargo build --release --bin monitor-compile).
        #[arg(long)]
        live: bool,
        /// The core scenarios only (no plugin, Icinga 2 or HTTP column): for sizes whose
        /// Icinga 2 validation would not fit in memory.
        #[arg(long)]
        core: bool,
    },
}

fn main() -> ExitCode {
    // The benchmark's plugin mode starts this binary again as the plugin worker.
    if let Some(code) = monitor_runtime::worker::run_if_worker() {
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    let args = Args::parse();
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let result = match args.cmd {
        Cmd::Generate {
            machines,
            out,
            avg_kb,
            seed,
        } => generate::generate(&generate::Spec { machines, avg_kb, seed }, &out).map(|bytes| {
            eprintln!(
                "wrote {machines} profiles, {:.1} MB, to {}",
                bytes as f64 / 1e6,
                out.display()
            );
        }),
        Cmd::Touch {
            machines,
            dir,
            count,
            round,
            avg_kb,
            seed,
        } => generate::touch(&generate::Spec { machines, avg_kb, seed }, &dir, count, round).map(|changed| {
            for c in changed {
                println!("{}", c.display());
            }
        }),
        Cmd::Bench {
            machines,
            work,
            users,
            nagios_bin,
            avg_kb,
            json,
            live,
            core,
        } => (|| {
            if live {
                let mut rows = Vec::new();
                for n in machines {
                    let row = bench::run_live(n, &work, &users, &nagios_bin, avg_kb)?;
                    eprintln!("{}", serde_json::to_string(&row).unwrap_or_default());
                    rows.push(row);
                }
                print!("{}", fleet::live::table(&rows));
                if let Some(j) = json {
                    std::fs::write(j, serde_json::to_string_pretty(&rows).unwrap_or_default())?;
                }
                return Ok(());
            }
            let mut rows = Vec::new();
            for n in machines {
                let row = bench::run(n, &work, &users, &nagios_bin, avg_kb, core)?;
                eprintln!("{}", serde_json::to_string(&row).unwrap_or_default());
                rows.push(row);
            }
            print!("{}", bench::table(&rows));
            if let Some(j) = json {
                std::fs::write(j, serde_json::to_string_pretty(&rows).unwrap_or_default())?;
            }
            Ok(())
        })(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet: {e}");
            ExitCode::FAILURE
        }
    }
}
