//! Public value types: session states, watch events, watch modes, ACL helpers.
//!
//! Plain data only; nothing here does IO or holds a channel.

use rzk_proto::opcode::{event, watcher_type};

pub use rzk_proto::opcode::CreateMode;
pub use rzk_proto::records::{Acl, ClientInfo, Id, Stat};

/// The state of a session, observable through [`crate::Client::state_watcher`].
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

/// What happened to a watched node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A session state change (the event's `state` says which).
    None,
    NodeCreated,
    NodeDeleted,
    NodeDataChanged,
    NodeChildrenChanged,
    DataWatchRemoved,
    ChildWatchRemoved,
    PersistentWatchRemoved,
    /// A type this client does not know (raw code).
    Unknown(i32),
}

impl EventType {
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

/// A watch notification. `path` is relative to the client's chroot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    pub event_type: EventType,
    /// The session state when the event was produced.
    pub state: SessionState,
    pub path: String,
    /// zxid of the transaction that fired the watch (3.9 servers), else -1.
    pub zxid: i64,
}

impl WatchedEvent {
    pub(crate) fn session(state: SessionState) -> WatchedEvent {
        WatchedEvent {
            event_type: EventType::None,
            state,
            path: String::new(),
            zxid: -1,
        }
    }
}

/// Mode of [`crate::Client::add_watch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddWatchMode {
    /// Data and child events on the node itself; not removed when triggered.
    Persistent,
    /// Data events on the node and all descendants; not removed when triggered.
    PersistentRecursive,
}

impl AddWatchMode {
    pub fn code(self) -> i32 {
        match self {
            AddWatchMode::Persistent => rzk_proto::opcode::add_watch_mode::PERSISTENT,
            AddWatchMode::PersistentRecursive => {
                rzk_proto::opcode::add_watch_mode::PERSISTENT_RECURSIVE
            }
        }
    }
}

/// Which watches [`crate::Client::remove_watches`] / `check_watches` address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatcherType {
    Children,
    Data,
    Any,
    Persistent,
    PersistentRecursive,
}

impl WatcherType {
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

/// `[ALL, world:anyone]`.
pub fn open_acl_unsafe() -> Vec<Acl> {
    Acl::open_unsafe()
}

/// `[READ, world:anyone]`.
pub fn read_acl_unsafe() -> Vec<Acl> {
    vec![Acl::new(rzk_proto::opcode::perms::READ, "world", "anyone")]
}

/// `[ALL, auth:]`: all permissions for the creator's authenticated ids.
pub fn creator_all_acl() -> Vec<Acl> {
    vec![Acl::new(rzk_proto::opcode::perms::ALL, "auth", "")]
}
