//! Changing existing log files: cutting a torn tail found by the reader, and ZAB's
//! TRUNC (drop every logged txn after a zxid).
//!
//! Owns only these two edits. It must never touch a file the writer has open (callers
//! run it before a [`super::txnlog::FileTxnLog`] is created or after it was rolled) and
//! never remove records at or below the zxid it was asked to keep.

use super::files::{self, FILE_HEADER_LEN};
use super::log_reader::{LogFileReader, LogReadError, TornTail};
use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    #[error(transparent)]
    Read(#[from] LogReadError),
    #[error("{}: {source}", file.display())]
    Io { file: PathBuf, source: io::Error },
    #[error("no log files found to truncate in {}", dir.display())]
    NoLogs { dir: PathBuf },
}

fn io_at(file: &Path) -> impl FnOnce(io::Error) -> RepairError + '_ {
    move |source| RepairError::Io {
        file: file.to_path_buf(),
        source,
    }
}

/// Cuts a torn tail: the file is truncated at the damaged record (a file whose header
/// itself is damaged is removed). Logs a warning naming file and offset.
pub fn truncate_torn_tail(t: &TornTail) -> Result<(), RepairError> {
    let len = fs::metadata(&t.file).map_err(io_at(&t.file))?.len();
    if t.offset < FILE_HEADER_LEN as u64 {
        tracing::warn!(
            file = %t.file.display(),
            offset = t.offset,
            fault = %t.fault,
            "transaction log has a damaged header and no records: removing it"
        );
        fs::remove_file(&t.file).map_err(io_at(&t.file))?;
    } else {
        tracing::warn!(
            file = %t.file.display(),
            offset = t.offset,
            dropped_bytes = len.saturating_sub(t.offset),
            fault = %t.fault,
            "torn last record in transaction log (crash during a write): truncating the file at this offset"
        );
        set_len(&t.file, t.offset)?;
    }
    if let Some(dir) = t.file.parent() {
        files::sync_dir(dir).map_err(io_at(dir))?;
    }
    Ok(())
}

fn set_len(file: &Path, len: u64) -> Result<(), RepairError> {
    let f = OpenOptions::new()
        .write(true)
        .open(file)
        .map_err(io_at(file))?;
    f.set_len(len).map_err(io_at(file))?;
    f.sync_all().map_err(io_at(file))
}

/// ZAB's TRUNC: keeps every logged txn with zxid `<= zxid` and removes the rest: the
/// file holding the last kept record is cut right after it, later files are deleted.
/// Fails when there is no log file at all (as ZooKeeper does).
pub fn truncate_after(version_dir: &Path, zxid: i64) -> Result<(), RepairError> {
    let logs = files::list_logs(version_dir).map_err(io_at(version_dir))?;
    if logs.is_empty() {
        return Err(RepairError::NoLogs {
            dir: version_dir.to_path_buf(),
        });
    }
    // Files starting above zxid hold only later txns; of the rest, only the newest can
    // hold records past zxid.
    let keep_upto = logs.iter().rposition(|f| f.zxid <= zxid);
    let (cut_file, delete_from) = match keep_upto {
        Some(i) => (Some(&logs[i]), i + 1),
        None => (None, 0),
    };
    if let Some(f) = cut_file {
        let mut r = LogFileReader::open(&f.path)?;
        let mut cut_at = r.position();
        while let Some(e) = r.next_entry()? {
            if e.record.header.zxid > zxid {
                break;
            }
            cut_at = e.end_offset;
        }
        if cut_at < FILE_HEADER_LEN as u64 {
            tracing::info!(file = %f.path.display(), "removing transaction log with a damaged header");
            fs::remove_file(&f.path).map_err(io_at(&f.path))?;
        } else {
            tracing::info!(file = %f.path.display(), offset = cut_at, zxid = format_args!("0x{zxid:x}"), "truncating transaction log");
            set_len(&f.path, cut_at)?;
        }
    }
    for f in &logs[delete_from..] {
        tracing::info!(file = %f.path.display(), "removing transaction log after truncation");
        fs::remove_file(&f.path).map_err(io_at(&f.path))?;
    }
    files::sync_dir(version_dir).map_err(io_at(version_dir))?;
    Ok(())
}
