//! The write pipeline's input: a [`Job`] is one client request (or internal write) on
//! its way from a connection (`net/conn.rs`), the expiry timer or the reaper
//! (`node/timers.rs`) to the driver (`node/driver.rs`), which preps, proposes and
//! commits it; the applier (`node/apply.rs`) answers it.

use crate::auth::AuthInfo;
use crate::prep::WriteRequest;
use crate::watch::ConnId;
use rzk_proto::records::ReconfigRequest;
use rzk_proto::{ErrorCode, SessionId};
use std::sync::atomic::{AtomicUsize, Ordering};
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
/// `Config::pipeline_bytes`), at least two requests of `jute.maxbuffer`.
pub fn pipeline_budget(config: &crate::config::Config) -> usize {
    config
        .pipeline_bytes
        .unwrap_or(PIPELINE_BYTES)
        .max(config.jute_max_buffer.saturating_mul(2))
}

/// The pipeline's byte budget ([`PIPELINE_BYTES`]): bytes of client requests admitted
/// and not yet answered. Taking and giving back are an atomic add and subtract (the
/// write path pays a few instructions per request); only a request that does not fit
/// waits, woken when bytes come back.
#[derive(Debug)]
pub struct ByteBudget {
    used: AtomicUsize,
    cap: usize,
    /// Requests waiting for room (givers wake them only then).
    waiting: AtomicUsize,
    room: tokio::sync::Notify,
}

impl ByteBudget {
    /// A budget of `cap` bytes (at least 1).
    pub fn new(cap: usize) -> ByteBudget {
        ByteBudget {
            used: AtomicUsize::new(0),
            cap: cap.max(1),
            waiting: AtomicUsize::new(0),
            room: tokio::sync::Notify::new(),
        }
    }

    /// Bytes admitted and not yet given back.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Takes `bytes` of a request (at most the whole budget), waiting until they fit.
    pub async fn admit(self: &Arc<Self>, bytes: usize) -> Admitted {
        let n = bytes.min(self.cap);
        if !self.try_take(n) {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            loop {
                let notified = self.room.notified();
                tokio::pin!(notified);
                // Registered before the check: bytes given back after a failed check
                // wake this waiter.
                notified.as_mut().enable();
                if self.try_take(n) {
                    break;
                }
                notified.await;
            }
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        Admitted(Some((self.clone(), n)))
    }

    fn try_take(&self, n: usize) -> bool {
        let mut cur = self.used.load(Ordering::SeqCst);
        loop {
            if cur.saturating_add(n) > self.cap {
                return false;
            }
            match self
                .used
                .compare_exchange_weak(cur, cur + n, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    fn give_back(&self, n: usize) {
        let before = self.used.fetch_sub(n, Ordering::SeqCst);
        debug_assert!(before >= n, "gave back {n} bytes of {before} admitted");
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.room.notify_waiters();
        }
    }
}

/// A job's share of the pipeline's [`ByteBudget`], given back when the job is dropped:
/// once answered, or abandoned. Internal jobs and forwarded ones hold none.
#[derive(Debug, Default)]
pub struct Admitted(Option<(Arc<ByteBudget>, usize)>);

impl Admitted {
    /// The bytes held (0 for none).
    pub fn bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |(_, n)| *n)
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some((budget, n)) = self.0.take() {
            budget.give_back(n);
        }
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
        let budget = Arc::new(ByteBudget::new(10));
        let a = budget.admit(6).await;
        assert_eq!((a.bytes(), budget.used()), (6, 6));
        let second = budget.admit(6);
        tokio::pin!(second);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut second)
                .await
                .is_err(),
            "6 + 6 bytes admitted within a budget of 10"
        );
        drop(a);
        let b = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("woken when the bytes came back");
        assert_eq!((b.bytes(), budget.used()), (6, 6));
        drop(b);
        // A request larger than the whole budget takes all of it, no more.
        let big = budget.admit(1_000).await;
        assert_eq!((big.bytes(), budget.used()), (10, 10));
        drop(big);
        assert_eq!(Admitted::default().bytes(), 0);
        assert_eq!(budget.used(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_waiters_all_get_through_and_the_budget_holds() {
        let budget = Arc::new(ByteBudget::new(100));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let (budget, peak) = (budget.clone(), peak.clone());
                tokio::spawn(async move {
                    for _ in 0..50 {
                        let a = budget.admit(10 + i % 40).await;
                        peak.fetch_max(budget.used(), Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        drop(a);
                    }
                })
            })
            .collect();
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .expect("a waiter was never woken")
                .expect("task");
        }
        assert!(peak.load(Ordering::SeqCst) <= 100, "over the budget");
        assert_eq!(budget.used(), 0);
    }
}
