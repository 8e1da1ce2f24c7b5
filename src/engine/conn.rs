//! One TCP connection's state machine.
//!
//! ```text
//!          ┌──────────── reconnect (backoff) ◄──────────────┐
//!          ▼                                                 │
//! Queued ─► Connecting ──writable, no SO_ERROR──► Open ──error / EOF / timeout
//!              │ timeout / refused                            (no reconnect: Closed)
//!              └──────────────────────────────────────────────┘
//! ```
//!
//! An `Open` connection has two sides that run at the same time, as TCP's do:
//!
//! ```text
//! send side (Sender):  Ready ──requests due──► Writing ──all written──► Ready
//!                        │  ▲                    │ WouldBlock: wait for writable
//!                        │  └── next send due ── Paced (open loop: next send in the future)
//!                        └── budget spent ──► Spent
//!
//! receive side:        in_flight: the requests written and not yet answered, oldest
//!                      first; each response completes the oldest one.
//! ```
//!
//! The socket is registered once for READABLE | WRITABLE, edge-triggered, and never
//! re-registered: a request costs no `epoll_ctl`. Which events matter is derived from
//! the state (only `Writing` cares about writable), so interest is never tracked
//! beside the state.
//!
//! Time is always an argument (`ctx.now`): nothing here reads the clock, so every
//! transition is unit-tested with synthetic instants and a scripted socket.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use log::{debug, trace};

use crate::framing::{Decoder, Framing, Response, Step};
use crate::payload::Fields;
use crate::plan::{Mode, Plan};
use crate::stats::{ErrorKind, WorkerStats};

/// What the state machine needs from a socket. Implemented by `mio::net::TcpStream`,
/// and by a scripted fake in the tests.
pub trait Transport: Read + Write {
    /// The pending socket error (`SO_ERROR`), which is how a failed connect shows.
    fn take_error(&self) -> io::Result<Option<io::Error>>;
    /// The peer's address; `NotConnected` while a connect is still in progress.
    fn peer_addr(&self) -> io::Result<SocketAddr>;
    /// Makes the coming close send RST instead of FIN (`--linger0`).
    fn reset_on_close(&self) -> io::Result<()>;
}

impl Transport for mio::net::TcpStream {
    fn take_error(&self) -> io::Result<Option<io::Error>> {
        mio::net::TcpStream::take_error(self)
    }
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        mio::net::TcpStream::peer_addr(self)
    }
    fn reset_on_close(&self) -> io::Result<()> {
        super::dial::reset_on_close(self)
    }
}

/// Full reads (or stream-mode batch writes) one event may do before the connection
/// yields to the others. A peer that floods us, or a sink that swallows everything,
/// would otherwise keep the loop on one socket forever.
const IO_BUDGET: usize = 16;

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
    /// Established: requests go out ([`Sender`]) and responses come back.
    Open,
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
            State::Open => "Open",
            State::Closed => "Closed",
        }
    }
}

/// The send side of an open connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// Free to start requests, as far as the pipeline has room.
    Ready,
    /// A batch of requests is going out: bytes `done..len` of `Plan::batch` remain.
    Writing {
        /// Bytes of the batch written so far.
        done: usize,
        /// Length of the batch.
        len: usize,
    },
    /// Open loop: the next request is due at `at`.
    Paced {
        /// Intended send time of the next request.
        at: Instant,
    },
    /// The `-n` budget is spent: nothing more to send.
    Spent,
}

/// A request written and not yet answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct InFlight {
    /// Its sequence number on this connection (`{seq}`), to render it again for echo.
    seq: u64,
    /// It is the `--first-message`: awaited and checked, not counted as a request.
    handshake: bool,
    /// When it should have gone out (open loop's schedule; the send time otherwise).
    intended: Instant,
    /// When its write started.
    sent: Instant,
    /// Whether a byte of its response has arrived yet.
    first_byte: bool,
}

/// What a readiness event said about a socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Bytes (or EOF, or an error) can be read.
    pub readable: bool,
    /// The send buffer has room.
    pub writable: bool,
    /// The peer closed its side, or the socket has an error (EPOLLRDHUP, EPOLLERR).
    /// Then a short read does not mean "drained": the EOF behind the data brings no
    /// new edge, so reading must go on until it is seen.
    pub closed: bool,
}

/// What the worker must do for a connection after a handler ran.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// Nothing beyond re-arming its deadline.
    Nothing,
    /// It is `Queued`: put it in the connect queue.
    Queue,
    /// It stopped with the socket still ready (its I/O budget ran out): run it again
    /// next turn, with these readiness flags, before sleeping in `poll`.
    Again {
        /// Still readable.
        readable: bool,
        /// Still writable.
        writable: bool,
    },
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

    /// Returns `n` requests whose responses will never come (their connection died),
    /// so that `-n N` still completes N.
    pub fn give_back(&mut self, n: u64) {
        if let Some(left) = &mut self.remaining {
            *left += n;
        }
    }
}

/// The worker-owned things a handler may touch.
pub struct Ctx<'a> {
    /// The current time: read by the worker per event, and again after each read
    /// that returned data (see `Ctx::clock_after_read`).
    pub now: Instant,
    /// Whether `now` follows the real clock. Tests set it false and move `now` by hand.
    pub live_clock: bool,
    /// The run's settings: message, framing, timeouts, reconnect policy, pacing.
    pub plan: &'a Plan,
    /// This worker's statistics.
    pub stats: &'a mut WorkerStats,
    /// This worker's request budget.
    pub budget: &'a mut Budget,
    /// This worker's number (`{worker}`).
    pub worker: u64,
    /// The worker's buffer for rendering requests (templated messages), reused by
    /// all its connections so that rendering allocates nothing.
    pub render: &'a mut Vec<u8>,
    /// The worker's buffer for rendering a request again to check its echo.
    pub expect: &'a mut Vec<u8>,
}

impl Ctx<'_> {
    /// Re-reads the clock after a `read()` returned data, so a response's latency
    /// stops when its bytes were in hand. Without it, a response that was already
    /// waiting when the handler read (common on loopback, right after the request's
    /// write) would be timed with the clock read before the write: 0 µs.
    fn clock_after_read(&mut self) {
        if self.live_clock {
            self.now = Instant::now();
        }
    }
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
    sender: Sender,
    in_flight: VecDeque<InFlight>,
    decoder: Decoder,
    /// Open loop: intended send time of this connection's next request.
    next_send: Instant,
    /// Sequence number of the next request (`{seq}`), counted across reconnects.
    seq: u64,
    /// Rendered bytes a short write left behind; empty (and unallocated) otherwise.
    pending: Vec<u8>,
    /// The `--first-message` has gone out on this connection.
    greeted: bool,
    /// Failed attempts in a row; reset by a completed response. Drives the backoff.
    failures: u32,
    /// Open loop: the pipeline was full when the last batch was made, so a send that
    /// leaves late now fell due while it was held back (`sends_dropped`).
    pipeline_was_full: bool,
}

impl<S: Transport> Conn<S> {
    /// A connection slot waiting for its first connect. In open loop, `first_send` is
    /// its first intended send time (staggered across connections by the worker).
    pub fn new(id: u64, token: usize, target: SocketAddr, first_send: Instant) -> Self {
        Conn {
            id,
            token,
            target,
            socket: None,
            state: State::Queued,
            sender: Sender::Ready,
            in_flight: VecDeque::new(),
            decoder: Decoder::default(),
            next_send: first_send,
            seq: 0,
            pending: Vec::new(),
            greeted: false,
            failures: 0,
            pipeline_was_full: false,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The send side's state (meaningful while `Open`).
    pub fn sender(&self) -> Sender {
        self.sender
    }

    /// Requests written and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The socket, while there is one.
    pub fn socket_mut(&mut self) -> Option<&mut S> {
        self.socket.as_mut()
    }

    /// When this connection next needs the worker even without an event: the earliest
    /// of its connect deadline, backoff end, oldest response deadline, next paced send.
    pub fn deadline(&self, plan: &Plan) -> Option<Instant> {
        match self.state {
            State::Backoff { until } => Some(until),
            State::Connecting { since } => Some(since + plan.connect_timeout),
            State::Open => {
                let response = self.in_flight.front().map(|r| r.sent + plan.response_timeout);
                let paced = match self.sender {
                    Sender::Paced { at } => Some(at),
                    _ => None,
                };
                match (response, paced) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            State::Queued | State::Closed => None,
        }
    }

    fn set_state(&mut self, next: State) {
        trace!("conn {} token {}: {} -> {}", self.id, self.token, self.state.name(), next.name());
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
    pub fn on_event(&mut self, ready: Readiness, scratch: &mut [u8], ctx: &mut Ctx) -> After {
        trace!("conn {} token {}: event {ready:?} in {}", self.id, self.token, self.state.name());
        let Readiness { readable, writable, closed } = ready;
        match self.state {
            State::Connecting { since } => self.socket_connected(since, scratch, ctx),
            State::Open => {
                // The writable edge only means something for a write that was already
                // blocked: a batch the read below starts has just been tried, and
                // trying again would only return WouldBlock.
                let was_blocked = matches!(self.sender, Sender::Writing { .. });
                // Read first: completed responses make room for the next requests,
                // which then go out in one write.
                let mut after = After::Nothing;
                if readable {
                    after = self.socket_readable(scratch, closed, ctx);
                    if after == After::Queue {
                        return after;
                    }
                }
                if writable && was_blocked && self.state == State::Open {
                    return match (after, self.socket_writable(ctx)) {
                        (After::Again { .. }, After::Again { .. }) => After::Again { readable: true, writable: true },
                        (After::Again { .. }, After::Nothing) => after,
                        (_, written) => written,
                    };
                }
                after
            }
            // An event for a socket we already dropped (it was still in this batch).
            State::Queued | State::Backoff { .. } | State::Closed => After::Nothing,
        }
    }

    /// The deadline from [`deadline`](Self::deadline) may have passed.
    pub fn on_deadline(&mut self, ctx: &mut Ctx) -> After {
        let now = ctx.now;
        match self.state {
            State::Backoff { until } if until <= now => {
                self.set_state(State::Queued);
                After::Queue
            }
            State::Connecting { since } if since + ctx.plan.connect_timeout <= now => {
                ctx.stats.counters.conns_failed += 1;
                self.fail(ErrorKind::ConnectTimeout, &"no handshake within --connect-timeout", ctx)
            }
            State::Open => {
                if self.in_flight.front().is_some_and(|r| r.sent + ctx.plan.response_timeout <= now) {
                    return self.fail(ErrorKind::ResponseTimeout, &"no response within --timeout", ctx);
                }
                if matches!(self.sender, Sender::Paced { at } if at <= now) {
                    self.sender = Sender::Ready;
                    return self.send_requests(ctx);
                }
                After::Nothing
            }
            _ => After::Nothing,
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
        let Some(socket) = self.socket.as_ref() else { return After::Nothing };
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
        ctx.stats.connect_latency.record(micros(ctx.now.saturating_duration_since(since)));
        debug!("conn {} token {}: connected to {}", self.id, self.token, self.target);
        self.set_state(State::Open);
        self.sender = Sender::Ready;
        if ctx.plan.mode == (Mode::Connect { exchange: false }) {
            return self.churn(ctx);
        }
        // Open loop: sends that fell due while this connection was down were never
        // made; the schedule resumes now rather than bursting to catch up.
        self.next_send = self.next_send.max(ctx.now);
        let after = self.send_requests(ctx);
        // Bytes may already be waiting (a server that greets first). Edge-triggered:
        // this was our one notification for them, so read now.
        if after == After::Nothing && self.state == State::Open {
            return self.socket_readable(scratch, true, ctx);
        }
        after
    }

    /// Starts as many requests as are due and fit in the pipeline, and writes them
    /// in one batch.
    fn send_requests(&mut self, ctx: &mut Ctx) -> After {
        if matches!(self.sender, Sender::Writing { .. } | Sender::Spent) {
            return After::Nothing;
        }
        let now = ctx.now;
        // The handshake goes first, alone, once per connection.
        if !self.greeted {
            self.greeted = true;
            if let Some(first) = &ctx.plan.payload.first {
                ctx.render.clear();
                first.render_into(&self.fields(self.seq, ctx), ctx.render);
                if matches!(ctx.plan.mode, Mode::Request | Mode::Connect { exchange: true }) {
                    let handshake =
                        InFlight { seq: self.seq, handshake: true, intended: now, sent: now, first_byte: false };
                    self.in_flight.push_back(handshake);
                }
                return self.write_rendered(ctx);
            }
        }
        if self.in_flight.front().is_some_and(|r| r.handshake) {
            return After::Nothing; // Requests wait for the handshake's answer.
        }
        match ctx.plan.mode {
            Mode::Request | Mode::Connect { exchange: true } => {}
            // Stream: the send side never rests.
            Mode::Stream => {
                self.sender = Sender::Writing { done: 0, len: ctx.plan.batch.len() };
                return self.socket_writable(ctx);
            }
            Mode::Recv | Mode::Connect { exchange: false } => {
                self.sender = Sender::Spent;
                return After::Nothing;
            }
        }
        // Templated or alternating messages are rendered into the worker's buffer;
        // a single fixed message is written straight from the plan's batch.
        let rendered = ctx.plan.message.is_empty();
        if rendered {
            ctx.render.clear();
        }
        let mut batch = 0;
        let mut idle = Sender::Ready;
        while self.in_flight.len() < ctx.plan.pipeline {
            let intended = match ctx.plan.send_interval {
                None => now,
                Some(_) if self.next_send > now => {
                    idle = Sender::Paced { at: self.next_send };
                    break;
                }
                Some(gap) => {
                    // wrk2's rule: a late request keeps its place in the schedule and
                    // its latency counts from there, so a stall is not hidden.
                    let at = self.next_send;
                    self.next_send += gap;
                    at
                }
            };
            if !ctx.budget.take() {
                if let Some(gap) = ctx.plan.send_interval {
                    self.next_send -= gap;
                }
                idle = Sender::Spent;
                break;
            }
            if ctx.plan.send_interval.is_some() {
                ctx.stats.send_lag.record(micros(now.saturating_duration_since(intended)));
                ctx.stats.counters.sends_dropped += u64::from(self.pipeline_was_full && intended < now);
            }
            let seq = self.seq;
            self.seq += 1;
            if rendered {
                ctx.plan.payload.message(seq).render_into(&self.fields(seq, ctx), ctx.render);
            }
            self.in_flight.push_back(InFlight { seq, handshake: false, intended, sent: now, first_byte: false });
            batch += 1;
        }
        self.pipeline_was_full = self.in_flight.len() >= ctx.plan.pipeline;
        if batch == 0 {
            self.sender = idle;
            return After::Nothing;
        }
        ctx.stats.counters.requests_sent += batch as u64;
        if rendered {
            return self.write_rendered(ctx);
        }
        self.sender = Sender::Writing { done: 0, len: batch * ctx.plan.message.len() };
        self.socket_writable(ctx)
    }

    /// The template fields of request `seq` on this connection.
    fn fields(&self, seq: u64, ctx: &Ctx) -> Fields {
        Fields { conn: self.id, seq, worker: ctx.worker }
    }

    /// Writes what was rendered into the worker's buffer. Whatever the socket does not
    /// take now is copied into this connection's `pending` (the only per-connection
    /// buffer, and only until it drains).
    fn write_rendered(&mut self, ctx: &mut Ctx) -> After {
        let Some(socket) = self.socket.as_mut() else { return After::Nothing };
        let bytes = &ctx.render[..];
        let mut done = 0;
        let failed = loop {
            if done == bytes.len() {
                break None;
            }
            match socket.write(&bytes[done..]) {
                Ok(0) => break Some((ErrorKind::Other, io::Error::from(io::ErrorKind::WriteZero))),
                Ok(n) => {
                    ctx.stats.counters.bytes_sent += n as u64;
                    done += n;
                }
                // Send buffer full: keep the rest for the writable edge.
                Err(e) if would_block(&e) => break None,
                // A signal interrupted the call: retry.
                Err(e) if interrupted(&e) => continue,
                Err(e) => break Some((ErrorKind::from_io_error(&e), e)),
            }
        };
        if let Some((kind, e)) = failed {
            return self.fail(kind, &e, ctx);
        }
        if done < bytes.len() {
            self.pending.clear();
            self.pending.extend_from_slice(&bytes[done..]);
            self.sender = Sender::Writing { done: 0, len: self.pending.len() };
            return After::Nothing;
        }
        self.sender = Sender::Ready;
        self.send_requests(ctx)
    }

    /// Writes the rest of the current batch, until it is all out or the socket's send
    /// buffer is full.
    fn socket_writable(&mut self, ctx: &mut Ctx) -> After {
        let Sender::Writing { mut done, len } = self.sender else { return After::Nothing };
        let stream = ctx.plan.mode == Mode::Stream;
        let mut batches = 0;
        enum Outcome {
            AllOut,
            Blocked,
            Yield,
            Failed(ErrorKind, io::Error),
        }
        let outcome = loop {
            let Some(socket) = self.socket.as_mut() else { return After::Nothing };
            // Rendered bytes left by a short write, or the plan's shared batch.
            let source: &[u8] = if self.pending.is_empty() { &ctx.plan.batch[..len] } else { &self.pending };
            match socket.write(&source[done..]) {
                // A zero-byte write of a non-empty buffer: the socket cannot take data.
                Ok(0) => break Outcome::Failed(ErrorKind::Other, io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    ctx.stats.counters.bytes_sent += n as u64;
                    done += n;
                    if done < len {
                        // A partial write means the send buffer is full: another write
                        // now would only return WouldBlock. The writable edge will wake us.
                        break Outcome::Blocked;
                    }
                    if !stream {
                        break Outcome::AllOut;
                    }
                    // Stream mode: a whole batch of messages is out; go again, but
                    // yield to the other connections after a while.
                    ctx.stats.counters.requests_sent += (len / ctx.plan.message.len()) as u64;
                    done = 0;
                    batches += 1;
                    if batches == IO_BUDGET {
                        break Outcome::Yield;
                    }
                }
                // Send buffer full: the writable edge will bring us back.
                Err(e) if would_block(&e) => break Outcome::Blocked,
                // A signal interrupted the call before anything was written: retry.
                Err(e) if interrupted(&e) => continue,
                Err(e) => break Outcome::Failed(ErrorKind::from_io_error(&e), e),
            }
        };
        match outcome {
            Outcome::AllOut => {
                // Give the memory back: most connections never need a pending buffer.
                self.pending = Vec::new();
                // All out: more requests may be due (open loop, pipeline room).
                self.sender = Sender::Ready;
                self.send_requests(ctx)
            }
            Outcome::Blocked => {
                self.sender = Sender::Writing { done, len };
                After::Nothing
            }
            Outcome::Yield => {
                self.sender = Sender::Writing { done, len };
                After::Again { readable: false, writable: true }
            }
            Outcome::Failed(kind, e) => self.fail(kind, &e, ctx),
        }
    }

    /// Reads everything the socket has, feeding it to the framing decoder, then sends
    /// the requests that the completed responses made room for, in one write.
    fn socket_readable(&mut self, scratch: &mut [u8], closed: bool, ctx: &mut Ctx) -> After {
        for _ in 0..IO_BUDGET {
            let Some(socket) = self.socket.as_mut() else { return After::Nothing };
            match socket.read(scratch) {
                // EOF: the peer closed its side.
                Ok(0) => return self.peer_closed(ctx),
                Ok(n) => {
                    ctx.clock_after_read();
                    ctx.stats.counters.bytes_received += n as u64;
                    if let Some(after) = self.consume(&scratch[..n], ctx) {
                        return after;
                    }
                    // A short read on TCP means the receive queue is drained: skip the
                    // extra read that would only return WouldBlock. New data brings a
                    // new edge, so nothing is missed. Not so when the event also said
                    // the peer closed: its EOF is already here and brings no new edge.
                    if n < scratch.len() && !closed {
                        return self.send_requests(ctx);
                    }
                }
                // Drained: the next readable edge will bring us back.
                Err(e) if would_block(&e) => return self.send_requests(ctx),
                // A signal interrupted the call before anything was read: retry.
                Err(e) if interrupted(&e) => continue,
                Err(e) => return self.fail(ErrorKind::from_io_error(&e), &e, ctx),
            }
        }
        // Still data after a budget of full reads: let the others have a turn.
        After::Again { readable: true, writable: false }
    }

    /// Feeds one read's bytes to the decoder, completing as many responses as they
    /// hold. Returns `Some` when the connection ended (stop reading).
    fn consume(&mut self, mut input: &[u8], ctx: &mut Ctx) -> Option<After> {
        if matches!(ctx.plan.mode, Mode::Stream | Mode::Recv) {
            return None; // No framing: the bytes were counted, and that is all.
        }
        while !input.is_empty() {
            let Some(oldest) = self.in_flight.front_mut() else {
                let detail = format!("{} bytes arrived with no request outstanding", input.len());
                return Some(self.fail(ErrorKind::Protocol, &detail, ctx));
            };
            if !oldest.first_byte {
                oldest.first_byte = true;
                ctx.stats.first_byte.record(micros(ctx.now.saturating_duration_since(oldest.sent)));
            }
            let (seq, handshake) = (oldest.seq, oldest.handshake);
            // Echo compares with the request; rendered requests are rendered again.
            let request: &[u8] = if ctx.plan.framing != Framing::Echo {
                &[]
            } else if !handshake && !ctx.plan.message.is_empty() {
                &ctx.plan.message
            } else {
                let payload = &ctx.plan.payload;
                let template = if handshake {
                    payload.first.as_ref().unwrap_or(payload.message(seq))
                } else {
                    payload.message(seq)
                };
                ctx.expect.clear();
                template.render_into(&Fields { conn: self.id, seq, worker: ctx.worker }, ctx.expect);
                &ctx.expect[..]
            };
            let step = self.decoder.feed(&ctx.plan.framing, input, request, ctx.plan.max_response);
            match step {
                Err(e) => return Some(self.fail(ErrorKind::Protocol, &e, ctx)),
                Ok(Step::NeedMore) => return None,
                Ok(Step::Complete { consumed, response }) => {
                    input = &input[consumed.min(input.len())..];
                    self.response_complete(response, ctx);
                    if let Mode::Connect { .. } = ctx.plan.mode {
                        return Some(self.churn(ctx));
                    }
                    if response.close {
                        return Some(self.close_cleanly(ctx));
                    }
                }
            }
        }
        None
    }

    /// Books the oldest request's complete response.
    fn response_complete(&mut self, response: Response, ctx: &mut Ctx) {
        let Some(done) = self.in_flight.pop_front() else { return };
        if done.handshake {
            return; // Checked by the framing; not a request.
        }
        let stats = &mut *ctx.stats;
        stats.counters.requests_completed += 1;
        if let Some(status) = response.status {
            if let Some(class) = stats.counters.http_status.get_mut(usize::from(status / 100).wrapping_sub(1)) {
                *class += 1;
            }
        }
        stats.latency.record(micros(ctx.now.saturating_duration_since(done.intended)));
        // In closed loop the intended send time *is* the send time, so the two
        // latencies are one number: record it once (callgrind: ~50 instructions, 3%
        // of a request) and let the report use it for both.
        if ctx.plan.send_interval.is_some() {
            stats.latency_uncorrected.record(micros(ctx.now.saturating_duration_since(done.sent)));
        }
        self.failures = 0;
    }

    /// The peer closed its side: an error if a response was due, else a clean close.
    fn peer_closed(&mut self, ctx: &mut Ctx) -> After {
        // A response whose end is the close itself (an HTTP body without a length).
        if let Some(response) = self.decoder.on_eof(&ctx.plan.framing) {
            self.response_complete(response, ctx);
        }
        if !self.in_flight.is_empty() {
            return self.fail(ErrorKind::Eof, &"peer closed while a response was due", ctx);
        }
        self.close_cleanly(ctx)
    }

    /// Closes without an error (the peer said it would close) and reconnects at once.
    fn close_cleanly(&mut self, ctx: &mut Ctx) -> After {
        debug!("conn {} token {}: closed by {}", self.id, self.token, self.target);
        self.drop_socket(ctx);
        if ctx.plan.reconnect.is_some() {
            self.set_state(State::Queued);
            After::Queue
        } else {
            self.set_state(State::Closed);
            After::Nothing
        }
    }

    /// Connect mode: the connection did its one job; close it (with RST under
    /// `--linger0`) and queue the next connect at once.
    fn churn(&mut self, ctx: &mut Ctx) -> After {
        if ctx.plan.socket.linger0 {
            if let Some(socket) = &self.socket {
                if let Err(e) = socket.reset_on_close() {
                    debug!("conn {} token {}: SO_LINGER 0 failed: {e}", self.id, self.token);
                }
            }
        }
        self.drop_socket(ctx);
        self.set_state(State::Queued);
        After::Queue
    }

    /// Ends the connection with one counted error, then backs off or closes for good.
    fn fail(&mut self, kind: ErrorKind, detail: &dyn std::fmt::Display, ctx: &mut Ctx) -> After {
        debug!("conn {} token {} peer {}: {} ({detail})", self.id, self.token, self.target, kind.name());
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

    /// Closes the socket and forgets the partial response. Requests still in flight
    /// will never complete, so their budget is returned.
    fn drop_socket(&mut self, ctx: &mut Ctx) {
        if self.state == State::Open {
            ctx.stats.conn_closed();
        }
        ctx.budget.give_back(self.in_flight.iter().filter(|r| !r.handshake).count() as u64);
        self.in_flight.clear();
        self.pending = Vec::new();
        self.greeted = false;
        self.sender = Sender::Ready;
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
