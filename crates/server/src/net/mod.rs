//! Sockets: the client listener and accept loop (with `maxClientCnxns` per IP), one task
//! per client connection (`conn`), frames (`frame`), and the peer links of an ensemble
//! (`peer/`: election and quorum ports).
//!
//! Owns sockets, threads and clocks. It drives the pure parts (tree, prep, watches,
//! session tracker) and must never put IO or clock reads into them.

pub mod conn;
pub mod frame;
pub mod peer;
pub mod state;

use crate::config::Config;
use crate::net::state::{ConnEntry, ConnStats, Job, Shared};
use crate::node::ServerError;
use crate::tree::DataTree;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::mpsc;

/// Binds the client port with the listen backlog (`clientPortListenBacklog`).
pub(crate) fn bind(addr: SocketAddr, backlog: i32) -> std::io::Result<TcpListener> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(if backlog > 0 { backlog as u32 } else { 1024 })
}

/// Accepts client connections until shutdown; each gets its own task (`conn::serve`).
pub(crate) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
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
pub(crate) fn open_server(
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
