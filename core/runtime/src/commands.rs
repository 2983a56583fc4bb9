//! Nagios's external commands: lines written to its command file (a FIFO), and the
//! `PROCESS_SERVICE_CHECK_RESULT` lines of passive results, checked field by field.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use monitor_engine::Outcome;

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Write external commands, one line each. Each line is one `write(2)` shorter than
/// `PIPE_BUF`, so lines from other writers cannot interleave with ours.
pub fn write_commands(command_file: &Path, lines: &[String]) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(command_file)
        .map_err(|e| {
            format!(
                "{}: cannot open the command file (is Nagios running?): {e}",
                command_file.display()
            )
        })?;
    // Nagios reads commands from a FIFO it makes itself: anything else (a regular file
    // left in its place) takes our lines and tells Nagios nothing.
    {
        use std::os::unix::fs::FileTypeExt;
        let kind = f
            .metadata()
            .map_err(|e| format!("{}: {e}", command_file.display()))?
            .file_type();
        if !kind.is_fifo() {
            return Err(format!(
                "{}: not a FIFO, so not Nagios's command file (is Nagios running with check_external_commands=1?)",
                command_file.display()
            ));
        }
    }
    for line in lines {
        let mut buf = line.clone().into_bytes();
        buf.push(b'\n');
        let mut tries = 0;
        loop {
            match f.write_all(&buf) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && tries < 500 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(format!("{}: {e}", command_file.display())),
            }
        }
    }
    Ok(())
}

/// Make text safe as the plugin output of an external command: one line, no `;` (the
/// field separator), no `|` (performance data), no control characters, at most 1000
/// bytes.
pub fn sanitize(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| match c {
            ';' => ',',
            '|' => '/',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.len() > 1000 {
        let mut cut = 1000;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// One passive check result for a service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceResult {
    pub host: String,
    pub description: String,
    /// 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    pub code: u8,
    /// The plugin output (sanitized when written).
    pub output: String,
}

impl ServiceResult {
    /// The result of one (machine, component): OK when it compiled, CRITICAL with the
    /// error when it did not.
    pub fn of_outcome(o: &Outcome) -> ServiceResult {
        let (code, output) = if o.errors.is_empty() {
            (0, format!("OK: {} compiled", o.component))
        } else {
            (2, format!("CRITICAL: {}", o.errors.join(" / ")))
        };
        ServiceResult {
            host: o.machine.clone(),
            description: monitor_engine::status_service_description(&o.component),
            code,
            output,
        }
    }

    /// The `PROCESS_SERVICE_CHECK_RESULT` line. Every field is checked for the command
    /// file: the host must be a host name and the description free of `;` and control
    /// characters (either would let a value forge other results), and the output is
    /// sanitized. `None`, logged, for a result that cannot be written safely.
    pub fn command(&self, timestamp: u64) -> Option<String> {
        if let Err(why) = lcfg_profile::check_host_name(&self.host) {
            tracing::error!(host = ?self.host, why, "result not submitted: the host is not a host name");
            return None;
        }
        if self.description.is_empty() || self.description.contains(|c: char| c == ';' || c.is_control()) {
            tracing::error!(
                host = %self.host,
                description = ?self.description,
                "result not submitted: the service description cannot be written to the command file"
            );
            return None;
        }
        Some(format!(
            "[{timestamp}] PROCESS_SERVICE_CHECK_RESULT;{};{};{};{}",
            self.host,
            self.description,
            self.code,
            sanitize(&self.output)
        ))
    }
}

/// The `PROCESS_SERVICE_CHECK_RESULT` lines for a pass's outcomes: OK for the (machine,
/// component) pairs that compiled, CRITICAL with the error for those that did not.
pub fn result_commands(outcomes: &[&Outcome], timestamp: u64) -> Vec<String> {
    outcomes
        .iter()
        .filter_map(|o| ServiceResult::of_outcome(o).command(timestamp))
        .collect()
}

/// Submit `outcomes` through the command file.
pub fn submit_results(command_file: &Path, outcomes: &[&Outcome]) -> Result<(), String> {
    write_commands(command_file, &result_commands(outcomes, now()))
}

/// Submit `results` through the command file.
pub fn submit_service_results(command_file: &Path, results: &[&ServiceResult]) -> Result<(), String> {
    let ts = now();
    let lines: Vec<String> = results.iter().filter_map(|r| r.command(ts)).collect();
    write_commands(command_file, &lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_line_carries_no_forged_field() {
        let r = |host: &str, description: &str| ServiceResult {
            host: host.into(),
            description: description.into(),
            code: 0,
            output: "all good; [1] PROCESS_SERVICE_CHECK_RESULT;web2;x;0;forged\nnext".into(),
        };
        assert_eq!(
            r("web1.example.org", "monitoring: kerberos").command(7).as_deref(),
            Some(
                "[7] PROCESS_SERVICE_CHECK_RESULT;web1.example.org;monitoring: kerberos;0;all good, [1] PROCESS_SERVICE_CHECK_RESULT,web2,x,0,forged next"
            )
        );
        assert_eq!(
            r("web1.example.org;Apache;0;all good", "monitoring: x").command(7),
            None
        );
        assert_eq!(r("web1.example.org", "a;b").command(7), None);
        assert_eq!(r("web1.example.org", "a\nb").command(7), None);
    }

    #[test]
    fn sanitize_makes_one_safe_line() {
        let s = sanitize("bad\nvalue; [0] PROCESS_HOST_CHECK_RESULT;h;0;x | perf=1\r\u{7}end");
        assert_eq!(s, "bad value, [0] PROCESS_HOST_CHECK_RESULT,h,0,x / perf=1 end");
        assert_eq!(sanitize(&"é".repeat(800)).len(), 1000);
    }
}
