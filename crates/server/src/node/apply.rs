//! The applier: applies committed transactions in zxid order to the tree, fires watches
//! and answers the originating connection (`apply_chunk`), and also, in the same
//! order: answers syncs, replaces the database after a SNAP, and serializes the database
//! for a learner's SNAP at exactly the zxid the core asked for.
//!
//! Owns the only thread that mutates the tree in quorum mode. Never does disk IO and
//! never waits on the network.

use crate::auth::check_perm;
use crate::net::peer::wire::{encode_snapshot, ReceivedSnapshot};
use crate::node::clients::ConnMsg;
use crate::node::jobs::{Job, JobKind, Origin};
use crate::node::lifecycle::CriticalThread;
use crate::node::shared::Shared;
use crate::node::Event;
use crate::prep::WriteRequest;
use crate::reply::{notification_frame, reply_frame, write_reply_frame};
use crate::tree::store::TreeWriter;
use crate::tree::{ApplyResult, DataTree};
use crate::watch::ConnId;
use rzk_proto::opcode::perms;
use rzk_proto::records::SyncResponse;
use rzk_proto::txn::Txn;
use rzk_proto::txn::TxnRecord;
use rzk_proto::{Jute, SessionId, Zxid};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

/// Work for the applier, in the order it must happen.
#[derive(Debug)]
pub enum ApplyMsg {
    /// Committed txns in zxid order, each with the local client request it answers, if
    /// any (one message per group of commits: one wake-up of the applier).
    Commits(Vec<(TxnRecord, Option<Job>)>),
    /// Answer a `sync` (or an error-only request) after everything before it.
    Reply(Box<Job>),
    /// Replace the database with the one received after SNAP.
    Install(Box<ReceivedSnapshot>),
    /// A learner has synchronised with its leader: write the membership in force (its
    /// text and version) into `/zookeeper/config` (ZooKeeper's `Learner.syncWithLeader`
    /// → `initConfigInZKDatabase`; no client is connected then, so no watch fires). Ends
    /// a SNAP sync's pause of txn digest checks (`DataTree::end_snap_sync`).
    ConfigNode(String, Zxid),
    /// Close these client connections (those open when the server stopped serving, or
    /// one whose request came after), after answering the commits sent before: a client
    /// whose write committed just before the leader went away (a reconfig that removed
    /// it) gets its reply, then the close. Connections opened later (a new term) are
    /// not touched.
    CloseConns(Vec<ConnId>, &'static str),
    /// Serialize the database (which must be at `zxid`) for a learner's SNAP.
    Snapshot {
        zxid: Zxid,
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
    /// Starts the applier thread. It reports `Event::Applied` after a batch only while
    /// `want_applied` is set (the driver waits for the tree to catch up), so it does not
    /// wake the driver for every batch.
    pub fn start(
        shared: Arc<Shared>,
        mut writer: TreeWriter,
        events: mpsc::UnboundedSender<Event>,
        want_applied: Arc<AtomicBool>,
    ) -> std::io::Result<Applier> {
        let (tx, rx) = std_mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("rzk-quorum-apply".into())
            .spawn(move || {
                let _critical = CriticalThread::new(&shared.lifecycle, "rzk-quorum-apply thread");
                run(&shared, &mut writer, &rx, &events, &want_applied)
            })?;
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

fn run(
    shared: &Shared,
    writer: &mut TreeWriter,
    rx: &std_mpsc::Receiver<ApplyMsg>,
    events: &mpsc::UnboundedSender<Event>,
    want_applied: &AtomicBool,
) {
    // Invariant: committed txns are applied in strictly increasing zxid order.
    let mut last_applied: Option<Zxid> = None;
    while let Ok(first) = rx.recv() {
        let mut msg = Some(first);
        let mut applied = None;
        while let Some(m) = msg.take() {
            match m {
                ApplyMsg::Commits(batch) => {
                    // Each txn is timed from the end of the one before (one clock
                    // reading per txn).
                    for (rec, _) in &batch {
                        let zxid = Zxid(rec.header.zxid);
                        debug_assert!(
                            last_applied.is_none_or(|l| zxid > l),
                            "apply out of zxid order: {zxid} after {}",
                            last_applied.unwrap_or_default()
                        );
                        last_applied = Some(zxid);
                        applied = Some(zxid);
                    }
                    let mut rest = &batch[..];
                    let mut since = std::time::Instant::now();
                    while !rest.is_empty() {
                        let (done, ended) = apply_chunk(shared, writer, rest, since);
                        debug_assert!(done > 0);
                        rest = &rest[done..];
                        since = ended;
                    }
                }
                ApplyMsg::Reply(job) => reply(shared, &job),
                ApplyMsg::CloseConns(ids, why) => {
                    let n = shared.clients.close_some(&ids, why);
                    tracing::debug!(clients = n, "connections closed: {why}");
                }
                ApplyMsg::Install(snap) => {
                    last_applied = Some(snap.tree.last_zxid());
                    install(shared, writer, *snap)
                }
                ApplyMsg::ConfigNode(text, version) => {
                    let mut tree = writer.write();
                    tree.end_snap_sync();
                    crate::storage::open::write_config_node(&mut tree, &text, version)
                }
                ApplyMsg::Snapshot { zxid, tx } => {
                    let bytes = {
                        let tree = shared.tree();
                        if tree.last_zxid() != zxid {
                            tracing::error!(
                                want = %zxid,
                                have = %tree.last_zxid(),
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
            if want_applied.load(Ordering::Acquire) {
                let _ = events.send(Event::Applied(z));
            }
        }
    }
}

fn reply(shared: &Shared, job: &Job) {
    let Origin::Conn(conn) = job.origin else {
        return;
    };
    match &job.kind {
        JobKind::Sync(_) => answer_sync(shared, job),
        // Every other job is answered with its txn (an error txn too, on a learner as
        // well since it forwards malformed writes to the leader).
        _ => debug_assert!(false, "only syncs are answered without a txn (conn {conn})"),
    }
}

fn install(shared: &Shared, writer: &mut TreeWriter, snap: ReceivedSnapshot) {
    let zxid = snap.tree.last_zxid();
    *writer.write() = snap.tree;
    let now = shared.now_ms();
    shared.sessions().replace_all(snap.sessions, now);
    tracing::info!(
        %zxid,
        "database replaced by the leader's snapshot"
    );
}

/// Answers a `sync` job: everything submitted before it has been applied now.
pub(crate) fn answer_sync(shared: &Shared, job: &Job) {
    if let (Origin::Conn(conn), JobKind::Sync(path)) = (job.origin, &job.kind) {
        let zxid = shared.tree().last_zxid();
        let body = match path {
            Some(path) => SyncResponse { path: path.clone() }.to_bytes(),
            // A null path is echoed as null (length -1), as ZooKeeper does.
            None => (-1i32).to_be_bytes().to_vec(),
        };
        shared.clients.send_to(
            conn,
            ConnMsg::Done {
                frame: reply_frame(job.xid, zxid, 0, &body),
                close: false,
            },
        );
    }
}

/// Most committed txns applied under one hold of the tree's write lock.
///
/// Taking the lock once per txn let the driver's prep (a reader: `Driver::prepare`)
/// in between every txn of a group, and each time it found the lock taken it slept on
/// it (a futex wait and two context switches); the replies also left one at a time,
/// each waking a connection. Held for a chunk, the driver waits at most one chunk and
/// the chunk's replies reach the connections together. Measured (docs/TESTING.md,
/// session 31; create, 32 sessions x 8 in flight, three alternated runs): server CPU
/// 8.7-8.9 against 8.9-10.3 µs per create. With [`APPLY_LOCK_HOLD`] this bounds how
/// long a read, a ping or prep waits behind applying (128 creates take ~250 µs).
const APPLY_PER_LOCK: usize = 128;

/// A chunk ends early once its txns have held the write lock this long (heavy txns,
/// e.g. expiries that delete many ephemerals and fire many watches): readers then get
/// in before the rest. The txn that crosses the limit is still applied in the chunk.
const APPLY_LOCK_HOLD: std::time::Duration = std::time::Duration::from_micros(250);

/// Applies the first committed txns of `commits` (zxid order) under one hold of the
/// write lock ([`apply_locked`] for each: tree, session table, watches, reply): at most
/// [`APPLY_PER_LOCK`], fewer once [`APPLY_LOCK_HOLD`] has passed; then, with the lock
/// released, records their metrics and audit lines and hands their replies over.
/// `started` is when the first one's applying began (each txn is timed from the end of
/// the one before). Returns how many it applied (at least one when `commits` is not
/// empty) and when the last one was done.
fn apply_chunk(
    shared: &Shared,
    writer: &mut TreeWriter,
    commits: &[(TxnRecord, Option<Job>)],
    started: std::time::Instant,
) -> (usize, std::time::Instant) {
    let mut results = Vec::with_capacity(commits.len().min(APPLY_PER_LOCK));
    let mut answers = Answers::default();
    let mut since = started;
    {
        let mut tree = writer.write();
        let locked_at = std::time::Instant::now();
        for (rec, job) in commits.iter().take(APPLY_PER_LOCK) {
            let result = apply_locked(shared, &mut tree, job.as_ref(), rec, &mut answers);
            let ended = std::time::Instant::now();
            results.push((result, since, ended));
            since = ended;
            if ended.saturating_duration_since(locked_at) >= APPLY_LOCK_HOLD {
                break;
            }
        }
    }
    let done = results.len();
    // Metrics and audit lines before the replies leave, as ZooKeeper's final request
    // processor writes its audit line before it sends the response.
    for ((rec, job), (result, from, to)) in commits.iter().zip(&results) {
        after_applied(shared, job.as_ref(), rec, result, *from, *to);
    }
    answers.deliver(shared);
    (done, since)
}

/// The answers of a chunk's txns (replies, and closes of connections whose session
/// expired or moved), held back until the chunk is applied and the write lock released,
/// then handed to their connections together, each connection's in zxid order.
///
/// Per connection, everything still goes out in zxid order: a notification a later txn
/// of the chunk fires on a connection first hands over that connection's held answers
/// ([`Answers::release_for`]). A reply reaching its connection after the lock is
/// released is what one lock per txn did too (the reply was sent after the unlock);
/// notifications are never held (a reader that sees the new state must find them
/// queued).
#[derive(Default)]
struct Answers {
    held: Vec<(ConnId, ConnMsg)>,
}

impl Answers {
    fn hold(&mut self, conn: ConnId, msg: ConnMsg) {
        self.held.push((conn, msg));
    }

    /// Hands `conn`'s held answers (oldest first) to `entry`, its registry entry, before
    /// a notification is queued on it.
    fn release_for(&mut self, conn: ConnId, entry: &crate::node::clients::ConnEntry) {
        for (_, m) in self.held.extract_if(.., |(c, _)| *c == conn) {
            let _ = entry.tx.send(m);
        }
    }

    /// Hands every held answer to its connection ([`crate::node::clients::Clients::send_each`]).
    fn deliver(self, shared: &Shared) {
        if !self.held.is_empty() {
            shared.clients.answer_each(self.held, &shared.stats);
        }
    }
}

/// What applying one committed txn does under the tree's write lock: the tree, the
/// session table, the watches it fires (queued on their connections while the tree is
/// still locked, so a reader that sees the new state also finds the notification
/// queued), then the reply to `job`'s connection (no job: a txn from elsewhere, e.g.
/// expiry or another server's client).
fn apply_locked(
    shared: &Shared,
    tree: &mut DataTree,
    job: Option<&Job>,
    rec: &TxnRecord,
    answers: &mut Answers,
) -> ApplyResult {
    let session = SessionId(rec.header.client_id);
    let result = tree.apply(rec);
    crate::metrics::hooks::txn_applied(
        &rec.txn,
        matches!(result.reply, crate::tree::TxnReply::Error(_)),
    );

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
        let conns = shared.clients.registry();
        // A session closed by expiry (not by its own closeSession) is past its timeout:
        // ZooKeeper has closed its silent connection by then, with its watches, so the
        // deletion of its ephemerals notifies only the others. Its connection here (if
        // any) is closed below; it gets none of these events first.
        let expired_conn = match (closed_session, job.map(|j| j.origin)) {
            (true, Some(Origin::Conn(_))) => None,
            (true, _) => conns.by_session.get(&session).copied(),
            _ => None,
        };
        let events = watches.trigger(&result.changes, |conn, acl| {
            conns
                .conns
                .get(&conn)
                .is_some_and(|c| check_perm(acl, &c.auth, perms::READ))
        });
        crate::metrics::hooks::watches_fired(&events);
        for (conn, ev) in events {
            if Some(conn) == expired_conn {
                continue;
            }
            if let Some(c) = conns.conns.get(&conn) {
                answers.release_for(conn, c);
                c.notify(notification_frame(&ev), result.zxid);
            }
        }
    }

    // The reply (or, for an expired session, the close of the connection bound to it),
    // held until the chunk is applied ([`Answers`]).
    match job.map(|j| (j.origin, j)) {
        Some((Origin::Conn(conn), job)) => {
            if let Some(msg) = reply_to_origin(tree, job, &result) {
                answers.hold(conn, msg);
            }
        }
        _ => {
            if closed_session {
                if let Some(conn) = shared.clients.conn_of_session(session) {
                    answers.hold(conn, ConnMsg::Close("session expired"));
                }
            }
        }
    }
    result
}

/// What follows one applied txn once the write lock is released: the applying
/// metrics (its applying ran from `started` to `ended`) and the audit line.
fn after_applied(
    shared: &Shared,
    job: Option<&Job>,
    rec: &TxnRecord,
    result: &ApplyResult,
    started: std::time::Instant,
    ended: std::time::Instant,
) {
    crate::metrics::hooks::applied(started, ended, job.is_some(), rec.header.time);
    if shared.audit.is_enabled() {
        audit(shared, job, rec, result);
    }
}

/// The audit lines of an applied txn (`audit.rs`): client writes on the client's
/// server, internal ones (expiry) on the leader, ephemeral deletions everywhere.
fn audit(shared: &Shared, job: Option<&Job>, rec: &TxnRecord, result: &ApplyResult) {
    use crate::audit::Submitter;
    let who = match job.map(|j| (j.origin, &j.kind, j)) {
        Some((Origin::Conn(_), JobKind::Write(request), j)) => Submitter::Client {
            auth: &j.auth,
            request,
        },
        Some((Origin::Internal, JobKind::Write(request), _)) => Submitter::Server { request },
        Some((Origin::Conn(_), JobKind::Reconfig(_), j)) => Submitter::Reconfig { auth: &j.auth },
        _ => Submitter::Elsewhere,
    };
    shared.audit.applied(who, rec, result);
}

/// Whether an applied txn tells its client that the session moved (SESSIONMOVED, as
/// the txn's error or as one of a multi's results): the request came on a connection
/// the session has left, which is closed without an answer (as ZooKeeper's final
/// request processor treats it: a connection-level error, so that nothing more sent on
/// that connection can be applied after what the client sent on its new one).
fn session_moved(result: &ApplyResult) -> bool {
    let moved = rzk_proto::ErrorCode::SessionMoved;
    match &result.reply {
        crate::tree::TxnReply::Error(c) => *c == moved,
        crate::tree::TxnReply::Multi(results) => results
            .iter()
            .any(|r| matches!(r, rzk_proto::multi::OpResult::Error(c) if *c == moved.code())),
        _ => false,
    }
}

/// The message that answers `job` on its connection once `result` is applied: the reply
/// frame, the session-created signal, or the close of a connection whose session moved
/// to another server. `tree` is the tree the txn was just applied to (still locked).
fn reply_to_origin(tree: &DataTree, job: &Job, result: &ApplyResult) -> Option<ConnMsg> {
    let zxid = result.zxid;
    if matches!(job.kind, JobKind::Write(_) | JobKind::Reconfig(_)) && session_moved(result) {
        tracing::info!(
            "session 0x{:x} moved to another server: closing the connection its request came on",
            job.session
        );
        return Some(ConnMsg::Close("session moved to another server"));
    }
    let msg = match &job.kind {
        JobKind::Write(WriteRequest::CreateSession { .. }) => {
            let r = match &result.reply {
                crate::tree::TxnReply::Error(c) if *c != rzk_proto::ErrorCode::Ok => Err(*c),
                _ => Ok(()),
            };
            ConnMsg::SessionCreated(r)
        }
        JobKind::Write(WriteRequest::CloseSession) => ConnMsg::Done {
            frame: reply_frame(job.xid, zxid, 0, &[]),
            close: true,
        },
        JobKind::Write(req) => ConnMsg::Done {
            frame: write_reply_frame(job.xid, zxid, req.op_code(), result),
            close: false,
        },
        JobKind::ErrorTxn { code, .. } => {
            // The logged txn's code: a forwarded request was failed by the leader's prep
            // (a ZooKeeper leader may name another error than this server's decoder).
            let code = match &result.reply {
                crate::tree::TxnReply::Error(c) => *c,
                _ => *code,
            };
            ConnMsg::Done {
                frame: reply_frame(job.xid, zxid, code.code(), &[]),
                close: false,
            }
        }
        JobKind::Reconfig(_) => {
            // ZooKeeper answers with the new /zookeeper/config (GetDataResponse).
            let frame = match &result.reply {
                crate::tree::TxnReply::SetData(stat) => {
                    let body = rzk_proto::records::GetDataResponse {
                        data: tree.config_node_data(),
                        stat: stat.clone(),
                    }
                    .to_bytes();
                    reply_frame(job.xid, zxid, 0, &body)
                }
                crate::tree::TxnReply::Error(c) => reply_frame(job.xid, zxid, c.code(), &[]),
                _ => reply_frame(job.xid, zxid, rzk_proto::ErrorCode::SystemError.code(), &[]),
            };
            ConnMsg::Done {
                frame,
                close: false,
            }
        }
        JobKind::Sync(_) | JobKind::Stop => return None,
    };
    Some(msg)
}
