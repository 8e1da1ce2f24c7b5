//! What every WebSocket connection of a run asks for in its upgrade, and how it
//! frames its messages: built once by the command line, shared by the workers.

use super::Opcode;

/// Where one target's upgrade goes: the `Host` header and the request path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsPlace {
    /// The `Host` header's value (`HOST:PORT` as the target was written).
    pub host: String,
    /// The request path (`/` by default).
    pub path: String,
}

/// A run's WebSocket settings (`ws://`, `wss://`, `--ws`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsSettings {
    /// One place per target, in `Plan::targets` order.
    pub places: Vec<WsPlace>,
    /// Extra headers for the upgrade request (`-H 'Name: value'`), in order.
    pub headers: Vec<(String, String)>,
    /// Subprotocols offered (`--ws-protocol`), in order of preference.
    pub protocols: Vec<String>,
    /// Requests go out as binary frames (`--ws-binary`); text otherwise.
    pub binary: bool,
}

impl WsSettings {
    /// The place of target number `target` (the first one if there are fewer).
    pub fn target(&self, target: usize) -> &WsPlace {
        &self.places[target.min(self.places.len().saturating_sub(1))]
    }

    /// The opcode each request's frame carries.
    pub fn opcode(&self) -> Opcode {
        if self.binary {
            Opcode::Binary
        } else {
            Opcode::Text
        }
    }
}
