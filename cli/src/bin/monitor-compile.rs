//! `monitor-compile`: compile every profile under the profile directories into a
//! complete Nagios object configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use monitor_core::base::BaseConfig;
use monitor_core::engine::{Engine, find_profiles};
use monitor_core::plugin::host::PluginSet;
use monitor_core::users::TomlUsers;
use monitor_core::validate::{DEFAULT_NAGIOS, validate_dir};
use monitor_core::writer::write_output;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
}

/// Compile LCFG profiles into a Nagios configuration.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Directory of profiles (`*.xml`, `*.xml.gz`, searched recursively). Repeatable.
    #[arg(long = "profiles", value_name = "DIR", required = true)]
    profiles: Vec<PathBuf>,
    /// Output directory for the generated object files.
    #[arg(long, value_name = "DIR")]
    output: PathBuf,
    /// Users file (TOML) with contacts and their groups.
    #[arg(long, value_name = "FILE")]
    users: PathBuf,
    /// Directory of translator plugin libraries (`*.so`). Repeatable; by default
    /// /usr/lib/monitor-compile/translators. A plugin replaces the built-in translator of
    /// the same component.
    #[arg(long = "translators", value_name = "DIR")]
    translators: Vec<PathBuf>,
    /// Where content-addressed copies of the plugin libraries are loaded from (default:
    /// a private temporary directory).
    #[arg(long, value_name = "DIR")]
    plugin_cache: Option<PathBuf>,
    /// Compile once and exit.
    #[arg(long)]
    once: bool,
    /// Run `nagios -v` on the result and fail when Nagios reports an error.
    #[arg(long)]
    validate: bool,
    /// The Nagios binary used by --validate.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_NAGIOS)]
    nagios_bin: PathBuf,
    /// The notifier program for XMPP and Slack notifications.
    #[arg(long, value_name = "PATH")]
    notifier: Option<PathBuf>,
    /// The mail program used by e-mail notifications.
    #[arg(long, value_name = "PATH")]
    mail_command: Option<PathBuf>,
    /// Summary format: human (stderr) or json (stdout).
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

fn main() -> ExitCode {
    let args = Args::parse();
    monitor_compile::init_logging("error");
    match run(&args) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("monitor-compile: fatal: {msg}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<ExitCode, String> {
    if !args.once {
        return Err("only one-shot mode is available: pass --once".into());
    }
    let mut base = BaseConfig::default();
    if let Some(n) = &args.notifier {
        base.notifier = n.clone();
    }
    if let Some(m) = &args.mail_command {
        base.mail_command = m.clone();
    }
    let mut files = Vec::new();
    for dir in &args.profiles {
        if !dir.is_dir() {
            return Err(format!("{}: not a directory", dir.display()));
        }
        files.extend(find_profiles(dir).map_err(|e| format!("{}: {e}", dir.display()))?);
    }
    let mut engine = Engine::new(
        monitor_compile::builtin_translators(),
        Box::new(TomlUsers::new(&args.users)),
        base,
    );
    let tmp = tempfile::tempdir().map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let copies = args.plugin_cache.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let mut plugins = PluginSet::new(monitor_compile::translator_dirs(&args.translators), copies);
    monitor_compile::refresh_plugins(&mut plugins, &mut engine);
    let result = engine.run_pass(&files).map_err(|e| e.to_string())?;
    let written = write_output(&args.output, &result.output)
        .map_err(|e| format!("{}: cannot write: {e}", args.output.display()))?;
    let validation = if args.validate {
        Some(validate_dir(&args.nagios_bin, &args.output).map_err(|e| e.to_string())?)
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
                args.output.display(),
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
                for e in &v.errors {
                    eprintln!("nagios: {e}");
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
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
