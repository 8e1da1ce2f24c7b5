//! The error taxonomy: every way a connection can end badly has exactly one name.
//!
//! The names are part of the report format (`errors.by_kind` in JSON), so they are
//! spelled once here and nowhere else.

use std::io;

/// Why a connection (or one attempt to open one) failed.
///
/// Every transition that ends a connection counts exactly one `ErrorKind` or one
/// clean close; see `engine::conn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The peer answered the SYN with RST: nothing listens on that port. For a Unix
    /// target: no socket file, nothing listening on it, or its listen queue full
    /// (a Unix connect fails at once where TCP would wait).
    ConnectRefused,
    /// The connect did not complete within `--connect-timeout`.
    ConnectTimeout,
    /// No route to the network or host.
    ConnectUnreachable,
    /// No local address or ephemeral port was free (`EADDRNOTAVAIL`).
    AddrUnavailable,
    /// The process or system ran out of file descriptors (`EMFILE`/`ENFILE`).
    FdLimit,
    /// The peer reset an established connection.
    Reset,
    /// We wrote to a connection the peer had already closed.
    BrokenPipe,
    /// A response did not arrive within `--timeout`.
    ResponseTimeout,
    /// The peer closed the connection while a response was due.
    Eof,
    /// The response broke the framing rules, failed verification, or was too large.
    Protocol,
    /// The TLS handshake failed: a certificate rejected, an alert, no common version
    /// or cipher suite, a plaintext server answering, or the peer closing mid-way.
    TlsHandshake,
    /// A TLS record or alert failure after the handshake.
    Tls,
    /// Anything else; the debug log names the underlying error.
    Other,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::ConnectRefused,
        ErrorKind::ConnectTimeout,
        ErrorKind::ConnectUnreachable,
        ErrorKind::AddrUnavailable,
        ErrorKind::FdLimit,
        ErrorKind::Reset,
        ErrorKind::BrokenPipe,
        ErrorKind::ResponseTimeout,
        ErrorKind::Eof,
        ErrorKind::Protocol,
        ErrorKind::TlsHandshake,
        ErrorKind::Tls,
        ErrorKind::Other,
    ];

    /// Number of kinds; sizes the per-kind counter arrays.
    pub const COUNT: usize = Self::ALL.len();

    /// The name used in every report.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::ConnectUnreachable => "connect_unreachable",
            ErrorKind::AddrUnavailable => "addr_unavailable",
            ErrorKind::FdLimit => "fd_limit",
            ErrorKind::Reset => "reset",
            ErrorKind::BrokenPipe => "broken_pipe",
            ErrorKind::ResponseTimeout => "response_timeout",
            ErrorKind::Eof => "eof",
            ErrorKind::Protocol => "protocol",
            ErrorKind::TlsHandshake => "tls_handshake",
            ErrorKind::Tls => "tls",
            ErrorKind::Other => "other",
        }
    }

    /// Looks a kind up by its report name (used when reading reports back).
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Index into per-kind counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Classifies an error from creating a socket or connecting it.
    ///
    /// The errno decides, not `io::ErrorKind`, because several errnos we must tell
    /// apart (`EMFILE`, `EADDRNOTAVAIL`, `EHOSTUNREACH`) share or lack a stable kind.
    pub fn from_connect_error(err: &io::Error) -> ErrorKind {
        match err.raw_os_error() {
            // ENOENT: no socket file at a Unix target's path. EAGAIN: a Unix
            // listener's queue is full (a Unix connect never waits).
            Some(libc::ECONNREFUSED) | Some(libc::ENOENT) | Some(libc::EAGAIN) => ErrorKind::ConnectRefused,
            Some(libc::ETIMEDOUT) => ErrorKind::ConnectTimeout,
            Some(libc::ENETUNREACH) | Some(libc::EHOSTUNREACH) | Some(libc::ENETDOWN) => ErrorKind::ConnectUnreachable,
            Some(libc::EADDRNOTAVAIL) | Some(libc::EADDRINUSE) => ErrorKind::AddrUnavailable,
            Some(libc::EMFILE) | Some(libc::ENFILE) => ErrorKind::FdLimit,
            Some(libc::ECONNRESET) => ErrorKind::Reset,
            _ => ErrorKind::Other,
        }
    }

    /// Classifies an error from reading or writing an established connection.
    pub fn from_io_error(err: &io::Error) -> ErrorKind {
        if crate::transport::tls::is_tls_error(err) {
            return ErrorKind::Tls;
        }
        // A WebSocket frame that breaks RFC 6455, or a message over --max-response.
        if crate::session::websocket::is_session_error(err) {
            return ErrorKind::Protocol;
        }
        match err.raw_os_error() {
            Some(libc::ECONNRESET) | Some(libc::ECONNABORTED) => ErrorKind::Reset,
            Some(libc::EPIPE) => ErrorKind::BrokenPipe,
            Some(libc::ETIMEDOUT) => ErrorKind::ResponseTimeout,
            Some(libc::EHOSTUNREACH) | Some(libc::ENETUNREACH) => ErrorKind::ConnectUnreachable,
            _ => ErrorKind::Other,
        }
    }
}

/// A counter per error kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorCounts([u64; ErrorKind::COUNT]);

impl ErrorCounts {
    /// Counts one error of `kind`.
    pub fn add(&mut self, kind: ErrorKind) {
        self.0[kind.index()] += 1;
    }

    /// The count for `kind`.
    pub fn get(&self, kind: ErrorKind) -> u64 {
        self.0[kind.index()]
    }

    /// All errors of every kind.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Adds another set of counts into this one.
    pub fn merge(&mut self, other: &ErrorCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// `self - earlier`, for per-interval deltas.
    pub fn since(&self, earlier: &ErrorCounts) -> ErrorCounts {
        let mut out = *self;
        for (a, b) in out.0.iter_mut().zip(earlier.0.iter()) {
            *a -= b;
        }
        out
    }

    /// `(kind, count)` for every kind, in report order, zeros included.
    pub fn iter(&self) -> impl Iterator<Item = (ErrorKind, u64)> + '_ {
        ErrorKind::ALL.into_iter().map(|k| (k, self.get(k)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(kind.name()), Some(kind));
        }
        let mut names: Vec<_> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::COUNT);
    }

    #[test]
    fn connect_errnos_map_to_their_kinds() {
        let e = |n| io::Error::from_raw_os_error(n);
        assert_eq!(ErrorKind::from_connect_error(&e(libc::ECONNREFUSED)), ErrorKind::ConnectRefused);
        assert_eq!(ErrorKind::from_connect_error(&e(libc::EMFILE)), ErrorKind::FdLimit);
        assert_eq!(ErrorKind::from_connect_error(&e(libc::EADDRNOTAVAIL)), ErrorKind::AddrUnavailable);
        assert_eq!(ErrorKind::from_connect_error(&e(libc::EHOSTUNREACH)), ErrorKind::ConnectUnreachable);
        assert_eq!(ErrorKind::from_io_error(&e(libc::ECONNRESET)), ErrorKind::Reset);
        assert_eq!(ErrorKind::from_io_error(&e(libc::EPIPE)), ErrorKind::BrokenPipe);
        assert_eq!(ErrorKind::from_io_error(&e(libc::EINVAL)), ErrorKind::Other);
    }

    #[test]
    fn counts_add_merge_and_subtract() {
        let mut a = ErrorCounts::default();
        a.add(ErrorKind::Reset);
        a.add(ErrorKind::Reset);
        let mut b = ErrorCounts::default();
        b.add(ErrorKind::Eof);
        b.merge(&a);
        assert_eq!(b.total(), 3);
        assert_eq!(b.since(&a).get(ErrorKind::Eof), 1);
        assert_eq!(b.since(&a).get(ErrorKind::Reset), 0);
    }
}
