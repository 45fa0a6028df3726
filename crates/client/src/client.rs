//! The public [`Client`] handle: every ZooKeeper operation as an async method.
//!
//! A `Client` is a cheap clone of a handle to one session task. This module encodes
//! requests (applying the chroot and validating paths), decodes replies, and turns
//! watch registrations into [`OneshotWatch`] futures / [`WatchStream`]s. It never
//! touches the socket and never retries on its own: CONNECTIONLOSS is returned to the caller.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rzk_proto::multi::{MultiRequest, MultiResponse};
use rzk_proto::records::*;
use rzk_proto::{Data, Jute, OpCode};
use tokio::sync::{mpsc, oneshot, watch};

use crate::connect_string::{prepend_chroot, strip_chroot, ConnectString};
use crate::error::{Error, Result};
use crate::multi::{convert_read_results, convert_results, Op, OpResult, ReadOp, ReadResult};
use crate::session::{self, Command, Counters, Reply, Request, SessionConfig, Shared};
use crate::types::{Acl, AddWatchMode, ClientInfo, CreateMode, SessionState, Stat, WatcherType};
use crate::watch::{oneshot_pair, stream_pair, OneshotWatch, WatchReg, WatchStream};

/// Session timeout used when none is given (zkCli's default).
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    connect: String,
    session_timeout: Duration,
    connect_timeout: Option<Duration>,
    can_be_read_only: bool,
    resume: Option<(i64, Vec<u8>)>,
    tls: Option<crate::tls::TlsOptions>,
    sasl: Option<crate::sasl::SaslOptions>,
}

impl ClientBuilder {
    /// Log in with SASL on every connection, before any other request (ZooKeeper's
    /// `ZooKeeperSaslClient`). A refused login ends the session with state `AuthFailed`.
    pub fn sasl(mut self, sasl: crate::sasl::SaslOptions) -> Self {
        self.sasl = Some(sasl);
        self
    }
    /// Log in with SASL DIGEST-MD5 as `user` (a user of the server's JAAS `Server`
    /// section), as a JAAS `Client` section with ZooKeeper's `DigestLoginModule` would.
    pub fn sasl_digest(self, user: &str, password: &str) -> Self {
        self.sasl(crate::sasl::SaslOptions::digest(
            user,
            crate::sasl::Secret::new(password),
        ))
    }
    /// Connect over TLS (a server's `secureClientPort`, or a port with
    /// `client.portUnification`).
    pub fn tls(mut self, tls: crate::tls::TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }
    /// Requested session timeout (the server clamps it to its min/max).
    pub fn session_timeout(mut self, t: Duration) -> Self {
        self.session_timeout = t;
        self
    }
    /// How long [`ClientBuilder::connect`] waits for the first connection
    /// (default: the session timeout).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = Some(t);
        self
    }
    /// Accept read-only servers (state `ConnectedReadOnly`).
    pub fn can_be_read_only(mut self, yes: bool) -> Self {
        self.can_be_read_only = yes;
        self
    }
    /// Resume an existing session (id and password) instead of creating one.
    pub fn resume(mut self, session_id: i64, password: &[u8]) -> Self {
        self.resume = Some((session_id, password.to_vec()));
        self
    }

    /// Starts the session task and waits until it is connected (at most the connect
    /// timeout).
    ///
    /// # Errors
    /// [`Error::InvalidConnectString`]; [`Error::Timeout`] if no server accepted the
    /// session in time (also when every TLS handshake failed);
    /// [`Error::AuthFailed`] or [`Error::SessionExpired`] if the session ended at once.
    pub async fn connect(self) -> Result<Client> {
        let client = self.start()?;
        let wait = self.connect_timeout.unwrap_or(self.session_timeout);
        client.wait_connected(wait).await?;
        Ok(client)
    }

    /// Starts the session task without waiting for a connection; watch
    /// [`Client::state_watcher`] or call [`Client::wait_connected`].
    ///
    /// # Errors
    /// [`Error::InvalidConnectString`] if the connect string cannot be parsed.
    pub fn start(&self) -> Result<Client> {
        let cs = ConnectString::parse(&self.connect)?;
        let chroot = cs.chroot.clone();
        let started = session::start(SessionConfig {
            connect: cs,
            session_timeout: self.session_timeout,
            can_be_read_only: self.can_be_read_only,
            resume: self.resume.clone(),
            tls: self.tls.clone(),
            sasl: self.sasl.clone(),
        });
        Ok(Client {
            inner: Arc::new(Inner {
                tx: started.tx,
                state: started.state,
                shared: started.shared,
                chroot,
            }),
        })
    }
}

struct Inner {
    tx: tokio::sync::mpsc::UnboundedSender<Command>,
    state: watch::Receiver<SessionState>,
    shared: Arc<Shared>,
    chroot: Option<String>,
}

/// A handle to one ZooKeeper session (Java: `org.apache.zookeeper.ZooKeeper`). Clone it
/// freely; the session closes when [`Client::close`] is called or the last clone is dropped.
///
/// Paths are absolute and relative to the chroot of the connect string, if any.
///
/// # Errors
/// Every operation may fail with:
/// * [`Error::InvalidPath`] / [`Error::InvalidArgument`]: rejected before sending;
/// * [`Error::ConnectionLoss`]: the connection broke before the reply arrived (the
///   operation may or may not have been applied; the session reconnects by itself), or
///   the call was made while disconnected and the next connect attempt failed too (a
///   call made while the client waits between attempts is kept for the next one, as in
///   the Java client);
/// * [`Error::SessionExpired`], [`Error::AuthFailed`], [`Error::Closed`]: the session
///   has ended; every later call fails the same way;
/// * [`Error::NoAuth`]: the node's ACL does not allow the operation for this session's
///   identities;
/// * [`Error::Decode`]: the server's reply could not be decoded.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session_id", &format_args!("0x{:x}", self.session_id()))
            .field("state", &self.state())
            .finish()
    }
}

fn version_arg(v: Option<i32>) -> i32 {
    v.unwrap_or(-1)
}

impl Client {
    /// A builder for `connect_string` (`host:port[,host:port...][/chroot]`), to set TLS,
    /// SASL, timeouts or read-only mode before connecting.
    ///
    /// Java: the `ZooKeeper` constructors and `ZKClientConfig`; Curator's
    /// `CuratorFrameworkFactory.builder()`.
    pub fn builder(connect_string: &str) -> ClientBuilder {
        ClientBuilder {
            connect: connect_string.to_owned(),
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            connect_timeout: None,
            can_be_read_only: false,
            resume: None,
            tls: None,
            sasl: None,
        }
    }

    /// Connects with the requested `session_timeout` (the server clamps it to its
    /// `minSessionTimeout`/`maxSessionTimeout`) and waits for the first connection, at most
    /// `session_timeout`.
    ///
    /// Java: `new ZooKeeper(connectString, sessionTimeout, watcher)` followed by waiting for
    /// `SyncConnected`.
    ///
    /// # Errors
    /// [`Error::InvalidConnectString`]; [`Error::Timeout`] if no server accepted the session in
    /// time; [`Error::AuthFailed`] or [`Error::SessionExpired`] if the session ended at once.
    pub async fn connect(connect_string: &str, session_timeout: Duration) -> Result<Client> {
        Client::builder(connect_string)
            .session_timeout(session_timeout)
            .connect()
            .await
    }

    /// Waits until the session is connected (read-write or read-only).
    ///
    /// # Errors
    /// [`Error::Timeout`] if `wait` passes; [`Error::SessionExpired`], [`Error::AuthFailed`]
    /// or [`Error::Closed`] if the session ends first.
    pub async fn wait_connected(&self, wait: Duration) -> Result<()> {
        let mut rx = self.inner.state.clone();
        let r =
            tokio::time::timeout(wait, rx.wait_for(|s| s.is_connected() || s.is_terminal())).await;
        match r {
            Err(_) => Err(Error::Timeout),
            Ok(Err(_)) => Err(Error::Closed),
            Ok(Ok(s)) => match *s {
                s if s.is_connected() => Ok(()),
                SessionState::Expired => Err(Error::SessionExpired),
                SessionState::AuthFailed => Err(Error::AuthFailed),
                _ => Err(Error::Closed),
            },
        }
    }

    /// The current session state (Java: `ZooKeeper.getState()`).
    pub fn state(&self) -> SessionState {
        *self.inner.state.borrow()
    }

    /// A receiver of session state changes (`changed().await`, `borrow()`); the equivalent of
    /// the session events (`KeeperState`) a Java default watcher receives. `changed()`
    /// waits for the first change after this call: the state current now counts as seen
    /// (as a receiver from tokio's `Sender::subscribe`).
    pub fn state_watcher(&self) -> watch::Receiver<SessionState> {
        let mut rx = self.inner.state.clone();
        rx.mark_unchanged();
        rx
    }

    /// Every watch notification that reaches at least one of this client's watches, once
    /// however many of them it fires, in the order the server sent them (Java: what one
    /// default `Watcher` that every watch was registered with sees of node events; the
    /// session's own state changes are in [`Client::state_watcher`]). Each watch still
    /// gets its event; this is a copy for a caller that shows them all in order, as zkCli
    /// does. A later call replaces the earlier receiver, whose stream then ends. Events of
    /// notifications that reached no live watch (a dropped [`OneshotWatch`]) are not in it.
    pub fn notifications(&self) -> mpsc::UnboundedReceiver<crate::WatchedEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut tap) = self.inner.shared.notification_tap.lock() {
            *tap = Some(tx);
        }
        rx
    }

    /// The session id (0 before the first connection); Java: `ZooKeeper.getSessionId()`.
    pub fn session_id(&self) -> i64 {
        self.inner.shared.session_id()
    }

    /// The session password, to resume the session from another process with
    /// [`ClientBuilder::resume`]; Java: `ZooKeeper.getSessionPasswd()`.
    pub fn session_password(&self) -> Vec<u8> {
        self.inner
            .shared
            .password
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    /// The negotiated session timeout (0 before the first connection).
    pub fn session_timeout(&self) -> Duration {
        let ms = self
            .inner
            .shared
            .negotiated_timeout_ms
            .load(Ordering::Relaxed);
        Duration::from_millis(ms.max(0) as u64)
    }

    /// A time at or before which a server last heard from this session (the send time of
    /// the latest request, ping or handshake whose answer arrived; `None` before the
    /// first connection), so a client cut off from the servers can tell when its session
    /// may have ended without waiting to notice the disconnect. Not a whole session
    /// timeout after it: the leader decides expiry, and a follower relays its clients'
    /// activity only with its answer to the leader's next ping (every half tick), so
    /// with the follower stalled the leader may expire the session from two thirds of a
    /// timeout after this time (the recipes count half: `recipes::LostReason`).
    pub fn heard_at(&self) -> Option<tokio::time::Instant> {
        self.inner.shared.heard_at.lock().ok().and_then(|h| *h)
    }

    /// The highest zxid seen in a reply.
    pub fn last_zxid(&self) -> i64 {
        self.inner.shared.last_zxid.load(Ordering::Relaxed)
    }

    /// Why the session ended with [`crate::SessionState::AuthFailed`]: the server refused its
    /// SASL login, or the client could not log in (a Kerberos ticket it could not get,
    /// in the Kerberos library's words). `None` while no login failed. Never holds a
    /// password or a token.
    pub fn auth_failure(&self) -> Option<String> {
        self.inner
            .shared
            .auth_failure
            .lock()
            .ok()
            .and_then(|f| f.clone())
    }

    /// `host:port` of the current (or last) server.
    pub fn connected_host(&self) -> String {
        self.inner
            .shared
            .connected_host
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default()
    }

    /// The chroot suffix of the connect string (`/app` in `host:2181/app`), if any.
    pub fn chroot(&self) -> Option<&str> {
        self.inner.chroot.as_deref()
    }

    /// Request / notification counters of this session.
    pub fn counters(&self) -> &Counters {
        &self.inner.shared.counters
    }

    fn ended_error(&self) -> Error {
        match self.state() {
            SessionState::Expired => Error::SessionExpired,
            SessionState::AuthFailed => Error::AuthFailed,
            _ => Error::Closed,
        }
    }

    async fn call(&self, op: OpCode, body: Vec<u8>, watch: Option<WatchReg>) -> Result<Reply> {
        let (tx, rx) = oneshot::channel();
        let req = Request {
            op,
            body,
            watch,
            reply: tx,
        };
        if self.inner.tx.send(Command::Request(req)).is_err() {
            return Err(self.ended_error());
        }
        rx.await.map_err(|_| self.ended_error())?
    }

    fn server_path(&self, path: &str) -> Result<String> {
        rzk_proto::path::validate(path, false)?;
        Ok(prepend_chroot(self.chroot(), path))
    }

    fn client_path(&self, server_path: &str) -> String {
        strip_chroot(self.chroot(), server_path)
    }

    // ---- writes -------------------------------------------------------------

    /// Creates a node at `path` with `data`, `acl` and `mode`; returns its path (with the
    /// sequence suffix for sequential modes). TTL modes need [`Client::create_ttl`].
    ///
    /// Java: `ZooKeeper.create(path, data, acl, createMode)`.
    ///
    /// # Errors
    /// [`Error::NodeExists`]; [`Error::NoNode`] if the parent is missing;
    /// [`Error::NoChildrenForEphemerals`] under an ephemeral parent; [`Error::InvalidAcl`];
    /// [`Error::InvalidArgument`] for a TTL mode.
    /// The errors listed on [`Client`] too.
    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<String> {
        Ok(self.create2(path, data, acl, mode).await?.0)
    }

    /// Creates a node and returns its path and stat (opcode create2, or createContainer for
    /// [`CreateMode::Container`]).
    ///
    /// Java: `ZooKeeper.create(path, data, acl, createMode, stat)`.
    ///
    /// # Errors
    /// As [`Client::create`].
    pub async fn create2(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<(String, Stat)> {
        self.create_opt(path, Some(data), acl, mode).await
    }

    /// Like [`Client::create2`]; `data: None` stores null data (what zkCli's `create /x`
    /// without data does), which [`Client::get_data_opt`] returns as `None`.
    ///
    /// # Errors
    /// As [`Client::create`].
    pub async fn create_opt(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<(String, Stat)> {
        if mode.is_ttl() {
            return Err(Error::InvalidArgument(
                "TTL create modes need create_ttl".into(),
            ));
        }
        rzk_proto::path::validate(path, mode.is_sequential())?;
        let req = CreateRequest {
            path: prepend_chroot(self.chroot(), path),
            data: Data::from(data),
            acl: acl.to_vec(),
            flags: mode as i32,
        };
        let op = if mode.is_container() {
            OpCode::CreateContainer
        } else {
            OpCode::Create2
        };
        let r = self.call(op, req.to_bytes(), None).await?;
        let resp = Create2Response::from_bytes(&r.body)?;
        Ok((self.client_path(&resp.path), resp.stat))
    }

    /// Creates a node that the server deletes once it has had no children for `ttl` and was
    /// not modified for `ttl` (`mode` must be `PersistentWithTtl` or
    /// `PersistentSequentialWithTtl`); returns its path and stat. The server must run with
    /// `zookeeper.extendedTypesEnabled=true`.
    ///
    /// Java: `ZooKeeper.create(path, data, acl, createMode, stat, ttl)`.
    ///
    /// # Errors
    /// As [`Client::create`]; [`Error::InvalidArgument`] for a mode without TTL or a TTL out of
    /// range; [`Error::Unimplemented`] if the server has TTL nodes disabled.
    pub async fn create_ttl(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
        ttl: Duration,
    ) -> Result<(String, Stat)> {
        self.create_ttl_opt(path, Some(data), acl, mode, ttl).await
    }

    /// Like [`Client::create_ttl`]; `data: None` stores null data.
    ///
    /// # Errors
    /// As [`Client::create_ttl`].
    pub async fn create_ttl_opt(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        mode: CreateMode,
        ttl: Duration,
    ) -> Result<(String, Stat)> {
        if !mode.is_ttl() {
            return Err(Error::InvalidArgument(format!(
                "{mode:?} is not a TTL mode"
            )));
        }
        rzk_proto::path::validate(path, mode.is_sequential())?;
        let req = CreateTtlRequest {
            path: prepend_chroot(self.chroot(), path),
            data: Data::from(data),
            acl: acl.to_vec(),
            flags: mode as i32,
            ttl: ttl.as_millis().min(i64::MAX as u128) as i64,
        };
        let r = self.call(OpCode::CreateTtl, req.to_bytes(), None).await?;
        let resp = Create2Response::from_bytes(&r.body)?;
        Ok((self.client_path(&resp.path), resp.stat))
    }

    /// Deletes the node at `path` if its data version is `version` (`None` matches any
    /// version).
    ///
    /// Java: `ZooKeeper.delete(path, version)` (`-1` there is `None` here). As there,
    /// `/` is sent as `/` under a chroot too, so it fails as deleting the root does
    /// instead of deleting the chroot's node.
    ///
    /// # Errors
    /// [`Error::NoNode`]; [`Error::BadVersion`]; [`Error::NotEmpty`] if it has children;
    /// [`Error::BadArguments`] for `/`.
    ///
    /// The errors listed on [`Client`] too.
    pub async fn delete(&self, path: &str, version: Option<i32>) -> Result<()> {
        let path = if path == "/" {
            path.to_owned()
        } else {
            self.server_path(path)?
        };
        let req = DeleteRequest {
            path,
            version: version_arg(version),
        };
        self.call(OpCode::Delete, req.to_bytes(), None).await?;
        Ok(())
    }

    /// Replaces the data of `path` if its data version is `version` (`None` matches any
    /// version) and returns the node's new stat.
    ///
    /// Java: `ZooKeeper.setData(path, data, version)`.
    ///
    /// # Errors
    /// [`Error::NoNode`]; [`Error::BadVersion`]; [`Error::ConnectionLoss`] if the request
    /// is larger than the server's `jute.maxbuffer`: the server closes the connection
    /// without an answer (ZooKeeper does the same), the session reconnects, and nothing
    /// was changed.
    /// The errors listed on [`Client`] too.
    pub async fn set_data(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat> {
        self.set_data_opt(path, Some(data), version).await
    }

    /// Like [`Client::set_data`]; `data: None` sets null data.
    ///
    /// # Errors
    /// As [`Client::set_data`].
    pub async fn set_data_opt(
        &self,
        path: &str,
        data: Option<&[u8]>,
        version: Option<i32>,
    ) -> Result<Stat> {
        let req = SetDataRequest {
            path: self.server_path(path)?,
            data: Data::from(data),
            version: version_arg(version),
        };
        let r = self.call(OpCode::SetData, req.to_bytes(), None).await?;
        Ok(SetDataResponse::from_bytes(&r.body)?.stat)
    }

    /// Replaces the ACL of `path` if its ACL version (`aversion`) is `version` (`None`
    /// matches any) and returns the node's new stat.
    ///
    /// Java: `ZooKeeper.setACL(path, acl, aclVersion)`.
    ///
    /// # Errors
    /// [`Error::NoNode`]; [`Error::BadVersion`]; [`Error::InvalidAcl`] for an empty or
    /// malformed ACL.
    /// The errors listed on [`Client`] too.
    pub async fn set_acl(&self, path: &str, acl: &[Acl], version: Option<i32>) -> Result<Stat> {
        let req = SetAclRequest {
            path: self.server_path(path)?,
            acl: acl.to_vec(),
            version: version_arg(version),
        };
        let r = self.call(OpCode::SetAcl, req.to_bytes(), None).await?;
        Ok(SetAclResponse::from_bytes(&r.body)?.stat)
    }

    /// Runs `ops` as one transaction: all are applied or none. Returns one result per op.
    ///
    /// Java: `ZooKeeper.multi(ops)`; Curator's `transaction()`.
    ///
    /// # Errors
    /// [`Error::Multi`] naming the first failing op, its error and the server's per-op
    /// results; [`Error::InvalidPath`] if a path is invalid.
    /// The errors listed on [`Client`] too.
    pub async fn multi(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let req = MultiRequest {
            ops: ops
                .iter()
                .map(|o| o.to_wire(self.chroot()))
                .collect::<Result<_>>()?,
        };
        let r = self.call(OpCode::Multi, req.to_bytes(), None).await?;
        let resp = MultiResponse::from_bytes(&r.body)?;
        convert_results(self.chroot(), resp.results)
    }

    // ---- reads --------------------------------------------------------------

    /// The stat of `path`, or `None` if it does not exist.
    ///
    /// Java: `ZooKeeper.exists(path, false)`.
    ///
    /// # Errors
    /// The errors listed on [`Client`] too.
    pub async fn exists(&self, path: &str) -> Result<Option<Stat>> {
        self.exists_inner(path, None).await
    }

    /// Like [`Client::exists`], also leaving a one-shot watch that fires when the node is
    /// created, deleted or its data changes (also when it did not exist).
    ///
    /// Java: `ZooKeeper.exists(path, watcher)`.
    ///
    /// # Errors
    /// The errors listed on [`Client`] too.
    pub async fn exists_w(&self, path: &str) -> Result<(Option<Stat>, OneshotWatch)> {
        let sp = self.server_path(path)?;
        let (tx, w) = oneshot_pair();
        let s = self
            .exists_inner(path, Some(WatchReg::Exists(sp, tx)))
            .await?;
        Ok((s, w))
    }

    async fn exists_inner(&self, path: &str, watch: Option<WatchReg>) -> Result<Option<Stat>> {
        let req = ExistsRequest {
            path: self.server_path(path)?,
            watch: watch.is_some(),
        };
        match self.call(OpCode::Exists, req.to_bytes(), watch).await {
            Ok(r) => Ok(Some(ExistsResponse::from_bytes(&r.body)?.stat)),
            Err(Error::NoNode) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The data and stat of `path`; null data reads as empty (see [`Client::get_data_opt`]).
    ///
    /// Java: `ZooKeeper.getData(path, false, stat)`.
    ///
    /// # Errors
    /// [`Error::NoNode`].
    /// The errors listed on [`Client`] too.
    pub async fn get_data(&self, path: &str) -> Result<(Vec<u8>, Stat)> {
        let (d, s) = self.get_data_inner(path, None).await?;
        Ok((d.unwrap_or_default(), s))
    }

    /// Like [`Client::get_data`], also leaving a one-shot watch that fires when the data
    /// changes or the node is deleted.
    ///
    /// Java: `ZooKeeper.getData(path, watcher, stat)`.
    ///
    /// # Errors
    /// As [`Client::get_data`] (no watch is left on error).
    pub async fn get_data_w(&self, path: &str) -> Result<(Vec<u8>, Stat, OneshotWatch)> {
        let (d, s, w) = self.get_data_opt_w(path).await?;
        Ok((d.unwrap_or_default(), s, w))
    }

    /// The data and stat of `path`, `None` for null data (a node created or set without
    /// data, which ZooKeeper keeps apart from empty data).
    ///
    /// # Errors
    /// As [`Client::get_data`].
    pub async fn get_data_opt(&self, path: &str) -> Result<(Option<Vec<u8>>, Stat)> {
        self.get_data_inner(path, None).await
    }

    /// Like [`Client::get_data_opt`], also leaving a data watch as [`Client::get_data_w`].
    ///
    /// # Errors
    /// As [`Client::get_data`].
    pub async fn get_data_opt_w(
        &self,
        path: &str,
    ) -> Result<(Option<Vec<u8>>, Stat, OneshotWatch)> {
        let sp = self.server_path(path)?;
        let (tx, w) = oneshot_pair();
        let (d, s) = self
            .get_data_inner(path, Some(WatchReg::Data(sp, tx)))
            .await?;
        Ok((d, s, w))
    }

    async fn get_data_inner(
        &self,
        path: &str,
        watch: Option<WatchReg>,
    ) -> Result<(Option<Vec<u8>>, Stat)> {
        let req = GetDataRequest {
            path: self.server_path(path)?,
            watch: watch.is_some(),
        };
        let r = self.call(OpCode::GetData, req.to_bytes(), watch).await?;
        let resp = GetDataResponse::from_bytes(&r.body)?;
        Ok((resp.data.into_option().map(|b| b.to_vec()), resp.stat))
    }

    /// The ACL and stat of `path`.
    ///
    /// Java: `ZooKeeper.getACL(path, stat)`.
    ///
    /// # Errors
    /// [`Error::NoNode`].
    /// The errors listed on [`Client`] too.
    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat)> {
        let req = GetAclRequest {
            path: self.server_path(path)?,
        };
        let r = self.call(OpCode::GetAcl, req.to_bytes(), None).await?;
        let resp = GetAclResponse::from_bytes(&r.body)?;
        Ok((resp.acl, resp.stat))
    }

    /// The child names of `path` (opcode getChildren), in the server's (unspecified) order.
    ///
    /// Java: `ZooKeeper.getChildren(path, false)`.
    ///
    /// # Errors
    /// [`Error::NoNode`].
    /// The errors listed on [`Client`] too.
    pub async fn get_children(&self, path: &str) -> Result<Vec<String>> {
        let req = GetChildrenRequest {
            path: self.server_path(path)?,
            watch: false,
        };
        let r = self.call(OpCode::GetChildren, req.to_bytes(), None).await?;
        Ok(GetChildrenResponse::from_bytes(&r.body)?.children)
    }

    /// The child names of `path` and a one-shot watch that fires when a child is created or
    /// deleted or `path` itself is deleted.
    ///
    /// Java: `ZooKeeper.getChildren(path, watcher)`.
    ///
    /// # Errors
    /// As [`Client::get_children`].
    pub async fn get_children_w(&self, path: &str) -> Result<(Vec<String>, OneshotWatch)> {
        let (c, _, w) = self.get_children2_w(path).await?;
        Ok((c, w))
    }

    /// The child names and the stat of `path` (opcode getChildren2).
    ///
    /// Java: `ZooKeeper.getChildren(path, false, stat)`.
    ///
    /// # Errors
    /// As [`Client::get_children`].
    pub async fn get_children2(&self, path: &str) -> Result<(Vec<String>, Stat)> {
        self.get_children2_inner(path, None).await
    }

    /// The child names and stat of `path` and a child watch as [`Client::get_children_w`].
    ///
    /// Java: `ZooKeeper.getChildren(path, watcher, stat)`.
    ///
    /// # Errors
    /// As [`Client::get_children`].
    pub async fn get_children2_w(&self, path: &str) -> Result<(Vec<String>, Stat, OneshotWatch)> {
        let sp = self.server_path(path)?;
        let (tx, w) = oneshot_pair();
        let (c, s) = self
            .get_children2_inner(path, Some(WatchReg::Child(sp, tx)))
            .await?;
        Ok((c, s, w))
    }

    async fn get_children2_inner(
        &self,
        path: &str,
        watch: Option<WatchReg>,
    ) -> Result<(Vec<String>, Stat)> {
        let req = GetChildren2Request {
            path: self.server_path(path)?,
            watch: watch.is_some(),
        };
        let r = self
            .call(OpCode::GetChildren2, req.to_bytes(), watch)
            .await?;
        let resp = GetChildren2Response::from_bytes(&r.body)?;
        Ok((resp.children, resp.stat))
    }

    /// The number of all descendants of `path` (not counting `path`).
    ///
    /// Java: `ZooKeeper.getAllChildrenNumber(path)`.
    ///
    /// # Errors
    /// [`Error::NoNode`].
    /// The errors listed on [`Client`] too.
    pub async fn get_all_children_number(&self, path: &str) -> Result<i32> {
        let req = GetAllChildrenNumberRequest {
            path: self.server_path(path)?,
        };
        let r = self
            .call(OpCode::GetAllChildrenNumber, req.to_bytes(), None)
            .await?;
        Ok(GetAllChildrenNumberResponse::from_bytes(&r.body)?.total_number)
    }

    /// The ephemeral nodes owned by this session whose path starts with `prefix` (`/` for
    /// all). Paths are returned as the server reports them.
    ///
    /// Java: `ZooKeeper.getEphemerals(prefixPath)`.
    ///
    /// # Errors
    /// The errors listed on [`Client`] too.
    pub async fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>> {
        let req = GetEphemeralsRequest {
            prefix_path: prepend_chroot(self.chroot(), prefix),
        };
        let r = self
            .call(OpCode::GetEphemerals, req.to_bytes(), None)
            .await?;
        Ok(GetEphemeralsResponse::from_bytes(&r.body)?
            .ephemerals
            .iter()
            .map(|p| self.client_path(p))
            .collect())
    }

    /// Waits until the server this session uses has caught up with the leader, so that a
    /// following read sees every write committed before the call; returns `path`.
    ///
    /// Java: `ZooKeeper.sync(path, cb, ctx)`.
    ///
    /// # Errors
    /// The errors listed on [`Client`] too.
    pub async fn sync(&self, path: &str) -> Result<String> {
        let req = SyncRequest {
            path: self.server_path(path)?,
        };
        let r = self.call(OpCode::Sync, req.to_bytes(), None).await?;
        Ok(self.client_path(&SyncResponse::from_bytes(&r.body)?.path))
    }

    /// Runs independent reads in one round trip; each result succeeds or fails on its own
    /// ([`ReadResult::Error`]).
    ///
    /// Java: `ZooKeeper.multi(ops)` with `Op.getData`/`Op.getChildren`.
    ///
    /// # Errors
    /// Only for the request as a whole: [`Error::InvalidPath`] and the errors listed on
    /// [`Client`].
    pub async fn multi_read(&self, ops: &[ReadOp]) -> Result<Vec<ReadResult>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        for o in ops {
            let (ReadOp::GetData(p) | ReadOp::GetChildren(p)) = o;
            rzk_proto::path::validate(p, false)?;
        }
        let req = MultiRequest {
            ops: ops.iter().map(|o| o.to_wire(self.chroot())).collect(),
        };
        let r = self.call(OpCode::MultiRead, req.to_bytes(), None).await?;
        Ok(convert_read_results(
            MultiResponse::from_bytes(&r.body)?.results,
        ))
    }

    // ---- auth, watches, session --------------------------------------------

    /// Adds credentials `auth` for `scheme` to this connection (and to every reconnect).
    /// `digest` takes `user:password`.
    ///
    /// Java: `ZooKeeper.addAuthInfo(scheme, auth)`.
    ///
    /// # Errors
    /// [`Error::AuthFailed`]: the server refused; this ends the session (state `AuthFailed`).
    /// [`Error::ConnectionLoss`]: not answered on this connection; the credentials are
    /// kept all the same and sent with the next one (as Java's `addAuthInfo` keeps them
    /// in any state), and giving them again does not send them twice.
    ///
    /// The errors listed on [`Client`] too.
    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        let cmd = Command::AddAuth {
            scheme: scheme.to_owned(),
            auth: Bytes::copy_from_slice(auth),
            reply: tx,
        };
        if self.inner.tx.send(cmd).is_err() {
            return Err(self.ended_error());
        }
        rx.await.map_err(|_| self.ended_error())?
    }

    /// The identities the server associates with this connection (scheme and id each).
    ///
    /// Java: `ZooKeeper.whoAmI()`.
    ///
    /// # Errors
    /// The errors listed on [`Client`] too.
    pub async fn whoami(&self) -> Result<Vec<ClientInfo>> {
        let r = self.call(OpCode::WhoAmI, Vec::new(), None).await?;
        Ok(WhoAmIResponse::from_bytes(&r.body)?.client_info)
    }

    /// Adds a persistent watch on `path` (`mode` `Persistent`), or on `path` and all its
    /// descendants (`PersistentRecursive`); events arrive on the returned stream until the
    /// watch is removed or the session ends.
    ///
    /// On Apache ZooKeeper 3.8 servers a session's watches of different kinds on one
    /// path replace each other (ZOOKEEPER-4466, fixed in 3.9; rzk behaves as 3.9): after
    /// `get_children_w` and then `add_watch(.., PersistentRecursive)` on a path, the
    /// one-shot watch never fires and no child event arrives. Do not mix them there.
    ///
    /// Java: `ZooKeeper.addWatch(path, watcher, mode)`.
    ///
    /// # Errors
    /// The errors listed on [`Client`] too.
    pub async fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<WatchStream> {
        let sp = self.server_path(path)?;
        let (tx, stream) = stream_pair();
        let req = AddWatchRequest {
            path: sp.clone(),
            mode: mode.code(),
        };
        let reg = WatchReg::Persistent(sp, mode == AddWatchMode::PersistentRecursive, tx);
        self.call(OpCode::AddWatch, req.to_bytes(), Some(reg))
            .await?;
        Ok(stream)
    }

    /// Removes this session's watches of `kind` on `path`, on the server and locally; local
    /// receivers get a `*WatchRemoved` event.
    ///
    /// Java: `ZooKeeper.removeAllWatches(path, watcherType, local=false)`.
    ///
    /// # Errors
    /// [`Error::NoWatcher`] if there were none.
    /// The errors listed on [`Client`] too.
    pub async fn remove_watches(&self, path: &str, kind: WatcherType) -> Result<()> {
        let sp = self.server_path(path)?;
        let req = RemoveWatchesRequest {
            path: sp.clone(),
            watcher_type: kind.code(),
        };
        self.call(
            OpCode::RemoveWatches,
            req.to_bytes(),
            Some(WatchReg::Remove(sp, kind)),
        )
        .await?;
        Ok(())
    }

    /// Removes this session's watch of `kind` (`Data` or `Children`) on `path` from the
    /// server once nothing of this client waits on it any more: a recipe waiter that gave
    /// up (and dropped its [`OneshotWatch`]) calls it so the server does not keep a watch
    /// for nobody until the node changes (Curator's waiters call `removeWatches`). Nothing
    /// is sent while another live [`OneshotWatch`], a persistent watch, or a request in
    /// flight of this client uses a watch of that kind on `path`: the server holds one
    /// watch per session and path, shared by all of them.
    ///
    /// `Ok` also when the server had no such watch (it fired meanwhile) and on connection
    /// loss (a watch nobody waits on is not set again after the reconnect).
    ///
    /// # Errors
    /// Session errors and server errors other than NOWATCHER.
    pub(crate) async fn remove_unused_watch(&self, path: &str, kind: WatcherType) -> Result<()> {
        let sp = self.server_path(path)?;
        let req = RemoveWatchesRequest {
            path: sp.clone(),
            watcher_type: kind.code(),
        };
        let (tx, rx) = oneshot::channel();
        let cmd = Command::RemoveUnusedWatch(Request {
            op: OpCode::RemoveWatches,
            body: req.to_bytes(),
            watch: Some(WatchReg::Remove(sp, kind)),
            reply: tx,
        });
        if self.inner.tx.send(cmd).is_err() {
            return Err(self.ended_error());
        }
        match rx.await.map_err(|_| self.ended_error())? {
            Ok(_) | Err(Error::NoWatcher) | Err(Error::ConnectionLoss) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Asks the server whether this session has a watch of `kind` on `path`.
    ///
    /// Java: `ZooKeeper.checkWatches` (the opcode behind `removeWatches`' check).
    ///
    /// # Errors
    /// [`Error::NoWatcher`] if not.
    /// The errors listed on [`Client`] too.
    pub async fn check_watches(&self, path: &str, kind: WatcherType) -> Result<()> {
        let req = CheckWatchesRequest {
            path: self.server_path(path)?,
            watcher_type: kind.code(),
        };
        self.call(OpCode::CheckWatches, req.to_bytes(), None)
            .await?;
        Ok(())
    }

    /// The ensemble configuration (`/zookeeper/config`), read outside the chroot: one
    /// `server.N=host:quorumPort:electionPort:role;clientHost:clientPort` line per member
    /// and a last `version=<hex>` line (ZooKeeper's dynamic configuration format), and
    /// the node's stat. A server without dynamic configuration returns empty data.
    ///
    /// Java: `ZooKeeper.getConfig(false, stat)`.
    ///
    /// # Errors
    /// [`Error::NoNode`] from a server that has no `/zookeeper/config` node.
    /// The errors listed on [`Client`] too.
    pub async fn get_config(&self) -> Result<(Vec<u8>, Stat)> {
        self.get_config_inner(None).await
    }

    /// Like [`Client::get_config`], also leaving a data watch on `/zookeeper/config`: it
    /// fires (`NodeDataChanged`) when a reconfiguration commits.
    ///
    /// Java: `ZooKeeper.getConfig(watcher, stat)`.
    ///
    /// # Errors
    /// As [`Client::get_config`].
    pub async fn get_config_w(&self) -> Result<(Vec<u8>, Stat, OneshotWatch)> {
        let (tx, w) = oneshot_pair();
        let reg = WatchReg::Data(CONFIG_NODE.to_owned(), tx);
        let (d, s) = self.get_config_inner(Some(reg)).await?;
        Ok((d, s, w))
    }

    async fn get_config_inner(&self, watch: Option<WatchReg>) -> Result<(Vec<u8>, Stat)> {
        // The config node is never under the chroot (Java's getConfig does not prefix it).
        let req = GetDataRequest {
            path: CONFIG_NODE.into(),
            watch: watch.is_some(),
        };
        let r = self.call(OpCode::GetData, req.to_bytes(), watch).await?;
        let resp = GetDataResponse::from_bytes(&r.body)?;
        Ok((resp.data.to_vec(), resp.stat))
    }

    /// Changes the ensemble's membership and returns the configuration that was
    /// committed (the new data and stat of `/zookeeper/config`, as [`Client::get_config`]).
    ///
    /// Either incremental — `joining`: comma-separated server lines to add, e.g.
    /// `server.4=10.0.0.4:2888:3888:participant;2181`; `leaving`: comma-separated server
    /// ids to remove, e.g. `"2,3"` — or non-incremental — `new_members`: the whole new
    /// membership as comma- or newline-separated server lines (with `joining` and
    /// `leaving` `None`). `None` is sent as ZooKeeper's null string, which is what tells
    /// the server which kind of change it is. `from_config`: only apply the change if
    /// the current configuration's version (the `version=` line, a zxid) is this one;
    /// `None` for any (Java's `-1`). See also [`Client::reconfig_incremental`] and
    /// [`Client::reconfig_members`].
    ///
    /// The server needs `reconfigEnabled=true`, a quorum (not standalone) and a
    /// session allowed to write `/zookeeper/config` (the super user, or `skipACL=yes`).
    ///
    /// Java: `ZooKeeperAdmin.reconfigure(joining, leaving, newMembers, fromConfig, stat)`;
    /// zkCli: `reconfig`.
    ///
    /// # Errors
    /// [`Error::ReconfigDisabled`] without `reconfigEnabled=true`;
    /// [`Error::Unimplemented`] from a standalone server;
    /// [`Error::NoAuth`] for a session that may not change the configuration;
    /// [`Error::BadArguments`] for a change the leader refuses (a malformed server line,
    /// removing every voter, ...); [`Error::BadVersion`] when `from_config` is not the
    /// current version; [`Error::NewConfigNoQuorum`] when too few members of the new
    /// configuration are connected to the leader; [`Error::ReconfigInProgress`].
    /// The errors listed on [`Client`] too.
    pub async fn reconfig(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
        new_members: Option<&str>,
        from_config: Option<i64>,
    ) -> Result<(Vec<u8>, Stat)> {
        let body = reconfig_body(joining, leaving, new_members, from_config.unwrap_or(-1));
        let r = self.call(OpCode::Reconfig, body, None).await?;
        let resp = GetDataResponse::from_bytes(&r.body)?;
        Ok((resp.data.to_vec(), resp.stat))
    }

    /// An incremental [`Client::reconfig`]: adds the servers `add` (server lines such as
    /// `server.4=10.0.0.4:2888:3888;2181`) and removes the server ids `remove`.
    ///
    /// Java: `ZooKeeperAdmin.reconfigure(joiningServers, leavingServers, null, fromConfig, stat)`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when both lists are empty or a server line contains a
    /// comma; otherwise as [`Client::reconfig`].
    pub async fn reconfig_incremental(
        &self,
        add: &[&str],
        remove: &[u64],
        from_config: Option<i64>,
    ) -> Result<(Vec<u8>, Stat)> {
        if add.is_empty() && remove.is_empty() {
            return Err(Error::InvalidArgument(
                "reconfig: nothing to add or remove".into(),
            ));
        }
        if add.iter().any(|a| a.contains(',')) {
            return Err(Error::InvalidArgument(
                "reconfig: a server line cannot contain a comma".into(),
            ));
        }
        let joining = (!add.is_empty()).then(|| add.join(","));
        let leaving = (!remove.is_empty()).then(|| {
            remove
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        });
        self.reconfig(joining.as_deref(), leaving.as_deref(), None, from_config)
            .await
    }

    /// A non-incremental [`Client::reconfig`]: `members` (server lines) become the whole
    /// membership.
    ///
    /// Java: `ZooKeeperAdmin.reconfigure(null, null, newMembers, fromConfig, stat)`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an empty list or a server line with a comma;
    /// otherwise as [`Client::reconfig`].
    pub async fn reconfig_members(
        &self,
        members: &[&str],
        from_config: Option<i64>,
    ) -> Result<(Vec<u8>, Stat)> {
        if members.is_empty() || members.iter().any(|m| m.contains(',')) {
            return Err(Error::InvalidArgument(
                "reconfig: members must be one or more server lines without commas".into(),
            ));
        }
        self.reconfig(None, None, Some(&members.join(",")), from_config)
            .await
    }

    /// Closes the session (the server deletes its ephemeral nodes) and waits for the
    /// server's answer. Other clones of this handle see [`Error::Closed`] afterwards.
    ///
    /// Java: `ZooKeeper.close()`.
    ///
    /// # Errors
    /// An error the server returned for the close request; [`Error::ConnectionLoss`] when
    /// no server answered it (disconnected, or a silent server): the client is closed
    /// all the same, but the session, with its ephemeral nodes and the locks they hold,
    /// lives on the server until it expires there (its session timeout). The Java client
    /// closes the same way without saying so.
    pub async fn close(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        if self.inner.tx.send(Command::Close { reply: tx }).is_err() {
            return Ok(());
        }
        rx.await.unwrap_or(Ok(()))
    }
}

/// ZooKeeper's configuration node (`ZooDefs.CONFIG_NODE`).
const CONFIG_NODE: &str = "/zookeeper/config";

/// A `ReconfigRequest` body. Jute's `ustring` may be null (length -1), which the leader
/// reads as "not given": that is how it tells incremental from non-incremental changes,
/// so the record is written here rather than with `rzk_proto`'s `String` fields.
fn reconfig_body(
    joining: Option<&str>,
    leaving: Option<&str>,
    new_members: Option<&str>,
    from_config: i64,
) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, s: Option<&str>) {
        match s {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(s) => {
                let len = i32::try_from(s.len()).unwrap_or(i32::MAX);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
    let mut out = Vec::new();
    put(&mut out, joining);
    put(&mut out, leaving);
    put(&mut out, new_members);
    out.extend_from_slice(&from_config.to_be_bytes());
    out
}

#[cfg(test)]
mod reconfig_tests {
    use super::*;

    #[test]
    fn reconfig_body_keeps_null_apart_from_empty() {
        let b = reconfig_body(Some("server.4=h:1:2;3"), None, None, -1);
        let mut want = Vec::new();
        want.extend_from_slice(&16i32.to_be_bytes());
        want.extend_from_slice(b"server.4=h:1:2;3");
        want.extend_from_slice(&(-1i32).to_be_bytes());
        want.extend_from_slice(&(-1i32).to_be_bytes());
        want.extend_from_slice(&(-1i64).to_be_bytes());
        assert_eq!(b, want);
        // A present string decodes as the same record rzk-proto reads.
        let b = reconfig_body(Some(""), Some("2"), Some("x"), 0x1_0000_0002);
        let r = ReconfigRequest::from_bytes(&b).unwrap();
        assert_eq!(r.leaving_servers, "2");
        assert_eq!(r.new_members, "x");
        assert_eq!(r.cur_config_id, 0x1_0000_0002);
    }
}
