//! `loadmux report`: judge a saved JSON report, print its summary, turn it into
//! HTML and/or CSV.

use std::path::PathBuf;

use super::outputs::Outputs;
use super::verdict;
use crate::exit;
use crate::report::{self, Report};

/// Flags of `loadmux report`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    loadmux report run.json                        # the text summary, as run prints it\n  \
    loadmux report run.json --html run.html\n  \
    loadmux report run.json --assert 'p99<10ms'    # exit 1 if it fails")]
pub struct ReportArgs {
    /// A JSON report written by `loadmux run --json` or `loadmux merge`.
    pub input: PathBuf,
    /// Write the HTML report here.
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
    /// Write the timeline as CSV here.
    #[arg(long, value_name = "PATH")]
    pub csv: Option<PathBuf>,
    /// A threshold checked against the saved report, as for `run` (e.g. p99<10ms,
    /// errors<0.1%). Repeatable; any failure makes the exit code 1.
    #[arg(long = "assert", value_name = "EXPR")]
    pub asserts: Vec<String>,
}

/// `loadmux report`: prints the text summary when no file is asked for, writes the
/// files asked for, then checks `--assert`. Returns the exit code.
pub fn report_command(args: ReportArgs) -> i32 {
    let thresholds = match verdict::parse_thresholds(&args.asserts) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("loadmux report: {e}");
            return exit::USAGE;
        }
    };
    let outputs = Outputs { json: None, csv: args.csv.clone(), html: args.html.clone() };
    if let Err(e) = outputs.check() {
        eprintln!("loadmux report: {e}");
        return exit::USAGE;
    }
    let report: Report = match report::read_report(&args.input) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadmux report: {e}");
            return exit::USAGE;
        }
    };
    if outputs.csv.is_none() && outputs.html.is_none() {
        let header = format!("loadmux report: {}", args.input.display());
        print!("{}", report::render_text(&report, &header));
    }
    if let Err(e) = outputs.write(&report) {
        eprintln!("loadmux report: {e}");
        return exit::USAGE;
    }
    verdict::judge(&thresholds, &report, false)
}
