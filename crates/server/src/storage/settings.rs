//! Storage settings: zoo.cfg keys and `zookeeper.*` properties mapped onto what the
//! log, snapshots, recovery and purge need (`txnLogSizeLimitInKb`, `preAllocSize`,
//! `forceSync`, `snapshot.trust.empty`, `datadir.autocreate`, `db.autocreate`,
//! `snapshot.compression.method`, `digest.enabled`, `snapCount`, `snapSizeLimitInKb`,
//! autopurge). Read once at start-up by [`super::open`] and the disk queue, so every
//! configuration honours the same settings.

use crate::config::Config;
use crate::storage::db::SnapshotOptions;
use crate::storage::files::Compression;
use crate::storage::recovery::RecoveryOptions;
use crate::storage::snap_policy::{SnapPolicy, DEFAULT_SNAP_SIZE_LIMIT_KB};
use crate::storage::txnlog::TxnLogConfig;
use std::path::PathBuf;

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
/// `zookeeper.datadir.autocreate` (default true): whether start-up may create missing data
/// directories (read without the rest of [`StorageSettings`], so its warnings are not
/// printed twice).
pub fn datadir_autocreate(cfg: &Config) -> bool {
    prop_bool(cfg, "datadir.autocreate", true)
}

/// `snapshot.compression.method` for the snapshots written: `gz`, `snappy` (in
/// snappy-java's stream format, storage/snappy.rs), else uncompressed (ZooKeeper's
/// default for an empty or unknown name; an unknown name is warned about).
fn compression(cfg: &Config) -> Compression {
    let Some(method) = prop(cfg, "snapshot.compression.method") else {
        return Compression::default();
    };
    match Compression::from_method(method) {
        Compression::None if !method.trim().is_empty() => {
            tracing::warn!(
                property = "snapshot.compression.method",
                value = method,
                "unknown snapshot compression method (known: gz, snappy, or empty); writing uncompressed snapshots"
            );
            Compression::None
        }
        c => c,
    }
}

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
                db_autocreate: prop_bool(cfg, "db.autocreate", true),
                datadir_autocreate: datadir_autocreate(cfg),
                jute_max_buffer: cfg.jute_max_buffer,
            },
            snapshot: SnapshotOptions {
                compression: compression(cfg),
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
