//! The FOLLOWING and OBSERVING roles: connect to the elected leader, report our accepted
//! epoch (FOLLOWERINFO / OBSERVERINFO), accept the new epoch (persisted before ACKEPOCH),
//! apply the leader's DIFF / TRUNC / SNAP, persist history and currentEpoch before acking
//! NEWLEADER, and serve only after UPTODATE. In broadcast: log each PROPOSAL and ACK it once
//! durable, apply on COMMIT (observers apply INFORM), answer PINGs, and give up on a silent
//! leader after syncLimit ticks. Never touches disk or sockets itself.

use super::core::Core;
use super::types::{EpochKind, Output, Txn};
use bytes::Bytes;
use rzk_proto::quorum::payload::{encode_int, LearnerInfo};
use rzk_proto::quorum::{PacketType, QuorumPacket, LEARNER_PROTOCOL_VERSION};
use rzk_proto::{ServerId, Zxid};
use tracing::{debug, info, warn};

/// Most session-touch bytes buffered for the next PING reply.
pub const MAX_TOUCH_BYTES: usize = 1 << 20;

/// First pause (ms) before dialling again a leader that refused or dropped our
/// FOLLOWERINFO (it may be a few ms from the end of its own election); doubled per
/// attempt up to `connect_retry_ms`. Attempts stop once `connect_attempts ×
/// connect_retry_ms` have passed since the first, the window of a fixed pause.
pub const FIRST_CONNECT_RETRY_MS: u64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// FOLLOWERINFO sent; waiting for LEADERINFO.
    Connecting,
    /// New epoch accepted; waiting for acceptedEpoch to be durable before ACKEPOCH.
    AcceptedPersisting,
    /// ACKEPOCH sent; receiving the sync stream until NEWLEADER.
    Syncing,
    /// NEWLEADER received; waiting for log + currentEpoch to be durable before ACK.
    NewLeaderPersisting,
    /// NEWLEADER acked; waiting for UPTODATE.
    AwaitUpToDate,
    Serving,
}

#[derive(Debug, PartialEq, Eq)]
pub enum LearnerNext {
    Stay,
    /// Give up on this leader and go back to election.
    Looking,
    /// A committed reconfig (COMMITANDACTIVATE / INFORMANDACTIVATE of `zxid`) names
    /// `leader` as the leader of the new membership, or changes this server's learner
    /// type: leave this leader and go straight to `leader` in the new role, without an
    /// election (ZooKeeper's `processReconfig` sets the reconfig flag, and
    /// `updateServerState` then picks LEADING, FOLLOWING or OBSERVING).
    Switch {
        leader: ServerId,
        zxid: Zxid,
    },
}

#[derive(Debug)]
pub struct Learner {
    pub leader: ServerId,
    observer: bool,
    phase: Phase,
    new_epoch: u32,
    attempts: u32,
    /// When the first connection attempt to this leader was made.
    first_attempt_at: u64,
    retry_at: Option<u64>,
    last_heard: u64,
    sync_point: Zxid,
    sync_commit: Zxid,
    /// The zxid of the SNAP this sync installed, until the learner serves: txns at or
    /// below it still sent after it are in the snapshot and skipped. ZooKeeper's leader
    /// and observer master forward from the zxid they chose to sync from, and serialize
    /// their tree later, at a zxid that may be past it (`LearnerHandler.syncFollower`
    /// then `startForwarding`); ZooKeeper's learner applies the overlap again. An rzk
    /// observer syncing from a ZooKeeper observer master left it on such an INFORM
    /// ("inform out of order", CI `observer-master`, session 46).
    snap_at: Option<Zxid>,
    acked_up_to: Zxid,
    touches: Vec<u8>,
    /// A newer membership than ours carried by NEWLEADER, put in force at UPTODATE
    /// (ZooKeeper's `Learner.syncWithLeader`: `newLeaderQV`, then `processReconfig`).
    newleader_config: Option<super::types::NewConfig>,
}

impl Learner {
    pub fn start(core: &mut Core, leader: ServerId) -> Learner {
        let mut l = Learner {
            leader,
            observer: core.learns_as_observer(),
            phase: Phase::Connecting,
            new_epoch: 0,
            attempts: 0,
            first_attempt_at: core.now,
            retry_at: None,
            last_heard: core.now,
            sync_point: Zxid::ZERO,
            sync_commit: Zxid::ZERO,
            snap_at: None,
            acked_up_to: Zxid::ZERO,
            touches: Vec::new(),
            newleader_config: None,
        };
        l.connect(core);
        l
    }

    pub fn is_serving(&self) -> bool {
        self.phase == Phase::Serving
    }

    /// True once the leader has answered our FOLLOWERINFO / OBSERVERINFO (LEADERINFO):
    /// a connection lost after that was closed by a leader that had been leading us.
    pub fn was_connected(&self) -> bool {
        self.phase != Phase::Connecting
    }

    fn connect(&mut self, core: &mut Core) {
        self.attempts += 1;
        self.retry_at = None;
        core.out.push(Output::Connect { to: self.leader });
        let info = LearnerInfo {
            server_id: core.cfg.my_id.0,
            protocol_version: LEARNER_PROTOCOL_VERSION,
            config_version: core.cfg.config_version.0,
        };
        let ty = if self.observer {
            PacketType::ObserverInfo
        } else {
            PacketType::FollowerInfo
        };
        core.send(
            self.leader,
            QuorumPacket::with_data(ty, Zxid::new(core.accepted_epoch, 0).0, info.encode()),
        );
    }

    pub fn on_disconnected(&mut self, core: &mut Core, peer: ServerId) -> LearnerNext {
        if peer != self.leader {
            return LearnerNext::Stay;
        }
        let window = u64::from(core.cfg.connect_attempts) * core.cfg.connect_retry_ms;
        if self.phase == Phase::Connecting && core.now < self.first_attempt_at + window {
            let shift = self.attempts.saturating_sub(1).min(16);
            let pause = (FIRST_CONNECT_RETRY_MS << shift).min(core.cfg.connect_retry_ms);
            self.retry_at = Some(core.now + pause);
            return LearnerNext::Stay;
        }
        info!(
            sid = %core.cfg.my_id,
            leader = %self.leader,
            "lost the leader connection"
        );
        LearnerNext::Looking
    }

    pub fn on_tick(&mut self, core: &mut Core) -> LearnerNext {
        if let Some(at) = self.retry_at {
            if core.now >= at {
                self.connect(core);
            }
        }
        let limit = if matches!(self.phase, Phase::AwaitUpToDate | Phase::Serving) {
            core.cfg.sync_limit
        } else {
            core.cfg.init_limit
        };
        if core.now > self.last_heard + limit * core.tick_ms() {
            warn!(sid = %core.cfg.my_id, leader = %self.leader, phase = ?self.phase, "leader silent too long");
            core.out.push(Output::Disconnect { peer: self.leader });
            return LearnerNext::Looking;
        }
        LearnerNext::Stay
    }

    pub fn add_touches(&mut self, data: &[u8]) {
        if self.touches.len() + data.len() <= MAX_TOUCH_BYTES {
            self.touches.extend_from_slice(data);
        }
    }

    pub fn forward(&mut self, core: &mut Core, p: QuorumPacket) {
        if self.phase == Phase::Serving {
            core.send(self.leader, p);
        } else {
            debug!(sid = %core.cfg.my_id, "not serving: forward dropped");
        }
    }

    fn fail(&mut self, core: &mut Core, why: &str) -> LearnerNext {
        warn!(sid = %core.cfg.my_id, leader = %self.leader, phase = ?self.phase, why, "leaving leader");
        core.out.push(Output::Disconnect { peer: self.leader });
        LearnerNext::Looking
    }

    pub fn on_packet(&mut self, core: &mut Core, from: ServerId, p: QuorumPacket) -> LearnerNext {
        if from != self.leader {
            debug!(
                sid = %core.cfg.my_id,
                %from, "quorum packet from a non-leader ignored"
            );
            return LearnerNext::Stay;
        }
        self.last_heard = core.now;
        let zxid = Zxid(p.zxid);
        match (p.ty, self.phase) {
            (PacketType::LeaderInfo, Phase::Connecting) => {
                self.retry_at = None;
                let e = zxid.epoch();
                if zxid < Zxid::ZERO || e > Zxid::MAX_EPOCH {
                    return self.fail(core, "LEADERINFO of an epoch whose zxids are negative");
                }
                self.new_epoch = e;
                if e > core.accepted_epoch {
                    self.phase = Phase::AcceptedPersisting;
                    core.out.push(Output::PersistEpoch {
                        kind: EpochKind::Accepted,
                        epoch: e,
                    });
                } else if e == core.accepted_epoch {
                    self.send_ack_epoch(core, -1);
                } else {
                    return self.fail(core, "leader's epoch is older than our accepted epoch");
                }
            }
            (PacketType::Diff, Phase::Syncing) => {
                info!(sid = %core.cfg.my_id, "syncing with leader {}: DIFF after {zxid}", self.leader);
                self.sync_point = zxid;
            }
            (PacketType::Trunc, Phase::Syncing) => {
                if zxid < core.log.committed() {
                    tracing::error!(sid = %core.cfg.my_id, to = %zxid, committed = %core.log.committed(),
                        "leader asked to truncate committed transactions; refusing");
                    return self.fail(core, "TRUNC below committed");
                }
                info!(sid = %core.cfg.my_id, "syncing with leader {}: TRUNC to {zxid}", self.leader);
                core.log.truncate_after(zxid);
                core.out.push(Output::Truncate { to: zxid });
                self.sync_point = zxid;
            }
            (PacketType::Snap, Phase::Syncing) => {
                // A SNAP older than our committed state is taken, as ZooKeeper's follower
                // takes it: a new leader's committed point can lag its log (it learns the
                // commits of its history when it establishes the epoch), and the
                // proposals after the snapshot bring back everything committed, because
                // the elected log holds every committed txn. Refusing it sent this learner
                // back to election forever (rzk-sim --server seed 31130).
                if zxid < core.log.committed() {
                    info!(sid = %core.cfg.my_id, snap = %zxid, committed = %core.log.committed(),
                        "SNAP older than our committed state: taken, the proposals after it follow");
                }
                info!(sid = %core.cfg.my_id, "syncing with leader {}: SNAP at {zxid}", self.leader);
                core.log.reset_to_snapshot(zxid);
                core.out.push(Output::InstallSnapshot { zxid });
                self.sync_point = zxid;
                self.snap_at = Some(zxid);
            }
            (
                PacketType::Proposal,
                Phase::Syncing | Phase::NewLeaderPersisting | Phase::AwaitUpToDate | Phase::Serving,
            ) if !self.observer => {
                if !self.log_txn(core, zxid, p.data) {
                    return self.fail(core, "proposal out of order");
                }
                if let Some(c) = core.log.get(zxid).and_then(|t| (core.cfg.reconfig_of)(t)) {
                    core.note_last_seen(c);
                }
            }
            (PacketType::Commit, Phase::Serving) if !self.observer => {
                if zxid > core.log.last() {
                    return self.fail(core, "commit of an unknown proposal");
                }
                core.commit_to(zxid);
            }
            (PacketType::CommitAndActivate, Phase::Serving) if !self.observer => {
                if zxid > core.log.last() {
                    return self.fail(core, "commit of an unknown proposal");
                }
                core.commit_to(zxid);
                return self.activate(core, zxid, p.data());
            }
            (PacketType::InformAndActivate, Phase::Serving) if self.observer => {
                let data = p.data();
                let Some(payload) = data.get(8..) else {
                    return self.fail(core, "short INFORMANDACTIVATE");
                };
                if !self.log_txn(core, zxid, Some(Bytes::copy_from_slice(payload))) {
                    return self.fail(core, "inform out of order");
                }
                core.commit_to(zxid);
                return self.activate(core, zxid, data);
            }
            (
                PacketType::Commit,
                Phase::Syncing | Phase::NewLeaderPersisting | Phase::AwaitUpToDate,
            ) => {
                self.sync_commit = self.sync_commit.max(zxid);
            }
            (PacketType::Proposal, Phase::Syncing) => {
                // observers receive the committed diff as PROPOSAL + COMMIT too
                if !self.log_txn(core, zxid, p.data) {
                    return self.fail(core, "proposal out of order");
                }
            }
            (
                PacketType::Inform,
                Phase::Syncing | Phase::NewLeaderPersisting | Phase::AwaitUpToDate | Phase::Serving,
            ) if self.observer => {
                if !self.log_txn(core, zxid, p.data) {
                    return self.fail(core, "inform out of order");
                }
                if self.phase == Phase::Serving {
                    core.commit_to(zxid);
                } else {
                    self.sync_commit = self.sync_commit.max(zxid);
                }
            }
            (PacketType::NewLeader, Phase::Syncing) => {
                if zxid.epoch() != self.new_epoch {
                    return self.fail(core, "NEWLEADER for another epoch");
                }
                let text = std::str::from_utf8(p.data()).unwrap_or_default();
                if let Some(why) = (core.cfg.unreadable_config)(text) {
                    core.out.push(Output::Unsupported {
                        why: format!("NEWLEADER of leader {}: {why}", self.leader),
                    });
                    return self.fail(
                        core,
                        "NEWLEADER with a membership this server cannot follow",
                    );
                }
                self.newleader_config = Some(text)
                    .filter(|t| !t.is_empty())
                    .and_then(core.cfg.config_of_text)
                    .filter(|c| c.version > core.cfg.config_version);
                self.phase = Phase::NewLeaderPersisting;
                core.out.push(Output::PersistEpoch {
                    kind: EpochKind::Current,
                    epoch: self.new_epoch,
                });
            }
            (PacketType::UpToDate, Phase::AwaitUpToDate) => {
                let upto = self.sync_point.max(self.sync_commit).min(core.log.last());
                core.commit_to(upto);
                if let Some(c) = self.newleader_config.take() {
                    let me = core.cfg.my_id;
                    let leader_was_voter = core.qv.is_voter(self.leader);
                    info!(sid = %me, version = %c.version, "newer membership from NEWLEADER");
                    core.activate(&c, self.leader);
                    // ZooKeeper's `processReconfig` at UPTODATE: elect again only when
                    // the learner type changes (observer against participant; a server
                    // outside the membership, or one that gained or lost its vote,
                    // stays a participant) or the leader is no voter of both
                    // memberships. Going back on a vote gained or lost left the new
                    // leader without its quorum and cost a second election.
                    if core.learns_as_observer() != self.observer
                        || !leader_was_voter
                        || !core.qv.is_voter(self.leader)
                    {
                        info!(sid = %me, "membership change at sync: back to election");
                        return LearnerNext::Looking;
                    }
                }
                self.phase = Phase::Serving;
                core.send_type(self.leader, PacketType::Ack, Zxid::new(self.new_epoch, 0));
                info!(
                    sid = %core.cfg.my_id,
                    leader = %self.leader,
                    epoch = self.new_epoch,
                    "up to date"
                );
                core.out.push(Output::Established {
                    epoch: self.new_epoch,
                    leader: self.leader,
                });
                self.send_acks(core);
            }
            (PacketType::Ping, Phase::Syncing | Phase::NewLeaderPersisting) => {
                // ZooKeeper's leader pings learners that are still syncing; its learners
                // (Learner.syncWithLeader) skip those pings without answering.
                tracing::debug!(sid = %core.cfg.my_id, phase = ?self.phase, "ping while syncing skipped");
            }
            (PacketType::Ping, Phase::Serving | Phase::AwaitUpToDate) => {
                let data = std::mem::take(&mut self.touches);
                core.send(
                    self.leader,
                    QuorumPacket::with_data(PacketType::Ping, p.zxid, Bytes::from(data)),
                );
            }
            (PacketType::Sync | PacketType::Revalidate, _) => {
                core.out.push(Output::Deliver { from, packet: p });
            }
            (ty, phase) => {
                warn!(
                    sid = %core.cfg.my_id,
                    ?ty,
                    ?phase,
                    "unexpected packet from leader"
                );
                return self.fail(core, "protocol error");
            }
        }
        LearnerNext::Stay
    }

    /// After COMMITANDACTIVATE / INFORMANDACTIVATE of `zxid` (committed): puts the
    /// membership of that reconfig txn in force. `data` starts with the designated
    /// leader. Straight to the designated leader in the new role
    /// ([`LearnerNext::Switch`]), as ZooKeeper's `processReconfig` and
    /// `updateServerState` decide, when this server's learner type changes (an observer
    /// made a voter or removed, a follower made an observer; a follower that leaves the
    /// membership or gains or loses its vote stays a participant and keeps following) or
    /// the designated leader is not the one it follows.
    fn activate(&mut self, core: &mut Core, zxid: Zxid, data: &[u8]) -> LearnerNext {
        let Some(designated) = data
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(|b| ServerId(i64::from_be_bytes(b)))
        else {
            return self.fail(core, "activation without a designated leader");
        };
        let Some(config) = core.log.get(zxid).and_then(|t| (core.cfg.reconfig_of)(t)) else {
            warn!(sid = %core.cfg.my_id, %zxid, "activation of a txn that is no reconfig this server can read; membership unchanged");
            return LearnerNext::Stay;
        };
        let me = core.cfg.my_id;
        core.activate(&config, designated);
        let member = core.qv.is_member(me);
        // `learns_as_observer` against how this server joined: a non-member follows, and
        // must rejoin as an observer once a reconfig adds it as one (ZooKeeper's
        // `processReconfig` compares the learner type): as a follower it would ACK and
        // count as a synced voter to be.
        if core.learns_as_observer() != self.observer || designated != self.leader {
            info!(sid = %me, member, %designated, observer = core.learns_as_observer(),
                "membership change: to the designated leader in the new role");
            return LearnerNext::Switch {
                leader: designated,
                zxid,
            };
        }
        LearnerNext::Stay
    }

    /// Appends a transaction from the leader (skipping one we already hold) and asks for
    /// it to be persisted. False when it does not extend our log.
    fn log_txn(&mut self, core: &mut Core, zxid: Zxid, data: Option<Bytes>) -> bool {
        let payload = data.unwrap_or_default();
        if let Some(have) = core.log.get(zxid) {
            return have.payload == payload;
        }
        if self.phase != Phase::Serving && self.snap_at.is_some_and(|s| zxid <= s) {
            debug!(sid = %core.cfg.my_id, %zxid, "txn sent after the SNAP that holds it: skipped");
            return true;
        }
        let txn = Txn { zxid, payload };
        if let Some(why) = (core.cfg.unreadable_reconfig)(&txn) {
            core.out.push(Output::Unsupported {
                why: format!("reconfig txn {zxid} of leader {}: {why}", self.leader),
            });
            return false;
        }
        if !core.log.append(txn.clone()) {
            return false;
        }
        core.out.push(Output::PersistTxns(vec![txn]));
        true
    }

    fn send_ack_epoch(&mut self, core: &mut Core, current: i32) {
        core.send(
            self.leader,
            QuorumPacket::with_data(PacketType::AckEpoch, core.log.last().0, encode_int(current)),
        );
        self.phase = Phase::Syncing;
    }

    pub fn on_epoch_persisted(&mut self, core: &mut Core, kind: EpochKind, epoch: u32) {
        match (kind, self.phase) {
            (EpochKind::Accepted, Phase::AcceptedPersisting) if epoch == self.new_epoch => {
                core.accepted_epoch = epoch;
                let cur = i32::try_from(core.current_epoch).unwrap_or(i32::MAX);
                self.send_ack_epoch(core, cur);
            }
            (EpochKind::Current, Phase::NewLeaderPersisting) if epoch == self.new_epoch => {
                core.current_epoch = epoch;
                self.check_newleader_ack(core);
            }
            _ => debug!(?kind, epoch, "stale epoch persisted report"),
        }
    }

    pub fn on_persisted(&mut self, core: &mut Core) {
        self.check_newleader_ack(core);
        self.send_acks(core);
    }

    fn check_newleader_ack(&mut self, core: &mut Core) {
        if self.phase == Phase::NewLeaderPersisting
            && core.current_epoch == self.new_epoch
            && core.log.is_fully_persisted()
        {
            self.phase = Phase::AwaitUpToDate;
            self.acked_up_to = Zxid::new(self.new_epoch, 0);
            core.send_type(self.leader, PacketType::Ack, Zxid::new(self.new_epoch, 0));
            self.send_acks(core);
        }
    }

    /// ACKs every durable proposal of the new epoch not acked yet (followers only, after
    /// the NEWLEADER ACK).
    fn send_acks(&mut self, core: &mut Core) {
        if self.observer || !matches!(self.phase, Phase::AwaitUpToDate | Phase::Serving) {
            return;
        }
        let durable: Vec<Zxid> = core
            .log
            .range(self.acked_up_to, core.log.persisted())
            .map(|t| t.zxid)
            .filter(|z| z.epoch() == self.new_epoch)
            .collect();
        for z in durable {
            core.send_type(self.leader, PacketType::Ack, z);
            self.acked_up_to = z;
        }
    }
}
