//! `monitor-compile`: compile every profile into a complete Nagios object configuration,
//! once (`--once`) or as a daemon that deploys every change to a running Nagios.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use monitor_compile::config::{Overrides, Settings};
use monitor_compile::daemon::{Status, status_path};
use monitor_core::engine::{Engine, find_profiles};
use monitor_core::plugin::host::PluginSet;
use monitor_core::users::TomlUsers;
use monitor_core::validate::{
    DEFAULT_NAGIOS, MINIMAL_RESOURCE, is_executable_file, missing_programs, parse_resource, validate_dir_as,
    validation_user,
};
use monitor_core::writer::write_output;

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
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.command {
        Some(Cmd::Status {
            config,
            state_dir,
            format,
        }) => status(config.as_ref(), state_dir.as_ref(), *format),
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
            eprintln!("monitor-compile: fatal: {msg}");
            ExitCode::from(2)
        }
    }
}

fn status(config: Option<&PathBuf>, state_dir: Option<&PathBuf>, format: Format) -> Result<ExitCode, String> {
    let dir = match (state_dir, config) {
        (Some(d), _) => d.clone(),
        (None, Some(c)) => monitor_compile::config::load(Some(c), &Overrides::default())?.state_dir,
        (None, None) => Settings::default_state_dir(),
    };
    let path = status_path(&dir);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e} (has the daemon run?)", path.display()))?;
    let s: Status = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    match format {
        Format::Json => println!("{}", serde_json::to_string(&s).unwrap_or_default()),
        Format::Human => {
            println!(
                "last pass: started at {} (unix), took {} ms, daemon pid {}",
                s.started_at, s.duration_ms, s.pid
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
            println!(
                "errors: {}, warnings: {}",
                s.report.errors.len(),
                s.report.warnings.len()
            );
            for e in &s.report.errors {
                println!("  error: {e}");
            }
            for p in &s.pending_profiles {
                println!("  being written (not reported yet): {}", p.display());
            }
            println!("last deploy: {}", s.deploy);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn once(args: &Args) -> Result<ExitCode, String> {
    let o = &args.overrides;
    let file: Option<toml::Table> = match &args.config {
        Some(c) => Some(
            std::fs::read_to_string(c)
                .map_err(|e| format!("{}: {e}", c.display()))?
                .parse()
                .map_err(|e| format!("{}: {e}", c.display()))?,
        ),
        None => None,
    };
    let from_file = |key: &str| -> Option<PathBuf> {
        file.as_ref()
            .and_then(|t| t.get(key))
            .and_then(|v| v.as_str())
            .map(PathBuf::from)
    };
    let list_from_file = |key: &str| -> Vec<PathBuf> {
        file.as_ref()
            .and_then(|t| t.get(key))
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str()).map(PathBuf::from).collect())
            .unwrap_or_default()
    };
    let profiles = if o.profiles.is_empty() {
        list_from_file("profiles")
    } else {
        o.profiles.clone()
    };
    let translators = if o.translators.is_empty() {
        list_from_file("translators")
    } else {
        o.translators.clone()
    };
    let output = o
        .output
        .clone()
        .or_else(|| from_file("output"))
        .ok_or("--output is required")?;
    let users = o
        .users
        .clone()
        .or_else(|| from_file("users"))
        .ok_or("--users is required")?;
    if profiles.is_empty() {
        return Err("--profiles is required".into());
    }
    let nagios_bin = o
        .nagios_bin
        .clone()
        .or_else(|| from_file("nagios_bin"))
        .unwrap_or_else(|| DEFAULT_NAGIOS.into());
    let site_objects = file
        .as_ref()
        .and_then(|t| t.get("site_objects"))
        .map(|v| {
            v.as_array()
                .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_string)).collect::<Option<_>>())
                .ok_or("site_objects: expected an array of strings")
        })
        .transpose()?
        .unwrap_or_default();
    let base = monitor_compile::config::base_config(
        o.notifier.clone().or_else(|| from_file("notifier")),
        o.mail_command.clone().or_else(|| from_file("mail_command")),
        site_objects,
    )
    .map_err(|e| e.to_string())?;
    let validate_user = o.validate_user.clone().or_else(|| {
        file.as_ref()
            .and_then(|t| t.get("validate_user"))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    });
    let mut files = Vec::new();
    for dir in &profiles {
        if !dir.is_dir() {
            return Err(format!("{}: not a directory", dir.display()));
        }
        files.extend(find_profiles(dir).map_err(|e| format!("{}: {e}", dir.display()))?);
    }
    let mut engine = Engine::new(
        monitor_compile::builtin_translators(),
        Box::new(TomlUsers::new(&users)),
        base,
    );
    let tmp = tempfile::tempdir().map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let copies = args.plugin_cache.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    // One pass: nothing will patch it.
    engine.set_incremental(false);
    let mut plugins = PluginSet::new(monitor_compile::translator_dirs(&translators), copies);
    monitor_compile::refresh_plugins(&mut plugins, &mut engine);
    let result = engine.run_pass(&files).map_err(|e| e.to_string())?;
    let written =
        write_output(&output, &result.output).map_err(|e| format!("{}: cannot write: {e}", output.display()))?;
    let validation = if args.validate {
        let run_as = validation_user(validate_user.as_deref()).map_err(|e| e.to_string())?;
        let mut check = validate_dir_as(&nagios_bin, &output, run_as.as_ref()).map_err(|e| e.to_string())?;
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
            eprint!("{}", monitor_compile::summary(&result.report));
            eprintln!(
                "output: {} ({} files written, {} unchanged, {} removed)",
                output.display(),
                written.written,
                written.unchanged,
                written.removed
            );
            if let Some(v) = &validation {
                eprintln!(
                    "nagios -v: {} ({} errors, {} warnings)",
                    if v.ok { "ok" } else { "FAILED" },
                    v.errors.len(),
                    v.warnings.len()
                );
                if let Some(user) = &v.run_as {
                    eprintln!("nagios -v ran as user {user}, as Nagios reads the output");
                }
                for e in &v.errors {
                    eprintln!("nagios: {e}");
                }
                for m in &v.missing_programs {
                    eprintln!("warning: {m}");
                }
            }
        }
        Format::Json => {
            let translators: Vec<_> = engine.translators().collect();
            let doc = serde_json::json!({
                "report": result.report,
                "written": written,
                "validation": validation,
                "translators": translators,
            });
            println!("{doc}");
        }
    }
    let failed = !result.report.errors.is_empty() || validation.as_ref().is_some_and(|v| !v.ok);
    // The process ends here: freeing every machine's cached fragments one by one would
    // only delay the exit (about 3% of a 10,000-machine compile). The plugin copies'
    // temporary directory is still removed.
    std::mem::forget(engine);
    std::mem::forget(result);
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
