//! Ensemble membership as ZooKeeper 3.8 writes it: the text of `/zookeeper/config`, the
//! `membership:` block of the `conf` four-letter word, and the versions carried in
//! dynamic configuration file names (`zoo.cfg.dynamic.<hex version>`).
//!
//! Owns: rendering a membership (ZooKeeper's `QuorumMaj.toString()` and
//! `QuorumServer.toString()`), byte for byte, and the version rules of file names.
//! Never does IO; `config.rs` reads the files, `storage/open.rs` and `node/` put the text
//! into the tree.
//!
//! The text is one `server.<id>=<spec>` line per member, each ended by `\n`, then for
//! hierarchical quorums the `group.G=` and `weight.S=` lines ([`Groups`]), then
//! `version=<lower-case hex, no 0x>` with no newline. `<spec>` is
//! `host:quorumPort:electionPort:participant|observer`, followed by
//! `;clientHost:clientPort` only when the member's `server.N` line names a client
//! address (ZooKeeper leaves out one it took from `clientPort`); an IPv6 host is written
//! in brackets, a client address given as a bare port is `0.0.0.0:<port>`.
//!
//! Member order is the iteration order of the `java.util.HashMap<Long, QuorumServer>`
//! ZooKeeper keeps them in: by bucket (`id` spread as `Long.hashCode` does, masked to the
//! table size, which starts at 16 and doubles past a 0.75 load factor), which for ids
//! below the table size is ascending id. Ids sharing a bucket (only possible from id 16
//! up) follow ZooKeeper's insertion order, which comes from a `Hashtable` of the
//! properties; rzk puts them in ascending id (docs/COMPATIBILITY.md).

pub mod files;
pub mod request;

use crate::config::{PeerRole, QuorumServer};
pub use crate::zab::quorum::{Groups, GroupsError};
use rzk_proto::{ServerId, Zxid};
use std::collections::BTreeMap;

/// `/zookeeper/config`, ZooKeeper's `ZooDefs.CONFIG_NODE`.
pub const CONFIG_NODE: &str = "/zookeeper/config";

/// One member as ZooKeeper's `QuorumServer.toString()` writes it (without `server.N=`).
pub fn server_spec(s: &QuorumServer) -> String {
    let role = match s.role {
        PeerRole::Participant => "participant",
        PeerRole::Observer => "observer",
    };
    let mut out = format!(
        "{}:{}:{}:{role}",
        bracketed(&s.host),
        s.quorum_port,
        s.election_port
    );
    if let Some((host, port)) = &s.client_addr {
        out.push_str(&format!(";{}:{port}", bracketed(host)));
    }
    out
}

/// ZooKeeper's `delimitedHostString`: a host containing `:` (IPv6) in brackets.
fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// The membership text of `servers` at `version` (ZooKeeper's `QuorumMaj.toString()`):
/// what `/zookeeper/config` holds and `conf` prints after `membership: `. The version is
/// written as the bits of the zxid in lower-case hex without `0x`.
pub fn membership_text(
    servers: &BTreeMap<ServerId, QuorumServer>,
    groups: Option<&Groups>,
    version: Zxid,
) -> String {
    debug_assert!(
        servers.iter().all(|(id, s)| *id == s.id),
        "a member filed under another server's id"
    );
    let mut out = String::new();
    for id in java_hash_map_order(servers.keys().copied()) {
        if let Some(s) = servers.get(&id) {
            out.push_str(&format!("server.{id}={}\n", server_spec(s)));
        }
    }
    if let Some(g) = groups {
        out.push_str(&group_text(g));
    }
    out.push_str(&format!("version={:x}", version.0));
    out
}

/// The `group.G` and `weight.S` lines of hierarchical quorums, as ZooKeeper's
/// `QuorumHierarchical.toString()` writes them after the members: groups in the
/// iteration order of a `HashMap<Long, String>` of group ids, each group's servers in
/// that of the `HashMap` of all grouped servers, then the weights in that of the
/// `HashMap` of weighted servers (participants without a `weight.S` line at 1).
fn group_text(g: &Groups) -> String {
    let lines = g.group_lines();
    let grouped: BTreeMap<ServerId, i64> = lines
        .iter()
        .flat_map(|(gid, sids)| sids.iter().map(move |s| (*s, *gid)))
        .collect();
    let server_order = java_hash_map_order(grouped.keys().copied());
    let mut out = String::new();
    for gid in java_hash_map_order(lines.keys().map(|g| ServerId(*g))) {
        let members: Vec<String> = server_order
            .iter()
            .filter(|s| grouped.get(s) == Some(&gid.0))
            .map(|s| s.to_string())
            .collect();
        out.push_str(&format!("group.{gid}={}\n", members.join(":")));
    }
    let weights = g.weights();
    for sid in java_hash_map_order(weights.keys().copied()) {
        if let Some(w) = weights.get(&sid) {
            out.push_str(&format!("weight.{sid}={w}\n"));
        }
    }
    out
}

/// Reads the hierarchical quorum lines of a membership as ZooKeeper's
/// `QuorumHierarchical(Properties)` does: any key that starts with `group` or `weight` is
/// one (`lines`: key and value as `java.util.Properties` holds them, trailing whitespace
/// kept; for one key the last value counts); the id after the key's first `.` and every
/// number are `Long.parseLong`s (no space allowed); a group's value is split at `:` as
/// Java's `String.split`, which drops trailing empty pieces (`1:2:3:` is three servers).
/// `servers` are the members; `None` when there are no such lines (plain majorities).
///
/// # Errors
/// [`GroupsError`] naming the line or server: a group or server id or weight that is not
/// a number, or a membership ZooKeeper's `QuorumHierarchical` refuses ([`Groups::new`]).
pub fn read_groups<'a>(
    lines: impl IntoIterator<Item = (&'a str, &'a str)>,
    servers: &BTreeMap<ServerId, QuorumServer>,
) -> Result<Option<Groups>, GroupsError> {
    // Properties: one value per key, the last.
    let entries: BTreeMap<&str, &str> = lines.into_iter().collect();
    if entries.is_empty() {
        return Ok(None);
    }
    let number = |k: &str, s: &str| {
        s.parse::<i64>().map_err(|_| GroupsError::NotANumber {
            key: k.to_owned(),
            value: s.to_owned(),
        })
    };
    let mut groups: Vec<(i64, Vec<ServerId>)> = Vec::new();
    let mut weights: BTreeMap<ServerId, i64> = BTreeMap::new();
    for (k, v) in entries {
        let id = number(k, k.split_once('.').map_or(k, |(_, n)| n))?;
        if k.starts_with("group") {
            let sids = java_split(v, ':')
                .into_iter()
                .map(|s| number(k, s).map(ServerId))
                .collect::<Result<Vec<_>, _>>()?;
            groups.push((id, sids));
        } else {
            weights.insert(ServerId(id), number(k, v)?);
        }
    }
    let participants = servers
        .values()
        .filter(|s| s.role == PeerRole::Participant)
        .map(|s| s.id);
    Groups::new(&groups, &weights, participants).map(Some)
}

/// The hierarchical quorums of a membership's properties text (zoo.cfg, a dynamic file,
/// a reconfig's member list, `/zookeeper/config`): its `group*` / `weight*` entries with
/// their values untrimmed, read by [`read_groups`] for the members `servers`.
///
/// # Errors
/// As [`read_groups`].
pub fn groups_of_text(
    text: &str,
    servers: &BTreeMap<ServerId, QuorumServer>,
) -> Result<Option<Groups>, GroupsError> {
    let entries = crate::config::parse_properties_untrimmed(text);
    let lines = entries
        .iter()
        .filter(|(k, _)| crate::config::is_group_key(k))
        .map(|(k, v)| (k.as_str(), v.as_str()));
    read_groups(lines, servers)
}

/// Java's `String.split(sep)` for a one-character separator: the pieces, trailing empty
/// ones dropped (`"a:b:"` is `a`, `b`; `":"` is none), and the whole text when the
/// separator does not occur (`""` is one empty piece).
fn java_split(s: &str, sep: char) -> Vec<&str> {
    if !s.contains(sep) {
        return vec![s];
    }
    let mut pieces: Vec<&str> = s.split(sep).collect();
    while pieces.last().is_some_and(|p| p.is_empty()) {
        pieces.pop();
    }
    pieces
}

/// The iteration order of a `java.util.HashMap<Long, _>` holding `ids` (default initial
/// capacity 16, load factor 0.75); ids in one bucket in ascending order.
fn java_hash_map_order(ids: impl Iterator<Item = ServerId>) -> Vec<ServerId> {
    let mut ids: Vec<ServerId> = ids.collect();
    ids.sort_unstable();
    let mut cap: usize = 16;
    while ids.len() * 4 > cap * 3 {
        cap *= 2;
    }
    let bucket = |id: ServerId| {
        // Long.hashCode: (int)(v ^ (v >>> 32)); HashMap.hash: h ^ (h >>> 16). The shift
        // is unsigned (`>>>`), so on the id's bits as u64.
        let v = id.0 as u64;
        let h = (v ^ (v >> 32)) as u32;
        let spread = h ^ (h >> 16);
        spread as usize & (cap - 1)
    };
    ids.sort_by_key(|&id| (bucket(id), id));
    ids
}

/// The version a dynamic configuration file's name carries: the hex number after its
/// last `.` (`zoo.cfg.dynamic.100000000` → 0x100000000), as ZooKeeper's
/// `QuorumPeerConfig.getVersionFromFilename`; `None` when the suffix is not hex (the
/// version is then 0).
pub fn version_from_filename(name: &str) -> Option<Zxid> {
    let (_, suffix) = name.rsplit_once('.')?;
    // Long.parseLong(s, 16): an optional sign, then hex digits; rzk takes non-negative
    // versions only.
    let digits = suffix.strip_prefix('+').unwrap_or(suffix);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(digits, 16)
        .ok()
        .and_then(|v| i64::try_from(v).ok())
        .map(Zxid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qs(id: i64, host: &str, role: PeerRole, client: Option<(&str, u16)>) -> QuorumServer {
        QuorumServer {
            id: ServerId(id),
            host: host.into(),
            quorum_port: 2888 + id as u16,
            election_port: 3888 + id as u16,
            role,
            client_addr: client.map(|(h, p)| (h.to_owned(), p)),
        }
    }

    #[test]
    fn text_as_zookeeper_writes_it() {
        let mut m = BTreeMap::new();
        m.insert(ServerId(1), qs(1, "127.0.0.1", PeerRole::Participant, None));
        m.insert(
            ServerId(2),
            qs(
                2,
                "127.0.0.1",
                PeerRole::Participant,
                Some(("127.0.0.1", 2182)),
            ),
        );
        m.insert(
            ServerId(3),
            qs(3, "::1", PeerRole::Observer, Some(("0.0.0.0", 2183))),
        );
        assert_eq!(
            membership_text(&m, None, Zxid::new(1, 0)),
            "server.1=127.0.0.1:2889:3889:participant\n\
             server.2=127.0.0.1:2890:3890:participant;127.0.0.1:2182\n\
             server.3=[::1]:2891:3891:observer;0.0.0.0:2183\n\
             version=100000000"
        );
        assert_eq!(
            membership_text(&BTreeMap::new(), None, Zxid::ZERO),
            "version=0"
        );
    }

    #[test]
    fn java_hash_map_order_by_bucket() {
        let order = |ids: &[i64]| -> Vec<i64> {
            java_hash_map_order(ids.iter().map(|&i| ServerId(i)))
                .into_iter()
                .map(|id| id.0)
                .collect()
        };
        assert_eq!(order(&[3, 1, 2]), vec![1, 2, 3]);
        // 17 shares bucket 1 with 1 in a 16-slot table.
        assert_eq!(order(&[1, 2, 17]), vec![1, 17, 2]);
        // 13 members: the table has grown to 32 slots, 17 has a bucket of its own.
        let ids: Vec<i64> = (1..=12).chain([17]).collect();
        assert_eq!(order(&ids), ids);
    }

    #[test]
    fn versions_from_file_names() {
        assert_eq!(
            version_from_filename("zoo.cfg.dynamic.100000000"),
            Some(Zxid::new(1, 0))
        );
        assert_eq!(
            version_from_filename("/a/zoo.cfg.dynamic.0"),
            Some(Zxid::ZERO)
        );
        assert_eq!(
            version_from_filename("x.7fffffffffffffff"),
            Some(Zxid(i64::MAX))
        );
        assert_eq!(version_from_filename("zoo.cfg.dynamic"), None);
        assert_eq!(version_from_filename("dynamic"), None);
        assert_eq!(version_from_filename("x.ffffffffffffffff"), None);
    }

    #[test]
    fn group_lines_read_as_zookeeper_reads_them() {
        let servers: BTreeMap<ServerId, QuorumServer> = (1..=3)
            .map(|i| {
                let s = crate::config::parse_server_line(
                    &format!("server.{i}"),
                    &format!("127.0.0.1:{}:{}", 2000 + i, 3000 + i),
                )
                .expect("server line");
                (s.id, s)
            })
            .collect();
        let read = |lines: &[(&str, &str)]| read_groups(lines.iter().copied(), &servers);
        // Java's split drops a trailing empty piece.
        let g = read(&[("group.1", "1:2:3:")])
            .expect("trailing colon")
            .expect("groups");
        assert_eq!(g.group_lines().get(&1).map(Vec::len), Some(3));
        // Long.parseLong takes no space (Properties keeps a value's trailing whitespace).
        for bad in ["1:2:3 ", "1: 2:3", " 1:2:3", "1::2:3"] {
            assert!(read(&[("group.1", bad)]).is_err(), "{bad:?}");
        }
        assert!(read(&[("group.1", "1:2:3"), ("weight.1", "2 ")]).is_err());
        assert!(read(&[("group.1", "1:2:3"), ("weight.1", "+2")]).is_ok());
        // Two keys naming group 1 count as two groups, merged: nothing is ever a quorum
        // of two groups when only one has members (as ZooKeeper, which never elects).
        let g = read(&[("group.1", "1:2"), ("group.01", "3")])
            .expect("two keys")
            .expect("g");
        let q = crate::zab::quorum::QuorumVerifier::with_groups(
            &[ServerId(1), ServerId(2), ServerId(3)],
            &[],
            Some(&g),
        );
        assert!(!q.has_quorum([ServerId(1), ServerId(2), ServerId(3)]));
        // One key given twice: the last value counts.
        assert!(read(&[("group.1", "1"), ("group.1", "1:2:3")]).is_ok());
        assert_eq!(read(&[]), Ok(None));
    }
}
