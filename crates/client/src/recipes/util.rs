//! Helpers shared by the recipes: parent creation, Curator's "protected" node names,
//! Curator's sort order for sequential nodes, and the "lock lost" monitor.
//!
//! Node naming must stay byte-compatible with Apache Curator so Rust and Java processes
//! contend on the same paths. Nothing here holds a lock or retries forever.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::types::{
    open_acl_unsafe, CreateMode, EventType, SessionState, WatchedEvent, WatcherType,
};
use crate::{Client, OneshotWatch};

/// Curator's protected-name prefix (`CreateBuilderImpl.PROTECTED_PREFIX`).
pub const PROTECTED_PREFIX: &str = "_c_";

/// A fresh protected prefix `_c_<uuid>-`, as Curator's `withProtection()` generates.
pub fn protected_prefix() -> String {
    format!("{PROTECTED_PREFIX}{}-", uuid::Uuid::new_v4())
}

/// Creates `path` and its missing ancestors as containers (persistent if the server
/// does not know containers), like Curator's `creatingParentContainersIfNeeded`.
pub async fn ensure_path(client: &Client, path: &str) -> Result<()> {
    if path == "/" || client.exists(path).await?.is_some() {
        return Ok(());
    }
    let mut cur = String::new();
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        cur.push('/');
        cur.push_str(comp);
        let r = client
            .create(&cur, b"", &open_acl_unsafe(), CreateMode::Container)
            .await;
        match r {
            Ok(_) | Err(Error::NodeExists) => {}
            Err(Error::Unimplemented) => {
                match client
                    .create(&cur, b"", &open_acl_unsafe(), CreateMode::Persistent)
                    .await
                {
                    Ok(_) | Err(Error::NodeExists) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How many times a create retries after the server reaped its container parent.
pub const REAPED_RETRIES: u32 = 5;

/// Creates `path` under a parent that may be a container: when the create answers
/// `NoNode` (the parent is missing, or the server's container reaper deleted it
/// between our `ensure_path` and this create), the parents are created again and the
/// create retried, up to [`REAPED_RETRIES`] times. Curator gets the same effect from
/// `creatingParentContainersIfNeeded()` on every create.
///
/// Returns the created path (with the sequence suffix for sequential modes).
///
/// # Errors
/// Whatever the create answers other than `NoNode`, or `NoNode` after the last retry.
pub async fn create_under_container(
    client: &Client,
    path: &str,
    data: &[u8],
    mode: CreateMode,
) -> Result<String> {
    let parent = rzk_proto::path::parent(path);
    let mut tries = 0;
    loop {
        match client.create(path, data, &open_acl_unsafe(), mode).await {
            Err(Error::NoNode) if tries < REAPED_RETRIES => {
                tries += 1;
                ensure_path(client, parent).await?;
            }
            r => return r,
        }
    }
}

/// Curator's `StandardLockInternalsDriver.fixForSorting`: the part after the last
/// occurrence of the lock name (or the whole name when absent).
pub fn fix_for_sorting<'a>(name: &'a str, lock_name: &str) -> &'a str {
    match name.rfind(lock_name) {
        Some(i) => &name[i + lock_name.len()..],
        None => name,
    }
}

/// Sorts child names by Curator's key for any of `lock_names` (applied in order).
pub fn sort_children(children: &mut [String], lock_names: &[&str]) {
    children.sort_by(|a, b| {
        let mut ka: &str = a;
        let mut kb: &str = b;
        for n in lock_names {
            ka = fix_for_sorting(ka, n);
            kb = fix_for_sorting(kb, n);
        }
        ka.cmp(kb)
    });
}

/// Joins a parent and a child name.
pub fn child_path(parent: &str, name: &str) -> String {
    rzk_proto::path::join(parent, name)
}

/// Finds a child created with a protected prefix (recovery after CONNECTIONLOSS on create).
/// A missing parent means no such child (as Curator's `findProtectedNodeInForeground`):
/// the create whose answer was lost may have failed for want of the parent, which the
/// caller then creates.
pub async fn find_protected(client: &Client, parent: &str, prefix: &str) -> Result<Option<String>> {
    match client.get_children(parent).await {
        Ok(children) => Ok(children
            .into_iter()
            .find(|c| c.starts_with(prefix))
            .map(|c| child_path(parent, &c))),
        Err(Error::NoNode) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Attempts at a protected create before giving up on repeated connection loss.
const PROTECTED_CREATE_TRIES: usize = 10;
/// How long a background guaranteed delete keeps trying before giving up (the session
/// normally ends, or the node is deleted, long before).
pub const GUARANTEED_DELETE_MAX: Duration = Duration::from_secs(600);

/// How long a recipe waits for the session to reconnect after CONNECTIONLOSS: twice the
/// session timeout. Servers expire a session up to one tickTime after its timeout, and
/// the client only learns of the expiry when it reconnects, so waiting just the timeout
/// would report CONNECTIONLOSS where the truth (SESSIONEXPIRED) is moments away.
pub fn reconnect_wait(client: &Client) -> Duration {
    (client.session_timeout() * 2).max(Duration::from_secs(1))
}

/// After CONNECTIONLOSS (or NOTREADONLY): waits until the session is connected to a
/// read-write server again (`Ok`), or returns the error that ends the wait (session
/// ended, or not read-write after [`reconnect_wait`] / `deadline`, as CONNECTIONLOSS).
///
/// A read-only server (`can_be_read_only`) does not end the wait: it refuses every
/// write a recipe needs (create, delete, sync) with NOTREADONLY and is not the quorum,
/// which may expire the session meanwhile (the module's rule, [`crate::recipes`]).
/// Curator's recipes instead fail at once with `NotReadOnlyException`.
pub async fn await_reconnect(client: &Client, deadline: Option<Instant>) -> Result<()> {
    let mut wait = reconnect_wait(client);
    if let Some(d) = deadline {
        wait = wait.min(d.saturating_duration_since(Instant::now()));
    }
    let mut st = client.state_watcher();
    let r = tokio::time::timeout(
        wait,
        st.wait_for(|s| *s == SessionState::Connected || s.is_terminal()),
    )
    .await;
    match r {
        Err(_) => Err(Error::ConnectionLoss),
        Ok(Err(_)) => Err(Error::Closed),
        Ok(Ok(s)) => match *s {
            SessionState::Connected => Ok(()),
            SessionState::Expired => Err(Error::SessionExpired),
            SessionState::AuthFailed => Err(Error::AuthFailed),
            _ => Err(Error::Closed),
        },
    }
}

/// How long a retry after NOTREADONLY pauses when the session already shows read-write
/// (the answer came from the read-only connection it has since left): a server that
/// answered NOTREADONLY on a read-write connection would otherwise be asked in a loop.
const NOT_READ_ONLY_PAUSE: Duration = Duration::from_millis(100);

/// [`await_reconnect`] after `failed`, the error of a write a recipe will try again:
/// CONNECTIONLOSS or NOTREADONLY (the session is on a read-only server). Any other
/// error is returned as it is.
pub(crate) async fn await_read_write_after(
    client: &Client,
    failed: Error,
    deadline: Option<Instant>,
) -> Result<()> {
    match failed {
        Error::ConnectionLoss => await_reconnect(client, deadline).await,
        Error::NotReadOnly => {
            if client.state() == SessionState::Connected {
                tokio::time::sleep(NOT_READ_ONLY_PAUSE).await;
            }
            await_reconnect(client, deadline).await
        }
        e => Err(e),
    }
}

/// Runs `op` until it answers something other than CONNECTIONLOSS or NOTREADONLY,
/// waiting for a read-write server between tries ([`await_read_write_after`]): for
/// steps a recipe may repeat after a lost answer (reads, watch sets, creates whose
/// NodeExists the caller takes as done, deletes whose NoNode it takes as done), as
/// Curator's retry loop repeats them. The error that ends a wait (the session ended, or
/// no read-write server within [`reconnect_wait`] / `deadline`) is returned.
pub(crate) async fn across_reconnects<T, F, Fut>(
    client: &Client,
    deadline: Option<Instant>,
    mut op: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    loop {
        match op().await {
            Err(e @ (Error::ConnectionLoss | Error::NotReadOnly)) => {
                await_read_write_after(client, e, deadline).await?
            }
            r => return r,
        }
    }
}

/// Creates a protected ephemeral-sequential node `parent/_c_<uuid>-<name>NNNNNNNNNN`,
/// creating parents as needed and recovering from connection loss the way Curator does:
/// after a CONNECTIONLOSS the create may have happened, so our protected prefix is looked
/// for before creating again. If it finally gives up, it makes a last effort to find and
/// delete a node it may have created, so no orphan keeps a lock queue blocked.
pub async fn create_protected_sequential(
    client: &Client,
    parent: &str,
    name: &str,
    data: &[u8],
) -> Result<String> {
    create_protected_sequential_with(client, parent, &protected_prefix(), name, data, None).await
}

/// [`create_protected_sequential`] with the protected `prefix` chosen by the caller (an
/// [`AbandonGuard`]'s, so that a create cut short by a dropped future can be found),
/// given up with CONNECTIONLOSS when a reconnect it waits for has not come by
/// `deadline` (a `try_lock`'s; a request already sent still waits for its answer or for
/// the connection to be declared lost).
async fn create_protected_sequential_with(
    client: &Client,
    parent: &str,
    prefix: &str,
    name: &str,
    data: &[u8],
    deadline: Option<Instant>,
) -> Result<String> {
    let prefix = prefix.to_owned();
    let path = child_path(parent, &format!("{prefix}{name}"));
    let mut maybe_created = false;
    let mut last_err = Error::ConnectionLoss;
    for _ in 0..PROTECTED_CREATE_TRIES {
        if maybe_created {
            match find_protected_synced(client, parent, &prefix).await {
                Ok(Some(p)) => return Ok(p),
                Ok(None) => {}
                // The sync needs a read-write server too.
                Err(e @ (Error::ConnectionLoss | Error::NotReadOnly)) => {
                    if let Err(e) = await_read_write_after(client, e, deadline).await {
                        last_err = e;
                        break;
                    }
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        let acl = open_acl_unsafe();
        let create = client.create(&path, data, &acl, CreateMode::EphemeralSequential);
        match create.await {
            Ok(p) => return Ok(p),
            Err(Error::NoNode) => match ensure_path(client, parent).await {
                Ok(()) => {}
                Err(e @ (Error::ConnectionLoss | Error::NotReadOnly)) => {
                    await_read_write_after(client, e, deadline).await?
                }
                Err(e) => return Err(e),
            },
            Err(Error::ConnectionLoss) => {
                maybe_created = true;
                last_err = Error::ConnectionLoss;
                if let Err(e) = await_reconnect(client, deadline).await {
                    last_err = e;
                    break;
                }
            }
            // Refused by a read-only server: nothing was created; wait for read-write.
            Err(Error::NotReadOnly) => {
                last_err = Error::NotReadOnly;
                if let Err(e) = await_read_write_after(client, Error::NotReadOnly, deadline).await {
                    last_err = e;
                    break;
                }
            }
            Err(e) => return Err(e),
        }
    }
    if maybe_created {
        let (c, parent, prefix) = (client.clone(), parent.to_owned(), prefix.clone());
        tokio::spawn(async move {
            if let Ok(Some(p)) = find_protected_synced(&c, &parent, &prefix).await {
                let _ = delete_guaranteed(&c, &p).await;
            }
        });
    }
    Err(last_err)
}

/// [`find_protected`] after a `sync` of `parent`: the create looked for may have gone
/// through another server, which the one we reconnected to may not have caught up with
/// (it accepted the session: the client never saw the create's zxid). Without the sync
/// a lagging follower's listing missed our node, a second one was created, and the
/// first sat ahead of it for the rest of the session (found by a break-it review).
async fn find_protected_synced(
    client: &Client,
    parent: &str,
    prefix: &str,
) -> Result<Option<String>> {
    match client.sync(parent).await {
        Ok(_) => find_protected(client, parent, prefix).await,
        Err(Error::NoNode) => Ok(None),
        Err(e) => Err(e),
    }
}

/// How long a `try_lock` that ran out of time waits for the delete of its node. Longer
/// means the session is disconnected: the node is then deleted in the background once
/// it reconnects (a `try_lock` must return near its deadline, not wait out a reconnect).
pub(crate) const DEADLINE_DELETE_GRACE: Duration = Duration::from_millis(500);

/// [`delete_guaranteed`], waiting at most [`DEADLINE_DELETE_GRACE`]; a delete that
/// needs longer (the session is disconnected) goes on in the background.
pub(crate) async fn delete_within_grace(client: &Client, node: &str) -> Result<()> {
    match tokio::time::timeout(DEADLINE_DELETE_GRACE, delete_guaranteed(client, node)).await {
        Ok(r) => r,
        Err(_) => {
            let (c, n) = (client.clone(), node.to_owned());
            tokio::spawn(async move {
                if let Err(e) = delete_guaranteed(&c, &n).await {
                    tracing::warn!(node = %n, error = %e, "background delete failed");
                }
            });
            Ok(())
        }
    }
}

/// After a waiter gave up on the one-shot watch it set on `path` (it dropped the
/// [`crate::OneshotWatch`] first): removes that watch from the server, unless another
/// waiter of this client still uses a watch of `kind` there
/// ([`Client::remove_unused_watch`]), as Curator's waiters call `removeWatches`.
/// Without it the server keeps the watch until the node changes, which for a lock held
/// for hours is hours, one more per give-up on another path. Waits at most
/// [`DEADLINE_DELETE_GRACE`] (the remove goes on without us); failures are only logged:
/// the waiter has given up either way.
pub(crate) async fn forget_watch(client: &Client, path: &str, kind: WatcherType) {
    match tokio::time::timeout(
        DEADLINE_DELETE_GRACE,
        client.remove_unused_watch(path, kind),
    )
    .await
    {
        Ok(Ok(())) | Err(_) => {}
        Ok(Err(e)) => {
            tracing::debug!(%path, error = %e, "could not remove the watch of a waiter that gave up")
        }
    }
}

/// Sends `req`, a request that sets a waiter's one-shot watch of `kind` on `path` (an
/// exists / getData / getChildren with a watch), under a guard: if the caller's future
/// is dropped while the request is in flight (a `timeout` or `select!` around an
/// acquire), the server still registers the watch when it answers, for a receiver that
/// is gone. The guard then drops the request (closing that receiver) and asks, in the
/// background, for the watch to be taken off ([`forget_watch`]). The removeWatches is
/// queued behind the request on the same session, so the server answers the request,
/// setting the watch, before it removes it; the session task sends it unless another
/// live waiter of this client uses the watch ([`Client::remove_unused_watch`]: the
/// dropped request's own registration does not count). A request still waiting for
/// room in the command queue was never sent: the remove then finds nothing to remove.
///
/// Returns the request's answer; from then on the caller guards the watch itself
/// ([`await_watch`], [`HeldWatch`]), with no await in between.
pub(crate) async fn set_watch<T, F>(
    client: &Client,
    path: &str,
    kind: WatcherType,
    req: F,
) -> F::Output
where
    F: std::future::Future<Output = Result<T>>,
{
    let mut guard = InFlightWatch {
        req: Some(Box::pin(req)),
        client,
        path,
        kind,
    };
    let r = match guard.req.as_mut() {
        Some(req) => req.await,
        None => Err(Error::Recipe("watch request already answered".into())),
    };
    // Answered: a watch it set is the caller's (an error sets none, or the connection
    // it was set on is gone, and the server drops a connection's watches with it).
    guard.req = None;
    r
}

/// [`set_watch`]'s request while it is in flight: dropped with it still inside (the
/// wait abandoned before the answer), it drops the request first (so the receiver of
/// the watch it registers is closed) and then removes the watch in the background.
struct InFlightWatch<'a, F> {
    req: Option<std::pin::Pin<Box<F>>>,
    client: &'a Client,
    path: &'a str,
    kind: WatcherType,
}

impl<F> Drop for InFlightWatch<'_, F> {
    fn drop(&mut self) {
        let Some(req) = self.req.take() else {
            return;
        };
        drop(req);
        forget_in_background(self.client, self.path, self.kind);
    }
}

/// Spawns [`forget_watch`] (nothing outside a runtime: the session ends with it).
fn forget_in_background(client: &Client, path: &str, kind: WatcherType) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let (client, path) = (client.clone(), path.to_owned());
    rt.spawn(async move { forget_watch(&client, &path, kind).await });
}

/// Waits for a waiter's one-shot watch `w`, a watch of `kind` on `path`, until
/// `deadline` (`None`: as long as it takes). Returns the event, or `None` once the
/// deadline passed, the watch then taken off the server ([`forget_watch`]). If the wait
/// is abandoned instead (its future dropped: a `timeout` or `select!` around an
/// acquire), the watch is taken off in the background, so a cancelled waiter leaves no
/// watch behind either. Set `w` with [`set_watch`], which covers the request that sets
/// it the same way.
pub(crate) async fn await_watch(
    client: &Client,
    path: &str,
    kind: WatcherType,
    w: OneshotWatch,
    deadline: Option<Instant>,
) -> Option<WatchedEvent> {
    HeldWatch::new(client, path, kind, w).wait(deadline).await
}

/// A waiter's one-shot watch while it is held: dropped with the watch still inside (the
/// wait abandoned), it closes the receiver first (so the session task sees no local user
/// of the watch) and then removes the watch in the background ([`forget_watch`]). For a
/// watch held across other requests before its wait ([`await_watch`] when there are
/// none).
pub(crate) struct HeldWatch<'a> {
    w: Option<OneshotWatch>,
    client: &'a Client,
    path: &'a str,
    kind: WatcherType,
}

impl<'a> HeldWatch<'a> {
    /// Guards `w`, a watch of `kind` on `path` that [`set_watch`] set.
    pub(crate) fn new(
        client: &'a Client,
        path: &'a str,
        kind: WatcherType,
        w: OneshotWatch,
    ) -> Self {
        HeldWatch {
            w: Some(w),
            client,
            path,
            kind,
        }
    }

    /// [`await_watch`] for the held watch.
    pub(crate) async fn wait(mut self, deadline: Option<Instant>) -> Option<WatchedEvent> {
        let w = self.w.as_mut()?;
        let fired = match deadline {
            None => Some(w.await),
            Some(d) => tokio::time::timeout_at(d, w).await.ok(),
        };
        // Fired (nothing left on the server) or given up (removed below): either way the
        // guard has nothing to do any more.
        self.w = None;
        if fired.is_none() {
            forget_watch(self.client, self.path, self.kind).await;
        }
        fired
    }

    /// Waits for the watch at most `d`: `Some(event)` when it fired, `None` when it did
    /// not (the watch is still held and guarded).
    pub(crate) async fn fired_within(&mut self, d: Duration) -> Option<WatchedEvent> {
        let w = self.w.as_mut()?;
        let ev = tokio::time::timeout(d, w).await.ok();
        if ev.is_some() {
            self.w = None;
        }
        ev
    }

    /// Lets go of the watch without removing it from the server: it fired, or a request
    /// answered since has set the same watch again for a new receiver.
    pub(crate) fn keep(mut self) {
        self.w = None;
    }
}

impl Drop for HeldWatch<'_> {
    fn drop(&mut self) {
        let Some(w) = self.w.take() else {
            return;
        };
        drop(w);
        forget_in_background(self.client, self.path, self.kind);
    }
}

/// Locks a recipe value's state, giving up at `deadline` (`None`: as long as it takes).
/// Another task of the same value may hold it for the whole of its own acquire; a
/// `try_lock` must still return by its deadline.
/// Waits until another task's hold of a shared recipe value is given back (`released`,
/// enabled before the hold was looked at, fires) or found lost (`lost` changes); false
/// if `deadline` passed first. Used by [`super::Mutex`] and [`super::SemaphoreMutex`].
pub(crate) async fn wait_given_back(
    released: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    lost: &mut watch::Receiver<Option<LostReason>>,
    deadline: Option<Instant>,
) -> bool {
    let wait = async {
        tokio::select! {
            _ = released => {}
            _ = lost.changed() => {}
        }
    };
    match deadline {
        None => {
            wait.await;
            true
        }
        Some(d) => tokio::time::timeout_at(d, wait).await.is_ok(),
    }
}

/// Deletes the node of a hold found lost, which may still exist if the session survived
/// (a long disconnection), so a new attempt does not queue behind it: a guaranteed
/// delete without a deadline, one bounded by [`DEADLINE_DELETE_GRACE`] with one.
pub(crate) async fn delete_lost_node(
    client: &Client,
    node: &str,
    deadline: Option<Instant>,
) -> Result<()> {
    match deadline {
        None => delete_guaranteed(client, node).await,
        Some(_) => delete_within_grace(client, node).await,
    }
}

pub(crate) async fn lock_until<T>(
    m: &tokio::sync::Mutex<T>,
    deadline: Option<Instant>,
) -> Option<tokio::sync::MutexGuard<'_, T>> {
    match deadline {
        None => Some(m.lock().await),
        Some(d) => tokio::time::timeout_at(d, m.lock()).await.ok(),
    }
}

/// Cleans up after an acquire whose future is dropped before it finishes (a `timeout`
/// or `select!` around `lock()`): the protected node it created, or may have created
/// (the create was sent but its reply not read), is deleted in the background. Without
/// it the node stays until the session ends, and once it reaches the head of the queue
/// it holds the lock for nobody. Curator has no such case (a Java call cannot be
/// abandoned half-way).
///
/// Disarm it once the acquire has ended by itself: holding (the node is the caller's
/// now), or having deleted its node.
pub(crate) struct AbandonGuard {
    client: Client,
    parent: String,
    prefix: String,
    node: Option<String>,
    armed: bool,
}

impl AbandonGuard {
    /// Creates a protected ephemeral-sequential `parent/..<name>NNNNNNNNNN`
    /// ([`create_protected_sequential`]) under a guard: until the guard is disarmed or
    /// given up, dropping it (with the acquire's future) deletes the node, or the node
    /// the create may have made. On error the create has cleaned up after itself. A
    /// reconnect the create waits for ends at `deadline` with CONNECTIONLOSS.
    pub(crate) async fn create(
        client: &Client,
        parent: &str,
        name: &str,
        data: &[u8],
        deadline: Option<Instant>,
    ) -> Result<(AbandonGuard, String)> {
        let mut guard = AbandonGuard {
            client: client.clone(),
            parent: parent.to_owned(),
            prefix: protected_prefix(),
            node: None,
            armed: true,
        };
        match create_protected_sequential_with(client, parent, &guard.prefix, name, data, deadline)
            .await
        {
            Ok(node) => {
                guard.node = Some(node.clone());
                Ok((guard, node))
            }
            Err(e) => {
                guard.disarm();
                Err(e)
            }
        }
    }

    /// A guard for a node of a known path (not protected-sequential): dropped armed, it
    /// deletes `node` in the background (nothing if it was never created).
    pub(crate) fn for_node(client: &Client, node: &str) -> AbandonGuard {
        AbandonGuard {
            client: client.clone(),
            parent: String::new(),
            prefix: String::new(),
            node: Some(node.to_owned()),
            armed: true,
        }
    }

    /// The acquire ended by itself (it holds, or deleted its node); nothing to clean up.
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }

    /// The acquire gives up (its deadline passed, or an error): deletes the node,
    /// waiting at most [`DEADLINE_DELETE_GRACE`]; a delete that needs longer (the
    /// session is disconnected) goes on in the background, as for an abandoned acquire.
    pub(crate) async fn give_up(self) -> Result<()> {
        let Some(node) = self.node.clone() else {
            return Ok(());
        };
        // Dropped here (with its future), the guard deletes the node itself.
        let r = delete_within_grace(&self.client, &node).await;
        self.disarm();
        r
    }
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Outside a runtime nothing can be sent; the session ends with the runtime.
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let c = self.client.clone();
        let (parent, prefix, node) = (
            std::mem::take(&mut self.parent),
            std::mem::take(&mut self.prefix),
            self.node.take(),
        );
        rt.spawn(async move {
            let node = match node {
                Some(n) => Some(n),
                // Queued after the create on the same session, so it sees the create's
                // result (per-session order).
                None => find_protected_across_reconnects(&c, &parent, &prefix).await,
            };
            if let Some(n) = node {
                tracing::debug!(node = %n, "acquire abandoned: deleting its node");
                if let Err(e) = delete_guaranteed(&c, &n).await {
                    tracing::warn!(node = %n, error = %e, "could not delete the node of an abandoned acquire");
                }
            }
        });
    }
}

/// [`find_protected`], waiting for reconnects; `None` when not found, or when the
/// session ended (its ephemeral nodes go with it) or stays away.
async fn find_protected_across_reconnects(
    client: &Client,
    parent: &str,
    prefix: &str,
) -> Option<String> {
    for _ in 0..PROTECTED_CREATE_TRIES {
        // The create may have gone through another server: catch up with the leader
        // before looking (a sync failing on connection loss fails the lookup too).
        let looked = match client.sync(parent).await {
            Ok(_) => find_protected(client, parent, prefix).await,
            Err(e) => Err(e),
        };
        match looked {
            Ok(found) => return found,
            Err(e @ (Error::ConnectionLoss | Error::NotReadOnly)) => {
                if await_read_write_after(client, e, None).await.is_err() {
                    return None;
                }
            }
            Err(e) => {
                tracing::warn!(%parent, error = %e, "cannot look for the node of an abandoned acquire");
                return None;
            }
        }
    }
    None
}

/// Deletes a node, treating "already gone" as success.
pub async fn delete_quietly(client: &Client, path: &str) -> Result<()> {
    match client.delete(path, None).await {
        Ok(()) | Err(Error::NoNode) => Ok(()),
        Err(e) => Err(e),
    }
}

/// One round of [`delete_guaranteed`]: retries across reconnects for up to
/// [`reconnect_wait`] of disconnection, or until `until` says when to stop waiting. A
/// session that ended counts as success (its ephemeral nodes are gone or going with it).
async fn delete_across_reconnects(
    client: &Client,
    path: &str,
    until: &(dyn Fn() -> Option<Instant> + Sync),
) -> Result<()> {
    loop {
        match delete_quietly(client, path).await {
            Err(e @ (Error::ConnectionLoss | Error::NotReadOnly)) => {
                match await_read_write_after(client, e, until()).await {
                    Ok(()) => {}
                    Err(e) if e.is_session_terminal() => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            Err(e) if e.is_session_terminal() => return Ok(()),
            r => return r,
        }
    }
}

/// When the servers may have expired the session if it stays disconnected: a session
/// timeout after a server last heard from it ([`Client::heard_at`]; now when it never
/// did). The leader ends the session within a tick after that.
fn session_gone_by(client: &Client) -> Instant {
    client.heard_at().unwrap_or_else(Instant::now) + client.session_timeout()
}

/// Deletes one of our ephemeral nodes (a lock, lease or latch node) like Curator's
/// `delete().guaranteed()`: connection loss never leaves it behind while the session
/// lives. Retries across reconnects until a session timeout has passed since a server
/// last heard from the session ([`Client::heard_at`]): the session has then expired
/// (or will within a server tick), taking the node with it, and
/// [`Error::DisconnectedPastSessionTimeout`] is returned while the delete continues
/// in the background (until it succeeds, the session ends, or
/// [`GUARANTEED_DELETE_MAX`]) in case the session comes back after all (a server
/// restarted from its data restores sessions with a fresh timeout). A session that
/// ended counts as success. Other errors (e.g. NOAUTH) are returned as they are.
///
/// Each wait for a reconnect used to be bounded by [`reconnect_wait`] alone (twice the
/// session timeout), so a release on a dead connection took that long and then
/// answered `Ok` for a delete that had not happened.
pub async fn delete_guaranteed(client: &Client, path: &str) -> Result<()> {
    let until = || Some(session_gone_by(client));
    match delete_across_reconnects(client, path, &until).await {
        Err(Error::ConnectionLoss) => {
            tracing::warn!(node = %path, "delete failed: disconnected for a session timeout; retrying in the background");
            let (c, p) = (client.clone(), path.to_owned());
            tokio::spawn(async move {
                let until = Instant::now() + GUARANTEED_DELETE_MAX;
                while Instant::now() < until {
                    match delete_across_reconnects(&c, &p, &|| None).await {
                        Err(Error::ConnectionLoss) => {}
                        Ok(()) => return,
                        Err(e) => {
                            tracing::warn!(node = %p, error = %e, "background delete failed");
                            return;
                        }
                    }
                }
                tracing::warn!(node = %p, "background delete gave up");
            });
            Err(Error::DisconnectedPastSessionTimeout {
                node: path.to_owned(),
            })
        }
        r => r,
    }
}

/// Why a held resource (lock node, latch node) is considered lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostReason {
    /// The node was deleted (by someone else, or by session expiry).
    NodeDeleted,
    /// The session expired, was closed, or failed authentication.
    SessionEnded,
    /// Disconnected, and half the session timeout has passed since a server last
    /// heard from the session ([`Client::heard_at`]): the leader may expire it from two
    /// thirds of a timeout after that (a session on a follower that stalled).
    DisconnectedTooLong,
    /// Asked about a resource that is not held.
    NotHeld,
}

/// Watches `node` and the session; publishes `Some(reason)` once the node can no longer
/// be assumed ours. The task stops when the receiver count drops to zero or after loss.
///
/// After [`LostReason::DisconnectedTooLong`] the session may still be alive (a server that
/// was down restores its sessions with a fresh timeout): the holder was told it lost the
/// resource, so the monitor deletes the node once the session reconnects instead of
/// letting it block every other contender (Curator injects a session expiry instead).
pub fn spawn_lost_monitor(client: Client, node: String) -> watch::Receiver<Option<LostReason>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let reason = monitor(&client, &node, &tx).await;
        if let Some(r) = reason {
            tracing::info!(%node, ?r, "recipe node lost");
            let _ = tx.send(Some(r));
            if r == LostReason::DisconnectedTooLong {
                delete_after_reconnect(&client, &node).await;
            }
        }
    });
    rx
}

/// Deletes `node` once the session is connected again; gives up when the session ends
/// (the node goes with it) or after [`GUARANTEED_DELETE_MAX`].
async fn delete_after_reconnect(client: &Client, node: &str) {
    // Read-write only: a read-only server answers the delete with NOTREADONLY.
    let mut st = client.state_watcher();
    let connected = match tokio::time::timeout(
        GUARANTEED_DELETE_MAX,
        st.wait_for(|s| *s == SessionState::Connected || s.is_terminal()),
    )
    .await
    {
        Ok(Ok(s)) => *s == SessionState::Connected,
        _ => false,
    };
    if !connected {
        return;
    }
    // Moved to a read-only server meanwhile: the delete waits for read-write again.
    if let Err(e) = delete_guaranteed(client, node).await {
        tracing::warn!(%node, error = %e, "could not delete the node of a lost lock");
    }
}

async fn monitor(
    client: &Client,
    node: &str,
    tx: &watch::Sender<Option<LostReason>>,
) -> Option<LostReason> {
    let mut st = client.state_watcher();
    // The connection may have gone before this task first ran (the holder's process
    // lost it between taking the node and spawning this monitor): no change would then
    // ever come while the server stays away, and the loss would never be reported. A
    // state other than connected read-write counts as just seen changed.
    if *st.borrow() != SessionState::Connected {
        st.mark_changed();
    }
    loop {
        let w = match client.exists_w(node).await {
            Ok((Some(_), w)) => Some(w),
            Ok((None, _)) | Err(Error::NoNode) => return Some(LostReason::NodeDeleted),
            Err(e) if e.is_session_terminal() => return Some(LostReason::SessionEnded),
            Err(_) => None,
        };
        let armed = w.is_some();
        let wf = async move {
            match w {
                Some(w) => w.await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(wf);
        loop {
            tokio::select! {
                ev = &mut wf => {
                    if ev.event_type == EventType::NodeDeleted {
                        return Some(LostReason::NodeDeleted);
                    }
                    if ev.state.is_terminal() {
                        return Some(LostReason::SessionEnded);
                    }
                    break; // data change: re-arm
                }
                _ = tx.closed() => return None,
                ch = st.changed() => {
                    if ch.is_err() {
                        return Some(LostReason::SessionEnded);
                    }
                    let s = *st.borrow_and_update();
                    if s.is_terminal() {
                        return Some(LostReason::SessionEnded);
                    }
                    if matches!(s, SessionState::Disconnected | SessionState::ConnectedReadOnly) {
                        // Count from when a server last heard from us, not from when we
                        // noticed the disconnect (that takes two thirds of the timeout
                        // after the last answer on a silent network). And not a whole
                        // timeout: the leader judges the session, and a follower relays
                        // its clients' activity only with its answer to the leader's
                        // next ping (every half tick), so what a follower heard just
                        // before it stalled may never reach the leader, whose last touch
                        // can then be the client's previous ping, a third of a timeout
                        // earlier: it may expire the session from two thirds of a
                        // timeout after `heard_at`. A whole timeout let another client
                        // take the lock up to 650 ms before this holder was told (found
                        // by a break-it review, against rzk and ZooKeeper alike). Half a
                        // timeout keeps a sixth of one before that earliest expiry, and
                        // leaves a broken connection at least a sixth of one to come
                        // back (`heard_at` is up to a third old when the client is idle:
                        // its pings go every third), so a quick failover does not take
                        // every idle holder's lock. A silent connection is reported when
                        // it is noticed (as Curator's SUSPENDED): in the worst case that
                        // is when the leader may first expire the session (the recipes
                        // module, "Locks and time").
                        let limit = hold_limit(client);
                        let until = client.heard_at().unwrap_or_else(Instant::now) + limit;
                        // A read-only server is not the quorum: the session may still
                        // expire there (and a read-only server never touches it).
                        let back = tokio::time::timeout_at(
                            until,
                            st.wait_for(|s| {
                                !matches!(s, SessionState::Disconnected | SessionState::ConnectedReadOnly)
                            }),
                        )
                        .await;
                        match back {
                            Err(_) => return Some(LostReason::DisconnectedTooLong),
                            Ok(Err(_)) => return Some(LostReason::SessionEnded),
                            Ok(Ok(s)) if s.is_terminal() => return Some(LostReason::SessionEnded),
                            Ok(Ok(_)) => {}
                        }
                        if !armed {
                            break;
                        }
                    } else if !armed && s.is_connected() {
                        break; // the watch could not be set before: set it now
                    }
                }
            }
        }
    }
}

/// How long after a server last heard from a session its holds count as lost while it
/// is not connected ([`monitor`]'s limit): half a session timeout (at least 100 ms).
pub(crate) fn hold_limit(client: &Client) -> Duration {
    (client.session_timeout() / 2).max(Duration::from_millis(100))
}

/// Whether the session's holds may be gone: a server last heard from it longer ago than
/// [`hold_limit`] while it is not connected, or than two thirds of a session timeout
/// (the earliest the leader may expire it, [`monitor`]) even while the state still says
/// connected (a process that was stopped answers before its tasks noticed anything). An
/// idle connected session is heard every third of a timeout, so this stays false while
/// it is fine. `is_acquired` and `has_leadership` answer false then, before the loss
/// monitor (which has to run first) reports it.
pub(crate) fn heard_too_long_ago(client: &Client) -> bool {
    let limit = if client.state().is_connected() {
        client.session_timeout() * 2 / 3
    } else {
        hold_limit(client)
    };
    client
        .heard_at()
        .is_some_and(|at| Instant::now() >= at + limit)
}

/// Waits until `rx` reports a loss.
pub async fn wait_lost(mut rx: watch::Receiver<Option<LostReason>>) -> LostReason {
    match rx.wait_for(|r| r.is_some()).await {
        Ok(r) => r.unwrap_or(LostReason::SessionEnded),
        Err(_) => LostReason::SessionEnded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curator_sort_order() {
        let mut c = vec![
            "_c_bbb-lock-0000000003".to_string(),
            "_c_aaa-lock-0000000010".to_string(),
            "_c_ccc-lock-0000000001".to_string(),
        ];
        sort_children(&mut c, &["lock-"]);
        assert!(c[0].ends_with("01") && c[1].ends_with("03") && c[2].ends_with("10"));
        let mut rw = vec![
            "_c_x-__WRIT__0000000002".to_string(),
            "_c_y-__READ__0000000001".to_string(),
        ];
        sort_children(&mut rw, &["__READ__", "__WRIT__"]);
        assert!(rw[0].contains("__READ__"));
        assert!(protected_prefix().starts_with("_c_") && protected_prefix().len() == 3 + 36 + 1);
    }
}
