//! WebSocket (RFC 6455), client side, sans-IO: bytes in, bytes and events out.
//!
//! - [`ClientHandshake`]: the HTTP/1.1 Upgrade request with a random
//!   `Sec-WebSocket-Key`, and the check of the server's `101` answer and its
//!   `Sec-WebSocket-Accept` (`handshake.rs`).
//! - [`encode_frame`]: a masked client frame, with a fresh random mask drawn for
//!   every frame as RFC 6455 section 5.3 requires (`encode.rs`).
//! - [`FrameDecoder`]: server frames fed incrementally, split anywhere: message data
//!   is handed out as borrowed slices of the input (no copy), fragmented messages are
//!   reassembled as one message whose size is bounded, pings are reported with the
//!   payload their pong must carry, and a close with its code (`decode.rs`).
//! - [`WsStream`]: the session over a transport, as the connection state machine
//!   drives it: the upgrade as a connection phase, requests out as frames, message
//!   bytes in, pongs and close replies on the same send path (`stream.rs`).
//! - [`WsSettings`]: what a run's upgrades ask for (`settings.rs`).
//!
//! Hand-rolled rather than `tungstenite`: its `WebSocketContext` reads through a
//! stream it owns and returns each message as an owned `Message` assembled from the
//! frame payloads, which is the copy per message the design asks to avoid; this
//! decoder lends message bytes straight from the read buffer. The codec is small
//! enough to read in one sitting.

mod decode;
mod encode;
mod handshake;
mod settings;
mod stream;

pub use decode::{ControlPayload, Event, FrameDecoder, MessageKind, WsError};
pub use encode::{encode_close, encode_frame, frame_in_place, Opcode};
pub use handshake::{accept_for, ClientHandshake, HandshakeError, Upgraded, MAX_HANDSHAKE_RESPONSE};
pub use settings::{WsPlace, WsSettings};
pub use stream::{is_session_error, refused_upgrade, WsStream, NO_STATUS_CODE};

#[cfg(test)]
mod tests;
