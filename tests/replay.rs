//! `loadmux run --replay`: recordings of real clients (redis-benchmark, curl,
//! python3-websockets), replayed at scale against the real servers they were
//! recorded from, and checked against what those servers counted.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::real_servers::{require, Nginx, Redis};
use common::recorder::{run_bounded, websocket_client, websockets_python, RecordProxy, WebSocketServer};
use common::*;

/// `loadmux run TARGET --replay RECORDING ARGS... -q --json -`: the report.
fn replay(target: &str, recording: &Path, args: &[&str]) -> serde_json::Value {
    run_report(&[&[target, "--replay", recording.to_str().unwrap()], args].concat())
}

/// Records `redis-benchmark -t set,get -n 2000 -c 5` through the proxy into `dir`.
fn record_redis_benchmark(redis: &Redis, dir: &Path) -> Option<PathBuf> {
    let bench = require("redis-benchmark")?;
    let path = dir.join("redis.lmxrec");
    let proxy = RecordProxy::start(&redis.addr.to_string(), &path);
    let port = proxy.addr.port().to_string();
    run_bounded(
        Command::new(bench).args(["-h", "127.0.0.1", "-p", &port, "-t", "set,get", "-n", "2000", "-c", "5", "-q"]),
        Duration::from_secs(60),
    );
    proxy.stop();
    Some(path)
}

/// Commands Redis executed, counting the recording's two pipelined start-up
/// `CONFIG GET`s as the one step they were recorded in: then every step is one.
fn redis_steps_executed(redis: &Redis) -> u64 {
    let stats = redis.cli(&["INFO", "commandstats"]);
    let calls = |name: &str| -> u64 {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:calls=")))
            .and_then(|rest| rest.split(',').next()?.parse().ok())
            .unwrap_or(0)
    };
    calls("set") + calls("get") + calls("config|get") / 2
}

#[test]
fn a_redis_benchmark_recording_replays_on_10x_the_connections_with_no_error() {
    let Some(redis) = Redis::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = record_redis_benchmark(&redis, dir.path()) else { return };
    let before = redis_steps_executed(&redis);
    assert_eq!(before, 4001, "what redis-benchmark itself made redis execute");

    let addr = redis.addr.to_string();
    // --linger0: redis-benchmark's one-step CONFIG session would otherwise leave
    // thousands of TIME_WAIT sockets behind, one per replay of it.
    let report = replay(&addr, &path, &["-c", "50", "-d", "3s", "--linger0"]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    let completed = count(&report, "/requests/completed");
    let sent = count(&report, "/requests/sent");
    assert!(completed > 4001, "the sessions were played more than once: {completed}");
    // Steps still in flight when the run stopped may or may not have reached Redis.
    let grew = redis_steps_executed(&redis) - before;
    assert!(
        (completed..=sent).contains(&grew),
        "redis executed {grew} steps; loadmux completed {completed}, sent {sent}"
    );
}

#[test]
fn a_redis_replay_bounded_by_n_makes_redis_execute_exactly_n_steps() {
    let Some(redis) = Redis::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = record_redis_benchmark(&redis, dir.path()) else { return };
    let before = redis_steps_executed(&redis);
    let addr = redis.addr.to_string();
    let report = replay(&addr, &path, &["-c", "20", "-n", "9000", "-P", "4", "--linger0"]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    assert_eq!(count(&report, "/requests/completed"), 9000);
    assert_eq!(redis_steps_executed(&redis) - before, 9000, "each completed step was executed once");
}

#[test]
fn templated_replay_gives_each_connection_its_own_keys() {
    let Some(redis) = Redis::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("set.lmxrec");
    let proxy = RecordProxy::start(&redis.addr.to_string(), &path);
    // A recorded session whose key carries a {conn} field. An inline command (plain
    // text, which Redis accepts): a RESP bulk string's length prefix would no longer
    // match once the field is filled in.
    let mut client = std::net::TcpStream::connect(proxy.addr).unwrap();
    {
        use std::io::{Read, Write};
        client.write_all(b"SET key:{conn} v\r\n").unwrap();
        let mut ok = [0u8; 5];
        client.read_exact(&mut ok).unwrap();
        assert_eq!(&ok, b"+OK\r\n");
    }
    drop(client);
    proxy.stop();
    let addr = redis.addr.to_string();
    let report = replay(&addr, &path, &["--replay-template", "-c", "12", "-n", "240", "--linger0"]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    // The recorded key, plus one per replaying connection.
    assert_eq!(redis.cli(&["DBSIZE"]).trim(), "13");
    assert_eq!(redis.cli(&["EXISTS", "key:11"]).trim(), "1");
}

#[test]
fn open_loop_paces_the_replayed_steps() {
    let Some(redis) = Redis::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = record_redis_benchmark(&redis, dir.path()) else { return };
    let _serial = timing_sensitive();
    let addr = redis.addr.to_string();
    let report = replay(&addr, &path, &["-c", "10", "-r", "2000", "-d", "2s", "--linger0"]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    let completed = count(&report, "/requests/completed");
    assert!(completed.abs_diff(4000) <= 400, "2000 steps/s for 2 s: {completed}");
}

#[test]
fn recorded_think_time_slows_a_replay_and_speed_0_removes_it() {
    let server = Serve::start(&["--mode", "echo"]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slow.lmxrec");
    let proxy = RecordProxy::start(&server.addr.to_string(), &path);
    // A client that thinks 100 ms between its two requests.
    let mut client = std::net::TcpStream::connect(proxy.addr).unwrap();
    for word in ["one\n", "two\n"] {
        use std::io::{Read, Write};
        std::thread::sleep(Duration::from_millis(100));
        client.write_all(word.as_bytes()).unwrap();
        client.read_exact(&mut [0u8; 4]).unwrap();
    }
    drop(client);
    proxy.stop();
    let _serial = timing_sensitive();
    let addr = server.addr.to_string();
    let steps = |speed: &str| {
        let report = replay(&addr, &path, &["--replay-speed", speed, "-c", "2", "-d", "1s", "--linger0"]);
        assert_eq!(count(&report, "/errors/total"), 0, "{report}");
        count(&report, "/requests/completed")
    };
    // As recorded: one think of ~100 ms per two-step session (the first step goes at
    // once), so about 20 steps a second on each of the 2 connections.
    let recorded = steps("1");
    assert!((20..=60).contains(&recorded), "{recorded} steps with 100 ms think times");
    assert!(steps("0") > 500, "no think time: as fast as the echo server answers");
}

#[test]
fn a_curl_recording_replays_against_nginx_with_http_framing() {
    let Some(nginx) = Nginx::start() else { return };
    let Some(curl) = require("curl") else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nginx.lmxrec");
    let proxy = RecordProxy::start(&nginx.addr.to_string(), &path);
    let url = format!("http://{}/", proxy.addr);
    run_bounded(Command::new(&curl).args(["-s", "-o", "/dev/null", &url, &url, &url]), Duration::from_secs(20));
    proxy.stop();
    let before = nginx.access_log_lines();
    assert_eq!(before, 3);
    let addr = nginx.addr.to_string();
    // --linger0: each 3-step session ends in a reconnect; leave no TIME_WAIT behind.
    let report = replay(&addr, &path, &["--expect", "http", "-c", "8", "-n", "3000", "--linger0"]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    assert_eq!(count(&report, "/requests/completed"), 3000);
    assert_eq!(nginx.access_log_lines() - before, 3000, "nginx logged each replayed request");
    assert_eq!(count(&report, "/http_status/2xx"), 3000, "{report}");
}

#[test]
fn a_websockets_recording_replays_handshakes_and_frames_the_server_accepts() {
    let Some(python) = websockets_python() else { return };
    let server = WebSocketServer::start(&python);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ws.lmxrec");
    let proxy = RecordProxy::start(&server.addr.to_string(), &path);
    let url = format!("ws://{}/", proxy.addr);
    assert_eq!(websocket_client(&python, &url, 5), "ok 5");
    proxy.stop();
    let addr = server.addr.to_string();
    let report = replay(&addr, &path, &["--replay-speed", "0", "-c", "4", "-d", "2s", "--linger0"]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    let completed = count(&report, "/requests/completed");
    let (handshakes, messages) = server.stop();
    let (handshakes, messages) = (handshakes - 1, messages - 5); // Less the recorded session.
                                                                 // Each replayed session: the handshake, five messages, the close.
    assert!(handshakes >= 10, "{handshakes} replayed handshakes accepted");
    assert!(
        messages <= 5 * handshakes && messages + 5 * 4 >= 5 * handshakes,
        "{messages} messages, {handshakes} handshakes"
    );
    assert!(completed.abs_diff(7 * handshakes) <= 7 * 4, "{completed} steps for {handshakes} sessions");
}

/// A server that speaks first (as SMTP, FTP or MySQL do): a greeting line on accept,
/// then an echo of each line.
fn greeting_server() -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
                if stream.write_all(b"220 hello\r\n").is_err() {
                    return;
                }
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if stream.write_all(line.as_bytes()).is_err() {
                        return;
                    }
                    line.clear();
                }
            });
        }
    });
    addr
}

#[test]
fn a_server_greeting_is_replayed_as_a_step_that_sends_nothing_and_waits() {
    use std::io::{Read, Write};
    let server = greeting_server();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("greeting.lmxrec");
    let proxy = RecordProxy::start(&server.to_string(), &path);
    let mut client = std::net::TcpStream::connect(proxy.addr).unwrap();
    let mut greeting = [0u8; 11];
    client.read_exact(&mut greeting).unwrap();
    client.write_all(b"HELO x\r\n").unwrap();
    client.read_exact(&mut [0u8; 8]).unwrap();
    drop(client);
    let (_summary, recording) = proxy.stop();
    let steps = &recording.sessions[0].steps;
    assert_eq!((steps[0].request.len(), steps[0].answer_len), (0, 11), "the greeting: no request, 11 bytes");
    assert_eq!(steps[1].request, b"HELO x\r\n");

    let addr = server.to_string();
    let report = replay(&addr, &path, &["--replay-speed", "0", "-c", "4", "-n", "400", "--linger0"]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    assert_eq!(count(&report, "/requests/completed"), 400);
    // Half the steps are greetings, each on a connection of its own; only the HELO
    // steps send bytes (the -n budget may stop a connection between the two).
    let sent = count(&report, "/bytes/sent");
    assert!(
        sent % 8 == 0 && (196 * 8..=200 * 8).contains(&sent),
        "{sent} bytes sent; recording {recording:?}; {report}"
    );
    assert!(count(&report, "/connections/established") >= 200, "{report}");
}

#[test]
fn a_recording_replays_over_a_unix_socket_target() {
    let Some(redis) = common::recorder::UnixRedis::start() else { return };
    let Some(bench) = require("redis-benchmark") else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unix.lmxrec");
    let upstream = format!("unix:{}", redis.socket.display());
    let proxy = RecordProxy::start(&upstream, &path);
    let port = proxy.addr.port().to_string();
    run_bounded(
        Command::new(bench).args(["-h", "127.0.0.1", "-p", &port, "-t", "get", "-n", "200", "-c", "2", "-q"]),
        Duration::from_secs(60),
    );
    proxy.stop();
    let report = replay(&upstream, &path, &["-c", "10", "-n", "3000"]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    assert_eq!(count(&report, "/requests/completed"), 3000);
    let stats = redis.cli(&["INFO", "commandstats"]);
    let calls = |name: &str| -> u64 {
        let prefix = format!("cmdstat_{name}:calls=");
        stats.lines().find_map(|l| l.strip_prefix(&prefix)?.split(',').next()?.parse().ok()).unwrap_or(0)
    };
    // Steps executed, counting the pipelined pair of start-up CONFIG GETs as one: the
    // 201 recorded, then the 3000 replayed.
    assert_eq!(calls("get") + calls("config|get") / 2, 201 + 3000, "{stats}");
}
