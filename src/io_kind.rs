//! Names for the two `io::Error` kinds every nonblocking socket call must expect.
//!
//! Both event loops (the load engine and the built-in servers) match every read,
//! write and accept on these, so they live here rather than in either loop.

use std::io;

/// "Not ready": go back to polling. mio is edge-triggered, so this is how a loop
/// knows it has drained the socket.
pub fn would_block(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock
}

/// "A signal arrived first": try the same call again.
pub fn interrupted(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::Interrupted
}
