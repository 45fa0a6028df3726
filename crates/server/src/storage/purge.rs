//! Purging old snapshots and logs by ZooKeeper's rule (PurgeTxnLog / autopurge): keep
//! the `retain` newest valid snapshots; with Z the zxid of the oldest kept one, delete
//! every snapshot below Z and every log starting below Z except the newest log starting
//! at or below Z (it may hold txns after Z). Logs starting above Z are always kept.
//!
//! Never deletes a file the retained snapshots need; never runs without at least 3
//! retained snapshots.

use super::files::{self, LOG_PREFIX, SNAPSHOT_PREFIX};
use super::snapshot;
use rzk_proto::Zxid;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

/// `autopurge.snapRetainCount` minimum (and default).
pub const MIN_SNAP_RETAIN_COUNT: usize = 3;

/// The files a purge removes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgePlan {
    /// Zxid of the oldest retained snapshot (`None`: no valid snapshot, nothing to do).
    pub oldest_retained: Option<Zxid>,
    pub snapshots: Vec<PathBuf>,
    pub logs: Vec<PathBuf>,
}

/// Computes what to delete (`retain` below 3 is raised to 3). `data_dir` /
/// `data_log_dir` are the parents of the `version-2` directories.
pub fn plan(data_dir: &Path, data_log_dir: &Path, retain: usize) -> io::Result<PurgePlan> {
    let retain = retain.max(MIN_SNAP_RETAIN_COUNT);
    let snap_dir = files::version_dir(data_dir);
    let log_dir = files::version_dir(data_log_dir);
    let snaps = snapshot::find_valid_snapshots(&snap_dir, retain)?;
    let Some(oldest) = snaps.last() else {
        return Ok(PurgePlan::default());
    };
    let z = oldest.zxid;
    let logs = files::list_prefixed(&log_dir, LOG_PREFIX)?;
    // newest log starting at or below Z: still needed for the snapshot at Z
    let keep_log = logs.iter().filter(|f| f.zxid <= z).map(|f| f.zxid).max();
    let logs = logs
        .into_iter()
        .filter(|f| f.zxid < z && Some(f.zxid) != keep_log)
        .map(|f| f.path)
        .collect();
    let snapshots = files::list_prefixed(&snap_dir, SNAPSHOT_PREFIX)?
        .into_iter()
        .filter(|f| f.zxid < z)
        .map(|f| f.path)
        .collect();
    Ok(PurgePlan {
        oldest_retained: Some(z),
        snapshots,
        logs,
    })
}

/// Deletes what [`plan`] selects; returns the plan. A file that cannot be removed is
/// logged and skipped.
pub fn purge(data_dir: &Path, data_log_dir: &Path, retain: usize) -> io::Result<PurgePlan> {
    let p = plan(data_dir, data_log_dir, retain)?;
    for f in p.logs.iter().chain(p.snapshots.iter()) {
        tracing::info!(file = %f.display(), "removing old file");
        if let Err(e) = std::fs::remove_file(f) {
            tracing::warn!(file = %f.display(), error = %e, "failed to remove old file");
        }
    }
    Ok(p)
}

/// The autopurge task: runs [`purge`] at start and then every `interval`, on its own
/// thread, until dropped.
pub struct AutoPurge {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl AutoPurge {
    /// `None` when `purge_interval_hours` is 0 (autopurge off, ZooKeeper's default).
    pub fn start(
        data_dir: PathBuf,
        data_log_dir: PathBuf,
        snap_retain_count: usize,
        purge_interval_hours: u64,
    ) -> io::Result<Option<AutoPurge>> {
        if purge_interval_hours == 0 {
            tracing::info!("autopurge disabled (purgeInterval 0)");
            return Ok(None);
        }
        if snap_retain_count < MIN_SNAP_RETAIN_COUNT {
            tracing::warn!(snap_retain_count, "snapRetainCount below 3; using 3");
        }
        let interval = Duration::from_secs(purge_interval_hours * 3600);
        AutoPurge::start_every(data_dir, data_log_dir, snap_retain_count, interval).map(Some)
    }

    /// Like [`AutoPurge::start`] with any interval (tests).
    pub fn start_every(
        data_dir: PathBuf,
        data_log_dir: PathBuf,
        retain: usize,
        interval: Duration,
    ) -> io::Result<AutoPurge> {
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("rzk-autopurge".into())
            .spawn(move || loop {
                match purge(&data_dir, &data_log_dir, retain) {
                    Ok(p) => tracing::info!(
                        snapshots = p.snapshots.len(),
                        logs = p.logs.len(),
                        "autopurge done"
                    ),
                    Err(e) => tracing::warn!(error = %e, "autopurge failed"),
                }
                match rx.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            })?;
        Ok(AutoPurge {
            stop: Some(tx),
            thread: Some(thread),
        })
    }
}

impl std::fmt::Debug for AutoPurge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutoPurge")
            .field("running", &self.thread.is_some())
            .finish()
    }
}

impl Drop for AutoPurge {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
