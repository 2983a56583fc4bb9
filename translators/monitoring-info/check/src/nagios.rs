//! Nagios plugin output: one line `PREFIX STATUS - message[|perfdata]` and the exit code
//! (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN). The line is printed once per process, by the
//! check or by the timeout watchdog, whichever comes first; secrets registered with
//! [`add_secret`] are replaced in it.

use std::io::Write;
use std::sync::Mutex;

/// A plugin status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// 0.
    Ok,
    /// 1 (no check of ours warns today: each problem it finds is CRITICAL).
    #[allow(dead_code)]
    Warning,
    /// 2.
    Critical,
    /// 3.
    Unknown,
}

impl Status {
    /// The exit code.
    pub fn code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    /// The word of the output line.
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The status.
    pub status: Status,
    /// The text (one line once printed).
    pub message: String,
    /// Performance data, without the `|`.
    pub perfdata: String,
}

impl Outcome {
    /// An outcome.
    pub fn new(status: Status, message: impl Into<String>) -> Outcome {
        Outcome {
            status,
            message: message.into(),
            perfdata: String::new(),
        }
    }

    /// OK.
    pub fn ok(message: impl Into<String>) -> Outcome {
        Outcome::new(Status::Ok, message)
    }

    /// CRITICAL.
    pub fn critical(message: impl Into<String>) -> Outcome {
        Outcome::new(Status::Critical, message)
    }

    /// UNKNOWN.
    pub fn unknown(message: impl Into<String>) -> Outcome {
        Outcome::new(Status::Unknown, message)
    }

    /// With performance data.
    pub fn perf(mut self, perfdata: impl Into<String>) -> Outcome {
        self.perfdata = perfdata.into();
        self
    }
}

/// A check's result: its outcome, or the outcome that stopped it (`?` works on both).
pub type Check = Result<Outcome, Outcome>;

struct Reporter {
    prefix: String,
    secrets: Vec<String>,
}

static REPORTER: Mutex<Reporter> = Mutex::new(Reporter {
    prefix: String::new(),
    secrets: Vec::new(),
});

fn reporter() -> std::sync::MutexGuard<'static, Reporter> {
    REPORTER.lock().unwrap_or_else(|e| e.into_inner())
}

/// The first word of the output line, such as `IMAP`.
pub fn set_prefix(prefix: &str) {
    reporter().prefix = prefix.to_string();
}

/// A secret that must never be printed: any occurrence in the line is masked.
pub fn add_secret(secret: &str) {
    if !secret.is_empty() {
        reporter().secrets.push(secret.to_string());
    }
}

/// The line for `outcome`: one line, no `|` in the text, secrets masked.
pub fn render(prefix: &str, outcome: &Outcome, secrets: &[String]) -> String {
    let clean = |s: &str| -> String {
        let mut s: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        for secret in secrets {
            s = s.replace(secret.as_str(), "********");
        }
        s
    };
    let mut line = format!(
        "{prefix} {} - {}",
        outcome.status.word(),
        clean(&outcome.message).replace('|', "/")
    );
    if !outcome.perfdata.is_empty() {
        line.push('|');
        line.push_str(&clean(&outcome.perfdata));
    }
    line
}

/// Print the line for `outcome` and exit with its code. The first caller wins: a second
/// (the watchdog while the check finishes) blocks until the process has exited.
pub fn finish(outcome: &Outcome) -> ! {
    let r = reporter();
    let line = render(&r.prefix, outcome, &r.secrets);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    std::process::exit(outcome.status.code());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_without_pipes_or_secrets() {
        let o = Outcome::critical("server said:\r\nNO bad password hunter2 | more").perf("time=1s");
        let line = render("IMAP", &o, &["hunter2".to_string()]);
        assert_eq!(
            line,
            "IMAP CRITICAL - server said:  NO bad password ******** / more|time=1s"
        );
        assert_eq!(Status::Unknown.code(), 3);
    }
}
