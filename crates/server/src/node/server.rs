//! The server: [`Server::start`] opens storage (`storage::open`), starts the one runtime
//! of this node (election when there are peers, the Zab core driver, the disk queue, the
//! applier) and the client listener, for one voter or many alike; [`Server::shutdown`]
//! stops them in order.

use super::driver::QuorumRuntime;
use super::{timers, QuorumError};
use crate::admin::http::AdminServer;
use crate::config::Config;
use crate::net::{accept_loop, bind, PortKind};
use crate::node::jobs::{Job, JobKind, Origin};
use crate::node::shared::Shared;
use crate::storage::purge::AutoPurge;
use crate::tls::ClientTlsPlan;
use crate::tree::store::TreeWriter;
use crate::tree::DataTree;
use rzk_proto::SessionId;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Least time a single voter is given to elect itself and apply its log at start-up.
pub const SOLO_START_MIN: Duration = Duration::from_secs(30);

/// How long shutdown waits for connections to finish writing.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server did not start serving: {0}")]
    NotServing(String),
    #[error("cannot start autopurge: {0}")]
    AutoPurge(std::io::Error),
    #[error(transparent)]
    Quorum(#[from] QuorumError),
    #[error(transparent)]
    Open(#[from] crate::storage::OpenError),
    /// Another rzk server holds the data directory (`storage/dir_lock.rs`).
    #[error(transparent)]
    DataDirInUse(#[from] crate::storage::dir_lock::DirLockError),
    /// The Prometheus endpoint (`metricsProvider.*`) cannot start.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::prometheus::MetricsError),
    /// A TLS setting rzk cannot honour (the message names the key).
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The AdminServer's port cannot be bound on a standalone server (ZooKeeper exits
    /// then; an ensemble member logs it and serves on).
    #[error(transparent)]
    Admin(#[from] crate::admin::http::AdminServerError),
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    /// The client port bound at start-up (plain, else TLS); `None` without one.
    local_addr: Option<SocketAddr>,
    /// The TLS client port (`secureClientPort`), if any.
    secure_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
    autopurge: Option<AutoPurge>,
    /// The one runtime (election when there are peers, Zab, disk queue, applier).
    runtime: Option<QuorumRuntime>,
    /// The AdminServer (`admin.enableServer`), if it runs.
    admin: Option<AdminServer>,
    /// This server's lock on its data directories, released when it is dropped.
    _dir_lock: crate::storage::dir_lock::DataDirLock,
}

impl Server {
    /// Opens the data directory and starts the one runtime, for every configuration:
    /// without `server.N` lines (or ZooKeeper's standalone rule) the server is an
    /// ensemble of one voter that elects itself at once and opens no peer port; with an
    /// ensemble it elects, synchronises with the leader and serves once established.
    /// Recovered sessions are tracked again (they expire unless their clients reconnect),
    /// snapshots are taken in the background per snapCount, autopurge runs if configured.
    ///
    /// Errors: the data directory cannot be recovered (the message names the file and
    /// offset), a port cannot be bound, or a thread cannot start.
    pub async fn start(config: Config) -> Result<Server, ServerError> {
        // TLS settings first: a bad key or store stops start-up before anything opens.
        let tls_plan = ClientTlsPlan::from_config(&config)?;
        crate::tls::QuorumTls::from_config(&config)?;
        // quorum.auth.*: the switches are checked on any server (as ZooKeeper's config
        // parser does), the JAAS sections only where there are peers to log in to.
        let sasl = if config.is_distributed() {
            crate::net::peer::quorum_sasl::QuorumSasl::from_config(&config).map(|_| ())
        } else {
            crate::net::peer::quorum_sasl::QuorumSasl::switches(&config).map(|_| ())
        };
        sasl.map_err(|e| ServerError::Quorum(QuorumError::Config(e.to_string())))?;
        // HTTPS on the AdminServer (admin.forceHttps / admin.portUnification): a key store
        // it cannot use stops start-up, ensemble member or not (ZooKeeper then runs
        // without an AdminServer; rzk fails closed).
        let admin_tls = match config.admin.scheme {
            _ if !config.admin.enabled => None,
            crate::admin::settings::AdminScheme::Http => None,
            _ => Some(crate::tls::admin_server_config(&config)?),
        };
        // One server per data directory: taken before storage removes unfinished
        // snapshots or reads a log another server may be writing.
        let dir_lock = crate::storage::dir_lock::lock(&[&config.data_dir, &config.data_log_dir])?;
        let crate::storage::Recovered {
            tree,
            sessions,
            durable,
            settings,
            ..
        } = crate::storage::open(&config)?;
        // The plaintext client port, unless only secureClientPort is set.
        let plain = if tls_plan.plain_port {
            let addr = config.client_addr();
            let l = bind(addr, config.client_port_listen_backlog)
                .map_err(|source| ServerError::Bind { addr, source })?;
            let a = l
                .local_addr()
                .map_err(|source| ServerError::Bind { addr, source })?;
            Some((l, a))
        } else {
            None
        };
        let (shared, writer, jobs_rx) = open_server(config, tree, &sessions);
        let admin = start_admin(&shared, admin_tls).await?;
        let secure = match tls_plan.secure_addr {
            Some(addr) => {
                let l = bind(addr, shared.config.client_port_listen_backlog)
                    .map_err(|source| ServerError::Bind { addr, source })?;
                let a = l
                    .local_addr()
                    .map_err(|source| ServerError::Bind { addr, source })?;
                Some((l, a))
            }
            None => None,
        };
        let secure_addr = secure.as_ref().map(|(_, a)| *a);
        // The plain port's address; the secure one's on a TLS-only server; none when no
        // client port is configured (ZooKeeper 3.8 then runs without a client listener:
        // an ensemble member that only votes).
        let local_addr = plain.as_ref().map(|(_, a)| *a).or(secure_addr);
        if local_addr.is_none() {
            tracing::info!("clientPort is not set: no client port, this server serves no clients");
        }
        let autopurge = AutoPurge::start(
            settings.data_dir.clone(),
            settings.data_log_dir.clone(),
            settings.autopurge_snap_retain_count,
            settings.autopurge_purge_interval_hours,
        )
        .map_err(ServerError::AutoPurge)?;
        crate::metrics::prometheus::prepare(&shared.config);
        let rt = QuorumRuntime::start(shared.clone(), writer, jobs_rx, durable, settings)
            .await
            .map_err(ServerError::Quorum)?;
        if !shared.config.is_distributed() {
            // An ensemble of one serves as soon as it has elected itself and applied its
            // log: wait for that, so the port never turns a client away after start.
            let limit = Duration::from_millis(
                u64::from(shared.config.tick_time_ms.max(1))
                    * u64::from(shared.config.init_limit.unwrap_or(10).max(1)),
            )
            .max(SOLO_START_MIN);
            let started = Instant::now();
            while !shared.quorum.is_serving() {
                if let Some(why) = shared.lifecycle.fatal_error() {
                    return Err(ServerError::NotServing(why));
                }
                if started.elapsed() > limit {
                    return Err(ServerError::NotServing(format!(
                        "not serving {} ms after start",
                        limit.as_millis()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tracing::debug!(
                us = started.elapsed().as_micros() as u64,
                "elected itself and serving"
            );
        }
        if let Some(t) = &tls_plan.tls {
            t.start_reloading();
        }
        let plain_kind = match (&tls_plan.tls, tls_plan.port_unification) {
            (Some(t), true) => PortKind::Unified(t.clone()),
            _ => PortKind::Plain,
        };
        let mut tasks = vec![tokio::spawn(timers::reaper(shared.clone()))];
        tasks.extend(crate::metrics::prometheus::start(shared.clone()).await?);
        if shared.config.pause_monitor.enabled {
            crate::metrics::pause::start(shared.config.pause_monitor);
        }
        if let Some((l, addr)) = plain {
            shared
                .client_port
                .start(&shared, l, plain_kind)
                .map_err(|source| ServerError::Bind { addr, source })?;
            // A membership put in force since the port was bound (a newer one from the
            // first election notifications of a restarted member) may have moved it.
            super::client_port::settle(&shared, "a membership learned at start-up").await;
        }
        if let (Some((l, a)), Some(t)) = (secure, &tls_plan.tls) {
            tracing::info!("secure client port {a} (TLS)");
            tasks.push(tokio::spawn(accept_loop(
                shared.clone(),
                l,
                PortKind::Secure(t.clone()),
            )));
        }
        tracing::info!(
            "client port {} ({} mode, tickTime {} ms, session timeouts {}..{} ms)",
            local_addr.map_or_else(|| "none".to_owned(), |a| a.to_string()),
            if shared.config.is_distributed() {
                "quorum"
            } else {
                "standalone"
            },
            shared.config.tick_time_ms,
            shared.config.min_session_timeout_ms,
            shared.config.max_session_timeout_ms
        );
        Ok(Server {
            shared,
            local_addr,
            secure_addr,
            tasks,
            autopurge,
            runtime: Some(rt),
            admin,
            _dir_lock: dir_lock,
        })
    }

    /// The address clients reach this server on: the plaintext client port as it
    /// listens now (a reconfig may have moved it), else the TLS port; `None` when no
    /// client port is configured (ZooKeeper's `getClientPort` is then -1).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.client_port.local_addr().or(self.local_addr)
    }

    /// The bound TLS client port (`secureClientPort`; useful when it was 0).
    pub fn secure_addr(&self) -> Option<SocketAddr> {
        self.secure_addr
    }

    /// The AdminServer's bound address, if it runs (useful when its port was 0).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(AdminServer::local_addr)
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Resolves when something (e.g. a log failure) asked the server to stop.
    pub async fn stopped(&self) {
        let mut rx = self.shared.lifecycle.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Stops accepting, closes every connection (sessions stay alive, as in ZooKeeper),
    /// drains the write pipeline and joins its threads.
    pub async fn shutdown(mut self) {
        tracing::info!("shutting down");
        self.shared.lifecycle.begin_shutdown();
        self.shared.clients.close_all("server shutting down");
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !self.shared.clients.registry().conns.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.shared.client_port.stop();
        if let Some(a) = self.admin.take() {
            a.stop();
        }
        let stop = Job {
            origin: Origin::Internal,
            session: SessionId::NONE,
            xid: 0,
            kind: JobKind::Stop,
            auth: Default::default(),
            received: Instant::now(),
            admitted: Default::default(),
        };
        let _ = self.shared.jobs.send(stop).await;
        if let Some(q) = self.runtime.take() {
            let _ = tokio::task::spawn_blocking(move || q.join()).await;
        }
        if let Some(a) = self.autopurge.take() {
            let _ = tokio::task::spawn_blocking(move || drop(a)).await;
        }
        tracing::info!("shut down");
    }
}

impl Drop for Server {
    /// A server dropped without [`Server::shutdown`] is abandoned as a crashed process
    /// would be: its runtime stops at once, without draining queues or writing more.
    fn drop(&mut self) {
        if self.runtime.is_some() {
            self.shared.lifecycle.halt();
            for t in self.tasks.drain(..) {
                t.abort();
            }
            self.shared.client_port.stop();
            if let Some(a) = self.admin.take() {
                a.stop();
            }
        }
    }
}

/// Starts the AdminServer when `admin.enableServer` asks for it. A port that cannot be
/// bound stops a standalone server's start-up (ZooKeeper exits with "Unable to start
/// AdminServer"); an ensemble member logs the error and serves clients without it, as
/// ZooKeeper's QuorumPeer does.
async fn start_admin(
    shared: &Arc<Shared>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<Option<AdminServer>, ServerError> {
    let settings = &shared.config.admin;
    if !settings.enabled {
        return Ok(None);
    }
    match AdminServer::start(shared.clone(), settings, tls).await {
        Ok(a) => Ok(Some(a)),
        Err(e) if shared.config.is_distributed() => {
            tracing::error!("{e}; serving clients without the AdminServer");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// What the server's tasks are built around: the shared state around the recovered
/// tree, with the recovered sessions tracked again so they expire unless their clients
/// return. Returns the tree's one writer for the applier. (The client ports are bound
/// before this, so a busy port fails start-up before anything runs.)
fn open_server(
    config: Config,
    tree: DataTree,
    sessions: &[(SessionId, i32)],
) -> (Arc<Shared>, TreeWriter, mpsc::Receiver<Job>) {
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>(crate::node::jobs::WRITE_QUEUE_CAPACITY);
    let (shared, writer) = Shared::new(config, tree, jobs_tx);
    {
        let now = shared.now_ms();
        let mut tracker = shared.sessions();
        for (id, timeout_ms) in sessions {
            tracker.add(*id, *timeout_ms, now);
        }
    }
    (Arc::new(shared), writer, jobs_rx)
}
