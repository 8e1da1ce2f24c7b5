//! The HTML report (`--html PATH`, `loadmux report RUN.json --html PATH`): one
//! self-contained file. Charts are inline SVG written here: no JavaScript, no fonts,
//! no URL of any kind, so it opens anywhere, offline.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use super::{file::write_atomic, text::latency_cells, Latency, Report};
use crate::stats::LatencyHistogram;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 40.0;
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// One line of a chart.
struct Series<'a> {
    name: &'a str,
    points: Vec<(f64, f64)>,
}

/// Renders the report as an HTML page.
pub fn render_html(report: &Report) -> String {
    let r = report;
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>loadmux report</title>\n\
         <style>body{{font-family:sans-serif;margin:24px;color:#222;max-width:960px}}\
         table{{border-collapse:collapse;margin:8px 0 20px}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}\
         th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}h2{{margin-top:28px}}\
         svg{{background:#fff;border:1px solid #ddd}}</style></head><body>\n"
    );
    let _ = writeln!(page, "<h1>loadmux report</h1>");
    let _ = writeln!(
        page,
        "<p>{} connection(s) to {}, {:.2} s measured (stopped by {}).</p>",
        r.config.connections,
        escape(&r.config.targets.join(", ")),
        r.duration_s,
        escape(&r.stopped_by)
    );
    summary_tables(&mut page, r);

    let secs: Vec<f64> = r.timeline.iter().map(|row| row.t_s).collect();
    let per_second = |f: fn(&super::Row) -> u64| -> Vec<(f64, f64)> {
        let mut prev = 0.0;
        r.timeline
            .iter()
            .map(|row| {
                let span = (row.t_s - prev).max(1e-9);
                prev = row.t_s;
                (row.t_s, f(row) as f64 / span)
            })
            .collect()
    };
    let _ = writeln!(page, "<h2>Throughput</h2>");
    page.push_str(&line_chart(
        "requests per second",
        "time (s)",
        "req/s",
        &throughput_series(r, per_second(|row| row.requests)),
        false,
    ));
    rate_changes_table(&mut page, r);
    page.push_str(&line_chart(
        "bandwidth",
        "time (s)",
        "MB/s",
        &[
            Series {
                name: "in",
                points: per_second(|row| row.bytes_received).into_iter().map(|(t, v)| (t, v / 1e6)).collect(),
            },
            Series {
                name: "out",
                points: per_second(|row| row.bytes_sent).into_iter().map(|(t, v)| (t, v / 1e6)).collect(),
            },
        ],
        false,
    ));
    let _ = writeln!(page, "<h2>Latency over time</h2>");
    let ms = |f: fn(&super::Row) -> u64| -> Vec<(f64, f64)> {
        r.timeline.iter().map(|row| (row.t_s, f(row) as f64 / 1e3)).collect()
    };
    page.push_str(&line_chart(
        "latency of each second",
        "time (s)",
        "ms",
        &[
            Series { name: "p50", points: ms(|row| row.p50_us) },
            Series { name: "p99", points: ms(|row| row.p99_us) },
            Series { name: "max", points: ms(|row| row.max_us) },
        ],
        false,
    ));
    let _ = writeln!(page, "<h2>Latency distribution</h2>");
    page.push_str(&percentile_chart(&r.latency_us, &r.latency_uncorrected_us, r.config.rate.is_some()));
    let _ = writeln!(page, "<h2>Open connections</h2>");
    page.push_str(&line_chart("connections established", "time (s)", "open", &open_series(r), false));
    // The connect rate: flat for a held pool after the ramp, the figure of merit in
    // --mode connect (where a collapse shows when the port range fills up).
    page.push_str(&line_chart(
        "connections established per second",
        "time (s)",
        "connects/s",
        &[Series { name: "connects/s", points: per_second(|row| row.connects) }],
        false,
    ));
    let _ = writeln!(page, "<h2>Errors</h2>");
    page.push_str(&error_bars(r));
    if !secs.is_empty() {
        page.push_str(&line_chart(
            "errors per interval",
            "time (s)",
            "errors",
            &[Series { name: "errors", points: r.timeline.iter().map(|row| (row.t_s, row.errors as f64)).collect() }],
            false,
        ));
    }
    page.push_str("</body></html>\n");
    page
}

/// The throughput chart's lines: achieved requests per second, and the target rate
/// beside it when the rate followed a schedule (`--stages`, live control).
fn throughput_series(r: &Report, achieved: Vec<(f64, f64)>) -> Vec<Series<'static>> {
    let mut series = vec![Series { name: "req/s", points: achieved }];
    let target: Vec<(f64, f64)> = r.timeline.iter().filter_map(|row| Some((row.t_s, row.target_rate?))).collect();
    if !target.is_empty() {
        series.push(Series { name: "target", points: target });
    }
    series
}

/// The open-connections chart's lines: achieved, and the target under `--conn-stages`.
fn open_series(r: &Report) -> Vec<Series<'static>> {
    let mut series =
        vec![Series { name: "open", points: r.timeline.iter().map(|row| (row.t_s, row.open as f64)).collect() }];
    let target: Vec<(f64, f64)> =
        r.timeline.iter().filter_map(|row| Some((row.t_s, row.target_open? as f64))).collect();
    if !target.is_empty() {
        series.push(Series { name: "target", points: target });
    }
    series
}

/// Live control's rate changes as a table, if there were any.
fn rate_changes_table(page: &mut String, r: &Report) {
    if r.rate_changes.is_empty() {
        return;
    }
    page.push_str("<table><tr><th>time (s)</th><th>old rate</th><th>new rate</th><th>source</th></tr>\n");
    for c in &r.rate_changes {
        let _ = writeln!(
            page,
            "<tr><td>{:.1}</td><td>{:.0}</td><td>{:.0}</td><td>{}</td></tr>",
            c.t_s,
            c.old,
            c.new,
            escape(&c.source)
        );
    }
    page.push_str("</table>\n");
}

/// Writes the HTML report atomically.
pub fn write_html(report: &Report, path: &Path) -> io::Result<()> {
    write_atomic(path, render_html(report).as_bytes())
}

fn summary_tables(page: &mut String, r: &Report) {
    let c = &r.config;
    let _ = writeln!(page, "<h2>Configuration</h2><table>");
    let rate = c.rate.map_or("closed loop".to_string(), |v| format!("{v:.1} req/s"));
    for (k, v) in [
        ("targets", c.targets.join(", ")),
        ("mode", c.mode.clone()),
        ("framing", c.framing.clone()),
        ("connections", c.connections.to_string()),
        ("threads", c.threads.to_string()),
        ("pipeline", c.pipeline.to_string()),
        ("rate", rate),
        ("duration", format!("{:.1} s (warm-up {:.1} s)", c.duration_s, c.warmup_s)),
        ("message", format!("{} bytes", c.message_bytes)),
        ("shard", c.shard.clone()),
    ] {
        let _ = writeln!(page, "<tr><td>{}</td><td>{}</td></tr>", k, escape(&v));
    }
    let _ = writeln!(page, "</table><h2>Summary</h2><table>");
    let n = &r.connections;
    for (k, v) in [
        ("requests completed", format!("{} ({:.1}/s)", r.requests.completed, r.requests.per_s)),
        ("requests sent", r.requests.sent.to_string()),
        ("sends dropped (pipeline full)", r.requests.sends_dropped.to_string()),
        (
            "connections",
            format!(
                "{} attempted, {} established, {} failed, {} max open",
                n.attempted, n.established, n.failed, n.max_open
            ),
        ),
        ("bytes", format!("{} out, {} in", r.bytes.sent, r.bytes.received)),
        ("errors", r.errors.total.to_string()),
    ]
    .into_iter()
    .chain(r.reply_lines())
    {
        let _ = writeln!(page, "<tr><td>{}</td><td>{}</td></tr>", k, escape(&v));
    }
    let _ = writeln!(page, "</table><table><tr><th>latency</th><th>min</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>count</th></tr>");
    for (name, l) in [
        ("request", &r.latency_us),
        ("uncorrected", &r.latency_uncorrected_us),
        ("first byte", &r.first_byte_us),
        ("connect", &r.connect_latency_us),
        ("send lag", &r.send_lag_us),
    ]
    .into_iter()
    .chain(r.tls.as_ref().map(|tls| ("TLS handshake", &tls.handshake_latency_us)))
    .chain(r.websocket.as_ref().map(|ws| ("WebSocket upgrade", &ws.upgrade_latency_us)))
    {
        let cells: String = latency_cells(l).iter().map(|c| format!("<td>{c}</td>")).collect();
        let _ = writeln!(page, "<tr><td>{name}</td>{cells}<td>{}</td></tr>", l.count);
    }
    let _ = writeln!(page, "</table>");
    let mix = super::mix::table_rows(r);
    if !mix.is_empty() {
        let headers: String = super::mix::TABLE_HEADERS.iter().map(|h| format!("<th>{h}</th>")).collect();
        let _ = writeln!(page, "<h2>Request mix</h2><table><tr><th>name</th>{headers}</tr>");
        for (name, cells) in mix {
            let cells: String = cells.iter().map(|c| format!("<td>{}</td>", escape(c))).collect();
            let _ = writeln!(page, "<tr><td>{}</td>{cells}</tr>", escape(&name));
        }
        let _ = writeln!(page, "</table>");
    }
    if let Some(tls) = &r.tls {
        let _ = writeln!(page, "<p>TLS: {}</p>", escape(&super::text::tls_summary(tls)));
    }
    for warning in &r.warnings {
        let _ = writeln!(page, "<p><b>Warning:</b> {}</p>", escape(warning));
    }
}

/// An SVG line chart. With `log_x`, x values are log10 positions with their own labels.
fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series], log_x: bool) -> String {
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    for &(x, y) in all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if !log_x {
        x0 = x0.min(0.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let y1 = nice_ceiling(y1);
    let (w, h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let px = |x: f64| LEFT + (x - x0) / (x1 - x0) * w;
    let py = |y: f64| TOP + h - y / y1 * h;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"{}\">",
        escape(title)
    );
    let _ = write!(svg, "<text x=\"{LEFT}\" y=\"18\" font-size=\"14\" font-weight=\"bold\">{}</text>", escape(title));
    // Axes and ticks.
    let _ =
        write!(svg, "<line x1=\"{LEFT}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#444\"/>", TOP + h, LEFT + w, TOP + h);
    let _ = write!(svg, "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{}\" stroke=\"#444\"/>", TOP + h);
    for i in 0..=4 {
        let y = y1 * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#eee\"/><text x=\"{2}\" y=\"{3:.1}\" font-size=\"11\" text-anchor=\"end\">{4}</text>",
            py(y),
            LEFT + w,
            LEFT - 6.0,
            py(y) + 4.0,
            short(y)
        );
    }
    if log_x {
        for (pos, label) in [(0.0, "0%"), (1.0, "90%"), (2.0, "99%"), (3.0, "99.9%"), (4.0, "99.99%"), (5.0, "99.999%")]
        {
            if pos <= x1 + 1e-9 {
                let _ = write!(
                    svg,
                    "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{label}</text>",
                    px(pos),
                    TOP + h + 16.0
                );
            }
        }
    } else {
        for i in 0..=5 {
            let x = x0 + (x1 - x0) * f64::from(i) / 5.0;
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{}</text>",
                px(x),
                TOP + h + 16.0,
                short(x)
            );
        }
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{}</text>",
        LEFT + w / 2.0,
        HEIGHT - 6.0,
        escape(x_label)
    );
    let _ = write!(svg, "<text x=\"14\" y=\"{:.1}\" font-size=\"12\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">{}</text>", TOP + h / 2.0, TOP + h / 2.0, escape(y_label));
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<String> = s.points.iter().map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y))).collect();
        if !points.is_empty() {
            let _ = write!(
                svg,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
                points.join(" ")
            );
        }
        let lx = LEFT + w - 120.0 + 0.0 * i as f64;
        let ly = TOP + 12.0 + 16.0 * i as f64;
        let _ = write!(svg, "<rect x=\"{lx}\" y=\"{:.1}\" width=\"12\" height=\"3\" fill=\"{color}\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"12\">{}</text>", ly - 4.0, lx + 16.0, ly, escape(s.name));
    }
    svg.push_str("</svg>\n");
    svg
}

/// Latency against percentile, with the percentile axis in "nines" (log10 of
/// 1/(1-p)), as HdrHistogram plots are drawn.
fn percentile_chart(corrected: &Latency, uncorrected: &Latency, open_loop: bool) -> String {
    let curve = |l: &Latency| -> Vec<(f64, f64)> {
        let Ok(h) = LatencyHistogram::from_base64(&l.hdr) else { return Vec::new() };
        if h.count() == 0 {
            return Vec::new();
        }
        let mut points = Vec::new();
        let mut nines = 0.0;
        while nines <= 5.0 {
            let p = 100.0 * (1.0 - 10f64.powf(-nines));
            points.push((nines, h.percentile(p) as f64 / 1e3));
            nines += 0.05;
        }
        points
    };
    let mut series = vec![Series { name: if open_loop { "corrected" } else { "latency" }, points: curve(corrected) }];
    if open_loop {
        series.push(Series { name: "uncorrected", points: curve(uncorrected) });
    }
    line_chart("latency by percentile", "percentile", "ms", &series, true)
}

fn error_bars(r: &Report) -> String {
    let kinds: Vec<(&String, &u64)> = r.errors.by_kind.iter().filter(|(_, n)| **n > 0).collect();
    if kinds.is_empty() {
        return "<p>No errors.</p>\n".to_string();
    }
    let max = kinds.iter().map(|(_, n)| **n).max().unwrap_or(1) as f64;
    let height = 30.0 + 24.0 * kinds.len() as f64;
    let mut svg = format!("<svg width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"errors by kind\">");
    for (i, (kind, n)) in kinds.iter().enumerate() {
        let y = 10.0 + 24.0 * i as f64;
        let w = (WIDTH - 320.0) * (**n as f64 / max);
        let _ = write!(
            svg,
            "<text x=\"150\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\">{}</text><rect x=\"160\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"16\" fill=\"#d62728\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\">{n}</text>",
            y + 12.0,
            escape(kind),
            166.0 + w,
            y + 12.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Rounds an axis maximum up to 1, 2 or 5 times a power of ten.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|c| *c >= v).unwrap_or(10.0 * magnitude)
}

/// A short tick label: 1200 → 1.2k.
fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Escapes text for HTML and SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
