//! The tree as snapshots see it: a pre-order walk (root written as `""`), the ACL cache,
//! and a builder that rebuilds a tree from those. Must never do IO: the storage layer
//! owns the file format.

use super::{digest, java_len, AclCache, Children, DataTree, Name, Node, NodeMap};
use rzk_proto::records::{Acl, StatPersisted};
use rzk_proto::Data;
use std::sync::Arc;

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

impl DataTree {
    /// Visits every node pre-order (parents before children), root as `""`.
    pub fn for_each_snapshot_node(&self, mut f: impl FnMut(&str, &Data, i64, &StatPersisted)) {
        let mut stack: Vec<String> = vec!["/".to_owned()];
        while let Some(path) = stack.pop() {
            let Some(n) = self.nodes.get(path.as_str()) else {
                continue;
            };
            let shown = if path == "/" { "" } else { path.as_str() };
            f(shown, &n.data, n.acl, &n.stat);
            // Reverse so that children come out in name order.
            for c in n.children.iter().rev() {
                stack.push(rzk_proto::path::join(&path, c));
            }
        }
    }

    /// All nodes pre-order (see [`DataTree::for_each_snapshot_node`]).
    pub fn snapshot_nodes(&self) -> Vec<SnapshotNode> {
        let mut v = Vec::with_capacity(self.nodes.len());
        self.for_each_snapshot_node(|path, data, acl, stat| {
            v.push(SnapshotNode {
                path: path.to_owned(),
                data: data.clone(),
                acl,
                stat: stat.clone(),
            })
        });
        v
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
}

/// Rebuilds a tree: `add_acl` for every cache entry, then `add_node` in snapshot order
/// (parents first), then `finish`. Builds the tree's persistent maps directly (node
/// digests, data size and owner indexes as it goes), so `finish` only moves them.
#[derive(Debug)]
pub struct TreeBuilder {
    tree: DataTree,
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
                last_zxid: 0,
                digest: 0,
                data_size: 0,
                extended_types: false,
                digest_check: Default::default(),
            },
        }
    }
}

impl TreeBuilder {
    pub fn new() -> TreeBuilder {
        TreeBuilder::default()
    }

    pub fn add_acl(&mut self, index: i64, acl: Vec<Acl>) {
        self.tree.acls.insert_loaded(index, acl);
    }

    pub fn add_node(&mut self, node: SnapshotNode) -> Result<(), BuildError> {
        let t = &mut self.tree;
        let path: Name = if node.path.is_empty() {
            Name::from("/")
        } else {
            Name::from(node.path)
        };
        if !t.acls.contains(node.acl) {
            return Err(BuildError::UnknownAcl(path.to_string(), node.acl));
        }
        if t.nodes.contains_key(&path) {
            return Err(BuildError::Duplicate(path.to_string()));
        }
        if &*path != "/" {
            let parent = rzk_proto::path::parent(&path);
            let name = rzk_proto::path::basename(&path);
            match t.nodes.get_mut(parent) {
                Some(p) => {
                    Arc::make_mut(p).children.insert(Name::from(name));
                }
                None => return Err(BuildError::Orphan(path.to_string())),
            }
        }
        t.acls.add_usage(node.acl);
        let d = digest::node_digest(&path, &node.data, &node.stat);
        t.digest = t.digest.wrapping_add(d);
        t.data_size += java_len(&path) + node.data.len() as u64;
        t.index_owner(&path, node.stat.ephemeral_owner);
        t.nodes.insert(
            path,
            Arc::new(Node {
                data: node.data,
                acl: node.acl,
                stat: node.stat,
                children: Children::new(),
                digest: d,
            }),
        );
        Ok(())
    }

    /// The tree, with `last_zxid` as its last applied zxid (the snapshot's name zxid).
    pub fn finish(mut self, last_zxid: i64) -> Result<DataTree, BuildError> {
        if !self.tree.nodes.contains_key("/") {
            return Err(BuildError::NoRoot);
        }
        self.tree.acls.purge_unused();
        self.tree.rebuild_quotas();
        self.tree.last_zxid = last_zxid;
        Ok(self.tree)
    }
}
