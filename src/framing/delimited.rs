//! `line` and `delim:STR`: a response ends with a delimiter.
//!
//! Only new bytes are scanned (`memchr` for one byte, `memmem` for more). A delimiter
//! can be split across two reads, so the last `len - 1` bytes of the response are
//! kept in a tiny tail (allocated only for multi-byte delimiters, at most 63 bytes):
//! never the response itself.

use memchr::memmem;

use super::ProtocolError;

/// The longest delimiter accepted by `delim:STR`.
pub const MAX_DELIMITER: usize = 64;

/// Progress through one delimited response.
#[derive(Clone, Debug, Default)]
pub struct Delimited {
    /// Bytes of the response consumed so far.
    seen: usize,
    /// The response's last bytes (up to delimiter length - 1), for a delimiter that
    /// straddles two reads. Empty for one-byte delimiters.
    tail: Vec<u8>,
}

impl Delimited {
    /// Consumes `input` up to and including the delimiter. Returns `Some(consumed)`
    /// when the response ended inside `input`, `None` when all of it was consumed.
    pub fn feed(&mut self, delimiter: &[u8], input: &[u8], max: usize) -> Result<Option<usize>, ProtocolError> {
        let end = match delimiter {
            [byte] => memchr::memchr(*byte, input).map(|at| at + 1),
            _ => self
                .straddling(delimiter, input)
                .or_else(|| memmem::find(input, delimiter).map(|at| at + delimiter.len())),
        };
        let consumed = end.unwrap_or(input.len());
        if self.seen + consumed > max {
            return Err(ProtocolError(format!("response exceeds --max-response ({max} bytes) without its delimiter")));
        }
        match end {
            Some(end) => {
                *self = Delimited::default();
                Ok(Some(end))
            }
            None => {
                self.seen += input.len();
                if delimiter.len() > 1 {
                    self.keep_tail(delimiter.len() - 1, input);
                }
                Ok(None)
            }
        }
    }

    /// A delimiter that began in the tail and ends in `input`: where in `input` it ends.
    fn straddling(&self, delimiter: &[u8], input: &[u8]) -> Option<usize> {
        if self.tail.is_empty() {
            return None;
        }
        let head = &input[..input.len().min(delimiter.len() - 1)];
        let mut joined = [0u8; 2 * MAX_DELIMITER];
        let joined = {
            joined[..self.tail.len()].copy_from_slice(&self.tail);
            joined[self.tail.len()..self.tail.len() + head.len()].copy_from_slice(head);
            &joined[..self.tail.len() + head.len()]
        };
        // Only matches that start inside the tail count here; the rest are found in
        // `input` itself.
        let at = memmem::find(joined, delimiter)?;
        (at < self.tail.len()).then(|| at + delimiter.len() - self.tail.len())
    }

    /// Keeps the last `keep` bytes of tail + input.
    fn keep_tail(&mut self, keep: usize, input: &[u8]) {
        if input.len() >= keep {
            self.tail.clear();
            self.tail.extend_from_slice(&input[input.len() - keep..]);
        } else {
            self.tail.extend_from_slice(input);
            let excess = self.tail.len().saturating_sub(keep);
            self.tail.drain(..excess);
        }
    }

    /// True when part of a response has been seen.
    pub fn in_progress(&self) -> bool {
        self.seen > 0
    }
}
