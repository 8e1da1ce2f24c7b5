//! A thread that panics ends the run at once, never hangs it: the workers are
//! stopped, the report of what was measured is still printed and written with a
//! warning naming the thread, and the exit code is 3. This holds for a load worker
//! and for a thread of the built-in server, under `run` and under `serve`.
//!
//! The panic is injected through `LOADMUX_FAULT`, which only a build with the
//! `fault-injection` feature reads (`cargo test --features fault-injection`, as
//! scripts/test.sh runs it).

mod common;

#[cfg(feature = "fault-injection")]
use std::time::{Duration, Instant};

#[cfg(feature = "fault-injection")]
use common::{loadmux, read_json};

#[cfg(feature = "fault-injection")]
#[test]
fn a_panicking_worker_stops_the_run_with_exit_3_and_a_report() {
    let _serial = common::timing_sensitive();
    let server = common::echo_server();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let started = Instant::now();
    // Worker 1 panics 700 ms in; worker 0 has been measuring until then. Without the
    // fix the coordinator waited for worker 1's last snapshot for ever.
    let out = loadmux()
        .args(["run", &server.local_addr().to_string(), "-c", "4", "-t", "2", "-d", "60s", "-q", "--json"])
        .arg(&json)
        .env("LOADMUX_FAULT", "panic-worker:1:700")
        .output()
        .unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stdout: {stdout}\nstderr: {stderr}");
    // The run stops about 0.7 s in; a wide margin for a loaded 2-core machine, far
    // below the 60 s a hung coordinator would take.
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(stderr.contains("worker 1 panicked"), "{stderr}");
    assert!(stdout.contains("warning       worker 1 panicked"), "{stdout}");
    let report = read_json(&json);
    assert_eq!(report["stopped_by"], "thread_panicked");
    assert!(report["warnings"][0].as_str().unwrap().contains("worker 1 panicked"), "{report}");
    assert!(common::count(&report, "/requests/completed") > 0, "worker 0's requests are in the report");
    assert!(report["duration_s"].as_f64().unwrap() < 14.0);
}

#[cfg(feature = "fault-injection")]
#[test]
fn a_worker_that_panics_at_once_still_leaves_a_report() {
    let server = common::echo_server();
    let out = loadmux()
        .args(["run", &server.local_addr().to_string(), "-c", "2", "-t", "2", "-d", "60s", "-q", "--json", "-"])
        .env("LOADMUX_FAULT", "panic-worker:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the JSON report on stdout");
    assert_eq!(report["stopped_by"], "thread_panicked");
    assert!(report["duration_s"].as_f64().unwrap() < 14.0, "{report}");
}

#[cfg(feature = "fault-injection")]
#[test]
fn a_panicking_built_in_server_stops_the_run_with_exit_3() {
    // No target: the run loads the built-in echo server, whose thread 0 panics.
    let started = Instant::now();
    let out = loadmux()
        .args(["run", "-c", "2", "-t", "1", "-d", "60s", "-q", "--json", "-"])
        .env("LOADMUX_FAULT", "panic-server:0:500")
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("built-in server thread 0 panicked"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the JSON report on stdout");
    assert!(report["warnings"][0].as_str().unwrap().contains("built-in server thread 0"), "{report}");
    // The panic (0.5 s in) stops the run well before its 60 s.
    assert!(report["duration_s"].as_f64().unwrap() < 14.0, "{report}");
}

#[cfg(feature = "fault-injection")]
#[test]
fn a_panicking_serve_thread_ends_loadmux_serve_with_exit_3() {
    let started = Instant::now();
    let out = loadmux()
        .args(["serve", "--listen", "127.0.0.1:0", "--threads", "2"])
        .env("LOADMUX_FAULT", "panic-server:1:200")
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("built-in server thread 1 panicked"), "{stderr}");
}

#[cfg(not(feature = "fault-injection"))]
#[test]
fn a_panicking_worker_stops_the_run_with_exit_3_and_a_report() {
    common::prereq::missing("the fault-injection cargo feature", "cargo test --features fault-injection");
}

/// The live line runs on the coordinator's thread, inside `engine::run`: a panic
/// there is caught, and the run ends with what it measured instead of unwinding
/// through the caller.
#[test]
fn a_panic_in_the_live_line_stops_the_run_with_a_result() {
    let server = common::echo_server();
    let addr = server.local_addr().tcp().expect("a TCP echo server");
    let mut plan = loadmux::plan::Plan::new(vec![loadmux::transport::Target::Tcp(addr)]);
    plan.connections = 2;
    plan.duration = std::time::Duration::from_secs(30);
    let started = std::time::Instant::now();
    let result = loadmux::engine::run(std::sync::Arc::new(plan), &mut |_row| panic!("the live line breaks"))
        .expect("the run starts");
    // The first row comes after 1 s; the run ends right after it, not at 30 s.
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(result.failed_threads, vec!["the live line".to_string()]);
    assert_eq!(result.stop, loadmux::engine::StopReason::ThreadPanicked);
    assert!(result.totals.counters.requests_completed > 0, "what was measured is kept");
    let _ = server.stop();
}
