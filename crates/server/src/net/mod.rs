//! Sockets: the client listener and accept loop (with `maxClientCnxns` per IP), one task
//! per client connection (`conn`), frames (`frame`), and the peer links of an ensemble
//! (`peer/`: election and quorum ports).
//!
//! Owns sockets, threads and clocks. It drives the pure parts (tree, prep, watches,
//! session tracker) and must never put IO or clock reads into them.

pub mod conn;
pub mod frame;
pub mod peer;

use crate::node::clients::{ConnEntry, ConnStats};
use crate::node::shared::Shared;
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
        let stats = Arc::new(ConnStats::new());
        let id = shared.clients.next_conn_id();
        {
            let mut reg = shared.clients.registry();
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
                    established_ms: crate::node::lifecycle::wall_ms(),
                },
            );
        }
        tracing::debug!(%addr, conn = id, "accepted connection");
        tokio::spawn(conn::serve(shared.clone(), stream, addr, id, rx, stats));
    }
}
