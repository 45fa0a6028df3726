//! Reconfig in the core: the two-quorum rule while a reconfig is outstanding,
//! COMMITANDACTIVATE / INFORMANDACTIVATE, the membership each server puts in force, and
//! who goes back to election (ZooKeeper 3.8's Leader / Follower / Observer).

use super::*;
use crate::zab::leader::activate_data;
use crate::zab::types::NewConfig;

/// Test payloads `reconfig v=1,2,3 o=4`: the membership such a txn installs.
fn test_reconfig_of(t: &Txn) -> Option<NewConfig> {
    let s = std::str::from_utf8(&t.payload).ok()?;
    let rest = s.strip_prefix("reconfig ")?;
    let ids = |key: &str| -> Vec<ServerId> {
        rest.split(' ')
            .find_map(|p| p.strip_prefix(key))
            .map(|l| {
                l.split(',')
                    .filter_map(|n| n.parse().ok())
                    .map(ServerId)
                    .collect()
            })
            .unwrap_or_default()
    };
    Some(NewConfig {
        voters: ids("v="),
        observers: ids("o="),
        groups: None,
        version: t.zxid,
        text: format!("{s} version={:x}", t.zxid.0),
    })
}

/// The membership text `reconfig v=1,2,3 o=4 version=<hex>` (what the activated test
/// configs carry in notifications and NEWLEADER).
fn test_config_of_text(text: &str) -> Option<NewConfig> {
    let (body, version) = text.rsplit_once(" version=")?;
    let zxid = i64::from_str_radix(version, 16).ok()?;
    let t = Txn {
        zxid: Zxid(zxid),
        payload: Bytes::from(body.to_owned()),
    };
    test_reconfig_of(&t)
}

fn with_reconfig(c: &mut Cluster) {
    for cfg in c.cfgs.values_mut() {
        cfg.reconfig_of = test_reconfig_of;
        cfg.config_of_text = test_config_of_text;
    }
}

fn propose(c: &mut Cluster, payload: &str) -> Zxid {
    let l = c.leader().expect("a leader");
    let z = c.nodes[&l].zab.next_zxid().expect("may propose");
    c.input(
        l,
        Input::Propose {
            zxid: z,
            payload: Bytes::from(payload.to_owned()),
        },
    );
    z
}

fn settled(voters: &[ServerId], observers: &[ServerId]) -> Cluster {
    let mut c = Cluster::new(voters, observers);
    with_reconfig(&mut c);
    c.start_all_fresh();
    c.advance(3000);
    assert!(c.all_serving());
    c
}

#[test]
fn removed_server_that_missed_its_re_add_learns_it_from_notifications() {
    let mut c = settled(&[S1, S2, S3], &[]);
    assert_eq!(c.leader(), Some(S3));
    let out = propose(&mut c, "reconfig v=2,3");
    c.advance(2000);
    assert!(c.applied_zxids(S1).contains(&out));
    assert_eq!(
        c.role(S1),
        Role::Following,
        "removed: follows without a vote"
    );
    // 1 is cut off while the reconfig adding it back commits with 2 and 3.
    c.isolated.insert(S1);
    let back = propose(&mut c, "reconfig v=1,2,3");
    c.advance(500);
    assert!(c.applied_zxids(S3).contains(&back));
    assert!(!c.applied_zxids(S1).contains(&back));
    // Back in touch: still a non-member in its own view; the notifications' newer
    // membership makes it a voter again.
    c.isolated.remove(&S1);
    c.advance(5000);
    assert_eq!(c.role(S1), Role::Following);
    assert!(c.applied_zxids(S1).contains(&back));
    let z = c.write(1)[0];
    c.advance(200);
    assert!(c.applied_zxids(S1).contains(&z));
}

#[test]
fn removed_follower_stays_without_a_vote_and_the_rest_commit_with_the_new_quorum() {
    let mut c = settled(&[S1, S2, S3], &[]);
    assert_eq!(c.leader(), Some(S3));
    c.write(2);
    let joins = |c: &Cluster| {
        c.packets(PacketType::FollowerInfo)
            .iter()
            .filter(|(from, _, _)| *from == S1)
            .count()
    };
    let joined = joins(&c);
    let rz = propose(&mut c, "reconfig v=2,3");
    c.advance(200);
    // Followers get COMMITANDACTIVATE naming the designated leader, never a plain COMMIT.
    let cas = c.packets(PacketType::CommitAndActivate);
    assert_eq!(cas.len(), 2, "{cas:?}");
    for (from, _, p) in &cas {
        assert_eq!(*from, S3);
        assert_eq!(Zxid(p.zxid), rz);
        assert_eq!(p.data(), &activate_data(S3, &[])[..]);
    }
    assert!(c
        .packets(PacketType::Commit)
        .iter()
        .all(|(_, _, p)| Zxid(p.zxid) != rz));
    // Every member applied the reconfig.
    for s in [S1, S2, S3] {
        assert!(c.applied_zxids(s).contains(&rz), "{s} applied the reconfig");
    }
    // 1 is no member now: it keeps following without a vote (its learner type stays
    // participant, as in ZooKeeper's processReconfig), so it is still a replica but its
    // ACKs count for no quorum.
    c.advance(2000);
    assert_eq!(c.role(S1), Role::Following);
    assert_eq!(c.role(S2), Role::Following);
    assert_eq!(c.leader(), Some(S3));
    assert_eq!(joins(&c), joined, "1 left its leader and joined again");
    // Writes go on with {2,3}, and need both of them now: without 2 nothing commits.
    let z = c.write(1)[0];
    c.advance(200);
    assert!(c.applied_zxids(S2).contains(&z));
    c.isolated.insert(S2);
    let z = c.write(1)[0];
    c.advance(200);
    assert!(
        !c.applied_zxids(S3).contains(&z),
        "1 voter of 2 is no quorum"
    );
}

#[test]
fn outstanding_reconfig_needs_a_quorum_of_the_new_membership_too() {
    let mut c = settled(&[S1, S2, S3], &[]);
    // {3,4,5}: 4 and 5 do not run, so only the leader acks for the new membership;
    // the old quorum {1,2,3} acks, and still nothing from the reconfig on commits.
    let before = c.write(1)[0];
    let rz = propose(&mut c, "reconfig v=3,4,5");
    let after = c.write(1)[0];
    c.advance(1000);
    let applied = c.applied_zxids(S3);
    assert!(applied.contains(&before));
    assert!(
        !applied.contains(&rz),
        "reconfig committed without a new quorum"
    );
    assert!(
        !applied.contains(&after),
        "a later txn committed without a new quorum"
    );
    assert!(c.packets(PacketType::CommitAndActivate).is_empty());
}

/// {1,2,3} elected 3, then 4 started with the membership {1,2,3,4} (as ZooKeeper's docs
/// say to start a server to be added) and follows without a vote.
fn with_a_non_member_following() -> Cluster {
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    c.cfgs.insert(S4, cfg(S4, &[S1, S2, S3, S4], &[]));
    with_reconfig(&mut c);
    for s in [S1, S2, S3] {
        c.start(s, 0, 0, Vec::new());
    }
    c.advance(3000);
    c.start(S4, 0, 0, Vec::new());
    c.advance(3000);
    c
}

#[test]
fn a_non_member_follows_and_becomes_a_voter() {
    let mut c = with_a_non_member_following();
    assert_eq!(
        c.role(S4),
        Role::Following,
        "a non-member follows the leader"
    );
    assert_eq!(c.nodes[&S4].zab.leader(), Some(S3));
    let rz = propose(&mut c, "reconfig v=1,2,3,4");
    c.advance(300);
    for s in [S1, S2, S3, S4] {
        assert!(c.applied_zxids(s).contains(&rz), "{s} applied the reconfig");
        assert_ne!(c.role(s), Role::Looking, "{s} stays in its role");
    }
    // 4 voters: a quorum is 3, and 4's ACK counts. Without 1 and 2 nothing commits,
    // without 1 only, {2,3,4} commits.
    c.isolated.insert(S1);
    let z = c.write(1)[0];
    c.advance(300);
    assert!(
        c.applied_zxids(S4).contains(&z),
        "{{2,3,4}} is a quorum of 4 voters"
    );
    c.isolated.insert(S2);
    let z = c.write(1)[0];
    c.advance(300);
    assert!(
        !c.applied_zxids(S3).contains(&z),
        "{{3,4}} is no quorum of 4 voters"
    );
}

#[test]
fn observers_get_inform_and_activate() {
    let mut c = settled(&[S1, S2, S3], &[S4]);
    let rz = propose(&mut c, "reconfig v=1,2,3 o=4,5");
    c.advance(300);
    let ia = c.packets(PacketType::InformAndActivate);
    assert_eq!(ia.len(), 1, "{ia:?}");
    let (_, to, p) = &ia[0];
    assert_eq!(*to, S4);
    assert_eq!(&p.data()[..8], &S3.0.to_be_bytes());
    assert!(p.data()[8..].starts_with(b"reconfig v=1,2,3 o=4,5"));
    assert!(c.applied_zxids(S4).contains(&rz));
    assert_eq!(
        c.role(S4),
        Role::Observing,
        "membership kept: no re-election"
    );
}

#[test]
fn leader_outside_the_new_membership_designates_a_voter_and_steps_down() {
    let mut c = settled(&[S1, S2, S3], &[]);
    let rz = propose(&mut c, "reconfig v=1,2");
    c.advance(100);
    let cas = c.packets(PacketType::CommitAndActivate);
    assert!(!cas.is_empty());
    let designated = i64::from_be_bytes(cas[0].2.data()[..8].try_into().unwrap());
    assert!([1, 2].contains(&designated), "designated {designated}");
    assert!(c.applied_zxids(S3).contains(&rz));
    c.advance(5000);
    let l = c.leader().expect("a leader of the new membership");
    assert!([S1, S2].contains(&l), "leader {l}");
}

/// Servers that sent a LOOKING notification among the first `from` trace entries on:
/// who went through an election since.
fn looking_since(c: &Cluster, from: usize) -> BTreeSet<ServerId> {
    c.trace[from..]
        .iter()
        .filter_map(|(f, _, m)| match m {
            Message::Election(n) if n.state == ServerState::Looking => Some(*f),
            _ => None,
        })
        .collect()
}

#[test]
fn a_replaced_leader_hands_over_to_the_designated_one_without_an_election() {
    let mut c = settled(&[S1, S2, S3], &[]);
    assert_eq!(c.leader(), Some(S3));
    let mark = c.trace.len();
    let rz = propose(&mut c, "reconfig v=1,2");
    c.advance(3000);
    // Both 1 and 2 acked; ZooKeeper's getDesignatedLeader takes the first of them as a
    // Java HashSet iterates: 1.
    let cas = c.packets(PacketType::CommitAndActivate);
    assert_eq!(&cas[0].2.data()[..8], &S1.0.to_be_bytes());
    assert_eq!(c.leader(), Some(S1));
    for s in [S2, S3] {
        assert_eq!(c.role(s), Role::Following, "{s}");
        assert_eq!(
            c.nodes[&s].zab.leader(),
            Some(S1),
            "{s} follows the designated leader"
        );
        assert!(c.applied_zxids(s).contains(&rz));
    }
    assert!(
        looking_since(&c, mark).is_empty(),
        "no election: {:?} went LOOKING",
        looking_since(&c, mark)
    );
    let z = c.write(1)[0];
    c.advance(300);
    for s in [S1, S2, S3] {
        assert!(
            c.applied_zxids(s).contains(&z),
            "{s} applied a write of the new term"
        );
    }
}

#[test]
fn a_replaced_leader_commits_nothing_after_the_reconfig_and_the_designated_one_does() {
    let mut c = settled(&[S1, S2, S3], &[]);
    assert_eq!(c.leader(), Some(S3));
    // The reconfig and a write right behind it, both on their way before any ACK.
    let rz = propose(&mut c, "reconfig v=1,2");
    let w = c.write(1)[0];
    c.advance(3000);
    let commits_of_w = c
        .packets(PacketType::Commit)
        .into_iter()
        .filter(|(f, _, p)| *f == S3 && p.zxid == w.0)
        .count();
    assert_eq!(
        commits_of_w, 0,
        "the replaced leader committed a proposal after the reconfig (allowedToCommit)"
    );
    assert_eq!(c.leader(), Some(S1));
    for s in [S1, S2, S3] {
        let applied = c.applied_zxids(s);
        assert!(applied.contains(&rz), "{s}");
        assert!(
            applied.contains(&w),
            "{s}: the designated leader, which acked it, commits the write"
        );
    }
}

#[test]
fn a_follower_made_an_observer_observes_the_same_leader_without_an_election() {
    let mut c = settled(&[S1, S2, S3, S4], &[]);
    assert_eq!(c.leader(), Some(S4));
    let mark = c.trace.len();
    let rz = propose(&mut c, "reconfig v=2,3,4 o=1");
    c.advance(3000);
    assert_eq!(c.leader(), Some(S4), "the leader stays");
    assert_eq!(c.role(S1), Role::Observing);
    assert_eq!(c.nodes[&S1].zab.leader(), Some(S4));
    assert!(c.all_serving());
    assert!(c.applied_zxids(S1).contains(&rz));
    assert!(
        looking_since(&c, mark).is_empty(),
        "no election: {:?} went LOOKING",
        looking_since(&c, mark)
    );
    let infos: Vec<_> = c.trace[mark..]
        .iter()
        .filter(|(f, _, m)| {
            *f == S1 && matches!(m, Message::Quorum(p) if p.ty == PacketType::ObserverInfo)
        })
        .collect();
    assert_eq!(infos.len(), 1, "rejoined once, as an observer");
}

/// Proposes `payload` on the leader and lets only that go out: the followers log the
/// PROPOSAL and ACK it; then the leader dies (kill -9) before any ACK reaches it, so
/// nothing commits the reconfig. Returns the proposal's zxid.
fn propose_then_leader_dies(c: &mut Cluster, payload: &str) -> Zxid {
    let l = c.leader().expect("a leader");
    let z = propose(c, payload);
    let sent: Vec<_> = c.queue.drain(..).collect();
    for (from, to, w) in sent {
        if let Wire::Msg(msg) = w {
            if from == l {
                c.input(to, Input::Message { from, msg });
            }
        }
    }
    c.crash(l);
    z
}

#[test]
fn a_reconfig_acked_but_not_committed_completes_under_the_next_leader() {
    let mut c = settled(&[S1, S2, S3], &[]);
    assert_eq!(c.leader(), Some(S3));
    c.write(2);
    c.advance(200);
    let rz = propose_then_leader_dies(&mut c, "reconfig v=1,2");
    for s in [S1, S2] {
        assert!(
            c.nodes[&s].log.iter().any(|t| t.zxid == rz),
            "{s} logged the reconfig"
        );
        assert!(!c.applied_zxids(s).contains(&rz));
    }
    // The survivors elect 2, whose last seen membership is {1,2}: it carries it in
    // NEWLEADER, needs both quorums, and puts it in force once established, as
    // ZooKeeper's Leader.lead does (ZOOKEEPER-1324).
    c.advance(5000);
    assert_eq!(c.leader(), Some(S2));
    for s in [S1, S2] {
        assert!(c.applied_zxids(s).contains(&rz));
        assert_eq!(c.nodes[&s].zab.membership(), (rz, vec![S1, S2]), "{s}");
    }
}

#[test]
fn an_election_while_a_reconfig_is_pending_needs_a_quorum_of_both_memberships() {
    let mut c = settled(&[S1, S2, S3], &[]);
    assert_eq!(c.leader(), Some(S3));
    c.write(2);
    c.advance(200);
    // {1,2,4,5}: 4 and 5 are not running. 1 and 2 log the proposal, 3 dies.
    let rz = propose_then_leader_dies(&mut c, "reconfig v=1,2,4,5");
    // {1,2} is a quorum of {1,2,3} but not of {1,2,4,5}: as ZooKeeper's getVoteTracker,
    // nobody may take the lead (rzk used to elect 2, which then failed to establish).
    for _ in 0..100 {
        c.advance(50);
        for s in [S1, S2] {
            assert_eq!(
                c.role(s),
                Role::Looking,
                "{s} left election without a quorum of the proposed membership"
            );
        }
    }
    // 4 starts (with the proposed membership, as a new server is started): its vote is
    // counted by 1 and 2, {1,2,4} is a quorum of both, and 2's NEWLEADER completes the
    // reconfig.
    c.cfgs.insert(S4, cfg(S4, &[S1, S2, S4, S5], &[]));
    with_reconfig(&mut c);
    c.start(S4, 0, 0, Vec::new());
    c.advance(1500);
    assert_eq!(c.leader(), Some(S2));
    for s in [S1, S2, S4] {
        assert!(c.applied_zxids(s).contains(&rz), "{s} applied the reconfig");
        assert_eq!(
            c.nodes[&s].zab.membership(),
            (rz, vec![S1, S2, S4, S5]),
            "{s}"
        );
    }
    // 4 gained its vote at UPTODATE: it stays a participant and keeps following, as
    // ZooKeeper's learners do (going back to election there left 2 without a quorum of
    // {1,2,4,5} and took a second election).
    for _ in 0..60 {
        c.advance(50);
        assert_eq!(c.leader(), Some(S2));
        for s in [S1, S4] {
            assert_eq!(
                c.role(s),
                Role::Following,
                "{s} left its leader after the sync"
            );
        }
    }
    for (s, before) in [(S1, 1), (S2, 1), (S4, 0)] {
        assert_eq!(
            c.nodes[&s].established.len(),
            before + 1,
            "{s} went through one election after 4 started: epochs {:?}",
            c.nodes[&s].established
        );
    }
}

#[test]
fn a_leader_steps_down_without_a_synced_quorum_of_the_proposed_membership() {
    // 4 follows without a vote; a reconfig {3,4,5} is proposed and stays pending (the
    // followers' disks are held: no ACKs). Then 4 dies: {1,2,3} is still a synced quorum
    // of the membership in force but 3 alone is none of {3,4,5}, and ZooKeeper's leader
    // gives up then ("Not sufficient followers synced").
    let mut c = with_a_non_member_following();
    assert_eq!(c.leader(), Some(S3));
    assert_eq!(c.role(S4), Role::Following);
    for s in [S1, S2, S4] {
        c.nodes.get_mut(&s).expect("running").hold_disk = true;
    }
    let z = propose(&mut c, "reconfig v=3,4,5");
    c.advance(1000);
    assert!(
        !c.applied_zxids(S3).contains(&z),
        "nothing acked the reconfig"
    );
    assert_eq!(
        c.role(S3),
        Role::Leading,
        "{{3,4}} is a synced quorum of {{3,4,5}}"
    );
    c.crash(S4);
    c.advance(3000);
    assert_ne!(
        c.role(S3),
        Role::Leading,
        "3 led on without a synced quorum of {{3,4,5}}"
    );
}

#[test]
fn a_follower_that_loses_its_vote_at_uptodate_keeps_following() {
    let mut c = settled(&[S1, S2, S3, S4], &[]);
    assert_eq!(c.leader(), Some(S4));
    c.write(2);
    c.advance(200);
    // {2,3,4} (1 removed) is proposed and logged by 1, 2 and 3; the leader 4 dies before
    // any ACK reaches it.
    let rz = propose_then_leader_dies(&mut c, "reconfig v=2,3,4");
    let joins = |c: &Cluster, s: ServerId| {
        c.packets(PacketType::FollowerInfo)
            .iter()
            .filter(|(from, _, _)| *from == s)
            .count()
    };
    let before: Vec<usize> = [S1, S2].iter().map(|s| joins(&c, *s)).collect();
    // {1,2,3} is a quorum of both memberships and elects 3, a voter of both, whose
    // NEWLEADER puts {2,3,4} in force at UPTODATE. 1 loses its vote there: as
    // ZooKeeper's learner (its learner type stays participant, its leader is a voter of
    // both) it keeps following; going back to election cost it a second one.
    c.advance(3000);
    assert_eq!(c.leader(), Some(S3));
    for s in [S1, S2, S3] {
        assert!(c.applied_zxids(s).contains(&rz), "{s} applied the reconfig");
        assert_eq!(c.nodes[&s].zab.membership(), (rz, vec![S2, S3, S4]), "{s}");
    }
    for (i, s) in [S1, S2].into_iter().enumerate() {
        assert_eq!(
            joins(&c, s),
            before[i] + 1,
            "{s} joined the new leader more than once"
        );
    }
    assert_eq!(c.role(S1), Role::Following);
}

#[test]
fn a_server_restarted_between_ack_and_commit_completes_the_reconfig_from_its_next_file() {
    let mut c = settled(&[S1, S2, S3], &[]);
    c.write(2);
    c.advance(200);
    let rz = propose_then_leader_dies(&mut c, "reconfig v=1,2");
    // 1 and 2 crash too before electing anyone. 2 restarts with what its
    // zoo.cfg.dynamic.next held (the runtime reads it as the last seen membership),
    // 1 without one.
    let logs: BTreeMap<ServerId, Vec<Txn>> = [S1, S2]
        .into_iter()
        .map(|s| (s, c.nodes[&s].log.clone()))
        .collect();
    let epochs: BTreeMap<ServerId, (u32, u32)> = [S1, S2]
        .into_iter()
        .map(|s| (s, (c.nodes[&s].accepted, c.nodes[&s].current)))
        .collect();
    c.crash(S1);
    c.crash(S2);
    let next = logs[&S2]
        .iter()
        .find(|t| t.zxid == rz)
        .and_then(test_reconfig_of)
        .expect("the reconfig in 2's log");
    c.cfgs.get_mut(&S2).expect("cfg of 2").last_seen = Some(next);
    for s in [S1, S2] {
        let (a, cur) = epochs[&s];
        c.start(s, a, cur, logs[&s].clone());
    }
    c.advance(5000);
    assert_eq!(c.leader(), Some(S2));
    for s in [S1, S2] {
        assert!(c.applied_zxids(s).contains(&rz));
        assert_eq!(c.nodes[&s].zab.membership(), (rz, vec![S1, S2]), "{s}");
    }
    // The new membership's quorum is both: without 1 nothing commits.
    c.isolated.insert(S1);
    let z = c.write(1)[0];
    c.advance(500);
    assert!(
        !c.applied_zxids(S2).contains(&z),
        "1 voter of {{1,2}} is no quorum"
    );
}

/// Test membership readability: `reconfig hier ...` payloads stand for a membership
/// with hierarchical quorum lines, which rzk cannot put in force.
fn test_unreadable(t: &Txn) -> Option<String> {
    t.payload
        .starts_with(b"reconfig hier")
        .then(|| "group.1=1:2:3: hierarchical quorums are not supported".to_owned())
}

/// A reconfig to a membership a learner cannot put in force (found by a break-it
/// review, session 41: a ZooKeeper leader's reconfig to hierarchical quorums was
/// acknowledged by rzk followers, which then kept counting plain majorities and formed a
/// second leader beside ZooKeeper's). The learners now neither log nor acknowledge it
/// and ask the runtime to stop (`Output::Unsupported`), so it never commits.
#[test]
fn learners_stop_rather_than_acknowledge_a_membership_they_cannot_follow() {
    let mut c = Cluster::new(&[S1, S2, S3], &[]);
    with_reconfig(&mut c);
    for s in [S1, S2] {
        c.cfgs.get_mut(&s).unwrap().unreadable_reconfig = test_unreadable;
    }
    c.start_all_fresh();
    c.advance(3000);
    assert!(c.all_serving());
    assert_eq!(c.leader(), Some(S3));
    let before = c.write(1)[0];
    c.advance(200);
    let rz = propose(&mut c, "reconfig hier v=1,2,3");
    c.advance(2000);
    for s in [S1, S2] {
        let n = &c.nodes[&s];
        assert!(
            n.unsupported.iter().any(|w| w.contains("group.1")),
            "{s} did not stop: {:?}",
            n.unsupported
        );
        assert!(n.log.iter().all(|t| t.zxid != rz), "{s} logged it");
        assert!(c.applied_zxids(s).contains(&before));
    }
    let acks: Vec<_> = c
        .packets(PacketType::Ack)
        .into_iter()
        .filter(|(_, _, p)| Zxid(p.zxid) == rz)
        .collect();
    assert!(acks.is_empty(), "acknowledged: {acks:?}");
    for s in [S1, S2, S3] {
        assert!(!c.applied_zxids(s).contains(&rz), "{s} committed it");
    }
}
