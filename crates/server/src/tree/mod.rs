//! The data tree: znodes by full path, ACL cache, ephemerals by session, containers and
//! TTL nodes, the running digest, and the deterministic `apply` of committed txns.
//!
//! Owns: all znode state. Must never do IO, read clocks, or depend on anything but the
//! txns applied (time and sequence numbers come inside the txn). No ACL checks here:
//! callers (`prep`, `read`) do them.
//!
//! Every map and set in the tree is persistent (the path index and children sets:
//! `slots::SlotMap`, a directory of shared sorted buckets; the owner and quota indexes:
//! `imbl` B-trees), so `DataTree::clone()` copies a few roots, not the znodes: a
//! background snapshot clones under the tree lock in O(1) and the writer then copies
//! only the paths it changes while the clone is alive.
//!
//! Memory per znode (docs/STORAGE.md §10): a znode is one allocation holding its stat
//! (variable length), ACL index, name and data ([`node::Node`]); the path index is keyed
//! by a chained 64-bit hash of the full path, a parent's children set holds its
//! children's slot keys, and a lookup goes down from the root ([`node::NodeMap`]). The
//! node holds no cached digest (it is a pure function of path, data and stat, computed
//! when the node is added, changed or removed; the tree digest stays a running sum).

mod acl_cache;
mod apply;
pub mod digest;
pub mod ephemeral;
mod node;
pub mod quota;
mod slots;
mod snapshot;
pub mod store;

pub use acl_cache::{AclCache, OPEN_ACL_INDEX};
pub use snapshot::{BuildError, NodePrep, PreparedNode, SnapshotNode, TreeBuilder};

use rzk_proto::multi::OpResult;
use rzk_proto::records::{Acl, Stat, StatPersisted};
use rzk_proto::{Data, ErrorCode, SessionId, Zxid};
use std::sync::Arc;

/// A full znode path in the owner and quota indexes.
pub(crate) type Name = Arc<str>;
pub(crate) use node::{last_slash, split_path, Children, Node, NodeEdit, NodeMap};

/// The full path of the child `name` of the node at `parent`.
pub(crate) fn child_path(parent: &str, name: &str) -> String {
    let mut p = String::with_capacity(parent.len() + 1 + name.len());
    p.push_str(parent);
    if parent != "/" {
        p.push('/');
    }
    p.push_str(name);
    p
}

/// The reserved paths that can never be deleted.
pub const RESERVED_PATHS: [&str; 4] = ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"];

/// Whether `path` is one of [`RESERVED_PATHS`].
pub fn is_reserved(path: &str) -> bool {
    RESERVED_PATHS.contains(&path)
}

/// The result of applying one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyResult {
    pub zxid: Zxid,
    pub reply: TxnReply,
    pub changes: Vec<Change>,
}

/// What the originating client is told (the reply body is built by `reply.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnReply {
    Created {
        path: String,
        stat: Stat,
    },
    Deleted,
    SetData(Stat),
    SetAcl(Stat),
    Multi(Vec<OpResult>),
    SessionCreated,
    SessionClosed,
    /// An error txn, a txn that failed to apply, or `Ok` for a txn that changes nothing
    /// (a bare check).
    Error(ErrorCode),
}

/// One watch-relevant change, in apply order.
///
/// * `NODE_CREATED` at P: data watches at P (and recursive watches on ancestors).
/// * `NODE_DELETED` at P: data watches at P, then child watches at P skipping the
///   connections already notified by the data table.
/// * `NODE_DATA_CHANGED` at P: data watches at P.
/// * `NODE_CHILDREN_CHANGED` at P: child watches at P.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    /// `rzk_proto::opcode::event::*`.
    pub event_type: i32,
    /// ACL of the node the event is about (the parent's for NodeChildrenChanged): READ
    /// on it is required for delivery.
    pub acl: Arc<Vec<Acl>>,
}

/// The tree. Cloning is O(1) (persistent maps share their structure; see the module
/// doc) and is how a consistent snapshot can be taken without holding a lock while
/// writing it.
#[derive(Debug, Clone)]
pub struct DataTree {
    /// By client path; the root is `/`.
    pub(crate) nodes: NodeMap,
    pub(crate) acls: AclCache,
    /// Ephemeral paths by owning session.
    pub(crate) ephemerals: imbl::OrdMap<SessionId, imbl::OrdSet<Name>>,
    pub(crate) containers: imbl::OrdSet<Name>,
    pub(crate) ttls: imbl::OrdSet<Name>,
    /// Paths with a quota (derived from the `/zookeeper/quota` subtree, `quota.rs`).
    pub(crate) quota_roots: imbl::OrdSet<Name>,
    pub(crate) last_zxid: Zxid,
    pub(crate) digest: i64,
    pub(crate) data_size: u64,
    /// `zookeeper.extendedTypesEnabled`: TTL owners are reported as 0 only when on.
    pub(crate) extended_types: bool,
    /// Which digests are compared when (a loaded fuzzy snapshot), and the mismatches.
    pub(crate) digest_check: digest::DigestCheck,
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

/// The stat clients see for a node (cversion as ZooKeeper reports it, owner decoded).
pub(crate) fn client_stat(n: &Node, extended_types: bool) -> Stat {
    let num_children = n.num_children() as i32;
    let s = n.stat();
    Stat {
        czxid: s.czxid,
        mzxid: s.mzxid,
        ctime: s.ctime,
        mtime: s.mtime,
        version: s.version,
        cversion: s.cversion.wrapping_mul(2).wrapping_sub(num_children),
        aversion: s.aversion,
        ephemeral_owner: ephemeral::client_owner(s.ephemeral_owner, extended_types),
        data_length: n.data().len() as i32,
        num_children,
        pzxid: s.pzxid,
    }
}

/// Java's `String.length()` (UTF-16 units), used for ZooKeeper's data-size estimate.
pub(crate) fn java_len(s: &str) -> u64 {
    if s.is_ascii() {
        s.len() as u64
    } else {
        s.encode_utf16().count() as u64
    }
}

impl DataTree {
    /// An empty database: `/`, `/zookeeper`, `/zookeeper/quota`, `/zookeeper/config`.
    pub fn new() -> DataTree {
        DataTree::new_in(NodeMap::new())
    }

    /// [`DataTree::new`] over a given (empty) path index.
    fn new_in(nodes: NodeMap) -> DataTree {
        let mut t = DataTree {
            nodes,
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
        };
        let config_acl = t
            .acls
            .add(&[Acl::new(rzk_proto::opcode::perms::READ, "world", "anyone")]);
        let builtin = [
            ("/", OPEN_ACL_INDEX, 0),
            ("/zookeeper", OPEN_ACL_INDEX, 0),
            ("/zookeeper/quota", OPEN_ACL_INDEX, 0),
            ("/zookeeper/config", config_acl, -1),
        ];
        for (path, acl, aversion) in builtin {
            let stat = StatPersisted {
                aversion,
                ..Default::default()
            };
            t.insert_builtin(path, acl, &stat);
        }
        t
    }

    /// Adds an empty built-in node and links it; a missing parent (a tree loaded from a
    /// snapshot without `/zookeeper`) is added first, open to anyone.
    fn insert_builtin(&mut self, path: &str, acl: i64, stat: &StatPersisted) {
        let (parent, name) = split_path(path).unwrap_or(("/", ""));
        if !name.is_empty() && !self.nodes.contains_key(parent) {
            self.insert_builtin(parent, OPEN_ACL_INDEX, &StatPersisted::default());
        }
        let key = self.insert_node(path, Node::new(name, Some(&[]), acl, stat, None));
        if let (Some(key), false) = (key, name.is_empty()) {
            // Linked without a stat change, as ZooKeeper's built-in nodes.
            if let Some(p) = self.nodes.get_mut(parent) {
                p.update(None, |e| e.add_child(key));
            }
        }
    }

    /// Writes the ensemble membership into `/zookeeper/config` outside any txn, as
    /// ZooKeeper's `ZKDatabase.initConfigInZKDatabase` does when a quorum member starts
    /// and when a learner has synchronised with its leader: data `text`, `mzxid` =
    /// `version` (the membership's version), `mtime` = `time_ms` (the local wall clock,
    /// so it differs between members), stat `version` = -1; ctime, czxid and the ACL
    /// stay. A tree without the node (an old snapshot) gets it first, READ for anyone,
    /// as ZooKeeper's `addConfigNode`. The tree digest does not change: nodes under
    /// `/zookeeper/` contribute 0 (`digest::node_digest`), as in ZooKeeper.
    ///
    /// Returns the NodeDataChanged change for watches on the node.
    pub fn set_config_node(&mut self, text: &str, version: i64, time_ms: i64) -> Change {
        let path = crate::reconfig::CONFIG_NODE;
        if !self.nodes.contains_key(path) {
            let acl = self
                .acls
                .add(&[Acl::new(rzk_proto::opcode::perms::READ, "world", "anyone")]);
            let stat = StatPersisted {
                aversion: -1,
                ..Default::default()
            };
            self.insert_builtin(path, acl, &stat);
        }
        let acl = self
            .modify(path, Some(Some(text.as_bytes())), |n| {
                n.stat.mtime = time_ms;
                n.stat.mzxid = version;
                n.stat.version = -1;
            })
            .map_or(OPEN_ACL_INDEX, |m| m.acl);
        Change {
            path: path.to_owned(),
            event_type: rzk_proto::opcode::event::NODE_DATA_CHANGED,
            acl: self.acls.get(acl),
        }
    }

    /// The data of `/zookeeper/config` (empty on a standalone server).
    pub fn config_node_data(&self) -> Data {
        self.nodes
            .get(crate::reconfig::CONFIG_NODE)
            .map(Node::data_value)
            .unwrap_or_else(Data::empty)
    }

    /// Sets `zookeeper.extendedTypesEnabled` (TTL nodes). Off by default.
    pub fn set_extended_types(&mut self, on: bool) {
        self.extended_types = on;
    }

    /// Inserts a node, maintaining digest and data size (not parent links or indexes);
    /// its slot key, or `None` (nothing changed) when the path exists.
    pub(crate) fn insert_node(&mut self, path: &str, node: Node) -> Option<u64> {
        let d = digest::node_digest(path, node.data(), &node.stat());
        let size = java_len(path) + node.data().len() as u64;
        let key = self.nodes.insert_new(path, node).ok()?;
        self.digest = self.digest.wrapping_add(d);
        self.data_size += size;
        Some(key)
    }

    /// The full paths of the children of `n`, the node at `path` (any order).
    pub(crate) fn child_paths(&self, path: &str, n: &Node) -> Vec<String> {
        n.child_keys()
            .filter_map(self.nodes.sorted_get_key())
            .map(|c| child_path(path, c.name()))
            .collect()
    }

    /// The children of a node, in name order.
    pub(crate) fn sorted_children<'a>(&'a self, n: &'a Node) -> Vec<&'a Node> {
        let mut v: Vec<&Node> = n
            .child_keys()
            .filter_map(self.nodes.sorted_get_key())
            .collect();
        v.sort_unstable_by(|a, b| a.name_bytes().cmp(b.name_bytes()));
        v
    }

    /// Zxid of the last applied txn.
    pub fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    /// Sets the zxid of the last applied txn (a snapshot's name zxid, a SNAP's zxid).
    pub fn set_last_zxid(&mut self, zxid: Zxid) {
        self.last_zxid = zxid;
    }

    /// ZooKeeper's "Node count" (its map holds the root under both `""` and `/`).
    pub fn node_count(&self) -> usize {
        self.nodes.len() + 1
    }

    /// Sum of path lengths and data lengths (ZooKeeper's approximate data size).
    pub fn approximate_data_size(&self) -> u64 {
        self.data_size
    }

    /// The tree digest (docs/STORAGE.md §7).
    pub fn digest(&self) -> i64 {
        self.digest
    }

    /// Ephemerals owned by `session`, sorted.
    pub fn ephemerals(&self, session: SessionId) -> Vec<String> {
        self.ephemerals
            .get(&session)
            .map(|s| s.iter().map(|p| String::from(&**p)).collect())
            .unwrap_or_default()
    }

    /// Sessions owning at least one ephemeral, sorted.
    pub fn ephemeral_sessions(&self) -> Vec<SessionId> {
        self.ephemerals
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(k, _)| *k)
            .collect()
    }

    pub fn ephemerals_count(&self) -> usize {
        self.ephemerals.values().map(imbl::OrdSet::len).sum()
    }

    /// Containers due for deletion and, when TTLs are enabled, childless TTL nodes whose
    /// `now - mtime > ttl`. Sorted, at most `limit`.
    ///
    /// A container without children is due once it has had a child (cversion > 0), or,
    /// when `never_used_ms` (`znode.container.maxNeverUsedIntervalMs`) is not 0, once
    /// more than that many ms passed since it was last modified (ZooKeeper's
    /// `ContainerManager.getCandidates`).
    pub fn reaper_candidates(
        &self,
        now_ms: i64,
        ttl_enabled: bool,
        never_used_ms: i64,
        limit: usize,
    ) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in &self.containers {
            if let Some(n) = self.nodes.get(p) {
                let st = n.stat();
                let due = st.cversion > 0
                    || (never_used_ms != 0 && now_ms.saturating_sub(st.mtime) > never_used_ms);
                if !n.has_children() && due {
                    out.push(String::from(&**p));
                }
            }
        }
        if ttl_enabled {
            for p in &self.ttls {
                if let Some(n) = self.nodes.get(p) {
                    if let ephemeral::OwnerKind::Ttl(ttl) =
                        ephemeral::kind(n.stat().ephemeral_owner, true)
                    {
                        if !n.has_children()
                            && ttl != 0
                            && now_ms.saturating_sub(n.stat().mtime) > ttl
                        {
                            out.push(String::from(&**p));
                        }
                    }
                }
            }
        }
        out.sort();
        out.truncate(limit);
        out
    }

    pub(crate) fn client_stat(&self, n: &Node) -> Stat {
        client_stat(n, self.extended_types)
    }

    /// Looks a node up for a read. ZooKeeper keys the root as "" as well as "/", so a
    /// read of "" answers with the root (writes never get here with "": prep rejects it).
    fn node(&self, path: &str) -> Option<&Node> {
        self.nodes.get(if path.is_empty() { "/" } else { path })
    }

    /// Whether a node exists.
    pub fn exists(&self, path: &str) -> bool {
        self.node(path).is_some()
    }

    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.node(path).map(|n| self.client_stat(n))
    }

    /// The stored stat (stored cversion) of a node.
    pub fn stat_persisted(&self, path: &str) -> Option<StatPersisted> {
        self.node(path).map(|n| n.stat().clone())
    }

    /// Number of children of a node.
    pub fn num_children(&self, path: &str) -> Option<usize> {
        self.node(path).map(Node::num_children)
    }

    pub fn get_data(&self, path: &str) -> Option<(Data, Stat)> {
        self.get_data_with_acl(path)
            .map(|(_, data, stat)| (data, stat))
    }

    /// A node's ACL (for the caller's permission check), data and stat, with one
    /// lookup; `None` when it does not exist.
    pub fn get_data_with_acl(&self, path: &str) -> Option<(Arc<Vec<Acl>>, Data, Stat)> {
        self.node(path)
            .map(|n| (self.acls.get(n.acl()), n.data_value(), self.client_stat(n)))
    }

    /// Children names (sorted) and the node's stat.
    pub fn get_children(&self, path: &str) -> Option<(Vec<String>, Stat)> {
        self.get_children_with_acl(path)
            .map(|(_, names, stat)| (names, stat))
    }

    /// A node's ACL (for the caller's permission check), children names (sorted) and
    /// stat, with one lookup.
    pub fn get_children_with_acl(&self, path: &str) -> Option<(Arc<Vec<Acl>>, Vec<String>, Stat)> {
        self.node(path).map(|n| {
            let mut names: Vec<String> = n
                .child_keys()
                .filter_map(self.nodes.sorted_get_key())
                .map(|c| String::from(c.name()))
                .collect();
            names.sort_unstable();
            (self.acls.get(n.acl()), names, self.client_stat(n))
        })
    }

    pub fn get_acl(&self, path: &str) -> Option<(Vec<Acl>, Stat)> {
        self.node(path)
            .map(|n| (self.acls.get(n.acl()).as_ref().clone(), self.client_stat(n)))
    }

    /// The ACL of a node (shared), for permission checks.
    pub fn acl(&self, path: &str) -> Option<Arc<Vec<Acl>>> {
        self.node(path).map(|n| self.acls.get(n.acl()))
    }

    /// Number of descendants (not counting the node itself).
    pub fn all_children_number(&self, path: &str) -> Option<i32> {
        if path == "/" {
            return Some(self.nodes.len().saturating_sub(1) as i32);
        }
        let n = self.node(path)?;
        let mut count: i64 = 0;
        let mut stack: Vec<u64> = n.child_keys().collect();
        while let Some(k) = stack.pop() {
            count += 1;
            if let Some(c) = self.nodes.get_key(k) {
                stack.extend(c.child_keys());
            }
        }
        Some(count.min(i32::MAX as i64) as i32)
    }

    /// The ACL cache entries (index, list), sorted by index, for snapshots.
    pub fn acl_entries(&self) -> Vec<(i64, Vec<Acl>)> {
        self.acls.entries()
    }

    /// Recomputes the digest from scratch (tests / consistency checks).
    pub fn recompute_digest(&self) -> i64 {
        let mut acc = 0i64;
        self.for_each_snapshot_node(|path, data, _, stat| {
            let path = if path.is_empty() { "/" } else { path };
            acc = acc.wrapping_add(digest::node_digest(path, data.unwrap_or(&[]), stat));
        });
        acc
    }
}

#[cfg(test)]
mod tests;
