//! The WebSocket session layer (`WsStream`): after a valid `101`, arbitrary server
//! bytes arriving in chunks of a fuzzer-chosen size and read through a buffer of a
//! fuzzer-chosen size must give the same messages, close code and failure as the
//! whole stream read through a large buffer; and never panic.
#![no_main]
use std::io;

use libfuzzer_sys::fuzz_target;
use loadmux::session::websocket::{accept_for, WsPlace, WsSettings, WsStream};
use loadmux::transport::{Transport, TlsInfo};

/// Hands out `incoming` `chunk` bytes per read, with a WouldBlock between reads.
struct Scripted {
    incoming: Vec<u8>,
    at: usize,
    chunk: usize,
    paused: bool,
    written: Vec<u8>,
}

impl Transport for Scripted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.paused = !self.paused;
        let n = self.chunk.min(buf.len()).min(self.incoming.len() - self.at);
        if self.paused || n == 0 {
            if self.at == self.incoming.len() && !self.paused {
                return Ok(0); // The stream is over: end of stream.
            }
            return Err(io::ErrorKind::WouldBlock.into());
        }
        buf[..n].copy_from_slice(&self.incoming[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<bool> {
        Ok(true)
    }
    fn wants_write(&self) -> bool {
        false
    }
    fn handshake(&mut self) -> io::Result<bool> {
        Ok(true)
    }
    fn drained(&self) -> bool {
        true
    }
    fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(None)
    }
    fn is_connected(&self) -> io::Result<bool> {
        Ok(true)
    }
    fn reset_on_close(&self) -> io::Result<()> {
        Ok(())
    }
    fn tls_info(&self) -> Option<TlsInfo> {
        None
    }
}

/// Messages read (each up to its end), the close code, and whether it failed.
fn session(stream: &[u8], chunk: usize, read_buf: usize) -> (Vec<Vec<u8>>, Option<u16>, bool) {
    let settings = WsSettings {
        places: vec![WsPlace { host: "h:1".into(), path: "/".into() }],
        headers: Vec::new(),
        protocols: Vec::new(),
        binary: false,
    };
    let inner = Scripted { incoming: Vec::new(), at: 0, chunk, paused: false, written: Vec::new() };
    let mut ws = WsStream::new(inner, &settings, 0, 4096);
    assert!(!ws.open_session().unwrap());
    let request = String::from_utf8_lossy(&ws.inner().written).into_owned();
    let key = request.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).unwrap().to_string();
    let mut incoming = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        accept_for(&key)
    )
    .into_bytes();
    incoming.extend_from_slice(stream);
    ws.inner_mut().incoming = incoming;
    while !ws.open_session().unwrap() {}
    let (mut messages, mut current, mut buf) = (Vec::new(), Vec::new(), vec![0u8; read_buf]);
    loop {
        match ws.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                assert!(n <= buf.len());
                current.extend_from_slice(&buf[..n]);
                assert!(current.len() <= 4096, "a message over the limit was handed out");
                if ws.message_ended() {
                    messages.push(std::mem::take(&mut current));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => return (messages, ws.close_code(), true),
        }
    }
    (messages, ws.close_code(), false)
}

fuzz_target!(|data: &[u8]| {
    let [chunk, read_buf, stream @ ..] = data else { return };
    let whole = session(stream, usize::MAX, 8192);
    let split = session(stream, usize::from(*chunk).max(1), usize::from(*read_buf).max(2));
    assert_eq!(split, whole);
});
