//! `loadmux run` over TLS and Unix sockets against servers nobody here wrote:
//! Debian's nginx (`ssl`) and redis-server (`--tls-port`, `--unixsocket`), with
//! certificates the test makes (`common/pki.rs`). Counts are checked against the
//! servers' own.
#![cfg(feature = "tls")]

mod common;

use common::pki::Pki;
use common::real_servers::{Nginx, NginxTls, Redis, TlsFiles};
use common::*;

const GET: &str = "GET / HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n";

fn files(pki: &Pki) -> TlsFiles {
    TlsFiles { cert: pki.server_cert.clone(), key: pki.server_key.clone(), ca: pki.ca.clone() }
}

#[test]
fn https_keep_alive_gets_against_nginx_match_its_access_log() {
    let pki = Pki::new();
    let Some(nginx) = Nginx::start_with(NginxTls::On(files(&pki))) else { return };
    let target = format!("https://localhost:{}", nginx.addr.port());
    let ca = pki.ca.display().to_string();
    let report = run_report(&[&target, "--cacert", &ca, "-m", GET, "--expect", "http", "-c", "20", "-n", "5000"]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    assert_eq!(count(&report, "/requests/completed"), 5000);
    assert_eq!(count(&report, "/http_status/2xx"), 5000);
    // Keep-alive: one full handshake per connection, not per request.
    assert_eq!(count(&report, "/tls/handshakes_full"), 20, "{}", report["tls"]);
    assert_eq!(nginx.access_log_lines(), 5000, "nginx answered exactly the requests loadmux completed");
    let tls = &report["tls"];
    assert!(tls["version"].as_str().is_some_and(|v| v.starts_with("TLSv1.")), "{tls}");
}

#[test]
fn a_certificate_from_an_unknown_ca_is_refused_and_the_run_still_completes() {
    let pki = Pki::new();
    let stranger = TlsFiles { cert: pki.unknown_ca_cert.clone(), key: pki.unknown_ca_key.clone(), ca: pki.ca.clone() };
    let Some(nginx) = Nginx::start_with(NginxTls::On(stranger)) else { return };
    let target = format!("tls://127.0.0.1:{}", nginx.addr.port());
    let ca = pki.ca.display().to_string();
    // run_report asserts exit code 0: a refused certificate is a counted error, not a crash.
    let report = run_report(&[&target, "--cacert", &ca, "-m", GET, "--expect", "http", "-c", "2", "-d", "1s"]);
    assert!(count(&report, "/errors/by_kind/tls_handshake") > 0, "{report}");
    assert_eq!(count(&report, "/errors/total"), count(&report, "/errors/by_kind/tls_handshake"));
    assert_eq!(count(&report, "/connections/established"), 0);
    assert_eq!(nginx.access_log_lines(), 0);
}

#[test]
fn a_server_that_requires_a_client_certificate_accepts_ours_and_refuses_none() {
    let pki = Pki::new();
    let Some(nginx) = Nginx::start_with(NginxTls::RequireClientCert(files(&pki))) else { return };
    let target = format!("tls://127.0.0.1:{}", nginx.addr.port());
    let ca = pki.ca.display().to_string();
    let (cert, key) = (pki.client_cert.display().to_string(), pki.client_key.display().to_string());
    let with = run_report(&[
        &target, "--cacert", &ca, "--cert", &cert, "--key", &key, "-m", GET, "--expect", "http", "-c", "2", "-n", "200",
    ]);
    assert_eq!(count(&with, "/errors/total"), 0, "{with}");
    assert_eq!(count(&with, "/http_status/2xx"), 200, "{with}");
    // Without a certificate nginx finishes the handshake and answers 400 ("No
    // required SSL certificate was sent"), then closes.
    let without = run_report(&[&target, "--cacert", &ca, "-m", GET, "--expect", "http", "-c", "2", "-d", "1s"]);
    assert_eq!(count(&without, "/http_status/2xx"), 0, "{without}");
    assert!(count(&without, "/http_status/4xx") > 0, "{without}");
    assert!(nginx.access_log().lines().any(|line| line.contains("\" 400 ")), "{}", nginx.access_log());
}

#[test]
fn tls_resumption_against_nginx_is_counted() {
    let pki = Pki::new();
    let Some(nginx) = Nginx::start_with(NginxTls::On(files(&pki))) else { return };
    let target = format!("tls://127.0.0.1:{}", nginx.addr.port());
    let ca = pki.ca.display().to_string();
    let report = run_report(&[
        &target,
        "--cacert",
        &ca,
        "--mode",
        "connect",
        "-m",
        GET,
        "--expect",
        "http",
        "-c",
        "2",
        "-d",
        "1s",
        "--tls-resume",
    ]);
    let (full, resumed) = (count(&report, "/tls/handshakes_full"), count(&report, "/tls/handshakes_resumed"));
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    assert_eq!(full + resumed, count(&report, "/connections/established"));
    assert!(resumed > full, "most reconnects resume with nginx's tickets: {full} full, {resumed} resumed");
}

#[test]
fn redis_over_tls_answers_every_ping() {
    let pki = Pki::new();
    let Some(redis) = Redis::start_tls(&files(&pki)) else { return };
    let target = format!("tls://127.0.0.1:{}", redis.addr.port());
    let ca = pki.ca.display().to_string();
    let before = redis.command_calls("ping");
    let report =
        run_report(&[&target, "--cacert", &ca, "-m", "PING\\r\\n", "--expect", "line", "-c", "10", "-n", "10000"]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    assert_eq!(count(&report, "/requests/completed"), 10_000);
    assert_eq!(redis.command_calls("ping") - before, 10_000, "redis counted exactly loadmux's PINGs");
    let pipelined = run_report(&[
        &target,
        "--cacert",
        &ca,
        "-m",
        "PING\\r\\n",
        "--expect",
        "line",
        "-P",
        "16",
        "-c",
        "4",
        "-n",
        "16000",
    ]);
    assert_eq!(count(&pipelined, "/errors/total"), 0, "{pipelined}");
    assert_eq!(redis.command_calls("ping") - before, 26_000);
}

#[test]
fn redis_over_its_unix_socket_answers_every_ping() {
    let Some(redis) = Redis::start_unix() else { return };
    let path = redis.unix.clone().expect("a unix socket");
    let target = format!("unix:{}", path.display());
    let before = redis.command_calls("ping");
    let report = run_report(&[&target, "-m", "PING\\r\\n", "--expect", "line", "-c", "10", "-P", "4", "-n", "20000"]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    assert_eq!(count(&report, "/requests/completed"), 20_000);
    assert_eq!(redis.command_calls("ping") - before, 20_000);
    assert_eq!(report["config"]["targets"][0], target);
}
