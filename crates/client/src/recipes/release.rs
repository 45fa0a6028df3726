//! Release work started from `Drop`: guards of locks, leases and latches cannot `.await`
//! in `drop`, so they hand the delete of their node to the tokio runtime they were
//! created on (Curator's `delete().guaranteed()` run in the background).

use std::future::Future;

use tokio::runtime::Handle;

use super::util::delete_guaranteed;
use crate::Client;

/// The runtime a guard was created on; a guard may be dropped outside of it.
#[derive(Debug, Clone)]
pub(crate) struct Releaser {
    handle: Option<Handle>,
}

impl Releaser {
    /// Remembers the current runtime (guards are created inside async functions).
    pub fn current() -> Releaser {
        Releaser {
            handle: Handle::try_current().ok(),
        }
    }

    /// Runs `fut` in the background. If the runtime is gone the node stays until the
    /// session ends (the session's socket task is gone with that runtime too).
    pub fn spawn<F>(&self, what: &'static str, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match &self.handle {
            Some(h) => {
                h.spawn(fut);
            }
            None => tracing::warn!(
                what,
                "dropped outside a tokio runtime; node left until the session ends"
            ),
        }
    }

    /// Deletes `node` in the background, logging an error the caller can no longer see.
    pub fn delete(&self, what: &'static str, client: Client, node: String) {
        self.spawn(what, async move {
            if let Err(e) = delete_guaranteed(&client, &node).await {
                tracing::warn!(what, %node, error = %e, "release on drop failed");
            }
        });
    }
}
