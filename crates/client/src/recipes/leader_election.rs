//! `LeaderElection`: Curator's `LeaderSelector` — leadership is holding an
//! [`super::Mutex`] on the election path (lock node data = participant id).
//!
//! [`LeaderElection::lead`] waits for leadership and returns a [`Leadership`] that can be
//! relinquished (the next participant takes over) and tells when it was lost. Dropping
//! the [`Leadership`] relinquishes too (it holds a [`MutexGuard`]).

use super::util::LostReason;
use super::{Mutex, MutexGuard};
use crate::error::{Error, Result};
use crate::Client;

/// One participant (Curator's `LeaderSelector`, without the listener thread: call
/// [`LeaderElection::lead`] and act while the returned [`Leadership`] is valid).
#[derive(Debug)]
pub struct LeaderElection {
    client: Client,
    lock: Mutex,
}

/// Proof of leadership; call [`Leadership::relinquish`] to step down. Dropping it steps
/// down too (the lock node is deleted in the background), like returning from Curator's
/// `takeLeadership`.
#[derive(Debug)]
#[must_use = "leadership is given up as soon as this value is dropped"]
pub struct Leadership<'a> {
    election: &'a LeaderElection,
    guard: MutexGuard,
}

impl LeaderElection {
    /// A participant with id `id` (the data of its node) in the election under `path`.
    ///
    /// Curator: `new LeaderSelector(client, path, listener)` with `setId(id)`.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] if `path` is not a valid absolute znode path.
    pub fn new(client: Client, path: &str, id: &str) -> Result<LeaderElection> {
        Ok(LeaderElection {
            lock: Mutex::new(client.clone(), path)?.with_node_data(id.as_bytes()),
            client,
        })
    }

    /// Waits until this participant is the leader.
    ///
    /// Curator: `LeaderSelector.start()` up to the call of `takeLeadership`.
    ///
    /// # Errors
    /// [`Error::Recipe`] if this participant already leads; session and server errors
    /// while waiting (our node is deleted on every error).
    pub async fn lead(&self) -> Result<Leadership<'_>> {
        if self.lock.is_acquired().await {
            return Err(Error::Recipe("already leading".into()));
        }
        let guard = self.lock.lock().await?;
        Ok(Leadership {
            election: self,
            guard,
        })
    }

    /// Participant ids in line order; the first is the leader.
    ///
    /// Curator: `LeaderSelector.getParticipants()`.
    ///
    /// # Errors
    /// Errors of `getChildren`/`getData` on the election path.
    pub async fn participants(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for n in self.lock.participant_nodes().await? {
            match self.client.get_data(&n).await {
                Ok((d, _)) => out.push(String::from_utf8_lossy(&d).into_owned()),
                Err(Error::NoNode) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

impl Leadership<'_> {
    /// Steps down; the next participant in line becomes leader.
    ///
    /// # Errors
    /// As [`MutexGuard::release`].
    pub async fn relinquish(self) -> Result<()> {
        self.guard.release().await
    }

    /// Resolves when leadership is lost without relinquishing.
    pub async fn lost(&self) -> LostReason {
        self.election.lock.lost().await
    }

    /// False once loss was detected.
    pub async fn is_valid(&self) -> bool {
        self.election.lock.is_acquired().await
    }
}
