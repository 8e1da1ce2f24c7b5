//! `line` and `delim:STR`: a response ends with a delimiter.
//!
//! Only new bytes are scanned (`memchr` for one byte, `memmem` for more). A delimiter
//! can be split across two reads. Rather than keep the response's last bytes, the
//! progress keeps one number: how many of the delimiter's first bytes the response
//! currently ends with. Those bytes *are* the delimiter's prefix, so the straddling
//! match can be checked against the delimiter itself, with no buffer and no heap.

use memchr::memmem;

use super::ProtocolError;

/// The longest delimiter accepted by `delim:STR`.
pub const MAX_DELIMITER: usize = 64;

/// Progress through one delimited response.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// Bytes of the response consumed so far.
    seen: usize,
    /// The longest proper prefix of the delimiter that the consumed bytes end with
    /// (always below the delimiter's length, so below [`MAX_DELIMITER`]).
    partial: u8,
}

impl Progress {
    /// Consumes `input` up to and including the delimiter. Returns `Some(consumed)`
    /// when the response ended inside `input`, `None` when all of it was consumed.
    #[inline]
    pub fn feed(&mut self, delimiter: &[u8], input: &[u8], max: usize) -> Result<Option<usize>, ProtocolError> {
        let end = match delimiter {
            [byte] => memchr::memchr(*byte, input).map(|at| at + 1),
            _ => straddling(delimiter, usize::from(self.partial), input)
                .or_else(|| memmem::find(input, delimiter).map(|at| at + delimiter.len())),
        };
        let consumed = end.unwrap_or(input.len());
        if self.seen.saturating_add(consumed) > max {
            return Err(ProtocolError(format!("response exceeds --max-response ({max} bytes) without its delimiter")));
        }
        if end.is_none() {
            self.seen += consumed;
            self.partial = ending_prefix(delimiter, usize::from(self.partial), input);
        }
        Ok(end)
    }
}

/// A delimiter that began in the bytes already consumed and ends in `input`: where in
/// `input` it ends. `partial` bytes of the delimiter's start were already consumed.
fn straddling(delimiter: &[u8], partial: usize, input: &[u8]) -> Option<usize> {
    if partial == 0 {
        return None;
    }
    let mut buf = [0u8; 2 * MAX_DELIMITER];
    let joined = join(&mut buf, delimiter.get(..partial)?, input.get(..input.len().min(delimiter.len() - 1))?);
    // A match in `joined` must start inside the consumed part: `joined` holds fewer
    // than a delimiter's length of new bytes.
    let at = memmem::find(joined, delimiter)?;
    Some(at + delimiter.len() - partial)
}

/// The longest proper prefix of `delimiter` that (its first `partial` bytes, then
/// `input`) ends with. A delimiter of at most 64 bytes makes this at most 64² byte
/// comparisons, and it runs once per read that does not finish a response.
fn ending_prefix(delimiter: &[u8], partial: usize, input: &[u8]) -> u8 {
    let keep = delimiter.len().saturating_sub(1);
    let mut buf = [0u8; 2 * MAX_DELIMITER];
    let recent = &input[input.len().saturating_sub(keep)..];
    let joined = join(&mut buf, delimiter.get(..partial).unwrap_or_default(), recent);
    let tail = &joined[joined.len().saturating_sub(keep)..];
    (1..=tail.len()).rev().find(|&k| tail.ends_with(&delimiter[..k])).map_or(0, |k| k as u8)
}

/// `a` then `b`, copied into `buf` (each at most [`MAX_DELIMITER`] bytes).
fn join<'a>(buf: &'a mut [u8; 2 * MAX_DELIMITER], a: &[u8], b: &[u8]) -> &'a [u8] {
    let (a, b) = (&a[..a.len().min(MAX_DELIMITER)], &b[..b.len().min(MAX_DELIMITER)]);
    buf[..a.len()].copy_from_slice(a);
    buf[a.len()..a.len() + b.len()].copy_from_slice(b);
    &buf[..a.len() + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn straddling_finds_only_a_delimiter_that_began_in_the_consumed_bytes() {
        // The response so far ends with "a", the first byte of "ab".
        assert_eq!(straddling(b"ab", 1, b"b-rest"), Some(1), "the 'b' completes it");
        assert_eq!(straddling(b"ab", 1, b"x"), None);
        // A whole "ab" in the new bytes did not begin in the consumed ones: that is
        // memmem's job, and straddling must not look that far (at most len - 1 new
        // bytes).
        assert_eq!(straddling(b"ab", 1, b"ab"), None);
        assert_eq!(straddling(b"abc", 2, b"xabc"), None);
        assert_eq!(straddling(b"abc", 2, b"c"), Some(1));
        assert_eq!(straddling(b"abc", 1, b"bc"), Some(2));
        assert_eq!(straddling(b"ab", 0, b"b"), None, "nothing consumed matched");
    }

    #[test]
    fn a_response_of_exactly_max_bytes_is_accepted_and_one_more_is_not() {
        // "12345\n" is 6 bytes with its delimiter.
        assert_eq!(Progress::default().feed(b"\n", b"12345\n", 6), Ok(Some(6)));
        assert!(Progress::default().feed(b"\n", b"123456\n", 6).is_err());
        // The same limit across two reads, and with a multi-byte delimiter.
        let mut p = Progress::default();
        assert_eq!(p.feed(b"\r\n", b"1234\r", 6), Ok(None));
        assert_eq!(p.feed(b"\r\n", b"\n", 6), Ok(Some(1)));
        let mut p = Progress::default();
        assert_eq!(p.feed(b"\r\n", b"12345", 6), Ok(None));
        assert!(p.feed(b"\r\n", b"\r\n", 6).is_err());
    }
}
