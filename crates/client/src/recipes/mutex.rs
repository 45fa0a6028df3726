//! `Mutex`: a re-entrant distributed lock, compatible with Curator's `InterProcessMutex`.
//!
//! Each attempt creates `<path>/_c_<uuid>-lock-<seq>` (ephemeral sequential, protected) and
//! watches only its predecessor, so a release wakes exactly one waiter. Re-entrant per
//! task, as Curator's is per thread: `acquire` in the task that holds this value's lock
//! only bumps a count; another task acquiring through the same value (an
//! `Arc<Mutex>` shared by several tasks) waits until that hold is given back, so tasks
//! sharing one value exclude each other as processes do. (Outside any task, e.g. in
//! `block_on`, all callers count as one owner.) So concurrency inside one task is one
//! owner: several `lock()` futures of one value polled together in one task (`join_all`,
//! `select!`, `FuturesUnordered`) all get the lock at once. Give each contender a task of
//! its own (`tokio::spawn`).
//! The holder can learn it lost the lock ([`Mutex::lost`]): node deleted, session ended,
//! or disconnected for half the session timeout or longer ([`LostReason`]). Never assume the lock is still held
//! after `lost()` fired.
//!
//! [`Mutex::lock`] and [`Mutex::try_lock`] return a [`MutexGuard`] that gives back its
//! acquisition when dropped, so an early return (`?`) between acquire and release cannot
//! leave the lock node behind until the session ends. [`Mutex::acquire`] /
//! [`Mutex::release`] are the Curator-shaped pair without a guard.

use std::sync::{Arc, Mutex as StdMutex, MutexGuard as StdMutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{watch, Mutex as AsyncMutex, Notify};
use tokio::time::Instant;

use super::lock_internals::{LockCore, LockKind};
use super::release::Releaser;
use super::util::{
    delete_guaranteed, delete_lost_node, lock_until, spawn_lost_monitor, wait_given_back,
    wait_lost, LostReason,
};
use crate::error::{Error, Result};
use crate::Client;

#[derive(Debug)]
pub(crate) struct Held {
    pub node: String,
    pub count: usize,
    pub lost: watch::Receiver<Option<LostReason>>,
    /// The task that took the hold (`None`: outside any task): only it re-enters.
    pub owner: Option<tokio::task::Id>,
}

/// A distributed re-entrant mutex (Curator's `InterProcessMutex`). Take it with
/// [`Mutex::lock`] (a guard that releases on drop) or [`Mutex::acquire`] /
/// [`Mutex::release`].
#[derive(Debug)]
pub struct Mutex {
    core: LockCore,
    /// This value's hold. A std mutex never held across an `.await`: `is_acquired`,
    /// `node`, `lost` and a guard's drop never wait for an acquire in progress.
    held: Arc<StdMutex<Option<Held>>>,
    /// Told when a hold of this value ends (its last acquisition given back).
    released: Arc<Notify>,
    /// Taken for the whole of an acquire attempt, waiting for another task's hold of
    /// this value included (one attempt of this value at a time).
    attempt: AsyncMutex<()>,
    /// For a read lock: the write lock of the same `ReadWriteLock` (its holder may read).
    pub(crate) writer: Option<std::sync::Arc<Mutex>>,
}

impl Mutex {
    /// A re-entrant lock on `path`; nothing is created until the first acquire.
    ///
    /// Curator: `new InterProcessMutex(client, path)`.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] if `path` is not a valid absolute znode path.
    pub fn new(client: Client, path: &str) -> Result<Mutex> {
        Self::with_kind(client, path, LockKind::Exclusive)
    }

    pub(crate) fn with_kind(client: Client, path: &str, kind: LockKind) -> Result<Mutex> {
        Ok(Mutex {
            core: LockCore::new(client, path, kind)?,
            held: Arc::new(StdMutex::new(None)),
            released: Arc::new(Notify::new()),
            attempt: AsyncMutex::new(()),
            writer: None,
        })
    }

    /// Sets the data stored in this value's lock nodes (Curator stores the client's
    /// address; [`super::LeaderElection`] stores the participant id).
    pub fn with_node_data(mut self, data: &[u8]) -> Self {
        self.core.data = data.to_vec();
        self
    }

    /// Waits until the lock is held and returns a guard that releases this acquisition
    /// when dropped or when [`MutexGuard::release`] is awaited. This is the way to hold a
    /// lock across code that may return early: the lock node is deleted (in the
    /// background, with guaranteed-delete semantics) as soon as the guard goes away.
    ///
    /// Re-entrant per task: a second `lock` in the task that holds this value's lock
    /// returns a second guard; the node is deleted when the last guard (and the last
    /// [`Mutex::acquire`]) has been given back. Another task locking the same value waits
    /// until then, as another client would.
    ///
    /// Curator: `InterProcessMutex.acquire()` followed by `release()` in a `finally`.
    ///
    /// # Errors
    /// [`Error::SessionExpired`] or other session errors if the session ends while
    /// waiting, an [`Error`] from the server for the lock path (e.g. NOAUTH). Our lock
    /// node is deleted on every error.
    pub async fn lock(&self) -> Result<MutexGuard> {
        match self.acquire_inner(None).await? {
            Some(node) => Ok(self.guard(node)),
            None => Err(Error::Timeout),
        }
    }

    /// Like [`Mutex::lock`], but waits at most `wait`; `Ok(None)` if the lock was not
    /// acquired in time (our lock node is then already deleted; when the session is
    /// disconnected at the deadline, it is deleted in the background once it reconnects).
    ///
    /// Curator: `InterProcessMutex.acquire(time, unit)`.
    ///
    /// # Errors
    /// As [`Mutex::lock`].
    pub async fn try_lock(&self, wait: Duration) -> Result<Option<MutexGuard>> {
        Ok(self
            .acquire_inner(Some(Instant::now() + wait))
            .await?
            .map(|node| self.guard(node)))
    }

    fn guard(&self, node: String) -> MutexGuard {
        MutexGuard {
            client: self.core.client.clone(),
            held: self.held.clone(),
            released: self.released.clone(),
            node,
            releaser: Releaser::current(),
            done: false,
            deleting: None,
        }
    }

    /// Waits until the lock is held, without a guard: the caller must call
    /// [`Mutex::release`] once for every successful `acquire`, on every path. A `?`
    /// between the two leaves the lock node (and so the lock) held until the session
    /// ends; prefer [`Mutex::lock`].
    ///
    /// Curator: `InterProcessMutex.acquire()`.
    ///
    /// # Errors
    /// As [`Mutex::lock`].
    pub async fn acquire(&self) -> Result<()> {
        match self.acquire_inner(None).await? {
            Some(_) => Ok(()),
            None => Err(Error::Timeout),
        }
    }

    /// Waits up to `wait`; `Ok(false)` if the lock was not acquired in time. Without a
    /// guard, as [`Mutex::acquire`]; prefer [`Mutex::try_lock`].
    ///
    /// Curator: `InterProcessMutex.acquire(time, unit)`.
    ///
    /// # Errors
    /// As [`Mutex::lock`].
    pub async fn try_acquire(&self, wait: Duration) -> Result<bool> {
        Ok(self
            .acquire_inner(Some(Instant::now() + wait))
            .await?
            .is_some())
    }

    /// Takes one acquisition; returns the held node, or `None` on timeout.
    async fn acquire_inner(&self, deadline: Option<Instant>) -> Result<Option<String>> {
        if let Some(node) = self.reenter() {
            return Ok(Some(node));
        }
        let Some(_attempt) = lock_until(&self.attempt, deadline).await else {
            return Ok(None);
        };
        // Another task's hold of this value: wait until it is given back (or lost).
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let lost = match &*self.state() {
                Some(h) if h.lost.borrow().is_none() => {
                    if h.owner == tokio::task::try_id() {
                        None
                    } else {
                        Some(h.lost.clone())
                    }
                }
                _ => break,
            };
            let Some(mut lost) = lost else {
                // Ours (taken by this task while it waited for the attempt lock).
                if let Some(node) = self.reenter() {
                    return Ok(Some(node));
                }
                continue;
            };
            if !wait_given_back(released.as_mut(), &mut lost, deadline).await {
                return Ok(None);
            }
        }
        // The previous hold was lost: its node goes before the new attempt.
        let old = self.state().take().map(|h| h.node);
        if let Some(old) = old {
            delete_lost_node(&self.core.client, &old, deadline).await?;
        }
        // A read lock whose write lock this value holds may read at once: asked when the
        // read would have to wait, not before its node exists (the write lock may be
        // released in between, and another client's writer take it).
        // Only the task holding the write lock may read through it: another task sharing
        // this lock value must wait for the writer like any other reader.
        let writer_held = || self.writer.as_ref().is_some_and(|w| w.held_by_this_task());
        match self.core.attempt(deadline, &writer_held).await? {
            None => Ok(None),
            Some(node) => {
                let lost = spawn_lost_monitor(self.core.client.clone(), node.clone());
                let mut held = self.state();
                debug_assert!(held.is_none(), "a hold appeared during our attempt");
                *held = Some(Held {
                    node: node.clone(),
                    count: 1,
                    lost,
                    owner: tokio::task::try_id(),
                });
                Ok(Some(node))
            }
        }
    }

    /// Gives back one acquisition taken with [`Mutex::acquire`]; the node is deleted when
    /// the count reaches zero. After the last release this value no longer holds the
    /// lock, whatever is returned: the deletion survives connection loss (Curator's
    /// guaranteed delete; it continues in the background if the session stays
    /// disconnected), so only errors such as NOAUTH are reported, and
    /// [`Error::DisconnectedPastSessionTimeout`] when the session has been disconnected
    /// for a session timeout (its node goes with the expired session). Do not mix with guards
    /// of the same hold: each acquisition is given back exactly once, by `release` or by
    /// its guard.
    ///
    /// Curator: `InterProcessMutex.release()`.
    ///
    /// # Errors
    /// [`Error::Recipe`] if this value does not hold the lock; a server error from the
    /// delete (e.g. [`Error::NoAuth`]); [`Error::DisconnectedPastSessionTimeout`].
    pub async fn release(&self) -> Result<()> {
        let last = {
            let mut held = self.state();
            let Some(h) = held.as_ref() else {
                return Err(Error::Recipe("release of a lock that is not held".into()));
            };
            let node = h.node.clone();
            give_back(&mut held, &node, &self.released)
        };
        // Not held from here on: `is_acquired`, `node` and `lost` do not wait for a
        // delete that may span a reconnect (up to a session timeout).
        match last {
            Some(node) => delete_guaranteed(&self.core.client, &node).await,
            None => Ok(()),
        }
    }

    /// True while this value holds the lock, no loss was detected, and a server heard
    /// from the session within half a session timeout (false at once after the process
    /// was stopped that long, before the loss is reported). Answers at once, also while
    /// another task of this value is waiting to acquire (false then).
    ///
    /// Curator: `InterProcessMutex.isAcquiredInThisProcess()`.
    pub async fn is_acquired(&self) -> bool {
        self.holds_now()
    }

    /// The path of our lock node while held (also after a detected loss, until the next
    /// acquire or the last release). Answers at once, as [`Mutex::is_acquired`].
    pub async fn node(&self) -> Option<String> {
        self.state().as_ref().map(|h| h.node.clone())
    }

    /// Resolves when the held lock is lost (at once with [`LostReason::NotHeld`] if not
    /// held). Curator reports this through a `ConnectionStateListener`.
    pub async fn lost(&self) -> LostReason {
        let rx = match &*self.state() {
            Some(h) => h.lost.clone(),
            None => return LostReason::NotHeld,
        };
        wait_lost(rx).await
    }

    /// A live hold taken by the calling task (the one that may re-enter it).
    fn held_by_this_task(&self) -> bool {
        matches!(&*self.state(),
            Some(h) if h.lost.borrow().is_none() && h.owner == tokio::task::try_id())
    }

    /// [`Mutex::is_acquired`] without the `async`.
    fn holds_now(&self) -> bool {
        matches!(&*self.state(), Some(h) if h.lost.borrow().is_none())
            && !super::util::heard_too_long_ago(&self.core.client)
    }

    /// This value's hold, locked for a moment (never across an `.await`).
    fn state(&self) -> StdMutexGuard<'_, Option<Held>> {
        lock_state(&self.held)
    }

    /// One more acquisition of a live hold this task took: its node.
    fn reenter(&self) -> Option<String> {
        let mut held = self.state();
        let h = held
            .as_mut()
            .filter(|h| h.lost.borrow().is_none() && h.owner == tokio::task::try_id())?;
        h.count += 1;
        Some(h.node.clone())
    }

    /// Current contenders' node paths in lock order (first = holder); empty if the lock
    /// path does not exist.
    ///
    /// Curator: `InterProcessMutex.getParticipantNodes()`.
    ///
    /// # Errors
    /// Any error of `getChildren` on the lock path other than NONODE.
    pub async fn participant_nodes(&self) -> Result<Vec<String>> {
        self.core.participant_nodes().await
    }
}

/// [`Mutex`]'s hold state, locked for a moment.
fn lock_state(held: &StdMutex<Option<Held>>) -> StdMutexGuard<'_, Option<Held>> {
    // Nothing panics while holding it, and a hold's fields stay valid if something did.
    held.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Takes one acquisition of the hold on `node` back. Returns the node to delete when it
/// was the last one; nothing when more acquisitions remain or when that hold is already
/// gone (released, or lost and replaced by a newer hold). The end of a hold is told to
/// `released` (tasks of the same value waiting for it).
fn give_back(held: &mut Option<Held>, node: &str, released: &Notify) -> Option<String> {
    let h = held.as_mut().filter(|h| h.node == node)?;
    h.count = h.count.saturating_sub(1);
    if h.count > 0 {
        return None;
    }
    *held = None;
    released.notify_waiters();
    Some(node.to_owned())
}

/// One acquisition of a [`Mutex`] (or of a [`super::ReadWriteLock`] side), returned by
/// [`Mutex::lock`] and [`Mutex::try_lock`].
///
/// Dropping the guard gives the acquisition back; when it was the last one the lock node
/// is deleted in the background on the runtime the guard was created on, retried across
/// reconnects like Curator's `delete().guaranteed()`. Errors of that background delete
/// can only be logged: await [`MutexGuard::release`] to see them. The guard does not
/// borrow the [`Mutex`] and may be moved to other tasks; the hold stays the task's that
/// took it, so the task it moved to must not `lock` the same value while it keeps the
/// guard (it would wait for itself).
#[derive(Debug)]
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard {
    client: Client,
    held: Arc<StdMutex<Option<Held>>>,
    released: Arc<Notify>,
    node: String,
    releaser: Releaser,
    done: bool,
    /// The node an unfinished [`MutexGuard::release`] is deleting.
    deleting: Option<String>,
}

impl MutexGuard {
    /// The lock node this guard's hold owns.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Gives this acquisition back now and waits for the lock node's delete when it was
    /// the last one (Curator: `InterProcessMutex.release()`).
    ///
    /// # Errors
    /// [`Error::Recipe`] if the hold this guard belonged to is already gone (given back
    /// with [`Mutex::release`], or lost and replaced by a newer acquire); a server error
    /// from the delete (e.g. [`Error::NoAuth`]). A short connection loss is not an
    /// error (the delete waits for the reconnect); [`Error::DisconnectedPastSessionTimeout`]
    /// once the session has been disconnected for a session timeout (the node goes with
    /// the expired session; the delete continues in the background).
    pub async fn release(mut self) -> Result<()> {
        let last = {
            let mut held = lock_state(&self.held);
            self.done = true;
            let current = held.as_ref().is_some_and(|h| h.node == self.node);
            if !current {
                return Err(Error::Recipe(format!(
                    "lock hold on {} is already gone (released or lost)",
                    self.node
                )));
            }
            give_back(&mut held, &self.node, &self.released)
        };
        match last {
            Some(node) => {
                // Dropped while deleting: `Drop` finishes the delete in the background.
                self.deleting = Some(node.clone());
                let r = delete_guaranteed(&self.client, &node).await;
                self.deleting = None;
                r
            }
            None => Ok(()),
        }
    }
}

impl Drop for MutexGuard {
    fn drop(&mut self) {
        if let Some(node) = self.deleting.take() {
            self.releaser
                .delete("mutex guard", self.client.clone(), node);
            return;
        }
        if self.done {
            return;
        }
        // Given back at once, so a following `lock` on the same `Mutex` sees the right
        // count; only the delete runs in the background.
        let last = give_back(&mut lock_state(&self.held), &self.node, &self.released);
        if let Some(node) = last {
            self.releaser
                .delete("mutex guard", self.client.clone(), node);
        }
    }
}
