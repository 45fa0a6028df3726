//! What the tasks of one server share, as separate parts: the tree (read-only here:
//! the one [`TreeWriter`] belongs to the applier), watches, the session table, the
//! client connection registry ([`Clients`]), counters ([`ServerStats`]), the write queue
//! into the driver, the lifecycle flags and the ensemble status.
//!
//! Lock order: tree -> watches -> sessions -> local sessions -> connections; no lock here may be held
//! across an `.await`. Four-letter words and the admin endpoint do not take this
//! object: they read a [`super::status::Status`] view.

use super::clients::Clients;
use super::jobs::Job;
use super::lifecycle::{Clock, Lifecycle};
use super::stats::ServerStats;
use super::QuorumStatus;
use crate::config::Config;
use crate::session::SessionTracker;
use crate::tree::store::{TreeStore, TreeWriter};
use crate::tree::DataTree;
use crate::watch::WatchManager;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLockReadGuard};
use tokio::sync::mpsc;

/// Everything the server's tasks share.
pub struct Shared {
    pub config: Config,
    tree: TreeStore,
    watches: Mutex<WatchManager>,
    sessions: Mutex<SessionTracker>,
    /// Local sessions (`localSessionsEnabled`, and every session of read-only mode):
    /// known to this server only, never in a txn. Ids come from `sessions`' generator.
    local_sessions: Mutex<SessionTracker>,
    /// When read-only mode may start (`crate::readonly`).
    read_only: crate::readonly::ReadOnlyState,
    /// Live client connections.
    pub clients: Clients,
    /// The plaintext client port's listener (a reconfig may move it).
    pub client_port: super::client_port::ClientPort,
    pub stats: ServerStats,
    /// Into the driver (`node/driver.rs`): client writes, syncs, internal writes.
    pub jobs: mpsc::Sender<Job>,
    /// Bytes of client requests the pipeline may hold (`node::jobs::pipeline_budget`).
    pub pipeline_bytes: std::sync::Arc<crate::node::jobs::ByteBudget>,
    pub lifecycle: Lifecycle,
    pub clock: Clock,
    /// Ensemble role and serving state (a lone voter: leader, always serving).
    pub quorum: QuorumStatus,
    /// The audit log (`audit.enable`); writes `serverStop` when the server is dropped.
    pub audit: crate::audit::Audit,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.audit.server_stopping();
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("client_addr", &self.config.client_addr())
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Builds the shared state around the recovered tree; returns it with the tree's one
    /// writer, which the caller hands to the applier.
    pub fn new(config: Config, tree: DataTree, jobs: mpsc::Sender<Job>) -> (Shared, TreeWriter) {
        let clock = Clock::default();
        let sessions = SessionTracker::new(
            config.server_id(),
            config.tick_time_ms,
            clock.started_wall_ms(),
        );
        let local_sessions = SessionTracker::new(
            config.server_id(),
            config.tick_time_ms,
            clock.started_wall_ms(),
        );
        let (tree, writer) = TreeStore::new(tree);
        let audit = crate::audit::Audit::from_config(&config);
        audit.server_started();
        let pipeline_budget = crate::node::jobs::pipeline_budget(&config);
        let shared = Shared {
            config,
            tree,
            watches: Mutex::new(WatchManager::new()),
            sessions: Mutex::new(sessions),
            local_sessions: Mutex::new(local_sessions),
            read_only: Default::default(),
            clients: Clients::default(),
            client_port: Default::default(),
            stats: ServerStats::new(),
            jobs,
            pipeline_bytes: std::sync::Arc::new(crate::node::jobs::ByteBudget::new(
                pipeline_budget,
            )),
            lifecycle: Lifecycle::default(),
            clock,
            quorum: Default::default(),
            audit,
        };
        (shared, writer)
    }

    /// The tree for reading (writes go through the applier's [`TreeWriter`]).
    pub fn tree(&self) -> RwLockReadGuard<'_, DataTree> {
        self.tree.read()
    }
    pub fn watches(&self) -> MutexGuard<'_, WatchManager> {
        self.watches.lock().unwrap_or_else(PoisonError::into_inner)
    }
    pub fn sessions(&self) -> MutexGuard<'_, SessionTracker> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
    /// The local session table (taken after `sessions` when both are needed; new ids
    /// come from [`Shared::sessions`]' generator so local and global ids never collide).
    pub fn local_sessions(&self) -> MutexGuard<'_, SessionTracker> {
        self.local_sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
    /// Read-only mode's clock (`crate::readonly`).
    pub fn read_only_state(&self) -> &crate::readonly::ReadOnlyState {
        &self.read_only
    }

    /// Milliseconds on the server's monotonic clock (session expiry).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// `at` in [`Shared::now_ms`]'s milliseconds, without reading the clock again.
    pub fn ms_at(&self, at: std::time::Instant) -> i64 {
        self.clock.ms_at(at)
    }
}
