//! Small in-process network listeners on 127.0.0.1 for tests of checks and probes: a TCP
//! server that greets every connection with a banner ([`TcpBanner`], and [`SshBanner`],
//! an OpenSSH-like greeting), a UDP server that answers every datagram
//! ([`UdpResponder`]), and [`free_port`] for a port where nothing listens.
//!
//! Each listener runs in threads of the test process and stops when dropped: its port
//! then refuses connections (TCP) or no longer answers (UDP).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the accept and receive loops look at the stop flag.
const POLL: Duration = Duration::from_millis(10);

/// The greeting of [`SshBanner`]: Debian 12's OpenSSH.
pub const SSH_BANNER: &str = "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n";

/// A port of 127.0.0.1 on which nothing listens, TCP or UDP, when asked (another
/// process could take it later; the kernel hands out ephemeral ports in turn, so not
/// soon). For tests of a service that is down.
pub fn free_port() -> u16 {
    for _ in 0..20 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind a free TCP port");
        let port = tcp.local_addr().expect("the port").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("found no port of 127.0.0.1 free for both TCP and UDP");
}

/// What the connection threads of a [`TcpBanner`] share with it.
#[derive(Debug, Default)]
struct TcpShared {
    stop: AtomicBool,
    connections: AtomicUsize,
    /// Everything the clients sent, in the order it was read.
    received: Mutex<Vec<u8>>,
    /// The open connections, shut down on drop.
    open: Mutex<Vec<TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A TCP server on 127.0.0.1 that writes its banner to every connection and then reads
/// the connection until the client closes it. Dropping it closes the listening socket
/// and every open connection, and joins its threads.
#[derive(Debug)]
pub struct TcpBanner {
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    shared: Arc<TcpShared>,
    accept: Option<JoinHandle<()>>,
}

impl TcpBanner {
    /// Listen on a free port of 127.0.0.1 and greet every connection with `banner`.
    pub fn start(banner: &str) -> TcpBanner {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("the listening address").port();
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let shared = Arc::new(TcpShared::default());
        let banner = banner.as_bytes().to_vec();
        let accept = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept_loop(&listener, &banner, &shared))
        };
        TcpBanner {
            port,
            shared,
            accept: Some(accept),
        }
    }

    /// How many connections it has accepted.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Everything the clients have sent so far (all connections, as read).
    pub fn received(&self) -> Vec<u8> {
        self.shared.received.lock().expect("the received bytes").clone()
    }
}

fn accept_loop(listener: &TcpListener, banner: &[u8], shared: &Arc<TcpShared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_nonblocking(false);
                if let Ok(copy) = stream.try_clone() {
                    shared.open.lock().expect("the open connections").push(copy);
                }
                let banner = banner.to_vec();
                let for_thread = Arc::clone(shared);
                let handle = std::thread::spawn(move || serve(stream, &banner, &for_thread));
                shared.threads.lock().expect("the connection threads").push(handle);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(_) => std::thread::sleep(POLL),
        }
    }
    // The listener is dropped by the caller's return: the port refuses from now on.
}

fn serve(mut stream: TcpStream, banner: &[u8], shared: &TcpShared) {
    if stream.write_all(banner).and_then(|()| stream.flush()).is_err() {
        return;
    }
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => shared
                .received
                .lock()
                .expect("the received bytes")
                .extend_from_slice(&buf[..n]),
        }
    }
    // Closed now, although the listener keeps a handle until it is dropped.
    let _ = stream.shutdown(Shutdown::Both);
}

impl Drop for TcpBanner {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for stream in self.shared.open.lock().expect("the open connections").drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
        let threads: Vec<_> = self.shared.threads.lock().expect("the threads").drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

/// A TCP server that greets like an OpenSSH server: [`TcpBanner`] with [`SSH_BANNER`].
#[derive(Debug)]
pub struct SshBanner;

impl SshBanner {
    /// [`TcpBanner::start`] with [`SSH_BANNER`].
    pub fn start() -> TcpBanner {
        TcpBanner::start(SSH_BANNER)
    }
}

/// A UDP server on 127.0.0.1 that answers every datagram with its reply, to the
/// datagram's sender. Dropping it closes the socket and joins its thread.
#[derive(Debug)]
pub struct UdpResponder {
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    stop: Arc<AtomicBool>,
    datagrams: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl UdpResponder {
    /// Bind a free UDP port of 127.0.0.1 and answer every datagram with `reply`.
    pub fn start(reply: &[u8]) -> UdpResponder {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 (UDP)");
        let port = socket.local_addr().expect("the UDP address").port();
        socket.set_read_timeout(Some(POLL)).expect("a receive timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let datagrams = Arc::new(AtomicUsize::new(0));
        let reply = reply.to_vec();
        let thread = {
            let (stop, datagrams) = (Arc::clone(&stop), Arc::clone(&datagrams));
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while !stop.load(Ordering::SeqCst) {
                    if let Ok((_, from)) = socket.recv_from(&mut buf) {
                        datagrams.fetch_add(1, Ordering::SeqCst);
                        let _ = socket.send_to(&reply, from);
                    }
                }
            })
        };
        UdpResponder {
            port,
            stop,
            datagrams,
            thread: Some(thread),
        }
    }

    /// How many datagrams it has received (and answered).
    pub fn datagrams(&self) -> usize {
        self.datagrams.load(Ordering::SeqCst)
    }
}

impl Drop for UdpResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long enough for anything on loopback; only a bound on a test that fails.
    const BOUND: Duration = Duration::from_secs(10);

    fn connect(port: u16) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(BOUND)).expect("a read timeout");
        s
    }

    fn read_exactly(s: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        s.read_exact(&mut buf).expect("read the banner");
        buf
    }

    #[test]
    fn tcp_banner_greets_every_connection_reads_until_closed_and_stops() {
        let banner = TcpBanner::start("220 mail.example.org ESMTP\r\n");
        let port = banner.port;
        let mut a = connect(port);
        let mut b = connect(port);
        assert_eq!(read_exactly(&mut a, 28), b"220 mail.example.org ESMTP\r\n");
        assert_eq!(read_exactly(&mut b, 28), b"220 mail.example.org ESMTP\r\n");
        a.write_all(b"QUIT\r\n").expect("write");
        drop(a);
        // Nothing more than the banner: `b` sees its connection stay open, without data,
        // until the server stops.
        b.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("a short timeout");
        let mut one = [0u8; 1];
        let err = b.read(&mut one).expect_err("no more bytes while the server runs");
        assert!(
            matches!(
                err.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{err}"
        );
        assert_eq!(banner.connections(), 2);
        let end = std::time::Instant::now() + BOUND;
        while banner.received() != b"QUIT\r\n" && std::time::Instant::now() < end {
            std::thread::sleep(POLL);
        }
        assert_eq!(banner.received(), b"QUIT\r\n");
        drop(banner);
        // The open connection is closed: EOF (or a reset), and the port refuses.
        b.set_read_timeout(Some(BOUND)).expect("a read timeout");
        assert!(matches!(b.read(&mut one), Ok(0) | Err(_)));
        let refused = TcpStream::connect(("127.0.0.1", port)).expect_err("the port refuses after drop");
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused, "{refused}");
    }

    #[test]
    fn ssh_banner_greets_like_openssh() {
        let ssh = SshBanner::start();
        let mut s = connect(ssh.port);
        assert_eq!(
            read_exactly(&mut s, SSH_BANNER.len()),
            b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"
        );
    }

    #[test]
    fn udp_responder_answers_every_datagram_and_stops() {
        let udp = UdpResponder::start(b"\x00pong\xff");
        let port = udp.port;
        let client = UdpSocket::bind("127.0.0.1:0").expect("bind a client socket");
        client.set_read_timeout(Some(BOUND)).expect("a read timeout");
        client.connect(("127.0.0.1", port)).expect("connect the client socket");
        let mut buf = [0u8; 64];
        for ping in [&b"ping"[..], b"", b"another"] {
            client.send(ping).expect("send");
            let n = client.recv(&mut buf).expect("the reply");
            assert_eq!(&buf[..n], b"\x00pong\xff");
        }
        assert_eq!(udp.datagrams(), 3);
        drop(udp);
        // Stopped: a datagram gets no answer (on loopback, an ICMP port unreachable,
        // which a connected socket reports as an error, or silence).
        client
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("a short timeout");
        let _ = client.send(b"ping");
        assert!(client.recv(&mut buf).is_err(), "no answer after drop");
        // And the port is free to bind again.
        UdpSocket::bind(("127.0.0.1", port)).expect("the port is released");
    }

    #[test]
    fn free_port_refuses_and_is_not_answered() {
        let port = free_port();
        let refused = TcpStream::connect(("127.0.0.1", port)).expect_err("nothing listens");
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused, "{refused}");
        let client = UdpSocket::bind("127.0.0.1:0").expect("bind a client socket");
        client
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("a short timeout");
        client.connect(("127.0.0.1", port)).expect("connect the client socket");
        let _ = client.send(b"ping");
        let mut buf = [0u8; 16];
        assert!(client.recv(&mut buf).is_err(), "nothing answers on UDP");
    }
}
