//! The node: the one runtime of a server, for one voter or many. It drives the sans-IO
//! consensus core (`zab/`) with real threads, files and clocks, and connects it to the
//! client connections (`net/`). A server without peers is an ensemble of one voter: the
//! same runtime, without election or quorum ports.
//!
//! The write path, in the order a write travels (one file each):
//! * `server` — [`Server::start`]: `storage::open`, this runtime, the client listener;
//! * `driver` — the thread that owns the `Zab` core: client jobs -> prep (leader) or
//!   REQUEST to the leader (learner) -> `Propose`; routes the core's outputs;
//! * `disk` — the disk queue: the core's persistence outputs in order (txn log with group
//!   commit and fsync, epoch files, TRUNC, SNAP install), background snapshots;
//! * `apply` — the applier thread, the only writer of the tree: committed txns into the
//!   tree, watches, replies to the originating connection;
//! * `forward` — client requests as REQUEST packets and back;
//! * `peers` — the ensemble's addresses from the `server.N` lines (or a solo voter);
//! * `quorum_port` — the quorum port, listened on only while this server leads;
//! * `timers` — the container/TTL reaper; `snapshots` — the background snapshot thread.
//!
//! Sockets to peers are in `net/peer/`. Must never: make protocol decisions (they belong
//! to `zab/`), block the async runtime on disk IO, or hold a std lock across an `.await`.

pub mod apply;
pub mod client_port;
pub mod clients;
pub mod disk;
pub mod driver;
pub mod forward;
pub mod jobs;
pub mod lifecycle;
pub mod looking;
pub mod peers;
pub mod quorum_port;
pub mod sched;
pub mod server;
pub mod shared;
pub mod snapshots;
pub mod stats;
pub mod status;
pub mod timers;

pub use server::{Server, ServerError};

use crate::zab::{EpochKind, Role};
use rzk_proto::quorum::QuorumPacket;
use rzk_proto::{ServerId, SessionId, Zxid};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// A learner's question to the leader: is this reconnecting session still alive?
#[derive(Debug)]
pub struct Revalidation {
    pub session: SessionId,
    pub timeout_ms: i32,
    pub reply: oneshot::Sender<bool>,
}

/// The answer to "is this reconnecting session alive?" on an ensemble member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCheck {
    /// Not a learner: the local session table decides.
    Local,
    /// The leader says the session is alive.
    Valid,
    /// The leader says the session is gone (expired or closed).
    Invalid,
    /// No answer (the leader was lost, or it took too long): the client must try again
    /// elsewhere, its session is not known to be gone.
    NoAnswer,
}

/// Longest a reconnecting client waits for the leader's REVALIDATE answer.
pub const REVALIDATE_TIMEOUT: Duration = Duration::from_secs(10);

/// Identifies one quorum connection; a newer link to the same peer replaces an older one.
pub type LinkId = u64;

/// Everything the driver thread reacts to (besides client jobs and its timer).
#[derive(Debug)]
pub enum Event {
    /// An election notification from `from` waits in `slot` (the newest one the
    /// connection read; the driver takes it, and may find it already taken by an earlier
    /// event for the same slot).
    Notification {
        from: ServerId,
        slot: Arc<crate::net::peer::election_net::NotificationSlot>,
    },
    /// A quorum packet on link `link` (with the database that followed a SNAP).
    Packet {
        from: ServerId,
        link: LinkId,
        packet: QuorumPacket,
        snap: Option<Box<crate::net::peer::wire::ReceivedSnapshot>>,
    },
    /// The leader accepted a learner connection and read its LearnerInfo.
    LearnerLink {
        sid: ServerId,
        link: LinkId,
        tx: crate::net::peer::learner_net::LinkTx,
        reader: tokio::task::AbortHandle,
        /// The learner's address (the connection's remote end).
        from: std::net::SocketAddr,
    },
    /// Link `link` with `peer` broke (or could not be opened).
    LinkClosed { peer: ServerId, link: LinkId },
    /// The disk queue made every txn up to this zxid durable.
    Persisted(Zxid),
    /// The disk queue made an epoch file durable.
    EpochPersisted(EpochKind, u32),
    /// The disk queue failed: the server must stop (as ZooKeeper does).
    DiskFailed(String),
    /// The applier reached this zxid.
    Applied(Zxid),
    /// From this follower's observer master port (`observerMasterPort`).
    ObserverMaster(crate::net::peer::observer_master_net::OmEvent),
}

/// What `srvr`/`stat`/`mntr` report about the ensemble; written by the driver only.
#[derive(Debug)]
pub struct QuorumStatus {
    distributed: AtomicBool,
    role: AtomicU8,
    serving: AtomicBool,
    /// Read-only mode (`crate::readonly`): serving `canBeReadOnly` clients while LOOKING.
    read_only: AtomicBool,
    /// The leader's [`ServerId`] as its bare number (an atomic), -1 when none.
    leader: AtomicI64,
    followers: AtomicUsize,
    synced_followers: AtomicUsize,
    synced_non_voting: AtomicUsize,
    observers: AtomicUsize,
    revalidate: Mutex<Option<mpsc::UnboundedSender<Revalidation>>>,
}

impl Default for QuorumStatus {
    /// Not serving until the runtime says so (a single voter: right after it elected
    /// itself and applied its log).
    fn default() -> Self {
        QuorumStatus {
            distributed: AtomicBool::new(false),
            role: AtomicU8::new(Role::Looking.code()),
            serving: AtomicBool::new(false),
            read_only: AtomicBool::new(false),
            leader: AtomicI64::new(-1),
            followers: AtomicUsize::new(0),
            synced_followers: AtomicUsize::new(0),
            synced_non_voting: AtomicUsize::new(0),
            observers: AtomicUsize::new(0),
            revalidate: Mutex::new(None),
        }
    }
}

impl QuorumStatus {
    /// Marks the server as a member of a configured ensemble (for `Mode:`; a server
    /// without one reports `standalone`, although it runs as an ensemble of one).
    pub fn set_distributed(&self) {
        self.distributed.store(true, Ordering::SeqCst);
    }

    pub fn is_distributed(&self) -> bool {
        self.distributed.load(Ordering::Relaxed)
    }

    /// May clients be served now?
    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::Acquire)
    }

    pub fn set_serving(&self, on: bool) {
        self.serving.store(on, Ordering::Release);
        crate::metrics::hooks::serving_changed(on, self.role());
    }

    /// True while this member serves read-only clients (`crate::readonly`); it is then
    /// not [`serving`](Self::is_serving) read-write clients.
    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Acquire)
    }

    /// Enters or leaves read-only mode (`crate::readonly` only).
    pub fn set_read_only(&self, on: bool) {
        self.read_only.store(on, Ordering::Release);
    }

    pub fn set_role(&self, role: Role, leader: Option<ServerId>) {
        self.role.store(role.code(), Ordering::Relaxed);
        self.leader
            .store(leader.map_or(-1, |l| l.0), Ordering::Relaxed);
        crate::metrics::hooks::role_changed(role, self.is_distributed());
    }

    pub fn role(&self) -> Role {
        Role::from_code(self.role.load(Ordering::Relaxed))
    }

    /// Whether this server is a follower or an observer: the leader, not this server's
    /// session table, judges whether a global session is alive.
    pub fn is_learner(&self) -> bool {
        matches!(self.role(), Role::Following | Role::Observing)
    }

    /// The leader's sid, if known.
    pub fn leader(&self) -> Option<ServerId> {
        let l = self.leader.load(Ordering::Relaxed);
        (l >= 0).then_some(ServerId(l))
    }

    /// ZooKeeper's `Mode:` / `zk_server_state` word.
    pub fn mode_name(&self) -> &'static str {
        if !self.is_distributed() {
            return "standalone";
        }
        if self.is_read_only() {
            return "read-only";
        }
        match self.role() {
            Role::Looking => "looking",
            Role::Following => "follower",
            Role::Leading => "leader",
            Role::Observing => "observer",
        }
    }

    /// Installs the driver's REVALIDATE queue.
    pub fn set_revalidator(&self, tx: mpsc::UnboundedSender<Revalidation>) {
        *self
            .revalidate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(tx);
    }

    /// On a learner: asks the leader whether `session` is still alive. A server that is
    /// not a learner answers `Local` (its own session table is authoritative). No answer
    /// (leader lost, or none in [`REVALIDATE_TIMEOUT`]) is `NoAnswer`, never "invalid": the
    /// session may well be alive, so the client must try another server.
    pub async fn revalidate(&self, session: SessionId, timeout_ms: i32) -> SessionCheck {
        if !self.is_learner() {
            return SessionCheck::Local;
        }
        let Some(tx) = self
            .revalidate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        else {
            return SessionCheck::Local;
        };
        let (reply, rx) = oneshot::channel();
        if tx
            .send(Revalidation {
                session,
                timeout_ms,
                reply,
            })
            .is_err()
        {
            return SessionCheck::NoAnswer;
        }
        match tokio::time::timeout(REVALIDATE_TIMEOUT, rx).await {
            Ok(Ok(true)) => SessionCheck::Valid,
            Ok(Ok(false)) => SessionCheck::Invalid,
            _ => SessionCheck::NoAnswer,
        }
    }

    /// Leader: the learners connected to it by how they joined (`counts` from
    /// `Zab::learner_counts`).
    pub fn set_learners(&self, counts: crate::zab::LearnerCounts) {
        self.followers.store(counts.followers, Ordering::Relaxed);
        self.synced_followers
            .store(counts.synced_followers, Ordering::Relaxed);
        self.synced_non_voting
            .store(counts.synced_non_voting, Ordering::Relaxed);
        self.observers.store(counts.observers, Ordering::Relaxed);
    }

    /// (followers, synced followers, observers) connected to this leader.
    pub fn learners(&self) -> (usize, usize, usize) {
        (
            self.followers.load(Ordering::Relaxed),
            self.synced_followers.load(Ordering::Relaxed),
            self.observers.load(Ordering::Relaxed),
        )
    }

    /// Synced followers outside the voters (ZooKeeper's `synced_non_voting_followers`:
    /// servers outside the membership, which follow without a vote).
    pub fn synced_non_voting(&self) -> usize {
        self.synced_non_voting.load(Ordering::Relaxed)
    }
}

/// Why the replicated runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    #[error("invalid ensemble configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

/// `N` distinct free addresses on 127.0.0.1, for unit tests: their listeners are held
/// until all are chosen (taken one at a time, the system may hand out a port again once
/// its listener is dropped: a CI run of `quorum_port`'s tests got the same port twice).
#[cfg(test)]
pub(crate) fn free_addrs<const N: usize>() -> [std::net::SocketAddr; N] {
    let held: [std::net::TcpListener; N] =
        std::array::from_fn(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"));
    held.map(|l| l.local_addr().expect("a bound address"))
}
