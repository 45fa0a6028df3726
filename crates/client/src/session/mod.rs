//! The session: one background task per client that owns the socket.
//!
//! The task (`task.rs`) connects, handshakes, logs in with SASL (`sasl_login.rs`), re-authenticates and re-registers watches
//! after reconnecting, pipelines requests (xid allocation, FIFO of pending replies), pings,
//! and publishes the session state. Handles talk to it only through a command channel,
//! queued into when a call's future is first polled: calls reach the socket in that
//! order, a reconnect included (ZooKeeper's FIFO client order). The channel is
//! unbounded because a bounded one let a call that waited for room be overtaken by a
//! later one that found it (`tests/session_faults.rs`); a request waiting there costs
//! what it would cost in its caller's future, and the task stops taking commands while
//! the socket's backlog or the unanswered requests are at their bounds. Nothing outside
//! this module touches the socket.

mod frame;
mod sasl_login;
mod task;

use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rzk_proto::OpCode;
use tokio::sync::{mpsc, oneshot, watch};

use crate::connect_string::ConnectString;
use crate::error::Result;
use crate::types::SessionState;
use crate::watch::WatchReg;

/// A reply body (after the reply header).
#[derive(Debug)]
pub(crate) struct Reply {
    pub body: Bytes,
}

pub(crate) struct Request {
    pub op: OpCode,
    pub body: Vec<u8>,
    pub watch: Option<WatchReg>,
    pub reply: oneshot::Sender<Result<Reply>>,
}

pub(crate) enum Command {
    Request(Request),
    /// A removeWatches request (its `watch` is a [`WatchReg::Remove`]) sent only if no
    /// live receiver and no pending request of this session uses a watch of that kind on
    /// that path; otherwise answered at once with an empty reply, nothing sent.
    RemoveUnusedWatch(Request),
    AddAuth {
        scheme: String,
        auth: Bytes,
        reply: oneshot::Sender<Result<()>>,
    },
    Close {
        reply: oneshot::Sender<Result<()>>,
    },
}

/// Counters a benchmark or test can read without talking to the task.
#[derive(Debug, Default)]
pub struct Counters {
    /// User requests written to a socket (pings, auth and setWatches excluded).
    pub requests_sent: AtomicU64,
    /// Watch notifications received from servers.
    pub notifications: AtomicU64,
    /// Notifications delivered to receivers (one notification may reach several).
    pub events_delivered: AtomicU64,
    /// Successful handshakes (1 + number of reconnects).
    pub connects: AtomicU64,
}

/// Session facts shared between the task and handles.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub session_id: AtomicI64,
    pub negotiated_timeout_ms: AtomicI32,
    pub last_zxid: AtomicI64,
    pub password: Mutex<Vec<u8>>,
    pub counters: Counters,
    pub connected_host: Mutex<String>,
    /// A time at or before which a server of the ensemble last heard from this session:
    /// the send time of the latest request (ping, handshake) whose answer has arrived.
    /// The leader may expire the session from two thirds of a timeout after it
    /// ([`crate::Client::heard_at`]). `None` before the first connection.
    pub heard_at: Mutex<Option<tokio::time::Instant>>,
    /// Where every notification that reached one of this client's watches is copied,
    /// once, in the order the server sent them ([`crate::Client::notifications`]).
    pub notification_tap: Mutex<Option<tokio::sync::mpsc::UnboundedSender<crate::WatchedEvent>>>,
    /// Why the session ended with `AuthFailed` ([`crate::Client::auth_failure`]).
    pub auth_failure: Mutex<Option<String>>,
}

impl Shared {
    pub fn session_id(&self) -> i64 {
        self.session_id.load(Ordering::Relaxed)
    }

    /// Records that a server heard from the session at or after `at` (keeps the latest).
    pub fn heard(&self, at: tokio::time::Instant) {
        if let Ok(mut h) = self.heard_at.lock() {
            if h.is_none_or(|old| old < at) {
                *h = Some(at);
            }
        }
    }
}

/// Options for starting a session.
#[derive(Debug, Clone)]
pub(crate) struct SessionConfig {
    pub connect: ConnectString,
    pub session_timeout: Duration,
    pub can_be_read_only: bool,
    /// Resume an existing session instead of creating one.
    pub resume: Option<(i64, Vec<u8>)>,
    /// Connect over TLS.
    pub tls: Option<crate::tls::TlsOptions>,
    /// Log in with SASL DIGEST-MD5 on every connection, before any other request.
    pub sasl: Option<crate::sasl::SaslOptions>,
}

/// Handles to a running session task.
pub(crate) struct Started {
    pub tx: mpsc::UnboundedSender<Command>,
    pub state: watch::Receiver<SessionState>,
    pub shared: Arc<Shared>,
}

/// Spawns the session task on the current tokio runtime.
pub(crate) fn start(cfg: SessionConfig) -> Started {
    let (tx, rx) = mpsc::unbounded_channel();
    let (state_tx, state_rx) = watch::channel(SessionState::Disconnected);
    let shared = Arc::new(Shared::default());
    let task = task::SessionTask::new(cfg, rx, state_tx, shared.clone());
    tokio::spawn(task.run());
    Started {
        tx,
        state: state_rx,
        shared,
    }
}
