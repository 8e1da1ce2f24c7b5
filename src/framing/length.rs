//! `len:u16be|u32be|u32le`: a length prefix that counts the body only, then the body.
//! Nothing is buffered: a prefix split across reads is kept in a 4-byte inline array.

use super::ProtocolError;

/// How a length prefix is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LenPrefix {
    /// 2 bytes, big-endian.
    U16Be,
    /// 4 bytes, big-endian.
    U32Be,
    /// 4 bytes, little-endian.
    U32Le,
}

impl LenPrefix {
    /// Bytes in the prefix.
    pub fn size(self) -> usize {
        match self {
            LenPrefix::U16Be => 2,
            LenPrefix::U32Be | LenPrefix::U32Le => 4,
        }
    }

    fn decode(self, b: [u8; 4]) -> usize {
        match self {
            LenPrefix::U16Be => usize::from(u16::from_be_bytes([b[0], b[1]])),
            LenPrefix::U32Be => u32::from_be_bytes(b) as usize,
            LenPrefix::U32Le => u32::from_le_bytes(b) as usize,
        }
    }
}

/// Progress through one length-prefixed response.
#[derive(Clone, Copy, Debug)]
pub enum Progress {
    /// Reading the prefix: `have` of its bytes are in `bytes`.
    Prefix { bytes: [u8; 4], have: u8 },
    /// Reading the body: `left` bytes to go.
    Body { left: usize },
}

impl Default for Progress {
    fn default() -> Self {
        Progress::Prefix { bytes: [0; 4], have: 0 }
    }
}

impl Progress {
    /// Consumes `input` up to the end of the response. `Some(consumed)` when it ended
    /// inside `input`; `None` when all of `input` was consumed.
    pub fn feed(&mut self, kind: LenPrefix, input: &[u8], max: usize) -> Result<Option<usize>, ProtocolError> {
        let mut used = 0;
        if let Progress::Prefix { bytes, have } = self {
            let have_now = usize::from(*have);
            let take = (kind.size() - have_now).min(input.len());
            bytes[have_now..have_now + take].copy_from_slice(&input[..take]);
            *have += take as u8;
            used = take;
            if usize::from(*have) < kind.size() {
                return Ok(None);
            }
            let body = kind.decode(*bytes);
            if body.saturating_add(kind.size()) > max {
                return Err(ProtocolError(format!(
                    "length prefix announces {body} bytes, over --max-response ({max})"
                )));
            }
            *self = Progress::Body { left: body };
        }
        let Progress::Body { left } = self else { return Ok(None) };
        let rest = input.len() - used;
        if rest >= *left {
            return Ok(Some(used + *left));
        }
        *left -= rest;
        Ok(None)
    }
}
