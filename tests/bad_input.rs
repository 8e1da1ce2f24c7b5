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
    assert_usage_error(&["run", "127.0.0.1:1", "--timeout=-1"], "not a duration");
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

/// A small valid recording: one session, one step.
fn valid_recording() -> Vec<u8> {
    use loadmux::replay::format::{Kind, RecordWriter};
    use std::time::Duration;
    let mut w = RecordWriter::new(Vec::new()).unwrap();
    w.write(Kind::Open, 0, Duration::ZERO, &[]).unwrap();
    w.write(Kind::Client, 0, Duration::from_millis(1), b"PING\r\n").unwrap();
    w.write(Kind::Server, 0, Duration::from_millis(1), b"+PONG\r\n").unwrap();
    w.finish().unwrap()
}

#[test]
fn a_truncated_foreign_or_newer_recording_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.lmxrec");
    let p = path.to_str().unwrap();
    let good = valid_recording();
    std::fs::write(&path, &good).unwrap();
    let out = loadmux().args(["replay-info", p]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("1 sessions, 1 steps, 6 request bytes, 7 answer bytes"));

    std::fs::write(&path, &good[..good.len() - 3]).unwrap();
    assert_usage_error(&["replay-info", p], "truncated");
    std::fs::write(&path, b"{\"tool\":\"loadmux\",\"schema\":1}").unwrap();
    assert_usage_error(&["replay-info", p], "not a loadmux recording");
    let mut newer = good.clone();
    newer[8] = 9;
    std::fs::write(&path, &newer).unwrap();
    assert_usage_error(&["replay-info", p], "version 9 is newer");
    assert_usage_error(&["replay-info", "/nonexistent/r.lmxrec"], "cannot read");
}

#[test]
fn record_with_a_bad_upstream_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.lmxrec");
    let o = out.to_str().unwrap();
    assert_usage_error(&["record", "--listen", "127.0.0.1:0", "--upstream", "nohostport", "-o", o], "--upstream");
    assert_usage_error(
        &["record", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1", "-o", "/nonexistent/x"],
        "cannot create",
    );
    assert!(!out.exists());
}

#[test]
fn replay_flags_that_do_not_fit_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.lmxrec");
    std::fs::write(&path, valid_recording()).unwrap();
    let p = path.to_str().unwrap();
    assert_usage_error(&["run", "127.0.0.1:1", "--expect", "replay"], "needs --replay");
    assert_usage_error(&["run", "127.0.0.1:1", "--replay", p, "--mode", "stream"], "request mode");
    assert_usage_error(&["run", "127.0.0.1:1", "--replay", p, "--expect", "echo"], "--expect echo");
    assert_usage_error(&["run", "127.0.0.1:1", "--replay", p, "--replay-speed=-1"], "--replay-speed");
    assert_usage_error(&["run", "127.0.0.1:1", "--replay", p, "-m", "PING"], "--replay");
    assert_usage_error(&["run", "127.0.0.1:1", "--replay", p, "--max-response", "4"], "above --max-response");
    assert_usage_error(&["run", "127.0.0.1:1", "--replay-speed", "2"], "--replay");
    std::fs::write(&path, &valid_recording()[..20]).unwrap();
    assert_usage_error(&["run", "127.0.0.1:1", "--replay", p], "truncated");
}
