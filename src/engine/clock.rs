//! The clock, passed in.
//!
//! The connection state machine never reads the time itself: the worker hands it
//! `now` with every event, and a [`Clock`] for the one re-reading it needs (after a
//! read that returned data, see `Ctx::clock_after_read`). Tests pass a clock they
//! move by hand, so every transition is checked with synthetic instants.

use std::time::Instant;

/// Where the time comes from.
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Instant {
        Instant::now()
    }
}
