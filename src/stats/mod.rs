//! What a run measures: counters, error counts and latency histograms.
//!
//! Each worker owns one [`WorkerStats`] and updates it with plain field increments (no
//! atomics, no locks: the hot path shares nothing). Once a second the worker cuts a
//! [`Snapshot`] of what changed and sends it to the coordinator for the live line and
//! the timeline; at the end the coordinator merges the workers' totals exactly:
//! counters add, histograms add.

mod collector;
mod error_kind;
mod histogram;
mod per_name;

pub use collector::{seconds_since, Collector, Cuts, Phase, TimelineRow, Totals};
pub use error_kind::{ErrorCounts, ErrorKind};
pub use histogram::{LatencyHistogram, MAX_US, SIGFIG};
pub use per_name::{merge_names, NameRow, NameStats};

use std::time::Instant;

use crate::transport::TlsInfo;

use crate::framing::{MemcacheReply, Reply, Response, RESP_ERROR_WORDS};

/// WebSocket close codes counted one by one (RFC 6455 section 7.4.1); any other
/// code is counted as `other`.
pub const WS_CLOSE_CODES: [u16; 11] = [1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011];

/// RESP error-reply counters: one per named word, then `other`.
pub const RESP_ERROR_COUNTERS: usize = RESP_ERROR_WORDS.len() + 1;

/// Plain counters of one worker (or, after merging, of the whole run).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connection attempts started (each `connect()` call, reconnects included).
    pub conns_attempted: u64,
    /// Attempts that completed the TCP handshake.
    pub conns_established: u64,
    /// Attempts that failed before the handshake completed.
    pub conns_failed: u64,
    /// Requests whose first byte was written.
    pub requests_sent: u64,
    /// Requests whose response arrived complete (and verified, where framing verifies).
    pub requests_completed: u64,
    /// Payload bytes written to sockets.
    pub bytes_sent: u64,
    /// Bytes read from sockets.
    pub bytes_received: u64,
    /// Errors by kind.
    pub errors: ErrorCounts,
    /// HTTP responses by status class: index 0 is 1xx, 4 is 5xx (HTTP framing only).
    pub http_status: [u64; 5],
    /// TLS handshakes that completed in full.
    pub tls_full: u64,
    /// TLS handshakes that resumed a session (`--tls-resume`).
    pub tls_resumed: u64,
    /// RESP error replies by first word: index `i` is `RESP_ERROR_WORDS[i]`, the last
    /// is any other word (RESP framing only).
    pub resp_errors: [u64; RESP_ERROR_COUNTERS],
    /// memcached replies by kind, in `MemcacheReply::ALL` order (memcache framing only).
    pub memcache: [u64; MemcacheReply::ALL.len()],
    /// Open loop: sends that fell due while their connection's pipeline was full.
    /// They are not lost: each leaves when a response makes room, keeping its
    /// intended time, so its wait counts in its latency and its send lag.
    pub sends_dropped: u64,
    /// WebSocket messages received complete (every mode, responses or pushed).
    pub ws_messages_received: u64,
    /// WebSocket close frames from the server, by code: index `i` is
    /// `WS_CLOSE_CODES[i]`, the last is any other code.
    pub ws_closes: [u64; WS_CLOSE_CODES.len() + 1],
}

impl Counters {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Counters) {
        self.conns_attempted += other.conns_attempted;
        self.conns_established += other.conns_established;
        self.conns_failed += other.conns_failed;
        self.requests_sent += other.requests_sent;
        self.requests_completed += other.requests_completed;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.errors.merge(&other.errors);
        for (a, b) in self.http_status.iter_mut().zip(other.http_status) {
            *a += b;
        }
        self.tls_full += other.tls_full;
        self.tls_resumed += other.tls_resumed;
        for (a, b) in self.resp_errors.iter_mut().zip(other.resp_errors) {
            *a += b;
        }
        for (a, b) in self.memcache.iter_mut().zip(other.memcache) {
            *a += b;
        }
        self.sends_dropped += other.sends_dropped;
        self.ws_messages_received += other.ws_messages_received;
        for (a, b) in self.ws_closes.iter_mut().zip(other.ws_closes) {
            *a += b;
        }
    }

    /// `self - earlier`: what happened in between two readings of the same counters.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            conns_attempted: self.conns_attempted - earlier.conns_attempted,
            conns_established: self.conns_established - earlier.conns_established,
            conns_failed: self.conns_failed - earlier.conns_failed,
            requests_sent: self.requests_sent - earlier.requests_sent,
            requests_completed: self.requests_completed - earlier.requests_completed,
            bytes_sent: self.bytes_sent - earlier.bytes_sent,
            bytes_received: self.bytes_received - earlier.bytes_received,
            errors: self.errors.since(&earlier.errors),
            http_status: std::array::from_fn(|i| self.http_status[i] - earlier.http_status[i]),
            tls_full: self.tls_full - earlier.tls_full,
            tls_resumed: self.tls_resumed - earlier.tls_resumed,
            resp_errors: std::array::from_fn(|i| self.resp_errors[i] - earlier.resp_errors[i]),
            memcache: std::array::from_fn(|i| self.memcache[i] - earlier.memcache[i]),
            sends_dropped: self.sends_dropped - earlier.sends_dropped,
            ws_messages_received: self.ws_messages_received - earlier.ws_messages_received,
            ws_closes: std::array::from_fn(|i| self.ws_closes[i] - earlier.ws_closes[i]),
        }
    }
}

/// What one worker is measuring right now. Counters run from the start of the run;
/// histograms hold only the current interval (they travel in each [`Snapshot`] and
/// are reset), so the coordinator's totals are exact sums of snapshots.
#[derive(Clone, Debug, Default)]
pub struct WorkerStats {
    /// Counters since the start of the run.
    pub counters: Counters,
    /// Request latency this interval, from the request's *intended* send time to its
    /// last response byte (corrected for coordinated omission; see docs/measurement.md).
    pub latency: LatencyHistogram,
    /// Request latency this interval from the *actual* send (uncorrected).
    pub latency_uncorrected: LatencyHistogram,
    /// Time to first byte this interval: from the actual send to the first response byte.
    pub first_byte: LatencyHistogram,
    /// Connect latency this interval: from `connect()` to the handshake completing.
    pub connect_latency: LatencyHistogram,
    /// TLS handshake latency this interval: from the TCP connect to the TLS
    /// handshake completing.
    pub tls_handshake: LatencyHistogram,
    /// What the first TLS handshake negotiated.
    pub tls_info: Option<TlsInfo>,
    /// Open loop, this interval: how late each request left behind its intended send
    /// time (the wake-up's lateness, batching, a full pipeline, a busy loop).
    pub send_lag: LatencyHistogram,
    /// Connections established right now.
    pub open: u64,
    /// The most connections this worker had established at once.
    pub max_open: u64,
    /// When every connection of this worker was first established at once.
    pub ramp_done_at: Option<Instant>,
    /// Connects started from each source address, in `--source` order, over the whole
    /// run (empty without sources). Sent in the worker's last snapshot only.
    pub connects_by_source: Vec<u64>,
    /// WebSocket upgrade latency this interval: from the end of the transport's
    /// handshake (TCP, or TLS) to the server's `101`.
    pub ws_upgrade: LatencyHistogram,
    /// Request mix: this interval's figures per name, indexed as `Mix::entries`
    /// (empty without a mix; a slot appears when its name is first used).
    pub per_name: Vec<NameStats>,
}

impl WorkerStats {
    /// The slot of mix entry `index`, made on first use (once per name per
    /// interval: the hot path then only indexes).
    #[inline]
    pub fn name_mut(&mut self, index: usize) -> &mut NameStats {
        if index >= self.per_name.len() {
            self.per_name.resize_with(index + 1, NameStats::default);
        }
        &mut self.per_name[index]
    }

    /// Counts one established connection, keeping `max_open` up to date.
    pub fn conn_opened(&mut self) {
        self.counters.conns_established += 1;
        self.open += 1;
        self.max_open = self.max_open.max(self.open);
    }

    /// Counts one established connection going away.
    pub fn conn_closed(&mut self) {
        self.open -= 1;
    }

    /// Counts one error.
    pub fn error(&mut self, kind: ErrorKind) {
        self.counters.errors.add(kind);
    }

    /// Counts one completed TLS handshake that took `us` microseconds.
    pub fn tls_established(&mut self, us: u64, info: TlsInfo) {
        self.tls_handshake.record(us);
        if info.resumed {
            self.counters.tls_resumed += 1;
        } else {
            self.counters.tls_full += 1;
        }
        if self.tls_info.is_none() {
            self.tls_info = Some(info);
        }
    }

    /// Counts one WebSocket upgrade that took `us` microseconds.
    pub fn session_opened(&mut self, us: u64) {
        self.ws_upgrade.record(us);
    }

    /// Counts one WebSocket close frame from the server, by its code.
    pub fn session_closed(&mut self, code: u16) {
        let slot = WS_CLOSE_CODES.iter().position(|c| *c == code).unwrap_or(WS_CLOSE_CODES.len());
        self.counters.ws_closes[slot] += 1;
    }

    /// Counts a complete response's reply kind, where its protocol names one: RESP
    /// error replies by first word, memcached replies by kind. One array increment;
    /// nothing is allocated.
    pub fn record_reply(&mut self, response: &Response) {
        let counter = match response.reply {
            Reply::Plain => return,
            Reply::RespError(word) => self.counters.resp_errors.get_mut(usize::from(word)),
            Reply::Memcache(kind) => self.counters.memcache.get_mut(kind as usize),
        };
        if let Some(n) = counter {
            *n += 1;
        }
    }

    /// Cuts the snapshot for the interval that just ended: counter deltas since
    /// `previous` (the counters at the last cut), and the interval's histograms, which
    /// are swapped out for empty ones.
    pub fn cut(&mut self, worker: usize, interval: Interval, t_s: f64, previous: &Counters) -> Snapshot {
        Snapshot {
            worker,
            interval,
            t_s,
            delta: self.counters.since(previous),
            latency: std::mem::take(&mut self.latency),
            latency_uncorrected: std::mem::take(&mut self.latency_uncorrected),
            first_byte: std::mem::take(&mut self.first_byte),
            connect_latency: std::mem::take(&mut self.connect_latency),
            tls_handshake: std::mem::take(&mut self.tls_handshake),
            tls_info: self.tls_info.clone(),
            send_lag: std::mem::take(&mut self.send_lag),
            open: self.open,
            max_open: self.max_open,
            ramp_done_at: self.ramp_done_at,
            // Whole-run counts, needed once: only the last snapshot carries them.
            connects_by_source: if interval.last { std::mem::take(&mut self.connects_by_source) } else { Vec::new() },
            ws_upgrade: std::mem::take(&mut self.ws_upgrade),
            per_name: std::mem::take(&mut self.per_name),
        }
    }
}

/// Which stretch of the run a snapshot covers. Every worker cuts at the same instants
/// (each whole second from the start, the end of the warm-up, and the end), so the
/// coordinator can line their snapshots up by `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    /// Position in the timeline: the n-th cut of the run, counted alike by all workers.
    pub index: u64,
    /// True when the interval lies in the measured window (after the warm-up).
    pub measured: bool,
    /// True for the worker's final snapshot (it is stopping).
    pub last: bool,
}

/// What one worker did during one interval (a second, or less at the warm-up's end
/// and the run's end): sent to the coordinator, which sums them into the timeline and,
/// for measured intervals, the totals.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Which worker sent it.
    pub worker: usize,
    /// Which interval it covers.
    pub interval: Interval,
    /// Seconds from the start of the run to the end of the interval.
    pub t_s: f64,
    /// Counter deltas over the interval.
    pub delta: Counters,
    /// Request latencies (corrected) recorded during the interval.
    pub latency: LatencyHistogram,
    /// Request latencies (uncorrected) recorded during the interval.
    pub latency_uncorrected: LatencyHistogram,
    /// Times to first byte recorded during the interval.
    pub first_byte: LatencyHistogram,
    /// Connect latencies recorded during the interval.
    pub connect_latency: LatencyHistogram,
    /// TLS handshake latencies recorded during the interval.
    pub tls_handshake: LatencyHistogram,
    /// What the worker's first TLS handshake negotiated, once there was one.
    pub tls_info: Option<TlsInfo>,
    /// Send lags recorded during the interval (open loop).
    pub send_lag: LatencyHistogram,
    /// Connections established at the end of the interval.
    pub open: u64,
    /// The worker's peak of established connections so far.
    pub max_open: u64,
    /// When all of this worker's connections were first open at once, if yet.
    pub ramp_done_at: Option<Instant>,
    /// The last snapshot: connects started from each source address over the whole
    /// run, in `--source` order (empty in every other snapshot, and without sources).
    pub connects_by_source: Vec<u64>,
    /// WebSocket upgrade latencies recorded during the interval.
    pub ws_upgrade: LatencyHistogram,
    /// Request mix: what each name did during the interval, indexed as
    /// `Mix::entries` (possibly shorter: names not used yet have no slot).
    pub per_name: Vec<NameStats>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_open_tracks_the_peak_not_the_current_value() {
        let mut s = WorkerStats::default();
        s.conn_opened();
        s.conn_opened();
        s.conn_closed();
        s.conn_opened();
        assert_eq!((s.open, s.max_open), (2, 2));
        s.conn_closed();
        s.conn_closed();
        assert_eq!((s.open, s.max_open), (0, 2));
    }

    #[test]
    fn a_cut_hands_over_the_interval_and_starts_a_new_one() {
        let mut s = WorkerStats::default();
        s.counters.requests_completed = 10;
        s.latency.record(100);
        let first = s.cut(0, Interval { index: 0, measured: true, last: false }, 1.0, &Counters::default());
        assert_eq!((first.delta.requests_completed, first.latency.count()), (10, 1));
        assert_eq!(s.latency.count(), 0);
        s.counters.requests_completed = 15;
        let second = s.cut(0, Interval { index: 1, measured: true, last: true }, 2.0, &first.delta);
        assert_eq!(second.delta.requests_completed, 5);
        assert!(second.interval.last);
    }

    #[test]
    fn replies_are_counted_by_kind_and_plain_responses_not_at_all() {
        let mut s = WorkerStats::default();
        let reply = |reply| Response { reply, ..Response::default() };
        s.record_reply(&reply(Reply::Plain));
        s.record_reply(&reply(Reply::RespError(1)));
        s.record_reply(&reply(Reply::RespError(crate::framing::RESP_OTHER_ERROR as u8)));
        s.record_reply(&reply(Reply::Memcache(MemcacheReply::Miss)));
        assert_eq!(s.counters.resp_errors[1], 1, "WRONGTYPE");
        assert_eq!(s.counters.resp_errors[RESP_ERROR_COUNTERS - 1], 1, "other");
        assert_eq!(s.counters.memcache[MemcacheReply::Miss as usize], 1);
        assert_eq!(s.counters.resp_errors.iter().chain(&s.counters.memcache).sum::<u64>(), 3);
    }

    #[test]
    fn counters_since_is_the_inverse_of_merge() {
        let mut a = Counters { requests_sent: 5, bytes_received: 100, ..Counters::default() };
        a.errors.add(ErrorKind::Eof);
        a.resp_errors[0] = 2;
        a.memcache[3] = 7;
        let mut b = a;
        b.merge(&a);
        assert_eq!(b.since(&a), a);
    }
}
