//! loadmux: a TCP load generator built on a hand-rolled `mio` event loop.
//!
//! The data flow, top to bottom:
//!
//! ```text
//! cli (clap) ─► plan::Plan ─► engine::run ─► Worker × T (one mio::Poll each)
//!                                 ▲                   │
//!                                 └── stats::Snapshot ┘ (once a second)
//! engine::run ─► report::Report ─► text / JSON
//! ```
//!
//! `docs/architecture.md` walks through it with the real file and function names.

pub mod assert;
pub mod cli;
pub mod engine;
pub mod exit;
pub mod framing;
pub mod payload;
pub mod plan;
pub mod rate_search;
pub mod report;
pub mod server;
pub mod sources;
pub mod stats;
