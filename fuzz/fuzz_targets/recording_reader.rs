//! The recording reader behind `loadmux replay-info` and `run --replay`: any bytes give
//! a recording or an error, never a panic; what it accepts describes without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(recording) = loadmux::replay::Recording::parse(data) {
        let _ = recording.describe(3);
        assert!(recording.request_bytes() <= data.len());
    }
});
