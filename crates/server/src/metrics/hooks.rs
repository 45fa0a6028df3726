//! One-call hooks for the runtime: role and serving changes, proposals, persistence and
//! commits. The per-request and per-txn ones do nothing when metrics are off
//! (ZooKeeper's NullMetricsProvider). They keep the few timestamps the timing metrics need (when an election
//! started, when each recent proposal was made) in atomics, so the driver, disk and
//! applier threads each make one call and never wait.

use super::{metrics, ByteSizes};
use crate::zab::Role;
use rzk_proto::Zxid;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::LazyLock;
use std::time::Instant;

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Microseconds since the process's first use of the metrics clock.
fn now_us() -> i64 {
    us_at(Instant::now())
}

/// `at` in the metrics clock's microseconds (no clock reading: callers pass the time
/// they already read once for a whole batch).
fn us_at(at: Instant) -> i64 {
    i64::try_from(at.saturating_duration_since(*EPOCH).as_micros()).unwrap_or(i64::MAX)
}

const NONE: i64 = -1;

/// When things started, in [`now_us`]; [`NONE`] when not under way.
struct Clocks {
    looking_since: AtomicI64,
    unavailable_since: AtomicI64,
    syncing_since: AtomicI64,
    leading_since: AtomicI64,
}

static CLOCKS: Clocks = Clocks {
    looking_since: AtomicI64::new(NONE),
    unavailable_since: AtomicI64::new(NONE),
    syncing_since: AtomicI64::new(NONE),
    leading_since: AtomicI64::new(NONE),
};

/// A member of a configured ensemble (its writes go through the quorum pipeline), not a
/// standalone server. ZooKeeper's standalone server has no commit processor and no
/// leader, so its commit, proposal and quorum metrics stay 0; rzk's standalone server
/// commits through the same driver as a leader of one, and leaves them at 0 too.
static QUORUM: AtomicBool = AtomicBool::new(false);

/// This server's role, as last reported to [`role_changed`] (threads other than the
/// driver's read it: the applier, the log writer).
static ROLE: AtomicU8 = AtomicU8::new(Role::Looking.code());

fn role() -> Role {
    Role::from_code(ROLE.load(Ordering::Relaxed))
}

static PENDING_SYNCS: AtomicI64 = AtomicI64::new(0);

/// Leader: how many learners' syncs wait for a commit (published every tick).
pub fn set_pending_syncs(n: usize) {
    PENDING_SYNCS.store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed);
}

/// The leader's pending syncs, as last published.
pub fn pending_syncs() -> i64 {
    PENDING_SYNCS.load(Ordering::Relaxed)
}

/// Sizes of the leader's proposals (ZooKeeper's `ProposalStats`).
pub static PROPOSAL_SIZES: ByteSizes = ByteSizes::new();

fn since_ms(at: i64, now: i64) -> i64 {
    (now - at).max(0) / 1000
}

/// An ensemble member's role changed (`distributed`: a configured ensemble; a
/// standalone server's self-election is not an election).
pub fn role_changed(role: Role, distributed: bool) {
    QUORUM.store(distributed, Ordering::Relaxed);
    ROLE.store(role.code(), Ordering::Relaxed);
    let now = now_us();
    let m = metrics();
    if role == Role::Looking {
        if distributed {
            m.looking_count.inc();
            let _ = CLOCKS.looking_since.compare_exchange(
                NONE,
                now,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            // Not serving until the new term broadcasts (ZooKeeper's QuorumPeer starts
            // this clock on every pass of its main loop, the first one included).
            let _ = CLOCKS.unavailable_since.compare_exchange(
                NONE,
                now,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        return;
    }
    let started = CLOCKS.looking_since.swap(NONE, Ordering::Relaxed);
    // ZooKeeper's Leader and Follower record the election's time; an observer does
    // not (it looks for a leader without voting).
    if started != NONE && matches!(role, Role::Leading | Role::Following) {
        m.election_time.add(since_ms(started, now));
    }
    if matches!(role, Role::Following | Role::Observing) {
        CLOCKS.syncing_since.store(now, Ordering::Relaxed);
    }
}

/// The server started (`on`) or stopped serving clients in `role`.
pub fn serving_changed(on: bool, role: Role) {
    let now = now_us();
    let m = metrics();
    if !on {
        let _ = CLOCKS.unavailable_since.compare_exchange(
            NONE,
            now,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        CLOCKS.leading_since.store(NONE, Ordering::Relaxed);
        return;
    }
    let down = CLOCKS.unavailable_since.swap(NONE, Ordering::Relaxed);
    if down != NONE {
        m.unavailable_time.add(since_ms(down, now));
        // ZooKeeper's QuorumPeer.setZabState: the leader's own time without service.
        if role == Role::Leading {
            m.leader_unavailable_time.add(since_ms(down, now));
        }
    }
    let sync = CLOCKS.syncing_since.swap(NONE, Ordering::Relaxed);
    match role {
        Role::Leading => CLOCKS.leading_since.store(now, Ordering::Relaxed),
        Role::Following if sync != NONE => m.follower_sync_time.add(since_ms(sync, now)),
        Role::Observing if sync != NONE => m.observer_sync_time.add(since_ms(sync, now)),
        _ => {}
    }
}

/// ms this server has been serving as leader (0 when it is not).
pub fn leader_uptime_ms() -> i64 {
    let at = CLOCKS.leading_since.load(Ordering::Relaxed);
    if at == NONE {
        0
    } else {
        since_ms(at, now_us())
    }
}

/// Recent proposals: each one's txn time (the header's wall-clock ms, set by the leader
/// that prepared it), by zxid modulo the ring's size. Only the driver thread writes;
/// readers tolerate a slot overwritten by a newer proposal (the zxid check then fails and
/// nothing is recorded). ZooKeeper's latencies of the quorum pipeline are all "wall clock
/// now less the txn's time" (`Request.logLatency`), so they are measured the same way.
const RING: usize = 4096;

struct ProposalRing {
    zxid: Box<[AtomicI64]>,
    time_ms: Box<[AtomicI64]>,
    last_persisted: AtomicI64,
}

static PROPOSALS: LazyLock<ProposalRing> = LazyLock::new(|| ProposalRing {
    zxid: (0..RING).map(|_| AtomicI64::new(NONE)).collect(),
    time_ms: (0..RING).map(|_| AtomicI64::new(0)).collect(),
    last_persisted: AtomicI64::new(0),
});

/// The ring slot of `zxid` (its bits modulo the ring's size).
fn slot(zxid: Zxid) -> usize {
    (zxid.0 as u64 % RING as u64) as usize
}

fn note_proposal(zxid: Zxid, time_ms: i64) {
    let r = &*PROPOSALS;
    let i = slot(zxid);
    r.time_ms[i].store(time_ms, Ordering::Relaxed);
    r.zxid[i].store(zxid.0, Ordering::Relaxed);
}

/// The txn time of proposal `zxid`, if it is still in the ring.
fn proposal_time(zxid: Zxid) -> Option<i64> {
    let r = &*PROPOSALS;
    let i = slot(zxid);
    (r.zxid[i].load(Ordering::Relaxed) == zxid.0).then(|| r.time_ms[i].load(Ordering::Relaxed))
}

/// `now_ms - txn_ms` into `sink` when not negative (clocks of two servers may disagree;
/// ZooKeeper drops negative samples too).
fn latency_since_txn(sink: &super::summary::Summary, now_ms: i64, txn_ms: i64) {
    let ms = now_ms - txn_ms;
    if ms >= 0 {
        sink.add(ms);
    }
}

/// The txn time in an encoded txn record (its header: client id, cxid, zxid, then time).
fn record_time(payload: &[u8]) -> Option<i64> {
    let b = payload.get(20..28)?;
    Some(i64::from_be_bytes(b.try_into().ok()?))
}

/// Leader: a txn of `bytes` bytes and txn time `time_ms` proposed as `zxid`.
#[inline]
pub fn proposed(zxid: Zxid, bytes: usize, time_ms: i64) {
    // srvr's proposal sizes do not depend on the metrics provider (ZooKeeper's
    // ProposalStats neither).
    PROPOSAL_SIZES.record(bytes);
    if !super::enabled() {
        return;
    }
    let m = metrics();
    m.prep_processor_request_queued.inc();
    if !QUORUM.load(Ordering::Relaxed) {
        return;
    }
    m.proposal_count.inc();
    note_proposal(zxid, time_ms);
}

/// The log holds everything up to `up_to`: the ACK of each txn since the last call is
/// created now (`proposal_ack_creation_latency`, on the leader and followers: observers
/// do not ACK).
pub fn persisted(up_to: Zxid) {
    let up_to = up_to.0;
    if !super::enabled()
        || !QUORUM.load(Ordering::Relaxed)
        || !matches!(role(), Role::Leading | Role::Following)
    {
        return;
    }
    let r = &*PROPOSALS;
    let last = r.last_persisted.swap(up_to, Ordering::Relaxed);
    let from = last
        .saturating_add(1)
        .max(up_to.saturating_sub(RING as i64 - 1));
    let now = crate::node::lifecycle::wall_ms();
    for z in from..=up_to {
        if let Some(t) = proposal_time(Zxid(z)) {
            latency_since_txn(&metrics().proposal_ack_creation_latency, now, t);
        }
    }
}

/// A txn committed in an ensemble: on the leader (`leading`) commit counts and the time
/// from its txn time to a quorum of ACKs, on a learner the COMMIT (or INFORM) received
/// and the time from its txn time (`txn_time_ms`) to now (`commit_propagation_latency`);
/// either way the commit queued for applying (ZooKeeper's `CommitProcessor.commit`).
/// `wall_ms` gives the wall clock (read once per batch by the caller). Nothing on a
/// standalone server (no commit processor in ZooKeeper's).
#[inline]
pub fn committed(zxid: Zxid, leading: bool, txn_time_ms: i64, wall_ms: impl FnOnce() -> i64) {
    if !super::enabled() || !QUORUM.load(Ordering::Relaxed) {
        return;
    }
    let m = metrics();
    m.request_commit_queued.inc();
    if leading {
        m.commit_count.inc();
        if let Some(t) = proposal_time(zxid) {
            latency_since_txn(&m.quorum_ack_latency, wall_ms(), t);
        }
    } else {
        m.learner_commit_received_count.inc();
        latency_since_txn(&m.commit_propagation_latency, wall_ms(), txn_time_ms);
    }
}

/// The log writer wrote `txns` txns, having woken for them at `woke` and started their
/// fsync at `synced_from`.
#[inline]
pub fn log_synced(txns: usize, woke: Instant, synced_from: Instant) {
    if !super::enabled() {
        return;
    }
    let m = metrics();
    let now = Instant::now();
    let fsync = now.duration_since(synced_from);
    let total = now.duration_since(woke);
    m.fsynctime.add_ms(fsync);
    m.sync_processor_queue_flush_time_ms.add_ms(fsync);
    m.sync_process_time.add_ms(total);
    m.sync_processor_batch_size.add(txns as i64);
    m.sync_processor_queue_size.add(txns as i64);
    m.sync_processor_request_queued.add(txns as u64);
    // An observer's sync processor hands nothing on (ZooKeeper's has no next processor
    // there, and records this time only for requests it passes on).
    if role() != Role::Observing {
        m.sync_processor_queue_and_flush_time_ms.add_ms(total);
    }
}

/// Leader: a quorum packet queued for a learner (counts DIFF syncs).
#[inline]
pub fn quorum_packet_sent(ty: rzk_proto::quorum::PacketType) {
    if !super::enabled() {
        return;
    }
    if ty == rzk_proto::quorum::PacketType::Diff {
        metrics().diff_count.inc();
    }
}

/// The core asked for `txns` to be logged; on a follower each is a PROPOSAL received
/// (`learner_proposal_received_count`, `proposal_latency`: from its txn time to now).
/// Observers receive INFORMs, which ZooKeeper does not count here.
#[inline]
pub fn txns_to_log(txns: &[crate::zab::Txn], role: Role) {
    if !super::enabled() || role != Role::Following {
        return;
    }
    let m = metrics();
    m.learner_proposal_received_count.add(txns.len() as u64);
    let now = crate::node::lifecycle::wall_ms();
    for t in txns {
        if let Some(time) = record_time(&t.payload) {
            note_proposal(t.zxid, time);
            latency_since_txn(&m.proposal_latency, now, time);
        }
    }
}

/// Watches fired by one applied txn, counted by event type (ZooKeeper records the
/// watchers each triggered event reaches).
pub fn watches_fired(events: &[(crate::watch::ConnId, rzk_proto::records::WatcherEvent)]) {
    if !super::enabled() {
        return;
    }
    use rzk_proto::opcode::event;
    let mut by_type = [0i64; 4];
    for (_, e) in events {
        let i = match e.event_type {
            event::NODE_CREATED => 0,
            event::NODE_DELETED => 1,
            event::NODE_DATA_CHANGED => 2,
            event::NODE_CHILDREN_CHANGED => 3,
            _ => continue,
        };
        by_type[i] += 1;
    }
    let m = metrics();
    let sinks = [
        &m.node_created_watch_count,
        &m.node_deleted_watch_count,
        &m.node_changed_watch_count,
        &m.node_children_watch_count,
    ];
    for (n, s) in by_type.into_iter().zip(sinks) {
        if n > 0 {
            s.add(n);
        }
    }
}

/// The applier applied one committed txn from `started` to `ended` (`local`: a client of
/// this server waits for it); `txn_time_ms` is the txn header's time (the wall clock of
/// the server that prepared it). `propagation_latency` (wall clock now less the txn's
/// time, when not negative) is counted on every server, as ZooKeeper's final request
/// processor counts it; the commit processor's times only in an ensemble, where a
/// leader's writes are all its own (ZooKeeper's leader runs the learners' forwarded
/// requests through its own commit processor).
#[inline]
pub fn applied(started: Instant, ended: Instant, local: bool, txn_time_ms: i64) {
    if !super::enabled() {
        return;
    }
    let m = metrics();
    latency_since_txn(
        &m.propagation_latency,
        crate::node::lifecycle::wall_ms(),
        txn_time_ms,
    );
    if !QUORUM.load(Ordering::Relaxed) {
        return;
    }
    let d = ended.saturating_duration_since(started);
    m.commit_process_time.add_ms(d);
    m.write_final_proc_time_ms.add_ms(d);
    m.write_commitproc_time_ms.add_ms(d);
    if local || role() == Role::Leading {
        m.local_write_committed_time_ms.add_ms(d);
    } else {
        m.server_write_committed_time_ms.add_ms(d);
    }
}

/// A client request of opcode `op` decoded (`rzk_requests`).
#[inline]
pub fn request_op(op: i32) {
    if !super::enabled() {
        return;
    }
    super::ops::count(op);
}

/// A client request frame of `payload` bytes arrived, the ConnectRequest included (its
/// 4-byte length prefix added), or a four-letter word (`payload` 0: its 4 bytes), as
/// ZooKeeper's `ServerCnxn.packetReceived` counts `bytes_received_count`.
#[inline]
pub fn request_received(payload: usize) {
    if !super::enabled() {
        return;
    }
    metrics().bytes_received_count.add(payload as u64 + 4);
}

/// A frame written to a client after the handshake (the ConnectResponse is not one, as
/// in ZooKeeper, which writes it outside `ServerCnxn.serialize`). Sizes are header plus
/// body, without the 4-byte length prefix (ZooKeeper's `packetLength`). Every frame's
/// size goes to the client response sizes; a notification (xid -1) counts in
/// `watch_bytes`; a reply counts in `response_bytes` unless it answers a ping (xid -2)
/// or an auth packet (xid -4), which ZooKeeper answers outside its final request
/// processor.
#[inline]
pub fn frame_sent(frame: &[u8]) {
    if !super::enabled() {
        return;
    }
    let size = frame.len().saturating_sub(crate::net::frame::LEN_PREFIX);
    super::response_sizes().record(size);
    match crate::reply::frame_xid(frame) {
        Some(rzk_proto::opcode::xid::NOTIFICATION) => metrics().watch_bytes.add(size as u64),
        Some(rzk_proto::opcode::xid::PING | rzk_proto::opcode::xid::AUTH) => {}
        _ => metrics().response_bytes.add(size as u64),
    }
}

/// A client request answered after `ms` ms; `write`: through the write pipeline
/// (ZooKeeper's `updatelatency`), otherwise a read, ping or other local request
/// (`readlatency`).
#[inline]
pub fn request_done(ms: u64, write: bool) {
    if !super::enabled() {
        return;
    }
    let m = metrics();
    let v = i64::try_from(ms).unwrap_or(i64::MAX);
    if write {
        m.updatelatency.add(v);
    } else {
        m.readlatency.add(v);
    }
}

/// A read of `bytes` bytes at `path` (`read_per_namespace`).
#[inline]
pub fn read_stat(path: &str, bytes: usize) {
    if !super::enabled() {
        return;
    }
    super::registry::read_stat(metrics(), path, bytes);
}

/// A write of `bytes` data bytes at `path` (`write_per_namespace`; 0 for a delete).
#[inline]
pub fn write_stat(path: &str, bytes: usize) {
    super::registry::write_stat(metrics(), path, bytes);
}

/// The writes of one applied txn by namespace (`write_per_namespace`: path length plus
/// data length; deletes, including a closed session's ephemerals, count the path only).
/// A failed txn writes nothing.
pub fn txn_applied(txn: &rzk_proto::txn::Txn, failed: bool) {
    if !super::enabled() {
        return;
    }
    use rzk_proto::txn::Txn;
    if failed {
        return;
    }
    match txn {
        Txn::Create(_, c) => write_stat(&c.path, c.data.len()),
        Txn::CreateTtl(c) => write_stat(&c.path, c.data.len()),
        Txn::CreateContainer(c) => write_stat(&c.path, c.data.len()),
        Txn::Delete(d) | Txn::DeleteContainer(d) => write_stat(&d.path, 0),
        Txn::SetData(s) | Txn::Reconfig(s) => write_stat(&s.path, s.data.len()),
        Txn::Multi(subs) => {
            for t in subs {
                txn_applied(t, false);
            }
        }
        Txn::CloseSession(Some(c)) => {
            for p in &c.paths_to_delete {
                write_stat(p, 0);
            }
        }
        _ => {}
    }
}

/// How often the leader queues a marker on each learner link.
const MARKER_INTERVAL_US: i64 = 1_000_000;
static LAST_MARKER: AtomicI64 = AtomicI64::new(NONE);

/// Leader: whether to queue a marker on every learner link now (once a second).
pub fn marker_due() -> bool {
    let now = now_us();
    let last = LAST_MARKER.load(Ordering::Relaxed);
    if last != NONE && now - last < MARKER_INTERVAL_US {
        return false;
    }
    LAST_MARKER.store(now, Ordering::Relaxed);
    true
}

/// The leader's view of one learner's packet queue (`learner_handler_qp_size` and
/// `learner_handler_qp_time_ms`, keyed by the learner's id).
#[derive(Debug)]
pub struct LearnerQueue {
    key: String,
}

impl LearnerQueue {
    /// The queue to learner `sid`.
    pub fn new(sid: crate::zab::ServerId) -> LearnerQueue {
        LearnerQueue {
            key: sid.0.to_string(),
        }
    }

    /// A packet taken from the queue with `queued` more behind it.
    #[inline]
    pub fn sent(&self, queued: usize) {
        if !super::enabled() {
            return;
        }
        metrics()
            .learner_handler_qp_size
            .add(&self.key, queued as i64);
    }

    /// A marker queued at `at` reached the front of the queue.
    pub fn marker(&self, at: Instant) {
        metrics().learner_handler_qp_time_ms.add(
            &self.key,
            i64::try_from(at.elapsed().as_millis()).unwrap_or(i64::MAX),
        );
    }
}

/// Leader: a local client's write reached the driver, `received` when its connection read
/// it, with `waiting` earlier writes held for prep (`prep_processor_queue_time_ms`,
/// `prep_processor_queue_size`).
#[inline]
pub fn reached_prep(received: Instant, now: Instant, waiting: usize) {
    if !super::enabled() {
        return;
    }
    let m = metrics();
    m.prep_processor_queue_time_ms
        .add_ms(now.saturating_duration_since(received));
    m.prep_processor_queue_size.add(waiting as i64);
}

/// Leader: one write prepared into a txn from `started` to `ended` (`close`: a
/// closeSession).
#[inline]
pub fn prepared(started: Instant, ended: Instant, close: bool) {
    if !super::enabled() {
        return;
    }
    let m = metrics();
    let d = ended.saturating_duration_since(started);
    m.prep_process_time.add_ms(d);
    m.proposal_process_time.add_ms(d);
    if close {
        m.close_session_prep_time.add_ms(d);
    }
}

static LAST_SNAPSHOT_BYTES: AtomicI64 = AtomicI64::new(NONE);

/// A snapshot was written to `path` in `took` (`snapshottime`; its size for rzk's own
/// `rzk_last_snapshot_size`).
pub fn snapshot_written(path: &std::path::Path, took: std::time::Duration) {
    metrics().snapshottime.add_ms(took);
    if let Ok(meta) = std::fs::metadata(path) {
        let bytes = i64::try_from(meta.len()).unwrap_or(i64::MAX);
        LAST_SNAPSHOT_BYTES.store(bytes, Ordering::Relaxed);
    }
}

/// Size in bytes of the last snapshot this process wrote while running (-1: none yet).
pub fn last_snapshot_bytes() -> i64 {
    LAST_SNAPSHOT_BYTES.load(Ordering::Relaxed)
}
