//! The tree as snapshots see it: a pre-order walk (root written as `""`), the ACL cache,
//! and a builder that rebuilds a tree from those. Must never do IO: the storage layer
//! owns the file format.

use super::{digest, java_len, AclCache, Children, DataTree, Node, NodeMap};
use rzk_proto::records::{Acl, StatPersisted};
use rzk_proto::Data;

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
    /// `snapshot.0` equals ZooKeeper's, whatever the hash seed).
    pub fn for_each_snapshot_node(&self, f: impl FnMut(&str, Option<&[u8]>, i64, &StatPersisted)) {
        self.walk(false, f)
    }

    /// The pre-order walk; siblings in name order when `sorted`.
    fn walk(&self, sorted: bool, mut f: impl FnMut(&str, Option<&[u8]>, i64, &StatPersisted)) {
        let Some(root) = self.nodes.get("/") else {
            return;
        };
        // Nodes hold their full paths: the walk builds no strings.
        let mut stack: Vec<&Node> = vec![root];
        while let Some(n) = stack.pop() {
            let path = n.path();
            let shown = if path == "/" { "" } else { path };
            f(shown, n.data_opt(), n.acl(), n.stat());
            if !n.has_children() {
                continue;
            }
            if sorted || n.num_children() <= NAME_ORDER_MAX {
                // Reversed so that children come out in name order.
                stack.extend(self.sorted_children(n).into_iter().rev());
            } else {
                let from = stack.len();
                stack.extend(n.child_keys().filter_map(|k| self.nodes.get_key(k)));
                stack[from..].reverse();
            }
        }
    }

    /// All nodes pre-order as [`DataTree::for_each_snapshot_node`] visits them, but
    /// siblings in name order, so that trees with the same content give the same list
    /// (tests compare them).
    pub fn snapshot_nodes(&self) -> Vec<SnapshotNode> {
        let mut v = Vec::with_capacity(self.nodes.len());
        self.walk(true, |path, data, acl, stat| {
            v.push(SnapshotNode {
                path: path.to_owned(),
                data: Data::from(data.map(bytes::Bytes::copy_from_slice)),
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
///
/// Snapshots list the nodes in pre-order (ZooKeeper's and rzk's writers recurse), so
/// the parent of a node is almost always the node added last or one of its ancestors.
/// Those are kept `open` while their subtree is being added: a child's slot key goes
/// into the open parent's children set, which is stored into the parent (one map
/// access) when its subtree has ended (or at `finish`). Any other order (a parent added
/// long before) still works, through the map.
#[derive(Debug)]
pub struct TreeBuilder {
    tree: DataTree,
    /// A chain of nodes whose subtrees may still grow, outermost first: each one is a
    /// child of the one before it: (path, slot key, children gathered so far).
    open: Vec<(String, u64, Children)>,
}

/// True when `anc` is a proper ancestor of `path` (`/` is the ancestor of every other
/// path).
fn is_ancestor(anc: &str, path: &str) -> bool {
    if anc == "/" {
        return path != "/";
    }
    path.len() > anc.len() && path.as_bytes()[anc.len()] == b'/' && path.starts_with(anc)
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
            open: Vec::new(),
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
        let path: String = if node.path.is_empty() {
            String::from("/")
        } else {
            node.path
        };
        if !self.tree.acls.contains(node.acl) || !Node::acl_fits(node.acl) {
            return Err(BuildError::UnknownAcl(path, node.acl));
        }
        // The open nodes that are not ancestors of this one are complete.
        while self
            .open
            .last()
            .is_some_and(|(p, _, _)| !is_ancestor(p, &path))
        {
            self.close_last();
        }
        let open_parent = path != "/"
            && self
                .open
                .last()
                .is_some_and(|(p, _, _)| p == rzk_proto::path::parent(&path));
        if path != "/" && !open_parent {
            // Not pre-order: the parent, if any, is in the map (or an open ancestor
            // further out, closed by the flush).
            self.flush();
            if !self.tree.nodes.contains_key(rzk_proto::path::parent(&path)) {
                return Err(BuildError::Orphan(path));
            }
        }
        let new = Node::new(
            &path,
            node.data.as_option().map(|b| &b[..]),
            node.acl,
            node.stat.clone(),
            None,
        );
        let Ok(key) = self.tree.nodes.insert_new(new) else {
            return Err(BuildError::Duplicate(path));
        };
        if path != "/" {
            match self.open.last_mut() {
                Some((_, _, children)) if open_parent => {
                    children.insert(key);
                }
                _ => self.tree.link_child(rzk_proto::path::parent(&path), &path),
            }
        }
        let t = &mut self.tree;
        t.acls.add_usage(node.acl);
        t.digest = t
            .digest
            .wrapping_add(digest::node_digest(&path, &node.data, &node.stat));
        t.data_size += java_len(&path) + node.data.len() as u64;
        if node.stat.ephemeral_owner != 0 {
            t.index_owner(&super::Name::from(path.as_str()), node.stat.ephemeral_owner);
        }
        self.open.push((path, key, Children::new()));
        Ok(())
    }

    /// Stores the innermost open node's children into it.
    fn close_last(&mut self) {
        if let Some((_, key, children)) = self.open.pop() {
            if !children.is_empty() {
                if let Some(n) = self.tree.nodes.get_key_mut(key) {
                    n.edit(|h| {
                        if h.children_mut().is_empty() {
                            h.set_children(children);
                        } else {
                            let mut all = h.children_mut().clone();
                            all.extend(children);
                            h.set_children(all);
                        }
                    });
                }
            }
        }
    }

    /// Closes every open node.
    fn flush(&mut self) {
        while !self.open.is_empty() {
            self.close_last();
        }
    }

    /// The tree, with `last_zxid` as its last applied zxid (the snapshot's name zxid).
    pub fn finish(mut self, last_zxid: i64) -> Result<DataTree, BuildError> {
        self.flush();
        if !self.tree.nodes.contains_key("/") {
            return Err(BuildError::NoRoot);
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
        b.finish(7)
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
            assert_eq!(t.last_zxid(), 7);
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
}
