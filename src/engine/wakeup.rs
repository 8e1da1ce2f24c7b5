//! A precise wake-up for open loop, and the batching of paced sends at moderate rates.
//!
//! On Linux, mio's poll timeout (epoll's) has millisecond granularity, rounded up,
//! so a paced send could leave up to 1 ms late, and in open loop that lateness
//! counts as latency. Spinning with a zero timeout until the deadline fixes the
//! precision but burns a core, which on a shared machine starves the server under
//! test (observed: p90 3 ms at `-r 2000` on loopback). A `timerfd` registered with
//! the worker's poll wakes the thread at the deadline to the nanosecond for one
//! cheap syscall (arm), and the thread sleeps meanwhile.
//!
//! At moderate rates that precision costs: at `-r 50000` on one thread, every send
//! was its own wake-up (arm, sleep, wake, read the timer, send one request), and a
//! request cost 2.25x the CPU of closed loop (issue 14). So when a worker's sends
//! come less than [`SEND_BATCH`] apart on average, wake-ups fall on a grid of that
//! step: the timer is armed for the first grid point at or after the deadline, never
//! before it, and every send due by then leaves in that one wake-up. Deadlines that
//! round to the same grid point cost no syscall. A send never leaves early; it
//! leaves at most one step late, and the lateness is measured (the send-lag
//! histogram). Below that rate each send keeps its own precise wake-up, since
//! batching would buy nothing.
//!
//! Elsewhere (macOS, the BSDs) mio polls with kqueue, whose timeout is already a
//! `timespec` precise to the nanosecond, so the poll timeout alone wakes the thread
//! on time: [`Wakeup`] there registers nothing, arming it does nothing, and sends are
//! not batched. The worker uses the same calls on every platform.

use std::time::{Duration, Instant};

pub use platform::Wakeup;

/// The wake-up grid's step when sends are batched: sends leave at most this late
/// (plus the wake-up's own lateness). 100 µs keeps the p99 send lag under the 250 µs
/// a paced benchmark can tolerate, and caps wake-ups for sends at 10 000 a second
/// per worker.
pub const SEND_BATCH: Duration = Duration::from_micros(100);

/// The batching step for a worker whose `connections` each send every `interval`:
/// [`SEND_BATCH`] when its sends come closer together than that on average, else
/// zero (every send has its own wake-up).
pub fn batch_step(interval: Duration, connections: usize) -> Duration {
    let mean_gap = interval / u32::try_from(connections.max(1)).unwrap_or(u32::MAX);
    if mean_gap < SEND_BATCH {
        SEND_BATCH
    } else {
        Duration::ZERO
    }
}

/// The first point of the grid `origin + k * step` at or after `at` (`at` itself when
/// `step` is zero or `at` precedes the grid). Only the Linux timer batches (kqueue
/// wakes precisely and is not batched), so elsewhere only the tests use it.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn round_up(at: Instant, origin: Instant, step: Duration) -> Instant {
    if step.is_zero() || at <= origin {
        return at;
    }
    let since = (at - origin).as_nanos();
    let step_ns = step.as_nanos();
    let steps = since.div_ceil(step_ns);
    origin + Duration::from_nanos(u64::try_from(steps * step_ns).unwrap_or(u64::MAX))
}

#[cfg(target_os = "linux")]
mod platform {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::{Duration, Instant};

    use mio::unix::SourceFd;
    use mio::{Interest, Registry, Token};

    /// A one-shot monotonic timer whose expiry is a readable event on the poll.
    pub struct Wakeup {
        fd: OwnedFd,
        /// The instant the timer is armed for, to skip re-arming it unchanged.
        armed: Option<Instant>,
        /// Wake-ups fall on the grid `origin + k * step` (no grid when `step` is zero).
        origin: Instant,
        step: Duration,
    }

    impl Wakeup {
        /// Creates the timer and registers it under `token`. With a nonzero `step`
        /// (see [`super::batch_step`]), wake-ups are rounded up to a grid of that step.
        pub fn new(registry: &Registry, token: Token, step: Duration) -> io::Result<Wakeup> {
            // SAFETY: timerfd_create has no memory-safety preconditions; the result is
            // checked before it is wrapped.
            let raw = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `raw` is a fresh descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            registry.register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)?;
            Ok(Wakeup { fd, armed: None, origin: Instant::now(), step })
        }

        /// Makes the poll wake at `at`, or at the first grid point after it when
        /// batching (at once if that has passed).
        pub fn arm(&mut self, at: Instant, now: Instant) -> io::Result<()> {
            let at = super::round_up(at, self.origin, self.step);
            // Deadlines that round to the same grid point cost no syscall.
            if self.armed == Some(at) {
                return Ok(());
            }
            // A zero it_value would disarm the timer: fire in 1 ns instead.
            let after = at.saturating_duration_since(now).max(Duration::from_nanos(1));
            let spec = libc::itimerspec {
                it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
                it_value: libc::timespec {
                    tv_sec: after.as_secs() as libc::time_t,
                    tv_nsec: after.subsec_nanos() as libc::c_long,
                },
            };
            // SAFETY: a valid timerfd and a pointer to a live itimerspec; no old value wanted.
            let rc = unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            self.armed = Some(at);
            Ok(())
        }

        /// The timer fired. Its expiry count is not read: the worker re-arms the
        /// timer on every loop turn, and `timerfd_settime` resets the count; and with
        /// mio's edge-triggered registration each expiry is a new event anyway. That
        /// saves a `read` per wake-up.
        pub fn fired(&mut self) {
            self.armed = None;
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    use std::io;
    use std::time::{Duration, Instant};

    use mio::{Registry, Token};

    /// No timer: kqueue's poll timeout is precise enough (see the module docs).
    pub struct Wakeup;

    impl Wakeup {
        /// Nothing to create or register; no batching.
        pub fn new(_registry: &Registry, _token: Token, _step: Duration) -> io::Result<Wakeup> {
            Ok(Wakeup)
        }

        /// Nothing to arm: the poll timeout, computed from the same deadline, wakes
        /// the thread on time.
        pub fn arm(&mut self, _at: Instant, _now: Instant) -> io::Result<()> {
            Ok(())
        }

        /// Never called here, as nothing is registered.
        pub fn fired(&mut self) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_up_is_rounded_up_to_the_grid_never_down() {
        let origin = Instant::now();
        let step = Duration::from_micros(100);
        let us = |n: u64| origin + Duration::from_micros(n);
        assert_eq!(round_up(us(1), origin, step), us(100));
        assert_eq!(round_up(us(100), origin, step), us(100), "on the grid: unchanged");
        assert_eq!(round_up(us(101), origin, step), us(200));
        assert_eq!(round_up(us(150), origin, Duration::ZERO), us(150), "no grid: precise");
    }

    #[test]
    fn sends_are_batched_only_when_they_come_closer_than_the_step() {
        // -r 50000 -c 50 on one thread: each connection every 1 ms, the worker every 20 µs.
        assert_eq!(batch_step(Duration::from_millis(1), 50), SEND_BATCH);
        // -r 2000 -c 50: the worker sends every 500 µs; batching would only add lag.
        assert_eq!(batch_step(Duration::from_millis(25), 50), Duration::ZERO);
    }
}
