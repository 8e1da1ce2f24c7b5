//! Opening a nonblocking TCP connection.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mio::net::TcpStream;
use socket2::{Domain, SockRef, Socket};

use crate::plan::SocketOptions;

/// Creates a nonblocking socket with `options`, binds it to `source` if given, and
/// starts connecting it to `addr`.
///
/// Returns as soon as the SYN is on its way: completion is reported later by a
/// writable event, and checked with `SO_ERROR` (see `Conn::socket_connected`).
/// socket2 is used instead of `mio::net::TcpStream::connect` so that options can be
/// set before `connect()`.
pub fn dial(addr: SocketAddr, options: &SocketOptions, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = new_socket(addr, options)?;
    if let Some(ip) = source {
        // Without IP_BIND_ADDRESS_NO_PORT, bind() picks the ephemeral port at once,
        // unaware of the destination, and each source address runs out of ports
        // after ~28 000 connections in total. With it, the port is chosen at
        // connect() time per (source, destination) pair.
        // Best effort: without it the bind still works, with fewer ports.
        if let Err(e) = set_bind_address_no_port(&socket) {
            log::debug!("IP_BIND_ADDRESS_NO_PORT not set for {ip}: {e}");
        }
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    start_connect(socket, addr)
}

/// Like [`dial`], but from the local address and port `local`, chosen by the
/// worker's `PortAllocator` (`engine/ports.rs`) instead of the kernel's search.
///
/// `SO_REUSEADDR` lets the bind succeed while other sockets of ours use the same
/// port to other destinations; whether the 4-tuple is free is then decided by
/// `connect()`. A port that is taken after all fails with `EADDRINUSE` (bind: a
/// socket without `SO_REUSEADDR` holds it) or `EADDRNOTAVAIL` (connect: the 4-tuple
/// is in use, or in a `TIME_WAIT` the kernel will not reuse yet); the caller then
/// tries the next port ([`port_taken`]).
pub fn dial_from_port(addr: SocketAddr, options: &SocketOptions, local: SocketAddr) -> io::Result<TcpStream> {
    let socket = new_socket(addr, options)?;
    socket.set_reuse_address(true)?;
    socket.bind(&local.into())?;
    start_connect(socket, addr)
}

/// True for the errors that mean "this source port is taken; try another".
pub fn port_taken(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EADDRINUSE | libc::EADDRNOTAVAIL))
}

/// A nonblocking TCP socket for `addr`'s family, with `options` set.
fn new_socket(addr: SocketAddr, options: &SocketOptions) -> io::Result<Socket> {
    let socket = crate::stream_socket::nonblocking(Domain::for_address(addr))?;
    if options.nodelay {
        // Requests are small and latency-sensitive: don't let Nagle hold them back.
        socket.set_tcp_nodelay(true)?;
    }
    if let Some(size) = options.sndbuf {
        socket.set_send_buffer_size(size)?;
    }
    if let Some(size) = options.rcvbuf {
        socket.set_recv_buffer_size(size)?;
    }
    Ok(socket)
}

/// Starts the nonblocking connect of `socket` to `addr`.
fn start_connect(socket: Socket, addr: SocketAddr) -> io::Result<TcpStream> {
    match socket.connect(&addr.into()) {
        // Loopback may finish the handshake at once; the writable event still comes.
        Ok(()) => {}
        // The normal nonblocking case: the handshake is under way.
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// Makes the next close send RST instead of FIN (SO_LINGER with a zero timeout): the
/// connection skips TIME_WAIT.
pub fn reset_on_close(stream: &TcpStream) -> io::Result<()> {
    SockRef::from(stream).set_linger(Some(Duration::ZERO))
}

/// Lets `connect()` choose the source port per destination (Linux only).
#[cfg(target_os = "linux")]
fn set_bind_address_no_port(socket: &Socket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: setsockopt on a socket we own, with a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Elsewhere there is no such option: `bind()` picks the port at once, so each
/// `--source` address has one ephemeral range for all destinations together
/// (docs/tuning.md).
#[cfg(not(target_os = "linux"))]
fn set_bind_address_no_port(_socket: &Socket) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "IP_BIND_ADDRESS_NO_PORT is Linux-only"))
}
