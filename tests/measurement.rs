//! Honest measurement: the open-loop rate, the correction for coordinated omission,
//! and the connect rate, checked against servers with known behaviour.

mod common;

use common::*;

#[test]
fn open_loop_rate_completes_the_scheduled_requests_within_one_percent() {
    let _serial = timing_sensitive();
    let server = Serve::start(&["--mode", "echo"]);
    let report = run_report(&[&server.addr.to_string(), "-r", "500", "-d", "4s", "-c", "10"]);
    let completed = count(&report, "/requests/completed");
    assert!((1980..=2020).contains(&completed), "500/s for 4 s should complete 2000 ± 1%, got {completed}");
    assert_eq!(count(&report, "/errors/total"), 0);
    assert_eq!(report["config"]["rate"], 500.0);
}

#[test]
fn a_fixed_server_delay_shows_as_the_median_and_the_minimum() {
    let _serial = timing_sensitive();
    let server = Serve::start(&["--mode", "chaos", "--delay", "20ms"]);
    let report = run_report(&[&server.addr.to_string(), "-c", "10", "-d", "3s"]);
    let p50 = count(&report, "/latency_us/p50");
    let min = count(&report, "/latency_us/min");
    assert!((20_000..=22_000).contains(&p50), "p50 {p50} µs should be within [20 ms, 22 ms]");
    // Near 20 ms the histogram's buckets are 16 µs wide, and 20 000 is a bucket edge,
    // so a response at or after 20 ms is never reported below it.
    assert!(min >= 20_000, "no response may come before the delay: min {min} µs");
}

#[test]
fn a_fixed_server_delay_still_measures_20ms_when_paced_sends_are_batched() {
    let _serial = timing_sensitive();
    let server = Serve::start(&["--mode", "chaos", "--delay", "20ms"]);
    // 12 000/s on one thread: sends 83 µs apart, so they leave on the 100 µs
    // wake-up grid (engine/wakeup.rs). 240 requests in flight need -P 8 on 50
    // connections; -P 16 leaves room. One of three runs must hit the band (a busy
    // shared machine can delay a whole run), and every run must show the delay as
    // the minimum: batching must never make a response look early.
    let mut seen = Vec::new();
    let in_band = (0..3).any(|_| {
        let report =
            run_report(&[&server.addr.to_string(), "-r", "12000", "-c", "50", "-t", "1", "-P", "16", "-d", "3s"]);
        assert!(count(&report, "/latency_us/min") >= 20_000, "no response before the delay");
        assert!(count(&report, "/send_lag_us/count") > 30_000, "every paced send records its lag");
        assert_eq!(count(&report, "/errors/total"), 0);
        let p50 = count(&report, "/latency_us/p50");
        seen.push(p50);
        (20_000..=22_000).contains(&p50)
    });
    assert!(in_band, "p50 outside [20 ms, 22 ms] in every run: {seen:?} µs");
}

/// One open-loop run at `-r 50000 -c 50 -t 1` (the rate at which sends are batched
/// on the 100 µs grid), returning its p99 send lag.
fn send_lag_p99_at_50k(addr: &str) -> u64 {
    let report = run_report(&[addr, "-r", "50000", "-c", "50", "-t", "1", "-d", "2s"]);
    assert_eq!(count(&report, "/errors/total"), 0);
    assert!(count(&report, "/send_lag_us/count") > 50_000);
    count(&report, "/send_lag_us/p99")
}

#[test]
fn paced_sends_leave_within_250us_of_their_schedule_at_50k_per_second() {
    let _serial = timing_sensitive();
    let server = Serve::start(&["--mode", "echo"]);
    let addr = server.addr.to_string();
    // The grid makes a send at most 100 µs late; the rest is the time to wake up and
    // send the batch. Up to three runs: the test machine is shared with other builds,
    // and a run during a neighbour's burst is not the code's fault, but a pacing bug
    // (a coarser grid, a missed wake-up) fails every run.
    let mut seen = Vec::new();
    let kept = (0..3).any(|_| {
        let p99 = send_lag_p99_at_50k(&addr);
        seen.push(p99);
        p99 <= 250
    });
    assert!(kept, "p99 send lag above 250 µs in every run: {seen:?} µs");
}

#[test]
fn a_server_stall_shows_in_the_corrected_tail_and_not_in_the_uncorrected_one() {
    let _serial = timing_sensitive();
    let server = Serve::start(&["--mode", "chaos", "--stall-at", "2s", "--stall-for", "1s"]);
    let report = run_report(&[&server.addr.to_string(), "-r", "1000", "-d", "5s", "-c", "10", "--timeout", "3s"]);
    let corrected = count(&report, "/latency_us/p99");
    let uncorrected = count(&report, "/latency_uncorrected_us/p99");
    assert!(corrected >= 500_000, "corrected p99 {corrected} µs must show the 1 s stall");
    assert!(uncorrected < 100_000, "uncorrected p99 {uncorrected} µs hides it (one slow request per connection)");
    assert_eq!(count(&report, "/errors/total"), 0, "a 1 s stall is under the 3 s timeout");
}

#[test]
fn connect_rate_opens_connections_at_the_asked_pace() {
    let _serial = timing_sensitive();
    let server = Serve::start(&["--mode", "echo"]);
    let report = run_report(&[&server.addr.to_string(), "-c", "1500", "--connect-rate", "500", "-d", "4s"]);
    let timeline = report["timeline"].as_array().unwrap();
    let open_at = |t: f64| {
        let row = timeline.iter().find(|r| r["t_s"].as_f64() == Some(t)).unwrap_or_else(|| panic!("no row at {t}"));
        row["open"].as_u64().unwrap()
    };
    // The timeline shows the ramp growing at 500 per second...
    for (t, expected) in [(1.0, 500), (2.0, 1000)] {
        let open = open_at(t);
        assert!(open.abs_diff(expected) <= expected / 10, "at {t} s: {open} open, expected {expected} ± 10%");
    }
    assert!(open_at(3.0) >= 1350, "at 3 s: {} open", open_at(3.0));
    assert_eq!(open_at(4.0), 1500);
    // ...and all 1500 were open at 3 s ± 10% (the exact instant, not a row boundary).
    let ramp = report["ramp_s"].as_f64().unwrap();
    assert!((2.7..=3.3).contains(&ramp), "ramp took {ramp} s");
}

#[test]
fn warmup_is_left_out_of_the_summary_but_kept_in_the_timeline() {
    let _serial = timing_sensitive();
    let server = Serve::start(&["--mode", "echo"]);
    let report = run_report(&[&server.addr.to_string(), "-c", "5", "--warmup", "1s", "-d", "2s"]);
    let timeline = report["timeline"].as_array().unwrap();
    let phases: Vec<&str> = timeline.iter().map(|r| r["phase"].as_str().unwrap()).collect();
    assert_eq!(phases, ["warmup", "measure", "measure"], "{timeline:?}");
    let measured: u64 = timeline[1..].iter().map(|r| r["requests"].as_u64().unwrap()).sum();
    assert_eq!(count(&report, "/requests/completed"), measured);
    assert_eq!(report["duration_s"], 2.0);
    assert_eq!(report["warmup_s"], 1.0);
    assert_eq!(report["measure_began_after_ramp"], true);
}

#[test]
fn time_to_first_byte_is_reported_and_no_later_than_the_full_response() {
    let _serial = timing_sensitive();
    let server = Serve::start(&["--mode", "echo"]);
    let report = run_report(&[&server.addr.to_string(), "-c", "5", "-d", "1s"]);
    let ttfb = count(&report, "/first_byte_us/count");
    assert!(ttfb >= count(&report, "/requests/completed"));
    assert!(count(&report, "/first_byte_us/p50") <= count(&report, "/latency_us/p50"));
}

#[test]
fn rate_search_finds_the_highest_rate_that_keeps_the_threshold() {
    let _serial = timing_sensitive();
    // 20 connections to a server that answers after 2 ms: at most 10 000 req/s, and
    // the p99 climbs as the rate nears that.
    let server = Serve::start(&["--mode", "chaos", "--delay", "2ms"]);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("best.json");
    let out = loadmux()
        .args(["run", &server.addr.to_string(), "-c", "20", "-d", "1s", "--rate-search", "p99<5ms", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    // A closed-loop probe, then open-loop steps (just one when the threshold already
    // holds at the probe's rate: there is nothing higher to find).
    let steps = stdout.lines().filter(|l| l.contains("req/s,")).count();
    assert!(steps >= 2, "a probe and at least one step:\n{stdout}");
    assert!(stdout.contains("closed loop:"), "{stdout}");
    let answer: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("highest rate with p99<5ms: "))
        .and_then(|rest| rest.trim_end_matches(" req/s").parse().ok())
        .unwrap_or_else(|| panic!("no answer line:\n{stdout}"));
    assert!((2_000.0..=10_000.0).contains(&answer), "answer {answer} req/s");
    // The written report is the best passing step's: it kept the rate and the bound.
    let best = read_json(&json);
    assert!(count(&best, "/latency_us/p99") < 5_000);
    assert!(best["requests"]["per_s"].as_f64().unwrap() >= 0.97 * answer);
}
