//! Fast leader election (docs/QUORUM-PROTOCOL.md §3): the LOOKING state of one server.
//!
//! A vote names a leader with that leader's (peer epoch, last zxid); votes are ordered by
//! peer epoch, then zxid, then sid. A server adopts any better vote it hears in its
//! election round, and finishes when a quorum of voters agrees with its proposal and
//! nothing better arrives within `finalize_wait`. A server joining a settled ensemble
//! finishes from FOLLOWING/LEADING notifications instead. Observers never vote.
//! Owns only election bookkeeping; replies to peers that are not LOOKING are sent by
//! `Zab` (mod.rs), and the role switch happens there too.

use super::core::Core;
use super::types::Sid;
use rzk_proto::quorum::{Notification, ServerState};
use std::collections::BTreeMap;

/// A vote as heard from a peer (or our own proposal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vote {
    pub leader: Sid,
    pub zxid: i64,
    pub election_epoch: i64,
    pub peer_epoch: i64,
    pub state: ServerState,
    pub version: i32,
}

impl Vote {
    pub fn from_notification(n: &Notification) -> Vote {
        Vote {
            leader: n.leader,
            zxid: n.zxid,
            election_epoch: n.election_epoch,
            peer_epoch: n.peer_epoch,
            state: n.state,
            version: n.version,
        }
    }

    /// ZooKeeper's vote equality when counting a quorum: all fields when either side is
    /// LOOKING, otherwise only leader and peer epoch (only leader against a version-0 vote).
    pub fn same_as(&self, other: &Vote) -> bool {
        if self.state == ServerState::Looking || other.state == ServerState::Looking {
            return self.leader == other.leader
                && self.zxid == other.zxid
                && self.election_epoch == other.election_epoch
                && self.peer_epoch == other.peer_epoch;
        }
        if (self.version == 0) != (other.version == 0) {
            return self.leader == other.leader;
        }
        self.leader == other.leader && self.peer_epoch == other.peer_epoch
    }
}

/// `totalOrderPredicate`: does (id, zxid, epoch) beat (cur_id, cur_zxid, cur_epoch)?
/// Only voters can win.
pub fn beats(core: &Core, new: (Sid, i64, i64), cur: (Sid, i64, i64)) -> bool {
    if !core.qv.is_voter(new.0) {
        return false;
    }
    (new.2, new.1, new.0) > (cur.2, cur.1, cur.0)
}

/// State of one election round (LOOKING).
#[derive(Debug)]
pub struct Election {
    /// Proposed (leader, zxid, peer epoch).
    pub proposal: (Sid, i64, i64),
    recvset: BTreeMap<Sid, Vote>,
    outofelection: BTreeMap<Sid, Vote>,
    finalize_at: Option<u64>,
    next_send_at: u64,
    interval: u64,
}

impl Election {
    /// Starts a round: bump the logical clock, propose ourselves, notify every voter.
    pub fn start(core: &mut Core) -> Election {
        core.logical_clock += 1;
        let mut e = Election {
            proposal: core.initial_vote(),
            recvset: BTreeMap::new(),
            outofelection: BTreeMap::new(),
            finalize_at: None,
            next_send_at: 0,
            interval: core.cfg.min_notification_ms,
        };
        e.send_notifications(core);
        e
    }

    pub fn proposal_vote(&self, core: &Core) -> Vote {
        Vote {
            leader: self.proposal.0,
            zxid: self.proposal.1,
            election_epoch: core.logical_clock,
            peer_epoch: self.proposal.2,
            state: ServerState::Looking,
            version: rzk_proto::quorum::election::NOTIFICATION_VERSION,
        }
    }

    fn send_notifications(&mut self, core: &mut Core) {
        let v = self.proposal_vote(core);
        let me = core.cfg.my_id;
        if core.qv.is_voter(me) {
            self.recvset.insert(me, v);
        }
        let voters: Vec<Sid> = core.qv.voters().filter(|s| *s != me).collect();
        for to in voters {
            core.send_vote(to, &v);
        }
        self.next_send_at = core.now + self.interval;
    }

    fn set_proposal(&mut self, core: &mut Core, p: (Sid, i64, i64)) {
        self.proposal = p;
        self.finalize_at = None;
        self.send_notifications(core);
    }

    fn count_quorum(core: &Core, votes: &BTreeMap<Sid, Vote>, target: &Vote) -> bool {
        core.qv.has_quorum(
            votes
                .iter()
                .filter(|(_, v)| v.same_as(target))
                .map(|(s, _)| *s),
        )
    }

    /// `checkLeader`: a voted-for leader other than us must itself have told us it is
    /// LEADING; if it is us, the round must be the current one.
    fn check_leader(core: &Core, votes: &BTreeMap<Sid, Vote>, leader: Sid, ee: i64) -> bool {
        if leader != core.cfg.my_id {
            votes
                .get(&leader)
                .is_some_and(|v| v.state == ServerState::Leading)
        } else {
            core.logical_clock == ee
        }
    }

    /// Handles a notification from voter `from`. Returns the final vote when the election
    /// is over.
    pub fn on_notification(
        &mut self,
        core: &mut Core,
        from: Sid,
        n: &Notification,
    ) -> Option<Vote> {
        if !core.qv.is_voter(n.leader) && n.state != ServerState::Looking {
            return None;
        }
        let nv = Vote::from_notification(n);
        match n.state {
            ServerState::Looking => {
                if core.is_observer() {
                    return None;
                }
                if !core.qv.is_voter(n.leader) {
                    return None;
                }
                if n.election_epoch > core.logical_clock {
                    core.logical_clock = n.election_epoch;
                    self.recvset.clear();
                    let init = core.initial_vote();
                    let cand = (n.leader, n.zxid, n.peer_epoch);
                    let best = if beats(core, cand, init) { cand } else { init };
                    self.set_proposal(core, best);
                } else if n.election_epoch < core.logical_clock {
                    return None;
                } else if beats(core, (n.leader, n.zxid, n.peer_epoch), self.proposal) {
                    self.set_proposal(core, (n.leader, n.zxid, n.peer_epoch));
                }
                self.recvset.insert(from, nv);
                let target = self.proposal_vote(core);
                if Self::count_quorum(core, &self.recvset, &target) {
                    if self.finalize_at.is_none() {
                        self.finalize_at = Some(core.now + core.cfg.finalize_wait_ms);
                    }
                } else {
                    self.finalize_at = None;
                }
                self.try_finalize(core)
            }
            ServerState::Following | ServerState::Leading => {
                if n.election_epoch == core.logical_clock {
                    self.recvset.insert(from, nv);
                    if Self::count_quorum(core, &self.recvset, &nv)
                        && Self::check_leader(core, &self.recvset, n.leader, n.election_epoch)
                    {
                        return Some(nv);
                    }
                }
                self.outofelection.insert(from, nv);
                if Self::count_quorum(core, &self.outofelection, &nv)
                    && Self::check_leader(core, &self.outofelection, n.leader, n.election_epoch)
                {
                    core.logical_clock = n.election_epoch;
                    return Some(nv);
                }
                None
            }
            ServerState::Observing => None,
        }
    }

    fn try_finalize(&mut self, core: &mut Core) -> Option<Vote> {
        let at = self.finalize_at?;
        if core.now < at {
            return None;
        }
        let target = self.proposal_vote(core);
        if Self::count_quorum(core, &self.recvset, &target) {
            return Some(target);
        }
        self.finalize_at = None;
        None
    }

    /// Timer: finish after `finalize_wait`, re-send notifications with back-off.
    pub fn on_tick(&mut self, core: &mut Core) -> Option<Vote> {
        if core.qv.is_voter(core.cfg.my_id) && self.finalize_at.is_none() {
            let target = self.proposal_vote(core);
            if Self::count_quorum(core, &self.recvset, &target) {
                // The only voter has nobody better to wait for: it elects itself at once.
                let alone = core.qv.voters().all(|s| s == core.cfg.my_id);
                let wait = if alone { 0 } else { core.cfg.finalize_wait_ms };
                self.finalize_at = Some(core.now + wait);
            }
        }
        if let Some(v) = self.try_finalize(core) {
            return Some(v);
        }
        if core.now >= self.next_send_at {
            self.interval = (self.interval * 2).min(core.cfg.max_notification_ms);
            self.send_notifications(core);
        }
        None
    }

    /// A notification arrived (the poll was not empty): push the re-send timer back.
    pub fn heard(&mut self, core: &Core) {
        self.next_send_at = self.next_send_at.max(core.now + self.interval);
    }
}
