//! The HTTP server's request side: pipelined HTTP/1.1 requests parsed with `httparse`,
//! each answered `200 OK` with a small body.

use std::io;

use super::ServerCounters;

/// Longest request head accepted; a longer one gets 431 and the connection closes.
const MAX_HEAD: usize = 64 * 1024;

/// Per-connection request parsing.
#[derive(Debug)]
pub struct HttpRequests {
    /// A request head split across reads (empty otherwise).
    partial: Vec<u8>,
    /// Request body bytes still to skip (Content-Length).
    skip: usize,
    /// The response body.
    body: Vec<u8>,
    /// The client asked to close (or spoke HTTP/1.0): close once answered.
    pub closing: bool,
}

impl HttpRequests {
    /// A parser answering with `body_size`-byte bodies.
    pub fn new(body_size: usize) -> Self {
        let mut body = vec![b'x'; body_size.saturating_sub(1)];
        if body_size > 0 {
            body.push(b'\n');
        }
        HttpRequests { partial: Vec::new(), skip: 0, body, closing: false }
    }

    /// Parses `input`, appending a response to `out` for each complete request.
    /// Requests after one that asked to close are ignored.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>, counters: &mut ServerCounters) -> io::Result<()> {
        while !input.is_empty() && !self.closing {
            if self.skip > 0 {
                let n = self.skip.min(input.len());
                self.skip -= n;
                input = &input[n..];
                continue;
            }
            self.partial.extend_from_slice(input);
            input = &[];
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut request = httparse::Request::new(&mut headers);
            let head = match request.parse(&self.partial) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) if self.partial.len() > MAX_HEAD => {
                    self.answer(out, "431 Request Header Fields Too Large", true);
                    return Ok(());
                }
                Ok(httparse::Status::Partial) => return Ok(()),
                Err(_) => {
                    self.answer(out, "400 Bad Request", true);
                    return Ok(());
                }
            };
            let mut close = request.version == Some(0);
            for h in request.headers.iter() {
                let value = String::from_utf8_lossy(h.value).to_ascii_lowercase();
                if h.name.eq_ignore_ascii_case("content-length") {
                    self.skip = value.trim().parse().unwrap_or(0);
                } else if h.name.eq_ignore_ascii_case("connection") {
                    close = value.contains("close") || (close && !value.contains("keep-alive"));
                }
            }
            counters.requests += 1;
            self.answer(out, "200 OK", close);
            // What followed the head: a body to skip, then the next request.
            let rest = self.partial.split_off(head);
            self.partial.clear();
            if !rest.is_empty() {
                self.feed(&rest, out, counters)?;
            }
        }
        if self.partial.is_empty() {
            self.partial = Vec::new(); // Give the memory back between requests.
        }
        Ok(())
    }

    fn answer(&mut self, out: &mut Vec<u8>, status: &str, close: bool) {
        let connection = if close { "close" } else { "keep-alive" };
        out.extend_from_slice(
            format!("HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n", self.body.len())
                .as_bytes(),
        );
        out.extend_from_slice(&self.body);
        self.closing = close;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn responses(out: &[u8]) -> usize {
        memchr::memmem::find_iter(out, b"HTTP/1.1 200 OK").count()
    }

    #[test]
    fn pipelined_requests_each_get_an_answer_in_order() {
        let mut p = HttpRequests::new(6);
        let mut out = Vec::new();
        let mut c = ServerCounters::default();
        p.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n", &mut out, &mut c).unwrap();
        assert_eq!((responses(&out), c.requests), (2, 2));
        assert!(!p.closing);
    }

    #[test]
    fn a_request_split_across_reads_is_answered_once_whole() {
        let mut p = HttpRequests::new(6);
        let mut out = Vec::new();
        let mut c = ServerCounters::default();
        let req = b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n";
        for byte in req.chunks(1) {
            p.feed(byte, &mut out, &mut c).unwrap();
        }
        assert_eq!(responses(&out), 2, "the body is skipped, not parsed as a request");
    }

    #[test]
    fn connection_close_and_bad_requests_close_after_the_answer() {
        let mut p = HttpRequests::new(1);
        let mut out = Vec::new();
        let mut c = ServerCounters::default();
        p.feed(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n", &mut out, &mut c).unwrap();
        assert!(p.closing);
        assert_eq!(responses(&out), 1, "nothing is answered after close");
        let mut bad = HttpRequests::new(1);
        let mut out = Vec::new();
        bad.feed(b"\x00\x01garbage\r\n\r\n", &mut out, &mut c).unwrap();
        assert!(bad.closing && out.starts_with(b"HTTP/1.1 400"));
    }
}
