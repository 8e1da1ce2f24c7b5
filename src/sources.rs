//! Source addresses: reading `--source` specs, and spreading a large loopback run
//! over several 127.0.0.x addresses.
//!
//! One source address can hold one connection per local port to each destination:
//! about 28 000 with the default `ip_local_port_range`. Past that, more source
//! addresses are the only way to more connections, and on loopback every address of
//! 127.0.0.0/8 is already local.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// Most addresses one `--source` spec may expand to: more would cost memory for
/// nothing, since no machine holds that many connections.
pub const MAX_SOURCES: u128 = 65_536;

/// One `--source` value: an address (`127.0.0.2`), an inclusive range
/// (`127.0.0.2-127.0.0.9`), or a CIDR block (`10.1.0.0/29`, every address of it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSpec(pub Vec<IpAddr>);

impl FromStr for SourceSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<SourceSpec, String> {
        let text = text.trim();
        let (first, last) = if let Some((a, b)) = text.split_once('-') {
            let (a, b) = (parse_ip(a)?, parse_ip(b)?);
            if a.is_ipv4() != b.is_ipv4() {
                return Err(format!("'{text}' mixes IPv4 and IPv6"));
            }
            if number(a) > number(b) {
                return Err(format!("'{text}' ends before it starts"));
            }
            (a, b)
        } else if let Some((ip, bits)) = text.split_once('/') {
            let ip = parse_ip(ip)?;
            let width: u32 = if ip.is_ipv4() { 32 } else { 128 };
            let bits: u32 = match bits.parse() {
                Ok(b) if b <= width => b,
                _ => return Err(format!("'{text}': the prefix length must be 0 to {width}")),
            };
            let host_bits = width - bits;
            let mask = if host_bits >= 128 { u128::MAX } else { (1u128 << host_bits) - 1 };
            let base = number(ip) & !mask;
            (from_number(base, ip.is_ipv4()), from_number(base | mask, ip.is_ipv4()))
        } else {
            let ip = parse_ip(text)?;
            (ip, ip)
        };
        let count = number(last) - number(first) + 1;
        if count > MAX_SOURCES {
            return Err(format!("'{text}' holds {count} addresses; at most {MAX_SOURCES} are allowed"));
        }
        let v4 = first.is_ipv4();
        Ok(SourceSpec((number(first)..=number(last)).map(|n| from_number(n, v4)).collect()))
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match (self.0.first(), self.0.last()) {
            (Some(a), Some(b)) if a != b => write!(f, "{a}-{b}"),
            (Some(a), _) => write!(f, "{a}"),
            _ => Ok(()),
        }
    }
}

fn parse_ip(text: &str) -> Result<IpAddr, String> {
    text.trim().parse().map_err(|_| format!("'{}' is not an IP address (give IP, IP-IP or IP/BITS)", text.trim()))
}

fn number(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_number(n: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(n as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(n))
    }
}

/// For a run whose every target is IPv4 loopback and which names no `--source`: the
/// 127.0.0.x addresses to spread over when `connections` to one target need more
/// than the `ports_per_source` one address has. `None` when one address is enough.
///
/// 127.0.0.1 comes first, so a run that needs two addresses uses 127.0.0.1 and
/// 127.0.0.2.
pub fn loopback_spread(targets: &[SocketAddr], connections: usize, ports_per_source: usize) -> Option<Vec<IpAddr>> {
    if targets.is_empty() || ports_per_source == 0 {
        return None;
    }
    let all_loopback = targets.iter().all(|t| matches!(t.ip(), IpAddr::V4(ip) if ip.is_loopback()));
    let per_target = connections.div_ceil(targets.len());
    if !all_loopback || per_target <= ports_per_source {
        return None;
    }
    // 127.0.0.1 .. 127.0.0.254 hold 254 × 28 000 ports: far beyond any fd limit.
    let needed = per_target.div_ceil(ports_per_source).min(254);
    Some((1..=needed as u8).map(|last| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Result<Vec<String>, String> {
        text.parse::<SourceSpec>().map(|s| s.0.iter().map(IpAddr::to_string).collect())
    }

    #[test]
    fn a_single_address_is_itself() {
        assert_eq!(spec("127.0.0.2").unwrap(), ["127.0.0.2"]);
        assert_eq!(spec("::1").unwrap(), ["::1"]);
    }

    #[test]
    fn a_range_includes_both_ends() {
        assert_eq!(spec("127.0.0.2-127.0.0.5").unwrap(), ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]);
        // Ranges cross octet boundaries.
        assert_eq!(spec("10.0.0.255-10.0.1.0").unwrap(), ["10.0.0.255", "10.0.1.0"]);
        assert_eq!(spec("fd00::1-fd00::2").unwrap(), ["fd00::1", "fd00::2"]);
    }

    #[test]
    fn a_cidr_block_is_every_address_of_it() {
        let block = spec("10.1.0.0/29").unwrap();
        assert_eq!(block.len(), 8);
        assert_eq!((block[0].as_str(), block[7].as_str()), ("10.1.0.0", "10.1.0.7"));
        // Host bits given are ignored, as the prefix says.
        assert_eq!(spec("10.1.0.5/30").unwrap(), ["10.1.0.4", "10.1.0.5", "10.1.0.6", "10.1.0.7"]);
        assert_eq!(spec("127.0.0.9/32").unwrap(), ["127.0.0.9"]);
        assert_eq!(spec("fd00::/126").unwrap().len(), 4);
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        assert!(spec("127.0.0.9-127.0.0.2").unwrap_err().contains("ends before it starts"));
        assert!(spec("127.0.0.1-::1").unwrap_err().contains("mixes"));
        assert!(spec("10.0.0.0/33").unwrap_err().contains("prefix length"));
        assert!(spec("10.0.0.0/8").unwrap_err().contains("at most 65536"));
        assert!(spec("localhost").unwrap_err().contains("not an IP address"));
        assert!(spec("1.2.3.4-").unwrap_err().contains("not an IP address"));
    }

    #[test]
    fn loopback_spreads_only_past_one_address_worth_of_ports() {
        let lo: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        assert_eq!(loopback_spread(&[lo], 28_000, 28_232), None);
        let spread = loopback_spread(&[lo], 60_000, 28_232).unwrap();
        assert_eq!(spread, ["127.0.0.1", "127.0.0.2", "127.0.0.3"].map(|s| s.parse::<IpAddr>().unwrap()));
        // Two targets: each gets half the connections, so one address is enough.
        let lo2: SocketAddr = "127.0.0.1:7002".parse().unwrap();
        assert_eq!(loopback_spread(&[lo, lo2], 50_000, 28_232), None);
        // Not loopback: the addresses to spread over are the user's to give.
        let remote: SocketAddr = "10.0.0.1:80".parse().unwrap();
        assert_eq!(loopback_spread(&[remote], 60_000, 28_232), None);
    }
}
