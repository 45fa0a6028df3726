//! One-call hooks for the runtime: role and serving changes, proposals, persistence and
//! commits. They keep the few timestamps the timing metrics need (when an election
//! started, when each recent proposal was made) in atomics, so the driver, disk and
//! applier threads each make one call and never wait.

use super::{metrics, ByteSizes};
use crate::zab::Role;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::LazyLock;
use std::time::Instant;

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Microseconds since the process's first use of the metrics clock.
fn now_us() -> i64 {
    i64::try_from(EPOCH.elapsed().as_micros()).unwrap_or(i64::MAX)
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

/// Sizes of the leader's proposals (ZooKeeper's `ProposalStats`).
pub static PROPOSAL_SIZES: ByteSizes = ByteSizes::new();

fn since_ms(at: i64, now: i64) -> i64 {
    (now - at).max(0) / 1000
}

/// An ensemble member's role changed (`distributed`: a configured ensemble; a
/// standalone server's self-election is not an election).
pub fn role_changed(role: Role, distributed: bool) {
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
        }
        return;
    }
    let started = CLOCKS.looking_since.swap(NONE, Ordering::Relaxed);
    if started != NONE {
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
        if role != Role::Leading {
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

/// Recent proposals: when each was made, by zxid modulo the ring's size. Only the
/// driver thread writes; readers tolerate a slot overwritten by a newer proposal (the
/// zxid check then fails and nothing is recorded).
const RING: usize = 4096;

struct ProposalRing {
    zxid: Box<[AtomicI64]>,
    at_us: Box<[AtomicI64]>,
    last_persisted: AtomicI64,
}

static PROPOSALS: LazyLock<ProposalRing> = LazyLock::new(|| ProposalRing {
    zxid: (0..RING).map(|_| AtomicI64::new(NONE)).collect(),
    at_us: (0..RING).map(|_| AtomicI64::new(0)).collect(),
    last_persisted: AtomicI64::new(0),
});

fn slot(zxid: i64) -> usize {
    (zxid as u64 % RING as u64) as usize
}

/// When `zxid` was proposed, if it is still in the ring.
fn proposed_at(zxid: i64) -> Option<i64> {
    let r = &*PROPOSALS;
    let i = slot(zxid);
    (r.zxid[i].load(Ordering::Relaxed) == zxid).then(|| r.at_us[i].load(Ordering::Relaxed))
}

/// Leader: a txn of `bytes` bytes proposed as `zxid`.
#[inline]
pub fn proposed(zxid: i64, bytes: usize) {
    let m = metrics();
    m.proposal_count.inc();
    m.prep_processor_request_queued.inc();
    PROPOSAL_SIZES.record(bytes);
    let r = &*PROPOSALS;
    let i = slot(zxid);
    r.at_us[i].store(now_us(), Ordering::Relaxed);
    r.zxid[i].store(zxid, Ordering::Relaxed);
}

/// The log holds everything up to `up_to`: proposal latency of the leader's proposals
/// (proposed to persisted locally).
pub fn persisted(up_to: i64) {
    let r = &*PROPOSALS;
    let last = r.last_persisted.swap(up_to, Ordering::Relaxed);
    let from = last
        .saturating_add(1)
        .max(up_to.saturating_sub(RING as i64 - 1));
    let now = now_us();
    for z in from..=up_to {
        if let Some(at) = proposed_at(z) {
            metrics().proposal_latency.add(since_ms(at, now));
        }
    }
}

/// A txn committed: on the leader (`leading`) commit counts and the time from proposal
/// to commit; on a learner the COMMIT received and the propagation time from the txn's
/// timestamp (`txn_time_ms`, wall clock of the leader).
#[inline]
pub fn committed(zxid: i64, leading: bool, txn_time_ms: i64) {
    let m = metrics();
    m.request_commit_queued.inc();
    if leading {
        m.commit_count.inc();
        if let Some(at) = proposed_at(zxid) {
            let ms = since_ms(at, now_us());
            m.quorum_ack_latency.add(ms);
            m.commit_propagation_latency.add(ms);
        }
    } else {
        m.learner_commit_received_count.inc();
        m.propagation_latency
            .add(crate::node::lifecycle::wall_ms() - txn_time_ms);
    }
}

/// The log writer wrote `txns` txns, having woken for them at `woke` and started their
/// fsync at `synced_from`.
#[inline]
pub fn log_synced(txns: usize, woke: Instant, synced_from: Instant) {
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
    m.sync_processor_queue_and_flush_time_ms.add_ms(total);
}
