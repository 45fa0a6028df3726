//! The vocabulary of the consensus core: configuration, what the runtime loaded from disk,
//! and the `Input`s / `Output`s exchanged with the runtime. No behaviour lives here.

use bytes::Bytes;
use rzk_proto::quorum::{Notification, QuorumPacket};
use rzk_proto::{ServerId, Zxid};

/// A transaction as the core sees it: its zxid and the opaque bytes the log stores (the
/// server's `TxnRecord` encoding; the simulator uses its own bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub zxid: Zxid,
    pub payload: Bytes,
}

/// A message between servers: an election notification (election port) or a quorum packet
/// (quorum port, one ordered connection per learner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Election(Notification),
    Quorum(QuorumPacket),
}

/// Which of the two persistent epoch files (`acceptedEpoch`, `currentEpoch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochKind {
    Accepted,
    Current,
}

/// The role of this server, as reported in [`Output::RoleChanged`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Looking,
    Following,
    Leading,
    Observing,
}

impl Role {
    /// The role as one byte, for an atomic that threads other than the driver's read
    /// ([`Role::from_code`] reads it back; anything unknown is `Looking`).
    pub const fn code(self) -> u8 {
        match self {
            Role::Looking => 0,
            Role::Following => 1,
            Role::Leading => 2,
            Role::Observing => 3,
        }
    }

    /// The role of a [`Role::code`].
    pub const fn from_code(code: u8) -> Role {
        match code {
            1 => Role::Following,
            2 => Role::Leading,
            3 => Role::Observing,
            _ => Role::Looking,
        }
    }
}

/// A membership installed by a reconfig txn (ZooKeeper's `QuorumVerifier` of the txn's
/// `/zookeeper/config` text), as the core needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConfig {
    /// Participants.
    pub voters: Vec<ServerId>,
    /// Observers.
    pub observers: Vec<ServerId>,
    /// Hierarchical quorums (`group.G` / `weight.S` lines); `None` for plain majorities.
    pub groups: Option<super::quorum::Groups>,
    /// The membership's version: the zxid of the reconfig txn (or of the files it came
    /// from, or the leader's `(epoch, 0)`: `ZabConfig::version_initial_membership`).
    pub version: Zxid,
    /// The membership text (what `/zookeeper/config` holds), carried in notifications
    /// and NEWLEADER once it is active.
    pub text: String,
}

impl NewConfig {
    /// The quorums of this membership.
    pub fn quorum(&self) -> super::quorum::QuorumVerifier {
        super::quorum::QuorumVerifier::with_groups(
            &self.voters,
            &self.observers,
            self.groups.as_ref(),
        )
    }
}

/// The runtime's reading of a txn: the membership it installs when it is a reconfig
/// txn, else `None`. The core never looks inside payloads itself.
pub type ReconfigOf = fn(&Txn) -> Option<NewConfig>;

/// A [`ReconfigOf`] for runtimes without reconfig: no txn changes the membership.
pub fn no_reconfig(_: &Txn) -> Option<NewConfig> {
    None
}

/// The runtime's reading of a membership text (as notifications carry it), `None` for
/// text it cannot read.
pub type ConfigOfText = fn(&str) -> Option<NewConfig>;

/// A [`ConfigOfText`] for runtimes without reconfig: no text is read.
pub fn no_config_text(_: &str) -> Option<NewConfig> {
    None
}

/// The runtime's reading of server `id`'s quorum address (`host:port`, host in lower
/// case) in a membership text; `None` when the text has no such line.
pub type QuorumAddressOf = fn(&str, ServerId) -> Option<String>;

/// A [`QuorumAddressOf`] for runtimes without reconfig: no text is read.
pub fn no_quorum_address(_: &str, _: ServerId) -> Option<String> {
    None
}

/// Why a membership this server is asked to follow cannot be put in force (a reconfig
/// txn's, or NEWLEADER's text), e.g. a multi-address line; `None` when it can be.
/// A learner stops rather than acknowledge or follow such a membership
/// ([`Output::Unsupported`]).
pub type UnreadableReconfig = fn(&Txn) -> Option<String>;
/// The same for a membership text (NEWLEADER's).
pub type UnreadableConfig = fn(&str) -> Option<String>;

/// An [`UnreadableReconfig`] / [`UnreadableConfig`] for runtimes that read every
/// membership (or none).
pub fn all_readable<T: ?Sized>(_: &T) -> Option<String> {
    None
}

/// Static configuration of the core. Times are in milliseconds of the runtime's clock.
#[derive(Debug, Clone)]
pub struct ZabConfig {
    pub my_id: ServerId,
    /// Participants (`server.N=...:participant`), including this server if it is one.
    pub voters: Vec<ServerId>,
    /// Observers (`server.N=...:observer`), including this server if it is one.
    pub observers: Vec<ServerId>,
    /// Hierarchical quorums (`group.G` / `weight.S` lines); `None` for plain majorities.
    pub groups: Option<super::quorum::Groups>,
    pub tick_ms: u64,
    pub init_limit: u64,
    pub sync_limit: u64,
    /// Committed proposals kept in memory for DIFF sync (ZooKeeper: 500).
    pub commit_log_count: usize,
    pub finalize_wait_ms: u64,
    pub min_notification_ms: u64,
    pub max_notification_ms: u64,
    /// Learner -> leader connection attempts and the pause between them.
    pub connect_attempts: u32,
    pub connect_retry_ms: u64,
    /// Quorum config text carried in notifications and NEWLEADER (may be empty).
    pub config_text: String,
    /// The version of the membership in force (0 for one no reconfig or file versioned);
    /// `LearnerInfo::config_version` carries its bits.
    pub config_version: Zxid,
    /// Which txns are reconfig txns, and the membership each installs (leader: the
    /// two-quorum rule and COMMITANDACTIVATE; learners: what to activate).
    pub reconfig_of: ReconfigOf,
    /// Reads the membership text of election notifications: a LOOKING server adopts a
    /// newer membership than its own from them (ZooKeeper's `FastLeaderElection`
    /// receiver calling `processReconfig` when `reconfigEnabled`).
    pub config_of_text: ConfigOfText,
    /// Reads a member's quorum address in a membership text: a leader whose address a
    /// committed reconfig moves is not its designated leader (`Core::keeps_quorum_address`).
    pub quorum_address_of: QuorumAddressOf,
    /// Learners: a reconfig txn from the leader whose membership this server cannot put
    /// in force; it is neither logged nor acknowledged ([`Output::Unsupported`]).
    pub unreadable_reconfig: UnreadableReconfig,
    /// Learners: the same for NEWLEADER's membership text.
    pub unreadable_config: UnreadableConfig,
    /// `reconfigEnabled`: a leader whose membership still has version 0 (never set by a
    /// reconfig or a dynamic file) gives it the zxid of its new epoch, (epoch, 0), before
    /// it sends NEWLEADER, as ZooKeeper's leader does (ZOOKEEPER-1783). A server that
    /// joins with a membership of its own then adopts the leader's, newer one from the
    /// leader's notifications (how a single voter with `standaloneEnabled=false` grows).
    pub version_initial_membership: bool,
    /// The newest membership seen proposed and not yet in force (ZooKeeper's last seen
    /// quorum verifier): read from `zoo.cfg.dynamic.next` at start-up, set when a
    /// reconfig PROPOSAL is logged, cleared when a membership at least as new is put in
    /// force. A leader elected while it is set carries it in NEWLEADER, needs a quorum
    /// of it too for NEWLEADER, and puts it in force when established (ZOOKEEPER-1324:
    /// a reconfig acked but not committed before a leader change or a crash completes).
    pub last_seen: Option<NewConfig>,
    /// TEST ONLY: a leader commits its own proposals without waiting for a quorum. Exists
    /// so the simulator can prove its checker catches a broken leader. Never set it.
    pub fault_commit_without_quorum: bool,
}

impl ZabConfig {
    /// ZooKeeper's defaults for the timers, for an ensemble of `voters` + `observers`.
    pub fn new(my_id: ServerId, voters: Vec<ServerId>, observers: Vec<ServerId>) -> ZabConfig {
        ZabConfig {
            my_id,
            voters,
            observers,
            groups: None,
            tick_ms: 2000,
            init_limit: 10,
            sync_limit: 5,
            commit_log_count: 500,
            finalize_wait_ms: 200,
            min_notification_ms: 200,
            max_notification_ms: 60_000,
            connect_attempts: 5,
            connect_retry_ms: 100,
            config_text: String::new(),
            config_version: Zxid::ZERO,
            reconfig_of: no_reconfig,
            config_of_text: no_config_text,
            quorum_address_of: no_quorum_address,
            unreadable_reconfig: all_readable::<Txn>,
            unreadable_config: all_readable::<str>,
            version_initial_membership: false,
            last_seen: None,
            fault_commit_without_quorum: false,
        }
    }
}

/// What the runtime recovered from disk before starting the core.
#[derive(Debug, Clone, Default)]
pub struct Durable {
    pub accepted_epoch: u32,
    pub current_epoch: u32,
    /// The zxid of the state the runtime's database was loaded at (snapshot + nothing
    /// else). The runtime's state machine must be exactly at this point.
    pub snapshot_zxid: Zxid,
    /// Logged transactions after `snapshot_zxid`, in zxid order; not yet applied.
    pub log: Vec<Txn>,
}

/// Everything the runtime feeds the core.
#[derive(Debug, Clone)]
pub enum Input {
    /// A message from peer `from` (election or quorum connection).
    Message { from: ServerId, msg: Message },
    /// The clock advanced; feed at least every `tick_ms / 4`.
    Tick { now_ms: u64 },
    /// Every transaction up to `up_to` handed over in `PersistTxns` is fsynced.
    Persisted { up_to: Zxid },
    /// The epoch file asked for in `PersistEpoch` is durable.
    EpochPersisted { kind: EpochKind, epoch: u32 },
    /// The quorum connection with `peer` broke (only the current connection; never report
    /// one that was replaced by a newer `Connect` or accepted connection).
    Disconnected { peer: ServerId },
    /// Leader: propose a transaction built for `zxid` (from [`super::Zab::next_zxid`]).
    Propose { zxid: Zxid, payload: Bytes },
    /// Learner: session table bytes (`(long sid, int timeout)`*) for the next PING reply.
    SessionTouches(Bytes),
    /// Learner: send this packet (REQUEST, REVALIDATE) to the leader.
    Forward(QuorumPacket),
    /// Leader: send this packet (REVALIDATE reply) to a learner.
    SendToLearner { to: ServerId, packet: QuorumPacket },
    /// Leader: answer a learner's forwarded `sync` with SYNC once every proposal
    /// outstanding now is committed.
    SyncRequest { from: ServerId },
}

/// Everything the core asks of the runtime. Outputs must be carried out in order; disk
/// outputs (`PersistTxns`, `PersistEpoch`, `Truncate`, `InstallSnapshot`) in order on one
/// queue, each completing before the next starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send on the election port, or on the quorum connection to/from `to`.
    Send { to: ServerId, msg: Message },
    /// Learner: open a new quorum connection to the leader `to`, closing any older one.
    Connect { to: ServerId },
    /// Close the quorum connection with `peer` (no `Disconnected` needs to follow).
    Disconnect { peer: ServerId },
    /// Append to the transaction log and fsync; then report `Persisted{last zxid}`.
    PersistTxns(Vec<Txn>),
    /// Write the epoch file durably; then report `EpochPersisted`.
    PersistEpoch { kind: EpochKind, epoch: u32 },
    /// Drop every logged transaction with zxid > `to` (durably).
    Truncate { to: Zxid },
    /// Leader: send `SNAP(zxid)` followed by the database stream and signature to `to`.
    /// The runtime's database is exactly at `zxid` when it handles this output.
    SendSnapshot { to: ServerId, zxid: Zxid },
    /// Learner: replace the database by the snapshot received with `SNAP(zxid)`, persist it
    /// as a snapshot and discard the whole transaction log.
    InstallSnapshot { zxid: Zxid },
    /// Apply a committed transaction. Commits come in strictly increasing zxid order.
    Commit(Txn),
    /// Role change. `leader` is the elected leader (self when leading).
    RoleChanged {
        role: Role,
        leader: Option<ServerId>,
    },
    /// Leader: epoch established (NEWLEADER acked by a quorum), may propose. Learner:
    /// UPTODATE received, may serve clients.
    Established { epoch: u32, leader: ServerId },
    /// Leader: `Propose` refused (not an established leader, wrong zxid).
    ProposalRejected { zxid: Zxid },
    /// A packet for the runtime: REQUEST / REVALIDATE at the leader; SYNC / REVALIDATE
    /// replies at a learner.
    Deliver {
        from: ServerId,
        packet: QuorumPacket,
    },
    /// Leader: a learner's PING session table.
    SessionTouches { from: ServerId, data: Bytes },
    /// A reconfig txn committed (it was handed over in `Commit` just before): `config` is
    /// the membership in force from now on (ZooKeeper's `processReconfig`), `leader` the
    /// designated leader of the new membership. The runtime writes the dynamic
    /// configuration file and reaches the new members.
    Activate { config: NewConfig, leader: ServerId },
    /// Learner: the leader asks this server to follow a membership it cannot put in
    /// force (`why` names the line, e.g. a multi-address `server.N`). The txn or
    /// NEWLEADER carrying it was not logged or acknowledged; the runtime stops the
    /// server. Following it would count quorums other than the ensemble's (a split
    /// brain), and refusing the ACK alone would leave this member stuck re-syncing.
    Unsupported { why: String },
    /// Leader: the epochs its quorum accepted leave no next epoch whose zxids stay
    /// positive ([`rzk_proto::Zxid::MAX_EPOCH`]); `why` says which. The runtime stops
    /// the server (it could only reuse zxids below logged ones).
    EpochExhausted { why: String },
}
