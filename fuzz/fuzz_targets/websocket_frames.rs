//! The WebSocket frame decoder: server frames fed whole and cut at a fuzzer-chosen
//! point must say the same (messages reassembled, pings, closes) and fail alike.
#![no_main]
use libfuzzer_sys::fuzz_target;
use loadmux::session::websocket::{Event, FrameDecoder};

/// Bound on one message, small so the limit paths are reached often.
const MAX: u64 = 4096;

/// Everything said, as owned values (messages reassembled), and whether it failed.
fn decode(reads: &[&[u8]]) -> (Vec<(u8, Vec<u8>)>, bool) {
    let mut decoder = FrameDecoder::default();
    let (mut said, mut message) = (Vec::new(), Vec::new());
    for read in reads {
        let mut input = *read;
        while !input.is_empty() {
            let Ok((used, event)) = decoder.feed(input, MAX) else { return (said, true) };
            assert!(used <= input.len());
            assert!(used > 0 || event.is_some(), "no progress");
            input = &input[used..];
            match event {
                None => {}
                Some(Event::Data { bytes, end, .. }) => {
                    message.extend_from_slice(bytes);
                    assert!(message.len() as u64 <= MAX, "a message over the limit was accepted");
                    if end {
                        said.push((0, std::mem::take(&mut message)));
                    }
                }
                Some(Event::Ping(p)) => said.push((1, p.as_bytes().to_vec())),
                Some(Event::Pong) => said.push((2, Vec::new())),
                Some(Event::Close { code }) => said.push((3, code.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default())),
            }
        }
    }
    (said, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else { return };
    let cut = usize::from(cut) * stream.len() / 255;
    assert_eq!(decode(&[stream]), decode(&[&stream[..cut], &stream[cut..]]), "cut at {cut}");
});
