//! A write-once output file that bypasses the page cache (`O_DIRECT`), for snapshots.
//!
//! Why: a snapshot of 1 M znodes is ~200 MiB written every second or two under a heavy
//! write load. Through the page cache, the kernel copies every byte into freshly
//! allocated cache pages (`copy_folio_from_iter_atomic` was ~60 % of the snapshot
//! thread's CPU in a `perf record` of a server under setData 32x8 with back-to-back
//! snapshots, see docs/STORAGE.md, "Snapshots written without the page cache"), and
//! writeback of those pages later competes with the transaction log's fsyncs. With
//! `O_DIRECT` the disk reads the bytes from one reused, block-aligned buffer of
//! [`CHUNK`] bytes: no copy, no cache pages, and each write reaches the device before
//! the next is made, so the disk queue holds at most one chunk of snapshot in front of
//! a log fsync.
//!
//! `O_DIRECT` needs the buffer, the file offset and the length aligned to the
//! device's logical block (512 B or 4 KiB; [`ALIGN`] covers both). Whole chunks are
//! written directly; [`DirectFile::finish`] writes the whole blocks of what is left
//! directly, then turns `O_DIRECT` off (`fcntl(F_SETFL)`) for the last partial block,
//! so the file has exactly the bytes written. Where the file system refuses `O_DIRECT`
//! (at open, or with `EINVAL` at a write, e.g. a larger block size), the file falls
//! back to ordinary buffered writes of the same chunks; callers ask
//! [`DirectFile::is_direct`] to decide whether to manage writeback themselves.
//!
//! ZooKeeper writes snapshots through a `BufferedOutputStream` (page cache) and
//! fsyncs at the end. Durability is the same: the caller still fsyncs the returned
//! [`File`] (`O_DIRECT` alone does not flush the device's cache nor the metadata).

use rustix::fs::OFlags;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Alignment of the buffer, of every direct write's offset and of its length: 4 KiB,
/// a multiple of every logical block size Linux block devices use (512 B, 4 KiB).
pub const ALIGN: usize = 4096;
/// Bytes buffered between two writes: one 256 KiB request to the disk, the most a log
/// write or flush waits behind. 1 MiB until session 21: with 256 KiB, create at 32
/// sessions x 8 in flight (snapshots of a growing tree back to back, fresh servers,
/// four alternated rounds) did 4-7 % more (133.4-144.6 k against 128.8-137.9 k/s; p99
/// 4.2-4.7 against 4.6-5.4 ms), and its snapshots took up to twice as long (the
/// largest 970 against 477 ms; 7 of 34 skipped as still running, none before).
/// docs/TESTING.md, session 21.
pub const CHUNK: usize = 1 << 18;

/// A zeroed buffer of `len + ALIGN` bytes and the offset in it where `len` bytes
/// aligned to [`ALIGN`] start (for `O_DIRECT` reads and writes). The `Vec` must not be
/// resized: its address, and so the alignment, must stay fixed.
pub fn aligned_buffer(len: usize) -> (Vec<u8>, usize) {
    let buf = vec![0u8; len + ALIGN];
    let start = buf.as_ptr().align_offset(ALIGN);
    debug_assert!(start < ALIGN);
    (buf, start)
}

/// A file opened for writing with `O_DIRECT` when the file system allows it, written
/// through one aligned buffer of [`CHUNK`] bytes. See the module doc.
pub struct DirectFile {
    file: File,
    /// `CHUNK + ALIGN` bytes; the chunk is `buf[start..start + CHUNK]`. Never resized,
    /// so its address (and the alignment of `start`) stays fixed.
    buf: Vec<u8>,
    start: usize,
    /// Bytes of the chunk filled.
    len: usize,
    direct: bool,
}

impl std::fmt::Debug for DirectFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectFile")
            .field("buffered", &self.len)
            .field("direct", &self.direct)
            .finish_non_exhaustive()
    }
}

impl DirectFile {
    /// Creates (or truncates) `path` for writing, with `O_DIRECT` if the file system
    /// accepts it and without otherwise. Errors: the open's own (a refused `O_DIRECT`
    /// is not one: the file is opened again without it).
    pub fn create(path: &Path) -> io::Result<DirectFile> {
        let open = |flags: OFlags| {
            OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .custom_flags(flags.bits() as i32)
                .open(path)
        };
        match open(OFlags::DIRECT) {
            Ok(file) => Ok(DirectFile::new(file, true)),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                tracing::debug!(file = %path.display(), "O_DIRECT refused, writing through the page cache");
                Ok(DirectFile::new(open(OFlags::empty())?, false))
            }
            Err(e) => Err(e),
        }
    }

    /// Wraps a file opened without `O_DIRECT`: the same chunked writes, buffered.
    pub fn buffered(file: File) -> DirectFile {
        DirectFile::new(file, false)
    }

    fn new(file: File, direct: bool) -> DirectFile {
        let (buf, start) = aligned_buffer(CHUNK);
        DirectFile {
            file,
            buf,
            start,
            len: 0,
            direct,
        }
    }

    /// True while writes bypass the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// The file underneath (its position is the end of what reached it).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Writes `buf[start..start + n]` (n a multiple of [`ALIGN`] while direct), falling
    /// back to buffered writes if the kernel refuses the direct one with `EINVAL`.
    fn write_out(&mut self, n: usize) -> io::Result<()> {
        debug_assert!(!self.direct || n.is_multiple_of(ALIGN));
        let (mut at, end) = (self.start, self.start + n);
        while at < end {
            match self.file.write(&self.buf[at..end]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                // A short direct write (e.g. the disk filling up) leaves the file
                // position where the bytes ended: the rest follows from there.
                Ok(k) => at += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if self.direct && e.kind() == io::ErrorKind::InvalidInput => {
                    // Refused as a whole (alignment): nothing of this call reached the
                    // file, so the rest is written again without O_DIRECT.
                    tracing::debug!(error = %e, "O_DIRECT write refused, writing through the page cache");
                    self.set_direct(false)?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn set_direct(&mut self, on: bool) -> io::Result<()> {
        let flags = rustix::fs::fcntl_getfl(&self.file)?;
        let flags = if on {
            flags | OFlags::DIRECT
        } else {
            flags - OFlags::DIRECT
        };
        rustix::fs::fcntl_setfl(&self.file, flags)?;
        self.direct = on;
        Ok(())
    }

    /// Writes what is still buffered (whole blocks directly, the last partial block
    /// through the page cache) and returns the file, not yet synced: the caller
    /// fsyncs it.
    pub fn finish(mut self) -> io::Result<File> {
        self.flush()?;
        if self.direct {
            self.set_direct(false)?;
        }
        let tail = self.start..self.start + self.len;
        self.file.write_all(&self.buf[tail])?;
        self.len = 0;
        Ok(self.file)
    }
}

impl Write for DirectFile {
    /// Copies into the chunk; a full chunk is written to the file.
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = b.len().min(CHUNK - self.len);
        let at = self.start + self.len;
        self.buf[at..at + n].copy_from_slice(&b[..n]);
        self.len += n;
        if self.len == CHUNK {
            self.write_out(CHUNK)?;
            self.len = 0;
        }
        Ok(n)
    }

    /// Writes the buffered whole blocks; a partial last block stays buffered until
    /// [`DirectFile::finish`] while the file is direct (an unaligned direct write
    /// is refused by the kernel).
    fn flush(&mut self) -> io::Result<()> {
        let whole = if self.direct {
            self.len / ALIGN * ALIGN
        } else {
            self.len
        };
        if whole == 0 {
            return Ok(());
        }
        self.write_out(whole)?;
        self.buf
            .copy_within(self.start + whole..self.start + self.len, self.start);
        self.len -= whole;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn read(path: &Path) -> Vec<u8> {
        let mut v = Vec::new();
        File::open(path).unwrap().read_to_end(&mut v).unwrap();
        v
    }

    /// Lengths on both sides of block and chunk edges, written in pieces of uneven
    /// sizes with flushes in between, read back byte for byte, direct or not.
    #[test]
    fn any_length_reads_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let lens = [
            0,
            1,
            ALIGN - 1,
            ALIGN,
            ALIGN + 1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            2 * CHUNK + 3 * ALIGN + 17,
        ];
        for (i, &len) in lens.iter().enumerate() {
            for buffered in [false, true] {
                let path = dir.path().join(format!("f{i}-{buffered}"));
                let mut f = if buffered {
                    DirectFile::buffered(File::create(&path).unwrap())
                } else {
                    DirectFile::create(&path).unwrap()
                };
                let data = pattern(len);
                let mut at = 0;
                let mut piece = 1;
                while at < len {
                    let end = (at + piece).min(len);
                    f.write_all(&data[at..end]).unwrap();
                    if piece % 5 == 0 {
                        f.flush().unwrap();
                    }
                    at = end;
                    piece = piece * 3 + 1;
                }
                let file = f.finish().unwrap();
                file.sync_all().unwrap();
                drop(file);
                assert_eq!(read(&path), data, "length {len}, buffered {buffered}");
            }
        }
    }

    /// A direct write the kernel refuses (here: a buffer one byte off its alignment)
    /// is written through the page cache instead, and the file holds exactly the
    /// bytes written; O_DIRECT stays off afterwards.
    #[test]
    fn a_refused_direct_write_falls_back_to_the_page_cache() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("f");
        let mut f = DirectFile::create(&path).unwrap();
        if !f.is_direct() {
            eprintln!("this file system refuses O_DIRECT at open: the fallback at open is used");
        }
        f.start += 1;
        let data = pattern(2 * CHUNK + 100);
        f.write_all(&data).unwrap();
        assert!(!f.is_direct());
        let file = f.finish().unwrap();
        file.sync_all().unwrap();
        drop(file);
        assert_eq!(read(&path), data);
    }

    /// On a disk-backed file system (the repository's target directory, not tmpfs)
    /// the file really is opened with O_DIRECT, and finish turns it off.
    #[test]
    fn opens_direct_where_the_file_system_allows_it() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("f");
        let f = DirectFile::create(&path).unwrap();
        let fs_allows = f.is_direct();
        let flags = rustix::fs::fcntl_getfl(f.file()).unwrap();
        assert_eq!(flags.contains(OFlags::DIRECT), fs_allows);
        let file = f.finish().unwrap();
        assert!(!rustix::fs::fcntl_getfl(&file)
            .unwrap()
            .contains(OFlags::DIRECT));
    }
}
