//! `--expect memcache` against Debian's memcached, checked against its own `stats`.

mod common;

use common::real_servers::Memcached;
use common::*;
use serde_json::Value;

fn run_ok(args: &[&str]) -> Value {
    let out = loadmux().args(args).args(["-q", "--json", "-"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn set_then_get_hits_and_misses_match_memcached_stats() {
    let Some(memcached) = Memcached::start() else { return };
    let addr = memcached.addr.to_string();
    let set = run_ok(&[
        "run",
        &addr,
        "-m",
        "set k{conn}:{seq} 0 0 1000\\r\\n{value:1000}\\r\\n",
        "--expect",
        "memcache",
        "-c",
        "5",
        "-t",
        "1",
        "-n",
        "1000",
    ]);
    assert_eq!(count(&set, "/errors/total"), 0, "{set}");
    assert_eq!(count(&set, "/memcache/stored"), 1000);
    assert_eq!(memcached.stat("cmd_set"), 1000, "memcached stored exactly what loadmux counted");
    assert_eq!(count(&set, "/bytes/received"), 1000 * "STORED\r\n".len() as u64);

    // Every other get asks for a key never set: about half are misses (give or take
    // one per connection, as connections need not send even counts).
    let get = run_ok(&[
        "run",
        &addr,
        "-m",
        "get k{conn}:{seq}\\r\\n",
        "-m",
        "get never{seq}\\r\\n",
        "--expect",
        "memcache",
        "-c",
        "5",
        "-t",
        "1",
        "-n",
        "1000",
    ]);
    assert_eq!(count(&get, "/errors/total"), 0, "{get}");
    let (hits, misses) = (count(&get, "/memcache/get_hits"), count(&get, "/memcache/get_misses"));
    assert_eq!(hits + misses, 1000);
    assert!(hits > 0 && misses >= 495, "{hits} hits, {misses} misses");
    assert_eq!((memcached.stat("get_hits"), memcached.stat("get_misses")), (hits, misses));
    assert_eq!(memcached.stat("cmd_get"), 1000);
}

#[test]
fn server_and_client_errors_are_replies_not_connection_errors() {
    let Some(memcached) = Memcached::start() else { return };
    let addr = memcached.addr.to_string();
    // A value that does not fit memcached's 1 MiB item limit, and an unknown command.
    let report = run_ok(&[
        "run",
        &addr,
        "-m",
        "set big 0 0 2000000\\r\\n{value:2000000}\\r\\n",
        "-m",
        "bogus\\r\\n",
        "--expect",
        "memcache",
        "-c",
        "1",
        "-n",
        "10",
        "--max-response",
        "4k",
    ]);
    assert_eq!(count(&report, "/errors/total"), 0, "{report}");
    assert_eq!(count(&report, "/connections/attempted"), 1);
    assert_eq!(count(&report, "/memcache/server_error"), 5, "{report}");
    assert_eq!(count(&report, "/memcache/error"), 5, "{report}");
}
