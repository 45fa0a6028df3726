//! A follower's observer master (ZooKeeper's `ObserverMaster`, `observerMasterPort`),
//! sans-IO: observers connect to a synced follower instead of the leader; the follower
//! runs the learner handshake for them, syncs them from its own committed log and then
//! relays every transaction it commits as INFORM (a reconfig committed by COMMITANDACTIVATE
//! as INFORMANDACTIVATE, [`ObserverMaster::on_commit_and_activate`]).
//!
//! For each observer connection, in order (docs/QUORUM-PROTOCOL.md §8):
//! OBSERVERINFO → LEADERINFO (the follower's current epoch, protocol 0x10000) → ACKEPOCH
//! (the observer's last zxid) → DIFF / TRUNC / SNAP chosen by [`super::sync::plan`]
//! against the follower's committed window, the missing committed txns as PROPOSAL +
//! COMMIT, NEWLEADER (with the configuration text) → ACK → UPTODATE. From the sync point
//! on, every commit of the follower goes to the observer as INFORM, before and after
//! UPTODATE. The master pings synced observers every half tick; their PING replies carry
//! session touches for the leader. REQUEST (a `sync` included) and REVALIDATE from an
//! observer travel on to the leader through the follower's own link; the leader's SYNC
//! and REVALIDATE answers come back through the follower.
//!
//! Owns: per-observer handshake phase and liveness, the pending revalidations. Never
//! touches sockets, disk or the follower's core; it reads the follower's log through a
//! [`LogView`] and returns [`OmOut`]s for the runtime to carry out in order.

use super::log::TxnLog;
use super::sync::{plan, SyncMode};
use super::types::Txn;
use bytes::Bytes;
use rzk_proto::quorum::payload::{
    decode_revalidate, decode_revalidate_reply, encode_int, ForwardedRequest, LearnerInfo,
};
use rzk_proto::quorum::{PacketType, QuorumPacket, LEARNER_PROTOCOL_VERSION};
use rzk_proto::{ServerId, Zxid};
use std::collections::{BTreeMap, VecDeque};
use tracing::{debug, info, warn};

/// ZooKeeper's opcode of `sync` (a forwarded sync is answered by the leader's SYNC).
const OP_SYNC: i32 = 9;

/// Identifies one observer connection (the runtime's link id).
pub type ObsId = u64;

/// What the runtime must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum OmOut {
    /// Queue `packet` on the observer's connection.
    Send { obs: ObsId, packet: QuorumPacket },
    /// Queue a SNAP of the follower's database at `zxid` (its last committed zxid: the
    /// runtime's applier must have been handed every commit up to it, and no later one).
    SendSnapshot { obs: ObsId, zxid: Zxid },
    /// Close the observer's connection.
    Close { obs: ObsId },
    /// Send `packet` (REQUEST or REVALIDATE) to the leader on the follower's link.
    Forward(QuorumPacket),
    /// A forwarded `sync` of this observer: send the packet to the leader and answer the
    /// observer with SYNC when the leader's SYNC for it comes back (FIFO with the
    /// follower's own syncs).
    ForwardSync { obs: ObsId, packet: QuorumPacket },
    /// Session touches from an observer's PING reply, for the follower's next PING reply
    /// to the leader (ZooKeeper's session-touch encoding: `long id, int timeout` pairs).
    Touches(Bytes),
}

/// The follower's state an observer's sync is planned from.
#[derive(Debug, Clone, Copy)]
pub struct LogView<'a> {
    /// The follower's in-memory log: committed window plus outstanding proposals.
    pub log: &'a TxnLog,
    /// The configuration text sent in NEWLEADER (as the leader sends it).
    pub config_text: &'a str,
}

/// Timing of the master, all from zoo.cfg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OmTiming {
    /// `tickTime`, ms.
    pub tick_ms: u64,
    /// `initLimit`, ticks: an observer silent this long before UPTODATE is dropped.
    pub init_limit: u64,
    /// `syncLimit`, ticks: a synced observer silent this long is dropped.
    pub sync_limit: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitInfo,
    AwaitAckEpoch,
    AwaitNewLeaderAck,
    Active,
}

#[derive(Debug)]
struct Obs {
    sid: Option<ServerId>,
    phase: Phase,
    last_heard: u64,
    /// INFORMs are sent for commits above this zxid (the sync point).
    informs_after: Zxid,
}

/// The observer master of one follower for one epoch (created when the follower is up
/// to date, dropped when it stops following).
#[derive(Debug)]
pub struct ObserverMaster {
    me: ServerId,
    epoch: u32,
    timing: OmTiming,
    observers: BTreeMap<ObsId, Obs>,
    /// REVALIDATEs forwarded for observers, oldest first: (session, observer).
    revalidations: VecDeque<(i64, ObsId)>,
    /// Zxid of the last INFORM sent (or the committed zxid at start): PINGs carry it.
    last_sent: Zxid,
    next_ping_at: u64,
}

impl ObserverMaster {
    /// A master for follower `me` in `epoch` (its current epoch), whose last committed
    /// zxid is `committed`, at time `now_ms`.
    pub fn new(me: ServerId, epoch: u32, committed: Zxid, timing: OmTiming, now_ms: u64) -> Self {
        ObserverMaster {
            me,
            epoch,
            timing,
            observers: BTreeMap::new(),
            revalidations: VecDeque::new(),
            last_sent: committed,
            next_ping_at: now_ms + timing.tick_ms.max(2) / 2,
        }
    }

    /// Observers synced (UPTODATE sent), ZooKeeper's `synced_observers` on a follower.
    pub fn synced(&self) -> usize {
        self.observers
            .values()
            .filter(|o| o.phase == Phase::Active)
            .count()
    }

    /// Sids of the connected observers that told us who they are.
    pub fn observer_sids(&self) -> Vec<ServerId> {
        self.observers.values().filter_map(|o| o.sid).collect()
    }

    /// A new connection; it must start with OBSERVERINFO.
    pub fn connected(&mut self, obs: ObsId, now_ms: u64) {
        self.observers.insert(
            obs,
            Obs {
                sid: None,
                phase: Phase::AwaitInfo,
                last_heard: now_ms,
                informs_after: Zxid(i64::MAX),
            },
        );
    }

    /// The connection ended (or was closed on our request).
    pub fn closed(&mut self, obs: ObsId) {
        if let Some(o) = self.observers.remove(&obs) {
            info!(follower = %self.me, observer = ?o.sid, "observer disconnected from the observer master");
        }
        self.revalidations.retain(|(_, o)| *o != obs);
    }

    fn close(&mut self, obs: ObsId, why: &str, out: &mut Vec<OmOut>) {
        warn!(follower = %self.me, obs, why, "closing observer connection");
        self.closed(obs);
        out.push(OmOut::Close { obs });
    }

    /// One packet from observer `obs`.
    pub fn on_packet(
        &mut self,
        obs: ObsId,
        p: QuorumPacket,
        view: LogView<'_>,
        now_ms: u64,
    ) -> Vec<OmOut> {
        let mut out = Vec::new();
        let Some(o) = self.observers.get_mut(&obs) else {
            return out;
        };
        o.last_heard = now_ms;
        match (o.phase, p.ty) {
            (Phase::AwaitInfo, PacketType::ObserverInfo) => {
                match LearnerInfo::decode(p.data()) {
                    Ok(li) => o.sid = Some(ServerId(li.server_id)),
                    Err(e) => {
                        self.close(obs, &format!("bad LearnerInfo: {e}"), &mut out);
                        return out;
                    }
                }
                o.phase = Phase::AwaitAckEpoch;
                out.push(OmOut::Send {
                    obs,
                    packet: QuorumPacket::with_data(
                        PacketType::LeaderInfo,
                        Zxid::new(self.epoch, 0).0,
                        encode_int(LEARNER_PROTOCOL_VERSION),
                    ),
                });
            }
            (Phase::AwaitInfo, _) => {
                // As ZooKeeper's LearnerHandler: only observers may use this port.
                self.close(obs, "only OBSERVERINFO is accepted here", &mut out);
            }
            (Phase::AwaitAckEpoch, PacketType::AckEpoch) => {
                let sid = o.sid;
                let committed = view.log.committed();
                let peer = Zxid(p.zxid);
                let pl = plan(view.log, committed, peer);
                o.informs_after = committed.max(pl.send_after);
                o.phase = Phase::AwaitNewLeaderAck;
                let txns: Vec<Txn> = view.log.range(pl.send_after, committed).cloned().collect();
                info!(
                    follower = %self.me,
                    observer = ?sid,
                    "observer master syncing observer (its last zxid {peer}): {:?}, then {} committed txns",
                    pl.mode,
                    txns.len()
                );
                out.push(match pl.mode {
                    SyncMode::Diff(z) => OmOut::Send {
                        obs,
                        packet: QuorumPacket::new(PacketType::Diff, z.0),
                    },
                    SyncMode::Trunc(z) => OmOut::Send {
                        obs,
                        packet: QuorumPacket::new(PacketType::Trunc, z.0),
                    },
                    SyncMode::Snap => OmOut::SendSnapshot {
                        obs,
                        zxid: committed,
                    },
                });
                for t in txns {
                    out.push(OmOut::Send {
                        obs,
                        packet: QuorumPacket::with_data(PacketType::Proposal, t.zxid.0, t.payload),
                    });
                    out.push(OmOut::Send {
                        obs,
                        packet: QuorumPacket::new(PacketType::Commit, t.zxid.0),
                    });
                }
                out.push(OmOut::Send {
                    obs,
                    packet: QuorumPacket::with_data(
                        PacketType::NewLeader,
                        Zxid::new(self.epoch, 0).0,
                        Bytes::from(view.config_text.as_bytes().to_vec()),
                    ),
                });
            }
            (Phase::AwaitNewLeaderAck, PacketType::Ack) => {
                if Zxid(p.zxid) != Zxid::new(self.epoch, 0) {
                    self.close(obs, "NEWLEADER ACK for another epoch", &mut out);
                    return out;
                }
                o.phase = Phase::Active;
                info!(follower = %self.me, observer = ?o.sid, "observer synced through this follower");
                out.push(OmOut::Send {
                    obs,
                    packet: QuorumPacket::new(PacketType::UpToDate, -1),
                });
            }
            (Phase::AwaitNewLeaderAck | Phase::Active, PacketType::Ping) => {
                if !p.data().is_empty() {
                    out.push(OmOut::Touches(p.data.unwrap_or_default()));
                }
            }
            (Phase::Active, PacketType::Ack) => {
                // The ACK of UPTODATE (counter 0); observers ACK nothing else.
                if Zxid(p.zxid).counter() != 0 {
                    self.close(obs, "observers must not ACK proposals", &mut out);
                }
            }
            (Phase::Active, PacketType::Request) => match ForwardedRequest::decode(p.data()) {
                Ok(f) if f.op_type == OP_SYNC => out.push(OmOut::ForwardSync { obs, packet: p }),
                Ok(_) => out.push(OmOut::Forward(p)),
                Err(e) => self.close(obs, &format!("malformed REQUEST: {e}"), &mut out),
            },
            (Phase::Active, PacketType::Revalidate) => match decode_revalidate(p.data()) {
                Ok((session, _)) => {
                    self.revalidations.push_back((session, obs));
                    out.push(OmOut::Forward(p));
                }
                Err(e) => self.close(obs, &format!("malformed REVALIDATE: {e}"), &mut out),
            },
            (phase, ty) => {
                self.close(
                    obs,
                    &format!("unexpected {ty:?} in phase {phase:?}"),
                    &mut out,
                );
            }
        }
        out
    }

    /// The follower committed `txn`: INFORM every observer synced past its sync point.
    pub fn on_commit(&mut self, txn: &Txn) -> Vec<OmOut> {
        self.relay(
            txn.zxid,
            QuorumPacket::with_data(PacketType::Inform, txn.zxid.0, txn.payload.clone()),
        )
    }

    /// The follower committed the reconfig `txn` on the leader's COMMITANDACTIVATE, which
    /// named `designated` as the leader of the new membership: INFORMANDACTIVATE (data:
    /// `designated` as a big-endian `long`, then the txn) instead of INFORM to every
    /// observer synced past its sync point, as ZooKeeper 3.8's follower does
    /// (`ObserverMaster.informAndActivate`), so the observers put the membership in force
    /// without a new sync.
    pub fn on_commit_and_activate(&mut self, txn: &Txn, designated: ServerId) -> Vec<OmOut> {
        self.relay(
            txn.zxid,
            QuorumPacket::with_data(
                PacketType::InformAndActivate,
                txn.zxid.0,
                super::leader::activate_data(designated, &txn.payload),
            ),
        )
    }

    /// Sends `packet` (the relay of committed `zxid`) to every observer synced past its
    /// sync point.
    fn relay(&mut self, zxid: Zxid, packet: QuorumPacket) -> Vec<OmOut> {
        let mut out = Vec::new();
        for (id, o) in &self.observers {
            if matches!(o.phase, Phase::AwaitNewLeaderAck | Phase::Active) && zxid > o.informs_after
            {
                out.push(OmOut::Send {
                    obs: *id,
                    packet: packet.clone(),
                });
            }
        }
        self.last_sent = self.last_sent.max(zxid);
        out
    }

    /// The leader's REVALIDATE answer reached the follower: if an observer asked for this
    /// session (oldest first), relay the answer to it and return true.
    pub fn on_revalidate_reply(&mut self, p: &QuorumPacket) -> (bool, Vec<OmOut>) {
        let Ok((session, _)) = decode_revalidate_reply(p.data()) else {
            return (false, Vec::new());
        };
        let Some(i) = self.revalidations.iter().position(|(s, _)| *s == session) else {
            return (false, Vec::new());
        };
        let Some((_, obs)) = self.revalidations.remove(i) else {
            return (false, Vec::new());
        };
        (
            true,
            vec![OmOut::Send {
                obs,
                packet: p.clone(),
            }],
        )
    }

    /// The SYNC answering observer `obs`'s forwarded sync.
    pub fn sync_answer(&self, obs: ObsId) -> Vec<OmOut> {
        if self.observers.contains_key(&obs) {
            vec![OmOut::Send {
                obs,
                packet: QuorumPacket::new(PacketType::Sync, 0),
            }]
        } else {
            Vec::new()
        }
    }

    /// Time passes: ping every half tick, drop observers silent past their limit
    /// (`initLimit` ticks until synced, `syncLimit` ticks after).
    pub fn on_tick(&mut self, now_ms: u64) -> Vec<OmOut> {
        let mut out = Vec::new();
        let tick = self.timing.tick_ms.max(1);
        let silent: Vec<ObsId> = self
            .observers
            .iter()
            .filter(|(_, o)| {
                let limit = if o.phase == Phase::Active {
                    self.timing.sync_limit
                } else {
                    self.timing.init_limit
                };
                now_ms > o.last_heard + limit * tick
            })
            .map(|(id, _)| *id)
            .collect();
        for id in silent {
            self.close(id, "observer silent too long", &mut out);
        }
        if now_ms >= self.next_ping_at {
            self.next_ping_at = now_ms + (tick / 2).max(1);
            for (id, o) in &self.observers {
                if matches!(o.phase, Phase::AwaitNewLeaderAck | Phase::Active) {
                    out.push(OmOut::Send {
                        obs: *id,
                        packet: QuorumPacket::new(PacketType::Ping, self.last_sent.0),
                    });
                }
            }
        }
        debug!(follower = %self.me, observers = self.observers.len(), "observer master tick");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rzk_proto::quorum::payload::{encode_revalidate, encode_revalidate_reply};

    const TIMING: OmTiming = OmTiming {
        tick_ms: 100,
        init_limit: 10,
        sync_limit: 5,
    };

    fn z(e: u32, c: u32) -> Zxid {
        Zxid::new(e, c)
    }

    /// A follower log: 1.1..1.5 and 2.1..2.3 committed (window trimmed to 4), 2.4 outstanding.
    fn follower_log() -> TxnLog {
        let mut txns: Vec<Txn> = (1..=5)
            .map(|c| z(1, c))
            .chain((1..=4).map(|c| z(2, c)))
            .map(|zxid| Txn {
                zxid,
                payload: Bytes::from(format!("{zxid}")),
            })
            .collect();
        let mut l = TxnLog::recovered(Zxid::ZERO, std::mem::take(&mut txns));
        l.commit_up_to(z(2, 3));
        l.trim(4);
        l
    }

    fn info(sid: i64) -> QuorumPacket {
        QuorumPacket::with_data(
            PacketType::ObserverInfo,
            z(1, 0).0,
            LearnerInfo {
                server_id: sid,
                protocol_version: LEARNER_PROTOCOL_VERSION,
                config_version: 0,
            }
            .encode(),
        )
    }

    fn view(log: &TxnLog) -> LogView<'_> {
        LogView {
            log,
            config_text: "server.1=a:1:2:participant\nversion=0",
        }
    }

    fn types(out: &[OmOut]) -> Vec<(PacketType, i64)> {
        out.iter()
            .map(|o| match o {
                OmOut::Send { packet, .. } => (packet.ty, packet.zxid),
                OmOut::SendSnapshot { zxid, .. } => (PacketType::Snap, zxid.0),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    /// Drives observer 7 (sid 4) through the handshake from last zxid `peer`; returns the
    /// sync packets (mode .. NEWLEADER).
    fn handshake(om: &mut ObserverMaster, log: &TxnLog, peer: Zxid) -> Vec<(PacketType, i64)> {
        om.connected(7, 0);
        let out = om.on_packet(7, info(4), view(log), 0);
        assert_eq!(types(&out), vec![(PacketType::LeaderInfo, z(2, 0).0)]);
        let sync = om.on_packet(
            7,
            QuorumPacket::with_data(PacketType::AckEpoch, peer.0, encode_int(1)),
            view(log),
            0,
        );
        let sync = types(&sync);
        let up = om.on_packet(
            7,
            QuorumPacket::new(PacketType::Ack, z(2, 0).0),
            view(log),
            0,
        );
        assert_eq!(types(&up), vec![(PacketType::UpToDate, -1)]);
        assert_eq!(om.synced(), 1);
        sync
    }

    #[test]
    fn observer_behind_gets_diff_of_committed_txns_then_informs() {
        let log = follower_log();
        let mut om = ObserverMaster::new(ServerId(2), 2, log.committed(), TIMING, 0);
        let sync = handshake(&mut om, &log, z(2, 1));
        assert_eq!(
            sync,
            vec![
                (PacketType::Diff, z(2, 3).0),
                (PacketType::Proposal, z(2, 2).0),
                (PacketType::Commit, z(2, 2).0),
                (PacketType::Proposal, z(2, 3).0),
                (PacketType::Commit, z(2, 3).0),
                (PacketType::NewLeader, z(2, 0).0),
            ]
        );
        // The outstanding 2.4 commits: INFORM with its payload.
        let t = log.get(z(2, 4)).cloned().expect("2.4 logged");
        let out = om.on_commit(&t);
        assert_eq!(
            out,
            vec![OmOut::Send {
                obs: 7,
                packet: QuorumPacket::with_data(PacketType::Inform, z(2, 4).0, t.payload.clone()),
            }]
        );
    }

    #[test]
    fn a_reconfig_commit_is_relayed_as_inform_and_activate() {
        let log = follower_log();
        let mut om = ObserverMaster::new(ServerId(2), 2, log.committed(), TIMING, 0);
        handshake(&mut om, &log, z(2, 1));
        let t = log.get(z(2, 4)).cloned().expect("2.4 logged");
        let out = om.on_commit_and_activate(&t, ServerId(3));
        let mut data = 3i64.to_be_bytes().to_vec();
        data.extend_from_slice(&t.payload);
        assert_eq!(
            out,
            vec![OmOut::Send {
                obs: 7,
                packet: QuorumPacket::with_data(
                    PacketType::InformAndActivate,
                    z(2, 4).0,
                    Bytes::from(data)
                ),
            }]
        );
    }

    #[test]
    fn observer_older_than_window_gets_snap_at_committed() {
        let log = follower_log();
        let mut om = ObserverMaster::new(ServerId(2), 2, log.committed(), TIMING, 0);
        let sync = handshake(&mut om, &log, z(1, 1));
        assert_eq!(
            sync,
            vec![
                (PacketType::Snap, z(2, 3).0),
                (PacketType::NewLeader, z(2, 0).0)
            ]
        );
    }

    #[test]
    fn observer_ahead_is_truncated() {
        let log = follower_log();
        let mut om = ObserverMaster::new(ServerId(2), 2, log.committed(), TIMING, 0);
        let sync = handshake(&mut om, &log, z(2, 9));
        assert_eq!(sync[0], (PacketType::Trunc, z(2, 3).0));
    }

    #[test]
    fn commits_during_handshake_are_informed_only_after_the_sync_point() {
        let mut log = follower_log();
        let mut om = ObserverMaster::new(ServerId(2), 2, log.committed(), TIMING, 0);
        om.connected(7, 0);
        om.on_packet(7, info(4), view(&log), 0);
        // 2.4 commits before the observer's ACKEPOCH: no INFORM yet (not synced)...
        log.commit_up_to(z(2, 4));
        let t = log.get(z(2, 4)).cloned().expect("2.4 logged");
        assert!(om.on_commit(&t).is_empty());
        // ...it is part of the DIFF instead, and not sent again as INFORM.
        let sync = om.on_packet(
            7,
            QuorumPacket::with_data(PacketType::AckEpoch, z(2, 3).0, encode_int(1)),
            view(&log),
            0,
        );
        assert_eq!(types(&sync)[0], (PacketType::Diff, z(2, 4).0));
        assert!(om.on_commit(&t).is_empty());
    }

    #[test]
    fn followers_may_not_use_the_port() {
        let log = follower_log();
        let mut om = ObserverMaster::new(ServerId(2), 2, log.committed(), TIMING, 0);
        om.connected(1, 0);
        let mut p = info(3);
        p.ty = PacketType::FollowerInfo;
        assert_eq!(
            om.on_packet(1, p, view(&log), 0),
            vec![OmOut::Close { obs: 1 }]
        );
    }

    #[test]
    fn requests_syncs_revalidations_and_touches_go_to_the_leader() {
        let log = follower_log();
        let mut om = ObserverMaster::new(ServerId(2), 2, log.committed(), TIMING, 0);
        handshake(&mut om, &log, z(2, 3));
        let req = |op: i32| {
            QuorumPacket::with_data(
                PacketType::Request,
                0,
                ForwardedRequest {
                    session_id: 5,
                    cxid: 1,
                    op_type: op,
                    body: Bytes::new(),
                }
                .encode(),
            )
        };
        let w = req(1);
        assert_eq!(
            om.on_packet(7, w.clone(), view(&log), 1),
            vec![OmOut::Forward(w)]
        );
        let s = req(OP_SYNC);
        assert_eq!(
            om.on_packet(7, s.clone(), view(&log), 1),
            vec![OmOut::ForwardSync { obs: 7, packet: s }]
        );
        assert_eq!(
            om.sync_answer(7),
            vec![OmOut::Send {
                obs: 7,
                packet: QuorumPacket::new(PacketType::Sync, 0)
            }]
        );
        let rv = QuorumPacket::with_data(PacketType::Revalidate, -1, encode_revalidate(5, 3000));
        assert_eq!(
            om.on_packet(7, rv.clone(), view(&log), 1),
            vec![OmOut::Forward(rv)]
        );
        let other =
            QuorumPacket::with_data(PacketType::Revalidate, -1, encode_revalidate_reply(6, true));
        assert!(!om.on_revalidate_reply(&other).0);
        let answer =
            QuorumPacket::with_data(PacketType::Revalidate, -1, encode_revalidate_reply(5, true));
        let (mine, out) = om.on_revalidate_reply(&answer);
        assert!(mine);
        assert_eq!(
            out,
            vec![OmOut::Send {
                obs: 7,
                packet: answer.clone()
            }]
        );
        assert!(!om.on_revalidate_reply(&answer).0, "answered once");
        let ping = QuorumPacket::with_data(PacketType::Ping, 0, Bytes::from_static(&[1; 12]));
        assert_eq!(
            om.on_packet(7, ping, view(&log), 1),
            vec![OmOut::Touches(Bytes::from_static(&[1; 12]))]
        );
    }

    #[test]
    fn pings_every_half_tick_and_drops_silent_observers() {
        let log = follower_log();
        let mut om = ObserverMaster::new(ServerId(2), 2, log.committed(), TIMING, 0);
        handshake(&mut om, &log, z(2, 3));
        let out = om.on_tick(50);
        assert_eq!(
            out,
            vec![OmOut::Send {
                obs: 7,
                packet: QuorumPacket::new(PacketType::Ping, z(2, 3).0)
            }]
        );
        assert!(om.on_tick(60).is_empty(), "not before the next half tick");
        // syncLimit (5) ticks of 100 ms without a packet: dropped.
        let out = om.on_tick(501);
        assert_eq!(out, vec![OmOut::Close { obs: 7 }]);
        assert_eq!(om.synced(), 0);
    }
}
