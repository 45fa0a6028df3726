//! The reconfig request's checks, one per ZooKeeper error, and the memberships it builds.

use super::*;

const ZXID: Zxid = Zxid(0x1_0000_0005);

fn qs(id: i64, role: PeerRole, client: Option<u16>) -> QuorumServer {
    QuorumServer {
        id: ServerId(id),
        host: "127.0.0.1".into(),
        quorum_port: 24000 + id as u16,
        election_port: 24100 + id as u16,
        role,
        client_addr: client.map(|p| ("127.0.0.1".to_owned(), p)),
    }
}

fn three() -> Membership {
    Membership {
        servers: (1..=3)
            .map(|id| {
                (
                    ServerId(id),
                    qs(id, PeerRole::Participant, Some(24200 + id as u16)),
                )
            })
            .collect(),
        groups: None,
        version: Zxid::new(1, 0),
    }
}

/// The set of server ids `v`.
fn ids(v: &[i64]) -> BTreeSet<ServerId> {
    v.iter().map(|&i| ServerId(i)).collect()
}

struct H {
    last: Membership,
    committed: Zxid,
    synced: BTreeSet<ServerId>,
    enabled: bool,
    standalone_enabled: bool,
    leader: bool,
    acl: Vec<Acl>,
    auth: AuthInfo,
}

impl H {
    fn new() -> H {
        let last = three();
        H {
            committed: last.version,
            last,
            synced: ids(&[2, 3]),
            enabled: true,
            standalone_enabled: true,
            leader: true,
            acl: vec![Acl::new(perms::READ, "world", "anyone")],
            auth: AuthInfo::superuser(),
        }
    }
    fn run(
        &self,
        joining: &str,
        leaving: &str,
        members: &str,
        from: i64,
    ) -> Result<Membership, RefusedReconfig> {
        let view = LeaderView {
            reconfig_enabled: self.enabled,
            standalone_enabled: self.standalone_enabled,
            quorum_leader: self.leader,
            committed_version: self.committed,
            last_seen: &self.last,
            my_id: ServerId(1),
            synced_followers: &self.synced,
        };
        let req = ReconfigRequest {
            joining_servers: joining.into(),
            leaving_servers: leaving.into(),
            new_members: members.into(),
            cur_config_id: from,
        };
        prepare(&view, &req, &self.acl, &self.auth, ZXID)
    }
    fn code(&self, joining: &str, leaving: &str, members: &str, from: i64) -> ErrorCode {
        match self.run(joining, leaving, members, from) {
            Ok(m) => panic!("accepted: {m:?}"),
            Err(e) => e.code(),
        }
    }
}

const JOIN4: &str = "server.4=127.0.0.1:24004:24104:participant;127.0.0.1:24204";

#[test]
fn remove_and_add_a_follower() {
    let h = H::new();
    let m = h.run("", "3", "", -1).expect("remove 3");
    assert_eq!(m.voters(), ids(&[1, 2]));
    assert_eq!(m.version, ZXID);
    assert_eq!(
        m.text(),
        "server.1=127.0.0.1:24001:24101:participant;127.0.0.1:24201\n\
         server.2=127.0.0.1:24002:24102:participant;127.0.0.1:24202\n\
         version=100000005"
    );
    let m = h.run(JOIN4, "", "", 0x1_0000_0000).expect("add 4");
    assert_eq!(m.voters(), ids(&[1, 2, 3, 4]));
    assert_eq!(
        m.servers[&ServerId(4)],
        qs(4, PeerRole::Participant, Some(24204))
    );
    // Several joiners and leavers, spaces around the separators, an observer.
    let m = h
        .run(
            &format!("{JOIN4} , server.5=127.0.0.1:24005:24105:observer;24205"),
            " 2 ,",
            "",
            -1,
        )
        .expect("mixed");
    assert_eq!(m.voters(), ids(&[1, 3, 4]));
    assert_eq!(m.observers(), ids(&[5]));
    assert_eq!(
        m.servers[&ServerId(5)].client_addr,
        Some(("0.0.0.0".into(), 24205))
    );
    // A joiner with the id of a member replaces it (here: participant -> observer).
    let m = h
        .run("server.3=127.0.0.1:24003:24103:observer;24203", "", "", -1)
        .expect("role change");
    assert_eq!(m.observers(), ids(&[3]));
}

#[test]
fn non_incremental_members() {
    let h = H::new();
    let m = h
        .run(
            "",
            "",
            "server.1=127.0.0.1:24001:24101:participant;24201,\
             server.2=127.0.0.1:24002:24102;24202\nserver.3=127.0.0.1:24003:24103",
            -1,
        )
        .expect("new members");
    assert_eq!(m.voters(), ids(&[1, 2, 3]));
    // No client port is needed here (only for incremental joiners).
    assert_eq!(m.servers[&ServerId(3)].client_addr, None);
    assert_eq!(
        h.code("", "", "server.1=127.0.0.1:24001:24101,foo=bar", -1),
        ErrorCode::BadArguments
    );
    // Hierarchical quorums: a grouped server without a weight fails unchecked in
    // ZooKeeper (MARSHALLINGERROR), a voter in no group is its ConfigException.
    assert_eq!(
        h.code("", "", "server.1=127.0.0.1:24001:24101,group.1=1:2", -1),
        ErrorCode::MarshallingError
    );
    let three_lines = "server.1=127.0.0.1:24001:24101,server.2=127.0.0.1:24002:24102,\
                       server.3=127.0.0.1:24003:24103";
    assert_eq!(
        h.code("", "", &format!("{three_lines},group.1=1:2"), -1),
        ErrorCode::BadArguments
    );
    let m = h
        .run(
            "",
            "",
            &format!("{three_lines},group.1=1:2,group.2=3,weight.2=0"),
            -1,
        )
        .expect("hierarchical members");
    let groups = m.groups.as_ref().expect("groups");
    assert_eq!(groups.group_lines().len(), 2);
    assert!(m
        .text()
        .contains("group.1=1:2\ngroup.2=3\nweight.1=1\nweight.2=0\nweight.3=1\n"));
    // From a hierarchical membership, only a non-incremental reconfig is possible.
    let mut hh = H::new();
    hh.committed = m.version;
    hh.last = m;
    assert_eq!(hh.code("", "3", "", -1), ErrorCode::BadArguments);
    // The synced quorum is counted by the new membership's groups: with server 3 alone
    // in its group, the leader and follower 2 (a plain majority) are not enough.
    let mut h2 = H::new();
    h2.synced = ids(&[2]);
    let grouped = format!("{three_lines},group.1=1:2,group.2=3");
    assert_eq!(h2.code("", "", &grouped, -1), ErrorCode::NewConfigNoQuorum);
    h2.synced = ids(&[2, 3]);
    assert!(h2.run("", "", &grouped, -1).is_ok());
    assert_eq!(
        h.code("", "", "server.x=127.0.0.1:24001:24101", -1),
        ErrorCode::MarshallingError
    );
    // One voter and an observer: ZooKeeper's parseDynamicConfig throws.
    assert_eq!(
        h.code(
            "",
            "",
            "server.1=127.0.0.1:24001:24101,server.2=127.0.0.1:24002:24102:observer",
            -1
        ),
        ErrorCode::MarshallingError
    );
}

#[test]
fn refusals_in_zookeepers_order() {
    let mut h = H::new();
    h.enabled = false;
    assert_eq!(h.code("", "3", "", 7), ErrorCode::ReconfigDisabled);
    h.enabled = true;
    h.leader = false;
    assert_eq!(h.code("", "3", "", 7), ErrorCode::Unimplemented);
    h.leader = true;
    h.committed = Zxid::new(1, 0);
    h.last.version = Zxid::new(1, 3);
    assert_eq!(h.code("", "3", "", -1), ErrorCode::ReconfigInProgress);
    h.last.version = h.committed;
    // Bad version comes before the ACL check and the argument checks.
    h.auth = AuthInfo::for_ip("127.0.0.1");
    assert_eq!(h.code("", "x", "", 5), ErrorCode::BadVersion);
    assert_eq!(
        h.run("", "3", "", 5),
        Err(RefusedReconfig::BadVersion {
            asked: 5,
            last_seen: Zxid::new(1, 0)
        })
    );
    // The message shows both versions as `0x` and hex, as before the version was typed.
    assert_eq!(
        RefusedReconfig::BadVersion {
            asked: 5,
            last_seen: Zxid::new(1, 0)
        }
        .to_string(),
        "reconfiguration from version 0x5 failed -- last seen version is 0x100000000"
    );
    // Arguments before quorum and ACL.
    assert_eq!(h.code("", "x", "", -1), ErrorCode::MarshallingError);
    assert_eq!(h.code("server.4", "", "", -1), ErrorCode::BadArguments);
    // A port outside 0..=65535: ZooKeeper's InetSocketAddress throws, a marshalling
    // error; a port that is no number is a ConfigException there, BADARGUMENTS.
    for spec in [
        "server.6=127.0.0.46:99999:24106:participant;24006",
        "server.6=127.0.0.46:24006:24106:participant;127.0.0.46:70000",
        "server.6=[::1]:24006:-5;24007",
    ] {
        assert_eq!(
            h.code(spec, "", "", -1),
            ErrorCode::MarshallingError,
            "{spec}"
        );
    }
    assert_eq!(
        h.code("server.6=127.0.0.46:x:24106;24006", "", "", -1),
        ErrorCode::BadArguments
    );
    assert_eq!(
        h.code("server.6=127.0.0.46:99999", "", "", -1),
        ErrorCode::BadArguments,
        "too few parts is found first"
    );
    assert_eq!(
        h.code("server.4=127.0.0.1:24004:24104", "", "", -1),
        ErrorCode::BadArguments,
        "a joiner needs a client port"
    );
    assert_eq!(
        h.code("server.4=127.0.0.1:24004", "", "", -1),
        ErrorCode::BadArguments
    );
    assert_eq!(
        h.code("server.4=127.0.0.1:24004:24004;24204", "", "", -1),
        ErrorCode::BadArguments
    );
    assert_eq!(
        h.code("server.4=127.0.0.1:24004:24104:witness;24204", "", "", -1),
        ErrorCode::BadArguments
    );
    assert_eq!(
        h.code("", "2,3", "", -1),
        ErrorCode::BadArguments,
        "1 voter"
    );
    h.standalone_enabled = false;
    // With standaloneEnabled=false one voter is enough; the ACL still refuses it.
    assert_eq!(h.code("", "2,3", "", -1), ErrorCode::NoAuth);
    h.standalone_enabled = true;
    // Quorum: 3 and 4 are not synced, so {1,2} of {1,2,3,4} is no majority.
    h.synced = ids(&[2]);
    assert_eq!(h.code(JOIN4, "", "", -1), ErrorCode::NewConfigNoQuorum);
    h.synced = ids(&[2, 4]);
    assert_eq!(h.code(JOIN4, "", "", -1), ErrorCode::NoAuth);
    // The leader itself counts only while it is a voter of the new membership.
    h.synced = ids(&[2, 3]);
    assert_eq!(
        h.code("server.1=127.0.0.1:24001:24101:observer;24201", "", "", -1),
        ErrorCode::NoAuth
    );
    h.synced = ids(&[2]);
    assert_eq!(
        h.code("server.1=127.0.0.1:24001:24101:observer;24201", "", "", -1),
        ErrorCode::NewConfigNoQuorum
    );
}

#[test]
fn authorization_by_the_config_nodes_acl() {
    let mut h = H::new();
    h.auth = AuthInfo::for_ip("127.0.0.1");
    assert_eq!(h.code("", "3", "", -1), ErrorCode::NoAuth);
    h.acl = vec![Acl::new(perms::ALL, "ip", "127.0.0.1")];
    assert!(h.run("", "3", "", -1).is_ok());
    h.acl = vec![Acl::new(perms::READ, "world", "anyone")];
    h.auth = AuthInfo::superuser();
    assert!(h.run("", "3", "", -1).is_ok());
}

#[test]
fn duplicate_addresses_outside_loopback() {
    let mut h = H::new();
    for s in h.last.servers.values_mut() {
        s.host = format!("10.0.0.{}", s.id);
        s.client_addr = Some((s.host.clone(), 2181));
    }
    assert_eq!(
        h.code("server.4=10.0.0.2:24002:24104;24204", "", "", -1),
        ErrorCode::BadArguments
    );
    assert_eq!(
        h.code("server.4=10.0.0.4:24004:24104;10.0.0.3:2181", "", "", -1),
        ErrorCode::BadArguments
    );
    // Replacing a member by its own id does not clash with itself.
    assert!(h
        .run(
            "server.3=10.0.0.3:24003:24103:observer;10.0.0.3:2181",
            "",
            "",
            -1
        )
        .is_ok());
    // Loopback addresses are not compared (ZooKeeper's excludedSpecialAddresses).
    let h = H::new();
    assert!(h
        .run("server.4=127.0.0.1:24001:24104;24204", "", "", -1)
        .is_ok());
}
