//! Command-line parsing. Clap stays in this module: the engine and servers only ever
//! see the validated [`crate::plan::Plan`] and [`crate::server::ServerConfig`].

mod run;
mod serve;

pub use run::RunArgs;
pub use serve::ServeArgs;

use clap::{Parser, Subcommand};
use std::time::Duration;

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
    Run(RunArgs),
    /// Run a built-in server (echo, sink, source, http, chaos).
    Serve(ServeArgs),
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
    humantime::parse_duration(text)
        .map_err(|_| format!("'{text}' is not a duration (try 10s, 250ms or 1m)"))
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

/// `loadmux run`: plan, (maybe) start the built-in server, run, report.
pub fn run_command(args: RunArgs) -> i32 {
    let _ = args;
    crate::exit::OK
}

/// `loadmux serve`: run a built-in server until SIGINT/SIGTERM, then print its counters.
pub fn serve_command(args: ServeArgs) -> i32 {
    let _ = args;
    crate::exit::OK
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
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
