//! `loadmux record` between real clients and real servers that nobody here wrote
//! (redis-benchmark → redis-server, curl → nginx, python3-websockets both ways), and
//! under faults: each recording checked against what the server itself counted.

mod common;

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::real_servers::{require, Nginx, Redis};
use common::recorder::{
    run_bounded, summary_count, websocket_client, websockets_python, RecordProxy, UnixRedis, WebSocketServer,
};
use loadmux::replay::format::CloseReason;
use loadmux::replay::Recording;

/// The commands in a RESP request, lower-cased (`set`, `config|get`), or a panic if
/// the bytes are not whole RESP arrays.
fn resp_commands(mut bytes: &[u8]) -> Vec<String> {
    fn line<'a>(bytes: &mut &'a [u8]) -> &'a [u8] {
        let end = bytes.windows(2).position(|w| w == b"\r\n").expect("CRLF");
        let (head, rest) = bytes.split_at(end);
        *bytes = &rest[2..];
        head
    }
    let mut commands = Vec::new();
    while !bytes.is_empty() {
        let head = line(&mut bytes);
        assert_eq!(head[0], b'*', "a RESP array");
        let n: usize = std::str::from_utf8(&head[1..]).unwrap().parse().unwrap();
        let mut words = Vec::new();
        for _ in 0..n {
            let len: usize = std::str::from_utf8(&line(&mut bytes)[1..]).unwrap().parse().unwrap();
            words.push(String::from_utf8_lossy(&bytes[..len]).to_lowercase());
            bytes = &bytes[len + 2..];
        }
        // Redis names subcommands of container commands `config|get`.
        let name = match words.as_slice() {
            [cmd, sub, ..] if cmd == "config" => format!("{cmd}|{sub}"),
            [cmd, ..] => cmd.clone(),
            [] => String::new(),
        };
        commands.push(name);
    }
    commands
}

/// `INFO commandstats` as command → calls.
fn commandstats(redis: &Redis) -> BTreeMap<String, u64> {
    redis
        .cli(&["INFO", "commandstats"])
        .lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let calls = rest.strip_prefix("calls=")?.split(',').next()?.parse().ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

fn temp_recording(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    (dir, path)
}

#[test]
fn redis_benchmark_through_the_proxy_records_one_step_per_command_redis_counted() {
    let Some(redis) = Redis::start() else { return };
    let Some(bench) = require("redis-benchmark") else { return };
    let (_dir, path) = temp_recording("redis.lmxrec");
    let proxy = RecordProxy::start(&redis.addr.to_string(), &path);
    let port = proxy.addr.port().to_string();
    run_bounded(
        Command::new(bench).args(["-h", "127.0.0.1", "-p", &port, "-t", "set,get", "-n", "2000", "-c", "5", "-q"]),
        Duration::from_secs(60),
    );
    let counted = commandstats(&redis);
    let (summary, recording) = proxy.stop();

    let mut recorded: BTreeMap<String, u64> = BTreeMap::new();
    let mut single_command_steps = 0;
    for step in recording.sessions.iter().flat_map(|s| &s.steps) {
        let commands = resp_commands(&step.request);
        single_command_steps += u64::from(commands.len() == 1);
        for c in commands {
            *recorded.entry(c).or_default() += 1;
        }
        assert!(step.answer_len > 0, "every recorded request was answered");
    }
    assert_eq!(counted["set"], 2000, "{counted:?}");
    assert_eq!(counted["get"], 2000, "{counted:?}");
    assert_eq!(recorded, counted, "the recording holds exactly the commands redis executed");
    // redis-benchmark waits for each answer (-P 1): every SET and GET is its own step.
    // Only its start-up CONFIG GETs are pipelined, two in one step.
    assert!(single_command_steps >= 4000, "{single_command_steps} single-command steps");
    assert_eq!(summary_count(&summary, "steps"), recording.steps() as u64, "{summary}");
    assert_eq!(summary_count(&summary, "sessions"), recording.sessions.len() as u64, "{summary}");
    assert!(recording.sessions.iter().all(|s| s.closed == Some(CloseReason::Clean)), "redis-benchmark closes cleanly");
}

#[test]
fn curl_through_the_proxy_records_one_step_per_request_nginx_logged() {
    let Some(nginx) = Nginx::start() else { return };
    let Some(curl) = require("curl") else { return };
    let (_dir, path) = temp_recording("nginx.lmxrec");
    let proxy = RecordProxy::start(&nginx.addr.to_string(), &path);
    let url = format!("http://{}/", proxy.addr);
    // One curl with three URLs reuses its connection: one session of three steps.
    let out =
        run_bounded(Command::new(&curl).args(["-s", "--fail", "--http1.1", &url, &url, &url]), Duration::from_secs(20));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from nginx\n".repeat(3));
    run_bounded(Command::new(&curl).args(["-s", "--fail", "-o", "/dev/null", &url, &url]), Duration::from_secs(20));
    let (_summary, recording) = proxy.stop();

    let steps: Vec<usize> = recording.sessions.iter().map(|s| s.steps.len()).collect();
    assert_eq!(steps, [3, 2], "sessions and their steps");
    assert_eq!(nginx.access_log_lines(), recording.steps(), "one step per request nginx logged");
    for step in recording.sessions.iter().flat_map(|s| &s.steps) {
        assert!(step.request.starts_with(b"GET / HTTP/1.1\r\n"), "{:?}", String::from_utf8_lossy(&step.request));
        assert!(step.answer_len > "hello from nginx\n".len(), "headers and body were recorded");
    }
}

#[test]
fn a_python_websockets_session_is_recorded_as_handshake_messages_and_close() {
    let Some(python) = websockets_python() else { return };
    let server = WebSocketServer::start(&python);
    let (_dir, path) = temp_recording("ws.lmxrec");
    let proxy = RecordProxy::start(&server.addr.to_string(), &path);
    let url = format!("ws://{}/", proxy.addr);
    let out = websocket_client(&python, &url, 5);
    assert_eq!(out, "ok 5");
    let (_summary, recording) = proxy.stop();
    assert_eq!(server.stop(), (1, 5), "the server saw one handshake and five messages");

    let session = &recording.sessions[..];
    assert_eq!(session.len(), 1);
    let steps = &session[0].steps;
    // The opening handshake, five messages, the closing handshake.
    assert_eq!(steps.len(), 7, "{steps:?}");
    assert!(steps[0].request.starts_with(b"GET / HTTP/1.1\r\n"));
    assert!(steps[0].answer_len > 0);
    for step in &steps[1..6] {
        // A masked client frame: FIN + text opcode (RSV1 may flag permessage-deflate,
        // which python3-websockets negotiates by default), then the mask bit.
        assert_eq!(step.request[0] & 0x8f, 0x81, "a text frame");
        assert_eq!(step.request[1] & 0x80, 0x80, "clients mask their frames");
        assert!(step.answer_len > 2, "the echo came back: a frame header and its payload");
    }
    assert_eq!(steps[6].request[0] & 0x8f, 0x88, "a close frame");
}

/// An upstream whose behaviour each connection picks with its first line:
/// `echo` (echo what follows), `reset` (answer half, then reset), `flood` (write
/// without end, counting the bytes the kernel took).
struct ScriptedUpstream {
    addr: std::net::SocketAddr,
    flooded: Arc<AtomicU64>,
}

impl ScriptedUpstream {
    fn start() -> ScriptedUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let flooded = Arc::new(AtomicU64::new(0));
        let counter = flooded.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let counter = counter.clone();
                std::thread::spawn(move || serve_scripted(stream, &counter));
            }
        });
        ScriptedUpstream { addr, flooded }
    }
}

fn serve_scripted(mut stream: TcpStream, flooded: &AtomicU64) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    let mut command = Vec::new();
    let mut byte = [0u8; 1];
    while stream.read(&mut byte).is_ok_and(|n| n == 1) && byte[0] != b'\n' {
        command.push(byte[0]);
    }
    match command.as_slice() {
        b"echo" => {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stream.read(&mut buf) {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
        b"reset" => {
            let _ = stream.write_all(b"half an ans");
            std::thread::sleep(Duration::from_millis(100));
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        }
        b"flood" => {
            let chunk = [b'f'; 64 * 1024];
            while let Ok(n) = stream.write(&chunk) {
                flooded.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        _ => {}
    }
}

/// A client connection through the proxy that has asked the upstream to echo.
fn echo_client(proxy: &RecordProxy) -> TcpStream {
    let mut s = TcpStream::connect(proxy.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"echo\n").unwrap();
    s
}

fn assert_echoes(s: &mut TcpStream, text: &str) {
    s.write_all(text.as_bytes()).unwrap();
    let mut got = vec![0u8; text.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(got, text.as_bytes());
}

fn close_reasons(recording: &Recording) -> Vec<Option<CloseReason>> {
    recording.sessions.iter().map(|s| s.closed).collect()
}

#[test]
fn an_upstream_reset_mid_answer_ends_only_its_session() {
    let upstream = ScriptedUpstream::start();
    let (_dir, path) = temp_recording("reset.lmxrec");
    let proxy = RecordProxy::start(&upstream.addr.to_string(), &path);
    let mut good = echo_client(&proxy);
    assert_echoes(&mut good, "before\n");

    let mut doomed = TcpStream::connect(proxy.addr).unwrap();
    doomed.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    doomed.write_all(b"reset\n").unwrap();
    let mut got = Vec::new();
    let err = doomed.read_to_end(&mut got).expect_err("the upstream's reset reaches the client as a reset");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");

    assert_echoes(&mut good, "after\n");
    let mut fresh = echo_client(&proxy);
    assert_echoes(&mut fresh, "new\n");
    good.shutdown(Shutdown::Write).unwrap();
    fresh.shutdown(Shutdown::Write).unwrap();
    // Wait for the proxy to pass the FINs on and see the upstream's.
    assert_eq!(good.read(&mut [0u8; 8]).unwrap(), 0);
    assert_eq!(fresh.read(&mut [0u8; 8]).unwrap(), 0);
    let (summary, recording) = proxy.stop();
    assert_eq!(
        close_reasons(&recording),
        [Some(CloseReason::Clean), Some(CloseReason::UpstreamError), Some(CloseReason::Clean)],
        "{summary}"
    );
    assert_eq!(recording.sessions[1].steps[0].answer_len, "half an ans".len(), "the part answered before the reset");
    assert_eq!(summary_count(&summary, "failed"), 1, "{summary}");
}

#[test]
fn a_client_vanishing_mid_answer_ends_only_its_session() {
    let upstream = ScriptedUpstream::start();
    let (_dir, path) = temp_recording("vanish.lmxrec");
    let proxy = RecordProxy::start(&upstream.addr.to_string(), &path);
    let mut good = echo_client(&proxy);
    assert_echoes(&mut good, "before\n");

    let mut vanishing = TcpStream::connect(proxy.addr).unwrap();
    vanishing.write_all(b"flood\n").unwrap();
    let mut some = vec![0u8; 100_000];
    vanishing.read_exact(&mut some).unwrap();
    // Gone mid-answer, with a reset (SO_LINGER 0), as a killed client goes.
    socket2::SockRef::from(&vanishing).set_linger(Some(Duration::ZERO)).unwrap();
    drop(vanishing);

    // The proxy passes the reset on: the flooding upstream's writes stop.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = upstream.flooded.load(Ordering::Relaxed);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = upstream.flooded.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        assert!(Instant::now() < deadline, "the upstream kept flooding a session whose client is gone");
        last = now;
    }
    assert_echoes(&mut good, "after\n");
    drop(good);
    let (summary, recording) = proxy.stop();
    let reasons = close_reasons(&recording);
    assert_eq!(reasons[1], Some(CloseReason::ClientError), "{summary}");
    assert!(recording.sessions[1].steps[0].answer_len >= some.len(), "what was forwarded before it vanished");
}

#[test]
fn a_client_that_never_reads_while_the_upstream_floods_leaves_the_proxy_rss_bounded() {
    let upstream = ScriptedUpstream::start();
    let (_dir, path) = temp_recording("flood.lmxrec");
    let proxy = RecordProxy::start(&upstream.addr.to_string(), &path);
    let rss_before = proxy.rss_kib();
    let mut never_reads = TcpStream::connect(proxy.addr).unwrap();
    never_reads.write_all(b"flood\n").unwrap();

    // Every buffer on the way fills (the upstream's send buffer, the proxy's receive
    // buffer and its 64 KiB, its send buffer, the client's receive buffer), then the
    // upstream blocks: the flood stalls instead of piling up in the proxy. Wait for
    // the stall (10 s at most, for a loaded machine), then watch it hold for 1 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stalled_at = upstream.flooded.load(Ordering::Relaxed);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = upstream.flooded.load(Ordering::Relaxed);
        if now == stalled_at && now > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the flood never stalled: {now} B and growing");
        stalled_at = now;
    }
    let mut good = echo_client(&proxy);
    for i in 0..20 {
        assert_echoes(&mut good, &format!("still serving {i}\n"));
    }
    std::thread::sleep(Duration::from_secs(1));
    let later = upstream.flooded.load(Ordering::Relaxed);
    let rss = proxy.rss_kib();
    eprintln!("proxy RSS {rss_before} KiB -> {rss} KiB; upstream flood stalled at {stalled_at} B, {later} B 1 s later");
    assert!(stalled_at > 1 << 20, "the upstream did flood ({stalled_at} B)");
    assert!(later - stalled_at < 1 << 20, "the flood stayed stalled: {stalled_at} B, then {later} B");
    // Kernel buffers hold the flood, not the proxy: its RSS barely moves.
    assert!(rss < rss_before + 16 * 1024, "proxy RSS {rss} KiB (was {rss_before} KiB) after {later} B of flood");

    drop(never_reads);
    drop(good);
    let (summary, recording) = proxy.stop();
    assert_eq!(recording.sessions.len(), 2, "{summary}");
    let flood_recorded = recording.sessions[0].steps[0].answer_len as u64;
    assert!(flood_recorded <= later, "recorded only what was read: {flood_recorded} of {later} B");
}

#[test]
fn megabytes_both_ways_arrive_intact_through_the_proxy() {
    let upstream = ScriptedUpstream::start();
    let (_dir, path) = temp_recording("bulk.lmxrec");
    let proxy = RecordProxy::start(&upstream.addr.to_string(), &path);
    let mut client = echo_client(&proxy);
    // 8 MiB that no buffer holds at once: every partial write and full buffer on the
    // way is exercised, in both directions at the same time.
    let sent: Vec<u8> = (0..8u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let mut writer = client.try_clone().unwrap();
    let to_send = sent.clone();
    let sending = std::thread::spawn(move || writer.write_all(&to_send).unwrap());
    let mut echoed = vec![0u8; sent.len()];
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    client.read_exact(&mut echoed).unwrap();
    sending.join().unwrap();
    assert!(echoed == sent, "the echo differs from what was sent");
    client.shutdown(Shutdown::Write).unwrap();
    assert_eq!(client.read(&mut [0u8; 8]).unwrap(), 0, "the upstream's FIN came through");
    let (_summary, recording) = proxy.stop();
    let session = &recording.sessions[0];
    let requested: usize = session.steps.iter().map(|s| s.request.len()).sum();
    let answered: usize = session.steps.iter().map(|s| s.answer_len).sum();
    assert_eq!((requested, answered), (sent.len() + "echo\n".len(), sent.len()), "every byte recorded once");
    assert_eq!(session.closed, Some(CloseReason::Clean));
}

#[test]
fn a_unix_socket_upstream_is_recorded_like_a_tcp_one() {
    let Some(redis) = UnixRedis::start() else { return };
    let Some(bench) = require("redis-benchmark") else { return };
    let (_dir, path) = temp_recording("unix.lmxrec");
    let upstream = format!("unix:{}", redis.socket.display());
    let proxy = RecordProxy::start(&upstream, &path);
    let port = proxy.addr.port().to_string();
    run_bounded(
        Command::new(bench).args(["-h", "127.0.0.1", "-p", &port, "-t", "set", "-n", "500", "-c", "2", "-q"]),
        Duration::from_secs(60),
    );
    let stats = redis.cli(&["INFO", "commandstats"]);
    let (_summary, recording) = proxy.stop();
    let sets = recording.sessions.iter().flat_map(|s| &s.steps).filter(|s| resp_commands(&s.request) == ["set"]);
    assert_eq!(sets.count(), 500);
    assert!(stats.contains("cmdstat_set:calls=500,"), "{stats}");
    assert!(recording.sessions.iter().all(|s| s.closed == Some(CloseReason::Clean)));
}
