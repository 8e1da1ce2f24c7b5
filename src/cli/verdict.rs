//! `--assert`: parsing the thresholds and judging a report against them. Shared by
//! `run`, `report` and `merge`, so all three answer with the same exit codes.

use crate::assert::Threshold;
use crate::exit;
use crate::plan::PlanError;
use crate::report::Report;

/// Parses every `--assert` expression; the first malformed one is the error.
pub fn parse_thresholds(exprs: &[String]) -> Result<Vec<Threshold>, PlanError> {
    exprs.iter().map(|e| Threshold::parse(e).map_err(PlanError)).collect()
}

/// Prints one line per threshold (on stdout, or on stderr when stdout carries the
/// JSON report) and returns the exit code: [`exit::THRESHOLD_FAILED`] if any
/// failed, else [`exit::OK`]; [`exit::USAGE`] when the report cannot answer one (a
/// saved report whose histogram does not decode).
pub fn judge(thresholds: &[Threshold], report: &Report, stdout_is_json: bool) -> i32 {
    let mut failed = false;
    for threshold in thresholds {
        let outcome = match threshold.check(report) {
            Ok(outcome) => outcome,
            Err(e) => {
                eprintln!("loadmux: --assert {e}");
                return exit::USAGE;
            }
        };
        failed |= !outcome.passed;
        if stdout_is_json {
            eprintln!("  {}", outcome.line);
        } else {
            println!("  {}", outcome.line);
        }
    }
    if failed {
        exit::THRESHOLD_FAILED
    } else {
        exit::OK
    }
}
