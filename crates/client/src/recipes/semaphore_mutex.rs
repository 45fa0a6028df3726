//! `SemaphoreMutex`: a non-re-entrant lock, Curator's `InterProcessSemaphoreMutex`
//! (`InterProcessSemaphoreV2` with one lease).
//!
//! Layout as Curator: `<path>/locks` is an internal [`Mutex`] serialising lease takers;
//! `<path>/leases/_c_<uuid>-lease-<seq>` are the leases. A taker holds when the number of
//! leases is at most one, otherwise waits for the leases' children to change. Acquiring
//! again from the same value while it holds returns an error instead of deadlocking.

use std::time::Duration;

use tokio::sync::{watch, Mutex as AsyncMutex};
use tokio::time::Instant;

use super::util::{
    await_reconnect, child_path, create_protected_sequential, delete_guaranteed,
    spawn_lost_monitor, wait_lost, LostReason,
};
use super::Mutex;
use crate::error::{Error, Result};
use crate::types::EventType;
use crate::Client;

/// Curator's lease node name.
pub const LEASE_NAME: &str = "lease-";

#[derive(Debug)]
struct Lease {
    node: String,
    lost: watch::Receiver<Option<LostReason>>,
}

/// A distributed lock that is not re-entrant.
#[derive(Debug)]
pub struct SemaphoreMutex {
    client: Client,
    leases: String,
    lock: Mutex,
    held: AsyncMutex<Option<Lease>>,
}

impl SemaphoreMutex {
    pub fn new(client: Client, path: &str) -> Result<SemaphoreMutex> {
        rzk_proto::path::validate(path, false)?;
        Ok(SemaphoreMutex {
            lock: Mutex::new(client.clone(), &child_path(path, "locks"))?,
            leases: child_path(path, "leases"),
            client,
            held: AsyncMutex::new(None),
        })
    }

    pub async fn acquire(&self) -> Result<()> {
        if self.acquire_inner(None).await? {
            Ok(())
        } else {
            Err(Error::Timeout)
        }
    }

    /// `Ok(false)` if not acquired within `wait`.
    pub async fn try_acquire(&self, wait: Duration) -> Result<bool> {
        self.acquire_inner(Some(Instant::now() + wait)).await
    }

    async fn acquire_inner(&self, deadline: Option<Instant>) -> Result<bool> {
        let mut held = self.held.lock().await;
        if held.is_some() {
            return Err(Error::Recipe(
                "SemaphoreMutex is not re-entrant and is already held".into(),
            ));
        }
        let got_lock = match deadline {
            None => {
                self.lock.acquire().await?;
                true
            }
            Some(d) => {
                self.lock
                    .try_acquire(d.saturating_duration_since(Instant::now()))
                    .await?
            }
        };
        if !got_lock {
            return Ok(false);
        }
        let result = self.take_lease(deadline).await;
        let released = self.lock.release().await;
        let node = result?;
        released?;
        Ok(match node {
            None => false,
            Some(node) => {
                let lost = spawn_lost_monitor(self.client.clone(), node.clone());
                *held = Some(Lease { node, lost });
                true
            }
        })
    }

    async fn take_lease(&self, deadline: Option<Instant>) -> Result<Option<String>> {
        let ours = create_protected_sequential(&self.client, &self.leases, LEASE_NAME, b"").await?;
        let name = rzk_proto::path::basename(&ours).to_owned();
        loop {
            let (children, w) = match self.client.get_children_w(&self.leases).await {
                Ok(x) => x,
                Err(Error::ConnectionLoss) => match await_reconnect(&self.client, deadline).await {
                    Ok(()) => continue,
                    Err(e) => {
                        let _ = delete_guaranteed(&self.client, &ours).await;
                        return Err(e);
                    }
                },
                Err(e) => {
                    let _ = delete_guaranteed(&self.client, &ours).await;
                    return Err(e);
                }
            };
            if !children.contains(&name) {
                return Err(Error::Recipe(format!("lease node {ours} vanished")));
            }
            if children.len() <= 1 {
                return Ok(Some(ours));
            }
            let ev = match deadline {
                None => w.await,
                Some(d) => match tokio::time::timeout_at(d, w).await {
                    Ok(ev) => ev,
                    Err(_) => {
                        delete_guaranteed(&self.client, &ours).await?;
                        return Ok(None);
                    }
                },
            };
            if ev.event_type == EventType::None && ev.state.is_terminal() {
                return Err(Error::SessionExpired);
            }
        }
    }

    pub async fn release(&self) -> Result<()> {
        let lease = self.held.lock().await.take();
        match lease {
            Some(l) => delete_guaranteed(&self.client, &l.node).await,
            None => Err(Error::Recipe("release of a lock that is not held".into())),
        }
    }

    pub async fn is_acquired(&self) -> bool {
        matches!(&*self.held.lock().await, Some(l) if l.lost.borrow().is_none())
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
