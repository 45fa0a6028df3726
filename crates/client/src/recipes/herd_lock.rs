//! `HerdLock`: the naive lock every waiter watches the parent for — kept as the
//! documented contrast to [`super::Mutex`].
//!
//! Every release (or any join) fires a NodeChildrenChanged to *every* waiter, each of
//! which re-reads the whole child list: O(N) notifications and O(N) requests per
//! acquisition, O(N^2) for N contenders to each acquire once (the "herd effect"). Use
//! [`super::Mutex`] instead; this exists for the herd benchmark and for teaching.

use tokio::sync::Mutex as AsyncMutex;

use super::util::{
    child_path, create_under_container, delete_guaranteed, ensure_path, AbandonGuard,
};
use crate::error::{Error, Result};
use crate::types::{CreateMode, EventType};
use crate::Client;

/// A non-re-entrant lock with the herd effect.
#[derive(Debug)]
pub struct HerdLock {
    client: Client,
    path: String,
    node: AsyncMutex<Option<String>>,
}

impl HerdLock {
    /// A herd lock on `path` (no Curator equivalent; for comparison with [`super::Mutex`]).
    ///
    /// # Errors
    /// [`Error::InvalidPath`] if `path` is not a valid absolute znode path.
    pub fn new(client: Client, path: &str) -> Result<HerdLock> {
        rzk_proto::path::validate(path, false)?;
        Ok(HerdLock {
            client,
            path: path.to_owned(),
            node: AsyncMutex::new(None),
        })
    }

    /// Waits until the lock is held, re-reading all children on every change of the parent.
    /// No guard: call [`HerdLock::release`] on every path.
    ///
    /// # Errors
    /// [`Error::Recipe`] if already held by this value; session errors ([`Error::SessionExpired`], [`Error::ConnectionLoss`] when the
    /// connection stays away) and server errors such as [`Error::NoAuth`].
    pub async fn acquire(&self) -> Result<()> {
        let mut node = self.node.lock().await;
        if node.is_some() {
            return Err(Error::Recipe("HerdLock is already held".into()));
        }
        ensure_path(&self.client, &self.path).await?;
        let ours = create_under_container(
            &self.client,
            &child_path(&self.path, "lock-"),
            b"",
            CreateMode::EphemeralSequential,
        )
        .await?;
        // Until the wait ends by itself, dropping its future deletes our node.
        let abandon = AbandonGuard::for_node(&self.client, &ours);
        match self.wait_first(&ours).await {
            Ok(()) => {
                abandon.disarm();
                *node = Some(ours);
                Ok(())
            }
            // Never leave the node in every later waiter's way.
            Err(e) => {
                if let Err(de) = delete_guaranteed(&self.client, &ours).await {
                    tracing::warn!(node = %ours, error = %de, "could not delete herd lock node after failure");
                }
                abandon.disarm();
                Err(e)
            }
        }
    }

    /// Waits until `ours` sorts first among the children, re-listing them all on every
    /// change of the parent (the herd effect this type exists to show).
    async fn wait_first(&self, ours: &str) -> Result<()> {
        let name = rzk_proto::path::basename(ours);
        loop {
            let (mut children, w) = self.client.get_children_w(&self.path).await?;
            children.sort();
            if children.first().map(String::as_str) == Some(name) {
                return Ok(());
            }
            if !children.iter().any(|c| c == name) {
                return Err(Error::Recipe(format!("herd lock node {ours} vanished")));
            }
            let ev = w.await;
            if ev.event_type == EventType::None && ev.state.is_terminal() {
                return Err(Error::SessionExpired);
            }
        }
    }

    /// Releases the lock (guaranteed delete of our node).
    ///
    /// # Errors
    /// [`Error::Recipe`] if not held; server errors of the delete;
    /// [`Error::DisconnectedPastSessionTimeout`] after a session timeout of disconnection.
    pub async fn release(&self) -> Result<()> {
        match self.node.lock().await.take() {
            Some(n) => delete_guaranteed(&self.client, &n).await,
            None => Err(Error::Recipe("release of a lock that is not held".into())),
        }
    }
}
