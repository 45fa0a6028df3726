//! Majority quorums over the voting members; observers never count.

use rzk_proto::ServerId;
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
pub struct QuorumVerifier {
    voters: BTreeSet<ServerId>,
    observers: BTreeSet<ServerId>,
}

impl QuorumVerifier {
    pub fn new(voters: &[ServerId], observers: &[ServerId]) -> QuorumVerifier {
        QuorumVerifier {
            voters: voters.iter().copied().collect(),
            observers: observers.iter().copied().collect(),
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

    /// True when the distinct voters among `sids` are a strict majority of all voters.
    pub fn has_quorum<I: IntoIterator<Item = ServerId>>(&self, sids: I) -> bool {
        // Without allocating for the usual ensembles (called per proposal on commit).
        let mut seen: smallvec::SmallVec<[ServerId; 16]> =
            sids.into_iter().filter(|s| self.is_voter(*s)).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len() * 2 > self.voters.len()
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
    }
}
