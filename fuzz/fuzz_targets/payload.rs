//! Message escapes and templates from arbitrary text, plain and as `--resp` commands
//! (the first byte chooses).
#![no_main]
use libfuzzer_sys::fuzz_target;
use loadmux::payload::{unescape, Fields, Template};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(bytes) = unescape(text) {
        let parsed = if mode % 2 == 0 { Template::parse(bytes) } else { Template::parse_resp(&bytes) };
        if let Ok(template) = parsed {
            let mut out = Vec::new();
            template.render_into(&Fields { conn: u64::MAX, seq: u64::MAX, worker: 3 }, &mut out);
            assert!(out.len() <= template.max_len());
        }
    }
});
