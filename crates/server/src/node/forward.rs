//! Client requests between servers: a learner forwards writes (and `sync`) to the leader
//! as REQUEST packets (`long sessionId, int cxid, int type` + request bytes, authinfo =
//! the client's ids); the leader turns them back into requests for prep.
//!
//! Owns only these encodings. Never touches the tree, sessions or sockets.

use crate::auth::AuthInfo;
use crate::prep::WriteRequest;
use crate::request::{self, Request};
use bytes::Bytes;
use rzk_proto::quorum::{ForwardedRequest, PacketType, QuorumPacket};
use rzk_proto::records::{ReconfigRequest, RequestHeader, SyncRequest};
use rzk_proto::txn::CreateSessionTxn;
use rzk_proto::{ErrorCode, Jute, OpCode, SessionId};

/// A write as (opcode, request body), the way the client sent it.
pub fn encode_write(req: &WriteRequest) -> (i32, Vec<u8>) {
    let op = req.op_code();
    let body = match req {
        WriteRequest::Create { req, .. } => req.to_bytes(),
        WriteRequest::CreateTtl(r) => r.to_bytes(),
        WriteRequest::Delete(r) => r.to_bytes(),
        WriteRequest::SetData(r) => r.to_bytes(),
        WriteRequest::SetAcl(r) => r.to_bytes(),
        WriteRequest::Multi(r) => r.to_bytes(),
        WriteRequest::CreateSession { timeout_ms } => CreateSessionTxn {
            timeout_ms: *timeout_ms,
        }
        .to_bytes(),
        WriteRequest::CloseSession => Vec::new(),
        WriteRequest::DeleteContainer(path) => path.as_bytes().to_vec(),
    };
    (op, body)
}

fn packet(session: SessionId, cxid: i32, op: i32, body: Vec<u8>, auth: &AuthInfo) -> QuorumPacket {
    raw_packet(session, cxid, op, Bytes::from(body), auth)
}

/// REQUEST for a client write.
pub fn write_packet(
    session: SessionId,
    cxid: i32,
    req: &WriteRequest,
    auth: &AuthInfo,
) -> QuorumPacket {
    let (op, body) = encode_write(req);
    packet(session, cxid, op, body, auth)
}

/// REQUEST for a client request forwarded as it was sent (`op`, `body`): a malformed
/// write, which the leader's prep fails and logs as an error txn.
pub fn raw_packet(
    session: SessionId,
    cxid: i32,
    op: i32,
    body: Bytes,
    auth: &AuthInfo,
) -> QuorumPacket {
    let f = ForwardedRequest {
        session_id: session.0,
        cxid,
        op_type: op,
        body,
    };
    QuorumPacket {
        ty: PacketType::Request,
        zxid: -1,
        data: Some(Bytes::from(f.encode())),
        authinfo: Some(auth.id_list()),
    }
}

/// REQUEST for a client `sync` (also used as an ordering barrier).
pub fn sync_packet(session: SessionId, cxid: i32, path: &str, auth: &AuthInfo) -> QuorumPacket {
    let body = SyncRequest {
        path: path.to_owned(),
    }
    .to_bytes();
    packet(session, cxid, OpCode::Sync.code(), body, auth)
}

/// REQUEST for a client's reconfig request (opcode 16), as ZooKeeper's learners forward
/// it: the request record, with each empty string written as a null string (length -1).
/// Decoding took a client's null as empty; a ZooKeeper leader tells them apart (an
/// empty `newMembers` would make it a non-incremental reconfig: BADARGUMENTS).
pub fn reconfig_packet(
    session: SessionId,
    cxid: i32,
    req: &ReconfigRequest,
    auth: &AuthInfo,
) -> QuorumPacket {
    let mut body = Vec::with_capacity(
        20 + req.joining_servers.len() + req.leaving_servers.len() + req.new_members.len(),
    );
    for s in [&req.joining_servers, &req.leaving_servers, &req.new_members] {
        if s.is_empty() {
            body.extend_from_slice(&(-1i32).to_be_bytes());
        } else {
            s.write(&mut body);
        }
    }
    req.cur_config_id.write(&mut body);
    packet(session, cxid, OpCode::Reconfig.code(), body, auth)
}

/// A forwarded request as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarded {
    Write(WriteRequest),
    /// A reconfig request, for [`crate::prep::Prep::prepare_reconfig`].
    Reconfig(ReconfigRequest),
    Sync,
    /// Logged as an error txn with this code (malformed write).
    Error(ErrorCode),
}

/// The authinfo of a REQUEST as the leader checks ACLs with it.
pub fn auth_of(p: &QuorumPacket) -> AuthInfo {
    AuthInfo::from_ids(p.authinfo.clone().unwrap_or_default())
}

/// Decodes a REQUEST's request part.
pub fn decode(f: &ForwardedRequest, max_buffer: usize) -> Forwarded {
    match f.op_type {
        op if op == OpCode::CreateSession.code() => match CreateSessionTxn::from_bytes(&f.body) {
            Ok(t) => Forwarded::Write(WriteRequest::CreateSession {
                timeout_ms: t.timeout_ms,
            }),
            Err(_) => Forwarded::Error(ErrorCode::MarshallingError),
        },
        op if op == OpCode::CloseSession.code() => Forwarded::Write(WriteRequest::CloseSession),
        op => {
            let hdr = RequestHeader { xid: f.cxid, op };
            match request::decode(&hdr, &f.body, max_buffer) {
                Ok(Request::Write(w)) => Forwarded::Write(w),
                Ok(Request::CloseSession) => Forwarded::Write(WriteRequest::CloseSession),
                Ok(Request::Sync(_)) => Forwarded::Sync,
                Ok(Request::Reconfig(r)) => Forwarded::Reconfig(r),
                Ok(_) => Forwarded::Error(ErrorCode::BadArguments),
                Err(e) => Forwarded::Error(e.reply.unwrap_or(ErrorCode::MarshallingError)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rzk_proto::records::{CreateRequest, SetDataRequest};

    fn roundtrip(req: WriteRequest) {
        let auth = AuthInfo::for_ip("127.0.0.1");
        let p = write_packet(SessionId(0x11), 7, &req, &auth);
        let f = ForwardedRequest::decode(p.data()).unwrap();
        assert_eq!((f.session_id, f.cxid), (0x11, 7));
        assert_eq!(decode(&f, 1 << 20), Forwarded::Write(req));
        assert_eq!(auth_of(&p), auth);
    }

    #[test]
    fn writes_survive_forwarding() {
        roundtrip(WriteRequest::Create {
            op: 1,
            req: CreateRequest {
                path: "/a".into(),
                data: Bytes::from_static(b"x").into(),
                acl: vec![],
                flags: 0,
            },
        });
        roundtrip(WriteRequest::SetData(SetDataRequest {
            path: "/a".into(),
            data: Bytes::from_static(b"y").into(),
            version: -1,
        }));
        roundtrip(WriteRequest::CreateSession { timeout_ms: 4000 });
        roundtrip(WriteRequest::CloseSession);
    }

    #[test]
    fn reconfig_survives_forwarding() {
        let req = ReconfigRequest {
            joining_servers: "server.4=127.0.0.1:1:2:participant;3".into(),
            leaving_servers: "2".into(),
            new_members: String::new(),
            cur_config_id: 0x1_0000_0003,
        };
        let p = reconfig_packet(SessionId(5), 9, &req, &AuthInfo::default());
        let f = ForwardedRequest::decode(p.data()).unwrap();
        assert_eq!((f.session_id, f.cxid), (5, 9));
        // The absent newMembers travels as a null string, as kazoo sends None.
        let null_at = 4 + req.joining_servers.len() + 4 + req.leaving_servers.len();
        assert_eq!(&f.body[null_at..null_at + 4], &(-1i32).to_be_bytes());
        assert_eq!(decode(&f, 1 << 20), Forwarded::Reconfig(req));
    }

    #[test]
    fn sync_is_recognised() {
        let p = sync_packet(SessionId(1), 2, "/", &AuthInfo::default());
        let f = ForwardedRequest::decode(p.data()).unwrap();
        assert_eq!(decode(&f, 1 << 20), Forwarded::Sync);
    }
}
