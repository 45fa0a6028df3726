//! Which voter leads a new membership once its reconfig commits: ZooKeeper 3.8's
//! `Leader.getDesignatedLeader`.
//!
//! The leader keeps leading when it is a voter of the new membership at the same quorum
//! address. Otherwise it names a voter of the new membership that acknowledged the
//! reconfig, preferring the one that also acknowledged the most of the proposals that
//! follow it (so the fewest of them are dropped when it takes over). Every member that
//! learns the commit then goes straight to that leader (`Zab::switch_after_reconfig`),
//! without an election; the old leader commits nothing after the reconfig (ZooKeeper's
//! `allowedToCommit = false`), so the designated leader, which acknowledged the reconfig,
//! holds every committed txn.

use super::quorum::QuorumVerifier;
use rzk_proto::ServerId;

/// The leader of the new membership `new` after its reconfig commits.
///
/// - `me` / `keeps_address`: this (old) leader, and whether `new` gives it the quorum
///   address it has now ([`super::core::Core::keeps_quorum_address`]).
/// - `acked`: the servers that acknowledged the reconfig (or, for a reconfig completed at
///   NEWLEADER, the NEWLEADER).
/// - `later`: the acknowledgements of each proposal after the reconfig, in zxid order.
/// - `pairs`: the memberships each later proposal needs a quorum of (the one in force,
///   then `new`); each narrows the candidates in turn, as ZooKeeper's `qvAcksetPairs`.
///
/// Candidates are taken in the order a Java `HashSet<Long>` of them iterates
/// ([`java_hash_set_order`]), since ZooKeeper picks `candidates.iterator().next()`.
/// Returns `me` when no other voter of `new` acknowledged (ZooKeeper would fail there).
pub fn designated_leader<'a>(
    me: ServerId,
    keeps_address: bool,
    new: &QuorumVerifier,
    acked: &[ServerId],
    later: impl IntoIterator<Item = &'a [ServerId]>,
    pairs: &[&QuorumVerifier],
) -> ServerId {
    if new.is_voter(me) && keeps_address {
        return me;
    }
    let mut candidates: Vec<ServerId> = acked
        .iter()
        .copied()
        .filter(|s| *s != me && new.is_voter(*s))
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    java_hash_set_order(&mut candidates);
    let Some(&first) = candidates.first() else {
        return me;
    };
    let mut current = first;
    for acks in later {
        for qv in pairs {
            // `retainAll` of the proposal's acknowledgements counted for `qv`.
            candidates.retain(|s| qv.is_voter(*s) && acks.contains(s));
            match candidates.as_slice() {
                [] => return current,
                [only] => return *only,
                [next, ..] => current = *next,
            }
        }
    }
    current
}

/// Orders `ids` (distinct) as a `java.util.HashSet<Long>` holding them iterates: by hash
/// bucket of a table sized for them (`HashSet(Collection)`: capacity
/// `max(size / 0.75 + 1, 16)` rounded up to a power of two), where `Long.hashCode` folds
/// the two halves and `HashMap.hash` spreads the high 16 bits. Ids sharing a bucket keep
/// ascending order (Java keeps insertion order there, which depends on when each ACK
/// arrived). For ids below the table size this is ascending order.
pub fn java_hash_set_order(ids: &mut [ServerId]) {
    let wanted = ((ids.len() as f32 / 0.75) as usize + 1).max(16);
    let table = wanted.next_power_of_two();
    let bucket = |id: ServerId| {
        let v = id.0 as u64;
        let h = (v ^ (v >> 32)) as u32;
        ((h ^ (h >> 16)) as usize) & (table - 1)
    };
    ids.sort_by_key(|id| (bucket(*id), id.0));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[i64]) -> Vec<ServerId> {
        v.iter().copied().map(ServerId).collect()
    }

    fn qv(voters: &[i64]) -> QuorumVerifier {
        QuorumVerifier::new(&ids(voters), &[])
    }

    #[test]
    fn a_leader_that_stays_a_voter_at_its_address_keeps_leading() {
        let new = qv(&[1, 2, 3]);
        assert_eq!(
            designated_leader(ServerId(3), true, &new, &ids(&[1, 2, 3]), [], &[&new]),
            ServerId(3)
        );
    }

    #[test]
    fn a_removed_or_moved_leader_names_the_first_voter_that_acked() {
        let new = qv(&[1, 2, 4]);
        // Removed: 4 and 2 acked (in that order), 1 did not; Java's HashSet gives 2.
        assert_eq!(
            designated_leader(ServerId(3), true, &new, &ids(&[4, 2, 3]), [], &[&new]),
            ServerId(2)
        );
        // Moved: still a voter, but at another quorum address.
        let moved = qv(&[1, 2, 3]);
        assert_eq!(
            designated_leader(ServerId(3), false, &moved, &ids(&[3, 2, 1]), [], &[&moved]),
            ServerId(1)
        );
    }

    #[test]
    fn the_candidate_that_acked_the_most_later_proposals_is_preferred() {
        let old = qv(&[1, 2, 3, 4, 5]);
        let new = qv(&[1, 2, 3, 4]);
        let acked = ids(&[1, 2, 3, 4, 5]);
        // The next proposal was acked by 3 and 4, the one after by 4 only.
        let p1 = ids(&[5, 3, 4]);
        let p2 = ids(&[5, 4]);
        let later = [p1.as_slice(), p2.as_slice()];
        assert_eq!(
            designated_leader(ServerId(5), true, &new, &acked, later, &[&old, &new]),
            ServerId(4)
        );
        // No candidate acked the later one: the best so far (first of {3, 4}) stays.
        let none = ids(&[5]);
        let later = [p1.as_slice(), none.as_slice()];
        assert_eq!(
            designated_leader(ServerId(5), true, &new, &acked, later, &[&old, &new]),
            ServerId(3)
        );
    }

    #[test]
    fn a_voter_added_by_the_reconfig_drops_out_at_the_old_membership_of_a_later_proposal() {
        // 4 is new and acked the later proposal, 1 did not; but the later proposal's ACKs
        // counted for the old membership leave 4 out, no candidate remains, and the best
        // so far (1) stays, as ZooKeeper's retainAll over the old pair's ackset does.
        let old = qv(&[1, 2, 3]);
        let new = qv(&[1, 4]);
        let acked = ids(&[3, 4, 1]);
        let p1 = ids(&[3, 4]);
        assert_eq!(
            designated_leader(
                ServerId(3),
                true,
                &new,
                &acked,
                [p1.as_slice()],
                &[&old, &new]
            ),
            ServerId(1)
        );
    }

    #[test]
    fn hash_set_order_is_ascending_below_the_table_size_and_by_bucket_above() {
        let mut v = ids(&[5, 1, 3]);
        java_hash_set_order(&mut v);
        assert_eq!(v, ids(&[1, 3, 5]));
        // A 16-bucket table: 17 sits in bucket 1, 16 in bucket 0, 2 in bucket 2.
        let mut v = ids(&[2, 17, 16]);
        java_hash_set_order(&mut v);
        assert_eq!(v, ids(&[16, 17, 2]));
        // 13 entries need a 32-bucket table (13 / 0.75 + 1 = 18): 17 comes after 16.
        let mut v: Vec<ServerId> = (1..=13).map(ServerId).collect();
        v.push(ServerId(40)); // bucket 8 of 32
        v.retain(|s| s.0 != 13);
        java_hash_set_order(&mut v);
        let pos = |x: i64| v.iter().position(|s| s.0 == x).unwrap();
        assert!(pos(8) < pos(40) && pos(40) < pos(9), "{v:?}");
    }
}
