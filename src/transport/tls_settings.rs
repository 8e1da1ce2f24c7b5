//! The TLS flags of a run, parsed but not yet turned into a rustls configuration.

use std::path::PathBuf;

/// The TLS settings of a run, as the command line gave them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// `--sni NAME`: the server name to send and verify; default: each target's host.
    pub sni: Option<String>,
    /// `--insecure`: accept any certificate (signatures are still checked).
    pub insecure: bool,
    /// `--cacert PEM`: trust these roots instead of the system's.
    pub cacert: Option<PathBuf>,
    /// `--cert PEM` and `--key PEM`: a client certificate.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// `--alpn LIST`: protocols to offer, in order.
    pub alpn: Vec<String>,
    /// `--tls-version`: only this version (`None`: 1.2 and 1.3).
    pub version: Option<TlsVersion>,
    /// `--tls-resume`: resume sessions on reconnect.
    pub resume: bool,
}

/// A TLS protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2.
    V1_2,
    /// TLS 1.3.
    V1_3,
}
