//! Micro-benchmarks of the engine's hot pieces: timers, the histogram record path,
//! and one state-machine step (a response completing and the next request going out).
//!
//! `cargo bench --bench engine`; figures are recorded in docs/performance.md.

use std::collections::VecDeque;
use std::hint::black_box;
use std::io;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use loadmux::engine::clock::Clock;
use loadmux::engine::conn::{Budget, Conn, Ctx, Readiness};
use loadmux::engine::timer::Timers;
use loadmux::plan::Plan;
use loadmux::stats::{LatencyHistogram, WorkerStats};
use loadmux::transport::{Target, Transport};

fn timers(c: &mut Criterion) {
    let t0 = Instant::now();
    c.bench_function("timer/arm_later_19000", |b| {
        // The common case: every request pushes its connection's deadline later.
        let mut timers = Timers::new();
        for key in 0..19_000 {
            timers.arm(key, Some(t0 + Duration::from_millis(key as u64)));
        }
        let mut n = 0u64;
        b.iter(|| {
            n += 1;
            timers.arm((n % 19_000) as usize, Some(t0 + Duration::from_secs(10) + Duration::from_nanos(n)));
        })
    });
    c.bench_function("timer/arm_and_expire", |b| {
        let mut timers = Timers::new();
        let mut n = 0u64;
        b.iter(|| {
            n += 1;
            let at = t0 + Duration::from_nanos(n);
            timers.arm((n % 1024) as usize, Some(at));
            black_box(timers.pop_due(at))
        })
    });
}

fn histogram(c: &mut Criterion) {
    c.bench_function("histogram/record", |b| {
        let mut h = LatencyHistogram::new();
        let mut v = 17u64;
        b.iter(|| {
            v = v.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            h.record(black_box(v >> 44));
        })
    });
}

/// A socket that always has one echoed response to read and accepts every write.
struct Loopback {
    pending: VecDeque<u8>,
}

impl Transport for Loopback {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.pending.len());
        for (slot, byte) in buf.iter_mut().zip(self.pending.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<bool> {
        Ok(true)
    }
    fn wants_write(&self) -> bool {
        false
    }
    fn handshake(&mut self) -> io::Result<bool> {
        Ok(true)
    }
    fn drained(&self) -> bool {
        true
    }
    fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(None)
    }
    fn is_connected(&self) -> io::Result<bool> {
        Ok(true)
    }
    fn reset_on_close(&self) -> io::Result<()> {
        Ok(())
    }
}

/// A clock that stands still, so the step measures the state machine alone (the
/// real worker re-reads the monotonic clock after each read, ~20 ns more).
struct Frozen(Instant);

impl Clock for Frozen {
    fn now(&self) -> Instant {
        self.0
    }
}

fn state_machine(c: &mut Criterion) {
    // One readable event: read the echoed request, complete it, record its latency,
    // write the next request. The socket is an in-memory echo, so this is the
    // engine's own cost per request, without syscalls.
    let plan = Plan::new(vec![Target::Tcp("127.0.0.1:1".parse().unwrap())]);
    let mut stats = WorkerStats::default();
    let mut budget = Budget::new(None);
    let mut scratch = vec![0u8; 64 * 1024];
    let (mut render, mut expect) = (Vec::new(), Vec::new());
    let now = Instant::now();
    let frozen = Frozen(now);
    let mut conn = Conn::new(0, 0, 0, now);
    conn.connecting(Loopback { pending: VecDeque::with_capacity(64) }, now);
    let mut ctx = Ctx {
        now,
        clock: &frozen,
        plan: &plan,
        stats: &mut stats,
        budget: &mut budget,
        worker: 0,
        render: &mut render,
        expect: &mut expect,
        schedule: None,
    };
    let _ = conn.on_event(Readiness { readable: false, writable: true, closed: false }, &mut scratch, &mut ctx);
    // One context serves the connect above and every iteration below.
    let readable = Readiness { readable: true, writable: false, closed: false };
    c.bench_function("conn/echo_request_step", |b| {
        b.iter(|| black_box(conn.on_event(readable, &mut scratch, &mut ctx)))
    });
    assert!(stats.counters.requests_completed > 0, "the step completed requests");
}

criterion_group!(benches, timers, histogram, state_machine);
criterion_main!(benches);
