//! Built-in servers (`loadmux serve`), for demos, for tests, and as a second, smaller
//! example of a mio event loop (`event_loop.rs`).
//!
//! Each of the `threads` event loops has its own `mio::Poll` and its own listening
//! socket on the same address (SO_REUSEPORT), so the kernel spreads new connections
//! over the threads and they share nothing.

mod chaos;
mod event_loop;
mod http;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Interest, Poll, Waker};
use socket2::Domain;

use event_loop::{EventLoop, LISTENER, WAKER};

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

/// A validated server configuration.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// What to do with each connection.
    pub mode: Mode,
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
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
        ServerConfig { mode: Mode::Echo, listen, threads: 1, http_body: 6, chaos: Chaos::default() }
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
}

impl ServerCounters {
    fn merge(&mut self, other: &ServerCounters) {
        self.accepted += other.accepted;
        self.closed += other.closed;
        self.bytes_received += other.bytes_received;
        self.bytes_sent += other.bytes_sent;
        self.requests += other.requests;
        self.faults += other.faults;
    }
}

impl fmt::Display for ServerCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "accepted {} connections ({} closed), received {} bytes, sent {} bytes, {} http requests, {} faults",
            self.accepted, self.closed, self.bytes_received, self.bytes_sent, self.requests, self.faults
        )
    }
}

/// A running server: its address, and the means to stop it.
pub struct ServerHandle {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    wakers: Vec<Waker>,
    threads: Vec<JoinHandle<ServerCounters>>,
}

impl ServerHandle {
    /// The address the server listens on (the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
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

    /// Stops every server thread, joins them, and returns the summed counters.
    pub fn stop(self) -> ServerCounters {
        self.stop.store(true, Ordering::Relaxed);
        for waker in &self.wakers {
            let _ = waker.wake();
        }
        let mut total = ServerCounters::default();
        for thread in self.threads {
            if let Ok(counters) = thread.join() {
                total.merge(&counters);
            }
        }
        total
    }
}

/// Binds the listeners and starts the server threads. Returns once every thread's
/// listener is bound, so connections can be made at once.
pub fn start(config: ServerConfig) -> io::Result<ServerHandle> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut addr = config.listen;
    let mut wakers = Vec::new();
    let mut threads = Vec::new();
    let started = Instant::now();
    let backlog = if config.chaos.never_accept { 1 } else { BACKLOG };
    for index in 0..config.threads.max(1) {
        let mut listener = bind(addr, backlog)?;
        // Port 0 on the first listener picks the port; the others join it.
        addr = listener.local_addr()?;
        let poll = Poll::new()?;
        // --never-accept: the listener is never polled, so the backlog fills and stays full.
        if !(config.mode == Mode::Chaos && config.chaos.never_accept) {
            poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        }
        wakers.push(Waker::new(poll.registry(), WAKER)?);
        let event_loop = EventLoop::new(poll, listener, config.clone(), stop.clone(), started, index as u64);
        threads.push(std::thread::Builder::new().name(format!("loadmux-serve-{index}")).spawn(move || {
            crate::fault::server_started(index);
            event_loop.run()
        })?);
    }
    Ok(ServerHandle { local_addr: addr, stop, wakers, threads })
}

/// A nonblocking listener with SO_REUSEADDR and SO_REUSEPORT, so several threads can
/// each have one on the same port.
fn bind(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = crate::tcp_socket::nonblocking(Domain::for_address(addr))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(TcpListener::from_std(socket.into()))
}
