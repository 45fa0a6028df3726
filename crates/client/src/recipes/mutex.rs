//! `Mutex`: a re-entrant distributed lock, compatible with Curator's `InterProcessMutex`.
//!
//! Each attempt creates `<path>/_c_<uuid>-lock-<seq>` (ephemeral sequential, protected) and
//! watches only its predecessor, so a release wakes exactly one waiter. Re-entrant per
//! `Mutex` value: `acquire` on a value that already holds the lock only bumps a count.
//! The holder can learn it lost the lock ([`Mutex::lost`]): node deleted, session ended,
//! or disconnected longer than the session timeout. Never assume the lock is still held
//! after `lost()` fired.

use std::time::Duration;

use tokio::sync::{watch, Mutex as AsyncMutex};
use tokio::time::Instant;

use super::lock_internals::{LockCore, LockKind};
use super::util::{delete_guaranteed, spawn_lost_monitor, wait_lost, LostReason};
use crate::error::{Error, Result};
use crate::Client;

#[derive(Debug)]
pub(crate) struct Held {
    pub node: String,
    pub count: usize,
    pub lost: watch::Receiver<Option<LostReason>>,
}

/// A distributed re-entrant mutex.
#[derive(Debug)]
pub struct Mutex {
    core: LockCore,
    held: AsyncMutex<Option<Held>>,
    /// For a read lock: the write lock of the same `ReadWriteLock` (its holder may read).
    pub(crate) writer: Option<std::sync::Arc<Mutex>>,
}

impl Mutex {
    /// A lock on `path` (Curator's `InterProcessMutex(client, path)`).
    pub fn new(client: Client, path: &str) -> Result<Mutex> {
        Self::with_kind(client, path, LockKind::Exclusive)
    }

    pub(crate) fn with_kind(client: Client, path: &str, kind: LockKind) -> Result<Mutex> {
        Ok(Mutex {
            core: LockCore::new(client, path, kind)?,
            held: AsyncMutex::new(None),
            writer: None,
        })
    }

    /// Sets the data stored in lock nodes (Curator stores the client's address).
    pub fn with_node_data(mut self, data: &[u8]) -> Self {
        self.core.data = data.to_vec();
        self
    }

    /// Waits until the lock is held.
    pub async fn acquire(&self) -> Result<()> {
        if self.acquire_inner(None).await? {
            Ok(())
        } else {
            Err(Error::Timeout)
        }
    }

    /// Waits up to `wait`; `Ok(false)` if the lock was not acquired in time.
    pub async fn try_acquire(&self, wait: Duration) -> Result<bool> {
        self.acquire_inner(Some(Instant::now() + wait)).await
    }

    async fn acquire_inner(&self, deadline: Option<Instant>) -> Result<bool> {
        let mut held = self.held.lock().await;
        if let Some(h) = held.as_mut() {
            if h.lost.borrow().is_none() {
                h.count += 1;
                return Ok(true);
            }
            // The previous hold was lost; its node may still exist if the session
            // survived: remove it so the new attempt does not queue behind it.
            let old = h.node.clone();
            *held = None;
            delete_guaranteed(&self.core.client, &old).await?;
        }
        let skip_wait = match &self.writer {
            Some(w) => w.is_acquired().await,
            None => false,
        };
        match self.core.attempt(deadline, skip_wait).await? {
            None => Ok(false),
            Some(node) => {
                let lost = spawn_lost_monitor(self.core.client.clone(), node.clone());
                *held = Some(Held {
                    node,
                    count: 1,
                    lost,
                });
                Ok(true)
            }
        }
    }

    /// Releases one acquisition; the node is deleted when the count reaches zero.
    /// After the last release this value no longer holds the lock, whatever is returned:
    /// the deletion survives connection loss (Curator's guaranteed delete; it continues in
    /// the background if the session stays disconnected), so only errors such as NOAUTH
    /// are reported.
    pub async fn release(&self) -> Result<()> {
        let mut held = self.held.lock().await;
        let Some(h) = held.as_mut() else {
            return Err(Error::Recipe("release of a lock that is not held".into()));
        };
        h.count -= 1;
        if h.count > 0 {
            return Ok(());
        }
        let node = h.node.clone();
        *held = None;
        // Not held from here on: `is_acquired`, `node` and `lost` must not wait for a
        // delete that may span a reconnect (up to twice the session timeout).
        drop(held);
        delete_guaranteed(&self.core.client, &node).await
    }

    /// True while this value holds the lock and no loss was detected.
    pub async fn is_acquired(&self) -> bool {
        matches!(&*self.held.lock().await, Some(h) if h.lost.borrow().is_none())
    }

    /// The path of our lock node while held.
    pub async fn node(&self) -> Option<String> {
        self.held.lock().await.as_ref().map(|h| h.node.clone())
    }

    /// Resolves when the held lock is lost (at once with `NotHeld` if not held).
    pub async fn lost(&self) -> LostReason {
        let rx = match &*self.held.lock().await {
            Some(h) => h.lost.clone(),
            None => return LostReason::NotHeld,
        };
        wait_lost(rx).await
    }

    /// Current contenders' node paths in lock order (first = holder).
    pub async fn participant_nodes(&self) -> Result<Vec<String>> {
        self.core.participant_nodes().await
    }
}
