//! The compact znode and the path index (docs/STORAGE.md §10).
//!
//! A [`Node`] is ONE allocation: a reference count, a fixed header ([`Head`]: the
//! persisted stat, the ACL index, the path length and the children set) and one byte
//! slice holding the node's full path followed by its data. The handle is a thin
//! pointer (8 bytes) and clones share the allocation, so a tree clone taken for a
//! background snapshot shares every node; the applier copies a node (header, path and
//! data) only when it changes one a clone still holds.
//!
//! The [`NodeMap`] finds nodes by a 64-bit hash of their full path: a persistent map
//! (`slots::SlotMap`: a directory of small sorted buckets) from *slot key* to node. A path's slot is its hash, or the next free
//! one after it when another path already holds that hash (linear probing; a removal
//! shifts the rest of the probe run back, so lookups stop at the first empty slot). A
//! parent's children set holds its children's slot keys (8 bytes each), not names, in
//! a `SlotMap` too.
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

/// The high bit of `Head::path_len`: the node's data is null (not empty).
const NULL_DATA: u32 = 1 << 31;

/// Data up to this size is copied out of a node for a reply; larger data is handed out
/// as a view that keeps the node's allocation alive instead of being copied.
const COPY_LIMIT: usize = 1024;

/// The fixed part of a node (80 bytes).
#[derive(Debug, Clone)]
pub(crate) struct Head {
    /// The persisted stat (stored cversion).
    pub(crate) stat: StatPersisted,
    /// ACL cache index (ZooKeeper's is a `long`; rzk's cache hands out small ones and a
    /// snapshot with an index beyond `i32` is refused when loaded).
    acl: i32,
    /// Length of the path at the start of the slice; [`NULL_DATA`] marks null data.
    path_len: u32,
    /// `None` for a node that never had children (most znodes: leaves).
    children: Option<Box<Children>>,
}

impl Head {
    /// The ACL cache index.
    pub(crate) fn acl(&self) -> i64 {
        i64::from(self.acl)
    }

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
            .field("path", &self.path())
            .field("data_len", &self.data().len())
            .field("null", &self.data_is_null())
            .field("acl", &self.acl())
            .field("stat", self.stat())
            .field("children", &self.num_children())
            .finish()
    }
}

impl Node {
    /// Whether an ACL index can be held by a node (see [`Head`]).
    pub(crate) fn acl_fits(acl: i64) -> bool {
        i32::try_from(acl).is_ok()
    }

    /// A new node. `acl` must fit (checked by [`Node::acl_fits`]; out-of-range values are
    /// stored as the open ACL, -1, which callers prevent). Paths are shorter than 2 GiB
    /// (the request size limit is far below).
    pub(crate) fn new(
        path: &str,
        data: Option<&[u8]>,
        acl: i64,
        stat: StatPersisted,
        children: Option<Box<Children>>,
    ) -> Node {
        let path_len =
            (path.len() as u32 & !NULL_DATA) | if data.is_none() { NULL_DATA } else { 0 };
        let head = Head {
            stat,
            acl: i32::try_from(acl).unwrap_or(-1),
            path_len,
            children,
        };
        let d = data.unwrap_or(&[]);
        let total = path.len() + d.len();
        let mut arc = ThinArc::from_header_and_iter(head, std::iter::repeat_n(0u8, total));
        arc.with_arc_mut(|a| {
            if let Some(inner) = triomphe::Arc::get_mut(a) {
                let s = inner.slice_mut();
                s[..path.len()].copy_from_slice(path.as_bytes());
                s[path.len()..].copy_from_slice(d);
            }
        });
        Node(arc)
    }

    fn head(&self) -> &Head {
        &self.0.header.header
    }

    fn path_len(&self) -> usize {
        (self.head().path_len & !NULL_DATA) as usize
    }

    /// The full path as bytes.
    pub(crate) fn path_bytes(&self) -> &[u8] {
        &self.0.slice[..self.path_len()]
    }

    /// The full path (the root is `/`).
    pub(crate) fn path(&self) -> &str {
        // Built from a `&str` in `new`; never fails.
        std::str::from_utf8(self.path_bytes()).unwrap_or_default()
    }

    /// The child name: the part of the path after the last `/`.
    pub(crate) fn name(&self) -> &str {
        super::child_name(self.path())
    }

    /// The data; null reads as empty.
    pub(crate) fn data(&self) -> &[u8] {
        &self.0.slice[self.path_len()..]
    }

    pub(crate) fn data_is_null(&self) -> bool {
        self.head().path_len & NULL_DATA != 0
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

    pub(crate) fn stat(&self) -> &StatPersisted {
        &self.head().stat
    }

    pub(crate) fn acl(&self) -> i64 {
        self.head().acl()
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

    fn is_unique(&self) -> bool {
        ThinArc::strong_count(&self.0) == 1
    }

    /// Changes the header in place, after copying the node if a clone shares it.
    pub(crate) fn edit<R>(&mut self, f: impl FnOnce(&mut Head) -> R) -> R {
        if !self.is_unique() {
            *self = self.rebuilt(self.data_opt());
        }
        self.0.with_arc_mut(|a| {
            let inner = triomphe::Arc::get_mut(a).expect("a node is unique after the copy");
            f(inner.header_mut())
        })
    }

    /// Replaces the data (in place when the length is the same and nothing shares the
    /// node, else in a new allocation).
    pub(crate) fn set_data(&mut self, data: Option<&[u8]>) {
        let same_shape = data.is_some() != self.data_is_null()
            && data.map_or(0, <[u8]>::len) == self.data().len();
        if same_shape && self.is_unique() {
            let plen = self.path_len();
            if let Some(d) = data {
                self.0.with_arc_mut(|a| {
                    if let Some(inner) = triomphe::Arc::get_mut(a) {
                        inner.slice_mut()[plen..].copy_from_slice(d);
                    }
                });
            }
            return;
        }
        *self = self.rebuilt(data);
    }

    /// A copy of this node (own allocation) with `data`.
    fn rebuilt(&self, data: Option<&[u8]>) -> Node {
        let h = self.head();
        Node::new(
            self.path(),
            data,
            h.acl(),
            h.stat.clone(),
            h.children.clone(),
        )
    }
}

/// The hash function of a path index: a path's home slot.
#[derive(Clone)]
pub(crate) struct PathHasher {
    hasher: foldhash::fast::RandomState,
    /// All ones; tests narrow it to force collisions.
    mask: u64,
}

impl PathHasher {
    /// The home slot of `path`.
    pub(crate) fn home(&self, path: &str) -> u64 {
        self.hasher.hash_one(path) & self.mask
    }
}

/// The path index: slot key -> node (see the module doc). Cloning is O(1).
#[derive(Clone)]
pub(crate) struct NodeMap {
    map: SlotMap<Node>,
    hasher: PathHasher,
}

impl fmt::Debug for NodeMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeMap")
            .field("len", &self.map.len())
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
        })
    }

    /// An empty map hashing with `hasher`.
    pub(crate) fn with_hasher(hasher: PathHasher) -> NodeMap {
        NodeMap {
            map: SlotMap::new(),
            hasher,
        }
    }

    /// A map of nodes already given their slots: `entries` sorted by slot key, no key
    /// twice, each node at its home slot or after it with every slot in between taken
    /// (`TreeBuilder::finish` makes them so). O(n).
    pub(crate) fn from_sorted(hasher: PathHasher, entries: Vec<(u64, Node)>) -> NodeMap {
        NodeMap {
            map: SlotMap::from_sorted(entries),
            hasher,
        }
    }

    /// The hash function (for preparing nodes on another thread).
    pub(crate) fn hasher(&self) -> PathHasher {
        self.hasher.clone()
    }

    /// A map whose hashes keep only the bits of `mask` (tests: forces probe runs).
    #[cfg(test)]
    pub(crate) fn with_hash_mask(mask: u64) -> NodeMap {
        NodeMap::with_hasher(PathHasher {
            hasher: foldhash::fast::RandomState::default(),
            mask,
        })
    }

    fn home(&self, path: &str) -> u64 {
        self.hasher.home(path)
    }

    /// `Ok(slot)` of `path`, or `Err(first free slot of its probe run)`.
    fn find(&self, path: &str) -> Result<u64, u64> {
        let mut k = self.home(path);
        loop {
            match self.map.get(k) {
                None => return Err(k),
                Some(n) if n.path_bytes() == path.as_bytes() => return Ok(k),
                Some(_) => k = k.wrapping_add(1),
            }
        }
    }

    /// The slot key of `path`.
    pub(crate) fn key_of(&self, path: &str) -> Option<u64> {
        self.find(path).ok()
    }

    pub(crate) fn get(&self, path: &str) -> Option<&Node> {
        self.map.get(self.find(path).ok()?)
    }

    pub(crate) fn get_key(&self, key: u64) -> Option<&Node> {
        self.map.get(key)
    }

    /// The node for changing (the map's path to it is copied if a clone shares it).
    pub(crate) fn get_mut(&mut self, path: &str) -> Option<&mut Node> {
        let k = self.find(path).ok()?;
        self.map.get_mut(k)
    }

    pub(crate) fn contains_key(&self, path: &str) -> bool {
        self.find(path).is_ok()
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Every node, in slot order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Node> {
        self.map.values()
    }

    /// Adds a node under its path: its slot key, or the node back when the path is
    /// taken. Does not link it to its parent.
    pub(crate) fn insert_new(&mut self, node: Node) -> Result<u64, Node> {
        // One descent in the common case: insert at the home slot and put back what was
        // there (rare: the same path, or another path with the same hash).
        let mut k = self.home(node.path());
        let mut node = node;
        loop {
            match self.map.insert(k, node) {
                None => return Ok(k),
                Some(old) => {
                    let same =
                        old.path_bytes() == self.map.get(k).map_or(&[][..], Node::path_bytes);
                    let back = self.map.insert(k, old);
                    node = back.expect("the slot was just filled");
                    if same {
                        return Err(node);
                    }
                    k = k.wrapping_add(1);
                }
            }
        }
    }

    /// Removes a node: its slot key and the node. Nodes later in its probe run move
    /// back (their parents' children sets follow). Does not unlink it from its parent.
    pub(crate) fn remove(&mut self, path: &str) -> Option<(u64, Node)> {
        let key = self.find(path).ok()?;
        let node = self.map.remove(key)?;
        let mut moves = Vec::new();
        let mut hole = key;
        let mut j = key.wrapping_add(1);
        while let Some(n) = self.map.get(j) {
            let home = self.home(n.path());
            // `n` may fill the hole when its home is not in (hole, j] (cyclically).
            if j.wrapping_sub(home) >= j.wrapping_sub(hole) {
                if let Some(moved) = self.map.remove(j) {
                    self.map.insert(hole, moved);
                    moves.push((j, hole));
                }
                hole = j;
            }
            j = j.wrapping_add(1);
        }
        // Parents are looked up once every run is whole again.
        for (from, to) in moves {
            if let Some(moved) = self.map.get(to).cloned() {
                self.relink(&moved, from, to);
            }
        }
        Some((key, node))
    }

    /// A node moved from slot `from` to `to`: its parent's children set follows.
    fn relink(&mut self, moved: &Node, from: u64, to: u64) {
        let path = moved.path();
        if path == "/" {
            return;
        }
        let parent = rzk_proto::path::parent(path);
        if let Some(p) = self.get_mut(parent) {
            p.edit(|h| {
                let c = h.children_mut();
                if c.remove(from).is_some() {
                    c.insert(to, ());
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout docs/STORAGE.md §10 counts on: an 80-byte header, so that a node with
    /// a ~45-byte path and 100 bytes of data fits a 256-byte allocator chunk.
    #[test]
    fn header_stays_80_bytes_and_data_round_trips() {
        assert_eq!(std::mem::size_of::<Head>(), 80);
        assert_eq!(std::mem::size_of::<Node>(), 8);
        let mut n = Node::new("/a/b", Some(b"xyz"), 7, StatPersisted::default(), None);
        assert_eq!(
            (n.path(), n.name(), n.data(), n.acl()),
            ("/a/b", "b", &b"xyz"[..], 7)
        );
        let shared = n.clone();
        n.set_data(None);
        n.edit(|h| h.stat.version = 3);
        assert!(n.data_is_null() && n.data_value().is_null());
        assert_eq!(n.stat().version, 3);
        // the clone (a snapshot's view) kept the old contents
        assert_eq!((shared.data(), shared.stat().version), (&b"xyz"[..], 0));
        let big = vec![5u8; 4000];
        n.set_data(Some(&big));
        assert_eq!(&*n.data_value(), &big[..]);
        assert!(!Node::acl_fits(i64::from(i32::MAX) + 1));
    }
}
