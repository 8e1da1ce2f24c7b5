//! The WebSocket echo server's per-connection protocol (`loadmux serve --mode ws`),
//! sans-IO: bytes read go in, bytes to write come out.
//!
//! First the opening handshake (an HTTP/1.1 Upgrade, answered `101` with the
//! `Sec-WebSocket-Accept` for the client's key, and the first subprotocol offered),
//! then frames: each data frame is echoed as it arrives, unmasked, with the same
//! opcode and fin bit (so a fragmented message comes back fragmented alike, and
//! nothing is buffered beyond the bytes owed); a ping gets a pong; a close gets a
//! close with the same code, and then the connection closes.

use std::io;

use super::ServerCounters;
use crate::session::websocket::accept_for;

/// Longest upgrade request head accepted; a longer one gets 431 and a close.
const MAX_HEAD: usize = 8 * 1024;

/// Where a connection is.
#[derive(Debug)]
enum Phase {
    /// Reading the Upgrade request (the part read so far).
    Handshake { head: Vec<u8> },
    /// Upgraded: inside the frame stream.
    Frames(Frame),
    /// A close was answered (or the upgrade refused): close once the answer is out.
    Closing,
}

/// Where the echo is within the client's current frame.
#[derive(Clone, Copy, Debug)]
enum Frame {
    /// `have` bytes of a header (2 to 14: a client frame is masked).
    Header { bytes: [u8; 14], have: usize },
    /// A data frame's payload: `left` bytes to unmask and echo; `at` is the position
    /// in the mask.
    Data { left: u64, mask: [u8; 4], at: usize },
    /// A control frame's payload (at most 125 bytes), kept whole to answer it.
    Control { opcode: u8, payload: [u8; 125], have: usize, len: usize, mask: [u8; 4] },
}

const NEW_FRAME: Frame = Frame::Header { bytes: [0; 14], have: 0 };

/// One connection's WebSocket echo.
#[derive(Debug)]
pub struct WsEcho {
    phase: Phase,
}

impl Default for WsEcho {
    fn default() -> Self {
        WsEcho { phase: Phase::Handshake { head: Vec::new() } }
    }
}

impl WsEcho {
    /// True once the connection should close when what is owed has gone out.
    pub fn closing(&self) -> bool {
        matches!(self.phase, Phase::Closing)
    }

    /// Consumes `input`, appending what to send to `out`. A frame that breaks the
    /// protocol is an error (the connection closes at once).
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>, counters: &mut ServerCounters) -> io::Result<()> {
        while !input.is_empty() {
            match &mut self.phase {
                Phase::Closing => return Ok(()), // Nothing after a close is read.
                Phase::Handshake { head } => {
                    head.extend_from_slice(input);
                    input = &[];
                    let Some(used) = self.handshake(out)? else { continue };
                    // Frames sent right behind the request (a client need not wait
                    // for the 101) are decoded, not lost.
                    if let Phase::Handshake { head } = std::mem::replace(&mut self.phase, Phase::Frames(NEW_FRAME)) {
                        return self.feed(&head[used..], out, counters);
                    }
                }
                Phase::Frames(frame) => {
                    let (used, close) = step(frame, input, out, counters)?;
                    input = &input[used..];
                    if close {
                        self.phase = Phase::Closing;
                    }
                }
            }
        }
        Ok(())
    }

    /// Answers the Upgrade request once its head is complete: `Some(head length)`
    /// when upgraded, `None` while it is incomplete or after a refusal.
    fn handshake(&mut self, out: &mut Vec<u8>) -> io::Result<Option<usize>> {
        let Phase::Handshake { head } = &self.phase else { return Ok(None) };
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        let used = match request.parse(head) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if head.len() <= MAX_HEAD => return Ok(None),
            Ok(httparse::Status::Partial) => return self.refuse(out, "431 Request Header Fields Too Large"),
            Err(_) => return self.refuse(out, "400 Bad Request"),
        };
        let header = |name: &str| {
            request.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| String::from_utf8_lossy(h.value))
        };
        let upgrade = header("Upgrade").is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"));
        let (Some(key), true) = (header("Sec-WebSocket-Key"), upgrade) else {
            return self.refuse(out, "400 Bad Request");
        };
        let protocol = header("Sec-WebSocket-Protocol")
            .and_then(|offered| offered.split(',').next().map(|p| p.trim().to_string()))
            .filter(|p| !p.is_empty());
        out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
        out.extend_from_slice(format!("Sec-WebSocket-Accept: {}\r\n", accept_for(key.trim())).as_bytes());
        if let Some(protocol) = protocol {
            out.extend_from_slice(format!("Sec-WebSocket-Protocol: {protocol}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        Ok(Some(used))
    }

    /// Refuses the upgrade with `status`, and closes after the answer.
    fn refuse(&mut self, out: &mut Vec<u8>, status: &str) -> io::Result<Option<usize>> {
        out.extend_from_slice(
            format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        self.phase = Phase::Closing;
        Ok(None)
    }
}

/// Advances through one frame with `input`: returns the bytes used, and whether
/// the client closed (its close has been answered).
fn step(
    frame: &mut Frame,
    input: &[u8],
    out: &mut Vec<u8>,
    counters: &mut ServerCounters,
) -> io::Result<(usize, bool)> {
    match frame {
        Frame::Header { bytes, have } => {
            bytes[*have] = input[0];
            *have += 1;
            // Refused as soon as its second byte says so: a client must mask.
            if *have == 2 && bytes[1] & 0x80 == 0 {
                return Err(bad("an unmasked frame from a client"));
            }
            let need = header_len(&bytes[..*have]);
            if *have < need {
                return Ok((1, false));
            }
            let header = &bytes[..need];
            if header[0] & 0x70 != 0 {
                return Err(bad("reserved bits set"));
            }
            let len = match header[1] & 0x7F {
                126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
                127 => u64::from_be_bytes(header[2..10].try_into().unwrap_or_default()),
                short => u64::from(short),
            };
            let mask: [u8; 4] = header[need - 4..need].try_into().unwrap_or_default();
            let opcode = header[0] & 0x0F;
            *frame = match opcode {
                0x0..=0x2 => {
                    // Echo the header unmasked: same fin and opcode, same length.
                    out.push(header[0]);
                    push_len(len, out);
                    if header[0] & 0x80 != 0 {
                        counters.ws_messages += 1; // The message's last frame.
                    }
                    if len == 0 {
                        NEW_FRAME
                    } else {
                        Frame::Data { left: len, mask, at: 0 }
                    }
                }
                0x8..=0xA if len <= 125 && header[0] & 0x80 != 0 => {
                    let control = Frame::Control { opcode, payload: [0; 125], have: 0, len: len as usize, mask };
                    if len == 0 {
                        return Ok((1, answer_control(&control, out)));
                    }
                    control
                }
                0x8..=0xA => return Err(bad("a control frame must be final and at most 125 bytes")),
                _ => return Err(bad("a reserved opcode")),
            };
            Ok((1, false))
        }
        Frame::Data { left, mask, at } => {
            let n = input.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
            out.extend(input[..n].iter().enumerate().map(|(i, b)| b ^ mask[(*at + i) & 3]));
            *at = (*at + n) & 3;
            *left -= n as u64;
            if *left == 0 {
                *frame = NEW_FRAME;
            }
            Ok((n, false))
        }
        Frame::Control { payload, have, len, mask, .. } => {
            let n = input.len().min(*len - *have);
            for (i, b) in input[..n].iter().enumerate() {
                payload[*have + i] = b ^ mask[(*have + i) & 3];
            }
            *have += n;
            if have < len {
                return Ok((n, false));
            }
            let close = answer_control(frame, out);
            *frame = NEW_FRAME;
            Ok((n, close))
        }
    }
}

/// Answers a complete control frame: a ping with a pong, a close with a close (true:
/// the connection then closes); a pong needs nothing.
fn answer_control(frame: &Frame, out: &mut Vec<u8>) -> bool {
    let Frame::Control { opcode, payload, len, .. } = frame else { return false };
    let payload = &payload[..*len];
    match opcode {
        0x9 => {
            out.push(0x80 | 0xA);
            push_len(payload.len() as u64, out);
            out.extend_from_slice(payload);
            false
        }
        0x8 => {
            // Echo the code (not the reason): the close handshake's answer.
            let code = payload.get(..2).unwrap_or_default();
            out.push(0x80 | 0x8);
            push_len(code.len() as u64, out);
            out.extend_from_slice(code);
            true
        }
        _ => false,
    }
}

/// An unmasked server frame's length field.
fn push_len(len: u64, out: &mut Vec<u8>) {
    match len {
        0..=125 => out.push(len as u8),
        126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

/// A masked client frame's header length, given its first bytes.
fn header_len(start: &[u8]) -> usize {
    match start.get(1).map(|b| b & 0x7F) {
        None => 2,
        Some(126) => 8,
        Some(127) => 14,
        Some(_) => 6,
    }
}

/// A protocol violation: the connection closes.
fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("WebSocket: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::websocket::{ClientHandshake, Event, FrameDecoder, Opcode};

    /// The client side of loadmux's own codec against this server, fed `split` bytes
    /// at a time: every split gives the same answers.
    fn exchange(split: usize) -> (Vec<Vec<u8>>, usize) {
        let handshake = ClientHandshake::new(&mut fastrand::Rng::with_seed(7), &["chat"]);
        let mut input = Vec::new();
        handshake.write_request("h", "/", &[], &mut input);
        let mut rng = fastrand::Rng::with_seed(1);
        crate::session::websocket::encode_frame(Opcode::Text, false, b"hel", &mut rng, &mut input);
        crate::session::websocket::encode_frame(Opcode::Ping, true, b"p", &mut rng, &mut input);
        crate::session::websocket::encode_frame(Opcode::Continuation, true, b"lo", &mut rng, &mut input);
        crate::session::websocket::encode_close(1001, &mut rng, &mut input);
        let mut server = WsEcho::default();
        let mut out = Vec::new();
        let mut counters = ServerCounters::default();
        for chunk in input.chunks(split) {
            server.feed(chunk, &mut out, &mut counters).unwrap();
        }
        assert!(server.closing());
        let upgraded = handshake.check_response(&out).unwrap().expect("a complete 101");
        let mut decoder = FrameDecoder::default();
        let mut said = Vec::new();
        let mut rest = &out[upgraded.consumed..];
        while !rest.is_empty() {
            let (used, event) = decoder.feed(rest, 1 << 20).unwrap();
            rest = &rest[used..];
            match event {
                Some(Event::Data { bytes, .. }) => said.push(bytes.to_vec()),
                Some(Event::Ping(_)) => panic!("the server does not ping"),
                Some(Event::Close { code }) => said.push(format!("close {code:?}").into_bytes()),
                Some(Event::Pong) => said.push(b"pong".to_vec()),
                None => {}
            }
        }
        (said, counters.ws_messages as usize)
    }

    #[test]
    fn the_echo_upgrades_echoes_fragments_answers_ping_and_close_split_anywhere() {
        let whole = exchange(usize::MAX);
        assert_eq!(whole.0, vec![b"hel".to_vec(), b"pong".to_vec(), b"lo".to_vec(), b"close Some(1001)".to_vec()]);
        assert_eq!(whole.1, 1, "one message");
        for split in 1..20 {
            assert_eq!(exchange(split), whole, "split every {split} bytes");
        }
    }

    #[test]
    fn a_request_that_is_not_an_upgrade_is_refused_with_400() {
        let mut server = WsEcho::default();
        let mut out = Vec::new();
        server.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &mut out, &mut ServerCounters::default()).unwrap();
        assert!(out.starts_with(b"HTTP/1.1 400") && server.closing());
    }

    #[test]
    fn an_unmasked_client_frame_is_an_error() {
        let handshake = ClientHandshake::new(&mut fastrand::Rng::with_seed(7), &[]);
        let mut input = Vec::new();
        handshake.write_request("h", "/", &[], &mut input);
        input.extend_from_slice(&[0x81, 0x01, b'x']);
        let mut server = WsEcho::default();
        let err = server.feed(&input, &mut Vec::new(), &mut ServerCounters::default()).unwrap_err();
        assert!(err.to_string().contains("unmasked"), "{err}");
    }
}
