//! Dynamic reconfiguration in the runtime (a child module of the driver): the leader's
//! prep of the reconfig request, which txns are reconfigs (the core's
//! `ZabConfig::reconfig_of`), and what the runtime does when the core activates a
//! committed membership (`Output::Activate`): new members reachable on the election port,
//! roles updated, and the configuration files rewritten as ZooKeeper 3.8's
//! `QuorumPeer.setQuorumVerifier` does (`<zoo.cfg>.dynamic.<hex version>` with the
//! membership, and zoo.cfg pointing at it with `dynamicConfigFile=`).
//!
//! `/zookeeper/config` needs nothing here: the reconfig txn is a `SetDataTxn` on it, so
//! applying the txn serves the new text.

use super::Driver;
use crate::auth::AuthInfo;
use crate::config::{parse_properties, parse_server_line, Config};
use crate::node::peers::Peer;
use crate::reconfig::files;
use crate::reconfig::request::{LeaderView, Membership};
use crate::session::SessionOwner;
use crate::zab::types::NewConfig;
use crate::zab::{ServerId, Txn};
use rzk_proto::records::ReconfigRequest;
use rzk_proto::txn::{Txn as TxnBody, TxnRecord};
use rzk_proto::{SessionId, Zxid};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The membership in force and the newest one proposed (ZooKeeper's quorum verifier and
/// last seen quorum verifier).
#[derive(Debug, Clone)]
pub(super) struct Members {
    committed: Membership,
    last_seen: Membership,
}

impl Members {
    /// The membership of the configuration files; `last_seen` the one of
    /// `zoo.cfg.dynamic.next` when it is newer ([`read_next_file`]).
    pub(super) fn from_config(cfg: &Config, last_seen: Option<Membership>) -> Members {
        let m = Membership {
            servers: cfg.servers.clone(),
            groups: cfg.groups.clone(),
            version: cfg.config_version,
        };
        // `read_next_file` returns only a membership newer than the one in force.
        debug_assert!(
            last_seen.as_ref().is_none_or(|l| l.version > m.version),
            "zoo.cfg.dynamic.next not newer than the membership in force"
        );
        Members {
            committed: m.clone(),
            last_seen: last_seen.unwrap_or(m),
        }
    }

    /// The text and version of the membership in force (for `/zookeeper/config`).
    pub(super) fn in_force(&self) -> (String, Zxid) {
        (self.committed.text(), self.committed.version)
    }

    /// The newest membership seen: the one proposed, else the one in force.
    pub(super) fn last_seen(&self) -> &Membership {
        &self.last_seen
    }

    /// Leadership changed: a proposed reconfig this server made is no longer its to
    /// commit (a new leader commits it, and then it is activated, or it is gone).
    pub(super) fn forget_proposed(&mut self) {
        self.last_seen = self.committed.clone();
    }
}

/// The membership a `/zookeeper/config` text describes (`server.N=` lines, `group.G=` /
/// `weight.S=` lines and `version=<hex>`), as ZooKeeper's `QuorumMaj(Properties)` or
/// `QuorumHierarchical(Properties)`; `None` for text that is no
/// membership, or whose version is not a zxid (above `i64::MAX`, where ZooKeeper's
/// `Long.parseLong(v, 16)` fails too).
pub(crate) fn parse_membership(text: &str) -> Option<Membership> {
    read_membership(text).ok()
}

/// [`parse_membership`], with why a text is refused: names the line (key and value)
/// this server cannot put in force, e.g. a multi-address `server.N` line.
pub(crate) fn read_membership(text: &str) -> Result<Membership, String> {
    let mut servers = BTreeMap::new();
    let mut version = Zxid::ZERO;
    for (k, v) in parse_properties(text) {
        if k == "version" {
            let bits = u64::from_str_radix(v.trim(), 16)
                .map_err(|_| format!("version={v}: not a hexadecimal zxid"))?;
            version = Zxid(i64::try_from(bits).map_err(|_| format!("version={v}: out of range"))?);
        } else if let Some(n) = k.strip_prefix("server.") {
            let s = parse_server_line(&k, &v).map_err(|e| e.to_string())?;
            if n.parse::<i64>().ok() != Some(s.id.0) {
                return Err(format!("{k}={v}: not a server id rzk reads"));
            }
            servers.insert(s.id, s);
        } else if crate::config::is_group_key(&k) {
            // Read below from the untrimmed values.
        } else {
            return Err(format!("{k}={v}: not a membership line rzk reads"));
        }
    }
    let groups = crate::reconfig::groups_of_text(text, &servers).map_err(|e| e.to_string())?;
    Ok(Membership {
        servers,
        groups,
        version,
    })
}

/// `ZabConfig::unreadable_config`: why a membership text from the leader (NEWLEADER's)
/// cannot be put in force by this server; `None` when it can (or is empty).
pub(super) fn unreadable_config(text: &str) -> Option<String> {
    if text.trim().is_empty() {
        return None;
    }
    read_membership(text).err()
}

/// `ZabConfig::unreadable_reconfig`: why `t`, a `Reconfig` txn, carries a membership
/// this server cannot put in force; `None` for any other txn and for a readable one.
pub(super) fn unreadable_reconfig(t: &Txn) -> Option<String> {
    match reconfig_text(t)? {
        Ok(text) => read_membership(&text).err(),
        Err(why) => Some(why),
    }
}

/// Whether `t` is a `Reconfig` txn, told by its header's type alone (after clientId,
/// cxid, zxid and time: bytes 28..32, big-endian), without decoding anything.
pub(super) fn is_reconfig_txn(t: &Txn) -> bool {
    t.payload
        .get(28..32)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .is_some_and(|b| i32::from_be_bytes(b) == rzk_proto::OpCode::Reconfig.code())
}

/// The membership text of `t` when it is a `Reconfig` txn (told by its header's type
/// before decoding anything: called for every proposal): `None` for any other txn,
/// `Err` naming why its text cannot be read.
fn reconfig_text(t: &Txn) -> Option<Result<String, String>> {
    if !is_reconfig_txn(t) {
        return None;
    }
    let rec = match TxnRecord::decode(&t.payload) {
        Ok(r) => r,
        Err(e) => return Some(Err(format!("the reconfig txn does not decode: {e}"))),
    };
    let TxnBody::Reconfig(s) = rec.txn else {
        return None;
    };
    Some(
        String::from_utf8(s.data.to_vec())
            .map_err(|_| "the reconfig txn's membership is not UTF-8".to_owned()),
    )
}

/// The core's reading of a txn (`ZabConfig::reconfig_of`): a `Reconfig` txn installs
/// the membership its `/zookeeper/config` text describes.
pub(super) fn reconfig_of(t: &Txn) -> Option<NewConfig> {
    let text = reconfig_text(t)?.ok()?;
    let c = config_of_text(&text);
    if c.is_none() {
        tracing::error!(zxid = %t.zxid, "a reconfig txn whose membership does not parse");
    }
    c
}

/// The core's reading of a membership text (`ZabConfig::config_of_text`: the config
/// carried by election notifications).
pub(super) fn config_of_text(text: &str) -> Option<NewConfig> {
    let m = parse_membership(text)?;
    Some(NewConfig {
        voters: m.voters().into_iter().collect(),
        observers: m.observers().into_iter().collect(),
        groups: m.groups,
        version: m.version,
        text: text.to_owned(),
    })
}

/// `ZabConfig::quorum_address_of`: server `id`'s quorum address in a membership text,
/// as `host:port` with the host in lower case (the `server.N` line's own parser).
pub(super) fn quorum_address_of(text: &str, id: ServerId) -> Option<String> {
    let m = parse_membership(text)?;
    let s = m.servers.get(&id)?;
    Some(format!("{}:{}", s.host.to_ascii_lowercase(), s.quorum_port))
}

impl Driver {
    /// Leader: prep of a reconfig request as the txn of the next zxid (an error txn when
    /// it is refused). `None` if this server cannot propose.
    pub(super) fn prepare_reconfig(
        &mut self,
        session: SessionId,
        cxid: i32,
        req: &ReconfigRequest,
        auth: &AuthInfo,
        from: SessionOwner,
    ) -> Option<(Zxid, TxnRecord)> {
        let zxid = self.zab.next_zxid()?;
        if let Some(code) = self.session_refusal(session, from) {
            let now = crate::node::lifecycle::wall_ms();
            let tree = self.shared.tree();
            return Some((
                zxid,
                self.prep
                    .error_record(&tree, session, cxid, zxid, now, code),
            ));
        }
        // Followers only: an observer to be promoted does not ACK the reconfig's
        // proposal, so counting it let a proposal out that could never commit.
        let synced = self.zab.synced_followers();
        let view = LeaderView {
            reconfig_enabled: self.shared.config.reconfig_enabled,
            standalone_enabled: self.shared.config.standalone_enabled,
            // A single voter of a configured ensemble (`standaloneEnabled=false`) is a
            // quorum leader too: it may grow by reconfig, as in ZooKeeper.
            quorum_leader: self.shared.config.is_distributed(),
            committed_version: self.members.committed.version,
            last_seen: &self.members.last_seen,
            my_id: self.peers.me,
            synced_followers: &synced,
        };
        let now = crate::node::lifecycle::wall_ms();
        let tree = self.shared.tree();
        let (rec, next) = self
            .prep
            .prepare_reconfig(&tree, &view, session, cxid, req, auth, zxid, now);
        drop(tree);
        if let Some(m) = next {
            tracing::info!(
                version = format_args!("{:x}", m.version.0),
                voters = ?m.voters(),
                observers = ?m.observers(),
                "reconfig proposed"
            );
            self.note_election_members(&m);
            self.members.last_seen = m;
        }
        Some((zxid, rec))
    }

    /// `Output::Activate`: the committed membership is in force (the core already
    /// counts votes by it). Reaches the new members, notes roles, rewrites the files.
    pub(super) fn on_activate(&mut self, config: NewConfig, leader: ServerId) {
        self.om_activate(config.version, leader);
        let Some(m) = parse_membership(&config.text) else {
            tracing::error!(
                version = %config.version,
                "activated membership does not parse; peers and files unchanged"
            );
            return;
        };
        for s in m.servers.values() {
            let sid = s.id;
            let peer = Peer::from_server(sid, s);
            if sid == self.peers.me && !peer.resolved {
                // This server's own addresses are bound: keep the resolved ones rather
                // than a placeholder (the observer-master port would bind 0.0.0.0).
                tracing::warn!(
                    "my own host in the new membership does not resolve; keeping my addresses"
                );
                continue;
            }
            if sid == self.peers.me {
                self.listen_on_new_quorum_address(&peer, &m);
                if let Some((host, port)) = &s.client_addr {
                    self.move_client_port(crate::config::client_addr_of_line(host, *port));
                }
            }
            if let Some(e) = &self.election {
                e.add_peer(&peer);
            }
            self.peers.members.insert(sid, peer);
        }
        // Members that left stay reachable on the election port (a removed server
        // still learns the leader from it and may be added back); the core no longer
        // counts them.
        let role = m.servers.get(&self.peers.me).map(|s| s.role);
        tracing::info!(
            version = format_args!("{:x}", m.version.0),
            designated_leader = %leader,
            my_role = ?role,
            "membership activated"
        );
        let newest_seen = m.version >= self.members.last_seen.version;
        if let Err(e) = write_files(&self.shared.config, &m, newest_seen) {
            tracing::warn!(
                version = format_args!("{:x}", m.version.0),
                "cannot write the new dynamic configuration: {e}"
            );
        }
        self.members.committed = m.clone();
        if newest_seen {
            self.members.last_seen = m;
        }
    }

    /// A proposed membership's servers keep their election workers from now on (one
    /// that joins may connect before the membership is activated; a server outside
    /// every membership keeps one only while connected: `net/peer/election_net.rs`).
    pub(super) fn note_election_members(&self, m: &Membership) {
        if let Some(e) = &self.election {
            e.note_members(m.servers.keys().copied());
        }
    }

    /// A membership that moves this server's quorum address: learners of it connect to
    /// the new one (a leader binds its quorum address whenever it leads, in ZooKeeper),
    /// so it is listened on as well from now on whenever the quorum port is open, at
    /// once if it is open now. An old one stays while a newer proposed membership names
    /// it, and is dropped otherwise (`node/quorum_port.rs`): ZooKeeper's leader binds
    /// only the address of the membership in force. `m`: the membership activated.
    fn listen_on_new_quorum_address(&mut self, me: &Peer, m: &Membership) {
        let all = self.shared.config.quorum_listen_on_all_ips;
        let addr = crate::node::peers::listen_addr(me.quorum, all);
        if self.quorum_port.add(addr) {
            tracing::info!(%addr, open = self.quorum_port.is_open(),
                "my quorum address moved with the new membership; learners are accepted on it while I lead or look for a leader");
        }
        let mut named = vec![addr];
        let proposed = &self.members.last_seen;
        if proposed.version > m.version {
            if let Some(s) = proposed.servers.get(&self.peers.me) {
                let p = Peer::from_server(self.peers.me, s);
                if p.resolved {
                    named.push(crate::node::peers::listen_addr(p.quorum, all));
                }
            }
        }
        for old in self.quorum_port.retain(&named) {
            tracing::info!(addr = %old, "no membership names this quorum address of mine any more; learners are no longer accepted on it");
        }
    }

    /// A membership that gives this server another client address: the client port
    /// moves there at once and the connections already open stay (ZooKeeper's
    /// `processReconfig` → `ServerCnxnFactory.reconfigure`; `node/client_port.rs`). Runs
    /// on the connection runtime; a bind failure is logged.
    fn move_client_port(&self, addr: std::net::SocketAddr) {
        self.shared.client_port.want(addr);
        if self.shared.client_port.local_addr() == Some(addr) {
            return;
        }
        let shared = self.shared.clone();
        self.rt.spawn(async move {
            crate::node::client_port::settle(&shared, "the new membership").await
        });
    }

    /// Txns about to be logged (proposed here, or a leader's PROPOSALs): a reconfig
    /// newer than any membership seen becomes the last seen one and is written to
    /// `zoo.cfg.dynamic.next`, as ZooKeeper's leader (`Leader.propose`) and learners
    /// (`Follower.processPacket`, `Learner.syncWithLeader`) do with
    /// `setLastSeenQuorumVerifier(qv, true)`. Only a txn's type is read for other txns.
    pub(super) fn note_proposed(&mut self, txns: &[Txn]) {
        for t in txns.iter().filter(|t| is_reconfig_txn(t)) {
            let Some(c) = reconfig_of(t) else { continue };
            let Some(m) = parse_membership(&c.text) else {
                continue;
            };
            if m.version <= self.members.committed.version
                || m.version < self.members.last_seen.version
            {
                continue;
            }
            if let Err(e) = write_next_file(&self.shared.config, &m) {
                tracing::warn!(
                    version = format_args!("{:x}", m.version.0),
                    "cannot write zoo.cfg.dynamic.next: {e}"
                );
            }
            self.note_election_members(&m);
            self.members.last_seen = m;
        }
    }
}

/// The file a membership at `version` is written to: `<zoo.cfg>.dynamic.<hex version>`
/// next to zoo.cfg (ZooKeeper's `makeDynamicConfigFilename`): the zxid's bits in
/// lower-case hex without `0x`.
pub(crate) fn dynamic_file_name(zoo_cfg: &Path, version: Zxid) -> PathBuf {
    let mut name = zoo_cfg.as_os_str().to_owned();
    name.push(format!(".dynamic.{:x}", version.0));
    PathBuf::from(name)
}

/// `<zoo.cfg>.dynamic.next`: the membership of a proposed, not yet committed reconfig
/// (ZooKeeper's `QuorumPeer.getNextDynamicConfigFilename`).
pub(crate) fn next_file_name(zoo_cfg: &Path) -> PathBuf {
    let mut name = zoo_cfg.as_os_str().to_owned();
    name.push(".dynamic.next");
    PathBuf::from(name)
}

/// Writes the membership's dynamic file and points zoo.cfg at it, as ZooKeeper 3.8's
/// `setQuorumVerifier` (`writeDynamicConfig` + `editStaticConfig`) does
/// (`reconfig::files` has the texts); then removes `zoo.cfg.dynamic.next` when `m` is
/// the newest membership seen. Nothing without a zoo.cfg.
fn write_files(cfg: &Config, m: &Membership, newest_seen: bool) -> std::io::Result<()> {
    let Some(zoo_cfg) = &cfg.source else {
        return Ok(());
    };
    let dynamic = dynamic_file_name(zoo_cfg, m.version);
    let body = files::dynamic_file_text(&m.text(), false);
    write_atomically(&dynamic, body.as_bytes())?;
    let canonical = std::fs::canonicalize(&dynamic)?;
    // ZooKeeper's needEraseClientInfoFromStaticConfig: this member's line in the new
    // membership names its client address.
    let erase_client = cfg
        .my_id
        .and_then(|id| m.servers.get(&id))
        .is_some_and(|s| s.client_addr.is_some());
    let old = std::fs::read_to_string(zoo_cfg)?;
    let out = files::static_file_text(&old, &canonical.to_string_lossy(), erase_client);
    write_atomically(zoo_cfg, out.as_bytes())?;
    tracing::info!(file = %dynamic.display(), "dynamic configuration written");
    if newest_seen {
        remove_next_file(zoo_cfg);
    }
    Ok(())
}

/// Writes a proposed membership to `zoo.cfg.dynamic.next` (with its `version=` line), as
/// ZooKeeper's `setLastSeenQuorumVerifier(qv, true)` does when a reconfig is proposed
/// (leader) or its PROPOSAL arrives (learners). Nothing without a zoo.cfg.
fn write_next_file(cfg: &Config, m: &Membership) -> std::io::Result<()> {
    let Some(zoo_cfg) = &cfg.source else {
        return Ok(());
    };
    let next = next_file_name(zoo_cfg);
    write_atomically(&next, files::dynamic_file_text(&m.text(), true).as_bytes())?;
    tracing::info!(file = %next.display(), version = format_args!("{:x}", m.version.0), "proposed membership written");
    Ok(())
}

fn remove_next_file(zoo_cfg: &Path) {
    let next = next_file_name(zoo_cfg);
    match std::fs::remove_file(&next) {
        Ok(()) => tracing::info!(file = %next.display(), "proposed membership file removed"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(file = %next.display(), "cannot remove: {e}"),
    }
}

/// At start-up, as ZooKeeper's `QuorumPeerConfig.parse`: a zoo.cfg that names no
/// `dynamicConfigFile` of a quorum member with `reconfigEnabled=true` is copied as it is
/// to `zoo.cfg.bak` (through a temporary file and a rename).
pub(crate) fn backup_static_config(cfg: &Config) {
    let Some(zoo_cfg) = &cfg.source else { return };
    if cfg.dynamic_config_file.is_some() || !cfg.is_distributed() || !cfg.reconfig_enabled {
        return;
    }
    let mut bak = zoo_cfg.as_os_str().to_owned();
    bak.push(".bak");
    let bak = PathBuf::from(bak);
    match std::fs::read(zoo_cfg).and_then(|b| write_atomically(&bak, &b)) {
        Ok(()) => tracing::info!(file = %bak.display(), "static configuration backed up"),
        Err(e) => tracing::warn!(file = %bak.display(), "cannot back up zoo.cfg: {e}"),
    }
}

/// At start-up, as ZooKeeper's `QuorumPeerConfig.parse`: with a `dynamicConfigFile`, a
/// `zoo.cfg.dynamic.next` next to zoo.cfg holds the membership of a reconfig this server
/// had seen proposed (and acked) but not committed before it stopped. `None` when there
/// is none, it does not parse (logged), or it is not newer than the membership in force.
pub(crate) fn read_next_file(cfg: &Config) -> Option<Membership> {
    let zoo_cfg = cfg.source.as_ref()?;
    cfg.dynamic_config_file.as_ref()?;
    let next = next_file_name(zoo_cfg);
    let text = match std::fs::read_to_string(&next) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(file = %next.display(), "cannot read: {e}");
            return None;
        }
    };
    let Some(m) = parse_membership(&text) else {
        tracing::warn!(file = %next.display(), "not a membership; ignored");
        return None;
    };
    if m.version <= cfg.config_version {
        return None;
    }
    tracing::info!(file = %next.display(), version = format_args!("{:x}", m.version.0), "a proposed membership from before the restart");
    Some(m)
}

/// Writes `path` through a temporary file and a rename (ZooKeeper's
/// `AtomicFileWriter`).
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_quorum_address_of_a_server_line() {
        let text = "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
                    server.12=ZK12.example:2889:3889:observer;2182\nversion=100000000";
        let of = super::quorum_address_of;
        assert_eq!(
            of(text, super::ServerId(1)).as_deref(),
            Some("127.0.0.1:2888")
        );
        assert_eq!(
            of(text, super::ServerId(12)).as_deref(),
            Some("zk12.example:2889")
        );
        assert_eq!(of(text, super::ServerId(2)), None);
    }

    use super::*;

    #[test]
    fn membership_text_round_trips() {
        let text = "server.1=127.0.0.1:24271:24286:participant;127.0.0.1:24251\n\
                    server.3=127.0.0.1:24273:24288:observer;127.0.0.1:24253\n\
                    version=100000004";
        let m = parse_membership(text).expect("parses");
        assert_eq!(m.version, Zxid::new(1, 4));
        assert_eq!(m.voters(), [ServerId(1)].into_iter().collect());
        assert_eq!(m.observers(), [ServerId(3)].into_iter().collect());
        assert_eq!(m.text(), text);
        assert!(parse_membership("server.x=1").is_none());
        assert!(parse_membership("foo=bar").is_none());
        // A version is a zxid: up to i64::MAX.
        let top = parse_membership("server.1=127.0.0.1:1:2:participant\nversion=7fffffffffffffff");
        assert_eq!(top.map(|m| m.version), Some(Zxid(i64::MAX)));
        assert!(parse_membership("server.1=127.0.0.1:1:2\nversion=8000000000000000").is_none());
    }

    #[test]
    fn reconfig_txns_recognised_by_type() {
        use rzk_proto::txn::{SetDataTxn, TxnHeader};
        let text = "server.1=127.0.0.1:1:2:participant;3\nversion=100000002";
        let rec = |txn: TxnBody| TxnRecord {
            header: TxnHeader {
                client_id: 1,
                cxid: 2,
                zxid: 0x1_0000_0002,
                time: 4,
                txn_type: txn.txn_type(),
            },
            txn,
            digest: None,
        };
        let set = SetDataTxn {
            path: "/zookeeper/config".into(),
            data: text.as_bytes().to_vec().into(),
            version: -1,
        };
        let txn = |r: TxnRecord| Txn {
            zxid: Zxid(0x1_0000_0002),
            payload: r.encode().into(),
        };
        let c = reconfig_of(&txn(rec(TxnBody::Reconfig(set.clone())))).expect("a reconfig");
        assert_eq!(
            (c.version, c.voters.len(), c.text.as_str()),
            (Zxid::new(1, 2), 1, text)
        );
        assert!(reconfig_of(&txn(rec(TxnBody::SetData(set.clone())))).is_none());
        assert_eq!(
            unreadable_reconfig(&txn(rec(TxnBody::SetData(set.clone())))),
            None
        );
        assert_eq!(
            unreadable_reconfig(&txn(rec(TxnBody::Reconfig(set.clone())))),
            None
        );
        // A ZooKeeper leader's reconfig to hierarchical quorums is read with its groups.
        let hier = SetDataTxn {
            data: format!("{text}\ngroup.1=1\nweight.1=2").into_bytes().into(),
            ..set.clone()
        };
        let hier = txn(rec(TxnBody::Reconfig(hier)));
        let c = reconfig_of(&hier).expect("hierarchical");
        let groups = c.groups.as_ref().expect("groups");
        assert_eq!(groups.weights().get(&ServerId(1)), Some(&2));
        assert_eq!(unreadable_reconfig(&hier), None);
        // One whose groups leave a voter out is named, not followed.
        let bad = SetDataTxn {
            data: format!("{text}\ngroup.1=7").into_bytes().into(),
            ..set
        };
        let why = unreadable_reconfig(&txn(rec(TxnBody::Reconfig(bad)))).expect("unreadable");
        assert!(why.contains("Server 1 is not in a group"), "{why}");
    }

    #[test]
    fn unreadable_membership_texts_are_named() {
        let ok = "server.1=127.0.0.1:1:2:participant;3\nversion=100000002";
        assert_eq!(unreadable_config(ok), None);
        assert_eq!(unreadable_config(""), None);
        assert_eq!(
            unreadable_config(&format!("{ok}\ngroup.1=1\nweight.1=3")),
            None
        );
        let why = unreadable_config(&format!("{ok}\nweight.1=3")).expect("weight");
        assert!(why.contains("Server 1 is not in a group"), "{why}");
        let why = unreadable_config(&format!("{ok}\ngroup.1=1:x")).expect("group");
        assert!(
            why.contains("group.1") && why.contains("not a number"),
            "{why}"
        );
        let why = unreadable_config("server.1=127.0.0.1:1:2|127.0.0.2:1:2;3").expect("multi");
        assert!(why.contains("server.1"), "{why}");
        let why = unreadable_config(&format!("{ok}\nfoo=bar")).expect("unknown");
        assert!(why.contains("foo=bar"), "{why}");
    }

    #[test]
    fn dynamic_file_named_by_hex_version() {
        assert_eq!(
            dynamic_file_name(Path::new("/a/zoo.cfg"), Zxid::new(1, 0xa)),
            PathBuf::from("/a/zoo.cfg.dynamic.10000000a")
        );
    }
}
