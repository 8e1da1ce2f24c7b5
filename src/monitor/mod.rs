//! Watching a run from outside while it goes on: Prometheus (`--metrics-listen`),
//! statsd (`--statsd`) and the HdrHistogram interval log (`--hlog`).
//!
//! [`Monitor`] is the engine's [`RunObserver`]: the coordinator hands it every
//! worker snapshot and the running totals on its own thread, about once a second
//! per worker, never on a worker's hot path. From them it
//! - renders the Prometheus page and swaps it into the [`MetricsPage`] that the
//!   metrics server's own thread copies for each scrape;
//! - pushes a statsd batch each time a timeline row (a second) completes;
//! - writes each measured second's latency histogram to the interval log.
//!
//! Every output counts as the report does (the measured window), so each one ends
//! equal to the report: Prometheus' last scrape, the sum of statsd's counters, the
//! sum of the log's intervals.
//!
//! With a request mix (`--mix`, named `-m`), each output also breaks the figures
//! down per mix name: a `name` label in Prometheus, `name.NAME.` in statsd names,
//! and a `Tag=NAME` interval beside the untagged total in the interval log.

pub mod hlog;
pub mod metrics_server;
pub mod prometheus;
pub mod statsd;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::engine::observer::RunObserver;
use crate::engine::{RunResult, StopReason};
use crate::stats::{NameStats, Snapshot, TimelineRow, Totals};
use hlog::HlogWriter;
use metrics_server::{MetricsPage, MetricsServer, MetricsServerHandle};
use statsd::{Gauges, NameFigures, StatsdPusher};

/// What to watch a run with, checked (from `loadmux run`'s flags).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MonitorConfig {
    /// `--metrics-listen`: where to serve `/metrics`.
    pub metrics_listen: Option<SocketAddr>,
    /// `--metrics-linger`: how long to go on serving the final numbers after the
    /// run, so that the last scrape sees them.
    pub metrics_linger: Duration,
    /// `--statsd`: where to push.
    pub statsd: Option<SocketAddr>,
    /// `--statsd-prefix`: before every statsd name.
    pub statsd_prefix: String,
    /// `--hlog`: the interval log to write.
    pub hlog: Option<PathBuf>,
}

impl MonitorConfig {
    /// True when any output is asked for.
    pub fn any(&self) -> bool {
        self.metrics_listen.is_some() || self.statsd.is_some() || self.hlog.is_some()
    }
}

/// The Prometheus side: the page and the thread serving it.
struct Prometheus {
    page: Arc<MetricsPage>,
    server: MetricsServerHandle,
    addr: SocketAddr,
    /// The text being rendered; swapped with the page's, so neither allocates
    /// once both have grown to size.
    text: String,
}

/// The live outputs of one run.
pub struct Monitor {
    prometheus: Option<Prometheus>,
    statsd: Option<StatsdPusher>,
    hlog: Option<HlogWriter>,
    /// Each worker's established connections at its last snapshot.
    open_by_worker: Vec<u64>,
    /// Open loop: the requests per second asked for now (`-r`, or the stages' and
    /// live control's rate, as the coordinator last said).
    target_rate: Option<f64>,
    linger: Duration,
    /// Request mix: the names, in `Mix::entries` order (empty without a mix).
    names: Vec<String>,
    /// Zeros, for a mix name no request has used yet.
    unused: NameStats,
}

impl Monitor {
    /// Binds the metrics port, connects the statsd socket and creates the log, so
    /// that a busy port or an unwritable path fails (one line) before the run.
    /// `workers` is the run's thread count, `target_rate` its open-loop rate,
    /// `names` its request mix's names (empty without a mix).
    pub fn start(
        config: &MonitorConfig,
        workers: usize,
        target_rate: Option<f64>,
        names: Vec<String>,
    ) -> Result<Monitor, String> {
        let hlog = config.hlog.as_deref().map(|path| HlogWriter::create(path, &names)).transpose()?;
        let statsd = match config.statsd {
            Some(addr) => {
                Some(StatsdPusher::connect(addr, &config.statsd_prefix).map_err(|e| format!("--statsd {addr}: {e}"))?)
            }
            None => None,
        };
        let prometheus = match config.metrics_listen {
            Some(addr) => {
                let server = MetricsServer::bind(addr).map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
                let addr = server.local_addr();
                let page = Arc::new(MetricsPage::default());
                let server = server.spawn(page.clone()).map_err(|e| format!("--metrics-listen {addr}: {e}"))?;
                Some(Prometheus { page, server, addr, text: String::new() })
            }
            None => None,
        };
        let mut monitor = Monitor {
            prometheus,
            statsd,
            hlog,
            open_by_worker: vec![0; workers],
            target_rate,
            linger: config.metrics_linger,
            names,
            unused: NameStats::default(),
        };
        // Scrapes before the first snapshot see zeros rather than an empty page.
        monitor.publish(&Totals::default());
        Ok(monitor)
    }

    /// Where `/metrics` is served, if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.prometheus.as_ref().map(|p| p.addr)
    }

    /// After the run: publishes the final totals, pushes the last statsd batch and
    /// completes the interval log, all from the run's result.
    pub fn finish(&mut self, result: &RunResult) {
        if let StopReason::Signal(_) = result.stop {
            // Whoever pressed Ctrl-C wants out now, and after the run nothing would
            // answer a second one: no lingering.
            self.linger = Duration::ZERO;
        }
        self.publish(&result.totals);
        self.push_statsd(&result.totals, result.timeline.last());
        if let Some(hlog) = &mut self.hlog {
            hlog.finish(result.timeline.iter().map(hlog::Span::from));
        }
    }

    /// Serves the final numbers for `--metrics-linger`, then stops the metrics
    /// server.
    pub fn stop(self) {
        if let Some(prometheus) = self.prometheus {
            std::thread::sleep(self.linger);
            prometheus.server.stop();
        }
    }

    /// Renders the Prometheus page from `totals` and swaps it in.
    fn publish(&mut self, totals: &Totals) {
        let Some(prometheus) = &mut self.prometheus else { return };
        let mut groups = vec![prometheus::Group::totals(&totals.counters, &totals.latency)];
        groups.extend(named(&self.names, &self.unused, totals).map(|(name, stats)| prometheus::Group {
            name: Some(name),
            sent: stats.sent,
            completed: stats.completed,
            errors: &stats.errors,
            latency: &stats.latency,
        }));
        let view = prometheus::Exposition {
            counters: &totals.counters,
            groups: &groups,
            open_connections: self.open_by_worker.iter().sum(),
            target_rate: self.target_rate,
        };
        prometheus::render(&view, &mut prometheus.text);
        prometheus.page.swap(&mut prometheus.text);
    }

    /// Pushes one statsd batch: the totals (and each name's) so far, gauges from
    /// the last completed second `row`.
    fn push_statsd(&mut self, totals: &Totals, row: Option<&TimelineRow>) {
        if self.statsd.is_none() {
            return;
        }
        let gauges = gauges(self.open_by_worker.iter().sum(), self.target_rate, row);
        let names: Vec<NameFigures> = named(&self.names, &self.unused, totals)
            .enumerate()
            .map(|(i, (name, stats))| NameFigures {
                name,
                sent: stats.sent,
                completed: stats.completed,
                errors: &stats.errors,
                latency_us: row.and_then(|r| r.per_name.get(i)).map_or([0; 3], |n| [n.p50_us, n.p99_us, n.max_us]),
            })
            .collect();
        if let Some(statsd) = &mut self.statsd {
            statsd.push(&totals.counters, &names, &gauges);
        }
    }
}

/// Each mix name with its figures so far (`unused`, zeros, for a name not used yet).
fn named<'a>(
    names: &'a [String],
    unused: &'a NameStats,
    totals: &'a Totals,
) -> impl Iterator<Item = (&'a str, &'a NameStats)> + 'a {
    names.iter().enumerate().map(move |(i, name)| (name.as_str(), totals.per_name.get(i).unwrap_or(unused)))
}

/// The statsd gauges: open connections, the target rate, and the latency of the
/// last completed second (`row`).
fn gauges(open_connections: u64, target_rate: Option<f64>, row: Option<&TimelineRow>) -> Gauges {
    Gauges { open_connections, target_rate, latency_us: row.map_or([0; 3], |r| [r.p50_us, r.p99_us, r.max_us]) }
}

impl RunObserver for Monitor {
    fn started(&mut self, at: SystemTime) {
        if let Some(hlog) = &mut self.hlog {
            hlog.begin(at);
        }
    }

    fn snapshot(&mut self, snapshot: &Snapshot) {
        if let Some(open) = self.open_by_worker.get_mut(snapshot.worker) {
            *open = snapshot.open;
        }
        if let Some(hlog) = &mut self.hlog {
            hlog.snapshot(snapshot);
        }
    }

    fn progress(&mut self, totals: &Totals, completed: &[TimelineRow], target_rate: Option<f64>) {
        self.target_rate = target_rate;
        self.publish(totals);
        if let Some(row) = completed.last() {
            self.push_statsd(totals, Some(row));
        }
        if let Some(hlog) = &mut self.hlog {
            hlog.rows_completed(completed.iter().map(hlog::Span::from));
        }
    }
}
