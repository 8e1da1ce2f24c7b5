//! loadmux: a TCP load generator built on a hand-rolled `mio` event loop.
//!
//! The data flow, top to bottom:
//!
//! ```text
//! cli (clap) ─► plan::Plan ─► engine::run ─► Worker × T (one mio::Poll each)
//!                                 ▲                   │
//!                                 └── stats::Snapshot ┘ (once a second)
//! engine::RunResult ─► report::Report ─► text / JSON / CSV / HTML ─► assert::Threshold
//! ```
//!
//! `docs/architecture.md` walks through it with the real file and function names.
//!
//! The command line is one user of the library; a program can be another. This
//! loads the built-in echo server for a fifth of a second and judges the result:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use loadmux::assert::Threshold;
//! use loadmux::plan::Plan;
//! use loadmux::report::{self, Report};
//! use loadmux::server::{self, ServerConfig};
//! use loadmux::transport::Target;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = server::start(ServerConfig::echo("127.0.0.1:0".parse()?))?;
//! let addr = server.local_addr().tcp().ok_or("the echo server listens on TCP")?;
//! let mut plan = Plan::new(vec![Target::Tcp(addr)]);
//! plan.connections = 4;
//! plan.duration = Duration::from_millis(200);
//! let plan = Arc::new(plan.with_rate(Some(1000.0))); // open loop, 1000 requests/s
//!
//! let result = loadmux::engine::run(plan.clone(), &mut |_row| {})?;
//! let report = Report::from_run(&result, &plan);
//! print!("{}", report::render_text(&report, "loadmux: library example"));
//! assert!(report.requests.completed > 0);
//! assert!(Threshold::parse("errors=0")?.check(&report)?.passed);
//! server.stop();
//! # Ok(())
//! # }
//! ```

pub mod assert;
pub mod cli;
pub mod engine;
pub mod exit;
pub mod fault;
pub mod framing;
pub mod io_kind;
pub mod mix;
pub mod monitor;
pub mod payload;
pub mod plan;
pub mod rate_search;
pub mod replay;
pub mod report;
pub mod server;
pub mod session;
pub mod sources;
pub mod stats;
pub mod stream_socket;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod transport;
pub mod units;
