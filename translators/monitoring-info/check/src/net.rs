//! Connections for the line protocols (IMAP, POP3) and the certificate check: TCP with
//! every connect, read and write bounded by the timeout, optionally implicit TLS, and a
//! line reader with a bound on line length.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};

use crate::nagios::Outcome;
use crate::tls::{self, TlsSettings, Verifier};

/// The longest line read (a server sending more is broken).
const MAX_LINE: u64 = 1 << 20;

/// Where a check connects to, for the words of errors.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `-H`.
    pub host: String,
    /// `-p`.
    pub port: u16,
    /// `-t`.
    pub timeout: Duration,
}

impl Endpoint {
    /// `host:port` (IPv6 addresses bracketed).
    pub fn display(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// An I/O error on this endpoint as a CRITICAL outcome.
    pub fn io_error(&self, doing: &str, e: &io::Error) -> Outcome {
        if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
            Outcome::critical(format!(
                "{}: no answer within {} s while {doing}",
                self.display(),
                self.timeout.as_secs()
            ))
        } else if e.kind() == io::ErrorKind::UnexpectedEof {
            Outcome::critical(format!(
                "{}: connection closed by the server while {doing}",
                self.display()
            ))
        } else {
            Outcome::critical(format!("{}: {doing}: {e}", self.display()))
        }
    }

    /// Connect over TCP, trying each address of the host, with read and write timeouts.
    pub fn tcp(&self) -> Result<TcpStream, Outcome> {
        let addrs: Vec<_> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| Outcome::critical(format!("cannot resolve {}: {e}", self.host)))?
            .collect();
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(s) => {
                    s.set_read_timeout(Some(self.timeout))
                        .and_then(|()| s.set_write_timeout(Some(self.timeout)))
                        .map_err(|e| self.io_error("setting timeouts", &e))?;
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => self.io_error("connecting", &e),
            None => Outcome::critical(format!("{} resolves to no address", self.host)),
        })
    }

    /// TCP, then a complete TLS handshake sending `sni` (nothing else is sent before it
    /// has finished, and so before the verifier has accepted the certificate).
    pub fn tls(
        &self,
        config: Arc<rustls::ClientConfig>,
        sni: ServerName<'static>,
        verifier: &Verifier,
    ) -> Result<StreamOwned<ClientConnection, TcpStream>, Outcome> {
        let mut tcp = self.tcp()?;
        let mut conn =
            ClientConnection::new(config, sni).map_err(|e| Outcome::unknown(format!("TLS configuration: {e}")))?;
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut tcp) {
                if let Some(p) = verifier.problem() {
                    return Err(Outcome::critical(format!("{}: {p}", self.display())));
                }
                return Err(self.io_error("in the TLS handshake", &e));
            }
        }
        Ok(StreamOwned::new(conn, tcp))
    }

    /// A connection for a line protocol: plain, or implicit TLS with `tls` (strict
    /// verification unless `--ignore-invalid`).
    pub fn connect(&self, tls: Option<&TlsSettings>) -> Result<LineConn, Outcome> {
        let stream = match tls {
            None => Stream::Plain(self.tcp()?),
            Some(t) => {
                let verifier = t.verifier(true)?;
                let config = tls::client_config(Arc::clone(&verifier))?;
                Stream::Tls(Box::new(self.tls(config, t.server_name()?, &verifier)?))
            }
        };
        Ok(LineConn {
            reader: BufReader::new(stream),
            endpoint: self.clone(),
        })
    }
}

/// A plain or TLS stream.
pub enum Stream {
    /// TCP.
    Plain(TcpStream),
    /// Implicit TLS.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
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

/// A line-protocol connection.
pub struct LineConn {
    reader: BufReader<Stream>,
    endpoint: Endpoint,
}

impl LineConn {
    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// One line, without its CR LF (lossy UTF-8).
    pub fn read_line(&mut self, doing: &str) -> Result<String, Outcome> {
        let mut buf = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut buf)
            .map_err(|e| self.endpoint.io_error(doing, &e))?;
        if n == 0 {
            return Err(self
                .endpoint
                .io_error(doing, &io::Error::from(io::ErrorKind::UnexpectedEof)));
        }
        if !buf.ends_with(b"\n") {
            return Err(Outcome::critical(format!(
                "{}: a line of the server's answer is too long or cut short, while {doing}",
                self.endpoint.display()
            )));
        }
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// Exactly `n` bytes (an IMAP literal).
    pub fn read_exact(&mut self, n: usize, doing: &str) -> Result<Vec<u8>, Outcome> {
        let mut buf = vec![0; n];
        self.reader
            .read_exact(&mut buf)
            .map_err(|e| self.endpoint.io_error(doing, &e))?;
        Ok(buf)
    }

    /// Send `bytes` as they are.
    pub fn send_raw(&mut self, bytes: &[u8], doing: &str) -> Result<(), Outcome> {
        let s = self.reader.get_mut();
        s.write_all(bytes)
            .and_then(|()| s.flush())
            .map_err(|e| self.endpoint.io_error(doing, &e))
    }

    /// Send `line` and CR LF.
    pub fn send_line(&mut self, line: &str, doing: &str) -> Result<(), Outcome> {
        let mut b = Vec::with_capacity(line.len() + 2);
        b.extend_from_slice(line.as_bytes());
        b.extend_from_slice(b"\r\n");
        self.send_raw(&b, doing)
    }
}
