//! What a pass reports: the problems, with the file, machine, component, line and
//! element they concern, the pass summary, and each (machine, component)'s outcome.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::layout::Output;
use crate::users::UsersError;

/// A failure that stops the whole pass (nothing is written).
#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Users(#[from] UsersError),
}

/// One problem, attributed as precisely as possible: for a profile that could not be
/// read, also the line, column and element path, as fields of the JSON report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub element: Option<String>,
    pub message: String,
}

impl Problem {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            ..Problem::default()
        }
    }
    pub(crate) fn at(mut self, at: Option<&crate::cache::ErrorAt>) -> Self {
        if let Some(a) = at {
            self.line = a.line;
            self.column = a.column;
            self.element = a.element.clone();
        }
        self
    }
    pub(crate) fn file(mut self, f: &Path) -> Self {
        self.file = Some(f.to_path_buf());
        self
    }
    pub(crate) fn machine(mut self, m: &str) -> Self {
        self.machine = Some(m.to_string());
        self
    }
    pub(crate) fn component(mut self, c: &str) -> Self {
        self.component = Some(c.to_string());
        self
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(m) = &self.machine {
            parts.push(m.clone());
        }
        if let Some(c) = &self.component {
            parts.push(c.clone());
        }
        if let Some(file) = &self.file
            && !self.message.starts_with(&file.display().to_string())
        {
            parts.push(file.display().to_string());
        }
        if parts.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "[{}] {}", parts.join(" "), self.message)
        }
    }
}

/// What a pass did, for the summary and for `--format json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PassReport {
    /// Profile files seen.
    pub files: usize,
    /// Monitored machines in the output.
    pub machines: usize,
    /// Services in the output.
    pub services: usize,
    /// Profiles parsed in this pass.
    pub parsed: usize,
    /// `translate` calls in this pass.
    pub translated: usize,
    /// Files reused from the cache without parsing.
    pub cache_hits: usize,
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
    /// Listed components that no translator serves.
    pub unknown_components: Vec<Problem>,
    /// How the configuration was assembled in this pass.
    #[serde(default)]
    pub assembly: Assembly,
    /// Where the pass's time went: its phases (wall time), the CPU time of the parallel
    /// `files` phase split by step and summed over threads (`files cpu: …`), and for a
    /// full assembly its phases (`assembly: …`). For the benchmark and `status.json`
    /// (where the daemon's own `phases` are beside it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pass_phases: Vec<PhaseTime>,
}

/// One phase of a pass and its time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseTime {
    pub phase: String,
    pub ms: f64,
}

/// How a pass assembled its configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Assembly {
    /// From every machine: the first pass, or a change the incremental path cannot take.
    #[default]
    Full,
    /// The last pass's assembly patched with the changed machines only.
    Incremental,
    /// Nothing the assembly depends on changed: the last one stands as it is.
    Reused,
}

/// How one monitored (machine, component) fared in a pass: reported to Nagios on its
/// `monitoring: <component>` service by the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub file: PathBuf,
    pub machine: String,
    pub component: String,
    /// The errors for this machine and component (or for the whole machine), if any.
    pub errors: Vec<String>,
    /// True when the error is that the profile could not be read.
    pub profile_error: bool,
}

/// The description of the status service of `component`.
pub fn status_service_description(component: &str) -> String {
    format!("monitoring: {component}")
}

/// The result of one pass.
#[derive(Debug)]
pub struct PassResult {
    pub output: Output,
    pub report: PassReport,
    /// Profile files whose cache entry changed or went away in this pass.
    pub changed_files: Vec<PathBuf>,
}

/// Debug timings of the assembly's phases (`RUST_LOG=monitor_engine=debug`).
pub(crate) struct Phases {
    pub(crate) last: std::time::Instant,
    pub(crate) marks: Vec<(&'static str, f64)>,
}

impl Phases {
    pub(crate) fn start() -> Self {
        Phases {
            last: std::time::Instant::now(),
            marks: Vec::new(),
        }
    }

    pub(crate) fn mark(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.marks.push((name, (now - self.last).as_secs_f64() * 1000.0));
        self.last = now;
    }

    /// The marks as phase times, each name after `prefix`.
    pub(crate) fn times(&self, prefix: &str) -> Vec<PhaseTime> {
        self.marks
            .iter()
            .map(|(n, ms)| PhaseTime {
                phase: format!("{prefix}{n}"),
                ms: *ms,
            })
            .collect()
    }

    pub(crate) fn log(&self, what: &str) {
        let marks: Vec<String> = self.marks.iter().map(|(n, ms)| format!("{n} {ms:.1}")).collect();
        tracing::debug!("{what} phases (ms): {}", marks.join(", "));
    }
}
