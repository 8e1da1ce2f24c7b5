//! Writing and reading the JSON report.

use std::io;
use std::path::Path;

use super::{file::write_atomic, Report, SCHEMA};

/// Writes `report` as pretty JSON to `path` (atomically), or to stdout for `-`.
pub fn write_json(report: &Report, path: &Path) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(report).map_err(io::Error::other)?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Reads a JSON report written by loadmux, with a one-line error naming the file and
/// what is wrong with it.
pub fn read_report(path: &Path) -> Result<Report, String> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{name}: not JSON: {e}"))?;
    if value.get("tool").and_then(|t| t.as_str()) != Some("loadmux") {
        return Err(format!("{name}: not a loadmux report (no \"tool\": \"loadmux\")"));
    }
    match value.get("schema").and_then(|s| s.as_u64()) {
        Some(s) if s == u64::from(SCHEMA) => {}
        Some(s) => return Err(format!("{name}: report schema {s}, this loadmux reads schema {SCHEMA}")),
        None => return Err(format!("{name}: no schema number")),
    }
    serde_json::from_value(value).map_err(|e| format!("{name}: malformed report: {e}"))
}
