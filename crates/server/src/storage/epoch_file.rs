//! The two persistent epoch files of a quorum member, `acceptedEpoch` and
//! `currentEpoch` in `dataDir/version-2`, as ZooKeeper writes them: decimal text without
//! a newline, replaced atomically (`<name>.tmp`, fsync, rename, directory fsync).
//!
//! Owns only these two files. Never decides epoch values.

use crate::storage::files;
use crate::zab::EpochKind;
use rzk_proto::Zxid;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const ACCEPTED_EPOCH_FILE: &str = "acceptedEpoch";
pub const CURRENT_EPOCH_FILE: &str = "currentEpoch";

pub fn file_name(kind: EpochKind) -> &'static str {
    match kind {
        EpochKind::Accepted => ACCEPTED_EPOCH_FILE,
        EpochKind::Current => CURRENT_EPOCH_FILE,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EpochFileError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: not an epoch number: {text:?}", path.display())]
    Parse { path: PathBuf, text: String },
    /// A number above [`Zxid::MAX_EPOCH`]: no zxid of it (or of the next epoch) is
    /// positive, so it cannot come from a ZooKeeper or rzk that ran.
    #[error("{}: epoch {epoch} is beyond the largest a zxid can carry ({})", path.display(), Zxid::MAX_EPOCH)]
    TooLarge { path: PathBuf, epoch: i64 },
    /// A pipe, device, socket or directory where the file should be: reading a FIFO
    /// would wait for a writer for ever, a device would never end.
    #[error("{} is {kind}, not a regular file: an epoch file holds one decimal number", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    /// A first line longer than [`EPOCH_FILE_READ_MAX`] bytes: no number rzk or
    /// ZooKeeper writes (read in part, leading zeros would give another number).
    #[error("{}: the first line is longer than {} bytes, not an epoch number", path.display(), EPOCH_FILE_READ_MAX)]
    LineTooLong { path: PathBuf },
}

/// How much of an epoch file is read: its first line is a number of at most 10 digits
/// (ZooKeeper reads only that line too).
const EPOCH_FILE_READ_MAX: u64 = 4096;

/// Reads an epoch file; `Ok(None)` when it does not exist.
pub fn read(version_dir: &Path, kind: EpochKind) -> Result<Option<u32>, EpochFileError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let path = version_dir.join(file_name(kind));
    // Non-blocking: opening a FIFO for reading would wait for a writer (start-up hung
    // on one without a word, found by a review); the type is checked on the handle.
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path);
    let f = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(EpochFileError::Io { path, source }),
    };
    let meta = match f.metadata() {
        Ok(m) => m,
        Err(source) => return Err(EpochFileError::Io { path, source }),
    };
    if !meta.is_file() {
        let kind = crate::storage::log_reader::file_kind(&meta);
        return Err(EpochFileError::NotAFile { path, kind });
    }
    let mut bytes = Vec::new();
    // One byte past the bound tells a longer first line from one that fits.
    if let Err(source) = f.take(EPOCH_FILE_READ_MAX + 1).read_to_end(&mut bytes) {
        return Err(EpochFileError::Io { path, source });
    }
    let first_line_ends = bytes
        .iter()
        .take(EPOCH_FILE_READ_MAX as usize)
        .any(|b| matches!(b, b'\n' | b'\r'));
    if bytes.len() as u64 > EPOCH_FILE_READ_MAX && !first_line_ends {
        return Err(EpochFileError::LineTooLong { path });
    }
    let text = String::from_utf8_lossy(&bytes);
    // ZooKeeper reads the first line (`readLine`: up to \n, \r or \r\n) and parses it
    // with `Long.parseLong`, which takes no blanks: " 1" stops it, so it stops rzk.
    let t = text.split(['\n', '\r']).next().unwrap_or("");
    match t.parse::<i64>() {
        Ok(v) if (0..=i64::from(Zxid::MAX_EPOCH)).contains(&v) => Ok(Some(v as u32)),
        Ok(epoch) if epoch > 0 => Err(EpochFileError::TooLarge { path, epoch }),
        _ => Err(EpochFileError::Parse {
            path,
            text: t.to_owned(),
        }),
    }
}

/// Writes an epoch file durably.
pub fn write(version_dir: &Path, kind: EpochKind, epoch: u32) -> Result<(), EpochFileError> {
    let name = file_name(kind);
    let path = version_dir.join(name);
    let tmp = version_dir.join(format!("{name}.tmp"));
    let io_at = |p: &Path| {
        let p = p.to_path_buf();
        move |source| EpochFileError::Io { path: p, source }
    };
    let mut f = fs::File::create(&tmp).map_err(io_at(&tmp))?;
    f.write_all(epoch.to_string().as_bytes())
        .map_err(io_at(&tmp))?;
    f.sync_all().map_err(io_at(&tmp))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(io_at(&path))?;
    files::sync_dir(version_dir).map_err(io_at(version_dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_back_as_plain_decimal() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read(d.path(), EpochKind::Current).unwrap(), None);
        write(d.path(), EpochKind::Current, 7).unwrap();
        write(d.path(), EpochKind::Accepted, 12).unwrap();
        assert_eq!(
            fs::read_to_string(d.path().join("currentEpoch")).unwrap(),
            "7"
        );
        assert_eq!(read(d.path(), EpochKind::Current).unwrap(), Some(7));
        assert_eq!(read(d.path(), EpochKind::Accepted).unwrap(), Some(12));
        assert!(!d.path().join("currentEpoch.tmp").exists());
        fs::write(d.path().join("acceptedEpoch"), "x").unwrap();
        assert!(read(d.path(), EpochKind::Accepted).is_err());
        // as ZooKeeper's readLine + Long.parseLong (a break-it review: rzk trimmed)
        for (text, want) in [
            ("3\n", Some(3)),
            ("3\r\n", Some(3)),
            ("3\nx", Some(3)),
            ("3\rx", Some(3)),
        ] {
            fs::write(d.path().join("acceptedEpoch"), text).unwrap();
            assert_eq!(
                read(d.path(), EpochKind::Accepted).unwrap(),
                want,
                "{text:?}"
            );
        }
        for text in [" 3", "3 ", "", "\n3"] {
            fs::write(d.path().join("acceptedEpoch"), text).unwrap();
            assert!(read(d.path(), EpochKind::Accepted).is_err(), "{text:?}");
        }
        // A first line followed by anything, also bytes that are no UTF-8.
        fs::write(d.path().join("acceptedEpoch"), b"5\n\xff\xfe").unwrap();
        assert_eq!(read(d.path(), EpochKind::Accepted).unwrap(), Some(5));
        // Leading zeros up to the bound read whole; past it the line is refused, not
        // read in part as another number (a review: 4,095 zeros and "12" gave 1).
        let padded = |zeros: usize| format!("{}12\n", "0".repeat(zeros));
        fs::write(d.path().join("acceptedEpoch"), padded(4000)).unwrap();
        assert_eq!(read(d.path(), EpochKind::Accepted).unwrap(), Some(12));
        fs::write(d.path().join("acceptedEpoch"), padded(4095)).unwrap();
        assert!(matches!(
            read(d.path(), EpochKind::Accepted),
            Err(EpochFileError::LineTooLong { .. })
        ));
    }

    /// A FIFO, a device or a directory in an epoch file's place is refused at once,
    /// naming it (a review: start-up waited for ever on a FIFO, and read a link to
    /// /dev/zero until memory ran out).
    #[test]
    fn an_epoch_file_that_is_no_regular_file_is_refused_at_once() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("acceptedEpoch");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let e = read(d.path(), EpochKind::Accepted).unwrap_err();
        assert!(
            matches!(
                e,
                EpochFileError::NotAFile {
                    kind: "a pipe (FIFO)",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("acceptedEpoch"), "{e}");
        std::os::unix::fs::symlink("/dev/zero", d.path().join("currentEpoch")).unwrap();
        let e = read(d.path(), EpochKind::Current).unwrap_err();
        assert!(
            matches!(
                e,
                EpochFileError::NotAFile {
                    kind: "a character device",
                    ..
                }
            ),
            "{e}"
        );
        fs::remove_file(&fifo).unwrap();
        fs::create_dir(&fifo).unwrap();
        assert!(matches!(
            read(d.path(), EpochKind::Accepted),
            Err(EpochFileError::NotAFile {
                kind: "a directory",
                ..
            })
        ));
    }

    /// An epoch whose zxids would be negative is no epoch (a break-it review: 4294967295
    /// wrapped the next epoch to 0 and acknowledged writes were lost on restart).
    #[test]
    fn epochs_past_the_positive_zxids_are_refused() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("acceptedEpoch"), "2147483647").unwrap();
        assert_eq!(
            read(d.path(), EpochKind::Accepted).unwrap(),
            Some(Zxid::MAX_EPOCH)
        );
        for text in ["2147483648", "4294967294", "4294967295", "99999999999"] {
            fs::write(d.path().join("acceptedEpoch"), text).unwrap();
            let e = read(d.path(), EpochKind::Accepted).unwrap_err();
            assert!(matches!(e, EpochFileError::TooLarge { .. }), "{text}: {e}");
            assert!(e.to_string().contains("acceptedEpoch"), "{e}");
        }
    }
}
