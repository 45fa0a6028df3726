//! Text renderings of server state in ZooKeeper's four-letter-word formats.
//!
//! Owns only formatting; reads shared state under short-lived locks and never mutates it.

use crate::admin::data::{self, ConnInfo};
use crate::node::status::Status;
use std::fmt::Write as _;

/// `srvr` (and `stat` with `clients = true`).
pub fn server_stats(status: Status<'_>, clients: bool) -> String {
    let mut s = String::new();
    if !status.is_serving() {
        return format!("{}\n", super::NOT_SERVING);
    }
    let d = data::server_summary(status);
    let _ = writeln!(s, "Zookeeper version: {}", d.version);
    if status.is_read_only() {
        s.push_str("READ-ONLY mode; serving only read-only clients\n");
    }
    if clients {
        s.push_str("Clients:\n");
        for c in data::connections(status) {
            s.push_str(&conn_line(&c, true));
            s.push('\n');
        }
        s.push('\n');
    }
    let (min, avg, max) = d.latency;
    let _ = writeln!(s, "Latency min/avg/max: {min}/{}/{max}", java_double(avg));
    let _ = writeln!(s, "Received: {}", d.packets_received);
    let _ = writeln!(s, "Sent: {}", d.packets_sent);
    let _ = writeln!(s, "Connections: {}", d.alive_connections);
    let _ = writeln!(s, "Outstanding: {}", d.outstanding);
    let _ = writeln!(s, "Zxid: 0x{:x}", d.last_zxid.0);
    let _ = writeln!(s, "Mode: {}", d.mode);
    let _ = writeln!(s, "Node count: {}", d.node_count);
    if d.mode == "leader" {
        let (last, min, max) = crate::metrics::hooks::PROPOSAL_SIZES.get();
        let _ = writeln!(s, "Proposal sizes last/min/max: {last}/{min}/{max}");
    }
    s
}

/// Java's `Double.toString` for the values we print (always has a fractional part).
pub fn java_double(v: f64) -> String {
    crate::admin::number::java_double(v)
}

/// One connection as ZooKeeper's `dumpConnectionInfo` prints it.
fn conn_line(c: &ConnInfo, brief: bool) -> String {
    let mut s = format!(
        " /{}[{}](queued={},recved={},sent={}",
        c.addr, c.interest_ops, c.queued, c.received, c.sent
    );
    if let (false, Some(d)) = (brief, &c.session) {
        let _ = write!(
            s,
            ",sid=0x{:x},lop={},est={},to={}",
            d.id, d.last_op, d.established_ms, d.timeout_ms
        );
        if d.last_cxid >= 0 {
            let _ = write!(s, ",lcxid=0x{:x}", d.last_cxid);
        }
        let _ = write!(
            s,
            ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
            d.last_zxid.0,
            d.last_response_ms,
            d.last_latency_ms,
            d.min_latency_ms,
            d.avg_latency_ms,
            d.max_latency_ms
        );
    }
    s.push(')');
    s
}

/// `cons`.
pub fn cons(status: Status<'_>) -> String {
    let mut s = String::new();
    for c in data::connections(status) {
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
    for (k, v) in status.summary_lines() {
        let _ = writeln!(s, "{k}={}", crate::config::keys::shown(&k, &v));
    }
    // A quorum member ends with its membership, as ZooKeeper's
    // QuorumZooKeeperServer.dumpConf (no newline after the version): the membership in
    // force, which /zookeeper/config holds once a reconfig changed it (the files read at
    // start-up no longer say it).
    if let Some(m) = status.config().membership_text() {
        let in_force = String::from_utf8(status.tree().config_node_data().to_vec())
            .ok()
            .filter(|t| !t.is_empty());
        s.push_str("membership: \n");
        s.push_str(in_force.as_deref().unwrap_or(&m));
    }
    s
}

/// `dirs`.
pub fn dirs(status: Status<'_>) -> String {
    let (data_size, log_size) = data::dir_sizes(status);
    format!("datadir_size: {data_size}\nlogdir_size: {log_size}\n")
}

/// `envi`.
pub fn envi() -> String {
    let mut s = String::from("Environment:\n");
    for (k, v) in data::environment() {
        let _ = writeln!(s, "{k}={v}");
    }
    s
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
/// A bucketed session tracker as ZooKeeper's `SessionTrackerImpl.dumpSessions` prints it.
fn session_sets(s: &mut String, status: Status<'_>, buckets: &[(i64, Vec<rzk_proto::SessionId>)]) {
    let n_sessions: usize = buckets.iter().map(|(_, ids)| ids.len()).sum();
    let _ = writeln!(s, "Session Sets ({})/({}):", buckets.len(), n_sessions);
    for (at, ids) in buckets {
        let _ = writeln!(
            s,
            "{} expire at {}:",
            ids.len(),
            java_date(status.to_wall_ms(*at))
        );
        for id in ids {
            let _ = writeln!(s, "\t0x{id:x}");
        }
    }
}

pub fn dump(status: Status<'_>) -> String {
    let d = data::dump(status);
    let mut s = String::from("SessionTracker dump:\n");
    // ZooKeeper's session trackers: a learner (and a read-only server) keeps its local
    // sessions in buckets and the global ones as ids with timeouts; the leader (and a
    // standalone server) keeps buckets, the local ones first when local sessions are on.
    // (ZooKeeper keeps a local tracker only with local sessions on in an ensemble; its
    // read-only server without one lists the read-only sessions as global ones.)
    let learner = matches!(status.mode(), "follower" | "observer" | "read-only");
    let cfg = status.config();
    let local = cfg.local_sessions_enabled && cfg.is_distributed();
    if local {
        s.push_str("Local ");
        session_sets(&mut s, status, &status.local_session_buckets());
    }
    if learner {
        let global = status.session_timeouts(!local && status.mode() == "read-only");
        let _ = writeln!(s, "Global Sessions({}):", global.len());
        for (id, timeout) in global {
            let _ = writeln!(s, "0x{id:x}\t{timeout}ms");
        }
    } else {
        if local {
            s.push_str("Global ");
        }
        session_sets(&mut s, status, &d.expiry_buckets);
    }
    s.push_str("ephemeral nodes dump:\n");
    let _ = writeln!(s, "Sessions with Ephemerals ({}):", d.ephemerals.len());
    for (id, paths) in d.ephemerals {
        let _ = writeln!(s, "0x{id:x}:");
        for p in paths {
            let _ = writeln!(s, "\t{p}");
        }
    }
    s.push_str("Connections dump:\n");
    let conns = data::connections(status);
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
            c.session.map(|d| d.id).unwrap_or_default()
        );
    }
    s
}

/// `wchs`.
pub fn wchs(status: Status<'_>) -> String {
    let (conns, paths, total) = status.watch_summary();
    format!("{conns} connections watching {paths} paths\nTotal watches:{total}\n")
}

/// `wchc`: by session.
pub fn wchc(status: Status<'_>) -> String {
    let mut s = String::new();
    for (sid, paths) in data::watches_by_session(status) {
        let _ = writeln!(s, "0x{sid:x}");
        for p in paths {
            let _ = writeln!(s, "\t{p}");
        }
    }
    // ZooKeeper ends the dump with an empty line (just "\n" when nothing is watched).
    s.push('\n');
    s
}

/// `wchp`: by path.
pub fn wchp(status: Status<'_>) -> String {
    let mut s = String::new();
    for (path, sids) in data::watchers_by_path(status) {
        let _ = writeln!(s, "{path}");
        for sid in sids {
            let _ = writeln!(s, "\t0x{sid:x}");
        }
    }
    // ZooKeeper ends the dump with an empty line (just "\n" when nothing is watched).
    s.push('\n');
    s
}

/// `hash`: the current tree digest at the last zxid.
pub fn hash(status: Status<'_>) -> String {
    let (zxid, digest) = data::digest(status);
    format!("{:x}: {digest}\n", zxid.0)
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
