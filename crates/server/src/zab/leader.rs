//! The LEADING role: discovery (agree on a new epoch), synchronisation (bring each learner
//! to the leader's history, then NEWLEADER / UPTODATE) and broadcast (PROPOSAL, ACK,
//! COMMIT in zxid order on a quorum of voters; INFORM to observers), plus pings and the
//! initLimit / syncLimit liveness rules. Never touches disk or sockets: it asks through
//! `Output`s and waits for the matching `Input`.

use super::core::Core;
use super::designate::designated_leader;
use super::quorum::QuorumVerifier;
use super::sync::{plan, SyncMode};
use super::types::{EpochKind, NewConfig, Output, Txn};
use bytes::Bytes;
use rzk_proto::quorum::payload::{decode_int, encode_int, LearnerInfo};
use rzk_proto::quorum::{PacketType, QuorumPacket, LEARNER_PROTOCOL_VERSION};
use rzk_proto::{ServerId, Zxid};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use tracing::{debug, info, warn};

/// Most proposals a leader keeps outstanding (un-committed) before refusing new ones.
pub const MAX_OUTSTANDING: usize = 10_000;

/// Who acknowledged a proposal (inline up to a 7-voter ensemble: no allocation per
/// proposal).
type Acks = smallvec::SmallVec<[ServerId; 7]>;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Collecting accepted epochs (FOLLOWERINFO) from a quorum.
    Discovering,
    /// New epoch chosen; waiting for our acceptedEpoch to be durable.
    AcceptedPersisting,
    /// LEADERINFO sent; collecting ACKEPOCH from a quorum.
    EpochAcks,
    /// Epoch acked by a quorum; waiting for our currentEpoch to be durable.
    CurrentPersisting,
    /// Learners synced; waiting for a quorum of NEWLEADER acks.
    NewLeaderAcks,
    Established,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HState {
    /// FOLLOWERINFO received; LEADERINFO not sent yet (epoch not decided).
    AwaitEpoch,
    AwaitAckEpoch,
    /// ACKEPOCH received; sync starts once our currentEpoch is durable.
    Acked {
        last: Zxid,
    },
    /// Sync packets and NEWLEADER sent; waiting for the NEWLEADER ACK.
    Syncing,
    /// NEWLEADER acked; UPTODATE waits for the epoch to be established.
    AwaitEstablish,
    Broadcast,
}

#[derive(Debug)]
struct Handler {
    observer: bool,
    state: HState,
    deadline_tick: u64,
    /// COMMITs for a participant between its NEWLEADER and its UPTODATE, sent right
    /// after UPTODATE. ZooKeeper 3.8.0's learner throws a NullPointerException on a
    /// COMMIT that arrives after NEWLEADER but before UPTODATE (`Learner.syncWithLeader`
    /// reads the head of its uncommitted proposals, emptied at NEWLEADER; ZOOKEEPER-4394)
    /// and then re-syncs with a confused txn log (tests/mixed saw its "digest mismatch").
    /// After UPTODATE a learner commits them against the proposals it logged at
    /// NEWLEADER, as it does any COMMIT.
    /// COMMIT and COMMITANDACTIVATE packets, in zxid order.
    held_commits: Vec<QuorumPacket>,
}

/// A proposed, not yet committed reconfig (ZooKeeper's last seen quorum verifier while
/// it differs from the one in force).
#[derive(Debug)]
struct PendingReconfig {
    zxid: Zxid,
    qv: QuorumVerifier,
    config: NewConfig,
}

impl Handler {
    fn forwarding(&self) -> bool {
        matches!(
            self.state,
            HState::Syncing | HState::AwaitEstablish | HState::Broadcast
        )
    }
}

/// What the leader wants the server to do next.
#[derive(Debug, PartialEq, Eq)]
pub enum LeaderNext {
    Stay,
    StepDown,
}

#[derive(Debug)]
pub struct Leader {
    phase: Phase,
    epoch: u32,
    reports: BTreeMap<ServerId, u32>,
    epoch_acks: BTreeSet<ServerId>,
    newleader_acks: BTreeSet<ServerId>,
    phase_deadline: u64,
    learners: BTreeMap<ServerId, Handler>,
    /// Proposals not yet committed, in zxid order (proposals are made in increasing
    /// zxid order and commit from the front), with the voters that have them on disk (a
    /// short list: cheaper than a set per proposal on the write path).
    outstanding: VecDeque<(Zxid, Acks)>,
    last_proposed: Zxid,
    history_end: Zxid,
    tick: u64,
    next_half_tick: u64,
    odd_half: bool,
    pending_syncs: Vec<(Zxid, ServerId)>,
    /// Non-voters already warned about for announcing a newer accepted epoch (each is
    /// warned about once per term; a repeating one would flood the log).
    warned_strangers: BTreeSet<ServerId>,
    /// The outstanding reconfig: from it on, every proposal needs a quorum of the old AND
    /// of the new membership (ZooKeeper's `qvAcksetPairs`).
    reconfig: Option<PendingReconfig>,
    /// A committed reconfig designated this other server as the leader of its membership:
    /// propose and commit nothing more (ZooKeeper: `allowedToCommit = false`), step down
    /// at the next tick and follow it ([`Leader::designated_elsewhere`]).
    designated_elsewhere: Option<ServerId>,
}

impl Leader {
    pub fn start(core: &mut Core) -> (Leader, LeaderNext) {
        let mut reports = BTreeMap::new();
        reports.insert(core.cfg.my_id, core.accepted_epoch);
        let mut l = Leader {
            phase: Phase::Discovering,
            epoch: 0,
            reports,
            epoch_acks: BTreeSet::new(),
            newleader_acks: BTreeSet::new(),
            phase_deadline: core.now + core.cfg.init_limit * core.tick_ms(),
            learners: BTreeMap::new(),
            outstanding: VecDeque::new(),
            last_proposed: core.log.last(),
            history_end: core.log.last(),
            tick: 0,
            next_half_tick: core.now + core.tick_ms() / 2,
            odd_half: false,
            pending_syncs: Vec::new(),
            warned_strangers: BTreeSet::new(),
            reconfig: None,
            designated_elsewhere: None,
        };
        info!(sid = %core.cfg.my_id, "leading: discovery");
        l.check_epoch_quorum(core);
        (l, LeaderNext::Stay)
    }

    pub fn is_established(&self) -> bool {
        self.phase == Phase::Established
    }

    /// Learners in the broadcast phase (synced), for monitoring.
    /// Learners' syncs waiting for the commit of the last proposal (ZooKeeper's
    /// `pending_syncs`).
    pub fn pending_syncs(&self) -> usize {
        self.pending_syncs.len()
    }

    /// The version of the proposed, not yet committed reconfig, if any (ZooKeeper's last
    /// seen quorum verifier while it differs from the one in force).
    pub fn reconfig_in_progress(&self) -> Option<Zxid> {
        self.reconfig.as_ref().map(|r| r.config.version)
    }

    /// Followers (not observers) whose sync is complete: who counts in ZooKeeper's
    /// `isQuorumSynced` besides the leader.
    pub fn synced_followers(&self) -> BTreeSet<ServerId> {
        self.learners
            .iter()
            .filter(|(_, h)| h.state == HState::Broadcast && !h.observer)
            .map(|(s, _)| *s)
            .collect()
    }

    /// Its learners by how they joined (see `zab::LearnerCounts`).
    pub fn learner_counts(&self, qv: &super::quorum::QuorumVerifier) -> super::LearnerCounts {
        let synced = self.synced_followers();
        let observers = self.learners.values().filter(|h| h.observer).count();
        super::LearnerCounts {
            followers: self.learners.len() - observers,
            synced_non_voting: synced.iter().filter(|s| !qv.is_voter(**s)).count(),
            synced_followers: synced.len(),
            observers,
        }
    }

    pub fn synced_learners(&self) -> Vec<ServerId> {
        self.learners
            .iter()
            .filter(|(_, h)| h.state == HState::Broadcast)
            .map(|(s, _)| *s)
            .collect()
    }

    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Tests: pretend the last proposal carried `z` (to reach the end of the counter).
    #[cfg(test)]
    pub(crate) fn set_last_proposed_for_test(&mut self, z: Zxid) {
        self.last_proposed = z;
    }

    /// True when the counter half of the zxid has no room for another proposal.
    fn counter_exhausted(&self) -> bool {
        self.phase == Phase::Established && self.last_proposed.counter() >= u32::MAX - 1
    }

    /// The leader a committed reconfig named in this one's place, once it has: this
    /// leader then proposes and commits nothing more and steps down to follow it.
    pub fn designated_elsewhere(&self) -> Option<ServerId> {
        self.designated_elsewhere
    }

    /// The zxid of the last proposal (the last of the history before the first).
    pub fn last_proposed(&self) -> Zxid {
        self.last_proposed
    }

    /// The zxid the next proposal must carry, if this leader may propose.
    pub fn next_zxid(&self) -> Option<Zxid> {
        if self.phase != Phase::Established
            || self.designated_elsewhere.is_some()
            || self.last_proposed.counter() >= u32::MAX - 1
            || self.outstanding.len() >= MAX_OUTSTANDING
        {
            return None;
        }
        Some(self.last_proposed.next())
    }

    fn reset_phase_deadline(&mut self, core: &Core) {
        self.phase_deadline = core.now + core.cfg.init_limit * core.tick_ms();
    }

    fn check_epoch_quorum(&mut self, core: &mut Core) {
        if self.phase != Phase::Discovering || !core.qv.has_quorum(self.reports.keys().copied()) {
            return;
        }
        let max = self.reports.values().copied().max().unwrap_or(0);
        if max >= Zxid::MAX_EPOCH {
            // ZooKeeper would wrap here (its epoch + 1 shifted out of the long) and reuse
            // zxids below logged ones; stopping loses nothing acknowledged.
            core.out.push(Output::EpochExhausted {
                why: format!(
                    "a quorum's largest acceptedEpoch is {max}: a new epoch would make \
                     zxids past 0x7fffffffffffffff (negative), below every logged one"
                ),
            });
            return;
        }
        self.epoch = max + 1;
        self.phase = Phase::AcceptedPersisting;
        debug!(sid = %core.cfg.my_id, epoch = self.epoch, "new epoch chosen");
        core.out.push(Output::PersistEpoch {
            kind: EpochKind::Accepted,
            epoch: self.epoch,
        });
    }

    fn send_leader_info(&mut self, core: &mut Core, sid: ServerId) {
        core.send(
            sid,
            QuorumPacket::with_data(
                PacketType::LeaderInfo,
                Zxid::new(self.epoch, 0).0,
                encode_int(LEARNER_PROTOCOL_VERSION),
            ),
        );
        if let Some(h) = self.learners.get_mut(&sid) {
            h.state = HState::AwaitAckEpoch;
        }
    }

    pub fn on_epoch_persisted(&mut self, core: &mut Core, kind: EpochKind, epoch: u32) {
        match (kind, self.phase) {
            (EpochKind::Accepted, Phase::AcceptedPersisting) if epoch == self.epoch => {
                core.accepted_epoch = epoch;
                self.phase = Phase::EpochAcks;
                self.reset_phase_deadline(core);
                self.epoch_acks.insert(core.cfg.my_id);
                let waiting: Vec<ServerId> = self
                    .learners
                    .iter()
                    .filter(|(_, h)| h.state == HState::AwaitEpoch)
                    .map(|(s, _)| *s)
                    .collect();
                for sid in waiting {
                    self.send_leader_info(core, sid);
                }
                self.check_epoch_ack_quorum(core);
            }
            (EpochKind::Current, Phase::CurrentPersisting) if epoch == self.epoch => {
                core.current_epoch = epoch;
                self.version_initial_membership(core);
                self.phase = Phase::NewLeaderAcks;
                self.reset_phase_deadline(core);
                self.history_end = core.log.last();
                self.last_proposed = Zxid::new(self.epoch, 0);
                let acked: Vec<(ServerId, Zxid)> = self
                    .learners
                    .iter()
                    .filter_map(|(s, h)| match h.state {
                        HState::Acked { last } => Some((*s, last)),
                        _ => None,
                    })
                    .collect();
                for (sid, last) in acked {
                    self.start_sync(core, sid, last);
                }
                self.check_newleader_quorum(core);
            }
            _ => debug!(?kind, epoch, "stale epoch persisted report"),
        }
    }

    /// `ZabConfig::version_initial_membership`: a version-0 membership becomes the one
    /// of this epoch's first zxid, before any NEWLEADER carries it.
    fn version_initial_membership(&mut self, core: &mut Core) {
        if !core.cfg.version_initial_membership
            || core.cfg.config_version != Zxid::ZERO
            || core.pending_config().is_some()
            || core.cfg.config_text.is_empty()
        {
            return;
        }
        let version = Zxid::new(self.epoch, 0);
        let mut text: String = core
            .cfg
            .config_text
            .lines()
            .filter(|l| !l.starts_with("version="))
            .map(|l| format!("{l}\n"))
            .collect();
        text.push_str(&format!("version={:x}", version.0));
        match (core.cfg.config_of_text)(&text) {
            Some(c) if c.version == version => {
                info!(sid = %core.cfg.my_id, %version,
                    "the initial membership takes the version of the new epoch");
                let me = core.cfg.my_id;
                core.activate(&c, me);
            }
            _ => {
                warn!(sid = %core.cfg.my_id, "the membership text does not parse; it keeps version 0")
            }
        }
    }

    fn check_epoch_ack_quorum(&mut self, core: &mut Core) {
        if self.phase == Phase::EpochAcks && core.qv.has_quorum(self.epoch_acks.iter().copied()) {
            self.phase = Phase::CurrentPersisting;
            core.out.push(Output::PersistEpoch {
                kind: EpochKind::Current,
                epoch: self.epoch,
            });
        }
    }

    /// The leader's last processed zxid for sync purposes.
    fn lpz(&self, core: &Core) -> Zxid {
        if self.phase == Phase::Established {
            core.log.committed()
        } else {
            self.history_end
        }
    }

    fn start_sync(&mut self, core: &mut Core, sid: ServerId, peer_last: Zxid) {
        let Some(observer) = self.learners.get(&sid).map(|h| h.observer) else {
            return;
        };
        let lpz = self.lpz(core);
        let p = plan(&core.log, lpz, peer_last);
        let committed: Vec<Txn> = core.log.range(p.send_after, lpz).cloned().collect();
        let how = match p.mode {
            SyncMode::Diff(z) => format!("DIFF after {z}"),
            SyncMode::Trunc(z) => format!("TRUNC to {z}"),
            SyncMode::Snap => format!("SNAP at {}", core.log.committed()),
        };
        info!(
            leader = %core.cfg.my_id,
            "synchronising learner {sid} (its last zxid {peer_last}): {how}, then {} committed txns",
            committed.len()
        );
        match p.mode {
            SyncMode::Diff(z) => core.send_type(sid, PacketType::Diff, z),
            SyncMode::Trunc(z) => core.send_type(sid, PacketType::Trunc, z),
            SyncMode::Snap => core.out.push(Output::SendSnapshot {
                to: sid,
                zxid: core.log.committed(),
            }),
        }
        for t in committed {
            core.send(
                sid,
                QuorumPacket::with_data(PacketType::Proposal, t.zxid.0, t.payload),
            );
            core.send_type(sid, PacketType::Commit, t.zxid);
        }
        if !observer && self.phase == Phase::Established {
            let pending: Vec<Txn> = core
                .log
                .range(lpz.max(p.send_after), self.last_proposed)
                .cloned()
                .collect();
            for t in pending {
                core.send(
                    sid,
                    QuorumPacket::with_data(PacketType::Proposal, t.zxid.0, t.payload),
                );
            }
        }
        // The last seen membership when it is newer (ZooKeeper's LearnerHandler sends
        // `getLastSeenQuorumVerifier()`): the learners put it in force at UPTODATE.
        let text = core
            .pending_config()
            .map_or(&core.cfg.config_text, |c| &c.text)
            .clone();
        core.send(
            sid,
            QuorumPacket::with_data(
                PacketType::NewLeader,
                Zxid::new(self.epoch, 0).0,
                Bytes::from(text.into_bytes()),
            ),
        );
        let tick = self.tick;
        if let Some(h) = self.learners.get_mut(&sid) {
            h.state = HState::Syncing;
            h.deadline_tick = tick + core.cfg.init_limit + core.cfg.sync_limit;
        }
    }

    fn self_acked_newleader(&self, core: &Core) -> bool {
        core.log.persisted() >= self.history_end
    }

    fn check_newleader_quorum(&mut self, core: &mut Core) {
        if self.phase != Phase::NewLeaderAcks || !self.self_acked_newleader(core) {
            return;
        }
        let me = core.cfg.my_id;
        let acks = || self.newleader_acks.iter().copied().chain([me]);
        if !core.qv.has_quorum(acks()) {
            return;
        }
        // A pending membership needs its own quorum of NEWLEADER ACKs too (ZooKeeper's
        // newLeaderProposal with both quorum verifiers).
        let pending = core.pending_config().cloned();
        if let Some(c) = &pending {
            if !c.quorum().has_quorum(acks()) {
                return;
            }
        }
        self.phase = Phase::Established;
        info!(sid = %me, epoch = self.epoch, "leader established");
        core.commit_to(self.history_end);
        if let Some(c) = pending {
            // ZooKeeper's Leader.lead after NEWLEADER: processReconfig of the last seen
            // membership, with the designated leader of getDesignatedLeader.
            let qv = c.quorum();
            let acked: Vec<ServerId> = acks().collect();
            let designated =
                designated_leader(me, core.keeps_quorum_address(&c), &qv, &acked, [], &[&qv]);
            // `pending_config` is newer than the membership in force, and nothing since
            // (commits only) put another one in force.
            debug_assert!(
                c.version > core.cfg.config_version,
                "pending membership {} not newer than {}",
                c.version,
                core.cfg.config_version
            );
            info!(sid = %me, version = %c.version, %designated,
                "completing the reconfig proposed before this epoch");
            core.activate(&c, designated);
            if designated != me {
                self.designated_elsewhere = Some(designated);
            }
        }
        core.out.push(Output::Established {
            epoch: self.epoch,
            leader: me,
        });
        let ready: Vec<ServerId> = self
            .learners
            .iter()
            .filter(|(_, h)| h.state == HState::AwaitEstablish)
            .map(|(s, _)| *s)
            .collect();
        for sid in ready {
            self.send_uptodate(core, sid);
        }
    }

    fn send_uptodate(&mut self, core: &mut Core, sid: ServerId) {
        core.send_type(sid, PacketType::UpToDate, Zxid(-1));
        if let Some(h) = self.learners.get_mut(&sid) {
            h.state = HState::Broadcast;
            debug_assert!(h.held_commits.windows(2).all(|w| w[0].zxid < w[1].zxid));
            for p in std::mem::take(&mut h.held_commits) {
                core.send(sid, p);
            }
        }
    }

    fn drop_learner(&mut self, core: &mut Core, sid: ServerId, why: &str) {
        if self.learners.remove(&sid).is_some() {
            warn!(
                leader = %core.cfg.my_id,
                learner = %sid,
                why,
                "dropping learner"
            );
            core.out.push(Output::Disconnect { peer: sid });
        }
    }

    pub fn on_disconnected(&mut self, core: &mut Core, sid: ServerId) {
        if self.learners.remove(&sid).is_some() {
            debug!(
                leader = %core.cfg.my_id,
                learner = %sid,
                "learner disconnected"
            );
        }
        self.reports.remove(&sid);
    }

    /// A voter's ACK of proposal `zxid` (counter not 0): counted once if the proposal is
    /// still outstanding, then whatever has a quorum is committed.
    fn count_ack(&mut self, core: &mut Core, from: ServerId, zxid: Zxid) {
        if zxid.counter() == 0 {
            return;
        }
        if let Some(acks) = self.outstanding_mut(zxid) {
            if !acks.contains(&from) {
                acks.push(from);
            }
        }
        self.try_commit(core);
    }

    pub fn on_packet(&mut self, core: &mut Core, from: ServerId, p: QuorumPacket) -> LeaderNext {
        match p.ty {
            PacketType::FollowerInfo | PacketType::ObserverInfo => {
                return self.on_learner_info(core, from, p);
            }
            _ => {}
        }
        let tick = self.tick;
        let Some(h) = self.learners.get_mut(&from) else {
            debug!(leader = %core.cfg.my_id, %from, ty = ?p.ty, "packet from unknown learner");
            return LeaderNext::Stay;
        };
        // Synced: syncLimit ticks from its last packet, as ZooKeeper's LearnerHandler
        // sets after UPTODATE (a silent follower stops counting as synced, e.g. for a
        // reconfig's quorum check, 2 x syncLimit half-ticks after it went quiet). While
        // it syncs, the initLimit grace given at NEWLEADER stays.
        h.deadline_tick = if h.state == HState::Broadcast {
            tick + core.cfg.sync_limit
        } else {
            h.deadline_tick.max(tick + core.cfg.sync_limit)
        };
        let (state, observer) = (h.state, h.observer);
        let zxid = Zxid(p.zxid);
        match (p.ty, state) {
            (PacketType::AckEpoch, HState::AwaitAckEpoch) => self.on_ack_epoch(core, from, p),
            (PacketType::Ack, HState::Syncing) => {
                if zxid != Zxid::new(self.epoch, 0) {
                    // Not the NEWLEADER ACK: ZooKeeper's learner logs the proposals of
                    // its sync when NEWLEADER arrives, and its log thread may ACK them
                    // before its main thread ACKs NEWLEADER (Learner.syncWithLeader; a
                    // ZooKeeper leader carries on). An ACK of a proposal still
                    // outstanding counts (the learner has it on disk); any other is
                    // ignored, and the NEWLEADER ACK is still awaited.
                    debug!(
                        leader = %core.cfg.my_id,
                        learner = %from,
                        zxid = %format_args!("{:#x}", zxid.0),
                        "ACK before the NEWLEADER ACK"
                    );
                    if zxid.epoch() == self.epoch && !observer {
                        self.count_ack(core, from, zxid);
                    }
                    return LeaderNext::Stay;
                }
                if let Some(h) = self.learners.get_mut(&from) {
                    h.state = HState::AwaitEstablish;
                }
                if self.phase == Phase::Established {
                    self.send_uptodate(core, from);
                } else {
                    if !observer {
                        self.newleader_acks.insert(from);
                    }
                    self.check_newleader_quorum(core);
                }
            }
            (PacketType::Ack, HState::AwaitEstablish | HState::Broadcast) => {
                if !observer {
                    self.count_ack(core, from, zxid);
                }
            }
            (PacketType::Ping, _) => {
                if !p.data().is_empty() {
                    core.out.push(Output::SessionTouches {
                        from,
                        data: p.data.clone().unwrap_or_default(),
                    });
                }
            }
            (PacketType::Request | PacketType::Revalidate, _) => {
                core.out.push(Output::Deliver { from, packet: p });
            }
            (ty, st) => {
                warn!(leader = %core.cfg.my_id, %from, ?ty, ?st, "unexpected packet");
                self.drop_learner(core, from, "protocol error");
            }
        }
        LeaderNext::Stay
    }

    /// FOLLOWERINFO / OBSERVERINFO: register the learner and answer LEADERINFO once the
    /// epoch is chosen. Steps down (returns [`LeaderNext::StepDown`]) when a voter has
    /// accepted an epoch above this leader's: such a learner can never join this epoch
    /// (it refuses LEADERINFO below its accepted epoch, as ZooKeeper's learner does), and
    /// only a new election, whose epoch is above every accepted one, takes it back.
    fn on_learner_info(&mut self, core: &mut Core, from: ServerId, p: QuorumPacket) -> LeaderNext {
        let observer = p.ty == PacketType::ObserverInfo;
        let sid_ok = match LearnerInfo::decode(p.data()) {
            Ok(li) => ServerId(li.server_id) == from,
            Err(_) => false,
        };
        // A server that is no member follows as a non-voting follower (it is synced and
        // gets proposals, its ACKs count only for a pending membership that has it as a
        // voter), as ZooKeeper's leader lets a server about to be added by a reconfig. A
        // member a reconfig removed observes (it is no voter in its own view) until a
        // reconfig adds it back.
        let role_ok = if observer {
            core.qv.is_observer(from) || !core.qv.is_member(from)
        } else {
            core.qv.is_voter(from) || !core.qv.is_member(from)
        };
        if !sid_ok || !role_ok || from == core.cfg.my_id {
            self.drop_learner(core, from, "bad learner info");
            core.out.push(Output::Disconnect { peer: from });
            return LeaderNext::Stay;
        }
        let accepted = Zxid(p.zxid).epoch();
        if !observer
            && accepted > self.epoch
            && !matches!(self.phase, Phase::Discovering | Phase::AcceptedPersisting)
        {
            // A server that is no voter (in force or pending) cannot have taken part in
            // an election, so its epoch says nothing about this leader: it is sent away
            // instead of costing the ensemble an election (a non-member repeating this
            // kept the leader stepping down; ZooKeeper raises epochs only in discovery).
            let pending_voter = core
                .pending_config()
                .is_some_and(|c| c.voters.contains(&from));
            if !core.qv.is_voter(from) && !pending_voter {
                if self.warned_strangers.insert(from) {
                    warn!(leader = %core.cfg.my_id, %from, accepted, epoch = self.epoch,
                        "a non-voter announced a newer accepted epoch; disconnecting it (warned once per term)");
                } else {
                    debug!(leader = %core.cfg.my_id, %from, accepted,
                        "a non-voter announced a newer accepted epoch; disconnecting it");
                }
                self.learners.remove(&from);
                core.out.push(Output::Disconnect { peer: from });
                return LeaderNext::Stay;
            }
        }
        // A new connection from this learner replaces any older one. (The runtime hands
        // the core a second connection in a synced learner's name only once the first
        // has closed: `node/driver.rs` `WaitingLink`.)
        self.learners.insert(
            from,
            Handler {
                observer,
                state: HState::AwaitEpoch,
                deadline_tick: self.tick + core.cfg.init_limit + core.cfg.sync_limit,
                held_commits: Vec::new(),
            },
        );
        if self.phase == Phase::Discovering {
            if !observer {
                self.reports.insert(from, accepted);
            }
            self.check_epoch_quorum(core);
        } else if self.phase != Phase::AcceptedPersisting {
            if !observer && accepted > self.epoch {
                // The learner promised a newer candidate (one that may have died in
                // discovery) to ignore this epoch. ZooKeeper's leader answers with its own
                // epoch anyway and the learner loops LOOKING -> FOLLOWERINFO for as long as
                // this leader lasts (simulator seed 212081); stepping down is always safe
                // and lets the next election pick an epoch above the learner's.
                warn!(leader = %core.cfg.my_id, %from, accepted, epoch = self.epoch,
                    "learner accepted a newer epoch than this leader's; stepping down for a new election");
                self.drop_learner(core, from, "learner accepted a newer epoch");
                return LeaderNext::StepDown;
            }
            self.send_leader_info(core, from);
        }
        LeaderNext::Stay
    }

    fn on_ack_epoch(&mut self, core: &mut Core, from: ServerId, p: QuorumPacket) {
        let Ok(cur) = decode_int(p.data()) else {
            self.drop_learner(core, from, "bad ACKEPOCH");
            return;
        };
        let last = Zxid(p.zxid);
        let observer = self.learners.get(&from).is_some_and(|h| h.observer);
        if cur != -1 {
            let theirs = (i64::from(cur), last);
            let ours = (i64::from(core.current_epoch), self.history_end);
            if self.phase != Phase::Established && theirs > ours {
                self.drop_learner(core, from, "learner is more recent than leader");
                return;
            }
            if !observer && self.phase == Phase::EpochAcks {
                self.epoch_acks.insert(from);
            }
        }
        if let Some(h) = self.learners.get_mut(&from) {
            h.state = HState::Acked { last };
        }
        match self.phase {
            Phase::NewLeaderAcks | Phase::Established => self.start_sync(core, from, last),
            Phase::EpochAcks => self.check_epoch_ack_quorum(core),
            _ => {}
        }
    }

    pub fn on_propose(&mut self, core: &mut Core, zxid: Zxid, payload: Bytes) {
        if self.next_zxid() != Some(zxid) {
            core.out.push(Output::ProposalRejected { zxid });
            return;
        }
        debug_assert!(
            zxid > self.last_proposed && zxid > core.log.last(),
            "proposals must strictly increase: {zxid} after {} (log ends at {})",
            self.last_proposed,
            core.log.last()
        );
        let txn = Txn { zxid, payload };
        let appended = core.log.append(txn.clone());
        debug_assert!(appended, "proposal {zxid} not above the log's end");
        core.out.push(Output::PersistTxns(vec![txn.clone()]));
        if let Some(config) = (core.cfg.reconfig_of)(&txn) {
            if self.reconfig.is_none() {
                info!(leader = %core.cfg.my_id, %zxid, voters = ?config.voters,
                    "reconfig proposed: commits now need a quorum of both memberships");
                // Last seen (ZooKeeper's Leader.propose): kept if this leader loses its
                // epoch before the commit, so it completes the reconfig if elected again.
                core.note_last_seen(config.clone());
                self.reconfig = Some(PendingReconfig {
                    zxid,
                    qv: config.quorum(),
                    config,
                });
            } else {
                warn!(leader = %core.cfg.my_id, %zxid, "a second reconfig while one is pending: treated as a plain txn");
            }
        }
        self.last_proposed = zxid;
        debug_assert!(
            self.outstanding.back().is_none_or(|(last, _)| *last < zxid),
            "proposal {zxid} not after the outstanding ones"
        );
        self.outstanding.push_back((zxid, Acks::new()));
        let targets: Vec<ServerId> = self
            .learners
            .iter()
            .filter(|(_, h)| h.forwarding() && !h.observer)
            .map(|(s, _)| *s)
            .collect();
        for sid in targets {
            core.send(
                sid,
                QuorumPacket::with_data(PacketType::Proposal, zxid.0, txn.payload.clone()),
            );
        }
        if core.cfg.fault_commit_without_quorum {
            self.try_commit(core);
        }
    }

    /// The acks of outstanding proposal `zxid`, if it is outstanding.
    fn outstanding_mut(&mut self, zxid: Zxid) -> Option<&mut Acks> {
        let i = self
            .outstanding
            .binary_search_by_key(&zxid, |(z, _)| *z)
            .ok()?;
        self.outstanding.get_mut(i).map(|(_, acks)| acks)
    }

    pub fn on_persisted(&mut self, core: &mut Core) {
        let me = core.cfg.my_id;
        let upto = core.log.persisted();
        for (_, acks) in self.outstanding.iter_mut().take_while(|(z, _)| *z <= upto) {
            if !acks.contains(&me) {
                acks.push(me);
            }
        }
        self.try_commit(core);
        self.check_newleader_quorum(core);
    }

    fn try_commit(&mut self, core: &mut Core) {
        // A sync waiting for an already committed zxid is answered first.
        self.answer_syncs(core, core.log.committed());
        if self.designated_elsewhere.is_some() {
            // ZooKeeper's `allowedToCommit = false`: the designated leader commits the
            // rest, so that it holds everything committed.
            return;
        }
        // Proposals commit in zxid order: take every leading one with a quorum of ACKs,
        // then commit them in one step.
        let me = core.cfg.my_id;
        let mut upto = None;
        let mut activation = None;
        while let Some(&(zxid, ref acks)) = self.outstanding.front() {
            let new_quorum = match &self.reconfig {
                Some(r) if zxid >= r.zxid => r.qv.has_quorum(acks.iter().copied()),
                _ => true,
            };
            let ok = core.cfg.fault_commit_without_quorum
                || (core.qv.has_quorum(acks.iter().copied()) && new_quorum);
            if !ok {
                break;
            }
            // The leader of the new membership once its reconfig commits (ZooKeeper's
            // getDesignatedLeader, `zab/designate.rs`), judged by the proposals still
            // outstanding after it.
            let designated = match &self.reconfig {
                Some(r) if r.zxid == zxid => Some(designated_leader(
                    me,
                    core.keeps_quorum_address(&r.config),
                    &r.qv,
                    acks,
                    self.outstanding.iter().skip(1).map(|(_, a)| a.as_slice()),
                    &[&core.qv, &r.qv],
                )),
                _ => None,
            };
            self.outstanding.pop_front();
            upto = Some(zxid);
            if let Some(designated) = designated {
                activation = Some((zxid, designated));
                if designated != me {
                    // Nothing after the reconfig commits here (`allowedToCommit`).
                    break;
                }
            }
        }
        let Some(upto) = upto else {
            return;
        };
        let newly = core.commit_to(upto);
        let targets: Vec<(ServerId, bool, bool)> = self
            .learners
            .iter()
            .filter(|(_, h)| h.forwarding())
            .map(|(s, h)| (*s, h.observer, h.state != HState::Broadcast))
            .collect();
        for t in newly {
            let activate = activation.filter(|(z, _)| *z == t.zxid).map(|(_, l)| l);
            for (sid, observer, before_uptodate) in &targets {
                let p = match (observer, activate) {
                    (true, None) => {
                        QuorumPacket::with_data(PacketType::Inform, t.zxid.0, t.payload.clone())
                    }
                    (true, Some(l)) => QuorumPacket::with_data(
                        PacketType::InformAndActivate,
                        t.zxid.0,
                        activate_data(l, &t.payload),
                    ),
                    (false, None) => QuorumPacket::new(PacketType::Commit, t.zxid.0),
                    (false, Some(l)) => QuorumPacket::with_data(
                        PacketType::CommitAndActivate,
                        t.zxid.0,
                        activate_data(l, &[]),
                    ),
                };
                if *before_uptodate && !*observer {
                    if let Some(h) = self.learners.get_mut(sid) {
                        h.held_commits.push(p);
                    }
                } else {
                    core.send(*sid, p);
                }
            }
            if let Some(designated) = activate {
                if let Some(r) = self.reconfig.take() {
                    core.activate(&r.config, designated);
                }
                if designated != me {
                    warn!(leader = %me, %designated,
                        "the new membership designates another leader; stepping down to follow it");
                    self.designated_elsewhere = Some(designated);
                }
            }
            // Right after the commit a sync waited for, and before any later commit: the
            // learner answers the sync between the session's earlier and later writes
            // (per-session order), as ZooKeeper's leader does.
            self.answer_syncs(core, t.zxid);
        }
    }

    /// Sends SYNC to every learner whose sync waited for a zxid up to `committed`, in the
    /// order the syncs arrived.
    fn answer_syncs(&mut self, core: &mut Core, committed: Zxid) {
        debug_assert!(self.pending_syncs.windows(2).all(|w| w[0].0 <= w[1].0));
        let ready = self
            .pending_syncs
            .iter()
            .take_while(|(z, _)| *z <= committed)
            .count();
        for (_, sid) in self.pending_syncs.drain(..ready).collect::<Vec<_>>() {
            if self.learners.get(&sid).is_some_and(|h| h.forwarding()) {
                core.send_type(sid, PacketType::Sync, Zxid::ZERO);
            }
        }
    }

    pub fn on_sync_request(&mut self, core: &mut Core, from: ServerId) {
        // Nothing outstanding: everything proposed is committed, so answer at once
        // (ZooKeeper's processSync). Waiting for `last_proposed` would hold a sync that
        // reaches a new leader before its first write, (epoch, 0), until that write
        // commits (a client re-attaching on a follower after a failover waited ~5 s).
        let wait_for = if self.outstanding.is_empty() {
            core.log.committed()
        } else {
            self.last_proposed
        };
        self.pending_syncs.push((wait_for, from));
        self.try_commit(core);
    }

    pub fn send_to_learner(&mut self, core: &mut Core, to: ServerId, p: QuorumPacket) {
        if self.learners.get(&to).is_some_and(|h| h.forwarding()) {
            core.send(to, p);
        }
    }

    /// Half-tick timer: pings, the tick counter, learner deadlines, quorum check.
    pub fn on_tick(&mut self, core: &mut Core) -> LeaderNext {
        if self.phase != Phase::Established && core.now > self.phase_deadline {
            warn!(sid = %core.cfg.my_id, phase = ?self.phase, "leader timed out before establishing");
            return LeaderNext::StepDown;
        }
        if self.designated_elsewhere.is_some() {
            return LeaderNext::StepDown;
        }
        if self.counter_exhausted() && self.outstanding.is_empty() {
            // The counter half of the zxid is used up: a new epoch is the only way on, as
            // ZooKeeper's leader forces a re-election on rollover. (One voter re-elects
            // itself at once.)
            warn!(
                sid = %core.cfg.my_id,
                last = %self.last_proposed,
                "zxid counter exhausted; stepping down for a new epoch"
            );
            return LeaderNext::StepDown;
        }
        while core.now >= self.next_half_tick {
            self.next_half_tick += (core.tick_ms() / 2).max(1);
            self.odd_half = !self.odd_half;
            if !self.odd_half {
                self.tick += 1;
                let tick = self.tick;
                let late: Vec<ServerId> = self
                    .learners
                    .iter()
                    .filter(|(_, h)| tick > h.deadline_tick)
                    .map(|(s, _)| *s)
                    .collect();
                for sid in late {
                    self.drop_learner(core, sid, "learner silent past its deadline");
                }
                if self.phase == Phase::Established {
                    let synced = |observers: bool| {
                        self.learners
                            .iter()
                            .filter(move |(_, h)| h.forwarding() && (observers || !h.observer))
                            .map(|(s, _)| *s)
                            .chain([core.cfg.my_id])
                    };
                    if !core.qv.has_quorum(synced(false)) {
                        warn!(sid = %core.cfg.my_id, "lost quorum of synced followers");
                        return LeaderNext::StepDown;
                    }
                    // While a reconfig is proposed and not committed, a quorum of its
                    // membership as well (ZooKeeper's `syncedAckSet` holds both, and
                    // counts an observer that the reconfig makes a voter).
                    if let Some(p) = core.pending_config() {
                        if !p.quorum().has_quorum(synced(true)) {
                            warn!(sid = %core.cfg.my_id, version = %p.version,
                                "lost quorum of synced followers of the proposed membership");
                            return LeaderNext::StepDown;
                        }
                    }
                }
            }
            let ping: Vec<ServerId> = self
                .learners
                .iter()
                .filter(|(_, h)| h.state == HState::Broadcast)
                .map(|(s, _)| *s)
                .collect();
            for sid in ping {
                core.send_type(sid, PacketType::Ping, self.last_proposed);
            }
        }
        LeaderNext::Stay
    }

    /// Stepping down: close every learner connection.
    pub fn shutdown(&mut self, core: &mut Core) {
        for sid in std::mem::take(&mut self.learners).into_keys() {
            core.out.push(Output::Disconnect { peer: sid });
        }
    }
}

/// The data of COMMITANDACTIVATE (`payload` empty) and INFORMANDACTIVATE (`payload` the
/// proposal's txn): the designated leader as a big-endian `long`, then `payload`.
pub fn activate_data(designated: ServerId, payload: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(8 + payload.len());
    v.extend_from_slice(&designated.0.to_be_bytes());
    v.extend_from_slice(payload);
    Bytes::from(v)
}
