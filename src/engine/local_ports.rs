//! Who picks each connection's source port, and the fallbacks between the two ways.
//!
//! loadmux's own cycle (`ports.rs`) is O(1) per connect; the kernel's search scans
//! taken ports (docs/tuning.md). Each can fail where the other would not, because
//! each skips the ports the other kind of socket holds:
//!
//! - an explicit `bind` cannot take a port held by a socket bound without
//!   `SO_REUSEADDR`, which is every port the kernel picked, even one in TIME_WAIT;
//! - the kernel's search skips every explicitly bound port, TIME_WAIT included (so
//!   for 60 s after a big run with loadmux's ports, it finds few).
//!
//! So whichever way is preferred, the other is tried before a connect counts as
//! `addr_unavailable`: only when both find no port is there truly none.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};

use mio::net::TcpStream;

use super::dial::{dial, dial_from_port, port_taken};
use super::ports::{route_source, PoolKey, PortAllocator, PortRange};
use crate::plan::{Mode, Plan, PortChoice};

/// Ports tried in a row before loadmux's cycle gives up on a connect and lets the
/// kernel search. A try costs a socket, a bind and a connect; ports are skipped only
/// when another program (or a kernel-picked TIME_WAIT) holds them.
const PORT_TRIES: usize = 64;

/// `--local-ports auto` prefers loadmux's ports from this many connections per
/// (source, destination) pair: below it the kernel's search is as cheap
/// (docs/tuning.md).
const AUTO_OWN_PORTS_FROM: usize = 4096;

/// One worker's source ports: its slice of the ephemeral range, the port each
/// connection slot holds, and which way it tries first.
pub struct LocalPorts {
    allocator: PortAllocator,
    /// The port each connection slot (slab key) holds, given back when it dials
    /// again, with its pool as an index into `pools` (8 bytes a slot: this vector has
    /// an entry per connection, so a whole `PoolKey` here cost 56).
    held: Vec<Option<(u32, u16)>>,
    /// The (source, destination) pools this worker has used, in order of first use,
    /// and each one's index in that order.
    pools: Vec<PoolKey>,
    pool_index: HashMap<PoolKey, u32>,
    /// The source address the kernel routes each target from, found once per target.
    routes: Vec<(SocketAddr, Option<IpAddr>)>,
    /// Try loadmux's cycle first (else the kernel's search first).
    prefer_own: bool,
    /// Connects the second choice placed after the first found no port.
    pub fallbacks: u64,
}

impl LocalPorts {
    /// Worker `index` of `plan.threads`, with `slots` connection slots, over the
    /// kernel's ephemeral `range` (read once at the start of the run).
    pub fn new(plan: &Plan, index: usize, slots: usize, range: PortRange) -> LocalPorts {
        LocalPorts {
            allocator: PortAllocator::new(range.slice(index, plan.threads)),
            held: vec![None; slots],
            pools: Vec::new(),
            pool_index: HashMap::new(),
            routes: Vec::new(),
            prefer_own: prefers_own_ports(plan),
            fallbacks: 0,
        }
    }

    /// Opens slot `key`'s socket to `target` from `source` (or the routed address),
    /// the preferred way first, the other if the first finds no free port.
    pub fn dial(
        &mut self,
        key: usize,
        target: SocketAddr,
        source: Option<IpAddr>,
        plan: &Plan,
    ) -> io::Result<TcpStream> {
        // This slot's previous socket is gone: its port goes to the back of the cycle,
        // where a TIME_WAIT it left has the most time to clear.
        if let Some((pool, port)) = self.held[key].take() {
            self.allocator.give_back(self.pools[pool as usize], port);
        }
        if self.prefer_own {
            if let Some(result) = self.dial_own_port(key, target, source, plan) {
                return result;
            }
            self.fallbacks += 1;
            return dial(target, &plan.socket, source);
        }
        match dial(target, &plan.socket, source) {
            Err(e) if port_taken(&e) => {
                self.fallbacks += 1;
                self.dial_own_port(key, target, source, plan).unwrap_or(Err(e))
            }
            other => other,
        }
    }

    /// Dials from the next free port of the cycle, skipping ports the kernel refuses.
    /// `None` when no port was found (the cycle is full, or a long run was taken).
    fn dial_own_port(
        &mut self,
        key: usize,
        target: SocketAddr,
        source: Option<IpAddr>,
        plan: &Plan,
    ) -> Option<io::Result<TcpStream>> {
        // Bind the address the kernel would pick anyway, not the wildcard: a bind to
        // 0.0.0.0:P conflicts with every socket on port P, one to 127.0.0.1:P only
        // with those on that address.
        let local_ip = source.or_else(|| self.route_source(target))?;
        let pool: PoolKey = (local_ip, target);
        for _ in 0..PORT_TRIES {
            // Every port held by this worker's connections: the slice is full.
            let port = self.allocator.take(pool)?;
            match dial_from_port(target, &plan.socket, SocketAddr::new(local_ip, port)) {
                Ok(stream) => {
                    self.held[key] = Some((self.pool_index(pool), port));
                    return Some(Ok(stream));
                }
                // Held by a socket bound without SO_REUSEADDR, or a TIME_WAIT to this
                // destination that cannot be reused yet: not ours to hold; next port.
                Err(e) if port_taken(&e) => self.allocator.give_back(pool, port),
                Err(e) => {
                    self.allocator.give_back(pool, port);
                    return Some(Err(e));
                }
            }
        }
        None
    }

    /// `pool`'s index in `pools`, adding it on first use.
    fn pool_index(&mut self, pool: PoolKey) -> u32 {
        let pools = &mut self.pools;
        *self.pool_index.entry(pool).or_insert_with(|| {
            pools.push(pool);
            u32::try_from(pools.len() - 1).unwrap_or(u32::MAX)
        })
    }

    /// The source address the kernel would use to reach `target` (cached).
    fn route_source(&mut self, target: SocketAddr) -> Option<IpAddr> {
        if let Some((_, ip)) = self.routes.iter().find(|(t, _)| *t == target) {
            return *ip;
        }
        let ip = route_source(target);
        self.routes.push((target, ip));
        ip
    }
}

/// Whether loadmux's own ports are tried first.
///
/// `Auto` prefers them where the kernel's search measurably costs (docs/tuning.md):
/// - many connections to one destination from one address: the search scans the
///   ports already taken, so a ramp costs quadratic system time;
/// - connection churn: with FIN close every closed connection leaves a TIME_WAIT
///   that the search must scan past (measured: 5x the CPU per connection), and off
///   loopback the kernel does not reuse those ports at all, while an explicitly bound
///   port reuses a TIME_WAIT whenever TCP timestamps make it safe.
///
/// RST close (`--linger0`) leaves no TIME_WAIT of its own, and on a clean table the
/// kernel's search was a little cheaper (25 µs of client CPU per connection against
/// 32 µs). But the table is rarely clean: after 10 s of FIN churn had filled the
/// range with TIME_WAIT (explicitly bound, so the search skips them all), RST churn
/// with the kernel's ports collapsed to 2 000 connections/s, and to 22 100/s with
/// loadmux's (docs/tuning.md). So churn always takes loadmux's ports.
pub fn prefers_own_ports(plan: &Plan) -> bool {
    let pairs = plan.targets.len().max(1) * plan.socket.sources.len().max(1);
    let per_pair = plan.connections.div_ceil(pairs);
    let churn = matches!(plan.mode, Mode::Connect { .. });
    match plan.socket.ports {
        PortChoice::Kernel => false,
        PortChoice::Loadmux => true,
        PortChoice::Auto => per_pair >= AUTO_OWN_PORTS_FROM || churn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(connections: usize, mode: Mode, linger0: bool) -> Plan {
        let mut plan = Plan::new(vec!["127.0.0.1:7001".parse().unwrap()]);
        plan.connections = connections;
        plan.mode = mode;
        plan.socket.linger0 = linger0;
        plan
    }

    #[test]
    fn auto_prefers_own_ports_for_big_pools_and_churn() {
        assert!(!prefers_own_ports(&plan(100, Mode::Request, false)));
        assert!(prefers_own_ports(&plan(19_000, Mode::Request, false)));
        assert!(prefers_own_ports(&plan(200, Mode::Connect { exchange: false }, false)));
        assert!(prefers_own_ports(&plan(200, Mode::Connect { exchange: false }, true)), "RST churn too");
        assert!(!prefers_own_ports(&plan(200, Mode::Request, true)));
        // Spread over sources, each pair carries a share.
        let mut spread = plan(19_000, Mode::Request, false);
        spread.socket.sources = (2..=9).map(|i| IpAddr::from([127, 0, 0, i])).collect();
        assert!(!prefers_own_ports(&spread));
        spread.socket.ports = PortChoice::Loadmux;
        assert!(prefers_own_ports(&spread));
    }
}
