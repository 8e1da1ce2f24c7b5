//! `len:u16be|u32be|u32le`: prefixes split across reads, bodies over the limit.
#![no_main]
use libfuzzer_sys::fuzz_target;
use loadmux::framing::Framing;

#[path = "split_oracle.rs"]
mod split_oracle;

use loadmux::framing::LenPrefix;

const KINDS: [LenPrefix; 3] = [LenPrefix::U16Be, LenPrefix::U32Be, LenPrefix::U32Le];

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    split_oracle::check(&Framing::Len(KINDS[usize::from(which) % KINDS.len()]), rest);
});
