//! Votes of fast leader election and their order (ZooKeeper's `Vote` and
//! `totalOrderPredicate`). Plain data shared by `core` (the vote this server reports) and
//! `election` (the LOOKING state); it depends on neither.

use rzk_proto::quorum::election::NOTIFICATION_VERSION;
use rzk_proto::quorum::{Notification, ServerState};
use rzk_proto::{ServerId, Zxid};
use std::cmp::Ordering;

/// Whom a vote is for: a server with its last logged zxid and its peer epoch (the epoch it
/// last acknowledged).
///
/// Ordered as ZooKeeper's `totalOrderPredicate`: the higher peer epoch wins, then the
/// higher zxid, then the higher server id. (Whether the leader may win at all — it must
/// be a voter — is the election's check, not part of the order.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub leader: ServerId,
    pub zxid: Zxid,
    /// Peer epoch; `i64` as in the notification, so that [`Candidate::NOBODY`] can sit
    /// below every real epoch.
    pub epoch: i64,
}

impl Candidate {
    /// An observer's vote: nobody (`Long.MIN_VALUE` in every field), below every real one.
    pub const NOBODY: Candidate = Candidate {
        leader: ServerId::NONE,
        zxid: Zxid(i64::MIN),
        epoch: i64::MIN,
    };
}

impl Ord for Candidate {
    fn cmp(&self, other: &Candidate) -> Ordering {
        (self.epoch, self.zxid, self.leader).cmp(&(other.epoch, other.zxid, other.leader))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Candidate) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A vote as heard from a peer (or our own, as we report it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vote {
    pub leader: ServerId,
    pub zxid: Zxid,
    /// The election round (`logicalclock`) the vote was cast in.
    pub election_epoch: i64,
    pub peer_epoch: i64,
    pub state: ServerState,
    pub version: i32,
}

impl Vote {
    /// A LOOKING vote for `c` in round `election_epoch`, in our notification version.
    pub fn looking(c: Candidate, election_epoch: i64) -> Vote {
        Vote {
            leader: c.leader,
            zxid: c.zxid,
            election_epoch,
            peer_epoch: c.epoch,
            state: ServerState::Looking,
            version: NOTIFICATION_VERSION,
        }
    }

    /// Whom this vote is for.
    pub fn candidate(&self) -> Candidate {
        Candidate {
            leader: self.leader,
            zxid: self.zxid,
            epoch: self.peer_epoch,
        }
    }

    /// The vote a notification carries (its wire `long`s become typed ids here).
    pub fn from_notification(n: &Notification) -> Vote {
        Vote {
            leader: ServerId(n.leader),
            zxid: Zxid(n.zxid),
            election_epoch: n.election_epoch,
            peer_epoch: n.peer_epoch,
            state: n.state,
            version: n.version,
        }
    }

    /// The notification that reports this vote with `state` and the quorum `config` text.
    pub fn notification(&self, state: ServerState, config: &str) -> Notification {
        Notification {
            state,
            leader: self.leader.0,
            zxid: self.zxid.0,
            election_epoch: self.election_epoch,
            peer_epoch: self.peer_epoch,
            version: NOTIFICATION_VERSION,
            config: config.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn c(leader: i64, zxid: i64, epoch: i64) -> Candidate {
        Candidate {
            leader: ServerId(leader),
            zxid: Zxid(zxid),
            epoch,
        }
    }

    #[test]
    fn total_order_is_epoch_then_zxid_then_sid() {
        assert!(c(1, 0, 2) > c(3, 9, 1), "higher epoch beats a longer log");
        assert!(c(1, 5, 1) > c(3, 4, 1), "same epoch: higher zxid");
        assert!(c(3, 5, 1) > c(2, 5, 1), "same epoch and zxid: higher sid");
        assert!(c(1, 0, 0) > Candidate::NOBODY);
        assert_eq!(c(2, 5, 1).cmp(&c(2, 5, 1)), Ordering::Equal);
    }

    #[test]
    fn notification_round_trip_keeps_the_vote() {
        let v = Vote {
            state: ServerState::Following,
            ..Vote::looking(c(3, 0x1_0000_0002, 1), 4)
        };
        let n = v.notification(v.state, "cfg");
        assert_eq!(
            (n.leader, n.zxid, n.config.as_str()),
            (3, 0x1_0000_0002, "cfg")
        );
        assert_eq!(Vote::from_notification(&n), v);
        assert_eq!(v.candidate(), c(3, 0x1_0000_0002, 1));
    }
}
