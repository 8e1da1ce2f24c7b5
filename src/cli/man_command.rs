//! `loadmux man [SUBCOMMAND]`: the manual page in roff, generated from the clap
//! definition (every flag, its help and the examples), for `man -l` or a `man1`
//! directory.

use std::io::Write;

use clap::CommandFactory;

use super::Cli;
use crate::exit;

/// Flags of `loadmux man`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Install:\n  \
    mkdir -p ~/.local/share/man/man1\n  \
    loadmux man     > ~/.local/share/man/man1/loadmux.1\n  \
    loadmux man run > ~/.local/share/man/man1/loadmux-run.1\n  \
    man loadmux-run")]
pub struct ManArgs {
    /// The subcommand whose page to write (run, serve, report, merge...); the
    /// overview page without one.
    pub subcommand: Option<String>,
}

/// Writes the page to stdout. An unknown subcommand is a usage error.
pub fn man_command(args: ManArgs) -> i32 {
    let mut command = Cli::command();
    command.build();
    let page = match &args.subcommand {
        None => command,
        Some(name) => match command.find_subcommand(name) {
            // A subcommand's page is named as its man file is: loadmux-run.
            Some(sub) => sub.clone().display_name(format!("loadmux-{name}")).version(env!("CARGO_PKG_VERSION")),
            None => {
                let known: Vec<&str> = command.get_subcommands().map(|c| c.get_name()).collect();
                eprintln!("loadmux man: no subcommand '{name}' (known: {})", known.join(", "));
                return exit::USAGE;
            }
        },
    };
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(page).render(&mut out) {
        eprintln!("loadmux man: {e}");
        return exit::USAGE;
    }
    // A closed pipe (`loadmux man | head`) is the reader's choice, not an error.
    let _ = std::io::stdout().write_all(&out);
    exit::OK
}
