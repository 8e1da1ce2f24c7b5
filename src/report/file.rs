//! Writing report files atomically.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path`, or to stdout when `path` is `-`.
///
/// A file is written to a temporary file in the same directory, synced, then renamed
/// over the target, so a reader (or a Ctrl-C mid-write) never sees half a report.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if path.as_os_str() == "-" {
        let mut out = io::stdout().lock();
        out.write_all(bytes)?;
        return out.flush();
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = Path::new(&tmp);
    let written = fs::File::create(tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(tmp, path)) {
        let _ = fs::remove_file(tmp);
        return Err(e);
    }
    Ok(())
}
