//! Lock-free summaries: ZooKeeper's `AvgMinMaxCounter` (count, sum, min, max) plus
//! quantiles from a fixed log-linear histogram of atomic buckets (ZooKeeper's
//! `AvgMinMaxPercentileCounter` keeps a sampled reservoir instead).
//!
//! Recording is two relaxed atomic additions (the sum and one bucket; the count is the
//! buckets' total) and two loads (min and max are written only when they change): no
//! lock, no allocation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Values below this are counted in buckets of their own.
const EXACT: u64 = 16;
/// Buckets per power of two above [`EXACT`] (relative error at most 1/16).
const SUB: u64 = 8;
/// The largest power of two with buckets of its own; larger values share the last one.
const TOP_BIT: u64 = 40;
const BUCKETS: usize = (EXACT + (TOP_BIT - 3) * SUB) as usize;

/// How much a summary reports, as ZooKeeper's `MetricsContext.DetailLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// avg, min, max, cnt, sum (Prometheus: the 0.5 quantile).
    Basic,
    /// Also p50, p95, p99, p999 (Prometheus: 0.5, 0.9, 0.99).
    Advanced,
}

/// The quantiles `mntr` prints for an advanced summary, with their key prefixes.
pub const MNTR_QUANTILES: [(&str, f64); 4] =
    [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)];

/// The quantiles the Prometheus endpoint exports (ZooKeeper's Prometheus provider).
pub fn prometheus_quantiles(detail: Detail) -> &'static [f64] {
    match detail {
        Detail::Basic => &[0.5],
        Detail::Advanced => &[0.5, 0.9, 0.99],
    }
}

/// One summary of non-negative integer samples (negative samples count as 0).
#[derive(Debug)]
pub struct Summary {
    detail: Detail,
    sum: AtomicI64,
    min: AtomicI64,
    max: AtomicI64,
    buckets: Box<[AtomicU64]>,
}

/// A consistent-enough copy of a summary for printing.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Samples recorded.
    pub count: u64,
    /// Their sum.
    pub sum: i64,
    /// Smallest sample (0 when none).
    pub min: i64,
    /// Largest sample (0 when none).
    pub max: i64,
    buckets: Vec<u64>,
}

fn bucket_of(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let bit = u64::from(63 - v.leading_zeros()).min(TOP_BIT);
    let sub = if bit == TOP_BIT && v >> TOP_BIT > 1 {
        SUB - 1
    } else {
        (v >> (bit - 3)) & (SUB - 1)
    };
    (EXACT + (bit - 4) * SUB + sub) as usize
}

/// The middle of bucket `i`'s value range.
fn bucket_value(i: usize) -> f64 {
    let i = i as u64;
    if i < EXACT {
        return i as f64;
    }
    let bit = (i - EXACT) / SUB + 4;
    let sub = (i - EXACT) % SUB;
    let width = 1u64 << (bit - 3);
    let low = (1u64 << bit) + sub * width;
    low as f64 + (width as f64 - 1.0) / 2.0
}

impl Summary {
    /// An empty summary.
    pub fn new(detail: Detail) -> Summary {
        Summary::with_buckets(detail, BUCKETS)
    }

    fn with_buckets(detail: Detail, n: usize) -> Summary {
        Summary {
            detail,
            sum: AtomicI64::new(0),
            min: AtomicI64::new(i64::MAX),
            max: AtomicI64::new(i64::MIN),
            buckets: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// An empty summary that keeps count, sum, min and max but no histogram: its
    /// quantiles are all its min. About 100 bytes instead of 2.5 KiB, for the members of
    /// a basic [`SummarySet`] while nothing asks for their quantiles.
    pub fn without_quantiles(detail: Detail) -> Summary {
        // One bucket: the count.
        Summary::with_buckets(detail, 1)
    }

    /// Its detail level.
    pub fn detail(&self) -> Detail {
        self.detail
    }

    /// Records one sample (ZooKeeper's `Summary.add`).
    #[inline]
    pub fn add(&self, v: i64) {
        let v = v.max(0);
        if v < self.min.load(Ordering::Relaxed) {
            self.min.fetch_min(v, Ordering::Relaxed);
        }
        if v > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(v, Ordering::Relaxed);
        }
        self.sum.fetch_add(v, Ordering::Relaxed);
        // Last: the count is the buckets' total.
        let i = if self.buckets.len() == BUCKETS {
            bucket_of(v as u64)
        } else {
            0
        };
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Records a duration in whole milliseconds, as ZooKeeper's timers do.
    #[inline]
    pub fn add_ms(&self, d: std::time::Duration) {
        self.add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    }

    /// Forgets every sample (`srst`).
    pub fn reset(&self) {
        self.sum.store(0, Ordering::Relaxed);
        self.min.store(i64::MAX, Ordering::Relaxed);
        self.max.store(i64::MIN, Ordering::Relaxed);
        for b in self.buckets.iter() {
            b.store(0, Ordering::Relaxed);
        }
    }

    /// A copy of the current values.
    pub fn snapshot(&self) -> Snapshot {
        let buckets: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count = buckets.iter().sum();
        let (min, max) = if count == 0 {
            (0, 0)
        } else {
            // (a racing first sample may not show its min/max yet)
            let min = self.min.load(Ordering::Relaxed);
            let max = self.max.load(Ordering::Relaxed);
            (if min == i64::MAX { 0 } else { min }, max.max(0))
        };
        Snapshot {
            count,
            sum: self.sum.load(Ordering::Relaxed),
            min,
            max,
            buckets,
        }
    }
}

impl Snapshot {
    /// The mean (0.0 when empty), rounded to 4 decimals as ZooKeeper's `getAvg`.
    pub fn avg(&self) -> f64 {
        crate::admin::number::zk_avg(self.sum as f64, self.count)
    }

    /// The `q` quantile estimated from the histogram (within 1/16 of the true value),
    /// kept within [min, max]; 0 when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        let total = self.count;
        if total == 0 {
            return 0.0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_value(i).clamp(self.min as f64, self.max as f64);
            }
        }
        self.max as f64
    }
}

/// Members a thread used last: (set id, key, member). Members are never removed from a
/// set and ids are never reused, so an entry is never wrong, at worst unused.
type Recent = Vec<(u64, Box<str>, Arc<Summary>)>;
static NEXT_SET_ID: AtomicU64 = AtomicU64::new(1);
const RECENT_MAX: usize = 32;

thread_local! {
    static RECENT: std::cell::RefCell<Recent> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Summaries by key (ZooKeeper's `SummarySet`: per namespace, per learner id).
///
/// Keys are never removed (as in ZooKeeper), and a set keyed by namespace gets one
/// member per top-level znode name ever written or read, so a member must be small:
/// members of a basic set keep no histogram ([`Summary::without_quantiles`]) unless
/// [`SummarySet::keep_quantiles`] was called (the Prometheus endpoint exports a basic
/// summary's median; `mntr` prints only avg, min, max, cnt and sum). Each member took
/// 2.5 KiB before (a code review, session 52: a million top-level names, 5 GB).
#[derive(Debug)]
pub struct SummarySet {
    id: u64,
    detail: Detail,
    /// Whether new members keep a histogram (always for an advanced set).
    quantiles: AtomicBool,
    members: RwLock<HashMap<Box<str>, Arc<Summary>>>,
}

impl SummarySet {
    /// An empty set.
    pub fn new(detail: Detail) -> SummarySet {
        SummarySet {
            id: NEXT_SET_ID.fetch_add(1, Ordering::Relaxed),
            detail,
            quantiles: AtomicBool::new(detail == Detail::Advanced),
            members: RwLock::new(HashMap::new()),
        }
    }

    /// Members created from now on keep a histogram: their quantiles are wanted (the
    /// Prometheus endpoint was started; it is, before any client connects).
    pub fn keep_quantiles(&self) {
        self.quantiles.store(true, Ordering::Relaxed);
    }

    /// Its detail level.
    pub fn detail(&self) -> Detail {
        self.detail
    }

    /// Records `v` under `key`. Each thread keeps its recently used members, so the
    /// usual case takes no lock; allocates only when a thread first meets a key.
    #[inline]
    pub fn add(&self, key: &str, v: i64) {
        let set = self.id;
        let hit = RECENT.with(|r| {
            let r = r.borrow();
            r.iter()
                .find(|(s, k, _)| *s == set && &**k == key)
                .map(|(_, _, m)| m.clone())
        });
        let member = match hit {
            Some(m) => m,
            None => {
                let m = self.member(key);
                RECENT.with(|r| {
                    let mut r = r.borrow_mut();
                    if r.len() >= RECENT_MAX {
                        r.remove(0);
                    }
                    r.push((set, key.into(), m.clone()));
                });
                m
            }
        };
        member.add(v);
    }

    /// The member for `key`, created on first use.
    fn member(&self, key: &str) -> Arc<Summary> {
        if let Ok(m) = self.members.read() {
            if let Some(s) = m.get(key) {
                return s.clone();
            }
        }
        match self.members.write() {
            Ok(mut m) => m
                .entry(key.into())
                .or_insert_with(|| Arc::new(self.new_member()))
                .clone(),
            // A poisoned map: count in a detached member rather than fail the request.
            Err(_) => Arc::new(self.new_member()),
        }
    }

    fn new_member(&self) -> Summary {
        if self.quantiles.load(Ordering::Relaxed) {
            Summary::new(self.detail)
        } else {
            Summary::without_quantiles(self.detail)
        }
    }

    /// (key, copy) of every member, sorted by key.
    pub fn snapshot(&self) -> Vec<(String, Snapshot)> {
        let mut v: Vec<(String, Snapshot)> = match self.members.read() {
            Ok(m) => m
                .iter()
                .map(|(k, s)| (k.to_string(), s.snapshot()))
                .collect(),
            Err(_) => Vec::new(),
        };
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Forgets every sample of every member (the keys stay, as in ZooKeeper).
    pub fn reset(&self) {
        if let Ok(m) = self.members.read() {
            for s in m.values() {
                s.reset();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_set_members_keep_no_histogram_until_quantiles_are_wanted() {
        let set = SummarySet::new(Detail::Basic);
        for v in [5, 1, 9] {
            set.add("a", v);
        }
        let a = set.member("a");
        assert_eq!(a.buckets.len(), 1, "a basic member without a histogram");
        let s = a.snapshot();
        assert_eq!((s.count, s.sum, s.min, s.max), (3, 15, 1, 9));
        assert_eq!(s.avg(), 5.0);
        set.reset();
        assert_eq!(set.member("a").snapshot().count, 0);

        set.keep_quantiles();
        for v in [5, 1, 9] {
            set.add("b", v);
        }
        let b = set.member("b").snapshot();
        assert_eq!(b.count, 3);
        assert_eq!(b.quantile(0.5), 5.0);
        assert_eq!(set.member("b").buckets.len(), BUCKETS);

        let adv = SummarySet::new(Detail::Advanced);
        adv.add("c", 7);
        assert_eq!(adv.member("c").buckets.len(), BUCKETS);
    }

    #[test]
    fn buckets_cover_the_range_in_order() {
        let mut last = 0;
        for v in (0..100_000u64).chain([1 << 39, (1 << 40) - 1, 1 << 40, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b >= last, "bucket of {v} went backwards");
            assert!(b < BUCKETS, "bucket of {v} out of range");
            last = b;
        }
        for v in [17u64, 100, 1000, 123_456] {
            let mid = bucket_value(bucket_of(v));
            assert!(
                (mid - v as f64).abs() / v as f64 <= 1.0 / 16.0,
                "{v} -> {mid}"
            );
        }
    }

    #[test]
    fn avg_min_max_and_quantiles() {
        let s = Summary::new(Detail::Advanced);
        assert_eq!(s.snapshot().avg(), 0.0);
        assert_eq!(s.snapshot().quantile(0.5), 0.0);
        for v in 1..=1000 {
            s.add(v);
        }
        let snap = s.snapshot();
        assert_eq!(
            (snap.count, snap.sum, snap.min, snap.max),
            (1000, 500_500, 1, 1000)
        );
        assert_eq!(snap.avg(), 500.5);
        let p50 = snap.quantile(0.5);
        assert!((470.0..=530.0).contains(&p50), "p50 {p50}");
        let p99 = snap.quantile(0.99);
        assert!((930.0..=1000.0).contains(&p99), "p99 {p99}");
        s.reset();
        assert_eq!(s.snapshot().count, 0);
    }

    #[test]
    fn the_thread_cache_never_mixes_sets_or_loses_samples() {
        let a = SummarySet::new(Detail::Basic);
        let b = SummarySet::new(Detail::Basic);
        for round in 0..3 {
            for i in 0..(RECENT_MAX + 8) {
                a.add(&format!("k{i}"), 1);
                if i % 2 == 0 {
                    b.add(&format!("k{i}"), 10);
                }
            }
            let (sa, sb) = (a.snapshot(), b.snapshot());
            assert_eq!(sa.len(), RECENT_MAX + 8);
            assert!(sa
                .iter()
                .all(|(_, s)| s.count == round + 1 && s.sum == round as i64 + 1));
            assert!(sb.iter().all(|(_, s)| s.sum == 10 * (round as i64 + 1)));
        }
    }

    #[test]
    fn sets_keep_members_apart() {
        let set = SummarySet::new(Detail::Basic);
        set.add("app", 10);
        set.add("app", 20);
        set.add("b", 1);
        let snap = set.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!(
            (snap[0].0.as_str(), snap[0].1.count, snap[0].1.sum),
            ("app", 2, 30)
        );
        set.reset();
        assert_eq!(set.snapshot()[0].1.count, 0);
    }
}
