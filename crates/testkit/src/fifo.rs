//! The pipelined per-session order checker.
//!
//! ZooKeeper executes the requests of one session in the order they were sent, even when
//! the client pipelines them (sends many before any reply). This checker drives many
//! sessions at once; each owns a directory of its own (so the result of every request is
//! fully determined by the session's own history) and, round after round, sends a batch
//! of random requests without waiting — creates, deletes, setData, getData / exists /
//! getChildren / getChildren2 with and without watches, getACL, getAllChildrenNumber,
//! sync — then reads everything the server sends back. The expected stream is computed
//! by running the batch serially on a model: every reply (xid order, error code, data,
//! versions, children) and every notification (type, path, and its place before the
//! reply of the write that fired it) must match exactly. Reply zxids must never go
//! backwards. Between rounds a session may move to another server of the ensemble
//! (resume with its id, password and last zxid seen, then `setWatches`), as a client does
//! after a connection loss.
//!
//! A round that differs is counted as wrong, its first difference is recorded, and the
//! session starts over in a fresh directory so later rounds are judged on their own.

use crate::raw::{request_frame, RawError, RawSession};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rzk_proto::records::*;
use rzk_proto::{Data, ErrorCode, Jute, OpCode};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Notification types (ZooKeeper's `Watcher.Event.EventType`).
const NODE_CREATED: i32 = 1;
const NODE_DELETED: i32 = 2;
const NODE_DATA_CHANGED: i32 = 3;
const NODE_CHILDREN_CHANGED: i32 = 4;
/// Names of the znodes each session plays with, under its own directory.
const NODE_NAMES: [&str; 3] = ["a", "b", "c"];

/// What to run.
#[derive(Debug, Clone)]
pub struct FifoConfig {
    /// Servers to connect to; session `k` starts on `hosts[k % len]`.
    pub hosts: Vec<SocketAddr>,
    /// Concurrent sessions.
    pub sessions: usize,
    /// Rounds per session.
    pub rounds: usize,
    /// Requests pipelined per round (at most).
    pub batch: usize,
    /// Seed of every random choice (session `k` uses `seed + k`).
    pub seed: u64,
    /// Probability (0..1) that a session moves to another host between rounds; ignored
    /// with one host.
    pub move_probability: f64,
    /// How long to wait for any frame.
    pub io_timeout: Duration,
}

impl Default for FifoConfig {
    fn default() -> Self {
        FifoConfig {
            hosts: Vec::new(),
            sessions: 8,
            rounds: 200,
            batch: 12,
            seed: 1,
            move_probability: 0.0,
            io_timeout: Duration::from_secs(15),
        }
    }
}

/// What happened.
#[derive(Debug, Default, Clone)]
pub struct FifoReport {
    pub rounds: u64,
    pub wrong: u64,
    pub requests: u64,
    pub notifications: u64,
    /// Sessions that moved to another server between rounds.
    pub moves: u64,
    /// The first differences found (at most a few per session).
    pub differences: Vec<String>,
}

impl fmt::Display for FifoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rounds={} wrong={} requests={} notifications={} moves={}",
            self.rounds, self.wrong, self.requests, self.notifications, self.moves
        )
    }
}

/// Errors that stop the run (not order differences, which are counted).
#[derive(Debug, thiserror::Error)]
pub enum FifoError {
    #[error("no hosts given")]
    NoHosts,
    #[error("session {session}: {source}")]
    Io { session: usize, source: RawError },
    #[error("session {session}: setting up {path} failed with error {code}")]
    Setup {
        session: usize,
        path: String,
        code: i32,
    },
    #[error("session {session}: no server took the session back after {tries} tries")]
    NoServer { session: usize, tries: usize },
}

/// Runs the checker and returns the totals of every session.
pub async fn run(cfg: &FifoConfig) -> Result<FifoReport, FifoError> {
    if cfg.hosts.is_empty() {
        return Err(FifoError::NoHosts);
    }
    let tag = format!("{:x}", rand::random::<u32>());
    let mut tasks = Vec::new();
    for k in 0..cfg.sessions {
        let cfg = cfg.clone();
        let tag = tag.clone();
        tasks.push(tokio::spawn(
            async move { session_task(&cfg, &tag, k).await },
        ));
    }
    let mut total = FifoReport::default();
    let mut first_err = None;
    for t in tasks {
        match t.await {
            Ok(Ok(r)) => {
                total.rounds += r.rounds;
                total.wrong += r.wrong;
                total.requests += r.requests;
                total.notifications += r.notifications;
                total.moves += r.moves;
                total.differences.extend(r.differences);
            }
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(e) => panic!("session task panicked: {e}"),
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

/// One request of a round.
#[derive(Debug, Clone)]
enum Op {
    Create(usize, Vec<u8>),
    Delete(usize),
    SetData(usize, Vec<u8>),
    GetData(usize, bool),
    Exists(usize, bool),
    GetChildren(bool),
    GetChildren2(bool),
    GetAcl(usize),
    AllChildrenNumber,
    Sync,
}

/// A frame the server must send, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Frame {
    Event { event_type: i32, path: String },
    Reply { xid: i32, err: i32, body: Body },
}

/// The part of a reply body that the session's own history determines.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Body {
    None,
    Path(String),
    Data(Vec<u8>, i32),
    Version(i32),
    Children(Vec<String>),
    Children2(Vec<String>, i32),
    Acl(usize, i32),
    Count(i32),
}

/// The session's view of its own directory, and its one-shot watches.
#[derive(Debug, Default)]
struct Model {
    dir: String,
    /// name -> (data, version)
    nodes: BTreeMap<String, (Vec<u8>, i32)>,
    /// Paths with a data/exist watch of this session.
    data_watches: BTreeSet<String>,
    /// Paths with a child watch of this session.
    child_watches: BTreeSet<String>,
}

impl Model {
    fn path(&self, i: usize) -> String {
        format!("{}/{}", self.dir, NODE_NAMES[i])
    }

    fn fire(&mut self, out: &mut Vec<Frame>, path: &str, event_type: i32, child: bool) {
        let set = if child {
            &mut self.child_watches
        } else {
            &mut self.data_watches
        };
        if set.remove(path) {
            out.push(Frame::Event {
                event_type,
                path: path.to_string(),
            });
        }
    }

    /// Runs one request serially: the frames it produces, its notifications first.
    fn step(&mut self, xid: i32, op: &Op, out: &mut Vec<Frame>) {
        let ok = |body| Frame::Reply { xid, err: 0, body };
        let err = |code: ErrorCode| Frame::Reply {
            xid,
            err: code.code(),
            body: Body::None,
        };
        let dir = self.dir.clone();
        match op {
            Op::Create(i, data) => {
                let name = NODE_NAMES[*i].to_string();
                if let std::collections::btree_map::Entry::Vacant(e) = self.nodes.entry(name) {
                    e.insert((data.clone(), 0));
                    let p = self.path(*i);
                    self.fire(out, &p, NODE_CREATED, false);
                    self.fire(out, &dir, NODE_CHILDREN_CHANGED, true);
                    out.push(ok(Body::Path(p)));
                } else {
                    out.push(err(ErrorCode::NodeExists));
                }
            }
            Op::Delete(i) => {
                if self.nodes.remove(NODE_NAMES[*i]).is_none() {
                    out.push(err(ErrorCode::NoNode));
                } else {
                    let p = self.path(*i);
                    self.fire(out, &p, NODE_DELETED, false);
                    self.fire(out, &dir, NODE_CHILDREN_CHANGED, true);
                    out.push(ok(Body::None));
                }
            }
            Op::SetData(i, data) => match self.nodes.get_mut(NODE_NAMES[*i]) {
                None => out.push(err(ErrorCode::NoNode)),
                Some(n) => {
                    n.0 = data.clone();
                    n.1 += 1;
                    let v = n.1;
                    let p = self.path(*i);
                    self.fire(out, &p, NODE_DATA_CHANGED, false);
                    out.push(ok(Body::Version(v)));
                }
            },
            Op::GetData(i, watch) => match self.nodes.get(NODE_NAMES[*i]) {
                None => out.push(err(ErrorCode::NoNode)),
                Some((d, v)) => {
                    out.push(ok(Body::Data(d.clone(), *v)));
                    if *watch {
                        self.data_watches.insert(self.path(*i));
                    }
                }
            },
            Op::Exists(i, watch) => {
                match self.nodes.get(NODE_NAMES[*i]) {
                    None => out.push(err(ErrorCode::NoNode)),
                    Some((_, v)) => out.push(ok(Body::Version(*v))),
                }
                if *watch {
                    self.data_watches.insert(self.path(*i));
                }
            }
            Op::GetChildren(watch) | Op::GetChildren2(watch) => {
                let names: Vec<String> = self.nodes.keys().cloned().collect();
                let n = names.len() as i32;
                out.push(ok(match op {
                    Op::GetChildren(_) => Body::Children(names),
                    _ => Body::Children2(names, n),
                }));
                if *watch {
                    self.child_watches.insert(dir);
                }
            }
            Op::GetAcl(i) => match self.nodes.get(NODE_NAMES[*i]) {
                None => out.push(err(ErrorCode::NoNode)),
                Some((_, v)) => out.push(ok(Body::Acl(1, *v))),
            },
            Op::AllChildrenNumber => out.push(ok(Body::Count(self.nodes.len() as i32))),
            Op::Sync => out.push(ok(Body::Path(dir))),
        }
    }
}

fn random_op(rng: &mut StdRng, round: usize, k: usize) -> Op {
    let i = rng.gen_range(0..NODE_NAMES.len());
    let data = format!("s{k}r{round}v{}", rng.gen_range(0..1000)).into_bytes();
    match rng.gen_range(0..100) {
        0..=13 => Op::Create(i, data),
        14..=21 => Op::Delete(i),
        22..=41 => Op::SetData(i, data),
        42..=59 => Op::GetData(i, rng.gen_bool(0.6)),
        60..=71 => Op::Exists(i, rng.gen_bool(0.6)),
        72..=79 => Op::GetChildren(rng.gen_bool(0.6)),
        80..=85 => Op::GetChildren2(rng.gen_bool(0.5)),
        86..=90 => Op::GetAcl(i),
        91..=95 => Op::AllChildrenNumber,
        _ => Op::Sync,
    }
}

fn encode(model: &Model, xid: i32, op: &Op, out: &mut Vec<u8>) {
    let open_acl = vec![Acl {
        perms: 31,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }];
    match op {
        Op::Create(i, d) => request_frame(
            out,
            xid,
            OpCode::Create.code(),
            &CreateRequest {
                path: model.path(*i),
                data: Data::from(d.clone()),
                acl: open_acl,
                flags: 0,
            },
        ),
        Op::Delete(i) => request_frame(
            out,
            xid,
            OpCode::Delete.code(),
            &DeleteRequest {
                path: model.path(*i),
                version: -1,
            },
        ),
        Op::SetData(i, d) => request_frame(
            out,
            xid,
            OpCode::SetData.code(),
            &SetDataRequest {
                path: model.path(*i),
                data: Data::from(d.clone()),
                version: -1,
            },
        ),
        Op::GetData(i, w) => request_frame(
            out,
            xid,
            OpCode::GetData.code(),
            &GetDataRequest {
                path: model.path(*i),
                watch: *w,
            },
        ),
        Op::Exists(i, w) => request_frame(
            out,
            xid,
            OpCode::Exists.code(),
            &ExistsRequest {
                path: model.path(*i),
                watch: *w,
            },
        ),
        Op::GetChildren(w) => request_frame(
            out,
            xid,
            OpCode::GetChildren.code(),
            &GetChildrenRequest {
                path: model.dir.clone(),
                watch: *w,
            },
        ),
        Op::GetChildren2(w) => request_frame(
            out,
            xid,
            OpCode::GetChildren2.code(),
            &GetChildren2Request {
                path: model.dir.clone(),
                watch: *w,
            },
        ),
        Op::GetAcl(i) => request_frame(
            out,
            xid,
            OpCode::GetAcl.code(),
            &GetAclRequest {
                path: model.path(*i),
            },
        ),
        Op::AllChildrenNumber => request_frame(
            out,
            xid,
            OpCode::GetAllChildrenNumber.code(),
            &GetAllChildrenNumberRequest {
                path: model.dir.clone(),
            },
        ),
        Op::Sync => request_frame(
            out,
            xid,
            OpCode::Sync.code(),
            &SyncRequest {
                path: model.dir.clone(),
            },
        ),
    }
}

/// Decodes what the server sent into the comparable form, given the request it answers.
fn decode(op: &Op, hdr: &ReplyHeader, body: &[u8]) -> Result<Frame, String> {
    if hdr.xid == -1 {
        let ev = WatcherEvent::from_bytes(body).map_err(|e| format!("bad notification: {e}"))?;
        return Ok(Frame::Event {
            event_type: ev.event_type,
            path: ev.path,
        });
    }
    let bad = |e: rzk_proto::DecodeError| format!("bad reply body for {op:?}: {e}");
    let body = if hdr.err != 0 {
        Body::None
    } else {
        match op {
            Op::Create(..) => Body::Path(CreateResponse::from_bytes(body).map_err(bad)?.path),
            Op::Delete(_) => Body::None,
            Op::SetData(..) => {
                Body::Version(SetDataResponse::from_bytes(body).map_err(bad)?.stat.version)
            }
            Op::GetData(..) => {
                let r = GetDataResponse::from_bytes(body).map_err(bad)?;
                Body::Data(r.data.to_vec(), r.stat.version)
            }
            Op::Exists(..) => {
                Body::Version(ExistsResponse::from_bytes(body).map_err(bad)?.stat.version)
            }
            Op::GetChildren(_) => {
                let mut c = GetChildrenResponse::from_bytes(body).map_err(bad)?.children;
                c.sort();
                Body::Children(c)
            }
            Op::GetChildren2(_) => {
                let r = GetChildren2Response::from_bytes(body).map_err(bad)?;
                let mut c = r.children;
                c.sort();
                Body::Children2(c, r.stat.num_children)
            }
            Op::GetAcl(_) => {
                let r = GetAclResponse::from_bytes(body).map_err(bad)?;
                Body::Acl(r.acl.len(), r.stat.version)
            }
            Op::AllChildrenNumber => Body::Count(
                GetAllChildrenNumberResponse::from_bytes(body)
                    .map_err(bad)?
                    .total_number,
            ),
            Op::Sync => Body::Path(SyncResponse::from_bytes(body).map_err(bad)?.path),
        }
    };
    Ok(Frame::Reply {
        xid: hdr.xid,
        err: hdr.err,
        body,
    })
}

struct SessionRun<'a> {
    cfg: &'a FifoConfig,
    k: usize,
    tag: &'a str,
    host: usize,
    conn: RawSession,
    /// Highest zxid seen in a reply header (ZooKeeper's `lastZxidSeen`).
    last_zxid: i64,
    next_xid: i32,
    generation: usize,
    model: Model,
    report: FifoReport,
}

async fn session_task(cfg: &FifoConfig, tag: &str, k: usize) -> Result<FifoReport, FifoError> {
    let io = |source| FifoError::Io { session: k, source };
    let host = k % cfg.hosts.len();
    // A server that has just started may close connections until it serves (Apache
    // ZooKeeper answers `ruok` before that): retry a little.
    let mut tries = 0;
    let conn = loop {
        match RawSession::connect(cfg.hosts[host], 30_000, None, cfg.io_timeout).await {
            Ok(c) => break c,
            Err(RawError::Closed { .. }) if tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(io(e)),
        }
    };
    let mut s = SessionRun {
        cfg,
        k,
        tag,
        host,
        conn,
        last_zxid: 0,
        next_xid: 1,
        generation: 0,
        model: Model::default(),
        report: FifoReport::default(),
    };
    s.fresh_dir().await?;
    let mut rng = StdRng::seed_from_u64(cfg.seed.wrapping_add(k as u64));
    for round in 0..cfg.rounds {
        if cfg.hosts.len() > 1 && rng.gen_bool(cfg.move_probability.clamp(0.0, 1.0)) {
            s.move_session(&mut rng).await?;
        }
        let n = rng.gen_range(1..=cfg.batch.max(1));
        let ops: Vec<Op> = (0..n).map(|_| random_op(&mut rng, round, k)).collect();
        s.round(round, &ops).await?;
    }
    let SessionRun { conn, report, .. } = s;
    conn.close().await;
    Ok(report)
}

impl SessionRun<'_> {
    fn io(&self, source: RawError) -> FifoError {
        FifoError::Io {
            session: self.k,
            source,
        }
    }

    /// Sends one request and waits for its reply (set-up only; no watches pending).
    async fn call(&mut self, op: i32, body: &impl Jute) -> Result<ReplyHeader, FifoError> {
        let xid = self.next_xid;
        self.next_xid += 1;
        let mut f = Vec::new();
        request_frame(&mut f, xid, op, body);
        self.conn.send(&f).await.map_err(|e| self.io(e))?;
        loop {
            let (h, _) = self.conn.read_reply().await.map_err(|e| self.io(e))?;
            if h.xid == xid {
                self.last_zxid = self.last_zxid.max(h.zxid);
                return Ok(h);
            }
        }
    }

    /// Starts the session over in a new, empty directory with no watches.
    async fn fresh_dir(&mut self) -> Result<(), FifoError> {
        let root = format!("/fifo-{}", self.tag);
        let dir = format!("{root}/s{}-{}", self.k, self.generation);
        self.generation += 1;
        for path in [root, dir.clone()] {
            let h = self
                .call(
                    OpCode::Create.code(),
                    &CreateRequest {
                        path: path.clone(),
                        data: Data::NULL,
                        acl: vec![Acl {
                            perms: 31,
                            id: Id {
                                scheme: "world".into(),
                                id: "anyone".into(),
                            },
                        }],
                        flags: 0,
                    },
                )
                .await?;
            if h.err != 0 && h.err != ErrorCode::NodeExists.code() {
                return Err(FifoError::Setup {
                    session: self.k,
                    path,
                    code: h.err,
                });
            }
        }
        self.model = Model {
            dir,
            ..Model::default()
        };
        Ok(())
    }

    /// Pipelines `ops`, reads every frame until the last reply, compares.
    async fn round(&mut self, round: usize, ops: &[Op]) -> Result<(), FifoError> {
        let first_xid = self.next_xid;
        self.next_xid += ops.len() as i32;
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            encode(&self.model, first_xid + i as i32, op, &mut bytes);
        }
        for (i, op) in ops.iter().enumerate() {
            self.model.step(first_xid + i as i32, op, &mut expected);
        }
        self.conn.send(&bytes).await.map_err(|e| self.io(e))?;
        let mut got = Vec::new();
        let mut problem = None;
        let mut replies = 0;
        while replies < ops.len() {
            let (h, body) = self.conn.read_reply().await.map_err(|e| self.io(e))?;
            if h.xid == -1 {
                self.report.notifications += 1;
            } else {
                if h.zxid < self.last_zxid && problem.is_none() {
                    problem = Some(format!(
                        "reply to xid {} carries zxid 0x{:x}, below 0x{:x} seen before",
                        h.xid, h.zxid, self.last_zxid
                    ));
                }
                self.last_zxid = self.last_zxid.max(h.zxid);
                replies += 1;
            }
            // Notifications decode without their request; a reply to an xid we did not
            // send is read as the last request's (and then differs from the expected).
            let op = usize::try_from(h.xid - first_xid)
                .ok()
                .and_then(|i| ops.get(i))
                .unwrap_or(&ops[ops.len() - 1]);
            match decode(op, &h, &body) {
                Ok(f) => got.push(f),
                Err(e) => {
                    problem.get_or_insert(e);
                }
            }
        }
        self.report.rounds += 1;
        self.report.requests += ops.len() as u64;
        if problem.is_none() && got != expected {
            let at = got
                .iter()
                .zip(&expected)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(expected.len()));
            problem = Some(format!(
                "frame {at}: got {:?}, expected {:?}",
                got.get(at),
                expected.get(at)
            ));
        }
        if let Some(p) = problem {
            self.report.wrong += 1;
            if self.report.differences.len() < 3 {
                self.report.differences.push(format!(
                    "seed {} session {} round {round} on {}: {p}; requests {:?}",
                    self.cfg.seed.wrapping_add(self.k as u64),
                    self.k,
                    self.conn.addr,
                    ops
                ));
            }
            // Watches and data of the old directory may now differ from the model: drain
            // stray notifications by starting over in a fresh directory.
            self.fresh_dir().await?;
        }
        Ok(())
    }

    /// Resumes the session on another host (as after a connection loss) and re-arms its
    /// watches with `setWatches`, as clients do.
    async fn move_session(&mut self, rng: &mut StdRng) -> Result<(), FifoError> {
        let n = self.cfg.hosts.len();
        let mut tries = 0;
        let resume = (
            self.conn.session_id,
            self.conn.passwd.clone(),
            self.last_zxid,
        );
        let timeout = self.conn.timeout_ms;
        loop {
            tries += 1;
            if tries > 50 {
                return Err(FifoError::NoServer {
                    session: self.k,
                    tries,
                });
            }
            let host = (self.host + rng.gen_range(1..n)) % n;
            match RawSession::connect(
                self.cfg.hosts[host],
                timeout,
                Some(resume.clone()),
                self.cfg.io_timeout,
            )
            .await
            {
                Ok(c) => {
                    // The old connection is closed by the server; drop ours.
                    self.conn = c;
                    self.host = host;
                    break;
                }
                // Behind our last zxid or not serving: try again shortly.
                Err(RawError::Closed { .. }) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(self.io(e)),
            }
        }
        self.report.moves += 1;
        let m = &self.model;
        let exists = |p: &String| m.nodes.keys().any(|name| format!("{}/{name}", m.dir) == *p);
        let sw = SetWatches {
            relative_zxid: self.last_zxid,
            data_watches: m
                .data_watches
                .iter()
                .filter(|p| exists(p))
                .cloned()
                .collect(),
            exist_watches: m
                .data_watches
                .iter()
                .filter(|p| !exists(p))
                .cloned()
                .collect(),
            child_watches: m.child_watches.iter().cloned().collect(),
        };
        if sw.data_watches.is_empty() && sw.exist_watches.is_empty() && sw.child_watches.is_empty()
        {
            return Ok(());
        }
        let mut f = Vec::new();
        request_frame(&mut f, -8, OpCode::SetWatches.code(), &sw);
        self.conn.send(&f).await.map_err(|e| self.io(e))?;
        let (h, body) = self.conn.read_reply().await.map_err(|e| self.io(e))?;
        if h.xid != -8 || h.err != 0 {
            self.report.wrong += 1;
            self.report.differences.push(format!(
                "session {}: setWatches after moving to {} answered xid {} err {} ({} body bytes) instead of its OK reply",
                self.k, self.conn.addr, h.xid, h.err, body.len()
            ));
            self.fresh_dir().await?;
        }
        Ok(())
    }
}
