//! `loadmux completions SHELL`: the shell completion script, generated from the
//! same clap definition the parser uses, so it can never fall behind a flag.

use clap::CommandFactory;

use super::Cli;
use crate::exit;

/// Flags of `loadmux completions`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Install:\n  \
    loadmux completions bash > ~/.local/share/bash-completion/completions/loadmux\n  \
    loadmux completions zsh  > ~/.zfunc/_loadmux      # with fpath+=(~/.zfunc) in ~/.zshrc\n  \
    loadmux completions fish > ~/.config/fish/completions/loadmux.fish")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The shells loadmux writes completions for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

/// Writes the completion script for `args.shell` to stdout.
pub fn completions_command(args: CompletionsArgs) -> i32 {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut Cli::command(), "loadmux", &mut std::io::stdout());
    exit::OK
}
