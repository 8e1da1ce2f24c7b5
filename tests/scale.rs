//! Connections at scale (issue 14): a ramp past the kernel's port search, source
//! addresses spread evenly, and connection churn that holds its rate.
//!
//! The server is always a separate `loadmux serve` process: the open-files limit is
//! 20 000 per process, and 19 000 connections need one descriptor on each side. Every
//! test here takes `fd_hungry()`, so no two of them run at once in this binary
//! (cargo runs test binaries one after another, so no other binary competes).
//!
//! Each test runs client and server in a network namespace of its own
//! (`common/netns.rs`): the TIME_WAIT sockets 19 000 connections or 20 s of churn
//! leave behind (up to the whole ephemeral range, for 60 s) then die with the
//! namespace, instead of starving the port-0 binds of the test binaries after this.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::netns::{Netns, SERVER};
use common::real_servers::require;
use common::*;
use serde_json::Value;

/// One test at a time in this binary: each may hold 19 000 descriptors, and each
/// measures rates that a neighbouring load test would disturb.
fn fd_hungry() -> std::sync::MutexGuard<'static, ()> {
    timing_sensitive()
}

/// The timeline's rows.
fn rows(report: &Value) -> &Vec<Value> {
    report["timeline"].as_array().expect("timeline")
}

/// Runs `attempt` up to three times and passes on the first success. The test
/// machine is shared with other builds, and a run during a neighbour's burst is not
/// the code's fault; but a real regression (the kernel's quadratic port search, a
/// churn collapse as TIME_WAIT fills) fails every attempt, so the test still catches it.
fn in_one_of_three(mut attempt: impl FnMut() -> Result<(), String>) {
    let mut failures = Vec::new();
    for _ in 0..3 {
        match attempt() {
            Ok(()) => return,
            Err(why) => {
                eprintln!("attempt failed: {why}");
                failures.push(why);
            }
        }
    }
    panic!("failed three times:\n{}", failures.join("\n"));
}

#[test]
fn nineteen_thousand_connections_open_within_1_5_s_with_no_flag() {
    let _serial = fd_hungry();
    in_one_of_three(|| {
        // A fresh namespace and server each try: one still closing the last try's
        // 19 000 connections would not have the descriptors to accept the next ones.
        let Some(ns) = Netns::create() else { return Ok(()) };
        let _server = ns.serve(&["--mode", "echo"]);
        // -r 1000: a trickle of requests, so the time goes to opening connections.
        let report = ns.load(&["-c", "19000", "-r", "1000", "-d", "1.5s"]);
        // Errors are never excused by a busy machine: they fail at once.
        assert_eq!(count(&report, "/errors/total"), 0, "{}", report["errors"]);
        let timeline = rows(&report);
        let last = timeline.last().expect("a timeline row");
        let t_s = last["t_s"].as_f64().unwrap();
        assert!(t_s <= 1.5 + 0.01, "the last row ends with the run: {t_s}");
        let open: Vec<u64> = timeline.iter().map(|r| r["open"].as_u64().unwrap()).collect();
        if open.last() == Some(&19_000) {
            assert_eq!(count(&report, "/connections/established"), 19_000, "each connection opened once");
            Ok(())
        } else {
            Err(format!("open connections at each row: {open:?}, not 19000 at {t_s} s"))
        }
    });
}

/// Counts the established client-side connections to `port` by local address (`ss`).
fn connections_by_source(ns: &Netns, port: u16) -> std::collections::BTreeMap<String, usize> {
    let out = ns
        .command("ss")
        .args(["-Htn", "state", "established", "dport", "=", &format!(":{port}")])
        .output()
        .expect("run ss");
    let mut by_source = std::collections::BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // Columns: Recv-Q Send-Q Local:Port Peer:Port.
        let local = line.split_whitespace().nth(2).unwrap_or_default();
        let ip = local.rsplit_once(':').map_or(local, |(ip, _)| ip);
        *by_source.entry(ip.to_string()).or_insert(0) += 1;
    }
    by_source
}

#[test]
fn a_source_range_spreads_connections_evenly_over_its_addresses() {
    let _serial = fd_hungry();
    let Some(_ss) = require("ss") else { return };
    let Some(ns) = Netns::create() else { return };
    let _server = ns.serve(&["--mode", "echo"]);
    let port: u16 = SERVER.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap();
    // Two threads of 200 connections each: each spreads its own evenly, 50 per address.
    let child = ns
        .command(env!("CARGO_BIN_EXE_loadmux"))
        .args(["run", SERVER, "--source", "127.0.0.2-127.0.0.5", "-c", "400", "-t", "2"])
        .args(["-r", "200", "-d", "4s", "-q", "--json", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Look while the run holds its connections (all open within a fraction of a second).
    let mut by_source = Default::default();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(250));
        by_source = connections_by_source(&ns, port);
        if by_source.values().sum::<usize>() == 400 {
            break;
        }
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(count(&report, "/errors/total"), 0);
    let expected: std::collections::BTreeMap<String, usize> =
        (2..=5).map(|last| (format!("127.0.0.{last}"), 100)).collect();
    assert_eq!(by_source, expected, "connections per source address (ss)");
}

/// `--mode connect` at full speed for `seconds`: every second's `connects` must be
/// within 50% of the run's median, and no connect may fail for want of a port.
fn churn_holds_its_rate(extra: &[&str], seconds: u32) -> Result<(), String> {
    let Some(ns) = Netns::create() else { return Ok(()) };
    // Two server threads: a test binary's (debug) server on one thread accepts more
    // slowly than the client connects, its accept queue overflows, and the SYN
    // retried a second later would show as the server's dip, not the client's.
    let _server = ns.serve(&["--mode", "echo", "--threads", "2"]);
    let duration = format!("{seconds}s");
    let mut args = vec!["--mode", "connect", "-c", "200", "-d", &duration];
    args.extend_from_slice(extra);
    let report = ns.load(&args);
    // Never excused by a busy machine: a connect that found no port, or any error.
    assert_eq!(count(&report, "/errors/by_kind/addr_unavailable"), 0, "{extra:?}: {}", report["errors"]);
    assert_eq!(count(&report, "/errors/total"), 0, "{extra:?}: {}", report["errors"]);
    let per_second: Vec<u64> = rows(&report).iter().map(|r| r["connects"].as_u64().unwrap()).collect();
    assert_eq!(per_second.len(), seconds as usize, "one row per second: {per_second:?}");
    let mut sorted = per_second.clone();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    if median < 1_000 {
        return Err(format!("churn at full speed on loopback: median {median}/s ({per_second:?})"));
    }
    for (second, n) in per_second.iter().enumerate() {
        if *n * 2 < median || *n * 2 > median * 3 {
            return Err(format!(
                "second {}: {n} connects, outside 50% of the median {median} ({extra:?}: {per_second:?})",
                second + 1
            ));
        }
    }
    Ok(())
}

#[test]
fn connect_churn_with_fin_close_holds_its_rate_for_20_s_as_time_wait_fills() {
    let _serial = fd_hungry();
    // FIN close leaves a TIME_WAIT per connection: ~14 000/s fills the 28 232-port
    // range within 2 s, so most of this run reuses ports still in TIME_WAIT.
    in_one_of_three(|| churn_holds_its_rate(&[], 20));
}

#[test]
fn connect_churn_with_rst_close_holds_its_rate() {
    let _serial = fd_hungry();
    in_one_of_three(|| churn_holds_its_rate(&["--linger0"], 10));
}
