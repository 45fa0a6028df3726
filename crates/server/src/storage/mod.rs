//! Storage: ZooKeeper's data directory — transaction log (`txnlog`, group commit),
//! snapshots, recovery, purge, epoch files — and [`open`], the one start-up path every
//! configuration uses. Fsync never runs on the async runtime: the node's disk thread
//! calls [`txnlog::FileTxnLog::sync_all`].

pub mod db;
pub mod dir_lock;
pub mod direct_file;
pub mod epoch_file;
#[cfg(feature = "failpoints")]
pub(crate) mod failpoints;
pub mod files;
pub mod log_reader;
pub mod log_repair;
pub mod open;
pub mod progress;
pub mod purge;
pub mod read_ahead;
pub mod recovery;
pub mod settings;
pub mod snap_policy;
pub mod snappy;
pub mod snapshot;
pub mod spool;
pub mod txnlog;

pub use open::{open, OpenError, Recovered, Replayed};
pub use settings::StorageSettings;
