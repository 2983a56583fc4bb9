//! The worker process: it loads one plugin library and answers its host's calls over
//! stdin and stdout, so that whatever the library does (a segfault, an abort, a stack
//! overflow, an endless loop, a runaway allocation, garbage on the pipe) ends this
//! process and never the daemon.
//!
//! Before it loads the library the worker:
//! - closes every inherited file descriptor but its pipes (0, 1, 2), and moves its pipe
//!   to the host off standard output, which becomes standard error: what a library prints
//!   goes to the daemon's log, not into the protocol;
//! - asks the kernel to kill it when its parent dies (`PR_SET_PDEATHSIG`);
//! - sets `PR_SET_NO_NEW_PRIVS`, so that nothing it runs can gain privileges;
//! - limits its address space (`RLIMIT_AS`): the library may map the configured memory
//!   on top of what the worker maps before loading it;
//! - limits each call's CPU time (`RLIMIT_CPU`, moved on before each call), so that an
//!   endless loop is ended by `SIGXCPU` even if the host's wall-clock timeout is long.
//!
//! The plugin's `tracing` events are filtered here, at the host's level, and cross as
//! [`FromWorker::Log`] frames.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use monitor_sdk::plugin::abi::status;
use monitor_sdk::plugin::guest::{Forwarder, tracing_level};
use monitor_sdk::plugin::protocol::{Call, CallError, PROTOCOL_VERSION, Reply, Response};

use super::frame::{self, read_raw, write_frame};
use super::{FromWorker, ToWorker};
use crate::plugin_host::load_placed;

/// The first argument that makes a monitor-compile binary a translator worker.
pub const WORKER_ARG: &str = "__translator-worker";

/// What a worker is started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerArgs {
    /// The plugin library (its name in messages).
    pub library: PathBuf,
    /// Its digest: the worker loads `COPY_DIR/<digest>.so`, which the host put there.
    pub digest: String,
    /// Where its content-addressed copy goes.
    pub copy_dir: PathBuf,
    /// The most verbose level of the plugin's log events that cross: 1 (error) to 5 (trace).
    pub log_level: u32,
    /// The address-space limit, in MiB (0: none).
    pub memory_mb: u64,
    /// The CPU time one call may take, in seconds (0: none).
    pub cpu_seconds: u64,
}

impl WorkerArgs {
    /// The command-line arguments after [`WORKER_ARG`].
    pub fn to_args(&self) -> Vec<OsString> {
        vec![
            "--library".into(),
            self.library.clone().into(),
            "--digest".into(),
            self.digest.clone().into(),
            "--copy-dir".into(),
            self.copy_dir.clone().into(),
            "--log-level".into(),
            self.log_level.to_string().into(),
            "--memory-mb".into(),
            self.memory_mb.to_string().into(),
            "--cpu-seconds".into(),
            self.cpu_seconds.to_string().into(),
        ]
    }

    fn parse(args: impl Iterator<Item = OsString>) -> Result<Self, String> {
        let mut a = WorkerArgs {
            library: PathBuf::new(),
            digest: String::new(),
            copy_dir: PathBuf::new(),
            log_level: 3,
            memory_mb: 0,
            cpu_seconds: 0,
        };
        let mut args = args.peekable();
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag:?} needs a value"))?;
            let number = || {
                value
                    .to_str()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| format!("{flag:?}: not a number"))
            };
            match flag.to_str() {
                Some("--library") => a.library = value.clone().into(),
                Some("--digest") => a.digest = value.to_str().ok_or("--digest: not UTF-8")?.to_string(),
                Some("--copy-dir") => a.copy_dir = value.clone().into(),
                Some("--log-level") => a.log_level = number()? as u32,
                Some("--memory-mb") => a.memory_mb = number()?,
                Some("--cpu-seconds") => a.cpu_seconds = number()?,
                _ => return Err(format!("unknown argument {flag:?}")),
            }
        }
        if a.library.as_os_str().is_empty() || a.copy_dir.as_os_str().is_empty() || a.digest.is_empty() {
            return Err("--library, --digest and --copy-dir are required".into());
        }
        Ok(a)
    }
}

/// When this process was started as a translator worker (its first argument is
/// [`WORKER_ARG`]), serve its host and return the exit code; otherwise `None`. Call it
/// first thing in `main`.
pub fn run_if_worker() -> Option<i32> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != WORKER_ARG {
        return None;
    }
    Some(match WorkerArgs::parse(args) {
        Ok(a) => serve(&a),
        Err(e) => {
            eprintln!("translator worker: {e}");
            2
        }
    })
}

/// The worker's side of its pipe to the host, buffered: flushed whenever the worker is
/// about to wait for the host (so a batch's answers go in few writes).
type Out = Arc<Mutex<std::io::BufWriter<std::fs::File>>>;

fn send(out: &Out, message: &FromWorker) -> bool {
    // A poisoned lock only means a panic elsewhere while writing: the pipe is what it is.
    let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
    write_frame(&mut *o, message).is_ok()
}

fn flush(out: &Out) -> bool {
    out.lock().unwrap_or_else(|e| e.into_inner()).flush().is_ok()
}

/// Send a call's answer: the library's status and its response bytes, as they are.
fn send_response(out: &Out, code: i32, bytes: &[u8]) -> bool {
    let mut buf = Vec::new();
    if frame::push_frame(&mut buf, frame::RESPONSE, &[&code.to_le_bytes(), bytes]).is_err() {
        return false;
    }
    let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
    o.write_all(&buf).is_ok()
}

/// A response the worker makes itself (to a batch, or for a call the library could not
/// be asked).
fn own_response(result: Result<Reply, CallError>) -> (i32, Vec<u8>) {
    let code = if result.is_ok() { status::OK } else { status::ERROR };
    let response = Response {
        protocol: PROTOCOL_VERSION,
        result,
    };
    // Invariant: a Response always serializes (plain data).
    (code, serde_json::to_vec(&response).unwrap_or_default())
}

/// Close every file descriptor above 2: the worker keeps only its pipes.
fn close_inherited_fds() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // The directory's own descriptor is among them and already closed: EBADF.
        let _ = nix::unistd::close(fd);
    }
}

/// The process's address space now (`VmSize`), in bytes.
fn own_address_space() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmSize:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn confine(a: &WorkerArgs) -> Result<(), String> {
    use nix::sys::resource::{Resource, setrlimit};
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| format!("PR_SET_NO_NEW_PRIVS: {e}"))?;
    if a.memory_mb > 0 {
        // On top of what the worker itself maps before the library (its allocator
        // reserves address space up front): the limit is what the library may add.
        let bytes = own_address_space().saturating_add(a.memory_mb.saturating_mul(1 << 20));
        setrlimit(Resource::RLIMIT_AS, bytes, bytes).map_err(|e| format!("RLIMIT_AS: {e}"))?;
    }
    Ok(())
}

/// Let the next call use `cpu_seconds` of CPU time from now: the soft `RLIMIT_CPU` moves
/// on (the hard limit stays, so it can move again).
fn limit_call_cpu(cpu_seconds: u64) {
    use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage, setrlimit};
    if cpu_seconds == 0 {
        return;
    }
    let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else {
        return;
    };
    let used = (usage.user_time().tv_sec() + usage.system_time().tv_sec()).max(0) as u64;
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_CPU) {
        let soft = (used + cpu_seconds + 1).min(hard);
        let _ = setrlimit(Resource::RLIMIT_CPU, soft, hard);
    }
}

/// The pipe to the host, moved off standard output, which becomes standard error: what
/// a library prints cannot end up in the protocol.
fn host_pipe() -> std::io::Result<std::fs::File> {
    let pipe = nix::unistd::dup(std::io::stdout())?;
    nix::unistd::dup2_stdout(std::io::stderr())?;
    Ok(std::fs::File::from(pipe))
}

fn serve(a: &WorkerArgs) -> i32 {
    close_inherited_fds();
    let pipe = match host_pipe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("translator worker: cannot set up its pipe: {e}");
            return 1;
        }
    };
    let out: Out = Arc::new(Mutex::new(std::io::BufWriter::with_capacity(1 << 16, pipe)));
    if let Err(e) = confine(a) {
        send(
            &out,
            &FromWorker::LoadFailed {
                message: format!("the worker could not confine itself: {e}"),
            },
        );
        flush(&out);
        return 1;
    }
    // The plugin's (and the loader's) events, at or above the host's level only.
    let log_out = out.clone();
    let _ = tracing::subscriber::set_global_default(Forwarder::new(
        tracing_level(a.log_level),
        move |level, target, message| {
            send(
                &log_out,
                &FromWorker::Log {
                    level,
                    target: target.to_string(),
                    message: message.to_string(),
                },
            );
        },
    ));
    let translator = match load_placed(&a.library, a.digest.clone(), &a.copy_dir) {
        Ok(t) => t,
        Err(e) => {
            send(&out, &FromWorker::LoadFailed { message: e.to_string() });
            flush(&out);
            return 0;
        }
    };
    use monitor_sdk::translator::Translator;
    let loaded = FromWorker::Loaded {
        component: translator.component().to_string(),
        version: translator.version().to_string(),
        name: translator.name.clone(),
        build_info: translator.build_info.clone(),
        digest: translator.digest.clone(),
        always_run: translator.always_run(),
    };
    if !send(&out, &loaded) || !flush(&out) {
        return 1;
    }
    let mut input = std::io::BufReader::with_capacity(1 << 16, std::io::stdin().lock());
    loop {
        // About to wait for the host: everything answered so far goes first.
        if input.buffer().is_empty() && !flush(&out) {
            return 1;
        }
        let (kind, body) = match read_raw(&mut input) {
            Ok(Some(f)) => f,
            // The host closed the pipe: it is done with this worker.
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("translator worker: {e}");
                return 1;
            }
        };
        let (code, bytes) = match kind {
            frame::CALL => {
                let Some((entry, request)) = body.split_first() else {
                    eprintln!("translator worker: an empty call");
                    return 1;
                };
                limit_call_cpu(a.cpu_seconds);
                match translator.call_bytes(*entry, request) {
                    Ok(answer) => answer,
                    Err(e) => own_response(Err(e)),
                }
            }
            frame::JSON => match frame::decode::<ToWorker>(kind, &body) {
                Ok(ToWorker::Unchanged(machines)) => {
                    limit_call_cpu(a.cpu_seconds);
                    for machine in machines {
                        let _ = translator.call_raw(Call::NotifyUnchanged { machine });
                    }
                    own_response(Ok(Reply::Done))
                }
                Err(e) => {
                    eprintln!("translator worker: {e}");
                    return 1;
                }
            },
            other => {
                eprintln!("translator worker: a frame of kind {other}");
                return 1;
            }
        };
        if !send_response(&out, code, &bytes) {
            return 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_arguments_round_trip() {
        let a = WorkerArgs {
            library: "/usr/lib/monitor-compile/translators/jabberd.so".into(),
            digest: "d8ea7f4199e74ed234e7bdb9ffae66d620d35fe4c4d46ab9202e3bc8d1d748f2".into(),
            copy_dir: "/var/lib/monitor-compile/plugins".into(),
            log_level: 4,
            memory_mb: 1024,
            cpu_seconds: 30,
        };
        assert_eq!(WorkerArgs::parse(a.to_args().into_iter()).unwrap(), a);
        assert!(WorkerArgs::parse(vec!["--library".into()].into_iter()).is_err());
        assert!(WorkerArgs::parse(vec!["--bogus".into(), "1".into()].into_iter()).is_err());
    }
}
