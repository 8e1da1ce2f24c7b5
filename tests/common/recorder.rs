//! A `loadmux record` child process on a free loopback port, stopped with SIGTERM
//! (by its pid) so that it writes its recording, and the tools the record tests drive.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use loadmux::replay::Recording;

/// A running `loadmux record`.
pub struct RecordProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// The recording's path.
    pub output: PathBuf,
    child: Option<Child>,
    stderr: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl RecordProxy {
    /// Starts `loadmux record --listen 127.0.0.1:0 --upstream UPSTREAM -o OUTPUT` and reads
    /// the address it bound from its first line.
    pub fn start(upstream: &str, output: &Path) -> RecordProxy {
        RecordProxy::start_with(upstream, output, &[])
    }

    /// [`RecordProxy::start`] with more flags (`--cacert`, `--insecure`...).
    pub fn start_with(upstream: &str, output: &Path, flags: &[&str]) -> RecordProxy {
        let mut child = super::loadmux()
            .args(["record", "--listen", "127.0.0.1:0", "--upstream", upstream, "-o"])
            .arg(output)
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn loadmux record");
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        // Warnings (--insecure) may come before the line that says where it listens.
        let first = lines.by_ref().map_while(Result::ok).find(|l| l.contains("listening on")).unwrap_or_default();
        let addr = first
            .split_whitespace()
            .skip_while(|w| *w != "on")
            .nth(1)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("loadmux record did not start: {first:?}"));
        // Keep draining stderr so the proxy never blocks on a full pipe; keep the lines.
        let stderr = std::thread::spawn(move || lines.map_while(Result::ok).collect());
        RecordProxy { addr, output: output.to_path_buf(), child: Some(child), stderr: Some(stderr) }
    }

    /// The proxy's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Resident memory of the proxy process, in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in {status}"))
    }

    /// Sends SIGTERM, waits (at most 10 s) for exit code 0, and returns the summary
    /// line and the recording, which must be valid.
    pub fn stop(mut self) -> (String, Recording) {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("loadmux record did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let lines = self.stderr.take().unwrap().join().unwrap();
        assert_eq!(status.code(), Some(0), "record: {lines:?}");
        let summary = lines.iter().find(|l| l.contains("stopped")).cloned().unwrap_or_default();
        let recording = Recording::load(&self.output).unwrap_or_else(|e| panic!("{e}; record said {lines:?}"));
        (summary, recording)
    }
}

impl Drop for RecordProxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A number from the summary line: the word before `what` ("5 sessions").
pub fn summary_count(summary: &str, what: &str) -> u64 {
    let words: Vec<&str> = summary.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1].trim_end_matches([',', ';']) == what)
        .and_then(|w| w[0].parse().ok())
        .unwrap_or_else(|| panic!("no '{what}' count in {summary:?}"))
}

/// Debian's python3 with python3-websockets, or None after saying loudly why the
/// test is skipped (a failure under CI, which installs it). `/usr/bin/python3` is
/// tried first: a pyenv or venv python earlier on PATH may lack the module.
pub fn websockets_python() -> Option<PathBuf> {
    let has_module = |python: &Path| {
        std::process::Command::new(python)
            .args(["-c", "import websockets"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let debian = PathBuf::from("/usr/bin/python3");
    if has_module(&debian) {
        return Some(debian);
    }
    let found = super::real_servers::require("python3")?;
    match has_module(&found) {
        true => Some(found),
        false if std::env::var_os("CI").is_some() => {
            panic!("python3-websockets is not installed, and CI must not skip")
        }
        false => {
            eprintln!("SKIPPED: python3-websockets is not installed (scripts/test.sh installs it)");
            None
        }
    }
}

/// `tests/websocket_peer.py client URL N`: python3-websockets sends N messages and
/// checks each echo; returns what it printed ("ok N").
pub fn websocket_client(python: &Path, url: &str, messages: usize) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/websocket_peer.py");
    let n = messages.to_string();
    let out = run_bounded(Command::new(python).args([script, "client", url, &n]), Duration::from_secs(20));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `tests/websocket_peer.py server`: python3-websockets' echo server, which counts the
/// handshakes it accepted and the messages it echoed.
pub struct WebSocketServer {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Option<Child>,
    stdout: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl WebSocketServer {
    /// Starts it and reads the port it bound.
    pub fn start(python: &Path) -> WebSocketServer {
        let mut child = std::process::Command::new(python)
            .args([concat!(env!("CARGO_MANIFEST_DIR"), "/tests/websocket_peer.py"), "server"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn websocket_peer.py server");
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = stdout.next().and_then(Result::ok).unwrap_or_default();
        let port: u16 = first
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("websocket server did not start: {first:?}"));
        WebSocketServer { addr: SocketAddr::from(([127, 0, 0, 1], port)), child: Some(child), stdout }
    }

    /// Stops it with SIGTERM and returns (handshakes accepted, messages echoed).
    pub fn stop(mut self) -> (u64, u64) {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let last = self.stdout.next().and_then(Result::ok).unwrap_or_default();
        let _ = child.wait();
        let words: Vec<&str> = last.split_whitespace().collect();
        match words.as_slice() {
            ["handshakes", h, "messages", m] => (h.parse().unwrap(), m.parse().unwrap()),
            _ => panic!("websocket server's last line: {last:?}"),
        }
    }
}

impl Drop for WebSocketServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// curl's exit code for "could not connect": its `connect()` failed, so nothing
/// reached the proxy and nothing was recorded.
const CURL_COULD_NOT_CONNECT: i32 = 7;

/// Runs a client to completion, killing it (by pid) after `limit`. A curl that could
/// not even connect is tried again, twice: seen once in a CI-like run right after the
/// host-side churn tests, whose TIME_WAIT sockets crowd the ephemeral ports; no byte
/// was sent, so a retry changes nothing the tests count.
pub fn run_bounded(command: &mut Command, limit: Duration) -> Output {
    let mut tries = 0;
    loop {
        let out = run_once(command, limit);
        tries += 1;
        if out.status.code() == Some(CURL_COULD_NOT_CONNECT) && tries < 3 {
            eprintln!("{command:?} could not connect (try {tries}); trying again");
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        assert!(out.status.success(), "{command:?}: {out:?}");
        return out;
    }
}

fn run_once(command: &mut Command, limit: Duration) -> Output {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn client");
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A redis-server listening on a Unix socket only (`--port 0`): no port to guess.
pub struct UnixRedis {
    /// The socket's path.
    pub socket: PathBuf,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl UnixRedis {
    /// Starts it, or None after saying loudly why (a failure under CI).
    pub fn start() -> Option<UnixRedis> {
        let bin = super::real_servers::require("redis-server")?;
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("redis.sock");
        let child = Command::new(bin)
            .args(["--port", "0", "--unixsocket", socket.to_str().unwrap(), "--save", "", "--appendonly", "no"])
            .args(["--dir", dir.path().to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on {}", socket.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(UnixRedis { socket, child, _dir: dir })
    }

    /// Runs one command through redis-cli over the socket.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(super::real_servers::require("redis-cli").unwrap())
            .arg("-s")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for UnixRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
