//! The server's sockets, TCP or Unix: the listener each thread accepts on, and the
//! stream of each accepted connection. Both are thin enums that forward to mio, so
//! the event loop handles one type whatever the address family.

use std::io;
use std::net::SocketAddr;
use std::path::Path;

use mio::event::Source;
use mio::net::{TcpListener, UnixListener};
use mio::{Interest, Registry, Token};
use socket2::{Domain, SockAddr};

pub use crate::transport::Socket;

/// A nonblocking listening socket.
#[derive(Debug)]
pub enum Listener {
    /// TCP, with SO_REUSEPORT so every thread has its own.
    Tcp(TcpListener),
    /// A Unix stream socket; threads share it (each holds a duplicate descriptor).
    Unix(UnixListener),
}

impl Listener {
    /// A TCP listener with SO_REUSEADDR and SO_REUSEPORT, so several threads can each
    /// have one on the same port and the kernel spreads connections over them.
    pub fn bind_tcp(addr: SocketAddr, backlog: i32) -> io::Result<Listener> {
        let socket = crate::stream_socket::nonblocking(Domain::for_address(addr))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.bind(&addr.into())?;
        socket.listen(backlog)?;
        Ok(Listener::Tcp(TcpListener::from_std(socket.into())))
    }

    /// A Unix listener at `path`, which must not exist (see `socket_file.rs`).
    /// socket2 rather than std, because std fixes the backlog at 128 and chaos
    /// `--never-accept` needs 1.
    pub fn bind_unix(path: &Path, backlog: i32) -> io::Result<Listener> {
        let socket = crate::stream_socket::nonblocking(Domain::UNIX)?;
        socket.bind(&SockAddr::unix(path)?)?;
        socket.listen(backlog)?;
        Ok(Listener::Unix(UnixListener::from_std(socket.into())))
    }

    /// Another listener for another thread: a new SO_REUSEPORT socket for TCP, a
    /// duplicate descriptor of the same socket for Unix (which has no SO_REUSEPORT;
    /// every thread's poll then wakes for a new connection, and the losers of the
    /// race to accept it just see WouldBlock).
    pub fn for_another_thread(&self, backlog: i32) -> io::Result<Listener> {
        match self {
            Listener::Tcp(listener) => Listener::bind_tcp(listener.local_addr()?, backlog),
            Listener::Unix(listener) => {
                let duplicate = socket2::SockRef::from(listener).try_clone()?;
                Ok(Listener::Unix(UnixListener::from_std(duplicate.into())))
            }
        }
    }

    /// The bound TCP address (with the real port), or `None` for Unix.
    pub fn tcp_addr(&self) -> io::Result<Option<SocketAddr>> {
        match self {
            Listener::Tcp(listener) => listener.local_addr().map(Some),
            Listener::Unix(_) => Ok(None),
        }
    }

    /// Accepts one connection; errors as `accept(2)` gives them (WouldBlock when the
    /// queue is empty).
    pub fn accept(&self) -> io::Result<Socket> {
        match self {
            Listener::Tcp(listener) => {
                let (stream, _) = listener.accept()?;
                // Small answers go out at once, not after Nagle's 40 ms.
                let _ = stream.set_nodelay(true);
                Ok(Socket::Tcp(stream))
            }
            Listener::Unix(listener) => listener.accept().map(|(stream, _)| Socket::Unix(stream)),
        }
    }
}

impl Source for Listener {
    fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            Listener::Tcp(listener) => listener.register(registry, token, interests),
            Listener::Unix(listener) => listener.register(registry, token, interests),
        }
    }

    fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            Listener::Tcp(listener) => listener.reregister(registry, token, interests),
            Listener::Unix(listener) => listener.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Listener::Tcp(listener) => listener.deregister(registry),
            Listener::Unix(listener) => listener.deregister(registry),
        }
    }
}
