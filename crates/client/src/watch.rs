//! Client-side watch bookkeeping and the handles users await.
//!
//! [`WatchRegistry`] lives inside the session task: it records which paths have
//! one-shot (data / exist / child) and persistent watches, routes server notifications
//! to the right receivers the way the Java client's `ZKWatchManager` does, and lists the
//! paths to re-register after a reconnect. It must never block: persistent-watch
//! streams are bounded and a stream whose consumer falls [`WATCH_STREAM_CAPACITY`]
//! events behind is closed (with a warning) rather than stalling the session.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, oneshot};

use crate::connect_string::strip_chroot;
use crate::types::{EventType, SessionState, WatchedEvent, WatcherType};

/// Events a persistent watch stream may hold before it is closed for falling behind.
pub const WATCH_STREAM_CAPACITY: usize = 4096;

/// A one-shot watch: resolves with the first event for the watched node, or with a
/// session event (`EventType::None`, state `Expired`/`Closed`/`AuthFailed`) if the session ends
/// first. Connection loss alone does not resolve it: the watch is re-registered after
/// reconnecting.
#[derive(Debug)]
pub struct OneshotWatch {
    rx: oneshot::Receiver<WatchedEvent>,
}

impl Future for OneshotWatch {
    type Output = WatchedEvent;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WatchedEvent> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| WatchedEvent::session(SessionState::Closed)))
    }
}

/// A persistent (optionally recursive) watch: a stream of events. It ends after the
/// watch is removed or the session ends (the last item is then the removal or session event).
///
/// Connection changes come through too, as the Java client's default watcher sees them:
/// an event with `event_type` [`crate::EventType::None`], an empty path and the new state
/// (`Disconnected`, then `Connected` once the session is back and the watch registered
/// again); node events have a path. Dropping the stream does not remove the watch on
/// the server: call [`crate::Client::remove_watches`] for that.
#[derive(Debug)]
pub struct WatchStream {
    rx: mpsc::Receiver<WatchedEvent>,
}

impl WatchStream {
    /// The next event, or `None` once the watch is gone.
    pub async fn next(&mut self) -> Option<WatchedEvent> {
        self.rx.recv().await
    }
}

impl futures::Stream for WatchStream {
    type Item = WatchedEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WatchedEvent>> {
        self.rx.poll_recv(cx)
    }
}

/// Where a watch request registers once its reply arrives.
#[derive(Debug)]
pub(crate) enum WatchReg {
    /// getData(watch): on OK.
    Data(String, oneshot::Sender<WatchedEvent>),
    /// exists(watch): data table on OK, exist table on NONODE.
    Exists(String, oneshot::Sender<WatchedEvent>),
    /// getChildren(watch): on OK.
    Child(String, oneshot::Sender<WatchedEvent>),
    /// addWatch: on OK.
    Persistent(String, bool, mpsc::Sender<WatchedEvent>),
    /// removeWatches: on OK, drop local watches of that type.
    Remove(String, WatcherType),
}

impl WatchReg {
    /// True if this registration sets a watch, for a receiver still waiting, that a
    /// removeWatches of `kind` on `path` could remove. Persistent watches count for
    /// every kind: on ZooKeeper 3.8 a session's watches of different kinds on one path
    /// replace each other. A registration whose receiver is gone (its waiter gave up
    /// while the request was in flight) does not count: a removeWatches sent after it
    /// reaches the server after it and takes that watch off too.
    pub(crate) fn sets(&self, path: &str, kind: WatcherType) -> bool {
        let data = matches!(kind, WatcherType::Data | WatcherType::Any);
        let child = matches!(kind, WatcherType::Children | WatcherType::Any);
        match self {
            WatchReg::Data(p, tx) | WatchReg::Exists(p, tx) => data && p == path && !tx.is_closed(),
            WatchReg::Child(p, tx) => child && p == path && !tx.is_closed(),
            WatchReg::Persistent(p, _, tx) => p == path && !tx.is_closed(),
            WatchReg::Remove(..) => false,
        }
    }
}

pub(crate) fn oneshot_pair() -> (oneshot::Sender<WatchedEvent>, OneshotWatch) {
    let (tx, rx) = oneshot::channel();
    (tx, OneshotWatch { rx })
}

pub(crate) fn stream_pair() -> (mpsc::Sender<WatchedEvent>, WatchStream) {
    let (tx, rx) = mpsc::channel(WATCH_STREAM_CAPACITY);
    (tx, WatchStream { rx })
}

/// Server notifications dispatched in this process, for [`WatchedEvent::notification`].
static NOTIFICATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

type Once = Vec<oneshot::Sender<WatchedEvent>>;
type Persist = Vec<mpsc::Sender<WatchedEvent>>;

/// A watch receiver's sending side, which knows when its receiver is gone.
trait WatchSender {
    fn receiver_gone(&self) -> bool;
}

impl WatchSender for oneshot::Sender<WatchedEvent> {
    fn receiver_gone(&self) -> bool {
        self.is_closed()
    }
}

impl WatchSender for mpsc::Sender<WatchedEvent> {
    fn receiver_gone(&self) -> bool {
        self.is_closed()
    }
}

/// Adds `tx` to a path's senders, first dropping those whose receivers are gone: a
/// waiter that sets the same watch again and again and drops each receiver before it
/// fires (a queue's `take` re-listing an idle queue every second) would otherwise grow
/// the list until the watch fires or the session reconnects (found by a review in
/// session 56).
fn push_live<S: WatchSender>(senders: &mut Vec<S>, tx: S) {
    senders.retain(|s| !s.receiver_gone());
    senders.push(tx);
}

/// Paths with watches, keyed by server path (chroot included).
#[derive(Debug, Default)]
pub(crate) struct WatchRegistry {
    chroot: Option<String>,
    data: HashMap<String, Once>,
    exist: HashMap<String, Once>,
    child: HashMap<String, Once>,
    persistent: HashMap<String, Persist>,
    recursive: HashMap<String, Persist>,
}

/// Watch paths to re-register after reconnecting.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct WatchPaths {
    pub data: Vec<String>,
    pub exist: Vec<String>,
    pub child: Vec<String>,
    pub persistent: Vec<String>,
    pub recursive: Vec<String>,
}

impl WatchRegistry {
    pub fn new(chroot: Option<String>) -> Self {
        WatchRegistry {
            chroot,
            ..Default::default()
        }
    }

    /// Applies a registration after its request completed with `err`.
    pub fn register(&mut self, reg: WatchReg, err: i32) {
        let no_node = rzk_proto::ErrorCode::NoNode.code();
        match reg {
            WatchReg::Data(p, tx) if err == 0 => push_live(self.data.entry(p).or_default(), tx),
            WatchReg::Exists(p, tx) if err == 0 => push_live(self.data.entry(p).or_default(), tx),
            WatchReg::Exists(p, tx) if err == no_node => {
                push_live(self.exist.entry(p).or_default(), tx)
            }
            WatchReg::Child(p, tx) if err == 0 => push_live(self.child.entry(p).or_default(), tx),
            WatchReg::Persistent(p, false, tx) if err == 0 => {
                push_live(self.persistent.entry(p).or_default(), tx)
            }
            WatchReg::Persistent(p, true, tx) if err == 0 => {
                push_live(self.recursive.entry(p).or_default(), tx)
            }
            WatchReg::Remove(p, t) if err == 0 => self.remove_local(&p, t),
            _ => {}
        }
    }

    fn event(&self, t: EventType, server_path: &str, zxid: i64) -> WatchedEvent {
        WatchedEvent {
            event_type: t,
            state: SessionState::Connected,
            path: strip_chroot(self.chroot.as_deref(), server_path),
            zxid,
            notification: 0,
        }
    }

    /// Routes a server notification; returns how many receivers got it and the event
    /// they got.
    pub fn dispatch(&mut self, t: EventType, path: &str, zxid: i64) -> (usize, WatchedEvent) {
        let ev = WatchedEvent {
            notification: NOTIFICATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
            ..self.event(t, path, zxid)
        };
        let mut once: Once = Vec::new();
        match t {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                once.extend(self.data.remove(path).unwrap_or_default());
                once.extend(self.exist.remove(path).unwrap_or_default());
            }
            EventType::NodeChildrenChanged => {
                once.extend(self.child.remove(path).unwrap_or_default());
            }
            EventType::NodeDeleted => {
                once.extend(self.data.remove(path).unwrap_or_default());
                once.extend(self.exist.remove(path).unwrap_or_default());
                once.extend(self.child.remove(path).unwrap_or_default());
            }
            _ => {}
        }
        let mut n = 0;
        for tx in once {
            if tx.send(ev.clone()).is_ok() {
                n += 1;
            }
        }
        n += deliver(&mut self.persistent, path, &ev);
        if t != EventType::NodeChildrenChanged {
            let mut p = path;
            loop {
                n += deliver(&mut self.recursive, p, &ev);
                if p == "/" {
                    break;
                }
                p = rzk_proto::path::parent(p);
            }
        }
        (n, ev)
    }

    /// True if a receiver still waits on a watch of `kind` on `path` (server path) that a
    /// removeWatches of that kind would remove; persistent watches on `path` count for
    /// every kind (as [`WatchReg::sets`]).
    pub fn in_use(&self, path: &str, kind: WatcherType) -> bool {
        fn live<T>(m: &HashMap<String, Vec<T>>, path: &str, open: impl Fn(&T) -> bool) -> bool {
            m.get(path).is_some_and(|v| v.iter().any(open))
        }
        let once = |tx: &oneshot::Sender<WatchedEvent>| !tx.is_closed();
        let persist = |tx: &mpsc::Sender<WatchedEvent>| !tx.is_closed();
        let data = matches!(kind, WatcherType::Data | WatcherType::Any);
        let child = matches!(kind, WatcherType::Children | WatcherType::Any);
        (data && (live(&self.data, path, once) || live(&self.exist, path, once)))
            || (child && live(&self.child, path, once))
            || live(&self.persistent, path, persist)
            || live(&self.recursive, path, persist)
    }

    /// Removes local watches of a type on a path, telling their receivers.
    pub fn remove_local(&mut self, path: &str, t: WatcherType) {
        let (data, child, persistent) = match t {
            WatcherType::Data => (true, false, false),
            WatcherType::Children => (false, true, false),
            WatcherType::Any => (true, true, true),
            WatcherType::Persistent | WatcherType::PersistentRecursive => (false, false, true),
        };
        if data {
            let ev = self.event(EventType::DataWatchRemoved, path, -1);
            for tx in self
                .data
                .remove(path)
                .into_iter()
                .chain(self.exist.remove(path))
                .flatten()
            {
                let _ = tx.send(ev.clone());
            }
        }
        if child {
            let ev = self.event(EventType::ChildWatchRemoved, path, -1);
            for tx in self.child.remove(path).into_iter().flatten() {
                let _ = tx.send(ev.clone());
            }
        }
        if persistent {
            let ev = self.event(EventType::PersistentWatchRemoved, path, -1);
            let mut gone = Vec::new();
            if matches!(t, WatcherType::Any | WatcherType::Persistent) {
                gone.extend(self.persistent.remove(path).unwrap_or_default());
            }
            if matches!(t, WatcherType::Any | WatcherType::PersistentRecursive) {
                gone.extend(self.recursive.remove(path).unwrap_or_default());
            }
            for tx in gone {
                let _ = tx.try_send(ev.clone());
            }
        }
    }

    /// Ends every watch with a session event (session expired, closed, auth failed).
    pub fn fail_all(&mut self, state: SessionState) {
        let ev = WatchedEvent::session(state);
        for (_, v) in self
            .data
            .drain()
            .chain(self.exist.drain())
            .chain(self.child.drain())
        {
            for tx in v {
                let _ = tx.send(ev.clone());
            }
        }
        for (_, v) in self.persistent.drain().chain(self.recursive.drain()) {
            for tx in v {
                let _ = tx.try_send(ev.clone());
            }
        }
    }

    /// Tells persistent watchers about a connection state change (they stay registered).
    pub fn notify_state(&mut self, state: SessionState) {
        let ev = WatchedEvent::session(state);
        for v in self.persistent.values().chain(self.recursive.values()) {
            for tx in v {
                let _ = tx.try_send(ev.clone());
            }
        }
    }

    /// The paths to re-register, dropping entries whose receivers are gone.
    pub fn paths(&mut self) -> WatchPaths {
        fn once_keys(m: &mut HashMap<String, Once>) -> Vec<String> {
            m.retain(|_, v| {
                v.retain(|tx| !tx.is_closed());
                !v.is_empty()
            });
            m.keys().cloned().collect()
        }
        fn persist_keys(m: &mut HashMap<String, Persist>) -> Vec<String> {
            m.retain(|_, v| {
                v.retain(|tx| !tx.is_closed());
                !v.is_empty()
            });
            m.keys().cloned().collect()
        }
        WatchPaths {
            data: once_keys(&mut self.data),
            exist: once_keys(&mut self.exist),
            child: once_keys(&mut self.child),
            persistent: persist_keys(&mut self.persistent),
            recursive: persist_keys(&mut self.recursive),
        }
    }
}

fn deliver(m: &mut HashMap<String, Persist>, path: &str, ev: &WatchedEvent) -> usize {
    let Some(v) = m.get_mut(path) else { return 0 };
    let mut n = 0;
    v.retain(|tx| match tx.try_send(ev.clone()) {
        Ok(()) => {
            n += 1;
            true
        }
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!(
                path,
                "persistent watch consumer fell behind; closing its stream"
            );
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    });
    if v.is_empty() {
        m.remove(path);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn routes_like_the_java_client() {
        let mut r = WatchRegistry::new(Some("/app".into()));
        let (d, dw) = oneshot_pair();
        let (e, ew) = oneshot_pair();
        let (c, cw) = oneshot_pair();
        let (p, mut ps) = stream_pair();
        r.register(WatchReg::Data("/app/a".into(), d), 0);
        r.register(WatchReg::Exists("/app/b".into(), e), -101);
        r.register(WatchReg::Child("/app".into(), c), 0);
        r.register(WatchReg::Persistent("/app".into(), true, p), 0);
        let paths = r.paths();
        assert_eq!(paths.exist, vec!["/app/b".to_string()]);
        assert_eq!(r.dispatch(EventType::NodeChildrenChanged, "/app", 5).0, 1);
        assert_eq!(cw.await.path, "/");
        assert_eq!(r.dispatch(EventType::NodeCreated, "/app/b", 6).0, 2);
        assert_eq!(ew.await.event_type, EventType::NodeCreated);
        let ev = ps.next().await.unwrap();
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (EventType::NodeCreated, "/b")
        );
        r.fail_all(SessionState::Expired);
        assert_eq!(dw.await.state, SessionState::Expired);
        assert_eq!(ps.next().await.unwrap().state, SessionState::Expired);
    }

    /// Every copy of one server notification carries the same number, another
    /// notification another (zkCli's default watcher prints each notification once).
    #[tokio::test]
    async fn copies_of_one_notification_share_its_number() {
        let mut r = WatchRegistry::new(None);
        let (d, dw) = oneshot_pair();
        let (e, ew) = oneshot_pair();
        let (p, mut ps) = stream_pair();
        r.register(WatchReg::Data("/a".into(), d), 0);
        r.register(WatchReg::Exists("/a".into(), e), 0);
        r.register(WatchReg::Persistent("/a".into(), false, p), 0);
        assert_eq!(r.dispatch(EventType::NodeDataChanged, "/a", -1).0, 3);
        let (a, b, c) = (dw.await, ew.await, ps.next().await.unwrap());
        assert_ne!(a.notification, 0);
        assert_eq!(
            (a.notification, b.notification),
            (c.notification, c.notification)
        );
        r.dispatch(EventType::NodeDataChanged, "/a", -1);
        let next = ps.next().await.unwrap();
        assert!(next.notification > a.notification);
        assert_eq!(WatchedEvent::session(SessionState::Expired).notification, 0);
    }

    /// A watch request whose waiter gave up while it was in flight keeps no watch in
    /// use: the waiter's removeWatches (sent after it) is not held back by it, and the
    /// server kept the watch until the node changed.
    #[test]
    fn a_registration_nobody_waits_for_sets_no_watch_in_use() {
        let (d, dw) = oneshot_pair();
        let reg = WatchReg::Data("/a".into(), d);
        assert!(reg.sets("/a", WatcherType::Data));
        assert!(!reg.sets("/a", WatcherType::Children));
        drop(dw);
        assert!(!reg.sets("/a", WatcherType::Data));
        let (p, ps) = stream_pair();
        let reg = WatchReg::Persistent("/a".into(), true, p);
        assert!(reg.sets("/a", WatcherType::Children));
        drop(ps);
        assert!(!reg.sets("/a", WatcherType::Children));
    }

    /// The same watch set again and again, each receiver dropped before it fires,
    /// keeps one sender per path, not one per registration.
    #[test]
    fn repeated_registrations_whose_receivers_are_gone_do_not_pile_up() {
        let mut r = WatchRegistry::new(None);
        for _ in 0..1000 {
            let (c, cw) = oneshot_pair();
            r.register(WatchReg::Child("/q".into(), c), 0);
            let (e, ew) = oneshot_pair();
            r.register(WatchReg::Exists("/gone".into(), e), -101);
            let (p, ps) = stream_pair();
            r.register(WatchReg::Persistent("/p".into(), true, p), 0);
            drop((cw, ew, ps));
        }
        let (c, _live) = oneshot_pair();
        r.register(WatchReg::Child("/q".into(), c), 0);
        assert_eq!(r.child["/q"].len(), 1);
        assert_eq!(r.exist["/gone"].len(), 1);
        assert_eq!(r.recursive["/p"].len(), 1);
    }

    #[tokio::test]
    async fn failed_registration_is_dropped() {
        let mut r = WatchRegistry::new(None);
        let (d, dw) = oneshot_pair();
        r.register(WatchReg::Data("/a".into(), d), -101);
        assert_eq!(r.paths(), WatchPaths::default());
        assert_eq!(dw.await.state, SessionState::Closed);
    }
}
