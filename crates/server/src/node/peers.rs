//! The ensemble as configured: each member's election and quorum addresses, this
//! server's id, and the `ZabConfig` the core is started with.
//!
//! Owns only the translation of `server.N` lines; resolves host names once at start-up.
//! Never opens sockets.

use crate::config::{Config, PeerRole, QuorumServer};
use crate::node::QuorumError;
use crate::zab::ZabConfig;
use rzk_proto::ServerId;
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};

/// One member's addresses.
#[derive(Debug, Clone)]
pub struct Peer {
    pub sid: ServerId,
    pub election: SocketAddr,
    pub quorum: SocketAddr,
    pub observer: bool,
    /// `host:port` of the election address as written in the config (sent in the
    /// election connection header).
    pub election_text: String,
}

impl Peer {
    /// The addresses of one `server.N` line (host names resolved now).
    ///
    /// # Errors
    /// [`QuorumError::Config`] when a host does not resolve.
    pub fn from_server(sid: ServerId, s: &QuorumServer) -> Result<Peer, QuorumError> {
        Ok(Peer {
            sid,
            election: resolve(&s.host, s.election_port)?,
            quorum: resolve(&s.host, s.quorum_port)?,
            observer: s.role == PeerRole::Observer,
            election_text: format!("{}:{}", s.host, s.election_port),
        })
    }
}

/// The whole ensemble.
#[derive(Debug, Clone)]
pub struct Peers {
    pub me: ServerId,
    pub members: BTreeMap<ServerId, Peer>,
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, QuorumError> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    (h, port)
        .to_socket_addrs()
        .map_err(|e| QuorumError::Config(format!("cannot resolve {host}:{port}: {e}")))?
        .next()
        .ok_or_else(|| QuorumError::Config(format!("{host}:{port} resolves to nothing")))
}

impl Peers {
    /// The ensemble of `cfg`. A configuration without an ensemble (no voting peers, or
    /// ZooKeeper's standalone rule: fewer than two voters and `standaloneEnabled=true`)
    /// is an ensemble of one voter that has no election or quorum address: it elects
    /// itself and never opens a peer port.
    pub fn from_config(cfg: &Config) -> Result<Peers, QuorumError> {
        if !cfg.is_distributed() {
            return Ok(Peers::solo(cfg.my_id.unwrap_or(ServerId(1))));
        }
        let me = cfg
            .my_id
            .ok_or_else(|| QuorumError::Config("myid file is missing".into()))?;
        if !cfg.servers.contains_key(&me) {
            return Err(QuorumError::Config(format!(
                "myid {me} has no server.{me} line"
            )));
        }
        let mut members = BTreeMap::new();
        for (&sid, s) in &cfg.servers {
            debug_assert_eq!(sid, s.id, "server.N line filed under another id");
            members.insert(sid, Peer::from_server(sid, s)?);
        }
        Ok(Peers { me, members })
    }

    /// One voter, `me`, with no peer addresses.
    pub fn solo(me: ServerId) -> Peers {
        let none = SocketAddr::from(([0, 0, 0, 0], 0));
        let mut members = BTreeMap::new();
        members.insert(
            me,
            Peer {
                sid: me,
                election: none,
                quorum: none,
                observer: false,
                election_text: String::new(),
            },
        );
        Peers { me, members }
    }

    /// True for an ensemble of one voter and no observers (it needs no peer ports).
    pub fn is_solo(&self) -> bool {
        self.members.len() == 1 && self.members.values().all(|p| !p.observer)
    }

    pub fn mine(&self) -> Option<&Peer> {
        self.members.get(&self.me)
    }

    /// The core's configuration: voters, observers, timers from zoo.cfg, and the quorum
    /// config text ZooKeeper carries in notifications and NEWLEADER.
    pub fn zab_config(&self, cfg: &Config) -> ZabConfig {
        let voters = self
            .members
            .values()
            .filter(|p| !p.observer)
            .map(|p| p.sid)
            .collect();
        let observers = self
            .members
            .values()
            .filter(|p| p.observer)
            .map(|p| p.sid)
            .collect();
        let mut z = ZabConfig::new(self.me, voters, observers);
        z.tick_ms = u64::from(cfg.tick_time_ms.max(1));
        z.init_limit = u64::from(cfg.init_limit.unwrap_or(10).max(1));
        z.sync_limit = u64::from(cfg.sync_limit.unwrap_or(5).max(1));
        // ZooKeeper's QuorumMaj.toString(): what /zookeeper/config holds.
        z.config_text = crate::reconfig::membership_text(&cfg.servers, cfg.config_version);
        z.config_version = cfg.config_version;
        z
    }
}
