//! The write pipeline's input: a [`Job`] is one client request (or internal write) on
//! its way from a connection (`net/conn.rs`), the expiry timer or the reaper
//! (`node/timers.rs`) to the driver (`node/driver.rs`), which preps, proposes and
//! commits it; the applier (`node/apply.rs`) answers it.

use crate::auth::AuthInfo;
use crate::prep::WriteRequest;
use crate::watch::ConnId;
use rzk_proto::records::ReconfigRequest;
use rzk_proto::{ErrorCode, SessionId};
use std::sync::Arc;
use std::time::Instant;

/// Capacity of the queue from connections into the write pipeline.
pub const WRITE_QUEUE_CAPACITY: usize = 4096;

/// Who submitted a pipeline job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Conn(ConnId),
    /// Session expiry or the container reaper: no reply.
    Internal,
}

/// What a pipeline job asks for.
#[derive(Debug, Clone)]
pub enum JobKind {
    Write(WriteRequest),
    /// A request refused before prep that ZooKeeper still logs as an error txn (it
    /// consumes a zxid). `op` and `body` are the request as the client sent it: a learner
    /// forwards them to the leader, whose prep fails them the same way and logs the error
    /// txn (as a ZooKeeper follower forwards every write without reading it).
    ErrorTxn {
        code: ErrorCode,
        op: i32,
        body: bytes::Bytes,
    },
    /// The reconfig request (opcode 16): prepared by the leader's
    /// [`crate::prep::Prep::prepare_reconfig`], forwarded there by learners.
    Reconfig(ReconfigRequest),
    /// `sync`: replies once every earlier job has been applied; no txn. The path is
    /// echoed in the reply, `None` for a null one (as ZooKeeper echoes null).
    Sync(Option<String>),
    /// Stops the pipeline after every earlier job (server shutdown).
    Stop,
}

/// One unit of work for the write pipeline.
#[derive(Debug, Clone)]
pub struct Job {
    pub origin: Origin,
    /// The client's session; [`SessionId::NONE`] for the server's own writes.
    pub session: SessionId,
    pub xid: i32,
    pub kind: JobKind,
    /// The client's identities, shared with its connection (cloned per write as a
    /// pointer, not as a list of strings).
    pub auth: Arc<AuthInfo>,
    /// When the request was received (for latency stats).
    pub received: Instant,
}
