//! Decoding a client frame (after the handshake) into a typed request, and which
//! decoding failures are answered with which error (and/or a closed connection).
//! Must never touch the tree, sessions or sockets.

use crate::prep::WriteRequest;
use rzk_proto::multi::{MultiOp, MultiRequest};
use rzk_proto::records::*;
use rzk_proto::{ErrorCode, Jute, OpCode, Reader};

/// A read, answered from the local tree by `read.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadRequest {
    Exists(ExistsRequest),
    GetData(GetDataRequest),
    GetChildren(GetChildrenRequest),
    GetChildren2(GetChildren2Request),
    GetAcl(GetAclRequest),
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    GetEphemerals(GetEphemeralsRequest),
    WhoAmI,
    MultiRead(MultiRequest),
    CheckWatches(CheckWatchesRequest),
    RemoveWatches(RemoveWatchesRequest),
    AddWatch(AddWatchRequest),
}

/// Any client request after the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Write(WriteRequest),
    Read(ReadRequest),
    Ping,
    Auth(AuthPacket),
    /// setWatches (101) normalized to setWatches2 (105).
    SetWatches(SetWatches2),
    /// `sync`: its path, `None` when null (ZooKeeper reads no path for it: it only
    /// echoes it back).
    Sync(Option<String>),
    CloseSession,
    Sasl(GetSaslRequest),
    Reconfig(ReconfigRequest),
}

/// A frame that cannot be served as sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad request: reply {reply:?}, close {close}, log error txn {log_error_txn}")]
pub struct RequestError {
    /// The error code to reply with (`None`: no reply).
    pub reply: Option<ErrorCode>,
    /// Close the connection after replying.
    pub close: bool,
    /// ZooKeeper logs an ErrorTxn for this failure (consumes a zxid): send it through
    /// the write path as an error txn with code `reply`.
    pub log_error_txn: bool,
}

impl RequestError {
    fn unimplemented() -> RequestError {
        RequestError {
            reply: Some(ErrorCode::Unimplemented),
            close: true,
            log_error_txn: false,
        }
    }
    /// A malformed write: logged as an error txn, answered MARSHALLINGERROR.
    fn bad_write() -> RequestError {
        RequestError {
            reply: Some(ErrorCode::MarshallingError),
            close: false,
            log_error_txn: true,
        }
    }
    /// A deleteContainer sent by a client (or forwarded by a learner): answered
    /// BADARGUMENTS as an error txn, whatever its body. Only the server's own reaper
    /// deletes containers (node/timers.rs submits its requests directly, never through
    /// this decoder), and it checks no ACL: a client's request must not reach it.
    /// ZooKeeper's prep reads this request's path from the whole request buffer, headers
    /// included, so for a client's request the path never validates (BadArgumentsException).
    fn delete_container_from_client() -> RequestError {
        RequestError {
            reply: Some(ErrorCode::BadArguments),
            close: false,
            log_error_txn: true,
        }
    }
    /// A malformed read: answered MARSHALLINGERROR.
    fn bad_read() -> RequestError {
        RequestError {
            reply: Some(ErrorCode::MarshallingError),
            close: false,
            log_error_txn: false,
        }
    }
}

fn rd<T: Jute>(body: &[u8], max: usize, bad: fn() -> RequestError) -> Result<T, RequestError> {
    T::read(&mut Reader::with_limit(body, max)).map_err(|e| {
        tracing::debug!("malformed request body: {e}");
        bad()
    })
}

/// Whether the body's first field, the path for every request that carries one, is
/// null (length -1). ZooKeeper serves an empty path as the root for reads, but a null
/// one fails where its handler first uses the path, answered MARSHALLINGERROR.
fn null_path(body: &[u8]) -> bool {
    Reader::new(body).next_is_null()
}

/// Whether a setWatches (101: three lists) or setWatches2 (105: five) body holds a
/// null list or a null path in a list; ZooKeeper answers that MARSHALLINGERROR. A body
/// that does not decode is left to the decoder.
fn null_watch_path(body: &[u8], lists: usize) -> bool {
    let mut r = Reader::new(body);
    if r.take(8).is_err() {
        return false;
    }
    for _ in 0..lists {
        if r.next_is_null() {
            return true;
        }
        let Ok(n) = r.read::<i32>() else {
            return false;
        };
        for _ in 0..n.max(0) {
            // Skipped without copying: a setWatches may hold a megabyte of paths.
            match r.buffer() {
                Ok(None) => return true,
                Ok(Some(_)) => {}
                Err(_) => return false,
            }
        }
    }
    false
}

/// Whether an auth packet carries null (not empty) digest credentials: ZooKeeper's
/// digest provider fails on them (AUTHFAILED, and the connection closes), where it takes
/// empty ones. The ip and x509 providers never read the credentials, so null is fine
/// there (kazoo sends `add_auth("x509", "")` as null).
fn null_digest_auth(body: &[u8]) -> bool {
    let mut r = Reader::new(body);
    r.read::<i32>().is_ok() && r.read::<String>().is_ok_and(|s| s == "digest") && r.next_is_null()
}

/// Whether the ACL list at the reader's position holds an entry with a null id under
/// the `world`, `digest` or `ip` scheme: ZooKeeper's ACL check dereferences that id and
/// fails with a null pointer, which its prep turns into MARSHALLINGERROR (for a multi,
/// of the whole multi). A null id under other schemes, a null scheme or a null list is
/// INVALIDACL on both servers (left to the decoder and the ACL check). `None` when the
/// list does not decode (also left to the decoder).
fn null_acl_id_in_list(r: &mut Reader<'_>) -> Option<bool> {
    let n: i32 = r.read().ok()?;
    let mut found = false;
    for _ in 0..n.max(0) {
        r.read::<i32>().ok()?;
        let scheme = r.buffer().ok()?;
        let id = r.buffer().ok()?;
        if id.is_none() && matches!(scheme, Some(b"world" | b"digest" | b"ip")) {
            found = true;
        }
    }
    Some(found)
}

/// [`null_acl_id_in_list`] for a create-type body (path, data, ACL list, ...).
fn null_acl_id_in_create(r: &mut Reader<'_>) -> Option<bool> {
    r.buffer().ok()?;
    r.buffer().ok()?;
    null_acl_id_in_list(r)
}

/// Whether a create, setACL or multi body holds an ACL entry that ZooKeeper fails with
/// MARSHALLINGERROR ([`null_acl_id_in_list`]).
fn null_acl_id(op: OpCode, body: &[u8]) -> bool {
    let mut r = Reader::new(body);
    match op {
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
            null_acl_id_in_create(&mut r) == Some(true)
        }
        OpCode::SetAcl => r.buffer().is_ok() && null_acl_id_in_list(&mut r) == Some(true),
        OpCode::Multi => null_acl_id_in_multi(&mut r).unwrap_or(false),
        _ => false,
    }
}

/// [`null_acl_id`] over a multi's ops; `None` at an op it does not know (left to the
/// decoder).
fn null_acl_id_in_multi(r: &mut Reader<'_>) -> Option<bool> {
    loop {
        let ty: i32 = r.read().ok()?;
        let done: bool = r.read().ok()?;
        r.read::<i32>().ok()?;
        if done {
            return Some(false);
        }
        match OpCode::from_i32(ty)? {
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => {
                if null_acl_id_in_create(r)? {
                    return Some(true);
                }
                r.read::<i32>().ok()?;
            }
            OpCode::CreateTtl => {
                if null_acl_id_in_create(r)? {
                    return Some(true);
                }
                r.read::<i32>().ok()?;
                r.read::<i64>().ok()?;
            }
            OpCode::Delete | OpCode::Check => {
                r.buffer().ok()?;
                r.read::<i32>().ok()?;
            }
            OpCode::SetData => {
                r.buffer().ok()?;
                r.buffer().ok()?;
                r.read::<i32>().ok()?;
            }
            _ => return None,
        }
    }
}

/// ZooKeeper refuses a whole multi whose create names unknown flags, or TTL flags under
/// create/create2/createContainer (rzk_proto::multi::effective_create_op).
fn valid_multi_op(op: &MultiOp) -> bool {
    op.effective_op_code().is_some()
}

/// Decodes a request body. `max_buffer` bounds any length inside it (jute.maxbuffer).
pub fn decode(
    header: &RequestHeader,
    body: &[u8],
    max_buffer: usize,
) -> Result<Request, RequestError> {
    use RequestError as E;
    let w = |r: WriteRequest| Ok(Request::Write(r));
    let r = |r: ReadRequest| Ok(Request::Read(r));
    let Some(op) = OpCode::from_i32(header.op) else {
        return Err(E::unimplemented());
    };
    let m = max_buffer;
    // (A multi's body starts with an op header, not a path: its ops' null paths are
    // refused by its decoder.)
    if null_path(body) {
        match op {
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::Delete => {
                return Err(E::bad_write())
            }
            OpCode::Exists
            | OpCode::GetData
            | OpCode::GetChildren
            | OpCode::GetChildren2
            | OpCode::GetAcl
            | OpCode::GetAllChildrenNumber
            | OpCode::CheckWatches => return Err(E::bad_read()),
            // ZooKeeper closes the connection on a null SASL token, without a reply.
            OpCode::Sasl => {
                return Err(RequestError {
                    reply: None,
                    close: true,
                    log_error_txn: false,
                })
            }
            _ => {}
        }
    }
    if null_acl_id(op, body) {
        return Err(E::bad_write());
    }
    match op {
        OpCode::Ping => Ok(Request::Ping),
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer => w(WriteRequest::Create {
            op: header.op,
            req: rd(body, m, E::bad_write)?,
        }),
        OpCode::CreateTtl => w(WriteRequest::CreateTtl(rd(body, m, E::bad_write)?)),
        OpCode::Delete => w(WriteRequest::Delete(rd(body, m, E::bad_write)?)),
        OpCode::SetData => w(WriteRequest::SetData(rd(body, m, E::bad_write)?)),
        OpCode::SetAcl => w(WriteRequest::SetAcl(rd(body, m, E::bad_write)?)),
        OpCode::DeleteContainer => Err(E::delete_container_from_client()),
        OpCode::Multi => {
            let req: MultiRequest = rd(body, m, E::bad_write)?;
            if req.ops.iter().any(|o| o.is_read() || !valid_multi_op(o)) {
                return Err(E::bad_write());
            }
            w(WriteRequest::Multi(req))
        }
        OpCode::MultiRead => {
            let req: MultiRequest = rd(body, m, E::bad_read)?;
            if req.ops.iter().any(|o| !o.is_read()) {
                return Err(E::bad_read());
            }
            r(ReadRequest::MultiRead(req))
        }
        OpCode::Exists => r(ReadRequest::Exists(rd(body, m, E::bad_read)?)),
        OpCode::GetData => r(ReadRequest::GetData(rd(body, m, E::bad_read)?)),
        OpCode::GetChildren => r(ReadRequest::GetChildren(rd(body, m, E::bad_read)?)),
        OpCode::GetChildren2 => r(ReadRequest::GetChildren2(rd(body, m, E::bad_read)?)),
        OpCode::GetAcl => r(ReadRequest::GetAcl(rd(body, m, E::bad_read)?)),
        OpCode::GetAllChildrenNumber => {
            r(ReadRequest::GetAllChildrenNumber(rd(body, m, E::bad_read)?))
        }
        OpCode::GetEphemerals => r(ReadRequest::GetEphemerals(rd(body, m, E::bad_read)?)),
        OpCode::WhoAmI => r(ReadRequest::WhoAmI),
        OpCode::CheckWatches => r(ReadRequest::CheckWatches(rd(body, m, E::bad_read)?)),
        OpCode::RemoveWatches => r(ReadRequest::RemoveWatches(rd(body, m, E::bad_read)?)),
        OpCode::AddWatch => r(ReadRequest::AddWatch(rd(body, m, E::bad_read)?)),
        OpCode::Sync if null_path(body) => Ok(Request::Sync(None)),
        OpCode::Sync => Ok(Request::Sync(Some(
            rd::<SyncRequest>(body, m, E::bad_read)?.path,
        ))),
        OpCode::Auth if null_digest_auth(body) => Err(RequestError {
            reply: Some(ErrorCode::AuthFailed),
            close: true,
            log_error_txn: false,
        }),
        OpCode::Auth => Ok(Request::Auth(rd(body, m, || RequestError {
            reply: None,
            close: true,
            log_error_txn: false,
        })?)),
        OpCode::SetWatches | OpCode::SetWatches2
            if null_watch_path(body, if op == OpCode::SetWatches { 3 } else { 5 }) =>
        {
            Err(E::bad_read())
        }
        OpCode::SetWatches => {
            let sw: SetWatches = rd(body, m, E::bad_read)?;
            Ok(Request::SetWatches(SetWatches2 {
                relative_zxid: sw.relative_zxid,
                data_watches: sw.data_watches,
                exist_watches: sw.exist_watches,
                child_watches: sw.child_watches,
                persistent_watches: Vec::new(),
                persistent_recursive_watches: Vec::new(),
            }))
        }
        OpCode::SetWatches2 => Ok(Request::SetWatches(rd(body, m, E::bad_read)?)),
        // A SASL token that does not decode fails ZooKeeper's processSasl with an
        // IOException, which closes the connection without a reply.
        OpCode::Sasl => Ok(Request::Sasl(rd(body, m, || RequestError {
            reply: None,
            close: true,
            log_error_txn: false,
        })?)),
        OpCode::CloseSession => Ok(Request::CloseSession),
        OpCode::Reconfig => Ok(Request::Reconfig(rd(body, m, E::bad_write)?)),
        OpCode::Check | OpCode::Notification | OpCode::CreateSession | OpCode::Error => {
            Err(E::unimplemented())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rzk_proto::multi::MultiOp;

    fn hdr(op: i32) -> RequestHeader {
        RequestHeader { xid: 1, op }
    }

    const MAX: usize = rzk_proto::jute::DEFAULT_MAX_BUFFER;

    #[test]
    fn decodes_writes_and_reads() {
        let c = CreateRequest {
            path: "/a".into(),
            acl: Acl::open_unsafe(),
            ..Default::default()
        };
        assert_eq!(
            decode(&hdr(15), &c.to_bytes(), MAX),
            Ok(Request::Write(WriteRequest::Create {
                op: 15,
                req: c.clone()
            }))
        );
        let e = ExistsRequest {
            path: "/a".into(),
            watch: true,
        };
        assert_eq!(
            decode(&hdr(3), &e.to_bytes(), MAX),
            Ok(Request::Read(ReadRequest::Exists(e)))
        );
        assert_eq!(decode(&hdr(11), &[], MAX), Ok(Request::Ping));
        assert_eq!(decode(&hdr(-11), &[], MAX), Ok(Request::CloseSession));
        assert_eq!(
            decode(&hdr(107), &[], MAX),
            Ok(Request::Read(ReadRequest::WhoAmI))
        );
        // deleteContainer is the server's own reaper's: from a client (or a learner) it
        // is refused whatever the body, raw path or jute string (found by a review: any
        // client could delete any empty node this way, ACLs unchecked).
        let mut jute_path = Vec::new();
        "/c".to_owned().write(&mut jute_path);
        for body in [&b"/c"[..], &jute_path, &[]] {
            assert_eq!(
                decode(&hdr(20), body, MAX),
                Err(RequestError {
                    reply: Some(ErrorCode::BadArguments),
                    close: false,
                    log_error_txn: true,
                })
            );
        }
        let sw = SetWatches {
            relative_zxid: 5,
            data_watches: vec!["/d".into()],
            ..Default::default()
        };
        match decode(&hdr(101), &sw.to_bytes(), MAX) {
            Ok(Request::SetWatches(s)) => {
                assert_eq!((s.relative_zxid, s.data_watches.len()), (5, 1))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn null_fields_are_not_empty_ones() {
        let null = (-1i32).to_be_bytes();
        let body = |rest: &[u8]| [&null[..], rest].concat();
        // a null path: MARSHALLINGERROR (a write logs an error txn); "" stays served
        let e = decode(&hdr(3), &body(&[0]), MAX).unwrap_err();
        assert_eq!(
            (e.reply, e.log_error_txn),
            (Some(ErrorCode::MarshallingError), false)
        );
        let e = decode(&hdr(2), &body(&null), MAX).unwrap_err();
        assert_eq!(
            (e.reply, e.log_error_txn),
            (Some(ErrorCode::MarshallingError), true)
        );
        assert!(decode(&hdr(3), &[0, 0, 0, 0, 0], MAX).is_ok());
        // setData checks its path first (BADARGUMENTS later, in prep)
        assert!(decode(&hdr(5), &body(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]), MAX).is_ok());
        // an empty multi is its terminator, which starts with -1 too
        let empty = MultiRequest::default().to_bytes();
        assert_eq!(&empty[..4], &null);
        assert!(decode(&hdr(14), &empty, MAX).is_ok());
        assert!(decode(&hdr(22), &empty, MAX).is_ok());
        let in_multi = [
            &[0, 0, 0, 2, 0, 0xff, 0xff, 0xff, 0xff][..],
            &null,
            &null,
            &empty,
        ]
        .concat();
        assert!(decode(&hdr(14), &in_multi, MAX).unwrap_err().log_error_txn);
        // sync reads no path: a null one is kept null (echoed so), "" stays ""
        assert!(matches!(
            decode(&hdr(9), &null, MAX),
            Ok(Request::Sync(None))
        ));
        assert!(matches!(
            decode(&hdr(9), &[0, 0, 0, 0], MAX),
            Ok(Request::Sync(Some(p))) if p.is_empty()
        ));
        // a null SASL token closes with no reply; null digest credentials fail auth
        let e = decode(&hdr(102), &null, MAX).unwrap_err();
        assert_eq!((e.reply, e.close), (None, true));
        let auth = [&[0, 0, 0, 0, 0, 0, 0, 6][..], b"digest", &null].concat();
        let e = decode(&hdr(100), &auth, MAX).unwrap_err();
        assert_eq!((e.reply, e.close), (Some(ErrorCode::AuthFailed), true));
        for scheme in [&b"x509"[..], b"ip"] {
            let len = (scheme.len() as i32).to_be_bytes();
            let auth = [&[0, 0, 0, 0][..], &len, scheme, &null].concat();
            assert!(matches!(
                decode(&hdr(100), &auth, MAX),
                Ok(Request::Auth(_))
            ));
        }
        let auth = [&[0, 0, 0, 0, 0, 0, 0, 6][..], b"digest", &[0, 0, 0, 0]].concat();
        assert!(matches!(
            decode(&hdr(100), &auth, MAX),
            Ok(Request::Auth(_))
        ));
        // setWatches: a null list or a null path in one is MARSHALLINGERROR, a count
        // below -1 an empty list
        let zxid = [0u8; 8];
        let sw = |lists: &[&[u8]]| [&zxid[..], &lists.concat()].concat();
        let neg = (-5i32).to_be_bytes();
        assert!(decode(&hdr(101), &sw(&[&neg, &neg, &neg]), MAX).is_ok());
        assert!(decode(&hdr(101), &sw(&[&[0; 4], &[0; 4], &null]), MAX).is_err());
        assert!(decode(
            &hdr(101),
            &sw(&[&[0, 0, 0, 1], &null, &[0; 4], &[0; 4]]),
            MAX
        )
        .is_err());
        assert!(decode(&hdr(105), &sw(&[&neg, &neg, &neg, &neg, &neg]), MAX).is_ok());
        assert!(decode(
            &hdr(105),
            &sw(&[&[0; 4], &[0; 4], &[0; 4], &[0; 4], &null]),
            MAX
        )
        .is_err());
    }

    #[test]
    fn refusals() {
        for op in [0, 13, 10, -10, 999] {
            let e = decode(&hdr(op), &[], MAX).unwrap_err();
            assert_eq!(
                (e.reply, e.close),
                (Some(ErrorCode::Unimplemented), true),
                "op {op}"
            );
        }
        let e = decode(&hdr(1), &[0, 0], MAX).unwrap_err();
        assert_eq!(
            (e.reply, e.close, e.log_error_txn),
            (Some(ErrorCode::MarshallingError), false, true)
        );
        // an ACL entry with a null id under world / digest / ip: MARSHALLINGERROR (an
        // error txn) for create, setACL and a multi's create; under auth: left to the ACL
        // check (INVALIDACL)
        let acl = |scheme: &[u8]| {
            let mut b = 1i32.to_be_bytes().to_vec();
            b.extend_from_slice(&31i32.to_be_bytes());
            b.extend_from_slice(&(scheme.len() as i32).to_be_bytes());
            b.extend_from_slice(scheme);
            b.extend_from_slice(&(-1i32).to_be_bytes());
            b
        };
        let create = |scheme: &[u8]| {
            let mut b = "/a".to_owned().to_bytes();
            b.extend_from_slice(&1i32.to_be_bytes());
            b.push(b'x');
            b.extend_from_slice(&acl(scheme));
            b.extend_from_slice(&0i32.to_be_bytes());
            b
        };
        for op in [1, 15, 19] {
            let e = decode(&hdr(op), &create(b"world"), MAX).unwrap_err();
            assert_eq!(
                (e.reply, e.log_error_txn),
                (Some(ErrorCode::MarshallingError), true)
            );
            assert!(decode(&hdr(op), &create(b"auth"), MAX).is_ok(), "op {op}");
        }
        let mut set_acl = "/a".to_owned().to_bytes();
        set_acl.extend_from_slice(&acl(b"digest"));
        set_acl.extend_from_slice(&(-1i32).to_be_bytes());
        assert!(decode(&hdr(7), &set_acl, MAX).unwrap_err().log_error_txn);
        let mut multi = Vec::new();
        multi.extend_from_slice(&1i32.to_be_bytes());
        multi.push(0);
        multi.extend_from_slice(&(-1i32).to_be_bytes());
        multi.extend_from_slice(&create(b"ip"));
        multi.extend_from_slice(&(-1i32).to_be_bytes());
        multi.push(1);
        multi.extend_from_slice(&(-1i32).to_be_bytes());
        let e = decode(&hdr(14), &multi, MAX).unwrap_err();
        assert_eq!(
            (e.reply, e.log_error_txn),
            (Some(ErrorCode::MarshallingError), true)
        );
        // a SASL token that does not decode: closed without a reply, as ZooKeeper
        let e = decode(&hdr(102), &[0, 0], MAX).unwrap_err();
        assert_eq!((e.reply, e.close), (None, true));
        let e = decode(&hdr(4), &[0, 0], MAX).unwrap_err();
        assert_eq!(
            (e.reply, e.log_error_txn),
            (Some(ErrorCode::MarshallingError), false)
        );
        // multi mixing a read, and a bad create flag
        let mixed = MultiRequest {
            ops: vec![MultiOp::GetData(GetDataRequest {
                path: "/a".into(),
                watch: false,
            })],
        };
        assert!(
            decode(&hdr(14), &mixed.to_bytes(), MAX)
                .unwrap_err()
                .log_error_txn
        );
        let badflag = MultiRequest {
            ops: vec![MultiOp::Create(
                1,
                CreateRequest {
                    path: "/a".into(),
                    flags: 9,
                    ..Default::default()
                },
            )],
        };
        assert!(decode(&hdr(14), &badflag.to_bytes(), MAX).is_err());
        // multiRead with a write
        let w = MultiRequest {
            ops: vec![MultiOp::Delete(DeleteRequest {
                path: "/a".into(),
                version: -1,
            })],
        };
        assert!(
            !decode(&hdr(22), &w.to_bytes(), MAX)
                .unwrap_err()
                .log_error_txn
        );
        assert!(decode(&hdr(100), &[1], MAX).unwrap_err().close);
        // a length over jute.maxbuffer
        let big = SetDataRequest {
            path: "/a".into(),
            data: bytes::Bytes::from(vec![0u8; 100]).into(),
            version: -1,
        };
        assert!(decode(&hdr(5), &big.to_bytes(), 50).is_err());
    }
}
