//! `ReadWriteLock`: Curator's `InterProcessReadWriteLock` on one path.
//!
//! Readers create `_c_<uuid>-__READ__<seq>`, writers `_c_<uuid>-__WRIT__<seq>`, all under
//! the same path and sorted by sequence. A writer holds when it is first; a reader holds
//! when no writer is ahead of it and otherwise watches the first writer ahead. Readers
//! arriving after a waiting writer queue behind it, so writers are not starved. The
//! write-lock holder may also take the read lock (downgrade), as in Curator: the task
//! that holds it, as Curator's thread. Both sides are re-entrant per task
//! ([`super::Mutex`]): tasks sharing one `ReadWriteLock` value take turns even for
//! reads, so give each concurrent reader its own value (they are cheap: no node exists
//! until a lock is taken).

use std::sync::Arc;

use super::lock_internals::LockKind;
use super::Mutex;
use crate::error::Result;
use crate::Client;

/// A pair of locks sharing one path (Curator's `InterProcessReadWriteLock`): take the
/// shared side with `read_lock().lock()`, the exclusive side with `write_lock().lock()`;
/// both return a [`super::MutexGuard`] that releases on drop.
#[derive(Debug)]
pub struct ReadWriteLock {
    read: Mutex,
    write: Arc<Mutex>,
}

impl ReadWriteLock {
    /// A read-write lock on `path`; nothing is created until the first acquire.
    ///
    /// Curator: `new InterProcessReadWriteLock(client, path)`.
    ///
    /// # Errors
    /// [`Error::InvalidPath`](crate::Error::InvalidPath) if `path` is not a valid absolute
    /// znode path.
    pub fn new(client: Client, path: &str) -> Result<ReadWriteLock> {
        let write = Arc::new(Mutex::with_kind(client.clone(), path, LockKind::Write)?);
        let mut read = Mutex::with_kind(client, path, LockKind::Read)?;
        read.writer = Some(write.clone());
        Ok(ReadWriteLock { read, write })
    }

    /// The shared (read) lock; re-entrant. Held while no writer is ahead in line; the holder
    /// of the write lock may take it too (downgrade).
    ///
    /// Curator: `InterProcessReadWriteLock.readLock()`.
    pub fn read_lock(&self) -> &Mutex {
        &self.read
    }

    /// The exclusive (write) lock; re-entrant.
    ///
    /// Curator: `InterProcessReadWriteLock.writeLock()`.
    pub fn write_lock(&self) -> &Mutex {
        &self.write
    }
}
