//! The ensemble as configured: each member's election and quorum addresses, this
//! server's id, and the `ZabConfig` the core is started with.
//!
//! Owns only the translation of `server.N` lines; resolves host names at start-up. A
//! member other than this server whose host does not resolve yet is kept (as ZooKeeper
//! keeps an unresolved `QuorumServer`): its dialers resolve it again before each attempt
//! ([`Peer::resolved`]). A member named by a host name is resolved again before each
//! dial too, so one that comes back on a new address is reached there (ZooKeeper's
//! `recreateSocketAddresses` before every election dial and learner connect). Never
//! opens sockets.

use crate::config::{Config, PeerRole, QuorumServer};
use crate::node::QuorumError;
use crate::zab::ZabConfig;
use rzk_proto::ServerId;
use std::collections::{BTreeMap, HashMap};
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
    /// Whether `election` and `quorum` hold the host's addresses. When the host did not
    /// resolve they hold the unspecified address with the line's ports and must not be
    /// dialled: [`Peer::election_target`] and [`Peer::quorum_target`] resolve again.
    pub resolved: bool,
}

/// Where to dial a member: its address, or, when its host did not resolve when the
/// membership was read, `host:port` to resolve at the attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialTarget {
    /// An address (the `server.N` line names an IP, or a peer's address as it connected).
    Addr(SocketAddr),
    /// A host name that did not resolve when the membership was read.
    Unresolved(String, u16),
    /// A host name, resolved again at each attempt. When the lookup fails, the address
    /// the name last resolved to in this process is dialled, else
    /// `last`, where it resolved when the membership was read (ZooKeeper keeps a
    /// member's last good address when a lookup fails).
    Named {
        host: String,
        port: u16,
        last: SocketAddr,
    },
}

impl DialTarget {
    /// The address to dial now.
    ///
    /// # Errors
    /// The resolver's error, or `NotFound` when the host has no address.
    pub async fn resolve(&self) -> std::io::Result<SocketAddr> {
        match self {
            DialTarget::Addr(a) => Ok(*a),
            DialTarget::Unresolved(host, port) => match lookup(host, *port).await {
                Ok(a) => Ok(a),
                Err(e) => known_ip(host).map(|ip| SocketAddr::new(ip, *port)).ok_or(e),
            },
            DialTarget::Named { host, port, last } => match lookup(host, *port).await {
                Ok(a) => Ok(a),
                Err(e) => {
                    let a = SocketAddr::new(known_ip(host).unwrap_or(last.ip()), *port);
                    tracing::debug!(%host, error = %e, "lookup failed; dialling {a}, where it last resolved");
                    Ok(a)
                }
            },
        }
    }
}

/// Resolves `host` now (its first address) and records where it resolved.
async fn lookup(host: &str, port: u16) -> std::io::Result<SocketAddr> {
    let a = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{host}:{port} resolves to nothing"),
            )
        })?;
    last_resolved().insert(host.to_owned(), a.ip());
    Ok(a)
}

/// Where `host` last resolved in this process, if it ever did.
fn known_ip(host: &str) -> Option<std::net::IpAddr> {
    last_resolved().get(host).copied()
}

/// Where this member listens for `addr` (one of its own peer addresses): `addr`, or with
/// `quorumListenOnAllIPs` the wildcard address of its family with the same port
/// (ZooKeeper binds `new InetSocketAddress(port)` then).
pub fn listen_addr(addr: SocketAddr, all_ips: bool) -> SocketAddr {
    if !all_ips {
        return addr;
    }
    let any = match addr {
        SocketAddr::V4(_) => std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(any, addr.port())
}

/// Where each member's host name last resolved in this process (for a dial whose lookup
/// fails), locked.
fn last_resolved() -> std::sync::MutexGuard<'static, HashMap<String, std::net::IpAddr>> {
    static LAST: std::sync::OnceLock<std::sync::Mutex<HashMap<String, std::net::IpAddr>>> =
        std::sync::OnceLock::new();
    LAST.get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl DialTarget {
    /// The address, or for an unresolved host the unspecified address with its port
    /// (for the table of unreachable peers; never dialled).
    pub fn placeholder(&self) -> SocketAddr {
        match self {
            DialTarget::Addr(a) => *a,
            DialTarget::Unresolved(_, port) => SocketAddr::from(([0, 0, 0, 0], *port)),
            DialTarget::Named { host, port, last } => {
                SocketAddr::new(known_ip(host).unwrap_or(last.ip()), *port)
            }
        }
    }
}

impl std::fmt::Display for DialTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialTarget::Addr(a) => write!(f, "{a}"),
            DialTarget::Unresolved(h, p) => write!(f, "{h}:{p} (unresolved)"),
            DialTarget::Named { host, last, .. } => write!(f, "{host}/{last}"),
        }
    }
}

impl Peer {
    /// The addresses of one `server.N` line, host names resolved now. A host that does
    /// not resolve gives a peer with [`Peer::resolved`] false (logged at WARN), as
    /// ZooKeeper starts with a member whose name is not in DNS yet.
    pub fn from_server(sid: ServerId, s: &QuorumServer) -> Peer {
        let both = resolve(&s.host, s.election_port)
            .and_then(|e| resolve(&s.host, s.quorum_port).map(|q| (e, q)));
        let (election, quorum, resolved) = match both {
            Ok((e, q)) => (e, q, true),
            Err(e) => {
                tracing::warn!(%sid, "{e}; it is resolved again at each connection attempt");
                let any = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
                (
                    SocketAddr::new(any, s.election_port),
                    SocketAddr::new(any, s.quorum_port),
                    false,
                )
            }
        };
        Peer {
            sid,
            election,
            quorum,
            observer: s.role == PeerRole::Observer,
            election_text: format!("{}:{}", s.host, s.election_port),
            resolved,
        }
    }

    /// The host as its `server.N` line names it.
    pub fn host(&self) -> String {
        crate::net::peer::election_net::host_of(&self.election_text)
    }

    /// Where to dial the election port.
    pub fn election_target(&self) -> DialTarget {
        self.target(self.election.ip(), self.election.port())
    }

    /// Where to dial the quorum port.
    pub fn quorum_target(&self) -> DialTarget {
        self.target(self.quorum.ip(), self.quorum.port())
    }

    /// Where to dial `port` of this member (whose host resolved to `ip`, if it did): the
    /// address when the line names an IP, else the host name to resolve at the attempt.
    pub fn target(&self, ip: std::net::IpAddr, port: u16) -> DialTarget {
        let host = self.host();
        if !self.resolved {
            DialTarget::Unresolved(host, port)
        } else if host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok()
        {
            DialTarget::Addr(SocketAddr::new(ip, port))
        } else {
            DialTarget::Named {
                host,
                port,
                last: SocketAddr::new(ip, port),
            }
        }
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
            let p = Peer::from_server(sid, s);
            if sid == me && !p.resolved {
                // This server binds its own ports: they must resolve now.
                resolve(&s.host, s.election_port)?;
                resolve(&s.host, s.quorum_port)?;
            }
            members.insert(sid, p);
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
                resolved: true,
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
        z.groups = cfg.groups.clone();
        // ZooKeeper's QuorumVerifier.toString(): what /zookeeper/config holds.
        z.config_text =
            crate::reconfig::membership_text(&cfg.servers, cfg.groups.as_ref(), cfg.config_version);
        z.config_version = cfg.config_version;
        z
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn line(host: &str) -> QuorumServer {
        QuorumServer {
            id: ServerId(2),
            host: host.to_owned(),
            quorum_port: 2888,
            election_port: 3888,
            role: PeerRole::Participant,
            client_addr: None,
        }
    }

    #[test]
    fn quorum_listen_on_all_ips_binds_the_wildcard() {
        let v4: SocketAddr = "10.255.255.1:2888".parse().unwrap();
        assert_eq!(listen_addr(v4, false), v4);
        assert_eq!(listen_addr(v4, true), "0.0.0.0:2888".parse().unwrap());
        let v6: SocketAddr = "[fd00::1]:3888".parse().unwrap();
        assert_eq!(listen_addr(v6, true), "[::]:3888".parse().unwrap());
    }

    /// A member named by a host name is resolved again at each dial, so one that comes
    /// back on another address is reached there; an IP is dialled as it is.
    #[tokio::test]
    async fn a_host_name_is_resolved_again_at_each_dial() {
        let ip = Peer::from_server(ServerId(2), &line("127.0.0.1"));
        assert_eq!(
            ip.election_target(),
            DialTarget::Addr("127.0.0.1:3888".parse().unwrap())
        );
        let named = Peer::from_server(ServerId(2), &line("localhost"));
        let DialTarget::Named { host, port, last } = named.quorum_target() else {
            panic!("{:?}", named.quorum_target());
        };
        assert_eq!((host.as_str(), port), ("localhost", 2888));
        assert!(last.ip().is_loopback());
        // Where the name pointed before (another address) is not where it is dialled now.
        let moved = DialTarget::Named {
            host: "localhost".into(),
            port: 2888,
            last: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 99)), 2888),
        };
        let now = moved.resolve().await.unwrap();
        assert!(
            now.ip().is_loopback() && now.ip() != Ipv4Addr::new(127, 0, 0, 99),
            "{now}"
        );
        assert_eq!(moved.placeholder(), now, "reported where it last resolved");
        // A name that never resolved in this process is dialled where it resolved when
        // the membership was read.
        let gone = DialTarget::Named {
            host: "no-such-host.invalid".into(),
            port: 2888,
            last: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 99)), 2888),
        };
        assert_eq!(
            gone.resolve().await.unwrap(),
            "127.0.0.99:2888".parse().unwrap()
        );
        // One that resolved since (to .98) and then stops resolving is dialled at .98,
        // not at its start-up address (found by a review).
        last_resolved().insert(
            "no-such-host.invalid".into(),
            Ipv4Addr::new(127, 0, 0, 98).into(),
        );
        assert_eq!(
            gone.resolve().await.unwrap(),
            "127.0.0.98:2888".parse().unwrap()
        );
        assert_eq!(gone.placeholder(), "127.0.0.98:2888".parse().unwrap());
    }
}
