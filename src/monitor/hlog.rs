//! `--hlog PATH`: the request-latency histogram of each second, in the standard
//! HdrHistogram interval log format, for HdrHistogram's own tools
//! (`HistogramLogProcessor`, HdrHistogramVisualizer, `hdrh` in Python).
//!
//! The file holds the version header, `#[StartTime: ...]` and `#[BaseTime: ...]`
//! (both the run's start, so timestamps are seconds from it), the legend line, then
//! one line per interval: `[Tag=NAME,]start,length,max,base64(V2+Deflate)`.
//! Values are microseconds, the unit every loadmux histogram records in, and so is
//! the `Interval_Max` column (max value divisor 1: one unit throughout the file;
//! the column is only for people, readers decode the histogram). HdrHistogram's
//! Java `HistogramLogProcessor` reads it with `-outputValueUnitRatio 1000` to print
//! milliseconds.
//!
//! Only measured intervals are written (the warm-up is left out, as in the
//! report), so the untagged intervals add up exactly to the report's histogram.
//! With a request mix, each second also has one interval per mix name used in it,
//! tagged `Tag=NAME`; they add up to the report's histogram of that name.
//! Each line is flushed as it is written, so the file is complete up to the last
//! second even if the process is killed; after Ctrl-C the last, shorter interval
//! is written too.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;

use crate::stats::{merge_names, LatencyHistogram, NameStats, Snapshot, TimelineRow};

/// The interval log format version written in the header (HdrHistogram's current).
const FORMAT_VERSION: &str = "1.3";

/// Where one interval lies: the end of a timeline row, in seconds from the run's
/// start, and its length.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    /// Seconds from the run's start to the end of the interval.
    pub end_s: f64,
    /// Its length in seconds.
    pub length_s: f64,
}

impl From<&TimelineRow> for Span {
    fn from(row: &TimelineRow) -> Span {
        Span { end_s: row.t_s, length_s: row.span_s }
    }
}

/// One second's latencies: the total, and each mix name's.
#[derive(Default)]
struct Second {
    total: LatencyHistogram,
    per_name: Vec<NameStats>,
}

/// Writes one interval log.
pub struct HlogWriter {
    file: BufWriter<File>,
    path: PathBuf,
    serializer: V2DeflateSerializer,
    /// Measured intervals not yet written, by interval index (= timeline row).
    pending: BTreeMap<u64, Second>,
    /// Request mix: each name's tag, in mix order (empty without a mix).
    tags: Vec<String>,
    /// Timeline rows completed so far: the index of the next row.
    next_row: u64,
    /// Set after the first write error: one warning, then nothing more is written.
    failed: bool,
}

impl HlogWriter {
    /// Creates (truncates) the file at `path`; `names` are the request mix's names
    /// (empty without a mix). Fails with a one-line reason.
    pub fn create(path: &Path, names: &[String]) -> Result<HlogWriter, String> {
        let file = File::create(path).map_err(|e| format!("--hlog {}: cannot create it: {e}", path.display()))?;
        Ok(HlogWriter {
            file: BufWriter::new(file),
            path: path.to_path_buf(),
            serializer: V2DeflateSerializer::new(),
            pending: BTreeMap::new(),
            // A tag may not hold ',', ' ', CR or LF; mix names never do, but a
            // name from a library user might.
            tags: names.iter().map(|n| n.replace([',', ' ', '\r', '\n'], "_")).collect(),
            next_row: 0,
            failed: false,
        })
    }

    /// Writes the header: version, what the values are, start and base time, legend.
    pub fn begin(&mut self, started_at: SystemTime) {
        let result = (|| -> io::Result<()> {
            IntervalLogWriterBuilder::new()
                .add_comment(&format!("[Histogram log format version {FORMAT_VERSION}]"))
                .add_comment("[loadmux request latency from the intended send, in microseconds]")
                .with_start_time(started_at)
                .with_base_time(started_at)
                .begin_log_with(&mut self.file, &mut self.serializer)?;
            // The hdrhistogram crate leaves the legend out; HdrHistogram's readers
            // skip it, and its writers put it here.
            writeln!(
                self.file,
                "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
            )?;
            self.file.flush()
        })();
        self.check(result);
    }

    /// Keeps a measured snapshot's latencies for its interval.
    pub fn snapshot(&mut self, snapshot: &Snapshot) {
        if snapshot.interval.measured {
            let interval = self.pending.entry(snapshot.interval.index).or_default();
            interval.total.merge(&snapshot.latency);
            merge_names(&mut interval.per_name, &snapshot.per_name);
        }
    }

    /// Writes the intervals of the timeline rows that just completed (their spans,
    /// oldest first).
    pub fn rows_completed(&mut self, rows: impl IntoIterator<Item = Span>) {
        for span in rows {
            self.write_row(self.next_row, span);
            self.next_row += 1;
        }
    }

    /// At the end of the run: writes the intervals the run closed without
    /// completing them as rows (the last one, after a stop), and flushes.
    /// `timeline` is the run's whole timeline (its rows' spans).
    pub fn finish(&mut self, timeline: impl IntoIterator<Item = Span>) {
        let mut rows = 0;
        for (index, span) in timeline.into_iter().enumerate() {
            if index as u64 >= self.next_row {
                self.write_row(index as u64, span);
            }
            rows = index as u64 + 1;
        }
        self.next_row = self.next_row.max(rows);
        let result = self.file.flush();
        self.check(result);
    }

    /// Writes row `index`'s interval, if it was measured: the total untagged, then
    /// each mix name used in it under its tag.
    fn write_row(&mut self, index: u64, span: Span) {
        let Some(interval) = self.pending.remove(&index) else { return };
        if self.failed {
            return;
        }
        let start = Duration::from_secs_f64((span.end_s - span.length_s).max(0.0));
        let length = Duration::from_secs_f64(span.length_s.max(0.0));
        let result = (|| -> io::Result<()> {
            // A writer without header lines (and with the default divisor, 1) writes
            // nothing when made, so one per interval costs nothing and keeps no
            // borrow of the file between intervals.
            let mut log = IntervalLogWriterBuilder::new().begin_log_with(&mut self.file, &mut self.serializer)?;
            log.write_histogram(interval.total.hdr(), start, length, None).map_err(io::Error::other)?;
            for (tag, stats) in self.tags.iter().zip(&interval.per_name) {
                // Sanitised in `create`, so Tag::new accepts it; were it refused,
                // an untagged line would count twice in the total.
                let Some(tag) = Tag::new(tag) else { continue };
                log.write_histogram(stats.latency.hdr(), start, length, Some(tag)).map_err(io::Error::other)?;
            }
            self.file.flush()
        })();
        self.check(result);
    }

    /// Warns once about a write error; the run goes on without the log.
    fn check(&mut self, result: io::Result<()>) {
        if let Err(e) = result {
            if !self.failed {
                eprintln!("loadmux: --hlog {}: cannot write: {e} (the run goes on without it)", self.path.display());
            }
            self.failed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Counters, Interval, WorkerStats};
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;

    /// A snapshot cut the way a worker cuts one (so new Snapshot fields need no
    /// change here), holding `values` as its request latencies.
    fn snapshot(index: u64, measured: bool, values: &[u64]) -> Snapshot {
        let mut stats = WorkerStats::default();
        values.iter().for_each(|&v| stats.latency.record(v));
        stats.cut(0, Interval { index, measured, last: false }, index as f64 + 1.0, &Counters::default())
    }

    fn row(end_s: f64, length_s: f64) -> Span {
        Span { end_s, length_s }
    }

    #[test]
    fn measured_intervals_are_written_with_their_times_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.hlog");
        let mut log = HlogWriter::create(&path, &[]).unwrap();
        log.begin(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        log.snapshot(&snapshot(0, false, &[5, 6])); // warm-up: left out
        log.snapshot(&snapshot(1, true, &[100, 200]));
        log.snapshot(&snapshot(1, true, &[300]));
        log.rows_completed([row(1.0, 1.0), row(2.0, 1.0)]);
        log.snapshot(&snapshot(2, true, &[4_000]));
        // The run stops before row 2 completes: finish writes it from the timeline.
        log.finish([row(1.0, 1.0), row(2.0, 1.0), row(2.5, 0.5)]);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "#[Histogram log format version 1.3]");
        assert!(text.contains("#[StartTime: 1700000000.000 (seconds since epoch)]\n"), "{text}");
        assert!(text.contains("#[BaseTime: 1700000000.000 (seconds since epoch)]\n"), "{text}");
        assert!(text
            .contains("\n\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n"));
        let intervals: Vec<_> = IntervalLogIterator::new(text.as_bytes())
            .filter_map(|entry| match entry.unwrap() {
                LogEntry::Interval(h) => Some(h),
                _ => None,
            })
            .collect();
        assert_eq!(intervals.len(), 2, "{text}");
        assert_eq!(
            (intervals[0].start_timestamp(), intervals[0].duration()),
            (Duration::from_secs(1), Duration::from_secs(1))
        );
        assert_eq!(intervals[1].start_timestamp(), Duration::from_secs(2));
        assert_eq!(intervals[1].duration(), Duration::from_millis(500));
        assert!((intervals[0].max() - 300.0).abs() < 1.0, "max in µs: {}", intervals[0].max());
        assert_eq!(text.matches("#[").count(), 4, "the header only, once: {text}");
        let counts: Vec<u64> = intervals
            .iter()
            .map(|h| {
                let bytes =
                    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, h.encoded_histogram()).unwrap();
                let decoded: hdrhistogram::Histogram<u64> =
                    Deserializer::new().deserialize(&mut bytes.as_slice()).unwrap();
                decoded.len()
            })
            .collect();
        assert_eq!(counts, [3, 1]);
    }

    #[test]
    fn each_mix_name_gets_its_tagged_interval_beside_the_total() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mix.hlog");
        let mut log = HlogWriter::create(&path, &["get".to_string(), "put".to_string()]).unwrap();
        log.begin(SystemTime::now());
        let mut s = snapshot(0, true, &[100, 200, 300]);
        let name = |values: &[u64]| {
            let mut stats = NameStats::default();
            values.iter().for_each(|&v| stats.latency.record(v));
            stats
        };
        s.per_name = vec![name(&[100, 200]), name(&[300])];
        log.snapshot(&s);
        log.rows_completed([row(1.0, 1.0)]);
        log.finish([row(1.0, 1.0)]);
        let text = std::fs::read_to_string(&path).unwrap();
        let found: Vec<(Option<String>, f64)> = IntervalLogIterator::new(text.as_bytes())
            .filter_map(|entry| match entry.unwrap() {
                LogEntry::Interval(h) => Some((h.tag().map(|t| t.as_str().to_string()), h.max())),
                _ => None,
            })
            .collect();
        assert_eq!(found.len(), 3, "{text}");
        assert_eq!(found[0].0, None);
        assert_eq!(found[1].0.as_deref(), Some("get"));
        assert_eq!(found[2].0.as_deref(), Some("put"));
        assert!((found[1].1 - 200.0).abs() < 1.0 && (found[2].1 - 300.0).abs() < 1.0, "{found:?}");
    }

    #[test]
    fn an_unwritable_path_is_one_line() {
        let err = HlogWriter::create(Path::new("/nonexistent-dir/x.hlog"), &[]).err().unwrap();
        assert!(err.starts_with("--hlog /nonexistent-dir/x.hlog: cannot create it: "), "{err}");
        assert!(!err.contains('\n'));
    }
}
