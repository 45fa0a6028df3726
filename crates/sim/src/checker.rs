//! The safety checker. It keeps the one global committed sequence (built from the first
//! replica to commit each position) and checks, at every commit / truncate / snapshot:
//! * at most one leader is established per epoch, and no zxid is proposed twice with
//!   different contents (two leaders in one epoch);
//! * every replica's committed history is a prefix of the global one (so all committed
//!   histories are prefixes of one another, and nothing committed is ever replaced);
//! * no committed transaction is truncated, and no transaction truncated from a dead epoch
//!   is ever applied (dead: a leader of a later epoch truncated it and that leader's epoch
//!   was established; until then another leader may still commit it);
//! * an installed snapshot equals the global history at its zxid;
//!
//! and at quiescence that replicas agree and every write acknowledged to a client is there.

use rzk_proto::{ServerId, Zxid};
use std::collections::HashMap;

/// A broken invariant, with the simulated time it was seen at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub at_ms: u64,
    pub what: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at {} ms: {}", self.at_ms, self.what)
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

pub fn hash_bytes(b: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for x in b {
        h ^= u64::from(*x);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// The replicated state machine: a hash chain over applied (zxid, payload hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmState {
    pub zxid: Zxid,
    pub digest: u64,
    pub count: u64,
}

impl Default for SmState {
    fn default() -> Self {
        SmState {
            zxid: Zxid::ZERO,
            digest: FNV_OFFSET,
            count: 0,
        }
    }
}

impl SmState {
    pub fn apply(&mut self, zxid: Zxid, h: u64) {
        self.digest = (self.digest ^ zxid.0 as u64).wrapping_mul(FNV_PRIME);
        self.digest = (self.digest ^ h).wrapping_mul(FNV_PRIME);
        self.zxid = zxid;
        self.count += 1;
    }
}

#[derive(Debug, Default)]
pub struct Checker {
    pub now: u64,
    committed: Vec<(Zxid, u64)>,
    index: HashMap<Zxid, usize>,
    prefix: Vec<SmState>,
    leaders: HashMap<u32, ServerId>,
    proposals: HashMap<Zxid, u64>,
    truncated_dead: HashMap<Zxid, u64>,
    /// Txns of older epochs truncated on the word of the leader of an epoch (the key)
    /// that is not established yet: they die when it is (its history, which lacks them,
    /// then binds every later leader); until then a leader elected instead may still
    /// hold and commit them, as ZAB allows for txns that were never committed.
    truncated_pending: HashMap<u32, Vec<(Zxid, u64)>>,
    pub violations: Vec<Violation>,
}

impl Checker {
    fn fail(&mut self, what: String) {
        self.violations.push(Violation {
            at_ms: self.now,
            what,
        });
    }

    pub fn committed_len(&self) -> usize {
        self.committed.len()
    }

    pub fn last_committed(&self) -> Zxid {
        self.committed.last().map_or(Zxid::ZERO, |c| c.0)
    }

    pub fn leader_established(&mut self, epoch: u32, sid: ServerId) {
        if let Some(&other) = self.leaders.get(&epoch) {
            if other != sid {
                self.fail(format!(
                    "two leaders established in epoch {epoch}: {other} and {sid}"
                ));
            }
        } else {
            self.leaders.insert(epoch, sid);
        }
        for (z, h) in self.truncated_pending.remove(&epoch).unwrap_or_default() {
            self.truncated_dead.insert(z, h);
        }
    }

    pub fn proposed(&mut self, sid: ServerId, zxid: Zxid, h: u64) {
        match self.proposals.insert(zxid, h) {
            Some(old) if old != h => self.fail(format!(
                "zxid {zxid} proposed twice with different contents (last by {sid})"
            )),
            _ => {}
        }
    }

    /// Replica `sid`, whose state is `sm`, applies (zxid, h).
    pub fn apply(&mut self, sid: ServerId, sm: &mut SmState, zxid: Zxid, h: u64) {
        if zxid <= sm.zxid {
            self.fail(format!(
                "server {sid} applied {zxid} after {}: not in zxid order",
                sm.zxid
            ));
            return;
        }
        if self.truncated_dead.get(&zxid) == Some(&h) {
            self.fail(format!(
                "server {sid} applied {zxid}, a txn truncated from a dead epoch"
            ));
        }
        let pos = if sm.count == 0 {
            0
        } else {
            match self.index.get(&sm.zxid) {
                Some(i) => i + 1,
                None => {
                    self.fail(format!(
                        "server {sid} is at {} which is not in the committed history",
                        sm.zxid
                    ));
                    return;
                }
            }
        };
        sm.apply(zxid, h);
        if pos < self.committed.len() {
            if self.committed[pos] != (zxid, h) {
                let (gz, _) = self.committed[pos];
                self.fail(format!(
                    "divergent histories: server {sid} committed {zxid} at position {pos} where another replica committed {gz}"
                ));
            }
        } else {
            self.committed.push((zxid, h));
            self.index.insert(zxid, pos);
            self.prefix.push(*sm);
        }
    }

    /// Replica `sid` (state `sm`, in accepted epoch `epoch`) truncates `removed` (zxid, h).
    pub fn truncated(
        &mut self,
        sid: ServerId,
        sm: &SmState,
        epoch: u32,
        to: Zxid,
        removed: &[(Zxid, u64)],
    ) {
        if to < sm.zxid {
            self.fail(format!(
                "server {sid} truncated to {to} below its applied {}",
                sm.zxid
            ));
        }
        for &(z, h) in removed {
            if let Some(&i) = self.index.get(&z) {
                if self.committed[i].1 == h {
                    self.fail(format!("server {sid} truncated committed txn {z}"));
                }
            }
            if z.epoch() < epoch {
                if self.leaders.contains_key(&epoch) {
                    self.truncated_dead.insert(z, h);
                } else {
                    self.truncated_pending
                        .entry(epoch)
                        .or_default()
                        .push((z, h));
                }
            }
        }
    }

    /// Replica `sid` installs a snapshot `s` received from the leader.
    pub fn snapshot_installed(&mut self, sid: ServerId, s: &SmState) {
        if s.count == 0 {
            return;
        }
        match self.index.get(&s.zxid) {
            Some(&i) if self.prefix[i] == *s => {}
            _ => self.fail(format!(
                "server {sid} installed a snapshot at {} that matches no committed prefix",
                s.zxid
            )),
        }
    }

    /// Write acknowledged to a client: must be in the committed history.
    pub fn acked_present(&self, zxid: Zxid, h: u64) -> bool {
        self.index
            .get(&zxid)
            .is_some_and(|&i| self.committed[i].1 == h)
    }

    pub fn report(&mut self, what: String) {
        self.fail(what);
    }

    /// The global state after the whole committed history.
    pub fn final_state(&self) -> SmState {
        self.prefix.last().copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z(epoch: u32, counter: u32) -> Zxid {
        Zxid((i64::from(epoch) << 32) | i64::from(counter))
    }

    /// Seed 81539 (server mode, long run of 2026-12-01): the leader of epoch 2 truncated
    /// an uncommitted epoch-1 txn on one learner and crashed before establishing epoch 2;
    /// the old epoch-1 leader, whose log still held the txn, was elected for epoch 3 and
    /// committed it. ZAB allows that; the checker called it a dead txn applied.
    #[test]
    fn a_truncated_txn_dies_only_when_the_truncating_epoch_is_established() {
        let (s1, s2) = (ServerId(1), ServerId(2));
        let x = (z(1, 2), 0xabc);
        let mut c = Checker::default();
        let mut sm = SmState::default();
        c.apply(s1, &mut sm, z(1, 1), 1);
        c.truncated(s2, &sm, 2, z(1, 1), &[x]);
        let mut sm1 = sm;
        c.apply(s1, &mut sm1, x.0, x.1);
        assert!(c.violations.is_empty(), "{:?}", c.violations);

        let mut c = Checker::default();
        let mut sm = SmState::default();
        c.apply(s1, &mut sm, z(1, 1), 1);
        c.truncated(s2, &sm, 2, z(1, 1), &[x]);
        c.leader_established(2, s2);
        c.apply(s1, &mut sm, x.0, x.1);
        assert_eq!(c.violations.len(), 1, "{:?}", c.violations);

        // Truncated after its epoch was established: dead at once.
        let mut c = Checker::default();
        let mut sm = SmState::default();
        c.apply(s1, &mut sm, z(1, 1), 1);
        c.leader_established(2, s2);
        c.truncated(s2, &sm, 2, z(1, 1), &[x]);
        c.apply(s1, &mut sm, x.0, x.1);
        assert_eq!(c.violations.len(), 1, "{:?}", c.violations);
    }
}
