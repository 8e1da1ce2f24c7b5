//! The live progress line, one per second on stderr.

use crate::stats::TimelineRow;

/// Formats one second of the run for the live line.
pub fn live_line(row: &TimelineRow, duration_s: f64) -> String {
    let secs = row.t_s.min(duration_s);
    let interval = 1.0; // Rows are one second long while the run is in progress.
    format!(
        "[{secs:>5.1}s/{duration_s:.0}s] open {open} | {rps:.0} req/s | in {inb:.2} MB/s out {outb:.2} MB/s | p99 {p99} | errors {err}",
        open = row.open,
        rps = row.delta.requests_completed as f64 / interval,
        inb = row.delta.bytes_received as f64 / interval / 1e6,
        outb = row.delta.bytes_sent as f64 / interval / 1e6,
        p99 = super::text::micros(row.p99_us),
        err = row.delta.errors.total(),
    )
}
