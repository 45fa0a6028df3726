//! `DistributedQueue`: an ordered queue with at-least-once delivery.
//!
//! Items are persistent sequential nodes `<path>/queue-<seq>` (Curator's item name).
//! A consumer claims an item by creating the ephemeral `<path>/locks/<item>`; it must
//! [`QueueItem::ack`] (delete item, then claim) after processing. If the consumer's
//! session ends first the claim vanishes and another consumer gets the item again:
//! at-least-once, never silently lost. Items are handed out in sequence order.
//!
//! A claim holds a token (a fresh UUID) of the `take` that made it. A claim whose create
//! answer was lost (CONNECTIONLOSS) is created again after the reconnect; finding it
//! there already with our token means the first create happened, and the item is ours.
//! (Curator's queue skips such a claim as another consumer's, so the item stays claimed,
//! undelivered, for the rest of the consumer's session: found by a break-it review,
//! matching Curator 5.4.) The token, not the claim's ephemeral owner, decides: consumers
//! sharing one `Client` share its session, and each must see the others' claims as
//! taken (a second break-it review found items delivered up to 4 times to 4 tasks on
//! one client when the owner decided).

use super::release::Releaser;
use super::util::{
    across_reconnects, await_read_write_after, await_reconnect, child_path, create_under_container,
    delete_quietly, ensure_path, forget_watch, set_watch, HeldWatch, REAPED_RETRIES,
};
use crate::error::{Error, Result};
use crate::types::{CreateMode, EventType, WatcherType};
use crate::Client;

/// Curator's queue item prefix.
pub const QUEUE_ITEM_NAME: &str = "queue-";
const LOCKS: &str = "locks";

/// A distributed queue with at-least-once delivery (close to Curator's
/// `DistributedQueue` with a lock path, i.e. items are only removed once processed).
#[derive(Debug, Clone)]
pub struct DistributedQueue {
    client: Client,
    path: String,
    locks: String,
}

/// A claimed item. Call [`QueueItem::ack`] once processed, or [`QueueItem::abandon`] to
/// hand it back. Dropping it without either (an early return, a panic, a cancelled
/// `ack`) hands it back too: the claim is deleted in the background, on the runtime the
/// item was taken on, and the item is delivered again (at-least-once). Curator has no
/// such object (its consumer callback either returns or throws).
#[derive(Debug)]
#[must_use = "a dropped item is handed back unprocessed: ack it once processed"]
pub struct QueueItem {
    client: Client,
    /// The item's node path.
    pub path: String,
    /// The item's data.
    pub data: Vec<u8>,
    /// Our claim, released only while it holds our token (so a release repeated after a
    /// lost answer, or from `Drop` after a cancelled `ack`/`abandon`, never deletes the
    /// next consumer's claim); dropped armed, it releases in the background.
    claim: ClaimGuard,
}

/// A claim a `take` made, or may have made, and then the claim of a [`QueueItem`]: dropped
/// armed (the `take` was dropped part-way or failed, or the item was dropped without
/// `ack`/`abandon`), it deletes the claim in the background if the claim holds its token,
/// so the item is not left claimed for nobody until the session ends. Curator has no such
/// case (a Java call cannot be abandoned half-way).
#[derive(Debug)]
struct ClaimGuard {
    client: Client,
    claim: String,
    token: String,
    releaser: Releaser,
    armed: bool,
}

impl ClaimGuard {
    /// The claim was deleted, or is another consumer's.
    fn disarm(mut self) {
        self.armed = false;
    }

    /// Releases the claim now ([`release_if_ours`]); a release dropped part-way is
    /// finished by `Drop`.
    async fn release(mut self) -> Result<()> {
        let r = release_if_ours(&self.client, &self.claim, self.token.as_bytes()).await;
        self.armed = false;
        r
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (client, claim, token) = (
            self.client.clone(),
            std::mem::take(&mut self.claim),
            std::mem::take(&mut self.token),
        );
        self.releaser.spawn("abandoned queue claim", async move {
            release_in_background(&client, &claim, &token).await;
        });
    }
}

/// Deletes `claim` if it holds `token`, at the version read: never another consumer's
/// claim, even when this is a second try after a lost answer or a cancelled release.
/// Queued behind the create on the same session, the read sees that create's result (per-
/// session order); after a reconnect, a sync first (the create or delete may have gone
/// through another server). `Ok` when the claim is gone or not ours.
///
/// # Errors
/// [`Error::ConnectionLoss`] when the connection stays away over several reconnects,
/// [`Error::SessionExpired`] (the claim, ephemeral, went with the session) and server
/// errors such as [`Error::NoAuth`].
async fn release_if_ours(client: &Client, claim: &str, token: &[u8]) -> Result<()> {
    let mut losses = 0;
    loop {
        let failed = match client.get_data(claim).await {
            Ok((data, stat)) if data == token => {
                match client.delete(claim, Some(stat.version)).await {
                    Ok(()) | Err(Error::NoNode | Error::BadVersion) => return Ok(()),
                    Err(e) => e,
                }
            }
            // Not ours, or gone.
            Ok(_) | Err(Error::NoNode) => return Ok(()),
            Err(e) => e,
        };
        if !matches!(failed, Error::ConnectionLoss | Error::NotReadOnly) || losses >= REAPED_RETRIES
        {
            return Err(failed);
        }
        losses += 1;
        await_read_write_after(client, failed, None).await?;
        if let Some((parent, _)) = claim.rsplit_once('/') {
            let _ = client.sync(parent).await;
        }
    }
}

/// [`release_if_ours`] from a background task, logging what its caller can no longer see.
async fn release_in_background(client: &Client, claim: &str, token: &str) {
    match release_if_ours(client, claim, token.as_bytes()).await {
        Ok(()) => {}
        // The session ended: its claims went with it.
        Err(e @ (Error::SessionExpired | Error::Closed)) => {
            tracing::debug!(%claim, error = %e, "queue claim not released: session gone");
        }
        Err(e) => tracing::warn!(%claim, error = %e, "could not release a dropped queue claim"),
    }
}

impl DistributedQueue {
    /// A queue under `path`; nodes are created on first use.
    ///
    /// Curator: `QueueBuilder.builder(client, consumer, serializer, path).lockPath(..)`.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] if `path` is not a valid absolute znode path.
    pub fn new(client: Client, path: &str) -> Result<DistributedQueue> {
        rzk_proto::path::validate(path, false)?;
        Ok(DistributedQueue {
            locks: child_path(path, LOCKS),
            path: path.to_owned(),
            client,
        })
    }

    /// Appends an item with `data`; returns its node path.
    ///
    /// Curator: `DistributedQueue.put(item)`.
    ///
    /// # Errors
    /// [`Error::ConnectionLoss`] when the connection is lost before the answer: the item
    /// may or may not have been added (as with Curator), so putting it again may queue it
    /// twice. Other session errors ([`Error::SessionExpired`]) and server errors such as
    /// [`Error::NoAuth`].
    pub async fn put(&self, data: &[u8]) -> Result<String> {
        let item = child_path(&self.path, QUEUE_ITEM_NAME);
        create_under_container(&self.client, &item, data, CreateMode::PersistentSequential).await
    }

    async fn items(&self, watch: bool) -> Result<(Vec<String>, Option<crate::OneshotWatch>)> {
        // The queue and its locks are containers: the server reaps them when they are
        // empty, possibly between our calls, so a NoNode here means "create it again".
        let mut tries = 0;
        let (mut c, w) = loop {
            ensure_path(&self.client, &self.locks).await?;
            let r = if watch {
                let set = self.client.get_children_w(&self.path);
                set_watch(&self.client, &self.path, WatcherType::Children, set)
                    .await
                    .map(|(c, w)| (c, Some(w)))
            } else {
                self.client
                    .get_children(&self.path)
                    .await
                    .map(|c| (c, None))
            };
            match r {
                Err(Error::NoNode) if tries < REAPED_RETRIES => tries += 1,
                r => break r?,
            }
        };
        c.retain(|n| n.starts_with(QUEUE_ITEM_NAME));
        c.sort();
        Ok((c, w))
    }

    /// Creates the claim node `claim` holding a fresh token: a guard of the claim when
    /// this call holds it (created now, or by its own earlier create whose answer was
    /// lost), `None` when another consumer does (another session, or another task on
    /// this one). Dropped part-way (its future with it) or failing, the call leaves the
    /// claim it made, or may have made, to an armed [`ClaimGuard`], which deletes it.
    async fn claim(&self, claim: &str) -> Result<Option<ClaimGuard>> {
        let guard = ClaimGuard {
            client: self.client.clone(),
            claim: claim.to_owned(),
            token: uuid::Uuid::new_v4().to_string(),
            releaser: Releaser::current(),
            armed: true,
        };
        let mut tries = 0;
        loop {
            // The locks container may have been reaped since we ensured it.
            let created = create_under_container(
                &self.client,
                claim,
                guard.token.as_bytes(),
                CreateMode::Ephemeral,
            )
            .await;
            match created {
                Ok(_) => return Ok(Some(guard)),
                Err(Error::NodeExists) => match self.client.get_data(claim).await {
                    Ok((data, _)) if data == guard.token.as_bytes() => return Ok(Some(guard)),
                    Ok(_) => {
                        guard.disarm();
                        return Ok(None);
                    }
                    // Released meanwhile: try again, a few times.
                    Err(Error::NoNode) if tries < REAPED_RETRIES => tries += 1,
                    Err(Error::NoNode) => {
                        guard.disarm();
                        return Ok(None);
                    }
                    Err(e) => return Err(e),
                },
                // The create may have happened: ask again once reconnected. Refused by
                // a read-only server: ask again once read-write.
                Err(e @ (Error::ConnectionLoss | Error::NotReadOnly)) => {
                    await_read_write_after(&self.client, e, None).await?
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn claim_first(&self, items: &[String]) -> Result<Option<QueueItem>> {
        for name in items {
            let claim = child_path(&self.locks, name);
            let Some(guard) = self.claim(&claim).await? else {
                continue;
            };
            let path = child_path(&self.path, name);
            // A short disconnection does not fail the take: the claim, ephemeral, stays.
            let read = loop {
                match self.client.get_data(&path).await {
                    Err(Error::ConnectionLoss) => await_reconnect(&self.client, None).await?,
                    r => break r,
                }
            };
            match read {
                Ok((data, _)) => {
                    return Ok(Some(QueueItem {
                        client: self.client.clone(),
                        path,
                        data,
                        claim: guard,
                    }));
                }
                // The item was taken and acked meanwhile: drop our claim, try the next.
                Err(Error::NoNode) => {
                    // A failed release leaves the guard armed: `Drop` tries again.
                    release_if_ours(&self.client, &claim, guard.token.as_bytes()).await?;
                    guard.disarm();
                }
                Err(e) => {
                    let _ = guard.release().await;
                    return Err(e);
                }
            }
        }
        Ok(None)
    }

    /// Claims the oldest unclaimed item, if any, without waiting.
    ///
    /// # Errors
    /// session errors ([`Error::SessionExpired`], [`Error::ConnectionLoss`] when the
    /// connection stays away) and server errors such as [`Error::NoAuth`].
    pub async fn try_take(&self) -> Result<Option<QueueItem>> {
        let (items, _) = self.items(false).await?;
        self.claim_first(&items).await
    }

    /// Waits for an item and claims it.
    ///
    /// Cancel-safe: dropped at any point (a `timeout` or `select!` around it), it leaves
    /// neither a claim (one it made, or may have made, is deleted in the background, so
    /// the item goes to the next taker) nor its children watch. The same holds for
    /// [`DistributedQueue::try_take`].
    ///
    /// # Errors
    /// session errors ([`Error::SessionExpired`], [`Error::ConnectionLoss`] when the
    /// connection stays away) and server errors such as [`Error::NoAuth`].
    pub async fn take(&self) -> Result<QueueItem> {
        // The children watch of the previous listing, still guarded (a `take` dropped or
        // failing takes it off the server) until the next listing sets it again.
        let mut held: Option<HeldWatch<'_>> = None;
        loop {
            // A short disconnection does not end the wait.
            let (items, w) = match self.items(true).await {
                Err(Error::ConnectionLoss) => {
                    await_reconnect(&self.client, None).await?;
                    continue;
                }
                r => r?,
            };
            // The server holds one children watch per session and path: the listing
            // just answered set the watch the previous one held.
            if let Some(h) = held.take() {
                h.keep();
            }
            let w = w.map(|w| HeldWatch::new(&self.client, &self.path, WatcherType::Children, w));
            if let Some(taken) = self.claim_first(&items).await.transpose() {
                // Claimed, or failed: the children watch set with the listing is not
                // needed any more.
                if let Some(w) = w {
                    w.keep();
                    forget_watch(&self.client, &self.path, WatcherType::Children).await;
                }
                return taken;
            }
            if let Some(mut w) = w {
                // Claimed items still present wake us only when they are acked; poll
                // occasionally too, in case a claimant dies (its claim vanishes silently).
                if let Some(ev) = w.fired_within(std::time::Duration::from_secs(1)).await {
                    if ev.event_type == EventType::None && ev.state.is_terminal() {
                        return Err(Error::SessionExpired);
                    }
                }
                held = Some(w);
            }
        }
    }

    /// Number of items (claimed or not).
    ///
    /// # Errors
    /// session errors ([`Error::SessionExpired`], [`Error::ConnectionLoss`] when the
    /// connection stays away) and server errors such as [`Error::NoAuth`].
    pub async fn len(&self) -> Result<usize> {
        // A listing's lost answer changed nothing: list again once reconnected.
        let (items, _) = across_reconnects(&self.client, None, || self.items(false)).await?;
        Ok(items.len())
    }

    /// True if the queue holds no item (claimed or not).
    ///
    /// # Errors
    /// As [`DistributedQueue::len`].
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }
}

impl QueueItem {
    /// Marks the item processed: deletes it, then our claim. If the item cannot be
    /// deleted the claim is still dropped, so the item is delivered again (at-least-once)
    /// instead of staying claimed for the rest of the session.
    ///
    /// Cancel-safe, as is [`QueueItem::abandon`]: dropped part-way, the item is handed
    /// back as a dropped item is. The claim is deleted only while it holds this item's
    /// token, so a release repeated (after a lost answer, or from `Drop` after a cancelled
    /// `ack`) never deletes the claim of the consumer that took the item next.
    ///
    /// # Errors
    /// As [`DistributedQueue::take`]; the item was delivered, and may be again.
    pub async fn ack(self) -> Result<()> {
        let deleted = delete_quietly(&self.client, &self.path).await;
        let unclaimed = self.claim.release().await;
        deleted.and(unclaimed)
    }

    /// Gives the item back unprocessed.
    ///
    /// # Errors
    /// As [`DistributedQueue::take`].
    pub async fn abandon(self) -> Result<()> {
        self.claim.release().await
    }
}
