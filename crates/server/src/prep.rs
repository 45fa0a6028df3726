//! The leader's request -> txn step: validation, ACL checks, versions, sequence numbers,
//! with an overlay of outstanding (prepared, not yet applied) changes. Must never apply
//! anything to the tree, do IO or read clocks (zxid and time are given).

use crate::auth::AuthInfo;
use crate::tree::DataTree;
use rzk_proto::multi::MultiRequest;
use rzk_proto::records::{
    CreateRequest, CreateTtlRequest, DeleteRequest, SetAclRequest, SetDataRequest,
};
use rzk_proto::txn::{Txn, TxnHeader, TxnRecord};
use rzk_proto::ErrorCode;

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
    DeleteContainer(String),
}

impl WriteRequest {
    /// The request opcode (also the txn type on success).
    pub fn op_code(&self) -> i32 {
        use rzk_proto::OpCode;
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

/// The leader's prep state.
#[derive(Debug)]
pub struct Prep {
    ttl_enabled: bool,
}

impl Prep {
    pub fn new(ttl_enabled: bool) -> Prep {
        Prep { ttl_enabled }
    }

    /// Turns a request into a txn. Never fails: errors become `ErrorTxn`.
    #[allow(clippy::too_many_arguments)]
    pub fn prepare(
        &mut self,
        _tree: &DataTree,
        session: i64,
        cxid: i32,
        _req: &WriteRequest,
        _auth: &AuthInfo,
        zxid: i64,
        time_ms: i64,
    ) -> TxnRecord {
        let _ = self.ttl_enabled;
        Self::error_txn(session, cxid, zxid, time_ms, ErrorCode::Unimplemented)
    }

    /// An error txn for a request rejected before prep (e.g. SESSIONEXPIRED, MARSHALLINGERROR).
    pub fn error_txn(
        session: i64,
        cxid: i32,
        zxid: i64,
        time_ms: i64,
        code: ErrorCode,
    ) -> TxnRecord {
        let txn = Txn::error(code);
        TxnRecord {
            header: TxnHeader {
                client_id: session,
                cxid,
                zxid,
                time: time_ms,
                txn_type: txn.txn_type(),
            },
            txn,
            digest: None,
        }
    }

    /// Drops overlay entries with zxid <= `zxid` (they are in the tree now).
    pub fn applied(&mut self, _zxid: i64) {}
}
