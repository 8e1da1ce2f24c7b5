//! The coordinator's side of the stats path: snapshots in, totals and timeline out.
//!
//! Every [`Snapshot`] is added to the run totals (exact: counters add, histograms add)
//! and to its timeline row. A row is complete once every worker still running has
//! reported that second; the live line prints it then.

use std::time::Duration;

use super::{Counters, LatencyHistogram, Snapshot};

/// One second of the run (the last row may be shorter).
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineRow {
    /// Seconds from the start of the run to the end of this row's interval.
    pub t_s: f64,
    /// What happened during the interval.
    pub delta: Counters,
    /// Connections established at the end of the interval.
    pub open: u64,
    /// Request latency over this interval only: p50, p99 and max, in microseconds.
    pub p50_us: u64,
    /// See `p50_us`.
    pub p99_us: u64,
    /// See `p50_us`.
    pub max_us: u64,
}

/// A row still receiving snapshots.
#[derive(Debug, Default)]
struct PendingRow {
    delta: Counters,
    open: u64,
    latency: LatencyHistogram,
    reported: usize,
}

/// Run totals, final once every worker has sent its last snapshot.
#[derive(Debug, Default)]
pub struct Totals {
    /// Counters summed over workers.
    pub counters: Counters,
    /// Every request latency of the run.
    pub latency: LatencyHistogram,
    /// Every connect latency of the run.
    pub connect_latency: LatencyHistogram,
    /// Sum of the workers' peaks of established connections.
    pub max_open: u64,
}

/// Accumulates snapshots from `workers` workers.
#[derive(Debug)]
pub struct Collector {
    workers: usize,
    totals: Totals,
    max_open: Vec<u64>,
    /// The interval index of each worker's last snapshot, once it has sent it.
    last_index: Vec<Option<u64>>,
    /// Rows from `first_pending` on, still filling.
    pending: Vec<PendingRow>,
    first_pending: u64,
    done: Vec<TimelineRow>,
}

impl Collector {
    /// A collector for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Collector {
            workers,
            totals: Totals::default(),
            max_open: vec![0; workers],
            last_index: vec![None; workers],
            pending: Vec::new(),
            first_pending: 0,
            done: Vec::new(),
        }
    }

    /// Adds one snapshot. Returns the timeline rows it completed, oldest first.
    pub fn add(&mut self, s: Snapshot) -> Vec<TimelineRow> {
        self.totals.counters.merge(&s.delta);
        self.totals.latency.merge(&s.latency);
        self.totals.connect_latency.merge(&s.connect_latency);
        self.max_open[s.worker] = s.max_open;
        if s.last {
            self.last_index[s.worker] = Some(s.index);
        }
        if s.index >= self.first_pending {
            let slot = usize::try_from(s.index - self.first_pending).unwrap_or(usize::MAX);
            if slot >= self.pending.len() {
                self.pending.resize_with(slot + 1, PendingRow::default);
            }
            let row = &mut self.pending[slot];
            row.delta.merge(&s.delta);
            row.open += s.open;
            row.latency.merge(&s.latency);
            row.reported += 1;
        }
        let mut completed = Vec::new();
        while let Some(row) = self.pending.first() {
            if row.reported < self.expected(self.first_pending) {
                break;
            }
            let row = self.pending.remove(0);
            completed.push(finish_row(row, (self.first_pending + 1) as f64));
            self.first_pending += 1;
        }
        self.done.extend(completed.iter().cloned());
        completed
    }

    /// Workers expected to report interval `index`: those that have not stopped
    /// before it.
    fn expected(&self, index: u64) -> usize {
        self.last_index
            .iter()
            .filter(|last| last.is_none_or(|l| l >= index))
            .count()
    }

    /// True once every worker has sent its last snapshot.
    pub fn all_finished(&self) -> bool {
        self.last_index.iter().all(Option::is_some)
    }

    /// Workers that have sent their last snapshot.
    pub fn finished_workers(&self) -> usize {
        self.last_index.iter().filter(|l| l.is_some()).count()
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Ends collection: rows still pending are closed (the last at `elapsed`), and the
    /// totals and the whole timeline are returned.
    pub fn finish(mut self, elapsed: Duration) -> (Totals, Vec<TimelineRow>) {
        let end = elapsed.as_secs_f64();
        let pending = std::mem::take(&mut self.pending);
        for row in pending {
            let t_s = ((self.first_pending + 1) as f64).min(end);
            self.done.push(finish_row(row, t_s));
            self.first_pending += 1;
        }
        // The final row ends when the run did, not at the next whole second.
        if let Some(last) = self.done.last_mut() {
            last.t_s = last.t_s.min(end);
        }
        self.totals.max_open = self.max_open.iter().sum();
        (self.totals, self.done)
    }
}

fn finish_row(row: PendingRow, t_s: f64) -> TimelineRow {
    TimelineRow {
        t_s,
        delta: row.delta,
        open: row.open,
        p50_us: row.latency.percentile(50.0),
        p99_us: row.latency.percentile(99.0),
        max_us: row.latency.max(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(worker: usize, index: u64, completed: u64, last: bool) -> Snapshot {
        let mut latency = LatencyHistogram::new();
        for _ in 0..completed {
            latency.record(100 * (worker as u64 + 1));
        }
        Snapshot {
            worker,
            index,
            last,
            delta: Counters {
                requests_completed: completed,
                ..Counters::default()
            },
            latency,
            connect_latency: LatencyHistogram::new(),
            open: 5,
            max_open: 5,
        }
    }

    #[test]
    fn a_row_completes_when_every_worker_reported_it() {
        let mut c = Collector::new(2);
        assert!(c.add(snap(0, 0, 10, false)).is_empty());
        let rows = c.add(snap(1, 0, 20, false));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].delta.requests_completed, 30);
        assert_eq!(rows[0].open, 10);
        assert_eq!(rows[0].t_s, 1.0);
        assert_eq!(rows[0].max_us, 200);
    }

    #[test]
    fn a_stopped_worker_is_not_waited_for() {
        let mut c = Collector::new(2);
        c.add(snap(0, 0, 1, true));
        // Worker 1 reports intervals 0 and 1; worker 0 stopped in interval 0.
        assert_eq!(c.add(snap(1, 0, 1, false)).len(), 1);
        assert_eq!(c.add(snap(1, 1, 1, false)).len(), 1);
        assert!(!c.all_finished());
        c.add(snap(1, 2, 1, true));
        assert!(c.all_finished());
    }

    #[test]
    fn totals_are_exact_sums_and_the_last_row_ends_at_the_run_end() {
        let mut c = Collector::new(2);
        c.add(snap(0, 0, 3, false));
        c.add(snap(1, 0, 4, false));
        c.add(snap(0, 1, 5, true));
        c.add(snap(1, 1, 6, true));
        let (totals, rows) = c.finish(Duration::from_millis(1500));
        assert_eq!(totals.counters.requests_completed, 18);
        assert_eq!(totals.latency.count(), 18);
        assert_eq!(totals.max_open, 10);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].t_s, 1.5);
        assert_eq!(
            rows.iter().map(|r| r.delta.requests_completed).sum::<u64>(),
            18
        );
    }
}
