//! The session task's event loop: connect/handshake, request pipelining, replies,
//! notifications, pings, reconnects and session end.
//!
//! Owns the socket, the xid counter, the FIFO of pending requests and the watch registry.
//! It must never block on a handle (replies go through oneshot channels, watch streams
//! are bounded with try_send) and never leave a pending request unanswered: every exit
//! path fails what is queued with ConnectionLoss or the terminal error.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use rand::seq::SliceRandom;
use rand::Rng;
use rzk_proto::opcode::xid;
use rzk_proto::records::{
    AuthPacket, ConnectRequest, ConnectResponse, SetWatches, SetWatches2, WatcherEvent,
};
use rzk_proto::{ErrorCode, Jute, OpCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{sleep_until, timeout, Instant};

use super::frame::{put_bare, put_request, split_reply, take_frame};
use super::sasl_login::{login, LoginError};
use super::{Command, Reply, SessionConfig, Shared};
use crate::error::{Error, Result};
use crate::types::{EventType, SessionState};
use crate::watch::{WatchReg, WatchRegistry};

/// Bytes queued for the socket before the task stops taking new commands.
const MAX_OUTBUF: usize = 4 << 20;
/// Requests awaiting replies before the task stops taking new commands.
const MAX_PENDING: usize = 16 * 1024;
/// Stop draining the command channel into one write batch beyond this many bytes.
const WRITE_BATCH: usize = 256 << 10;
/// Summed path length per setWatches packet (as the Java client).
const SET_WATCHES_MAX_LENGTH: usize = 128 * 1024;
/// Shortest connect/handshake timeout per host.
const MIN_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Longest pause between ping checks (the Java client pings at least every 10 s).
const MAX_PING_INTERVAL: Duration = Duration::from_secs(10);
/// Upper bound of the random pause after every host failed once.
const MAX_BACKOFF_MS: u64 = 1000;

struct Pending {
    xid: i32,
    /// When the request was queued for the socket: the server received it later.
    queued: Instant,
    op: OpCode,
    watch: Option<WatchReg>,
    reply: Option<oneshot::Sender<Result<Reply>>>,
}

/// The reading half of a connection (plain TCP or TLS).
pub(crate) type ConnRead = Box<dyn AsyncRead + Send + Unpin>;
/// The writing half of a connection (plain TCP or TLS).
pub(crate) type ConnWrite = Box<dyn AsyncWrite + Send + Unpin>;

struct Conn {
    rd: ConnRead,
    wr: ConnWrite,
    inbuf: BytesMut,
    outbuf: BytesMut,
    last_recv: Instant,
    last_send: Instant,
    /// When each unanswered ping was queued (they are answered in order).
    pings: VecDeque<Instant>,
}

enum Exit {
    Lost(String),
    Terminal(SessionState),
}

enum ConnectError {
    Failed(String),
    Expired,
    /// The SASL login was refused: the session ends with `AuthFailed`.
    AuthFailed(String),
}

pub(crate) struct SessionTask {
    cfg: SessionConfig,
    rx: mpsc::UnboundedReceiver<Command>,
    rx_closed: bool,
    state_tx: watch::Sender<SessionState>,
    shared: Arc<Shared>,
    session_id: i64,
    password: Vec<u8>,
    negotiated_ms: i32,
    last_zxid: i64,
    auths: Vec<(String, Bytes)>,
    watches: WatchRegistry,
    next_xid: i32,
    hosts: Vec<String>,
    host_idx: usize,
    pending: VecDeque<Pending>,
    /// One entry per AUTH packet sent, in order: the callers waiting for its answer
    /// (none for credentials replayed at a reconnect).
    pending_auth: VecDeque<Vec<oneshot::Sender<Result<()>>>>,
    /// Commands taken from the channel during a reconnect backoff: sent first on the
    /// next connection (credentials before calls, calls in the order made), or failed
    /// with CONNECTIONLOSS if that attempt fails (the Java client's `outgoingQueue` keeps
    /// packets through `startConnect`'s sleep the same way, and its `cleanup` fails them
    /// when an attempt fails).
    held: VecDeque<Command>,
    close_waiters: Vec<oneshot::Sender<Result<()>>>,
    /// The server answered our closeSession (the session is closed there, ephemerals
    /// deleted); otherwise a close ends only this client.
    close_answered: bool,
    closing: bool,
}

impl SessionTask {
    pub fn new(
        cfg: SessionConfig,
        rx: mpsc::UnboundedReceiver<Command>,
        state_tx: watch::Sender<SessionState>,
        shared: Arc<Shared>,
    ) -> Self {
        let mut hosts = cfg.connect.hosts.clone();
        hosts.shuffle(&mut rand::thread_rng());
        let (session_id, password) = cfg.resume.clone().unwrap_or((0, vec![0; 16]));
        SessionTask {
            watches: WatchRegistry::new(cfg.connect.chroot.clone()),
            cfg,
            rx,
            rx_closed: false,
            state_tx,
            shared,
            session_id,
            password,
            negotiated_ms: 0,
            last_zxid: 0,
            auths: Vec::new(),
            next_xid: 1,
            hosts,
            host_idx: 0,
            pending: VecDeque::new(),
            pending_auth: VecDeque::new(),
            held: VecDeque::new(),
            close_waiters: Vec::new(),
            close_answered: false,
            closing: false,
        }
    }

    pub async fn run(mut self) {
        let mut failures = 0usize;
        loop {
            if self.rx_closed || self.closing {
                // Every handle is gone (or close was asked) while disconnected: nothing
                // to tell the server; the session expires on its own.
                self.finish(SessionState::Closed);
                return;
            }
            match self.connect_next().await {
                Ok(conn) => {
                    failures = 0;
                    match self.serve(conn).await {
                        Exit::Terminal(s) => {
                            self.finish(s);
                            return;
                        }
                        Exit::Lost(why) => {
                            tracing::info!(session = format_args!("0x{:x}", self.session_id), %why, "connection lost; reconnecting");
                            if self.closing {
                                self.finish(SessionState::Closed);
                                return;
                            }
                            self.disconnected();
                        }
                    }
                }
                Err(ConnectError::Expired) => {
                    tracing::info!(
                        session = format_args!("0x{:x}", self.session_id),
                        "session expired"
                    );
                    self.finish(SessionState::Expired);
                    return;
                }
                Err(ConnectError::AuthFailed(why)) => {
                    tracing::warn!(
                        session = format_args!("0x{:x}", self.session_id),
                        %why,
                        "authentication failed; the session is over"
                    );
                    if let Ok(mut f) = self.shared.auth_failure.lock() {
                        *f = Some(why.clone());
                    }
                    self.finish(SessionState::AuthFailed);
                    return;
                }
                Err(ConnectError::Failed(why)) => {
                    failures += 1;
                    tracing::debug!(%why, "connect attempt failed");
                    if self.fail_queued() {
                        continue;
                    }
                    if failures >= self.hosts.len() {
                        let ms = rand::thread_rng().gen_range(50..=MAX_BACKOFF_MS);
                        self.backoff(Duration::from_millis(ms)).await;
                    }
                }
            }
        }
    }

    fn alloc_xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid = if x == i32::MAX { 1 } else { x + 1 };
        x
    }

    fn timeout_ms(&self) -> u64 {
        if self.negotiated_ms > 0 {
            self.negotiated_ms as u64
        } else {
            self.cfg.session_timeout.as_millis() as u64
        }
    }

    async fn connect_next(&mut self) -> Result<Conn, ConnectError> {
        let n = self.hosts.len().max(1);
        let host = self.hosts[self.host_idx % n].clone();
        self.host_idx = self.host_idx.wrapping_add(1);
        let per_host = Duration::from_millis(self.timeout_ms() / n as u64).max(MIN_CONNECT_TIMEOUT);
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            ConnectError::Failed(format!("{host}: {what}: {e}"))
        };
        let stream = match timeout(per_host, TcpStream::connect(&host)).await {
            Err(e) => return Err(fail("connect", &e)),
            Ok(Err(e)) => return Err(fail("connect", &e)),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        let peer_ip = stream.peer_addr().ok().map(|a| a.ip());
        let (mut rd, mut wr): (ConnRead, ConnWrite) = match &self.cfg.tls {
            None => {
                let (r, w) = stream.into_split();
                (Box::new(r), Box::new(w))
            }
            Some(tls) => {
                let name = crate::tls::server_name(&host).map_err(|e| fail("tls", &e))?;
                let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
                let s = match timeout(per_host, connector.connect(name, stream)).await {
                    Err(e) => return Err(fail("TLS handshake", &e)),
                    Ok(Err(e)) => return Err(fail("TLS handshake", &e)),
                    Ok(Ok(s)) => s,
                };
                let (r, w) = tokio::io::split(s);
                (Box::new(r), Box::new(w))
            }
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            timeout_ms: self.cfg.session_timeout.as_millis().min(i32::MAX as u128) as i32,
            session_id: self.session_id,
            passwd: Bytes::from(self.password.clone()),
            read_only: Some(self.cfg.can_be_read_only),
        };
        let mut out = BytesMut::new();
        put_bare(&mut out, &req.to_bytes());
        let handshake_sent = Instant::now();
        let mut inbuf = BytesMut::with_capacity(64 * 1024);
        let handshake = async {
            wr.write_all(&out).await.map_err(|e| fail("write", &e))?;
            loop {
                match take_frame(&mut inbuf) {
                    Err(e) => return Err(fail("handshake", &e)),
                    Ok(Some(f)) => return Ok(f),
                    Ok(None) => {}
                }
                match rd.read_buf(&mut inbuf).await {
                    Ok(0) => return Err(fail("handshake", &"server closed the connection")),
                    Ok(_) => {}
                    Err(e) => return Err(fail("read", &e)),
                }
            }
        };
        let frame = match timeout(per_host, handshake).await {
            Err(e) => return Err(fail("handshake", &e)),
            Ok(r) => r?,
        };
        let resp = ConnectResponse::from_bytes(&frame).map_err(|e| fail("handshake", &e))?;
        if resp.timeout_ms <= 0 {
            return Err(ConnectError::Expired);
        }
        self.session_id = resp.session_id;
        self.password = resp.passwd.to_vec();
        self.negotiated_ms = resp.timeout_ms;
        self.shared
            .session_id
            .store(resp.session_id, Ordering::Relaxed);
        self.shared
            .negotiated_timeout_ms
            .store(resp.timeout_ms, Ordering::Relaxed);
        if let Ok(mut p) = self.shared.password.lock() {
            *p = self.password.clone();
        }
        if let Some(sasl) = &self.cfg.sasl {
            // Within the host's time: a Kerberos login may wait for DNS and the KDC.
            let mech = match timeout(per_host, sasl.mechanism(&host, peer_ip)).await {
                Err(e) => return Err(fail("SASL login", &e)),
                Ok(Ok(m)) => m,
                Ok(Err(why)) => return Err(ConnectError::AuthFailed(why)),
            };
            let mut next = self.next_xid;
            let alloc = || {
                let x = next;
                next = if x == i32::MAX { 1 } else { x + 1 };
                x
            };
            let r = timeout(per_host, login(mech, &mut rd, &mut wr, &mut inbuf, alloc)).await;
            self.next_xid = next;
            match r {
                Err(e) => return Err(fail("SASL login", &e)),
                Ok(Err(LoginError::Connection(why))) => return Err(fail("SASL login", &why)),
                Ok(Err(LoginError::Refused(why))) => return Err(ConnectError::AuthFailed(why)),
                Ok(Ok(())) => {
                    tracing::debug!(%host, user = sasl.user(), mechanism = sasl.mechanism_name(), "SASL login done");
                }
            }
        }
        if let Ok(mut h) = self.shared.connected_host.lock() {
            h.clone_from(&host);
        }
        self.shared
            .counters
            .connects
            .fetch_add(1, Ordering::Relaxed);
        let state = if resp.read_only == Some(true) {
            SessionState::ConnectedReadOnly
        } else {
            SessionState::Connected
        };
        tracing::debug!(%host, session = format_args!("0x{:x}", resp.session_id), timeout_ms = resp.timeout_ms, "connected");
        self.state_tx.send_replace(state);
        // The server that answered took the handshake after it was sent (a read-only
        // server is not the quorum, which is what expires sessions: not counted).
        if state != SessionState::ConnectedReadOnly {
            self.shared.heard(handshake_sent);
        }
        let now = Instant::now();
        Ok(Conn {
            rd,
            wr,
            inbuf,
            outbuf: BytesMut::with_capacity(64 * 1024),
            last_recv: now,
            last_send: now,
            pings: VecDeque::new(),
        })
    }

    async fn serve(&mut self, mut conn: Conn) -> Exit {
        // Credentials given during the backoff join the known ones, which go before any
        // call (as Java's `primeConnection` puts every `authInfo` first); their callers
        // hear the server's answer. The calls keep their order.
        let mut auth_waiters = Vec::new();
        let mut calls = VecDeque::new();
        for c in std::mem::take(&mut self.held) {
            match c {
                Command::AddAuth {
                    scheme,
                    auth,
                    reply,
                } => {
                    remember_auth(&mut self.auths, scheme.clone(), auth.clone());
                    auth_waiters.push((scheme, auth, reply));
                }
                other => calls.push_back(other),
            }
        }
        for (scheme, auth) in self.auths.clone() {
            let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut auth_waiters)
                .into_iter()
                .partition(|(s, a, _)| *s == scheme && *a == auth);
            auth_waiters = rest;
            put_auth(&mut conn.outbuf, scheme, auth);
            self.pending_auth
                .push_back(mine.into_iter().map(|(_, _, reply)| reply).collect());
        }
        debug_assert!(
            auth_waiters.is_empty(),
            "every held credential was remembered"
        );
        self.put_set_watches(&mut conn.outbuf);
        self.watches.notify_state(*self.state_tx.borrow());
        // Calls made during the backoff go first, in the order they were made.
        for c in calls {
            self.on_command(c, &mut conn.outbuf);
        }
        let read_timeout = Duration::from_millis((self.negotiated_ms.max(1) as u64) * 2 / 3);
        let ping_every = (read_timeout / 2).min(MAX_PING_INTERVAL);
        // One timer for the connection's life, moved to the next ping or deadline each
        // turn: a new `sleep_until` per turn registered an entry in tokio's timer wheel
        // and removed it again for every batch of replies (two locked wheel updates per
        // request at one request in flight), where moving a registered timer later is
        // one atomic update.
        let wake = tokio::time::sleep_until(conn.last_send + ping_every);
        tokio::pin!(wake);
        loop {
            let ping_at = conn.last_send + ping_every;
            let dead_at = conn.last_recv + read_timeout;
            let wake_at = ping_at.min(dead_at);
            if wake.deadline() != wake_at {
                wake.as_mut().reset(wake_at);
            }
            let accept = !self.rx_closed
                && !self.closing
                && conn.outbuf.len() < MAX_OUTBUF
                && self.pending.len() < MAX_PENDING;
            tokio::select! {
                biased;
                r = conn.rd.read_buf(&mut conn.inbuf) => match r {
                    Ok(0) => return Exit::Lost("server closed the connection".into()),
                    Err(e) => return Exit::Lost(format!("read: {e}")),
                    Ok(_) => {
                        conn.last_recv = Instant::now();
                        loop {
                            match take_frame(&mut conn.inbuf) {
                                Err(e) => return Exit::Lost(e.to_string()),
                                Ok(None) => break,
                                Ok(Some(f)) => {
                                    if let Some(exit) = self.on_frame(f, &mut conn.pings) {
                                        return exit;
                                    }
                                }
                            }
                        }
                    }
                },
                r = conn.wr.write(&conn.outbuf), if !conn.outbuf.is_empty() => match r {
                    Ok(n) => conn.outbuf.advance(n),
                    Err(e) => return Exit::Lost(format!("write: {e}")),
                },
                cmd = self.rx.recv(), if accept => {
                    match cmd {
                        None => {
                            self.rx_closed = true;
                            self.begin_close(&mut conn.outbuf);
                        }
                        Some(c) => {
                            self.on_command(c, &mut conn.outbuf);
                            while conn.outbuf.len() < WRITE_BATCH && !self.closing && self.pending.len() < MAX_PENDING {
                                match self.rx.try_recv() {
                                    Ok(c) => self.on_command(c, &mut conn.outbuf),
                                    Err(_) => break,
                                }
                            }
                        }
                    }
                    conn.last_send = Instant::now();
                },
                () = &mut wake => {
                    let now = Instant::now();
                    if now >= dead_at {
                        return Exit::Lost(format!("nothing received for {} ms", read_timeout.as_millis()));
                    }
                    if now >= ping_at {
                        put_request(&mut conn.outbuf, xid::PING, OpCode::Ping.code(), &[]);
                        conn.pings.push_back(now);
                        conn.last_send = now;
                    }
                },
            }
        }
    }

    fn put_set_watches(&mut self, out: &mut BytesMut) {
        let paths = self.watches.paths();
        let persistent = !paths.persistent.is_empty() || !paths.recursive.is_empty();
        let lists = [
            paths.data,
            paths.exist,
            paths.child,
            paths.persistent,
            paths.recursive,
        ];
        let mut batch: [Vec<String>; 5] = Default::default();
        let mut size = 0usize;
        let flush = |batch: &mut [Vec<String>; 5], out: &mut BytesMut, zxid: i64| {
            if batch.iter().all(Vec::is_empty) {
                return;
            }
            let [d, e, c, p, r] = std::mem::take(batch);
            if persistent {
                let rec = SetWatches2 {
                    relative_zxid: zxid,
                    data_watches: d,
                    exist_watches: e,
                    child_watches: c,
                    persistent_watches: p,
                    persistent_recursive_watches: r,
                };
                put_request(
                    out,
                    xid::SET_WATCHES,
                    OpCode::SetWatches2.code(),
                    &rec.to_bytes(),
                );
            } else {
                let rec = SetWatches {
                    relative_zxid: zxid,
                    data_watches: d,
                    exist_watches: e,
                    child_watches: c,
                };
                put_request(
                    out,
                    xid::SET_WATCHES,
                    OpCode::SetWatches.code(),
                    &rec.to_bytes(),
                );
            }
        };
        for (i, list) in lists.into_iter().enumerate() {
            for p in list {
                size += p.len();
                batch[i].push(p);
                if size > SET_WATCHES_MAX_LENGTH {
                    flush(&mut batch, out, self.last_zxid);
                    size = 0;
                }
            }
        }
        flush(&mut batch, out, self.last_zxid);
    }

    fn begin_close(&mut self, out: &mut BytesMut) {
        if self.closing {
            return;
        }
        self.closing = true;
        let x = self.alloc_xid();
        put_request(out, x, OpCode::CloseSession.code(), &[]);
        self.pending.push_back(Pending {
            xid: x,
            queued: Instant::now(),
            op: OpCode::CloseSession,
            watch: None,
            reply: None,
        });
    }

    fn on_command(&mut self, c: Command, out: &mut BytesMut) {
        match c {
            Command::Request(r) => {
                if self.closing {
                    let _ = r.reply.send(Err(Error::Closed));
                    return;
                }
                let x = self.alloc_xid();
                put_request(out, x, r.op.code(), &r.body);
                self.shared
                    .counters
                    .requests_sent
                    .fetch_add(1, Ordering::Relaxed);
                if r.op == OpCode::CloseSession {
                    self.closing = true;
                }
                self.pending.push_back(Pending {
                    xid: x,
                    queued: Instant::now(),
                    op: r.op,
                    watch: r.watch,
                    reply: Some(r.reply),
                });
            }
            Command::RemoveUnusedWatch(r) => {
                let in_use = match &r.watch {
                    Some(WatchReg::Remove(path, kind)) => {
                        self.watches.in_use(path, *kind)
                            || self
                                .pending
                                .iter()
                                .any(|p| p.watch.as_ref().is_some_and(|w| w.sets(path, *kind)))
                    }
                    _ => false,
                };
                if in_use && !self.closing {
                    let _ = r.reply.send(Ok(Reply { body: Bytes::new() }));
                } else {
                    self.on_command(Command::Request(r), out);
                }
            }
            Command::AddAuth {
                scheme,
                auth,
                reply,
            } => {
                remember_auth(&mut self.auths, scheme.clone(), auth.clone());
                put_auth(out, scheme, auth);
                self.pending_auth.push_back(vec![reply]);
            }
            Command::Close { reply } => {
                self.close_waiters.push(reply);
                self.begin_close(out);
            }
        }
    }

    /// A server answered a request queued at `queued` ([`Shared::heard`]); answers of a
    /// read-only server do not count (it is not the quorum that expires sessions).
    fn heard(&self, queued: Instant) {
        if *self.state_tx.borrow() != SessionState::ConnectedReadOnly {
            self.shared.heard(queued);
        }
    }

    fn on_frame(&mut self, frame: Bytes, pings: &mut VecDeque<Instant>) -> Option<Exit> {
        let (hdr, body) = match split_reply(&frame) {
            Ok(x) => x,
            Err(e) => return Some(Exit::Lost(format!("malformed reply header: {e}"))),
        };
        match hdr.xid {
            xid::PING => {
                if let Some(queued) = pings.pop_front() {
                    self.heard(queued);
                }
                None
            }
            xid::AUTH => {
                let waiters = self.pending_auth.pop_front().unwrap_or_default();
                if hdr.err == ErrorCode::AuthFailed.code() {
                    for w in waiters {
                        let _ = w.send(Err(Error::AuthFailed));
                    }
                    return Some(Exit::Terminal(SessionState::AuthFailed));
                }
                for w in waiters {
                    let _ = w.send(if hdr.err == 0 {
                        Ok(())
                    } else {
                        Err(Error::from_code(hdr.err))
                    });
                }
                None
            }
            xid::SET_WATCHES => {
                if hdr.err != 0 {
                    tracing::warn!(err = hdr.err, "setWatches failed");
                }
                None
            }
            xid::NOTIFICATION => {
                let ev = match WatcherEvent::from_bytes(&body) {
                    Ok(ev) => ev,
                    Err(e) => return Some(Exit::Lost(format!("malformed notification: {e}"))),
                };
                let c = &self.shared.counters;
                c.notifications.fetch_add(1, Ordering::Relaxed);
                let (n, event) =
                    self.watches
                        .dispatch(EventType::from_code(ev.event_type), &ev.path, hdr.zxid);
                c.events_delivered.fetch_add(n as u64, Ordering::Relaxed);
                if n > 0 {
                    if let Ok(mut tap) = self.shared.notification_tap.lock() {
                        if tap.as_ref().is_some_and(|t| t.send(event).is_err()) {
                            *tap = None;
                        }
                    }
                }
                None
            }
            x => {
                let Some(p) = self.pending.pop_front() else {
                    return Some(Exit::Lost(format!("reply xid {x} with no request pending")));
                };
                if p.xid != x {
                    let err = format!("reply xid {x} out of order (expected {})", p.xid);
                    self.pending.push_front(p);
                    return Some(Exit::Lost(err));
                }
                self.heard(p.queued);
                if hdr.zxid > 0 {
                    self.last_zxid = hdr.zxid;
                    self.shared.last_zxid.store(hdr.zxid, Ordering::Relaxed);
                }
                if p.op == OpCode::CloseSession {
                    self.close_answered = true;
                    if let Some(tx) = p.reply {
                        let _ = tx.send(Ok(Reply { body }));
                    }
                    return Some(Exit::Terminal(SessionState::Closed));
                }
                if let Some(w) = p.watch {
                    self.watches.register(w, hdr.err);
                }
                let res = if hdr.err == 0 {
                    Ok(Reply { body })
                } else {
                    Err(Error::from_code(hdr.err))
                };
                if let Some(tx) = p.reply {
                    let _ = tx.send(res);
                }
                None
            }
        }
    }

    /// Connection lost: fail what was in flight, publish Disconnected.
    fn disconnected(&mut self) {
        self.state_tx.send_replace(SessionState::Disconnected);
        self.watches.notify_state(SessionState::Disconnected);
        for p in self.pending.drain(..) {
            if let Some(tx) = p.reply {
                let _ = tx.send(Err(Error::ConnectionLoss));
            }
        }
        for w in self.pending_auth.drain(..).flatten() {
            let _ = w.send(Err(Error::ConnectionLoss));
        }
    }

    /// Fails a command that cannot be sent. `keep_auth`: the session lives on (it is
    /// reconnecting), so credentials given meanwhile are kept for the next connection,
    /// as the Java client's `addAuthInfo` keeps them in any state; the caller still
    /// hears CONNECTIONLOSS (the server has not checked them yet).
    fn fail_command(c: Command, err: &Error, keep_auth: Option<&mut Vec<(String, Bytes)>>) -> bool {
        match c {
            Command::Request(r) | Command::RemoveUnusedWatch(r) => {
                let _ = r.reply.send(Err(err.clone()));
                false
            }
            Command::AddAuth {
                scheme,
                auth,
                reply,
            } => {
                if let Some(auths) = keep_auth {
                    remember_auth(auths, scheme, auth);
                }
                let _ = reply.send(Err(err.clone()));
                false
            }
            Command::Close { reply } => {
                // Disconnected: closed here only; the session lives on the server until
                // it expires. After the session ended: nothing left to close.
                let r = match err {
                    Error::ConnectionLoss => Err(Error::ConnectionLoss),
                    _ => Ok(()),
                };
                let _ = reply.send(r);
                true
            }
        }
    }

    /// After a failed connect attempt, fail queued requests with ConnectionLoss (as the
    /// Java client does). Returns true if a close was requested.
    fn fail_queued(&mut self) -> bool {
        while let Some(c) = self.held.pop_front() {
            if Self::fail_command(c, &Error::ConnectionLoss, Some(&mut self.auths)) {
                self.closing = true;
            }
        }
        loop {
            match self.rx.try_recv() {
                Ok(c) => {
                    if Self::fail_command(c, &Error::ConnectionLoss, Some(&mut self.auths)) {
                        self.closing = true;
                    }
                }
                Err(mpsc::error::TryRecvError::Empty) => return self.closing,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.rx_closed = true;
                    return true;
                }
            }
        }
    }

    /// Waits `d` before the next connect attempt. Commands made meanwhile are held for
    /// that attempt ([`SessionTask::held`]); a close ends the wait, failing what was held
    /// with CONNECTIONLOSS (the session lives on the server until it expires).
    async fn backoff(&mut self, d: Duration) {
        let until = Instant::now() + d;
        loop {
            tokio::select! {
                _ = sleep_until(until) => return,
                c = self.rx.recv() => match c {
                    None => { self.rx_closed = true; return; }
                    Some(c @ Command::Close { .. }) => {
                        for h in std::mem::take(&mut self.held) {
                            Self::fail_command(h, &Error::ConnectionLoss, Some(&mut self.auths));
                        }
                        Self::fail_command(c, &Error::ConnectionLoss, None);
                        self.closing = true;
                        return;
                    }
                    Some(c) => {
                        if self.held.len() >= MAX_PENDING {
                            Self::fail_command(c, &Error::ConnectionLoss, Some(&mut self.auths));
                        } else {
                            self.held.push_back(c);
                        }
                    }
                },
            }
        }
    }

    fn finish(&mut self, state: SessionState) {
        self.state_tx.send_replace(state);
        let err = match state {
            SessionState::Expired => Error::SessionExpired,
            SessionState::AuthFailed => Error::AuthFailed,
            _ => Error::Closed,
        };
        for p in self.pending.drain(..) {
            if let Some(tx) = p.reply {
                let _ = tx.send(Err(err.clone()));
            }
        }
        for w in self.pending_auth.drain(..).flatten() {
            let _ = w.send(Err(err.clone()));
        }
        // A close the server did not answer (silent or unreachable server) closed only
        // this client: CONNECTIONLOSS tells the caller its session (and its ephemeral
        // nodes) lives on until the server expires it.
        let closed_here_only = state == SessionState::Closed && !self.close_answered;
        for w in self.close_waiters.drain(..) {
            let _ = w.send(if closed_here_only {
                Err(Error::ConnectionLoss)
            } else {
                Ok(())
            });
        }
        for c in std::mem::take(&mut self.held) {
            Self::fail_command(c, &err, None);
        }
        self.watches.fail_all(state);
        self.rx.close();
        while let Ok(c) = self.rx.try_recv() {
            Self::fail_command(c, &err, None);
        }
        tracing::debug!(
            session = format_args!("0x{:x}", self.session_id),
            ?state,
            "session ended"
        );
    }
}

/// Queues an AUTH packet (`addauth scheme auth`); its answer comes back in order with
/// xid [`xid::AUTH`], matched through `pending_auth`.
fn put_auth(out: &mut BytesMut, scheme: String, auth: Bytes) {
    let pkt = AuthPacket {
        auth_type: 0,
        scheme,
        auth,
    };
    put_request(out, xid::AUTH, OpCode::Auth.code(), &pkt.to_bytes());
}

/// Adds credentials to those sent at every (re)connect, once: the same credentials
/// given again (a retry after a CONNECTIONLOSS that kept them) are not sent twice.
fn remember_auth(auths: &mut Vec<(String, Bytes)>, scheme: String, auth: Bytes) {
    if !auths.iter().any(|(s, a)| *s == scheme && *a == auth) {
        auths.push((scheme, auth));
    }
}
