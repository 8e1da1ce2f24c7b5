//! `resp`: replies split anywhere (seed with real resp replies: see docs/protocols.md).
#![no_main]
use libfuzzer_sys::fuzz_target;
use loadmux::framing::Framing;

#[path = "split_oracle.rs"]
mod split_oracle;

fuzz_target!(|data: &[u8]| split_oracle::check(&Framing::Resp, data));
