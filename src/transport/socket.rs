//! The plain socket under every transport: TCP or a Unix stream socket.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::path::Path;
use std::time::Duration;

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use socket2::SockRef;

/// A connected (or connecting) nonblocking stream socket: the client's connections,
/// and the connections the built-in servers accept.
#[derive(Debug)]
pub enum Socket {
    /// TCP, from `engine::dial`.
    Tcp(TcpStream),
    /// A Unix stream socket, from [`dial_unix`].
    Unix(UnixStream),
}

impl Socket {
    /// The pending socket error (`SO_ERROR`), which is how a failed connect shows.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Socket::Tcp(s) => s.take_error(),
            Socket::Unix(s) => s.take_error(),
        }
    }

    /// Whether the nonblocking connect has completed. An event can arrive for a
    /// socket whose connect is still in progress; `peer_addr` tells the two apart
    /// (`NotConnected` until the handshake is done).
    pub fn is_connected(&self) -> io::Result<bool> {
        let peer = match self {
            Socket::Tcp(s) => s.peer_addr().map(drop),
            Socket::Unix(s) => s.peer_addr().map(drop),
        };
        match peer {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Who is on the other end, for debug logs.
    pub fn peer(&self) -> String {
        match self {
            Socket::Tcp(s) => s.peer_addr().map_or_else(|e| e.to_string(), |a| a.to_string()),
            Socket::Unix(_) => "a unix socket peer".to_string(),
        }
    }

    /// Shuts the write side (`shutdown(SHUT_WR)`): the peer reads end of stream after
    /// the bytes already sent, and can still answer.
    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.shutdown(Shutdown::Write),
            Socket::Unix(s) => s.shutdown(Shutdown::Write),
        }
    }

    /// Makes the next close send RST instead of FIN (SO_LINGER with a zero timeout),
    /// so the connection skips TIME_WAIT. A Unix socket has neither: nothing to do.
    pub fn reset_on_close(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => SockRef::from(s).set_linger(Some(Duration::ZERO)),
            Socket::Unix(_) => Ok(()),
        }
    }
}

/// Starts connecting a nonblocking Unix stream socket to `path`.
///
/// Unlike TCP, a Unix connect either completes at once or fails at once: a full
/// listen queue gives `WouldBlock` (EAGAIN), which is a failed attempt (the caller
/// counts it and backs off), not one in progress.
pub fn dial_unix(path: &Path) -> io::Result<Socket> {
    UnixStream::connect(path).map(Socket::Unix)
}

impl Read for Socket {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(()) // The kernel sends what it has; there is no user-space buffer.
    }
}

impl Source for Socket {
    fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.register(registry, token, interests),
            Socket::Unix(s) => s.register(registry, token, interests),
        }
    }

    fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.reregister(registry, token, interests),
            Socket::Unix(s) => s.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.deregister(registry),
            Socket::Unix(s) => s.deregister(registry),
        }
    }
}
