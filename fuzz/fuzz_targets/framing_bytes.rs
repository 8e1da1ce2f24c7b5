//! `bytes:N` for N from 1 to 256.
#![no_main]
use libfuzzer_sys::fuzz_target;
use loadmux::framing::Framing;

#[path = "split_oracle.rs"]
mod split_oracle;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    split_oracle::check(&Framing::Bytes(usize::from(n) + 1), rest);
});
