//! Periodic work: the container/TTL reaper. (Session expiry belongs to the leader of
//! the one runtime: `node/driver.rs`.)
//!
//! Owns only timing. It submits ordinary transactions to the write path
//! (deleteContainer); it never touches the tree or watches directly.

use crate::node::jobs::{Job, JobKind, Origin};
use crate::node::lifecycle::wall_ms;
use crate::node::shared::Shared;
use crate::prep::WriteRequest;
use rzk_proto::SessionId;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn internal(session: SessionId, kind: JobKind) -> Job {
    Job {
        origin: Origin::Internal,
        session,
        xid: 0,
        kind,
        auth: Default::default(),
        received: Instant::now(),
        admitted: Default::default(),
    }
}

/// Deletes empty containers and expired TTL nodes as ZooKeeper's `ContainerManager`
/// does: a check every `znode.container.checkIntervalMs` (at a fixed rate: a check that
/// ran long is followed by the next at once), and within a check one deletion, then a
/// pause of `60000 / znode.container.maxPerMinute` ms before the next, so no more than
/// `maxPerMinute` go out in any minute.
/// A panic in it stops the server ([`crate::node::lifecycle::critical_task`]).
pub async fn reaper(shared: Arc<Shared>) {
    let owner = shared.clone();
    let work = reap(shared);
    crate::node::lifecycle::critical_task(&owner.lifecycle, "container/TTL reaper", work).await;
}

/// [`reaper`]'s work.
async fn reap(shared: Arc<Shared>) {
    let interval = shared.config.container_check_interval_ms.max(1);
    let per_minute = u64::from(shared.config.container_max_per_minute.max(1));
    let pause = Duration::from_millis(60_000 / per_minute);
    // Candidates taken per check: what the pace lets out before the next check is due
    // (the rest are found again by the next one).
    let limit = (interval / pause.as_millis().max(1) as u64 + 1) as usize;
    let mut stop = shared.lifecycle.subscribe();
    let period = Duration::from_millis(interval);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        tokio::select! {
            _ = stop.wait_for(|v| *v) => return,
            _ = ticks.tick() => {}
        }
        let candidates = shared.tree().reaper_candidates(
            wall_ms(),
            shared.config.extended_types_enabled,
            shared.config.container_max_never_used_ms,
            limit,
        );
        for path in candidates {
            let started = tokio::time::Instant::now();
            tracing::debug!("reaper: deleting {path}");
            let job = internal(
                SessionId::NONE,
                JobKind::Write(WriteRequest::DeleteContainer(path)),
            );
            if shared.jobs.send(job).await.is_err() {
                return;
            }
            tokio::select! {
                _ = stop.wait_for(|v| *v) => return,
                _ = tokio::time::sleep_until(started + pause) => {}
            }
        }
    }
}
