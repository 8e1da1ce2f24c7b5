//! A worker: one thread, one `mio::Poll`, a slab of connections, and the event loop.
//!
//! ```text
//! loop {
//!     poll(timeout = time until the next deadline or snapshot)
//!     for each event: dispatch to its connection by token (= slab key)
//!     fire due deadlines            (connect/response timeouts, backoffs)
//!     open the connections the connect pacer allows
//!     once a second: send a Snapshot to the coordinator
//! }
//! ```
//!
//! Everything here is thread-local: plain counters and histograms, no atomics or
//! locks on the hot path. The only shared state is the stop flag, read once per loop.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, trace, warn};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use super::clock::SystemClock;
use super::conn::{After, Budget, Conn, Ctx, Next, Readiness};
use super::dial::dial;
use super::local_ports::LocalPorts;
use super::pacing::{first_send, RateLimiter};
use super::ports::PortRange;
use super::stages::{worker_share, RateChange, RateSchedule, SendSchedule};
use super::timer::Timers;
use super::wakeup::{batch_step, Wakeup};
use crate::plan::Plan;
use crate::session::websocket::WsStream;
use crate::stats::{seconds_since, Counters, Cuts, Interval, Snapshot, WorkerStats};
use crate::transport::{dial_unix, Link, Socket, Target};

/// The token of the waker the coordinator uses to stop this worker. Slab keys start at
/// 0, so the waker and the wake-up timer take the top of the range.
pub const WAKER: Token = Token(usize::MAX);
/// The token of the open-loop wake-up timer.
pub const WAKEUP: Token = Token(usize::MAX - 1);

/// Connects in flight per worker. Without a bound, 20 000 connects at once overflow
/// the server's SYN backlog and turn into retransmits and timeouts; with it, the
/// connections open as fast as the server accepts them.
const MAX_CONNECTING: usize = 256;

/// Read buffer size, shared by all of a worker's connections.
const SCRATCH_BYTES: usize = 64 * 1024;

/// What the coordinator and its workers share.
#[derive(Debug)]
pub struct Shared {
    /// When the run started and when its measured window begins and ends. Each
    /// worker cuts its snapshots at the same instants (`Cuts::next_after`) and stops
    /// on its own at `cuts.end`, so the measured window is exact rather than "until
    /// the coordinator got round to it".
    pub cuts: Cuts,
    /// Set by the coordinator; each worker reads it once per loop.
    pub stop: AtomicBool,
}

/// How often a worker checks `--conn-stages` for the number of connections it
/// should have open: often enough that a ramp of thousands a second moves smoothly,
/// rarely enough to cost nothing.
const CONN_STAGES_LOOK: Duration = Duration::from_millis(10);

/// `--conn-stages`: which of this worker's connections are wanted now. They are
/// always its first `active` slab keys (keys follow connection ids, see `split`).
struct ConnSteering {
    /// Connections wanted at the last look.
    active: usize,
    /// When to look again.
    next_look: Instant,
    /// Connections that could not be asked to retire at once (a write half done).
    retry: Vec<usize>,
}

/// One worker's share of the run.
pub struct Assignment {
    /// Worker number.
    pub index: usize,
    /// Run-wide ids of this worker's connections, with their targets (indexes
    /// into `Plan::targets`).
    pub conns: Vec<(u64, usize)>,
    /// Requests this worker must complete (its share of `-n`), if bounded.
    pub quota: Option<u64>,
    /// The kernel's ephemeral port range, read once at the start of the run, if
    /// readable. This worker takes its slice of it when it picks its own ports.
    pub port_range: Option<PortRange>,
    /// Live control: rate changes from the coordinator, each followed by a ring of
    /// this worker's waker.
    pub rate_changes: Option<Receiver<RateChange>>,
}

/// What a worker lends its connections' handlers: its statistics, its request
/// budget, and buffers every connection reuses.
struct HandlerState {
    index: u64,
    stats: WorkerStats,
    budget: Budget,
    render: Vec<u8>,
    expect: Vec<u8>,
    schedule: Option<SendSchedule>,
}

impl HandlerState {
    fn ctx<'a>(&'a mut self, now: Instant, plan: &'a Plan) -> Ctx<'a> {
        Ctx {
            now,
            clock: &SystemClock,
            plan,
            stats: &mut self.stats,
            budget: &mut self.budget,
            worker: self.index,
            render: &mut self.render,
            expect: &mut self.expect,
            schedule: self.schedule.as_ref(),
        }
    }
}

/// The event loop's state.
pub struct Worker {
    index: usize,
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    poll: Poll,
    conns: Slab<Conn<Link>>,
    timers: Timers,
    /// Connections waiting for a connect slot, oldest first.
    connect_queue: VecDeque<usize>,
    /// Connections in `Connecting` right now.
    connecting: usize,
    /// Connections closed for good (`--no-reconnect`).
    closed: usize,
    /// Connections whose I/O budget ran out with the socket still ready: they run
    /// again next turn (edge-triggered, so no new event would come for them).
    again: Vec<(usize, Readiness)>,
    /// Open loop: the precise wake-up timer.
    wakeup: Option<Wakeup>,
    /// `--connect-rate`, this worker's share.
    connect_limiter: Option<RateLimiter>,
    /// Source ports (`--local-ports`); `None` when the ephemeral range is unknown.
    local_ports: Option<LocalPorts>,
    /// What handlers work with (stats, budget, buffers), lent out as a `Ctx`.
    state: HandlerState,
    quota: Option<u64>,
    /// Live control's rate changes (see [`Assignment::rate_changes`]).
    rate_changes: Option<Receiver<RateChange>>,
    /// `--conn-stages`: the connections wanted now.
    steering: Option<ConnSteering>,
    scratch: Vec<u8>,
    to_coordinator: Sender<Snapshot>,
    coordinator: Arc<Waker>,
    /// Counters at the last snapshot, to compute deltas.
    counters_at_cut: Counters,
    /// Where the interval in progress began, and its number.
    interval_start: Instant,
    interval: u64,
}

impl Worker {
    /// Builds a worker and its poller. Returns the waker that stops it.
    pub fn new(
        assignment: Assignment,
        plan: Arc<Plan>,
        shared: Arc<Shared>,
        to_coordinator: Sender<Snapshot>,
        coordinator: Arc<Waker>,
    ) -> io::Result<(Worker, Arc<Waker>)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let wakeup = match plan.send_interval {
            Some(interval) => {
                let step = batch_step(interval, assignment.conns.len());
                Some(Wakeup::new(poll.registry(), WAKEUP, step)?)
            }
            None => None,
        };
        let mut conns = Slab::with_capacity(assignment.conns.len());
        let mut connect_queue = VecDeque::with_capacity(assignment.conns.len());
        let start = shared.cuts.start;
        let schedule = plan.rate_shape.as_ref().map(|rates| SendSchedule {
            origin: start,
            rates: RateSchedule::clone(rates),
            stride: plan.connections as u64,
        });
        for (id, target) in assignment.conns {
            let entry = conns.vacant_entry();
            connect_queue.push_back(entry.key());
            let key = entry.key();
            let conn = match &schedule {
                Some(schedule) => {
                    let index = id - plan.first_conn_id;
                    Conn::new(id, key, target, schedule.instant_of(index)).with_send_index(index)
                }
                None => {
                    let first = plan.send_interval.map_or(start, |gap| first_send(start, id, plan.connections, gap));
                    Conn::new(id, key, target, first)
                }
            };
            entry.insert(conn);
        }
        let connect_limiter = plan.connect_rate.map(|r| RateLimiter::new(r / plan.threads as f64, start));
        let local_ports =
            assignment.port_range.map(|range| LocalPorts::new(&plan, assignment.index, conns.len(), range));
        let sources = plan.socket.sources.len();
        // Every slot starts queued; the first look at the stages retires those not
        // wanted yet (all of them, as the stages start from 0).
        let steering = plan.conn_stages.as_ref().map(|_| ConnSteering {
            active: conns.len(),
            next_look: start,
            retry: Vec::new(),
        });
        let worker = Worker {
            index: assignment.index,
            plan,
            shared,
            poll,
            conns,
            timers: Timers::new(),
            connect_queue,
            connecting: 0,
            closed: 0,
            again: Vec::new(),
            wakeup,
            connect_limiter,
            local_ports,
            state: HandlerState {
                index: assignment.index as u64,
                stats: WorkerStats { connects_by_source: vec![0; sources], ..WorkerStats::default() },
                budget: Budget::new(assignment.quota),
                render: Vec::new(),
                expect: Vec::new(),
                schedule,
            },
            quota: assignment.quota,
            rate_changes: assignment.rate_changes,
            steering,
            scratch: vec![0; SCRATCH_BYTES],
            to_coordinator,
            coordinator,
            counters_at_cut: Counters::default(),
            interval_start: start,
            interval: 0,
        };
        Ok((worker, waker))
    }

    /// Runs the event loop until the coordinator says stop or this worker's work is
    /// done, then closes every connection and sends the final snapshot.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let end = self.shared.cuts.end;
        self.follow_conn_stages(Instant::now());
        self.open_connections(Instant::now());
        loop {
            let now = Instant::now();
            if now >= end || self.shared.stop.load(Ordering::Relaxed) || self.finished() {
                break;
            }
            let timeout = self.poll_timeout(now);
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                // A signal landed on this thread: just poll again.
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                warn!("worker {}: poll failed: {e}", self.index);
                break;
            }
            for event in events.iter() {
                if event.token() == WAKER {
                    // The stop flag is checked at the top of the loop; a rate change
                    // is applied now.
                    self.apply_rate_changes();
                    continue;
                }
                if event.token() == WAKEUP {
                    if let Some(w) = &mut self.wakeup {
                        w.fired(); // Due deadlines fire below.
                    }
                    continue;
                }
                let closed = event.is_read_closed() || event.is_error();
                let ready =
                    Readiness { readable: event.is_readable() || closed, writable: event.is_writable(), closed };
                self.dispatch(event.token().0, ready);
            }
            for (key, ready) in std::mem::take(&mut self.again) {
                self.dispatch(key, ready);
            }
            let now = Instant::now();
            self.fire_deadlines(now);
            self.follow_conn_stages(now);
            self.open_connections(now);
            // The interval that reaches the run's end is covered by the last
            // snapshot, sent after the loop: cutting it here would leave an empty row.
            let cut = self.shared.cuts.next_after(self.interval_start);
            if now >= cut && cut < end {
                self.send_snapshot(cut, false);
            }
        }
        for (_, conn) in self.conns.iter_mut() {
            conn.shut_down();
        }
        if let Some(ports) = self.local_ports.as_ref().filter(|ports| ports.fallbacks > 0) {
            debug!("worker {}: {} connects placed by the second choice of port picker", self.index, ports.fallbacks);
        }
        let stopped = Instant::now().min(end);
        self.send_snapshot(stopped, true);
    }

    /// How long `poll` may sleep: until the next deadline, cut or paced connect.
    ///
    /// mio rounds a timeout *up* to whole milliseconds. That is fine for timeouts, but
    /// in open loop a paced send that leaves late counts the lateness as latency. So
    /// in open loop the next deadline is also armed on the timerfd (`Wakeup`), which
    /// wakes the thread to the nanosecond, or at moderate rates on a 100 µs grid that
    /// batches sends (see `wakeup.rs`).
    fn poll_timeout(&mut self, now: Instant) -> Duration {
        if !self.again.is_empty() {
            return Duration::ZERO; // Connections are still ready: just collect events.
        }
        let mut wake = self.shared.cuts.next_after(self.interval_start);
        if let Some(deadline) = self.timers.next_deadline() {
            wake = wake.min(deadline);
        }
        if let Some(limiter) = &self.connect_limiter {
            if !self.connect_queue.is_empty() && self.connecting < MAX_CONNECTING {
                wake = wake.min(limiter.next_allowed());
            }
        }
        if let Some(steering) = &self.steering {
            wake = wake.min(steering.next_look);
        }
        if let Some(wakeup) = &mut self.wakeup {
            if let Err(e) = wakeup.arm(wake, now) {
                warn!("worker {}: cannot arm the wake-up timer: {e}", self.index);
            }
        }
        wake.saturating_duration_since(now)
    }

    /// True when this worker has nothing left to do: its `-n` share is complete, or
    /// every connection is closed for good.
    fn finished(&self) -> bool {
        let quota_done = self.quota.is_some_and(|q| self.state.stats.counters.requests_completed >= q);
        quota_done || self.closed == self.conns.len()
    }

    /// Hands one readiness event to its connection.
    fn dispatch(&mut self, key: usize, ready: Readiness) {
        let Some(conn) = self.conns.get_mut(key) else {
            trace!("worker {}: event for unknown token {key}", self.index);
            return;
        };
        let mut ctx = self.state.ctx(Instant::now(), &self.plan);
        let after = conn.on_event(ready, &mut self.scratch, &mut ctx);
        self.settle(key, after);
        if self.state.stats.ramp_done_at.is_none() && self.state.stats.open == self.conns.len() as u64 {
            self.state.stats.ramp_done_at = Some(Instant::now());
        }
    }

    /// Applies the rate changes the coordinator sent, then moves every connection's
    /// next send to its new time. This visits the whole slab, which is fine for an
    /// event a person or a script causes a few times a run, never per request.
    fn apply_rate_changes(&mut self) {
        let (Some(changes), Some(schedule)) = (&self.rate_changes, &mut self.state.schedule) else {
            return;
        };
        let mut changed = false;
        while let Ok(change) = changes.try_recv() {
            schedule.rates.set_rate(change.at_s, change.rate);
            changed = true;
        }
        if !changed {
            return;
        }
        for (key, conn) in self.conns.iter_mut() {
            conn.reschedule(schedule);
            self.timers.arm(key, conn.deadline(&self.plan));
        }
    }

    /// `--conn-stages`: brings the number of this worker's connections to what the
    /// stages ask for now. Growing revives slots (they queue for a connect, so
    /// `--connect-rate` applies); shrinking retires the last ones gracefully (they
    /// finish their requests in flight, then close, with no error counted). Looks
    /// every [`CONN_STAGES_LOOK`], and only at the slots that change.
    fn follow_conn_stages(&mut self, now: Instant) {
        let (Some(stages), Some(steering)) = (&self.plan.conn_stages, &mut self.steering) else {
            return;
        };
        if now < steering.next_look {
            return;
        }
        steering.next_look = now + CONN_STAGES_LOOK;
        let t = now.saturating_duration_since(self.shared.cuts.start).as_secs_f64();
        // This process's share of the test's connections, then this worker's share of it.
        let process = self.plan.shard.share(stages.total_at(t)).0;
        let wanted = worker_share(process, self.index, self.plan.threads).min(self.conns.len());
        let mut changes = Vec::new();
        while steering.active < wanted {
            let key = steering.active;
            changes.push((key, After { next: self.conns[key].revive(), connect_ended: false }));
            steering.active += 1;
        }
        let mut to_retire = std::mem::take(&mut steering.retry);
        to_retire.retain(|key| *key >= wanted);
        to_retire.extend(wanted..steering.active);
        steering.active = steering.active.min(wanted);
        let mut retry_later = Vec::new();
        for key in to_retire {
            let mut ctx = self.state.ctx(now, &self.plan);
            match self.conns[key].retire(&mut ctx) {
                Some(after) => changes.push((key, after)),
                None => retry_later.push(key),
            }
        }
        if let Some(steering) = &mut self.steering {
            steering.retry = retry_later;
        }
        for (key, after) in changes {
            self.settle(key, after);
        }
    }

    /// Wakes every connection whose deadline has passed.
    fn fire_deadlines(&mut self, now: Instant) {
        while let Some(key) = self.timers.pop_due(now) {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            let mut ctx = self.state.ctx(now, &self.plan);
            let after = conn.on_deadline(&mut ctx);
            self.settle(key, after);
        }
    }

    /// Book-keeping after a connection's handler ran, from what it says happened:
    /// connect slots, the connect queue, closed connections, and its deadline.
    fn settle(&mut self, key: usize, after: After) {
        if after.connect_ended {
            self.connecting -= 1;
        }
        match after.next {
            Next::Wait => {}
            Next::Queue => self.connect_queue.push_back(key),
            // The queue is not drained: no short-read shortcut on the next round.
            Next::Again { readable, writable } => {
                self.again.push((key, Readiness { readable, writable, closed: readable }))
            }
            Next::Closed => self.closed += 1,
        }
        self.timers.arm(key, self.conns[key].deadline(&self.plan));
    }

    /// Starts connects from the queue while the in-flight bound allows.
    fn open_connections(&mut self, now: Instant) {
        while self.connecting < MAX_CONNECTING && !self.connect_queue.is_empty() {
            if let Some(limiter) = &mut self.connect_limiter {
                if !limiter.try_take(now) {
                    break; // `poll_timeout` wakes us when the next connect is allowed.
                }
            }
            let Some(key) = self.connect_queue.pop_front() else {
                break;
            };
            let conn = &mut self.conns[key];
            if !conn.is_queued() {
                continue; // Queued twice, or the run is stopping.
            }
            self.state.stats.counters.conns_attempted += 1;
            let opened = open_link(&self.plan, conn.target, key, self.local_ports.as_mut()).and_then(|mut link| {
                // Registered once, for both directions, edge-triggered: no request
                // ever needs another epoll_ctl.
                let interest = Interest::READABLE | Interest::WRITABLE;
                self.poll.registry().register(link.socket_mut(), Token(key), interest)?;
                Ok(link)
            });
            let after = match opened {
                Ok(link) => {
                    // A Unix target has no source address.
                    let tcp = matches!(self.plan.targets[conn.target], Target::Tcp(_));
                    if let Some(source) = source_index(&self.plan, key).filter(|_| tcp) {
                        self.state.stats.connects_by_source[source] += 1;
                    }
                    conn.connecting(link, now);
                    self.connecting += 1;
                    // Waits for its first event; `settle` arms its connect deadline.
                    After { next: Next::Wait, connect_ended: false }
                }
                Err(e) => {
                    debug!(
                        "conn {} token {key}: connect to {} failed at once: {e}",
                        conn.id, self.plan.targets[conn.target]
                    );
                    let mut ctx = self.state.ctx(now, &self.plan);
                    conn.connect_failed(&e, &mut ctx)
                }
            };
            self.settle(key, after);
        }
    }

    /// Sends the snapshot of the interval ending at `at` to the coordinator, wakes
    /// it, and starts the next interval.
    fn send_snapshot(&mut self, at: Instant, last: bool) {
        let cuts = self.shared.cuts;
        let interval = Interval { index: self.interval, measured: self.interval_start >= cuts.measure_from, last };
        let t_s = seconds_since(cuts.start, at);
        let snapshot = self.state.stats.cut(self.index, interval, t_s, &self.counters_at_cut);
        self.counters_at_cut = self.state.stats.counters;
        self.interval_start = at;
        self.interval += 1;
        // The coordinator only goes away after every worker's last snapshot, so a
        // send error means it panicked; there is nobody left to tell.
        let _ = self.to_coordinator.send(snapshot);
        let _ = self.coordinator.wake();
    }
}

/// Opens connection slot `key`'s transport: a nonblocking socket to `target` (TCP,
/// see [`dial_tcp`], or Unix), wrapped in a TLS session when the plan has TLS, and
/// in a WebSocket session when the plan has one.
fn open_link(plan: &Plan, target: usize, key: usize, ports: Option<&mut LocalPorts>) -> io::Result<Link> {
    let socket = match &plan.targets[target] {
        Target::Tcp(addr) => Socket::Tcp(dial_tcp(plan, *addr, key, ports)?),
        Target::Unix(path) => dial_unix(path)?,
    };
    let link = match &plan.tls {
        Some(tls) => Link::Tls(Box::new(tls.wrap(socket, target)?)),
        None => Link::Plain(socket),
    };
    Ok(match &plan.websocket {
        Some(ws) => Link::Ws(Box::new(WsStream::new(link, ws, target, plan.max_response))),
        None => link,
    })
}

/// Opens connection slot `key`'s TCP socket to `addr`, from its source address and a
/// source port picked by loadmux or the kernel (`local_ports.rs`).
///
/// Sources are spread by slab key, which counts 0, 1, 2... within a worker, so every
/// worker spreads its own connections evenly over them.
fn dial_tcp(plan: &Plan, addr: SocketAddr, key: usize, ports: Option<&mut LocalPorts>) -> io::Result<TcpStream> {
    let source = source_index(plan, key).map(|i| plan.socket.sources[i]);
    match ports {
        Some(ports) => ports.dial(key, addr, source, plan),
        None => dial(addr, &plan.socket, source),
    }
}

/// Which of `plan.socket.sources` connection slot `key` connects from over TCP
/// (`None` without sources).
fn source_index(plan: &Plan, key: usize) -> Option<usize> {
    let sources = plan.socket.sources.len();
    (sources > 0).then(|| key % sources)
}
