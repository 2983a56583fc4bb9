//! `monitor-compile`: compile every profile into a complete Nagios object configuration,
//! once (`--once`) or as a daemon that deploys every change to a running Nagios.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use monitor_compile::backend::{Backend, icinga_output};
use monitor_compile::config::{Mode, Overrides, Settings};
use monitor_compile::daemon::{Status, status_path};
use monitor_engine::Engine;
use monitor_runtime::guard::{Inventory, Removal};
use monitor_runtime::icinga2::validate::Validator;
use monitor_runtime::validate::{
    MINIMAL_RESOURCE, is_executable_file, missing_programs, parse_resource, validate_dir_as, validation_user,
};
use monitor_runtime::writer::write_output;

// The pass allocates many small strings on every core: mimalloc's per-thread heaps cost
// much less than the system allocator there (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
}

/// Compile LCFG profiles into a Nagios configuration: once with --once, or as a daemon.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// The configuration file (TOML); flags override it. See docs/daemon.md.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    overrides: Overrides,
    /// Compile once into --output and exit, instead of running as a daemon.
    #[arg(long)]
    once: bool,
    /// With --once: run `nagios -v` on the result and fail when Nagios reports an error.
    #[arg(long)]
    validate: bool,
    /// With --once: where content-addressed copies of plugin libraries are loaded from.
    #[arg(long, value_name = "DIR")]
    plugin_cache: Option<PathBuf>,
    /// With --once: write the output even when it removes more hosts or services than
    /// the removal guard allows (see docs/daemon.md).
    #[arg(long)]
    allow_removals: bool,
    /// Summary format: human (stderr) or json (stdout).
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Report the daemon's last pass: when, how long, machines, cache hits, errors, deploy.
    Status {
        /// The daemon's configuration file (for its state directory).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The state directory, instead of --config.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Fetch these machines' profiles from the LCFG server now (the daemon's `[http]`
    /// source): what the server's change notification runs (docs/sources.md).
    Fetch {
        /// The daemon's configuration file (for its state directory).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The state directory, instead of --config.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// The machines, as `node.domain`.
        #[arg(required = true, value_name = "MACHINE")]
        machines: Vec<String>,
    },
    /// Hosts that register their own monitoring over SSH (docs/monitoring-info.md).
    #[command(subcommand)]
    MonitoringInfo(InfoCmd),
    /// Accept the set the removal guard holds: the daemon deploys it at once.
    Approve {
        /// The daemon's configuration file (for its state directory).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The state directory, instead of --config.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum InfoCmd {
    /// The forced command of a host's key: read its registration on stdin and replace
    /// that host's declarations.
    Receive {
        /// The state directory (where the registrations are kept).
        #[arg(long, value_name = "DIR")]
        state_dir: PathBuf,
        /// The host this key registers: set in `authorized_keys`, never by the client.
        #[arg(long, value_name = "FQDN")]
        host: String,
    },
    /// Print the `authorized_keys` line that lets one host's key register that host only.
    Authorize {
        /// The state directory the forced command writes to.
        #[arg(long, value_name = "DIR")]
        state_dir: PathBuf,
        /// The host.
        #[arg(long, value_name = "FQDN")]
        host: String,
        /// The host's public key file (`id_ed25519.pub`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The monitor-compile binary the forced command runs.
        #[arg(long, value_name = "PATH", default_value = "/usr/bin/monitor-compile")]
        program: PathBuf,
    },
}

fn main() -> ExitCode {
    if let Some(code) = monitor_runtime::worker::run_if_worker() {
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    let args = Args::parse();
    let json = match &args.command {
        Some(Cmd::Status { format, .. }) => *format == Format::Json,
        Some(Cmd::Approve { .. } | Cmd::Fetch { .. } | Cmd::MonitoringInfo(_)) => false,
        None => args.format == Format::Json,
    };
    let result = match &args.command {
        Some(Cmd::Status {
            config,
            state_dir,
            format,
        }) => status(config.as_ref(), state_dir.as_ref(), *format),
        Some(Cmd::Approve { config, state_dir }) => approve(config.as_ref(), state_dir.as_ref()),
        Some(Cmd::MonitoringInfo(InfoCmd::Receive { state_dir, host })) => receive(state_dir, host),
        Some(Cmd::MonitoringInfo(InfoCmd::Authorize {
            state_dir,
            host,
            key,
            program,
        })) => {
            let public = std::fs::read_to_string(key).map_err(|e| format!("{}: {e}", key.display()));
            public
                .and_then(|k| monitor_compile::monitoring_info::authorized_keys_line(program, state_dir, host, &k))
                .map(|line| {
                    println!("{line}");
                    ExitCode::SUCCESS
                })
        }
        Some(Cmd::Fetch {
            config,
            state_dir,
            machines,
        }) => fetch(config.as_ref(), state_dir.as_ref(), machines),
        None if args.once => {
            monitor_compile::init_logging("error");
            once(&args)
        }
        None => {
            monitor_compile::init_logging("info");
            monitor_compile::daemon::run(args.config.clone(), args.overrides.clone()).map(|()| ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(msg) => {
            if json {
                // Machine output stays machine-readable, even for a fatal error.
                println!("{}", serde_json::json!({ "error": msg, "fatal": true }));
            }
            eprintln!("monitor-compile: fatal: {msg}");
            ExitCode::from(2)
        }
    }
}

fn state_dir_of(config: Option<&PathBuf>, state_dir: Option<&PathBuf>) -> Result<PathBuf, String> {
    Ok(match (state_dir, config) {
        (Some(d), _) => d.clone(),
        (None, Some(c)) => monitor_compile::config::load(Some(c), &Overrides::default())?.state_dir,
        (None, None) => Settings::default_state_dir(),
    })
}

fn read_status(dir: &std::path::Path) -> Result<Status, String> {
    let path = status_path(dir);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e} (has the daemon run?)", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Whether `pid` is a running monitor-compile (not merely some process of that number).
fn daemon_running(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains("monitor-compile"))
}

/// A Unix time as UTC, with how long ago it was.
fn when(unix: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix);
    let ago = std::time::SystemTime::now()
        .duration_since(t)
        .map(|d| humantime::format_duration(std::time::Duration::from_secs(d.as_secs())).to_string())
        .unwrap_or_else(|_| "0s".into());
    format!("{} ({ago} ago)", humantime::format_rfc3339_seconds(t))
}

fn status(config: Option<&PathBuf>, state_dir: Option<&PathBuf>, format: Format) -> Result<ExitCode, String> {
    let dir = state_dir_of(config, state_dir)?;
    let s = read_status(&dir)?;
    let running = daemon_running(s.pid);
    match format {
        Format::Json => {
            let mut v = serde_json::to_value(&s).map_err(|e| e.to_string())?;
            v["running"] = running.into();
            println!("{v}");
        }
        Format::Human => {
            if running {
                println!("daemon: running (pid {})", s.pid);
            } else {
                println!("daemon: NOT running (its last pid was {})", s.pid);
            }
            println!("last pass: {}, took {} ms", when(s.started_at), s.duration_ms);
            let p = &s.phases;
            println!(
                "phases: scan {:.1} ms, compile {:.1} ms, write {:.1} ms, validate {:.1} ms, reload {:.1} ms, submit {:.1} ms",
                p.scan_ms, p.compile_ms, p.write_ms, p.validate_ms, p.reload_ms, p.submit_ms
            );
            println!(
                "machines: {}, services: {}, files: {} ({} parsed, {} translate calls, {} from cache)",
                s.report.machines,
                s.report.services,
                s.report.files,
                s.report.parsed,
                s.report.translated,
                s.report.cache_hits
            );
            let rejected: Vec<&str> = if s.deploy["result"] == "rejected" {
                s.deploy["errors"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|e| e.as_str()).collect())
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            println!(
                "errors: {} ({} from compiling, {} from nagios -v), warnings: {}",
                s.report.errors.len() + rejected.len(),
                s.report.errors.len(),
                rejected.len(),
                s.report.warnings.len()
            );
            for e in &s.report.errors {
                println!("  error: {e}");
            }
            for p in &s.pending_profiles {
                println!("  being written (not reported yet): {}", p.display());
            }
            if let Some(h) = &s.held {
                println!("HELD since {}: the live configuration is unchanged", when(h.since));
                for r in &h.reasons {
                    println!("  because {r}");
                }
                if let Some(r) = &h.removal {
                    println!("  {}", r.summary());
                }
                if h.set.is_some() {
                    println!("  to deploy it anyway: monitor-compile approve");
                }
            }
            let result = s.deploy["result"].as_str().unwrap_or("none");
            let set = s.deploy["set"].as_str().unwrap_or("");
            match result {
                "deployed" => {
                    println!("last deploy: deployed set {set}");
                    if let Some(e) = s.deploy["reload_error"].as_str() {
                        println!("  but Nagios was not reloaded: {e}");
                    }
                }
                "unchanged" => println!("last deploy: unchanged (set {set} is live)"),
                "rejected" => {
                    println!(
                        "last deploy: REJECTED by nagios -v; the set is kept at {}",
                        s.deploy["kept_at"].as_str().unwrap_or("")
                    );
                    for e in rejected {
                        println!("  nagios: {e}");
                    }
                }
                "rolled-back" => println!(
                    "last deploy: ROLLED BACK, the reload failed: {}",
                    s.deploy["reason"].as_str().unwrap_or("")
                ),
                "held" => println!("last deploy: held (above)"),
                "error" => println!("last deploy: FAILED: {}", s.deploy["error"].as_str().unwrap_or("")),
                other => println!("last deploy: {other}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn fetch(config: Option<&PathBuf>, state_dir: Option<&PathBuf>, machines: &[String]) -> Result<ExitCode, String> {
    let dir = state_dir_of(config, state_dir)?;
    monitor_compile::sources::write_request(&dir, machines)?;
    // The daemon's pid is in its lock file.
    let lock = monitor_compile::daemon::lock_path(&dir);
    let pid = std::fs::read_to_string(&lock)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .filter(|p| daemon_running(*p));
    let Some(pid) = pid else {
        eprintln!("the daemon is not running: it fetches every machine when it starts");
        return Ok(ExitCode::from(1));
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGUSR2,
    )
    .map_err(|e| format!("cannot signal the daemon (pid {pid}): {e}"))?;
    eprintln!("the daemon (pid {pid}) fetches {} now", machines.join(", "));
    Ok(ExitCode::SUCCESS)
}

/// The forced command: the client sees what was registered, and why any service will not
/// be monitored. Nothing it sends can name another host or reach a shell.
fn receive(state_dir: &std::path::Path, host: &str) -> Result<ExitCode, String> {
    let r = monitor_compile::monitoring_info::receive(state_dir, host, std::io::stdin().lock())
        .map_err(|e| format!("registration for {host} refused: {e}"))?;
    if r.files == 0 {
        println!(
            "{}: registration removed (no files): nothing is monitored for it",
            r.host
        );
    } else {
        println!(
            "{}: registered {} file(s), {} service(s): {}",
            r.host,
            r.files,
            r.services.len(),
            r.services.join(", ")
        );
    }
    for p in &r.problems {
        println!("not monitored: {p}");
    }
    // The daemon watches the registrations: it compiles this one within its debounce.
    Ok(ExitCode::SUCCESS)
}

fn approve(config: Option<&PathBuf>, state_dir: Option<&PathBuf>) -> Result<ExitCode, String> {
    let dir = state_dir_of(config, state_dir)?;
    let s = read_status(&dir)?;
    let Some(held) = &s.held else {
        eprintln!("monitor-compile: nothing is held");
        return Ok(ExitCode::from(1));
    };
    let Some(set) = &held.set else {
        return Err(format!(
            "the pass is held because its inputs are not there ({}): fix them; there is no set to approve",
            held.reasons.join("; ")
        ));
    };
    let path = monitor_compile::daemon::approval_path(&dir);
    monitor_runtime::writer::write_atomic(&path, set.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("approved set {set}:");
    if let Some(r) = &held.removal {
        eprintln!("  {}", r.summary());
    }
    if daemon_running(s.pid) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(s.pid as i32),
            nix::sys::signal::Signal::SIGUSR1,
        )
        .map_err(|e| format!("cannot signal the daemon (pid {}): {e}", s.pid))?;
        eprintln!("the daemon (pid {}) deploys it now", s.pid);
    } else {
        eprintln!("the daemon is not running: it deploys the set when it starts, if nothing changed meanwhile");
    }
    Ok(ExitCode::SUCCESS)
}

fn once(args: &Args) -> Result<ExitCode, String> {
    let started = std::time::Instant::now();
    let settings = monitor_compile::config::load_for(args.config.as_deref(), &args.overrides, Mode::Once)?;
    let base = settings.base_config().map_err(|e| e.to_string())?;
    let (profiles, output) = (&settings.profiles, &settings.output);
    let follow_out = settings.follow_symlinks_out;
    let mut listing = monitor_engine::Listing::default();
    for dir in profiles {
        // A missing, empty or unlistable directory is fatal: never an empty configuration.
        listing.extend(monitor_compile::daemon::list_profile_dir(dir, follow_out)?);
    }
    let mut info_problems = Vec::new();
    if let Some(info) = &settings.monitoring_info {
        let (l, problems) = monitor_compile::monitoring_info::registered_profiles(&settings.state_dir, info)?;
        listing.extend(l);
        info_problems = problems;
    }
    if std::fs::metadata(output).is_ok_and(|m| !m.is_dir()) {
        return Err(format!(
            "{}: --output exists and is not a directory (it names the directory to write the configuration into)",
            output.display()
        ));
    }
    let (users, _) = settings.user_source()?;
    let mut engine = Engine::new(monitor_compile::builtin_translators(), users, base);
    engine.set_bind_paths(settings.bind_paths);
    engine.set_zones(settings.engine_zones()?);
    let tmp = tempfile::tempdir().map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let copies = args.plugin_cache.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    // One pass: nothing will patch it.
    engine.set_incremental(false);
    let mut plugins = settings.plugin_set(monitor_compile::translator_dirs(&settings.translators), copies)?;
    monitor_compile::refresh_plugins(&mut plugins, &mut engine);
    let mut result = engine.run_listing(&listing).map_err(|e| e.to_string())?;
    result.report.errors.extend(info_problems);
    // The Icinga 2 backend maps the assembled objects to a tree of zones.
    let (files, icinga_nodes) = match settings.backend {
        Backend::Nagios => (result.output.clone(), None),
        Backend::Icinga2 => {
            let tree = settings.icinga_tree()?;
            let (o, nodes) = icinga_output(&result.output, &tree, &mut result.report)?;
            (o, Some(nodes))
        }
    };
    // The removal guard, against what the output directory holds now.
    let before = Inventory::of_dir(output).map_err(|e| format!("{}: cannot read: {e}", output.display()))?;
    let removal = Removal::between(&before, &Inventory::of_output(&files));
    let held = removal.exceeds(&settings.removal_guard);
    if !held.is_empty() && !args.allow_removals {
        match args.format {
            Format::Human => {
                eprint!("{}", monitor_compile::problems(&result.report));
                for why in &held {
                    eprintln!("error: held by the removal guard: {why}");
                }
                eprintln!("error: {}", removal.summary());
                eprintln!(
                    "monitor-compile: nothing written to {}; give --allow-removals to write it anyway ({:.2} s)",
                    output.display(),
                    started.elapsed().as_secs_f64()
                );
            }
            Format::Json => println!(
                "{}",
                serde_json::json!({ "report": result.report, "held": { "reasons": held, "removal": removal } })
            ),
        }
        return Ok(ExitCode::from(3));
    }
    let written = write_output(output, &files).map_err(|e| format!("{}: cannot write: {e}", output.display()))?;
    let icinga_validation = match (&icinga_nodes, args.validate) {
        (Some(nodes), true) => {
            let user = settings.icinga2.validate_user.as_deref().or(Some("nagios"));
            let validator = Validator {
                bin: settings.icinga2.bin.clone(),
                plugin_dir: settings.icinga2.plugin_dir.clone(),
                run_as: validation_user(user).map_err(|e| e.to_string())?,
                work_dir: tmp.path().join("verify-icinga2"),
            };
            Some(validator.validate(output, nodes).map_err(|e| e.to_string())?)
        }
        _ => None,
    };
    let validation = if args.validate && icinga_nodes.is_none() {
        let run_as = validation_user(settings.validate_user.as_deref()).map_err(|e| e.to_string())?;
        let mut check = validate_dir_as(&settings.nagios_bin, output, run_as.as_ref()).map_err(|e| e.to_string())?;
        check.missing_programs =
            missing_programs(&result.output, &parse_resource(MINIMAL_RESOURCE), is_executable_file);
        Some(check)
    } else {
        None
    };
    match args.format {
        Format::Human => {
            for t in engine.translators().filter(|t| t.origin != "builtin") {
                eprintln!("translator: {t}");
            }
            eprint!("{}", monitor_compile::problems(&result.report));
            if let Some(v) = &validation {
                for m in &v.missing_programs {
                    eprintln!("warning: {m}");
                }
                for e in &v.errors {
                    eprintln!("nagios: {e}");
                }
                if let Some(user) = &v.run_as {
                    eprintln!("nagios -v ran as user {user}, as Nagios reads the output");
                }
                eprintln!(
                    "nagios -v: {} ({} errors, {} warnings)",
                    if v.ok { "ok" } else { "FAILED" },
                    v.errors.len(),
                    v.warnings.len()
                );
            }
            if let Some(v) = &icinga_validation {
                for n in &v.nodes {
                    for e in &n.errors {
                        eprintln!("icinga2 ({} in zone {}): {e}", n.endpoint, n.zone);
                    }
                    for w in &n.warnings {
                        eprintln!("icinga2 ({} in zone {}): warning: {w}", n.endpoint, n.zone);
                    }
                    eprintln!(
                        "icinga2 daemon -C as {} (zone {}): {} ({} errors, {} warnings, {:.0} ms)",
                        n.endpoint,
                        n.zone,
                        if n.ok { "ok" } else { "FAILED" },
                        n.errors.len(),
                        n.warnings.len(),
                        n.millis
                    );
                }
            }
            eprintln!(
                "output: {} ({} files written, {} unchanged, {} removed)",
                output.display(),
                written.written,
                written.unchanged,
                written.removed
            );
            eprint!("{}", monitor_compile::summary(&result.report, started.elapsed()));
        }
        Format::Json => {
            let translators: Vec<_> = engine.translators().collect();
            let doc = serde_json::json!({
                "report": result.report,
                "written": written,
                "validation": validation,
                "icinga2_validation": icinga_validation,
                "backend": match settings.backend { Backend::Nagios => "nagios", Backend::Icinga2 => "icinga2" },
                "translators": translators,
                "removal": removal,
                "elapsed_ms": started.elapsed().as_millis() as u64,
            });
            println!("{doc}");
        }
    }
    let failed = !result.report.errors.is_empty()
        || validation.as_ref().is_some_and(|v| !v.ok)
        || icinga_validation.as_ref().is_some_and(|v| !v.ok);
    // The process ends here: freeing every machine's cached fragments one by one would
    // only delay the exit (about 3% of a 10,000-machine compile). The plugin copies'
    // temporary directory is still removed.
    std::mem::forget(engine);
    std::mem::forget(result);
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
