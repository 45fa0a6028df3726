//! How the leader synchronises one learner (docs/QUORUM-PROTOCOL.md §6): DIFF, TRUNC or
//! SNAP, chosen exactly as ZooKeeper chooses from the learner's last zxid and the leader's
//! committed window. Pure: it only reads the leader's log.

use super::log::TxnLog;
use rzk_proto::Zxid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Keep your log; DIFF's zxid.
    Diff(Zxid),
    /// Drop everything after this zxid.
    Trunc(Zxid),
    /// Replace your database by the leader's snapshot at its committed point.
    Snap,
}

/// The mode packet, then every leader entry in `(send_after, history_end]` as
/// PROPOSAL + COMMIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncPlan {
    pub mode: SyncMode,
    pub send_after: Zxid,
}

/// Chooses the sync for a learner whose last logged zxid is `peer`. `history_end` is the
/// leader's last processed zxid: its initial history while establishing the epoch, its
/// last committed zxid afterwards. `log` holds the committed window.
pub fn plan(log: &TxnLog, history_end: Zxid, peer: Zxid) -> SyncPlan {
    let snap = SyncPlan {
        mode: SyncMode::Snap,
        send_after: log.committed(),
    };
    if peer == history_end {
        return SyncPlan {
            mode: SyncMode::Diff(peer),
            send_after: peer,
        };
    }
    let window: Vec<Zxid> = log
        .range(Zxid(i64::MIN), history_end)
        .map(|t| t.zxid)
        .collect();
    let (min, max) = match (window.first(), window.last()) {
        (Some(a), Some(b)) => (*a, *b),
        _ => (history_end, history_end),
    };
    if peer > max && log.get(peer).is_some() {
        // Deliberate deviation from ZooKeeper (which TRUNCs here): the learner's last zxid
        // is one of our own outstanding proposals of this epoch, so its log is a prefix of
        // ours. Truncating would drop proposals it already ACKed, which may be committed on
        // the strength of that ACK. Keep them and send only what follows.
        return SyncPlan {
            mode: SyncMode::Diff(max),
            send_after: peer,
        };
    }
    if peer > max && peer.counter() != 0 {
        return SyncPlan {
            mode: SyncMode::Trunc(max),
            send_after: max,
        };
    }
    if min <= peer && peer <= max {
        let i = window.partition_point(|z| *z < peer);
        let found = window[i];
        if found == peer || peer.counter() == 0 {
            return SyncPlan {
                mode: SyncMode::Diff(max),
                send_after: peer,
            };
        }
        if found.epoch() != peer.epoch() || i == 0 {
            return snap;
        }
        return SyncPlan {
            mode: SyncMode::Trunc(window[i - 1]),
            send_after: peer,
        };
    }
    snap
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zab::types::Txn;
    use bytes::Bytes;

    fn z(e: u32, c: u32) -> Zxid {
        Zxid::new(e, c)
    }

    /// Leader history 1.1 .. 1.5, 2.1 .. 2.3 all committed, window of 4 (1.5, 2.1..2.3).
    fn leader_log() -> TxnLog {
        let mut txns = Vec::new();
        for c in 1..=5 {
            txns.push(z(1, c));
        }
        for c in 1..=3 {
            txns.push(z(2, c));
        }
        let mut l = TxnLog::recovered(
            Zxid::ZERO,
            txns.into_iter()
                .map(|zxid| Txn {
                    zxid,
                    payload: Bytes::new(),
                })
                .collect(),
        );
        l.commit_up_to(z(2, 3));
        l.trim(4);
        l
    }

    #[test]
    fn learner_already_current_gets_empty_diff() {
        let p = plan(&leader_log(), z(2, 3), z(2, 3));
        assert_eq!(p.mode, SyncMode::Diff(z(2, 3)));
        assert_eq!(p.send_after, z(2, 3));
    }

    #[test]
    fn learner_behind_inside_window_gets_diff_of_missing_txns() {
        let p = plan(&leader_log(), z(2, 3), z(2, 1));
        assert_eq!(p.mode, SyncMode::Diff(z(2, 3)));
        assert_eq!(p.send_after, z(2, 1));
    }

    #[test]
    fn learner_ahead_of_leader_is_truncated_to_leaders_last() {
        // the learner logged 2.4 from a leader that died before committing it
        let p = plan(&leader_log(), z(2, 3), z(2, 4));
        assert_eq!(p.mode, SyncMode::Trunc(z(2, 3)));
    }

    #[test]
    fn learner_with_unknown_txn_in_same_epoch_is_truncated_to_previous() {
        // a dead epoch-3 leader? no: same epoch 2, learner has 2.2' where leader has 2.1, 2.3
        let mut l = leader_log();
        l.truncate_after(z(2, 1));
        assert!(l.append(Txn {
            zxid: z(2, 5),
            payload: Bytes::new(),
        }));
        l.commit_up_to(z(2, 5));
        let p = plan(&l, z(2, 5), z(2, 3));
        assert_eq!(p.mode, SyncMode::Trunc(z(2, 1)));
        assert_eq!(p.send_after, z(2, 3));
    }

    #[test]
    fn truncation_never_crosses_an_epoch_so_snap() {
        // learner at 1.7 (dead epoch-1 txns the leader never saw), leader window has 1.5 then 2.1
        let p = plan(&leader_log(), z(2, 3), z(1, 7));
        assert_eq!(p.mode, SyncMode::Snap);
    }

    #[test]
    fn learner_older_than_window_gets_snap() {
        let p = plan(&leader_log(), z(2, 3), z(1, 2));
        assert_eq!(p.mode, SyncMode::Snap);
        assert_eq!(p.send_after, z(2, 3));
        let empty = plan(&leader_log(), z(2, 3), Zxid::ZERO);
        assert_eq!(empty.mode, SyncMode::Snap);
    }

    #[test]
    fn learner_holding_our_outstanding_proposals_keeps_them() {
        let mut l = leader_log();
        for c in 4..=6 {
            assert!(l.append(Txn {
                zxid: z(2, c),
                payload: Bytes::new(),
            }));
        }
        // committed up to 2.3; 2.4..2.6 outstanding; learner reconnects having logged 2.5
        let p = plan(&l, z(2, 3), z(2, 5));
        assert_eq!(p.mode, SyncMode::Diff(z(2, 3)));
        assert_eq!(p.send_after, z(2, 5));
        // a learner with a 2.7 we never proposed is still truncated
        let p = plan(&l, z(2, 3), z(2, 7));
        assert_eq!(p.mode, SyncMode::Trunc(z(2, 3)));
    }

    #[test]
    fn learner_at_epoch_boundary_gets_diff() {
        let p = plan(&leader_log(), z(2, 3), z(2, 0));
        assert_eq!(p.mode, SyncMode::Diff(z(2, 3)));
        assert_eq!(p.send_after, z(2, 0));
    }
}
