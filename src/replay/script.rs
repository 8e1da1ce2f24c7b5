//! What `run --replay` plays: a recording's sessions, made ready to send.
//!
//! Built once, in the plan, and shared by every connection. A connection asks it
//! only three things, per step: the request to send, how long the answer is, and
//! how long to think first (`engine/conn_replay.rs`).

use std::time::Duration;

use super::Recording;
use crate::payload::Template;

/// One step as a connection plays it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayStep {
    /// The recorded request: sent as recorded, or with `{conn}`/`{seq}`... filled in
    /// under `--replay-template`.
    pub request: Template,
    /// Bytes of the recorded answer (the `replay` framing waits for this many).
    pub answer_len: usize,
    /// Think time before this step, already scaled by `--replay-speed`.
    pub think: Duration,
}

/// The steps of one recorded session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplaySession {
    /// In order; never empty.
    pub steps: Vec<ReplayStep>,
}

/// Every playable session of a recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayScript {
    sessions: Vec<ReplaySession>,
}

impl ReplayScript {
    /// Builds the script. `template` parses each request as a template; `speed`
    /// divides the think times (0: no think time at all).
    ///
    /// A session's last steps that were never answered (the client's last words
    /// before it closed) are left out: nothing would mark their completion. Sessions
    /// left with no step are skipped. An error is one line.
    pub fn new(recording: &Recording, template: bool, speed: f64) -> Result<ReplayScript, String> {
        let scale = |think: Duration| if speed == 0.0 { Duration::ZERO } else { think.div_f64(speed) };
        let mut sessions = Vec::new();
        for (index, session) in recording.sessions.iter().enumerate() {
            let answered = session.steps.iter().rposition(|s| s.answer_len > 0).map_or(0, |last| last + 1);
            let mut steps = Vec::with_capacity(answered);
            for (n, step) in session.steps[..answered].iter().enumerate() {
                let request = if template {
                    Template::parse(step.request.clone())
                        .map_err(|e| format!("--replay-template: session {index} step {n}: {e}"))?
                } else {
                    Template::raw(step.request.clone())
                };
                steps.push(ReplayStep { request, answer_len: step.answer_len, think: scale(step.think) });
            }
            if !steps.is_empty() {
                sessions.push(ReplaySession { steps });
            }
        }
        if sessions.is_empty() {
            return Err("the recording has no answered step to replay".into());
        }
        Ok(ReplayScript { sessions })
    }

    /// The session connection `conn` plays: round-robin over the sessions.
    pub fn session(&self, conn: u64) -> &ReplaySession {
        &self.sessions[(conn % self.sessions.len() as u64) as usize]
    }

    /// Playable sessions.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Playable steps, in all sessions.
    pub fn steps(&self) -> usize {
        self.sessions.iter().map(|s| s.steps.len()).sum()
    }

    /// The longest recorded answer (checked against `--max-response`).
    pub fn longest_answer(&self) -> usize {
        self.sessions.iter().flat_map(|s| &s.steps).map(|s| s.answer_len).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::{Session, Step};

    fn step(request: &[u8], answer_len: usize, think_ms: u64) -> Step {
        Step {
            request: request.to_vec(),
            answer_len,
            think: Duration::from_millis(think_ms),
            answer_wait: Duration::ZERO,
        }
    }

    fn recording() -> Recording {
        let played = Session { steps: vec![step(b"GET {conn}", 5, 10), step(b"BYE", 0, 4)], ..Session::default() };
        let silent = Session { steps: vec![step(b"hello?", 0, 0)], ..Session::default() };
        Recording { sessions: vec![played, silent] }
    }

    #[test]
    fn unanswered_last_steps_and_empty_sessions_are_left_out() {
        let script = ReplayScript::new(&recording(), false, 1.0).unwrap();
        assert_eq!((script.sessions(), script.steps(), script.longest_answer()), (1, 1, 5));
        assert_eq!(script.session(7).steps[0].request.as_static(), Some(&b"GET {conn}"[..]));
    }

    #[test]
    fn speed_divides_think_time_and_zero_removes_it() {
        let think = |speed| ReplayScript::new(&recording(), false, speed).unwrap().session(0).steps[0].think;
        assert_eq!(think(1.0), Duration::from_millis(10));
        assert_eq!(think(2.0), Duration::from_millis(5));
        assert_eq!(think(0.0), Duration::ZERO);
    }

    #[test]
    fn templates_fill_in_fields_when_asked() {
        let script = ReplayScript::new(&recording(), true, 1.0).unwrap();
        let mut out = Vec::new();
        let fields = crate::payload::Fields { conn: 42, seq: 0, worker: 0 };
        script.session(0).steps[0].request.render_into(&fields, &mut out);
        assert_eq!(out, b"GET 42");
    }

    #[test]
    fn a_recording_with_nothing_answered_is_refused() {
        let silent = Recording { sessions: vec![Session::default()] };
        assert!(ReplayScript::new(&silent, false, 1.0).unwrap_err().contains("no answered step"));
    }
}
