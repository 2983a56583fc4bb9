//! `imap`: greeting and LOGOUT; with credentials, LOGIN, SELECT INBOX, a search for the
//! smtp check's messages, their tokens consumed (see `mailbox`), the messages deleted.
//!
//! Our own small client: there is no well-kept blocking IMAP crate with rustls (the
//! `imap` crate's releases with rustls are alpha, and async-imap needs a runtime). It
//! speaks just what this check needs of RFC 3501: tagged commands, untagged responses
//! with literals, quoted strings or literals for the credentials, UID SEARCH / UID FETCH
//! / UID STORE (UIDs, so that a concurrent expunge by another checker cannot shift a
//! message under us), EXPUNGE and LOGOUT.

use crate::cli::{MailboxArgs, nonempty, nonempty_path};
use crate::mailbox::{Consumer, SUBJECT_MARK, tokens_in};
use crate::nagios::{Check, Outcome};
use crate::net::LineConn;
use crate::password;
use crate::store::Store;

/// The largest literal accepted from the server.
const MAX_LITERAL: usize = 16 << 20;

/// How many UIDs go into one command.
const UIDS_PER_COMMAND: usize = 200;

/// One argument of a command: an atom-safe string as a quoted string, anything else as
/// a literal (RFC 3501 `astring`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// Text sent as it is (a quoted string is `"…"` with `\` and `"` escaped).
    Raw(String),
    /// `{N}` CRLF then the bytes (after the server's continuation).
    Literal(Vec<u8>),
}

/// How `s` goes on the wire: quoted when every byte is a 7-bit TEXT-CHAR (no NUL, CR or
/// LF), else a literal.
pub fn astring(s: &str) -> Arg {
    if s.bytes().all(|b| (1..=0x7f).contains(&b) && b != b'\r' && b != b'\n') {
        let mut q = String::with_capacity(s.len() + 2);
        q.push('"');
        for c in s.chars() {
            if c == '"' || c == '\\' {
                q.push('\\');
            }
            q.push(c);
        }
        q.push('"');
        Arg::Raw(q)
    } else {
        Arg::Literal(s.as_bytes().to_vec())
    }
}

/// The length of the literal that ends `line` (`{N}` or `{N+}`).
fn literal_len(line: &str) -> Option<usize> {
    let body = line.strip_suffix('}')?;
    let open = body.rfind('{')?;
    body[open + 1..].trim_end_matches('+').parse().ok()
}

/// A tagged reply.
struct Tagged {
    ok: bool,
    text: String,
}

struct Imap {
    c: LineConn,
    next: u32,
}

impl Imap {
    /// One response: a line and, for each literal it announces, the literal and the
    /// rest of the line, joined.
    fn response(&mut self, doing: &str) -> Result<String, Outcome> {
        let mut text = self.c.read_line(doing)?;
        let mut line_len = text.len();
        while let Some(n) = literal_len(&text[text.len() - line_len..]) {
            if n > MAX_LITERAL {
                return Err(Outcome::critical(format!(
                    "{}: the server announced a {n}-byte literal while {doing}",
                    self.c.endpoint().display()
                )));
            }
            let lit = self.c.read_exact(n, doing)?;
            text.push_str("\r\n");
            text.push_str(&String::from_utf8_lossy(&lit));
            let more = self.c.read_line(doing)?;
            line_len = more.len();
            text.push_str(&more);
        }
        Ok(text)
    }

    /// Send a command made of `parts` (text, and arguments that may be literals), and
    /// read to its tagged reply: the untagged responses and the reply.
    fn command(&mut self, parts: &[Arg], doing: &str) -> Result<(Vec<String>, Tagged), Outcome> {
        self.next += 1;
        let tag = format!("a{}", self.next);
        let mut line = format!("{tag} ");
        let mut untagged = Vec::new();
        for p in parts {
            match p {
                Arg::Raw(q) => line.push_str(q),
                Arg::Literal(bytes) => {
                    line.push_str(&format!("{{{}}}", bytes.len()));
                    self.c.send_line(&line, doing)?;
                    line.clear();
                    // Wait for the continuation; a tagged reply instead is a refusal.
                    loop {
                        let r = self.response(doing)?;
                        if r.starts_with('+') {
                            break;
                        }
                        if let Some(rest) = r.strip_prefix(&format!("{tag} ")) {
                            return Ok((untagged, tagged(rest)));
                        }
                        untagged.push(r);
                    }
                    self.c.send_raw(bytes, doing)?;
                }
            }
        }
        self.c.send_line(&line, doing)?;
        loop {
            let r = self.response(doing)?;
            if let Some(rest) = r.strip_prefix(&format!("{tag} ")) {
                return Ok((untagged, tagged(rest)));
            }
            if r.starts_with('+') {
                return Err(Outcome::critical(format!(
                    "{}: unexpected continuation {r:?} while {doing}",
                    self.c.endpoint().display()
                )));
            }
            untagged.push(r);
        }
    }

    /// [`Imap::command`], CRITICAL unless the reply is OK.
    fn ok(&mut self, parts: &[Arg], doing: &str) -> Result<Vec<String>, Outcome> {
        let (untagged, t) = self.command(parts, doing)?;
        if !t.ok {
            return Err(Outcome::critical(format!(
                "{}: {doing} failed: {}",
                self.c.endpoint().display(),
                t.text
            )));
        }
        Ok(untagged)
    }
}

fn tagged(rest: &str) -> Tagged {
    let ok = rest.get(..2).is_some_and(|w| w.eq_ignore_ascii_case("OK"));
    Tagged {
        ok,
        text: rest.to_string(),
    }
}

/// Text of a command sent as it is.
fn raw(s: &str) -> Arg {
    Arg::Raw(s.to_string())
}

/// The UIDs of `* SEARCH 1 2 3` responses.
fn search_uids(untagged: &[String]) -> Vec<u32> {
    let mut uids = Vec::new();
    for r in untagged {
        let mut words = r.split_ascii_whitespace();
        if words.next() == Some("*") && words.next().is_some_and(|w| w.eq_ignore_ascii_case("SEARCH")) {
            uids.extend(words.filter_map(|w| w.parse::<u32>().ok()));
        }
    }
    uids.sort_unstable();
    uids.dedup();
    uids
}

/// The UID of a `* N FETCH (… UID U …)` response.
fn fetch_uid(r: &str) -> Option<u32> {
    let upper = r.to_ascii_uppercase();
    let mut words = upper.split_ascii_whitespace();
    if words.next() != Some("*") || words.next()?.parse::<u32>().is_err() || words.next() != Some("FETCH") {
        return None;
    }
    let i = upper.find("UID ")?;
    upper[i + 4..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Run the check.
pub fn run(a: &MailboxArgs) -> Check {
    let tls = a.tls.settings(&a.conn.host);
    let ep = a.conn.endpoint(if tls.is_some() { 993 } else { 143 });
    let creds = password::credentials(nonempty(&a.user), nonempty_path(&a.password_file), "--user")?;
    let started = std::time::Instant::now();
    let c = ep.connect(tls.as_ref())?;
    let mut imap = Imap { c, next: 0 };
    let greeting = imap.response("reading the greeting")?;
    let g = greeting.to_ascii_uppercase();
    let preauth = g.starts_with("* PREAUTH");
    if !(g.starts_with("* OK") || preauth) {
        return Err(Outcome::critical(format!(
            "{}: unexpected greeting {greeting:?}",
            ep.display()
        )));
    }
    let tls_words = match &tls {
        Some(t) if t.ignore_invalid => " over TLS (certificate not verified)",
        Some(_) => " over TLS",
        None => "",
    };
    let Some((user, pw)) = creds else {
        imap.ok(&[raw("LOGOUT")], "LOGOUT")?;
        let secs = started.elapsed().as_secs_f64();
        return Ok(Outcome::ok(format!(
            "{}: greeting and LOGOUT answered{tls_words} in {secs:.3} s",
            ep.display()
        ))
        .perf(format!("time={secs:.6}s")));
    };
    if !preauth {
        let (u, p) = (astring(&user), astring(pw.expose()));
        let (_, t) = imap.command(&[raw("LOGIN "), u, raw(" "), p], "LOGIN")?;
        if !t.ok {
            return Err(Outcome::critical(format!(
                "{}: login as {user:?} failed: {}",
                ep.display(),
                t.text
            )));
        }
    }
    imap.ok(&[raw("SELECT INBOX")], "SELECT INBOX")?;
    let mark = astring(SUBJECT_MARK);
    let found = imap.ok(&[raw("UID SEARCH SUBJECT "), mark], "SEARCH")?;
    let uids = search_uids(&found);
    let store = Store::new(&a.store);
    let mut consumer = Consumer::new(&store, nonempty(&a.mailflow_id));
    let mut delete = Vec::new();
    for chunk in uids.chunks(UIDS_PER_COMMAND) {
        let set = chunk.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        let fetched = imap.ok(
            &[raw(&format!(
                "UID FETCH {set} (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])"
            ))],
            "FETCH",
        )?;
        for r in &fetched {
            let Some(uid) = fetch_uid(r) else { continue };
            // Only what was asked for: a server may add unsolicited FETCH responses.
            if !chunk.contains(&uid) || !r.contains(SUBJECT_MARK) {
                continue;
            }
            if consumer.message(&tokens_in(r))? {
                delete.push(uid);
            }
        }
    }
    delete.sort_unstable();
    delete.dedup();
    for chunk in delete.chunks(UIDS_PER_COMMAND) {
        let set = chunk.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        imap.ok(
            &[raw(&format!("UID STORE {set} +FLAGS.SILENT (\\Deleted)"))],
            "STORE \\Deleted",
        )?;
    }
    if !delete.is_empty() {
        imap.ok(&[raw("EXPUNGE")], "EXPUNGE")?;
    }
    imap.ok(&[raw("LOGOUT")], "LOGOUT")?;
    Ok(consumer.logged_in(&ep.display().to_string(), &user, tls_words, started))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_quoted_or_literals() {
        assert_eq!(astring("user"), Arg::Raw("\"user\"".into()));
        assert_eq!(astring(r#"a"b\c d"#), Arg::Raw(r#""a\"b\\c d""#.into()));
        assert_eq!(astring(""), Arg::Raw("\"\"".into()));
        assert_eq!(astring("pässword"), Arg::Literal("pässword".as_bytes().to_vec()));
        assert_eq!(astring("a\r\nb"), Arg::Literal(b"a\r\nb".to_vec()));
    }

    #[test]
    fn responses() {
        assert_eq!(
            literal_len("* 1 FETCH (UID 4 BODY[HEADER.FIELDS (SUBJECT)] {42}"),
            Some(42)
        );
        assert_eq!(literal_len("a1 LOGIN {3+}"), Some(3));
        assert_eq!(literal_len("* OK done"), None);
        assert_eq!(search_uids(&["* SEARCH 3 1 2".into(), "* OK x".into()]), vec![1, 2, 3]);
        assert_eq!(search_uids(&["* SEARCH".into()]), Vec::<u32>::new());
        assert_eq!(fetch_uid("* 2 FETCH (UID 17 BODY[...] {3}\r\nabc)"), Some(17));
        assert_eq!(fetch_uid("* 2 EXISTS"), None);
    }
}
