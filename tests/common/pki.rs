//! Certificates for TLS tests, written as PEM files in a temp dir: a CA, a server
//! certificate it signed (localhost, 127.0.0.1, ::1), a client certificate it signed,
//! and a server certificate from another CA that no test trusts.
#![cfg(feature = "tls")]

use std::path::PathBuf;

use loadmux::server::cert::{Authority, LOCAL_NAMES};

/// PEM files for one test (removed with the temp dir on drop).
pub struct Pki {
    /// The trusted CA (what clients pass as `--cacert`).
    pub ca: PathBuf,
    /// A server certificate and key signed by `ca`.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// A client certificate and key signed by `ca` (for servers that require one).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A server certificate and key, for the same names, from a CA nobody trusts.
    pub unknown_ca_cert: PathBuf,
    pub unknown_ca_key: PathBuf,
    /// The CA behind `unknown_ca_cert`, to check that it is a real chain.
    pub unknown_ca: PathBuf,
    dir: tempfile::TempDir,
}

impl Pki {
    /// Makes the certificates (ECDSA P-256; takes milliseconds).
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = |name: &str, pem: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).expect("write PEM");
            path
        };
        let ca = Authority::new("loadmux test CA").expect("CA");
        let server = ca.issue_server(&LOCAL_NAMES).expect("server certificate");
        let client = ca.issue_client("loadmux test client").expect("client certificate");
        let other = Authority::new("unknown CA").expect("other CA");
        let stranger = other.issue_server(&LOCAL_NAMES).expect("server certificate of the other CA");
        Pki {
            ca: file("ca.pem", &ca.cert_pem()),
            server_cert: file("server.pem", &server.cert_pem),
            server_key: file("server.key", &server.key_pem),
            client_cert: file("client.pem", &client.cert_pem),
            client_key: file("client.key", &client.key_pem),
            unknown_ca_cert: file("unknown-ca-server.pem", &stranger.cert_pem),
            unknown_ca_key: file("unknown-ca-server.key", &stranger.key_pem),
            unknown_ca: file("unknown-ca.pem", &other.cert_pem()),
            dir,
        }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}
