//! Thresholds for CI (`--assert EXPR`): `p99<10ms`, `errors<0.1%`, `rps>5000`...
//!
//! An expression is `METRIC OP VALUE`. Latency metrics take a duration (`us`, `µs`,
//! `ms`, `s`); `errors` takes a count or a percentage; rates and counts take a
//! number. Each threshold is checked against the final report and printed as PASS or
//! FAIL; any FAIL makes the exit code 1.
//!
//! With a request mix, `NAME.METRIC` checks one name's figures (`get.p99<5ms`,
//! `put.errors<1%`, `get.rps>100`): latency statistics, `errors` (a share is of the
//! name's requests sent), `errors.KIND`, `rps` and `completed`. A name the report
//! does not have is an error (exit code 2), never a pass.

use std::fmt;

use crate::report::{Latency, NameReport, Report};
use crate::stats::ErrorKind;

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `=`
    Eq,
}

impl Op {
    fn holds(self, actual: f64, bound: f64) -> bool {
        match self {
            Op::Lt => actual < bound,
            Op::Le => actual <= bound,
            Op::Gt => actual > bound,
            Op::Ge => actual >= bound,
            Op::Eq => actual == bound,
        }
    }
}

/// What a threshold measures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    /// A request-latency statistic, in microseconds: `p50`, `p99.9`, `mean`, `max`...
    Latency(Stat),
    /// The same for connect latency: `connect_p99`...
    ConnectLatency(Stat),
    /// The same for the TLS handshake: `tls_p99`... (a run without TLS fails it).
    TlsLatency(Stat),
    /// Errors as a count (`errors<5`).
    Errors,
    /// Errors as a share of attempts (`errors<0.1%`): errors.total / (requests.sent +
    /// connections.failed), or of 1 when nothing was attempted.
    ErrorRate,
    /// Errors of one kind as a count (`errors.tls_handshake<5`).
    KindErrors(ErrorKind),
    /// Errors of one kind as a share of attempts (`errors.reset<0.1%`).
    KindErrorRate(ErrorKind),
    /// Completed requests per second.
    Rps,
    /// Completed requests.
    Completed,
    /// RESP error replies as a count (`resp_errors<5`).
    RespErrors,
    /// RESP error replies as a share of completed requests (`resp_errors<1%`).
    RespErrorRate,
}

/// Which statistic of a latency histogram.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stat {
    /// A percentile (0 to 100).
    Percentile(f64),
    /// The mean.
    Mean,
    /// The minimum.
    Min,
    /// The maximum.
    Max,
}

/// A parsed `--assert` expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    text: String,
    metric: Metric,
    op: Op,
    /// In the metric's unit: µs for latencies, a fraction for error rates.
    bound: f64,
    /// `NAME.METRIC`: the mix name whose figures are checked, instead of the totals.
    name: Option<String>,
}

/// The result of checking one threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Whether it held.
    pub passed: bool,
    /// `PASS p99<10ms (p99 = 1.21ms)`.
    pub line: String,
}

const METRICS: &str = "p50, p90, p99, p99.9 (any pN), mean, min, max, connect_pN, connect_mean, connect_max, tls_pN, \
                       tls_mean, tls_max, errors, errors.KIND (errors.reset, errors.tls_handshake...), rps, \
                       completed, resp_errors";

impl Threshold {
    /// Parses `METRIC OP VALUE`.
    pub fn parse(expr: &str) -> Result<Threshold, String> {
        let bad = |why: &str| format!("--assert '{expr}': {why}");
        let text: String = expr.chars().filter(|c| !c.is_whitespace()).collect();
        let at = text.find(['<', '>', '=']).ok_or_else(|| bad("no comparison (use < <= > >= =)"))?;
        let (name, rest) = text.split_at(at);
        let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
            (Op::Le, v)
        } else if let Some(v) = rest.strip_prefix(">=") {
            (Op::Ge, v)
        } else if let Some(v) = rest.strip_prefix('<') {
            (Op::Lt, v)
        } else if let Some(v) = rest.strip_prefix('>') {
            (Op::Gt, v)
        } else {
            (Op::Eq, &rest[1..])
        };
        if value.is_empty() || value.starts_with(['<', '>', '=']) {
            return Err(bad("expected one comparison followed by a value"));
        }
        let (mix_name, metric) = match parse_metric(name) {
            Some(metric) => (None, metric),
            None => match split_mix_metric(name) {
                Some((mix_name, metric)) => (Some(mix_name.to_string()), metric),
                None => {
                    return Err(bad(&format!("unknown metric '{name}' (known: {METRICS}; NAME.METRIC for a mix name)")))
                }
            },
        };
        let (metric, bound) = match metric {
            Metric::Latency(_) | Metric::ConnectLatency(_) | Metric::TlsLatency(_) => (
                metric,
                parse_micros(value)
                    .ok_or_else(|| bad(&format!("'{value}' is not a duration (try 10ms, 500us, 1s)")))?,
            ),
            Metric::Errors | Metric::RespErrors | Metric::KindErrors(_) => {
                let (count, share) = match metric {
                    Metric::Errors => (Metric::Errors, Metric::ErrorRate),
                    Metric::KindErrors(kind) => (metric, Metric::KindErrorRate(kind)),
                    _ => (Metric::RespErrors, Metric::RespErrorRate),
                };
                match value.strip_suffix('%') {
                    Some(pct) => {
                        (share, number(pct).map(|p| p / 100.0).ok_or_else(|| bad("expected a percentage like 0.1%"))?)
                    }
                    None => (count, number(value).ok_or_else(|| bad("expected a count or a percentage"))?),
                }
            }
            _ => (metric, number(value).ok_or_else(|| bad(&format!("'{value}' is not a number")))?),
        };
        // Every metric is a count, a rate, a share or a latency: none is negative,
        // and a share is at most 100%.
        if bound < 0.0 {
            return Err(bad(&format!("'{value}' is negative (allowed: 0 or more)")));
        }
        if matches!(metric, Metric::ErrorRate | Metric::KindErrorRate(_)) && bound > 1.0 {
            return Err(bad(&format!("'{value}' is more than 100% (allowed: 0% to 100%)")));
        }
        Ok(Threshold { text: expr.trim().to_string(), metric, op, bound, name: mix_name })
    }

    /// The mix name a `NAME.METRIC` threshold checks, if it is one.
    pub fn mix_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Checks the threshold against a finished run's report. The error is a
    /// report that cannot answer it: a percentile whose histogram (the `hdr`
    /// field of a saved report) does not decode.
    pub fn check(&self, report: &Report) -> Result<Outcome, String> {
        let (actual, shown) = match &self.name {
            Some(name) => {
                let Some(figures) = report.mix.iter().find(|n| &n.name == name) else {
                    let known: Vec<&str> = report.mix.iter().map(|n| n.name.as_str()).collect();
                    return Err(match known.is_empty() {
                        true => format!("{self}: this run had no request mix (no name '{name}')"),
                        false => format!("{self}: no mix name '{name}' (the names: {})", known.join(", ")),
                    });
                };
                self.name_figure(figures)?
            }
            None => self.total_figure(report)?,
        };
        let passed = self.op.holds(actual, self.bound);
        let name = self.text.split(['<', '>', '=']).next().unwrap_or("").trim();
        Ok(Outcome {
            passed,
            line: format!("{} {} ({name} = {shown})", if passed { "PASS" } else { "FAIL" }, self.text),
        })
    }

    /// The figure a `NAME.METRIC` threshold compares, from that name's report.
    fn name_figure(&self, n: &NameReport) -> Result<(f64, String), String> {
        let errors_of = |kind: ErrorKind| n.errors.by_kind.get(kind.name()).copied().unwrap_or(0);
        let share = |errors: u64| {
            let rate = errors as f64 / n.sent.max(1) as f64;
            (rate, format!("{:.3}%", rate * 100.0))
        };
        Ok(match self.metric {
            Metric::Latency(stat) => latency(&n.latency_us, stat).map_err(|e| format!("{self}: {e}"))?,
            Metric::Errors => (n.errors.total as f64, n.errors.total.to_string()),
            Metric::ErrorRate => share(n.errors.total),
            Metric::KindErrors(kind) => (errors_of(kind) as f64, errors_of(kind).to_string()),
            Metric::KindErrorRate(kind) => share(errors_of(kind)),
            Metric::Rps => (n.per_s, format!("{:.1}", n.per_s)),
            Metric::Completed => (n.completed as f64, n.completed.to_string()),
            // split_mix_metric accepts none of the others.
            _ => return Err(format!("{self}: not a per-name metric")),
        })
    }

    /// The figure a threshold on the run's totals compares.
    fn total_figure(&self, report: &Report) -> Result<(f64, String), String> {
        Ok(match self.metric {
            Metric::Latency(stat) => {
                latency(&report.latency_us, stat).map_err(|e| format!("{self}: latency_us {e}"))?
            }
            Metric::ConnectLatency(stat) => {
                latency(&report.connect_latency_us, stat).map_err(|e| format!("{self}: connect_latency_us {e}"))?
            }
            Metric::TlsLatency(stat) => match &report.tls {
                Some(tls) => latency(&tls.handshake_latency_us, stat)
                    .map_err(|e| format!("{self}: tls.handshake_latency_us {e}"))?,
                None => return Err(format!("{self}: this run had no TLS (no handshake latency to check)")),
            },
            Metric::Errors => (report.errors.total as f64, report.errors.total.to_string()),
            Metric::ErrorRate => error_rate(report, report.errors.total),
            Metric::KindErrors(kind) => (report.errors_of(kind) as f64, report.errors_of(kind).to_string()),
            Metric::KindErrorRate(kind) => error_rate(report, report.errors_of(kind)),
            Metric::Rps => (report.requests.per_s, format!("{:.1}", report.requests.per_s)),
            Metric::Completed => (report.requests.completed as f64, report.requests.completed.to_string()),
            // Without --expect resp there are no RESP replies, so none are errors.
            Metric::RespErrors | Metric::RespErrorRate => {
                let errors = report.resp.as_ref().map_or(0, |r| r.errors);
                if self.metric == Metric::RespErrors {
                    (errors as f64, errors.to_string())
                } else {
                    let rate = errors as f64 / report.requests.completed.max(1) as f64;
                    (rate, format!("{:.3}%", rate * 100.0))
                }
            }
        })
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.text)
    }
}

/// `errors` as a share of attempts: requests sent plus connections that failed.
fn error_rate(report: &Report, errors: u64) -> (f64, String) {
    let attempts = (report.requests.sent + report.connections.failed).max(1);
    let rate = errors as f64 / attempts as f64;
    (rate, format!("{:.3}%", rate * 100.0))
}

fn parse_metric(name: &str) -> Option<Metric> {
    if let Some(kind) = name.strip_prefix("errors.") {
        return ErrorKind::from_name(kind).map(Metric::KindErrors);
    }
    if let Some(stat) = name.strip_prefix("tls_").and_then(parse_stat) {
        return Some(Metric::TlsLatency(stat));
    }
    let (connect, stat) = match name.strip_prefix("connect_") {
        Some(rest) => (true, rest),
        None => (false, name),
    };
    match (connect, parse_stat(stat), name) {
        (true, Some(s), _) => Some(Metric::ConnectLatency(s)),
        (false, Some(s), _) => Some(Metric::Latency(s)),
        (false, None, "errors") => Some(Metric::Errors),
        (false, None, "rps") => Some(Metric::Rps),
        (false, None, "completed") => Some(Metric::Completed),
        (false, None, "resp_errors") => Some(Metric::RespErrors),
        _ => None,
    }
}

/// Splits `NAME.METRIC` at the first `.` after which a per-name metric follows
/// (`a.b.p99.9` is name `a.b`, metric `p99.9`). `errors.KIND` is never a name.
fn split_mix_metric(text: &str) -> Option<(&str, Metric)> {
    text.match_indices('.').find_map(|(at, _)| {
        let (name, metric) = (&text[..at], &text[at + 1..]);
        if name == "errors" || !crate::mix::is_name(name) {
            return None;
        }
        let metric = parse_metric(metric)?;
        matches!(metric, Metric::Latency(_) | Metric::Errors | Metric::KindErrors(_) | Metric::Rps | Metric::Completed)
            .then_some((name, metric))
    })
}

/// `mean`, `min`, `max` or `pN`.
fn parse_stat(stat: &str) -> Option<Stat> {
    match stat {
        "mean" => Some(Stat::Mean),
        "min" => Some(Stat::Min),
        "max" => Some(Stat::Max),
        _ => stat.strip_prefix('p').and_then(number).filter(|p| (0.0..=100.0).contains(p)).map(Stat::Percentile),
    }
}

fn number(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// `10ms`, `500us`, `500µs`, `1.5s`, or a bare number of microseconds.
fn parse_micros(text: &str) -> Option<f64> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (value, unit) = text.split_at(split);
    let scale = match unit {
        "" | "us" | "µs" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        _ => return None,
    };
    number(value).map(|v| v * scale)
}

/// The statistic in microseconds and as shown. A percentile comes from the full
/// histogram, so any percentile can be asked of a saved report; one that does not
/// decode is an error, never a quiet fallback to another figure.
fn latency(l: &Latency, stat: Stat) -> Result<(f64, String), String> {
    let us = match stat {
        Stat::Percentile(p) => crate::stats::LatencyHistogram::from_base64(&l.hdr)?.percentile(p),
        Stat::Mean => l.mean.round() as u64,
        Stat::Min => l.min,
        Stat::Max => l.max,
    };
    Ok((us as f64, crate::report::format_micros(us)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_and_operator_parses() {
        assert_eq!(Threshold::parse("p99<10ms").unwrap().metric, Metric::Latency(Stat::Percentile(99.0)));
        assert_eq!(Threshold::parse("p99.9 < 50ms").unwrap().bound, 50_000.0);
        assert_eq!(Threshold::parse("p50<=2ms").unwrap().op, Op::Le);
        assert_eq!(Threshold::parse("max<1s").unwrap().bound, 1e6);
        assert_eq!(Threshold::parse("mean<500us").unwrap().bound, 500.0);
        assert_eq!(Threshold::parse("mean<500µs").unwrap().bound, 500.0);
        assert_eq!(Threshold::parse("connect_p99<5ms").unwrap().metric, Metric::ConnectLatency(Stat::Percentile(99.0)));
        let rate = Threshold::parse("errors<0.1%").unwrap();
        assert_eq!((rate.metric, rate.bound), (Metric::ErrorRate, 0.001));
        assert_eq!(Threshold::parse("errors=0").unwrap().metric, Metric::Errors);
        assert_eq!(Threshold::parse("rps>5000").unwrap().op, Op::Gt);
        assert_eq!(Threshold::parse("completed>=1000").unwrap().op, Op::Ge);
        let resp = Threshold::parse("resp_errors<1%").unwrap();
        assert_eq!((resp.metric, resp.bound), (Metric::RespErrorRate, 0.01));
        assert_eq!(Threshold::parse("resp_errors=0").unwrap().metric, Metric::RespErrors);
    }

    #[test]
    fn resp_errors_are_a_share_of_completed_requests() {
        let mut r = report();
        r.requests.completed = 1000;
        r.resp = Some(crate::report::RespReplies { errors: 5, ..Default::default() });
        let check = |e: &str, r: &Report| Threshold::parse(e).unwrap().check(r);
        assert!(check("resp_errors<1%", &r).unwrap().passed, "0.5% of 1000");
        assert!(!check("resp_errors<0.4%", &r).unwrap().passed);
        assert!(check("resp_errors=5", &r).unwrap().passed);
        assert_eq!(check("resp_errors<1%", &r).unwrap().line, "PASS resp_errors<1% (resp_errors = 0.500%)");
        r.resp = None;
        assert!(check("resp_errors=0", &r).unwrap().passed, "no RESP replies, no RESP errors");
    }

    #[test]
    fn a_name_prefix_checks_one_mix_name() {
        let t = Threshold::parse("get.p99.9<5ms").unwrap();
        assert_eq!((t.mix_name(), t.metric, t.bound), (Some("get"), Metric::Latency(Stat::Percentile(99.9)), 5000.0));
        let t = Threshold::parse("a.b-c.errors.eof<1%").unwrap();
        assert_eq!((t.mix_name(), t.metric), (Some("a.b-c"), Metric::KindErrorRate(ErrorKind::Eof)));
        assert_eq!(Threshold::parse("put.completed>5").unwrap().mix_name(), Some("put"));
        assert_eq!(Threshold::parse("errors.reset<5").unwrap().mix_name(), None, "errors.KIND stays run-wide");
        for bad in ["get.connect_p99<1ms", "get.tls_p99<1ms", "get.resp_errors<1", "9x.p99<1ms", "get.nope<1"] {
            assert!(Threshold::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_name_threshold_reads_that_names_figures_and_an_absent_name_is_an_error() {
        let mut r = report();
        let mut hist = crate::stats::LatencyHistogram::new();
        hist.record(2_000);
        r.mix = vec![crate::report::NameReport {
            name: "get".into(),
            weight: 3,
            sent: 10,
            completed: 10,
            per_s: 5.0,
            errors: crate::report::Errors { total: 1, by_kind: [("eof".to_string(), 1)].into() },
            latency_us: Latency::from_histogram(&hist),
        }];
        let check = |e: &str| Threshold::parse(e).unwrap().check(&r);
        assert!(check("get.p99<3ms").unwrap().passed);
        assert!(!check("get.p99<1ms").unwrap().passed);
        assert!(check("get.errors.eof=1").unwrap().passed);
        assert!(check("get.errors<=10%").unwrap().passed, "a share of the name's requests sent");
        assert!(check("put.p99<1s").unwrap_err().contains("no mix name 'put' (the names: get)"));
    }

    #[test]
    fn malformed_expressions_are_rejected_with_a_reason() {
        for bad in ["p99<", "<10ms", "p99<10xs", "foo<1", "p99<<1ms", "p99", "p101<1ms", "rps>fast", "errors<x%"] {
            let err = Threshold::parse(bad).unwrap_err();
            assert!(err.contains(bad), "{bad}: {err}");
        }
        assert!(Threshold::parse("foo<1").unwrap_err().contains("known:"));
        for out_of_range in ["p99<-1ms", "errors<-1", "errors<101%", "rps>-5", "p99<NaN", "p99<infms", "pNaN<1ms"] {
            assert!(Threshold::parse(out_of_range).is_err(), "{out_of_range}");
        }
    }

    #[test]
    fn each_operator_holds_exactly_at_its_boundary() {
        let cases = [(Op::Lt, [false, false, true]), (Op::Le, [false, true, true]), (Op::Gt, [true, false, false])];
        for (op, expected) in cases {
            assert_eq!([op.holds(2.0, 1.0), op.holds(1.0, 1.0), op.holds(0.0, 1.0)], expected, "{op:?}");
        }
        assert_eq!([Op::Ge.holds(2.0, 1.0), Op::Ge.holds(1.0, 1.0), Op::Ge.holds(0.0, 1.0)], [true, true, false]);
        assert_eq!([Op::Eq.holds(2.0, 1.0), Op::Eq.holds(1.0, 1.0), Op::Eq.holds(0.0, 1.0)], [false, true, false]);
    }

    #[test]
    fn a_missing_or_doubled_comparison_says_so() {
        for bad in ["p99<", "p99<<1ms", "p99>=", "rps=>5"] {
            let err = Threshold::parse(bad).unwrap_err();
            assert!(err.contains("expected one comparison followed by a value"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_share_may_be_exactly_100_percent() {
        let t = Threshold::parse("errors<=100%").unwrap();
        assert_eq!((t.metric, t.bound), (Metric::ErrorRate, 1.0));
        assert!(Threshold::parse("errors.eof<100%").is_ok());
    }

    #[test]
    fn every_stat_name_parses_to_its_stat() {
        for (name, stat) in
            [("min", Stat::Min), ("max", Stat::Max), ("mean", Stat::Mean), ("p50", Stat::Percentile(50.0))]
        {
            assert_eq!(parse_stat(name), Some(stat), "{name}");
            assert_eq!(Threshold::parse(&format!("{name}<1s")).unwrap().metric, Metric::Latency(stat));
        }
    }

    #[test]
    fn a_percentile_of_an_undecodable_histogram_is_an_error_not_another_figure() {
        let mut r = report();
        r.latency_us.hdr = "not a histogram".into();
        let err = Threshold::parse("p50<1s").unwrap().check(&r).unwrap_err();
        assert!(err.contains("p50<1s") && err.contains("latency_us"), "{err}");
        // Figures stored as numbers need no histogram.
        assert!(Threshold::parse("max<1s").unwrap().check(&r).is_ok());
    }

    fn report() -> Report {
        let json = include_str!("../tests/data/report-small.json");
        serde_json::from_str(json).expect("fixture parses")
    }

    #[test]
    fn thresholds_pass_and_fail_against_a_report() {
        let r = report();
        let check = |e: &str| Threshold::parse(e).unwrap().check(&r).unwrap();
        assert!(check("p99<100ms").passed);
        assert!(!check("p99<1us").passed);
        assert!(check("errors<50%").passed);
        assert!(!check("errors=0").passed || r.errors.total == 0);
        assert!(check("completed>=1").passed);
        assert!(!check("rps>1000000000").passed);
        let line = check("p99<1us").line;
        assert!(line.starts_with("FAIL p99<1us (p99 = "), "{line}");
    }

    #[test]
    fn errors_of_one_kind_are_a_count_or_a_share_of_attempts() {
        let mut r = report();
        r.errors.by_kind.insert("tls_handshake".into(), 3);
        r.requests.sent = 97;
        r.connections.failed = 3;
        let check = |e: &str| Threshold::parse(e).unwrap().check(&r).unwrap();
        assert!(check("errors.tls_handshake=3").passed);
        assert!(!check("errors.tls_handshake<3").passed);
        assert!(check("errors.tls_handshake<=3%").passed, "3 of 100 attempts");
        assert!(!check("errors.tls_handshake<2.9%").passed);
        assert_eq!(
            check("errors.tls_handshake<1%").line,
            "FAIL errors.tls_handshake<1% (errors.tls_handshake = 3.000%)"
        );
        assert!(check("errors.reset=0").passed, "a kind with no count is 0");
        let unknown = Threshold::parse("errors.nonsense<1").unwrap_err();
        assert!(unknown.contains("unknown metric 'errors.nonsense'") && unknown.contains("errors.KIND"), "{unknown}");
        assert!(Threshold::parse("errors.reset<101%").unwrap_err().contains("100%"));
    }

    #[test]
    fn tls_handshake_latency_is_checked_from_its_histogram_and_needs_tls() {
        let mut r = report();
        let err = Threshold::parse("tls_p99<50ms").unwrap().check(&r).unwrap_err();
        assert!(err.contains("no TLS"), "{err}");
        let mut h = crate::stats::LatencyHistogram::new();
        for us in [1_000, 2_000, 40_000] {
            h.record(us);
        }
        let handshake_latency_us = crate::report::Latency::from_histogram(&h);
        r.tls = Some(crate::report::Tls { handshake_latency_us, ..Default::default() });
        let check = |e: &str| Threshold::parse(e).unwrap().check(&r).unwrap();
        assert!(check("tls_p50<5ms").passed);
        assert!(!check("tls_p99<5ms").passed, "the 40 ms handshake is the p99");
        assert!(check("tls_max<41ms").passed, "40 ms, to the histogram's 3 significant digits");
    }
}
