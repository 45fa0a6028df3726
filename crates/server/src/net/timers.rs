//! Periodic work: session expiry (by tickTime buckets) and the container/TTL reaper.
//!
//! Owns only timing. Both timers submit ordinary transactions to the write pipeline
//! (closeSession, deleteContainer); they never touch the tree or watches directly.

use crate::net::state::{wall_ms, Job, JobKind, Origin, Shared};
use crate::prep::WriteRequest;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Smallest sleep of the expiry timer.
const MIN_EXPIRY_SLEEP_MS: i64 = 5;

fn internal(session: i64, kind: JobKind) -> Job {
    Job {
        origin: Origin::Internal,
        session,
        xid: 0,
        kind,
        auth: Default::default(),
        received: Instant::now(),
    }
}

/// Expires sessions whose bucket time has passed: each becomes a closeSession txn.
pub async fn session_expiry(shared: Arc<Shared>) {
    let tick = i64::from(shared.config.tick_time_ms.max(1));
    let mut stop = shared.shutdown.subscribe();
    loop {
        let now = shared.now_ms();
        let expired = shared.sessions().take_expired(now);
        for sid in expired {
            let timeout = shared
                .sessions()
                .get(sid)
                .map(|s| s.timeout_ms)
                .unwrap_or(0);
            tracing::info!("expiring session 0x{sid:x}, timeout of {timeout} ms exceeded");
            let job = internal(sid, JobKind::Write(WriteRequest::CloseSession));
            if shared.jobs.send(job).await.is_err() {
                return;
            }
        }
        let next = shared.sessions().next_expiry().unwrap_or(now + tick);
        let wait = (next - shared.now_ms()).clamp(MIN_EXPIRY_SLEEP_MS, tick);
        tokio::select! {
            _ = stop.wait_for(|v| *v) => return,
            _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
        }
    }
}

/// Deletes empty containers and expired TTL nodes every `znode.container.checkIntervalMs`,
/// at most `znode.container.maxPerMinute` per minute.
pub async fn reaper(shared: Arc<Shared>) {
    let interval = shared.config.container_check_interval_ms.max(1);
    let per_minute = u64::from(shared.config.container_max_per_minute.max(1));
    let limit = (per_minute * interval / 60_000).max(1) as usize;
    let mut stop = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = stop.wait_for(|v| *v) => return,
            _ = tokio::time::sleep(Duration::from_millis(interval)) => {}
        }
        let candidates =
            shared
                .tree()
                .reaper_candidates(wall_ms(), shared.config.extended_types_enabled, limit);
        for path in candidates {
            tracing::debug!("reaper: deleting {path}");
            let job = internal(0, JobKind::Write(WriteRequest::DeleteContainer(path)));
            if shared.jobs.send(job).await.is_err() {
                return;
            }
        }
    }
}
