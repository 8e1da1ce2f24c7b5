//! Live control: what a person (keys on a terminal) or a script (`--control stdin`)
//! asks of a running test, and the coordinator's record of the rate it set.
//!
//! Commands reach the coordinator over a channel, and the reader rings the
//! coordinator's waker so it acts at once. The coordinator keeps the run's rate
//! schedule ([`LiveRate`]), decides each change here, and sends the workers a
//! [`RateChange`](super::stages::RateChange) each (ringing their wakers), so a worker asleep in `poll` moves
//! its connections' next sends within microseconds.

use serde::{Deserialize, Serialize};

use super::stages::RateSchedule;

/// What a control command asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    /// Send this many requests per second from now on (this process's rate).
    SetRate(f64),
    /// Multiply the rate by this factor (`+` is 1.1, `-` is 1/1.1).
    Scale(f64),
    /// Stop sending (the rate drops to 0) until `Resume`.
    Pause,
    /// Go back to the rate in force before `Pause`.
    Resume,
    /// `Pause` when sending, `Resume` when paused (the `p` key).
    TogglePause,
    /// End the run now, normally: a full report and exit code 0.
    Stop,
}

/// A command and where it came from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Command {
    /// What is asked.
    pub action: Action,
    /// Who asked: `key` (a key on the terminal) or `stdin` (`--control stdin`).
    pub source: &'static str,
}

/// One change of the rate, as listed in the report (`rate_changes`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RateChangeRecord {
    /// Seconds from the start of the run.
    pub t_s: f64,
    /// The rate before, per second.
    pub old: f64,
    /// The rate after, per second.
    pub new: f64,
    /// `key`, `stdin` or `stage`.
    pub source: String,
}

/// The coordinator's copy of the run's rate: the schedule every worker follows, the
/// rate to go back to after a pause, and every change made.
#[derive(Clone, Debug)]
pub struct LiveRate {
    /// The rate over time, seconds from the run's start, with every change applied.
    pub schedule: RateSchedule,
    /// While paused: the rate `Resume` restores.
    paused_from: Option<f64>,
    /// Changes so far, in order.
    pub changes: Vec<RateChangeRecord>,
}

/// The highest rate live control sets: the same bound as `-r`.
const MAX_RATE: f64 = crate::units::MAX_RATE;

impl LiveRate {
    /// Starts from the run's planned schedule.
    pub fn new(schedule: RateSchedule) -> LiveRate {
        LiveRate { schedule, paused_from: None, changes: Vec::new() }
    }

    /// Applies `action` (any but `Stop`) at `t_s` seconds into the run. Returns the
    /// new rate to send the workers, `Ok(None)` when nothing changes (a pause while
    /// paused), or a one-line reason it was refused.
    pub fn apply(&mut self, action: Action, t_s: f64, source: &str) -> Result<Option<f64>, String> {
        let now = self.schedule.rate_at(t_s);
        let action = match action {
            Action::TogglePause if self.paused_from.is_some() => Action::Resume,
            Action::TogglePause => Action::Pause,
            other => other,
        };
        let new = match action {
            Action::Stop => return Ok(None),
            Action::SetRate(rate) if !(rate.is_finite() && (0.0..=MAX_RATE).contains(&rate)) => {
                return Err(format!("rate {rate} is out of range (allowed: 0 to {MAX_RATE})"));
            }
            Action::SetRate(rate) => {
                self.paused_from = None;
                rate
            }
            Action::Scale(_) if self.paused_from.is_some() => return Err("paused: resume first".into()),
            Action::Scale(factor) => (now * factor).min(MAX_RATE),
            Action::Pause if self.paused_from.is_some() => return Ok(None),
            Action::Pause => {
                self.paused_from = Some(now);
                0.0
            }
            Action::Resume | Action::TogglePause => match self.paused_from.take() {
                Some(rate) => rate,
                None => return Ok(None),
            },
        };
        self.schedule.set_rate(t_s, new);
        self.changes.push(RateChangeRecord { t_s, old: now, new, source: source.to_string() });
        Ok(Some(new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_and_resume_come_back_to_the_same_rate() {
        let mut live = LiveRate::new(RateSchedule::constant(1000.0));
        assert_eq!(live.apply(Action::SetRate(2000.0), 2.0, "stdin"), Ok(Some(2000.0)));
        assert_eq!(live.apply(Action::Pause, 4.0, "stdin"), Ok(Some(0.0)));
        assert_eq!(live.apply(Action::Pause, 4.5, "stdin"), Ok(None), "already paused");
        assert!(live.apply(Action::Scale(1.1), 4.6, "key").is_err(), "+ while paused");
        assert_eq!(live.apply(Action::Resume, 5.0, "stdin"), Ok(Some(2000.0)));
        assert_eq!(live.apply(Action::Resume, 5.5, "stdin"), Ok(None), "not paused");
        let olds: Vec<(f64, f64)> = live.changes.iter().map(|c| (c.old, c.new)).collect();
        assert_eq!(olds, vec![(1000.0, 2000.0), (2000.0, 0.0), (0.0, 2000.0)]);
        // 2 s at 1000, 2 s at 2000, 1 s paused, 1 s at 2000.
        assert_eq!(live.schedule.sends_by(6.0), 2000.0 + 4000.0 + 2000.0);
    }

    #[test]
    fn keys_scale_the_rate_by_ten_percent() {
        let mut live = LiveRate::new(RateSchedule::constant(1000.0));
        let up = live.apply(Action::Scale(1.1), 1.0, "key").unwrap().unwrap();
        assert!((up - 1100.0).abs() < 1e-9, "{up}");
        let down = live.apply(Action::Scale(1.0 / 1.1), 2.0, "key").unwrap().unwrap();
        assert!((down - 1000.0).abs() < 1e-9, "{down}");
        assert_eq!(live.changes[0].source, "key");
        assert_eq!(live.apply(Action::TogglePause, 3.0, "key"), Ok(Some(0.0)));
        let back = live.apply(Action::TogglePause, 4.0, "key").unwrap().unwrap();
        assert!((back - 1000.0).abs() < 1e-9, "{back}");
    }

    #[test]
    fn a_rate_out_of_range_is_refused_and_changes_nothing() {
        let mut live = LiveRate::new(RateSchedule::constant(10.0));
        for bad in [-1.0, f64::NAN, f64::INFINITY, 2e9] {
            assert!(live.apply(Action::SetRate(bad), 1.0, "stdin").is_err(), "{bad}");
        }
        assert!(live.changes.is_empty());
        assert_eq!(live.schedule.rate_at(5.0), 10.0);
    }
}
