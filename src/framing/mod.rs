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
//! | `resp` | a Redis reply, RESP2 or RESP3, nested to any depth |
//! | `memcache` | a memcached text-protocol reply (`VALUE`... `END`, `STORED`...) |
//! | `none` | nothing is awaited (stream and recv modes) |

mod delimited;
mod http;
mod length;
mod memcache;
mod resp;
mod word;

use std::fmt;

pub use delimited::MAX_DELIMITER;
pub use length::LenPrefix;
pub use resp::{error_word_name, ERROR_WORDS as RESP_ERROR_WORDS, OTHER_ERROR as RESP_OTHER_ERROR};

/// How responses are delimited (`--expect SPEC`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Nothing is awaited (stream and recv modes).
    None,
    /// The request's own bytes come back, and are compared byte by byte.
    Echo,
    /// Exactly this many bytes.
    Bytes(usize),
    /// Up to and including `\n`.
    Line,
    /// Up to and including this delimiter (1 to [`MAX_DELIMITER`] bytes).
    Delim(Vec<u8>),
    /// A length prefix counting the body, then the body.
    Len(LenPrefix),
    /// An HTTP/1.1 response.
    Http,
    /// A Redis reply (RESP2 or RESP3).
    Resp,
    /// A memcached text-protocol reply.
    Memcache,
    /// `run --replay`: each answer is as long as the recorded one. The engine feeds
    /// the decoder `Bytes(n)` with each step's recorded length instead; fed to the
    /// decoder directly, it completes nothing and is a protocol error.
    Replay,
    /// `--expect ws`: one complete WebSocket message (all its fragments). The session
    /// layer says where a message ends, so the engine completes it; fed to the
    /// decoder directly (no WebSocket session), it is a protocol error.
    Ws,
}

impl Framing {
    /// Parses an `--expect` value.
    pub fn parse(spec: &str) -> Result<Framing, String> {
        let known = "echo, line, delim:STR, bytes:N, len:u16be|u32be|u32le, http, resp, memcache, replay, ws, none";
        let framing = match spec.split_once(':') {
            None => match spec {
                "none" => Framing::None,
                "echo" => Framing::Echo,
                "line" => Framing::Line,
                "http" => Framing::Http,
                "resp" => Framing::Resp,
                "memcache" => Framing::Memcache,
                "replay" => Framing::Replay,
                "ws" => Framing::Ws,
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
                Framing::Delim(delimiter)
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
            Framing::Line => "line".into(),
            Framing::Delim(d) => format!("delim:{}", d.escape_ascii()),
            Framing::Len(LenPrefix::U16Be) => "len:u16be".into(),
            Framing::Len(LenPrefix::U32Be) => "len:u32be".into(),
            Framing::Len(LenPrefix::U32Le) => "len:u32le".into(),
            Framing::Http => "http".into(),
            Framing::Resp => "resp".into(),
            Framing::Memcache => "memcache".into(),
            Framing::Replay => "replay".into(),
            Framing::Ws => "ws".into(),
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
    /// The kind of reply, where the protocol names one (RESP, memcached).
    pub reply: Reply,
}

/// The kind of reply a protocol's response was, counted by `WorkerStats::record_reply`.
/// Small and `Copy`, so naming it costs no allocation per response.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reply {
    /// Nothing to count beyond the response itself.
    #[default]
    Plain,
    /// A RESP error reply, by its first word: an index into [`RESP_ERROR_WORDS`], or
    /// [`RESP_OTHER_ERROR`] for any other word.
    RespError(u8),
    /// A memcached reply.
    Memcache(MemcacheReply),
}

/// What a memcached reply said. The order is the order of the report's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemcacheReply {
    /// A retrieval with at least one `VALUE` block.
    Hit,
    /// A retrieval answered with `END` alone.
    Miss,
    /// `STORED`.
    Stored,
    /// `NOT_STORED`.
    NotStored,
    /// `EXISTS` (a cas conflict).
    Exists,
    /// `NOT_FOUND`.
    NotFound,
    /// `DELETED`.
    Deleted,
    /// `TOUCHED`.
    Touched,
    /// A number (incr/decr).
    Number,
    /// `OK`.
    Ok,
    /// `VERSION ...`.
    Version,
    /// `STAT` lines up to `END`.
    Stats,
    /// `ERROR` (an unknown command).
    Error,
    /// `CLIENT_ERROR ...`.
    ClientError,
    /// `SERVER_ERROR ...`.
    ServerError,
}

impl MemcacheReply {
    /// Every reply, in counter order.
    pub const ALL: [MemcacheReply; 15] = [
        MemcacheReply::Hit,
        MemcacheReply::Miss,
        MemcacheReply::Stored,
        MemcacheReply::NotStored,
        MemcacheReply::Exists,
        MemcacheReply::NotFound,
        MemcacheReply::Deleted,
        MemcacheReply::Touched,
        MemcacheReply::Number,
        MemcacheReply::Ok,
        MemcacheReply::Version,
        MemcacheReply::Stats,
        MemcacheReply::Error,
        MemcacheReply::ClientError,
        MemcacheReply::ServerError,
    ];

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            MemcacheReply::Hit => "get_hits",
            MemcacheReply::Miss => "get_misses",
            MemcacheReply::Stored => "stored",
            MemcacheReply::NotStored => "not_stored",
            MemcacheReply::Exists => "exists",
            MemcacheReply::NotFound => "not_found",
            MemcacheReply::Deleted => "deleted",
            MemcacheReply::Touched => "touched",
            MemcacheReply::Number => "number",
            MemcacheReply::Ok => "ok",
            MemcacheReply::Version => "version",
            MemcacheReply::Stats => "stats",
            MemcacheReply::Error => "error",
            MemcacheReply::ClientError => "client_error",
            MemcacheReply::ServerError => "server_error",
        }
    }

    /// True for the replies that say the request failed.
    pub fn is_error(self) -> bool {
        matches!(self, MemcacheReply::Error | MemcacheReply::ClientError | MemcacheReply::ServerError)
    }
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
/// call (it lives once in the plan), so the decoder holds only progress: one state,
/// carrying exactly what that state needs. It stays small (at most 48 bytes, see
/// `the_decoder_stays_small`) and owns heap memory only while an HTTP head or
/// chunk-size line is split across reads.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    state: State,
}

/// Where the decoder is within the current response.
#[derive(Clone, Debug, Default)]
enum State {
    /// No byte of the current response has been seen.
    #[default]
    Idle,
    /// Echo: this many bytes of the request came back so far.
    Echo { matched: usize },
    /// `line` and `delim:STR`: looking for the delimiter.
    Delimited(delimited::Progress),
    /// `bytes:N`: this many bytes still to come.
    Fixed { left: usize },
    /// `len:*`: reading the prefix, or the body it announced.
    Len(length::Progress),
    /// `http`: somewhere in a response (or after an interim 1xx one).
    Http(http::Http),
    /// `resp`: somewhere in a reply.
    Resp(resp::Progress),
    /// `memcache`: somewhere in a reply.
    Memcache(memcache::Progress),
}

impl Decoder {
    /// Feeds newly read bytes. `request` is the request this response answers (echo
    /// compares against it); `max_response` bounds a response's size, and a response
    /// is refused as soon as it is known to exceed it.
    ///
    /// Consumes up to the end of at most one response: `Complete { consumed }` leaves
    /// `input[consumed..]` for the next call; `NeedMore` consumed everything.
    pub fn feed(
        &mut self,
        framing: &Framing,
        input: &[u8],
        request: &[u8],
        max_response: usize,
    ) -> Result<Step, ProtocolError> {
        if input.is_empty() {
            return Ok(Step::NeedMore);
        }
        let step = self.step(framing, input, request, max_response);
        if step.is_err() {
            // The engine closes the connection; leave nothing half-decoded behind.
            self.state = State::Idle;
        }
        step
    }

    /// One `feed`. The progress types are `Copy`: they are read out of the state,
    /// advanced, and written back only when the response is still going, so the
    /// common case (a whole response in one read) never writes the state at all.
    /// Taking the state out with `mem::take` on every call instead cost about 4 ns
    /// per response (`framing/line_16KiB_read`: 22 us; 16.6 us without it).
    #[inline]
    fn step(&mut self, framing: &Framing, input: &[u8], request: &[u8], max: usize) -> Result<Step, ProtocolError> {
        match framing {
            Framing::None => Ok(Step::NeedMore),
            Framing::Replay => Err(ProtocolError("the replay framing needs each step's recorded length".into())),
            Framing::Ws => {
                Err(ProtocolError("the ws framing needs a WebSocket session (ws://, wss:// or --ws)".into()))
            }
            Framing::Echo => {
                let matched = if let State::Echo { matched } = self.state { matched } else { 0 };
                let want = request.get(matched..).unwrap_or_default();
                let n = want.len().min(input.len());
                // One memcmp; the byte-by-byte search runs only to name a mismatch.
                if input.get(..n) != want.get(..n) {
                    let at = input.iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
                    return Err(ProtocolError(format!("echo mismatch at byte {}", matched + at)));
                }
                if input.len() >= want.len() {
                    return Ok(self.complete(want.len()));
                }
                self.state = State::Echo { matched: matched + input.len() };
                Ok(Step::NeedMore)
            }
            Framing::Line => self.feed_delimited(b"\n", input, max),
            Framing::Delim(delimiter) => self.feed_delimited(delimiter, input, max),
            Framing::Bytes(n) => {
                if *n > max {
                    return Err(ProtocolError(format!("bytes:{n} is over --max-response ({max})")));
                }
                let left = if let State::Fixed { left } = self.state { left } else { *n };
                if input.len() >= left {
                    return Ok(self.complete(left));
                }
                self.state = State::Fixed { left: left - input.len() };
                Ok(Step::NeedMore)
            }
            Framing::Len(kind) => {
                let mut progress = if let State::Len(p) = self.state { p } else { Default::default() };
                match progress.feed(*kind, input, max)? {
                    Some(consumed) => Ok(self.complete(consumed)),
                    None => {
                        self.state = State::Len(progress);
                        Ok(Step::NeedMore)
                    }
                }
            }
            Framing::Http => {
                let http = match &mut self.state {
                    State::Http(http) => http,
                    state => {
                        *state = State::Http(Default::default());
                        let State::Http(http) = state else { return Ok(Step::NeedMore) };
                        http
                    }
                };
                match http.feed(input, max)? {
                    Some((consumed, response)) => {
                        self.state = State::Idle;
                        Ok(Step::Complete { consumed, response })
                    }
                    None => Ok(Step::NeedMore),
                }
            }
            Framing::Resp => {
                let mut progress = if let State::Resp(p) = self.state { p } else { Default::default() };
                match progress.feed(input, max)? {
                    Some((consumed, reply)) => Ok(self.complete_reply(consumed, reply)),
                    None => {
                        self.state = State::Resp(progress);
                        Ok(Step::NeedMore)
                    }
                }
            }
            Framing::Memcache => {
                let mut progress = if let State::Memcache(p) = self.state { p } else { Default::default() };
                match progress.feed(input, max)? {
                    Some((consumed, reply)) => Ok(self.complete_reply(consumed, reply)),
                    None => {
                        self.state = State::Memcache(progress);
                        Ok(Step::NeedMore)
                    }
                }
            }
        }
    }

    /// `line` and `delim:STR`: consumes up to and including `delimiter`.
    fn feed_delimited(&mut self, delimiter: &[u8], input: &[u8], max: usize) -> Result<Step, ProtocolError> {
        let mut progress = if let State::Delimited(p) = self.state { p } else { Default::default() };
        match progress.feed(delimiter, input, max)? {
            Some(consumed) => Ok(self.complete(consumed)),
            None => {
                self.state = State::Delimited(progress);
                Ok(Step::NeedMore)
            }
        }
    }

    /// The current response ended after `consumed` bytes of this input.
    fn complete(&mut self, consumed: usize) -> Step {
        self.complete_reply(consumed, Reply::Plain)
    }

    /// The current response, a reply of kind `reply`, ended after `consumed` bytes.
    fn complete_reply(&mut self, consumed: usize, reply: Reply) -> Step {
        if !matches!(self.state, State::Idle) {
            self.state = State::Idle;
        }
        Step::Complete { consumed, response: Response { reply, ..Response::default() } }
    }

    /// The peer closed. For a response whose end *is* the close (an HTTP body with
    /// no length), that completes it; otherwise `None`, and the decoder is unchanged.
    pub fn on_eof(&mut self, framing: &Framing) -> Option<Response> {
        match (framing, &mut self.state) {
            (Framing::Http, State::Http(http)) => {
                let response = http.on_eof()?;
                self.state = State::Idle;
                Some(response)
            }
            _ => None,
        }
    }

    /// Forgets any partial response (the connection closed).
    pub fn reset(&mut self) {
        self.state = State::Idle;
    }
}

#[cfg(test)]
mod tests;
