//! Start-up of a quorum member: the database is loaded from the newest valid snapshot
//! only; transactions logged after it are handed to the consensus core (not applied),
//! which applies them once they are known to be committed. Also reads (or creates) the
//! epoch files.
//!
//! Owns only this start-up reading. Never writes anything but a brand-new database's
//! `snapshot.0` and missing epoch files.

use super::epoch_file;
use super::QuorumError;
use crate::config::Config;
use crate::storage::db::{self, SnapshotOptions, SnapshotTreeLoader};
use crate::storage::files;
use crate::storage::recovery::{self, RecoveryOptions, RecoverySink, StartState};
use crate::storage::snapshot::{SnapNode, SnapshotTrailer};
use crate::tree::DataTree;
use crate::zab::{Durable, EpochKind, Txn};
use bytes::Bytes;
use rzk_proto::records::Acl;
use rzk_proto::txn::TxnRecord;
use rzk_proto::Zxid;

/// What a quorum member starts from.
#[derive(Debug)]
pub struct Recovered {
    /// The database at `durable.snapshot_zxid`.
    pub tree: DataTree,
    /// Session table of the snapshot.
    pub sessions: Vec<(i64, i32)>,
    pub durable: Durable,
}

struct SnapshotOnly {
    loader: SnapshotTreeLoader,
    tree: Option<DataTree>,
    sessions: Vec<(i64, i32)>,
    log: Vec<Txn>,
    snap_zxid: i64,
}

impl RecoverySink for SnapshotOnly {
    fn reset(&mut self) {
        self.loader.reset();
        self.tree = None;
        self.sessions.clear();
        self.log.clear();
        self.snap_zxid = 0;
    }

    fn sessions(&mut self, sessions: Vec<(i64, i32)>) -> Result<(), String> {
        self.sessions.extend(sessions);
        Ok(())
    }

    fn acl_cache(&mut self, entries: Vec<(i64, Vec<Acl>)>) -> Result<(), String> {
        self.loader.acl_cache(entries)
    }

    fn node(&mut self, n: SnapNode) -> Result<(), String> {
        self.loader.node(n)
    }

    fn snapshot_loaded(&mut self, zxid: i64, trailer: &SnapshotTrailer) -> Result<(), String> {
        // The tree keeps the snapshot's digest pending: the txns of its fuzzy window are
        // applied (once committed) without digest checks, as in the standalone replay.
        self.tree = Some(self.loader.finish(zxid, trailer)?);
        self.snap_zxid = zxid;
        Ok(())
    }

    fn txn(&mut self, rec: &TxnRecord) -> Result<(), String> {
        let zxid = Zxid(rec.header.zxid);
        if zxid.0 > self.snap_zxid && self.log.last().is_none_or(|t| t.zxid < zxid) {
            self.log.push(Txn {
                zxid,
                payload: Bytes::from(rec.encode()),
            });
        }
        Ok(())
    }
}

/// Loads the snapshot, collects the later log, reads the epochs.
pub fn recover(cfg: &Config) -> Result<Recovered, QuorumError> {
    let mut sink = SnapshotOnly {
        loader: SnapshotTreeLoader::default(),
        tree: None,
        sessions: Vec::new(),
        log: Vec::new(),
        snap_zxid: 0,
    };
    let report = recovery::recover(
        &cfg.data_dir,
        &cfg.data_log_dir,
        &RecoveryOptions::default(),
        &mut sink,
    )
    .map_err(|e| QuorumError::Recovery(e.to_string()))?;
    let mut tree = sink.tree.take().unwrap_or_default();
    tree.set_extended_types(cfg.extended_types_enabled);
    match report.state {
        StartState::Loaded => {}
        StartState::NewEmpty | StartState::Untrusted => {
            tree.set_last_zxid(0);
            db::save_snapshot(&tree, &[], &cfg.data_dir, SnapshotOptions::default())
                .map_err(|e| QuorumError::Recovery(e.to_string()))?;
        }
    }
    let snapshot_zxid = Zxid(tree.last_zxid().max(0));
    let last = sink.log.last().map_or(snapshot_zxid, |t| t.zxid);
    if let Some(d) = tree.pending_snapshot_digest() {
        if !sink.log.iter().any(|t| t.zxid.0 == d.zxid) {
            db::warn_snapshot_digest_not_covered(&tree, last.0);
        }
    }
    let dir = files::ensure_version_dir(&cfg.data_dir).map_err(|source| QuorumError::Io {
        path: cfg.data_dir.clone(),
        source,
    })?;
    let rd = |k| epoch_file::read(&dir, k).map_err(|e| QuorumError::Recovery(e.to_string()));
    let current = match rd(EpochKind::Current)? {
        Some(e) => e,
        None => {
            let e = last.epoch();
            tracing::info!(
                epoch = e,
                "currentEpoch not found; creating it from the last zxid"
            );
            epoch_file::write(&dir, EpochKind::Current, e)
                .map_err(|e| QuorumError::Recovery(e.to_string()))?;
            e
        }
    };
    if last.epoch() > current {
        // Proposals of the new epoch logged during sync, before NEWLEADER made
        // currentEpoch durable: keep the older epoch (the conservative vote).
        tracing::warn!(%last, current, "the last logged zxid is of an epoch newer than currentEpoch");
    }
    let accepted = match rd(EpochKind::Accepted)? {
        Some(e) => e,
        None => {
            tracing::info!(epoch = current, "acceptedEpoch not found; creating it");
            epoch_file::write(&dir, EpochKind::Accepted, current)
                .map_err(|e| QuorumError::Recovery(e.to_string()))?;
            current
        }
    };
    if accepted < current {
        return Err(QuorumError::Recovery(format!(
            "acceptedEpoch {accepted} is less than currentEpoch {current}"
        )));
    }
    tracing::info!(
        snapshot = %snapshot_zxid,
        logged = sink.log.len(),
        last = %last,
        accepted,
        current,
        "quorum state recovered"
    );
    Ok(Recovered {
        tree,
        sessions: std::mem::take(&mut sink.sessions),
        durable: Durable {
            accepted_epoch: accepted,
            current_epoch: current,
            snapshot_zxid,
            log: std::mem::take(&mut sink.log),
        },
    })
}
