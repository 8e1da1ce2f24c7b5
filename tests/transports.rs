//! Every mode and framing over TLS and over a Unix socket, against the built-in
//! servers (`loadmux serve --tls`, `loadmux serve --listen unix:PATH`). Plain TCP
//! runs the same workloads in `modes.rs`, `run_core.rs` and `real_servers.rs`.
//! Real TLS servers (nginx, redis-server) are in `tls_real_servers.rs`.

mod common;

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Stdio};

use common::*;

/// How the client reaches the server.
#[derive(Clone, Copy, Debug)]
enum Over {
    Tls,
    Unix,
}

/// A `loadmux serve` child over TLS (with a generated certificate, whose CA the
/// client trusts) or on a Unix socket, killed on drop.
struct Server {
    child: Child,
    /// The target to pass to `run`.
    target: String,
    /// Flags `run` needs to reach it (`--cacert CA`).
    client_flags: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(over: Over, args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let socket: PathBuf = dir.path().join("s.sock");
        let mut command = loadmux();
        command.arg("serve").args(args);
        match over {
            Over::Tls => command.args(["--tls", "--listen", "127.0.0.1:0", "--ca-out", ca.to_str().unwrap()]),
            Over::Unix => command.args(["--listen", &format!("unix:{}", socket.display())]),
        };
        let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn loadmux serve");
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let listening = first.split_whitespace().skip_while(|w| *w != "on").nth(1).unwrap_or_default().to_string();
        assert!(!listening.is_empty(), "loadmux serve {args:?} over {over:?} did not start: {first:?}");
        std::thread::spawn(move || lines.for_each(drop));
        let (target, client_flags) = match over {
            Over::Tls => (format!("tls://{listening}"), vec!["--cacert".to_string(), ca.display().to_string()]),
            Over::Unix => (format!("unix:{}", socket.display()), Vec::new()),
        };
        Server { child, target, client_flags, _dir: dir }
    }

    /// `loadmux run TARGET ARGS` against this server; the report.
    fn run(&self, args: &[&str]) -> serde_json::Value {
        let mut all: Vec<&str> = vec![&self.target];
        all.extend(self.client_flags.iter().map(String::as_str));
        all.extend_from_slice(args);
        run_report(&all)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A workload: the server's flags, the client's flags, and what must hold.
struct Case {
    name: &'static str,
    serve: &'static [&'static str],
    run: &'static [&'static str],
    check: fn(&serde_json::Value),
}

fn completes_without_errors(report: &serde_json::Value) {
    assert!(count(report, "/requests/completed") > 50, "{report}");
    assert_eq!(count(report, "/errors/total"), 0, "{report}");
}

/// Churning connects at full speed outruns the server's accept loop. Over TCP the
/// kernel then holds the SYN back (the connect takes longer); a Unix connect fails
/// at once with EAGAIN, counted as connect_refused. Rare, and nothing else.
fn churn_errors_are_only_a_full_listen_queue(r: &serde_json::Value) {
    let refused = count(r, "/errors/by_kind/connect_refused");
    assert_eq!(count(r, "/errors/total"), refused, "{r}");
    assert!(refused * 100 <= count(r, "/connections/attempted"), "under 1% of connects: {r}");
}

const ECHO: &[&str] = &["--mode", "echo"];

const CASES: &[Case] = &[
    Case { name: "echo", serve: ECHO, run: &["-c", "4", "-d", "1s"], check: completes_without_errors },
    Case { name: "pipelined", serve: ECHO, run: &["-c", "4", "-P", "8", "-d", "1s"], check: completes_without_errors },
    Case {
        name: "open loop",
        serve: ECHO,
        run: &["-c", "4", "-r", "400", "-d", "2s"],
        check: |r| {
            let done = count(r, "/requests/completed");
            assert!((720..=820).contains(&done), "-r 400 for 2 s completes about 800: {done}");
            assert_eq!(count(r, "/errors/total"), 0, "{r}");
        },
    },
    Case {
        name: "line",
        serve: ECHO,
        run: &["-c", "2", "-d", "1s", "-m", "ping\\n", "--expect", "line"],
        check: completes_without_errors,
    },
    Case {
        name: "delim",
        serve: ECHO,
        run: &["-c", "2", "-d", "1s", "-m", "a;b;", "--expect", "delim:b;"],
        check: completes_without_errors,
    },
    Case {
        name: "bytes",
        serve: ECHO,
        run: &["-c", "2", "-d", "1s", "--message-size", "20000", "--expect", "bytes:20000"],
        check: completes_without_errors,
    },
    Case {
        name: "length prefix",
        serve: ECHO,
        run: &["-c", "2", "-d", "1s", "-m", "\\x00\\x05hello", "--expect", "len:u16be"],
        check: completes_without_errors,
    },
    Case {
        name: "templates",
        serve: ECHO,
        run: &["-c", "2", "-d", "1s", "-m", "get {conn}:{seq}\\n", "-m", "set {rand:4}\\n"],
        check: completes_without_errors,
    },
    Case {
        name: "first message with its own framing",
        serve: ECHO,
        run: &["-c", "2", "-d", "1s", "--first-message", "HELLO\\n", "--first-expect", "line", "-m", "x\\n"],
        check: completes_without_errors,
    },
    Case {
        name: "http",
        serve: &["--mode", "http"],
        run: &["-c", "2", "-d", "1s", "-m", "GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n", "--expect", "http"],
        check: |r| {
            completes_without_errors(r);
            assert_eq!(count(r, "/http_status/2xx"), count(r, "/requests/completed"));
        },
    },
    Case {
        name: "stream into a sink",
        serve: &["--mode", "sink"],
        run: &["--mode", "stream", "-c", "2", "-d", "1s", "--message-size", "16k"],
        check: |r| {
            assert!(count(r, "/bytes/sent") > 1_000_000, "{r}");
            assert_eq!(count(r, "/errors/total"), 0, "{r}");
        },
    },
    Case {
        name: "recv from a source",
        serve: &["--mode", "source"],
        run: &["--mode", "recv", "-c", "2", "-d", "1s"],
        check: |r| {
            assert!(count(r, "/bytes/received") > 1_000_000, "{r}");
            assert_eq!(count(r, "/bytes/sent"), 0);
            assert_eq!(count(r, "/errors/total"), 0, "{r}");
        },
    },
    Case {
        name: "connect churn",
        serve: ECHO,
        run: &["--mode", "connect", "-c", "4", "-d", "1s"],
        check: |r| {
            assert!(count(r, "/connections/established") > 50, "{r}");
            churn_errors_are_only_a_full_listen_queue(r);
        },
    },
    Case {
        name: "connect with an exchange",
        serve: ECHO,
        run: &["--mode", "connect", "-m", "hi\\n", "-c", "4", "-d", "1s"],
        check: |r| {
            let established = count(r, "/connections/established");
            let completed = count(r, "/requests/completed");
            assert!(established > 50 && completed + 4 >= established, "{completed} of {established}: {r}");
            churn_errors_are_only_a_full_listen_queue(r);
        },
    },
];

fn every_case_over(over: Over) {
    for case in CASES {
        let _serial = timing_sensitive();
        let server = Server::start(over, case.serve);
        let report = server.run(case.run);
        eprintln!("{over:?} {}: {} completed", case.name, count(&report, "/requests/completed"));
        (case.check)(&report);
        match over {
            // Every connection that opened did a full TLS handshake.
            Over::Tls => assert_eq!(
                count(&report, "/tls/handshakes_full"),
                count(&report, "/connections/established"),
                "{}: {report}",
                case.name
            ),
            Over::Unix => assert!(report.get("tls").is_none(), "no TLS section over a Unix socket"),
        }
    }
}

#[test]
fn every_mode_and_framing_works_over_tls() {
    every_case_over(Over::Tls);
}

#[test]
fn every_mode_and_framing_works_over_a_unix_socket() {
    every_case_over(Over::Unix);
}

#[test]
fn the_tls_report_has_the_handshake_histogram_and_what_was_negotiated() {
    let server = Server::start(Over::Tls, ECHO);
    let report = server.run(&["-c", "20", "-d", "1s", "--alpn", "http/1.1"]);
    let tls = &report["tls"];
    assert_eq!(count(&report, "/tls/handshake_latency_us/count"), 20, "{tls}");
    assert!(tls["handshake_latency_us"]["hdr"].as_str().is_some_and(|h| !h.is_empty()));
    assert_eq!(tls["version"], "TLSv1.3");
    assert!(tls["cipher_suite"].as_str().is_some_and(|c| c.starts_with("TLS13_")), "{tls}");
    // The built-in server offers no ALPN unless asked to: none is agreed.
    assert!(tls["alpn"].is_null(), "{tls}");
    let tls12 = server.run(&["-c", "2", "-d", "0.5s", "--tls-version", "1.2"]);
    assert_eq!(tls12["tls"]["version"], "TLSv1.2");
}

#[test]
fn resumed_handshakes_are_counted_in_connect_mode() {
    let server = Server::start(Over::Tls, ECHO);
    // An exchange per connection reads the server's session tickets (TLS 1.3 sends
    // them after the handshake), so the next connect can resume.
    let report = server.run(&["--mode", "connect", "-m", "hi\\n", "-c", "2", "-d", "1s", "--tls-resume"]);
    let (full, resumed) = (count(&report, "/tls/handshakes_full"), count(&report, "/tls/handshakes_resumed"));
    assert_eq!(full + resumed, count(&report, "/connections/established"), "{report}");
    assert!(resumed > 10 * full.max(1) / 2, "most reconnects resume: {full} full, {resumed} resumed");
    // TLS 1.2 resumes by session ID or ticket, at the end of the handshake itself.
    let tls12 = server.run(&["--mode", "connect", "-c", "2", "-d", "1s", "--tls-resume", "--tls-version", "1.2"]);
    assert!(count(&tls12, "/tls/handshakes_resumed") > 10, "{}", tls12["tls"]);
    // Without --tls-resume every handshake is full.
    let off = server.run(&["--mode", "connect", "-m", "hi\\n", "-c", "2", "-d", "0.5s"]);
    assert_eq!(count(&off, "/tls/handshakes_resumed"), 0);
}

#[test]
fn a_plaintext_server_under_tls_counts_tls_handshake_and_the_run_completes() {
    let plain = Serve::start(&["--mode", "echo"]);
    let target = format!("tls://{}", plain.addr);
    let report = run_report(&[&target, "--insecure", "-c", "2", "-d", "1s"]);
    assert!(count(&report, "/errors/by_kind/tls_handshake") > 0, "{report}");
    assert_eq!(count(&report, "/errors/total"), count(&report, "/errors/by_kind/tls_handshake"));
    assert_eq!(count(&report, "/connections/established"), 0);
}

#[test]
fn an_unknown_ca_or_a_wrong_name_is_refused_as_tls_handshake() {
    let server = Server::start(Over::Tls, ECHO);
    // No --cacert: the system roots do not know the generated CA.
    let unknown = run_report(&[&server.target, "-c", "2", "-d", "0.5s"]);
    assert!(count(&unknown, "/errors/by_kind/tls_handshake") > 0, "{unknown}");
    assert_eq!(count(&unknown, "/connections/established"), 0);
    // The right CA, but a name the certificate does not carry.
    let wrong = server.run(&["--sni", "wrong.example", "-c", "2", "-d", "0.5s"]);
    assert!(count(&wrong, "/errors/by_kind/tls_handshake") > 0, "{wrong}");
    assert_eq!(count(&wrong, "/connections/established"), 0);
    // --insecure takes any certificate.
    let insecure = run_report(&[&server.target, "--insecure", "-c", "2", "-d", "0.5s"]);
    assert_eq!(count(&insecure, "/errors/total"), 0, "{insecure}");
}

#[test]
fn a_server_that_stalls_mid_handshake_is_a_connect_timeout() {
    // Accepts and never reads: the ClientHello is never answered.
    let stall = Serve::start(&["--mode", "chaos", "--no-read"]);
    let target = format!("tls://{}", stall.addr);
    let report = run_report(&[&target, "--insecure", "-c", "2", "-d", "1.5s", "--connect-timeout", "300ms"]);
    assert!(count(&report, "/errors/by_kind/connect_timeout") > 0, "{report}");
    assert_eq!(count(&report, "/errors/total"), count(&report, "/errors/by_kind/connect_timeout"), "{report}");
}

#[test]
fn a_server_that_closes_mid_handshake_is_a_failed_handshake() {
    // Accepts, then closes at once: the handshake ends with EOF.
    let closing = Serve::start(&["--mode", "chaos", "--accept-close"]);
    let target = format!("tls://{}", closing.addr);
    let report = run_report(&[&target, "--insecure", "-c", "2", "-d", "1s"]);
    let failed = count(&report, "/errors/by_kind/tls_handshake") + count(&report, "/errors/by_kind/reset");
    assert!(failed > 0, "{report}");
    assert_eq!(count(&report, "/errors/total"), failed, "{report}");
    assert_eq!(count(&report, "/connections/established"), 0);
}

#[test]
fn a_missing_unix_socket_counts_connect_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = format!("unix:{}", dir.path().join("nobody.sock").display());
    let report = run_report(&[&target, "-c", "2", "-d", "0.5s"]);
    assert!(count(&report, "/errors/by_kind/connect_refused") > 0, "{report}");
    assert_eq!(count(&report, "/errors/total"), count(&report, "/errors/by_kind/connect_refused"));
}
