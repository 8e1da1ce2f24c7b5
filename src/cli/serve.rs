//! `loadmux serve`: flags for the built-in servers.

use clap::{Args, ValueEnum};
use std::net::SocketAddr;

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

/// Runs `loadmux serve` until a signal; returns the exit code.
pub fn serve(args: &ServeArgs) -> i32 {
    match crate::server::start(args.to_config()) {
        Ok(handle) => {
            eprintln!("loadmux serve: listening on {}", handle.local_addr());
            eprintln!("loadmux serve: {}", handle.stop());
            crate::exit::OK
        }
        Err(e) => {
            eprintln!("loadmux serve: cannot listen on {}: {e}", args.listen);
            crate::exit::USAGE
        }
    }
}
