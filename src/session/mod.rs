//! Session layers: what sits between the transport's plaintext bytes and the framing
//! (`shared/design.md`, "Layers of one connection"). A session wraps outgoing
//! messages and unwraps incoming ones.
//!
//! So far this holds the WebSocket codec alone, sans-IO (no sockets, no clock): the
//! handshake, the frame encoder and the frame decoder. It is not wired into the
//! connection state machine yet; that comes with the transport layer.

pub mod websocket;
