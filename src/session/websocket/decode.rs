//! Server frames, decoded incrementally (RFC 6455 section 5): fed only new bytes, split
//! anywhere, one event per call at most.
//!
//! Message data is never copied: each [`Event::Data`] borrows the input. A message sent
//! in several frames (continuations) is one message, and `max_message` bounds the
//! message, not the frame: the total is checked at each frame's header, before its
//! payload arrives. Control frames (at most 125 bytes) may come between the fragments
//! of a message; their payload is kept in a fixed array, since a pong must echo it.

use std::fmt;

use super::Opcode;

/// What kind of data message is arriving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// Text (UTF-8; not validated here).
    Text,
    /// Binary.
    Binary,
}

/// A control frame's payload (at most 125 bytes), held inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ControlPayload {
    bytes: [u8; 125],
    len: u8,
}

impl ControlPayload {
    const EMPTY: ControlPayload = ControlPayload { bytes: [0; 125], len: 0 };

    /// The payload's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Debug for ControlPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ControlPayload({})", self.as_bytes().escape_ascii())
    }
}

/// Something the server's frames said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// Bytes of the current message, borrowed from the input. `end` is true on the
    /// last bytes of the message (then `bytes` may be empty: a final empty frame).
    Data {
        /// Text or binary.
        kind: MessageKind,
        /// The next bytes of the message.
        bytes: &'a [u8],
        /// The message is complete with these bytes.
        end: bool,
    },
    /// A ping: answer with a pong carrying this payload. Not a message.
    Ping(ControlPayload),
    /// A pong (unsolicited or not): nothing to do.
    Pong,
    /// The server is closing, with its status code if it sent one. Answer with a
    /// close frame, then close the connection.
    Close {
        /// The close code (1000 normal, 1001 going away...).
        code: Option<u16>,
    },
}

/// Frames that break RFC 6455, or a message over the limit: a `protocol` error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsError(pub String);

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebSocket: {}", self.0)
    }
}

impl std::error::Error for WsError {}

/// Where the decoder is within the current frame.
#[derive(Clone, Copy, Debug)]
enum State {
    /// Reading a frame header (2 to 10 bytes from a server: no mask), `have` of them
    /// so far.
    Header { bytes: [u8; 10], have: u8 },
    /// Inside a data frame's payload: `left` bytes to go; `fin` if the frame ends
    /// its message.
    Data { left: u64, fin: bool },
    /// Inside a control frame's payload.
    Control { opcode: Opcode, payload: ControlPayload, left: u8 },
}

const NEW_HEADER: State = State::Header { bytes: [0; 10], have: 0 };

/// A message in progress (its first frame seen, its last not yet).
#[derive(Clone, Copy, Debug)]
struct Message {
    kind: MessageKind,
    /// Payload bytes announced so far, over all its frames.
    len: u64,
}

/// Per-connection decoding state for the frames a server sends.
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    state: State,
    message: Option<Message>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder { state: NEW_HEADER, message: None }
    }
}

impl FrameDecoder {
    /// Consumes bytes of `input` and returns how many, with the event they completed,
    /// if any. Call again with the rest while bytes remain; a call that returns an
    /// event may leave bytes unconsumed. `max_message` bounds one message's payload.
    pub fn feed<'a>(&mut self, input: &'a [u8], max_message: u64) -> Result<(usize, Option<Event<'a>>), WsError> {
        if input.is_empty() {
            return Ok((0, None));
        }
        match self.state {
            State::Header { mut bytes, mut have } => {
                let mut used = 0;
                // The header's length is known from its first two bytes.
                while used < input.len() {
                    let need = header_len(&bytes[..usize::from(have)]);
                    if usize::from(have) == need {
                        break;
                    }
                    bytes[usize::from(have)] = input[used];
                    have += 1;
                    used += 1;
                }
                let need = header_len(&bytes[..usize::from(have)]);
                if usize::from(have) < need {
                    self.state = State::Header { bytes, have };
                    return Ok((used, None));
                }
                self.state = NEW_HEADER;
                let event = self.header(&bytes[..need], max_message)?;
                Ok((used, event))
            }
            State::Data { left, fin } => {
                let n = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let left = left - n as u64;
                let kind = self.message.map_or(MessageKind::Binary, |m| m.kind);
                let end = left == 0 && fin;
                self.state = if left == 0 { NEW_HEADER } else { State::Data { left, fin } };
                if end {
                    self.message = None;
                }
                Ok((n, Some(Event::Data { kind, bytes: &input[..n], end })))
            }
            State::Control { opcode, mut payload, left } => {
                let n = input.len().min(usize::from(left));
                let at = usize::from(payload.len);
                payload.bytes[at..at + n].copy_from_slice(&input[..n]);
                payload.len += n as u8;
                let left = left - n as u8;
                if left > 0 {
                    self.state = State::Control { opcode, payload, left };
                    return Ok((n, None));
                }
                self.state = NEW_HEADER;
                Ok((n, Some(control_event(opcode, payload)?)))
            }
        }
    }

    /// True between a message's first frame and its end.
    pub fn in_message(&self) -> bool {
        self.message.is_some()
    }

    /// A complete header: checks it and moves to its payload. Returns an event when
    /// the frame has no payload.
    fn header(&mut self, header: &[u8], max_message: u64) -> Result<Option<Event<'static>>, WsError> {
        let (first, second) = (header[0], header[1]);
        let fin = first & 0x80 != 0;
        if first & 0x70 != 0 {
            return Err(WsError("reserved bits set, with no extension agreed".into()));
        }
        if second & 0x80 != 0 {
            return Err(WsError("a masked frame from the server".into()));
        }
        let len = match second & 0x7F {
            126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
            127 => {
                let len = u64::from_be_bytes(header[2..10].try_into().unwrap_or_default());
                if len >> 63 != 0 {
                    return Err(WsError("a 64-bit length with its top bit set".into()));
                }
                len
            }
            short => u64::from(short),
        };
        let opcode = match first & 0x0F {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            other => return Err(WsError(format!("reserved opcode 0x{other:x}"))),
        };
        if matches!(opcode, Opcode::Close | Opcode::Ping | Opcode::Pong) {
            if !fin || len > 125 {
                return Err(WsError("a control frame must be final and at most 125 bytes".into()));
            }
            let payload = ControlPayload::EMPTY;
            if len == 0 {
                return control_event(opcode, payload).map(Some);
            }
            self.state = State::Control { opcode, payload, left: len as u8 };
            return Ok(None);
        }
        let message = match (opcode, self.message) {
            (Opcode::Continuation, Some(message)) => message,
            (Opcode::Continuation, None) => return Err(WsError("a continuation frame outside a message".into())),
            (_, Some(_)) => return Err(WsError("a new message before the last one ended".into())),
            (Opcode::Text, None) => Message { kind: MessageKind::Text, len: 0 },
            (_, None) => Message { kind: MessageKind::Binary, len: 0 },
        };
        let total = message.len.saturating_add(len);
        if total > max_message {
            return Err(WsError(format!("a message of {total}+ bytes is over --max-response ({max_message})")));
        }
        self.message = Some(Message { len: total, ..message });
        if len == 0 {
            // An empty frame: nothing to hand out unless it ends the message.
            if fin {
                self.message = None;
                return Ok(Some(Event::Data { kind: message.kind, bytes: &[], end: true }));
            }
            return Ok(None);
        }
        self.state = State::Data { left: len, fin };
        Ok(None)
    }
}

/// The header's full length, given its first bytes: 2, plus 2 or 8 for an extended
/// length (a server sends no mask; a masked frame is refused after the header).
fn header_len(start: &[u8]) -> usize {
    match start.get(1).map(|b| b & 0x7F) {
        None => 2,
        Some(126) => 4,
        Some(127) => 10,
        Some(_) => 2,
    }
}

/// The event a complete control frame makes.
fn control_event(opcode: Opcode, payload: ControlPayload) -> Result<Event<'static>, WsError> {
    Ok(match opcode {
        Opcode::Ping => Event::Ping(payload),
        Opcode::Pong => Event::Pong,
        _ => match payload.as_bytes() {
            [] => Event::Close { code: None },
            [a, b, ..] => Event::Close { code: Some(u16::from_be_bytes([*a, *b])) },
            [_] => return Err(WsError("a close frame with a 1-byte payload".into())),
        },
    })
}
