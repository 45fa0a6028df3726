//! The compact znode and the path index (docs/STORAGE.md §10).
//!
//! A [`Node`] is ONE allocation: a reference count, a fixed header ([`Head`]: the
//! children set, the ACL index and the name length) and one byte slice holding the
//! node's stat in a variable-length form ([`stat_codec`]), its *name* (the last path
//! component; empty for the root) and its data. The handle is a
//! thin pointer (8 bytes) and clones share the allocation, so a tree clone taken for a
//! background snapshot shares every node; the applier copies a node only when it
//! changes one a clone still holds.
//!
//! The [`NodeMap`] finds nodes by a 64-bit hash of their full path: a persistent map
//! (`slots::SlotMap`: a directory of small sorted buckets) from *slot key* to node. A
//! path's slot is its hash, or the next free one after it when another path already
//! holds that hash (linear probing; a removal inside a probe run leaves a tombstone, so
//! nodes never move and lookups stop at the first empty slot). A parent's children set
//! holds its children's slot keys (8 bytes each), in a `SlotMap` too. A lookup goes down
//! from the root: a path's node is the one in its probe run that has its name *and*
//! is in its parent's children set (siblings have different names), so the node keeps
//! no parent pointer. The path hash is chained (a component's hash mixes its parent's),
//! so the hashes of every prefix cost one pass over the path.
//!
//! ZooKeeper's equivalent: `DataTree.nodes` (a hash map from full path to `DataNode`,
//! each holding its data array, stat, ACL index and a `HashSet` of child names).

use bytes::Bytes;
use rzk_proto::records::StatPersisted;
use rzk_proto::Data;
use std::fmt;
use std::hash::BuildHasher;
use triomphe::ThinArc;

use super::slots::SlotMap;

/// A node's children: the slot keys ([`NodeMap`]) of its children, in key (not name)
/// order.
pub(crate) type Children = SlotMap<()>;

/// Data up to this size is copied out of a node for a reply; larger data is handed out
/// as a view that keeps the node's allocation alive instead of being copied.
const COPY_LIMIT: usize = 1024;

/// The stat in a node's bytes: a flags byte, then `czxid` and `ctime` (always), then
/// only the fields that differ from what a node has when it is created and never
/// changed (`mzxid` = `pzxid` = `czxid`, `mtime` = `ctime`, versions 0, no owner),
/// little-endian. A fresh leaf's stat takes 17 bytes instead of 60; a changed one up to
/// 61. The flags byte also says whether the data is null.
mod stat_codec {
    use rzk_proto::records::StatPersisted;

    const MZXID: u8 = 1;
    const PZXID: u8 = 1 << 1;
    const MTIME: u8 = 1 << 2;
    const VERSION: u8 = 1 << 3;
    const CVERSION: u8 = 1 << 4;
    const AVERSION: u8 = 1 << 5;
    const OWNER: u8 = 1 << 6;
    /// Not a stat field: the node's data is null (not empty).
    pub(super) const NULL_DATA: u8 = 1 << 7;
    /// The longest encoding.
    #[cfg(test)]
    pub(super) const MAX: usize = 61;

    /// The flags byte of `s` (with [`NULL_DATA`] when `null`).
    pub(super) fn flags(s: &StatPersisted, null: bool) -> u8 {
        let mut f = 0;
        let mut set = |bit: u8, differs: bool| {
            if differs {
                f |= bit;
            }
        };
        set(MZXID, s.mzxid != s.czxid);
        set(PZXID, s.pzxid != s.czxid);
        set(MTIME, s.mtime != s.ctime);
        set(VERSION, s.version != 0);
        set(CVERSION, s.cversion != 0);
        set(AVERSION, s.aversion != 0);
        set(OWNER, s.ephemeral_owner != 0);
        set(NULL_DATA, null);
        f
    }

    /// Bytes the encoding with these flags takes (the flags byte included).
    pub(super) fn len(flags: u8) -> usize {
        let wide = (flags & (MZXID | PZXID | MTIME | OWNER)).count_ones() as usize;
        let narrow = (flags & (VERSION | CVERSION | AVERSION)).count_ones() as usize;
        1 + 16 + 8 * wide + 4 * narrow
    }

    /// Writes the encoding of `s` with `flags` (from [`flags`]) into `out`, which is
    /// exactly [`len`]`(flags)` long.
    pub(super) fn encode(s: &StatPersisted, flags: u8, out: &mut [u8]) {
        debug_assert_eq!(out.len(), len(flags));
        out[0] = flags;
        let mut at = 1;
        let mut put = |b: &[u8]| {
            out[at..at + b.len()].copy_from_slice(b);
            at += b.len();
        };
        put(&s.czxid.to_le_bytes());
        put(&s.ctime.to_le_bytes());
        let wide = [
            (MZXID, s.mzxid),
            (PZXID, s.pzxid),
            (MTIME, s.mtime),
            (OWNER, s.ephemeral_owner),
        ];
        for (bit, v) in wide {
            if flags & bit != 0 {
                put(&v.to_le_bytes());
            }
        }
        for (bit, v) in [
            (VERSION, s.version),
            (CVERSION, s.cversion),
            (AVERSION, s.aversion),
        ] {
            if flags & bit != 0 {
                put(&v.to_le_bytes());
            }
        }
    }

    /// The stat encoded at the start of `b` (written by [`encode`]).
    pub(super) fn decode(b: &[u8]) -> StatPersisted {
        let flags = b[0];
        let mut at = 1;
        let mut take = |n: usize| {
            at += n;
            &b[at - n..at]
        };
        let wide = |bytes: &[u8]| i64::from_le_bytes(bytes.try_into().unwrap_or_default());
        let czxid = wide(take(8));
        let ctime = wide(take(8));
        let mut s = StatPersisted {
            czxid,
            mzxid: czxid,
            ctime,
            mtime: ctime,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0,
            pzxid: czxid,
        };
        // In `encode`'s order.
        for (bit, field) in [
            (MZXID, &mut s.mzxid),
            (PZXID, &mut s.pzxid),
            (MTIME, &mut s.mtime),
            (OWNER, &mut s.ephemeral_owner),
        ] {
            if flags & bit != 0 {
                *field = wide(take(8));
            }
        }
        for (bit, field) in [
            (VERSION, &mut s.version),
            (CVERSION, &mut s.cversion),
            (AVERSION, &mut s.aversion),
        ] {
            if flags & bit != 0 {
                *field = i32::from_le_bytes(take(4).try_into().unwrap_or_default());
            }
        }
        s
    }
}

/// The fixed part of a node (16 bytes).
#[derive(Debug, Clone)]
pub(crate) struct Head {
    /// `None` for a node that never had children (most znodes: leaves).
    children: Option<Box<Children>>,
    /// ACL cache index (ZooKeeper's is a `long`; rzk's cache hands out small ones and a
    /// snapshot with an index beyond `i32` is refused when loaded).
    acl: i32,
    /// Length of the name after the stat; 0 only for the root.
    name_len: u32,
}

/// What a change to a node may touch (see [`Node::update`]): its stat, ACL index and
/// children set.
pub(crate) struct NodeEdit {
    /// The persisted stat (stored cversion).
    pub(crate) stat: StatPersisted,
    acl: i32,
    children: Option<Box<Children>>,
}

impl NodeEdit {
    /// Sets the ACL cache index; `false` (and no change) when it does not fit the node.
    pub(crate) fn set_acl(&mut self, acl: i64) -> bool {
        match i32::try_from(acl) {
            Ok(a) => {
                self.acl = a;
                true
            }
            Err(_) => false,
        }
    }

    /// The children set, created when first needed.
    pub(crate) fn children_mut(&mut self) -> &mut Children {
        self.children.get_or_insert_with(Box::default)
    }

    /// Adds a child's slot key.
    pub(crate) fn add_child(&mut self, key: u64) {
        self.children_mut().insert(key, ());
    }

    /// Removes a child's slot key (the set is dropped when it becomes empty).
    pub(crate) fn remove_child(&mut self, key: u64) {
        if let Some(c) = self.children.as_mut() {
            c.remove(key);
            if c.is_empty() {
                self.children = None;
            }
        }
    }

    /// Replaces the whole children set.
    pub(crate) fn set_children(&mut self, children: Children) {
        self.children = if children.is_empty() {
            None
        } else {
            Some(Box::new(children))
        };
    }
}

/// One znode (see the module doc). Cloning shares the allocation.
#[derive(Clone)]
pub(crate) struct Node(ThinArc<Head, u8>);

/// A node's data as a `Bytes` owner (a view into the node's allocation).
struct DataView(Node);

impl AsRef<[u8]> for DataView {
    fn as_ref(&self) -> &[u8] {
        self.0.data()
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name())
            .field("data_len", &self.data().len())
            .field("null", &self.data_is_null())
            .field("acl", &self.acl())
            .field("stat", &self.stat())
            .field("children", &self.num_children())
            .finish()
    }
}

impl Node {
    /// Whether an ACL index can be held by a node (see [`Head`]).
    pub(crate) fn acl_fits(acl: i64) -> bool {
        i32::try_from(acl).is_ok()
    }

    /// A new node named `name` (empty only for the root). `acl` must fit (checked by [`Node::acl_fits`]; out-of-range values are
    /// stored as the open ACL, -1, which callers prevent). Names are shorter than 4 GiB
    /// (the request size limit is far below).
    pub(crate) fn new(
        name: &str,
        data: Option<&[u8]>,
        acl: i64,
        stat: &StatPersisted,
        children: Option<Box<Children>>,
    ) -> Node {
        Node::build(
            name.as_bytes(),
            data,
            i32::try_from(acl).unwrap_or(-1),
            stat,
            children,
        )
    }

    fn build(
        name: &[u8],
        data: Option<&[u8]>,
        acl: i32,
        stat: &StatPersisted,
        children: Option<Box<Children>>,
    ) -> Node {
        let flags = stat_codec::flags(stat, data.is_none());
        let slen = stat_codec::len(flags);
        let head = Head {
            children,
            acl,
            name_len: u32::try_from(name.len()).unwrap_or(u32::MAX),
        };
        let d = data.unwrap_or(&[]);
        let total = slen + name.len() + d.len();
        let mut arc = ThinArc::from_header_and_iter(head, std::iter::repeat_n(0u8, total));
        arc.with_arc_mut(|a| {
            if let Some(inner) = triomphe::Arc::get_mut(a) {
                let s = inner.slice_mut();
                stat_codec::encode(stat, flags, &mut s[..slen]);
                s[slen..slen + name.len()].copy_from_slice(name);
                s[slen + name.len()..].copy_from_slice(d);
            }
        });
        debug_assert_eq!(arc.header.header.name_len as usize, name.len());
        Node(arc)
    }

    fn head(&self) -> &Head {
        &self.0.header.header
    }

    fn flags(&self) -> u8 {
        self.0.slice[0]
    }

    /// Where the name starts in the slice.
    fn name_at(&self) -> usize {
        stat_codec::len(self.flags())
    }

    /// The name as bytes (empty for the root).
    pub(crate) fn name_bytes(&self) -> &[u8] {
        let at = self.name_at();
        &self.0.slice[at..at + self.head().name_len as usize]
    }

    /// Asks the CPU to start loading the first `lines` 64-byte cache lines of the node's
    /// allocation (its header is in the first), so that a walk can have several nodes on
    /// their way from memory at once instead of waiting for each in turn. A hint: it
    /// reads nothing the program can see, and does nothing on other architectures.
    #[inline]
    pub(crate) fn prefetch(&self, lines: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let p = self.0.ptr().cast::<i8>();
            for line in 0..lines {
                // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 CPU has; a
                // prefetch never faults and has no effect on the program's state, whatever
                // the address; `wrapping_add` makes no claim about the address either.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(line * 64)) };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = lines;
    }

    /// The child name: the last component of the path (empty for the root).
    pub(crate) fn name(&self) -> &str {
        // Built from a `&str` in `new`; never fails.
        std::str::from_utf8(self.name_bytes()).unwrap_or_default()
    }

    /// Whether this is the root (the only node without a name).
    pub(crate) fn is_root(&self) -> bool {
        self.head().name_len == 0
    }

    /// Whether the node at slot `key` is one of this node's children.
    pub(crate) fn has_child(&self, key: u64) -> bool {
        self.head()
            .children
            .as_ref()
            .is_some_and(|c| c.get(key).is_some())
    }

    /// The data; null reads as empty.
    pub(crate) fn data(&self) -> &[u8] {
        &self.0.slice[self.name_at() + self.head().name_len as usize..]
    }

    pub(crate) fn data_is_null(&self) -> bool {
        self.flags() & stat_codec::NULL_DATA != 0
    }

    /// The data, `None` when null.
    pub(crate) fn data_opt(&self) -> Option<&[u8]> {
        (!self.data_is_null()).then(|| self.data())
    }

    /// The data as a value for a reply: a copy when small, else a view that keeps this
    /// node's allocation alive.
    pub(crate) fn data_value(&self) -> Data {
        match self.data_opt() {
            None => Data::NULL,
            Some(d) if d.len() <= COPY_LIMIT => Data::from(Bytes::copy_from_slice(d)),
            Some(_) => Data::from(Bytes::from_owner(DataView(self.clone()))),
        }
    }

    /// The persisted stat (stored cversion), decoded.
    pub(crate) fn stat(&self) -> StatPersisted {
        stat_codec::decode(&self.0.slice)
    }

    /// The ACL cache index.
    pub(crate) fn acl(&self) -> i64 {
        i64::from(self.head().acl)
    }

    pub(crate) fn num_children(&self) -> usize {
        self.head().children.as_ref().map_or(0, |c| c.len())
    }

    pub(crate) fn has_children(&self) -> bool {
        self.num_children() > 0
    }

    /// The children's slot keys.
    pub(crate) fn child_keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.head().children.iter().flat_map(|c| c.keys())
    }

    pub(super) fn is_unique(&self) -> bool {
        ThinArc::strong_count(&self.0) == 1
    }

    /// Changes the node: `f` edits its stat, ACL index and children, and `data`, when
    /// `Some`, replaces its data (`Some(None)`: null). Done in place when nothing shares
    /// the node and the stat's encoding and the data keep their lengths; otherwise the
    /// node is rebuilt in a new allocation (once), and a clone still holding the old one
    /// keeps seeing it unchanged.
    pub(crate) fn update<R>(
        &mut self,
        data: Option<Option<&[u8]>>,
        f: impl FnOnce(&mut NodeEdit) -> R,
    ) -> R {
        let unique = self.is_unique();
        let children = if unique {
            // Taken out of the header: put back or moved into the new node below.
            let mut taken = None;
            self.0.with_arc_mut(|a| {
                if let Some(inner) = triomphe::Arc::get_mut(a) {
                    taken = inner.header_mut().children.take();
                }
            });
            taken
        } else {
            self.head().children.clone()
        };
        let mut e = NodeEdit {
            stat: self.stat(),
            acl: self.head().acl,
            children,
        };
        let r = f(&mut e);
        let null = data.map_or(self.data_is_null(), |d| d.is_none());
        let flags = stat_codec::flags(&e.stat, null);
        let same_shape = stat_codec::len(flags) == stat_codec::len(self.flags())
            && data.is_none_or(|d| d.map_or(0, <[u8]>::len) == self.data().len());
        if unique && same_shape {
            let data_at = self.name_at() + self.head().name_len as usize;
            self.0.with_arc_mut(|a| {
                if let Some(inner) = triomphe::Arc::get_mut(a) {
                    let h = inner.header_mut();
                    h.acl = e.acl;
                    h.children = e.children.take();
                    let s = inner.slice_mut();
                    stat_codec::encode(&e.stat, flags, &mut s[..stat_codec::len(flags)]);
                    if let Some(Some(d)) = data {
                        s[data_at..].copy_from_slice(d);
                    }
                }
            });
        } else {
            let data = data.unwrap_or_else(|| self.data_opt());
            let node = Node::build(self.name_bytes(), data, e.acl, &e.stat, e.children.take());
            *self = node;
        }
        r
    }
}

/// The hash function of a path index: a path's home slot. Chained: the hash of `/a/b`
/// is a hash of (the hash of `/a`, `b`), so a lookup that goes down a path hashes each
/// component once.
#[derive(Clone)]
pub(crate) struct PathHasher {
    hasher: foldhash::fast::RandomState,
    /// All ones; tests narrow it to force collisions.
    mask: u64,
    /// Zero; tests set high bits to force probe runs past the last key.
    fill: u64,
}

/// What the root's chained hash starts from.
const ROOT_SEED: u64 = 0x2f;

impl PathHasher {
    /// The chained hash of `/`.
    fn root(&self) -> u64 {
        self.hasher.hash_one(ROOT_SEED)
    }

    /// The chained hash of the child `name` of the path hashed to `parent`.
    fn child(&self, parent: u64, name: &str) -> u64 {
        self.hasher.hash_one((parent, name))
    }

    /// The slot a chained hash starts probing at.
    fn slot(&self, chained: u64) -> u64 {
        (chained & self.mask) | self.fill
    }

    /// The home slot of `path` (`None` for a string that is not `/` and does not start
    /// with `/`: no node has such a path).
    pub(crate) fn home(&self, path: &str) -> Option<u64> {
        let mut h = self.root();
        if path != "/" {
            for name in path.strip_prefix('/')?.split('/') {
                h = self.child(h, name);
            }
        }
        Some(self.slot(h))
    }
}

/// Where the last `/` of `path` is. A byte scan from the end: paths are short, and
/// `str::rfind` sets up a `memrchr` search per call (~200 instructions per create in
/// callgrind, for each of prep and apply).
pub(crate) fn last_slash(path: &str) -> Option<usize> {
    path.bytes().rposition(|b| b == b'/')
}

/// Splits a full path into its parent's path and its name: `/a/b` -> (`/a`, `b`), `/a`
/// -> (`/`, `a`); `None` for `/` and for strings without a `/`.
pub(crate) fn split_path(path: &str) -> Option<(&str, &str)> {
    let i = last_slash(path)?;
    if path == "/" {
        return None;
    }
    let parent = if i == 0 { "/" } else { &path[..i] };
    Some((parent, &path[i + 1..]))
}

/// A slot of the path index: a node, or the tombstone of one removed from inside a
/// probe run (lookups go past it; an insert may reuse it). The default is a tombstone:
/// `SlotMap` moves nodes between buckets by taking them (`mem::take`) out of a bucket
/// no clone shares.
#[derive(Clone, Default)]
pub(crate) enum Slot {
    Live(Node),
    #[default]
    Tomb,
}

impl Slot {
    fn live(&self) -> Option<&Node> {
        match self {
            Slot::Live(n) => Some(n),
            Slot::Tomb => None,
        }
    }
}

/// The path index: slot key -> node (see the module doc). Cloning is O(1).
#[derive(Clone)]
pub(crate) struct NodeMap {
    map: SlotMap<Slot>,
    hasher: PathHasher,
    /// Nodes (not tombstones) in the map.
    live: usize,
    /// The root's slot (nodes never move, and the root is never removed).
    root: Option<u64>,
}

impl fmt::Debug for NodeMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeMap")
            .field("len", &self.live)
            .field("tombstones", &(self.map.len() - self.live))
            .finish()
    }
}

impl Default for NodeMap {
    fn default() -> Self {
        NodeMap::new()
    }
}

impl NodeMap {
    pub(crate) fn new() -> NodeMap {
        NodeMap::with_hasher(PathHasher {
            hasher: foldhash::fast::RandomState::default(),
            mask: u64::MAX,
            fill: 0,
        })
    }

    /// An empty map hashing with `hasher`.
    pub(crate) fn with_hasher(hasher: PathHasher) -> NodeMap {
        NodeMap {
            map: SlotMap::new(),
            hasher,
            live: 0,
            root: None,
        }
    }

    /// A map of nodes already given their slots: `entries` sorted by slot key, no key
    /// twice, each node reachable from its home slot through taken slots, each parent's
    /// children set holding its children's slots (`TreeBuilder::finish` makes them so).
    /// O(n).
    pub(crate) fn from_sorted(hasher: PathHasher, entries: Vec<(u64, Node)>) -> NodeMap {
        let live = entries.len();
        let root = entries.iter().find(|(_, n)| n.is_root()).map(|(k, _)| *k);
        NodeMap {
            map: SlotMap::from_sorted(
                entries
                    .into_iter()
                    .map(|(k, n)| (k, Slot::Live(n)))
                    .collect(),
            ),
            hasher,
            live,
            root,
        }
    }

    /// The hash function (for preparing nodes on another thread).
    pub(crate) fn hasher(&self) -> PathHasher {
        self.hasher.clone()
    }

    /// Whether a clone shares the index's directory or any of its buckets.
    #[cfg(test)]
    pub(crate) fn index_is_shared(&self) -> bool {
        self.map.is_shared()
    }

    /// A map whose home slots keep only the bits of `mask` and have those of `fill` set
    /// (tests: forces probe runs, and runs that go past the last key with `fill` near
    /// `u64::MAX`).
    #[cfg(test)]
    pub(crate) fn with_hash_bits(mask: u64, fill: u64) -> NodeMap {
        NodeMap::with_hasher(PathHasher {
            hasher: foldhash::fast::RandomState::default(),
            mask,
            fill,
        })
    }

    /// The first slot from `from` on (probing) whose node satisfies `is`, with that node.
    fn probe(&self, from: u64, is: impl Fn(&Node, u64) -> bool) -> Option<(u64, &Node)> {
        let mut k = from;
        loop {
            match self.map.get(k)? {
                Slot::Live(n) if is(n, k) => return Some((k, n)),
                _ => k = k.wrapping_add(1),
            }
        }
    }

    /// The slot of the node at `path`, found by going down from the root.
    fn lookup(&self, path: &str) -> Option<u64> {
        self.lookup_chained(path).map(|(key, _)| key)
    }

    /// The slot of the node at `path` and the chained hash of `path` (what
    /// [`NodeMap::insert_child`] needs to add a child without walking down again).
    pub(crate) fn lookup_chained(&self, path: &str) -> Option<(u64, u64)> {
        let h = &self.hasher;
        let mut chained = h.root();
        let mut key = self.root?;
        debug_assert_eq!(
            self.probe(h.slot(chained), |n, _| n.is_root())
                .map(|(k, _)| k),
            Some(key)
        );
        if path == "/" {
            return Some((key, chained));
        }
        // Components found with a byte scan: names are short, and `str::split`'s
        // searcher cost more than the rest of a lookup's step.
        let mut rest = path.strip_prefix('/')?;
        // Each step's node is the next step's parent: one map lookup per component
        // saved (callgrind: 6 slot searches per two-component lookup before, 4 now).
        let mut parent = self.get_key(key)?;
        loop {
            let (name, next) = match rest.bytes().position(|b| b == b'/') {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            if name.is_empty() {
                return None;
            }
            chained = h.child(chained, name);
            (key, parent) = self.probe(h.slot(chained), |n, k| {
                n.name_bytes() == name.as_bytes() && parent.has_child(k)
            })?;
            match next {
                Some(r) => rest = r,
                None => return Some((key, chained)),
            }
        }
    }

    pub(crate) fn get(&self, path: &str) -> Option<&Node> {
        self.get_key(self.lookup(path)?)
    }

    pub(crate) fn get_key(&self, key: u64) -> Option<&Node> {
        self.map.get(key)?.live()
    }

    /// [`NodeMap::get_key`] for keys asked in ascending order (a children set's
    /// [`Node::child_keys`]), each search going on from the last: the returned closure
    /// reads each index bucket once.
    pub(crate) fn sorted_get_key<'a>(&'a self) -> impl FnMut(u64) -> Option<&'a Node> + 'a {
        let mut look = self.map.sorted_lookup();
        move |key| look.get(key)?.live()
    }

    /// The node for changing (the map's path to it is copied if a clone shares it).
    pub(crate) fn get_mut(&mut self, path: &str) -> Option<&mut Node> {
        let k = self.lookup(path)?;
        self.get_key_mut(k)
    }

    pub(crate) fn contains_key(&self, path: &str) -> bool {
        self.lookup(path).is_some()
    }

    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Adds a node at `path` (its name must be `path`'s last component): its slot key,
    /// or the node back when the path is taken or is not a path. The caller links it to
    /// its parent (until then, lookups do not find it).
    pub(crate) fn insert_new(&mut self, path: &str, node: Node) -> Result<u64, Node> {
        debug_assert!(split_path(path).map_or(node.is_root(), |(_, name)| node.name() == name));
        if self.lookup(path).is_some() {
            return Err(node);
        }
        let Some(mut k) = self.hasher.home(path) else {
            return Err(node);
        };
        // The first tombstone or empty slot of the probe run (the path is not in it).
        while let Some(Slot::Live(_)) = self.map.get(k) {
            k = k.wrapping_add(1);
        }
        if node.is_root() {
            self.root = Some(k);
        }
        self.map.insert(k, Slot::Live(node));
        self.live += 1;
        Ok(k)
    }

    /// Adds `node`, named `name`, as a child of the node `parent` (its slot and chained
    /// hash, from [`NodeMap::lookup_chained`]): its slot key, or the node back when the
    /// parent is gone or already has a child of that name. As [`NodeMap::insert_new`]
    /// for the parent's path joined with `name`, without walking down to the parent
    /// again. The caller links it to its parent.
    pub(crate) fn insert_child(
        &mut self,
        parent: (u64, u64),
        name: &str,
        node: Node,
    ) -> Result<u64, Node> {
        debug_assert_eq!(node.name(), name);
        let (parent_key, parent_chained) = parent;
        let home = self.hasher.slot(self.hasher.child(parent_chained, name));
        let Some(p) = self.get_key(parent_key) else {
            return Err(node);
        };
        if self
            .probe(home, |n, k| {
                n.name_bytes() == name.as_bytes() && p.has_child(k)
            })
            .is_some()
        {
            return Err(node);
        }
        // The first tombstone or empty slot of the probe run.
        let mut k = home;
        while let Some(Slot::Live(_)) = self.map.get(k) {
            k = k.wrapping_add(1);
        }
        self.map.insert(k, Slot::Live(node));
        self.live += 1;
        Ok(k)
    }

    /// The node at slot `key` for changing (as [`NodeMap::get_mut`]).
    pub(crate) fn get_key_mut(&mut self, key: u64) -> Option<&mut Node> {
        match self.map.get_mut(key)? {
            Slot::Live(n) => Some(n),
            Slot::Tomb => None,
        }
    }

    /// Removes a node: its slot key and the node. Other nodes do not move: inside a
    /// probe run the slot becomes a tombstone. Does not unlink it from its parent.
    pub(crate) fn remove(&mut self, path: &str) -> Option<(u64, Node)> {
        let key = self.lookup(path)?;
        self.remove_key(key)
    }

    /// Removes the node at slot `key` (as [`NodeMap::remove`]).
    pub(crate) fn remove_key(&mut self, key: u64) -> Option<(u64, Node)> {
        self.get_key(key)?;
        let old = if self.map.get(key.wrapping_add(1)).is_some() {
            self.map.insert(key, Slot::Tomb)
        } else {
            // The run ends here: the tombstones just before it are not needed either.
            let old = self.map.remove(key);
            let mut j = key.wrapping_sub(1);
            while let Some(Slot::Tomb) = self.map.get(j) {
                self.map.remove(j);
                j = j.wrapping_sub(1);
            }
            old
        };
        match old {
            Some(Slot::Live(n)) => {
                self.live -= 1;
                if n.is_root() {
                    self.root = None;
                }
                Some((key, n))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(czxid: i64, ctime: i64) -> StatPersisted {
        StatPersisted {
            czxid,
            mzxid: czxid,
            ctime,
            mtime: ctime,
            pzxid: czxid,
            ..Default::default()
        }
    }

    /// The layout docs/STORAGE.md §10 counts on: a 16-byte header and a 17-byte stat for
    /// a node never changed, so that a node with an 11-byte name and 100 bytes of data
    /// fits jemalloc's 160-byte size class (8 count + 16 + 8 length + 17 + 11 + 100 =
    /// 160).
    #[test]
    fn layout_is_compact_and_fields_round_trip() {
        assert_eq!(std::mem::size_of::<Head>(), 16);
        assert_eq!(std::mem::size_of::<Slot>(), 8);
        assert_eq!(std::mem::size_of::<Node>(), 8);
        let fresh = stat(0x1_0000_0005, 1_700_000_000_000);
        let n = Node::new("c12-3-45678", Some(&[7u8; 100]), 3, &fresh, None);
        assert_eq!(n.0.slice.len(), 17 + 11 + 100);
        assert_eq!(
            (n.name(), n.data(), n.acl(), n.stat()),
            ("c12-3-45678", &[7u8; 100][..], 3, fresh.clone())
        );
        assert!(!n.is_root() && !n.data_is_null());
        let root = Node::new("", None, -1, &StatPersisted::default(), None);
        assert!(root.is_root() && root.data_is_null() && root.data_value().is_null());
    }

    /// Every combination of stat fields that differ from a fresh node's round-trips,
    /// with and without null data, and takes the length its flags say.
    #[test]
    fn every_stat_shape_round_trips() {
        for mask in 0u32..128 {
            let mut s = stat(-5, 1234);
            let on = |b: u32| mask & (1 << b) != 0;
            if on(0) {
                s.mzxid = i64::MAX;
            }
            if on(1) {
                s.pzxid = 77;
            }
            if on(2) {
                s.mtime = -1;
            }
            if on(3) {
                s.version = -1;
            }
            if on(4) {
                s.cversion = i32::MIN;
            }
            if on(5) {
                s.aversion = 9;
            }
            if on(6) {
                s.ephemeral_owner = 0x8000_0000_0000_0001u64 as i64;
            }
            for null in [false, true] {
                let f = stat_codec::flags(&s, null);
                assert_eq!(f & 0x7f, mask as u8);
                let mut buf = vec![0u8; stat_codec::len(f)];
                stat_codec::encode(&s, f, &mut buf);
                assert_eq!(stat_codec::decode(&buf), s);
                let data: Option<&[u8]> = if null { None } else { Some(b"xy") };
                let n = Node::new("n", data, 0, &s, None);
                assert_eq!((n.stat(), n.data_opt(), n.name()), (s.clone(), data, "n"));
            }
        }
        assert_eq!(
            stat_codec::len(0x7f),
            stat_codec::MAX,
            "every field present"
        );
    }

    #[test]
    fn updates_in_place_or_rebuilt_leave_clones_unchanged() {
        let mut n = Node::new("b", Some(b"xyz"), 7, &stat(10, 20), None);
        let shared = n.clone();
        // shared: rebuilt, the clone keeps the old contents
        n.update(Some(None), |e| e.stat.version = 3);
        assert!(n.data_is_null() && n.data_value().is_null());
        assert_eq!(n.stat().version, 3);
        assert_eq!((shared.data(), shared.stat().version), (&b"xyz"[..], 0));
        // unique, same shape: in place
        let before = n.0.heap_ptr();
        n.update(None, |e| {
            e.stat.version = 4;
            e.add_child(11);
            e.add_child(12);
            assert!(e.set_acl(5));
            assert!(!e.set_acl(i64::from(i32::MAX) + 1));
        });
        assert_eq!(n.0.heap_ptr(), before);
        assert_eq!((n.stat().version, n.acl(), n.num_children()), (4, 5, 2));
        // a stat that grows and new data: rebuilt, children and name kept
        n.update(Some(Some(&[5u8; 4000])), |e| {
            e.stat.mzxid = 99;
            e.remove_child(11);
        });
        assert_eq!(&*n.data_value(), &[5u8; 4000][..]);
        assert_eq!(
            (n.name(), n.stat().mzxid, n.child_keys().collect::<Vec<_>>()),
            ("b", 99, vec![12])
        );
        n.update(None, |e| e.remove_child(12));
        assert!(!n.has_children() && !n.has_child(12));
        assert!(!Node::acl_fits(i64::from(i32::MAX) + 1));
    }

    #[test]
    fn split_path_gives_parent_and_name() {
        assert_eq!(split_path("/a"), Some(("/", "a")));
        assert_eq!(split_path("/a/b/c"), Some(("/a/b", "c")));
        assert_eq!(split_path("/a/"), Some(("/a", "")));
        assert_eq!(split_path("/"), None);
        assert_eq!(split_path("abc"), None);
    }
}
