//! The data tree: znodes by full path, ACL cache, ephemerals by session, containers and
//! TTL nodes, and the deterministic `apply` of committed transactions.
//!
//! Owns: all znode state. Must never do IO, read clocks, or depend on anything but the
//! txns applied (time and sequence numbers come inside the txn).

use bytes::Bytes;
use rzk_proto::multi::OpResult;
use rzk_proto::records::{Acl, Stat, StatPersisted};
use rzk_proto::txn::TxnRecord;
use rzk_proto::ErrorCode;
use std::sync::Arc;

/// The result of applying one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyResult {
    pub zxid: i64,
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
    /// An error txn (or `Ok` for a txn that changes nothing, e.g. check).
    Error(ErrorCode),
}

/// One watch-relevant change, in apply order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    /// `rzk_proto::opcode::event::*`.
    pub event_type: i32,
    /// ACL of the node the event is about (parent for NodeChildrenChanged): READ is
    /// required for delivery.
    pub acl: Arc<Vec<Acl>>,
}

/// One node as written in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotNode {
    /// Root is `""`.
    pub path: String,
    pub data: Bytes,
    pub acl: i64,
    pub stat: StatPersisted,
}

/// The tree.
#[derive(Debug, Default)]
pub struct DataTree {
    last_zxid: i64,
}

impl DataTree {
    pub fn new() -> DataTree {
        DataTree::default()
    }
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }
    pub fn set_last_zxid(&mut self, zxid: i64) {
        self.last_zxid = zxid;
    }
    pub fn apply(&mut self, rec: &TxnRecord) -> ApplyResult {
        ApplyResult {
            zxid: rec.header.zxid,
            reply: TxnReply::Error(ErrorCode::Unimplemented),
            changes: Vec::new(),
        }
    }
    pub fn node_count(&self) -> usize {
        0
    }
    pub fn approximate_data_size(&self) -> u64 {
        0
    }
    pub fn digest(&self) -> i64 {
        0
    }
    pub fn ephemerals(&self, _session: i64) -> Vec<String> {
        Vec::new()
    }
    pub fn ephemeral_sessions(&self) -> Vec<i64> {
        Vec::new()
    }
    pub fn ephemerals_count(&self) -> usize {
        0
    }
    pub fn reaper_candidates(
        &self,
        _now_ms: i64,
        _ttl_enabled: bool,
        _limit: usize,
    ) -> Vec<String> {
        Vec::new()
    }
    pub fn stat(&self, _path: &str) -> Option<Stat> {
        None
    }
    pub fn get_data(&self, _path: &str) -> Option<(Bytes, Stat)> {
        None
    }
    pub fn get_children(&self, _path: &str) -> Option<(Vec<String>, Stat)> {
        None
    }
    pub fn get_acl(&self, _path: &str) -> Option<(Vec<Acl>, Stat)> {
        None
    }
    pub fn all_children_number(&self, _path: &str) -> Option<i32> {
        None
    }
    /// Pre-order snapshot walk.
    pub fn snapshot_nodes(&self) -> Vec<SnapshotNode> {
        Vec::new()
    }
    /// ACL cache entries (index, list), for snapshots.
    pub fn acl_entries(&self) -> Vec<(i64, Vec<Acl>)> {
        Vec::new()
    }
}

/// Rebuilds a tree from a snapshot's ACL cache and node list (pre-order).
#[derive(Debug, Default)]
pub struct TreeBuilder {}

/// Why a snapshot could not be turned into a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("node {0:?} has no parent in the snapshot")]
    Orphan(String),
    #[error("node {0:?} references unknown ACL index {1}")]
    UnknownAcl(String, i64),
    #[error("snapshot has no root node")]
    NoRoot,
}

impl TreeBuilder {
    pub fn new() -> TreeBuilder {
        TreeBuilder::default()
    }
    pub fn add_acl(&mut self, _index: i64, _acl: Vec<Acl>) {}
    pub fn add_node(&mut self, _node: SnapshotNode) -> Result<(), BuildError> {
        Ok(())
    }
    pub fn finish(self, last_zxid: i64) -> Result<DataTree, BuildError> {
        let mut t = DataTree::new();
        t.set_last_zxid(last_zxid);
        Ok(t)
    }
}
