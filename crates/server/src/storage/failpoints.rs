//! Disk faults for the fault suite (`tests/faults/`), compiled only with the cargo feature
//! `failpoints` of `rzk-server` (`cargo build --release -p rzk --features
//! rzk-server/failpoints`). ZooKeeper has no equivalent. A build without the feature has
//! none of this code.
//!
//! Read once from the environment at the first transaction-log write or fsync:
//!
//! - `RZK_FAILPOINTS`: comma-separated `name@N` (N counts from 1, per process):
//!   - `fsync-error@N`: the Nth fdatasync of a transaction log and every one after it
//!     fail with EIO (a failing disk; a later success would hide the loss);
//!   - `write-enospc@N`: the Nth write of buffered records and every one after it fail
//!     with ENOSPC (disk full);
//!   - `write-torn@N`: the Nth write of buffered records writes the first half of its
//!     bytes, then the process aborts (a torn last write).
//! - `RZK_FAILPOINT_SYNCED_DIR`: after each successful fdatasync of a log file, the
//!   length known durable is written to `<dir>/<log file name>` (decimal bytes). The test
//!   that simulates a power loss kills the process and discards every byte of each log
//!   beyond that length (what was only in the page cache). The record is written before
//!   `sync_all` returns, so before anything is acknowledged on the strength of that sync.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Linux's ENOSPC and EIO (errno values).
const ENOSPC: i32 = 28;
const EIO: i32 = 5;

#[derive(Debug, Default)]
struct Points {
    fsync_error_at: Option<u64>,
    write_enospc_at: Option<u64>,
    write_torn_at: Option<u64>,
    synced_dir: Option<PathBuf>,
}

static POINTS: OnceLock<Points> = OnceLock::new();
static FSYNCS: AtomicU64 = AtomicU64::new(0);
static WRITES: AtomicU64 = AtomicU64::new(0);

fn parse(spec: &str, synced_dir: Option<PathBuf>) -> Points {
    let mut p = Points {
        synced_dir,
        ..Points::default()
    };
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((name, n)) = item.split_once('@') else {
            tracing::warn!(item, "RZK_FAILPOINTS: ignoring an item without @N");
            continue;
        };
        let Ok(n) = n.parse::<u64>() else {
            tracing::warn!(
                item,
                "RZK_FAILPOINTS: ignoring an item whose N is not a number"
            );
            continue;
        };
        match name {
            "fsync-error" => p.fsync_error_at = Some(n),
            "write-enospc" => p.write_enospc_at = Some(n),
            "write-torn" => p.write_torn_at = Some(n),
            _ => tracing::warn!(item, "RZK_FAILPOINTS: unknown failpoint"),
        }
    }
    p
}

fn points() -> &'static Points {
    POINTS.get_or_init(|| {
        let spec = std::env::var("RZK_FAILPOINTS").unwrap_or_default();
        let dir = std::env::var_os("RZK_FAILPOINT_SYNCED_DIR").map(PathBuf::from);
        let p = parse(&spec, dir);
        tracing::warn!(failpoints = ?p, "failpoints build: disk faults armed");
        p
    })
}

/// Writes `buf` at `offset` of `file` (the transaction log's buffered records), unless a
/// write failpoint fires: `write-enospc` returns ENOSPC, `write-torn` writes half and
/// aborts the process.
///
/// # Errors
/// The write's own error, or ENOSPC from the failpoint.
pub(crate) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    let p = points();
    let n = WRITES.fetch_add(1, Ordering::SeqCst) + 1;
    if p.write_enospc_at.is_some_and(|at| n >= at) {
        tracing::error!(
            n,
            "failpoint write-enospc: failing the log write with ENOSPC"
        );
        return Err(io::Error::from_raw_os_error(ENOSPC));
    }
    if p.write_torn_at == Some(n) {
        let half = buf.len() / 2;
        tracing::error!(
            n,
            bytes = buf.len(),
            written = half,
            "failpoint write-torn: writing half, then aborting"
        );
        // Best effort: the point is the abort after a partial write.
        let _ = file.write_all_at(&buf[..half], offset);
        std::process::abort();
    }
    file.write_all_at(buf, offset)
}

/// Called before each fdatasync of a log file: `fsync-error` fails it with EIO.
///
/// # Errors
/// EIO once the failpoint's count is reached.
pub(crate) fn before_fsync() -> io::Result<()> {
    let n = FSYNCS.fetch_add(1, Ordering::SeqCst) + 1;
    if points().fsync_error_at.is_some_and(|at| n >= at) {
        tracing::error!(n, "failpoint fsync-error: failing the fdatasync with EIO");
        return Err(io::Error::from_raw_os_error(EIO));
    }
    Ok(())
}

/// Called after a successful fdatasync of `path`: records `len` bytes as durable in
/// `RZK_FAILPOINT_SYNCED_DIR` (when set), as one fixed-width `pwrite` at offset 0 of
/// `<dir>/<file name>` (20 digits and a newline). The file is never truncated, so a kill
/// at any instant leaves either the previous length or the new one, never an empty file
/// (`std::fs::write` truncates first, and on a fast disk the disk thread spends most of its
/// time in that window).
///
/// # Errors
/// The record's write error: the caller must not acknowledge what it cannot vouch for.
pub(crate) fn after_fsync(path: &Path, len: u64) -> io::Result<()> {
    let (Some(dir), Some(name)) = (&points().synced_dir, path.file_name()) else {
        return Ok(());
    };
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(name))?;
    f.write_all_at(format!("{len:020}\n").as_bytes(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parses_known_points_and_skips_the_rest() {
        let p = parse("fsync-error@3, write-torn@7,bogus@1,write-enospc@x", None);
        assert_eq!(p.fsync_error_at, Some(3));
        assert_eq!(p.write_torn_at, Some(7));
        assert_eq!(p.write_enospc_at, None);
    }
}
