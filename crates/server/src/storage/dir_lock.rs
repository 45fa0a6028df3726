//! One server per data directory: an exclusive `flock(2)` on `dataDir` (and
//! `dataLogDir` when it is another directory), held for the life of the server.
//!
//! Two servers started on one data directory (a second instance, a copied unit file)
//! each write their own transaction log into it and remove each other's unfinished
//! snapshots; the next start replays both logs into one tree. ZooKeeper 3.8 takes no
//! such lock and starts both; rzk refuses the second with [`DirLockError::InUse`]
//! naming the directory. The lock is advisory and on the directory itself: no file is
//! added to the data directory (ZooKeeper reads the same directory), the offline tools
//! (`rzk log dump`, `rzk snapshot dump`, `purge`) do not take it, and the kernel
//! releases it when the process ends, however it ends (`kill -9` included).
//!
//! A filesystem without `flock` support (some network filesystems) leaves the
//! directory unlocked, with a warning: a server still starts there, as ZooKeeper does.

use rustix::fs::{FlockOperation, Mode, OFlags};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Why the data directories could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum DirLockError {
    /// Another process holds the lock: another rzk server uses this directory.
    #[error(
        "data directory {} is in use by another rzk server (it holds the directory's lock); \
         two servers on one data directory would interleave their transaction logs",
        dir.display()
    )]
    InUse { dir: PathBuf },
}

/// The held locks; dropping it releases them (the descriptors close).
#[derive(Debug)]
pub struct DataDirLock {
    _held: Vec<OwnedFd>,
}

/// Locks each of `dirs` (a directory named twice, or by two paths, is locked once).
/// A directory that cannot be opened (missing: recovery then says so, with
/// `datadir.autocreate=false`) or whose filesystem refuses `flock` is left unlocked;
/// the latter with a warning.
///
/// Errors: [`DirLockError::InUse`] when another open file description (another server
/// process, or another server in this process) holds the lock.
pub fn lock(dirs: &[&Path]) -> Result<DataDirLock, DirLockError> {
    let mut held: Vec<OwnedFd> = Vec::with_capacity(dirs.len());
    let mut seen: Vec<PathBuf> = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        if seen.contains(&canonical) {
            continue;
        }
        seen.push(canonical);
        let fd = match rustix::fs::open(
            *dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => {
                tracing::debug!(dir = %dir.display(), error = %e, "data directory not locked: cannot open it");
                continue;
            }
        };
        match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => held.push(fd),
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(DirLockError::InUse {
                    dir: dir.to_path_buf(),
                })
            }
            Err(e) => tracing::warn!(
                dir = %dir.display(),
                error = %e,
                "cannot lock the data directory (its filesystem refuses flock): another server started on it would not be stopped"
            ),
        }
    }
    Ok(DataDirLock { _held: held })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_of_one_directory_is_refused_until_the_first_is_dropped() {
        let data = tempfile::tempdir().unwrap();
        let logs = tempfile::tempdir().unwrap();
        let first = lock(&[data.path(), logs.path()]).unwrap();
        for dirs in [
            vec![data.path()],
            vec![logs.path()],
            vec![data.path(), logs.path()],
        ] {
            match lock(&dirs) {
                Err(DirLockError::InUse { dir }) => assert!(dirs.contains(&dir.as_path())),
                other => panic!("{dirs:?}: {other:?}"),
            }
        }
        // Another path to the same directory is the same lock.
        let other_path = data.path().join(".");
        assert!(lock(&[other_path.as_path()]).is_err());
        drop(first);
        let again = lock(&[data.path(), logs.path()]).unwrap();
        drop(again);
    }

    #[test]
    fn one_directory_named_twice_is_locked_once() {
        let d = tempfile::tempdir().unwrap();
        let l = lock(&[d.path(), d.path()]).unwrap();
        assert_eq!(l._held.len(), 1);
    }

    #[test]
    fn a_missing_directory_is_left_to_recovery() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("nope");
        let l = lock(&[missing.as_path()]).unwrap();
        assert!(l._held.is_empty());
    }
}
