//! State-machine tests: each builds a state, feeds it a scripted socket and synthetic
//! instants, and checks the transition and what was counted. No sockets, no sleeps.

use super::*;
use crate::payload::{Payload, Template};
use crate::plan::Backoff;
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
}

impl Read for FakeSocket {
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
}

impl Write for FakeSocket {
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
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for FakeSocket {
    fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(self.so_error.map(io::Error::from_raw_os_error))
    }
    fn reset_on_close(&self) -> io::Result<()> {
        Ok(())
    }
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        if self.connected {
            Ok("127.0.0.1:7001".parse().unwrap())
        } else {
            Err(io::ErrorKind::NotConnected.into())
        }
    }
}

fn plan() -> Plan {
    let mut plan = Plan::new(vec!["127.0.0.1:7001".parse().unwrap()]);
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
    stats: WorkerStats,
    budget: Budget,
    now: Instant,
    scratch: Vec<u8>,
    render: Vec<u8>,
    expect: Vec<u8>,
}

impl Rig {
    fn new() -> Self {
        Rig {
            plan: plan(),
            stats: WorkerStats::default(),
            budget: Budget::new(None),
            now: Instant::now(),
            scratch: vec![0; 64],
            render: Vec::new(),
            expect: Vec::new(),
        }
    }

    /// Runs `f` with a handler context over the rig's state and its scratch buffer.
    fn with_ctx<R>(&mut self, f: impl FnOnce(&mut Ctx, &mut [u8]) -> R) -> R {
        let mut ctx = Ctx {
            now: self.now,
            live_clock: false,
            plan: &self.plan,
            stats: &mut self.stats,
            budget: &mut self.budget,
            worker: 0,
            render: &mut self.render,
            expect: &mut self.expect,
        };
        f(&mut ctx, &mut self.scratch)
    }

    fn event(&mut self, conn: &mut Conn<FakeSocket>, readable: bool, writable: bool) -> After {
        self.with_ctx(|ctx, scratch| conn.on_event(Readiness { readable, writable, closed: false }, scratch, ctx))
    }

    fn deadline(&mut self, conn: &mut Conn<FakeSocket>) -> After {
        self.with_ctx(|ctx, _| conn.on_deadline(ctx))
    }

    fn advance(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
    }

    /// A connection that has just completed its handshake and written its first request.
    fn established(&mut self) -> Conn<FakeSocket> {
        let mut conn = Conn::new(1, 0, "127.0.0.1:7001".parse().unwrap(), self.now);
        conn.connecting(FakeSocket { connected: true, ..Default::default() }, self.now);
        self.advance(1);
        assert_eq!(self.event(&mut conn, false, true), After::Nothing);
        conn
    }
}

fn socket(conn: &mut Conn<FakeSocket>) -> &mut FakeSocket {
    conn.socket_mut().expect("socket")
}

#[test]
fn connect_completes_on_writable_and_sends_the_first_request() {
    let mut rig = Rig::new();
    let mut conn = rig.established();
    assert_eq!((conn.state(), conn.sender(), conn.in_flight()), (State::Open, Sender::Ready, 1));
    assert_eq!(socket(&mut conn).written, b"hello\n");
    assert_eq!(rig.stats.counters.conns_established, 1);
    assert_eq!(rig.stats.counters.requests_sent, 1);
    assert_eq!(rig.stats.connect_latency.count(), 1);
    assert!(rig.stats.connect_latency.max() >= 1000, "connect latency is ~1 ms");
}

#[test]
fn refused_connect_counts_connect_refused_and_backs_off() {
    let mut rig = Rig::new();
    let mut conn = Conn::new(1, 0, "127.0.0.1:7001".parse().unwrap(), rig.now);
    conn.connecting(FakeSocket { so_error: Some(libc::ECONNREFUSED), ..Default::default() }, rig.now);
    assert_eq!(rig.event(&mut conn, true, true), After::Nothing);
    assert_eq!(rig.stats.counters.errors.get(ErrorKind::ConnectRefused), 1);
    assert_eq!(rig.stats.counters.conns_failed, 1);
    assert_eq!(rig.stats.open, 0);
    assert_eq!(conn.state(), State::Backoff { until: rig.now + Duration::from_millis(10) });
    // The backoff ends in the connect queue.
    rig.advance(10);
    assert_eq!(rig.deadline(&mut conn), After::Queue);
    assert_eq!(conn.state(), State::Queued);
}

#[test]
fn backoff_doubles_with_each_failure_in_a_row() {
    let mut rig = Rig::new();
    let mut conn = Conn::new(1, 0, "127.0.0.1:7001".parse().unwrap(), rig.now);
    for expected_ms in [10, 20, 40] {
        conn.connecting(FakeSocket { so_error: Some(libc::ECONNREFUSED), ..Default::default() }, rig.now);
        let _ = rig.event(&mut conn, false, true);
        assert_eq!(conn.state(), State::Backoff { until: rig.now + Duration::from_millis(expected_ms) });
    }
}

#[test]
fn spurious_event_while_connecting_is_ignored() {
    let mut rig = Rig::new();
    let mut conn = Conn::new(1, 0, "127.0.0.1:7001".parse().unwrap(), rig.now);
    conn.connecting(FakeSocket::default(), rig.now);
    assert_eq!(rig.event(&mut conn, false, true), After::Nothing);
    assert!(matches!(conn.state(), State::Connecting { .. }));
    assert_eq!(rig.stats.counters.errors.total(), 0);
}

#[test]
fn connect_timeout_fires_only_after_the_deadline() {
    let mut rig = Rig::new();
    let mut conn = Conn::new(1, 0, "127.0.0.1:7001".parse().unwrap(), rig.now);
    conn.connecting(FakeSocket::default(), rig.now);
    rig.advance(2999);
    assert_eq!(rig.deadline(&mut conn), After::Nothing);
    assert!(matches!(conn.state(), State::Connecting { .. }));
    rig.advance(1);
    let _ = rig.deadline(&mut conn);
    assert_eq!(rig.stats.counters.errors.get(ErrorKind::ConnectTimeout), 1);
    assert!(matches!(conn.state(), State::Backoff { .. }));
}

#[test]
fn echo_response_completes_the_request_and_sends_the_next() {
    let mut rig = Rig::new();
    let mut conn = rig.established();
    rig.advance(2);
    socket(&mut conn).reads.push_back(Ok(b"hello\n".to_vec()));
    assert_eq!(rig.event(&mut conn, true, false), After::Nothing);
    assert_eq!(rig.stats.counters.requests_completed, 1);
    assert_eq!(rig.stats.counters.requests_sent, 2);
    assert_eq!(rig.stats.latency.count(), 1);
    assert!((2000..2010).contains(&rig.stats.latency.max()), "latency is 2 ms");
    assert_eq!(socket(&mut conn).written, b"hello\nhello\n");
    assert_eq!(conn.in_flight(), 1);
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
    let mut conn = Conn::new(1, 0, "127.0.0.1:7001".parse().unwrap(), rig.now);
    let mut fake = FakeSocket { connected: true, ..Default::default() };
    fake.writes.push_back(Ok(2));
    fake.writes.push_back(Err(io::ErrorKind::WouldBlock.into()));
    conn.connecting(fake, rig.now);
    let _ = rig.event(&mut conn, false, true);
    assert_eq!(conn.sender(), Sender::Writing { done: 2, len: 6 });
    // A readable event with nothing to read leaves the write pending.
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(conn.sender(), Sender::Writing { done: 2, len: 6 });
    // Writable resumes where it stopped. The WouldBlock is scripted next.
    let _ = rig.event(&mut conn, false, true);
    assert_eq!(conn.sender(), Sender::Writing { done: 2, len: 6 });
    let _ = rig.event(&mut conn, false, true);
    assert_eq!(conn.sender(), Sender::Ready);
    assert_eq!(socket(&mut conn).written, b"hello\n");
    assert_eq!(rig.stats.counters.bytes_sent, 6);
}

#[test]
fn interrupted_calls_are_retried() {
    let mut rig = Rig::new();
    let mut conn = Conn::new(1, 0, "127.0.0.1:7001".parse().unwrap(), rig.now);
    let mut fake = FakeSocket { connected: true, ..Default::default() };
    fake.writes.push_back(Err(io::ErrorKind::Interrupted.into()));
    conn.connecting(fake, rig.now);
    let _ = rig.event(&mut conn, false, true);
    assert_eq!((conn.sender(), conn.in_flight()), (Sender::Ready, 1));
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
    assert!(matches!(conn.state(), State::Backoff { .. }));
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
    assert_eq!((conn.state(), conn.in_flight()), (State::Open, 1));
    rig.advance(1);
    let _ = rig.deadline(&mut conn);
    assert_eq!(rig.stats.counters.errors.get(ErrorKind::ResponseTimeout), 1);
    assert!(matches!(conn.state(), State::Backoff { .. }));
}

#[test]
fn a_spent_budget_stops_the_send_side() {
    let mut rig = Rig::new();
    rig.budget = Budget::new(Some(1));
    let mut conn = rig.established();
    socket(&mut conn).reads.push_back(Ok(b"hello\n".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!((conn.state(), conn.sender()), (State::Open, Sender::Spent));
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
    assert_eq!(conn.state(), State::Closed);
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
    assert_eq!(conn.sender(), Sender::Spent);
    assert_eq!(rig.event(&mut conn, true, false), After::Queue);
    assert_eq!(rig.stats.counters.errors.total(), 0);
    assert_eq!(rig.stats.open, 0);
}

#[test]
fn events_for_a_dropped_socket_are_ignored() {
    let mut rig = Rig::new();
    let mut conn: Conn<FakeSocket> = Conn::new(1, 0, "127.0.0.1:7001".parse().unwrap(), rig.now);
    assert_eq!(rig.event(&mut conn, true, true), After::Nothing);
    assert_eq!(conn.state(), State::Queued);
}

#[test]
fn a_pipeline_sends_its_requests_in_one_write_and_refills_in_one_write() {
    let mut rig = Rig::new();
    pipelined(&mut rig.plan, 3);
    let mut conn = rig.established();
    assert_eq!(conn.in_flight(), 3);
    assert_eq!(socket(&mut conn).written, b"hello\nhello\nhello\n");
    assert_eq!(rig.stats.counters.requests_sent, 3);
    // Two responses in one read: two requests complete, two new ones go out together.
    socket(&mut conn).writes.push_back(Ok(usize::MAX));
    socket(&mut conn).reads.push_back(Ok(b"hello\nhello\nhel".to_vec()));
    let _ = rig.event(&mut conn, true, false);
    assert_eq!(rig.stats.counters.requests_completed, 2);
    assert_eq!(rig.stats.counters.requests_sent, 5);
    assert_eq!(conn.in_flight(), 3);
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
    assert_eq!(conn.sender(), Sender::Paced { at: first_due });
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
    let mut conn = Conn::new(1, 0, "127.0.0.1:7001".parse().unwrap(), rig.now);
    let mut fake = FakeSocket { connected: true, ..Default::default() };
    fake.writes.push_back(Ok(3));
    fake.writes.push_back(Err(io::ErrorKind::WouldBlock.into()));
    conn.connecting(fake, rig.now);
    let _ = rig.event(&mut conn, false, true);
    assert_eq!(conn.sender(), Sender::Writing { done: 0, len: 3 });
    let _ = rig.event(&mut conn, false, true);
    assert_eq!(socket(&mut conn).written, b"req 0\n");
    assert_eq!(conn.sender(), Sender::Ready);
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
    assert!(matches!(conn.state(), State::Backoff { .. }));
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
