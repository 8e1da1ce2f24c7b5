//! loadmux against real servers that nobody here wrote: Redis and nginx, checked
//! against the servers' own counts.

mod common;

use common::real_servers::{Nginx, Redis};
use common::*;
use serde_json::Value;

fn run_json(args: &[&str]) -> Value {
    let out = loadmux().args(args).args(["-q", "--json", "-"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn redis_ping_matches_the_servers_command_count(pipeline: &str) {
    let Some(redis) = Redis::start() else { return };
    let before = redis.info_stat("total_commands_processed");
    let addr = redis.addr.to_string();
    let report =
        run_json(&["run", &addr, "-m", "PING\\r\\n", "--expect", "line", "-P", pipeline, "-c", "10", "-n", "20000"]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    assert_eq!(count(&report, "/requests/completed"), 20_000);
    // INFO itself is a command: the count after includes the INFO that reads it.
    let after = redis.info_stat("total_commands_processed");
    assert_eq!(after - before - 1, 20_000, "redis processed exactly the requests loadmux completed");
}

#[test]
fn redis_ping_without_pipelining_matches_info_stats() {
    redis_ping_matches_the_servers_command_count("1");
}

#[test]
fn redis_ping_pipelined_16_deep_matches_info_stats() {
    redis_ping_matches_the_servers_command_count("16");
}

#[test]
fn redis_set_with_templates_creates_one_key_per_connection() {
    let Some(redis) = Redis::start() else { return };
    let addr = redis.addr.to_string();
    let report =
        run_json(&["run", &addr, "-m", "SET k{conn} v{seq}\\r\\n", "--expect", "line", "-c", "25", "-d", "1s"]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    assert!(count(&report, "/requests/completed") > 25);
    assert_eq!(redis.cli(&["DBSIZE"]).trim(), "25", "one key per connection id");
    // The last value each connection wrote is its own sequence number.
    let value = redis.cli(&["GET", "k0"]);
    let seq = value.trim().strip_prefix('v').and_then(|n| n.parse::<u64>().ok());
    assert!(seq.is_some_and(|n| n > 0), "GET k0 = {value:?}");
}

#[test]
fn nginx_keepalive_get_matches_the_access_log() {
    let Some(nginx) = Nginx::start() else { return };
    let addr = nginx.addr.to_string();
    let report = run_json(&[
        "run",
        &addr,
        "-m",
        "GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n",
        "--expect",
        "http",
        "-c",
        "8",
        "-n",
        "5000",
    ]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    assert_eq!(count(&report, "/requests/completed"), 5000);
    assert_eq!(nginx.access_log_lines(), 5000, "nginx logged exactly the requests loadmux completed");
}

#[test]
fn connect_churn_against_redis_waits_for_each_close_and_redis_accepted_every_connection() {
    let Some(redis) = Redis::start() else { return };
    let before = redis.info_stat("total_connections_received");
    let addr = redis.addr.to_string();
    // FIN churn: each connection sends its FIN and waits for Redis to close its side
    // (`State::Closing`), which Redis does only after accepting it. A paced 500/s
    // keeps the TIME_WAIT sockets left on this host few.
    let report = run_json(&["run", &addr, "--mode", "connect", "-c", "4", "--connect-rate", "500", "-d", "1s"]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    let established = count(&report, "/connections/established");
    // A wait that ended only at --timeout (a close never seen) would allow 4 a second.
    assert!(established >= 200, "{established} connections in 1 s at --connect-rate 500");
    // Each redis-cli call is a connection too: the one reading `after` is counted.
    // The up to 4 connects still under way when the run stopped reached Redis too.
    let after = redis.info_stat("total_connections_received");
    let attempted = count(&report, "/connections/attempted");
    assert!(attempted - established <= 4, "{attempted} attempted, {established} established");
    assert_eq!(after - before - 1, attempted, "Redis accepted exactly the connections loadmux attempted");
}
