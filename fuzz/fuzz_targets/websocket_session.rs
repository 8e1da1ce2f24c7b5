//! The WebSocket session layer (`WsStream`): after a valid `101`, arbitrary server
//! bytes arriving in chunks of a fuzzer-chosen size and read through a buffer of a
//! fuzzer-chosen size must give the same messages, close code and failure as the
//! whole stream read through a large buffer; and never panic.
#![no_main]
use std::io;

use libfuzzer_sys::fuzz_target;
use loadmux::session::websocket::{accept_for, WsPlace, WsSettings, WsStream};
use loadmux::testing::Scripted;
use loadmux::transport::Transport;

/// Messages read (each up to its end), the close code, and whether it failed.
fn session(stream: &[u8], chunk: usize, read_buf: usize) -> (Vec<Vec<u8>>, Option<u16>, bool) {
    let settings = WsSettings {
        places: vec![WsPlace { host: "h:1".into(), path: "/".into() }],
        headers: Vec::new(),
        protocols: Vec::new(),
        binary: false,
    };
    // Every other read is a WouldBlock, and the stream ends after its last byte.
    let mut inner = Scripted::new(chunk);
    inner.pauses = true;
    inner.ends = true;
    let mut ws = WsStream::new(inner, &settings, 0, 4096);
    assert!(!ws.open_session().unwrap());
    let request = String::from_utf8_lossy(&ws.inner().written.borrow()).into_owned();
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
