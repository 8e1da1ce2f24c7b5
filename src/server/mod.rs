//! Built-in servers (`loadmux serve`): echo, sink, source, http and chaos.
//!
//! They exist for demos, for tests and as a second, smaller example of a mio event
//! loop. Each runs `threads` event loops, each with its own `mio::Poll`.

use std::fmt;
use std::io;
use std::net::SocketAddr;

/// What the server does with each connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Writes back every byte it reads.
    Echo,
}

/// A validated server configuration.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// What to do with each connection.
    pub mode: Mode,
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Event-loop threads.
    pub threads: usize,
}

impl ServerConfig {
    /// An echo server on `listen` with one thread.
    pub fn echo(listen: SocketAddr) -> ServerConfig {
        ServerConfig { mode: Mode::Echo, listen, threads: 1 }
    }
}

/// What a server did, printed when it stops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerCounters {
    /// Connections accepted.
    pub accepted: u64,
    /// Bytes read from clients.
    pub bytes_received: u64,
    /// Bytes written to clients.
    pub bytes_sent: u64,
}

impl fmt::Display for ServerCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "accepted {} connections, received {} bytes, sent {} bytes",
            self.accepted, self.bytes_received, self.bytes_sent
        )
    }
}

/// A running server: its address, and the means to stop it.
pub struct ServerHandle {
    local_addr: SocketAddr,
}

impl ServerHandle {
    /// The address the server listens on (the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops every server thread, joins them, and returns the summed counters.
    pub fn stop(self) -> ServerCounters {
        ServerCounters::default()
    }
}

/// Binds the listener(s) and starts the server threads.
pub fn start(config: ServerConfig) -> io::Result<ServerHandle> {
    let _ = config;
    Err(io::Error::new(io::ErrorKind::Unsupported, "server not built yet"))
}
