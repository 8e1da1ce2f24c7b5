//! Stand-ins for `tls.rs` in a build without the `tls` feature. The types have no
//! values, so the event loop's TLS arms compile and can never run; `--tls` is
//! refused before a server starts.

use std::io;

use super::socket::Socket;
use super::{ServerCounters, TlsSettings};

/// Never exists in this build.
#[derive(Clone)]
pub enum TlsAcceptor {}

impl TlsAcceptor {
    /// Always an error: this build has no TLS.
    pub fn new(_: &TlsSettings) -> io::Result<TlsAcceptor> {
        Err(io::Error::new(io::ErrorKind::Unsupported, super::NO_TLS))
    }

    /// Unreachable: there is no acceptor.
    pub fn accept(&self, _: Socket) -> io::Result<TlsSocket> {
        match *self {}
    }
}

/// Never exists in this build.
pub enum TlsSocket {}

impl TlsSocket {
    /// Unreachable.
    pub fn socket(&self) -> &Socket {
        match *self {}
    }
    /// Unreachable.
    pub fn read(&mut self, _: &mut [u8], _: &mut ServerCounters) -> io::Result<usize> {
        match *self {}
    }
    /// Unreachable.
    pub fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        match *self {}
    }
    /// Unreachable.
    pub fn end_unreported(&self) -> bool {
        match *self {}
    }
    /// Unreachable.
    pub fn flush(&mut self) -> io::Result<()> {
        match *self {}
    }
    /// Unreachable.
    pub fn close_notify(&mut self) {
        match *self {}
    }
}
