//! Fast leader election (docs/QUORUM-PROTOCOL.md §3): the LOOKING state of one server.
//!
//! A vote names a leader with that leader's (peer epoch, last zxid); votes are ordered by
//! peer epoch, then zxid, then sid. A server adopts any better vote it hears in its
//! election round, and finishes when a quorum of voters agrees with its proposal and
//! nothing better arrives within `finalize_wait` — or at once when that quorum agrees and
//! the view of the ensemble is complete (see [`Election::view_complete`]): then no better
//! vote can still come, so waiting would only delay the new leader (docs/QUORUM-PROTOCOL.md
//! §3, "Finalizing"). A server joining a settled ensemble
//! finishes from FOLLOWING/LEADING notifications instead. Observers never vote.
//! Owns only election bookkeeping; replies to peers that are not LOOKING are sent by
//! `Zab` (mod.rs), and the role switch happens there too. It never sees `Core`: `Zab`
//! lends it the few fields a step needs as an [`ElectionCtx`].

use super::quorum::QuorumVerifier;
use super::types::{Message, Output, ZabConfig};
use super::vote::{Candidate, Vote};
use rzk_proto::quorum::{Notification, ServerState};
use rzk_proto::ServerId;
use std::collections::{BTreeMap, BTreeSet};
use tracing::debug;

/// What an election step needs of the server's shared state. `Zab` lends it from its
/// `Core` for one call; the election itself does not know `Core`.
#[derive(Debug)]
pub struct ElectionCtx<'a> {
    pub cfg: &'a ZabConfig,
    pub qv: &'a QuorumVerifier,
    /// The last seen membership when it is newer than `qv` (a reconfig proposed and not
    /// committed; `Core::pending_config`): its voters take part as well, and a vote wins
    /// only with a quorum of each membership (ZooKeeper's `getVoteTracker` and
    /// `getCurrentAndNextConfigVoters`).
    pub pending: Option<QuorumVerifier>,
    pub now: u64,
    /// The election round (`logicalclock`); it outlives any one `Election`.
    pub logical_clock: &'a mut i64,
    /// Our own candidate: ourselves with our last logged zxid and current epoch
    /// ([`Candidate::NOBODY`] on an observer).
    pub initial: Candidate,
    pub out: &'a mut Vec<Output>,
}

impl ElectionCtx<'_> {
    fn me(&self) -> ServerId {
        self.cfg.my_id
    }

    fn is_observer(&self) -> bool {
        !self.qv.is_voter(self.cfg.my_id)
    }

    /// A voter of the membership in force or of the pending one (ZooKeeper's
    /// `validVoter`).
    pub fn valid_voter(&self, sid: ServerId) -> bool {
        self.qv.is_voter(sid) || self.pending.as_ref().is_some_and(|p| p.is_voter(sid))
    }

    /// The voters of both memberships, ascending, each once.
    fn election_voters(&self) -> BTreeSet<ServerId> {
        self.qv
            .voters()
            .chain(self.pending.iter().flat_map(|p| p.voters()))
            .collect()
    }

    /// Whether the voters whose vote is the same as `target` hold a quorum of the
    /// membership in force and, while one is pending, of that one too.
    fn agree(&self, votes: &BTreeMap<ServerId, Vote>, target: &Vote) -> bool {
        let agreeing = || {
            votes
                .iter()
                .filter(|(_, v)| v.same_as(target))
                .map(|(s, _)| *s)
        };
        self.qv.has_quorum(agreeing())
            && self
                .pending
                .as_ref()
                .is_none_or(|p| p.has_quorum(agreeing()))
    }

    /// [`beats`] under either membership: a candidate that is a voter of the pending
    /// membership only may win too, as ZooKeeper's `validVoter` lets it (its weight is
    /// then the pending membership's).
    fn beats(&self, new: Candidate, cur: Candidate) -> bool {
        beats(self.qv, new, cur)
            || (!self.qv.is_voter(new.leader)
                && self.pending.as_ref().is_some_and(|p| beats(p, new, cur)))
    }

    fn send_vote(&mut self, to: ServerId, v: &Vote) {
        let n = v.notification(ServerState::Looking, &self.cfg.config_text);
        self.out.push(Output::Send {
            to,
            msg: Message::Election(n),
        });
    }
}

/// `totalOrderPredicate`: does `new` beat `cur`? Only voters can win, and with
/// hierarchical quorums only voters of a weight other than 0.
pub fn beats(qv: &QuorumVerifier, new: Candidate, cur: Candidate) -> bool {
    qv.is_voter(new.leader) && qv.weight(new.leader) != 0 && new > cur
}

/// What a LOOKING server knows of its election round, for operators (the runtime logs
/// it while the election lasts; ZooKeeper shows the same in its notification logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionProgress {
    /// The candidate this server votes for.
    pub proposal: Candidate,
    /// Other members whose notifications this round holds, by id.
    pub heard_from: Vec<ServerId>,
    /// Voters, this server included, whose vote is the same as its own.
    pub agreeing: usize,
    /// Voters in the configuration.
    pub voters: usize,
}

/// State of one election round (LOOKING).
#[derive(Debug)]
pub struct Election {
    /// Whom we vote for.
    pub proposal: Candidate,
    recvset: BTreeMap<ServerId, Vote>,
    outofelection: BTreeMap<ServerId, Vote>,
    /// Voters known to be gone when the round started: the leader whose quorum
    /// connection just closed (a killed process closes its sockets at once). They count
    /// as heard from for [`Election::view_complete`] until they speak again.
    gone: BTreeSet<ServerId>,
    finalize_at: Option<u64>,
    next_send_at: u64,
    interval: u64,
    /// Observers: the round of each voter's last LOOKING vote. A voter whose round
    /// changed is (re)electing: the observer asks again soon instead of at its
    /// backed-off re-send (voters never write to an observer unasked).
    voter_rounds: BTreeMap<ServerId, i64>,
}

impl Election {
    /// Starts a round: bump the logical clock, propose ourselves, notify every voter.
    pub fn start(ctx: &mut ElectionCtx<'_>) -> Election {
        Election::start_without(ctx, None)
    }

    /// Starts a round as [`Election::start`], knowing that voter `gone` (the leader whose
    /// quorum connection just closed) will not answer: a quorum agreeing with every other
    /// voter heard from may finish at once instead of after `finalize_wait`. Should
    /// `gone` answer after all, its vote counts like any other.
    pub fn start_without(ctx: &mut ElectionCtx<'_>, gone: Option<ServerId>) -> Election {
        // Wraps as ZooKeeper's `AtomicLong` does: a notification may carry any round,
        // `Long.MAX_VALUE` included, and we take the highest seen.
        *ctx.logical_clock = ctx.logical_clock.wrapping_add(1);
        let mut e = Election {
            proposal: ctx.initial,
            recvset: BTreeMap::new(),
            outofelection: BTreeMap::new(),
            gone: gone
                .filter(|g| ctx.valid_voter(*g) && *g != ctx.me())
                .into_iter()
                .collect(),
            finalize_at: None,
            next_send_at: 0,
            interval: ctx.cfg.min_notification_ms,
            voter_rounds: BTreeMap::new(),
        };
        e.send_notifications(ctx);
        e
    }

    /// The round as seen by `me`, in round `logical_clock` (see [`ElectionProgress`]).
    pub fn progress(
        &self,
        qv: &QuorumVerifier,
        me: ServerId,
        logical_clock: i64,
    ) -> ElectionProgress {
        let mine = self.proposal_vote(logical_clock);
        let mut heard_from: Vec<ServerId> = self
            .recvset
            .keys()
            .chain(self.outofelection.keys())
            .copied()
            .filter(|s| *s != me)
            .collect();
        heard_from.sort();
        heard_from.dedup();
        ElectionProgress {
            proposal: self.proposal,
            heard_from,
            agreeing: self
                .recvset
                .iter()
                .filter(|(s, v)| qv.is_voter(**s) && v.same_as(&mine))
                .count(),
            voters: qv.voters().count(),
        }
    }

    /// Our proposal as a LOOKING vote in round `logical_clock`.
    pub fn proposal_vote(&self, logical_clock: i64) -> Vote {
        Vote::looking(self.proposal, logical_clock)
    }

    fn send_notifications(&mut self, ctx: &mut ElectionCtx<'_>) {
        let v = self.proposal_vote(*ctx.logical_clock);
        let me = ctx.me();
        if ctx.valid_voter(me) {
            self.recvset.insert(me, v);
        }
        let voters: Vec<ServerId> = ctx
            .election_voters()
            .into_iter()
            .filter(|s| *s != me)
            .collect();
        for to in voters {
            ctx.send_vote(to, &v);
        }
        self.next_send_at = ctx.now + self.interval;
    }

    fn set_proposal(&mut self, ctx: &mut ElectionCtx<'_>, p: Candidate) {
        self.proposal = p;
        self.finalize_at = None;
        self.send_notifications(ctx);
    }

    /// True when every voter is accounted for in this round: we have its notification of
    /// this round, or it is us, or it is known gone (see [`Election::start_without`]).
    /// Every vote we hold is then no better than our proposal (we adopt any better one
    /// on arrival), so no notification that could change the outcome is still due from a
    /// live voter, and waiting `finalize_wait` for one is pointless. (Safety never rests
    /// on the wait: ZooKeeper's window is only a heuristic too, and a leader elected by a
    /// quorum all holding no later history than it is a correct leader; a late better
    /// candidate is truncated or synced by it.)
    pub fn view_complete(&self, ctx: &ElectionCtx<'_>) -> bool {
        let me = ctx.me();
        ctx.election_voters()
            .into_iter()
            .all(|s| s == me || self.recvset.contains_key(&s) || self.gone.contains(&s))
    }

    /// How long to wait for better votes once a quorum agrees with our proposal:
    /// nothing when we are the only voter or the view is complete, else `finalize_wait`.
    fn finalize_delay(&self, ctx: &ElectionCtx<'_>) -> u64 {
        let me = ctx.me();
        let alone = ctx.election_voters().into_iter().all(|s| s == me);
        if alone || self.view_complete(ctx) {
            0
        } else {
            ctx.cfg.finalize_wait_ms
        }
    }

    /// `checkLeader`: a voted-for leader other than us must itself have told us it is
    /// LEADING; if it is us, the round must be the current one.
    fn check_leader(
        ctx: &ElectionCtx<'_>,
        votes: &BTreeMap<ServerId, Vote>,
        leader: ServerId,
        ee: i64,
    ) -> bool {
        if leader != ctx.me() {
            votes
                .get(&leader)
                .is_some_and(|v| v.state == ServerState::Leading)
        } else {
            *ctx.logical_clock == ee
        }
    }

    /// Handles a notification from voter `from`. Returns the final vote when the election
    /// is over.
    pub fn on_notification(
        &mut self,
        ctx: &mut ElectionCtx<'_>,
        from: ServerId,
        n: &Notification,
    ) -> Option<Vote> {
        let nv = Vote::from_notification(n);
        if !ctx.valid_voter(nv.leader) && n.state != ServerState::Looking {
            return None;
        }
        match n.state {
            ServerState::Looking => {
                // An observer takes part as ZooKeeper's does: it adopts the best voter
                // candidate of the newest round (its own vote is nobody), answers it at
                // once, and ends its election when a quorum of voters agree, never
                // counted itself. Ignoring these votes left it to its backed-off re-send.
                if ctx.is_observer()
                    && self.voter_rounds.insert(from, n.election_epoch) != Some(n.election_epoch)
                {
                    // A voter restarted or began a new round: back to the shortest
                    // re-send interval until the voters have elected (ZooKeeper's
                    // observer is back ~1 s after its voters recover from an outage).
                    self.interval = ctx.cfg.min_notification_ms;
                    self.next_send_at = ctx.now + self.interval;
                }
                if !ctx.valid_voter(nv.leader) {
                    return None;
                }
                let cand = nv.candidate();
                if n.election_epoch > *ctx.logical_clock {
                    *ctx.logical_clock = n.election_epoch;
                    self.recvset.clear();
                    let init = ctx.initial;
                    let best = if ctx.beats(cand, init) { cand } else { init };
                    self.set_proposal(ctx, best);
                } else if n.election_epoch < *ctx.logical_clock {
                    return None;
                } else if ctx.beats(cand, self.proposal) {
                    self.set_proposal(ctx, cand);
                }
                self.recvset.insert(from, nv);
                self.gone.remove(&from);
                let target = self.proposal_vote(*ctx.logical_clock);
                if ctx.agree(&self.recvset, &target) {
                    let at = ctx.now + self.finalize_delay(ctx);
                    // A view that became complete shortens a window already running.
                    self.finalize_at = Some(self.finalize_at.map_or(at, |f| f.min(at)));
                    debug!(sid = %ctx.me(), leader = %self.proposal.leader,
                        wait_ms = self.finalize_at.map_or(0, |f| f.saturating_sub(ctx.now)),
                        "a quorum agrees with my vote; finalizing");
                } else {
                    self.finalize_at = None;
                }
                self.try_finalize(ctx)
            }
            ServerState::Following | ServerState::Leading => {
                if n.election_epoch == *ctx.logical_clock {
                    self.recvset.insert(from, nv);
                    if ctx.agree(&self.recvset, &nv)
                        && Self::check_leader(ctx, &self.recvset, nv.leader, n.election_epoch)
                    {
                        return Some(nv);
                    }
                }
                self.outofelection.insert(from, nv);
                if ctx.agree(&self.outofelection, &nv)
                    && Self::check_leader(ctx, &self.outofelection, nv.leader, n.election_epoch)
                {
                    *ctx.logical_clock = n.election_epoch;
                    return Some(nv);
                }
                None
            }
            ServerState::Observing => None,
        }
    }

    fn try_finalize(&mut self, ctx: &ElectionCtx<'_>) -> Option<Vote> {
        let at = self.finalize_at?;
        if ctx.now < at {
            return None;
        }
        let target = self.proposal_vote(*ctx.logical_clock);
        if ctx.agree(&self.recvset, &target) {
            return Some(target);
        }
        self.finalize_at = None;
        None
    }

    /// Timer: finish after `finalize_wait`, re-send notifications with back-off.
    pub fn on_tick(&mut self, ctx: &mut ElectionCtx<'_>) -> Option<Vote> {
        let me = ctx.me();
        if ctx.valid_voter(me) && self.finalize_at.is_none() {
            let target = self.proposal_vote(*ctx.logical_clock);
            if ctx.agree(&self.recvset, &target) {
                // A lone voter, or one with a complete view, has nobody better to wait
                // for: it finishes at once.
                self.finalize_at = Some(ctx.now + self.finalize_delay(ctx));
            }
        }
        if let Some(v) = self.try_finalize(ctx) {
            return Some(v);
        }
        if ctx.now >= self.next_send_at {
            self.interval = (self.interval * 2).min(ctx.cfg.max_notification_ms);
            self.send_notifications(ctx);
        }
        None
    }

    /// A notification arrived (the poll was not empty): push the re-send timer back.
    pub fn heard(&mut self, now: u64) {
        self.next_send_at = self.next_send_at.max(now + self.interval);
    }
}
