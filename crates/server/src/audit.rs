//! The audit log (`audit.enable=true`), as ZooKeeper 3.8's `ZKAuditProvider`,
//! `AuditHelper` and `Slf4jAuditLogger` write it: one line per audited event, fields
//! `session user ip operation znode znode_type acl` (those that apply) and `result`, as
//! `key=value` separated by tabs, at INFO (ERROR for a failure), on the tracing target
//! [`TARGET`] so that an operator can route or filter it (`RZK_LOG=audit=info`, ...).
//!
//! ZooKeeper's events: serverStart / serverStop; create (not createTTL), delete,
//! setData, setAcl and the parts of a multi, on the server the client is connected to;
//! the deletion of each ephemeral of a closed or expired session, on every server.
//! rzk adds `createSession` and `closeSession` (on the client's server; an expiry on the
//! leader, by the server's user) and `addAuth` (the connection's server), in the same
//! format (docs/COMPATIBILITY.md).
//!
//! Owns the formatting and the decision of what is audited. Never blocks or fails a
//! request: it only writes log lines.

use crate::auth::AuthInfo;
use crate::config::Config;
use crate::prep::WriteRequest;
use crate::tree::{ApplyResult, TxnReply};
use rzk_proto::multi::{MultiOp, OpResult};
use rzk_proto::opcode::{event, perms, CreateMode};
use rzk_proto::records::Acl;
use rzk_proto::txn::{Txn, TxnRecord};
use rzk_proto::{ErrorCode, SessionId};
use std::collections::HashMap;
use std::fmt;

/// The tracing target of audit lines.
pub const TARGET: &str = "audit";

/// ZooKeeper's audit operation names (`AuditConstants`), and rzk's additions.
pub mod op {
    pub const SERVER_START: &str = "serverStart";
    pub const SERVER_STOP: &str = "serverStop";
    pub const CREATE: &str = "create";
    pub const DELETE: &str = "delete";
    pub const SET_DATA: &str = "setData";
    pub const SET_ACL: &str = "setAcl";
    pub const RECONFIG: &str = "reconfig";
    pub const MULTI: &str = "multiOperation";
    pub const EPHEMERAL_DELETED: &str = "ephemeralZNodeDeletionOnSessionCloseOrExpire";
    /// rzk's addition.
    pub const CREATE_SESSION: &str = "createSession";
    /// rzk's addition.
    pub const CLOSE_SESSION: &str = "closeSession";
    /// rzk's addition.
    pub const ADD_AUTH: &str = "addAuth";
}

/// How an audited event ended (ZooKeeper's `AuditEvent.Result`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// Logged before the outcome is known (serverStop).
    Invoked,
}

impl Outcome {
    fn of(ok: bool) -> Outcome {
        if ok {
            Outcome::Success
        } else {
            Outcome::Failure
        }
    }
}

/// One audit line (ZooKeeper's `AuditEvent`); absent fields are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub session: Option<SessionId>,
    pub user: Option<String>,
    pub ip: Option<String>,
    pub operation: &'static str,
    pub znode: Option<String>,
    pub znode_type: Option<&'static str>,
    pub acl: Option<String>,
    pub result: Outcome,
}

impl fmt::Display for AuditEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let session = self.session.map(|s| format!("0x{:x}", s.0));
        let fields = [
            ("session", session.as_deref()),
            ("user", self.user.as_deref()),
            ("ip", self.ip.as_deref()),
            ("operation", Some(self.operation)),
            ("znode", self.znode.as_deref()),
            ("znode_type", self.znode_type),
            ("acl", self.acl.as_deref()),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                write!(f, "{k}={v}\t")?;
            }
        }
        let result = match self.result {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Invoked => "invoked",
        };
        write!(f, "result={result}")
    }
}

/// `CreateMode.toString().toLowerCase()` of ZooKeeper.
fn create_mode_name(flags: i32) -> Option<&'static str> {
    Some(match CreateMode::from_flags(flags)? {
        CreateMode::Persistent => "persistent",
        CreateMode::Ephemeral => "ephemeral",
        CreateMode::PersistentSequential => "persistent_sequential",
        CreateMode::EphemeralSequential => "ephemeral_sequential",
        CreateMode::Container => "container",
        CreateMode::PersistentWithTtl => "persistent_with_ttl",
        CreateMode::PersistentSequentialWithTtl => "persistent_sequential_with_ttl",
    })
}

/// ZooKeeper's `ZKUtil.aclToString`: `scheme:id:perms` per entry, concatenated without a
/// separator (as ZooKeeper writes it), perms as `cdrwa`.
pub fn acl_string(acl: &[Acl]) -> String {
    let mut s = String::new();
    for a in acl {
        s.push_str(&a.id.scheme);
        s.push(':');
        s.push_str(&a.id.id);
        s.push(':');
        for (bit, c) in [
            (perms::CREATE, 'c'),
            (perms::DELETE, 'd'),
            (perms::READ, 'r'),
            (perms::WRITE, 'w'),
            (perms::ADMIN, 'a'),
        ] {
            if a.perms & bit != 0 {
                s.push(c);
            }
        }
    }
    s
}

/// ZooKeeper's `AuthUtil.getUsers`: the user name of every id whose scheme has a
/// provider (digest ids lose their hash), comma-separated; `None` when there is none.
pub fn users(auth: &AuthInfo) -> Option<String> {
    let ids = auth.id_list();
    let names: Vec<&str> = ids
        .iter()
        .filter(|i| i.scheme != "super")
        .map(|i| match i.scheme.as_str() {
            "digest" => i.id.split(':').next().unwrap_or_default(),
            _ => i.id.as_str(),
        })
        .filter(|n| !n.trim().is_empty())
        .collect();
    (!names.is_empty()).then(|| names.join(","))
}

/// The client's address as its `ip` id carries it.
fn client_ip(auth: &AuthInfo) -> Option<String> {
    auth.ids().find(|i| i.scheme == "ip").map(|i| i.id.clone())
}

/// The name of the user running the server: ZooKeeper's `Login.SYSTEM_USER` is the JVM's
/// `user.name`, the password database's name for the process's uid, as `envi` reports it
/// ([`crate::admin::data::java_user`]).
fn system_user() -> String {
    crate::admin::data::java_user().0
}

/// Who submitted an applied txn, as the audit log names them.
#[derive(Debug, Clone, Copy)]
pub enum Submitter<'a> {
    /// A client connected to this server, with the request it sent.
    Client {
        auth: &'a AuthInfo,
        request: &'a WriteRequest,
    },
    /// This server itself (session expiry, reaper): on the leader only.
    Server { request: &'a WriteRequest },
    /// A client connected to this server asked for a reconfig (ZooKeeper's
    /// `AuditHelper` logs `reconfig`, with `/zookeeper/config` as the znode when it
    /// succeeded).
    Reconfig { auth: &'a AuthInfo },
    /// Another server's client or write: only the deletions of ephemerals are logged.
    Elsewhere,
}

/// The audit logger of one server.
#[derive(Debug)]
pub struct Audit {
    enabled: bool,
    /// The server's user (ZooKeeper: its SASL login, else the `user.name` of the JVM).
    system_user: String,
}

impl Audit {
    /// `audit.enable` (or `zookeeper.audit.enable`) = true turns it on; ZooKeeper reads
    /// the value as `Boolean.getBoolean` does.
    pub fn from_config(cfg: &Config) -> Audit {
        let enabled = ["audit.enable", "zookeeper.audit.enable"]
            .iter()
            .find_map(|k| cfg.unknown.get(*k))
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let system_user = system_user();
        if enabled {
            tracing::info!("audit logging is enabled (log target `{TARGET}`)");
        }
        Audit {
            enabled,
            system_user,
        }
    }

    /// An audit logger that writes nothing.
    pub fn disabled() -> Audit {
        Audit {
            enabled: false,
            system_user: String::new(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Writes one line (nothing when disabled).
    pub fn log(&self, ev: &AuditEvent) {
        if !self.enabled {
            return;
        }
        if ev.result == Outcome::Failure {
            tracing::error!(target: TARGET, "{ev}");
        } else {
            tracing::info!(target: TARGET, "{ev}");
        }
    }

    fn server_event(&self, operation: &'static str, result: Outcome) {
        self.log(&AuditEvent {
            session: None,
            user: Some(self.system_user.clone()),
            ip: None,
            operation,
            znode: None,
            znode_type: None,
            acl: None,
            result,
        });
    }

    /// `serverStart`, once the server is up.
    pub fn server_started(&self) {
        self.server_event(op::SERVER_START, Outcome::Success);
    }

    /// `serverStop`, as shutdown begins (ZooKeeper: result `invoked`).
    pub fn server_stopping(&self) {
        self.server_event(op::SERVER_STOP, Outcome::Invoked);
    }

    /// An auth packet's (or SASL exchange's) outcome on a client connection (rzk's
    /// `addAuth` line; `auth` is the connection's identity afterwards).
    pub fn auth(&self, session: SessionId, auth: &AuthInfo, ok: bool) {
        if !self.enabled {
            return;
        }
        self.log(&AuditEvent {
            session: Some(session),
            user: users(auth),
            ip: client_ip(auth),
            operation: op::ADD_AUTH,
            znode: None,
            znode_type: None,
            acl: None,
            result: Outcome::of(ok),
        });
    }

    /// The lines for one applied txn, in ZooKeeper's order (ephemeral deletions first).
    pub fn applied(&self, who: Submitter<'_>, rec: &TxnRecord, result: &ApplyResult) {
        if !self.enabled {
            return;
        }
        for ev in self.events(who, rec, result) {
            self.log(&ev);
        }
    }

    /// What [`Audit::applied`] writes.
    pub fn events(
        &self,
        who: Submitter<'_>,
        rec: &TxnRecord,
        result: &ApplyResult,
    ) -> Vec<AuditEvent> {
        let session = SessionId(rec.header.client_id);
        let mut out = Vec::new();
        if let Txn::CloseSession(body) = &rec.txn {
            let deleted: Vec<&str> = result
                .changes
                .iter()
                .filter(|c| c.event_type == event::NODE_DELETED)
                .map(|c| c.path.as_str())
                .collect();
            let listed = body.as_ref().map(|b| b.paths_to_delete.as_slice());
            let mut paths: Vec<&str> = listed
                .unwrap_or_default()
                .iter()
                .map(String::as_str)
                .collect();
            let extra: Vec<&str> = deleted
                .iter()
                .filter(|d| !paths.contains(d))
                .copied()
                .collect();
            paths.extend(extra);
            for p in paths {
                out.push(AuditEvent {
                    session: Some(session),
                    user: Some(self.system_user.clone()),
                    ip: None,
                    operation: op::EPHEMERAL_DELETED,
                    znode: Some(p.to_owned()),
                    znode_type: None,
                    acl: None,
                    result: Outcome::of(deleted.contains(&p)),
                });
            }
        }
        let failed_txn = matches!(rec.txn, Txn::Error(_));
        let ok = !matches!(&result.reply, TxnReply::Error(c) if *c != ErrorCode::Ok);
        if let Submitter::Reconfig { auth } = who {
            let ok = ok && !failed_txn;
            out.push(AuditEvent {
                session: Some(session),
                user: users(auth),
                ip: client_ip(auth),
                operation: op::RECONFIG,
                znode: ok.then(|| crate::reconfig::CONFIG_NODE.to_owned()),
                znode_type: None,
                acl: None,
                result: Outcome::of(ok),
            });
            return out;
        }
        let (auth, request) = match who {
            Submitter::Client { auth, request } => (Some(auth), request),
            Submitter::Reconfig { .. } => return out,
            Submitter::Server { request } => (None, request),
            Submitter::Elsewhere => return out,
        };
        let (user, ip) = match auth {
            Some(a) => (users(a), client_ip(a)),
            None => (Some(self.system_user.clone()), None),
        };
        let line = |operation, znode: Option<String>, znode_type, acl, ok| AuditEvent {
            session: Some(session),
            user: user.clone(),
            ip: ip.clone(),
            operation,
            znode,
            znode_type,
            acl,
            result: Outcome::of(ok),
        };
        match request {
            WriteRequest::CreateSession { .. } if auth.is_some() => {
                out.push(line(
                    op::CREATE_SESSION,
                    None,
                    None,
                    None,
                    ok && !failed_txn,
                ));
            }
            WriteRequest::CloseSession => {
                out.push(line(op::CLOSE_SESSION, None, None, None, ok && !failed_txn));
            }
            _ if auth.is_none() => {}
            WriteRequest::Create { req, .. } => {
                let znode = match &result.reply {
                    TxnReply::Created { path, .. } => path.clone(),
                    _ => req.path.clone(),
                };
                let mode = create_mode_name(req.flags);
                out.push(line(op::CREATE, Some(znode), mode, None, ok && !failed_txn));
            }
            WriteRequest::Delete(d) => {
                out.push(line(
                    op::DELETE,
                    Some(d.path.clone()),
                    None,
                    None,
                    ok && !failed_txn,
                ));
            }
            WriteRequest::SetData(s) => {
                out.push(line(
                    op::SET_DATA,
                    Some(s.path.clone()),
                    None,
                    None,
                    ok && !failed_txn,
                ));
            }
            WriteRequest::SetAcl(s) => out.push(line(
                op::SET_ACL,
                Some(s.path.clone()),
                None,
                Some(acl_string(&s.acl)),
                ok && !failed_txn,
            )),
            WriteRequest::Multi(m) => out.extend(multi_events(m, rec, result, &line)),
            // createTTL and the rest are not audited by ZooKeeper.
            _ => {}
        }
        out
    }
}

/// The lines of a multi (ZooKeeper's `logMultiOperation`): each applied create, delete
/// and setData as a success; a failed multi as one `multiOperation` failure.
fn multi_events(
    m: &rzk_proto::multi::MultiRequest,
    rec: &TxnRecord,
    result: &ApplyResult,
    line: &dyn Fn(
        &'static str,
        Option<String>,
        Option<&'static str>,
        Option<String>,
        bool,
    ) -> AuditEvent,
) -> Vec<AuditEvent> {
    let mut out = Vec::new();
    let modes: HashMap<&str, Option<&'static str>> = m
        .ops
        .iter()
        .filter_map(|o| match o {
            MultiOp::Create(_, r) => Some((r.path.as_str(), create_mode_name(r.flags))),
            _ => None,
        })
        .collect();
    let (Txn::Multi(subs), TxnReply::Multi(results)) = (&rec.txn, &result.reply) else {
        // A multi refused as a whole.
        out.push(line(op::MULTI, None, None, None, false));
        return out;
    };
    let mut failed = false;
    for (sub, res) in subs.iter().zip(results) {
        match (sub, res) {
            (_, OpResult::Error(_)) => failed = true,
            (Txn::Create(_, c), _) => {
                let mode = modes.get(c.path.as_str()).copied().flatten();
                out.push(line(op::CREATE, Some(c.path.clone()), mode, None, true));
            }
            (Txn::CreateTtl(c), _) => {
                out.push(line(op::CREATE, Some(c.path.clone()), None, None, true))
            }
            (Txn::CreateContainer(c), _) => {
                let mode = modes.get(c.path.as_str()).copied().flatten();
                out.push(line(op::CREATE, Some(c.path.clone()), mode, None, true));
            }
            (Txn::Delete(d) | Txn::DeleteContainer(d), _) => {
                out.push(line(op::DELETE, Some(d.path.clone()), None, None, true))
            }
            (Txn::SetData(s), _) => {
                out.push(line(op::SET_DATA, Some(s.path.clone()), None, None, true))
            }
            _ => {}
        }
    }
    if failed {
        out.push(line(op::MULTI, None, None, None, false));
    }
    out
}

#[cfg(test)]
mod tests;
