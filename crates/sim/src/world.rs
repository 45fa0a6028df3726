//! One simulated run: the event loop, the fake network / disks / clock, crashes and
//! restarts, partitions, and clients. Everything random comes from one seeded RNG and
//! events are ordered by (time, sequence number), so a seed always replays the same run.

use crate::checker::{hash_bytes, Checker, SmState, Violation};
use crate::net::Links;
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rzk_proto::quorum::{PacketType, QuorumPacket};
use rzk_proto::txn::TxnRecord;
use rzk_proto::{ServerId, Zxid};
use rzk_server::tree::DataTree;
use rzk_server::zab::{Durable, EpochKind, Input, Message, Output, Role, Txn, Zab, ZabConfig};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};

mod server;

/// Simulated clock step between ticks fed to every server.
const TICK_EVERY_MS: u64 = 20;
/// The core's tickTime in the simulation.
const TICK_MS: u64 = 100;
/// Events one run may process before it is declared a livelock.
const MAX_EVENTS: u64 = 5_000_000;
/// Trace lines kept for a failing replay.
const TRACE_KEEP: usize = 3000;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub seed: u64,
    pub voters: usize,
    pub observers: usize,
    /// Faults (crashes, partitions, drops) happen before this time...
    pub chaos_ms: u64,
    /// ...then everything heals and the ensemble must converge within this.
    pub quiet_ms: u64,
    /// Break the leader on purpose (commit without quorum) to prove the checker works.
    pub fault_commit_without_quorum: bool,
    /// Keep a trace of events to print on failure.
    pub trace: bool,
    /// Whole-server mode (`world/server.rs`): each node also runs the server's prep,
    /// tree apply, watches and per-session reply order, and seeded clients pipeline
    /// real requests on sessions; payloads are real txns.
    pub server: bool,
    /// Whole-server mode's injected bug: a read may overtake the same session's pending
    /// write (`ReplyOrder::set_fault_reads_overtake_writes`); the checker must catch it.
    pub fault_reads_overtake: bool,
    /// Whole-server mode's injected bug: the leader's session tracker accepts writes
    /// of expired sessions (`SessionTracker::set_fault_accept_closed_writes`); the
    /// checker must catch a write (an ephemeral) that runs after its closeSession.
    pub fault_closed_writes: bool,
    /// Whole-server mode's injected bug: a failing multi does not roll back the
    /// leader's prep overlay (`Prep::set_fault_multi_no_rollback`).
    pub fault_multi_no_rollback: bool,
    /// Whole-server mode's injected bug: restarts read their log accepting records
    /// whose only fault is their checksum (`LogFileReader::accept_bad_checksums`, the
    /// TxnLogToolkit's recovery mode): a damaged record must then be caught.
    pub fault_accept_bad_checksums: bool,
    /// Whole-server mode's injected bug: a notification does not first hand over its
    /// connection's held answers (`node::apply::Answers::release_for` skipped), so it
    /// can overtake an earlier write's reply; the checker must catch it.
    pub fault_notify_overtakes: bool,
    /// Whole-server mode: commits are applied in chunks whose answers are held until the
    /// chunk ends, as `node/apply.rs` does (`apply_chunk`, `Answers`), with seeded chunk
    /// ends. Off: each txn's answers go out as it is applied (the trajectories of seeds
    /// recorded before session 32).
    pub chunked_apply: bool,
    /// Whole-server mode: clients sometimes end their session with closeSession (after
    /// whatever they have outstanding) and start a new one. Off: as seeds recorded
    /// before session 32.
    pub client_closes: bool,
    /// Whole-server mode: a client back on its session re-registers its watches with
    /// SetWatches (keeping them across reconnects). Off: watches are forgotten on a
    /// disconnect, as seeds recorded before session 32.
    pub client_set_watches: bool,
    /// Hierarchical quorums (`group.G` / `weight.S`): the voters in groups with weights,
    /// one of three layouts per ensemble size chosen by the seed ([`sim_groups`]).
    pub groups: bool,
}

/// The hierarchical quorums of `--groups` for `voters` voters (ids 1..=voters), by
/// `seed`: groups of unequal weight, voters of weight 0 (never leader), a group of
/// weight 0 (not counted among the groups), and layouts where one crashed voter or a
/// minority of the servers stops every quorum. The whole ensemble is always a quorum.
pub fn sim_groups(seed: u64, voters: usize) -> rzk_server::zab::quorum::Groups {
    let s = |ids: &[i64]| ids.iter().copied().map(ServerId).collect::<Vec<_>>();
    type Layout = (Vec<(i64, Vec<ServerId>)>, Vec<(i64, i64)>);
    let (groups, weights): Layout = match (voters, (seed / 2) % 4) {
        (3, 0) => (vec![(1, s(&[1, 2, 3]))], vec![(1, 0)]),
        (3, 1) => (vec![(1, s(&[1, 2])), (2, s(&[3]))], vec![]),
        (3, 2) => (vec![(1, s(&[1])), (2, s(&[2, 3]))], vec![(2, 2)]),
        (3, _) => (vec![(1, s(&[1, 2])), (2, s(&[3]))], vec![(3, 0)]),
        (_, 0) => (vec![(1, s(&[1, 2, 3])), (2, s(&[4, 5]))], vec![]),
        (_, 1) => (
            vec![(1, s(&[1, 2])), (2, s(&[3, 4])), (3, s(&[5]))],
            vec![(5, 2)],
        ),
        (_, 2) => (vec![(1, s(&[1, 2, 3, 4, 5]))], vec![(1, 0), (3, 2), (5, 0)]),
        (_, _) => (
            vec![(1, s(&[1, 2, 3])), (2, s(&[4, 5]))],
            vec![(4, 0), (5, 0)],
        ),
    };
    let ids: Vec<ServerId> = (1..=voters as i64).map(ServerId).collect();
    debug_assert!(groups
        .iter()
        .all(|(_, g)| g.iter().all(|s| ids.contains(s))));
    let weights = weights.into_iter().map(|(s, w)| (ServerId(s), w)).collect();
    rzk_server::zab::quorum::Groups::new(&groups, &weights, ids)
        .unwrap_or_else(|e| panic!("the simulator's groups for {voters} voters: {e}"))
}

impl SimOptions {
    /// The standard mix: even seeds 3 voters, odd seeds 5; every fourth seed an observer.
    pub fn for_seed(seed: u64) -> SimOptions {
        SimOptions {
            seed,
            voters: if seed.is_multiple_of(2) { 3 } else { 5 },
            observers: usize::from(seed % 4 == 3),
            chaos_ms: 8_000,
            quiet_ms: 8_000,
            fault_commit_without_quorum: false,
            trace: false,
            server: false,
            fault_reads_overtake: false,
            fault_closed_writes: false,
            fault_multi_no_rollback: false,
            fault_accept_bad_checksums: false,
            fault_notify_overtakes: false,
            chunked_apply: true,
            client_closes: true,
            client_set_watches: true,
            groups: false,
        }
    }
}

/// What a successful run did.
#[derive(Debug, Clone, Default)]
pub struct SimReport {
    pub seed: u64,
    pub servers: usize,
    pub committed: usize,
    pub acked_writes: usize,
    pub epochs: u32,
    pub crashes: u32,
    pub partitions: u32,
    pub resets: u32,
    pub events: u64,
    /// Whole-server mode: client replies checked, reads checked against the history,
    /// watch notifications, sessions created.
    pub replies: u64,
    pub reads_checked: u64,
    pub notifications: u64,
    pub sessions: u64,
    /// Whole-server mode: sessions expired by a leader, ephemerals created, reconnects
    /// refused with SESSIONEXPIRED.
    pub expiries: u64,
    pub ephemerals: u64,
    pub expired_told: u64,
    /// Whole-server mode: multi replies checked (applied, failed as a whole).
    pub multis: u64,
    pub multis_failed: u64,
    /// Whole-server mode: crashes that left a torn or flipped record at the log's end.
    pub torn_tails: u64,
    /// Whole-server mode with chunked apply: held answers handed over before a later
    /// txn's notification on their connection, and reads that waited for a chunk's end.
    pub released_early: u64,
    pub reads_behind_chunk: u64,
    /// Whole-server mode: closeSession requests clients sent, and those answered OK.
    pub closes_sent: u64,
    pub closes_done: u64,
    /// Whole-server mode: SetWatches sent on reconnects.
    pub set_watches_sent: u64,
}

/// A failing run: the violation and the trace tail (empty unless tracing).
#[derive(Debug, Clone)]
pub struct SimFailure {
    pub seed: u64,
    pub violation: Violation,
    pub trace: Vec<String>,
}

#[derive(Debug)]
enum Event {
    Tick,
    Deliver {
        from: ServerId,
        to: ServerId,
        msg: Message,
        snap: Option<SmState>,
        tree: Option<Box<DataTree>>,
        gen: Option<u64>,
    },
    /// Whole-server mode: a learner's client request forwarded to its leader.
    Forward {
        from: ServerId,
        from_inc: u64,
        conn: u64,
        to: ServerId,
        to_inc: u64,
        job: Box<server::ForwardJob>,
    },
    Disconnected {
        node: ServerId,
        peer: ServerId,
        gen: u64,
    },
    DiskDone {
        node: ServerId,
        inc: u64,
    },
    Restart {
        node: ServerId,
    },
    /// Whole-server mode, chunked apply: the apply chunk of incarnation `inc` ends.
    ApplyChunkEnd {
        node: ServerId,
        inc: u64,
    },
    /// Whole-server mode: a crash in the middle of a log write (incarnation `inc`).
    CrashMidWrite {
        node: ServerId,
        inc: u64,
    },
    Quiet,
}

struct Sched {
    at: u64,
    seq: u64,
    ev: Event,
}
impl PartialEq for Sched {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Sched {}
impl PartialOrd for Sched {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Sched {
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Debug)]
enum DiskOp {
    Txns(Vec<Txn>),
    Epoch(EpochKind, u32),
    Truncate(Zxid),
    Snapshot(SmState, Option<Box<DataTree>>),
}

#[derive(Debug, Default)]
struct Disk {
    accepted: u32,
    current: u32,
    log: Vec<Txn>,
    snapshot: SmState,
    /// Whole-server mode: the tree at `snapshot` (a clone, not the file format).
    tree: DataTree,
    queue: VecDeque<DiskOp>,
    busy: bool,
    /// Whole-server mode: what a crash left after the last synced record — the first
    /// unsynced record of the batch being written, torn or with a byte flipped, in the
    /// txn log's file format.
    damaged_tail: Option<Vec<u8>>,
}

struct Node {
    zab: Option<Zab>,
    inc: u64,
    disk: Disk,
    sm: SmState,
    snap_inbox: Option<SmState>,
    snap_tree_inbox: Option<Box<DataTree>>,
    app: Option<server::App>,
}

struct World {
    opts: SimOptions,
    rng: StdRng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Sched>,
    cfgs: BTreeMap<ServerId, ZabConfig>,
    nodes: BTreeMap<ServerId, Node>,
    links: Links,
    group: BTreeMap<ServerId, u8>,
    chaos: bool,
    writes_until: u64,
    checker: Checker,
    pending_writes: HashMap<(ServerId, u64, Zxid), u64>,
    acked: Vec<(Zxid, u64)>,
    next_write: u64,
    report: SimReport,
    trace: VecDeque<String>,
    srv: Option<server::ServerSim>,
}

/// Runs one seed to the end. `Err` carries the first violated invariant.
pub fn run_seed(opts: SimOptions) -> Result<SimReport, Box<SimFailure>> {
    let mut w = World::new(opts);
    w.run()
}

impl World {
    fn new(opts: SimOptions) -> World {
        let (v, o) = (opts.voters as i64, opts.observers as i64);
        let voters: Vec<ServerId> = (1..=v).map(ServerId).collect();
        let observers: Vec<ServerId> = (v + 1..=v + o).map(ServerId).collect();
        let mut cfgs = BTreeMap::new();
        let groups = opts.groups.then(|| sim_groups(opts.seed, opts.voters));
        for &s in voters.iter().chain(&observers) {
            let mut c = ZabConfig::new(s, voters.clone(), observers.clone());
            c.groups = groups.clone();
            c.tick_ms = TICK_MS;
            c.init_limit = 10;
            c.sync_limit = 5;
            c.commit_log_count = 8;
            c.max_notification_ms = 800;
            c.fault_commit_without_quorum = opts.fault_commit_without_quorum;
            cfgs.insert(s, c);
        }
        let total = opts.chaos_ms + opts.quiet_ms;
        World {
            rng: StdRng::seed_from_u64(opts.seed),
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes: BTreeMap::new(),
            links: Links::default(),
            group: cfgs.keys().map(|s| (*s, 0)).collect(),
            chaos: true,
            writes_until: total.saturating_sub(3_000),
            checker: Checker::default(),
            pending_writes: HashMap::new(),
            acked: Vec::new(),
            next_write: 0,
            report: SimReport {
                seed: opts.seed,
                servers: cfgs.len(),
                ..SimReport::default()
            },
            trace: VecDeque::new(),
            srv: opts.server.then(|| server::ServerSim::new(&opts)),
            cfgs,
            opts,
        }
    }

    fn log(&mut self, f: impl FnOnce() -> String) {
        if self.opts.trace {
            if self.trace.len() >= TRACE_KEEP {
                self.trace.pop_front();
            }
            let line = format!("{:>6} {}", self.now, f());
            self.trace.push_back(line);
        }
    }

    fn schedule(&mut self, at: u64, ev: Event) {
        self.seq += 1;
        self.queue.push(Sched {
            at,
            seq: self.seq,
            ev,
        });
    }

    fn failure(&mut self) -> Box<SimFailure> {
        let violation = self.checker.violations[0].clone();
        Box::new(SimFailure {
            seed: self.opts.seed,
            violation,
            trace: self.trace.drain(..).collect(),
        })
    }

    fn run(&mut self) -> Result<SimReport, Box<SimFailure>> {
        let ids: Vec<ServerId> = self.cfgs.keys().copied().collect();
        for s in ids {
            self.nodes.insert(
                s,
                Node {
                    zab: None,
                    inc: 0,
                    disk: Disk::default(),
                    sm: SmState::default(),
                    snap_inbox: None,
                    snap_tree_inbox: None,
                    app: None,
                },
            );
            let at = self.rng.gen_range(0..300);
            self.schedule(at, Event::Restart { node: s });
        }
        self.schedule(0, Event::Tick);
        self.schedule(self.opts.chaos_ms, Event::Quiet);
        let end = self.opts.chaos_ms + self.opts.quiet_ms;
        while let Some(s) = self.queue.pop() {
            if s.at > end {
                break;
            }
            self.now = s.at;
            self.checker.now = s.at;
            self.report.events += 1;
            if self.report.events > MAX_EVENTS {
                self.checker
                    .report("event budget exhausted (livelock?)".into());
            }
            self.handle(s.ev);
            if !self.checker.violations.is_empty() {
                return Err(self.failure());
            }
        }
        self.check_quiescence();
        if !self.checker.violations.is_empty() {
            return Err(self.failure());
        }
        self.report.committed = self.checker.committed_len();
        self.report.acked_writes = self.acked.len();
        self.report.epochs = self.checker.last_committed().epoch();
        (
            self.report.replies,
            self.report.reads_checked,
            self.report.notifications,
            self.report.sessions,
        ) = self.app_summary();
        (
            self.report.expiries,
            self.report.ephemerals,
            self.report.expired_told,
        ) = self.app_session_summary();
        (self.report.multis, self.report.multis_failed) = self.app_multi_summary();
        (self.report.released_early, self.report.reads_behind_chunk) = self.app_chunk_summary();
        (self.report.closes_sent, self.report.closes_done) = self.app_close_summary();
        self.report.set_watches_sent = self.srv.as_ref().map_or(0, |s| s.set_watches_sent);
        Ok(self.report.clone())
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Tick => self.on_tick(),
            Event::Deliver {
                from,
                to,
                msg,
                snap,
                tree,
                gen,
            } => {
                if self.nodes[&to].zab.is_none() {
                    return;
                }
                if let Some(g) = gen {
                    if !self.links.is_live(from, to, g) {
                        return;
                    }
                    self.links.set_known(to, from, g);
                }
                if snap.is_some() {
                    if let Some(n) = self.nodes.get_mut(&to) {
                        n.snap_inbox = snap;
                        n.snap_tree_inbox = tree;
                    }
                }
                self.log(|| format!("{from}->{to} {}", describe(&msg)));
                self.input(to, Input::Message { from, msg });
            }
            Event::Disconnected { node, peer, gen } => {
                if self.links.known(node, peer) == gen && self.links.get(node, peer).gen == gen {
                    self.log(|| format!("{node}: connection to {peer} closed"));
                    self.input(node, Input::Disconnected { peer });
                }
            }
            Event::DiskDone { node, inc } => self.on_disk_done(node, inc),
            Event::ApplyChunkEnd { node, inc } => self.app_chunk_end(node, inc),
            Event::Forward {
                from,
                from_inc,
                conn,
                to,
                to_inc,
                job,
            } => self.on_forward(from, from_inc, conn, to, to_inc, *job),
            Event::Restart { node } => self.restart(node),
            Event::CrashMidWrite { node, inc } => {
                if self.chaos && self.nodes[&node].inc == inc && self.nodes[&node].disk.busy {
                    self.log(|| format!("FAULT: {node} crashes in the middle of a log write"));
                    self.crash(node);
                }
            }
            Event::Quiet => {
                self.chaos = false;
                for g in self.group.values_mut() {
                    *g = 0;
                }
                let down: Vec<ServerId> = self
                    .nodes
                    .iter()
                    .filter(|(_, n)| n.zab.is_none())
                    .map(|(s, _)| *s)
                    .collect();
                for s in down {
                    self.schedule(self.now + 1, Event::Restart { node: s });
                }
                self.log(|| "quiet: healed, restarting everyone".into());
            }
        }
    }

    fn input(&mut self, sid: ServerId, i: Input) {
        let Some(zab) = self.nodes.get_mut(&sid).and_then(|n| n.zab.as_mut()) else {
            return;
        };
        let out = zab.step(i);
        self.process(sid, out);
    }

    fn partitioned(&self, a: ServerId, b: ServerId) -> bool {
        self.group.get(&a) != self.group.get(&b)
    }

    fn process(&mut self, sid: ServerId, outs: Vec<Output>) {
        for o in outs {
            match o {
                Output::Send {
                    to,
                    msg: msg @ Message::Election(_),
                } => self.send_election(sid, to, msg),
                Output::Send { to, msg } => self.send_quorum(sid, to, msg, None, None),
                Output::Connect { to } => self.connect(sid, to),
                Output::Disconnect { peer } => {
                    if let Some(gen) = self.links.break_link(sid, peer) {
                        let at = self.now + self.rng.gen_range(1..10);
                        self.schedule(
                            at,
                            Event::Disconnected {
                                node: peer,
                                peer: sid,
                                gen,
                            },
                        );
                    }
                }
                Output::PersistTxns(ts) => self.disk_push(sid, DiskOp::Txns(ts)),
                Output::PersistEpoch { kind, epoch } => {
                    self.disk_push(sid, DiskOp::Epoch(kind, epoch))
                }
                Output::Truncate { to } => self.on_truncate(sid, to),
                Output::InstallSnapshot { zxid } => self.on_install_snapshot(sid, zxid),
                Output::SendSnapshot { to, zxid } => {
                    let state = self.nodes[&sid].sm;
                    if state.zxid != zxid {
                        self.checker.report(format!(
                            "server {sid} asked to send a snapshot at {zxid} but its state is at {}",
                            state.zxid
                        ));
                    }
                    let p = QuorumPacket::new(PacketType::Snap, zxid.0);
                    let tree = self.nodes[&sid]
                        .app
                        .as_ref()
                        .map(|a| Box::new(a.tree.clone()));
                    self.send_quorum(sid, to, Message::Quorum(p), Some(state), tree);
                }
                Output::Commit(t) => self.on_commit(sid, t),
                Output::Established { epoch, leader } => {
                    self.log(|| format!("{sid}: established epoch {epoch} leader {leader}"));
                    if leader == sid {
                        self.checker.leader_established(epoch, sid);
                        if self.srv.is_some() {
                            self.app_established(sid);
                        }
                    }
                }
                Output::RoleChanged { role, leader } => {
                    self.log(|| format!("{sid}: role {role:?} leader {leader:?}"));
                    if self.srv.is_some() {
                        self.app_role_changed(sid);
                    }
                }
                Output::ProposalRejected { zxid } => {
                    self.checker
                        .report(format!("server {sid} rejected proposal {zxid} it offered"));
                }
                Output::SessionTouches { data, .. } => {
                    if self.srv.is_some() {
                        self.app_touches(sid, &data);
                    }
                }
                Output::Deliver { .. } | Output::Activate { .. } => {}
                Output::Unsupported { why } => {
                    self.checker
                        .report(format!("server {sid} stopped on a membership: {why}"));
                }
                Output::EpochExhausted { why } => {
                    self.checker
                        .report(format!("server {sid} stopped, out of epochs: {why}"));
                }
            }
        }
        if self.srv.is_some() {
            self.app_after_commits(sid);
        }
    }

    fn send_election(&mut self, from: ServerId, to: ServerId, msg: Message) {
        if self.partitioned(from, to) {
            return;
        }
        if self.chaos && self.rng.gen_bool(0.03) {
            return;
        }
        let copies = if self.chaos && self.rng.gen_bool(0.02) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at = self.now + self.rng.gen_range(1..15);
            self.schedule(
                at,
                Event::Deliver {
                    from,
                    to,
                    msg: msg.clone(),
                    snap: None,
                    tree: None,
                    gen: None,
                },
            );
        }
    }

    fn send_quorum(
        &mut self,
        from: ServerId,
        to: ServerId,
        msg: Message,
        snap: Option<SmState>,
        tree: Option<Box<DataTree>>,
    ) {
        let gen = self.links.known(from, to);
        if !self.links.is_live(from, to, gen) {
            return;
        }
        if self.partitioned(from, to) {
            // Packets vanish; both ends find out by their timeouts.
            self.links.break_link(from, to);
            return;
        }
        if self.chaos && self.rng.gen_bool(0.0015) {
            self.report.resets += 1;
            if let Some(g) = self.links.break_link(from, to) {
                for (a, b) in [(from, to), (to, from)] {
                    let at = self.now + self.rng.gen_range(1..20);
                    self.schedule(
                        at,
                        Event::Disconnected {
                            node: a,
                            peer: b,
                            gen: g,
                        },
                    );
                }
            }
            return;
        }
        let delay = if self.rng.gen_bool(0.01) {
            self.rng.gen_range(50..200)
        } else {
            self.rng.gen_range(1..8)
        };
        let at = self.links.fifo_time(from, to, self.now + delay);
        self.schedule(
            at,
            Event::Deliver {
                from,
                to,
                msg,
                snap,
                tree,
                gen: Some(gen),
            },
        );
    }

    fn connect(&mut self, from: ServerId, to: ServerId) {
        let reachable = !self.partitioned(from, to) && self.nodes[&to].zab.is_some();
        let gen = self.links.connect(from, to, reachable);
        self.links.set_known(from, to, gen);
        if !reachable {
            let at = self.now + if self.partitioned(from, to) { 300 } else { 5 };
            self.schedule(
                at,
                Event::Disconnected {
                    node: from,
                    peer: to,
                    gen,
                },
            );
        }
    }

    fn disk_push(&mut self, sid: ServerId, op: DiskOp) {
        if let Some(n) = self.nodes.get_mut(&sid) {
            n.disk.queue.push_back(op);
        }
        self.kick_disk(sid);
    }

    fn kick_disk(&mut self, sid: ServerId) {
        let Some(n) = self.nodes.get_mut(&sid) else {
            return;
        };
        if n.disk.busy || n.disk.queue.is_empty() {
            return;
        }
        n.disk.busy = true;
        let inc = n.inc;
        let d = if self.rng.gen_bool(0.02) {
            self.rng.gen_range(30..120)
        } else {
            self.rng.gen_range(1..6)
        };
        self.schedule(self.now + d, Event::DiskDone { node: sid, inc });
        let writing = matches!(self.nodes[&sid].disk.queue.front(), Some(DiskOp::Txns(_)));
        if self.srv.is_some() && self.chaos && writing && self.rng.gen_bool(0.004) {
            let at = self.now + self.rng.gen_range(0..d);
            self.schedule(at, Event::CrashMidWrite { node: sid, inc });
        }
    }

    fn on_disk_done(&mut self, sid: ServerId, inc: u64) {
        let Some(n) = self.nodes.get_mut(&sid) else {
            return;
        };
        if n.inc != inc {
            return;
        }
        n.disk.busy = false;
        let input = match n.disk.queue.pop_front() {
            Some(DiskOp::Txns(mut ts)) => {
                // group commit: every append waiting now goes in one fsync
                while let Some(DiskOp::Txns(_)) = n.disk.queue.front() {
                    if let Some(DiskOp::Txns(more)) = n.disk.queue.pop_front() {
                        ts.extend(more);
                    }
                }
                let up_to = ts.last().map(|t| t.zxid);
                n.disk.log.extend(ts);
                up_to.map(|up_to| Input::Persisted { up_to })
            }
            Some(DiskOp::Epoch(kind, epoch)) => {
                match kind {
                    EpochKind::Accepted => n.disk.accepted = epoch,
                    EpochKind::Current => n.disk.current = epoch,
                }
                Some(Input::EpochPersisted { kind, epoch })
            }
            Some(DiskOp::Truncate(to)) => {
                n.disk.log.retain(|t| t.zxid <= to);
                None
            }
            Some(DiskOp::Snapshot(s, tree)) => {
                n.disk.snapshot = s;
                if let Some(t) = tree {
                    n.disk.tree = *t;
                }
                n.disk.log.clear();
                None
            }
            None => None,
        };
        if let Some(i) = input {
            self.input(sid, i);
        }
        self.kick_disk(sid);
    }

    fn on_truncate(&mut self, sid: ServerId, to: Zxid) {
        let Some(n) = self.nodes.get(&sid) else {
            return;
        };
        let mut removed: Vec<(Zxid, u64)> = n
            .disk
            .log
            .iter()
            .filter(|t| t.zxid > to)
            .map(|t| (t.zxid, hash_bytes(&t.payload)))
            .collect();
        for op in &n.disk.queue {
            if let DiskOp::Txns(ts) = op {
                removed.extend(
                    ts.iter()
                        .filter(|t| t.zxid > to)
                        .map(|t| (t.zxid, hash_bytes(&t.payload))),
                );
            }
        }
        let epoch = n.zab.as_ref().map_or(0, |z| z.accepted_epoch());
        let sm = n.sm;
        self.log(|| format!("{sid}: TRUNC to {to}, dropping {removed:?}"));
        self.checker.truncated(sid, &sm, epoch, to, &removed);
        self.disk_push(sid, DiskOp::Truncate(to));
    }

    fn on_install_snapshot(&mut self, sid: ServerId, zxid: Zxid) {
        let Some(n) = self.nodes.get_mut(&sid) else {
            return;
        };
        let Some(s) = n.snap_inbox.take() else {
            self.checker.report(format!(
                "server {sid} installs a snapshot it never received"
            ));
            return;
        };
        if s.zxid != zxid {
            self.checker.report(format!(
                "server {sid} installs snapshot {zxid} but received one at {}",
                s.zxid
            ));
        }
        n.sm = s;
        let tree = n.snap_tree_inbox.take();
        if let (Some(app), Some(t)) = (n.app.as_mut(), &tree) {
            app.tree = (**t).clone();
        }
        if self.srv.is_some() && tree.is_none() {
            self.checker.report(format!(
                "server {sid} installs snapshot {zxid} without its tree"
            ));
        }
        self.log(|| format!("{sid}: SNAP installed at {zxid}"));
        if self.srv.is_some() {
            self.app_snapshot_installed(sid);
        }
        self.checker.snapshot_installed(sid, &s);
        self.disk_push(sid, DiskOp::Snapshot(s, tree));
    }

    fn on_commit(&mut self, sid: ServerId, t: Txn) {
        let h = hash_bytes(&t.payload);
        let Some(n) = self.nodes.get_mut(&sid) else {
            return;
        };
        let mut sm = n.sm;
        self.checker.apply(sid, &mut sm, t.zxid, h);
        let inc = n.inc;
        n.sm = sm;
        // Occasionally snapshot the state (durable at once), unless a SNAP install is queued.
        let installing = n
            .disk
            .queue
            .iter()
            .any(|o| matches!(o, DiskOp::Snapshot(..)));
        if self.srv.is_some() {
            self.app_commit(sid, t.zxid, &t.payload);
            if self.srv.as_mut().is_some_and(|s| s.chunk_ends()) {
                self.app_release(sid, None);
            }
        }
        if !installing && self.rng.gen_bool(0.05) {
            if let Some(n) = self.nodes.get_mut(&sid) {
                n.disk.snapshot = sm;
                if let Some(app) = &n.app {
                    n.disk.tree = app.tree.clone();
                }
            }
        }
        if let Some(id_hash) = self.pending_writes.remove(&(sid, inc, t.zxid)) {
            if id_hash == h {
                self.acked.push((t.zxid, h));
            }
        }
    }

    fn crash(&mut self, sid: ServerId) {
        let Some(n) = self.nodes.get_mut(&sid) else {
            return;
        };
        if n.zab.is_none() {
            return;
        }
        n.zab = None;
        // A crash in the middle of a write: the first unsynced record may reach the
        // disk torn, or whole with a byte flipped (it was never fsynced, so anything
        // goes); the restart must find it damaged and drop it.
        if self.srv.is_some() && n.disk.busy && self.rng.gen_bool(0.5) {
            if let Some(DiskOp::Txns(ts)) = n.disk.queue.front() {
                if let Some(t) = ts.first() {
                    let mut frame = Vec::new();
                    rzk_server::storage::txnlog::frame_record(&t.payload, &mut frame);
                    if self.rng.gen_bool(0.5) {
                        frame.truncate(self.rng.gen_range(1..frame.len()));
                    } else {
                        let i = self.rng.gen_range(0..frame.len());
                        frame[i] ^= self.rng.gen_range(1..=255u8);
                    }
                    n.disk.damaged_tail = Some(frame);
                    self.report.torn_tails += 1;
                }
            }
        }
        n.disk.queue.clear();
        n.disk.busy = false;
        n.snap_inbox = None;
        n.snap_tree_inbox = None;
        if self.srv.is_some() {
            self.app_close_all(sid, "server crashed");
        }
        let Some(n) = self.nodes.get_mut(&sid) else {
            return;
        };
        n.app = None;
        n.inc += 1;
        self.report.crashes += 1;
        self.log(|| format!("{sid}: CRASH"));
        for peer in self.links.peers_of(sid) {
            if let Some(gen) = self.links.break_link(sid, peer) {
                let at = self.now + self.rng.gen_range(1..20);
                self.schedule(
                    at,
                    Event::Disconnected {
                        node: peer,
                        peer: sid,
                        gen,
                    },
                );
            }
        }
        let back = self.now + self.rng.gen_range(200..3000);
        self.schedule(back, Event::Restart { node: sid });
    }

    fn restart(&mut self, sid: ServerId) {
        let cfg = self.cfgs[&sid].clone();
        let now = self.now;
        let Some(n) = self.nodes.get_mut(&sid) else {
            return;
        };
        if n.zab.is_some() {
            return;
        }
        n.inc += 1;
        n.sm = n.disk.snapshot;
        if self.srv.is_some() {
            let damaged = n.disk.damaged_tail.take();
            let lax = self.opts.fault_accept_bad_checksums;
            if let Err(e) = read_back_log(sid, &n.disk.log, damaged.as_deref(), lax) {
                self.checker.report(e);
                return;
            }
        }
        let Some(n) = self.nodes.get_mut(&sid) else {
            return;
        };
        let mut log: Vec<Txn> = Vec::new();
        for t in &n.disk.log {
            if t.zxid > n.disk.snapshot.zxid && log.last().is_none_or(|l| l.zxid < t.zxid) {
                log.push(t.clone());
            }
        }
        let d = Durable {
            accepted_epoch: n.disk.accepted,
            current_epoch: n.disk.current,
            snapshot_zxid: n.disk.snapshot.zxid,
            log,
        };
        let (zab, out) = Zab::new(cfg, d, now);
        n.zab = Some(zab);
        if self.srv.is_some() {
            let tree = n.disk.tree.clone();
            self.app_start(sid, tree);
        }
        self.log(|| format!("{sid}: START"));
        self.process(sid, out);
    }

    fn on_tick(&mut self) {
        if self.opts.groups {
            self.check_leader_weight();
        }
        let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
        for s in &ids {
            self.input(*s, Input::Tick { now_ms: self.now });
        }
        if self.chaos {
            self.chaos_step(&ids);
        }
        if self.srv.is_some() {
            for s in &ids {
                self.sessions_tick(*s);
            }
            self.clients_step();
        } else if self.now < self.writes_until {
            for _ in 0..self.rng.gen_range(0..4) {
                let s = ids[self.rng.gen_range(0..ids.len())];
                self.client_write(s);
            }
        }
        self.schedule(self.now + TICK_EVERY_MS, Event::Tick);
    }

    fn chaos_step(&mut self, ids: &[ServerId]) {
        if self.rng.gen_bool(0.006) {
            let s = ids[self.rng.gen_range(0..ids.len())];
            self.crash(s);
        }
        self.election_timing_faults();
        let split = self.group.values().any(|g| *g != 0);
        if !split && self.rng.gen_bool(0.004) {
            self.report.partitions += 1;
            for s in ids {
                let g = u8::from(self.rng.gen_bool(0.5));
                self.group.insert(*s, g);
            }
            let groups = self.group.clone();
            self.log(|| format!("PARTITION {groups:?}"));
        } else if split && self.rng.gen_bool(0.01) {
            for g in self.group.values_mut() {
                *g = 0;
            }
            self.log(|| "HEAL".into());
        }
    }

    /// Faults aimed at the timing of failover (docs/QUORUM-PROTOCOL.md §3, "Finalizing"):
    /// kill -9 of the established leader under writes (its followers see the connection
    /// close and elect without it, finalizing as soon as the view is complete); a crash of
    /// the leader a LOOKING voter's quorum agrees on, or of that voter, while it is in the
    /// finalize window; and a crash of a new leader during discovery / sync.
    fn election_timing_faults(&mut self) {
        let mut leader = None;
        let mut starting = None;
        let mut finalizing = None;
        for (s, n) in &self.nodes {
            let Some(z) = &n.zab else { continue };
            match z.role() {
                Role::Leading if z.is_serving() => leader = Some(*s),
                Role::Leading => starting = Some(*s),
                Role::Looking => {
                    if let Some(p) = z.election_progress() {
                        if 2 * p.agreeing > p.voters {
                            finalizing = Some((*s, p.proposal.leader));
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(l) = leader {
            if self.rng.gen_bool(0.003) {
                self.log(|| format!("FAULT: kill the established leader {l}"));
                self.crash(l);
                return;
            }
        }
        if let Some((voter, cand)) = finalizing {
            if self.rng.gen_bool(0.1) {
                let victim = if self.rng.gen_bool(0.5) { cand } else { voter };
                self.log(|| {
                    format!("FAULT: {voter} is finalizing its vote for {cand}; kill {victim}")
                });
                self.crash(victim);
                return;
            }
        }
        if let Some(l) = starting {
            if self.rng.gen_bool(0.05) {
                self.log(|| format!("FAULT: kill leader {l} during discovery / sync"));
                self.crash(l);
            }
        }
    }

    /// A client connected to `via` writes; a learner forwards it to the leader it follows
    /// (the forwarding itself is not simulated), and only an established leader proposes.
    fn client_write(&mut self, via: ServerId) {
        let Some(sid) = self.nodes[&via].zab.as_ref().and_then(|z| z.leader()) else {
            return;
        };
        let Some(z) = self.nodes[&sid].zab.as_ref().and_then(|z| z.next_zxid()) else {
            return;
        };
        self.next_write += 1;
        let payload = Bytes::from(format!(
            "write {} by client at {}",
            self.next_write, self.now
        ));
        let h = hash_bytes(&payload);
        let inc = self.nodes[&sid].inc;
        self.checker.proposed(sid, z, h);
        self.pending_writes.insert((sid, inc, z), h);
        self.input(sid, Input::Propose { zxid: z, payload });
    }

    /// `--groups`: a voter of weight 0 never leads (ZooKeeper's `totalOrderPredicate`).
    fn check_leader_weight(&mut self) {
        // The groups every node was configured with (`World::new`).
        let weight_zero = |s: &ServerId| {
            self.cfgs[s]
                .groups
                .as_ref()
                .is_some_and(|g| g.weights().get(s) == Some(&0))
        };
        let zero_leader = self
            .nodes
            .iter()
            .filter(|(_, n)| n.zab.as_ref().is_some_and(|z| z.role() == Role::Leading))
            .map(|(s, _)| *s)
            .find(|s| weight_zero(s));
        if let Some(s) = zero_leader {
            self.checker
                .report(format!("server {s}, of weight 0, leads"));
        }
    }

    fn check_quiescence(&mut self) {
        let fin = self.checker.final_state();
        let mut leaders = 0;
        let mut problems = Vec::new();
        for (s, n) in &self.nodes {
            let Some(z) = &n.zab else {
                problems.push(format!("server {s} is down"));
                continue;
            };
            if z.role() == Role::Leading {
                leaders += 1;
            }
            if !z.is_serving() {
                problems.push(format!("server {s} is not serving ({:?})", z.role()));
            }
            if n.sm != fin {
                problems.push(format!(
                    "server {s} state {:?} differs from the committed history {:?}",
                    n.sm, fin
                ));
            }
        }
        if leaders != 1 {
            problems.push(format!("{leaders} leaders at quiescence"));
        }
        if self.srv.is_some() {
            self.app_quiescence(&mut problems);
        }
        for &(z, h) in &self.acked {
            if !self.checker.acked_present(z, h) {
                problems.push(format!("acknowledged write {z} lost"));
            }
        }
        if !problems.is_empty() {
            self.checker.report(format!(
                "no agreement at quiescence: {}",
                problems.join("; ")
            ));
        }
    }
}

/// Whole-server mode, at a restart: the node's synced log written in the txn log's file
/// format (`storage::txnlog::frame_record`) followed by the damaged tail a crash left,
/// read back through start-up's reader (`storage::log_reader::LogFileReader`). It must
/// return exactly the synced records — never the damaged one — and end Torn at the
/// damage (Clean without one), or, when the damaged record is whole with a wrong
/// checksum or its length field is one no torn write leaves, refuse it naming its
/// offset (as ZooKeeper does; the operator cuts it and the restart goes on); never
/// refuse a synced record. Uses a scratch file (the reader
/// reads files only); its contents are deterministic, so a seed still replays the same.
fn read_back_log(
    sid: ServerId,
    log: &[Txn],
    damaged: Option<&[u8]>,
    accept_bad_checksums: bool,
) -> Result<(), String> {
    use rzk_server::storage::files::FileHeader;
    use rzk_server::storage::log_reader::{FileEnd, LogFileReader, LogReadError};
    let mut bytes = FileHeader::txn_log().to_bytes().to_vec();
    for t in log {
        rzk_server::storage::txnlog::frame_record(&t.payload, &mut bytes);
    }
    let tail_at = bytes.len() as u64;
    if let Some(d) = damaged {
        bytes.extend_from_slice(d);
    }
    let dir = std::env::temp_dir().join(format!(
        "rzk-sim-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let path = dir.join("log.1");
    let io = |e: std::io::Error| format!("server {sid}: sim scratch file {}: {e}", path.display());
    std::fs::create_dir_all(&dir).map_err(io)?;
    std::fs::write(&path, &bytes).map_err(io)?;
    let result = (|| {
        let mut r = LogFileReader::open(&path).map_err(|e| e.to_string())?;
        let mut refused = false;
        if accept_bad_checksums {
            r.accept_bad_checksums();
        }
        let mut got = 0usize;
        loop {
            let entry = match r.next_entry() {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                // A whole damaged record (length and end marker intact, checksum wrong)
                // stops start-up as ZooKeeper's CRC check does; the operator cuts it
                // (`rzk log chop`), and the restart goes on from the synced records.
                // So does a length field no torn write leaves (a flipped byte made it
                // negative or larger than a record may be): ZooKeeper's "Unreasonable
                // length".
                Err(
                    LogReadError::BadChecksum { offset, .. }
                    | LogReadError::ImpossibleLength { offset, .. },
                ) if damaged.is_some() && offset == tail_at && got == log.len() => {
                    refused = true;
                    break;
                }
                Err(e) => return Err(e.to_string()),
            };
            let want = log.get(got).map(|t| TxnRecord::decode(&t.payload));
            match want {
                Some(Ok(w)) if w == entry.record => {}
                _ => {
                    return Err(format!(
                        "record {got} at offset {} read back as {:?}, the synced log has {:?}",
                        entry.offset,
                        entry.record.header,
                        log.get(got).map(|t| t.zxid)
                    ))
                }
            }
            got += 1;
        }
        if got != log.len() {
            return Err(format!("{got} of {} synced records read back", log.len()));
        }
        if refused {
            return Ok(());
        }
        match (r.end(), damaged) {
            (Some(FileEnd::Clean), None) => Ok(()),
            (Some(FileEnd::Torn(t)), Some(_)) if t.offset == tail_at => Ok(()),
            (end, _) => Err(format!(
                "log ends {end:?}, expected {}",
                if damaged.is_some() {
                    format!("a torn tail at {tail_at}")
                } else {
                    "clean".to_string()
                }
            )),
        }
    })();
    let _ = std::fs::remove_file(&path);
    result.map_err(|e| format!("server {sid}: restart reading its txn log: {e}"))
}

fn describe(m: &Message) -> String {
    match m {
        Message::Election(n) => format!(
            "VOTE {:?} leader={} zxid={} ee={} pe={}",
            n.state,
            n.leader,
            Zxid(n.zxid),
            n.election_epoch,
            n.peer_epoch
        ),
        Message::Quorum(p) => format!("{:?} {}", p.ty, Zxid(p.zxid)),
    }
}

/// Runs one seed and returns its full trace, pass or fail (for debugging).
pub fn trace_seed(mut opts: SimOptions) -> (Result<SimReport, Box<SimFailure>>, Vec<String>) {
    opts.trace = true;
    let mut w = World::new(opts);
    let r = w.run();
    let trace = match &r {
        Err(f) => f.trace.clone(),
        Ok(_) => w.trace.drain(..).collect(),
    };
    (r, trace)
}
