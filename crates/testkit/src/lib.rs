//! rzk-testkit: harnesses written once for rzk's test suites.
//!
//! - [`server`]: in-process rzk servers and ensembles (fresh data directories, free
//!   loopback ports, clean stop, crash, restart on the same directory and port), and
//!   [`server::hosts_or_start`], the one place `RZK_TEST_HOSTS` is read.
//! - [`raw`]: a raw ZooKeeper-protocol session over TCP (frames, handshake, resume),
//!   precise enough to pipeline requests and observe the exact order of replies and
//!   notifications, and a typed test client on top of it.
//! - [`fifo`]: the randomized per-session order checker (ZooKeeper's FIFO client order
//!   guarantee): many sessions pipeline random reads, writes and watch registrations and
//!   every reply and notification is compared with the session's own serial order.
//! - [`pki`]: throw-away CA, server and client certificates, and a server with a TLS
//!   client port using them.
//!
//! [`raw`] and [`fifo`] talk to a server through its client port only, so the same checks
//! run against rzk (standalone or any ensemble member) and against Apache ZooKeeper.

pub mod fifo;
pub mod pki;
pub mod raw;
pub mod server;
