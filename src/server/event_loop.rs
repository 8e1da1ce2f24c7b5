//! One server thread: a `mio::Poll` with a listener, a waker and a slab of
//! connections. The same shape as the client's worker, smaller.
//!
//! ```text
//! loop {
//!     poll(timeout = next chaos timer or stall end)
//!     LISTENER  → accept until WouldBlock, register each connection once
//!     WAKER     → stop flag set? leave
//!     token     → serve(): read what the mode wants, write what is owed
//!     timers    → delayed and dripped chaos bytes that are due
//! }
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, trace, warn};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::chaos::{ChaosConn, Fault};
use super::http::HttpRequests;
use super::socket::Listener;
use super::tls::TlsAcceptor;
use super::transport::Transport;
use super::websocket::WsEcho;
use super::{Mode, ServerConfig, ServerCounters};
use crate::io_kind::{interrupted, would_block};

/// The listening socket's token.
pub const LISTENER: Token = Token(usize::MAX - 1);
/// The waker's token (`ServerHandle::stop`).
pub const WAKER: Token = Token(usize::MAX);

/// Reads or writes one event may do on one connection before the others get a turn
/// (a flooding client, or source mode's endless writes).
const IO_BUDGET: usize = 16;

/// Bytes owed to a client beyond which the server stops reading from it: a client
/// that sends without reading gets backpressure instead of unbounded buffering.
const MAX_OWED: usize = 256 * 1024;

/// What source and flood modes write, shared by all connections.
static STREAM_BYTES: [u8; 64 * 1024] = [b'x'; 64 * 1024];

/// One accepted connection.
struct ServerConn {
    /// The socket, or TLS over it: the modes read and write plaintext through it.
    stream: Transport,
    /// Bytes owed to the client that the socket has not taken yet. Empty, and
    /// unallocated, for most connections most of the time.
    pending: Vec<u8>,
    /// HTTP mode: the request parser.
    http: Option<Box<HttpRequests>>,
    /// Chaos mode: the faults' per-connection state.
    chaos: Option<Box<ChaosConn>>,
    /// WebSocket mode: the handshake and frame echo.
    ws: Option<Box<WsEcho>>,
}

/// A server thread's state.
pub struct EventLoop {
    poll: Poll,
    listener: Listener,
    /// `--tls`: wraps each accepted socket.
    tls: Option<TlsAcceptor>,
    config: ServerConfig,
    stop: Arc<AtomicBool>,
    started: Instant,
    conns: Slab<ServerConn>,
    /// Chaos timers: (due, key), validated on pop against the connection's own due time.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Connections that used up their I/O budget while still ready.
    again: Vec<usize>,
    /// The stall window had begun at the last look (so its end is noticed once).
    was_stalled: bool,
    rng: fastrand::Rng,
    scratch: Vec<u8>,
    counters: ServerCounters,
}

impl EventLoop {
    /// A loop serving `listener` (already registered as `LISTENER`, unless chaos
    /// `--never-accept`).
    pub fn new(
        poll: Poll,
        listener: Listener,
        tls: Option<TlsAcceptor>,
        config: ServerConfig,
        stop: Arc<AtomicBool>,
        started: Instant,
        thread: u64,
    ) -> Self {
        let rng = fastrand::Rng::with_seed(config.chaos.seed.wrapping_add(thread));
        EventLoop {
            poll,
            listener,
            tls,
            config,
            stop,
            started,
            conns: Slab::new(),
            timers: BinaryHeap::new(),
            again: Vec::new(),
            was_stalled: false,
            rng,
            scratch: vec![0; 64 * 1024],
            counters: ServerCounters::default(),
        }
    }

    /// Serves until the stop flag is set; returns what it counted.
    pub fn run(mut self) -> ServerCounters {
        let mut events = Events::with_capacity(1024);
        while !self.stop.load(Ordering::Relaxed) {
            let timeout = self.poll_timeout(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if interrupted(&e) {
                    continue; // A signal: poll again.
                }
                warn!("server poll failed: {e}");
                break;
            }
            let stalled = self.stalled(Instant::now());
            for event in events.iter() {
                trace!("server event {:?} r={} w={}", event.token(), event.is_readable(), event.is_writable());
                match event.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {} // The stop flag is checked at the top of the loop.
                    // During a stall nothing is read or written; the stall's end
                    // serves every connection, since these edges are gone by then.
                    Token(_) if stalled => {}
                    Token(key) => {
                        self.serve(key);
                        // The client's FIN came with its last data: a handler that
                        // stopped at a short read (sink) has not seen the EOF, and no
                        // edge will come for it. One more look next turn finds it.
                        if event.is_read_closed() {
                            self.again.push(key);
                        }
                    }
                }
            }
            if self.was_stalled && !stalled {
                let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
                keys.into_iter().for_each(|k| self.serve(k));
            }
            self.was_stalled = stalled;
            if !stalled {
                self.fire_timers(Instant::now());
                for key in std::mem::take(&mut self.again) {
                    self.serve(key);
                }
            }
        }
        self.counters
    }

    /// True inside chaos `--stall-at .. + --stall-for`.
    fn stalled(&self, now: Instant) -> bool {
        let chaos = &self.config.chaos;
        self.config.mode == Mode::Chaos
            && chaos.stall_at.is_some_and(|at| {
                let since = now.saturating_duration_since(self.started);
                since >= at && since < at + chaos.stall_for
            })
    }

    /// Sleep until the next chaos timer, the stall's start or end, or forever.
    fn poll_timeout(&self, now: Instant) -> Option<Duration> {
        // Connections still ready are served next turn, but not during a stall (they
        // wait for its end, which is a wake-up below): no spinning meanwhile.
        if !self.again.is_empty() && !self.stalled(now) {
            return Some(Duration::ZERO);
        }
        let mut wake = self.timers.peek().map(|Reverse((at, _))| *at);
        if let Some(at) = self.config.chaos.stall_at.filter(|_| self.config.mode == Mode::Chaos) {
            for edge in [self.started + at, self.started + at + self.config.chaos.stall_for] {
                if edge > now {
                    wake = Some(wake.map_or(edge, |w| w.min(edge)));
                }
            }
        }
        // mio rounds the timeout up to whole milliseconds, so a delayed answer is
        // never early.
        wake.map(|w| w.saturating_duration_since(now))
    }

    /// Accepts every pending connection: the listener is edge-triggered too.
    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok(mut socket) => {
                    self.counters.accepted += 1;
                    if self.config.mode == Mode::Chaos && self.config.chaos.accept_close {
                        self.counters.faults += 1;
                        self.counters.closed += 1;
                        // Dropped at once: the client sees EOF (under TLS, in the
                        // middle of its handshake).
                        continue;
                    }
                    let entry = self.conns.vacant_entry();
                    let token = Token(entry.key());
                    // Registered once for both directions; never re-registered.
                    if let Err(e) =
                        self.poll.registry().register(&mut socket, token, Interest::READABLE | Interest::WRITABLE)
                    {
                        warn!("server: cannot register {}: {e}", socket.peer());
                        continue;
                    }
                    debug!("server: accepted {} as token {}", socket.peer(), token.0);
                    let stream = match &self.tls {
                        None => Transport::Plain(socket),
                        Some(acceptor) => match acceptor.accept(socket) {
                            Ok(tls) => Transport::Tls(Box::new(tls)),
                            Err(e) => {
                                warn!("server: cannot start TLS on token {}: {e}", token.0);
                                continue;
                            }
                        },
                    };
                    let http =
                        (self.config.mode == Mode::Http).then(|| Box::new(HttpRequests::new(self.config.http_body)));
                    let chaos = (self.config.mode == Mode::Chaos).then(|| Box::new(ChaosConn::default()));
                    let ws = (self.config.mode == Mode::Ws).then(Box::<WsEcho>::default);
                    entry.insert(ServerConn { stream, pending: Vec::new(), http, chaos, ws });
                }
                // The accept queue is empty.
                Err(e) if would_block(&e) => return,
                Err(e) if interrupted(&e) => continue,
                // Out of descriptors (EMFILE/ENFILE) or a connection that died in the
                // queue: leave the rest queued; the next arrival or close brings
                // another event.
                Err(e) => {
                    warn!("server: accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Moves one connection as far as its socket allows, then closes it if it ended.
    fn serve(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        let now = Instant::now();
        // TLS ciphertext left over from the last turn goes first (the writable edge
        // that brought us here may be for it alone).
        if let Err(e) = conn.stream.flush() {
            return self.close(key, Goodbye::Abrupt, &e.to_string());
        }
        let outcome = match self.config.mode {
            Mode::Echo => echo(conn, &mut self.scratch, &mut self.counters),
            Mode::Sink => sink(conn, &mut self.scratch, &mut self.counters),
            Mode::Source => source(conn, &mut self.scratch, &mut self.counters),
            Mode::Http => http(conn, &mut self.scratch, &mut self.counters),
            Mode::Ws => websocket(conn, &mut self.scratch, &mut self.counters),
            Mode::Chaos => chaos(conn, &self.config, now, &mut self.rng, &mut self.scratch, &mut self.counters),
        };
        match outcome {
            // The client's end came in with its last data: read again next turn to
            // see it. Not while the mode is not reading (bytes owed are holding the
            // reads back, or --flood only writes): that would spin.
            Ok(Served::Done) if conn.stream.end_unreported() && conn.pending.is_empty() && !flooding(conn) => {
                self.again.push(key)
            }
            Ok(Served::Done) => {}
            Ok(Served::Again) => self.again.push(key),
            Ok(Served::At(due)) => self.timers.push(Reverse((due, key))),
            Ok(Served::Close(fault)) => {
                if fault == Fault::Reset {
                    // SO_LINGER 0: the close sends RST instead of FIN.
                    // Best effort: without it the close is a FIN, still a close.
                    let _ = conn.stream.socket().reset_on_close();
                }
                self.counters.faults += 1;
                // A fault is abrupt on purpose: no TLS close_notify either.
                self.close(key, Goodbye::Abrupt, "fault injected");
            }
            // EOF (the client's close_notify included), the end of an HTTP
            // "Connection: close" exchange, or an error: the connection is over.
            Err(e) => self.close(key, Goodbye::Orderly, &e.to_string()),
        }
    }

    /// Ends a connection; an orderly end first says close_notify under TLS (the
    /// answer to the client's own, or an HTTP close).
    fn close(&mut self, key: usize, goodbye: Goodbye, why: &str) {
        debug!("server: token {key} closed: {why}");
        let mut conn = self.conns.remove(key);
        if goodbye == Goodbye::Orderly {
            conn.stream.close_notify();
        }
        self.counters.closed += 1;
    }

    /// Serves the connections whose chaos timers are due.
    fn fire_timers(&mut self, now: Instant) {
        while let Some(&Reverse((at, key))) = self.timers.peek() {
            if at > now {
                return;
            }
            self.timers.pop();
            // Stale entries (the connection moved on, or its slot was reused) find
            // nothing due and cost one look.
            if self.conns.get(key).and_then(|c| c.chaos.as_ref()).and_then(|c| c.next_due()).is_some_and(|d| d <= now) {
                self.serve(key);
            }
        }
    }
}

/// How a connection ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Goodbye {
    /// TLS says close_notify first (after a fatal alert rustls sends nothing more).
    Orderly,
    /// Just close the socket: a chaos fault, or a socket that already failed.
    Abrupt,
}

/// What serving a connection left to do.
enum Served {
    /// Nothing until its next event.
    Done,
    /// Its I/O budget ran out while it was still ready: serve it again next turn.
    Again,
    /// Serve it again at this time (chaos delay or drip).
    At(Instant),
    /// Close it, injecting this fault.
    Close(Fault),
}

/// Echo: write back every byte read. Fast path: read into the thread's scratch buffer
/// and write straight back; only a short write leaves bytes in `pending`, and while
/// any are pending the connection is not read (backpressure).
fn echo(conn: &mut ServerConn, scratch: &mut [u8], counters: &mut ServerCounters) -> io::Result<Served> {
    flush(conn, counters)?;
    for _ in 0..IO_BUDGET {
        if !conn.pending.is_empty() {
            return Ok(Served::Done); // Wait for the writable edge.
        }
        let Some(n) = read_some(&mut conn.stream, scratch, counters)? else { return Ok(Served::Done) };
        let written = write_some(&mut conn.stream, &scratch[..n], counters)?;
        conn.pending.extend_from_slice(&scratch[written..n]);
        if n < scratch.len() {
            return Ok(Served::Done); // A short read: the receive queue is empty.
        }
    }
    Ok(Served::Again)
}

/// Sink: read and discard.
fn sink(conn: &mut ServerConn, scratch: &mut [u8], counters: &mut ServerCounters) -> io::Result<Served> {
    for _ in 0..IO_BUDGET {
        match read_some(&mut conn.stream, scratch, counters)? {
            Some(n) if n == scratch.len() => continue,
            _ => return Ok(Served::Done),
        }
    }
    Ok(Served::Again)
}

/// Source: write an endless stream; read and discard whatever comes in.
fn source(conn: &mut ServerConn, scratch: &mut [u8], counters: &mut ServerCounters) -> io::Result<Served> {
    while read_some(&mut conn.stream, scratch, counters)?.is_some_and(|n| n == scratch.len()) {}
    for _ in 0..IO_BUDGET {
        if write_some(&mut conn.stream, &STREAM_BYTES, counters)? < STREAM_BYTES.len() {
            return Ok(Served::Done); // Send buffer full: the writable edge brings us back.
        }
    }
    Ok(Served::Again)
}

/// HTTP: parse the requests read, queue their responses, write them.
fn http(conn: &mut ServerConn, scratch: &mut [u8], counters: &mut ServerCounters) -> io::Result<Served> {
    answer(conn, scratch, counters, |c| c.http.as_deref_mut().map(|p| p as &mut dyn Answerer))
}

/// WebSocket: upgrade, then echo frames, answering ping and close (`websocket.rs`).
fn websocket(conn: &mut ServerConn, scratch: &mut [u8], counters: &mut ServerCounters) -> io::Result<Served> {
    answer(conn, scratch, counters, |c| c.ws.as_deref_mut().map(|e| e as &mut dyn Answerer))
}

/// A mode that parses what the client sends and queues its answers (HTTP, WebSocket).
trait Answerer {
    /// Takes bytes read from the client; answers are appended to `out`.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, counters: &mut ServerCounters) -> io::Result<()>;
    /// The connection ends once the answers already queued are out.
    fn closing(&self) -> bool;
}

impl Answerer for HttpRequests {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, counters: &mut ServerCounters) -> io::Result<()> {
        HttpRequests::feed(self, input, out, counters)
    }

    /// `Connection: close` (or HTTP/1.0).
    fn closing(&self) -> bool {
        self.closing
    }
}

impl Answerer for WsEcho {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, counters: &mut ServerCounters) -> io::Result<()> {
        WsEcho::feed(self, input, out, counters)
    }

    /// A close answered, or an upgrade refused.
    fn closing(&self) -> bool {
        WsEcho::closing(self)
    }
}

/// Reads, answers and writes for a connection whose mode is an [`Answerer`] (`mode`
/// picks it out of the connection), until the socket is drained, the answers back
/// up, or the budget is spent.
fn answer(
    conn: &mut ServerConn,
    scratch: &mut [u8],
    counters: &mut ServerCounters,
    mode: fn(&mut ServerConn) -> Option<&mut dyn Answerer>,
) -> io::Result<Served> {
    flush(conn, counters)?;
    for _ in 0..IO_BUDGET {
        let Some(answerer) = mode(conn) else { return Ok(Served::Done) };
        if answerer.closing() {
            return if conn.pending.is_empty() {
                Err(io::ErrorKind::ConnectionAborted.into())
            } else {
                Ok(Served::Done)
            };
        }
        if conn.pending.len() > MAX_OWED {
            return Ok(Served::Done); // Backpressure until the client reads.
        }
        let Some(n) = read_some(&mut conn.stream, scratch, counters)? else { return Ok(Served::Done) };
        // The answers go to `pending`, which the answerer's own borrow of the
        // connection would otherwise cover: moved out and back (no copy, no allocation).
        let mut pending = std::mem::take(&mut conn.pending);
        let fed = mode(conn).map_or(Ok(()), |a| a.feed(&scratch[..n], &mut pending, counters));
        conn.pending = pending;
        fed?;
        flush(conn, counters)?;
        if n < scratch.len() && !mode(conn).is_some_and(|a| a.closing()) {
            return Ok(Served::Done); // A short read: the receive queue is empty.
        }
    }
    Ok(Served::Again)
}

/// Chaos: echo, with the configured faults.
fn chaos(
    conn: &mut ServerConn,
    config: &ServerConfig,
    now: Instant,
    rng: &mut fastrand::Rng,
    scratch: &mut [u8],
    counters: &mut ServerCounters,
) -> io::Result<Served> {
    let faults = &config.chaos;
    let Some(state) = conn.chaos.as_mut() else { return Ok(Served::Done) };
    // Bytes whose time has come (delay, drip) join what is owed.
    state.release_due(now, faults, &mut conn.pending);
    flush(conn, counters)?;
    let Some(state) = conn.chaos.as_mut() else { return Ok(Served::Done) };
    if let Some(fault) = state.ready_to_close(conn.pending.is_empty()) {
        return Ok(Served::Close(fault));
    }
    if state.flooding && conn.pending.is_empty() {
        for _ in 0..IO_BUDGET {
            if write_some(&mut conn.stream, &STREAM_BYTES, counters)? < STREAM_BYTES.len() {
                return Ok(Served::Done);
            }
        }
        return Ok(Served::Again);
    }
    if faults.no_read || state.closing.is_some() {
        return Ok(state.next_due().map_or(Served::Done, Served::At));
    }
    for _ in 0..IO_BUDGET {
        if conn.pending.len() + state.queued() > MAX_OWED {
            break; // Backpressure: answers owed are not going out fast enough.
        }
        let Some(n) = read_some(&mut conn.stream, scratch, counters)? else { break };
        // The chunk's delay counts from when it was read, not from when this call
        // began: a flush above may have let the client answer, and the thread may
        // have been preempted since (observed: answers up to 5 ms early).
        let read_at = Instant::now();
        state.on_chunk(&scratch[..n], faults, read_at, rng, &mut conn.pending, counters);
        if n < scratch.len() {
            break;
        }
    }
    flush(conn, counters)?;
    let state = conn.chaos.as_mut().expect("chaos state");
    if let Some(fault) = state.ready_to_close(conn.pending.is_empty()) {
        return Ok(Served::Close(fault));
    }
    if state.flooding {
        return Ok(Served::Again);
    }
    Ok(state.next_due().map_or(Served::Done, Served::At))
}

/// True once chaos `--flood` has started on this connection (it only writes then).
fn flooding(conn: &ServerConn) -> bool {
    conn.chaos.as_ref().is_some_and(|c| c.flooding)
}

/// Reads once. `Ok(None)`: nothing to read now. EOF is an error (the caller closes).
fn read_some(stream: &mut Transport, scratch: &mut [u8], counters: &mut ServerCounters) -> io::Result<Option<usize>> {
    loop {
        return match stream.read(scratch, counters) {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()), // The client closed.
            Ok(n) => {
                counters.bytes_received += n as u64;
                Ok(Some(n))
            }
            Err(e) if would_block(&e) => Ok(None), // Drained: wait for the next edge.
            Err(e) if interrupted(&e) => continue,
            Err(e) => Err(e),
        };
    }
}

/// Writes what is owed; whatever the socket does not take stays pending.
fn flush(conn: &mut ServerConn, counters: &mut ServerCounters) -> io::Result<()> {
    if conn.pending.is_empty() {
        return Ok(());
    }
    let written = write_some(&mut conn.stream, &conn.pending, counters)?;
    conn.pending.drain(..written);
    if conn.pending.is_empty() {
        conn.pending = Vec::new(); // Give the memory back.
    }
    Ok(())
}

/// Writes as much of `bytes` as the socket takes now; returns how much that was.
fn write_some(stream: &mut Transport, bytes: &[u8], counters: &mut ServerCounters) -> io::Result<usize> {
    let mut done = 0;
    while done < bytes.len() {
        match stream.write(&bytes[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                done += n;
                counters.bytes_sent += n as u64;
            }
            Err(e) if would_block(&e) => break, // Send buffer full.
            Err(e) if interrupted(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
