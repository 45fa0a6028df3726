//! The driver: one thread that owns the `Zab` core and is the only caller of
//! `Zab::step`. It turns network, disk, applier and timer events into core inputs,
//! carries out the core's outputs in order (sends, links, disk queue, applier), and
//! connects clients to the ensemble:
//!
//! * leader: client writes (local, or forwarded by learners as REQUEST) go through prep
//!   into `Propose`; the reply to a local client is sent when its txn is applied;
//! * learner: client writes are forwarded as REQUEST and matched to the committed txn by
//!   (session, cxid); `sync` (and error-only requests) are forwarded as `sync` and
//!   answered, in order, when the leader's SYNC comes back;
//! * sessions are global: the leader expires them; learners report their clients'
//!   activity with each PING reply;
//! * clients are served only after `Established`; any role change closes every client
//!   connection (clients reconnect to a serving server).
//!
//! Must never block on the network or the disk (both are behind queues), and never
//! decide protocol questions itself.

use super::apply::{Applier, ApplyMsg};
#[path = "observer_master.rs"]
mod observer_master;
#[path = "reconfig.rs"]
mod reconfig;
use super::disk::{DiskOp, DiskQueue};
use super::forward::{self, Forwarded};
use crate::auth::AuthInfo;
use crate::net::peer::election_net::ElectionNet;
use crate::net::peer::learner_net::{self, LinkTx, Outbound};
use crate::net::peer::wire::ReceivedSnapshot;
use crate::node::clients::ConnMsg;
use crate::node::jobs::{Job, JobKind, Origin};
use crate::node::lifecycle::{CriticalThread, WakeClock};
use crate::node::looking::{self, LookingReport};
use crate::node::peers::Peers;
use crate::node::shared::Shared;
use crate::node::{Event, LinkId, QuorumError, Revalidation};
use crate::prep::{Prep, WriteRequest};
use crate::session::SessionOwner;
use crate::storage::StorageSettings;
use crate::tree::store::TreeWriter;
use crate::watch::ConnId;
use crate::zab::{Durable, Input, Message, Output, Role, ServerId, Txn, Zab};
use bytes::Bytes;
/// Read by the status view (`node/status.rs`) for the members in force.
pub(crate) use reconfig::parse_membership;
use rzk_proto::quorum::payload::{
    decode_revalidate, decode_revalidate_reply, decode_touches, encode_revalidate,
    encode_revalidate_reply, encode_touches,
};
use rzk_proto::quorum::{ForwardedRequest, PacketType, QuorumPacket, SessionTouch};
use rzk_proto::txn::TxnRecord;
use rzk_proto::{ErrorCode, SessionId, Zxid};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

/// Most client requests held back while the leader cannot propose yet (history still
/// being applied, or too many proposals outstanding). Beyond it, no more jobs are taken
/// from the client queue (backpressure onto connections).
pub const MAX_HELD: usize = 10_000;
/// Longest timer period of the driver. The core only learns the time from ticks, so the
/// period bounds the precision of every timer inside it (finalizeWait is 200 ms): ticks
/// come every `tickTime / 4` or this often, whichever is shorter.
const MAX_TICK_PERIOD_MS: u64 = 20;

/// Maps keyed by zxids and session ids on the per-write path (foldhash, not SipHash:
/// the keys are not attacker-chosen hashes of variable length).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Jobs taken from the client queue per wake-up before the driver looks at other events.
const JOBS_PER_WAKE: usize = 64;

/// Events (packets from peers, fsyncs, links) taken per wake-up before the driver
/// looks at the client queue again.
const EVENTS_PER_WAKE: usize = 64;

/// A leader's proposal waiting for its commit.
#[derive(Debug)]
struct Proposed {
    zxid: Zxid,
    rec: TxnRecord,
    job: Option<Job>,
}

/// One open quorum link.
#[derive(Debug)]
struct Link {
    id: LinkId,
    tx: LinkTx,
    reader: tokio::task::AbortHandle,
    /// A learner's link on the leader: the learner's IP address (`WaitingLink`).
    from: Option<std::net::IpAddr>,
    /// Packets for this link produced during the current wake-up of the driver, handed
    /// to the writer task as one `Outbound::Packets` (`Link::flush`) before the driver
    /// waits again or queues anything else on the link: one wake-up of the writer and
    /// one socket write per wake-up of the driver instead of one per packet.
    pending: Vec<QuorumPacket>,
}

impl Link {
    fn new(id: LinkId, tx: LinkTx, reader: tokio::task::AbortHandle) -> Link {
        Link {
            id,
            tx,
            reader,
            from: None,
            pending: Vec::new(),
        }
    }

    /// Queues the packets gathered since the last flush on the writer, in order.
    fn flush(&mut self) {
        match self.pending.len() {
            0 => {}
            1 => {
                if let Some(p) = self.pending.pop() {
                    let _ = self.tx.send(Outbound::Packet(p));
                }
            }
            _ => {
                let batch = std::mem::take(&mut self.pending);
                let _ = self.tx.send(Outbound::Packets(batch));
            }
        }
    }

    /// Queues `o` after everything gathered so far.
    fn send_now(&mut self, o: Outbound) {
        self.flush();
        let _ = self.tx.send(o);
    }
}

/// A link that goes away (closed, replaced, the driver stopping) still hands over what
/// the core sent on it: its writer drains the queue once the sender is gone.
impl Drop for Link {
    fn drop(&mut self) {
        self.flush();
    }
}

/// A client request for the leader's prep.
#[derive(Debug)]
enum Work {
    Local(Job),
    Remote {
        from: ServerId,
        session: SessionId,
        cxid: i32,
        req: Forwarded,
        auth: AuthInfo,
    },
}

/// Handle of the running replicated runtime.
#[derive(Debug)]
pub struct QuorumRuntime {
    thread: Option<JoinHandle<()>>,
}

impl QuorumRuntime {
    /// Binds the election and quorum ports and starts the disk, applier and driver
    /// threads. Must be called on the server's tokio runtime.
    pub async fn start(
        shared: Arc<Shared>,
        writer: TreeWriter,
        jobs: mpsc::Receiver<Job>,
        durable: Durable,
        settings: StorageSettings,
    ) -> Result<QuorumRuntime, QuorumError> {
        let peers = Peers::from_config(&shared.config)?;
        let om = observer_master::OmRuntime::from_config(&shared.config)?;
        let me = peers
            .mine()
            .cloned()
            .ok_or_else(|| QuorumError::Config("this server is not in the ensemble".into()))?;
        let bind = |addr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| QuorumError::Bind { addr, source })
        };
        reconfig::backup_static_config(&shared.config);
        let last_seen = reconfig::read_next_file(&shared.config);
        let mut zcfg = peers.zab_config(&shared.config);
        zcfg.reconfig_of = reconfig::reconfig_of;
        zcfg.config_of_text = reconfig::config_of_text;
        zcfg.quorum_address_of = reconfig::quorum_address_of;
        zcfg.unreadable_reconfig = reconfig::unreadable_reconfig;
        zcfg.unreadable_config = reconfig::unreadable_config;
        zcfg.last_seen = last_seen
            .as_ref()
            .and_then(|m| reconfig::config_of_text(&m.text()));
        // Only a quorum peer (ZooKeeper's standalone server has no membership to version).
        zcfg.version_initial_membership =
            shared.config.reconfig_enabled && shared.config.is_distributed();
        let init_ms = zcfg.tick_ms * zcfg.init_limit;
        let rt = tokio::runtime::Handle::current();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        // Quorum TLS (sslQuorum, portUnification, ssl.quorum.*) for both peer ports.
        let quorum_tls = crate::tls::QuorumTls::from_config(&shared.config)
            .map_err(|e| QuorumError::Config(e.to_string()))?
            .map(Arc::new);
        if let Some(t) = &quorum_tls {
            t.start_reloading();
        }
        // SASL logins between members (quorum.auth.*).
        let quorum_sasl = crate::net::peer::quorum_sasl::QuorumSasl::from_config(&shared.config)
            .map_err(|e| QuorumError::Config(e.to_string()))?
            .map(Arc::new);
        // A single voter elects itself and has nobody to talk to: no peer ports. With
        // `standaloneEnabled=false` (a configured ensemble that happens to have one
        // voter) the ports are open, as ZooKeeper's quorum peer opens them: servers
        // that join it before a reconfig adds them follow it as non-voting learners.
        // The quorum port is bound only while this server leads (`node/quorum_port.rs`).
        let all = shared.config.quorum_listen_on_all_ips;
        let quorum_port = super::quorum_port::QuorumPort::new(
            shared
                .config
                .is_distributed()
                .then(|| crate::node::peers::listen_addr(me.quorum, all)),
            rt.clone(),
            events_tx.clone(),
            Duration::from_millis(init_ms),
            quorum_tls.clone(),
            quorum_sasl.clone(),
        );
        let election = if !shared.config.is_distributed() {
            None
        } else {
            let election_listener = bind(crate::node::peers::listen_addr(me.election, all)).await?;
            Some(ElectionNet::start(
                &rt,
                &peers,
                election_listener,
                events_tx.clone(),
                quorum_tls.clone(),
                quorum_sasl.clone(),
            ))
        };
        let want_applied = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let applier = Applier::start(
            shared.clone(),
            writer,
            events_tx.clone(),
            want_applied.clone(),
        )
        .map_err(QuorumError::Thread)?;
        let disk = DiskQueue::start(
            shared.clone(),
            events_tx.clone(),
            applier.tx.clone(),
            settings,
        )
        .map_err(QuorumError::Thread)?;
        if shared.config.is_distributed() {
            shared.quorum.set_distributed();
        }
        let (reval_tx, reval_rx) = mpsc::unbounded_channel();
        shared.quorum.set_revalidator(reval_tx);
        if peers.is_solo() {
            tracing::info!(sid = %peers.me, "starting as an ensemble of one voter");
        } else {
            tracing::info!(
                sid = %peers.me,
                election = %me.election,
                quorum = %me.quorum,
                members = peers.members.len(),
                "starting the quorum peer"
            );
        }
        let thread = std::thread::Builder::new()
            .name("rzk-quorum".into())
            .spawn(move || {
                let _critical = CriticalThread::new(&shared.lifecycle, "rzk-quorum thread");
                // Only timing depends on it; a refusal is logged there.
                let _ = super::sched::batch_policy_for_current_thread();
                let local = match tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        shared
                            .lifecycle
                            .fail(format!("cannot start the quorum driver: {e}"));
                        return;
                    }
                };
                let start = Instant::now();
                let replayed = !durable.log.is_empty();
                let (zab, outs) = Zab::new(zcfg, durable, 0);
                let mut d = Driver {
                    shared: shared.clone(),
                    zab,
                    peers,
                    rt,
                    election,
                    events_tx,
                    links: HashMap::new(),
                    waiting_links: HashMap::new(),
                    disk: Some(disk),
                    applier: Some(applier),
                    start,
                    role: Role::Looking,
                    serving: false,
                    looking: LookingReport::default(),
                    prep: Prep::for_config(&shared.config),
                    prep_ready_at: Zxid::ZERO,
                    prep_caught_up: false,
                    held: VecDeque::new(),
                    revalidations_waiting: Vec::new(),
                    proposed: VecDeque::new(),
                    remote_pending: FastMap::default(),
                    learner_syncs: VecDeque::new(),
                    leader_syncs: VecDeque::new(),
                    pending_snap: None,
                    touch_seen: HashMap::new(),
                    revalidations: HashMap::new(),
                    init_ms,
                    quorum_tls,
                    quorum_sasl,
                    quorum_port,
                    announce_pending: false,
                    commits: Vec::new(),
                    to_persist: Vec::new(),
                    committed_on_sync: Zxid(0),
                    want_applied,
                    snapshot_after_recovery: replayed,
                    om,
                    members: reconfig::Members::from_config(&shared.config, last_seen),
                    clock: WakeClock::new(),
                    stop: false,
                };
                // A membership proposed before the restart (`zoo.cfg.dynamic.next`).
                let last_seen = d.members.last_seen().clone();
                d.note_election_members(&last_seen);
                d.set_quorum_port();
                d.process(outs);
                local.block_on(d.run(events_rx, jobs, reval_rx));
            })
            .map_err(QuorumError::Thread)?;
        Ok(QuorumRuntime {
            thread: Some(thread),
        })
    }

    /// Waits for the driver (and its disk and applier threads) to stop; it stops on a
    /// `JobKind::Stop` job or a fatal disk error.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the quorum driver panicked");
            }
        }
    }
}

/// A learner connection that arrived while the same server's synced link is up: held,
/// unanswered, until that link closes, then it takes its place; closed if it waits
/// longer than initLimit ticks, or when this server stops leading.
///
/// Links are kept by server id. ZooKeeper's leader keeps both connections (a
/// `LearnerHandler` each) until the older one fails; rzk let the new one replace the
/// synced one at once, so a single FOLLOWERINFO naming a synced follower's id, from
/// anyone who could reach the quorum port, cut that follower off, and one per follower
/// cost the leader its quorum (a break-it review, session 53). A follower that really
/// reconnects has closed its old connection first, so its new one waits at most until
/// the leader notices (at once for a closed socket; the next ping's reset, or syncLimit
/// ticks without a packet, for a half-open one).
struct WaitingLink {
    link: Link,
    /// Its first packet (FOLLOWERINFO or OBSERVERINFO), handed to the core when the
    /// link takes its place.
    info: Option<QuorumPacket>,
    until: Instant,
}

struct Driver {
    shared: Arc<Shared>,
    zab: Zab,
    peers: Peers,
    rt: tokio::runtime::Handle,
    /// The election port; `None` for an ensemble of one.
    election: Option<ElectionNet>,
    events_tx: mpsc::UnboundedSender<Event>,
    links: HashMap<ServerId, Link>,
    /// Leader: learner connections waiting for the same server's synced link to close
    /// ([`WaitingLink`]).
    waiting_links: HashMap<ServerId, WaitingLink>,
    disk: Option<DiskQueue>,
    applier: Option<Applier>,
    start: Instant,
    role: Role,
    serving: bool,
    prep: Prep,
    /// Leader: prep must wait until the tree has applied the established history.
    prep_ready_at: Zxid,
    /// Set once the tree was seen at `prep_ready_at` (it only grows from there while
    /// leading), so prep stops asking the tree's lock on every job.
    prep_caught_up: bool,
    held: VecDeque<Work>,
    /// Leader: learners' REVALIDATEs (learner, session) that arrived before the tree
    /// held the established history ([`Driver::caught_up`]).
    revalidations_waiting: Vec<(ServerId, i64)>,
    /// Leader: its proposals not yet committed, in zxid order (commits come in the
    /// same order): the prepared record (no decode at commit) and the local client
    /// request it answers, if any.
    proposed: VecDeque<Proposed>,
    /// Learner: forwarded writes by (session, cxid).
    remote_pending: FastMap<(SessionId, i32), Job>,
    /// Learner: forwarded syncs (ours and our observers'), answered in order by the
    /// leader's SYNCs.
    learner_syncs: VecDeque<LearnerSync>,
    /// Leader: local syncs waiting for the commit of the zxid proposed before them.
    leader_syncs: VecDeque<(Zxid, Job)>,
    /// Learner: the database that came with the last SNAP.
    pending_snap: Option<Box<ReceivedSnapshot>>,
    /// Learner: each connection's request count at the last session report.
    touch_seen: HashMap<ConnId, u64>,
    /// Learner: reconnecting sessions waiting for the leader's REVALIDATE answer.
    revalidations: HashMap<SessionId, Vec<oneshot::Sender<bool>>>,
    init_ms: u64,
    /// Quorum TLS for dialling the leader (`None`: plaintext).
    quorum_tls: Option<Arc<crate::tls::QuorumTls>>,
    /// SASL logins with the leader and observers (`quorum.auth.*`; `None`: off).
    quorum_sasl: Option<Arc<crate::net::peer::quorum_sasl::QuorumSasl>>,
    /// The quorum addresses learners are accepted on while this server leads: its own
    /// at start-up, and each new one a reconfig gave it (`node/reconfig.rs`); none for
    /// an ensemble of one.
    quorum_port: super::quorum_port::QuorumPort,
    /// Leader: established, but clients are let in only once the tree caught up.
    announce_pending: bool,
    /// Commits gathered while carrying out one batch of the core's outputs.
    commits: Vec<(TxnRecord, Option<Job>)>,
    /// Txns to persist, gathered over one wake-up and handed to the disk queue in one
    /// message (before any other disk op, so the order is kept).
    to_persist: Vec<Txn>,
    /// Leader of an ensemble of one: the highest zxid whose commit travelled with its
    /// txns to the disk thread (see `flush_persist`).
    committed_on_sync: Zxid,
    /// Set while the driver waits for the applier to catch up (held work, or clients
    /// not yet let in): only then does the applier report `Event::Applied`.
    want_applied: Arc<std::sync::atomic::AtomicBool>,
    /// Started with logged txns after the snapshot: snapshot once they are applied.
    snapshot_after_recovery: bool,
    /// When to say again why this member is still LOOKING.
    looking: LookingReport,
    /// `observerMasterPort`: a follower's observer master, an observer's rotation.
    om: observer_master::OmRuntime,
    /// The membership in force and the newest proposed (reconfig).
    members: reconfig::Members,
    /// The time of the current wake-up (one clock reading per batch of events or jobs).
    clock: WakeClock,
    stop: bool,
}

/// A sync a learner forwarded to the leader, answered by the leader's next SYNC.
#[derive(Debug)]
enum LearnerSync {
    /// One of this server's clients.
    Local(Job),
    /// An observer syncing through this follower (`observerMasterPort`).
    Observer(crate::zab::observer_master::ObsId),
}

impl Driver {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<Event>,
        mut jobs: mpsc::Receiver<Job>,
        mut reval: mpsc::UnboundedReceiver<Revalidation>,
    ) {
        let period = (self.peers_tick_ms() / 4).clamp(1, MAX_TICK_PERIOD_MS);
        let mut tick = tokio::time::interval(Duration::from_millis(period));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while !self.stop {
            if self.shared.lifecycle.is_halted() {
                tracing::info!("server abandoned without shutdown: the driver stops at once");
                // Abandoned: what was gathered never leaves (the links drop empty).
                for l in self.links.values_mut() {
                    l.pending.clear();
                }
                return;
            }
            let can_take = self.held.len() < MAX_HELD;
            self.settle_waiting_links();
            self.flush_links();
            tokio::select! {
                biased;
                ev = events.recv() => match ev {
                    Some(e) => {
                        self.clock.refresh();
                        self.on_event(e);
                        // Take what else is waiting too: the learners' ACKs and the
                        // local fsync of one batch then leave as one COMMIT write per
                        // link (see `Link::pending`).
                        for _ in 1..EVENTS_PER_WAKE {
                            if self.stop || self.shared.lifecycle.is_halted() {
                                break;
                            }
                            match events.try_recv() {
                                Ok(e) => self.on_event(e),
                                Err(_) => break,
                            }
                        }
                    }
                    None => break,
                },
                job = jobs.recv(), if can_take => match job {
                    Some(j) => {
                        self.clock.refresh();
                        self.on_job(j);
                        // Take what else is waiting in one go (fewer wake-ups per write).
                        for _ in 1..JOBS_PER_WAKE {
                            if self.stop || self.held.len() >= MAX_HELD {
                                break;
                            }
                            match jobs.try_recv() {
                                Ok(j) => self.on_job(j),
                                Err(_) => break,
                            }
                        }
                    }
                    None => break,
                },
                r = reval.recv() => if let Some(r) = r {
                    self.clock.refresh();
                    self.on_revalidation(r);
                },
                _ = tick.tick() => {
                    self.clock.refresh();
                    self.on_tick();
                }
            }
            self.flush_persist();
        }
        tracing::info!("quorum driver stopping");
        for (_, l) in self.links.drain() {
            l.reader.abort();
        }
        for (_, w) in self.waiting_links.drain() {
            w.link.reader.abort();
        }
        self.flush_persist();
        if let Some(d) = self.disk.take() {
            d.stop();
        }
        if let Some(a) = self.applier.take() {
            a.stop();
        }
    }

    fn peers_tick_ms(&self) -> u64 {
        u64::from(self.shared.config.tick_time_ms.max(1))
    }

    fn step(&mut self, i: Input) {
        let outs = self.zab.step(i);
        self.process(outs);
    }

    fn send_disk(&mut self, op: DiskOp) {
        self.flush_persist();
        self.send_to_disk(op);
    }

    /// Hands the txns gathered since the last call to the disk queue as one message.
    ///
    /// A leader that is the whole ensemble (one voter, no observers) commits each of its
    /// proposals once it is durable: its own ACK is the quorum. Its proposals therefore
    /// travel with the txns, and the disk thread passes them to the applier right after
    /// the fsync (one hop less than Persisted -> driver -> applier). The core still
    /// commits them when it learns of the fsync; `on_commit` skips those up to
    /// `committed_on_sync`.
    fn flush_persist(&mut self) {
        if self.to_persist.is_empty() {
            return;
        }
        let txns = std::mem::take(&mut self.to_persist);
        let mut commit_on_sync = Vec::new();
        if self.commits_on_sync() {
            // One allocation of the right size (these vectors are large: growing them
            // one push at a time cost a realloc and a malloc_consolidate per doubling).
            commit_on_sync.reserve_exact(txns.len());
            let last = txns.last().map_or(Zxid(0), |t| t.zxid);
            while self.proposed.front().is_some_and(|p| p.zxid <= last) {
                if let Some(p) = self.proposed.pop_front() {
                    debug_assert!(p.zxid > self.committed_on_sync);
                    self.committed_on_sync = p.zxid;
                    commit_on_sync.push((p.rec, p.job));
                }
            }
        }
        self.send_to_disk(DiskOp::Txns {
            txns,
            commit_on_sync,
        });
    }

    /// Does this server commit its proposals on fsync (a leader that is the whole
    /// ensemble), with the commits travelling through the disk thread?
    fn commits_on_sync(&self) -> bool {
        // Only a standalone configuration never has peers: a single voter of a configured
        // ensemble (`standaloneEnabled=false`) may get learners, and a SNAP must see the
        // tree at the core's commit point.
        self.role == Role::Leading && !self.shared.config.is_distributed()
    }

    fn send_to_disk(&mut self, op: DiskOp) {
        if let Some(d) = &self.disk {
            if d.tx.send(op).is_err() {
                self.shared.lifecycle.fail("the disk thread stopped".into());
                self.stop = true;
            }
        }
    }

    /// Sends the commits gathered so far as one message (before anything else for the
    /// applier, so the order is kept).
    fn flush_commits(&mut self) {
        if self.commits.is_empty() {
            return;
        }
        let next = Vec::with_capacity(self.commits.len());
        let batch = std::mem::replace(&mut self.commits, next);
        self.send_to_applier(ApplyMsg::Commits(batch));
    }

    fn send_applier(&mut self, m: ApplyMsg) {
        self.flush_commits();
        self.send_to_applier(m);
    }

    /// Hands `m` to the applier behind every commit already on its way there. A leader
    /// that commits on fsync ([`Driver::commits_on_sync`]) sends its commits through the
    /// disk thread, so `m` takes that road too ([`DiskOp::AfterCommits`]): sent straight
    /// to the applier it could overtake them (a close before an earlier write's reply,
    /// a sync's answer before the write it follows) or be overtaken by the next write's
    /// commit. Otherwise the commits gathered so far go first ([`Driver::send_applier`]).
    fn after_commits(&mut self, m: ApplyMsg) {
        if self.commits_on_sync() {
            self.flush_persist();
            self.send_to_disk(DiskOp::AfterCommits(m));
        } else {
            self.send_applier(m);
        }
    }

    /// Closes client connections after the replies to their writes that committed before
    /// ([`Driver::after_commits`]; once the applier has been stopped, at shutdown, at
    /// once).
    fn close_after_commits(&mut self, conns: Vec<ConnId>, why: &'static str) {
        if self.applier.is_some() {
            self.after_commits(ApplyMsg::CloseConns(conns, why));
        } else {
            for c in conns {
                self.shared.clients.send_to(c, ConnMsg::Close(why));
            }
        }
    }

    fn send_to_applier(&mut self, m: ApplyMsg) {
        if let Some(a) = &self.applier {
            if a.tx.send(m).is_err() {
                self.shared
                    .lifecycle
                    .fail("the apply thread stopped".into());
                self.stop = true;
            }
        }
    }

    fn close_link(&mut self, peer: ServerId) {
        if let Some(l) = self.links.remove(&peer) {
            l.reader.abort();
        }
    }

    /// A learner connection for `sid` while its link `link` is up: held
    /// ([`WaitingLink`]) when that link is synced with this leader and the connection
    /// does not come from the IP address the configuration gives `sid`; else it replaces
    /// the link (a learner still syncing, any while this server looks for a leader, or
    /// the server reconnecting from its own address: its old link is dead, maybe
    /// half-open). So a connection in a server's name from elsewhere neither cuts the
    /// server off nor, once synced, keeps it out (a break-it review, session 53: a
    /// spoofer that completed the handshake kept a restarted follower out for as long as
    /// it ran, and a follower whose old link was half-open rejoined only when the leader
    /// dropped that link, after syncLimit ticks).
    fn learner_link(&mut self, sid: ServerId, link: Link) {
        let synced = self.role == Role::Leading
            && self.links.contains_key(&sid)
            && self.zab.synced_learners().contains(&sid);
        let home = self
            .peers
            .members
            .get(&sid)
            .filter(|p| p.resolved)
            .map(|p| p.quorum.ip());
        let from_home = |l: Option<&Link>| home.is_some() && l.and_then(|l| l.from) == home;
        let reclaims = synced && from_home(Some(&link));
        if reclaims && !from_home(self.links.get(&sid)) {
            tracing::warn!(%sid, link = link.id,
                from = ?link.from, synced_from = ?self.links.get(&sid).and_then(|l| l.from),
                "learner connection from the server's configured address replaces a synced link from another address");
        } else if reclaims {
            tracing::info!(%sid, link = link.id,
                "learner connection from the server's configured address replaces its synced link (taken for a dead one)");
        }
        if !synced || reclaims {
            // The core starts the learner anew at its FOLLOWERINFO.
            if let Some(old) = self.links.insert(sid, link) {
                old.reader.abort();
            }
            return;
        }
        tracing::info!(%sid, link = link.id,
            "learner connection from a server whose synced link is up; held until that link closes");
        let until = Instant::now() + Duration::from_millis(self.init_ms);
        let held = WaitingLink {
            link,
            info: None,
            until,
        };
        if let Some(older) = self.waiting_links.insert(sid, held) {
            older.link.reader.abort();
        }
    }

    /// Waiting learner connections ([`WaitingLink`]) take the place of a link that
    /// closed (their first packet goes to the core then), or are closed: past their
    /// deadline, or when this server no longer leads.
    fn settle_waiting_links(&mut self) {
        if self.waiting_links.is_empty() {
            return;
        }
        if self.role != Role::Leading {
            for (sid, w) in self.waiting_links.drain() {
                tracing::info!(%sid, link = w.link.id, "held learner connection closed: this server stopped leading");
                w.link.reader.abort();
            }
            return;
        }
        let now = Instant::now();
        let due: Vec<ServerId> = self
            .waiting_links
            .iter()
            .filter(|(sid, w)| !self.links.contains_key(sid) || w.until <= now)
            .map(|(sid, _)| *sid)
            .collect();
        for sid in due {
            let Some(w) = self.waiting_links.remove(&sid) else {
                continue;
            };
            if self.links.contains_key(&sid) {
                tracing::warn!(%sid, link = w.link.id, from = ?w.link.from,
                    synced_from = ?self.links.get(&sid).and_then(|l| l.from),
                    "two connections claim this server id; the second was held for initLimit ticks while the first stayed synced and is closed (a duplicate myid, or someone else using the id: quorum authentication, quorum.auth.* or sslQuorum, stops that)");
                w.link.reader.abort();
                continue;
            }
            tracing::info!(%sid, link = w.link.id, "held learner connection takes the place of the closed link");
            self.links.insert(sid, w.link);
            if let Some(p) = w.info {
                self.step(Input::Message {
                    from: sid,
                    msg: Message::Quorum(p),
                });
            }
        }
    }

    /// Hands every link's gathered packets to its writer (before the driver waits).
    fn flush_links(&mut self) {
        for l in self.links.values_mut() {
            l.flush();
        }
    }

    // ------------------------------------------------------------------ outputs

    fn process(&mut self, outs: Vec<Output>) {
        self.process_outputs(outs);
        self.flush_commits();
    }

    fn process_outputs(&mut self, mut outs: Vec<Output>) {
        for o in outs.drain(..) {
            match o {
                Output::Send {
                    to,
                    msg: Message::Election(n),
                } => {
                    if let Some(e) = &self.election {
                        e.send(to, &n);
                    }
                }
                Output::Send {
                    to,
                    msg: Message::Quorum(p),
                } => {
                    if let Some(l) = self.links.get_mut(&to) {
                        crate::metrics::hooks::quorum_packet_sent(p.ty);
                        l.pending.push(p);
                    }
                }
                Output::Connect { to } => self.connect(to),
                Output::Disconnect { peer } => self.close_link(peer),
                Output::PersistTxns(mut ts) => {
                    crate::metrics::hooks::txns_to_log(&ts, self.role);
                    self.note_proposed(&ts);
                    if self.to_persist.capacity() == 0 && ts.len() < JOBS_PER_WAKE {
                        // A leader proposes one txn per step: room for a wake-up's worth.
                        self.to_persist = Vec::with_capacity(JOBS_PER_WAKE);
                    }
                    self.to_persist.append(&mut ts);
                }
                Output::PersistEpoch { kind, epoch } => self.send_disk(DiskOp::Epoch(kind, epoch)),
                Output::Truncate { to } => self.send_disk(DiskOp::Truncate(to)),
                Output::SendSnapshot { to, zxid } => {
                    if let Some(l) = self.links.get_mut(&to) {
                        let (tx, rx) = oneshot::channel();
                        l.send_now(Outbound::Snap { zxid, body: rx });
                        crate::metrics::metrics().snap_count.inc();
                        tracing::info!(learner = %to, zxid = %zxid, "sending a snapshot");
                        self.send_applier(ApplyMsg::Snapshot { zxid, tx });
                    }
                }
                Output::InstallSnapshot { zxid } => match self.pending_snap.take() {
                    Some(s) => {
                        let copy = ReceivedSnapshot {
                            tree: s.tree.clone(),
                            sessions: s.sessions.clone(),
                        };
                        self.send_applier(ApplyMsg::Install(s));
                        self.send_disk(DiskOp::InstallSnapshot {
                            zxid,
                            tree: Box::new(copy.tree),
                            sessions: copy.sessions,
                        });
                    }
                    None => {
                        tracing::error!(zxid = %zxid, "asked to install a snapshot that never arrived");
                        self.shared
                            .lifecycle
                            .fail("snapshot install without a snapshot".into());
                        self.stop = true;
                    }
                },
                Output::Commit(t) => self.on_commit(t.zxid, &t.payload),
                Output::RoleChanged { role, leader } => self.on_role(role, leader),
                Output::Established { epoch, leader } => self.on_established(epoch, leader),
                Output::ProposalRejected { zxid } => {
                    tracing::error!(zxid = %zxid, "the core rejected a proposal");
                    let job = self
                        .proposed
                        .iter_mut()
                        .find(|p| p.zxid == zxid)
                        .and_then(|p| p.job.take());
                    if let Some(Origin::Conn(c)) = job.map(|j| j.origin) {
                        self.close_after_commits(vec![c], "proposal rejected");
                    }
                }
                Output::Deliver { from, packet } => self.on_deliver(from, packet),
                Output::Activate { config, leader } => self.on_activate(config, leader),
                Output::Unsupported { why } => {
                    tracing::error!(%why, "the ensemble's membership cannot be followed by this server; stopping");
                    self.shared.lifecycle.fail(format!(
                        "the leader asks for a membership rzk cannot put in force, so this \
                         server stops rather than acknowledge it: {why}"
                    ));
                }
                Output::EpochExhausted { why } => {
                    tracing::error!(%why, "no epoch left to lead with; stopping");
                    self.shared.lifecycle.fail(format!(
                        "no epoch left to lead with, so this server stops: {why}"
                    ));
                }
                Output::SessionTouches { data, .. } => {
                    if let Ok(ts) = decode_touches(&data) {
                        let now = self.shared.now_ms();
                        let mut s = self.shared.sessions();
                        // A learner's report read after a stall must not revive a
                        // session past its deadline (the sweep expires it).
                        for t in ts {
                            let _ = s.touch_live(SessionId(t.session_id), now);
                        }
                    }
                }
            }
        }
        self.zab.recycle(outs);
    }

    fn connect(&mut self, to: ServerId) {
        self.close_link(to);
        let Some(peer) = self.peers.members.get(&to) else {
            tracing::error!(leader = %to, "elected leader is not in the configuration");
            return;
        };
        let mut addr = peer.quorum_target();
        let mut host = peer.host();
        if let Some((master, a)) = self.om_learner_master(to) {
            tracing::info!(leader = %to, %master, addr = %a, "observing through observer master {master}");
            if let Some(m) = self.peers.members.get(&master) {
                host = crate::net::peer::election_net::host_of(&m.election_text);
            }
            addr = a;
            self.shared.quorum.set_role(Role::Observing, Some(master));
        } else if self.role == Role::Observing {
            self.shared.quorum.set_role(Role::Observing, Some(to));
        }
        let id = learner_net::next_link_id();
        let (tx, rx) = learner_net::link_channel();
        let h = self.rt.spawn(learner_net::connect(
            to,
            addr,
            host,
            id,
            rx,
            self.events_tx.clone(),
            Duration::from_millis(self.init_ms.max(1000)),
            leader_connect_retry(&self.shared.config),
            self.shared.config.extended_types_enabled,
            self.quorum_tls.clone(),
            self.quorum_sasl.clone(),
        ));
        self.links.insert(to, Link::new(id, tx, h.abort_handle()));
    }

    fn on_commit(&mut self, zxid: Zxid, payload: &Bytes) {
        self.om_commit(zxid, payload);
        if zxid <= self.committed_on_sync {
            // The disk thread already handed it to the applier (see `flush_persist`).
            crate::metrics::hooks::committed(zxid, true, 0, || 0);
            self.release_leader_syncs(zxid);
            return;
        }
        // The leader still holds the record it prepared; others decode the payload.
        while self.proposed.front().is_some_and(|p| p.zxid < zxid) {
            debug_assert!(false, "a proposal below {zxid} was never committed");
            self.proposed.pop_front();
        }
        let mine = match self.proposed.front() {
            Some(p) if p.zxid == zxid => self.proposed.pop_front(),
            _ => None,
        };
        let (rec, job) = match mine {
            Some(p) => (Ok(p.rec), p.job),
            None => (TxnRecord::decode(payload), None),
        };
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(zxid = %zxid, "committed txn does not decode: {e}");
                self.shared
                    .lifecycle
                    .fail(format!("committed txn {zxid} does not decode: {e}"));
                self.stop = true;
                return;
            }
        };
        let job = if self.role == Role::Leading {
            job
        } else {
            self.remote_pending
                .remove(&(SessionId(rec.header.client_id), rec.header.cxid))
        };
        let clock = &mut self.clock;
        crate::metrics::hooks::committed(zxid, self.role == Role::Leading, rec.header.time, || {
            clock.wall_ms()
        });
        self.commits.push((rec, job));
        self.release_leader_syncs(zxid);
    }

    /// Answers the local syncs that waited for the commit of `zxid` or an earlier txn
    /// (through the applier, after those commits).
    fn release_leader_syncs(&mut self, zxid: Zxid) {
        while self.leader_syncs.front().is_some_and(|(z, _)| *z <= zxid) {
            if let Some((_, job)) = self.leader_syncs.pop_front() {
                self.send_applier(ApplyMsg::Reply(Box::new(job)));
            }
        }
    }

    fn on_role(&mut self, role: Role, leader: Option<ServerId>) {
        tracing::info!(sid = %self.peers.me, ?role, ?leader, "role changed");
        self.om_stop();
        self.members.forget_proposed();
        if self.serving {
            self.stop_serving();
        }
        self.role = role;
        self.set_quorum_port();
        if role == Role::Looking {
            self.looking.started(Instant::now());
        } else {
            self.looking.stopped();
            self.shared.stats.new_role();
        }
        self.shared.quorum.set_role(role, leader);
        self.shared
            .quorum
            .set_learners(crate::zab::LearnerCounts::default());
        crate::readonly::on_role(&self.shared, role, Instant::now());
    }

    /// Listens on the quorum port while this server leads or, as a voter, looks for a
    /// leader; closes it as a follower or observer (`node/quorum_port.rs`). ZooKeeper
    /// binds it only once LEADING; rzk's voter already listens while LOOKING, so a
    /// learner that concluded the election first is not refused: its FOLLOWERINFO is
    /// held until this election ends (`Zab::early_learners`, docs/QUORUM-PROTOCOL.md).
    fn set_quorum_port(&mut self) {
        let voter = self.zab.membership().1.contains(&self.peers.me);
        let listen = match self.role {
            Role::Leading => true,
            Role::Looking => voter,
            Role::Following | Role::Observing => false,
        };
        if listen {
            self.quorum_port.open();
        } else {
            self.quorum_port.close();
        }
        debug_assert_eq!(
            self.quorum_port.is_open(),
            listen && !self.quorum_port.addrs().is_empty()
        );
    }

    fn stop_serving(&mut self) {
        self.serving = false;
        self.prep_caught_up = false;
        self.announce_pending = false;
        self.shared.quorum.set_serving(false);
        // After the commits on their way to the applier: their clients get the replies
        // before the close.
        let ids = self.shared.clients.conn_ids();
        tracing::info!(
            clients = ids.len(),
            "not serving clients any more; connections closed"
        );
        self.close_after_commits(ids, "this server lost its leader");
        self.shared.sessions().forget_proposed();
        self.proposed.clear();
        self.remote_pending.clear();
        self.learner_syncs.clear();
        self.leader_syncs.clear();
        self.held.clear();
        self.revalidations_waiting.clear();
        self.touch_seen.clear();
        self.revalidations.clear();
        self.prep.reset();
    }

    fn on_established(&mut self, epoch: u32, leader: ServerId) {
        tracing::info!(sid = %self.peers.me, epoch, %leader, "serving clients");
        if leader == self.peers.me {
            self.prep = Prep::for_config(&self.shared.config);
            self.prep_ready_at = self.zab.last_committed();
            self.prep_caught_up = false;
            let now = self.shared.now_ms();
            {
                let mut s = self.shared.sessions();
                s.clear_owners();
                s.forget_proposed();
                let reopened = s.reopen_closing(now);
                if reopened > 0 {
                    tracing::info!(reopened, "sessions left closing by an earlier term");
                }
                for id in s.ids() {
                    let _ = s.touch(id, now);
                }
            }
            if self.shared.config.reconfig_enabled && self.shared.config.is_distributed() {
                // The membership in force may have taken the epoch's version
                // (`version_initial_membership`): /zookeeper/config shows it.
                let (text, version) = self.members.in_force();
                self.send_applier(ApplyMsg::ConfigNode(text, version));
            }
            // Clients are let in once the tree has applied the established history.
            self.announce_pending = true;
            self.want_applied
                .store(true, std::sync::atomic::Ordering::Release);
        } else {
            // Closing marks are the leader's decisions (an expiry, a closeSession
            // prepared): this server's own, made while it led, died with that term (its
            // closeSessions were lost or are applied through the sync). As a learner it
            // asks the leader about a re-attaching session, as ZooKeeper's new
            // `LearnerSessionTracker` does.
            let reopened = self.shared.sessions().reopen_closing(self.shared.now_ms());
            if reopened > 0 {
                tracing::info!(
                    reopened,
                    "sessions left closing by this server's leadership"
                );
            }
            // After the commits of the sync, before any client is let in.
            let (text, version) = self.members.in_force();
            self.send_applier(ApplyMsg::ConfigNode(text, version));
            self.shared.quorum.set_serving(true);
            self.om_start(epoch);
        }
        self.serving = true;
    }

    /// Leader: once the tree holds the whole established history, serve clients and
    /// close the sessions that own ephemerals but are not in the session table (their
    /// closeSession was lost, e.g. with a log cut short), through the write path so every
    /// replica removes their ephemerals — as ZooKeeper's leader does when it loads its
    /// database.
    fn announce_when_ready(&mut self) {
        if !self.announce_pending || !self.can_prep() {
            return;
        }
        self.announce_pending = false;
        if std::mem::take(&mut self.snapshot_after_recovery) {
            // Start-up progress: the logged history is in the tree now (for a large log
            // this is the last silent stretch before clients are let in).
            tracing::info!(
                "transactions logged after the snapshot applied, up to zxid {}, {} ms after start-up; taking a snapshot",
                self.zab.last_committed(),
                self.start.elapsed().as_millis()
            );
            self.send_disk(DiskOp::Snapshot);
        }
        let orphans: Vec<SessionId> = {
            let tree = self.shared.tree();
            let sessions = self.shared.sessions();
            tree.ephemeral_sessions()
                .into_iter()
                .filter(|s| !sessions.contains(*s))
                .collect()
        };
        for sid in orphans {
            tracing::info!(
                "closing orphan session 0x{sid:x} (owns ephemerals, not in the session table)"
            );
            self.lead(Work::Local(Job {
                origin: Origin::Internal,
                session: sid,
                xid: 0,
                kind: JobKind::Write(WriteRequest::CloseSession),
                auth: Arc::default(),
                received: Instant::now(),
                admitted: Default::default(),
            }));
        }
        self.shared.quorum.set_serving(true);
    }

    fn on_deliver(&mut self, from: ServerId, p: QuorumPacket) {
        match (self.role, p.ty) {
            (Role::Leading, PacketType::Request) => {
                let f = match ForwardedRequest::decode(p.data()) {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::warn!(learner = %from, "malformed REQUEST dropped: {e}");
                        return;
                    }
                };
                let req = forward::decode(&f, self.shared.config.jute_max_buffer);
                // The leader judges the ids with its own providers (sasl, digest...).
                let auth =
                    forward::auth_of(&p).with_providers(self.shared.config.auth.providers.clone());
                self.lead(Work::Remote {
                    from,
                    session: SessionId(f.session_id),
                    cxid: f.cxid,
                    req,
                    auth,
                });
            }
            (Role::Leading, PacketType::Revalidate) => {
                let Ok((session, _timeout)) = decode_revalidate(p.data()) else {
                    return;
                };
                if self.caught_up() {
                    self.answer_revalidate(from, session);
                } else {
                    // A new leader's applier may still be replaying its log (sessions
                    // created there included) while its learners already serve:
                    // answered once the tree holds the established history. ZooKeeper's
                    // leader loads its whole database before it leads. Not queued
                    // behind held writes: answered at once otherwise, so that a session's
                    // owner follows the order its re-attaches came in.
                    self.revalidations_waiting.push((from, session));
                    self.want_applied
                        .store(true, std::sync::atomic::Ordering::Release);
                }
            }
            (Role::Following | Role::Observing, PacketType::Revalidate) => {
                self.om_revalidate_reply(&p);
                if let Ok((session, valid)) = decode_revalidate_reply(p.data()) {
                    let session = SessionId(session);
                    for w in self.revalidations.remove(&session).unwrap_or_default() {
                        let _ = w.send(valid);
                    }
                }
            }
            (Role::Following | Role::Observing, PacketType::Sync) => {
                match self.learner_syncs.pop_front() {
                    Some(LearnerSync::Local(job)) => {
                        self.send_applier(ApplyMsg::Reply(Box::new(job)));
                    }
                    Some(LearnerSync::Observer(obs)) => self.om_sync_answered(obs),
                    None => {}
                }
            }
            (role, ty) => {
                tracing::debug!(?role, ?ty, %from, "delivered packet ignored");
            }
        }
    }

    // ------------------------------------------------------------------ clients

    fn on_job(&mut self, job: Job) {
        if matches!(job.kind, JobKind::Stop) {
            self.stop = true;
            return;
        }
        if !self.serving || self.role != Role::Leading {
            self.not_led_here(&job);
        }
        if !self.serving {
            if let Origin::Conn(c) = job.origin {
                // After the replies of this connection's earlier writes that committed.
                self.close_after_commits(vec![c], "this server is not serving");
            }
            return;
        }
        match self.role {
            Role::Leading => self.lead(Work::Local(job)),
            Role::Following | Role::Observing => self.learner_job(job),
            Role::Looking => {}
        }
    }

    /// A job this server's prep will not see (it is not leading, or not serving): a
    /// createSession registered by its connection while this server led (a local
    /// session's upgrade, `net::conn`) is withdrawn, else it would stay in the session
    /// table's proposals until the next change of leadership.
    fn not_led_here(&self, job: &Job) {
        if matches!(job.kind, JobKind::Write(WriteRequest::CreateSession { .. })) {
            self.shared.sessions().abandon_create(job.session);
        }
    }

    fn learner_job(&mut self, job: Job) {
        if job.origin == Origin::Internal {
            // Expiry and container reaping belong to the leader.
            return;
        }
        let p = match &job.kind {
            JobKind::Write(req) => {
                let p = forward::write_packet(job.session, job.xid, req, &job.auth);
                self.remote_pending.insert((job.session, job.xid), job);
                p
            }
            JobKind::Sync(path) => {
                let p = forward::sync_packet(
                    job.session,
                    job.xid,
                    path.as_deref().unwrap_or(""),
                    &job.auth,
                );
                self.learner_syncs.push_back(LearnerSync::Local(job));
                p
            }
            JobKind::Reconfig(req) => {
                let p = forward::reconfig_packet(job.session, job.xid, req, &job.auth);
                self.remote_pending.insert((job.session, job.xid), job);
                p
            }
            JobKind::ErrorTxn { op, body, .. } => {
                // Forwarded as sent: the leader logs the error txn (a zxid, as on
                // ZooKeeper) and the reply follows its commit, in the session's order.
                let p = forward::raw_packet(job.session, job.xid, *op, body.clone(), &job.auth);
                self.remote_pending.insert((job.session, job.xid), job);
                p
            }
            JobKind::Stop => return,
        };
        self.step(Input::Forward(p));
    }

    fn on_revalidation(&mut self, r: Revalidation) {
        if !self.serving || !matches!(self.role, Role::Following | Role::Observing) {
            return; // dropping the reply sender answers "invalid"
        }
        let first = !self.revalidations.contains_key(&r.session);
        self.revalidations
            .entry(r.session)
            .or_default()
            .push(r.reply);
        if first {
            let p = QuorumPacket::with_data(
                PacketType::Revalidate,
                -1,
                encode_revalidate(r.session.0, r.timeout_ms),
            );
            self.step(Input::Forward(p));
        }
    }

    fn can_prep(&mut self) -> bool {
        self.zab.next_zxid().is_some() && self.caught_up()
    }

    fn lead(&mut self, w: Work) {
        if let Work::Local(job) = &w {
            crate::metrics::hooks::reached_prep(job.received, self.clock.mono, self.held.len());
        }
        if !self.held.is_empty() || !self.can_prep() {
            self.held.push_back(w);
            self.want_applied
                .store(true, std::sync::atomic::Ordering::Release);
            return;
        }
        self.lead_now(w);
    }

    /// Runs the held work prep can take now, then answers the REVALIDATEs that waited
    /// for the tree to catch up.
    fn drain_held(&mut self) {
        while !self.held.is_empty() && self.can_prep() {
            if let Some(w) = self.held.pop_front() {
                self.lead_now(w);
            }
        }
        self.answer_waiting_revalidations();
    }

    fn lead_now(&mut self, w: Work) {
        match w {
            Work::Local(job) => match &job.kind {
                JobKind::Write(req) => {
                    let rec = self.prepare(
                        job.session,
                        job.xid,
                        Ok(req),
                        &job.auth,
                        SessionOwner::ThisServer,
                    );
                    self.propose(rec, Some(job));
                }
                JobKind::ErrorTxn { code, .. } => {
                    let rec = self.prepare(
                        job.session,
                        job.xid,
                        Err(*code),
                        &job.auth,
                        SessionOwner::ThisServer,
                    );
                    self.propose(rec, Some(job));
                }
                JobKind::Reconfig(req) => {
                    let rec = self.prepare_reconfig(
                        job.session,
                        job.xid,
                        req,
                        &job.auth,
                        SessionOwner::ThisServer,
                    );
                    self.propose(rec, Some(job));
                }
                JobKind::Sync(_) => {
                    let last = self.zab.last_logged();
                    if self.zab.last_committed() >= last {
                        self.send_applier(ApplyMsg::Reply(Box::new(job)));
                    } else if self.commits_on_sync() {
                        self.after_commits(ApplyMsg::Reply(Box::new(job)));
                    } else {
                        self.leader_syncs.push_back((last, job));
                    }
                }
                JobKind::Stop => {}
            },
            Work::Remote {
                from,
                session,
                cxid,
                req,
                auth,
            } => match req {
                Forwarded::Write(r) => {
                    let rec =
                        self.prepare(session, cxid, Ok(&r), &auth, SessionOwner::Learner(from));
                    self.propose(rec, None);
                }
                Forwarded::Error(code) => {
                    let rec =
                        self.prepare(session, cxid, Err(code), &auth, SessionOwner::Learner(from));
                    self.propose(rec, None);
                }
                Forwarded::Reconfig(r) => {
                    let rec = self.prepare_reconfig(
                        session,
                        cxid,
                        &r,
                        &auth,
                        SessionOwner::Learner(from),
                    );
                    self.propose(rec, None);
                }
                Forwarded::Sync => self.step(Input::SyncRequest { from }),
            },
        }
    }

    /// Leader: whether the tree holds the established history (prep may run, and the
    /// session table answers for every session of that history).
    fn caught_up(&mut self) -> bool {
        if !(self.serving && self.role == Role::Leading) {
            return false;
        }
        if !self.prep_caught_up {
            self.prep_caught_up = self.shared.tree().last_zxid() >= self.prep_ready_at;
        }
        self.prep_caught_up
    }

    /// Answers the REVALIDATEs that waited for [`Driver::caught_up`], in arrival order.
    fn answer_waiting_revalidations(&mut self) {
        if self.revalidations_waiting.is_empty() || !self.caught_up() {
            return;
        }
        for (from, session) in std::mem::take(&mut self.revalidations_waiting) {
            self.answer_revalidate(from, session);
        }
    }

    /// Answers a learner's REVALIDATE: the session is valid if it is live (or its
    /// createSession is proposed and not applied yet), and it is attached at that
    /// learner from now on (ZooKeeper's `touchSession`, then `setOwner` to the learner's
    /// handler).
    fn answer_revalidate(&mut self, from: ServerId, session: i64) {
        let valid = {
            let now = self.shared.now_ms();
            let mut sessions = self.shared.sessions();
            let valid = sessions.touch_live(SessionId(session), now).is_ok();
            if valid {
                sessions.set_owner(SessionId(session), SessionOwner::Learner(from));
            }
            valid
        };
        let reply = QuorumPacket::with_data(
            PacketType::Revalidate,
            -1,
            encode_revalidate_reply(session, valid),
        );
        self.step(Input::SendToLearner {
            to: from,
            packet: reply,
        });
    }

    /// Prep: the request (or the error a connection already decided) as the txn of the
    /// next zxid, against the tree and the outstanding changes. `None` if this server
    /// cannot propose (no zxid: not leading).
    fn prepare(
        &mut self,
        session: SessionId,
        cxid: i32,
        req: Result<&WriteRequest, ErrorCode>,
        auth: &AuthInfo,
        from: SessionOwner,
    ) -> Option<(Zxid, TxnRecord)> {
        let Some(zxid) = self.zab.next_zxid() else {
            if matches!(req, Ok(WriteRequest::CreateSession { .. })) {
                // Registered by a local session's upgrade (`net::conn`), never proposed.
                self.shared.sessions().abandon_create(session);
            }
            tracing::error!("asked to propose without a zxid");
            return None;
        };
        // Prep is timed from the end of the previous prep of this wake-up (or the
        // wake-up): one clock reading per write, which also times the proposal that ends
        // each txn.
        let started = self.clock.mono;
        let now = self.clock.wall_ms();
        // checkSession: a write of an expired / closed session (on its way when the
        // session expired) must not run after the closeSession; one that comes from a
        // connection the session has left (attached elsewhere since) must not run after
        // what the client sent on its new connection: SESSIONMOVED, and the connection
        // it came on is closed when the error txn is answered. As in ZooKeeper,
        // closeSession is not checked (the expiry sweep sends it from nowhere).
        let req = match req {
            Ok(WriteRequest::CloseSession) => {
                // ZooKeeper's prep marks the session closing here, in request order:
                // writes the client sent before its closeSession were prepared already
                // and run; only what comes after is refused. (Marked when the
                // connection queued it, the writes still queued before it were refused
                // with SESSIONEXPIRED: break-it review.)
                self.shared.sessions().set_closing(session);
                req
            }
            Ok(WriteRequest::CreateSession { .. }) => {
                // ZooKeeper's prep tracks the session from here: a learner may apply the
                // commit and see the client re-attach at another learner before this
                // server's applier has added it (session review, session 45).
                self.shared.sessions().proposed_create(session);
                req
            }
            // The server's own deletes of containers and TTL nodes (session 0): ZooKeeper's
            // prep checks no session for deleteContainer, which no client may send.
            Ok(WriteRequest::DeleteContainer(_)) => req,
            Ok(_) => match self.session_refusal(session, from) {
                Some(code) => Err(code),
                None => req,
            },
            other => other,
        };
        let tree = self.shared.tree();
        let rec = match req {
            Ok(r) => self.prep.prepare(&tree, session, cxid, r, auth, zxid, now),
            Err(code) => self
                .prep
                .error_record(&tree, session, cxid, zxid, now, code),
        };
        drop(tree);
        let ended = Instant::now();
        crate::metrics::hooks::prepared(
            started,
            ended,
            matches!(req, Ok(WriteRequest::CloseSession)),
        );
        self.clock.mono = ended;
        Some((zxid, rec))
    }

    /// ZooKeeper's `checkSession` for a write (or reconfig) of `session` that came from
    /// `from`: SESSIONEXPIRED when the session is closing or closed, or unknown here
    /// (neither applied nor proposed) and not possibly another member's local session;
    /// SESSIONMOVED when it is attached elsewhere
    /// ([`crate::session::SessionTracker::check_owner`]).
    pub(super) fn session_refusal(
        &self,
        session: SessionId,
        from: SessionOwner,
    ) -> Option<ErrorCode> {
        // Decided before the global table is locked (never both locks at once).
        let unknown_may_write = self.unknown_session_may_write(session);
        let mut sessions = self.shared.sessions();
        if sessions.refuses_writes(session) || (!unknown_may_write && !sessions.knows(session)) {
            Some(ErrorCode::SessionExpired)
        } else if !sessions.check_owner(session, from) {
            Some(ErrorCode::SessionMoved)
        } else {
            None
        }
    }

    /// Whether a write of `session` may pass when the global session table does not know
    /// it, as ZooKeeper's `LeaderSessionTracker.checkSession` decides: only with
    /// `localSessionsEnabled` (on an ensemble), for one of this server's local sessions
    /// or a session whose id does not carry this server's id (`sessionId >> 56`, the
    /// creating member's id: another member's local session). Otherwise SESSIONEXPIRED
    /// (a session closed longer ago than the table remembers, a member whose local
    /// sessions this leader does not have).
    fn unknown_session_may_write(&self, session: SessionId) -> bool {
        let config = &self.shared.config;
        if !(config.local_sessions_enabled && self.shared.quorum.is_distributed()) {
            return false;
        }
        session.0 >> 56 != config.server_id().0 || self.shared.local_sessions().contains(session)
    }

    /// Proposes a prepared txn; `origin` is the local job waiting for it.
    fn propose(&mut self, prepared: Option<(Zxid, TxnRecord)>, origin: Option<Job>) {
        let Some((zxid, rec)) = prepared else {
            return;
        };
        let payload = Bytes::from(rec.encode());
        let time_ms = rec.header.time;
        debug_assert!(self.proposed.back().is_none_or(|p| p.zxid < zxid));
        self.proposed.push_back(Proposed {
            zxid,
            rec,
            job: origin,
        });
        crate::metrics::hooks::proposed(zxid, payload.len(), time_ms);
        self.step(Input::Propose { zxid, payload });
    }

    // ------------------------------------------------------------------ events

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Notification { from, slot } => {
                if let Some(n) = slot.take() {
                    self.step(Input::Message {
                        from,
                        msg: Message::Election(n),
                    })
                }
            }
            Event::Packet {
                from,
                link,
                packet,
                snap,
            } => {
                if self.links.get(&from).map(|l| l.id) != Some(link) {
                    // A held connection's first packet waits with it (`WaitingLink`);
                    // anything else from a link not in use is dropped.
                    if let Some(w) = self.waiting_links.get_mut(&from) {
                        if w.link.id == link && w.info.is_none() {
                            w.info = Some(packet);
                        }
                    }
                    return;
                }
                if snap.is_some() {
                    self.pending_snap = snap;
                }
                self.step(Input::Message {
                    from,
                    msg: Message::Quorum(packet),
                });
            }
            Event::LearnerLink {
                sid,
                link,
                tx,
                reader,
                from,
            } => {
                if matches!(self.role, Role::Following | Role::Observing) {
                    // A learner leads nobody: the connection is refused, as a ZooKeeper
                    // follower does not even listen on its quorum port. Above all it
                    // must not take the place of the link to this server's own leader
                    // (links are kept by server id): the old leader connects to the
                    // follower a reconfig designated before that one has read the
                    // COMMITANDACTIVATE making it lead (`tests/quorum_links.rs`).
                    tracing::debug!(%sid, link, "learner connection to a learner; closed");
                    reader.abort();
                    drop(tx);
                } else {
                    let mut l = Link::new(link, tx, reader);
                    l.from = Some(from.ip());
                    self.learner_link(sid, l);
                }
            }
            Event::LinkClosed { peer, link } => {
                if self.links.get(&peer).map(|l| l.id) == Some(link) {
                    self.links.remove(&peer);
                    self.step(Input::Disconnected { peer });
                } else if self.waiting_links.get(&peer).map(|w| w.link.id) == Some(link) {
                    self.waiting_links.remove(&peer);
                }
            }
            Event::Persisted(z) => {
                crate::metrics::hooks::persisted(z);
                self.step(Input::Persisted { up_to: z })
            }
            Event::EpochPersisted(kind, epoch) => self.step(Input::EpochPersisted { kind, epoch }),
            Event::DiskFailed(why) => {
                self.shared.lifecycle.fail(format!("disk failure: {why}"));
                self.stop = true;
            }
            Event::Applied(_) => {}
            Event::ObserverMaster(e) => self.om_event(e),
        }
        self.announce_when_ready();
        self.drain_held();
        if self.held.is_empty() && self.revalidations_waiting.is_empty() && !self.announce_pending {
            self.want_applied
                .store(false, std::sync::atomic::Ordering::Release);
        }
    }

    fn on_tick(&mut self) {
        if self.role == Role::Leading && crate::metrics::hooks::marker_due() {
            for l in self.links.values_mut() {
                l.send_now(Outbound::Marker(Instant::now()));
            }
        }
        let now = self.now_ms();
        self.step(Input::Tick { now_ms: now });
        // (A batch applied just before `want_applied` was set reported nothing.)
        self.announce_when_ready();
        self.drain_held();
        self.report_looking();
        crate::readonly::on_tick(&self.shared, Instant::now());
        if !self.serving {
            return;
        }
        match self.role {
            Role::Leading => {
                let expired = {
                    let now = self.shared.now_ms();
                    self.shared.sessions().take_expired(now)
                };
                crate::metrics::metrics()
                    .stale_sessions_expired
                    .add(expired.len() as u64);
                for sid in expired {
                    tracing::info!("expiring session 0x{sid:x}");
                    self.lead(Work::Local(Job {
                        origin: Origin::Internal,
                        session: sid,
                        xid: 0,
                        kind: JobKind::Write(WriteRequest::CloseSession),
                        auth: Arc::default(),
                        received: Instant::now(),
                        admitted: Default::default(),
                    }));
                }
                crate::metrics::hooks::set_pending_syncs(self.zab.pending_syncs());
                self.shared.quorum.set_learners(self.zab.learner_counts());
            }
            Role::Following | Role::Observing => {
                self.om_tick();
                self.report_touches();
            }
            Role::Looking => {}
        }
        self.drain_held();
    }

    /// While LOOKING in an ensemble, now and then: why (votes, unreachable peers).
    fn report_looking(&mut self) {
        let Some(election) = &self.election else {
            return;
        };
        let Some(looking_for) = self.looking.due(Instant::now()) else {
            return;
        };
        if let Some(p) = self.zab.election_progress() {
            let down = election.unreachable();
            tracing::warn!(sid = %self.peers.me, "{}", looking::describe(looking_for, &p, &down));
        }
    }

    /// Learner: sessions whose clients sent anything since the last report.
    fn report_touches(&mut self) {
        let mut touches = Vec::new();
        {
            let conns = self.shared.clients.registry();
            self.touch_seen.retain(|id, _| conns.conns.contains_key(id));
            for (id, c) in &conns.conns {
                let Some(s) = c.session else { continue };
                let n = c.stats.received.load(std::sync::atomic::Ordering::Relaxed);
                if self.touch_seen.insert(*id, n) != Some(n) {
                    touches.push(SessionTouch {
                        session_id: s.0,
                        timeout_ms: c.session_timeout_ms,
                    });
                }
            }
        }
        if !touches.is_empty() {
            self.step(Input::SessionTouches(Bytes::from(encode_touches(&touches))));
        }
    }
}

/// The pause between a learner's attempts to connect to its leader: ZooKeeper's
/// `zookeeper.leaderConnectDelayDuringRetryMs` (`Integer.getInteger`, default 100 ms;
/// zoo.cfg may set it bare, as ZooKeeper turns unknown keys into system properties).
fn leader_connect_retry(cfg: &crate::config::Config) -> Duration {
    let ms = crate::tls::property(cfg, "leaderConnectDelayDuringRetryMs")
        .and_then(crate::config::java_integer)
        .unwrap_or(100);
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod link_tests {
    use super::*;

    fn commit(zxid: i64) -> QuorumPacket {
        QuorumPacket::new(PacketType::Commit, zxid)
    }

    fn zxids(o: &Outbound) -> Vec<i64> {
        match o {
            Outbound::Packet(p) => vec![p.zxid],
            Outbound::Packets(ps) => ps.iter().map(|p| p.zxid).collect(),
            Outbound::Marker(_) => vec![-1],
            Outbound::Snap { zxid, .. } => vec![-2 - zxid.0],
        }
    }

    /// A link hands over what it gathered before anything queued after it, and a flush
    /// of nothing queues nothing.
    #[tokio::test]
    async fn gathered_packets_go_out_before_what_follows_them() {
        let (tx, mut rx) = learner_net::link_channel();
        let reader = tokio::spawn(async {}).abort_handle();
        let mut link = Link::new(1, tx, reader);
        link.flush();
        assert!(rx.try_recv().is_none());
        link.pending.push(commit(1));
        link.pending.push(commit(2));
        link.send_now(Outbound::Marker(Instant::now()));
        link.pending.push(commit(3));
        link.flush();
        link.flush();
        let (_body_tx, body) = oneshot::channel();
        link.pending.push(commit(4));
        link.send_now(Outbound::Snap {
            zxid: Zxid(9),
            body,
        });
        let mut got = Vec::new();
        while let Some(o) = rx.try_recv() {
            got.push(zxids(&o));
        }
        assert_eq!(got, vec![vec![1, 2], vec![-1], vec![3], vec![4], vec![-11]]);
        assert!(link.pending.is_empty());
    }

    /// A link dropped (closed, replaced, the driver stopping) still queues what it had
    /// gathered, which its writer writes before it ends.
    #[tokio::test]
    async fn a_dropped_link_hands_over_what_it_gathered() {
        let (tx, mut rx) = learner_net::link_channel();
        let reader = tokio::spawn(async {}).abort_handle();
        let mut link = Link::new(1, tx, reader);
        link.pending.push(commit(5));
        link.pending.push(commit(6));
        drop(link);
        let got = rx.try_recv().map(|o| zxids(&o));
        assert_eq!(got, Some(vec![5, 6]));
        assert!(rx.try_recv().is_none());
    }
}
