//! The coordinator: splits the work, starts the workers, owns the clock and the
//! signals, stops the workers, and collects what they measured.
//!
//! It runs its own small `mio::Poll` with two sources: SIGINT/SIGTERM (through
//! signal-hook-mio) and a `Waker` the workers ring after each snapshot. So it sleeps
//! until something happens, and a Ctrl-C stops the run within milliseconds.

pub mod clock;
pub mod conn;
pub mod control;
pub mod dial;
pub mod local_ports;
pub mod pacing;
pub mod ports;
pub mod stages;
pub mod timer;
pub mod wakeup;
pub mod worker;

use std::io;
use std::panic::{self, AssertUnwindSafe};
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
use control::{Action, Command, LiveRate, RateChangeRecord};
use stages::{RateChange, RateSchedule};
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
    /// A thread the run depends on panicked (a worker, the built-in server, the
    /// live line); the workers were stopped.
    ThreadPanicked,
    /// Live control said `stop`: a normal end, with a full report.
    Control,
}

impl StopReason {
    /// The name used in reports: duration, requests_done, all_closed, sigint,
    /// sigterm (or "signal N").
    pub fn name(self) -> String {
        match self {
            StopReason::Duration => "duration".into(),
            StopReason::RequestsDone => "requests_done".into(),
            StopReason::AllClosed => "all_closed".into(),
            StopReason::Signal(SIGINT) => "sigint".into(),
            StopReason::Signal(SIGTERM) => "sigterm".into(),
            StopReason::Signal(n) => format!("signal {n}"),
            StopReason::ThreadPanicked => "thread_panicked".into(),
            StopReason::Control => "control".into(),
        }
    }
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
    /// Threads that panicked ("worker 1", "built-in server thread 0", "the live
    /// line"); a worker's share after its last snapshot is missing.
    pub failed_threads: Vec<String>,
    /// Open loop with a changing rate: the rate asked for over time (seconds from
    /// the start), live changes included. `None` at a fixed rate or in closed loop.
    pub rate_schedule: Option<RateSchedule>,
    /// Live control's changes of the rate, in order.
    pub rate_changes: Vec<RateChangeRecord>,
}

/// Called with each completed timeline row (the live progress line).
pub type OnRow<'a> = &'a mut dyn FnMut(&TimelineRow);

/// Runs the load test described by `plan`, calling `on_row` once a second.
///
/// Errors are setup failures only (the poller or threads could not be created);
/// everything that happens to connections is counted in the result instead. A
/// worker that panics does not hang the run: the others are stopped at once and
/// the result names it in `failed_threads`.
pub fn run(plan: Arc<Plan>, on_row: OnRow) -> io::Result<RunResult> {
    run_watching(plan, on_row, &|| Vec::new())
}

/// Checks on threads outside the engine that the run depends on (the built-in
/// server's): returns the names of those that have died.
pub type DeadThreads<'a> = &'a dyn Fn() -> Vec<String>;

/// [`run`], also watching other threads the run depends on: when `dead_threads`
/// names one, the run stops as it does for a panicked worker. They are checked
/// every [`WATCH_INTERVAL`].
pub fn run_watching(plan: Arc<Plan>, on_row: OnRow, dead_threads: DeadThreads) -> io::Result<RunResult> {
    run_controlled(plan, on_row, dead_threads, None)
}

/// Starts a reader of live control commands (keys, `--control stdin`), given the
/// coordinator's waker to ring after each command it sends.
pub type ControlStart = Box<dyn FnOnce(Arc<Waker>) -> mpsc::Receiver<Command>>;

/// [`run_watching`] under live control: `control` starts the reader whose commands
/// change the rate (open loop with `Plan::rate_shape`), pause, resume or stop the run.
pub fn run_controlled(
    plan: Arc<Plan>,
    on_row: OnRow,
    dead_threads: DeadThreads,
    control: Option<ControlStart>,
) -> io::Result<RunResult> {
    let poll = Poll::new()?;
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    poll.registry().register(&mut signals, SIGNALS, Interest::READABLE)?;
    let coordinator = Arc::new(Waker::new(poll.registry(), WORKERS)?);

    let started_at = SystemTime::now();
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let cuts = Cuts { start, measure_from, end: measure_from + plan.duration };
    let shared = Arc::new(Shared { cuts, stop: AtomicBool::new(false) });
    let crew = spawn(&plan, &shared, &coordinator)?;
    let commands = control.map(|start| start(coordinator.clone()));
    let mut watch = Watch {
        poll,
        signals,
        collector: Collector::new(plan.threads),
        stop: None,
        failed_threads: Vec::new(),
        live: plan.rate_shape.as_ref().map(|shape| LiveRate::new(RateSchedule::clone(shape))),
        commands,
    };
    let finished_normally = watch.wait(&plan, &shared, &crew, on_row, dead_threads)?;
    if finished_normally {
        for handle in crew.handles {
            // A worker that panicked was caught inside its thread and is already in
            // `failed_threads`; joining cannot block, as every worker has ended.
            let _ = handle.join();
        }
    }
    Ok(finish(watch, &shared, started_at))
}

/// The worker threads of a run and the channels back from them.
struct Crew {
    /// One waker per worker: ringing it makes the worker look at the stop flag.
    wakers: Vec<Arc<Waker>>,
    handles: Vec<thread::JoinHandle<()>>,
    /// Snapshots, once a second and a last one as each worker ends.
    snapshots: mpsc::Receiver<Snapshot>,
    /// Open loop with a changing rate: one channel per worker for live rate changes
    /// (sent before ringing its waker).
    rate_changes: Vec<mpsc::Sender<RateChange>>,
    /// The index of each worker that panicked instead of sending its last snapshot.
    panicked: mpsc::Receiver<usize>,
}

/// Starts one thread per worker. Each runs its event loop inside `catch_unwind`:
/// a worker that panics reports its index and rings the coordinator, so the run
/// stops within one poll instead of waiting forever for its last snapshot.
fn spawn(plan: &Arc<Plan>, shared: &Arc<Shared>, coordinator: &Arc<Waker>) -> io::Result<Crew> {
    let (snapshot_tx, snapshots) = mpsc::channel::<Snapshot>();
    let (panic_tx, panicked) = mpsc::channel::<usize>();
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
    // Every worker's poller and waker exist before any worker starts: a running
    // worker opens sockets, and with a low fd limit it could take the descriptors
    // the next worker's setup needs (the run would then fail to start instead of
    // counting fd_limit).
    let mut workers = Vec::with_capacity(plan.threads);
    let mut rate_changes = Vec::new();
    for mut assignment in split(plan) {
        assignment.port_range = port_range;
        if plan.rate_shape.is_some() {
            let (tx, rx) = mpsc::channel();
            rate_changes.push(tx);
            assignment.rate_changes = Some(rx);
        }
        let (worker, waker) =
            Worker::new(assignment, plan.clone(), shared.clone(), snapshot_tx.clone(), coordinator.clone())?;
        wakers.push(waker);
        workers.push(worker);
    }
    for (index, worker) in workers.into_iter().enumerate() {
        let (panic_tx, coordinator) = (panic_tx.clone(), coordinator.clone());
        let body = move || {
            // The worker and everything it owns are dropped while unwinding, so
            // nothing it held is observed half-updated: AssertUnwindSafe is sound.
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
                crate::fault::worker_started(index);
                worker.run();
            }));
            if outcome.is_err() {
                let _ = panic_tx.send(index);
                let _ = coordinator.wake();
            }
        };
        handles.push(thread::Builder::new().name(format!("loadmux-worker-{index}")).spawn(body)?);
    }
    Ok(Crew { wakers, handles, snapshots, rate_changes, panicked })
}

/// The coordinator's state while the workers run.
struct Watch {
    poll: Poll,
    signals: Signals,
    collector: Collector,
    /// Why and when the run is stopping, once decided.
    stop: Option<(StopReason, Instant)>,
    /// Threads that panicked or died: "worker 1", "built-in server thread 0",
    /// "the live line".
    failed_threads: Vec<String>,
    /// Open loop with a changing rate: the rate the workers follow, and its changes.
    live: Option<LiveRate>,
    /// Live control commands, if a reader was started.
    commands: Option<mpsc::Receiver<Command>>,
}

impl Watch {
    /// The coordinator's loop: sleeps until a snapshot, a signal or the end of the
    /// run, shows each completed row, and stops the workers once `decide_stop`
    /// says so. Returns false when a second signal cut the wait for the workers
    /// short (their threads are then left to finish on their own).
    fn wait(
        &mut self,
        plan: &Plan,
        shared: &Shared,
        crew: &Crew,
        on_row: OnRow,
        dead_threads: DeadThreads,
    ) -> io::Result<bool> {
        let end_at = shared.cuts.end;
        let mut events = Events::with_capacity(16);
        loop {
            let now = Instant::now();
            if self.stop.is_none() && now >= end_at {
                self.stop = Some((StopReason::Duration, end_at));
            }
            if self.stop.is_some() && !shared.stop.swap(true, Ordering::Relaxed) {
                for waker in &crew.wakers {
                    let _ = waker.wake();
                }
            }
            if self.collector.all_finished() {
                return Ok(true);
            }
            // Before the stop: sleep until the end of the run (workers and signals
            // wake us sooner). After it: the workers are closing down, so just wait
            // for them.
            let timeout = if self.stop.is_some() {
                Duration::from_millis(200)
            } else {
                end_at.saturating_duration_since(now).min(WATCH_INTERVAL)
            };
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            let signalled = events.iter().any(|event| event.token() == SIGNALS);
            for signal in if signalled { self.signals.pending().collect() } else { Vec::new() } {
                if self.stop.is_some() {
                    // A second signal while stopping: stop waiting for the workers
                    // and report what has arrived.
                    warn!("second signal: reporting without waiting for the workers");
                    return Ok(false);
                }
                self.stop = Some((StopReason::Signal(signal), Instant::now()));
            }
            while let Ok(snapshot) = crew.snapshots.try_recv() {
                // Every row is shown as it completes, the last one too (whether it
                // arrives before or after the coordinator notices the end is a race,
                // so a rule depending on that would make the live line flaky).
                let rows = self.collector.add(snapshot);
                self.show(&rows, on_row);
            }
            while let Ok(index) = crew.panicked.try_recv() {
                let rows = self.collector.lose(index);
                self.show(&rows, on_row);
                self.thread_failed(format!("worker {index}"));
            }
            self.take_commands(shared, crew);
            if self.stop.is_none() {
                for name in dead_threads() {
                    self.thread_failed(name);
                }
            }
            if self.stop.is_none() {
                self.stop = decide_stop(&self.collector, plan, end_at, Instant::now());
            }
        }
    }

    /// Acts on the live control commands that arrived: `stop` stops the run as
    /// `--duration` would; a rate change is decided by [`LiveRate`] and sent to every
    /// worker, whose waker is rung so it applies the change at once. A command that
    /// cannot apply gets one line on stderr and the run goes on.
    fn take_commands(&mut self, shared: &Shared, crew: &Crew) {
        let Some(commands) = &self.commands else { return };
        while let Ok(Command { action, source }) = commands.try_recv() {
            let now = Instant::now();
            if action == Action::Stop {
                self.stop.get_or_insert((StopReason::Control, now));
                continue;
            }
            let Some(live) = &mut self.live else {
                eprintln!("loadmux: control: rate changes need open loop (-r or --stages): ignored");
                continue;
            };
            let at_s = now.saturating_duration_since(shared.cuts.start).as_secs_f64();
            match live.apply(action, at_s, source) {
                Ok(Some(rate)) => {
                    for (sender, waker) in crew.rate_changes.iter().zip(&crew.wakers) {
                        // A worker that has ended has dropped its receiver: nothing to change.
                        let _ = sender.send(RateChange { at_s, rate });
                        let _ = waker.wake();
                    }
                }
                Ok(None) => {}
                Err(reason) => eprintln!("loadmux: control: {reason}: ignored"),
            }
        }
    }

    /// Passes completed rows to the live line. A panic there (it runs on this
    /// thread) is caught: the live line is dropped and the run stops as for any
    /// other thread that failed, so the report is still built.
    fn show(&mut self, rows: &[TimelineRow], on_row: OnRow) {
        if self.failed_threads.iter().any(|t| t == LIVE_LINE) {
            return;
        }
        let shown = panic::catch_unwind(AssertUnwindSafe(|| rows.iter().for_each(&mut *on_row)));
        if shown.is_err() {
            self.thread_failed(LIVE_LINE.to_string());
        }
    }

    /// Records a thread that panicked or died, says so once on stderr, and stops
    /// the run (the report is still built).
    fn thread_failed(&mut self, name: String) {
        eprintln!("loadmux: {name} panicked: stopping the run and reporting what was measured");
        self.failed_threads.push(name);
        self.stop.get_or_insert((StopReason::ThreadPanicked, Instant::now()));
    }
}

/// The name the live line goes by in warnings.
const LIVE_LINE: &str = "the live line";

/// How often the coordinator checks on threads outside the engine: well inside
/// the half second in which a dead thread must stop the run.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// Why the workers all ended on their own, once they have: the duration ran out,
/// `-n` was reached, or every connection closed for good. `None` while any runs.
fn decide_stop(collector: &Collector, plan: &Plan, end_at: Instant, now: Instant) -> Option<(StopReason, Instant)> {
    if !collector.all_finished() {
        return None;
    }
    Some(if now >= end_at {
        // The workers stopped on their own at the end of --duration.
        (StopReason::Duration, end_at)
    } else if plan.requests.is_some() {
        (StopReason::RequestsDone, now)
    } else {
        (StopReason::AllClosed, now)
    })
}

/// Turns what the coordinator collected into the run's result.
fn finish(watch: Watch, shared: &Shared, started_at: SystemTime) -> RunResult {
    let cuts = shared.cuts;
    let (reason, at) = watch.stop.unwrap_or((StopReason::Duration, Instant::now()));
    let at = at.min(cuts.end);
    let (rate_schedule, rate_changes) = match watch.live {
        Some(live) => (Some(live.schedule), live.changes),
        None => (None, Vec::new()),
    };
    let (totals, timeline) = watch.collector.finish(cuts.start);
    RunResult {
        elapsed: at.saturating_duration_since(cuts.measure_from),
        warmup: at.min(cuts.measure_from).saturating_duration_since(cuts.start),
        ramp: totals.ramp_done_at.map(|t| t.saturating_duration_since(cuts.start)),
        totals,
        timeline,
        started_at,
        stop: reason,
        failed_threads: watch.failed_threads,
        rate_schedule,
        rate_changes,
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
            rate_changes: None,
        })
        .collect();
    for i in 0..plan.connections {
        out[i % threads].conns.push((plan.first_conn_id + i as u64, i % plan.targets.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Target;

    fn tcp(addr: &str) -> Target {
        Target::Tcp(addr.parse().unwrap())
    }

    fn plan(connections: usize, threads: usize, requests: Option<u64>) -> Plan {
        let mut plan = Plan::new(vec![tcp("127.0.0.1:1"), tcp("127.0.0.1:2")]);
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
        assert_eq!(parts[0].conns[0].1, 0);
        assert_eq!(parts[1].conns[0].1, 1);
    }

    #[test]
    fn an_unbounded_run_has_no_quota() {
        assert!(split(&plan(4, 4, None)).iter().all(|p| p.quota.is_none()));
    }
}
