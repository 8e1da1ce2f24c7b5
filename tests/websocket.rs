//! `loadmux run` over WebSocket (ws://, wss://, --ws) against implementations we did
//! not write: Debian's python3-websockets (`tests/data/ws_server.py`, in the mode
//! each test needs) and websocketd; and against loadmux's own `serve --mode ws`
//! for wss:// and stream mode. Each server is started by the test on a free port.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{count, run_report, Serve};
use serde_json::Value;

/// A server child process, killed by pid on drop.
struct Peer {
    addr: SocketAddr,
    child: Child,
    /// The rest of its stdout (the headers mode prints a line per upgrade).
    stdout: Option<BufReader<ChildStdout>>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peer {
    /// `tests/data/ws_server.py MODE`, or None after saying loudly why not (a
    /// failure under CI).
    fn python(mode: &str) -> Option<Peer> {
        let (child, stdout, addr) = common::ws_server::start(mode)?;
        Some(Peer { addr, child, stdout: Some(stdout) })
    }

    /// `websocketd --port P cat`: each message becomes a line on cat's stdin, and
    /// each line cat writes back becomes a message. websocketd cannot report the
    /// port it bound, so a free one is picked and the start is retried if another
    /// process took it first.
    fn websocketd() -> Option<Peer> {
        let binary = common::real_servers::require("websocketd")?;
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut child = Command::new(&binary)
                .args(["--address", "127.0.0.1", "--port", &port.to_string(), "cat"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn websocketd");
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // It could not bind: try another port.
                }
                if TcpStream::connect(addr).is_ok() {
                    return Some(Peer { addr, child, stdout: None });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("websocketd did not start on any of 5 free ports");
    }

    /// The next line the server printed after its port.
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.as_mut().expect("a python server").read_line(&mut line).unwrap();
        line
    }
}

fn errors(report: &Value) -> u64 {
    count(report, "/errors/total")
}

fn error(report: &Value, kind: &str) -> u64 {
    count(report, &format!("/errors/by_kind/{kind}"))
}

#[test]
fn echo_with_expect_ws_completes_messages_with_zero_errors() {
    let Some(server) = Peer::python("echo") else { return };
    let url = format!("ws://{}/chat", server.addr);
    let r = run_report(&[&url, "-c", "8", "-t", "1", "-d", "1", "-m", "hello {seq}", "--expect", "ws"]);
    assert_eq!(errors(&r), 0, "{}", r["errors"]);
    let completed = count(&r, "/requests/completed");
    assert!(completed > 100, "only {completed} messages echoed");
    assert_eq!(count(&r, "/websocket/messages_received"), completed, "each response is one message");
    // Every connection upgraded once, and the upgrade was timed.
    assert_eq!(count(&r, "/websocket/upgrade_latency_us/count"), count(&r, "/connections/established"));
    assert!(count(&r, "/websocket/upgrade_latency_us/max") > 0);
}

#[test]
fn binary_frames_echo_and_the_payload_is_compared() {
    let Some(server) = Peer::python("echo") else { return };
    let target = server.addr.to_string();
    // --ws after the target, default path; --expect echo compares each payload.
    let r = run_report(&[&target, "--ws", "--ws-binary", "-c", "2", "-n", "200", "-m", "bin\\x00\\xff{seq}"]);
    assert_eq!((errors(&r), count(&r, "/requests/completed")), (0, 200), "{}", r["errors"]);
}

#[test]
fn messages_the_server_fragments_into_three_frames_are_reassembled() {
    let Some(server) = Peer::python("fragment") else { return };
    let url = format!("ws://{}/", server.addr);
    for expect in ["ws", "echo"] {
        let r =
            run_report(&[&url, "-c", "4", "-n", "400", "-m", "a message in three frames {seq}", "--expect", expect]);
        assert_eq!(errors(&r), 0, "--expect {expect}: {}", r["errors"]);
        assert_eq!(count(&r, "/requests/completed"), 400, "--expect {expect}: one response per message, not per frame");
        assert_eq!(count(&r, "/websocket/messages_received"), 400, "--expect {expect}");
    }
}

#[test]
fn server_pings_are_answered_and_never_counted_as_responses() {
    let Some(server) = Peer::python("ping") else { return };
    let url = format!("ws://{}/", server.addr);
    // Slow open loop: the 100 ms pings arrive while no response is due, so a ping
    // taken for a response would be a protocol error, and a missing pong would make
    // the server close the connection (1011 after 500 ms), then we would reconnect.
    let r = run_report(&[&url, "-c", "2", "-d", "2", "-r", "10", "--expect", "ws"]);
    assert_eq!(errors(&r), 0, "{}", r["errors"]);
    assert_eq!(count(&r, "/connections/attempted"), 2, "no connection was dropped for a missing pong");
    assert_eq!(count(&r, "/requests/completed"), count(&r, "/websocket/messages_received"));
    assert!(r["websocket"]["close_codes"].as_object().unwrap().is_empty(), "{}", r["websocket"]);
}

#[test]
fn a_close_1001_mid_run_counts_eof_and_the_connection_reconnects() {
    let Some(server) = Peer::python("close") else { return };
    let url = format!("ws://{}/", server.addr);
    let r = run_report(&[&url, "-c", "1", "-d", "1", "--expect", "ws", "--reconnect-backoff", "10ms"]);
    let closes = count(&r, "/websocket/close_codes/1001");
    assert!(closes >= 2, "closes: {}", r["websocket"]);
    // The next request leaves as soon as the echo is in, so each close finds a
    // response due: eof, then a new connection.
    assert!(error(&r, "eof") >= 1, "{}", r["errors"]);
    assert!(count(&r, "/connections/established") >= 2, "{}", r["connections"]);
    // One echo per connection; the last connection's may still be due when the run
    // ends.
    let (completed, established) = (count(&r, "/requests/completed"), count(&r, "/connections/established"));
    assert!((established - 1..=established).contains(&completed), "{completed} echoes, {established} connections");
}

#[test]
fn a_message_over_max_response_is_a_protocol_error() {
    let Some(server) = Peer::python("echo") else { return };
    let url = format!("ws://{}/", server.addr);
    let big = "x".repeat(300);
    let r = run_report(&[
        &url,
        "-c",
        "1",
        "-d",
        "1",
        "-m",
        &big,
        "--expect",
        "ws",
        "--max-response",
        "200",
        "--no-reconnect",
    ]);
    assert_eq!(error(&r, "protocol"), 1, "{}", r["errors"]);
    assert_eq!(count(&r, "/requests/completed"), 0);
}

#[test]
fn websocketd_echoes_lines_as_messages() {
    let Some(server) = Peer::websocketd() else { return };
    let url = format!("ws://{}/", server.addr);
    // websocketd starts a `cat` per connection: few connections.
    let r = run_report(&[&url, "-c", "2", "-n", "200", "-m", "hello {seq}", "--expect", "echo"]);
    assert_eq!((errors(&r), count(&r, "/requests/completed")), (0, 200), "{}", r["errors"]);
}

#[test]
fn wss_against_the_built_in_tls_ws_server() {
    let server = Serve::start_tls(&["--mode", "ws"]);
    let url = format!("wss://localhost:{}/", server.addr.port());
    let ca = server.ca.as_ref().unwrap().to_str().unwrap().to_string();
    let r = run_report(&[&url, "--cacert", &ca, "-c", "4", "-n", "400", "-m", "over tls {seq}", "--expect", "ws"]);
    assert_eq!((errors(&r), count(&r, "/requests/completed")), (0, 400), "{}", r["errors"]);
    assert_eq!(count(&r, "/tls/handshake_latency_us/count"), 4);
    assert_eq!(count(&r, "/websocket/upgrade_latency_us/count"), 4);
}

#[test]
fn the_subprotocol_path_and_extra_headers_reach_the_server() {
    let Some(mut server) = Peer::python("headers") else { return };
    let target = server.addr.to_string();
    let r = run_report(&[
        &target,
        "--ws=/room/7",
        "--ws-protocol",
        "superchat",
        "--ws-protocol",
        "chat",
        "-H",
        "X-Test: abc 123",
        "-c",
        "1",
        "-n",
        "5",
    ]);
    assert_eq!((errors(&r), count(&r, "/requests/completed")), (0, 5), "{}", r["errors"]);
    assert_eq!(server.line().trim(), "upgrade path=/room/7 protocol=chat x-test=abc 123");
}

#[test]
fn a_refused_upgrade_is_a_protocol_error() {
    // The built-in HTTP server answers the upgrade request with 200 OK, not 101.
    let server = Serve::start(&["--mode", "http"]);
    let out = common::loadmux()
        .args(["run", &server.target, "--ws", "-c", "2", "-d", "1", "--no-reconnect", "-q", "--json", "-"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error(&r, "protocol"), 2, "{}", r["errors"]);
    assert_eq!((count(&r, "/connections/established"), count(&r, "/connections/failed")), (0, 2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("WebSocket upgrade refused with HTTP 200"), "the status is logged: {stderr}");
}

#[test]
fn stream_mode_sends_frames_and_counts_messages_both_ways() {
    let server = Serve::start(&["--mode", "ws"]);
    let url = format!("ws://{}/", server.target);
    let r = run_report(&[&url, "--mode", "stream", "-c", "2", "-d", "1", "-m", "stream me"]);
    assert_eq!(errors(&r), 0, "{}", r["errors"]);
    let sent = count(&r, "/requests/sent");
    let received = count(&r, "/websocket/messages_received");
    assert!(sent > 1000 && received > 1000, "sent {sent}, received {received}");
    assert!(received <= sent, "the echo cannot return more messages than were sent");
    // The echo server counts each whole message it received: at least as many as
    // came back, at most as many as were sent.
    let counters = server.stop();
    let echoed: u64 = counters
        .split(", ")
        .find_map(|part| part.strip_suffix(" WebSocket messages"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no message count in {counters:?}"));
    assert!((received..=sent).contains(&echoed), "sent {sent}, server {echoed}, received {received}");
}

#[test]
fn recv_mode_counts_pushed_messages() {
    let Some(server) = Peer::python("push") else { return };
    let url = format!("ws://{}/", server.addr);
    let r = run_report(&[&url, "--mode", "recv", "-c", "2", "-d", "1"]);
    assert_eq!(errors(&r), 0, "{}", r["errors"]);
    // 100 ticks a second per connection; a loaded machine may deliver fewer.
    let received = count(&r, "/websocket/messages_received");
    assert!(received >= 40, "only {received} pushed messages counted");
    assert_eq!(count(&r, "/requests/sent"), 0);
}

#[test]
fn ws_flags_without_a_websocket_session_are_refused() {
    for args in
        [&["127.0.0.1:9", "-H", "X-A: 1"][..], &["127.0.0.1:9", "--expect", "ws"], &["127.0.0.1:9", "--ws", "x"]]
    {
        let out = common::loadmux().arg("run").args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
}
