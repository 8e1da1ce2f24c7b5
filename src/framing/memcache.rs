//! `memcache`: memcached text-protocol replies
//! (<https://github.com/memcached/memcached/blob/master/doc/protocol.txt>).
//!
//! A reply is one line (`STORED\r\n`, `NOT_FOUND\r\n`, `42\r\n` from incr/decr,
//! `SERVER_ERROR out of memory\r\n`...), or a multi-line reply that ends with
//! `END\r\n`: retrieval (`VALUE <key> <flags> <bytes> [<cas>]\r\n` then `<bytes>` of
//! data and CRLF, per key) or `stats` (`STAT <name> <value>\r\n` lines).
//!
//! Lines are scanned once; the first word is named as it arrives (`word.rs`), and the
//! only number kept is a `VALUE` line's byte count, whose data is then skipped without
//! being looked at. A `get` that returns a `VALUE` block is a hit, and `END` alone a
//! miss.

use super::word::WordMatch;
use super::{MemcacheReply, ProtocolError, Reply};

/// The first words of the replies understood, in the order of [`Word`].
const WORDS: [&str; 14] = [
    "VALUE",
    "END",
    "STAT",
    "STORED",
    "NOT_STORED",
    "EXISTS",
    "NOT_FOUND",
    "DELETED",
    "TOUCHED",
    "OK",
    "ERROR",
    "CLIENT_ERROR",
    "SERVER_ERROR",
    "VERSION",
];

/// The token of a `VALUE` line that holds the data's byte count (0-based).
const VALUE_BYTES_TOKEN: u8 = 3;

/// Where the decoder is within a reply.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Reading a line.
    Line(Line),
    /// A `VALUE` block's data and its CRLF: `left` bytes to go, the CRLF included.
    Data { left: u64 },
}

/// Progress through one line.
#[derive(Clone, Copy, Debug)]
struct Line {
    /// The line's first word.
    word: WordMatch,
    /// The first word is all digits so far (an incr/decr result).
    numeric: bool,
    /// Which space-separated token the next byte belongs to.
    token: u8,
    /// The `VALUE` line's byte count, as far as its digits have arrived.
    bytes: u64,
    /// The byte count's token held a digit.
    bytes_seen: bool,
    /// The byte count's token held something other than a digit.
    bytes_bad: bool,
    /// The CR was seen; the LF is next.
    cr: bool,
}

impl Line {
    fn new() -> Line {
        Line {
            word: WordMatch::new(&WORDS),
            numeric: true,
            token: 0,
            bytes: 0,
            bytes_seen: false,
            bytes_bad: false,
            cr: false,
        }
    }
}

/// Progress through one memcached reply.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Bytes of this reply consumed so far.
    seen: u64,
    /// Where the decoder is.
    phase: Phase,
    /// What the lines so far started: nothing yet, `VALUE` blocks or `STAT` lines.
    multi: Multi,
}

/// A multi-line reply in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Multi {
    /// No line of the reply has ended yet.
    None,
    /// One or more `VALUE` blocks (a hit): more of them, or `END`, come next.
    Values,
    /// `STAT` lines: more of them, or `END`, come next.
    Stats,
}

impl Default for Progress {
    fn default() -> Self {
        Progress { seen: 0, phase: Phase::Line(Line::new()), multi: Multi::None }
    }
}

/// `END\r\n`: the least that follows a `VALUE` block's data.
const END_LINE: u64 = 5;

fn protocol(detail: String) -> ProtocolError {
    ProtocolError(format!("memcache: {detail}"))
}

impl Progress {
    /// Consumes `input` up to the end of one reply. `Some((consumed, reply))` when
    /// it ended inside `input`; `None` when all of `input` was consumed.
    pub fn feed(&mut self, input: &[u8], max: usize) -> Result<Option<(usize, Reply)>, ProtocolError> {
        let max = max as u64;
        let mut at = 0;
        while at < input.len() {
            let (used, done) = match self.phase {
                Phase::Line(line) => self.line(line, &input[at..])?,
                Phase::Data { left } => self.data(left, &input[at..])?,
            };
            at += used;
            self.seen += used as u64;
            // The least this reply can come to: what arrived, plus the rest of a VALUE
            // block's data and its CRLF, and the END line that must follow them. So a
            // value too large to fit is refused at its VALUE line, before its data.
            let least = match self.phase {
                Phase::Data { left } => self.seen.saturating_add(left).saturating_add(END_LINE),
                Phase::Line(_) => self.seen,
            };
            if least > max {
                return Err(protocol(format!("reply exceeds --max-response ({max} bytes)")));
            }
            if let Some(reply) = done {
                *self = Progress::default();
                return Ok(Some((at, Reply::Memcache(reply))));
            }
        }
        Ok(None)
    }

    /// Scans a line up to its CRLF. Returns the bytes used and, when the reply ended
    /// with this line, what it was.
    fn line(&mut self, mut line: Line, input: &[u8]) -> Result<(usize, Option<MemcacheReply>), ProtocolError> {
        for (i, &byte) in input.iter().enumerate() {
            if line.cr {
                if byte != b'\n' {
                    return Err(protocol(format!("CR followed by 0x{byte:02x}, not LF")));
                }
                return self.line_done(line).map(|reply| (i + 1, reply));
            }
            if line.token == 0 {
                line.word.push(&WORDS, &[byte]);
            }
            match byte {
                b'\r' => line.cr = true,
                b'\n' => return Err(protocol("LF without CR".into())),
                b' ' => line.token = line.token.saturating_add(1),
                _ if line.token == 0 => line.numeric &= byte.is_ascii_digit(),
                b'0'..=b'9' if line.token == VALUE_BYTES_TOKEN => {
                    // Saturating: a huge count is refused as over --max-response.
                    line.bytes = line.bytes.saturating_mul(10).saturating_add(u64::from(byte - b'0'));
                    line.bytes_seen = true;
                }
                _ if line.token == VALUE_BYTES_TOKEN => line.bytes_bad = true,
                _ => {}
            }
        }
        self.phase = Phase::Line(line);
        Ok((input.len(), None))
    }

    /// A line ended: the reply ends too, or says what comes next.
    fn line_done(&mut self, line: Line) -> Result<Option<MemcacheReply>, ProtocolError> {
        let word = line.word.index(&WORDS).map(|i| WORDS[i]);
        let expected_next = match self.multi {
            Multi::None => None,
            Multi::Values => Some("VALUE"),
            Multi::Stats => Some("STAT"),
        };
        if let (Some(next), Some(w)) = (expected_next, word) {
            if w != next && w != "END" {
                return Err(protocol(format!("{w} where {next} or END was due")));
            }
        }
        let reply = match word {
            Some("VALUE") => {
                if line.token < VALUE_BYTES_TOKEN || !line.bytes_seen || line.bytes_bad {
                    return Err(protocol("a VALUE line needs <key> <flags> <bytes>".into()));
                }
                self.multi = Multi::Values;
                self.phase = Phase::Data { left: line.bytes.saturating_add(2) };
                return Ok(None);
            }
            Some("STAT") => {
                self.multi = Multi::Stats;
                self.phase = Phase::Line(Line::new());
                return Ok(None);
            }
            Some("END") => match self.multi {
                Multi::Values => MemcacheReply::Hit,
                Multi::Stats => MemcacheReply::Stats,
                Multi::None => MemcacheReply::Miss,
            },
            Some("STORED") => MemcacheReply::Stored,
            Some("NOT_STORED") => MemcacheReply::NotStored,
            Some("EXISTS") => MemcacheReply::Exists,
            Some("NOT_FOUND") => MemcacheReply::NotFound,
            Some("DELETED") => MemcacheReply::Deleted,
            Some("TOUCHED") => MemcacheReply::Touched,
            Some("OK") => MemcacheReply::Ok,
            Some("ERROR") => MemcacheReply::Error,
            Some("CLIENT_ERROR") => MemcacheReply::ClientError,
            Some("SERVER_ERROR") => MemcacheReply::ServerError,
            Some("VERSION") => MemcacheReply::Version,
            _ if line.numeric && !line.word.is_empty() && line.token == 0 && self.multi == Multi::None => {
                MemcacheReply::Number
            }
            _ => return Err(protocol("a line that is no memcached reply".into())),
        };
        Ok(Some(reply))
    }

    /// A `VALUE` block's data, skipped unseen, then its CRLF.
    fn data(&mut self, left: u64, input: &[u8]) -> Result<(usize, Option<MemcacheReply>), ProtocolError> {
        let body_left = left.saturating_sub(2);
        let mut used = input.len().min(usize::try_from(body_left).unwrap_or(usize::MAX));
        let mut left = left - used as u64;
        while left <= 2 && used < input.len() {
            let want = if left == 2 { b'\r' } else { b'\n' };
            if input[used] != want {
                return Err(protocol("a VALUE block's data must be followed by CRLF".into()));
            }
            used += 1;
            left -= 1;
            if left == 0 {
                self.phase = Phase::Line(Line::new());
                return Ok((used, None));
            }
        }
        self.phase = Phase::Data { left };
        Ok((used, None))
    }
}
