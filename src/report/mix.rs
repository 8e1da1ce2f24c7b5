//! The request mix's part of the report: per-name figures (`mix` in the JSON, and
//! `mix` in each timeline row), how they merge across shards, and the per-name
//! table of the text summary and the HTML report.
//!
//! Names are kept in the mix's order. The run's totals never depend on these: a
//! per-name figure is a breakdown beside them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::text::latency_cells;
use super::{rate, Errors, Latency, Report};
use crate::mix::Mix;
use crate::stats::{LatencyHistogram, NameRow, NameStats};

/// One mix name's figures over the measured window.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NameReport {
    /// The entry's name.
    pub name: String,
    /// Its weight in the mix.
    pub weight: u64,
    /// Requests of this name written.
    pub sent: u64,
    /// Requests of this name answered in full.
    pub completed: u64,
    /// `completed / duration_s`.
    pub per_s: f64,
    /// Connection errors that ended a request of this name (it was the oldest one
    /// awaited); connect failures belong to no name.
    pub errors: Errors,
    /// Request latency of this name, with its histogram (so shards merge exactly).
    pub latency_us: Latency,
}

/// One mix name's figures in one timeline row.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NameRowReport {
    /// The entry's name.
    pub name: String,
    /// Requests of this name written in the interval.
    pub sent: u64,
    /// Requests of this name completed in the interval.
    pub requests: u64,
    /// Errors attributed to this name in the interval.
    pub errors: u64,
    /// Median latency of this name in the interval, in microseconds.
    pub p50_us: u64,
    /// 99th percentile, likewise.
    pub p99_us: u64,
    /// Largest, likewise.
    pub max_us: u64,
}

/// Each name of `mix` with its measured figures (`stats` indexed as the entries;
/// a name never used has zeros).
pub fn names_report(mix: &Mix, stats: &[NameStats], secs: f64) -> Vec<NameReport> {
    let none = NameStats::default();
    mix.entries()
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let s = stats.get(i).unwrap_or(&none);
            NameReport {
                name: entry.name.clone(),
                weight: entry.weight,
                sent: s.sent,
                completed: s.completed,
                per_s: rate(s.completed, secs),
                errors: Errors {
                    total: s.errors.total(),
                    by_kind: s.errors.iter().map(|(k, n)| (k.name().to_string(), n)).collect(),
                },
                latency_us: Latency::from_histogram(&s.latency),
            }
        })
        .collect()
}

/// A timeline row's per-name figures, named.
pub fn names_row(mix: &Mix, rows: &[NameRow]) -> Vec<NameRowReport> {
    mix.entries()
        .iter()
        .zip(rows.iter().copied().chain(std::iter::repeat(NameRow::default())))
        .map(|(entry, r)| NameRowReport {
            name: entry.name.clone(),
            sent: r.sent,
            requests: r.completed,
            errors: r.errors,
            p50_us: r.p50_us,
            p99_us: r.p99_us,
            max_us: r.max_us,
        })
        .collect()
}

/// Merges the shards' per-name figures by name: counts add, histograms add exactly,
/// and a name only some shards have is kept. Names keep the order they first
/// appear in. `secs` is the merged measured window.
pub fn merge_names(reports: &[Report], names: &[String], secs: f64) -> Result<Vec<NameReport>, String> {
    let mut merged: Vec<(NameReport, LatencyHistogram)> = Vec::new();
    for (report, file) in reports.iter().zip(names) {
        for n in &report.mix {
            let hist = if n.latency_us.count == 0 && n.latency_us.hdr.is_empty() {
                LatencyHistogram::new()
            } else {
                LatencyHistogram::from_base64(&n.latency_us.hdr)
                    .map_err(|e| format!("{file}: mix '{}': {e}", n.name))?
            };
            match merged.iter_mut().find(|(m, _)| m.name == n.name) {
                Some((m, h)) => {
                    m.sent += n.sent;
                    m.completed += n.completed;
                    m.errors.total += n.errors.total;
                    for (k, v) in &n.errors.by_kind {
                        *m.errors.by_kind.entry(k.clone()).or_default() += v;
                    }
                    h.merge(&hist);
                }
                None => merged.push((n.clone(), hist)),
            }
        }
    }
    Ok(merged
        .into_iter()
        .map(|(mut n, h)| {
            n.per_s = rate(n.completed, secs);
            n.latency_us = Latency::from_histogram(&h);
            n
        })
        .collect())
}

/// Adds `row`'s per-name figures into a merged second's (`into`): counts add; p50
/// and p99 take the larger (as the totals' do in a merged timeline), max is exact.
pub fn merge_row_names(into: &mut Vec<NameRowReport>, row: &[NameRowReport]) {
    for r in row {
        match into.iter_mut().find(|m| m.name == r.name) {
            Some(m) => {
                m.sent += r.sent;
                m.requests += r.requests;
                m.errors += r.errors;
                m.p50_us = m.p50_us.max(r.p50_us);
                m.p99_us = m.p99_us.max(r.p99_us);
                m.max_us = m.max_us.max(r.max_us);
            }
            None => into.push(r.clone()),
        }
    }
}

/// The per-name rows of the summary tables: `(name, cells)` where the cells are
/// weight, share of the completed requests, completed, errors, then the latency
/// cells (min, mean, p50, p90, p99, p99.9, max). Shared by the text and HTML reports.
pub fn table_rows(report: &Report) -> Vec<(String, Vec<String>)> {
    let completed: u64 = report.mix.iter().map(|n| n.completed).sum();
    report
        .mix
        .iter()
        .map(|n| {
            let share = if completed > 0 { 100.0 * n.completed as f64 / completed as f64 } else { 0.0 };
            let mut cells = vec![
                n.weight.to_string(),
                format!("{share:.1}%"),
                n.completed.to_string(),
                errors_cell(&n.errors.by_kind, n.errors.total),
            ];
            if n.latency_us.count > 0 {
                cells.extend(latency_cells(&n.latency_us));
            } else {
                cells.extend(std::iter::repeat_n("-".to_string(), 7));
            }
            (n.name.clone(), cells)
        })
        .collect()
}

/// Headers of [`table_rows`]' cells.
pub const TABLE_HEADERS: [&str; 11] =
    ["weight", "share", "completed", "errors", "min", "mean", "p50", "p90", "p99", "p99.9", "max"];

/// `3 (eof 2, reset 1)`, or `0`.
fn errors_cell(by_kind: &BTreeMap<String, u64>, total: u64) -> String {
    let kinds: Vec<String> = by_kind.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k} {n}")).collect();
    if kinds.is_empty() {
        total.to_string()
    } else {
        format!("{total} ({})", kinds.join(", "))
    }
}

/// The text summary's per-name table (empty without a mix).
pub fn render_table(report: &Report) -> String {
    let rows = table_rows(report);
    if rows.is_empty() {
        return String::new();
    }
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0).max("mix".len()) + 2;
    let mut out = String::new();
    // The seed makes a random mix repeatable: `--seed N` picks the same names again.
    match (&report.config.mix_order, report.config.mix_seed) {
        (Some(order), Some(seed)) => {
            let _ = writeln!(out, "  mix order     {order} (--seed {seed})");
        }
        (Some(order), None) => {
            let _ = writeln!(out, "  mix order     {order}");
        }
        _ => {}
    }
    let _ = write!(out, "  {:<width$}", "mix");
    for h in TABLE_HEADERS {
        let _ = write!(out, "{h:>10}");
    }
    out.push('\n');
    for (name, cells) in rows {
        let _ = write!(out, "  {name:<width$}");
        for c in cells {
            let _ = write!(out, "{c:>10}");
        }
        out.push('\n');
    }
    out
}
