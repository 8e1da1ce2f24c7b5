//! Record a real client's sessions through a proxy, and replay them as load.
//!
//! - [`format`](mod@format): the file format (version 1), its writer and its never-panicking reader.
//! - [`recording`]: the records grouped into sessions of steps (`replay-info`, `run --replay`).
//! - [`script`]: the sessions as `run --replay` plays them.
//! - [`proxy`]: `loadmux record`, a transparent TCP proxy on its own mio loop that
//!   streams what it forwards into a recording.
//!
//! `docs/replay.md` describes the format and the commands.

pub mod format;
pub mod proxy;
pub mod recording;
pub mod script;

pub use recording::{Recording, Session, Step};
pub use script::{ReplayScript, ReplaySession, ReplayStep};
