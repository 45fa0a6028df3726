//! rzk-proto: ZooKeeper's wire and disk records ("jute"), opcodes, error codes and path rules.
//!
//! This crate is pure: it turns bytes into typed records and back, and never does IO,
//! never blocks and never allocates more than the input announces within the caller's limit.
//! Every decoder returns a [`DecodeError`] on malformed input instead of panicking.

pub mod data;
pub mod error;
pub mod ids;
pub mod java_utf8;
pub mod jute;
pub mod multi;
pub mod opcode;
pub mod path;
pub mod quorum;
pub mod records;
pub mod txn;

pub use data::Data;
pub use error::ErrorCode;
pub use ids::{ServerId, SessionId, Zxid};
pub use jute::{DecodeError, Jute, Reader};
pub use opcode::OpCode;
