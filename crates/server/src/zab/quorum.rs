//! Quorums over the voting members; observers never count. Plain majorities (ZooKeeper's
//! `QuorumMaj`) unless the membership has `group.G` / `weight.S` lines, which make them
//! hierarchical ([`Groups`], ZooKeeper's `QuorumHierarchical`).

use rzk_proto::ServerId;
use std::collections::{BTreeMap, BTreeSet};

/// ZooKeeper's hierarchical quorums (`QuorumHierarchical`): voters sorted into groups
/// (`group.G=S:S:...`), each voter with a weight (`weight.S=w`; 1 when a participant has
/// none). A set of voters is a quorum when, in more than half of the groups, the set's
/// weight is more than half of the group's weight; a voter of weight 0 never leads. The
/// arithmetic is Java's `long` arithmetic, as ZooKeeper's, so that members of a mixed
/// ensemble agree on every quorum.
/// Why a membership's `group` / `weight` lines are refused, as ZooKeeper's
/// `QuorumHierarchical` refuses them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupsError {
    /// A server listed in two groups (ZooKeeper's ConfigException).
    #[error("Server {0} is in multiple groups")]
    MultipleGroups(ServerId),
    /// A participant in no group (ZooKeeper's ConfigException).
    #[error("Server {0} is not in a group")]
    NotInAGroup(ServerId),
    /// A grouped server without a weight, i.e. an observer (ZooKeeper fails unchecked).
    #[error("Server {sid} of group {gid} has no weight")]
    NoWeight { sid: ServerId, gid: i64 },
    /// An id or weight `Long.parseLong` refuses (ZooKeeper fails unchecked).
    #[error("{key}: {value:?} is not a number")]
    NotANumber { key: String, value: String },
}

impl GroupsError {
    /// Whether ZooKeeper fails on it with an unchecked exception rather than a
    /// ConfigException (a reconfig request then gets MARSHALLINGERROR, not BADARGUMENTS).
    pub fn is_unchecked(&self) -> bool {
        matches!(
            self,
            GroupsError::NoWeight { .. } | GroupsError::NotANumber { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Groups {
    /// The group of each grouped server.
    group_of: BTreeMap<ServerId, i64>,
    /// Every weight: the `weight.S` lines, and 1 for a participant without one.
    weight: BTreeMap<ServerId, i64>,
    /// The sum of its members' weights, per group.
    group_weight: BTreeMap<i64, i64>,
    /// ZooKeeper's `numGroups`: how many `group` lines there are (two keys naming one
    /// group id, `group.1` and `group.01`, count twice), less one per group of weight 0
    /// (such a group can never hold a majority of its weight, so it is not waited for).
    groups: i64,
}

impl Groups {
    /// Builds the groups of a membership from its `group.G` lines (`groups`: one entry per
    /// line, G and the server ids of its value) and `weight.S` lines (`weights`), for the
    /// membership's `participants`.
    ///
    /// # Errors
    /// ZooKeeper's refusals, naming the server ([`GroupsError`]): a server in two
    /// groups, a participant in none, or a grouped server with no weight (an observer).
    pub fn new(
        groups: &[(i64, Vec<ServerId>)],
        weights: &BTreeMap<ServerId, i64>,
        participants: impl IntoIterator<Item = ServerId>,
    ) -> Result<Groups, GroupsError> {
        let mut group_of = BTreeMap::new();
        for (gid, sids) in groups {
            let gid = *gid;
            for &sid in sids {
                if group_of.insert(sid, gid).is_some() {
                    return Err(GroupsError::MultipleGroups(sid));
                }
            }
        }
        let mut weight = weights.clone();
        for sid in participants {
            if !group_of.contains_key(&sid) {
                return Err(GroupsError::NotInAGroup(sid));
            }
            weight.entry(sid).or_insert(1);
        }
        let mut group_weight = BTreeMap::new();
        for (sid, gid) in &group_of {
            let w = *weight.get(sid).ok_or(GroupsError::NoWeight {
                sid: *sid,
                gid: *gid,
            })?;
            let total: &mut i64 = group_weight.entry(*gid).or_insert(0);
            *total = total.wrapping_add(w);
        }
        let zero_weight = group_weight.values().filter(|w| **w == 0).count();
        Ok(Groups {
            group_of,
            weight,
            group_weight,
            groups: groups.len() as i64 - zero_weight as i64,
        })
    }

    /// The `group.G` lines: each group id with its servers (ascending ids).
    pub fn group_lines(&self) -> BTreeMap<i64, Vec<ServerId>> {
        let mut out: BTreeMap<i64, Vec<ServerId>> = BTreeMap::new();
        for (sid, gid) in &self.group_of {
            out.entry(*gid).or_default().push(*sid);
        }
        out
    }

    /// The `weight.S` lines (participants without one included, at 1).
    pub fn weights(&self) -> &BTreeMap<ServerId, i64> {
        &self.weight
    }

    /// ZooKeeper's `QuorumHierarchical.containsQuorum` of a set of distinct servers.
    fn contains_quorum(&self, set: &[ServerId]) -> bool {
        if set.is_empty() {
            return false;
        }
        let mut expansion: BTreeMap<i64, i64> = BTreeMap::new();
        for sid in set {
            let Some(gid) = self.group_of.get(sid) else {
                continue;
            };
            let w = self.weight.get(sid).copied().unwrap_or(0);
            let total = expansion.entry(*gid).or_insert(0);
            *total = total.wrapping_add(w);
        }
        let majority_groups = expansion
            .iter()
            .filter(|(gid, w)| **w > self.group_weight.get(gid).copied().unwrap_or(0) / 2)
            .count() as i64;
        majority_groups > self.groups / 2
    }
}

/// Who votes, who observes, and what a quorum of the voters is.
#[derive(Debug, Clone)]
pub struct QuorumVerifier {
    voters: BTreeSet<ServerId>,
    observers: BTreeSet<ServerId>,
    /// `None`: plain majorities (boxed: the verifier is kept in the leader's state).
    groups: Option<std::sync::Arc<Groups>>,
}

impl QuorumVerifier {
    /// Plain majorities of `voters`.
    pub fn new(voters: &[ServerId], observers: &[ServerId]) -> QuorumVerifier {
        QuorumVerifier::with_groups(voters, observers, None)
    }

    /// Majorities of `voters` as `groups` count them (plain ones for `None`).
    pub fn with_groups(
        voters: &[ServerId],
        observers: &[ServerId],
        groups: Option<&Groups>,
    ) -> QuorumVerifier {
        QuorumVerifier {
            voters: voters.iter().copied().collect(),
            observers: observers.iter().copied().collect(),
            groups: groups.cloned().map(std::sync::Arc::new),
        }
    }

    /// A voter's weight (ZooKeeper's `getWeight`): 1 with plain majorities; its
    /// `weight.S` with groups (0 for a server without one). A voter of weight 0 is never
    /// elected (`totalOrderPredicate`).
    pub fn weight(&self, sid: ServerId) -> i64 {
        match &self.groups {
            None => 1,
            Some(g) => g.weight.get(&sid).copied().unwrap_or(0),
        }
    }

    pub fn is_voter(&self, sid: ServerId) -> bool {
        self.voters.contains(&sid)
    }

    pub fn is_observer(&self, sid: ServerId) -> bool {
        self.observers.contains(&sid)
    }

    pub fn is_member(&self, sid: ServerId) -> bool {
        self.is_voter(sid) || self.is_observer(sid)
    }

    pub fn voters(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.voters.iter().copied()
    }

    pub fn members(&self) -> impl Iterator<Item = ServerId> + '_ {
        self.voters.iter().chain(self.observers.iter()).copied()
    }

    /// True when the distinct voters among `sids` are a quorum: a strict majority of all
    /// voters, or with groups a majority of groups in each of which they have a majority
    /// of the weight.
    pub fn has_quorum<I: IntoIterator<Item = ServerId>>(&self, sids: I) -> bool {
        // Without allocating for the usual ensembles (called per proposal on commit).
        let mut seen: smallvec::SmallVec<[ServerId; 16]> =
            sids.into_iter().filter(|s| self.is_voter(*s)).collect();
        seen.sort_unstable();
        seen.dedup();
        match &self.groups {
            None => seen.len() * 2 > self.voters.len(),
            Some(g) => g.contains_quorum(&seen),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids<const N: usize>(n: [i64; N]) -> [ServerId; N] {
        n.map(ServerId)
    }

    #[test]
    fn majority_of_voters_only() {
        let q = QuorumVerifier::new(&ids([1, 2, 3]), &ids([4]));
        assert!(!q.has_quorum(ids([1])));
        assert!(!q.has_quorum(ids([1, 4])));
        assert!(!q.has_quorum(ids([1, 1])));
        assert!(q.has_quorum(ids([1, 3])));
        let one = QuorumVerifier::new(&ids([1]), &[]);
        assert!(one.has_quorum(ids([1])));
        assert_eq!(q.weight(ServerId(1)), 1);
    }

    fn groups(lines: &[(i64, &[i64])], weights: &[(i64, i64)], voters: &[i64]) -> Groups {
        let g: Vec<(i64, Vec<ServerId>)> = lines
            .iter()
            .map(|(gid, s)| (*gid, s.iter().copied().map(ServerId).collect()))
            .collect();
        let w = weights.iter().map(|(s, w)| (ServerId(*s), *w)).collect();
        Groups::new(&g, &w, voters.iter().copied().map(ServerId)).expect("groups")
    }

    #[test]
    fn hierarchical_quorums_need_a_majority_in_a_majority_of_groups() {
        // Two groups: both need a majority of their weight.
        let g = groups(&[(1, &[1, 2, 3]), (2, &[4, 5])], &[], &[1, 2, 3, 4, 5]);
        let q = QuorumVerifier::with_groups(&ids([1, 2, 3, 4, 5]), &ids([6]), Some(&g));
        assert!(!q.has_quorum(ids([1, 2, 3])), "three of five, one group");
        assert!(
            !q.has_quorum(ids([1, 2, 3, 4])),
            "a half of group 2 is no majority"
        );
        assert!(q.has_quorum(ids([1, 2, 4, 5])));
        assert!(!q.has_quorum(ids([1, 4, 5, 6])), "observers never count");
        // Three groups: two of them suffice; weights decide within a group.
        let g = groups(
            &[(1, &[1, 2]), (2, &[3, 4]), (3, &[5, 6])],
            &[(1, 3), (2, 1), (3, 0)],
            &[1, 2, 3, 4, 5, 6],
        );
        let q = QuorumVerifier::with_groups(&ids([1, 2, 3, 4, 5, 6]), &[], Some(&g));
        assert!(q.has_quorum(ids([1, 4])), "weight 3 of 4 and 1 of 1");
        assert!(
            !q.has_quorum(ids([2, 4, 5])),
            "weight 1 of 4 is no majority of group 1"
        );
        assert!(q.has_quorum(ids([1, 5, 6])));
        assert!(!q.has_quorum(ids([3, 4])), "group 2 alone");
        assert!(!q.has_quorum(ids([])));
        assert_eq!((q.weight(ServerId(3)), q.weight(ServerId(4))), (0, 1));
        // A group of weight 0 is not waited for (ZooKeeper's computeGroupWeight drops
        // it from numGroups): group 1's majority alone is a quorum.
        let g = groups(
            &[(1, &[1, 2, 3]), (2, &[4, 5])],
            &[(4, 0), (5, 0)],
            &[1, 2, 3, 4, 5],
        );
        let q = QuorumVerifier::with_groups(&ids([1, 2, 3, 4, 5]), &[], Some(&g));
        assert!(q.has_quorum(ids([1, 2])));
        assert!(!q.has_quorum(ids([1, 4, 5])));
    }

    #[test]
    fn hierarchical_membership_errors_name_the_server() {
        let g = |lines: &[(i64, &[i64])], weights: &[(i64, i64)], voters: &[i64]| {
            let l: Vec<(i64, Vec<ServerId>)> = lines
                .iter()
                .map(|(gid, s)| (*gid, s.iter().copied().map(ServerId).collect()))
                .collect();
            let w = weights.iter().map(|(s, w)| (ServerId(*s), *w)).collect();
            Groups::new(&l, &w, voters.iter().copied().map(ServerId))
                .err()
                .map(|e| e.to_string())
        };
        let e = g(&[(1, &[1, 2]), (2, &[2, 3])], &[], &[1, 2, 3]).expect("two groups");
        assert!(e.contains("Server 2 is in multiple groups"), "{e}");
        let e = g(&[(1, &[1, 2])], &[], &[1, 2, 3]).expect("no group");
        assert!(e.contains("Server 3 is not in a group"), "{e}");
        let e = g(&[(1, &[1, 2, 4])], &[], &[1, 2]).expect("observer without weight");
        assert!(e.contains("Server 4"), "{e}");
        let ok = groups(&[(1, &[1, 2, 4])], &[(4, 2)], &[1, 2]);
        assert_eq!(ok.weights().get(&ServerId(1)), Some(&1));
        assert_eq!(ok.group_lines().get(&1).map(Vec::len), Some(3));
    }
}
