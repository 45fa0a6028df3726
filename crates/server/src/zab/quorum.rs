//! Majority quorums over the voting members; observers never count.

use super::types::Sid;
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
pub struct QuorumVerifier {
    voters: BTreeSet<Sid>,
    observers: BTreeSet<Sid>,
}

impl QuorumVerifier {
    pub fn new(voters: &[Sid], observers: &[Sid]) -> QuorumVerifier {
        QuorumVerifier {
            voters: voters.iter().copied().collect(),
            observers: observers.iter().copied().collect(),
        }
    }

    pub fn is_voter(&self, sid: Sid) -> bool {
        self.voters.contains(&sid)
    }

    pub fn is_observer(&self, sid: Sid) -> bool {
        self.observers.contains(&sid)
    }

    pub fn is_member(&self, sid: Sid) -> bool {
        self.is_voter(sid) || self.is_observer(sid)
    }

    pub fn voters(&self) -> impl Iterator<Item = Sid> + '_ {
        self.voters.iter().copied()
    }

    pub fn members(&self) -> impl Iterator<Item = Sid> + '_ {
        self.voters.iter().chain(self.observers.iter()).copied()
    }

    /// True when the distinct voters among `sids` are a strict majority of all voters.
    pub fn has_quorum<I: IntoIterator<Item = Sid>>(&self, sids: I) -> bool {
        let set: BTreeSet<Sid> = sids.into_iter().filter(|s| self.is_voter(*s)).collect();
        set.len() * 2 > self.voters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_of_voters_only() {
        let q = QuorumVerifier::new(&[1, 2, 3], &[4]);
        assert!(!q.has_quorum([1]));
        assert!(!q.has_quorum([1, 4]));
        assert!(!q.has_quorum([1, 1]));
        assert!(q.has_quorum([1, 3]));
        let one = QuorumVerifier::new(&[1], &[]);
        assert!(one.has_quorum([1]));
    }
}
