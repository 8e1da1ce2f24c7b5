//! `run --replay` in the connection: the three questions a connection asks the replay
//! script, kept out of `conn.rs` so that the state machine itself only gains a few
//! calls. A child module of `conn`, so it sees the connection's fields.
//!
//! A connection plays session `id % sessions` from its first step; `step` counts the
//! steps it has started on its current socket. When the last step's answer is in,
//! the connection closes cleanly and reconnects: the recorded session was one
//! connection, so its replay is one too (a WebSocket or a login cannot be replayed
//! twice on one socket).

use std::time::Instant;

use log::debug;

use super::{After, Conn, Ctx, State, Transport};
use crate::framing::Framing;
use crate::payload::Fields;
use crate::replay::ReplayScript;

impl<S: Transport> Conn<S> {
    /// Closed loop: the next step waits out its think time, counted from its previous
    /// step's answer. Returns the instant it may go, if that is still to come.
    pub(super) fn replay_thinking(&self, now: Instant) -> Option<Instant> {
        (self.next_send > now).then_some(self.next_send)
    }

    /// Whether the session has a step left to send on this socket.
    pub(super) fn replay_has_step(&self, script: &ReplayScript) -> bool {
        self.step < script.session(self.id).steps.len()
    }

    /// Renders the next step's request into the worker's buffer (after what is
    /// already there: pipelined steps go out in one write) and moves on a step.
    pub(super) fn render_replay_step(&mut self, script: &ReplayScript, seq: u64, ctx: &mut Ctx) {
        let step = &script.session(self.id).steps[self.step];
        step.request.render_into(&Fields { conn: self.id, seq, worker: ctx.worker }, ctx.render);
        self.step += 1;
    }

    /// The framing of the oldest answer awaited: its recorded length. Steps are sent
    /// and answered in order, so the oldest in flight is `step - in_flight`.
    pub(super) fn replay_answer_framing(&self, script: &ReplayScript) -> Framing {
        let oldest = self.step.saturating_sub(self.in_flight.len());
        let steps = &script.session(self.id).steps;
        Framing::Bytes(steps.get(oldest).map_or(1, |s| s.answer_len))
    }

    /// A step's answer is complete: in closed loop, schedule the next step after its
    /// think time. Returns true when the session is over (every step answered).
    pub(super) fn replay_step_answered(&mut self, script: &ReplayScript, ctx: &Ctx) -> bool {
        let steps = &script.session(self.id).steps;
        if self.step == steps.len() && self.in_flight.is_empty() {
            return true;
        }
        if ctx.plan.send_interval.is_none() {
            if let Some(next) = steps.get(self.step) {
                self.next_send = ctx.now + next.think;
            }
        }
        false
    }

    /// The session is over: close (with RST under `--linger0`, so that sessions of
    /// one or two steps do not leave thousands of TIME_WAIT sockets behind) and
    /// reconnect to play it again, unless the `-n` budget is spent: a new connection
    /// would then send nothing, and a server that greets would be answering no step.
    pub(super) fn replay_session_over(&mut self, ctx: &mut Ctx) -> After {
        if ctx.plan.socket.linger0 {
            if let Some(Err(e)) = self.socket.as_ref().map(Transport::reset_on_close) {
                debug!("conn {} token {}: SO_LINGER 0 failed: {e}", self.id, self.token);
            }
        }
        if ctx.budget.is_spent() {
            return self.replay_done(ctx);
        }
        self.close_cleanly(ctx)
    }

    /// The `-n` budget is spent and this connection has nothing left to play: close
    /// for good. (A server that greets may greet a connection that was reopened just
    /// before the budget ran out; its greeting answers no step, and is no error.)
    pub(super) fn replay_done(&mut self, ctx: &mut Ctx) -> After {
        self.drop_socket(ctx);
        self.set_state(State::Closed);
        After::Nothing
    }
}
