//! Load shapes: the open-loop rate as a function of time (`--stages`, live
//! control), and the time of every send it implies.
//!
//! The rate is piecewise linear: each segment starts at some rate and changes
//! by a fixed slope until the next one (k6's `ramping-arrival-rate`). The number of
//! sends due by time `t` is the integral of the rate, `N(t)`; send number `k`
//! (counting from 0) is due when `N(t)` reaches `k`. Inside a segment that is a
//! quadratic in `t`, solved exactly (vegeta's linear pacer), so the rate is right at
//! every instant instead of moving in steps.
//!
//! Which connection makes send `k`: connection `i` of `C` makes the sends
//! `k = i, i + C, i + 2C, ...` (see [`SendSchedule`]). At a constant rate that is
//! exactly today's per-connection schedule (`first_send` + a fixed gap), and the
//! total is exact whatever the shape, as long as each connection keeps up.

use std::time::{Duration, Instant};

use crate::units::{parse_duration, MAX_DURATION};

/// One stage as written on the command line: go from the previous value to
/// `target` over `length`, linearly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stage {
    /// How long the stage lasts.
    pub length: Duration,
    /// The value at its end: requests per second (`--stages`) or connections
    /// (`--conn-stages`).
    pub target: f64,
}

/// Parses `LENGTH:TARGET,LENGTH:TARGET,...` (e.g. `30s:1000,1m:5000`). `max` bounds
/// each target; `what` names the target in errors ("rate", "connections").
pub fn parse_stages(text: &str, max: f64, what: &str) -> Result<Vec<Stage>, String> {
    if text.trim().is_empty() {
        return Err("no stage given (expected LENGTH:TARGET,..., e.g. 30s:1000,1m:5000)".into());
    }
    let mut stages = Vec::new();
    let mut total = Duration::ZERO;
    for part in text.split(',') {
        let part = part.trim();
        let Some((length, target)) = part.split_once(':') else {
            return Err(format!("stage '{part}' needs a colon, as in 30s:1000 (LENGTH:TARGET)"));
        };
        let length = parse_duration(length).map_err(|e| format!("stage '{part}': {e}"))?;
        if length.is_zero() {
            return Err(format!("stage '{part}': the length must be longer than 0"));
        }
        let target: f64 = target
            .trim()
            .parse()
            .map_err(|_| format!("stage '{part}': '{}' is not a {what} (a number from 0 to {max})", target.trim()))?;
        if !(target.is_finite() && (0.0..=max).contains(&target)) {
            return Err(format!("stage '{part}': {what} {target} is out of range (allowed: 0 to {max})"));
        }
        total = total.saturating_add(length);
        if total > MAX_DURATION {
            return Err("the stages last more than a year (allowed: up to 365 days in all)".into());
        }
        stages.push(Stage { length, target });
    }
    Ok(stages)
}

/// The total length of `stages`.
pub fn total_length(stages: &[Stage]) -> Duration {
    stages.iter().map(|s| s.length).sum()
}

/// The value at `t` seconds after the stages begin: linear inside each stage from
/// the previous target (`start` before the first), the last target after the end.
pub fn value_at(start: f64, stages: &[Stage], t: f64) -> f64 {
    let mut from = start;
    let mut begin = 0.0;
    for stage in stages {
        let length = stage.length.as_secs_f64();
        if t < begin + length {
            let into = (t - begin).max(0.0);
            return from + (stage.target - from) * into / length;
        }
        from = stage.target;
        begin += length;
    }
    from
}

/// A stretch of time over which the rate changes linearly.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Segment {
    /// When it begins, in seconds since the schedule's origin.
    start_s: f64,
    /// Sends due before it began: `N(start_s)`.
    sends_before: f64,
    /// The rate at `start_s`, per second.
    rate: f64,
    /// How much the rate grows per second (negative while ramping down).
    slope: f64,
}

impl Segment {
    /// Sends due in the first `into` seconds of this segment.
    fn sends_in(&self, into: f64) -> f64 {
        self.rate * into + self.slope * into * into / 2.0
    }

    /// How far into this segment the `nth` send (counted from its start) is due:
    /// the root of `rate·τ + slope·τ²/2 = nth`. Written as `2n / (r + √(r² + 2an))`,
    /// which holds for a zero slope too and loses no precision when the slope is
    /// tiny. `None` when the rate never gets there (zero, or ramping down to zero
    /// before).
    fn time_of(&self, nth: f64) -> Option<f64> {
        if nth <= 0.0 {
            // Due at the start, unless the rate is zero there and stays zero.
            return (self.rate > 0.0 || self.slope > 0.0).then_some(0.0);
        }
        let discriminant = self.rate * self.rate + 2.0 * self.slope * nth;
        if discriminant < 0.0 {
            return None;
        }
        let denominator = self.rate + discriminant.sqrt();
        (denominator > 0.0).then(|| 2.0 * nth / denominator)
    }
}

/// The open-loop rate over time and the time of every send it implies. Its time is
/// in seconds from an origin the caller chooses (the start of the run).
#[derive(Clone, Debug, PartialEq)]
pub struct RateSchedule {
    /// In time order; the last one lasts for ever, and is flat.
    segments: Vec<Segment>,
}

impl RateSchedule {
    /// A constant `rate` from the origin on.
    pub fn constant(rate: f64) -> RateSchedule {
        RateSchedule { segments: vec![Segment { start_s: 0.0, sends_before: 0.0, rate, slope: 0.0 }] }
    }

    /// `lead_in` at `start_rate` (the warm-up), then each stage ramping linearly from
    /// the previous rate to its target, then flat at the last target.
    pub fn ramps(start_rate: f64, lead_in: Duration, stages: &[Stage]) -> RateSchedule {
        let mut schedule = RateSchedule::constant(start_rate);
        let mut at = lead_in.as_secs_f64();
        let mut rate = start_rate;
        for stage in stages {
            let length = stage.length.as_secs_f64();
            let slope = (stage.target - rate) / length;
            schedule.push(at, rate, slope);
            at += length;
            rate = stage.target;
        }
        schedule.push(at, rate, 0.0);
        schedule
    }

    /// The same schedule with every rate multiplied by `factor` (a shard's share).
    pub fn scaled(mut self, factor: f64) -> RateSchedule {
        for segment in &mut self.segments {
            segment.sends_before *= factor;
            segment.rate *= factor;
            segment.slope *= factor;
        }
        self
    }

    /// Ends the last segment at `start_s` and starts a new one there.
    fn push(&mut self, start_s: f64, rate: f64, slope: f64) {
        let last = *self.segments.last().expect("a schedule always has a segment");
        let sends_before = last.sends_before + last.sends_in((start_s - last.start_s).max(0.0));
        if start_s <= last.start_s {
            self.segments.pop();
        }
        self.segments.push(Segment { start_s, sends_before, rate, slope });
    }

    /// The segment in force at `t`.
    fn segment_at(&self, t: f64) -> &Segment {
        let after = self.segments.partition_point(|s| s.start_s <= t);
        &self.segments[after.saturating_sub(1)]
    }

    /// The rate asked for at `t` seconds.
    pub fn rate_at(&self, t: f64) -> f64 {
        let segment = self.segment_at(t);
        (segment.rate + segment.slope * (t - segment.start_s).max(0.0)).max(0.0)
    }

    /// Sends due in `[0, t)`: `N(t)`, the integral of the rate.
    pub fn sends_by(&self, t: f64) -> f64 {
        let segment = self.segment_at(t);
        segment.sends_before + segment.sends_in((t - segment.start_s).max(0.0))
    }

    /// When send number `k` (from 0) is due, in seconds; `None` if never (the rate
    /// stays at zero before it).
    pub fn time_of(&self, k: u64) -> Option<f64> {
        let k = k as f64;
        // The last segment that began with fewer than k+1 sends due holds send k; a
        // zero-length or zero-rate segment shares its `sends_before` with the next,
        // so the later one is picked.
        let after = self.segments.partition_point(|s| s.sends_before <= k);
        let segment = &self.segments[after.saturating_sub(1)];
        let into = segment.time_of(k - segment.sends_before)?;
        // Rounding can put the root a hair past the segment's end: the next one's
        // start is the true answer then.
        let end = self.segments.get(after).map_or(f64::INFINITY, |next| next.start_s);
        Some((segment.start_s + into).min(end))
    }

    /// From `at_s` on, the rate is a flat `rate` (live control); what followed is
    /// dropped. Returns the rate in force just before.
    pub fn set_rate(&mut self, at_s: f64, rate: f64) -> f64 {
        let old = self.rate_at(at_s);
        let keep = self.segments.partition_point(|s| s.start_s <= at_s).max(1);
        self.segments.truncate(keep);
        self.push(at_s, rate, 0.0);
        old
    }
}

/// One worker's view of a [`RateSchedule`]: instants instead of seconds, and the
/// stride between one connection's sends.
#[derive(Clone, Debug)]
pub struct SendSchedule {
    /// The instant time 0 of the rate schedule stands for (the run's start).
    pub origin: Instant,
    /// The rate over time (this process's share of it).
    pub rates: RateSchedule,
    /// Connections in this process: connection `i` makes sends `i + j·stride`.
    pub stride: u64,
}

impl SendSchedule {
    /// When send `k` is due; a year after the origin (later than any run ends) if never.
    pub fn instant_of(&self, k: u64) -> Instant {
        let secs = self.rates.time_of(k).unwrap_or(f64::INFINITY);
        let max = MAX_DURATION.as_secs_f64();
        self.origin + if secs < max { Duration::from_secs_f64(secs) } else { MAX_DURATION }
    }

    /// The first of a connection's sends, starting from `k`, that is not yet due at
    /// `now`: sends that fell due while the connection was down are skipped rather
    /// than made in a burst (as the constant-rate schedule does).
    pub fn resume_index(&self, k: u64, now: Instant) -> u64 {
        let due = self.rates.sends_by(now.saturating_duration_since(self.origin).as_secs_f64()).ceil();
        if due <= k as f64 || !due.is_finite() {
            return k;
        }
        let behind = due as u64 - k;
        k + behind.div_ceil(self.stride) * self.stride
    }
}

/// `--conn-stages`: how many connections the whole test keeps open over time,
/// ramping linearly from 0 through each stage's target.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnStages {
    /// The stages, targets in connections (whole numbers).
    pub stages: Vec<Stage>,
}

impl ConnStages {
    /// Connections the whole test wants open `t` seconds after the start (rounded).
    pub fn total_at(&self, t: f64) -> u64 {
        value_at(0.0, &self.stages, t).round() as u64
    }

    /// The most connections any stage asks for: the number of connection slots.
    pub fn most(&self) -> u64 {
        self.stages.iter().map(|s| s.target as u64).max().unwrap_or(0)
    }
}

/// How many of a process's first `wanted` connections belong to worker `worker` of
/// `threads` (connection `i` goes to worker `i % threads`, so they are that
/// worker's first ones).
pub fn worker_share(wanted: u64, worker: usize, threads: usize) -> usize {
    let (worker, threads) = (worker as u64, threads.max(1) as u64);
    if wanted <= worker {
        0
    } else {
        usize::try_from((wanted - worker - 1) / threads + 1).unwrap_or(usize::MAX)
    }
}

/// A change of the rate made during the run (live control), as the coordinator
/// sends it to each worker: from `at_s` seconds after the start, a flat `rate`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateChange {
    /// Seconds from the run's start.
    pub at_s: f64,
    /// Requests per second for the whole process.
    pub rate: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// How many sends fall in `[from, to)` seconds.
    fn sends_between(schedule: &RateSchedule, from: f64, to: f64) -> u64 {
        let mut k = 0;
        let mut count = 0;
        while let Some(t) = schedule.time_of(k) {
            if t >= to {
                break;
            }
            count += u64::from(t >= from);
            k += 1;
        }
        count
    }

    #[test]
    fn a_ramp_then_a_plateau_sends_the_integral_exactly() {
        let stages = parse_stages("3s:2000,3s:2000", 1e9, "rate").unwrap();
        let schedule = RateSchedule::ramps(0.0, Duration::ZERO, &stages);
        assert_eq!(sends_between(&schedule, 0.0, 3.0), 3000);
        assert_eq!(sends_between(&schedule, 3.0, 6.0), 6000);
        assert_eq!(schedule.sends_by(6.0), 9000.0);
        // The ramp is exact at every instant: the first second carries 1/9 of it.
        assert_eq!(sends_between(&schedule, 0.0, 1.0), 334);
    }

    #[test]
    fn each_second_of_a_ramp_gets_its_share() {
        let stages = parse_stages("3s:500,3s:2000", 1e9, "rate").unwrap();
        let schedule = RateSchedule::ramps(0.0, Duration::ZERO, &stages);
        for second in 0..6 {
            let (from, to) = (second as f64, second as f64 + 1.0);
            let expected = schedule.sends_by(to) - schedule.sends_by(from);
            let got = sends_between(&schedule, from, to) as f64;
            assert!((got - expected).abs() <= 1.0, "second {second}: {got} vs {expected}");
        }
        assert_eq!(schedule.sends_by(6.0), 750.0 + 3750.0);
    }

    #[test]
    fn a_ramp_down_to_zero_stops_sending() {
        let stages = parse_stages("2s:1000,2s:0,5s:0", 1e9, "rate").unwrap();
        let schedule = RateSchedule::ramps(1000.0, Duration::ZERO, &stages);
        assert_eq!(sends_between(&schedule, 0.0, 2.0), 2000);
        assert_eq!(sends_between(&schedule, 2.0, 4.0), 1000);
        assert_eq!(schedule.time_of(3000), None, "no send once the rate is 0 for ever");
        assert_eq!(schedule.rate_at(3.0), 500.0);
        assert_eq!(schedule.rate_at(7.0), 0.0);
    }

    #[test]
    fn a_zero_rate_stage_in_the_middle_is_a_pause() {
        let stages = parse_stages("1s:100,1s:0,1s:0,1s:100", 1e9, "rate").unwrap();
        let schedule = RateSchedule::ramps(100.0, Duration::ZERO, &stages);
        assert_eq!(sends_between(&schedule, 0.0, 1.0), 100);
        assert_eq!(sends_between(&schedule, 1.0, 2.0), 50);
        assert_eq!(sends_between(&schedule, 2.0, 3.0), 0);
        assert_eq!(sends_between(&schedule, 3.0, 4.0), 50);
        let resumed = schedule.time_of(150).unwrap();
        assert!((3.0..3.2).contains(&resumed), "{resumed}");
    }

    #[test]
    fn a_constant_rate_is_the_fixed_gap_schedule() {
        let schedule = RateSchedule::constant(1000.0);
        assert_eq!(schedule.time_of(0), Some(0.0));
        assert_eq!(schedule.time_of(2500), Some(2.5));
        let lead_in = RateSchedule::ramps(1000.0, secs(2.0), &parse_stages("1s:1000", 1e9, "rate").unwrap());
        assert_eq!(lead_in.time_of(2500), Some(2.5));
    }

    #[test]
    fn very_small_and_very_large_rates_stay_finite() {
        let tiny = RateSchedule::ramps(0.0, Duration::ZERO, &parse_stages("1000s:0.001", 1e9, "rate").unwrap());
        assert_eq!(tiny.time_of(0), Some(0.0));
        let second = tiny.time_of(1).expect("the ramp reaches one send");
        assert!(second.is_finite() && second > 0.0, "{second}");
        let huge = RateSchedule::ramps(0.0, Duration::ZERO, &parse_stages("10s:1e9", 1e9, "rate").unwrap());
        let last = huge.time_of(4_999_999_999).unwrap();
        assert!((last - 10.0).abs() < 1e-6, "{last}");
        assert!(huge.time_of(u64::MAX).unwrap().is_finite());
        assert_eq!(RateSchedule::constant(0.0).time_of(1), None);
    }

    #[test]
    fn set_rate_changes_the_rate_from_then_on() {
        let mut schedule = RateSchedule::constant(100.0);
        assert_eq!(schedule.set_rate(2.0, 1000.0), 100.0);
        assert_eq!(sends_between(&schedule, 2.0, 3.0), 1000);
        assert_eq!(schedule.set_rate(3.0, 0.0), 1000.0);
        assert_eq!(schedule.time_of(1200), None, "paused");
        schedule.set_rate(5.0, 1000.0);
        assert_eq!(schedule.time_of(1200), Some(5.0), "resumed where it stopped");
        assert_eq!(schedule.sends_by(6.0), 2200.0);
        // A change at the very start replaces the first segment.
        let mut early = RateSchedule::constant(5.0);
        early.set_rate(0.0, 10.0);
        assert_eq!(early.time_of(10), Some(1.0));
    }

    #[test]
    fn a_shard_takes_its_share_of_every_stage() {
        let stages = parse_stages("2s:1000,2s:1000", 1e9, "rate").unwrap();
        let quarter = RateSchedule::ramps(0.0, Duration::ZERO, &stages).scaled(0.25);
        assert_eq!(sends_between(&quarter, 0.0, 2.0), 250);
        assert_eq!(sends_between(&quarter, 2.0, 4.0), 500);
    }

    #[test]
    fn connections_resume_at_their_next_send_not_yet_due() {
        let origin = Instant::now();
        let schedule = SendSchedule { origin, rates: RateSchedule::constant(100.0), stride: 4 };
        assert_eq!(schedule.instant_of(150), origin + secs(1.5));
        // At 1.0 s, 100 sends are due: connection 1 (sends 1, 5, 9...) resumes at 101.
        assert_eq!(schedule.resume_index(1, origin + secs(1.0)), 101);
        assert_eq!(schedule.resume_index(205, origin + secs(1.0)), 205);
        let never = SendSchedule { origin, rates: RateSchedule::constant(0.0), stride: 1 };
        assert_eq!(never.instant_of(3), origin + MAX_DURATION);
    }

    #[test]
    fn connection_stages_ramp_and_split_over_workers() {
        let stages = ConnStages { stages: parse_stages("10s:200,10s:20", 1e6, "connections").unwrap() };
        assert_eq!((stages.total_at(0.0), stages.total_at(5.0), stages.total_at(10.0)), (0, 100, 200));
        assert_eq!((stages.total_at(15.0), stages.total_at(30.0), stages.most()), (110, 20, 200));
        // 5 connections over 2 workers: worker 0 has ids 0, 2, 4 and worker 1 has 1, 3.
        assert_eq!((worker_share(5, 0, 2), worker_share(5, 1, 2)), (3, 2));
        assert_eq!((worker_share(0, 0, 2), worker_share(1, 1, 2)), (0, 0));
        let split: usize = (0..3).map(|w| worker_share(200, w, 3)).sum();
        assert_eq!(split, 200);
    }

    #[test]
    fn bad_stage_specs_are_refused_with_a_reason() {
        for (spec, needle) in [
            ("", "no stage"),
            ("30s", "needs a colon"),
            ("30s:-5", "out of range"),
            ("30s:NaN", "out of range"),
            ("30s:inf", "out of range"),
            ("30s:1e10", "out of range"),
            ("0s:10", "longer than 0"),
            ("soon:10", "not a duration"),
            ("30s:lots", "not a rate"),
            ("200d:1,200d:1", "more than a year"),
            ("1s:1,,1s:1", "needs a colon"),
        ] {
            let e = parse_stages(spec, 1e9, "rate").unwrap_err();
            assert!(e.contains(needle), "{spec}: {e}");
        }
        assert_eq!(value_at(0.0, &parse_stages("10s:200,10s:20", 1e6, "c").unwrap(), 5.0), 100.0);
        assert_eq!(value_at(0.0, &parse_stages("10s:200,10s:20", 1e6, "c").unwrap(), 25.0), 20.0);
    }
}
