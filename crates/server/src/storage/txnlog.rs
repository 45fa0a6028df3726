//! The transaction log writer: `<dataLogDir>/version-2/log.<hex zxid>` in ZooKeeper's
//! format (header `ZKLG`/2/0, records `{long adler32; int len; payload; 0x42}`, zero
//! preallocation), with group commit: [`FileTxnLog::append_record`] only buffers,
//! [`FileTxnLog::sync_all`] writes everything buffered and fdatasyncs once.
//!
//! Owns the files it creates while it runs. It must never reopen or rewrite an existing
//! log for appending (like ZooKeeper, a restarted server starts a new file at its next
//! txn) and never reads logs (see `log_reader`).

use super::files::{self, FileHeader, FILE_HEADER_LEN};
use rzk_proto::txn::TxnRecord;
use rzk_proto::Zxid;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// ZooKeeper's default `zookeeper.preAllocSize`: 64 MiB.
pub const DEFAULT_PREALLOC_SIZE: u64 = 64 * 1024 * 1024;
/// Padding is extended when the write position comes within this many bytes of the end.
pub const PREALLOC_WINDOW: u64 = 4096;
/// End-of-record marker byte (`'B'`).
pub const END_OF_RECORD: u8 = 0x42;
/// Bytes around each payload: checksum long, length int, marker byte.
pub const RECORD_OVERHEAD: usize = 8 + 4 + 1;
/// `zookeeper.fsync.warningthresholdms` default.
pub const FSYNC_WARN_MS: u128 = 1000;
/// The padding ahead of the records is written with zeros this many bytes at a time
/// (`OpenLog::zero_fill_ahead`, before a group commit's records are written), so that
/// each fdatasync finds its records' blocks already allocated and on disk.
pub const ZERO_FILL_STEP: u64 = 1024 * 1024;
/// A new zero-fill step is written when the records come within this many bytes of
/// the end of the zeros already written.
pub const ZERO_FILL_LOW_WATER: u64 = ZERO_FILL_STEP / 4;
/// Synced log pages are dropped from the page cache in steps of at least this many
/// bytes ([`OpenLog::release_synced`]).
pub const RELEASE_STEP: u64 = 1024 * 1024;
/// The source of the zero-fill writes.
static ZEROS: [u8; ZERO_FILL_STEP as usize] = [0; ZERO_FILL_STEP as usize];

/// Writer settings (zoo.cfg / system properties in ZooKeeper).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogConfig {
    /// `zookeeper.preAllocSize` in bytes (ZooKeeper takes KiB); 0 disables padding.
    pub prealloc_size: u64,
    /// `zookeeper.forceSync`: fdatasync on [`FileTxnLog::sync_all`].
    pub force_sync: bool,
    /// `zookeeper.txnLogSizeLimitInKb` in bytes: roll after a sync that leaves the
    /// current file larger than this. `None` = no limit.
    pub size_limit: Option<u64>,
}

impl Default for TxnLogConfig {
    fn default() -> Self {
        TxnLogConfig {
            prealloc_size: DEFAULT_PREALLOC_SIZE,
            force_sync: true,
            size_limit: None,
        }
    }
}

/// ZooKeeper's padding rule: if `position + 4096 >= file_size`, grow by `prealloc`
/// (or, when the position is already past the end, to `position + prealloc` rounded
/// down to a multiple of `prealloc`). Returns the new size (unchanged = no padding).
pub fn size_with_padding(position: u64, file_size: u64, prealloc: u64) -> u64 {
    if prealloc > 0 && position + PREALLOC_WINDOW >= file_size {
        if position > file_size {
            let s = position + prealloc;
            s - s % prealloc
        } else {
            file_size + prealloc
        }
    } else {
        file_size
    }
}

/// Frames one payload as a log record: adler32 as a long, length, payload, 0x42.
pub fn frame_record(payload: &[u8], out: &mut Vec<u8>) {
    let crc = adler32(payload);
    out.extend_from_slice(&(crc as i64).to_be_bytes());
    out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    out.extend_from_slice(payload);
    out.push(END_OF_RECORD);
}

/// Adler-32 as Java's `java.util.zip.Adler32`.
pub fn adler32(b: &[u8]) -> u32 {
    let mut a = simd_adler32::Adler32::new();
    a.write(b);
    a.finish()
}

struct OpenLog {
    file: File,
    path: PathBuf,
    /// Bytes actually written to the file (ZooKeeper's channel position).
    written: u64,
    /// Current (preallocated) file size.
    size: u64,
    /// End of the zeros written ahead of the records ([`OpenLog::zero_fill_ahead`]):
    /// `written..filled` (when `filled > written`) holds written zeros, the padding
    /// after it is a hole. Never above `size`.
    filled: u64,
    /// A zero fill of this file failed (a full disk): no more are tried.
    zero_fill_failed: bool,
    /// End of the bytes last dropped from the page cache
    /// ([`OpenLog::release_synced`]); a multiple of the page size.
    released: u64,
}

impl OpenLog {
    /// fdatasyncs the file (with the failpoints build's hooks around it), then releases
    /// what that made durable from the page cache ([`OpenLog::release_synced`]; `whole`:
    /// a file that is written no more).
    fn sync(&mut self, whole: bool) -> io::Result<()> {
        #[cfg(feature = "failpoints")]
        super::failpoints::before_fsync()?;
        self.file.sync_data()?;
        #[cfg(feature = "failpoints")]
        super::failpoints::after_fsync(&self.path, self.written)?;
        self.release_synced(self.written, whole);
        Ok(())
    }

    /// Drops the file's pages below `upto` (rounded down to a page) from the page cache,
    /// once at least [`RELEASE_STEP`] bytes are due (`all`: the whole file, padding
    /// included, for a file rolled away or closed). Only for bytes an fdatasync has
    /// written: the pages are clean, so `posix_fadvise(DONTNEED)` frees them at once and
    /// starts no I/O. Each call covers the file from offset 0: the kernel drops only
    /// whole folios inside the range, and a large folio that straddled the previous
    /// step's end is inside this one (looking again at ranges already dropped finds
    /// nothing to do).
    ///
    /// Why: once synced, the log is only read again at a restart or by a learner's DIFF
    /// from disk, yet every record stayed cached; a busy server filled the page cache
    /// with gigabytes of it. Each new page then came from memory never touched before,
    /// and on the development VM (whose memory the host backs on first touch) the
    /// writes that took those pages — the zero fill ahead, on the write path — slowed
    /// down: setData at 32x8 fell from 269-288 k/s to 240-259 k/s (p99 1.9 to 4.2-4.3
    /// ms) after ~70 log files, and did not when the old logs were deleted
    /// (docs/TESTING.md, session 21). Freed pages are reused for the next writes
    /// instead. ZooKeeper leaves its log in the page cache.
    ///
    /// Best effort: an error is ignored (the pages stay cached).
    fn release_synced(&mut self, upto: u64, all: bool) {
        const PAGE: u64 = 4096;
        let to = upto & !(PAGE - 1);
        if !all && (to <= self.released || to - self.released < RELEASE_STEP) {
            return;
        }
        let len = if all {
            None
        } else {
            std::num::NonZeroU64::new(to)
        };
        let _ = rustix::fs::fadvise(&self.file, 0, len, rustix::fs::Advice::DontNeed);
        self.released = to;
    }

    /// Writes zeros ahead of the records (`end`: where the records of the batch about
    /// to be written will end) when they come within [`ZERO_FILL_LOW_WATER`] of the
    /// zeros already written, up to [`ZERO_FILL_STEP`] bytes past `end`, never past the
    /// padded size. Skipped for a batch larger than [`ZERO_FILL_LOW_WATER`] (its own
    /// records land in new blocks anyway, and large values would have every byte
    /// written twice).
    ///
    /// Why: ZooKeeper's padding makes the log a sparse file, so the first write into
    /// each block allocates it and the next fdatasync must also write the inode and
    /// extent metadata (a second synchronous I/O; on ext4 without a journal
    /// `ext4_write_inode` waits for it). With the blocks written in advance, an
    /// fdatasync writes the records' pages and flushes the disk's cache only (on the
    /// development VM, 5,000-byte appends each followed by an fdatasync: mean 152-161
    /// µs against 230 µs; docs/STORAGE.md). The file's size and bytes are those of
    /// ZooKeeper's padding: the zeros were already there, as a hole.
    ///
    /// Best effort: ZooKeeper's padding needs no free space, so neither does this. A
    /// failed write (a full disk) is logged once, the zeros it wrote are released
    /// (`fallocate` punching a hole, which keeps the size) and the file is not
    /// zero-filled again; a full disk then fails the records' own write, as before.
    fn zero_fill_ahead(&mut self, end: u64, batch: u64) {
        debug_assert!(self.written <= end);
        debug_assert!(self.filled <= self.size.max(FILE_HEADER_LEN as u64));
        if self.zero_fill_failed
            || batch > ZERO_FILL_LOW_WATER
            || end + ZERO_FILL_LOW_WATER <= self.filled
        {
            return;
        }
        let from = self.filled.max(end);
        let to = (from + ZERO_FILL_STEP).min(self.size);
        if to <= from {
            return;
        }
        debug_assert!(to - from <= ZERO_FILL_STEP);
        match self.file.write_all_at(&ZEROS[..(to - from) as usize], from) {
            Ok(()) => self.filled = to,
            Err(e) => {
                self.zero_fill_failed = true;
                tracing::warn!(
                    file = %self.path.display(),
                    offset = from,
                    error = %e,
                    "cannot write the log's padding ahead of its records; it stays a hole (as ZooKeeper leaves it)"
                );
                let punch =
                    rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE;
                if let Err(e) = rustix::fs::fallocate(&self.file, punch, from, to - from) {
                    tracing::debug!(error = %e, "cannot release the partly written padding");
                }
            }
        }
    }
}

/// The ZooKeeper-format transaction log writer. See the module docs.
pub struct FileTxnLog {
    dir: PathBuf,
    cfg: TxnLogConfig,
    current: Option<OpenLog>,
    /// Rolled files whose data still needs an fdatasync at the next sync.
    to_sync: Vec<OpenLog>,
    buf: Vec<u8>,
    last_zxid: Zxid,
    appended_bytes_total: u64,
}

impl std::fmt::Debug for FileTxnLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileTxnLog")
            .field("dir", &self.dir)
            .field("current", &self.current.as_ref().map(|c| &c.path))
            .field("buffered", &self.buf.len())
            .field("last_zxid", &self.last_zxid)
            .finish()
    }
}

impl FileTxnLog {
    /// A writer for `<data_log_dir>/version-2` (created if missing). No file is created
    /// until the first append.
    pub fn open(data_log_dir: &Path, cfg: TxnLogConfig) -> io::Result<FileTxnLog> {
        let dir = files::ensure_version_dir(data_log_dir)?;
        Ok(FileTxnLog::in_version_dir(dir, cfg))
    }

    /// A writer for an existing `version-2` directory.
    pub fn in_version_dir(dir: PathBuf, cfg: TxnLogConfig) -> FileTxnLog {
        FileTxnLog {
            dir,
            cfg,
            current: None,
            to_sync: Vec::new(),
            buf: Vec::new(),
            last_zxid: Zxid(-1),
            appended_bytes_total: 0,
        }
    }

    /// The `version-2` directory written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file the next append goes to, if one is open.
    pub fn current_file(&self) -> Option<&Path> {
        self.current.as_ref().map(|c| c.path.as_path())
    }

    /// Zxid of the last appended record (-1 before any).
    pub fn last_zxid(&self) -> Zxid {
        self.last_zxid
    }

    /// Framed bytes appended since this writer was opened (for the snapshot size rule).
    pub fn appended_bytes_total(&self) -> u64 {
        self.appended_bytes_total
    }

    /// Bytes appended but not yet written by [`FileTxnLog::sync_all`].
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Buffers a record; creates `log.<its zxid>` first when no file is open. Returns
    /// the framed size in bytes.
    #[must_use = "an append that failed must stop the write path"]
    pub fn append_record(&mut self, rec: &TxnRecord) -> io::Result<u64> {
        self.append_encoded(Zxid(rec.header.zxid), &rec.encode())
    }

    /// Buffers one record already encoded as [`TxnRecord::encode`] does (header, txn,
    /// digest) for `zxid`, without decoding it again; returns its framed size in bytes.
    #[must_use = "an append that failed must stop the write path"]
    pub fn append_encoded(&mut self, zxid: Zxid, payload: &[u8]) -> io::Result<u64> {
        if zxid <= self.last_zxid {
            tracing::warn!(
                zxid = %zxid,
                last = %self.last_zxid,
                "appending a txn whose zxid is not above the last one"
            );
        }
        if self.current.is_none() {
            self.start_file(zxid)?;
        }
        if let Some(cur) = self.current.as_mut() {
            let new_size = size_with_padding(cur.written, cur.size, self.cfg.prealloc_size);
            if new_size != cur.size {
                cur.file.write_all_at(&[0u8], new_size - 1)?;
                cur.size = new_size;
            }
        }
        let before = self.buf.len();
        frame_record(payload, &mut self.buf);
        let n = (self.buf.len() - before) as u64;
        self.appended_bytes_total += n;
        self.last_zxid = zxid;
        Ok(n)
    }

    fn start_file(&mut self, zxid: Zxid) -> io::Result<()> {
        let path = self.dir.join(files::log_name(zxid));
        refuse_to_overwrite_records(&path)?;
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)?;
        file.write_all(&FileHeader::txn_log().to_bytes())?;
        // The new name must survive a crash once records in it are acknowledged.
        files::sync_dir(&self.dir)?;
        tracing::info!(file = %path.display(), "creating new transaction log");
        self.current = Some(OpenLog {
            file,
            path,
            written: FILE_HEADER_LEN as u64,
            size: FILE_HEADER_LEN as u64,
            filled: FILE_HEADER_LEN as u64,
            zero_fill_failed: false,
            released: 0,
        });
        Ok(())
    }

    fn write_buffered(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Some(cur) = self.current.as_mut() {
            if self.cfg.force_sync {
                // Only a log that is fdatasynced gains from written padding.
                let batch = self.buf.len() as u64;
                cur.zero_fill_ahead(cur.written + batch, batch);
            }
            #[cfg(feature = "failpoints")]
            super::failpoints::write_all_at(&cur.file, &self.buf, cur.written)?;
            #[cfg(not(feature = "failpoints"))]
            cur.file.write_all_at(&self.buf, cur.written)?;
            cur.written += self.buf.len() as u64;
        }
        self.buf.clear();
        Ok(())
    }

    /// Writes everything buffered and (with `force_sync`) fdatasyncs every file written
    /// since the last sync. After it returns, all appended records are durable.
    pub fn sync_all(&mut self) -> io::Result<()> {
        self.write_buffered()?;
        if self.cfg.force_sync {
            let start = Instant::now();
            for f in &mut self.to_sync {
                f.sync(true)?;
            }
            if let Some(cur) = &mut self.current {
                cur.sync(false)?;
            }
            let ms = start.elapsed().as_millis();
            if ms > FSYNC_WARN_MS {
                tracing::warn!(ms, "fsync of the transaction log was slow");
            }
        }
        self.to_sync.clear();
        if let (Some(limit), Some(cur)) = (self.cfg.size_limit, &self.current) {
            if cur.written > limit {
                tracing::debug!(size = cur.written, "log size limit reached, rolling");
                self.roll()?;
            }
        }
        Ok(())
    }

    /// Closes the current file (its buffered records are written; they are fdatasynced
    /// at the next [`FileTxnLog::sync_all`]). The next append starts `log.<its zxid>`.
    pub fn roll(&mut self) -> io::Result<()> {
        self.write_buffered()?;
        if let Some(cur) = self.current.take() {
            self.to_sync.push(cur);
        }
        Ok(())
    }

    /// Writes and syncs everything, then closes the files.
    pub fn close(mut self) -> io::Result<()> {
        // Closed as a rolled file is: synced, then released whole.
        self.roll()?;
        self.sync_all()
    }
}

impl Drop for FileTxnLog {
    /// Writes (without fsync) what was appended, as a process exit would leave it in the
    /// page cache; errors are only logged.
    fn drop(&mut self) {
        if let Err(e) = self.write_buffered() {
            tracing::warn!(error = %e, "could not write buffered log records on close");
        }
    }
}

/// A new log file may replace a file of the same name only if that file holds no
/// record (a header, zeros: a crash right after the file was created). A record there
/// means the zxid was logged before: overwriting would lose it, so this is an error
/// naming the file (the disk thread then stops the server).
fn refuse_to_overwrite_records(path: &std::path::Path) -> io::Result<()> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    };
    // The first record's checksum (8 bytes) and length (4) follow the header.
    let mut first = [0u8; 12];
    let mut got = 0;
    while got < first.len() {
        match file.read_at(&mut first[got..], (FILE_HEADER_LEN + got) as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        }
    }
    if first.iter().any(|b| *b != 0) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{}: a new transaction log would overwrite this file, which holds logged records (the log and the epoch files disagree?)",
                path.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rzk_proto::txn::{CreateSessionTxn, Txn, TxnHeader};

    fn rec(zxid: i64) -> TxnRecord {
        TxnRecord {
            header: TxnHeader {
                client_id: 7,
                cxid: 0,
                zxid,
                time: 1000,
                txn_type: -10,
            },
            txn: Txn::CreateSession(CreateSessionTxn { timeout_ms: 30000 }),
            digest: None,
        }
    }

    #[test]
    fn a_new_file_never_overwrites_logged_records() {
        let d = tempfile::tempdir().unwrap();
        let mut log = FileTxnLog::open(d.path(), TxnLogConfig::default()).unwrap();
        log.append_record(&rec(0x1_0000_0001)).unwrap();
        log.sync_all().unwrap();
        log.close().unwrap();
        let p = d.path().join("version-2/log.100000001");
        let before = std::fs::read(&p).unwrap();
        // A log reopened whose first txn has a logged zxid (epoch files older than
        // the log): an error naming the file, and the file untouched.
        let mut again = FileTxnLog::open(d.path(), TxnLogConfig::default()).unwrap();
        let err = again
            .append_record(&rec(0x1_0000_0001))
            .and_then(|_| again.sync_all())
            .expect_err("overwrote a logged record");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
        assert!(err.to_string().contains("log.100000001"), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), before);
        // A file holding only its header (a crash right after it was created) is
        // replaced.
        let q = d.path().join("version-2/log.200000001");
        std::fs::write(&q, FileHeader::txn_log().to_bytes()).unwrap();
        let mut fresh = FileTxnLog::open(d.path(), TxnLogConfig::default()).unwrap();
        fresh.append_record(&rec(0x2_0000_0001)).unwrap();
        fresh.sync_all().unwrap();
        assert!(std::fs::metadata(&q).unwrap().len() > FILE_HEADER_LEN as u64);
    }

    #[test]
    fn padding_rule_matches_zookeeper() {
        let p = DEFAULT_PREALLOC_SIZE;
        assert_eq!(size_with_padding(16, 16, p), 16 + p);
        assert_eq!(size_with_padding(100, 16 + p, p), 16 + p);
        assert_eq!(size_with_padding(16 + p - 4096, 16 + p, p), 16 + 2 * p);
        // written past the allocation: position + prealloc, rounded down
        assert_eq!(size_with_padding(3 * p + 5, 2 * p, p), 4 * p);
        assert_eq!(size_with_padding(10, 16, 0), 16);
    }

    #[test]
    fn fresh_log_is_header_plus_prealloc_and_named_after_first_zxid() {
        let d = tempfile::tempdir().unwrap();
        let mut log = FileTxnLog::open(d.path(), TxnLogConfig::default()).unwrap();
        log.append_record(&rec(0x1_0000_0001)).unwrap();
        log.append_record(&rec(0x1_0000_0002)).unwrap();
        assert_eq!(log.buffered_bytes(), 2 * (RECORD_OVERHEAD + 32 + 4));
        log.sync_all().unwrap();
        let p = d.path().join("version-2/log.100000001");
        assert_eq!(
            std::fs::metadata(&p).unwrap().len(),
            16 + DEFAULT_PREALLOC_SIZE
        );
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..16], &FileHeader::txn_log().to_bytes());
        let payload = rec(0x1_0000_0001).encode();
        assert_eq!(&bytes[16..24], &(adler32(&payload) as i64).to_be_bytes());
        assert_eq!(&bytes[24..28], &(payload.len() as i32).to_be_bytes());
        assert_eq!(bytes[28 + payload.len()], END_OF_RECORD);
    }

    /// Whether `dir`'s filesystem reports the allocation these tests look at: a file
    /// grown by `set_len` is a hole, and written zeros take blocks. (ZFS or btrfs with
    /// compression store zero blocks as holes; some filesystems have no holes.)
    fn allocation_is_visible(dir: &Path) -> bool {
        let sparse = dir.join("probe-sparse");
        let f = File::create(&sparse).unwrap();
        f.set_len(4 * ZERO_FILL_STEP).unwrap();
        f.sync_all().unwrap();
        let holes = allocated(&sparse) < ZERO_FILL_STEP;
        let zeros = dir.join("probe-zeros");
        let f = File::create(&zeros).unwrap();
        f.write_all_at(&ZEROS, 0).unwrap();
        f.sync_all().unwrap();
        let kept = allocated(&zeros) >= ZERO_FILL_STEP;
        std::fs::remove_file(sparse).unwrap();
        std::fs::remove_file(zeros).unwrap();
        if !(holes && kept) {
            eprintln!("skipped: this filesystem does not show holes and written zeros apart");
        }
        holes && kept
    }

    /// A temporary directory whose filesystem shows allocation ([`allocation_is_visible`]),
    /// or `None` (the test is skipped).
    fn dir_showing_allocation() -> Option<tempfile::TempDir> {
        let d = tempfile::tempdir().unwrap();
        allocation_is_visible(d.path()).then_some(d)
    }

    /// Bytes allocated to `path` (`st_blocks` counts 512-byte units).
    fn allocated(path: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).unwrap().blocks() * 512
    }

    /// The padding ahead of the records is written zeros, not a hole (so an fdatasync
    /// does not allocate blocks), the file keeps ZooKeeper's padded size and bytes, and
    /// records written across several zero-fill steps read back in order.
    #[test]
    fn padding_ahead_of_the_records_is_written_zeros() {
        let Some(d) = dir_showing_allocation() else {
            return;
        };
        let mut log = FileTxnLog::open(d.path(), TxnLogConfig::default()).unwrap();
        log.append_record(&rec(1)).unwrap();
        log.sync_all().unwrap();
        let p = d.path().join("version-2/log.1");
        assert_eq!(
            std::fs::metadata(&p).unwrap().len(),
            16 + DEFAULT_PREALLOC_SIZE
        );
        // The first step is allocated, the rest of the 64 MiB padding is not.
        let first = allocated(&p);
        assert!(first >= ZERO_FILL_STEP, "only {first} bytes allocated");
        assert!(first < DEFAULT_PREALLOC_SIZE / 2);

        // ~3.5 steps of records, synced in small groups as the disk thread does.
        let per_record = (RECORD_OVERHEAD + 36) as u64;
        let n = (7 * ZERO_FILL_STEP / 2 / per_record) as i64;
        for z in 2..=n {
            log.append_record(&rec(z)).unwrap();
            if z % 50 == 0 {
                log.sync_all().unwrap();
            }
        }
        log.sync_all().unwrap();
        let end = 16 + n as u64 * per_record;
        assert_eq!(
            std::fs::metadata(&p).unwrap().len(),
            16 + DEFAULT_PREALLOC_SIZE
        );
        assert!(allocated(&p) >= end + ZERO_FILL_LOW_WATER);
        let bytes = std::fs::read(&p).unwrap();
        assert!(bytes[end as usize..].iter().all(|&b| b == 0));
        let mut r = crate::storage::log_reader::LogFileReader::open(&p).unwrap();
        let mut zxids = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            zxids.push(e.record.header.zxid);
        }
        assert_eq!(zxids, (1..=n).collect::<Vec<_>>());
        assert!(matches!(
            r.end(),
            Some(crate::storage::log_reader::FileEnd::Clean)
        ));
    }

    /// Pages of `path` in the page cache, per page of its first `len` bytes
    /// (`mincore(2)` of a read-only mapping).
    fn resident_pages(path: &Path, len: u64) -> Vec<bool> {
        use std::os::fd::AsRawFd;
        let f = File::open(path).unwrap();
        let len = len as usize;
        // SAFETY: sysconf reads no memory of this process.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        assert!(page > 0);
        // SAFETY: a fresh shared read-only mapping of an open file, `len` bytes (> 0,
        // within the file); it is never read, only passed to mincore and unmapped below.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        assert_ne!(addr, libc::MAP_FAILED);
        let mut vec = vec![0u8; len.div_ceil(page)];
        // SAFETY: `addr` is the page-aligned mapping of `len` bytes made above; `vec`
        // has one byte per page of it (`page` is the system's page size).
        let r = unsafe { libc::mincore(addr, len, vec.as_mut_ptr()) };
        assert_eq!(r, 0);
        // SAFETY: unmaps exactly the mapping made above, which nothing uses any more.
        unsafe { libc::munmap(addr, len) };
        vec.iter().map(|b| b & 1 == 1).collect()
    }

    /// Whether `dir`'s filesystem drops clean pages on `posix_fadvise(DONTNEED)` (tmpfs
    /// cannot: its pages are the file).
    fn drops_clean_pages(dir: &Path) -> bool {
        let p = dir.join("probe-cache");
        let f = File::create(&p).unwrap();
        f.write_all_at(&ZEROS, 0).unwrap();
        f.sync_all().unwrap();
        let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed);
        let dropped = resident_pages(&p, ZERO_FILL_STEP).iter().all(|r| !r);
        std::fs::remove_file(p).unwrap();
        if !dropped {
            eprintln!("skipped: this filesystem keeps clean pages after DONTNEED");
        }
        dropped
    }

    /// Once fdatasynced, a log's records leave the page cache in steps (the pages the
    /// writes take next are reused ones), the whole of a rolled file does, nothing
    /// unsynced does (`forceSync=no`), and every record still reads back. Groups end at
    /// uneven offsets (every 37 records), so steps end inside pages and folios.
    #[test]
    fn synced_log_pages_leave_the_page_cache() {
        let d = tempfile::tempdir().unwrap();
        if !drops_clean_pages(d.path()) {
            return;
        }
        let per_record = (RECORD_OVERHEAD + 36) as u64;
        let n = (3 * RELEASE_STEP / per_record) as i64;
        for force_sync in [true, false] {
            let cfg = TxnLogConfig {
                force_sync,
                ..TxnLogConfig::default()
            };
            let dir = d.path().join(format!("sync-{force_sync}"));
            let mut log = FileTxnLog::open(&dir, cfg).unwrap();
            for z in 1..=n {
                log.append_record(&rec(z)).unwrap();
                if z % 37 == 0 {
                    log.sync_all().unwrap();
                }
            }
            log.sync_all().unwrap();
            let released = log.current.as_ref().map_or(0, |c| c.released);
            let p = dir.join("version-2/log.1");
            let end = 16 + n as u64 * per_record;
            let cached = resident_pages(&p, end);
            let first_mib = &cached[..(RELEASE_STEP / 4096) as usize];
            if force_sync {
                assert!(released >= 2 * RELEASE_STEP, "released only {released}");
                assert!(first_mib.iter().all(|r| !r), "synced pages still cached");
            } else {
                assert_eq!(released, 0, "released without fdatasync");
                assert!(first_mib.iter().all(|r| *r), "unsynced pages were dropped");
            }
            // A rolled file leaves whole at the next sync.
            log.roll().unwrap();
            log.append_record(&rec(n + 1)).unwrap();
            log.sync_all().unwrap();
            let cached = resident_pages(&p, end);
            assert_eq!(
                cached.iter().any(|r| *r),
                !force_sync,
                "rolled file, forceSync={force_sync}"
            );
            // And a closed one at the close.
            let p2 = dir.join(format!("version-2/log.{:x}", n + 1));
            log.close().unwrap();
            let cached = resident_pages(&p2, 16 + per_record);
            assert_eq!(cached.iter().any(|r| *r), !force_sync, "closed file");
            let mut r = crate::storage::log_reader::LogFileReader::open(&p).unwrap();
            let mut zxids = Vec::new();
            while let Some(e) = r.next_entry().unwrap() {
                zxids.push(e.record.header.zxid);
            }
            assert_eq!(zxids, (1..=n).collect::<Vec<_>>());
        }
    }

    /// Without fdatasync the padding stays a hole (the zeros would be written for
    /// nothing).
    #[test]
    fn padding_is_not_written_without_force_sync() {
        let Some(d) = dir_showing_allocation() else {
            return;
        };
        let cfg = TxnLogConfig {
            force_sync: false,
            ..TxnLogConfig::default()
        };
        let mut log = FileTxnLog::open(d.path(), cfg).unwrap();
        log.append_record(&rec(1)).unwrap();
        log.sync_all().unwrap();
        assert!(allocated(&d.path().join("version-2/log.1")) < ZERO_FILL_STEP);
    }

    /// A batch larger than the low-water mark gets no zero fill: its records land in
    /// new blocks anyway, and large values would be written twice.
    #[test]
    fn a_large_batch_is_not_zero_filled() {
        let Some(d) = dir_showing_allocation() else {
            return;
        };
        let mut log = FileTxnLog::open(d.path(), TxnLogConfig::default()).unwrap();
        let big = vec![7u8; ZERO_FILL_LOW_WATER as usize + 1];
        log.append_encoded(Zxid(1), &big).unwrap();
        log.sync_all().unwrap();
        let p = d.path().join("version-2/log.1");
        let records = 16 + (RECORD_OVERHEAD + big.len()) as u64;
        let a = allocated(&p);
        assert!(
            a < records + ZERO_FILL_STEP / 2,
            "{a} bytes allocated for {records} bytes of records"
        );
    }

    /// A zero fill that cannot be written (here: a read-only file handle; in life, a
    /// full disk) is not an error of the log: the padding stays a hole, no further fill
    /// is tried, and the records are written as before.
    #[test]
    fn a_failed_zero_fill_is_not_an_error_of_the_log() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("log.1");
        std::fs::write(&path, [0u8; 16]).unwrap();
        let file = OpenOptions::new().read(true).open(&path).unwrap();
        let mut log = OpenLog {
            file,
            path: path.clone(),
            written: 16,
            size: 16 + DEFAULT_PREALLOC_SIZE,
            filled: 16,
            zero_fill_failed: false,
            released: 0,
        };
        log.zero_fill_ahead(100, 84);
        assert!(log.zero_fill_failed);
        assert_eq!(log.filled, 16);
        // Not tried again: `filled` stays where it was even for a later batch.
        log.zero_fill_ahead(200, 100);
        assert_eq!(log.filled, 16);
    }

    #[test]
    fn roll_starts_a_new_file_at_next_append() {
        let d = tempfile::tempdir().unwrap();
        let cfg = TxnLogConfig {
            prealloc_size: 1024,
            force_sync: false,
            size_limit: None,
        };
        let mut log = FileTxnLog::open(d.path(), cfg).unwrap();
        log.append_record(&rec(1)).unwrap();
        log.roll().unwrap();
        assert!(log.current_file().is_none());
        log.append_record(&rec(2)).unwrap();
        log.append_record(&rec(3)).unwrap();
        log.sync_all().unwrap();
        let names: Vec<i64> = files::list_logs(log.dir())
            .unwrap()
            .iter()
            .map(|f| f.zxid.0)
            .collect();
        assert_eq!(names, vec![1, 2]);
    }

    #[test]
    fn size_limit_rolls_after_sync() {
        let d = tempfile::tempdir().unwrap();
        let cfg = TxnLogConfig {
            prealloc_size: 0,
            force_sync: false,
            size_limit: Some(100),
        };
        let mut log = FileTxnLog::open(d.path(), cfg).unwrap();
        for z in 1..=10 {
            log.append_record(&rec(z)).unwrap();
            log.sync_all().unwrap();
        }
        assert!(files::list_logs(log.dir()).unwrap().len() >= 3);
    }

    /// Known Adler-32 values (RFC 1950's algorithm, as java.util.zip.Adler32 gives
    /// them), short and long enough for the vectorised paths.
    #[test]
    fn adler32_known_values() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        let long: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        // The definition, one byte at a time, for the long input.
        let (mut a, mut b) = (1u32, 0u32);
        for &x in &long {
            a = (a + x as u32) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!(adler32(&long), (b << 16) | a);
    }
}

#[cfg(test)]
mod adler_chunks {
    /// Review (session 13): simd-adler32 fed in pieces of many sizes (as the snapshot
    /// writer and reader feed it) equals the definition, including all-0xff input
    /// (largest sums, where a missed modular reduction would show).
    #[test]
    fn adler32_in_any_chunking_matches_the_definition() {
        for fillb in [None, Some(0xffu8)] {
            let data: Vec<u8> = (0..400_000u32)
                .map(|i| fillb.unwrap_or((i.wrapping_mul(2_654_435_761) >> 13) as u8))
                .collect();
            let (mut a, mut b) = (1u32, 0u32);
            for &x in &data {
                a = (a + x as u32) % 65521;
                b = (b + a) % 65521;
            }
            let want = (b << 16) | a;
            assert_eq!(super::adler32(&data), want);
            for step in [
                1usize, 3, 15, 16, 31, 32, 33, 63, 64, 65, 4095, 5552, 5553, 65536,
            ] {
                let mut h = simd_adler32::Adler32::new();
                for c in data.chunks(step) {
                    h.write(c);
                }
                assert_eq!(h.finish(), want, "step {step}");
            }
        }
    }
}
