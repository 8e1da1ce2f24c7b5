//! `loadmux run`: flags for a load test.

use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

use super::{parse_duration, parse_size};

/// `--progress` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressArg {
    /// tty on a terminal, plain otherwise.
    Auto,
    /// One line, rewritten in place each second.
    Tty,
    /// One line per second.
    Plain,
    /// Nothing.
    None,
}

/// `--mode` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// Send a request, await its response, repeat (with -P N requests in flight).
    Request,
    /// Write the message as fast as the socket takes it; count what comes back.
    Stream,
    /// Send nothing; count the bytes that arrive.
    Recv,
    /// Connect, exchange -m if given, close, reconnect at once.
    Connect,
}

/// `--local-ports` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LocalPortsArg {
    /// loadmux where the kernel's port search would be slow, the kernel elsewhere.
    Auto,
    /// The kernel, at connect().
    Kernel,
    /// loadmux: each worker cycles through its slice of ip_local_port_range.
    Loadmux,
}

/// Flags of `loadmux run`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    loadmux run                                   # demo: loads the built-in echo server\n  \
    loadmux run 127.0.0.1:7001 -c 1000 -d 30s     # 1000 connections for 30 s\n  \
    loadmux run 127.0.0.1:6379 -m 'PING\\r\\n' -n 100000 --json r.json")]
pub struct RunArgs {
    /// Targets as HOST:PORT (IPv6 as `[ADDR]:PORT`). With none, loadmux starts its
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

    /// The message each request sends [default: hello\n]. Escapes: \r \n \t \0 \\ \xNN.
    /// Fields: {conn} (connection id), {seq} (request number on its connection),
    /// {worker}, {rand:N} (N digits). Repeat -m to send several messages in turn. In
    /// connect mode, giving -m makes each connection exchange one message.
    #[arg(short = 'm', long, conflicts_with_all = ["message_file", "message_size"])]
    pub message: Vec<String>,

    /// Send this file's bytes as the message, as they are (no escapes, no fields).
    #[arg(short = 'f', long, value_name = "PATH", conflicts_with = "message_size")]
    pub message_file: Option<PathBuf>,

    /// Send this many random bytes as the message (made once, e.g. 1k or 64KiB).
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub message_size: Option<usize>,

    /// Send this once after each connect, before the requests, and await its response
    /// (checked, not counted as a request): an AUTH, a handshake. Escapes and fields
    /// as for -m.
    #[arg(long, value_name = "TEXT")]
    pub first_message: Option<String>,

    /// What each connection does: request (send, await the response, repeat), stream
    /// (write as fast as the socket takes it, count what comes back), recv (send
    /// nothing, count what arrives), connect (connect, exchange -m if given, close,
    /// reconnect at once).
    #[arg(long, value_enum, default_value = "request")]
    pub mode: ModeArg,

    /// In connect mode, close with RST (SO_LINGER 0) instead of FIN: no TIME_WAIT on
    /// the client, but the server sees resets (see the README).
    #[arg(long)]
    pub linger0: bool,

    /// TCP_NODELAY: send small writes at once instead of waiting to coalesce them.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub nodelay: bool,

    /// Socket send buffer size (SO_SNDBUF), e.g. 64k or 4MiB.
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub sndbuf: Option<usize>,

    /// Socket receive buffer size (SO_RCVBUF), e.g. 64k or 4MiB.
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub rcvbuf: Option<usize>,

    /// Local addresses to connect from: an address, a range (127.0.0.2-127.0.0.9) or a
    /// CIDR block (10.1.0.0/29); repeat to add more. Each thread spreads its
    /// connections evenly over them, to get past one address's ephemeral ports. A
    /// loopback run too big for one address spreads over 127.0.0.x by itself.
    #[arg(long = "source", value_name = "IP|IP-IP|IP/BITS")]
    pub sources: Vec<crate::sources::SourceSpec>,

    /// Who picks each connection's source port. The kernel's search slows down as
    /// the ports to one destination fill up (quadratic past ~14 000 connections);
    /// loadmux's own choice costs the same for every connect. See docs/tuning.md.
    #[arg(long, value_enum, default_value = "auto", value_name = "WHO")]
    pub local_ports: LocalPortsArg,

    /// How a response ends: echo (the request's bytes come back and are compared).
    #[arg(long, default_value = "echo")]
    pub expect: String,

    /// Largest response accepted (e.g. 64k, 4MiB); a bigger one is a protocol error
    /// and its connection closes, so memory stays bounded whatever a server sends.
    #[arg(long, default_value = "1MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_response: usize,

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

    /// The live line on stderr: tty (one line updated in place), plain (a line per
    /// second, for logs), none, or auto (tty when stderr is a terminal, else plain).
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressArg,

    /// Run only this process's share of a larger test: shard I of N (1-based). It gets
    /// ⌊c/N⌋ connections (the remainder goes to the lowest shards), R/N of the rate and
    /// of -n, and connection ids ({conn}) that are unique across all shards.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,

    /// Wait until this wall-clock instant before starting (RFC 3339 such as
    /// 2026-11-24T12:00:00Z, or Unix seconds), so that shards on many machines start
    /// together.
    #[arg(long, value_name = "TIME")]
    pub start_at: Option<String>,

    /// No live progress line on stderr (same as --progress none).
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Write the JSON report (schema 1) to PATH; `-` means stdout.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,

    /// Write the per-second timeline as CSV to PATH.
    #[arg(long, value_name = "PATH")]
    pub csv: Option<PathBuf>,

    /// Write a self-contained HTML report with charts to PATH.
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,

    /// Find the highest rate at which this threshold holds (e.g. 'p99<10ms'): a
    /// closed-loop probe, then a binary search over -r steps of --duration each.
    #[arg(long, value_name = "EXPR", conflicts_with_all = ["rate", "requests"])]
    pub rate_search: Option<String>,

    /// A threshold checked at the end, e.g. p99<10ms, errors<0.1%, rps>5000,
    /// connect_p99<5ms. Repeatable; any failure makes the exit code 1.
    #[arg(long = "assert", value_name = "EXPR")]
    pub asserts: Vec<String>,
}
