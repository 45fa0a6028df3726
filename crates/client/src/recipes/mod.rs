//! Curator-compatible recipes built on [`crate::Client`], one file each.
//!
//! Node names follow Apache Curator (`_c_<uuid>-lock-<seq>`, `__READ__`/`__WRIT__`,
//! `latch-`, `lease-`, `queue-`) so Rust and Java processes interoperate on the same paths.
//! Recipes never retry forever and never leave their own nodes behind on error or timeout.

mod barrier;
mod counter;
mod double_barrier;
mod herd_lock;
mod leader_election;
mod leader_latch;
pub(crate) mod lock_internals;
mod mutex;
mod queue;
mod release;
mod rwlock;
mod semaphore_mutex;
pub mod util;

pub use barrier::Barrier;
pub use counter::{SharedCounter, VersionedValue};
pub use double_barrier::DoubleBarrier;
pub use herd_lock::HerdLock;
pub use leader_election::{LeaderElection, Leadership};
pub use leader_latch::{LeaderLatch, LATCH_NAME};
pub use lock_internals::{LOCK_NAME, READ_LOCK_NAME, WRITE_LOCK_NAME};
pub use mutex::{Mutex, MutexGuard};
pub use queue::{DistributedQueue, QueueItem, QUEUE_ITEM_NAME};
pub use rwlock::ReadWriteLock;
pub use semaphore_mutex::{SemaphoreGuard, SemaphoreMutex, LEASE_NAME};
pub use util::LostReason;
