//! The tree as snapshots see it: a pre-order walk (root written as `""`), the ACL cache,
//! and a builder that rebuilds a tree from those. Must never do IO: the storage layer
//! owns the file format.

use super::node::PathHasher;
use super::{digest, java_len, split_path, AclCache, Children, DataTree, Node, NodeMap};
use rzk_proto::records::{Acl, StatPersisted};
use rzk_proto::{Data, Zxid};
use std::collections::HashMap;

/// One node as written in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotNode {
    /// Root is `""`; others are full paths.
    pub path: String,
    pub data: Data,
    /// ACL cache index (`-1` = open).
    pub acl: i64,
    pub stat: StatPersisted,
}

impl SnapshotNode {
    /// An owned copy of what a snapshot walk visits ([`DataTree::for_each_snapshot_node`]'s
    /// arguments: path, data or `None` when null, ACL index, stat).
    pub fn copied(path: &str, data: Option<&[u8]>, acl: i64, stat: &StatPersisted) -> SnapshotNode {
        SnapshotNode {
            path: path.to_owned(),
            data: Data::from(data.map(bytes::Bytes::copy_from_slice)),
            acl,
            stat: stat.clone(),
        }
    }
}

/// How many nodes ahead of the one visited the walks ask the CPU to load
/// ([`Node::prefetch`]): a large tree's nodes are rarely in the cache, and each visit
/// would otherwise wait for its node's memory in turn.
const PREFETCH_AHEAD: usize = 8;
/// Cache lines of a node loaded ahead when its stat, name and data are all read (a node
/// of 100 B of data spans three).
const PREFETCH_LINES: usize = 3;

/// Nodes collected between two `sched_yield`s of [`DataTree::into_snapshot_order`]
/// (under a millisecond of a large tree's collecting). The collecting never blocks,
/// and a woken connection thread (`SCHED_BATCH`: `node/sched.rs`) does not preempt the
/// snapshot thread: without the yields it waited for the scheduler tick (4 ms at 250
/// Hz) when the snapshot thread held its CPU. (The writing blocks on each `O_DIRECT`
/// chunk.)
const COLLECT_YIELD_EVERY: usize = 4096;

/// Largest children set the snapshot walk writes in name order (larger ones go in the
/// path index's order).
pub const NAME_ORDER_MAX: usize = 16;

impl DataTree {
    /// Visits every node pre-order (parents before children), root as `""`; the data
    /// is `None` when null. Siblings come in the path index's order (by slot key, which
    /// depends on the index's per-process hash seed), as ZooKeeper writes them in its
    /// child `HashSet`'s order: walking a parent's children in key order reads the index
    /// sequentially, where name order would cost a sort and random reads. Children sets of
    /// at most [`NAME_ORDER_MAX`] nodes are written in name order: the sort is cheap, and
    /// a small tree's snapshot is then the same bytes in every process (a new database's
    /// `snapshot.0` equals ZooKeeper's, whatever the hash seed). (Memory order, radix-sorted
    /// by node address, took a fifth less snapshot CPU but cost creates 3-4 % of their
    /// throughput: docs/TESTING.md §8, session 34.)
    pub fn for_each_snapshot_node(&self, f: impl FnMut(&str, Option<&[u8]>, i64, &StatPersisted)) {
        self.walk(false, f)
    }

    /// The pre-order walk; siblings in name order when `sorted`.
    fn walk(&self, sorted: bool, mut f: impl FnMut(&str, Option<&[u8]>, i64, &StatPersisted)) {
        let mut path = PreOrderPath::default();
        self.walk_nodes(sorted, PREFETCH_LINES, |n, depth| {
            path.visit(depth, n, &mut f)
        });
    }

    /// The pre-order walk's nodes with their depths (the root's is 0), prefetching the
    /// first `lines` cache lines of the nodes ahead (what `f` reads of them).
    fn walk_nodes(&self, sorted: bool, lines: usize, mut f: impl FnMut(&Node, usize)) {
        let Some(root) = self.nodes.get("/") else {
            return;
        };
        let mut stack: Vec<(&Node, usize)> = vec![(root, 0)];
        while let Some((n, depth)) = stack.pop() {
            // The node popped PREFETCH_AHEAD turns from now (unless children come first).
            if let Some(i) = stack.len().checked_sub(PREFETCH_AHEAD) {
                stack[i].0.prefetch(lines);
            }
            f(n, depth);
            if !n.has_children() {
                continue;
            }
            let from = stack.len();
            if sorted || n.num_children() <= NAME_ORDER_MAX {
                stack.extend(self.sorted_children(n).into_iter().map(|c| (c, depth + 1)));
            } else {
                // One index cursor for the whole set: its keys come in order.
                stack.extend(
                    n.child_keys()
                        .filter_map(self.nodes.sorted_get_key())
                        .map(|c| (c, depth + 1)),
                );
            }
            // Reversed so that children come out in the order listed.
            stack[from..].reverse();
        }
    }

    /// Turns the tree into its nodes in snapshot order ([`DataTree::for_each_snapshot_node`]'s),
    /// with what else a snapshot holds (last zxid, digest, ACL cache), and drops the rest:
    /// the path index goes now; each node's children set (in the node) goes with the node
    /// once it is written.
    ///
    /// Why: a snapshot writer works on a clone of the live tree, and while the clone holds
    /// the index's buckets, every bucket the applier changes is copied instead of changed
    /// in place; when the clone goes, the old copies leave holes all over the allocator's
    /// slabs that an idle server keeps (~15 MiB at 1 M znodes: docs/STORAGE.md §10).
    /// Collecting the nodes takes a fraction of the time writing them does, so the index
    /// is shared for that fraction only (when `self` was the only clone);
    /// [`SnapshotOrder::for_each`] then releases each node as soon as it is written.
    /// Costs 12 bytes per znode while it lives.
    pub(crate) fn into_snapshot_order(self) -> SnapshotOrder {
        let mut nodes = Vec::with_capacity(self.nodes.len());
        let mut depths = Vec::with_capacity(self.nodes.len());
        // Only the header is read here (the reference count, and whether it has children).
        self.walk_nodes(false, 1, |n, depth| {
            nodes.push(n.clone());
            // A depth beyond u32 would take 4 G nodes in one path: not reachable.
            debug_assert!(u32::try_from(depth).is_ok());
            depths.push(depth as u32);
            if nodes.len() % COLLECT_YIELD_EVERY == 0 {
                std::thread::yield_now();
            }
        });
        SnapshotOrder {
            nodes,
            depths,
            last_zxid: self.last_zxid,
            digest: self.digest,
            acl_entries: self.acls.entries(),
        }
    }

    /// All nodes pre-order as [`DataTree::for_each_snapshot_node`] visits them, but
    /// siblings in name order, so that trees with the same content give the same list
    /// (tests compare them).
    pub fn snapshot_nodes(&self) -> Vec<SnapshotNode> {
        let mut v = Vec::with_capacity(self.nodes.len());
        self.walk(true, |path, data, acl, stat| {
            v.push(SnapshotNode::copied(path, data, acl, stat))
        });
        v
    }
}

/// A tree's nodes in snapshot order, detached from its path index
/// ([`DataTree::into_snapshot_order`]).
pub(crate) struct SnapshotOrder {
    /// Pre-order, siblings as [`DataTree::for_each_snapshot_node`] orders them.
    nodes: Vec<Node>,
    /// `depths[i]`: how many ancestors `nodes[i]` has (the root: 0).
    depths: Vec<u32>,
    last_zxid: Zxid,
    digest: i64,
    acl_entries: Vec<(i64, Vec<Acl>)>,
}

impl SnapshotOrder {
    /// Zxid of the last txn the tree had applied.
    pub(crate) fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    /// The tree's digest (`DataTree::digest`).
    pub(crate) fn digest(&self) -> i64 {
        self.digest
    }

    /// The ACL cache entries (index, list), sorted by index.
    pub(crate) fn acl_entries(&self) -> &[(i64, Vec<Acl>)] {
        &self.acl_entries
    }

    /// Number of nodes.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Visits the nodes as [`DataTree::for_each_snapshot_node`] does (path with the root as
    /// `""`, data or `None` when null, ACL index, stat), releasing each after its visit.
    pub(crate) fn for_each(self, mut f: impl FnMut(&str, Option<&[u8]>, i64, &StatPersisted)) {
        debug_assert_eq!(self.nodes.len(), self.depths.len());
        let mut path = PreOrderPath::default();
        let mut nodes = self.nodes.into_iter();
        for depth in self.depths {
            // The node visited PREFETCH_AHEAD turns from now.
            if let Some(ahead) = nodes.as_slice().get(PREFETCH_AHEAD) {
                ahead.prefetch(PREFETCH_LINES);
            }
            let Some(n) = nodes.next() else { break };
            path.visit(depth as usize, &n, &mut f);
        }
    }
}

/// The full paths of a pre-order walk, built from each node's name and depth in one
/// reused buffer (nodes hold their names, not their paths).
#[derive(Default)]
struct PreOrderPath {
    /// The path of the node entered last (the root's is `""`).
    path: String,
    /// `ends[d]`: the length of its ancestor's path at depth `d`.
    ends: Vec<usize>,
}

impl PreOrderPath {
    /// The path of `n`, the next node of the walk, at `depth`.
    fn enter(&mut self, depth: usize, n: &Node) -> &str {
        debug_assert!(
            depth <= self.ends.len(),
            "a pre-order walk goes down one level at a time"
        );
        self.ends.truncate(depth);
        self.path.truncate(self.ends.last().copied().unwrap_or(0));
        if depth > 0 {
            self.path.push('/');
            self.path.push_str(n.name());
        }
        self.ends.push(self.path.len());
        &self.path
    }

    /// Enters `n` and calls `f` as the snapshot walks do: its path (the root's `""`), its
    /// data (`None` when null), ACL index and stat.
    fn visit(
        &mut self,
        depth: usize,
        n: &Node,
        f: &mut impl FnMut(&str, Option<&[u8]>, i64, &StatPersisted),
    ) {
        f(self.enter(depth, n), n.data_opt(), n.acl(), &n.stat())
    }
}

/// Why a snapshot could not be turned into a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("node {0:?} has no parent in the snapshot")]
    Orphan(String),
    #[error("node {0:?} references unknown ACL index {1}")]
    UnknownAcl(String, i64),
    #[error("snapshot has no root node")]
    NoRoot,
    #[error("node {0:?} appears twice")]
    Duplicate(String),
    #[error("snapshot has more than {} nodes", u32::MAX - 1)]
    TooManyNodes,
    #[error("node path {0:?} is not a valid path")]
    BadPath(String),
}

/// A snapshot node made ready for [`TreeBuilder::add_prepared`] by [`NodePrep::prepare`],
/// which may run on another thread (the snapshot reading thread does): the node's one
/// allocation, its full path and its home slot in the path index. (Its digest is
/// computed by the builder: the reading thread is the busier one.)
pub struct PreparedNode {
    node: Node,
    path: Box<str>,
    home: u64,
}

impl PreparedNode {
    /// Whether this is the root (`/`, stored as `""`).
    pub fn is_root(&self) -> bool {
        self.node.is_root()
    }
}

/// Prepares nodes for one [`TreeBuilder`] ([`TreeBuilder::preparer`]; it holds that
/// builder's path hasher). Cheap to clone and `Send`: made for the snapshot reading
/// thread, so that the building thread only links nodes.
#[derive(Clone)]
pub struct NodePrep {
    hasher: PathHasher,
}

impl NodePrep {
    /// One node as a snapshot stores it (root `""`; `data` `None` when null). Fails only
    /// for an ACL index that does not fit a node (32 bits).
    pub fn prepare(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: i64,
        stat: &StatPersisted,
    ) -> Result<PreparedNode, BuildError> {
        let path = if path.is_empty() { "/" } else { path };
        if !Node::acl_fits(acl) {
            return Err(BuildError::UnknownAcl(path.to_owned(), acl));
        }
        let name = match split_path(path) {
            Some((_, name)) if !name.is_empty() => name,
            None if path == "/" => "",
            _ => return Err(BuildError::BadPath(path.to_owned())),
        };
        Ok(PreparedNode {
            home: self
                .hasher
                .home(path)
                .ok_or_else(|| BuildError::BadPath(path.to_owned()))?,
            node: Node::new(name, data, acl, stat, None),
            path: Box::from(path),
        })
    }
}

/// No parent (the root).
const NO_PARENT: u32 = u32::MAX;

/// Rebuilds a tree: `add_acl` for every cache entry, then `add_node` (or
/// [`NodePrep::prepare`] + `add_prepared`) in snapshot order (parents first), then
/// `finish`.
///
/// Adding a node only records it (with its parent's position) and sums its digest and
/// data size; `finish` gives every node its slot in the path index (sorted by home
/// slot, linear probing for equal hashes), fills each parent's children set and builds
/// the index from the sorted list in one pass (`SlotMap::from_sorted`). Snapshots list
/// nodes in pre-order (ZooKeeper's and rzk's writers recurse), so a node's parent is
/// the node added last or one of its ancestors: that chain is kept `open`. Any other
/// parents-first order still works, through a map of paths made when it is first
/// needed. Duplicates are found by `finish`.
#[derive(Debug)]
pub struct TreeBuilder {
    tree: DataTree,
    /// The nodes in the order added, with their home slots and parents' positions.
    entries: Vec<Node>,
    homes: Vec<u64>,
    parents: Vec<u32>,
    /// Nodes whose subtrees may still grow, outermost first: position and length of
    /// its path, a prefix of `last_path`.
    open: Vec<(u32, usize)>,
    /// The path of the node added last.
    last_path: String,
    /// Path -> position, once the nodes stopped coming in pre-order.
    by_path: Option<HashMap<Box<str>, u32>>,
    /// ACL index -> nodes using it (added to the cache's counts by `finish`).
    acl_refs: HashMap<i64, u64>,
    /// The ACL index of the last nodes added, and how many in a row.
    acl_run: (i64, u64),
    saw_root: bool,
}

/// True when `anc` is a proper ancestor of `path` (`/` is the ancestor of every other
/// path).
fn is_ancestor(anc: &[u8], path: &[u8]) -> bool {
    if anc == b"/" {
        return path != b"/";
    }
    path.len() > anc.len() && path[anc.len()] == b'/' && path.starts_with(anc)
}

impl Default for TreeBuilder {
    fn default() -> Self {
        TreeBuilder {
            tree: DataTree {
                nodes: NodeMap::new(),
                acls: AclCache::default(),
                ephemerals: imbl::OrdMap::new(),
                containers: imbl::OrdSet::new(),
                ttls: imbl::OrdSet::new(),
                quota_roots: imbl::OrdSet::new(),
                last_zxid: Zxid::ZERO,
                digest: 0,
                data_size: 0,
                extended_types: false,
                digest_check: Default::default(),
            },
            entries: Vec::new(),
            homes: Vec::new(),
            parents: Vec::new(),
            open: Vec::new(),
            last_path: String::new(),
            by_path: None,
            acl_refs: HashMap::new(),
            acl_run: (0, 0),
            saw_root: false,
        }
    }
}

impl TreeBuilder {
    pub fn new() -> TreeBuilder {
        TreeBuilder::default()
    }

    /// A builder whose path index's home slots keep only the bits of `mask` and have
    /// those of `fill` set (tests: `NodeMap::with_hash_bits`).
    #[cfg(test)]
    pub(crate) fn with_hash_bits(mask: u64, fill: u64) -> TreeBuilder {
        let mut b = TreeBuilder::new();
        b.tree.nodes = NodeMap::with_hash_bits(mask, fill);
        b
    }

    /// What prepares nodes for this builder, on any thread.
    pub fn preparer(&self) -> NodePrep {
        NodePrep {
            hasher: self.tree.nodes.hasher(),
        }
    }

    pub fn add_acl(&mut self, index: i64, acl: Vec<Acl>) {
        self.tree.acls.insert_loaded(index, acl);
    }

    pub fn add_node(&mut self, node: SnapshotNode) -> Result<(), BuildError> {
        let p = self.preparer().prepare(
            &node.path,
            node.data.as_option().map(|b| &b[..]),
            node.acl,
            &node.stat,
        )?;
        self.add_prepared(p)
    }

    /// Adds a node prepared by this builder's [`TreeBuilder::preparer`].
    pub fn add_prepared(&mut self, p: PreparedNode) -> Result<(), BuildError> {
        let PreparedNode { node, path, home } = p;
        let path = &*path;
        let acl = node.acl();
        if !self.tree.acls.contains(acl) {
            return Err(BuildError::UnknownAcl(path.to_owned(), acl));
        }
        let pos = u32::try_from(self.entries.len())
            .ok()
            .filter(|&i| i != NO_PARENT)
            .ok_or(BuildError::TooManyNodes)?;
        // The open nodes that are not ancestors of this one are complete.
        while let Some(&(_, len)) = self.open.last() {
            if is_ancestor(&self.last_path.as_bytes()[..len], path.as_bytes()) {
                break;
            }
            self.open.pop();
        }
        let parent = match split_path(path) {
            None => {
                self.saw_root = true;
                NO_PARENT
            }
            Some((want, _)) => match self.open.last() {
                Some(&(o, len)) if &self.last_path[..len] == want => o,
                _ => {
                    // Not pre-order: find the parent by its path.
                    if self.by_path.is_none() {
                        let m = (0..self.entries.len())
                            .map(|i| (Box::from(self.entry_path(i)), i as u32))
                            .collect();
                        self.by_path = Some(m);
                    }
                    *self
                        .by_path
                        .as_ref()
                        .and_then(|m| m.get(want))
                        .ok_or_else(|| BuildError::Orphan(path.to_owned()))?
                }
            },
        };
        if let Some(m) = self.by_path.as_mut() {
            m.entry(Box::from(path)).or_insert(pos);
        }
        let stat = node.stat();
        if stat.ephemeral_owner != 0 {
            self.tree
                .index_owner(&super::Name::from(path), stat.ephemeral_owner);
        }
        let t = &mut self.tree;
        t.digest = t
            .digest
            .wrapping_add(digest::node_digest(path, node.data(), &stat));
        t.data_size += java_len(path) + node.data().len() as u64;
        // Runs of one ACL index are counted before they go to the map.
        match &mut self.acl_run {
            (a, n) if *a == acl => *n += 1,
            run => {
                if run.1 > 0 {
                    *self.acl_refs.entry(run.0).or_insert(0) += run.1;
                }
                *run = (acl, 1);
            }
        }
        self.open.push((pos, path.len()));
        self.last_path.clear();
        self.last_path.push_str(path);
        self.entries.push(node);
        self.homes.push(home);
        self.parents.push(parent);
        Ok(())
    }

    /// The full path of the entry at `pos` (from the names of its ancestors' entries).
    fn entry_path(&self, pos: usize) -> String {
        let mut names = Vec::new();
        let mut i = pos;
        while self.parents[i] != NO_PARENT && names.len() < self.parents.len() {
            names.push(self.entries[i].name());
            i = self.parents[i] as usize;
        }
        if names.is_empty() {
            return "/".to_owned();
        }
        let mut path = String::new();
        for name in names.iter().rev() {
            path.push('/');
            path.push_str(name);
        }
        path
    }

    /// Slot keys for every entry: (slot, position) sorted by slot. Home slots in order,
    /// the next free one after a taken one (linear probing, as `NodeMap::insert_new`
    /// would give); a probe run that would go past the last key continues from key 0
    /// (practically never: it needs a hash within a few keys of 2^64). Finds duplicate
    /// paths (same path, same home).
    fn assign_slots(&self) -> Result<Vec<(u64, u32)>, BuildError> {
        // Sorted by home slot: distributed by the top bits (counting sort), then each
        // small range sorted.
        let n = self.homes.len();
        let bits = (usize::BITS - n.leading_zeros()).saturating_sub(3).min(20);
        let top = |h: u64| {
            if bits == 0 {
                0
            } else {
                (h >> (64 - bits)) as usize
            }
        };
        let mut start = vec![0usize; (1 << bits) + 1];
        for &h in &self.homes {
            start[top(h) + 1] += 1;
        }
        for b in 0..1 << bits {
            start[b + 1] += start[b];
        }
        let mut order: Vec<(u64, u32)> = vec![(0, 0); n];
        let mut fill = start.clone();
        for (i, &h) in self.homes.iter().enumerate() {
            let b = top(h);
            order[fill[b]] = (h, i as u32);
            fill[b] += 1;
        }
        for b in 0..1 << bits {
            order[start[b]..start[b + 1]].sort_unstable();
        }
        let mut prev: Option<u64> = None;
        let mut group = 0;
        let mut group_home: Option<u64> = None;
        let mut wrapped: Vec<usize> = Vec::new();
        for j in 0..order.len() {
            let (home, i) = order[j];
            if group_home == Some(home) {
                // Same hash (rare): compare the paths.
                let path = self.entry_path(i as usize);
                if order[group..j]
                    .iter()
                    .any(|&(_, o)| self.entry_path(o as usize) == path)
                {
                    return Err(BuildError::Duplicate(path));
                }
            } else {
                group = j;
                group_home = Some(home);
            }
            let key = match prev {
                Some(p) if p >= home => match p.checked_add(1) {
                    Some(k) => k,
                    None => {
                        wrapped.push(j);
                        continue;
                    }
                },
                _ => home,
            };
            order[j].0 = key;
            prev = Some(key);
        }
        if !wrapped.is_empty() {
            // Every key from these nodes' homes to the last is taken: they go to the
            // first free keys from 0 on, which keeps them reachable by probing.
            let taken: std::collections::HashSet<u64> = order
                .iter()
                .enumerate()
                .filter(|(j, _)| !wrapped.contains(j))
                .map(|(_, &(k, _))| k)
                .collect();
            let mut k = 0u64;
            for &j in &wrapped {
                while taken.contains(&k) {
                    k += 1;
                }
                order[j].0 = k;
                k += 1;
            }
            order.sort_unstable();
        }
        Ok(order)
    }

    /// The tree, with `last_zxid` as its last applied zxid (the snapshot's name zxid).
    pub fn finish(mut self, last_zxid: Zxid) -> Result<DataTree, BuildError> {
        if !self.saw_root {
            return Err(BuildError::NoRoot);
        }
        let n = self.entries.len();
        let mut sorted = self.assign_slots()?;
        // Slot key by position.
        let mut keys = vec![0u64; n];
        for &(k, i) in &sorted {
            keys[i as usize] = k;
        }
        // Children sets: the children's keys grouped by parent (counting sort).
        let mut start = vec![0u32; n + 1];
        for &p in &self.parents {
            if p != NO_PARENT {
                start[p as usize + 1] += 1;
            }
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut child_keys = vec![0u64; start[n] as usize];
        for (i, &p) in self.parents.iter().enumerate() {
            if p != NO_PARENT {
                child_keys[fill[p as usize] as usize] = keys[i];
                fill[p as usize] += 1;
            }
        }
        for p in 0..n {
            let kids = &mut child_keys[start[p] as usize..start[p + 1] as usize];
            if kids.is_empty() {
                continue;
            }
            kids.sort_unstable();
            let set = Children::from_sorted(kids.iter().map(|k| (*k, ())).collect());
            self.entries[p].update(None, |e| e.set_children(set));
        }
        // The index, from the nodes sorted by key.
        let hasher = self.tree.nodes.hasher();
        let mut nodes: Vec<Option<Node>> = self.entries.into_iter().map(Some).collect();
        let list: Vec<(u64, Node)> = sorted
            .drain(..)
            .filter_map(|(k, i)| nodes[i as usize].take().map(|n| (k, n)))
            .collect();
        self.tree.nodes = NodeMap::from_sorted(hasher, list);
        let (acl, run) = self.acl_run;
        if run > 0 {
            *self.acl_refs.entry(acl).or_insert(0) += run;
        }
        for (acl, refs) in self.acl_refs {
            self.tree.acls.add_usages(acl, refs);
        }
        self.tree.acls.purge_unused();
        self.tree.rebuild_quotas();
        self.tree.last_zxid = last_zxid;
        Ok(self.tree)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(path: &str) -> SnapshotNode {
        SnapshotNode {
            path: path.to_owned(),
            data: Data::from(Some(bytes::Bytes::from(path.as_bytes().to_vec()))),
            acl: -1,
            stat: StatPersisted::default(),
        }
    }

    fn build(paths: &[&str]) -> Result<DataTree, BuildError> {
        let mut b = TreeBuilder::new();
        for p in paths {
            b.add_node(node(p))?;
        }
        b.finish(Zxid(7))
    }

    fn children(t: &DataTree, p: &str) -> Vec<String> {
        t.get_children(p).map(|(c, _)| c).unwrap_or_default()
    }

    #[test]
    fn pre_order_and_any_parents_first_order_build_the_same_tree() {
        let pre = ["", "/a", "/a/x", "/a/x/1", "/a/y", "/b", "/b/z", "/c"];
        let other = ["", "/b", "/a", "/c", "/a/y", "/b/z", "/a/x", "/a/x/1"];
        let t1 = build(&pre).expect("pre-order");
        let t2 = build(&other).expect("parents first");
        for t in [&t1, &t2] {
            // ZooKeeper counts the root twice.
            assert_eq!(t.node_count(), 9);
            assert_eq!(children(t, "/"), ["a", "b", "c"]);
            assert_eq!(children(t, "/a"), ["x", "y"]);
            assert_eq!(children(t, "/a/x"), ["1"]);
            assert_eq!(children(t, "/b"), ["z"]);
            assert!(children(t, "/c").is_empty());
            let (data, _) = t.get_data("/a/x/1").expect("node");
            assert_eq!(&*data, b"/a/x/1");
            assert_eq!(t.last_zxid(), Zxid(7));
        }
        assert_eq!(t1.digest(), t2.digest());
    }

    #[test]
    fn duplicates_orphans_and_a_missing_root_are_errors() {
        for dup in [
            &["", "/a", "/a"][..],
            &["", "/a", "/a/x", "/b", "/a"][..],
            &["", "/a", "/a/x", "/a/x"][..],
            &["", "/a", ""][..],
        ] {
            assert!(
                matches!(build(dup), Err(BuildError::Duplicate(_))),
                "{dup:?}"
            );
        }
        assert!(matches!(
            build(&["", "/a/x"]),
            Err(BuildError::Orphan(p)) if p == "/a/x"
        ));
        assert!(matches!(
            build(&["", "/a", "/b/x"]),
            Err(BuildError::Orphan(_))
        ));
        assert!(matches!(build(&[]), Err(BuildError::NoRoot)));
        let mut b = TreeBuilder::new();
        assert!(matches!(
            b.add_node(SnapshotNode { acl: 5, ..node("") }),
            Err(BuildError::UnknownAcl(_, 5))
        ));
        // a node keeps its ACL index in 32 bits: a larger one is refused
        let big = 1i64 << 40;
        b.add_acl(big, vec![Acl::new(1, "world", "anyone")]);
        assert!(matches!(
            b.add_node(SnapshotNode { acl: big, ..node("") }),
            Err(BuildError::UnknownAcl(_, i)) if i == big
        ));
    }

    /// Duplicate paths are found however their home slots collide: three nodes with
    /// one home, and a duplicate after nodes that pushed each other along a probe run.
    #[test]
    fn duplicates_in_a_probe_run_are_found() {
        let mut b = TreeBuilder::with_hash_bits(0, 0);
        for p in ["", "/a", "/a"] {
            b.add_node(node(p)).expect("node");
        }
        assert!(matches!(b.finish(Zxid(7)), Err(BuildError::Duplicate(p)) if p == "/a"));
        for mask in [0x1u64, 0x3, 0x7] {
            let mut b = TreeBuilder::with_hash_bits(mask, 0);
            for p in ["", "/a", "/b", "/c", "/d", "/a"] {
                b.add_node(node(p)).expect("node");
            }
            assert!(
                matches!(b.finish(Zxid(7)), Err(BuildError::Duplicate(p)) if p == "/a"),
                "mask {mask:x}"
            );
        }
    }
}
