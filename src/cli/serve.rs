//! `loadmux serve`: flags for the built-in servers.

use clap::{Args, ValueEnum};
use std::net::SocketAddr;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::server::{Chaos, Mode, ServerConfig};
use crate::units::{parse_duration, parse_size};

/// Flags of `loadmux serve`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    loadmux serve                                   # echo on 127.0.0.1:7001\n  \
    loadmux serve --mode http --listen 127.0.0.1:8080\n  \
    loadmux serve --mode chaos --delay 20ms         # every answer 20 ms late\n  \
    loadmux serve --mode chaos --stall-at 2s --stall-for 1s\n  \
    loadmux serve --mode chaos --fail-rate 0.01 --seed 7")]
pub struct ServeArgs {
    /// echo (write back what is read), sink (read and discard), source (write an
    /// endless stream), http (keep-alive HTTP/1.1, 200 OK), chaos (echo with faults).
    #[arg(long, value_enum, default_value = "echo")]
    pub mode: ModeArg,
    /// Address to listen on. Loopback by default; binding elsewhere must be asked for.
    #[arg(long, default_value = "127.0.0.1:7001")]
    pub listen: SocketAddr,
    /// Event-loop threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: u16,
    /// http mode: bytes in each response body.
    #[arg(long, default_value = "6", value_parser = parse_size, value_name = "SIZE")]
    pub body_size: usize,
    /// chaos: answer every request this long after reading it.
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub delay: Option<Duration>,
    /// chaos: at this time after start, stop reading and answering everywhere...
    #[arg(long, value_parser = parse_duration, value_name = "DUR", requires = "stall_for")]
    pub stall_at: Option<Duration>,
    /// chaos: ...for this long.
    #[arg(long, value_parser = parse_duration, value_name = "DUR", requires = "stall_at")]
    pub stall_for: Option<Duration>,
    /// chaos: reset (RST) a connection after echoing this many bytes.
    #[arg(long, value_name = "BYTES")]
    pub reset_after: Option<u64>,
    /// chaos: close (FIN) a connection after echoing this many bytes, mid-response if so.
    #[arg(long, value_name = "BYTES")]
    pub close_after: Option<u64>,
    /// chaos: flip one byte of every echoed chunk.
    #[arg(long)]
    pub corrupt: bool,
    /// chaos: send responses one byte per DUR.
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub drip: Option<Duration>,
    /// chaos: after the first read, send an endless stream with no delimiter.
    #[arg(long)]
    pub flood: bool,
    /// chaos: accept, then never read (the client's send buffer fills).
    #[arg(long)]
    pub no_read: bool,
    /// chaos: listen with a backlog of 1 and never accept.
    #[arg(long)]
    pub never_accept: bool,
    /// chaos: accept and close at once.
    #[arg(long)]
    pub accept_close: bool,
    /// chaos: give this share (0 to 1) of read chunks one fault at random: reset, close
    /// or corrupt.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub fail_rate: f64,
    /// chaos: seed for --fail-rate.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `--mode` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Write back every byte read.
    Echo,
    /// Read and discard.
    Sink,
    /// Write an endless stream.
    Source,
    /// Keep-alive HTTP/1.1, 200 OK.
    Http,
    /// Echo with faults.
    Chaos,
}

impl ServeArgs {
    /// The validated server configuration, or a one-line reason.
    pub fn to_config(&self) -> Result<ServerConfig, String> {
        let chaos = Chaos {
            delay: self.delay,
            stall_at: self.stall_at,
            stall_for: self.stall_for.unwrap_or_default(),
            reset_after: self.reset_after,
            close_after: self.close_after,
            corrupt: self.corrupt,
            drip: self.drip.filter(|d| !d.is_zero()),
            flood: self.flood,
            no_read: self.no_read,
            never_accept: self.never_accept,
            accept_close: self.accept_close,
            fail_rate: self.fail_rate,
            seed: self.seed,
        };
        if !(0.0..=1.0).contains(&self.fail_rate) {
            return Err(format!("--fail-rate {} must be between 0 and 1", self.fail_rate));
        }
        if chaos != (Chaos { seed: self.seed, ..Chaos::default() }) && self.mode != ModeArg::Chaos {
            return Err("--delay, --stall-at and the other faults need --mode chaos".into());
        }
        Ok(ServerConfig {
            mode: match self.mode {
                ModeArg::Echo => Mode::Echo,
                ModeArg::Sink => Mode::Sink,
                ModeArg::Source => Mode::Source,
                ModeArg::Http => Mode::Http,
                ModeArg::Chaos => Mode::Chaos,
            },
            listen: self.listen,
            threads: usize::from(self.threads),
            http_body: self.body_size,
            chaos,
        })
    }
}

/// Runs `loadmux serve` until SIGINT or SIGTERM, then prints the counters. Returns
/// the exit code: 0 after a signal (the normal way to stop a server), 2 when it cannot
/// listen.
pub fn serve(args: &ServeArgs) -> i32 {
    let config = match args.to_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("loadmux serve: {e}");
            return crate::exit::USAGE;
        }
    };
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
    // Wake up every WATCH_INTERVAL to look at the threads as well as the signals: a
    // server thread that panicked must end the process, not leave it listening
    // with a dead loop behind the port.
    loop {
        if let Some(signal) = signals.pending().next() {
            eprintln!("loadmux serve: stopped by signal {signal}: {}", handle.stop());
            return crate::exit::OK;
        }
        let dead = handle.dead_threads();
        if !dead.is_empty() {
            eprintln!("loadmux serve: {} panicked: stopping: {}", dead.join(", "), handle.stop());
            return crate::exit::THREAD_PANICKED;
        }
        std::thread::sleep(crate::engine::WATCH_INTERVAL);
    }
}
