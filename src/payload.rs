//! What a connection sends: message literals with escapes, templates, files and
//! random bytes.
//!
//! A message is parsed once into a [`Template`]. A template without fields is
//! *static*: its bytes are shared by every connection and never copied per
//! connection. A template with fields is rendered per request into a per-worker
//! buffer ([`Template::render_into`]), which allocates nothing once the buffer has
//! grown to the message's size.
//!
//! Rendering is a pure function of the fields: `{rand:N}` digits come from a hash of
//! (connection, sequence number, field position), not from a random generator. So the
//! echo framing can render a request again to check its echo, without keeping every
//! request in flight in memory.
//!
//! A message file (`-f PATH`) and `--message-size` bytes are used as they are, through
//! [`Template::raw`]: no escapes and no fields, so binary files and JSON are sent
//! byte for byte.
//!
//! `{value:N}` inserts N bytes of one random buffer made when the template is parsed
//! (2N letters and digits; each request starts at its own hashed offset), so a SET of a
//! large value costs one copy per request and no allocation.
//!
//! [`Template::parse_resp`] (`--resp`) frames a command line as a RESP array of bulk
//! strings. A bulk string's length prefix depends on what its fields render to, so
//! each argument with fields is preceded by a `Part::BulkLen` that writes `$LEN\r\n` from the
//! rendered lengths of the parts that follow (computed, not rendered twice).

use std::sync::Arc;

/// Turns a message literal into bytes, resolving `\r \n \t \0 \\ \xNN`.
///
/// Any other backslash sequence is an error, so a typo like `\m` is reported
/// rather than sent.
pub fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let Some(&code) = bytes.get(i + 1) else {
            return Err("message ends with a lone backslash (write \\\\ for a backslash)".into());
        };
        i += 2;
        let byte = match code {
            b'r' => b'\r',
            b'n' => b'\n',
            b't' => b'\t',
            b'0' => 0,
            b'\\' => b'\\',
            b'x' => {
                let hex = bytes
                    .get(i..i + 2)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| "\\x must be followed by two hex digits, as in \\x0a".to_string())?;
                i += 2;
                hex
            }
            other => {
                return Err(format!(
                    "unknown escape \\{} (known: \\r \\n \\t \\0 \\\\ \\xNN)",
                    char::from(other).escape_default()
                ))
            }
        };
        out.push(byte);
    }
    Ok(out)
}

/// The per-request values a template can insert.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    /// Run-wide connection id (`{conn}`).
    pub conn: u64,
    /// The request's sequence number on its connection, from 0 (`{seq}`).
    pub seq: u64,
    /// Worker thread number (`{worker}`).
    pub worker: u64,
}

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    /// Bytes `start..end` of the template's text.
    Literal(usize, usize),
    Conn,
    Seq,
    Worker,
    /// N random decimal digits.
    Rand(u8),
    /// N bytes of the template's value buffer (`{value:N}`).
    Value(u32),
    /// `--resp`: `$LEN\r\n`, where LEN is the rendered length of the next this many
    /// parts (one bulk-string argument with fields).
    BulkLen(u16),
}

/// The largest `{value:N}`: 16 MiB (the buffer is twice that).
pub const MAX_VALUE: u32 = 16 << 20;

/// The bytes `{value:N}` fields copy from: shared by every connection and worker.
#[derive(Clone, PartialEq, Eq)]
struct ValueBytes(Arc<[u8]>);

impl std::fmt::Debug for ValueBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValueBytes({} bytes)", self.0.len())
    }
}

impl ValueBytes {
    /// `len` letters and digits, the same every run (a fixed splitmix64 sequence), so
    /// a request rendered again for the echo check is the same.
    fn new(len: usize) -> ValueBytes {
        const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut x = 0u64;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x = splitmix64(x);
                ALPHABET[(x % 62) as usize]
            })
            .collect();
        ValueBytes(bytes.into())
    }
}

/// A message, parsed once: literal bytes with `{conn}`, `{seq}`, `{worker}` and
/// `{rand:N}` fields. Any other text in braces is literal, so JSON passes through;
/// only `{rand:...}` with a bad N is an error, since it can only be a typo.
///
/// `{rand:N}` renders N decimal digits that are a hash (splitmix64) of the
/// connection id, the sequence number and the field's position in the template:
/// the same fields always render the same bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// The literal bytes the parts point into.
    text: Vec<u8>,
    parts: Vec<Part>,
    /// What `{value:N}` copies from; `None` when there is no such field.
    values: Option<ValueBytes>,
}

impl Template {
    /// Parses already-unescaped bytes (see [`unescape`]).
    pub fn parse(text: Vec<u8>) -> Result<Template, String> {
        Ok(Template::parse_fields(text)?.with_value_bytes())
    }

    /// `--resp`: parses a command line (already unescaped) into a RESP array of bulk
    /// strings, one per argument. Arguments are separated by spaces (tabs, CR and LF
    /// count as spaces); `"..."` quotes an argument holding spaces, or an empty one.
    /// Fields work inside arguments: `SET k{conn} {value:100}`.
    pub fn parse_resp(line: &[u8]) -> Result<Template, String> {
        let args = split_command(line)?;
        let mut out = Template { text: Vec::new(), parts: Vec::new(), values: None };
        out.push_literal(format!("*{}\r\n", args.len()).as_bytes(), true);
        for arg in args {
            let arg = Template::parse_fields(arg.to_vec())?;
            let is_static = arg.as_static().is_some();
            match arg.as_static() {
                Some(bytes) => {
                    out.push_literal(format!("${}\r\n", bytes.len()).as_bytes(), true);
                    out.push_literal(bytes, true);
                }
                None => {
                    let count = u16::try_from(arg.parts.len()).map_err(|_| "an argument has too many fields")?;
                    out.parts.push(Part::BulkLen(count));
                    for part in &arg.parts {
                        match part {
                            // Not merged: BulkLen counts this argument's parts.
                            Part::Literal(a, b) => out.push_literal(&arg.text[*a..*b], false),
                            field => out.parts.push(field.clone()),
                        }
                    }
                }
            }
            // After an argument with fields, not merged: BulkLen counts its parts.
            out.push_literal(b"\r\n", is_static);
        }
        Ok(out.with_value_bytes())
    }

    /// Appends literal bytes, merged into the previous literal part when `merge`
    /// allows and they follow on (so a static command is one part).
    fn push_literal(&mut self, bytes: &[u8], merge: bool) {
        let (start, end) = (self.text.len(), self.text.len() + bytes.len());
        self.text.extend_from_slice(bytes);
        match self.parts.last_mut() {
            Some(Part::Literal(_, last_end)) if merge && *last_end == start => *last_end = end,
            _ => self.parts.push(Part::Literal(start, end)),
        }
    }

    /// Makes the buffer `{value:N}` fields copy from: twice the largest N, so every
    /// request can start at its own offset.
    fn with_value_bytes(mut self) -> Template {
        let largest = self.parts.iter().filter_map(|p| if let Part::Value(n) = p { Some(*n) } else { None }).max();
        self.values = largest.map(|n| ValueBytes::new(2 * n as usize));
        self
    }

    /// Splits `text` into literal parts and fields (no value buffer yet).
    fn parse_fields(text: Vec<u8>) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal_from = 0;
        let mut i = 0;
        while i < text.len() {
            if text[i] != b'{' {
                i += 1;
                continue;
            }
            let Some(close) = text[i..].iter().position(|&b| b == b'}') else { break };
            let inner = &text[i + 1..i + close];
            let field = match inner {
                b"conn" => Some(Part::Conn),
                b"seq" => Some(Part::Seq),
                b"worker" => Some(Part::Worker),
                _ if inner.starts_with(b"value:") => {
                    let n = &inner[b"value:".len()..];
                    match parse_digits(n).and_then(|n| u32::try_from(n).ok()) {
                        Some(n @ 1..=MAX_VALUE) => Some(Part::Value(n)),
                        _ => {
                            return Err(format!(
                                "{{value:N}} takes N from 1 to {MAX_VALUE} bytes, not '{}'",
                                String::from_utf8_lossy(n)
                            ))
                        }
                    }
                }
                _ => match inner.strip_prefix(b"rand:") {
                    Some(n) => {
                        // Digits only: `str::parse` would also take a sign (`+5`).
                        let digits = std::str::from_utf8(n)
                            .ok()
                            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                            .and_then(|n| n.parse::<u8>().ok());
                        match digits {
                            Some(d @ 1..=20) => Some(Part::Rand(d)),
                            _ => {
                                return Err(format!(
                                    "{{rand:N}} takes N from 1 to 20, not '{}'",
                                    String::from_utf8_lossy(n)
                                ))
                            }
                        }
                    }
                    None => None, // Not a field: literal text in braces.
                },
            };
            match field {
                Some(part) => {
                    if literal_from < i {
                        parts.push(Part::Literal(literal_from, i));
                    }
                    parts.push(part);
                    i += close + 1;
                    literal_from = i;
                }
                None => i += 1,
            }
        }
        if literal_from < text.len() {
            parts.push(Part::Literal(literal_from, text.len()));
        }
        Ok(Template { text, parts, values: None })
    }

    /// A template of fixed bytes (a message file, random bytes): no fields.
    pub fn raw(bytes: Vec<u8>) -> Template {
        let parts = if bytes.is_empty() { Vec::new() } else { vec![Part::Literal(0, bytes.len())] };
        Template { text: bytes, parts, values: None }
    }

    /// The bytes, when there are no fields to fill in.
    pub fn as_static(&self) -> Option<&[u8]> {
        self.parts.iter().all(|p| matches!(p, Part::Literal(..))).then_some(&self.text[..])
    }

    /// Appends the rendered message to `out`. Allocates only if `out` must grow, so
    /// a buffer reserved with [`Template::max_len`] is never reallocated.
    pub fn render_into(&self, fields: &Fields, out: &mut Vec<u8>) {
        for (index, part) in self.parts.iter().enumerate() {
            match part {
                Part::Literal(a, b) => out.extend_from_slice(&self.text[*a..*b]),
                Part::Conn => push_decimal(out, fields.conn),
                Part::Seq => push_decimal(out, fields.seq),
                Part::Worker => push_decimal(out, fields.worker),
                Part::Rand(n) => {
                    let mut x = field_hash(fields, index);
                    for _ in 0..*n {
                        out.push(b'0' + (x % 10) as u8);
                        x = splitmix64(x);
                    }
                }
                Part::Value(n) => out.extend_from_slice(self.value(*n, fields, index)),
                Part::BulkLen(count) => {
                    let arg = self.parts.get(index + 1..index + 1 + usize::from(*count)).unwrap_or_default();
                    let len = arg.iter().map(|p| self.rendered_len(p, fields)).sum::<usize>();
                    out.push(b'$');
                    push_decimal(out, len as u64);
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }

    /// The `n` value bytes of a `{value:N}` field: a window of the shared buffer at an
    /// offset hashed from the fields, so values differ per request yet render again
    /// the same.
    fn value(&self, n: u32, fields: &Fields, index: usize) -> &[u8] {
        let Some(ValueBytes(bytes)) = &self.values else { return &[] };
        let n = n as usize;
        let starts = (bytes.len() + 1).saturating_sub(n).max(1);
        let at = (field_hash(fields, index) % starts as u64) as usize;
        bytes.get(at..at + n).unwrap_or_default()
    }

    /// How many bytes `part` renders to, without rendering it.
    fn rendered_len(&self, part: &Part, fields: &Fields) -> usize {
        match part {
            Part::Literal(a, b) => b - a,
            Part::Conn => decimal_len(fields.conn),
            Part::Seq => decimal_len(fields.seq),
            Part::Worker => decimal_len(fields.worker),
            Part::Rand(n) => usize::from(*n),
            Part::Value(n) => *n as usize,
            Part::BulkLen(_) => 0, // Never inside an argument.
        }
    }

    /// The longest the rendered message can be.
    pub fn max_len(&self) -> usize {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Literal(a, b) => b - a,
                Part::Conn | Part::Seq | Part::Worker => 20,
                Part::Rand(n) => usize::from(*n),
                Part::Value(n) => *n as usize,
                Part::BulkLen(_) => "$".len() + 20 + "\r\n".len(),
            })
            .sum()
    }
}

/// Splits a `--resp` command line into its arguments: runs of bytes between spaces,
/// or `"..."` (which may hold spaces, or nothing).
fn split_command(line: &[u8]) -> Result<Vec<&[u8]>, String> {
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let mut args = Vec::new();
    let mut i = 0;
    while i < line.len() {
        if is_space(line[i]) {
            i += 1;
        } else if line[i] == b'"' {
            let len = line[i + 1..].iter().position(|&b| b == b'"').ok_or("a quote (\") is not closed")?;
            args.push(&line[i + 1..i + 1 + len]);
            i += len + 2;
        } else {
            let len = line[i..].iter().position(|&b| is_space(b)).unwrap_or(line.len() - i);
            args.push(&line[i..i + len]);
            i += len;
        }
    }
    if args.is_empty() {
        return Err("the command is empty".into());
    }
    Ok(args)
}

/// A field's hash of (connection, sequence number, position in the template).
fn field_hash(fields: &Fields, index: usize) -> u64 {
    splitmix64(fields.conn ^ splitmix64(fields.seq ^ splitmix64(index as u64)))
}

/// Digits only (`str::parse` would also take a sign, `+5`).
fn parse_digits(text: &[u8]) -> Option<u64> {
    std::str::from_utf8(text).ok().filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))?.parse().ok()
}

/// Digits in `n`'s decimal form.
fn decimal_len(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Writes `n` in decimal without allocating.
fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// A fast, well-mixed 64-bit hash (splitmix64's finaliser). Also picks a request
/// mix's names (`mix.rs`).
pub(crate) fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// What a run sends: messages in turn (request `seq` sends message `seq % len`), and
/// an optional first message sent once per connection before the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    messages: Vec<Template>,
    /// Sent once after each connect; its response is awaited and checked but not
    /// counted as a request (an AUTH, a handshake).
    pub first: Option<Template>,
}

impl Payload {
    /// A payload of `messages`, sent in turn.
    pub fn new(messages: Vec<Template>, first: Option<Template>) -> Result<Payload, String> {
        if messages.is_empty() || messages.iter().any(|m| m.max_len() == 0) {
            return Err("a message must not be empty".into());
        }
        Ok(Payload { messages, first })
    }

    /// The message request `seq` sends.
    pub fn message(&self, seq: u64) -> &Template {
        &self.messages[(seq % self.messages.len() as u64) as usize]
    }

    /// The bytes every request sends, when there is one message and it has no fields:
    /// the fast path, with no rendering at all.
    pub fn single_static(&self) -> Option<&[u8]> {
        match &self.messages[..] {
            [only] => only.as_static(),
            _ => None,
        }
    }

    /// Describes the payload for reports: the message's size, or the largest.
    pub fn max_len(&self) -> usize {
        self.messages.iter().map(Template::max_len).max().unwrap_or(0)
    }
}

/// Makes `n` random bytes, once, for `--message-size`.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::new();
    (0..n).map(|_| rng.u8(..)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &Template, conn: u64, seq: u64) -> String {
        let mut out = Vec::new();
        t.render_into(&Fields { conn, seq, worker: 3 }, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(unescape("hello world").unwrap(), b"hello world");
    }

    #[test]
    fn every_escape_resolves() {
        assert_eq!(unescape(r"a\r\n\t\0\\b").unwrap(), b"a\r\n\t\0\\b");
        assert_eq!(unescape(r"\x00\xff\x0A").unwrap(), vec![0, 255, 10]);
        assert_eq!(unescape(r"PING\r\n").unwrap(), b"PING\r\n");
    }

    #[test]
    fn malformed_escapes_are_errors() {
        assert!(unescape("trailing\\").is_err());
        assert!(unescape(r"\x4").is_err());
        assert!(unescape(r"\xzz").is_err());
        assert!(unescape(r"\q").unwrap_err().contains("\\q"));
    }

    #[test]
    fn utf8_passes_through() {
        assert_eq!(unescape("héllo").unwrap(), "héllo".as_bytes());
    }

    #[test]
    fn fields_render_per_connection_and_sequence() {
        let t = Template::parse(b"SET k{conn} v{seq} w{worker}\r\n".to_vec()).unwrap();
        assert_eq!(t.as_static(), None);
        assert_eq!(render(&t, 7, 42), "SET k7 v42 w3\r\n");
        assert_eq!(render(&t, 0, 0), "SET k0 v0 w3\r\n");
        assert_eq!(render(&t, u64::MAX, 1), format!("SET k{} v1 w3\r\n", u64::MAX));
    }

    #[test]
    fn text_in_braces_that_is_not_a_field_is_literal() {
        let t = Template::parse(br#"{"id":{conn},"x":{}}"#.to_vec()).unwrap();
        assert_eq!(render(&t, 5, 0), r#"{"id":5,"x":{}}"#);
        let s = Template::parse(b"{unclosed".to_vec()).unwrap();
        assert_eq!(s.as_static(), Some(&b"{unclosed"[..]));
    }

    #[test]
    fn rand_digits_are_deterministic_per_connection_and_sequence() {
        let t = Template::parse(b"{rand:8}".to_vec()).unwrap();
        let a = render(&t, 1, 2);
        assert_eq!(a.len(), 8);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(render(&t, 1, 2), a, "the same fields render the same bytes");
        assert_ne!(render(&t, 1, 3), a);
        assert!(Template::parse(b"{rand:0}".to_vec()).is_err());
        assert!(Template::parse(b"{rand:21}".to_vec()).is_err());
    }

    #[test]
    fn rendering_into_a_grown_buffer_allocates_nothing() {
        let t = Template::parse(b"GET /item/{conn}/{seq} {rand:6}\r\n".to_vec()).unwrap();
        let mut out = Vec::with_capacity(t.max_len());
        let capacity = out.capacity();
        for seq in 0..1000 {
            out.clear();
            t.render_into(&Fields { conn: u64::MAX, seq: u64::MAX - seq, worker: 9 }, &mut out);
            assert!(out.len() <= t.max_len());
        }
        assert_eq!(out.capacity(), capacity);
    }

    #[test]
    fn each_field_renders_alone() {
        let one = |text: &[u8]| render(&Template::parse(text.to_vec()).unwrap(), 12, 34);
        assert_eq!(one(b"{conn}"), "12");
        assert_eq!(one(b"{seq}"), "34");
        assert_eq!(one(b"{worker}"), "3");
        assert_eq!(one(b"{rand:3}").len(), 3);
    }

    #[test]
    fn rand_renders_exactly_n_digits_for_every_n_from_1_to_20() {
        for n in 1..=20 {
            let t = Template::parse(format!("<{{rand:{n}}}>").into_bytes()).unwrap();
            let out = render(&t, u64::MAX, u64::MAX);
            assert_eq!(out.len(), n + 2, "{out}");
            assert!(out[1..=n].bytes().all(|b| b.is_ascii_digit()), "{out}");
            assert_eq!(t.max_len(), n + 2);
        }
        for bad in ["{rand:}", "{rand:+5}", "{rand: 5}", "{rand:x}", "{rand:256}"] {
            assert!(Template::parse(bad.as_bytes().to_vec()).is_err(), "{bad}");
        }
    }

    #[test]
    fn two_rand_fields_in_one_message_differ_because_their_positions_do() {
        let t = Template::parse(b"{rand:20}-{rand:20}".to_vec()).unwrap();
        let out = render(&t, 1, 1);
        let (a, b) = out.split_once('-').unwrap();
        assert_ne!(a, b);
        assert_eq!(render(&t, 1, 1), out, "and re-rendering (for the echo check) gives the same bytes");
    }

    #[test]
    fn a_raw_message_is_sent_byte_for_byte_with_no_fields_or_escapes() {
        let t = Template::raw(br#"{conn} \n {"a":1}"#.to_vec());
        assert_eq!(t.as_static(), Some(&br#"{conn} \n {"a":1}"#[..]));
        let json = Template::parse(br#"{"a":1,"b":{"c":[]}}"#.to_vec()).unwrap();
        assert_eq!(json.as_static(), Some(&br#"{"a":1,"b":{"c":[]}}"#[..]));
    }

    #[test]
    fn messages_are_sent_in_turn() {
        let p = Payload::new(vec![Template::raw(b"a".to_vec()), Template::raw(b"b".to_vec())], None).unwrap();
        assert_eq!(p.message(0).as_static(), Some(&b"a"[..]));
        assert_eq!(p.message(3).as_static(), Some(&b"b"[..]));
        assert_eq!(p.single_static(), None);
        let one = Payload::new(vec![Template::raw(b"x".to_vec())], None).unwrap();
        assert_eq!(one.single_static(), Some(&b"x"[..]));
        assert!(Payload::new(vec![], None).is_err());
    }

    fn resp(line: &str, conn: u64, seq: u64) -> String {
        render(&Template::parse_resp(line.as_bytes()).unwrap(), conn, seq)
    }

    #[test]
    fn a_resp_command_is_an_array_of_bulk_strings() {
        let t = Template::parse_resp(b"SET k v").unwrap();
        assert_eq!(t.as_static(), Some(&b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"[..]));
        assert_eq!(t.parts.len(), 1, "a static command is one literal");
        assert_eq!(resp("  GET\tkey\r\n", 0, 0), "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", "any whitespace separates");
        assert_eq!(resp(r#"SET "a b" """#, 0, 0), "*3\r\n$3\r\nSET\r\n$3\r\na b\r\n$0\r\n\r\n");
    }

    #[test]
    fn resp_lengths_follow_what_the_fields_render_to() {
        assert_eq!(resp("SET k{conn} v{seq}", 7, 1234), "*3\r\n$3\r\nSET\r\n$2\r\nk7\r\n$5\r\nv1234\r\n");
        assert_eq!(resp("SET k{conn} v{seq}", 12345, 0), "*3\r\n$3\r\nSET\r\n$6\r\nk12345\r\n$2\r\nv0\r\n");
        let big = resp("SET k {value:10240}", 1, 1);
        assert!(big.starts_with("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10240\r\n"), "{}", &big[..40]);
        assert_eq!(big.len(), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10240\r\n".len() + 10240 + 2);
    }

    #[test]
    fn bad_resp_commands_are_refused() {
        assert!(Template::parse_resp(b"").unwrap_err().contains("empty"));
        assert!(Template::parse_resp(b"  \r\n").is_err());
        assert!(Template::parse_resp(b"SET \"k v").unwrap_err().contains("quote"));
        assert!(Template::parse_resp(b"SET k {rand:0}").is_err());
    }

    #[test]
    fn a_resp_argument_of_several_parts_gets_the_length_of_all_of_them() {
        let t = Template::parse_resp(b"SET ab{seq}c v").unwrap();
        assert_eq!(render(&t, 1, 12345), "*3\r\n$3\r\nSET\r\n$8\r\nab12345c\r\n$1\r\nv\r\n");
        assert_eq!(render(&t, 1, 7), "*3\r\n$3\r\nSET\r\n$4\r\nab7c\r\n$1\r\nv\r\n");
        // The bound is exact for a 20-digit {seq}, except for the one computed length
        // (`$23\r\n` here), which is bounded by `$`, 20 digits and CRLF. Fixed
        // arguments carry their length as a literal.
        let longest = render(&t, 1, u64::MAX);
        assert_eq!(t.max_len(), longest.len() - "$23\r\n".len() + "$".len() + 20 + "\r\n".len(), "{longest:?}");
    }

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // SplitMix64 from state 0: its first two outputs, as published with the
        // algorithm (Vigna's splitmix64.c); each call here is one step from `x`.
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(0x9e37_79b9_7f4a_7c15), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn a_payloads_max_len_is_its_longest_message_and_random_bytes_have_their_length() {
        let short = Template::parse(b"ab".to_vec()).unwrap();
        let long = Template::parse(b"abcdef".to_vec()).unwrap();
        assert_eq!(Payload::new(vec![short, long], None).unwrap().max_len(), 6);
        assert_eq!(random_bytes(300).len(), 300);
        assert_ne!(random_bytes(64), random_bytes(64), "two draws of 64 random bytes differ");
    }

    #[test]
    fn adjacent_fields_leave_no_empty_literal_between_them() {
        // An empty literal would render nothing, but cost a step of every render.
        let t = Template::parse(b"{seq}{conn}".to_vec()).unwrap();
        assert_eq!(t.parts.len(), 2, "{:?}", t.parts);
        let t = Template::parse(b"a{seq}".to_vec()).unwrap();
        assert_eq!(t.parts.len(), 2, "{:?}", t.parts);
    }

    #[test]
    fn value_fields_copy_n_letters_and_digits_from_one_shared_buffer() {
        let t = Template::parse(b"<{value:100}>".to_vec()).unwrap();
        let a = render(&t, 1, 1);
        assert_eq!(a.len(), 102);
        assert!(a[1..101].bytes().all(|b| b.is_ascii_alphanumeric()), "{a}");
        assert_eq!(render(&t, 1, 1), a, "rendering again (the echo check) gives the same bytes");
        let distinct: std::collections::HashSet<String> = (0..50).map(|seq| render(&t, 1, seq)).collect();
        assert!(distinct.len() > 40, "requests start at their own offsets: {} distinct of 50", distinct.len());
        assert_eq!(t.max_len(), 102);
        let copy = t.clone();
        let (Some(ValueBytes(x)), Some(ValueBytes(y))) = (&t.values, &copy.values) else { panic!("no buffer") };
        assert!(Arc::ptr_eq(x, y), "copies of the template share the buffer");
        // Debug output names the size, not megabytes of letters.
        assert_eq!(format!("{x:?}", x = ValueBytes(x.clone())), format!("ValueBytes({} bytes)", x.len()));
        for bad in ["{value:0}", "{value:}", "{value:x}", "{value:+5}", "{value:16777217}"] {
            assert!(Template::parse(bad.as_bytes().to_vec()).is_err(), "{bad}");
        }
        assert!(Template::parse(b"{value:16777216}".to_vec()).is_ok());
    }

    #[test]
    fn rendering_a_large_value_into_a_grown_buffer_allocates_nothing() {
        let t = Template::parse_resp(b"SET key:{conn}:{seq} {value:65536}").unwrap();
        let mut out = Vec::with_capacity(t.max_len());
        let capacity = out.capacity();
        for seq in 0..200 {
            out.clear();
            t.render_into(&Fields { conn: u64::MAX, seq: u64::MAX - seq, worker: 0 }, &mut out);
        }
        assert_eq!(out.capacity(), capacity);
    }

    proptest::proptest! {
        /// Whatever the arguments and fields, the RESP decoder reads the rendered
        /// command as exactly one complete array: the lengths add up.
        #[test]
        fn a_rendered_resp_command_is_one_whole_resp_array(
            args in proptest::collection::vec(
                proptest::sample::select(vec!["SET", "k{conn}", "{seq}", "v{rand:5}", "{value:33}", "x{worker}y", "\"a b\"", "\"\""]),
                1..7,
            ),
            conn in proptest::prelude::any::<u64>(),
            seq in proptest::prelude::any::<u64>(),
        ) {
            let t = Template::parse_resp(args.join(" ").as_bytes()).unwrap();
            let mut out = Vec::new();
            t.render_into(&Fields { conn, seq, worker: 3 }, &mut out);
            proptest::prop_assert!(out.len() <= t.max_len());
            let framing = crate::framing::Framing::Resp;
            // Decoded as a reply, an array of bulk strings has the same shape as a command.
            let step = crate::framing::Decoder::default().feed(&framing, &out, b"", usize::MAX).unwrap();
            let whole = matches!(step, crate::framing::Step::Complete { consumed, .. } if consumed == out.len());
            proptest::prop_assert!(whole, "{}", out.escape_ascii());
        }
    }
}
