//! `--resp` and `--expect resp` against Debian's redis-server, checked against Redis's
//! own counts (`INFO commandstats`, `INFO stats`) and exact byte counts of the replies.

mod common;

use common::real_servers::Redis;
use common::*;
use serde_json::Value;

/// Runs loadmux and returns its JSON report and exit code.
fn run(args: &[&str]) -> (Value, Option<i32>) {
    let out = loadmux().args(args).args(["-q", "--json", "-"]).output().unwrap();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    (report, out.status.code())
}

fn run_ok(args: &[&str]) -> Value {
    let (report, code) = run(args);
    assert_eq!(code, Some(0), "{args:?}: {report}");
    report
}

#[test]
fn set_of_10k_values_then_get_of_those_keys_matches_redis_counts_and_bytes() {
    let Some(redis) = Redis::start() else { return };
    let addr = redis.addr.to_string();
    let set = run_ok(&[
        "run",
        &addr,
        "--resp",
        "-m",
        "SET k{conn}:{seq} {value:10240}",
        "--expect",
        "resp",
        "-c",
        "10",
        "-t",
        "1",
        "-n",
        "2000",
    ]);
    assert_eq!(count(&set, "/errors/total"), 0, "{set}");
    assert_eq!(count(&set, "/resp/errors"), 0, "{set}");
    assert_eq!(count(&set, "/requests/completed"), 2000);
    assert_eq!(redis.command_calls("set"), 2000, "Redis ran exactly the SETs loadmux completed");
    assert_eq!(redis.cli(&["DBSIZE"]).trim(), "2000", "every SET had its own key");
    assert_eq!(count(&set, "/bytes/received"), 2000 * "+OK\r\n".len() as u64);
    assert_eq!(redis.cli(&["STRLEN", "k0:0"]).trim(), "10240", "the value is {{value:10240}} long");

    let (hits_before, misses_before) = (redis.info_stat("keyspace_hits"), redis.info_stat("keyspace_misses"));
    let get = run_ok(&[
        "run",
        &addr,
        "--resp",
        "-m",
        "GET k{conn}:{seq}",
        "--expect",
        "resp",
        "-c",
        "10",
        "-t",
        "1",
        "-n",
        "2000",
    ]);
    assert_eq!(count(&get, "/errors/total"), 0, "{get}");
    assert_eq!(count(&get, "/requests/completed"), 2000);
    assert_eq!(redis.command_calls("get"), 2000);
    // Connections may share the 2000 requests differently in the second run, so a
    // GET may miss; Redis counts hits and misses, and the bytes must add up exactly.
    let hits = redis.info_stat("keyspace_hits") - hits_before;
    let misses = redis.info_stat("keyspace_misses") - misses_before;
    assert_eq!(hits + misses, 2000);
    assert!(hits > 0);
    let hit_bytes = "$10240\r\n".len() as u64 + 10240 + 2;
    assert_eq!(count(&get, "/bytes/received"), hits * hit_bytes + misses * "$-1\r\n".len() as u64);
}

#[test]
fn lrange_of_100_elements_decodes_one_array_per_request() {
    let Some(redis) = Redis::start() else { return };
    let addr = redis.addr.to_string();
    let elements: Vec<String> = (0..100).map(|i| format!("element-{i}")).collect();
    let mut rpush = vec!["RPUSH", "list"];
    rpush.extend(elements.iter().map(String::as_str));
    assert_eq!(redis.cli(&rpush).trim(), "100");
    let report =
        run_ok(&["run", &addr, "--resp", "-m", "LRANGE list 0 -1", "--expect", "resp", "-c", "4", "-n", "1000"]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    assert_eq!(count(&report, "/requests/completed"), 1000);
    assert_eq!(redis.command_calls("lrange"), 1000);
    let array_len: usize =
        "*100\r\n".len() + elements.iter().map(|e| format!("${}\r\n{e}\r\n", e.len()).len()).sum::<usize>();
    assert_eq!(count(&report, "/bytes/received"), 1000 * array_len as u64, "each reply was one whole array");
}

#[test]
fn hello_3_then_resp3_maps_and_doubles() {
    let Some(redis) = Redis::start() else { return };
    let addr = redis.addr.to_string();
    redis.cli(&["HSET", "h", "f1", "v1", "f2", "v2"]);
    redis.cli(&["ZADD", "z", "1.5", "m"]);
    let hello = redis.raw_reply(b"HELLO 3\r\n");
    assert!(hello.starts_with(b"%"), "HELLO 3 answers with a RESP3 map: {}", hello.escape_ascii());
    let report = run_ok(&[
        "run",
        &addr,
        "--resp",
        "--first-message",
        "HELLO 3",
        "-m",
        "HGETALL h",
        "-m",
        "ZSCORE z m",
        "--expect",
        "resp",
        "-c",
        "1",
        "-n",
        "500",
    ]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    assert_eq!(count(&report, "/requests/completed"), 500);
    assert_eq!((redis.command_calls("hgetall"), redis.command_calls("zscore")), (250, 250));
    // Under RESP3 HGETALL is a map (%2) and ZSCORE a double (,1.5): the byte count
    // proves both were read as RESP3, since RESP2's bulk "1.5" is 3 bytes longer.
    let map = "%2\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n".len() as u64;
    let double = ",1.5\r\n".len() as u64;
    assert_eq!(count(&report, "/bytes/received"), hello.len() as u64 + 250 * (map + double));
}

#[test]
fn wrongtype_is_a_reply_error_not_a_connection_error() {
    let Some(redis) = Redis::start() else { return };
    let addr = redis.addr.to_string();
    redis.cli(&["LPUSH", "alist", "x"]);
    let args = ["run", &addr, "--resp", "-m", "GET alist", "-m", "PING", "--expect", "resp", "-c", "3", "-n", "300"];
    let report = run_ok(&args);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    assert_eq!(count(&report, "/connections/attempted"), 3, "no connection was closed over an error reply");
    assert_eq!(count(&report, "/requests/completed"), 300);
    // Each connection alternates GET and PING, so about half are GETs (exactly half
    // only if every connection sent an even number): compare with Redis's counts.
    let gets = redis.command_calls("get");
    assert_eq!(gets + redis.command_calls("ping"), 300);
    assert!((148..=152).contains(&gets), "{gets} GETs");
    assert_eq!(count(&report, "/resp/errors"), gets, "every GET of a list is an error reply");
    assert_eq!(count(&report, "/resp/errors_by_word/WRONGTYPE"), gets);
    assert_eq!(redis.info_stat("total_error_replies"), gets, "Redis sent exactly the errors loadmux counted");
    // --assert sees them: about half the replies were errors.
    let (report, code) = run(&[&args[..], &["--assert", "resp_errors<1%"]].concat());
    assert_eq!(code, Some(1), "{report}");
    let (_, code) = run(&[&args[..], &["--assert", "resp_errors<60%", "--assert", "errors=0"]].concat());
    assert_eq!(code, Some(0));
}

#[test]
fn pipelined_16_deep_set_get_mix_matches_commandstats() {
    let Some(redis) = Redis::start() else { return };
    let addr = redis.addr.to_string();
    let report = run_ok(&[
        "run",
        &addr,
        "--resp",
        "-m",
        "SET key:{rand:3} {value:100}",
        "-m",
        "GET key:{rand:3}",
        "--expect",
        "resp",
        "-P",
        "16",
        "-c",
        "8",
        "-n",
        "16000",
    ]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    assert_eq!(count(&report, "/resp/errors"), 0, "{report}");
    assert_eq!(count(&report, "/requests/completed"), 16000);
    assert_eq!(redis.command_calls("set") + redis.command_calls("get"), 16000);
    // Messages alternate on each connection: half are SETs, give or take one each.
    assert!(redis.command_calls("set").abs_diff(8000) <= 8, "{} SETs", redis.command_calls("set"));
}
