//! Fault-injection hooks for the tests that prove a panicking thread cannot hang a
//! run or lose its report.
//!
//! They exist only when loadmux is built with the `fault-injection` cargo feature
//! (`cargo test --features fault-injection`, as `scripts/test.sh` does). In every
//! other build each hook is an empty function and the environment is never read.
//!
//! `LOADMUX_FAULT=panic-worker:I` makes load worker `I` panic as it starts, and
//! `panic-server:I` does the same to built-in server thread `I`. A third field,
//! `panic-worker:I:MS`, delays the panic by MS milliseconds, so that the other
//! threads have measured something by then.

/// Called by load worker `index` before its event loop starts.
pub fn worker_started(index: usize) {
    maybe_panic("panic-worker", index);
}

/// Called by built-in server thread `index` before its event loop starts.
pub fn server_started(index: usize) {
    maybe_panic("panic-server", index);
}

#[cfg(feature = "fault-injection")]
fn maybe_panic(kind: &str, index: usize) {
    let Ok(fault) = std::env::var("LOADMUX_FAULT") else { return };
    let mut parts = fault.split(':');
    if parts.next() != Some(kind) || parts.next().and_then(|i| i.parse::<usize>().ok()) != Some(index) {
        return;
    }
    if let Some(ms) = parts.next().and_then(|ms| ms.parse::<u64>().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    panic!("LOADMUX_FAULT={fault}: panicking on purpose");
}

#[cfg(not(feature = "fault-injection"))]
fn maybe_panic(_kind: &str, _index: usize) {}
