//! The data behind `mntr` (and the AdminServer's `monitor` command): ordered key/value
//! pairs, ZooKeeper's `MonitorCommand` output before any formatting.
//!
//! Keys are printed without the `zk_` prefix here; the four-letter word adds it, the
//! JSON `monitor` command does not (as ZooKeeper).

use crate::admin::full_version;
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

/// ZooKeeper's `MonitorCommand` data: every row `mntr` prints, in order.
pub fn mntr_rows(status: Status<'_>) -> MntrRows {
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
    r.push("local_sessions", 0i64);
    r.push("open_file_descriptor_count", open_fds());
    r.push("max_file_descriptor_count", max_fds());
    r.push("connection_drop_probability", 0.0f64);
    r.push("last_client_response_size", -1i64);
    r.push("max_client_response_size", -1i64);
    r.push("min_client_response_size", -1i64);
    r.push("outstanding_tls_handshake", 0i64);
    r.push("auth_failed_count", st.auth_failed.load(Ordering::Relaxed));
    r.push("non_mtls_remote_conn_count", 0i64);
    r.push("non_mtls_local_conn_count", 0i64);
    r.push("last_processed_zxid", zxid);
    r.push("fsync_count", st.fsyncs.load(Ordering::Relaxed));
    r.push("txns_logged", st.txns_logged.load(Ordering::Relaxed));
    // rzk's own: the longest write pause of a background snapshot (its tree clone).
    r.push(
        "rzk_snapshot_pause_max_us",
        st.snapshot_pause_max_us.load(Ordering::Relaxed),
    );
    if status.mode() == "leader" {
        let (followers, synced, observers) = status.learners();
        r.push("learners", followers + observers);
        r.push("synced_followers", synced);
        r.push("synced_non_voting_followers", 0i64);
        r.push("synced_observers", observers);
        r.push("pending_syncs", 0i64);
    }
    r
}
