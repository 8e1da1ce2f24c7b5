//! The WebSocket codec against RFC 6455's own examples, every split of a frame stream,
//! and generated fragmented messages.

use super::encode::encode_with_mask;
use super::*;
use proptest::prelude::*;

/// A server frame (unmasked): `first` is the FIN bit and opcode byte.
fn server_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// What a stream said, with messages reassembled: the decoder's events, owned.
#[derive(Debug, PartialEq, Eq)]
enum Said {
    Message(MessageKind, Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    Close(Option<u16>),
}

/// Feeds `reads` in order; returns what was said, then the error if any.
fn decode(reads: &[&[u8]], max: u64) -> (Vec<Said>, Option<WsError>) {
    let mut decoder = FrameDecoder::default();
    let mut said = Vec::new();
    let mut message = Vec::new();
    for read in reads {
        let mut input = *read;
        while !input.is_empty() {
            let (used, event) = match decoder.feed(input, max) {
                Ok(step) => step,
                Err(e) => return (said, Some(e)),
            };
            assert!(used > 0 || event.is_some(), "a call must make progress");
            input = &input[used..];
            match event {
                None => {}
                Some(Event::Data { kind, bytes, end }) => {
                    message.extend_from_slice(bytes);
                    if end {
                        said.push(Said::Message(kind, std::mem::take(&mut message)));
                    }
                }
                Some(Event::Ping(p)) => said.push(Said::Ping(p.as_bytes().to_vec())),
                Some(Event::Pong) => said.push(Said::Pong),
                Some(Event::Close { code }) => said.push(Said::Close(code)),
            }
        }
    }
    (said, None)
}

fn assert_every_split_decodes_alike(stream: &[u8], max: u64) {
    let whole = decode(&[stream], max);
    for at in 0..=stream.len() {
        assert_eq!(decode(&[&stream[..at], &stream[at..]], max), whole, "split at {at}");
    }
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(decode(&bytes, max), whole, "byte by byte");
}

#[test]
fn the_accept_key_is_the_rfc_example() {
    // RFC 6455 section 1.3.
    assert_eq!(accept_for("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn each_handshake_has_its_own_random_key_and_a_complete_request() {
    let mut rng = fastrand::Rng::with_seed(7);
    let a = ClientHandshake::new(&mut rng, &["chat"]);
    let b = ClientHandshake::new(&mut rng, &[]);
    assert_ne!(a.key(), b.key());
    assert_eq!(a.key().len(), 24, "base64 of 16 bytes");
    let mut out = Vec::new();
    a.write_request("example.com:80", "/chat", &[("Origin", "http://x")], &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("GET /chat HTTP/1.1\r\nHost: example.com:80\r\n"), "{text}");
    for line in [
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: chat",
        "Origin: http://x",
    ] {
        assert!(text.contains(&format!("{line}\r\n")), "{line} missing: {text}");
    }
    assert!(text.contains(&format!("Sec-WebSocket-Key: {}\r\n", a.key())));
    assert!(text.ends_with("\r\n\r\n"));
}

fn answer(handshake: &ClientHandshake, extra: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n{extra}\r\n",
        accept_for(handshake.key())
    )
}

#[test]
fn a_101_with_the_right_accept_upgrades_and_leaves_the_frames_that_follow() {
    let handshake = ClientHandshake::new(&mut fastrand::Rng::with_seed(1), &["chat"]);
    let head = answer(&handshake, "Sec-WebSocket-Protocol: chat\r\n");
    let received = [head.as_bytes(), &server_frame(0x81, b"hi")].concat();
    for cut in 0..head.len() {
        assert_eq!(handshake.check_response(&received[..cut]), Ok(None), "incomplete at {cut}");
    }
    let upgraded = handshake.check_response(&received).unwrap().unwrap();
    assert_eq!(upgraded, Upgraded { consumed: head.len(), protocol: Some("chat".into()) });
    assert_eq!(decode(&[&received[upgraded.consumed..]], 100).0, [Said::Message(MessageKind::Text, b"hi".to_vec())]);
}

#[test]
fn a_refused_or_wrong_upgrade_says_why() {
    let handshake = ClientHandshake::new(&mut fastrand::Rng::with_seed(2), &[]);
    let check = |text: &str| handshake.check_response(text.as_bytes());
    assert_eq!(
        check("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"),
        Err(HandshakeError::NotUpgraded { status: 403 })
    );
    let wrong = "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    assert_eq!(check(wrong), Err(HandshakeError::BadAccept));
    let no_upgrade = answer(&handshake, "").replace("Upgrade: websocket\r\n", "");
    assert!(matches!(check(&no_upgrade), Err(HandshakeError::BadHeader(_))));
    assert!(matches!(
        check(&answer(&handshake, "Sec-WebSocket-Protocol: chat\r\n")),
        Err(HandshakeError::BadHeader(_))
    ));
    assert!(matches!(
        check(&answer(&handshake, "Sec-WebSocket-Extensions: permessage-deflate\r\n")),
        Err(HandshakeError::BadHeader(_))
    ));
    assert!(matches!(check("SSH-2.0-OpenSSH\r\n\r\n"), Err(HandshakeError::Malformed(_))));
    let endless = format!("HTTP/1.1 101 OK\r\nX: {}", "a".repeat(MAX_HANDSHAKE_RESPONSE));
    assert!(matches!(check(&endless), Err(HandshakeError::Malformed(_))), "a head that never ends is bounded");
}

#[test]
fn client_frames_are_masked_as_in_the_rfc_example() {
    // RFC 6455 section 5.7: a masked "Hello".
    let mut out = Vec::new();
    encode_with_mask(Opcode::Text, true, b"Hello", [0x37, 0xfa, 0x21, 0x3d], &mut out);
    assert_eq!(out, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
}

#[test]
fn every_frame_draws_a_fresh_mask_and_long_lengths_use_the_extended_forms() {
    let mut rng = fastrand::Rng::with_seed(3);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    encode_frame(Opcode::Binary, true, b"same", &mut rng, &mut a);
    encode_frame(Opcode::Binary, true, b"same", &mut rng, &mut b);
    assert_ne!(a[2..6], b[2..6], "two frames, two masks");
    for (len, header) in [(125usize, 2 + 4), (126, 4 + 4), (65535, 4 + 4), (65536, 10 + 4)] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut out = Vec::new();
        encode_frame(Opcode::Binary, false, &payload, &mut rng, &mut out);
        assert_eq!(out.len(), header + len, "{len}");
        assert_eq!(out[0], 0x02, "not final, binary");
        assert_eq!(out[1] & 0x80, 0x80, "masked");
        let mask: [u8; 4] = out[header - 4..header].try_into().unwrap();
        let unmasked: Vec<u8> = out[header..].iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
        assert_eq!(unmasked, payload, "{len}");
    }
    let mut close = Vec::new();
    encode_close(1000, &mut rng, &mut close);
    assert_eq!((close[0], close[1]), (0x88, 0x82));
}

#[test]
fn the_rfc_examples_decode_split_anywhere() {
    // RFC 6455 section 5.7: a text frame, a fragmented text message, a ping, and
    // 256-byte and 64 KiB binary frames.
    let stream = [
        &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f][..],
        &[0x01, 0x03, 0x48, 0x65, 0x6c],
        &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f], // a ping between the fragments
        &[0x80, 0x02, 0x6c, 0x6f],
        &server_frame(0x82, &[7; 256]),
        &[0x8A, 0x00],
        &server_frame(0x88, &1001u16.to_be_bytes()),
    ]
    .concat();
    let (said, error) = decode(&[&stream], 1 << 20);
    assert_eq!(error, None);
    assert_eq!(
        said,
        [
            Said::Message(MessageKind::Text, b"Hello".to_vec()),
            Said::Ping(b"Hello".to_vec()),
            Said::Message(MessageKind::Text, b"Hello".to_vec()),
            Said::Message(MessageKind::Binary, vec![7; 256]),
            Said::Pong,
            Said::Close(Some(1001)),
        ]
    );
    assert_every_split_decodes_alike(&stream, 1 << 20);
    let big = server_frame(0x82, &vec![1; 65536]);
    assert_eq!(&big[..10], &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(decode(&[&big[..5], &big[5..]], 1 << 20).0, [Said::Message(MessageKind::Binary, vec![1; 65536])]);
}

#[test]
fn data_is_lent_from_the_input_not_copied() {
    let frame = server_frame(0x82, b"abcdef");
    let mut decoder = FrameDecoder::default();
    let (used, event) = decoder.feed(&frame, 100).unwrap();
    assert_eq!((used, event), (2, None), "the header");
    let (_, event) = decoder.feed(&frame[2..], 100).unwrap();
    let Some(Event::Data { bytes, end: true, .. }) = event else { panic!("{event:?}") };
    assert_eq!(bytes.as_ptr(), frame[2..].as_ptr(), "the same memory");
}

#[test]
fn the_limit_is_on_the_message_not_the_frame() {
    let fragments =
        [server_frame(0x01, &[b'a'; 10]), server_frame(0x00, &[b'b'; 10]), server_frame(0x80, &[b'c'; 10])].concat();
    assert_eq!(decode(&[&fragments], 30).1, None);
    let (said, error) = decode(&[&fragments], 25);
    assert!(said.is_empty());
    assert!(error.unwrap().0.contains("over --max-response"), "refused at the third frame's header");
    let huge = [0x82, 0x7F, 0, 0, 0, 1, 0, 0, 0, 0]; // 4 GiB announced
    assert!(decode(&[&huge], 1 << 20).1.is_some(), "refused before any payload");
}

#[test]
fn frames_that_break_the_rfc_are_errors() {
    for (bad, why) in [
        (vec![0x81, 0x85, 1, 2, 3, 4, 0, 0, 0, 0, 0], "masked"),
        (vec![0xC1, 0x00], "reserved bits"),
        (vec![0x83, 0x00], "reserved opcode"),
        (vec![0x80, 0x00], "continuation outside a message"),
        ([server_frame(0x01, b"a"), server_frame(0x81, b"b")].concat(), "a new message inside one"),
        (vec![0x09, 0x00], "a control frame that is not final"),
        (server_frame(0x89, &[0; 126]), "a control frame over 125 bytes"),
        (vec![0x88, 0x01, 0x03], "a 1-byte close payload"),
        (vec![0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0], "a 64-bit length with the top bit"),
    ] {
        assert!(decode(&[&bad], 1 << 20).1.is_some(), "{why}");
        let split: Vec<&[u8]> = bad.chunks(1).collect();
        assert!(decode(&split, 1 << 20).1.is_some(), "{why}, byte by byte");
    }
}

proptest! {
    /// Messages of any size, cut into any number of frames with pings between them,
    /// and the stream cut into reads anywhere: the same messages and pings come out.
    #[test]
    fn fragmented_messages_with_pings_split_anywhere_reassemble(
        messages in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300), 1usize..4), 1..5),
        cuts in proptest::collection::vec(0usize..4000, 0..6),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (i, (text, payload, frames)) in messages.iter().enumerate() {
            let kind = if *text { MessageKind::Text } else { MessageKind::Binary };
            let piece = payload.len().div_ceil(*frames).max(1);
            let chunks: Vec<&[u8]> = if payload.is_empty() { vec![&[]] } else { payload.chunks(piece).collect() };
            for (j, chunk) in chunks.iter().enumerate() {
                let opcode = if j > 0 { 0x0 } else if *text { 0x1 } else { 0x2 };
                let fin = if j + 1 == chunks.len() { 0x80 } else { 0 };
                stream.extend(server_frame(fin | opcode, chunk));
                if j == 0 && chunks.len() > 1 {
                    stream.extend(server_frame(0x89, &[i as u8; 3]));
                    expected.push(Said::Ping(vec![i as u8; 3]));
                }
            }
            expected.push(Said::Message(kind, payload.clone()));
        }
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        points.sort();
        let mut reads = Vec::new();
        let mut last = 0;
        for p in points {
            reads.push(&stream[last..p]);
            last = p;
        }
        reads.push(&stream[last..]);
        prop_assert_eq!(decode(&reads, 1 << 20), (expected, None));
    }

    /// Arbitrary bytes: events or an error, never a panic, and the same whole or split.
    #[test]
    fn arbitrary_bytes_never_panic_and_split_alike(bytes in proptest::collection::vec(any::<u8>(), 0..200), cut in 0usize..200) {
        let cut = cut.min(bytes.len());
        let whole = decode(&[&bytes], 1000);
        let split = decode(&[&bytes[..cut], &bytes[cut..]], 1000);
        prop_assert_eq!(whole.0, split.0);
        prop_assert_eq!(whole.1.is_some(), split.1.is_some());
    }
}
