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
    }
}

/// Deletes empty containers and expired TTL nodes every `znode.container.checkIntervalMs`,
/// at most `znode.container.maxPerMinute` per minute.
pub async fn reaper(shared: Arc<Shared>) {
    let interval = shared.config.container_check_interval_ms.max(1);
    let per_minute = u64::from(shared.config.container_max_per_minute.max(1));
    let limit = (per_minute * interval / 60_000).max(1) as usize;
    let mut stop = shared.lifecycle.subscribe();
    loop {
        tokio::select! {
            _ = stop.wait_for(|v| *v) => return,
            _ = tokio::time::sleep(Duration::from_millis(interval)) => {}
        }
        let candidates = shared.tree().reaper_candidates(
            wall_ms(),
            shared.config.extended_types_enabled,
            shared.config.container_max_never_used_ms,
            limit,
        );
        for path in candidates {
            tracing::debug!("reaper: deleting {path}");
            let job = internal(
                SessionId::NONE,
                JobKind::Write(WriteRequest::DeleteContainer(path)),
            );
            if shared.jobs.send(job).await.is_err() {
                return;
            }
        }
    }
}
