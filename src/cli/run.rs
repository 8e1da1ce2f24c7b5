//! `loadmux run`: its flags, and their conversion into a checked [`Plan`] plus the
//! settings that belong to the command rather than to the engine (outputs,
//! thresholds, the live line, `--start-at`).

use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::mix_spec::{self, Syntax};
use super::outputs::Outputs;
use crate::assert::Threshold;
use crate::engine::stages::{self, parse_stages, ConnStages, RateSchedule};
use crate::framing::Framing;
use crate::mix::{Mix, MixOrder};
use crate::payload::{self, Payload, Template};
use crate::plan::{
    self, err, Backoff, Mode, Plan, PlanError, PortChoice, Shard, SocketOptions, FD_OVERHEAD, STREAM_BATCH_BYTES,
};
use crate::replay::{Recording, ReplayScript};
use crate::session::websocket::WsSettings;
use crate::transport::{Target, TlsClient, TlsSettings, TlsVersion};
use crate::units::{parse_duration, parse_rate, parse_size, parse_start_at, MAX_DURATION, MAX_RATE, MAX_SIZE};

use super::ws_args::{split_ws_url, WsArgs, WsUrl};

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

/// `--mix-order` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MixOrderArg {
    /// Random in proportion to the weights (reproducible with --seed).
    Random,
    /// Weighted round robin: each connection cycles through the names in turn.
    RoundRobin,
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
    loadmux run 127.0.0.1:6379 -m 'PING\\r\\n' -n 100000 --json r.json\n  \
    loadmux run tls://127.0.0.1:7443 --cacert ca.pem -c 200   # TLS\n  \
    loadmux run unix:/run/redis.sock -m 'PING\\r\\n' --expect line\n  \
    loadmux run ws://127.0.0.1:8765/chat -m 'hi {seq}' --expect ws   # WebSocket\n\n\
    Error kinds (each failed connection counts under exactly one, in every report):\n  \
    connect_refused      the peer answered the SYN with RST: nothing listens there\n                       \
    (Unix: no socket file, or its listen queue is full)\n  \
    connect_timeout      the connect did not complete within --connect-timeout\n  \
    connect_unreachable  no route to the network or host\n  \
    addr_unavailable     no local address or ephemeral port was free\n  \
    fd_limit             out of file descriptors (EMFILE/ENFILE)\n  \
    reset                the peer reset an established connection\n  \
    broken_pipe          we wrote to a connection the peer had closed\n  \
    response_timeout     a response did not arrive within --timeout\n  \
    eof                  the peer closed while a response was due\n  \
    protocol             the response broke the framing, failed the echo check, or\n                       \
    passed --max-response\n  \
    tls_handshake        the TLS handshake failed: certificate rejected, an alert,\n                       \
    no common version, a plaintext server, the peer closing\n  \
    tls                  a TLS record or alert failure after the handshake\n  \
    other                anything else (RUST_LOG=loadmux=debug names it)\n\n\
    Exit codes: 0 done, 1 an --assert failed, 2 bad usage (nothing run), 3 a loadmux\n\
    thread panicked (report still written), 130/143 SIGINT/SIGTERM (report still written).")]
pub struct RunArgs {
    /// Targets as HOST:PORT (an IPv6 address in square brackets), tls://HOST:PORT or
    /// https://HOST:PORT (TLS, as --tls; https defaults to port 443),
    /// ws://HOST:PORT/PATH or wss://HOST:PORT/PATH (WebSocket, as --ws; ports 80 and
    /// 443 by default), or unix:/PATH (a Unix stream socket). With none, loadmux starts its built-in echo server on
    /// 127.0.0.1 (over TLS with --tls) and loads that.
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
    #[arg(short = 'r', long, value_name = "R", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Requests in flight per connection (pipelining).
    #[arg(short = 'P', long, default_value_t = 1, value_name = "N")]
    pub pipeline: u32,

    /// Open at most R new connections per second in total [default: as fast as the
    /// server accepts, with at most 256 connects in flight per thread].
    #[arg(long, value_name = "R", value_parser = parse_rate)]
    pub connect_rate: Option<f64>,

    /// Run this long before measuring: traffic flows but is left out of the summary
    /// (the timeline keeps it, marked ramp or warmup).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// The message each request sends [default: hello\n]. Escapes: \r \n \t \0 \\ \xNN.
    /// Fields: {conn} (connection id), {seq} (request number on its connection),
    /// {worker}, {rand:N} (N digits), {value:N} (N bytes of letters and digits).
    /// Repeat -m to send several messages in turn. In connect mode, giving -m makes
    /// each connection exchange one message. NAME=WEIGHT:MESSAGE (e.g. -m
    /// get=3:'GET ...' -m put=1:'PUT ...') makes a request mix: see --mix.
    #[arg(short = 'm', long, conflicts_with_all = ["message_file", "message_size"])]
    pub message: Vec<String>,

    /// Send each -m (and --first-message) as a Redis command: its space-separated
    /// words ("..." quotes one with spaces) become a RESP array of bulk strings, e.g.
    /// -m 'SET k{conn} {value:1024}'. Use with --expect resp.
    #[arg(long, conflicts_with_all = ["message_file", "message_size"])]
    pub resp: bool,

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

    /// In connect mode (and at the end of each --replay session), close with RST
    /// (SO_LINGER 0) instead of FIN: no TIME_WAIT on the client, but the server sees
    /// resets (see the README).
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

    /// The --first-message's answer ends as this framing says (same values as
    /// --expect) [default: the --expect framing]. E.g. memcached's `version\r\n` is
    /// answered by one line while its gets end with END.
    #[arg(long, value_name = "FRAMING", requires = "first_message")]
    pub first_expect: Option<String>,

    /// Speak TLS to every target (as a tls:// target does).
    #[arg(long, help_heading = "TLS")]
    pub tls: bool,

    /// The server name to send (SNI) and to verify the certificate against
    /// [default: each target's host].
    #[arg(long, value_name = "NAME", help_heading = "TLS")]
    pub sni: Option<String>,

    /// Accept any server certificate (signatures are still checked). Prints a warning.
    #[arg(short = 'k', long, help_heading = "TLS")]
    pub insecure: bool,

    /// Trust the CA certificates in this PEM file instead of the system's.
    #[arg(long, value_name = "PEM", help_heading = "TLS")]
    pub cacert: Option<PathBuf>,

    /// Client certificate chain (PEM), for servers that ask for one; needs --key.
    #[arg(long, value_name = "PEM", requires = "key", help_heading = "TLS")]
    pub cert: Option<PathBuf>,

    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "PEM", requires = "cert", help_heading = "TLS")]
    pub key: Option<PathBuf>,

    /// ALPN protocols to offer, comma-separated, e.g. http/1.1.
    #[arg(long, value_name = "LIST", value_delimiter = ',', help_heading = "TLS")]
    pub alpn: Vec<String>,

    /// Use only this TLS version: 1.2 or 1.3 [default: either].
    #[arg(long, value_name = "VERSION", help_heading = "TLS")]
    pub tls_version: Option<String>,

    /// Resume TLS sessions on reconnect (session tickets / IDs), as browsers do; the
    /// report counts full and resumed handshakes.
    #[arg(long, help_heading = "TLS")]
    pub tls_resume: bool,

    /// How a response ends: echo (the request's own bytes come back, compared byte by
    /// byte), line (up to and including \n), delim:STR (up to and including STR,
    /// escapes allowed), bytes:N (exactly N bytes), len:u16be, len:u32be or len:u32le
    /// (a length prefix, then that many body bytes), http (an HTTP/1.1 response:
    /// Content-Length, chunked, or until close), resp (a Redis reply, RESP2 or RESP3),
    /// memcache (a memcached text reply), ws (one complete WebSocket message),
    /// replay (as long as the recorded answer),
    /// none (nothing awaited: stream and recv modes). Default: echo, or replay with
    /// --replay.
    #[arg(long, value_name = "FRAMING")]
    pub expect: Option<String>,

    /// Replay a recording made by `loadmux record`: each connection plays one recorded
    /// session (round-robin), step by step, and starts it again on a new connection
    /// when it is over.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["message", "message_file", "message_size", "first_message"])]
    pub replay: Option<PathBuf>,

    /// --replay: play think times this many times faster (2 = half the recorded pauses,
    /// 0 = no pauses). Ignored under -r, whose schedule paces the steps.
    #[arg(long, default_value_t = 1.0, value_name = "X", requires = "replay")]
    pub replay_speed: f64,

    /// --replay: fill in {conn}, {seq}, {worker} and {rand:N} in the recorded requests,
    /// so that keys differ per connection.
    #[arg(long, requires = "replay")]
    pub replay_template: bool,

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

    /// Open loop in stages, as LENGTH:RATE,...: the rate ramps linearly from each
    /// stage's start to its RATE over its LENGTH, starting from -r (or 0). The stages
    /// set the duration. E.g. 30s:1000,1m:5000,30s:5000,20s:0.
    #[arg(
        long,
        value_name = "STAGES",
        help_heading = "Shaping the load",
        conflicts_with_all = ["duration", "rate_search"]
    )]
    pub stages: Option<String>,

    /// Live control: auto (in open loop on a terminal, with the live line on, the
    /// keys + and - change the rate by 10% and p pauses or resumes), stdin (read
    /// lines from stdin: rate N, pause, resume, stop), or none.
    #[arg(long, value_enum, default_value = "auto", value_name = "FROM", help_heading = "Shaping the load")]
    pub control: ControlArg,

    /// Closed loop in stages, as LENGTH:CONNECTIONS,...: the number of open
    /// connections ramps linearly from 0 to each stage's CONNECTIONS over its LENGTH
    /// (opening as --connect-rate allows, closing gracefully: requests in flight are
    /// answered first). The stages set the duration, and their most sets -c.
    /// E.g. 10s:200,10s:20.
    #[arg(
        long,
        value_name = "STAGES",
        help_heading = "Shaping the load",
        conflicts_with_all = ["duration", "connections", "rate", "stages", "rate_search", "warmup"]
    )]
    pub conn_stages: Option<String>,

    /// WebSocket: --ws, -H, --ws-protocol, --ws-binary (`ws_args.rs`).
    #[command(flatten)]
    pub websocket: WsArgs,
    /// A request mix: a TOML file (JSON if it ends in .json) of `[[request]]` entries,
    /// each with name, weight (1 to 1000000), message (sent as is) or template (-m
    /// syntax), and optionally expect (its own framing). Each request sends one
    /// entry; reports break the figures down per name, and --assert takes
    /// NAME.p99<5ms. The short form is -m NAME=WEIGHT:MESSAGE, repeated. At most 64
    /// names. See docs/mix.md.
    #[arg(long, value_name = "FILE", help_heading = "Request mix",
          conflicts_with_all = ["message", "message_file", "message_size", "replay"])]
    pub mix: Option<PathBuf>,

    /// How a mix picks each request's name: random (in proportion to the weights,
    /// reproducible with --seed) or round-robin (each connection cycles through the
    /// weighted names; exact shares).
    #[arg(long, value_enum, default_value = "random", value_name = "ORDER", help_heading = "Request mix")]
    pub mix_order: MixOrderArg,

    /// Seed of a random mix: the same seed picks the same name for the same request
    /// of the same connection [default: a new seed each run].
    #[arg(long, value_name = "N", help_heading = "Request mix")]
    pub seed: Option<u64>,
}

/// `--control` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ControlArg {
    /// Keys on a terminal (stdin is a TTY and the run is open loop), else none.
    Auto,
    /// Lines on stdin: rate N, pause, resume, stop.
    Stdin,
    /// No live control.
    None,
}

/// The most connections a `--conn-stages` stage may ask for (the fd limit decides
/// what a machine really allows).
const MAX_CONN_STAGE: u64 = 10_000_000;

/// How the live line is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Rewritten in place on a terminal.
    Tty,
    /// One line per second.
    Plain,
    /// Not at all.
    None,
}

/// Everything `loadmux run` does, checked: the engine's [`Plan`] and what the
/// command does around it.
#[derive(Debug)]
pub struct RunCommand {
    /// What the engine runs. Its targets are empty when the built-in echo server
    /// is to be started.
    pub plan: Plan,
    /// How to show the live line on stderr.
    pub progress: Progress,
    /// Wall-clock instant to start at.
    pub start_at: Option<SystemTime>,
    /// Report files to write.
    pub outputs: Outputs,
    /// `--assert` thresholds, checked at the end.
    pub thresholds: Vec<Threshold>,
    /// `--rate-search`: the threshold whose highest passing rate is searched for.
    pub rate_search: Option<Threshold>,
    /// Where live control commands come from, if anywhere.
    pub control: Control,
}

/// Where live control commands come from (`--control`, decided).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Nowhere.
    None,
    /// Keys on the terminal (stdin in raw mode).
    Keys,
    /// Lines on stdin.
    Stdin,
}

impl RunArgs {
    /// Checks every flag and builds the command: the plan plus outputs,
    /// thresholds, progress and `--start-at`.
    pub fn to_command(&self) -> Result<RunCommand, PlanError> {
        let mut plan = self.to_plan()?;
        let open_loop = plan.send_interval.is_some();
        // Keys only for someone watching: stdin and stderr on a terminal and the live
        // line on (so a scripted or quiet run, e.g. under a test harness that passes
        // its terminal on, never touches the terminal's settings).
        let watched = std::io::stdin().is_terminal() && std::io::stderr().is_terminal() && !self.quiet;
        let control = match self.control {
            ControlArg::Stdin => Control::Stdin,
            ControlArg::Auto
                if open_loop && watched && self.progress != ProgressArg::None && self.rate_search.is_none() =>
            {
                Control::Keys
            }
            ControlArg::Auto | ControlArg::None => Control::None,
        };
        if self.rate_search.is_some() && control == Control::Stdin {
            return err("--control stdin changes one run's rate; --rate-search runs many: give one");
        }
        // A run whose rate can change follows a rate schedule instead of the fixed gap.
        if control != Control::None && plan.rate_shape.is_none() {
            plan.rate_shape = plan.rate.map(|rate| Arc::new(RateSchedule::constant(rate)));
        }
        let start_at = match &self.start_at {
            Some(text) => Some(parse_start_at(text).map_err(|e| PlanError(format!("--start-at: {e}")))?),
            None => None,
        };
        // Shards start together within minutes or hours; a year ahead is a typo.
        if start_at.is_some_and(|at| at.duration_since(SystemTime::now()).is_ok_and(|wait| wait > MAX_DURATION)) {
            return err(format!(
                "--start-at {}: more than a year ahead (allowed: up to 365 days from now)",
                self.start_at.as_deref().unwrap_or_default()
            ));
        }
        let outputs = Outputs { json: self.json.clone(), csv: self.csv.clone(), html: self.html.clone() };
        outputs.check()?;
        let thresholds = super::verdict::parse_thresholds(&self.asserts)?;
        // A NAME.METRIC threshold must name an entry of the mix: say so before the run.
        for t in &thresholds {
            let Some(name) = t.mix_name() else { continue };
            let names: Vec<&str> = plan.mix.iter().flat_map(|m| m.entries().iter().map(|e| e.name.as_str())).collect();
            if !names.contains(&name) {
                return err(match names.is_empty() {
                    true => format!("--assert '{t}': '{name}' is not a mix name, and this run has no mix"),
                    false => format!("--assert '{t}': '{name}' is not a mix name (the names: {})", names.join(", ")),
                });
            }
        }
        let rate_search = match &self.rate_search {
            Some(e) => Some(Threshold::parse(e).map_err(|e| PlanError(e.replace("--assert", "--rate-search")))?),
            None => None,
        };
        let progress = match (self.quiet, self.progress) {
            (true, _) | (_, ProgressArg::None) => Progress::None,
            (_, ProgressArg::Tty) => Progress::Tty,
            (_, ProgressArg::Plain) => Progress::Plain,
            (_, ProgressArg::Auto) if std::io::stderr().is_terminal() => Progress::Tty,
            (_, ProgressArg::Auto) => Progress::Plain,
        };
        Ok(RunCommand { plan, progress, start_at, outputs, thresholds, rate_search, control })
    }

    /// Checks and resolves the flags that shape the load itself. Also raises
    /// RLIMIT_NOFILE as far as allowed and fails if it is still too low for the
    /// connections asked for.
    pub fn to_plan(&self) -> Result<Plan, PlanError> {
        let conn_stages = self.conn_stages()?;
        let total_connections = conn_stages.as_ref().map_or(self.connections, |stages| stages.most());
        if total_connections == 0 {
            return err("-c/--connections must be at least 1");
        }
        let shard = match &self.shard {
            Some(text) => Shard::parse(text).map_err(|e| PlanError(format!("--shard: {e}")))?,
            None => Shard::WHOLE,
        };
        let (my_connections, first_conn_id) = shard.share(total_connections);
        if my_connections == 0 {
            return err(format!(
                "--shard {}/{}: -c {} leaves this shard no connection",
                shard.index, shard.count, total_connections
            ));
        }
        let connections =
            usize::try_from(my_connections).map_err(|_| PlanError("-c/--connections is too large".into()))?;
        let threads = match self.threads {
            Some(0) => return err("-t/--threads must be at least 1"),
            Some(t) => usize::try_from(t).unwrap_or(usize::MAX),
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
        .min(connections);
        if self.duration.is_zero() {
            return err("-d/--duration must be longer than 0");
        }
        let stages = match &self.stages {
            Some(text) => Some(parse_stages(text, MAX_RATE, "rate").map_err(|e| PlanError(format!("--stages: {e}")))?),
            None => None,
        };
        if self.requests == Some(0) {
            return err("-n/--requests must be at least 1");
        }
        if self.max_response == 0 {
            return err("--max-response must be at least 1 byte");
        }
        if self.connect_timeout.is_zero() || self.timeout.is_zero() {
            return err("--connect-timeout and --timeout must be longer than 0");
        }
        // The mix, if any; `Plan::with_mix` below puts it in place of the payload.
        let mix = self.mix()?;
        let payload = self.payload()?;
        // parse_rate has already checked that both rates are finite and positive.
        let rate = self.rate.map(|r| r / shard.count as f64);
        let connect_rate = self.connect_rate.map(|r| r / shard.count as f64);
        let requests = match self.requests {
            Some(n) => match shard.share(n).0 {
                0 => {
                    return err(format!("--shard {}/{}: -n {n} leaves this shard no request", shard.index, shard.count))
                }
                mine => Some(mine),
            },
            None => None,
        };
        if self.pipeline == 0 || self.pipeline > 1024 {
            return err("-P/--pipeline must be between 1 and 1024");
        }
        let pipeline = self.pipeline as usize;
        let mode = match self.mode {
            ModeArg::Request => Mode::Request,
            ModeArg::Stream => Mode::Stream,
            ModeArg::Recv => Mode::Recv,
            ModeArg::Connect => Mode::Connect {
                exchange: !self.message.is_empty()
                    || self.message_file.is_some()
                    || self.message_size.is_some()
                    || self.mix.is_some(),
            },
        };
        if mix.is_some() && matches!(mode, Mode::Stream | Mode::Recv) {
            return err(format!("a request mix applies to request and connect modes, not --mode {}", mode.name()));
        }
        if mode != Mode::Request
            && (pipeline > 1 || self.rate.is_some() || self.rate_search.is_some() || stages.is_some())
        {
            return err(format!(
                "-P, -r, --stages and --rate-search apply to request mode, not --mode {}",
                mode.name()
            ));
        }
        if self.requests.is_some() && matches!(mode, Mode::Stream | Mode::Recv | Mode::Connect { exchange: false }) {
            return err(format!("-n counts requests, and --mode {} sends none; use -d", mode.name()));
        }
        // A mix renders every request from its entry (the fast path of one shared
        // message would not know which name it sent).
        let message: Vec<u8> = match mix {
            Some(_) => Vec::new(),
            None => payload.single_static().map(<[u8]>::to_vec).unwrap_or_default(),
        };
        if mode == Mode::Stream && message.is_empty() {
            return err("--mode stream sends one fixed message: several -m or {fields} apply to request mode");
        }
        if self.linger0 && !matches!(mode, Mode::Connect { .. }) && self.replay.is_none() {
            return err("--linger0 applies to --mode connect and --replay");
        }
        let expect = self.expect.as_deref().unwrap_or(if self.replay.is_some() { "replay" } else { "echo" });
        let framing = Framing::parse(expect).map_err(|e| PlanError(format!("--expect: {e}")))?;
        let replay = self.replay_script(mode, &framing)?;
        // Replayed requests are rendered per step, never the shared fixed message.
        let message = if replay.is_some() { Vec::new() } else { message };
        let first_framing = match &self.first_expect {
            Some(spec) => Some(Framing::parse(spec).map_err(|e| PlanError(format!("--first-expect: {e}")))?),
            None => None,
        };
        // A response the framing needs that is larger than --max-response would fail
        // every single time: say so now rather than after a run of protocol errors.
        let response_len = match (&framing, &first_framing) {
            (_, Some(Framing::Bytes(n))) if *n > self.max_response => {
                Some((*n, format!("--first-expect {}", self.first_expect.as_deref().unwrap_or_default())))
            }
            (Framing::Bytes(n), _) => Some((*n, format!("--expect {expect}"))),
            // A fixed message's echo is exactly as long as the message.
            (Framing::Echo, _) if !message.is_empty() => {
                Some((message.len(), "--expect echo of the message".to_string()))
            }
            _ => None,
        };
        // Likewise a mix entry's own fixed-size framing.
        let entry_len = mix.as_ref().and_then(|mix| {
            mix.entries().iter().find_map(|e| match e.framing {
                Some(Framing::Bytes(n)) if n > self.max_response => {
                    Some((n, format!("mix entry '{}': expect", e.name)))
                }
                _ => None,
            })
        });
        if let Some((len, what)) = response_len.or(entry_len).filter(|(len, _)| *len > self.max_response) {
            return err(format!(
                "{what} needs {len}-byte responses, more than --max-response {} (allowed: up to --max-response)",
                self.max_response
            ));
        }
        // The batch holds P copies of the message; keep it within the size limit
        // every other buffer has.
        if message.len().saturating_mul(pipeline) > MAX_SIZE {
            return err(format!(
                "-P {pipeline} copies of a {}-byte message exceed 1GiB (allowed: message size × -P up to 1GiB)",
                message.len()
            ));
        }
        let reconnect = if self.no_reconnect {
            None
        } else {
            Some(Backoff::parse(&self.reconnect_backoff).map_err(|e| PlanError(format!("--reconnect-backoff: {e}")))?)
        };
        let parsed = self.targets.iter().map(|t| parse_target(t)).collect::<Result<Vec<_>, _>>()?;
        let tls_targets = parsed.iter().filter(|t| t.tls).count();
        if tls_targets > 0 && tls_targets < parsed.len() && !self.tls {
            return err("the targets mix tls:// and plain ones; give --tls to speak TLS to all of them");
        }
        let targets: Vec<Target> = parsed.iter().map(|t| t.target.clone()).collect();
        let websocket = self.websocket_settings(&parsed, &framing)?;
        let ws_entry = mix.as_ref().and_then(|m| m.entries().iter().find(|e| e.framing == Some(Framing::Ws)));
        if let (Some(entry), None) = (ws_entry, &websocket) {
            return err(format!(
                "mix entry '{}': expect ws needs a WebSocket session: add --ws, or use a ws:// target",
                entry.name
            ));
        }
        let sources: Vec<std::net::IpAddr> = self.sources.iter().flat_map(|spec| spec.0.iter().copied()).collect();
        for ip in &sources {
            if targets.iter().any(|t| matches!(t, Target::Tcp(addr) if addr.is_ipv4() != ip.is_ipv4())) {
                return err(format!("--source {ip}: the targets use the other IP family"));
            }
        }
        let hosts: Vec<String> = parsed.into_iter().map(|t| t.host).collect();
        let tls = if self.tls || tls_targets > 0 {
            Some(Arc::new(self.tls_client(&hosts)?))
        } else {
            if let Some(flag) = self.tls_only_flag() {
                return err(format!("{flag} applies to TLS: add --tls, or use a tls:// target"));
            }
            None
        };
        // The built-in server runs in this process, so it needs an fd per connection too.
        let fds_per_conn = if targets.is_empty() { 2 } else { 1 };
        plan::ensure_fd_limit(my_connections.saturating_mul(fds_per_conn) + FD_OVERHEAD, my_connections)?;
        let plan = Plan {
            targets,
            tls,
            connections,
            threads,
            duration: match (&stages, &conn_stages) {
                (Some(stages), _) => stages::total_length(stages),
                (None, Some(conn)) => stages::total_length(&conn.stages),
                (None, None) => self.duration,
            },
            first_conn_id,
            requests,
            warmup: self.warmup,
            send_interval: None,
            rate: None,
            connect_rate,
            pipeline,
            batch: match mode {
                Mode::Stream => message.repeat(STREAM_BATCH_BYTES.div_ceil(message.len())).into(),
                _ => message.repeat(pipeline).into(),
            },
            payload: Arc::new(payload),
            mode,
            socket: SocketOptions {
                nodelay: self.nodelay,
                sndbuf: self.sndbuf,
                rcvbuf: self.rcvbuf,
                linger0: self.linger0,
                sources,
                ports: match self.local_ports {
                    LocalPortsArg::Auto => PortChoice::Auto,
                    LocalPortsArg::Kernel => PortChoice::Kernel,
                    LocalPortsArg::Loadmux => PortChoice::Loadmux,
                },
            },
            message: message.into(),
            replay,
            framing,
            first_framing,
            max_response: self.max_response,
            connect_timeout: self.connect_timeout,
            response_timeout: self.timeout,
            reconnect,
            shard,
            rate_shape: None,
            conn_stages: conn_stages.map(Arc::new),
            websocket,
            mix: None,
        };
        let plan = match mix {
            Some(mix) => plan.with_mix(mix),
            None => plan,
        };
        match stages {
            Some(stages) => Ok(shaped(plan, self.rate.unwrap_or(0.0), &stages)),
            None => Ok(plan.with_rate(rate)),
        }
    }

    /// Parses `--conn-stages`: whole numbers of connections, at least one somewhere.
    fn conn_stages(&self) -> Result<Option<ConnStages>, PlanError> {
        let Some(text) = &self.conn_stages else { return Ok(None) };
        let bad = |e: String| PlanError(format!("--conn-stages: {e}"));
        let stages = parse_stages(text, MAX_CONN_STAGE as f64, "number of connections").map_err(bad)?;
        if let Some(stage) = stages.iter().find(|s| s.target.fract() != 0.0) {
            return Err(bad(format!("{} is not a whole number of connections", stage.target)));
        }
        let stages = ConnStages { stages };
        if stages.most() == 0 {
            return Err(bad("no stage asks for a connection (allowed: a stage with 1 or more)".into()));
        }
        Ok(Some(stages))
    }

    /// The request mix from `--mix FILE` or named `-m` values, if either is given.
    fn mix(&self) -> Result<Option<Mix>, PlanError> {
        let syntax = if self.resp { Syntax::Resp } else { Syntax::Plain };
        let order = match self.mix_order {
            // No seed given: a new one each run, from the process's random state.
            MixOrderArg::Random => MixOrder::Random { seed: self.seed.unwrap_or_else(|| fastrand::u64(..)) },
            MixOrderArg::RoundRobin => MixOrder::RoundRobin,
        };
        if let Some(path) = &self.mix {
            return mix_spec::from_file(path, syntax, order).map(Some);
        }
        if mix_spec::any_named(&self.message) {
            return mix_spec::from_messages(&self.message, syntax, order).map(Some);
        }
        if self.seed.is_some() || self.mix_order != MixOrderArg::Random {
            return err("--seed and --mix-order apply to a request mix (--mix FILE, or -m NAME=WEIGHT:MESSAGE)");
        }
        Ok(None)
    }

    /// Builds the payload from -m (repeatable), -f, --message-size and --first-message.
    fn payload(&self) -> Result<Payload, PlanError> {
        // --resp: each line becomes a RESP array command (as redis-benchmark sends).
        let template = |flag: &str, text: &str| {
            let parsed = match self.resp {
                true => payload::unescape(text).and_then(|line| Template::parse_resp(&line)),
                false => payload::unescape(text).and_then(Template::parse),
            };
            parsed.map_err(|e| PlanError(format!("{flag}: {e}")))
        };
        let messages = if let Some(path) = &self.message_file {
            let bytes = std::fs::read(path).map_err(|e| PlanError(format!("-f {}: {e}", path.display())))?;
            if bytes.is_empty() {
                return err(format!("-f {}: the file is empty", path.display()));
            }
            vec![Template::raw(bytes)]
        } else if let Some(size) = self.message_size {
            if size == 0 {
                return err("--message-size must be at least 1 byte");
            }
            vec![Template::raw(payload::random_bytes(size))]
        } else if self.message.is_empty() || mix_spec::any_named(&self.message) {
            // Named -m make a mix, which `Plan::with_mix` puts in place of this.
            vec![Template::raw(b"hello\n".to_vec())]
        } else {
            self.message.iter().map(|m| template("-m", m)).collect::<Result<Vec<_>, _>>()?
        };
        let first = self.first_message.as_deref().map(|m| template("--first-message", m)).transpose()?;
        Payload::new(messages, first).map_err(|e| PlanError(format!("-m: {e}")))
    }
}

/// `plan` in open loop following `stages` (rates for the whole test) from
/// `start_rate`: this shard takes its share of every stage, and the warm-up runs at
/// the starting rate before the first stage begins. `rate` and `send_interval` are
/// set from the highest rate, which sizes the workers' wake-up batching.
fn shaped(plan: Plan, start_rate: f64, stages: &[stages::Stage]) -> Plan {
    let share = 1.0 / plan.shard.count as f64;
    let peak = stages.iter().map(|s| s.target).fold(start_rate, f64::max) * share;
    let schedule = RateSchedule::ramps(start_rate, plan.warmup, stages).scaled(share);
    let mut plan = plan.with_rate(Some(peak));
    plan.rate_shape = Some(Arc::new(schedule));
    plan
}

/// A target from the command line, parsed.
struct ParsedTarget {
    target: Target,
    /// The host as written (a name or an address): the TLS server name by default.
    host: String,
    /// Written as `tls://`, `https://` or `wss://`.
    tls: bool,
    /// Written as `ws://` or `wss://`: its `HOST:PORT` and path.
    ws: Option<WsUrl>,
    /// `HOST:PORT` as written (the default WebSocket `Host` header).
    host_port: String,
}

/// Parses `HOST:PORT`, `tls://HOST:PORT`, `https://HOST[:PORT][/PATH]` (the path is
/// not used: requests come from -m) or `unix:/PATH`, resolving host names once.
fn parse_target(text: &str) -> Result<ParsedTarget, PlanError> {
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() {
            return err(format!("target '{text}' has no path (as in unix:/run/app.sock)"));
        }
        let target = Target::Unix(path.into());
        return Ok(ParsedTarget {
            target,
            host: "localhost".into(),
            tls: false,
            ws: None,
            host_port: "localhost".into(),
        });
    }
    let mut ws_path = None;
    let (rest, tls, default_port) = if let Some(rest) = text.strip_prefix("tls://") {
        (rest, true, None)
    } else if let Some(rest) = text.strip_prefix("https://") {
        (rest.split('/').next().unwrap_or(rest), true, Some(443))
    } else if let Some((scheme, rest)) = text.split_once("://").filter(|(s, _)| *s == "ws" || *s == "wss") {
        let (authority, path) = split_ws_url(rest);
        ws_path = Some(path);
        (authority, scheme == "wss", Some(if scheme == "wss" { 443 } else { 80 }))
    } else if text.contains("://") {
        return err(format!("target '{text}': only tls://, https://, ws://, wss:// and unix: are understood"));
    } else {
        (text, false, None)
    };
    let with_port = match default_port {
        Some(port) if !has_port(rest) => format!("{rest}:{port}"),
        _ => rest.to_string(),
    };
    let addr = plan::resolve(&with_port)?;
    let host = match with_port.rsplit_once(':') {
        Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']').to_string(),
        None => with_port.clone(),
    };
    let ws = ws_path.map(|path| WsUrl { authority: rest.to_string(), path });
    Ok(ParsedTarget { target: Target::Tcp(addr), host, tls, ws, host_port: rest.to_string() })
}

/// Whether `HOST:PORT` text has its port (an IPv6 address alone has colons too).
fn has_port(text: &str) -> bool {
    match text.rsplit_once(':') {
        Some((host, _)) => !host.is_empty() && (!host.contains(':') || host.ends_with(']')),
        None => false,
    }
}

impl RunArgs {
    /// The TLS client for `--tls` and its flags: certificates are loaded now, so a bad
    /// file is a one-line error before any socket opens.
    fn tls_client(&self, hosts: &[String]) -> Result<TlsClient, PlanError> {
        self.tls_client_trusting(hosts, self.cacert.clone())
    }

    /// The TLS client for the built-in demo server (`run --tls` with no target): it
    /// trusts the CA the server generated, unless `--cacert` or `--insecure` says
    /// otherwise.
    pub fn demo_tls_client(&self, generated_ca: &std::path::Path) -> Result<TlsClient, PlanError> {
        let cacert = match (&self.cacert, self.insecure) {
            (None, false) => Some(generated_ca.to_path_buf()),
            (given, _) => given.clone(),
        };
        self.tls_client_trusting(&["localhost".to_string()], cacert)
    }

    fn tls_client_trusting(&self, hosts: &[String], cacert: Option<PathBuf>) -> Result<TlsClient, PlanError> {
        let version = match self.tls_version.as_deref() {
            None => None,
            Some("1.2") => Some(TlsVersion::V1_2),
            Some("1.3") => Some(TlsVersion::V1_3),
            Some(other) => return err(format!("--tls-version: '{other}' is not 1.2 or 1.3 (allowed: 1.2, 1.3)")),
        };
        if self.insecure && cacert.is_some() {
            return err("--insecure and --cacert contradict each other: give one");
        }
        let settings = TlsSettings {
            sni: self.sni.clone(),
            insecure: self.insecure,
            cacert,
            client_cert: self.cert.clone().zip(self.key.clone()),
            alpn: self.alpn.clone(),
            version,
            resume: self.tls_resume,
        };
        // With no target the built-in server is loaded; its name is localhost.
        let hosts = if hosts.is_empty() { vec!["localhost".to_string()] } else { hosts.to_vec() };
        TlsClient::new(&settings, &hosts).map_err(PlanError)
    }

    /// Loads `--replay FILE` and checks that the other flags fit it.
    fn replay_script(&self, mode: Mode, framing: &Framing) -> Result<Option<Arc<ReplayScript>>, PlanError> {
        let Some(path) = &self.replay else {
            if *framing == Framing::Replay {
                return err("--expect replay needs --replay FILE (the recorded answers' lengths)");
            }
            return Ok(None);
        };
        if mode != Mode::Request {
            return err(format!(
                "--replay plays requests and their answers: it applies to request mode, not --mode {}",
                mode.name()
            ));
        }
        if *framing == Framing::Echo || *framing == Framing::None {
            return err(format!(
                "--replay with --expect {}: use replay (the default) or the protocol's framing",
                framing.name()
            ));
        }
        if !(self.replay_speed.is_finite() && self.replay_speed >= 0.0 && self.replay_speed <= 1e6) {
            return err(format!(
                "--replay-speed {}: out of range (allowed: 0 for no think time, or a factor up to 1e6)",
                self.replay_speed
            ));
        }
        let recording = Recording::load(path).map_err(|e| PlanError(format!("--replay {e}")))?;
        let script = ReplayScript::new(&recording, self.replay_template, self.replay_speed)
            .map_err(|e| PlanError(format!("--replay {}: {e}", path.display())))?;
        if *framing == Framing::Replay && script.longest_answer() > self.max_response {
            return err(format!(
                "--replay {}: a recorded answer is {} bytes, above --max-response {}",
                path.display(),
                script.longest_answer(),
                self.max_response
            ));
        }
        Ok(Some(Arc::new(script)))
    }

    /// The WebSocket settings from ws:// targets and the WebSocket flags, checked
    /// against the framing and replay they must work with.
    fn websocket_settings(
        &self,
        parsed: &[ParsedTarget],
        framing: &Framing,
    ) -> Result<Option<Arc<WsSettings>>, PlanError> {
        let targets: Vec<(Option<WsUrl>, String)> =
            parsed.iter().map(|t| (t.ws.clone(), t.host_port.clone())).collect();
        let settings = if parsed.is_empty() && self.websocket.ws.is_some() {
            return err("--ws needs a target (the built-in server with no target speaks raw TCP)");
        } else {
            self.websocket.settings(&targets)?
        };
        match &settings {
            None if *framing == Framing::Ws => {
                err("--expect ws needs a WebSocket session: add --ws, or use a ws:// target")
            }
            Some(_) if self.replay.is_some() => err("--replay replays raw bytes: it does not run over WebSocket"),
            _ => Ok(settings.map(Arc::new)),
        }
    }

    /// The first TLS-only flag given, for a run without TLS.
    fn tls_only_flag(&self) -> Option<&'static str> {
        [
            (self.sni.is_some(), "--sni"),
            (self.insecure, "--insecure"),
            (self.cacert.is_some(), "--cacert"),
            (self.cert.is_some(), "--cert"),
            (!self.alpn.is_empty(), "--alpn"),
            (self.tls_version.is_some(), "--tls-version"),
            (self.tls_resume, "--tls-resume"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }
}
