//! The tokio runtime side of the server: the client listener and accept loop (with
//! `maxClientCnxns` per IP), connection tasks, the write pipeline, session-expiry and
//! container/TTL reaper timers, background snapshots and autopurge, and clean shutdown.
//!
//! Owns sockets, threads and clocks. It drives the pure parts (tree, prep, watches,
//! session tracker) and must never put IO or clock reads into them.

pub mod conn;
pub mod durable;
pub mod frame;
pub mod pipeline;
pub mod quorum;
pub mod snapshots;
pub mod state;
pub mod timers;

use crate::config::Config;
use crate::net::durable::OpenedDb;
use crate::net::pipeline::Pipeline;
use crate::net::snapshots::Snapshotter;
use crate::net::state::{ConnEntry, ConnMsg, ConnStats, Job, JobKind, Origin, Shared};
use crate::prep::WriteRequest;
use crate::storage::purge::AutoPurge;
use crate::storage::TxnLog;
use crate::tree::DataTree;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long shutdown waits for connections to finish writing.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the write pipeline: {0}")]
    Pipeline(std::io::Error),
    #[error("cannot start autopurge: {0}")]
    AutoPurge(std::io::Error),
    #[error(transparent)]
    Quorum(#[from] quorum::QuorumError),
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
    pipeline: Option<Pipeline>,
    autopurge: Option<AutoPurge>,
    /// Quorum mode: the replicated runtime replaces the standalone pipeline.
    quorum: Option<quorum::driver::QuorumRuntime>,
}

/// What a server starts from besides its configuration.
struct StartParts {
    tree: DataTree,
    log: Box<dyn TxnLog>,
    snapshots: Option<Snapshotter>,
    /// Recovered sessions (id, timeout ms), tracked before the first client is accepted.
    sessions: Vec<(i64, i32)>,
    /// Sessions to close through the write path right after start.
    orphans: Vec<i64>,
    autopurge: Option<AutoPurge>,
}

fn bind(addr: SocketAddr, backlog: i32) -> std::io::Result<TcpListener> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(if backlog > 0 { backlog as u32 } else { 1024 })
}

impl Server {
    /// Binds the client port and starts every task on a given tree and log, without
    /// snapshots (tests, simulation). `rzk server` uses [`Server::start_durable`].
    pub async fn start(
        config: Config,
        tree: DataTree,
        log: Box<dyn TxnLog>,
    ) -> Result<Server, ServerError> {
        Server::start_parts(
            config,
            StartParts {
                tree,
                log,
                snapshots: None,
                sessions: Vec::new(),
                orphans: Vec::new(),
                autopurge: None,
            },
        )
        .await
    }

    /// Starts on a database opened by [`durable::open`]: its log is the ZooKeeper-format
    /// file log, recovered sessions are tracked again (they expire unless their clients
    /// reconnect in time), orphan sessions are closed through the write path, snapshots
    /// are taken in the background per snapCount, and autopurge runs if configured.
    pub async fn start_durable(config: Config, db: OpenedDb) -> Result<Server, ServerError> {
        let autopurge = AutoPurge::start(
            db.settings.data_dir.clone(),
            db.settings.data_log_dir.clone(),
            db.settings.autopurge_snap_retain_count,
            db.settings.autopurge_purge_interval_hours,
        )
        .map_err(ServerError::AutoPurge)?;
        let snapshots = Snapshotter::new(
            db.settings.snap_policy(),
            db.settings.data_dir.clone(),
            db.settings.snapshot,
        );
        Server::start_parts(
            config,
            StartParts {
                tree: db.tree,
                log: Box::new(db.log),
                snapshots: Some(snapshots),
                sessions: db.sessions.into_iter().collect(),
                orphans: db.orphan_sessions,
                autopurge,
            },
        )
        .await
    }

    /// Starts a member of a replicated ensemble (`server.N` lines): the database is the
    /// snapshot recovered by [`quorum::recover::recover`]; the quorum runtime (election,
    /// Zab, disk queue, applier) replaces the standalone pipeline and the session-expiry
    /// timer (only the leader expires sessions). Clients are served once the ensemble has
    /// a leader and this server is in sync with it.
    pub async fn start_quorum(
        config: Config,
        recovered: quorum::recover::Recovered,
    ) -> Result<Server, ServerError> {
        let quorum::recover::Recovered {
            tree,
            sessions,
            durable,
        } = recovered;
        let (listener, local_addr, shared, jobs_rx) = open_server(config, tree, &sessions)?;
        shared.quorum.set_distributed();
        let settings = durable::StorageSettings::from_config(&shared.config);
        let autopurge = AutoPurge::start(
            settings.data_dir.clone(),
            settings.data_log_dir.clone(),
            settings.autopurge_snap_retain_count,
            settings.autopurge_purge_interval_hours,
        )
        .map_err(ServerError::AutoPurge)?;
        let rt = quorum::driver::QuorumRuntime::start(shared.clone(), jobs_rx, durable)
            .await
            .map_err(ServerError::Quorum)?;
        let tasks = vec![
            tokio::spawn(accept_loop(shared.clone(), listener)),
            tokio::spawn(timers::reaper(shared.clone())),
        ];
        tracing::info!(
            "client port {local_addr} (quorum mode, tickTime {} ms, session timeouts {}..{} ms)",
            shared.config.tick_time_ms,
            shared.config.min_session_timeout_ms,
            shared.config.max_session_timeout_ms
        );
        Ok(Server {
            shared,
            local_addr,
            tasks,
            pipeline: None,
            autopurge,
            quorum: Some(rt),
        })
    }

    async fn start_parts(config: Config, parts: StartParts) -> Result<Server, ServerError> {
        let StartParts {
            tree,
            log,
            snapshots,
            sessions,
            orphans,
            autopurge,
        } = parts;
        let (listener, local_addr, shared, jobs_rx) = open_server(config, tree, &sessions)?;
        if !sessions.is_empty() {
            tracing::info!(
                sessions = sessions.len(),
                "recovered sessions are tracked again; they expire unless their clients reconnect"
            );
        }
        let pipeline = Pipeline::start(shared.clone(), jobs_rx, log, snapshots)
            .map_err(ServerError::Pipeline)?;
        for sid in orphans {
            tracing::info!(
                "closing orphan session 0x{sid:x} (owns ephemerals, not in the session table)"
            );
            let job = Job {
                origin: Origin::Internal,
                session: sid,
                xid: 0,
                kind: JobKind::Write(WriteRequest::CloseSession),
                auth: Default::default(),
                received: Instant::now(),
            };
            if shared.jobs.send(job).await.is_err() {
                break;
            }
        }
        let tasks = vec![
            tokio::spawn(accept_loop(shared.clone(), listener)),
            tokio::spawn(timers::session_expiry(shared.clone())),
            tokio::spawn(timers::reaper(shared.clone())),
        ];
        tracing::info!(
            "serving clients on {local_addr} ({} mode, tickTime {} ms, session timeouts {}..{} ms)",
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
            tasks,
            pipeline: Some(pipeline),
            autopurge,
            quorum: None,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Resolves when something (e.g. a log failure) asked the server to stop.
    pub async fn stopped(&self) {
        let mut rx = self.shared.shutdown.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Stops accepting, closes every connection (sessions stay alive, as in ZooKeeper),
    /// drains the write pipeline and joins its threads.
    pub async fn shutdown(mut self) {
        tracing::info!("shutting down");
        self.shared.begin_shutdown();
        let txs: Vec<_> = self
            .shared
            .conns()
            .conns
            .values()
            .map(|c| c.tx.clone())
            .collect();
        for tx in txs {
            let _ = tx.send(ConnMsg::Close("server shutting down"));
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !self.shared.conns().conns.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
        let stop = Job {
            origin: Origin::Internal,
            session: 0,
            xid: 0,
            kind: JobKind::Stop,
            auth: Default::default(),
            received: Instant::now(),
        };
        let _ = self.shared.jobs.send(stop).await;
        if let Some(p) = self.pipeline.take() {
            let _ = tokio::task::spawn_blocking(move || p.join()).await;
        }
        if let Some(q) = self.quorum.take() {
            let _ = tokio::task::spawn_blocking(move || q.join()).await;
        }
        if let Some(a) = self.autopurge.take() {
            let _ = tokio::task::spawn_blocking(move || drop(a)).await;
        }
        tracing::info!("shut down");
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut stop = shared.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|v| *v) => return,
            r = listener.accept() => r,
        };
        let (stream, addr) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // e.g. EMFILE: back off rather than spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let max = shared.config.max_client_cnxns;
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(ConnStats::new());
        let id = shared.next_conn_id();
        {
            let mut reg = shared.conns();
            let n = reg.per_ip.entry(addr.ip()).or_insert(0);
            if max > 0 && *n >= max {
                tracing::warn!("too many connections from {} - max is {max}", addr.ip());
                drop(stream);
                continue;
            }
            *n += 1;
            reg.conns.insert(
                id,
                ConnEntry {
                    tx,
                    addr,
                    session: None,
                    session_timeout_ms: 0,
                    auth: crate::auth::AuthInfo::for_ip(&addr.ip().to_string()),
                    stats: stats.clone(),
                    established_ms: state::wall_ms(),
                },
            );
        }
        tracing::debug!(%addr, conn = id, "accepted connection");
        tokio::spawn(conn::serve(shared.clone(), stream, addr, id, rx, stats));
    }
}

/// What both start-ups share: bind the client port, build the shared state around the
/// tree, and track the recovered sessions again so they expire unless their clients return.
fn open_server(
    config: Config,
    tree: DataTree,
    sessions: &[(i64, i32)],
) -> Result<(TcpListener, SocketAddr, Arc<Shared>, mpsc::Receiver<Job>), ServerError> {
    let addr = config.client_addr();
    let listener = bind(addr, config.client_port_listen_backlog)
        .map_err(|source| ServerError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>(state::WRITE_QUEUE_CAPACITY);
    let shared = Arc::new(Shared::new(config, tree, jobs_tx));
    {
        let now = shared.now_ms();
        let mut tracker = shared.sessions();
        for (id, timeout_ms) in sessions {
            tracker.add(*id, *timeout_ms, now);
        }
    }
    Ok((listener, local_addr, shared, jobs_rx))
}
