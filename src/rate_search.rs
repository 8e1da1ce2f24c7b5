//! `--rate-search 'p99<10ms'`: the highest request rate at which a threshold holds.
//!
//! A closed-loop step first measures the most the server does at all. Then a binary
//! search over open-loop steps (`-r`, each `--duration` long) narrows the rate down.
//! A step passes only when the threshold holds *and* the achieved rate kept up with
//! the target (at least 97%): a server that cannot keep up does not pass by sending
//! fewer requests. Latency in open loop is corrected for coordinated omission, so a
//! rate at which the server starts queueing fails as it should.

use std::sync::Arc;

use crate::assert::Threshold;
use crate::engine::{self, StopReason};
use crate::plan::Plan;
use crate::report::Report;

/// Steps after the closed-loop probe.
const MAX_STEPS: usize = 8;
/// The search stops when the bracket is narrower than this share of the rate.
const PRECISION: f64 = 0.02;
/// A step must achieve this share of its target rate to pass.
const KEEP_UP: f64 = 0.97;

/// One measured step.
#[derive(Clone, Debug)]
pub struct Step {
    /// Target rate (`None` for the closed-loop probe).
    pub target: Option<f64>,
    /// Its report.
    pub report: Report,
    /// Whether it passed.
    pub passed: bool,
    /// The human line printed for it.
    pub line: String,
}

/// The search's result.
#[derive(Debug)]
pub struct Outcome {
    /// Every step, in order.
    pub steps: Vec<Step>,
    /// The highest passing rate and its step, if any passed.
    pub best: Option<Step>,
    /// Stopped by a signal.
    pub interrupted: Option<i32>,
}

/// Runs the search. `on_step` is called with each step's line as it completes.
pub fn search(base: &Plan, threshold: &Threshold, on_step: &mut dyn FnMut(&str)) -> std::io::Result<Outcome> {
    let mut steps: Vec<Step> = Vec::new();
    let run_step = |target: Option<f64>| -> std::io::Result<(Step, Option<i32>)> {
        let mut plan = base.clone().with_rate(target);
        plan.requests = None;
        let result = engine::run(Arc::new(plan.clone()), &mut |_| {})?;
        let report = Report::from_run(&result, &plan);
        // This report was built from live histograms, so it always decodes; the error
        // is passed on rather than assumed away.
        let check = threshold.check(&report).map_err(std::io::Error::other)?;
        let kept_up = target.is_none_or(|r| report.requests.per_s >= KEEP_UP * r);
        let passed = check.passed && kept_up;
        let label = target.map_or("closed loop".to_string(), |r| format!("-r {r:.0}"));
        let line = format!(
            "{label:>14}: {:>9.0} req/s, {} {}{}",
            report.requests.per_s,
            check.line,
            if kept_up { "" } else { "(did not keep up with the rate) " },
            if passed { "→ pass" } else { "→ fail" }
        );
        let signal = match result.stop {
            StopReason::Signal(s) => Some(s),
            _ => None,
        };
        Ok((Step { target, report, passed, line }, signal))
    };

    let (probe, signal) = run_step(None)?;
    on_step(&probe.line);
    let ceiling = probe.report.requests.per_s;
    steps.push(probe);
    if signal.is_some() || ceiling <= 0.0 {
        return Ok(Outcome { steps, best: None, interrupted: signal });
    }
    let (mut low, mut high) = (0.0f64, ceiling);
    let mut best: Option<Step> = None;
    for _ in 0..MAX_STEPS {
        if high - low <= PRECISION * high {
            break;
        }
        // The first guess is the ceiling itself: often the threshold holds there.
        let target = if best.is_none() && low == 0.0 && steps.len() == 1 { high } else { (low + high) / 2.0 };
        let (step, signal) = run_step(Some(target))?;
        on_step(&step.line);
        if step.passed {
            low = target;
            best = Some(step.clone());
        } else {
            high = target;
        }
        steps.push(step);
        if signal.is_some() {
            return Ok(Outcome { steps, best, interrupted: signal });
        }
        if low == ceiling {
            break; // The ceiling itself passed: nothing higher to find.
        }
    }
    Ok(Outcome { steps, best, interrupted: None })
}
