//! `loadmux record --upstream tls://`: plaintext clients (redis-benchmark, curl)
//! recorded through the proxy to servers that speak only TLS (Debian's redis-server
//! with `--tls-port`, nginx with `ssl`), and a TLS recording replayed over TLS. The
//! servers' own counts and logs are the reference.
#![cfg(feature = "tls")]

mod common;

use std::process::Command;
use std::time::Duration;

use common::pki::Pki;
use common::real_servers::{require, Nginx, NginxTls, Redis, TlsFiles};
use common::recorder::{run_bounded, summary_count, RecordProxy};
use common::*;
use loadmux::replay::format::CloseReason;

fn files(pki: &Pki) -> TlsFiles {
    TlsFiles { cert: pki.server_cert.clone(), key: pki.server_key.clone(), ca: pki.ca.clone() }
}

/// Steps whose request starts with `prefix` (a RESP command's first bytes).
fn steps_starting(recording: &loadmux::replay::Recording, prefix: &[u8]) -> usize {
    recording.sessions.iter().flat_map(|s| &s.steps).filter(|s| s.request.starts_with(prefix)).count()
}

#[test]
fn redis_benchmark_is_recorded_through_a_tls_upstream_and_the_recording_replays_over_tls() {
    let pki = Pki::new();
    let Some(redis) = Redis::start_tls(&files(&pki)) else { return };
    let Some(bench) = require("redis-benchmark") else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("redis-tls.lmxrec");
    let upstream = format!("tls://127.0.0.1:{}", redis.addr.port());
    let ca = pki.ca.display().to_string();

    let proxy = RecordProxy::start_with(&upstream, &path, &["--cacert", &ca]);
    let port = proxy.addr.port().to_string();
    run_bounded(
        Command::new(bench).args(["-h", "127.0.0.1", "-p", &port, "-t", "set,get", "-n", "2000", "-c", "5", "-q"]),
        Duration::from_secs(60),
    );
    let (summary, recording) = proxy.stop();
    assert_eq!(redis.command_calls("set"), 2000, "redis (over TLS) executed every SET");
    assert_eq!(redis.command_calls("get"), 2000);
    // The recording holds plaintext RESP: one step per command redis executed.
    assert_eq!(steps_starting(&recording, b"*3\r\n$3\r\nSET\r\n"), 2000, "{summary}");
    assert_eq!(steps_starting(&recording, b"*2\r\n$3\r\nGET\r\n"), 2000, "{summary}");
    assert_eq!(summary_count(&summary, "failed"), 0, "{summary}");
    // A clean end on both sides: the client's FIN went up as close_notify + FIN.
    assert!(recording.sessions.iter().all(|s| s.closed == Some(CloseReason::Clean)), "{summary}");

    // Replayed over TLS: every completed step executed once.
    let executed = || redis.command_calls("set") + redis.command_calls("get") + redis.command_calls("config|get") / 2;
    let before = executed();
    let report =
        run_report(&[&upstream, "--cacert", &ca, "--replay", path.to_str().unwrap(), "-c", "10", "-n", "3000"]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    assert_eq!(count(&report, "/requests/completed"), 3000);
    assert_eq!(executed() - before, 3000, "each replayed step was executed once");
}

#[test]
fn curl_through_a_tls_upstream_is_recorded_step_by_step_and_closes_cleanly() {
    let pki = Pki::new();
    let Some(nginx) = Nginx::start_with(NginxTls::On(files(&pki))) else { return };
    let Some(curl) = require("curl") else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nginx-tls.lmxrec");
    // By name: the certificate is checked against `localhost`.
    let upstream = format!("tls://localhost:{}", nginx.addr.port());
    let proxy = RecordProxy::start_with(&upstream, &path, &["--cacert", &pki.ca.display().to_string()]);
    let url = format!("http://{}/", proxy.addr);
    let out =
        run_bounded(Command::new(&curl).args(["-s", "--fail", "--http1.1", &url, &url, &url]), Duration::from_secs(20));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from nginx\n".repeat(3));
    run_bounded(Command::new(&curl).args(["-s", "--fail", "-o", "/dev/null", &url, &url]), Duration::from_secs(20));
    let (summary, recording) = proxy.stop();

    let steps: Vec<usize> = recording.sessions.iter().map(|s| s.steps.len()).collect();
    assert_eq!(steps, [3, 2], "sessions and their steps: {summary}");
    assert_eq!(nginx.access_log_lines(), 5, "nginx answered each request over TLS");
    for step in recording.sessions.iter().flat_map(|s| &s.steps) {
        assert!(step.request.starts_with(b"GET / HTTP/1.1\r\n"), "plaintext recorded");
        assert!(step.answer_len > "hello from nginx\n".len(), "the decrypted answer was recorded");
    }
    assert!(recording.sessions.iter().all(|s| s.closed == Some(CloseReason::Clean)), "{summary}");
}

#[test]
fn an_upstream_certificate_from_an_unknown_ca_fails_the_session_unless_insecure() {
    let pki = Pki::new();
    let stranger = TlsFiles { cert: pki.unknown_ca_cert.clone(), key: pki.unknown_ca_key.clone(), ca: pki.ca.clone() };
    let Some(nginx) = Nginx::start_with(NginxTls::On(stranger)) else { return };
    let Some(curl) = require("curl") else { return };
    let dir = tempfile::tempdir().unwrap();
    let upstream = format!("tls://127.0.0.1:{}", nginx.addr.port());

    let refused = dir.path().join("refused.lmxrec");
    let proxy = RecordProxy::start_with(&upstream, &refused, &["--cacert", &pki.ca.display().to_string()]);
    let url = format!("http://{}/", proxy.addr);
    let out = Command::new(&curl).args(["-s", "--fail", "--max-time", "20", &url]).output().unwrap();
    // The proxy passes the upstream's failure on as a reset: 56 (reset while
    // reading), 52 (empty reply), or 7 when the reset beat curl's own connect check.
    assert!(matches!(out.status.code(), Some(7 | 52 | 56)), "the client sees its connection fail: {out:?}");
    let (summary, recording) = proxy.stop();
    assert_eq!(summary_count(&summary, "failed"), 1, "{summary}");
    assert_eq!(recording.sessions.len(), 1);
    assert_eq!(recording.sessions[0].closed, Some(CloseReason::UpstreamError));
    assert_eq!(nginx.access_log_lines(), 0, "nothing reached nginx");

    let accepted = dir.path().join("insecure.lmxrec");
    let proxy = RecordProxy::start_with(&upstream, &accepted, &["--insecure"]);
    let url = format!("http://{}/", proxy.addr);
    let out = run_bounded(Command::new(&curl).args(["-s", "--fail", &url]), Duration::from_secs(20));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from nginx\n");
    let (summary, recording) = proxy.stop();
    assert_eq!(summary_count(&summary, "failed"), 0, "{summary}");
    assert_eq!(recording.steps(), 1);
}
