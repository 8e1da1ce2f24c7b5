//! One connection's state machine.
//!
//! ```text
//!          ┌──────────────────── reconnect (backoff) ◄───────────────────────┐
//!          ▼                                                                  │
//! Queued ─► Connecting ──connected──► Handshaking ──done──► Upgrading ──101──► Greeting ──answered──► Open
//!              │ refused, timeout        │ (TLS only)         │ (WebSocket only)  │ (--first-message)   │
//!              └─────────────────────────┴────────────────────┴───────────────────┴──────────────────────┘
//!                                  error / EOF / timeout ─► Backoff, or Closed (--no-reconnect)
//! ```
//!
//! Each state owns exactly the data it needs: `Connecting` and `Handshaking` own the
//! socket; `Greeting` and `Open` own an [`Open`] (socket, send side, requests in
//! flight, response decoder, unsent bytes), held inline rather than boxed: every
//! connection is open in steady state, and the box cost ~90 bytes of RSS per
//! connection (docs/architecture.md). Leaving a state drops its data, which
//! closes the socket: nothing is reset by hand.
//!
//! Every handler takes the state out, and returns the next state with what the
//! worker must do ([`Next`]); `Conn::enter` is the one place a state is stored, and
//! it logs the transition at trace level.
//!
//! An established connection has two sides that run at the same time, as TCP's do:
//!
//! ```text
//! send side (Sender):  Ready ──requests due──► Writing ──all written──► Ready
//!                        │  ▲                    │ socket full: wait for writable
//!                        │  └── next send due ── Paced (open loop: next send in the future)
//!                        └── budget spent ──► Spent
//!
//! receive side:        in_flight: the requests written and not yet answered, oldest
//!                      first; each response completes the oldest one.
//! ```
//!
//! The socket is registered once for READABLE | WRITABLE, edge-triggered, and never
//! re-registered: a request costs no `epoll_ctl`. Which edges matter is derived from
//! the state (a writable edge only matters to a blocked write, or to a transport
//! holding bytes), so interest is never tracked beside the state.
//!
//! Time is always an argument (`ctx.now`, and `ctx.clock` to re-read it after a
//! read): nothing here calls `Instant::now()`, so every transition is unit-tested
//! with synthetic instants and a scripted socket (`conn_tests.rs`).

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use log::{debug, trace};

use super::clock::Clock;
use super::pacing::resume_slot;
use super::stages::SendSchedule;
use crate::framing::{Decoder, Framing, ProtocolError, Response, Step};
use crate::payload::Fields;
use crate::plan::{Mode, Plan};
use crate::stats::{ErrorKind, WorkerStats};
use crate::transport::Transport;

/// Full reads (or stream-mode batch writes) one event may do before the connection
/// yields to the others. A peer that floods us, or a sink that swallows everything,
/// would otherwise keep the loop on one socket forever.
const IO_BUDGET: usize = 16;

/// Where a connection is in its life. Each state carries exactly the data it needs.
pub enum State<S> {
    /// Waiting for the worker's connect pacer to give it a slot.
    Queued,
    /// Waiting out the reconnect backoff.
    Backoff {
        /// When to queue for a connect again.
        until: Instant,
    },
    /// `connect()` was called; waiting for the TCP (or Unix) handshake.
    Connecting {
        /// The socket being connected.
        socket: S,
        /// When `connect()` was called (connect latency starts here).
        since: Instant,
    },
    /// Connected; the transport's own handshake (TLS) is under way.
    Handshaking {
        /// The connected socket, with its TLS session.
        socket: S,
        /// When `connect()` was called: the handshake counts against the same
        /// `--connect-timeout`.
        since: Instant,
        /// When the socket connected (TLS handshake latency starts here).
        connected: Instant,
    },
    /// Connected (and TLS done); the session's opening (the WebSocket upgrade) is
    /// under way: the Upgrade request goes out, and its `101` is awaited.
    Upgrading {
        /// The connected socket, with its session.
        socket: S,
        /// When `connect()` was called: the upgrade counts against the same
        /// `--connect-timeout`.
        since: Instant,
        /// When the transport's handshake ended (upgrade latency starts here).
        opened: Instant,
    },
    /// Established; the `--first-message` is out and its answer awaited. Requests
    /// wait for it.
    Greeting(Open<S>),
    /// Established: requests go out and responses come back.
    Open(Open<S>),
    /// Connect churn (`--mode connect`, FIN close): our FIN is out and the server's
    /// own close is awaited before the next connect. The server closes only once it
    /// has accepted the connection, so at most `-c` connections are ever waiting in
    /// its accept queue. Closing at once instead let a fast client run thousands of
    /// connections ahead of a slower server: its accept queue overflowed, the SYNs it
    /// dropped were retried a second later, and the rate dipped to a tenth for that
    /// second (docs/performance.md, "Churn stability").
    Closing {
        /// The socket, its write side shut down.
        socket: S,
        /// When our FIN went out (a server that never closes is given up on after
        /// `--timeout`).
        since: Instant,
    },
    /// Closed for good (`--no-reconnect`, or the run is over).
    Closed,
    /// Closed because `--conn-stages` asked for fewer connections; it connects
    /// again when they ask for more (`conn_retire.rs`).
    Retired,
}

impl<S> State<S> {
    /// Short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            State::Queued => "Queued",
            State::Backoff { .. } => "Backoff",
            State::Connecting { .. } => "Connecting",
            State::Handshaking { .. } => "Handshaking",
            State::Upgrading { .. } => "Upgrading",
            State::Greeting(_) => "Greeting",
            State::Open(_) => "Open",
            State::Closing { .. } => "Closing",
            State::Closed => "Closed",
            State::Retired => "Retired",
        }
    }
}

/// An established connection's data (the `Greeting` and `Open` states).
pub struct Open<S> {
    socket: S,
    sender: Sender,
    /// Requests written and not yet answered, oldest first (in `Greeting`: the
    /// first message).
    in_flight: VecDeque<InFlight>,
    decoder: Decoder,
    /// Rendered bytes a short write left behind; empty (and unallocated) otherwise.
    pending: Vec<u8>,
    /// `--replay`: steps of the recorded session started on this socket
    /// (`conn_replay.rs`). A new socket starts the session again.
    step: usize,
    /// Open loop: the pipeline was full when the last batch was made, so a send that
    /// leaves late now fell due while it was held back (`sends_dropped`).
    pipeline_was_full: bool,
}

impl<S: Transport> Open<S> {
    fn new(socket: S) -> Self {
        Open {
            socket,
            sender: Sender::Ready,
            in_flight: VecDeque::new(),
            decoder: Decoder::default(),
            pending: Vec::new(),
            step: 0,
            pipeline_was_full: false,
        }
    }

    /// Whether a writable edge means something: a write was blocked, or the
    /// transport holds bytes (TLS records) for the socket. Stream mode always writes.
    fn waits_for_writable(&self) -> bool {
        matches!(self.sender, Sender::Writing { .. }) || self.socket.wants_write()
    }
}

/// The send side of an established connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// Free to start requests, as far as the pipeline has room.
    Ready,
    /// A batch is going out: bytes `done..len` remain, of the connection's pending
    /// bytes if it has any, else of the plan's shared `batch`.
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
    /// Nothing more to send: the `-n` budget is spent, or the mode sends nothing.
    Spent,
    /// Nothing more to send: `--conn-stages` retires this connection, which closes
    /// once the requests in flight are answered.
    Retiring,
}

/// A request written and not yet answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct InFlight {
    /// Its sequence number on this connection (`{seq}`), to render it again for echo.
    seq: u64,
    /// When it should have gone out (open loop's schedule; the send time otherwise).
    intended: Instant,
    /// When its write started.
    sent: Instant,
    /// Whether a byte of its response has arrived yet.
    first_byte: bool,
    /// Request mix: the index of its entry (`Mix::entries`), which frames and names
    /// its response; 0 without a mix. A byte fits `MAX_NAMES` and the struct's
    /// padding, so the queue entry stays 48 bytes.
    name: u8,
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

/// What the worker does with a connection after a handler ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Wait for its next event or deadline.
    Wait,
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
    /// It is `Closed` for good.
    Closed,
}

impl Next {
    /// Both sides' wishes: run again if either side still has work.
    fn and(self, other: Next) -> Next {
        match (self, other) {
            (Next::Again { readable: r1, writable: w1 }, Next::Again { readable: r2, writable: w2 }) => {
                Next::Again { readable: r1 || r2, writable: w1 || w2 }
            }
            (Next::Again { .. }, _) => self,
            (_, other) => other,
        }
    }
}

/// What one handler call did, for the worker's book-keeping.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct After {
    /// What to do with the connection next.
    pub next: Next,
    /// A connect attempt in progress ended in this call (the connection is
    /// established, or failed): the worker's connect slot is free again.
    pub connect_ended: bool,
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

    /// True when no request is left to start (a bounded budget at zero).
    pub fn is_spent(&self) -> bool {
        self.remaining == Some(0)
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
    /// Where `now` comes from, to re-read it after a read.
    pub clock: &'a dyn Clock,
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
    /// Open loop with a changing rate (`--stages`, live control): when each send is
    /// due (`stages.rs`). `None`: every connection sends at the plan's fixed gap.
    pub schedule: Option<&'a SendSchedule>,
}

impl Ctx<'_> {
    /// Re-reads the clock after a `read()` returned data, so a response's latency
    /// stops when its bytes were in hand. Without it, a response that was already
    /// waiting when the handler read (common on loopback, right after the request's
    /// write) would be timed with the clock read before the write: 0 µs.
    fn clock_after_read(&mut self) {
        self.now = self.clock.now();
    }
}

/// Whether an established connection still awaits its greeting's answer: which of
/// the two states holding an [`Open`] it is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Greeting,
    Open,
}

impl Stage {
    /// The state that holds `open` at this stage.
    fn hold<S>(self, open: Open<S>) -> State<S> {
        match self {
            Stage::Greeting => State::Greeting(open),
            Stage::Open => State::Open(open),
        }
    }
}

/// Why an established connection ends.
enum Ending {
    /// With one counted error.
    Failed(ErrorKind, Detail),
    /// The peer closed with nothing due, or said it would close: no error.
    Clean,
    /// The connection did its one job (connect mode, or a replayed session that
    /// is over): close it and connect again at once.
    Churn,
    /// Nothing is left for it to do (a replayed session over with the `-n` budget
    /// spent): close it for good, as the run is ending.
    Done,
    /// `--conn-stages` retired it and its last answer is in: closed, no error, and
    /// not counted as closed for good (it may come back).
    Retired,
}

/// What a failure was, for the debug log.
enum Detail {
    Io(io::Error),
    Protocol(ProtocolError),
    Text(&'static str),
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detail::Io(e) => e.fmt(f),
            Detail::Protocol(e) => e.fmt(f),
            Detail::Text(text) => f.write_str(text),
        }
    }
}

/// A socket error on an established connection, classified.
fn io_failure(e: io::Error) -> Ending {
    Ending::Failed(ErrorKind::from_io_error(&e), Detail::Io(e))
}

/// The next state, and what the worker does next.
type Transition<S> = (State<S>, Next);

/// What the send side starts next.
enum Batch {
    /// `len` bytes of the plan's shared batch (a fixed message): nothing to copy.
    Shared(usize),
    /// The requests rendered into the worker's buffer.
    Rendered,
    /// Nothing now; the send side rests in this state.
    Nothing(Sender),
}

/// One connection slot: a virtual user that keeps a connection open to its target,
/// reconnecting as the policy allows.
pub struct Conn<S> {
    /// Run-wide connection id (unique across workers).
    pub id: u64,
    /// Slab key, which is also the mio token (for logs).
    pub token: usize,
    /// Where to connect: an index into `Plan::targets`.
    pub target: usize,
    state: State<S>,
    /// Open loop: intended send time of this connection's next request.
    next_send: Instant,
    /// Sequence number of the next request (`{seq}`), counted across reconnects.
    seq: u64,
    /// Failed attempts in a row; reset by a completed response. Drives the backoff.
    failures: u32,
    /// With a [`SendSchedule`]: the number of this connection's next send in the
    /// whole process's schedule (connection `i` makes sends `i + j·stride`).
    send_index: u64,
}

impl<S: Transport> Conn<S> {
    /// A connection slot waiting for its first connect. In open loop, `first_send` is
    /// its first intended send time (staggered across connections by the worker).
    pub fn new(id: u64, token: usize, target: usize, first_send: Instant) -> Self {
        Conn { id, token, target, state: State::Queued, next_send: first_send, seq: 0, failures: 0, send_index: 0 }
    }

    /// The same slot paced by a [`SendSchedule`], starting with send number `first`
    /// (its index among the process's connections).
    pub fn with_send_index(mut self, first: u64) -> Self {
        self.send_index = first;
        self
    }

    /// The rate changed (live control): the next send moves to its new time, and a
    /// connection waiting for it is woken then instead. The worker re-arms its deadline.
    /// A send already overdue keeps its intended time (a change only moves what is
    /// still to come), so its latency still counts from there.
    pub fn reschedule(&mut self, schedule: &SendSchedule) {
        self.next_send = schedule.instant_of(self.send_index);
        if let State::Greeting(open) | State::Open(open) = &mut self.state {
            if let Sender::Paced { at } = &mut open.sender {
                *at = self.next_send;
            }
        }
    }

    /// Whether it waits for a connect slot.
    pub fn is_queued(&self) -> bool {
        matches!(self.state, State::Queued)
    }

    /// When this connection next needs the worker even without an event: the earliest
    /// of its connect deadline, backoff end, oldest response deadline, next paced send.
    pub fn deadline(&self, plan: &Plan) -> Option<Instant> {
        match &self.state {
            State::Backoff { until } => Some(*until),
            State::Connecting { since, .. } | State::Handshaking { since, .. } | State::Upgrading { since, .. } => {
                Some(*since + plan.connect_timeout)
            }
            State::Greeting(open) | State::Open(open) => {
                let response = open.in_flight.front().map(|r| r.sent + plan.response_timeout);
                let paced = match open.sender {
                    Sender::Paced { at } => Some(at),
                    _ => None,
                };
                match (response, paced) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            State::Closing { since, .. } => Some(*since + plan.response_timeout),
            State::Queued | State::Closed | State::Retired => None,
        }
    }

    /// Stores the next state: the one place a state changes, logged at trace level.
    fn enter(&mut self, next: State<S>, from: &'static str) {
        if next.name() != from {
            trace!("conn {} token {}: {} -> {}", self.id, self.token, from, next.name());
        }
        self.state = next;
    }

    /// Takes the state out to hand its data to a handler, which returns the next one.
    fn take_state(&mut self) -> State<S> {
        std::mem::replace(&mut self.state, State::Closed)
    }

    /// `connect()` was called on `socket` (nonblocking, so it is in progress).
    pub fn connecting(&mut self, socket: S, now: Instant) {
        self.enter(State::Connecting { socket, since: now }, "Queued");
    }

    /// Creating or connecting the socket failed outright (before any event).
    pub fn connect_failed(&mut self, err: &io::Error, ctx: &mut Ctx) -> After {
        ctx.stats.counters.conns_failed += 1;
        let (state, next) = self.fail(ErrorKind::from_connect_error(err), err, ctx);
        self.enter(state, "Queued");
        After { next, connect_ended: false }
    }

    /// A readiness event for this connection. `scratch` is the worker's read buffer.
    pub fn on_event(&mut self, ready: Readiness, scratch: &mut [u8], ctx: &mut Ctx) -> After {
        let from = self.state.name();
        trace!("conn {} token {}: event {ready:?} in {from}", self.id, self.token);
        let connecting = self.is_connecting();
        let (state, next) = match self.take_state() {
            State::Connecting { socket, since } => self.socket_connected(socket, since, scratch, ctx),
            State::Handshaking { socket, since, connected } => self.handshaking(socket, since, connected, scratch, ctx),
            State::Upgrading { socket, since, opened } => self.upgrading(socket, since, opened, scratch, ctx),
            State::Greeting(open) => self.socket_ready(open, Stage::Greeting, ready, scratch, ctx),
            State::Open(open) => self.socket_ready(open, Stage::Open, ready, scratch, ctx),
            State::Closing { socket, since } => self.closing(socket, since, scratch, ctx),
            // An event for a socket we already dropped (it was still in this batch).
            idle => (idle, Next::Wait),
        };
        self.enter(state, from);
        let connect_ended = connecting && !self.is_connecting();
        After { next, connect_ended }
    }

    /// Whether a connect attempt is in progress: the socket's connect, the TLS
    /// handshake or the WebSocket upgrade (all within `--connect-timeout`).
    fn is_connecting(&self) -> bool {
        matches!(self.state, State::Connecting { .. } | State::Handshaking { .. } | State::Upgrading { .. })
    }

    /// The deadline from [`deadline`](Self::deadline) may have passed.
    pub fn on_deadline(&mut self, ctx: &mut Ctx) -> After {
        let from = self.state.name();
        let now = ctx.now;
        let connect_deadline = now.checked_sub(ctx.plan.connect_timeout);
        let mut connect_ended = false;
        let (state, next) = match self.take_state() {
            State::Backoff { until } if until <= now => (State::Queued, Next::Queue),
            State::Connecting { since, .. } | State::Handshaking { since, .. } | State::Upgrading { since, .. }
                if connect_deadline.is_some_and(|limit| since <= limit) =>
            {
                connect_ended = true;
                ctx.stats.counters.conns_failed += 1;
                // Dropping the socket (with its half-done handshake) closes it.
                self.fail(ErrorKind::ConnectTimeout, &"not connected within --connect-timeout", ctx)
            }
            State::Greeting(open) => self.open_deadline(open, Stage::Greeting, ctx),
            State::Open(open) => self.open_deadline(open, Stage::Open, ctx),
            State::Closing { since, .. } if since + ctx.plan.response_timeout <= now => {
                // Already counted as closed when our FIN went out; a server that keeps
                // its side open is no error of the connection's. Dropping closes it.
                debug!("conn {} token {}: the server did not close within --timeout", self.id, self.token);
                (State::Queued, Next::Queue)
            }
            other => (other, Next::Wait),
        };
        self.enter(state, from);
        After { next, connect_ended }
    }

    /// Closes the connection at the end of the run. Counts nothing, not even a close:
    /// the run's end is not the connection's doing, and the final snapshot should
    /// show how many connections were open when the run stopped.
    pub fn shut_down(&mut self) {
        let from = self.state.name();
        self.enter(State::Closed, from);
    }

    /// First event after `connect()`: did it complete, and how?
    fn socket_connected(&mut self, socket: S, since: Instant, scratch: &mut [u8], ctx: &mut Ctx) -> Transition<S> {
        // A failed connect parks its errno in SO_ERROR and reports the socket ready.
        match socket.take_error() {
            Ok(Some(err)) | Err(err) => return self.attempt_failed(ErrorKind::from_connect_error(&err), &err, ctx),
            Ok(None) => {}
        }
        // No error yet, but is it connected? An event can arrive for a socket whose
        // connect is still in progress (for instance one left over from the socket
        // this slot had before).
        match socket.is_connected() {
            Ok(true) => {}
            Ok(false) => return (State::Connecting { socket, since }, Next::Wait),
            Err(err) => return self.attempt_failed(ErrorKind::from_connect_error(&err), &err, ctx),
        }
        let took = micros(ctx.now.saturating_duration_since(since));
        ctx.stats.connect_latency.record(took);
        debug!("conn {} token {}: connected to {} in {took} us", self.id, self.token, ctx.plan.targets[self.target]);
        self.handshaking(socket, since, ctx.now, scratch, ctx)
    }

    /// A step of the transport's handshake: at once complete for a plain socket; for
    /// TLS, one flight each way per step until done.
    fn handshaking(
        &mut self,
        mut socket: S,
        since: Instant,
        connected: Instant,
        scratch: &mut [u8],
        ctx: &mut Ctx,
    ) -> Transition<S> {
        match socket.handshake() {
            Ok(true) => {}
            Ok(false) => return (State::Handshaking { socket, since, connected }, Next::Wait),
            // A certificate rejected, an alert, no common version, a plaintext server,
            // the peer closing mid-way: all of them are the handshake failing.
            Err(err) => return self.attempt_failed(ErrorKind::TlsHandshake, &err, ctx),
        }
        if let Some(info) = socket.tls_info() {
            // The last step read the server's flight: time the handshake from then,
            // not from the event (a fast server may answer within the step that
            // sent our flight, which would time it at 0 µs).
            ctx.clock_after_read();
            let took = micros(ctx.now.saturating_duration_since(connected));
            debug!("conn {} token {}: TLS handshake done in {took} us ({info:?})", self.id, self.token);
            ctx.stats.tls_established(took, info);
        }
        self.upgrading(socket, since, ctx.now, scratch, ctx)
    }

    /// A step of the session's opening (the WebSocket upgrade), after the transport's
    /// handshake: at once done when there is no session; otherwise the Upgrade
    /// request goes out and its answer is checked, over as many events as it takes.
    fn upgrading(
        &mut self,
        mut socket: S,
        since: Instant,
        opened: Instant,
        scratch: &mut [u8],
        ctx: &mut Ctx,
    ) -> Transition<S> {
        if !socket.has_session() {
            return self.established(socket, scratch, ctx);
        }
        match socket.open_session() {
            Ok(true) => {}
            Ok(false) => return (State::Upgrading { socket, since, opened }, Next::Wait),
            Err(err) => {
                let kind = match err.kind() {
                    // The server hung up instead of answering the upgrade.
                    io::ErrorKind::UnexpectedEof => ErrorKind::Eof,
                    _ => ErrorKind::from_io_error(&err),
                };
                if let Some(refusal) = crate::session::websocket::refused_upgrade(&err) {
                    warn_failed_upgrade(self.id, &ctx.plan.targets[self.target], refusal);
                }
                return self.attempt_failed(kind, &err, ctx);
            }
        }
        // The last step read the server's answer: time the upgrade from then.
        ctx.clock_after_read();
        let took = micros(ctx.now.saturating_duration_since(opened));
        debug!("conn {} token {}: WebSocket upgrade done in {took} us", self.id, self.token);
        ctx.stats.session_opened(took);
        self.established(socket, scratch, ctx)
    }

    /// The connection is ready for traffic: the greeting goes out first, if there is
    /// one, then requests.
    fn established(&mut self, socket: S, scratch: &mut [u8], ctx: &mut Ctx) -> Transition<S> {
        ctx.stats.conn_opened();
        let mut open = Open::new(socket);
        if ctx.plan.mode == (Mode::Connect { exchange: false }) {
            return self.end(open, Stage::Open, Ending::Churn, ctx);
        }
        // Open loop: sends that fell due while this connection was down (or still
        // connecting) are skipped rather than made in a burst; the latest goes out at
        // once, its latency counted from its place in the schedule, and the later
        // ones keep the connection's own place in it. (Resuming "now" instead would
        // move each connection's sends to the moment it connected: at the start of a
        // run that bunches every connection's sends into the few hundred µs in which
        // the connects completed, and the offered rate comes in bursts.)
        if let Some(schedule) = ctx.schedule {
            let resume = schedule.resume_index(self.send_index, ctx.now);
            self.send_index = self.send_index.max(resume.saturating_sub(schedule.stride));
            self.next_send = schedule.instant_of(self.send_index);
        } else if let Some(gap) = ctx.plan.send_interval {
            self.next_send = resume_slot(self.next_send, gap, ctx.now);
        }
        let mut stage = Stage::Open;
        if let Some(first) = &ctx.plan.payload.first {
            ctx.render.clear();
            first.render_into(&self.fields(self.seq, ctx), ctx.render);
            frame_for_session(ctx.plan, ctx.render, 0);
            // Awaited where responses are (request and connect modes); stream and recv
            // modes just send it first.
            if matches!(ctx.plan.mode, Mode::Request | Mode::Connect { .. }) {
                let greeting = InFlight { seq: self.seq, intended: ctx.now, sent: ctx.now, first_byte: false, name: 0 };
                open.in_flight.push_back(greeting);
                stage = Stage::Greeting;
            }
            if let Err(ending) = self.write_rendered(&mut open, ctx) {
                return self.end(open, stage, ending, ctx);
            }
        }
        // Send what is due, then read: bytes may already be waiting (a server that
        // speaks first). Edge-triggered: this was our one notification for them, so
        // read until WouldBlock (`closed`: no short-read shortcut).
        let sent = self.socket_writable(&mut open, stage, ctx);
        let read = sent.and_then(|sent| Ok(sent.and(self.socket_readable(&mut open, &mut stage, true, scratch, ctx)?)));
        match read {
            Ok(next) => (stage.hold(open), next),
            Err(ending) => self.end(open, stage, ending, ctx),
        }
    }

    /// An event for an established connection: read first (completed responses make
    /// room for the next requests, which then go out in one write), then write if a
    /// write was waiting for the socket.
    fn socket_ready(
        &mut self,
        mut open: Open<S>,
        mut stage: Stage,
        ready: Readiness,
        scratch: &mut [u8],
        ctx: &mut Ctx,
    ) -> Transition<S> {
        // Only a write that was blocked cares about the writable edge: a batch the
        // read below starts has just been tried, and trying it again would only
        // return WouldBlock.
        let was_blocked = open.waits_for_writable();
        let mut next = Next::Wait;
        if ready.readable {
            match self.socket_readable(&mut open, &mut stage, ready.closed, scratch, ctx) {
                Ok(read) => next = read,
                Err(ending) => return self.end(open, stage, ending, ctx),
            }
        }
        if ready.writable && was_blocked {
            match self.socket_writable(&mut open, stage, ctx) {
                Ok(written) => next = next.and(written),
                Err(ending) => return self.end(open, stage, ending, ctx),
            }
        }
        (stage.hold(open), next)
    }

    /// A deadline for an established connection: a response overdue, or a paced
    /// send due.
    fn open_deadline(&mut self, mut open: Open<S>, stage: Stage, ctx: &mut Ctx) -> Transition<S> {
        let now = ctx.now;
        if open.in_flight.front().is_some_and(|r| r.sent + ctx.plan.response_timeout <= now) {
            let detail = Detail::Text("no response within --timeout");
            return self.end(open, stage, Ending::Failed(ErrorKind::ResponseTimeout, detail), ctx);
        }
        if matches!(open.sender, Sender::Paced { at } if at <= now) {
            open.sender = Sender::Ready;
            return match self.socket_writable(&mut open, stage, ctx) {
                Ok(next) => (stage.hold(open), next),
                Err(ending) => self.end(open, stage, ending, ctx),
            };
        }
        (stage.hold(open), Next::Wait)
    }

    /// The send side, and the one place that writes requests: finishes the batch in
    /// progress, then starts and writes new ones while requests are due and the
    /// pipeline has room, until nothing is due or the socket is full.
    fn socket_writable(&mut self, open: &mut Open<S>, stage: Stage, ctx: &mut Ctx) -> Result<Next, Ending> {
        // Bytes the transport holds (TLS records) go out before anything new.
        if open.socket.wants_write() && !open.socket.flush().map_err(io_failure)? {
            return Ok(Next::Wait);
        }
        let mut batches = 0;
        loop {
            if !matches!(open.sender, Sender::Writing { .. }) {
                match self.start_batch(open, stage, ctx) {
                    Batch::Shared(len) => open.sender = Sender::Writing { done: 0, len },
                    Batch::Rendered => {
                        if !self.write_rendered(open, ctx)? {
                            return Ok(Next::Wait);
                        }
                        // All out: more may be due. Stream mode (over WebSocket)
                        // never runs out: yield after a budget of batches.
                        if ctx.plan.mode == Mode::Stream {
                            batches += 1;
                            if batches == IO_BUDGET {
                                return Ok(Next::Again { readable: false, writable: true });
                            }
                        }
                        continue;
                    }
                    Batch::Nothing(rest) => {
                        open.sender = rest;
                        return Ok(Next::Wait);
                    }
                }
            }
            // Stream mode never runs out of batches: yield to the other connections
            // after a while (the next batch is started, not yet written).
            if batches == IO_BUDGET {
                return Ok(Next::Again { readable: false, writable: true });
            }
            let Sender::Writing { done, len } = open.sender else { unreachable!("a batch was just started") };
            let bytes = if open.pending.is_empty() { &ctx.plan.batch[..len] } else { &open.pending[..] };
            let done = done + write_some(&mut open.socket, &bytes[done..], self.id, ctx.stats)?;
            if done < len {
                // The socket is full: the writable edge will bring us back.
                open.sender = Sender::Writing { done, len };
                return Ok(Next::Wait);
            }
            // Give the memory back: most connections never need a pending buffer.
            open.pending = Vec::new();
            open.sender = Sender::Ready;
            if ctx.plan.mode == Mode::Stream {
                ctx.stats.counters.requests_sent += (len / ctx.plan.message.len()) as u64;
                batches += 1;
            }
        }
    }

    /// Writes the bytes rendered into the worker's buffer. Whatever the socket does not
    /// take now is copied into the connection's `pending` (the only per-connection
    /// buffer, and only until it drains). `Ok(true)` when everything went out.
    fn write_rendered(&mut self, open: &mut Open<S>, ctx: &mut Ctx) -> Result<bool, Ending> {
        let written = write_some(&mut open.socket, ctx.render, self.id, ctx.stats)?;
        if written == ctx.render.len() {
            open.sender = Sender::Ready;
            return Ok(true);
        }
        open.pending.clear();
        open.pending.extend_from_slice(&ctx.render[written..]);
        open.sender = Sender::Writing { done: 0, len: open.pending.len() };
        Ok(false)
    }

    /// Decides the next batch: the plan's batch in stream mode, nothing in recv mode,
    /// and in request mode as many requests as are due and fit in the pipeline.
    fn start_batch(&mut self, open: &mut Open<S>, stage: Stage, ctx: &mut Ctx) -> Batch {
        if stage == Stage::Greeting {
            return Batch::Nothing(Sender::Ready); // Requests wait for the greeting's answer.
        }
        match ctx.plan.mode {
            Mode::Request | Mode::Connect { exchange: true } => self.start_requests(open, ctx),
            // Stream: the send side never rests. Over WebSocket each copy of the
            // message is its own frame, with its own mask, so the batch is rendered.
            Mode::Stream if ctx.plan.websocket.is_some() => {
                let copies = ctx.plan.batch.len() / ctx.plan.message.len();
                ctx.render.clear();
                for _ in 0..copies {
                    let start = ctx.render.len();
                    ctx.render.extend_from_slice(&ctx.plan.message);
                    frame_for_session(ctx.plan, ctx.render, start);
                }
                ctx.stats.counters.requests_sent += copies as u64;
                Batch::Rendered
            }
            Mode::Stream => Batch::Shared(ctx.plan.batch.len()),
            Mode::Recv | Mode::Connect { exchange: false } => Batch::Nothing(Sender::Spent),
        }
    }

    /// Starts as many requests as are due and fit in the pipeline, as one batch.
    fn start_requests(&mut self, open: &mut Open<S>, ctx: &mut Ctx) -> Batch {
        if matches!(open.sender, Sender::Spent | Sender::Retiring) {
            return Batch::Nothing(open.sender);
        }
        let now = ctx.now;
        let replay = ctx.plan.replay.as_deref();
        if let Some(at) = replay.and_then(|_| self.replay_thinking(now, ctx)) {
            return Batch::Nothing(Sender::Paced { at });
        }
        // Templated, alternating or replayed messages are rendered into the worker's
        // buffer; a single fixed message is written straight from the plan's batch.
        // Over WebSocket every message is rendered: each frame needs its own mask.
        let rendered = ctx.plan.message.is_empty() || ctx.plan.websocket.is_some();
        if rendered {
            ctx.render.clear();
        }
        let mut batch = 0;
        let mut rest = Sender::Ready;
        while open.in_flight.len() < ctx.plan.pipeline {
            if replay.is_some_and(|script| !self.replay_has_step(open, script)) {
                break; // The session's last steps are out; their answers end it.
            }
            let intended = match ctx.plan.send_interval {
                None => now,
                Some(_) if self.next_send > now => {
                    rest = Sender::Paced { at: self.next_send };
                    break;
                }
                Some(gap) => {
                    // wrk2's rule: a late request keeps its place in the schedule and
                    // its latency counts from there, so a stall is not hidden.
                    let at = self.next_send;
                    match ctx.schedule {
                        Some(schedule) => {
                            self.send_index += schedule.stride;
                            self.next_send = schedule.instant_of(self.send_index);
                        }
                        None => self.next_send += gap,
                    }
                    at
                }
            };
            if !ctx.budget.take() {
                if ctx.plan.send_interval.is_some() {
                    // Not sent after all: the schedule stays at this send.
                    self.next_send = intended;
                    self.send_index -= ctx.schedule.map_or(0, |schedule| schedule.stride);
                }
                rest = Sender::Spent;
                break;
            }
            if ctx.plan.send_interval.is_some() {
                ctx.stats.send_lag.record(micros(now.saturating_duration_since(intended)));
                ctx.stats.counters.sends_dropped += u64::from(open.pipeline_was_full && intended < now);
            }
            let seq = self.seq;
            self.seq += 1;
            let start = ctx.render.len();
            let mut name = 0;
            if let Some(script) = replay {
                self.render_replay_step(open, script, seq, ctx);
            } else if let Some(mix) = ctx.plan.mix.as_deref() {
                // A mix: a hash and a binary search pick the entry; nothing allocates.
                name = mix.pick(self.id, seq);
                ctx.stats.name_mut(name).sent += 1;
                mix.entry(name).template.render_into(&self.fields(seq, ctx), ctx.render);
            } else if rendered {
                ctx.plan.payload.message(seq).render_into(&self.fields(seq, ctx), ctx.render);
            }
            frame_for_session(ctx.plan, ctx.render, start);
            // `Mix::new` caps the names at MAX_NAMES (64), so the index fits a byte.
            let name = name as u8;
            open.in_flight.push_back(InFlight { seq, intended, sent: now, first_byte: false, name });
            batch += 1;
        }
        open.pipeline_was_full = open.in_flight.len() >= ctx.plan.pipeline;
        if batch == 0 {
            return Batch::Nothing(rest);
        }
        ctx.stats.counters.requests_sent += batch as u64;
        if rendered {
            Batch::Rendered
        } else {
            Batch::Shared(batch * ctx.plan.message.len())
        }
    }

    /// The template fields of request `seq` on this connection.
    fn fields(&self, seq: u64, ctx: &Ctx) -> Fields {
        Fields { conn: self.id, seq, worker: ctx.worker }
    }

    /// The receive side: reads everything the socket has, feeding it to the
    /// framing decoder, then lets the send side start what the completed responses
    /// made room for.
    fn socket_readable(
        &mut self,
        open: &mut Open<S>,
        stage: &mut Stage,
        closed: bool,
        scratch: &mut [u8],
        ctx: &mut Ctx,
    ) -> Result<Next, Ending> {
        for _ in 0..IO_BUDGET {
            match open.socket.read(scratch) {
                // EOF: the peer closed its side.
                Ok(0) => return Err(self.peer_closed(open, *stage, ctx)),
                Ok(n) => {
                    ctx.clock_after_read();
                    ctx.stats.counters.bytes_received += n as u64;
                    ctx.stats.counters.ws_messages_received += u64::from(open.socket.message_ended());
                    trace!("conn {}: read {n} bytes", self.id);
                    self.consume(open, stage, &scratch[..n], ctx)?;
                    // A short read means the socket's receive queue is drained: skip
                    // the extra read that would only return WouldBlock. New data
                    // brings a new edge, so nothing is missed. Not so when the event
                    // also said the peer closed: its EOF is already here and brings no
                    // new edge.
                    if n < scratch.len() && !closed && open.socket.drained() {
                        return self.send_more(open, *stage, ctx);
                    }
                }
                // Drained: the next readable edge will bring us back.
                Err(e) if would_block(&e) => return self.send_more(open, *stage, ctx),
                // A signal interrupted the call before anything was read: retry.
                Err(e) if interrupted(&e) => continue,
                Err(e) => return Err(io_failure(e)),
            }
        }
        // Still data after a budget of full reads: let the others have a turn.
        Ok(Next::Again { readable: true, writable: false })
    }

    /// After a read: start the requests that completed responses made room for. A
    /// write that is blocked waits for its writable edge instead (trying it now would
    /// only return WouldBlock).
    fn send_more(&mut self, open: &mut Open<S>, stage: Stage, ctx: &mut Ctx) -> Result<Next, Ending> {
        if open.sender == Sender::Retiring && open.in_flight.is_empty() {
            return Err(Ending::Retired); // Its last answer is in: it may go.
        }
        if open.waits_for_writable() {
            return Ok(Next::Wait);
        }
        self.socket_writable(open, stage, ctx)
    }

    /// Feeds one read's bytes to the decoder, completing as many responses as they
    /// hold; the greeting's answer moves the connection from `Greeting` to `Open`.
    fn consume(
        &mut self,
        open: &mut Open<S>,
        stage: &mut Stage,
        mut input: &[u8],
        ctx: &mut Ctx,
    ) -> Result<(), Ending> {
        let plan = ctx.plan;
        while !input.is_empty() {
            if *stage == Stage::Open && matches!(plan.mode, Mode::Stream | Mode::Recv) {
                return Ok(()); // No framing: the bytes were counted, and that is all.
            }
            let Some(oldest) = open.in_flight.front_mut() else {
                if plan.replay.is_some() && open.sender == Sender::Spent {
                    // A server's greeting for a replayed step the spent -n budget
                    // did not allow: nothing to answer, and no error.
                    return Err(Ending::Done);
                }
                let detail = ProtocolError(format!("{} bytes arrived with no request outstanding", input.len()));
                return Err(Ending::Failed(ErrorKind::Protocol, Detail::Protocol(detail)));
            };
            if !oldest.first_byte && *stage == Stage::Open {
                oldest.first_byte = true;
                ctx.stats.first_byte.record(micros(ctx.now.saturating_duration_since(oldest.sent)));
            }
            let (seq, name) = (oldest.seq, oldest.name);
            let replay_framing;
            let framing = match (*stage, plan.replay.as_deref()) {
                (Stage::Greeting, _) => plan.first_framing.as_ref().unwrap_or(&plan.framing),
                // --replay: each answer is as long as the recorded one.
                (Stage::Open, Some(script)) if plan.framing == Framing::Replay => {
                    replay_framing = self.replay_answer_framing(open, script);
                    &replay_framing
                }
                (Stage::Open, _) => response_framing(plan, name),
            };
            let request = self.expected_echo(*stage, seq, name, framing, plan, ctx.worker, ctx.expect);
            let step = match framing {
                // One WebSocket message is the response: the session layer says where
                // it ends (and has already held it to --max-response).
                Framing::Ws if open.socket.message_ended() => {
                    Ok(Step::Complete { consumed: input.len(), response: Response::default() })
                }
                Framing::Ws => Ok(Step::NeedMore),
                _ => open.decoder.feed(framing, input, request, plan.max_response),
            };
            match step {
                Err(e) => return Err(Ending::Failed(ErrorKind::Protocol, Detail::Protocol(e))),
                Ok(Step::NeedMore) => return Ok(()),
                Ok(Step::Complete { consumed, response }) => {
                    input = &input[consumed.min(input.len())..];
                    if *stage == Stage::Greeting {
                        // Checked by its framing; not a request.
                        open.in_flight.pop_front();
                        trace!("conn {}: greeting answered", self.id);
                        *stage = Stage::Open;
                        continue;
                    }
                    self.response_complete(open, response, ctx);
                    if plan.replay.as_deref().is_some_and(|script| self.replay_step_answered(open, script, ctx)) {
                        // The session is over: play it again, unless -n is spent (a
                        // new connection would only be greeted for nothing).
                        return Err(if ctx.budget.is_spent() { Ending::Done } else { Ending::Churn });
                    }
                    if let Mode::Connect { .. } = plan.mode {
                        return Err(Ending::Churn);
                    }
                    if response.close {
                        return Err(Ending::Clean);
                    }
                }
            }
        }
        Ok(())
    }

    /// The bytes an echo response must repeat: the plan's fixed message, or the
    /// request (or greeting) rendered again into `expect`. Other framings compare
    /// nothing.
    #[allow(clippy::too_many_arguments)] // Each is one fact about the request.
    fn expected_echo<'c>(
        &self,
        stage: Stage,
        seq: u64,
        name: u8,
        framing: &Framing,
        plan: &'c Plan,
        worker: u64,
        expect: &'c mut Vec<u8>,
    ) -> &'c [u8] {
        if *framing != Framing::Echo {
            return &[];
        }
        let payload = &plan.payload;
        let template = match (stage, plan.mix.as_deref()) {
            (Stage::Open, _) if !plan.message.is_empty() => return &plan.message,
            (Stage::Open, Some(mix)) => &mix.entry(usize::from(name)).template,
            (Stage::Open, None) => payload.message(seq),
            (Stage::Greeting, _) => payload.first.as_ref().unwrap_or(payload.message(seq)),
        };
        expect.clear();
        template.render_into(&Fields { conn: self.id, seq, worker }, expect);
        &expect[..]
    }

    /// Books the oldest request's complete response.
    fn response_complete(&mut self, open: &mut Open<S>, response: Response, ctx: &mut Ctx) {
        let Some(done) = open.in_flight.pop_front() else { return };
        let stats = &mut *ctx.stats;
        stats.counters.requests_completed += 1;
        stats.record_reply(&response);
        if let Some(status) = response.status {
            if let Some(class) = stats.counters.http_status.get_mut(usize::from(status / 100).wrapping_sub(1)) {
                *class += 1;
            }
        }
        let latency = micros(ctx.now.saturating_duration_since(done.intended));
        stats.latency.record(latency);
        if ctx.plan.mix.is_some() {
            let name = stats.name_mut(usize::from(done.name));
            name.completed += 1;
            name.latency.record(latency);
        }
        // In closed loop the intended send time *is* the send time, so the two
        // latencies are one number: record it once (callgrind: ~50 instructions, 3%
        // of a request) and let the report use it for both.
        if ctx.plan.send_interval.is_some() {
            stats.latency_uncorrected.record(micros(ctx.now.saturating_duration_since(done.sent)));
        }
        trace!("conn {}: response {} complete in {latency} us", self.id, done.seq);
        self.failures = 0;
    }

    /// The peer closed its side: an error if a response was due, else a clean close.
    fn peer_closed(&mut self, open: &mut Open<S>, stage: Stage, ctx: &mut Ctx) -> Ending {
        if let Some(code) = open.socket.close_code() {
            ctx.stats.session_closed(code);
        }
        // A response whose end is the close itself (an HTTP body without a length).
        if stage == Stage::Open {
            let name = open.in_flight.front().map_or(0, |oldest| oldest.name);
            if let Some(response) = open.decoder.on_eof(response_framing(ctx.plan, name)) {
                self.response_complete(open, response, ctx);
            }
        }
        if open.in_flight.is_empty() {
            Ending::Clean
        } else {
            Ending::Failed(ErrorKind::Eof, Detail::Text("peer closed while a response was due"))
        }
    }

    /// Leaves an established connection. It is no longer open, and the requests it
    /// still owed never complete, so their budget goes back. Dropping `open` at the
    /// end closes the socket, which also removes it from epoll.
    // Taking `open` by value is the point: the connection's data ends here.
    fn end(&mut self, open: Open<S>, stage: Stage, ending: Ending, ctx: &mut Ctx) -> Transition<S> {
        ctx.stats.conn_closed();
        if stage == Stage::Open {
            ctx.budget.give_back(open.in_flight.len() as u64);
            // A mix: the error is also its oldest awaited request's name's.
            if let (Ending::Failed(kind, _), Some(oldest), Some(_)) = (&ending, open.in_flight.front(), &ctx.plan.mix) {
                ctx.stats.name_mut(usize::from(oldest.name)).error(*kind);
            }
        }
        match ending {
            Ending::Failed(kind, detail) => self.fail(kind, &detail, ctx),
            Ending::Clean => {
                debug!("conn {} token {}: closed by {}", self.id, self.token, ctx.plan.targets[self.target]);
                if ctx.plan.reconnect.is_some() {
                    (State::Queued, Next::Queue)
                } else {
                    (State::Closed, Next::Closed)
                }
            }
            Ending::Churn => {
                // Connect mode: close (with RST under --linger0) and queue the next
                // connect at once.
                if ctx.plan.socket.linger0 {
                    if let Err(e) = open.socket.reset_on_close() {
                        debug!("conn {} token {}: SO_LINGER 0 failed: {e}", self.id, self.token);
                    }
                } else if ctx.plan.mode == (Mode::Connect { exchange: false }) {
                    // Nothing was exchanged, so nothing proves the server has accepted
                    // the connection yet: send FIN and wait for its close (`Closing`).
                    let mut socket = open.socket;
                    match socket.half_close() {
                        Ok(true) => return (State::Closing { socket, since: ctx.now }, Next::Wait),
                        Ok(false) => {}
                        // Gone already (reset by the server): nothing left to wait for.
                        Err(e) => debug!("conn {} token {}: shutdown failed: {e}", self.id, self.token),
                    }
                }
                (State::Queued, Next::Queue)
            }
            Ending::Done => (State::Closed, Next::Closed),
            Ending::Retired => (State::Retired, Next::Wait),
        }
    }

    /// An event in `Closing`: read until the server's end of stream, then connect
    /// again. Bytes the server sends first (a greeting) are counted and dropped.
    fn closing(&mut self, mut socket: S, since: Instant, scratch: &mut [u8], ctx: &mut Ctx) -> Transition<S> {
        for _ in 0..IO_BUDGET {
            match socket.read(scratch) {
                // The server closed its side: the connection is over (the TIME_WAIT is
                // ours, as our FIN went first); dropping the socket closes it.
                Ok(0) => return (State::Queued, Next::Queue),
                Ok(n) => ctx.stats.counters.bytes_received += n as u64,
                // Not closed yet: its FIN brings the next readable edge.
                Err(e) if would_block(&e) => return (State::Closing { socket, since }, Next::Wait),
                // A signal interrupted the call before anything was read: retry.
                Err(e) if interrupted(&e) => continue,
                // Reset instead of closed: over all the same, and nothing was owed.
                Err(e) => {
                    debug!("conn {} token {}: closing: {e}", self.id, self.token);
                    return (State::Queued, Next::Queue);
                }
            }
        }
        // A server still sending after a budget of full reads: let the others run.
        (State::Closing { socket, since }, Next::Again { readable: true, writable: false })
    }

    /// A connect attempt failed (refused, TLS handshake, ...): counted as failed.
    fn attempt_failed(&mut self, kind: ErrorKind, detail: &dyn fmt::Display, ctx: &mut Ctx) -> Transition<S> {
        ctx.stats.counters.conns_failed += 1;
        self.fail(kind, detail, ctx)
    }

    /// Counts one error, then backs off or closes for good.
    fn fail(&mut self, kind: ErrorKind, detail: &dyn fmt::Display, ctx: &mut Ctx) -> Transition<S> {
        debug!(
            "conn {} token {} peer {}: {} ({detail})",
            self.id,
            self.token,
            ctx.plan.targets[self.target],
            kind.name()
        );
        ctx.stats.error(kind);
        self.failures = self.failures.saturating_add(1);
        match ctx.plan.reconnect {
            Some(backoff) => (State::Backoff { until: ctx.now + backoff.delay(self.failures) }, Next::Wait),
            None => (State::Closed, Next::Closed),
        }
    }
}

/// Writes `bytes` until all are out or the socket is full, and returns how many went
/// out. The one loop that calls `write` on a connection's socket.
fn write_some<S: Transport>(socket: &mut S, bytes: &[u8], id: u64, stats: &mut WorkerStats) -> Result<usize, Ending> {
    let mut done = 0;
    while done < bytes.len() {
        match socket.write(&bytes[done..]) {
            // A zero-byte write of a non-empty buffer: the socket cannot take data.
            Ok(0) => return Err(Ending::Failed(ErrorKind::Other, Detail::Io(io::ErrorKind::WriteZero.into()))),
            Ok(n) => {
                stats.counters.bytes_sent += n as u64;
                trace!("conn {id}: wrote {n} bytes");
                done += n;
                // A partial write means the send buffer is full: another write now
                // would only return WouldBlock. The writable edge will wake us.
                if done < bytes.len() {
                    break;
                }
            }
            // Send buffer full: the writable edge will bring us back.
            Err(e) if would_block(&e) => break,
            // A signal interrupted the call before anything was written: retry.
            Err(e) if interrupted(&e) => continue,
            Err(e) => return Err(io_failure(e)),
        }
    }
    Ok(done)
}

/// How the response to a request of mix entry `name` ends: the entry's own `expect`,
/// else the run's.
fn response_framing(plan: &Plan, name: u8) -> &Framing {
    match plan.mix.as_deref() {
        Some(mix) => mix.entry(usize::from(name)).framing.as_ref().unwrap_or(&plan.framing),
        None => &plan.framing,
    }
}

/// Over WebSocket, makes the message rendered at `out[start..]` one masked frame
/// where it lies (text, or binary with `--ws-binary`); nothing otherwise.
fn frame_for_session(plan: &Plan, out: &mut Vec<u8>, start: usize) {
    if let Some(ws) = &plan.websocket {
        crate::session::websocket::frame_in_place(ws.opcode(), out, start);
    }
}

/// Failed WebSocket upgrades warned about so far, by every worker of the process
/// (a library caller's later runs included: the warnings are for a person watching
/// the first run go wrong). Past [`UPGRADE_WARNINGS`], they are logged at debug level
/// only: a server refusing every upgrade would otherwise print a line per attempt.
static UPGRADE_WARNED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// How many failed upgrades are warned about (with their HTTP status).
const UPGRADE_WARNINGS: u32 = 5;

/// Logs a refused upgrade (its status, or what was wrong) at warn level, the first
/// [`UPGRADE_WARNINGS`] times in the process; it counts as `protocol` in any case.
fn warn_failed_upgrade(id: u64, target: &crate::transport::Target, refusal: &dyn fmt::Display) {
    use std::sync::atomic::Ordering;
    let seen = UPGRADE_WARNED.fetch_add(1, Ordering::Relaxed);
    if seen < UPGRADE_WARNINGS {
        log::warn!("conn {id} to {target}: {refusal}");
        if seen + 1 == UPGRADE_WARNINGS {
            log::warn!("further failed WebSocket upgrades are logged at debug level only (RUST_LOG=debug)");
        }
    } else {
        debug!("conn {id} to {target}: {refusal}");
    }
}

/// Microseconds, saturating (histograms record whole microseconds).
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

pub use crate::io_kind::{interrupted, would_block};

#[path = "conn_replay.rs"]
mod replay;

#[path = "conn_retire.rs"]
mod retire;

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
