//! rzk-sim: a deterministic simulator of an rzk ensemble.
//!
//! Owns: a seeded world that drives the real `rzk_server::zab` core of 3 or 5 (plus
//! sometimes an observer) servers through a fake network (delay, drop, duplicate,
//! reorder, partitions that heal, connection resets), fake disks (a crash loses whatever
//! was not fsynced), a fake clock, crashes and restarts, and clients writing to the leader;
//! and the checker of ZAB's safety properties, run on every step. Whole-server mode
//! (`SimOptions::server`, `world/server.rs`) adds on every node the server's prep, tree
//! apply, watches, reads and per-session reply order, driven by seeded clients whose
//! every reply is checked (docs/TESTING.md §4).
//!
//! Must never: read the real clock, use threads or OS randomness, or let real files
//! decide anything — a seed must always replay the same run. (Whole-server mode writes a
//! restarting node's txn log to a scratch file of deterministic contents, because
//! start-up's log reader reads files only.)

pub mod checker;
pub mod net;
pub mod world;

pub use checker::Violation;
pub use world::{run_seed, trace_seed, SimFailure, SimOptions, SimReport};
