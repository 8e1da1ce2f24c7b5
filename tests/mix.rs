//! Request mix (`--mix FILE`, `-m NAME=WEIGHT:MESSAGE`): the split follows the
//! weights, per-name figures add up, `--assert NAME.METRIC` passes and fails,
//! shards merge per name exactly, bad specs are refused, and each name's own
//! `expect` frames its responses against real servers (memcached, redis, nginx).

mod common;

use common::real_servers::{Memcached, Nginx, Redis};
use common::*;
use serde_json::Value;

/// The report's per-name entry called `name`.
fn name<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["mix"]
        .as_array()
        .and_then(|names| names.iter().find(|n| n["name"] == name))
        .unwrap_or_else(|| panic!("no mix name {name} in {}", report["mix"]))
}

/// The per-name figures add up to the totals: every request belongs to one name.
fn assert_names_add_up(report: &Value, names: &[&str]) {
    for (total, per_name) in [("/requests/completed", "/completed"), ("/requests/sent", "/sent")] {
        let sum: u64 = names.iter().map(|n| count(name(report, n), per_name)).sum();
        assert_eq!(sum, count(report, total), "{total}");
    }
    let hist: u64 = names.iter().map(|n| count(name(report, n), "/latency_us/count")).sum();
    assert_eq!(hist, count(report, "/latency_us/count"), "histogram counts");
}

#[test]
fn a_random_3_to_1_mix_splits_3_to_1_within_2_percent_and_repeats_with_its_seed() {
    let _quiet = timing_sensitive();
    let args = ["-m", "get=3:GET {seq}\\n", "-m", "put=1:PUT {conn}\\n", "-n", "20000", "-c", "1", "-t", "1"];
    let report = run_report(&[&args[..], &["--seed", "42"]].concat());
    assert_eq!(count(&report, "/errors/total"), 0, "every echo matched its own name's message");
    assert_names_add_up(&report, &["get", "put"]);
    let get = count(name(&report, "get"), "/completed") as f64;
    let share = get / 20_000.0;
    assert!((share - 0.75).abs() <= 0.02 * 0.75, "get's share {share}");
    let again = run_report(&[&args[..], &["--seed", "42"]].concat());
    assert_eq!(name(&again, "get")["completed"], name(&report, "get")["completed"], "same seed, same picks");
    let other = run_report(&[&args[..], &["--seed", "43"]].concat());
    assert_ne!(name(&other, "get")["completed"], name(&report, "get")["completed"], "another seed, other picks");
    // Without --seed a seed is drawn and reported, so that run can be repeated too.
    assert_eq!(
        (report["config"]["mix_order"].as_str(), report["config"]["mix_seed"].as_u64()),
        (Some("random"), Some(42))
    );
    let drawn = run_report(&args);
    let seed = drawn["config"]["mix_seed"].as_u64().expect("the drawn seed is reported").to_string();
    let repeated = run_report(&[&args[..], &["--seed", &seed]].concat());
    assert_eq!(name(&repeated, "get")["completed"], name(&drawn, "get")["completed"], "the reported seed repeats it");
}

#[test]
fn a_round_robin_mix_is_exact() {
    let _quiet = timing_sensitive();
    let round_robin = |connections: &str, threads: &str| {
        let mix = ["-m", "get=3:GET\\n", "-m", "put=1:PUT\\n", "--mix-order", "round-robin", "-n", "20000"];
        run_report(&[&mix[..], &["-c", connections, "-t", threads]].concat())
    };
    let report = round_robin("1", "1");
    assert_eq!(count(name(&report, "get"), "/completed"), 15_000);
    assert_eq!(count(name(&report, "put"), "/completed"), 5_000);
    assert_eq!(name(&report, "get")["weight"], 3);
    // Many connections: each walks the cycle on its own, so a share is exact to
    // within one cycle (4 requests) per connection.
    let report = round_robin("8", "2");
    let put = count(name(&report, "put"), "/completed");
    assert!(put.abs_diff(5_000) <= 8 * 3, "put {put}");
    assert_names_add_up(&report, &["get", "put"]);
}

#[test]
fn per_name_thresholds_pass_and_fail_and_an_unknown_name_is_a_usage_error() {
    let run = |asserts: &[&str]| {
        let mut cmd = loadmux();
        cmd.args(["run", "-m", "get=3:GET\\n", "-m", "put=1:PUT\\n", "-n", "2000", "-c", "2", "-t", "1", "-q"]);
        for a in asserts {
            cmd.args(["--assert", a]);
        }
        cmd.output().unwrap()
    };
    let pass = run(&["get.p99<5s", "put.completed>100", "get.errors=0", "put.errors.eof<1%", "get.rps>1"]);
    let stdout = String::from_utf8_lossy(&pass.stdout);
    assert_eq!(pass.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("PASS get.p99<5s (get.p99 = "), "{stdout}");
    let fail = run(&["get.p99<5s", "put.completed>2000"]);
    let stdout = String::from_utf8_lossy(&fail.stdout);
    assert_eq!(fail.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL put.completed>2000"), "{stdout}");
    let unknown = run(&["got.p99<5s"]);
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("'got' is not a mix name (the names: get, put)"), "{stderr}");
}

#[test]
fn merged_shards_keep_per_name_histograms_exact_and_names_of_one_shard() {
    let dir = tempfile::tempdir().unwrap();
    let shard = |i: &str, extra: &str| {
        let path = dir.path().join(format!("shard{i}.json"));
        let out = loadmux()
            .args(["run", "-m", "get=3:GET\\n", "-m", extra, "-n", "3000", "-c", "4", "-t", "1", "-q", "--shard"])
            .arg(format!("{i}/2"))
            .arg("--json")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        (read_json(&path), path)
    };
    let (a, a_path) = shard("1", "put=1:PUT\\n");
    let (b, b_path) = shard("2", "del=1:DEL\\n");
    let merged_path = dir.path().join("merged.json");
    let out = loadmux()
        .arg("merge")
        .args([&a_path, &b_path])
        .arg("-o")
        .arg(&merged_path)
        .args(["--assert", "get.completed>0", "--assert", "del.errors=0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let merged = read_json(&merged_path);
    let get_sum = count(name(&a, "get"), "/latency_us/count") + count(name(&b, "get"), "/latency_us/count");
    assert_eq!(count(name(&merged, "get"), "/latency_us/count"), get_sum, "histograms add");
    assert_eq!(count(name(&merged, "get"), "/completed"), get_sum);
    assert_eq!(count(name(&merged, "put"), "/completed"), count(name(&a, "put"), "/completed"), "put: shard 1 only");
    assert_eq!(count(name(&merged, "del"), "/completed"), count(name(&b, "del"), "/completed"), "del: shard 2 only");
    let max = count(name(&a, "get"), "/latency_us/max").max(count(name(&b, "get"), "/latency_us/max"));
    assert_eq!(count(name(&merged, "get"), "/latency_us/max"), max);
    assert_names_add_up(&merged, &["get", "put", "del"]);
    // A saved report answers per-name thresholds too.
    let out = loadmux().arg("report").arg(&merged_path).args(["--assert", "put.p99<1us"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let out = loadmux().arg("report").arg(&merged_path).args(["--assert", "nope.p99<1s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn every_output_shows_the_names() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, html) = (dir.path().join("t.csv"), dir.path().join("r.html"));
    let out = loadmux()
        .args(["run", "-m", "get=3:GET\\n", "-m", "put=1:PUT\\n", "-n", "2000", "-c", "2", "-t", "1", "-q"])
        .arg("--csv")
        .arg(&csv)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(text.contains("  mix order     random (--seed "), "{text}");
    let table: Vec<&str> = text.lines().skip_while(|l| !l.trim_start().starts_with("mix  ")).take(3).collect();
    assert!(table[0].contains("weight") && table[0].contains("p99"), "{text}");
    assert!(table[1].trim_start().starts_with("get ") && table[2].trim_start().starts_with("put "), "{text}");
    let csv = std::fs::read_to_string(&csv).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let column = |c: &str| header.iter().position(|h| *h == c).unwrap_or_else(|| panic!("no {c} in {header:?}"));
    let (get, put, all) = (column("get_requests"), column("put_requests"), column("requests"));
    for row in csv.lines().skip(1) {
        let cells: Vec<u64> = row.split(',').map(|c| c.parse().unwrap_or(0)).collect();
        assert_eq!(cells[get] + cells[put], cells[all], "{row}");
    }
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(html.contains("<h2>Request mix</h2>") && html.contains("<td>put</td>"));
}

#[test]
fn an_error_counts_under_the_name_of_the_request_it_left_unanswered() {
    // A server that never answers: every connection ends in response_timeout, with
    // a request of some name outstanding.
    let silent = SilentServer::start();
    let report = run_report(&[
        &silent.addr.to_string(),
        "-m",
        "get=1:GET\\n",
        "-m",
        "put=1:PUT\\n",
        "--mix-order",
        "round-robin",
        "-c",
        "4",
        "-t",
        "1",
        "--timeout",
        "200ms",
        "--no-reconnect",
        "-d",
        "1s",
    ]);
    let timeouts = count(&report, "/errors/by_kind/response_timeout");
    assert_eq!(timeouts, 4, "{report}");
    let per_name: u64 =
        ["get", "put"].iter().map(|n| count(name(&report, n), "/errors/by_kind/response_timeout")).sum();
    assert_eq!(per_name, timeouts, "each timeout belongs to exactly one name");
    assert_eq!(count(name(&report, "get"), "/errors/total") + count(name(&report, "put"), "/errors/total"), 4);
}

#[test]
fn connect_mode_exchanges_one_mix_entry_per_connection() {
    // From a --mix file (no -m at all): connect mode still exchanges a message.
    let dir = tempfile::tempdir().unwrap();
    let mix = dir.path().join("mix.json");
    std::fs::write(
        &mix,
        r#"{"request":[{"name":"a","weight":1,"message":"A\n"},{"name":"b","weight":1,"message":"B\n"}]}"#,
    )
    .unwrap();
    let report = run_report(&["--mode", "connect", "--mix", mix.to_str().unwrap(), "-c", "2", "-t", "1", "-d", "1s"]);
    let done = count(&report, "/requests/completed");
    assert!(done > 10, "{report}");
    assert_eq!(count(name(&report, "a"), "/completed") + count(name(&report, "b"), "/completed"), done);
}

#[test]
fn bad_mix_specs_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = |text: &str| {
        let path = dir.path().join(format!("m{}.toml", text.len()));
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    let many: String = (0..65).map(|i| format!("-m n{i}=1:x ")).collect();
    let many: Vec<&str> = many.split_whitespace().collect();
    let nan = file("[[request]]\nname = \"a\"\nweight = nan\nmessage = \"x\"\n");
    let no_message = file("[[request]]\nname = \"a\"\nweight = 1\n");
    let ws_without_session = file("[[request]]\nname = \"a\"\nweight = 1\nmessage = \"x\"\nexpect = \"ws\"\n");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["-m", "get=0:x"], "out of range"),
        (vec!["-m", "get=-1:x"], "out of range"),
        (vec!["-m", "get=NaN:x"], "out of range"),
        (vec!["-m", "get=1.5:x"], "out of range"),
        (vec!["-m", "get=1000001:x"], "out of range"),
        (vec!["-m", "get=1:"], "-m get: the message is empty"),
        (vec!["-m", "get=1:x", "-m", "get=2:y"], "twice"),
        (vec!["-m", "get=1:x", "-m", "plain"], "name every -m"),
        (many, "at most 64"),
        (vec!["--mix", &nan], "line 3"),
        (vec!["--mix", &no_message], "exactly one of"),
        (vec!["--mix", "/nonexistent/mix.toml"], "--mix /nonexistent/mix.toml"),
        (vec!["--seed", "1"], "apply to a request mix"),
        (vec!["--mix", &ws_without_session], "mix entry 'a': expect ws needs a WebSocket session"),
        (vec!["-m", "get=1:x", "--mode", "stream"], "request and connect modes"),
    ];
    for (args, why) in cases {
        let out = loadmux().arg("run").args(&args).args(["-n", "1", "-q"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
}

#[test]
fn a_message_that_merely_contains_equals_or_colon_stays_plain() {
    // Neither is NAME=WEIGHT: at the start, so both are plain messages sent in turn.
    let report = run_report(&["-m", "a b=1:x\\n", "-m", "\\x61=1:y\\n", "-n", "100", "-c", "1", "-t", "1"]);
    assert_eq!(count(&report, "/requests/completed"), 100);
    assert_eq!(count(&report, "/errors/total"), 0);
    assert!(report.get("mix").is_none(), "no mix: {report}");
}

#[test]
fn each_name_is_framed_by_its_own_expect_against_memcached() {
    // Not alongside this file's 20 000-request runs: on a busy 2-core machine a
    // starved single-worker server could miss a response deadline.
    let _quiet = timing_sensitive();
    let Some(memcached) = Memcached::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mix = dir.path().join("mix.toml");
    // set answers one line (STORED); get answers VALUE ... END or just END: two
    // framings in one run, neither of them the run's own (echo).
    std::fs::write(
        &mix,
        "[[request]]\nname = \"set\"\nweight = 1\ntemplate = 'set k{seq} 0 0 5\\r\\nhello\\r\\n'\nexpect = \"line\"\n\n\
         [[request]]\nname = \"get\"\nweight = 3\ntemplate = 'get k{seq}\\r\\n'\nexpect = \"memcache\"\n",
    )
    .unwrap();
    let report = run_report(&[
        &memcached.addr.to_string(),
        "--mix",
        mix.to_str().unwrap(),
        "--seed",
        "7",
        "-n",
        "4000",
        "-c",
        "4",
        "-t",
        "1",
        // Pipelined: a set's line and a get's END arrive back to back in one read,
        // and each is framed by the name of the request it answers.
        "-P",
        "8",
    ]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    assert_names_add_up(&report, &["set", "get"]);
    assert_eq!(memcached.stat("cmd_set"), count(name(&report, "set"), "/completed"), "memcached's own count");
    assert_eq!(memcached.stat("cmd_get"), count(name(&report, "get"), "/completed"));
}

#[test]
fn redis_counts_each_names_commands_as_loadmux_does() {
    // Not alongside this file's 20 000-request runs: on a busy 2-core machine a
    // starved single-worker server could miss a response deadline.
    let _quiet = timing_sensitive();
    let Some(redis) = Redis::start() else { return };
    let report = run_report(&[
        &redis.addr.to_string(),
        "--resp",
        "--expect",
        "resp",
        "-m",
        "set=1:SET k{seq} v",
        "-m",
        "get=3:GET k1",
        "--seed",
        "3",
        "-n",
        "8000",
        "-c",
        "8",
        "-t",
        "2",
        "-P",
        "4",
    ]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    assert_names_add_up(&report, &["set", "get"]);
    assert_eq!(redis.command_calls("set"), count(name(&report, "set"), "/completed"));
    assert_eq!(redis.command_calls("get"), count(name(&report, "get"), "/completed"));
    let share = count(name(&report, "get"), "/completed") as f64 / 8000.0;
    assert!((share - 0.75).abs() < 0.03, "get's share {share}");
}

#[test]
fn the_example_json_mix_against_nginx_matches_its_access_log_path_by_path() {
    // Not alongside this file's 20 000-request runs: on a busy 2-core machine a
    // starved single-worker server could miss a response deadline.
    let _quiet = timing_sensitive();
    let Some(nginx) = Nginx::start() else { return };
    let mix = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mix-http.json");
    let report = run_report(&[
        &nginx.addr.to_string(),
        "--mix",
        mix,
        "--expect",
        "http",
        "--seed",
        "5",
        "-n",
        "2000",
        "-c",
        "4",
        "-t",
        "1",
    ]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    assert_names_add_up(&report, &["index", "missing"]);
    let log = nginx.access_log();
    let served = |path: &str, status: &str| {
        log.lines().filter(|l| l.contains(&format!("\"GET {path} HTTP/1.1\" {status} "))).count() as u64
    };
    let (index, missing) = (count(name(&report, "index"), "/completed"), count(name(&report, "missing"), "/completed"));
    assert_eq!(served("/index.html", "200"), index, "nginx served each index request loadmux counted");
    assert_eq!(served("/no-such-page", "404"), missing);
    assert_eq!((count(&report, "/http_status/2xx"), count(&report, "/http_status/4xx")), (index, missing));
    assert!(index > missing * 2, "3:1 weights: {index} index, {missing} missing");
}

#[test]
fn a_library_plan_with_a_mix_counts_per_name_in_the_totals_and_every_timeline_row() {
    use loadmux::mix::{Mix, MixEntry, MixOrder};
    use loadmux::payload::Template;
    use std::sync::Arc;

    let server = echo_server();
    let addr = server.local_addr().tcp().expect("the echo server listens on TCP");
    let entry = |name: &str, weight| MixEntry {
        name: name.into(),
        weight,
        template: Template::parse(format!("{name} {{seq}}\n").into_bytes()).unwrap(),
        framing: None,
    };
    let mix = Mix::new(vec![entry("get", 3), entry("put", 1)], MixOrder::RoundRobin).unwrap();
    let mut plan = loadmux::plan::Plan::new(vec![loadmux::transport::Target::Tcp(addr)]);
    plan.connections = 1; // One connection walks whole cycles: an exact split.
    plan.requests = Some(4000);
    let plan = Arc::new(plan.with_mix(mix));
    let result = loadmux::engine::run(plan.clone(), &mut |_row| {}).unwrap();
    let done: Vec<u64> = result.totals.per_name.iter().map(|n| n.completed).collect();
    assert_eq!(done.iter().sum::<u64>(), result.totals.counters.requests_completed);
    assert_eq!(done, [3000, 1000], "round robin over whole cycles");
    // The timeline rows (what a live exporter sees each second) add up to the totals.
    let mut from_rows = [0u64; 2];
    for row in &result.timeline {
        for (i, n) in row.per_name.iter().enumerate() {
            from_rows[i] += n.completed;
        }
    }
    assert_eq!(from_rows.to_vec(), done);
    let report = loadmux::report::Report::from_run(&result, &plan);
    assert_eq!(report.mix.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["get", "put"]);
    assert_eq!(report.errors.total, 0);
    server.stop();
}
