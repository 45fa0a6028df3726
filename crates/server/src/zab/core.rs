//! State shared by every role of one server: configuration, clock, persistent epochs, the
//! in-memory log, the election clock and current vote, and the output buffer.
//! The leader and learner roles borrow it; the election borrows only some of its fields
//! (`election::ElectionCtx`, built by `Zab`). It makes no protocol decisions.

use super::log::TxnLog;
use super::quorum::QuorumVerifier;
use super::types::{Message, NewConfig, Output, Txn, ZabConfig};
use super::vote::{Candidate, Vote};
use rzk_proto::quorum::{PacketType, QuorumPacket, ServerState};
use rzk_proto::{ServerId, Zxid};

#[derive(Debug)]
pub struct Core {
    pub cfg: ZabConfig,
    pub qv: QuorumVerifier,
    pub now: u64,
    pub accepted_epoch: u32,
    pub current_epoch: u32,
    pub log: TxnLog,
    pub logical_clock: i64,
    /// The vote this server reports: its proposal while LOOKING, the final vote after.
    pub vote: Vote,
    /// Our own state as reported in notifications.
    pub state: ServerState,
    pub out: Vec<Output>,
}

impl Core {
    pub fn is_observer(&self) -> bool {
        !self.qv.is_voter(self.cfg.my_id)
    }

    /// Whether `new` gives this server the quorum address it has in the membership in
    /// force (read by the runtime, `ZabConfig::quorum_address_of`; true when either text
    /// has no line for it). ZooKeeper's `getDesignatedLeader` keeps the leader only if
    /// its quorum address is unchanged: learners of the new membership dial the new one.
    pub fn keeps_quorum_address(&self, new: &NewConfig) -> bool {
        let me = self.cfg.my_id;
        let of = self.cfg.quorum_address_of;
        match (of(&self.cfg.config_text, me), of(&new.text, me)) {
            (Some(old), Some(new)) => old == new,
            _ => true,
        }
    }

    /// A voter of the membership in force or of the pending one
    /// ([`Core::pending_config`]): whose notifications an election counts (ZooKeeper's
    /// `validVoter`).
    pub fn is_election_voter(&self, sid: ServerId) -> bool {
        self.qv.is_voter(sid)
            || self
                .pending_config()
                .is_some_and(|c| c.voters.contains(&sid))
    }

    /// Does this server learn as an observer (OBSERVERINFO, no ACKs)? Only a configured
    /// observer does. A server outside the membership (removed by a reconfig, or about
    /// to be added by one) follows without a vote, as ZooKeeper's does: its ACKs count
    /// for a pending membership that makes it a voter (how a reconfig adding it to a
    /// single voter can commit).
    pub fn learns_as_observer(&self) -> bool {
        self.qv.is_observer(self.cfg.my_id)
    }

    /// Our initial vote: ourselves with our last logged zxid and current epoch; observers
    /// vote for nobody (`Long.MIN_VALUE`).
    pub fn initial_vote(&self) -> Candidate {
        if self.is_observer() {
            Candidate::NOBODY
        } else {
            Candidate {
                leader: self.cfg.my_id,
                zxid: self.log.last(),
                epoch: i64::from(self.current_epoch),
            }
        }
    }

    /// Sends our reported vote with our real state (replies to peers).
    pub fn reply_vote(&mut self, to: ServerId) {
        let n = self.vote.notification(self.state, &self.cfg.config_text);
        self.out.push(Output::Send {
            to,
            msg: Message::Election(n),
        });
    }

    pub fn send(&mut self, to: ServerId, p: QuorumPacket) {
        self.out.push(Output::Send {
            to,
            msg: Message::Quorum(p),
        });
    }

    pub fn send_type(&mut self, to: ServerId, ty: PacketType, zxid: Zxid) {
        self.send(to, QuorumPacket::new(ty, zxid.0));
    }

    /// Commits (applies) everything up to `to` and trims the committed window.
    pub fn commit_to(&mut self, to: Zxid) -> Vec<Txn> {
        let newly = self.log.commit_up_to(to);
        for t in &newly {
            self.out.push(Output::Commit(t.clone()));
        }
        self.log.trim(self.cfg.commit_log_count);
        newly
    }

    /// Puts a committed reconfig's membership in force: the quorum verifier, the member
    /// lists and the text carried in notifications and NEWLEADER; then asks the runtime to
    /// activate it (`Output::Activate`, after the txn's `Commit`).
    pub fn activate(&mut self, config: &NewConfig, leader: ServerId) {
        if self
            .cfg
            .last_seen
            .as_ref()
            .is_some_and(|l| l.version <= config.version)
        {
            self.cfg.last_seen = None;
        }
        self.qv = config.quorum();
        self.cfg.voters = config.voters.clone();
        self.cfg.observers = config.observers.clone();
        self.cfg.groups = config.groups.clone();
        self.cfg.config_text = config.text.clone();
        self.cfg.config_version = config.version;
        tracing::info!(
            sid = %self.cfg.my_id,
            version = %config.version,
            voters = ?config.voters,
            observers = ?config.observers,
            designated_leader = %leader,
            "new membership in force"
        );
        self.out.push(Output::Activate {
            config: config.clone(),
            leader,
        });
    }

    /// A reconfig was proposed (leader) or its PROPOSAL logged (learner): a membership
    /// newer than any seen becomes the last seen one (ZooKeeper's
    /// `setLastSeenQuorumVerifier`).
    pub fn note_last_seen(&mut self, c: NewConfig) {
        let newest = self
            .cfg
            .last_seen
            .as_ref()
            .map_or(self.cfg.config_version, |l| l.version);
        if c.version > newest {
            self.cfg.last_seen = Some(c);
        }
    }

    /// The last seen membership when it is newer than the one in force.
    pub fn pending_config(&self) -> Option<&NewConfig> {
        self.cfg
            .last_seen
            .as_ref()
            .filter(|l| l.version > self.cfg.config_version)
    }

    pub fn tick_ms(&self) -> u64 {
        self.cfg.tick_ms.max(1)
    }
}
