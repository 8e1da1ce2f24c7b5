//! Deadlines, ordered without ever scanning the connection table.
//!
//! Each connection knows its own next deadline (`Conn::deadline`, smoltcp's
//! `poll_at`); this queue only orders them. It is a min-heap with *lazy* validation:
//!
//! - [`Timers::arm`] pushes an entry only when the new deadline is *earlier* than the
//!   entry already armed for that connection. A later deadline (the common case: every
//!   request pushes its response deadline further out) costs nothing now.
//! - When an entry comes due, [`Timers::pop_due`] hands the key back; the worker asks
//!   the connection whether its *current* deadline has passed, and re-arms it with
//!   whatever deadline the connection has now.
//!
//! An entry that no longer matches what was armed (a deadline moved earlier, a slot
//! reused) is recognised on pop and dropped. In closed loop deadlines only move
//! later, so the heap holds about one entry per connection. In open loop they move
//! earlier twice a request (a send arms the response's timeout, its response arms
//! the next, earlier, paced send), and each move leaves a stale entry that would
//! surface only when its far-off time came: at 50 000 requests a second with a 5 s
//! `--timeout`, a quarter of a million of them. So when stale entries outnumber the
//! connections, the heap is rebuilt from the armed deadlines ([`Timers::arm`]), which
//! keeps it within twice the connections at an amortised O(1) a push.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Stale entries allowed beyond one per connection before the heap is rebuilt, so a
/// worker with few connections does not rebuild at every other push.
const COMPACT_SLACK: usize = 1024;

/// A min-heap of `(deadline, key)` with one armed deadline per key.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    /// The deadline each key's valid heap entry carries, indexed by slab key.
    armed: Vec<Option<Instant>>,
}

impl Timers {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes sure `key` is woken no later than `at`. `None` asks for nothing (an
    /// entry already armed will still come due, and is then simply re-armed).
    pub fn arm(&mut self, key: usize, at: Option<Instant>) {
        let Some(at) = at else { return };
        if key >= self.armed.len() {
            self.armed.resize(key + 1, None);
        }
        match self.armed[key] {
            // An entry at or before `at` is already queued: it will wake the
            // connection, which then re-arms for `at`. Nothing to do now.
            Some(existing) if existing <= at => {}
            // Earlier than anything armed (or nothing armed): queue it. The older,
            // later entry becomes stale and is skipped when it surfaces.
            _ => {
                self.armed[key] = Some(at);
                self.heap.push(Reverse((at, key)));
                if self.heap.len() > 2 * self.armed.len() + COMPACT_SLACK {
                    self.compact();
                }
            }
        }
    }

    /// Rebuilds the heap from the armed deadlines alone, dropping every stale entry:
    /// O(connections), run once per at least that many pushes.
    fn compact(&mut self) {
        let mut entries = std::mem::take(&mut self.heap).into_vec();
        entries.clear();
        entries.extend(self.armed.iter().enumerate().filter_map(|(key, at)| at.map(|at| Reverse((at, key)))));
        self.heap = BinaryHeap::from(entries);
    }

    /// The earliest queued deadline; the poll timeout is derived from it. It may be
    /// stale, which only costs one early wake-up.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Pops the next entry due at or before `now` that is still valid, and returns
    /// its key. The caller checks the connection's real deadline and re-arms it.
    pub fn pop_due(&mut self, now: Instant) -> Option<usize> {
        while let Some(&Reverse((at, key))) = self.heap.peek() {
            if at > now {
                return None;
            }
            self.heap.pop();
            if self.armed.get(key).copied().flatten() == Some(at) {
                self.armed[key] = None;
                return Some(key);
            }
            // Stale: superseded by an earlier arm. Skip it.
        }
        None
    }

    /// Entries in the heap, stale ones included (for tests and benchmarks).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(base: Instant, n: u64) -> Instant {
        base + Duration::from_millis(n)
    }

    #[test]
    fn due_keys_come_out_in_deadline_order() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        timers.arm(3, Some(ms(t0, 30)));
        timers.arm(1, Some(ms(t0, 10)));
        timers.arm(2, Some(ms(t0, 20)));
        assert_eq!(timers.next_deadline(), Some(ms(t0, 10)));
        assert_eq!(timers.pop_due(ms(t0, 5)), None);
        assert_eq!(timers.pop_due(ms(t0, 25)), Some(1));
        assert_eq!(timers.pop_due(ms(t0, 25)), Some(2));
        assert_eq!(timers.pop_due(ms(t0, 25)), None);
        assert_eq!(timers.pop_due(ms(t0, 30)), Some(3));
    }

    #[test]
    fn pushing_a_deadline_later_adds_no_heap_entry() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        timers.arm(0, Some(ms(t0, 10)));
        for n in 11..1000 {
            timers.arm(0, Some(ms(t0, n)));
        }
        assert_eq!(timers.len(), 1, "later deadlines must be lazy");
    }

    #[test]
    fn len_counts_queued_entries_stale_ones_included() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        assert_eq!((timers.len(), timers.is_empty()), (0, true));
        timers.arm(1, Some(ms(t0, 10)));
        timers.arm(2, Some(ms(t0, 20)));
        assert_eq!((timers.len(), timers.is_empty()), (2, false));
        // An earlier deadline for key 1 queues a second entry; the first goes stale
        // but stays in the heap until it surfaces.
        timers.arm(1, Some(ms(t0, 5)));
        assert_eq!(timers.len(), 3);
        assert_eq!(timers.pop_due(ms(t0, 30)), Some(1));
        assert_eq!(timers.pop_due(ms(t0, 30)), Some(2), "the stale entry for key 1 is skipped");
        assert_eq!((timers.len(), timers.is_empty()), (0, true));
    }

    #[test]
    fn an_earlier_deadline_supersedes_the_armed_one() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        timers.arm(7, Some(ms(t0, 50)));
        timers.arm(7, Some(ms(t0, 5)));
        assert_eq!(timers.pop_due(ms(t0, 5)), Some(7));
        // The 50 ms entry is stale now: it must not fire again.
        assert_eq!(timers.pop_due(ms(t0, 100)), None);
        assert!(timers.is_empty());
    }

    #[test]
    fn open_loop_stale_entries_are_dropped_and_the_heap_stays_bounded() {
        // Open loop's pattern: key k sends at k, k + 50, k + 100 ms... Each send arms
        // the response's far timeout, and its response arms the next, earlier, send,
        // leaving the timeout stale.
        let t0 = Instant::now();
        let mut timers = Timers::new();
        let keys: usize = 50;
        for key in 0..keys {
            timers.arm(key, Some(ms(t0, key as u64)));
        }
        for now in 0..100_000 {
            while let Some(key) = timers.pop_due(ms(t0, now)) {
                timers.arm(key, Some(ms(t0, now + 5_000)));
                timers.arm(key, Some(ms(t0, now + keys as u64)));
            }
            assert!(timers.len() <= 2 * keys + COMPACT_SLACK, "{} entries for {keys} keys", timers.len());
        }
        // What is armed still comes out, in order, and nothing stale does.
        let mut due = Vec::new();
        while let Some(key) = timers.pop_due(ms(t0, 100_000 + keys as u64)) {
            due.push(key);
        }
        assert_eq!(due, (0..keys).collect::<Vec<_>>());
        assert_eq!(timers.pop_due(ms(t0, 200_000)), None, "the far timeouts were superseded");
    }

    #[test]
    fn the_heap_is_rebuilt_only_once_it_holds_more_than_twice_the_keys_plus_the_slack() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        let keys = 10;
        for key in 0..keys {
            timers.arm(key, Some(ms(t0, 1_000_000)));
        }
        // Each earlier deadline for key 0 queues an entry and leaves the last stale.
        let mut at = 1_000_000;
        while timers.len() < 2 * keys + COMPACT_SLACK {
            at -= 1;
            timers.arm(0, Some(ms(t0, at)));
        }
        assert_eq!(timers.len(), 2 * keys + COMPACT_SLACK, "not rebuilt up to the bound");
        timers.arm(0, Some(ms(t0, at - 1)));
        assert_eq!(timers.len(), keys, "one past it, only the armed entries are left");
        assert_eq!(timers.pop_due(ms(t0, at - 1)), Some(0));
    }

    #[test]
    fn a_popped_key_can_be_rearmed() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        timers.arm(0, Some(ms(t0, 1)));
        assert_eq!(timers.pop_due(ms(t0, 1)), Some(0));
        timers.arm(0, Some(ms(t0, 9)));
        assert_eq!(timers.pop_due(ms(t0, 9)), Some(0));
    }
}
