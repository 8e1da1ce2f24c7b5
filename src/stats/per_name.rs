//! Per-name statistics of a request mix (`--mix`, `-m NAME=WEIGHT:...`).
//!
//! They live beside the totals everywhere the totals go: in [`WorkerStats`](super::WorkerStats)
//! (this interval), in each [`Snapshot`](super::Snapshot) (what the interval did),
//! in each [`TimelineRow`](super::TimelineRow) (the second, summed over workers) and in
//! the run's [`Totals`](super::Totals). They are indexed by the entry's position in the
//! mix (`Mix::entries`), so the hot path touches a `Vec` slot, never a name. The
//! totals are not derived from them: a run's totals stay exactly what they are
//! without a mix, and the per-name figures are an extra breakdown.

use super::{ErrorCounts, ErrorKind, LatencyHistogram};

/// What the requests of one mix name did over an interval (or a whole run).
#[derive(Clone, Debug, Default)]
pub struct NameStats {
    /// Requests of this name written.
    pub sent: u64,
    /// Requests of this name answered in full.
    pub completed: u64,
    /// Connection errors counted while a request of this name was the oldest one
    /// awaiting its response (`response_timeout`, `eof`, `protocol`, `reset`...).
    /// Errors with no request awaited (a failed connect) belong to no name.
    pub errors: ErrorCounts,
    /// Request latency (corrected, as the totals' `latency`).
    pub latency: LatencyHistogram,
}

impl NameStats {
    /// Adds `other` into `self`: counts add, histograms add exactly.
    pub fn merge(&mut self, other: &NameStats) {
        self.sent += other.sent;
        self.completed += other.completed;
        self.errors.merge(&other.errors);
        self.latency.merge(&other.latency);
    }

    /// Counts one error of `kind`.
    pub fn error(&mut self, kind: ErrorKind) {
        self.errors.add(kind);
    }

    /// The one-second summary kept in a timeline row.
    pub fn row(&self) -> NameRow {
        NameRow {
            sent: self.sent,
            completed: self.completed,
            errors: self.errors.total(),
            p50_us: self.latency.percentile(50.0),
            p99_us: self.latency.percentile(99.0),
            max_us: self.latency.max(),
        }
    }
}

/// Adds `from` into `into` slot by slot, growing `into` as needed (a worker only
/// has the slots of the names it has used so far).
pub fn merge_names(into: &mut Vec<NameStats>, from: &[NameStats]) {
    if into.len() < from.len() {
        into.resize_with(from.len(), NameStats::default);
    }
    for (a, b) in into.iter_mut().zip(from) {
        a.merge(b);
    }
}

/// One mix name's figures in one timeline row: counts and the second's latency
/// summary (the histogram itself is not kept per row).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameRow {
    /// Requests of this name written in the interval.
    pub sent: u64,
    /// Requests of this name completed in the interval.
    pub completed: u64,
    /// Errors attributed to this name in the interval.
    pub errors: u64,
    /// Median latency of this name's requests in the interval, in microseconds.
    pub p50_us: u64,
    /// 99th percentile, likewise.
    pub p99_us: u64,
    /// Largest, likewise.
    pub max_us: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_counts_and_histograms_slot_by_slot() {
        let mut a = vec![NameStats { sent: 2, completed: 1, ..NameStats::default() }];
        a[0].latency.record(100);
        let mut b = vec![NameStats::default(), NameStats { sent: 5, completed: 5, ..NameStats::default() }];
        b[0].latency.record(300);
        b[0].error(ErrorKind::Eof);
        merge_names(&mut a, &b);
        assert_eq!(a.len(), 2);
        assert_eq!((a[0].sent, a[0].completed, a[0].latency.count(), a[0].errors.total()), (2, 1, 2, 1));
        assert_eq!((a[1].sent, a[1].completed), (5, 5));
        assert_eq!(a[0].row().max_us, a[0].latency.max());
    }
}
