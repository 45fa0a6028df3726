//! The quorum port: the leader's listener for learner connections and a learner's
//! connection to its leader. Each link is one ordered packet stream with a writer task
//! (fed by the driver, never blocking it) and a reader task (feeding the driver).
//!
//! Owns the quorum sockets. A SNAP is streamed in place: the writer waits for the
//! applier's serialized database before writing anything that follows it; the learner's
//! reader reads the database right after the SNAP packet and hands it over with it.
//! Never interprets packets beyond that.

use crate::net::peer::quorum_sasl::QuorumSasl;
use crate::net::peer::stream::{self, PeerRead, PeerWrite};
use crate::net::peer::wire::{self, ReceivedSnapshot};
use crate::node::{Event, LinkId};
use crate::tls::QuorumTls;
use rzk_proto::quorum::{LearnerInfo, PacketType, QuorumPacket};
use rzk_proto::{Jute, ServerId, Zxid};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// Socket buffer size of a quorum link.
const LINK_BUFFER: usize = 256 * 1024;

/// What the driver queues on a link. The queue is unbounded on purpose: the driver must
/// never wait for a peer; a peer that stops reading is dropped by the core's syncLimit
/// rules, which closes the link and frees the queue.
#[derive(Debug)]
pub enum Outbound {
    Packet(QuorumPacket),
    /// Packets written back to back, in order (what the driver produced for this link
    /// in one wake-up).
    Packets(Vec<QuorumPacket>),
    /// A SNAP packet followed by the database bytes delivered on `body` (from the applier
    /// once it is exactly at `zxid`).
    Snap {
        zxid: Zxid,
        body: oneshot::Receiver<Vec<u8>>,
    },
    /// Writes nothing: the leader's writer records how long it waited in the queue
    /// (`learner_handler_qp_time_ms`, as ZooKeeper's marker packets).
    Marker(std::time::Instant),
}

impl Outbound {
    /// Quorum packets this item puts on the wire (a SNAP counts as one; a marker none).
    fn packets(&self) -> usize {
        match self {
            Outbound::Packet(_) | Outbound::Snap { .. } => 1,
            Outbound::Packets(ps) => ps.len(),
            Outbound::Marker(_) => 0,
        }
    }
}

/// The sending side of a link's queue. It counts the packets queued and not yet
/// written (shared with the writer's [`LinkRx`]), so the leader's writer can report how
/// many packets wait behind each one it sends (`learner_handler_qp_size`, as
/// ZooKeeper's `LearnerHandler` samples its queue) although a batch is one queue item.
#[derive(Debug, Clone)]
pub struct LinkTx {
    tx: mpsc::UnboundedSender<Outbound>,
    queued: Arc<AtomicUsize>,
}

impl LinkTx {
    /// Queues `o` behind everything queued before. Errors (giving `o` back) once the
    /// writer has stopped.
    pub fn send(&self, o: Outbound) -> Result<(), mpsc::error::SendError<Outbound>> {
        let n = o.packets();
        self.queued.fetch_add(n, Ordering::Relaxed);
        self.tx.send(o).inspect_err(|_| {
            self.queued.fetch_sub(n, Ordering::Relaxed);
        })
    }
}

/// The writer's side of a link's queue (see [`LinkTx`]).
#[derive(Debug)]
pub struct LinkRx {
    rx: mpsc::UnboundedReceiver<Outbound>,
    queued: Arc<AtomicUsize>,
}

impl LinkRx {
    /// The next queued item, if one is waiting (tests look at what a sender queued).
    #[cfg(test)]
    pub(crate) fn try_recv(&mut self) -> Option<Outbound> {
        self.rx.try_recv().ok()
    }

    /// One packet taken off the queue: how many are still queued behind it.
    fn took_packet(&self) -> usize {
        self.queued
            .fetch_sub(1, Ordering::Relaxed)
            .saturating_sub(1)
    }
}

/// A link's queue: the driver (or observer master) sends, `write_loop` writes. Unbounded,
/// see [`Outbound`].
pub fn link_channel() -> (LinkTx, LinkRx) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    (
        LinkTx {
            tx,
            queued: queued.clone(),
        },
        LinkRx { rx, queued },
    )
}

static NEXT_LINK: AtomicU64 = AtomicU64::new(1);

pub fn next_link_id() -> LinkId {
    NEXT_LINK.fetch_add(1, Ordering::Relaxed)
}

/// Writes queued packets until the queue closes or the socket fails. `learner`: the
/// leader's link to that learner (its queue is measured).
pub(crate) async fn write_loop(wr: PeerWrite, mut link: LinkRx, learner: Option<ServerId>) {
    let mut wr = BufWriter::with_capacity(LINK_BUFFER, wr);
    let mut buf = Vec::with_capacity(4096);
    let qp = learner.map(crate::metrics::hooks::LearnerQueue::new);
    while let Some(o) = link.rx.recv().await {
        let r = match o {
            Outbound::Marker(at) => {
                if let Some(q) = &qp {
                    q.marker(at);
                }
                // Nothing to write, but what came before may still need its flush.
                Ok(())
            }
            Outbound::Packet(p) => {
                write_packets(
                    &mut wr,
                    &mut buf,
                    &link,
                    qp.as_ref(),
                    std::slice::from_ref(&p),
                )
                .await
            }
            Outbound::Packets(ps) => {
                write_packets(&mut wr, &mut buf, &link, qp.as_ref(), &ps).await
            }
            Outbound::Snap { zxid, body } => {
                link.took_packet();
                buf.clear();
                QuorumPacket::new(PacketType::Snap, zxid.0).write(&mut buf);
                match wr.write_all(&buf).await {
                    Ok(()) => match body.await {
                        Ok(b) => wr.write_all(&b).await,
                        Err(_) => {
                            tracing::warn!("snapshot for a learner was never produced; closing");
                            break;
                        }
                    },
                    Err(e) => Err(e),
                }
            }
        };
        if let Err(e) = r {
            tracing::debug!("quorum link write failed: {e}");
            break;
        }
        if link.rx.is_empty() && wr.flush().await.is_err() {
            break;
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
}

/// Writes `ps` in order, one packet at a time through the `BufWriter`, which merges them
/// (a sync's DIFF is one batch of up to hundreds of txns; `buf`, the scratch space of
/// one packet, keeps its capacity for the life of the link), sampling the queue behind
/// each packet for the leader's metric.
async fn write_packets(
    wr: &mut BufWriter<PeerWrite>,
    buf: &mut Vec<u8>,
    link: &LinkRx,
    qp: Option<&crate::metrics::hooks::LearnerQueue>,
    ps: &[QuorumPacket],
) -> std::io::Result<()> {
    for p in ps {
        let behind = link.took_packet();
        if let Some(q) = qp {
            q.sent(behind);
        }
        buf.clear();
        p.write(buf);
        wr.write_all(buf).await?;
    }
    Ok(())
}

/// Reads packets from `peer` until the stream ends; reports the end as `LinkClosed`.
/// `learner_side`: read a database after each SNAP.
async fn read_loop(
    peer: ServerId,
    link: LinkId,
    mut rd: BufReader<PeerRead>,
    events: mpsc::UnboundedSender<Event>,
    learner_side: bool,
    extended_types: bool,
) {
    loop {
        let packet = match wire::read_packet(&mut rd).await {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(%peer, link, "quorum link closed: {e}");
                break;
            }
        };
        let mut snap: Option<Box<ReceivedSnapshot>> = None;
        if learner_side && packet.ty == PacketType::Snap {
            match wire::read_snapshot(&mut rd, Zxid(packet.zxid), extended_types).await {
                Ok(s) => snap = Some(Box::new(s)),
                Err(e) => {
                    tracing::warn!(%peer, "bad snapshot stream from the leader: {e}");
                    break;
                }
            }
        }
        let ev = Event::Packet {
            from: peer,
            link,
            packet,
            snap,
        };
        if events.send(ev).is_err() {
            return;
        }
    }
    let _ = events.send(Event::LinkClosed { peer, link });
}

/// How many times a learner dials its leader before it gives up (ZooKeeper's
/// `Learner.LeaderConnector`: five tries).
pub const LEADER_CONNECT_TRIES: u32 = 5;

/// A learner's connection to the leader: connects (over TLS with `sslQuorum`; up to
/// [`LEADER_CONNECT_TRIES`] attempts `retry_every` apart, all within `timeout`, as
/// ZooKeeper's learner retries a leader that has not bound its quorum port yet), then
/// writes what the driver queued on `rx` and reads until the link ends. Runs as one
/// task; aborting it closes the link.
#[allow(clippy::too_many_arguments)]
pub async fn connect(
    peer: ServerId,
    target: crate::node::peers::DialTarget,
    host: String,
    link: LinkId,
    rx: LinkRx,
    events: mpsc::UnboundedSender<Event>,
    timeout: Duration,
    retry_every: Duration,
    extended_types: bool,
    tls: Option<Arc<QuorumTls>>,
    sasl: Option<Arc<QuorumSasl>>,
) {
    let addr = match target.resolve().await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(%peer, %target, "cannot resolve the quorum address of leader {peer} ({target}): {e}");
            let _ = events.send(Event::LinkClosed { peer, link });
            return;
        }
    };
    let started = tokio::time::Instant::now();
    let mut tries = 0;
    let mut s = loop {
        let left = timeout.saturating_sub(started.elapsed());
        match stream::dial(
            addr,
            &host,
            left.max(Duration::from_millis(1)),
            tls.as_deref(),
        )
        .await
        {
            Ok(s) => break s,
            Err(e) => {
                tries += 1;
                let left = timeout.saturating_sub(started.elapsed());
                if tries >= LEADER_CONNECT_TRIES || left <= retry_every {
                    // Once per connection; connections follow elections, so this
                    // cannot flood.
                    tracing::warn!(%peer, %addr, tries, "cannot connect to learner master {peer} (the leader, or an observer master) at {addr}: {e}");
                    let _ = events.send(Event::LinkClosed { peer, link });
                    return;
                }
                tracing::debug!(%peer, %addr, tries, "connecting to learner master {peer} failed, retrying: {e}");
                tokio::time::sleep(retry_every).await;
            }
        }
    };
    if let Some(sasl) = &sasl {
        let to = format!("learner master {peer} at {addr}");
        if let Err(e) = sasl.login(&mut s, &to, timeout).await {
            tracing::warn!("{e}");
            let _ = events.send(Event::LinkClosed { peer, link });
            return;
        }
    }
    let (rd, wr) = (s.rd, s.wr);
    let writer = tokio::spawn(write_loop(wr, rx, None));
    read_loop(
        peer,
        link,
        BufReader::with_capacity(LINK_BUFFER, rd),
        events,
        true,
        extended_types,
    )
    .await;
    writer.abort();
}

/// The leader side: accepts learner connections, reads each one's FOLLOWERINFO /
/// OBSERVERINFO to learn its sid, and registers the link with the driver.
pub async fn accept_loop(
    listener: TcpListener,
    events: mpsc::UnboundedSender<Event>,
    first_packet_timeout: Duration,
    tls: Option<Arc<QuorumTls>>,
    sasl: Option<Arc<QuorumSasl>>,
) {
    loop {
        let (s, addr) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("quorum accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let events = events.clone();
        let tls = tls.clone();
        let sasl = sasl.clone();
        tokio::spawn(async move {
            let mut s = match stream::accept(s, addr, tls.as_deref()).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(%addr, "learner connection refused: {e}");
                    return;
                }
            };
            if let Some(sasl) = &sasl {
                let from = format!("learner at {addr}");
                if let Err(e) = sasl.check(&mut s, &from, first_packet_timeout).await {
                    tracing::warn!("learner connection closed: {e}");
                    return;
                }
            }
            let (rd, wr) = (s.rd, s.wr);
            let mut rd = BufReader::with_capacity(LINK_BUFFER, rd);
            let first = match tokio::time::timeout(first_packet_timeout, wire::read_packet(&mut rd))
                .await
            {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => {
                    tracing::info!(%addr, "learner connection closed before its info: {e}");
                    return;
                }
                Err(_) => {
                    tracing::info!(%addr, "learner sent no info in time; closed");
                    return;
                }
            };
            if !matches!(
                first.ty,
                PacketType::FollowerInfo | PacketType::ObserverInfo
            ) {
                tracing::warn!(%addr, ty = ?first.ty, "learner connection must start with its info; closed");
                return;
            }
            let sid = match LearnerInfo::decode(first.data()) {
                Ok(li) => ServerId(li.server_id),
                Err(e) => {
                    tracing::warn!(%addr, "bad LearnerInfo: {e}");
                    return;
                }
            };
            let link = next_link_id();
            let (tx, rx) = link_channel();
            let (go_tx, go_rx) = oneshot::channel::<()>();
            let ev2 = events.clone();
            let reader = tokio::spawn(async move {
                if go_rx.await.is_err() {
                    return;
                }
                read_loop(sid, link, rd, ev2, false, false).await;
            });
            let writer = tokio::spawn(write_loop(wr, rx, Some(sid)));
            let ok = events
                .send(Event::LearnerLink {
                    sid,
                    link,
                    tx,
                    reader: reader.abort_handle(),
                    from: addr,
                })
                .is_ok()
                && events
                    .send(Event::Packet {
                        from: sid,
                        link,
                        packet: first,
                        snap: None,
                    })
                    .is_ok();
            if !ok {
                reader.abort();
                writer.abort();
                return;
            }
            tracing::info!(%addr, %sid, link, "learner connected");
            let _ = go_tx.send(());
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn commit(zxid: i64) -> QuorumPacket {
        QuorumPacket::new(PacketType::Commit, zxid)
    }

    /// Single packets, batches and markers leave in the order they were queued, each
    /// batch's packets back to back in their own order.
    #[tokio::test]
    async fn batches_and_single_packets_leave_in_queue_order() {
        let (near, mut far) = tokio::io::duplex(1 << 16);
        let (tx, rx) = link_channel();
        let writer = tokio::spawn(write_loop(Box::new(near), rx, None));
        let queued = [
            Outbound::Packet(commit(1)),
            Outbound::Packets(vec![commit(2), commit(3), commit(4)]),
            Outbound::Marker(std::time::Instant::now()),
            Outbound::Packets(vec![commit(5), commit(6)]),
            Outbound::Packet(commit(7)),
        ];
        for o in queued {
            assert!(tx.send(o).is_ok());
        }
        drop(tx);
        assert!(writer.await.is_ok());
        let mut got = Vec::new();
        assert!(far.read_to_end(&mut got).await.is_ok());
        let mut expected = Vec::new();
        for z in 1..=7 {
            commit(z).write(&mut expected);
        }
        assert_eq!(got, expected);
    }

    /// `learner_handler_qp_size` gets one sample per packet sent (as ZooKeeper's
    /// `LearnerHandler.sendPackets`), each the number of packets still queued behind it,
    /// whether the packets were queued one by one or in batches.
    #[tokio::test]
    async fn queue_size_metric_counts_each_packet_of_a_batch() {
        let sid = ServerId(971_113);
        let (near, mut far) = tokio::io::duplex(1 << 16);
        let (tx, rx) = link_channel();
        assert!(tx
            .send(Outbound::Packets(vec![commit(1), commit(2), commit(3)]))
            .is_ok());
        assert!(tx
            .send(Outbound::Packets(vec![commit(4), commit(5)]))
            .is_ok());
        drop(tx);
        let writer = tokio::spawn(write_loop(Box::new(near), rx, Some(sid)));
        assert!(writer.await.is_ok());
        let mut got = Vec::new();
        assert!(far.read_to_end(&mut got).await.is_ok());
        let snap = crate::metrics::metrics()
            .learner_handler_qp_size
            .snapshot()
            .into_iter()
            .find(|(k, _)| k == &sid.0.to_string())
            .map(|(_, s)| s);
        let Some(snap) = snap else {
            panic!("no learner_handler_qp_size entry for {sid}");
        };
        // Five packets sent (one sample each), with 4, 3, 2, 1 and 0 packets behind them.
        assert_eq!(snap.count, 5, "one sample per packet");
        assert_eq!(snap.sum, 10, "packets (not queue items) behind each");
    }

    /// A leader binds its quorum port only once elected, so a learner that ends the
    /// election first is refused: it dials again, 5 times `retry_every` apart, as
    /// ZooKeeper's learner does, and reaches the leader once it listens. Without a
    /// listener it gives up after the fifth try with one `LinkClosed`.
    #[tokio::test]
    async fn a_learner_retries_a_leader_that_is_not_listening_yet() {
        let free = || {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let dial = |addr, events| {
            let (_tx, rx) = link_channel();
            connect(
                ServerId(7),
                crate::node::peers::DialTarget::Addr(addr),
                "127.0.0.1".into(),
                next_link_id(),
                rx,
                events,
                Duration::from_secs(5),
                Duration::from_millis(100),
                false,
                None,
                None,
            )
        };
        // The leader binds 250 ms after the learner's first try.
        let addr = free();
        let (events, _rx) = mpsc::unbounded_channel();
        let learner = tokio::spawn(dial(addr, events));
        tokio::time::sleep(Duration::from_millis(250)).await;
        let leader = crate::net::bind(addr, 0).unwrap();
        let accepted = tokio::time::timeout(Duration::from_secs(3), leader.accept()).await;
        assert!(
            matches!(accepted, Ok(Ok(_))),
            "the learner did not dial again"
        );
        learner.abort();
        // Nobody listens: five tries 100 ms apart, then the link is closed.
        let addr = free();
        let (events, mut rx) = mpsc::unbounded_channel();
        let started = std::time::Instant::now();
        dial(addr, events).await;
        let took = started.elapsed();
        assert!(matches!(rx.try_recv(), Ok(Event::LinkClosed { .. })));
        assert!(rx.try_recv().is_err(), "one LinkClosed");
        assert!(took >= Duration::from_millis(400), "gave up after {took:?}");
    }
}
