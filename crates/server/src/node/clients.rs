//! The registry of live client connections: each one's outbound channel, peer address,
//! bound session, auth and counters. Connections register in the accept loop
//! (`net/mod.rs`) and leave when their task ends (`net/conn.rs`); the applier, timers
//! and other connections reach a connection only through [`Clients::send_to`].
//!
//! The registry lock is last in the lock order (tree -> watches -> sessions ->
//! connections) and is never held across an `.await` or while sending.

use crate::auth::AuthInfo;
use crate::net::lane::ReplyLane;
use crate::watch::ConnId;
use rzk_proto::{ErrorCode, SessionId, Zxid};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, Ordering};
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
    /// Wakes the task: the applier wrote a reply only partly into the socket
    /// (`net::lane`), and the task writes its rest when it reclaims the lane.
    Wake,
}

/// The sending side of a connection's queue, and its reply lane (`net::lane`): every
/// message queued disarms the lane first, so nothing written directly overtakes it.
#[derive(Debug, Clone)]
pub struct ConnTx {
    chan: mpsc::UnboundedSender<ConnMsg>,
    lane: Arc<ReplyLane>,
}

impl ConnTx {
    /// A queue sender and the lane of the same connection.
    pub fn new(chan: mpsc::UnboundedSender<ConnMsg>, lane: Arc<ReplyLane>) -> ConnTx {
        ConnTx { chan, lane }
    }

    /// Queues `msg` for the connection's task (the lane disarmed first). Fails when the
    /// task has ended.
    pub fn send(&self, msg: ConnMsg) -> Result<(), mpsc::error::SendError<ConnMsg>> {
        self.lane.disarm_then(|| self.chan.send(msg))
    }
}

/// Per-connection counters (for `cons`/`stat`).
#[derive(Debug, Default)]
pub struct ConnStats {
    pub received: AtomicU64,
    pub sent: AtomicU64,
    pub queued: AtomicU64,
    pub last_cxid: AtomicI64,
    pub last_zxid: AtomicI64,
    /// The opcode of the last request ([`ConnStats::NO_OP`] before the first);
    /// [`ConnStats::last_op_name`] names it as `cons` does.
    pub last_op: AtomicI32,
    pub last_latency_ms: AtomicU64,
    pub min_latency_ms: AtomicU64,
    pub max_latency_ms: AtomicU64,
    pub total_latency_ms: AtomicU64,
    pub count: AtomicU64,
    pub last_response_ms: AtomicI64,
    /// Set while the connection answers a four-letter word: ZooKeeper stops reading such
    /// a connection (interest ops 0 in `stat`/`cons`).
    pub four_letter_word: std::sync::atomic::AtomicBool,
    /// Bytes of watch notifications queued for this connection and not yet taken by its
    /// task (see [`MAX_QUEUED_NOTIFY_BYTES`]).
    pub notify_bytes: AtomicU64,
    /// Set once the notification queue overflowed; the connection is being closed.
    pub overflowed: std::sync::atomic::AtomicBool,
    /// The zxid of the txn whose notifications were queued last ([`ConnEntry::notify`]).
    pub burst_zxid: AtomicI64,
    /// Whether that txn may queue its notifications: the backlog it found was at most
    /// [`MAX_QUEUED_NOTIFY_BYTES`], or the connection's task took some of it since the
    /// txn before (the client is reading, just behind a burst).
    pub burst_ok: std::sync::atomic::AtomicBool,
    /// Bytes of notifications the connection's task has taken, ever.
    pub taken_bytes: AtomicU64,
    /// [`ConnStats::taken_bytes`] when the last txn's first notification was queued.
    pub taken_at_burst: AtomicU64,
    /// Set once the connection's session re-attached on another connection; it is
    /// being closed (see [`ConnEntry::supersede`]).
    pub superseded: std::sync::atomic::AtomicBool,
    /// Woken when the connection must end at once (its notification queue overflowed, or
    /// its session moved to another connection): its task stops even while it is blocked
    /// writing to a client that does not read, and nothing more is written to it.
    pub stop_now: tokio::sync::Notify,
}

/// Most bytes of watch notifications queued for one connection (not yet written to its
/// socket buffer) that a txn may find when it fires its own. A client that stops
/// reading its socket while its watches keep firing would otherwise make the server
/// buffer notifications without bound; when a txn finds a backlog over this limit the
/// connection is closed (the session lives on and the client re-registers its watches
/// with SetWatches on reconnect). The notifications of one txn are always queued whole:
/// a closeSession of 100,000 ephemerals fires ~9 MB at once on a watcher of their
/// parent, which a client that reads normally then drains (found by a review in session
/// 51: such a watcher was disconnected and lost most of the events), up to
/// [`MAX_QUEUED_NOTIFY_BURST_BYTES`]. ZooKeeper 3.8 queues outgoing packets
/// without a limit (`NIOServerCnxn.outgoingBuffers`); see docs/COMPATIBILITY.md.
pub const MAX_QUEUED_NOTIFY_BYTES: u64 = 8 * 1024 * 1024;

/// Most bytes of watch notifications queued for one connection at all, one txn's burst
/// included: past it the connection is closed even mid-txn, so one txn cannot make the
/// server hold more than this per connection (a break-it review of session 51: 30,000
/// deletions under a 16 KB parent path, each event carrying the path, queued 480 MB for
/// a watcher that did not read). 100,000 events of ordinary paths are ~9 MB.
pub const MAX_QUEUED_NOTIFY_BURST_BYTES: u64 = 64 * 1024 * 1024;

impl ConnStats {
    /// The connection's task took a notification frame of `len` bytes off its queue.
    pub fn notify_taken(&self, len: usize) {
        self.notify_bytes.fetch_sub(len as u64, Ordering::Relaxed);
        self.taken_bytes.fetch_add(len as u64, Ordering::Relaxed);
    }
}

impl ConnStats {
    pub fn new() -> ConnStats {
        let s = ConnStats::default();
        s.min_latency_ms.store(u64::MAX, Ordering::Relaxed);
        // A new connection's last cxid is 0, as a ZooKeeper connection's (a Java field
        // never set before the first request: `cons` shows `lcxid=0x0` for a session
        // that has only pinged); `reset` (srst) makes it -1, which `cons` leaves out.
        s.last_cxid.store(0, Ordering::Relaxed);
        s.last_zxid.store(-1, Ordering::Relaxed);
        s.last_op.store(Self::NO_OP, Ordering::Relaxed);
        s
    }

    /// [`ConnStats::last_op`] before any request.
    pub const NO_OP: i32 = i32::MIN;

    /// The last request's operation as ZooKeeper's `cons` abbreviates it ("NA" before
    /// the first).
    pub fn last_op_name(&self) -> &'static str {
        match self.last_op.load(Ordering::Relaxed) {
            Self::NO_OP => "NA",
            op => crate::admin::op_abbrev(op),
        }
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
        self.last_op.store(Self::NO_OP, Ordering::Relaxed);
    }

    /// A request of this connection received at `received` was answered at `at`
    /// (monotonic; `at_wall_ms` on the wall clock): its latency on this connection
    /// (`cons`), on the server (`server`: `srvr`, `mntr`) and in the metrics, and the
    /// last response time. `write`: it went through the write pipeline. ZooKeeper's
    /// `ServerCnxn.updateStatsForResponse` (the outstanding count is the caller's).
    pub fn answered(
        &self,
        server: &crate::node::stats::ServerStats,
        received: std::time::Instant,
        (at, at_wall_ms): (std::time::Instant, i64),
        write: bool,
    ) {
        let ms = at.saturating_duration_since(received).as_millis() as u64;
        crate::metrics::hooks::request_done(ms, write);
        self.record_latency(ms);
        self.last_response_ms.store(at_wall_ms, Ordering::Relaxed);
        server.record_latency(ms);
    }

    /// A reply frame (length prefix, reply header, body) left: its zxid is the
    /// connection's last (`cons`' lzxid, as ZooKeeper records every response's).
    pub fn reply_sent(&self, frame: &[u8]) {
        if let Some(z) = crate::reply::frame_zxid(frame) {
            self.last_zxid.store(z, Ordering::Relaxed);
        }
    }

    /// A frame (reply or notification) was written to this connection's socket:
    /// counted on the connection, the server (`server`) and in the metrics.
    pub fn frame_sent(&self, server: &crate::node::stats::ServerStats, frame: &[u8]) {
        crate::metrics::hooks::frame_sent(frame);
        self.sent.fetch_add(1, Ordering::Relaxed);
        server.packets_sent.fetch_add(1, Ordering::Relaxed);
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
    pub tx: ConnTx,
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

impl ConnEntry {
    /// Ends this connection at once because its session re-attached on another one
    /// (ZooKeeper closes the old connection then): it is told why, and its task stops
    /// even if it is blocked writing to a socket the client no longer reads, so the new
    /// connection's re-attach does not wait for it. Nothing it had not handed to the
    /// write path yet is sent after this.
    pub fn supersede(&mut self, why: &'static str) {
        self.session = None;
        let _ = self.tx.send(ConnMsg::Close(why)); // disarms its reply lane too
        if !self.stats.superseded.swap(true, Ordering::Relaxed) {
            self.stats.stop_now.notify_one();
        }
    }

    /// Answers requests of this connection (`msgs`, oldest first): the leading reply
    /// frames that do not close the connection are written straight into the socket,
    /// in one write, as far as the connection's reply lane is armed for them
    /// (`net::lane`); the rest is queued for its task. A request answered here is
    /// accounted for here, as the task would when it writes a reply: sent, latency,
    /// no longer outstanding (`server`: the server's counters).
    pub fn answer(
        &self,
        msgs: impl IntoIterator<Item = ConnMsg>,
        server: &crate::node::stats::ServerStats,
    ) {
        let mut msgs = msgs.into_iter().peekable();
        let mut replies: Vec<Vec<u8>> = Vec::new();
        while let Some(ConnMsg::Done { close: false, .. }) = msgs.peek() {
            if let Some(ConnMsg::Done { frame, .. }) = msgs.next() {
                replies.push(frame);
            }
        }
        let mut taken = 0;
        if !replies.is_empty() {
            let mut clock = None;
            taken = self.tx.lane.write_replies(
                &replies,
                || {
                    let _ = self.tx.chan.send(ConnMsg::Wake);
                },
                |frame, received| {
                    let at = *clock.get_or_insert_with(|| {
                        (std::time::Instant::now(), crate::node::lifecycle::wall_ms())
                    });
                    self.stats.frame_sent(server, frame);
                    self.stats.reply_sent(frame);
                    self.stats.answered(server, received, at, true);
                    server.outstanding.fetch_sub(1, Ordering::Relaxed);
                    let _ =
                        self.stats
                            .queued
                            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                                q.checked_sub(1)
                            });
                },
            );
        }
        let queued = replies.into_iter().skip(taken).map(|frame| ConnMsg::Done {
            frame,
            close: false,
        });
        for m in queued.chain(msgs) {
            let _ = self.tx.send(m);
        }
    }

    /// Queues a watch notification frame fired by the txn `zxid` for this connection;
    /// `false` when it was dropped because the connection is closed, or the txn found
    /// more than [`MAX_QUEUED_NOTIFY_BYTES`] queued before its first notification and
    /// the task took none since the txn before (the client does not read), or the
    /// backlog would pass [`MAX_QUEUED_NOTIFY_BURST_BYTES`] (then the connection is told
    /// to close at once). Called by the applier, one txn's
    /// notifications after another's.
    pub fn notify(&self, frame: Vec<u8>, zxid: Zxid) -> bool {
        let len = frame.len() as u64;
        if self.stats.overflowed.load(Ordering::Relaxed) {
            return false;
        }
        let st = &self.stats;
        if st.burst_zxid.swap(zxid.0, Ordering::Relaxed) != zxid.0 {
            let backlog = st.notify_bytes.load(Ordering::Relaxed);
            let taken = st.taken_bytes.load(Ordering::Relaxed);
            let reading = st.taken_at_burst.swap(taken, Ordering::Relaxed) != taken;
            st.burst_ok.store(
                backlog <= MAX_QUEUED_NOTIFY_BYTES || reading,
                Ordering::Relaxed,
            );
        }
        let backlog = st.notify_bytes.load(Ordering::Relaxed);
        if !st.burst_ok.load(Ordering::Relaxed) || backlog + len > MAX_QUEUED_NOTIFY_BURST_BYTES {
            if !self.stats.overflowed.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    addr = %self.addr,
                    session = %format_args!("0x{:x}", self.session.unwrap_or(SessionId::NONE)),
                    "closing connection: over {MAX_QUEUED_NOTIFY_BYTES} bytes of watch notifications queued (the client does not read its socket)"
                );
                crate::metrics::metrics().connection_drop_count.inc();
                // Nothing more is written to it, directly either.
                self.tx.lane.disarm_then(|| ());
                self.stats.stop_now.notify_one();
            }
            return false;
        }
        self.stats.notify_bytes.fetch_add(len, Ordering::Relaxed);
        if self.tx.send(ConnMsg::Notify(frame)).is_err() {
            self.stats.notify_bytes.fetch_sub(len, Ordering::Relaxed);
            return false;
        }
        true
    }
}

/// All live connections.
#[derive(Debug, Default)]
pub struct ConnRegistry {
    /// Looked up per reply and per notification (foldhash: ids are not attacker-chosen).
    pub conns: HashMap<ConnId, ConnEntry, foldhash::fast::RandomState>,
    pub by_session: HashMap<SessionId, ConnId, foldhash::fast::RandomState>,
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
        // The channel is unbounded: sending never waits, so it happens under the lock
        // (no sender clone per message).
        self.registry()
            .conns
            .get(&conn)
            .is_some_and(|c| c.tx.send(msg).is_ok())
    }

    /// The connection currently bound to a session.
    pub fn conn_of_session(&self, session: SessionId) -> Option<ConnId> {
        self.registry().by_session.get(&session).copied()
    }

    /// Asks every client connection to close (`why` is logged by each); returns how
    /// many were asked. The registry lock is not held while sending.
    /// The ids of the connections open now.
    pub fn conn_ids(&self) -> Vec<ConnId> {
        self.registry().conns.keys().copied().collect()
    }

    /// Tells the connections `ids` (those still open) to close; returns how many were
    /// told.
    pub fn close_some(&self, ids: &[ConnId], why: &'static str) -> usize {
        self.send_each(ids.iter().map(|&id| (id, ConnMsg::Close(why))))
    }

    /// Sends each message to its connection, in the order given, under one hold of the
    /// registry; returns how many reached a registered connection (messages to
    /// connections gone are dropped).
    pub fn send_each(&self, msgs: impl IntoIterator<Item = (ConnId, ConnMsg)>) -> usize {
        let reg = self.registry();
        msgs.into_iter()
            .filter_map(|(id, msg)| reg.conns.get(&id).map(|c| c.tx.send(msg).is_ok()))
            .filter(|&sent| sent)
            .count()
    }

    /// Hands each answer to its connection, each connection's in the order given
    /// ([`ConnEntry::answer`]: its replies written directly, in one write, where its
    /// lane allows), under one hold of the registry (writes into sockets never block).
    /// Connections are served one after the other; answers to connections gone are
    /// dropped.
    pub fn answer_each(
        &self,
        mut msgs: Vec<(ConnId, ConnMsg)>,
        server: &crate::node::stats::ServerStats,
    ) {
        // Stable: each connection's answers keep their order.
        msgs.sort_by_key(|(id, _)| *id);
        let reg = self.registry();
        let mut msgs = msgs.into_iter().peekable();
        while let Some(&(id, _)) = msgs.peek() {
            let mine = std::iter::from_fn(|| msgs.next_if(|(c, _)| *c == id)).map(|(_, m)| m);
            match reg.conns.get(&id) {
                Some(c) => c.answer(mine, server),
                None => mine.for_each(drop),
            }
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_cxid_starts_at_zero_and_resets_to_minus_one() {
        let s = ConnStats::new();
        assert_eq!(s.last_cxid.load(Ordering::Relaxed), 0);
        s.last_cxid.store(5, Ordering::Relaxed);
        s.reset();
        assert_eq!(s.last_cxid.load(Ordering::Relaxed), -1);
    }

    fn entry() -> (ConnEntry, mpsc::UnboundedReceiver<ConnMsg>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (_alive_tx, alive) = tokio::sync::watch::channel(());
        let addr: SocketAddr = ([127, 0, 0, 1], 1).into();
        let e = ConnEntry {
            tx: ConnTx::new(tx, Arc::default()),
            addr,
            session: Some(SessionId(7)),
            session_timeout_ms: 30_000,
            auth: AuthInfo::for_ip("127.0.0.1"),
            stats: Arc::new(ConnStats::new()),
            established_ms: 0,
            secure: false,
            alive,
        };
        (e, rx)
    }

    /// One txn's burst is cut at [`MAX_QUEUED_NOTIFY_BURST_BYTES`]: the connection is
    /// closed there.
    #[test]
    fn a_burst_is_bounded_too() {
        let (e, _rx) = entry();
        let frame = vec![0u8; 64 * 1024];
        let fit = (MAX_QUEUED_NOTIFY_BURST_BYTES / frame.len() as u64) as usize;
        for _ in 0..fit {
            assert!(e.notify(frame.clone(), Zxid(1)));
        }
        assert!(!e.notify(frame.clone(), Zxid(1)));
        assert!(e.stats.overflowed.load(Ordering::Relaxed));
    }

    /// A client still draining a burst when the next txn fires on it is not closed, as
    /// long as its task took something since the txn before (a break-it review in
    /// session 51: a create right after a 12 MB burst disconnected a reading watcher).
    #[test]
    fn a_reading_client_behind_a_burst_gets_the_next_txns_too() {
        let (e, mut rx) = entry();
        let frame = vec![0u8; 64 * 1024];
        let fit = (MAX_QUEUED_NOTIFY_BYTES / frame.len() as u64) as usize;
        for _ in 0..2 * fit {
            assert!(e.notify(frame.clone(), Zxid(1)));
        }
        for z in 2..10 {
            // The task takes one frame between txns: over the limit, but reading.
            let Ok(ConnMsg::Notify(f)) = rx.try_recv() else {
                panic!("no notification queued")
            };
            e.stats.notify_taken(f.len());
            assert!(e.notify(frame.clone(), Zxid(z)), "txn {z}");
        }
        // Nothing taken since the last txn: the next one closes it.
        assert!(!e.notify(frame.clone(), Zxid(10)));
    }

    /// A backlog over the limit closes the connection when the next txn fires; the
    /// notifications of one txn are queued whole up to the burst limit (a closeSession
    /// of 100,000 ephemerals on a watcher of their parent).
    #[test]
    fn notifications_are_bounded_per_connection() {
        let (e, mut rx) = entry();
        let frame = vec![0u8; 64 * 1024];
        let fit = (MAX_QUEUED_NOTIFY_BYTES / frame.len() as u64) as usize;
        // One txn's burst, twice the limit: all queued.
        for _ in 0..2 * fit {
            assert!(e.notify(frame.clone(), Zxid(1)));
        }
        assert!(!e.stats.overflowed.load(Ordering::Relaxed));
        // The connection's task drains it down to the limit: the next txn may fire.
        for _ in 0..fit {
            let Ok(ConnMsg::Notify(f)) = rx.try_recv() else {
                panic!("no notification queued")
            };
            e.stats.notify_taken(f.len());
        }
        assert!(e.notify(frame.clone(), Zxid(2)));
        assert!(e.notify(frame.clone(), Zxid(2)), "the rest of txn 2 too");
        // Txn 3 finds more than the limit queued: dropped, the connection is marked
        // and woken to close.
        assert!(!e.notify(frame.clone(), Zxid(3)));
        assert!(e.stats.overflowed.load(Ordering::Relaxed));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            tokio::time::timeout(
                std::time::Duration::from_secs(1),
                e.stats.stop_now.notified(),
            )
            .await
            .expect("overflow wakes the connection's task");
        });
        // Nothing more is queued once it overflowed, even small frames.
        assert!(!e.notify(vec![0u8; 10], Zxid(4)));
        let mut queued = 0;
        while rx.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(queued, fit + 2);
    }
}
