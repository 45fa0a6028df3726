//! The registry of live client connections: each one's outbound channel, peer address,
//! bound session, auth and counters. Connections register in the accept loop
//! (`net/mod.rs`) and leave when their task ends (`net/conn.rs`); the applier, timers
//! and other connections reach a connection only through [`Clients::send_to`].
//!
//! The registry lock is last in the lock order (tree -> watches -> sessions ->
//! connections) and is never held across an `.await` or while sending.

use crate::auth::AuthInfo;
use crate::watch::ConnId;
use rzk_proto::{ErrorCode, SessionId};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::mpsc;

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
    /// Set while the connection answers a four-letter word: ZooKeeper stops reading such
    /// a connection (interest ops 0 in `stat`/`cons`).
    pub four_letter_word: std::sync::atomic::AtomicBool,
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
    pub session: Option<SessionId>,
    pub session_timeout_ms: i32,
    pub auth: AuthInfo,
    pub stats: Arc<ConnStats>,
    pub established_ms: i64,
    /// Accepted on the TLS-only port (`secureClientPort`): ZooKeeper's secure connection
    /// factory, listed apart by the AdminServer (`secure_connections`).
    pub secure: bool,
    /// Ends (its sender is dropped) when the connection's task has ended: from then on
    /// it hands no more jobs to the pipeline. A re-attaching session waits for this.
    pub alive: tokio::sync::watch::Receiver<()>,
}

/// All live connections.
#[derive(Debug, Default)]
pub struct ConnRegistry {
    pub conns: HashMap<ConnId, ConnEntry>,
    pub by_session: HashMap<SessionId, ConnId>,
    pub per_ip: HashMap<IpAddr, u32>,
}

/// The live connections and the counter that names new ones.
#[derive(Debug)]
pub struct Clients {
    registry: Mutex<ConnRegistry>,
    next_conn: AtomicU64,
}

impl Default for Clients {
    fn default() -> Clients {
        Clients {
            registry: Mutex::new(ConnRegistry::default()),
            next_conn: AtomicU64::new(1),
        }
    }
}

impl Clients {
    /// The registry, locked (see the lock order above).
    pub fn registry(&self) -> MutexGuard<'_, ConnRegistry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new connection id (never reused while the server runs).
    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a message to a connection, if it is still registered; `false` if it is gone.
    pub fn send_to(&self, conn: ConnId, msg: ConnMsg) -> bool {
        let tx = self.registry().conns.get(&conn).map(|c| c.tx.clone());
        match tx {
            Some(tx) => tx.send(msg).is_ok(),
            None => false,
        }
    }

    /// The connection currently bound to a session.
    pub fn conn_of_session(&self, session: SessionId) -> Option<ConnId> {
        self.registry().by_session.get(&session).copied()
    }

    /// Asks every client connection to close (`why` is logged by each); returns how
    /// many were asked. The registry lock is not held while sending.
    pub fn close_all(&self, why: &'static str) -> usize {
        let txs: Vec<_> = self
            .registry()
            .conns
            .values()
            .map(|c| c.tx.clone())
            .collect();
        for tx in &txs {
            let _ = tx.send(ConnMsg::Close(why));
        }
        txs.len()
    }
}
