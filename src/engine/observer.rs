//! A hook for whatever watches a run while it goes on (the live metrics in
//! `monitor/`: Prometheus, statsd, the HdrHistogram interval log).
//!
//! The coordinator calls it on its own thread, never on a worker, as snapshots
//! arrive: about once a second per worker. So an observer may take a lock or
//! format text; it must not block for long, or the live line and the stop would
//! wait for it.

use std::time::SystemTime;

use crate::stats::{Snapshot, TimelineRow, Totals};

/// Watches a run from the coordinator. The calls come in this order: `started`
/// once, then for each arriving snapshot `snapshot` and `progress`.
pub trait RunObserver {
    /// The run starts now; `at` is its wall-clock start (the report's `started_at`).
    fn started(&mut self, at: SystemTime);

    /// One worker's snapshot, before it is added to the totals. Interval
    /// histograms travel in it and nowhere else.
    fn snapshot(&mut self, snapshot: &Snapshot);

    /// After each snapshot (or a lost worker): the run totals so far, counted as
    /// the final report counts them, the timeline rows that just completed, oldest
    /// first (usually none; one a second), and the open-loop rate asked for now
    /// (`-r`, or the stages and live control's; `None` in closed loop).
    fn progress(&mut self, totals: &Totals, completed: &[TimelineRow], target_rate: Option<f64>);
}

/// An observer that watches nothing: plain [`run`](super::run).
pub struct NoObserver;

impl RunObserver for NoObserver {
    fn started(&mut self, _at: SystemTime) {}
    fn snapshot(&mut self, _snapshot: &Snapshot) {}
    fn progress(&mut self, _totals: &Totals, _completed: &[TimelineRow], _target_rate: Option<f64>) {}
}
