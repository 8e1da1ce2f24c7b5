//! The opening handshake (RFC 6455 section 4.1): the client's Upgrade request, and
//! the checks on the server's answer.

use base64::Engine;

/// The GUID every server appends to the key before hashing (RFC 6455 section 1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The longest handshake answer accepted: its head must end within this many bytes.
pub const MAX_HANDSHAKE_RESPONSE: usize = 8 * 1024;

/// The headers parsed from an answer; more is refused.
const MAX_HEADERS: usize = 32;

/// The `Sec-WebSocket-Accept` a server must send for `key`: base64 of the SHA-1 of
/// the key and the GUID.
pub fn accept_for(key: &str) -> String {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(sha1.digest().bytes())
}

/// One connection's handshake: the random key it sent, and what it offered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHandshake {
    /// Base64 of 16 random bytes, fresh per connection.
    key: String,
    /// Subprotocols offered (`Sec-WebSocket-Protocol`), in order of preference.
    protocols: Vec<String>,
}

/// A successful upgrade.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upgraded {
    /// Bytes of the input the answer's head took; what follows is frames.
    pub consumed: usize,
    /// The subprotocol the server chose, if any.
    pub protocol: Option<String>,
}

/// Why the server's answer does not complete the handshake. Each is a `protocol`
/// error for the connection; `NotUpgraded` names the status to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// The answer was not `101 Switching Protocols`.
    NotUpgraded {
        /// The status the server sent instead.
        status: u16,
    },
    /// A header the upgrade needs is missing or wrong.
    BadHeader(&'static str),
    /// `Sec-WebSocket-Accept` does not match the key.
    BadAccept,
    /// The answer is not HTTP, or its head is over [`MAX_HANDSHAKE_RESPONSE`].
    Malformed(String),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::NotUpgraded { status } => write!(f, "WebSocket upgrade refused with HTTP {status}"),
            HandshakeError::BadHeader(what) => write!(f, "WebSocket upgrade: {what}"),
            HandshakeError::BadAccept => f.write_str("WebSocket upgrade: Sec-WebSocket-Accept does not match the key"),
            HandshakeError::Malformed(why) => write!(f, "WebSocket upgrade: {why}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

impl ClientHandshake {
    /// A handshake with a fresh random key, offering `protocols`.
    pub fn new(rng: &mut fastrand::Rng, protocols: &[&str]) -> ClientHandshake {
        let nonce: [u8; 16] = std::array::from_fn(|_| rng.u8(..));
        ClientHandshake {
            key: base64::engine::general_purpose::STANDARD.encode(nonce),
            protocols: protocols.iter().map(|p| p.to_string()).collect(),
        }
    }

    /// The `Sec-WebSocket-Key` sent.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Appends the Upgrade request for `path` on `host` to `out`, with `headers`
    /// (from `-H`) after the ones the handshake needs.
    pub fn write_request(&self, host: &str, path: &str, headers: &[(&str, &str)], out: &mut Vec<u8>) {
        use std::io::Write;
        let _ = write!(
            out,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n",
            self.key
        );
        if !self.protocols.is_empty() {
            let _ = write!(out, "Sec-WebSocket-Protocol: {}\r\n", self.protocols.join(", "));
        }
        for (name, value) in headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Checks the server's answer, given every byte received so far. `Ok(None)`:
    /// the head is not complete yet (keep reading, at most
    /// [`MAX_HANDSHAKE_RESPONSE`] bytes).
    pub fn check_response(&self, received: &[u8]) -> Result<Option<Upgraded>, HandshakeError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let consumed = match response.parse(received) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if received.len() > MAX_HANDSHAKE_RESPONSE => {
                return Err(HandshakeError::Malformed(format!("answer head over {MAX_HANDSHAKE_RESPONSE} bytes")))
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(HandshakeError::Malformed(format!("not an HTTP answer ({e})"))),
        };
        if consumed > MAX_HANDSHAKE_RESPONSE {
            return Err(HandshakeError::Malformed(format!("answer head over {MAX_HANDSHAKE_RESPONSE} bytes")));
        }
        let status = response.code.unwrap_or(0);
        if status != 101 {
            return Err(HandshakeError::NotUpgraded { status });
        }
        let header = |name: &str| {
            response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value))
        };
        let has_token = |name: &str, token: &str| {
            header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        };
        if !has_token("Upgrade", "websocket") {
            return Err(HandshakeError::BadHeader("no 'Upgrade: websocket'"));
        }
        if !has_token("Connection", "upgrade") {
            return Err(HandshakeError::BadHeader("no 'Connection: Upgrade'"));
        }
        if header("Sec-WebSocket-Accept").map(|v| v.trim().to_string()) != Some(accept_for(&self.key)) {
            return Err(HandshakeError::BadAccept);
        }
        if header("Sec-WebSocket-Extensions").is_some() {
            return Err(HandshakeError::BadHeader("an extension the client did not offer"));
        }
        let protocol = header("Sec-WebSocket-Protocol").map(|p| p.trim().to_string());
        if let Some(chosen) = &protocol {
            if !self.protocols.iter().any(|offered| offered == chosen) {
                return Err(HandshakeError::BadHeader("a subprotocol the client did not offer"));
            }
        }
        Ok(Some(Upgraded { consumed, protocol }))
    }
}
