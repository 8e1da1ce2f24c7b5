//! Running out of file descriptors mid-run (another process took them, or the limit
//! was lowered after the check): counted as fd_limit, retried with backoff, no panic.
//! Its own test binary, because it lowers this process's RLIMIT_NOFILE.

mod common;

use std::sync::Arc;
use std::time::Duration;

use loadmux::engine;
use loadmux::plan::Plan;

#[test]
fn running_out_of_descriptors_mid_run_counts_fd_limit() {
    let server = common::Serve::start(&["--mode", "echo"]);
    // Leave room for the runtime and a few dozen sockets, not for 300.
    let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
    rlimit::Resource::NOFILE.set(120, hard).unwrap();
    let mut plan = Plan::new(vec![loadmux::transport::Target::Tcp(server.addr)]);
    plan.connections = 300;
    plan.threads = 2;
    plan.duration = Duration::from_secs(1);
    let result = engine::run(Arc::new(plan), &mut |_| {}).expect("the run starts");
    let c = &result.totals.counters;
    assert!(c.errors.get(loadmux::stats::ErrorKind::FdLimit) > 0, "{c:?}");
    assert!(c.conns_established > 0, "the descriptors there were still served");
    assert!(c.requests_completed > 0);
    assert_eq!(c.errors.total(), c.errors.get(loadmux::stats::ErrorKind::FdLimit), "{c:?}");
}
