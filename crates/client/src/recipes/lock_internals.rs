//! The shared algorithm of Curator's `LockInternals`: one ephemeral-sequential node per
//! attempt, sorted by sequence; an attempt that may not yet hold the lock watches exactly
//! one node ahead of it (its predecessor, or for readers the first writer ahead).
//!
//! Used by [`super::Mutex`], [`super::ReadWriteLock`], [`super::SemaphoreMutex`] and
//! [`super::LeaderElection`]. Never watches the parent (that is [`super::HerdLock`]'s
//! documented mistake) and never leaves its node behind on failure or timeout.

use tokio::time::Instant;

use super::util::{
    await_reconnect, await_watch, child_path, delete_guaranteed, set_watch, sort_children,
    AbandonGuard,
};
use crate::error::{Error, Result};
use crate::types::{EventType, WatcherType};
use crate::Client;

/// Curator's lock node name for `InterProcessMutex`.
pub const LOCK_NAME: &str = "lock-";
/// Curator's `InterProcessReadWriteLock` read-lock node name.
pub const READ_LOCK_NAME: &str = "__READ__";
/// Curator's `InterProcessReadWriteLock` write-lock node name.
pub const WRITE_LOCK_NAME: &str = "__WRIT__";

/// Which predicate decides whether an attempt holds the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockKind {
    /// First node wins (maxLeases = 1); sorted by `lock-` suffix.
    Exclusive,
    /// Holds unless a writer is ahead.
    Read,
    /// First node of all readers and writers wins.
    Write,
}

#[derive(Debug, Clone)]
pub(crate) struct LockCore {
    pub client: Client,
    pub base: String,
    pub kind: LockKind,
    pub data: Vec<u8>,
}

enum Decision {
    Holds,
    Watch(String),
}

impl LockCore {
    pub fn new(client: Client, base: &str, kind: LockKind) -> Result<LockCore> {
        rzk_proto::path::validate(base, false)?;
        Ok(LockCore {
            client,
            base: base.to_owned(),
            kind,
            data: Vec::new(),
        })
    }

    fn lock_name(&self) -> &'static str {
        match self.kind {
            LockKind::Exclusive => LOCK_NAME,
            LockKind::Read => READ_LOCK_NAME,
            LockKind::Write => WRITE_LOCK_NAME,
        }
    }

    fn sort(&self, children: &mut [String]) {
        match self.kind {
            LockKind::Exclusive => sort_children(children, &[LOCK_NAME]),
            _ => sort_children(children, &[READ_LOCK_NAME, WRITE_LOCK_NAME]),
        }
    }

    fn decide(&self, children: &[String], ours: &str) -> Result<Decision> {
        let idx = children
            .iter()
            .position(|c| c == ours)
            .ok_or(Error::NoNode)?;
        match self.kind {
            LockKind::Exclusive | LockKind::Write => Ok(if idx == 0 {
                Decision::Holds
            } else {
                Decision::Watch(children[idx - 1].clone())
            }),
            LockKind::Read => {
                let first_writer = children[..idx].iter().find(|c| c.contains(WRITE_LOCK_NAME));
                Ok(match first_writer {
                    None => Decision::Holds,
                    Some(w) => Decision::Watch(w.clone()),
                })
            }
        }
    }

    /// Creates our node and waits until it holds the lock or `deadline` passes.
    /// Returns our node's path, or `None` on timeout (our node is then deleted).
    /// `skip_wait`, asked each time our node would have to wait (after the children
    /// were listed, as Curator checks), makes the attempt hold at once (a read lock
    /// taken while this process holds the write lock).
    pub async fn attempt(
        &self,
        deadline: Option<Instant>,
        skip_wait: &(dyn Fn() -> bool + Sync),
    ) -> Result<Option<String>> {
        // Until this attempt ends by itself, dropping its future deletes its node.
        let created = AbandonGuard::create(
            &self.client,
            &self.base,
            self.lock_name(),
            &self.data,
            deadline,
        )
        .await;
        let (abandon, ours) = match created {
            Ok(c) => c,
            // Disconnected until the deadline before our node could be made: not
            // acquired (a node the create may have made is deleted once reconnected).
            Err(Error::ConnectionLoss) if deadline.is_some_and(|d| Instant::now() >= d) => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        match self.wait_for_turn(&ours, deadline, skip_wait).await {
            Ok(true) => {
                abandon.disarm();
                Ok(Some(ours))
            }
            Ok(false) => abandon.give_up().await.map(|()| None),
            Err(e) => {
                if let Err(de) = delete_guaranteed(&self.client, &ours).await {
                    tracing::warn!(node = %ours, error = %de, "could not delete lock node after failure");
                }
                abandon.disarm();
                Err(e)
            }
        }
    }

    async fn wait_for_turn(
        &self,
        ours: &str,
        deadline: Option<Instant>,
        skip_wait: &(dyn Fn() -> bool + Sync),
    ) -> Result<bool> {
        let name = rzk_proto::path::basename(ours).to_owned();
        let passed = || deadline.is_some_and(|d| Instant::now() >= d);
        loop {
            // CONNECTIONLOSS is not the end of the attempt: our node lives as long as the
            // session, so wait for the reconnect and look again (Curator's retry loop).
            let mut children = match self.client.get_children(&self.base).await {
                Ok(c) => c,
                Err(Error::ConnectionLoss) => {
                    self.reconnect_or_give_up(deadline).await?;
                    if passed() {
                        return Ok(false);
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.sort(&mut children);
            let decision = self.decide(&children, &name)?;
            // The deadline is looked at only when we would have to wait: a zero wait
            // still takes a free lock (Curator's `acquire(0, unit)` looks once).
            let watch_path = match decision {
                Decision::Holds => return Ok(true),
                Decision::Watch(_) if skip_wait() => return Ok(true),
                Decision::Watch(_) if passed() => return Ok(false),
                Decision::Watch(p) => child_path(&self.base, &p),
            };
            let set = self.client.get_data_w(&watch_path);
            let w = match set_watch(&self.client, &watch_path, WatcherType::Data, set).await {
                Ok((_, _, w)) => w,
                Err(Error::NoNode) => continue,
                Err(Error::ConnectionLoss) => {
                    self.reconnect_or_give_up(deadline).await?;
                    if passed() {
                        return Ok(false);
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Some(ev) =
                await_watch(&self.client, &watch_path, WatcherType::Data, w, deadline).await
            else {
                return Ok(false);
            };
            if ev.event_type == EventType::None && ev.state.is_terminal() {
                return Err(Error::SessionExpired);
            }
        }
    }

    /// Waits for the session to reconnect; a passed `deadline` ends the wait without an
    /// error (the caller then sees its deadline passed and gives up cleanly).
    async fn reconnect_or_give_up(&self, deadline: Option<Instant>) -> Result<()> {
        match await_reconnect(&self.client, deadline).await {
            Err(Error::ConnectionLoss) if deadline.is_some_and(|d| Instant::now() >= d) => Ok(()),
            r => r,
        }
    }

    /// The lock's participant nodes, sorted in lock order (full paths).
    pub async fn participant_nodes(&self) -> Result<Vec<String>> {
        let mut children = match self.client.get_children(&self.base).await {
            Ok(c) => c,
            Err(Error::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        self.sort(&mut children);
        Ok(children.iter().map(|c| child_path(&self.base, c)).collect())
    }
}
