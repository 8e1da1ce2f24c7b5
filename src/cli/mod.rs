//! Command-line parsing and the subcommand drivers. Clap stays in this module: the
//! engine and servers only ever see the validated [`crate::plan::Plan`] and
//! [`crate::server::ServerConfig`].
//!
//! One file per subcommand: its flags (`run.rs`, `serve.rs`) and its driver
//! (`run_command.rs`, `report_command.rs`, `merge_command.rs`,
//! `completions_command.rs`, `man_command.rs`). `outputs.rs` writes report files
//! and `verdict.rs` checks `--assert`, for all of them.

mod completions_command;
mod control_input;
mod man_command;
mod merge_command;
mod mix_spec;
mod outputs;
mod record;
mod report_command;
mod run;
mod run_command;
mod serve;
mod verdict;
mod ws_args;

pub use completions_command::{completions_command, CompletionsArgs, Shell};
pub use man_command::{man_command, ManArgs};
pub use merge_command::{merge_command, MergeArgs};
pub use outputs::Outputs;
pub use record::{record_command, replay_info_command, RecordArgs, ReplayInfoArgs};
pub use report_command::{report_command, ReportArgs};
pub use run::{LocalPortsArg, ModeArg, Progress, ProgressArg, RunArgs, RunCommand};
pub use run_command::run_command;
pub use serve::ServeArgs;

use clap::{Parser, Subcommand};

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
    Serve(Box<ServeArgs>),
    /// Summarise or judge a saved JSON report, or turn it into HTML and/or CSV.
    Report(ReportArgs),
    /// Combine JSON reports from independent runs (shards) into one, exactly.
    Merge(MergeArgs),
    /// Proxy a real client to its server and record the sessions for `run --replay`.
    Record(RecordArgs),
    /// Print what a recording holds: sessions, steps, sizes and timing.
    ReplayInfo(ReplayInfoArgs),
    /// Print the shell completion script (bash, zsh or fish).
    Completions(CompletionsArgs),
    /// Print the manual page (roff), of loadmux or of one subcommand.
    Man(ManArgs),
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
            let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            let first = lines.next().unwrap_or("invalid arguments").trim_start_matches("error: ");
            // "the following required arguments were not provided:" names them on the
            // next line: keep it, or the one line says nothing useful.
            match lines.next().filter(|_| first.ends_with(':')) {
                Some(named) => eprintln!("loadmux: {first} {named} (see --help)"),
                None => eprintln!("loadmux: {first} (see --help)"),
            }
            crate::exit::USAGE
        }
    }
}

/// `loadmux serve`: run a built-in server until SIGINT/SIGTERM, then print its counters.
pub fn serve_command(args: ServeArgs) -> i32 {
    serve::serve(&args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    /// `run --help` is where a user learns the vocabulary of the reports.
    #[test]
    fn run_help_names_every_framing_mode_and_error_kind() {
        use clap::CommandFactory;
        let mut cli = Cli::command();
        let help = cli.find_subcommand_mut("run").unwrap().render_long_help().to_string();
        let framings = [
            "echo",
            "line",
            "delim:STR",
            "bytes:N",
            "len:u16be",
            "len:u32be",
            "len:u32le",
            "http",
            "resp",
            "memcache",
            "none",
        ];
        for framing in framings {
            assert!(help.contains(framing), "--expect {framing} is missing from run --help");
            let spec = framing.replace("STR", "x").replace('N', "1");
            assert!(
                crate::framing::Framing::parse(&spec).is_ok(),
                "{spec}: the help names a framing that does not parse"
            );
        }
        for mode in ["request", "stream", "recv", "connect"] {
            assert!(help.contains(mode), "--mode {mode} is missing from run --help");
        }
        for kind in crate::stats::ErrorKind::ALL {
            assert!(help.contains(kind.name()), "error kind {} is missing from run --help", kind.name());
        }
    }
}
