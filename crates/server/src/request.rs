//! Decoding a client frame (after the handshake) into a typed request, and which
//! decoding failures are answered with which error (and/or a closed connection).
//! Must never touch the tree, sessions or sockets.

use crate::prep::WriteRequest;
use rzk_proto::multi::MultiRequest;
use rzk_proto::records::*;
use rzk_proto::ErrorCode;

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
    Sync(String),
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
    /// the write path as `Prep::error_txn(.., reply)`.
    pub log_error_txn: bool,
}

/// Decodes a request body.
pub fn decode(
    header: &RequestHeader,
    _body: &[u8],
    _max_buffer: usize,
) -> Result<Request, RequestError> {
    let _ = header;
    Err(RequestError {
        reply: Some(ErrorCode::Unimplemented),
        close: true,
        log_error_txn: false,
    })
}
