//! rzk-testkit: harnesses written once for rzk's test suites.
//!
//! - [`raw`]: a raw ZooKeeper-protocol session over TCP (frames, handshake, resume),
//!   precise enough to pipeline requests and observe the exact order of replies and
//!   notifications.
//! - [`fifo`]: the randomized per-session order checker (ZooKeeper's FIFO client order
//!   guarantee): many sessions pipeline random reads, writes and watch registrations and
//!   every reply and notification is compared with the session's own serial order.
//!
//! Everything here talks to a server through its client port only, so the same checks
//! run against rzk (standalone or any ensemble member) and against Apache ZooKeeper.

pub mod fifo;
pub mod raw;
