//! Success bodies of write replies, per request opcode (docs/CLIENT-PROTOCOL.md §6-§7).
//! Must never change state.

use crate::tree::{ApplyResult, TxnReply};
use rzk_proto::multi::MultiResponse;
use rzk_proto::opcode::xid;
use rzk_proto::records::{Create2Response, CreateResponse, SetAclResponse, SetDataResponse};
use rzk_proto::records::{ReplyHeader, WatcherEvent};
use rzk_proto::{ErrorCode, Jute, OpCode, Zxid};

/// The reply body for a write with request opcode `op`; `Err(code)` for a header-only
/// error reply. A failed multi is a success (err 0) whose body carries the errors.
pub fn write_reply_body(op: i32, result: &ApplyResult) -> Result<Vec<u8>, ErrorCode> {
    Ok(match &result.reply {
        TxnReply::Error(ErrorCode::Ok) => Vec::new(),
        TxnReply::Error(c) => return Err(*c),
        TxnReply::Created { path, stat } => {
            if op == OpCode::Create.code() {
                CreateResponse { path: path.clone() }.to_bytes()
            } else {
                Create2Response {
                    path: path.clone(),
                    stat: stat.clone(),
                }
                .to_bytes()
            }
        }
        TxnReply::SetData(stat) => SetDataResponse { stat: stat.clone() }.to_bytes(),
        TxnReply::SetAcl(stat) => SetAclResponse { stat: stat.clone() }.to_bytes(),
        TxnReply::Multi(results) => MultiResponse {
            results: results.clone(),
        }
        .to_bytes(),
        TxnReply::Deleted | TxnReply::SessionCreated | TxnReply::SessionClosed => Vec::new(),
    })
}

/// A reply frame: header + body.
pub fn reply_frame(xid: i32, zxid: Zxid, err: i32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 16 + body.len());
    crate::net::frame::encode_frame(&mut out, |w| {
        ReplyHeader {
            xid,
            zxid: zxid.0,
            err,
        }
        .write(w);
        w.extend_from_slice(body);
    });
    out
}

/// A watch notification frame (ZooKeeper 3.8 sends zxid -1).
pub fn notification_frame(ev: &WatcherEvent) -> Vec<u8> {
    reply_frame(xid::NOTIFICATION, Zxid(-1), 0, &ev.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rzk_proto::multi::OpResult;
    use rzk_proto::records::Stat;

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
}
