//! `monitor-test`: run one translator on one profile and show what it produces, or
//! dump a profile's resources in flat LCFG form.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use lcfg_profile::{Select, dump, read_profile};
use monitor_runtime::plugin_host::{find_libraries, load};
use monitor_runtime::worker::{WorkerSettings, load_in_worker};
use monitor_sdk::translator::{Context, Translator};

/// Run one translator on one profile, as `lcfg-monitor-test` did.
#[derive(Debug, Parser)]
#[command(name = "monitor-test", version, about)]
struct Args {
    /// Print the machine name and every active resource as `component.resource=value`.
    #[arg(long, value_name = "PROFILE", conflicts_with_all = ["component", "profile"])]
    dump: Option<PathBuf>,
    /// Load the translator from the plugin libraries (`*.so`) in DIR, your build output
    /// (such as target/release), instead of the built-in one.
    #[arg(long, value_name = "DIR")]
    libs: Option<PathBuf>,
    /// With --libs: load the library into this process instead of a worker process, as
    /// the server does by default (a crash then ends monitor-test too).
    #[arg(long, requires = "libs")]
    in_process: bool,
    /// With --libs: seconds one call may take in the worker before it is killed.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, requires = "libs")]
    timeout: u64,
    /// The component whose translator to run.
    #[arg(required_unless_present = "dump")]
    component: Option<String>,
    /// The profile (`.xml` or `.xml.gz`).
    #[arg(required_unless_present = "dump")]
    profile: Option<PathBuf>,
}

thread_local! {
    static OUT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Print to the buffered stdout (a line).
macro_rules! out {
    ($($t:tt)*) => {{
        OUT.with(|o| {
            let mut o = o.borrow_mut();
            o.push_str(&format!($($t)*));
            o.push('\n');
        })
    }};
}

/// Print to the buffered stdout (no newline).
macro_rules! outs {
    ($($t:tt)*) => {{ OUT.with(|o| o.borrow_mut().push_str(&format!($($t)*))) }};
}

/// Write the buffered output; a reader that went away (`| head`) is not an error.
fn flush(code: ExitCode) -> ExitCode {
    let text = OUT.with(|o| std::mem::take(&mut *o.borrow_mut()));
    match std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            eprintln!("monitor-test: cannot write the output: {e}");
            ExitCode::FAILURE
        }
        _ => code,
    }
}

fn main() -> ExitCode {
    if let Some(code) = monitor_runtime::worker::run_if_worker() {
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    let code = real_main();
    flush(code)
}

fn real_main() -> ExitCode {
    let args = Args::parse();
    monitor_compile::init_logging("warn");
    if let Some(file) = &args.dump {
        return match read_profile(file, Select::All) {
            Ok(p) => {
                out!("{}", p.machine);
                outs!("{}", dump(&p));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("monitor-test: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // clap guarantees both positionals when --dump is absent.
    let (Some(component), Some(file)) = (&args.component, &args.profile) else {
        return ExitCode::FAILURE;
    };
    let copies = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("monitor-test: cannot make a temporary directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    let found = match &args.libs {
        Some(dir) => from_libs(dir, component, copies.path(), args.in_process, args.timeout),
        None => monitor_compile::builtin_translators()
            .into_iter()
            .find(|t| t.component() == component)
            .inspect(|t| out!("# translator: {} {} (built in)", t.component(), t.version()))
            .ok_or_else(|| format!("no built-in translator for component {component} (use --libs DIR)")),
    };
    let mut translator = match found {
        Ok(t) => t,
        Err(e) => {
            eprintln!("monitor-test: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(translator.as_mut(), component, file) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("monitor-test: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The translator for `component` among the libraries in `dir`; says which library.
fn from_libs(
    dir: &std::path::Path,
    component: &str,
    copies: &std::path::Path,
    in_process: bool,
    timeout: u64,
) -> Result<Box<dyn Translator>, String> {
    let libs = find_libraries(&[dir.to_path_buf()]);
    if libs.is_empty() {
        return Err(format!("{}: no *.so translator libraries there", dir.display()));
    }
    // As the server runs it by default: in a worker process, so that a crash is
    // reported, not suffered.
    let settings = if in_process {
        None
    } else {
        let program = std::env::current_exe().map_err(|e| format!("cannot find monitor-test itself: {e}"))?;
        let mut s = WorkerSettings::new(program, copies.to_path_buf());
        s.call_timeout = std::time::Duration::from_secs(timeout.max(1));
        Some(s)
    };
    let mut problems = Vec::new();
    for lib in libs {
        // (translator, path, digest, build info, where it runs)
        let loaded = match &settings {
            Some(s) => load_in_worker(&lib, s).map(|t| {
                let about = (
                    t.path.clone(),
                    t.digest.clone(),
                    t.build_info.clone(),
                    ", in a worker process",
                );
                (Box::new(t) as Box<dyn Translator>, about)
            }),
            None => load(&lib, copies).map(|t| {
                let about = (t.path.clone(), t.digest.clone(), t.build_info.clone(), "");
                (Box::new(t) as Box<dyn Translator>, about)
            }),
        };
        match loaded {
            Ok((t, (path, digest, build_info, how))) if t.component() == component => {
                out!(
                    "# translator: {} {} from library {} (blake3 {digest}){how}",
                    t.component(),
                    t.version(),
                    path.display()
                );
                out!("# built with: {build_info}");
                return Ok(t);
            }
            Ok(_) => {}
            Err(e) => problems.push(e.to_string()),
        }
    }
    Err(no_library(dir, component, problems))
}

fn no_library(dir: &std::path::Path, component: &str, problems: Vec<String>) -> String {
    let mut msg = format!("{}: no library there serves component {component}", dir.display());
    for p in problems {
        msg.push_str(&format!("\n  {p}"));
    }
    msg
}

fn run(t: &mut dyn Translator, component: &str, file: &std::path::Path) -> Result<(), String> {
    let profile = read_profile(file, Select::Monitoring).map_err(|e| e.to_string())?;
    out!("# machine: {}", profile.machine);
    if !profile.monitored.iter().any(|c| c == component) {
        out!("# note: {component} is not listed in nagios_client.components of this profile");
    }
    let start = t.start_pass().map_err(|e| format!("start_pass: {e}"))?;
    start.check().map_err(|e| format!("start_pass output: {e}"))?;
    out!("\n## start_pass\n{}", start.render().trim_end());
    let empty = monitor_sdk::profile::Component::default();
    let comp = profile.component(component).unwrap_or(&empty);
    let mut ctx = Context::new(&profile.machine, component);
    let out = t
        .translate(&profile.machine, comp, &mut ctx)
        .map_err(|e| format!("{} {component}: translate: {e}", profile.machine))?;
    out.check()
        .map_err(|e| format!("{} {component}: unsafe output: {e}", profile.machine))?;
    out!("\n## translate\n{}", out.render().trim_end());
    let finish = t.finish_pass().map_err(|e| format!("finish_pass: {e}"))?;
    out!("\n## finish_pass\n{}", finish.render().trim_end());
    out!("\n## registrations");
    for r in ctx.registrations() {
        out!("{r}");
    }
    out!("\n## warnings");
    for w in ctx.warnings() {
        out!("{w}");
    }
    Ok(())
}
