//! `loadmux run`'s "Watching a run" flags: Prometheus, statsd and the HdrHistogram
//! interval log, turned into a checked [`MonitorConfig`].

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::monitor::MonitorConfig;
use crate::plan::PlanError;
use crate::units::parse_duration;

/// The flags of the "Watching a run" help section.
#[derive(Args, Debug, Clone, Default)]
pub struct WatchArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics while the run goes on (e.g.
    /// 127.0.0.1:9464; port 0 picks one and prints it). Counters follow the report:
    /// loadmux_requests_total ends equal to its requests.sent.
    #[arg(long, value_name = "ADDR", help_heading = "Watching a run", conflicts_with = "rate_search")]
    pub metrics_listen: Option<String>,

    /// After the run, go on serving the final metrics this long (after the summary),
    /// so that the next scrape sees them: one scrape interval or a little more.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration, requires = "metrics_listen", help_heading = "Watching a run")]
    pub metrics_linger: Duration,

    /// Push counters and gauges to a statsd server over UDP once a second (e.g.
    /// 127.0.0.1:8125).
    #[arg(long, value_name = "HOST:PORT", help_heading = "Watching a run", conflicts_with = "rate_search")]
    pub statsd: Option<String>,

    /// Put this before every statsd name.
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "loadmux.",
        requires = "statsd",
        help_heading = "Watching a run"
    )]
    pub statsd_prefix: String,

    /// Write each second's request-latency histogram to PATH, in HdrHistogram's
    /// interval log format (values in microseconds).
    #[arg(long, value_name = "PATH", help_heading = "Watching a run", conflicts_with = "rate_search")]
    pub hlog: Option<PathBuf>,
}

impl WatchArgs {
    /// Checks the flags: addresses resolve (the first address is used).
    pub fn to_config(&self) -> Result<MonitorConfig, PlanError> {
        Ok(MonitorConfig {
            metrics_listen: self
                .metrics_listen
                .as_deref()
                .map(|a| resolve("--metrics-listen", a, "127.0.0.1:9464"))
                .transpose()?,
            metrics_linger: self.metrics_linger,
            statsd: self.statsd.as_deref().map(|a| resolve("--statsd", a, "127.0.0.1:8125")).transpose()?,
            statsd_prefix: self.statsd_prefix.clone(),
            hlog: self.hlog.clone(),
        })
    }
}

/// Resolves HOST:PORT once, before the run; an error names the flag and an example
/// of what it takes (its protocol's usual port).
fn resolve(flag: &str, text: &str, example: &str) -> Result<SocketAddr, PlanError> {
    let bad = |why: String| PlanError(format!("{flag} {text}: {why}; expected HOST:PORT such as {example}"));
    let mut addrs = text.to_socket_addrs().map_err(|e| bad(e.to_string()))?;
    addrs.next().ok_or_else(|| bad("resolves to no address".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_resolve_and_bad_ones_name_the_flag() {
        let args = WatchArgs { statsd: Some("127.0.0.1:8125".into()), ..WatchArgs::default() };
        assert_eq!(args.to_config().unwrap().statsd, Some("127.0.0.1:8125".parse().unwrap()));
        let bad = WatchArgs { metrics_listen: Some("nonsense".into()), ..WatchArgs::default() };
        let err = bad.to_config().unwrap_err().0;
        assert!(err.starts_with("--metrics-listen nonsense: ") && err.ends_with("127.0.0.1:9464"), "{err}");
        let bad = WatchArgs { statsd: Some("nonsense".into()), ..WatchArgs::default() };
        let err = bad.to_config().unwrap_err().0;
        assert!(err.starts_with("--statsd nonsense: ") && err.ends_with("such as 127.0.0.1:8125"), "{err}");
    }
}
