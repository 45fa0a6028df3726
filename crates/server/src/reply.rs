//! Success bodies of write replies, per request opcode. Must never change state.

use crate::tree::{ApplyResult, TxnReply};
use rzk_proto::ErrorCode;

/// The reply body for a write with request opcode `op`; `Err(code)` for a header-only
/// error reply.
pub fn write_reply_body(_op: i32, result: &ApplyResult) -> Result<Vec<u8>, ErrorCode> {
    match &result.reply {
        TxnReply::Error(c) if *c != ErrorCode::Ok => Err(*c),
        _ => Ok(Vec::new()),
    }
}
