//! Framing: deciding where a response ends in the bytes read (`--expect`).
//!
//! A [`Decoder`] is fed only the *new* bytes of each read, so nothing is rescanned and
//! nothing is buffered unless the protocol forces it. The engine loops
//! `feed` over one read's bytes: each call consumes up to the end of one response.

use std::fmt;

/// How responses are delimited (`--expect SPEC`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Nothing is awaited (stream and recv modes).
    None,
    /// The request's own bytes come back, and are compared byte by byte.
    Echo,
}

impl Framing {
    /// Parses an `--expect` value.
    pub fn parse(spec: &str) -> Result<Framing, String> {
        match spec {
            "none" => Ok(Framing::None),
            "echo" => Ok(Framing::Echo),
            other => Err(format!("unknown framing '{other}' (expected: echo, none)")),
        }
    }
}

/// A response that broke the framing rules or failed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError(pub String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a complete response said beyond "it is complete".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// HTTP status, for HTTP framing.
    pub status: Option<u16>,
    /// The peer will close after this response (`Connection: close`).
    pub close: bool,
}

/// The outcome of feeding bytes to a [`Decoder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Every byte was consumed and the response is not complete yet.
    NeedMore,
    /// A response completed with the first `consumed` bytes of the input; the rest
    /// belongs to the next response.
    Complete {
        /// Bytes of the input that belonged to this response.
        consumed: usize,
        /// What the response said.
        response: Response,
    },
}

/// Per-connection response-decoding state. Small and allocation-free for the framings
/// here.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    /// Echo: bytes of the request matched so far.
    matched: usize,
}

impl Decoder {
    /// Feeds newly read bytes. `request` is the request this response answers (echo
    /// compares against it); `max_response` bounds a response's size.
    pub fn feed(
        &mut self,
        framing: &Framing,
        input: &[u8],
        request: &[u8],
        max_response: usize,
    ) -> Result<Step, ProtocolError> {
        let _ = max_response; // echo responses are bounded by the request's size
        match framing {
            Framing::None => Ok(Step::NeedMore),
            Framing::Echo => {
                let want = &request[self.matched..];
                let n = want.len().min(input.len());
                if input[..n] != want[..n] {
                    let at = self.matched + first_mismatch(&input[..n], &want[..n]);
                    return Err(ProtocolError(format!("echo mismatch at byte {at}")));
                }
                self.matched += n;
                if self.matched == request.len() {
                    self.matched = 0;
                    Ok(Step::Complete { consumed: n, response: Response::default() })
                } else {
                    Ok(Step::NeedMore)
                }
            }
        }
    }

    /// Forgets any partial response (the connection closed).
    pub fn reset(&mut self) {
        *self = Decoder::default();
    }
}

fn first_mismatch(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_completes_across_split_reads() {
        let req = b"hello\n";
        for split in 0..=req.len() {
            let mut d = Decoder::default();
            let (a, b) = req.split_at(split);
            let first = d.feed(&Framing::Echo, a, req, 1024).unwrap();
            if split == req.len() {
                assert_eq!(first, Step::Complete { consumed: split, response: Response::default() });
                continue;
            }
            assert_eq!(first, Step::NeedMore);
            let second = d.feed(&Framing::Echo, b, req, 1024).unwrap();
            assert_eq!(second, Step::Complete { consumed: b.len(), response: Response::default() });
        }
    }

    #[test]
    fn echo_leaves_the_next_response_unconsumed() {
        let mut d = Decoder::default();
        let step = d.feed(&Framing::Echo, b"hi\nhi\n", b"hi\n", 1024).unwrap();
        assert_eq!(step, Step::Complete { consumed: 3, response: Response::default() });
    }

    #[test]
    fn echo_mismatch_is_a_protocol_error() {
        let mut d = Decoder::default();
        let err = d.feed(&Framing::Echo, b"hexlo\n", b"hello\n", 1024).unwrap_err();
        assert!(err.0.contains("byte 2"), "{err}");
    }
}
