//! ZooKeeper 3.8's server-to-server wire formats (docs/QUORUM-PROTOCOL.md).
//!
//! Owns: the leader <-> learner `QuorumPacket` and its payloads (`packet`, `payload`), and
//! the election-port connection header and FastLeaderElection notification (`election`).
//! Byte-exact with ZooKeeper, including nulls (`-1` lengths) where ZooKeeper writes them.
//!
//! Must never: do IO, decide protocol behaviour (that is `rzk-server`'s `zab/`), or panic
//! on malformed input.

pub mod election;
pub mod packet;
pub mod payload;

pub use election::{InitialMessage, Notification, ServerState};
pub use packet::{PacketType, QuorumPacket};
pub use payload::{ForwardedRequest, LearnerInfo, SessionTouch};

/// Learner/leader protocol version sent in LEADERINFO and LearnerInfo (`0x10000`).
pub const LEARNER_PROTOCOL_VERSION: i32 = 0x10000;
