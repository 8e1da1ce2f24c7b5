//! What a server connection reads and writes through: the socket itself, or TLS
//! over it. The modes (echo, http, ...) see plaintext only, with the socket's rules:
//! WouldBlock means "not now", a short read means drained, `Ok(0)` is the end.

use std::io::{self, Read, Write};

use super::socket::Socket;
use super::tls::TlsSocket;
use super::ServerCounters;

/// A connection's transport.
pub enum Transport {
    /// Bytes go straight to the socket.
    Plain(Socket),
    /// Bytes go through rustls (boxed: a rustls connection is about 1 KiB, and
    /// plain connections should not pay for it).
    Tls(Box<TlsSocket>),
}

impl Transport {
    /// Reads plaintext, like `Read::read` on a nonblocking socket. TLS counts its
    /// finished handshake in `counters`.
    pub fn read(&mut self, buf: &mut [u8], counters: &mut ServerCounters) -> io::Result<usize> {
        match self {
            Transport::Plain(socket) => socket.read(buf),
            Transport::Tls(tls) => tls.read(buf, counters),
        }
    }

    /// Writes plaintext, like `Write::write` on a nonblocking socket.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(socket) => socket.write(buf),
            Transport::Tls(tls) => tls.write(buf),
        }
    }

    /// Sends bytes the transport itself still owes (TLS ciphertext); plain sockets
    /// owe none.
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(_) => Ok(()),
            Transport::Tls(tls) => tls.flush(),
        }
    }

    /// True when the client's end has been read but not yet returned as `Ok(0)`
    /// (TLS reads ahead: it may take the end along with the last data). The caller
    /// must read again, as no readiness edge will come for it.
    pub fn end_unreported(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(tls) => tls.end_unreported(),
        }
    }

    /// Before an orderly close: TLS sends close_notify (best effort).
    pub fn close_notify(&mut self) {
        if let Transport::Tls(tls) = self {
            tls.close_notify();
        }
    }

    /// The socket underneath.
    pub fn socket(&self) -> &Socket {
        match self {
            Transport::Plain(socket) => socket,
            Transport::Tls(tls) => tls.socket(),
        }
    }
}
