//! State shared by the accept loop, connections, the write pipeline, timers and the
//! four-letter words: the tree, watches, sessions, the connection registry and counters.
//!
//! Owns the registry of live connections (their outbound channels, peer addresses, bound
//! sessions, auth) and server-wide statistics. Lock order is tree -> watches -> sessions
//! -> conns; no lock here may be held across an `.await`.

use crate::auth::AuthInfo;
use crate::config::Config;
use crate::prep::WriteRequest;
use crate::session::SessionTracker;
use crate::tree::DataTree;
use crate::watch::{ConnId, WatchManager};
use rzk_proto::ErrorCode;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};

/// Capacity of the queue from connections into the write pipeline.
pub const WRITE_QUEUE_CAPACITY: usize = 4096;

/// A message to one connection's task, from the pipeline, timers or other connections.
#[derive(Debug)]
pub enum ConnMsg {
    /// A complete frame for a watch notification; sent as soon as possible.
    Notify(Vec<u8>),
    /// The reply frame for this connection's oldest outstanding pipeline job.
    /// `close` asks the connection to close after sending it.
    Done { frame: Vec<u8>, close: bool },
    /// The session's createSession txn was applied (or failed).
    SessionCreated(Result<(), ErrorCode>),
    /// Close now (session expired/closed elsewhere, moved to another connection,
    /// server shutting down).
    Close(&'static str),
}

/// Who submitted a pipeline job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Conn(ConnId),
    /// Session expiry or the container reaper: no reply.
    Internal,
}

/// What a pipeline job asks for.
#[derive(Debug, Clone)]
pub enum JobKind {
    Write(WriteRequest),
    /// A request refused before prep that ZooKeeper still logs as an error txn.
    ErrorTxn(ErrorCode),
    /// `sync`: replies once every earlier job has been applied; no txn.
    Sync(String),
    /// Stops the pipeline after every earlier job (server shutdown).
    Stop,
}

/// One unit of work for the write pipeline.
#[derive(Debug, Clone)]
pub struct Job {
    pub origin: Origin,
    pub session: i64,
    pub xid: i32,
    pub kind: JobKind,
    pub auth: AuthInfo,
    /// When the request was received (for latency stats).
    pub received: Instant,
}

/// Per-connection counters (for `cons`/`stat`).
#[derive(Debug, Default)]
pub struct ConnStats {
    pub received: AtomicU64,
    pub sent: AtomicU64,
    pub queued: AtomicU64,
    pub last_cxid: AtomicI64,
    pub last_zxid: AtomicI64,
    pub last_op: Mutex<&'static str>,
    pub last_latency_ms: AtomicU64,
    pub min_latency_ms: AtomicU64,
    pub max_latency_ms: AtomicU64,
    pub total_latency_ms: AtomicU64,
    pub count: AtomicU64,
    pub last_response_ms: AtomicI64,
}

impl ConnStats {
    pub fn new() -> ConnStats {
        let s = ConnStats::default();
        s.min_latency_ms.store(u64::MAX, Ordering::Relaxed);
        s.last_cxid.store(-1, Ordering::Relaxed);
        s.last_zxid.store(-1, Ordering::Relaxed);
        if let Ok(mut g) = s.last_op.lock() {
            *g = "NA";
        }
        s
    }

    pub fn reset(&self) {
        self.received.store(0, Ordering::Relaxed);
        self.sent.store(0, Ordering::Relaxed);
        self.min_latency_ms.store(u64::MAX, Ordering::Relaxed);
        self.max_latency_ms.store(0, Ordering::Relaxed);
        self.total_latency_ms.store(0, Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
        self.last_latency_ms.store(0, Ordering::Relaxed);
        self.last_cxid.store(-1, Ordering::Relaxed);
        self.last_zxid.store(-1, Ordering::Relaxed);
        self.last_response_ms.store(0, Ordering::Relaxed);
        if let Ok(mut g) = self.last_op.lock() {
            *g = "NA";
        }
    }

    pub fn record_latency(&self, ms: u64) {
        self.last_latency_ms.store(ms, Ordering::Relaxed);
        self.min_latency_ms.fetch_min(ms, Ordering::Relaxed);
        self.max_latency_ms.fetch_max(ms, Ordering::Relaxed);
        self.total_latency_ms.fetch_add(ms, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// One live client connection.
#[derive(Debug, Clone)]
pub struct ConnEntry {
    pub tx: mpsc::UnboundedSender<ConnMsg>,
    pub addr: SocketAddr,
    pub session: Option<i64>,
    pub session_timeout_ms: i32,
    pub auth: AuthInfo,
    pub stats: Arc<ConnStats>,
    pub established_ms: i64,
}

/// All live connections.
#[derive(Debug, Default)]
pub struct ConnRegistry {
    pub conns: HashMap<ConnId, ConnEntry>,
    pub by_session: HashMap<i64, ConnId>,
    pub per_ip: HashMap<IpAddr, u32>,
}

/// Server-wide counters (`srvr`, `stat`, `mntr`).
#[derive(Debug, Default)]
pub struct ServerStats {
    pub packets_received: AtomicU64,
    pub packets_sent: AtomicU64,
    pub outstanding: AtomicI64,
    pub min_latency_ms: AtomicU64,
    pub max_latency_ms: AtomicU64,
    pub total_latency_ms: AtomicU64,
    pub count: AtomicU64,
    pub auth_failed: AtomicU64,
    pub fsyncs: AtomicU64,
    pub txns_logged: AtomicU64,
    /// Snapshots written while running.
    pub snapshots: AtomicU64,
    /// Longest / latest time the tree read lock was held to clone it for a snapshot.
    pub snapshot_pause_max_us: AtomicU64,
    pub snapshot_pause_last_us: AtomicU64,
}

impl ServerStats {
    pub fn new() -> ServerStats {
        let s = ServerStats::default();
        s.min_latency_ms.store(u64::MAX, Ordering::Relaxed);
        s
    }

    pub fn reset(&self) {
        self.packets_received.store(0, Ordering::Relaxed);
        self.packets_sent.store(0, Ordering::Relaxed);
        self.min_latency_ms.store(u64::MAX, Ordering::Relaxed);
        self.max_latency_ms.store(0, Ordering::Relaxed);
        self.total_latency_ms.store(0, Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
    }

    pub fn record_latency(&self, ms: u64) {
        self.min_latency_ms.fetch_min(ms, Ordering::Relaxed);
        self.max_latency_ms.fetch_max(ms, Ordering::Relaxed);
        self.total_latency_ms.fetch_add(ms, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// (min, avg, max) as ZooKeeper prints them (min 0 when nothing recorded).
    pub fn latency(&self) -> (u64, f64, u64) {
        let n = self.count.load(Ordering::Relaxed);
        let min = self.min_latency_ms.load(Ordering::Relaxed);
        let avg = if n == 0 {
            0.0
        } else {
            self.total_latency_ms.load(Ordering::Relaxed) as f64 / n as f64
        };
        (
            if min == u64::MAX { 0 } else { min },
            avg,
            self.max_latency_ms.load(Ordering::Relaxed),
        )
    }
}

/// Everything the server's tasks share.
pub struct Shared {
    /// The one thread allowed to mutate the tree (set by the applier when it starts).
    applier_thread: std::sync::OnceLock<std::thread::ThreadId>,
    pub config: Config,
    pub tree: RwLock<DataTree>,
    pub watches: Mutex<WatchManager>,
    pub sessions: Mutex<SessionTracker>,
    pub conns: Mutex<ConnRegistry>,
    pub stats: ServerStats,
    pub jobs: mpsc::Sender<Job>,
    next_conn: AtomicU64,
    started: Instant,
    started_wall_ms: i64,
    pub shutting_down: AtomicBool,
    /// Set when the server was dropped without `shutdown` (a crash, in tests): the
    /// runtime stops at once and does no more IO.
    halted: AtomicBool,
    /// Flips to `true` once when the server starts shutting down.
    pub shutdown: watch::Sender<bool>,
    /// Why the server stopped itself (e.g. the transaction log could not be written).
    fatal: Mutex<Option<String>>,
    /// Ensemble role and serving state (standalone: always serving).
    pub quorum: crate::node::QuorumStatus,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("client_addr", &self.config.client_addr())
            .finish_non_exhaustive()
    }
}

/// Poisoned locks mean a panic elsewhere already broke an invariant; we keep serving
/// with the inner value rather than cascading panics (the panic itself was logged).
fn unpoison<T>(r: Result<T, std::sync::PoisonError<T>>) -> T {
    r.unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub fn new(config: Config, tree: DataTree, jobs: mpsc::Sender<Job>) -> Shared {
        let started_wall_ms = wall_ms();
        let sessions =
            SessionTracker::new(config.server_id(), config.tick_time_ms, started_wall_ms);
        Shared {
            applier_thread: std::sync::OnceLock::new(),
            config,
            tree: RwLock::new(tree),
            watches: Mutex::new(WatchManager::new()),
            sessions: Mutex::new(sessions),
            conns: Mutex::new(ConnRegistry::default()),
            stats: ServerStats::new(),
            jobs,
            next_conn: AtomicU64::new(1),
            started: Instant::now(),
            started_wall_ms,
            shutting_down: AtomicBool::new(false),
            halted: AtomicBool::new(false),
            shutdown: watch::channel(false).0,
            fatal: Mutex::new(None),
            quorum: Default::default(),
        }
    }

    pub fn tree(&self) -> RwLockReadGuard<'_, DataTree> {
        unpoison(self.tree.read())
    }
    /// The tree for writing: only the applier thread may ask (checked in debug builds).
    pub fn tree_mut(&self) -> RwLockWriteGuard<'_, DataTree> {
        debug_assert!(
            self.applier_thread
                .get()
                .is_none_or(|t| *t == std::thread::current().id()),
            "only the applier mutates the tree"
        );
        unpoison(self.tree.write())
    }

    /// Records the applier's thread (once): from then on only it may call `tree_mut`.
    pub fn register_applier_thread(&self) {
        let _ = self.applier_thread.set(std::thread::current().id());
    }
    pub fn watches(&self) -> MutexGuard<'_, WatchManager> {
        unpoison(self.watches.lock())
    }
    pub fn sessions(&self) -> MutexGuard<'_, SessionTracker> {
        unpoison(self.sessions.lock())
    }
    pub fn conns(&self) -> MutexGuard<'_, ConnRegistry> {
        unpoison(self.conns.lock())
    }

    /// Milliseconds on the server's monotonic clock (session expiry).
    pub fn now_ms(&self) -> i64 {
        self.started.elapsed().as_millis() as i64
    }

    /// Uptime in ms.
    pub fn uptime_ms(&self) -> i64 {
        self.now_ms()
    }

    /// Converts a monotonic-clock time to wall-clock ms (for dumps).
    pub fn to_wall_ms(&self, mono_ms: i64) -> i64 {
        self.started_wall_ms + mono_ms
    }

    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a message to a connection, if it is still registered.
    pub fn send_to(&self, conn: ConnId, msg: ConnMsg) -> bool {
        let tx = self.conns().conns.get(&conn).map(|c| c.tx.clone());
        match tx {
            Some(tx) => tx.send(msg).is_ok(),
            None => false,
        }
    }

    /// The connection currently bound to a session.
    pub fn conn_of_session(&self, session: i64) -> Option<ConnId> {
        self.conns().by_session.get(&session).copied()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// Records a fatal error (the first one wins) and starts shutting down.
    pub fn fail(&self, why: String) {
        {
            let mut f = unpoison(self.fatal.lock());
            if f.is_none() {
                *f = Some(why);
            }
        }
        self.begin_shutdown();
    }

    /// The fatal error that stopped the server, if any.
    pub fn fatal_error(&self) -> Option<String> {
        unpoison(self.fatal.lock()).clone()
    }

    /// Asks every client connection to close (`why` is logged by each); returns how
    /// many were asked. The registry lock is not held while sending.
    pub fn close_all_connections(&self, why: &'static str) -> usize {
        let txs: Vec<_> = self.conns().conns.values().map(|c| c.tx.clone()).collect();
        for tx in &txs {
            let _ = tx.send(ConnMsg::Close(why));
        }
        txs.len()
    }

    /// Abandons the server as a crash would: the runtime stops without draining.
    pub fn halt(&self) {
        self.halted.store(true, Ordering::SeqCst);
        self.begin_shutdown();
    }

    pub fn is_halted(&self) -> bool {
        self.halted.load(Ordering::Relaxed)
    }

    /// Starts shutting the server down (idempotent).
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.shutdown.send_replace(true);
    }
}

/// Wall-clock milliseconds since the epoch (txn times).
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
