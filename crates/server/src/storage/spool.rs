//! Copying a pipe or device into a temporary file, so that the tools can read input
//! that is not a regular file (`zcat log.1.gz | rzk log dump /dev/stdin`) by offset and
//! more than once. The temporary file has no name (`tempfile::tempfile`: `O_TMPFILE`
//! where the file system has it, else created and unlinked at once, in `$TMPDIR`), so
//! its space is freed when the last handle closes, even if the tool is killed.

use super::files::FILE_HEADER_LEN;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Why [`spool`] failed: the input could not be read, or the temporary file could not
/// be made or written. Kept apart so that a tool reports a failing device or pipe as
/// such, not as a problem with `$TMPDIR`.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Reading `input` failed.
    #[error("reading the input: {0}")]
    Input(io::Error),
    /// Creating, writing or rewinding the temporary file failed (a full `$TMPDIR`).
    #[error("copying it to a temporary file in $TMPDIR: {0}")]
    Temp(io::Error),
}

/// Copies `input` (a pipe, FIFO or device, at its start) into a new nameless temporary
/// file and returns that file positioned at its start.
///
/// Only input whose first four bytes are `magic` (big-endian, as the file headers store
/// it) is copied to its end: anything else (`/dev/zero`, `/dev/urandom`, a snapshot
/// given to the log tool) stops after the 16 bytes of a file header ([`FILE_HEADER_LEN`]),
/// as it may never end, and the caller's reader then reports the header it finds.
///
/// Errors: reading `input` ([`SpoolError::Input`]) or the temporary file
/// ([`SpoolError::Temp`]).
pub fn spool(input: &mut File, magic: i32) -> Result<File, SpoolError> {
    let mut spool = tempfile::tempfile().map_err(SpoolError::Temp)?;
    let mut head = Vec::with_capacity(FILE_HEADER_LEN);
    input
        .take(FILE_HEADER_LEN as u64)
        .read_to_end(&mut head)
        .map_err(SpoolError::Input)?;
    spool.write_all(&head).map_err(SpoolError::Temp)?;
    if head.len() == FILE_HEADER_LEN && head[..4] == magic.to_be_bytes() {
        // `io::copy` would not tell a read error from a write error.
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SpoolError::Input(e)),
            };
            spool.write_all(&buf[..n]).map_err(SpoolError::Temp)?;
        }
    }
    spool.seek(SeekFrom::Start(0)).map_err(SpoolError::Temp)?;
    Ok(spool)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pipe fed by a thread with `bytes`, as the input end.
    fn pipe_with(bytes: Vec<u8>) -> File {
        let (r, mut w) = io::pipe().expect("pipe");
        std::thread::spawn(move || {
            // The reader may stop early (no magic): a broken pipe is expected then.
            let _ = w.write_all(&bytes);
        });
        File::from(std::os::fd::OwnedFd::from(r))
    }

    #[test]
    fn input_with_the_magic_is_copied_to_its_end() {
        let mut bytes = 0x5a4b_5346i32.to_be_bytes().to_vec();
        bytes.extend((0..200_000u32).map(|i| i as u8));
        let mut out = spool(&mut pipe_with(bytes.clone()), 0x5a4b_5346).expect("spool");
        let mut got = Vec::new();
        out.read_to_end(&mut got).expect("read spool");
        assert_eq!(got, bytes);
    }

    #[test]
    fn input_without_the_magic_stops_after_the_header() {
        let bytes = vec![0u8; 1 << 20];
        let mut out = spool(&mut pipe_with(bytes), 0x5a4b_5346).expect("spool");
        let mut got = Vec::new();
        out.read_to_end(&mut got).expect("read spool");
        assert_eq!(got, vec![0u8; FILE_HEADER_LEN]);
    }

    /// Input that cannot be read (here a file open for writing only: `EBADF`, as a
    /// failing device's `EIO`) is reported as the input's error, not the temporary
    /// file's.
    #[test]
    fn an_unreadable_input_is_the_inputs_error() {
        let named = tempfile::NamedTempFile::new().expect("temp file");
        let mut write_only = std::fs::OpenOptions::new()
            .write(true)
            .open(named.path())
            .expect("open for writing");
        match spool(&mut write_only, 0x5a4b_5346) {
            Err(SpoolError::Input(_)) => {}
            other => panic!("want an input error, got {other:?}"),
        }
    }

    #[test]
    fn short_input_is_kept_as_it_is() {
        let mut out = spool(&mut pipe_with(vec![1, 2, 3]), 0x5a4b_5346).expect("spool");
        let mut got = Vec::new();
        out.read_to_end(&mut got).expect("read spool");
        assert_eq!(got, vec![1, 2, 3]);
    }
}
