//! Source ports chosen by loadmux instead of the kernel.
//!
//! When `connect()` is called on an unbound socket, Linux searches the ephemeral
//! range (`/proc/sys/net/ipv4/ip_local_port_range`) for a port whose 4-tuple to the
//! destination is free. It starts at a random offset and tries ports of one parity
//! first. Once about half the range is taken to one destination, most connects scan
//! thousands of taken ports before finding a free one: the cost per connect grows with
//! the number already open, so a ramp to 19 000 connections takes seconds of system
//! time (docs/tuning.md has the measurement).
//!
//! A [`PortAllocator`] makes that search O(1). Each worker owns one, with its own
//! slice of the range (so workers never race for a port), and keeps, per
//! (source address, destination), a cursor that cycles through the slice and a
//! bitmap of the ports its connections hold. The worker binds each socket to the
//! port it is given (`SO_REUSEADDR`, see `dial::dial_from_port`); if the kernel says
//! the port is taken after all (another process holds it, or its previous connection
//! is still in `TIME_WAIT`), the worker asks for the next one.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

/// Where the kernel's ephemeral range is read from.
const RANGE_FILE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// An inclusive range of TCP ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// The lowest port.
    pub first: u16,
    /// The highest port (inclusive).
    pub last: u16,
}

impl PortRange {
    /// The kernel's ephemeral port range, read once at the start of a run.
    pub fn ephemeral() -> io::Result<PortRange> {
        let text = std::fs::read_to_string(RANGE_FILE)?;
        PortRange::parse(&text).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{RANGE_FILE}: cannot read {text:?} as two ports"))
        })
    }

    /// Parses the `FIRST LAST` (two numbers, whitespace between) of `ip_local_port_range`.
    pub fn parse(text: &str) -> Option<PortRange> {
        let mut words = text.split_whitespace().map(str::parse::<u16>);
        let (Some(Ok(first)), Some(Ok(last)), None) = (words.next(), words.next(), words.next()) else {
            return None;
        };
        (first > 0 && first <= last).then_some(PortRange { first, last })
    }

    /// How many ports the range holds.
    pub fn len(&self) -> usize {
        usize::from(self.last - self.first) + 1
    }

    /// Always false: a range holds at least one port.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Slice `index` of `count` nearly equal, disjoint slices (one per worker). Every
    /// slice has at least one port; with more slices than ports they overlap.
    pub fn slice(&self, index: usize, count: usize) -> PortRange {
        let count = count.max(1);
        let len = self.len();
        if count >= len {
            let port = self.first + (index % len) as u16;
            return PortRange { first: port, last: port };
        }
        let start = len * index / count;
        let end = len * (index + 1) / count; // exclusive
        PortRange { first: self.first + start as u16, last: self.first + (end - 1) as u16 }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// The ports of one (source address, destination) pair: a cycling cursor and a bitmap
/// of the ports handed out and not yet given back.
struct PortPool {
    /// Offset in the range of the next port to try.
    cursor: usize,
    /// One bit per port of the range: set while a connection holds it.
    held: Vec<u64>,
    /// How many bits are set.
    held_count: usize,
}

impl PortPool {
    fn new(len: usize) -> PortPool {
        PortPool { cursor: 0, held: vec![0; len.div_ceil(64)], held_count: 0 }
    }

    fn is_held(&self, offset: usize) -> bool {
        self.held[offset / 64] & (1 << (offset % 64)) != 0
    }

    fn set_held(&mut self, offset: usize, on: bool) {
        if self.is_held(offset) == on {
            return;
        }
        self.held[offset / 64] ^= 1 << (offset % 64);
        if on {
            self.held_count += 1;
        } else {
            self.held_count -= 1;
        }
    }
}

/// A pool of ports: the source (local) address and the destination.
pub type PoolKey = (IpAddr, SocketAddr);

/// The source address the kernel routes `target` from, found as `connect()` on a UDP
/// socket finds it (no packet is sent). `None` if there is no route.
pub fn route_source(target: SocketAddr) -> Option<IpAddr> {
    let any: SocketAddr = if target.is_ipv4() { ([0u8; 4], 0).into() } else { ([0u16; 8], 0).into() };
    let probe = UdpSocket::bind(any).ok()?;
    probe.connect(target).ok()?;
    probe.local_addr().ok().map(|a| a.ip())
}

/// One worker's source ports, per (source address, destination).
///
/// `take` hands out the next port of the cycle that no connection of this worker
/// holds; `give_back` returns it. The cycle moves on after every `take`, so a port
/// given back is the last to be handed out again: a port whose connection just closed
/// (and may sit in `TIME_WAIT`) gets the most time to clear.
pub struct PortAllocator {
    range: PortRange,
    pools: HashMap<PoolKey, PortPool>,
}

impl PortAllocator {
    /// An allocator over `range` (this worker's slice of the ephemeral range).
    pub fn new(range: PortRange) -> PortAllocator {
        PortAllocator { range, pools: HashMap::new() }
    }

    /// The ports this allocator hands out.
    pub fn range(&self) -> PortRange {
        self.range
    }

    /// The next port for a connection from `key.0` to `key.1` that no connection of
    /// this worker holds, now held by the caller. `None` when every port of the range
    /// is held.
    pub fn take(&mut self, key: PoolKey) -> Option<u16> {
        let len = self.range.len();
        let pool = self.pools.entry(key).or_insert_with(|| PortPool::new(len));
        if pool.held_count == len {
            return None;
        }
        // At most one full turn: a free port exists, so this ends.
        loop {
            let offset = pool.cursor;
            pool.cursor = (pool.cursor + 1) % len;
            if !pool.is_held(offset) {
                pool.set_held(offset, true);
                return Some(self.range.first + offset as u16);
            }
        }
    }

    /// Gives back a port handed out by [`take`](Self::take) for `key`.
    pub fn give_back(&mut self, key: PoolKey, port: u16) {
        if !(self.range.first..=self.range.last).contains(&port) {
            return;
        }
        if let Some(pool) = self.pools.get_mut(&key) {
            pool.set_held(usize::from(port - self.range.first), false);
        }
    }

    /// How many ports are held for `key`.
    pub fn held(&self, key: PoolKey) -> usize {
        self.pools.get(&key).map_or(0, |p| p.held_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn key(port: u16) -> PoolKey {
        (IpAddr::from([127, 0, 0, 1]), SocketAddr::from(([127, 0, 0, 1], port)))
    }

    #[test]
    fn the_kernel_range_file_format_parses() {
        assert_eq!(PortRange::parse("32768\t60999\n"), Some(PortRange { first: 32768, last: 60999 }));
        assert_eq!(PortRange::parse("1024 1024"), Some(PortRange { first: 1024, last: 1024 }));
        assert_eq!(PortRange::parse("60999 32768"), None);
        assert_eq!(PortRange::parse("0 10"), None);
        assert_eq!(PortRange::parse("1 2 3"), None);
        assert_eq!(PortRange::parse("abc"), None);
    }

    #[test]
    fn loopback_is_reached_from_loopback() {
        let ip = route_source(SocketAddr::from(([127, 0, 0, 1], 9))).expect("a route to loopback");
        assert!(ip.is_loopback(), "{ip}");
    }

    #[test]
    fn worker_slices_are_disjoint_and_cover_the_range() {
        let range = PortRange { first: 32768, last: 60999 };
        let slices: Vec<PortRange> = (0..3).map(|i| range.slice(i, 3)).collect();
        assert_eq!(slices[0].first, range.first);
        assert_eq!(slices[2].last, range.last);
        assert_eq!(slices[0].last + 1, slices[1].first);
        assert_eq!(slices[1].last + 1, slices[2].first);
        assert_eq!(slices.iter().map(PortRange::len).sum::<usize>(), range.len());
        // More workers than ports: each still gets one.
        let tiny = PortRange { first: 5000, last: 5001 };
        assert_eq!(tiny.slice(3, 4), PortRange { first: 5001, last: 5001 });
    }

    #[test]
    fn take_cycles_through_the_range_in_order() {
        let mut ports = PortAllocator::new(PortRange { first: 40000, last: 40003 });
        let k = key(80);
        let first: Vec<u16> = (0..4).map(|_| ports.take(k).unwrap()).collect();
        assert_eq!(first, vec![40000, 40001, 40002, 40003]);
        assert_eq!(ports.take(k), None, "every port is held");
        // The cycle goes on from where it was, not from the port given back first.
        ports.give_back(k, 40002);
        ports.give_back(k, 40000);
        assert_eq!(ports.take(k), Some(40000));
        assert_eq!(ports.take(k), Some(40002));
        assert_eq!(ports.take(k), None);
    }

    #[test]
    fn a_held_port_is_skipped_never_handed_out_twice() {
        let mut ports = PortAllocator::new(PortRange { first: 50000, last: 50009 });
        let k = key(80);
        let mut held = HashSet::new();
        // Take and give back in an irregular pattern for many turns of the cycle;
        // at every step the port handed out must not be one already held.
        for step in 0..1000u32 {
            if step % 3 != 2 || held.is_empty() {
                if let Some(port) = ports.take(k) {
                    assert!(held.insert(port), "port {port} handed out while held (step {step})");
                } else {
                    assert_eq!(held.len(), 10, "None only when every port is held");
                }
            } else {
                let port = *held.iter().nth(step as usize % held.len()).unwrap();
                held.remove(&port);
                ports.give_back(k, port);
            }
            assert_eq!(ports.held(k), held.len());
        }
    }

    #[test]
    fn pairs_have_their_own_ports() {
        let mut ports = PortAllocator::new(PortRange { first: 40000, last: 40001 });
        let a = key(80);
        let b = key(81);
        let from_source = (IpAddr::from([127, 0, 0, 2]), a.1);
        assert_eq!(ports.take(a), Some(40000));
        assert_eq!(ports.take(b), Some(40000), "another destination may reuse the port");
        assert_eq!(ports.take(from_source), Some(40000), "another source may reuse the port");
        assert_eq!(ports.held(a), 1);
        // Giving back a port that was never handed out (or is outside the range)
        // changes nothing.
        ports.give_back(a, 40001);
        ports.give_back(a, 80);
        assert_eq!(ports.held(a), 1);
    }
}
