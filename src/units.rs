//! Parsers for the quantities a user types: durations, byte sizes, rates and
//! wall-clock instants.
//!
//! Both the command line and the plan use them, so they live in neither. Each one
//! checks its range as it parses: a value that passes can be added to an `Instant`,
//! multiplied into a `Duration` or divided by without overflow later, so no flag can
//! make a worker panic halfway through a run.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest duration any flag accepts: one year (365 days). Long enough for any
/// soak test, short enough that `Instant::now() + MAX_DURATION` (and a few of them
/// summed) can never overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The highest rate (per second) any rate flag accepts: one billion. Beyond that the
/// gap between two sends is below a nanosecond and cannot be scheduled.
pub const MAX_RATE: f64 = 1e9;

/// The lowest rate (per second) any rate flag accepts: one per year, so the gap
/// between sends stays within [`MAX_DURATION`] even for one connection.
pub const MIN_RATE: f64 = 1.0 / MAX_DURATION.as_secs() as f64;

/// The largest byte size any flag accepts: 1 GiB. Buffers are sized from these
/// values, so an absurd one would only turn into an allocation failure later.
pub const MAX_SIZE: usize = 1 << 30;

/// The latest `--start-at` accepted, as Unix seconds: the year 9999, far beyond any
/// real schedule, and still representable as a `SystemTime` everywhere.
const MAX_START_AT_UNIX_S: f64 = 253_402_300_799.0;

/// Parses a duration the way wrk does: a bare number is seconds, otherwise a
/// humantime duration such as `250ms`, `5s` or `1m30s`. Accepts 0 up to
/// [`MAX_DURATION`]; callers that need it longer than 0 check that themselves.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let range = "allowed: 0 to 365 days, e.g. 10s, 250ms or 1m";
    let duration = if let Ok(secs) = text.parse::<f64>() {
        // Compare as f64 before converting: from_secs_f64 panics on what does not fit.
        if !secs.is_finite() || secs < 0.0 || secs > MAX_DURATION.as_secs_f64() {
            return Err(format!("'{text}' is out of range ({range})"));
        }
        Duration::from_secs_f64(secs)
    } else {
        humantime::parse_duration(text).map_err(|_| format!("'{text}' is not a duration ({range})"))?
    };
    if duration > MAX_DURATION {
        return Err(format!("'{text}' is out of range ({range})"));
    }
    Ok(duration)
}

/// Parses a byte size: a number with an optional binary unit, `k`/`KiB` (1024),
/// `m`/`MiB`, `g`/`GiB`; `B` alone or nothing means bytes. Accepts 0 up to
/// [`MAX_SIZE`]; callers that need at least 1 byte check that themselves.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let range = "allowed: 0 to 1GiB, e.g. 65536, 64k or 4MiB";
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("'{text}' is not a size ({range})")),
    };
    if digits.is_empty() {
        return Err(format!("'{text}' is not a size ({range})"));
    }
    // Too many digits for a u64 is simply too large, not malformed.
    let n: u64 = digits.parse().map_err(|_| format!("'{text}' is out of range ({range})"))?;
    match n.checked_mul(1 << shift).and_then(|bytes| usize::try_from(bytes).ok()) {
        Some(bytes) if bytes <= MAX_SIZE => Ok(bytes),
        _ => Err(format!("'{text}' is out of range ({range})")),
    }
}

/// Parses a rate per second: a finite number from [`MIN_RATE`] (one per year) to
/// [`MAX_RATE`].
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let range = "allowed: a number from 3.2e-8 (about one a year) to 1e9";
    let rate: f64 = text.trim().parse().map_err(|_| format!("'{text}' is not a number ({range})"))?;
    if !(MIN_RATE..=MAX_RATE).contains(&rate) {
        return Err(format!("'{text}' is out of range ({range})"));
    }
    Ok(rate)
}

/// Parses a wall-clock instant: RFC 3339 (`2026-11-24T12:00:00Z`) or Unix seconds,
/// no later than the year 9999.
pub fn parse_start_at(text: &str) -> Result<SystemTime, String> {
    let range = "use RFC 3339 such as 2026-11-24T12:00:00Z, or Unix seconds up to the year 9999";
    if let Ok(secs) = text.trim().parse::<f64>() {
        if secs.is_finite() && (0.0..=MAX_START_AT_UNIX_S).contains(&secs) {
            return Ok(UNIX_EPOCH + Duration::from_secs_f64(secs));
        }
        return Err(format!("'{text}' is out of range ({range})"));
    }
    humantime::parse_rfc3339_weak(text.trim()).map_err(|_| format!("'{text}' is not a time ({range})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_numbers_are_seconds() {
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("0.5").unwrap(), Duration::from_millis(500));
    }

    #[test]
    fn humantime_units_are_accepted() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
    }

    #[test]
    fn garbage_negative_and_huge_durations_are_rejected() {
        for bad in ["soon", "-3", "", "1e20", "NaN", "inf", "366days", "18446744073709551616"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_duration("365days").unwrap(), MAX_DURATION);
        assert_eq!(parse_duration("31536000").unwrap(), MAX_DURATION);
    }

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("65536").unwrap(), 65536);
        assert_eq!(parse_size("64k").unwrap(), 65536);
        assert_eq!(parse_size("4MiB").unwrap(), 4 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        for bad in ["lots", "12q", "", "k", "2G", "18446744073709551616", "-1"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates_are_finite_positive_and_bounded() {
        assert_eq!(parse_rate("1000").unwrap(), 1000.0);
        assert_eq!(parse_rate("1e9").unwrap(), MAX_RATE);
        for bad in ["0", "-1", "1e-20", "1e10", "NaN", "inf", "", "fast"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn start_at_takes_rfc3339_or_unix_seconds() {
        let t = parse_start_at("2026-11-24T12:00:00Z").unwrap();
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 1_795_521_600);
        assert_eq!(parse_start_at("1795521600").unwrap(), t);
        for bad in ["noonish", "1e20", "-1", "NaN"] {
            assert!(parse_start_at(bad).is_err(), "{bad}");
        }
    }
}
