//! WebSocket over a transport: the session layer of one connection
//! (`shared/design.md`, "Layers of one connection").
//!
//! [`WsStream`] wraps a [`Transport`] (plain or TLS) and is itself a `Transport`, so
//! the connection state machine drives it like any other, and sees plaintext only:
//!
//! - `open_session` is the upgrade: it writes the HTTP/1.1 Upgrade request, reads the
//!   answer and checks its `101` and `Sec-WebSocket-Accept`. Bytes that arrive right
//!   after the answer's head stay in the inbox and are decoded as frames.
//! - `read` decodes the server's frames and hands out message bytes only. It stops at
//!   the end of each message and says so (`message_ended`), which is how
//!   `--expect ws` knows where a response ends. A ping queues a pong; a close queues
//!   the close reply and then reads as the end of the stream (`close_code` says which
//!   code the server sent).
//! - `write` takes bytes that are already whole masked frames (the state machine frames
//!   each request where it renders it, `frame_in_place`), and passes them on. It follows
//!   the frame boundaries in what it passes, so that a queued pong or close goes out
//!   between two frames, never inside one: the one send path stays in order.

use std::io;

use super::{encode_frame, ClientHandshake, Event, FrameDecoder, HandshakeError, Opcode, WsError, WsSettings};
use crate::io_kind::{interrupted, would_block};
use crate::transport::{TlsInfo, Transport};

/// Raw bytes read from the transport and not yet decoded. Fixed: reads from the
/// socket are at most this long, so the server cannot make it grow (and a message
/// larger than this is decoded in pieces, bounded by `--max-response`). Larger
/// than the upgrade answer's limit, so the head check fails before the inbox fills.
const INBOX_BYTES: usize = 16 * 1024;

/// The close code reported when the server's close frame carried none (RFC 6455
/// section 7.1.5: "no status received").
pub const NO_STATUS_CODE: u16 = 1005;

/// Where the WebSocket session is.
enum Phase {
    /// The Upgrade request goes out (`written` of its bytes so far), then the answer
    /// is awaited in the inbox.
    Upgrading {
        /// The key sent, to check the answer against.
        handshake: ClientHandshake,
        /// The request's bytes.
        request: Vec<u8>,
        /// How many of them the transport took.
        written: usize,
    },
    /// Upgraded: frames both ways.
    Open,
    /// The server sent a close frame (with `code`); the reply is queued, and reads
    /// return the end of the stream.
    Closed {
        /// The server's close code, [`NO_STATUS_CODE`] if it sent none.
        code: u16,
    },
}

/// Where the frames written through [`WsStream`] stand: inside one, or between two.
/// A client frame's header is 2 bytes, plus 2 or 8 of extended length, plus the
/// 4-byte mask.
#[derive(Clone, Copy, Debug)]
enum Outgoing {
    /// `have` header bytes of the next frame written (0: at a boundary).
    Header { bytes: [u8; 14], have: usize },
    /// `left` payload bytes of the current frame still to write.
    Payload { left: u64 },
}

const BETWEEN_FRAMES: Outgoing = Outgoing::Header { bytes: [0; 14], have: 0 };

impl Outgoing {
    /// Follows `written` (bytes the transport took) through the frames.
    fn advance(&mut self, mut written: &[u8]) {
        while let Some(&byte) = written.first() {
            match self {
                Outgoing::Payload { left } => {
                    let n = written.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    *left -= n as u64;
                    written = &written[n..];
                    if *left == 0 {
                        *self = BETWEEN_FRAMES;
                    }
                }
                Outgoing::Header { bytes, have } => {
                    bytes[*have] = byte;
                    *have += 1;
                    written = &written[1..];
                    let header = &bytes[..*have];
                    if *have == client_header_len(header) {
                        let len = payload_len(header);
                        *self = if len == 0 { BETWEEN_FRAMES } else { Outgoing::Payload { left: len } };
                    }
                }
            }
        }
    }

    /// True between two frames, where a control frame may go.
    fn at_boundary(&self) -> bool {
        matches!(self, Outgoing::Header { have: 0, .. })
    }
}

/// A masked client frame's header length, given its first bytes (2 until the second
/// byte is known).
fn client_header_len(start: &[u8]) -> usize {
    match start.get(1).map(|b| b & 0x7F) {
        None => 2,
        Some(126) => 2 + 2 + 4,
        Some(127) => 2 + 8 + 4,
        Some(_) => 2 + 4,
    }
}

/// The payload length a complete client frame header announces.
fn payload_len(header: &[u8]) -> u64 {
    match header[1] & 0x7F {
        126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
        127 => u64::from_be_bytes(header[2..10].try_into().unwrap_or_default()),
        short => u64::from(short),
    }
}

/// One connection's WebSocket session over the transport `T`.
pub struct WsStream<T: Transport> {
    inner: T,
    phase: Phase,
    decoder: FrameDecoder,
    /// Raw bytes from the transport; `inbox[start..end]` are not decoded yet.
    inbox: Box<[u8]>,
    start: usize,
    end: usize,
    /// The transport's last read was short and it knows it is drained.
    inner_drained: bool,
    /// Control frames (pong, close reply) waiting for a frame boundary or for room
    /// in the socket. Small: control payloads are at most 125 bytes.
    outbox: Vec<u8>,
    /// Where the data frames written so far stand.
    outgoing: Outgoing,
    /// The last `read` returned the end of a message.
    message_ended: bool,
    /// The last byte of a message's part, held back from a `read` that did not reach
    /// the message's end. A message may end with an empty frame (python3-websockets
    /// ends a fragmented message so), and a `read` cannot say "the message ended"
    /// with no byte (0 means end of stream): holding one byte back means the end
    /// always comes with at least one.
    held: Option<u8>,
    /// `--max-response`, applied to each message (over all its fragments).
    max_message: u64,
}

impl<T: Transport> WsStream<T> {
    /// A session over `inner` (not yet connected) to target number `target` of
    /// `settings`: its Upgrade request, with a fresh random key, is made now.
    pub fn new(inner: T, settings: &WsSettings, target: usize, max_message: usize) -> WsStream<T> {
        let protocols: Vec<&str> = settings.protocols.iter().map(String::as_str).collect();
        let handshake = ClientHandshake::new(&mut fastrand::Rng::new(), &protocols);
        let headers: Vec<(&str, &str)> = settings.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let place = settings.target(target);
        let mut request = Vec::new();
        handshake.write_request(&place.host, &place.path, &headers, &mut request);
        WsStream {
            inner,
            phase: Phase::Upgrading { handshake, request, written: 0 },
            decoder: FrameDecoder::default(),
            inbox: vec![0; INBOX_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            inner_drained: false,
            outbox: Vec::new(),
            outgoing: BETWEEN_FRAMES,
            message_ended: false,
            held: None,
            max_message: u64::try_from(max_message).unwrap_or(u64::MAX),
        }
    }

    /// The transport underneath.
    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// The transport underneath, mutably (to register its socket).
    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Queues a control frame (a pong, a close reply) and sends it now if the frames
    /// written so far are at a boundary. If they are not, the data frame in progress
    /// is blocked on a full socket, and the pong follows it when it completes.
    fn queue_control(&mut self, opcode: Opcode, payload: &[u8]) -> io::Result<()> {
        encode_frame(opcode, true, payload, &mut fastrand::Rng::new(), &mut self.outbox);
        if self.outgoing.at_boundary() {
            self.flush_outbox()?;
        }
        Ok(())
    }

    /// Writes queued control frames. `Ok(true)` when none are left.
    fn flush_outbox(&mut self) -> io::Result<bool> {
        while !self.outbox.is_empty() {
            match self.inner.write(&self.outbox) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.outbox.drain(..n);
                }
                // Socket full: a writable edge brings the state machine to `flush`.
                Err(e) if would_block(&e) => return Ok(false),
                // A signal came first: try again.
                Err(e) if interrupted(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Decodes the inbox into `buf` (from `filled` on), until the inbox is used up,
    /// `buf` is full, a message ends, or the server closes. Returns the new fill.
    fn decode_into(&mut self, buf: &mut [u8], mut filled: usize) -> io::Result<usize> {
        while self.start < self.end && filled < buf.len() {
            // Never more input than `buf` has room for: a data event lends at most
            // the bytes it was given.
            let room = buf.len() - filled;
            let input = &self.inbox[self.start..self.end.min(self.start + room)];
            let (used, event) = self.decoder.feed(input, self.max_message).map_err(ws_error)?;
            let event = event.map(|e| match e {
                Event::Data { bytes, end, .. } => {
                    buf[filled..filled + bytes.len()].copy_from_slice(bytes);
                    filled += bytes.len();
                    Said::Data { end }
                }
                Event::Ping(payload) => Said::Ping(payload),
                Event::Pong => Said::Nothing,
                Event::Close { code } => Said::Close(code.unwrap_or(NO_STATUS_CODE)),
            });
            self.start += used;
            match event {
                None | Some(Said::Nothing) | Some(Said::Data { end: false }) => {}
                // An empty message has no byte to return (a 0-byte read means
                // end of stream), so it cannot be a response: skipped.
                Some(Said::Data { end: true }) if filled == 0 => {}
                Some(Said::Data { end: true }) => {
                    self.message_ended = true;
                    return Ok(filled);
                }
                Some(Said::Ping(payload)) => self.queue_control(Opcode::Pong, payload.as_bytes())?,
                Some(Said::Close(code)) => {
                    // Echo the code, as RFC 6455 section 5.5.1 suggests; a close that
                    // gave no code (1005 may not be sent) gets an empty close.
                    let reply = if code == NO_STATUS_CODE { Vec::new() } else { code.to_be_bytes().to_vec() };
                    self.phase = Phase::Closed { code };
                    // Best effort: the connection closes right after.
                    if let Err(e) = self.queue_control(Opcode::Close, &reply) {
                        log::debug!("WebSocket close reply not sent: {e}");
                    }
                    return Ok(filled);
                }
            }
        }
        Ok(filled)
    }
}

/// A session still open when its connection is dropped (the run ended, or the state
/// machine gave up on it) says goodbye with a close frame (1000, normal closure), so
/// the server sees a clean end rather than an abnormal one (1006). Best effort, with
/// one nonblocking write: never inside a data frame, and never after the server's own
/// close (its reply went out already).
impl<T: Transport> Drop for WsStream<T> {
    fn drop(&mut self) {
        if matches!(self.phase, Phase::Open) && self.outgoing.at_boundary() && self.outbox.is_empty() {
            let mut close = Vec::with_capacity(8);
            super::encode_close(1000, &mut fastrand::Rng::new(), &mut close);
            let _ = self.inner.write(&close);
            let _ = self.inner.flush();
        }
    }
}

/// What a decoded event asks of the stream, once its borrowed bytes are copied out.
enum Said {
    Data { end: bool },
    Ping(super::ControlPayload),
    Close(u16),
    Nothing,
}

/// A frame that breaks RFC 6455 (or a message over the limit), as an I/O error that
/// [`is_session_error`] recognises.
fn ws_error(e: WsError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// A refused upgrade, as an I/O error that [`is_session_error`] recognises.
fn refused(e: HandshakeError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// True when `err` is the WebSocket session's (a refused upgrade, a bad frame, a
/// message over `--max-response`), not the socket's: a `protocol` error.
pub fn is_session_error(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|inner| inner.is::<WsError>() || inner.is::<HandshakeError>())
}

/// The refused upgrade inside `err`, if that is what it is (its status is logged).
pub fn refused_upgrade(err: &io::Error) -> Option<&HandshakeError> {
    err.get_ref().and_then(|inner| inner.downcast_ref::<HandshakeError>())
}

impl<T: Transport> Transport for WsStream<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.message_ended = false;
        if buf.is_empty() {
            return Ok(0);
        }
        let mut filled = 0;
        if let Some(byte) = self.held.take() {
            buf[0] = byte;
            filled = 1;
        }
        loop {
            if let Phase::Closed { .. } = self.phase {
                // The server closed the session: its end of stream, after any
                // message bytes that came before the close.
                return Ok(filled);
            }
            filled = self.decode_into(buf, filled)?;
            if self.message_ended {
                return Ok(filled);
            }
            if filled == buf.len() || (filled > 0 && self.start == self.end) {
                if !self.decoder.in_message() || buf.len() == 1 {
                    return Ok(filled);
                }
                // Part of a message: its last byte waits for the message's end.
                if filled > 1 {
                    filled -= 1;
                    self.held = Some(buf[filled]);
                    return Ok(filled);
                }
                // A single byte so far: it stays in `buf`, and more is read.
            }
            if matches!(self.phase, Phase::Closed { .. }) || self.start < self.end {
                continue;
            }
            // The inbox is used up: refill it from the transport.
            self.start = 0;
            self.end = 0;
            match self.inner.read(&mut self.inbox) {
                // The transport's end of stream (no close frame: an abrupt close).
                Ok(0) => return Ok(0),
                Ok(n) => {
                    self.end = n;
                    self.inner_drained = n < self.inbox.len() && self.inner.drained();
                }
                // Not ready, or a signal came first: the caller knows both. A
                // byte in `buf` (a message's first or held one) is kept for then.
                Err(e) => {
                    if filled == 1 {
                        self.held = Some(buf[0]);
                    }
                    return Err(e);
                }
            }
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Control frames that waited for a boundary go first.
        if !self.outbox.is_empty() && self.outgoing.at_boundary() && !self.flush_outbox()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.inner.write(buf)?;
        self.outgoing.advance(&buf[..n]);
        if !self.outbox.is_empty() && self.outgoing.at_boundary() {
            self.flush_outbox()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<bool> {
        if !self.outbox.is_empty() && self.outgoing.at_boundary() && !self.flush_outbox()? {
            return Ok(false);
        }
        self.inner.flush()
    }

    fn wants_write(&self) -> bool {
        self.inner.wants_write() || (!self.outbox.is_empty() && self.outgoing.at_boundary())
    }

    fn handshake(&mut self) -> io::Result<bool> {
        self.inner.handshake()
    }

    fn drained(&self) -> bool {
        self.start == self.end && self.inner_drained
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    fn is_connected(&self) -> io::Result<bool> {
        self.inner.is_connected()
    }

    fn reset_on_close(&self) -> io::Result<()> {
        self.inner.reset_on_close()
    }

    fn tls_info(&self) -> Option<TlsInfo> {
        self.inner.tls_info()
    }

    fn has_session(&self) -> bool {
        true
    }

    fn open_session(&mut self) -> io::Result<bool> {
        let WsStream { inner, phase, inbox, start, end, .. } = self;
        let Phase::Upgrading { handshake, request, written } = phase else { return Ok(true) };
        // The request, possibly over several writable edges.
        while *written < request.len() {
            match inner.write(&request[*written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => *written += n,
                // Socket full: the writable edge brings us back.
                Err(e) if would_block(&e) => return Ok(false),
                // A signal came first: try again.
                Err(e) if interrupted(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        if inner.wants_write() && !inner.flush()? {
            return Ok(false);
        }
        // The answer: read until its head is complete. Edge-triggered, so read until
        // WouldBlock before waiting.
        loop {
            if let Some(upgraded) = handshake.check_response(&inbox[..*end]).map_err(refused)? {
                // What follows the head is frames: keep it.
                *start = upgraded.consumed;
                *phase = Phase::Open;
                return Ok(true);
            }
            match inner.read(&mut inbox[*end..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection during the WebSocket upgrade",
                    ))
                }
                Ok(n) => *end += n,
                // Not all of it yet: the next readable edge brings us back.
                Err(e) if would_block(&e) => return Ok(false),
                // A signal came first: try again.
                Err(e) if interrupted(&e) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn message_ended(&self) -> bool {
        self.message_ended
    }

    fn close_code(&self) -> Option<u16> {
        match self.phase {
            Phase::Closed { code } => Some(code),
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
