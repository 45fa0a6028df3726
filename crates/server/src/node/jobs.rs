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

/// Bytes of client requests the write pipeline holds at once, from a connection's hand-
/// over to the answer (ZooKeeper's default `largeRequestMaxBytes`, 100 MiB; at least
/// two requests of `jute.maxbuffer`: [`pipeline_budget`]). A connection whose request
/// does not fit waits, and reads nothing meanwhile: its client's TCP window closes.
/// Without a bound in bytes, clients pipelining 1 MB writes made the queue hold gigabytes
/// (adversarial-input review, session 42: 3.9 GB RSS from 10 sessions x 200 x 1 MB).
pub const PIPELINE_BYTES: usize = 100 * 1024 * 1024;

/// The pipeline's byte budget of `config`: [`PIPELINE_BYTES`] (or the test override
/// `Config::pipeline_bytes`), at least two requests of `jute.maxbuffer`, at most
/// `u32::MAX` (the semaphore's permits).
pub fn pipeline_budget(config: &crate::config::Config) -> usize {
    config
        .pipeline_bytes
        .unwrap_or(PIPELINE_BYTES)
        .max(config.jute_max_buffer.saturating_mul(2))
        .min(u32::MAX as usize)
}

/// A job's share of the pipeline's byte budget ([`PIPELINE_BYTES`]), given back when
/// the job is dropped: once answered, or abandoned. Internal jobs and forwarded ones
/// hold none.
#[derive(Debug, Default)]
pub struct Admitted(Option<tokio::sync::OwnedSemaphorePermit>);

impl Admitted {
    /// `bytes` of a request (at most `cap`, the whole budget) taken from `budget`,
    /// waiting until they are free.
    pub async fn wait(budget: &Arc<tokio::sync::Semaphore>, bytes: usize, cap: usize) -> Admitted {
        let n = bytes.min(cap).min(u32::MAX as usize) as u32;
        // The budget is never closed; a closed one would admit without holding.
        Admitted(budget.clone().acquire_many_owned(n).await.ok())
    }

    /// The bytes held (0 for none).
    pub fn bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |p| p.num_permits())
    }
}

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
#[derive(Debug)]
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
    /// The request's bytes in the pipeline's budget.
    pub admitted: Admitted,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn admitted_bytes_wait_for_room_and_come_back_on_drop() {
        let budget = Arc::new(tokio::sync::Semaphore::new(10));
        let a = Admitted::wait(&budget, 6, 10).await;
        assert_eq!(a.bytes(), 6);
        let second = Admitted::wait(&budget, 6, 10);
        tokio::pin!(second);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut second)
                .await
                .is_err(),
            "6 + 6 bytes admitted within a budget of 10"
        );
        drop(a);
        let b = second.await;
        assert_eq!((b.bytes(), budget.available_permits()), (6, 4));
        drop(b);
        // A request larger than the whole budget takes all of it, no more.
        let big = Admitted::wait(&budget, 1_000, 10).await;
        assert_eq!((big.bytes(), budget.available_permits()), (10, 0));
        drop(big);
        assert_eq!(Admitted::default().bytes(), 0);
        assert_eq!(budget.available_permits(), 10);
    }
}
