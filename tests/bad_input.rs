//! Every bad input: one line on stderr, exit code 2, nothing run, never a panic.

mod common;

use common::loadmux;

fn assert_usage_error(args: &[&str], needle: &str) {
    let out = loadmux().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?} must print one line, got: {stderr}");
    assert!(stderr.contains(needle), "{args:?}: expected '{needle}' in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing is run: {}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    assert_usage_error(&["run", "--frobnicate"], "--frobnicate");
}

#[test]
fn an_unknown_subcommand_is_a_usage_error() {
    assert_usage_error(&["explode"], "explode");
}

#[test]
fn a_bad_duration_is_a_usage_error() {
    assert_usage_error(&["run", "127.0.0.1:1", "-d", "soon"], "not a duration");
    assert_usage_error(&["run", "127.0.0.1:1", "-d", "0s"], "--duration");
    assert_usage_error(&["run", "127.0.0.1:1", "--timeout", "-1"], "-1");
    assert_usage_error(&["run", "127.0.0.1:1", "--timeout=-1"], "out of range");
}

#[test]
fn zero_connections_is_a_usage_error() {
    assert_usage_error(&["run", "127.0.0.1:1", "-c", "0"], "-c/--connections");
    assert_usage_error(&["run", "127.0.0.1:1", "-c", "many"], "many");
    assert_usage_error(&["run", "127.0.0.1:1", "-t", "0"], "-t/--threads");
    assert_usage_error(&["run", "127.0.0.1:1", "-n", "0"], "-n/--requests");
}

#[test]
fn an_unresolvable_host_is_a_usage_error() {
    assert_usage_error(&["run", "no-such-host.invalid:80"], "cannot resolve host");
}

#[test]
fn a_bad_port_is_a_usage_error() {
    assert_usage_error(&["run", "127.0.0.1:70000"], "out of range");
    assert_usage_error(&["run", "127.0.0.1"], "needs a port");
    assert_usage_error(&["run", "127.0.0.1:http"], "not a port");
}

#[test]
fn a_bad_message_or_framing_is_a_usage_error() {
    assert_usage_error(&["run", "127.0.0.1:1", "-m", "bad\\q"], "unknown escape");
    assert_usage_error(&["run", "127.0.0.1:1", "--expect", "telepathy"], "--expect");
    assert_usage_error(&["run", "127.0.0.1:1", "--reconnect-backoff", "2s..1s"], "--reconnect-backoff");
    assert_usage_error(&["run", "127.0.0.1:1", "--max-response", "0"], "--max-response");
    assert_usage_error(&["run", "127.0.0.1:1", "--max-response", "lots"], "lots");
}

#[test]
fn more_connections_than_file_descriptors_fails_up_front() {
    // Far above any hard limit this machine allows.
    assert_usage_error(&["run", "127.0.0.1:1", "-c", "50000000"], "file descriptors");
}

#[test]
fn an_unwritable_json_path_fails_before_the_run() {
    assert_usage_error(&["run", "127.0.0.1:1", "--json", "/nonexistent-dir/r.json"], "/nonexistent-dir");
}

#[test]
fn help_and_version_exit_zero() {
    let help = loadmux().args(["run", "--help"]).output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--connections"));
    let version = loadmux().arg("--version").output().unwrap();
    assert_eq!(version.status.code(), Some(0));
}
