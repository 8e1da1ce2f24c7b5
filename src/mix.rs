//! A request mix: several named messages with weights, and which one each request
//! sends.
//!
//! The choice is a pure function of (seed, connection id, sequence number), so it
//! needs no state, no lock and no allocation, and a run with `--seed` picks the same
//! names for the same requests whatever the thread scheduling. Each in-flight request
//! remembers its entry's index (`engine::conn`), so its response is framed by that
//! entry's `expect` and counted under its name.
//!
//! - `random`: a splitmix64 hash of the three numbers, mapped onto the cumulative
//!   weights (a multiply and a binary search over at most [`MAX_NAMES`] sums).
//! - `round-robin`: each connection walks the weighted cycle (`get get get put` for
//!   3:1) from an offset set by its id, so connections do not move in step. Over a
//!   connection's life each name's share is exact to within one cycle.

use std::fmt;

use crate::framing::Framing;
use crate::payload::{splitmix64, Template};

/// The most names a mix may have: per-name statistics cost one histogram per name
/// per worker (about 140 KiB each: 1 µs to 60 s at 3 digits, so 9 MiB at 64 names),
/// and an in-flight request stores its name's index in a byte.
pub const MAX_NAMES: usize = 64;

/// The largest weight of one name; weights are whole numbers, so the cycle of a
/// round-robin mix is at most `MAX_NAMES × MAX_WEIGHT` long (it is never built:
/// a position is looked up in the cumulative weights).
pub const MAX_WEIGHT: u64 = 1_000_000;

/// How a mix picks each request's name (`--mix-order`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MixOrder {
    /// Random, in proportion to the weights, reproducible with `--seed`.
    Random {
        /// Mixed into every choice: the same seed picks the same names.
        seed: u64,
    },
    /// Weighted round robin: each connection cycles through the weights in order.
    RoundRobin,
}

impl MixOrder {
    /// The name used in reports and by `--mix-order`.
    pub fn name(self) -> &'static str {
        match self {
            MixOrder::Random { .. } => "random",
            MixOrder::RoundRobin => "round-robin",
        }
    }
}

/// One named message of a mix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MixEntry {
    /// The name used in reports and `--assert NAME.p99<...`.
    pub name: String,
    /// Its share of the requests, relative to the other weights.
    pub weight: u64,
    /// What its requests send.
    pub template: Template,
    /// How its responses end, when not as the run's `--expect` says.
    pub framing: Option<Framing>,
}

/// A checked request mix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mix {
    entries: Vec<MixEntry>,
    /// `cumulative[i]` is the sum of the weights of entries `0..=i`.
    cumulative: Vec<u64>,
    order: MixOrder,
}

/// Why a mix is not acceptable, as one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MixError(pub String);

impl fmt::Display for MixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Mix {
    /// A mix of `entries`, picked in `order`. Checks the count, the names (unique,
    /// each a valid [`is_name`]) and the weights (1 to [`MAX_WEIGHT`]).
    pub fn new(entries: Vec<MixEntry>, order: MixOrder) -> Result<Mix, MixError> {
        if entries.is_empty() {
            return Err(MixError("a mix needs at least one entry".into()));
        }
        if entries.len() > MAX_NAMES {
            return Err(MixError(format!("a mix has {} names; at most {MAX_NAMES} are allowed", entries.len())));
        }
        for (i, e) in entries.iter().enumerate() {
            if !is_name(&e.name) {
                return Err(MixError(format!(
                    "'{}' is not a mix name (allowed: a letter or _ then letters, digits, _ . -)",
                    e.name
                )));
            }
            if entries[..i].iter().any(|other| other.name == e.name) {
                return Err(MixError(format!("the name '{}' is given twice", e.name)));
            }
            if !(1..=MAX_WEIGHT).contains(&e.weight) {
                return Err(MixError(format!(
                    "'{}': weight {} is out of range (allowed: 1 to {MAX_WEIGHT})",
                    e.name, e.weight
                )));
            }
        }
        let cumulative = entries
            .iter()
            .scan(0u64, |sum, e| {
                *sum += e.weight;
                Some(*sum)
            })
            .collect();
        Ok(Mix { entries, cumulative, order })
    }

    /// The entries, in the order given.
    pub fn entries(&self) -> &[MixEntry] {
        &self.entries
    }

    /// How names are picked.
    pub fn order(&self) -> MixOrder {
        self.order
    }

    /// The entry at `index` (an index from [`pick`](Self::pick)).
    pub fn entry(&self, index: usize) -> &MixEntry {
        &self.entries[index]
    }

    /// The index of the entry that request `seq` of connection `conn` sends. No
    /// allocation, no state: a hash (or a modulo) and a binary search.
    #[inline]
    pub fn pick(&self, conn: u64, seq: u64) -> usize {
        let total = *self.cumulative.last().unwrap_or(&1);
        let position = match self.order {
            MixOrder::Random { seed } => {
                let hash = splitmix64(seed ^ splitmix64(conn ^ splitmix64(seq)));
                // Lemire's multiply-shift maps the 64-bit hash onto 0..total without
                // a division (and with a bias below 2^-40 for these totals).
                ((u128::from(hash) * u128::from(total)) >> 64) as u64
            }
            MixOrder::RoundRobin => conn.wrapping_mul(7).wrapping_add(seq) % total,
        };
        // The first entry whose cumulative weight is above the position.
        self.cumulative.partition_point(|&sum| sum <= position)
    }
}

/// Whether `text` is a mix name: `[A-Za-z_][A-Za-z0-9_.-]*`. The rule is what tells
/// `-m get=3:...` (a named entry) from a plain message.
pub fn is_name(text: &str) -> bool {
    let mut bytes = text.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, weight: u64) -> MixEntry {
        MixEntry { name: name.into(), weight, template: Template::raw(name.as_bytes().to_vec()), framing: None }
    }

    fn counts(mix: &Mix, conns: u64, per_conn: u64) -> Vec<u64> {
        let mut n = vec![0; mix.entries().len()];
        for conn in 0..conns {
            for seq in 0..per_conn {
                n[mix.pick(conn, seq)] += 1;
            }
        }
        n
    }

    #[test]
    fn random_picks_follow_the_weights() {
        let mix = Mix::new(vec![entry("get", 3), entry("put", 1)], MixOrder::Random { seed: 1 }).unwrap();
        let n = counts(&mix, 10, 10_000);
        let share = n[0] as f64 / 100_000.0;
        assert!((share - 0.75).abs() < 0.01, "{n:?}");
    }

    #[test]
    fn the_same_seed_picks_the_same_names_and_another_seed_others() {
        let a = Mix::new(vec![entry("a", 1), entry("b", 1)], MixOrder::Random { seed: 7 }).unwrap();
        let b = Mix::new(vec![entry("a", 1), entry("b", 1)], MixOrder::Random { seed: 8 }).unwrap();
        let picks = |m: &Mix| (0..64).map(|seq| m.pick(3, seq)).collect::<Vec<_>>();
        assert_eq!(picks(&a), picks(&a.clone()));
        assert_ne!(picks(&a), picks(&b));
    }

    #[test]
    fn round_robin_walks_the_weighted_cycle_exactly() {
        let mix = Mix::new(vec![entry("get", 3), entry("put", 1)], MixOrder::RoundRobin).unwrap();
        assert_eq!((0..8).map(|seq| mix.pick(0, seq)).collect::<Vec<_>>(), [0, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(counts(&mix, 5, 4000), [15_000, 5_000], "whole cycles on every connection: exact");
    }

    #[test]
    fn names_weights_and_counts_are_checked() {
        let bad = |entries: Vec<MixEntry>| Mix::new(entries, MixOrder::RoundRobin).unwrap_err().0;
        assert!(bad(vec![]).contains("at least one"));
        assert!(bad(vec![entry("a", 0)]).contains("out of range"));
        assert!(bad(vec![entry("a", MAX_WEIGHT + 1)]).contains("out of range"));
        assert!(bad(vec![entry("a", 1), entry("a", 2)]).contains("twice"));
        assert!(bad(vec![entry("9a", 1)]).contains("not a mix name"));
        assert!(bad((0..=MAX_NAMES).map(|i| entry(&format!("n{i}"), 1)).collect()).contains("at most 64"));
        assert!(Mix::new((0..MAX_NAMES).map(|i| entry(&format!("n{i}"), 1)).collect(), MixOrder::RoundRobin).is_ok());
    }

    #[test]
    fn a_name_is_a_letter_or_underscore_then_word_characters() {
        for good in ["get", "_x", "a.b-c_9", "GET"] {
            assert!(is_name(good), "{good}");
        }
        for bad in ["", "9a", "-a", "a b", "a=b", "a:b", "é"] {
            assert!(!is_name(bad), "{bad}");
        }
    }
}
