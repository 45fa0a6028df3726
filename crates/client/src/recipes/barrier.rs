//! `Barrier`: Curator's `DistributedBarrier` — while the barrier node exists, waiters
//! block; removing it releases them all.

use std::time::Duration;

use super::util::{
    across_reconnects, await_reconnect, await_watch, create_under_container, delete_quietly,
    ensure_path, forget_watch, set_watch,
};
use crate::error::{Error, Result};
use crate::types::{CreateMode, EventType, WatcherType};
use crate::Client;

/// A barrier on one node: while it exists, [`Barrier::wait`] blocks (Curator's
/// `DistributedBarrier`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Barrier {
    client: Client,
    path: String,
}

impl Barrier {
    /// A barrier on the node `path`; nothing is created until [`Barrier::set`].
    ///
    /// Curator: `new DistributedBarrier(client, path)`.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] if `path` is not a valid absolute znode path.
    pub fn new(client: Client, path: &str) -> Result<Barrier> {
        rzk_proto::path::validate(path, false)?;
        Ok(Barrier {
            client,
            path: path.to_owned(),
        })
    }

    /// Raises the barrier: creates its node (and missing parents); fine if already raised.
    ///
    /// Curator: `DistributedBarrier.setBarrier()`.
    ///
    /// # Errors
    /// session errors ([`Error::SessionExpired`], [`Error::ConnectionLoss`] when the
    /// connection stays away) and server errors such as [`Error::NoAuth`].
    pub async fn set(&self) -> Result<()> {
        // Both steps are repeated after a lost answer (NodeExists then counts as raised).
        let parent = rzk_proto::path::parent(&self.path);
        across_reconnects(&self.client, None, || ensure_path(&self.client, parent)).await?;
        let created = across_reconnects(&self.client, None, || {
            create_under_container(&self.client, &self.path, b"", CreateMode::Persistent)
        })
        .await;
        match created {
            Ok(_) | Err(Error::NodeExists) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Lowers the barrier (deletes its node; fine if already gone), releasing all waiters.
    ///
    /// Curator: `DistributedBarrier.removeBarrier()`.
    ///
    /// # Errors
    /// session errors ([`Error::SessionExpired`], [`Error::ConnectionLoss`] when the
    /// connection stays away) and server errors such as [`Error::NoAuth`].
    pub async fn remove(&self) -> Result<()> {
        // Repeated after a lost answer (NoNode then counts as lowered).
        across_reconnects(&self.client, None, || {
            delete_quietly(&self.client, &self.path)
        })
        .await
    }

    /// Waits until the barrier is gone (`max: None` waits for ever); `Ok(false)` on timeout.
    ///
    /// Curator: `DistributedBarrier.waitOnBarrier(maxWait, unit)`.
    ///
    /// # Errors
    /// session errors ([`Error::SessionExpired`], [`Error::ConnectionLoss`] when the
    /// connection stays away) and server errors such as [`Error::NoAuth`].
    pub async fn wait(&self, max: Option<Duration>) -> Result<bool> {
        let deadline = max.map(|d| tokio::time::Instant::now() + d);
        loop {
            let set = self.client.exists_w(&self.path);
            let (stat, w) = match set_watch(&self.client, &self.path, WatcherType::Data, set).await
            {
                Ok(x) => x,
                // A short disconnection does not end the wait; one that outlasts `max`
                // is its timeout.
                Err(Error::ConnectionLoss) => {
                    match await_reconnect(&self.client, deadline).await {
                        Err(Error::ConnectionLoss)
                            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) =>
                        {
                            return Ok(false)
                        }
                        r => r?,
                    }
                    continue;
                }
                Err(e) => return Err(e),
            };
            if stat.is_none() {
                // The exists watch on the absent node would stay on the server until a
                // barrier is set there again (Curator's waitOnBarrier leaves it).
                drop(w);
                forget_watch(&self.client, &self.path, WatcherType::Data).await;
                return Ok(true);
            }
            let Some(ev) =
                await_watch(&self.client, &self.path, WatcherType::Data, w, deadline).await
            else {
                return Ok(false);
            };
            if ev.event_type == EventType::None && ev.state.is_terminal() {
                return Err(Error::SessionExpired);
            }
        }
    }
}
