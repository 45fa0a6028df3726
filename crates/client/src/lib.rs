//! rzk-client: an async (tokio) ZooKeeper client and Curator-compatible recipes.
//!
//! One background task per session owns the socket (see `session`); [`Client`] handles
//! send it requests. A request takes its place in the session's order when its future is
//! first polled, and the server applies and answers a session's requests in that order,
//! across reconnects too (ZooKeeper's FIFO client order; the Java client orders by call,
//! which for an `async fn` is its first poll: to pipeline in a given order, poll the
//! calls in that order, e.g. spawn them one after another on a current-thread runtime;
//! `join_all` over many calls and work-stealing runtimes poll in no set order). Errors
//! are typed ([`Error`], one variant per ZooKeeper code). Watches
//! are futures ([`OneshotWatch`]) or streams ([`WatchStream`]). Recipes live in [`recipes`].
//!
//! ```no_run
//! # async fn demo() -> rzk_client::Result<()> {
//! use rzk_client::{Client, CreateMode, open_acl_unsafe};
//! let zk = Client::connect("127.0.0.1:2181/app", std::time::Duration::from_secs(10)).await?;
//! zk.create("/n", b"hi", &open_acl_unsafe(), CreateMode::Persistent).await?;
//! let (data, stat, watch) = zk.get_data_w("/n").await?;
//! zk.set_data("/n", b"there", Some(stat.version)).await?;
//! let event = watch.await;
//! # Ok(()) }
//! ```
//!
//! Lock, lease and latch handles release when dropped (`recipes::MutexGuard`,
//! `recipes::SemaphoreGuard`, `recipes::LeaderLatch`, `recipes::Leadership`):
//!
//! ```no_run
//! # async fn demo(zk: rzk_client::Client) -> rzk_client::Result<()> {
//! let lock = rzk_client::recipes::Mutex::new(zk, "/app/lock")?;
//! let guard = lock.lock().await?; // Curator: InterProcessMutex.acquire()
//! // ... a `?` here drops the guard, which deletes the lock node ...
//! guard.release().await?; // or let it drop; the explicit release reports errors
//! # Ok(()) }
//! ```
//!
//! This crate never panics on server input and never retries a failed operation by itself.

#![warn(missing_docs)]

mod client;
pub mod connect_string;
mod error;
pub mod multi;
pub mod recipes;
pub mod sasl;
mod session;
pub mod tls;
mod types;
mod watch;

pub use client::{Client, ClientBuilder, DEFAULT_SESSION_TIMEOUT};
pub use error::{Error, Result};
pub use multi::{Op, OpResult, ReadOp, ReadResult};
pub use sasl::SaslOptions;
pub use session::Counters;
pub use tls::TlsOptions;
pub use types::*;
pub use watch::{OneshotWatch, WatchStream, WATCH_STREAM_CAPACITY};

/// The README's code blocks, compiled as doctests so the published example stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
