//! The election port (ZooKeeper's QuorumCnxManager): one TCP connection per pair of
//! members, framed notifications, and a send queue of one (only the newest notification
//! to a peer is kept; it is re-sent when a new connection comes up).
//!
//! Connection rule: only a connection initiated by the larger sid survives. A smaller
//! initiator sends its header and closes (the larger side then dials it); an acceptor
//! that hears from a smaller sid closes and dials back.
//!
//! Owns the election sockets and their tasks. Never interprets votes: decoded
//! notifications go to the driver as [`Event::Notification`], at most one waiting per
//! connection ([`NotificationSlot`]).
//!
//! A worker runs per member of every membership this server has known (its start-up
//! one, each activated or proposed one: [`ElectionNet::add_peer`],
//! [`ElectionNet::note_members`]) for as long as the server runs. A server outside them
//! that connects (one a reconfig may add, or anything that sends a valid header) gets a
//! worker only while it has a connection: it ends when the connection does, as
//! ZooKeeper's `SendWorker.finish` leaves `senderWorkerMap`, so ids announced by
//! strangers do not pile up.

use crate::net::peer::quorum_sasl::QuorumSasl;
use crate::net::peer::reachability::{DialFailure, DownPeer, Reachability};
use crate::net::peer::stream::{self, PeerRead, PeerStream, PeerWrite};
use crate::net::peer::wire::election_frame;
use crate::node::peers::{DialTarget, Peers};
use crate::node::Event;
use crate::tls::QuorumTls;
use rzk_proto::quorum::election::{InitialMessage, MAX_ADDRESS_LEN, MAX_FRAME_LEN};
use rzk_proto::quorum::Notification;
use rzk_proto::ServerId;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// `zookeeper.cnxTimeout`: connect and header-read timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(5000);
/// Pending hand-overs (accepted streams, dial-back requests) per peer.
const INCOMING_CAPACITY: usize = 8;
/// Pause after a failed dial before the worker listens for work again.
const DIAL_BACKOFF: Duration = Duration::from_millis(100);
/// At most this many servers outside every known membership hold an election
/// connection at once; more are closed after their header. ZooKeeper has no such
/// limit (two threads per connection); without one, anyone who can reach the election
/// port could hold connections until this process runs out of file descriptors and
/// stops accepting clients (a break-it review, session 53: ~20,000 connections). A
/// reconfig adds a few servers at a time, each of which connects before it is a member.
pub const MAX_STRANGERS: usize = 128;

type Latest = Option<Arc<Vec<u8>>>;

enum Incoming {
    /// A connection the peer (larger sid) opened to us.
    Stream(PeerStream),
    /// The peer (smaller sid) dialled us and hung up: dial it now.
    DialBack,
}

struct PeerHandle {
    /// Tells this worker from an earlier or later one of the same peer.
    worker: u64,
    latest: watch::Sender<Latest>,
    /// Hand-overs from the acceptor to the peer's worker.
    kick: mpsc::Sender<Incoming>,
}

/// The workers by peer id, and the ids whose workers stay (members of a membership
/// this server has known).
#[derive(Default)]
struct Workers {
    handles: HashMap<ServerId, PeerHandle>,
    members: HashSet<ServerId>,
    /// The id of the last worker started.
    last_worker: u64,
}

/// What every worker of one server shares; the registry of workers grows when a
/// reconfig adds a member or a server not (yet) in the membership connects (ZooKeeper's
/// QuorumCnxManager talks to any sid that introduces itself with its address); a
/// non-member's worker leaves it when its connection ends ([`Registry::retire`]).
struct Registry {
    me: ServerId,
    my_addr: String,
    events: mpsc::UnboundedSender<Event>,
    tls: Option<Arc<QuorumTls>>,
    sasl: Option<Arc<QuorumSasl>>,
    reach: Reachability,
    rt: tokio::runtime::Handle,
    peers: std::sync::Mutex<Workers>,
    /// Handed to the workers, which remove themselves through it.
    this: Weak<Registry>,
    /// Connections refused at [`MAX_STRANGERS`] (the first is warned about, then every
    /// 1,000th).
    refused_strangers: std::sync::atomic::AtomicU64,
    /// Strangers admitted whose worker is not registered yet (their address is being
    /// resolved): counted against [`MAX_STRANGERS`] too.
    admitting: std::sync::atomic::AtomicUsize,
}

impl Registry {
    fn peers(&self) -> std::sync::MutexGuard<'_, Workers> {
        self.peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a worker for `sid` at `addr` (`addr_text` as its `server.N` line or its
    /// connection header writes it) unless one runs; returns its hand-over queue.
    /// `member`: `sid` is in a membership, so its worker stays once it runs.
    fn ensure(
        &self,
        sid: ServerId,
        addr: DialTarget,
        addr_text: &str,
        member: bool,
    ) -> mpsc::Sender<Incoming> {
        let mut peers = self.peers();
        if member {
            peers.members.insert(sid);
        }
        if let Some(h) = peers.handles.get(&sid) {
            return h.kick.clone();
        }
        let (latest, latest_rx) = watch::channel::<Latest>(None);
        let (itx, irx) = mpsc::channel(INCOMING_CAPACITY);
        peers.last_worker += 1;
        let worker = peers.last_worker;
        peers.handles.insert(
            sid,
            PeerHandle {
                worker,
                latest,
                kick: itx.clone(),
            },
        );
        let w = Worker {
            me: self.me,
            peer: sid,
            addr,
            addr_text: addr_text.to_owned(),
            host: host_of(addr_text),
            reach: self.reach.clone(),
            my_addr: self.my_addr.clone(),
            events: self.events.clone(),
            tls: self.tls.clone(),
            sasl: self.sasl.clone(),
            reg: self.this.clone(),
            id: worker,
        };
        self.rt.spawn(w.run(latest_rx, irx));
        itx
    }

    /// Worker `worker` of `sid`, whose hand-over queue is `kick`, has no connection: a
    /// non-member's worker leaves the registry (true: it ends). Its queue is checked
    /// under the registry's lock, so nothing handed over since is dropped unseen (the
    /// worker closes the queue and passes on what reached it in between).
    fn retire(&self, sid: ServerId, worker: u64, kick: &mpsc::Receiver<Incoming>) -> bool {
        let mut peers = self.peers();
        if peers.members.contains(&sid) || !kick.is_empty() {
            return false;
        }
        let mine = peers.handles.get(&sid).is_some_and(|h| h.worker == worker);
        debug_assert!(mine, "a worker of {sid} outside the registry");
        if mine {
            peers.handles.remove(&sid);
        }
        drop(peers);
        // Its outage, if its dial-back failed, is no longer this server's concern.
        self.reach.forget(sid);
        true
    }

    /// Hands `i` from the server `sid` to its worker, started unless one runs; a
    /// worker that ended meanwhile ([`Registry::retire`]) is replaced by a new one.
    async fn hand_over(&self, sid: ServerId, addr: &DialTarget, addr_text: &str, i: Incoming) {
        let mut i = i;
        for _ in 0..2 {
            let k = self.ensure(sid, addr.clone(), addr_text, false);
            match k.send(i).await {
                Ok(()) => return,
                Err(mpsc::error::SendError(back)) => i = back,
            }
        }
        tracing::debug!(%sid, "election worker ended twice during a hand-over; connection dropped");
    }

    /// Whether another server outside every membership may connect (a slot held until
    /// the returned guard drops: keep it until its worker is registered); logs a
    /// refusal. Connections whose address is still being resolved count, so a burst of
    /// them cannot all pass before the first registers (a review, session 53: host
    /// names in the headers let ~1,100 in).
    fn admit_stranger(&self, sid: ServerId, addr: std::net::SocketAddr) -> Option<Admitting<'_>> {
        use std::sync::atomic::Ordering;
        {
            // Under the registry's lock: registrations and admissions are counted
            // together.
            let peers = self.peers();
            let registered = peers
                .handles
                .keys()
                .filter(|sid| !peers.members.contains(sid))
                .count();
            if registered + self.admitting.load(Ordering::Relaxed) < MAX_STRANGERS {
                self.admitting.fetch_add(1, Ordering::Relaxed);
                return Some(Admitting(&self.admitting));
            }
        }
        let n = self
            .refused_strangers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n.is_multiple_of(1000) {
            tracing::warn!(%addr, %sid, refused = n + 1, limit = MAX_STRANGERS,
                "election connection from a server outside the membership refused: too many such servers connected");
        }
        None
    }

    /// Workers running (members and connected non-members).
    #[cfg(test)]
    fn workers(&self) -> usize {
        self.peers().handles.len()
    }
}

/// A stranger's slot under [`MAX_STRANGERS`] while its worker is not registered yet
/// ([`Registry::admit_stranger`]).
struct Admitting<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Admitting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Handle to the election network; sends never block.
pub struct ElectionNet {
    me: ServerId,
    reg: Arc<Registry>,
}

impl std::fmt::Debug for ElectionNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElectionNet").field("me", &self.me).finish()
    }
}

impl ElectionNet {
    /// Starts one worker per other member and the acceptor on `listener`; connections
    /// are TLS as `tls` (quorum TLS) says, and open with a SASL login as `sasl`
    /// (`quorum.auth.*`) says.
    pub fn start(
        rt: &tokio::runtime::Handle,
        peers: &Peers,
        listener: TcpListener,
        events: mpsc::UnboundedSender<Event>,
        tls: Option<Arc<QuorumTls>>,
        sasl: Option<Arc<QuorumSasl>>,
    ) -> ElectionNet {
        let me = peers.me;
        let my_addr = peers
            .mine()
            .map(|p| p.election_text.clone())
            .unwrap_or_default();
        let reg = Arc::new_cyclic(|this| Registry {
            me,
            my_addr,
            events,
            tls: tls.clone(),
            sasl,
            reach: Reachability::default(),
            rt: rt.clone(),
            peers: std::sync::Mutex::new(Workers::default()),
            this: this.clone(),
            refused_strangers: std::sync::atomic::AtomicU64::new(0),
            admitting: std::sync::atomic::AtomicUsize::new(0),
        });
        for p in peers.members.values().filter(|p| p.sid != me) {
            reg.ensure(p.sid, p.election_target(), &p.election_text, true);
        }
        rt.spawn(accept_loop(me, listener, reg.clone(), tls));
        ElectionNet { me, reg }
    }

    /// Reaches `peer` from now on (a member a reconfig added); nothing if a worker for
    /// its sid runs already.
    pub fn add_peer(&self, peer: &crate::node::peers::Peer) {
        if peer.sid != self.me {
            self.reg
                .ensure(peer.sid, peer.election_target(), &peer.election_text, true);
        }
    }

    /// The members of a proposed membership: a worker of theirs (one that connected
    /// before the membership is activated) stays when its connection ends. Starts no
    /// worker ([`ElectionNet::add_peer`] does, at activation).
    pub fn note_members(&self, sids: impl IntoIterator<Item = ServerId>) {
        let mut peers = self.reg.peers();
        peers
            .members
            .extend(sids.into_iter().filter(|s| *s != self.me));
    }

    /// Peers whose election port could not be reached at the last attempt.
    pub fn unreachable(&self) -> Vec<DownPeer> {
        self.reg.reach.down(Instant::now())
    }

    /// Queues `n` for `to`, replacing anything not yet sent. Messages to self are dropped
    /// (the core never acts on its own notifications).
    pub fn send(&self, to: ServerId, n: &Notification) {
        if to == self.me {
            return;
        }
        if let Some(h) = self.reg.peers().handles.get(&to) {
            h.latest
                .send_replace(Some(Arc::new(election_frame(&n.encode()))));
        }
    }
}

struct Worker {
    me: ServerId,
    peer: ServerId,
    /// Resolved again at each attempt when the host did not resolve before.
    addr: DialTarget,
    /// The election address as its `server.N` line writes it (for messages).
    addr_text: String,
    /// The peer's host as its `server.N` line names it (certificates are checked
    /// against it).
    host: String,
    /// Failed dials, shared with the other workers (warnings are rate-limited there).
    reach: Reachability,
    my_addr: String,
    events: mpsc::UnboundedSender<Event>,
    tls: Option<Arc<QuorumTls>>,
    sasl: Option<Arc<QuorumSasl>>,
    /// Where a non-member's worker removes itself when its connection ends.
    reg: Weak<Registry>,
    /// This worker's id in the registry ([`PeerHandle::worker`]).
    id: u64,
}

struct Live {
    wr: PeerWrite,
    reader: tokio::task::JoinHandle<()>,
    gen: u64,
}

impl Worker {
    async fn run(
        self,
        mut latest: watch::Receiver<Latest>,
        mut incoming: mpsc::Receiver<Incoming>,
    ) {
        let (closed_tx, mut closed_rx) = mpsc::unbounded_channel::<u64>();
        let mut gen = 0u64;
        let mut live: Option<Live> = None;
        loop {
            tokio::select! {
                r = latest.changed() => {
                    if r.is_err() {
                        return;
                    }
                    if live.is_none() {
                        gen += 1;
                        live = self.dial(gen, &closed_tx).await;
                        if live.is_none() {
                            tokio::time::sleep(DIAL_BACKOFF).await;
                        }
                    }
                    let msg = latest.borrow_and_update().clone();
                    live = send(live, msg).await;
                }
                i = incoming.recv() => {
                    let Some(i) = i else { return };
                    gen += 1;
                    let fresh = match i {
                        Incoming::Stream(s) => {
                            self.reached();
                            Some(self.attach(s, gen, &closed_tx))
                        }
                        Incoming::DialBack => self.dial(gen, &closed_tx).await,
                    };
                    if let Some(f) = fresh {
                        if let Some(old) = live.replace(f) {
                            old.reader.abort();
                        }
                        // ZooKeeper re-sends the last message on a new connection.
                        let msg = latest.borrow().clone();
                        live = send(live, msg).await;
                    }
                }
                g = closed_rx.recv() => {
                    if live.as_ref().is_some_and(|l| Some(l.gen) == g) {
                        tracing::debug!(me = %self.me, peer = %self.peer, "election connection closed");
                        live = None;
                    }
                }
            }
            if live.is_none() && self.retired(&mut incoming).await {
                return;
            }
        }
    }

    /// Without a connection, a worker of a server outside every known membership ends
    /// (true) and leaves the registry; hand-overs that reached it meanwhile go to a
    /// new worker.
    async fn retired(&self, incoming: &mut mpsc::Receiver<Incoming>) -> bool {
        let Some(reg) = self.reg.upgrade() else {
            return true;
        };
        if !reg.retire(self.peer, self.id, incoming) {
            return false;
        }
        tracing::debug!(me = %self.me, peer = %self.peer,
            "election worker of a server outside the membership ended with its connection");
        incoming.close();
        while let Ok(i) = incoming.try_recv() {
            reg.hand_over(self.peer, &self.addr, &self.addr_text, i)
                .await;
        }
        true
    }

    /// Opens a connection: kept only when our sid is the larger one.
    async fn dial(&self, gen: u64, closed: &mpsc::UnboundedSender<u64>) -> Option<Live> {
        let addr = match self.addr.resolve().await {
            Ok(a) => a,
            Err(e) => {
                self.dial_failed(&e);
                return None;
            }
        };
        let mut s = match stream::dial(addr, &self.host, CONNECT_TIMEOUT, self.tls.as_deref()).await
        {
            Ok(s) => s,
            Err(e) => {
                self.dial_failed(&e);
                return None;
            }
        };
        self.reached();
        let hdr = InitialMessage::new(self.me.0, &self.my_addr).encode();
        if s.wr.write_all(&hdr).await.is_err() || s.wr.flush().await.is_err() {
            return None;
        }
        // ZooKeeper logs in before the sid rule, on a connection it is about to drop too.
        if let Some(sasl) = &self.sasl {
            let peer = format!("server {} at {}", self.peer, self.addr_text);
            if let Err(e) = sasl.login(&mut s, &peer, CONNECT_TIMEOUT).await {
                tracing::warn!("election connection closed: {e}");
                return None;
            }
        }
        if self.peer > self.me {
            // The larger sid keeps the connection: it will dial us.
            let _ = s.wr.shutdown().await;
            return None;
        }
        Some(self.attach(s, gen, closed))
    }

    /// Logs a failed dial as [`Reachability`] decides: WARN when the peer becomes
    /// unreachable or the reason changes, again at most once a minute, else DEBUG.
    fn dial_failed(&self, e: &std::io::Error) {
        let reason = e.to_string();
        let (peer, addr) = (self.peer, &self.addr_text);
        match self
            .reach
            .dial_failed(self.peer, self.addr.placeholder(), &reason, Instant::now())
        {
            DialFailure::New => tracing::warn!(
                "cannot open channel to server {peer} at election address {addr}: {reason}"
            ),
            DialFailure::Repeat {
                failed_since_warning,
                down_for,
            } => tracing::warn!(
                "still cannot open channel to server {peer} at election address {addr} after {}s ({failed_since_warning} more attempts failed): {reason}",
                down_for.as_secs()
            ),
            DialFailure::Quiet => tracing::debug!(
                %peer,
                %addr,
                "election connect failed: {reason}"
            ),
        }
    }

    /// Notes that the peer answered; says so when it had been unreachable.
    fn reached(&self) {
        if let Some(down_for) = self.reach.reached(self.peer, Instant::now()) {
            tracing::info!(
                peer = %self.peer,
                addr = %self.addr_text,
                "election channel to server {} is open again after {}s unreachable",
                self.peer,
                down_for.as_secs()
            );
        }
    }

    fn attach(&self, s: PeerStream, gen: u64, closed: &mpsc::UnboundedSender<u64>) -> Live {
        let (rd, wr) = (s.rd, s.wr);
        let events = self.events.clone();
        let closed = closed.clone();
        let peer = self.peer;
        let reader = tokio::spawn(async move {
            read_loop(peer, rd, events).await;
            let _ = closed.send(gen);
        });
        Live { wr, reader, gen }
    }
}

/// The host part of a `host:port` text (IPv6 hosts in brackets).
pub fn host_of(host_port: &str) -> String {
    match host_port.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']').to_owned(),
        None => host_port.to_owned(),
    }
}

async fn send(live: Option<Live>, msg: Latest) -> Option<Live> {
    let mut l = live?;
    let Some(m) = msg else {
        return Some(l);
    };
    let r = match l.wr.write_all(&m).await {
        Ok(()) => l.wr.flush().await,
        Err(e) => Err(e),
    };
    match r {
        Ok(()) => Some(l),
        Err(e) => {
            tracing::debug!("election send failed: {e}");
            l.reader.abort();
            None
        }
    }
}

/// The newest election notification a connection has read and the driver has not yet
/// taken. A newer one from the same peer replaces it, so a peer that sends faster than
/// the driver reads costs one notification of memory, not a queue (ZooKeeper bounds its
/// receive queue at 100 and drops the oldest). Each notification a peer sends supersedes
/// its previous one: it carries the peer's whole current vote and state.
#[derive(Debug, Default)]
pub struct NotificationSlot(std::sync::Mutex<Option<Notification>>);

impl NotificationSlot {
    /// Stores `n`; true when the slot was empty (the driver needs a new event).
    fn put(&self, n: Notification) -> bool {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.replace(n).is_none()
    }

    /// The waiting notification, if any (the slot is then empty).
    pub fn take(&self) -> Option<Notification> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

async fn read_loop(peer: ServerId, mut rd: PeerRead, events: mpsc::UnboundedSender<Event>) {
    let slot = Arc::new(NotificationSlot::default());
    loop {
        let n = match rd.read_i32().await {
            Ok(n) => n,
            Err(_) => return,
        };
        if n <= 0 || n as usize > MAX_FRAME_LEN {
            tracing::warn!(%peer, len = n, "bad election frame length; closing");
            return;
        }
        let mut b = vec![0u8; n as usize];
        if rd.read_exact(&mut b).await.is_err() {
            return;
        }
        match Notification::decode(&b) {
            Ok(n) => {
                if slot.put(n)
                    && events
                        .send(Event::Notification {
                            from: peer,
                            slot: slot.clone(),
                        })
                        .is_err()
                {
                    return;
                }
            }
            Err(e) => tracing::debug!(%peer, "undecodable notification dropped: {e}"),
        }
    }
}

async fn read_header<R: AsyncRead + Unpin>(s: &mut R) -> std::io::Result<InitialMessage> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let first = s.read_i64().await?;
    let mut raw = first.to_be_bytes().to_vec();
    if first < 0 {
        let sid = s.read_i64().await?;
        let len = s.read_i32().await?;
        if len < 1 || len as usize > MAX_ADDRESS_LEN {
            return Err(bad(format!("bad address length {len}")));
        }
        let mut a = vec![0u8; len as usize];
        s.read_exact(&mut a).await?;
        raw.extend_from_slice(&sid.to_be_bytes());
        raw.extend_from_slice(&len.to_be_bytes());
        raw.extend_from_slice(&a);
    }
    InitialMessage::decode(&raw).map_err(|e| bad(e.to_string()))
}

/// The election address a connection header names (its first, when it names several),
/// resolved; `Err` with the text when it does not resolve or holds a control character
/// (it is logged, and a newline or an escape sequence would forge or hide log lines).
async fn header_address(hdr: &InitialMessage) -> Result<(std::net::SocketAddr, String), String> {
    let text = hdr.address.split('|').next().unwrap_or_default().to_owned();
    if text.chars().any(char::is_control) {
        return Err(text);
    }
    let resolved = tokio::net::lookup_host(text.clone())
        .await
        .ok()
        .and_then(|mut a| a.next());
    match resolved {
        Some(at) => Ok((at, text)),
        None => Err(text),
    }
}

async fn accept_loop(
    me: ServerId,
    listener: TcpListener,
    reg: Arc<Registry>,
    tls: Option<Arc<QuorumTls>>,
) {
    loop {
        let (s, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("election accept failed: {e}");
                tokio::time::sleep(DIAL_BACKOFF).await;
                continue;
            }
        };
        let reg = reg.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let mut s = match stream::accept(s, addr, tls.as_deref()).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(%addr, "election connection refused: {e}");
                    return;
                }
            };
            let hdr = match tokio::time::timeout(CONNECT_TIMEOUT, read_header(&mut s.rd)).await {
                Ok(Ok(h)) => h,
                Ok(Err(e)) => {
                    tracing::warn!(%addr, "bad election connection header: {e}");
                    return;
                }
                Err(_) => {
                    tracing::warn!(%addr, "election connection header timed out");
                    return;
                }
            };
            let sid = ServerId(hdr.sid);
            if let Some(sasl) = &reg.sasl {
                let from = format!("server {sid} at {addr}");
                if let Err(e) = sasl.check(&mut s, &from, CONNECT_TIMEOUT).await {
                    tracing::warn!("election connection closed: {e}");
                    return;
                }
            }
            if sid == me {
                tracing::warn!(%addr, "election connection from a server with my own id; closed");
                return;
            }
            let i = if sid < me {
                drop(s);
                Incoming::DialBack
            } else {
                Incoming::Stream(s)
            };
            let known = reg.peers().handles.get(&sid).map(|h| h.kick.clone());
            let i = match known {
                Some(k) => match k.send(i).await {
                    Ok(()) => return,
                    // Its worker ended meanwhile (a non-member's, with its connection):
                    // a new one takes it, at the address the header names.
                    Err(mpsc::error::SendError(back)) => back,
                },
                None => i,
            };
            // A server outside the membership (one a reconfig may add): reach it at the
            // election address its header names, while its connection lasts.
            let Some(_admitting) = reg.admit_stranger(sid, addr) else {
                return;
            };
            let (at, text) = match header_address(&hdr).await {
                Ok(a) => a,
                Err(text) => {
                    // Debug-formatted: the text is the peer's, control characters and
                    // all (a forged log line otherwise).
                    tracing::warn!(%addr, %sid, address = ?text, "election connection from an unknown server without a usable address; closed");
                    return;
                }
            };
            tracing::info!(%sid, address = %text, "election connection from a server outside the membership");
            reg.hand_over(sid, &DialTarget::Addr(at), &text, i).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rzk_proto::quorum::election::ServerState;

    fn notification(election_epoch: i64) -> Notification {
        Notification {
            state: ServerState::Looking,
            leader: 3,
            zxid: 0,
            election_epoch,
            peer_epoch: 0,
            version: 2,
            config: "x".repeat(64 * 1024),
        }
    }

    /// A peer that sends much faster than the driver reads leaves one event and one
    /// notification waiting, the newest (break-it review: a flood of 512 KiB
    /// notifications grew a LOOKING member to 3.2 GB through an unbounded queue).
    #[tokio::test]
    async fn a_flooding_peer_leaves_one_waiting_notification_the_newest() {
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(ServerId(3), Box::new(rx), events_tx));
        for e in 1..=500 {
            tx.write_all(&election_frame(&notification(e).encode()))
                .await
                .unwrap();
        }
        drop(tx);
        reader.await.unwrap();
        let mut got = Vec::new();
        while let Ok(Event::Notification { from, slot }) = events.try_recv() {
            assert_eq!(from, ServerId(3));
            if let Some(n) = slot.take() {
                got.push(n.election_epoch);
            }
        }
        assert_eq!(got, vec![500], "only the newest notification waits");
    }

    /// An election network of server 50 whose only other member, 7, never answers.
    async fn net_of_50() -> (ElectionNet, std::net::SocketAddr) {
        let [dead] = crate::node::free_addrs();
        let peer = |sid: i64, at: std::net::SocketAddr| crate::node::peers::Peer {
            sid: ServerId(sid),
            election: at,
            quorum: at,
            observer: false,
            election_text: at.to_string(),
            resolved: true,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let at = listener.local_addr().unwrap();
        let mut members = std::collections::BTreeMap::new();
        members.insert(ServerId(50), peer(50, at));
        members.insert(ServerId(7), peer(7, dead));
        let peers = Peers {
            me: ServerId(50),
            members,
        };
        let (events, _) = mpsc::unbounded_channel();
        let net = ElectionNet::start(
            &tokio::runtime::Handle::current(),
            &peers,
            listener,
            events,
            None,
            None,
        );
        (net, at)
    }

    /// Connects to `at` as server `sid` whose election address is `addr`.
    async fn introduce(at: std::net::SocketAddr, sid: i64, addr: &str) -> tokio::net::TcpStream {
        let mut s = tokio::net::TcpStream::connect(at).await.unwrap();
        s.write_all(&InitialMessage::new(sid, addr).encode())
            .await
            .unwrap();
        s
    }

    async fn workers_become(net: &ElectionNet, want: usize) -> usize {
        for _ in 0..500 {
            if net.reg.workers() == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        net.reg.workers()
    }

    /// Servers outside the membership that connect to the election port keep a worker
    /// only while connected: 40 strangers with larger ids (whose connections we keep)
    /// and 10 with smaller ids (whom we dial back, at an address that refuses) leave
    /// the member's worker alone (review: every id a stranger announced kept a worker
    /// and its queue for as long as the server ran). A connected stranger still gets
    /// the notifications sent to it.
    #[tokio::test]
    async fn strangers_on_the_election_port_leave_no_worker_behind() {
        let (net, at) = net_of_50().await;
        assert_eq!(net.reg.workers(), 1, "member 7's worker");
        let [refusing] = crate::node::free_addrs();
        let mut larger = Vec::new();
        for sid in 100..140 {
            larger.push(introduce(at, sid, "127.0.0.1:1").await);
        }
        assert_eq!(
            workers_become(&net, 41).await,
            41,
            "connected strangers are reachable"
        );
        net.send(ServerId(100), &notification(9));
        let s = &mut larger[0];
        let len = s.read_i32().await.unwrap();
        let mut body = vec![0u8; len as usize];
        s.read_exact(&mut body).await.unwrap();
        assert_eq!(Notification::decode(&body).unwrap().election_epoch, 9);
        drop(larger);
        for sid in 1..11 {
            drop(introduce(at, sid, &refusing.to_string()).await);
        }
        assert_eq!(workers_become(&net, 1).await, 1, "workers left behind");
        let down: Vec<ServerId> = net.unreachable().iter().map(|d| d.sid).collect();
        assert!(
            down.iter().all(|s| *s == ServerId(7)),
            "outages of strangers kept: {down:?}"
        );
    }

    /// A server a proposed membership names keeps its worker when its connection ends
    /// (it is reached again at the address it gave), as a member does.
    #[tokio::test]
    async fn a_proposed_member_keeps_its_worker() {
        let (net, at) = net_of_50().await;
        net.note_members([ServerId(60)]);
        drop(introduce(at, 60, "127.0.0.1:1").await);
        drop(introduce(at, 61, "127.0.0.1:1").await);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(workers_become(&net, 2).await, 2, "members 7 and 60 only");
        assert!(net.reg.peers().handles.contains_key(&ServerId(60)));
    }

    /// At most [`MAX_STRANGERS`] servers outside the membership hold a connection at
    /// once: the next one is closed after its header, and one is taken again once a
    /// stranger leaves (review, session 53: ~20,000 held connections ran the process
    /// out of file descriptors and it stopped accepting clients).
    #[tokio::test]
    async fn strangers_beyond_the_limit_are_closed() {
        let (net, at) = net_of_50().await;
        let mut held = Vec::new();
        for sid in 0..MAX_STRANGERS as i64 {
            held.push(introduce(at, 1_000 + sid, "127.0.0.1:1").await);
        }
        assert_eq!(
            workers_become(&net, MAX_STRANGERS + 1).await,
            MAX_STRANGERS + 1
        );
        let mut over = introduce(at, 5_000, "127.0.0.1:1").await;
        assert!(
            closed_soon(&mut over).await,
            "a stranger beyond the limit was kept"
        );
        assert_eq!(net.reg.workers(), MAX_STRANGERS + 1);
        drop(held.pop());
        assert_eq!(workers_become(&net, MAX_STRANGERS).await, MAX_STRANGERS);
        let _kept = introduce(at, 5_001, "127.0.0.1:1").await;
        assert_eq!(
            workers_become(&net, MAX_STRANGERS + 1).await,
            MAX_STRANGERS + 1,
            "a stranger within the limit again"
        );
    }

    /// A burst of strangers whose headers name a host (resolved on the blocking pool,
    /// slower than a literal address) stays within [`MAX_STRANGERS`]: the ones still
    /// resolving count (review, session 53: ~1,100 of 3,000 were kept).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_strangers_naming_hosts_stays_within_the_limit() {
        let (net, at) = net_of_50().await;
        let mut tasks = Vec::new();
        for sid in 0..400i64 {
            tasks.push(tokio::spawn(async move {
                let s = introduce(at, 10_000 + sid, "localhost:1").await;
                tokio::time::sleep(Duration::from_secs(3)).await;
                drop(s);
            }));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let most = net.reg.workers();
        assert!(
            most <= MAX_STRANGERS + 1,
            "{most} workers for a limit of {MAX_STRANGERS} strangers and one member"
        );
        for t in tasks {
            let _ = t.await;
        }
    }

    /// An address with a control character in a stranger's header is refused before
    /// it is resolved or logged as text (a newline forged log lines).
    #[tokio::test]
    async fn a_header_address_with_control_characters_is_refused() {
        let hdr = InitialMessage::new(9, "127.0.0.1:1\nINFO forged");
        assert_eq!(
            header_address(&hdr).await.err().as_deref(),
            Some("127.0.0.1:1\nINFO forged")
        );
        let ok = InitialMessage::new(9, "127.0.0.1:1");
        assert!(header_address(&ok).await.is_ok());
    }

    /// True when the peer closes `s` within 5 s (EOF or reset; data is ignored).
    async fn closed_soon(s: &mut tokio::net::TcpStream) -> bool {
        let mut buf = [0u8; 1024];
        let until = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match tokio::time::timeout_at(until, s.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The driver taking the waiting notification lets the next one raise a new event.
    #[tokio::test]
    async fn a_taken_slot_is_refilled_with_a_new_event() {
        let (mut tx, rx) = tokio::io::duplex(1 << 20);
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(ServerId(3), Box::new(rx), events_tx));
        let mut got = Vec::new();
        for e in 1..=3 {
            tx.write_all(&election_frame(&notification(e).encode()))
                .await
                .unwrap();
            match events.recv().await {
                Some(Event::Notification { slot, .. }) => {
                    got.extend(slot.take().map(|n| n.election_epoch))
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        drop(tx);
        reader.await.unwrap();
        assert_eq!(got, vec![1, 2, 3]);
    }
}
