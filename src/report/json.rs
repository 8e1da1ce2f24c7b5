//! Writing the JSON report.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use super::Report;

/// Writes `report` as pretty JSON to `path`, or to stdout when `path` is `-`.
///
/// A file is written atomically: to a temporary file in the same directory, then
/// renamed over the target, so a reader (or a Ctrl-C mid-write) never sees half a
/// report.
pub fn write_json(report: &Report, path: &Path) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(report).map_err(io::Error::other)?;
    text.push('\n');
    if path.as_os_str() == "-" {
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())?;
        return out.flush();
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = Path::new(&tmp);
    let written = fs::File::create(tmp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(tmp, path)) {
        let _ = fs::remove_file(tmp);
        return Err(e);
    }
    Ok(())
}
