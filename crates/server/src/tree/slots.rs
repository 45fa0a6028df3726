//! A persistent map from 64-bit slot keys to values, for the path index and the
//! children sets (docs/STORAGE.md §10).
//!
//! The keys are hashes (uniformly spread), so the map is a directory of `2^depth`
//! buckets by the keys' top `depth` bits, each bucket a sorted array of `(key, value)`
//! in one shared allocation (`Arc<[_]>`). Cloning copies one pointer (O(1)); a change
//! copies the directory if a clone shares it (8-16 bytes per bucket, once per clone) and
//! the one bucket it touches (~16-32 entries). The directory doubles when the map holds
//! more than [`MAX_AVG`] entries per bucket on average (every bucket is split then: a
//! one-time O(n) copy, as a hash table's resize). Iteration is in key order.
//!
//! Compared with the persistent B-tree it replaces (`imbl::OrdMap`, leaves of 16
//! entries about 70 % full plus branches): ~17 bytes per 16-byte entry instead of ~25,
//! and a sorted list of entries is turned into a map in O(n) ([`SlotMap::from_sorted`]),
//! which is how a snapshot load builds the index. ZooKeeper's equivalent is the
//! `ConcurrentHashMap` of `DataTree.nodes` (not persistent: ZooKeeper's snapshots are
//! taken while the map changes).

use std::sync::Arc;

/// Average entries per bucket above which the directory doubles.
const MAX_AVG: usize = 32;
/// Average entries per bucket a bulk-built map aims at (like a map that just doubled).
const BULK_AVG: usize = 24;

/// One bucket: sorted by key, never empty (`None` in the directory instead).
type Bucket<V> = Option<Arc<[(u64, V)]>>;

/// See the module doc.
#[derive(Clone)]
pub(crate) struct SlotMap<V> {
    dir: Arc<Vec<Bucket<V>>>,
    depth: u32,
    len: usize,
}

impl<V> Default for SlotMap<V> {
    fn default() -> Self {
        SlotMap {
            dir: Arc::new(vec![None]),
            depth: 0,
            len: 0,
        }
    }
}

impl<V: Clone + Default> SlotMap<V> {
    pub(crate) fn new() -> SlotMap<V> {
        SlotMap::default()
    }

    fn bucket_of(&self, key: u64) -> usize {
        if self.depth == 0 {
            0
        } else {
            (key >> (64 - self.depth)) as usize
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn get(&self, key: u64) -> Option<&V> {
        let b = self.dir.get(self.bucket_of(key))?.as_deref()?;
        let i = Self::position(self.depth, b, key).ok()?;
        Some(&b[i].1)
    }

    /// Where `key` is in bucket `b`, as `slice::binary_search` answers (`Err`: where it
    /// would go). The keys below a bucket's `depth` bits are uniform hashes, so the
    /// key's rank is close to its share of the key space: the search starts there and
    /// steps to it (about two entries away on average, in one or two cache lines) where
    /// a binary search of a 32-entry bucket touches five lines that a large tree rarely
    /// has in cache. Larger buckets (only from skewed keys) are searched in halves.
    fn position(depth: u32, b: &[(u64, V)], key: u64) -> Result<usize, usize> {
        let n = b.len();
        if n > MAX_AVG * 4 {
            return b.binary_search_by_key(&key, |e| e.0);
        }
        let below = key.checked_shl(depth).unwrap_or(0);
        let mut i = ((u128::from(below) * n as u128) >> 64) as usize;
        debug_assert!(i < n.max(1));
        // Up past smaller keys, or else down past keys not smaller (at most one moves).
        while i < n && b[i].0 < key {
            i += 1;
        }
        while i > 0 && b[i - 1].0 >= key {
            i -= 1;
        }
        debug_assert_eq!(i, b.partition_point(|e| e.0 < key), "interpolated position");
        if i < n && b[i].0 == key {
            Ok(i)
        } else {
            Err(i)
        }
    }

    /// The directory entry of `key` for changing: the directory is copied first when a
    /// clone shares it (the buckets are not: see [`SlotMap::spliced`] and `get_mut`).
    fn slot_mut(&mut self, key: u64) -> &mut Bucket<V> {
        let i = self.bucket_of(key);
        &mut Arc::make_mut(&mut self.dir)[i]
    }

    /// `b[..i]`, then `entry`, then `b[i + skip..]`, as a new bucket (one allocation).
    /// When no clone shares `b` its values are moved out (`mem::take` leaves
    /// `V::default()` behind, for the path index a tombstone: no node's reference count
    /// moves, and dropping the old bucket drops only defaults); when one does, they are
    /// cloned and `b` is left as it was.
    fn spliced(
        b: &mut Arc<[(u64, V)]>,
        i: usize,
        entry: Option<(u64, V)>,
        skip: usize,
    ) -> Arc<[(u64, V)]> {
        debug_assert!(i + skip <= b.len());
        match Arc::get_mut(b) {
            Some(m) => {
                let (head, tail) = m.split_at_mut(i);
                let take = |e: &mut (u64, V)| (e.0, std::mem::take(&mut e.1));
                head.iter_mut()
                    .map(take)
                    .chain(entry)
                    .chain(tail[skip..].iter_mut().map(take))
                    .collect()
            }
            None => b[..i]
                .iter()
                .cloned()
                .chain(entry)
                .chain(b[i + skip..].iter().cloned())
                .collect(),
        }
    }

    pub(crate) fn get_mut(&mut self, key: u64) -> Option<&mut V> {
        // Look first, so that a miss copies nothing.
        self.get(key)?;
        let depth = self.depth;
        let b = Arc::make_mut(self.slot_mut(key).as_mut()?);
        let i = Self::position(depth, b, key).ok()?;
        Some(&mut b[i].1)
    }

    /// Inserts or replaces; the old value.
    pub(crate) fn insert(&mut self, key: u64, value: V) -> Option<V> {
        let depth = self.depth;
        let slot = self.slot_mut(key);
        let old = match slot {
            None => {
                *slot = Some(Arc::from([(key, value)]));
                None
            }
            Some(b) => match Self::position(depth, b, key) {
                Ok(i) => Some(std::mem::replace(&mut Arc::make_mut(b)[i].1, value)),
                Err(i) => {
                    *b = Self::spliced(b, i, Some((key, value)), 0);
                    None
                }
            },
        };
        if old.is_none() {
            self.len += 1;
            if self.len > MAX_AVG << self.depth && self.depth < 40 {
                self.grow();
            }
        }
        old
    }

    pub(crate) fn remove(&mut self, key: u64) -> Option<V> {
        self.get(key)?;
        let depth = self.depth;
        let slot = self.slot_mut(key);
        let b = slot.as_mut()?;
        let i = Self::position(depth, b, key).ok()?;
        let old = match Arc::get_mut(b) {
            Some(m) => std::mem::take(&mut m[i].1),
            None => b[i].1.clone(),
        };
        if b.len() == 1 {
            *slot = None;
        } else {
            *b = Self::spliced(b, i, None, 1);
        }
        self.len -= 1;
        Some(old)
    }

    /// Doubles the directory, splitting every bucket by the next key bit.
    fn grow(&mut self) {
        let depth = self.depth + 1;
        let mut dir: Vec<Bucket<V>> = Vec::with_capacity(1 << depth);
        let bit = 1u64 << (64 - depth);
        // Unshared buckets are moved into their halves, shared ones cloned.
        for b in Arc::make_mut(&mut self.dir).iter_mut() {
            match b {
                None => {
                    dir.push(None);
                    dir.push(None);
                }
                Some(b) => {
                    let split = b.partition_point(|e| e.0 & bit == 0);
                    let len = b.len();
                    let high = (split < len).then(|| Self::spliced(b, 0, None, split));
                    dir.push((split > 0).then(|| Self::spliced(b, split, None, len - split)));
                    dir.push(high);
                }
            }
        }
        self.dir = Arc::new(dir);
        self.depth = depth;
    }

    /// A map of `entries`, which must be sorted by key with no key twice (debug builds
    /// check it). O(n).
    pub(crate) fn from_sorted(entries: Vec<(u64, V)>) -> SlotMap<V> {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        let len = entries.len();
        let mut depth = 0u32;
        while len > BULK_AVG << depth && depth < 40 {
            depth += 1;
        }
        let mut dir: Vec<Bucket<V>> = Vec::with_capacity(1 << depth);
        // One pass, moving the entries (no reference count changes).
        let mut bucket: Vec<(u64, V)> = Vec::new();
        let mut current = 0usize;
        let close = |dir: &mut Vec<Bucket<V>>, bucket: &mut Vec<(u64, V)>| {
            dir.push((!bucket.is_empty()).then(|| Arc::from(std::mem::take(bucket))));
        };
        for e in entries {
            let b = if depth == 0 {
                0
            } else {
                (e.0 >> (64 - depth)) as usize
            };
            while current < b {
                close(&mut dir, &mut bucket);
                current += 1;
            }
            bucket.push(e);
        }
        while dir.len() < 1 << depth {
            close(&mut dir, &mut bucket);
        }
        SlotMap {
            dir: Arc::new(dir),
            depth,
            len,
        }
    }

    /// A lookup for keys asked in ascending order ([`SortedLookup`]).
    pub(crate) fn sorted_lookup(&self) -> SortedLookup<'_, V> {
        SortedLookup {
            map: self,
            bucket: usize::MAX,
            at: 0,
            #[cfg(debug_assertions)]
            last: None,
        }
    }

    /// Every entry, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &V)> + '_ {
        self.dir
            .iter()
            .flat_map(|b| b.iter().flat_map(|b| b.iter().map(|(k, v)| (*k, v))))
    }

    /// Every key, in order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// Whether a clone shares the directory or any bucket (a change would copy them).
    #[cfg(test)]
    pub(crate) fn is_shared(&self) -> bool {
        Arc::strong_count(&self.dir) > 1
            || self.dir.iter().flatten().any(|b| Arc::strong_count(b) > 1)
    }
}

/// Looks up keys asked in ascending order, each search in a bucket going on from where
/// the one before it ended: walking a children set (its keys come in order) through the
/// path index then reads each bucket once, front to back, instead of searching it
/// afresh for every child (a snapshot of 1 M znodes under one parent does 1 M lookups).
pub(crate) struct SortedLookup<'a, V> {
    map: &'a SlotMap<V>,
    /// The bucket of the last key asked (`usize::MAX`: none yet).
    bucket: usize,
    /// Where in that bucket the last search ended: every key before it is smaller.
    at: usize,
    #[cfg(debug_assertions)]
    last: Option<u64>,
}

impl<'a, V: Clone + Default> SortedLookup<'a, V> {
    /// The value of `key`, which must be greater than every key asked before (debug
    /// builds check it; a smaller one may be missed).
    pub(crate) fn get(&mut self, key: u64) -> Option<&'a V> {
        #[cfg(debug_assertions)]
        {
            debug_assert!(self.last.is_none_or(|l| l < key), "keys asked in order");
            self.last = Some(key);
        }
        let map = self.map;
        let i = map.bucket_of(key);
        let b = map.dir.get(i)?.as_deref()?;
        if i != self.bucket {
            self.bucket = i;
            self.at = match SlotMap::position(map.depth, b, key) {
                Ok(at) | Err(at) => at,
            };
        } else {
            while self.at < b.len() && b[self.at].0 < key {
                self.at += 1;
            }
        }
        debug_assert_eq!(self.at, b.partition_point(|e| e.0 < key));
        b.get(self.at).filter(|e| e.0 == key).map(|e| &e.1)
    }
}

impl<V> std::fmt::Debug for SlotMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotMap")
            .field("len", &self.len)
            .field("depth", &self.depth)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Random-ish keys (a 64-bit mix), some sharing top bits.
    fn key(i: u64) -> u64 {
        let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 29;
        x.wrapping_mul(0xBF58_476D_1CE4_E5B9)
    }

    fn same(m: &SlotMap<u64>, r: &BTreeMap<u64, u64>) {
        assert_eq!(m.len(), r.len());
        let got: Vec<(u64, u64)> = m.iter().map(|(k, v)| (k, *v)).collect();
        let want: Vec<(u64, u64)> = r.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(got, want);
        for (k, v) in r {
            assert_eq!(m.get(*k), Some(v));
        }
    }

    /// The search starts where a uniform key would be; keys that are not uniform
    /// (runs of neighbours, as probing makes, and buckets past the size where the
    /// search halves instead) must be found all the same, and absent ones not.
    #[test]
    fn skewed_keys_are_found_as_uniform_ones() {
        let mut m = SlotMap::new();
        let mut r = BTreeMap::new();
        let runs = [0u64, 1 << 62, u64::MAX - 300, key(7)];
        for (n, base) in runs.iter().enumerate() {
            // One run grows past the halving threshold; the others stay small.
            let count = if n == 0 { 3 * MAX_AVG as u64 * 4 } else { 40 };
            for i in 0..count {
                let k = base.wrapping_add(i * 2);
                m.insert(k, i);
                r.insert(k, i);
            }
        }
        same(&m, &r);
        for base in runs {
            for i in 0..50u64 {
                let odd = base.wrapping_add(i * 2 + 1);
                assert_eq!(m.get(odd), r.get(&odd), "{odd:#x}");
            }
        }
        for (i, k) in r
            .keys()
            .copied()
            .collect::<Vec<_>>()
            .into_iter()
            .enumerate()
        {
            if i % 3 == 0 {
                assert_eq!(m.remove(k), r.remove(&k));
            }
        }
        same(&m, &r);
    }

    /// Ascending keys asked through a sorted lookup get what `get` gets: present and
    /// absent keys, dense runs (every key of a bucket, as a parent holding most of the
    /// tree asks) and sparse ones (a bucket skipped, a bucket asked once).
    #[test]
    fn a_sorted_lookup_finds_what_get_finds() {
        let mut m = SlotMap::new();
        for i in 0..4000u64 {
            m.insert(key(i), i);
        }
        // A skewed run too (probing's neighbours, a bucket over the halving size).
        for i in 0..(MAX_AVG as u64 * 5) {
            m.insert((1 << 62) + 2 * i, i);
        }
        let mut all: Vec<u64> = m.keys().collect();
        // Absent keys in between (odd neighbours of the run, and key + 1 elsewhere).
        all.extend(m.keys().map(|k| k.wrapping_add(1)).collect::<Vec<_>>());
        all.sort_unstable();
        all.dedup();
        for step in [1usize, 2, 7, 97, 1000] {
            let mut look = m.sorted_lookup();
            let mut asked = 0;
            for &k in all.iter().step_by(step) {
                assert_eq!(look.get(k), m.get(k), "{k:#x}, every {step}th key");
                asked += 1;
            }
            assert!(asked > 0);
        }
        // An empty map and buckets that are `None`.
        let empty: SlotMap<u64> = SlotMap::new();
        assert_eq!(empty.sorted_lookup().get(5), None);
    }

    #[test]
    fn behaves_as_an_ordered_map_through_growth_and_removal() {
        let mut m = SlotMap::new();
        let mut r = BTreeMap::new();
        for i in 0..5000u64 {
            assert_eq!(m.insert(key(i), i), r.insert(key(i), i));
            if i % 7 == 0 {
                assert_eq!(m.insert(key(i / 2), i), r.insert(key(i / 2), i));
            }
            if i % 5 == 0 {
                assert_eq!(m.remove(key(i / 3)), r.remove(&key(i / 3)));
            }
        }
        assert!(m.depth >= 6, "the directory grew: depth {}", m.depth);
        same(&m, &r);
        assert_eq!(m.remove(12345), None);
        assert!(m.get_mut(12345).is_none());
        *m.get_mut(key(4999)).expect("present") = 1;
        r.insert(key(4999), 1);
        same(&m, &r);
        // edge keys: 0 and all ones, top bits of every kind
        for k in [0, u64::MAX, 1 << 63, (1 << 63) - 1] {
            m.insert(k, 9);
            r.insert(k, 9);
        }
        same(&m, &r);
    }

    #[test]
    fn clones_do_not_see_later_changes() {
        let mut m = SlotMap::new();
        for i in 0..1000u64 {
            m.insert(key(i), i);
        }
        let snap = m.clone();
        let before: Vec<(u64, u64)> = snap.iter().map(|(k, v)| (k, *v)).collect();
        for i in 0..500u64 {
            *m.get_mut(key(i)).expect("present") += 1;
            m.remove(key(i + 500));
            m.insert(key(i + 2000), i);
        }
        let after: Vec<(u64, u64)> = snap.iter().map(|(k, v)| (k, *v)).collect();
        assert_eq!(before, after);
        assert_eq!(snap.len(), 1000);
        assert_eq!(m.len(), 1000);
        assert_eq!(m.get(key(3)), Some(&4));
    }

    #[test]
    fn bulk_built_maps_equal_inserted_ones_and_keep_working() {
        for n in [0u64, 1, 5, 24, 25, 100, 3000] {
            let mut r = BTreeMap::new();
            for i in 0..n {
                r.insert(key(i), i);
            }
            let mut m = SlotMap::from_sorted(r.iter().map(|(k, v)| (*k, *v)).collect());
            same(&m, &r);
            for i in n..n + 200 {
                m.insert(key(i), i);
                r.insert(key(i), i);
            }
            same(&m, &r);
        }
    }

    /// The whole map equals `r` (so a default left behind by a move would show as an
    /// entry) and `len` counts what `iter` yields.
    fn exact(m: &SlotMap<Option<Arc<u64>>>, r: &BTreeMap<u64, u64>, what: &str) {
        let got: Vec<(u64, Option<u64>)> =
            m.iter().map(|(k, v)| (k, v.as_deref().copied())).collect();
        let want: Vec<(u64, Option<u64>)> = r.iter().map(|(k, v)| (*k, Some(*v))).collect();
        assert_eq!(got, want, "{what}");
        assert_eq!(m.len(), want.len(), "{what}: len");
    }

    /// Values moved out of unshared buckets (insert, remove, growth) are neither lost,
    /// duplicated nor taken from a clone: every value's reference count equals the maps
    /// holding it, and a clone taken midway keeps its values (not the defaults a move
    /// leaves behind).
    #[test]
    fn moves_keep_every_value_once_and_leave_clones_alone() {
        type V = Option<Arc<u64>>;
        let values: Vec<Arc<u64>> = (0..4000u64).map(|i| Arc::new(i + 1)).collect();
        let mut m: SlotMap<V> = SlotMap::new();
        let mut r: BTreeMap<u64, u64> = BTreeMap::new();
        let mut snap: Option<(SlotMap<V>, BTreeMap<u64, u64>)> = None;
        for i in 0..4000u64 {
            let v = &values[i as usize];
            m.insert(key(i), Some(v.clone()));
            r.insert(key(i), **v);
            if i % 3 == 0 {
                let gone = m.remove(key(i / 2)).map(|v| v.map(|v| *v));
                assert_eq!(gone, r.remove(&key(i / 2)).map(Some));
            }
            if i % 11 == 0 {
                let old = m.insert(key(i / 4), Some(values[(i / 5) as usize].clone()));
                let want = r.insert(key(i / 4), *values[(i / 5) as usize]);
                assert_eq!(old.map(|v| v.map(|v| *v)), want.map(Some));
            }
            if i == 2500 {
                snap = Some((m.clone(), r.clone()));
            }
        }
        exact(&m, &r, "map");
        let (s, sr) = snap.expect("taken");
        exact(&s, &sr, "clone");
        for (i, v) in values.iter().enumerate() {
            let held = [&m, &s]
                .iter()
                .flat_map(|m| m.iter())
                .filter(|(_, x)| x.as_ref().is_some_and(|x| Arc::ptr_eq(x, v)))
                .count();
            assert_eq!(Arc::strong_count(v), 1 + held, "value {i}");
        }
    }

    /// After every change the map holds exactly the reference's entries (no default a
    /// move left behind shows as an entry, `len` counts what `iter` yields), and clones
    /// taken at every growth boundary (the directory shared while it doubles), and every
    /// few hundred changes, keep exactly their entries whatever the map does later,
    /// `get_mut` included.
    #[test]
    fn no_default_shows_and_clones_survive_growth_and_get_mut() {
        type V = Option<Arc<u64>>;
        let mut m: SlotMap<V> = SlotMap::new();
        let mut r: BTreeMap<u64, u64> = BTreeMap::new();
        let mut clones: Vec<(SlotMap<V>, BTreeMap<u64, u64>)> = Vec::new();
        for i in 0..6000u64 {
            // a clone right before the insert that doubles the directory
            if m.len() == MAX_AVG << m.depth || i % 397 == 0 {
                clones.push((m.clone(), r.clone()));
            }
            let depth = m.depth;
            let old = m.insert(key(i), Some(Arc::new(i)));
            assert_eq!(old.map(|v| v.map(|v| *v)), r.insert(key(i), i).map(Some));
            if m.depth != depth {
                exact(&m, &r, "right after growth");
            }
            if i % 3 == 0 {
                let k = key(i / 2);
                let gone = m.remove(k).map(|v| v.map(|v| *v));
                assert_eq!(gone, r.remove(&k).map(Some), "remove {i}");
                // removing again finds nothing (no default left under the key)
                assert!(
                    m.remove(k).is_none() && m.get(k).is_none(),
                    "removed key {i} still there"
                );
            }
            if i % 5 == 0 {
                let k = key(i / 3);
                match m.get_mut(k) {
                    Some(v) => {
                        *v = Some(Arc::new(i + 1_000_000));
                        assert!(
                            r.insert(k, i + 1_000_000).is_some(),
                            "get_mut found a removed key"
                        );
                    }
                    None => assert!(!r.contains_key(&k), "get_mut missed key {k}"),
                }
            }
            if i % 101 == 0 {
                exact(&m, &r, "periodic");
            }
        }
        exact(&m, &r, "end");
        assert!(
            clones.len() > 15 && m.depth >= 7,
            "{} clones, depth {}",
            clones.len(),
            m.depth
        );
        for (n, (c, cr)) in clones.iter().enumerate() {
            exact(c, cr, &format!("clone {n}"));
        }
        // and the clones still work as maps of their own
        let (mut c, mut cr) = clones.swap_remove(3);
        for i in 0..3000u64 {
            c.insert(key(i + 50_000), Some(Arc::new(i)));
            cr.insert(key(i + 50_000), i);
            if i % 2 == 0 {
                assert_eq!(
                    c.remove(key(i)).map(|v| v.map(|v| *v)),
                    cr.remove(&key(i)).map(Some)
                );
            }
        }
        exact(&c, &cr, "changed clone");
        exact(&m, &r, "map after its clone changed");
    }

    /// A key from one of a few narrow spots of the key space (a run at the bottom, one
    /// at the top whose neighbours wrap, one that a bucket holds past the halving size,
    /// and uniform keys), as probing and skewed hashes make them.
    fn spot_key(spot: u8, off: u64) -> u64 {
        match spot % 4 {
            0 => off % 600,
            1 => u64::MAX - off % 600,
            2 => (1 << 62) + 2 * (off % 400),
            _ => key(off),
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Through random inserts and removals (growth, emptied buckets, skewed runs),
        /// a sorted lookup over any ascending set of keys (present ones, their removed
        /// or absent neighbours, a random subset) answers as `get`, and the keys are
        /// iterated in strictly ascending order.
        #[test]
        fn a_sorted_lookup_answers_as_get_through_changes(
            ops in proptest::collection::vec((0u8..4, 0u64..4000, 0u8..5), 1..2500),
            asked in proptest::collection::vec((0u8..4, 0u64..4000), 0..300),
            every in 1usize..5,
        ) {
            let mut m = SlotMap::new();
            let mut r = BTreeMap::new();
            let mut snap = None;
            for (n, &(spot, off, op)) in ops.iter().enumerate() {
                let k = spot_key(spot, off);
                if op == 0 {
                    proptest::prop_assert_eq!(m.remove(k), r.remove(&k));
                } else {
                    proptest::prop_assert_eq!(m.insert(k, off), r.insert(k, off));
                }
                if n == ops.len() / 2 {
                    // A clone shares the buckets: later changes copy them.
                    snap = Some(m.clone());
                }
            }
            let keys: Vec<u64> = m.keys().collect();
            proptest::prop_assert!(keys.windows(2).all(|w| w[0] < w[1]), "keys in order");
            proptest::prop_assert_eq!(keys.len(), m.len());
            for map in std::iter::once(&m).chain(snap.as_ref()) {
                let mut want: Vec<u64> = map
                    .keys()
                    .flat_map(|k| [k.wrapping_sub(1), k, k.wrapping_add(1)])
                    .chain(asked.iter().map(|&(s, o)| spot_key(s, o)))
                    .chain([0, u64::MAX])
                    .collect();
                want.sort_unstable();
                want.dedup();
                let mut look = map.sorted_lookup();
                for &k in want.iter().step_by(every) {
                    proptest::prop_assert_eq!(look.get(k), map.get(k), "{:#x}", k);
                }
            }
        }
    }
}
