//! `LeaderElection`: Curator's `LeaderSelector` — leadership is holding an
//! [`super::Mutex`] on the election path (lock node data = participant id).
//!
//! [`LeaderElection::lead`] waits for leadership and returns a [`Leadership`] that can be
//! relinquished (the next participant takes over) and tells when it was lost.

use super::util::LostReason;
use super::Mutex;
use crate::error::{Error, Result};
use crate::Client;

/// One participant.
#[derive(Debug)]
pub struct LeaderElection {
    client: Client,
    lock: Mutex,
}

/// Proof of leadership; call [`Leadership::relinquish`] to step down.
#[derive(Debug)]
pub struct Leadership<'a> {
    election: &'a LeaderElection,
}

impl LeaderElection {
    pub fn new(client: Client, path: &str, id: &str) -> Result<LeaderElection> {
        Ok(LeaderElection {
            lock: Mutex::new(client.clone(), path)?.with_node_data(id.as_bytes()),
            client,
        })
    }

    /// Waits until this participant is the leader.
    pub async fn lead(&self) -> Result<Leadership<'_>> {
        if self.lock.is_acquired().await {
            return Err(Error::Recipe("already leading".into()));
        }
        self.lock.acquire().await?;
        Ok(Leadership { election: self })
    }

    /// Participant ids in line order; the first is the leader.
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
    pub async fn relinquish(self) -> Result<()> {
        self.election.lock.release().await
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
