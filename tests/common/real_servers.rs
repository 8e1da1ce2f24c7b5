//! Real servers nobody here wrote (Debian's redis-server, memcached and nginx), started
//! on free loopback ports with throwaway config in a temp dir, and stopped by pid on drop.
//! redis and nginx can speak TLS (Debian builds both with OpenSSL) with certificates
//! the test made (`pki.rs`), and redis can listen on a Unix socket too.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Finds `name` on PATH or in the sbin directories (nginx lives in /usr/sbin).
fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

/// The binary, or None after saying loudly why the test is skipped. Under CI a
/// missing server is a failure: scripts/test.sh installs them.
pub fn require(name: &str) -> Option<PathBuf> {
    let found = find(name);
    if found.is_none() {
        super::prereq::missing(name, "scripts/test.sh installs it");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Redis and nginx cannot report the port they bound, so one is guessed: tests that
/// start them take this lock (so they never guess the same port as each other), and
/// `start_on_free_port` checks that the server it started is the one listening.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Spawns `spawn(port)` on a guessed free port until the child is listening and
/// still alive (a child that lost the port to another process exits at once).
fn start_on_free_port(what: &str, mut spawn: impl FnMut(u16) -> Child) -> (SocketAddr, Child) {
    for _ in 0..5 {
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut child = spawn(port);
        wait_listening(addr, &mut child, what);
        std::thread::sleep(Duration::from_millis(150));
        if child.try_wait().ok().flatten().is_none() {
            return (addr, child);
        }
    }
    panic!("{what} could not get a free port in 5 tries");
}

fn wait_listening(addr: SocketAddr, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return; // It exited (lost the port?); the caller checks and retries.
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not listen on {addr} within 10 s");
}

/// A child process killed (by its pid) and reaped on drop.
struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A server certificate (PEM files) for a TLS server, and the CA its clients are
/// checked against (for servers that check clients).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// A redis-server on a free loopback port, no persistence.
pub struct Redis {
    /// Its port: plaintext, or TLS for [`Redis::start_tls`].
    pub addr: SocketAddr,
    /// [`Redis::start_unix`]: its Unix socket (it listens on `addr` too).
    pub unix: Option<PathBuf>,
    /// [`Redis::start_tls`]: the CA that signed its certificate.
    pub tls_ca: Option<PathBuf>,
    _child: Owned,
    _dir: tempfile::TempDir,
    _guard: std::sync::MutexGuard<'static, ()>,
}

impl Redis {
    /// Plaintext on a free port.
    pub fn start() -> Option<Redis> {
        Redis::start_with(|_, _| Vec::new(), None, false)
    }

    /// TLS only (`--port 0 --tls-port PORT`), with `files.cert`/`files.key`; clients
    /// are not asked for certificates.
    pub fn start_tls(files: &TlsFiles) -> Option<Redis> {
        let args = |port: u16, _: &Path| {
            let mut args: Vec<String> = vec!["--port".into(), "0".into(), "--tls-port".into(), port.to_string()];
            for (flag, path) in
                [("--tls-cert-file", &files.cert), ("--tls-key-file", &files.key), ("--tls-ca-cert-file", &files.ca)]
            {
                args.extend([flag.to_string(), path.display().to_string()]);
            }
            args.extend(["--tls-auth-clients".into(), "no".into()]);
            args
        };
        Redis::start_with(args, Some(files.ca.clone()), false)
    }

    /// Plaintext on a free port and on a Unix socket in its temp dir
    /// (`--unixsocket`).
    pub fn start_unix() -> Option<Redis> {
        Redis::start_with(
            |_, dir: &Path| vec!["--unixsocket".into(), dir.join("redis.sock").display().to_string()],
            None,
            true,
        )
    }

    /// `extra(port, dir)` adds to (or, as later flags win, overrides) the base flags.
    fn start_with(extra: impl Fn(u16, &Path) -> Vec<String>, tls_ca: Option<PathBuf>, unix: bool) -> Option<Redis> {
        let bin = require("redis-server")?;
        let guard = one_at_a_time();
        let dir = tempfile::tempdir().unwrap();
        let (addr, child) = start_on_free_port("redis-server", |port| {
            Command::new(&bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--dir", dir.path().to_str().unwrap(), "--maxclients", "10000", "--protected-mode", "no"])
                .args(extra(port, dir.path()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server")
        });
        let unix = unix.then(|| dir.path().join("redis.sock"));
        if let Some(path) = &unix {
            wait_unix_listening(path, "redis-server");
        }
        Some(Redis { addr, unix, tls_ca, _child: Owned(child), _dir: dir, _guard: guard })
    }

    /// Runs one command through redis-cli (over TLS for a TLS server) and returns
    /// its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let bin = require("redis-cli").expect("redis-cli comes with redis-tools");
        let mut command = Command::new(bin);
        command.args(["-h", "127.0.0.1", "-p", &self.addr.port().to_string()]);
        if let Some(ca) = &self.tls_ca {
            command.arg("--tls").arg("--cacert").arg(ca);
        }
        let out = command.args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs one command through redis-cli over the Unix socket (`redis-cli -s`).
    pub fn cli_unix(&self, args: &[&str]) -> String {
        let bin = require("redis-cli").expect("redis-cli comes with redis-tools");
        let path = self.unix.as_ref().expect("a redis started with start_unix");
        let out = Command::new(bin).arg("-s").arg(path).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A field of `INFO stats`, e.g. `total_commands_processed`.
    pub fn info_stat(&self, field: &str) -> u64 {
        let info = self.cli(&["INFO", "stats"]);
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in INFO stats:\n{info}"))
    }
}

impl Redis {
    /// How many times Redis ran `command` (lowercase), from `INFO commandstats`.
    pub fn command_calls(&self, command: &str) -> u64 {
        let info = self.cli(&["INFO", "commandstats"]);
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0) // A command never run has no line.
    }

    /// Sends `command` (raw bytes) on a fresh connection and returns everything the
    /// server answers within 300 ms: a reply read without loadmux's decoder.
    pub fn raw_reply(&self, command: &[u8]) -> Vec<u8> {
        use std::io::{Read, Write};
        let mut socket = TcpStream::connect(self.addr).unwrap();
        socket.write_all(command).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = socket.read(&mut buf) {
            reply.extend_from_slice(&buf[..n]);
        }
        reply
    }
}

/// A memcached on a free loopback port, UDP off.
pub struct Memcached {
    pub addr: SocketAddr,
    _child: Owned,
    _guard: std::sync::MutexGuard<'static, ()>,
}

impl Memcached {
    pub fn start() -> Option<Memcached> {
        let bin = require("memcached")?;
        let guard = one_at_a_time();
        let (addr, child) = start_on_free_port("memcached", |port| {
            Command::new(&bin)
                // -u: memcached refuses to run as root without a user to switch to.
                .args(["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0", "-u", "nobody", "-m", "64"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn memcached")
        });
        Some(Memcached { addr, _child: Owned(child), _guard: guard })
    }

    /// A counter of memcached's `stats` (e.g. `get_hits`, `cmd_set`).
    pub fn stat(&self, name: &str) -> u64 {
        use std::io::{BufRead, BufReader, Write};
        let mut socket = TcpStream::connect(self.addr).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        socket.write_all(b"stats\r\n").unwrap();
        let reader = BufReader::new(socket);
        for line in reader.lines() {
            let line = line.unwrap();
            if line.trim_end() == "END" {
                break;
            }
            if let Some(value) = line.strip_prefix(&format!("STAT {name} ")) {
                return value.trim().parse().unwrap_or_else(|_| panic!("stat {name} = {value:?}"));
            }
        }
        panic!("memcached has no stat {name}");
    }
}

/// An nginx serving one small static file on a free loopback port, with its access
/// log in the temp dir.
pub struct Nginx {
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    _child: Owned,
    _guard: std::sync::MutexGuard<'static, ()>,
}

/// How nginx's one server speaks.
#[derive(Clone, Debug)]
pub enum NginxTls {
    /// Plain HTTP.
    Off,
    /// HTTPS with this certificate.
    On(TlsFiles),
    /// HTTPS, and a client certificate signed by the CA is required
    /// (`ssl_verify_client on`: without one nginx answers 400).
    RequireClientCert(TlsFiles),
}

impl Nginx {
    /// Plain HTTP keep-alive.
    pub fn start() -> Option<Nginx> {
        Nginx::start_with(NginxTls::Off)
    }

    /// HTTPS keep-alive (`listen ... ssl`), optionally requiring client certificates.
    pub fn start_with(tls: NginxTls) -> Option<Nginx> {
        let bin = require("nginx")?;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("www")).unwrap();
        std::fs::write(root.join("www/index.html"), "hello from nginx\n").unwrap();
        let guard = one_at_a_time();
        let r = root.display().to_string();
        let (addr, child) = start_on_free_port("nginx", |port| {
            let conf = format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\npid {r}/nginx.pid;\nerror_log {r}/error.log;\n\
                 events {{ worker_connections 4096; }}\n\
                 http {{\n  access_log {r}/access.log;\n  client_body_temp_path {r}/body;\n  proxy_temp_path {r}/proxy;\n\
                   fastcgi_temp_path {r}/fastcgi;\n  uwsgi_temp_path {r}/uwsgi;\n  scgi_temp_path {r}/scgi;\n\
                   keepalive_requests 1000000;\n  keepalive_timeout 60s;\n\
                   server {{ listen 127.0.0.1:{port}{}; location / {{ root {r}/www; }} }}\n}}\n",
                nginx_tls_directives(&tls)
            );
            std::fs::write(format!("{r}/nginx.conf"), conf).unwrap();
            Command::new(&bin)
                .args(["-p", &r, "-c", &format!("{r}/nginx.conf")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn nginx")
        });
        Some(Nginx { addr, dir, _child: Owned(child), _guard: guard })
    }

    /// The access log's lines, one per request answered.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// Lines in the access log: one per request nginx answered.
    pub fn access_log_lines(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("access.log")).map(|s| s.lines().count()).unwrap_or(0)
    }
}

/// The `listen` suffix and ssl_* directives for a `server { }` block.
fn nginx_tls_directives(tls: &NginxTls) -> String {
    let (files, verify) = match tls {
        NginxTls::Off => return String::new(),
        NginxTls::On(files) => (files, false),
        NginxTls::RequireClientCert(files) => (files, true),
    };
    let mut text = format!(
        " ssl; ssl_certificate {}; ssl_certificate_key {}; ssl_session_cache shared:SSL:1m; \
         ssl_session_tickets on",
        files.cert.display(),
        files.key.display()
    );
    if verify {
        text += &format!("; ssl_client_certificate {}; ssl_verify_client on", files.ca.display());
    }
    text
}

/// Waits until something accepts on the Unix socket at `path`.
fn wait_unix_listening(path: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not listen on {} within 10 s", path.display());
}

/// A Prometheus server (Debian's `prometheus`) on a free loopback port, with its
/// own TSDB in a temp dir, scraping `target` every second.
pub struct Prometheus {
    pub addr: SocketAddr,
    _child: Owned,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts one that scrapes `target`'s `/metrics` each second, or None (after
    /// saying why) without the `prometheus` binary.
    pub fn start(target: SocketAddr) -> Option<Prometheus> {
        let binary = require("prometheus")?;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: loadmux\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let _guard = one_at_a_time();
        let (addr, child) = start_on_free_port("prometheus", |port| {
            Command::new(&binary)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start prometheus")
        });
        Some(Prometheus { addr, _child: Owned(child), _dir: dir })
    }

    /// The value of an instant PromQL `query` (its first series), or None when it
    /// has no result.
    pub fn query(&self, query: &str) -> Option<f64> {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let encoded: String = query
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"_-.".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        // HTTP/1.0: the answer comes whole (no chunks) and ends with the connection.
        write!(stream, "GET /api/v1/query?query={encoded} HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"));
        assert_eq!(json["status"], "success", "{answer}");
        json["data"]["result"][0]["value"][1].as_str().map(|v| v.parse().unwrap())
    }
}
