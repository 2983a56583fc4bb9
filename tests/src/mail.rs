//! A small in-process mail server for tests: SMTP, IMAP and POP3 on free ports of
//! 127.0.0.1, sharing one mailbox of one user, each optionally with implicit TLS (a
//! certificate and key in PEM files, such as those of [`crate::nginx::make_test_pki`]).
//!
//! It speaks enough of each protocol for `check_monitoring_info` and for the real
//! monitoring-plugins `check_smtp`/`check_ssmtp` (HELO or EHLO, QUIT), `check_imap`/
//! `check_simap` (`a1 LOGOUT`) and `check_pop`/`check_spop` (QUIT):
//!
//! - SMTP: HELO, EHLO, MAIL, RCPT, DATA (dot-unstuffed, stored), RSET, NOOP, VRFY, QUIT.
//!   Every recipient is accepted and every message lands in the one mailbox.
//! - IMAP: CAPABILITY, NOOP, LOGIN (atoms, quoted strings and literals), SELECT/EXAMINE
//!   INBOX, SEARCH and UID SEARCH (ALL, SUBJECT, DELETED, UNDELETED), FETCH and UID FETCH
//!   (UID, FLAGS, RFC822.SIZE, RFC822, RFC822.HEADER, BODY[], BODY[HEADER],
//!   BODY[HEADER.FIELDS (…)], with or without .PEEK), STORE and UID STORE (FLAGS, +FLAGS,
//!   -FLAGS, .SILENT), EXPUNGE, CLOSE, LOGOUT. Sequence numbers are the mailbox's current
//!   order (no per-session view): clients should use UIDs, as ours does.
//! - POP3: CAPA, USER, PASS, STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP, QUIT (which
//!   commits the deletions; a session that ends without QUIT deletes nothing).
//!
//! Threads and `std::net` only. Dropping the server (or [`MailServer::stop`]) stops it:
//! its listeners are closed, so its ports refuse connections from then on, and open
//! sessions are cut.

use std::collections::BTreeSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

pub use crate::nginx::CertKey;

/// How long a session may stay silent before the server drops it.
const IDLE: Duration = Duration::from_secs(60);

/// The longest command line or message line read.
const MAX_LINE: u64 = 1 << 20;

/// What the server serves.
#[derive(Debug, Clone)]
pub struct MailOptions {
    /// The one user (IMAP LOGIN, POP3 USER).
    pub user: String,
    /// Its password.
    pub password: String,
    /// Implicit TLS on all three ports, with this certificate and key.
    pub tls: Option<CertKey>,
}

/// A stored message.
#[derive(Debug, Clone)]
struct Msg {
    uid: u32,
    /// The message as received: header, empty line, body; CR LF line ends.
    data: String,
    deleted: bool,
    seen: bool,
}

impl Msg {
    fn header(&self) -> &str {
        match self.data.find("\r\n\r\n") {
            Some(i) => &self.data[..i + 2],
            None => &self.data,
        }
    }

    /// The unfolded values of header field `name` (case-insensitive).
    fn field(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut current = false;
        for line in self.header().split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if current && let Some(last) = out.last_mut() {
                    last.push_str(line);
                }
                continue;
            }
            current = false;
            if let Some((n, v)) = line.split_once(':')
                && n.trim().eq_ignore_ascii_case(name)
            {
                current = true;
                out.push(v.trim_start().to_string());
            }
        }
        out
    }

    /// The header lines of the fields named (each line with its CR LF), and an empty line.
    fn fields(&self, names: &[String]) -> String {
        let mut out = String::new();
        let mut keep = false;
        for line in self.header().split("\r\n").filter(|l| !l.is_empty()) {
            if !line.starts_with([' ', '\t']) {
                keep = line
                    .split_once(':')
                    .is_some_and(|(n, _)| names.iter().any(|w| w.eq_ignore_ascii_case(n.trim())));
            }
            if keep {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
        out.push_str("\r\n");
        out
    }

    fn subject(&self) -> String {
        self.field("subject").into_iter().next().unwrap_or_default()
    }

    fn flags(&self) -> String {
        let mut f = Vec::new();
        if self.seen {
            f.push("\\Seen");
        }
        if self.deleted {
            f.push("\\Deleted");
        }
        format!("({})", f.join(" "))
    }
}

#[derive(Debug, Default)]
struct Mailbox {
    next_uid: u32,
    messages: Vec<Msg>,
}

struct Shared {
    opts: MailOptions,
    tls: Option<Arc<rustls::ServerConfig>>,
    mailbox: Mutex<Mailbox>,
    stopping: AtomicBool,
    /// Clones of the open sessions' sockets, to cut them on stop.
    sessions: Mutex<Vec<TcpStream>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn mailbox(&self) -> MutexGuard<'_, Mailbox> {
        lock(&self.mailbox)
    }

    fn deliver(&self, data: String) -> u32 {
        let mut mb = self.mailbox();
        mb.next_uid += 1;
        let uid = mb.next_uid;
        mb.messages.push(Msg {
            uid,
            data,
            deleted: false,
            seen: false,
        });
        uid
    }
}

#[derive(Debug, Clone, Copy)]
enum Proto {
    Smtp,
    Imap,
    Pop3,
}

/// A running mail server; dropping it stops it.
pub struct MailServer {
    /// The SMTP port on 127.0.0.1.
    pub smtp_port: u16,
    /// The IMAP port on 127.0.0.1.
    pub imap_port: u16,
    /// The POP3 port on 127.0.0.1.
    pub pop3_port: u16,
    shared: Arc<Shared>,
    acceptors: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for MailServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailServer")
            .field("smtp_port", &self.smtp_port)
            .field("imap_port", &self.imap_port)
            .field("pop3_port", &self.pop3_port)
            .field("tls", &self.shared.tls.is_some())
            .finish()
    }
}

/// A rustls server configuration (ring) for a PEM certificate chain and key.
pub fn server_config(ck: &CertKey) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&ck.cert)
        .unwrap_or_else(|e| panic!("read {}: {e}", ck.cert.display()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("parse {}: {e}", ck.cert.display()));
    let key = PrivateKeyDer::from_pem_file(&ck.key).unwrap_or_else(|e| panic!("read {}: {e}", ck.key.display()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("a usable certificate and key");
    Arc::new(config)
}

impl MailServer {
    /// Start the three servers on free ports of 127.0.0.1.
    pub fn start(opts: MailOptions) -> MailServer {
        let tls = opts.tls.as_ref().map(server_config);
        let shared = Arc::new(Shared {
            opts,
            tls,
            mailbox: Mutex::new(Mailbox::default()),
            stopping: AtomicBool::new(false),
            sessions: Mutex::new(Vec::new()),
            workers: Mutex::new(Vec::new()),
        });
        let mut ports = Vec::new();
        let mut acceptors = Vec::new();
        for proto in [Proto::Smtp, Proto::Imap, Proto::Pop3] {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port of 127.0.0.1");
            ports.push(listener.local_addr().expect("the bound address").port());
            let shared = Arc::clone(&shared);
            acceptors.push(
                std::thread::Builder::new()
                    .name(format!("mail-{proto:?}"))
                    .spawn(move || accept_loop(listener, proto, shared))
                    .expect("spawn an acceptor"),
            );
        }
        MailServer {
            smtp_port: ports[0],
            imap_port: ports[1],
            pop3_port: ports[2],
            shared,
            acceptors,
        }
    }

    /// Whether it serves implicit TLS.
    pub fn tls(&self) -> bool {
        self.shared.tls.is_some()
    }

    /// The subjects of the messages in the mailbox (expunged ones are gone; ones marked
    /// `\Deleted` but not expunged are still there).
    pub fn messages(&self) -> Vec<String> {
        self.shared.mailbox().messages.iter().map(Msg::subject).collect()
    }

    /// The messages in the mailbox, whole.
    pub fn raw_messages(&self) -> Vec<String> {
        self.shared.mailbox().messages.iter().map(|m| m.data.clone()).collect()
    }

    /// Put a message (header, empty line, body) into the mailbox, as if delivered.
    pub fn deliver(&self, data: &str) {
        self.shared.deliver(data.replace("\r\n", "\n").replace('\n', "\r\n"));
    }

    /// Lose every message (a mail system that loses mail).
    pub fn drop_all(&self) {
        self.shared.mailbox().messages.clear();
    }

    /// Stop now (as dropping does).
    pub fn stop(self) {}

    fn shutdown(&mut self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake each acceptor: it sees `stopping` and returns, closing its listener.
        for port in [self.smtp_port, self.imap_port, self.pop3_port] {
            let _ = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2));
        }
        for a in self.acceptors.drain(..) {
            let _ = a.join();
        }
        for s in lock(&self.shared.sessions).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        let workers: Vec<JoinHandle<()>> = lock(&self.shared.workers).drain(..).collect();
        for w in workers {
            let _ = w.join();
        }
    }
}

impl Drop for MailServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(listener: TcpListener, proto: Proto, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = conn else { continue };
        let _ = stream.set_read_timeout(Some(IDLE));
        let _ = stream.set_write_timeout(Some(IDLE));
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.sessions).push(clone);
        }
        let s = Arc::clone(&shared);
        let worker = std::thread::spawn(move || {
            let _ = serve(stream, proto, &s);
        });
        let mut workers = lock(&shared.workers);
        workers.retain(|w| !w.is_finished());
        workers.push(worker);
    }
    // The listener is dropped here: the port refuses connections from now on.
}

/// A session's stream, plain or TLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Line I/O of a session.
struct Io {
    r: BufReader<Stream>,
}

impl Io {
    /// A line without its line end; `None` at the end of the stream.
    fn line(&mut self) -> io::Result<Option<String>> {
        let mut buf = Vec::new();
        let n = (&mut self.r).take(MAX_LINE).read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }

    fn bytes(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; n];
        self.r.read_exact(&mut buf)?;
        Ok(buf)
    }

    fn send(&mut self, text: &str) -> io::Result<()> {
        let s = self.r.get_mut();
        s.write_all(text.as_bytes())?;
        s.flush()
    }
}

fn serve(tcp: TcpStream, proto: Proto, shared: &Shared) -> io::Result<()> {
    let stream = match &shared.tls {
        None => Stream::Plain(tcp),
        Some(cfg) => {
            let conn = rustls::ServerConnection::new(Arc::clone(cfg)).map_err(io::Error::other)?;
            Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
        }
    };
    let mut io = Io {
        r: BufReader::new(stream),
    };
    let result = match proto {
        Proto::Smtp => smtp(&mut io, shared),
        Proto::Imap => imap(&mut io, shared),
        Proto::Pop3 => pop3(&mut io, shared),
    };
    if let Stream::Tls(s) = io.r.get_mut() {
        s.conn.send_close_notify();
        let _ = s.flush();
    }
    result
}

fn verb(line: &str) -> (String, &str) {
    let (v, rest) = line.split_once(' ').unwrap_or((line, ""));
    (v.to_ascii_uppercase(), rest.trim_start())
}

fn smtp(io: &mut Io, shared: &Shared) -> io::Result<()> {
    io.send("220 localhost ESMTP monitor-compile test server\r\n")?;
    let mut from: Option<String> = None;
    let mut rcpts: Vec<String> = Vec::new();
    while let Some(line) = io.line()? {
        let (v, rest) = verb(&line);
        match v.as_str() {
            "HELO" => io.send("250 localhost\r\n")?,
            "EHLO" => io.send("250-localhost greets you\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n")?,
            "MAIL" => {
                from = Some(rest.to_string());
                rcpts.clear();
                io.send("250 2.1.0 OK\r\n")?;
            }
            "RCPT" => {
                if from.is_none() {
                    io.send("503 5.5.1 MAIL first\r\n")?;
                } else {
                    rcpts.push(rest.to_string());
                    io.send("250 2.1.5 OK\r\n")?;
                }
            }
            "DATA" => {
                if rcpts.is_empty() {
                    io.send("503 5.5.1 RCPT first\r\n")?;
                    continue;
                }
                io.send("354 End data with <CR><LF>.<CR><LF>\r\n")?;
                let mut data = String::new();
                loop {
                    let Some(l) = io.line()? else { return Ok(()) };
                    if l == "." {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                    data.push_str("\r\n");
                }
                let uid = shared.deliver(data);
                from = None;
                rcpts.clear();
                io.send(&format!("250 2.0.0 OK queued as {uid}\r\n"))?;
            }
            "RSET" => {
                from = None;
                rcpts.clear();
                io.send("250 2.0.0 OK\r\n")?;
            }
            "NOOP" => io.send("250 2.0.0 OK\r\n")?,
            "VRFY" => io.send("252 2.1.5 cannot VRFY, but will accept\r\n")?,
            "QUIT" => {
                io.send("221 2.0.0 Bye\r\n")?;
                return Ok(());
            }
            _ => io.send("502 5.5.2 command not recognized\r\n")?,
        }
    }
    Ok(())
}

/// One IMAP argument token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// An atom (brackets and their contents included: `BODY.PEEK[HEADER.FIELDS (SUBJECT)]`).
    Atom(String),
    /// A quoted string or a literal.
    Str(Vec<u8>),
    /// A parenthesized list.
    List(Vec<Tok>),
}

impl Tok {
    fn text(&self) -> String {
        match self {
            Tok::Atom(a) => a.clone(),
            Tok::Str(s) => String::from_utf8_lossy(s).into_owned(),
            Tok::List(l) => l.iter().map(Tok::text).collect::<Vec<_>>().join(" "),
        }
    }

    fn upper(&self) -> String {
        self.text().to_ascii_uppercase()
    }
}

/// Parse the arguments of a command (`{N}` CR LF and N bytes for literals, as on the
/// wire).
fn parse_tokens(b: &[u8], i: &mut usize, until_paren: bool) -> Vec<Tok> {
    let mut out = Vec::new();
    while *i < b.len() {
        match b[*i] {
            b' ' => *i += 1,
            b')' if until_paren => {
                *i += 1;
                return out;
            }
            b'(' => {
                *i += 1;
                out.push(Tok::List(parse_tokens(b, i, true)));
            }
            b'"' => {
                *i += 1;
                let mut s = Vec::new();
                while *i < b.len() && b[*i] != b'"' {
                    if b[*i] == b'\\' && *i + 1 < b.len() {
                        *i += 1;
                    }
                    s.push(b[*i]);
                    *i += 1;
                }
                *i += 1;
                out.push(Tok::Str(s));
            }
            b'{' => {
                let close = b[*i..].iter().position(|c| *c == b'}').map(|p| *i + p);
                let Some(close) = close else { break };
                let n: usize = String::from_utf8_lossy(&b[*i + 1..close])
                    .trim_end_matches('+')
                    .parse()
                    .unwrap_or(0);
                let start = (close + 3).min(b.len());
                let end = (start + n).min(b.len());
                out.push(Tok::Str(b[start..end].to_vec()));
                *i = end;
            }
            _ => {
                let start = *i;
                let mut depth = 0i32;
                while *i < b.len() {
                    match b[*i] {
                        b'[' => depth += 1,
                        b']' => depth -= 1,
                        b' ' | b')' if depth <= 0 => break,
                        _ => {}
                    }
                    *i += 1;
                }
                out.push(Tok::Atom(String::from_utf8_lossy(&b[start..*i]).into_owned()));
            }
        }
    }
    out
}

/// A message set (`1,3:5,7:*`) against the current messages: the indexes it selects,
/// by UID (`uid`) or by sequence number.
fn select(set: &str, msgs: &[Msg], uid: bool) -> BTreeSet<usize> {
    let max = if uid {
        msgs.iter().map(|m| m.uid).max().unwrap_or(0)
    } else {
        u32::try_from(msgs.len()).unwrap_or(u32::MAX)
    };
    let num = |s: &str| if s == "*" { Some(max) } else { s.parse::<u32>().ok() };
    let mut out = BTreeSet::new();
    for part in set.split(',') {
        let (a, b) = part.split_once(':').unwrap_or((part, part));
        let (Some(a), Some(b)) = (num(a), num(b)) else { continue };
        let (lo, hi) = (a.min(b), a.max(b));
        for (idx, m) in msgs.iter().enumerate() {
            let key = if uid {
                m.uid
            } else {
                u32::try_from(idx + 1).unwrap_or(u32::MAX)
            };
            if (lo..=hi).contains(&key) {
                out.insert(idx);
            }
        }
    }
    out
}

/// A literal for an IMAP response.
fn literal(s: &str) -> String {
    format!("{{{}}}\r\n{s}", s.len())
}

fn imap(io: &mut Io, shared: &Shared) -> io::Result<()> {
    io.send("* OK [CAPABILITY IMAP4rev1] monitor-compile test IMAP server ready\r\n")?;
    let mut authed = false;
    let mut selected = false;
    loop {
        // A command, with its literals (each announced by `{N}` at a line's end).
        let Some(first) = io.line()? else { return Ok(()) };
        let mut wire: Vec<u8> = first.clone().into_bytes();
        let mut last = first;
        while let Some((body, o)) = last.strip_suffix('}').and_then(|b| b.rfind('{').map(|o| (b, o))) {
            let spec = &body[o + 1..];
            let Ok(n) = spec.trim_end_matches('+').parse::<usize>() else {
                break;
            };
            if !spec.ends_with('+') {
                io.send("+ Ready for literal data\r\n")?;
            }
            wire.extend_from_slice(b"\r\n");
            wire.extend_from_slice(&io.bytes(n)?);
            let Some(more) = io.line()? else { return Ok(()) };
            wire.extend_from_slice(more.as_bytes());
            last = more;
        }
        let mut i = 0;
        let toks = parse_tokens(&wire, &mut i, false);
        let Some(Tok::Atom(tag)) = toks.first().cloned() else {
            io.send("* BAD no tag\r\n")?;
            continue;
        };
        let Some(cmd) = toks.get(1).map(Tok::upper) else {
            io.send(&format!("{tag} BAD no command\r\n"))?;
            continue;
        };
        let mut args: Vec<Tok> = toks[2..].to_vec();
        let mut uid = false;
        let cmd = if cmd == "UID" && !args.is_empty() {
            uid = true;
            args.remove(0).upper()
        } else {
            cmd
        };
        match cmd.as_str() {
            "CAPABILITY" => io.send(&format!("* CAPABILITY IMAP4rev1\r\n{tag} OK CAPABILITY completed\r\n"))?,
            "NOOP" => io.send(&format!("{tag} OK NOOP completed\r\n"))?,
            "LOGOUT" => {
                io.send(&format!(
                    "* BYE monitor-compile test IMAP server logging out\r\n{tag} OK LOGOUT completed\r\n"
                ))?;
                return Ok(());
            }
            "LOGIN" => {
                let ok =
                    args.len() == 2 && args[0].text() == shared.opts.user && args[1].text() == shared.opts.password;
                if ok {
                    authed = true;
                    io.send(&format!("{tag} OK LOGIN completed\r\n"))?;
                } else {
                    io.send(&format!("{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"))?;
                }
            }
            _ if !authed => io.send(&format!("{tag} NO not logged in\r\n"))?,
            "SELECT" | "EXAMINE" => {
                if args.first().map(Tok::upper).as_deref() != Some("INBOX") {
                    io.send(&format!("{tag} NO no such mailbox\r\n"))?;
                    continue;
                }
                selected = true;
                let mb = shared.mailbox();
                let text = format!(
                    "* FLAGS (\\Seen \\Deleted)\r\n* {} EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 1] UIDs valid\r\n* OK [UIDNEXT {}] next UID\r\n{tag} OK [READ-WRITE] {cmd} completed\r\n",
                    mb.messages.len(),
                    mb.next_uid + 1
                );
                drop(mb);
                io.send(&text)?;
            }
            _ if !selected => io.send(&format!("{tag} NO no mailbox selected\r\n"))?,
            "SEARCH" => {
                let mb = shared.mailbox();
                let mut hits = Vec::new();
                let mut bad = false;
                'messages: for (idx, m) in mb.messages.iter().enumerate() {
                    let mut a = args.iter();
                    while let Some(t) = a.next() {
                        let keep = match t.upper().as_str() {
                            "ALL" => true,
                            "DELETED" => m.deleted,
                            "UNDELETED" => !m.deleted,
                            "SUBJECT" => match a.next() {
                                Some(s) => m.subject().to_lowercase().contains(&s.text().to_lowercase()),
                                None => {
                                    bad = true;
                                    false
                                }
                            },
                            _ => {
                                bad = true;
                                false
                            }
                        };
                        if !keep {
                            continue 'messages;
                        }
                    }
                    hits.push(if uid {
                        m.uid
                    } else {
                        u32::try_from(idx + 1).unwrap_or(0)
                    });
                }
                drop(mb);
                if bad {
                    io.send(&format!("{tag} BAD unsupported search\r\n"))?;
                } else {
                    let list: String = hits.iter().map(|h| format!(" {h}")).collect();
                    io.send(&format!("* SEARCH{list}\r\n{tag} OK SEARCH completed\r\n"))?;
                }
            }
            "FETCH" => {
                let (Some(set), Some(items)) = (args.first(), args.get(1)) else {
                    io.send(&format!("{tag} BAD FETCH needs a set and items\r\n"))?;
                    continue;
                };
                let items: Vec<Tok> = match items {
                    Tok::List(l) => l.clone(),
                    t => vec![t.clone()],
                };
                let mut mb = shared.mailbox();
                let chosen = select(&set.text(), &mb.messages, uid);
                let mut out = String::new();
                for idx in chosen {
                    let m = &mut mb.messages[idx];
                    let mut parts = Vec::new();
                    if uid {
                        parts.push(format!("UID {}", m.uid));
                    }
                    for it in &items {
                        let name = it.upper();
                        let peek = name.contains(".PEEK");
                        let shown = name.replace(".PEEK", "");
                        match shown.as_str() {
                            "UID" if uid => {}
                            "UID" => parts.push(format!("UID {}", m.uid)),
                            "FLAGS" => parts.push(format!("FLAGS {}", m.flags())),
                            "RFC822.SIZE" => parts.push(format!("RFC822.SIZE {}", m.data.len())),
                            "RFC822" | "BODY[]" => {
                                parts.push(format!("{shown} {}", literal(&m.data)));
                                if !peek {
                                    m.seen = true;
                                }
                            }
                            "RFC822.HEADER" | "BODY[HEADER]" => parts.push(format!("{shown} {}", literal(m.header()))),
                            s if s.starts_with("BODY[HEADER.FIELDS") => {
                                let names: Vec<String> = s
                                    .trim_start_matches("BODY[HEADER.FIELDS")
                                    .trim_matches([' ', '(', ')', ']'])
                                    .split_ascii_whitespace()
                                    .map(str::to_string)
                                    .collect();
                                parts.push(format!("{shown} {}", literal(&m.fields(&names))));
                            }
                            _ => {}
                        }
                    }
                    out.push_str(&format!("* {} FETCH ({})\r\n", idx + 1, parts.join(" ")));
                }
                drop(mb);
                io.send(&format!("{out}{tag} OK FETCH completed\r\n"))?;
            }
            "STORE" => {
                let (Some(set), Some(op)) = (args.first(), args.get(1)) else {
                    io.send(&format!("{tag} BAD STORE needs a set, an operation and flags\r\n"))?;
                    continue;
                };
                let op = op.upper();
                let flags: Vec<String> = args[2..].iter().map(Tok::upper).collect();
                let flags = flags.join(" ");
                let (deleted, seen) = (flags.contains("\\DELETED"), flags.contains("\\SEEN"));
                let mut mb = shared.mailbox();
                let chosen = select(&set.text(), &mb.messages, uid);
                let mut out = String::new();
                for idx in chosen {
                    let m = &mut mb.messages[idx];
                    if op.starts_with("+FLAGS") {
                        m.deleted |= deleted;
                        m.seen |= seen;
                    } else if op.starts_with("-FLAGS") {
                        m.deleted &= !deleted;
                        m.seen &= !seen;
                    } else {
                        m.deleted = deleted;
                        m.seen = seen;
                    }
                    if !op.ends_with(".SILENT") {
                        let u = if uid { format!("UID {} ", m.uid) } else { String::new() };
                        out.push_str(&format!("* {} FETCH ({u}FLAGS {})\r\n", idx + 1, m.flags()));
                    }
                }
                drop(mb);
                io.send(&format!("{out}{tag} OK STORE completed\r\n"))?;
            }
            "EXPUNGE" | "CLOSE" => {
                let mut mb = shared.mailbox();
                let mut out = String::new();
                let mut idx = 0;
                while idx < mb.messages.len() {
                    if mb.messages[idx].deleted {
                        mb.messages.remove(idx);
                        if cmd == "EXPUNGE" {
                            out.push_str(&format!("* {} EXPUNGE\r\n", idx + 1));
                        }
                    } else {
                        idx += 1;
                    }
                }
                drop(mb);
                if cmd == "CLOSE" {
                    selected = false;
                }
                io.send(&format!("{out}{tag} OK {cmd} completed\r\n"))?;
            }
            _ => io.send(&format!("{tag} BAD unknown command\r\n"))?,
        }
    }
}

fn pop3(io: &mut Io, shared: &Shared) -> io::Result<()> {
    io.send("+OK monitor-compile test POP3 server ready\r\n")?;
    let mut user: Option<String> = None;
    // After login: the UIDs of the session's messages (its numbering), and those DELEted.
    let mut view: Option<Vec<u32>> = None;
    let mut deleted: BTreeSet<u32> = BTreeSet::new();
    while let Some(line) = io.line()? {
        let (v, rest) = verb(&line);
        // The message numbered `n` in this session, if it is still there and not deleted.
        let msg = |n: &str, view: &Option<Vec<u32>>, deleted: &BTreeSet<u32>| -> Option<Msg> {
            let n: usize = n.split_ascii_whitespace().next()?.parse().ok()?;
            let uid = *view.as_ref()?.get(n.checked_sub(1)?)?;
            if deleted.contains(&uid) {
                return None;
            }
            shared.mailbox().messages.iter().find(|m| m.uid == uid).cloned()
        };
        match v.as_str() {
            "CAPA" => io.send("+OK capability list follows\r\nUSER\r\nUIDL\r\nTOP\r\n.\r\n")?,
            "USER" if view.is_none() => {
                user = Some(rest.to_string());
                io.send("+OK send PASS\r\n")?;
            }
            "PASS" if view.is_none() => {
                if user.as_deref() == Some(shared.opts.user.as_str()) && rest == shared.opts.password {
                    view = Some(shared.mailbox().messages.iter().map(|m| m.uid).collect());
                    io.send("+OK logged in\r\n")?;
                } else {
                    user = None;
                    io.send("-ERR [AUTH] invalid user name or password\r\n")?;
                }
            }
            "QUIT" => {
                if view.is_some() {
                    shared.mailbox().messages.retain(|m| !deleted.contains(&m.uid));
                }
                io.send("+OK bye\r\n")?;
                return Ok(());
            }
            "NOOP" if view.is_some() => io.send("+OK\r\n")?,
            _ if view.is_none() => io.send("-ERR log in first\r\n")?,
            "STAT" | "LIST" | "UIDL" => {
                let numbered: Vec<(usize, Msg)> = (1..=view.as_ref().map_or(0, Vec::len))
                    .filter_map(|n| msg(&n.to_string(), &view, &deleted).map(|m| (n, m)))
                    .collect();
                let value = |n: usize, m: &Msg| {
                    if v == "UIDL" {
                        format!("{n} {}", m.uid)
                    } else {
                        format!("{n} {}", m.data.len())
                    }
                };
                if v == "STAT" {
                    let size: usize = numbered.iter().map(|(_, m)| m.data.len()).sum();
                    io.send(&format!("+OK {} {size}\r\n", numbered.len()))?;
                } else if rest.is_empty() {
                    let mut out = format!("+OK {} messages\r\n", numbered.len());
                    for (n, m) in &numbered {
                        out.push_str(&value(*n, m));
                        out.push_str("\r\n");
                    }
                    out.push_str(".\r\n");
                    io.send(&out)?;
                } else {
                    match numbered.iter().find(|(n, _)| rest.trim() == n.to_string()) {
                        Some((n, m)) => io.send(&format!("+OK {}\r\n", value(*n, m)))?,
                        None => io.send("-ERR no such message\r\n")?,
                    }
                }
            }
            "RETR" | "TOP" => {
                let Some(m) = msg(rest, &view, &deleted) else {
                    io.send("-ERR no such message\r\n")?;
                    continue;
                };
                let body_lines: Option<usize> = if v == "TOP" {
                    match rest.split_ascii_whitespace().nth(1).and_then(|l| l.parse().ok()) {
                        Some(l) => Some(l),
                        None => {
                            io.send("-ERR TOP needs a message and a line count\r\n")?;
                            continue;
                        }
                    }
                } else {
                    None
                };
                let mut out = format!("+OK {} octets\r\n", m.data.len());
                let mut in_body = false;
                let mut body = 0;
                for l in m
                    .data
                    .split("\r\n")
                    .collect::<Vec<_>>()
                    .split_last()
                    .map_or(&[][..], |(_, l)| l)
                {
                    if in_body {
                        if body_lines.is_some_and(|max| body >= max) {
                            break;
                        }
                        body += 1;
                    }
                    if l.is_empty() {
                        in_body = true;
                    }
                    if l.starts_with('.') {
                        out.push('.');
                    }
                    out.push_str(l);
                    out.push_str("\r\n");
                }
                out.push_str(".\r\n");
                io.send(&out)?;
            }
            "DELE" => match msg(rest, &view, &deleted) {
                Some(m) => {
                    deleted.insert(m.uid);
                    io.send("+OK marked for deletion\r\n")?;
                }
                None => io.send("-ERR no such message\r\n")?,
            },
            "RSET" => {
                deleted.clear();
                io.send("+OK\r\n")?;
            }
            _ => io.send("-ERR unknown command\r\n")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imap_tokens() {
        let wire = b"a1 LOGIN {4}\r\nuser \"p\\\"w\" (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])";
        let mut i = 0;
        let t = parse_tokens(wire, &mut i, false);
        assert_eq!(t[0], Tok::Atom("a1".into()));
        assert_eq!(t[2], Tok::Str(b"user".to_vec()));
        assert_eq!(t[3], Tok::Str(b"p\"w".to_vec()));
        assert_eq!(
            t[4],
            Tok::List(vec![
                Tok::Atom("UID".into()),
                Tok::Atom("BODY.PEEK[HEADER.FIELDS (SUBJECT)]".into())
            ])
        );
    }

    #[test]
    fn message_sets() {
        let msgs: Vec<Msg> = [3, 5, 9]
            .iter()
            .map(|&uid| Msg {
                uid,
                data: String::new(),
                deleted: false,
                seen: false,
            })
            .collect();
        assert_eq!(select("5,9", &msgs, true), [1, 2].into());
        assert_eq!(select("1:*", &msgs, false), [0, 1, 2].into());
        assert_eq!(select("4:*", &msgs, true), [1, 2].into());
    }
}
