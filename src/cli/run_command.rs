//! `loadmux run`: start the built-in server if no target was given, run, print the
//! summary, write the reports, check the thresholds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use super::outputs::Outputs;
use super::run::{Progress, RunArgs, RunCommand};
use super::verdict;
use crate::assert::Threshold;
use crate::engine::{self, StopReason};
use crate::exit;
use crate::plan::Plan;
use crate::report::{self, Report};
use crate::server::{self, ServerConfig};
use crate::stats::TimelineRow;

/// More connections to one loopback target than one source address has ports for:
/// spread them over 127.0.0.x, and say so (the user did not ask for it).
fn spread_over_loopback(plan: &mut Plan) {
    if !plan.socket.sources.is_empty() {
        return;
    }
    let tcp: Option<Vec<SocketAddr>> = plan
        .targets
        .iter()
        .map(|t| match t {
            crate::transport::Target::Tcp(addr) => Some(*addr),
            _ => None,
        })
        .collect();
    let (Some(tcp), Ok(range)) = (tcp, crate::engine::ports::PortRange::ephemeral()) else { return };
    if let Some(sources) = crate::sources::loopback_spread(&tcp, plan.connections, range.len()) {
        eprintln!(
            "loadmux: {} connections need more than one address's {} ports per target: connecting from 127.0.0.1-127.0.0.{}",
            plan.connections,
            range.len(),
            sources.len()
        );
        plan.socket.sources = sources;
    }
}

/// With no target: starts the built-in echo server on a free loopback port (with a
/// generated certificate under `--tls`, whose CA the client then trusts) and points
/// the plan at it.
fn start_demo_server(args: &RunArgs, plan: &mut crate::plan::Plan) -> Result<server::ServerHandle, String> {
    let mut config = ServerConfig::echo(SocketAddr::from(([127, 0, 0, 1], 0)));
    if plan.tls.is_some() {
        let ca_out = std::env::temp_dir().join(format!("loadmux-demo-ca-{}.pem", std::process::id()));
        let identity = server::TlsIdentity::Generated { ca_out };
        config.tls = Some(server::TlsSettings { identity, alpn: args.alpn.clone(), client_ca: None });
    }
    let handle = server::start(config).map_err(|e| e.to_string())?;
    let addr = handle.local_addr().tcp().ok_or("the built-in echo server does not listen on TCP")?;
    if let Some(ca) = handle.generated_ca() {
        let client = args.demo_tls_client(ca).map_err(|e| e.to_string());
        // The client has read the CA; the file was only the way to hand it over.
        let _ = std::fs::remove_file(ca);
        plan.tls = Some(Arc::new(client?));
    }
    let what = if plan.tls.is_some() { "built-in echo server (TLS)" } else { "built-in echo server" };
    eprintln!("loadmux: no target given: loading the {what} on {addr}");
    plan.targets.push(crate::transport::Target::Tcp(addr));
    Ok(handle)
}

/// `loadmux run`: plan, start the built-in server if no target was given, run,
/// print the summary, write the JSON report. Returns the exit code.
pub fn run_command(args: RunArgs) -> i32 {
    let RunCommand { mut plan, progress, start_at, outputs, thresholds, rate_search, control } = match args.to_command()
    {
        Ok(command) => command,
        Err(e) => {
            eprintln!("loadmux: {e}");
            return exit::USAGE;
        }
    };
    if args.insecure {
        eprintln!("loadmux: warning: --insecure: server certificates are not verified");
    }
    let server = if plan.targets.is_empty() {
        match start_demo_server(&args, &mut plan) {
            Ok(handle) => Some(handle),
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
    if progress != Progress::None {
        eprintln!("{header}");
    }
    if let Some(at) = start_at {
        wait_until(at, progress != Progress::None);
    }
    if let Some(threshold) = rate_search {
        let code = rate_search_command(&plan, &threshold, &outputs);
        if let Some(server) = server {
            let _ = server.stop();
        }
        return code;
    }
    let total_s = (plan.warmup + plan.duration).as_secs_f64();
    let mut on_row = |row: &TimelineRow| match progress {
        Progress::None => {}
        Progress::Plain => eprintln!("{}", report::live_line(row, total_s)),
        // Carriage return and erase-line: the one line is rewritten in place.
        Progress::Tty => eprint!("\r\x1b[2K{}", report::live_line(row, total_s)),
    };
    // The built-in server's threads are watched like the workers: if one dies the
    // run stops, instead of loading a port nobody serves.
    let dead_server_threads = || server.as_ref().map(|s| s.dead_threads()).unwrap_or_default();
    // Keys: the terminal stays in non-canonical mode until `control` is dropped,
    // at the end of this function, whichever way the run ended.
    let super::control_input::ControlInput { start: control, terminal: _terminal } =
        super::control_input::prepare(control);
    let result = engine::run_controlled(plan.clone(), &mut on_row, &dead_server_threads, control);
    if progress == Progress::Tty {
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
    // With `--json -` stdout carries the JSON alone, so the summary moves to stderr.
    let json_to_stdout = outputs.json_to_stdout();
    if json_to_stdout {
        eprint!("{summary}");
    } else {
        print!("{summary}");
    }
    if let Err(e) = outputs.write(&report) {
        eprintln!("loadmux: {e}");
        return exit::USAGE;
    }
    let verdict = verdict::judge(&thresholds, &report, json_to_stdout);
    match result.stop {
        StopReason::Signal(signal_hook::consts::SIGINT) => exit::SIGINT,
        StopReason::Signal(signal_hook::consts::SIGTERM) => exit::SIGTERM,
        _ if !result.failed_threads.is_empty() => exit::THREAD_PANICKED,
        _ => verdict,
    }
}

/// `--rate-search`: prints each step and the answer; writes the best step's report.
fn rate_search_command(plan: &Plan, threshold: &Threshold, outputs: &Outputs) -> i32 {
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
            if let Err(e) = outputs.write(&best.report) {
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
