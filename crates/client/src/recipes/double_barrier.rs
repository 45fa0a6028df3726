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
//! (the node's name is ours alone, so finding it there means the first one happened);
//! every other step (listing, watch, the ready flag's create, deletes) is repeated
//! after a short disconnection too, so CONNECTIONLOSS means the connection stayed away.
//! A leaver whose node is gone waits, once the ready flag is down, only for nodes made
//! before its leave began: a node made after that is the next round's, whose
//! participant may wait in `enter` for this one.

use std::time::Duration;

use tokio::time::Instant;

use super::util::{
    across_reconnects, child_path, create_under_container, delete_guaranteed, delete_quietly,
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

    /// The participants' node names, sorted (the ready flag left out); a step repeated
    /// across reconnects until `deadline`.
    async fn members(&self, deadline: Option<Instant>) -> Result<Vec<String>> {
        Ok(self.members_with_stat(deadline).await?.0)
    }

    /// [`DoubleBarrier::members`] and the parent's `pzxid` (the zxid of the last create
    /// or delete of a child): every node listed was created at or before it.
    async fn members_with_stat(&self, deadline: Option<Instant>) -> Result<(Vec<String>, i64)> {
        let listed = across_reconnects(&self.client, deadline, || {
            self.client.get_children2(&self.path)
        })
        .await;
        let (mut c, pzxid) = match listed {
            Ok((c, st)) => (c, st.pzxid),
            Err(Error::NoNode) => (Vec::new(), 0),
            Err(e) => return Err(e),
        };
        c.retain(|n| n != READY_NODE);
        c.sort();
        Ok((c, pzxid))
    }

    /// Sets an exists watch on `path` (guarded), repeated across reconnects.
    async fn watch_exists<'a>(
        &'a self,
        path: &'a str,
        deadline: Option<Instant>,
    ) -> Result<(Option<crate::types::Stat>, HeldWatch<'a>)> {
        let (stat, w) = across_reconnects(&self.client, deadline, || {
            set_watch(
                &self.client,
                path,
                WatcherType::Data,
                self.client.exists_w(path),
            )
        })
        .await?;
        Ok((
            stat,
            HeldWatch::new(&self.client, path, WatcherType::Data, w),
        ))
    }

    /// Whether the ready flag is down (repeated across reconnects).
    async fn flag_is_down(&self, deadline: Option<Instant>) -> Result<bool> {
        let flag =
            across_reconnects(&self.client, deadline, || self.client.exists(&self.ready)).await?;
        Ok(flag.is_none())
    }

    /// Deletes `path` (a node of ours, or the ready flag), NoNode counting as done,
    /// repeated across reconnects.
    async fn delete_quietly(&self, path: &str, deadline: Option<Instant>) -> Result<()> {
        across_reconnects(&self.client, deadline, || {
            delete_quietly(&self.client, path)
        })
        .await
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
        // Every step rides out a short disconnection (each may be repeated after a lost
        // answer); only a connection that stays away past `deadline` (or the reconnect
        // wait) ends the enter with CONNECTIONLOSS.
        across_reconnects(&self.client, deadline, || {
            ensure_path(&self.client, &self.path)
        })
        .await?;
        // The watch on the ready flag is guarded from its request on: an enter dropped
        // (or failing) before its wait takes it off the server too.
        let (ready, w) = self.watch_exists(&self.ready, deadline).await?;
        // The node's name is ours alone: NodeExists after a lost answer is our create.
        let created = across_reconnects(&self.client, deadline, || {
            create_under_container(&self.client, &self.ours, b"", CreateMode::Ephemeral)
        })
        .await;
        match created {
            Ok(_) | Err(Error::NodeExists) => {}
            Err(e) => return self.give_up(e).await,
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
            if self.members(deadline).await?.len() >= self.member_count {
                // A lost answer is made again: NodeExists then, also if it was ours (the
                // others may already have passed counting us).
                let flagged = across_reconnects(&self.client, deadline, || {
                    create_under_container(&self.client, &self.ready, b"", CreateMode::Persistent)
                })
                .await;
                match flagged {
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
                    self.delete_quietly(&self.ours, None).await?;
                    return Ok(false);
                }
                Some(ev) if ev.event_type == EventType::NodeCreated => return Ok(true),
                Some(_) => {}
            }
            let (ready, w2) = self.watch_exists(&self.ready, deadline).await?;
            if ready.is_some() {
                w2.keep();
                return Ok(true);
            }
            w = w2;
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
        // Every node of our round is waited for, also one that entered after our leave
        // began while the ready flag was still up (it passed `enter` at once). Once our
        // node is gone and the flag is down, a node created after our first listing
        // (`czxid` above its `pzxid`) belongs to the next round: its participant (one
        // that left before us and entered again, maybe with the same value and so the
        // same name) may wait in `enter` for us, and waiting for it would stall both
        // rounds (found by a break-it review in session 56, and the first fix's
        // same-round case by a second).
        let (_, listed_at) = self.members_with_stat(deadline).await?;
        let mut next_round: Vec<String> = Vec::new();
        loop {
            let mut members = self.members(deadline).await?;
            members.retain(|n| !next_round.contains(n));
            let present = members.contains(&our_name);
            if members.is_empty() || (members.len() == 1 && present) {
                self.delete_quietly(&self.ours, deadline).await?;
                // Last one out lowers the ready flag for the next round (not when a
                // later round has begun: its flag is not ours to lower).
                if self.members(deadline).await?.is_empty() {
                    self.delete_quietly(&self.ready, deadline).await?;
                }
                return Ok(true);
            }
            // Looked at after the listing: a node listed while the flag was up is of
            // our round, whatever the flag is now.
            let flag_down = !present && self.flag_is_down(deadline).await?;
            let lowest = &members[0];
            let highest = &members[members.len() - 1];
            let watch_name = if present && *lowest == our_name {
                highest.clone()
            } else {
                if present {
                    self.delete_quietly(&self.ours, deadline).await?;
                }
                lowest.clone()
            };
            let watched = child_path(&self.path, &watch_name);
            let (stat, w) = self.watch_exists(&watched, deadline).await?;
            match stat {
                // Gone already: the exists left a watch for its creation, which never
                // comes (the name was a participant's uuid); `w` takes it off as it drops.
                None => continue,
                Some(st) if flag_down && st.czxid > listed_at => {
                    next_round.push(watch_name);
                    continue;
                }
                Some(_) => {}
            }
            if wait_event(w, deadline).await?.is_none() {
                // As Curator's: our node goes (so nobody waits for it), and the ready
                // flag too (or the next round's enter would pass before its group is in).
                self.delete_quietly(&self.ours, None).await?;
                self.delete_quietly(&self.ready, None).await?;
                return Ok(false);
            }
        }
    }
}
