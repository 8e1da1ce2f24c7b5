//! One TCP connection's state machine.
//!
//! ```text
//!          ┌──────────── reconnect (backoff) ◄─────────────────────┐
//!          ▼                                                        │
//! Queued ─► Connecting ──writable, no SO_ERROR──► Sending ──all written──► Awaiting
//!              │ timeout / refused                  ▲   │ WouldBlock:        │ response complete:
//!              ▼                                    │   ▼ wait writable      │ send the next one
//!           Backoff ◄─── error / EOF / timeout ─────┴───┴────────────────────┘
//!              │ (no reconnect)
//!              ▼
//!           Closed                 Parked: open, with no request left to send (-n reached)
//! ```
//!
//! The socket is registered once for READABLE | WRITABLE, edge-triggered, and never
//! re-registered: a request costs no `epoll_ctl`. Which events matter is derived from
//! the state (`Sending` cares about writable, every open state about readable), so
//! interest never has to be tracked beside the state.
//!
//! Time is always an argument (`now`): nothing here reads the clock, so every
//! transition is unit-tested with synthetic instants and a scripted socket.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::{debug, trace};

use crate::framing::{Decoder, Step};
use crate::plan::Plan;
use crate::stats::{ErrorKind, WorkerStats};

/// What the state machine needs from a socket. Implemented by `mio::net::TcpStream`,
/// and by a scripted fake in the tests.
pub trait Transport: Read + Write {
    /// The pending socket error (`SO_ERROR`), which is how a failed connect shows.
    fn take_error(&self) -> io::Result<Option<io::Error>>;
    /// The peer's address; `NotConnected` while a connect is still in progress.
    fn peer_addr(&self) -> io::Result<SocketAddr>;
}

impl Transport for mio::net::TcpStream {
    fn take_error(&self) -> io::Result<Option<io::Error>> {
        mio::net::TcpStream::take_error(self)
    }
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        mio::net::TcpStream::peer_addr(self)
    }
}

/// Where a connection is in its life. Each state carries exactly the data it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting for the worker's connect pacer to give it a slot.
    Queued,
    /// Waiting out the reconnect backoff.
    Backoff {
        /// When to queue for a connect again.
        until: Instant,
    },
    /// `connect()` was called; waiting for the handshake.
    Connecting {
        /// When `connect()` was called (connect latency starts here).
        since: Instant,
    },
    /// Writing a request; `written` bytes are out. Responses are read meanwhile, so a
    /// server that echoes while we write can never deadlock us.
    Sending {
        /// Bytes of the request written so far.
        written: usize,
        /// When the request's first byte was due to go out (latency starts here).
        sent_at: Instant,
    },
    /// The whole request is written; waiting for its response.
    Awaiting {
        /// When the request's first byte was due to go out.
        sent_at: Instant,
    },
    /// Open, with no request left to send (the `-n` budget is spent).
    Parked,
    /// Closed for good (`--no-reconnect`, or the run is over).
    Closed,
}

impl State {
    /// Short name for trace logs.
    pub fn name(&self) -> &'static str {
        match self {
            State::Queued => "Queued",
            State::Backoff { .. } => "Backoff",
            State::Connecting { .. } => "Connecting",
            State::Sending { .. } => "Sending",
            State::Awaiting { .. } => "Awaiting",
            State::Parked => "Parked",
            State::Closed => "Closed",
        }
    }

    /// True while a TCP connection is established.
    pub fn is_established(&self) -> bool {
        matches!(
            self,
            State::Sending { .. } | State::Awaiting { .. } | State::Parked
        )
    }

    /// True while a request is out and its response is due.
    pub fn request_in_flight(&self) -> bool {
        matches!(self, State::Sending { .. } | State::Awaiting { .. })
    }
}

/// What the worker must do for a connection after a handler ran.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// Nothing beyond re-arming its deadline.
    Nothing,
    /// It is `Queued`: put it in the connect queue.
    Queue,
}

/// How many requests a worker may still start (`-n`), shared by its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// `None`: unlimited.
    remaining: Option<u64>,
}

impl Budget {
    /// A budget of `n` requests, or unlimited.
    pub fn new(n: Option<u64>) -> Self {
        Budget { remaining: n }
    }

    /// Takes one request from the budget; false when it is spent.
    pub fn take(&mut self) -> bool {
        match &mut self.remaining {
            None => true,
            Some(0) => false,
            Some(n) => {
                *n -= 1;
                true
            }
        }
    }

    /// Returns a request whose response will never come (its connection died), so
    /// that `-n N` still completes N.
    pub fn give_back(&mut self) {
        if let Some(n) = &mut self.remaining {
            *n += 1;
        }
    }
}

/// The worker-owned things a handler may touch.
pub struct Ctx<'a> {
    /// The current time, read once per event by the worker.
    pub now: Instant,
    /// The run's settings: message, framing, timeouts, reconnect policy.
    pub plan: &'a Plan,
    /// This worker's statistics.
    pub stats: &'a mut WorkerStats,
    /// This worker's request budget.
    pub budget: &'a mut Budget,
}

/// One connection slot: a virtual user that keeps a TCP connection open to `target`,
/// reconnecting as the policy allows.
#[derive(Debug)]
pub struct Conn<S> {
    /// Run-wide connection id (unique across workers).
    pub id: u64,
    /// Slab key, which is also the mio token (for logs).
    pub token: usize,
    /// Where to connect.
    pub target: SocketAddr,
    socket: Option<S>,
    state: State,
    decoder: Decoder,
    /// Failed attempts in a row; reset by a completed response. Drives the backoff.
    failures: u32,
}

impl<S: Transport> Conn<S> {
    /// A connection slot waiting for its first connect.
    pub fn new(id: u64, token: usize, target: SocketAddr) -> Self {
        Conn {
            id,
            token,
            target,
            socket: None,
            state: State::Queued,
            decoder: Decoder::default(),
            failures: 0,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The socket, while there is one (for registration with the poller).
    pub fn socket_mut(&mut self) -> Option<&mut S> {
        self.socket.as_mut()
    }

    /// When this connection next needs the worker even without an event.
    pub fn deadline(&self, plan: &Plan) -> Option<Instant> {
        match self.state {
            State::Backoff { until } => Some(until),
            State::Connecting { since } => Some(since + plan.connect_timeout),
            State::Sending { sent_at, .. } | State::Awaiting { sent_at } => {
                Some(sent_at + plan.response_timeout)
            }
            State::Queued | State::Parked | State::Closed => None,
        }
    }

    fn set_state(&mut self, next: State) {
        trace!(
            "conn {} token {}: {} -> {}",
            self.id,
            self.token,
            self.state.name(),
            next.name()
        );
        self.state = next;
    }

    /// `connect()` was called on `socket` (nonblocking, so it is in progress).
    pub fn connecting(&mut self, socket: S, now: Instant) {
        self.socket = Some(socket);
        self.set_state(State::Connecting { since: now });
    }

    /// Creating or connecting the socket failed outright (before any event).
    pub fn connect_failed(&mut self, err: &io::Error, ctx: &mut Ctx) -> After {
        ctx.stats.counters.conns_failed += 1;
        self.fail(ErrorKind::from_connect_error(err), err, ctx)
    }

    /// A readiness event for this connection. `scratch` is the worker's read buffer.
    pub fn on_event(
        &mut self,
        readable: bool,
        writable: bool,
        scratch: &mut [u8],
        ctx: &mut Ctx,
    ) -> After {
        trace!(
            "conn {} token {}: event readable={readable} writable={writable} in {}",
            self.id,
            self.token,
            self.state.name()
        );
        match self.state {
            State::Connecting { since } => self.socket_connected(since, scratch, ctx),
            State::Sending { .. } | State::Awaiting { .. } | State::Parked => {
                // Read first: it may complete a response and start the next request,
                // whose write then goes out in this same pass.
                if readable {
                    if let After::Queue = self.socket_readable(scratch, ctx) {
                        return After::Queue;
                    }
                }
                if writable && matches!(self.state, State::Sending { .. }) {
                    return self.socket_writable(ctx);
                }
                After::Nothing
            }
            // An event for a socket we already dropped (it was still in this batch).
            State::Queued | State::Backoff { .. } | State::Closed => After::Nothing,
        }
    }

    /// The deadline from [`deadline`](Self::deadline) may have passed.
    pub fn on_deadline(&mut self, ctx: &mut Ctx) -> After {
        match self.deadline(ctx.plan) {
            Some(at) if at <= ctx.now => {}
            _ => return After::Nothing,
        }
        match self.state {
            State::Backoff { .. } => {
                self.set_state(State::Queued);
                After::Queue
            }
            State::Connecting { .. } => {
                ctx.stats.counters.conns_failed += 1;
                self.fail(
                    ErrorKind::ConnectTimeout,
                    &"no handshake within --connect-timeout",
                    ctx,
                )
            }
            State::Sending { .. } | State::Awaiting { .. } => self.fail(
                ErrorKind::ResponseTimeout,
                &"no response within --timeout",
                ctx,
            ),
            State::Queued | State::Parked | State::Closed => After::Nothing,
        }
    }

    /// Closes the connection at the end of the run. Counts nothing, not even a close:
    /// the run's end is not the connection's doing, and the final snapshot should
    /// show how many connections were open when the run stopped.
    pub fn shut_down(&mut self) {
        self.socket = None;
        self.set_state(State::Closed);
    }

    /// First event after `connect()`: did the handshake finish, and how?
    fn socket_connected(&mut self, since: Instant, scratch: &mut [u8], ctx: &mut Ctx) -> After {
        let Some(socket) = self.socket.as_ref() else {
            return After::Nothing;
        };
        // A failed connect parks its errno in SO_ERROR and reports the socket ready.
        match socket.take_error() {
            Ok(Some(err)) | Err(err) => return self.connect_failed(&err, ctx),
            Ok(None) => {}
        }
        // No error yet, but is it connected? An event can arrive for a socket whose
        // connect is still in progress (for instance one left over from the socket
        // this slot had before); `peer_addr` tells the two apart.
        match socket.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return After::Nothing,
            Err(e) => return self.connect_failed(&e, ctx),
        }
        ctx.stats.conn_opened();
        ctx.stats
            .connect_latency
            .record(micros(ctx.now.saturating_duration_since(since)));
        debug!(
            "conn {} token {}: connected to {}",
            self.id, self.token, self.target
        );
        let after = self.start_request(ctx);
        // Bytes may already be waiting (a server that greets first). Edge-triggered:
        // this was our one notification for them, so read now.
        if after == After::Nothing && self.state.is_established() {
            return self.socket_readable(scratch, ctx);
        }
        after
    }

    /// Starts the next request if the budget allows, and writes as much as fits.
    fn start_request(&mut self, ctx: &mut Ctx) -> After {
        if !ctx.budget.take() {
            self.set_state(State::Parked);
            return After::Nothing;
        }
        ctx.stats.counters.requests_sent += 1;
        self.set_state(State::Sending {
            written: 0,
            sent_at: ctx.now,
        });
        self.socket_writable(ctx)
    }

    /// Writes the rest of the current request, until it is all out or the socket's
    /// send buffer is full.
    fn socket_writable(&mut self, ctx: &mut Ctx) -> After {
        let State::Sending {
            mut written,
            sent_at,
        } = self.state
        else {
            return After::Nothing;
        };
        let message = &ctx.plan.message[..];
        let Some(socket) = self.socket.as_mut() else {
            return After::Nothing;
        };
        loop {
            match socket.write(&message[written..]) {
                // A zero-byte write of a non-empty buffer: the socket cannot take data.
                Ok(0) => return self.fail(ErrorKind::Other, &"write returned 0 bytes", ctx),
                Ok(n) => {
                    ctx.stats.counters.bytes_sent += n as u64;
                    written += n;
                    if written == message.len() {
                        self.set_state(State::Awaiting { sent_at });
                        return After::Nothing;
                    }
                    // A partial write means the send buffer is full: another write now
                    // would only return WouldBlock. The writable edge will wake us.
                    self.state = State::Sending { written, sent_at };
                    return After::Nothing;
                }
                // Send buffer full: the writable edge will bring us back.
                Err(e) if would_block(&e) => {
                    self.state = State::Sending { written, sent_at };
                    return After::Nothing;
                }
                // A signal interrupted the call before anything was written: retry.
                Err(e) if interrupted(&e) => continue,
                Err(e) => return self.fail(ErrorKind::from_io_error(&e), &e, ctx),
            }
        }
    }

    /// Reads everything the socket has, feeding it to the framing decoder.
    fn socket_readable(&mut self, scratch: &mut [u8], ctx: &mut Ctx) -> After {
        loop {
            let Some(socket) = self.socket.as_mut() else {
                return After::Nothing;
            };
            match socket.read(scratch) {
                // EOF: the peer closed its side.
                Ok(0) => return self.peer_closed(ctx),
                Ok(n) => {
                    ctx.stats.counters.bytes_received += n as u64;
                    if let Some(after) = self.consume(&scratch[..n], ctx) {
                        return after;
                    }
                    // A short read on TCP means the receive queue is drained: skip the
                    // extra read that would only return WouldBlock. New data brings a
                    // new edge, so nothing is missed.
                    if n < scratch.len() {
                        return After::Nothing;
                    }
                }
                // Drained: the next readable edge will bring us back.
                Err(e) if would_block(&e) => return After::Nothing,
                // A signal interrupted the call before anything was read: retry.
                Err(e) if interrupted(&e) => continue,
                Err(e) => return self.fail(ErrorKind::from_io_error(&e), &e, ctx),
            }
        }
    }

    /// Feeds one read's bytes to the decoder, completing as many responses as they
    /// hold. Returns `Some` when the connection ended (stop reading).
    fn consume(&mut self, mut input: &[u8], ctx: &mut Ctx) -> Option<After> {
        while !input.is_empty() {
            let sent_at = match self.state {
                State::Sending { sent_at, .. } | State::Awaiting { sent_at } => sent_at,
                _ => {
                    let detail = format!("{} unrequested bytes", input.len());
                    return Some(self.fail(ErrorKind::Protocol, &detail, ctx));
                }
            };
            let step = self.decoder.feed(
                &ctx.plan.framing,
                input,
                &ctx.plan.message,
                ctx.plan.max_response,
            );
            match step {
                Err(e) => return Some(self.fail(ErrorKind::Protocol, &e, ctx)),
                Ok(Step::NeedMore) => return None,
                Ok(Step::Complete { consumed, response }) => {
                    input = &input[consumed.min(input.len())..];
                    if matches!(self.state, State::Sending { .. }) {
                        let detail = "response completed before its request was fully written";
                        return Some(self.fail(ErrorKind::Protocol, &detail, ctx));
                    }
                    self.response_complete(sent_at, ctx);
                    if response.close {
                        return Some(self.close_cleanly(ctx));
                    }
                    let after = self.start_request(ctx);
                    if after != After::Nothing || !self.state.is_established() {
                        return Some(after);
                    }
                }
            }
        }
        None
    }

    /// Books a complete response.
    fn response_complete(&mut self, sent_at: Instant, ctx: &mut Ctx) {
        ctx.stats.counters.requests_completed += 1;
        ctx.stats
            .latency
            .record(micros(ctx.now.saturating_duration_since(sent_at)));
        self.failures = 0;
    }

    /// The peer closed its side: an error if a response was due, else a clean close.
    fn peer_closed(&mut self, ctx: &mut Ctx) -> After {
        if self.state.request_in_flight() {
            return self.fail(ErrorKind::Eof, &"peer closed while a response was due", ctx);
        }
        self.close_cleanly(ctx)
    }

    /// Closes without an error (the peer said it would close) and reconnects at once.
    fn close_cleanly(&mut self, ctx: &mut Ctx) -> After {
        debug!(
            "conn {} token {}: closed by {}",
            self.id, self.token, self.target
        );
        self.drop_socket(ctx);
        if ctx.plan.reconnect.is_some() {
            self.set_state(State::Queued);
            After::Queue
        } else {
            self.set_state(State::Closed);
            After::Nothing
        }
    }

    /// Ends the connection with one counted error, then backs off or closes for good.
    fn fail(&mut self, kind: ErrorKind, detail: &dyn std::fmt::Display, ctx: &mut Ctx) -> After {
        debug!(
            "conn {} token {} peer {}: {} ({detail})",
            self.id,
            self.token,
            self.target,
            kind.name()
        );
        ctx.stats.error(kind);
        self.drop_socket(ctx);
        self.failures = self.failures.saturating_add(1);
        match ctx.plan.reconnect {
            Some(backoff) => {
                let until = ctx.now + backoff.delay(self.failures);
                self.set_state(State::Backoff { until });
            }
            None => self.set_state(State::Closed),
        }
        After::Nothing
    }

    /// Closes the socket and forgets the partial response. A request still in flight
    /// will never complete, so its budget is returned.
    fn drop_socket(&mut self, ctx: &mut Ctx) {
        if self.state.is_established() {
            ctx.stats.conn_closed();
        }
        if self.state.request_in_flight() {
            ctx.budget.give_back();
        }
        // Dropping the mio stream closes the fd, which also removes it from epoll.
        self.socket = None;
        self.decoder.reset();
    }
}

/// Microseconds, saturating (histograms record whole microseconds).
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// "Not ready": go back to polling.
pub fn would_block(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock
}

/// "A signal arrived first": try the same call again.
pub fn interrupted(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::Interrupted
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
