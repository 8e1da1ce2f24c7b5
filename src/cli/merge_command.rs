//! `loadmux merge`: one exact report from the reports of several shards.

use std::path::PathBuf;

use super::outputs::Outputs;
use super::verdict;
use crate::exit;
use crate::report;

/// Flags of `loadmux merge`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    loadmux merge shard-*.json -o all.json --html all.html\n  \
    loadmux merge shard-*.json -o all.json --assert 'p99<10ms'   # exit 1 if it fails")]
pub struct MergeArgs {
    /// JSON reports written by `loadmux run --json`.
    #[arg(required = true, num_args = 1..)]
    pub inputs: Vec<PathBuf>,
    /// Where to write the merged JSON report (`-` for stdout).
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: PathBuf,
    /// Also write the merged HTML report here.
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
    /// A threshold checked against the merged report, as for `run` (e.g. p99<10ms).
    /// Repeatable; any failure makes the exit code 1.
    #[arg(long = "assert", value_name = "EXPR")]
    pub asserts: Vec<String>,
}

/// `loadmux merge`: reads every input, merges them exactly, writes the result and
/// checks `--assert` on it. Returns the exit code.
pub fn merge_command(args: MergeArgs) -> i32 {
    let thresholds = match verdict::parse_thresholds(&args.asserts) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("loadmux merge: {e}");
            return exit::USAGE;
        }
    };
    let outputs = Outputs { json: Some(args.output.clone()), csv: None, html: args.html.clone() };
    if let Err(e) = outputs.check() {
        eprintln!("loadmux merge: {e}");
        return exit::USAGE;
    }
    let mut reports = Vec::with_capacity(args.inputs.len());
    for path in &args.inputs {
        match report::read_report(path) {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!("loadmux merge: {e}");
                return exit::USAGE;
            }
        }
    }
    let names: Vec<String> = args.inputs.iter().map(|p| p.display().to_string()).collect();
    let merged = match report::merge(&reports, &names) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("loadmux merge: {e}");
            return exit::USAGE;
        }
    };
    if let Err(e) = outputs.write(&merged) {
        eprintln!("loadmux merge: {e}");
        return exit::USAGE;
    }
    if !outputs.json_to_stdout() {
        eprintln!(
            "loadmux merge: {} reports: {} requests completed, p99 {}",
            reports.len(),
            merged.requests.completed,
            report::format_micros(merged.latency_us.p99)
        );
    }
    verdict::judge(&thresholds, &merged, outputs.json_to_stdout())
}
