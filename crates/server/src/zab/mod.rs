//! The consensus core (ZooKeeper's Zab + fast leader election), sans-IO.
//!
//! Owns: the protocol state of one server — election, discovery, synchronisation,
//! broadcast, observers, pings and timeouts — as a deterministic state machine. The
//! runtime (net/ in production, rzk-sim in tests) feeds it [`Input`]s and carries out the
//! [`Output`]s it returns, in order.
//!
//! Must never: use tokio, sockets, files, threads, clocks or randomness. Time arrives as
//! `Input::Tick`; durability arrives as `Input::Persisted` / `Input::EpochPersisted`.
//! Transaction payloads are opaque bytes; the core never looks inside them.
//!
//! Runtime contract, in short:
//! * deliver election notifications and quorum packets as `Input::Message`; a quorum
//!   connection is one ordered stream (TCP); report a broken one with `Disconnected`;
//! * `Connect{to}` opens a fresh quorum connection to the leader (closing any older one),
//!   `Disconnect{peer}` closes one; the leader learns a learner's sid from LearnerInfo;
//! * carry out disk outputs in order, fsync, and report completion; the core never acts
//!   on state (ACK, ACKEPOCH, NEWLEADER ACK, commit-by-self) before it is durable;
//! * apply `Commit`s in order to the database; serve clients after `Established`;
//! * on the leader, call [`Zab::next_zxid`] to build a txn, then `Input::Propose`.

mod core;
pub mod designate;
pub mod election;
pub mod leader;
pub mod learner;
pub mod log;
pub mod observer_master;
pub mod quorum;
pub mod sync;
pub mod types;
pub mod vote;

/// A leader's learners by how they joined (FOLLOWERINFO or OBSERVERINFO), as
/// ZooKeeper's `mntr` counts them: `followers` and `observers` connected,
/// `synced_followers` done with their sync, `synced_non_voting` of those outside the
/// voters (a server that follows without a vote: not in the membership yet, or removed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LearnerCounts {
    pub followers: usize,
    pub synced_followers: usize,
    pub synced_non_voting: usize,
    pub observers: usize,
}

/// The `version=<hex zxid>` line of a membership text, read without the rest of it.
fn text_version(text: &str) -> Option<Zxid> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("version="))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .and_then(|b| i64::try_from(b).ok())
        .map(Zxid)
}

#[cfg(test)]
mod tests;

pub use rzk_proto::ServerId;
pub use types::{Durable, EpochKind, Input, Message, Output, Role, Txn, ZabConfig};

use self::core::Core;
use election::{Election, ElectionCtx};
use leader::{Leader, LeaderNext};
use learner::{Learner, LearnerNext};
use log::TxnLog;
use quorum::QuorumVerifier;
use rzk_proto::quorum::{PacketType, ServerState};
use rzk_proto::Zxid;
use tracing::debug;
use vote::{Candidate, Vote};

#[derive(Debug)]
enum State {
    Looking(Election),
    Learning(Learner),
    Leading(Leader),
}

/// Most learner handshakes held while LOOKING ([`Zab::early_learners`]); one per peer,
/// so this only bounds a flood of unknown server ids.
const MAX_EARLY_LEARNERS: usize = 256;

/// One server's consensus state machine.
#[derive(Debug)]
pub struct Zab {
    core: Core,
    state: State,
    /// FOLLOWERINFO / OBSERVERINFO packets of learners that connected while this server
    /// was still LOOKING (the latest per peer), answered when the election ends: replayed
    /// into the leader's discovery if this server leads, else their connections are
    /// closed. A ZooKeeper learner whose election ended a few ms sooner dials the quorum
    /// port, which rzk keeps bound; dropping its handshake sent it back to LOOKING in a
    /// newer round, where it no longer counted this server's LEADING vote, and the new
    /// leader waited out initLimit for a quorum (mixed-ensemble review, session 40).
    /// ZooKeeper's leader binds its port only once LEADING, and its learners retry a
    /// refused connection.
    early_learners: Vec<(ServerId, rzk_proto::quorum::QuorumPacket)>,
    /// While leading and not yet established: the latest LOOKING vote of each other
    /// voter that names a candidate better than this server, in this election round or
    /// a later one. When a quorum of voters vote for one such candidate, they are
    /// electing it and will not follow this server: it steps down at once instead of
    /// waiting out initLimit for a quorum (mixed-ensemble review, session 40: rzk ends
    /// an election as soon as every live voter's vote is in, and a ZooKeeper voter still
    /// in its 200 ms wait could switch to a restarted voter's better vote, leaving the
    /// rzk leader alone in discovery for initLimit).
    rival_votes: std::collections::BTreeMap<ServerId, Candidate>,
}

impl Zab {
    /// Starts a server from what the runtime recovered; it begins LOOKING.
    pub fn new(cfg: ZabConfig, durable: Durable, now_ms: u64) -> (Zab, Vec<Output>) {
        let qv = QuorumVerifier::with_groups(&cfg.voters, &cfg.observers, cfg.groups.as_ref());
        let me = cfg.my_id;
        let mut core = Core {
            cfg,
            qv,
            now: now_ms,
            accepted_epoch: durable.accepted_epoch,
            current_epoch: durable.current_epoch,
            log: TxnLog::recovered(durable.snapshot_zxid, durable.log),
            logical_clock: 0,
            vote: Vote::looking(
                Candidate {
                    leader: me,
                    zxid: Zxid::ZERO,
                    epoch: 0,
                },
                0,
            ),
            state: ServerState::Looking,
            out: Vec::new(),
        };
        let e = Election::start(&mut election_ctx(&mut core));
        core.vote = e.proposal_vote(core.logical_clock);
        core.out.push(Output::RoleChanged {
            role: Role::Looking,
            leader: None,
        });
        let mut z = Zab {
            core,
            state: State::Looking(e),
            early_learners: Vec::new(),
            rival_votes: Default::default(),
        };
        let out = std::mem::take(&mut z.core.out);
        (z, out)
    }

    pub fn my_id(&self) -> ServerId {
        self.core.cfg.my_id
    }

    pub fn role(&self) -> Role {
        match (&self.state, self.core.learns_as_observer()) {
            (State::Looking(_), _) => Role::Looking,
            (State::Leading(_), _) => Role::Leading,
            (State::Learning(_), true) => Role::Observing,
            (State::Learning(_), false) => Role::Following,
        }
    }

    /// The membership in force: its version and voters (a reconfig's version is its
    /// txn's zxid).
    pub fn membership(&self) -> (Zxid, Vec<ServerId>) {
        (self.core.cfg.config_version, self.core.cfg.voters.clone())
    }

    /// The leader this server follows or is (None while LOOKING).
    pub fn leader(&self) -> Option<ServerId> {
        match &self.state {
            State::Looking(_) => None,
            State::Learning(l) => Some(l.leader),
            State::Leading(_) => Some(self.core.cfg.my_id),
        }
    }

    /// While LOOKING: whom this server has heard from and how many votes agree with its
    /// own (`None` in any other role).
    pub fn election_progress(&self) -> Option<election::ElectionProgress> {
        match &self.state {
            State::Looking(e) => {
                Some(e.progress(&self.core.qv, self.core.cfg.my_id, self.core.logical_clock))
            }
            _ => None,
        }
    }

    /// True once this server may serve clients (leader established / learner UPTODATE).
    pub fn is_serving(&self) -> bool {
        match &self.state {
            State::Looking(_) => false,
            State::Learning(l) => l.is_serving(),
            State::Leading(l) => l.is_established(),
        }
    }

    /// On an established leader: the zxid the next proposal must carry.
    pub fn next_zxid(&self) -> Option<Zxid> {
        match &self.state {
            State::Leading(l) => l.next_zxid(),
            _ => None,
        }
    }

    /// Leader: learners' syncs waiting for a commit (0 when not leading).
    pub fn pending_syncs(&self) -> usize {
        match &self.state {
            State::Leading(l) => l.pending_syncs(),
            _ => 0,
        }
    }

    /// Leader: learners in the broadcast phase (synced); empty on any other server.
    pub fn synced_learners(&self) -> Vec<ServerId> {
        match &self.state {
            State::Leading(l) => l.synced_learners(),
            _ => Vec::new(),
        }
    }

    /// Leader: its learners counted by how they joined; all zero on any other server.
    pub fn learner_counts(&self) -> LearnerCounts {
        match &self.state {
            State::Leading(l) => l.learner_counts(&self.core.qv),
            _ => LearnerCounts::default(),
        }
    }

    /// Leader: the learners that joined as followers (FOLLOWERINFO, not OBSERVERINFO)
    /// and finished their sync, the leader not included; empty on any other server. The
    /// set a reconfig's new voters must hold a quorum of, with the leader (ZooKeeper's
    /// `Leader.isQuorumSynced`, which counts its forwarding followers only).
    pub fn synced_followers(&self) -> std::collections::BTreeSet<ServerId> {
        match &self.state {
            State::Leading(l) => l.synced_followers(),
            _ => std::collections::BTreeSet::new(),
        }
    }

    pub fn accepted_epoch(&self) -> u32 {
        self.core.accepted_epoch
    }

    pub fn current_epoch(&self) -> u32 {
        self.core.current_epoch
    }

    pub fn last_logged(&self) -> Zxid {
        self.core.log.last()
    }

    pub fn last_committed(&self) -> Zxid {
        self.core.log.committed()
    }

    /// The in-memory log (committed window and outstanding proposals) and the
    /// configuration text a follower's observer master syncs observers from.
    pub fn observer_master_view(&self) -> observer_master::LogView<'_> {
        observer_master::LogView {
            log: &self.core.log,
            config_text: &self.core.cfg.config_text,
        }
    }

    /// Gives back an output vector returned by [`Zab::step`] once the runtime has carried
    /// it out (drained): the next step fills it instead of allocating a new one.
    pub fn recycle(&mut self, mut outs: Vec<Output>) {
        if self.core.out.capacity() == 0 {
            outs.clear();
            self.core.out = outs;
        }
    }

    /// Feeds one input; returns what the runtime must do, in order.
    pub fn step(&mut self, input: Input) -> Vec<Output> {
        match input {
            Input::Tick { now_ms } => {
                self.core.now = self.core.now.max(now_ms);
                self.on_tick();
            }
            Input::Message { from, msg } => match msg {
                Message::Election(n) => self.on_notification(from, n),
                Message::Quorum(p) => self.on_packet(from, p),
            },
            Input::Persisted { up_to } => {
                self.core.log.mark_persisted(up_to);
                match &mut self.state {
                    State::Leading(l) => l.on_persisted(&mut self.core),
                    State::Learning(l) => l.on_persisted(&mut self.core),
                    State::Looking(_) => {}
                }
            }
            Input::EpochPersisted { kind, epoch } => {
                let c = &mut self.core;
                match &mut self.state {
                    State::Leading(l) => l.on_epoch_persisted(c, kind, epoch),
                    State::Learning(l) => l.on_epoch_persisted(c, kind, epoch),
                    State::Looking(_) => {}
                }
                // Whatever our role now, the file holds `epoch`.
                match kind {
                    EpochKind::Accepted => c.accepted_epoch = c.accepted_epoch.max(epoch),
                    EpochKind::Current => c.current_epoch = c.current_epoch.max(epoch),
                }
            }
            Input::Disconnected { peer } => match &mut self.state {
                State::Leading(l) => l.on_disconnected(&mut self.core, peer),
                State::Learning(l) => {
                    if l.on_disconnected(&mut self.core, peer) == LearnerNext::Looking {
                        // The leader that was talking to us closed the connection (a
                        // killed process closes its sockets at once): elect without it.
                        let gone = l.was_connected().then_some(l.leader);
                        self.go_looking_without(gone);
                    }
                }
                State::Looking(_) => self.early_learners.retain(|(s, _)| *s != peer),
            },
            Input::Propose { zxid, payload } => match &mut self.state {
                State::Leading(l) => l.on_propose(&mut self.core, zxid, payload),
                _ => self.core.out.push(Output::ProposalRejected { zxid }),
            },
            Input::SessionTouches(b) => {
                if let State::Learning(l) = &mut self.state {
                    l.add_touches(&b);
                }
            }
            Input::Forward(p) => {
                if let State::Learning(l) = &mut self.state {
                    l.forward(&mut self.core, p);
                }
            }
            Input::SendToLearner { to, packet } => {
                if let State::Leading(l) = &mut self.state {
                    l.send_to_learner(&mut self.core, to, packet);
                }
            }
            Input::SyncRequest { from } => {
                if let State::Leading(l) = &mut self.state {
                    l.on_sync_request(&mut self.core, from);
                }
            }
        }
        self.refresh_reported_vote();
        std::mem::take(&mut self.core.out)
    }

    /// Once serving, report the established (leader, epoch): every member of the ensemble
    /// then answers a joining server with the same vote, whichever notification made it
    /// join. (Without this, a follower that joined from an older round keeps reporting that
    /// round's peer epoch and a joining server can never see a quorum.)
    fn refresh_reported_vote(&mut self) {
        if self.is_serving() {
            if let Some(l) = self.leader() {
                self.core.vote.leader = l;
                self.core.vote.peer_epoch = i64::from(self.core.current_epoch);
            }
        }
    }

    fn on_tick(&mut self) {
        match &mut self.state {
            State::Looking(e) => {
                let r = e.on_tick(&mut election_ctx(&mut self.core));
                self.core.vote = e.proposal_vote(self.core.logical_clock);
                if let Some(v) = r {
                    self.finish_election(v);
                }
            }
            State::Learning(l) => {
                if l.on_tick(&mut self.core) == LearnerNext::Looking {
                    self.go_looking();
                }
            }
            State::Leading(l) => {
                if l.on_tick(&mut self.core) == LeaderNext::StepDown {
                    self.leader_steps_down();
                }
            }
        }
    }

    fn on_notification(&mut self, from: ServerId, n: rzk_proto::quorum::Notification) {
        let core = &mut self.core;
        if from == core.cfg.my_id {
            return;
        }
        if matches!(self.state, State::Looking(_)) && !n.config.is_empty() {
            if let Some(c) = (core.cfg.config_of_text)(&n.config) {
                if c.version > core.cfg.config_version {
                    // A newer membership than ours (a reconfig committed while we were
                    // away): put it in force and elect again under it.
                    tracing::info!(sid = %core.cfg.my_id, %from,
                        version = %c.version,
                        "newer membership from a notification");
                    let leader = ServerId(n.leader);
                    core.activate(&c, leader);
                    self.go_looking();
                    return;
                }
            } else if let Some(why) = (core.cfg.unreadable_config)(&n.config) {
                if text_version(&n.config).is_some_and(|v| v > core.cfg.config_version) {
                    // The ensemble moved on to a membership this server cannot count
                    // quorums of: electing under the old one could split the ensemble.
                    core.out.push(Output::Unsupported {
                        why: format!("a newer membership in server {from}'s vote: {why}"),
                    });
                    return;
                }
            }
        }
        let core = &mut self.core;
        if !core.is_election_voter(from) {
            // A non-voter learns the leader from our answer: an observer, or a server
            // outside our membership (one about to be added by a reconfig), as
            // ZooKeeper's FastLeaderElection answers a sender outside its voting view.
            if !core.is_observer() {
                core.reply_vote(from);
            }
            return;
        }
        match &mut self.state {
            State::Looking(e) => {
                e.heard(core.now);
                let r = e.on_notification(&mut election_ctx(core), from, &n);
                core.vote = e.proposal_vote(core.logical_clock);
                if n.state == ServerState::Looking
                    && n.election_epoch < core.logical_clock
                    && !core.is_observer()
                {
                    core.reply_vote(from);
                }
                if let Some(v) = r {
                    self.finish_election(v);
                }
            }
            _ => {
                if n.state == ServerState::Looking {
                    core.reply_vote(from);
                }
                if self.rivals_elect_another(from, &n) {
                    self.go_looking();
                }
            }
        }
    }

    /// Records a voter's notification while leading before the leader is established
    /// ([`Zab::rival_votes`]); true when a quorum of other voters vote in a LOOKING
    /// round for one candidate that beats this server.
    fn rivals_elect_another(
        &mut self,
        from: ServerId,
        n: &rzk_proto::quorum::Notification,
    ) -> bool {
        let State::Leading(l) = &self.state else {
            return false;
        };
        if l.is_established() {
            self.rival_votes.clear();
            return false;
        }
        let core = &self.core;
        let me = core.cfg.my_id;
        let mine = core.vote.candidate();
        let theirs = Vote::from_notification(n).candidate();
        if n.state == ServerState::Looking
            && n.election_epoch >= core.logical_clock
            && theirs.leader != me
            && election::beats(&core.qv, theirs, mine)
        {
            self.rival_votes.insert(from, theirs);
        } else {
            self.rival_votes.remove(&from);
        }
        let backers = self
            .rival_votes
            .iter()
            .filter(|(_, c)| **c == theirs)
            .map(|(s, _)| *s);
        if self.rival_votes.get(&from) == Some(&theirs) && core.qv.has_quorum(backers) {
            tracing::info!(sid = %me, candidate = %theirs.leader,
                "a quorum of voters elects another leader; stepping down before establishing");
            return true;
        }
        false
    }

    fn on_packet(&mut self, from: ServerId, p: rzk_proto::quorum::QuorumPacket) {
        match &mut self.state {
            State::Leading(l) => {
                if l.on_packet(&mut self.core, from, p) == LeaderNext::StepDown {
                    self.leader_steps_down();
                }
            }
            State::Learning(l) => {
                if matches!(p.ty, PacketType::FollowerInfo | PacketType::ObserverInfo) {
                    self.core.out.push(Output::Disconnect { peer: from });
                } else {
                    match l.on_packet(&mut self.core, from, p) {
                        LearnerNext::Stay => {}
                        LearnerNext::Looking => self.go_looking(),
                        LearnerNext::Switch { leader, zxid } => {
                            self.switch_after_reconfig(leader, zxid)
                        }
                    }
                }
            }
            State::Looking(_) => {
                // Not leading yet: hold a learner's handshake until the election ends.
                if matches!(p.ty, PacketType::FollowerInfo | PacketType::ObserverInfo) {
                    if let Some(i) = self.early_learners.iter().position(|(s, _)| *s == from) {
                        self.early_learners[i].1 = p;
                    } else if self.early_learners.len() < MAX_EARLY_LEARNERS {
                        debug!(sid = %self.core.cfg.my_id, %from, "learner handshake held until the election ends");
                        self.early_learners.push((from, p));
                    } else {
                        self.core.out.push(Output::Disconnect { peer: from });
                    }
                } else {
                    debug!(sid = %self.core.cfg.my_id, %from, ty = ?p.ty, "quorum packet while LOOKING dropped");
                }
            }
        }
    }

    fn finish_election(&mut self, v: Vote) {
        self.rival_votes.clear();
        let core = &mut self.core;
        let me = core.cfg.my_id;
        core.vote = Vote {
            state: ServerState::Looking,
            ..v
        };
        if v.leader == me {
            core.state = ServerState::Leading;
            core.vote.state = ServerState::Leading;
            core.out.push(Output::RoleChanged {
                role: Role::Leading,
                leader: Some(me),
            });
            let (l, _) = Leader::start(core);
            self.state = State::Leading(l);
            for (from, p) in std::mem::take(&mut self.early_learners) {
                match &mut self.state {
                    State::Leading(l) => {
                        if l.on_packet(&mut self.core, from, p) == LeaderNext::StepDown {
                            self.leader_steps_down();
                        }
                    }
                    // A held handshake made the new leader step down (it names a newer
                    // epoch): LOOKING again, so the rest are held again.
                    _ => self.on_packet(from, p),
                }
            }
        } else {
            for (from, _) in std::mem::take(&mut self.early_learners) {
                self.core.out.push(Output::Disconnect { peer: from });
            }
            let core = &mut self.core;
            let (st, role) = if core.learns_as_observer() {
                (ServerState::Observing, Role::Observing)
            } else {
                (ServerState::Following, Role::Following)
            };
            core.state = st;
            core.vote.state = st;
            core.out.push(Output::RoleChanged {
                role,
                leader: Some(v.leader),
            });
            self.state = State::Learning(Learner::start(core, v.leader));
        }
    }

    fn go_looking(&mut self) {
        self.go_looking_without(None);
    }

    /// The leader stops leading: to the leader a committed reconfig designated in its
    /// place ([`Leader::designated_elsewhere`]), else to election.
    fn leader_steps_down(&mut self) {
        if let State::Leading(l) = &self.state {
            if let Some(designated) = l.designated_elsewhere() {
                let zxid = l.last_proposed();
                self.switch_after_reconfig(designated, zxid);
                return;
            }
        }
        self.go_looking();
    }

    /// After a committed reconfig that names `designated` the leader of the new
    /// membership (or changes this server's learner type): leave the current role and
    /// lead (when `designated` is this server), follow or observe `designated` at once,
    /// without an election. ZooKeeper's `updateServerState` with the reconfig flag set;
    /// the vote is its `updateVote`: `designated` and `zxid`, with election and peer epoch
    /// -1 until the new term is established ([`Zab::refresh_reported_vote`] then reports
    /// its epoch).
    fn switch_after_reconfig(&mut self, designated: ServerId, zxid: Zxid) {
        match &mut self.state {
            State::Leading(l) => l.shutdown(&mut self.core),
            State::Learning(l) => {
                let old = l.leader;
                self.core.out.push(Output::Disconnect { peer: old });
            }
            State::Looking(_) => {}
        }
        tracing::info!(sid = %self.core.cfg.my_id, %designated, %zxid,
            "going straight to the leader the reconfig designated");
        let v = Vote::looking(
            Candidate {
                leader: designated,
                zxid,
                epoch: -1,
            },
            -1,
        );
        self.finish_election(v);
    }

    /// Goes LOOKING; `gone` is a voter known not to answer (see
    /// [`Election::start_without`]).
    fn go_looking_without(&mut self, gone: Option<ServerId>) {
        self.rival_votes.clear();
        if let State::Leading(l) = &mut self.state {
            l.shutdown(&mut self.core);
        }
        let core = &mut self.core;
        core.state = ServerState::Looking;
        core.out.push(Output::RoleChanged {
            role: Role::Looking,
            leader: None,
        });
        let e = Election::start_without(&mut election_ctx(core), gone);
        core.vote = e.proposal_vote(core.logical_clock);
        self.state = State::Looking(e);
    }
}

/// Lends the election the fields of `core` it needs for one step.
fn election_ctx(core: &mut Core) -> ElectionCtx<'_> {
    ElectionCtx {
        initial: core.initial_vote(),
        cfg: &core.cfg,
        qv: &core.qv,
        pending: core.pending_config().map(|c| c.quorum()),
        now: core.now,
        logical_clock: &mut core.logical_clock,
        out: &mut core.out,
    }
}
