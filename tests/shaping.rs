//! Shaping the load: `--stages` (the open-loop rate ramps as the integral says)
//! and live control (`--control stdin` lines, `+`/`-`/`p` keys on a terminal),
//! against the built-in echo server. Bounds are generous (the machine is shared)
//! but tight enough to catch a rate that steps instead of ramping, a change that
//! does not reach the workers, or a pause that keeps sending.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{echo_server, loadmux, prereq, read_json, timing_sensitive};
use serde_json::Value;

/// Sends due in `[0, t)` for `--stages 3s:500,3s:2000` from 0, worked out by hand:
/// a ramp 0→500 over 3 s (slope 500/3), then 500→2000 over 3 s (slope 500).
fn ramp_integral(t: f64) -> f64 {
    if t <= 3.0 {
        500.0 / 3.0 * t * t / 2.0
    } else {
        let into = t - 3.0;
        750.0 + 500.0 * into + 500.0 * into * into / 2.0
    }
}

fn rows(report: &Value) -> &Vec<Value> {
    report["timeline"].as_array().expect("a timeline")
}

#[test]
fn stages_ramp_each_second_as_the_integral_says() {
    let _guard = timing_sensitive();
    let server = echo_server();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = loadmux()
        .args(["run", &server.local_addr().to_string(), "--stages", "3s:500,3s:2000", "-c", "20", "-t", "2"])
        .args(["-q", "--json"])
        .arg(&json)
        .arg("--csv")
        .arg(dir.path().join("r.csv"))
        .arg("--html")
        .arg(dir.path().join("r.html"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report = read_json(&json);
    assert_eq!(report["stopped_by"], "duration");
    // The CSV's last column and the HTML throughput chart carry the target too.
    let csv = std::fs::read_to_string(dir.path().join("r.csv")).unwrap();
    let second_row = csv.lines().nth(2).expect("a CSV row for the second second");
    let target: f64 = second_row.rsplit(',').nth(1).unwrap().parse().expect("a target_rate value");
    assert!((target - (ramp_integral(2.0) - ramp_integral(1.0))).abs() < 0.1, "{second_row}");
    let html = std::fs::read_to_string(dir.path().join("r.html")).unwrap();
    assert!(html.contains(">target<"), "the throughput chart has a target line");
    assert!((report["duration_s"].as_f64().unwrap() - 6.0).abs() < 0.01, "the stages set the duration");
    let mut previous = 0.0;
    for row in rows(&report) {
        let t = row["t_s"].as_f64().unwrap();
        let expected = ramp_integral(t) - ramp_integral(previous);
        let span = t - previous;
        previous = t;
        if span < 0.5 {
            continue; // A sliver at the very end: too short for a rate.
        }
        let target = row["target_rate"].as_f64().expect("a target rate per row") * span;
        assert!((target - expected).abs() < 1e-6 * expected.max(1.0), "t={t}: target {target} vs {expected}");
        let achieved = row["requests"].as_f64().unwrap();
        assert!(
            (achieved - expected).abs() <= 0.05 * expected + 2.0,
            "second ending at {t}: {achieved} requests, the integral says {expected:.1}"
        );
    }
    let sent = report["requests"]["sent"].as_f64().unwrap();
    assert!((sent - 4500.0).abs() <= 45.0, "sent {sent}, the integral says 4500");
    let _ = server.stop();
}

#[test]
fn each_shard_takes_its_share_of_every_stage() {
    let _guard = timing_sensitive();
    let server = echo_server();
    let report = common::run_report(&[
        &server.local_addr().to_string(),
        "--stages",
        "2s:1000,1s:1000",
        "--shard",
        "2/4",
        "-c",
        "8",
        "-t",
        "1",
    ]);
    // The whole test sends 1000 ramping and 1000 flat; a quarter of it is 500.
    let sent = report["requests"]["sent"].as_f64().unwrap();
    assert!((sent - 500.0).abs() <= 10.0, "shard 2/4 sent {sent}, its share is 500");
    let last_full = rows(&report).iter().find(|r| r["t_s"].as_f64() == Some(3.0)).expect("a row at 3 s");
    assert!((last_full["target_rate"].as_f64().unwrap() - 250.0).abs() < 1e-6, "{last_full}");
    let _ = server.stop();
}

#[test]
fn a_warm_up_runs_at_the_starting_rate_before_the_stages() {
    let _guard = timing_sensitive();
    let server = echo_server();
    let report = common::run_report(&[
        &server.local_addr().to_string(),
        "-r",
        "200",
        "--warmup",
        "1s",
        "--stages",
        "2s:200",
        "-c",
        "4",
        "-t",
        "1",
    ]);
    assert!((report["duration_s"].as_f64().unwrap() - 2.0).abs() < 0.01, "the stages are measured");
    let completed = report["requests"]["completed"].as_f64().unwrap();
    assert!((completed - 400.0).abs() <= 12.0, "2 s at 200/s measured, got {completed}");
    let _ = server.stop();
}

#[test]
fn conn_stages_grow_to_200_and_back_to_20_and_open_follows() {
    let _guard = timing_sensitive();
    let server = echo_server();
    let report = common::run_report(&[&server.local_addr().to_string(), "--conn-stages", "3s:200,3s:20", "-t", "2"]);
    // The peak lasts an instant: a connect still under way when the ramp turns down
    // may miss it.
    let max_open = report["connections"]["max_open"].as_u64().unwrap();
    assert!((195..=200).contains(&max_open), "max open {max_open}, the stages peak at 200");
    assert_eq!(report["errors"]["total"], 0, "closing gracefully is no error: {}", report["errors"]);
    let mut seen = Vec::new();
    for row in rows(&report) {
        let (open, target) = (row["open"].as_u64().unwrap(), row["target_open"].as_u64().expect("a target"));
        // Connects and graceful closes take a moment: a few behind, never the other way.
        assert!(open.abs_diff(target) <= 5 + target / 20, "at {} s: {open} open, {target} wanted", row["t_s"]);
        seen.push(target);
    }
    assert_eq!(seen, vec![67, 133, 200, 140, 80, 20], "the targets of each second");
    assert!(report["requests"]["completed"].as_u64().unwrap() > 0);
    let _ = server.stop();
}

#[test]
fn conn_stages_open_no_faster_than_the_connect_rate() {
    let _guard = timing_sensitive();
    let server = echo_server();
    let report = common::run_report(&[
        &server.local_addr().to_string(),
        "--conn-stages",
        "1s:100,2s:100",
        "--connect-rate",
        "20",
        "-t",
        "1",
    ]);
    let open: Vec<u64> = rows(&report).iter().map(|r| r["open"].as_u64().unwrap()).collect();
    // 20 a second (plus the limiter's burst of 8), whatever the stages ask for.
    assert!(open.iter().zip(1..).all(|(n, s)| *n <= 20 * s + 8), "{open:?}");
    assert!(open[2] >= 40, "still growing: {open:?}");
    let _ = server.stop();
}

/// A child process whose stdin we write to on a timetable.
fn write_at(stdin: &mut impl Write, start: Instant, at_s: f64, line: &str) {
    let at = start + Duration::from_secs_f64(at_s);
    thread::sleep(at.saturating_duration_since(Instant::now()));
    writeln!(stdin, "{line}").unwrap();
    stdin.flush().unwrap();
}

#[test]
fn control_lines_on_stdin_change_pause_resume_and_stop_the_run() {
    let _guard = timing_sensitive();
    let server = echo_server();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let started = Instant::now();
    let mut child = loadmux()
        .args(["run", &server.local_addr().to_string(), "-r", "500", "-d", "30s", "-c", "20", "-t", "2"])
        .args(["--control", "stdin", "-q", "--json"])
        .arg(&json)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    write_at(&mut stdin, started, 2.0, "rate 2000");
    write_at(&mut stdin, started, 4.0, "pause");
    write_at(&mut stdin, started, 4.5, "faster please");
    write_at(&mut stdin, started, 5.0, "resume");
    write_at(&mut stdin, started, 7.0, "stop");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stop is a normal end: {stderr}");
    assert_eq!(stderr.matches("'faster please' is not a command").count(), 1, "{stderr}");
    let report = read_json(&json);
    assert_eq!(report["stopped_by"], "control");
    let duration = report["duration_s"].as_f64().unwrap();
    assert!((6.5..8.0).contains(&duration), "stopped at {duration} s, not at ~7 s");

    let changes: Vec<(f64, f64, f64, &str)> = report["rate_changes"]
        .as_array()
        .expect("rate_changes")
        .iter()
        .map(|c| {
            (
                c["t_s"].as_f64().unwrap(),
                c["old"].as_f64().unwrap(),
                c["new"].as_f64().unwrap(),
                c["source"].as_str().unwrap(),
            )
        })
        .collect();
    let summary: Vec<(f64, f64, &str)> = changes.iter().map(|c| (c.1, c.2, c.3)).collect();
    assert_eq!(summary, vec![(500.0, 2000.0, "stdin"), (2000.0, 0.0, "stdin"), (0.0, 2000.0, "stdin")]);
    for ((t, ..), at) in changes.iter().zip([2.0, 4.0, 5.0]) {
        assert!((t - at).abs() < 0.5, "a change stamped at {t} s was sent at {at} s");
    }
    // The rate asked for, from the stamped changes: 500/s, then each change's new rate.
    let rate_at = |t: f64| changes.iter().rfind(|c| c.0 <= t).map_or(500.0, |c| c.2);
    let asked_between = |from: f64, to: f64| {
        let steps = 1000;
        (0..steps).map(|i| rate_at(from + (to - from) * (i as f64 + 0.5) / steps as f64)).sum::<f64>() * (to - from)
            / steps as f64
    };
    let mut previous = 0.0;
    for row in rows(&report) {
        let t = row["t_s"].as_f64().unwrap();
        let (span, asked) = (t - previous, asked_between(previous, t));
        previous = t;
        if span < 0.5 {
            continue;
        }
        let target = row["target_rate"].as_f64().expect("a target rate") * span;
        assert!((target - asked).abs() <= 0.01 * asked + 1.0, "second ending at {t}: target {target}, asked {asked}");
        // 10%: on a loaded machine a burst of lag moves requests into the next
        // second; a pause that kept sending would be off by 100%.
        let achieved = row["requests"].as_f64().unwrap();
        assert!(
            (achieved - asked).abs() <= 0.1 * asked + 50.0,
            "second ending at {t}: {achieved} requests, {asked:.0} asked (a pause that kept sending?)"
        );
    }
    let total_asked = asked_between(0.0, duration);
    let sent = report["requests"]["sent"].as_f64().unwrap();
    assert!((sent - total_asked).abs() <= 0.02 * total_asked, "sent {sent}, asked {total_asked:.0} in all");
    let paused = changes[2].0 - changes[1].0;
    assert!((paused - 1.0).abs() < 0.3, "paused for {paused} s");
    let _ = server.stop();
}

/// Drives `loadmux run` on a pseudo-terminal (python3's `pty`), pressing `+` at
/// 1 s and `p` at 2 s and 3 s, and prints the terminal's ICANON and ECHO flags after
/// loadmux exited.
const PTY_DRIVER: &str = r#"
import os, pty, sys, termios, time
argv = sys.argv[1:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
start = time.time()
out = b""
keys = [(1.0, b"+"), (2.0, b"p"), (3.0, b"p")]
while True:
    if keys and time.time() - start >= keys[0][0]:
        os.write(fd, keys.pop(0)[1])
    import select
    ready, _, _ = select.select([fd], [], [], 0.05)
    if ready:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    if time.time() - start > 30:
        os.kill(pid, 9)
        break
lflag = termios.tcgetattr(fd)[3]
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
print("\nEXIT %d ICANON %d ECHO %d" % (os.waitstatus_to_exitcode(status), bool(lflag & termios.ICANON), bool(lflag & termios.ECHO)))
"#;

#[test]
fn keys_on_a_terminal_change_and_pause_the_rate_and_the_terminal_is_restored() {
    if Command::new("python3").arg("--version").output().is_err() {
        prereq::missing("python3", "apt-get install python3");
        return;
    }
    let _guard = timing_sensitive();
    let server = echo_server();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = Command::new("python3")
        .args(["-c", PTY_DRIVER, env!("CARGO_BIN_EXE_loadmux"), "run", &server.local_addr().to_string()])
        .args(["-r", "1000", "-d", "5s", "-c", "10", "-t", "1", "--progress", "plain", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let terminal = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{terminal}{}", String::from_utf8_lossy(&out.stderr));
    assert!(terminal.contains("keys: + rate up 10%"), "the keys are announced: {terminal}");
    assert!(terminal.contains("EXIT 0 ICANON 1 ECHO 1"), "exit 0 and the terminal restored: {terminal}");
    let report = read_json(&json);
    let changes: Vec<(f64, f64, &str)> = report["rate_changes"]
        .as_array()
        .expect("rate_changes")
        .iter()
        .map(|c| {
            (c["old"].as_f64().unwrap().round(), c["new"].as_f64().unwrap().round(), c["source"].as_str().unwrap())
        })
        .collect();
    assert_eq!(changes, vec![(1000.0, 1100.0, "key"), (1100.0, 0.0, "key"), (0.0, 1100.0, "key")]);
    let _ = server.stop();
}

/// A bad shaping flag: one line on stderr, exit code 2, nothing run.
fn assert_usage_error(args: &[&str], needle: &str) {
    let out = loadmux().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?} must print one line, got: {stderr}");
    assert!(stderr.contains(needle), "{args:?}: expected '{needle}' in: {stderr}");
}

#[test]
fn bad_stages_are_usage_errors() {
    let run = |spec: &'static str| ["run", "127.0.0.1:1", "--stages", spec];
    assert_usage_error(&run("30s"), "needs a colon");
    assert_usage_error(&run("30s:-5"), "out of range");
    assert_usage_error(&run("30s:NaN"), "out of range");
    assert_usage_error(&run("30s:inf"), "out of range");
    assert_usage_error(&run("30s:2e9"), "out of range");
    assert_usage_error(&run(""), "no stage");
    assert_usage_error(&run("0s:10"), "longer than 0");
    assert_usage_error(&run("200d:1,200d:1"), "more than a year");
    assert_usage_error(&["run", "127.0.0.1:1", "--stages", "1s:1", "-d", "5s"], "--duration");
    assert_usage_error(&["run", "127.0.0.1:1", "--stages", "1s:1", "--rate-search", "p99<1ms"], "--rate-search");
    assert_usage_error(&["run", "127.0.0.1:1", "--stages", "1s:1", "--mode", "recv"], "--stages");
    assert_usage_error(&["run", "127.0.0.1:1", "--control", "stdin", "--rate-search", "p99<1ms"], "--rate-search");
    let conn = |spec: &'static str| ["run", "127.0.0.1:1", "--conn-stages", spec];
    assert_usage_error(&conn("10s:1.5"), "whole number");
    assert_usage_error(&conn("10s:0"), "no stage asks");
    assert_usage_error(&conn("10s"), "needs a colon");
    assert_usage_error(&conn("10s:2e7"), "out of range");
    assert_usage_error(&["run", "127.0.0.1:1", "--conn-stages", "1s:5", "-c", "5"], "--connections");
    assert_usage_error(&["run", "127.0.0.1:1", "--conn-stages", "1s:5", "-r", "5"], "--rate");
}
