//! Record a real client's sessions through a proxy, and replay them as load.
//!
//! - [`format`](mod@format): the file format (version 1), its writer and its never-panicking reader.
//! - [`recording`]: the records grouped into sessions of steps (`replay-info`, `run --replay`).
//! - [`proxy`]: `loadmux record`, a transparent TCP proxy on its own mio loop that
//!   streams what it forwards into a recording.
//!
//! `docs/replay.md` describes the format and the commands.

pub mod format;
pub mod proxy;
pub mod recording;

pub use recording::{Recording, Session, Step};
