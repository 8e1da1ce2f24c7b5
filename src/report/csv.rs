//! The timeline as CSV (`--csv PATH`).

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use super::{file::write_atomic, Report};
use crate::stats::ErrorKind;

/// The CSV text: a header row, then one row per timeline row. Columns: `t_s, phase,
/// requests, bytes_sent, bytes_received, errors, open, connects, p50_us, p99_us, max_us`, then
/// one `err_<kind>` column per error kind of the taxonomy, zeros included. With a
/// request mix, then `<name>_requests`, `<name>_errors` and `<name>_p99_us` for each
/// name, in the mix's order. Last, `target_rate` (empty unless the rate followed a
/// schedule: `--stages`, live control) and `target_open` (empty without
/// `--conn-stages`).
pub fn render_csv(report: &Report) -> String {
    let mut out =
        String::from("t_s,phase,requests,bytes_sent,bytes_received,errors,open,connects,p50_us,p99_us,max_us");
    for kind in ErrorKind::ALL {
        let _ = write!(out, ",err_{}", kind.name());
    }
    for name in &report.mix {
        let n = &name.name;
        let _ = write!(out, ",{n}_requests,{n}_errors,{n}_p99_us");
    }
    out.push_str(",target_rate,target_open\n");
    for r in &report.timeline {
        let _ = write!(
            out,
            "{:.3},{},{},{},{},{},{},{},{},{},{}",
            r.t_s,
            r.phase,
            r.requests,
            r.bytes_sent,
            r.bytes_received,
            r.errors,
            r.open,
            r.connects,
            r.p50_us,
            r.p99_us,
            r.max_us
        );
        for kind in ErrorKind::ALL {
            let _ = write!(out, ",{}", r.errors_by_kind.get(kind.name()).copied().unwrap_or(0));
        }
        for name in &report.mix {
            // A row misses a name only when a merged shard lacked it: zeros then.
            let cell = r.mix.iter().find(|m| m.name == name.name).cloned().unwrap_or_default();
            let _ = write!(out, ",{},{},{}", cell.requests, cell.errors, cell.p99_us);
        }
        match r.target_rate {
            Some(target) => {
                let _ = write!(out, ",{target:.1}");
            }
            None => out.push(','),
        }
        match r.target_open {
            Some(target) => {
                let _ = writeln!(out, ",{target}");
            }
            None => out.push_str(",\n"),
        }
    }
    out
}

/// Writes the CSV atomically (or to stdout for `-`).
pub fn write_csv(report: &Report, path: &Path) -> io::Result<()> {
    write_atomic(path, render_csv(report).as_bytes())
}
