//! The smallest useful mio load client: N connections to an echo server, each
//! sending "hello\n" and waiting for it to come back, for a few seconds.
//!
//! It is loadmux's event loop with everything else taken away (no timeouts, no
//! reconnects, no stats beyond a counter), to read top to bottom in one sitting.
//!
//!     cargo run --release -- serve --listen 127.0.0.1:7001 &
//!     cargo run --release --example mini_client -- 127.0.0.1:7001 100

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

const MESSAGE: &[u8] = b"hello\n";

/// One connection: the socket, and how far the current exchange has got.
struct Conn {
    socket: TcpStream,
    state: State,
}

enum State {
    /// connect() was called; the first writable event says how it went.
    Connecting,
    /// `written` bytes of the message are out.
    Sending { written: usize },
    /// The whole message is out; `received` bytes of the echo are back.
    Awaiting { received: usize },
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args.next().unwrap_or("127.0.0.1:7001".into()).parse().expect("HOST:PORT");
    let count: usize = args.next().map_or(10, |n| n.parse().expect("a connection count"));

    let mut poll = Poll::new()?;
    let mut conns = Slab::new();
    for _ in 0..count {
        // Nonblocking connect: returns at once, the handshake finishes later.
        let mut socket = TcpStream::connect(addr)?;
        let entry = conns.vacant_entry();
        // The slab key is the token: an event leads straight to its connection.
        // Registered once, for both directions, and never again.
        poll.registry().register(&mut socket, Token(entry.key()), Interest::READABLE | Interest::WRITABLE)?;
        entry.insert(Conn { socket, state: State::Connecting });
    }

    let mut events = Events::with_capacity(1024);
    let mut buf = [0u8; 4096];
    let mut round_trips = 0u64;
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        // Sleep until something is ready (or the run is over).
        poll.poll(&mut events, Some(end.saturating_duration_since(Instant::now())))?;
        for event in events.iter() {
            let conn = &mut conns[event.token().0];
            if let State::Connecting = conn.state {
                // A failed connect shows up as SO_ERROR on a "ready" socket.
                if let Some(e) = conn.socket.take_error()? {
                    eprintln!("connect failed: {e}");
                    continue;
                }
                // No error and no peer yet: still connecting, wait for the next event.
                if conn.socket.peer_addr().is_err() {
                    continue;
                }
                conn.state = State::Sending { written: 0 };
            }
            // mio is edge-triggered: each event is the only notice we get, so we
            // read until WouldBlock and write until done or WouldBlock.
            round_trips += drive(conn, &mut buf)?;
        }
    }
    println!("{count} connections, {round_trips} round trips in 5 s ({:.0}/s)", round_trips as f64 / 5.0);
    Ok(())
}

/// Moves one connection as far as its socket allows. Returns completed round trips.
fn drive(conn: &mut Conn, buf: &mut [u8]) -> io::Result<u64> {
    let mut done = 0;
    loop {
        match conn.state {
            State::Connecting => return Ok(done),
            State::Sending { written } => match conn.socket.write(&MESSAGE[written..]) {
                Ok(n) if written + n == MESSAGE.len() => conn.state = State::Awaiting { received: 0 },
                Ok(n) => conn.state = State::Sending { written: written + n },
                // The send buffer is full: wait for the writable event.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(done),
                // A signal interrupted the call: just try again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            },
            State::Awaiting { received } => match conn.socket.read(buf) {
                // The peer closed the connection.
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) if received + n >= MESSAGE.len() => {
                    done += 1;
                    conn.state = State::Sending { written: 0 };
                }
                Ok(n) => conn.state = State::Awaiting { received: received + n },
                // Nothing more to read for now: wait for the readable event.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(done),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            },
        }
    }
}
