//! `loadmux record` and `loadmux replay-info`: flags, and the one-line errors.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::exit;
use crate::replay::proxy::{Proxy, ProxyConfig, Stop};
use crate::replay::Recording;
use crate::transport::Target;
use crate::units::parse_duration;

/// Flags of `loadmux record`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
    loadmux record --listen 127.0.0.1:6380 --upstream 127.0.0.1:6379 -o redis.lmxrec\n  \
    redis-benchmark -p 6380 -t set,get -n 2000 -c 5     # in another terminal; then Ctrl-C")]
pub struct RecordArgs {
    /// Address clients connect to (loopback by default).
    #[arg(long, default_value = "127.0.0.1:7002")]
    pub listen: SocketAddr,
    /// The real server: HOST:PORT (resolved once, at start) or unix:PATH. The client
    /// side is always TCP.
    #[arg(long, value_name = "HOST:PORT|unix:PATH")]
    pub upstream: String,
    /// Where to write the recording (through a temp file renamed into place at the end).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Stop recording after this long (otherwise Ctrl-C or SIGTERM stops it).
    #[arg(short = 'd', long, value_parser = parse_duration, value_name = "DUR")]
    pub duration: Option<Duration>,
}

/// Flags of `loadmux replay-info`.
#[derive(Debug, Args)]
pub struct ReplayInfoArgs {
    /// A recording written by `loadmux record`.
    pub input: PathBuf,
    /// Sessions to list one per line (the totals always cover all of them).
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub sessions: usize,
}

/// `loadmux record`: proxies and records until a signal or `--duration`, then prints
/// the summary. Exit 0 when the file was written (a signal is the normal way to stop),
/// 2 when it could not listen, resolve the upstream, or write the file.
pub fn record_command(args: RecordArgs) -> i32 {
    let upstream = match resolve(&args.upstream) {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("loadmux record: {e}");
            return exit::USAGE;
        }
    };
    let config = ProxyConfig {
        listen: args.listen,
        upstream: upstream.clone(),
        output: args.output.clone(),
        duration: args.duration,
    };
    let proxy = match Proxy::bind(config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("loadmux record: {e}");
            return exit::USAGE;
        }
    };
    let listening = proxy.local_addr().map_or_else(|_| args.listen.to_string(), |a| a.to_string());
    // Tests and scripts read the address from this first line (the word after "on").
    eprintln!(
        "loadmux record: listening on {listening} forwarding to {upstream}, recording to {}; Ctrl-C stops",
        args.output.display()
    );
    match proxy.run() {
        Ok((stop, s)) => {
            let why = match stop {
                Stop::Duration => "--duration elapsed".to_string(),
                Stop::Signal(n) => format!("signal {n}"),
            };
            eprintln!(
                "loadmux record: stopped ({why}): {} sessions, {} failed, {} steps, {} B from clients, \
                 {} B from upstream; wrote {} ({} records)",
                s.sessions,
                s.failed_sessions,
                s.steps,
                s.client_bytes,
                s.server_bytes,
                args.output.display(),
                s.records
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("loadmux record: {e}");
            exit::USAGE
        }
    }
}

/// `loadmux replay-info`: what a recording holds. Exit 2 with one line for a file
/// that is not a whole recording this build can read.
pub fn replay_info_command(args: ReplayInfoArgs) -> i32 {
    match Recording::load(&args.input) {
        Ok(recording) => {
            print!("{}", recording.describe(args.sessions));
            exit::OK
        }
        Err(e) => {
            eprintln!("loadmux replay-info: {e}");
            exit::USAGE
        }
    }
}

/// Resolves `HOST:PORT` to its first address, or takes `unix:PATH` as it is, or says
/// what was wrong with it.
fn resolve(text: &str) -> Result<Target, String> {
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(format!("--upstream {text}: unix: needs a path, as in unix:/run/redis.sock"));
        }
        return Ok(Target::Unix(path.into()));
    }
    if text.starts_with("tls://") {
        return Err(format!("--upstream {text}: a TLS upstream is not supported yet (HOST:PORT or unix:PATH)"));
    }
    let mut addrs =
        text.to_socket_addrs().map_err(|e| format!("--upstream {text}: {e} (expected HOST:PORT or unix:PATH)"))?;
    addrs.next().map(Target::Tcp).ok_or_else(|| format!("--upstream {text}: the name has no address"))
}
