//! `--metrics-listen`: a small HTTP/1.1 server that answers Prometheus scrapes,
//! on its own thread with its own `mio::Poll`, never on a worker.
//!
//! It is built so that no client can slow the run or grow memory:
//! - one request per connection (`Connection: close`), served in turn by one loop;
//! - at most [`MAX_SCRAPES`] connections at once: a connection beyond that is
//!   accepted and closed at once, so the backlog cannot fill;
//! - a request buffer of [`REQUEST_LIMIT`] bytes: a longer head gets 431;
//! - a response that is a copy of the page rendered last (a few KiB);
//! - [`SCRAPE_TIMEOUT`] per connection from accept to the last byte written: a
//!   client that trickles bytes, or never reads, is dropped when it expires.
//!
//! The loop follows mio's `tcp_server` example: one `match` on the token, read
//! until `WouldBlock`, write until done or `WouldBlock`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

/// Most scrape connections served at once.
pub const MAX_SCRAPES: usize = 16;
/// Longest request head accepted, in bytes.
pub const REQUEST_LIMIT: usize = 8 * 1024;
/// Time a connection may take, from accept to the last byte of the answer.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// Tokens above any slab key (the slab never holds more than `MAX_SCRAPES`).
const LISTENER: Token = Token(usize::MAX - 1);
const STOP: Token = Token(usize::MAX - 2);

/// The page `/metrics` answers: the last exposition rendered, replaced whole.
#[derive(Debug, Default)]
pub struct MetricsPage(Mutex<String>);

impl MetricsPage {
    /// Replaces the page with `text`, handing the old page's buffer back in `text`
    /// (so the renderer reuses it instead of allocating each second).
    pub fn swap(&self, text: &mut String) {
        // A poisoned lock means the server thread panicked while copying the page:
        // the text itself is still whole, so go on using it.
        let mut page = self.0.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut *page, text);
    }

    /// A copy of the page as it is now.
    fn copy(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).as_bytes().to_vec()
    }
}

/// A bound, not yet serving, metrics listener: binding first lets a bad address
/// or a busy port fail before the run starts.
pub struct MetricsServer {
    listener: TcpListener,
    addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port).
    pub fn bind(addr: SocketAddr) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        Ok(MetricsServer { listener, addr })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts serving `page` on a thread of its own.
    pub fn spawn(mut self, page: Arc<MetricsPage>) -> io::Result<MetricsServerHandle> {
        let poll = Poll::new()?;
        poll.registry().register(&mut self.listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), STOP)?);
        let stop = Arc::new(AtomicBool::new(false));
        let mut server = Server { poll, listener: self.listener, scrapes: Slab::with_capacity(MAX_SCRAPES), page };
        let stop_flag = stop.clone();
        let thread = thread::Builder::new().name("loadmux-metrics".into()).spawn(move || {
            if let Err(e) = server.serve(&stop_flag) {
                eprintln!("loadmux: the metrics server stopped: {e}");
            }
        })?;
        Ok(MetricsServerHandle { waker, stop, thread })
    }
}

/// The running metrics server.
pub struct MetricsServerHandle {
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<()>,
}

impl MetricsServerHandle {
    /// Stops serving and waits for the thread (at most one poll: the waker ends it).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
        let _ = self.thread.join();
    }
}

/// The server thread's state.
struct Server {
    poll: Poll,
    listener: TcpListener,
    scrapes: Slab<Scrape>,
    page: Arc<MetricsPage>,
}

/// One scrape connection.
struct Scrape {
    stream: TcpStream,
    /// When it is dropped whatever its state.
    deadline: Instant,
    state: ScrapeState,
}

/// Where a scrape connection is in its one request.
enum ScrapeState {
    /// Reading the request head into a fixed buffer.
    Reading { head: Box<[u8; REQUEST_LIMIT]>, filled: usize },
    /// Writing the answer.
    Writing { answer: Vec<u8>, written: usize },
}

/// What a handler wants done with its connection.
enum Next {
    /// Wait for the next event.
    Wait,
    /// Close it and forget it.
    Close,
}

impl Server {
    /// The loop: sleeps until a connection, a readiness event, the nearest
    /// deadline or the stop.
    fn serve(&mut self, stop: &AtomicBool) -> io::Result<()> {
        let mut events = Events::with_capacity(64);
        while !stop.load(Ordering::Relaxed) {
            // Scanning at most MAX_SCRAPES deadlines is cheaper than a timer structure.
            let now = Instant::now();
            let timeout = self.scrapes.iter().map(|(_, s)| s.deadline.saturating_duration_since(now)).min();
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                // A signal interrupted the wait: just wait again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    STOP => {}
                    Token(key) => {
                        let Some(scrape) = self.scrapes.get_mut(key) else { continue };
                        let mut next = Next::Wait;
                        if event.is_readable() || event.is_read_closed() {
                            next = scrape.readable(&self.page);
                        }
                        if matches!(next, Next::Wait) && event.is_writable() {
                            next = scrape.writable();
                        }
                        if matches!(next, Next::Close) {
                            self.close(key);
                        }
                    }
                }
            }
            let now = Instant::now();
            let expired: Vec<usize> =
                self.scrapes.iter().filter(|(_, s)| s.deadline <= now).map(|(key, _)| key).collect();
            for key in expired {
                log::debug!("metrics: a scrape connection timed out");
                self.close(key);
            }
        }
        Ok(())
    }

    /// Accepts every pending connection (the listener is edge-triggered, so until
    /// `WouldBlock`). Beyond `MAX_SCRAPES` a connection is closed at once.
    fn accept_all(&mut self) {
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(accepted) => accepted,
                // No more pending connections: back to polling.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // A signal interrupted accept: try again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of descriptors, or the connection died in the backlog: leave
                // the rest for the next wake-up rather than spin.
                Err(e) => {
                    log::debug!("metrics: accept failed: {e}");
                    return;
                }
            };
            if self.scrapes.len() >= MAX_SCRAPES {
                log::debug!("metrics: {MAX_SCRAPES} scrapes already open: closing a new one");
                continue; // dropping `stream` closes it
            }
            let entry = self.scrapes.vacant_entry();
            let token = Token(entry.key());
            if let Err(e) = self.poll.registry().register(&mut stream, token, Interest::READABLE | Interest::WRITABLE) {
                log::debug!("metrics: cannot register a connection: {e}");
                continue;
            }
            entry.insert(Scrape {
                stream,
                deadline: Instant::now() + SCRAPE_TIMEOUT,
                state: ScrapeState::Reading { head: Box::new([0; REQUEST_LIMIT]), filled: 0 },
            });
        }
    }

    fn close(&mut self, key: usize) {
        let mut scrape = self.scrapes.remove(key);
        let _ = self.poll.registry().deregister(&mut scrape.stream);
    }
}

impl Scrape {
    /// Reads the request head until `WouldBlock`; once it is whole, prepares the
    /// answer and starts writing it.
    fn readable(&mut self, page: &MetricsPage) -> Next {
        let ScrapeState::Reading { head, filled } = &mut self.state else {
            // The request is in; anything more the client sends is ignored.
            return Next::Wait;
        };
        // A client may send its request and close its side at once (`nc`, HTTP/1.0
        // tools): the request is still answered if it is whole.
        let mut client_closed = false;
        loop {
            if *filled == REQUEST_LIMIT {
                return self.answer(status(431, "Request Header Fields Too Large"));
            }
            match self.stream.read(&mut head[*filled..]) {
                // The client closed its side: what it sent is all there will be.
                Ok(0) => {
                    client_closed = true;
                    break;
                }
                Ok(n) => *filled += n,
                // All read for now: see below whether the head is whole.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // A signal interrupted the read: try again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Reset or another socket error: nobody to answer.
                Err(_) => return Next::Close,
            }
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        let answer = match request.parse(&head[..*filled]) {
            // The client closed before its request was whole: nobody to answer.
            Ok(httparse::Status::Partial) if client_closed => return Next::Close,
            Ok(httparse::Status::Partial) => return Next::Wait,
            Ok(httparse::Status::Complete(_)) => route(request.method, request.path, page),
            Err(_) => status(400, "Bad Request"),
        };
        self.answer(answer)
    }

    /// Switches to writing `answer` and writes what the socket takes now.
    fn answer(&mut self, answer: Vec<u8>) -> Next {
        self.state = ScrapeState::Writing { answer, written: 0 };
        self.writable()
    }

    /// Writes the answer until it is all written or the socket is full.
    fn writable(&mut self) -> Next {
        let ScrapeState::Writing { answer, written } = &mut self.state else {
            // Still reading: writable events before the answer mean nothing.
            return Next::Wait;
        };
        while *written < answer.len() {
            match self.stream.write(&answer[*written..]) {
                // The socket accepted nothing: the peer is gone.
                Ok(0) => return Next::Close,
                Ok(n) => *written += n,
                // The send buffer is full: wait for the next writable event.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
                // A signal interrupted the write: try again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Reset, broken pipe: nobody to answer.
                Err(_) => return Next::Close,
            }
        }
        // All written: say so with a FIN, then close (Connection: close).
        let _ = self.stream.shutdown(Shutdown::Write);
        Next::Close
    }
}

/// The answer to one request: the page for GET (or HEAD) /metrics, 404 for
/// another path, 405 for another method.
fn route(method: Option<&str>, path: Option<&str>, page: &MetricsPage) -> Vec<u8> {
    let path = path.unwrap_or("");
    let path = path.split('?').next().unwrap_or(path);
    let head_only = match method {
        Some("GET") => false,
        Some("HEAD") => true,
        _ => return status(405, "Method Not Allowed"),
    };
    if path != "/metrics" {
        return status(404, "Not Found");
    }
    let body = page.copy();
    let mut answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        answer.extend_from_slice(&body);
    }
    answer
}

/// A short error answer with its status line as the body.
fn status(code: u16, reason: &str) -> Vec<u8> {
    let body = format!("{code} {reason}\n");
    let allow = if code == 405 { "Allow: GET, HEAD\r\n" } else { "" };
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\n{allow}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn serve(text: &str) -> (SocketAddr, MetricsServerHandle) {
        let page = Arc::new(MetricsPage::default());
        page.swap(&mut text.to_string());
        let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = server.local_addr();
        (addr, server.spawn(page).unwrap())
    }

    fn ask(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(request).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn get_metrics_answers_the_page_and_other_requests_get_their_status() {
        let (addr, handle) = serve("loadmux_requests_total 7\n");
        let ok = ask(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("text/plain; version=0.0.4"), "{ok}");
        assert!(ok.ends_with("\r\n\r\nloadmux_requests_total 7\n"), "{ok}");
        assert!(ask(addr, b"GET /other HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        assert!(ask(addr, b"POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
        assert!(ask(addr, b"\x00\x01garbage\r\n\r\n").starts_with("HTTP/1.1 400 "));
        let head = ask(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200 OK") && head.ends_with("\r\n\r\n"), "{head}");
        handle.stop();
    }

    #[test]
    fn a_client_that_closes_its_side_after_the_request_still_gets_the_answer() {
        let (addr, handle) = serve("x 1\n");
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("x 1\n"), "{answer}");
        handle.stop();
    }

    #[test]
    fn a_head_longer_than_the_limit_gets_431_and_a_trickler_does_not_block_others() {
        let (addr, handle) = serve("x 1\n");
        // A client that sends half a request and then nothing holds one slot only.
        let mut trickler = std::net::TcpStream::connect(addr).unwrap();
        trickler.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
        // Exactly the limit, so that nothing is left unread when the server closes
        // (unread bytes would turn its close into a reset that hides the answer).
        let mut huge = b"GET /metrics HTTP/1.1\r\nX-Big: ".to_vec();
        huge.resize(REQUEST_LIMIT, b'a');
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.write_all(&huge).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 431 "), "{}", String::from_utf8_lossy(&answer));
        assert!(ask(addr, b"GET /metrics HTTP/1.1\r\n\r\n").ends_with("x 1\n"));
        drop(trickler);
        handle.stop();
    }

    #[test]
    fn connections_beyond_the_cap_are_closed_at_once() {
        let (addr, handle) = serve("x 1\n");
        let idle: Vec<_> = (0..MAX_SCRAPES).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
        // Give the server time to accept the idle ones.
        thread::sleep(Duration::from_millis(200));
        let mut extra = std::net::TcpStream::connect(addr).unwrap();
        extra.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 16];
        // Closed without an answer: EOF or a reset, and well before the timeout.
        let started = Instant::now();
        let read = extra.read(&mut buf);
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert!(started.elapsed() < SCRAPE_TIMEOUT);
        drop(idle);
        handle.stop();
    }
}
