//! One latency histogram configuration, used everywhere.
//!
//! HdrHistogram's `add` is exact only between histograms with the same configuration,
//! so every histogram in loadmux (per worker, per second, per shard, read back from a
//! JSON report) is made by [`LatencyHistogram::new`] and nothing else.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// Highest recordable value: 60 s in microseconds. Larger values are clamped to it.
pub const MAX_US: u64 = 60_000_000;
/// Significant decimal digits kept: 3 means every value within 0.1%.
pub const SIGFIG: u8 = 3;

/// A histogram of durations in microseconds, 1 µs to 60 s at 3 significant digits.
#[derive(Clone, Debug)]
pub struct LatencyHistogram(Histogram<u64>);

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram with the one loadmux configuration.
    pub fn new() -> Self {
        // The bounds are constants that hdrhistogram accepts, so this cannot fail.
        let h = Histogram::new_with_bounds(1, MAX_US, SIGFIG).expect("valid histogram bounds");
        LatencyHistogram(h)
    }

    /// Records one duration in microseconds. Values above 60 s count as 60 s.
    #[inline]
    pub fn record(&mut self, us: u64) {
        self.0.saturating_record(us.min(MAX_US));
    }

    /// Adds every value of `other` into `self`. Exact, because the configurations match.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        // Same bounds on both sides, so `add` cannot run out of range.
        self.0.add(&other.0).expect("histograms share one configuration");
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// Smallest recorded value (0 when empty).
    pub fn min(&self) -> u64 {
        if self.count() == 0 {
            0
        } else {
            self.0.min()
        }
    }

    /// Largest recorded value (0 when empty).
    pub fn max(&self) -> u64 {
        self.0.max()
    }

    /// Mean of recorded values (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count() == 0 {
            0.0
        } else {
            self.0.mean()
        }
    }

    /// The value at percentile `p` (0 to 100), at histogram precision (0 when empty).
    pub fn percentile(&self, p: f64) -> u64 {
        if self.count() == 0 {
            0
        } else {
            self.0.value_at_percentile(p)
        }
    }

    /// Each recorded bucket as (value, count), lowest first. The value is the
    /// highest one the bucket stands for (within 0.1%), in microseconds. Used to
    /// render other formats (Prometheus buckets) without copying the histogram.
    pub fn recorded(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.0.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value()))
    }

    /// The underlying HdrHistogram, for writers that take one (the interval log).
    pub fn hdr(&self) -> &Histogram<u64> {
        &self.0
    }

    /// Serializes as HdrHistogram V2 + Deflate, base64-encoded: the `hdr` field of a report.
    pub fn to_base64(&self) -> String {
        let mut bytes = Vec::new();
        // Serializing into a Vec cannot fail for a valid histogram.
        V2DeflateSerializer::new().serialize(&self.0, &mut bytes).expect("serialize histogram");
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// Reads back a histogram written by [`to_base64`](Self::to_base64) (or any V2 /
    /// V2+Deflate HdrHistogram), re-homing its values in the loadmux configuration.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("hdr field is not base64: {e}"))?;
        let decoded: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("hdr field is not an HdrHistogram: {e:?}"))?;
        let mut out = Self::new();
        // Re-record bucket by bucket so a histogram from another configuration still
        // lands in ours; for our own configuration this is an exact copy.
        for v in decoded.iter_recorded() {
            out.0.saturating_record_n(v.value_iterated_to().min(MAX_US), v.count_at_value());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_histogram_reports_zeros() {
        let h = LatencyHistogram::new();
        assert_eq!((h.count(), h.min(), h.max(), h.percentile(99.0)), (0, 0, 0, 0));
        assert_eq!(h.mean(), 0.0);
    }

    #[test]
    fn values_above_the_range_are_clamped_not_lost() {
        let mut h = LatencyHistogram::new();
        h.record(MAX_US * 10);
        assert_eq!(h.count(), 1);
        assert!(h.max() >= MAX_US && h.max() <= MAX_US + MAX_US / 1000);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        let mut all = LatencyHistogram::new();
        for v in 1..5000u64 {
            let target = if v % 3 == 0 { &mut a } else { &mut b };
            target.record(v * 7);
            all.record(v * 7);
        }
        a.merge(&b);
        assert_eq!(a.count(), all.count());
        for p in [50.0, 90.0, 99.0, 99.9] {
            assert_eq!(a.percentile(p), all.percentile(p));
        }
    }

    #[test]
    fn base64_round_trip_is_exact() {
        let mut h = LatencyHistogram::new();
        for v in [0, 1, 17, 250, 9_999, 1_234_567] {
            h.record(v);
        }
        let back = LatencyHistogram::from_base64(&h.to_base64()).unwrap();
        assert_eq!(back.count(), h.count());
        assert_eq!(back.max(), h.max());
        assert_eq!(back.percentile(50.0), h.percentile(50.0));
        assert!(LatencyHistogram::from_base64("not base64!").is_err());
        assert!(LatencyHistogram::from_base64("aGVsbG8=").is_err());
    }
}
