//! Opening storage at start-up — the one way, for one voter or many: remove unfinished
//! `snapshot.*.tmp` files, load the newest valid snapshot (its digest checked as
//! ZooKeeper does, see `tree/digest.rs`), collect the transactions logged after it for
//! the consensus core (which applies them once it knows they are committed), and read
//! (or create) the epoch files. Every storage setting is honoured here
//! ([`StorageSettings`]): `snapshot.trust.empty`, `datadir.autocreate`, `db.autocreate`, and the
//! compression and digest of a new database's `snapshot.0`; the disk queue opens the log
//! with the same settings (`txnLogSizeLimitInKb`, `preAllocSize`, `forceSync`).
//!
//! Owns only this start-up reading. Never writes anything but a brand-new database's
//! `snapshot.0` and missing epoch files, and never removes anything but `.tmp`
//! snapshots. Any corruption other than a torn log tail is an error naming the file and
//! offset.

use super::epoch_file;
use super::settings::StorageSettings;
use crate::config::Config;
use crate::storage::db::{self, SnapshotTreeLoader};
use crate::storage::files;
use crate::storage::recovery::{self, RecoveryReport, RecoverySink, StartState};
use crate::storage::snapshot::{SnapNode, SnapshotTrailer};
use crate::tree::DataTree;
use crate::zab::{Durable, EpochKind, Txn};
use bytes::Bytes;
use rzk_proto::records::Acl;
use rzk_proto::txn::{Txn as TxnBody, TxnRecord};
use rzk_proto::{SessionId, Zxid};
use std::collections::BTreeMap;

/// What a server starts from.
#[derive(Debug)]
pub struct Recovered {
    /// The database at `durable.snapshot_zxid`.
    pub tree: DataTree,
    /// Session table of the snapshot.
    pub sessions: Vec<(SessionId, i32)>,
    /// Epochs and the log after the snapshot, for the consensus core.
    pub durable: Durable,
    /// The settings storage was opened with (the disk queue uses the same).
    pub settings: StorageSettings,
    /// What recovery found (snapshot used, skipped snapshots, torn tails).
    pub report: RecoveryReport,
}

/// A data directory read as a restart reads it, then every logged txn applied in order
/// (see [`Recovered::replay_log`]): what offline readers of a data directory (tools,
/// tests) want. A server never builds one: it applies the logged txns once the quorum
/// has committed them.
#[derive(Debug)]
pub struct Replayed {
    /// The database after the last logged txn.
    pub tree: DataTree,
    /// Global sessions with their timeouts (from the snapshot, then the logged
    /// createSession / closeSession txns).
    pub sessions: BTreeMap<SessionId, i32>,
    /// The highest zxid: the last logged txn's, else the snapshot's.
    pub last_zxid: Zxid,
    /// Sessions that own ephemerals but are not in `sessions` (a server closes them
    /// through the write path, as ZooKeeper does at start-up).
    pub orphan_sessions: Vec<SessionId>,
    /// What recovery found (snapshot used, skipped snapshots, torn tails).
    pub report: RecoveryReport,
}

impl Recovered {
    /// Applies every txn of `durable.log` to the tree, in order, treating each as
    /// committed (as a single voter does at start-up), and tracks the session table
    /// through them. Failed txns (NONODE / NODEEXISTS in a fuzzy snapshot's window) are
    /// ignored as ZooKeeper's replay ignores them.
    pub fn replay_log(self) -> Result<Replayed, OpenError> {
        let mut tree = self.tree;
        let mut sessions: BTreeMap<SessionId, i32> = self.sessions.into_iter().collect();
        for t in &self.durable.log {
            let rec = TxnRecord::decode(&t.payload).map_err(|e| OpenError::Log {
                zxid: t.zxid,
                reason: e.to_string(),
            })?;
            match &rec.txn {
                TxnBody::CreateSession(c) => {
                    sessions.insert(SessionId(rec.header.client_id), c.timeout_ms);
                }
                TxnBody::CloseSession(_) => {
                    sessions.remove(&SessionId(rec.header.client_id));
                }
                _ => {}
            }
            tree.apply(&rec);
        }
        let last_zxid = self
            .durable
            .log
            .last()
            .map_or(self.durable.snapshot_zxid, |t| t.zxid)
            .max(tree.last_zxid());
        if last_zxid > tree.last_zxid() {
            tree.set_last_zxid(last_zxid);
        }
        let orphan_sessions = tree
            .ephemeral_sessions()
            .into_iter()
            .filter(|s| !sessions.contains_key(s))
            .collect();
        Ok(Replayed {
            tree,
            sessions,
            last_zxid,
            orphan_sessions,
            report: self.report,
        })
    }
}

/// Why storage could not be opened. The message names the directory or file (and, for
/// damage, the offset).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot recover the database (dataDir {}, dataLogDir {}): {reason}", data_dir.display(), data_log_dir.display())]
    Recovery {
        data_dir: std::path::PathBuf,
        data_log_dir: std::path::PathBuf,
        reason: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("epoch files: {0}")]
    Epoch(String),
    /// A `version-2` directory this server cannot write (a read-only mount, its
    /// permissions): ZooKeeper's `FileTxnSnapLog` refuses it the same way ("Cannot write
    /// to data directory"), before anything is written. Not damage: nothing to repair.
    #[error("cannot write to the {what} directory {}: {source}", dir.display())]
    NotWritable {
        /// `transaction log` (dataLogDir) or `snapshot` (dataDir).
        what: &'static str,
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
    /// `datadir.autocreate=false` and a `version-2` directory is missing (a setting,
    /// not damage: nothing was read).
    #[error("{0}")]
    MissingDataDir(String),
    /// A logged txn that recovery read but that does not decode (replay only).
    #[error("logged txn {zxid} does not decode: {reason}")]
    Log { zxid: Zxid, reason: String },
}

/// Warns about each file rzk does not read but ZooKeeper would: `log.<hex>.<anything>`
/// and `snapshot.<hex>.<anything else than gz or snappy>` (a backup such as
/// `log.190.bak`). ZooKeeper takes the zxid from the second dot-separated field of any
/// such name, so it replays such a file as a log or loads it as a snapshot (and its
/// purge counts it); rzk reads only the exact names it writes (docs/STORAGE.md).
fn warn_loosely_named(data_log_dir: &std::path::Path, data_dir: &std::path::Path) {
    let logs = files::version_dir(data_log_dir);
    let read = files::list_logs(&logs).map(|l| l.into_iter().map(|f| f.path).collect());
    warn_unread(&logs, files::LOG_PREFIX, "transaction log", read);
    let snaps = files::version_dir(data_dir);
    let read = files::list_snapshots(&snaps).map(|l| l.into_iter().map(|(f, _)| f.path).collect());
    warn_unread(&snaps, files::SNAPSHOT_PREFIX, "snapshot", read);
}

/// [`warn_loosely_named`] for one kind: the `prefix.<hex>...` files of `version_dir`
/// that are not among those `read`.
fn warn_unread(
    version_dir: &std::path::Path,
    prefix: &str,
    what: &str,
    read: std::io::Result<Vec<std::path::PathBuf>>,
) {
    let (Ok(loose), Ok(read)) = (files::list_prefixed(version_dir, prefix), read) else {
        return;
    };
    for f in loose.into_iter().filter(|f| !read.contains(&f.path)) {
        tracing::warn!(file = %f.path.display(), zxid = %f.zxid,
            "not read: not a {what} name rzk reads, though ZooKeeper would read it as its {what} of this zxid; rename or move it");
    }
}

/// Removes `snapshot.<hex zxid>.tmp` files, the names rzk writes a snapshot under
/// before its rename: snapshots whose writer died (nothing reads them; nothing writes
/// them while the server is not running). Other names (an operator's `snapshot.tmp`, a
/// directory) are left alone (a break-it review: every `snapshot.*.tmp` went).
fn remove_unfinished_snapshots(data_dir: &std::path::Path) {
    let dir = files::version_dir(data_dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let unfinished = name
            .strip_suffix(".tmp")
            .and_then(|n| files::zxid_from_name(n, files::SNAPSHOT_PREFIX))
            .is_some();
        if unfinished && e.file_type().is_ok_and(|t| t.is_file()) {
            tracing::warn!(file = %e.path().display(), "removing unfinished snapshot");
            if let Err(err) = std::fs::remove_file(e.path()) {
                tracing::warn!(file = %e.path().display(), error = %err, "cannot remove unfinished snapshot");
            }
        }
    }
}

struct SnapshotOnly {
    /// When recovery started and when its snapshot was loaded (start-up metrics).
    started: std::time::Instant,
    snapshot_at: Option<std::time::Instant>,
    loader: SnapshotTreeLoader,
    tree: Option<DataTree>,
    sessions: Vec<(SessionId, i32)>,
    log: Vec<Txn>,
    snap_zxid: Zxid,
}

impl RecoverySink for SnapshotOnly {
    fn reset(&mut self) {
        self.loader.reset();
        self.tree = None;
        self.sessions.clear();
        self.log.clear();
        self.snap_zxid = Zxid::ZERO;
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

    fn snapshot_loaded(&mut self, zxid: Zxid, trailer: &SnapshotTrailer) -> Result<(), String> {
        // The tree keeps the snapshot's digest pending: the txns of its fuzzy window are
        // applied (once committed) without digest checks, as ZooKeeper's replay does.
        self.tree = Some(self.loader.finish(zxid, trailer)?);
        self.snap_zxid = zxid;
        self.snapshot_at = Some(std::time::Instant::now());
        Ok(())
    }

    fn txn(&mut self, rec: &TxnRecord) -> Result<(), String> {
        let zxid = Zxid(rec.header.zxid);
        if zxid > self.snap_zxid && self.log.last().is_none_or(|t| t.zxid < zxid) {
            self.log.push(Txn {
                zxid,
                payload: Bytes::from(rec.encode()),
            });
        }
        Ok(())
    }
}

/// ZooKeeper's start-up metrics: `dbinittime` (snapshot and log read),
/// `startup_snap_load_time`, `startup_txns_loaded` (txns after the snapshot) and
/// `startup_txns_load_time` (reading them; they are applied once the core knows they are
/// committed). A new data directory (no snapshot, no txn) has no log replay to count, as
/// ZooKeeper's `FileTxnSnapLog.restore` returns before it then (ZooKeeper always has a
/// snapshot after its first start; rzk does not write one at start-up, so a log alone
/// counts).
fn startup_metrics(sink: &SnapshotOnly) {
    let m = crate::metrics::metrics();
    let snap_at = sink.snapshot_at.unwrap_or(sink.started);
    m.dbinittime.add_ms(sink.started.elapsed());
    m.startup_snap_load_time
        .add_ms(snap_at.duration_since(sink.started));
    if sink.snapshot_at.is_some() || !sink.log.is_empty() {
        m.startup_txns_load_time.add_ms(snap_at.elapsed());
        m.startup_txns_loaded.add(sink.log.len() as i64);
    }
}

/// Writes `cfg`'s membership into `/zookeeper/config` with the wall clock as mtime
/// (`DataTree::set_config_node`), counted as a write of the `zookeeper` namespace as
/// ZooKeeper counts it; nothing on a standalone configuration.
pub fn init_config_node(tree: &mut DataTree, cfg: &Config) {
    if let Some(text) = cfg.membership_text() {
        write_config_node(tree, &text, cfg.config_version);
    }
}

/// Writes a membership `text` at `version` into `/zookeeper/config` with the wall clock
/// as mtime (ZooKeeper's `initConfigInZKDatabase` with the membership in force).
pub fn write_config_node(tree: &mut DataTree, text: &str, version: Zxid) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    tree.set_config_node(text, version.0, now_ms);
    crate::metrics::hooks::write_stat(crate::reconfig::CONFIG_NODE, text.len());
}

/// Opens storage for `cfg`: loads the snapshot, collects the later log, reads the
/// epochs. The same for every configuration.
pub fn open(cfg: &Config) -> Result<Recovered, OpenError> {
    let settings = StorageSettings::from_config(cfg);
    let recovery_failed = |reason: String| OpenError::Recovery {
        data_dir: settings.data_dir.clone(),
        data_log_dir: settings.data_log_dir.clone(),
        reason,
    };
    remove_unfinished_snapshots(&settings.data_dir);
    let mut sink = SnapshotOnly {
        started: std::time::Instant::now(),
        snapshot_at: None,
        loader: SnapshotTreeLoader::default(),
        tree: None,
        sessions: Vec::new(),
        log: Vec::new(),
        snap_zxid: Zxid::ZERO,
    };
    let report = recovery::recover(
        &settings.data_dir,
        &settings.data_log_dir,
        &settings.recovery,
        &mut sink,
    )
    .map_err(|e| match e {
        recovery::RecoveryError::MissingDataDir { .. } => OpenError::MissingDataDir(e.to_string()),
        e => recovery_failed(e.to_string()),
    })?;
    startup_metrics(&sink);
    for (what, dir) in [
        ("transaction log", &settings.data_log_dir),
        ("snapshot", &settings.data_dir),
    ] {
        // The `version-2` directory, or where it is to be created on a fresh start.
        let version = files::version_dir(dir);
        let dir = if version.exists() {
            version
        } else if dir.exists() {
            dir.clone()
        } else {
            continue;
        };
        if let Err(e) = rustix::fs::access(&dir, rustix::fs::Access::WRITE_OK) {
            return Err(OpenError::NotWritable {
                what,
                dir,
                source: e.into(),
            });
        }
    }
    warn_loosely_named(&settings.data_log_dir, &settings.data_dir);
    for (path, why) in &report.skipped_snapshots {
        tracing::warn!(file = %path.display(), reason = %why, "snapshot could not be used");
    }
    for t in &report.torn_tails {
        tracing::warn!(
            file = %t.file.display(),
            offset = t.offset,
            "torn transaction log tail was truncated"
        );
    }
    let from_snapshot = sink.tree.is_some();
    let mut tree = sink.tree.take().unwrap_or_default();
    tree.set_extended_types(cfg.extended_types_enabled);
    if !from_snapshot {
        // A quorum member writes its membership into /zookeeper/config before loading
        // (ZooKeeper's QuorumPeerMain → initConfigInZKDatabase); a loaded snapshot keeps
        // the node it holds, as ZooKeeper's deserialization replaces the tree.
        init_config_node(&mut tree, cfg);
    }
    match report.state {
        StartState::Loaded => {}
        StartState::NewEmpty | StartState::Untrusted => {
            tree.set_last_zxid(Zxid::ZERO);
            if report.state == StartState::Untrusted {
                tracing::warn!("no snapshot and no logs, and db.autocreate is off: starting with an untrusted empty database");
            }
            db::save_snapshot(tree.clone(), &[], &settings.data_dir, settings.snapshot)
                .map_err(|e| recovery_failed(e.to_string()))?;
        }
    }
    let snapshot_zxid = tree.last_zxid().max(Zxid::ZERO);
    let last = sink.log.last().map_or(snapshot_zxid, |t| t.zxid);
    if let Some(d) = tree.pending_snapshot_digest() {
        if !sink.log.iter().any(|t| t.zxid == d.zxid) {
            db::warn_snapshot_digest_not_covered(&tree, last);
        }
    }
    let dir = files::ensure_version_dir(&settings.data_dir).map_err(|source| OpenError::Io {
        path: settings.data_dir.clone(),
        source,
    })?;
    // A standalone ZooKeeper never reads the epoch files; rzk's standalone server (a
    // leader of one, with epochs) rebuilds one it cannot read, where a quorum member
    // stops as ZooKeeper's QuorumPeer does.
    let standalone = !cfg.is_distributed();
    let rd = |k| match epoch_file::read(&dir, k) {
        Err(
            e @ (epoch_file::EpochFileError::Parse { .. }
            | epoch_file::EpochFileError::TooLarge { .. }),
        ) if standalone => {
            tracing::warn!("{e}; rebuilding it (a standalone server)");
            Ok(None)
        }
        // The last epoch with positive zxids leaves none to lead with; a standalone
        // server rebuilds it from its log unless the log reached it too.
        Ok(Some(e)) if standalone && e == Zxid::MAX_EPOCH && last.epoch() < e => {
            tracing::warn!(
                epoch = e,
                "{}: the last epoch whose zxids are positive, below which the log ends; rebuilding it (a standalone server)",
                epoch_file::file_name(k)
            );
            Ok(None)
        }
        r => r.map_err(|e| OpenError::Epoch(e.to_string())),
    };
    let current = match rd(EpochKind::Current)? {
        Some(e) => e,
        None => {
            let e = last.epoch();
            tracing::info!(
                epoch = e,
                "currentEpoch not found; creating it from the last zxid"
            );
            epoch_file::write(&dir, EpochKind::Current, e)
                .map_err(|e| OpenError::Epoch(e.to_string()))?;
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
            let e = current.max(last.epoch());
            tracing::info!(epoch = e, "acceptedEpoch not found; creating it");
            epoch_file::write(&dir, EpochKind::Accepted, e)
                .map_err(|e| OpenError::Epoch(e.to_string()))?;
            e
        }
    };
    if last.epoch() > accepted {
        // A member accepts an epoch (writes acceptedEpoch) before it logs any txn of it,
        // so this is not a crash window: the files belong to older data (a restored
        // backup). Going on would let the next election pick an epoch at or below the
        // logged one and reuse logged zxids and log file names.
        return Err(OpenError::Epoch(format!(
            "{}: acceptedEpoch {accepted} is older than the last logged zxid {last} (epoch {}): the epoch files do not belong to this data (restored from an older copy?); restore the ones that do, or remove both acceptedEpoch and currentEpoch to have them rebuilt from the last zxid",
            dir.join(epoch_file::ACCEPTED_EPOCH_FILE).display(),
            last.epoch()
        )));
    }
    if accepted < current {
        return Err(OpenError::Epoch(format!(
            "acceptedEpoch {accepted} is less than currentEpoch {current}"
        )));
    }
    tracing::info!(
        snapshot = %snapshot_zxid,
        logged = sink.log.len(),
        last = %last,
        accepted,
        current,
        "storage opened"
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
        settings,
        report,
    })
}
