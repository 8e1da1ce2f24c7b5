//! `http`: HTTP/1.1 responses, through `httparse`.
//!
//! The head (status line and headers) is parsed in place when a read holds all of it;
//! only a head split across reads is copied, into a buffer bounded by
//! `--max-response` and freed when the head is complete. Bodies are never buffered:
//! Content-Length bodies are counted, chunked bodies are walked chunk by chunk
//! (`httparse::parse_chunk_size`), extensions and trailers included, and a body with
//! neither runs until the server closes ([`Http::on_eof`]).

use super::{ProtocolError, Response};

/// Headers parsed per response; more is a protocol error.
const MAX_HEADERS: usize = 64;
/// Longest chunk-size line (with extensions and CRLF) accepted, in one read or split.
pub(crate) const MAX_CHUNK_LINE: usize = 4096;

/// Where in a response the decoder is.
#[derive(Clone, Copy, Debug, Default)]
enum Part {
    /// Reading the status line and headers.
    #[default]
    Head,
    /// A Content-Length body: `left` bytes to go.
    Body { left: usize },
    /// Chunked: reading a chunk-size line.
    ChunkSize,
    /// Chunked: inside a chunk's data, `left` bytes to go.
    ChunkData { left: usize },
    /// Chunked: the CRLF that ends a chunk's data (`cr` when its CR was seen).
    ChunkEnd { cr: bool },
    /// Chunked, after the last chunk: trailer lines, up to an empty line.
    Trailers { at_line_start: bool },
    /// No length given: the body ends when the server closes.
    UntilClose,
}

/// Progress through one HTTP response.
#[derive(Clone, Debug, Default)]
pub struct Http {
    part: Part,
    /// Bytes of this response consumed so far (interim 1xx responses included).
    seen: usize,
    /// What the head said, once parsed.
    response: Response,
    /// The start of a head or chunk-size line split across reads. Boxed so an idle
    /// decoder stays small (8 bytes instead of a `Vec`'s 24, which keeps `Decoder`
    /// within 48); allocated only while such a line spans reads, and the `Vec` grows
    /// in place across those reads.
    #[allow(clippy::box_collection)]
    partial: Option<Box<Vec<u8>>>,
}

impl Http {
    /// Consumes `input` up to the end of one response. `Some((consumed, response))`
    /// when it ended inside `input`; `None` when all of `input` was consumed.
    pub fn feed(&mut self, input: &[u8], max: usize) -> Result<Option<(usize, Response)>, ProtocolError> {
        let mut at = 0;
        while let Some(rest) = input.get(at..).filter(|r| !r.is_empty()) {
            let (used, done) = match self.part {
                Part::Head => self.head(rest, max)?,
                Part::Body { left } => {
                    let take = left.min(rest.len());
                    self.part = Part::Body { left: left - take };
                    (take, left == take)
                }
                Part::ChunkSize => self.chunk_size(rest)?,
                Part::ChunkData { left } => {
                    let take = left.min(rest.len());
                    self.part =
                        if left == take { Part::ChunkEnd { cr: false } } else { Part::ChunkData { left: left - take } };
                    (take, false)
                }
                Part::ChunkEnd { cr } => {
                    self.part = match (rest.first(), cr) {
                        (Some(b'\r'), false) => Part::ChunkEnd { cr: true },
                        (Some(b'\n'), true) => Part::ChunkSize,
                        _ => return Err(ProtocolError("chunk data not followed by CRLF".into())),
                    };
                    (1, false)
                }
                Part::Trailers { at_line_start } => self.trailers(rest, at_line_start),
                Part::UntilClose => (rest.len(), false),
            };
            at += used;
            if self.seen.saturating_add(at) > max {
                return Err(too_large(max));
            }
            if done {
                return Ok(Some((at, self.response)));
            }
        }
        self.seen += at;
        Ok(None)
    }

    /// The peer closed: a body that runs until close is complete now.
    pub fn on_eof(&mut self) -> Option<Response> {
        matches!(self.part, Part::UntilClose).then_some(Response { close: true, ..self.response })
    }

    /// Parses the head. Returns bytes of `rest` used, and whether the response is
    /// already complete (no body).
    fn head(&mut self, rest: &[u8], max: usize) -> Result<(usize, bool), ProtocolError> {
        // A head is at most `max` bytes, so no more than that is ever joined: the rest
        // of a large read (a body, the next responses) is not copied.
        let (bytes, buffered) = match &mut self.partial {
            Some(partial) => {
                let buffered = partial.len();
                partial.extend_from_slice(&rest[..rest.len().min(max.saturating_sub(buffered))]);
                (&partial[..], buffered)
            }
            None => (rest, 0),
        };
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        let head_len = match parsed.parse(bytes) {
            Ok(httparse::Status::Complete(n)) => n,
            // `max` bytes and the head has not ended: it alone is over the limit.
            Ok(httparse::Status::Partial) if bytes.len() >= max => return Err(too_large(max)),
            Ok(httparse::Status::Partial) => {
                if self.partial.is_none() {
                    self.partial = Some(Box::new(rest.to_vec()));
                }
                return Ok((rest.len(), false));
            }
            Err(e) => return Err(ProtocolError(format!("malformed HTTP response head: {e}"))),
        };
        let used = head_len
            .checked_sub(buffered)
            .ok_or_else(|| ProtocolError("HTTP head ended inside bytes already parsed".into()))?;
        let status = parsed.code.unwrap_or(0);
        let head = Head::read(parsed.version, parsed.headers)?;
        self.partial = None;
        if (100..200).contains(&status) && status != 101 {
            // An interim response (100 Continue): the real one follows.
            return Ok((used, false));
        }
        self.response = Response { status: Some(status), close: head.close, ..Response::default() };
        self.part = if status == 204 || status == 304 {
            return Ok((used, true));
        } else if head.chunked {
            Part::ChunkSize
        } else if let Some(n) = head.content_length {
            if n.saturating_add(head_len) > max {
                return Err(too_large(max));
            }
            Part::Body { left: n }
        } else {
            Part::UntilClose
        };
        Ok((used, matches!(self.part, Part::Body { left: 0 })))
    }

    /// Reads one chunk-size line; a zero size starts the trailers.
    fn chunk_size(&mut self, rest: &[u8]) -> Result<(usize, bool), ProtocolError> {
        let (bytes, buffered) = match &mut self.partial {
            Some(partial) => {
                let buffered = partial.len();
                partial.extend_from_slice(&rest[..rest.len().min(MAX_CHUNK_LINE.saturating_sub(buffered))]);
                (&partial[..], buffered)
            }
            None => (rest, 0),
        };
        match httparse::parse_chunk_size(bytes) {
            // Split or whole, a line longer than the limit is refused alike.
            Ok(httparse::Status::Complete((line, _))) if line > MAX_CHUNK_LINE => {
                Err(ProtocolError("chunk-size line too long".into()))
            }
            Ok(httparse::Status::Complete((line, size))) => {
                let used = line
                    .checked_sub(buffered)
                    .ok_or_else(|| ProtocolError("chunk-size line ended inside bytes already parsed".into()))?;
                self.partial = None;
                self.part = match usize::try_from(size) {
                    Ok(0) => Part::Trailers { at_line_start: true },
                    Ok(left) => Part::ChunkData { left },
                    Err(_) => return Err(ProtocolError("chunk size too large".into())),
                };
                Ok((used, false))
            }
            // As many bytes as a line may have, and it has not ended: too long.
            Ok(httparse::Status::Partial) if bytes.len() >= MAX_CHUNK_LINE => {
                Err(ProtocolError("chunk-size line too long".into()))
            }
            Ok(httparse::Status::Partial) => {
                if self.partial.is_none() {
                    self.partial = Some(Box::new(rest.to_vec()));
                }
                Ok((rest.len(), false))
            }
            Err(_) => Err(ProtocolError("malformed chunk-size line".into())),
        }
    }

    /// Skips trailer lines until the empty line that ends the response. Trailers are
    /// not buffered: only "is this line empty so far" is kept.
    fn trailers(&mut self, rest: &[u8], mut at_line_start: bool) -> (usize, bool) {
        for (i, &byte) in rest.iter().enumerate() {
            match byte {
                b'\n' if at_line_start => return (i + 1, true),
                b'\n' => at_line_start = true,
                // A CR at the start of a line is the empty line's; keep the flag.
                b'\r' if at_line_start => {}
                _ => at_line_start = false,
            }
        }
        self.part = Part::Trailers { at_line_start };
        (rest.len(), false)
    }
}

/// What the headers say about the body and the connection.
struct Head {
    content_length: Option<usize>,
    chunked: bool,
    close: bool,
}

impl Head {
    fn read(version: Option<u8>, headers: &[httparse::Header<'_>]) -> Result<Head, ProtocolError> {
        // HTTP/1.0 closes after the response unless it says keep-alive.
        let mut head = Head { content_length: None, chunked: false, close: version == Some(0) };
        for h in headers {
            if h.name.eq_ignore_ascii_case("content-length") {
                let n = content_length(h.value)?;
                // Two different lengths would make the body's end ambiguous (RFC 9112 6.3).
                if head.content_length.is_some_and(|m| m != n) {
                    return Err(ProtocolError("conflicting Content-Length headers".into()));
                }
                head.content_length = Some(n);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                head.chunked = has_token(h.value, b"chunked");
            } else if h.name.eq_ignore_ascii_case("connection") {
                head.close = has_token(h.value, b"close") || (head.close && !has_token(h.value, b"keep-alive"));
            }
        }
        Ok(head)
    }
}

/// A Content-Length value: decimal digits only (no sign, no spaces inside).
fn content_length(value: &[u8]) -> Result<usize, ProtocolError> {
    let digits = value.trim_ascii();
    let bad = || ProtocolError(format!("bad Content-Length {:?}", String::from_utf8_lossy(value)));
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    digits.iter().try_fold(0usize, |n, d| n.checked_mul(10)?.checked_add(usize::from(d - b'0'))).ok_or_else(bad)
}

/// Whether a comma-separated header value holds `token` (case-insensitive).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

fn too_large(max: usize) -> ProtocolError {
    ProtocolError(format!("HTTP response larger than --max-response ({max} bytes)"))
}
