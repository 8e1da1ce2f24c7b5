//! Report outputs: CSV, HTML, thresholds, and exact merging of shards.

mod common;

use common::*;
use loadmux::stats::LatencyHistogram;
use std::process::Stdio;

#[test]
fn csv_has_a_header_and_one_row_per_second_and_matches_the_json_timeline() {
    let server = echo_server();
    let dir = tempfile::tempdir().unwrap();
    let (json, csv) = (dir.path().join("r.json"), dir.path().join("r.csv"));
    let out = loadmux()
        .args(["run", &server.local_addr().to_string(), "-c", "4", "-d", "3s", "-q", "--json"])
        .arg(&json)
        .arg("--csv")
        .arg(&csv)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report = read_json(&json);
    let timeline = report["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 3, "one row per second of a 3 s run");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with(
        "t_s,phase,requests,bytes_sent,bytes_received,errors,open,connects,p50_us,p99_us,max_us,err_connect_refused"
    ));
    assert_eq!(header.split(',').count(), 13 + loadmux::stats::ErrorKind::COUNT);
    assert!(header.ends_with(",target_rate,target_open"), "the targets come last: {header}");
    assert!(header.contains(",err_tls_handshake,err_tls,"), "{header}");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 3);
    let csv_requests: u64 = rows.iter().map(|r| r.split(',').nth(2).unwrap().parse::<u64>().unwrap()).sum();
    assert_eq!(csv_requests, count(&report, "/requests/completed"));
    let _ = server.stop();
}

#[test]
fn the_html_report_is_self_contained_with_its_charts() {
    let server = echo_server();
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("r.html");
    let out = loadmux()
        .args(["run", &server.local_addr().to_string(), "-c", "4", "-r", "500", "-d", "2s", "-q", "--html"])
        .arg(&html)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"));
    for chart in [
        "requests per second",
        "bandwidth",
        "latency of each second",
        "latency by percentile",
        "connections established",
    ] {
        assert!(page.contains(&format!("aria-label=\"{chart}\"")), "missing chart {chart}");
    }
    assert_eq!(page.matches("<svg").count(), page.matches("</svg>").count(), "every chart is closed");
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("//cdn"), "no external URL");
    assert!(!page.contains("<script"), "no JavaScript");
    let _ = server.stop();
}

#[test]
fn report_rebuilds_the_html_from_a_saved_json() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("from-json.html");
    let out = loadmux().args(["report", "tests/data/report-small.json", "--html"]).arg(&html).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read_to_string(&html).unwrap().contains("latency by percentile"));
    let bad = loadmux().args(["report", "Cargo.toml", "--html"]).arg(&html).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&bad.stderr).lines().count(), 1);
}

#[test]
fn thresholds_pass_with_0_fail_with_1_and_malformed_ones_exit_2() {
    let server = echo_server();
    let addr = server.local_addr().to_string();
    let run = |assert: &str| {
        loadmux().args(["run", &addr, "-c", "2", "-d", "1s", "-q", "--assert", assert]).output().unwrap()
    };
    let pass = run("p99<1s");
    assert_eq!(pass.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&pass.stdout).contains("PASS p99<1s"));
    let fail = run("rps>100000000");
    assert_eq!(fail.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&fail.stdout).contains("FAIL rps>100000000"));
    let malformed = run("p99<<1ms");
    assert_eq!(malformed.status.code(), Some(2));
    assert!(malformed.stdout.is_empty(), "nothing ran");
    let _ = server.stop();
}

#[test]
fn three_shards_merge_exactly() {
    let _serial = timing_sensitive();
    let server = Serve::start(&["--mode", "echo"]);
    let dir = tempfile::tempdir().unwrap();
    let start_at = (std::time::SystemTime::now() + std::time::Duration::from_millis(700))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        .to_string();
    let shards: Vec<_> = (1..=3)
        .map(|i| {
            let path = dir.path().join(format!("shard-{i}.json"));
            let child = loadmux()
                // Open loop, so each shard also has send lags and per-second connects to merge.
                .args(["run", &server.addr.to_string(), "-c", "10", "-d", "2s", "-q", "-t", "1", "-r", "300"])
                .args(["--shard", &format!("{i}/3"), "--start-at", &start_at, "--json"])
                .arg(&path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            (path, child)
        })
        .collect();
    let mut paths = Vec::new();
    for (path, mut child) in shards {
        assert!(child.wait().unwrap().success());
        paths.push(path);
    }
    let merged_path = dir.path().join("all.json");
    let out = loadmux().arg("merge").args(&paths).arg("-o").arg(&merged_path).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let reports: Vec<_> = paths.iter().map(|p| read_json(p)).collect();
    let merged = read_json(&merged_path);
    assert_schema1(&merged);
    // Connections were split 4/3/3, with globally unique ids.
    let conns: Vec<u64> = reports.iter().map(|r| r["config"]["connections"].as_u64().unwrap()).collect();
    assert_eq!(conns, [4, 3, 3]);
    let sum = |ptr: &str| reports.iter().map(|r| count(r, ptr)).sum::<u64>();
    assert_eq!(count(&merged, "/requests/completed"), sum("/requests/completed"));
    assert_eq!(count(&merged, "/latency_us/count"), sum("/latency_us/count"));
    // The merged p99 is the p99 of all requests: the histograms added, not averaged.
    let mut all = LatencyHistogram::new();
    for r in &reports {
        all.merge(&LatencyHistogram::from_base64(r["latency_us"]["hdr"].as_str().unwrap()).unwrap());
    }
    assert_eq!(count(&merged, "/latency_us/p99"), all.percentile(99.0));
    // Send lags merge exactly too, histogram by histogram.
    let mut lags = LatencyHistogram::new();
    for r in &reports {
        lags.merge(&LatencyHistogram::from_base64(r["send_lag_us"]["hdr"].as_str().unwrap()).unwrap());
    }
    assert!(lags.count() > 0, "open-loop shards record send lags");
    assert_eq!(count(&merged, "/send_lag_us/count"), lags.count());
    assert_eq!(count(&merged, "/send_lag_us/p99"), lags.percentile(99.0));
    assert_eq!(count(&merged, "/send_lag_us/max"), lags.max());
    assert_eq!(count(&merged, "/requests/sends_dropped"), sum("/requests/sends_dropped"));
    // Per-second connects add up across shards, as every other count does.
    let connects = |r: &serde_json::Value| {
        r["timeline"].as_array().unwrap().iter().map(|row| row["connects"].as_u64().unwrap()).sum::<u64>()
    };
    assert_eq!(connects(&merged), reports.iter().map(connects).sum::<u64>());
    assert_eq!(connects(&merged), 10, "every connection opened once");
    // The shards started together, so the merged timeline spans about 2 s.
    let rows = merged["timeline"].as_array().unwrap().len();
    assert!((2..=3).contains(&rows), "{rows} merged rows");
}

#[test]
fn merging_a_report_of_another_schema_or_tool_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let good = "tests/data/report-small.json";
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(good).unwrap()).unwrap();
    v["schema"] = 2.into();
    let future = dir.path().join("future.json");
    std::fs::write(&future, v.to_string()).unwrap();
    let out = loadmux().args(["merge", good]).arg(&future).arg("-o").arg(dir.path().join("m.json")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("future.json") && stderr.contains("schema 2"), "{stderr}");
    let other = dir.path().join("other.json");
    std::fs::write(&other, r#"{"tool":"wrk"}"#).unwrap();
    let out = loadmux().args(["merge", good]).arg(&other).arg("-o").arg(dir.path().join("m.json")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loadmux report"));
}

#[test]
fn report_with_no_flag_prints_the_text_summary() {
    let out = loadmux().args(["report", "tests/data/report-small.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("loadmux report: tests/data/report-small.json\n"), "{text}");
    assert!(text.contains("completed 73577"), "the summary run prints: {text}");
    assert!(text.contains("errors        0"), "{text}");
}

#[test]
fn a_saved_report_is_judged_with_runs_exit_codes() {
    // The fixture's p99 is 369 µs and it has no error.
    let judge = |expr: &str| {
        let out = loadmux().args(["report", "tests/data/report-small.json", "--assert", expr]).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, stdout, _) = judge("p99<1ms");
    assert_eq!(code, Some(0));
    assert!(stdout.contains("PASS p99<1ms (p99 = 369µs)"), "{stdout}");
    let (code, stdout, _) = judge("p99<100us");
    assert_eq!(code, Some(1));
    assert!(stdout.contains("FAIL p99<100us"), "{stdout}");
    let (code, _, stderr) = judge("p99<<1ms");
    assert_eq!(code, Some(2));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // A percentile of a histogram that does not decode is an error, not a quiet p99.
    let dir = tempfile::tempdir().unwrap();
    let mut report = read_json(std::path::Path::new("tests/data/report-small.json"));
    report["latency_us"]["hdr"] = "bm90IGEgaGlzdG9ncmFt".into();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, report.to_string()).unwrap();
    let out = loadmux().arg("report").arg(&broken).args(["--assert", "p99.9<1s"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("p99.9<1s") && stderr.contains("latency_us"), "{stderr}");
}

#[test]
fn a_merged_report_is_judged_with_runs_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let merged = dir.path().join("all.json");
    let fixture = "tests/data/report-small.json";
    let merge = |expr: &str| {
        let out = loadmux().args(["merge", fixture, fixture, "--assert", expr, "-o"]).arg(&merged).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    let (code, stdout) = merge("completed>=147154");
    assert_eq!(code, Some(0), "two copies add up: {stdout}");
    assert!(stdout.contains("PASS completed>=147154"), "{stdout}");
    assert_eq!(count(&read_json(&merged), "/requests/completed"), 2 * 73577, "the merged file is written too");
    assert_eq!(merge("completed>147154").0, Some(1));
    assert_eq!(merge("completed>lots").0, Some(2));
}
