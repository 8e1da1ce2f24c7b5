//! The `loadmux` binary: parse the command line, hand over to the library, exit.

use clap::Parser;
use loadmux::cli::{Cli, Command};

fn main() {
    // RUST_LOG=loadmux=debug: connection errors; =trace: every event and transition.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("off")).init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => std::process::exit(loadmux::cli::report_parse_error(e)),
    };
    let code = match cli.command {
        Command::Run(args) => loadmux::cli::run_command(*args),
        Command::Serve(args) => loadmux::cli::serve_command(*args),
        Command::Report(args) => loadmux::cli::report_command(args),
        Command::Merge(args) => loadmux::cli::merge_command(args),
        Command::Record(args) => loadmux::cli::record_command(args),
        Command::ReplayInfo(args) => loadmux::cli::replay_info_command(args),
        Command::Completions(args) => loadmux::cli::completions_command(args),
        Command::Man(args) => loadmux::cli::man_command(args),
    };
    std::process::exit(code);
}
