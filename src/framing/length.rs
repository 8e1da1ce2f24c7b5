//! `bytes:N` (fixed-size responses) and `len:u16be|u32be|u32le` (a length prefix that
//! counts the body only). Nothing is buffered: the prefix's few bytes are kept inline.

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

/// Progress through one fixed-size or length-prefixed response.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counted {
    /// Prefix bytes collected so far.
    prefix: [u8; 4],
    have: u8,
    /// Body bytes still to come, once the prefix is known (always known for `bytes:N`).
    left: Option<usize>,
    /// Bytes of this response consumed so far.
    seen: usize,
}

impl Counted {
    /// `bytes:N`: consumes up to the end of an `n`-byte response.
    pub fn feed_fixed(&mut self, n: usize, input: &[u8]) -> Option<usize> {
        let left = *self.left.get_or_insert(n);
        self.take_body(left, input)
    }

    /// `len:*`: reads the prefix, then the body it announces.
    pub fn feed_prefixed(&mut self, kind: LenPrefix, input: &[u8], max: usize) -> Result<Option<usize>, ProtocolError> {
        let mut used = 0;
        if self.left.is_none() {
            let want = kind.size() - usize::from(self.have);
            let take = want.min(input.len());
            let have = usize::from(self.have);
            self.prefix[have..have + take].copy_from_slice(&input[..take]);
            self.have += take as u8;
            used = take;
            if take < want {
                self.seen += take;
                return Ok(None);
            }
            let body = kind.decode(self.prefix);
            if body.saturating_add(kind.size()) > max {
                return Err(ProtocolError(format!(
                    "length prefix announces {body} bytes, over --max-response ({max})"
                )));
            }
            self.left = Some(body);
            self.seen += used;
        }
        let left = self.left.unwrap_or(0);
        Ok(self.take_body(left, &input[used..]).map(|n| n + used))
    }

    fn take_body(&mut self, left: usize, input: &[u8]) -> Option<usize> {
        let take = left.min(input.len());
        if take == left {
            *self = Counted::default();
            return Some(take);
        }
        self.left = Some(left - take);
        self.seen += take;
        None
    }

    /// True when part of a response has been seen.
    pub fn in_progress(&self) -> bool {
        self.seen > 0
    }
}
