//! The TLS and Unix-socket servers the client tests load, each checked with clients
//! we did not write: curl and `openssl s_client` (OpenSSL), Python's `ssl` module
//! (OpenSSL too, `tests/data/tls_client.py`) and redis-cli. Two kinds of servers:
//! Debian's nginx and redis-server with TLS or a Unix socket (`common/real_servers.rs`),
//! and loadmux's own `serve --tls` / `--listen unix:` in every mode, chaos faults
//! included. A missing tool fails under CI=true and is a loud skip otherwise.
#![cfg(feature = "tls")]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::pki::Pki;
use common::real_servers::{require, Nginx, NginxTls, Redis, TlsFiles};
use common::Serve;
use serde_json::Value;

/// The test PKI's files for a server with the trusted CA's certificate.
fn trusted(pki: &Pki) -> TlsFiles {
    TlsFiles { cert: pki.server_cert.clone(), key: pki.server_key.clone(), ca: pki.ca.clone() }
}

/// Runs a tool with a 20 s limit (`timeout` from coreutils), so no test can hang.
fn run_tool(tool: &Path, args: &[&str]) -> Output {
    Command::new("timeout").arg("20").arg(tool).args(args).output().expect("run the tool")
}

/// `curl -sS ARGS`: (exit code, stdout, stderr).
fn curl(args: &[&str]) -> Option<(i32, String, String)> {
    let out = run_tool(&require("curl")?, &[&["-sS"], args].concat());
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Some((out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr)))
}

/// `tests/data/tls_client.py ARGS` against a `loadmux serve --tls` (TCP or Unix),
/// trusting its generated CA; returns the script's JSON verdict.
fn python_tls(server: &Serve, args: &[&str]) -> Option<Value> {
    python_tls_to(&server.target, server.ca.as_ref().expect("a server with a generated CA"), args)
}

/// The same against any `target` (`IP:PORT` or `unix:PATH`), trusting `ca`.
fn python_tls_to(target: &str, ca: &Path, args: &[&str]) -> Option<Value> {
    let python = require("python3")?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tls_client.py");
    let ca = ca.to_str().unwrap();
    let target = match target.strip_prefix("unix:") {
        Some(path) => ["--unix", path],
        None => ["--connect", target],
    };
    let mut all: Vec<&str> = vec![script, "--cafile", ca, target[0], target[1]];
    all.extend_from_slice(args);
    let out = run_tool(&python, &all);
    assert!(out.status.success(), "tls_client.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Some(serde_json::from_slice(&out.stdout).expect("tls_client.py prints JSON"))
}

// ---- The harness: Debian's servers with TLS and Unix sockets ----

#[test]
fn nginx_with_ssl_answers_keep_alive_https_gets_and_logs_each() {
    let pki = Pki::new();
    let Some(nginx) = Nginx::start_with(NginxTls::On(trusted(&pki))) else { return };
    let url = format!("https://localhost:{}/", nginx.addr.port());
    let ca = pki.ca.to_str().unwrap();
    // Two URLs in one curl: the second GET reuses the connection (keep-alive).
    let Some((code, body, err)) = curl(&["-v", "--cacert", ca, &url, &url]) else { return };
    assert_eq!(code, 0, "curl: {err}");
    assert_eq!(body, "hello from nginx\n".repeat(2));
    assert!(err.contains("Re-using existing connection"), "keep-alive expected: {err}");
    assert_eq!(nginx.access_log_lines(), 2, "{}", nginx.access_log());
}

#[test]
fn nginx_requiring_a_client_certificate_refuses_curl_without_one() {
    let pki = Pki::new();
    let Some(nginx) = Nginx::start_with(NginxTls::RequireClientCert(trusted(&pki))) else { return };
    let url = format!("https://127.0.0.1:{}/", nginx.addr.port());
    let ca = pki.ca.to_str().unwrap();
    let status = ["-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca];
    let Some((_, without, _)) = curl(&[&status[..], &[&url]].concat()) else { return };
    assert_eq!(without, "400", "nginx answers 400 when no client certificate was sent");
    let with_cert = ["--cert", pki.client_cert.to_str().unwrap(), "--key", pki.client_key.to_str().unwrap()];
    let Some((code, with, err)) = curl(&[&status[..], &with_cert, &[&url]].concat()) else { return };
    assert_eq!((code, with.as_str()), (0, "200"), "{err}");
}

#[test]
fn a_certificate_from_the_unknown_ca_is_rejected_by_curl_but_is_a_valid_chain() {
    let pki = Pki::new();
    let files = TlsFiles { cert: pki.unknown_ca_cert.clone(), key: pki.unknown_ca_key.clone(), ca: pki.ca.clone() };
    let Some(nginx) = Nginx::start_with(NginxTls::On(files)) else { return };
    let url = format!("https://localhost:{}/", nginx.addr.port());
    let Some((code, _, err)) = curl(&["--cacert", pki.ca.to_str().unwrap(), &url]) else { return };
    assert_eq!(code, 60, "curl exit 60 is 'peer certificate cannot be authenticated': {err}");
    // The same certificate checks out against its own CA: the rejection above is
    // about trust, not a broken certificate.
    let Some((code, body, err)) = curl(&["--cacert", pki.unknown_ca.to_str().unwrap(), &url]) else { return };
    assert_eq!((code, body.as_str()), (0, "hello from nginx\n"), "{err}");
}

#[test]
fn redis_on_its_tls_port_answers_redis_cli_tls_ping() {
    let pki = Pki::new();
    let Some(redis) = Redis::start_tls(&trusted(&pki)) else { return };
    assert_eq!(redis.cli(&["PING"]), "PONG\n");
    // The port speaks only TLS: a plaintext PING gets no PONG.
    let mut plain = std::net::TcpStream::connect(redis.addr).unwrap();
    plain.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
    use std::io::{Read, Write};
    plain.write_all(b"PING\r\n").unwrap();
    let mut answer = [0u8; 16];
    let n = plain.read(&mut answer).unwrap_or(0);
    assert!(!answer[..n].starts_with(b"+PONG"), "plaintext was answered on the TLS port");
}

#[test]
fn redis_on_a_unix_socket_answers_redis_cli_s_ping() {
    let Some(redis) = Redis::start_unix() else { return };
    assert_eq!(redis.cli_unix(&["PING"]), "PONG\n");
    assert_eq!(redis.cli_unix(&["SET", "k", "v"]), "OK\n");
    assert_eq!(redis.cli(&["GET", "k"]), "v\n", "the same server on TCP");
}

// ---- loadmux serve --tls, checked with OpenSSL's clients ----

#[test]
fn serve_tls_http_answers_curl_with_the_generated_ca_and_offers_alpn() {
    let server = Serve::start_tls(&["--mode", "http", "--alpn", "h2,http/1.1"]);
    let ca = server.ca.as_ref().unwrap().to_str().unwrap().to_string();
    let port = server.addr.port();
    for url in [format!("https://127.0.0.1:{port}/"), format!("https://localhost:{port}/x")] {
        let Some((code, body, err)) = curl(&["-v", "--http1.1", "--cacert", &ca, &url, &url]) else { return };
        assert_eq!((code, body.as_str()), (0, "xxxxx\nxxxxx\n"), "{err}");
        assert!(err.contains("ALPN: server accepted http/1.1"), "{err}");
        assert!(err.contains("Re-using existing connection"), "keep-alive: {err}");
    }
    let summary = server.stop();
    assert!(summary.contains("4 http requests") && summary.contains("2 TLS handshakes"), "{summary}");
}

#[test]
fn serve_tls_prints_the_cacert_hint_and_removes_its_default_ca_on_exit() {
    use std::io::BufRead;
    let mut child = common::loadmux()
        .args(["serve", "--tls", "--listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines().map_while(Result::ok);
    let _listening = lines.next();
    let hint = lines.next().unwrap_or_default();
    let ca = hint.split_whitespace().last().unwrap_or_default().to_string();
    assert!(hint.starts_with("loadmux: TLS with a generated certificate; clients: --cacert "), "{hint}");
    assert!(ca.ends_with(&format!("loadmux-ca-{}.pem", child.id())), "{hint}");
    let pem = std::fs::read_to_string(&ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    assert!(!Path::new(&ca).exists(), "the default CA file is removed on exit");
}

#[test]
fn serve_tls_with_given_files_requires_client_certificates_with_client_ca() {
    let pki = Pki::new();
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let (cert, key, ca) = (path(&pki.server_cert), path(&pki.server_key), path(&pki.ca));
    let server = Serve::start_tls(&["--mode", "http", "--cert", &cert, "--key", &key, "--client-ca", &ca]);
    let url = format!("https://localhost:{}/", server.addr.port());
    let Some((code, _, err)) = curl(&["--cacert", &ca, &url]) else { return };
    assert_ne!(code, 0, "no client certificate: the handshake must fail ({err})");
    let (client_cert, client_key) = (path(&pki.client_cert), path(&pki.client_key));
    let Some((code, body, err)) = curl(&["--cacert", &ca, "--cert", &client_cert, "--key", &client_key, &url]) else {
        return;
    };
    assert_eq!((code, body.as_str()), (0, "xxxxx\n"), "{err}");
    // A client certificate from the unknown CA is refused too.
    let stranger = [path(&pki.unknown_ca_cert), path(&pki.unknown_ca_key)];
    let Some((code, _, err)) = curl(&["--cacert", &ca, "--cert", &stranger[0], "--key", &stranger[1], &url]) else {
        return;
    };
    assert_ne!(code, 0, "a client certificate nobody trusts must be refused ({err})");
}

#[test]
fn serve_tls_resumes_sessions_for_openssl_s_client_with_tls_1_3_and_1_2() {
    let Some(openssl) = require("openssl") else { return };
    let server = Serve::start_tls(&["--mode", "echo"]);
    let ca = server.ca.as_ref().unwrap().to_str().unwrap().to_string();
    let target = server.target.clone();
    for version in ["-tls1_3", "-tls1_2"] {
        let session = server.dir().join(format!("session{version}.pem"));
        let session = session.to_str().unwrap();
        let base = ["s_client", version, "-connect", &target, "-CAfile", &ca, "-verify_return_error"];
        let first = s_client(&openssl, &[&base[..], &["-sess_out", session]].concat());
        let again = s_client(&openssl, &[&base[..], &["-sess_in", session]].concat());
        assert!(first.contains("\nNew, TLSv1."), "{version} first: {first}");
        assert!(again.contains("\nReused, TLSv1."), "{version} resumed: {again}");
    }
    let summary = server.stop();
    assert!(summary.contains("4 TLS handshakes (2 resumed)"), "{summary}");
}

/// `openssl ARGS` with its stdin held open for half a second, long enough for the
/// session ticket that a TLS 1.3 server sends after the handshake to arrive (with
/// stdin closed at once, s_client may quit before it and save no session). Stdout.
fn s_client(openssl: &Path, args: &[&str]) -> String {
    let mut child = Command::new("timeout")
        .arg("20")
        .arg(openssl)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    std::thread::sleep(std::time::Duration::from_millis(500));
    drop(stdin); // EOF: s_client says close_notify and exits.
    String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).into_owned()
}

/// Each mode over TLS, on TCP and on a Unix socket, through Python's `ssl`: what it
/// answers, and that it answers our close_notify with its own.
fn every_mode_over_tls(start: fn(&[&str]) -> Serve) {
    let echo = start(&["--mode", "echo"]);
    let Some(v) = python_tls(&echo, &["--send", "hello\n", "--read", "6"]) else { return };
    assert_eq!((&v["handshake"], &v["received"], &v["end"]), (&"ok".into(), &"hello\n".into(), &"enough".into()));
    assert_eq!(v["goodbye"], "close_notify", "{v}");

    let http = start(&["--mode", "http"]);
    let request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let v = python_tls(&http, &["--send", request, "--read", "80"]).unwrap();
    assert!(v["received"].as_str().unwrap().starts_with("HTTP/1.1 200 OK\r\n"), "{v}");

    // "Connection: close": the answer, then the server's close_notify.
    let closing = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let v = python_tls(&http, &["--send", closing, "--read", "1000"]).unwrap();
    assert!(v["received"].as_str().unwrap().starts_with("HTTP/1.1 200 OK\r\n"), "{v}");
    assert_eq!(v["end"], "close_notify", "{v}");

    let source = start(&["--mode", "source"]);
    let v = python_tls(&source, &["--read", "300000"]).unwrap();
    assert_eq!((v["end"].as_str(), v["received"].as_str().map(str::len)), (Some("enough"), Some(300_000)), "{v}");

    let sink = start(&["--mode", "sink"]);
    let big = "s".repeat(100_000);
    let v = python_tls(&sink, &["--send", &big, "--read", "0"]).unwrap();
    assert_eq!(v["goodbye"], "close_notify", "{v}");
    let summary = sink.stop();
    assert!(summary.contains("received 100000 bytes"), "{summary}");
}

#[test]
fn every_mode_works_over_tls_on_tcp() {
    every_mode_over_tls(Serve::start_tls);
}

#[test]
fn every_mode_works_over_tls_on_a_unix_socket() {
    every_mode_over_tls(Serve::start_unix_tls);
}

#[test]
fn chaos_faults_work_under_tls() {
    let delayed = Serve::start_tls(&["--mode", "chaos", "--delay", "300ms"]);
    let Some(v) = python_tls(&delayed, &["--send", "hello", "--read", "5"]) else { return };
    assert_eq!(v["received"], "hello");
    assert!(v["ms"].as_f64().unwrap() >= 295.0, "answered after {} ms, not 300", v["ms"]);

    let corrupt = Serve::start_tls(&["--mode", "chaos", "--corrupt"]);
    let v = python_tls(&corrupt, &["--send", "hello", "--read", "5"]).unwrap();
    assert_eq!(v["received"], "\u{97}ello", "the first byte flipped (0x68 ^ 0xff), inside TLS");

    // A fault closes abruptly: no close_notify, so the client sees a truncation.
    let closing = Serve::start_tls(&["--mode", "chaos", "--close-after", "3"]);
    let v = python_tls(&closing, &["--send", "hello", "--read", "5"]).unwrap();
    assert_eq!((&v["received"], &v["end"]), (&"hel".into(), &"eof".into()), "{v}");

    // Python's ssl reports a reset as an EOF; the kernel's error, seen through a
    // plain rustls client on a blocking socket, says which it was.
    let resetting = Serve::start_tls(&["--mode", "chaos", "--reset-after", "3"]);
    let (received, end) = rustls_exchange(&resetting, b"hello", 5);
    assert_eq!(
        (received.as_slice(), end.map_err(|e| e.kind())),
        (&b"hel"[..], Err(std::io::ErrorKind::ConnectionReset))
    );

    let flooding = Serve::start_tls(&["--mode", "chaos", "--flood"]);
    let v = python_tls(&flooding, &["--send", "go", "--read", "200000"]).unwrap();
    assert_eq!(v["end"], "enough", "an endless stream after the first read: {v}");

    let dripping = Serve::start_tls(&["--mode", "chaos", "--drip", "20ms"]);
    let v = python_tls(&dripping, &["--send", "hello", "--read", "5"]).unwrap();
    assert_eq!(v["received"], "hello");
    assert!(v["ms"].as_f64().unwrap() >= 75.0, "5 bytes at 20 ms each took {} ms", v["ms"]);
}

#[test]
fn data_and_close_notify_in_one_segment_get_a_close_notify_back() {
    // The server reads the data and the client's end in one go; no readiness edge
    // follows, so it must look again by itself (TlsSocket::end_unreported). Sink
    // mode, because an answer's ACK would bring a writable edge and hide a bug.
    use std::io::{Read, Write};
    let server = Serve::start_tls(&["--mode", "sink"]);
    let (mut tls, mut socket) = rustls_client(&server);
    while tls.is_handshaking() {
        tls.complete_io(&mut socket).unwrap();
    }
    // Let the ACKs of the server's last writes (its session tickets) go by, so that
    // no writable edge comes after our segment either.
    std::thread::sleep(std::time::Duration::from_millis(300));
    tls.writer().write_all(b"hello").unwrap();
    tls.send_close_notify();
    let mut segment = Vec::new();
    while tls.wants_write() {
        tls.write_tls(&mut segment).unwrap();
    }
    socket.write_all(&segment).unwrap(); // One write: data and close_notify together.
    let mut stream = rustls::Stream::new(&mut tls, &mut socket);
    let mut answer = Vec::new();
    let end = stream.read_to_end(&mut answer);
    assert_eq!(answer, b"", "sink answers nothing");
    // read_to_end ends cleanly only on the server's close_notify; a bare close
    // would be UnexpectedEof, and no answer at all a timeout.
    assert!(end.is_ok(), "{end:?}");
}

/// A rustls client connection (not yet handshaken) to `server`, trusting its
/// generated CA, on a blocking socket with a 5 s read timeout.
fn rustls_client(server: &Serve) -> (rustls::ClientConnection, std::net::TcpStream) {
    use rustls::pki_types::pem::PemObject;
    use std::sync::Arc;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(server.ca.as_ref().unwrap()).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tls = rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let socket = std::net::TcpStream::connect(server.addr).unwrap();
    socket.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    (tls, socket)
}

/// A blocking rustls client: sends `message` and reads until `want` bytes, an error
/// or the end; returns what it read and how reading ended (`Ok(())`: enough).
fn rustls_exchange(server: &Serve, message: &[u8], want: usize) -> (Vec<u8>, Result<(), std::io::Error>) {
    use std::io::{Read, Write};
    let (mut tls, mut socket) = rustls_client(server);
    let mut stream = rustls::Stream::new(&mut tls, &mut socket);
    let mut received = Vec::new();
    let end = stream.write_all(message).and_then(|()| {
        let mut buf = [0u8; 4096];
        while received.len() < want {
            match stream.read(&mut buf)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => received.extend_from_slice(&buf[..n]),
            }
        }
        Ok(())
    });
    (received, end)
}

// ---- Servers for the client's handshake-failure tests ----

#[test]
fn stalling_servers_never_finish_a_tls_handshake() {
    // Each accepts the connection, then never answers the ClientHello: the client's
    // handshake must time out (loadmux: connect_timeout).
    for (args, tls) in [
        (&["--mode", "chaos", "--no-read"][..], true),
        (&["--mode", "chaos", "--stall-at", "0s", "--stall-for", "1h"][..], true),
        (&["--mode", "chaos", "--never-accept"][..], true), // In the backlog, never accepted.
        (&["--mode", "chaos", "--no-read"][..], false),     // Plain TCP stalls a TLS client too.
    ] {
        let server = if tls { Serve::start_tls(args) } else { Serve::start(args) };
        // The plaintext server has no CA; any will do, the handshake never gets far.
        let pki = Pki::new();
        let ca = server.ca.clone().unwrap_or(pki.ca.clone());
        let Some(v) = python_tls_to(&server.target, &ca, &["--timeout", "1"]) else { return };
        assert_eq!(v["handshake"], "timeout", "{args:?} (tls {tls}): {v}");
    }
}

#[test]
fn accept_close_ends_a_tls_handshake_with_eof() {
    let server = Serve::start_tls(&["--mode", "chaos", "--accept-close"]);
    let Some(v) = python_tls(&server, &["--timeout", "5"]) else { return };
    assert_eq!(v["handshake"], "eof", "{v}");
}

#[test]
fn a_plaintext_client_on_the_tls_port_is_dropped_and_the_server_carries_on() {
    use std::io::{Read, Write};
    let server = Serve::start_tls(&["--mode", "echo"]);
    let mut plain = std::net::TcpStream::connect(server.addr).unwrap();
    plain.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    plain.write_all(b"hello, this is not TLS\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    // rustls answers garbage with a fatal alert record (content type 21), then closes.
    assert!(answer.is_empty() || answer[0] == 21, "not an alert: {answer:?}");
    let v = python_tls(&server, &["--send", "ok", "--read", "2"]).unwrap();
    assert_eq!(v["received"], "ok", "the next client is served");
}
