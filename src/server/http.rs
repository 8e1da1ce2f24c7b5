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
    /// Requests after one that asked to close are ignored. A loop over an offset, not
    /// recursion: a client may pipeline thousands of requests in one read.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, counters: &mut ServerCounters) -> io::Result<()> {
        self.partial.extend_from_slice(input);
        let mut at = 0;
        while at < self.partial.len() && !self.closing {
            if self.skip > 0 {
                let n = self.skip.min(self.partial.len() - at);
                self.skip -= n;
                at += n;
                continue;
            }
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut request = httparse::Request::new(&mut headers);
            let (head, close, skip) = match request.parse(&self.partial[at..]) {
                Ok(httparse::Status::Complete(n)) => {
                    let mut close = request.version == Some(0);
                    let mut skip = 0;
                    for h in request.headers.iter() {
                        let value = String::from_utf8_lossy(h.value).to_ascii_lowercase();
                        if h.name.eq_ignore_ascii_case("content-length") {
                            skip = value.trim().parse().unwrap_or(0);
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            close = value.contains("close") || (close && !value.contains("keep-alive"));
                        }
                    }
                    (n, close, skip)
                }
                Ok(httparse::Status::Partial) if self.partial.len() - at > MAX_HEAD => {
                    self.answer(out, "431 Request Header Fields Too Large", true);
                    break;
                }
                Ok(httparse::Status::Partial) => break,
                Err(_) => {
                    self.answer(out, "400 Bad Request", true);
                    break;
                }
            };
            counters.requests += 1;
            self.answer(out, "200 OK", close);
            self.skip = skip;
            at += head;
        }
        // Keep only an unfinished head; give the memory back between requests.
        if at >= self.partial.len() || self.closing {
            self.partial = Vec::new();
        } else {
            self.partial.drain(..at);
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
    fn thousands_of_pipelined_requests_in_one_read_are_answered_without_recursion() {
        // A recursive parser overflowed the thread's stack at about 1000 (found by
        // review): one client could abort the server.
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let mut p = HttpRequests::new(1);
                let mut out = Vec::new();
                let mut c = ServerCounters::default();
                p.feed(&b"GET / HTTP/1.1\r\n\r\n".repeat(4000), &mut out, &mut c).unwrap();
                (responses(&out), c.requests)
            })
            .unwrap();
        assert_eq!(handle.join().unwrap(), (4000, 4000));
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
