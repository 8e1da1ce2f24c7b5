//! Opening a nonblocking TCP connection.

use std::io;
use std::net::SocketAddr;

use mio::net::TcpStream;
use socket2::{Domain, Protocol, Socket, Type};

/// Creates a nonblocking socket and starts connecting it to `addr`.
///
/// Returns as soon as the SYN is on its way: completion is reported later by a
/// writable event, and checked with `SO_ERROR` (see `Conn::socket_connected`).
/// socket2 is used instead of `mio::net::TcpStream::connect` so that socket options
/// can be set before `connect()`.
pub fn dial(addr: SocketAddr) -> io::Result<TcpStream> {
    // SOCK_NONBLOCK (and SOCK_CLOEXEC, which socket2 adds) at creation: no fcntl calls.
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking(), Some(Protocol::TCP))?;
    // Requests are small and latency-sensitive: don't let Nagle hold them back.
    socket.set_tcp_nodelay(true)?;
    match socket.connect(&addr.into()) {
        // Loopback may finish the handshake at once; the writable event still comes.
        Ok(()) => {}
        // The normal nonblocking case: the handshake is under way.
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}
