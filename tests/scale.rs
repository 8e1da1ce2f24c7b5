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
    // loadmux's own count agrees: each connected once, from its share's address.
    let reported: std::collections::BTreeMap<String, usize> =
        serde_json::from_value(report["connects_by_source"].clone()).expect("connects_by_source in the report");
    assert_eq!(reported, expected, "connects per source address (the report)");
}

/// The user+system CPU time of process `pid` so far, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces:
    // utime and stime are fields 14 and 15, so 12 and 13 after the ")".
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    Some(fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?)
}

/// Runs `loadmux run SERVER ARGS` inside `ns` for `seconds` and returns its report
/// and the CPU ticks the client used in each second of it (sampled once a second).
fn load_with_cpu_per_second(ns: &Netns, args: &[&str], seconds: u32) -> (Value, Vec<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let child = ns
        .command(env!("CARGO_BIN_EXE_loadmux"))
        .args(["run", SERVER, "-q", "--json", json.to_str().unwrap()])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let mut ticks = Vec::new();
    let mut last = cpu_ticks(child.id()).unwrap_or(0);
    for second in 1..=seconds {
        let at = started + Duration::from_secs(u64::from(second));
        std::thread::sleep(at.saturating_duration_since(std::time::Instant::now()));
        let Some(now) = cpu_ticks(child.id()) else { break };
        ticks.push(now - last);
        last = now;
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    (read_json(&json), ticks)
}

/// `--mode connect` at full speed for `seconds`: every second's `connects` must be
/// within 50% of the run's median, and no connect may fail for want of a port.
///
/// A busy machine moves the rate too: on this 2-core machine, shared with other
/// builds, the connects of one second followed the CPU time the client got in it
/// (300 connects per 10 ms tick, from 29 to 73 ticks a second). So a second outside
/// 50% of the median passes only if its connects per CPU second are within 50% of
/// their median: the client did as much with the CPU it had. A collapse (connects
/// that cost more and more as TIME_WAIT fills) fails both ways; the 1 s stalls of a
/// dropped SYN are counted by the kernel and fail on their own.
fn churn_holds_its_rate(extra: &[&str], seconds: u32) -> Result<(), String> {
    let Some(ns) = Netns::create() else { return Ok(()) };
    // One server thread, as in scripts/bench-scale.sh: the server is then the slower
    // side, which is what used to overflow its accept queue (see below).
    let _server = ns.serve(&["--mode", "echo", "--threads", "1"]);
    let duration = format!("{seconds}s");
    let mut args = vec!["--mode", "connect", "-c", "200", "-d", &duration];
    args.extend_from_slice(extra);
    let (report, ticks) = load_with_cpu_per_second(&ns, &args, seconds);
    // Never excused by a busy machine: a connect that found no port, or any error.
    assert_eq!(count(&report, "/errors/by_kind/addr_unavailable"), 0, "{extra:?}: {}", report["errors"]);
    assert_eq!(count(&report, "/errors/total"), 0, "{extra:?}: {}", report["errors"]);
    // The cause of the dips this test used to see, counted by the kernel, not timed:
    // a client that closed before the server accepted ran thousands of connections
    // ahead of it, the accept queue overflowed, and each SYN it dropped was sent
    // again a second later. With FIN close the client now waits for the server's
    // close, so at most -c connections are ever queued and no busy machine excuses
    // an overflow. An RST close cannot wait (waiting for the server's FIN would leave
    // a TIME_WAIT, which --linger0 is there to avoid), so there an overflow is the
    // server's real limit: a retry, not a failure.
    let overflows = ns.counter("TcpExt", "ListenOverflows");
    let syn_retries = ns.counter("TcpExt", "TCPSynRetrans");
    if overflows + syn_retries > 0 {
        let why = format!("{extra:?}: {overflows} accept-queue overflows, {syn_retries} SYNs sent again (1 s stalls)");
        assert!(extra.contains(&"--linger0"), "{why}");
        return Err(why);
    }
    let per_second: Vec<u64> = rows(&report).iter().map(|r| r["connects"].as_u64().unwrap()).collect();
    assert_eq!(per_second.len(), seconds as usize, "one row per second: {per_second:?}");
    let median_connects = median(&per_second);
    if median_connects < 1_000 {
        return Err(format!("churn at full speed on loopback: median {median_connects}/s ({per_second:?})"));
    }
    // Connects per CPU second, for the seconds both were measured in. The first and the
    // last second are left out: process start-up and exit fall in them, and the
    // samples are taken a few milliseconds off the report's cuts.
    let per_cpu_second: Vec<u64> = per_second.iter().zip(&ticks).map(|(n, t)| n * 100 / t.max(&1)).collect();
    let inner = 1..per_cpu_second.len().saturating_sub(1);
    let median_per_cpu_second = median(&per_cpu_second[inner.clone()]);
    let within_half = |n: u64, median: u64| n * 2 >= median && n * 2 <= median * 3;
    for (second, n) in per_second.iter().enumerate() {
        let explained = inner.contains(&second) && within_half(per_cpu_second[second], median_per_cpu_second);
        if !within_half(*n, median_connects) && !explained {
            return Err(format!(
                "second {}: {n} connects, outside 50% of the median {median_connects}, and not for want of CPU \
                 ({extra:?}: connects {per_second:?}, CPU ticks {ticks:?})",
                second + 1
            ));
        }
    }
    Ok(())
}

/// The median of `values` (the upper one of an even count).
fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
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
