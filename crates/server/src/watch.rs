//! Watch tables (data and child), one-shot, persistent and persistent-recursive watches,
//! keyed by connection. Must never do IO or look at the tree except in `set_watches`.

use crate::tree::{Change, DataTree};
use rzk_proto::records::{Acl, SetWatches2, WatcherEvent};
use rzk_proto::ErrorCode;

/// Identifies a client connection (the "watcher").
pub type ConnId = u64;

/// The watch manager.
#[derive(Debug, Default)]
pub struct WatchManager {}

impl WatchManager {
    pub fn new() -> WatchManager {
        WatchManager::default()
    }
    /// Fires the watches for `changes`; `can_read(conn, acl)` decides delivery.
    pub fn trigger(
        &mut self,
        _changes: &[Change],
        _can_read: impl FnMut(ConnId, &[Acl]) -> bool,
    ) -> Vec<(ConnId, WatcherEvent)> {
        Vec::new()
    }
    pub fn remove_conn(&mut self, _conn: ConnId) {}
    pub fn set_watches(
        &mut self,
        _conn: ConnId,
        _sw: &SetWatches2,
        _tree: &DataTree,
    ) -> Vec<WatcherEvent> {
        Vec::new()
    }
    pub fn check_watches(
        &self,
        _conn: ConnId,
        _path: &str,
        _watcher_type: i32,
    ) -> Result<(), ErrorCode> {
        Err(ErrorCode::NoWatcher)
    }
    pub fn remove_watches(
        &mut self,
        _conn: ConnId,
        _path: &str,
        _watcher_type: i32,
    ) -> Result<(), ErrorCode> {
        Err(ErrorCode::NoWatcher)
    }
}
