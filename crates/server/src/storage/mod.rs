//! Persistence seam: the transaction log the write pipeline appends to.
//!
//! Owns only the [`TxnLog`] trait and a non-durable in-memory implementation (tests and
//! the simulator). The server's ZooKeeper-format log ([`txnlog::FileTxnLog`]) and
//! snapshot files are implemented in files beside this one. This module must never be
//! called from the async runtime threads directly for syncing: the pipeline calls
//! [`TxnLog::sync`] on a blocking thread.

use rzk_proto::txn::TxnRecord;
use std::io;

/// An append-only transaction log with group commit: append many, sync once.
pub trait TxnLog: Send {
    /// Buffers one record (in zxid order); returns its framed size in bytes (0 when the
    /// implementation does not frame records).
    #[must_use = "an append that failed must stop the write path"]
    fn append(&mut self, rec: &TxnRecord) -> io::Result<u64>;
    /// Makes every appended record durable.
    fn sync(&mut self) -> io::Result<()>;
    /// Closes the current file so the next append starts a new one (before a snapshot).
    /// Records appended so far become durable at the next [`TxnLog::sync`].
    fn roll(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Keeps records in memory only (nothing survives a restart). Counts syncs so tests can
/// observe group commit.
#[derive(Debug, Default)]
pub struct MemoryTxnLog {
    pub records: Vec<TxnRecord>,
    pub syncs: u64,
    /// When false, records are counted but not kept (for long-running servers).
    pub keep: bool,
    pub appended: u64,
}

impl MemoryTxnLog {
    /// A log that keeps nothing but counts.
    pub fn discarding() -> MemoryTxnLog {
        MemoryTxnLog::default()
    }

    /// A log that keeps every record (tests).
    pub fn keeping() -> MemoryTxnLog {
        MemoryTxnLog {
            keep: true,
            ..MemoryTxnLog::default()
        }
    }
}

impl TxnLog for MemoryTxnLog {
    fn append(&mut self, rec: &TxnRecord) -> io::Result<u64> {
        self.appended += 1;
        if self.keep {
            self.records.push(rec.clone());
        }
        Ok(0)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.syncs += 1;
        Ok(())
    }
}

// --- storage engineer: ZooKeeper-format files (additive) ---
pub mod db;
pub mod epoch_file;
pub mod files;
pub mod log_reader;
pub mod log_repair;
pub mod open;
pub mod purge;
pub mod recovery;
pub mod settings;
pub mod snap_policy;
pub mod snapshot;
pub mod txnlog;

pub use open::{open, OpenError, Recovered};
pub use settings::StorageSettings;
