//! `DoubleBarrier`: Curator's `DistributedDoubleBarrier` — `enter` blocks until
//! `member_count` participants have entered; `leave` blocks until all have left.
//!
//! Layout: `<path>/<uuid>` ephemeral per participant, `<path>/ready` created by whoever
//! completes the group. Leaving follows the classic recipe: the lowest node waits for the
//! highest to go, everyone else deletes its node and waits for the lowest to go.
//!
//! A participant that gives up (a timeout, or an error it returns) takes its node away
//! first, so it is never counted as entered by the others; a `leave` that ends, on time
//! or not, lowers the ready flag as Curator's does, so the next round's `enter` waits
//! for its own group. A create whose answer was lost is made again after the reconnect
//! (the node's name is ours alone, so finding it there means the first one happened).

use std::time::Duration;

use tokio::time::Instant;

use super::util::{
    await_read_write_after, child_path, create_under_container, delete_guaranteed, delete_quietly,
    ensure_path, set_watch, AbandonGuard, HeldWatch,
};
use crate::error::{Error, Result};
use crate::types::{CreateMode, EventType, WatchedEvent, WatcherType};
use crate::Client;

const READY_NODE: &str = "ready";

/// One participant of a double barrier (Curator's `DistributedDoubleBarrier`).
#[derive(Debug)]
pub struct DoubleBarrier {
    client: Client,
    path: String,
    ready: String,
    ours: String,
    member_count: usize,
}

/// Waits for `w`, an exists watch; `Ok(None)` at `deadline`, the watch then removed from
/// the server ([`HeldWatch::wait`]).
async fn wait_event(w: HeldWatch<'_>, deadline: Option<Instant>) -> Result<Option<WatchedEvent>> {
    let Some(ev) = w.wait(deadline).await else {
        return Ok(None);
    };
    if ev.event_type == EventType::None && ev.state.is_terminal() {
        return Err(Error::SessionExpired);
    }
    Ok(Some(ev))
}

impl DoubleBarrier {
    /// A participant of the barrier under `path` that opens once `member_count` participants
    /// have entered.
    ///
    /// Curator: `new DistributedDoubleBarrier(client, path, memberQty)`.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] if `path` is not a valid absolute znode path.
    pub fn new(client: Client, path: &str, member_count: usize) -> Result<DoubleBarrier> {
        rzk_proto::path::validate(path, false)?;
        Ok(DoubleBarrier {
            ready: child_path(path, READY_NODE),
            ours: child_path(path, &uuid::Uuid::new_v4().to_string()),
            path: path.to_owned(),
            client,
            member_count,
        })
    }

    async fn members(&self) -> Result<Vec<String>> {
        let mut c = match self.client.get_children(&self.path).await {
            Ok(c) => c,
            Err(Error::NoNode) => Vec::new(),
            Err(e) => return Err(e),
        };
        c.retain(|n| n != READY_NODE);
        c.sort();
        Ok(c)
    }

    /// Enters and waits until `member_count` participants have entered; `Ok(false)` if the
    /// group did not complete within `max` (our node is then removed).
    ///
    /// Curator: `DistributedDoubleBarrier.enter(maxWait, unit)`.
    ///
    /// Cancel-safe: an `enter` dropped before it returns (a `timeout` around it) takes our
    /// node away in the background; left behind, it would count as a participant that
    /// never entered.
    ///
    /// # Errors
    /// session errors ([`Error::SessionExpired`], [`Error::ConnectionLoss`] when the
    /// connection stays away) and server errors such as [`Error::NoAuth`].
    pub async fn enter(&self, max: Option<Duration>) -> Result<bool> {
        let abandon = AbandonGuard::for_node(&self.client, &self.ours);
        let r = self.enter_until(max.map(|d| Instant::now() + d)).await;
        // Ended by itself: entered (the node stays), or the node was taken away.
        abandon.disarm();
        r
    }

    async fn enter_until(&self, deadline: Option<Instant>) -> Result<bool> {
        ensure_path(&self.client, &self.path).await?;
        // The watch on the ready flag is guarded from its request on: an enter dropped
        // (or failing) before its wait takes it off the server too.
        let set = self.client.exists_w(&self.ready);
        let (ready, w) = set_watch(&self.client, &self.ready, WatcherType::Data, set).await?;
        let w = HeldWatch::new(&self.client, &self.ready, WatcherType::Data, w);
        loop {
            match create_under_container(&self.client, &self.ours, b"", CreateMode::Ephemeral).await
            {
                Ok(_) | Err(Error::NodeExists) => break,
                Err(e @ (Error::ConnectionLoss | Error::NotReadOnly)) => {
                    if let Err(e) = await_read_write_after(&self.client, e, deadline).await {
                        return self.give_up(e).await;
                    }
                }
                Err(e) => return self.give_up(e).await,
            }
        }
        if ready.is_some() {
            w.keep();
            return Ok(true);
        }
        match self.await_group(w, deadline).await {
            Err(e) => self.give_up(e).await,
            r => r,
        }
    }

    /// Returns `e` after taking our node away (it may exist: a create's answer may have
    /// been lost), retrying across reconnects while the session lives: a participant
    /// told it did not enter must not count as one that did.
    async fn give_up<T>(&self, e: Error) -> Result<T> {
        let _ = delete_guaranteed(&self.client, &self.ours).await;
        Err(e)
    }

    /// After our node is in: waits until `member_count` participants are (creating the
    /// ready flag when we complete the group); `Ok(false)` at `deadline`, our node removed.
    async fn await_group<'a>(
        &'a self,
        mut w: HeldWatch<'a>,
        deadline: Option<Instant>,
    ) -> Result<bool> {
        loop {
            if self.members().await?.len() >= self.member_count {
                match create_under_container(&self.client, &self.ready, b"", CreateMode::Persistent)
                    .await
                {
                    // The flag's creation fired the watch.
                    Ok(_) | Err(Error::NodeExists) => {
                        w.keep();
                        return Ok(true);
                    }
                    Err(e) => return Err(e),
                }
            }
            match wait_event(w, deadline).await? {
                None => {
                    delete_quietly(&self.client, &self.ours).await?;
                    return Ok(false);
                }
                Some(ev) if ev.event_type == EventType::NodeCreated => return Ok(true),
                Some(_) => {}
            }
            let set = self.client.exists_w(&self.ready);
            let (ready, w2) = set_watch(&self.client, &self.ready, WatcherType::Data, set).await?;
            if ready.is_some() {
                return Ok(true);
            }
            w = HeldWatch::new(&self.client, &self.ready, WatcherType::Data, w2);
        }
    }

    /// Leaves and waits until every participant has left; `Ok(false)` if the others did not
    /// all leave within `max`.
    ///
    /// Curator: `DistributedDoubleBarrier.leave(maxWait, unit)`.
    ///
    /// # Errors
    /// session errors ([`Error::SessionExpired`], [`Error::ConnectionLoss`] when the
    /// connection stays away) and server errors such as [`Error::NoAuth`].
    pub async fn leave(&self, max: Option<Duration>) -> Result<bool> {
        let deadline = max.map(|d| Instant::now() + d);
        let our_name = rzk_proto::path::basename(&self.ours).to_owned();
        loop {
            let members = self.members().await?;
            let present = members.contains(&our_name);
            if members.is_empty() || (members.len() == 1 && present) {
                delete_quietly(&self.client, &self.ours).await?;
                // Last one out lowers the ready flag for the next round.
                if self.members().await?.is_empty() {
                    delete_quietly(&self.client, &self.ready).await?;
                }
                return Ok(true);
            }
            let lowest = &members[0];
            let highest = &members[members.len() - 1];
            let watch_name = if present && *lowest == our_name {
                highest.clone()
            } else {
                if present {
                    delete_quietly(&self.client, &self.ours).await?;
                }
                lowest.clone()
            };
            let watched = child_path(&self.path, &watch_name);
            let set = self.client.exists_w(&watched);
            let (stat, w) = set_watch(&self.client, &watched, WatcherType::Data, set).await?;
            let w = HeldWatch::new(&self.client, &watched, WatcherType::Data, w);
            if stat.is_none() {
                // Gone already: the exists left a watch for its creation, which never
                // comes (the name was a participant's uuid); `w` takes it off as it drops.
                continue;
            }
            if wait_event(w, deadline).await?.is_none() {
                // As Curator's: our node goes (so nobody waits for it), and the ready
                // flag too (or the next round's enter would pass before its group is in).
                delete_quietly(&self.client, &self.ours).await?;
                delete_quietly(&self.client, &self.ready).await?;
                return Ok(false);
            }
        }
    }
}
