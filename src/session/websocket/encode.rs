//! Client frames (RFC 6455 section 5.2): always masked, with a fresh random mask per
//! frame, drawn here so no caller can reuse one.

/// A frame's opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    /// A further fragment of a message.
    Continuation = 0x0,
    /// A text message (UTF-8).
    Text = 0x1,
    /// A binary message.
    Binary = 0x2,
    /// Close, with an optional code and reason.
    Close = 0x8,
    /// Ping: the peer must answer with a pong carrying the same payload.
    Ping = 0x9,
    /// Pong.
    Pong = 0xA,
}

/// Appends one masked frame carrying `payload` to `out`. `fin` marks the last frame
/// of a message (control frames are always final). The mask is drawn from `rng`.
pub fn encode_frame(opcode: Opcode, fin: bool, payload: &[u8], rng: &mut fastrand::Rng, out: &mut Vec<u8>) {
    encode_with_mask(opcode, fin, payload, rng.u32(..).to_be_bytes(), out);
}

/// Appends a close frame with `code` (1000 is a normal close).
pub fn encode_close(code: u16, rng: &mut fastrand::Rng, out: &mut Vec<u8>) {
    encode_frame(Opcode::Close, true, &code.to_be_bytes(), rng, out);
}

/// [`encode_frame`] with a given mask (tests pin it to check the bytes).
pub(super) fn encode_with_mask(opcode: Opcode, fin: bool, payload: &[u8], mask: [u8; 4], out: &mut Vec<u8>) {
    const MASKED: u8 = 0x80;
    out.push(if fin { 0x80 } else { 0 } | opcode as u8);
    match payload.len() {
        len @ 0..=125 => out.push(MASKED | len as u8),
        len @ 126..=0xFFFF => {
            out.push(MASKED | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(MASKED | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    // Four bytes at a time: the mask repeats every four bytes.
    let mut chunks = out[start..].chunks_exact_mut(4);
    for chunk in &mut chunks {
        for (byte, key) in chunk.iter_mut().zip(mask) {
            *byte ^= key;
        }
    }
    for (byte, key) in chunks.into_remainder().iter_mut().zip(mask) {
        *byte ^= key;
    }
}

/// Turns the bytes `out[start..]` (one message, rendered in place) into one masked
/// frame: inserts the header before them and masks them, with a fresh mask from the
/// thread's cheap PRNG (`fastrand`; RFC 6455 asks for unpredictable masks so that a
/// page's script cannot choose the bytes on the wire, which a load generator's
/// payload never does, so a crypto RNG per frame would buy nothing).
///
/// This is how the connection state machine frames its requests: rendered into the
/// worker's send buffer, then framed where they lie, so a message costs a shift of
/// its bytes by the header's length and no allocation.
pub fn frame_in_place(opcode: Opcode, out: &mut Vec<u8>, start: usize) {
    frame_in_place_with_mask(opcode, out, start, fastrand::u32(..).to_be_bytes());
}

/// [`frame_in_place`] with a given mask (tests pin it to compare with [`encode_frame`]).
pub(super) fn frame_in_place_with_mask(opcode: Opcode, out: &mut Vec<u8>, start: usize, mask: [u8; 4]) {
    let len = out.len() - start;
    let mut header = [0u8; 14];
    header[0] = 0x80 | opcode as u8;
    let mut at = 2;
    match len {
        0..=125 => header[1] = 0x80 | len as u8,
        126..=0xFFFF => {
            header[1] = 0x80 | 126;
            header[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            at = 4;
        }
        _ => {
            header[1] = 0x80 | 127;
            header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            at = 10;
        }
    }
    header[at..at + 4].copy_from_slice(&mask);
    let header = &header[..at + 4];
    // Make room for the header, then shift the payload right by its length.
    out.extend_from_slice(header);
    out.copy_within(start..start + len, start + header.len());
    out[start..start + header.len()].copy_from_slice(header);
    let payload = &mut out[start + header.len()..];
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}
