//! Hierarchical quorums in the core (ZooKeeper's `QuorumHierarchical`): elections and
//! commits count a majority of groups, each by a majority of its weight, and a voter of
//! weight 0 never leads.

use super::*;
use crate::zab::quorum::Groups;

/// A cluster of `voters` whose quorums are `groups` (group id, its servers) and
/// `weights`.
fn grouped(
    voters: &[ServerId],
    groups: &[(i64, &[ServerId])],
    weights: &[(ServerId, i64)],
) -> Cluster {
    let lines: Vec<(i64, Vec<ServerId>)> = groups.iter().map(|(g, s)| (*g, s.to_vec())).collect();
    let w = weights.iter().copied().collect();
    let g = Groups::new(&lines, &w, voters.iter().copied()).expect("groups");
    let mut c = Cluster::new(voters, &[]);
    for cfg in c.cfgs.values_mut() {
        cfg.groups = Some(g.clone());
    }
    c
}

#[test]
fn a_voter_of_weight_zero_never_leads() {
    // Plain majorities: the highest sid of equal histories leads.
    let mut plain = Cluster::new(&[S1, S2, S3], &[]);
    let mut weighted = grouped(&[S1, S2, S3], &[(1, &[S1, S2, S3])], &[(S3, 0)]);
    for c in [&mut plain, &mut weighted] {
        for s in [S1, S2, S3] {
            c.start(s, 1, 1, history(&[(1, 3)]));
        }
        c.time_to_serve(20_000);
    }
    assert_eq!(plain.leader(), Some(S3));
    assert_eq!(weighted.leader(), Some(S2));
    // Even with the longest history, S3 follows.
    let mut c = grouped(&[S1, S2, S3], &[(1, &[S1, S2, S3])], &[(S3, 0)]);
    c.start(S1, 1, 1, history(&[(1, 2)]));
    c.start(S2, 1, 1, history(&[(1, 2)]));
    c.start(S3, 1, 1, history(&[(1, 5)]));
    c.time_to_serve(20_000);
    assert_eq!(c.leader(), Some(S2));
    assert_eq!(c.role(S3), Role::Following);
}

#[test]
fn every_group_of_two_must_have_a_majority_of_its_weight() {
    let (a, b): (&[ServerId], &[ServerId]) = (&[S1, S2, S3], &[S4, S5]);
    let mut c = grouped(&[S1, S2, S3, S4, S5], &[(1, a), (2, b)], &[]);
    // Three of five voters, all in group 1: a plain majority, no hierarchical quorum.
    for s in [S1, S2, S3] {
        c.start(s, 0, 0, Vec::new());
    }
    c.advance(5_000);
    assert_eq!(c.leader(), None, "a leader without group 2");
    // Half of group 2's weight is not a majority of it either.
    c.start(S4, 0, 0, Vec::new());
    c.advance(5_000);
    assert_eq!(
        c.leader(),
        None,
        "a leader with one of group 2's two servers"
    );
    c.start(S5, 0, 0, Vec::new());
    c.time_to_serve(20_000);
    let zs = c.write(3);
    c.advance(2_000);
    for s in [S1, S2, S3, S4, S5] {
        assert_eq!(c.applied_zxids(s), zs, "{s} applied the writes");
    }
    // Without S4 the connected followers are no quorum (all of group 1 and the leader
    // S5, the highest sid of equal histories, half of group 2): the leader steps down, as
    // ZooKeeper's does when its synced followers are no quorum, and nobody leads until
    // S4 is back.
    assert_eq!(c.leader(), Some(S5));
    c.crash(S4);
    c.advance(TICK * 3);
    assert_eq!(c.leader(), None, "a leader with half of group 2");
    c.start(S4, 0, 0, Vec::new());
    c.time_to_serve(20_000);
    let more = c.write(2);
    c.advance(2_000);
    assert!(more.iter().all(|z| c.applied_zxids(S4).contains(z)));
}
