//! Reference-counted ACL cache: every distinct ACL list gets an index (docs/STORAGE.md
//! §4 "ACL cache"); nodes store the index. Must never reuse an index for a different
//! list while it is referenced. Its maps are persistent (`imbl`) so that cloning the
//! tree stays O(1).

use rzk_proto::records::Acl;
use rzk_proto::Jute;
use std::sync::Arc;

/// Index meaning `[ALL, world:anyone]`, never stored in the map.
pub const OPEN_ACL_INDEX: i64 = -1;

/// The widest index this cache gives out: a node holds its ACL index in 32 bits
/// (`tree/node.rs`).
pub const MAX_INDEX: i64 = i32::MAX as i64;

#[derive(Debug, Clone)]
struct Entry {
    acl: Arc<Vec<Acl>>,
    refs: u64,
}

/// The cache.
#[derive(Debug, Clone)]
pub struct AclCache {
    /// Sorted by index (snapshots write them in that order).
    by_index: imbl::OrdMap<i64, Entry>,
    /// Jute encoding of a list -> its index.
    by_bytes: imbl::HashMap<Arc<[u8]>, i64>,
    last_index: i64,
    open: Arc<Vec<Acl>>,
    empty: Arc<Vec<Acl>>,
}

impl Default for AclCache {
    fn default() -> Self {
        AclCache {
            by_index: imbl::OrdMap::new(),
            by_bytes: imbl::HashMap::new(),
            last_index: 0,
            open: Arc::new(Acl::open_unsafe()),
            empty: Arc::new(Vec::new()),
        }
    }
}

/// The cache key of a list: its jute encoding (as `Vec<Acl>::to_bytes`), written
/// without cloning the list first.
fn key_of(acl: &[Acl]) -> Vec<u8> {
    let mut key = Vec::with_capacity(KEY_CAPACITY);
    (acl.len() as i32).write(&mut key);
    for a in acl {
        a.write(&mut key);
    }
    key
}

/// Initial key buffer size: a one-entry list such as `world:anyone` fits.
const KEY_CAPACITY: usize = 64;

impl AclCache {
    /// Index for `acl`, adding one reference.
    pub fn add(&mut self, acl: &[Acl]) -> i64 {
        let key = key_of(acl);
        let idx = match self.by_bytes.get(key.as_slice()) {
            Some(i) => *i,
            None => {
                let i = self.next_free_index();
                self.by_bytes.insert(Arc::from(key), i);
                self.by_index.insert(
                    i,
                    Entry {
                        acl: Arc::new(acl.to_vec()),
                        refs: 0,
                    },
                );
                i
            }
        };
        if let Some(e) = self.by_index.get_mut(&idx) {
            e.refs += 1;
        }
        idx
    }

    /// The index for a new list: the one after the last given out, or, past
    /// [`MAX_INDEX`] (a snapshot can name any index up to `i64::MAX`, e.g. one written by
    /// ZooKeeper, whose nodes hold `long` indexes), the first free one from 1 on. Indexes
    /// never appear in txns, only in this server's tree and snapshots, so starting again
    /// from 1 is safe; a node could not hold a wider one.
    fn next_free_index(&mut self) -> i64 {
        let mut i = self.last_index;
        loop {
            i = if (1..MAX_INDEX).contains(&i) {
                i + 1
            } else {
                1
            };
            if !self.by_index.contains_key(&i) {
                self.last_index = i;
                debug_assert!((1..=MAX_INDEX).contains(&i));
                return i;
            }
        }
    }

    /// Adds a reference to an existing index (no-op for unknown / open).
    pub fn add_usage(&mut self, idx: i64) {
        if let Some(e) = self.by_index.get_mut(&idx) {
            e.refs += 1;
        }
    }

    /// Adds `n` references at once (a snapshot load counts them first).
    pub fn add_usages(&mut self, idx: i64, n: u64) {
        if let Some(e) = self.by_index.get_mut(&idx) {
            e.refs += n;
        }
    }

    /// Drops a reference; the entry goes when none are left.
    pub fn remove_usage(&mut self, idx: i64) {
        let gone = match self.by_index.get_mut(&idx) {
            Some(e) => {
                e.refs = e.refs.saturating_sub(1);
                e.refs == 0
            }
            None => false,
        };
        if gone {
            if let Some(e) = self.by_index.remove(&idx) {
                self.by_bytes.remove(key_of(&e.acl).as_slice());
            }
        }
    }

    /// The list for an index (`-1` = open; unknown indices read as empty = allow all,
    /// as ZooKeeper treats a missing list).
    pub fn get(&self, idx: i64) -> Arc<Vec<Acl>> {
        if idx == OPEN_ACL_INDEX {
            return self.open.clone();
        }
        match self.by_index.get(&idx) {
            Some(e) => e.acl.clone(),
            None => self.empty.clone(),
        }
    }

    pub fn contains(&self, idx: i64) -> bool {
        idx == OPEN_ACL_INDEX || self.by_index.contains_key(&idx)
    }

    /// Loads an entry from a snapshot (no references yet).
    pub fn insert_loaded(&mut self, idx: i64, acl: Vec<Acl>) {
        self.last_index = self.last_index.max(idx);
        self.by_bytes.insert(Arc::from(key_of(&acl)), idx);
        self.by_index.insert(
            idx,
            Entry {
                acl: Arc::new(acl),
                refs: 0,
            },
        );
    }

    /// Drops entries nobody references (after loading a snapshot).
    pub fn purge_unused(&mut self) {
        let unused: Vec<i64> = self
            .by_index
            .iter()
            .filter(|(_, e)| e.refs == 0)
            .map(|(i, _)| *i)
            .collect();
        for i in unused {
            if let Some(e) = self.by_index.remove(&i) {
                self.by_bytes.remove(key_of(&e.acl).as_slice());
            }
        }
    }

    /// Entries sorted by index.
    pub fn entries(&self) -> Vec<(i64, Vec<Acl>)> {
        self.by_index
            .iter()
            .map(|(i, e)| (*i, e.acl.as_ref().clone()))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.by_index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_index.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refcounting_and_indices() {
        let mut c = AclCache::default();
        let a = Acl::open_unsafe();
        let b = vec![Acl::new(1, "world", "anyone")];
        assert_eq!(c.add(&a), 1);
        assert_eq!(c.add(&b), 2);
        assert_eq!(c.add(&a), 1);
        c.remove_usage(1);
        assert!(c.contains(1));
        c.remove_usage(1);
        assert!(!c.contains(1));
        assert_eq!(c.add(&a), 3, "indices are not reused");
        assert_eq!(*c.get(-1), Acl::open_unsafe());
        assert_eq!(*c.get(2), b);
        assert_eq!(c.entries().len(), 2);
    }

    /// A snapshot may name indexes a node cannot hold (ZooKeeper's are `long`), unused
    /// and purged after the load; new lists still get indexes that fit, free ones, and
    /// the next index never overflows (a debug build panicked at `i64::MAX`; a release
    /// build handed out 2^31, which setACL then failed to store: a break-it review,
    /// session 57).
    #[test]
    fn indexes_past_what_a_node_holds_start_again_at_the_first_free_one() {
        for wide in [MAX_INDEX, MAX_INDEX + 1, i64::MAX] {
            let mut c = AclCache::default();
            let used = vec![Acl::new(1, "world", "anyone")];
            c.insert_loaded(1, used.clone());
            c.add_usage(1);
            c.insert_loaded(wide, vec![Acl::new(31, "digest", "u:x")]);
            c.purge_unused();
            assert!(!c.contains(wide));
            let fresh = vec![Acl::new(31, "digest", "v:y")];
            let i = c.add(&fresh);
            assert_eq!(i, 2, "after {wide}: the first free index");
            assert_eq!(*c.get(i), fresh);
            assert_eq!(*c.get(1), used);
            assert_eq!(c.add(&Acl::open_unsafe()), 3);
        }
    }

    #[test]
    fn key_is_the_lists_jute_encoding() {
        for acl in [
            Vec::new(),
            Acl::open_unsafe(),
            vec![
                Acl::new(1, "world", "anyone"),
                Acl::new(31, "digest", "u:x"),
            ],
        ] {
            assert_eq!(key_of(&acl), acl.to_bytes());
        }
    }
}
