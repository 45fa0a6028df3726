//! The applier of a quorum member: applies committed transactions in zxid order to the
//! tree, fires watches and answers the originating connection — through the same code
//! as the standalone pipeline (`pipeline::apply_committed`) — and also, in the same
//! order: answers syncs, replaces the database after a SNAP, and serializes the database
//! for a learner's SNAP at exactly the zxid the core asked for.
//!
//! Owns the only thread that mutates the tree in quorum mode. Never does disk IO and
//! never waits on the network.

use super::wire::{encode_snapshot, ReceivedSnapshot};
use super::Event;
use crate::net::pipeline::{answer_sync, apply_committed, reply_frame};
use crate::net::state::{ConnMsg, Job, JobKind, Origin, Shared};
use rzk_proto::txn::TxnRecord;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

/// Work for the applier, in the order it must happen.
#[derive(Debug)]
pub enum ApplyMsg {
    /// A committed txn; `job` is the local client request it answers, if any.
    Commit {
        rec: Box<TxnRecord>,
        job: Option<Box<Job>>,
    },
    /// Answer a `sync` (or an error-only request) after everything before it.
    Reply(Box<Job>),
    /// Replace the database with the one received after SNAP.
    Install(Box<ReceivedSnapshot>),
    /// Serialize the database (which must be at `zxid`) for a learner's SNAP.
    Snapshot {
        zxid: i64,
        tx: oneshot::Sender<Vec<u8>>,
    },
    Stop,
}

/// Handle of the applier thread.
#[derive(Debug)]
pub struct Applier {
    pub tx: std_mpsc::Sender<ApplyMsg>,
    thread: Option<JoinHandle<()>>,
}

impl Applier {
    pub fn start(
        shared: Arc<Shared>,
        events: mpsc::UnboundedSender<Event>,
    ) -> std::io::Result<Applier> {
        let (tx, rx) = std_mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("rzk-quorum-apply".into())
            .spawn(move || run(&shared, &rx, &events))?;
        Ok(Applier {
            tx,
            thread: Some(thread),
        })
    }

    /// Stops after everything queued so far and waits for the thread.
    pub fn stop(mut self) {
        let _ = self.tx.send(ApplyMsg::Stop);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the apply thread panicked");
            }
        }
    }
}

fn run(shared: &Shared, rx: &std_mpsc::Receiver<ApplyMsg>, events: &mpsc::UnboundedSender<Event>) {
    while let Ok(first) = rx.recv() {
        let mut msg = Some(first);
        let mut applied = None;
        while let Some(m) = msg.take() {
            match m {
                ApplyMsg::Commit { rec, job } => {
                    apply_committed(shared, job.as_deref(), &rec);
                    applied = Some(rec.header.zxid);
                }
                ApplyMsg::Reply(job) => reply(shared, &job),
                ApplyMsg::Install(snap) => install(shared, *snap),
                ApplyMsg::Snapshot { zxid, tx } => {
                    let bytes = {
                        let tree = shared.tree();
                        if tree.last_zxid() != zxid {
                            tracing::error!(
                                want = format_args!("0x{zxid:x}"),
                                have = format_args!("0x{:x}", tree.last_zxid()),
                                "database not at the SNAP zxid; the learner will reject it"
                            );
                        }
                        encode_snapshot(&tree, &shared.sessions().timeouts())
                    };
                    let _ = tx.send(bytes);
                }
                ApplyMsg::Stop => return,
            }
            msg = rx.try_recv().ok();
        }
        if let Some(z) = applied {
            let _ = events.send(Event::Applied(z));
        }
    }
}

fn reply(shared: &Shared, job: &Job) {
    let Origin::Conn(conn) = job.origin else {
        return;
    };
    match &job.kind {
        JobKind::Sync(_) => answer_sync(shared, job),
        JobKind::ErrorTxn(code) => {
            let zxid = shared.tree().last_zxid();
            shared.send_to(
                conn,
                ConnMsg::Done {
                    frame: reply_frame(job.xid, zxid, code.code(), &[]),
                    close: false,
                },
            );
        }
        _ => {}
    }
}

fn install(shared: &Shared, snap: ReceivedSnapshot) {
    let zxid = snap.tree.last_zxid();
    *shared.tree_mut() = snap.tree;
    let now = shared.now_ms();
    let mut s = shared.sessions();
    for id in s.ids() {
        s.remove(id);
    }
    for (id, to) in snap.sessions {
        s.add(id, to, now);
    }
    tracing::info!(
        zxid = format_args!("0x{zxid:x}"),
        "database replaced by the leader's snapshot"
    );
}
