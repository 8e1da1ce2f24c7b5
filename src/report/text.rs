//! The human summary printed at the end of a run.

use std::fmt::Write as _;

use super::{Latency, Report};

/// Renders the end-of-run summary. `header` names what was loaded.
pub fn render_text(report: &Report, header: &str) -> String {
    let mut out = String::new();
    let r = report;
    let _ = writeln!(out, "{header}");
    let _ = write!(out, "  duration      {:.2}s measured (stopped by {})", r.duration_s, r.stopped_by);
    if r.warmup_s > 0.0 {
        let ramp = match r.ramp_s {
            Some(s) if r.measure_began_after_ramp => format!("all connections open at {s:.2}s"),
            Some(s) => format!("measuring began before all connections were open ({s:.2}s)"),
            None => "not every connection opened".to_string(),
        };
        let _ = write!(out, " after {:.2}s warm-up; {ramp}", r.warmup_s);
    }
    let _ = writeln!(out);
    let c = &r.connections;
    let _ = writeln!(
        out,
        "  connections   attempted {}, established {} ({:.1}/s), failed {}, max open {}",
        c.attempted, c.established, c.per_s, c.failed, c.max_open
    );
    if let Some(by_source) = &r.connects_by_source {
        let _ = writeln!(out, "  sources       {}", sources_line(by_source));
    }
    let _ = writeln!(
        out,
        "  requests      sent {}, completed {} ({:.1}/s)",
        r.requests.sent, r.requests.completed, r.requests.per_s
    );
    let b = &r.bytes;
    let _ = writeln!(
        out,
        "  bytes         out {} ({}/s), in {} ({}/s)",
        bytes(b.sent as f64),
        bytes(b.sent_per_s),
        bytes(b.received as f64),
        bytes(b.received_per_s)
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "  {:<10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>12}",
        "latency", "min", "mean", "p50", "p90", "p99", "p99.9", "max", "count"
    );
    latency_row(&mut out, "request", &r.latency_us);
    if r.config.rate.is_some() {
        latency_row(&mut out, "uncorr.", &r.latency_uncorrected_us);
    }
    latency_row(&mut out, "1st byte", &r.first_byte_us);
    latency_row(&mut out, "connect", &r.connect_latency_us);
    if let Some(tls) = &r.tls {
        latency_row(&mut out, "tls hshake", &tls.handshake_latency_us);
    }
    if let Some(ws) = &r.websocket {
        latency_row(&mut out, "ws upgrade", &ws.upgrade_latency_us);
    }
    if r.config.rate.is_some() {
        latency_row(&mut out, "send lag", &r.send_lag_us);
    }
    let _ = writeln!(out);
    let mix = super::mix::render_table(r);
    if !mix.is_empty() {
        let _ = writeln!(out, "{mix}");
    }
    if let Some(tls) = &r.tls {
        let _ = writeln!(out, "  tls           {}", tls_summary(tls));
    }
    if let Some(ws) = &r.websocket {
        let _ = writeln!(out, "  websocket     {}", websocket_summary(ws));
    }
    let _ = write!(out, "  errors        {}", r.errors.total);
    let nonzero: Vec<String> =
        r.errors.by_kind.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{k} {n}")).collect();
    if !nonzero.is_empty() {
        let _ = write!(out, " ({})", nonzero.join(", "));
    }
    let _ = writeln!(out);
    for (label, counts) in r.reply_lines() {
        let _ = writeln!(out, "  {label:<14}{counts}");
    }
    if !r.rate_changes.is_empty() {
        let changes: Vec<String> = r
            .rate_changes
            .iter()
            .map(|c| format!("{:.1}s {:.0}->{:.0}/s ({})", c.t_s, c.old, c.new, c.source))
            .collect();
        let _ = writeln!(out, "  rate changes  {}", changes.join(", "));
    }
    for warning in &r.warnings {
        let _ = writeln!(out, "  warning       {warning}");
    }
    out
}

/// `messages received 1200, closes 1001 x3` (or `no close from the server`).
pub fn websocket_summary(ws: &super::WebSocket) -> String {
    let closes: Vec<String> = ws.close_codes.iter().map(|(code, n)| format!("{code} x{n}")).collect();
    let closes = if closes.is_empty() {
        "no close from the server".to_string()
    } else {
        format!("closes {}", closes.join(", "))
    };
    format!("messages received {}, {closes}", ws.messages_received)
}

/// `TLSv1.3 TLS13_AES_256_GCM_SHA384, alpn http/1.1, handshakes 200 full, 0 resumed`.
pub fn tls_summary(tls: &super::Tls) -> String {
    let mut text = match (&tls.version, &tls.cipher_suite) {
        (Some(version), Some(cipher)) => format!("{version} {cipher}"),
        _ => "no handshake completed".to_string(),
    };
    if let Some(alpn) = &tls.alpn {
        let _ = write!(text, ", alpn {alpn}");
    }
    let _ = write!(text, ", handshakes {} full, {} resumed", tls.handshakes_full, tls.handshakes_resumed);
    text
}

fn latency_row(out: &mut String, name: &str, l: &Latency) {
    if l.count == 0 {
        let _ = writeln!(out, "  {name:<10}{:>10}", "-");
        return;
    }
    let _ = write!(out, "  {name:<10}");
    for cell in latency_cells(l) {
        let _ = write!(out, "{cell:>10}");
    }
    let _ = writeln!(out, "{:>12}", l.count);
}

/// min, mean, p50, p90, p99, p99.9 and max, formatted: one row of a latency table
/// (the text summary and the HTML report share it).
pub fn latency_cells(l: &Latency) -> [String; 7] {
    [l.min, l.mean.round() as u64, l.p50, l.p90, l.p99, l.p99_9, l.max].map(micros)
}

/// Formats microseconds with a unit that keeps 3 significant digits.
pub fn micros(us: u64) -> String {
    match us {
        0..=999 => format!("{us}µs"),
        1_000..=999_999 => format!("{:.2}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

/// Formats a byte count in decimal units (as MB/s on the live line).
fn bytes(n: f64) -> String {
    if n < 1e3 {
        format!("{n:.0} B")
    } else if n < 1e6 {
        format!("{:.1} kB", n / 1e3)
    } else if n < 1e9 {
        format!("{:.2} MB", n / 1e6)
    } else {
        format!("{:.2} GB", n / 1e9)
    }
}

/// Sources shown one by one in the text summary; more are summed up as a range.
const SOURCES_LISTED: usize = 8;

/// Connects per source address, in address order: each one for a few addresses,
/// else how many addresses and the least and most connects of any (a /16 has 65 536).
fn sources_line(by_source: &std::collections::BTreeMap<String, u64>) -> String {
    let mut counts: Vec<(std::net::IpAddr, u64)> =
        by_source.iter().filter_map(|(ip, n)| Some((ip.parse().ok()?, *n))).collect();
    counts.sort_unstable();
    if counts.len() <= SOURCES_LISTED {
        let each: Vec<String> = counts.iter().map(|(ip, n)| format!("{ip} {n}")).collect();
        return format!("connects from {}", each.join(", "));
    }
    let least = counts.iter().map(|(_, n)| *n).min().unwrap_or(0);
    let most = counts.iter().map(|(_, n)| *n).max().unwrap_or(0);
    format!(
        "connects from {} addresses ({} to {}), {least} to {most} each",
        counts.len(),
        counts[0].0,
        counts[counts.len() - 1].0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_pick_a_readable_unit() {
        assert_eq!(micros(850), "850µs");
        assert_eq!(micros(1_500), "1.50ms");
        assert_eq!(micros(2_500_000), "2.50s");
    }

    #[test]
    fn bytes_use_decimal_units() {
        assert_eq!(bytes(999.0), "999 B");
        assert_eq!(bytes(1_500.0), "1.5 kB");
        assert_eq!(bytes(2_000_000.0), "2.00 MB");
    }

    #[test]
    fn sources_are_listed_in_address_order_or_summed_up_when_many() {
        let few: std::collections::BTreeMap<String, u64> =
            [("127.0.0.10".to_string(), 3), ("127.0.0.9".to_string(), 4)].into();
        assert_eq!(sources_line(&few), "connects from 127.0.0.9 4, 127.0.0.10 3");
        let many = (1..=20).map(|i| (format!("10.1.0.{i}"), 100 + i)).collect();
        assert_eq!(sources_line(&many), "connects from 20 addresses (10.1.0.1 to 10.1.0.20), 101 to 120 each");
    }
}
