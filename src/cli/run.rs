//! `loadmux run`: flags for a load test.

use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

use super::parse_duration;

/// Flags of `loadmux run`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    loadmux run                                   # demo: loads the built-in echo server\n  \
    loadmux run 127.0.0.1:7001 -c 1000 -d 30s     # 1000 connections for 30 s\n  \
    loadmux run 127.0.0.1:6379 -m 'PING\\r\\n' -n 100000 --json r.json")]
pub struct RunArgs {
    /// Targets as HOST:PORT (IPv6 as [ADDR]:PORT). With none, loadmux starts its
    /// built-in echo server on 127.0.0.1 and loads that.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Connections to keep open, spread across threads and targets.
    #[arg(short = 'c', long, default_value_t = 50)]
    pub connections: u64,

    /// Worker threads, each with its own event loop [default: available cores].
    #[arg(short = 't', long)]
    pub threads: Option<u64>,

    /// How long to run (a bare number is seconds: 10, 10s, 500ms, 2m).
    #[arg(short = 'd', long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Stop after exactly this many requests have completed (or at --duration).
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,

    /// Open loop: send R requests per second in total, on a fixed schedule, and
    /// measure latency from each request's intended send time (wrk2's correction for
    /// coordinated omission). Without it, each connection sends as fast as responses
    /// come back (closed loop).
    #[arg(short = 'r', long, value_name = "R")]
    pub rate: Option<f64>,

    /// Requests in flight per connection (pipelining).
    #[arg(short = 'P', long, default_value_t = 1, value_name = "N")]
    pub pipeline: u32,

    /// Open at most R new connections per second in total [default: as fast as the
    /// server accepts, with at most 256 connects in flight per thread].
    #[arg(long, value_name = "R")]
    pub connect_rate: Option<f64>,

    /// Run this long before measuring: traffic flows but is left out of the summary
    /// (the timeline keeps it, marked ramp or warmup).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// The message each request sends. Escapes: \r \n \t \0 \\ \xNN.
    #[arg(short = 'm', long, default_value = "hello\\n")]
    pub message: String,

    /// How a response ends: echo (the request's bytes come back and are compared).
    #[arg(long, default_value = "echo")]
    pub expect: String,

    /// Give up on a connect after this long (counted as connect_timeout).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Give up on a response after this long (counted as response_timeout).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Reconnect backoff as MIN..MAX: the wait doubles from MIN after each failed
    /// attempt in a row, up to MAX. A single value waits that long every time.
    #[arg(long, default_value = "10ms..1s")]
    pub reconnect_backoff: String,

    /// Do not reopen connections that fail or close.
    #[arg(long)]
    pub no_reconnect: bool,

    /// No live progress line on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Write the JSON report (schema 1) to PATH; `-` means stdout.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
}
