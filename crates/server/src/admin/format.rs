//! Text renderings of server state in ZooKeeper's four-letter-word formats.
//!
//! Owns only formatting; reads shared state under short-lived locks and never mutates it.

use crate::admin::full_version;
use crate::config::dir_size;
use crate::node::clients::ConnEntry;
use crate::node::status::Status;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// `srvr` (and `stat` with `clients = true`).
pub fn server_stats(status: Status<'_>, clients: bool) -> String {
    let mut s = String::new();
    if !status.is_serving() {
        return "This ZooKeeper instance is not currently serving requests\n".to_owned();
    }
    let _ = writeln!(s, "Zookeeper version: {}", full_version());
    if clients {
        s.push_str("Clients:\n");
        for c in sorted_conns(status) {
            s.push_str(&conn_line(&c, true));
            s.push('\n');
        }
        s.push('\n');
    }
    let (min, avg, max) = status.stats().latency();
    let _ = writeln!(s, "Latency min/avg/max: {min}/{}/{max}", java_double(avg));
    let _ = writeln!(
        s,
        "Received: {}",
        status.stats().packets_received.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        s,
        "Sent: {}",
        status.stats().packets_sent.load(Ordering::Relaxed)
    );
    let _ = writeln!(s, "Connections: {}", alive_connections(status));
    let _ = writeln!(s, "Outstanding: {}", outstanding(status));
    let (zxid, nodes) = {
        let t = status.tree();
        (t.last_zxid(), t.node_count())
    };
    let _ = writeln!(s, "Zxid: 0x{zxid:x}");
    let _ = writeln!(s, "Mode: {}", server_state(status));
    let _ = writeln!(s, "Node count: {nodes}");
    if status.mode() == "leader" {
        let _ = writeln!(s, "Proposal sizes last/min/max: -1/-1/-1");
    }
    s
}

fn outstanding(status: Status<'_>) -> i64 {
    status.stats().outstanding.load(Ordering::Relaxed).max(0)
}

/// Connections that completed a handshake (ZooKeeper counts sessionful connections).
fn alive_connections(status: Status<'_>) -> usize {
    status.connections().len()
}

fn server_state(status: Status<'_>) -> &'static str {
    status.mode()
}

/// Java's `Double.toString` for the values we print (always has a fractional part).
pub fn java_double(v: f64) -> String {
    crate::admin::number::java_double(v)
}

fn sorted_conns(status: Status<'_>) -> Vec<ConnEntry> {
    status.connections()
}

/// One connection as ZooKeeper's `dumpConnectionInfo` prints it.
fn conn_line(c: &ConnEntry, brief: bool) -> String {
    let st = &c.stats;
    let mut s = format!(
        " /{}[1](queued={},recved={},sent={}",
        c.addr,
        st.queued.load(Ordering::Relaxed),
        st.received.load(Ordering::Relaxed),
        st.sent.load(Ordering::Relaxed)
    );
    if !brief {
        if let Some(sid) = c.session {
            let lop = st.last_op.lock().map(|g| *g).unwrap_or("NA");
            let _ = write!(
                s,
                ",sid=0x{sid:x},lop={lop},est={},to={}",
                c.established_ms, c.session_timeout_ms
            );
            let lcxid = st.last_cxid.load(Ordering::Relaxed);
            if lcxid >= 0 {
                let _ = write!(s, ",lcxid=0x{lcxid:x}");
            }
            let n = st.count.load(Ordering::Relaxed);
            let min = st.min_latency_ms.load(Ordering::Relaxed);
            let avg = st
                .total_latency_ms
                .load(Ordering::Relaxed)
                .checked_div(n)
                .unwrap_or(0);
            let _ = write!(
                s,
                ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={avg},maxlat={}",
                st.last_zxid.load(Ordering::Relaxed),
                st.last_response_ms.load(Ordering::Relaxed),
                st.last_latency_ms.load(Ordering::Relaxed),
                if min == u64::MAX { 0 } else { min },
                st.max_latency_ms.load(Ordering::Relaxed)
            );
        }
    }
    s.push(')');
    s
}

/// `cons`.
pub fn cons(status: Status<'_>) -> String {
    let mut s = String::new();
    for c in sorted_conns(status) {
        s.push_str(&conn_line(&c, false));
        s.push('\n');
    }
    s.push('\n');
    s
}

/// `conf`. The values of secret-named keys (password, secret) are redacted, should one
/// ever be listed.
pub fn conf(status: Status<'_>) -> String {
    let mut s = String::new();
    for (k, v) in status.config().summary_lines() {
        let _ = writeln!(s, "{k}={}", crate::config::keys::shown(&k, &v));
    }
    s
}

/// `dirs`.
pub fn dirs(status: Status<'_>) -> String {
    format!(
        "datadir_size: {}\nlogdir_size: {}\n",
        dir_size(&status.config().data_dir),
        dir_size(&status.config().data_log_dir)
    )
}

/// `envi`.
pub fn envi() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let home = std::env::var("HOME").unwrap_or_default();
    let tmp = std::env::temp_dir().display().to_string();
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let (free, total) = meminfo();
    let entries: Vec<(&str, String)> = vec![
        ("zookeeper.version", full_version()),
        ("host.name", host),
        ("java.version", "none (rzk is not a JVM program)".into()),
        ("java.vendor", "rzk".into()),
        ("java.home", String::new()),
        ("java.class.path", exe),
        ("java.library.path", String::new()),
        ("java.io.tmpdir", tmp),
        ("java.compiler", "<NA>".into()),
        ("os.name", std::env::consts::OS.into()),
        ("os.arch", std::env::consts::ARCH.into()),
        ("os.version", os_release()),
        ("user.name", user),
        ("user.home", home),
        ("user.dir", cwd),
        ("os.memory.free", format!("{}MB", free / 1024)),
        ("os.memory.max", format!("{}MB", total / 1024)),
        ("os.memory.total", format!("{}MB", total / 1024)),
    ];
    let mut s = String::from("Environment:\n");
    for (k, v) in entries {
        let _ = writeln!(s, "{k}={v}");
    }
    s
}

fn os_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// (MemAvailable, MemTotal) in KiB from /proc/meminfo (0 when unavailable).
fn meminfo() -> (u64, u64) {
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

/// `mntr`: tab-separated `zk_<key>\t<value>` lines of [`crate::admin::mntr::mntr_rows`].
pub fn mntr(status: Status<'_>) -> String {
    let mut s = String::new();
    for (k, v) in crate::admin::mntr::mntr_rows(status).0 {
        let _ = writeln!(s, "zk_{k}\t{v}");
    }
    s
}

/// Java's `Date.toString()` in UTC: `EEE MMM dd HH:mm:ss zzz yyyy`.
pub fn java_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    const DOW: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DOW[days.rem_euclid(7) as usize],
        MON[(m - 1) as usize],
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        y
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `dump`: session expiry buckets, ephemerals by session, connections.
pub fn dump(status: Status<'_>) -> String {
    let mut s = String::from("SessionTracker dump:\n");
    let (buckets, n_sessions) = {
        let buckets = status.session_buckets();
        let n: usize = buckets.iter().map(|(_, ids)| ids.len()).sum();
        (buckets, n)
    };
    let _ = writeln!(s, "Session Sets ({})/({}):", buckets.len(), n_sessions);
    for (at, ids) in buckets {
        let _ = writeln!(
            s,
            "{} expire at {}:",
            ids.len(),
            java_date(status.to_wall_ms(at))
        );
        for id in ids {
            let _ = writeln!(s, "\t0x{id:x}");
        }
    }
    s.push_str("ephemeral nodes dump:\n");
    let eph: Vec<(rzk_proto::SessionId, Vec<String>)> = {
        let t = status.tree();
        let mut sess = t.ephemeral_sessions();
        sess.sort_unstable();
        sess.into_iter().map(|id| (id, t.ephemerals(id))).collect()
    };
    let _ = writeln!(s, "Sessions with Ephemerals ({}):", eph.len());
    for (id, paths) in eph {
        let _ = writeln!(s, "0x{id:x}:");
        for p in paths {
            let _ = writeln!(s, "\t{p}");
        }
    }
    s.push_str("Connections dump:\n");
    let conns = sorted_conns(status);
    let _ = writeln!(s, "Connections Sets (1)/({}):", conns.len());
    let _ = writeln!(
        s,
        "{} expire at {}:",
        conns.len(),
        java_date(crate::node::lifecycle::wall_ms())
    );
    for c in conns {
        let _ = writeln!(
            s,
            "\tip: /{} sessionId: 0x{:x}",
            c.addr,
            c.session.unwrap_or_default()
        );
    }
    s
}

/// Session id of each watching connection (connections without one print 0).
fn session_of(status: Status<'_>) -> impl Fn(u64) -> rzk_proto::SessionId {
    let map = status.session_by_conn();
    move |conn| map.get(&conn).copied().unwrap_or_default()
}

/// (connections, paths, total watches).
fn watch_summary(status: Status<'_>) -> (usize, usize, usize) {
    status.watch_summary()
}

/// `wchs`.
pub fn wchs(status: Status<'_>) -> String {
    let (conns, paths, total) = watch_summary(status);
    format!("{conns} connections watching {paths} paths\nTotal watches:{total}\n")
}

/// `wchc`: by session.
pub fn wchc(status: Status<'_>) -> String {
    let by_conn = status.watches_by_conn();
    let sid = session_of(status);
    let mut s = String::new();
    for (conn, paths) in by_conn {
        let _ = writeln!(s, "0x{:x}", sid(conn));
        for p in paths {
            let _ = writeln!(s, "\t{p}");
        }
    }
    s
}

/// `wchp`: by path.
pub fn wchp(status: Status<'_>) -> String {
    let by_path = status.watches_by_path();
    let sid = session_of(status);
    let mut s = String::new();
    for (path, conns) in by_path {
        let _ = writeln!(s, "{path}");
        for c in conns {
            let _ = writeln!(s, "\t0x{:x}", sid(c));
        }
    }
    s
}

/// `hash`: the current tree digest at the last zxid.
pub fn hash(status: Status<'_>) -> String {
    let t = status.tree();
    format!("{:x}: {}\n", t.last_zxid(), t.digest())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_doubles() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_700_000_000_000), "Tue Nov 14 22:13:20 UTC 2023");
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(1.5), "1.5");
    }
}
