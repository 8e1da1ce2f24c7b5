//! Shared by the framing targets (included with `#[path]`, not a target itself):
//! feed bytes whole and cut at a fuzzer-chosen point, and require the same outcome.
//! No panic, no unbounded buffering (`MAX` bounds a response), and splitting a
//! stream into reads never changes which responses come out.

use loadmux::framing::{Decoder, Framing, ProtocolError, Response, Step};

/// Bound on one response, small so the limit paths are reached often.
pub const MAX: usize = 4096;

/// The request echo compares against.
pub const REQUEST: &[u8] = b"hello\n";

/// Every complete response (its length and what it said), then the error if any.
pub fn decode(framing: &Framing, reads: &[&[u8]]) -> (Vec<(usize, Response)>, Option<ProtocolError>) {
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    let mut current = 0;
    for read in reads {
        let mut input = *read;
        while !input.is_empty() {
            match decoder.feed(framing, input, REQUEST, MAX) {
                Ok(Step::NeedMore) => {
                    current += input.len();
                    input = &[];
                }
                Ok(Step::Complete { consumed, response }) => {
                    assert!(consumed > 0 && consumed <= input.len(), "consumed {consumed} of {}", input.len());
                    out.push((current + consumed, response));
                    current = 0;
                    input = &input[consumed..];
                }
                Err(e) => return (out, Some(e)),
            }
        }
    }
    assert!(current <= MAX, "{current} bytes of one response accepted, over the {MAX} limit");
    if let Some(response) = decoder.on_eof(framing) {
        out.push((current, response));
    }
    (out, None)
}

/// `data[0]` picks the cut; the rest is the stream.
pub fn check(framing: &Framing, data: &[u8]) {
    let Some((&cut, stream)) = data.split_first() else { return };
    let cut = usize::from(cut) * stream.len() / 255;
    let (whole, whole_err) = decode(framing, &[stream]);
    let (split, split_err) = decode(framing, &[&stream[..cut], &stream[cut..]]);
    // Responses completed before an error, and whether there was one, do not depend
    // on the cut (the error's wording may: it can name the byte count seen so far).
    assert_eq!(whole, split, "{framing:?} cut at {cut}");
    assert_eq!(whole_err.is_some(), split_err.is_some(), "{framing:?} cut at {cut}: {whole_err:?} vs {split_err:?}");
}
