//! [`WsStream`] over a scripted transport: the server's bytes arrive in chunks of
//! every size, and the socket takes only so many bytes per write.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use super::*;
use crate::session::websocket::{accept_for, frame_in_place, WsPlace};
use crate::testing::Scripted;

fn settings(protocols: &[&str]) -> WsSettings {
    WsSettings {
        places: vec![WsPlace { host: "h:1".into(), path: "/p".into() }],
        headers: vec![("X-A".into(), "1".into())],
        protocols: protocols.iter().map(|p| p.to_string()).collect(),
        binary: false,
    }
}

/// An unmasked server frame.
fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    assert!(payload.len() < 126);
    out.push(payload.len() as u8);
    out.extend_from_slice(payload);
    out
}

/// The key in the Upgrade request the stream wrote.
fn key_of(request: &[u8]) -> String {
    let text = String::from_utf8_lossy(request);
    let line = text.lines().find(|l| l.starts_with("Sec-WebSocket-Key: ")).expect("a key");
    line["Sec-WebSocket-Key: ".len()..].to_string()
}

/// Client frames written after the request: (opcode, unmasked payload).
fn client_frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let len = usize::from(bytes[1] & 0x7F);
        assert!(len < 126 && bytes[1] & 0x80 != 0, "small masked frames only here");
        let mask = &bytes[2..6];
        let payload = bytes[6..6 + len].iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
        frames.push((bytes[0] & 0x0F, payload));
        bytes = &bytes[6 + len..];
    }
    frames
}

/// What one session saw: messages (by read, up to each message end), the frames it
/// wrote after the request, and its close code.
type Seen = (Vec<Vec<u8>>, Vec<(u8, Vec<u8>)>, Option<u16>);

/// The upgrade and a frame stream, arriving `chunk` bytes at a time (with a
/// WouldBlock between chunks if `pauses`).
fn session(chunk: usize, read_buf: usize, pauses: bool) -> Seen {
    let mut scripted = Scripted::new(chunk);
    scripted.pauses = pauses;
    let mut ws = WsStream::new(scripted, &settings(&["chat"]), 0, 1 << 20);
    // The request goes out at the first step; the answer is not there yet.
    assert!(!ws.open_session().unwrap());
    let request_len = ws.inner().written.borrow().len();
    let key = key_of(&ws.inner().written.borrow());
    let mut server = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
        accept_for(&key)
    )
    .into_bytes();
    // Frames right behind the 101: a message in three frames (the last one empty, as
    // python3-websockets sends), a ping between its fragments, a one-frame binary
    // message, then close 1001.
    server.extend(server_frame(0x01, b"hello "));
    server.extend(server_frame(0x89, b"are you there"));
    server.extend(server_frame(0x00, b"world"));
    server.extend(server_frame(0x80, b""));
    server.extend(server_frame(0x82, b"\x00\x01\x02"));
    server.extend(server_frame(0x88, &1001u16.to_be_bytes()));
    ws.inner_mut().incoming = server;
    while !ws.open_session().unwrap() {}
    let mut messages = Vec::new();
    let mut current = Vec::new();
    let mut buf = vec![0u8; read_buf];
    loop {
        match ws.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                current.extend_from_slice(&buf[..n]);
                if ws.message_ended() {
                    messages.push(std::mem::take(&mut current));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(current.is_empty(), "no message left half-read: {current:?}");
    let written = client_frames(&ws.inner().written.borrow()[request_len..]);
    (messages, written, ws.close_code())
}

#[test]
fn the_session_reads_alike_split_at_every_byte_and_with_any_read_buffer() {
    let whole = session(usize::MAX, 4096, false);
    assert_eq!(whole.0, vec![b"hello world".to_vec(), b"\x00\x01\x02".to_vec()]);
    assert_eq!(whole.1, vec![(0xA, b"are you there".to_vec()), (0x8, 1001u16.to_be_bytes().to_vec())], "pong, close");
    assert_eq!(whole.2, Some(1001));
    for chunk in 1..200 {
        for pauses in [false, true] {
            assert_eq!(session(chunk, 4096, pauses), whole, "the server's bytes {chunk} at a time, pauses {pauses}");
        }
    }
    for read_buf in 2..16 {
        assert_eq!(session(7, read_buf, true), whole, "reads of {read_buf} bytes");
    }
}

#[test]
fn the_upgrade_request_carries_the_path_host_headers_and_subprotocols() {
    let mut ws = WsStream::new(Scripted::new(1), &settings(&["a", "b"]), 0, 100);
    assert!(!ws.open_session().unwrap());
    let request = String::from_utf8(ws.inner().written.borrow().clone()).unwrap();
    assert!(request.starts_with("GET /p HTTP/1.1\r\nHost: h:1\r\n"), "{request}");
    assert!(request.contains("Sec-WebSocket-Protocol: a, b\r\n") && request.contains("X-A: 1\r\n"), "{request}");
    // A second connection draws a new key.
    let mut other = WsStream::new(Scripted::new(1), &settings(&[]), 0, 100);
    assert!(!other.open_session().unwrap());
    assert_ne!(key_of(&ws.inner().written.borrow()), key_of(&other.inner().written.borrow()));
}

#[test]
fn a_refused_upgrade_is_a_session_error_that_names_the_status() {
    let mut ws = WsStream::new(Scripted::new(5), &settings(&[]), 0, 100);
    assert!(!ws.open_session().unwrap());
    ws.inner_mut().incoming = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec();
    let err = loop {
        match ws.open_session() {
            Ok(false) => continue,
            Ok(true) => panic!("a 404 upgraded"),
            Err(e) => break e,
        }
    };
    assert!(is_session_error(&err));
    assert_eq!(refused_upgrade(&err), Some(&HandshakeError::NotUpgraded { status: 404 }));
}

#[test]
fn a_pong_waits_for_the_end_of_a_data_frame_being_written() {
    let mut ws = WsStream::new(Scripted::new(usize::MAX), &settings(&[]), 0, 100);
    assert!(!ws.open_session().unwrap());
    let key = key_of(&ws.inner().written.borrow());
    let request_len = ws.inner().written.borrow().len();
    let mut answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        accept_for(&key)
    )
    .into_bytes();
    ws.inner_mut().incoming.append(&mut answer);
    assert!(ws.open_session().unwrap());
    // A request frame goes out, but the socket takes only 5 of its bytes.
    let mut frame = b"0123456789".to_vec();
    frame_in_place(Opcode::Text, &mut frame, 0);
    ws.inner_mut().room = 5;
    let done = ws.write(&frame).unwrap();
    assert_eq!(done, 5);
    // A ping arrives meanwhile: its pong must not cut into the frame.
    ws.inner_mut().incoming.extend(server_frame(0x89, b"p"));
    ws.inner_mut().room = usize::MAX;
    let mut buf = [0u8; 64];
    assert!(ws.read(&mut buf).is_err_and(|e| e.kind() == io::ErrorKind::WouldBlock));
    assert_eq!(ws.inner().written.borrow().len(), request_len + 5, "nothing written inside the frame");
    assert!(!ws.wants_write(), "the pong waits for the frame, not for the socket");
    // The rest of the frame goes out, then the pong right behind it.
    assert_eq!(ws.write(&frame[done..]).unwrap(), frame.len() - done);
    let frames = client_frames(&ws.inner().written.borrow()[request_len..]);
    assert_eq!(frames, vec![(0x1, b"0123456789".to_vec()), (0xA, b"p".to_vec())]);
}

#[test]
fn frames_in_place_match_the_encoder_for_every_length_form() {
    for len in [0usize, 1, 125, 126, 65_535, 65_536] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mask = [1, 2, 3, 4];
        let mut expected = b"prefix".to_vec();
        super::super::encode::encode_with_mask(Opcode::Binary, true, &payload, mask, &mut expected);
        let mut in_place = b"prefix".to_vec();
        in_place.extend_from_slice(&payload);
        super::super::encode::frame_in_place_with_mask(Opcode::Binary, &mut in_place, 6, mask);
        assert_eq!(in_place, expected, "payload of {len} bytes");
    }
}

/// An upgraded session, what it writes (readable after it is dropped), and where
/// its frames start.
fn upgraded() -> (WsStream<Scripted>, Rc<RefCell<Vec<u8>>>, usize) {
    let mut ws = WsStream::new(Scripted::new(usize::MAX), &settings(&[]), 0, 100);
    let written = Rc::clone(&ws.inner().written);
    assert!(!ws.open_session().unwrap());
    let key = key_of(&written.borrow());
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        accept_for(&key)
    );
    ws.inner_mut().incoming = answer.into_bytes();
    assert!(ws.open_session().unwrap());
    let start = written.borrow().len();
    (ws, written, start)
}

#[test]
fn an_open_session_dropped_says_close_1000_but_never_inside_a_frame() {
    let (ws, written, start) = upgraded();
    drop(ws);
    assert_eq!(client_frames(&written.borrow()[start..]), vec![(0x8, 1000u16.to_be_bytes().to_vec())]);
    // Half a frame written: a close now would corrupt it, so nothing is added.
    let (mut ws, written, start) = upgraded();
    let mut frame = b"abc".to_vec();
    frame_in_place(Opcode::Text, &mut frame, 0);
    ws.write(&frame[..4]).unwrap();
    drop(ws);
    assert_eq!(written.borrow().len(), start + 4);
}
