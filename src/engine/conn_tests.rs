//! State-machine tests: each builds a state, feeds it a scripted socket and synthetic
//! instants, and checks the transition and what was counted. No sockets, no sleeps.

use super::*;
use crate::engine::stages::RateSchedule;
use crate::payload::{Payload, Template};
use crate::plan::Backoff;
use crate::transport::{Target, TlsInfo};
use std::cell::Cell;
use std::collections::VecDeque;

/// A socket whose every call is scripted.
#[derive(Default)]
struct FakeSocket {
    /// Results of successive `read` calls; empty means WouldBlock.
    reads: VecDeque<io::Result<Vec<u8>>>,
    /// Results of successive `write` calls: `Ok(n)` takes up to n bytes; empty means
    /// "take everything".
    writes: VecDeque<io::Result<usize>>,
    written: Vec<u8>,
    so_error: Option<i32>,
    connected: bool,
    /// Results of successive handshake steps; empty means "done" (a plain socket).
    handshakes: VecDeque<io::Result<bool>>,
    /// What the handshake negotiated (a TLS socket), once `handshakes` is empty.
    tls: Option<TlsInfo>,
    /// Bytes the transport holds for the socket (TLS records), flushed on `flush`.
    held: usize,
    /// Results of successive `flush` calls while bytes are held: `Ok(true)` sends
    /// them all; empty means "the socket takes them".
    flushes: VecDeque<io::Result<bool>>,
    /// Whether `half_close` sends a FIN (a plain socket) rather than declining.
    shuts_down: bool,
    /// Whether it did.
    write_shut: bool,
    /// A session to open (WebSocket): results of successive upgrade steps, then
    /// "open". `None`: no session.
    upgrades: Option<VecDeque<io::Result<bool>>>,
    /// The session's close code, once the peer closed it.
    close_code: Option<u16>,
}

impl Transport for FakeSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.reads.pop_front() {
            None => Err(io::ErrorKind::WouldBlock.into()),
            Some(Ok(bytes)) => {
                buf[..bytes.len()].copy_from_slice(&bytes);
                Ok(bytes.len())
            }
            Some(Err(e)) => Err(e),
        }
    }
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.writes.pop_front() {
            None => {
                self.written.extend_from_slice(buf);
                Ok(buf.len())
            }
            Some(Ok(limit)) => {
                let n = limit.min(buf.len());
                self.written.extend_from_slice(&buf[..n]);
                Ok(n)
            }
            Some(Err(e)) => Err(e),
        }
    }
    fn flush(&mut self) -> io::Result<bool> {
        match self.flushes.pop_front() {
            None | Some(Ok(true)) => {
                self.held = 0;
                Ok(true)
            }
            Some(other) => other,
        }
    }
    fn wants_write(&self) -> bool {
        self.held > 0
    }
    fn handshake(&mut self) -> io::Result<bool> {
        self.handshakes.pop_front().unwrap_or(Ok(true))
    }
    fn drained(&self) -> bool {
        true
    }
    fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(self.so_error.map(io::Error::from_raw_os_error))
    }
    fn is_connected(&self) -> io::Result<bool> {
        Ok(self.connected)
    }
    fn reset_on_close(&self) -> io::Result<()> {
        Ok(())
    }
    fn tls_info(&self) -> Option<TlsInfo> {
        self.tls.clone()
    }
    fn half_close(&mut self) -> io::Result<bool> {
        self.write_shut = self.shuts_down;
        Ok(self.shuts_down)
    }
    fn has_session(&self) -> bool {
        self.upgrades.is_some()
    }
    fn open_session(&mut self) -> io::Result<bool> {
        self.upgrades.as_mut().and_then(VecDeque::pop_front).unwrap_or(Ok(true))
    }
    fn close_code(&self) -> Option<u16> {
        self.close_code
    }
}

/// A clock the test moves by hand. `after_read` is what a re-read of the clock
/// after a read returns (by default the rig's `now`).
struct FakeClock {
    after_read: Cell<Option<Instant>>,
    now: Cell<Instant>,
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.after_read.get().unwrap_or(self.now.get())
    }
}

fn plan() -> Plan {
    let mut plan = Plan::new(vec![Target::Tcp("127.0.0.1:7001".parse().unwrap())]);
    plan.connections = 1;
    plan.reconnect = Some(Backoff { min: Duration::from_millis(10), max: Duration::from_secs(1) });
    plan
}

/// Sets the pipeline depth (and the batch buffer that goes with it).
fn pipelined(plan: &mut Plan, depth: usize) {
    plan.pipeline = depth;
    plan.batch = plan.message.repeat(depth).into();
}

/// Everything one test needs: the plan, stats, budget, a clock and a scratch buffer.
struct Rig {
    plan: Plan,
    clock: FakeClock,
    stats: WorkerStats,
    budget: Budget,
    now: Instant,
    scratch: Vec<u8>,
    render: Vec<u8>,
    expect: Vec<u8>,
    /// A rate schedule (`--stages`, live control), when the test sets one.
    schedule: Option<SendSchedule>,
}

impl Rig {
    fn new() -> Self {
        let now = Instant::now();
        Rig {
            plan: plan(),
            clock: FakeClock { after_read: Cell::new(None), now: Cell::new(now) },
            stats: WorkerStats::default(),
            budget: Budget::new(None),
            now,
            scratch: vec![0; 64],
            render: Vec::new(),
            expect: Vec::new(),
            schedule: None,
        }
    }

    /// Runs `f` with a handler context over the rig's state and its scratch buffer.
    fn with_ctx<R>(&mut self, f: impl FnOnce(&mut Ctx, &mut [u8]) -> R) -> R {
        self.clock.now.set(self.now);
        let mut ctx = Ctx {
            now: self.now,
            clock: &self.clock,
            plan: &self.plan,
            stats: &mut self.stats,
            budget: &mut self.budget,
            worker: 0,
            render: &mut self.render,
            expect: &mut self.expect,
            schedule: self.schedule.as_ref(),
        };
        f(&mut ctx, &mut self.scratch)
    }

    /// An event; returns what the worker is told to do next.
    fn event(&mut self, conn: &mut Conn<FakeSocket>, readable: bool, writable: bool) -> Next {
        self.event_after(conn, readable, writable).next
    }

    fn event_after(&mut self, conn: &mut Conn<FakeSocket>, readable: bool, writable: bool) -> After {
        self.with_ctx(|ctx, scratch| conn.on_event(Readiness { readable, writable, closed: false }, scratch, ctx))
    }

    fn deadline(&mut self, conn: &mut Conn<FakeSocket>) -> Next {
        self.with_ctx(|ctx, _| conn.on_deadline(ctx)).next
    }

    fn advance(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
    }

    /// A connection that has just completed its handshake and written its first request.
    fn established(&mut self) -> Conn<FakeSocket> {
        // In open loop its first send is due as the connect completes, 1 ms on.
        let mut conn = Conn::new(1, 0, 0, self.now + Duration::from_millis(1));
        conn.connecting(FakeSocket { connected: true, ..Default::default() }, self.now);
        self.advance(1);
        assert_eq!(self.event(&mut conn, false, true), Next::Wait);
        conn
    }
}

fn socket(conn: &mut Conn<FakeSocket>) -> &mut FakeSocket {
    match &mut conn.state {
        State::Connecting { socket, .. } | State::Handshaking { socket, .. } | State::Upgrading { socket, .. } => {
            socket
        }
        State::Greeting(open) | State::Open(open) => &mut open.socket,
        State::Closing { socket, .. } => socket,
        other => panic!("no socket in {}", other.name()),
    }
}

/// The data of an established connection (`Greeting` or `Open`).
fn open(conn: &Conn<FakeSocket>) -> &Open<FakeSocket> {
    match &conn.state {
        State::Greeting(open) | State::Open(open) => open,
        other => panic!("not established: {}", other.name()),
    }
}

fn sender(conn: &Conn<FakeSocket>) -> Sender {
    open(conn).sender
}

fn in_flight(conn: &Conn<FakeSocket>) -> usize {
    open(conn).in_flight.len()
}

fn name(conn: &Conn<FakeSocket>) -> &'static str {
    conn.state.name()
}

fn backoff_until(conn: &Conn<FakeSocket>) -> Option<Instant> {
    match &conn.state {
        State::Backoff { until } => Some(*until),
        _ => None,
    }
}

#[test]
fn connect_completes_on_writable_and_sends_the_first_request() {
    let mut rig = Rig::new();
    let mut conn = rig.established();
    assert_eq!((name(&conn), sender(&conn), in_flight(&conn)), ("Open", Sender::Ready, 1));
    assert_eq!(socket(&mut conn).written, b"hello\n");
    assert_eq!(rig.stats.counters.conns_established, 1);
    assert_eq!(rig.stats.counters.requests_sent, 1);
    assert_eq!(rig.stats.connect_latency.count(), 1);
    assert!(rig.stats.connect_latency.max() >= 1000, "connect latency is ~1 ms");
}

#[test]
fn refused_connect_counts_connect_refused_and_backs_off() {
    let mut rig = Rig::new();
    let mut conn = Conn::new(1, 0, 0, rig.now);
    conn.connecting(FakeSocket { so_error: Some(libc::ECONNREFUSED), ..Default::default() }, rig.now);
    assert_eq!(rig.event(&mut conn, true, true), Next::Wait);
    assert_eq!(rig.stats.counters.errors.get(ErrorKind::ConnectRefused), 1);
    assert_eq!(rig.stats.counters.conns_failed, 1);
    assert_eq!(rig.stats.open, 0);
    assert_eq!(backoff_until(&conn), Some(rig.now + Duration::from_millis(10)));
    // The backoff ends in the connect queue.
    rig.advance(10);
    assert_eq!(rig.deadline(&mut conn), Next::Queue);
    assert_eq!(name(&conn), "Queued");
}

#[test]
fn backoff_doubles_with_each_failure_in_a_row() {
    let mut rig = Rig::new();
    let mut conn = Conn::new(1, 0, 0, rig.now);
    for expected_ms in [10, 20, 40] {
        conn.connecting(FakeSocket { so_error: Some(libc::ECONNREFUSED), ..Default::default() }, rig.now);
        let _ = rig.event(&mut conn, false, true);
        assert_eq!(backoff_until(&conn), Some(rig.now + Duration::from_millis(expected_ms)));
    }
}

#[test]
fn spurious_event_while_connecting_is_ignored() {
    let mut rig = Rig::new();
    let mut conn = Conn::new(1, 0, 0, rig.now);
    conn.connecting(FakeSocket::default(), rig.now);
    assert_eq!(rig.event(&mut conn, false, true), Next::Wait);
    assert_eq!(name(&conn), "Connecting");
    assert_eq!(rig.stats.counters.errors.total(), 0);
}

#[test]
fn connect_timeout_fires_only_after_the_deadline() {
    let mut rig = Rig::new();
    let mut conn = Conn::new(1, 0, 0, rig.now);
    conn.connecting(FakeSocket::default(), rig.now);
    rig.advance(2999);
    assert_eq!(rig.deadline(&mut conn), Next::Wait);
    assert_eq!(name(&conn), "Connecting");
    rig.advance(1);
    let _ = rig.deadline(&mut conn);
    assert_eq!(rig.stats.counters.errors.get(ErrorKind::ConnectTimeout), 1);
    assert_eq!(name(&conn), "Backoff");
}

#[test]
fn echo_response_completes_the_request_and_sends_the_next() {
    let mut rig = Rig::new();
    let mut conn = rig.established();
    rig.advance(2);
    socket(&mut conn).reads.push_back(Ok(b"hello\n".to_vec()));
    assert_eq!(rig.event(&mut conn, true, false), Next::Wait);
    assert_eq!(rig.stats.counters.requests_completed, 1);
    assert_eq!(rig.stats.counters.requests_sent, 2);
    assert_eq!(rig.stats.latency.count(), 1);
    assert!((2000..2010).contains(&rig.stats.latency.max()), "latency is 2 ms");
    assert_eq!(socket(&mut conn).written, b"hello\nhello\n");
    assert_eq!(in_flight(&conn), 1);
    // The new request's response deadline runs from now.
    assert_eq!(conn.deadline(&rig.plan), Some(rig.now + rig.plan.response_timeout));
}

#[test]
fn a_response_split_across_reads_completes_once() {
    let mut rig = Rig::new();
    let mut conn = rig.established();
    socket(&mut conn).reads.push_back(Ok(b"hel".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(rig.stats.counters.requests_completed, 0);
    socket(&mut conn).reads.push_back(Ok(b"lo\n".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(rig.stats.counters.requests_completed, 1);
}

#[test]
fn partial_write_waits_for_writable_then_finishes() {
    let mut rig = Rig::new();
    let mut conn = Conn::new(1, 0, 0, rig.now);
    let mut fake = FakeSocket { connected: true, ..Default::default() };
    fake.writes.push_back(Ok(2));
    fake.writes.push_back(Err(io::ErrorKind::WouldBlock.into()));
    conn.connecting(fake, rig.now);
    let _ = rig.event(&mut conn, false, true);
    assert_eq!(sender(&conn), Sender::Writing { done: 2, len: 6 });
    // A readable event with nothing to read leaves the write pending.
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(sender(&conn), Sender::Writing { done: 2, len: 6 });
    // Writable resumes where it stopped. The WouldBlock is scripted next.
    let _ = rig.event(&mut conn, false, true);
    assert_eq!(sender(&conn), Sender::Writing { done: 2, len: 6 });
    let _ = rig.event(&mut conn, false, true);
    assert_eq!(sender(&conn), Sender::Ready);
    assert_eq!(socket(&mut conn).written, b"hello\n");
    assert_eq!(rig.stats.counters.bytes_sent, 6);
}

#[test]
fn interrupted_calls_are_retried() {
    let mut rig = Rig::new();
    let mut conn = Conn::new(1, 0, 0, rig.now);
    let mut fake = FakeSocket { connected: true, ..Default::default() };
    fake.writes.push_back(Err(io::ErrorKind::Interrupted.into()));
    conn.connecting(fake, rig.now);
    let _ = rig.event(&mut conn, false, true);
    assert_eq!((sender(&conn), in_flight(&conn)), (Sender::Ready, 1));
    socket(&mut conn).reads.push_back(Err(io::ErrorKind::Interrupted.into()));
    socket(&mut conn).reads.push_back(Ok(b"hello\n".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(rig.stats.counters.requests_completed, 1);
    assert_eq!(rig.stats.counters.errors.total(), 0);
}

#[test]
fn eof_while_awaiting_counts_eof_and_returns_the_budget() {
    let mut rig = Rig::new();
    rig.budget = Budget::new(Some(1));
    let mut conn = rig.established();
    assert!(!rig.budget.take(), "the one request is out");
    socket(&mut conn).reads.push_back(Ok(Vec::new()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(rig.stats.counters.errors.get(ErrorKind::Eof), 1);
    assert_eq!(rig.stats.open, 0);
    assert_eq!(name(&conn), "Backoff");
    assert!(rig.budget.take(), "the lost request goes back into the budget");
}

#[test]
fn reset_counts_reset() {
    let mut rig = Rig::new();
    let mut conn = rig.established();
    socket(&mut conn).reads.push_back(Err(io::Error::from_raw_os_error(libc::ECONNRESET)));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(rig.stats.counters.errors.get(ErrorKind::Reset), 1);
    assert_eq!(rig.stats.counters.errors.total(), 1);
}

#[test]
fn an_echo_mismatch_counts_protocol() {
    let mut rig = Rig::new();
    let mut conn = rig.established();
    socket(&mut conn).reads.push_back(Ok(b"jello\n".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(rig.stats.counters.errors.get(ErrorKind::Protocol), 1);
    assert_eq!(rig.stats.counters.requests_completed, 0);
}

#[test]
fn response_timeout_fires_after_the_deadline() {
    let mut rig = Rig::new();
    let mut conn = rig.established();
    rig.advance(4999);
    let _ = rig.deadline(&mut conn);
    assert_eq!((name(&conn), in_flight(&conn)), ("Open", 1));
    rig.advance(1);
    let _ = rig.deadline(&mut conn);
    assert_eq!(rig.stats.counters.errors.get(ErrorKind::ResponseTimeout), 1);
    assert_eq!(name(&conn), "Backoff");
}

#[test]
fn a_spent_budget_stops_the_send_side() {
    let mut rig = Rig::new();
    rig.budget = Budget::new(Some(1));
    let mut conn = rig.established();
    socket(&mut conn).reads.push_back(Ok(b"hello\n".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!((name(&conn), sender(&conn)), ("Open", Sender::Spent));
    assert_eq!(rig.stats.counters.requests_sent, 1);
    assert_eq!(rig.stats.counters.requests_completed, 1);
    assert_eq!(conn.deadline(&rig.plan), None);
}

#[test]
fn without_reconnect_a_failed_connection_stays_closed() {
    let mut rig = Rig::new();
    rig.plan.reconnect = None;
    let mut conn = rig.established();
    socket(&mut conn).reads.push_back(Ok(Vec::new()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(name(&conn), "Closed");
    assert_eq!(conn.deadline(&rig.plan), None);
}

#[test]
fn a_clean_close_with_nothing_due_requeues_without_an_error() {
    let mut rig = Rig::new();
    rig.budget = Budget::new(Some(1));
    let mut conn = rig.established();
    socket(&mut conn).reads.push_back(Ok(b"hello\n".to_vec()));
    socket(&mut conn).reads.push_back(Ok(Vec::new()));
    let _ = rig.event(&mut conn, true, false);
    // The response filled only 6 of 64 scratch bytes: a short read, so the EOF waits
    // for the next edge.
    assert_eq!(sender(&conn), Sender::Spent);
    assert_eq!(rig.event(&mut conn, true, false), Next::Queue);
    assert_eq!(rig.stats.counters.errors.total(), 0);
    assert_eq!(rig.stats.open, 0);
}

#[test]
fn events_for_a_dropped_socket_are_ignored() {
    let mut rig = Rig::new();
    let mut conn: Conn<FakeSocket> = Conn::new(1, 0, 0, rig.now);
    assert_eq!(rig.event(&mut conn, true, true), Next::Wait);
    assert_eq!(name(&conn), "Queued");
}

#[test]
fn a_pipeline_sends_its_requests_in_one_write_and_refills_in_one_write() {
    let mut rig = Rig::new();
    pipelined(&mut rig.plan, 3);
    let mut conn = rig.established();
    assert_eq!(in_flight(&conn), 3);
    assert_eq!(socket(&mut conn).written, b"hello\nhello\nhello\n");
    assert_eq!(rig.stats.counters.requests_sent, 3);
    // Two responses in one read: two requests complete, two new ones go out together.
    socket(&mut conn).writes.push_back(Ok(usize::MAX));
    socket(&mut conn).reads.push_back(Ok(b"hello\nhello\nhel".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(rig.stats.counters.requests_completed, 2);
    assert_eq!(rig.stats.counters.requests_sent, 5);
    assert_eq!(in_flight(&conn), 3);
    assert_eq!(socket(&mut conn).written.len(), 5 * 6);
    assert!(socket(&mut conn).writes.is_empty(), "the refill was a single write call");
}

#[test]
fn pipelined_responses_each_time_from_their_own_send() {
    let mut rig = Rig::new();
    pipelined(&mut rig.plan, 2);
    let mut conn = rig.established();
    rig.advance(3);
    socket(&mut conn).reads.push_back(Ok(b"hello\nhello\n".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(rig.stats.latency.count(), 2);
    assert!((3000..3010).contains(&rig.stats.latency.min()));
}

#[test]
fn open_loop_waits_for_the_schedule_and_measures_from_the_intended_time() {
    let mut rig = Rig::new();
    rig.plan.send_interval = Some(Duration::from_millis(10));
    let mut conn = rig.established();
    // The first request went out at once; the next is due 10 ms after it.
    socket(&mut conn).reads.push_back(Ok(b"hello\n".to_vec()));
    rig.advance(2);
    let _ = rig.event(&mut conn, true, false);
    let first_due = rig.now - Duration::from_millis(2) + Duration::from_millis(10);
    assert_eq!(sender(&conn), Sender::Paced { at: first_due });
    assert_eq!(conn.deadline(&rig.plan), Some(first_due));
    // Nothing happens before the due time.
    rig.advance(5);
    let _ = rig.deadline(&mut conn);
    assert_eq!(rig.stats.counters.requests_sent, 1);
    rig.advance(3);
    let _ = rig.deadline(&mut conn);
    assert_eq!(rig.stats.counters.requests_sent, 2);
    // The server stalls 50 ms: the response arrives late, and the next request is
    // already 40 ms overdue. It goes out at once, and its latency counts from its
    // place in the schedule, not from when it was finally sent.
    rig.advance(50);
    socket(&mut conn).reads.push_back(Ok(b"hello\n".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(rig.stats.counters.requests_sent, 3);
    rig.advance(1);
    socket(&mut conn).reads.push_back(Ok(b"hello\n".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    let corrected = rig.stats.latency.max();
    let uncorrected = rig.stats.latency_uncorrected.max();
    assert!((50_000..51_100).contains(&uncorrected), "uncorrected {uncorrected}");
    assert!(rig.stats.latency.percentile(100.0) == corrected && corrected >= 50_000);
    let stalled_third = rig.stats.latency.percentile(100.0);
    assert!(stalled_third >= 41_000, "the third request counts from its schedule slot: {stalled_third}");
}

#[test]
fn a_connection_that_connects_late_keeps_its_place_in_the_schedule() {
    let mut rig = Rig::new();
    rig.plan.send_interval = Some(Duration::from_millis(10));
    let slot = rig.now;
    // Due at `slot`, but connected 25 ms later: the sends due at 0 and 10 ms are
    // skipped, the one due at 20 ms leaves at once (5 ms late, and says so)...
    let mut conn = Conn::new(1, 0, 0, slot);
    conn.connecting(FakeSocket { connected: true, ..Default::default() }, rig.now);
    rig.advance(25);
    assert_eq!(rig.event(&mut conn, false, true), Next::Wait);
    assert_eq!(rig.stats.counters.requests_sent, 1);
    assert!((5_000..=5_010).contains(&rig.stats.send_lag.max()), "lag {}", rig.stats.send_lag.max());
    // ...and the next is due at 30 ms, on the connection's own slots, not 10 ms
    // after it connected.
    rig.advance(1);
    socket(&mut conn).reads.push_back(Ok(b"hello\n".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(sender(&conn), Sender::Paced { at: slot + Duration::from_millis(30) });
}

#[test]
fn time_to_first_byte_is_recorded_once_per_response() {
    let mut rig = Rig::new();
    let mut conn = rig.established();
    rig.advance(1);
    socket(&mut conn).reads.push_back(Ok(b"he".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    rig.advance(4);
    socket(&mut conn).reads.push_back(Ok(b"llo\n".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(rig.stats.first_byte.count(), 1);
    assert!((1000..1010).contains(&rig.stats.first_byte.max()));
    assert!((5000..5010).contains(&rig.stats.latency.max()));
}

#[test]
fn unrequested_bytes_are_a_protocol_error() {
    let mut rig = Rig::new();
    rig.budget = Budget::new(Some(1));
    let mut conn = rig.established();
    socket(&mut conn).reads.push_back(Ok(b"hello\nextra".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(rig.stats.counters.requests_completed, 1);
    assert_eq!(rig.stats.counters.errors.get(ErrorKind::Protocol), 1);
}

fn templated(plan: &mut Plan, message: &str, first: Option<&str>) {
    let t = |m: &str| Template::parse(m.as_bytes().to_vec()).unwrap();
    plan.payload = std::sync::Arc::new(Payload::new(vec![t(message)], first.map(t)).unwrap());
    plan.message = std::sync::Arc::from(&b""[..]);
}

#[test]
fn templated_requests_are_rendered_and_their_echo_checked() {
    let mut rig = Rig::new();
    templated(&mut rig.plan, "get {conn}:{seq}\n", None);
    let mut conn = rig.established();
    assert_eq!(socket(&mut conn).written, b"get 1:0\n");
    socket(&mut conn).reads.push_back(Ok(b"get 1:0\n".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(rig.stats.counters.requests_completed, 1);
    assert_eq!(socket(&mut conn).written, b"get 1:0\nget 1:1\n");
    // An echo of the wrong request is caught: the expected bytes are rendered again.
    socket(&mut conn).reads.push_back(Ok(b"get 1:0\n".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(rig.stats.counters.errors.get(ErrorKind::Protocol), 1);
}

#[test]
fn a_short_write_of_rendered_bytes_keeps_only_the_rest() {
    let mut rig = Rig::new();
    templated(&mut rig.plan, "req {seq}\n", None);
    let mut conn = Conn::new(1, 0, 0, rig.now);
    let mut fake = FakeSocket { connected: true, ..Default::default() };
    fake.writes.push_back(Ok(3));
    conn.connecting(fake, rig.now);
    let _ = rig.event(&mut conn, false, true);
    // A partial write means the socket is full: no second write until writable.
    assert_eq!(sender(&conn), Sender::Writing { done: 0, len: 3 });
    assert_eq!(socket(&mut conn).written, b"req");
    let _ = rig.event(&mut conn, false, true);
    assert_eq!(socket(&mut conn).written, b"req 0\n");
    assert_eq!(sender(&conn), Sender::Ready);
}

#[test]
fn the_first_message_is_answered_before_requests_and_not_counted() {
    let mut rig = Rig::new();
    templated(&mut rig.plan, "hello\n", Some("AUTH secret\n"));
    let mut conn = rig.established();
    assert_eq!(socket(&mut conn).written, b"AUTH secret\n", "requests wait for the handshake");
    assert_eq!(rig.stats.counters.requests_sent, 0);
    socket(&mut conn).reads.push_back(Ok(b"AUTH secret\n".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(rig.stats.counters.requests_completed, 0, "the handshake is not a request");
    assert_eq!(socket(&mut conn).written, b"AUTH secret\nhello\n");
    assert_eq!(rig.stats.counters.requests_sent, 1);
}

#[test]
fn data_and_eof_in_one_event_are_both_seen() {
    let mut rig = Rig::new();
    let mut conn = rig.established();
    // Half a response, then the peer's FIN, both before the read: one event says
    // readable and closed. The short read must not end reading, or the EOF is lost.
    socket(&mut conn).reads.push_back(Ok(b"hel".to_vec()));
    socket(&mut conn).reads.push_back(Ok(Vec::new()));
    let ready = Readiness { readable: true, writable: false, closed: true };
    let _ = rig.with_ctx(|ctx, scratch| conn.on_event(ready, scratch, ctx));
    assert_eq!(rig.stats.counters.errors.get(ErrorKind::Eof), 1);
    assert_eq!(name(&conn), "Backoff");
}

#[test]
fn latency_stops_at_the_clock_read_after_the_read() {
    // The response was already waiting when the handler ran: the event's `now` is
    // from before the read. The clock re-read after the read decides the latency,
    // so it is not 0 µs (the bug this guards against).
    let mut rig = Rig::new();
    let mut conn = rig.established();
    let sent = rig.now;
    rig.clock.after_read.set(Some(sent + Duration::from_micros(250)));
    socket(&mut conn).reads.push_back(Ok(b"hello\n".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(rig.stats.latency.count(), 1);
    assert!((250..=251).contains(&rig.stats.latency.max()), "latency {}", rig.stats.latency.max());
}

#[test]
fn the_connect_slot_is_freed_once_when_the_connect_ends() {
    let mut rig = Rig::new();
    let mut conn = Conn::new(1, 0, 0, rig.now);
    conn.connecting(FakeSocket::default(), rig.now);
    // Still connecting: the slot stays taken.
    assert!(!rig.event_after(&mut conn, false, true).connect_ended);
    socket(&mut conn).connected = true;
    let after = rig.event_after(&mut conn, false, true);
    assert_eq!(after, After { next: Next::Wait, connect_ended: true });
    // Established: later events say nothing about connects.
    socket(&mut conn).reads.push_back(Ok(b"hello\n".to_vec()));
    assert!(!rig.event_after(&mut conn, true, false).connect_ended);
}

/// A connection whose socket connected and whose transport needs a handshake of
/// `steps` more steps, each answered by an event.
fn tls_like(rig: &mut Rig, steps: usize, resumed: bool) -> Conn<FakeSocket> {
    let mut conn = Conn::new(1, 0, 0, rig.now);
    let mut fake = FakeSocket { connected: true, ..Default::default() };
    fake.handshakes.extend((0..steps).map(|_| Ok(false)));
    fake.tls = Some(TlsInfo { version: "TLSv1.3", cipher: "TLS13_AES_128_GCM_SHA256", alpn: None, resumed });
    conn.connecting(fake, rig.now);
    conn
}

#[test]
fn a_handshake_holds_requests_and_the_connect_slot_until_it_is_done() {
    let mut rig = Rig::new();
    let mut conn = tls_like(&mut rig, 2, false);
    rig.advance(1);
    let after = rig.event_after(&mut conn, false, true);
    assert_eq!((name(&conn), after.connect_ended), ("Handshaking", false));
    assert_eq!(rig.stats.connect_latency.count(), 1, "the TCP connect is done and timed");
    assert!(socket(&mut conn).written.is_empty(), "no request before the handshake");
    rig.advance(2);
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(name(&conn), "Handshaking");
    rig.advance(3);
    let after = rig.event_after(&mut conn, true, false);
    assert_eq!((name(&conn), after.connect_ended), ("Open", true));
    assert_eq!(socket(&mut conn).written, b"hello\n");
    assert_eq!(rig.stats.counters.conns_established, 1);
    assert_eq!((rig.stats.counters.tls_full, rig.stats.counters.tls_resumed), (1, 0));
    // The handshake's latency runs from the TCP connect: 2 + 3 ms.
    assert!((5000..5010).contains(&rig.stats.tls_handshake.max()), "{}", rig.stats.tls_handshake.max());
    assert_eq!(rig.stats.tls_info.as_ref().map(|i| i.version), Some("TLSv1.3"));
}

#[test]
fn a_failed_handshake_counts_tls_handshake_and_a_failed_connect() {
    let mut rig = Rig::new();
    let mut conn = tls_like(&mut rig, 0, false);
    socket(&mut conn).handshakes.push_back(Err(io::Error::new(io::ErrorKind::InvalidData, "unknown issuer")));
    let after = rig.event_after(&mut conn, false, true);
    assert_eq!((name(&conn), after.connect_ended), ("Backoff", true));
    assert_eq!(rig.stats.counters.errors.get(ErrorKind::TlsHandshake), 1);
    assert_eq!((rig.stats.counters.conns_failed, rig.stats.counters.conns_established), (1, 0));
    assert_eq!(rig.stats.open, 0);
}

#[test]
fn a_stalled_handshake_times_out_as_a_connect() {
    let mut rig = Rig::new();
    let mut conn = tls_like(&mut rig, 5, false);
    let _ = rig.event(&mut conn, false, true);
    assert_eq!(conn.deadline(&rig.plan), Some(rig.now + rig.plan.connect_timeout));
    rig.advance(3000);
    let _ = rig.deadline(&mut conn);
    assert_eq!(rig.stats.counters.errors.get(ErrorKind::ConnectTimeout), 1);
    assert_eq!(name(&conn), "Backoff");
}

#[test]
fn a_resumed_handshake_is_counted_as_resumed() {
    let mut rig = Rig::new();
    let mut conn = tls_like(&mut rig, 0, true);
    let _ = rig.event(&mut conn, false, true);
    assert_eq!((rig.stats.counters.tls_full, rig.stats.counters.tls_resumed), (0, 1));
}

/// A connection whose socket connected and whose session (WebSocket) opens in
/// `steps` more steps, each answered by an event; the last one ends in `last`.
fn upgrading(rig: &mut Rig, steps: usize, last: io::Result<bool>) -> Conn<FakeSocket> {
    let mut conn = Conn::new(1, 0, 0, rig.now);
    let mut steps: VecDeque<io::Result<bool>> = (0..steps).map(|_| Ok(false)).collect();
    steps.push_back(last);
    conn.connecting(FakeSocket { connected: true, upgrades: Some(steps), ..Default::default() }, rig.now);
    conn
}

#[test]
fn an_upgrade_holds_requests_and_the_connect_slot_until_its_101_and_is_timed() {
    let mut rig = Rig::new();
    let mut conn = upgrading(&mut rig, 2, Ok(true));
    rig.advance(1);
    let after = rig.event_after(&mut conn, false, true);
    assert_eq!((name(&conn), after.connect_ended), ("Upgrading", false));
    assert!(socket(&mut conn).written.is_empty(), "no request before the upgrade");
    rig.advance(2);
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(name(&conn), "Upgrading");
    rig.advance(3);
    let after = rig.event_after(&mut conn, true, false);
    assert_eq!((name(&conn), after.connect_ended), ("Open", true));
    assert_eq!(socket(&mut conn).written, b"hello\n");
    assert_eq!(rig.stats.counters.conns_established, 1);
    // From the connect (no TLS) to the 101: 2 + 3 ms.
    assert_eq!(rig.stats.ws_upgrade.count(), 1);
    assert!((5000..5010).contains(&rig.stats.ws_upgrade.max()), "{}", rig.stats.ws_upgrade.max());
    assert_eq!(rig.stats.tls_handshake.count(), 0);
}

#[test]
fn a_plain_connection_records_no_upgrade() {
    let mut rig = Rig::new();
    let _conn = rig.established();
    assert_eq!(rig.stats.ws_upgrade.count(), 0);
}

#[test]
fn a_refused_upgrade_counts_protocol_and_a_failed_connect() {
    use crate::session::websocket::HandshakeError;
    let mut rig = Rig::new();
    let refused = io::Error::new(io::ErrorKind::InvalidData, HandshakeError::NotUpgraded { status: 404 });
    let mut conn = upgrading(&mut rig, 0, Err(refused));
    let after = rig.event_after(&mut conn, false, true);
    assert_eq!((name(&conn), after.connect_ended), ("Backoff", true));
    assert_eq!(rig.stats.counters.errors.get(ErrorKind::Protocol), 1);
    assert_eq!((rig.stats.counters.conns_failed, rig.stats.counters.conns_established), (1, 0));
    assert_eq!((rig.stats.open, rig.stats.ws_upgrade.count()), (0, 0));
}

#[test]
fn a_server_that_hangs_up_during_the_upgrade_counts_eof() {
    let mut rig = Rig::new();
    let mut conn = upgrading(&mut rig, 0, Err(io::ErrorKind::UnexpectedEof.into()));
    let _ = rig.event(&mut conn, true, true);
    assert_eq!(rig.stats.counters.errors.get(ErrorKind::Eof), 1);
    assert_eq!(rig.stats.counters.conns_failed, 1);
}

#[test]
fn a_stalled_upgrade_times_out_as_a_connect() {
    let mut rig = Rig::new();
    let mut conn = upgrading(&mut rig, 5, Ok(true));
    let _ = rig.event(&mut conn, false, true);
    assert_eq!(name(&conn), "Upgrading");
    assert_eq!(conn.deadline(&rig.plan), Some(rig.now + rig.plan.connect_timeout));
    rig.advance(3000);
    let after = rig.with_ctx(|ctx, _| conn.on_deadline(ctx));
    assert!(after.connect_ended);
    assert_eq!(rig.stats.counters.errors.get(ErrorKind::ConnectTimeout), 1);
    assert_eq!(name(&conn), "Backoff");
}

#[test]
fn a_session_close_is_tallied_by_code_and_counts_eof_when_a_response_was_due() {
    let mut rig = Rig::new();
    let mut conn = rig.established();
    // The session closed (a close frame, 1001): reads say end of stream.
    socket(&mut conn).close_code = Some(1001);
    socket(&mut conn).reads.push_back(Ok(Vec::new()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(rig.stats.counters.errors.get(ErrorKind::Eof), 1, "the request's response was due");
    let slot = crate::stats::WS_CLOSE_CODES.iter().position(|c| *c == 1001).unwrap();
    assert_eq!(rig.stats.counters.ws_closes[slot], 1);
    assert_eq!(rig.stats.counters.ws_closes.iter().sum::<u64>(), 1);
}

#[test]
fn held_transport_bytes_wait_for_writable_then_go_first() {
    let mut rig = Rig::new();
    let mut conn = rig.established();
    // The transport holds records the socket did not take (a full socket).
    socket(&mut conn).held = 100;
    socket(&mut conn).flushes.push_back(Ok(false));
    socket(&mut conn).reads.push_back(Ok(b"hello\n".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    // The response completed, but the next request waits behind the held bytes.
    assert_eq!(rig.stats.counters.requests_completed, 1);
    assert_eq!(socket(&mut conn).written, b"hello\n");
    let _ = rig.event(&mut conn, false, true);
    assert_eq!(socket(&mut conn).flushes.len(), 0);
    let _ = rig.event(&mut conn, false, true);
    assert_eq!(socket(&mut conn).held, 0);
    assert_eq!(socket(&mut conn).written, b"hello\nhello\n");
}

#[test]
fn the_greeting_has_its_own_framing() {
    // memcached: `version\r\n` is answered by one line; requests end with END.
    let mut rig = Rig::new();
    templated(&mut rig.plan, "get k\r\n", Some("version\r\n"));
    rig.plan.framing = Framing::Delim(b"END\r\n".to_vec());
    rig.plan.first_framing = Some(Framing::Line);
    let mut conn = rig.established();
    assert_eq!(name(&conn), "Greeting");
    socket(&mut conn).reads.push_back(Ok(b"VERSION 1.6.18\r\n".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(name(&conn), "Open");
    assert_eq!(socket(&mut conn).written, b"version\r\nget k\r\n");
    socket(&mut conn).reads.push_back(Ok(b"END\r\n".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(rig.stats.counters.requests_completed, 1);
    assert_eq!(rig.stats.counters.errors.total(), 0);
}

#[test]
fn a_greeting_that_fails_its_framing_counts_protocol_and_returns_no_budget() {
    let mut rig = Rig::new();
    rig.budget = Budget::new(Some(1));
    templated(&mut rig.plan, "hello\n", Some("AUTH secret\n"));
    let mut conn = rig.established();
    socket(&mut conn).reads.push_back(Ok(b"NOPE\n".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(rig.stats.counters.errors.get(ErrorKind::Protocol), 1);
    assert_eq!(name(&conn), "Backoff");
    assert!(rig.budget.take(), "the budget was never touched by the greeting");
    assert!(!rig.budget.take());
}

#[test]
fn connect_mode_without_an_exchange_churns_at_once() {
    let mut rig = Rig::new();
    rig.plan.mode = Mode::Connect { exchange: false };
    let mut conn = Conn::new(1, 0, 0, rig.now);
    conn.connecting(FakeSocket { connected: true, ..Default::default() }, rig.now);
    let after = rig.event_after(&mut conn, false, true);
    assert_eq!(after, After { next: Next::Queue, connect_ended: true });
    assert_eq!(name(&conn), "Queued");
    assert_eq!((rig.stats.counters.conns_established, rig.stats.open), (1, 0));
}

#[test]
fn a_paced_send_records_its_lag_and_a_send_held_by_a_full_pipeline_counts_as_dropped() {
    let mut rig = Rig::new();
    rig.plan.send_interval = Some(Duration::from_millis(10));
    let mut conn = rig.established();
    socket(&mut conn).reads.push_back(Ok(b"hello\n".to_vec()));
    rig.advance(2);
    let _ = rig.event(&mut conn, true, false);
    // The wake-up comes 300 µs after the second send's due time (a batched wake-up,
    // or a busy loop): the send leaves then, late, never early, and says how late.
    rig.advance(8);
    rig.now += Duration::from_micros(300);
    let _ = rig.deadline(&mut conn);
    assert_eq!(rig.stats.counters.requests_sent, 2);
    assert_eq!(rig.stats.send_lag.count(), 2, "one lag per paced send");
    assert!((300..=301).contains(&rig.stats.send_lag.max()), "lag {}", rig.stats.send_lag.max());
    assert_eq!(rig.stats.counters.sends_dropped, 0, "the pipeline had room");
    // The server stalls: the third send falls due while the only pipeline slot is
    // taken. It leaves when the response makes room, 15.3 ms late, and is counted.
    rig.advance(25);
    socket(&mut conn).reads.push_back(Ok(b"hello\n".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(rig.stats.counters.requests_sent, 3);
    assert_eq!(rig.stats.counters.sends_dropped, 1);
    assert!((15_290..=15_320).contains(&rig.stats.send_lag.max()), "lag {}", rig.stats.send_lag.max());
}

#[test]
fn a_retired_connection_finishes_its_request_then_closes_without_error() {
    let mut rig = Rig::new();
    let mut conn = rig.established();
    let after = rig.with_ctx(|ctx, _| conn.retire(ctx)).expect("nothing half written");
    assert_eq!((after.next, sender(&conn), in_flight(&conn)), (Next::Wait, Sender::Retiring, 1));
    // The answer comes back: no new request goes out, and the connection closes.
    socket(&mut conn).reads.push_back(Ok(b"hello\n".to_vec()));
    assert_eq!(rig.event(&mut conn, true, false), Next::Wait);
    assert_eq!(name(&conn), "Retired");
    assert_eq!(rig.stats.counters.requests_completed, 1);
    assert_eq!(rig.stats.counters.requests_sent, 1, "nothing new was sent");
    assert_eq!(rig.stats.counters.errors.total(), 0);
    assert_eq!(rig.stats.open, 0);
    // Growing again: it queues for a connect.
    assert_eq!(conn.revive(), Next::Queue);
    assert!(conn.is_queued());
}

#[test]
fn a_connection_not_yet_connected_retires_at_once() {
    let mut rig = Rig::new();
    let mut queued: Conn<FakeSocket> = Conn::new(1, 0, 0, rig.now);
    let after = rig.with_ctx(|ctx, _| queued.retire(ctx)).unwrap();
    assert_eq!((after.next, after.connect_ended, queued.is_retired()), (Next::Wait, false, true));
    let mut connecting = Conn::new(2, 1, 0, rig.now);
    connecting.connecting(FakeSocket::default(), rig.now);
    let after = rig.with_ctx(|ctx, _| connecting.retire(ctx)).unwrap();
    assert!(after.connect_ended && connecting.is_retired(), "its connect slot is given back");
    assert_eq!(rig.stats.counters.errors.total(), 0);
}

#[test]
fn a_retiring_connection_asked_to_stay_carries_on() {
    let mut rig = Rig::new();
    let mut conn = rig.established();
    let _ = rig.with_ctx(|ctx, _| conn.retire(ctx));
    assert_eq!(conn.revive(), Next::Wait);
    socket(&mut conn).reads.push_back(Ok(b"hello\n".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!((name(&conn), rig.stats.counters.requests_sent), ("Open", 2), "the next request went out");
}

/// Whether `at` is `expected`, give or take the microsecond that f64 seconds lose.
fn about(at: Sender, expected: Instant) -> bool {
    match at {
        Sender::Paced { at } => at.max(expected) - at.min(expected) < Duration::from_micros(1),
        _ => false,
    }
}

#[test]
fn a_rate_schedule_times_each_send_and_a_rate_change_moves_the_next_one() {
    let mut rig = Rig::new();
    rig.plan.send_interval = Some(Duration::from_millis(10));
    let origin = rig.now;
    // Connection 1 of 4 at 100/s in all: it makes sends 1, 5, 9... at 10, 50, 90 ms.
    rig.schedule = Some(SendSchedule { origin, rates: RateSchedule::constant(100.0), stride: 4 });
    let mut conn = Conn::new(1, 0, 0, origin + Duration::from_millis(10)).with_send_index(1);
    conn.connecting(FakeSocket { connected: true, ..Default::default() }, rig.now);
    rig.advance(1);
    let _ = rig.event(&mut conn, false, true);
    assert!(about(sender(&conn), origin + Duration::from_millis(10)), "{:?}", sender(&conn));
    assert_eq!(rig.stats.counters.requests_sent, 0, "not due yet");
    rig.advance(9);
    let _ = rig.deadline(&mut conn);
    assert_eq!(rig.stats.counters.requests_sent, 1);
    socket(&mut conn).reads.push_back(Ok(b"hello\n".to_vec()));
    rig.advance(2);
    let _ = rig.event(&mut conn, true, false);
    assert!(about(sender(&conn), origin + Duration::from_millis(50)), "{:?}", sender(&conn));
    // At 20 ms the rate goes to 1000/s: 2 sends were due by then, so send 5 is due
    // 3 ms later, and the waiting connection is woken then instead.
    rig.advance(8);
    let schedule = rig.schedule.as_mut().unwrap();
    schedule.rates.set_rate(0.020, 1000.0);
    conn.reschedule(schedule);
    assert!(about(sender(&conn), origin + Duration::from_millis(23)), "{:?}", sender(&conn));
    assert!(conn.deadline(&rig.plan).is_some_and(|at| at < origin + Duration::from_millis(24)));
    // Paused: the next send never comes within the run.
    let schedule = rig.schedule.as_mut().unwrap();
    schedule.rates.set_rate(0.021, 0.0);
    conn.reschedule(schedule);
    assert!(about(sender(&conn), origin + crate::units::MAX_DURATION), "{:?}", sender(&conn));
}

#[test]
fn fin_churn_waits_for_the_servers_close_before_connecting_again() {
    let mut rig = Rig::new();
    rig.plan.mode = Mode::Connect { exchange: false };
    let mut conn = Conn::new(1, 0, 0, rig.now);
    conn.connecting(FakeSocket { connected: true, shuts_down: true, ..Default::default() }, rig.now);
    // Connected: counted as opened and closed, our FIN out, the slot not yet queued.
    assert_eq!(rig.event(&mut conn, false, true), Next::Wait);
    assert_eq!(name(&conn), "Closing");
    assert!(socket(&mut conn).write_shut, "FIN sent with shutdown(Write)");
    assert_eq!((rig.stats.counters.conns_established, rig.stats.open), (1, 0));
    assert_eq!(conn.deadline(&rig.plan), Some(rig.now + rig.plan.response_timeout));
    // A greeting the server sent first is read and dropped; no close yet: wait.
    socket(&mut conn).reads.push_back(Ok(b"+OK hi\r\n".to_vec()));
    assert_eq!(rig.event(&mut conn, true, false), Next::Wait);
    assert_eq!(name(&conn), "Closing");
    assert_eq!(rig.stats.counters.bytes_received, 8);
    // The server's FIN (it accepted and closed): now the next connect.
    socket(&mut conn).reads.push_back(Ok(Vec::new()));
    assert_eq!(rig.event(&mut conn, true, false), Next::Queue);
    assert_eq!(name(&conn), "Queued");
    assert_eq!(rig.stats.counters.errors.total(), 0);
}

#[test]
fn fin_churn_gives_up_on_a_server_that_never_closes_without_an_error() {
    let mut rig = Rig::new();
    rig.plan.mode = Mode::Connect { exchange: false };
    let mut conn = Conn::new(1, 0, 0, rig.now);
    conn.connecting(FakeSocket { connected: true, shuts_down: true, ..Default::default() }, rig.now);
    assert_eq!(rig.event(&mut conn, false, true), Next::Wait);
    rig.advance(1);
    assert_eq!(rig.deadline(&mut conn), Next::Wait, "not yet due");
    rig.now += rig.plan.response_timeout;
    assert_eq!(rig.deadline(&mut conn), Next::Queue);
    assert_eq!(name(&conn), "Queued");
    assert_eq!(rig.stats.counters.errors.total(), 0);
}
