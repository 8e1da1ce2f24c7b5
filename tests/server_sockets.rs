//! The built-in servers' sockets: every mode on a Unix stream socket
//! (`--listen unix:PATH`), the socket file's life (removed on exit, a stale one
//! replaced, a live one or a non-socket refused), the library's `ServerHandle`
//! reporting the path, and closes noticed on TCP and Unix alike.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use common::{loadmux, Serve};
use loadmux::server::{ListenAddr, ServerConfig};

fn connect(path: &Path) -> UnixStream {
    let stream = UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream
}

/// Reads exactly `n` bytes (the read timeout bounds it).
fn read_n(stream: &mut UnixStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    stream.read_exact(&mut buf).expect("read the answer");
    buf
}

#[test]
fn every_mode_serves_a_unix_socket() {
    let echo = Serve::start_unix(&["--mode", "echo", "--threads", "2"]);
    for _ in 0..10 {
        let mut c = connect(&echo.unix_path());
        c.write_all(b"hello\n").unwrap();
        assert_eq!(read_n(&mut c, 6), b"hello\n");
    }
    let http = Serve::start_unix(&["--mode", "http"]);
    let mut c = connect(&http.unix_path());
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(read_n(&mut c, 17).starts_with(b"HTTP/1.1 200 OK\r\n"));
    let source = Serve::start_unix(&["--mode", "source"]);
    assert_eq!(read_n(&mut connect(&source.unix_path()), 200_000).len(), 200_000);
    let sink = Serve::start_unix(&["--mode", "sink"]);
    connect(&sink.unix_path()).write_all(&[b's'; 50_000]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(sink.stop().contains("received 50000 bytes"));
    let chaos = Serve::start_unix(&["--mode", "chaos", "--close-after", "3"]);
    let mut c = connect(&chaos.unix_path());
    c.write_all(b"hello").unwrap();
    let mut all = Vec::new();
    c.read_to_end(&mut all).unwrap();
    assert_eq!(all, b"hel", "closed after 3 bytes");
}

#[test]
fn the_socket_file_is_removed_on_sigterm_and_on_sigint() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let server = Serve::start_unix(&[]);
        let path = server.unix_path();
        assert!(path.exists());
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(server.pid() as libc::pid_t, signal) };
        let summary = server.stop();
        assert!(summary.contains("stopped by signal"), "{summary}");
        assert!(!path.exists(), "signal {signal}: {} left behind", path.display());
    }
}

#[test]
fn a_stale_socket_file_is_replaced_but_a_live_server_and_other_files_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stale.sock");
    // A server that died without cleaning up: its file stays, nobody listens.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let listen = format!("unix:{}", path.display());
    let config = ServerConfig { listen: listen.parse().unwrap(), ..ServerConfig::echo("127.0.0.1:0".parse().unwrap()) };
    let live = loadmux::server::start(config).expect("a stale file is replaced");
    assert_eq!(live.local_addr(), ListenAddr::Unix(path.clone()));
    let mut c = connect(&path);
    c.write_all(b"hi").unwrap();
    assert_eq!(read_n(&mut c, 2), b"hi");

    // A second server on the same path: refused, one line, exit 2.
    let out = loadmux().args(["serve", "--listen", &listen]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(err.trim(), format!("loadmux serve: cannot listen on {listen}: another server is listening there"));
    c.write_all(b"still").unwrap();
    assert_eq!(read_n(&mut c, 5), b"still", "the live server was not disturbed");

    drop(live); // Dropping the handle stops the server and removes its file.
    assert!(!path.exists());

    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "keep me").unwrap();
    let out = loadmux().args(["serve", "--listen", &format!("unix:{}", file.display())]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists and is not a socket"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

#[test]
fn a_bad_listen_address_is_one_line_and_exit_2() {
    for bad in ["unix:", "localhost:80", "127.0.0.1"] {
        let out = loadmux().args(["serve", "--listen", bad]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert_eq!(err.lines().count(), 1, "{bad}: {err}");
        assert!(err.contains("--listen"), "{bad}: {err}");
    }
}

#[test]
fn a_close_that_comes_with_the_last_data_is_noticed_on_tcp_and_unix() {
    // Data and FIN in one readiness edge: sink stops at the short read, and no edge
    // follows for the EOF. Before the fix, most of these stayed open forever.
    for server in [Serve::start(&["--mode", "sink"]), Serve::start_unix(&["--mode", "sink"])] {
        for _ in 0..20 {
            if server.target.starts_with("unix:") {
                connect(&server.unix_path()).write_all(&[b'x'; 1000]).unwrap();
            } else {
                std::net::TcpStream::connect(server.addr).unwrap().write_all(&[b'x'; 1000]).unwrap();
            } // Dropped: closed right after the data.
        }
        std::thread::sleep(Duration::from_millis(500));
        let summary = server.stop();
        assert!(summary.contains("accepted 20 connections (20 closed)"), "{summary}");
    }
}
