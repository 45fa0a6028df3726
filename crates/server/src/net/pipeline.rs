//! The write pipeline: Prep -> TxnLog append + group-commit sync -> apply -> watch
//! triggers -> replies and notifications to connections.
//!
//! Three dedicated threads, so that fsync and tree mutation never run on the async
//! runtime: `rzk-prep` assigns zxids and wall-clock time and turns jobs into txns;
//! `rzk-log` appends everything that is waiting when it wakes and syncs once (group
//! commit), and only then hands the batch on, so nothing is applied or acknowledged
//! before its record is durable; it also consults the snapshot policy and rolls the log
//! when a snapshot is due (the snapshot itself runs on its own thread, see
//! `snapshots.rs`); `rzk-apply` applies committed txns in zxid order under the tree
//! write lock, fires watches and answers the originating connection. This module must
//! never block on a connection: outbound channels are unbounded and sends that fail are
//! ignored.

use crate::auth::check_perm;
use crate::net::snapshots::Snapshotter;
use crate::net::state::{wall_ms, ConnMsg, Job, JobKind, Origin, Shared};
use crate::prep::{Prep, WriteRequest};
use crate::reply::write_reply_body;
use crate::storage::TxnLog;
use crate::tree::ApplyResult;
use rzk_proto::opcode::{perms, xid};
use rzk_proto::records::{ReplyHeader, SyncResponse, WatcherEvent};
use rzk_proto::txn::{Txn, TxnRecord};
use rzk_proto::Jute;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::mpsc;

/// Most jobs taken into one group commit.
pub const MAX_BATCH: usize = 1000;
/// Capacity of the prep -> log queue (bounded: backpressure onto connections).
pub const LOG_QUEUE_CAPACITY: usize = 4096;

/// A job after prep: `rec` is `None` for jobs that log nothing (sync).
#[derive(Debug)]
struct Prepared {
    job: Job,
    rec: Option<TxnRecord>,
}

/// Handles of the pipeline threads.
#[derive(Debug)]
pub struct Pipeline {
    threads: Vec<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts the three threads. They stop when every `Job` sender is dropped. With a
    /// [`Snapshotter`], the log thread triggers background snapshots.
    pub fn start(
        shared: Arc<Shared>,
        jobs: mpsc::Receiver<Job>,
        log: Box<dyn TxnLog>,
        snapshots: Option<Snapshotter>,
    ) -> std::io::Result<Pipeline> {
        let prep = Arc::new(Mutex::new(Prep::new(shared.config.extended_types_enabled)));
        let (to_log, log_rx) = std_mpsc::sync_channel::<Prepared>(LOG_QUEUE_CAPACITY);
        let (to_apply, apply_rx) = std_mpsc::channel::<Vec<Prepared>>();
        let mut threads = Vec::new();
        {
            let shared = shared.clone();
            let prep = prep.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("rzk-prep".into())
                    .spawn(move || prep_loop(shared, jobs, to_log, prep))?,
            );
        }
        {
            let shared = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("rzk-log".into())
                    .spawn(move || log_loop(shared, log_rx, to_apply, log, snapshots))?,
            );
        }
        threads.push(
            std::thread::Builder::new()
                .name("rzk-apply".into())
                .spawn(move || apply_loop(shared, apply_rx, prep))?,
        );
        Ok(Pipeline { threads })
    }

    /// Waits for the threads to finish (after all job senders are gone).
    pub fn join(self) {
        for t in self.threads {
            if t.join().is_err() {
                tracing::error!("a write pipeline thread panicked");
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn prep_loop(
    shared: Arc<Shared>,
    mut jobs: mpsc::Receiver<Job>,
    to_log: std_mpsc::SyncSender<Prepared>,
    prep: Arc<Mutex<Prep>>,
) {
    let mut next_zxid = shared.tree().last_zxid() + 1;
    while let Some(job) = jobs.blocking_recv() {
        let rec = match &job.kind {
            JobKind::Write(req) => {
                let zxid = next_zxid;
                next_zxid += 1;
                let tree = shared.tree();
                let rec = lock(&prep).prepare(
                    &tree,
                    job.session,
                    job.xid,
                    req,
                    &job.auth,
                    zxid,
                    wall_ms(),
                );
                Some(rec)
            }
            JobKind::ErrorTxn(code) => {
                let zxid = next_zxid;
                next_zxid += 1;
                Some(Prep::error_txn(
                    job.session,
                    job.xid,
                    zxid,
                    wall_ms(),
                    *code,
                ))
            }
            JobKind::Sync(_) => None,
            JobKind::Stop => break,
        };
        if to_log.send(Prepared { job, rec }).is_err() {
            break;
        }
    }
    tracing::debug!("prep thread stopped");
}

fn log_loop(
    shared: Arc<Shared>,
    rx: std_mpsc::Receiver<Prepared>,
    to_apply: std_mpsc::Sender<Vec<Prepared>>,
    mut log: Box<dyn TxnLog>,
    mut snapshots: Option<Snapshotter>,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let mut logged = 0u64;
        let mut snapshot_due = false;
        let mut result = Ok(());
        for p in &batch {
            if let Some(rec) = &p.rec {
                match log.append(rec) {
                    Ok(bytes) => {
                        logged += 1;
                        if let Some(s) = snapshots.as_mut() {
                            snapshot_due |= s.on_append(bytes);
                        }
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        // One write + one fdatasync for the whole batch (group commit); nothing in it
        // is applied or answered before this returns.
        if result.is_ok() && logged > 0 {
            result = log.sync();
        }
        if let Err(e) = result {
            // ZooKeeper stops serving when its log cannot be written. The batch is
            // neither applied nor acknowledged.
            tracing::error!(error = %e, "transaction log write failed; shutting down");
            shared.fail(format!("transaction log write failed: {e}"));
            break;
        }
        if logged > 0 {
            use std::sync::atomic::Ordering::Relaxed;
            shared.stats.fsyncs.fetch_add(1, Relaxed);
            shared.stats.txns_logged.fetch_add(logged, Relaxed);
        }
        if to_apply.send(batch).is_err() {
            break;
        }
        if snapshot_due {
            if let Some(s) = snapshots.as_mut() {
                // The next txn starts a new log file, as ZooKeeper's rollLog.
                if let Err(e) = log.roll() {
                    tracing::error!(error = %e, "rolling the transaction log failed; shutting down");
                    shared.fail(format!("rolling the transaction log failed: {e}"));
                    break;
                }
                s.start(&shared);
            }
        }
    }
    if let Some(s) = snapshots.as_mut() {
        s.join();
    }
    tracing::debug!("log thread stopped");
}

fn apply_loop(shared: Arc<Shared>, rx: std_mpsc::Receiver<Vec<Prepared>>, prep: Arc<Mutex<Prep>>) {
    while let Ok(batch) = rx.recv() {
        for p in batch {
            apply_one(&shared, &prep, p);
        }
    }
    tracing::debug!("apply thread stopped");
}

/// A reply frame: header + body.
pub fn reply_frame(xid: i32, zxid: i64, err: i32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 16 + body.len());
    crate::net::frame::encode_frame(&mut out, |w| {
        ReplyHeader { xid, zxid, err }.write(w);
        w.extend_from_slice(body);
    });
    out
}

/// A watch notification frame (ZooKeeper 3.8 sends zxid -1).
pub fn notification_frame(ev: &WatcherEvent) -> Vec<u8> {
    reply_frame(xid::NOTIFICATION, -1, 0, &ev.to_bytes())
}

fn apply_one(shared: &Shared, prep: &Mutex<Prep>, p: Prepared) {
    let Prepared { job, rec } = p;
    match rec {
        None => answer_sync(shared, &job),
        Some(rec) => {
            apply_committed(shared, Some(&job), &rec);
            lock(prep).applied(rec.header.zxid);
        }
    }
}

/// Answers a `sync` job: everything submitted before it has been applied now.
pub(crate) fn answer_sync(shared: &Shared, job: &Job) {
    if let (Origin::Conn(conn), JobKind::Sync(path)) = (job.origin, &job.kind) {
        let zxid = shared.tree().last_zxid();
        let body = SyncResponse { path: path.clone() }.to_bytes();
        shared.send_to(
            conn,
            ConnMsg::Done {
                frame: reply_frame(job.xid, zxid, 0, &body),
                close: false,
            },
        );
    }
}

/// Applies one committed txn: tree, session table, watches, and the reply to `job`'s
/// connection (no job: a txn from elsewhere, e.g. expiry or another server's client).
/// Shared by the standalone pipeline and the quorum applier.
pub(crate) fn apply_committed(shared: &Shared, job: Option<&Job>, rec: &TxnRecord) {
    let session = rec.header.client_id;
    let mut tree = shared.tree_mut();
    let result = tree.apply(rec);

    // Session bookkeeping follows the committed txn.
    let mut closed_session = false;
    match &rec.txn {
        Txn::CreateSession(t) => {
            shared
                .sessions()
                .add(session, t.timeout_ms, shared.now_ms());
        }
        Txn::CloseSession(_) => {
            shared.sessions().remove(session);
            closed_session = true;
        }
        _ => {}
    }

    // Watches fire while the tree is still write-locked, so a reader that sees the new
    // state also finds the notification already queued on its channel.
    if !result.changes.is_empty() {
        let mut watches = shared.watches();
        let conns = shared.conns();
        let events = watches.trigger(&result.changes, |conn, acl| {
            conns
                .conns
                .get(&conn)
                .is_some_and(|c| check_perm(acl, &c.auth, perms::READ))
        });
        for (conn, ev) in events {
            if let Some(c) = conns.conns.get(&conn) {
                let _ = c.tx.send(ConnMsg::Notify(notification_frame(&ev)));
            }
        }
    }
    drop(tree);

    match job.map(|j| (j.origin, j)) {
        Some((Origin::Conn(conn), job)) => reply_to_origin(shared, conn, job, &result),
        _ => {
            if closed_session {
                // Expired: close whichever connection is bound to it.
                if let Some(conn) = shared.conn_of_session(session) {
                    shared.send_to(conn, ConnMsg::Close("session expired"));
                }
            }
        }
    }
}

fn reply_to_origin(shared: &Shared, conn: crate::watch::ConnId, job: &Job, result: &ApplyResult) {
    let zxid = result.zxid;
    match &job.kind {
        JobKind::Write(WriteRequest::CreateSession { .. }) => {
            let r = match &result.reply {
                crate::tree::TxnReply::Error(c) if *c != rzk_proto::ErrorCode::Ok => Err(*c),
                _ => Ok(()),
            };
            shared.send_to(conn, ConnMsg::SessionCreated(r));
        }
        JobKind::Write(WriteRequest::CloseSession) => {
            shared.send_to(
                conn,
                ConnMsg::Done {
                    frame: reply_frame(job.xid, zxid, 0, &[]),
                    close: true,
                },
            );
        }
        JobKind::Write(req) => {
            let frame = match write_reply_body(req.op_code(), result) {
                Ok(body) => reply_frame(job.xid, zxid, 0, &body),
                Err(code) => reply_frame(job.xid, zxid, code.code(), &[]),
            };
            shared.send_to(
                conn,
                ConnMsg::Done {
                    frame,
                    close: false,
                },
            );
        }
        JobKind::ErrorTxn(code) => {
            shared.send_to(
                conn,
                ConnMsg::Done {
                    frame: reply_frame(job.xid, zxid, code.code(), &[]),
                    close: false,
                },
            );
        }
        JobKind::Sync(_) | JobKind::Stop => {}
    }
}
