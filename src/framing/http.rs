//! `http`: HTTP/1.1 responses, through `httparse`.
//!
//! The head (status line and headers) is parsed in place when a read holds all of it;
//! only a head split across reads is copied, into a buffer bounded by
//! `--max-response`. Bodies are never buffered: Content-Length bodies are counted,
//! chunked bodies are walked chunk by chunk (`httparse::parse_chunk_size`), extensions
//! and trailers included, and a body with neither runs until the server closes.

use super::{ProtocolError, Response};

/// Headers parsed per response; more is a protocol error.
const MAX_HEADERS: usize = 64;
/// Longest chunk-size line (with extensions) or trailer line accepted.
const MAX_LINE: usize = 4096;

/// Where in a response the decoder is.
#[derive(Clone, Debug, Default)]
enum Part {
    /// Reading the status line and headers. `partial` holds a head split across reads.
    #[default]
    Head,
    /// A Content-Length body: `left` bytes to go.
    Body { left: usize },
    /// Chunked: reading a chunk-size line (`line` holds a split one).
    ChunkSize,
    /// Chunked: inside a chunk's data, then its CRLF (`left` counts both).
    ChunkData { left: usize },
    /// Chunked, after the last chunk: trailer lines, up to an empty line.
    Trailers { at_line_start: bool },
    /// No length given: the body ends when the server closes.
    UntilClose,
}

/// Progress through one HTTP response.
#[derive(Clone, Debug, Default)]
pub struct Http {
    part: Part,
    /// A head or chunk line split across reads (empty otherwise).
    partial: Vec<u8>,
    /// Bytes of this response consumed so far.
    seen: usize,
    /// What the head said, once parsed.
    response: Response,
}

impl Http {
    /// Consumes `input` up to the end of one response. `Some((consumed, response))`
    /// when it ended inside `input`; `None` when all of `input` was consumed.
    pub fn feed(&mut self, input: &[u8], max: usize) -> Result<Option<(usize, Response)>, ProtocolError> {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            if rest.is_empty() {
                self.seen += at;
                self.check_size(max)?;
                return Ok(None);
            }
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
                    self.part = Part::ChunkData { left: left - take };
                    if left == take {
                        // The chunk and its CRLF are done: the next chunk-size line.
                        self.part = Part::ChunkSize;
                    }
                    (take, false)
                }
                Part::Trailers { at_line_start } => self.trailers(rest, at_line_start)?,
                Part::UntilClose => (rest.len(), false),
            };
            at += used;
            if self.seen + at > max {
                return Err(too_large(max));
            }
            if done {
                let response = self.response;
                *self = Http::default();
                return Ok(Some((at, response)));
            }
        }
    }

    /// The peer closed: a body that runs until close is complete now.
    pub fn on_eof(&mut self) -> Option<Response> {
        if matches!(self.part, Part::UntilClose) {
            let mut response = self.response;
            response.close = true;
            *self = Http::default();
            return Some(response);
        }
        None
    }

    /// True when part of a response has been seen.
    pub fn in_progress(&self) -> bool {
        self.seen > 0 || !self.partial.is_empty() || !matches!(self.part, Part::Head)
    }

    fn check_size(&self, max: usize) -> Result<(), ProtocolError> {
        if self.seen > max {
            return Err(too_large(max));
        }
        Ok(())
    }

    /// Parses the head. Returns bytes of `rest` used, and whether the response is
    /// already complete (no body).
    fn head(&mut self, rest: &[u8], max: usize) -> Result<(usize, bool), ProtocolError> {
        let buffered = self.partial.len();
        let joined = join(&mut self.partial, rest);
        let bytes = joined.as_deref().unwrap_or(rest);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        let head_len = match parsed.parse(bytes) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                if bytes.len() > max {
                    return Err(too_large(max));
                }
                self.partial = bytes.to_vec();
                return Ok((rest.len(), false));
            }
            Err(e) => return Err(ProtocolError(format!("malformed HTTP response head: {e}"))),
        };
        let status = parsed.code.unwrap_or(0);
        let mut content_length = None;
        let mut chunked = false;
        let mut close = parsed.version == Some(0);
        for h in parsed.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                let text = std::str::from_utf8(h.value).unwrap_or("").trim();
                let n: usize = text
                    .parse()
                    .map_err(|_| ProtocolError(format!("bad Content-Length {:?}", String::from_utf8_lossy(h.value))))?;
                content_length = Some(n);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = String::from_utf8_lossy(h.value).to_ascii_lowercase().contains("chunked");
            } else if h.name.eq_ignore_ascii_case("connection") {
                let v = String::from_utf8_lossy(h.value).to_ascii_lowercase();
                close = v.contains("close") || (close && !v.contains("keep-alive"));
            }
        }
        let used = head_len - buffered;
        if (100..200).contains(&status) && status != 101 {
            // An interim response (100 Continue): the real one follows.
            return Ok((used, false));
        }
        self.response = Response { status: Some(status), close };
        self.part = if status == 204 || status == 304 {
            return Ok((used, true));
        } else if chunked {
            Part::ChunkSize
        } else if let Some(n) = content_length {
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
        let buffered = self.partial.len();
        let joined = join(&mut self.partial, rest);
        let bytes = joined.as_deref().unwrap_or(rest);
        match httparse::parse_chunk_size(bytes) {
            Ok(httparse::Status::Complete((line, size))) => {
                let used = line - buffered;
                let size = usize::try_from(size).map_err(|_| ProtocolError("chunk size too large".into()))?;
                self.part = if size == 0 {
                    Part::Trailers { at_line_start: true }
                } else {
                    Part::ChunkData {
                        left: size.checked_add(2).ok_or_else(|| ProtocolError("chunk size too large".into()))?,
                    }
                };
                Ok((used, false))
            }
            Ok(httparse::Status::Partial) => {
                if bytes.len() > MAX_LINE {
                    return Err(ProtocolError("chunk-size line too long".into()));
                }
                self.partial = bytes.to_vec();
                Ok((rest.len(), false))
            }
            Err(_) => Err(ProtocolError("malformed chunk-size line".into())),
        }
    }

    /// Skips trailer lines until the empty line that ends the response.
    fn trailers(&mut self, rest: &[u8], mut at_line_start: bool) -> Result<(usize, bool), ProtocolError> {
        for (i, &byte) in rest.iter().enumerate() {
            match byte {
                b'\n' if at_line_start => return Ok((i + 1, true)),
                b'\n' => at_line_start = true,
                // A CR at the start of a line is the empty line's; keep the flag.
                b'\r' if at_line_start => {}
                _ => at_line_start = false,
            }
        }
        self.part = Part::Trailers { at_line_start };
        Ok((rest.len(), false))
    }
}

/// A head or line split across reads: the buffered start joined with the new bytes.
/// `None` when nothing was buffered: then the new bytes are parsed in place.
fn join(partial: &mut Vec<u8>, rest: &[u8]) -> Option<Vec<u8>> {
    if partial.is_empty() {
        return None;
    }
    let mut joined = std::mem::take(partial);
    joined.extend_from_slice(rest);
    Some(joined)
}

fn too_large(max: usize) -> ProtocolError {
    ProtocolError(format!("HTTP response larger than --max-response ({max} bytes)"))
}
