//! The one way a test may give up on a missing prerequisite (a Debian tool, root, a
//! cargo feature). Under CI (`CI` set to anything but `false` or `0`) it panics,
//! naming what is missing: scripts/test.sh provides everything, so a skip there
//! would be a test passing without running. Elsewhere it prints a loud line on
//! stderr and the test returns without asserting.
//!
//! `tests/no_silent_skips.rs` scans every test file: an early `return` must come
//! right after a call into this module (or a helper built on it).

/// True when running under CI, where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Reports that `what` is missing: fails under CI, otherwise prints a loud skip
/// line. The caller returns early after it.
pub fn missing(what: &str, how_to_get_it: &str) {
    if in_ci() {
        panic!("{what} is missing, and under CI=true no test may be skipped ({how_to_get_it})");
    }
    // Written to the stderr handle itself, not through eprintln!, which the test
    // harness captures and hides for a passing test: a skip must be seen.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: {what} is missing ({how_to_get_it}) ***\n");
}
