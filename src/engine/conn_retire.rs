//! `--conn-stages` in the connection: retiring a connection when the number of
//! connections shrinks, and bringing it back when it grows again. A child module
//! of `conn`, so it sees the connection's fields; the state machine itself only
//! gains the `Retired` state, the `Retiring` sender and one check in `send_more`.
//!
//! Retiring is graceful: an established connection sends nothing new, waits for
//! the answers to the requests already in flight, then closes. Neither step counts
//! as an error.

use super::{After, Conn, Ctx, Ending, Next, Sender, Stage, State, Transport};

impl<S: Transport> Conn<S> {
    /// Asks this connection to go (the connection count is shrinking). Returns
    /// `None` if it cannot be asked right now (a batch is half written; ask again
    /// later), else what happened for the worker's book-keeping.
    pub fn retire(&mut self, ctx: &mut Ctx) -> Option<After> {
        let from = self.state.name();
        let connecting = self.is_connecting();
        let (state, next) = match self.take_state() {
            // Never connected, or between attempts: nothing to finish. A queued
            // connection still sits in the connect queue, which skips it.
            State::Queued | State::Backoff { .. } | State::Retired => (State::Retired, Next::Wait),
            // Dropping the socket abandons the connect; it was never established,
            // so there is nothing to count.
            State::Connecting { .. } | State::Handshaking { .. } | State::Upgrading { .. } => {
                (State::Retired, Next::Wait)
            }
            // Connect churn awaiting the server's close: it was counted closed when its
            // FIN went out; dropping the socket just ends the wait.
            State::Closing { .. } => (State::Retired, Next::Wait),
            State::Greeting(open) | State::Open(open) if matches!(open.sender, Sender::Writing { .. }) => {
                // Put it back as it was: the write finishes first.
                let stage = if from == "Greeting" { Stage::Greeting } else { Stage::Open };
                self.enter(stage.hold(open), from);
                return None;
            }
            State::Greeting(open) | State::Open(open) if open.in_flight.is_empty() => {
                let stage = if from == "Greeting" { Stage::Greeting } else { Stage::Open };
                self.end(open, stage, Ending::Retired, ctx)
            }
            State::Greeting(mut open) => {
                open.sender = Sender::Retiring;
                (State::Greeting(open), Next::Wait)
            }
            State::Open(mut open) => {
                open.sender = Sender::Retiring;
                (State::Open(open), Next::Wait)
            }
            State::Closed => (State::Closed, Next::Wait),
        };
        self.enter(state, from);
        Some(After { next, connect_ended: connecting })
    }

    /// Asks a retired (or retiring) connection to stay or come back (the connection
    /// count is growing). `Next::Queue` when it must connect again.
    pub fn revive(&mut self) -> Next {
        match &mut self.state {
            State::Retired => {
                self.enter(State::Queued, "Retired");
                Next::Queue
            }
            // Still finishing its requests: it just carries on. Its next answer
            // starts the next request.
            State::Greeting(open) | State::Open(open) if open.sender == Sender::Retiring => {
                open.sender = Sender::Ready;
                Next::Wait
            }
            _ => Next::Wait,
        }
    }

    /// Whether it is retired (closed by `--conn-stages`, ready to come back).
    pub fn is_retired(&self) -> bool {
        matches!(self.state, State::Retired)
    }
}
