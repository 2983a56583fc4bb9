//! Plugin libraries out of harm's way: each library is loaded in worker processes of its
//! own, which speak the plugin protocol over pipes ([`frame`]), so that a library that
//! crashes, hangs, runs out of memory or scribbles over its memory ends its worker and
//! never the daemon.
//!
//! The host side is [`WorkerTranslator`], a [`Translator`] over a small pool of workers
//! ([`WorkerSettings::workers`] per library). A call that outlives its timeout kills its
//! worker. When a worker dies, the call in flight is an error for that (machine,
//! component) only, and the worker is started again, after a backoff, for the next call.
//! A library whose worker dies [`MAX_DEATHS`] times in a row is broken: every later call
//! fails at once, naming the last death, and the daemon reports the library broken until
//! its file changes. The worker side is [`serve`].

pub mod frame;
mod pool;
pub mod serve;

pub use pool::describe;
use pool::*;

use std::io::BufReader;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use monitor_sdk::nagios::Bundle;
use monitor_sdk::plugin::protocol::{Call, CallError, Reply};
use monitor_sdk::profile::Component;
use monitor_sdk::translator::{Context, TranslateError, Translator};

use crate::plugin_host::{
    LoadError, bundle_of, decode_response, encode_request, entry_of, place_copy, read_hashed, translate_call,
    translated,
};
use frame::read_raw;
pub use serve::{WORKER_ARG, WorkerArgs, run_if_worker};

/// A library whose worker dies this many times in a row is broken.
pub const MAX_DEATHS: u32 = 3;

/// What the host sends a worker as a JSON frame (calls go as [`frame::CALL`] frames).
#[derive(Debug, Serialize, Deserialize)]
pub enum ToWorker {
    /// `notify_unchanged` for each of these machines, in one round trip: answered by one
    /// [`frame::RESPONSE`].
    Unchanged(Vec<String>),
}

/// What a worker sends its host.
#[derive(Debug, Serialize, Deserialize)]
pub enum FromWorker {
    /// The library loaded: its identity.
    Loaded {
        /// The component it serves.
        component: String,
        /// Its version.
        version: String,
        /// The declaration's translator name.
        name: String,
        /// The declaration's build information.
        build_info: String,
        /// blake3 of the library file, hex.
        digest: String,
        /// Whether it is translated on every pass.
        always_run: bool,
    },
    /// The library could not be loaded.
    LoadFailed {
        /// Why, naming the library.
        message: String,
    },
    /// One of the plugin's log events, already filtered by level in the worker.
    Log {
        /// 1 (error) to 5 (trace).
        level: u32,
        /// The event's target in the plugin.
        target: String,
        /// The message and its fields.
        message: String,
    },
}

/// What the reader thread hands the calling thread.
enum Incoming {
    /// A JSON message (the worker's identity).
    Message(FromWorker),
    /// A call's answer: the library's status and response bytes.
    Response(i32, Vec<u8>),
    /// A malformed stream: why.
    Bad(String),
}

/// What the host sends one worker.
enum Outgoing<'a> {
    /// Protocol calls, answered in turn.
    Calls(&'a [Call]),
    /// A batch of `notify_unchanged`.
    Unchanged(Vec<String>),
}

/// How plugin workers are run. The defaults are documented in docs/daemon.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSettings {
    /// The program started as a worker (a monitor-compile binary: it serves when its
    /// first argument is [`WORKER_ARG`]).
    pub program: PathBuf,
    /// Where the workers put the libraries' content-addressed copies.
    pub copy_dir: PathBuf,
    /// Workers per library.
    pub workers: usize,
    /// The wall-clock time one `translate` or `notify_unchanged` call may take.
    pub call_timeout: Duration,
    /// The wall-clock time loading, `start_pass` or `finish_pass` may take.
    pub pass_timeout: Duration,
    /// Each worker's address-space limit, in MiB (0: none).
    pub memory_mb: u64,
    /// The CPU time one call may take, in seconds (0: none).
    pub cpu_seconds: u64,
}

impl WorkerSettings {
    /// The defaults, with `program` as the worker and `copy_dir` for the copies.
    pub fn new(program: PathBuf, copy_dir: PathBuf) -> Self {
        WorkerSettings {
            program,
            copy_dir,
            workers: 2,
            call_timeout: Duration::from_secs(30),
            pass_timeout: Duration::from_secs(120),
            memory_mb: 2048,
            cpu_seconds: 60,
        }
    }
}

/// A translator whose plugin library runs in worker processes.
pub struct WorkerTranslator {
    pool: Arc<Pool>,
    component: String,
    version: String,
    /// The declaration's translator name (the plugin's package name).
    pub name: String,
    /// The declaration's build information.
    pub build_info: String,
    /// The file it was loaded from.
    pub path: PathBuf,
    /// blake3 of the library file, hex.
    pub digest: String,
    always_run: bool,
    /// Machines whose `notify_unchanged` is sent in one round trip before `finish_pass`.
    unchanged: Mutex<Vec<String>>,
}

impl std::fmt::Debug for WorkerTranslator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerTranslator")
            .field("component", &self.component)
            .field("version", &self.version)
            .field("path", &self.path)
            .field("digest", &self.digest)
            .finish()
    }
}

/// Load the library at `path` in a worker: its identity, or why it cannot serve.
pub fn load_in_worker(path: &Path, settings: &WorkerSettings) -> Result<WorkerTranslator, LoadError> {
    let (bytes, digest) = read_hashed(path)?;
    place_copy(path, &bytes, &digest, &settings.copy_dir)?;
    load_placed_in_worker(path, &digest, settings)
}

/// Load the library read from `path`, whose copy [`place_copy`] put in place for
/// `digest`, in a worker.
pub fn load_placed_in_worker(
    path: &Path,
    digest: &str,
    settings: &WorkerSettings,
) -> Result<WorkerTranslator, LoadError> {
    let err = |message: String| LoadError::Worker {
        path: path.to_path_buf(),
        message,
    };
    let (worker, first) =
        spawn(path, digest, settings).map_err(|why| err(format!("{}: its worker {why}", path.display())))?;
    let FromWorker::Loaded {
        component,
        version,
        name,
        build_info,
        digest,
        always_run,
    } = first
    else {
        worker.kill();
        return Err(match first {
            FromWorker::LoadFailed { message } => err(message),
            other => err(format!(
                "{}: its worker sent {other:?} instead of its identity",
                path.display()
            )),
        });
    };
    let n = settings.workers.max(1);
    let mut slots: Vec<Mutex<Option<Worker>>> = (1..n).map(|_| Mutex::new(None)).collect();
    slots.insert(0, Mutex::new(Some(worker)));
    tracing::info!(%component, %version, path = %path.display(), %digest, workers = n, "translator plugin loaded in worker processes");
    Ok(WorkerTranslator {
        pool: Arc::new(Pool {
            path: path.to_path_buf(),
            digest: digest.to_string(),
            settings: settings.clone(),
            slots,
            next: AtomicUsize::new(0),
            deaths: AtomicU32::new(0),
            broken: Mutex::new(None),
            not_before: Mutex::new(None),
        }),
        component,
        version,
        name,
        build_info,
        path: path.to_path_buf(),
        digest,
        always_run,
        unchanged: Mutex::new(Vec::new()),
    })
}

impl WorkerTranslator {
    /// Why the library is broken, once its worker died [`MAX_DEATHS`] times in a row.
    pub fn broken(&self) -> Option<String> {
        self.pool.broken()
    }

    /// A handle that says whether the library broke, for after the translator is handed
    /// to the engine.
    pub fn health(&self) -> WorkerHealth {
        WorkerHealth(self.pool.clone())
    }

    fn flush_unchanged(&self) -> Result<(), String> {
        let machines = std::mem::take(&mut *self.unchanged.lock().unwrap_or_else(|e| e.into_inner()));
        if machines.is_empty() {
            return Ok(());
        }
        self.pool
            .call(Outgoing::Unchanged(machines), self.pool.settings.pass_timeout)
            .map(|_| ())
    }

    fn pass_hook(&self, call: Call) -> Result<Bundle, TranslateError> {
        let reply = self
            .pool
            .call(
                Outgoing::Calls(std::slice::from_ref(&call)),
                self.pool.settings.pass_timeout,
            )
            .map_err(TranslateError::Other)?;
        bundle_of(Ok(reply))
    }
}

/// Says whether a worker library broke.
#[derive(Clone)]
pub struct WorkerHealth(Arc<Pool>);

impl WorkerHealth {
    /// The library.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// Why it is broken, if it is.
    pub fn broken(&self) -> Option<String> {
        self.0.broken()
    }
}

impl Translator for WorkerTranslator {
    fn component(&self) -> &str {
        &self.component
    }

    fn version(&self) -> &str {
        &self.version
    }

    fn start_pass(&mut self) -> Result<Bundle, TranslateError> {
        self.unchanged.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.pass_hook(Call::StartPass)
    }

    fn translate(&self, machine: &str, component: &Component, ctx: &mut Context) -> Result<Bundle, TranslateError> {
        let call = translate_call(machine, component);
        let reply = self.pool.call(
            Outgoing::Calls(std::slice::from_ref(&call)),
            self.pool.settings.call_timeout,
        );
        match reply {
            Ok(r) => translated(Ok(r), ctx),
            Err(e) => Err(TranslateError::Other(e)),
        }
    }

    fn batches(&self) -> bool {
        true
    }

    fn translate_batch(&self, items: &[(&str, &Component)]) -> Vec<(Result<Bundle, TranslateError>, Context)> {
        let calls: Vec<Call> = items.iter().map(|(m, c)| translate_call(m, c)).collect();
        let replies = self.pool.call_batch(&calls, self.pool.settings.call_timeout);
        items
            .iter()
            .zip(replies)
            .map(|((machine, _), reply)| {
                let mut ctx = Context::new(machine, &self.component);
                let result = match reply {
                    Ok(r) => translated(Ok(r), &mut ctx),
                    Err(e) => Err(TranslateError::Other(e)),
                };
                (result, ctx)
            })
            .collect()
    }

    fn notify_unchanged(&self, machine: &str) {
        self.unchanged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(machine.to_string());
    }

    fn finish_pass(&mut self) -> Result<Bundle, TranslateError> {
        if let Err(e) = self.flush_unchanged() {
            tracing::warn!(component = %self.component, error = %e, "notify_unchanged failed");
        }
        self.pass_hook(Call::FinishPass)
    }

    fn always_run(&self) -> bool {
        self.always_run
    }
}
