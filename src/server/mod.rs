//! Built-in servers (`loadmux serve`), for demos, for tests, and as a second, smaller
//! example of a mio event loop (`event_loop.rs`).
//!
//! Each of the `threads` event loops has its own `mio::Poll` and its own listening
//! socket on the same address (SO_REUSEPORT), so the kernel spreads new connections
//! over the threads and they share nothing.

mod event_loop;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use mio::net::TcpListener;
use mio::{Interest, Poll, Waker};
use socket2::{Domain, Protocol, Socket, Type};

use event_loop::{EventLoop, LISTENER, WAKER};

/// Listen backlog: enough for tests that open ~20 000 connections at once (the kernel
/// caps it at net.core.somaxconn).
const BACKLOG: i32 = 65_535;

/// What the server does with each connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Writes back every byte it reads.
    Echo,
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
}

impl ServerConfig {
    /// An echo server on `listen` with one thread.
    pub fn echo(listen: SocketAddr) -> ServerConfig {
        ServerConfig { mode: Mode::Echo, listen, threads: 1 }
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
}

impl ServerCounters {
    fn merge(&mut self, other: &ServerCounters) {
        self.accepted += other.accepted;
        self.closed += other.closed;
        self.bytes_received += other.bytes_received;
        self.bytes_sent += other.bytes_sent;
    }
}

impl fmt::Display for ServerCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "accepted {} connections ({} closed), received {} bytes, sent {} bytes",
            self.accepted, self.closed, self.bytes_received, self.bytes_sent
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
    for index in 0..config.threads.max(1) {
        let mut listener = bind(addr)?;
        // Port 0 on the first listener picks the port; the others join it.
        addr = listener.local_addr()?;
        let poll = Poll::new()?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        wakers.push(Waker::new(poll.registry(), WAKER)?);
        let event_loop = EventLoop::new(poll, listener, config.mode, stop.clone());
        threads
            .push(std::thread::Builder::new().name(format!("loadmux-serve-{index}")).spawn(move || event_loop.run())?);
    }
    Ok(ServerHandle { local_addr: addr, stop, wakers, threads })
}

/// A nonblocking listener with SO_REUSEADDR and SO_REUSEPORT, so several threads can
/// each have one on the same port.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking(), Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}
