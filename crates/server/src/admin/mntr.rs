//! The data behind `mntr` (and the AdminServer's `monitor` command): ordered key/value
//! pairs, ZooKeeper's `MonitorCommand` output before any formatting.
//!
//! Keys are printed without the `zk_` prefix here; the four-letter word adds it, the
//! JSON `monitor` command does not (as ZooKeeper). The Prometheus endpoint exports the
//! same numbers under the same names (crate::metrics::prometheus).

use crate::admin::full_version;
use crate::config::{dir_size, PeerRole};
use crate::metrics::summary::{Detail, Snapshot, MNTR_QUANTILES};
use crate::metrics::{self, hooks, ServerMetrics};
use crate::node::status::Status;
use std::sync::atomic::Ordering;

/// One `mntr` value: ZooKeeper prints longs, doubles and strings.
#[derive(Debug, Clone, PartialEq)]
pub enum MntrValue {
    /// A Java long.
    Int(i64),
    /// A Java double (printed with `Double.toString`).
    Float(f64),
    /// A string (version, server_state).
    Str(String),
}

impl std::fmt::Display for MntrValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MntrValue::Int(v) => write!(f, "{v}"),
            MntrValue::Float(v) => f.write_str(&crate::admin::format::java_double(*v)),
            MntrValue::Str(s) => f.write_str(s),
        }
    }
}

impl From<i64> for MntrValue {
    fn from(v: i64) -> Self {
        MntrValue::Int(v)
    }
}

impl From<u64> for MntrValue {
    fn from(v: u64) -> Self {
        MntrValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<usize> for MntrValue {
    fn from(v: usize) -> Self {
        MntrValue::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<f64> for MntrValue {
    fn from(v: f64) -> Self {
        MntrValue::Float(v)
    }
}

impl From<String> for MntrValue {
    fn from(v: String) -> Self {
        MntrValue::Str(v)
    }
}

impl From<&str> for MntrValue {
    fn from(v: &str) -> Self {
        MntrValue::Str(v.to_owned())
    }
}

/// Ordered `mntr` rows, keys without the `zk_` prefix.
#[derive(Debug, Default, Clone)]
pub struct MntrRows(pub Vec<(String, MntrValue)>);

impl MntrRows {
    /// Appends one row.
    pub fn push(&mut self, key: impl Into<String>, value: impl Into<MntrValue>) {
        self.0.push((key.into(), value.into()));
    }
}

/// Open file descriptors of this process (ZooKeeper reads the JVM's
/// `UnixOperatingSystemMXBean`); -1 when /proc is unavailable.
pub fn open_fds() -> i64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as i64)
        .unwrap_or(-1)
}

/// The soft limit on open files; -1 when unknown.
pub fn max_fds() -> i64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(-1)
}

/// ZooKeeper's `MonitorCommand` data: every row `mntr` prints, in order: the server's
/// state ([`status_rows`]), then the metrics registry ([`metric_rows`]).
pub fn mntr_rows(status: Status<'_>) -> MntrRows {
    let mut r = status_rows(status);
    if !metrics::enabled() {
        // ZooKeeper's NullMetricsProvider: its server registers every other row with the
        // provider, which dumps nothing; version and server_state remain.
        r.0.truncate(2);
        return r;
    }
    metric_rows(metrics::metrics(), &mut r);
    quota_rows(status, &mut r);
    r
}

/// ZooKeeper's quota gauge sets (`QuotaMetricsUtils`), one row per namespace with a
/// quota: `<ns>_quota_{count,bytes}_{limit,usage}_per_namespace`.
fn quota_rows(status: Status<'_>, r: &mut MntrRows) {
    let usage = status.tree().quota_usage_by_namespace();
    for (ns, u) in usage {
        r.push(
            format!("{ns}_quota_count_limit_per_namespace"),
            u.count_limit,
        );
        r.push(
            format!("{ns}_quota_bytes_limit_per_namespace"),
            u.bytes_limit,
        );
        r.push(
            format!("{ns}_quota_count_usage_per_namespace"),
            u.count_usage,
        );
        r.push(
            format!("{ns}_quota_bytes_usage_per_namespace"),
            u.bytes_usage,
        );
    }
    for (ns, n) in crate::prep::quota_exceeded_counts() {
        r.push(format!("{ns}_quota_exceeded_error_per_namespace"), n as i64);
    }
}

/// The server's state as `mntr` reports it before the registry: ZooKeeper's
/// `ServerStats` and the gauges its server and quorum peer register (their Prometheus
/// names are these keys, apart from the two strings).
pub fn status_rows(status: Status<'_>) -> MntrRows {
    let (min, avg, max) = status.stats().latency();
    let (nodes, ephemerals, data_size, zxid) = {
        let t = status.tree();
        (
            t.node_count(),
            t.ephemerals_count(),
            t.approximate_data_size(),
            t.last_zxid(),
        )
    };
    // mntr counts both tables (wchs lists only the data table, as ZooKeeper does).
    let total_watches = status.watch_count();
    let sessions = status.session_count();
    let st = status.stats();
    let (last_resp, min_resp, max_resp) = metrics::response_sizes().get();
    let mut r = MntrRows::default();
    r.push("version", full_version());
    r.push("server_state", status.mode());
    r.push("avg_latency", avg);
    r.push("max_latency", max);
    r.push("min_latency", min);
    r.push(
        "packets_received",
        st.packets_received.load(Ordering::Relaxed),
    );
    r.push("packets_sent", st.packets_sent.load(Ordering::Relaxed));
    r.push("num_alive_connections", status.connections().len());
    r.push(
        "outstanding_requests",
        st.outstanding.load(Ordering::Relaxed).max(0),
    );
    r.push("uptime", status.uptime_ms());
    r.push("znode_count", nodes);
    r.push("watch_count", total_watches);
    r.push("ephemerals_count", ephemerals);
    r.push("approximate_data_size", data_size as i64);
    r.push("global_sessions", sessions);
    r.push("local_sessions", status.local_session_count());
    r.push("open_file_descriptor_count", open_fds());
    r.push("max_file_descriptor_count", max_fds());
    r.push("connection_drop_probability", 0.0f64);
    r.push("last_client_response_size", last_resp);
    r.push("max_client_response_size", max_resp);
    r.push("min_client_response_size", min_resp);
    r.push(
        "outstanding_tls_handshake",
        metrics::tls_handshakes_in_flight(),
    );
    r.push("auth_failed_count", st.auth_failed.load(Ordering::Relaxed));
    r.push("non_mtls_remote_conn_count", 0i64);
    r.push("non_mtls_local_conn_count", 0i64);
    r.push("last_processed_zxid", zxid.0);
    // rzk's own: the longest write pause of a background snapshot (its tree clone), the
    // size of the last snapshot written, the sizes of the data and log directories (as
    // `dirs` reports them).
    r.push(
        "rzk_snapshot_pause_max_us",
        st.snapshot_pause_max_us.load(Ordering::Relaxed),
    );
    r.push("rzk_last_snapshot_size", hooks::last_snapshot_bytes());
    r.push("rzk_datadir_size", dir_size(&status.config().data_dir));
    r.push("rzk_logdir_size", dir_size(&status.config().data_log_dir));
    role_rows(status, &mut r);
    r
}

/// `quorum_size`: the voters in force, which a reconfig changes (ZooKeeper's
/// `getQuorumVerifier().getVotingMembers().size()`).
pub(crate) fn quorum_size(status: Status<'_>) -> usize {
    status
        .members()
        .values()
        .filter(|s| s.role == PeerRole::Participant)
        .count()
}

/// The rows of an ensemble member's role (ZooKeeper's `QuorumPeer`, `Leader` and
/// `Observer` gauges); none for a standalone server, nor in read-only mode (ZooKeeper's
/// read-only server is no quorum server and registers none of them).
fn role_rows(status: Status<'_>, r: &mut MntrRows) {
    let mode = status.mode();
    if mode == "standalone" || mode == "read-only" {
        return;
    }
    let phase = match (mode, status.is_serving()) {
        ("looking" | "read-only", _) => "election",
        (_, true) => "broadcast",
        (_, false) => "synchronization",
    };
    let state = match mode {
        "leader" => "leading",
        "follower" => "following",
        "observer" => "observing",
        _ => "looking",
    };
    r.push("peer_state", format!("{state} - {phase}"));
    r.push("quorum_size", quorum_size(status));
    match mode {
        "leader" => {
            let (followers, synced, observers) = status.learners();
            let (last, min, max) = hooks::PROPOSAL_SIZES.get();
            r.push("learners", followers + observers);
            r.push("synced_followers", synced);
            r.push("synced_non_voting_followers", status.synced_non_voting());
            r.push("synced_observers", observers);
            r.push("pending_syncs", hooks::pending_syncs());
            r.push("leader_uptime", hooks::leader_uptime_ms());
            r.push("last_proposal_size", last);
            r.push("min_proposal_size", min);
            r.push("max_proposal_size", max);
        }
        "observer" => {
            // The learner master: the leader, or a follower's observer master port.
            r.push("observer_master_id", status.leader().map_or(-1, |l| l.0));
        }
        "follower" if observer_master_enabled(status) => {
            // ZooKeeper's FollowerZooKeeperServer gauge: observers synced through this
            // follower's observer master (null, not printed, without observerMasterPort).
            let (_, _, observers) = status.learners();
            r.push("synced_observers", observers);
        }
        _ => {}
    }
}

/// Is `observerMasterPort` set to a port (followers then run an observer master)?
fn observer_master_enabled(status: Status<'_>) -> bool {
    status
        .config()
        .unknown
        .get("observerMasterPort")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .is_some_and(|p| p > 0)
}

/// Appends the registry as ZooKeeper's default provider prints it: counters by name,
/// then each summary as `avg_`/`min_`/`max_`/`cnt_`/`sum_` (and `p50_`/`p95_`/`p99_`/
/// `p999_` when advanced) prefixes of its name, a set's members as `<prefix>_<key>_<name>`.
pub fn metric_rows(m: &ServerMetrics, r: &mut MntrRows) {
    for (name, c) in m.counters() {
        r.push(name, c.get());
    }
    for (name, s) in m.summaries() {
        summary_rows(r, name, s.detail(), &s.snapshot());
    }
    for (name, set) in m.summary_sets() {
        for (key, snap) in set.snapshot() {
            summary_rows(r, &format!("{key}_{name}"), set.detail(), &snap);
        }
    }
    for (op, n) in metrics::ops::seen() {
        r.push(format!("{op}_rzk_requests"), n);
    }
}

fn summary_rows(r: &mut MntrRows, name: &str, detail: Detail, s: &Snapshot) {
    r.push(format!("avg_{name}"), s.avg());
    r.push(format!("min_{name}"), s.min);
    r.push(format!("max_{name}"), s.max);
    r.push(format!("cnt_{name}"), s.count);
    r.push(format!("sum_{name}"), s.sum);
    if detail == Detail::Advanced {
        for (prefix, q) in MNTR_QUANTILES {
            r.push(format!("{prefix}_{name}"), s.quantile(q).round() as i64);
        }
    }
}
