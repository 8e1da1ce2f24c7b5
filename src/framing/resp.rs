//! `resp`: Redis replies, RESP2 and RESP3 (<https://redis.io/docs/latest/develop/reference/protocol-spec/>).
//!
//! A reply is one *element*: a line (`+OK`, `-ERR ...`, `:42`, `,3.14`, `(123`, `#t`,
//! `_`), a blob (`$5\r\nhello\r\n`, RESP3 `!` blob error and `=` verbatim string), or
//! an aggregate that announces how many elements follow (`*` array, `~` set, `>`
//! push, `%` map with two elements per entry). A `|` attribute announces key/value
//! pairs that come *before* the element they describe.
//!
//! Nesting needs no stack. Whatever the depth, the decoder only has to know how many
//! elements are still to come before the reply ends: it starts at one, each finished
//! element takes one off, and an aggregate of `n` replaces itself with its `n`
//! children. The reply ends when the count reaches zero. So a hostile server that
//! nests a million arrays costs one counter, not a million stack frames, and the
//! count is bounded too: every element still to come needs at least 3 bytes, so an
//! aggregate announcing more than `--max-response` allows is refused at its header.
//!
//! Error replies (`-WRONGTYPE ...`, `!` blobs) are replies, not connection errors: the
//! reply completes with [`Reply::RespError`](super::Reply::RespError), named by its
//! first word, matched against [`ERROR_WORDS`] as the bytes arrive (no buffer, see `word.rs`).

use super::word::WordMatch;
use super::{ProtocolError, Reply};

/// The error words counted by name; any other first word counts as `other`.
/// At most 32 (the limit of `word.rs`'s bit mask).
pub const ERROR_WORDS: [&str; 20] = [
    "ERR",
    "WRONGTYPE",
    "MOVED",
    "ASK",
    "NOSCRIPT",
    "BUSY",
    "BUSYKEY",
    "NOAUTH",
    "WRONGPASS",
    "NOPERM",
    "OOM",
    "EXECABORT",
    "LOADING",
    "READONLY",
    "MASTERDOWN",
    "CROSSSLOT",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "NOPROTO",
    "MISCONF",
];

/// Index of `other` in per-word counters: one past the named words.
pub const OTHER_ERROR: usize = ERROR_WORDS.len();

/// The name of error counter `index` (`other` for [`OTHER_ERROR`]).
pub fn error_word_name(index: usize) -> &'static str {
    ERROR_WORDS.get(index).copied().unwrap_or("other")
}

/// The fewest bytes any element can take (`_\r\n`, `+\r\n`): what every element
/// still to come is charged against `--max-response`.
const MIN_ELEMENT: u64 = 3;

/// Where the decoder is within the current element.
#[derive(Clone, Copy, Debug, Default)]
enum Phase {
    /// The next byte is an element's type byte.
    #[default]
    TypeByte,
    /// A header number after `kind` (`:`, `$`, `!`, `=`, `*`, `~`, `>`, `%`, `|`).
    Number {
        kind: u8,
        value: u64,
        negative: bool,
        /// At least one digit was seen.
        digits: bool,
        /// The CR that ends the line was seen; its LF is next.
        cr: bool,
    },
    /// A line element after `kind` (`+`, `-`, `,`, `(`, `#`, `_`): up to CRLF.
    Line {
        /// The CR was seen; its LF is next.
        cr: bool,
    },
    /// A blob's body and its closing CRLF: `left` bytes to go, the CRLF included.
    Blob { left: u64 },
}

/// Progress through one RESP reply.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Elements still to come before the reply ends, the current one included.
    pending: u64,
    /// Bytes of this reply consumed so far.
    seen: u64,
    /// Where in the current element we are.
    phase: Phase,
    /// The reply's main element (the first one not inside an attribute) has begun.
    main_started: bool,
    /// The main element is an error reply: its first word, being matched.
    error: Option<WordMatch>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress { pending: 1, seen: 0, phase: Phase::TypeByte, main_started: false, error: None }
    }
}

fn protocol(detail: String) -> ProtocolError {
    ProtocolError(format!("RESP: {detail}"))
}

impl Progress {
    /// Consumes `input` up to the end of one reply. `Some((consumed, reply))` when
    /// it ended inside `input`; `None` when all of `input` was consumed.
    pub fn feed(&mut self, input: &[u8], max: usize) -> Result<Option<(usize, Reply)>, ProtocolError> {
        let max = max as u64;
        let mut at = 0;
        while at < input.len() {
            let (used, element_done) = self.step(&input[at..], max)?;
            at += used;
            self.seen += used as u64;
            if self.seen > max {
                return Err(protocol(format!("reply exceeds --max-response ({max} bytes)")));
            }
            if element_done {
                self.pending -= 1;
                self.phase = Phase::TypeByte;
                if self.pending == 0 {
                    let reply = match self.error {
                        Some(word) => Reply::RespError(word.index(&ERROR_WORDS).unwrap_or(OTHER_ERROR) as u8),
                        None => Reply::Plain,
                    };
                    *self = Progress::default();
                    return Ok(Some((at, reply)));
                }
            }
        }
        Ok(None)
    }

    /// Consumes from `input` (never empty) within the current element. Returns the
    /// bytes used and whether the element ended with them.
    fn step(&mut self, input: &[u8], max: u64) -> Result<(usize, bool), ProtocolError> {
        match self.phase {
            Phase::TypeByte => {
                let kind = input[0];
                if !self.main_started && self.pending == 1 && kind != b'|' {
                    // Everything before this was an attribute: this is the reply itself.
                    self.main_started = true;
                    if kind == b'-' || kind == b'!' {
                        self.error = Some(WordMatch::new(&ERROR_WORDS));
                    }
                }
                self.phase = match kind {
                    b'+' | b'-' | b',' | b'(' | b'#' | b'_' => Phase::Line { cr: false },
                    b':' | b'$' | b'!' | b'=' | b'*' | b'~' | b'>' | b'%' | b'|' => {
                        Phase::Number { kind, value: 0, negative: false, digits: false, cr: false }
                    }
                    other => return Err(protocol(format!("unknown type byte 0x{other:02x}"))),
                };
                Ok((1, false))
            }
            Phase::Line { cr } => self.line(input, cr),
            Phase::Number { .. } => self.number(input, max),
            Phase::Blob { left } => self.blob(input, left),
        }
    }

    /// A line element: scans to CR, then wants LF. A bare CR or LF inside is refused.
    fn line(&mut self, input: &[u8], cr: bool) -> Result<(usize, bool), ProtocolError> {
        if cr {
            return match input[0] {
                b'\n' => Ok((1, true)),
                other => Err(protocol(format!("CR followed by 0x{other:02x}, not LF"))),
            };
        }
        let end = memchr::memchr2(b'\r', b'\n', input);
        let text = &input[..end.unwrap_or(input.len())];
        if let Some(word) = &mut self.error {
            word.push(&ERROR_WORDS, text);
        }
        match end {
            None => Ok((input.len(), false)),
            Some(at) if input[at] == b'\r' => {
                self.phase = Phase::Line { cr: true };
                Ok((at + 1, false))
            }
            Some(_) => Err(protocol("LF without CR in a line".into())),
        }
    }

    /// A header number, byte by byte (headers are a few bytes; a read rarely splits
    /// one, and when it does, the digits so far are kept in `value`).
    fn number(&mut self, input: &[u8], max: u64) -> Result<(usize, bool), ProtocolError> {
        let Phase::Number { kind, mut value, mut negative, mut digits, mut cr } = self.phase else {
            return Ok((0, false));
        };
        for (i, &byte) in input.iter().enumerate() {
            match byte {
                _ if cr => {
                    if byte != b'\n' {
                        return Err(protocol(format!("CR followed by 0x{byte:02x}, not LF")));
                    }
                    let seen = self.seen + i as u64 + 1;
                    return self.header_done(kind, value, negative, seen, max).map(|done| (i + 1, done));
                }
                b'0'..=b'9' => {
                    digits = true;
                    // Saturating: a huge count is refused below as over the limit.
                    value = value.saturating_mul(10).saturating_add(u64::from(byte - b'0'));
                }
                b'-' | b'+' if !digits && !negative => negative = byte == b'-',
                b'\r' if digits => cr = true,
                b'?' if !digits => {
                    return Err(protocol(format!("streamed '{}' aggregates are not supported", char::from(kind))))
                }
                other => return Err(protocol(format!("0x{other:02x} in the number after '{}'", char::from(kind)))),
            }
        }
        self.phase = Phase::Number { kind, value, negative, digits, cr };
        Ok((input.len(), false))
    }

    /// A header line ended, `seen` bytes into the reply: what it announces. Returns
    /// whether the element ended.
    fn header_done(
        &mut self,
        kind: u8,
        value: u64,
        negative: bool,
        seen: u64,
        max: u64,
    ) -> Result<bool, ProtocolError> {
        let later = (self.pending - 1).saturating_mul(MIN_ELEMENT);
        let over = |need: u64| seen.saturating_add(need) > max;
        match (kind, negative) {
            (b':', _) => Ok(true),
            // RESP2 nulls: `$-1` and `*-1`.
            (b'$' | b'*', true) if value == 1 => Ok(true),
            (_, true) => Err(protocol(format!("negative length after '{}'", char::from(kind)))),
            (b'$' | b'!' | b'=', false) => {
                let left = value.saturating_add(2);
                if over(left.saturating_add(later)) {
                    return Err(protocol(format!("a {value}-byte blob is over --max-response ({max} bytes)")));
                }
                self.phase = Phase::Blob { left };
                Ok(false)
            }
            (b'*' | b'~' | b'>' | b'%' | b'|', false) => {
                let children = if matches!(kind, b'%' | b'|') { value.saturating_mul(2) } else { value };
                // An attribute comes before its element: it adds its pairs and is
                // not itself one of the elements counted. Saturating: a count near
                // u64::MAX is refused just below (fuzzing found the overflow).
                let pending = match kind {
                    b'|' => self.pending.saturating_add(children),
                    _ => (self.pending - 1).saturating_add(children),
                };
                if over(pending.saturating_mul(MIN_ELEMENT)) {
                    return Err(protocol(format!(
                        "an aggregate of {value} elements is over --max-response ({max} bytes)"
                    )));
                }
                if kind != b'|' && children == 0 {
                    return Ok(true); // An empty aggregate is a finished element.
                }
                // Not "done": the aggregate stands for its children now (an attribute
                // for its pairs and then its element), which are still to come.
                self.pending = pending;
                self.phase = Phase::TypeByte;
                Ok(false)
            }
            _ => Err(protocol(format!("unexpected type '{}'", char::from(kind)))),
        }
    }

    /// A blob's body and closing CRLF. The body is skipped without looking at it,
    /// except for an error blob's first word.
    fn blob(&mut self, input: &[u8], left: u64) -> Result<(usize, bool), ProtocolError> {
        let body_left = left.saturating_sub(2);
        let body = input.len().min(usize::try_from(body_left).unwrap_or(usize::MAX));
        if let Some(word) = &mut self.error {
            word.push(&ERROR_WORDS, &input[..body]);
        }
        let mut left = left - body as u64;
        let mut used = body;
        while left <= 2 && used < input.len() {
            let want = if left == 2 { b'\r' } else { b'\n' };
            if input[used] != want {
                return Err(protocol("a blob's body must be followed by CRLF".into()));
            }
            used += 1;
            left -= 1;
            if left == 0 {
                return Ok((used, true));
            }
        }
        self.phase = Phase::Blob { left };
        Ok((used, false))
    }
}
