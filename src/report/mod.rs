//! The report: what a run measured, in the shape every output format shares.
//!
//! [`Report`] mirrors the JSON report (schema 1 in `shared/design.md`) field for field.
//! The text summary and the JSON file are both renderings of it, so they can never
//! disagree. Keys may be added; renaming one needs a schema bump.

mod csv;
mod diagnosis;
mod file;
mod html;
mod json;
mod live;
mod merge;
mod mix;
mod schedule;
mod text;

pub use csv::{render_csv, write_csv};
pub use file::write_atomic;
pub use html::{render_html, write_html};
pub use json::{read_report, write_json};
pub use live::live_line;
pub use merge::merge;
pub use mix::{NameReport, NameRowReport};
pub use text::{micros as format_micros, render_text};

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::engine::control::RateChangeRecord;
use crate::engine::RunResult;
use crate::framing::{error_word_name, Framing, MemcacheReply};
use crate::mix::MixOrder;
use crate::plan::Plan;
use crate::stats::{ErrorKind, LatencyHistogram, TimelineRow, WS_CLOSE_CODES};

/// Version of the JSON layout.
pub const SCHEMA: u32 = 1;

/// A run's results.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// Always "loadmux".
    pub tool: String,
    /// Layout version ([`SCHEMA`]).
    pub schema: u32,
    /// Seconds measured (rates are per this).
    pub duration_s: f64,
    /// Wall-clock start of the run, in Unix seconds (aligns merged timelines).
    #[serde(default)]
    pub started_at_unix_s: f64,
    /// What was run.
    #[serde(default)]
    pub config: RunConfig,
    /// Why the run ended: duration, requests_done, all_closed, sigint, sigterm.
    pub stopped_by: String,
    /// Connection counts.
    pub connections: Connections,
    /// Request counts.
    pub requests: Requests,
    /// Byte counts.
    pub bytes: Bytes,
    /// Unmeasured warm-up before the measured window, in seconds.
    #[serde(default)]
    pub warmup_s: f64,
    /// Seconds from the start until every connection was open at once (`null`: never).
    #[serde(default)]
    pub ramp_s: Option<f64>,
    /// True when the measured window began after every connection was open.
    #[serde(default)]
    pub measure_began_after_ramp: bool,
    /// Request latency in microseconds, from each request's intended send time
    /// (corrected for coordinated omission; equals the uncorrected figure in closed loop).
    pub latency_us: Latency,
    /// Request latency from the actual send, uncorrected.
    #[serde(default)]
    pub latency_uncorrected_us: Latency,
    /// Time to first byte: from the send to the first response byte.
    #[serde(default)]
    pub first_byte_us: Latency,
    /// Connect latency in microseconds.
    pub connect_latency_us: Latency,
    /// TLS: handshake latency (from the TCP connect to the handshake's end), counts
    /// of full and resumed handshakes, and what was negotiated. `null` without TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// Open loop: how late each request left behind its intended send time, in
    /// microseconds (empty in closed loop, where a request's send *is* its schedule).
    #[serde(default)]
    pub send_lag_us: Latency,
    /// Errors by kind.
    pub errors: Errors,
    /// HTTP responses by status class ("1xx" .. "5xx"); present with `--expect http`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<BTreeMap<String, u64>>,
    /// RESP error replies; present with `--expect resp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resp: Option<RespReplies>,
    /// memcached replies by kind (`get_hits`, `get_misses`, `stored`...), zeros
    /// included; present with `--expect memcache`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memcache: Option<BTreeMap<String, u64>>,
    /// One row per second.
    pub timeline: Vec<Row>,
    /// Reasons to distrust or read more into the figures, one sentence each: a
    /// worker that panicked, a run that completed nothing, an open-loop schedule
    /// not kept (`schedule.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Connects started from each source address (`--source`, or the spread over
    /// 127.0.0.x of a big loopback run), reconnects included; present only then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connects_by_source: Option<BTreeMap<String, u64>>,
    /// Live control's changes of the rate (`+`/`-`/`p` keys, `--control stdin`), in
    /// order: seconds from the start, the rate before and after, and the source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_changes: Vec<RateChangeRecord>,
    /// Request mix: each name's figures over the measured window, in the mix's
    /// order (`report/mix.rs`). Left out without a mix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mix: Vec<NameReport>,
    /// WebSocket: upgrade latency, messages received, the server's close codes.
    /// Absent without a WebSocket session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub websocket: Option<WebSocket>,
}

/// `websocket` in the report.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WebSocket {
    /// Upgrade latency in microseconds (from the end of the TCP or TLS handshake to
    /// the server's `101`), whole run.
    pub upgrade_latency_us: Latency,
    /// Messages received complete (responses and pushed messages), measured window.
    pub messages_received: u64,
    /// Close frames the server sent, by code ("1000", "1001"... "other"), measured
    /// window; only the codes seen.
    pub close_codes: BTreeMap<String, u64>,
}

/// The run's configuration, as far as a reader of the report needs it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RunConfig {
    /// Targets loaded.
    pub targets: Vec<String>,
    /// Connections asked for (`-c`).
    pub connections: u64,
    /// Worker threads.
    pub threads: u64,
    /// `--duration` in seconds.
    pub duration_s: f64,
    /// `-n`, if given.
    pub requests: Option<u64>,
    /// `-r`: requests per second asked for, or `null` in closed loop.
    #[serde(default)]
    pub rate: Option<f64>,
    /// `-P`: requests in flight per connection.
    #[serde(default)]
    pub pipeline: u64,
    /// `--warmup` in seconds.
    #[serde(default)]
    pub warmup_s: f64,
    /// `--connect-rate`, if given.
    #[serde(default)]
    pub connect_rate: Option<f64>,
    /// Request size in bytes.
    pub message_bytes: u64,
    /// `--expect`.
    pub framing: String,
    /// `--mode`: request, stream, recv or connect.
    #[serde(default)]
    pub mode: String,
    /// `--shard` as `I/N` (`1/1` for an unsharded run).
    #[serde(default)]
    pub shard: String,
    /// Request mix: `random` or `round-robin` (`--mix-order`); left out without a mix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mix_order: Option<String>,
    /// Request mix: the seed of a random mix, given or drawn, so that any run can be
    /// repeated with `--seed`; left out otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mix_seed: Option<u64>,
}

/// `connections` in the report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Connections {
    /// Connect attempts, reconnects included.
    pub attempted: u64,
    /// Attempts that completed the handshake.
    pub established: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Sum of the workers' peaks of simultaneously established connections.
    pub max_open: u64,
    /// `established / duration_s` (the figure of merit in connect mode).
    #[serde(default)]
    pub per_s: f64,
}

/// `requests` in the report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Requests {
    /// Requests written (first byte out).
    pub sent: u64,
    /// Responses received complete.
    pub completed: u64,
    /// `completed / duration_s`.
    pub per_s: f64,
    /// Open loop: sends that fell due while their connection's pipeline was full.
    /// They still went out, late, when a response made room (their lateness is in
    /// `send_lag_us` and their latency); a count above 0 means the rate asked for
    /// more requests in flight than `-c` × `-P` allows.
    #[serde(default)]
    pub sends_dropped: u64,
}

/// `bytes` in the report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Bytes {
    /// Bytes written.
    pub sent: u64,
    /// Bytes read.
    pub received: u64,
    /// `sent / duration_s`.
    pub sent_per_s: f64,
    /// `received / duration_s`.
    pub received_per_s: f64,
}

/// A latency summary, with the full histogram for exact merging.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    /// Values recorded.
    pub count: u64,
    /// Smallest.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// Largest.
    pub max: u64,
    /// The histogram, HdrHistogram V2 + Deflate, base64.
    pub hdr: String,
}

impl Latency {
    /// Summarises a histogram.
    pub fn from_histogram(h: &LatencyHistogram) -> Latency {
        Latency {
            count: h.count(),
            min: h.min(),
            mean: h.mean(),
            p50: h.percentile(50.0),
            p90: h.percentile(90.0),
            p99: h.percentile(99.0),
            p99_9: h.percentile(99.9),
            max: h.max(),
            hdr: h.to_base64(),
        }
    }
}

/// `tls` in the report.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Tls {
    /// TLS handshake latency in microseconds, whole run.
    pub handshake_latency_us: Latency,
    /// Handshakes that completed in full.
    pub handshakes_full: u64,
    /// Handshakes that resumed a session (`--tls-resume`).
    pub handshakes_resumed: u64,
    /// The negotiated protocol version (`TLSv1.3`), from the first handshake.
    pub version: Option<String>,
    /// The negotiated cipher suite, from the first handshake.
    pub cipher_suite: Option<String>,
    /// The ALPN protocol agreed, if any.
    pub alpn: Option<String>,
}

/// `errors` in the report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Errors {
    /// All errors.
    pub total: u64,
    /// Every kind of the taxonomy, zeros included, so consumers need no defaults.
    pub by_kind: BTreeMap<String, u64>,
}

/// `resp` in the report: Redis error replies (`-ERR ...`), which are replies and
/// complete their request, not connection errors.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RespReplies {
    /// Error replies.
    pub errors: u64,
    /// Error replies by first word (`ERR`, `WRONGTYPE`...; `other` for words loadmux
    /// does not name), only the words seen.
    pub errors_by_word: BTreeMap<String, u64>,
}

/// One timeline row.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Row {
    /// Seconds from the start (the first connection attempt) to the end of this interval.
    pub t_s: f64,
    /// `ramp` (warm-up, connections still opening), `warmup` or `measure`.
    #[serde(default)]
    pub phase: String,
    /// Requests completed in the interval.
    pub requests: u64,
    /// Bytes written in the interval.
    pub bytes_sent: u64,
    /// Bytes read in the interval.
    pub bytes_received: u64,
    /// Errors in the interval.
    pub errors: u64,
    /// Errors in the interval by kind (kinds with a count of zero are left out).
    #[serde(default)]
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Connections established at the end of the interval.
    pub open: u64,
    /// Connections whose handshake completed in the interval: the connect rate,
    /// which in `--mode connect` is the figure of merit.
    #[serde(default)]
    pub connects: u64,
    /// Median request latency of this interval alone, in microseconds.
    pub p50_us: u64,
    /// 99th percentile of this interval alone.
    pub p99_us: u64,
    /// Largest latency of this interval.
    pub max_us: u64,
    /// Open loop with a changing rate (`--stages`, live control): the rate asked
    /// for over this interval (the schedule's sends in it, per second), beside the
    /// achieved `requests`. Absent at a fixed rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rate: Option<f64>,
    /// `--conn-stages`: the connections asked for at the end of this interval,
    /// beside the achieved `open`. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_open: Option<u64>,
    /// Request mix: each name's figures in this interval. Left out without a mix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mix: Vec<NameRowReport>,
}

impl From<&TimelineRow> for Row {
    fn from(r: &TimelineRow) -> Row {
        Row {
            t_s: r.t_s,
            phase: r.phase.name().to_string(),
            requests: r.delta.requests_completed,
            bytes_sent: r.delta.bytes_sent,
            bytes_received: r.delta.bytes_received,
            errors: r.delta.errors.total(),
            errors_by_kind: r
                .delta
                .errors
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| (k.name().to_string(), n))
                .collect(),
            open: r.open,
            connects: r.delta.conns_established,
            p50_us: r.p50_us,
            p99_us: r.p99_us,
            max_us: r.max_us,
            target_rate: None,
            target_open: None,
            mix: Vec::new(),
        }
    }
}

/// Whether responses of `plan` are framed as `framing`: by `--expect`, or by the
/// `expect` of an entry of its request mix (whose replies are then counted too).
fn uses_framing(plan: &Plan, framing: &Framing) -> bool {
    plan.framing == *framing
        || plan.mix.as_deref().is_some_and(|mix| mix.entries().iter().any(|e| e.framing.as_ref() == Some(framing)))
}

/// The timeline's rows, each with the target rate of its interval when the rate
/// followed a schedule, the target connections under `--conn-stages` (this
/// process's share), and a request mix's per-name figures.
fn timeline_rows(run: &RunResult, plan: &Plan) -> Vec<Row> {
    run.timeline
        .iter()
        .map(|r| Row {
            target_rate: run
                .rate_schedule
                .as_ref()
                .filter(|_| r.span_s > 0.0)
                .map(|schedule| (schedule.sends_by(r.t_s) - schedule.sends_by(r.t_s - r.span_s)) / r.span_s),
            target_open: plan.conn_stages.as_ref().map(|stages| plan.shard.share(stages.total_at(r.t_s)).0),
            mix: plan.mix.as_deref().map_or_else(Vec::new, |m| mix::names_row(m, &r.per_name)),
            ..Row::from(r)
        })
        .collect()
}

/// `count / seconds`, 0 for an empty interval.
fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// Connects per source address, keyed by the address (a repeated `--source` adds
/// up); `None` without sources.
fn by_source(sources: &[std::net::IpAddr], counts: &[u64]) -> Option<BTreeMap<String, u64>> {
    if sources.is_empty() {
        return None;
    }
    let mut out = BTreeMap::new();
    for (ip, n) in sources.iter().zip(counts.iter().chain(std::iter::repeat(&0))) {
        *out.entry(ip.to_string()).or_default() += n;
    }
    Some(out)
}

impl Report {
    /// Builds the report of a finished run of `plan`.
    pub fn from_run(run: &RunResult, plan: &Plan) -> Report {
        let c = &run.totals.counters;
        let secs = run.elapsed.as_secs_f64();
        Report {
            tool: "loadmux".into(),
            schema: SCHEMA,
            duration_s: secs,
            started_at_unix_s: run.started_at.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
            config: RunConfig {
                targets: plan.targets.iter().map(|t| t.to_string()).collect(),
                connections: plan.connections as u64,
                threads: plan.threads as u64,
                duration_s: plan.duration.as_secs_f64(),
                requests: plan.requests,
                rate: plan.rate,
                pipeline: plan.pipeline as u64,
                warmup_s: plan.warmup.as_secs_f64(),
                connect_rate: plan.connect_rate,
                message_bytes: plan.payload.max_len() as u64,
                framing: plan.framing.name(),
                mode: plan.mode.name().to_string(),
                shard: format!("{}/{}", plan.shard.index, plan.shard.count),
                mix_order: plan.mix.as_deref().map(|m| m.order().name().to_string()),
                mix_seed: plan.mix.as_deref().and_then(|m| match m.order() {
                    MixOrder::Random { seed } => Some(seed),
                    MixOrder::RoundRobin => None,
                }),
            },
            stopped_by: run.stop.name(),
            warnings: run
                .failed_threads
                .iter()
                .map(|name| format!("{name} panicked: the run was stopped early and may be missing what it measured"))
                .chain(diagnosis::stalled(c, plan))
                .chain(schedule::not_kept(run.totals.send_lag.percentile(99.0), c.sends_dropped))
                .collect(),
            connections: Connections {
                attempted: c.conns_attempted,
                established: c.conns_established,
                failed: c.conns_failed,
                max_open: run.totals.max_open,
                per_s: rate(c.conns_established, secs + run.warmup.as_secs_f64()),
            },
            requests: Requests {
                sent: c.requests_sent,
                completed: c.requests_completed,
                per_s: rate(c.requests_completed, secs),
                sends_dropped: c.sends_dropped,
            },
            bytes: Bytes {
                sent: c.bytes_sent,
                received: c.bytes_received,
                sent_per_s: rate(c.bytes_sent, secs),
                received_per_s: rate(c.bytes_received, secs),
            },
            warmup_s: run.warmup.as_secs_f64(),
            ramp_s: run.ramp.map(|d| d.as_secs_f64()),
            measure_began_after_ramp: run.ramp.is_some_and(|r| r <= run.warmup),
            latency_us: Latency::from_histogram(&run.totals.latency),
            // Closed loop records one latency histogram: there the two are the same.
            latency_uncorrected_us: Latency::from_histogram(match plan.send_interval {
                Some(_) => &run.totals.latency_uncorrected,
                None => &run.totals.latency,
            }),
            first_byte_us: Latency::from_histogram(&run.totals.first_byte),
            connect_latency_us: Latency::from_histogram(&run.totals.connect_latency),
            tls: plan.tls.is_some().then(|| {
                let info = run.totals.tls_info.as_ref();
                Tls {
                    handshake_latency_us: Latency::from_histogram(&run.totals.tls_handshake),
                    handshakes_full: c.tls_full,
                    handshakes_resumed: c.tls_resumed,
                    version: info.map(|i| i.version.to_string()),
                    cipher_suite: info.map(|i| i.cipher.to_string()),
                    alpn: info.and_then(|i| i.alpn.clone()),
                }
            }),
            send_lag_us: Latency::from_histogram(&run.totals.send_lag),
            errors: Errors {
                total: c.errors.total(),
                by_kind: c.errors.iter().map(|(k, n)| (k.name().to_string(), n)).collect(),
            },
            http_status: uses_framing(plan, &Framing::Http)
                .then(|| c.http_status.iter().enumerate().map(|(i, n)| (format!("{}xx", i + 1), *n)).collect()),
            resp: uses_framing(plan, &Framing::Resp).then(|| RespReplies {
                errors: c.resp_errors.iter().sum(),
                errors_by_word: c
                    .resp_errors
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(i, n)| (error_word_name(i).to_string(), *n))
                    .collect(),
            }),
            memcache: uses_framing(plan, &Framing::Memcache)
                .then(|| MemcacheReply::ALL.iter().map(|k| (k.name().to_string(), c.memcache[*k as usize])).collect()),
            timeline: timeline_rows(run, plan),
            rate_changes: run.rate_changes.clone(),
            connects_by_source: by_source(&plan.socket.sources, &run.totals.connects_by_source),
            websocket: plan.websocket.as_ref().map(|_| WebSocket {
                upgrade_latency_us: Latency::from_histogram(&run.totals.ws_upgrade),
                messages_received: c.ws_messages_received,
                close_codes: c
                    .ws_closes
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(i, n)| (WS_CLOSE_CODES.get(i).map_or("other".to_string(), |code| code.to_string()), *n))
                    .collect(),
            }),
            mix: plan.mix.as_deref().map_or_else(Vec::new, |m| mix::names_report(m, &run.totals.per_name, secs)),
        }
    }

    /// Reply counts by class, one `(label, counts)` line per protocol that has them
    /// (HTTP status classes, RESP error words, memcached replies): shared by the text
    /// summary and the HTML report.
    pub fn reply_lines(&self) -> Vec<(&'static str, String)> {
        let nonzero = |counts: &BTreeMap<String, u64>| {
            let parts: Vec<String> = counts.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k} {n}")).collect();
            if parts.is_empty() {
                "-".to_string()
            } else {
                parts.join(", ")
            }
        };
        let mut lines = Vec::new();
        if let Some(classes) = &self.http_status {
            lines.push(("http status", nonzero(classes)));
        }
        if let Some(resp) = &self.resp {
            let words = if resp.errors > 0 { format!(" ({})", nonzero(&resp.errors_by_word)) } else { String::new() };
            lines.push(("resp errors", format!("{}{words}", resp.errors)));
        }
        if let Some(replies) = &self.memcache {
            lines.push(("memcache", nonzero(replies)));
        }
        lines
    }

    /// The count for one error kind.
    pub fn errors_of(&self, kind: ErrorKind) -> u64 {
        self.errors.by_kind.get(kind.name()).copied().unwrap_or(0)
    }
}
