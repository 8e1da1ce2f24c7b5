//! `delim:STR` with delimiters that overlap themselves or each other's prefixes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use loadmux::framing::Framing;

#[path = "split_oracle.rs"]
mod split_oracle;

const DELIMITERS: [&[u8]; 3] = [b"\r\n\r\n", b"aab", b"ENDEND"];

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let framing = Framing::Delim(DELIMITERS[usize::from(which) % DELIMITERS.len()].to_vec());
    split_oracle::check(&framing, rest);
});
