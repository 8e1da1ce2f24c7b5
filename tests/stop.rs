//! Graceful stops: a signal at any moment gives a complete report, an atomically
//! written JSON file, and the documented exit code.

mod common;

use common::*;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn start(addr: &str, json: &std::path::Path, extra: &[&str]) -> Child {
    loadmux()
        .args(["run", addr, "-d", "60s", "-q", "--json"])
        .arg(json)
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on the pid of a child this test spawned.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

#[test]
fn sigint_during_the_ramp_up_reports_what_was_open() {
    let server = Serve::start(&["--mode", "echo"]);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut child = start(&server.addr.to_string(), &json, &["-c", "1000", "--connect-rate", "200"]);
    std::thread::sleep(Duration::from_millis(1200));
    let t = Instant::now();
    signal(&child, libc::SIGINT);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert!(t.elapsed() < Duration::from_millis(800), "stopped in {:?}", t.elapsed());
    let report = read_json(&json);
    assert_schema1(&report);
    let open = count(&report, "/connections/max_open");
    assert!((150..=400).contains(&open), "about 200/s for 1.2 s: {open}");
    assert!(report["ramp_s"].is_null(), "the ramp never completed");
}

#[test]
fn sigterm_while_the_server_is_stalled_still_reports() {
    let server = Serve::start(&["--mode", "chaos", "--stall-at", "500ms", "--stall-for", "30s"]);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut child = start(&server.addr.to_string(), &json, &["-c", "10", "--timeout", "20s"]);
    std::thread::sleep(Duration::from_millis(1500));
    let t = Instant::now();
    signal(&child, libc::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(143));
    assert!(t.elapsed() < Duration::from_millis(800), "stopped in {:?}", t.elapsed());
    let report = read_json(&json);
    assert_schema1(&report);
    assert_eq!(report["stopped_by"], "sigterm");
    assert!(count(&report, "/requests/completed") > 0, "the half second before the stall is there");
}

#[test]
fn a_second_ctrl_c_still_exits_with_a_complete_report() {
    let server = Serve::start(&["--mode", "echo"]);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut child = start(&server.addr.to_string(), &json, &["-c", "200"]);
    std::thread::sleep(Duration::from_millis(800));
    signal(&child, libc::SIGINT);
    signal(&child, libc::SIGINT);
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_schema1(&read_json(&json));
    // Written atomically: no temporary file is left behind.
    let leftovers: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().flatten().filter(|e| e.file_name() != "r.json").collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
