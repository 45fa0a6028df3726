//! `SemaphoreMutex`: a non-re-entrant lock, Curator's `InterProcessSemaphoreMutex`
//! (`InterProcessSemaphoreV2` with one lease).
//!
//! Layout as Curator: `<path>/locks` is an internal [`Mutex`] serialising lease takers;
//! `<path>/leases/_c_<uuid>-lease-<seq>` are the leases. A taker holds when the number of
//! leases is at most one, otherwise waits for the leases' children to change.
//!
//! One value shared by several tasks (an `Arc<SemaphoreMutex>`) excludes them as
//! separate processes are excluded: another task's acquire waits until the lease is
//! given back (or lost), as another thread waits in Curator. The task that holds the
//! lease gets an error if it acquires again through the same value, where Curator's
//! thread would wait for itself until its timeout. A lease found lost (node deleted,
//! session ended, disconnected too long: [`SemaphoreMutex::lost`]) no longer counts as
//! held: the next acquire deletes its node if the session still has it and takes a new
//! lease.
//!
//! [`SemaphoreMutex::lock`] returns a [`SemaphoreGuard`] that deletes the lease when
//! dropped, so an early return cannot leave the lease behind until the session ends.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Mutex as AsyncMutex, Notify};
use tokio::time::Instant;

use super::release::Releaser;
use super::util::{
    await_reconnect, await_watch, child_path, delete_guaranteed, delete_lost_node, lock_until,
    set_watch, spawn_lost_monitor, wait_given_back, wait_lost, AbandonGuard, LostReason,
    DEADLINE_DELETE_GRACE,
};
use super::Mutex;
use crate::error::{Error, Result};
use crate::types::{EventType, WatcherType};
use crate::Client;

/// Curator's lease node name.
pub const LEASE_NAME: &str = "lease-";

fn not_reentrant() -> Error {
    Error::Recipe("SemaphoreMutex is not re-entrant and this task already holds it".into())
}

#[derive(Debug)]
struct Lease {
    node: String,
    lost: watch::Receiver<Option<LostReason>>,
    /// The task that acquired it (`None` outside any task).
    owner: Option<tokio::task::Id>,
}

/// A distributed lock that is not re-entrant (Curator's `InterProcessSemaphoreMutex`).
#[derive(Debug)]
pub struct SemaphoreMutex {
    client: Client,
    leases: String,
    lock: Mutex,
    held: Arc<AsyncMutex<Option<Lease>>>,
    /// Signalled whenever the held lease is given back (release, guard), for an acquire
    /// of another task waiting on this value.
    released: Arc<Notify>,
    /// One acquire at a time on this value. Apart from `held`, which is only locked
    /// briefly, so `is_acquired`, `lost` and `release` answer while an acquire waits.
    acquiring: AsyncMutex<()>,
}

impl SemaphoreMutex {
    /// A lock on `path`; nothing is created until the first acquire.
    ///
    /// Curator: `new InterProcessSemaphoreMutex(client, path)`.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] if `path` is not a valid absolute znode path.
    pub fn new(client: Client, path: &str) -> Result<SemaphoreMutex> {
        rzk_proto::path::validate(path, false)?;
        Ok(SemaphoreMutex {
            lock: Mutex::new(client.clone(), &child_path(path, "locks"))?,
            leases: child_path(path, "leases"),
            client,
            held: Arc::new(AsyncMutex::new(None)),
            released: Arc::new(Notify::new()),
            acquiring: AsyncMutex::new(()),
        })
    }

    /// Waits until the lease is held and returns a guard that deletes it when dropped or
    /// when [`SemaphoreGuard::release`] is awaited.
    ///
    /// Curator: `InterProcessSemaphoreMutex.acquire()` with `release()` in a `finally`.
    ///
    /// # Errors
    /// [`Error::Recipe`] if the calling task already holds the lease through this value
    /// (not re-entrant; another task waits instead); session errors such as [`Error::SessionExpired`] while waiting; server errors on
    /// the lock path (e.g. NOAUTH). Our nodes are deleted on every error.
    pub async fn lock(&self) -> Result<SemaphoreGuard> {
        match self.acquire_inner(None).await? {
            Some(node) => Ok(self.guard(node)),
            None => Err(Error::Timeout),
        }
    }

    /// Like [`SemaphoreMutex::lock`], waiting at most `wait`; `Ok(None)` if the lease was
    /// not acquired in time.
    ///
    /// Curator: `InterProcessSemaphoreMutex.acquire(time, unit)`.
    ///
    /// # Errors
    /// As [`SemaphoreMutex::lock`].
    pub async fn try_lock(&self, wait: Duration) -> Result<Option<SemaphoreGuard>> {
        Ok(self
            .acquire_inner(Some(Instant::now() + wait))
            .await?
            .map(|node| self.guard(node)))
    }

    fn guard(&self, node: String) -> SemaphoreGuard {
        SemaphoreGuard {
            client: self.client.clone(),
            held: self.held.clone(),
            released: self.released.clone(),
            node,
            releaser: Releaser::current(),
            done: false,
        }
    }

    /// Waits until the lease is held, without a guard: the caller must call
    /// [`SemaphoreMutex::release`] on every path (a `?` in between leaves the lease until
    /// the session ends); prefer [`SemaphoreMutex::lock`].
    ///
    /// Curator: `InterProcessSemaphoreMutex.acquire()`.
    ///
    /// # Errors
    /// As [`SemaphoreMutex::lock`].
    pub async fn acquire(&self) -> Result<()> {
        match self.acquire_inner(None).await? {
            Some(_) => Ok(()),
            None => Err(Error::Timeout),
        }
    }

    /// `Ok(false)` if not acquired within `wait`. Without a guard, as
    /// [`SemaphoreMutex::acquire`]; prefer [`SemaphoreMutex::try_lock`].
    ///
    /// Curator: `InterProcessSemaphoreMutex.acquire(time, unit)`.
    ///
    /// # Errors
    /// As [`SemaphoreMutex::lock`].
    pub async fn try_acquire(&self, wait: Duration) -> Result<bool> {
        Ok(self
            .acquire_inner(Some(Instant::now() + wait))
            .await?
            .is_some())
    }

    async fn acquire_inner(&self, deadline: Option<Instant>) -> Result<Option<String>> {
        // The calling task's own lease: refused at once, also while another task's
        // acquire waits for it (that acquire holds `acquiring`).
        if self.held_by_this_task().await {
            return Err(not_reentrant());
        }
        let Some(_acquiring) = lock_until(&self.acquiring, deadline).await else {
            return Ok(None);
        };
        // Another task's lease through this value: wait until it is given back or
        // lost. The calling task's own: an error (it would wait for itself).
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let mut lost = match &*self.held.lock().await {
                Some(l) if l.lost.borrow().is_none() => {
                    if l.owner == tokio::task::try_id() {
                        return Err(not_reentrant());
                    }
                    l.lost.clone()
                }
                _ => break,
            };
            if !wait_given_back(released.as_mut(), &mut lost, deadline).await {
                return Ok(None);
            }
        }
        // A lease that was lost: its node goes so it does not count against the new one.
        let old = self.held.lock().await.take().map(|l| l.node);
        if let Some(old) = old {
            delete_lost_node(&self.client, &old, deadline).await?;
        }
        // The internal lock as a guard: an acquire abandoned while it holds the lock
        // (its future dropped) gives it back.
        let internal = match deadline {
            None => self.lock.lock().await?,
            Some(d) => {
                let wait = d.saturating_duration_since(Instant::now());
                match self.lock.try_lock(wait).await? {
                    Some(g) => g,
                    None => return Ok(None),
                }
            }
        };
        let taken = self.take_lease(deadline).await;
        // Until the lease is recorded below, its guard deletes it if this future is
        // dropped (also while the internal lock is given back) or an error returns.
        let released = match deadline {
            None => internal.release().await,
            // A release that cannot finish at once (disconnected) goes on in the
            // background: try_lock returns near its deadline.
            Some(_) => tokio::time::timeout(DEADLINE_DELETE_GRACE, internal.release())
                .await
                .unwrap_or(Ok(())),
        };
        let taken = taken?;
        released?;
        Ok(match taken {
            None => None,
            Some((lease, node)) => {
                // Locked before the guard is disarmed: a future dropped while it waits
                // for `held` still deletes the lease.
                let mut held = self.held.lock().await;
                lease.disarm();
                let lost = spawn_lost_monitor(self.client.clone(), node.clone());
                *held = Some(Lease {
                    node: node.clone(),
                    lost,
                    owner: tokio::task::try_id(),
                });
                Some(node)
            }
        })
    }

    /// True while the calling task holds a lease of this value that was not lost.
    async fn held_by_this_task(&self) -> bool {
        matches!(&*self.held.lock().await,
            Some(l) if l.lost.borrow().is_none() && l.owner == tokio::task::try_id())
    }

    /// Takes a lease node and waits until it is one of at most one; `Ok(None)` when the
    /// deadline passed (the node is then deleted). A lease comes with its still armed
    /// guard: the caller disarms it once the lease is recorded.
    async fn take_lease(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<(AbandonGuard, String)>> {
        // Until the wait ends by itself, dropping its future deletes the lease node.
        let created =
            AbandonGuard::create(&self.client, &self.leases, LEASE_NAME, b"", deadline).await;
        let (abandon, ours) = match created {
            Ok(c) => c,
            // Disconnected until the deadline before the lease node could be made.
            Err(Error::ConnectionLoss) if deadline.is_some_and(|d| Instant::now() >= d) => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        match self.wait_for_lease(&ours, deadline).await {
            Ok(true) => Ok(Some((abandon, ours))),
            Ok(false) => abandon.give_up().await.map(|()| None),
            Err(e) => {
                if let Err(de) = abandon.give_up().await {
                    tracing::warn!(node = %ours, error = %de, "could not delete lease node after failure");
                }
                Err(e)
            }
        }
    }

    /// Waits until `ours` is one of at most one lease (`Ok(false)`: the deadline passed).
    /// Leaves the node to the caller in every case.
    async fn wait_for_lease(&self, ours: &str, deadline: Option<Instant>) -> Result<bool> {
        let name = rzk_proto::path::basename(ours).to_owned();
        loop {
            let set = self.client.get_children_w(&self.leases);
            let (children, w) =
                match set_watch(&self.client, &self.leases, WatcherType::Children, set).await {
                    Ok(x) => x,
                    Err(Error::ConnectionLoss) => {
                        await_reconnect(&self.client, deadline).await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
            if !children.contains(&name) {
                return Err(Error::Recipe(format!("lease node {ours} vanished")));
            }
            if children.len() <= 1 {
                return Ok(true);
            }
            let Some(ev) = await_watch(
                &self.client,
                &self.leases,
                WatcherType::Children,
                w,
                deadline,
            )
            .await
            else {
                return Ok(false);
            };
            if ev.event_type == EventType::None && ev.state.is_terminal() {
                return Err(Error::SessionExpired);
            }
        }
    }

    /// Deletes the lease taken with [`SemaphoreMutex::acquire`] (guaranteed delete: it
    /// waits for a reconnect, and continues in the background after a session timeout
    /// of disconnection, returning [`Error::DisconnectedPastSessionTimeout`]).
    ///
    /// Curator: `InterProcessSemaphoreMutex.release()`.
    ///
    /// # Errors
    /// [`Error::Recipe`] if the lease is not held; server errors of the delete (NOAUTH);
    /// [`Error::DisconnectedPastSessionTimeout`].
    pub async fn release(&self) -> Result<()> {
        let lease = self.held.lock().await.take();
        self.released.notify_waiters();
        match lease {
            Some(l) => delete_guaranteed(&self.client, &l.node).await,
            None => Err(Error::Recipe("release of a lock that is not held".into())),
        }
    }

    /// True while this value holds the lease and no loss was detected.
    ///
    /// Curator: `InterProcessSemaphoreMutex.isAcquiredInThisProcess()`.
    pub async fn is_acquired(&self) -> bool {
        matches!(&*self.held.lock().await, Some(l) if l.lost.borrow().is_none())
            && !super::util::heard_too_long_ago(&self.client)
    }

    /// Resolves when the held lease is lost (at once with `NotHeld` if not held).
    pub async fn lost(&self) -> LostReason {
        let rx = match &*self.held.lock().await {
            Some(l) => l.lost.clone(),
            None => return LostReason::NotHeld,
        };
        wait_lost(rx).await
    }
}

/// The lease of a [`SemaphoreMutex`], returned by [`SemaphoreMutex::lock`] and
/// [`SemaphoreMutex::try_lock`] (Curator's `Lease`).
///
/// Dropping it deletes the lease node in the background on the runtime it was created
/// on (guaranteed delete); await [`SemaphoreGuard::release`] to see errors.
#[derive(Debug)]
#[must_use = "the lease is released as soon as the guard is dropped"]
pub struct SemaphoreGuard {
    client: Client,
    held: Arc<AsyncMutex<Option<Lease>>>,
    released: Arc<Notify>,
    node: String,
    releaser: Releaser,
    done: bool,
}

/// Forgets the lease on `node` if it is the current one; true if it was.
fn forget(held: &mut Option<Lease>, node: &str) -> bool {
    if held.as_ref().is_some_and(|l| l.node == node) {
        *held = None;
        true
    } else {
        false
    }
}

impl SemaphoreGuard {
    /// The lease node.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Deletes the lease now (Curator: `Lease.close()`).
    ///
    /// # Errors
    /// [`Error::Recipe`] if the lease was already given back with
    /// [`SemaphoreMutex::release`]; server errors of the delete (e.g. [`Error::NoAuth`]).
    /// A short connection loss is not an error; [`Error::DisconnectedPastSessionTimeout`]
    /// after a session timeout of disconnection (the delete continues in the background).
    pub async fn release(mut self) -> Result<()> {
        self.done = true;
        if !forget(&mut *self.held.lock().await, &self.node) {
            return Err(Error::Recipe(format!(
                "lease {} was already released",
                self.node
            )));
        }
        self.released.notify_waiters();
        delete_guaranteed(&self.client, &self.node).await
    }
}

impl Drop for SemaphoreGuard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Ok(mut held) = self.held.try_lock() {
            if forget(&mut held, &self.node) {
                drop(held);
                self.released.notify_waiters();
                self.releaser
                    .delete("semaphore guard", self.client.clone(), self.node.clone());
            }
            return;
        }
        let (held, released, client, node, releaser) = (
            self.held.clone(),
            self.released.clone(),
            self.client.clone(),
            self.node.clone(),
            self.releaser.clone(),
        );
        self.releaser.spawn("semaphore guard", async move {
            if forget(&mut *held.lock().await, &node) {
                released.notify_waiters();
                releaser.delete("semaphore guard", client, node);
            }
        });
    }
}
