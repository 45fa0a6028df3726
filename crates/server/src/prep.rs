//! The leader's request -> txn step (ZooKeeper's PrepRequestProcessor): validation, ACL
//! checks, versions, sequence numbers, and an overlay of outstanding changes (prepared,
//! not yet applied) so that many writes can be in flight before they reach the tree.
//!
//! Must never modify the tree, do IO or read clocks (zxid and time are given). Session
//! validity (SESSIONEXPIRED / SESSIONMOVED / local sessions) is the caller's: it turns
//! those into `Prep::error_record` before calling `prepare`.

use crate::auth::{self, AuthInfo};
use crate::tree::digest::{node_digest, DIGEST_VERSION};
use crate::tree::ephemeral::{self, OwnerKind};
use crate::tree::{is_reserved, DataTree};
use rzk_proto::multi::{MultiOp, MultiRequest};
use rzk_proto::opcode::{perms, CreateMode};
use rzk_proto::records::{
    Acl, CreateRequest, CreateTtlRequest, DeleteRequest, SetAclRequest, SetDataRequest,
    StatPersisted,
};
use rzk_proto::txn::*;
use rzk_proto::{Data, ErrorCode, OpCode, SessionId, Zxid};
use smallvec::SmallVec;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Writes refused with QUOTAEXCEEDED by top-level namespace, process-wide like the
/// metrics registry (ZooKeeper's `quota_exceeded_error_per_namespace` counter set).
static QUOTA_EXCEEDED: std::sync::Mutex<std::collections::BTreeMap<String, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// The QUOTAEXCEEDED answers so far by namespace (`app` of `/app/x`), for `mntr`.
pub fn quota_exceeded_counts() -> std::collections::BTreeMap<String, u64> {
    QUOTA_EXCEEDED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// A write request, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteRequest {
    /// `op` is 1 (create), 15 (create2) or 19 (createContainer).
    Create {
        op: i32,
        req: CreateRequest,
    },
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    SetAcl(SetAclRequest),
    Multi(MultiRequest),
    CreateSession {
        timeout_ms: i32,
    },
    /// Prep fills in the ephemerals to delete.
    CloseSession,
    /// Issued by the container/TTL reaper (session 0).
    DeleteContainer(String),
}

impl WriteRequest {
    /// The request opcode.
    pub fn op_code(&self) -> i32 {
        match self {
            WriteRequest::Create { op, .. } => *op,
            WriteRequest::CreateTtl(_) => OpCode::CreateTtl.code(),
            WriteRequest::Delete(_) => OpCode::Delete.code(),
            WriteRequest::SetData(_) => OpCode::SetData.code(),
            WriteRequest::SetAcl(_) => OpCode::SetAcl.code(),
            WriteRequest::Multi(_) => OpCode::Multi.code(),
            WriteRequest::CreateSession { .. } => OpCode::CreateSession.code(),
            WriteRequest::CloseSession => OpCode::CloseSession.code(),
            WriteRequest::DeleteContainer(_) => OpCode::DeleteContainer.code(),
        }
    }
}

/// A node as it will be once all outstanding txns are applied.
#[derive(Debug, Clone)]
struct PNode {
    data: Data,
    acl: Arc<Vec<Acl>>,
    stat: StatPersisted,
    child_count: i32,
    digest: i64,
}

impl PNode {
    fn redigest(&mut self, path: &str) {
        self.digest = node_digest(path, &self.data, &self.stat);
    }
}

/// The latest outstanding change of one path (`None`: deleted).
#[derive(Debug, Clone)]
struct Pending {
    zxid: Zxid,
    node: Option<PNode>,
}

/// One outstanding txn.
#[derive(Debug)]
struct InFlight {
    zxid: Zxid,
    digest_delta: i64,
    /// The paths it changed; one path's text is shared with its overlay key.
    paths: SmallVec<[Arc<str>; 2]>,
}

/// Changes made while preparing one txn (undone if it fails).
#[derive(Debug, Default)]
struct Scratch {
    undo: SmallVec<[(Arc<str>, Option<Pending>); 2]>,
    delta: i64,
    /// Bytes the `auth` ids added to the request's ACLs ([`auth::fix_acl`]): the one way
    /// a txn outgrows its request by more than a few bytes an op.
    acl_growth: usize,
}

/// Bytes of an ACL list as jute writes it (count, then perms, scheme, id each).
fn acl_bytes(acl: &[Acl]) -> usize {
    4 + acl
        .iter()
        .map(|a| 12 + a.id.scheme.len() + a.id.id.len())
        .sum::<usize>()
}

/// Bytes of a log record's payload around the txn body: the header (client id, cxid,
/// zxid, time, type) and the digest (version, value); with room for a quorum packet's
/// own fields, so a proposal fits a follower's read bound too.
const RECORD_FRAME_BYTES: u64 = 32 + 12 + 64;

/// Quota roots and limits whose warnings are rate-limited apart before the quiet ones
/// are forgotten (see `Prep::quota_warned`).
const MAX_QUOTA_WARN_KEYS: usize = 1024;

/// The leader's prep state.
#[derive(Debug)]
pub struct Prep {
    ttl_enabled: bool,
    /// `zookeeper.enforceQuota`: hard quota limits refuse writes (QUOTAEXCEEDED).
    enforce_quota: bool,
    /// Rate limit of the quota warnings, per quota root and limit: txn time of the last
    /// warning, and how many like it were left out since. ZooKeeper's `RateLogger`
    /// holds back only repeats of the same message, so one namespace's warnings never
    /// hide another's.
    quota_warned: HashMap<(String, &'static str, bool), (i64, u64), foldhash::fast::RandomState>,
    overlay: HashMap<Arc<str>, Pending, foldhash::fast::RandomState>,
    in_flight: VecDeque<InFlight>,
    pending_delta: i64,
    /// Test-only injected bug (the simulator's): a failing multi does not roll back
    /// the overlay changes of its earlier ops. Never set by the server.
    fault_multi_no_rollback: bool,
    /// The largest closeSession body that lists its ephemerals' paths
    /// (`jute.maxbuffer`); a longer list is logged as an empty one (see
    /// [`Prep::prep_close_session`]).
    max_close_paths_bytes: usize,
    /// The longest log record any member reads back
    /// ([`crate::storage::log_reader::max_record_len`] of `jute.maxbuffer`): a txn
    /// longer than that would stop every member from restarting.
    max_record_len: u64,
}

fn header(session: SessionId, cxid: i32, zxid: Zxid, time: i64, txn: &Txn) -> TxnHeader {
    TxnHeader {
        client_id: session.0,
        cxid,
        zxid: zxid.0,
        time,
        txn_type: txn.txn_type(),
    }
}

/// Parent key of a path (`/` for top-level nodes); `None` without a `/`.
fn parent_of(path: &str) -> Option<&str> {
    match crate::tree::last_slash(path)? {
        0 => Some("/"),
        i => Some(&path[..i]),
    }
}

fn check_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

fn valid_path(path: &str) -> Result<(), ErrorCode> {
    rzk_proto::path::validate(path, false).map_err(|_| ErrorCode::BadArguments)
}

/// ZooKeeper's getParentPathAndValidate (delete / deleteContainer).
fn parent_for_delete(path: &str) -> Result<&str, ErrorCode> {
    if path.contains('\0') || is_reserved(path) {
        return Err(ErrorCode::BadArguments);
    }
    parent_of(path).ok_or(ErrorCode::BadArguments)
}

impl Prep {
    pub fn new(ttl_enabled: bool) -> Prep {
        Prep {
            ttl_enabled,
            enforce_quota: false,
            quota_warned: HashMap::default(),
            overlay: HashMap::default(),
            in_flight: VecDeque::new(),
            pending_delta: 0,
            fault_multi_no_rollback: false,
            max_close_paths_bytes: crate::config::DEFAULT_JUTE_MAX_BUFFER,
            max_record_len: crate::storage::log_reader::max_record_len(
                crate::config::DEFAULT_JUTE_MAX_BUFFER,
            ),
        }
    }

    /// Sets the largest closeSession body that lists its paths, and the largest txn
    /// ([`crate::storage::log_reader::max_record_len`]), from `jute.maxbuffer`.
    pub fn with_max_close_paths_bytes(mut self, max: usize) -> Prep {
        self.max_close_paths_bytes = max;
        self.max_record_len = crate::storage::log_reader::max_record_len(max);
        self
    }

    /// Test-only switch (the simulator's injected bug): a failing multi keeps its
    /// earlier ops' changes in the overlay, so later writes are prepared against
    /// changes that never happen. Never set by the server.
    pub fn set_fault_multi_no_rollback(&mut self, on: bool) {
        self.fault_multi_no_rollback = on;
    }

    /// The prep of a server with this configuration: TTL nodes with
    /// `extendedTypesEnabled`, hard quota limits with `zookeeper.enforceQuota=true`
    /// (ZooKeeper's `ZooKeeperServer.ENFORCE_QUOTA`; zoo.cfg may drop the prefix).
    pub fn for_config(cfg: &crate::config::Config) -> Prep {
        let enforce = ["enforceQuota", "zookeeper.enforceQuota"]
            .iter()
            .find_map(|k| cfg.unknown.get(*k))
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        // Said once per process: a prep is made again for each term.
        static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if enforce && !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::info!("zookeeper.enforceQuota = true: hard quota limits are enforced");
        }
        Prep::new(cfg.extended_types_enabled)
            .with_enforce_quota(enforce)
            .with_max_close_paths_bytes(cfg.jute_max_buffer)
    }

    /// Sets whether hard quota limits refuse writes.
    pub fn with_enforce_quota(mut self, on: bool) -> Prep {
        self.enforce_quota = on;
        self
    }

    /// The quota check of a create (`old_len == None`) or setData, against the committed
    /// tree as ZooKeeper checks it: every crossed limit is logged at WARN (at most once
    /// a second of txn time, with the count of those left out); a crossed hard limit
    /// refuses the write with QUOTAEXCEEDED when `enforceQuota` is on, and a limits or
    /// stats node that does not parse refuses it with MARSHALLINGERROR then.
    fn check_quota(
        &mut self,
        c: &Ctx<'_>,
        path: &str,
        old_len: Option<usize>,
        new_len: usize,
    ) -> Result<(), ErrorCode> {
        let crossed = match c.tree.check_quota(path, old_len, new_len) {
            Ok(crossed) => crossed,
            // ZooKeeper's prep reads these nodes only when it enforces quotas, and a
            // parse error there fails the write (MARSHALLINGERROR); rzk does not stop
            // warning-only writes for them.
            Err(e) if self.enforce_quota => {
                tracing::error!(path, quota_node = %e.path, "cannot read quota node: {}", e.why);
                return Err(ErrorCode::MarshallingError);
            }
            Err(_) => return Ok(()),
        };
        let mut refused = false;
        for e in &crossed {
            let now = c.time;
            if self.quota_warned.len() >= MAX_QUOTA_WARN_KEYS {
                // Many quota roots over their limits at once: forget those quiet for a
                // second (their next crossing is logged at once, as after a second).
                self.quota_warned
                    .retain(|_, (t, _)| now.saturating_sub(*t) < 1000);
            }
            let key = (e.root.clone(), e.what, e.hard);
            match self.quota_warned.get_mut(&key) {
                Some((t, dropped)) if now.saturating_sub(*t) < 1000 => *dropped += 1,
                _ => {
                    let dropped = self
                        .quota_warned
                        .insert(key, (now, 0))
                        .map_or(0, |(_, d)| d);
                    tracing::warn!(
                        path,
                        enforced = e.hard && self.enforce_quota,
                        "{e}{}",
                        if dropped > 0 {
                            format!(" ({dropped} like it left out)")
                        } else {
                            String::new()
                        }
                    );
                }
            }
            refused |= e.hard && self.enforce_quota;
        }
        if refused {
            if let Some(ns) = path.strip_prefix('/').and_then(|p| p.split('/').next()) {
                let mut m = QUOTA_EXCEEDED
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                *m.entry(ns.to_owned()).or_default() += 1;
            }
            Err(ErrorCode::QuotaExceeded)
        } else {
            Ok(())
        }
    }

    /// Number of outstanding (prepared, not applied) txns that change something.
    pub fn outstanding(&self) -> usize {
        self.in_flight.len()
    }

    /// Forgets every outstanding change (e.g. after losing leadership).
    pub fn reset(&mut self) {
        self.overlay.clear();
        self.in_flight.clear();
        self.pending_delta = 0;
    }

    /// Drops overlay entries with zxid <= `zxid` (they are in the tree now). Optional:
    /// `prepare` also prunes by `tree.last_zxid()`.
    pub fn applied(&mut self, zxid: Zxid) {
        while self.in_flight.front().is_some_and(|t| t.zxid <= zxid) {
            let Some(t) = self.in_flight.pop_front() else {
                break;
            };
            self.pending_delta = self.pending_delta.wrapping_sub(t.digest_delta);
            for p in t.paths {
                // One hash of the path: the entry is found once, removed if no later
                // txn changed it again.
                if let Entry::Occupied(e) = self.overlay.entry(p) {
                    if e.get().zxid <= zxid {
                        e.remove();
                    }
                }
            }
        }
    }

    /// An error txn for a request rejected outside prep (SESSIONEXPIRED,
    /// MARSHALLINGERROR, ...), with no digest.
    pub fn error_txn(
        session: SessionId,
        cxid: i32,
        zxid: Zxid,
        time_ms: i64,
        code: ErrorCode,
    ) -> TxnRecord {
        let txn = Txn::error(code);
        TxnRecord {
            header: header(session, cxid, zxid, time_ms, &txn),
            txn,
            digest: None,
        }
    }

    /// Like [`Prep::error_txn`] but carrying the predicted tree digest, as the leader logs it.
    #[allow(clippy::too_many_arguments)]
    pub fn error_record(
        &mut self,
        tree: &DataTree,
        session: SessionId,
        cxid: i32,
        zxid: Zxid,
        time_ms: i64,
        code: ErrorCode,
    ) -> TxnRecord {
        self.applied(tree.last_zxid());
        let mut r = Self::error_txn(session, cxid, zxid, time_ms, code);
        r.digest = Some(TxnDigest {
            version: DIGEST_VERSION,
            tree_digest: tree.digest().wrapping_add(self.pending_delta),
        });
        r
    }

    /// Turns a request into a txn. Never fails: errors become `ErrorTxn` (a failed multi
    /// stays a multi with error entries, as ZooKeeper logs it). The record must be
    /// proposed: its changes are outstanding in the overlay from now on.
    #[allow(clippy::too_many_arguments)]
    #[must_use = "the prepared changes are outstanding: the record must be proposed"]
    pub fn prepare(
        &mut self,
        tree: &DataTree,
        session: SessionId,
        cxid: i32,
        req: &WriteRequest,
        auth: &AuthInfo,
        zxid: Zxid,
        time_ms: i64,
    ) -> TxnRecord {
        self.applied(tree.last_zxid());
        let mut s = Scratch::default();
        let ctx = Ctx {
            tree,
            session,
            auth,
            zxid,
            time: time_ms,
        };
        let result = match req {
            WriteRequest::Multi(m) => Ok(self.prep_multi(&ctx, m, &mut s)),
            other => self.prep_one(&ctx, other, &mut s),
        };
        let result = match result {
            Ok(t) if s.acl_growth > 0 => self.fits_a_log_record(t, session, cxid),
            r => r,
        };
        let txn = match result {
            Ok(t) => t,
            Err(code) => {
                self.rollback(&mut s);
                tracing::debug!(%session, cxid, %code, "write rejected");
                Txn::error(code)
            }
        };
        let paths: SmallVec<[Arc<str>; 2]> = s.undo.into_iter().map(|(p, _)| p).collect();
        if !paths.is_empty() || s.delta != 0 {
            self.pending_delta = self.pending_delta.wrapping_add(s.delta);
            self.in_flight.push_back(InFlight {
                zxid,
                digest_delta: s.delta,
                paths,
            });
        }
        TxnRecord {
            header: header(session, cxid, zxid, time_ms, &txn),
            txn,
            digest: Some(TxnDigest {
                version: DIGEST_VERSION,
                tree_digest: tree.digest().wrapping_add(self.pending_delta),
            }),
        }
    }

    /// `txn` if its log record is no longer than every member reads back, else
    /// BADARGUMENTS. Checked only when `auth` ids grew the request's ACLs: `addauth` of
    /// large digest ids (each accepted) and one `create` with the ACL `auth::` made a
    /// record of megabytes from a request of 47 bytes, which ZooKeeper 3.8 logs and then
    /// cannot restart on ("Unreasonable length"; found by a break-it review in session
    /// 56). Refused here, before anything is logged.
    fn fits_a_log_record(&self, txn: Txn, session: SessionId, cxid: i32) -> Result<Txn, ErrorCode> {
        let mut body = Vec::new();
        txn.write_body(&mut body);
        let len = body.len() as u64 + RECORD_FRAME_BYTES;
        if len <= self.max_record_len {
            return Ok(txn);
        }
        tracing::warn!(
            %session,
            cxid,
            bytes = len,
            max = self.max_record_len,
            "write refused with BADARGUMENTS: the `auth` ids of the session grow its ACL past the largest log record a server reads back (jute.maxbuffer plus its extra size)"
        );
        Err(ErrorCode::BadArguments)
    }

    fn rollback(&mut self, s: &mut Scratch) {
        while let Some((path, prev)) = s.undo.pop() {
            match prev {
                Some(p) => self.overlay.insert(path, p),
                None => self.overlay.remove(&*path),
            };
        }
        s.delta = 0;
    }

    /// The node at `path` as it will be after the outstanding txns, or ZooKeeper's error
    /// for a path that names none: BadArguments for an invalid path, else NoNode (its
    /// `validatePath` then `getRecordForPath`). A path that names a node is valid, so
    /// the validation runs only when none is found (it was ~3 % of a setData's
    /// instructions).
    fn existing(&self, tree: &DataTree, path: &str) -> Result<PNode, ErrorCode> {
        match self.record(tree, path) {
            Some(node) => {
                debug_assert!(
                    valid_path(path).is_ok(),
                    "a node at an invalid path {path:?}"
                );
                Ok(node)
            }
            None => {
                valid_path(path)?;
                Err(ErrorCode::NoNode)
            }
        }
    }

    /// The node at `path` as it will be after the outstanding txns.
    fn record(&self, tree: &DataTree, path: &str) -> Option<PNode> {
        if let Some(p) = self.overlay.get(path) {
            return p.node.clone();
        }
        let n = tree.nodes.get(path)?;
        Some(PNode {
            data: n.data_value(),
            acl: tree.acls.get(n.acl()),
            stat: n.stat(),
            child_count: n.num_children() as i32,
            digest: node_digest(path, n.data(), &n.stat()),
        })
    }

    /// The digest `path` contributes now (after the outstanding txns; 0 if absent).
    fn old_digest(&self, tree: &DataTree, path: &str) -> i64 {
        match self.overlay.get(path) {
            Some(p) => p.node.as_ref().map_or(0, |n| n.digest),
            None => tree
                .nodes
                .get(path)
                .map_or(0, |n| node_digest(path, n.data(), &n.stat())),
        }
    }

    fn put(
        &mut self,
        tree: &DataTree,
        s: &mut Scratch,
        zxid: Zxid,
        path: &str,
        node: Option<PNode>,
    ) {
        let old = self.old_digest(tree, path);
        self.put_known(tree, s, zxid, path, node, old);
    }

    /// [`Prep::put`] for a caller that holds the record it replaces: `old` is that
    /// record's digest (0 if there was none), so the node is not looked up and hashed
    /// again.
    fn put_known(
        &mut self,
        tree: &DataTree,
        s: &mut Scratch,
        zxid: Zxid,
        path: &str,
        node: Option<PNode>,
        old: i64,
    ) {
        debug_assert_eq!(old, self.old_digest(tree, path), "stale record of {path}");
        let new = node.as_ref().map_or(0, |n| n.digest);
        s.delta = s.delta.wrapping_add(new.wrapping_sub(old));
        let key: Arc<str> = Arc::from(path);
        let prev = self.overlay.insert(key.clone(), Pending { zxid, node });
        s.undo.push((key, prev));
    }

    fn prep_one(
        &mut self,
        c: &Ctx<'_>,
        req: &WriteRequest,
        s: &mut Scratch,
    ) -> Result<Txn, ErrorCode> {
        match req {
            WriteRequest::Create { op, req } => {
                self.prep_create(c, s, *op, &req.path, &req.data, &req.acl, req.flags, None)
            }
            WriteRequest::CreateTtl(r) => self.prep_create(
                c,
                s,
                OpCode::CreateTtl.code(),
                &r.path,
                &r.data,
                &r.acl,
                r.flags,
                Some(r.ttl),
            ),
            WriteRequest::Delete(r) => self.prep_delete(c, s, &r.path, r.version),
            WriteRequest::SetData(r) => self.prep_set_data(c, s, &r.path, &r.data, r.version),
            WriteRequest::SetAcl(r) => self.prep_set_acl(c, s, &r.path, &r.acl, r.version),
            WriteRequest::CreateSession { timeout_ms } => {
                Ok(Txn::CreateSession(CreateSessionTxn {
                    timeout_ms: *timeout_ms,
                }))
            }
            WriteRequest::CloseSession => Ok(self.prep_close_session(c, s)),
            WriteRequest::DeleteContainer(path) => self.prep_delete_container(c, s, path),
            WriteRequest::Multi(_) => Err(ErrorCode::MarshallingError),
        }
    }

    fn prep_multi(&mut self, c: &Ctx<'_>, m: &MultiRequest, s: &mut Scratch) -> Txn {
        let mut subs = Vec::with_capacity(m.ops.len());
        let mut failed = false;
        for op in &m.ops {
            if failed {
                subs.push(Txn::error(ErrorCode::RuntimeInconsistency));
                continue;
            }
            let r = match op {
                // Inside a multi the node type follows the flags as ZooKeeper 3.9 reads
                // them (ZOOKEEPER-4026; rzk_proto::multi::effective_create_op).
                MultiOp::Create(_, r) => match op.effective_op_code() {
                    Some(t) => self.prep_create(c, s, t, &r.path, &r.data, &r.acl, r.flags, None),
                    None => Err(ErrorCode::MarshallingError), // refused at decode
                },
                MultiOp::CreateTtl(r) => match op.effective_op_code() {
                    Some(t) => {
                        let ttl = (t == OpCode::CreateTtl.code()).then_some(r.ttl);
                        self.prep_create(c, s, t, &r.path, &r.data, &r.acl, r.flags, ttl)
                    }
                    None => Err(ErrorCode::MarshallingError),
                },
                MultiOp::Delete(r) => self.prep_delete(c, s, &r.path, r.version),
                MultiOp::SetData(r) => self.prep_set_data(c, s, &r.path, &r.data, r.version),
                MultiOp::Check(r) => self.prep_check(c, &r.path, r.version),
                MultiOp::GetChildren(_) | MultiOp::GetData(_) => Err(ErrorCode::MarshallingError),
            };
            match r {
                Ok(t) => subs.push(t),
                Err(code) => {
                    failed = true;
                    // Earlier ops of this multi are undone; their bodies stay in the txn.
                    if !self.fault_multi_no_rollback {
                        self.rollback(s);
                    }
                    subs.push(Txn::error(code));
                }
            }
        }
        Txn::Multi(subs)
    }

    #[allow(clippy::too_many_arguments)]
    fn prep_create(
        &mut self,
        c: &Ctx<'_>,
        s: &mut Scratch,
        op: i32,
        path: &str,
        data: &Data,
        acl: &[Acl],
        flags: i32,
        ttl: Option<i64>,
    ) -> Result<Txn, ErrorCode> {
        let mode = CreateMode::from_flags(flags).ok_or(ErrorCode::BadArguments)?;
        if mode.is_ttl() && !self.ttl_enabled {
            return Err(ErrorCode::Unimplemented);
        }
        let ttl_ms = ttl.unwrap_or(-1);
        if mode.is_ttl() {
            if ephemeral::ttl_owner(ttl_ms).is_none() {
                return Err(ErrorCode::BadArguments);
            }
        } else if ttl_ms >= 0 {
            return Err(ErrorCode::BadArguments);
        }
        if path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = parent_of(path).ok_or(ErrorCode::BadArguments)?;
        let requested = acl;
        let acl = auth::fix_acl(acl, c.auth)?;
        s.acl_growth += acl_bytes(&acl).saturating_sub(acl_bytes(requested));
        let parent = self.record(c.tree, parent_path).ok_or(ErrorCode::NoNode)?;
        if !auth::check_perm(&parent.acl, c.auth, perms::CREATE) {
            return Err(ErrorCode::NoAuth);
        }
        let mut path = path.to_owned();
        if mode.is_sequential() {
            path.push_str(&format!("{:010}", parent.stat.cversion));
        }
        valid_path(&path)?;
        if self.record(c.tree, &path).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if matches!(
            ephemeral::kind(parent.stat.ephemeral_owner, self.ttl_enabled),
            OwnerKind::Session(_)
        ) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        self.check_quota(c, &path, None, data.len())?;
        let new_cversion = parent.stat.cversion.wrapping_add(1);
        // The record shares the parent's ACL when it is the same list (usually: the
        // open ACL), so the list is copied once, into the txn, not twice.
        let node_acl = if *parent.acl == acl {
            parent.acl.clone()
        } else {
            Arc::new(acl.clone())
        };
        let (txn, owner) = if op == OpCode::CreateContainer.code() {
            let t = Txn::CreateContainer(CreateContainerTxn {
                path: path.clone(),
                data: data.clone(),
                acl,
                parent_cversion: new_cversion,
            });
            (t, ephemeral::CONTAINER_OWNER)
        } else if mode.is_ttl() {
            let t = Txn::CreateTtl(CreateTtlTxn {
                path: path.clone(),
                data: data.clone(),
                acl,
                parent_cversion: new_cversion,
                ttl: ttl_ms,
            });
            (t, ephemeral::ttl_owner(ttl_ms).unwrap_or(0))
        } else {
            // opcode 21 with a non-TTL mode is logged as a create2.
            let ty = if op == OpCode::CreateTtl.code() {
                OpCode::Create2.code()
            } else {
                op
            };
            let t = Txn::Create(
                ty,
                CreateTxn {
                    path: path.clone(),
                    data: data.clone(),
                    acl,
                    ephemeral: mode.is_ephemeral(),
                    parent_cversion: new_cversion,
                },
            );
            (t, if mode.is_ephemeral() { c.session.0 } else { 0 })
        };
        let mut p = parent;
        let parent_old = p.digest;
        p.child_count += 1;
        p.stat.cversion = new_cversion;
        p.stat.pzxid = c.zxid.0;
        p.redigest(parent_path);
        self.put_known(c.tree, s, c.zxid, parent_path, Some(p), parent_old);
        let mut node = PNode {
            data: data.clone(),
            acl: node_acl,
            stat: StatPersisted {
                czxid: c.zxid.0,
                mzxid: c.zxid.0,
                ctime: c.time,
                mtime: c.time,
                version: 0,
                cversion: 0,
                aversion: 0,
                ephemeral_owner: owner,
                pzxid: c.zxid.0,
            },
            child_count: 0,
            digest: 0,
        };
        node.redigest(&path);
        // No record of `path` (checked above): it contributes nothing yet.
        self.put_known(c.tree, s, c.zxid, &path, Some(node), 0);
        Ok(txn)
    }

    fn prep_delete(
        &mut self,
        c: &Ctx<'_>,
        s: &mut Scratch,
        path: &str,
        version: i32,
    ) -> Result<Txn, ErrorCode> {
        let parent_path = parent_for_delete(path)?;
        let parent = self.record(c.tree, parent_path).ok_or(ErrorCode::NoNode)?;
        if !auth::check_perm(&parent.acl, c.auth, perms::DELETE) {
            return Err(ErrorCode::NoAuth);
        }
        let node = self.record(c.tree, path).ok_or(ErrorCode::NoNode)?;
        check_version(node.stat.version, version)?;
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        self.remove_child(c, s, parent_path, parent);
        self.put_known(c.tree, s, c.zxid, path, None, node.digest);
        Ok(Txn::Delete(DeleteTxn {
            path: path.to_owned(),
        }))
    }

    fn remove_child(&mut self, c: &Ctx<'_>, s: &mut Scratch, parent_path: &str, mut parent: PNode) {
        let old = parent.digest;
        parent.child_count -= 1;
        if c.zxid.0 > parent.stat.pzxid {
            parent.stat.pzxid = c.zxid.0;
        }
        parent.redigest(parent_path);
        self.put_known(c.tree, s, c.zxid, parent_path, Some(parent), old);
    }

    fn prep_delete_container(
        &mut self,
        c: &Ctx<'_>,
        s: &mut Scratch,
        path: &str,
    ) -> Result<Txn, ErrorCode> {
        let parent_path = parent_for_delete(path)?;
        let node = self.record(c.tree, path).ok_or(ErrorCode::NoNode)?;
        if node.child_count > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        if matches!(
            ephemeral::kind(node.stat.ephemeral_owner, self.ttl_enabled),
            OwnerKind::Session(_)
        ) {
            return Err(ErrorCode::BadVersion);
        }
        let parent = self.record(c.tree, parent_path).ok_or(ErrorCode::NoNode)?;
        self.remove_child(c, s, parent_path, parent);
        self.put_known(c.tree, s, c.zxid, path, None, node.digest);
        Ok(Txn::DeleteContainer(DeleteTxn {
            path: path.to_owned(),
        }))
    }

    fn prep_set_data(
        &mut self,
        c: &Ctx<'_>,
        s: &mut Scratch,
        path: &str,
        data: &Data,
        version: i32,
    ) -> Result<Txn, ErrorCode> {
        let mut node = self.existing(c.tree, path)?;
        if !auth::check_perm(&node.acl, c.auth, perms::WRITE) {
            return Err(ErrorCode::NoAuth);
        }
        self.check_quota(c, path, Some(node.data.len()), data.len())?;
        let new_version = check_version(node.stat.version, version)?;
        let old = node.digest;
        node.data = data.clone();
        node.stat.version = new_version;
        node.stat.mtime = c.time;
        node.stat.mzxid = c.zxid.0;
        node.redigest(path);
        self.put_known(c.tree, s, c.zxid, path, Some(node), old);
        Ok(Txn::SetData(SetDataTxn {
            path: path.to_owned(),
            data: data.clone(),
            version: new_version,
        }))
    }

    fn prep_set_acl(
        &mut self,
        c: &Ctx<'_>,
        s: &mut Scratch,
        path: &str,
        acl: &[Acl],
        version: i32,
    ) -> Result<Txn, ErrorCode> {
        valid_path(path)?;
        let requested = acl;
        let acl = auth::fix_acl(acl, c.auth)?;
        s.acl_growth += acl_bytes(&acl).saturating_sub(acl_bytes(requested));
        let mut node = self.record(c.tree, path).ok_or(ErrorCode::NoNode)?;
        if !auth::check_perm(&node.acl, c.auth, perms::ADMIN) {
            return Err(ErrorCode::NoAuth);
        }
        let new_version = check_version(node.stat.aversion, version)?;
        let old = node.digest;
        node.stat.aversion = new_version;
        node.acl = Arc::new(acl.clone());
        node.redigest(path);
        self.put_known(c.tree, s, c.zxid, path, Some(node), old);
        Ok(Txn::SetAcl(SetAclTxn {
            path: path.to_owned(),
            acl,
            version: new_version,
        }))
    }

    fn prep_check(&mut self, c: &Ctx<'_>, path: &str, version: i32) -> Result<Txn, ErrorCode> {
        let node = self.existing(c.tree, path)?;
        if !auth::check_perm(&node.acl, c.auth, perms::READ) {
            return Err(ErrorCode::NoAuth);
        }
        let v = check_version(node.stat.version, version)?;
        Ok(Txn::Check(CheckVersionTxn {
            path: path.to_owned(),
            version: v,
        }))
    }

    fn prep_close_session(&mut self, c: &Ctx<'_>, s: &mut Scratch) -> Txn {
        let mut es: std::collections::BTreeSet<String> =
            c.tree.ephemerals(c.session).into_iter().collect();
        for (path, p) in &self.overlay {
            match &p.node {
                None => {
                    es.remove(&**path);
                }
                Some(n)
                    if n.stat.ephemeral_owner == c.session.0 && c.session != SessionId::NONE =>
                {
                    es.insert(path.to_string());
                }
                Some(_) => {
                    es.remove(&**path);
                }
            }
        }
        for path in &es {
            if let Some(pp) = parent_of(path) {
                if let Some(parent) = self.record(c.tree, pp) {
                    self.remove_child(c, s, pp, parent);
                }
            }
            self.put(c.tree, s, c.zxid, path, None);
        }
        // The body: a count, then each path with its length. A session owning so many
        // ephemerals that the list passes jute.maxbuffer would make a log record that
        // no server reads back (rzk and ZooKeeper refuse records over twice
        // jute.maxbuffer: a closeSession of ~100,000 ephemerals left neither able to
        // restart, seen by a review in session 51). Such a close is logged with an
        // empty list: rzk and ZooKeeper then delete the ephemerals the session owns when
        // it applies (the listed ones, then those left: `killSession`), the same nodes,
        // since txns apply in order. (Not the body-less form of
        // closeSessionTxn.enabled=false: a ZooKeeper follower with it enabled would
        // read the digest after the header as the body.)
        let body_len = 4 + es.iter().map(|p| 4 + p.len()).sum::<usize>();
        if body_len > self.max_close_paths_bytes {
            tracing::info!(
                session = %format_args!("0x{:x}", c.session.0),
                ephemerals = es.len(),
                bytes = body_len,
                "closeSession logged without its ephemerals' paths: the list passes jute.maxbuffer"
            );
            return Txn::CloseSession(Some(CloseSessionTxn {
                paths_to_delete: Vec::new(),
            }));
        }
        Txn::CloseSession(Some(CloseSessionTxn {
            paths_to_delete: es.into_iter().collect(),
        }))
    }
}

/// Per-request inputs.
struct Ctx<'a> {
    tree: &'a DataTree,
    session: SessionId,
    auth: &'a AuthInfo,
    zxid: Zxid,
    time: i64,
}

mod reconfig;

#[cfg(test)]
mod tests;
