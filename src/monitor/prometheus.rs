//! The Prometheus text exposition format (version 0.0.4) of a run's totals: what
//! `GET /metrics` answers under `--metrics-listen`.
//!
//! Every series follows the report: traffic counters cover the measured window
//! (after `--warmup`), so `loadmux_requests_total` ends equal to the report's
//! `requests.sent`. Counters only grow, because the totals they are rendered
//! from only grow.

use std::fmt::Write as _;

use crate::stats::{Counters, ErrorCounts, ErrorKind, LatencyHistogram};

/// Upper bounds of the `loadmux_request_duration_seconds` buckets, in seconds:
/// 100 µs to 60 s (the histogram's range), about three per decade, so that
/// `histogram_quantile` has something to interpolate between at every scale.
pub const BUCKET_BOUNDS_S: [f64; 18] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The same bounds in microseconds, the unit the histograms record in.
const BUCKET_BOUNDS_US: [u64; 18] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

/// The series a request-mix name has too: the run's totals, or (with a `name`
/// label) one name's.
pub struct Group<'a> {
    /// The `name` label's value, or `None` for the run's totals (no label).
    pub name: Option<&'a str>,
    /// Requests sent so far.
    pub sent: u64,
    /// Requests completed so far.
    pub completed: u64,
    /// Errors by kind so far.
    pub errors: &'a ErrorCounts,
    /// Request latency so far (from the intended send, in microseconds).
    pub latency: &'a LatencyHistogram,
}

impl<'a> Group<'a> {
    /// The run's totals: no label.
    pub fn totals(counters: &'a Counters, latency: &'a LatencyHistogram) -> Group<'a> {
        Group {
            name: None,
            sent: counters.requests_sent,
            completed: counters.requests_completed,
            errors: &counters.errors,
            latency,
        }
    }
}

/// What one scrape shows.
pub struct Exposition<'a> {
    /// The run's counters: the byte and connection series, which have no per-name
    /// breakdown.
    pub counters: &'a Counters,
    /// The totals first, then one group per mix name, if any.
    pub groups: &'a [Group<'a>],
    /// Connections established right now.
    pub open_connections: u64,
    /// Open loop: the requests per second asked for; `None` in closed loop.
    pub target_rate: Option<f64>,
}

/// Renders `view` into `out` (cleared first), reusing its allocation.
pub fn render(view: &Exposition, out: &mut String) {
    out.clear();
    let per_group = |out: &mut String, name: &str, help: &str, value: &dyn Fn(&Group) -> u64| {
        family(out, name, "counter", help);
        for g in view.groups {
            let _ = writeln!(out, "{name}{} {}", labels(g.name, None), value(g));
        }
    };
    per_group(
        out,
        "loadmux_requests_total",
        "Requests sent (first byte written) in the measured window; ends equal to the report's requests.sent.",
        &|g| g.sent,
    );
    per_group(
        out,
        "loadmux_requests_completed_total",
        "Requests whose response arrived complete, in the measured window (the report's requests.completed).",
        &|g| g.completed,
    );
    let run_wide = |out: &mut String, name: &str, help: &str, value: u64| {
        family(out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    };
    let c = view.counters;
    run_wide(out, "loadmux_sent_bytes_total", "Bytes written to sockets in the measured window.", c.bytes_sent);
    run_wide(out, "loadmux_received_bytes_total", "Bytes read from sockets in the measured window.", c.bytes_received);
    run_wide(
        out,
        "loadmux_connections_established_total",
        "Connections whose handshake completed, over the whole run (warm-up included), reconnects included.",
        c.conns_established,
    );

    family(out, "loadmux_errors_total", "counter", "Errors by kind, in the measured window (kinds as in the report).");
    for g in view.groups {
        for kind in ErrorKind::ALL {
            let _ = writeln!(
                out,
                "loadmux_errors_total{} {}",
                labels(g.name, Some(("kind", kind.name()))),
                g.errors.get(kind)
            );
        }
    }

    family(out, "loadmux_open_connections", "gauge", "Connections established right now.");
    let _ = writeln!(out, "loadmux_open_connections {}", view.open_connections);
    family(out, "loadmux_target_rate", "gauge", "Open loop: requests per second asked for (0 in closed loop).");
    let _ = writeln!(out, "loadmux_target_rate {}", view.target_rate.unwrap_or(0.0));

    family(
        out,
        "loadmux_request_duration_seconds",
        "histogram",
        "Request latency from the intended send (coordinated omission corrected), measured window.",
    );
    for g in view.groups {
        histogram(out, g);
    }
}

/// The HELP and TYPE lines of one metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// `{name="get",kind="eof"}`, or nothing when there are no labels. Mix names come
/// from the user's mix file: quotes, backslashes and newlines are escaped as the
/// format requires.
fn labels(name: Option<&str>, extra: Option<(&str, &str)>) -> String {
    let mut pairs = Vec::new();
    if let Some(name) = name {
        pairs.push(format!("name=\"{}\"", escape(name)));
    }
    if let Some((key, value)) = extra {
        pairs.push(format!("{key}=\"{}\"", escape(value)));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The cumulative buckets, `_sum` and `_count` of one group's latency, from the
/// exact HdrHistogram counts. A recorded value counts in the first bucket whose
/// bound is at least the value (HdrHistogram keeps values within 0.1%, so a value
/// within 0.1% of a bound may land on either side of it).
fn histogram(out: &mut String, g: &Group) {
    let mut per_bucket = [0u64; BUCKET_BOUNDS_US.len()];
    let mut sum_us: u128 = 0;
    for (value_us, count) in g.latency.recorded() {
        sum_us += u128::from(value_us) * u128::from(count);
        // Values are clamped to 60 s when recorded, but HdrHistogram's top bucket
        // may reach a little above it: those go in the last bound.
        let bucket = BUCKET_BOUNDS_US.iter().position(|&bound| value_us <= bound).unwrap_or(BUCKET_BOUNDS_US.len() - 1);
        per_bucket[bucket] += count;
    }
    let name = "loadmux_request_duration_seconds";
    let mut cumulative = 0;
    for (bound, count) in BUCKET_BOUNDS_S.iter().zip(per_bucket) {
        cumulative += count;
        let _ = writeln!(out, "{name}_bucket{} {cumulative}", labels(g.name, Some(("le", &bound.to_string()))));
    }
    let total = g.latency.count();
    let _ = writeln!(out, "{name}_bucket{} {total}", labels(g.name, Some(("le", "+Inf"))));
    let _ = writeln!(out, "{name}_sum{} {}", labels(g.name, None), sum_us as f64 / 1e6);
    let _ = writeln!(out, "{name}_count{} {total}", labels(g.name, None));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no line {prefix} in\n{text}"))
    }

    #[test]
    fn counters_gauges_and_buckets_are_rendered_from_the_totals() {
        let mut counters =
            Counters { requests_sent: 12, requests_completed: 10, bytes_sent: 300, ..Counters::default() };
        counters.errors.add(ErrorKind::Eof);
        let mut latency = LatencyHistogram::new();
        for us in [50, 100, 101, 2_000, 2_000_000] {
            latency.record(us);
        }
        let groups = [Group::totals(&counters, &latency)];
        let mut out = String::new();
        let view = Exposition { counters: &counters, groups: &groups, open_connections: 4, target_rate: Some(250.0) };
        render(&view, &mut out);
        assert_eq!(line(&out, "loadmux_requests_total "), "loadmux_requests_total 12");
        assert_eq!(line(&out, "loadmux_requests_completed_total "), "loadmux_requests_completed_total 10");
        assert_eq!(line(&out, "loadmux_errors_total{kind=\"eof\"}"), "loadmux_errors_total{kind=\"eof\"} 1");
        assert_eq!(line(&out, "loadmux_errors_total{kind=\"reset\"}"), "loadmux_errors_total{kind=\"reset\"} 0");
        assert_eq!(line(&out, "loadmux_open_connections "), "loadmux_open_connections 4");
        assert_eq!(line(&out, "loadmux_target_rate "), "loadmux_target_rate 250");
        let bucket =
            |le: &str| line(&out, &format!("loadmux_request_duration_seconds_bucket{{le=\"{le}\"}}")).to_owned();
        // 50 and 100 are at or below 100 µs; 101 is not.
        assert!(bucket("0.0001").ends_with(" 2"), "{}", bucket("0.0001"));
        assert!(bucket("0.00025").ends_with(" 3"));
        assert!(bucket("0.0025").ends_with(" 4"));
        assert!(bucket("2.5").ends_with(" 5"));
        assert!(bucket("+Inf").ends_with(" 5"));
        assert_eq!(line(&out, "loadmux_request_duration_seconds_count "), "loadmux_request_duration_seconds_count 5");
        let sum: f64 = line(&out, "loadmux_request_duration_seconds_sum ").split(' ').nth(1).unwrap().parse().unwrap();
        assert!((sum - 2.002251).abs() < 0.003, "sum {sum}");
        // Every family has its HELP and TYPE.
        assert_eq!(out.matches("# TYPE ").count(), out.matches("# HELP ").count());
        assert!(out.contains("# TYPE loadmux_request_duration_seconds histogram"));
    }

    #[test]
    fn a_mix_name_becomes_an_escaped_label() {
        let counters = Counters { requests_sent: 3, ..Counters::default() };
        let latency = LatencyHistogram::new();
        let groups = [
            Group::totals(&counters, &latency),
            Group { name: Some("get \"a\""), sent: 3, completed: 2, errors: &counters.errors, latency: &latency },
        ];
        let mut out = String::new();
        render(&Exposition { counters: &counters, groups: &groups, open_connections: 0, target_rate: None }, &mut out);
        assert!(out.contains("loadmux_requests_total{name=\"get \\\"a\\\"\"} 3"), "{out}");
        assert!(out.contains("loadmux_errors_total{name=\"get \\\"a\\\"\",kind=\"eof\"} 0"), "{out}");
        assert!(out.contains("loadmux_requests_completed_total{name=\"get \\\"a\\\"\"} 2"), "{out}");
        assert!(out.contains("loadmux_request_duration_seconds_count{name=\"get \\\"a\\\"\"} 0"), "{out}");
        assert!(out.contains("loadmux_target_rate 0\n"), "{out}");
        // Bytes have no per-name breakdown: one line.
        assert_eq!(out.matches("\nloadmux_sent_bytes_total ").count(), 1, "{out}");
    }
}
