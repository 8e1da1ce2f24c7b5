//! Workload modes and framings against the built-in servers.

mod common;

use common::*;

#[test]
fn stream_mode_into_a_sink_reports_upload_bandwidth() {
    let _serial = timing_sensitive();
    let sink = Serve::start(&["--mode", "sink"]);
    let report =
        run_report(&[&sink.addr.to_string(), "--mode", "stream", "-c", "4", "-d", "1s", "--message-size", "16k"]);
    let sent = count(&report, "/bytes/sent");
    assert!(sent > 10_000_000, "a loopback sink takes well over 10 MB/s, got {sent} bytes");
    assert!(report["bytes"]["sent_per_s"].as_f64().unwrap() > 1e7);
    assert_eq!(count(&report, "/errors/total"), 0);
    assert_eq!(report["config"]["mode"], "stream");
}

#[test]
fn a_file_is_uploaded_in_stream_mode() {
    let _serial = timing_sensitive();
    let sink = Serve::start(&["--mode", "sink"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("upload.bin");
    std::fs::write(&file, vec![42u8; 100_000]).unwrap();
    let report =
        run_report(&[&sink.addr.to_string(), "--mode", "stream", "-c", "1", "-d", "1s", "-f", file.to_str().unwrap()]);
    let sent = count(&report, "/bytes/sent");
    assert!(sent >= 100_000, "at least the whole file once: {sent}");
    assert_eq!(count(&report, "/requests/sent") * 100_000, sent - sent % 100_000, "messages counted whole");
}

#[test]
fn recv_mode_from_a_source_reports_download_bandwidth() {
    let _serial = timing_sensitive();
    let source = Serve::start(&["--mode", "source"]);
    let report = run_report(&[&source.addr.to_string(), "--mode", "recv", "-c", "2", "-d", "1s"]);
    assert!(count(&report, "/bytes/received") > 10_000_000);
    assert_eq!(count(&report, "/bytes/sent"), 0, "recv mode sends nothing");
    assert_eq!(count(&report, "/errors/total"), 0);
}

/// Connect churn runs in a network namespace of its own (`common/netns.rs`): at full
/// speed with FIN close it leaves ~20 000 sockets in TIME_WAIT for 60 s, which on the
/// host's loopback crowd the ephemeral range until the port-0 binds of the test
/// binaries after this one fail ("Address already in use", seen in a CI run).
#[test]
fn connect_mode_churns_connections_with_and_without_linger0() {
    let _serial = timing_sensitive();
    let Some(ns) = common::netns::Netns::create() else { return };
    let _echo = ns.serve(&["--mode", "echo"]);
    for extra in [None, Some("--linger0")] {
        let mut args = vec!["--mode", "connect", "-c", "20", "-d", "1s"];
        args.extend(extra);
        let report = ns.load(&args);
        let established = count(&report, "/connections/established");
        assert!(established > 500, "{extra:?}: only {established} connections in 1 s");
        assert!(report["connections"]["per_s"].as_f64().unwrap() > 500.0);
        assert_eq!(count(&report, "/errors/total"), 0, "{extra:?}: {report}");
        assert_eq!(count(&report, "/connect_latency_us/count"), established);
    }
}

#[test]
fn connect_mode_with_a_message_exchanges_it_on_each_connection() {
    // In a namespace of its own, for the TIME_WAIT it leaves (see above).
    let Some(ns) = common::netns::Netns::create() else { return };
    let _echo = ns.serve(&["--mode", "echo"]);
    let report = ns.load(&["--mode", "connect", "-m", "hi\\n", "-c", "5", "-d", "1s"]);
    let established = count(&report, "/connections/established");
    let completed = count(&report, "/requests/completed");
    assert!(
        completed + 5 >= established && completed <= established,
        "{completed} exchanges on {established} connections"
    );
    assert_eq!(count(&report, "/errors/total"), 0);
}

#[test]
fn the_built_in_http_server_answers_pipelined_keep_alive_requests() {
    let http = Serve::start(&["--mode", "http"]);
    let report = run_report(&[
        &http.addr.to_string(),
        "-m",
        "GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n",
        "--expect",
        "http",
        "-P",
        "8",
        "-c",
        "4",
        "-n",
        "4000",
    ]);
    assert_eq!(count(&report, "/requests/completed"), 4000);
    assert_eq!(count(&report, "/errors/total"), 0);
    assert_eq!(count(&report, "/http_status/2xx"), 4000);
}

#[test]
fn connection_close_replies_reconnect_without_errors() {
    let http = Serve::start(&["--mode", "http"]);
    let report = run_report(&[
        &http.addr.to_string(),
        "-m",
        "GET / HTTP/1.1\\r\\nConnection: close\\r\\n\\r\\n",
        "--expect",
        "http",
        "-c",
        "2",
        "-n",
        "200",
    ]);
    assert_eq!(count(&report, "/requests/completed"), 200);
    assert_eq!(count(&report, "/errors/total"), 0);
    assert!(count(&report, "/connections/established") >= 200, "one connection per request");
}

#[test]
fn a_length_prefixed_protocol_is_framed_by_its_prefix() {
    // Echo of a u16be-prefixed message is itself a valid length-prefixed response.
    let echo = Serve::start(&["--mode", "echo"]);
    let report =
        run_report(&[&echo.addr.to_string(), "-m", "\\x00\\x05hello", "--expect", "len:u16be", "-c", "3", "-n", "300"]);
    assert_eq!(count(&report, "/requests/completed"), 300);
    assert_eq!(count(&report, "/errors/total"), 0);
}

#[test]
fn ipv6_targets_work() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        common::prereq::missing("an IPv6 loopback (::1)", "enable IPv6 on lo");
        return;
    }
    let server = loadmux::server::start(loadmux::server::ServerConfig::echo("[::1]:0".parse().unwrap())).unwrap();
    let report = run_report(&[&server.local_addr().to_string(), "-c", "3", "-n", "100"]);
    assert_eq!(count(&report, "/requests/completed"), 100);
    let _ = server.stop();
}
