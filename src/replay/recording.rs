//! A recording as sessions of steps: what `replay-info` prints and `run --replay` plays.
//!
//! A step is what the client sent before the server began to answer, then the server's
//! answer until the client spoke again:
//!
//! ```text
//! records of one session:  Open  C C  S S S  C  S  S  Close
//! steps:                         [ step 0   ][ step 1 ]
//! ```
//!
//! Server bytes before the client ever spoke (a greeting, as SMTP or MySQL send) make
//! a step whose request is empty: replaying it means waiting for the greeting.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::format::{self, CloseReason, FormatError, Kind};

/// Who spoke last on a session: decides whether the next bytes start a new step.
/// The proxy keeps one per connection to count steps as it records; the reader
/// keeps one per session to build them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Turn {
    /// Nobody has sent anything yet.
    #[default]
    Start,
    /// The client's bytes came last: more client bytes extend the request.
    Client,
    /// The server's bytes came last: more server bytes extend the answer.
    Server,
}

impl Turn {
    /// Moves the turn on for bytes from `client` (true) or the server, and says
    /// whether those bytes begin a new step.
    pub fn advance(&mut self, from_client: bool) -> bool {
        let new_step = match (*self, from_client) {
            (Turn::Client, true) | (Turn::Server, false) => false,
            // The client speaks first, or again after an answer: a new request.
            (Turn::Start | Turn::Server, true) => true,
            // A greeting: the server spoke before any request.
            (Turn::Start, false) => true,
            // The answer begins: same step.
            (Turn::Client, false) => false,
        };
        *self = if from_client { Turn::Client } else { Turn::Server };
        new_step
    }
}

/// One request and its answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// The bytes the client sent, as it wrote them (pipelined requests stay together).
    pub request: Vec<u8>,
    /// How many bytes the server answered with.
    pub answer_len: usize,
    /// Time the client waited before sending, after the previous answer (or after
    /// connecting, for the first step).
    pub think: Duration,
    /// Time from the request's last byte to the answer's first byte, as the proxy saw it.
    pub answer_wait: Duration,
}

/// One recorded client connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    /// Its steps, in order.
    pub steps: Vec<Step>,
    /// How it ended; `None` if the file has no `Close` for it.
    pub closed: Option<CloseReason>,
    /// Time from its `Open` to its last record.
    pub duration: Duration,
}

/// A whole recording, read and checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recording {
    /// Every session, in the order its client connected.
    pub sessions: Vec<Session>,
}

/// The session state the reader needs while it builds steps.
struct Building {
    session: Session,
    turn: Turn,
}

impl Recording {
    /// Reads and checks a recording file. The error is one line naming the file.
    pub fn load(path: &Path) -> Result<Recording, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Recording::parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Builds the sessions and steps from a recording's bytes. Never panics.
    pub fn parse(bytes: &[u8]) -> Result<Recording, FormatError> {
        let mut building: Vec<Building> = Vec::new();
        format::read_records(bytes, |record, offset| {
            let corrupt = |why| FormatError::Corrupt { offset, why };
            if record.kind == Kind::Open {
                if record.session as usize != building.len() {
                    return Err(corrupt("sessions must open in order 0, 1, 2..."));
                }
                building.push(Building { session: Session::default(), turn: Turn::Start });
                return Ok(());
            }
            let b = building.get_mut(record.session as usize).ok_or(corrupt("record for a session never opened"))?;
            if b.session.closed.is_some() {
                return Err(corrupt("record for a session already closed"));
            }
            b.session.duration = b.session.duration.saturating_add(record.gap);
            match record.kind {
                Kind::Client | Kind::Server => {
                    let from_client = record.kind == Kind::Client;
                    if b.turn.advance(from_client) {
                        let think = if from_client { record.gap } else { Duration::ZERO };
                        b.session.steps.push(Step { think, ..Step::default() });
                    }
                    // A step was pushed by the first bytes of the session, at the latest.
                    let Some(step) = b.session.steps.last_mut() else { return Err(corrupt("bytes before a step")) };
                    if from_client {
                        step.request.extend_from_slice(record.data);
                    } else {
                        if step.answer_len == 0 {
                            step.answer_wait = record.gap;
                        }
                        step.answer_len += record.data.len();
                    }
                }
                Kind::Close => b.session.closed = Some(format::close_reason(record.data)),
                // Open is handled above; End never reaches this closure.
                Kind::Open | Kind::End => return Err(corrupt("unexpected record kind")),
            }
            Ok(())
        })?;
        Ok(Recording { sessions: building.into_iter().map(|b| b.session).collect() })
    }

    /// Steps in all sessions.
    pub fn steps(&self) -> usize {
        self.sessions.iter().map(|s| s.steps.len()).sum()
    }

    /// Bytes the clients sent, in all sessions.
    pub fn request_bytes(&self) -> usize {
        self.sessions.iter().flat_map(|s| &s.steps).map(|s| s.request.len()).sum()
    }

    /// Bytes the server answered, in all sessions.
    pub fn answer_bytes(&self) -> usize {
        self.sessions.iter().flat_map(|s| &s.steps).map(|s| s.answer_len).sum()
    }

    /// The `replay-info` text: totals, then one line per session (the first
    /// `max_sessions` of them).
    pub fn describe(&self, max_sessions: usize) -> String {
        let steps = self.steps();
        let think: Duration = self.sessions.iter().flat_map(|s| &s.steps).map(|s| s.think).sum();
        let wait: Duration = self.sessions.iter().flat_map(|s| &s.steps).map(|s| s.answer_wait).sum();
        let per_step = |d: Duration| if steps == 0 { Duration::ZERO } else { d / steps as u32 };
        let mut out = format!(
            "{} sessions, {} steps, {} request bytes, {} answer bytes\n\
             per step: mean think {:?}, mean answer wait {:?}\n",
            self.sessions.len(),
            steps,
            self.request_bytes(),
            self.answer_bytes(),
            per_step(think),
            per_step(wait),
        );
        for (i, s) in self.sessions.iter().enumerate().take(max_sessions) {
            let req: usize = s.steps.iter().map(|s| s.request.len()).sum();
            let ans: usize = s.steps.iter().map(|s| s.answer_len).sum();
            let _ = writeln!(
                out,
                "  session {i}: {} steps, {req} B sent, {ans} B answered, {:?}, closed: {}",
                s.steps.len(),
                s.duration,
                s.closed.map_or("never", CloseReason::name)
            );
        }
        if self.sessions.len() > max_sessions {
            let _ = writeln!(out, "  ... and {} more sessions", self.sessions.len() - max_sessions);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::format::RecordWriter;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn turns_split_a_conversation_into_steps() {
        let mut w = RecordWriter::new(Vec::new()).unwrap();
        w.write(Kind::Open, 0, ms(0), &[]).unwrap();
        w.write(Kind::Open, 1, ms(0), &[]).unwrap();
        w.write(Kind::Client, 0, ms(3), b"GET a").unwrap();
        w.write(Kind::Client, 0, ms(0), b"GET b").unwrap(); // pipelined: same request
        w.write(Kind::Server, 1, ms(1), b"220 hello").unwrap(); // a greeting
        w.write(Kind::Server, 0, ms(2), b"A").unwrap();
        w.write(Kind::Server, 0, ms(0), b"BB").unwrap();
        w.write(Kind::Client, 0, ms(7), b"QUIT").unwrap();
        w.write(Kind::Close, 0, ms(1), &[CloseReason::Clean.byte()]).unwrap();
        let rec = Recording::parse(&w.finish().unwrap()).unwrap();
        let s0 = &rec.sessions[0];
        assert_eq!(s0.steps.len(), 2);
        assert_eq!(
            s0.steps[0],
            Step { request: b"GET aGET b".to_vec(), answer_len: 3, think: ms(3), answer_wait: ms(2) }
        );
        assert_eq!(s0.steps[1], Step { request: b"QUIT".to_vec(), answer_len: 0, think: ms(7), answer_wait: ms(0) });
        assert_eq!(s0.closed, Some(CloseReason::Clean));
        let s1 = &rec.sessions[1];
        assert_eq!(s1.steps, [Step { request: vec![], answer_len: 9, think: ms(0), answer_wait: ms(1) }]);
        assert_eq!(s1.closed, None);
        assert_eq!((rec.steps(), rec.request_bytes(), rec.answer_bytes()), (3, 14, 12));
    }

    #[test]
    fn records_for_unknown_or_closed_sessions_are_corrupt() {
        let mut w = RecordWriter::new(Vec::new()).unwrap();
        w.write(Kind::Client, 4, ms(0), b"x").unwrap();
        assert!(matches!(Recording::parse(&w.finish().unwrap()), Err(FormatError::Corrupt { .. })));
        let mut w = RecordWriter::new(Vec::new()).unwrap();
        w.write(Kind::Open, 0, ms(0), &[]).unwrap();
        w.write(Kind::Close, 0, ms(0), &[0]).unwrap();
        w.write(Kind::Client, 0, ms(0), b"x").unwrap();
        assert!(matches!(Recording::parse(&w.finish().unwrap()), Err(FormatError::Corrupt { .. })));
    }

    #[test]
    fn describe_names_totals_and_sessions() {
        let mut w = RecordWriter::new(Vec::new()).unwrap();
        w.write(Kind::Open, 0, ms(0), &[]).unwrap();
        w.write(Kind::Client, 0, ms(1), b"hi").unwrap();
        w.write(Kind::Server, 0, ms(1), b"there").unwrap();
        let text = Recording::parse(&w.finish().unwrap()).unwrap().describe(10);
        assert!(text.starts_with("1 sessions, 1 steps, 2 request bytes, 5 answer bytes"), "{text}");
        assert!(text.contains("session 0: 1 steps, 2 B sent, 5 B answered"), "{text}");
    }
}
