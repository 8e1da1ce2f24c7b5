//! `loadmux serve`: flags for the built-in servers.

use clap::{Args, ValueEnum};
use std::net::SocketAddr;

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::server::{Mode, ServerConfig};

/// Flags of `loadmux serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// What the server does with each connection.
    #[arg(long, value_enum, default_value = "echo")]
    pub mode: ModeArg,
    /// Address to listen on. Binding beyond loopback needs an explicit address.
    #[arg(long, default_value = "127.0.0.1:7001")]
    pub listen: SocketAddr,
    /// Event-loop threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: u16,
}

/// `--mode` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Write back every byte read.
    Echo,
}

impl ServeArgs {
    /// The validated server configuration.
    pub fn to_config(&self) -> ServerConfig {
        ServerConfig {
            mode: match self.mode {
                ModeArg::Echo => Mode::Echo,
            },
            listen: self.listen,
            threads: usize::from(self.threads),
        }
    }
}

/// Runs `loadmux serve` until SIGINT or SIGTERM, then prints the counters. Returns
/// the exit code: 0 after a signal (the normal way to stop a server), 2 when it cannot
/// listen.
pub fn serve(args: &ServeArgs) -> i32 {
    let config = args.to_config();
    // Register for the signals before listening, so a signal never finds the default
    // handler (which would exit without the counters).
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("loadmux serve: cannot handle signals: {e}");
            return crate::exit::USAGE;
        }
    };
    let handle = match crate::server::start(config.clone()) {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("loadmux serve: cannot listen on {}: {e}", args.listen);
            return crate::exit::USAGE;
        }
    };
    eprintln!(
        "loadmux serve: {:?} server listening on {} ({} thread(s)); Ctrl-C stops it",
        config.mode,
        handle.local_addr(),
        config.threads
    );
    let signal = signals.forever().next();
    eprintln!("loadmux serve: stopped by signal {}: {}", signal.unwrap_or(0), handle.stop());
    crate::exit::OK
}
