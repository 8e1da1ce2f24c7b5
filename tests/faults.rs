//! The client against a hostile or broken server: one test per chaos fault. Each
//! fault must be counted under the right name, reconnects must keep the load going,
//! and the run must end on time with a complete report and exit code 0.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// Runs 1.5 s against a chaos server with `faults` and returns the report.
fn against(faults: &[&str], extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--mode", "chaos"];
    args.extend_from_slice(faults);
    let server = Serve::start(&args);
    let started = Instant::now();
    let mut run = vec![server.addr.to_string(), "-c".into(), "4".into(), "-d".into(), "1500ms".into()];
    run.extend(extra.iter().map(|s| s.to_string()));
    let run: Vec<&str> = run.iter().map(String::as_str).collect();
    let report = run_report(&run);
    assert!(started.elapsed() < Duration::from_secs(6), "the run ends on time, whatever the server does");
    assert_schema1(&report);
    report
}

fn errors(report: &serde_json::Value, kind: &str) -> u64 {
    count(report, &format!("/errors/by_kind/{kind}"))
}

#[test]
fn reset_after_some_bytes_counts_reset_and_reconnects() {
    let r = against(&["--reset-after", "60"], &[]);
    assert!(errors(&r, "reset") >= 4, "{r}");
    assert!(count(&r, "/connections/attempted") > 4, "reset connections are reopened");
    assert!(count(&r, "/requests/completed") >= 4 * 9, "9 whole echoes fit in 60 bytes per connection");
}

#[test]
fn close_mid_response_counts_eof() {
    // 6-byte requests, closed after 9 bytes: the second response is cut in half.
    let r = against(&["--close-after", "9"], &[]);
    assert!(errors(&r, "eof") + errors(&r, "reset") >= 4, "{r}");
    assert!(errors(&r, "eof") >= 1, "a FIN while a response is due is eof: {r}");
    assert!(count(&r, "/connections/attempted") > 4);
}

#[test]
fn corrupted_echoes_count_protocol() {
    let r = against(&["--corrupt"], &[]);
    assert!(errors(&r, "protocol") >= 4, "{r}");
    assert_eq!(count(&r, "/requests/completed"), 0, "a corrupted echo never completes");
}

#[test]
fn a_dripping_server_slower_than_the_timeout_counts_response_timeout() {
    // One byte every 100 ms: a 6-byte echo takes 600 ms, the timeout is 300 ms.
    let r = against(&["--drip", "100ms"], &["--timeout", "300ms"]);
    assert!(errors(&r, "response_timeout") >= 4, "{r}");
}

#[test]
fn a_dripping_server_within_the_timeout_still_completes() {
    let r = against(&["--drip", "10ms"], &[]);
    assert_eq!(count(&r, "/errors/total"), 0, "{r}");
    // 6 bytes, the first at once and one every 10 ms after: at least 50 ms. The
    // histogram keeps 3 significant digits, so near 50 ms a value is reported as the
    // lower edge of its 32 µs bucket (50 010 µs reads 49 984).
    let min = count(&r, "/latency_us/min");
    assert!(min >= 49_950, "6 bytes at 10 ms each, min {min} µs");
}

#[test]
fn a_flood_without_delimiter_is_a_protocol_error_not_unbounded_memory() {
    let r = against(&["--flood"], &["-m", "GET\\n", "--expect", "line"]);
    assert!(errors(&r, "protocol") >= 4, "{r}");
    assert!(count(&r, "/bytes/received") >= 4 << 20, "at least a max-response per connection was read");
}

#[test]
fn max_response_sets_where_a_flood_becomes_a_protocol_error() {
    // 64 KiB instead of 1 MiB: more connections end, sooner, each after less data.
    let r = against(&["--flood"], &["-m", "GET\n", "--expect", "line", "--max-response", "64k"]);
    let protocol = errors(&r, "protocol");
    assert!(protocol >= 8, "{r}");
    assert!(count(&r, "/bytes/received") < protocol * (1 << 20), "each connection stops long before 1 MiB: {r}");
}

#[test]
fn a_server_that_never_reads_ends_in_response_timeout_not_a_hang() {
    // 4 MiB messages: the write blocks once both socket buffers are full.
    let r = against(&["--no-read"], &["--message-size", "4MiB", "--max-response", "8MiB", "--timeout", "400ms"]);
    assert!(errors(&r, "response_timeout") >= 4, "{r}");
    assert_eq!(count(&r, "/requests/completed"), 0);
}

#[test]
fn a_server_that_never_accepts_gives_timeouts() {
    let r = against(&["--never-accept"], &["--connect-timeout", "300ms", "--timeout", "300ms"]);
    // Some handshakes complete into the backlog (then no answer comes), the rest wait
    // for a SYN-ACK that never arrives.
    let timeouts = errors(&r, "connect_timeout") + errors(&r, "response_timeout");
    assert!(timeouts >= 4, "{r}");
    assert_eq!(count(&r, "/requests/completed"), 0);
}

#[test]
fn a_server_that_accepts_and_closes_counts_eof_or_reset_and_backs_off() {
    let r = against(&["--accept-close"], &[]);
    let closed = errors(&r, "eof") + errors(&r, "reset") + errors(&r, "broken_pipe");
    assert!(closed >= 4, "{r}");
    // Backoff keeps this from becoming a reconnect storm: with 10 ms doubling to 1 s,
    // 4 connections make at most a few dozen attempts in 1.5 s.
    assert!(count(&r, "/connections/attempted") < 100, "{r}");
}

#[test]
fn random_faults_are_each_counted_and_the_load_goes_on() {
    let r = against(&["--fail-rate", "0.2", "--seed", "7"], &[]);
    let faults = errors(&r, "reset") + errors(&r, "eof") + errors(&r, "protocol");
    assert!(faults >= 10, "{r}");
    assert_eq!(count(&r, "/errors/total"), faults + errors(&r, "broken_pipe"), "only the injected kinds: {r}");
    assert!(count(&r, "/requests/completed") > 20, "healthy exchanges between faults: {r}");
}

#[test]
fn under_a_flood_the_clients_memory_stays_bounded() {
    let server = Serve::start(&["--mode", "chaos", "--flood"]);
    let mut child = loadmux()
        .args(["run", &server.addr.to_string(), "-c", "8", "-d", "10s", "-q", "-m", "GET\\n", "--expect", "line"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let rss = |pid: u32| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    std::thread::sleep(Duration::from_secs(1));
    let early = rss(child.id());
    std::thread::sleep(Duration::from_secs(8));
    let late = rss(child.id());
    assert!(child.wait().unwrap().success());
    assert!(early > 0 && late > 0);
    assert!(late <= early + 32 * 1024, "RSS grew from {early} KiB to {late} KiB under a flood");
}
