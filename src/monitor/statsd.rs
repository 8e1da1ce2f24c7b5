//! `--statsd HOST:PORT`: pushes the run's numbers once a second over UDP, in the
//! statsd line format, several lines per datagram (as tcpkali does).
//!
//! - Counters (`|c`) are the increase since the last push of the report's totals
//!   (measured window), so everything a statsd server adds up ends equal to the
//!   report.
//! - Gauges (`|g`): open connections, the target rate (open loop only), and the
//!   last second's latency p50, p99 and max in milliseconds. Latency goes as gauges
//!   of exact HdrHistogram percentiles, not as `|ms` timings: a timing per request
//!   is one line per request (100 000 a second is 70 datagrams), and sampled
//!   timings (`|@0.01`) lose exactly the tail a load test is after.
//! - With a request mix, each name's requests, completions, errors and latency
//!   gauges go as `PREFIXname.NAME.requests` and so on (mix names are
//!   `[A-Za-z_][A-Za-z0-9_.-]*`, safe in a statsd name).
//! - A datagram holds at most [`DATAGRAM_LIMIT`] bytes, so it is never fragmented
//!   on an Ethernet path (1500 MTU minus IP and UDP headers, with room to spare).
//! - A send error (ECONNREFUSED from an ICMP port-unreachable, a full buffer)
//!   never stops the run: the first is shown once on stderr, the rest counted.

use std::fmt::Write as _;
use std::io;
use std::net::{SocketAddr, UdpSocket};

use crate::stats::{Counters, ErrorCounts, ErrorKind};

/// Largest datagram sent, in bytes.
pub const DATAGRAM_LIMIT: usize = 1432;

/// Gauges for one push.
#[derive(Clone, Copy, Debug, Default)]
pub struct Gauges {
    /// Connections established right now.
    pub open_connections: u64,
    /// Open loop: the requests per second asked for.
    pub target_rate: Option<f64>,
    /// The last second's request latency in microseconds: p50, p99, max.
    pub latency_us: [u64; 3],
}

/// One mix name's figures for a push: counts so far, and the last second's latency.
#[derive(Clone, Copy, Debug)]
pub struct NameFigures<'a> {
    /// The mix name.
    pub name: &'a str,
    /// Requests of this name sent so far.
    pub sent: u64,
    /// Requests of this name completed so far.
    pub completed: u64,
    /// Errors attributed to this name so far.
    pub errors: &'a ErrorCounts,
    /// The last second's latency of this name in microseconds: p50, p99, max.
    pub latency_us: [u64; 3],
}

/// What was pushed of one mix name: its counts at the last push.
#[derive(Clone, Debug, Default)]
struct NamePushed {
    sent: u64,
    completed: u64,
    errors: ErrorCounts,
}

/// Pushes to one statsd server.
pub struct StatsdPusher {
    socket: UdpSocket,
    target: SocketAddr,
    prefix: String,
    /// The totals at the last push: counters go out as the increase since.
    pushed: Counters,
    /// Each mix name's counts at the last push, in mix order.
    names_pushed: Vec<NamePushed>,
    /// The datagram being filled, and the line being added (reused each push).
    datagram: String,
    line: String,
    /// Sends that failed; the first was shown.
    send_errors: u64,
}

impl StatsdPusher {
    /// A UDP socket connected to `target` (so ICMP errors come back as send errors
    /// instead of vanishing), with `prefix` before every name (e.g. `loadmux.`).
    pub fn connect(target: SocketAddr, prefix: &str) -> io::Result<StatsdPusher> {
        let local: SocketAddr = if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("valid address");
        let socket = UdpSocket::bind(local)?;
        socket.connect(target)?;
        // A full send buffer must not hold the coordinator: the datagram is dropped
        // and counted instead.
        socket.set_nonblocking(true)?;
        Ok(StatsdPusher {
            socket,
            target,
            prefix: prefix.to_string(),
            pushed: Counters::default(),
            names_pushed: Vec::new(),
            datagram: String::with_capacity(DATAGRAM_LIMIT),
            line: String::with_capacity(128),
            send_errors: 0,
        })
    }

    /// Datagrams that could not be sent so far.
    pub fn send_errors(&self) -> u64 {
        self.send_errors
    }

    /// Pushes the increase of `totals` (and of each mix name's counts in `names`)
    /// since the last push, and `gauges`.
    pub fn push(&mut self, totals: &Counters, names: &[NameFigures], gauges: &Gauges) {
        let delta = totals.since(&self.pushed);
        self.pushed = *totals;
        self.counter("", "requests", delta.requests_sent);
        self.counter("", "requests_completed", delta.requests_completed);
        self.counter("", "bytes_sent", delta.bytes_sent);
        self.counter("", "bytes_received", delta.bytes_received);
        self.errors("", &delta.errors);
        if self.names_pushed.len() < names.len() {
            self.names_pushed.resize_with(names.len(), NamePushed::default);
        }
        for (i, figures) in names.iter().enumerate() {
            let before = std::mem::take(&mut self.names_pushed[i]);
            let group = format!("name.{}.", figures.name);
            self.counter(&group, "requests", figures.sent - before.sent);
            self.counter(&group, "requests_completed", figures.completed - before.completed);
            self.errors(&group, &figures.errors.since(&before.errors));
            for (name, us) in ["latency_ms.p50", "latency_ms.p99", "latency_ms.max"].into_iter().zip(figures.latency_us)
            {
                self.gauge(&format!("{group}{name}"), us as f64 / 1000.0);
            }
            self.names_pushed[i] =
                NamePushed { sent: figures.sent, completed: figures.completed, errors: *figures.errors };
        }
        self.gauge("connections_open", gauges.open_connections as f64);
        if let Some(rate) = gauges.target_rate {
            self.gauge("target_rate", rate);
        }
        for (name, us) in ["latency_ms.p50", "latency_ms.p99", "latency_ms.max"].into_iter().zip(gauges.latency_us) {
            self.gauge(name, us as f64 / 1000.0);
        }
        self.send_datagram();
    }

    /// One error counter per kind that happened (most never do: the rest are left
    /// out), named `GROUPerrors.KIND`.
    fn errors(&mut self, group: &str, delta: &ErrorCounts) {
        for kind in ErrorKind::ALL {
            let n = delta.get(kind);
            if n > 0 {
                self.counter(group, &format!("errors.{}", kind.name()), n);
            }
        }
    }

    /// `PREFIXGROUPNAME:N|c`; `group` is empty or `name.NAME.`.
    fn counter(&mut self, group: &str, name: &str, n: u64) {
        self.line.clear();
        let _ = write!(self.line, "{}{group}{name}:{n}|c", self.prefix);
        self.add_line();
    }

    fn gauge(&mut self, name: &str, value: f64) {
        self.line.clear();
        // statsd gauges are decimal numbers; three decimals keep microseconds.
        let _ = write!(self.line, "{}{name}:{}|g", self.prefix, (value * 1000.0).round() / 1000.0);
        self.add_line();
    }

    /// Adds the line to the datagram, sending the datagram first if the line would
    /// not fit. A line longer than a datagram (a prefix of a kilobyte) goes alone.
    fn add_line(&mut self) {
        if !self.datagram.is_empty() && self.datagram.len() + 1 + self.line.len() > DATAGRAM_LIMIT {
            self.send_datagram();
        }
        if !self.datagram.is_empty() {
            self.datagram.push('\n');
        }
        self.datagram.push_str(&self.line);
    }

    fn send_datagram(&mut self) {
        if self.datagram.is_empty() {
            return;
        }
        loop {
            match self.socket.send(self.datagram.as_bytes()) {
                Ok(_) => break,
                // A signal interrupted the send: try again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Refused (nobody listens: ICMP), a full buffer (WouldBlock), no
                // route: the datagram is lost, as UDP allows; the run goes on.
                Err(e) => {
                    if self.send_errors == 0 {
                        eprintln!(
                            "loadmux: statsd: cannot send to {}: {e} (the run goes on; later errors are only counted)",
                            self.target
                        );
                    }
                    self.send_errors += 1;
                    break;
                }
            }
        }
        self.datagram.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn listener() -> (UdpSocket, SocketAddr) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let addr = socket.local_addr().unwrap();
        (socket, addr)
    }

    fn receive(socket: &UdpSocket) -> String {
        let mut buf = [0u8; 65536];
        let n = socket.recv(&mut buf).unwrap();
        assert!(n <= DATAGRAM_LIMIT, "a datagram of {n} bytes");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn counters_go_out_as_increases_and_gauges_as_values() {
        let (server, addr) = listener();
        let mut pusher = StatsdPusher::connect(addr, "lm.").unwrap();
        let mut totals = Counters { requests_sent: 10, requests_completed: 9, ..Counters::default() };
        totals.errors.add(ErrorKind::Reset);
        let gauges = Gauges { open_connections: 3, target_rate: Some(100.0), latency_us: [250, 1_500, 9_001] };
        pusher.push(&totals, &[], &gauges);
        let first = receive(&server);
        for line in ["lm.requests:10|c", "lm.requests_completed:9|c", "lm.errors.reset:1|c", "lm.connections_open:3|g"]
        {
            assert!(first.lines().any(|l| l == line), "{line} missing from\n{first}");
        }
        assert!(first.lines().any(|l| l == "lm.target_rate:100|g"), "{first}");
        assert!(first.lines().any(|l| l == "lm.latency_ms.p99:1.5|g"), "{first}");
        assert!(first.lines().any(|l| l == "lm.latency_ms.max:9.001|g"), "{first}");
        totals.requests_sent = 25;
        pusher.push(&totals, &[], &Gauges::default());
        let second = receive(&server);
        assert!(second.lines().any(|l| l == "lm.requests:15|c"), "{second}");
        assert!(!second.contains("errors."), "no new errors: {second}");
        assert!(!second.contains("target_rate"), "closed loop: {second}");
    }

    #[test]
    fn each_mix_name_goes_under_its_own_name_as_increases() {
        let (server, addr) = listener();
        let mut pusher = StatsdPusher::connect(addr, "lm.").unwrap();
        let mut errors = ErrorCounts::default();
        errors.add(ErrorKind::Eof);
        let get = |sent, completed, errors| NameFigures {
            name: "get",
            sent,
            completed,
            errors,
            latency_us: [100, 2_000, 3_000],
        };
        let totals = Counters { requests_sent: 10, ..Counters::default() };
        pusher.push(&totals, &[get(7, 6, &errors)], &Gauges::default());
        let first = receive(&server);
        for line in [
            "lm.name.get.requests:7|c",
            "lm.name.get.requests_completed:6|c",
            "lm.name.get.errors.eof:1|c",
            "lm.name.get.latency_ms.p99:2|g",
        ] {
            assert!(first.lines().any(|l| l == line), "{line} missing from\n{first}");
        }
        pusher.push(&totals, &[get(9, 9, &errors)], &Gauges::default());
        let second = receive(&server);
        assert!(second.lines().any(|l| l == "lm.name.get.requests:2|c"), "{second}");
        assert!(second.lines().any(|l| l == "lm.name.get.requests_completed:3|c"), "{second}");
        assert!(!second.contains("errors"), "no new errors: {second}");
    }

    #[test]
    fn a_long_prefix_spreads_lines_over_datagrams_that_fit() {
        let (server, addr) = listener();
        let prefix = format!("{}.", "p".repeat(200));
        let mut pusher = StatsdPusher::connect(addr, &prefix).unwrap();
        let mut totals = Counters { requests_sent: 1, ..Counters::default() };
        for kind in ErrorKind::ALL {
            totals.errors.add(kind);
        }
        pusher.push(&totals, &[], &Gauges::default());
        let mut lines = 0;
        let mut datagrams = 0;
        while lines < 4 + ErrorKind::ALL.len() + 4 {
            let datagram = receive(&server);
            datagrams += 1;
            lines += datagram.lines().count();
            assert!(datagram.lines().all(|l| l.starts_with(&prefix) && (l.ends_with("|c") || l.ends_with("|g"))));
        }
        assert!(datagrams > 1, "{lines} lines of over 200 bytes cannot fit one datagram");
    }

    #[test]
    fn a_refused_port_is_counted_not_fatal() {
        // Bind then drop: nobody listens there, so the kernel answers with ICMP.
        let addr = listener().1;
        let mut pusher = StatsdPusher::connect(addr, "x.").unwrap();
        for n in 1..=5 {
            pusher.push(&Counters { requests_sent: n, ..Counters::default() }, &[], &Gauges::default());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(pusher.send_errors() >= 1, "ECONNREFUSED from the ICMP answer is counted");
    }
}
