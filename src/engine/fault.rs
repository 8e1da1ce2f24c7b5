//! A fault-injection hook for the tests that prove a panicking worker cannot hang
//! or silently shorten a run.
//!
//! It exists only when loadmux is built with the `fault-injection` cargo feature
//! (`cargo test --features fault-injection`, as `scripts/test.sh` does). In every
//! other build the hook is an empty function, and the environment is never read.
//!
//! `LOADMUX_FAULT=panic-worker:I` makes worker `I` panic as it starts;
//! `LOADMUX_FAULT=panic-worker:I:MS` makes it panic after MS milliseconds, so the
//! other workers have measured something by then.

/// Called by each worker thread before its event loop starts.
#[cfg(feature = "fault-injection")]
pub fn worker_started(index: usize) {
    let Ok(fault) = std::env::var("LOADMUX_FAULT") else { return };
    let mut parts = fault.split(':');
    if parts.next() != Some("panic-worker") || parts.next().and_then(|i| i.parse::<usize>().ok()) != Some(index) {
        return;
    }
    if let Some(ms) = parts.next().and_then(|ms| ms.parse::<u64>().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    panic!("LOADMUX_FAULT={fault}: worker {index} panics on purpose");
}

/// Called by each worker thread before its event loop starts. Without the
/// `fault-injection` feature it does nothing.
#[cfg(not(feature = "fault-injection"))]
pub fn worker_started(_index: usize) {}
