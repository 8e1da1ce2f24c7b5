//! The chaos server's faults, per connection. Echo is the baseline; each chunk read
//! passes through the configured faults, then goes out at once, after `--delay`, or a
//! byte at a time (`--drip`). Delays are timer-driven: the event loop sleeps until the
//! next due time (`next_due`), so other connections are served meanwhile.

use std::collections::VecDeque;
use std::time::Instant;

use super::{Chaos, ServerCounters};

/// How a connection is ended on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// RST (SO_LINGER 0).
    Reset,
    /// FIN.
    Close,
}

/// One connection's fault state.
#[derive(Debug, Default)]
pub struct ChaosConn {
    /// Chunks waiting for their `--delay` to pass, oldest first.
    delayed: VecDeque<(Instant, Vec<u8>)>,
    /// Bytes waiting to be dripped, and when the next one goes.
    drip: VecDeque<u8>,
    next_drip: Option<Instant>,
    /// Bytes accepted for echo so far (for `--reset-after` / `--close-after`).
    echoed: u64,
    /// The connection ends with this fault once everything owed is out.
    pub closing: Option<Fault>,
    /// `--flood` has started.
    pub flooding: bool,
}

impl ChaosConn {
    /// Applies the faults to one chunk read from the client. What is to be sent at
    /// once goes into `out`; the rest waits in this state.
    pub fn on_chunk(
        &mut self,
        chunk: &[u8],
        faults: &Chaos,
        now: Instant,
        rng: &mut fastrand::Rng,
        out: &mut Vec<u8>,
        counters: &mut ServerCounters,
    ) {
        if faults.flood {
            self.flooding = true;
            counters.faults += 1;
            return;
        }
        if self.closing.is_some() {
            return; // Already ending: nothing more is answered.
        }
        let mut corrupt = faults.corrupt;
        if faults.fail_rate > 0.0 && rng.f64() < faults.fail_rate {
            match rng.u8(0..3) {
                0 => self.closing = Some(Fault::Reset),
                1 => self.closing = Some(Fault::Close),
                _ => corrupt = true,
            }
            if self.closing.is_some() {
                return;
            }
        }
        // A byte limit cuts the echo where it falls, even mid-response.
        let mut take = chunk.len();
        for (limit, fault) in [(faults.reset_after, Fault::Reset), (faults.close_after, Fault::Close)] {
            if let Some(limit) = limit {
                let left = limit.saturating_sub(self.echoed) as usize;
                if left <= take {
                    take = left;
                    self.closing = Some(fault);
                }
            }
        }
        self.echoed += take as u64;
        let mut bytes = chunk[..take].to_vec();
        if corrupt && !bytes.is_empty() {
            bytes[0] ^= 0xff;
            counters.faults += 1;
        }
        match (faults.delay, faults.drip) {
            (Some(delay), _) => self.delayed.push_back((now + delay, bytes)),
            (None, Some(_)) => {
                self.drip.extend(bytes);
                self.next_drip.get_or_insert(now);
            }
            (None, None) => out.extend_from_slice(&bytes),
        }
    }

    /// Moves what is due by `now` into `out`: delayed chunks whose time has come
    /// (into the drip queue when dripping), and dripped bytes, one per interval.
    pub fn release_due(&mut self, now: Instant, faults: &Chaos, out: &mut Vec<u8>) {
        while self.delayed.front().is_some_and(|(due, _)| *due <= now) {
            let Some((_, bytes)) = self.delayed.pop_front() else { break };
            if faults.drip.is_some() {
                self.drip.extend(bytes);
                self.next_drip.get_or_insert(now);
            } else {
                out.extend_from_slice(&bytes);
            }
        }
        if let Some(interval) = faults.drip {
            while let Some(at) = self.next_drip.filter(|at| *at <= now) {
                let Some(byte) = self.drip.pop_front() else {
                    self.next_drip = None;
                    break;
                };
                out.push(byte);
                self.next_drip = Some(at + interval);
            }
            if self.drip.is_empty() {
                self.next_drip = None;
            }
        }
    }

    /// When this connection next has bytes coming due.
    pub fn next_due(&self) -> Option<Instant> {
        let delayed = self.delayed.front().map(|(due, _)| *due);
        let drip = self.next_drip.filter(|_| !self.drip.is_empty());
        match (delayed, drip) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Bytes waiting (delayed or dripping), for backpressure.
    pub fn queued(&self) -> usize {
        self.delayed.iter().map(|(_, b)| b.len()).sum::<usize>() + self.drip.len()
    }

    /// The fault to end with, once nothing more is owed.
    pub fn ready_to_close(&self, nothing_pending: bool) -> Option<Fault> {
        self.closing.filter(|_| nothing_pending && self.queued() == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run(faults: &Chaos, chunks: &[&[u8]]) -> (ChaosConn, Vec<u8>) {
        let mut conn = ChaosConn::default();
        let mut out = Vec::new();
        let mut rng = fastrand::Rng::with_seed(faults.seed);
        let mut counters = ServerCounters::default();
        for chunk in chunks {
            conn.on_chunk(chunk, faults, Instant::now(), &mut rng, &mut out, &mut counters);
        }
        (conn, out)
    }

    #[test]
    fn close_after_cuts_the_echo_at_the_limit() {
        let (conn, out) = run(&Chaos { close_after: Some(7), ..Chaos::default() }, &[b"hello\n", b"hello\n"]);
        assert_eq!(out, b"hello\nh");
        assert_eq!(conn.ready_to_close(true), Some(Fault::Close));
    }

    #[test]
    fn corrupt_flips_one_byte_per_chunk() {
        let (_, out) = run(&Chaos { corrupt: true, ..Chaos::default() }, &[b"ab", b"cd"]);
        assert_eq!(out, [b'a' ^ 0xff, b'b', b'c' ^ 0xff, b'd']);
    }

    #[test]
    fn delayed_bytes_wait_for_their_time() {
        let faults = Chaos { delay: Some(Duration::from_millis(20)), ..Chaos::default() };
        let (mut conn, out) = run(&faults, &[b"hi"]);
        assert!(out.is_empty());
        let due = conn.next_due().expect("a due time");
        let mut out = Vec::new();
        conn.release_due(due - Duration::from_millis(1), &faults, &mut out);
        assert!(out.is_empty(), "not before the delay");
        conn.release_due(due, &faults, &mut out);
        assert_eq!(out, b"hi");
    }

    #[test]
    fn drip_sends_one_byte_per_interval() {
        let faults = Chaos { drip: Some(Duration::from_millis(10)), ..Chaos::default() };
        let (mut conn, _) = run(&faults, &[b"abc"]);
        let start = conn.next_due().unwrap();
        let mut out = Vec::new();
        conn.release_due(start, &faults, &mut out);
        assert_eq!(out, b"a");
        conn.release_due(start + Duration::from_millis(15), &faults, &mut out);
        assert_eq!(out, b"ab");
        conn.release_due(start + Duration::from_millis(20), &faults, &mut out);
        assert_eq!(out, b"abc");
        assert_eq!(conn.next_due(), None);
    }

    #[test]
    fn fail_rate_one_always_faults_and_zero_never_does() {
        let always = Chaos { fail_rate: 1.0, seed: 3, ..Chaos::default() };
        let mut faulted = 0;
        for seed in 0..30 {
            let (conn, out) = run(&Chaos { seed, ..always.clone() }, &[b"hello"]);
            if conn.closing.is_some() || out != b"hello" {
                faulted += 1;
            }
        }
        assert_eq!(faulted, 30);
        let (conn, out) = run(&Chaos::default(), &[&b"hello"[..]; 50]);
        assert!(conn.closing.is_none() && out.len() == 250);
    }
}
