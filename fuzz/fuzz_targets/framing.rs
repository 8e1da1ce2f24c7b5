//! Every framing, chosen by the first byte: the quick all-in-one run. The per-framing
//! targets (`framing_*`) give the fuzzer a steadier signal for one framing.
#![no_main]
use libfuzzer_sys::fuzz_target;
use loadmux::framing::Framing;

#[path = "split_oracle.rs"]
mod split_oracle;

const SPECS: [&str; 10] =
    ["echo", "line", "delim:\\r\\n\\r\\n", "bytes:7", "len:u16be", "len:u32be", "len:u32le", "http", "resp", "memcache"];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let framing = Framing::parse(SPECS[usize::from(selector) % SPECS.len()]).expect("the specs are valid");
    split_oracle::check(&framing, rest);
});
