//! Test doubles shared by the unit tests and the fuzz targets (the `testing`
//! feature; never in a release build).

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use crate::transport::Transport;

/// An in-memory transport that plays a script: reads hand out `incoming`, `chunk`
/// bytes at a time; writes go to `written`, at most `room` bytes in all. It has no
/// handshake, holds nothing back, and is always connected.
#[derive(Debug)]
pub struct Scripted {
    /// What the peer sends; a test may add to it between reads.
    pub incoming: Vec<u8>,
    /// How much of `incoming` has been read.
    pub at: usize,
    /// Most bytes per read.
    pub chunk: usize,
    /// Every other read is a `WouldBlock`, as when the rest has not arrived yet.
    pub pauses: bool,
    paused: bool,
    /// After the last byte of `incoming`, a read returns end of stream instead of
    /// `WouldBlock` (the peer closed; nothing more will be pushed).
    pub ends: bool,
    /// What was written, shared so it can be read after the transport is gone
    /// (a session dropped with it writes its close on the way out).
    pub written: Rc<RefCell<Vec<u8>>>,
    /// Bytes writes may still take; a write with no room left is a `WouldBlock`.
    pub room: usize,
}

impl Scripted {
    /// Reads of at most `chunk` bytes, no pauses, no end, unlimited room.
    pub fn new(chunk: usize) -> Scripted {
        Scripted {
            incoming: Vec::new(),
            at: 0,
            chunk,
            pauses: false,
            paused: false,
            ends: false,
            written: Rc::default(),
            room: usize::MAX,
        }
    }
}

impl Transport for Scripted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.paused = self.pauses && !self.paused;
        if self.paused {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.chunk.min(buf.len()).min(self.incoming.len() - self.at);
        if n == 0 {
            if self.ends && self.at == self.incoming.len() {
                return Ok(0);
            }
            return Err(io::ErrorKind::WouldBlock.into());
        }
        buf[..n].copy_from_slice(&self.incoming[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.room);
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.room -= n;
        self.written.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<bool> {
        Ok(true)
    }
    fn wants_write(&self) -> bool {
        false
    }
    fn handshake(&mut self) -> io::Result<bool> {
        Ok(true)
    }
    fn drained(&self) -> bool {
        true
    }
    fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(None)
    }
    fn is_connected(&self) -> io::Result<bool> {
        Ok(true)
    }
    fn reset_on_close(&self) -> io::Result<()> {
        Ok(())
    }
}
