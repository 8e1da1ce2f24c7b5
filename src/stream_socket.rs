//! Creating the stream sockets both event loops use (the load engine's connections
//! and the built-in servers' TCP and Unix listeners), the same way on every platform.

use std::io;

use socket2::{Domain, Protocol, Socket, Type};

/// A nonblocking stream socket (TCP for an IP domain, none for `Domain::UNIX`),
/// close-on-exec. On Linux and the BSDs both flags are
/// set by the `socket()` call itself (SOCK_NONBLOCK | SOCK_CLOEXEC): no extra
/// syscall per connection. macOS has no SOCK_NONBLOCK, so there the socket is made
/// nonblocking right after (and socket2 sets FD_CLOEXEC).
pub fn nonblocking(domain: Domain) -> io::Result<Socket> {
    let protocol = if domain == Domain::UNIX { None } else { Some(Protocol::TCP) };
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    ))]
    let socket = Socket::new(domain, Type::STREAM.nonblocking(), protocol)?;
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    )))]
    let socket = {
        let socket = Socket::new(domain, Type::STREAM, protocol)?;
        socket.set_nonblocking(true)?;
        socket
    };
    Ok(socket)
}
