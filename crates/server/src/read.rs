//! Answering reads from the local tree (docs/CLIENT-PROTOCOL.md §6): ACL checks, watch
//! registration, reply bodies. Must never change the tree.

use crate::auth::{self, AuthInfo};
use crate::request::ReadRequest;
use crate::tree::DataTree;
use crate::watch::{ConnId, WatchManager};
use rzk_proto::multi::{MultiOp, MultiResponse, OpResult};
use rzk_proto::opcode::perms;
use rzk_proto::records::*;
use rzk_proto::{ErrorCode, Jute, SessionId};

/// Answers a read: the reply body on success, or the error code (header-only reply).
pub fn read(
    tree: &DataTree,
    watches: &mut WatchManager,
    conn: ConnId,
    auth: &AuthInfo,
    session: SessionId,
    req: &ReadRequest,
) -> Result<Vec<u8>, ErrorCode> {
    let mut body = Vec::new();
    read_into(&mut body, tree, watches, conn, auth, session, req)?;
    Ok(body)
}

/// Answers a read with its whole reply frame (length prefix, header with `xid` and the
/// tree's last zxid, body), built in one buffer: what a connection sends. A refused
/// read is a header-only frame with the error code, as with [`read`].
pub fn read_frame(
    xid: i32,
    tree: &DataTree,
    watches: &mut WatchManager,
    conn: ConnId,
    auth: &AuthInfo,
    session: SessionId,
    req: &ReadRequest,
) -> Vec<u8> {
    crate::reply::frame_with(xid, tree.last_zxid(), READ_FRAME_CAPACITY, |w| {
        read_into(w, tree, watches, conn, auth, session, req)
    })
}

/// Room a read's reply frame starts with: a getData of up to ~400 bytes of data, or an
/// exists, in one allocation (a larger body reserves what it needs once).
const READ_FRAME_CAPACITY: usize = 512;

/// Appends the reply body of `req` to `w` (which may already hold a frame's head), or
/// returns the error code; on an error `w` may hold part of a body.
fn read_into(
    w: &mut Vec<u8>,
    tree: &DataTree,
    watches: &mut WatchManager,
    conn: ConnId,
    auth: &AuthInfo,
    session: SessionId,
    req: &ReadRequest,
) -> Result<(), ErrorCode> {
    match req {
        ReadRequest::Exists(r) => {
            if r.path.contains('\0') {
                return Err(ErrorCode::BadArguments);
            }
            // ZooKeeper 3.8 answers exists without an ACL check (the Debian 3.8 oracle
            // and zkCli's `stat` on a node the caller cannot read both show it).
            if r.watch {
                watches.add_data_watch(conn, &r.path);
            }
            let stat = tree.stat(&r.path).ok_or(ErrorCode::NoNode)?;
            crate::metrics::hooks::read_stat(&r.path, 0);
            ExistsResponse { stat }.write(w);
            Ok(())
        }
        ReadRequest::GetData(r) => {
            let (data, stat) = get_data(tree, watches, conn, auth, &r.path, r.watch)?;
            // One reservation for the whole body: the data's length prefix and bytes,
            // then the stat.
            w.reserve(4 + data.len() + Stat::SIZE);
            GetDataResponse { data, stat }.write(w);
            Ok(())
        }
        ReadRequest::GetChildren(r) => {
            let (children, _) = get_children(tree, watches, conn, auth, &r.path, r.watch)?;
            GetChildrenResponse { children }.write(w);
            Ok(())
        }
        ReadRequest::GetChildren2(r) => {
            let (children, stat) = get_children(tree, watches, conn, auth, &r.path, r.watch)?;
            GetChildren2Response { children, stat }.write(w);
            Ok(())
        }
        ReadRequest::GetAcl(r) => {
            let (acl, stat) = tree.get_acl(&r.path).ok_or(ErrorCode::NoNode)?;
            require(&acl, auth, perms::READ | perms::ADMIN)?;
            let acl = if auth::check_perm(&acl, auth, perms::ADMIN) {
                acl
            } else {
                auth::redact_acl(&acl)
            };
            GetAclResponse { acl, stat }.write(w);
            Ok(())
        }
        ReadRequest::GetAllChildrenNumber(r) => {
            let acl = tree.acl(&r.path).ok_or(ErrorCode::NoNode)?;
            require(&acl, auth, perms::READ)?;
            let mut total_number = tree.all_children_number(&r.path).ok_or(ErrorCode::NoNode)?;
            if r.path.is_empty() {
                // ZooKeeper counts the paths under "" + "/", which takes in "/" itself.
                total_number += 1;
            }
            GetAllChildrenNumberResponse { total_number }.write(w);
            Ok(())
        }
        ReadRequest::GetEphemerals(r) => {
            // Java's String.trim: every char up to U+0020, and no other whitespace.
            let prefix = r.prefix_path.trim_matches(|c: char| c <= ' ');
            let all = tree.ephemerals(session);
            let ephemerals = if prefix.is_empty() || prefix == "/" {
                all
            } else {
                all.into_iter()
                    .filter(|p| p.starts_with(r.prefix_path.as_str()))
                    .collect()
            };
            GetEphemeralsResponse { ephemerals }.write(w);
            Ok(())
        }
        ReadRequest::WhoAmI => {
            WhoAmIResponse {
                client_info: auth.client_infos(),
            }
            .write(w);
            Ok(())
        }
        ReadRequest::MultiRead(m) => {
            // The watch flag of a getChildren / getData inside multiRead is ignored: no
            // watch is set (ZooKeeper 3.8 and 3.9 alike; docs/COMPATIBILITY.md).
            let mut results = Vec::with_capacity(m.ops.len());
            let mut reply_bytes = 0usize;
            for op in &m.ops {
                let res = match op {
                    MultiOp::GetChildren(r) => {
                        get_children(tree, watches, conn, auth, &r.path, false)
                            .map(|(c, _)| OpResult::GetChildren(c))
                    }
                    MultiOp::GetData(r) => get_data(tree, watches, conn, auth, &r.path, false)
                        .map(|(d, s)| OpResult::GetData(d, s)),
                    _ => Err(ErrorCode::MarshallingError),
                };
                let res = res.unwrap_or_else(OpResult::error);
                reply_bytes += reply_size(&res);
                if reply_bytes > MAX_MULTI_READ_REPLY {
                    // A small request can ask for the same large node thousands of
                    // times: refused before the reply is built (ZooKeeper builds it and
                    // runs out of memory).
                    tracing::warn!(
                        conn,
                        ops = m.ops.len(),
                        "multiRead reply over {MAX_MULTI_READ_REPLY} bytes: refused"
                    );
                    return Err(ErrorCode::BadArguments);
                }
                results.push(res);
            }
            MultiResponse { results }.write(w);
            Ok(())
        }
        ReadRequest::CheckWatches(r) => watches
            .check_watches(conn, &r.path, r.watcher_type)
            .map_err(bad_type),
        ReadRequest::RemoveWatches(r) => watches
            .remove_watches(conn, &r.path, r.watcher_type)
            .map_err(bad_type),
        ReadRequest::AddWatch(r) => {
            watches.add_watch(conn, &r.path, r.mode).map_err(bad_type)?;
            ErrorResponse { err: 0 }.write(w);
            Ok(())
        }
    }
}

/// The largest multiRead reply body rzk builds, in bytes (64 MiB); a larger one is
/// answered BADARGUMENTS (docs/COMPATIBILITY.md).
pub const MAX_MULTI_READ_REPLY: usize = 64 << 20;

/// About the bytes `res` takes in a multi reply (its variable part, plus the fixed part
/// rounded up).
fn reply_size(res: &OpResult) -> usize {
    const FIXED: usize = 128;
    match res {
        OpResult::GetData(d, _) => FIXED + d.len(),
        OpResult::GetChildren(c) => FIXED + c.iter().map(|n| 4 + n.len()).sum::<usize>(),
        _ => FIXED,
    }
}

/// An invalid watcher type / mode fails to parse in ZooKeeper: MARSHALLINGERROR.
fn bad_type(e: ErrorCode) -> ErrorCode {
    if e == ErrorCode::BadArguments {
        ErrorCode::MarshallingError
    } else {
        e
    }
}

fn require(acl: &[Acl], auth: &AuthInfo, perm: i32) -> Result<(), ErrorCode> {
    if auth::check_perm(acl, auth, perm) {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

fn get_data(
    tree: &DataTree,
    watches: &mut WatchManager,
    conn: ConnId,
    auth: &AuthInfo,
    path: &str,
    watch: bool,
) -> Result<(rzk_proto::Data, Stat), ErrorCode> {
    let (acl, data, stat) = tree.get_data_with_acl(path).ok_or(ErrorCode::NoNode)?;
    require(&acl, auth, perms::READ)?;
    let r = (data, stat);
    crate::metrics::hooks::read_stat(path, r.0.as_option().map_or(0, |b| b.len()));
    if watch {
        watches.add_data_watch(conn, path);
    }
    Ok(r)
}

fn get_children(
    tree: &DataTree,
    watches: &mut WatchManager,
    conn: ConnId,
    auth: &AuthInfo,
    path: &str,
    watch: bool,
) -> Result<(Vec<String>, Stat), ErrorCode> {
    let (acl, children, stat) = tree.get_children_with_acl(path).ok_or(ErrorCode::NoNode)?;
    require(&acl, auth, perms::READ)?;
    let r = (children, stat);
    crate::metrics::hooks::read_stat(path, r.0.iter().map(String::len).sum());
    if watch {
        watches.add_child_watch(conn, path);
    }
    Ok(r)
}

#[cfg(test)]
mod tests;
