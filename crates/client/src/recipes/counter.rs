//! `SharedCounter`: Curator's `SharedCount` — a 32-bit integer stored big-endian in one
//! node, changed only by versioned compare-and-set.

use super::util::{across_reconnects, create_under_container, ensure_path};
use crate::error::{Error, Result};
use crate::types::CreateMode;
use crate::{Client, OneshotWatch};

/// A value with the node version it was read at (Curator's `VersionedValue<Integer>`),
/// to pass to [`SharedCounter::try_set`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionedValue {
    /// The counter value.
    pub value: i32,
    /// The data version of the counter node when `value` was read.
    pub version: i32,
}

/// A 32-bit counter shared through one node (Curator's `SharedCount`).
#[derive(Debug, Clone)]
pub struct SharedCounter {
    client: Client,
    path: String,
}

/// The counter in `d`, the data of the node at `path`: exactly 4 bytes, big-endian.
fn decode(path: &str, d: &[u8]) -> Result<i32> {
    let b: [u8; 4] = d.try_into().map_err(|_| Error::NotACounter {
        path: path.to_owned(),
        len: d.len(),
    })?;
    Ok(i32::from_be_bytes(b))
}

impl SharedCounter {
    /// Opens the counter at `path`, creating it (and missing parents) with `seed` if absent.
    /// A node that already exists must hold a counter: exactly 4 bytes.
    ///
    /// Curator: `new SharedCount(client, path, seedValue).start()`. Curator's start does
    /// not look at an existing node's data: it reads the first 4 bytes whenever the value
    /// is asked for, so shorter data fails only then (a buffer underflow from
    /// `getCount()`) and longer data is silently cut to its first 4 bytes. rzk refuses
    /// both here, before the counter is used: `SharedCount` always writes 4 bytes, so
    /// any other length is some other node's data, and counting on it would overwrite it.
    ///
    /// # Errors
    /// [`Error::NotACounter`] if the node exists and does not hold exactly 4 bytes;
    /// [`Error::InvalidPath`]; session errors ([`Error::SessionExpired`], [`Error::ConnectionLoss`] when the
    /// connection stays away) and server errors such as [`Error::NoAuth`].
    pub async fn new(client: Client, path: &str, seed: i32) -> Result<SharedCounter> {
        rzk_proto::path::validate(path, false)?;
        let parent = rzk_proto::path::parent(path);
        across_reconnects(&client, None, || ensure_path(&client, parent)).await?;
        // A create whose answer was lost is made again: NodeExists then (ours or not,
        // the node is there) is read as for a counter that existed.
        let seed = seed.to_be_bytes();
        let created = across_reconnects(&client, None, || {
            create_under_container(&client, path, &seed, CreateMode::Persistent)
        })
        .await;
        match created {
            Ok(_) => {}
            Err(Error::NodeExists) => {
                // Deleted since: the first `get` says so, as for a counter deleted later.
                match across_reconnects(&client, None, || client.get_data(path)).await {
                    Ok((d, _)) => {
                        decode(path, &d)?;
                    }
                    Err(Error::NoNode) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
        Ok(SharedCounter {
            client,
            path: path.to_owned(),
        })
    }

    /// The current value and its version.
    ///
    /// Curator: `SharedCount.getVersionedValue()`.
    ///
    /// # Errors
    /// [`Error::NotACounter`] if the node no longer holds 4 bytes (someone else wrote it); [`Error::NoNode`] if it was
    /// deleted; session errors ([`Error::SessionExpired`], [`Error::ConnectionLoss`] when the
    /// connection stays away) and server errors such as [`Error::NoAuth`].
    pub async fn get(&self) -> Result<VersionedValue> {
        // A read's lost answer changed nothing: read again once reconnected.
        let (d, st) =
            across_reconnects(&self.client, None, || self.client.get_data(&self.path)).await?;
        Ok(VersionedValue {
            value: decode(&self.path, &d)?,
            version: st.version,
        })
    }

    /// The current value and a watch that fires on its next change (Curator: a
    /// `SharedCountListener`).
    ///
    /// # Errors
    /// As [`SharedCounter::get`].
    pub async fn get_w(&self) -> Result<(VersionedValue, OneshotWatch)> {
        let (d, st, w) = self.client.get_data_w(&self.path).await?;
        Ok((
            VersionedValue {
                value: decode(&self.path, &d)?,
                version: st.version,
            },
            w,
        ))
    }

    /// Sets `new` only if the node is still at `prev.version`; `Ok(false)` if someone changed
    /// it meanwhile.
    ///
    /// Curator: `SharedCount.trySetCount(previous, newCount)`.
    ///
    /// # Errors
    /// [`Error::NoNode`] if the node was deleted; session errors ([`Error::SessionExpired`], [`Error::ConnectionLoss`] when the
    /// connection stays away) and server errors such as [`Error::NoAuth`].
    pub async fn try_set(&self, prev: VersionedValue, new: i32) -> Result<bool> {
        match self
            .client
            .set_data(&self.path, &new.to_be_bytes(), Some(prev.version))
            .await
        {
            Ok(_) => Ok(true),
            Err(Error::BadVersion) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sets `v` whatever the current value.
    ///
    /// Curator: `SharedCount.setCount(newCount)`.
    ///
    /// # Errors
    /// [`Error::NoNode`] if the node was deleted; session errors ([`Error::SessionExpired`], [`Error::ConnectionLoss`] when the
    /// connection stays away) and server errors such as [`Error::NoAuth`].
    pub async fn set(&self, v: i32) -> Result<()> {
        // Unconditional: setting `v` again after a lost answer is the same set (Curator's
        // `setCount` runs in its retry loop too).
        let bytes = v.to_be_bytes();
        across_reconnects(&self.client, None, || {
            self.client.set_data(&self.path, &bytes, None)
        })
        .await?;
        Ok(())
    }

    /// Adds `delta` (wrapping) with a compare-and-set loop; returns the new value.
    ///
    /// Curator: a `trySetCount` loop (as `DistributedAtomicInteger.add`).
    ///
    /// # Errors
    /// As [`SharedCounter::get`]; an [`Error::ConnectionLoss`] from the compare-and-set
    /// means the connection was lost before its answer: the add may or may not have
    /// happened (as with Curator), so adding again may count twice.
    pub async fn add(&self, delta: i32) -> Result<i32> {
        loop {
            let cur = self.get().await?;
            let new = cur.value.wrapping_add(delta);
            if self.try_set(cur, new).await? {
                return Ok(new);
            }
        }
    }
}
