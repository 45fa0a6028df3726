//! What the admin commands report, as values: the one place where server state is read
//! for them. The four-letter words (`format.rs`) render these as ZooKeeper's text, the
//! AdminServer (`commands.rs`) as ZooKeeper's JSON, so both always agree.
//!
//! Reads shared state through [`Status`] under short-lived locks; never mutates it.

use crate::admin::full_version;
use crate::config::dir_size;
use crate::node::clients::ConnEntry;
use crate::node::status::Status;
use rzk_proto::{SessionId, Zxid};
use std::sync::atomic::Ordering;

/// ZooKeeper's `ServerStats` as `srvr`/`stat`/`server_stats` report it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSummary {
    /// `Zookeeper version:` / `version`.
    pub version: String,
    /// Latency of answered requests in ms: (min, avg, max).
    pub latency: (u64, f64, u64),
    pub packets_received: u64,
    pub packets_sent: u64,
    /// Connections with a session (`Connections:` / `num_alive_client_connections`).
    pub alive_connections: usize,
    pub outstanding: i64,
    pub last_zxid: Zxid,
    /// `standalone`, `leader`, `follower`, `observer`, `looking`.
    pub mode: &'static str,
    pub node_count: usize,
    pub auth_failed: u64,
    pub uptime_ms: i64,
}

/// The server counters and tree size, copied out.
pub fn server_summary(status: Status<'_>) -> ServerSummary {
    let st = status.stats();
    let (last_zxid, node_count) = {
        let t = status.tree();
        (t.last_zxid(), t.node_count())
    };
    ServerSummary {
        version: full_version(),
        latency: st.latency(),
        packets_received: st.packets_received.load(Ordering::Relaxed),
        packets_sent: st.packets_sent.load(Ordering::Relaxed),
        alive_connections: status.connections().len(),
        outstanding: st.outstanding.load(Ordering::Relaxed).max(0),
        last_zxid,
        mode: status.mode(),
        node_count,
        auth_failed: st.auth_failed.load(Ordering::Relaxed),
        uptime_ms: status.uptime_ms(),
    }
}

/// One connection as ZooKeeper's `ServerCnxn.getConnectionInfo` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnInfo {
    pub addr: std::net::SocketAddr,
    pub queued: u64,
    pub received: u64,
    pub sent: u64,
    /// Java NIO interest ops as ZooKeeper reports them: 1 (waiting to read), 0 for a
    /// connection answering a four-letter word.
    pub interest_ops: u8,
    /// Accepted on the TLS-only port (`secureClientPort`).
    pub secure: bool,
    /// The rest is only known once a session is bound.
    pub session: Option<SessionDetails>,
}

/// The per-session part of [`ConnInfo`].
#[derive(Debug, Clone, PartialEq)]
pub struct SessionDetails {
    pub id: SessionId,
    pub last_op: &'static str,
    pub established_ms: i64,
    pub timeout_ms: i32,
    /// -1 until the first request with a cxid.
    pub last_cxid: i64,
    pub last_zxid: Zxid,
    pub last_response_ms: i64,
    pub last_latency_ms: u64,
    pub min_latency_ms: u64,
    pub avg_latency_ms: u64,
    pub max_latency_ms: u64,
}

/// [`ConnInfo`] of one registry entry.
pub fn conn_info(c: &ConnEntry) -> ConnInfo {
    let st = &c.stats;
    let session = c.session.map(|id| {
        let n = st.count.load(Ordering::Relaxed);
        let min = st.min_latency_ms.load(Ordering::Relaxed);
        SessionDetails {
            id,
            last_op: st.last_op_name(),
            established_ms: c.established_ms,
            timeout_ms: c.session_timeout_ms,
            last_cxid: st.last_cxid.load(Ordering::Relaxed),
            last_zxid: Zxid(st.last_zxid.load(Ordering::Relaxed)),
            last_response_ms: st.last_response_ms.load(Ordering::Relaxed),
            last_latency_ms: st.last_latency_ms.load(Ordering::Relaxed),
            min_latency_ms: if min == u64::MAX { 0 } else { min },
            avg_latency_ms: st
                .total_latency_ms
                .load(Ordering::Relaxed)
                .checked_div(n)
                .unwrap_or(0),
            max_latency_ms: st.max_latency_ms.load(Ordering::Relaxed),
        }
    });
    ConnInfo {
        addr: c.addr,
        queued: st.queued.load(Ordering::Relaxed),
        received: st.received.load(Ordering::Relaxed),
        sent: st.sent.load(Ordering::Relaxed),
        interest_ops: u8::from(!st.four_letter_word.load(Ordering::Relaxed)),
        secure: c.secure,
        session,
    }
}

/// Every live connection, in the order they were accepted.
pub fn connections(status: Status<'_>) -> Vec<ConnInfo> {
    status.connections().iter().map(conn_info).collect()
}

/// (data directory size, log directory size) in bytes, as `dirs` reports them.
pub fn dir_sizes(status: Status<'_>) -> (u64, u64) {
    (
        dir_size(&status.config().data_dir),
        dir_size(&status.config().data_log_dir),
    )
}

/// `envi`/`environment`: ZooKeeper's `Environment.list()` keys with this process's values.
pub fn environment() -> Vec<(&'static str, String)> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let (user, home) = java_user();
    let tmp = std::env::temp_dir().display().to_string();
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let (free, total) = meminfo_kib();
    vec![
        ("zookeeper.version", full_version()),
        ("host.name", host),
        ("java.version", "none (rzk is not a JVM program)".into()),
        ("java.vendor", "rzk".into()),
        ("java.home", String::new()),
        ("java.class.path", exe),
        ("java.library.path", String::new()),
        ("java.io.tmpdir", tmp),
        ("java.compiler", "<NA>".into()),
        ("os.name", java_os_name().into()),
        ("os.arch", java_os_arch().into()),
        ("os.version", os_release()),
        ("user.name", user),
        ("user.home", home),
        ("user.dir", cwd),
        ("os.memory.free", format!("{}MB", free / 1024)),
        ("os.memory.max", format!("{}MB", total / 1024)),
        ("os.memory.total", format!("{}MB", total / 1024)),
    ]
}

/// Java's `user.name` and `user.home`: the password database entry of the process's
/// uid (not the environment); `$USER` / `$HOME` only when `/etc/passwd` has none.
pub fn java_user() -> (String, String) {
    let entry = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|t| passwd_entry(&t, rustix::process::getuid().as_raw()));
    entry.unwrap_or_else(|| {
        (
            std::env::var("USER").unwrap_or_else(|_| "?".into()),
            std::env::var("HOME").unwrap_or_default(),
        )
    })
}

/// The name and home directory of `uid` in `/etc/passwd` text (`name:pw:uid:gid:gecos:home:shell`).
fn passwd_entry(text: &str, uid: u32) -> Option<(String, String)> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid))
            .then(|| (f[0].to_owned(), f[5].to_owned()))
    })
}

/// Java's `os.name` for this platform (`Linux`, not Rust's `linux`).
fn java_os_name() -> &'static str {
    match std::env::consts::OS {
        "linux" => "Linux",
        "macos" => "Mac OS X",
        "freebsd" => "FreeBSD",
        other => other,
    }
}

/// Java's `os.arch` for this platform (`amd64` for x86_64).
fn java_os_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        other => other,
    }
}

/// The kernel release (`os.version`).
pub fn os_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// (MemAvailable, MemTotal) in KiB from /proc/meminfo (0 when unavailable).
fn meminfo_kib() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let get = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (get("MemAvailable:"), get("MemTotal:"))
}

/// `dump`'s data: session expiry buckets and ephemeral nodes by session.
#[derive(Debug, Clone, PartialEq)]
pub struct Dump {
    /// (monotonic ms since start the bucket expires at, its sessions).
    pub expiry_buckets: Vec<(i64, Vec<SessionId>)>,
    /// (owner session, its ephemeral paths), by session id.
    pub ephemerals: Vec<(SessionId, Vec<String>)>,
}

/// The session tracker's buckets and the tree's ephemeral index, copied out.
pub fn dump(status: Status<'_>) -> Dump {
    let expiry_buckets = status.session_buckets();
    let ephemerals = {
        let t = status.tree();
        let mut sess = t.ephemeral_sessions();
        sess.sort_unstable();
        sess.into_iter().map(|id| (id, t.ephemerals(id))).collect()
    };
    Dump {
        expiry_buckets,
        ephemerals,
    }
}

/// Data watches by watching session (`wchc`/`watches`); a connection without a session
/// is listed as session 0.
pub fn watches_by_session(status: Status<'_>) -> Vec<(SessionId, Vec<String>)> {
    let by_conn = status.watches_by_conn();
    let map = status.session_by_conn();
    by_conn
        .into_iter()
        .map(|(conn, paths)| (map.get(&conn).copied().unwrap_or_default(), paths))
        .collect()
}

/// Watching sessions by path (`wchp`/`watches_by_path`).
pub fn watchers_by_path(status: Status<'_>) -> Vec<(String, Vec<SessionId>)> {
    let by_path = status.watches_by_path();
    let map = status.session_by_conn();
    by_path
        .into_iter()
        .map(|(path, conns)| {
            let ids = conns
                .into_iter()
                .map(|c| map.get(&c).copied().unwrap_or_default())
                .collect();
            (path, ids)
        })
        .collect()
}

/// (last applied zxid, tree digest at it), as `hash` reports it.
pub fn digest(status: Status<'_>) -> (Zxid, i64) {
    let t = status.tree();
    (t.last_zxid(), t.digest())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_values_as_java_prints_them() {
        let text = "root:x:0:0:root:/root:/bin/bash\nzk:x:107:112::/var/lib/zookeeper:/bin/false\n";
        assert_eq!(
            passwd_entry(text, 107),
            Some(("zk".to_owned(), "/var/lib/zookeeper".to_owned()))
        );
        assert_eq!(passwd_entry(text, 0).map(|e| e.0), Some("root".to_owned()));
        assert_eq!(passwd_entry(text, 5), None);
        assert_eq!(passwd_entry("broken:line\n", 0), None);
        if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            assert_eq!((java_os_name(), java_os_arch()), ("Linux", "amd64"));
        }
    }
}
