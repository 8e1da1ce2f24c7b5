//! A precise wake-up for open loop.
//!
//! On Linux, mio's poll timeout (epoll's) has millisecond granularity, rounded up,
//! so a paced send could leave up to 1 ms late, and in open loop that lateness
//! counts as latency. Spinning with a zero timeout until the deadline fixes the
//! precision but burns a core, which on a shared machine starves the server under
//! test (observed: p90 3 ms at `-r 2000` on loopback). A `timerfd` registered with
//! the worker's poll wakes the thread at the deadline to the nanosecond for two
//! cheap syscalls (arm, and read to clear it), and the thread sleeps meanwhile.
//!
//! Elsewhere (macOS, the BSDs) mio polls with kqueue, whose timeout is already a
//! `timespec` precise to the nanosecond, so the poll timeout alone wakes the thread
//! on time: [`Wakeup`] there registers nothing and arming it does nothing. The
//! worker uses the same calls on every platform.

pub use platform::Wakeup;

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
    }

    impl Wakeup {
        /// Creates the timer and registers it under `token`.
        pub fn new(registry: &Registry, token: Token) -> io::Result<Wakeup> {
            // SAFETY: timerfd_create has no memory-safety preconditions; the result is
            // checked before it is wrapped.
            let raw = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `raw` is a fresh descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            registry.register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)?;
            Ok(Wakeup { fd, armed: None })
        }

        /// Makes the poll wake at `at` (at once if it has passed).
        pub fn arm(&mut self, at: Instant, now: Instant) -> io::Result<()> {
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

        /// The timer fired: read its count so the next expiry is a new edge.
        pub fn fired(&mut self) {
            let mut count = 0u64;
            // SAFETY: reads 8 bytes into a live u64 from our own descriptor.
            let _ = unsafe { libc::read(self.fd.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
            self.armed = None;
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    use std::io;
    use std::time::Instant;

    use mio::{Registry, Token};

    /// No timer: kqueue's poll timeout is precise enough (see the module docs).
    pub struct Wakeup;

    impl Wakeup {
        /// Nothing to create or register.
        pub fn new(_registry: &Registry, _token: Token) -> io::Result<Wakeup> {
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
