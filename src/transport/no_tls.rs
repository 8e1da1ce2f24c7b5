//! A build without the `tls` feature: the TLS types exist but can never be made, so
//! the rest of the code needs no `cfg` of its own. `--tls` is refused by the plan.

use std::io;

use super::{Socket, TlsInfo, TlsSettings};

/// A TLS client: cannot be built without the `tls` feature.
#[derive(Debug)]
pub enum TlsClient {}

impl TlsClient {
    /// Always an error: this build has no TLS.
    pub fn new(_settings: &TlsSettings, _hosts: &[String]) -> Result<TlsClient, String> {
        Err("this loadmux was built without TLS (cargo feature `tls`)".into())
    }

    /// Unreachable: no `TlsClient` exists.
    pub fn wrap(&self, _socket: Socket, _target: usize) -> io::Result<TlsStream> {
        match *self {}
    }
}

/// A TLS stream: none exists in this build.
pub enum TlsStream {}

#[allow(missing_docs)]
impl TlsStream {
    pub fn socket(&self) -> &Socket {
        match *self {}
    }
    pub fn socket_mut(&mut self) -> &mut Socket {
        match *self {}
    }
    pub fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        match *self {}
    }
    pub fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
        match *self {}
    }
    pub fn flush(&mut self) -> io::Result<bool> {
        match *self {}
    }
    pub fn wants_write(&self) -> bool {
        match *self {}
    }
    pub fn drained(&self) -> bool {
        match *self {}
    }
    pub fn handshake(&mut self) -> io::Result<bool> {
        match *self {}
    }
    pub fn close_write(&mut self) -> io::Result<bool> {
        match *self {}
    }
    pub fn info(&self) -> Option<TlsInfo> {
        match *self {}
    }
}

/// Never: without TLS no error comes from TLS.
pub fn is_tls_error(_err: &io::Error) -> bool {
    false
}
