//! The server side of TLS: the rustls configuration built once at start
//! ([`TlsAcceptor`]), and each accepted connection wrapped in a rustls
//! `ServerConnection` driven by hand on the nonblocking socket ([`TlsSocket`]).
//!
//! rustls does no I/O of its own. Ciphertext goes socket → `read_tls` →
//! `process_new_packets` (which decrypts, and answers handshake messages into an
//! outgoing buffer) → `reader()` gives plaintext. Plaintext goes `writer()` (which
//! encrypts) → `write_tls` → socket. The pattern follows rustls's `tlsserver-mio`
//! example, with the edge-triggered rule: read until the socket says WouldBlock.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use log::debug;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{HandshakeKind, RootCertStore, ServerConnection};

use super::cert::{Authority, LOCAL_NAMES};
use super::socket::Socket;
use super::{ServerCounters, TlsIdentity, TlsSettings};
use crate::io_kind::{interrupted, would_block};

/// Ciphertext (or, during the handshake, plaintext) one connection may have queued
/// in rustls. A client that does not read gets backpressure at this size, not an
/// ever-growing buffer. 64 KiB is rustls's own default, set here so it is visible.
const TLS_BUFFER_LIMIT: usize = 64 * 1024;

/// Sessions remembered for resumption by session ID (TLS 1.2 clients without
/// tickets). Tickets need no server memory.
const SESSION_CACHE_SIZE: usize = 4096;

/// The server's TLS configuration, shared by every thread and connection.
#[derive(Clone)]
pub struct TlsAcceptor {
    config: Arc<rustls::ServerConfig>,
}

impl TlsAcceptor {
    /// Loads (or generates) the certificate and builds the rustls configuration.
    /// Returns the acceptor and, when the certificate was generated, the path of the
    /// CA file written for clients.
    pub fn new(settings: &TlsSettings) -> io::Result<TlsAcceptor> {
        let (chain, key) = match &settings.identity {
            TlsIdentity::Files { cert, key } => (load_certs(cert)?, load_key(key)?),
            TlsIdentity::Generated { ca_out } => generate(ca_out)?,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(tls_error)?;
        let builder = match &settings.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for cert in load_certs(path)? {
                    roots.add(cert).map_err(|e| invalid(path, &e.to_string()))?;
                }
                // Required: a client without a certificate signed by this CA fails
                // the handshake.
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| invalid(path, &e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(chain, key).map_err(tls_error)?;
        config.alpn_protocols = settings.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        // Resumption: stateless tickets (TLS 1.3 and 1.2), and a session-ID cache
        // for TLS 1.2 clients that do not take tickets.
        config.ticketer = rustls::crypto::ring::Ticketer::new().map_err(tls_error)?;
        config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_SIZE);
        // SSLKEYLOGFILE, as curl and browsers honour it, so Wireshark can decrypt.
        config.key_log = Arc::new(rustls::KeyLogFile::new());
        Ok(TlsAcceptor { config: Arc::new(config) })
    }

    /// Wraps a freshly accepted socket; the handshake happens as it is read.
    pub fn accept(&self, socket: Socket) -> io::Result<TlsSocket> {
        let mut tls = ServerConnection::new(self.config.clone()).map_err(tls_error)?;
        tls.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        Ok(TlsSocket { socket, tls, handshake: Handshake::InProgress, input: Input::Open })
    }
}

/// Whether the handshake has been counted yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handshake {
    /// Still going (or never finished).
    InProgress,
    /// Finished and counted in [`ServerCounters`].
    Done,
}

/// Whether the client has ended its side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Input {
    /// More may come.
    Open,
    /// close_notify or EOF was read from the socket (though maybe not yet reported).
    Ended,
}

/// One TLS connection: the socket and rustls's state for it.
pub struct TlsSocket {
    socket: Socket,
    tls: ServerConnection,
    handshake: Handshake,
    input: Input,
}

impl TlsSocket {
    /// The socket underneath.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// Reads plaintext into `buf`, reading and decrypting ciphertext until `buf` is
    /// full or the socket has nothing more (WouldBlock). So, as on a plain socket, a
    /// short read means the socket is drained, and the caller may wait for the next
    /// edge. `Ok(0)` is the end: the client's close_notify, or its plain close.
    /// Handshake answers go out on the way. A TLS error (a bad handshake, a bad
    /// record) sends rustls's alert, then returns `InvalidData`.
    pub fn read(&mut self, buf: &mut [u8], counters: &mut ServerCounters) -> io::Result<usize> {
        let mut filled = 0;
        loop {
            // First the plaintext rustls has already decrypted.
            match self.tls.reader().read(&mut buf[filled..]) {
                // close_notify, or the client closed the socket without one: the
                // end, once what came before it is delivered.
                Ok(0) => return Ok(self.end(filled)),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(self.end(filled)),
                Ok(n) => filled += n,
                Err(e) if would_block(&e) => {} // Nothing decrypted and waiting.
                Err(e) => return Err(e),
            }
            if filled == buf.len() {
                return Ok(filled); // Full: the caller comes back for the rest.
            }
            // Then more ciphertext from the socket.
            match self.tls.read_tls(&mut self.socket) {
                Ok(_) => {} // Bytes, or 0 = EOF, which rustls notes and reports above.
                Err(e) if would_block(&e) && filled > 0 => return Ok(filled),
                Err(e) if interrupted(&e) => continue,
                // WouldBlock with nothing read, or a socket error.
                Err(e) => return Err(e),
            }
            if let Err(e) = self.tls.process_new_packets() {
                // rustls has queued an alert saying why; send it, then give up.
                let _ = self.flush();
                let stage = if self.handshake == Handshake::InProgress { "TLS handshake" } else { "TLS" };
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{stage} failed: {e}")));
            }
            self.count_handshake(counters);
            // Handshake messages, session tickets or a key update may be owed.
            self.flush()?;
        }
    }

    /// Encrypts as much of `buf` as rustls takes and sends what the socket takes.
    /// WouldBlock when ciphertext from earlier is still waiting for the socket: no
    /// new plaintext is taken until it is out (backpressure, bounded memory).
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.flush()?;
        if self.tls.wants_write() {
            return Err(io::ErrorKind::WouldBlock.into()); // The writable edge brings us back.
        }
        // 0 when the buffer limit is reached (only before the handshake ends, as
        // afterwards the buffer is empty here).
        let taken = self.tls.writer().write(buf)?;
        self.flush()?;
        if taken == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(taken)
    }

    /// True when the client's end was read from the socket but not yet reported as
    /// `Ok(0)`: it came in the same read as the last data, so no new readiness edge
    /// will come for it, and the caller must read again to see it.
    pub fn end_unreported(&self) -> bool {
        self.input == Input::Ended
    }

    fn end(&mut self, delivered: usize) -> usize {
        self.input = Input::Ended;
        delivered
    }

    /// Writes queued ciphertext until none is left or the socket is full.
    pub fn flush(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if would_block(&e) => return Ok(()), // The writable edge brings us back.
                Err(e) if interrupted(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Says goodbye (close_notify) and sends it if the socket takes it now. Does
    /// nothing after a fatal alert (rustls sends one or the other).
    pub fn close_notify(&mut self) {
        self.tls.send_close_notify();
        let _ = self.flush();
    }

    fn count_handshake(&mut self, counters: &mut ServerCounters) {
        if self.handshake == Handshake::Done || self.tls.is_handshaking() {
            return;
        }
        self.handshake = Handshake::Done;
        counters.tls_handshakes += 1;
        let resumed = self.tls.handshake_kind() == Some(HandshakeKind::Resumed);
        if resumed {
            counters.tls_resumed += 1;
        }
        debug!(
            "server: TLS handshake done with {}: {:?} {:?}, ALPN {:?}, {}",
            self.socket.peer(),
            self.tls.protocol_version(),
            self.tls.negotiated_cipher_suite().map(|s| s.suite()),
            self.tls.alpn_protocol().map(String::from_utf8_lossy),
            if resumed { "resumed" } else { "full" }
        );
    }
}

/// A fresh CA and a server certificate for [`LOCAL_NAMES`]; the CA goes to
/// `ca_out` for clients.
fn generate(ca_out: &Path) -> io::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let ca = Authority::new("loadmux serve --tls generated CA")?;
    let server = ca.issue_server(&LOCAL_NAMES)?;
    std::fs::write(ca_out, ca.cert_pem())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot write the CA to {}: {e}", ca_out.display())))?;
    Ok((vec![server.cert_der], server.key_der))
}

/// Every certificate in a PEM file (the server's first, then its chain).
fn load_certs(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(path, &e.to_string()))?;
    if certs.is_empty() {
        return Err(invalid(path, "no CERTIFICATE in it"));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, PKCS#1 or SEC1).
fn load_key(path: &Path) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| invalid(path, &e.to_string()))
}

fn invalid(path: &Path, why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{}: {why}", path.display()))
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("TLS configuration: {e}"))
}
