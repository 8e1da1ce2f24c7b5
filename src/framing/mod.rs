//! Framing: deciding where a response ends in the bytes read (`--expect`).
//!
//! A [`Decoder`] is fed only the *new* bytes of each read, so nothing is rescanned,
//! and nothing is buffered unless the protocol forces it (an HTTP head split across
//! reads). The engine loops `feed` over one read's bytes: each call consumes up to
//! the end of one response, so pipelined responses come out one by one.
//!
//! | spec | a response is |
//! | --- | --- |
//! | `echo` | the request's own bytes, compared byte by byte |
//! | `line` | everything up to and including `\n` |
//! | `delim:STR` | everything up to and including STR (escapes allowed) |
//! | `bytes:N` | exactly N bytes |
//! | `len:u16be`, `len:u32be`, `len:u32le` | a length prefix, then that many body bytes |
//! | `http` | an HTTP/1.1 response: Content-Length, chunked, or until close |
//! | `none` | nothing is awaited (stream and recv modes) |

mod delimited;
mod http;
mod length;

use std::fmt;

pub use delimited::MAX_DELIMITER;
pub use length::LenPrefix;

/// How responses are delimited (`--expect SPEC`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Nothing is awaited (stream and recv modes).
    None,
    /// The request's own bytes come back, and are compared byte by byte.
    Echo,
    /// Exactly this many bytes.
    Bytes(usize),
    /// Up to and including this delimiter (`line` is `\n`).
    Delimited(Vec<u8>),
    /// A length prefix counting the body, then the body.
    Len(LenPrefix),
    /// An HTTP/1.1 response.
    Http,
}

impl Framing {
    /// Parses an `--expect` value.
    pub fn parse(spec: &str) -> Result<Framing, String> {
        let known = "echo, line, delim:STR, bytes:N, len:u16be|u32be|u32le, http, none";
        let framing = match spec.split_once(':') {
            None => match spec {
                "none" => Framing::None,
                "echo" => Framing::Echo,
                "line" => Framing::Delimited(b"\n".to_vec()),
                "http" => Framing::Http,
                _ => return Err(format!("unknown framing '{spec}' (expected: {known})")),
            },
            Some(("bytes", n)) => match n.parse::<usize>() {
                Ok(n) if n > 0 => Framing::Bytes(n),
                _ => return Err(format!("'{spec}': bytes:N needs a whole number N of at least 1")),
            },
            Some(("delim", text)) => {
                let delimiter = crate::payload::unescape(text).map_err(|e| format!("'{spec}': {e}"))?;
                if delimiter.is_empty() || delimiter.len() > MAX_DELIMITER {
                    return Err(format!("'{spec}': the delimiter must be 1 to {MAX_DELIMITER} bytes"));
                }
                Framing::Delimited(delimiter)
            }
            Some(("len", kind)) => Framing::Len(match kind {
                "u16be" => LenPrefix::U16Be,
                "u32be" => LenPrefix::U32Be,
                "u32le" => LenPrefix::U32Le,
                _ => return Err(format!("'{spec}': the length prefix is u16be, u32be or u32le")),
            }),
            Some(_) => return Err(format!("unknown framing '{spec}' (expected: {known})")),
        };
        Ok(framing)
    }

    /// The spec this framing was parsed from (for reports).
    pub fn name(&self) -> String {
        match self {
            Framing::None => "none".into(),
            Framing::Echo => "echo".into(),
            Framing::Bytes(n) => format!("bytes:{n}"),
            Framing::Delimited(d) if d == b"\n" => "line".into(),
            Framing::Delimited(d) => format!("delim:{}", d.escape_ascii()),
            Framing::Len(LenPrefix::U16Be) => "len:u16be".into(),
            Framing::Len(LenPrefix::U32Be) => "len:u32be".into(),
            Framing::Len(LenPrefix::U32Le) => "len:u32le".into(),
            Framing::Http => "http".into(),
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

/// Per-connection response-decoding state. The framing in use is passed to every
/// call (it lives once in the plan), so the decoder holds only progress.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    /// Echo: bytes of the request matched so far.
    matched: usize,
    delimited: delimited::Delimited,
    counted: length::Counted,
    /// HTTP progress, boxed and allocated only by connections that use HTTP.
    http: Option<Box<http::Http>>,
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
        let complete = |consumed| Step::Complete { consumed, response: Response::default() };
        match framing {
            Framing::None => Ok(Step::NeedMore),
            Framing::Echo => {
                let want = &request[self.matched..];
                let n = want.len().min(input.len());
                if input[..n] != want[..n] {
                    let at = self.matched + input.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
                    return Err(ProtocolError(format!("echo mismatch at byte {at}")));
                }
                self.matched += n;
                if self.matched == request.len() {
                    self.matched = 0;
                    Ok(complete(n))
                } else {
                    Ok(Step::NeedMore)
                }
            }
            Framing::Delimited(delimiter) => {
                Ok(self.delimited.feed(delimiter, input, max_response)?.map_or(Step::NeedMore, complete))
            }
            Framing::Bytes(n) => {
                if *n > max_response {
                    return Err(ProtocolError(format!("bytes:{n} is over --max-response ({max_response})")));
                }
                Ok(self.counted.feed_fixed(*n, input).map_or(Step::NeedMore, complete))
            }
            Framing::Len(kind) => {
                Ok(self.counted.feed_prefixed(*kind, input, max_response)?.map_or(Step::NeedMore, complete))
            }
            Framing::Http => {
                let http = self.http.get_or_insert_with(Default::default);
                Ok(match http.feed(input, max_response)? {
                    Some((consumed, response)) => Step::Complete { consumed, response },
                    None => Step::NeedMore,
                })
            }
        }
    }

    /// The peer closed. For a response whose end *is* the close (an HTTP body with
    /// no length), that completes it.
    pub fn on_eof(&mut self, framing: &Framing) -> Option<Response> {
        match framing {
            Framing::Http => self.http.as_mut()?.on_eof(),
            _ => None,
        }
    }

    /// True when some bytes of the current response have been seen.
    pub fn in_progress(&self) -> bool {
        self.matched > 0
            || self.delimited.in_progress()
            || self.counted.in_progress()
            || self.http.as_ref().is_some_and(|h| h.in_progress())
    }

    /// Forgets any partial response (the connection closed).
    pub fn reset(&mut self) {
        self.matched = 0;
        self.delimited = Default::default();
        self.counted = Default::default();
        if let Some(http) = &mut self.http {
            **http = Default::default();
        }
    }
}

#[cfg(test)]
mod tests;
