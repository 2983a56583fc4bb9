//! `pop3`: greeting and QUIT; with credentials, USER/PASS, STAT and LIST, RETR of each
//! message, the smtp check's ones consumed (see `mailbox`) and DELEted, and QUIT, which
//! commits the deletions (RFC 1939). Our own small client, as for IMAP: no well-kept
//! blocking POP3 crate with rustls exists, and the protocol is a few lines.

use crate::cli::{MailboxArgs, nonempty, nonempty_path};
use crate::mailbox::{Consumer, SUBJECT_MARK, tokens_in};
use crate::nagios::{Check, Outcome};
use crate::net::LineConn;
use crate::password;
use crate::store::Store;

/// The most header bytes kept of one message.
const MAX_HEADER: usize = 256 * 1024;

struct Pop3 {
    c: LineConn,
}

impl Pop3 {
    /// Send `line`, read the status line: its text after `+OK`, or CRITICAL naming
    /// `doing` and the server's `-ERR` text.
    fn command(&mut self, line: &str, doing: &str) -> Result<String, Outcome> {
        self.c.send_line(line, doing)?;
        self.status(doing)
    }

    fn status(&mut self, doing: &str) -> Result<String, Outcome> {
        let r = self.c.read_line(doing)?;
        if let Some(rest) = r.strip_prefix("+OK") {
            return Ok(rest.trim().to_string());
        }
        Err(Outcome::critical(format!(
            "{}: {doing} failed: {r}",
            self.c.endpoint().display()
        )))
    }

    /// The lines of a multi-line answer, dot-unstuffed, to the terminating `.`; each is
    /// handed to `each`.
    fn lines(&mut self, doing: &str, mut each: impl FnMut(&str)) -> Result<(), Outcome> {
        loop {
            let l = self.c.read_line(doing)?;
            if l == "." {
                return Ok(());
            }
            each(l.strip_prefix('.').unwrap_or(&l));
        }
    }
}

/// The unfolded `Subject:` values of a header block.
fn subjects(header: &[String]) -> String {
    let mut out = String::new();
    let mut in_subject = false;
    for l in header {
        if l.starts_with([' ', '\t']) {
            if in_subject {
                out.push_str(l);
            }
            continue;
        }
        in_subject = l.get(..8).is_some_and(|w| w.eq_ignore_ascii_case("subject:"));
        if in_subject {
            out.push('\n');
            out.push_str(&l[8..]);
        }
    }
    out
}

/// Run the check.
pub fn run(a: &MailboxArgs) -> Check {
    let tls = a.tls.settings(&a.conn.host);
    let ep = a.conn.endpoint(if tls.is_some() { 995 } else { 110 });
    let creds = password::credentials(nonempty(&a.user), nonempty_path(&a.password_file), "--user")?;
    if let Some((user, pw)) = &creds
        && (user.contains(['\r', '\n', '\0']) || pw.expose().contains(['\r', '\n', '\0']))
    {
        return Err(Outcome::unknown(
            "POP3 cannot send a user name or password with CR, LF or NUL in it",
        ));
    }
    let started = std::time::Instant::now();
    let c = ep.connect(tls.as_ref())?;
    let mut pop = Pop3 { c };
    pop.status("reading the greeting")?;
    let tls_words = match &tls {
        Some(t) if t.ignore_invalid => " over TLS (certificate not verified)",
        Some(_) => " over TLS",
        None => "",
    };
    let Some((user, pw)) = creds else {
        pop.command("QUIT", "QUIT")?;
        let secs = started.elapsed().as_secs_f64();
        return Ok(Outcome::ok(format!(
            "{}: greeting and QUIT answered{tls_words} in {secs:.3} s",
            ep.display()
        ))
        .perf(format!("time={secs:.6}s")));
    };
    for (line, doing) in [
        (format!("USER {user}"), "USER"),
        (format!("PASS {}", pw.expose()), "PASS"),
    ] {
        pop.c.send_line(&line, doing)?;
        let answer = pop.c.read_line(doing)?;
        if !answer.starts_with("+OK") {
            return Err(Outcome::critical(format!(
                "{}: login as {user:?} failed ({doing}): {answer}",
                ep.display()
            )));
        }
    }
    let stat = pop.command("STAT", "STAT")?;
    let count: usize = stat
        .split_ascii_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Outcome::critical(format!("{}: cannot read the STAT answer {stat:?}", ep.display())))?;
    let mut numbers = Vec::new();
    if count > 0 {
        pop.command("LIST", "LIST")?;
        pop.lines("LIST", |l| {
            if let Some(n) = l.split_ascii_whitespace().next().and_then(|n| n.parse::<u32>().ok()) {
                numbers.push(n);
            }
        })?;
    }
    let store = Store::new(&a.store);
    let mut consumer = Consumer::new(&store, nonempty(&a.mailflow_id));
    for n in numbers {
        pop.command(&format!("RETR {n}"), "RETR")?;
        let mut header = Vec::new();
        let mut in_header = true;
        let mut size = 0;
        pop.lines("RETR", |l| {
            if in_header {
                if l.is_empty() {
                    in_header = false;
                } else if size + l.len() <= MAX_HEADER {
                    size += l.len();
                    header.push(l.to_string());
                }
            }
        })?;
        let subject = subjects(&header);
        if !subject.contains(SUBJECT_MARK) {
            continue;
        }
        if consumer.message(&tokens_in(&subject))? {
            pop.command(&format!("DELE {n}"), "DELE")?;
        }
    }
    pop.command("QUIT", "QUIT (which commits the deletions)")?;
    Ok(consumer.logged_in(&ep.display().to_string(), &user, tls_words, started))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_unfolded() {
        let h: Vec<String> = [
            "From: a@b",
            "Subject: monitor-compile",
            " mailflow x",
            "SUBJECT: two",
            "To: c",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(subjects(&h), "\n monitor-compile mailflow x\n two");
    }
}
