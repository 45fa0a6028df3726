//! Server-wide counters, as `srvr`, `stat`, `mntr` and the admin endpoint print them.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Server-wide counters (`srvr`, `stat`, `mntr`).
#[derive(Debug, Default)]
pub struct ServerStats {
    pub packets_received: AtomicU64,
    pub packets_sent: AtomicU64,
    pub outstanding: AtomicI64,
    pub min_latency_ms: AtomicU64,
    pub max_latency_ms: AtomicU64,
    pub total_latency_ms: AtomicU64,
    pub count: AtomicU64,
    pub auth_failed: AtomicU64,
    pub fsyncs: AtomicU64,
    pub txns_logged: AtomicU64,
    /// Snapshots written while running.
    pub snapshots: AtomicU64,
    /// Longest / latest time the tree read lock was held to clone it for a snapshot.
    pub snapshot_pause_max_us: AtomicU64,
    pub snapshot_pause_last_us: AtomicU64,
}

impl ServerStats {
    pub fn new() -> ServerStats {
        let s = ServerStats::default();
        s.min_latency_ms.store(u64::MAX, Ordering::Relaxed);
        s
    }

    /// `srst`: ZooKeeper's `ServerStats.reset`, which also zeroes the metrics registry.
    pub fn reset(&self) {
        crate::metrics::reset();
        self.reset_requests_and_latency();
    }

    /// A new role (leader, follower, observer, read-only): ZooKeeper builds a new
    /// `ZooKeeperServer`, with a new `ServerStats`, each time its peer takes a role, so
    /// `srvr`, `stat` and `mntr` count packets, latencies, failed authentications and
    /// reply sizes from then on. The metrics registry is process-wide and kept (only
    /// `srst` zeroes it), as are the log and snapshot counters, which are rzk's own.
    pub fn new_role(&self) {
        self.reset_requests_and_latency();
        self.auth_failed.store(0, Ordering::Relaxed);
        crate::metrics::response_sizes().reset();
    }

    /// ZooKeeper's `resetRequestCounters` and `resetLatency`: packets and latencies.
    fn reset_requests_and_latency(&self) {
        self.packets_received.store(0, Ordering::Relaxed);
        self.packets_sent.store(0, Ordering::Relaxed);
        self.min_latency_ms.store(u64::MAX, Ordering::Relaxed);
        self.max_latency_ms.store(0, Ordering::Relaxed);
        self.total_latency_ms.store(0, Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
    }

    pub fn record_latency(&self, ms: u64) {
        self.min_latency_ms.fetch_min(ms, Ordering::Relaxed);
        self.max_latency_ms.fetch_max(ms, Ordering::Relaxed);
        self.total_latency_ms.fetch_add(ms, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// (min, avg, max) as ZooKeeper prints them (min 0 when nothing recorded).
    pub fn latency(&self) -> (u64, f64, u64) {
        let n = self.count.load(Ordering::Relaxed);
        let min = self.min_latency_ms.load(Ordering::Relaxed);
        // Rounded to 4 decimals as ZooKeeper's getAvgLatency (stat, srvr, mntr).
        let avg =
            crate::admin::number::zk_avg(self.total_latency_ms.load(Ordering::Relaxed) as f64, n);
        (
            if min == u64::MAX { 0 } else { min },
            avg,
            self.max_latency_ms.load(Ordering::Relaxed),
        )
    }
}
