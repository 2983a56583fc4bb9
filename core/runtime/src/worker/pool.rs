//! The workers of one library: started, asked, timed out, killed, described when they
//! die, started again after a backoff, and broken after [`MAX_DEATHS`] deaths in a row.

use super::*;

/// One running worker.
pub(super) struct Worker {
    pub(super) child: Child,
    pub(super) stdin: ChildStdin,
    pub(super) replies: Receiver<Incoming>,
}

impl Worker {
    /// Kill the worker (its process group: anything it started too) and reap it.
    pub(super) fn kill(mut self) -> Option<ExitStatus> {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.kill();
        self.child.wait().ok()
    }

    /// Reap a worker whose pipe closed: it has exited or is about to.
    pub(super) fn reap(mut self) -> Option<ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.kill()
    }
}

/// How a worker ended, in words.
pub fn describe(status: Option<ExitStatus>, memory_mb: u64) -> String {
    let Some(st) = status else {
        return "ended, and its status could not be read".into();
    };
    if let Some(sig) = st.signal() {
        let name = nix::sys::signal::Signal::try_from(sig)
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|_| format!("signal {sig}"));
        let why = match name.as_str() {
            "SIGSEGV" => " (segmentation fault)".to_string(),
            "SIGBUS" => " (bus error)".to_string(),
            "SIGILL" => " (illegal instruction)".to_string(),
            "SIGFPE" => " (arithmetic fault)".to_string(),
            "SIGABRT" if memory_mb > 0 => format!(
                " (aborted: a failed allocation under the {memory_mb} MiB memory limit, a stack overflow or abort())"
            ),
            "SIGABRT" => " (aborted)".to_string(),
            "SIGXCPU" => " (over its CPU time limit)".to_string(),
            "SIGKILL" => " (killed)".to_string(),
            _ => String::new(),
        };
        return format!("was killed by {name}{why}");
    }
    match st.code() {
        Some(code) => format!("exited with status {code}"),
        None => "ended".into(),
    }
}

/// The pool of workers of one library.
pub(super) struct Pool {
    pub(super) path: PathBuf,
    /// The library's digest: its workers load its content-addressed copy.
    pub(super) digest: String,
    pub(super) settings: WorkerSettings,
    pub(super) slots: Vec<Mutex<Option<Worker>>>,
    pub(super) next: AtomicUsize,
    /// Consecutive deaths (a call answered resets it).
    pub(super) deaths: AtomicU32,
    /// Set after [`MAX_DEATHS`] deaths in a row: why.
    pub(super) broken: Mutex<Option<String>>,
    /// No worker is started before this (the backoff after a death).
    pub(super) not_before: Mutex<Option<Instant>>,
}

/// The level of the host's most verbose enabled event, as the worker's `--log-level`.
pub(super) fn host_log_level() -> u32 {
    tracing::level_filters::LevelFilter::current()
        .into_level()
        .map(monitor_sdk::plugin::guest::abi_level)
        .unwrap_or(0)
}

/// Start a worker for `path`; its first message is returned with it.
pub(super) fn spawn(path: &Path, digest: &str, s: &WorkerSettings) -> Result<(Worker, FromWorker), String> {
    let args = WorkerArgs {
        library: path.to_path_buf(),
        digest: digest.to_string(),
        copy_dir: s.copy_dir.clone(),
        log_level: host_log_level(),
        memory_mb: s.memory_mb,
        cpu_seconds: s.cpu_seconds,
    };
    let mut child = Command::new(&s.program)
        .arg(WORKER_ARG)
        .args(args.to_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // Its own process group: a signal to the daemon's group does not reach it, and
        // killing it kills what it started.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the worker {}: {e}", s.program.display()))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        return Err("the worker has no pipes".into());
    };
    let (tx, rx) = channel();
    let library = path.to_path_buf();
    let reader = std::thread::Builder::new()
        .name("translator-worker".into())
        .spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let incoming = match read_raw(&mut r) {
                    Ok(Some((frame::JSON, body))) => match frame::decode::<FromWorker>(frame::JSON, &body) {
                        Ok(FromWorker::Log { level, target, message }) => {
                            crate::plugin_host::log_plugin_event(Some(&library), level, &target, &message);
                            continue;
                        }
                        Ok(m) => Incoming::Message(m),
                        Err(e) => Incoming::Bad(e.to_string()),
                    },
                    Ok(Some((frame::RESPONSE, body))) if body.len() >= 4 => {
                        let code = i32::from_le_bytes([body[0], body[1], body[2], body[3]]);
                        Incoming::Response(code, body[4..].to_vec())
                    }
                    Ok(Some((kind, _))) => Incoming::Bad(format!("a malformed message: a frame of kind {kind}")),
                    // The worker ended: the host sees the channel close.
                    Ok(None) => return,
                    Err(e) => Incoming::Bad(e.to_string()),
                };
                let stop = matches!(incoming, Incoming::Bad(_));
                if tx.send(incoming).is_err() || stop {
                    return;
                }
            }
        });
    if let Err(e) = reader {
        let _ = child.kill();
        return Err(format!("cannot start the worker's reader: {e}"));
    }
    let w = Worker {
        child,
        stdin,
        replies: rx,
    };
    match w.replies.recv_timeout(s.pass_timeout) {
        Ok(Incoming::Message(first)) => Ok((w, first)),
        Ok(Incoming::Response(..)) => {
            w.kill();
            Err("answered before it was asked, and was killed".into())
        }
        Ok(Incoming::Bad(malformed)) => {
            let st = w.kill();
            Err(format!(
                "sent {malformed} while loading; it {}",
                describe(st, s.memory_mb)
            ))
        }
        Err(RecvTimeoutError::Timeout) => {
            w.kill();
            Err(format!(
                "did not finish loading within {} s and was killed",
                s.pass_timeout.as_secs()
            ))
        }
        Err(RecvTimeoutError::Disconnected) => {
            let st = w.reap();
            Err(format!("{} while loading", describe(st, s.memory_mb)))
        }
    }
}

impl Pool {
    pub(super) fn broken(&self) -> Option<String> {
        self.broken.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Record a death; returns the error for the call in flight.
    pub(super) fn died(&self, why: String) -> String {
        let n = self.deaths.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::error!(library = %self.path.display(), deaths = n, "translator worker {why}");
        if n >= MAX_DEATHS {
            let reason = format!("its worker died {n} times in a row; the last time it {why}");
            *self.broken.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
        } else {
            // 0.5 s, 1 s, ...: no storm of restarts against a library that keeps dying.
            let backoff = Duration::from_millis(250 << n.min(8));
            *self.not_before.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + backoff);
        }
        format!("the translator's worker {why}")
    }

    /// A worker of the pool, started if need be, taken out of its slot (put it back
    /// with [`Pool::give_back`] when it answered).
    pub(super) fn take(&self) -> Result<(std::sync::MutexGuard<'_, Option<Worker>>, Worker), String> {
        if let Some(why) = self.broken() {
            return Err(format!("the translator library is broken: {why}"));
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[i].lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = slot.take() {
            return Ok((slot, w));
        }
        let wait = self
            .not_before
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or_default();
        std::thread::sleep(wait);
        match spawn(&self.path, &self.digest, &self.settings) {
            Ok((w, FromWorker::Loaded { .. })) => Ok((slot, w)),
            Ok((w, other)) => {
                w.kill();
                Err(self.died(format!("answered {other:?} when started again")))
            }
            Err(why) => Err(self.died(why)),
        }
    }

    /// The next reply of `w`, or why there is none (the worker is then gone).
    pub(super) fn reply(&self, w: Worker, timeout: Duration) -> Result<(Worker, Result<Reply, String>), String> {
        match w.replies.recv_timeout(timeout) {
            Ok(Incoming::Response(code, bytes)) => {
                self.deaths.store(0, Ordering::SeqCst);
                let r = decode_response(code, &bytes).map_err(|e| match e {
                    CallError::Translate(t) => t.to_string(),
                    other => other.to_string(),
                });
                Ok((w, r))
            }
            Ok(Incoming::Message(other)) => {
                w.kill();
                Err(self.died(format!("sent {other:?} instead of a reply and was killed")))
            }
            Ok(Incoming::Bad(malformed)) => {
                w.kill();
                Err(self.died(format!("sent {malformed} and was killed")))
            }
            Err(RecvTimeoutError::Timeout) => {
                w.kill();
                Err(self.died(format!(
                    "did not answer within {} s and was killed",
                    timeout.as_secs_f64()
                )))
            }
            Err(RecvTimeoutError::Disconnected) => {
                let st = w.reap();
                Err(self.died(describe(st, self.settings.memory_mb)))
            }
        }
    }

    /// Send `message` to `w` in one write, or say why it could not be (the worker is
    /// then gone).
    pub(super) fn send(&self, w: &mut Worker, message: Outgoing<'_>) -> Result<(), String> {
        use std::io::Write;
        let mut buf = Vec::new();
        let framed = match message {
            Outgoing::Calls(calls) => calls
                .iter()
                .try_for_each(|c| frame::push_frame(&mut buf, frame::CALL, &[&[entry_of(c)], &encode_request(c)])),
            Outgoing::Unchanged(machines) => serde_json::to_vec(&ToWorker::Unchanged(machines))
                .map_err(std::io::Error::other)
                .and_then(|body| frame::push_frame(&mut buf, frame::JSON, &[&body])),
        };
        framed
            .and_then(|()| w.stdin.write_all(&buf))
            .and_then(|()| w.stdin.flush())
            .map_err(|e| format!("{e}"))
    }

    /// One round trip on a worker of the pool, started if need be.
    pub(super) fn call(&self, message: Outgoing<'_>, timeout: Duration) -> Result<Reply, String> {
        let (mut slot, mut w) = self.take()?;
        if let Err(e) = self.send(&mut w, message) {
            let st = w.reap();
            return Err(self.died(format!(
                "could not be written to ({e}); it {}",
                describe(st, self.settings.memory_mb)
            )));
        }
        let (w, r) = self.reply(w, timeout)?;
        *slot = Some(w);
        r
    }

    /// `translate` calls in one round trip: the worker answers each in turn. When it dies
    /// on one, that one fails with how it died, and the rest go to a worker started
    /// again; so each call fails only for its own machine.
    pub(super) fn call_batch(&self, calls: &[Call], timeout: Duration) -> Vec<Result<Reply, String>> {
        let mut out = Vec::with_capacity(calls.len());
        while out.len() < calls.len() {
            let rest = &calls[out.len()..];
            let (mut slot, mut w) = match self.take() {
                Ok(t) => t,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            if let Err(e) = self.send(&mut w, Outgoing::Calls(rest)) {
                let st = w.reap();
                out.push(Err(self.died(format!(
                    "could not be written to ({e}); it {}",
                    describe(st, self.settings.memory_mb)
                ))));
                continue;
            }
            let mut alive = Some(w);
            for _ in rest {
                // Invariant: `alive` holds the worker until it fails, and then the loop ends.
                let Some(w) = alive.take() else { break };
                match self.reply(w, timeout) {
                    Ok((w, r)) => {
                        out.push(r);
                        alive = Some(w);
                    }
                    Err(why) => {
                        out.push(Err(why));
                        break;
                    }
                }
            }
            if let Some(w) = alive {
                *slot = Some(w);
            }
        }
        out
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for slot in &self.slots {
            if let Some(w) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                w.kill();
            }
        }
    }
}
