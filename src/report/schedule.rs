//! Whether an open-loop run kept its schedule: one sentence when it did not.
//!
//! Latency in open loop counts from each request's intended send time, so a
//! schedule the client could not keep still shows in the latencies, but nothing
//! there says whether the client or the server was late. The send lag and the
//! dropped sends say it, and this turns them into a warning.

use super::text::micros;

/// Send lag p99 above which the schedule counts as not kept: 1 ms is where a paced
/// send's lateness starts to matter next to the latencies most servers have.
const SEND_LAG_WARN_US: u64 = 1_000;

/// One sentence when sends left more than 1 ms late at p99 (`send_lag_p99_us`), or
/// `dropped` sends fell due while their connection's pipeline was full. Then the
/// offered load was not the rate asked for, and the latencies include the wait.
pub fn not_kept(send_lag_p99_us: u64, dropped: u64) -> Option<String> {
    let late = send_lag_p99_us > SEND_LAG_WARN_US;
    match (late, dropped > 0) {
        (false, false) => None,
        (true, false) => Some(format!(
            "p99 send lag {} (over 1ms): the client did not keep the schedule; use more threads (-t) or a lower -r",
            micros(send_lag_p99_us)
        )),
        (_, true) => Some(format!(
            "{dropped} sends fell due with their connection's pipeline full{}: raise -c or -P, or lower -r",
            if late { format!(" (p99 send lag {})", micros(send_lag_p99_us)) } else { String::new() }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_schedule_says_nothing() {
        assert_eq!(not_kept(0, 0), None);
        assert_eq!(not_kept(1_000, 0), None, "1 ms is the limit, not over it");
    }

    #[test]
    fn a_late_or_full_schedule_says_so_in_one_line() {
        let late = not_kept(2_500, 0).unwrap();
        assert!(late.contains("p99 send lag 2.50ms"), "{late}");
        let dropped = not_kept(10, 7).unwrap();
        assert!(dropped.starts_with("7 sends fell due"), "{dropped}");
        let both = not_kept(5_000, 7).unwrap();
        assert!(both.contains("7 sends") && both.contains("5.00ms") && !both.contains('\n'), "{both}");
    }
}
