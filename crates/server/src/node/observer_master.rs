//! The driver's side of `observerMasterPort` (ZooKeeper's `ObserverMaster` and the
//! observer's choice of a learner master); a child module of `node/driver.rs`, so it
//! extends [`Driver`] with the `om_*` hooks the driver calls.
//!
//! * On a follower that is up to date, with `observerMasterPort` set: listen on that
//!   port at the follower's quorum address and run `zab::observer_master` for the
//!   observers that connect; carry out its outputs (packets on their links, SNAPs from
//!   the applier, REQUEST / REVALIDATE / session touches on to the leader, a forwarded
//!   `sync` answered in FIFO order with the follower's own). Stopped on any role change.
//! * On an observer with `observerMasterPort` set: connect to the voters' observer
//!   master ports in a shuffled round-robin, as ZooKeeper's `QuorumPeer.findLearnerMaster`
//!   does; the elected leader itself is reached on its quorum port (the leader runs no
//!   observer master). The link stays keyed by the leader's sid, so the core sees the
//!   learner master as its leader.
//!
//! Never decides protocol questions (those are `zab::observer_master`'s).

use super::{Driver, LearnerSync};
use crate::config::Config;
use crate::net::peer::learner_net::{LinkTx, Outbound};
use crate::net::peer::observer_master_net::{self, OmEvent};
use crate::node::apply::ApplyMsg;
use crate::node::QuorumError;
use crate::zab::observer_master::{ObsId, ObserverMaster, OmOut, OmTiming};
use crate::zab::{Input, Role, ServerId, Txn};
use bytes::Bytes;
use rzk_proto::Zxid;
use std::collections::HashMap;
use std::net::SocketAddr;
use tokio::sync::oneshot;

/// One observer connected to this follower.
#[derive(Debug)]
struct OmConn {
    tx: LinkTx,
    /// Dropped with the connection: ends its reader.
    _stop: oneshot::Sender<()>,
}

/// The observer master of this server (a follower's listener and observers) and, on an
/// observer, its rotation over the voters' observer master ports.
#[derive(Debug, Default)]
pub(super) struct OmRuntime {
    /// `observerMasterPort` (None: not set, or 0).
    port: Option<u16>,
    master: Option<ObserverMaster>,
    listener: Option<tokio::task::AbortHandle>,
    conns: HashMap<ObsId, OmConn>,
    /// Observer side: the voters in the order they are tried, and the next one.
    rotation: Vec<ServerId>,
    next: usize,
    /// A reconfig txn this follower just committed, held until the core's
    /// `Output::Activate` (right after its `Commit`) names the designated leader, so it is
    /// relayed as INFORMANDACTIVATE; relayed as a plain INFORM if no activation follows.
    held_reconfig: Option<Txn>,
}

impl OmRuntime {
    /// Reads `observerMasterPort` (ZooKeeper: an int; 0 or less disables the feature).
    ///
    /// # Errors
    /// `QuorumError::Config` naming the key when the value is not a port number.
    pub(super) fn from_config(cfg: &Config) -> Result<OmRuntime, QuorumError> {
        let port = match cfg.unknown.get("observerMasterPort") {
            None => None,
            Some(v) => {
                let n: i64 = v.trim().parse().map_err(|_| {
                    QuorumError::Config(format!("observerMasterPort={v} is not a number"))
                })?;
                if n <= 0 {
                    None
                } else {
                    Some(u16::try_from(n).map_err(|_| {
                        QuorumError::Config(format!("observerMasterPort={v} is not a port"))
                    })?)
                }
            }
        };
        Ok(OmRuntime {
            port,
            ..OmRuntime::default()
        })
    }
}

impl Driver {
    /// A follower became up to date in `epoch`: start its observer master if configured.
    pub(super) fn om_start(&mut self, epoch: u32) {
        self.om_stop();
        let Some(port) = self.om.port else { return };
        if self.role != Role::Following {
            return;
        }
        let Some(me) = self.peers.members.get(&self.peers.me) else {
            return;
        };
        let addr = crate::node::peers::listen_addr(
            SocketAddr::new(me.quorum.ip(), port),
            self.shared.config.quorum_listen_on_all_ips,
        );
        let cfg = &self.shared.config;
        let timing = OmTiming {
            tick_ms: u64::from(cfg.tick_time_ms.max(1)),
            init_limit: u64::from(cfg.init_limit.unwrap_or(10).max(1)),
            sync_limit: u64::from(cfg.sync_limit.unwrap_or(5).max(1)),
        };
        let now = self.now_ms();
        self.om.master = Some(ObserverMaster::new(
            self.peers.me,
            epoch,
            self.zab.last_committed(),
            timing,
            now,
        ));
        let h = self.rt.spawn(observer_master_net::listen(
            addr,
            self.events_tx.clone(),
            self.quorum_tls.clone(),
            self.quorum_sasl.clone(),
        ));
        self.om.listener = Some(h.abort_handle());
        tracing::info!(sid = %self.peers.me, %addr, epoch, "starting the observer master");
    }

    /// Stops the observer master (any role change): closes its port and its observers.
    pub(super) fn om_stop(&mut self) {
        if let Some(l) = self.om.listener.take() {
            l.abort();
            tracing::info!(sid = %self.peers.me, observers = self.om.conns.len(), "observer master stopped");
        }
        self.om.conns.clear();
        self.om.master = None;
        self.om.held_reconfig = None;
    }

    /// The follower committed `zxid`: INFORM the observers. A reconfig txn waits for its
    /// activation ([`Driver::om_activate`]).
    pub(super) fn om_commit(&mut self, zxid: Zxid, payload: &Bytes) {
        if self.om.master.is_none() {
            return;
        }
        self.om_release_held();
        let txn = Txn {
            zxid,
            payload: payload.clone(),
        };
        if super::reconfig::is_reconfig_txn(&txn) {
            self.om.held_reconfig = Some(txn);
            return;
        }
        if let Some(m) = self.om.master.as_mut() {
            let outs = m.on_commit(&txn);
            self.om_run(outs);
        }
    }

    /// The core activated the membership of version `version` with `designated` as its
    /// leader: a reconfig txn of that zxid just committed here goes to the observers as
    /// INFORMANDACTIVATE, as ZooKeeper's follower relays COMMITANDACTIVATE
    /// (`ObserverMaster.informAndActivate`).
    pub(super) fn om_activate(&mut self, version: Zxid, designated: ServerId) {
        let Some(txn) = self.om.held_reconfig.take() else {
            return;
        };
        if txn.zxid != version {
            self.om.held_reconfig = Some(txn);
            self.om_release_held();
            return;
        }
        if let Some(m) = self.om.master.as_mut() {
            tracing::info!(zxid = %txn.zxid, %designated, observers = m.synced(), "relaying INFORMANDACTIVATE to observers");
            let outs = m.on_commit_and_activate(&txn, designated);
            self.om_run(outs);
        }
    }

    /// A held reconfig txn that no activation claimed: relayed as a plain INFORM.
    fn om_release_held(&mut self) {
        let Some(txn) = self.om.held_reconfig.take() else {
            return;
        };
        if let Some(m) = self.om.master.as_mut() {
            let outs = m.on_commit(&txn);
            self.om_run(outs);
        }
    }

    pub(super) fn om_event(&mut self, e: OmEvent) {
        let now = self.now_ms();
        match e {
            OmEvent::Accepted { id, addr, tx, stop } => {
                if let Some(m) = self.om.master.as_mut() {
                    tracing::info!(%addr, id, "observer connected to the observer master");
                    m.connected(id, now);
                    self.om.conns.insert(id, OmConn { tx, _stop: stop });
                }
            }
            OmEvent::Packet { id, packet } => {
                let view = self.zab.observer_master_view();
                let Some(m) = self.om.master.as_mut() else {
                    return;
                };
                let outs = m.on_packet(id, packet, view, now);
                self.om_run(outs);
            }
            OmEvent::Closed { id } => {
                self.om.conns.remove(&id);
                if let Some(m) = self.om.master.as_mut() {
                    m.closed(id);
                }
            }
            OmEvent::BindFailed { addr, error } => {
                tracing::error!(%addr, "cannot listen on observerMasterPort {addr}: {error}; observers cannot sync from this follower");
            }
        }
    }

    pub(super) fn om_tick(&mut self) {
        let now = self.now_ms();
        let Some(m) = self.om.master.as_mut() else {
            return;
        };
        let outs = m.on_tick(now);
        let synced = m.synced();
        self.om_run(outs);
        self.shared.quorum.set_learners(crate::zab::LearnerCounts {
            observers: synced,
            ..Default::default()
        });
    }

    /// The leader's REVALIDATE answer: true when it was an observer's (relayed to it).
    pub(super) fn om_revalidate_reply(&mut self, p: &rzk_proto::quorum::QuorumPacket) -> bool {
        let Some(m) = self.om.master.as_mut() else {
            return false;
        };
        let (mine, outs) = m.on_revalidate_reply(p);
        self.om_run(outs);
        mine
    }

    /// The leader's SYNC for observer `obs`'s forwarded sync.
    pub(super) fn om_sync_answered(&mut self, obs: ObsId) {
        if let Some(m) = self.om.master.as_ref() {
            let outs = m.sync_answer(obs);
            self.om_run(outs);
        }
    }

    fn om_run(&mut self, outs: Vec<OmOut>) {
        for o in outs {
            match o {
                OmOut::Send { obs, packet } => {
                    if let Some(c) = self.om.conns.get(&obs) {
                        crate::metrics::hooks::quorum_packet_sent(packet.ty);
                        let _ = c.tx.send(Outbound::Packet(packet));
                    }
                }
                OmOut::SendSnapshot { obs, zxid } => {
                    if let Some(c) = self.om.conns.get(&obs) {
                        let (tx, rx) = oneshot::channel();
                        let _ = c.tx.send(Outbound::Snap { zxid, body: rx });
                        crate::metrics::metrics().snap_count.inc();
                        tracing::info!(obs, zxid = %zxid, "sending a snapshot to an observer");
                        self.send_applier(ApplyMsg::Snapshot { zxid, tx });
                    }
                }
                OmOut::Close { obs } => {
                    self.om.conns.remove(&obs);
                }
                OmOut::Forward(p) => self.step(Input::Forward(p)),
                OmOut::ForwardSync { obs, packet } => {
                    self.learner_syncs.push_back(LearnerSync::Observer(obs));
                    self.step(Input::Forward(packet));
                }
                OmOut::Touches(b) => self.step(Input::SessionTouches(b)),
            }
        }
    }

    /// Observer side: where to connect for leader `to`. The rotation is the voters in
    /// random order (as ZooKeeper's `QuorumPeer.findLearnerMaster`) followed by the
    /// leader: a follower's observer master port is tried first, the leader's quorum port
    /// (`None`) when the rotation reaches the leader's slot — the leader runs no observer
    /// master, so an rzk observer falls back to it instead of failing there. Each call
    /// moves one slot on. Returns the learner master's sid and address.
    pub(super) fn om_learner_master(
        &mut self,
        to: ServerId,
    ) -> Option<(ServerId, crate::node::peers::DialTarget)> {
        let port = self.om.port?;
        if self.role != Role::Observing {
            return None;
        }
        if self.om.rotation.is_empty() {
            use rand::seq::SliceRandom;
            let mut voters: Vec<ServerId> = self
                .peers
                .members
                .values()
                .filter(|p| !p.observer)
                .map(|p| p.sid)
                .collect();
            voters.shuffle(&mut rand::thread_rng());
            self.om.rotation = voters;
        }
        let n = self.om.rotation.len();
        // Slots 0..n are the voters (the leader's own slot skipped), slot n the leader.
        for _ in 0..=n {
            let slot = self.om.next % (n + 1);
            self.om.next = (slot + 1) % (n + 1);
            if slot == n {
                return None;
            }
            let sid = self.om.rotation[slot];
            if sid == to {
                continue;
            }
            let peer = self.peers.members.get(&sid)?;
            return Some((sid, peer.target(peer.quorum.ip(), port)));
        }
        None
    }
}
