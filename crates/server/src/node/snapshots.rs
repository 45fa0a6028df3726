//! Background snapshots of the running server: the log thread asks [`Snapshotter`]
//! after every appended txn whether ZooKeeper's randomised snapCount rule
//! ([`SnapPolicy`]) says a snapshot is due; when it is, the log thread rolls its file and
//! calls [`Snapshotter::start`], which clones the tree (and the session table) under the
//! tree read lock on a `rzk-snapshot` thread and writes it there.
//!
//! Owns the snapshot thread. It must never block the log thread (a snapshot still being
//! written means the new one is skipped, as ZooKeeper does) and never holds the tree
//! lock while writing files: only the clone happens under the lock.

use crate::node::shared::Shared;
use crate::storage::db::{save_snapshot, SnapshotOptions};
use crate::storage::snap_policy::SnapPolicy;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// Decides when to snapshot and runs at most one snapshot thread at a time.
pub struct Snapshotter {
    policy: SnapPolicy,
    data_dir: PathBuf,
    opts: SnapshotOptions,
    running: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Snapshotter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshotter")
            .field("data_dir", &self.data_dir)
            .field("running", &self.running.is_some())
            .finish_non_exhaustive()
    }
}

impl Snapshotter {
    /// Snapshots go to `<data_dir>/version-2`.
    pub fn new(policy: SnapPolicy, data_dir: PathBuf, opts: SnapshotOptions) -> Snapshotter {
        Snapshotter {
            policy,
            data_dir,
            opts,
            running: None,
        }
    }

    /// Records one appended txn of `framed_bytes`; true when a snapshot is due (the
    /// caller then rolls the log and calls [`Snapshotter::start`]).
    pub fn on_append(&mut self, framed_bytes: u64) -> bool {
        self.policy.on_append(framed_bytes)
    }

    /// True while a snapshot thread is still writing.
    pub fn is_running(&self) -> bool {
        self.running.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Starts a snapshot thread unless one is still running (then the snapshot is
    /// skipped). Returns whether one was started.
    pub fn start(&mut self, shared: &Arc<Shared>) -> bool {
        if self.is_running() {
            tracing::warn!(
                "too busy to snapshot: the previous snapshot is still being written, skipping"
            );
            return false;
        }
        self.reap();
        let shared = shared.clone();
        let dir = self.data_dir.clone();
        let opts = self.opts;
        let spawned = std::thread::Builder::new()
            .name("rzk-snapshot".into())
            .spawn(move || take_snapshot(&shared, &dir, opts));
        match spawned {
            Ok(h) => {
                self.running = Some(h);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the snapshot thread, skipping this snapshot");
                false
            }
        }
    }

    fn reap(&mut self) {
        if let Some(h) = self.running.take() {
            if h.join().is_err() {
                tracing::error!("the snapshot thread panicked");
            }
        }
    }

    /// Waits for a running snapshot to finish (shutdown).
    pub fn join(&mut self) {
        self.reap();
    }
}

impl Drop for Snapshotter {
    fn drop(&mut self) {
        self.reap();
    }
}

/// The nice value added to the snapshot thread: on a busy server the write path's
/// threads (connections, driver, disk, applier) get the CPU first and the snapshot takes
/// what is left (CFS gives a thread at nice 5 about a third of a nice-0 thread's share).
/// ZooKeeper's snapshot thread runs at the JVM's normal priority.
pub const SNAPSHOT_NICE: i32 = 5;

/// `ioprio_set(2)`'s "who" for one thread (linux/ioprio.h `IOPRIO_WHO_PROCESS`: a
/// thread id names one thread).
const IOPRIO_WHO_PROCESS: libc::c_long = 1;
/// linux/ioprio.h `IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT`: the idle I/O class.
const IOPRIO_IDLE: libc::c_long = 3 << 13;

/// Lowers the calling thread's CPU priority by [`SNAPSHOT_NICE`] (Linux keeps a nice
/// value per thread: `setpriority(PRIO_PROCESS, tid)`) and puts it in the idle I/O
/// class (`ioprio_set`, also per thread). The snapshot's writes are `O_DIRECT`
/// (storage/direct_file.rs), so they are this thread's own requests and the block
/// layer's scheduler (mq-deadline, BFQ) serves the log's writes and flushes first; both
/// age waiting idle requests (mq-deadline after 10 s, BFQ every 200 ms), so a snapshot
/// is slowed, not starved. Schedulers without priorities (`none`) ignore it. A failure
/// only changes timing and is logged at debug level. ZooKeeper does neither.
fn lower_priority() {
    let tid = rustix::thread::gettid();
    let now = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
    if let Err(e) = rustix::process::setpriority_process(Some(tid), now + SNAPSHOT_NICE) {
        tracing::debug!(error = %e, "cannot lower the snapshot thread's priority");
    }
    // SAFETY: ioprio_set takes three integers and reads or writes no memory of this
    // process; rustix offers no wrapper for it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            libc::c_long::from(tid.as_raw_nonzero().get()),
            IOPRIO_IDLE,
        )
    };
    if r != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the snapshot thread's I/O priority");
    }
}

/// Clones the tree and the session table under the tree read lock, then writes the
/// clone. The tree is made of persistent maps, so the clone copies a few roots (about
/// 0.1 us at 1M znodes) and writes made meanwhile copy only the parts they touch. Returns nothing: failures are logged, as
/// ZooKeeper's snapshot thread does, and the log keeps every txn anyway.
fn take_snapshot(shared: &Shared, data_dir: &std::path::Path, opts: SnapshotOptions) {
    lower_priority();
    let started = Instant::now();
    let (tree, sessions) = {
        let tree = shared.tree();
        let sessions = shared.sessions().timeouts();
        (tree.clone(), sessions)
    };
    let pause = started.elapsed();
    let pause_us = pause.as_micros() as u64;
    shared
        .stats
        .snapshot_pause_max_us
        .fetch_max(pause_us, Ordering::Relaxed);
    shared
        .stats
        .snapshot_pause_last_us
        .store(pause_us, Ordering::Relaxed);
    let zxid = tree.last_zxid();
    tracing::info!(
        %zxid,
        nodes = tree.node_count(),
        sessions = sessions.len(),
        clone_ms = pause.as_secs_f64() * 1000.0,
        "creating snapshot (tree cloned under the read lock)"
    );
    match save_snapshot(tree, &sessions, data_dir, opts) {
        Ok(path) => {
            shared.stats.snapshots.fetch_add(1, Ordering::Relaxed);
            crate::metrics::hooks::snapshot_written(&path, started.elapsed());
            tracing::info!(
                file = %path.display(),
                ms = started.elapsed().as_millis() as u64,
                "snapshot finished"
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "snapshot failed (the transaction log still has every txn)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The snapshot thread's nice value goes up by [`SNAPSHOT_NICE`] and its I/O class
    /// becomes idle; the other threads' stay (Linux keeps both per thread).
    #[test]
    fn lowering_the_priority_affects_only_the_calling_thread() {
        let me = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let my_io = io_priority(rustix::thread::gettid());
        let (before, after, io_class) = std::thread::spawn(|| {
            let tid = rustix::thread::gettid();
            let before = rustix::process::getpriority_process(Some(tid)).unwrap();
            lower_priority();
            (
                before,
                rustix::process::getpriority_process(Some(tid)).unwrap(),
                io_priority(tid),
            )
        })
        .join()
        .unwrap();
        assert_eq!(after, (before + SNAPSHOT_NICE).min(19));
        assert_eq!(io_class, IOPRIO_IDLE, "idle I/O class");
        let me_now = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        assert_eq!(me_now, me, "the calling thread only");
        assert_eq!(
            io_priority(rustix::thread::gettid()),
            my_io,
            "the calling thread only"
        );
    }

    /// The thread's I/O priority as `ioprio_get(2)` gives it.
    fn io_priority(tid: rustix::thread::Pid) -> libc::c_long {
        // SAFETY: ioprio_get takes two integers and touches no memory of this process.
        let r = unsafe {
            libc::syscall(
                libc::SYS_ioprio_get,
                IOPRIO_WHO_PROCESS,
                libc::c_long::from(tid.as_raw_nonzero().get()),
            )
        };
        assert!(r >= 0, "ioprio_get: {}", std::io::Error::last_os_error());
        r
    }
}
