//! The checks of a reconfig request (opcode 16) and the membership it asks for, as
//! ZooKeeper 3.8's `PrepRequestProcessor` does them for `OpCode.reconfig`, in the same
//! order (the first failing check decides the error code):
//!
//! 1. `reconfigEnabled=false` → RECONFIGDISABLED;
//! 2. not the leader of a quorum (a standalone server) → UNIMPLEMENTED;
//! 3. the last proposed membership is not the committed one → RECONFIGINPROGRESS;
//! 4. `curConfigId` (kazoo's `from_config`) neither -1 nor the last proposed version →
//!    BADVERSION;
//! 5. the new membership: non-incremental (`newMembers`, `server.N=` lines separated by
//!    `,` or newlines) or incremental (`leavingServers` ids, then `joiningServers`
//!    `server.N=spec` entries, each with a client port) — a spec ZooKeeper's parser
//!    refuses → BADARGUMENTS; a server id that is not a number and the membership
//!    shapes ZooKeeper refuses with an unchecked exception → MARSHALLINGERROR;
//! 6. fewer than 2 voters (1 with `standaloneEnabled=false`) → BADARGUMENTS;
//! 7. the voters of the new membership that are synced with the leader (the leader
//!    itself included) are not a majority of its voters → NEWCONFIGNOQUORUM;
//! 8. WRITE permission on `/zookeeper/config` (READ for anyone unless changed; a super
//!    user passes any ACL) → NOAUTH.
//!
//! The txn of an accepted request is a `Reconfig` txn (a `SetDataTxn` on
//! `/zookeeper/config`, version -1) whose data is the new membership text at version =
//! the txn's zxid ([`super::membership_text`]).
//!
//! Never does IO; the leader's runtime supplies the membership state in [`LeaderView`].

use crate::auth::{check_perm, AuthInfo};
use crate::config::{parse_properties, parse_server_line, PeerRole, QuorumServer};
use rzk_proto::opcode::perms;
use rzk_proto::records::{Acl, ReconfigRequest};
use rzk_proto::{ErrorCode, ServerId, Zxid};
use std::collections::{BTreeMap, BTreeSet};

/// A membership and its version (ZooKeeper's `QuorumMaj` with its `version`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Every member by server id.
    pub servers: BTreeMap<ServerId, QuorumServer>,
    /// Hierarchical quorums (`group.G` / `weight.S`); `None` for plain majorities.
    pub groups: Option<super::Groups>,
    /// The version: the zxid of the reconfig txn that made it (0 or a file's version for
    /// a membership that came from configuration files). Never negative: every reader of
    /// a version (files, `/zookeeper/config` text) refuses one above `i64::MAX`.
    pub version: Zxid,
}

impl Membership {
    /// The ids of the participants (voters).
    pub fn voters(&self) -> BTreeSet<ServerId> {
        self.servers
            .values()
            .filter(|s| s.role == PeerRole::Participant)
            .map(|s| s.id)
            .collect()
    }

    /// The ids of the observers.
    pub fn observers(&self) -> BTreeSet<ServerId> {
        self.servers
            .values()
            .filter(|s| s.role == PeerRole::Observer)
            .map(|s| s.id)
            .collect()
    }

    /// The text `/zookeeper/config` holds for this membership.
    pub fn text(&self) -> String {
        super::membership_text(&self.servers, self.groups.as_ref(), self.version)
    }

    /// The quorums of this membership.
    pub fn quorum(&self) -> crate::zab::quorum::QuorumVerifier {
        let voters: Vec<ServerId> = self.voters().into_iter().collect();
        let observers: Vec<ServerId> = self.observers().into_iter().collect();
        crate::zab::quorum::QuorumVerifier::with_groups(&voters, &observers, self.groups.as_ref())
    }
}

/// What the leader knows when it prepares a reconfig request.
#[derive(Debug, Clone, Copy)]
pub struct LeaderView<'a> {
    /// `reconfigEnabled`.
    pub reconfig_enabled: bool,
    /// `standaloneEnabled` (a new membership then needs at least 2 voters).
    pub standalone_enabled: bool,
    /// False on a standalone server (ZooKeeper: not a `LeaderZooKeeperServer`).
    pub quorum_leader: bool,
    /// The version of the membership in force (ZooKeeper's `getQuorumVerifier()`).
    pub committed_version: Zxid,
    /// The newest membership proposed or in force (`getLastSeenQuorumVerifier()`).
    pub last_seen: &'a Membership,
    /// This server's id.
    pub my_id: ServerId,
    /// Followers whose sync with this leader is complete (ZooKeeper's forwarding
    /// followers with `synced()`); the leader is not in it.
    pub synced_followers: &'a BTreeSet<ServerId>,
}

/// Why a reconfig request is refused; [`RefusedReconfig::code`] is the client's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefusedReconfig {
    /// `reconfigEnabled` is false.
    #[error("reconfig is disabled (reconfigEnabled=false)")]
    Disabled,
    /// A standalone server cannot reconfigure.
    #[error("reconfig is not supported by a standalone server")]
    Standalone,
    /// An earlier reconfig is proposed but not committed.
    #[error("a reconfig is in progress")]
    InProgress,
    /// `curConfigId` is not the last proposed version.
    #[error("reconfiguration from version {asked:#x} failed -- last seen version is {last_seen}")]
    BadVersion {
        /// The request's `curConfigId`.
        asked: i64,
        /// The last proposed membership's version (shown as `0x` and hex).
        last_seen: Zxid,
    },
    /// A server spec or the new membership is invalid (ZooKeeper: BADARGUMENTS).
    #[error("bad reconfig arguments: {0}")]
    BadArguments(String),
    /// Input ZooKeeper fails on with an unchecked exception (MARSHALLINGERROR there).
    #[error("malformed reconfig request: {0}")]
    Malformed(String),
    /// The synced voters of the new membership are no majority of it.
    #[error("there must be a connected and synced quorum in the new configuration")]
    NoQuorum,
    /// The session may not write `/zookeeper/config`.
    #[error("not authorized to write /zookeeper/config")]
    NoAuth,
}

impl RefusedReconfig {
    /// The error code ZooKeeper answers with.
    pub fn code(&self) -> ErrorCode {
        match self {
            RefusedReconfig::Disabled => ErrorCode::ReconfigDisabled,
            RefusedReconfig::Standalone => ErrorCode::Unimplemented,
            RefusedReconfig::InProgress => ErrorCode::ReconfigInProgress,
            RefusedReconfig::BadVersion { .. } => ErrorCode::BadVersion,
            RefusedReconfig::BadArguments(_) => ErrorCode::BadArguments,
            RefusedReconfig::Malformed(_) => ErrorCode::MarshallingError,
            RefusedReconfig::NoQuorum => ErrorCode::NewConfigNoQuorum,
            RefusedReconfig::NoAuth => ErrorCode::NoAuth,
        }
    }
}

/// Checks a reconfig request and returns the membership it asks for, with version
/// `zxid` (the zxid of the txn that will carry it). `config_acl` is the ACL of
/// `/zookeeper/config`, `auth` the session's identities.
///
/// # Errors
/// The first failing check of the module documentation, as a [`RefusedReconfig`].
pub fn prepare(
    view: &LeaderView<'_>,
    req: &ReconfigRequest,
    config_acl: &[Acl],
    auth: &AuthInfo,
    zxid: Zxid,
) -> Result<Membership, RefusedReconfig> {
    if !view.reconfig_enabled {
        return Err(RefusedReconfig::Disabled);
    }
    if !view.quorum_leader {
        return Err(RefusedReconfig::Standalone);
    }
    if view.last_seen.version != view.committed_version {
        return Err(RefusedReconfig::InProgress);
    }
    let asked = req.cur_config_id;
    // A version is never negative, so no negative `curConfigId` matches it.
    if asked != -1 && Zxid(asked) != view.last_seen.version {
        return Err(RefusedReconfig::BadVersion {
            asked,
            last_seen: view.last_seen.version,
        });
    }
    // jute decodes a null string as empty: an empty newMembers is taken as absent
    // (docs/COMPATIBILITY.md).
    let (servers, groups) = if req.new_members.is_empty() {
        if view.last_seen.groups.is_some() {
            return Err(RefusedReconfig::BadArguments(
                "Incremental reconfiguration requested but last configuration seen has a \
                 non-majority quorum system"
                    .into(),
            ));
        }
        let servers = incremental(view.last_seen, &req.joining_servers, &req.leaving_servers)?;
        (servers, None)
    } else {
        non_incremental(&req.new_members, view.standalone_enabled)?
    };
    // A zxid is never negative, as no membership version is.
    debug_assert!(zxid >= Zxid::ZERO, "negative zxid {zxid}");
    let next = Membership {
        servers,
        groups,
        version: zxid,
    };
    let voters = next.voters();
    let min = if view.standalone_enabled { 2 } else { 1 };
    if voters.len() < min {
        return Err(RefusedReconfig::BadArguments(format!(
            "the new configuration must include at least {min} voters"
        )));
    }
    // ZooKeeper's Leader.isQuorumSynced: the leader and its synced followers that vote
    // in the new membership, counted by its quorums (groups and weights included).
    let synced = voters
        .iter()
        .copied()
        .filter(|id| *id == view.my_id || view.synced_followers.contains(id));
    if !next.quorum().has_quorum(synced) {
        return Err(RefusedReconfig::NoQuorum);
    }
    if !check_perm(config_acl, auth, perms::WRITE) {
        return Err(RefusedReconfig::NoAuth);
    }
    Ok(next)
}

/// ZooKeeper's `StringUtils.split`: pieces trimmed, empty pieces left out.
fn split_trimmed<'a>(s: &'a str, sep: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    s.split(sep).map(str::trim).filter(|p| !p.is_empty())
}

/// `Long.parseLong` of a server id (a failure is an unchecked exception in ZooKeeper).
/// Negative ids are ids, as in ZooKeeper (`joining=server.-1=...` adds a member,
/// `leaving=-5` removes none and still makes a new version); only i64::MIN, rzk's
/// [`ServerId::NONE`], is refused.
fn parse_id(s: &str) -> Result<ServerId, RefusedReconfig> {
    s.parse::<i64>()
        .ok()
        .map(ServerId)
        .filter(|id| *id != ServerId::NONE)
        .ok_or_else(|| RefusedReconfig::Malformed(format!("server id {s:?} is not a number")))
}

/// One `server.N` value, as ZooKeeper's `QuorumServer(id, spec)`.
fn parse_spec(id: ServerId, spec: &str) -> Result<QuorumServer, RefusedReconfig> {
    if spec.contains('|') {
        return Err(RefusedReconfig::BadArguments(format!(
            "server.{id}: several addresses are not supported"
        )));
    }
    if let Some(p) = port_out_of_range(spec) {
        // ZooKeeper: `new InetSocketAddress(host, port)` throws an unchecked
        // IllegalArgumentException, which its prep answers as a marshalling error.
        return Err(RefusedReconfig::Malformed(format!(
            "server.{id}: port {p} out of range"
        )));
    }
    parse_server_line(&format!("server.{id}"), spec)
        .map_err(|e| RefusedReconfig::BadArguments(e.to_string()))
}

/// A quorum, election or client port of `spec` that is a Java int outside 0..=65535.
fn port_out_of_range(spec: &str) -> Option<i64> {
    let (addr, client) = match spec.split_once(';') {
        Some((a, c)) => (a, Some(c)),
        None => (spec, None),
    };
    let rest = match addr.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(_, r)| r),
        None => addr.split_once(':').map_or("", |(_, r)| r),
    };
    let fields: Vec<&str> = rest.trim_start_matches(':').split(':').collect();
    if fields.len() < 2 {
        // Too few parts: ZooKeeper's ConfigException (BADARGUMENTS) comes first.
        return None;
    }
    let server_ports = fields.into_iter().take(2);
    let client_port = client.map(|c| c.rsplit_once(':').map_or(c, |(_, p)| p));
    server_ports
        .chain(client_port)
        .filter_map(|p| p.parse::<i32>().ok())
        .map(i64::from)
        .find(|p| !(0..=65535).contains(p))
}

/// The incremental change: `leaving` ids removed, then each `joining` entry added or
/// replacing the member with its id.
fn incremental(
    last: &Membership,
    joining: &str,
    leaving: &str,
) -> Result<BTreeMap<ServerId, QuorumServer>, RefusedReconfig> {
    let mut next = last.servers.clone();
    for id in split_trimmed(leaving, ",") {
        next.remove(&parse_id(id)?);
    }
    for joiner in split_trimmed(joining, ",") {
        let parts: Vec<&str> = split_trimmed(joiner, "=").collect();
        let [key, spec] = parts[..] else {
            return Err(RefusedReconfig::BadArguments(format!(
                "{joiner:?}: wrong format of server string (server.N=spec)"
            )));
        };
        let id = parse_id(key.rsplit_once('.').map_or(key, |(_, n)| n))?;
        let qs = parse_spec(id, spec)?;
        if qs.client_addr.is_none() {
            return Err(RefusedReconfig::BadArguments(format!(
                "server.{id}: each joining server needs a client port"
            )));
        }
        for other in next.values().filter(|o| o.id != id) {
            if let Some(addr) = address_clash(&qs, other) {
                return Err(RefusedReconfig::BadArguments(format!(
                    "{addr} of server.{id} conflicts with server.{}",
                    other.id
                )));
            }
        }
        next.insert(id, qs);
    }
    Ok(next)
}

/// The addresses of a member ZooKeeper compares for duplicates: quorum, election and
/// client addresses, leaving out wildcard and loopback hosts
/// (`QuorumServer.checkAddressDuplicate`).
fn compared_addresses(s: &QuorumServer) -> Vec<(String, u16)> {
    let mut v = vec![
        (s.host.clone(), s.quorum_port),
        (s.host.clone(), s.election_port),
    ];
    if let Some(c) = &s.client_addr {
        v.push(c.clone());
    }
    v.retain(|(h, _)| !special_host(h));
    v
}

/// Wildcard (0.0.0.0, ::) and loopback (127/8, ::1, localhost) hosts.
fn special_host(h: &str) -> bool {
    match h.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_unspecified() || ip.is_loopback(),
        Err(_) => h.eq_ignore_ascii_case("localhost"),
    }
}

/// An address of `a` that `b` uses too, if any.
fn address_clash(a: &QuorumServer, b: &QuorumServer) -> Option<String> {
    let theirs = compared_addresses(b);
    compared_addresses(a)
        .into_iter()
        .find(|x| theirs.contains(x))
        .map(|(h, p)| format!("{h}:{p}"))
}

/// The non-incremental change: `newMembers` is the whole new membership, `server.N=`
/// entries (and for hierarchical quorums `group.G=` / `weight.S=` ones) separated by `,`
/// or newlines (ZooKeeper's `parseDynamicConfig`).
fn non_incremental(
    text: &str,
    standalone_enabled: bool,
) -> Result<(BTreeMap<ServerId, QuorumServer>, Option<super::Groups>), RefusedReconfig> {
    let text = text.replace(',', "\n");
    let props = parse_properties(&text);
    let mut next = BTreeMap::new();
    for (k, v) in &props {
        if crate::config::is_group_key(k) {
            continue;
        }
        if k == "version" {
            continue;
        }
        let Some(n) = k.strip_prefix("server.") else {
            return Err(RefusedReconfig::BadArguments(format!(
                "unrecognised parameter: {k}"
            )));
        };
        let id = parse_id(n)?;
        next.insert(id, parse_spec(id, v)?);
    }
    let voters = next
        .values()
        .filter(|s| s.role == PeerRole::Participant)
        .count();
    let observers = next.len() - voters;
    let refused = match voters {
        0 if !standalone_enabled => Some("standaloneEnabled=false needs at least one voter"),
        0 | 1 if standalone_enabled && observers > 0 => {
            Some("observers without a quorum of voters")
        }
        _ => None,
    };
    if let Some(why) = refused {
        return Err(RefusedReconfig::Malformed(why.into()));
    }
    // ZooKeeper's QuorumHierarchical: a ConfigException (BADARGUMENTS) for a server in
    // two groups or none; a number that does not parse fails unchecked (MARSHALLINGERROR).
    let groups = super::groups_of_text(&text, &next).map_err(|e| {
        if e.is_unchecked() {
            RefusedReconfig::Malformed(e.to_string())
        } else {
            RefusedReconfig::BadArguments(e.to_string())
        }
    })?;
    Ok((next, groups))
}

#[cfg(test)]
mod tests;
