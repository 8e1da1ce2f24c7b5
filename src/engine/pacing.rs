//! Pacing: spreading events evenly over time.
//!
//! Two things are paced. Requests in open loop (`-r`) follow a per-connection schedule
//! kept by the connection itself (`Conn::next_send`); [`first_send`] staggers the
//! schedules so the connections don't all fire at once. New connections
//! (`--connect-rate`) go through a [`RateLimiter`] per worker.

use std::time::{Duration, Instant};

use crate::units::MAX_DURATION;

/// Lets through at most one event per `interval`, on a fixed grid: the n-th event is
/// allowed at `start + n * interval`. A worker that wakes late may catch up with the
/// grid, but never by more than `burst` events, so a stalled loop doesn't answer with
/// a flood.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Instant,
    burst: u32,
}

impl RateLimiter {
    /// `per_second` events a second, starting at `start`. A rate below one a year
    /// (possible once a valid rate is split over shards and threads) waits a year:
    /// no run lasts longer, and the gap must stay addable to an `Instant`.
    pub fn new(per_second: f64, start: Instant) -> Self {
        let secs = 1.0 / per_second;
        let interval = if secs.is_finite() && secs < MAX_DURATION.as_secs_f64() {
            Duration::from_secs_f64(secs)
        } else {
            MAX_DURATION
        };
        RateLimiter { interval, next: start, burst: 8 }
    }

    /// Takes one event if it is allowed at `now`.
    pub fn try_take(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        // Behind the grid by more than the burst: drop the missed slots, so at most
        // `burst` events (this one included) go through at once.
        let floor = now.checked_sub(self.interval * (self.burst - 1)).unwrap_or(now);
        self.next = self.next.max(floor) + self.interval;
        true
    }

    /// When the next event is allowed.
    pub fn next_allowed(&self) -> Instant {
        self.next
    }
}

/// The first intended send of connection `id` in open loop: the connections' first
/// sends are spread evenly over one send interval (`start + id * interval / connections`),
/// so the total rate is smooth from the first second.
pub fn first_send(start: Instant, id: u64, connections: usize, interval: Duration) -> Instant {
    let offset = interval.as_secs_f64() * (id as f64 / connections.max(1) as f64);
    start + Duration::from_secs_f64(offset)
}

/// Where a connection whose sends are `gap` apart, the next due at `at`, resumes
/// after a (re)connect at `now`: sends that fell due while it was down are skipped,
/// except the latest, which goes out at once and keeps its place in the schedule
/// (its latency counts from it, as a stalled send's does). Its later sends stay on
/// the connection's own slots, `at + k * gap`.
pub fn resume_slot(at: Instant, gap: Duration, now: Instant) -> Instant {
    if at >= now || gap.is_zero() {
        return at;
    }
    let slots = (now - at).as_nanos() / gap.as_nanos();
    let skipped = u64::try_from(slots * gap.as_nanos()).map(Duration::from_nanos);
    skipped.ok().and_then(|skipped| at.checked_add(skipped)).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_allows_one_event_per_interval() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(100.0, t0);
        assert!(limiter.try_take(t0));
        assert!(!limiter.try_take(t0 + Duration::from_millis(5)));
        assert!(limiter.try_take(t0 + Duration::from_millis(10)));
        assert_eq!(limiter.next_allowed(), t0 + Duration::from_millis(20));
    }

    #[test]
    fn a_rate_below_one_a_year_waits_a_year_instead_of_overflowing() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(1e-300, t0);
        assert!(limiter.try_take(t0));
        assert_eq!(limiter.next_allowed(), t0 + MAX_DURATION);
        assert!(!limiter.try_take(t0 + Duration::from_secs(3600)));
    }

    #[test]
    fn a_late_caller_catches_up_by_at_most_the_burst() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(1000.0, t0);
        let late = t0 + Duration::from_secs(1);
        let mut taken = 0;
        while limiter.try_take(late) {
            taken += 1;
        }
        assert_eq!(taken, 8);
    }

    #[test]
    fn over_a_second_the_limiter_lets_through_the_rate() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(500.0, t0);
        let mut taken = 0;
        for ms in 0..1000 {
            while limiter.try_take(t0 + Duration::from_millis(ms)) {
                taken += 1;
            }
        }
        assert_eq!(taken, 500);
    }

    #[test]
    fn a_connection_resumes_at_its_latest_due_slot() {
        let t0 = Instant::now();
        let gap = Duration::from_millis(10);
        let ms = |n: u64| t0 + Duration::from_millis(n);
        assert_eq!(resume_slot(ms(3), gap, ms(0)), ms(3), "not due yet: unchanged");
        assert_eq!(resume_slot(ms(3), gap, ms(3)), ms(3), "due now");
        assert_eq!(resume_slot(ms(3), gap, ms(12)), ms(3), "overdue by less than a gap: that send");
        assert_eq!(resume_slot(ms(3), gap, ms(27)), ms(23), "several overdue: only the latest is kept");
        assert_eq!(resume_slot(ms(3), gap, ms(33)), ms(33), "on a slot: that slot");
        assert_eq!(resume_slot(ms(3), Duration::ZERO, ms(27)), ms(3), "no gap: no slots to skip");
    }

    #[test]
    fn first_sends_are_spread_over_one_interval() {
        let t0 = Instant::now();
        let gap = Duration::from_millis(100);
        assert_eq!(first_send(t0, 0, 4, gap), t0);
        assert_eq!(first_send(t0, 2, 4, gap), t0 + Duration::from_millis(50));
        assert_eq!(first_send(t0, 3, 4, gap), t0 + Duration::from_millis(75));
    }
}
