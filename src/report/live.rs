//! The live progress line on stderr, once a second.

use crate::stats::{Phase, TimelineRow};

use super::text::micros;

/// Formats one interval of the run. `total_s` is warm-up plus duration.
pub fn live_line(row: &TimelineRow, total_s: f64) -> String {
    let span = if row.span_s > 0.0 { row.span_s } else { 1.0 };
    let per_s = |n: u64| n as f64 / span;
    let phase = match row.phase {
        Phase::Measure => "",
        Phase::Warmup => " warmup",
        Phase::Ramp => " ramp",
    };
    format!(
        "[{t:>5.1}s, {left:.0}s left{phase}] open {open} | {rps:.0} req/s | in {inb:.2} MB/s out {outb:.2} MB/s | p50 {p50} p99 {p99} | errors {err}",
        t = row.t_s,
        left = (total_s - row.t_s).max(0.0),
        open = row.open,
        rps = per_s(row.delta.requests_completed),
        inb = per_s(row.delta.bytes_received) / 1e6,
        outb = per_s(row.delta.bytes_sent) / 1e6,
        p50 = micros(row.p50_us),
        p99 = micros(row.p99_us),
        err = row.delta.errors.total(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Counters;

    #[test]
    fn the_line_shows_rates_per_second_of_the_interval() {
        let row = TimelineRow {
            t_s: 3.0,
            span_s: 0.5,
            phase: Phase::Warmup,
            delta: Counters { requests_completed: 500, bytes_received: 1_000_000, ..Counters::default() },
            open: 7,
            p50_us: 120,
            p99_us: 2_500,
            max_us: 9_000,
            per_name: Vec::new(),
        };
        let line = live_line(&row, 10.0);
        assert!(line.contains("7s left warmup"), "{line}");
        assert!(line.contains("1000 req/s"), "{line}");
        assert!(line.contains("in 2.00 MB/s"), "{line}");
        assert!(line.contains("p50 120µs p99 2.50ms"), "{line}");
    }
}
