//! Every framing fed arbitrary bytes, split at an arbitrary point: errors are fine,
//! panics and unbounded buffering are not.
#![no_main]
use libfuzzer_sys::fuzz_target;
use loadmux::framing::{Decoder, Framing, Step};

const SPECS: [&str; 8] = ["echo", "line", "delim:\\r\\n\\r\\n", "bytes:7", "len:u16be", "len:u32be", "len:u32le", "http"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let framing = Framing::parse(SPECS[usize::from(selector) % SPECS.len()]).unwrap();
    let cut = usize::from(selector).min(rest.len());
    let mut decoder = Decoder::default();
    for part in [&rest[..cut], &rest[cut..]] {
        let mut input = part;
        while !input.is_empty() {
            match decoder.feed(&framing, input, b"hello\n", 4096) {
                Ok(Step::NeedMore) | Err(_) => break,
                Ok(Step::Complete { consumed, .. }) => input = &input[consumed..],
            }
        }
    }
    let _ = decoder.on_eof(&framing);
});
