//! The validated, immutable description of a run.
//!
//! [`Plan::from_args`] checks every option and resolves every target before a single
//! socket opens, so a bad flag costs nothing but a one-line error and exit code 2.

use std::fmt;
use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::assert::Threshold;
use crate::cli::{parse_duration, LocalPortsArg, ModeArg, ProgressArg, RunArgs};
use crate::framing::Framing;
use crate::payload::{self, Payload, Template};

/// A configuration problem, reported as one line with exit code 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanError(pub String);

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlanError {}

fn err<T>(msg: impl Into<String>) -> Result<T, PlanError> {
    Err(PlanError(msg.into()))
}

/// What each connection does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Send a request, await its response (up to `pipeline` in flight), repeat.
    Request,
    /// Write the message as fast as the socket takes it; count what comes back.
    Stream,
    /// Send nothing; count what arrives.
    Recv,
    /// Connect, exchange one message if `exchange`, close, reconnect at once.
    Connect {
        /// Send one message and await its response before closing.
        exchange: bool,
    },
}

impl Mode {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Request => "request",
            Mode::Stream => "stream",
            Mode::Recv => "recv",
            Mode::Connect { .. } => "connect",
        }
    }
}

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

/// Which share of a larger test this process runs (`--shard I/N`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 1-based shard number.
    pub index: u64,
    /// Number of shards.
    pub count: u64,
}

impl Shard {
    /// The whole test: shard 1 of 1.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Parses `I/N`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("'{text}' is not a shard (expected I/N with 1 <= I <= N, e.g. 2/4)");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (u64, u64) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// This shard's part of `total` and the global position of its first unit: the
    /// remainder goes to the lowest shards, so shard sizes differ by at most one.
    pub fn share(&self, total: u64) -> (u64, u64) {
        let (base, extra) = (total / self.count, total % self.count);
        let i = self.index - 1;
        let size = base + u64::from(i < extra);
        let first = i * base + i.min(extra);
        (size, first)
    }
}

/// Socket options applied to every connection before `connect()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SocketOptions {
    /// TCP_NODELAY.
    pub nodelay: bool,
    /// SO_SNDBUF, if set.
    pub sndbuf: Option<usize>,
    /// SO_RCVBUF, if set.
    pub rcvbuf: Option<usize>,
    /// Close with RST (SO_LINGER 0) in connect mode.
    pub linger0: bool,
    /// Local addresses to bind, spread evenly over each worker's connections; empty
    /// lets the kernel pick.
    pub sources: Vec<std::net::IpAddr>,
    /// Who picks each connection's source port (`--local-ports`).
    pub ports: PortChoice,
}

/// Who picks a connection's source port (`--local-ports`; see `engine/ports.rs` and
/// docs/tuning.md for why and the measurement behind `Auto`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PortChoice {
    /// loadmux where the kernel's search would be slow, the kernel elsewhere.
    #[default]
    Auto,
    /// Always the kernel, at `connect()`.
    Kernel,
    /// Always loadmux: an explicit bind to the next port of its own cycle.
    Loadmux,
}

/// Bytes a stream-mode batch aims for: enough copies of the message to make each
/// write syscall worth it.
const STREAM_BATCH_BYTES: usize = 64 * 1024;

/// Capped exponential backoff between reconnect attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Wait after the first failure.
    pub min: Duration,
    /// The wait never grows past this.
    pub max: Duration,
}

impl Backoff {
    /// The wait before attempt number `failures + 1`, where `failures` counts the
    /// failed attempts in a row so far (1 for the first failure).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.min.saturating_mul(1 << doublings).min(self.max)
    }

    /// Parses `MIN..MAX` or a single duration.
    pub fn parse(text: &str) -> Result<Backoff, String> {
        let (min, max) = match text.split_once("..") {
            Some((a, b)) => (parse_duration(a)?, parse_duration(b)?),
            None => {
                let d = parse_duration(text)?;
                (d, d)
            }
        };
        if min > max {
            return Err(format!("backoff '{text}': MIN is larger than MAX"));
        }
        Ok(Backoff { min, max })
    }
}

/// Everything a run needs, checked.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Resolved targets; connections are spread over them round-robin. Empty means
    /// "start the built-in echo server and load it" (the caller fills it in).
    pub targets: Vec<SocketAddr>,
    /// Connections this process opens (its shard's share).
    pub connections: usize,
    /// Run-wide id of this process's first connection (non-zero only in shards).
    pub first_conn_id: u64,
    /// Worker threads (never more than connections).
    pub threads: usize,
    /// How long to run.
    pub duration: Duration,
    /// Total requests to complete, if bounded.
    pub requests: Option<u64>,
    /// What each connection does.
    pub mode: Mode,
    /// Socket options.
    pub socket: SocketOptions,
    /// Unmeasured time before the measured `duration`.
    pub warmup: Duration,
    /// Open loop: the gap between a connection's intended sends (connections / rate).
    /// `None` is closed loop.
    pub send_interval: Option<Duration>,
    /// Total requests per second asked for, in open loop.
    pub rate: Option<f64>,
    /// New connections per second in total, if limited.
    pub connect_rate: Option<f64>,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// What the requests send.
    pub payload: Arc<Payload>,
    /// The request bytes when every request sends the same fixed message (the fast
    /// path: shared by every connection, never copied); empty when messages are
    /// rendered per request.
    pub message: Arc<[u8]>,
    /// Copies of `message` back to back (`pipeline` of them in request mode, about
    /// 64 KiB's worth in stream mode), so a batch goes out in one `write` without
    /// being assembled per connection.
    pub batch: Arc<[u8]>,
    /// How responses end.
    pub framing: Framing,
    /// Largest response accepted before it counts as `protocol`.
    pub max_response: usize,
    /// Connect deadline.
    pub connect_timeout: Duration,
    /// Response deadline.
    pub response_timeout: Duration,
    /// Reconnect policy; `None` means a failed connection stays closed.
    pub reconnect: Option<Backoff>,
    /// How to show the live line on stderr.
    pub progress: Progress,
    /// This process's share of a sharded test.
    pub shard: Shard,
    /// Wall-clock instant to start at.
    pub start_at: Option<SystemTime>,
    /// Where to write the JSON report (`-` is stdout).
    pub json: Option<PathBuf>,
    /// Where to write the CSV timeline.
    pub csv: Option<PathBuf>,
    /// Where to write the HTML report.
    pub html: Option<PathBuf>,
    /// `--assert` thresholds, checked at the end.
    pub thresholds: Vec<Threshold>,
    /// `--rate-search`: the threshold whose highest passing rate is searched for.
    pub rate_search: Option<Threshold>,
}

/// File descriptors a run needs beyond one per connection: stdio, one epoll fd and
/// one waker per thread, the signal pipe, logging. Generous on purpose.
const FD_OVERHEAD: u64 = 64;

impl Plan {
    /// A plan with the command line's defaults against `targets`: 50 connections on
    /// one thread for 10 s, `hello\n` with echo framing, closed loop. For tests and
    /// library users; adjust the public fields as needed.
    pub fn new(targets: Vec<SocketAddr>) -> Plan {
        let message: Arc<[u8]> = Arc::from(&b"hello\n"[..]);
        let payload = Payload::new(vec![Template::raw(message.to_vec())], None).expect("a non-empty message");
        Plan {
            payload: Arc::new(payload),
            targets,
            connections: 50,
            first_conn_id: 0,
            threads: 1,
            duration: Duration::from_secs(10),
            requests: None,
            mode: Mode::Request,
            socket: SocketOptions { nodelay: true, ..SocketOptions::default() },
            warmup: Duration::ZERO,
            send_interval: None,
            rate: None,
            connect_rate: None,
            pipeline: 1,
            batch: message.clone(),
            message,
            framing: Framing::Echo,
            max_response: 1 << 20,
            connect_timeout: Duration::from_secs(3),
            response_timeout: Duration::from_secs(5),
            reconnect: Some(Backoff { min: Duration::from_millis(10), max: Duration::from_secs(1) }),
            progress: Progress::None,
            shard: Shard::WHOLE,
            start_at: None,
            json: None,
            csv: None,
            html: None,
            thresholds: Vec::new(),
            rate_search: None,
        }
    }

    /// Checks and resolves `args`. Also raises RLIMIT_NOFILE as far as allowed and
    /// fails if it is still too low for the connections asked for.
    pub fn from_args(args: &RunArgs) -> Result<Plan, PlanError> {
        if args.connections == 0 {
            return err("-c/--connections must be at least 1");
        }
        let shard = match &args.shard {
            Some(text) => Shard::parse(text).map_err(|e| PlanError(format!("--shard: {e}")))?,
            None => Shard::WHOLE,
        };
        let (my_connections, first_conn_id) = shard.share(args.connections);
        if my_connections == 0 {
            return err(format!(
                "--shard {}/{}: -c {} leaves this shard no connection",
                shard.index, shard.count, args.connections
            ));
        }
        let connections =
            usize::try_from(my_connections).map_err(|_| PlanError("-c/--connections is too large".into()))?;
        let threads = match args.threads {
            Some(0) => return err("-t/--threads must be at least 1"),
            Some(t) => usize::try_from(t).unwrap_or(usize::MAX),
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
        .min(connections);
        if args.duration.is_zero() {
            return err("-d/--duration must be longer than 0");
        }
        if args.requests == Some(0) {
            return err("-n/--requests must be at least 1");
        }
        if args.max_response == 0 {
            return err("--max-response must be at least 1 byte");
        }
        if args.connect_timeout.is_zero() || args.timeout.is_zero() {
            return err("--connect-timeout and --timeout must be longer than 0");
        }
        let payload = build_payload(args)?;
        let rate = match args.rate {
            Some(r) if !(r.is_finite() && r > 0.0) => {
                return err("-r/--rate must be a positive number of requests per second")
            }
            r => r.map(|r| r / shard.count as f64),
        };
        let connect_rate = args.connect_rate.map(|r| r / shard.count as f64);
        let requests = match args.requests {
            Some(n) => match shard.share(n).0 {
                0 => {
                    return err(format!("--shard {}/{}: -n {n} leaves this shard no request", shard.index, shard.count))
                }
                mine => Some(mine),
            },
            None => None,
        };
        let start_at = match &args.start_at {
            Some(text) => Some(parse_start_at(text).map_err(|e| PlanError(format!("--start-at: {e}")))?),
            None => None,
        };
        if let Some(r) = args.connect_rate {
            if !(r.is_finite() && r > 0.0) {
                return err("--connect-rate must be a positive number of connections per second");
            }
        }
        if args.pipeline == 0 || args.pipeline > 1024 {
            return err("-P/--pipeline must be between 1 and 1024");
        }
        let pipeline = args.pipeline as usize;
        let mode = match args.mode {
            ModeArg::Request => Mode::Request,
            ModeArg::Stream => Mode::Stream,
            ModeArg::Recv => Mode::Recv,
            ModeArg::Connect => Mode::Connect {
                exchange: !args.message.is_empty() || args.message_file.is_some() || args.message_size.is_some(),
            },
        };
        if mode != Mode::Request && (pipeline > 1 || args.rate.is_some() || args.rate_search.is_some()) {
            return err(format!("-P, -r and --rate-search apply to request mode, not --mode {}", mode.name()));
        }
        if args.requests.is_some() && matches!(mode, Mode::Stream | Mode::Recv | Mode::Connect { exchange: false }) {
            return err(format!("-n counts requests, and --mode {} sends none; use -d", mode.name()));
        }
        let message: Vec<u8> = payload.single_static().map(<[u8]>::to_vec).unwrap_or_default();
        if mode == Mode::Stream && message.is_empty() {
            return err("--mode stream sends one fixed message: several -m or {fields} apply to request mode");
        }
        if args.linger0 && !matches!(mode, Mode::Connect { .. }) {
            return err("--linger0 applies to --mode connect");
        }
        let sources: Vec<std::net::IpAddr> = args.sources.iter().flat_map(|spec| spec.0.iter().copied()).collect();
        if let Some(wrong) = sources.iter().find(|ip| targets_family_mismatch(ip, &args.targets)) {
            return err(format!("--source {wrong}: the targets use the other IP family"));
        }
        let framing = Framing::parse(&args.expect).map_err(|e| PlanError(format!("--expect: {e}")))?;
        let reconnect = if args.no_reconnect {
            None
        } else {
            Some(Backoff::parse(&args.reconnect_backoff).map_err(|e| PlanError(format!("--reconnect-backoff: {e}")))?)
        };
        for (path, flag) in [(&args.json, "--json"), (&args.csv, "--csv"), (&args.html, "--html")] {
            if let Some(path) = path {
                check_output_path(path, flag)?;
            }
        }
        let thresholds =
            args.asserts.iter().map(|e| Threshold::parse(e).map_err(PlanError)).collect::<Result<Vec<_>, _>>()?;
        let targets = args.targets.iter().map(|t| resolve(t)).collect::<Result<Vec<_>, _>>()?;
        // The built-in server runs in this process, so it needs an fd per connection too.
        let fds_per_conn = if targets.is_empty() { 2 } else { 1 };
        ensure_fd_limit(my_connections.saturating_mul(fds_per_conn) + FD_OVERHEAD, my_connections)?;
        Ok(Plan {
            targets,
            connections,
            threads,
            duration: args.duration,
            first_conn_id,
            requests,
            warmup: args.warmup,
            send_interval: rate.map(|r| Duration::from_secs_f64(connections as f64 / r)),
            rate,
            connect_rate,
            pipeline,
            batch: match mode {
                Mode::Stream => message.repeat(STREAM_BATCH_BYTES.div_ceil(message.len())).into(),
                _ => message.repeat(pipeline).into(),
            },
            payload: Arc::new(payload),
            mode,
            socket: SocketOptions {
                nodelay: args.nodelay,
                sndbuf: args.sndbuf,
                rcvbuf: args.rcvbuf,
                linger0: args.linger0,
                sources,
                ports: match args.local_ports {
                    LocalPortsArg::Auto => PortChoice::Auto,
                    LocalPortsArg::Kernel => PortChoice::Kernel,
                    LocalPortsArg::Loadmux => PortChoice::Loadmux,
                },
            },
            message: message.into(),
            framing,
            max_response: args.max_response,
            connect_timeout: args.connect_timeout,
            response_timeout: args.timeout,
            reconnect,
            progress: match (args.quiet, args.progress) {
                (true, _) | (_, ProgressArg::None) => Progress::None,
                (_, ProgressArg::Tty) => Progress::Tty,
                (_, ProgressArg::Plain) => Progress::Plain,
                (_, ProgressArg::Auto) if std::io::stderr().is_terminal() => Progress::Tty,
                (_, ProgressArg::Auto) => Progress::Plain,
            },
            shard,
            start_at,
            json: args.json.clone(),
            csv: args.csv.clone(),
            html: args.html.clone(),
            thresholds,
            rate_search: match &args.rate_search {
                Some(e) => Some(Threshold::parse(e).map_err(|e| PlanError(e.replace("--assert", "--rate-search")))?),
                None => None,
            },
        })
    }
}

/// Builds the payload from -m (repeatable), -f, --message-size and --first-message.
fn build_payload(args: &RunArgs) -> Result<Payload, PlanError> {
    let template = |flag: &str, text: &str| {
        payload::unescape(text).and_then(Template::parse).map_err(|e| PlanError(format!("{flag}: {e}")))
    };
    let messages = if let Some(path) = &args.message_file {
        let bytes = std::fs::read(path).map_err(|e| PlanError(format!("-f {}: {e}", path.display())))?;
        if bytes.is_empty() {
            return err(format!("-f {}: the file is empty", path.display()));
        }
        vec![Template::raw(bytes)]
    } else if let Some(size) = args.message_size {
        if size == 0 {
            return err("--message-size must be at least 1 byte");
        }
        vec![Template::raw(payload::random_bytes(size))]
    } else if args.message.is_empty() {
        vec![Template::raw(b"hello\n".to_vec())]
    } else {
        args.message.iter().map(|m| template("-m", m)).collect::<Result<Vec<_>, _>>()?
    };
    let first = args.first_message.as_deref().map(|m| template("--first-message", m)).transpose()?;
    Payload::new(messages, first).map_err(|e| PlanError(format!("-m: {e}")))
}

/// Parses `--start-at`: RFC 3339 (`2026-11-24T12:00:00Z`) or Unix seconds.
pub fn parse_start_at(text: &str) -> Result<SystemTime, String> {
    if let Ok(secs) = text.trim().parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(UNIX_EPOCH + Duration::from_secs_f64(secs));
        }
    }
    humantime::parse_rfc3339_weak(text.trim())
        .map_err(|_| format!("'{text}' is not a time (use RFC 3339 such as 2026-11-24T12:00:00Z, or Unix seconds)"))
}

/// True when `ip` cannot reach literal IP targets of the other family (a named host
/// is resolved later and not judged here).
fn targets_family_mismatch(ip: &std::net::IpAddr, targets: &[String]) -> bool {
    targets.iter().filter_map(|t| t.parse::<SocketAddr>().ok()).any(|t| t.is_ipv4() != ip.is_ipv4())
}

/// Resolves `HOST:PORT` once, up front. The first address returned is used.
pub fn resolve(target: &str) -> Result<SocketAddr, PlanError> {
    if let Ok(addr) = target.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = target.rsplit_once(':') else {
        return err(format!("target '{target}' needs a port, as in {target}:7001"));
    };
    if host.is_empty() {
        return err(format!("target '{target}' has no host"));
    }
    match port.parse::<u32>() {
        Ok(p) if p <= 65535 => {}
        Ok(_) => return err(format!("target '{target}': port {port} is out of range (1-65535)")),
        Err(_) => return err(format!("target '{target}': '{port}' is not a port number")),
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().unwrap_or(0);
    match (host, port).to_socket_addrs() {
        Ok(mut addrs) => match addrs.next() {
            Some(addr) => Ok(addr),
            None => err(format!("target '{target}': host '{host}' has no address")),
        },
        Err(e) => err(format!("target '{target}': cannot resolve host '{host}': {e}")),
    }
}

/// Fails early when an output file could not be created: its directory must exist.
/// (`-` means stdout and is always fine.)
fn check_output_path(path: &std::path::Path, flag: &str) -> Result<(), PlanError> {
    if path.as_os_str() == "-" {
        return Ok(());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    if !dir.is_dir() {
        return err(format!("{flag} {}: directory {} does not exist", path.display(), dir.display()));
    }
    if path.is_dir() {
        return err(format!("{flag} {}: is a directory", path.display()));
    }
    Ok(())
}

/// Raises the soft RLIMIT_NOFILE towards the hard limit, then checks `needed`.
fn ensure_fd_limit(needed: u64, connections: u64) -> Result<(), PlanError> {
    // Best effort: raising can fail in a restricted sandbox, and the check below is
    // what decides.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let (soft, hard) =
        rlimit::Resource::NOFILE.get().map_err(|e| PlanError(format!("cannot read the open-files limit: {e}")))?;
    if soft < needed {
        return err(format!(
            "-c {connections} needs about {needed} file descriptors but the open-files limit is {soft} (hard limit {hard}); lower -c or raise the limit (ulimit -n)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b = Backoff::parse("10ms..1s").unwrap();
        assert_eq!(b.delay(1), Duration::from_millis(10));
        assert_eq!(b.delay(2), Duration::from_millis(20));
        assert_eq!(b.delay(4), Duration::from_millis(80));
        assert_eq!(b.delay(20), Duration::from_secs(1));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn a_single_backoff_value_is_fixed() {
        let b = Backoff::parse("50ms").unwrap();
        assert_eq!((b.delay(1), b.delay(9)), (Duration::from_millis(50), Duration::from_millis(50)));
        assert!(Backoff::parse("2s..1s").is_err());
        assert!(Backoff::parse("x..1s").is_err());
    }

    #[test]
    fn shards_split_with_the_remainder_to_the_lowest() {
        let shares: Vec<(u64, u64)> = (1..=3).map(|i| Shard { index: i, count: 3 }.share(10)).collect();
        assert_eq!(shares, vec![(4, 0), (3, 4), (3, 7)]);
        assert_eq!(Shard::WHOLE.share(7), (7, 0));
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "1/0", "x/2", "3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn start_at_takes_rfc3339_or_unix_seconds() {
        let t = parse_start_at("2026-11-24T12:00:00Z").unwrap();
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 1_795_521_600);
        assert_eq!(parse_start_at("1795521600").unwrap(), t);
        assert!(parse_start_at("noonish").is_err());
    }

    #[test]
    fn targets_resolve_or_explain_why_not() {
        assert_eq!(resolve("127.0.0.1:80").unwrap().port(), 80);
        assert!(resolve("[::1]:7001").unwrap().is_ipv6());
        assert!(resolve("localhost:7001").is_ok());
        assert!(resolve("127.0.0.1").unwrap_err().0.contains("needs a port"));
        assert!(resolve("127.0.0.1:70000").unwrap_err().0.contains("out of range"));
        assert!(resolve("127.0.0.1:http").unwrap_err().0.contains("not a port"));
        assert!(resolve("no-such-host.invalid:80").unwrap_err().0.contains("cannot resolve"));
    }
}
