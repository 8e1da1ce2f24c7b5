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
    text: Vec<u8>,
    parts: Vec<Part>,
}

impl Template {
    /// Parses already-unescaped bytes (see [`unescape`]).
    pub fn parse(text: Vec<u8>) -> Result<Template, String> {
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
        Ok(Template { text, parts })
    }

    /// A template of fixed bytes (a message file, random bytes): no fields.
    pub fn raw(bytes: Vec<u8>) -> Template {
        let parts = if bytes.is_empty() { Vec::new() } else { vec![Part::Literal(0, bytes.len())] };
        Template { text: bytes, parts }
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
                    let mut x = splitmix64(fields.conn ^ splitmix64(fields.seq ^ splitmix64(index as u64)));
                    for _ in 0..*n {
                        out.push(b'0' + (x % 10) as u8);
                        x = splitmix64(x);
                    }
                }
            }
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
            })
            .sum()
    }
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

/// A fast, well-mixed 64-bit hash (splitmix64's finaliser).
fn splitmix64(mut x: u64) -> u64 {
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
}
