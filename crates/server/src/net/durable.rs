//! Opening the on-disk database for a standalone server, as ZooKeeper's `loadData`:
//! recover the tree and session table from dataDir/dataLogDir (newest valid snapshot +
//! later logs), log what was recovered, write the post-load snapshot, and open the
//! transaction log writer. Also maps zoo.cfg / `zookeeper.*` properties onto the storage
//! settings.
//!
//! Owns only start-up of storage. It never serves clients and never closes sessions
//! itself: orphan sessions are handed to the server, which closes them through the
//! write path. Any corruption other than a torn log tail is an error (naming file and
//! offset), never silently skipped.

use crate::config::Config;
use crate::storage::db::{self, DbError, SnapshotOptions};
use crate::storage::files::Compression;
use crate::storage::recovery::{RecoveryOptions, RecoveryReport, StartState};
use crate::storage::snap_policy::{SnapPolicy, DEFAULT_SNAP_SIZE_LIMIT_KB};
use crate::storage::txnlog::{FileTxnLog, TxnLogConfig};
use crate::tree::DataTree;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Storage settings taken from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageSettings {
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub log: TxnLogConfig,
    pub recovery: RecoveryOptions,
    pub snapshot: SnapshotOptions,
    /// `snapCount` (u32 range; larger values are clamped).
    pub snap_count: u32,
    /// `zookeeper.snapSizeLimitInKb` (<= 0: size rule off).
    pub snap_size_limit_kb: i64,
    pub autopurge_snap_retain_count: usize,
    pub autopurge_purge_interval_hours: u64,
}

/// A system property given in zoo.cfg, with or without its `zookeeper.` prefix (the
/// config parser keeps keys it does not know in `unknown`).
fn prop<'a>(cfg: &'a Config, name: &str) -> Option<&'a str> {
    cfg.unknown
        .get(name)
        .or_else(|| cfg.unknown.get(&format!("zookeeper.{name}")))
        .map(String::as_str)
}

fn prop_bool(cfg: &Config, name: &str, default: bool) -> bool {
    match prop(cfg, name) {
        Some(v) => v.trim().eq_ignore_ascii_case("true"),
        None => default,
    }
}

fn prop_i64(cfg: &Config, name: &str) -> Option<i64> {
    let v = prop(cfg, name)?;
    match v.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => {
            tracing::warn!(property = name, value = v, "not a number, ignored");
            None
        }
    }
}

impl StorageSettings {
    pub fn from_config(cfg: &Config) -> StorageSettings {
        let size_limit = prop_i64(cfg, "txnLogSizeLimitInKb")
            .filter(|kb| *kb > 0)
            .map(|kb| kb as u64 * 1024);
        StorageSettings {
            data_dir: cfg.data_dir.clone(),
            data_log_dir: cfg.data_log_dir.clone(),
            log: TxnLogConfig {
                prealloc_size: cfg.pre_alloc_size_kb.saturating_mul(1024),
                force_sync: cfg.force_sync,
                size_limit,
            },
            recovery: RecoveryOptions {
                trust_empty_snapshot: prop_bool(cfg, "snapshot.trust.empty", false),
                autocreate: prop_bool(cfg, "datadir.autocreate", true),
            },
            snapshot: SnapshotOptions {
                compression: match prop(cfg, "snapshot.compression.method")
                    .map(Compression::from_method)
                {
                    Some(Compression::Snappy) => {
                        tracing::warn!("snappy snapshot compression is not supported; writing uncompressed snapshots");
                        Compression::None
                    }
                    other => other.unwrap_or_default(),
                },
                digest_disabled: !prop_bool(cfg, "digest.enabled", true),
            },
            snap_count: u32::try_from(cfg.snap_count).unwrap_or(u32::MAX),
            snap_size_limit_kb: prop_i64(cfg, "snapSizeLimitInKb")
                .unwrap_or(DEFAULT_SNAP_SIZE_LIMIT_KB),
            autopurge_snap_retain_count: cfg.autopurge_snap_retain_count as usize,
            autopurge_purge_interval_hours: u64::from(cfg.autopurge_purge_interval_hours),
        }
    }

    /// ZooKeeper's randomised snapshot rule for these settings.
    pub fn snap_policy(&self) -> SnapPolicy {
        SnapPolicy::new(self.snap_count, self.snap_size_limit_kb)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot load the database (dataDir {}, dataLogDir {}): {source}", data_dir.display(), data_log_dir.display())]
    Load {
        data_dir: PathBuf,
        data_log_dir: PathBuf,
        source: DbError,
    },
    #[error("cannot write the start-up snapshot: {0}")]
    Snapshot(DbError),
    #[error("cannot open the transaction log directory {}: {source}", dir.display())]
    LogDir {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// The database as recovered, ready for [`crate::net::Server::start_durable`].
#[derive(Debug)]
pub struct OpenedDb {
    pub tree: DataTree,
    /// The session table (id -> timeout ms): re-tracked so they expire unless their
    /// clients come back.
    pub sessions: BTreeMap<i64, i32>,
    /// Sessions owning ephemerals but absent from the session table: the server closes
    /// them through the write path.
    pub orphan_sessions: Vec<i64>,
    pub log: FileTxnLog,
    pub settings: StorageSettings,
    pub report: RecoveryReport,
    /// Time spent loading (recovery + post-load snapshot).
    pub elapsed: Duration,
}

/// Removes `snapshot.*.tmp` files: snapshots whose writer died before the rename
/// (nothing reads them; nothing writes them while the server is not running).
fn remove_unfinished_snapshots(data_dir: &std::path::Path) {
    let dir = crate::storage::files::version_dir(data_dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("snapshot.") && name.ends_with(".tmp") {
            tracing::info!(file = %e.path().display(), "removing unfinished snapshot");
            if let Err(err) = std::fs::remove_file(e.path()) {
                tracing::warn!(file = %e.path().display(), error = %err, "cannot remove unfinished snapshot");
            }
        }
    }
}

/// Recovers the database, writes the post-load snapshot and opens the log writer.
pub fn open(cfg: &Config) -> Result<OpenedDb, OpenError> {
    let settings = StorageSettings::from_config(cfg);
    let started = Instant::now();
    remove_unfinished_snapshots(&settings.data_dir);
    let loaded = db::load(
        &settings.data_dir,
        &settings.data_log_dir,
        &settings.recovery,
        cfg.extended_types_enabled,
        settings.snapshot,
    )
    .map_err(|source| OpenError::Load {
        data_dir: settings.data_dir.clone(),
        data_log_dir: settings.data_log_dir.clone(),
        source,
    })?;
    let load_time = started.elapsed();
    let report = loaded.report.clone();
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
    match report.state {
        StartState::Loaded => tracing::info!(
            snapshot = %report
                .snapshot
                .as_ref()
                .map(|s| s.path.display().to_string())
                .unwrap_or_else(|| "none".into()),
            txns_replayed = report.txns_replayed,
            torn_tails = report.torn_tails.len(),
            znodes = loaded.tree.node_count(),
            sessions = loaded.sessions.len(),
            last_zxid = format_args!("0x{:x}", loaded.last_zxid),
            ms = load_time.as_millis() as u64,
            "database recovered"
        ),
        StartState::NewEmpty => {
            tracing::info!("new empty database (snapshot.0 written)")
        }
        StartState::Untrusted => tracing::warn!(
            "no snapshot and no logs, and datadir.autocreate is off: starting with an untrusted empty database (zxid -1)"
        ),
    }
    if !loaded.orphan_sessions.is_empty() {
        tracing::info!(
            sessions = ?loaded
                .orphan_sessions
                .iter()
                .map(|s| format!("0x{s:x}"))
                .collect::<Vec<_>>(),
            "sessions owning ephemerals but not in the session table will be closed"
        );
    }
    let mut tree = loaded.tree;
    if tree.last_zxid() < 0 {
        // Standalone: an untrusted empty database still numbers its txns from 1.
        tree.set_last_zxid(0);
    }
    // ZooKeeper's loadData ends with a clean snapshot (the new empty database already
    // got its snapshot.0 from load).
    if loaded.initial_snapshot.is_none() {
        let snap_started = Instant::now();
        let sessions: Vec<(i64, i32)> = loaded.sessions.iter().map(|(k, v)| (*k, *v)).collect();
        db::save_snapshot(&tree, &sessions, &settings.data_dir, settings.snapshot)
            .map_err(OpenError::Snapshot)?;
        tracing::info!(
            ms = snap_started.elapsed().as_millis() as u64,
            "start-up snapshot written"
        );
    }
    let log = FileTxnLog::open(&settings.data_log_dir, settings.log.clone()).map_err(|source| {
        OpenError::LogDir {
            dir: settings.data_log_dir.clone(),
            source,
        }
    })?;
    let elapsed = started.elapsed();
    tracing::info!(ms = elapsed.as_millis() as u64, "database ready");
    Ok(OpenedDb {
        tree,
        sessions: loaded.sessions,
        orphan_sessions: loaded.orphan_sessions,
        log,
        settings,
        report,
        elapsed,
    })
}
