//! Who may read and who may write the live tree.
//!
//! [`TreeStore::new`] wraps the recovered [`DataTree`] and hands back two capabilities:
//! a cloneable [`TreeStore`] that only reads (connections, prep, timers, four-letter
//! words, snapshots) and the one [`TreeWriter`], which is not `Clone` and is moved into
//! the applier thread (`node/apply.rs`). Only the holder of the writer can change the
//! tree, so "only the applier mutates the tree" is checked by the compiler.
//!
//! Readers hold the read lock only for the length of one request; no lock may be held
//! across an `.await`. Lock order with the other shared state: tree -> watches ->
//! sessions -> connections.

use super::DataTree;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Read access to the live tree (cheap to clone: one `Arc`).
#[derive(Debug, Clone)]
pub struct TreeStore {
    tree: Arc<RwLock<DataTree>>,
}

/// Write access to the live tree: exactly one exists per [`TreeStore::new`], owned by
/// the applier.
#[derive(Debug)]
pub struct TreeWriter {
    tree: Arc<RwLock<DataTree>>,
}

impl TreeStore {
    /// Wraps `tree`; returns the readers' handle and the one writer.
    pub fn new(tree: DataTree) -> (TreeStore, TreeWriter) {
        let tree = Arc::new(RwLock::new(tree));
        (TreeStore { tree: tree.clone() }, TreeWriter { tree })
    }

    /// The tree for reading. A poisoned lock (a panic while applying, already logged)
    /// still yields the tree rather than cascading panics.
    pub fn read(&self) -> RwLockReadGuard<'_, DataTree> {
        self.tree.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TreeWriter {
    /// The tree for writing (blocks readers until dropped: keep it short).
    pub fn write(&mut self) -> RwLockWriteGuard<'_, DataTree> {
        self.tree.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The tree for reading, from the writer's side.
    pub fn read(&self) -> RwLockReadGuard<'_, DataTree> {
        self.tree.read().unwrap_or_else(PoisonError::into_inner)
    }
}
