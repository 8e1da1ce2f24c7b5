//! Process exit codes. They are part of the interface (scripts and CI depend on them)
//! and are documented in the README.

/// The run completed (errors counted in the report do not change this).
pub const OK: i32 = 0;
/// A `--assert` threshold failed.
pub const THRESHOLD_FAILED: i32 = 1;
/// A usage or configuration error: nothing was run.
pub const USAGE: i32 = 2;
/// A worker thread (or the built-in server) panicked. The run was stopped at once
/// and the report of what was measured was still printed and written, with a
/// warning naming the thread.
pub const THREAD_PANICKED: i32 = 3;
/// Stopped by SIGINT (128 + 2), after printing and writing the report.
pub const SIGINT: i32 = 130;
/// Stopped by SIGTERM (128 + 15), after printing and writing the report.
pub const SIGTERM: i32 = 143;
