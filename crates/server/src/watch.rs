//! Watch tables (data and child), one-shot, persistent and persistent-recursive watches,
//! keyed by connection, with ZooKeeper's firing rules (docs/CLIENT-PROTOCOL.md §8). Must never
//! do IO, and never look at the tree except to answer `set_watches`.

use crate::tree::{Change, DataTree};
use rzk_proto::opcode::{add_watch_mode, event, watcher_type};
use rzk_proto::records::{Acl, SetWatches2, WatcherEvent};
use rzk_proto::ErrorCode;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Identifies a client connection (the "watcher").
pub type ConnId = u64;

const STANDARD: u8 = 1;
const PERSISTENT: u8 = 2;
const RECURSIVE: u8 = 4;
const ALL_MODES: u8 = STANDARD | PERSISTENT | RECURSIVE;

/// Hash maps of the watch tables: foldhash, seeded per process as the path index's
/// (`tree/node.rs`), instead of SipHash, which cost ~60 instructions per lookup and
/// a create or setData looks up its path and its parent in both tables.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type Set<K> = HashSet<K, foldhash::fast::RandomState>;

/// One table: path -> connection -> mode bits.
#[derive(Debug, Default)]
struct Table {
    by_path: Map<String, Map<ConnId, u8>>,
    by_conn: Map<ConnId, Set<String>>,
    /// Number of (path, conn) entries with the recursive bit.
    recursive: usize,
}

impl Table {
    fn add(&mut self, path: &str, conn: ConnId, mode: u8) {
        let e = self
            .by_path
            .entry(path.to_owned())
            .or_default()
            .entry(conn)
            .or_insert(0);
        if mode & RECURSIVE != 0 && *e & RECURSIVE == 0 {
            self.recursive += 1;
        }
        *e |= mode;
        self.by_conn
            .entry(conn)
            .or_default()
            .insert(path.to_owned());
    }

    fn contains(&self, path: &str, conn: ConnId, modes: u8) -> bool {
        self.by_path
            .get(path)
            .and_then(|m| m.get(&conn))
            .is_some_and(|b| b & modes != 0)
    }

    /// Clears `modes` of one entry; whether anything was cleared.
    fn remove(&mut self, path: &str, conn: ConnId, modes: u8) -> bool {
        let Some(m) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(bits) = m.get_mut(&conn) else {
            return false;
        };
        let had = *bits & modes;
        if had == 0 {
            return false;
        }
        if had & RECURSIVE != 0 {
            self.recursive -= 1;
        }
        *bits &= !modes;
        if *bits == 0 {
            m.remove(&conn);
            if m.is_empty() {
                self.by_path.remove(path);
            }
            // A connection whose last watch fired or was removed keeps its (empty)
            // entry until it closes, as ZooKeeper's `watch2Paths` does: `wchs` counts
            // it and `wchc` lists its session without paths.
            if let Some(paths) = self.by_conn.get_mut(&conn) {
                paths.remove(path);
            }
        }
        true
    }

    fn remove_conn(&mut self, conn: ConnId) {
        let Some(paths) = self.by_conn.remove(&conn) else {
            return;
        };
        for p in paths {
            if let Some(m) = self.by_path.get_mut(&p) {
                if let Some(bits) = m.remove(&conn) {
                    if bits & RECURSIVE != 0 {
                        self.recursive -= 1;
                    }
                }
                if m.is_empty() {
                    self.by_path.remove(&p);
                }
            }
        }
    }

    /// The connections a change at `path` fires (sorted, each once); one-shot watches
    /// at `path` are consumed. Recursive watches on ancestors fire too.
    fn fire(&mut self, path: &str) -> BTreeSet<ConnId> {
        let mut out = BTreeSet::new();
        if let Some(m) = self.by_path.get(path) {
            let conns: Vec<ConnId> = m.keys().copied().collect();
            for c in conns {
                out.insert(c);
                self.remove(path, c, STANDARD);
            }
        }
        if self.recursive > 0 {
            let mut p = path;
            while p != "/" {
                p = rzk_proto::path::parent(p);
                if let Some(m) = self.by_path.get(p) {
                    out.extend(
                        m.iter()
                            .filter(|(_, b)| **b & RECURSIVE != 0)
                            .map(|(c, _)| *c),
                    );
                }
            }
        }
        out
    }

    fn count(&self) -> usize {
        self.by_path.values().map(Map::len).sum()
    }
}

/// The watch manager.
#[derive(Debug, Default)]
pub struct WatchManager {
    data: Table,
    child: Table,
}

fn ev(event_type: i32, path: &str) -> WatcherEvent {
    WatcherEvent {
        event_type,
        state: event::STATE_SYNC_CONNECTED,
        path: path.to_owned(),
    }
}

impl WatchManager {
    pub fn new() -> WatchManager {
        WatchManager::default()
    }

    /// getData / exists with watch.
    pub fn add_data_watch(&mut self, conn: ConnId, path: &str) {
        self.data.add(path, conn, STANDARD);
    }

    /// getChildren with watch.
    pub fn add_child_watch(&mut self, conn: ConnId, path: &str) {
        self.child.add(path, conn, STANDARD);
    }

    /// addWatch (mode 0 persistent, 1 persistent-recursive); BADARGUMENTS for others.
    pub fn add_watch(&mut self, conn: ConnId, path: &str, mode: i32) -> Result<(), ErrorCode> {
        match mode {
            add_watch_mode::PERSISTENT => {
                self.data.add(path, conn, PERSISTENT);
                self.child.add(path, conn, PERSISTENT);
            }
            add_watch_mode::PERSISTENT_RECURSIVE => self.data.add(path, conn, RECURSIVE),
            _ => return Err(ErrorCode::BadArguments),
        }
        Ok(())
    }

    /// Fires the watches for `changes` (in order). `can_read(conn, acl)` decides whether
    /// a fired watch is delivered (READ on the node); undelivered one-shot watches are
    /// consumed anyway, as in ZooKeeper. Each connection gets at most one event per change.
    #[must_use = "fired one-shot watches are gone: their events must be delivered"]
    pub fn trigger(
        &mut self,
        changes: &[Change],
        mut can_read: impl FnMut(ConnId, &[Acl]) -> bool,
    ) -> Vec<(ConnId, WatcherEvent)> {
        let mut out = Vec::new();
        if self.data.by_path.is_empty() && self.child.by_path.is_empty() {
            return out;
        }
        for ch in changes {
            let mut deliver = |conns: &BTreeSet<ConnId>, skip: Option<&BTreeSet<ConnId>>| {
                for c in conns {
                    if skip.is_some_and(|s| s.contains(c)) {
                        continue;
                    }
                    if can_read(*c, &ch.acl) {
                        out.push((*c, ev(ch.event_type, &ch.path)));
                    }
                }
            };
            match ch.event_type {
                event::NODE_CREATED | event::NODE_DATA_CHANGED => {
                    let fired = self.data.fire(&ch.path);
                    deliver(&fired, None);
                }
                event::NODE_DELETED => {
                    let fired = self.data.fire(&ch.path);
                    deliver(&fired, None);
                    let child = self.child.fire(&ch.path);
                    deliver(&child, Some(&fired));
                }
                event::NODE_CHILDREN_CHANGED => {
                    let fired = self.child.fire(&ch.path);
                    deliver(&fired, None);
                }
                other => tracing::warn!(event = other, "unexpected change type"),
            }
        }
        out
    }

    /// Drops every watch of a closed connection.
    pub fn remove_conn(&mut self, conn: ConnId) {
        self.data.remove_conn(conn);
        self.child.remove_conn(conn);
    }

    /// Reconnect: re-registers watches or answers with the events missed since
    /// `relative_zxid` (docs/CLIENT-PROTOCOL.md §8 "Reconnect").
    #[must_use = "the missed events are answered only here: they must be delivered"]
    pub fn set_watches(
        &mut self,
        conn: ConnId,
        sw: &SetWatches2,
        tree: &DataTree,
    ) -> Vec<WatcherEvent> {
        let mut out = Vec::new();
        for p in &sw.data_watches {
            match tree.stat(p) {
                None => out.push(ev(event::NODE_DELETED, p)),
                Some(s) if s.mzxid > sw.relative_zxid => out.push(ev(event::NODE_DATA_CHANGED, p)),
                Some(_) => self.data.add(p, conn, STANDARD),
            }
        }
        for p in &sw.exist_watches {
            if tree.exists(p) {
                out.push(ev(event::NODE_CREATED, p));
            } else {
                self.data.add(p, conn, STANDARD);
            }
        }
        for p in &sw.child_watches {
            match tree.stat(p) {
                None => out.push(ev(event::NODE_DELETED, p)),
                Some(s) if s.pzxid > sw.relative_zxid => {
                    out.push(ev(event::NODE_CHILDREN_CHANGED, p))
                }
                Some(_) => self.child.add(p, conn, STANDARD),
            }
        }
        for p in &sw.persistent_watches {
            self.child.add(p, conn, PERSISTENT);
            self.data.add(p, conn, PERSISTENT);
        }
        for p in &sw.persistent_recursive_watches {
            self.data.add(p, conn, RECURSIVE);
        }
        out
    }

    fn modes_for(watcher_type: i32) -> Result<(u8, u8), ErrorCode> {
        // (data-table modes, child-table modes)
        Ok(match watcher_type {
            // As ZooKeeper 3.9 (ZOOKEEPER-4471): Children/Data name the one-shot watches
            // of getChildren / getData+exists only; persistent and recursive watches are
            // reached with Persistent, PersistentRecursive or Any. (3.8 matched a watch of
            // any mode here; docs/COMPATIBILITY.md.)
            watcher_type::CHILDREN => (0, STANDARD),
            watcher_type::DATA => (STANDARD, 0),
            watcher_type::ANY => (ALL_MODES, ALL_MODES),
            watcher_type::PERSISTENT => (PERSISTENT, PERSISTENT),
            watcher_type::PERSISTENT_RECURSIVE => (RECURSIVE, 0),
            _ => return Err(ErrorCode::BadArguments),
        })
    }

    /// checkWatches: Ok if `conn` has such a watch on `path`, else NOWATCHER.
    pub fn check_watches(
        &self,
        conn: ConnId,
        path: &str,
        watcher_type: i32,
    ) -> Result<(), ErrorCode> {
        let (d, c) = Self::modes_for(watcher_type)?;
        if self.data.contains(path, conn, d) || self.child.contains(path, conn, c) {
            Ok(())
        } else {
            Err(ErrorCode::NoWatcher)
        }
    }

    /// removeWatches: Ok if something was removed, else NOWATCHER.
    pub fn remove_watches(
        &mut self,
        conn: ConnId,
        path: &str,
        watcher_type: i32,
    ) -> Result<(), ErrorCode> {
        let (d, c) = Self::modes_for(watcher_type)?;
        let rd = self.data.remove(path, conn, d);
        let rc = self.child.remove(path, conn, c);
        if rd || rc {
            Ok(())
        } else {
            Err(ErrorCode::NoWatcher)
        }
    }

    /// Total watches (data + child entries), as `mntr`'s zk_watch_count. ZooKeeper 3.8
    /// keeps a persistent-recursive watch in both of its tables, so one counts twice
    /// there unless the child table already has that connection on that path; rzk keeps
    /// it in the data table only and counts it as ZooKeeper does.
    pub fn watch_count(&self) -> usize {
        let recursive_twice: usize = if self.data.recursive == 0 {
            0
        } else {
            self.data
                .by_path
                .iter()
                .map(|(path, conns)| {
                    let child = self.child.by_path.get(path);
                    conns
                        .iter()
                        .filter(|&(c, bits)| {
                            bits & RECURSIVE != 0 && !child.is_some_and(|m| m.contains_key(c))
                        })
                        .count()
                })
                .sum()
        };
        self.data.count() + self.child.count() + recursive_twice
    }

    /// `wchs` totals: (connections with watches, watched paths, watches). Like
    /// ZooKeeper 3.8 these report the data table only (getData/exists/persistent
    /// watches); child watches are counted by `watch_count` but not listed.
    pub fn summary(&self) -> (usize, usize, usize) {
        (
            self.data.by_conn.len(),
            self.data.by_path.len(),
            self.data.count(),
        )
    }

    /// `wchc`: connection -> watched paths (data table), sorted.
    pub fn dump_by_conn(&self) -> Vec<(ConnId, Vec<String>)> {
        let mut m: BTreeMap<ConnId, BTreeSet<String>> = BTreeMap::new();
        for (c, ps) in &self.data.by_conn {
            m.entry(*c).or_default().extend(ps.iter().cloned());
        }
        m.into_iter()
            .map(|(c, ps)| (c, ps.into_iter().collect()))
            .collect()
    }

    /// `wchp`: path -> watching connections (data table), sorted.
    pub fn dump_by_path(&self) -> Vec<(String, Vec<ConnId>)> {
        let mut m: BTreeMap<String, BTreeSet<ConnId>> = BTreeMap::new();
        for (p, cs) in &self.data.by_path {
            m.entry(p.clone()).or_default().extend(cs.keys().copied());
        }
        m.into_iter()
            .map(|(p, cs)| (p, cs.into_iter().collect()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ch(path: &str, t: i32) -> Change {
        Change {
            path: path.into(),
            event_type: t,
            acl: Arc::new(Acl::open_unsafe()),
        }
    }

    fn fire(w: &mut WatchManager, changes: &[Change]) -> Vec<(ConnId, i32, String)> {
        w.trigger(changes, |_, _| true)
            .into_iter()
            .map(|(c, e)| {
                assert_eq!(e.state, event::STATE_SYNC_CONNECTED);
                (c, e.event_type, e.path)
            })
            .collect()
    }

    #[test]
    fn one_shot_data_and_child() {
        let mut w = WatchManager::new();
        w.add_data_watch(1, "/a");
        w.add_child_watch(2, "/");
        let created = [
            ch("/a", event::NODE_CREATED),
            ch("/", event::NODE_CHILDREN_CHANGED),
        ];
        assert_eq!(
            fire(&mut w, &created),
            vec![
                (1, event::NODE_CREATED, "/a".into()),
                (2, event::NODE_CHILDREN_CHANGED, "/".into())
            ]
        );
        assert!(fire(&mut w, &created).is_empty(), "one-shot");
        assert_eq!(w.watch_count(), 0);
    }

    /// As ZooKeeper's `watch2Paths`: a connection whose one-shot watches all fired (or
    /// were removed) is still counted by `wchs` and listed by `wchc`, without paths,
    /// until it closes (found by the differential tester: rzk answered 0 connections).
    #[test]
    fn a_connection_stays_in_the_summary_until_it_closes() {
        let mut w = WatchManager::new();
        w.add_data_watch(1, "/a");
        w.add_data_watch(2, "/b");
        assert_eq!(w.summary(), (2, 2, 2));
        fire(&mut w, &[ch("/a", event::NODE_DATA_CHANGED)]);
        assert_eq!(w.remove_watches(2, "/b", watcher_type::DATA), Ok(()));
        assert_eq!(w.summary(), (2, 0, 0));
        assert_eq!(w.dump_by_conn(), vec![(1, vec![]), (2, vec![])]);
        assert!(w.dump_by_path().is_empty());
        w.remove_conn(1);
        w.remove_conn(2);
        assert_eq!(w.summary(), (0, 0, 0));
        assert!(w.dump_by_conn().is_empty());
    }

    #[test]
    fn delete_fires_data_then_child_once_per_connection() {
        let mut w = WatchManager::new();
        w.add_data_watch(1, "/a");
        w.add_child_watch(1, "/a");
        w.add_child_watch(2, "/a");
        w.add_child_watch(3, "/");
        let del = [
            ch("/a", event::NODE_DELETED),
            ch("/", event::NODE_CHILDREN_CHANGED),
        ];
        assert_eq!(
            fire(&mut w, &del),
            vec![
                (1, event::NODE_DELETED, "/a".into()),
                (2, event::NODE_DELETED, "/a".into()),
                (3, event::NODE_CHILDREN_CHANGED, "/".into())
            ]
        );
        assert_eq!(w.watch_count(), 0, "suppressed child watch consumed too");
    }

    #[test]
    fn watch_count_counts_a_recursive_watch_in_both_tables() {
        // ZooKeeper 3.8's zk_watch_count after the same registrations (seen with mntr):
        // a recursive watch is an entry of its data and its child table, merged with a
        // getChildren watch of the same connection on the same path.
        let mut w = WatchManager::new();
        w.add_watch(1, "/r", add_watch_mode::PERSISTENT_RECURSIVE)
            .unwrap();
        assert_eq!(w.watch_count(), 2);
        w.add_data_watch(1, "/r");
        assert_eq!(w.watch_count(), 2, "same connection, same path: merged");
        w.add_child_watch(1, "/r");
        assert_eq!(w.watch_count(), 2);
        w.add_watch(2, "/r", add_watch_mode::PERSISTENT).unwrap();
        assert_eq!(
            w.watch_count(),
            4,
            "a persistent watch is in both tables too"
        );
        w.add_watch(2, "/s", add_watch_mode::PERSISTENT_RECURSIVE)
            .unwrap();
        assert_eq!(w.watch_count(), 6);
        w.remove_conn(1);
        assert_eq!(w.watch_count(), 4);
    }

    #[test]
    fn persistent_and_recursive() {
        let mut w = WatchManager::new();
        w.add_watch(1, "/p", add_watch_mode::PERSISTENT).unwrap();
        w.add_watch(2, "/p", add_watch_mode::PERSISTENT_RECURSIVE)
            .unwrap();
        w.add_data_watch(2, "/p/c");
        assert_eq!(w.add_watch(1, "/p", 7), Err(ErrorCode::BadArguments));
        let create_child = [
            ch("/p/c", event::NODE_CREATED),
            ch("/p", event::NODE_CHILDREN_CHANGED),
        ];
        for _ in 0..2 {
            let got = fire(&mut w, &create_child);
            assert!(got.contains(&(2, event::NODE_CREATED, "/p/c".into())));
            assert!(got.contains(&(1, event::NODE_CHILDREN_CHANGED, "/p".into())));
            assert!(!got
                .iter()
                .any(|(c, t, _)| *c == 2 && *t == event::NODE_CHILDREN_CHANGED));
            assert_eq!(
                got.iter().filter(|(c, _, _)| *c == 2).count(),
                1,
                "one event per conn"
            );
        }
        let got = fire(&mut w, &[ch("/p/c/d/e", event::NODE_DATA_CHANGED)]);
        assert_eq!(got, vec![(2, event::NODE_DATA_CHANGED, "/p/c/d/e".into())]);
        let got = fire(&mut w, &[ch("/p", event::NODE_DATA_CHANGED)]);
        assert_eq!(got.len(), 2);
        // a recursive watch on / sees everything
        w.add_watch(3, "/", add_watch_mode::PERSISTENT_RECURSIVE)
            .unwrap();
        let got = fire(&mut w, &[ch("/x", event::NODE_DATA_CHANGED)]);
        assert_eq!(got, vec![(3, event::NODE_DATA_CHANGED, "/x".into())]);
    }

    #[test]
    fn acl_filter_consumes_watch() {
        let mut w = WatchManager::new();
        w.add_data_watch(1, "/a");
        let got = w.trigger(&[ch("/a", event::NODE_DATA_CHANGED)], |_, _| false);
        assert!(got.is_empty());
        assert_eq!(w.watch_count(), 0);
    }

    #[test]
    fn check_remove_and_conn_removal() {
        let mut w = WatchManager::new();
        w.add_data_watch(1, "/a");
        w.add_watch(1, "/a", add_watch_mode::PERSISTENT).unwrap();
        // 3.9 (ZOOKEEPER-4471): Data matches the one-shot data watch; Children does not
        // match the persistent watch, though it sits in the child table too.
        assert_eq!(w.check_watches(1, "/a", watcher_type::DATA), Ok(()));
        assert_eq!(
            w.check_watches(1, "/a", watcher_type::CHILDREN),
            Err(ErrorCode::NoWatcher)
        );
        assert_eq!(w.check_watches(1, "/a", watcher_type::PERSISTENT), Ok(()));
        assert_eq!(
            w.check_watches(2, "/a", watcher_type::ANY),
            Err(ErrorCode::NoWatcher)
        );
        assert_eq!(w.summary(), (1, 1, 1));
        assert_eq!(w.dump_by_path(), vec![("/a".to_string(), vec![1])]);
        assert_eq!(w.dump_by_conn(), vec![(1, vec!["/a".to_string()])]);
        assert_eq!(w.remove_watches(1, "/a", watcher_type::DATA), Ok(()));
        assert_eq!(
            w.remove_watches(1, "/a", watcher_type::DATA),
            Err(ErrorCode::NoWatcher),
            "the persistent watch left is not a Data watch"
        );
        assert_eq!(w.check_watches(1, "/a", watcher_type::PERSISTENT), Ok(()));
        assert_eq!(w.check_watches(1, "/a", watcher_type::ANY), Ok(()));
        assert_eq!(
            w.summary(),
            (1, 1, 1),
            "the persistent watch is still there"
        );
        assert_eq!(w.remove_watches(1, "/a", watcher_type::PERSISTENT), Ok(()));
        // The connection is still counted (without paths) until it closes.
        assert_eq!(w.summary(), (1, 0, 0));
        w.add_child_watch(1, "/a");
        assert_eq!(w.check_watches(1, "/a", watcher_type::CHILDREN), Ok(()));
        assert_eq!(w.summary(), (1, 0, 0), "wchs lists the data table only");
        w.remove_conn(1);
        assert_eq!(w.summary(), (0, 0, 0));
        assert_eq!(w.watch_count(), 0);
        assert_eq!(w.check_watches(1, "/a", 9), Err(ErrorCode::BadArguments));
    }

    /// Children / Data do not match persistent or recursive watches (ZooKeeper 3.9,
    /// ZOOKEEPER-4471; 3.8 answered OK for a Children check on a recursive watch).
    #[test]
    fn children_and_data_types_match_one_shot_watches_only() {
        let mut w = WatchManager::new();
        w.add_watch(1, "/r", add_watch_mode::PERSISTENT_RECURSIVE)
            .unwrap();
        for t in [watcher_type::CHILDREN, watcher_type::DATA] {
            assert_eq!(w.check_watches(1, "/r", t), Err(ErrorCode::NoWatcher));
            assert_eq!(w.remove_watches(1, "/r", t), Err(ErrorCode::NoWatcher));
        }
        assert_eq!(
            w.watch_count(),
            2,
            "nothing was removed (counted as in ZooKeeper's two tables)"
        );
        assert_eq!(
            w.check_watches(1, "/r", watcher_type::PERSISTENT_RECURSIVE),
            Ok(())
        );
        assert_eq!(w.check_watches(1, "/r", watcher_type::ANY), Ok(()));
        // the recursive watch still fires
        let got = fire(&mut w, &[ch("/r/x", event::NODE_CREATED)]);
        assert_eq!(got, vec![(1, event::NODE_CREATED, "/r/x".into())]);
        // a one-shot child watch next to it is what Children names
        w.add_child_watch(1, "/r");
        assert_eq!(w.check_watches(1, "/r", watcher_type::CHILDREN), Ok(()));
        assert_eq!(w.remove_watches(1, "/r", watcher_type::CHILDREN), Ok(()));
        assert_eq!(
            w.check_watches(1, "/r", watcher_type::PERSISTENT_RECURSIVE),
            Ok(())
        );
        assert_eq!(w.remove_watches(1, "/r", watcher_type::ANY), Ok(()));
        assert_eq!(w.watch_count(), 0);
    }

    #[test]
    fn set_watches_reconnect_rules() {
        let mut t = DataTree::new();
        let mk = |zxid, txn| rzk_proto::txn::TxnRecord {
            header: rzk_proto::txn::TxnHeader {
                client_id: 1,
                cxid: 1,
                zxid,
                time: 0,
                txn_type: 0,
            },
            txn,
            digest: None,
        };
        let create = |p: &str| {
            rzk_proto::txn::Txn::Create(
                1,
                rzk_proto::txn::CreateTxn {
                    path: p.into(),
                    acl: Acl::open_unsafe(),
                    parent_cversion: -1,
                    ..Default::default()
                },
            )
        };
        t.apply(&mk(5, create("/old")));
        t.apply(&mk(9, create("/new")));
        let mut w = WatchManager::new();
        let sw = SetWatches2 {
            relative_zxid: 6,
            data_watches: vec!["/old".into(), "/new".into(), "/gone".into()],
            exist_watches: vec!["/old".into(), "/missing".into()],
            child_watches: vec!["/".into(), "/old".into()],
            persistent_watches: vec!["/pp".into()],
            persistent_recursive_watches: vec!["/rr".into()],
        };
        let evs: Vec<(i32, String)> = w
            .set_watches(7, &sw, &t)
            .into_iter()
            .map(|e| (e.event_type, e.path))
            .collect();
        assert_eq!(
            evs,
            vec![
                (event::NODE_DATA_CHANGED, "/new".into()),
                (event::NODE_DELETED, "/gone".into()),
                (event::NODE_CREATED, "/old".into()),
                (event::NODE_CHILDREN_CHANGED, "/".into()),
            ]
        );
        assert_eq!(w.check_watches(7, "/old", watcher_type::DATA), Ok(()));
        assert_eq!(w.check_watches(7, "/missing", watcher_type::DATA), Ok(()));
        assert_eq!(w.check_watches(7, "/old", watcher_type::CHILDREN), Ok(()));
        assert_eq!(w.check_watches(7, "/pp", watcher_type::PERSISTENT), Ok(()));
        assert_eq!(
            w.check_watches(7, "/rr", watcher_type::PERSISTENT_RECURSIVE),
            Ok(())
        );
    }
}
