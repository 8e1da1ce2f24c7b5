//! One server thread: a `mio::Poll` with a listener, a waker and a slab of
//! connections. The same shape as the client's worker, smaller.
//!
//! ```text
//! loop {
//!     poll()
//!     LISTENER  → accept until WouldBlock, register each connection once
//!     WAKER     → stop flag set? leave
//!     token     → the connection's handler: read, hand bytes to the mode, write
//! }
//! ```

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use log::{debug, trace, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::{Mode, ServerCounters};
use crate::engine::conn::{interrupted, would_block};

/// The listening socket's token.
pub const LISTENER: Token = Token(usize::MAX - 1);
/// The waker's token (`ServerHandle::stop`).
pub const WAKER: Token = Token(usize::MAX);

/// One accepted connection.
struct ServerConn {
    stream: TcpStream,
    /// Bytes read but not yet written back (only when a write came up short). The
    /// connection is not read while any are pending, so this never exceeds one read
    /// (64 KiB): a client that sends without reading gets backpressure, and costs the
    /// server no more than that.
    pending: Vec<u8>,
}

/// A server thread's state.
pub struct EventLoop {
    pub(super) poll: Poll,
    pub(super) listener: TcpListener,
    pub(super) mode: Mode,
    pub(super) stop: Arc<AtomicBool>,
    conns: Slab<ServerConn>,
    scratch: Vec<u8>,
    counters: ServerCounters,
}

impl EventLoop {
    /// A loop serving `listener` (already registered as `LISTENER`).
    pub fn new(poll: Poll, listener: TcpListener, mode: Mode, stop: Arc<AtomicBool>) -> Self {
        EventLoop {
            poll,
            listener,
            mode,
            stop,
            conns: Slab::new(),
            scratch: vec![0; 64 * 1024],
            counters: ServerCounters::default(),
        }
    }

    /// Serves until the stop flag is set; returns what it counted.
    pub fn run(mut self) -> ServerCounters {
        let mut events = Events::with_capacity(1024);
        while !self.stop.load(Ordering::Relaxed) {
            if let Err(e) = self.poll.poll(&mut events, None) {
                if interrupted(&e) {
                    continue; // A signal: poll again.
                }
                warn!("server poll failed: {e}");
                break;
            }
            for event in events.iter() {
                trace!(
                    "server event {:?} readable={} writable={}",
                    event.token(),
                    event.is_readable(),
                    event.is_writable()
                );
                match event.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {} // The stop flag is checked at the top of the loop.
                    Token(key) => self.serve(key, event.is_writable()),
                }
            }
        }
        self.counters
    }

    /// Accepts every pending connection: the listener is edge-triggered too.
    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, peer)) => {
                    let entry = self.conns.vacant_entry();
                    let token = Token(entry.key());
                    // Registered once for both directions; never re-registered.
                    if let Err(e) =
                        self.poll.registry().register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
                    {
                        warn!("server: cannot register {peer}: {e}");
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    debug!("server: accepted {peer} as token {}", token.0);
                    entry.insert(ServerConn { stream, pending: Vec::new() });
                    self.counters.accepted += 1;
                }
                // The accept queue is empty.
                Err(e) if would_block(&e) => return,
                Err(e) if interrupted(&e) => continue,
                // Out of descriptors (EMFILE/ENFILE) or a connection that died in the
                // queue: leave the rest queued; the next connection's arrival or close
                // brings another event.
                Err(e) => {
                    warn!("server: accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Moves one connection as far as its socket allows.
    fn serve(&mut self, key: usize, writable: bool) {
        let Some(conn) = self.conns.get_mut(key) else { return };
        let outcome = match self.mode {
            Mode::Echo => echo(conn, &mut self.scratch, &mut self.counters, writable),
        };
        if let Err(e) = outcome {
            // EOF or an error: the connection is over either way.
            debug!("server: token {key} closed: {e}");
            self.conns.remove(key);
            self.counters.closed += 1;
        }
    }
}

/// Echo: write back every byte read. Returns `Err` when the connection is over.
///
/// Fast path: read into the thread's scratch buffer and write straight back. Only a
/// short write leaves bytes in `pending`, and while any are pending the connection
/// is not read (the client's unread replies hold back its requests).
fn echo(conn: &mut ServerConn, scratch: &mut [u8], counters: &mut ServerCounters, writable: bool) -> io::Result<()> {
    if writable && !conn.pending.is_empty() {
        flush_pending(conn, counters)?;
    }
    // Backpressure: read nothing more until the replies already owed are out.
    while conn.pending.is_empty() {
        let n = match conn.stream.read(scratch) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()), // The client closed.
            Ok(n) => n,
            Err(e) if would_block(&e) => return Ok(()), // Drained: wait for the next edge.
            Err(e) if interrupted(&e) => continue,
            Err(e) => return Err(e),
        };
        counters.bytes_received += n as u64;
        let written = write_some(&mut conn.stream, &scratch[..n], counters)?;
        if written < n {
            // The client is not reading fast enough: keep the rest and wait for the
            // writable edge (flush_pending), reading no more meanwhile.
            conn.pending.extend_from_slice(&scratch[written..n]);
        }
        if n < scratch.len() {
            return Ok(()); // A short read: the receive queue is empty.
        }
    }
    Ok(())
}

/// Writes what is pending; once all of it is out, reading may resume. Because the
/// readable edge may have come and gone while reading was paused, the caller reads
/// right after (echo's loop does).
fn flush_pending(conn: &mut ServerConn, counters: &mut ServerCounters) -> io::Result<()> {
    let written = write_some(&mut conn.stream, &conn.pending, counters)?;
    conn.pending.drain(..written);
    if conn.pending.is_empty() {
        // Give the memory back: most connections never need a pending buffer.
        conn.pending = Vec::new();
    }
    Ok(())
}

/// Writes as much of `bytes` as the socket takes now; returns how much that was.
fn write_some(stream: &mut TcpStream, bytes: &[u8], counters: &mut ServerCounters) -> io::Result<usize> {
    let mut done = 0;
    while done < bytes.len() {
        match stream.write(&bytes[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                done += n;
                counters.bytes_sent += n as u64;
            }
            Err(e) if would_block(&e) => break, // Send buffer full.
            Err(e) if interrupted(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
