//! One client connection: handshake, request decoding, per-session FIFO of replies,
//! reads answered from the local tree, writes handed to the pipeline, notifications.
//!
//! Owns the socket of one client. Every request of the session takes effect in the order
//! it was sent (ZooKeeper's per-session FIFO): a read waits for every earlier write of
//! this connection, and a write that follows a waiting read is held back (not handed to
//! the pipeline) until that read has been answered, so the read sees exactly the
//! session's earlier writes and a watch it sets fires for the later write. Replies leave
//! strictly in request order; a watch notification is always written before a reply
//! that reveals the change that fired it. Only this session waits: other sessions' reads
//! never queue behind it. Malformed input closes only this connection. This module must
//! never hold a std lock across an `.await`.

use crate::admin;
use crate::net::frame::{self, FirstWord, FrameError, FrameReader};
use crate::net::lane::ReplyLane;
use crate::net::order::{MarkDone, Released, ReplyOrder, Slot};
use crate::node::clients::{ConnMsg, ConnStats};
use crate::node::jobs::{Job, JobKind, Origin};
use crate::node::shared::Shared;
use crate::node::status::Status;
use crate::node::SessionCheck;
use crate::prep::WriteRequest;
use crate::read;
use crate::reply::{notification_frame, reply_frame};
use crate::request::{self, ReadRequest, Request};
use crate::session::{password, SessionError, PASSWORD_LEN};
use crate::watch::ConnId;
use bytes::Bytes;
use rzk_proto::opcode::xid;
use rzk_proto::records::{
    AuthPacket, ConnectRequest, ConnectResponse, GetSaslRequest, RequestHeader, SetWatches2,
};
use rzk_proto::{ErrorCode, Jute, Reader, SessionId, Zxid};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// Bytes of replies gathered before they are written to the socket (they are also
/// written whenever the connection has nothing more to do at once).
pub const WRITE_BUFFER: usize = 16 * 1024;
/// Requests of one connection in flight before we stop reading its socket.
pub const MAX_OUTSTANDING_PER_CONN: usize = 1000;
/// Longest a re-attaching session waits for its previous connection to end.
pub const SUPERSEDED_WAIT: Duration = Duration::from_secs(5);

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed {0}: {1}")]
    Malformed(&'static str, rzk_proto::DecodeError),
    #[error("handshake timed out")]
    HandshakeTimeout,
    #[error("closed: {0}")]
    Closed(&'static str),
}

#[derive(Debug)]
enum Local {
    Read(ReadRequest),
    Ping,
    Auth(AuthPacket),
    SetWatches(SetWatches2),
    Sasl(GetSaslRequest),
    /// A request refused by enforce.auth (the session has no id of an enforced scheme).
    Unauthenticated,
    /// closeSession of a local session (read-only mode, `localSessionsEnabled`): the
    /// session is forgotten here, with no txn, then the connection closes.
    CloseLocalSession,
    /// A multi refused before it reaches the pipeline, answered as a failed multi (err
    /// 0, these per-op results).
    FailedMulti(Vec<rzk_proto::multi::OpResult>),
    Error {
        code: Option<ErrorCode>,
        close: bool,
    },
}

/// What ended a connection's wait ([`Conn::main_loop`]).
enum Woke {
    Msg(Option<ConnMsg>),
    Read(Result<usize, FrameError>),
    /// [`Conn::idle_check`] fired.
    IdleCheck,
}

/// The reading half of a client connection (plain TCP or TLS).
pub type ClientRead = Box<dyn AsyncRead + Send + Unpin>;
/// The writing half of a client connection (plain TCP or TLS).
pub type ClientWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// An accepted client connection, plaintext or TLS, split into halves.
pub struct ClientStream {
    /// Bytes from the client.
    pub rd: ClientRead,
    /// Bytes to the client.
    pub wr: ClientWrite,
    /// The subject of the client's certificate (TLS with a client certificate only),
    /// ZooKeeper's `x509` identity.
    pub x509: Option<X509Peer>,
    /// A plaintext connection's socket descriptor, for its reply lane (`net::lane`;
    /// open as long as `wr`); `None` for TLS.
    pub socket: Option<std::os::fd::RawFd>,
    /// The TCP socket under the stream, plaintext or TLS (open as long as `wr`): the
    /// write watch looks at its queue of unacknowledged bytes
    /// (`net::watched_write`). `None` for a stream without one (tests).
    pub tcp: Option<std::os::fd::RawFd>,
}

/// A client authenticated by its TLS certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X509Peer {
    /// The certificate subject (RFC 2253, as `tls::principal` prints it).
    pub subject: String,
    /// It is `X509AuthenticationProvider.superUser`.
    pub super_user: bool,
}

impl ClientStream {
    /// A plaintext TCP connection.
    pub fn plain(stream: TcpStream) -> ClientStream {
        use std::os::fd::AsRawFd;
        let _ = stream.set_nodelay(true);
        let socket = Some(stream.as_raw_fd());
        let (rd, wr) = stream.into_split();
        ClientStream {
            rd: Box::new(rd),
            wr: Box::new(wr),
            x509: None,
            socket,
            tcp: socket,
        }
    }

    /// A TLS session over an accepted TCP connection, with the client's certificate
    /// identity.
    pub fn tls(
        stream: tokio_rustls::server::TlsStream<TcpStream>,
        x509: Option<X509Peer>,
    ) -> ClientStream {
        use std::os::fd::AsRawFd;
        let tcp = Some(stream.get_ref().0.as_raw_fd());
        let mut s = ClientStream::other(stream, x509);
        s.tcp = tcp;
        s
    }

    /// Any other byte stream, with the client's certificate identity; its writes are
    /// watched only by what they accept (no socket to look at).
    pub fn other<S>(stream: S, x509: Option<X509Peer>) -> ClientStream
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(stream);
        ClientStream {
            rd: Box::new(rd),
            wr: Box::new(wr),
            x509,
            socket: None,
            tcp: None,
        }
    }
}

impl std::fmt::Debug for ClientStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientStream")
            .field("x509", &self.x509)
            .finish_non_exhaustive()
    }
}

/// Serves one accepted connection (already registered under `id`, with `msgs` and
/// `lane` the receiving side of its queue and its reply lane) until it closes, then
/// deregisters it.
pub async fn serve(
    shared: Arc<Shared>,
    stream: ClientStream,
    addr: SocketAddr,
    id: ConnId,
    (msgs, lane): (mpsc::UnboundedReceiver<ConnMsg>, Arc<ReplyLane>),
    stats: Arc<ConnStats>,
) {
    if let Some(socket) = stream.socket {
        // SAFETY: `socket` is open while `stream.wr` (moved into `conn.wr` below) is:
        // the lane is closed after `conn.run` ends and in `Conn::drop`, before `wr` is
        // dropped.
        unsafe { lane.attach(socket) };
    }
    let rd = stream.rd;
    let wr = BufWriter::with_capacity(
        WRITE_BUFFER,
        crate::net::watched_write::WatchedWrite::new(stream.wr, stream.tcp),
    );
    let mut auth = crate::auth::AuthInfo::for_connection(
        &addr.ip().to_string(),
        shared.config.auth.providers.clone(),
    );
    if let Some(p) = &stream.x509 {
        auth.add_x509(&p.subject, p.super_user);
        tracing::info!(%addr, conn = id, "authenticated id '{}' for scheme x509{}", p.subject, if p.super_user { " (super user)" } else { "" });
        if let Some(e) = shared.clients.registry().conns.get_mut(&id) {
            e.auth = auth.clone();
        }
    }
    let mut conn = Conn {
        shared: shared.clone(),
        id,
        addr,
        session: SessionId::NONE,
        auth: Arc::new(auth),
        x509: stream.x509,
        sasl: None,
        order: ReplyOrder::new(),
        frame_len: 0,
        wr,
        msgs,
        lane,
        stats,
        superseded: Vec::new(),
        read_only: false,
        local_session: false,
        batch_at: Instant::now(),
        last_io: Instant::now(),
        idle_limit: None,
        idle_check: None,
        counted: std::cell::Cell::new(0),
    };
    // A connection whose notification queue overflowed (node::clients::ConnEntry::notify)
    // is dropped at once, even while its task is blocked writing to a client that does
    // not read; nothing more is flushed to it.
    let stats = conn.stats.clone();
    let result = tokio::select! {
        r = conn.run(rd) => r,
        _ = stats.stop_now.notified() => Err(ConnError::Closed(
            if stats.superseded.load(Ordering::Relaxed) {
                "its session re-attached on another connection"
            } else {
                "too many watch notifications queued"
            }
        )),
    };
    // Nothing more is written directly.
    conn.end_lane();
    // Dropped at once: nothing more is flushed to a client that may not read.
    let dropped =
        stats.overflowed.load(Ordering::Relaxed) || stats.superseded.load(Ordering::Relaxed);
    match &result {
        Ok(()) => tracing::debug!(%addr, conn = id, "connection closed"),
        Err(ConnError::Frame(FrameError::Eof)) => {
            // ZooKeeper's handleFailedRead: every end of stream read from a client.
            crate::metrics::metrics().connection_drop_count.inc();
            tracing::debug!(%addr, conn = id, session = %format_args!("0x{:x}", conn.session), "client closed the connection")
        }
        Err(e) => {
            tracing::info!(%addr, conn = id, session = %format_args!("0x{:x}", conn.session), "closing connection: {e}")
        }
    }
    if !dropped {
        let _ = conn.wr.flush().await;
        let _ = conn.wr.shutdown().await;
    }
    deregister(&shared, id, addr);
}

/// How long [`linger`] reads from a client it stopped reading.
const LINGER: Duration = Duration::from_secs(1);
/// How many bytes [`linger`] reads and drops at most.
const LINGER_BYTES: usize = 1 << 20;

/// A lingering close: ends the sending side (its replies are all written), then reads
/// and discards what the client still sends, until it closes too, for at most
/// [`LINGER`] and [`LINGER_BYTES`]. Closing a socket with unread input makes the
/// kernel reset the connection, which discards replies still on their way.
async fn linger(wr: &mut (impl AsyncWrite + Unpin), rd: &mut ClientRead) {
    if wr.shutdown().await.is_err() {
        return;
    }
    let mut sink = vec![0u8; 16 * 1024];
    let mut left = LINGER_BYTES;
    let _ = tokio::time::timeout(LINGER, async {
        while left > 0 {
            match rd.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// A local session's upgrade registered with the leader's session table
/// ([`crate::session::SessionTracker::proposed_create`]) before its createSession job
/// reaches prep. Dropped before the job is handed to the driver (the connection's task
/// ended while the job queue was full, or the server is stopping), it withdraws the
/// registration, which nothing else would remove before the next change of leadership.
struct UpgradeRegistration {
    shared: Arc<Shared>,
    session: SessionId,
    /// The job reached the driver: its prep or `Driver::on_job` owns the entry now.
    handed_over: bool,
}

impl UpgradeRegistration {
    fn new(shared: Arc<Shared>, session: SessionId) -> UpgradeRegistration {
        shared.sessions().proposed_create(session);
        UpgradeRegistration {
            shared,
            session,
            handed_over: false,
        }
    }
}

impl Drop for UpgradeRegistration {
    fn drop(&mut self) {
        if !self.handed_over {
            tracing::debug!(session = %format_args!("0x{:x}", self.session), "session upgrade not handed to the leader's prep; registration withdrawn");
            self.shared.sessions().abandon_create(self.session);
        }
    }
}

/// Hands a session upgrade's createSession `job` to the driver; `registered`, if this
/// server registered it as the leader, is withdrawn unless the job gets there.
async fn send_upgrade(
    shared: &Shared,
    job: Job,
    registered: Option<UpgradeRegistration>,
) -> Result<(), ConnError> {
    debug_assert!(matches!(
        job.kind,
        JobKind::Write(WriteRequest::CreateSession { .. })
    ));
    shared
        .jobs
        .send(job)
        .await
        .map_err(|_| ConnError::Closed("server stopping"))?;
    if let Some(mut r) = registered {
        r.handed_over = true;
    }
    Ok(())
}

/// Touches `session` at `at` as a request read then would: in the local tracker for a
/// local session, as a learner's touch (reported to the leader), or where this server
/// judges it. Where this server judges the session, a session past its deadline is not
/// revived ([`crate::session::SessionTracker::touch_live`]).
fn touch(shared: &Shared, session: SessionId, local: bool, at: Instant) {
    let now = shared.ms_at(at);
    if local {
        let _ = shared.local_sessions().touch_live(session, now);
    } else if shared.quorum.is_learner() {
        let _ = shared.sessions().touch(session, now);
    } else {
        let _ = shared.sessions().touch_live(session, now);
    }
}

/// Removes a connection from the registry (its session binding and its slot in the
/// per-IP count) and the watch tables. Idempotent: a second call finds nothing to
/// remove.
pub fn deregister(shared: &Shared, id: ConnId, addr: SocketAddr) {
    shared.watches().remove_conn(id);
    let mut reg = shared.clients.registry();
    let Some(entry) = reg.conns.remove(&id) else {
        return;
    };
    if let Some(s) = entry.session {
        if reg.by_session.get(&s) == Some(&id) {
            reg.by_session.remove(&s);
        }
    }
    if let Some(n) = reg.per_ip.get_mut(&addr.ip()) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            reg.per_ip.remove(&addr.ip());
        }
    }
}

/// Deregisters a connection ([`deregister`]) when dropped: held by the connection's
/// task, so that a task that ends by a panic (tokio drops its future while unwinding)
/// gives back its registry entry, per-IP slot and watches too. Without it they stayed
/// for good, and enough of them locked the client's address out at `maxClientCnxns`
/// (a code review, session 52).
pub struct Registered {
    shared: Arc<Shared>,
    id: ConnId,
    addr: SocketAddr,
}

impl Registered {
    /// The guard of connection `id` from `addr`, registered in `shared.clients`.
    pub fn new(shared: Arc<Shared>, id: ConnId, addr: SocketAddr) -> Registered {
        Registered { shared, id, addr }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        deregister(&self.shared, self.id, self.addr);
    }
}

struct Conn {
    shared: Arc<Shared>,
    id: ConnId,
    addr: SocketAddr,
    session: SessionId,
    /// The connection's identities; each job carries a pointer to them.
    auth: Arc<crate::auth::AuthInfo>,
    /// The client's certificate identity (TLS with a client certificate).
    x509: Option<X509Peer>,
    /// This connection's SASL exchange, from its first SetSASL request on.
    sasl: Option<crate::auth::sasl::SaslServer>,
    /// The session's reply order (`net::order`, shared with the simulator): admitted
    /// requests answered strictly from the front, and requests held because a pipeline
    /// request may not overtake a read of the same session.
    /// Pipeline requests are held with their frame's length (the bytes they take from the
    /// pipeline's budget once handed over).
    order: ReplyOrder<Local, (JobKind, usize), Instant>,
    /// The length of the frame being handled (`on_frame`).
    frame_len: usize,
    wr: BufWriter<crate::net::watched_write::WatchedWrite>,
    msgs: mpsc::UnboundedReceiver<ConnMsg>,
    /// Lets the applier write replies into the socket while this task waits
    /// (`net::lane`); armed only in [`Conn::main_loop`]'s wait.
    lane: Arc<ReplyLane>,
    stats: Arc<ConnStats>,
    /// Earlier connections of this session that this one closed (client reconnect),
    /// each as its `ConnEntry::alive`: the re-attach barrier waits until they ended.
    superseded: Vec<watch::Receiver<()>>,
    /// A read-only session (`crate::readonly`): writes are answered NOTREADONLY.
    read_only: bool,
    /// The session is local to this server (read-only mode or `localSessionsEnabled`):
    /// its closeSession is answered here, without a txn.
    local_session: bool,
    /// When the frames being admitted were read (one read may carry many pipelined
    /// requests; they share this arrival time for latency statistics).
    batch_at: Instant,
    /// When the client's bytes were last read or a reply last written.
    last_io: Instant,
    /// The session's negotiated timeout, once the handshake bound one: a connection
    /// with nothing outstanding that reads nothing for longer is closed when it next
    /// reads, or when [`Conn::idle_check`] fires (see [`Conn::idle_past_timeout`]).
    idle_limit: Option<std::time::Duration>,
    /// Fires at the earliest moment the connection could be idle past
    /// [`Conn::idle_limit`] (set with it): then the connection is closed if it is, or
    /// the timer is moved to the next such moment. Without it a connection whose
    /// client vanished without a FIN or RST (a partition, a NAT that forgot it) while
    /// its session lived on elsewhere was kept, with its watches, registry entry and
    /// per-IP slot, until that session ended (a code review, session 52). It is not
    /// moved on every I/O: it fires about once per timeout while the client is active.
    idle_check: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    /// Requests this connection added to the server's outstanding count
    /// (`Shared::stats`, `srvr`'s Outstanding) and has not answered yet; what is left
    /// when the connection ends is taken back then (a closed connection's requests get
    /// no reply, and used to stay counted for good).
    counted: std::cell::Cell<i64>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.end_lane();
        let left = self.counted.get();
        if left > 0 {
            self.shared
                .stats
                .outstanding
                .fetch_sub(left, Ordering::Relaxed);
        }
    }
}

impl Conn {
    /// One more request in the server's outstanding count (taken back by
    /// [`Conn::uncount_request`], or when the connection ends).
    fn count_request(&self) {
        self.counted.set(self.counted.get() + 1);
        self.shared
            .stats
            .outstanding
            .fetch_add(1, Ordering::Relaxed);
    }

    /// `n` counted requests were answered and taken off the server's count by whoever
    /// answered them (the applier, through the reply lane).
    fn forget_counted(&self, n: u32) {
        let left = self.counted.get();
        debug_assert!(left >= i64::from(n), "more requests answered than counted");
        self.counted.set(left.saturating_sub(i64::from(n)).max(0));
    }

    /// A counted request was answered.
    fn uncount_request(&self) {
        let n = self.counted.get();
        debug_assert!(n > 0, "more requests answered than counted");
        if n > 0 {
            self.counted.set(n - 1);
            self.shared
                .stats
                .outstanding
                .fetch_sub(1, Ordering::Relaxed);
        }
    }

    async fn run(&mut self, mut rd: ClientRead) -> Result<(), ConnError> {
        let mut frames = FrameReader::new(self.shared.config.jute_max_buffer);
        // ZooKeeper's sessionless connection timeout: the first request must complete
        // with no silence longer than this (each read starts it again, as each read
        // touches ZooKeeper's connection expiry queue).
        let idle = Duration::from_millis(u64::from(self.shared.config.sessionless_cnxn_timeout_ms));
        let first = loop {
            match frames.first_word()? {
                Some(FirstWord::FourLetter(w)) => break Err(w),
                Some(FirstWord::Length(_)) => {
                    if let Some(p) = frames.next_frame()? {
                        break Ok(p);
                    }
                }
                None => {}
            }
            tokio::time::timeout(idle, frames.fill(&mut rd))
                .await
                .map_err(|_| ConnError::HandshakeTimeout)??;
        };
        let connect = match first {
            Ok(payload) => payload,
            Err(word) => {
                // ZooKeeper counts a four-letter word as a packet received (stat/srvr
                // `Received`, mntr `zk_packets_received`, the word's own `recved=1` in
                // `stat`) and its answer as a packet sent.
                self.count_received();
                crate::metrics::hooks::request_received(0);
                self.stats.four_letter_word.store(true, Ordering::Relaxed);
                frames.consume(frame::LEN_PREFIX);
                // Bytes after the word (`stmk`'s argument) may already be buffered.
                let mut rest = frames.buffered().chain(&mut rd);
                let out = admin::four_letter_word(Status::of(&self.shared), word, &mut rest).await;
                self.wr.write_all(out.as_bytes()).await?;
                self.wr.flush().await?;
                self.stats.sent.fetch_add(1, Ordering::Relaxed);
                self.shared
                    .stats
                    .packets_sent
                    .fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        };
        self.count_received();
        crate::metrics::hooks::request_received(connect.len());
        let req = ConnectRequest::from_bytes(&connect)
            .map_err(|e| ConnError::Malformed("ConnectRequest", e))?;
        self.handshake(req).await?;
        self.main_loop(&mut rd, &mut frames).await
    }

    /// Serves the session: admits every complete frame already read (up to
    /// [`MAX_OUTSTANDING_PER_CONN`] outstanding), answers what can be answered, writes
    /// the replies when nothing else is ready, then waits for the next bytes from the
    /// client or the next message from the pipeline.
    async fn main_loop(
        &mut self,
        rd: &mut ClientRead,
        frames: &mut FrameReader,
    ) -> Result<(), ConnError> {
        let mut fresh = true;
        // A frame whose length is negative or over `jute.maxbuffer` ends the
        // connection, as in ZooKeeper; the requests read before it are answered first
        // (nothing after it is read).
        let mut refused: Option<FrameError> = None;
        loop {
            while refused.is_none() && self.order.len() < MAX_OUTSTANDING_PER_CONN {
                let payload = match frames.next_frame() {
                    Ok(Some(payload)) => payload,
                    Ok(None) => break,
                    Err(e) => {
                        refused = Some(e);
                        break;
                    }
                };
                if fresh {
                    // One read: one arrival time and one session touch for its frames.
                    fresh = false;
                    let now = Instant::now();
                    if self.idle_past_timeout(now) {
                        return Err(ConnError::Closed(
                            "no I/O for longer than the session timeout",
                        ));
                    }
                    self.batch_at = now;
                    self.last_io = now;
                    self.touch_session();
                }
                self.on_frame(&payload).await?;
            }
            self.advance().await?;
            self.stats
                .queued
                .store(self.order.len() as u64, Ordering::Relaxed);
            if self.msgs.is_empty() {
                self.wr.flush().await?;
            }
            if let Some(e) = refused.take_if(|_| self.order.is_empty()) {
                self.wr.flush().await?;
                linger(&mut self.wr, rd).await;
                return Err(e.into());
            }
            let can_read = refused.is_none() && self.order.len() < MAX_OUTSTANDING_PER_CONN;
            if can_read && frames.has_frame() {
                // Frames read earlier wait behind the limit, which answers have since
                // lowered: take them now. Waiting for the socket instead could wait
                // for ever: the client may have sent all it will send until these are
                // answered, and with the reply lane armed no reply wakes this task
                // (a client pipelining over MAX_OUTSTANDING_PER_CONN writes stalled
                // until its next ping; a review in session 51).
                continue;
            }
            let armed = can_read && self.arm_lane();
            let idle_check = self.idle_check.as_mut();
            let woke = tokio::select! {
                biased;
                m = self.msgs.recv() => Woke::Msg(m),
                r = frames.fill(rd), if can_read => Woke::Read(r),
                () = async {
                    match idle_check {
                        Some(timer) => timer.await,
                        None => std::future::pending().await,
                    }
                } => Woke::IdleCheck,
            };
            if armed {
                self.reclaim_lane().await?;
            }
            match woke {
                Woke::Msg(Some(m)) => self.on_msg(m).await?,
                Woke::Msg(None) => return Err(ConnError::Closed("server stopping")),
                Woke::Read(r) => {
                    r?;
                    fresh = true;
                }
                Woke::IdleCheck => self.on_idle_check(Instant::now())?,
            }
        }
    }

    /// [`Conn::idle_check`] fired at `now`: closes the connection if it sat idle past
    /// its session's timeout (as ZooKeeper's NIO connection expiry does), else sets the
    /// timer to the next moment it could be: the timeout after its last I/O, or after
    /// now while requests are outstanding (they will be answered, which is I/O).
    fn on_idle_check(&mut self, now: Instant) -> Result<(), ConnError> {
        if self.idle_past_timeout(now) {
            return Err(ConnError::Closed(
                "no I/O for longer than the session timeout",
            ));
        }
        let last = self.last_activity();
        if let (Some(limit), Some(timer)) = (self.idle_limit, self.idle_check.as_mut()) {
            let from = if self.order.is_empty() { last } else { now };
            // A moment strictly past the limit: `idle_past_timeout` wants more than it.
            let at = from + limit + std::time::Duration::from_millis(1);
            timer.as_mut().reset(tokio::time::Instant::from_std(at));
        }
        Ok(())
    }

    /// Closes the reply lane for good (the connection ends), taking what it answered
    /// since the last wait off the outstanding count first.
    fn end_lane(&mut self) {
        let r = self.lane.reclaim();
        self.forget_written(&r);
        self.lane.close();
    }

    /// Arms the reply lane (`net::lane`) before the task waits, when all it waits for is
    /// the replies of admitted writes: nothing buffered, nothing queued (checked under
    /// the lane's lock), no read or held request. Returns whether it is armed.
    fn arm_lane(&mut self) -> bool {
        if !self.wr.buffer().is_empty() {
            return false;
        }
        let Some(xids) = self.order.only_waiting_writes() else {
            return false;
        };
        let msgs = &self.msgs;
        self.lane.arm(xids, || msgs.is_empty())
    }

    /// Disarms the reply lane after a wait and takes the requests whose replies it
    /// wrote meanwhile off the session's order (the writer accounted for them: sent,
    /// latency, outstanding); the end of a reply it wrote only partly is written first.
    async fn reclaim_lane(&mut self) -> Result<(), ConnError> {
        let r = self.lane.reclaim();
        if let Some(rest) = &r.rest {
            self.wr.write_all(rest).await?;
        }
        self.forget_written(&r);
        Ok(())
    }

    /// Takes the requests the reply lane answered (`r`) off the session's order and
    /// this connection's count of outstanding requests.
    fn forget_written(&mut self, r: &crate::net::lane::Reclaimed) {
        if r.written == 0 {
            return;
        }
        if let Some(at) = r.at {
            self.last_io = at;
        }
        self.forget_counted(r.written);
        for _ in 0..r.written {
            if self.order.pop_written().is_none() {
                debug_assert!(false, "the lane wrote a reply the order did not expect");
                break;
            }
        }
        self.stats
            .queued
            .store(self.order.len() as u64, Ordering::Relaxed);
    }

    /// Whether a read at `now` comes after the connection sat idle (nothing outstanding,
    /// nothing read or written) for longer than its session's timeout. ZooKeeper's NIO
    /// connection factory closes such a connection (its connection expiry queue, on the
    /// `zookeeper.nio.sessionlessCnxnTimeout` grid), so that a server that was stopped
    /// (SIGSTOP, a VM paused) past its clients' timeouts does not answer the requests
    /// queued meanwhile from a tree that may be long out of date: the client's session
    /// may have expired and its ephemerals be gone at the leader. A live client sends
    /// a ping at least every third of its timeout, so only a stalled server or client
    /// gets here. rzk judges at the next read, exactly at the timeout.
    fn idle_past_timeout(&self, now: Instant) -> bool {
        let last = self.last_activity();
        self.order.is_empty()
            && self
                .idle_limit
                .is_some_and(|limit| now.saturating_duration_since(last) > limit)
    }

    /// The client's last I/O: a read, a reply written, or bytes it took from a long
    /// write (`net::watched_write`).
    fn last_activity(&self) -> Instant {
        self.last_io.max(self.wr.get_ref().progress_at())
    }

    /// The client showed it is alive: its session's expiry moves on.
    /// Touches the session at `self.batch_at` (the read's arrival time, already read).
    /// Where this server judges the session (the leader, a standalone or read-only
    /// server, a local session), a session past its deadline is not revived: a request
    /// read after a stall leaves it to the expiry sweep
    /// ([`crate::session::SessionTracker::touch_live`]).
    fn touch_session(&self) {
        touch(
            &self.shared,
            self.session,
            self.local_session,
            self.batch_at,
        );
    }

    /// Lets the writer count the client's taking of bytes as liveness (a touch of the
    /// session) and give up a write the client takes nothing of for the session's
    /// timeout (`net::watched_write`). Set again when the session or its kind changes.
    fn watch_writes(&mut self) {
        let Some(limit) = self.idle_limit else {
            return;
        };
        let (shared, session, local) = (self.shared.clone(), self.session, self.local_session);
        self.wr.get_mut().watch(
            limit,
            Box::new(move |at| touch(&shared, session, local, at)),
        );
    }

    fn count_received(&self) {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        self.shared
            .stats
            .packets_received
            .fetch_add(1, Ordering::Relaxed);
    }

    async fn send_frame(&mut self, frame: &[u8]) -> Result<(), ConnError> {
        self.wr.write_all(frame).await?;
        self.stats.frame_sent(&self.shared.stats, frame);
        Ok(())
    }

    /// Refuses a session request from a client that has seen a later zxid than this
    /// server's tree holds (ZooKeeper closes the connection; the client tries another
    /// server). Used by the read-write and the read-only connect paths.
    fn refuse_if_ahead(&self, shared: &Shared, last_zxid_seen: Zxid) -> Result<(), ConnError> {
        let last = shared.tree().last_zxid();
        if last_zxid_seen > last {
            tracing::info!(
                addr = %self.addr,
                "refusing session request: client has seen zxid {}, our last zxid is {}; client must try another server",
                last_zxid_seen,
                last
            );
            return Err(ConnError::Closed("client is ahead of this server"));
        }
        Ok(())
    }

    /// A request answered at `at` (monotonic, and `at_wall_ms` on the wall clock: one
    /// reading serves every reply written together); `write`: it went through the
    /// write pipeline.
    fn finish_request(&self, received: Instant, write: bool, at: (Instant, i64)) {
        self.stats.answered(&self.shared.stats, received, at, write);
        self.uncount_request();
    }

    async fn send_connect_response(&mut self, resp: ConnectResponse) -> Result<(), ConnError> {
        let mut out = Vec::new();
        frame::encode_frame(&mut out, |w| resp.write(w));
        // Not through send_frame: ZooKeeper leaves the ConnectResponse out of the
        // response sizes and bytes.
        self.wr.write_all(&out).await?;
        self.stats.sent.fetch_add(1, Ordering::Relaxed);
        self.shared
            .stats
            .packets_sent
            .fetch_add(1, Ordering::Relaxed);
        self.wr.flush().await?;
        Ok(())
    }

    async fn handshake(&mut self, req: ConnectRequest) -> Result<(), ConnError> {
        let shared = self.shared.clone();
        // ZooKeeper counts connection requests where a running server reads a
        // ConnectRequest (`processConnectRequest`), not at accept: four-letter words,
        // failed TLS handshakes and requests to a member that does not serve are not
        // counted.
        let serving = shared.quorum.is_serving() || shared.quorum.is_read_only();
        if serving {
            crate::metrics::metrics().connection_request_count.inc();
        }
        if !shared.quorum.is_serving() && shared.quorum.is_read_only() {
            return self.handshake_read_only(req).await;
        }
        if !shared.quorum.is_serving() {
            crate::metrics::metrics()
                .cnxn_closed_without_zk_server_running
                .inc();
            // An ensemble member without a leader (ZooKeeper: "ZooKeeperServer not
            // running"): the client tries another server.
            return Err(ConnError::Closed(
                "this server is not currently serving requests",
            ));
        }
        self.refuse_if_ahead(&shared, Zxid(req.last_zxid_seen))?;
        let timeout = shared.config.negotiate_timeout(req.timeout_ms);
        let ro = req.read_only.map(|_| false);
        let invalid = ConnectResponse {
            protocol_version: 0,
            timeout_ms: 0,
            session_id: 0,
            passwd: Bytes::from_static(&[0; PASSWORD_LEN]),
            read_only: ro,
        };
        if req.session_id == 0 && self.local_sessions_on() {
            // localSessionsEnabled: no createSession txn (crate::session::local).
            let sid = shared.sessions().next_session_id();
            shared.local_sessions().add(sid, timeout, shared.now_ms());
            self.local_session = true;
            self.bind_session(sid, timeout);
            tracing::info!(addr = %self.addr, "established local session 0x{sid:x} with negotiated timeout {timeout} ms");
            return self
                .send_connect_response(ConnectResponse {
                    protocol_version: 0,
                    timeout_ms: timeout,
                    session_id: sid.0,
                    passwd: Bytes::copy_from_slice(&password(sid)),
                    read_only: ro,
                })
                .await;
        }
        if req.session_id == 0 {
            let sid = shared.sessions().next_session_id();
            self.bind_session(sid, timeout);
            self.count_request();
            let answer = self
                .handshake_job(
                    sid,
                    JobKind::Write(WriteRequest::CreateSession {
                        timeout_ms: timeout,
                    }),
                )
                .await?;
            self.uncount_request();
            if let ConnMsg::SessionCreated(Err(code)) = answer {
                tracing::warn!("createSession failed: {code}");
                self.send_connect_response(invalid).await?;
                return Err(ConnError::Closed("createSession failed"));
            }
            tracing::info!(addr = %self.addr, "established session 0x{sid:x} with negotiated timeout {timeout} ms");
            self.send_connect_response(ConnectResponse {
                protocol_version: 0,
                timeout_ms: timeout,
                session_id: sid.0,
                passwd: Bytes::copy_from_slice(&password(sid)),
                read_only: ro,
            })
            .await
        } else {
            let sid = SessionId(req.session_id);
            // As ZooKeeper: connections already bound to the session are closed before
            // the password is checked (even a failed resume drops them).
            self.unbind_others(sid);
            // A local session of this server is checked here only.
            let local = self.local_sessions_on() && shared.local_sessions().contains(sid);
            // The leader (or a standalone server) judges liveness itself, and the
            // session is then attached here (its owner); a learner asks the leader below.
            let judge = !shared.quorum.is_learner();
            let mut r = if local {
                shared
                    .local_sessions()
                    .revalidate(sid, &req.passwd, timeout, shared.now_ms(), true)
            } else {
                shared
                    .sessions()
                    .revalidate(sid, &req.passwd, timeout, shared.now_ms(), judge)
            };
            // A learner asks the leader, which owns session liveness (REVALIDATE), also
            // about a session it does not know yet (its createSession may not have been
            // applied here yet when the client's first server died) or holds as closing
            // (a mark left by an earlier term: only the leader's answer counts).
            let ask = match r {
                Ok(()) | Err(SessionError::Unknown) => true,
                Err(SessionError::Closing) => !judge,
                Err(SessionError::BadPassword) => false,
            };
            if !local && ask {
                match shared.quorum.revalidate(sid, timeout).await {
                    SessionCheck::Local => {}
                    SessionCheck::Valid => r = Ok(()),
                    SessionCheck::Invalid => r = Err(SessionError::Unknown),
                    SessionCheck::NoAnswer => {
                        // The leader was lost meanwhile: the session may be alive, so
                        // no answer (not "expired"); the client tries another server.
                        tracing::info!(addr = %self.addr, "no revalidation answer for session 0x{sid:x}; closing without a reply");
                        return Err(ConnError::Closed("session revalidation got no answer"));
                    }
                }
            }
            match r {
                Ok(()) => {
                    self.local_session = local;
                    self.bind_session(sid, timeout);
                    // Per-session order across connections: writes the session sent on
                    // its previous connection may still be in the pipeline. Nothing on
                    // this connection is answered before they are applied (ZooKeeper
                    // orders a session's requests by session, not by connection).
                    self.session_barrier(sid).await?;
                    tracing::info!(addr = %self.addr, "re-established session 0x{sid:x} with negotiated timeout {timeout} ms");
                    self.send_connect_response(ConnectResponse {
                        protocol_version: 0,
                        timeout_ms: timeout,
                        session_id: sid.0,
                        passwd: Bytes::copy_from_slice(&password(sid)),
                        read_only: ro,
                    })
                    .await
                }
                Err(e) => {
                    let why = match e {
                        SessionError::BadPassword => "invalid session password",
                        SessionError::Unknown | SessionError::Closing => "session expired",
                    };
                    tracing::info!(addr = %self.addr, "invalid session 0x{sid:x} for client: {why}");
                    self.send_connect_response(invalid).await?;
                    Err(ConnError::Closed(why))
                }
            }
        }
    }

    /// The handshake while this member is in read-only mode (`crate::readonly`, ZooKeeper's
    /// `ReadOnlyZooKeeperServer`): only clients that sent `readOnly = true` are let in,
    /// with a session local to this member; a global session may not re-attach.
    async fn handshake_read_only(&mut self, req: ConnectRequest) -> Result<(), ConnError> {
        let shared = self.shared.clone();
        if req.read_only != Some(true) {
            tracing::info!(addr = %self.addr, "refusing session request for not-read-only client");
            return Err(ConnError::Closed(
                "not-read-only client refused in read-only mode",
            ));
        }
        self.refuse_if_ahead(&shared, Zxid(req.last_zxid_seen))?;
        let timeout = shared.config.negotiate_timeout(req.timeout_ms);
        let now = shared.now_ms();
        let sid = if req.session_id == 0 {
            let sid = shared.sessions().next_session_id();
            shared.local_sessions().add(sid, timeout, now);
            tracing::info!(addr = %self.addr, "established read-only local session 0x{sid:x} with negotiated timeout {timeout} ms");
            sid
        } else {
            let sid = SessionId(req.session_id);
            if shared.sessions().contains(sid) {
                tracing::info!(addr = %self.addr, "refusing global session 0x{sid:x} reconnection in read-only mode");
                return Err(ConnError::Closed(
                    "global session refused in read-only mode",
                ));
            }
            self.unbind_others(sid);
            let r = shared
                .local_sessions()
                .revalidate(sid, &req.passwd, timeout, now, true);
            if let Err(e) = r {
                tracing::info!(addr = %self.addr, "invalid read-only session 0x{sid:x} for client: {e}");
                self.send_connect_response(ConnectResponse {
                    protocol_version: 0,
                    timeout_ms: 0,
                    session_id: 0,
                    passwd: Bytes::from_static(&[0; PASSWORD_LEN]),
                    read_only: Some(true),
                })
                .await?;
                return Err(ConnError::Closed("session expired"));
            }
            tracing::info!(addr = %self.addr, "re-established read-only local session 0x{sid:x} with negotiated timeout {timeout} ms");
            sid
        };
        self.read_only = true;
        self.local_session = true;
        self.bind_session(sid, timeout);
        self.send_connect_response(ConnectResponse {
            protocol_version: 0,
            timeout_ms: timeout,
            session_id: sid.0,
            passwd: Bytes::copy_from_slice(&password(sid)),
            read_only: Some(true),
        })
        .await
    }

    /// localSessionsEnabled on this server (never on a standalone server, as ZooKeeper).
    fn local_sessions_on(&self) -> bool {
        self.shared.config.local_sessions_enabled && self.shared.quorum.is_distributed()
    }

    /// Upgrades this connection's local session to a global one
    /// (`localSessionsUpgradingEnabled`, ZooKeeper's `checkUpgradeSession`): the session
    /// leaves the local table and a createSession txn with its id and timeout enters the
    /// write path ahead of the request that needs it. Its `SessionCreated` answer is not
    /// waited for: the pipeline keeps the session's order.
    async fn upgrade_session(&mut self) -> Result<(), ConnError> {
        let sid = self.session;
        let registered = (self.shared.quorum.role() == crate::zab::Role::Leading).then(|| {
            // The leader's prep must know the session from here on: writes of the session
            // queued ahead of its createSession reach prep after it left the local table
            // (ZooKeeper's LeaderSessionTracker moves it to the global tracker in one
            // step). They were refused as SESSIONEXPIRED (session 46 break-it review: 50
            // of 50 pipelined setData + ephemeral create on the leader).
            UpgradeRegistration::new(self.shared.clone(), sid)
        });
        let timeout_ms = {
            let mut local = self.shared.local_sessions();
            let t = local.get(sid).map(|s| s.timeout_ms);
            local.remove(sid);
            t
        };
        let timeout_ms = timeout_ms.unwrap_or_else(|| {
            self.shared
                .clients
                .registry()
                .conns
                .get(&self.id)
                .map_or(0, |e| e.session_timeout_ms)
        });
        self.local_session = false;
        self.watch_writes();
        tracing::info!(addr = %self.addr, "upgrading local session 0x{sid:x} to a global session (timeout {timeout_ms} ms)");
        let job = Job {
            origin: Origin::Conn(self.id),
            session: sid,
            xid: 0,
            kind: JobKind::Write(WriteRequest::CreateSession { timeout_ms }),
            auth: self.auth.clone(),
            received: Instant::now(),
            admitted: Default::default(),
        };
        send_upgrade(&self.shared, job, registered).await
    }

    /// Passes a `sync` of `sid` through the write pipeline and waits for its answer: every
    /// job sent before it (e.g. by the session's previous connection) has then been
    /// applied. Used when a session re-attaches, before the ConnectResponse.
    ///
    /// The closed connections may still be handing jobs to the pipeline (frames they
    /// had read before the close reached them), so the sync goes only after each of
    /// them has ended ([`SUPERSEDED_WAIT`] at most).
    async fn session_barrier(&mut self, sid: SessionId) -> Result<(), ConnError> {
        for mut alive in std::mem::take(&mut self.superseded) {
            let ended = tokio::time::timeout(SUPERSEDED_WAIT, async {
                while alive.changed().await.is_ok() {}
            })
            .await;
            if ended.is_err() {
                tracing::warn!(addr = %self.addr, "the previous connection of session 0x{sid:x} did not end in {SUPERSEDED_WAIT:?}; re-attaching anyway");
            }
        }
        self.handshake_job(sid, JobKind::Sync(Some("/".to_owned())))
            .await
            .map(|_| ())
    }

    /// Sends a job of `sid` during the handshake and waits for its answer: the
    /// `SessionCreated` of a createSession or the `Done` of a sync (nothing else is
    /// outstanding on the connection yet). A `Close`, or the server stopping, ends the
    /// handshake.
    async fn handshake_job(&mut self, sid: SessionId, kind: JobKind) -> Result<ConnMsg, ConnError> {
        let job = Job {
            origin: Origin::Conn(self.id),
            session: sid,
            xid: 0,
            kind,
            auth: self.auth.clone(),
            received: Instant::now(),
            admitted: Default::default(),
        };
        self.shared
            .jobs
            .send(job)
            .await
            .map_err(|_| ConnError::Closed("server stopping"))?;
        loop {
            match self.msgs.recv().await {
                Some(m @ (ConnMsg::SessionCreated(_) | ConnMsg::Done { .. })) => return Ok(m),
                Some(ConnMsg::Close(why)) => return Err(ConnError::Closed(why)),
                Some(ConnMsg::Notify(f)) => self.stats.notify_taken(f.len()),
                // The lane is never armed during the handshake.
                Some(ConnMsg::Wake) => {}
                None => return Err(ConnError::Closed("server stopping")),
            }
        }
    }

    /// Closes every other connection bound to `sid` (client reconnect).
    fn unbind_others(&mut self, sid: SessionId) {
        let mut reg = self.shared.clients.registry();
        if let Some(old) = reg.by_session.get(&sid).copied() {
            if old != self.id {
                reg.by_session.remove(&sid);
                if let Some(e) = reg.conns.get_mut(&old) {
                    e.supersede("client reconnected on another connection");
                    self.superseded.push(e.alive.clone());
                }
            }
        }
    }

    /// Binds this connection to `sid`; any other connection bound to it is closed.
    fn bind_session(&mut self, sid: SessionId, timeout: i32) {
        self.session = sid;
        self.idle_limit = u64::try_from(timeout)
            .ok()
            .filter(|ms| *ms > 0)
            .map(std::time::Duration::from_millis);
        self.last_io = Instant::now();
        self.idle_check = self.idle_limit.map(|limit| {
            let at = self.last_io + limit + std::time::Duration::from_millis(1);
            Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(at)))
        });
        self.watch_writes();
        let mut reg = self.shared.clients.registry();
        if let Some(old) = reg.by_session.insert(sid, self.id) {
            if old != self.id {
                if let Some(e) = reg.conns.get_mut(&old) {
                    e.supersede("session moved to another connection");
                    self.superseded.push(e.alive.clone());
                }
            }
        }
        if let Some(e) = reg.conns.get_mut(&self.id) {
            e.session = Some(sid);
            e.session_timeout_ms = timeout;
            e.established_ms = crate::node::lifecycle::wall_ms();
        }
    }

    async fn on_msg(&mut self, m: ConnMsg) -> Result<(), ConnError> {
        match m {
            ConnMsg::Notify(f) => {
                self.stats.notify_taken(f.len());
                self.send_frame(&f).await
            }
            ConnMsg::Done { frame, close } => {
                self.mark_done(frame, close);
                Ok(())
            }
            ConnMsg::SessionCreated(_) => Ok(()),
            ConnMsg::Close(why) => Err(ConnError::Closed(why)),
            ConnMsg::Wake => Ok(()),
        }
    }

    fn mark_done(&mut self, frame: Vec<u8>, close_now: bool) {
        // The pipeline answers a connection's requests in the order they were handed to
        // it; a reply for any other request than the oldest unanswered one is a bug in
        // the write path (it would put a reply in another request's place).
        match self.order.mark_done(frame, close_now) {
            MarkDone::Stored => {}
            MarkDone::OutOfOrder { expected, got } => {
                tracing::error!(
                    conn = self.id,
                    expected,
                    got = ?got,
                    "pipeline reply out of the session's order"
                );
                debug_assert!(false, "pipeline reply out of order: {got:?} for {expected}");
            }
            MarkDone::NoneOutstanding => tracing::error!(
                conn = self.id,
                "pipeline reply with no outstanding request; dropped"
            ),
        }
    }

    /// Admits a pipeline request: handed to the pipeline now unless an earlier request of
    /// this session is still held or an earlier read still waits (then it is held, so it
    /// cannot take effect before that read).
    async fn submit(&mut self, xid: i32, kind: JobKind, close: bool) -> Result<(), ConnError> {
        if self.local_session && matches!(kind, JobKind::Write(WriteRequest::CloseSession)) {
            self.local(xid, Local::CloseLocalSession);
            return Ok(());
        }
        if self.local_session && !self.read_only {
            if let JobKind::Write(w) = &kind {
                if crate::session::local::needs_global_session(w) {
                    if !self.shared.config.local_sessions_upgrading_enabled {
                        if let Some(results) = crate::session::local::local_multi_refusal(w) {
                            self.local(xid, Local::FailedMulti(results));
                            return Ok(());
                        }
                        self.local(
                            xid,
                            Local::Error {
                                code: Some(ErrorCode::EphemeralOnLocalSession),
                                close: false,
                            },
                        );
                        return Ok(());
                    }
                    self.upgrade_session().await?;
                }
            }
        }
        if self.read_only {
            // ZooKeeper's ReadOnlyRequestProcessor: every write, sync and reconfig.
            self.local(
                xid,
                Local::Error {
                    code: Some(ErrorCode::NotReadOnly),
                    close: false,
                },
            );
            return Ok(());
        }
        let received = self.batch_at;
        let bytes = self.frame_len;
        if self.order.must_hold_pipeline() {
            self.order
                .hold_pipeline(xid, (kind, bytes), close, received);
            return Ok(());
        }
        self.send_job(xid, (kind, bytes), close, received).await
    }

    /// Hands a request of `bytes` (its frame) to the pipeline, once they fit in the
    /// pipeline's byte budget: until then this connection reads nothing more.
    async fn send_job(
        &mut self,
        xid: i32,
        (kind, bytes): (JobKind, usize),
        close: bool,
        received: Instant,
    ) -> Result<(), ConnError> {
        if !self.auth_enforced_ok() {
            // Answered in order, after the replies already due, then the connection
            // closes (enforce.auth); the request never reaches the pipeline.
            self.order.push_local(xid, Local::Unauthenticated, received);
            return Ok(());
        }
        let admitted = self.shared.pipeline_bytes.admit(bytes).await;
        let job = Job {
            origin: Origin::Conn(self.id),
            session: self.session,
            xid,
            kind,
            auth: self.auth.clone(),
            received,
            admitted,
        };
        self.shared
            .jobs
            .send(job)
            .await
            .map_err(|_| ConnError::Closed("server stopping"))?;
        self.order.push_pipeline(xid, close, received);
        Ok(())
    }

    /// Admits a request answered locally (in order, when it reaches the front).
    fn local(&mut self, xid: i32, what: Local) {
        let received = self.batch_at;
        self.order.local(xid, what, received);
    }

    /// Admits held requests whose turn has come: locals always (they wait in `pending`),
    /// pipeline requests once no read of this session is waiting.
    async fn release_held(&mut self) -> Result<(), ConnError> {
        while let Some(Released {
            xid,
            kind,
            close,
            received,
        }) = self.order.next_released()
        {
            self.send_job(xid, kind, close, received).await?;
        }
        Ok(())
    }

    async fn on_frame(&mut self, payload: &[u8]) -> Result<(), ConnError> {
        self.frame_len = payload.len();
        self.count_received();
        crate::metrics::hooks::request_received(payload.len());
        let shared = self.shared.clone();
        let max = shared.config.jute_max_buffer;
        let mut r = Reader::with_limit(payload, max);
        let hdr: RequestHeader = r
            .read()
            .map_err(|e| ConnError::Malformed("RequestHeader", e))?;
        let body = r.rest();
        self.count_request();
        crate::metrics::hooks::request_op(hdr.op);
        if hdr.xid != xid::PING {
            self.stats
                .last_cxid
                .store(hdr.xid as i64, Ordering::Relaxed);
        }
        self.stats.last_op.store(hdr.op, Ordering::Relaxed);
        match request::decode(&hdr, body, max) {
            Ok(Request::Write(w)) => self.submit(hdr.xid, JobKind::Write(w), false).await,
            Ok(Request::CloseSession) => {
                self.submit(hdr.xid, JobKind::Write(WriteRequest::CloseSession), true)
                    .await
            }
            Ok(Request::Sync(path)) => self.submit(hdr.xid, JobKind::Sync(path), false).await,
            // Checked and answered by the leader's prep (reconfig/request.rs).
            Ok(Request::Reconfig(r)) => self.submit(hdr.xid, JobKind::Reconfig(r), false).await,
            Ok(Request::Read(rq)) => {
                self.local(hdr.xid, Local::Read(rq));
                Ok(())
            }
            Ok(Request::Ping) => {
                self.local(hdr.xid, Local::Ping);
                Ok(())
            }
            Ok(Request::Auth(a)) => {
                self.local(hdr.xid, Local::Auth(a));
                Ok(())
            }
            Ok(Request::SetWatches(sw)) => {
                self.local(hdr.xid, Local::SetWatches(sw));
                Ok(())
            }
            Ok(Request::Sasl(t)) => {
                self.local(hdr.xid, Local::Sasl(t));
                Ok(())
            }
            Err(e) => {
                tracing::debug!(conn = self.id, op = hdr.op, "request refused: {e}");
                if e.log_error_txn {
                    let code = e.reply.unwrap_or(ErrorCode::MarshallingError);
                    let kind = JobKind::ErrorTxn {
                        code,
                        op: hdr.op,
                        body: Bytes::copy_from_slice(body),
                    };
                    self.submit(hdr.xid, kind, e.close).await
                } else {
                    self.local(
                        hdr.xid,
                        Local::Error {
                            code: e.reply,
                            close: e.close,
                        },
                    );
                    Ok(())
                }
            }
        }
    }

    /// Answers every request at the front of the queue that can be answered now, and
    /// admits held requests whose turn has come, until nothing more can move.
    async fn advance(&mut self) -> Result<(), ConnError> {
        loop {
            self.answer_front().await?;
            if self.order.held_len() == 0 {
                return Ok(());
            }
            let before = self.order.held_len();
            self.release_held().await?;
            if self.order.held_len() == before {
                return Ok(());
            }
        }
    }

    /// Answers every request at the front of `pending` that can be answered now.
    async fn answer_front(&mut self) -> Result<(), ConnError> {
        let mut clock = None;
        loop {
            let Some(slot) = self.order.pop_answerable() else {
                return Ok(());
            };
            let at =
                *clock.get_or_insert_with(|| (Instant::now(), crate::node::lifecycle::wall_ms()));
            self.last_io = at.0;
            match slot {
                Slot::Pipeline {
                    done: Some(frame),
                    close,
                    received,
                    ..
                } => {
                    self.send_frame(&frame).await?;
                    self.stats.reply_sent(&frame);
                    self.finish_request(received, true, at);
                    if close {
                        return Err(ConnError::Closed("session closed"));
                    }
                }
                Slot::Pipeline { done: None, .. } => return Ok(()),
                Slot::Local {
                    xid,
                    what,
                    received,
                } => {
                    let r = self.answer_local(xid, what).await;
                    self.finish_request(received, false, at);
                    r?;
                }
            }
        }
    }

    /// Takes everything already queued for this connection: notifications are returned
    /// (to be written before the caller's reply), pipeline replies fill their slots.
    fn drain_msgs(&mut self, notes: &mut Vec<Vec<u8>>) -> Option<&'static str> {
        let mut close = None;
        while let Ok(m) = self.msgs.try_recv() {
            match m {
                ConnMsg::Notify(f) => {
                    self.stats.notify_taken(f.len());
                    notes.push(f)
                }
                ConnMsg::Done { frame, close: c } => self.mark_done(frame, c),
                ConnMsg::SessionCreated(_) | ConnMsg::Wake => {}
                ConnMsg::Close(why) => close = Some(why),
            }
        }
        close
    }

    /// enforce.auth: whether this connection may make requests other than auth and SASL
    /// (it holds an id of an enforced scheme, or enforcement is off).
    fn auth_enforced_ok(&self) -> bool {
        match &self.shared.config.auth.enforce_schemes {
            None => true,
            Some(schemes) => self.auth.has_scheme(schemes),
        }
    }

    /// Refuses a request of a connection that has not authenticated with an enforced
    /// scheme, as ZooKeeper does: SESSIONCLOSEDREQUIRESASLAUTH, then the connection is
    /// closed (the session itself lives on until it expires).
    async fn refuse_unauthenticated(&mut self, xid: i32) -> Result<(), ConnError> {
        let schemes: Vec<&str> = self.auth.ids().map(|i| i.scheme.as_str()).collect();
        tracing::warn!(
            addr = %self.addr,
            session = %format_args!("0x{:x}", self.session),
            "client authentication scheme(s) {schemes:?} match none of the enforced schemes {:?}; closing the connection",
            self.shared.config.auth.enforce_schemes.as_deref().unwrap_or_default()
        );
        self.send_frame(&reply_frame(
            xid,
            Zxid::ZERO,
            ErrorCode::SessionClosedRequireSaslAuth.code(),
            &[],
        ))
        .await?;
        Err(ConnError::Closed("authentication required"))
    }

    /// A SetSASL request (ZooKeeper's `processSasl`).
    async fn answer_sasl(&mut self, xid: i32, token: &[u8]) -> Result<(), ConnError> {
        use crate::auth::sasl::SaslOutcome;
        let shared = self.shared.clone();
        let mut server = self.sasl.take().unwrap_or_default();
        let outcome = if shared.config.auth.kerberos.is_some() {
            // A GSSAPI step reads the keytab and the replay cache and runs the
            // library's crypto: blocking work, kept off the connection's runtime thread.
            let (settings, token) = (shared.clone(), token.to_vec());
            let (back, outcome) = tokio::task::spawn_blocking(move || {
                let outcome = server.evaluate(&settings.config.auth, &token);
                (server, outcome)
            })
            .await
            .map_err(|e| {
                tracing::error!(addr = %self.addr, "the SASL step failed: {e}");
                ConnError::Closed("SASL step failed")
            })?;
            server = back;
            outcome
        } else {
            server.evaluate(&shared.config.auth, token)
        };
        self.sasl = Some(server);
        let session = format!("0x{:x}", self.session);
        let (code, reply, close) = match outcome {
            SaslOutcome::Reply(t) => (ErrorCode::Ok, t, false),
            SaslOutcome::Authenticated {
                token,
                user,
                is_super,
            } => {
                Arc::make_mut(&mut self.auth).add_sasl(&user, is_super);
                if let Some(e) = shared.clients.registry().conns.get_mut(&self.id) {
                    e.auth = (*self.auth).clone();
                }
                let sup = if is_super { " (super user)" } else { "" };
                tracing::info!(addr = %self.addr, %session, "SASL authentication succeeded: adding sasl:{user}{sup}");
                shared.audit.auth(self.session, &self.auth, true);
                (ErrorCode::Ok, token, false)
            }
            SaslOutcome::FailedKept(e) => {
                shared.stats.auth_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(addr = %self.addr, %session, "SASL authentication failed: {e}; connection kept (allowSaslFailedClients)");
                (ErrorCode::Ok, None, false)
            }
            SaslOutcome::Refused { code, error } => {
                shared.stats.auth_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(addr = %self.addr, %session, "SASL authentication failed: {error}; closing the connection");
                shared.audit.auth(self.session, &self.auth, false);
                (code, None, true)
            }
        };
        let mut body = Vec::new();
        match reply {
            Some(t) => rzk_proto::records::SetSaslResponse { token: t.into() }.write(&mut body),
            None => (-1i32).write(&mut body),
        }
        self.send_frame(&reply_frame(xid, Zxid::ZERO, code.code(), &body))
            .await?;
        if close {
            return Err(ConnError::Closed("SASL authentication failed"));
        }
        Ok(())
    }

    async fn answer_local(&mut self, xid: i32, what: Local) -> Result<(), ConnError> {
        let shared = self.shared.clone();
        if !matches!(what, Local::Auth(_) | Local::Sasl(_)) && !self.auth_enforced_ok() {
            return self.refuse_unauthenticated(xid).await;
        }
        match what {
            Local::Ping => {
                let zxid = shared.tree().last_zxid();
                // ZooKeeper's `cons` lzxid is the zxid of the last reply, pings included.
                self.stats.last_zxid.store(zxid.0, Ordering::Relaxed);
                self.send_frame(&reply_frame(xid::PING, zxid, 0, &[])).await
            }
            Local::Read(rq) => {
                let mut notes = Vec::new();
                let (frame, close) = {
                    let tree = shared.tree();
                    let close = self.drain_msgs(&mut notes);
                    let frame = {
                        let mut w = shared.watches();
                        read::read_frame(xid, &tree, &mut w, self.id, &self.auth, self.session, &rq)
                    };
                    self.stats
                        .last_zxid
                        .store(tree.last_zxid().0, Ordering::Relaxed);
                    (frame, close)
                };
                for n in &notes {
                    self.send_frame(n).await?;
                }
                self.send_frame(&frame).await?;
                match close {
                    Some(why) => Err(ConnError::Closed(why)),
                    None => Ok(()),
                }
            }
            Local::SetWatches(sw) => {
                let mut notes = Vec::new();
                let (events, zxid, close) = {
                    let tree = shared.tree();
                    let close = self.drain_msgs(&mut notes);
                    let events = shared.watches().set_watches(self.id, &sw, &tree);
                    (events, tree.last_zxid(), close)
                };
                self.stats.last_zxid.store(zxid.0, Ordering::Relaxed);
                for n in &notes {
                    self.send_frame(n).await?;
                }
                for ev in &events {
                    self.send_frame(&notification_frame(ev)).await?;
                }
                self.send_frame(&reply_frame(xid, zxid, 0, &[])).await?;
                match close {
                    Some(why) => Err(ConnError::Closed(why)),
                    None => Ok(()),
                }
            }
            Local::Auth(a) => {
                let super_digest = shared.config.super_digest.as_deref();
                let added = if a.scheme == "x509" {
                    // ZooKeeper's x509 provider authenticates the connection's
                    // certificate, whatever the packet carries.
                    match &self.x509 {
                        Some(p) => {
                            Arc::make_mut(&mut self.auth).add_x509(&p.subject, p.super_user);
                            Ok(())
                        }
                        None => Err(ErrorCode::AuthFailed),
                    }
                } else {
                    Arc::make_mut(&mut self.auth).add_auth(&a.scheme, &a.auth, super_digest)
                };
                match added {
                    Ok(()) => {
                        if let Some(e) = shared.clients.registry().conns.get_mut(&self.id) {
                            e.auth = (*self.auth).clone();
                        }
                        tracing::info!(addr = %self.addr, session = %format_args!("0x{:x}", self.session), "auth success for scheme {}", a.scheme);
                        shared.audit.auth(self.session, &self.auth, true);
                        self.send_frame(&reply_frame(xid, Zxid::ZERO, 0, &[])).await
                    }
                    Err(_) => {
                        shared.stats.auth_failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(addr = %self.addr, "authentication failed for scheme {}", a.scheme);
                        shared.audit.auth(self.session, &self.auth, false);
                        self.send_frame(&reply_frame(
                            xid,
                            Zxid::ZERO,
                            ErrorCode::AuthFailed.code(),
                            &[],
                        ))
                        .await?;
                        Err(ConnError::Closed("auth failed"))
                    }
                }
            }
            Local::Sasl(t) => self.answer_sasl(xid, &t.token).await,
            Local::Unauthenticated => self.refuse_unauthenticated(xid).await,
            Local::CloseLocalSession => {
                shared.local_sessions().remove(self.session);
                tracing::info!(addr = %self.addr, "closed local session 0x{:x}", self.session);
                let zxid = shared.tree().last_zxid();
                self.send_frame(&reply_frame(xid, zxid, 0, &[])).await?;
                Err(ConnError::Closed("session closed"))
            }
            Local::FailedMulti(results) => {
                let mut body = Vec::new();
                rzk_proto::multi::MultiResponse::write_results(&results, &mut body);
                let zxid = shared.tree().last_zxid();
                self.send_frame(&reply_frame(xid, zxid, 0, &body)).await
            }
            Local::Error { code, close } => {
                if let Some(code) = code {
                    // An unknown opcode is answered with zxid -1, as ZooKeeper's
                    // UnimplementedRequestProcessor (the request's zxid, never set);
                    // every other refusal with the last zxid.
                    let zxid = if code == ErrorCode::Unimplemented {
                        Zxid(-1)
                    } else {
                        shared.tree().last_zxid()
                    };
                    self.send_frame(&reply_frame(xid, zxid, code.code(), &[]))
                        .await?;
                }
                if close {
                    Err(ConnError::Closed("request refused"))
                } else {
                    Ok(())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::clients::{ConnEntry, ConnTx};

    /// A connection's task that panics (tokio drops its future while unwinding) gives
    /// back what it registered: before [`Registered`], its registry entry, session
    /// binding and per-IP slot stayed for good.
    #[tokio::test]
    async fn a_connection_task_that_panics_gives_back_its_registry_entry() {
        let (jobs, _) = mpsc::channel(1);
        let (shared, _writer) = Shared::new(
            crate::config::Config::default(),
            crate::tree::DataTree::new(),
            jobs,
        );
        let shared = Arc::new(shared);
        let addr: SocketAddr = "127.0.0.9:5000".parse().expect("an address");
        let session = SessionId(7);
        let id = shared.clients.next_conn_id();
        let (tx, _rx) = mpsc::unbounded_channel();
        let (_alive_tx, alive) = watch::channel(());
        {
            // As the accept loop registers a connection, bound to a session.
            let mut reg = shared.clients.registry();
            *reg.per_ip.entry(addr.ip()).or_insert(0) += 1;
            reg.conns.insert(
                id,
                ConnEntry {
                    tx: ConnTx::new(tx, Arc::new(ReplyLane::default())),
                    addr,
                    session: Some(session),
                    session_timeout_ms: 1_000,
                    auth: crate::auth::AuthInfo::for_ip(&addr.ip().to_string()),
                    stats: Arc::new(ConnStats::new()),
                    established_ms: 0,
                    secure: false,
                    alive,
                },
            );
            reg.by_session.insert(session, id);
        }
        let task = tokio::spawn({
            let shared = shared.clone();
            async move {
                let _registered = Registered::new(shared, id, addr);
                panic!("a fault in the connection's task");
            }
        });
        assert!(task.await.is_err(), "the task panicked");
        {
            let reg = shared.clients.registry();
            assert!(reg.conns.is_empty(), "registry entry left");
            assert!(reg.by_session.is_empty(), "session binding left");
            assert!(reg.per_ip.is_empty(), "per-IP slot left");
        }
        // Idempotent: another connection from the same address keeps its slot.
        shared.clients.registry().per_ip.insert(addr.ip(), 1);
        deregister(&shared, id, addr);
        assert_eq!(shared.clients.registry().per_ip.get(&addr.ip()), Some(&1));
    }

    fn upgrade_job(session: SessionId) -> Job {
        Job {
            origin: Origin::Conn(1),
            session,
            xid: 0,
            kind: JobKind::Write(WriteRequest::CreateSession { timeout_ms: 4000 }),
            auth: Arc::new(crate::auth::AuthInfo::for_ip("127.0.0.9")),
            received: Instant::now(),
            admitted: Default::default(),
        }
    }

    /// A local session's upgrade on the leader registers its createSession with the
    /// session table before the job reaches prep; when the job never gets there (the
    /// connection's task ends while the job queue is full, or the server stops) the
    /// registration goes with it (review: it stayed until the next change of
    /// leadership). One that reached the driver stays for its prep.
    #[tokio::test]
    async fn an_upgrade_that_never_reaches_prep_leaves_no_proposal() {
        let (jobs, mut queue) = mpsc::channel(1);
        let (shared, _writer) = Shared::new(
            crate::config::Config::default(),
            crate::tree::DataTree::new(),
            jobs,
        );
        let shared = Arc::new(shared);
        // The driver is busy: the queue is full.
        shared.jobs.try_send(upgrade_job(SessionId(0x50))).unwrap();
        let mut waiting = Vec::new();
        for n in 0..20 {
            let sid = SessionId(0x51 + n);
            let task = tokio::spawn({
                let shared = shared.clone();
                async move {
                    let r = UpgradeRegistration::new(shared.clone(), sid);
                    send_upgrade(&shared, upgrade_job(sid), Some(r)).await
                }
            });
            waiting.push((sid, task));
        }
        while shared.sessions().proposed_creates() < 20 {
            tokio::task::yield_now().await;
        }
        // Their connections end (superseded, overflowed) while they wait.
        for (sid, task) in waiting {
            task.abort();
            assert!(task.await.is_err(), "0x{sid:x} was not waiting");
            assert!(!shared.sessions().knows(sid), "0x{sid:x} still proposed");
        }
        assert_eq!(shared.sessions().proposed_creates(), 0);
        // One handed over stays for prep.
        assert!(queue.recv().await.is_some());
        let sid = SessionId(0x70);
        let r = UpgradeRegistration::new(shared.clone(), sid);
        assert!(send_upgrade(&shared, upgrade_job(sid), Some(r))
            .await
            .is_ok());
        assert!(shared.sessions().knows(sid));
        // The server stopping: the job cannot be handed over.
        drop(queue);
        let sid = SessionId(0x71);
        let r = UpgradeRegistration::new(shared.clone(), sid);
        assert!(send_upgrade(&shared, upgrade_job(sid), Some(r))
            .await
            .is_err());
        assert!(!shared.sessions().knows(sid));
        assert_eq!(shared.sessions().proposed_creates(), 1);
    }
}
