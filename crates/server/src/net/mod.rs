//! Sockets: the client listener and accept loop (with `maxClientCnxns` per IP), one task
//! per client connection (`conn`), frames (`frame`), and the peer links of an ensemble
//! (`peer/`: election and quorum ports).
//!
//! Owns sockets and the tasks serving them. A connection answers reads itself (from the
//! shared tree, setting watches) and hands every write to `node/` as a job, whose driver
//! runs prep. It must never put IO or clock reads into the pure parts (tree, prep,
//! watches, session tracker).

pub mod conn;
pub mod frame;
pub mod lane;
pub mod order;
pub mod peer;
pub mod watched_write;

use crate::node::clients::{ConnEntry, ConnStats, ConnTx};
use crate::node::shared::Shared;
use crate::tls::ClientTls;
use conn::{ClientStream, X509Peer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
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

/// What a client listener speaks.
#[derive(Debug, Clone)]
pub(crate) enum PortKind {
    /// Plaintext only (`clientPort`).
    Plain,
    /// TLS only (`secureClientPort`).
    Secure(Arc<ClientTls>),
    /// Both, told apart by the first byte (`clientPort` with `client.portUnification`).
    Unified(Arc<ClientTls>),
}

/// Why a client connection never reached the protocol.
#[derive(Debug, thiserror::Error)]
enum OpenError {
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    #[error("TLS handshake timed out")]
    Timeout,
}

/// Turns an accepted socket into a client stream: as is on a plain port; after a TLS
/// handshake on a secure port, or on a unified port when the first byte opens one.
async fn open_stream(stream: TcpStream, kind: &PortKind) -> Result<ClientStream, OpenError> {
    let tls = match kind {
        PortKind::Plain => return Ok(ClientStream::plain(stream)),
        PortKind::Secure(t) => t,
        PortKind::Unified(t) => {
            if !crate::tls::starts_with_tls(&stream, t.detection_timeout).await {
                return Ok(ClientStream::plain(stream));
            }
            t
        }
    };
    let _ = stream.set_nodelay(true);
    let _in_flight = crate::metrics::TlsHandshake::begin();
    let s = tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream))
        .await
        .map_err(|_| OpenError::Timeout)?
        .map_err(OpenError::Handshake)?;
    let x509 = crate::tls::peer_subject(&s).map(|subject| X509Peer {
        super_user: tls.super_user.as_deref() == Some(subject.as_str()),
        subject,
    });
    Ok(ClientStream::tls(s, x509))
}

/// Accepts client connections until shutdown; each gets its own task (`conn::serve`,
/// after the TLS handshake when the port speaks TLS).
/// A panic in it stops the server ([`crate::node::lifecycle::critical_task`]).
pub(crate) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, kind: PortKind) {
    let owner = shared.clone();
    let work = accept_connections(shared, listener, kind);
    crate::node::lifecycle::critical_task(&owner.lifecycle, "client port's accept loop", work)
        .await;
}

/// [`accept_loop`]'s work.
async fn accept_connections(shared: Arc<Shared>, listener: TcpListener, kind: PortKind) {
    let mut stop = shared.lifecycle.subscribe();
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
        let lane = Arc::new(lane::ReplyLane::default());
        let (alive_tx, alive) = tokio::sync::watch::channel(());
        let stats = Arc::new(ConnStats::new());
        let id = shared.clients.next_conn_id();
        {
            let mut reg = shared.clients.registry();
            let n = reg.per_ip.get(&addr.ip()).copied().unwrap_or(0);
            if u32::try_from(max).is_ok_and(|max| max > 0 && n >= max) {
                tracing::warn!("too many connections from {} - max is {max}", addr.ip());
                crate::metrics::metrics().connection_rejected.inc();
                drop(stream);
                continue;
            }
            let secure = matches!(kind, PortKind::Secure(_));
            let total = shared.config.max_cnxns;
            if total > 0 {
                // maxCnxns: all connections of this port (plain or secure), as
                // ZooKeeper counts per connection factory.
                let open = reg.conns.values().filter(|c| c.secure == secure).count();
                if open >= total.unsigned_abs() as usize {
                    tracing::warn!("too many connections - max is {total}");
                    crate::metrics::metrics().connection_rejected.inc();
                    drop(stream);
                    continue;
                }
            }
            let n = reg.per_ip.entry(addr.ip()).or_insert(0);
            *n += 1;
            reg.conns.insert(
                id,
                ConnEntry {
                    tx: ConnTx::new(tx, lane.clone()),
                    addr,
                    session: None,
                    session_timeout_ms: 0,
                    auth: crate::auth::AuthInfo::for_ip(&addr.ip().to_string()),
                    stats: stats.clone(),
                    established_ms: crate::node::lifecycle::wall_ms(),
                    secure,
                    alive,
                },
            );
        }
        tracing::debug!(%addr, conn = id, "accepted connection");
        let shared = shared.clone();
        let kind = kind.clone();
        tokio::spawn(async move {
            let _alive = alive_tx; // dropped when this connection's task ends
                                   // Out of the registry however the task ends (a panic included).
            let _registered = conn::Registered::new(shared.clone(), id, addr);
            match open_stream(stream, &kind).await {
                Ok(s) => conn::serve(shared, s, addr, id, (rx, lane), stats).await,
                Err(e) => {
                    crate::metrics::metrics().unsuccessful_handshake.inc();
                    shared
                        .stats
                        .auth_failed
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(%addr, conn = id, "closing connection: {e}");
                    conn::deregister(&shared, id, addr);
                }
            }
        });
    }
}
