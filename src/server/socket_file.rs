//! A Unix socket's file: checked before binding (a stale file from a dead server is
//! replaced, a live server's is not touched) and removed when the server stops.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use log::{debug, warn};

/// Makes `path` free for a new Unix listener. Nothing there: fine. A socket nobody
/// listens on (its server died without cleaning up): removed. A socket with a live
/// server behind it, or a file that is not a socket: an error that says so, and the
/// file is left alone.
pub fn clear_stale(path: &Path) -> io::Result<()> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !metadata.file_type().is_socket() {
        return Err(io::Error::new(io::ErrorKind::AlreadyExists, "the path exists and is not a socket"));
    }
    match UnixStream::connect(path) {
        // Someone answered: another server owns this path.
        Ok(_) => Err(io::Error::new(io::ErrorKind::AddrInUse, "another server is listening there")),
        // Nobody listens: the file outlived its server.
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            debug!("removing the stale socket file {}", path.display());
            std::fs::remove_file(path)
        }
        Err(e) => Err(e),
    }
}

/// The socket file a server created; removed on drop, unless by then the path is
/// another file (someone replaced it: theirs to keep).
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    /// Device and inode at creation, to recognise our own file at removal.
    identity: (u64, u64),
}

impl SocketFile {
    /// Takes ownership of the socket file just bound at `path`.
    pub fn created(path: &Path) -> io::Result<SocketFile> {
        let metadata = std::fs::symlink_metadata(path)?;
        Ok(SocketFile { path: path.to_path_buf(), identity: (metadata.dev(), metadata.ino()) })
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.identity);
        if ours {
            if let Err(e) = std::fs::remove_file(&self.path) {
                warn!("cannot remove the socket file {}: {e}", self.path.display());
            }
        }
    }
}
