//! State shared by every role of one server: configuration, clock, persistent epochs, the
//! in-memory log, the election clock and current vote, and the output buffer.
//! Role modules (election, leader, learner) borrow it; it makes no protocol decisions.

use super::election::Vote;
use super::log::TxnLog;
use super::quorum::QuorumVerifier;
use super::types::{Message, Output, Sid, Txn, ZabConfig};
use rzk_proto::quorum::{Notification, PacketType, QuorumPacket, ServerState};
use rzk_proto::Zxid;

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

    /// Our initial vote: ourselves with our last logged zxid and current epoch; observers
    /// vote for nobody (`Long.MIN_VALUE`).
    pub fn initial_vote(&self) -> (Sid, i64, i64) {
        if self.is_observer() {
            (i64::MIN, i64::MIN, i64::MIN)
        } else {
            (
                self.cfg.my_id,
                self.log.last().0,
                i64::from(self.current_epoch),
            )
        }
    }

    pub fn notification(&self, v: &Vote, state: ServerState) -> Notification {
        Notification {
            state,
            leader: v.leader,
            zxid: v.zxid,
            election_epoch: v.election_epoch,
            peer_epoch: v.peer_epoch,
            version: rzk_proto::quorum::election::NOTIFICATION_VERSION,
            config: self.cfg.config_text.clone(),
        }
    }

    pub fn send_vote(&mut self, to: Sid, v: &Vote) {
        let n = self.notification(v, ServerState::Looking);
        self.out.push(Output::Send {
            to,
            msg: Message::Election(n),
        });
    }

    /// Sends our reported vote with our real state (replies to peers).
    pub fn reply_vote(&mut self, to: Sid) {
        let n = self.notification(&self.vote, self.state);
        self.out.push(Output::Send {
            to,
            msg: Message::Election(n),
        });
    }

    pub fn send(&mut self, to: Sid, p: QuorumPacket) {
        self.out.push(Output::Send {
            to,
            msg: Message::Quorum(p),
        });
    }

    pub fn send_type(&mut self, to: Sid, ty: PacketType, zxid: Zxid) {
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

    pub fn tick_ms(&self) -> u64 {
        self.cfg.tick_ms.max(1)
    }
}
