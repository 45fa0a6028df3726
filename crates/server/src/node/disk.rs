//! The disk queue of a quorum member: carries out the core's persistence outputs strictly
//! in order on one thread — txn appends (group commit: every append waiting when the
//! thread wakes goes into one fsync), epoch files, TRUNC, and SNAP installs — and reports
//! completion (`Persisted`, `EpochPersisted`) back to the driver.
//!
//! Owns the transaction log writer and the epoch files while the server runs. Never
//! reports anything durable before fsync returned; on any IO failure it reports
//! `DiskFailed` and stops (the server then shuts down, as ZooKeeper does).
//!
//! A voter that is the whole ensemble commits a txn as soon as it is durable (its own
//! acknowledgement is the quorum). For it the driver attaches the commits to the txns
//! ([`DiskOp::Txns`] `commit_on_sync`), and this thread hands them to the applier right
//! after the fsync, before reporting `Persisted`: one thread hop less per write than
//! going back through the driver. The driver decided to commit; this thread only
//! forwards, in log order.

use crate::node::apply::ApplyMsg;
use crate::node::jobs::Job;
use crate::node::lifecycle::CriticalThread;
use crate::node::shared::Shared;
use crate::node::snapshots::Snapshotter;
use crate::node::Event;
use crate::storage::db;
use crate::storage::epoch_file;
use crate::storage::files;
use crate::storage::log_repair::{self, RepairError};
use crate::storage::txnlog::FileTxnLog;
use crate::storage::StorageSettings;
use crate::tree::DataTree;
use crate::zab::{EpochKind, Txn};
use rzk_proto::txn::TxnRecord;
use rzk_proto::{SessionId, Zxid};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::mpsc;

/// Most txns appended before one fsync.
pub const MAX_GROUP_COMMIT: usize = 2000;

/// One persistence job, in the order the core asked for it.
#[derive(Debug)]
pub enum DiskOp {
    /// Append and fsync; then pass `commit_on_sync` (the same txns, decoded, with the
    /// requests they answer; empty unless the driver commits on durability) to the
    /// applier, then report `Persisted`.
    Txns {
        txns: Vec<Txn>,
        commit_on_sync: Vec<(TxnRecord, Option<Job>)>,
    },
    /// Pass this message (a sync's answer, or closes of connections) to the applier
    /// after the commits of every txn queued before it: a leader committing on fsync
    /// keeps each session's answers in order this way (`Driver::after_commits`).
    AfterCommits(ApplyMsg),
    Epoch(EpochKind, u32),
    Truncate(Zxid),
    /// Write the received database as `snapshot.<zxid>` and discard the whole log.
    InstallSnapshot {
        zxid: Zxid,
        tree: Box<DataTree>,
        sessions: Vec<(SessionId, i32)>,
    },
    /// Roll the log and take a background snapshot of the applied tree (the leader asks
    /// once it has applied the history it recovered, as ZooKeeper snapshots after
    /// loading its database: the next start replays only what follows).
    Snapshot,
    Stop,
}

#[derive(Debug, thiserror::Error)]
enum DiskError {
    #[error("transaction log: {0}")]
    Log(std::io::Error),
    #[error(transparent)]
    Epoch(#[from] epoch_file::EpochFileError),
    #[error(transparent)]
    Repair(#[from] RepairError),
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Handle of the disk thread.
#[derive(Debug)]
pub struct DiskQueue {
    pub tx: std_mpsc::Sender<DiskOp>,
    thread: Option<JoinHandle<()>>,
}

impl DiskQueue {
    /// Starts the disk thread with the settings storage was opened with
    /// (`storage::open`), so the log follows `txnLogSizeLimitInKb` and the rest.
    pub fn start(
        shared: Arc<Shared>,
        events: mpsc::UnboundedSender<Event>,
        applier: std_mpsc::Sender<ApplyMsg>,
        settings: StorageSettings,
    ) -> std::io::Result<DiskQueue> {
        let log = FileTxnLog::open(&settings.data_log_dir, settings.log.clone())?;
        let snapshots = Snapshotter::new(
            settings.snap_policy(),
            settings.data_dir.clone(),
            settings.snapshot,
        );
        let (tx, rx) = std_mpsc::channel();
        let mut w = Writer {
            shared,
            settings,
            log: Some(log),
            events,
            applier,
            snapshots,
        };
        let thread = std::thread::Builder::new()
            .name("rzk-quorum-disk".into())
            .spawn(move || {
                let shared = w.shared.clone();
                let _critical = CriticalThread::new(&shared.lifecycle, "rzk-quorum-disk thread");
                w.run(rx)
            })?;
        Ok(DiskQueue {
            tx,
            thread: Some(thread),
        })
    }

    /// Stops after everything queued so far and waits for the thread.
    pub fn stop(mut self) {
        let _ = self.tx.send(DiskOp::Stop);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the disk thread panicked");
            }
        }
    }
}

struct Writer {
    shared: Arc<Shared>,
    settings: StorageSettings,
    log: Option<FileTxnLog>,
    events: mpsc::UnboundedSender<Event>,
    /// Where commits attached to txns go once the txns are durable.
    applier: std_mpsc::Sender<ApplyMsg>,
    /// Background snapshots of the applied tree per snapCount (as ZooKeeper's
    /// SyncRequestProcessor does on every member).
    snapshots: Snapshotter,
}

impl Writer {
    fn run(&mut self, rx: std_mpsc::Receiver<DiskOp>) {
        let mut next: Option<DiskOp> = None;
        loop {
            let op = match next.take() {
                Some(op) => op,
                None => match rx.recv() {
                    Ok(op) => op,
                    Err(_) => break,
                },
            };
            let r = match op {
                DiskOp::Txns {
                    mut txns,
                    mut commit_on_sync,
                } => {
                    while txns.len() < MAX_GROUP_COMMIT {
                        match rx.try_recv() {
                            Ok(DiskOp::Txns {
                                txns: more,
                                commit_on_sync: mut more_commits,
                            }) => {
                                txns.extend(more);
                                commit_on_sync.append(&mut more_commits);
                            }
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.append(&txns, commit_on_sync)
                }
                DiskOp::AfterCommits(m) => self
                    .applier
                    .send(m)
                    .map_err(|_| DiskError::Log(std::io::Error::other("the apply thread stopped"))),
                DiskOp::Epoch(kind, epoch) => self.epoch(kind, epoch),
                DiskOp::Truncate(to) => self.truncate(to),
                DiskOp::InstallSnapshot {
                    zxid,
                    tree,
                    sessions,
                } => self.install(zxid, *tree, &sessions),
                DiskOp::Snapshot => self.snapshot_now(),
                DiskOp::Stop => break,
            };
            if let Err(e) = r {
                // A log error is an io::Error without a path: name the directories.
                let e = format!(
                    "{e} (dataLogDir {}, dataDir {})",
                    self.settings.data_log_dir.display(),
                    self.settings.data_dir.display()
                );
                tracing::error!("disk queue failed: {e}; the server stops");
                let _ = self.events.send(Event::DiskFailed(e));
                return;
            }
        }
        if let Some(log) = self.log.take() {
            if let Err(e) = log.close() {
                tracing::warn!("closing the transaction log: {e}");
            }
        }
        self.snapshots.join();
        tracing::debug!("disk thread stopped");
    }

    fn log(&mut self) -> Result<&mut FileTxnLog, DiskError> {
        if self.log.is_none() {
            let s = &self.settings;
            let l = FileTxnLog::open(&s.data_log_dir, s.log.clone()).map_err(DiskError::Log)?;
            self.log = Some(l);
        }
        self.log
            .as_mut()
            .ok_or_else(|| DiskError::Log(std::io::Error::other("no log")))
    }

    fn snapshot_now(&mut self) -> Result<(), DiskError> {
        self.log()?.roll().map_err(DiskError::Log)?;
        self.snapshots.start(&self.shared);
        Ok(())
    }

    fn append(
        &mut self,
        txns: &[Txn],
        commit_on_sync: Vec<(TxnRecord, Option<Job>)>,
    ) -> Result<(), DiskError> {
        let Some(last) = txns.last().map(|t| t.zxid) else {
            return Ok(());
        };
        debug_assert!(
            commit_on_sync
                .iter()
                .all(|(r, _)| txns.iter().any(|t| t.zxid.0 == r.header.zxid)),
            "a commit attached to txns that are not in this batch"
        );
        let mut snapshot_due = false;
        let woke = std::time::Instant::now();
        let log = self.log()?;
        let mut sizes = Vec::with_capacity(txns.len());
        for t in txns {
            // The core's payload is the record as the log stores it: no re-encoding.
            debug_assert!(
                TxnRecord::decode(&t.payload).is_ok_and(|r| Zxid(r.header.zxid) == t.zxid),
                "payload of {} is not its txn record",
                t.zxid
            );
            sizes.push(
                log.append_encoded(t.zxid, &t.payload)
                    .map_err(DiskError::Log)?,
            );
        }
        let synced_from = std::time::Instant::now();
        log.sync_all().map_err(DiskError::Log)?;
        crate::metrics::hooks::log_synced(txns.len(), woke, synced_from);
        for n in sizes {
            snapshot_due |= self.snapshots.on_append(n);
        }
        if snapshot_due {
            // The next txn starts a new log file; the snapshot is of the applied tree.
            self.log()?.roll().map_err(DiskError::Log)?;
            self.snapshots.start(&self.shared);
        }
        self.shared.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.shared
            .stats
            .txns_logged
            .fetch_add(txns.len() as u64, Ordering::Relaxed);
        if !commit_on_sync.is_empty()
            && self
                .applier
                .send(ApplyMsg::Commits(commit_on_sync))
                .is_err()
        {
            return Err(DiskError::Log(std::io::Error::other(
                "the apply thread stopped",
            )));
        }
        let _ = self.events.send(Event::Persisted(last));
        Ok(())
    }

    fn version_dir(&self, log_dir: bool) -> Result<PathBuf, DiskError> {
        let d = if log_dir {
            &self.settings.data_log_dir
        } else {
            &self.settings.data_dir
        };
        files::ensure_version_dir(d).map_err(|source| DiskError::Io {
            path: d.clone(),
            source,
        })
    }

    fn epoch(&mut self, kind: EpochKind, epoch: u32) -> Result<(), DiskError> {
        let dir = self.version_dir(false)?;
        epoch_file::write(&dir, kind, epoch)?;
        tracing::info!(?kind, epoch, "epoch persisted");
        let _ = self.events.send(Event::EpochPersisted(kind, epoch));
        Ok(())
    }

    /// Closes the open log file (everything in it synced) so files can be cut.
    fn close_log(&mut self) -> Result<(), DiskError> {
        if let Some(l) = self.log.take() {
            l.close().map_err(DiskError::Log)?;
        }
        Ok(())
    }

    fn truncate(&mut self, to: Zxid) -> Result<(), DiskError> {
        self.close_log()?;
        let dir = self.version_dir(true)?;
        match log_repair::truncate_after(&dir, to) {
            Ok(()) | Err(RepairError::NoLogs { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(to = %to, "transaction log truncated (TRUNC)");
        Ok(())
    }

    fn install(
        &mut self,
        zxid: Zxid,
        tree: DataTree,
        sessions: &[(SessionId, i32)],
    ) -> Result<(), DiskError> {
        self.close_log()?;
        // The configured compression and digest setting, as for every other snapshot
        // (ZooKeeper's learner writes it through the same `FileTxnSnapLog`).
        let path = db::save_snapshot(
            tree,
            sessions,
            &self.settings.data_dir,
            self.settings.snapshot,
        )?;
        let dir = self.version_dir(true)?;
        let logs = files::list_logs(&dir).map_err(|source| DiskError::Io {
            path: dir.clone(),
            source,
        })?;
        for f in logs {
            std::fs::remove_file(&f.path).map_err(|source| DiskError::Io {
                path: f.path.clone(),
                source,
            })?;
        }
        files::sync_dir(&dir).map_err(|source| DiskError::Io {
            path: dir.clone(),
            source,
        })?;
        tracing::info!(zxid = %zxid, file = %path.display(), "installed the leader's snapshot; transaction log discarded");
        Ok(())
    }
}
