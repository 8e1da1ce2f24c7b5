//! Watching a run from outside: `--metrics-listen` checked by Debian's promtool and
//! scraped by a real Prometheus server, `--statsd` received by a UDP listener, and
//! `--hlog` decoded by the `hdrhistogram` package from PyPI (and the Rust crate's
//! reader). Each output must end equal to the run's own report.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{loadmux, prereq, read_json, real_servers};
use serde_json::Value;

/// A `loadmux run` in the background whose stderr is read line by line, so the
/// metrics address it prints can be picked up while it runs.
struct Running {
    child: Child,
    metrics: Option<SocketAddr>,
    stderr: thread::JoinHandle<Vec<String>>,
}

impl Running {
    /// Starts `loadmux run FLAGS -q` (`flags` split at spaces) with each of
    /// `files` as `FLAG PATH`; with `--metrics-listen`, waits for the line naming
    /// the address.
    fn start(flags: &str, files: &[(&str, &Path)]) -> Running {
        let args: Vec<&str> = flags.split_whitespace().collect();
        let mut command = loadmux();
        command.arg("run").args(&args).arg("-q");
        for (flag, path) in files {
            command.arg(flag).arg(path);
        }
        let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let mut metrics = None;
        if args.contains(&"--metrics-listen") {
            for line in lines.by_ref().map_while(Result::ok) {
                seen.push(line.clone());
                if let Some(rest) = line.strip_prefix("loadmux: serving metrics at http://") {
                    metrics = Some(rest.trim_end_matches("/metrics").parse().unwrap());
                    break;
                }
            }
            assert!(metrics.is_some(), "no metrics address in {seen:?}");
        }
        // Keep draining stderr so loadmux never blocks on a full pipe.
        let stderr = thread::spawn(move || seen.into_iter().chain(lines.map_while(Result::ok)).collect());
        Running { child, metrics, stderr }
    }

    /// Waits (at most 60 s) for exit code 0; returns stderr.
    fn finish(mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("loadmux did not end within 60 s");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let stderr = self.stderr.join().unwrap().join("\n");
        assert_eq!(status.code(), Some(0), "{stderr}");
        stderr
    }

    /// Samples resident memory every 100 ms until the process exits: the peak, in KiB.
    fn peak_rss_kib_until_exit(&mut self) -> u64 {
        let mut peak = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            peak = peak.max(self.rss_kib());
            thread::sleep(Duration::from_millis(100));
        }
        peak
    }

    /// Resident memory now, in KiB (0 once the process is gone).
    fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmRSS:")).map(str::to_owned))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

/// One `GET /metrics`: the body.
fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: loadmux\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    answer.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// The value of the unlabelled series `name` in a scrape.
fn series(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {name} in\n{page}"))
        .parse()
        .unwrap()
}

/// Debian's `promtool check metrics` must accept `page` (the exposition format, the
/// naming rules, HELP and TYPE lines).
fn assert_promtool_accepts(promtool: &Path, page: &str) {
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{page}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_a_scrape_taken_mid_run_and_counters_only_grow() {
    let Some(promtool) = real_servers::require("promtool") else { return };
    let run = Running::start("-c 4 -r 1000 -d 3 --metrics-listen 127.0.0.1:0", &[]);
    let addr = run.metrics.unwrap();
    thread::sleep(Duration::from_millis(1500));
    let first = scrape(addr);
    thread::sleep(Duration::from_millis(1000));
    let second = scrape(addr);
    run.finish();

    assert_promtool_accepts(&promtool, &second);
    for name in [
        "loadmux_requests_total",
        "loadmux_requests_completed_total",
        "loadmux_sent_bytes_total",
        "loadmux_request_duration_seconds_count",
    ] {
        let (a, b) = (series(&first, name), series(&second, name));
        assert!(a > 0.0 && b >= a, "{name}: {a} then {b}");
    }
    assert_eq!(series(&second, "loadmux_open_connections"), 4.0);
    assert_eq!(series(&second, "loadmux_target_rate"), 1000.0);
    // The +Inf bucket holds every request, as _count does.
    assert_eq!(
        series(&second, "loadmux_request_duration_seconds_bucket{le=\"+Inf\"}"),
        series(&second, "loadmux_request_duration_seconds_count")
    );
}

#[test]
fn a_real_prometheus_scrapes_a_ten_second_run_and_ends_at_the_reports_count() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    // --metrics-linger keeps the final numbers up for a few more 1 s scrapes.
    let run =
        Running::start("-c 4 -r 500 -d 10 --metrics-listen 127.0.0.1:0 --metrics-linger 4s", &[("--json", &json)]);
    let Some(prometheus) = real_servers::Prometheus::start(run.metrics.unwrap()) else {
        let _ = run.finish();
        return;
    };
    run.finish();
    let report = read_json(&json);
    let sent = report["requests"]["sent"].as_u64().unwrap() as f64;
    let scraped = prometheus.query("max_over_time(loadmux_requests_total[10m])").expect("Prometheus scraped loadmux");
    let scrapes = prometheus.query("count_over_time(loadmux_requests_total[10m])").unwrap();
    assert!(scrapes >= 5.0, "Prometheus scraped only {scrapes} times");
    assert_eq!(scraped, sent, "the last scrape (of {scrapes}) against the report's requests.sent");
    let completed = prometheus.query("max_over_time(loadmux_requests_completed_total[10m])").unwrap();
    assert_eq!(completed, report["requests"]["completed"].as_u64().unwrap() as f64);
}

/// Requests completed by a closed-loop run of 3 s, and the peak RSS seen, while
/// `hostile` (if any) attacks the metrics port.
fn closed_loop_run(hostile: bool) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let mut run = Running::start("-c 8 -d 3 --metrics-listen 127.0.0.1:0", &[("--json", &json)]);
    let addr = run.metrics.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut attackers = Vec::new();
    let mut held = Vec::new();
    if hostile {
        // A header that never ends: 64 MiB, as fast as the server takes it.
        let flood = stop.clone();
        attackers.push(thread::spawn(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
            let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nX-Flood: ");
            let chunk = [b'a'; 64 * 1024];
            for _ in 0..1024 {
                if flood.load(Ordering::Relaxed) || stream.write_all(&chunk).is_err() {
                    break;
                }
            }
        }));
        // A trickler: one byte every 100 ms.
        let trickle = stop.clone();
        attackers.push(thread::spawn(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            for byte in b"GET /metrics HTTP/1.1\r\nX-Slow: ".iter().cycle() {
                if trickle.load(Ordering::Relaxed) || stream.write_all(&[*byte]).is_err() {
                    break;
                }
                thread::sleep(Duration::from_millis(100));
            }
        }));
        // Scrapers that ask and never read the answer, and idle connections: more
        // than the server serves at once.
        for _ in 0..20 {
            let mut stream = TcpStream::connect(addr).unwrap();
            let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
            held.push(stream);
        }
    }
    let peak_kib = run.peak_rss_kib_until_exit();
    run.finish();
    stop.store(true, Ordering::Relaxed);
    drop(held);
    for attacker in attackers {
        attacker.join().unwrap();
    }
    let report = read_json(&json);
    (report["requests"]["completed"].as_u64().unwrap(), peak_kib)
}

#[test]
fn clients_that_never_read_flood_or_trickle_do_not_slow_the_run_or_grow_memory() {
    let _quiet = common::timing_sensitive();
    let (calm, calm_kib) = closed_loop_run(false);
    let (attacked, attacked_kib) = closed_loop_run(true);
    eprintln!("completed: {calm} calm, {attacked} attacked; peak RSS {calm_kib} KiB calm, {attacked_kib} KiB attacked");
    // Generous: the machine is shared, but a blocked coordinator would stop the run.
    assert!(attacked * 2 >= calm, "{attacked} requests while attacked against {calm} calm");
    // 64 MiB were thrown at the port; the server keeps at most 16 x 8 KiB of them.
    assert!(attacked_kib < calm_kib + 16 * 1024, "peak RSS {attacked_kib} KiB attacked, {calm_kib} KiB calm");
}

#[test]
fn statsd_lines_are_well_formed_and_their_counters_add_up_to_the_report() {
    let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    listener.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let run = Running::start(&format!("-c 4 -r 800 -d 3 --statsd {addr} --statsd-prefix lm."), &[("--json", &json)]);
    // Receive in a thread until half a second after loadmux has ended (its last
    // push is then in).
    let done = Arc::new(AtomicBool::new(false));
    let receiving = done.clone();
    let receiver = thread::spawn(move || {
        let mut datagrams = Vec::new();
        let mut buf = [0u8; 65536];
        while !receiving.load(Ordering::Relaxed) {
            if let Ok(n) = listener.recv(&mut buf) {
                assert!(n <= 1432, "a datagram of {n} bytes");
                datagrams.push(String::from_utf8(buf[..n].to_vec()).unwrap());
            }
        }
        datagrams
    });
    run.finish();
    thread::sleep(Duration::from_millis(500));
    done.store(true, Ordering::Relaxed);
    let datagrams = receiver.join().unwrap();
    let report = read_json(&json);
    let mut sums = std::collections::BTreeMap::<String, f64>::new();
    let mut gauges = 0;
    for line in datagrams.iter().flat_map(|d| d.lines()) {
        let (name, rest) = line.split_once(':').unwrap_or_else(|| panic!("no ':' in {line:?}"));
        let (value, kind) = rest.split_once('|').unwrap_or_else(|| panic!("no '|' in {line:?}"));
        assert!(
            name.starts_with("lm.") && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._".contains(&b)),
            "{line:?}"
        );
        let value: f64 = value.parse().unwrap_or_else(|e| panic!("{line:?}: {e}"));
        match kind {
            "c" => *sums.entry(name.to_string()).or_default() += value,
            "g" => gauges += 1,
            other => panic!("unexpected type {other:?} in {line:?}"),
        }
    }
    assert!(datagrams.len() >= 3, "one push a second: {datagrams:?}");
    assert!(gauges >= 3 * 4, "open connections and latency gauges each second: {datagrams:?}");
    let count = |pointer: &str| report.pointer(pointer).and_then(Value::as_u64).unwrap() as f64;
    assert_eq!(sums["lm.requests"], count("/requests/sent"));
    assert_eq!(sums["lm.requests_completed"], count("/requests/completed"));
    assert_eq!(sums["lm.bytes_sent"], count("/bytes/sent"));
    assert_eq!(sums["lm.bytes_received"], count("/bytes/received"));
}

/// A python3 with the `hdrhistogram` package from PyPI, in a venv under cargo's
/// test temp dir (made once, on first use), or None after saying why.
fn hdrh_python() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hdrh-venv");
    let python = venv.join("bin/python");
    let works = |python: &Path| {
        Command::new(python).args(["-c", "import hdrh.log"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    if works(&python) {
        return Some(python);
    }
    let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().is_ok_and(|s| s.success())
        && Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "--disable-pip-version-check", "hdrhistogram==0.10.8"])
            .status()
            .is_ok_and(|s| s.success());
    if made && works(&python) {
        Some(python)
    } else {
        prereq::missing(
            "python3 -m venv with hdrhistogram from PyPI",
            "needs python3-venv (scripts/test.sh) and access to PyPI",
        );
        None
    }
}

/// Reads an interval log and a report with Python's hdrh; prints JSON.
const PYTHON_READER: &str = r#"
import json, sys
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
log_path, report_path = sys.argv[1], sys.argv[2]
reader = HistogramLogReader(log_path, HdrHistogram(1, 60000000, 3))
total = HdrHistogram(1, 60000000, 3)
intervals, tags = 0, []
while True:
    h = reader.get_next_interval_histogram()
    if h is None:
        break
    intervals += 1
    tags.append(h.get_tag())
    total.add(h)
report = HdrHistogram.decode(json.load(open(report_path))["latency_us"]["hdr"])
print(json.dumps({
    "intervals": intervals, "tags": tags, "start_time": reader.get_start_time_sec(),
    "count": total.get_total_count(), "report_count": report.get_total_count(),
    "p50": total.get_value_at_percentile(50), "report_p50": report.get_value_at_percentile(50),
    "p99": total.get_value_at_percentile(99), "report_p99": report.get_value_at_percentile(99),
    "max": total.get_max_value(), "report_max": report.get_max_value(),
}))
"#;

#[test]
fn the_interval_log_read_by_pythons_hdrh_adds_up_to_the_reports_histogram() {
    let Some(python) = hdrh_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (hlog, json) = (dir.path().join("run.hlog"), dir.path().join("report.json"));
    let run = Running::start("-c 4 -r 800 -d 3 --warmup 1s", &[("--json", &json), ("--hlog", &hlog)]);
    run.finish();
    let out = Command::new(python).args(["-c", PYTHON_READER]).arg(&hlog).arg(&json).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = read_json(&json);
    let count = report["latency_us"]["count"].as_u64().unwrap();
    assert!(count > 1000, "{report}");
    // Three measured seconds (the warm-up second is not in the log, as not in the report).
    assert_eq!(seen["intervals"], 3, "{seen}");
    assert_eq!(seen["count"].as_u64(), Some(count), "{seen}");
    assert_eq!(seen["report_count"].as_u64(), Some(count), "{seen}");
    for p in ["p50", "p99", "max"] {
        assert_eq!(seen[p], seen[format!("report_{p}")], "{p}: {seen}");
    }
    // Untagged intervals: the run's total (a mix adds one tag per name).
    assert!(seen["tags"].as_array().unwrap().iter().all(Value::is_null), "{seen}");
    // StartTime is the run's start, as in the report.
    let started = report["started_at_unix_s"].as_f64().unwrap();
    assert!((seen["start_time"].as_f64().unwrap() - started).abs() < 0.01, "{seen} against {started}");
    let text = std::fs::read_to_string(&hlog).unwrap();
    assert!(text.starts_with("#[Histogram log format version 1.3]\n"), "{text}");
    assert!(
        text.contains("\n\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n")
    );
}

#[test]
fn the_interval_log_read_by_the_rust_crate_adds_up_to_the_report_after_ctrl_c() {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;
    let dir = tempfile::tempdir().unwrap();
    let (hlog, json) = (dir.path().join("run.hlog"), dir.path().join("report.json"));
    let mut run = Running::start("-c 4 -r 800 -d 30", &[("--json", &json), ("--hlog", &hlog)]);
    thread::sleep(Duration::from_millis(2500));
    // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
    unsafe { libc::kill(run.child.id() as i32, libc::SIGINT) };
    let status = run.child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "SIGINT's exit code");
    let report = read_json(&json);
    let text = std::fs::read_to_string(&hlog).unwrap();
    let mut total = 0;
    let mut intervals = 0;
    for entry in IntervalLogIterator::new(text.as_bytes()) {
        if let LogEntry::Interval(h) = entry.unwrap_or_else(|e| panic!("{e:?} in\n{text}")) {
            let bytes =
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, h.encoded_histogram()).unwrap();
            let decoded: hdrhistogram::Histogram<u64> = Deserializer::new().deserialize(&mut bytes.as_slice()).unwrap();
            total += decoded.len();
            intervals += 1;
        }
    }
    // Two whole seconds and the part second before the Ctrl-C.
    assert_eq!(intervals, 3, "{text}");
    assert_eq!(total, report["latency_us"]["count"].as_u64().unwrap());
}

#[test]
fn a_busy_metrics_port_or_an_unwritable_hlog_is_one_line_and_exit_2() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();
    for args in [
        vec!["--metrics-listen", busy.as_str()],
        vec!["--hlog", "/nonexistent-dir/run.hlog"],
        vec!["--statsd", "nowhere"],
    ] {
        let out = loadmux().args(["run", "-d", "1", "-q"]).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        // One line, and before anything started (not even the built-in server).
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(args[0]), "{args:?}: {stderr}");
    }
}

#[test]
fn the_target_rate_gauge_follows_the_stages() {
    // 0 to 1000/s over 2 s, then flat at 1000/s for 2 s.
    let run = Running::start("-c 8 --stages 2s:1000,2s:1000 --metrics-listen 127.0.0.1:0", &[]);
    let addr = run.metrics.unwrap();
    // Half a second after the first snapshot (t = 1 s, 500/s), then after the
    // third (t = 3 s, on the flat stage).
    thread::sleep(Duration::from_millis(1500));
    let ramping = series(&scrape(addr), "loadmux_target_rate");
    thread::sleep(Duration::from_millis(1700));
    let flat = series(&scrape(addr), "loadmux_target_rate");
    run.finish();
    // Updated with each snapshot (about once a second per worker), so during the
    // ramp it is a value the ramp passed through before the scrape.
    assert!(ramping > 0.0 && ramping < 1000.0, "during the ramp: {ramping}");
    assert_eq!(flat, 1000.0, "on the flat stage");
}

#[test]
fn with_a_request_mix_every_output_breaks_the_figures_down_per_name() {
    let Some(promtool) = real_servers::require("promtool") else { return };
    let Some(python) = hdrh_python() else { return };
    let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    listener.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let statsd = listener.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (hlog, json) = (dir.path().join("mix.hlog"), dir.path().join("report.json"));
    let flags = format!("-c 4 -r 800 -d 3 --metrics-listen 127.0.0.1:0 --metrics-linger 3s --statsd {statsd}");
    let mut command_flags: Vec<String> = flags.split_whitespace().map(str::to_owned).collect();
    command_flags.extend(["-m", "get=3:GET", "-m", "put=1:PUT"].map(str::to_owned));
    let run = Running::start(&command_flags.join(" "), &[("--json", &json), ("--hlog", &hlog)]);
    let addr = run.metrics.unwrap();
    let receiving = Arc::new(AtomicBool::new(true));
    let receiver = {
        let receiving = receiving.clone();
        thread::spawn(move || {
            let mut lines = Vec::new();
            let mut buf = [0u8; 2048];
            while receiving.load(Ordering::Relaxed) {
                if let Ok(n) = listener.recv(&mut buf) {
                    lines.extend(String::from_utf8_lossy(&buf[..n]).lines().map(str::to_owned));
                }
            }
            lines
        })
    };
    // The last scrape, during --metrics-linger, has the final numbers.
    thread::sleep(Duration::from_millis(4000));
    let last = scrape(addr);
    run.finish();
    receiving.store(false, Ordering::Relaxed);
    let statsd_lines = receiver.join().unwrap();
    let report = read_json(&json);
    let names = report["mix"].as_array().unwrap();
    assert_eq!(names.len(), 2, "{report}");

    assert_promtool_accepts(&promtool, &last);

    let out = Command::new(python).args(["-c", PYTHON_TAGS]).arg(&hlog).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let per_tag: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(per_tag[""].as_u64(), report["latency_us"]["count"].as_u64(), "untagged: the total; {per_tag}");

    for entry in names {
        let name = entry["name"].as_str().unwrap();
        let sent = entry["sent"].as_u64().unwrap();
        assert!(sent > 200, "{entry}");
        assert_eq!(series(&last, &format!("loadmux_requests_total{{name=\"{name}\"}}")), sent as f64, "{name}");
        let completed = entry["completed"].as_u64().unwrap();
        assert_eq!(
            series(&last, &format!("loadmux_request_duration_seconds_count{{name=\"{name}\"}}")),
            entry["latency_us"]["count"].as_u64().unwrap() as f64
        );
        let statsd_sum = |metric: &str| -> u64 {
            let prefix = format!("loadmux.name.{name}.{metric}:");
            statsd_lines.iter().filter_map(|l| l.strip_prefix(&prefix)?.strip_suffix("|c")?.parse::<u64>().ok()).sum()
        };
        assert_eq!(statsd_sum("requests"), sent, "statsd {name}");
        assert_eq!(statsd_sum("requests_completed"), completed, "statsd {name}");
        assert_eq!(per_tag[name].as_u64(), entry["latency_us"]["count"].as_u64(), "hlog Tag={name}: {per_tag}");
    }
}

/// Counts per tag ("" for untagged) in an interval log, with Python's hdrh.
const PYTHON_TAGS: &str = r#"
import json, sys
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
reader = HistogramLogReader(sys.argv[1], HdrHistogram(1, 60000000, 3))
counts = {}
while True:
    h = reader.get_next_interval_histogram()
    if h is None:
        break
    tag = h.get_tag() or ""
    counts[tag] = counts.get(tag, 0) + h.get_total_count()
print(json.dumps(counts))
"#;
