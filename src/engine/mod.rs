//! The coordinator: splits the work, starts the workers, owns the clock and the
//! signals, stops the workers, and collects what they measured.
//!
//! It runs its own small `mio::Poll` with two sources: SIGINT/SIGTERM (through
//! signal-hook-mio) and a `Waker` the workers ring after each snapshot. So it sleeps
//! until something happens, and a Ctrl-C stops the run within milliseconds.

pub mod conn;
pub mod dial;
pub mod local_ports;
pub mod pacing;
pub mod ports;
pub mod timer;
pub mod wakeup;
pub mod worker;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use log::warn;
use mio::{Events, Interest, Poll, Token, Waker};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::plan::Plan;
use crate::stats::{Collector, Cuts, Snapshot, TimelineRow, Totals};
use worker::{Assignment, Shared, Worker};

const SIGNALS: Token = Token(0);
const WORKERS: Token = Token(1);

/// Why the run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `--duration` elapsed.
    Duration,
    /// Every worker completed its share of `-n`.
    RequestsDone,
    /// Every connection closed for good (`--no-reconnect`).
    AllClosed,
    /// A signal arrived (SIGINT or SIGTERM).
    Signal(i32),
}

/// What a run measured.
#[derive(Debug)]
pub struct RunResult {
    /// Summed counters and histograms.
    pub totals: Totals,
    /// One row per second.
    pub timeline: Vec<TimelineRow>,
    /// The measured window: from the end of the warm-up to the moment the run
    /// stopped. Rates are per this.
    pub elapsed: Duration,
    /// The warm-up that preceded it (`--warmup`, or less if stopped during it).
    pub warmup: Duration,
    /// From the start to the moment every connection was first open, if ever.
    pub ramp: Option<Duration>,
    /// Wall-clock time at the start of the run.
    pub started_at: SystemTime,
    /// Why it stopped.
    pub stop: StopReason,
}

/// Called with each completed timeline row (the live progress line).
pub type OnRow<'a> = &'a mut dyn FnMut(&TimelineRow, &Plan);

/// Runs the load test described by `plan`, calling `on_row` once a second.
///
/// Errors are setup failures only (the poller or threads could not be created);
/// everything that happens to connections is counted in the result instead.
pub fn run(plan: Arc<Plan>, on_row: OnRow) -> io::Result<RunResult> {
    let mut poll = Poll::new()?;
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    poll.registry().register(&mut signals, SIGNALS, Interest::READABLE)?;
    let coordinator = Arc::new(Waker::new(poll.registry(), WORKERS)?);

    let started_at = SystemTime::now();
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let cuts = Cuts { start, measure_from, end: measure_from + plan.duration };
    let shared = Arc::new(Shared { cuts, stop: AtomicBool::new(false) });
    let (tx, rx) = mpsc::channel::<Snapshot>();
    let mut wakers = Vec::with_capacity(plan.threads);
    let mut handles = Vec::with_capacity(plan.threads);
    // Read once, at the start: workers that pick their own source ports take a
    // slice each. Unreadable (not Linux, or no /proc): the kernel picks.
    let port_range = match ports::PortRange::ephemeral() {
        Ok(range) => Some(range),
        Err(e) => {
            log::debug!("source ports left to the kernel: {e}");
            None
        }
    };
    for mut assignment in split(&plan) {
        assignment.port_range = port_range;
        let index = assignment.index;
        let (worker, waker) = Worker::new(assignment, plan.clone(), shared.clone(), tx.clone(), coordinator.clone())?;
        wakers.push(waker);
        handles.push(thread::Builder::new().name(format!("loadmux-worker-{index}")).spawn(move || worker.run())?);
    }
    drop(tx);

    let mut collector = Collector::new(plan.threads);
    let end_at = cuts.end;
    let mut events = Events::with_capacity(16);
    let mut stop: Option<(StopReason, Instant)> = None;
    loop {
        let now = Instant::now();
        if stop.is_none() && now >= end_at {
            stop = Some((StopReason::Duration, end_at));
        }
        if let Some((_, _)) = stop {
            if !shared.stop.swap(true, Ordering::Relaxed) {
                for waker in &wakers {
                    let _ = waker.wake();
                }
            }
        }
        if collector.all_finished() {
            break;
        }
        // Before the stop: sleep until the end of the run (workers and signals wake us
        // sooner). After it: the workers are closing down, so just wait for them.
        let timeout = if stop.is_some() { Duration::from_millis(200) } else { end_at.saturating_duration_since(now) };
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            if event.token() != SIGNALS {
                continue;
            }
            for signal in signals.pending() {
                match stop {
                    None => stop = Some((StopReason::Signal(signal), Instant::now())),
                    // A second signal while stopping: stop waiting for the workers
                    // and report what has arrived.
                    Some(_) => {
                        warn!("second signal: reporting without waiting for the workers");
                        return Ok(finish(collector, stop, &shared, started_at));
                    }
                }
            }
        }
        while let Ok(snapshot) = rx.try_recv() {
            // Every row is shown as it completes, the last one too (whether it arrives
            // before or after the coordinator notices the end is a race, so a rule
            // depending on that would make the live line flaky).
            for row in collector.add(snapshot) {
                on_row(&row, &plan);
            }
        }
        if stop.is_none() && collector.all_finished() {
            let now = Instant::now();
            stop = Some(if now >= end_at {
                // The workers stopped on their own at the end of --duration.
                (StopReason::Duration, end_at)
            } else if plan.requests.is_some() {
                (StopReason::RequestsDone, now)
            } else {
                (StopReason::AllClosed, now)
            });
        }
    }
    for handle in handles {
        // A worker that panicked has already printed why; its last snapshot is
        // missing, which the totals then show.
        let _ = handle.join();
    }
    Ok(finish(collector, stop, &shared, started_at))
}

fn finish(
    collector: Collector,
    stop: Option<(StopReason, Instant)>,
    shared: &Shared,
    started_at: SystemTime,
) -> RunResult {
    let cuts = shared.cuts;
    let (reason, at) = stop.unwrap_or((StopReason::Duration, Instant::now()));
    let at = at.min(cuts.end);
    let (totals, timeline) = collector.finish(cuts.start);
    RunResult {
        elapsed: at.saturating_duration_since(cuts.measure_from),
        warmup: at.min(cuts.measure_from).saturating_duration_since(cuts.start),
        ramp: totals.ramp_done_at.map(|t| t.saturating_duration_since(cuts.start)),
        totals,
        timeline,
        started_at,
        stop: reason,
    }
}

/// Splits connections and the request budget across workers. Connection `i` goes to
/// worker `i % threads` and to target `i % targets`, so both spread evenly; each
/// worker gets `requests / threads` requests, the remainder going to the lowest.
fn split(plan: &Plan) -> Vec<Assignment> {
    let threads = plan.threads;
    let mut out: Vec<Assignment> = (0..threads)
        .map(|index| Assignment {
            index,
            conns: Vec::with_capacity(plan.connections / threads + 1),
            quota: plan.requests.map(|n| n / threads as u64 + u64::from((index as u64) < n % threads as u64)),
            port_range: None,
        })
        .collect();
    for i in 0..plan.connections {
        let target = plan.targets[i % plan.targets.len()];
        out[i % threads].conns.push((plan.first_conn_id + i as u64, target));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(connections: usize, threads: usize, requests: Option<u64>) -> Plan {
        let mut plan = Plan::new(vec!["127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap()]);
        plan.connections = connections;
        plan.threads = threads;
        plan.requests = requests;
        plan
    }

    #[test]
    fn connections_and_requests_split_evenly() {
        let parts = split(&plan(5, 2, Some(7)));
        assert_eq!(parts[0].conns.len(), 3);
        assert_eq!(parts[1].conns.len(), 2);
        assert_eq!(parts[0].quota, Some(4));
        assert_eq!(parts[1].quota, Some(3));
        let ids: Vec<u64> = parts.iter().flat_map(|p| p.conns.iter().map(|c| c.0)).collect();
        assert_eq!(ids.len(), 5);
        // Targets alternate by connection id.
        assert_eq!(parts[0].conns[0].1.port(), 1);
        assert_eq!(parts[1].conns[0].1.port(), 2);
    }

    #[test]
    fn an_unbounded_run_has_no_quota() {
        assert!(split(&plan(4, 4, None)).iter().all(|p| p.quota.is_none()));
    }
}
