//! Network faults in network namespaces the tests create themselves (and delete):
//! packet loss (an nftables rule), a bandwidth cap (tc tbf) and a narrowed ephemeral
//! port range. Client and server both run inside the namespace, on its loopback.
//! These need root, `ip netns` and `nft`. Under `CI=true` (scripts/test.sh runs as
//! root and installs nftables and iproute2) a missing one fails the test; elsewhere
//! the test skips loudly (tests/common/prereq.rs).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::count;

use common::netns::Netns;

fn have_nft() -> bool {
    let ok = Command::new("nft").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ok {
        common::prereq::missing("nft", "scripts/test.sh installs nftables");
    }
    ok
}

#[test]
fn packet_loss_shows_as_retransmission_delay_not_as_errors() {
    let _serial = common::timing_sensitive();
    let Some(ns) = Netns::create() else { return };
    if !have_nft() {
        return;
    }
    let _server = ns.serve(&[]);
    let clean = ns.load(&["-c", "10", "-d", "2s"]);
    assert!(count(&clean, "/latency_us/p99") < 50_000, "no loss, no retransmits: {clean}");
    // Drop 2% of TCP packets leaving any socket in the namespace.
    ns.run(&["nft", "add", "table", "inet", "lmx"]);
    ns.run(&["nft", "add", "chain", "inet", "lmx", "out", "{ type filter hook output priority 0; }"]);
    ns.run(&[
        "nft", "add", "rule", "inet", "lmx", "out", "meta", "l4proto", "tcp", "numgen", "random", "mod", "100", "<",
        "2", "drop",
    ]);
    let started = Instant::now();
    let lossy = ns.load(&["-c", "10", "-d", "3s"]);
    assert!(started.elapsed() < Duration::from_secs(6), "the run ends on time");
    assert_eq!(count(&lossy, "/errors/total"), 0, "losses are retransmitted, not errors: {lossy}");
    assert!(count(&lossy, "/requests/completed") > 100);
    // Linux's minimum retransmission timeout is 200 ms: it shows in the tail.
    assert!(count(&lossy, "/latency_us/p99") >= 150_000, "p99 {}", count(&lossy, "/latency_us/p99"));
}

#[test]
fn a_bandwidth_cap_shows_in_stream_throughput() {
    let _serial = common::timing_sensitive();
    let Some(ns) = Netns::create() else { return };
    let _server = ns.serve(&["--mode", "sink"]);
    let free = ns.load(&["--mode", "stream", "-c", "2", "-d", "1s"]);
    // 10 Mbit/s on loopback's egress: about 1.25 MB/s for everything, ACKs included.
    // tbf drops any packet larger than its burst, and loopback's 64 KiB MTU makes
    // such packets, so the link gets an Ethernet-sized MTU first.
    ns.run(&["ip", "link", "set", "lo", "mtu", "1500"]);
    ns.run(&["tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "10mbit", "burst", "32kbit", "latency", "50ms"]);
    let started = Instant::now();
    // Small send buffers: `bytes.sent` counts what write() accepted, and big kernel
    // buffers would absorb megabytes beyond the wire rate.
    let capped = ns.load(&["--mode", "stream", "-c", "2", "-d", "3s", "--sndbuf", "64k"]);
    assert!(started.elapsed() < Duration::from_secs(6), "the run ends on time");
    let (free_rate, capped_rate) =
        (free["bytes"]["sent_per_s"].as_f64().unwrap(), capped["bytes"]["sent_per_s"].as_f64().unwrap());
    assert!(free_rate > 50e6, "uncapped loopback streams fast: {free_rate}");
    assert!((0.5e6..=1.6e6).contains(&capped_rate), "capped at 10 Mbit/s: {capped_rate} bytes/s");
    assert_eq!(count(&capped, "/errors/total"), 0);
}

#[test]
fn running_out_of_ephemeral_ports_counts_addr_unavailable() {
    let _serial = common::timing_sensitive();
    let Some(ns) = Netns::create() else { return };
    ns.run(&["sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=40000 40049"]);
    let _server = ns.serve(&[]);
    // 100 connections, 50 ports: half cannot even get a port; churn keeps it so.
    // FIN close and RST close (loadmux picks the ports), and each picker forced:
    // whoever picks, a connect with no port is counted, backs off, and the run goes
    // on with the ports there are. All from one address: without `--source`, loadmux
    // spreads so big a run over 127.0.0.1-127.0.0.2 by itself, and since FIN churn
    // waits for the server's close (its port's TIME_WAIT is then reused at once),
    // 100 ports are enough and none runs out.
    for extra in [&[][..], &["--linger0"], &["--local-ports", "kernel"], &["--local-ports", "loadmux"]] {
        let started = Instant::now();
        let mut args = vec!["--mode", "connect", "-c", "100", "-d", "3s", "--source", "127.0.0.1"];
        args.extend_from_slice(extra);
        let report = ns.load(&args);
        assert!(started.elapsed() < Duration::from_secs(7));
        let no_port = count(&report, "/errors/by_kind/addr_unavailable");
        // With FIN close every port sits in TIME_WAIT after use, so 100 connections
        // over 50 ports must run out. With RST close nothing lingers, and a loopback
        // connect-and-reset is so quick that a couple of ports at a time may do: the
        // ports may or may not run out, but nothing else may go wrong.
        if extra != ["--linger0"] {
            assert!(no_port > 0, "{extra:?}: {report}");
        }
        assert_eq!(count(&report, "/errors/total"), no_port, "{extra:?}: only addr_unavailable: {report}");
        let connects: Vec<u64> =
            report["timeline"].as_array().unwrap().iter().map(|r| r["connects"].as_u64().unwrap()).collect();
        // The kernel reuses a loopback TIME_WAIT port only after a second, so a
        // second may pass with no port at all; but the run recovers and goes on.
        assert!(connects.last().is_some_and(|n| *n > 0), "{extra:?}: connects per second: {connects:?}");
        assert!(count(&report, "/connections/established") > 50, "{extra:?}: ports reused: {connects:?}");
        common::assert_schema1(&report);
    }
}
