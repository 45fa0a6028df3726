//! A follower's observer master port (`observerMasterPort`, ZooKeeper's
//! `ObserverMaster` listener): accepts observer connections, plaintext or TLS as the
//! quorum port, and hands each to the driver as an [`OmEvent`]. Each connection is one
//! ordered packet stream: the writer is the quorum links' (`learner_net::write_loop`,
//! SNAP streaming included); the reader feeds the driver. Never interprets packets.

use crate::net::peer::learner_net::{link_channel, next_link_id, write_loop, LinkTx};
use crate::net::peer::quorum_sasl::{QuorumSasl, LOGIN_TIMEOUT};
use crate::net::peer::stream;
use crate::net::peer::wire;
use crate::node::Event;
use crate::tls::QuorumTls;
use rzk_proto::quorum::QuorumPacket;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::BufReader;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// Socket buffer size of an observer connection.
const BUFFER: usize = 256 * 1024;
/// Binding tries (100 ms apart): the previous listener of this follower may still be
/// closing after a role change.
const BIND_TRIES: u32 = 50;

/// What the observer master port reports to the driver.
#[derive(Debug)]
pub enum OmEvent {
    /// A new observer connection `id`: its send queue, and `stop`, whose drop (or
    /// send) ends the connection.
    Accepted {
        id: u64,
        addr: SocketAddr,
        tx: LinkTx,
        stop: oneshot::Sender<()>,
    },
    /// A packet from observer connection `id`.
    Packet { id: u64, packet: QuorumPacket },
    /// Connection `id` ended.
    Closed { id: u64 },
    /// The port could not be bound: no observer can sync from this follower.
    BindFailed { addr: SocketAddr, error: String },
}

/// Binds `addr` (retrying while an older listener closes) and accepts observers until
/// the task is aborted.
pub async fn listen(
    addr: SocketAddr,
    events: mpsc::UnboundedSender<Event>,
    tls: Option<Arc<QuorumTls>>,
    sasl: Option<Arc<QuorumSasl>>,
) {
    let mut tries = 0;
    let listener = loop {
        match TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) => {
                tries += 1;
                if tries >= BIND_TRIES {
                    let _ = events.send(Event::ObserverMaster(OmEvent::BindFailed {
                        addr,
                        error: e.to_string(),
                    }));
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    tracing::info!(%addr, "observer master listening");
    loop {
        let (s, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("observer master accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let events = events.clone();
        let tls = tls.clone();
        let sasl = sasl.clone();
        tokio::spawn(async move {
            let mut s = match stream::accept(s, peer, tls.as_deref()).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(%peer, "observer connection refused: {e}");
                    return;
                }
            };
            if let Some(sasl) = &sasl {
                let from = format!("observer at {peer}");
                if let Err(e) = sasl.check(&mut s, &from, LOGIN_TIMEOUT).await {
                    tracing::warn!("observer connection closed: {e}");
                    return;
                }
            }
            let id = next_link_id();
            let (tx, rx) = link_channel();
            let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
            let writer = tokio::spawn(write_loop(s.wr, rx, None));
            if events
                .send(Event::ObserverMaster(OmEvent::Accepted {
                    id,
                    addr: peer,
                    tx,
                    stop: stop_tx,
                }))
                .is_err()
            {
                writer.abort();
                return;
            }
            let mut rd = BufReader::with_capacity(BUFFER, s.rd);
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    r = wire::read_packet(&mut rd) => match r {
                        Ok(packet) => {
                            if events
                                .send(Event::ObserverMaster(OmEvent::Packet { id, packet }))
                                .is_err()
                            {
                                break;
                            }
                        }
                        Err(e) => {
                            tracing::debug!(%peer, id, "observer connection closed: {e}");
                            break;
                        }
                    },
                }
            }
            writer.abort();
            let _ = events.send(Event::ObserverMaster(OmEvent::Closed { id }));
        });
    }
}
