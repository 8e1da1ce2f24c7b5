//! The validated, immutable description of a run.
//!
//! A `Plan` holds what the engine runs and nothing else: no output paths, no
//! thresholds, no terminal settings (those belong to the command that runs it).
//! The command line builds one in `cli::run` (`RunArgs::to_plan`), checking every
//! option and resolving every target before a single socket opens, so a bad flag
//! costs nothing but a one-line error and exit code 2. Library users start from
//! [`Plan::new`].

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use crate::engine::stages::{ConnStages, RateSchedule};
use crate::framing::Framing;
use crate::mix::Mix;
use crate::payload::{Payload, Template};
use crate::replay::ReplayScript;
use crate::session::websocket::WsSettings;
use crate::transport::{Target, TlsClient};
use crate::units::{parse_duration, MAX_DURATION};

/// A configuration problem, reported as one line with exit code 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanError(pub String);

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlanError {}

/// Shorthand for a one-line configuration error.
pub fn err<T>(msg: impl Into<String>) -> Result<T, PlanError> {
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
pub const STREAM_BATCH_BYTES: usize = 64 * 1024;

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
    pub targets: Vec<Target>,
    /// TLS over every connection, with this client configuration.
    pub tls: Option<Arc<TlsClient>>,
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
    /// `--replay`: the recorded sessions the connections play instead of `payload`.
    pub replay: Option<Arc<ReplayScript>>,
    /// How responses end.
    pub framing: Framing,
    /// How the `--first-message`'s answer ends, if not as `framing` says.
    pub first_framing: Option<Framing>,
    /// Largest response accepted before it counts as `protocol`.
    pub max_response: usize,
    /// Connect deadline.
    pub connect_timeout: Duration,
    /// Response deadline.
    pub response_timeout: Duration,
    /// Reconnect policy; `None` means a failed connection stays closed.
    pub reconnect: Option<Backoff>,
    /// This process's share of a sharded test.
    pub shard: Shard,
    /// Open loop with a rate that changes (`--stages`, or a run under live control):
    /// the rate over time from the run's start, this process's share. `None`: each
    /// connection sends at the fixed `send_interval`.
    pub rate_shape: Option<Arc<RateSchedule>>,
    /// `--conn-stages`: the connections the whole test keeps open over time, from
    /// the run's start; `connections` is this process's share of their most.
    /// `None`: every connection, all the time.
    pub conn_stages: Option<Arc<ConnStages>>,
    /// A WebSocket session over every connection (`ws://`, `wss://`, `--ws`): its
    /// upgrade, and how requests are framed. `None` is a raw byte stream.
    pub websocket: Option<Arc<WsSettings>>,
    /// `--mix` or named `-m`: each request sends one of several named messages,
    /// framed by that entry's own `expect` and counted under its name. With a mix,
    /// `message` is empty (every request is rendered from its entry's template).
    pub mix: Option<Arc<Mix>>,
}

/// File descriptors a run needs beyond one per connection: stdio, one epoll fd and
/// one waker per thread, the signal pipe, logging. Generous on purpose.
pub const FD_OVERHEAD: u64 = 64;

impl Plan {
    /// A plan with the command line's defaults against `targets`: 50 connections on
    /// one thread for 10 s, `hello\n` with echo framing, closed loop. For tests and
    /// library users; adjust the public fields as needed.
    pub fn new(targets: Vec<Target>) -> Plan {
        let message: Arc<[u8]> = Arc::from(&b"hello\n"[..]);
        let payload = Payload::new(vec![Template::raw(message.to_vec())], None).expect("a non-empty message");
        Plan {
            payload: Arc::new(payload),
            targets,
            tls: None,
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
            replay: None,
            framing: Framing::Echo,
            first_framing: None,
            max_response: 1 << 20,
            connect_timeout: Duration::from_secs(3),
            response_timeout: Duration::from_secs(5),
            reconnect: Some(Backoff { min: Duration::from_millis(10), max: Duration::from_secs(1) }),
            shard: Shard::WHOLE,
            rate_shape: None,
            conn_stages: None,
            websocket: None,
            mix: None,
        }
    }

    /// The same plan in open loop at `rate` requests per second in total, or in
    /// closed loop with `None`. Each connection then sends every
    /// `connections / rate` seconds; the gap is capped at [`MAX_DURATION`] (a
    /// connection sending less than once a year sends nothing in any allowed run
    /// either way), so adding it to an `Instant` never overflows.
    pub fn with_rate(mut self, rate: Option<f64>) -> Plan {
        self.rate = rate;
        self.send_interval = rate.map(|r| {
            let secs = self.connections as f64 / r;
            if secs.is_finite() && secs < MAX_DURATION.as_secs_f64() {
                Duration::from_secs_f64(secs)
            } else {
                MAX_DURATION
            }
        });
        self
    }
}

impl Plan {
    /// The same plan sending `mix`: each request sends one of its entries, framed by
    /// that entry's `expect` (else `framing`) and counted under its name. The fixed
    /// message and its batch are cleared (a mix renders every request from its
    /// entry), and the payload becomes the entries' templates (for the report's
    /// message size), keeping the `--first-message`.
    pub fn with_mix(mut self, mix: Mix) -> Plan {
        let templates = mix.entries().iter().map(|e| e.template.clone()).collect();
        // A mix has at least one entry, and Payload::new only refuses an empty list or
        // an empty message; an empty template would then keep the old payload.
        if let Ok(payload) = Payload::new(templates, self.payload.first.clone()) {
            self.payload = Arc::new(payload);
        }
        self.message = Arc::from(&[][..]);
        self.batch = Arc::from(&[][..]);
        self.mix = Some(Arc::new(mix));
        self
    }
}

/// Resolves `HOST:PORT` once, up front. The first address returned is used.
pub fn resolve(target: &str) -> Result<SocketAddr, PlanError> {
    if target.trim().is_empty() {
        return err("a target is an empty string (expected HOST:PORT; give no target at all for the built-in server)");
    }
    if let Ok(addr) = target.parse::<SocketAddr>() {
        // Port 0 means "any port" to bind(), but nothing can be connected to on it.
        if addr.port() == 0 {
            return err(format!("target '{target}': port 0 is out of range (1-65535)"));
        }
        return Ok(addr);
    }
    let Some((host, port)) = target.rsplit_once(':') else {
        return err(format!("target '{target}' needs a port, as in {target}:7001"));
    };
    if host.is_empty() {
        return err(format!("target '{target}' has no host"));
    }
    match port.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => {}
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

/// Raises the soft RLIMIT_NOFILE towards the hard limit, then checks `needed`.
pub fn ensure_fd_limit(needed: u64, connections: u64) -> Result<(), PlanError> {
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
    fn with_rate_sets_the_gap_between_a_connections_sends() {
        let mut plan = Plan::new(vec!["127.0.0.1:1".parse().unwrap()]);
        plan.connections = 10;
        let open = plan.clone().with_rate(Some(100.0));
        assert_eq!(open.rate, Some(100.0));
        assert_eq!(open.send_interval, Some(Duration::from_millis(100)));
        let closed = open.with_rate(None);
        assert_eq!((closed.rate, closed.send_interval), (None, None));
        // A rate too low to send once a year is capped, never an overflowing gap.
        assert_eq!(plan.with_rate(Some(1e-300)).send_interval, Some(MAX_DURATION));
    }

    #[test]
    fn targets_resolve_or_explain_why_not() {
        assert_eq!(resolve("127.0.0.1:80").unwrap().port(), 80);
        assert!(resolve("[::1]:7001").unwrap().is_ipv6());
        assert!(resolve("localhost:7001").is_ok());
        assert!(resolve("127.0.0.1").unwrap_err().0.contains("needs a port"));
        assert!(resolve("127.0.0.1:70000").unwrap_err().0.contains("out of range"));
        assert!(resolve("127.0.0.1:0").unwrap_err().0.contains("port 0 is out of range"));
        assert!(resolve("localhost:0").unwrap_err().0.contains("out of range"));
        assert!(resolve("").unwrap_err().0.contains("empty"));
        assert!(resolve("127.0.0.1:http").unwrap_err().0.contains("not a port"));
        assert!(resolve("no-such-host.invalid:80").unwrap_err().0.contains("cannot resolve"));
    }
}
