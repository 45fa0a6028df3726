//! When to take a snapshot: ZooKeeper's randomised rule, consulted by the log pipeline
//! after each appended txn. A snapshot is due when the txns since the last one exceed
//! `snapCount/2 + randRoll` (randRoll uniform in `[0, snapCount/2)`), or the logged bytes
//! exceed `snapSizeLimit/2 + randSize` (randSize uniform in `[0, snapSizeLimit/2)`,
//! rule off when the limit is <= 0). Both random parts are re-drawn at every trigger, so
//! the servers of an ensemble do not all snapshot at once.
//!
//! Pure bookkeeping: it never rolls logs or writes snapshots itself.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// `zookeeper.snapCount` default.
pub const DEFAULT_SNAP_COUNT: u32 = 100_000;
/// `zookeeper.snapSizeLimitInKb` default (4 GiB).
pub const DEFAULT_SNAP_SIZE_LIMIT_KB: i64 = 4_194_304;
/// ZooKeeper raises smaller snapCount values to this.
pub const MIN_SNAP_COUNT: u32 = 2;

#[derive(Debug)]
pub struct SnapPolicy {
    snap_count: u32,
    size_limit_bytes: i64,
    rand_roll: u32,
    rand_size: i64,
    txns: u64,
    bytes: u64,
    rng: StdRng,
}

impl SnapPolicy {
    /// `snap_count` (`zookeeper.snapCount`, min 2) and `snap_size_limit_kb`
    /// (`zookeeper.snapSizeLimitInKb`, <= 0 disables the size rule).
    pub fn new(snap_count: u32, snap_size_limit_kb: i64) -> SnapPolicy {
        SnapPolicy::with_rng(snap_count, snap_size_limit_kb, StdRng::from_entropy())
    }

    /// Deterministic variant (tests, simulation).
    pub fn seeded(snap_count: u32, snap_size_limit_kb: i64, seed: u64) -> SnapPolicy {
        SnapPolicy::with_rng(snap_count, snap_size_limit_kb, StdRng::seed_from_u64(seed))
    }

    fn with_rng(snap_count: u32, snap_size_limit_kb: i64, rng: StdRng) -> SnapPolicy {
        let snap_count = if snap_count < MIN_SNAP_COUNT {
            tracing::warn!(snap_count, "snapCount should be 2 or more; using 2");
            MIN_SNAP_COUNT
        } else {
            snap_count
        };
        let mut p = SnapPolicy {
            snap_count,
            size_limit_bytes: snap_size_limit_kb.saturating_mul(1024),
            rand_roll: 0,
            rand_size: 0,
            txns: 0,
            bytes: 0,
            rng,
        };
        p.redraw();
        p
    }

    fn redraw(&mut self) {
        self.rand_roll = self.rng.gen_range(0..self.snap_count / 2);
        self.rand_size = if self.size_limit_bytes > 0 {
            self.rng.gen_range(0..(self.size_limit_bytes / 2).max(1))
        } else {
            0
        };
    }

    /// Records one appended txn of `framed_bytes`; true when a snapshot is due. Then the
    /// counters restart and the random parts are re-drawn; the caller rolls the log and
    /// starts a snapshot (skipping it if one is still being written).
    pub fn on_append(&mut self, framed_bytes: u64) -> bool {
        self.txns += 1;
        self.bytes += framed_bytes;
        if self.due() {
            self.redraw();
            self.reset_counts();
            true
        } else {
            false
        }
    }

    fn due(&self) -> bool {
        let by_count = self.txns > (self.snap_count / 2 + self.rand_roll) as u64;
        let by_size = self.size_limit_bytes > 0
            && self.bytes as i64 > self.size_limit_bytes / 2 + self.rand_size;
        by_count || by_size
    }

    /// The log was rolled for another reason (e.g. a learner's sync): counts restart.
    pub fn reset_counts(&mut self) {
        self.txns = 0;
        self.bytes = 0;
    }

    /// Current threshold on the txn count (`snapCount/2 + randRoll`).
    pub fn count_threshold(&self) -> u64 {
        (self.snap_count / 2 + self.rand_roll) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_between_half_and_full_snap_count() {
        for seed in 0..50 {
            let mut p = SnapPolicy::seeded(100, -1, seed);
            let mut gaps = Vec::new();
            let mut n = 0;
            for _ in 0..2000 {
                n += 1;
                if p.on_append(100) {
                    gaps.push(n);
                    n = 0;
                }
            }
            assert!(gaps.len() >= 20, "{gaps:?}");
            for g in gaps {
                assert!((51..=100).contains(&g), "gap {g}");
            }
        }
    }

    #[test]
    fn thresholds_are_redrawn() {
        let mut p = SnapPolicy::seeded(1000, -1, 7);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20_000 {
            if p.on_append(1) {
                seen.insert(p.count_threshold());
            }
        }
        assert!(seen.len() > 3);
    }

    #[test]
    fn size_rule_triggers_on_bytes() {
        // 1 KiB limit: due after more than 512 + [0, 512) bytes
        let mut p = SnapPolicy::seeded(1_000_000, 1, 3);
        let mut n = 0;
        while !p.on_append(100) {
            n += 1;
            assert!(n < 20);
        }
        assert!((5..=10).contains(&n), "{n}");
    }

    #[test]
    fn small_snap_count_is_raised_to_two() {
        let mut p = SnapPolicy::seeded(0, 0, 1);
        assert!(!p.on_append(1));
        assert!(p.on_append(1));
    }
}
