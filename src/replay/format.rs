//! The recording file format (version 1): bytes on disk, written and read.
//!
//! ```text
//! header   "LMXREC\r\n" (8 bytes)  version: u16 LE (= 1)
//! record   kind: u8  session: u32 LE  gap_us: u32 LE  len: u32 LE  data: [u8; len]
//!          ... one record per chunk of bytes the proxy read, in the order it read them
//! trailer  a record of kind END whose data is the number of records before it (u64 LE)
//! ```
//!
//! Why this shape (`docs/replay.md` says more):
//! - Binary with length prefixes, not JSON lines with base64: recorded traffic is
//!   mostly binary-safe text (RESP, HTTP) that base64 would grow by a third, and a
//!   Python script reads it with one `struct.unpack("<BIII", ...)` per record.
//! - One record per chunk, as the proxy reads it, interleaved across sessions: the
//!   proxy streams records to disk the moment it forwards the bytes, so recording
//!   needs no memory per session beyond the socket buffers. Steps are derived when
//!   the file is read ([`super::recording`]).
//! - The trailer makes truncation detectable: a file without it was cut short.
//! - The version is checked before anything else, so a newer file gets a clear
//!   "newer version" line rather than a parse error somewhere in the middle.

use std::fmt;
use std::io::{self, Write};
use std::time::Duration;

/// The first bytes of every recording. `\r\n` catches a file mangled by a text-mode
/// transfer, as PNG's signature does.
pub const MAGIC: &[u8; 8] = b"LMXREC\r\n";
/// The version this build writes and the newest it reads.
pub const VERSION: u16 = 1;
/// Bytes of the header: magic, then version.
pub const HEADER_LEN: usize = MAGIC.len() + 2;
/// Bytes of a record before its data.
pub const RECORD_HEAD_LEN: usize = 1 + 4 + 4 + 4;
/// The largest data a reader accepts in one record. The proxy writes at most one
/// buffer's worth (64 KiB); the limit keeps a corrupt length from asking for 4 GiB.
pub const MAX_RECORD_DATA: usize = 1 << 20;

/// What a record says happened on one session (one proxied client connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The client connected (no data).
    Open,
    /// Bytes the client sent, as one read returned them.
    Client,
    /// Bytes the server sent, as one read returned them.
    Server,
    /// The session ended; the data is one [`CloseReason`] byte.
    Close,
    /// The trailer: the data is the number of records before it (u64 LE).
    End,
}

impl Kind {
    /// The byte that stands for this kind on disk.
    pub fn byte(self) -> u8 {
        match self {
            Kind::Open => 1,
            Kind::Client => 2,
            Kind::Server => 3,
            Kind::Close => 4,
            Kind::End => 0xff,
        }
    }

    fn from_byte(byte: u8) -> Option<Kind> {
        Some(match byte {
            1 => Kind::Open,
            2 => Kind::Client,
            3 => Kind::Server,
            4 => Kind::Close,
            0xff => Kind::End,
            _ => return None,
        })
    }
}

/// Why a session ended, as recorded in its `Close` record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// Both sides closed in order (FIN both ways).
    Clean,
    /// The client reset or vanished (a read or write on its socket failed).
    ClientError,
    /// The upstream reset, refused, or failed.
    UpstreamError,
    /// The recording stopped (signal or `--duration`) while the session was open.
    Stopped,
}

impl CloseReason {
    /// The byte that stands for this reason on disk.
    pub fn byte(self) -> u8 {
        match self {
            CloseReason::Clean => 0,
            CloseReason::ClientError => 1,
            CloseReason::UpstreamError => 2,
            CloseReason::Stopped => 3,
        }
    }

    fn from_byte(byte: u8) -> Option<CloseReason> {
        Some(match byte {
            0 => CloseReason::Clean,
            1 => CloseReason::ClientError,
            2 => CloseReason::UpstreamError,
            3 => CloseReason::Stopped,
            _ => return None,
        })
    }

    /// A short human name (replay-info).
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::Clean => "clean",
            CloseReason::ClientError => "client error",
            CloseReason::UpstreamError => "upstream error",
            CloseReason::Stopped => "stopped",
        }
    }
}

/// One record read back from a file, borrowing its data from the file's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// What happened.
    pub kind: Kind,
    /// The session it happened on (numbered from 0 in the order clients connected).
    pub session: u32,
    /// Time since the session's previous record (for `Open`: since the recording began).
    pub gap: Duration,
    /// The bytes (`Client`/`Server`), the close reason (`Close`), the count (`End`).
    pub data: &'a [u8],
}

/// Why a file is not a recording this build can read. Each is one line for the user.
#[derive(Debug, PartialEq, Eq)]
pub enum FormatError {
    /// The file does not start with the magic bytes.
    Foreign,
    /// The file was written by a newer loadmux.
    NewerVersion(u16),
    /// The file ends before its trailer: the recording was cut short.
    Truncated {
        /// Records read before the end.
        records: u64,
    },
    /// A record that cannot be right: unknown kind, bad length, unknown session...
    Corrupt {
        /// Byte offset of the record.
        offset: usize,
        /// What is wrong with it.
        why: &'static str,
    },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Foreign => write!(f, "not a loadmux recording (it does not start with LMXREC)"),
            FormatError::NewerVersion(v) => {
                write!(f, "recording format version {v} is newer than this loadmux reads ({VERSION}); upgrade loadmux")
            }
            FormatError::Truncated { records } => {
                write!(f, "recording is truncated after {records} records (no end trailer): was `record` killed?")
            }
            FormatError::Corrupt { offset, why } => write!(f, "recording is corrupt at byte {offset}: {why}"),
        }
    }
}

impl std::error::Error for FormatError {}

/// Reads the records of a whole file, checking the header first and the trailer last.
/// `on_record` sees every record before the trailer, in file order.
///
/// Never panics, whatever the bytes (property-tested and fuzzed).
pub fn read_records<'a>(
    bytes: &'a [u8],
    mut on_record: impl FnMut(Record<'a>, usize) -> Result<(), FormatError>,
) -> Result<(), FormatError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(FormatError::Foreign);
    }
    let Some(version) = bytes.get(MAGIC.len()..HEADER_LEN) else { return Err(FormatError::Truncated { records: 0 }) };
    let version = u16::from_le_bytes([version[0], version[1]]);
    if version > VERSION {
        return Err(FormatError::NewerVersion(version));
    }
    if version == 0 {
        return Err(FormatError::Corrupt { offset: MAGIC.len(), why: "version 0 does not exist" });
    }
    let mut offset = HEADER_LEN;
    let mut count: u64 = 0;
    loop {
        let Some(head) = bytes.get(offset..offset + RECORD_HEAD_LEN) else {
            return Err(FormatError::Truncated { records: count });
        };
        let kind = Kind::from_byte(head[0]).ok_or(FormatError::Corrupt { offset, why: "unknown record kind" })?;
        let session = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        let gap_us = u32::from_le_bytes([head[5], head[6], head[7], head[8]]);
        let len = u32::from_le_bytes([head[9], head[10], head[11], head[12]]) as usize;
        if len > MAX_RECORD_DATA {
            return Err(FormatError::Corrupt { offset, why: "record longer than 1 MiB" });
        }
        let start = offset + RECORD_HEAD_LEN;
        let Some(data) = bytes.get(start..start + len) else { return Err(FormatError::Truncated { records: count }) };
        let record = Record { kind, session, gap: Duration::from_micros(u64::from(gap_us)), data };
        if kind == Kind::End {
            let stated = <[u8; 8]>::try_from(data).ok().map(u64::from_le_bytes);
            if stated != Some(count) {
                return Err(FormatError::Corrupt { offset, why: "trailer's record count does not match" });
            }
            if start + len != bytes.len() {
                return Err(FormatError::Corrupt { offset: start + len, why: "bytes after the trailer" });
            }
            return Ok(());
        }
        if kind == Kind::Close && (len != 1 || CloseReason::from_byte(data[0]).is_none()) {
            return Err(FormatError::Corrupt { offset, why: "close record without a known reason" });
        }
        on_record(record, offset)?;
        count += 1;
        offset = start + len;
    }
}

/// Parses a `Close` record's reason (already validated by [`read_records`]).
pub fn close_reason(data: &[u8]) -> CloseReason {
    data.first().and_then(|&b| CloseReason::from_byte(b)).unwrap_or(CloseReason::Stopped)
}

/// Writes records to any `Write` (the proxy gives it a buffered temp file).
pub struct RecordWriter<W: Write> {
    out: W,
    records: u64,
}

impl<W: Write> RecordWriter<W> {
    /// Writes the header and returns the writer.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(MAGIC)?;
        out.write_all(&VERSION.to_le_bytes())?;
        Ok(RecordWriter { out, records: 0 })
    }

    /// Writes one record. `data` longer than [`MAX_RECORD_DATA`] is split into
    /// several records of the same kind (later ones with a zero gap).
    pub fn write(&mut self, kind: Kind, session: u32, gap: Duration, data: &[u8]) -> io::Result<()> {
        let mut gap_us = u32::try_from(gap.as_micros()).unwrap_or(u32::MAX);
        let mut chunks = data.chunks(MAX_RECORD_DATA);
        let first = chunks.next().unwrap_or(&[]);
        for chunk in std::iter::once(first).chain(chunks) {
            let mut head = [0u8; RECORD_HEAD_LEN];
            head[0] = kind.byte();
            head[1..5].copy_from_slice(&session.to_le_bytes());
            head[5..9].copy_from_slice(&gap_us.to_le_bytes());
            // A chunk is at most MAX_RECORD_DATA (1 MiB): it fits in a u32.
            head[9..13].copy_from_slice(&(chunk.len() as u32).to_le_bytes());
            self.out.write_all(&head)?;
            self.out.write_all(chunk)?;
            self.records += 1;
            gap_us = 0;
        }
        Ok(())
    }

    /// Records written so far (the trailer not counted).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Writes the trailer and returns the inner writer (still to be flushed and synced).
    pub fn finish(mut self) -> io::Result<W> {
        let count = self.records.to_le_bytes();
        let mut head = [0u8; RECORD_HEAD_LEN];
        head[0] = Kind::End.byte();
        head[9..13].copy_from_slice(&(count.len() as u32).to_le_bytes());
        self.out.write_all(&head)?;
        self.out.write_all(&count)?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = RecordWriter::new(Vec::new()).unwrap();
        w.write(Kind::Open, 0, Duration::from_millis(5), &[]).unwrap();
        w.write(Kind::Client, 0, Duration::from_micros(10), b"PING\r\n").unwrap();
        w.write(Kind::Server, 0, Duration::from_micros(40), b"+PONG\r\n").unwrap();
        w.write(Kind::Close, 0, Duration::ZERO, &[CloseReason::Clean.byte()]).unwrap();
        w.finish().unwrap()
    }

    fn collect(bytes: &[u8]) -> Result<Vec<(Kind, u32, Vec<u8>)>, FormatError> {
        let mut out = Vec::new();
        read_records(bytes, |r, _| {
            out.push((r.kind, r.session, r.data.to_vec()));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn written_records_read_back_in_order() {
        let records = collect(&sample()).unwrap();
        assert_eq!(records.len(), 4);
        assert_eq!(records[1], (Kind::Client, 0, b"PING\r\n".to_vec()));
        assert_eq!(records[2], (Kind::Server, 0, b"+PONG\r\n".to_vec()));
    }

    #[test]
    fn every_cut_short_of_the_end_is_truncated_or_foreign() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            let err = collect(&bytes[..cut]).unwrap_err();
            assert!(matches!(err, FormatError::Truncated { .. } | FormatError::Foreign), "cut {cut}: {err}");
        }
    }

    #[test]
    fn a_newer_version_is_named() {
        let mut bytes = sample();
        bytes[8] = 2;
        assert_eq!(collect(&bytes).unwrap_err(), FormatError::NewerVersion(2));
    }

    #[test]
    fn foreign_files_are_named() {
        assert_eq!(collect(b"{\"tool\":\"loadmux\"}").unwrap_err(), FormatError::Foreign);
    }

    #[test]
    fn a_wrong_trailer_count_is_corrupt() {
        let mut bytes = sample();
        let last = bytes.len() - 8;
        bytes[last] = 9;
        assert!(matches!(collect(&bytes).unwrap_err(), FormatError::Corrupt { .. }));
    }

    #[test]
    fn long_data_is_split_into_records_the_reader_accepts() {
        let mut w = RecordWriter::new(Vec::new()).unwrap();
        w.write(Kind::Open, 0, Duration::ZERO, &[]).unwrap();
        w.write(Kind::Server, 0, Duration::ZERO, &vec![7u8; MAX_RECORD_DATA + 5]).unwrap();
        let records = collect(&w.finish().unwrap()).unwrap();
        let sizes: Vec<usize> = records.iter().map(|r| r.2.len()).collect();
        assert_eq!(sizes, [0, MAX_RECORD_DATA, 5]);
    }
}
