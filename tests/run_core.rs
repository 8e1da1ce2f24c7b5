//! `loadmux run` end to end: the real binary against servers on loopback.

mod common;

use common::*;
use std::time::{Duration, Instant};

#[test]
fn a_thousand_connections_complete_echo_requests_without_errors() {
    let server = echo_server();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = loadmux()
        .args(["run", &server.local_addr().to_string(), "-c", "1000", "-t", "2", "-d", "3s", "-q", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report = read_json(&json);
    assert_schema1(&report);
    assert_eq!(count(&report, "/connections/established"), 1000);
    assert_eq!(count(&report, "/connections/max_open"), 1000);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    let completed = count(&report, "/requests/completed");
    assert!(completed > 1000, "every connection should complete requests, got {completed}");
    assert_eq!(count(&report, "/latency_us/count"), completed);
    assert_eq!(count(&report, "/connect_latency_us/count"), 1000);
    // Echo: every byte sent came back, except requests cut off by the end of the run.
    let sent = count(&report, "/bytes/sent");
    let received = count(&report, "/bytes/received");
    assert!(sent - received <= 1000 * 6, "sent {sent}, received {received}");
    assert_eq!(report["duration_s"], 3.0);
    assert_eq!(report["timeline"].as_array().unwrap().len(), 3);
    assert_eq!(server.stop().accepted, 1000, "the server saw every connection");
}

#[test]
fn requests_flag_sends_and_completes_exactly_n() {
    let server = echo_server();
    let out = loadmux()
        .args(["run", &server.local_addr().to_string(), "-c", "20", "-n", "5003", "-d", "20s", "-q", "--json", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON report alone");
    assert_eq!(count(&report, "/requests/sent"), 5003);
    assert_eq!(count(&report, "/requests/completed"), 5003);
    assert_eq!(count(&report, "/latency_us/count"), 5003);
    assert_eq!(report["stopped_by"], "requests_done");
    // The human summary moved to stderr.
    assert!(String::from_utf8_lossy(&out.stderr).contains("completed 5003"));
    let _ = server.stop();
}

#[test]
fn refused_connections_count_connect_refused_and_the_run_still_reports() {
    let closed = closed_port();
    let port = closed.addr;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out =
        loadmux().args(["run", &port.to_string(), "-c", "5", "-d", "1s", "-q", "--json"]).arg(&json).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "errors are counted, not fatal");
    let report = read_json(&json);
    assert_schema1(&report);
    let refused = count(&report, "/errors/by_kind/connect_refused");
    // 5 connections, backing off 10 ms, 20 ms, 40 ms ... for a second: several each.
    assert!(refused >= 15, "refused {refused}");
    assert_eq!(refused, count(&report, "/errors/total"));
    assert_eq!(count(&report, "/connections/failed"), refused);
    assert_eq!(count(&report, "/connections/established"), 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("connect_refused"));
}

#[test]
fn a_server_that_never_answers_gives_response_timeouts() {
    let server = SilentServer::start();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = loadmux()
        .args(["run", &server.addr.to_string(), "-c", "4", "-d", "1500ms", "--timeout", "300ms", "-q", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report = read_json(&json);
    let timeouts = count(&report, "/errors/by_kind/response_timeout");
    // Each connection times out at 300 ms, reconnects after a backoff, times out again.
    assert!(timeouts >= 8, "response_timeout {timeouts}");
    assert_eq!(count(&report, "/requests/completed"), 0);
    assert!(count(&report, "/connections/attempted") >= 8, "timed-out connections are reopened");
}

#[test]
fn a_server_closing_mid_run_causes_eof_errors_and_reconnects() {
    // Echoes 5 requests' worth of bytes per connection, then closes.
    let addr = closing_echo_server(5 * 6);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out =
        loadmux().args(["run", &addr.to_string(), "-c", "4", "-d", "1s", "-q", "--json"]).arg(&json).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report = read_json(&json);
    let eof = count(&report, "/errors/by_kind/eof");
    let attempted = count(&report, "/connections/attempted");
    assert!(eof >= 4, "eof {eof}");
    assert!(attempted > 4, "closed connections are reopened: {attempted} attempts");
    assert!(count(&report, "/requests/completed") >= 5 * 4);
    // A server that closes while our next request sits unread in its socket makes
    // the kernel send RST instead of FIN, so some closes arrive as resets.
    let reset = count(&report, "/errors/by_kind/reset");
    assert_eq!(count(&report, "/errors/total"), eof + reset, "only eof and reset: {report}");
}

#[test]
fn no_reconnect_leaves_failed_connections_closed_and_ends_the_run() {
    let closed = closed_port();
    let port = closed.addr;
    let started = Instant::now();
    let out = loadmux()
        .args(["run", &port.to_string(), "-c", "3", "-d", "10s", "-q", "--no-reconnect", "--json", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(count(&report, "/connections/attempted"), 3);
    assert_eq!(report["stopped_by"], "all_closed");
    assert!(started.elapsed() < Duration::from_secs(5), "the run ends once every connection is closed");
}

#[test]
fn sigint_stops_the_run_and_writes_a_complete_report() {
    let server = echo_server();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut child = loadmux()
        .args(["run", &server.local_addr().to_string(), "-c", "50", "-d", "60s", "-q", "--json"])
        .arg(&json)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let signalled = Instant::now();
    // SAFETY: kill(2) on the pid of the child we just spawned.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let status = child.wait().unwrap();
    assert!(signalled.elapsed() < Duration::from_millis(1500), "stopped in {:?}", signalled.elapsed());
    assert_eq!(status.code(), Some(130));
    let report = read_json(&json);
    assert_schema1(&report);
    assert_eq!(report["stopped_by"], "sigint");
    let secs = report["duration_s"].as_f64().unwrap();
    assert!((1.2..3.0).contains(&secs), "the report covers the time actually run: {secs}");
    assert!(count(&report, "/requests/completed") > 0);
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(stdout.contains("stopped by sigint"), "{stdout}");
    let _ = server.stop();
}

#[test]
fn sigterm_exits_143_with_a_report() {
    let server = echo_server();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut child = loadmux()
        .args(["run", &server.local_addr().to_string(), "-c", "5", "-d", "60s", "-q", "--json"])
        .arg(&json)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: kill(2) on the pid of the child we just spawned.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert_eq!(child.wait().unwrap().code(), Some(143));
    assert_eq!(read_json(&json)["stopped_by"], "sigterm");
    let _ = server.stop();
}

#[test]
fn with_no_target_the_built_in_echo_server_is_loaded() {
    let out = loadmux().args(["run", "-d", "2s", "-c", "10", "--json", "-"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("built-in echo server on 127.0.0.1:"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_schema1(&report);
    assert_eq!(count(&report, "/errors/total"), 0);
    assert!(count(&report, "/requests/completed") > 100);
}

#[test]
fn the_live_line_prints_once_a_second_unless_quiet() {
    let server = echo_server();
    let addr = server.local_addr().to_string();
    let loud = loadmux().args(["run", &addr, "-c", "2", "-d", "2s"]).output().unwrap();
    let lines = String::from_utf8_lossy(&loud.stderr).lines().filter(|l| l.contains("req/s")).count();
    assert_eq!(lines, 2, "{}", String::from_utf8_lossy(&loud.stderr));
    let quiet = loadmux().args(["run", &addr, "-c", "2", "-d", "1s", "-q"]).output().unwrap();
    assert!(quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));
    let _ = server.stop();
}

#[test]
fn debug_logging_names_each_connection_error_with_its_token_and_peer() {
    let closed = closed_port();
    let port = closed.addr;
    let out = loadmux()
        .args(["run", &port.to_string(), "-c", "2", "-d", "300ms", "-q"])
        .env("RUST_LOG", "loadmux=debug")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let log = String::from_utf8_lossy(&out.stderr);
    let line = log.lines().find(|l| l.contains("connect_refused")).unwrap_or_else(|| panic!("no error logged:\n{log}"));
    assert!(line.contains("token ") && line.contains(&format!("peer {port}")), "{line}");
    let quiet = loadmux()
        .args(["run", &port.to_string(), "-c", "2", "-d", "300ms", "-q"])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(quiet.stderr.is_empty(), "no log without RUST_LOG");
}

#[test]
fn on_a_terminal_the_live_line_is_rewritten_in_place() {
    // `script` (util-linux) runs the command on a pseudo-terminal, as a user's shell
    // would; `--progress auto` must then pick the in-place mode.
    let bin = env!("CARGO_BIN_EXE_loadmux");
    let Ok(out) =
        std::process::Command::new("script").args(["-qec", &format!("{bin} run -d 3s -c 2"), "/dev/null"]).output()
    else {
        common::prereq::missing("script (util-linux)", "apt-get install bsdutils");
        return;
    };
    let screen = String::from_utf8_lossy(&out.stdout);
    let updates = screen.matches("\r\x1b[2K[").count();
    assert!(updates >= 2, "one line rewritten each second: {screen:?}");
    // Between two updates there is no newline: it is one line on the screen.
    let first = screen.find("\r\x1b[2K[").unwrap();
    let second = first + 1 + screen[first + 1..].find("\r\x1b[2K[").unwrap();
    assert!(!screen[first..second].contains('\n'), "{screen:?}");
    assert!(screen.contains("errors 0"));
}

#[test]
fn a_run_that_completes_nothing_says_what_the_connections_waited_for() {
    let silent = common::SilentServer::start();
    let refused = common::closed_port();
    let cases: [(&str, &[&str], &str); 3] = [
        (&refused.addr.to_string(), &[], "waiting for a connect"),
        (&silent.addr.to_string(), &["--first-message", "AUTH x\\r\\n"], "waiting for the answer to --first-message"),
        (&silent.addr.to_string(), &[], "waiting for responses"),
    ];
    for (target, extra, expected) in cases {
        let out = loadmux()
            .args(["run", target, "-c", "2", "-d", "0.5", "--timeout", "10s", "-q"])
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let warning: Vec<&str> = stdout.lines().filter(|l| l.trim_start().starts_with("warning")).collect();
        assert_eq!(warning.len(), 1, "one line: {stdout}");
        assert!(warning[0].contains("completed 0 of") && warning[0].contains(expected), "{extra:?}: {stdout}");
    }
    // A healthy run has no such line.
    let server = common::echo_server();
    let out = loadmux().args(["run", &server.local_addr().to_string(), "-c", "2", "-n", "50", "-q"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("warning"), "{}", String::from_utf8_lossy(&out.stdout));
}
