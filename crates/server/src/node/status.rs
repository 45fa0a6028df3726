//! The status view: what four-letter words (`admin/`) and, later, the admin endpoint
//! and metrics may see of a running server. Read-only answers (copied out under short
//! locks), plus the two counter resets ZooKeeper's `crst` and `srst` perform. It hands
//! out no lock on the tree, sessions or watches that could be written through.

use super::clients::ConnEntry;
use super::shared::Shared;
use super::stats::ServerStats;
use crate::config::{Config, QuorumServer};
use crate::tree::DataTree;
use crate::watch::ConnId;
use rzk_proto::{ServerId, SessionId};
use std::collections::BTreeMap;
use std::sync::RwLockReadGuard;

/// A read-only view of one server, borrowed for the length of one command.
#[derive(Debug, Clone, Copy)]
pub struct Status<'a> {
    shared: &'a Shared,
}

impl<'a> Status<'a> {
    /// The view of `shared`.
    pub fn of(shared: &'a Shared) -> Status<'a> {
        Status { shared }
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &'a Config {
        &self.shared.config
    }

    /// The members in force (participants and observers, by id): those of
    /// `/zookeeper/config` once a reconfig changed them, else those read at start-up
    /// (ZooKeeper's `getQuorumVerifier().getAllMembers()`, which a reconfig replaces).
    /// A text this server cannot read (never one it put in force) gives the start-up
    /// members too.
    pub fn members(&self) -> BTreeMap<ServerId, QuorumServer> {
        let text = self.tree().config_node_data().to_vec();
        std::str::from_utf8(&text)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .and_then(super::driver::parse_membership)
            .map(|m| m.servers)
            .unwrap_or_else(|| self.shared.config.servers.clone())
    }

    /// `conf`'s rows ([`Config::summary_lines`]), with `clientPort` the port listened on
    /// now: the bound one, and a reconfig may have moved it (ZooKeeper's `getClientPort`
    /// asks its connection factory).
    pub fn summary_lines(&self) -> Vec<(String, String)> {
        let mut lines = self.shared.config.summary_lines();
        if let Some(a) = self.shared.client_port.local_addr() {
            for (k, v) in &mut lines {
                if k == "clientPort" {
                    *v = a.port().to_string();
                }
            }
        }
        lines
    }

    /// Server-wide counters (latencies in ms).
    pub fn stats(&self) -> &'a ServerStats {
        &self.shared.stats
    }

    /// ZooKeeper's mode name: `standalone`, `leader`, `follower`, `observer`, ...
    pub fn mode(&self) -> &'static str {
        self.shared.quorum.mode_name()
    }

    /// True while the server answers client requests (read-only mode included, as
    /// ZooKeeper's `ReadOnlyZooKeeperServer` is a running server).
    pub fn is_serving(&self) -> bool {
        self.shared.quorum.is_serving() || self.shared.quorum.is_read_only()
    }

    /// True while the server serves only read-only clients (`crate::readonly`).
    pub fn is_read_only(&self) -> bool {
        self.shared.quorum.is_read_only()
    }

    /// Number of local sessions (`localSessionsEnabled`, read-only mode).
    pub fn local_session_count(&self) -> usize {
        self.shared.local_sessions().len()
    }

    /// The leader's id, when this member knows one.
    pub fn leader(&self) -> Option<rzk_proto::ServerId> {
        self.shared.quorum.leader()
    }

    /// Leader only: (followers, synced followers, observers).
    pub fn learners(&self) -> (usize, usize, usize) {
        self.shared.quorum.learners()
    }

    /// Leader: synced followers outside the voters (`mntr`'s
    /// `synced_non_voting_followers`).
    pub fn synced_non_voting(&self) -> usize {
        self.shared.quorum.synced_non_voting()
    }

    /// The tree, read-locked: keep the guard short (writes wait for it).
    pub fn tree(&self) -> RwLockReadGuard<'a, DataTree> {
        self.shared.tree()
    }

    /// Live connections, in the order they were accepted.
    pub fn connections(&self) -> Vec<ConnEntry> {
        let reg = self.shared.clients.registry();
        let mut v: Vec<(ConnId, ConnEntry)> =
            reg.conns.iter().map(|(k, c)| (*k, c.clone())).collect();
        v.sort_by_key(|(k, _)| *k);
        v.into_iter().map(|(_, c)| c).collect()
    }

    /// The session bound to each connection (absent: none yet).
    pub fn session_by_conn(&self) -> std::collections::HashMap<ConnId, SessionId> {
        let reg = self.shared.clients.registry();
        reg.conns
            .iter()
            .filter_map(|(k, c)| c.session.map(|s| (*k, s)))
            .collect()
    }

    /// Number of live sessions.
    pub fn session_count(&self) -> usize {
        self.shared.sessions().len()
    }

    /// Sessions by expiry bucket: (monotonic ms the bucket expires at, session ids).
    pub fn session_buckets(&self) -> Vec<(i64, Vec<SessionId>)> {
        self.shared.sessions().buckets()
    }

    /// The local sessions' expiry buckets (localSessionsEnabled, read-only mode).
    pub fn local_session_buckets(&self) -> Vec<(i64, Vec<SessionId>)> {
        self.shared.local_sessions().buckets()
    }

    /// Every global session with its timeout (ms), by id; with `and_local` the local
    /// ones too (read-only sessions where no local session tracker is kept).
    pub fn session_timeouts(&self, and_local: bool) -> Vec<(SessionId, i32)> {
        let mut v = self.shared.sessions().timeouts();
        if and_local {
            v.extend(self.shared.local_sessions().timeouts());
        }
        v.sort_unstable();
        v
    }

    /// Number of watches (all kinds).
    pub fn watch_count(&self) -> usize {
        self.shared.watches().watch_count()
    }

    /// (watching connections, watched paths, total watches).
    pub fn watch_summary(&self) -> (usize, usize, usize) {
        self.shared.watches().summary()
    }

    /// Watched paths by connection.
    pub fn watches_by_conn(&self) -> Vec<(ConnId, Vec<String>)> {
        self.shared.watches().dump_by_conn()
    }

    /// Watching connections by path.
    pub fn watches_by_path(&self) -> Vec<(String, Vec<ConnId>)> {
        self.shared.watches().dump_by_path()
    }

    /// Milliseconds since the server started.
    pub fn uptime_ms(&self) -> i64 {
        self.shared.clock.now_ms()
    }

    /// A monotonic time (`session_buckets`) as wall-clock ms.
    pub fn to_wall_ms(&self, mono_ms: i64) -> i64 {
        self.shared.clock.to_wall_ms(mono_ms)
    }

    /// `crst`: zero every connection's counters.
    pub fn reset_connection_stats(&self) {
        for c in self.shared.clients.registry().conns.values() {
            c.stats.reset();
        }
    }

    /// `srst`: zero the server's counters.
    pub fn reset_server_stats(&self) {
        self.shared.stats.reset();
    }
}
