//! Message escapes and templates from arbitrary text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use loadmux::payload::{unescape, Fields, Template};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(bytes) = unescape(text) {
        if let Ok(template) = Template::parse(bytes) {
            let mut out = Vec::new();
            template.render_into(&Fields { conn: u64::MAX, seq: u64::MAX, worker: 3 }, &mut out);
            assert!(out.len() <= template.max_len());
        }
    }
});
