//! Curator-compatible recipes built on [`crate::Client`], one file each.
//!
//! Node names follow Apache Curator (`_c_<uuid>-lock-<seq>`, `__READ__`/`__WRIT__`,
//! `latch-`, `lease-`, `queue-`) so Rust and Java processes interoperate on the same paths.
//! Recipes never retry forever and never leave their own nodes behind on error or timeout;
//! a waiter that gives up takes its one-shot watch off the server too, unless another
//! waiter of the same client shares it (`Client::remove_unused_watch`), also when its
//! future is dropped while the request setting the watch is still unanswered.
//!
//! # Locks and time
//!
//! A holder learns that it may have lost a lock or leadership from `lost()`
//! ([`LostReason`]). Without fencing no ZooKeeper lock excludes two holders at every
//! instant: the leader expires a session on its own clock, and a holder cut off from the
//! servers can only estimate when. rzk's recipes count from [`crate::Client::heard_at`]:
//! when the connection breaks, half the session timeout after it (a holder whose
//! connection breaks just before a ping has a sixth of the timeout to reconnect before
//! it is told); when the servers go silent, as soon as the client notices (two thirds
//! of the timeout after the last answer, as Curator's SUSPENDED). The leader may expire a session two thirds
//! of a timeout after `heard_at` at the earliest (a follower relays its clients'
//! activity only with its next ping answer, so what it heard just before it stalled can
//! be lost): in that worst case a silent holder is told at the moment its session may
//! first expire, and another client needs a commit and a notification more before it
//! takes the lock. Guard what the lock protects with the lock node's version or zxid
//! when that matters.
//!
//! A session connected to a read-only server (`can_be_read_only`) counts as not
//! connected for all of this: such a server is not the quorum, which may expire the
//! session meanwhile. A holder there is told of the loss as if disconnected, a leader
//! latch does not lead there, and the node of a lock reported lost is deleted once the
//! session is read-write again. A recipe's write refused there with NOTREADONLY (a
//! create, delete or sync, also the first one of an acquire begun there) waits for a
//! read-write server as after CONNECTIONLOSS, within the same bounds
//! ([`util::await_reconnect`]); Curator's recipes fail at once instead.

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
