//! Helpers shared by the integration tests: the binary, throwaway servers on
//! loopback, and report checks. Every server binds 127.0.0.1:0 and every run is
//! bounded by `-d`, so nothing here can hang or collide on a port.
#![allow(dead_code)] // Each test file uses a different subset.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

/// The `loadmux` binary under test.
pub fn loadmux() -> Command {
    Command::new(env!("CARGO_BIN_EXE_loadmux"))
}

/// Starts the built-in echo server in this process on a free loopback port.
pub fn echo_server() -> loadmux::server::ServerHandle {
    loadmux::server::start(loadmux::server::ServerConfig::echo(SocketAddr::from(([127, 0, 0, 1], 0))))
        .expect("start the built-in echo server")
}

/// A loopback port that refuses connections: a socket bound to it but not listening.
/// Holding the socket keeps the port from being handed to a server another test
/// starts meanwhile.
pub struct ClosedPort {
    pub addr: SocketAddr,
    _socket: socket2::Socket,
}

/// Reserves a port on which every connect is refused.
pub fn closed_port() -> ClosedPort {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    ClosedPort { addr, _socket: socket }
}

/// A server that accepts connections and never answers. It stops when dropped.
pub struct SilentServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl SilentServer {
    pub fn start() -> SilentServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => held.push(s),
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        SilentServer { addr, stop }
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A server that echoes the first `bytes` bytes of each connection, then closes it:
/// a server that keeps dropping its clients mid-run.
pub fn closing_echo_server(bytes: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || echo_then_close(stream, bytes));
        }
    });
    addr
}

fn echo_then_close(mut stream: TcpStream, limit: usize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 4096];
    let mut echoed = 0;
    while echoed < limit {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n.min(limit - echoed),
        };
        if stream.write_all(&buf[..n]).is_err() {
            return;
        }
        echoed += n;
    }
    // Dropping the stream closes it (FIN) while the client waits for its next answer.
}

/// Reads a JSON report.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}\n{text}", path.display()))
}

/// Asserts that `report` has every key of JSON schema 1, with the right types.
pub fn assert_schema1(report: &Value) {
    assert_eq!(report["tool"], "loadmux");
    assert_eq!(report["schema"], 1);
    assert!(report["duration_s"].is_f64(), "duration_s");
    for key in ["attempted", "established", "failed", "max_open"] {
        assert!(report["connections"][key].is_u64(), "connections.{key}");
    }
    for key in ["sent", "completed"] {
        assert!(report["requests"][key].is_u64(), "requests.{key}");
    }
    assert!(report["requests"]["per_s"].is_number(), "requests.per_s");
    for key in ["sent", "received"] {
        assert!(report["bytes"][key].is_u64(), "bytes.{key}");
    }
    for key in ["sent_per_s", "received_per_s"] {
        assert!(report["bytes"][key].is_number(), "bytes.{key}");
    }
    for hist in ["latency_us", "connect_latency_us"] {
        for key in ["count", "min", "p50", "p90", "p99", "p99_9", "max"] {
            assert!(report[hist][key].is_u64(), "{hist}.{key}");
        }
        assert!(report[hist]["mean"].is_number(), "{hist}.mean");
        assert!(report[hist]["hdr"].as_str().is_some_and(|s| !s.is_empty()), "{hist}.hdr");
    }
    assert!(report["errors"]["total"].is_u64(), "errors.total");
    let kinds = report["errors"]["by_kind"].as_object().expect("errors.by_kind");
    for kind in loadmux::stats::ErrorKind::ALL {
        assert!(kinds[kind.name()].is_u64(), "errors.by_kind.{}", kind.name());
    }
    let timeline = report["timeline"].as_array().expect("timeline");
    for row in timeline {
        for key in ["requests", "bytes_sent", "bytes_received", "errors", "open", "connects"] {
            assert!(row[key].is_u64(), "timeline row {key}: {row}");
        }
        assert!(row["t_s"].is_number(), "timeline t_s");
    }
}

/// A counter from a report, by JSON pointer (`/requests/completed`).
pub fn count(report: &Value, pointer: &str) -> u64 {
    report.pointer(pointer).and_then(Value::as_u64).unwrap_or_else(|| panic!("{pointer} missing in {report}"))
}

pub mod netns;
pub mod pki;
pub mod prereq;
pub mod real_servers;
pub mod recorder;
pub mod ws_server;

/// A `loadmux serve` child process on loopback. Dropping it stops it with SIGTERM
/// (so it removes its Unix socket file and generated CA), then SIGKILL if it has
/// not exited within 5 s.
pub struct Serve {
    /// Its TCP address (for [`Serve::start_unix`], the unspecified 0.0.0.0:0).
    pub addr: SocketAddr,
    /// What `loadmux run` takes as the target: `IP:PORT` or `unix:PATH`.
    pub target: String,
    /// `--tls` without `--cert`: the generated CA, for clients' `--cacert`.
    pub ca: Option<PathBuf>,
    child: std::process::Child,
    /// Its stderr after the first line, one message per line.
    stderr: std::sync::mpsc::Receiver<String>,
    /// Holds the Unix socket and the generated CA.
    dir: tempfile::TempDir,
}

impl Serve {
    /// Starts `loadmux serve <args> --listen 127.0.0.1:0` and reads the address it
    /// bound from its "listening on" line. No port is guessed, so parallel tests
    /// can never end up talking to each other's servers.
    pub fn start(args: &[&str]) -> Serve {
        Serve::spawn(args, None, false)
    }

    /// The same with `--tls`. Unless `args` has `--cert`, the server generates its
    /// certificate and writes the CA into this server's temp dir ([`Serve::ca`]).
    pub fn start_tls(args: &[&str]) -> Serve {
        Serve::spawn(args, None, true)
    }

    /// `loadmux serve <args> --listen unix:PATH`, PATH in a temp dir
    /// ([`Serve::unix_path`]).
    pub fn start_unix(args: &[&str]) -> Serve {
        Serve::spawn(args, Some("serve.sock"), false)
    }

    /// The same over TLS (a generated certificate, as [`Serve::start_tls`]).
    pub fn start_unix_tls(args: &[&str]) -> Serve {
        Serve::spawn(args, Some("serve.sock"), true)
    }

    fn spawn(args: &[&str], unix_name: Option<&str>, tls: bool) -> Serve {
        use std::io::BufRead;
        let dir = tempfile::tempdir().expect("temp dir");
        let listen = match unix_name {
            Some(name) => format!("unix:{}", dir.path().join(name).display()),
            None => "127.0.0.1:0".to_string(),
        };
        let mut command = loadmux();
        command.arg("serve").args(args).args(["--listen", &listen]);
        let generated = tls && !args.contains(&"--cert");
        let ca = generated.then(|| dir.path().join("ca.pem"));
        if tls {
            command.arg("--tls");
        }
        if let Some(ca) = &ca {
            command.arg("--ca-out").arg(ca);
        }
        let mut child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn loadmux serve");
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let target = first
            .split_whitespace()
            .skip_while(|w| *w != "on")
            .nth(1)
            .map(str::to_string)
            .unwrap_or_else(|| panic!("loadmux serve {args:?} did not start: {first:?}"));
        let addr = if unix_name.is_some() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            target.parse().unwrap_or_else(|_| panic!("no address in {first:?}"))
        };
        // Keep draining its stderr so the server never blocks on a full pipe.
        let (send, stderr) = std::sync::mpsc::channel();
        thread::spawn(move || lines.map_while(Result::ok).for_each(|line| drop(send.send(line))));
        Serve { addr, target, ca, child, stderr, dir }
    }

    /// The Unix socket's path ([`Serve::start_unix`]).
    pub fn unix_path(&self) -> PathBuf {
        PathBuf::from(self.target.strip_prefix("unix:").expect("a server started with start_unix"))
    }

    /// The server's temp dir (where its socket and generated CA live).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it with SIGTERM and returns its last stderr line: the counters
    /// ("accepted N connections ..., M TLS handshakes (K resumed)").
    pub fn stop(mut self) -> String {
        self.terminate();
        self.stderr.try_iter().last().unwrap_or_default()
    }

    fn terminate(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet
        // (try_wait above), so it cannot have been reused.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                // Give the reader thread a moment to pass on the last lines.
                thread::sleep(Duration::from_millis(50));
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Runs `loadmux run ARGS -q --json -` and returns the report (exit code must be 0).
pub fn run_report(args: &[&str]) -> Value {
    let out = loadmux().arg("run").args(args).args(["-q", "--json", "-"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "run {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Serialises the tests that assert on timing within one test binary: on a 2-core
/// machine, several load tests at once would measure each other, not the server.
pub fn timing_sensitive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
