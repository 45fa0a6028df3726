//! The server's metrics under ZooKeeper 3.8's names (its `ServerMetrics`): counters and
//! summaries, declared once here; `mntr` and the Prometheus endpoint both print them
//! from this table.
//!
//! Each entry's doc says what rzk records there. Entries for a part of ZooKeeper that
//! rzk does not have (its response cache, request throttling, commit-processor worker
//! pools, Netty buffers, observer masters, ensemble auth) stay 0: rzk never does that
//! work, so 0 is the true count (docs/COMPATIBILITY.md, "mntr and metrics").

use super::summary::{Detail, Summary, SummarySet};
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonic count (ZooKeeper's `Counter`).
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

macro_rules! server_metrics {
    (
        counters { $( $(#[doc = $cd:literal])* $c:ident, )* }
        basic { $( $(#[doc = $bd:literal])* $b:ident, )* }
        advanced { $( $(#[doc = $ad:literal])* $a:ident, )* }
        sets { $( $(#[doc = $sd:literal])* $s:ident : $sl:ident, )* }
    ) => {
        /// ZooKeeper's `ServerMetrics`: every counter and summary, by its ZooKeeper name.
        #[derive(Debug)]
        pub struct ServerMetrics {
            $( $(#[doc = $cd])* pub $c: Counter, )*
            $( $(#[doc = $bd])* pub $b: Summary, )*
            $( $(#[doc = $ad])* pub $a: Summary, )*
            $( $(#[doc = $sd])* pub $s: SummarySet, )*
        }

        impl ServerMetrics {
            /// Everything at zero.
            pub fn new() -> ServerMetrics {
                ServerMetrics {
                    $( $c: Counter::default(), )*
                    $( $b: Summary::new(Detail::Basic), )*
                    $( $a: Summary::new(Detail::Advanced), )*
                    $( $s: SummarySet::new(Detail::$sl), )*
                }
            }

            /// (name, counter) in printing order.
            pub fn counters(&self) -> Vec<(&'static str, &Counter)> {
                vec![ $( (stringify!($c), &self.$c), )* ]
            }

            /// (name, summary) in printing order: basic ones, then advanced ones.
            pub fn summaries(&self) -> Vec<(&'static str, &Summary)> {
                vec![ $( (stringify!($b), &self.$b), )* $( (stringify!($a), &self.$a), )* ]
            }

            /// (name, set) in printing order.
            pub fn summary_sets(&self) -> Vec<(&'static str, &SummarySet)> {
                vec![ $( (stringify!($s), &self.$s), )* ]
            }
        }
    };
}

server_metrics! {
    counters {
        /// Proposals the leader sent (one per txn).
        proposal_count,
        /// Watch notification bytes sent to clients.
        watch_bytes,
        /// Outstanding changes the leader's prep dropped once applied.
        outstanding_changes_removed,
        /// 0: rzk has no request throttle.
        throttled_ops,
        /// 0: rzk has no request throttle (no stale-request dropping).
        stale_requests_dropped,
        /// Requests refused for exceeding jute.maxbuffer.
        large_requests_rejected,
        /// AdminServer commands served over plain HTTP.
        insecure_admin_count,
        /// Connections refused by the maxClientCnxns limit.
        connection_rejected,
        /// Connections closed because the server was not serving.
        cnxn_closed_without_zk_server_running,
        /// 0: rzk keeps no session-less connections in an expiry queue.
        sessionless_connections_expired,
        /// Times this server entered LOOKING (started an election).
        looking_count,
        /// 0: rzk removes a closed connection's watches at once (no dead-watcher queue).
        dead_watchers_queued,
        /// 0: rzk has no request throttle.
        stale_requests,
        /// Client connections that ended with the client closing its side (ZooKeeper's
        /// `handleFailedRead`: an end of stream read from the client), and connections
        /// closed because their client stopped reading its watch notifications.
        connection_drop_count,
        /// PROPOSAL packets received from the leader (learners).
        learner_proposal_received_count,
        /// Tree digest mismatches found while applying txns.
        digest_mismatches_count,
        /// 0: rzk has no dead-watcher queue.
        dead_watchers_cleared,
        /// 0: rzk has no serialized-response cache.
        response_packet_cache_hits,
        /// Request bytes received from clients (frames with their length prefix).
        bytes_received_count,
        /// 0: rzk has no dead-watcher queue.
        add_dead_watcher_stall_time,
        /// 0: rzk has no request throttle.
        request_throttle_wait_count,
        /// 0: every request of rzk's pipeline reaches the applier.
        requests_not_forwarded_to_commit_processor,
        /// 0: rzk has no serialized-response cache.
        response_packet_cache_misses,
        /// 0: rzk has no ensemble authentication provider.
        ensemble_auth_success,
        /// Write requests the leader's prep turned into txns.
        prep_processor_request_queued,
        /// COMMIT (or INFORM) packets received from the leader (learners).
        learner_commit_received_count,
        /// 0: rzk has no request throttle.
        stale_replies,
        /// Client connections accepted.
        connection_request_count,
        /// Reply bytes sent to clients (notifications not included).
        response_bytes,
        /// 0: rzk has no ensemble authentication provider.
        ensemble_auth_fail,
        /// Learners synchronised with a DIFF (leader).
        diff_count,
        /// 0: rzk has no serialized-response cache.
        response_packet_get_children_cache_misses,
        /// 0: rzk does not revalidate sessions of moved connections separately.
        connection_revalidate_count,
        /// 0: rzk's leader does not track disloyal voters.
        quit_leading_due_to_disloyal_voter,
        /// Learners synchronised with a full SNAP (leader).
        snap_count,
        /// Fatal errors that stopped the server.
        unrecoverable_error_count,
        /// Failed client TLS handshakes.
        unsuccessful_handshake,
        /// Txns committed by the leader.
        commit_count,
        /// Sessions expired by their timeout.
        stale_sessions_expired,
        /// 0: rzk has no serialized-response cache.
        response_packet_get_children_cache_hits,
        /// Txns handed to the log writer.
        sync_processor_request_queued,
        /// 0: rzk's prep keeps no list of outstanding change records.
        outstanding_changes_queued,
        /// Committed txns queued for the applier (in an ensemble).
        request_commit_queued,
        /// 0: rzk has no ensemble authentication provider.
        ensemble_auth_skip,
        /// 0: rzk's learners always forward requests through the same pipeline.
        skip_learner_request_to_next_processor_count,
        /// 0: rzk does not limit concurrent TLS handshakes.
        tls_handshake_exceeded,
        /// 0: rzk does not revalidate sessions of moved connections separately.
        revalidate_count,
    }
    basic {
        /// ms to close a client socket.
        socket_closing_time,
        /// ms the leader's driver spent preparing and proposing one write.
        proposal_process_time,
        /// ms the leader did not serve before its term began (from LOOKING; ZooKeeper's
        /// `QuorumPeer.setZabState` records it on the leader only).
        leader_unavailable_time,
        /// Watches fired by one NodeCreated event.
        node_created_watch_count,
        /// 0 samples: rzk has no session queues in a commit processor.
        session_queues_drained,
        /// 0 samples: rzk has no commit-processor worker pool.
        write_commit_proc_req_queued,
        /// 0 samples: rzk has no connection token bucket.
        connection_token_deficit,
        /// 0 samples: rzk has no commit-processor worker pool.
        read_commit_proc_req_queued,
        /// Watches fired by one NodeDeleted event.
        node_deleted_watch_count,
        /// ms to replay the txn log at start-up.
        startup_txns_load_time,
        /// Txns waiting for the log writer when it woke.
        sync_processor_queue_size,
        /// ms a follower took to sync with its leader.
        follower_sync_time,
        /// Writes held back from prep (waiting for the tree to catch up) when a client's
        /// write reached the leader's driver.
        prep_processor_queue_size,
        /// ms per txn log fsync.
        fsynctime,
        /// 0 samples: rzk sends at most one snapshot per learner at a time.
        inflight_snap_count,
        /// 0 samples: rzk has no session queues in a commit processor.
        reads_issued_from_session_queue,
        /// 0 samples: rzk's learners forward requests without a queue stage.
        learner_request_processor_queue_size,
        /// ms to write one snapshot.
        snapshottime,
        /// ms this server did not serve (from LOOKING until serving again).
        unavailable_time,
        /// Txns replayed from the log at start-up.
        startup_txns_loaded,
        /// 0 samples: rzk has no session queues in a commit processor.
        reads_after_write_in_session_queue,
        /// 0 samples: rzk has no session queues in a commit processor.
        requests_in_session_queue,
        /// 0 samples: rzk has no commit-processor worker pool.
        write_commit_proc_issued,
        /// ms to prepare one write request into a txn (leader).
        prep_process_time,
        /// 0 samples: rzk has no session queues in a commit processor.
        pending_session_queue_size,
        /// 0 samples: rzk has no commit-processor worker pool.
        time_waiting_empty_pool_in_commit_processor_read_ms,
        /// ms to apply one committed txn to the tree (in an ensemble).
        commit_process_time,
        /// ms to load the database at start-up (snapshot and log).
        dbinittime,
        /// 0 samples: rzk sends at most one DIFF per learner at a time.
        inflight_diff_count,
        /// 0 samples: rzk does not use Netty.
        netty_queued_buffer_capacity,
        /// ms from LOOKING to a decided role (voters: an observer does not elect).
        election_time,
        /// 0 samples: rzk has no commit-processor worker pool.
        commit_commit_proc_req_queued,
        /// Txns written per fsync (group commit size).
        sync_processor_batch_size,
        /// Watches fired by one NodeChildrenChanged event.
        node_children_watch_count,
        /// 0 samples: rzk has no commit-processor worker pool.
        write_batch_time_in_commit_processor,
        /// 0 samples: rzk has no commit-processor worker pool.
        read_commit_proc_issued,
        /// 0 samples: rzk has no commit-processor worker pool.
        concurrent_request_processing_in_commit_processor,
        /// ms an observer took to sync with its leader.
        observer_sync_time,
        /// Watches fired by one NodeDataChanged event.
        node_changed_watch_count,
        /// ms to write and fsync one group of txns.
        sync_process_time,
        /// ms to load the newest snapshot at start-up.
        startup_snap_load_time,
    }
    advanced {
        /// ms from a connection reading a write to the leader's driver taking it (local
        /// clients).
        prep_processor_queue_time_ms,
        /// ms this process was paused: how late a 500 ms sleep of a monitor thread woke
        /// (ZooKeeper's JvmPauseMonitor measures its JVM the same way).
        jvm_pause_time_ms,
        /// ms to prepare a closeSession (leader).
        close_session_prep_time,
        /// 0 samples: rzk answers reads outside the commit path.
        read_commitproc_time_ms,
        /// ms from receiving a write request to sending its reply.
        updatelatency,
        /// ms from a local write's commit to its reply (in an ensemble; every write on
        /// the leader).
        local_write_committed_time_ms,
        /// 0 samples: rzk has no request throttle.
        request_throttle_queue_time_ms,
        /// ms from receiving a read request (or ping) to sending its reply.
        readlatency,
        /// ms from a txn's time to a quorum of ACKs (leader).
        quorum_ack_latency,
        /// 0 samples: rzk has no observer masters.
        om_commit_process_time_ms,
        /// 0 samples: rzk answers reads outside the commit path.
        read_final_proc_time_ms,
        /// ms from a txn's time to its COMMIT or INFORM received (learners).
        commit_propagation_latency,
        /// 0 samples: rzk has no dead-watcher queue.
        dead_watchers_cleaner_latency,
        /// ms to apply one committed txn and queue its reply (in an ensemble).
        write_final_proc_time_ms,
        /// ms from a txn's time to its ACK, once logged (leader and followers).
        proposal_ack_creation_latency,
        /// ms from a txn's time to its PROPOSAL received (followers).
        proposal_latency,
        /// 0 samples: rzk has no observer masters.
        om_proposal_process_time_ms,
        /// ms from a txn reaching the log writer to its fsync.
        sync_processor_queue_and_flush_time_ms,
        /// ms from a txn's time to applying it (every server; the txn's time is the
        /// preparing leader's wall clock, so it includes clock skew between hosts).
        propagation_latency,
        /// ms from a commit to applying a txn written through another server
        /// (learners).
        server_write_committed_time_ms,
        /// 0 samples: rzk does not record each txn's wait before the log writer.
        sync_processor_queue_time_ms,
        /// ms to fsync one group of txns.
        sync_processor_queue_flush_time_ms,
        /// ms a write spent between commit and being applied.
        write_commitproc_time_ms,
    }
    sets {
        /// Bytes written per top-level namespace (path length + data length).
        write_per_namespace: Basic,
        /// Bytes read per top-level namespace (path length + data length + 68).
        read_per_namespace: Basic,
        /// Packets queued to each learner when one is sent (leader).
        learner_handler_qp_size: Basic,
        /// ms each packet to a learner waited in its queue (leader).
        learner_handler_qp_time_ms: Advanced,
    }
}

impl Default for ServerMetrics {
    fn default() -> Self {
        ServerMetrics::new()
    }
}

impl ServerMetrics {
    /// Zeroes every counter and summary (`srst`, as ZooKeeper's `resetAll`).
    pub fn reset(&self) {
        for (_, c) in self.counters() {
            c.reset();
        }
        for (_, s) in self.summaries() {
            s.reset();
        }
        for (_, s) in self.summary_sets() {
            s.reset();
        }
    }
}

/// The top-level namespace of `path` (`app` of `/app/x`); None for `/`.
pub fn top_namespace(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    // A byte scan: namespaces are short, and `split` / `find` set up a `memchr` search
    // per call (~380 instructions per read in callgrind, against ~30 for this loop).
    let end = rest.bytes().position(|b| b == b'/').unwrap_or(rest.len());
    let ns = &rest[..end];
    (!ns.is_empty()).then_some(ns)
}

/// Records a write of `bytes` data bytes at `path` (ZooKeeper's `updateWriteStat`).
#[inline]
pub fn write_stat(m: &ServerMetrics, path: &str, bytes: usize) {
    if let Some(ns) = top_namespace(path) {
        m.write_per_namespace.add(ns, (path.len() + bytes) as i64);
    }
}

/// Records a read of `bytes` data bytes at `path` (ZooKeeper's `updateReadStat`: a
/// stat's 68 bytes included).
#[inline]
pub fn read_stat(m: &ServerMetrics, path: &str, bytes: usize) {
    if let Some(ns) = top_namespace(path) {
        m.read_per_namespace
            .add(ns, (path.len() + bytes + 68) as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_reset_clears() {
        let m = ServerMetrics::new();
        let mut names: Vec<&str> = m.counters().iter().map(|(n, _)| *n).collect();
        names.extend(m.summaries().iter().map(|(n, _)| *n));
        names.extend(m.summary_sets().iter().map(|(n, _)| *n));
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
        m.commit_count.inc();
        m.fsynctime.add(3);
        write_stat(&m, "/app/x", 5);
        assert_eq!(m.commit_count.get(), 1);
        m.reset();
        assert_eq!(m.commit_count.get(), 0);
        assert_eq!(m.fsynctime.snapshot().count, 0);
    }

    #[test]
    fn namespaces() {
        assert_eq!(top_namespace("/app/x/y"), Some("app"));
        assert_eq!(top_namespace("/app"), Some("app"));
        assert_eq!(top_namespace("/"), None);
        assert_eq!(top_namespace(""), None);
    }
}
