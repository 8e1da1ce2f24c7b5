//! TLS over a nonblocking socket, driven by rustls (`ClientConnection`).
//!
//! rustls does no I/O of its own. The pattern (from rustls's `tlsclient-mio`
//! example) is three calls: `read_tls` moves ciphertext from the socket into rustls,
//! `process_new_packets` decrypts it (and runs the handshake), and `write_tls` moves
//! the records rustls made out to the socket. [`TlsStream`] wraps those so that the
//! connection state machine sees plaintext `read`/`write`, a `flush` for records
//! still held, and a `handshake` step, like any other [`Transport`](super::Transport).

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, RootCertStore, SignatureScheme};

use super::{Socket, TlsInfo, TlsSettings, TlsVersion};

/// A run's TLS client: one rustls configuration (shared by every connection, with
/// its session cache) and the server name of each target.
#[derive(Debug)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    /// Per target, in `Plan::targets` order.
    names: Vec<ServerName<'static>>,
}

impl TlsClient {
    /// Builds the configuration: roots, client certificate, ALPN, versions,
    /// resumption, and `SSLKEYLOGFILE`. `hosts` are the targets' host parts (names or
    /// IP addresses), used as server names unless `--sni` is given.
    pub fn new(settings: &TlsSettings, hosts: &[String]) -> Result<TlsClient, String> {
        let provider = Arc::new(ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = match settings.version {
            Some(TlsVersion::V1_2) => &[&rustls::version::TLS12],
            Some(TlsVersion::V1_3) => &[&rustls::version::TLS13],
            None => rustls::DEFAULT_VERSIONS,
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| format!("--tls-version: {e}"))?;
        let builder = if settings.insecure {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        } else {
            builder.with_root_certificates(roots(settings.cacert.as_deref())?)
        };
        let mut config = match &settings.client_cert {
            Some((cert, key)) => {
                let chain = load_certs(cert, "--cert")?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("--key {}: {e}", key.display()))?;
                builder.with_client_auth_cert(chain, key).map_err(|e| format!("--cert/--key: {e}"))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = settings.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        // rustls resumes by default; a load test measures full handshakes unless
        // asked otherwise, so the cache is off without --tls-resume.
        config.resumption = if settings.resume { Resumption::in_memory_sessions(1024) } else { Resumption::disabled() };
        // Honours SSLKEYLOGFILE, as curl and browsers do (for Wireshark).
        config.key_log = Arc::new(rustls::KeyLogFile::new());
        let names = hosts
            .iter()
            .map(|host| {
                let name = settings.sni.as_deref().unwrap_or(host);
                ServerName::try_from(name.to_string())
                    .map_err(|_| format!("--sni: '{name}' is not a valid server name"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TlsClient { config: Arc::new(config), names })
    }

    /// Wraps a socket that is connecting to target number `target`: the ClientHello
    /// is made now and goes out when the socket connects.
    pub fn wrap(&self, socket: Socket, target: usize) -> io::Result<TlsStream> {
        let name = self.names.get(target).or(self.names.first()).cloned().ok_or(io::ErrorKind::InvalidInput)?;
        let conn = ClientConnection::new(self.config.clone(), name).map_err(tls_error)?;
        Ok(TlsStream { conn, socket, drained: false, closing: false })
    }
}

/// The root store: `--cacert`'s certificates, or the system's.
fn roots(cacert: Option<&Path>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match cacert {
        Some(path) => {
            for cert in load_certs(path, "--cacert")? {
                store.add(cert).map_err(|e| format!("--cacert {}: {e}", path.display()))?;
            }
        }
        None => {
            // The system's trust store, as curl and wrk (through OpenSSL) use it, so a
            // corporate CA installed on the machine works without flags.
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err("no system CA certificates found; give --cacert PEM (or --insecure)".into());
            }
        }
    }
    Ok(store)
}

fn load_certs(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{flag} {}: no certificate in the file", path.display()));
    }
    Ok(certs)
}

/// `--insecure`: any certificate chain and name is accepted, but the handshake's
/// signatures are still verified, so the session is encrypted to whoever holds the
/// key of the certificate the server sent.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS client session over a nonblocking socket.
pub struct TlsStream {
    conn: ClientConnection,
    socket: Socket,
    /// The last socket read returned less than rustls asked for: the socket is
    /// drained, and a shorter-than-asked plaintext read means no more is waiting.
    drained: bool,
    /// `close_notify` is queued: this side will write no more (see [`TlsStream::close_write`]).
    closing: bool,
}

impl TlsStream {
    /// The socket underneath.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The socket underneath, to register with the poller.
    pub fn socket_mut(&mut self) -> &mut Socket {
        &mut self.socket
    }

    /// Reads plaintext: what rustls has already decrypted, else more records from the
    /// socket. `Ok(0)` when the peer closed (with close_notify or without: many
    /// servers just close, and an HTTP body may end that way).
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                // Nothing decrypted yet: fetch records below.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The socket closed without close_notify, after all data was read.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            match self.read_records()? {
                // End of stream: the reader above now reports it.
                0 => {}
                // Records may make rustls answer (an alert, a key update): send that
                // now, so that held records always mean "the socket was full" and
                // the writable edge is worth waiting for.
                _ => {
                    self.process()?;
                    self.flush()?;
                }
            }
        }
    }

    /// Writes plaintext: rustls seals it into records, which go out at once as far
    /// as the socket takes them. rustls holds at most its buffer limit (64 KiB) of
    /// records; past that it takes nothing, which is `WouldBlock` here.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Records still held from before go first, so they cannot pile up.
        self.flush()?;
        let taken = self.conn.writer().write(buf)?;
        self.flush()?;
        if taken == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(taken)
    }

    /// Writes held records until none are left (`Ok(true)`) or the socket is full.
    pub fn flush(&mut self) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.socket) {
                Ok(_) => {}
                // Socket full: the writable edge will bring us back.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                // A signal interrupted the call: retry.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Whether rustls holds records for the socket.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Whether the socket is known to be drained after a short plaintext read.
    pub fn drained(&self) -> bool {
        self.drained
    }

    /// One handshake step: sends what rustls has to send, reads and processes what
    /// the server sent. `Ok(true)` once the handshake is complete.
    pub fn handshake(&mut self) -> io::Result<bool> {
        loop {
            self.flush()?;
            if !self.conn.is_handshaking() {
                // Our last flight may still be held (a full socket): the open
                // connection flushes it on the next writable edge.
                return Ok(true);
            }
            match self.read_records() {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed during the TLS handshake",
                    ))
                }
                Ok(_) => self.process()?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    /// Ends this side's stream as TLS does: a `close_notify` alert, then FIN once the
    /// records before it are out. `Ok(false)` while the socket is full (call again on
    /// its writable edge); reading goes on afterwards, as with a TCP half-close.
    pub fn close_write(&mut self) -> io::Result<bool> {
        if !self.closing {
            // Queued once: a second call must not queue a second alert.
            self.conn.send_close_notify();
            self.closing = true;
        }
        if !self.flush()? {
            return Ok(false);
        }
        self.socket.shutdown_write()?;
        Ok(true)
    }

    /// What the handshake negotiated.
    pub fn info(&self) -> Option<TlsInfo> {
        let version = match self.conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            _ => "other",
        };
        let cipher = self.conn.negotiated_cipher_suite()?.suite().as_str().unwrap_or("unknown");
        let alpn = self.conn.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned());
        let resumed = self.conn.handshake_kind() == Some(HandshakeKind::Resumed);
        Some(TlsInfo { version, cipher, alpn, resumed })
    }

    /// Moves ciphertext from the socket into rustls (at most 4 KiB a call, rustls's
    /// read size), noting whether that drained the socket. Retries `Interrupted`.
    fn read_records(&mut self) -> io::Result<usize> {
        loop {
            let mut probe = DrainProbe { socket: &mut self.socket, short: false };
            match self.conn.read_tls(&mut probe) {
                Ok(n) => {
                    self.drained = probe.short;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.drained = true;
                    return Err(e);
                }
            }
        }
    }

    /// Decrypts what `read_tls` brought in. On a TLS error rustls queues an alert for
    /// the peer: send it (best effort) before the connection is dropped.
    fn process(&mut self) -> io::Result<()> {
        match self.conn.process_new_packets() {
            Ok(_) => Ok(()),
            Err(e) => {
                let _ = self.flush();
                Err(tls_error(e))
            }
        }
    }
}

/// A reader over the socket that notes whether a read returned less than asked.
struct DrainProbe<'a> {
    socket: &'a mut Socket,
    short: bool,
}

impl Read for DrainProbe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.socket.read(buf)?;
        self.short = n < buf.len();
        Ok(n)
    }
}

/// Wraps a rustls error so that [`is_tls_error`] recognises it.
fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// True when `err` came from TLS itself (a bad record, an alert), not the socket.
pub fn is_tls_error(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
}
