//! Built-in servers (`loadmux serve`), for demos, for tests, and as a second, smaller
//! example of a mio event loop (`event_loop.rs`).
//!
//! Each of the `threads` event loops has its own `mio::Poll` and its own listening
//! socket on the same address (SO_REUSEPORT), so the kernel spreads new connections
//! over the threads and they share nothing. A Unix socket has no SO_REUSEPORT: the
//! threads share one listener instead (`socket.rs`).
//!
//! Every mode runs over TCP or a Unix socket, in plaintext or TLS (`--tls`): the
//! modes read and write through a transport (`transport.rs`) and never see
//! the difference.

#[cfg(feature = "tls")]
pub mod cert;
mod chaos;
mod event_loop;
mod http;
mod listen_addr;
mod socket;
mod socket_file;
#[cfg_attr(not(feature = "tls"), path = "tls_disabled.rs")]
mod tls;
mod transport;
mod websocket;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Interest, Poll, Waker};

use event_loop::{EventLoop, LISTENER, WAKER};
pub use listen_addr::{ListenAddr, UNIX_PREFIX};
use socket::Listener;
use socket_file::SocketFile;
use tls::TlsAcceptor;

/// The one-line refusal of `--tls` in a build without the `tls` feature.
pub const NO_TLS: &str = "this loadmux was built without TLS (cargo build --features tls)";

/// Listen backlog: enough for tests that open ~20 000 connections at once (the kernel
/// caps it at net.core.somaxconn).
const BACKLOG: i32 = 65_535;

/// What the server does with each connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Writes back every byte it reads.
    Echo,
    /// Reads and discards.
    Sink,
    /// Writes an endless stream; discards what it reads.
    Source,
    /// A minimal keep-alive HTTP/1.1 server answering 200 OK.
    Http,
    /// Echo, with the faults of [`Chaos`].
    Chaos,
    /// A WebSocket echo server: upgrade, echo every frame, answer ping and close.
    Ws,
}

/// Faults the chaos server injects (`loadmux serve --mode chaos`); they combine.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chaos {
    /// Echo each chunk this long after it was read (timer-driven, never blocking).
    pub delay: Option<Duration>,
    /// At this time after start, stop reading and answering on every connection...
    pub stall_at: Option<Duration>,
    /// ...for this long, then resume.
    pub stall_for: Duration,
    /// After echoing this many bytes on a connection, reset it (RST).
    pub reset_after: Option<u64>,
    /// After echoing this many bytes on a connection, close it (FIN).
    pub close_after: Option<u64>,
    /// Flip the first byte of each echoed chunk.
    pub corrupt: bool,
    /// Send responses one byte per this interval.
    pub drip: Option<Duration>,
    /// After the first read, send an endless stream with no delimiter.
    pub flood: bool,
    /// Accept, then never read.
    pub no_read: bool,
    /// Listen with a backlog of 1 and never accept.
    pub never_accept: bool,
    /// Accept and close at once.
    pub accept_close: bool,
    /// The share of chunks (0 to 1) that get one fault picked at random: reset, close
    /// or corrupt.
    pub fail_rate: f64,
    /// Seed of the fault picker.
    pub seed: u64,
}

/// Where `serve --tls` gets its certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsIdentity {
    /// A certificate chain and its private key, PEM files (`--cert`, `--key`).
    Files {
        /// The certificate chain, server certificate first.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
    /// Made at start: a new CA and a server certificate for localhost, 127.0.0.1
    /// and ::1. The CA is written here, for clients' `--cacert`.
    Generated {
        /// Where the CA certificate is written.
        ca_out: PathBuf,
    },
}

/// TLS settings of a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// The server's certificate.
    pub identity: TlsIdentity,
    /// ALPN protocols offered, most preferred first (empty: no ALPN).
    pub alpn: Vec<String>,
    /// Require a client certificate signed by a CA in this PEM file.
    pub client_ca: Option<PathBuf>,
}

/// A validated server configuration.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// What to do with each connection.
    pub mode: Mode,
    /// Address to listen on; TCP port 0 picks a free port.
    pub listen: ListenAddr,
    /// TLS on every connection, or plaintext.
    pub tls: Option<TlsSettings>,
    /// Event-loop threads.
    pub threads: usize,
    /// Body size of the HTTP server's responses.
    pub http_body: usize,
    /// The chaos server's faults.
    pub chaos: Chaos,
}

impl ServerConfig {
    /// An echo server on `listen` with one thread.
    pub fn echo(listen: SocketAddr) -> ServerConfig {
        ServerConfig {
            mode: Mode::Echo,
            listen: ListenAddr::Tcp(listen),
            tls: None,
            threads: 1,
            http_body: 6,
            chaos: Chaos::default(),
        }
    }
}

/// What a server did, printed when it stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerCounters {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections that ended (closed by the client, or failed).
    pub closed: u64,
    /// Bytes read from clients.
    pub bytes_received: u64,
    /// Bytes written to clients.
    pub bytes_sent: u64,
    /// HTTP requests answered (http mode).
    pub requests: u64,
    /// Faults injected (chaos mode).
    pub faults: u64,
    /// TLS handshakes completed (`--tls`), resumed ones included.
    pub tls_handshakes: u64,
    /// TLS handshakes that resumed an earlier session (ticket or session ID).
    pub tls_resumed: u64,
    /// WebSocket messages received complete (ws mode), each echoed.
    pub ws_messages: u64,
}

impl ServerCounters {
    fn merge(&mut self, other: &ServerCounters) {
        self.accepted += other.accepted;
        self.closed += other.closed;
        self.bytes_received += other.bytes_received;
        self.bytes_sent += other.bytes_sent;
        self.requests += other.requests;
        self.faults += other.faults;
        self.tls_handshakes += other.tls_handshakes;
        self.tls_resumed += other.tls_resumed;
        self.ws_messages += other.ws_messages;
    }
}

impl fmt::Display for ServerCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "accepted {} connections ({} closed), received {} bytes, sent {} bytes, {} http requests, {} faults",
            self.accepted, self.closed, self.bytes_received, self.bytes_sent, self.requests, self.faults
        )?;
        if self.tls_handshakes > 0 {
            write!(f, ", {} TLS handshakes ({} resumed)", self.tls_handshakes, self.tls_resumed)?;
        }
        if self.ws_messages > 0 {
            write!(f, ", {} WebSocket messages", self.ws_messages)?;
        }
        Ok(())
    }
}

/// A running server: its address, and the means to stop it. Dropping it stops the
/// server too.
pub struct ServerHandle {
    local_addr: ListenAddr,
    stop: Arc<AtomicBool>,
    wakers: Vec<Waker>,
    threads: Vec<JoinHandle<ServerCounters>>,
    /// A Unix listener's file, removed when the server stops.
    socket_file: Option<SocketFile>,
    /// The CA of a generated certificate, written for clients.
    generated_ca: Option<PathBuf>,
}

impl ServerHandle {
    /// The address the server listens on: with the real port when TCP port 0 was
    /// asked for, or the Unix socket's path.
    pub fn local_addr(&self) -> ListenAddr {
        self.local_addr.clone()
    }

    /// The server threads that have ended although the server was not stopped:
    /// they panicked (or their poller failed). Named for warnings, as in
    /// "built-in server thread 0". Cheap enough to ask often.
    pub fn dead_threads(&self) -> Vec<String> {
        if self.stop.load(Ordering::Relaxed) {
            return Vec::new();
        }
        let dead = self.threads.iter().enumerate().filter(|(_, thread)| thread.is_finished());
        dead.map(|(index, _)| format!("built-in server thread {index}")).collect()
    }

    /// Where the CA of a generated TLS certificate was written (`serve --tls`
    /// without `--cert`): what clients pass as `--cacert`.
    pub fn generated_ca(&self) -> Option<&std::path::Path> {
        self.generated_ca.as_deref()
    }

    /// Stops every server thread, joins them, removes a Unix socket's file, and
    /// returns the summed counters.
    pub fn stop(mut self) -> ServerCounters {
        self.shut_down()
    }

    fn shut_down(&mut self) -> ServerCounters {
        self.stop.store(true, Ordering::Relaxed);
        for waker in &self.wakers {
            let _ = waker.wake();
        }
        let mut total = ServerCounters::default();
        for thread in self.threads.drain(..) {
            if let Ok(counters) = thread.join() {
                total.merge(&counters);
            }
        }
        // The listeners are closed now (their threads have ended): the file can go.
        self.socket_file = None;
        total
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Binds the listeners, prepares TLS, and starts the server threads. Returns once
/// every thread's listener is bound, so connections can be made at once. Errors
/// say what failed ("cannot listen on ...", a certificate file, ...).
pub fn start(config: ServerConfig) -> io::Result<ServerHandle> {
    let backlog = if config.chaos.never_accept { 1 } else { BACKLOG };
    let cannot_listen = |e: io::Error| io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.listen));
    let (first, socket_file) = match &config.listen {
        ListenAddr::Tcp(addr) => (Listener::bind_tcp(*addr, backlog).map_err(cannot_listen)?, None),
        ListenAddr::Unix(path) => {
            socket_file::clear_stale(path).map_err(cannot_listen)?;
            let listener = Listener::bind_unix(path, backlog).map_err(cannot_listen)?;
            (listener, Some(SocketFile::created(path)?))
        }
    };
    // After the bind, so that a server that cannot listen writes no CA file (and a
    // bad certificate removes the socket file again, with `socket_file`).
    let tls = match &config.tls {
        Some(settings) => Some(TlsAcceptor::new(settings)?),
        None => None,
    };
    let generated_ca = match &config.tls {
        Some(TlsSettings { identity: TlsIdentity::Generated { ca_out }, .. }) => Some(ca_out.clone()),
        _ => None,
    };
    // Port 0 picks the port; the other threads' listeners join it.
    let local_addr = match first.tcp_addr()? {
        Some(addr) => ListenAddr::Tcp(addr),
        None => config.listen.clone(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut handle = ServerHandle {
        local_addr,
        stop: stop.clone(),
        wakers: Vec::new(),
        threads: Vec::new(),
        socket_file,
        generated_ca,
    };
    let mut listeners = vec![first];
    for _ in 1..config.threads.max(1) {
        listeners.push(listeners[0].for_another_thread(backlog).map_err(cannot_listen)?);
    }
    let started = Instant::now();
    for (index, mut listener) in listeners.into_iter().enumerate() {
        let poll = Poll::new()?;
        // --never-accept: the listener is never polled, so the backlog fills and stays full.
        if !(config.mode == Mode::Chaos && config.chaos.never_accept) {
            poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        }
        handle.wakers.push(Waker::new(poll.registry(), WAKER)?);
        let event_loop =
            EventLoop::new(poll, listener, tls.clone(), config.clone(), stop.clone(), started, index as u64);
        handle.threads.push(std::thread::Builder::new().name(format!("loadmux-serve-{index}")).spawn(move || {
            crate::fault::server_started(index);
            event_loop.run()
        })?);
    }
    Ok(handle)
}
