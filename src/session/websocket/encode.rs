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
