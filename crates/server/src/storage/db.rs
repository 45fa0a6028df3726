//! The glue between the data tree and the files: [`save_snapshot`] writes a `DataTree`
//! (+ session table) as a ZooKeeper snapshot, [`load`] rebuilds the tree and session
//! table from dataDir/dataLogDir (newest valid snapshot, then `DataTree::apply` for every
//! later logged txn).
//!
//! Owns only that translation. It never decides when to snapshot (snap_policy.rs), never
//! appends to logs and never closes sessions itself: sessions owning ephemerals but
//! missing from the session table are reported in [`LoadedDb::orphan_sessions`] for the
//! server to close through the write path, as ZooKeeper does at start-up.

use super::files::{self, Compression};
use super::recovery::{
    self, RecoveryError, RecoveryOptions, RecoveryReport, RecoverySink, StartState,
};
use super::snapshot::{SnapNode, SnapshotError, SnapshotTrailer, SnapshotWriter, ZxidDigest};
use crate::tree::digest::SnapshotDigest;
use crate::tree::{DataTree, NodePrep, PreparedNode, SnapshotNode, TreeBuilder};
use rzk_proto::records::Acl;
use rzk_proto::txn::{Txn, TxnRecord};
use rzk_proto::SessionId;
use std::collections::BTreeMap;
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
/// tree under the read lock and call this on another thread. Returns the file's path.
pub fn save_snapshot(
    tree: &DataTree,
    sessions: &[(SessionId, i32)],
    data_dir: &Path,
    opts: SnapshotOptions,
) -> Result<PathBuf, DbError> {
    let dir = files::ensure_version_dir(data_dir).map_err(|source| DbError::Io {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let zxid = tree.last_zxid();
    let mut w = SnapshotWriter::create(&dir, zxid, opts.compression)?;
    let mut sorted: Vec<(i64, i32)> = sessions.iter().map(|(id, to)| (id.0, *to)).collect();
    sorted.sort_unstable();
    w.sessions(&sorted)?;
    w.acl_cache(&tree.acl_entries())?;
    let mut first_err = None;
    tree.for_each_snapshot_node(|path, data, acl, stat| {
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
    } else if zxid <= 0 {
        Some(ZxidDigest::EMPTY)
    } else {
        Some(ZxidDigest {
            zxid,
            version: super::snapshot::DIGEST_VERSION,
            digest: tree.digest(),
        })
    };
    let path = w.finish(digest)?;
    tracing::info!(file = %path.display(), zxid = format_args!("0x{zxid:x}"), "snapshot written");
    Ok(path)
}

/// The recovered database.
#[derive(Debug)]
pub struct LoadedDb {
    pub tree: DataTree,
    /// Global sessions with their timeouts (from the snapshot, then create/closeSession
    /// txns).
    pub sessions: BTreeMap<SessionId, i32>,
    /// Highest zxid (-1: untrusted empty database).
    pub last_zxid: i64,
    /// Sessions that own ephemerals but are not in `sessions`: the server must close them.
    pub orphan_sessions: Vec<SessionId>,
    /// Where a `snapshot.0` was written for a brand-new database.
    pub initial_snapshot: Option<PathBuf>,
    pub report: RecoveryReport,
}

/// Builds a [`DataTree`] from the snapshot part of a recovery (ACL cache, then nodes).
/// Shared by every [`RecoverySink`] that needs the tree: [`load`] here and the server's
/// start-up (every configuration) in `storage/open.rs`.
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

    /// The preparer of the current builder (see [`RecoverySink::preparer`]).
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
        zxid: i64,
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
pub(crate) fn warn_snapshot_digest_not_covered(tree: &DataTree, highest_zxid: i64) {
    if let Some(d) = tree.pending_snapshot_digest() {
        tracing::warn!(
            highest = format_args!("0x{highest_zxid:x}"),
            digest_zxid = format_args!("0x{:x}", d.zxid),
            "the logged txns do not cover the snapshot digest's zxid; state may be inconsistent"
        );
    }
}

struct TreeSink {
    loader: SnapshotTreeLoader,
    tree: Option<DataTree>,
    sessions: BTreeMap<SessionId, i32>,
    extended_types: bool,
}

impl TreeSink {
    fn tree(&mut self) -> &mut DataTree {
        let ext = self.extended_types;
        self.tree.get_or_insert_with(|| {
            let mut t = DataTree::new();
            t.set_extended_types(ext);
            t
        })
    }
}

impl RecoverySink for TreeSink {
    fn reset(&mut self) {
        self.loader.reset();
        self.tree = None;
        self.sessions.clear();
    }

    fn sessions(&mut self, sessions: Vec<(i64, i32)>) -> Result<(), String> {
        self.sessions
            .extend(sessions.into_iter().map(|(id, to)| (SessionId(id), to)));
        Ok(())
    }

    fn acl_cache(&mut self, entries: Vec<(i64, Vec<Acl>)>) -> Result<(), String> {
        self.loader.acl_cache(entries)
    }

    fn node(&mut self, n: SnapNode) -> Result<(), String> {
        self.loader.node(n)
    }

    fn preparer(&mut self) -> Option<crate::tree::NodePrep> {
        Some(self.loader.preparer())
    }

    fn prepared_node(&mut self, n: crate::tree::PreparedNode) -> Result<(), String> {
        self.loader.prepared_node(n)
    }

    fn snapshot_loaded(&mut self, zxid: i64, trailer: &SnapshotTrailer) -> Result<(), String> {
        let mut t = self.loader.finish(zxid, trailer)?;
        t.set_extended_types(self.extended_types);
        self.tree = Some(t);
        Ok(())
    }

    fn txn(&mut self, rec: &TxnRecord) -> Result<(), String> {
        match &rec.txn {
            Txn::CreateSession(c) => {
                self.sessions
                    .insert(SessionId(rec.header.client_id), c.timeout_ms);
            }
            Txn::CloseSession(_) => {
                self.sessions.remove(&SessionId(rec.header.client_id));
            }
            _ => {}
        }
        // Failures (NONODE / NODEEXISTS on a fuzzy snapshot) are expected and ignored;
        // the tree checks digests (not inside the snapshot's fuzzy window).
        self.tree().apply(rec);
        Ok(())
    }
}

/// Loads the database from `data_dir` (snapshots) and `data_log_dir` (logs). A brand-new
/// empty database gets its `snapshot.0` written here, as ZooKeeper does.
pub fn load(
    data_dir: &Path,
    data_log_dir: &Path,
    opts: &RecoveryOptions,
    extended_types: bool,
    snap_opts: SnapshotOptions,
) -> Result<LoadedDb, DbError> {
    let mut sink = TreeSink {
        loader: SnapshotTreeLoader::default(),
        tree: None,
        sessions: BTreeMap::new(),
        extended_types,
    };
    let report = recovery::recover(data_dir, data_log_dir, opts, &mut sink)?;
    if let Some(t) = &sink.tree {
        warn_snapshot_digest_not_covered(t, report.last_zxid);
    }
    let mut tree = sink.tree.take().unwrap_or_else(|| {
        let mut t = DataTree::new();
        t.set_extended_types(extended_types);
        t
    });
    let mut initial_snapshot = None;
    let last_zxid = match report.state {
        StartState::Loaded => report.last_zxid.max(tree.last_zxid()),
        StartState::NewEmpty => {
            tree.set_last_zxid(0);
            initial_snapshot = Some(save_snapshot(&tree, &[], data_dir, snap_opts)?);
            0
        }
        StartState::Untrusted => {
            tree.set_last_zxid(-1);
            -1
        }
    };
    if last_zxid > tree.last_zxid() {
        tree.set_last_zxid(last_zxid);
    }
    let orphan_sessions = tree
        .ephemeral_sessions()
        .into_iter()
        .filter(|s| !sink.sessions.contains_key(s))
        .collect();
    Ok(LoadedDb {
        tree,
        sessions: sink.sessions,
        last_zxid,
        orphan_sessions,
        initial_snapshot,
        report,
    })
}
