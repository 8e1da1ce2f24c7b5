//! Where a built-in server listens: a TCP address or a Unix socket path.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// The prefix that marks a Unix socket path in `--listen` (and in `run`'s targets).
pub const UNIX_PREFIX: &str = "unix:";

/// A listening address: `127.0.0.1:7001`, `[::1]:0`, or `unix:/run/loadmux.sock`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address; port 0 picks a free port.
    Tcp(SocketAddr),
    /// A Unix stream socket at this path. The server creates the file and removes it
    /// when it stops.
    Unix(PathBuf),
}

impl ListenAddr {
    /// The TCP address, or `None` for a Unix socket.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            ListenAddr::Tcp(addr) => Some(*addr),
            ListenAddr::Unix(_) => None,
        }
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(addr: SocketAddr) -> Self {
        ListenAddr::Tcp(addr)
    }
}

/// Prints what `--listen` accepts, so the printed address can be pasted into `run`.
impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(addr) => write!(f, "{addr}"),
            ListenAddr::Unix(path) => write!(f, "{UNIX_PREFIX}{}", path.display()),
        }
    }
}

impl FromStr for ListenAddr {
    type Err = String;

    /// `unix:PATH` or `IP:PORT`; anything else is a one-line reason.
    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix(UNIX_PREFIX) {
            if path.is_empty() {
                return Err("unix: needs a path, e.g. unix:/tmp/loadmux.sock".into());
            }
            // The kernel's sun_path holds 108 bytes, the last one a NUL.
            if path.len() > 107 {
                return Err(format!("unix socket path is {} bytes long; at most 107 fit", path.len()));
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        text.parse()
            .map(ListenAddr::Tcp)
            .map_err(|_| format!("{text:?} is not IP:PORT (e.g. 127.0.0.1:7001 or [::1]:0) nor unix:PATH"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_and_unix_addresses_parse_and_print_back_the_same() {
        for text in ["127.0.0.1:7001", "[::1]:0", "unix:/tmp/x.sock", "unix:relative.sock"] {
            let addr: ListenAddr = text.parse().unwrap();
            assert_eq!(addr.to_string(), text);
        }
        assert_eq!("unix:/a".parse::<ListenAddr>().unwrap(), ListenAddr::Unix("/a".into()));
    }

    proptest::proptest! {
        /// Any text parses to an address or a reason, never a panic; what parses
        /// prints back as text that parses to the same address.
        #[test]
        fn any_text_parses_or_is_refused_and_round_trips(text in "(unix:)?.{0,40}") {
            if let Ok(addr) = text.parse::<ListenAddr>() {
                proptest::prop_assert_eq!(addr.to_string().parse::<ListenAddr>(), Ok(addr));
            }
        }

        #[test]
        fn every_socket_address_round_trips(ip in proptest::prelude::any::<std::net::IpAddr>(), port: u16) {
            let addr = ListenAddr::Tcp(SocketAddr::new(ip, port));
            proptest::prop_assert_eq!(addr.to_string().parse::<ListenAddr>(), Ok(addr));
        }
    }

    #[test]
    fn bad_addresses_are_refused_with_a_reason() {
        assert!("unix:".parse::<ListenAddr>().unwrap_err().contains("needs a path"));
        assert!(format!("unix:/{}", "x".repeat(200)).parse::<ListenAddr>().unwrap_err().contains("107"));
        assert!("localhost".parse::<ListenAddr>().unwrap_err().contains("IP:PORT"));
    }
}
