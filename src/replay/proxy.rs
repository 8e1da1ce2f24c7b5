//! `loadmux record`: a transparent TCP proxy that records what it forwards.
//!
//! The third example of the event loop, after the client's worker and the built-in
//! servers: one thread, one `mio::Poll`, a listener, the signals, and a slab of
//! connection pairs (a client and its upstream).
//!
//! ```text
//! loop {
//!     poll(timeout = --duration's end, or 0 if a pair spent its budget)
//!     LISTENER → accept until WouldBlock; dial the upstream for each client
//!     SIGNALS  → SIGINT / SIGTERM: stop
//!     token    → pump(): both directions of that pair, as far as the sockets allow
//! }
//! then: close the open pairs, finish the file, rename it into place
//! ```
//!
//! Each direction has one fixed buffer ([`BUFFER`] bytes). Bytes read from one side
//! wait there until the other side takes them, and while the buffer is full that side
//! is not read: a peer that stops reading stalls only its own pair, through TCP's own
//! flow control, and memory never grows.
//!
//! The upstream may speak TLS (`--upstream tls://`): its side of a pair is then a
//! [`Link::Tls`], the same transport the load client uses, and the proxy records the
//! plaintext on both sides, so a recording replays over TLS or in the clear alike.
//! TLS adds three things to a plain pair: a handshake before the client's bytes may
//! go up, records rustls still holds when the socket is full (flushed on the
//! upstream's writable edge), and a half-close that is a `close_notify` before the FIN.
//!
//! Every chunk is recorded the moment it is read, as one record appended to a
//! buffered temp file ([`super::format`]): the recording costs no memory per session,
//! however long the sessions run. At the end the file gets its trailer, is synced and
//! renamed over the output path, so a reader never sees half a recording.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, trace, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;
use socket2::SockRef;

use super::format::{CloseReason, Kind, RecordWriter};
use super::recording::Turn;
use crate::engine::conn::{interrupted, would_block};
use crate::transport::{dial_unix, Link, Socket, Target, TlsClient, Transport};

/// The listening socket's token.
const LISTENER: Token = Token(usize::MAX - 1);
/// SIGINT and SIGTERM arrive as events on this token.
const SIGNALS: Token = Token(usize::MAX);

/// Bytes buffered per direction per pair. One read fills at most this much, so it
/// is also the largest record the proxy writes.
pub const BUFFER: usize = 64 * 1024;

/// Reads plus writes one event may do on one pair before the others get a turn.
const IO_BUDGET: usize = 16;

/// What `loadmux record` was asked to do.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// Where clients connect.
    pub listen: SocketAddr,
    /// Where each client's connection is forwarded: TCP or a Unix socket (the
    /// client side is always TCP).
    pub upstream: Target,
    /// TLS to the upstream (`--upstream tls://`), with the trust and server name of
    /// `--cacert`/`--insecure`/`--sni`. The client side stays plaintext.
    pub tls: Option<Arc<TlsClient>>,
    /// The recording's final path (written through a temp file beside it).
    pub output: PathBuf,
    /// Stop after this long (otherwise only a signal stops it).
    pub duration: Option<Duration>,
}

/// Why recording stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// `--duration` elapsed.
    Duration,
    /// SIGINT or SIGTERM (the number).
    Signal(i32),
}

/// What was recorded: the summary `record` prints at the end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Client connections accepted (one session each).
    pub sessions: u64,
    /// Steps: requests followed by their answers.
    pub steps: u64,
    /// Bytes the clients sent.
    pub client_bytes: u64,
    /// Bytes the upstream answered.
    pub server_bytes: u64,
    /// Sessions that ended with a reset or error on either side.
    pub failed_sessions: u64,
    /// Records in the file (the trailer not counted).
    pub records: u64,
}

/// A recording proxy bound to its address, not yet running.
pub struct Proxy {
    poll: Poll,
    listener: TcpListener,
    signals: Signals,
    config: ProxyConfig,
    temp_path: PathBuf,
    writer: RecordWriter<BufWriter<File>>,
    pairs: Slab<Pair>,
    /// Pairs that spent their I/O budget while still ready.
    again: Vec<usize>,
    summary: Summary,
}

/// One client connection and its upstream connection.
struct Pair {
    /// The session number in the recording.
    session: u32,
    client: TcpStream,
    /// The upstream's transport: a plain TCP or Unix socket, or TLS over TCP.
    upstream: Link,
    /// How far the upstream's connect (and TLS handshake) has come.
    dial: Dial,
    /// Client → upstream.
    to_upstream: Flow,
    /// Upstream → client.
    to_client: Flow,
    /// Who spoke last, to count steps as they are recorded.
    turn: Turn,
    /// When this session's previous record was written (the next record's gap).
    last_record: Instant,
}

/// The upstream side's connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dial {
    /// In progress: nothing is written upstream yet (client bytes wait in the buffer).
    Connecting,
    /// Connected, the TLS handshake under way: client bytes still wait.
    Handshaking,
    /// Established (and the handshake, if any, complete).
    Connected,
}

/// One direction of a pair: a fixed buffer between a source and a destination socket.
struct Flow {
    buf: Box<[u8]>,
    /// Buffered bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    state: FlowState,
}

/// Where one direction is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FlowState {
    /// Bytes may still come from the source.
    Open,
    /// The source sent EOF; the buffered bytes are still to be written.
    SourceClosed,
    /// Everything was written and the destination's write side shut down (FIN sent).
    Finished,
}

/// Which side of a pair failed, ending it.
#[derive(Debug)]
enum Failed {
    Client(io::Error),
    Upstream(io::Error),
}

/// Where a flow's I/O error came from.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Reading the source socket.
    Source,
    /// Writing the destination socket.
    Destination,
    /// Writing the recording file.
    Recording,
}

impl Flow {
    fn new() -> Flow {
        Flow { buf: vec![0; BUFFER].into_boxed_slice(), start: 0, end: 0, state: FlowState::Open }
    }

    /// Whether the buffer holds a whole buffer's worth: the source is not read
    /// until the destination takes some.
    fn is_full(&self) -> bool {
        self.end - self.start == self.buf.len()
    }

    /// Makes the free space one run at the end (sliding the unwritten bytes to the
    /// front if the end is reached: rare, only after partial writes) and returns it.
    fn make_room(&mut self) -> usize {
        if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        self.buf.len() - self.end
    }

    /// Writes buffered bytes to `dst` until it would block or the buffer is empty,
    /// then shuts `dst`'s write side if the source has ended. Returns bytes written.
    fn write_to(&mut self, dst: &mut impl Side) -> Result<usize, (Fault, io::Error)> {
        let mut written = 0;
        while self.start < self.end {
            match dst.write(&self.buf[self.start..self.end]) {
                Ok(0) => return Err((Fault::Destination, io::ErrorKind::WriteZero.into())),
                // A partial write is normal: the loop offers the rest.
                Ok(n) => {
                    self.start += n;
                    written += n;
                }
                // The send buffer is full: the writable edge brings us back.
                Err(e) if would_block(&e) => break,
                Err(e) if interrupted(&e) => continue,
                Err(e) => return Err((Fault::Destination, e)),
            }
        }
        // TLS seals what it took into records; those the socket had no room for wait
        // in rustls until the destination's writable edge.
        let held_out = dst.flush_held().map_err(|e| (Fault::Destination, e))?;
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
            if self.state == FlowState::SourceClosed && held_out {
                // Pass the EOF on as TCP does: FIN after the last byte (after TLS's
                // close_notify, which may itself wait for room).
                match dst.shutdown_write() {
                    Ok(true) => self.state = FlowState::Finished,
                    Ok(false) => {}
                    // The peer is already gone: nothing more to send it anyway.
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => self.state = FlowState::Finished,
                    Err(e) => return Err((Fault::Destination, e)),
                }
            }
        }
        Ok(written)
    }

    /// Reads from `src` into the free space (see [`Flow::make_room`]), once, handing
    /// the bytes to `record`.
    /// Returns bytes read: 0 when the buffer is full, the source would block or has
    /// ended (the state says which).
    fn read_from(
        &mut self,
        src: &mut impl Side,
        record: &mut impl FnMut(&[u8]) -> io::Result<()>,
    ) -> Result<usize, (Fault, io::Error)> {
        if self.state != FlowState::Open {
            return Ok(0);
        }
        if self.make_room() == 0 {
            return Ok(0); // Full: the source waits until the destination takes some.
        }
        loop {
            match src.read(&mut self.buf[self.end..]) {
                // EOF: pass it on once the buffer is written.
                Ok(0) => {
                    self.state = FlowState::SourceClosed;
                    return Ok(0);
                }
                Ok(n) => {
                    record(&self.buf[self.end..self.end + n]).map_err(|e| (Fault::Recording, e))?;
                    self.end += n;
                    return Ok(n);
                }
                // Drained: the readable edge brings us back.
                Err(e) if would_block(&e) => return Ok(0),
                Err(e) if interrupted(&e) => continue,
                Err(e) => return Err((Fault::Source, e)),
            }
        }
    }
}

impl Proxy {
    /// Binds the listener and creates the temp file. Errors name what failed.
    pub fn bind(config: ProxyConfig) -> Result<Proxy, String> {
        if config.tls.is_some() && !matches!(config.upstream, Target::Tcp(_)) {
            return Err(format!("TLS to {} needs a TCP upstream", config.upstream));
        }
        let poll = Poll::new().map_err(|e| format!("cannot create a poller: {e}"))?;
        let mut listener =
            TcpListener::bind(config.listen).map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| format!("cannot register the listener: {e}"))?;
        let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(|e| format!("cannot handle signals: {e}"))?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)
            .map_err(|e| format!("cannot register signals: {e}"))?;
        let temp_path = temp_path_for(&config.output);
        let file = File::create(&temp_path).map_err(|e| format!("cannot create {}: {e}", temp_path.display()))?;
        let writer = RecordWriter::new(BufWriter::with_capacity(BUFFER, file))
            .map_err(|e| format!("cannot write {}: {e}", temp_path.display()))?;
        Ok(Proxy {
            poll,
            listener,
            signals,
            config,
            temp_path,
            writer,
            pairs: Slab::new(),
            again: Vec::new(),
            summary: Summary::default(),
        })
    }

    /// The address clients connect to (with the port the system chose for `:0`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Proxies and records until a signal or `--duration`, then writes the file into
    /// place. An error (the recording could not be written) removes the temp file.
    pub fn run(mut self) -> Result<(Stop, Summary), String> {
        let (temp_path, output) = (self.temp_path.clone(), self.config.output.clone());
        let result = self.serve().and_then(|stop| self.finish().map(|summary| (stop, summary)));
        if result.is_err() {
            let _ = std::fs::remove_file(&temp_path);
        }
        result.map_err(|e| format!("cannot write the recording {}: {e}", output.display()))
    }

    /// The event loop.
    fn serve(&mut self) -> io::Result<Stop> {
        let deadline = self.config.duration.map(|d| Instant::now() + d);
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(Stop::Duration);
            }
            let timeout = if self.again.is_empty() { deadline.map(|d| d - now) } else { Some(Duration::ZERO) };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if interrupted(&e) {
                    continue; // A signal: its event comes through the signals token.
                }
                return Err(e);
            }
            for event in events.iter() {
                trace!("record event {:?} r={} w={}", event.token(), event.is_readable(), event.is_writable());
                match event.token() {
                    LISTENER => self.accept_all()?,
                    SIGNALS => {
                        if let Some(signal) = self.signals.pending().next() {
                            return Ok(Stop::Signal(signal));
                        }
                    }
                    // An edge moves the directions it concerns: readable on a socket
                    // feeds the flow it is the source of; writable drains the flow it
                    // is the destination of.
                    Token(t) => {
                        let from_client = t % 2 == 0;
                        let (readable, writable) = (event.is_readable(), event.is_writable());
                        let wake = Wake {
                            to_upstream: Cause::of(from_client && readable, !from_client && writable),
                            to_client: Cause::of(!from_client && readable, from_client && writable),
                            // The peer closed or the socket failed: its EOF or error brings
                            // no new edge, so a short read does not mean drained.
                            closed: event.is_read_closed() || event.is_error(),
                        };
                        self.pump(t / 2, wake)?
                    }
                }
            }
            for key in std::mem::take(&mut self.again) {
                self.pump(key, Wake::BOTH)?;
            }
        }
    }

    /// Accepts every pending client and dials the upstream for each.
    fn accept_all(&mut self) -> io::Result<()> {
        loop {
            let (mut client, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                // The accept queue is empty.
                Err(e) if would_block(&e) => return Ok(()),
                Err(e) if interrupted(&e) => continue,
                // Out of descriptors, or a connection that died in the queue: leave the
                // rest queued; the next arrival or close brings another event.
                Err(e) => {
                    warn!("record: accept failed: {e}");
                    return Ok(());
                }
            };
            let dialed = match &self.config.upstream {
                Target::Tcp(addr) => TcpStream::connect(*addr).map(Socket::Tcp),
                Target::Unix(path) => dial_unix(path),
            };
            // The ClientHello is made now; it goes out once the socket connects.
            let linked = dialed.and_then(|socket| match &self.config.tls {
                Some(tls) => tls.wrap(socket, 0).map(|stream| Link::Tls(Box::new(stream))),
                None => Ok(Link::Plain(socket)),
            });
            let mut upstream = match linked {
                Ok(s) => s,
                Err(e) => {
                    // Refused at once or out of ports: the client sees its connection
                    // reset, as it would have connecting directly.
                    warn!("record: cannot dial {}: {e}", self.config.upstream);
                    let _ = SockRef::from(&client).set_linger(Some(Duration::ZERO));
                    continue;
                }
            };
            // Small requests and answers go out at once: Nagle would add up to 40 ms
            // (delayed ACK) to a proxied request.
            let _ = client.set_nodelay(true);
            if let Socket::Tcp(tcp) = upstream.socket_mut() {
                let _ = tcp.set_nodelay(true);
            }
            let entry = self.pairs.vacant_entry();
            let key = entry.key();
            let both = Interest::READABLE | Interest::WRITABLE;
            // Registered once for both directions; never re-registered.
            if let Err(e) = self.poll.registry().register(&mut client, Token(key * 2), both) {
                warn!("record: cannot register {peer}: {e}");
                continue;
            }
            if let Err(e) = self.poll.registry().register(upstream.socket_mut(), Token(key * 2 + 1), both) {
                warn!("record: cannot register the upstream for {peer}: {e}");
                continue;
            }
            let session = self.summary.sessions as u32;
            self.summary.sessions += 1;
            let now = Instant::now();
            self.writer.write(Kind::Open, session, Duration::ZERO, &[])?;
            debug!("record: session {session} from {peer} as pair {key}");
            entry.insert(Pair {
                session,
                client,
                upstream,
                dial: Dial::Connecting,
                to_upstream: Flow::new(),
                to_client: Flow::new(),
                turn: Turn::Start,
                last_record: now,
            });
        }
    }

    /// Moves the directions `wake` names as far as the sockets allow, recording what
    /// is read; closes the pair when both directions have finished or a side failed.
    /// Errors are the recording file's only: a socket's failure ends just its pair.
    fn pump(&mut self, key: usize, mut wake: Wake) -> io::Result<()> {
        let Proxy { pairs, writer, summary, again, .. } = self;
        let Some(pair) = pairs.get_mut(key) else { return Ok(()) };
        if pair.dial != Dial::Connected {
            match advance_dial(pair) {
                // Ready: the client's first bytes may be waiting in the buffer.
                Ok(true) => wake = Wake::BOTH,
                Ok(false) => {} // Still connecting or handshaking: an edge brings us back.
                Err(e) => return self.close(key, Err(Failed::Upstream(e))),
            }
        }
        match pump_pair(pair, wake, writer, summary) {
            // Still moving bytes after the whole budget: the others get a turn first.
            Ok(true) => again.push(key),
            Ok(false) => {
                let done = |f: &Flow| f.state == FlowState::Finished;
                if done(&pair.to_upstream) && done(&pair.to_client) {
                    return self.close(key, Ok(()));
                }
            }
            Err(PumpError::Recording(e)) => return Err(e),
            Err(PumpError::Socket(failed)) => return self.close(key, Err(failed)),
        }
        Ok(())
    }

    /// Ends a pair: records its `Close`, and passes a failure on to the other side as
    /// a reset (the close sends RST), as if there were no proxy in between.
    fn close(&mut self, key: usize, how: Result<(), Failed>) -> io::Result<()> {
        let pair = self.pairs.remove(key);
        let reason = match &how {
            Ok(()) => CloseReason::Clean,
            Err(Failed::Client(_)) => CloseReason::ClientError,
            Err(Failed::Upstream(_)) => CloseReason::UpstreamError,
        };
        if let Err(failed) = how {
            self.summary.failed_sessions += 1;
            let why = match &failed {
                Failed::Client(e) => {
                    let _ = pair.upstream.reset_on_close();
                    format!("client side: {e}")
                }
                Failed::Upstream(e) => {
                    let _ = SockRef::from(&pair.client).set_linger(Some(Duration::ZERO));
                    format!("upstream side: {e}")
                }
            };
            debug!("record: session {} ended on its {why}", pair.session);
        }
        self.writer.write(Kind::Close, pair.session, pair.last_record.elapsed(), &[reason.byte()])
        // Dropping the pair closes both sockets (and deregisters them).
    }

    /// Closes the open pairs, writes the trailer, syncs and renames the file.
    fn finish(mut self) -> io::Result<Summary> {
        let open: Vec<(u32, Duration)> = self.pairs.drain().map(|p| (p.session, p.last_record.elapsed())).collect();
        for (session, gap) in open {
            self.writer.write(Kind::Close, session, gap, &[CloseReason::Stopped.byte()])?;
        }
        self.summary.records = self.writer.records();
        let file = self.writer.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&self.temp_path, &self.config.output)?;
        Ok(self.summary)
    }
}

/// Why one pump step stopped.
enum PumpError {
    /// Writing the recording failed: recording cannot go on.
    Recording(io::Error),
    /// A socket failed: its pair ends.
    Socket(Failed),
}

/// Which directions of a pair an event concerns, and why.
#[derive(Clone, Copy, Debug)]
struct Wake {
    /// Client → upstream, if this event concerns it.
    to_upstream: Option<Cause>,
    /// Upstream → client, if this event concerns it.
    to_client: Option<Cause>,
    /// The source may have an EOF or error behind its data (no new edge will come).
    closed: bool,
}

impl Wake {
    /// Both directions, as if both sources were readable: after a connect, and for a
    /// pair that spent its budget.
    const BOTH: Wake =
        Wake { to_upstream: Some(Cause::SourceReadable), to_client: Some(Cause::SourceReadable), closed: true };
}

/// Why a direction is pumped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    /// Its source has bytes (or EOF) to read.
    SourceReadable,
    /// Its destination has room again: write what is buffered, and read the source
    /// only if the full buffer had stopped reading it.
    DestinationWritable,
}

impl Cause {
    /// The cause for a direction whose source is readable and/or destination writable.
    fn of(source_readable: bool, destination_writable: bool) -> Option<Cause> {
        match (source_readable, destination_writable) {
            (true, _) => Some(Cause::SourceReadable),
            (false, true) => Some(Cause::DestinationWritable),
            (false, false) => None,
        }
    }
}

/// Pumps the directions `wake` names. Returns true when a direction spent its budget
/// with bytes still moving.
fn pump_pair(
    pair: &mut Pair,
    wake: Wake,
    writer: &mut RecordWriter<BufWriter<File>>,
    summary: &mut Summary,
) -> Result<bool, PumpError> {
    let Pair { session, client, upstream, dial, to_upstream, to_client, turn, last_record } = pair;
    let mut record = |from_client: bool, bytes: &[u8]| -> io::Result<()> {
        let now = Instant::now();
        if turn.advance(from_client) {
            summary.steps += 1;
        }
        let (kind, counter) = if from_client {
            (Kind::Client, &mut summary.client_bytes)
        } else {
            (Kind::Server, &mut summary.server_bytes)
        };
        *counter += bytes.len() as u64;
        let gap = now.saturating_duration_since(*last_record);
        *last_record = now;
        writer.write(kind, *session, gap, bytes)
    };
    // Which side a fault in each direction came from.
    let upward = |(fault, e): (Fault, io::Error)| match fault {
        Fault::Recording => PumpError::Recording(e),
        Fault::Source => PumpError::Socket(Failed::Client(e)),
        Fault::Destination => PumpError::Socket(Failed::Upstream(e)),
    };
    let downward = |(fault, e): (Fault, io::Error)| match fault {
        Fault::Recording => PumpError::Recording(e),
        Fault::Source => PumpError::Socket(Failed::Upstream(e)),
        Fault::Destination => PumpError::Socket(Failed::Client(e)),
    };
    let mut again = false;
    if let Some(cause) = wake.to_upstream {
        // Until the upstream's connect completes, the client's bytes wait in the buffer.
        let dst = (*dial == Dial::Connected).then_some(&mut *upstream);
        again |= pump_flow(to_upstream, client, dst, cause, wake.closed, &mut |b| record(true, b)).map_err(upward)?;
    }
    if let (Some(cause), Dial::Connected) = (wake.to_client, *dial) {
        again |= pump_flow(to_client, upstream, Some(client), cause, wake.closed, &mut |b| record(false, b))
            .map_err(downward)?;
    }
    Ok(again)
}

/// Moves one direction: writes what is buffered, reads the source while there is
/// room, writes again. Returns true when the budget ran out with bytes still moving.
///
/// Syscalls are counted: a short read means the source is drained (edge-triggered,
/// its next bytes bring a new edge), so no read is made just to see `WouldBlock`,
/// unless the source may have an EOF behind its data (`closed`). A wake for room at
/// the destination reads the source only if a full buffer had stopped reading it.
/// A PING through the proxy costs four syscalls: read, write, read, write.
fn pump_flow(
    flow: &mut Flow,
    src: &mut impl Side,
    mut dst: Option<&mut impl Side>,
    cause: Cause,
    closed: bool,
    record: &mut impl FnMut(&[u8]) -> io::Result<()>,
) -> Result<bool, (Fault, io::Error)> {
    let was_full = flow.is_full();
    if let Some(dst) = dst.as_deref_mut() {
        flow.write_to(dst)?;
    }
    if cause == Cause::DestinationWritable && !was_full {
        return Ok(false); // The source was never stopped: its own edges bring it.
    }
    for _ in 0..IO_BUDGET {
        let room = flow.make_room();
        if room == 0 {
            return Ok(false); // Full: the destination's writable edge brings us back.
        }
        let read = flow.read_from(src, record)?;
        if let Some(dst) = dst.as_deref_mut() {
            flow.write_to(dst)?;
        }
        // A short read drained a plain socket; TLS may still hold decrypted bytes,
        // and says so through `drained`.
        if read == 0 || (read < room && src.drained() && !closed) {
            return Ok(false); // Drained, ended, or a short read: wait for the next edge.
        }
    }
    Ok(true)
}

/// Moves the upstream's dial on: connect, then the TLS handshake if there is one.
/// `Ok(true)` once the upstream is ready for the client's bytes. A connect's failure
/// shows in `SO_ERROR` first (refused); `is_connected` is false while in progress.
fn advance_dial(pair: &mut Pair) -> io::Result<bool> {
    if pair.dial == Dial::Connecting {
        if let Some(e) = pair.upstream.take_error()? {
            return Err(e);
        }
        if !pair.upstream.is_connected()? {
            return Ok(false);
        }
        pair.dial = Dial::Handshaking;
    }
    // A plain socket's handshake is complete at once.
    if !pair.upstream.handshake()? {
        return Ok(false);
    }
    pair.dial = Dial::Connected;
    Ok(true)
}

/// One end of a pair as a flow sees it: the client's TCP socket, or the upstream's
/// transport. The methods beyond read and write are what TLS needs and a plain
/// socket answers at once.
trait Side {
    /// Reads bytes (plaintext, for TLS). `Ok(0)` is the end of the stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes bytes; `Ok(n)` took the first `n`.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// Pushes out bytes the side holds for its socket (TLS records): `Ok(true)` when
    /// none are left, `Ok(false)` when the socket is full.
    fn flush_held(&mut self) -> io::Result<bool>;
    /// After a read shorter than asked: whether the socket is drained, so no edge is
    /// missed by waiting (TLS may still hold decrypted bytes).
    fn drained(&self) -> bool;
    /// Ends the write side, as TCP passes an EOF on: FIN (after TLS's close_notify).
    /// `Ok(false)` while that waits for room in the socket.
    fn shutdown_write(&mut self) -> io::Result<bool>;
}

impl Side for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(self, buf)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Write::write(self, buf)
    }

    fn flush_held(&mut self) -> io::Result<bool> {
        Ok(true)
    }

    fn drained(&self) -> bool {
        true
    }

    fn shutdown_write(&mut self) -> io::Result<bool> {
        self.shutdown(Shutdown::Write).map(|()| true)
    }
}

impl Side for Link {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Transport::read(self, buf)
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Transport::write(self, buf)
    }

    fn flush_held(&mut self) -> io::Result<bool> {
        Transport::flush(self)
    }

    fn drained(&self) -> bool {
        Transport::drained(self)
    }

    fn shutdown_write(&mut self) -> io::Result<bool> {
        match self {
            Link::Plain(socket) => socket.shutdown_write().map(|()| true),
            Link::Tls(tls) => tls.close_write(),
            // The proxy never dials WebSocket; were it to, the link underneath ends.
            Link::Ws(ws) => ws.inner_mut().shutdown_write(),
        }
    }
}

/// The temp file beside `output`: the final rename stays on one file system, so it
/// is atomic.
fn temp_path_for(output: &Path) -> PathBuf {
    let name = output.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "recording".into());
    output.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}
