//! Public value types: session states, watch events, watch modes, ACL helpers.
//!
//! Plain data only; nothing here does IO or holds a channel.

use rzk_proto::opcode::{event, watcher_type};

pub use rzk_proto::opcode::CreateMode;
pub use rzk_proto::records::{Acl, ClientInfo, Id, Stat};

/// The state of a session, observable through [`crate::Client::state_watcher`] (Java
/// `Watcher.Event.KeeperState` and `ZooKeeper.States`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Not connected yet, or connection lost: the client is trying other hosts.
    /// The session may still be alive on the servers.
    Disconnected,
    /// Connected to a read-write server.
    Connected,
    /// Connected to a read-only server (writes fail with NOTREADONLY).
    ConnectedReadOnly,
    /// The servers expired the session. Terminal.
    Expired,
    /// The servers rejected our credentials. Terminal.
    AuthFailed,
    /// Closed by the user. Terminal.
    Closed,
}

impl SessionState {
    /// True when connected to a server, read-write or read-only (Java
    /// `KeeperState.SyncConnected` / `ConnectedReadOnly`).
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            SessionState::Connected | SessionState::ConnectedReadOnly
        )
    }
    /// True once the session can never be used again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SessionState::Expired | SessionState::AuthFailed | SessionState::Closed
        )
    }
    /// The `KeeperState` code ZooKeeper uses for this state.
    pub fn keeper_state(self) -> i32 {
        match self {
            SessionState::Disconnected => event::STATE_DISCONNECTED,
            SessionState::Connected => event::STATE_SYNC_CONNECTED,
            SessionState::ConnectedReadOnly => event::STATE_CONNECTED_READ_ONLY,
            SessionState::Expired => event::STATE_EXPIRED,
            SessionState::AuthFailed => event::STATE_AUTH_FAILED,
            SessionState::Closed => event::STATE_CLOSED,
        }
    }
}

/// What happened to a watched node (Java `Watcher.Event.EventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A session state change (the event's `state` says which).
    None,
    /// The node was created (an `exists` watch; Java `EventType.NodeCreated`).
    NodeCreated,
    /// The node was deleted (Java `EventType.NodeDeleted`).
    NodeDeleted,
    /// The node's data was set (Java `EventType.NodeDataChanged`).
    NodeDataChanged,
    /// A child was created or deleted (Java `EventType.NodeChildrenChanged`).
    NodeChildrenChanged,
    /// A data watch was removed by `remove_watches` (Java `DataWatchRemoved`).
    DataWatchRemoved,
    /// A child watch was removed by `remove_watches` (Java `ChildWatchRemoved`).
    ChildWatchRemoved,
    /// A persistent watch was removed (Java `PersistentWatchRemoved`).
    PersistentWatchRemoved,
    /// A type this client does not know (raw code).
    Unknown(i32),
}

impl EventType {
    /// The event type for a wire code (Java `EventType.fromInt`); unknown codes become
    /// [`EventType::Unknown`].
    pub fn from_code(c: i32) -> EventType {
        match c {
            event::NONE => EventType::None,
            event::NODE_CREATED => EventType::NodeCreated,
            event::NODE_DELETED => EventType::NodeDeleted,
            event::NODE_DATA_CHANGED => EventType::NodeDataChanged,
            event::NODE_CHILDREN_CHANGED => EventType::NodeChildrenChanged,
            event::DATA_WATCH_REMOVED => EventType::DataWatchRemoved,
            event::CHILD_WATCH_REMOVED => EventType::ChildWatchRemoved,
            event::PERSISTENT_WATCH_REMOVED => EventType::PersistentWatchRemoved,
            other => EventType::Unknown(other),
        }
    }

    /// The wire code of this event type (Java `EventType.getIntValue()`).
    pub fn code(self) -> i32 {
        match self {
            EventType::None => event::NONE,
            EventType::NodeCreated => event::NODE_CREATED,
            EventType::NodeDeleted => event::NODE_DELETED,
            EventType::NodeDataChanged => event::NODE_DATA_CHANGED,
            EventType::NodeChildrenChanged => event::NODE_CHILDREN_CHANGED,
            EventType::DataWatchRemoved => event::DATA_WATCH_REMOVED,
            EventType::ChildWatchRemoved => event::CHILD_WATCH_REMOVED,
            EventType::PersistentWatchRemoved => event::PERSISTENT_WATCH_REMOVED,
            EventType::Unknown(c) => c,
        }
    }
}

/// A watch notification (Java `WatchedEvent`). `path` is relative to the client's chroot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// What happened ([`EventType::None`] for a session state change).
    pub event_type: EventType,
    /// The session state when the event was produced.
    pub state: SessionState,
    /// The node the event is about (empty for session events).
    pub path: String,
    /// zxid of the transaction that fired the watch (3.9 servers), else -1.
    pub zxid: i64,
    /// Which server notification this is: a number unique in this process, the same in
    /// every copy of one notification delivered to several watches (a one-shot watch set
    /// by `exists` and another by `get_data` on one path each get the deletion; Java's
    /// client calls a `Watcher` object once per notification, so a caller that stands for
    /// one watcher object, as zkCli's default watcher, keeps the first copy of each). 0
    /// for events no notification carried: session state changes and local removals.
    pub notification: u64,
}

impl WatchedEvent {
    pub(crate) fn session(state: SessionState) -> WatchedEvent {
        WatchedEvent {
            event_type: EventType::None,
            state,
            path: String::new(),
            zxid: -1,
            notification: 0,
        }
    }
}

/// Mode of [`crate::Client::add_watch`] (Java `AddWatchMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddWatchMode {
    /// Data and child events on the node itself; not removed when triggered.
    Persistent,
    /// Created, deleted and data-changed events on the node and all its descendants
    /// (no child events); not removed when triggered.
    PersistentRecursive,
}

impl AddWatchMode {
    /// The wire code of this mode (Java `AddWatchMode.getMode()`).
    pub fn code(self) -> i32 {
        match self {
            AddWatchMode::Persistent => rzk_proto::opcode::add_watch_mode::PERSISTENT,
            AddWatchMode::PersistentRecursive => {
                rzk_proto::opcode::add_watch_mode::PERSISTENT_RECURSIVE
            }
        }
    }
}

/// Which watches [`crate::Client::remove_watches`] and [`crate::Client::check_watches`]
/// address (Java `Watcher.WatcherType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatcherType {
    /// Child watches (left by `get_children_w`).
    Children,
    /// Data watches (left by `get_data_w` and `exists_w`).
    Data,
    /// Watches of every kind.
    Any,
    /// Persistent watches (`add_watch` with [`AddWatchMode::Persistent`]). Servers of
    /// ZooKeeper 3.9 and rzk only: Apache ZooKeeper 3.8 answers MARSHALLINGERROR and
    /// keeps the watch (use [`WatcherType::Any`] there).
    Persistent,
    /// Persistent recursive watches (`add_watch` with
    /// [`AddWatchMode::PersistentRecursive`]). As [`WatcherType::Persistent`]: 3.9 and rzk.
    PersistentRecursive,
}

impl WatcherType {
    /// The wire code of this watcher type (Java `Watcher.WatcherType.getIntValue()`).
    pub fn code(self) -> i32 {
        match self {
            WatcherType::Children => watcher_type::CHILDREN,
            WatcherType::Data => watcher_type::DATA,
            WatcherType::Any => watcher_type::ANY,
            WatcherType::Persistent => watcher_type::PERSISTENT,
            WatcherType::PersistentRecursive => watcher_type::PERSISTENT_RECURSIVE,
        }
    }
}

/// `[ALL, world:anyone]`: anyone may do anything (Java `ZooDefs.Ids.OPEN_ACL_UNSAFE`).
pub fn open_acl_unsafe() -> Vec<Acl> {
    Acl::open_unsafe()
}

/// ACL permission bits (Java `ZooDefs.Perms`): `READ`, `WRITE`, `CREATE`, `DELETE`,
/// `ADMIN` and `ALL`, or-ed into [`Acl`]'s `perms`.
pub use rzk_proto::opcode::perms;

/// The id of a `digest` ACL for `user` with `password`: `user:base64(sha1(user:password))`
/// (Java `DigestAuthenticationProvider.generateDigest`). A client that ran
/// `add_auth("digest", b"user:password")` matches it.
///
/// ```
/// use rzk_client::{digest_acl_id, perms, Acl};
/// let acl = Acl::new(perms::READ | perms::WRITE, "digest", &digest_acl_id("alice", "pw"));
/// assert!(acl.id.id.starts_with("alice:"));
/// ```
pub fn digest_acl_id(user: &str, password: &str) -> String {
    use base64::Engine as _;
    use sha1::Digest as _;
    let hash = sha1::Sha1::digest(format!("{user}:{password}").as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// `[READ, world:anyone]`: anyone may read (Java `ZooDefs.Ids.READ_ACL_UNSAFE`).
pub fn read_acl_unsafe() -> Vec<Acl> {
    vec![Acl::new(rzk_proto::opcode::perms::READ, "world", "anyone")]
}

/// `[ALL, auth:]`: all permissions for the creator's authenticated ids (Java
/// `ZooDefs.Ids.CREATOR_ALL_ACL`).
pub fn creator_all_acl() -> Vec<Acl> {
    vec![Acl::new(rzk_proto::opcode::perms::ALL, "auth", "")]
}
