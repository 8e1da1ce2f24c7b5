//! Command-line parsing. Clap stays in this module: the engine and servers only ever
//! see the validated [`crate::plan::Plan`] and [`crate::server::ServerConfig`].

mod run;
mod serve;

pub use run::{LocalPortsArg, ModeArg, ProgressArg, RunArgs};
pub use serve::ServeArgs;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::{Parser, Subcommand};

use crate::engine::{self, StopReason};
use crate::exit;
use crate::plan::{Plan, Progress};
use crate::report::{self, Report};
use crate::server::{self, ServerConfig};
use crate::stats::TimelineRow;

/// loadmux: a TCP load generator built on a hand-rolled mio event loop.
#[derive(Debug, Parser)]
#[command(name = "loadmux", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load one or more TCP targets (with no target: the built-in echo server).
    Run(Box<RunArgs>),
    /// Run a built-in server (echo, sink, source, http, chaos).
    Serve(ServeArgs),
    /// Turn a saved JSON report into HTML and/or CSV.
    Report(ReportArgs),
    /// Combine JSON reports from independent runs (shards) into one, exactly.
    Merge(MergeArgs),
}

/// Flags of `loadmux report`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  loadmux report run.json --html run.html")]
pub struct ReportArgs {
    /// A JSON report written by `loadmux run --json`.
    pub input: std::path::PathBuf,
    /// Write the HTML report here.
    #[arg(long, value_name = "PATH")]
    pub html: Option<std::path::PathBuf>,
    /// Write the timeline as CSV here.
    #[arg(long, value_name = "PATH")]
    pub csv: Option<std::path::PathBuf>,
}

/// Flags of `loadmux merge`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  loadmux merge shard-*.json -o all.json --html all.html")]
pub struct MergeArgs {
    /// JSON reports written by `loadmux run --json`.
    #[arg(required = true, num_args = 1..)]
    pub inputs: Vec<std::path::PathBuf>,
    /// Where to write the merged JSON report (`-` for stdout).
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: std::path::PathBuf,
    /// Also write the merged HTML report here.
    #[arg(long, value_name = "PATH")]
    pub html: Option<std::path::PathBuf>,
}

/// Parses a duration the way wrk does: a bare number is seconds, otherwise a
/// humantime duration such as `250ms`, `5s` or `1m30s`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(format!("'{text}' is not a duration (try 10s, 250ms or 1m)"));
    }
    humantime::parse_duration(text).map_err(|_| format!("'{text}' is not a duration (try 10s, 250ms or 1m)"))
}

/// Prints a clap error the loadmux way and returns the exit code: help and version go
/// to stdout with 0; anything else is one line on stderr with exit code 2.
pub fn report_parse_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind as K;
    match e.kind() {
        K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            if e.kind() == K::DisplayHelpOnMissingArgumentOrSubcommand {
                crate::exit::USAGE
            } else {
                crate::exit::OK
            }
        }
        _ => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.trim_start_matches("error: ");
            eprintln!("loadmux: {first} (see --help)");
            crate::exit::USAGE
        }
    }
}

/// More connections to one loopback target than one source address has ports for:
/// spread them over 127.0.0.x, and say so (the user did not ask for it).
fn spread_over_loopback(plan: &mut Plan) {
    if !plan.socket.sources.is_empty() {
        return;
    }
    let Ok(range) = crate::engine::ports::PortRange::ephemeral() else { return };
    if let Some(sources) = crate::sources::loopback_spread(&plan.targets, plan.connections, range.len()) {
        eprintln!(
            "loadmux: {} connections need more than one address's {} ports per target: connecting from 127.0.0.1-127.0.0.{}",
            plan.connections,
            range.len(),
            sources.len()
        );
        plan.socket.sources = sources;
    }
}

/// `loadmux run`: plan, start the built-in server if no target was given, run,
/// print the summary, write the JSON report. Returns the exit code.
pub fn run_command(args: RunArgs) -> i32 {
    let mut plan = match Plan::from_args(&args) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("loadmux: {e}");
            return exit::USAGE;
        }
    };
    let server = if plan.targets.is_empty() {
        let listen = SocketAddr::from(([127, 0, 0, 1], 0));
        match server::start(ServerConfig::echo(listen)) {
            Ok(handle) => {
                eprintln!("loadmux: no target given: loading the built-in echo server on {}", handle.local_addr());
                plan.targets.push(handle.local_addr());
                Some(handle)
            }
            Err(e) => {
                eprintln!("loadmux: cannot start the built-in echo server: {e}");
                return exit::USAGE;
            }
        }
    } else {
        None
    };
    spread_over_loopback(&mut plan);
    let plan = Arc::new(plan);
    let header = describe(&plan);
    if plan.progress != Progress::None {
        eprintln!("{header}");
    }
    if let Some(at) = plan.start_at {
        wait_until(at, plan.progress != Progress::None);
    }
    if let Some(threshold) = plan.rate_search.clone() {
        let code = rate_search_command(&plan, &threshold);
        if let Some(server) = server {
            let _ = server.stop();
        }
        return code;
    }
    let total_s = (plan.warmup + plan.duration).as_secs_f64();
    let mut on_row = |row: &TimelineRow, plan: &Plan| match plan.progress {
        Progress::None => {}
        Progress::Plain => eprintln!("{}", report::live_line(row, total_s)),
        // Carriage return and erase-line: the one line is rewritten in place.
        Progress::Tty => eprint!("\r\x1b[2K{}", report::live_line(row, total_s)),
    };
    let result = engine::run(plan.clone(), &mut on_row);
    if plan.progress == Progress::Tty {
        eprintln!(); // End the line that was being rewritten.
    }
    if let Some(server) = server {
        let counters = server.stop();
        log::debug!("built-in server: {counters}");
    }
    let result = match result {
        Ok(result) => result,
        Err(e) => {
            eprintln!("loadmux: cannot start the run: {e}");
            return exit::USAGE;
        }
    };
    let report = Report::from_run(&result, &plan);
    let summary = report::render_text(&report, &header);
    let json_to_stdout = plan.json.as_deref().is_some_and(|p| p.as_os_str() == "-");
    // With `--json -` stdout carries the JSON alone, so the summary moves to stderr.
    if json_to_stdout {
        eprint!("{summary}");
    } else {
        print!("{summary}");
    }
    if let Err(e) = write_outputs(&report, plan.json.as_deref(), plan.csv.as_deref(), plan.html.as_deref()) {
        eprintln!("loadmux: {e}");
        return exit::USAGE;
    }
    let mut failed = false;
    for threshold in &plan.thresholds {
        let outcome = threshold.check(&report);
        failed |= !outcome.passed;
        // Beside the summary: stdout, unless stdout carries the JSON.
        if json_to_stdout {
            eprintln!("  {}", outcome.line);
        } else {
            println!("  {}", outcome.line);
        }
    }
    match result.stop {
        StopReason::Signal(signal_hook::consts::SIGINT) => exit::SIGINT,
        StopReason::Signal(signal_hook::consts::SIGTERM) => exit::SIGTERM,
        _ if failed => exit::THRESHOLD_FAILED,
        _ => exit::OK,
    }
}

/// `--rate-search`: prints each step and the answer; writes the best step's report.
fn rate_search_command(plan: &Plan, threshold: &crate::assert::Threshold) -> i32 {
    eprintln!("loadmux: searching for the highest rate with {threshold} ({:?} per step)", plan.duration);
    let mut print = |line: &str| println!("{line}");
    let outcome = match crate::rate_search::search(plan, threshold, &mut print) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("loadmux: cannot start the run: {e}");
            return exit::USAGE;
        }
    };
    match &outcome.best {
        Some(best) => {
            println!("highest rate with {threshold}: {:.0} req/s", best.target.unwrap_or(0.0));
            if let Err(e) = write_outputs(&best.report, plan.json.as_deref(), plan.csv.as_deref(), plan.html.as_deref())
            {
                eprintln!("loadmux: {e}");
                return exit::USAGE;
            }
        }
        None => println!("no rate tried kept {threshold} ({} steps)", outcome.steps.len()),
    }
    match outcome.interrupted {
        Some(signal_hook::consts::SIGINT) => exit::SIGINT,
        Some(_) => exit::SIGTERM,
        None if outcome.best.is_some() => exit::OK,
        None => exit::THRESHOLD_FAILED,
    }
}

/// Writes whichever report files were asked for. The error names the flag and path.
fn write_outputs(
    report: &Report,
    json: Option<&std::path::Path>,
    csv: Option<&std::path::Path>,
    html: Option<&std::path::Path>,
) -> Result<(), String> {
    if let Some(path) = json {
        report::write_json(report, path).map_err(|e| format!("cannot write --json {}: {e}", path.display()))?;
    }
    if let Some(path) = csv {
        report::write_csv(report, path).map_err(|e| format!("cannot write --csv {}: {e}", path.display()))?;
    }
    if let Some(path) = html {
        report::write_html(report, path).map_err(|e| format!("cannot write --html {}: {e}", path.display()))?;
    }
    Ok(())
}

/// `loadmux report`: HTML and/or CSV from a saved JSON report.
pub fn report_command(args: ReportArgs) -> i32 {
    let report = match report::read_report(&args.input) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadmux report: {e}");
            return exit::USAGE;
        }
    };
    if args.html.is_none() && args.csv.is_none() {
        eprintln!("loadmux report: nothing to do: give --html PATH and/or --csv PATH");
        return exit::USAGE;
    }
    match write_outputs(&report, None, args.csv.as_deref(), args.html.as_deref()) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("loadmux report: {e}");
            exit::USAGE
        }
    }
}

/// `loadmux merge`: one exact report from several.
pub fn merge_command(args: MergeArgs) -> i32 {
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
    match write_outputs(&merged, Some(&args.output), None, args.html.as_deref()) {
        Ok(()) => {
            if args.output.as_os_str() != "-" {
                eprintln!(
                    "loadmux merge: {} reports: {} requests completed, p99 {}",
                    reports.len(),
                    merged.requests.completed,
                    report::format_micros(merged.latency_us.p99)
                );
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("loadmux merge: {e}");
            exit::USAGE
        }
    }
}

/// Sleeps until the wall-clock instant `at` (`--start-at`).
fn wait_until(at: SystemTime, say: bool) {
    if let Ok(wait) = at.duration_since(SystemTime::now()) {
        if say {
            eprintln!("loadmux: waiting {:.1}s for --start-at", wait.as_secs_f64());
        }
        std::thread::sleep(wait);
    }
}

/// One line naming what is being loaded, and how.
fn describe(plan: &Plan) -> String {
    let targets: Vec<String> = plan.targets.iter().map(|t| t.to_string()).collect();
    let bound = match plan.requests {
        Some(n) => format!("{n} requests or {:?}", plan.duration),
        None => format!("{:?}", plan.duration),
    };
    format!(
        "loadmux: {} connection(s) to {} on {} thread(s), {bound}",
        plan.connections,
        targets.join(", "),
        plan.threads
    )
}

/// `loadmux serve`: run a built-in server until SIGINT/SIGTERM, then print its counters.
pub fn serve_command(args: ServeArgs) -> i32 {
    serve::serve(&args)
}

/// Parses a byte size: a number with an optional binary unit, `k`/`KiB` (1024),
/// `m`/`MiB`, `g`/`GiB`; `B` alone or nothing means bytes.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: usize = digits.parse().map_err(|_| format!("'{text}' is not a size (try 65536, 64k or 4MiB)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("'{text}' has an unknown unit (use k, MiB or G)")),
    };
    n.checked_mul(1 << shift).ok_or_else(|| format!("'{text}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_numbers_are_seconds() {
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("0.5").unwrap(), Duration::from_millis(500));
    }

    #[test]
    fn humantime_units_are_accepted() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
    }

    #[test]
    fn garbage_and_negative_durations_are_rejected() {
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-3").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("65536").unwrap(), 65536);
        assert_eq!(parse_size("64k").unwrap(), 65536);
        assert_eq!(parse_size("4MiB").unwrap(), 4 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("12q").is_err());
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
