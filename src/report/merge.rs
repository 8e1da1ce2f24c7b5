//! `loadmux merge`: one report from several independent runs (shards), exactly.
//!
//! Counters add. Latency percentiles are recomputed from the sum of the embedded
//! HdrHistograms, so the merged p99 is the p99 of every request of every shard, not
//! an average of percentiles. Timelines are aligned by wall-clock second.

use std::collections::BTreeMap;

use super::{
    rate, Bytes, Connections, Errors, Latency, Report, Requests, RespReplies, Row, RunConfig, Tls, WebSocket, SCHEMA,
};
use crate::engine::control::RateChangeRecord;
use crate::stats::LatencyHistogram;

/// Merges `reports` (named by `names` in error messages).
pub fn merge(reports: &[Report], names: &[String]) -> Result<Report, String> {
    let Some(first) = reports.first() else { return Err("nothing to merge".into()) };
    let hist = |pick: fn(&Report) -> &Latency| -> Result<Latency, String> {
        let mut sum = LatencyHistogram::new();
        for (r, name) in reports.iter().zip(names) {
            let l = pick(r);
            if l.count == 0 && l.hdr.is_empty() {
                continue;
            }
            sum.merge(&LatencyHistogram::from_base64(&l.hdr).map_err(|e| format!("{name}: {e}"))?);
        }
        Ok(Latency::from_histogram(&sum))
    };
    let start = reports.iter().map(|r| r.started_at_unix_s).fold(f64::INFINITY, f64::min);
    let end = reports.iter().map(|r| r.started_at_unix_s + r.warmup_s + r.duration_s).fold(f64::NEG_INFINITY, f64::max);
    let measure_start = reports.iter().map(|r| r.started_at_unix_s + r.warmup_s).fold(f64::INFINITY, f64::min);
    let secs = (end - measure_start).max(0.0);
    let sum = |f: fn(&Report) -> u64| reports.iter().map(f).sum::<u64>();
    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    for r in reports {
        for (k, n) in &r.errors.by_kind {
            *by_kind.entry(k.clone()).or_default() += n;
        }
    }
    let mut targets: Vec<String> = reports.iter().flat_map(|r| r.config.targets.clone()).collect();
    targets.sort();
    targets.dedup();
    let mut stopped: Vec<String> = reports.iter().map(|r| r.stopped_by.clone()).collect();
    stopped.sort();
    stopped.dedup();
    let (completed, sent_b, recv_b) = (sum(|r| r.requests.completed), sum(|r| r.bytes.sent), sum(|r| r.bytes.received));
    Ok(Report {
        tool: "loadmux".into(),
        schema: SCHEMA,
        duration_s: secs,
        started_at_unix_s: start,
        config: RunConfig {
            targets,
            connections: sum(|r| r.config.connections),
            threads: sum(|r| r.config.threads),
            shard: format!("merged {}", reports.len()),
            ..first.config.clone()
        },
        stopped_by: stopped.join(","),
        connections: Connections {
            attempted: sum(|r| r.connections.attempted),
            established: sum(|r| r.connections.established),
            failed: sum(|r| r.connections.failed),
            max_open: sum(|r| r.connections.max_open),
            per_s: rate(sum(|r| r.connections.established), (end - start).max(0.0)),
        },
        requests: Requests {
            sent: sum(|r| r.requests.sent),
            completed,
            per_s: rate(completed, secs),
            sends_dropped: sum(|r| r.requests.sends_dropped),
        },
        bytes: Bytes {
            sent: sent_b,
            received: recv_b,
            sent_per_s: rate(sent_b, secs),
            received_per_s: rate(recv_b, secs),
        },
        warmup_s: (measure_start - start).max(0.0),
        ramp_s: reports
            .iter()
            .map(|r| r.ramp_s.map(|s| r.started_at_unix_s + s - start))
            .collect::<Option<Vec<_>>>()
            .map(|v| v.into_iter().fold(0.0, f64::max)),
        measure_began_after_ramp: reports.iter().all(|r| r.measure_began_after_ramp),
        latency_us: hist(|r| &r.latency_us)?,
        latency_uncorrected_us: hist(|r| &r.latency_uncorrected_us)?,
        first_byte_us: hist(|r| &r.first_byte_us)?,
        connect_latency_us: hist(|r| &r.connect_latency_us)?,
        tls: merge_tls(reports)?,
        send_lag_us: hist(|r| &r.send_lag_us)?,
        errors: Errors { total: sum(|r| r.errors.total), by_kind },
        http_status: merge_counts(reports.iter().filter_map(|r| r.http_status.as_ref())),
        resp: merge_resp(reports),
        memcache: merge_counts(reports.iter().filter_map(|r| r.memcache.as_ref())),
        timeline: merge_timelines(reports, start),
        websocket: merge_websocket(reports)?,
        // Each shard's warnings, named by its file: a merged report must not hide one.
        warnings: reports
            .iter()
            .zip(names)
            .flat_map(|(r, name)| r.warnings.iter().map(move |w| format!("{name}: {w}")))
            .collect(),
        connects_by_source: merge_counts(reports.iter().filter_map(|r| r.connects_by_source.as_ref())),
        rate_changes: merge_rate_changes(reports, start),
        mix: super::mix::merge_names(reports, names, secs)?,
    })
}

/// Every shard's rate changes, on the merged clock (seconds since the earliest
/// start), in time order. Each keeps its own rates: a shard changes its share.
fn merge_rate_changes(reports: &[Report], start: f64) -> Vec<RateChangeRecord> {
    let mut changes: Vec<RateChangeRecord> = reports
        .iter()
        .flat_map(|r| {
            r.rate_changes
                .iter()
                .map(move |c| RateChangeRecord { t_s: r.started_at_unix_s + c.t_s - start, ..c.clone() })
        })
        .collect();
    changes.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    changes
}

/// TLS sections add like connections: counts sum, handshake histograms add exactly;
/// what was negotiated is taken from the first shard that has it.
fn merge_tls(reports: &[Report]) -> Result<Option<Tls>, String> {
    let sections: Vec<&Tls> = reports.iter().filter_map(|r| r.tls.as_ref()).collect();
    let Some(first) = sections.iter().find(|t| t.version.is_some()).or(sections.first()) else {
        return Ok(None);
    };
    let mut latency = LatencyHistogram::new();
    for tls in &sections {
        latency.merge(&LatencyHistogram::from_base64(&tls.handshake_latency_us.hdr)?);
    }
    Ok(Some(Tls {
        handshake_latency_us: Latency::from_histogram(&latency),
        handshakes_full: sections.iter().map(|t| t.handshakes_full).sum(),
        handshakes_resumed: sections.iter().map(|t| t.handshakes_resumed).sum(),
        ..(*first).clone()
    }))
}

/// WebSocket sections add like TLS ones: upgrade histograms add exactly, counts
/// sum, close codes add code by code.
fn merge_websocket(reports: &[Report]) -> Result<Option<WebSocket>, String> {
    let sections: Vec<&WebSocket> = reports.iter().filter_map(|r| r.websocket.as_ref()).collect();
    if sections.is_empty() {
        return Ok(None);
    }
    let mut latency = LatencyHistogram::new();
    for ws in &sections {
        latency.merge(&LatencyHistogram::from_base64(&ws.upgrade_latency_us.hdr)?);
    }
    Ok(Some(WebSocket {
        upgrade_latency_us: Latency::from_histogram(&latency),
        messages_received: sections.iter().map(|ws| ws.messages_received).sum(),
        close_codes: merge_counts(sections.iter().map(|ws| &ws.close_codes)).unwrap_or_default(),
    }))
}

/// Adds count maps key by key; `None` when no report had one.
fn merge_counts<'a>(maps: impl Iterator<Item = &'a BTreeMap<String, u64>>) -> Option<BTreeMap<String, u64>> {
    let mut out: Option<BTreeMap<String, u64>> = None;
    for counts in maps {
        let acc = out.get_or_insert_with(BTreeMap::new);
        for (k, n) in counts {
            *acc.entry(k.clone()).or_default() += n;
        }
    }
    out
}

fn merge_resp(reports: &[Report]) -> Option<RespReplies> {
    let words = merge_counts(reports.iter().filter_map(|r| r.resp.as_ref()).map(|r| &r.errors_by_word))?;
    Some(RespReplies {
        errors: reports.iter().filter_map(|r| r.resp.as_ref()).map(|r| r.errors).sum(),
        errors_by_word: words,
    })
}

/// Rows land in the wall-clock second (since the earliest start) in which they ended.
/// Counts add; `open` and `connects` add; p50 and p99 of a merged second are the largest of the
/// shards' (an upper bound: per-second histograms are not kept in reports); `max` is
/// exact.
fn merge_timelines(reports: &[Report], start: f64) -> Vec<Row> {
    let mut buckets: BTreeMap<u64, Row> = BTreeMap::new();
    for r in reports {
        for row in &r.timeline {
            let end = r.started_at_unix_s + row.t_s - start;
            let second = end.ceil().max(1.0) as u64;
            let b = buckets.entry(second).or_insert_with(|| Row {
                t_s: second as f64,
                phase: row.phase.clone(),
                ..Row::default()
            });
            b.requests += row.requests;
            b.bytes_sent += row.bytes_sent;
            b.bytes_received += row.bytes_received;
            b.errors += row.errors;
            b.open += row.open;
            b.connects += row.connects;
            b.p50_us = b.p50_us.max(row.p50_us);
            b.p99_us = b.p99_us.max(row.p99_us);
            b.max_us = b.max_us.max(row.max_us);
            // Each shard asked for its share: the targets add up.
            if let Some(target) = row.target_rate {
                *b.target_rate.get_or_insert(0.0) += target;
            }
            if let Some(target) = row.target_open {
                *b.target_open.get_or_insert(0) += target;
            }
            for (k, n) in &row.errors_by_kind {
                *b.errors_by_kind.entry(k.clone()).or_default() += n;
            }
            super::mix::merge_row_names(&mut b.mix, &row.mix);
        }
    }
    buckets.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        serde_json::from_str(include_str!("../../tests/data/report-small.json")).expect("fixture parses")
    }

    #[test]
    fn websocket_sections_add_upgrades_messages_and_close_codes() {
        let section = |upgrades: &[u64], messages, closes: &[(&str, u64)]| {
            let mut h = LatencyHistogram::new();
            upgrades.iter().for_each(|us| h.record(*us));
            Some(WebSocket {
                upgrade_latency_us: Latency::from_histogram(&h),
                messages_received: messages,
                close_codes: closes.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
            })
        };
        let mut a = report();
        a.websocket = section(&[100, 200], 10, &[("1001", 2)]);
        let mut b = report();
        b.websocket = section(&[5000], 5, &[("1001", 1), ("1000", 4)]);
        let merged = merge(&[a, b], &["a".into(), "b".into()]).unwrap().websocket.unwrap();
        assert_eq!(merged.messages_received, 15);
        assert_eq!(merged.close_codes, [("1000".to_string(), 4), ("1001".to_string(), 3)].into());
        assert_eq!((merged.upgrade_latency_us.count, merged.upgrade_latency_us.max / 10), (3, 500));
        let line = crate::report::text::websocket_summary(&merged);
        assert_eq!(line, "messages received 15, closes 1000 x4, 1001 x3");
        let plain = merge(&[report(), report()], &["a".into(), "b".into()]).unwrap();
        assert_eq!(plain.websocket, None, "no WebSocket section appears from nowhere");
    }

    #[test]
    fn reply_counts_add_key_by_key() {
        let mut a = report();
        a.resp = Some(RespReplies {
            errors: 3,
            errors_by_word: [("ERR".to_string(), 1), ("WRONGTYPE".to_string(), 2)].into(),
        });
        a.memcache = Some([("get_hits".to_string(), 10), ("get_misses".to_string(), 4)].into());
        let mut b = report();
        b.resp = Some(RespReplies { errors: 1, errors_by_word: [("ERR".to_string(), 1)].into() });
        b.memcache = Some([("get_hits".to_string(), 5), ("get_misses".to_string(), 0)].into());
        let merged = merge(&[a, b], &["a".into(), "b".into()]).unwrap();
        let resp = merged.resp.unwrap();
        assert_eq!(resp.errors, 4);
        assert_eq!(resp.errors_by_word, [("ERR".to_string(), 2), ("WRONGTYPE".to_string(), 2)].into());
        assert_eq!(merged.memcache.unwrap(), [("get_hits".to_string(), 15), ("get_misses".to_string(), 4)].into());
        let plain = merge(&[report(), report()], &["a".into(), "b".into()]).unwrap();
        assert_eq!((plain.resp, plain.memcache), (None, None), "no reply counts appear from nowhere");
        assert_eq!(plain.connects_by_source, None, "nor per-source counts");
    }

    #[test]
    fn connects_by_source_add_address_by_address() {
        let mut a = report();
        a.connects_by_source = Some([("127.0.0.2".to_string(), 50), ("127.0.0.3".to_string(), 50)].into());
        let mut b = report();
        b.connects_by_source = Some([("127.0.0.3".to_string(), 7), ("127.0.0.4".to_string(), 1)].into());
        let merged = merge(&[a, b], &["a".into(), "b".into()]).unwrap();
        let expected = [("127.0.0.2".to_string(), 50), ("127.0.0.3".to_string(), 57), ("127.0.0.4".to_string(), 1)];
        assert_eq!(merged.connects_by_source, Some(expected.into()));
    }

    #[test]
    fn rate_changes_and_target_rates_survive_a_merge() {
        let change = |t_s: f64, source: &str| RateChangeRecord { t_s, old: 100.0, new: 200.0, source: source.into() };
        let mut a = report();
        a.rate_changes = vec![change(3.0, "stdin")];
        a.timeline.iter_mut().for_each(|row| row.target_rate = Some(100.0));
        let mut b = report();
        b.started_at_unix_s += 1.0;
        b.rate_changes = vec![change(1.0, "key")];
        b.timeline.iter_mut().for_each(|row| row.target_rate = Some(50.0));
        let merged = merge(&[a, b], &["a".into(), "b".into()]).unwrap();
        let times: Vec<(f64, &str)> = merged.rate_changes.iter().map(|c| (c.t_s, c.source.as_str())).collect();
        assert_eq!(times, vec![(2.0, "key"), (3.0, "stdin")], "on the merged clock, in time order");
        assert!(merged.timeline.iter().any(|row| row.target_rate == Some(150.0)), "{:?}", merged.timeline);
    }
}
