//! `run --replay` in the connection: the questions a connection asks the replay
//! script, kept out of `conn.rs` so that the state machine itself only gains a few
//! calls. A child module of `conn`, so it sees the connection's fields.
//!
//! A connection plays session `id % sessions` from its first step; `Open::step`
//! counts the steps it has started on its current socket. When the last step's
//! answer is in, the connection closes and reconnects (with RST under
//! `--linger0`): the recorded session was one connection, so its replay is one too
//! (a WebSocket or a login cannot be replayed twice on one socket).

use std::time::Instant;

use super::{Conn, Ctx, Open, Transport};
use crate::framing::Framing;
use crate::payload::Fields;
use crate::replay::ReplayScript;

impl<S: Transport> Conn<S> {
    /// Closed loop: the next step waits out its think time, counted from its previous
    /// step's answer. Returns the instant it may go, if that is still to come. (Under
    /// `-r` the schedule paces the steps instead.)
    pub(super) fn replay_thinking(&self, now: Instant, ctx: &Ctx) -> Option<Instant> {
        (ctx.plan.send_interval.is_none() && self.next_send > now).then_some(self.next_send)
    }

    /// Whether the session has a step left to send on this socket.
    pub(super) fn replay_has_step(&self, open: &Open<S>, script: &ReplayScript) -> bool {
        open.step < script.session(self.id).steps.len()
    }

    /// Renders the next step's request into the worker's buffer (after what is
    /// already there: pipelined steps go out in one write) and moves on a step.
    pub(super) fn render_replay_step(&self, open: &mut Open<S>, script: &ReplayScript, seq: u64, ctx: &mut Ctx) {
        let step = &script.session(self.id).steps[open.step];
        step.request.render_into(&Fields { conn: self.id, seq, worker: ctx.worker }, ctx.render);
        open.step += 1;
    }

    /// The framing of the oldest answer awaited: its recorded length. Steps are sent
    /// and answered in order, so the oldest in flight is `step - in_flight`.
    pub(super) fn replay_answer_framing(&self, open: &Open<S>, script: &ReplayScript) -> Framing {
        let oldest = open.step.saturating_sub(open.in_flight.len());
        let steps = &script.session(self.id).steps;
        Framing::Bytes(steps.get(oldest).map_or(1, |s| s.answer_len))
    }

    /// A step's answer is complete: in closed loop, schedule the next step after its
    /// think time. Returns true when the session is over (every step answered).
    pub(super) fn replay_step_answered(&mut self, open: &Open<S>, script: &ReplayScript, ctx: &Ctx) -> bool {
        let steps = &script.session(self.id).steps;
        if open.step == steps.len() && open.in_flight.is_empty() {
            return true;
        }
        if ctx.plan.send_interval.is_none() {
            if let Some(next) = steps.get(open.step) {
                self.next_send = ctx.now + next.think;
            }
        }
        false
    }
}
