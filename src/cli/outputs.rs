//! The report files a command writes: `--json`, `--csv`, `--html`.

use std::path::{Path, PathBuf};

use crate::plan::{err, PlanError};
use crate::report::{self, Report};

/// Where to write each report format; `None` skips it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outputs {
    /// The JSON report (`-` is stdout).
    pub json: Option<PathBuf>,
    /// The per-second timeline as CSV.
    pub csv: Option<PathBuf>,
    /// The self-contained HTML report.
    pub html: Option<PathBuf>,
}

impl Outputs {
    /// True when the JSON report goes to stdout, so the text summary must not.
    pub fn json_to_stdout(&self) -> bool {
        self.json.as_deref().is_some_and(|p| p.as_os_str() == "-")
    }

    /// Fails early, before anything runs, when a file could not be created.
    pub fn check(&self) -> Result<(), PlanError> {
        for (path, flag) in [(&self.json, "--json"), (&self.csv, "--csv"), (&self.html, "--html")] {
            if let Some(path) = path {
                check_output_path(path, flag)?;
            }
        }
        Ok(())
    }

    /// Writes whichever report files were asked for. The error names the flag and path.
    pub fn write(&self, report: &Report) -> Result<(), String> {
        if let Some(path) = &self.json {
            report::write_json(report, path).map_err(|e| format!("cannot write --json {}: {e}", path.display()))?;
        }
        if let Some(path) = &self.csv {
            report::write_csv(report, path).map_err(|e| format!("cannot write --csv {}: {e}", path.display()))?;
        }
        if let Some(path) = &self.html {
            report::write_html(report, path).map_err(|e| format!("cannot write --html {}: {e}", path.display()))?;
        }
        Ok(())
    }
}

/// Fails early when an output file could not be created: its directory must exist.
/// (`-` means stdout and is always fine.)
fn check_output_path(path: &Path, flag: &str) -> Result<(), PlanError> {
    if path.as_os_str() == "-" {
        return Ok(());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return err(format!("{flag} {}: directory {} does not exist", path.display(), dir.display()));
    }
    if path.is_dir() {
        return err(format!("{flag} {}: is a directory", path.display()));
    }
    Ok(())
}
