//! The glue between the data tree and the files: [`save_snapshot`] writes a `DataTree`
//! (+ session table) as a ZooKeeper snapshot, and the snapshot half of a recovery builds
//! the tree back (`SnapshotTreeLoader`, used by the one start-up path,
//! [`super::open`]; the logged txns are applied by the node once committed, or by
//! `Recovered::replay_log` for offline readers).
//!
//! Owns only that translation. It never decides when to snapshot (snap_policy.rs), never
//! appends to logs and never closes sessions.

use super::files::{self, Compression};
use super::recovery::RecoveryError;
use super::snapshot::{SnapNode, SnapshotError, SnapshotTrailer, SnapshotWriter, ZxidDigest};
use crate::tree::digest::SnapshotDigest;
use crate::tree::{DataTree, NodePrep, PreparedNode, SnapshotNode, TreeBuilder};
use rzk_proto::records::Acl;
use rzk_proto::{SessionId, Zxid};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Recovery(#[from] RecoveryError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Snapshot-writing settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnapshotOptions {
    /// `zookeeper.snapshot.compression.method`.
    pub compression: Compression,
    /// `zookeeper.digest.enabled` is off: no digest block.
    pub digest_disabled: bool,
}

/// Writes `tree` and `sessions` as `<data_dir>/version-2/snapshot.<hex tree.last_zxid()>`
/// (atomically: `.tmp`, fsync, rename). To snapshot without blocking writes, clone the
/// tree under the read lock (O(1)) and call this on another thread. Takes the tree by
/// value: it keeps only the nodes, in order, once it has them
/// (`DataTree::into_snapshot_order`), so that when `tree` is a clone nothing else holds,
/// the live tree's writer stops copying the index buckets the clone shared. Returns the
/// file's path.
pub fn save_snapshot(
    tree: DataTree,
    sessions: &[(SessionId, i32)],
    data_dir: &Path,
    opts: SnapshotOptions,
) -> Result<PathBuf, DbError> {
    let dir = files::ensure_version_dir(data_dir).map_err(|source| DbError::Io {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let started = std::time::Instant::now();
    let order = tree.into_snapshot_order();
    tracing::debug!(
        nodes = order.len(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "snapshot: nodes collected, path index released"
    );
    let zxid = order.last_zxid();
    let digest = order.digest();
    let mut w = SnapshotWriter::create(&dir, zxid, opts.compression)?;
    let mut sorted: Vec<(i64, i32)> = sessions.iter().map(|(id, to)| (id.0, *to)).collect();
    sorted.sort_unstable();
    w.sessions(&sorted)?;
    w.acl_cache(order.acl_entries())?;
    let mut first_err = None;
    order.for_each(|path, data, acl, stat| {
        if first_err.is_none() {
            if let Err(e) = w.node_bytes(path, data, acl, stat) {
                first_err = Some(e);
            }
        }
    });
    if let Some(e) = first_err {
        return Err(e.into());
    }
    let digest = if opts.digest_disabled {
        None
    } else if zxid <= Zxid::ZERO {
        Some(ZxidDigest::EMPTY)
    } else {
        Some(ZxidDigest {
            zxid,
            version: super::snapshot::DIGEST_VERSION,
            digest,
        })
    };
    let path = w.finish(digest)?;
    tracing::info!(file = %path.display(), %zxid, "snapshot written");
    Ok(path)
}

/// Builds a [`DataTree`] from the snapshot part of a recovery (ACL cache, then nodes).
/// Used by the server's start-up (every configuration) in `storage/open.rs`.
#[derive(Default)]
pub(crate) struct SnapshotTreeLoader {
    builder: Option<TreeBuilder>,
}

impl SnapshotTreeLoader {
    pub(crate) fn reset(&mut self) {
        self.builder = Some(TreeBuilder::new());
    }

    pub(crate) fn acl_cache(&mut self, entries: Vec<(i64, Vec<Acl>)>) -> Result<(), String> {
        let b = self.builder.get_or_insert_with(TreeBuilder::new);
        for (idx, acl) in entries {
            b.add_acl(idx, acl);
        }
        Ok(())
    }

    pub(crate) fn node(&mut self, n: SnapNode) -> Result<(), String> {
        let b = self.builder.get_or_insert_with(TreeBuilder::new);
        b.add_node(SnapshotNode {
            path: n.path,
            data: n.data,
            acl: n.acl,
            stat: n.stat,
        })
        .map_err(|e| format!("invalid data tree: {e}"))
    }

    /// The preparer of the current builder (see [`super::recovery::RecoverySink::preparer`]).
    pub(crate) fn preparer(&mut self) -> NodePrep {
        self.builder.get_or_insert_with(TreeBuilder::new).preparer()
    }

    pub(crate) fn prepared_node(&mut self, n: PreparedNode) -> Result<(), String> {
        let b = self.builder.get_or_insert_with(TreeBuilder::new);
        b.add_prepared(n)
            .map_err(|e| format!("invalid data tree: {e}"))
    }

    /// The tree of the snapshot just read, at `zxid`, with the digest of its `trailer`
    /// pending: the tree's digest is checked against it when the txns replayed (or, on
    /// a quorum member, applied once committed) reach its zxid, and only from then on
    /// against each txn's logged digest; the txns before it are the snapshot's fuzzy
    /// window (see [`crate::tree::digest`]'s `DigestCheck`).
    pub(crate) fn finish(
        &mut self,
        zxid: Zxid,
        trailer: &SnapshotTrailer,
    ) -> Result<DataTree, String> {
        let mut tree = self
            .builder
            .take()
            .unwrap_or_default()
            .finish(zxid)
            .map_err(|e| format!("invalid data tree: {e}"))?;
        tree.expect_snapshot_digest(trailer.digest.map(|d| SnapshotDigest {
            zxid: d.zxid,
            version: d.version,
            digest: d.digest,
        }));
        Ok(tree)
    }
}

/// Warns, as ZooKeeper does at the end of its restore, that the logged txns (up to
/// `highest_zxid`) do not include the zxid of the loaded snapshot's digest, still
/// pending in `tree`: the fuzzy snapshot can never be checked, nor any later txn.
pub(crate) fn warn_snapshot_digest_not_covered(tree: &DataTree, highest_zxid: Zxid) {
    if let Some(d) = tree.pending_snapshot_digest() {
        tracing::warn!(
            highest = %highest_zxid,
            digest_zxid = %d.zxid,
            "the logged txns do not cover the snapshot digest's zxid; state may be inconsistent"
        );
    }
}
