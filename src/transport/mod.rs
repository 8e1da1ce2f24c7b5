//! Transports: how a connection's bytes reach its peer.
//!
//! ```text
//!  socket (TCP | Unix)  ─►  transport (plain | TLS)  ─►  session (raw | WebSocket)  ─►  state machine
//!                                                                                     sees plaintext only
//! ```
//!
//! The state machine talks to one small interface, [`Transport`]: read, write, flush,
//! "do you have bytes for the socket?" (interest), and a handshake step. A plain
//! socket has no handshake and holds no bytes of its own; TLS (rustls) has both. So
//! every mode, framing, pipeline and pacing policy works over every transport, and
//! the state machine never knows which one it drives.
//!
//! [`Link`] is the concrete transport a worker uses: an enum rather than a trait
//! object, so a plain-TCP request pays one `match`, not an indirect call, and a plain
//! connection stays as small as its socket.

mod socket;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(not(feature = "tls"))]
#[path = "no_tls.rs"]
pub mod tls;
mod tls_settings;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

pub use socket::{dial_unix, Socket};
pub use tls::{TlsClient, TlsStream};
pub use tls_settings::{TlsSettings, TlsVersion};

use crate::session::websocket::WsStream;

/// What a TLS handshake negotiated, for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.2` or `TLSv1.3`.
    pub version: &'static str,
    /// The cipher suite's IANA name.
    pub cipher: &'static str,
    /// The ALPN protocol, if one was agreed.
    pub alpn: Option<String>,
    /// The session was resumed (no full handshake).
    pub resumed: bool,
}

/// Where a connection goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix stream socket (`unix:/path`).
    Unix(PathBuf),
}

/// Parses `unix:/PATH` or a literal socket address (`127.0.0.1:7001`, `[::1]:7001`);
/// host names are resolved by the command line, not here.
impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Target, String> {
        match text.strip_prefix("unix:") {
            Some(path) if !path.is_empty() => Ok(Target::Unix(path.into())),
            Some(_) => Err(format!("'{text}' has no path")),
            None => {
                text.parse().map(Target::Tcp).map_err(|_| format!("'{text}' is not an address such as 127.0.0.1:7001"))
            }
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp(addr) => write!(f, "{addr}"),
            Target::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// What the connection state machine needs from a transport. Implemented by [`Link`]
/// (TCP, Unix, TLS over either) and by a scripted fake in the state-machine tests.
///
/// The socket underneath is nonblocking and edge-triggered: `read` and `write` return
/// `WouldBlock` when the socket has nothing more, and the caller waits for the next
/// readiness edge.
pub trait Transport {
    /// Reads plaintext into `buf`. `Ok(0)` is the peer's end of stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes plaintext; `Ok(n)` took the first `n` bytes (maybe fewer than offered).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;

    /// Pushes out bytes the transport holds for the socket (TLS records). `Ok(true)`
    /// when none are left; `Ok(false)` when the socket is full (wait for writable).
    fn flush(&mut self) -> io::Result<bool>;

    /// Interest: true while the transport holds bytes for the socket, so that a
    /// writable edge means something to it even when the sender has nothing to write.
    fn wants_write(&self) -> bool;

    /// One step of the transport's own handshake (TLS), after the socket connected.
    /// `Ok(true)` when it is complete (at once for a plain socket); `Ok(false)` when
    /// it waits for the peer.
    fn handshake(&mut self) -> io::Result<bool>;

    /// After a read that returned less than the buffer: whether the socket is known
    /// to be drained, so that reading again would only return `WouldBlock`. Always
    /// true for a plain socket; TLS knows whether its last socket read was short.
    fn drained(&self) -> bool;

    /// The pending socket error (`SO_ERROR`), which is how a failed connect shows.
    fn take_error(&self) -> io::Result<Option<io::Error>>;

    /// Whether the nonblocking connect has completed (`false` while in progress).
    fn is_connected(&self) -> io::Result<bool>;

    /// Makes the coming close send RST instead of FIN (`--linger0`).
    fn reset_on_close(&self) -> io::Result<()>;

    /// What the TLS handshake negotiated, once it is complete.
    fn tls_info(&self) -> Option<TlsInfo> {
        None
    }

    /// Connect churn: sends our end of stream (FIN) but keeps the socket, so the
    /// peer's own close can be awaited. `Ok(true)` when the FIN is out; `Ok(false)`
    /// when this transport has no reason to wait and is simply closed (the default).
    fn half_close(&mut self) -> io::Result<bool> {
        Ok(false)
    }

    /// Whether a session layer (WebSocket) runs over this transport and must be
    /// opened, and timed, after the transport's handshake.
    fn has_session(&self) -> bool {
        false
    }

    /// One step of the session's opening (the WebSocket upgrade), after the
    /// transport's handshake. `Ok(true)` when it is open (at once with no session);
    /// `Ok(false)` when it waits for the peer. A refused upgrade is an error that
    /// `session::websocket::is_session_error` recognises.
    fn open_session(&mut self) -> io::Result<bool> {
        Ok(true)
    }

    /// After a `read`: whether the bytes it returned end a message of the session
    /// (WebSocket: the last frame of a message). Always false for a byte stream.
    fn message_ended(&self) -> bool {
        false
    }

    /// The close code the session's peer sent, once it closed the session
    /// (WebSocket close frame); `None` for a byte stream or before any close.
    fn close_code(&self) -> Option<u16> {
        None
    }
}

/// The transport a worker's connection uses.
pub enum Link {
    /// Plaintext over TCP or a Unix socket.
    Plain(Socket),
    /// TLS over TCP (boxed: a plain connection should not pay for rustls's size).
    Tls(Box<TlsStream>),
    /// A WebSocket session over a plain or TLS link (boxed, for the same reason: a
    /// plain connection stays as small as its socket).
    Ws(Box<WsStream<Link>>),
}

impl Link {
    /// The socket underneath, to register with the poller.
    pub fn socket_mut(&mut self) -> &mut Socket {
        match self {
            Link::Plain(socket) => socket,
            Link::Tls(tls) => tls.socket_mut(),
            Link::Ws(ws) => ws.inner_mut().socket_mut(),
        }
    }
}

impl Transport for Link {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Link::Plain(socket) => io::Read::read(socket, buf),
            Link::Tls(tls) => tls.read(buf),
            Link::Ws(ws) => ws.read(buf),
        }
    }

    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Link::Plain(socket) => io::Write::write(socket, buf),
            Link::Tls(tls) => tls.write(buf),
            Link::Ws(ws) => ws.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<bool> {
        match self {
            Link::Plain(_) => Ok(true),
            Link::Tls(tls) => tls.flush(),
            Link::Ws(ws) => ws.flush(),
        }
    }

    #[inline]
    fn wants_write(&self) -> bool {
        match self {
            Link::Plain(_) => false,
            Link::Tls(tls) => tls.wants_write(),
            Link::Ws(ws) => ws.wants_write(),
        }
    }

    fn handshake(&mut self) -> io::Result<bool> {
        match self {
            Link::Plain(_) => Ok(true),
            Link::Tls(tls) => tls.handshake(),
            Link::Ws(ws) => ws.handshake(),
        }
    }

    #[inline]
    fn drained(&self) -> bool {
        match self {
            Link::Plain(_) => true,
            Link::Tls(tls) => tls.drained(),
            Link::Ws(ws) => ws.drained(),
        }
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Link::Plain(socket) => socket.take_error(),
            Link::Tls(tls) => tls.socket().take_error(),
            Link::Ws(ws) => ws.take_error(),
        }
    }

    fn is_connected(&self) -> io::Result<bool> {
        match self {
            Link::Plain(socket) => socket.is_connected(),
            Link::Tls(tls) => tls.socket().is_connected(),
            Link::Ws(ws) => ws.is_connected(),
        }
    }

    fn reset_on_close(&self) -> io::Result<()> {
        match self {
            Link::Plain(socket) => socket.reset_on_close(),
            Link::Tls(tls) => tls.socket().reset_on_close(),
            Link::Ws(ws) => ws.reset_on_close(),
        }
    }

    fn tls_info(&self) -> Option<TlsInfo> {
        match self {
            Link::Plain(_) => None,
            Link::Tls(tls) => tls.info(),
            Link::Ws(ws) => ws.tls_info(),
        }
    }

    fn has_session(&self) -> bool {
        matches!(self, Link::Ws(_))
    }

    fn open_session(&mut self) -> io::Result<bool> {
        match self {
            Link::Ws(ws) => ws.open_session(),
            _ => Ok(true),
        }
    }

    #[inline]
    fn message_ended(&self) -> bool {
        match self {
            Link::Ws(ws) => ws.message_ended(),
            _ => false,
        }
    }

    fn close_code(&self) -> Option<u16> {
        match self {
            Link::Ws(ws) => ws.close_code(),
            _ => None,
        }
    }

    fn half_close(&mut self) -> io::Result<bool> {
        match self {
            Link::Plain(socket) => socket.shutdown_write().map(|()| true),
            // The TLS handshake or the WebSocket upgrade was a round trip with a
            // server that had accepted the connection: there is no accept queue to
            // protect (see `State::Closing`).
            Link::Tls(_) | Link::Ws(_) => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_as_small_as_its_plain_socket() {
        // TLS and WebSocket are boxed: a plain connection pays nothing for them
        // (docs/performance.md, memory per idle connection).
        assert_eq!(std::mem::size_of::<Link>(), std::mem::size_of::<Socket>());
    }
}
