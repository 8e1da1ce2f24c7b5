//! `loadmux serve`: flags for the built-in servers.

use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};

use crate::server::{Chaos, ListenAddr, Mode, ServerConfig, TlsIdentity, TlsSettings};
use crate::units::{parse_duration, parse_size};

/// Flags of `loadmux serve`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    loadmux serve                                   # echo on 127.0.0.1:7001\n  \
    loadmux serve --mode http --listen 127.0.0.1:8080\n  \
    loadmux serve --mode chaos --delay 20ms         # every answer 20 ms late\n  \
    loadmux serve --mode chaos --stall-at 2s --stall-for 1s\n  \
    loadmux serve --mode chaos --fail-rate 0.01 --seed 7\n  \
    loadmux serve --listen unix:/tmp/loadmux.sock   # a Unix socket, removed on exit\n  \
    loadmux serve --tls --mode http                 # HTTPS with a generated certificate\n  \
    loadmux serve --tls --cert server.pem --key server.key --client-ca ca.pem\n  \
    loadmux serve --tls --mode chaos --no-read      # a TLS handshake that never ends")]
pub struct ServeArgs {
    /// echo (write back what is read), sink (read and discard), source (write an
    /// endless stream), http (keep-alive HTTP/1.1, 200 OK), chaos (echo with faults).
    #[arg(long, value_enum, default_value = "echo")]
    pub mode: ModeArg,
    /// Address to listen on: IP:PORT, or unix:PATH for a Unix socket (the file is
    /// removed on exit; a stale one from a dead server is replaced). Loopback by
    /// default; binding elsewhere must be asked for.
    #[arg(long, default_value = "127.0.0.1:7001", value_name = "ADDR")]
    pub listen: ListenAddr,
    /// Speak TLS (every mode, chaos faults included). Without --cert/--key, a CA and
    /// a certificate for localhost, 127.0.0.1 and ::1 are made at start, and the CA
    /// is written for clients (see --ca-out).
    #[arg(long)]
    pub tls: bool,
    /// TLS: the certificate chain (PEM, server certificate first).
    #[arg(long, value_name = "PEM", requires_all = ["tls", "key"])]
    pub cert: Option<PathBuf>,
    /// TLS: the private key of --cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", requires_all = ["tls", "cert"])]
    pub key: Option<PathBuf>,
    /// TLS: where to write the generated CA [default: loadmux-ca-PID.pem in the temp
    /// dir, removed on exit].
    #[arg(long, value_name = "PATH", requires = "tls", conflicts_with = "cert")]
    pub ca_out: Option<PathBuf>,
    /// TLS: ALPN protocols to offer, most preferred first (e.g. http/1.1,h2).
    #[arg(long, value_name = "LIST", value_delimiter = ',', requires = "tls")]
    pub alpn: Vec<String>,
    /// TLS: require a client certificate signed by a CA in this PEM file.
    #[arg(long, value_name = "PEM", requires = "tls")]
    pub client_ca: Option<PathBuf>,
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
    /// WebSocket echo: upgrade, echo every frame, answer ping and close.
    Ws,
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
        let tls = if self.tls {
            if !cfg!(feature = "tls") {
                return Err(format!("--tls: {}", crate::server::NO_TLS));
            }
            if let Some(empty) = self.alpn.iter().find(|p| p.is_empty() || p.len() > 255) {
                return Err(format!("--alpn {empty:?}: each protocol name must be 1 to 255 bytes"));
            }
            let identity = match (&self.cert, &self.key) {
                (Some(cert), Some(key)) => TlsIdentity::Files { cert: cert.clone(), key: key.clone() },
                _ => TlsIdentity::Generated { ca_out: self.ca_out.clone().unwrap_or_else(default_ca_out) },
            };
            Some(TlsSettings { identity, alpn: self.alpn.clone(), client_ca: self.client_ca.clone() })
        } else {
            None
        };
        Ok(ServerConfig {
            mode: match self.mode {
                ModeArg::Echo => Mode::Echo,
                ModeArg::Sink => Mode::Sink,
                ModeArg::Source => Mode::Source,
                ModeArg::Http => Mode::Http,
                ModeArg::Chaos => Mode::Chaos,
                ModeArg::Ws => Mode::Ws,
            },
            listen: self.listen.clone(),
            tls,
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
            eprintln!("loadmux serve: {e}");
            return crate::exit::USAGE;
        }
    };
    // Tests read the address from this first line: keep "listening on ADDR".
    eprintln!(
        "loadmux serve: {:?} server{} listening on {} ({} thread(s)); Ctrl-C stops it",
        config.mode,
        if config.tls.is_some() { " (TLS)" } else { "" },
        handle.local_addr(),
        config.threads
    );
    let generated_ca = handle.generated_ca().map(PathBuf::from);
    if let Some(ca) = &generated_ca {
        eprintln!("loadmux: TLS with a generated certificate; clients: --cacert {}", ca.display());
    }
    // Wake up every WATCH_INTERVAL to look at the threads as well as the signals: a
    // server thread that panicked must end the process, not leave it listening
    // with a dead loop behind the port.
    let code = loop {
        if let Some(signal) = signals.pending().next() {
            eprintln!("loadmux serve: stopped by signal {signal}: {}", handle.stop());
            break crate::exit::OK;
        }
        let dead = handle.dead_threads();
        if !dead.is_empty() {
            eprintln!("loadmux serve: {} panicked: stopping: {}", dead.join(", "), handle.stop());
            break crate::exit::THREAD_PANICKED;
        }
        std::thread::sleep(crate::engine::WATCH_INTERVAL);
    };
    // A CA written to the default temp path was ours alone; one written where the
    // user asked (--ca-out) is theirs to keep.
    if let (Some(ca), None) = (generated_ca, &args.ca_out) {
        let _ = std::fs::remove_file(ca);
    }
    code
}

/// The generated CA's default path: in the temp dir, named after this process so
/// two servers never overwrite each other's.
fn default_ca_out() -> PathBuf {
    std::env::temp_dir().join(format!("loadmux-ca-{}.pem", std::process::id()))
}
