//! The coordinator's side of the stats path: snapshots in, totals and timeline out.
//!
//! Every [`Snapshot`] goes into its timeline row, and, when it lies in the measured
//! window, into the run totals (exact: counters add, histograms add). A row is
//! complete once every worker still running has reported it; the live line prints it
//! then.
//!
//! What the totals cover: connection counts and connect latency cover the whole run
//! (connections are opened during the ramp-up, which may fall in the warm-up); every
//! other figure covers the measured window only.

use std::time::{Duration, Instant};

use crate::transport::TlsInfo;

use super::{merge_names, Counters, LatencyHistogram, NameRow, NameStats, Snapshot};

/// Which part of the run a timeline row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Warm-up, before every connection was open.
    Ramp,
    /// Warm-up, with every connection open.
    Warmup,
    /// The measured window.
    Measure,
}

impl Phase {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Ramp => "ramp",
            Phase::Warmup => "warmup",
            Phase::Measure => "measure",
        }
    }
}

/// One interval of the run: a second, or less at the warm-up's end and the run's end.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineRow {
    /// Seconds from the start of the run to the end of this row's interval.
    pub t_s: f64,
    /// Length of the interval in seconds (1 except around the warm-up's end and the end).
    pub span_s: f64,
    /// Which part of the run it belongs to.
    pub phase: Phase,
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
    /// Request mix: each name's figures over this interval, indexed as
    /// `Mix::entries` (empty without a mix; possibly shorter than the mix).
    pub per_name: Vec<NameRow>,
}

/// A row still receiving snapshots.
#[derive(Debug, Default)]
struct PendingRow {
    t_s: f64,
    measured: bool,
    delta: Counters,
    open: u64,
    latency: LatencyHistogram,
    per_name: Vec<NameStats>,
    reported: usize,
}

/// Run totals, final once every worker has sent its last snapshot.
#[derive(Debug, Default)]
pub struct Totals {
    /// Counters: connection counts over the whole run, the rest over the measured window.
    pub counters: Counters,
    /// Request latency from the intended send (corrected), measured window.
    pub latency: LatencyHistogram,
    /// Request latency from the actual send (uncorrected), measured window.
    pub latency_uncorrected: LatencyHistogram,
    /// Time to first byte, measured window.
    pub first_byte: LatencyHistogram,
    /// Connect latency, whole run.
    pub connect_latency: LatencyHistogram,
    /// TLS handshake latency, whole run.
    pub tls_handshake: LatencyHistogram,
    /// What TLS negotiated (the first handshake reported).
    pub tls_info: Option<TlsInfo>,
    /// Send lag (open loop), measured window.
    pub send_lag: LatencyHistogram,
    /// Sum of the workers' peaks of established connections.
    pub max_open: u64,
    /// When every connection was first open at once (the last worker's moment), if ever.
    pub ramp_done_at: Option<Instant>,
    /// Connects started from each source address, in `--source` order, whole run
    /// (empty without sources).
    pub connects_by_source: Vec<u64>,
    /// WebSocket upgrade latency, whole run.
    pub ws_upgrade: LatencyHistogram,
    /// Request mix: each name's figures over the measured window, indexed as
    /// `Mix::entries` (empty without a mix).
    pub per_name: Vec<NameStats>,
}

/// Accumulates snapshots from `workers` workers.
#[derive(Debug)]
pub struct Collector {
    totals: Totals,
    max_open: Vec<u64>,
    ramp_done: Vec<Option<Instant>>,
    /// The interval index of each worker's last snapshot, once it has sent it.
    last_index: Vec<Option<u64>>,
    /// Rows from `first_pending` on, still filling.
    pending: Vec<PendingRow>,
    first_pending: u64,
    /// Workers that ended without a last snapshot (they panicked): no row waits
    /// for them any more.
    lost: Vec<bool>,
    /// Completed rows, oldest first.
    done: Vec<TimelineRow>,
}

impl Collector {
    /// A collector for `workers` workers.
    pub fn new(workers: usize) -> Self {
        Collector {
            totals: Totals::default(),
            max_open: vec![0; workers],
            ramp_done: vec![None; workers],
            last_index: vec![None; workers],
            pending: Vec::new(),
            first_pending: 0,
            lost: vec![false; workers],
            done: Vec::new(),
        }
    }

    /// Adds one snapshot. Returns the timeline rows it completed, oldest first.
    pub fn add(&mut self, s: Snapshot) -> Vec<TimelineRow> {
        let t_s = s.t_s;
        let t = &mut self.totals;
        // Connections: the whole run.
        t.counters.conns_attempted += s.delta.conns_attempted;
        t.counters.conns_established += s.delta.conns_established;
        t.counters.conns_failed += s.delta.conns_failed;
        t.counters.tls_full += s.delta.tls_full;
        t.counters.tls_resumed += s.delta.tls_resumed;
        t.connect_latency.merge(&s.connect_latency);
        t.tls_handshake.merge(&s.tls_handshake);
        t.ws_upgrade.merge(&s.ws_upgrade);
        if t.tls_info.is_none() {
            t.tls_info = s.tls_info;
        }
        if s.interval.measured {
            let mut traffic = s.delta;
            traffic.conns_attempted = 0;
            traffic.conns_established = 0;
            traffic.conns_failed = 0;
            traffic.tls_full = 0;
            traffic.tls_resumed = 0;
            t.counters.merge(&traffic);
            t.latency.merge(&s.latency);
            t.latency_uncorrected.merge(&s.latency_uncorrected);
            t.first_byte.merge(&s.first_byte);
            t.send_lag.merge(&s.send_lag);
            merge_names(&mut t.per_name, &s.per_name);
        }
        add_counts(&mut t.connects_by_source, &s.connects_by_source);
        self.max_open[s.worker] = s.max_open;
        self.ramp_done[s.worker] = s.ramp_done_at;
        if s.interval.last {
            self.last_index[s.worker] = Some(s.interval.index);
        }
        let index = s.interval.index;
        if index >= self.first_pending {
            let slot = usize::try_from(index - self.first_pending).unwrap_or(usize::MAX);
            if slot >= self.pending.len() {
                self.pending.resize_with(slot + 1, PendingRow::default);
            }
            let row = &mut self.pending[slot];
            // Workers cut at the same instants; the last cut differs by the moment
            // each worker stopped, so the earliest is kept.
            row.t_s = if row.reported == 0 { t_s } else { row.t_s.min(t_s) };
            row.measured = s.interval.measured;
            row.delta.merge(&s.delta);
            row.open += s.open;
            row.latency.merge(&s.latency);
            merge_names(&mut row.per_name, &s.per_name);
            row.reported += 1;
        }
        self.complete_rows()
    }

    /// Gives up on `worker`, which ended without its last snapshot: rows no longer
    /// wait for it. Returns the rows that completes, oldest first.
    pub fn lose(&mut self, worker: usize) -> Vec<TimelineRow> {
        self.lost[worker] = true;
        self.complete_rows()
    }

    /// Moves every leading row that all expected workers have reported to `done`.
    fn complete_rows(&mut self) -> Vec<TimelineRow> {
        let mut completed = Vec::new();
        while let Some(row) = self.pending.first() {
            if row.reported < self.expected(self.first_pending) {
                break;
            }
            let row = self.pending.remove(0);
            completed.push(self.finish_row(row));
            self.first_pending += 1;
        }
        completed
    }

    /// Workers expected to report interval `index`: those that have not stopped
    /// before it, and are not lost.
    fn expected(&self, index: u64) -> usize {
        self.last_index.iter().zip(&self.lost).filter(|(last, lost)| !**lost && last.is_none_or(|l| l >= index)).count()
    }

    fn finish_row(&mut self, row: PendingRow) -> TimelineRow {
        let start = self.done.last().map_or(0.0, |r| r.t_s);
        let out = TimelineRow {
            t_s: row.t_s,
            span_s: (row.t_s - start).max(0.0),
            phase: if row.measured { Phase::Measure } else { Phase::Warmup },
            delta: row.delta,
            open: row.open,
            p50_us: row.latency.percentile(50.0),
            p99_us: row.latency.percentile(99.0),
            max_us: row.latency.max(),
            per_name: row.per_name.iter().map(NameStats::row).collect(),
        };
        self.done.push(out.clone());
        out
    }

    /// The run totals so far: everything added up to now, by the same rules as
    /// the final totals. Counters in it only ever grow.
    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// True once every worker has sent its last snapshot or been lost.
    pub fn all_finished(&self) -> bool {
        self.last_index.iter().zip(&self.lost).all(|(last, lost)| last.is_some() || *lost)
    }

    /// Ends collection: rows still pending are closed, warm-up rows that ended before
    /// every connection was open are marked `ramp`, and the totals and the whole
    /// timeline are returned. `start` is the run's start instant.
    pub fn finish(mut self, start: Instant) -> (Totals, Vec<TimelineRow>) {
        for row in std::mem::take(&mut self.pending) {
            self.finish_row(row);
        }
        self.totals.max_open = self.max_open.iter().sum();
        // Every worker must have got there; the ramp ended with the last of them.
        self.totals.ramp_done_at = if self.ramp_done.iter().all(Option::is_some) {
            self.ramp_done.iter().flatten().max().copied()
        } else {
            None
        };
        let ramp_end_s = self.totals.ramp_done_at.map(|at| at.saturating_duration_since(start).as_secs_f64());
        let rows = self
            .done
            .into_iter()
            .map(|mut row| {
                if row.phase == Phase::Warmup && ramp_end_s.is_none_or(|end| row.t_s <= end) {
                    row.phase = Phase::Ramp;
                }
                row
            })
            .collect();
        (self.totals, rows)
    }
}

/// Adds `more` to `sum` element by element, growing `sum` to fit.
fn add_counts(sum: &mut Vec<u64>, more: &[u64]) {
    if sum.len() < more.len() {
        sum.resize(more.len(), 0);
    }
    for (total, n) in sum.iter_mut().zip(more) {
        *total += n;
    }
}

/// Seconds from `start` to `at`, for snapshot timestamps.
pub fn seconds_since(start: Instant, at: Instant) -> f64 {
    at.saturating_duration_since(start).as_secs_f64()
}

/// The instants at which every worker cuts a snapshot: each whole second after
/// `start`, plus the warm-up's end, up to `end`.
#[derive(Clone, Copy, Debug)]
pub struct Cuts {
    /// Run start.
    pub start: Instant,
    /// End of the warm-up (equal to `start` without one).
    pub measure_from: Instant,
    /// End of the run.
    pub end: Instant,
}

impl Cuts {
    /// The cut after the one at `previous` (the run start for the first).
    pub fn next_after(&self, previous: Instant) -> Instant {
        let since = previous.saturating_duration_since(self.start);
        let next_second = self.start + Duration::from_secs(since.as_secs() + 1);
        let mut next = next_second.min(self.end);
        if previous < self.measure_from && self.measure_from < next {
            next = self.measure_from;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Interval;

    fn snap(worker: usize, index: u64, completed: u64, measured: bool, last: bool) -> Snapshot {
        let mut latency = LatencyHistogram::new();
        for _ in 0..completed {
            latency.record(100 * (worker as u64 + 1));
        }
        Snapshot {
            worker,
            interval: Interval { index, measured, last },
            t_s: 0.0,
            delta: Counters { requests_completed: completed, conns_established: 1, ..Counters::default() },
            latency_uncorrected: latency.clone(),
            latency,
            first_byte: LatencyHistogram::new(),
            connect_latency: LatencyHistogram::new(),
            tls_handshake: LatencyHistogram::new(),
            tls_info: None,
            send_lag: LatencyHistogram::new(),
            open: 5,
            max_open: 5,
            ramp_done_at: None,
            connects_by_source: if last { vec![worker as u64 + 1, 2] } else { Vec::new() },
            ws_upgrade: LatencyHistogram::new(),
            per_name: Vec::new(),
        }
    }

    #[test]
    fn connects_by_source_add_up_over_the_workers_last_snapshots() {
        let mut c = Collector::new(2);
        c.add(snap(0, 0, 1, true, false));
        c.add(snap(0, 1, 1, true, true));
        c.add(snap(1, 0, 1, true, true));
        let (totals, _) = c.finish(Instant::now());
        assert_eq!(totals.connects_by_source, [1 + 2, 2 + 2], "worker 0 counts [1, 2], worker 1 [2, 2]");
    }

    fn at(mut s: Snapshot, t_s: f64) -> Snapshot {
        s.t_s = t_s;
        s
    }

    #[test]
    fn a_row_completes_when_every_worker_reported_it() {
        let mut c = Collector::new(2);
        assert!(c.add(at(snap(0, 0, 10, true, false), 1.0)).is_empty());
        let rows = c.add(at(snap(1, 0, 20, true, false), 1.0));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].delta.requests_completed, 30);
        assert_eq!(rows[0].open, 10);
        assert_eq!((rows[0].t_s, rows[0].span_s), (1.0, 1.0));
        assert_eq!(rows[0].max_us, 200);
    }

    #[test]
    fn a_stopped_worker_is_not_waited_for() {
        let mut c = Collector::new(2);
        c.add(at(snap(0, 0, 1, true, true), 0.5));
        assert_eq!(c.add(at(snap(1, 0, 1, true, false), 1.0)).len(), 1);
        assert_eq!(c.add(at(snap(1, 1, 1, true, false), 2.0)).len(), 1);
        assert!(!c.all_finished());
        c.add(at(snap(1, 2, 1, true, true), 2.5));
        assert!(c.all_finished());
    }

    #[test]
    fn a_lost_worker_is_not_waited_for_and_its_rows_still_count() {
        let mut c = Collector::new(2);
        assert_eq!(c.add(at(snap(0, 0, 3, true, false), 1.0)).len(), 0);
        assert_eq!(c.add(at(snap(1, 0, 4, true, false), 1.0)).len(), 1);
        assert!(c.add(at(snap(0, 1, 5, true, false), 2.0)).is_empty(), "row 1 waits for worker 1");
        assert!(!c.all_finished());
        let rows = c.lose(1);
        assert_eq!(rows.len(), 1, "losing worker 1 completes row 1");
        assert_eq!(rows[0].delta.requests_completed, 5);
        assert!(!c.all_finished(), "worker 0 has not sent its last snapshot");
        c.add(at(snap(0, 2, 1, true, true), 2.5));
        assert!(c.all_finished());
        let (totals, _) = c.finish(Instant::now());
        assert_eq!(totals.counters.requests_completed, 13);
    }

    #[test]
    fn totals_are_exact_sums_of_measured_snapshots() {
        let mut c = Collector::new(2);
        c.add(at(snap(0, 0, 3, false, false), 1.0));
        c.add(at(snap(1, 0, 4, false, false), 1.0));
        c.add(at(snap(0, 1, 5, true, true), 1.5));
        c.add(at(snap(1, 1, 6, true, true), 1.5));
        let (totals, rows) = c.finish(Instant::now());
        assert_eq!(totals.counters.requests_completed, 11, "warm-up rows are not in the totals");
        assert_eq!(totals.latency.count(), 11);
        assert_eq!(totals.counters.conns_established, 4, "connections count over the whole run");
        assert_eq!(totals.max_open, 10);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].phase, Phase::Ramp, "no ramp end reported: the warm-up row is ramp");
        assert_eq!(rows[1].phase, Phase::Measure);
        assert_eq!((rows[1].t_s, rows[1].span_s), (1.5, 0.5));
    }

    #[test]
    fn per_name_figures_sum_over_workers_per_row_and_over_measured_rows_in_the_totals() {
        let named = |worker, index, measured, get: u64, put: u64| {
            let mut s = snap(worker, index, get + put, measured, measured);
            s.per_name = vec![NameStats { completed: get, ..NameStats::default() }];
            if put > 0 {
                s.per_name.push(NameStats { completed: put, ..NameStats::default() });
                s.per_name[1].latency.record(700);
            }
            s
        };
        let mut c = Collector::new(2);
        c.add(at(named(0, 0, false, 5, 0), 1.0));
        let warm = c.add(at(named(1, 0, false, 1, 1), 1.0));
        assert_eq!(warm[0].per_name.iter().map(|n| n.completed).collect::<Vec<_>>(), [6, 1]);
        c.add(at(named(0, 1, true, 3, 2), 2.0));
        let rows = c.add(at(named(1, 1, true, 4, 0), 2.0));
        assert_eq!(rows[0].per_name.iter().map(|n| n.completed).collect::<Vec<_>>(), [7, 2]);
        assert_eq!(rows[0].per_name[1].max_us, 700);
        let (totals, _) = c.finish(Instant::now());
        let done: Vec<u64> = totals.per_name.iter().map(|n| n.completed).collect();
        assert_eq!(done, [7, 2], "the warm-up's names are not in the totals");
        assert_eq!(totals.per_name[1].latency.count(), 1);
    }

    #[test]
    fn warmup_rows_after_the_ramp_are_warmup() {
        let start = Instant::now();
        let mut c = Collector::new(1);
        let mut first = snap(0, 0, 1, false, false);
        first.ramp_done_at = Some(start + Duration::from_millis(300));
        c.add(at(first.clone(), 1.0));
        let mut second = snap(0, 1, 1, false, false);
        second.ramp_done_at = first.ramp_done_at;
        c.add(at(second, 2.0));
        let (_, rows) = c.finish(start);
        assert_eq!(rows[0].phase, Phase::Warmup, "ramp ended at 0.3 s, inside the first row");
        assert_eq!(rows[1].phase, Phase::Warmup);
    }

    #[test]
    fn cuts_fall_on_whole_seconds_the_warmup_end_and_the_end() {
        let start = Instant::now();
        let s = |ms: u64| start + Duration::from_millis(ms);
        let cuts = Cuts { start, measure_from: s(1500), end: s(3200) };
        let mut at = start;
        let mut seen = Vec::new();
        while at < cuts.end {
            at = cuts.next_after(at);
            seen.push(at.duration_since(start).as_millis());
        }
        assert_eq!(seen, vec![1000, 1500, 2000, 3000, 3200]);
    }
}
