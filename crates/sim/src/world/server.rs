//! Whole-server mode (`SimOptions::server`): each simulated node is the ZAB core plus the
//! server's own request path, driven without sockets or threads:
//!
//! * REAL server code: `request::decode` of each client frame, `prep::Prep::prepare` on
//!   the leader (checks, versions, the predicted digest), `TxnRecord` encode/decode as
//!   the proposal payload, `DataTree::apply` of every committed txn, the watch registry
//!   (`WatchManager::trigger`, `read::read_frame` registering watches and answering reads),
//!   `reply::write_reply_frame` / `notification_frame`, and the session's
//!   reply order `net::order::ReplyOrder` (the same queue `net::conn` uses).
//! * MODELLED here: the glue around them that the runtime runs on threads/tokio —
//!   forwarding a learner's request to its leader (a delayed message; lost ⇒ the
//!   client's connection is closed), the connection's admit/advance loop (the same calls
//!   in the same order as `net::conn`), the handshake (createSession goes through prep
//!   like any write; a reconnect with a session id is accepted without REVALIDATE;
//!   sessions never expire), snapshots (a clone of the tree, not the file format).
//!
//! The client side is a set of seeded clients that pipeline requests on their sessions,
//! reconnect elsewhere when their server dies or stops serving, and check every frame
//! they receive against the global history of the sim's znodes (see `ClientModel`).

use super::{Event, World};
use crate::checker::hash_bytes;
use bytes::Bytes;
use rand::Rng;
use rzk_proto::multi::{MultiOp, MultiRequest, MultiResponse, OpResult};
use rzk_proto::opcode::{event, xid as special_xid};
use rzk_proto::quorum::payload::{decode_touches, encode_touches};
use rzk_proto::quorum::SessionTouch;
use rzk_proto::records::{
    Acl, CheckVersionRequest, CreateRequest, DeleteRequest, ExistsRequest, ExistsResponse,
    GetDataRequest, GetDataResponse, ReplyHeader, RequestHeader, SetDataRequest, SetDataResponse,
    SetWatches, SetWatches2, WatcherEvent,
};
use rzk_proto::txn::{Txn, TxnRecord};
use rzk_proto::{ErrorCode, Jute, OpCode, Reader, ServerId, SessionId, Zxid};
use rzk_server::auth::AuthInfo;
use rzk_server::net::order::{Released, ReplyOrder, Slot};
use rzk_server::prep::{Prep, WriteRequest};
use rzk_server::reply::{notification_frame, reply_frame, write_reply_frame};
use rzk_server::request::{self, ReadRequest, Request};
use rzk_server::session::SessionTracker;
use rzk_server::tree::DataTree;
use rzk_server::watch::{ConnId, WatchManager};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// The znodes the clients work on.
const PATHS: [&str; 3] = ["/a", "/b", "/c"];
/// Session timeouts clients ask for (ms): short, so that a stalled or idle client's
/// session expires within a run (the quiet phase is longer than the longest).
const SESSION_TIMEOUT_MS: std::ops::Range<i32> = 600..2_000;
/// The tracker's tick (expiry bucket width, ms): the sim's tickTime.
const SESSION_TICK_MS: u32 = 100;
/// Clients per run.
const CLIENTS: usize = 4;
/// Requests one client keeps outstanding at most.
const MAX_OUTSTANDING: usize = 6;
/// jute.maxbuffer for decoding.
const MAX_BUFFER: usize = 1 << 20;

/// A write request as forwarded to the leader (the runtime's `Job` / REQUEST packet).
#[derive(Debug, Clone)]
pub(super) struct ForwardJob {
    pub session: i64,
    pub cxid: i32,
    pub req: WriteRequest,
}

/// One client connection on a node.
#[derive(Debug)]
struct SConn {
    client: usize,
    session: i64,
    order: ReplyOrder<LocalReq, WriteRequest, ()>,
    /// Session timeout the connection negotiated (for touches).
    timeout_ms: i32,
}

/// The server part of one node (lives and dies with the node's core).
#[derive(Debug)]
pub(super) struct App {
    pub tree: DataTree,
    prep: Prep,
    watches: WatchManager,
    sessions: SessionTracker,
    conns: BTreeMap<ConnId, SConn>,
    /// Write requests of this node's connections waiting for their commit.
    waiting: HashMap<(i64, i32), (ConnId, i32)>,
    /// Connections waiting for their createSession to be applied.
    handshakes: HashMap<i64, ConnId>,
    next_conn: ConnId,
    /// The answers of the apply chunk under way, oldest first, not yet handed to their
    /// connections (`node::apply::Answers`): released at the chunk's end
    /// ([`World::app_release`]), or one connection's before a notification on it.
    held: Vec<(ConnId, Held)>,
    /// An apply chunk is under way: the real applier holds the tree's write lock, so a
    /// connection's read at the front of its queue waits (`net::conn` `answer_local`
    /// takes the read lock); such connections are answered at the chunk's end.
    chunk_open: bool,
    reads_blocked: BTreeSet<ConnId>,
    /// An `Event::ApplyChunkEnd` is scheduled for this incarnation.
    chunk_end_scheduled: bool,
}

/// One answer of an apply chunk (`node::apply::Answers` holds the `ConnMsg`s).
#[derive(Debug)]
enum Held {
    /// A write's reply frame, for this client.
    Reply(Vec<u8>),
    /// The createSession of this client was applied (its connect response).
    Created(usize),
    /// The connection closes (its session expired).
    Close(&'static str),
}

impl App {
    fn new(tree: DataTree, sessions: SessionTracker, fault_multi: bool) -> App {
        let mut prep = Prep::new(false);
        prep.set_fault_multi_no_rollback(fault_multi);
        App {
            tree,
            prep,
            watches: WatchManager::new(),
            sessions,
            conns: BTreeMap::new(),
            waiting: HashMap::new(),
            handshakes: HashMap::new(),
            next_conn: 1,
            held: Vec::new(),
            chunk_open: false,
            reads_blocked: BTreeSet::new(),
            chunk_end_scheduled: false,
        }
    }
}

/// A request answered on its connection from the local tree (`net::conn`'s `Local`).
#[derive(Debug)]
enum LocalReq {
    Read(ReadRequest),
    /// Re-registers a reconnecting client's watches; events for what changed after its
    /// last zxid come first (`WatchManager::set_watches`, `Conn::answer_local`).
    SetWatches(SetWatches2),
}

/// A request a client sent, as it remembers it.
#[derive(Debug, Clone)]
struct Sent {
    xid: i32,
    op: Op,
}

#[derive(Debug, Clone)]
enum Op {
    Create {
        path: String,
        data: Bytes,
        ephemeral: bool,
    },
    Set {
        path: String,
        data: Bytes,
        expect: i32,
    },
    Delete {
        path: String,
    },
    Get {
        path: String,
        watch: bool,
    },
    Exists {
        path: String,
    },
    Multi(Vec<MOp>),
    /// closeSession: the client ends its session (no request after it).
    Close,
    /// SetWatches after a reconnect (xid -8): the client's armed data watches.
    SetWatches,
}

/// One operation of a multi.
#[derive(Debug, Clone)]
enum MOp {
    Check { path: String, version: i32 },
    Set { path: String, data: Bytes },
    Create { path: String, data: Bytes },
    Delete { path: String },
}

impl MOp {
    fn path(&self) -> &str {
        match self {
            MOp::Check { path, .. }
            | MOp::Set { path, .. }
            | MOp::Create { path, .. }
            | MOp::Delete { path } => path,
        }
    }
}

/// What a multi must do, from the znodes' states before it: every op in order against
/// the state the earlier ops left — the states after it, or the first failing op and
/// its error (then nothing changes).
fn multi_outcome(
    ops: &[MOp],
    before: impl Fn(&str) -> ZState,
) -> Result<BTreeMap<String, ZState>, (usize, ErrorCode)> {
    let mut st: BTreeMap<String, ZState> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        let p = op.path().to_owned();
        let cur = st.get(&p).cloned().unwrap_or_else(|| before(&p));
        let next = match (op, &cur) {
            (MOp::Check { .. } | MOp::Set { .. } | MOp::Delete { .. }, None) => {
                return Err((i, ErrorCode::NoNode))
            }
            (MOp::Check { version, .. }, Some(c)) if c.0 != *version => {
                return Err((i, ErrorCode::BadVersion))
            }
            (MOp::Check { .. }, _) => cur,
            (MOp::Set { data, .. }, Some(c)) => Some((c.0 + 1, data.clone(), c.2)),
            (MOp::Create { .. }, Some(_)) => return Err((i, ErrorCode::NodeExists)),
            (MOp::Create { data, .. }, None) => Some((0, data.clone(), 0)),
            (MOp::Delete { .. }, Some(_)) => None,
        };
        st.insert(p, next);
    }
    Ok(st)
}

#[derive(Debug, Default)]
struct ClientModel {
    session: Option<i64>,
    /// (node, node incarnation, connection id) while connected.
    conn: Option<(ServerId, u64, ConnId)>,
    /// The connection waits for its createSession.
    handshaking: bool,
    next_xid: i32,
    outstanding: VecDeque<Sent>,
    /// Highest zxid in any reply of this session.
    last_zxid: i64,
    /// Armed data watches: path -> zxid of the read that set it.
    watches: BTreeMap<String, i64>,
    /// Last version seen per path (for conditional sets).
    versions: HashMap<String, i32>,
    writes: u64,
    /// The timeout this client's session asked for.
    timeout_ms: i32,
    /// The client's TCP stream is stalled until then: nothing it sends reaches its
    /// server (no requests, no pings) — the requests wait in `stalled`.
    stalled_until: u64,
    stalled: Vec<(i32, Request)>,
    /// The client stays away (disconnected) until then.
    away_until: u64,
    /// Writes of this client applied on its server whose replies it has not had yet:
    /// zxid -> xid. A notification fired by a later txn must not arrive before them.
    applied_unanswered: BTreeMap<i64, i32>,
    /// The client sent closeSession: it sends nothing more on this session, and gives
    /// the session up once answered or disconnected.
    closing: bool,
}

/// State of one znode: (version, data, ephemeral owner), or absent.
type ZState = Option<(i32, Bytes, i64)>;

/// (version, data) of a state.
fn vd(s: &ZState) -> Option<(i32, Bytes)> {
    s.as_ref().map(|(v, d, _)| (*v, d.clone()))
}

/// Whole-server mode's world state: clients and the global history of the znodes.
#[derive(Debug, Default)]
pub(super) struct ServerSim {
    clients: Vec<ClientModel>,
    /// Per path, every committed change in zxid order: (zxid, state after).
    history: HashMap<String, Vec<(i64, ZState)>>,
    /// Highest zxid applied by any replica (the history is complete up to here).
    applied_max: i64,
    /// The tree digest each zxid produced at the first replica to apply it.
    digests: HashMap<i64, i64>,
    /// Committed createSession (timeout) / closeSession (None) txns in zxid order: the
    /// session table a snapshot at a zxid holds is rebuilt from it.
    session_log: Vec<(i64, i64, Option<i32>)>,
    /// Closed sessions: session -> zxid of its closeSession.
    closed: HashMap<i64, i64>,
    pub fault_overtake: bool,
    /// Injected bug: the leader's tracker accepts writes of closing / closed sessions
    /// (`SessionTracker::set_fault_accept_closed_writes`).
    pub fault_closed_writes: bool,
    /// Injected bug: `Prep::set_fault_multi_no_rollback` on every server.
    pub fault_multi: bool,
    /// Injected bug: a notification does not first release its connection's held
    /// answers (`node::apply::Answers::release_for` skipped).
    pub fault_notify_overtakes: bool,
    /// Draws for what was modelled after seeds were first recorded (apply chunks, client
    /// closeSession): xorshift state, seeded, apart from the world's generator, so that
    /// with those off a seed draws what it drew before.
    chunk_rng: u64,
    /// `SimOptions::chunked_apply`.
    chunked: bool,
    /// `SimOptions::client_closes`.
    client_closes: bool,
    /// `SimOptions::client_set_watches`.
    client_set_watches: bool,
    /// SetWatches requests sent on reconnects.
    pub set_watches_sent: u64,
    /// closeSession requests clients sent, and those answered OK.
    pub closes_sent: u64,
    pub closes_done: u64,
    pub multis: u64,
    pub multis_failed: u64,
    pub expiries: u64,
    pub ephemerals: u64,
    /// Reconnects refused with SESSIONEXPIRED.
    pub expired_told: u64,
    pub replies: u64,
    pub reads_checked: u64,
    pub notifications: u64,
    pub sessions: u64,
    /// See `SimReport::released_early` / `reads_behind_chunk`.
    pub released_early: u64,
    pub reads_behind_chunk: u64,
    pub reconnects: u64,
}

impl ServerSim {
    pub fn new(o: &super::SimOptions) -> ServerSim {
        ServerSim {
            clients: (0..CLIENTS).map(|_| ClientModel::default()).collect(),
            fault_overtake: o.fault_reads_overtake,
            fault_closed_writes: o.fault_closed_writes,
            fault_multi: o.fault_multi_no_rollback,
            fault_notify_overtakes: o.fault_notify_overtakes,
            chunk_rng: o.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            chunked: o.chunked_apply,
            client_closes: o.client_closes,
            client_set_watches: o.client_set_watches,
            ..ServerSim::default()
        }
    }

    /// How long an open chunk lasts past the input that applied its commits: 0 (it ends
    /// at once) half the time, else 1 or 2 ms.
    pub(super) fn chunk_delay_ms(&mut self) -> u64 {
        match self.next_chunk_draw() % 4 {
            0 | 1 => 0,
            2 => 1,
            _ => 2,
        }
    }

    /// Does a client close its session this tick? About once in 300 ticks (6 s).
    fn closes_now(&mut self) -> bool {
        self.client_closes && self.next_chunk_draw().is_multiple_of(300)
    }

    fn next_chunk_draw(&mut self) -> u64 {
        let mut x = self.chunk_rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.chunk_rng = x;
        x
    }

    /// Does the apply chunk end after this txn? One in four does (the real applier's
    /// chunks end at 128 txns or 250 µs of applying, or when the commits run out);
    /// every one without `chunked`.
    pub(super) fn chunk_ends(&mut self) -> bool {
        !self.chunked || self.next_chunk_draw().is_multiple_of(4)
    }

    /// The session table of a server whose tree is at `zxid` (what a snapshot at that
    /// zxid holds, and the log replay rebuilds), started at `now`.
    fn tracker_at(&self, sid: ServerId, zxid: i64, now: u64) -> SessionTracker {
        let mut t = SessionTracker::new(sid, SESSION_TICK_MS, now as i64 + 1_000_000);
        t.set_fault_accept_closed_writes(self.fault_closed_writes);
        for (z, s, timeout) in &self.session_log {
            if *z > zxid {
                break;
            }
            match timeout {
                Some(to) => t.add(SessionId(*s), *to, now as i64),
                None => {
                    t.remove(SessionId(*s));
                }
            }
        }
        t
    }

    fn state_at(&self, path: &str, zxid: i64) -> ZState {
        let h = self.history.get(path)?;
        let i = h.partition_point(|(z, _)| *z <= zxid);
        if i == 0 {
            None
        } else {
            h[i - 1].1.clone()
        }
    }

    /// The first change of `path` in (after, upto], if any.
    fn change_between(&self, path: &str, after: i64, upto: i64) -> Option<i64> {
        let h = self.history.get(path)?;
        let i = h.partition_point(|(z, _)| *z <= after);
        h.get(i).map(|(z, _)| *z).filter(|z| *z <= upto)
    }
}

fn zstate(tree: &DataTree, path: &str) -> ZState {
    tree.get_data(path).map(|(d, st)| {
        (
            st.version,
            d.as_option().cloned().unwrap_or_default(),
            st.ephemeral_owner,
        )
    })
}

fn hex(z: i64) -> String {
    format!("{}", Zxid(z))
}

impl World {
    fn srv(&mut self) -> &mut ServerSim {
        self.srv.as_mut().expect("server mode")
    }

    /// A node started: its server part starts from the tree it recovered, with the
    /// session table of that tree's zxid (modelled: rebuilt from the committed
    /// history, as the snapshot's session table plus the log replay would give).
    pub(super) fn app_start(&mut self, sid: ServerId, tree: DataTree) {
        let now = self.now;
        let sessions = self.srv().tracker_at(sid, tree.last_zxid().0, now);
        let fault_multi = self.srv().fault_multi;
        if let Some(n) = self.nodes.get_mut(&sid) {
            n.app = Some(App::new(tree, sessions, fault_multi));
        }
    }

    /// A node installed a SNAP: its session table becomes the snapshot's, through the
    /// server's own `SessionTracker::replace_all` on the table it had (what
    /// `node/apply.rs` does), so what the install leaves behind (closing marks, closed
    /// ids) is the real server's.
    pub(super) fn app_snapshot_installed(&mut self, sid: ServerId) {
        let Some(z) = self.nodes[&sid].app.as_ref().map(|a| a.tree.last_zxid().0) else {
            return;
        };
        let now = self.now;
        let model = self.srv().tracker_at(sid, z, now);
        let snapshot: Vec<(SessionId, i32)> = model
            .ids()
            .into_iter()
            .filter_map(|id| model.get(id).map(|s| (id, s.timeout_ms)))
            .collect();
        if let Some(app) = self.nodes.get_mut(&sid).and_then(|n| n.app.as_mut()) {
            app.sessions.replace_all(snapshot, now as i64);
        }
    }

    /// A leader was established: it reopens the sessions an earlier term left closing
    /// and touches every session it knows (as `node::driver::on_established`), so none
    /// expires for the election's pause.
    pub(super) fn app_established(&mut self, sid: ServerId) {
        let now = self.now as i64;
        if let Some(app) = self.nodes.get_mut(&sid).and_then(|n| n.app.as_mut()) {
            app.sessions.reopen_closing(now);
            for id in app.sessions.ids() {
                let _ = app.sessions.touch(id, now);
            }
        }
    }

    /// Each tick, per node: its connections' sessions are touched (a learner sends them
    /// with its next PING through the real ZAB core; the leader touches its own), and
    /// a serving leader expires sessions through the real tracker and a closeSession
    /// txn prepared like any write (`node::driver`'s tick).
    pub(super) fn sessions_tick(&mut self, sid: ServerId) {
        let now = self.now;
        let Some(n) = self.nodes.get(&sid) else {
            return;
        };
        let Some(z) = n.zab.as_ref() else { return };
        let leading = z.role() == rzk_server::zab::Role::Leading;
        let serving = z.is_serving();
        let Some(app) = n.app.as_ref() else { return };
        let srv = self.srv.as_ref().expect("server mode");
        let touches: Vec<SessionTouch> = app
            .conns
            .values()
            .filter(|c| {
                let cm = &srv.clients[c.client];
                cm.stalled_until <= now && !cm.handshaking
            })
            .map(|c| SessionTouch {
                session_id: c.session,
                timeout_ms: c.timeout_ms,
            })
            .collect();
        if leading {
            let expired = {
                let Some(app) = self.nodes.get_mut(&sid).and_then(|n| n.app.as_mut()) else {
                    return;
                };
                for t in &touches {
                    let _ = app.sessions.touch(SessionId(t.session_id), now as i64);
                }
                if serving {
                    app.sessions.take_expired(now as i64)
                } else {
                    Vec::new()
                }
            };
            for s in expired {
                self.srv().expiries += 1;
                self.log(|| format!("{sid}: expiring session 0x{:x}", s.0));
                self.leader_propose(sid, s.0, 0, &WriteRequest::CloseSession);
            }
        } else if serving && !touches.is_empty() {
            self.input(
                sid,
                rzk_server::zab::Input::SessionTouches(Bytes::from(encode_touches(&touches))),
            );
        }
    }

    /// The leader's ZAB core reported a learner's session touches (PING).
    pub(super) fn app_touches(&mut self, sid: ServerId, data: &[u8]) {
        let Ok(ts) = decode_touches(data) else {
            self.checker
                .report(format!("server {sid}: undecodable session touches"));
            return;
        };
        let now = self.now as i64;
        if let Some(app) = self.nodes.get_mut(&sid).and_then(|n| n.app.as_mut()) {
            for t in ts {
                let _ = app.sessions.touch(SessionId(t.session_id), now);
            }
        }
    }

    /// A node crashed or stopped serving: every client connection to it closes.
    pub(super) fn app_close_all(&mut self, sid: ServerId, why: &str) {
        let conns: Vec<(ConnId, usize)> =
            match self.nodes.get_mut(&sid).and_then(|n| n.app.as_mut()) {
                Some(app) => {
                    app.waiting.clear();
                    app.handshakes.clear();
                    app.held.clear();
                    let v: Vec<(ConnId, usize)> =
                        app.conns.iter().map(|(c, s)| (*c, s.client)).collect();
                    for (c, _) in &v {
                        app.watches.remove_conn(*c);
                    }
                    app.conns.clear();
                    v
                }
                None => Vec::new(),
            };
        for (conn, client) in conns {
            self.client_disconnected(client, sid, conn, why);
        }
    }

    fn close_conn(&mut self, sid: ServerId, conn: ConnId, why: &str) {
        let client = self
            .nodes
            .get_mut(&sid)
            .and_then(|n| n.app.as_mut())
            .and_then(|app| {
                app.watches.remove_conn(conn);
                app.waiting.retain(|_, c| c.0 != conn);
                app.handshakes.retain(|_, c| *c != conn);
                app.conns.remove(&conn).map(|c| c.client)
            });
        if let Some(client) = client {
            self.client_disconnected(client, sid, conn, why);
        }
    }

    fn client_disconnected(&mut self, client: usize, sid: ServerId, conn: ConnId, why: &str) {
        // With SetWatches the client re-registers its watches on the next connection.
        let keep_watches = self.srv().client_set_watches;
        let c = &mut self.srv().clients[client];
        if c.conn.map(|(s, _, cid)| (s, cid)) != Some((sid, conn)) {
            return;
        }
        c.conn = None;
        c.outstanding.clear();
        c.applied_unanswered.clear();
        if !keep_watches {
            c.watches.clear();
        }
        c.stalled.clear();
        c.stalled_until = 0;
        if c.handshaking {
            // The createSession's outcome is unknown: start over with a new session.
            c.session = None;
            c.handshaking = false;
            c.watches.clear();
        }
        if c.closing {
            // Closed or not, the session is given up (it expires if the close was lost).
            c.session = None;
            c.closing = false;
            c.versions.clear();
            c.watches.clear();
        }
        self.log(|| format!("client {client}: disconnected from {sid} ({why})"));
    }

    /// Each tick: clients connect and send.
    pub(super) fn clients_step(&mut self) {
        let sending = self.now < self.writes_until;
        let now = self.now;
        for client in 0..CLIENTS {
            let conn = self.srv().clients[client].conn;
            match conn {
                None => {
                    if self.srv().clients[client].away_until <= now && self.rng.gen_bool(0.3) {
                        self.client_connect(client);
                    }
                }
                Some((sid, inc, conn)) => {
                    if self.nodes[&sid].inc != inc {
                        continue;
                    }
                    // A stalled stream delivers what waited, in order, when it ends.
                    let c = &mut self.srv().clients[client];
                    if c.stalled_until <= now && !c.stalled.is_empty() {
                        let queued = std::mem::take(&mut c.stalled);
                        self.log(|| {
                            format!(
                                "client {client}: stream resumes ({} requests)",
                                queued.len()
                            )
                        });
                        for (xid, req) in queued {
                            self.conn_request(sid, conn, xid, req);
                        }
                        continue;
                    }
                    let c = &self.srv().clients[client];
                    if c.handshaking || c.closing || !sending {
                        continue;
                    }
                    if self.srv().closes_now() {
                        self.client_close(client, sid, conn);
                        continue;
                    }
                    let c = &self.srv().clients[client];
                    let to = u64::try_from(c.timeout_ms).unwrap_or(1000).max(8);
                    let flowing = c.stalled_until <= now;
                    if self.chaos && flowing && self.rng.gen_bool(0.012) {
                        // The client's TCP stream stalls (no requests, no pings reach
                        // the server), possibly past its session timeout.
                        // Half of them end around the session's expiry on the leader
                        // (timeout after the last touch, rounded up to the tracker's
                        // tick), where a late request races its session's closeSession.
                        let len = if self.rng.gen_bool(0.5) {
                            self.rng.gen_range(to / 4..to)
                        } else {
                            self.rng.gen_range(to..to + 250)
                        };
                        let until = now + len;
                        self.srv().clients[client].stalled_until = until;
                        self.log(|| format!("client {client}: stream stalls until {until}"));
                    }
                    if self.chaos && self.rng.gen_bool(0.002) {
                        // The client goes away for a while (its session may expire);
                        // it comes back with the same session.
                        let back = now + self.rng.gen_range(to / 2..to * 3);
                        self.srv().clients[client].away_until = back;
                        self.close_conn(sid, conn, "client goes away");
                        continue;
                    }
                    if self.rng.gen_bool(0.5) {
                        let n = self.rng.gen_range(1..4);
                        for _ in 0..n {
                            if self.srv().clients[client].outstanding.len() >= MAX_OUTSTANDING {
                                break;
                            }
                            self.client_send(client, sid, conn);
                        }
                    }
                    // Occasionally move to another server (the session moves with it).
                    if self.chaos && self.rng.gen_bool(0.01) {
                        self.close_conn(sid, conn, "client moves");
                    }
                }
            }
        }
    }

    fn client_connect(&mut self, client: usize) {
        let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
        let sid = ids[self.rng.gen_range(0..ids.len())];
        let serving = self.nodes[&sid]
            .zab
            .as_ref()
            .is_some_and(|z| z.is_serving());
        if !serving {
            return;
        }
        let last_seen = self.srv().clients[client].last_zxid;
        let inc = self.nodes[&sid].inc;
        let fault = self.srv().fault_overtake;
        let Some(app) = self.nodes.get_mut(&sid).and_then(|n| n.app.as_mut()) else {
            return;
        };
        // As the runtime: a client that has seen a later zxid than this server's tree is
        // refused (it tries another server).
        if last_seen > app.tree.last_zxid().0 {
            return;
        }
        let conn = app.next_conn;
        app.next_conn += 1;
        let mut order = ReplyOrder::new();
        order.set_fault_reads_overtake_writes(fault);
        let existing = self.srv.as_ref().and_then(|s| s.clients[client].session);
        if let Some(s) = existing {
            // REVALIDATE: the leader touches the session (`node::driver`, modelled as
            // answered at once); an expired one is refused with SESSIONEXPIRED.
            let leader = self.nodes[&sid].zab.as_ref().and_then(|z| z.leader());
            let now = self.now as i64;
            let Some(lapp) = leader
                .and_then(|l| self.nodes.get_mut(&l))
                .and_then(|n| n.app.as_mut())
            else {
                return;
            };
            let valid = lapp.sessions.touch(SessionId(s), now).is_ok();
            let applied = lapp.tree.last_zxid().0;
            let srv = self.srv.as_mut().expect("server mode");
            if valid {
                if let Some(c) = srv.closed.get(&s).filter(|c| **c <= applied) {
                    self.checker.report(format!(
                        "client {client}: leader {leader:?} revalidated session 0x{s:x}, closed at {} (its tree is at {})",
                        hex(*c),
                        hex(applied)
                    ));
                    return;
                }
            } else {
                srv.expired_told += 1;
                let c = &mut srv.clients[client];
                c.session = None;
                c.versions.clear();
                // An expired session's watches are gone with it.
                c.watches.clear();
                self.log(|| {
                    format!("client {client}: session 0x{s:x} expired (told on reconnect to {sid})")
                });
                return;
            }
        }
        let app = self
            .nodes
            .get_mut(&sid)
            .and_then(|n| n.app.as_mut())
            .expect("checked above");
        let session = match existing {
            Some(s) => s,
            None => app.sessions.next_session_id().0,
        };
        let timeout_ms = match existing {
            Some(_) => self
                .srv
                .as_ref()
                .map_or(1000, |s| s.clients[client].timeout_ms),
            None => self.rng.gen_range(SESSION_TIMEOUT_MS),
        };
        let Some(app) = self.nodes.get_mut(&sid).and_then(|n| n.app.as_mut()) else {
            return;
        };
        app.conns.insert(
            conn,
            SConn {
                client,
                session,
                order,
                timeout_ms,
            },
        );
        let handshaking = existing.is_none();
        if handshaking {
            app.handshakes.insert(session, conn);
        }
        {
            let c = &mut self.srv().clients[client];
            c.conn = Some((sid, inc, conn));
            c.session = Some(session);
            c.handshaking = handshaking;
            c.next_xid = c.next_xid.max(1);
            c.timeout_ms = timeout_ms;
        }
        self.srv().reconnects += 1;
        self.log(|| format!("client {client}: connect to {sid} session 0x{session:x}"));
        if handshaking {
            self.send_job(
                sid,
                conn,
                ForwardJob {
                    session,
                    cxid: 0,
                    req: WriteRequest::CreateSession { timeout_ms },
                },
                false,
            );
        } else {
            self.client_set_watches(client, sid, conn);
        }
    }

    /// A client back on its session re-registers its armed data watches before anything
    /// else (ZooKeeper's client sends SetWatches, xid -8, with the last zxid it saw).
    fn client_set_watches(&mut self, client: usize, sid: ServerId, conn: ConnId) {
        if !self.srv().client_set_watches {
            return;
        }
        let c = &mut self.srv().clients[client];
        if c.watches.is_empty() {
            return;
        }
        let sw = SetWatches {
            relative_zxid: c.last_zxid,
            data_watches: c.watches.keys().cloned().collect(),
            exist_watches: Vec::new(),
            child_watches: Vec::new(),
        };
        c.outstanding.push_back(Sent {
            xid: special_xid::SET_WATCHES,
            op: Op::SetWatches,
        });
        self.srv().set_watches_sent += 1;
        let body = sw.to_bytes();
        self.client_transmit(
            client,
            sid,
            conn,
            special_xid::SET_WATCHES,
            OpCode::SetWatches,
            &body,
        );
    }

    /// The client ends its session: closeSession after whatever it has outstanding
    /// (`net::conn` submits it as a write whose reply closes the connection).
    fn client_close(&mut self, client: usize, sid: ServerId, conn: ConnId) {
        let c = &mut self.srv().clients[client];
        let xid = c.next_xid;
        c.next_xid += 1;
        c.closing = true;
        c.outstanding.push_back(Sent { xid, op: Op::Close });
        self.srv().closes_sent += 1;
        let session = self.srv().clients[client].session.unwrap_or(0);
        self.log(|| format!("client {client}: closeSession of 0x{session:x} (xid {xid})"));
        self.client_transmit(client, sid, conn, xid, OpCode::CloseSession, &[]);
    }

    /// The request's bytes leave the client: decoded by the server's own decoder, then
    /// admitted on its connection (or queued while the client's stream is stalled).
    fn client_transmit(
        &mut self,
        client: usize,
        sid: ServerId,
        conn: ConnId,
        xid: i32,
        opcode: OpCode,
        body: &[u8],
    ) {
        let hdr = RequestHeader {
            xid,
            op: opcode.code(),
        };
        let req = match request::decode(&hdr, body, MAX_BUFFER) {
            Ok(r) => r,
            Err(e) => {
                self.checker.report(format!(
                    "client {client}: the server refused request {xid} ({opcode:?}): {e}"
                ));
                return;
            }
        };
        let now = self.now;
        let c = &mut self.srv().clients[client];
        if c.stalled_until > now {
            c.stalled.push((xid, req));
            return;
        }
        self.conn_request(sid, conn, xid, req);
    }

    fn client_send(&mut self, client: usize, sid: ServerId, conn: ConnId) {
        let path = PATHS[self.rng.gen_range(0..PATHS.len())].to_owned();
        let c = &mut self.srv.as_mut().expect("server mode").clients[client];
        c.writes += 1;
        let data = Bytes::from(format!("c{client}-{}", c.writes));
        let known = c.versions.get(&path).copied();
        let xid = c.next_xid;
        c.next_xid += 1;
        let roll = self.rng.gen_range(0..100);
        let op = match roll {
            0..=14 => Op::Create {
                path,
                data,
                ephemeral: self.rng.gen_bool(0.5),
            },
            15..=44 => Op::Set {
                path,
                data,
                expect: -1,
            },
            45..=59 => Op::Set {
                path,
                data,
                expect: known.unwrap_or(0),
            },
            60..=62 => Op::Delete { path },
            63..=68 => {
                // check + setData + create/delete, on any of the paths (repeats too).
                let mut ops = Vec::new();
                let n = self.rng.gen_range(2..=3);
                for k in 0..n {
                    let p = PATHS[self.rng.gen_range(0..PATHS.len())].to_owned();
                    let d = Bytes::from(format!("{}/m{k}", String::from_utf8_lossy(&data)));
                    ops.push(match self.rng.gen_range(0..4) {
                        0 => MOp::Check {
                            version: c.versions.get(&p).copied().unwrap_or(0),
                            path: p,
                        },
                        1 => MOp::Set { path: p, data: d },
                        2 => MOp::Create { path: p, data: d },
                        _ => MOp::Delete { path: p },
                    });
                }
                Op::Multi(ops)
            }
            69..=73 => Op::Exists { path },
            _ => Op::Get {
                path,
                watch: self.rng.gen_bool(0.5),
            },
        };
        // The client's bytes, decoded by the server's own decoder.
        let (opcode, body) = match &op {
            Op::Close => (OpCode::CloseSession, Vec::new()),
            Op::SetWatches => (OpCode::SetWatches, Vec::new()),
            Op::Create {
                path,
                data,
                ephemeral,
            } => (
                OpCode::Create,
                CreateRequest {
                    path: path.clone(),
                    data: data.clone().into(),
                    acl: Acl::open_unsafe(),
                    flags: i32::from(*ephemeral),
                }
                .to_bytes(),
            ),
            Op::Set { path, data, expect } => (
                OpCode::SetData,
                SetDataRequest {
                    path: path.clone(),
                    data: data.clone().into(),
                    version: *expect,
                }
                .to_bytes(),
            ),
            Op::Delete { path } => (
                OpCode::Delete,
                DeleteRequest {
                    path: path.clone(),
                    version: -1,
                }
                .to_bytes(),
            ),
            Op::Get { path, watch } => (
                OpCode::GetData,
                GetDataRequest {
                    path: path.clone(),
                    watch: *watch,
                }
                .to_bytes(),
            ),
            Op::Multi(ops) => (
                OpCode::Multi,
                MultiRequest {
                    ops: ops
                        .iter()
                        .map(|o| match o {
                            MOp::Check { path, version } => MultiOp::Check(CheckVersionRequest {
                                path: path.clone(),
                                version: *version,
                            }),
                            MOp::Set { path, data } => MultiOp::SetData(SetDataRequest {
                                path: path.clone(),
                                data: data.clone().into(),
                                version: -1,
                            }),
                            MOp::Create { path, data } => MultiOp::Create(
                                OpCode::Create.code(),
                                CreateRequest {
                                    path: path.clone(),
                                    data: data.clone().into(),
                                    acl: Acl::open_unsafe(),
                                    flags: 0,
                                },
                            ),
                            MOp::Delete { path } => MultiOp::Delete(DeleteRequest {
                                path: path.clone(),
                                version: -1,
                            }),
                        })
                        .collect(),
                }
                .to_bytes(),
            ),
            Op::Exists { path } => (
                OpCode::Exists,
                ExistsRequest {
                    path: path.clone(),
                    watch: false,
                }
                .to_bytes(),
            ),
        };
        c.outstanding.push_back(Sent { xid, op });
        self.client_transmit(client, sid, conn, xid, opcode, &body);
    }

    /// `net::conn::on_frame` + `submit` / `local`, then `advance`.
    fn conn_request(&mut self, sid: ServerId, conn: ConnId, xid: i32, req: Request) {
        let Some(app) = self.nodes.get_mut(&sid).and_then(|n| n.app.as_mut()) else {
            return;
        };
        let Some(sc) = app.conns.get_mut(&conn) else {
            return;
        };
        let req = match req {
            Request::CloseSession => Request::Write(WriteRequest::CloseSession),
            other => other,
        };
        match req {
            Request::Write(w) => {
                if sc.order.must_hold_pipeline() {
                    let close = matches!(w, WriteRequest::CloseSession);
                    sc.order.hold_pipeline(xid, w, close, ());
                } else {
                    let session = sc.session;
                    self.send_job(
                        sid,
                        conn,
                        ForwardJob {
                            session,
                            cxid: xid,
                            req: w,
                        },
                        true,
                    );
                }
            }
            Request::Read(r) => sc.order.local(xid, LocalReq::Read(r), ()),
            Request::SetWatches(sw) => sc.order.local(xid, LocalReq::SetWatches(sw), ()),
            other => {
                self.checker
                    .report(format!("sim sent an unexpected request {other:?}"));
                return;
            }
        }
        self.advance(sid, conn);
    }

    /// `net::conn::send_job`: the request enters the write path (forwarded to the leader).
    fn send_job(&mut self, sid: ServerId, conn: ConnId, job: ForwardJob, slot: bool) {
        let leader = self.nodes[&sid].zab.as_ref().and_then(|z| z.leader());
        let from_inc = self.nodes[&sid].inc;
        let Some(app) = self.nodes.get_mut(&sid).and_then(|n| n.app.as_mut()) else {
            return;
        };
        if slot {
            if let Some(sc) = app.conns.get_mut(&conn) {
                let close = matches!(job.req, WriteRequest::CloseSession);
                sc.order.push_pipeline(job.cxid, close, ());
            }
        }
        app.waiting
            .insert((job.session, job.cxid), (conn, job.req.op_code()));
        let Some(leader) = leader else {
            self.close_conn(sid, conn, "no leader");
            return;
        };
        let to_inc = self.nodes[&leader].inc;
        let delay = if leader == sid {
            0
        } else {
            self.rng.gen_range(1..8)
        };
        // The quorum connection is FIFO: forwarded requests arrive in order.
        let at = if leader == sid {
            self.now
        } else {
            self.links.fifo_time(sid, leader, self.now + delay)
        };
        self.schedule(
            at,
            Event::Forward {
                from: sid,
                from_inc,
                conn,
                to: leader,
                to_inc,
                job: Box::new(job),
            },
        );
    }

    /// The leader receives a forwarded request: prep, then propose.
    pub(super) fn on_forward(
        &mut self,
        from: ServerId,
        from_inc: u64,
        conn: ConnId,
        to: ServerId,
        to_inc: u64,
        job: ForwardJob,
    ) {
        let leading = self.nodes[&to]
            .zab
            .as_ref()
            .filter(|_| self.nodes[&to].inc == to_inc)
            .and_then(|z| z.next_zxid())
            .is_some();
        if !leading || self.nodes[&from].inc != from_inc {
            // Lost with the leader (or the learner): the runtime drops the learner's
            // clients when it loses its leader; here the connection closes at once.
            if self.nodes[&from].inc == from_inc {
                self.close_conn(from, conn, "request lost with the leader");
            }
            return;
        }
        self.leader_propose(to, job.session, job.cxid, &job.req);
    }

    /// `node::driver::prepare` + `propose` on the leader `to`: the session check
    /// (`SessionTracker::refuses_writes`, SESSIONEXPIRED as an error txn), then prep of
    /// the next zxid, proposed.
    fn leader_propose(&mut self, to: ServerId, session: i64, cxid: i32, req: &WriteRequest) {
        let Some(zxid) = self.nodes[&to].zab.as_ref().and_then(|z| z.next_zxid()) else {
            return;
        };
        let now = self.now as i64 + 1_000_000;
        let Some(app) = self.nodes.get_mut(&to).and_then(|n| n.app.as_mut()) else {
            return;
        };
        let auth = AuthInfo::for_ip("127.0.0.1");
        let refused = !matches!(
            req,
            WriteRequest::CreateSession { .. } | WriteRequest::CloseSession
        ) && app.sessions.refuses_writes(SessionId(session));
        let rec = if refused {
            app.prep.error_record(
                &app.tree,
                SessionId(session),
                cxid,
                zxid,
                now,
                ErrorCode::SessionExpired,
            )
        } else {
            app.prep
                .prepare(&app.tree, SessionId(session), cxid, req, &auth, zxid, now)
        };
        let payload = Bytes::from(rec.encode());
        let h = hash_bytes(&payload);
        self.checker.proposed(to, zxid, h);
        self.input(to, rzk_server::zab::Input::Propose { zxid, payload });
    }

    /// The leader lost or gained its role: the prep overlay starts over.
    pub(super) fn app_role_changed(&mut self, sid: ServerId) {
        if let Some(app) = self.nodes.get_mut(&sid).and_then(|n| n.app.as_mut()) {
            app.prep.reset();
        }
        // Like `Driver::close_after_commits`: the answers of what was applied first.
        self.app_release(sid, None);
        self.app_close_all(sid, "server left the serving state");
    }

    /// A committed txn reaches this node's tree (`node::apply::apply_locked`).
    pub(super) fn app_commit(&mut self, sid: ServerId, zxid: Zxid, payload: &[u8]) {
        let rec = match TxnRecord::decode(payload) {
            Ok(r) => r,
            Err(e) => {
                self.checker.report(format!(
                    "server {sid}: committed txn {zxid} does not decode: {e}"
                ));
                return;
            }
        };
        let now = self.now as i64;
        let Some(app) = self.nodes.get_mut(&sid).and_then(|n| n.app.as_mut()) else {
            return;
        };
        app.chunk_open = true;
        let before: Vec<ZState> = PATHS.iter().map(|p| zstate(&app.tree, p)).collect();
        let result = app.tree.apply(&rec);
        let digest = app.tree.digest();
        let mut problems = Vec::new();
        // Session bookkeeping follows the committed txn (`node::apply::apply_locked`).
        let session = rec.header.client_id;
        let mut expired_conn = None;
        match &rec.txn {
            Txn::CreateSession(t) => app.sessions.add(SessionId(session), t.timeout_ms, now),
            Txn::CloseSession(_) => {
                app.sessions.remove(SessionId(session));
                let left = app.tree.ephemerals(SessionId(session));
                if !left.is_empty() {
                    problems.push(format!(
                        "server {sid}: session 0x{session:x} closed at {zxid} still owns ephemerals {left:?}"
                    ));
                }
                // Its connection here closes (the client learns on reconnect).
                expired_conn = app
                    .conns
                    .iter()
                    .find(|(_, c)| c.session == session)
                    .map(|(id, _)| *id);
            }
            _ => {}
        }
        if let Some(d) = &rec.digest {
            if d.tree_digest != digest {
                problems.push(format!(
                    "server {sid}: digest after {zxid} is {digest:x}, prep predicted {:x}",
                    d.tree_digest
                ));
            }
        }
        let states: Vec<(String, ZState)> = PATHS
            .iter()
            .map(|p| (p.to_string(), zstate(&app.tree, p)))
            .collect();
        // Watches fire before anyone can read the new state.
        let events = if result.changes.is_empty() {
            Vec::new()
        } else {
            app.watches.trigger(&result.changes, |_, _| true)
        };
        let mut frames: Vec<(usize, ConnId, Vec<u8>)> = events
            .iter()
            .filter_map(|(c, ev)| {
                app.conns
                    .get(c)
                    .map(|sc| (sc.client, *c, notification_frame(ev)))
            })
            .collect();
        let key = (rec.header.client_id, rec.header.cxid);
        // This txn's answer, held until its chunk ends (`node::apply::Answers`).
        let mut answer = None;
        if let Some((conn, op)) = app.waiting.remove(&key) {
            if let Txn::CreateSession(_) = rec.txn {
                if app.handshakes.remove(&rec.header.client_id) == Some(conn) {
                    answer = app
                        .conns
                        .get(&conn)
                        .map(|sc| (conn, sc.client, Held::Created(sc.client)));
                }
            } else if let Some(sc) = app.conns.get(&conn) {
                // As node::apply::reply_to_origin: the body for the request's opcode.
                let frame = write_reply_frame(rec.header.cxid, result.zxid, op, &result);
                answer = Some((conn, sc.client, Held::Reply(frame)));
            }
        }
        // Acknowledged writes must survive (applied is committed: a reply still held
        // when its server crashes does not make the write any less durable).
        if matches!(answer, Some((_, _, Held::Reply(_)))) {
            self.acked.push((zxid, hash_bytes(payload)));
        }
        let srv = self.srv.as_mut().expect("server mode");
        if zxid.0 > srv.applied_max {
            srv.applied_max = zxid.0;
            srv.digests.insert(zxid.0, digest);
            // Sessions: a closeSession deletes exactly its session's ephemerals; nothing
            // of a closed session runs after its closeSession.
            let is_error = matches!(rec.txn, Txn::Error(_));
            match &rec.txn {
                Txn::CreateSession(t) => {
                    srv.session_log.push((zxid.0, session, Some(t.timeout_ms)));
                }
                Txn::CloseSession(_) => {
                    srv.session_log.push((zxid.0, session, None));
                    srv.closed.entry(session).or_insert(zxid.0);
                    for ((p, b), (_, a)) in PATHS.iter().zip(&before).zip(&states) {
                        let owned = b.as_ref().is_some_and(|b| b.2 == session);
                        if (owned && a.is_some()) || (!owned && a != b) {
                            problems.push(format!(
                                "closeSession of 0x{session:x} at {zxid}: {p} went from {b:?} to {a:?}"
                            ));
                        }
                    }
                }
                _ => {
                    if let Some(c) = srv.closed.get(&session) {
                        if !is_error {
                            problems.push(format!(
                                "session 0x{session:x} wrote at {zxid} ({:?}) after its closeSession at {} — an expired session's write ran",
                                rec.txn,
                                hex(*c)
                            ));
                        }
                    }
                }
            }
            for (p, a) in &states {
                if let Some((_, _, owner)) = a {
                    if let Some(c) = srv.closed.get(owner) {
                        problems.push(format!(
                            "{p} at {zxid} is an ephemeral of session 0x{owner:x}, closed at {}",
                            hex(*c)
                        ));
                    }
                }
            }
            if matches!(rec.txn, Txn::Create(..)) {
                srv.ephemerals += u64::from(
                    states
                        .iter()
                        .any(|(_, a)| a.as_ref().is_some_and(|a| a.2 == session && session != 0))
                        && !is_error,
                );
            }
            for (p, st) in states {
                let h = srv.history.entry(p).or_default();
                if h.last().map(|(_, s)| s) != Some(&st) && !(h.is_empty() && st.is_none()) {
                    h.push((zxid.0, st));
                }
            }
        } else if let Some(d) = srv.digests.get(&zxid.0) {
            if *d != digest {
                problems.push(format!(
                    "server {sid}: tree digest {digest:x} at {zxid} differs from {d:x} on the first replica"
                ));
            }
        }
        for p in problems {
            self.checker.report(p);
        }
        let overtake = self.srv().fault_notify_overtakes;
        for (client, conn, f) in frames.drain(..) {
            // The connection's held answers (earlier txns of this chunk) go first.
            if !overtake {
                self.app_release(sid, Some(conn));
            }
            self.notification_after_replies(client, sid, conn, zxid.0);
            self.client_frame(client, sid, conn, &f);
        }
        let mut held = Vec::new();
        if let Some((conn, client, h)) = answer {
            if let Held::Reply(_) = h {
                let c = &mut self.srv().clients[client];
                if c.conn.map(|(s, _, cid)| (s, cid)) == Some((sid, conn)) {
                    c.applied_unanswered.insert(zxid.0, rec.header.cxid);
                }
            }
            held.push((conn, h));
        }
        if let Some(conn) = expired_conn {
            held.push((conn, Held::Close("session expired")));
        }
        if let Some(app) = self.nodes.get_mut(&sid).and_then(|n| n.app.as_mut()) {
            app.held.extend(held);
        }
    }

    /// A node handled one input and applied the commits it produced. Without chunks the
    /// chunk ends now. With them it ends now, or 1-2 ms later (an applier that lags
    /// behind: later commits join the chunk, reads wait for its end).
    pub(super) fn app_after_commits(&mut self, sid: ServerId) {
        let chunked = self.srv().chunked;
        let Some(n) = self.nodes.get_mut(&sid) else {
            return;
        };
        let inc = n.inc;
        let Some(app) = n.app.as_mut() else {
            return;
        };
        if !app.chunk_open || app.chunk_end_scheduled {
            return;
        }
        let delay = if chunked {
            self.srv().chunk_delay_ms()
        } else {
            0
        };
        if delay == 0 {
            self.app_release(sid, None);
            return;
        }
        if let Some(app) = self.nodes.get_mut(&sid).and_then(|n| n.app.as_mut()) {
            app.chunk_end_scheduled = true;
        }
        let at = self.now + delay;
        self.schedule(at, super::Event::ApplyChunkEnd { node: sid, inc });
    }

    /// `Event::ApplyChunkEnd`.
    pub(super) fn app_chunk_end(&mut self, sid: ServerId, inc: u64) {
        let Some(app) = self
            .nodes
            .get_mut(&sid)
            .filter(|n| n.inc == inc)
            .and_then(|n| n.app.as_mut())
        else {
            return;
        };
        app.chunk_end_scheduled = false;
        self.app_release(sid, None);
    }

    /// The end of an apply chunk (`only`: `None`), or a notification about to be queued
    /// on connection `only`: hands the held answers (all, or that connection's) to their
    /// connections, oldest first — a reply is filed in the session's reply order and
    /// answered from its front (`net::conn`), a close closes. Taken one at a time: what
    /// an answer sets off (the session's next requests) may apply nothing before it
    /// returns, but must not see the rest as already released.
    pub(super) fn app_release(&mut self, sid: ServerId, only: Option<ConnId>) {
        if only.is_none() {
            if let Some(app) = self.nodes.get_mut(&sid).and_then(|n| n.app.as_mut()) {
                app.chunk_open = false;
            }
        }
        loop {
            let Some(app) = self.nodes.get_mut(&sid).and_then(|n| n.app.as_mut()) else {
                return;
            };
            let Some(i) = app
                .held
                .iter()
                .position(|(c, _)| only.is_none_or(|o| o == *c))
            else {
                break;
            };
            let (conn, h) = app.held.remove(i);
            if only.is_some() {
                self.srv().released_early += 1;
            }
            let Some(app) = self.nodes.get_mut(&sid).and_then(|n| n.app.as_mut()) else {
                return;
            };
            match h {
                Held::Reply(frame) => {
                    let Some(sc) = app.conns.get_mut(&conn) else {
                        continue;
                    };
                    let r = sc.order.mark_done(frame, false);
                    if r != rzk_server::net::order::MarkDone::Stored {
                        self.checker.report(format!(
                            "server {sid}: a held reply on connection {conn} filed as {r:?}"
                        ));
                    }
                    self.advance(sid, conn);
                }
                Held::Created(client) => {
                    let c = &mut self.srv().clients[client];
                    if c.conn.map(|(s, _, cid)| (s, cid)) == Some((sid, conn)) {
                        c.handshaking = false;
                        self.srv().sessions += 1;
                    }
                }
                Held::Close(why) => self.close_conn(sid, conn, why),
            }
        }
        if only.is_none() {
            // The write lock is released: the reads that waited for it are answered.
            let blocked = match self.nodes.get_mut(&sid).and_then(|n| n.app.as_mut()) {
                Some(app) => std::mem::take(&mut app.reads_blocked),
                None => return,
            };
            for conn in blocked {
                self.advance(sid, conn);
            }
        }
    }

    /// A notification fired by the txn at `zxid` reaches `client`: every write of its
    /// that this server applied before must have been answered first (ZooKeeper sends
    /// a write's reply as it applies it, before any later txn can fire a watch).
    fn notification_after_replies(
        &mut self,
        client: usize,
        sid: ServerId,
        conn: ConnId,
        zxid: i64,
    ) {
        let c = &self.srv().clients[client];
        if c.conn.map(|(s, _, cid)| (s, cid)) != Some((sid, conn)) {
            return;
        }
        if let Some((w, xid)) = c.applied_unanswered.range(..zxid).next() {
            let p = format!(
                "client {client}: a notification fired at {} arrived before the reply of its xid {xid}, applied at {} — a reply was overtaken",
                hex(zxid),
                hex(*w)
            );
            self.checker.report(p);
        }
    }

    /// `net::conn::advance`: answer from the front, release held requests.
    fn advance(&mut self, sid: ServerId, conn: ConnId) {
        loop {
            // answer_front
            loop {
                let Some(app) = self.nodes.get_mut(&sid).and_then(|n| n.app.as_mut()) else {
                    return;
                };
                let Some(sc) = app.conns.get_mut(&conn) else {
                    return;
                };
                if app.chunk_open && sc.order.front_is_local() {
                    // Waits for the applier's write lock (the chunk's end).
                    if app.reads_blocked.insert(conn) {
                        self.srv().reads_behind_chunk += 1;
                    }
                    return;
                }
                let Some(slot) = sc.order.pop_answerable() else {
                    break;
                };
                let client = sc.client;
                let session = sc.session;
                let (frame, close) = match slot {
                    Slot::Pipeline {
                        done: Some(frame),
                        close,
                        ..
                    } => (frame, close),
                    Slot::Pipeline { done: None, .. } => break,
                    Slot::Local {
                        xid,
                        what: LocalReq::Read(what),
                        ..
                    } => {
                        let auth = AuthInfo::for_ip("127.0.0.1");
                        let f = rzk_server::read::read_frame(
                            xid,
                            &app.tree,
                            &mut app.watches,
                            conn,
                            &auth,
                            SessionId(session),
                            &what,
                        );
                        (f, false)
                    }
                    Slot::Local {
                        xid,
                        what: LocalReq::SetWatches(sw),
                        ..
                    } => {
                        // As `Conn::answer_local`: the events, then the reply.
                        let events = app.watches.set_watches(conn, &sw, &app.tree);
                        let zxid = app.tree.last_zxid();
                        for ev in &events {
                            self.client_frame(client, sid, conn, &notification_frame(ev));
                        }
                        (reply_frame(xid, zxid, 0, &[]), false)
                    }
                };
                self.client_frame(client, sid, conn, &frame);
                if close {
                    // `net::conn`: the connection closes after a closeSession's reply.
                    self.close_conn(sid, conn, "session closed");
                    return;
                }
            }
            // release_held
            let Some(sc) = self
                .nodes
                .get_mut(&sid)
                .and_then(|n| n.app.as_mut())
                .and_then(|a| a.conns.get_mut(&conn))
            else {
                return;
            };
            let before = sc.order.held_len();
            if before == 0 {
                return;
            }
            while let Some(Released { xid, kind, .. }) = self
                .nodes
                .get_mut(&sid)
                .and_then(|n| n.app.as_mut())
                .and_then(|a| a.conns.get_mut(&conn))
                .and_then(|sc| sc.order.next_released())
            {
                let session = self.nodes[&sid]
                    .app
                    .as_ref()
                    .and_then(|a| a.conns.get(&conn))
                    .map_or(0, |sc| sc.session);
                self.send_job(
                    sid,
                    conn,
                    ForwardJob {
                        session,
                        cxid: xid,
                        req: kind,
                    },
                    true,
                );
            }
            let after = self
                .nodes
                .get(&sid)
                .and_then(|n| n.app.as_ref())
                .and_then(|a| a.conns.get(&conn))
                .map_or(0, |sc| sc.order.held_len());
            if after == before {
                return;
            }
        }
    }

    /// A client receives one frame on its connection: the client-side checks.
    fn client_frame(&mut self, client: usize, sid: ServerId, conn: ConnId, frame: &[u8]) {
        let srv = self.srv.as_mut().expect("server mode");
        let c = &mut srv.clients[client];
        if c.conn.map(|(s, _, cid)| (s, cid)) != Some((sid, conn)) {
            return;
        }
        let mut r = Reader::new(frame.get(4..).unwrap_or_default());
        let Ok(hdr) = r.read::<ReplyHeader>() else {
            self.checker
                .report(format!("client {client}: undecodable frame from {sid}"));
            return;
        };
        let mut problems: Vec<String> = Vec::new();
        if hdr.xid == special_xid::NOTIFICATION {
            srv.notifications += 1;
            let Ok(ev) = r.read::<WatcherEvent>() else {
                self.checker
                    .report(format!("client {client}: undecodable notification"));
                return;
            };
            let c = &mut srv.clients[client];
            if c.watches.remove(&ev.path).is_none() {
                problems.push(format!(
                    "client {client}: notification {} on {} without an armed watch (fired twice?)",
                    ev.event_type, ev.path
                ));
            } else if ev.event_type != event::NODE_DATA_CHANGED
                && ev.event_type != event::NODE_DELETED
            {
                problems.push(format!(
                    "client {client}: data watch on {} fired as event {}",
                    ev.path, ev.event_type
                ));
            }
            for p in problems {
                self.checker.report(p);
            }
            return;
        }
        srv.replies += 1;
        let c = &mut srv.clients[client];
        c.applied_unanswered.retain(|_, x| *x != hdr.xid);
        let Some(sent) = c.outstanding.pop_front() else {
            self.checker.report(format!(
                "client {client}: reply xid {} with nothing outstanding",
                hdr.xid
            ));
            return;
        };
        if sent.xid != hdr.xid {
            problems.push(format!(
                "client {client} (session 0x{:x} on server {sid}): reply for xid {} arrived while xid {} ({:?}) was the oldest outstanding request — the session's FIFO order is broken",
                c.session.unwrap_or(0),
                hdr.xid,
                sent.xid,
                sent.op
            ));
        }
        if hdr.zxid < c.last_zxid {
            problems.push(format!(
                "client {client}: reply zxid {} after {} (a session went back in time)",
                hex(hdr.zxid),
                hex(c.last_zxid)
            ));
        }
        c.last_zxid = c.last_zxid.max(hdr.zxid);
        let z = hdr.zxid;
        let err = hdr.err;
        let ok = err == 0;
        let body = r.rest();
        let armed: Vec<(String, i64)> = c.watches.iter().map(|(p, w)| (p.clone(), *w)).collect();
        let session = c.session.unwrap_or(0);
        let srv = &*srv;
        let now_state = |p: &str| srv.state_at(p, z);
        let before_state = |p: &str| srv.state_at(p, z - 1);
        let mut arm = None;
        let mut reads = 0;
        let mut multi = None;
        let mut seen_version = None;
        if z > srv.applied_max {
            problems.push(format!(
                "client {client}: reply at {} beyond anything applied ({})",
                hex(z),
                hex(srv.applied_max)
            ));
        }
        let write = matches!(
            sent.op,
            Op::Create { .. } | Op::Set { .. } | Op::Delete { .. } | Op::Multi(_) | Op::Close
        );
        let expired = err == ErrorCode::SessionExpired.code() && write;
        if expired {
            // Only a session closed before the error txn may be refused.
            if srv.closed.get(&session).is_none_or(|c| *c >= z) {
                problems.push(format!(
                    "client {client}: {:?} refused with SESSIONEXPIRED at {} but session 0x{session:x} was not closed before it",
                    sent.op,
                    hex(z)
                ));
            }
        }
        let mut closed_by_client = false;
        match (&sent.op, sent.xid == hdr.xid && !expired) {
            (_, false) => {}
            (Op::SetWatches, true) => {
                // The events for what changed came first (the watch rule below checks
                // that none is missing); the reply is OK.
                if !ok {
                    problems.push(format!("client {client}: SetWatches answered err {err}"));
                }
            }
            (Op::Close, true) => {
                // Answered at the zxid of this session's closeSession.
                closed_by_client = true;
                if !ok || srv.closed.get(&session) != Some(&z) {
                    problems.push(format!(
                        "client {client}: closeSession of 0x{session:x} answered (err {err}) at {}, but the session's closeSession committed at {:?}",
                        hex(z),
                        srv.closed.get(&session).map(|c| hex(*c))
                    ));
                }
            }
            (Op::Multi(ops), true) => {
                let got = if ok {
                    MultiResponse::from_bytes(body).map(|r| r.results)
                } else {
                    Ok(Vec::new())
                };
                match (multi_outcome(ops, before_state), got) {
                    (_, Err(e)) => problems.push(format!("client {client}: multi body: {e}")),
                    (Ok(after), Ok(results)) => {
                        multi = Some(true);
                        // All applied at z: the states the ops leave, one result each.
                        let mut bad = !ok || results.len() != ops.len();
                        for (p, want) in &after {
                            bad |= now_state(p) != *want;
                        }
                        let mut st: BTreeMap<&str, ZState> = BTreeMap::new();
                        for (op, res) in ops.iter().zip(&results) {
                            let cur = st
                                .get(op.path())
                                .cloned()
                                .unwrap_or_else(|| before_state(op.path()));
                            let (next, fine) = match (op, res) {
                                (MOp::Check { .. }, OpResult::Check) => (cur, true),
                                (MOp::Set { data, .. }, OpResult::SetData(stat)) => {
                                    let v = cur.as_ref().map_or(0, |c| c.0 + 1);
                                    let owner = cur.as_ref().map_or(0, |c| c.2);
                                    (
                                        Some((v, data.clone(), owner)),
                                        stat.version == v && stat.mzxid == z,
                                    )
                                }
                                (MOp::Create { path, data }, OpResult::Create(p)) => {
                                    (Some((0, data.clone(), 0)), p == path)
                                }
                                (MOp::Delete { .. }, OpResult::Delete) => (None, true),
                                _ => (cur, false),
                            };
                            bad |= !fine;
                            st.insert(op.path(), next);
                        }
                        if bad {
                            problems.push(format!("client {client}: multi {ops:?} at {} (err {err}) answered {results:?}; the history says it applies, leaving {after:?}", hex(z)));
                        }
                    }
                    (Err((i, code)), Ok(results)) => {
                        multi = Some(false);
                        // Nothing applied; the failing op names its error, the ones
                        // before it OK, the ones after it RUNTIMEINCONSISTENCY.
                        let mut bad = results.len() != ops.len() && ok;
                        for (k, r) in results.iter().enumerate() {
                            let want = match k.cmp(&i) {
                                std::cmp::Ordering::Less => 0,
                                std::cmp::Ordering::Equal => code.code(),
                                std::cmp::Ordering::Greater => {
                                    ErrorCode::RuntimeInconsistency.code()
                                }
                            };
                            bad |= *r != OpResult::Error(want);
                        }
                        for p in PATHS {
                            bad |= now_state(p) != before_state(p);
                        }
                        if bad {
                            problems.push(format!("client {client}: multi {ops:?} at {} (err {err}) answered {results:?}; the history says op {i} fails with {code:?} and nothing changes", hex(z)));
                        }
                    }
                }
            }
            (Op::Get { path, watch }, true) => {
                reads += 1;
                let want = vd(&now_state(path));
                if ok {
                    match GetDataResponse::from_bytes(body) {
                        Ok(resp) => {
                            let got = Some((
                                resp.stat.version,
                                resp.data.as_option().cloned().unwrap_or_default(),
                            ));
                            if got != want {
                                problems.push(format!("client {client}: getData {path} at {} returned {got:?}, the history says {want:?}", hex(z)));
                            }
                            seen_version = Some((path.clone(), resp.stat.version));
                            if *watch {
                                arm = Some((path.clone(), z));
                            }
                        }
                        Err(e) => problems.push(format!("client {client}: getData body: {e}")),
                    }
                } else if err == ErrorCode::NoNode.code() {
                    if want.is_some() {
                        problems.push(format!("client {client}: getData {path} at {} said NONODE, the history says {want:?}", hex(z)));
                    }
                } else {
                    problems.push(format!("client {client}: getData {path} failed with {err}"));
                }
            }
            (Op::Exists { path }, true) => {
                reads += 1;
                let want = now_state(path).map(|s| s.0);
                let got = if ok {
                    ExistsResponse::from_bytes(body)
                        .ok()
                        .map(|r| r.stat.version)
                } else {
                    None
                };
                if got != want || !(ok || err == ErrorCode::NoNode.code()) {
                    problems.push(format!("client {client}: exists {path} at {} returned {got:?} (err {err}), the history says {want:?}", hex(z)));
                }
            }
            (Op::Set { path, data, expect }, true) => {
                let before = before_state(path);
                if ok {
                    match SetDataResponse::from_bytes(body) {
                        Ok(resp) => {
                            let after = now_state(path);
                            let v = resp.stat.version;
                            if resp.stat.mzxid != z
                                || vd(&after) != Some((v, data.clone()))
                                || before.as_ref().map(|b| b.0) != Some(v - 1)
                                || (*expect != -1 && *expect != v - 1)
                            {
                                problems.push(format!("client {client}: setData {path} (expect {expect}) acked version {v} at {} (mzxid {}), history before {before:?} after {after:?}", hex(z), hex(resp.stat.mzxid)));
                            }
                            seen_version = Some((path.clone(), v));
                        }
                        Err(e) => problems.push(format!("client {client}: setData body: {e}")),
                    }
                } else if err == ErrorCode::BadVersion.code() {
                    if before.as_ref().is_none_or(|b| b.0 == *expect) {
                        problems.push(format!("client {client}: setData {path} expect {expect} got BADVERSION at {}, history before {before:?}", hex(z)));
                    }
                } else if err == ErrorCode::NoNode.code() {
                    if before.is_some() {
                        problems.push(format!("client {client}: setData {path} got NONODE at {}, history before {before:?}", hex(z)));
                    }
                } else {
                    problems.push(format!("client {client}: setData {path} failed with {err}"));
                }
            }
            (
                Op::Create {
                    path,
                    data,
                    ephemeral,
                },
                true,
            ) => {
                let before = before_state(path);
                let owner = if *ephemeral { session } else { 0 };
                if ok {
                    if before.is_some() || now_state(path) != Some((0, data.clone(), owner)) {
                        problems.push(format!("client {client}: create {path} acked at {} but history before {before:?} after {:?}", hex(z), now_state(path)));
                    }
                } else if err == ErrorCode::NodeExists.code() {
                    if before.is_none() {
                        problems.push(format!("client {client}: create {path} got NODEEXISTS at {} but it did not exist", hex(z)));
                    }
                } else {
                    problems.push(format!("client {client}: create {path} failed with {err}"));
                }
            }
            (Op::Delete { path }, true) => {
                let before = before_state(path);
                let bad = if ok {
                    before.is_none() || now_state(path).is_some()
                } else if err == ErrorCode::NoNode.code() {
                    before.is_some()
                } else {
                    true
                };
                if bad {
                    problems.push(format!(
                        "client {client}: delete {path} err {err} at {}, history before {before:?}",
                        hex(z)
                    ));
                }
            }
        }
        // A watch fires before its client sees the change.
        for (p, w) in armed {
            if let Some(zc) = srv.change_between(&p, w, z) {
                problems.push(format!(
                    "client {client}: saw zxid {} but its watch on {p} (set at {}) has not fired for the change at {}",
                    hex(z),
                    hex(w),
                    hex(zc)
                ));
            }
        }
        let _ = session;
        let srv = self.srv.as_mut().expect("server mode");
        srv.reads_checked += reads;
        match multi {
            Some(true) => srv.multis += 1,
            Some(false) => {
                srv.multis += 1;
                srv.multis_failed += 1;
            }
            None => {}
        }
        let c = &mut srv.clients[client];
        if closed_by_client {
            // The session is over; the connection closes (`client_disconnected`).
            c.session = None;
            c.watches.clear();
            srv.closes_done += 1;
        }
        let c = &mut srv.clients[client];
        if let Some((p, v)) = seen_version {
            c.versions.insert(p, v);
        }
        if let Some((p, w)) = arm {
            c.watches.entry(p).or_insert(w);
        }
        for p in problems {
            self.checker.report(p);
        }
    }

    /// Quiescence: every replica's tree equal.
    pub(super) fn app_quiescence(&self, problems: &mut Vec<String>) {
        let mut digests = BTreeMap::new();
        for (s, n) in &self.nodes {
            if let Some(app) = &n.app {
                digests.insert(*s, (app.tree.last_zxid(), app.tree.digest()));
            }
        }
        let mut vals: Vec<_> = digests.values().collect();
        vals.dedup();
        if vals.len() > 1 {
            problems.push(format!("trees differ at quiescence: {digests:?}"));
        }
        // Every ephemeral left belongs to a session some client still holds: the
        // sessions clients gave up have expired (the quiet phase outlasts any timeout).
        let srv = self.srv.as_ref().expect("server mode");
        let held: Vec<i64> = srv.clients.iter().filter_map(|c| c.session).collect();
        if let Some(app) = self.nodes.values().find_map(|n| n.app.as_ref()) {
            for p in PATHS {
                if let Some((_, _, owner)) = zstate(&app.tree, p) {
                    if owner != 0 && !held.contains(&owner) {
                        problems.push(format!(
                            "{p} is an ephemeral of session 0x{owner:x}, which no client holds any more (closed: {:?})",
                            srv.closed.get(&owner).map(|z| hex(*z))
                        ));
                    }
                }
            }
        }
    }

    pub(super) fn app_multi_summary(&self) -> (u64, u64) {
        self.srv
            .as_ref()
            .map_or((0, 0), |s| (s.multis, s.multis_failed))
    }

    pub(super) fn app_session_summary(&self) -> (u64, u64, u64) {
        self.srv
            .as_ref()
            .map_or((0, 0, 0), |s| (s.expiries, s.ephemerals, s.expired_told))
    }

    pub(super) fn app_close_summary(&self) -> (u64, u64) {
        self.srv
            .as_ref()
            .map_or((0, 0), |s| (s.closes_sent, s.closes_done))
    }

    pub(super) fn app_chunk_summary(&self) -> (u64, u64) {
        self.srv
            .as_ref()
            .map_or((0, 0), |s| (s.released_early, s.reads_behind_chunk))
    }

    pub(super) fn app_summary(&self) -> (u64, u64, u64, u64) {
        self.srv.as_ref().map_or((0, 0, 0, 0), |s| {
            (s.replies, s.reads_checked, s.notifications, s.sessions)
        })
    }
}
