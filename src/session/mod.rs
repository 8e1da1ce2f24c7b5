//! Session layers: what sits between the transport's plaintext bytes and the framing
//! (`shared/design.md`, "Layers of one connection"). A session wraps outgoing
//! messages and unwraps incoming ones.
//!
//! So far this holds WebSocket alone: a sans-IO codec (the handshake, the frame
//! encoder and decoder) and [`websocket::WsStream`], which wraps a transport and is
//! one itself, so the connection state machine drives a WebSocket session as it
//! drives plain TCP or TLS, and sees message bytes only.

pub mod websocket;
