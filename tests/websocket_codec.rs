//! The sans-IO WebSocket codec (`loadmux::session::websocket`) against Debian's
//! python3-websockets, over a plain blocking socket: the codec is not wired into the
//! connection state machine yet, so this drives it by hand.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Child;
use std::time::{Duration, Instant};

use loadmux::session::websocket::{
    encode_close, encode_frame, ClientHandshake, Event, FrameDecoder, MessageKind, Opcode,
};

/// The python3-websockets server of `tests/data/ws_server.py`, killed by pid on drop.
struct WsServer {
    addr: SocketAddr,
    child: Child,
}

impl Drop for WsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl WsServer {
    /// Starts the server in `mode`, or says loudly why not (and fails under CI).
    fn start(mode: &str) -> Option<WsServer> {
        let (child, _, addr) = common::ws_server::start(mode)?;
        Some(WsServer { addr, child })
    }
}

/// One client connection driven by the codec.
struct Client {
    socket: TcpStream,
    decoder: FrameDecoder,
    rng: fastrand::Rng,
    /// Bytes read but not yet decoded.
    pending: Vec<u8>,
    pongs_sent: usize,
}

const MAX_MESSAGE: u64 = 1 << 24;

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let mut socket = TcpStream::connect(addr).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rng = fastrand::Rng::new();
        let handshake = ClientHandshake::new(&mut rng, &[]);
        let mut request = Vec::new();
        handshake.write_request(&addr.to_string(), "/", &[], &mut request);
        socket.write_all(&request).unwrap();
        let mut received = Vec::new();
        let upgraded = loop {
            let mut buf = [0u8; 4096];
            let n = socket.read(&mut buf).unwrap();
            assert!(n > 0, "the server closed during the handshake");
            received.extend_from_slice(&buf[..n]);
            if let Some(upgraded) = handshake.check_response(&received).unwrap() {
                break upgraded;
            }
        };
        let pending = received.split_off(upgraded.consumed);
        Client { socket, decoder: FrameDecoder::default(), rng, pending, pongs_sent: 0 }
    }

    fn send(&mut self, kind: Opcode, payload: &[u8]) {
        let mut frame = Vec::new();
        encode_frame(kind, true, payload, &mut self.rng, &mut frame);
        self.socket.write_all(&frame).unwrap();
    }

    /// Reads until a whole message or a close arrives, answering pings with pongs.
    /// `Err(code)` for a close.
    fn receive(&mut self) -> Result<(MessageKind, Vec<u8>), Option<u16>> {
        let mut message = Vec::new();
        loop {
            let mut at = 0;
            while at < self.pending.len() {
                let (used, event) = self.decoder.feed(&self.pending[at..], MAX_MESSAGE).expect("valid frames");
                at += used;
                match event {
                    None | Some(Event::Pong) => {}
                    Some(Event::Data { kind, bytes, end }) => {
                        message.extend_from_slice(bytes);
                        if end {
                            self.pending.drain(..at);
                            return Ok((kind, message));
                        }
                    }
                    Some(Event::Ping(payload)) => {
                        let mut pong = Vec::new();
                        encode_frame(Opcode::Pong, true, payload.as_bytes(), &mut self.rng, &mut pong);
                        self.socket.write_all(&pong).unwrap();
                        self.pongs_sent += 1;
                    }
                    Some(Event::Close { code }) => {
                        let mut close = Vec::new();
                        encode_close(code.unwrap_or(1000), &mut self.rng, &mut close);
                        let _ = self.socket.write_all(&close);
                        return Err(code);
                    }
                }
            }
            self.pending.clear();
            let mut buf = [0u8; 16384];
            let n = self.socket.read(&mut buf).expect("read");
            assert!(n > 0, "the server closed without a close frame");
            self.pending.extend_from_slice(&buf[..n]);
        }
    }
}

/// Messages of many sizes: empty, small, each length form (7-bit, 16-bit, 64-bit).
fn payloads() -> Vec<Vec<u8>> {
    [0usize, 1, 5, 125, 126, 127, 1000, 65535, 65536, 200_000]
        .iter()
        .map(|&n| (0..n).map(|i| b"abcdefghijklmnopqrstuvwxyz"[i % 26]).collect())
        .collect()
}

fn echo_every_size(mode: &str) {
    let Some(server) = WsServer::start(mode) else { return };
    let mut client = Client::connect(server.addr);
    for payload in payloads() {
        client.send(Opcode::Text, &payload);
        assert_eq!(client.receive(), Ok((MessageKind::Text, payload.clone())), "{mode}, {} bytes", payload.len());
        client.send(Opcode::Binary, &payload);
        assert_eq!(client.receive(), Ok((MessageKind::Binary, payload.clone())), "{mode}, {} bytes", payload.len());
    }
}

#[test]
fn python_websockets_echoes_masked_frames_of_every_length_form() {
    echo_every_size("echo");
}

#[test]
fn messages_the_server_fragments_into_3_frames_are_reassembled() {
    echo_every_size("fragment");
}

#[test]
fn server_pings_are_answered_so_the_server_keeps_the_connection() {
    let Some(server) = WsServer::start("ping") else { return };
    let mut client = Client::connect(server.addr);
    // The server pings every 100 ms and drops a client whose pong is 500 ms late:
    // after 1.5 s of echoes the connection is alive only if the pongs were right.
    let start = Instant::now();
    let mut echoes = 0;
    while start.elapsed() < Duration::from_millis(1500) {
        client.send(Opcode::Text, b"still there?");
        assert_eq!(client.receive(), Ok((MessageKind::Text, b"still there?".to_vec())));
        echoes += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(client.pongs_sent >= 5, "{} pongs in 1.5 s of 100 ms pings", client.pongs_sent);
    assert!(echoes > 10);
}

#[test]
fn a_server_close_1001_is_reported_with_its_code() {
    let Some(server) = WsServer::start("close") else { return };
    let mut client = Client::connect(server.addr);
    client.send(Opcode::Text, b"bye");
    assert_eq!(client.receive(), Ok((MessageKind::Text, b"bye".to_vec())));
    assert_eq!(client.receive(), Err(Some(1001)));
}
