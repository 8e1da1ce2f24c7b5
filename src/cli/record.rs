//! `loadmux record` and `loadmux replay-info`: flags, and the one-line errors.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::exit;
use crate::replay::proxy::{Proxy, ProxyConfig, Stop};
use crate::replay::Recording;
use crate::transport::{Target, TlsClient, TlsSettings};
use crate::units::parse_duration;

/// Flags of `loadmux record`.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
    loadmux record --listen 127.0.0.1:6380 --upstream 127.0.0.1:6379 -o redis.lmxrec\n  \
    redis-benchmark -p 6380 -t set,get -n 2000 -c 5     # in another terminal; then Ctrl-C\n  \
    loadmux record --upstream tls://redis.internal:6380 --cacert ca.pem -o tls.lmxrec  # TLS upstream")]
pub struct RecordArgs {
    /// Address clients connect to (loopback by default).
    #[arg(long, default_value = "127.0.0.1:7002")]
    pub listen: SocketAddr,
    /// The real server: HOST:PORT (resolved once, at start), tls://HOST:PORT, or
    /// unix:PATH. The client side is always plaintext TCP; the recording holds
    /// plaintext either way.
    #[arg(long, value_name = "HOST:PORT|tls://HOST:PORT|unix:PATH")]
    pub upstream: String,
    /// With a tls:// upstream: trust the CA certificates in this PEM file instead of
    /// the system's.
    #[arg(long, value_name = "PEM")]
    pub cacert: Option<PathBuf>,
    /// With a tls:// upstream: accept any certificate (signatures are still checked).
    #[arg(long)]
    pub insecure: bool,
    /// With a tls:// upstream: the server name to send and verify (default: its host).
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
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
    let (upstream, tls) =
        match resolve(&args.upstream).and_then(|(target, host)| Ok((target, tls_client(&args, host)?))) {
            Ok(resolved) => resolved,
            Err(e) => {
                eprintln!("loadmux record: {e}");
                return exit::USAGE;
            }
        };
    let scheme = if tls.is_some() { "tls://" } else { "" };
    let config = ProxyConfig {
        listen: args.listen,
        upstream: upstream.clone(),
        tls,
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
        "loadmux record: listening on {listening} forwarding to {scheme}{upstream}, recording to {}; Ctrl-C stops",
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

/// Resolves `HOST:PORT` or `tls://HOST:PORT` to its first address (with the host, the
/// TLS server name, for `tls://`), or takes `unix:PATH` as it is, or says what was
/// wrong with it.
fn resolve(text: &str) -> Result<(Target, Option<String>), String> {
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(format!("--upstream {text}: unix: needs a path, as in unix:/run/redis.sock"));
        }
        return Ok((Target::Unix(path.into()), None));
    }
    let (address, tls_host) = match text.strip_prefix("tls://") {
        Some(address) => {
            let host = address.rsplit_once(':').map(|(host, _)| host.trim_start_matches('[').trim_end_matches(']'));
            (address, Some(host.unwrap_or(address).to_string()))
        }
        None => (text, None),
    };
    let mut addrs = address
        .to_socket_addrs()
        .map_err(|e| format!("--upstream {text}: {e} (expected HOST:PORT, tls://HOST:PORT or unix:PATH)"))?;
    let target = addrs.next().map(Target::Tcp).ok_or_else(|| format!("--upstream {text}: the name has no address"))?;
    Ok((target, tls_host))
}

/// The TLS client for a `tls://` upstream (named `host`), from the TLS flags; the
/// flags without a `tls://` upstream are a mistake worth one line.
fn tls_client(args: &RecordArgs, host: Option<String>) -> Result<Option<Arc<TlsClient>>, String> {
    let Some(host) = host else {
        if args.cacert.is_some() || args.insecure || args.sni.is_some() {
            return Err("--cacert, --insecure and --sni need a tls:// upstream".into());
        }
        return Ok(None);
    };
    if args.insecure && args.cacert.is_some() {
        return Err("--insecure and --cacert contradict each other: give one".into());
    }
    if args.insecure {
        eprintln!("loadmux record: warning: --insecure: the upstream's certificate is not verified");
    }
    let settings = TlsSettings {
        sni: args.sni.clone(),
        insecure: args.insecure,
        cacert: args.cacert.clone(),
        ..TlsSettings::default()
    };
    TlsClient::new(&settings, &[host]).map(|client| Some(Arc::new(client)))
}
