//! Success bodies of write replies, per request opcode (docs/CLIENT-PROTOCOL.md §6-§7).
//! Must never change state.

use crate::tree::{ApplyResult, TxnReply};
use rzk_proto::multi::MultiResponse;
use rzk_proto::opcode::xid;
use rzk_proto::records::{ReplyHeader, WatcherEvent};
use rzk_proto::{ErrorCode, Jute, OpCode, Zxid};

/// The reply body for a write with request opcode `op`; `Err(code)` for a header-only
/// error reply. A failed multi is a success (err 0) whose body carries the errors.
pub fn write_reply_body(op: i32, result: &ApplyResult) -> Result<Vec<u8>, ErrorCode> {
    let mut body = Vec::with_capacity(BODY_CAPACITY);
    write_body(op, result, &mut body)?;
    Ok(body)
}

/// The whole reply frame (length prefix, header, body) for a write with request opcode
/// `op` answered at `zxid`: the body of [`write_reply_body`] with err 0, or the
/// header alone with its error code. Built in one buffer, sized for a stat-carrying
/// body, so the common replies take one allocation.
pub fn write_reply_frame(xid: i32, zxid: Zxid, op: i32, result: &ApplyResult) -> Vec<u8> {
    frame_with(xid, zxid, FRAME_HEAD + BODY_CAPACITY, |w| {
        write_body(op, result, w)
    })
}

/// A reply frame built in one buffer of `capacity` bytes to start with: the length
/// prefix, the header with err 0, then what `body` appends; if `body` returns an error
/// code instead, the header-only frame with that code.
pub fn frame_with(
    xid: i32,
    zxid: Zxid,
    capacity: usize,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), ErrorCode>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    let mut refused = None;
    crate::net::frame::encode_frame(&mut out, |w| {
        header(xid, zxid, 0).write(w);
        if let Err(code) = body(w) {
            refused = Some(code);
        }
    });
    match refused {
        None => out,
        Some(code) => reply_frame(xid, zxid, code.code(), &[]),
    }
}

/// Bytes of the length prefix and reply header.
const FRAME_HEAD: usize = 4 + 16;
/// Room for the usual write reply bodies: a stat (68 B) and a short path.
const BODY_CAPACITY: usize = 128;

fn header(xid: i32, zxid: Zxid, err: i32) -> ReplyHeader {
    ReplyHeader {
        xid,
        zxid: zxid.0,
        err,
    }
}

/// Appends the success body of `result` to `w`; writes nothing and returns the code
/// of a header-only error reply.
fn write_body(op: i32, result: &ApplyResult, w: &mut Vec<u8>) -> Result<(), ErrorCode> {
    match &result.reply {
        TxnReply::Error(ErrorCode::Ok) => {}
        TxnReply::Error(c) => return Err(*c),
        TxnReply::Created { path, stat } => {
            // create answers with the path (CreateResponse); create2, createContainer
            // and createTTL with the path and the stat (Create2Response).
            path.write(w);
            if op != OpCode::Create.code() {
                stat.write(w);
            }
        }
        // SetDataResponse / SetAclResponse: the stat alone.
        TxnReply::SetData(stat) | TxnReply::SetAcl(stat) => stat.write(w),
        TxnReply::Multi(results) => MultiResponse::write_results(results, w),
        TxnReply::Deleted | TxnReply::SessionCreated | TxnReply::SessionClosed => {}
    }
    Ok(())
}

/// A reply frame: header + body.
pub fn reply_frame(xid: i32, zxid: Zxid, err: i32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEAD + body.len());
    crate::net::frame::encode_frame(&mut out, |w| {
        header(xid, zxid, err).write(w);
        w.extend_from_slice(body);
    });
    out
}

/// The xid of a reply frame (as [`reply_frame`] lays it out: length, xid, zxid, err,
/// body); `None` for a frame too short to have one.
pub fn frame_xid(frame: &[u8]) -> Option<i32> {
    frame.get(4..8)?.try_into().ok().map(i32::from_be_bytes)
}

/// The zxid of a reply frame (see [`frame_xid`]).
pub fn frame_zxid(frame: &[u8]) -> Option<i64> {
    frame.get(8..16)?.try_into().ok().map(i64::from_be_bytes)
}

/// A watch notification frame (ZooKeeper 3.8 sends zxid -1).
pub fn notification_frame(ev: &WatcherEvent) -> Vec<u8> {
    reply_frame(xid::NOTIFICATION, Zxid(-1), 0, &ev.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rzk_proto::multi::OpResult;
    use rzk_proto::records::{Create2Response, CreateResponse, Stat};

    fn res(reply: TxnReply) -> ApplyResult {
        ApplyResult {
            zxid: Zxid(1),
            reply,
            changes: vec![],
        }
    }

    #[test]
    fn bodies() {
        let stat = Stat {
            czxid: 1,
            ..Default::default()
        };
        let created = res(TxnReply::Created {
            path: "/a".into(),
            stat: stat.clone(),
        });
        assert_eq!(
            write_reply_body(1, &created).unwrap(),
            CreateResponse { path: "/a".into() }.to_bytes()
        );
        let b = write_reply_body(15, &created).unwrap();
        assert_eq!(b.len(), 4 + 2 + 68);
        assert_eq!(Create2Response::from_bytes(&b).unwrap().stat, stat);
        assert_eq!(write_reply_body(19, &created).unwrap(), b);
        assert_eq!(write_reply_body(21, &created).unwrap(), b);
        assert_eq!(
            write_reply_body(2, &res(TxnReply::Deleted)).unwrap(),
            Vec::<u8>::new()
        );
        assert_eq!(
            write_reply_body(5, &res(TxnReply::SetData(stat.clone())))
                .unwrap()
                .len(),
            68
        );
        assert_eq!(
            write_reply_body(2, &res(TxnReply::Error(ErrorCode::NoNode))),
            Err(ErrorCode::NoNode)
        );
        let failed = res(TxnReply::Multi(vec![
            OpResult::Error(0),
            OpResult::Error(-101),
        ]));
        let b = write_reply_body(14, &failed).unwrap();
        assert_eq!(
            MultiResponse::from_bytes(&b).unwrap().results,
            vec![OpResult::Error(0), OpResult::Error(-101)]
        );
    }

    /// The one-buffer frame is the header-plus-body frame, for every kind of reply.
    #[test]
    fn frames_match_header_plus_body() {
        let stat = Stat {
            czxid: 7,
            mzxid: 9,
            version: 3,
            ..Default::default()
        };
        let created = || TxnReply::Created {
            path: "/some/path".into(),
            stat: stat.clone(),
        };
        let cases = [
            (1, created()),
            (15, created()),
            (19, created()),
            (5, TxnReply::SetData(stat.clone())),
            (7, TxnReply::SetAcl(stat.clone())),
            (2, TxnReply::Deleted),
            (5, TxnReply::Error(ErrorCode::BadVersion)),
            (2, TxnReply::Error(ErrorCode::Ok)),
            (
                14,
                TxnReply::Multi(vec![OpResult::SetData(stat.clone()), OpResult::Delete]),
            ),
            (
                14,
                TxnReply::Multi(vec![OpResult::Error(0), OpResult::Error(-101)]),
            ),
        ];
        for (op, reply) in cases {
            let r = res(reply);
            let expected = match write_reply_body(op, &r) {
                Ok(body) => reply_frame(42, Zxid(0x1_0000_0005), 0, &body),
                Err(code) => reply_frame(42, Zxid(0x1_0000_0005), code.code(), &[]),
            };
            assert_eq!(
                write_reply_frame(42, Zxid(0x1_0000_0005), op, &r),
                expected,
                "op {op}: {:?}",
                r.reply
            );
        }
    }
}
