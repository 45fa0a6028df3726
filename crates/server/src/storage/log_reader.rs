//! Reading ZooKeeper transaction logs: one file ([`LogFileReader`]) or a directory from a
//! zxid on ([`LogIterator`], choosing files as ZooKeeper does).
//!
//! A read stops cleanly at the zero preallocation. A damaged record is classified:
//! if no valid record follows it in the same file it is a **torn tail** (a crash in
//! the middle of a write: reported via [`FileEnd::Torn`] so recovery can truncate it),
//! otherwise it is **corruption** ([`LogReadError::Corrupt`], naming file and byte
//! offset), which must stop start-up. This module never modifies files (see `log_repair`).

use super::files::{self, FileHeader, ZxidFile, FILE_HEADER_LEN, TXNLOG_MAGIC};
use super::txnlog::{adler32, END_OF_RECORD, RECORD_OVERHEAD};
use rzk_proto::txn::TxnRecord;
use rzk_proto::Zxid;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Read buffer for sequential log reads.
const READ_BUF: usize = 256 * 1024;
/// Chunk size when scanning a file backwards for its last non-zero byte.
const SCAN_CHUNK: usize = 1024 * 1024;
/// Largest damaged region searched for a following valid record; a larger one is
/// reported as corruption without searching (conservative: it stops start-up).
pub const MAX_DAMAGE_SCAN: u64 = 256 * 1024 * 1024;

/// The largest record length a log may hold when `jute.maxbuffer` is `jute_max_buffer`:
/// ZooKeeper's `BinaryInputArchive` reads up to `jute.maxbuffer` plus its extra size
/// (`zookeeper.jute.maxbuffer.extrasize`, by default `jute.maxbuffer` again, never below
/// 1024) and refuses a longer one ("Unreasonable length").
pub fn max_record_len(jute_max_buffer: usize) -> u64 {
    let max = jute_max_buffer as u64;
    max + max.max(1024)
}

/// The bound of readers opened without one ([`LogFileReader::set_max_record_len`]):
/// [`max_record_len`] of the default `jute.maxbuffer` unless a tool set another
/// ([`set_default_max_record_len`]; start-up gives its iterator its own).
static DEFAULT_MAX_RECORD_LEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Sets the record length bound of the readers opened from now on in this process
/// without one of their own (`rzk log --jute-maxbuffer`, as ZooKeeper's tools read
/// `-Djute.maxbuffer`).
pub fn set_default_max_record_len(max: u64) {
    DEFAULT_MAX_RECORD_LEN.store(max, std::sync::atomic::Ordering::Relaxed);
}

fn default_max_record_len() -> u64 {
    match DEFAULT_MAX_RECORD_LEN.load(std::sync::atomic::Ordering::Relaxed) {
        0 => max_record_len(crate::config::DEFAULT_JUTE_MAX_BUFFER),
        n => n,
    }
}

/// What is wrong with the record at some offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordFault {
    /// The file is shorter than the 16-byte header.
    ShortHeader,
    /// A zero header in a file with nothing else in it (crash while creating it).
    ZeroHeader,
    /// End of file inside the record (checksum, length, payload or marker missing).
    Truncated,
    /// A negative length field, or one above [`max_record_len`]. A crash never writes
    /// it: a torn write leaves each byte of the real length or a zero of the
    /// preallocation, which reads as at most the real length.
    BadLength(i32),
    /// A zero length field with non-zero bytes after it (not padding).
    ZeroLength,
    /// The byte after the payload is not 0x42.
    MissingEndMarker(u8),
    /// The stored Adler-32 does not match the payload.
    BadChecksum { stored: i64, computed: u32 },
    /// The stored Adler-32 does not match the payload, which is not a transaction
    /// either (only [`LogFileReader::accept_bad_checksums`] readers look).
    BadChecksumUndecodable {
        stored: i64,
        computed: u32,
        error: String,
    },
    /// Checksum fine but the payload is not a transaction.
    Undecodable(String),
}

impl fmt::Display for RecordFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordFault::ShortHeader => write!(f, "file shorter than its header"),
            RecordFault::ZeroHeader => write!(f, "zeroed file header"),
            RecordFault::Truncated => write!(f, "record cut short by end of file"),
            RecordFault::BadLength(n) => write!(f, "bad record length {n}"),
            RecordFault::ZeroLength => write!(f, "zero record length before non-zero data"),
            RecordFault::MissingEndMarker(b) => {
                write!(f, "end-of-record byte is 0x{b:02x}, not 0x42")
            }
            RecordFault::BadChecksum { stored, computed } => write!(
                f,
                "CRC check failed: stored adler32 0x{stored:x}, computed 0x{computed:x}"
            ),
            RecordFault::BadChecksumUndecodable {
                stored,
                computed,
                error,
            } => write!(
                f,
                "CRC check failed: stored adler32 0x{stored:x}, computed 0x{computed:x}, and the body is no transaction ({error})"
            ),
            RecordFault::Undecodable(e) => write!(f, "undecodable transaction: {e}"),
        }
    }
}

/// A damaged end of a log file: everything from `offset` on is garbage that no valid
/// record follows. Recovery truncates the file at `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub file: PathBuf,
    pub offset: u64,
    pub fault: RecordFault,
}

/// How a log file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileEnd {
    /// End of file or zero padding.
    Clean,
    Torn(TornTail),
}

#[derive(Debug, thiserror::Error)]
pub enum LogReadError {
    #[error("transaction log {}: {source}", file.display())]
    Io { file: PathBuf, source: io::Error },
    /// The path is not a regular file ([`LogFileReader::open`]).
    #[error("transaction log {} is {kind}, not a regular file: a log is read by its size and by offset (`rzk log dump` reads a pipe or device to its end first; for the other tools copy it to a file)", file.display())]
    NotAFile { file: PathBuf, kind: &'static str },
    /// Copying a pipe or device into a temporary file failed
    /// ([`LogFileReader::open_spooled`]).
    #[error("transaction log {}: copying it to a temporary file in $TMPDIR: {source}", file.display())]
    Spool { file: PathBuf, source: io::Error },
    #[error("transaction log {} has invalid magic number 0x{magic:08x} at byte offset 0 (ZooKeeper's logs start with ZKLG, 0x5a4b4c47)", file.display())]
    BadMagic { file: PathBuf, magic: i32 },
    #[error(
        "transaction log {} is corrupt at byte offset {offset}: {fault} (valid records follow at offset {next_valid})",
        file.display()
    )]
    Corrupt {
        file: PathBuf,
        offset: u64,
        fault: RecordFault,
        next_valid: u64,
    },
    /// A length field a torn write cannot leave ([`RecordFault::BadLength`]).
    #[error(
        "transaction log {} has a record at byte offset {offset} whose length field is {len} (at most {max} is read): a crash cannot leave that, so it is not cut as a torn write; ZooKeeper refuses it too (Unreasonable length). If the log was written with a larger `jute.maxbuffer` (records up to twice it are accepted), start with that value again (the tools: `rzk log --jute-maxbuffer N`); otherwise the record is damaged: restore the file from another member, or cut the log before it with `rzk log chop` (the txns from it on are lost)",
        file.display()
    )]
    ImpossibleLength {
        file: PathBuf,
        offset: u64,
        len: i32,
        max: u64,
    },
    /// A whole record (length and end marker intact) whose checksum does not match.
    /// `undecodable`: its body is not a transaction either (seen by readers that
    /// accept bad checksums: `rzk log recover` cannot keep such a record).
    #[error(
        "transaction log {} has a complete record at byte offset {offset} whose checksum does not match (stored {stored}, computed {computed}){}: not a write torn by a crash, so it is not cut; ZooKeeper refuses it too (CRC check failed). {}",
        file.display(),
        undecodable.as_ref().map(|e| format!(" and whose body is no transaction ({e})")).unwrap_or_default(),
        if undecodable.is_some() {
            "`rzk log recover` cannot keep it; restore the file from another member, or `rzk log chop` cuts the log before it (the txns from it on are lost)"
        } else {
            "Inspect it with `rzk log dump`; `rzk log recover` keeps it with a new checksum, `rzk log chop` cuts the log before it"
        }
    )]
    BadChecksum {
        file: PathBuf,
        offset: u64,
        stored: i64,
        computed: u32,
        undecodable: Option<String>,
    },
    /// A damaged record ends a log file, but a later file holds records: not a write
    /// torn by a crash (that can only end the log), so the txns in the damaged region
    /// would be skipped. (ZooKeeper refuses a wrong CRC there too; a record cut short or
    /// without its end marker makes it skip the rest of that file silently.)
    #[error(
        "transaction log {} is damaged at byte offset {offset} ({fault}), but the later log {} holds txn {zxid}: the damaged record is not a torn write at the end of the log, and skipping it would lose the txns it held; restore the file, or cut the log there with `rzk log` knowing what is lost",
        file.display(),
        later.display()
    )]
    DamagedBeforeLaterRecords {
        file: PathBuf,
        offset: u64,
        fault: RecordFault,
        later: PathBuf,
        zxid: Zxid,
    },
}

/// What kind of file `meta` describes, for [`LogReadError::NotAFile`].
pub(crate) fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a pipe (FIFO)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// [`super::spool::spool`] for [`LogFileReader::open_spooled`]: `input` (opened from
/// `path`) copied into a temporary file. A read error is the log's
/// ([`LogReadError::Io`]); only the temporary file's own is [`LogReadError::Spool`].
fn spool_input(path: &Path, input: &mut File) -> Result<File, LogReadError> {
    super::spool::spool(input, TXNLOG_MAGIC).map_err(|e| match e {
        super::spool::SpoolError::Input(source) => LogReadError::Io {
            file: path.to_path_buf(),
            source,
        },
        super::spool::SpoolError::Temp(source) => LogReadError::Spool {
            file: path.to_path_buf(),
            source,
        },
    })
}

/// One record read from a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Byte offset of the record (its checksum field) in the file.
    pub offset: u64,
    /// Byte offset just past its 0x42 marker.
    pub end_offset: u64,
    pub record: TxnRecord,
}

/// Sequential reader of one log file.
pub struct LogFileReader {
    path: PathBuf,
    file: File,
    reader: BufReader<File>,
    pos: u64,
    len: u64,
    end: Option<FileEnd>,
    /// Return records whose only fault is their checksum (for TxnLogToolkit's recover).
    accept_bad_checksums: bool,
    /// Longer length fields are [`RecordFault::BadLength`] ([`max_record_len`]).
    max_record_len: u64,
    /// `(stored, computed)` checksums of the last returned record when they differed.
    last_bad_checksum: Option<(i64, u32)>,
    /// The file's modification time when opened: a later one means a writer is at work.
    opened_mtime: Option<std::time::SystemTime>,
    pub header: FileHeader,
}

impl LogFileReader {
    /// Opens a log and checks its header. A file too short for a header, or an all-zero
    /// file, opens as already ended with a torn tail at offset 0. Anything but a regular
    /// file (a directory, a pipe, a character device) is refused
    /// ([`LogReadError::NotAFile`]): the reader goes by the file's size and reads ahead
    /// of a damaged record by offset; [`LogFileReader::open_spooled`] takes such input.
    pub fn open(path: &Path) -> Result<LogFileReader, LogReadError> {
        let io_err = |source| LogReadError::Io {
            file: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            return Err(LogReadError::NotAFile {
                file: path.to_path_buf(),
                kind: file_kind(&meta),
            });
        }
        Self::from_file(path, file)
    }

    /// [`LogFileReader::open`] for input that may also be a pipe, a FIFO or a character
    /// device (`rzk log dump /dev/stdin < log.1`, `zcat log.1.gz | rzk log dump
    /// /dev/stdin`): such input is first copied to its end into an unlinked temporary
    /// file (in `$TMPDIR`, gone when the reader is), which is then read as the log;
    /// offsets are the input's. Input whose first 16 bytes are not a log header is not
    /// copied past them (`/dev/zero` would never end). A directory is still refused.
    /// For the tools only: the server reads regular files.
    pub fn open_spooled(path: &Path) -> Result<LogFileReader, LogReadError> {
        let io_err = |source| LogReadError::Io {
            file: path.to_path_buf(),
            source,
        };
        let mut input = File::open(path).map_err(io_err)?;
        let meta = input.metadata().map_err(io_err)?;
        if meta.is_file() {
            return Self::from_file(path, input);
        }
        if meta.is_dir() {
            return Err(LogReadError::NotAFile {
                file: path.to_path_buf(),
                kind: file_kind(&meta),
            });
        }
        let spool = spool_input(path, &mut input)?;
        Self::from_file(path, spool)
    }

    /// Reads the log in `file` (a regular file positioned at its start), naming it
    /// `path`.
    fn from_file(path: &Path, file: File) -> Result<LogFileReader, LogReadError> {
        let io_err = |source| LogReadError::Io {
            file: path.to_path_buf(),
            source,
        };
        let meta = file.metadata().map_err(io_err)?;
        let len = meta.len();
        let reader = BufReader::with_capacity(READ_BUF, file.try_clone().map_err(io_err)?);
        let mut r = LogFileReader {
            path: path.to_path_buf(),
            file,
            reader,
            pos: 0,
            len,
            end: None,
            accept_bad_checksums: false,
            last_bad_checksum: None,
            max_record_len: default_max_record_len(),
            opened_mtime: meta.modified().ok(),
            header: FileHeader::txn_log(),
        };
        if len < FILE_HEADER_LEN as u64 {
            r.end = Some(FileEnd::Torn(r.torn(0, RecordFault::ShortHeader)));
            return Ok(r);
        }
        let mut h = [0u8; FILE_HEADER_LEN];
        r.reader.read_exact(&mut h).map_err(io_err)?;
        r.header = FileHeader::from_bytes(&h);
        r.pos = FILE_HEADER_LEN as u64;
        if r.header.magic != TXNLOG_MAGIC {
            if h.iter().all(|b| *b == 0) && r.last_nonzero(0)?.is_none() {
                r.end = Some(FileEnd::Torn(r.torn(0, RecordFault::ZeroHeader)));
                return Ok(r);
            }
            return Err(LogReadError::BadMagic {
                file: r.path.clone(),
                magic: r.header.magic,
            });
        }
        Ok(r)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// From now on, a record that is complete and decodes but whose stored Adler-32 is
    /// wrong is returned instead of being treated as damage; see
    /// [`LogFileReader::last_bad_checksum`]. Used by `rzk log recover` (ZooKeeper's
    /// `TxnLogToolkit -r`), never by recovery at start-up.
    pub fn set_max_record_len(&mut self, max: u64) {
        self.max_record_len = max;
    }

    pub fn accept_bad_checksums(&mut self) {
        self.accept_bad_checksums = true;
    }

    /// `(stored, computed)` checksums of the record last returned by
    /// [`LogFileReader::next_entry`], when they differ (only with
    /// [`LogFileReader::accept_bad_checksums`]).
    pub fn last_bad_checksum(&self) -> Option<(i64, u32)> {
        self.last_bad_checksum
    }

    /// How the file ended, once [`LogFileReader::next_entry`] returned `None`.
    pub fn end(&self) -> Option<&FileEnd> {
        self.end.as_ref()
    }

    /// Offset of the next record.
    pub fn position(&self) -> u64 {
        self.pos
    }

    fn torn(&self, offset: u64, fault: RecordFault) -> TornTail {
        TornTail {
            file: self.path.clone(),
            offset,
            fault,
        }
    }

    fn io(&self, source: io::Error) -> LogReadError {
        LogReadError::Io {
            file: self.path.clone(),
            source,
        }
    }

    /// The next record, or `None` at the end of the file (see [`LogFileReader::end`]).
    pub fn next_entry(&mut self) -> Result<Option<LogEntry>, LogReadError> {
        if self.end.is_some() {
            return Ok(None);
        }
        let off = self.pos;
        self.last_bad_checksum = None;
        match self.read_record(off)? {
            Ok(Some(entry)) => {
                self.pos = entry.end_offset;
                Ok(Some(entry))
            }
            Ok(None) => {
                self.end = Some(FileEnd::Clean);
                Ok(None)
            }
            Err(fault) => {
                if let Some(entry) = self.read_again(off)? {
                    self.pos = entry.end_offset;
                    return Ok(Some(entry));
                }
                let tail = self.classify(off, fault)?;
                self.end = Some(FileEnd::Torn(tail));
                Ok(None)
            }
        }
    }

    /// Reads the record at `off` again, a few times a moment apart, after it read as
    /// damaged: a server may be appending to this file (`rzk log dump` of a live log),
    /// and a record it was writing (or zeros it has just overwritten) can read as
    /// damage once. `None` when it still does not read as a record. Once at once;
    /// then, only if the file was modified after it was opened, a few times a moment
    /// apart (a file nobody writes, the usual case, costs one read).
    fn read_again(&mut self, off: u64) -> Result<Option<LogEntry>, LogReadError> {
        for pause_ms in [0, 1, 5, 25] {
            if pause_ms > 0 {
                let modified = self.file.metadata().and_then(|m| m.modified()).ok();
                if modified.is_none() || modified == self.opened_mtime {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(pause_ms));
            }
            self.reader
                .seek(SeekFrom::Start(off))
                .map_err(|e| self.io(e))?;
            if let Ok(Some(entry)) = self.read_record(off)? {
                return Ok(Some(entry));
            }
        }
        // Leave the stream where classification expects it (it reads by offset).
        self.reader
            .seek(SeekFrom::Start(off))
            .map_err(|e| self.io(e))?;
        Ok(None)
    }

    /// Reads the record at `off` (the stream is positioned there). Outer error = IO,
    /// inner `Ok(None)` = clean end, inner `Err` = a damaged record.
    #[allow(clippy::type_complexity)]
    fn read_record(
        &mut self,
        off: u64,
    ) -> Result<Result<Option<LogEntry>, RecordFault>, LogReadError> {
        if off == self.len {
            return Ok(Ok(None));
        }
        if self.len - off < 12 {
            return Ok(Err(RecordFault::Truncated));
        }
        let mut h = [0u8; 12];
        self.reader.read_exact(&mut h).map_err(|e| self.io(e))?;
        let stored = i64::from_be_bytes(h[0..8].try_into().unwrap_or([0; 8]));
        let len = i32::from_be_bytes(h[8..12].try_into().unwrap_or([0; 4]));
        if len == 0 {
            return Ok(if stored == 0 && self.last_nonzero(off)?.is_none() {
                Ok(None)
            } else {
                Err(RecordFault::ZeroLength)
            });
        }
        if len < 0 || len as u64 > self.max_record_len {
            return Ok(Err(RecordFault::BadLength(len)));
        }
        let need = len as u64 + 1;
        if self.len - off - 12 < need {
            return Ok(Err(RecordFault::Truncated));
        }
        let mut payload = vec![0u8; len as usize + 1];
        self.reader
            .read_exact(&mut payload)
            .map_err(|e| self.io(e))?;
        let marker = payload.pop().unwrap_or(0);
        if marker != END_OF_RECORD {
            return Ok(Err(RecordFault::MissingEndMarker(marker)));
        }
        let computed = adler32(&payload);
        let bad_checksum = stored != computed as i64;
        if bad_checksum && !self.accept_bad_checksums {
            return Ok(Err(RecordFault::BadChecksum { stored, computed }));
        }
        let decoded = TxnRecord::decode(&payload);
        if bad_checksum {
            if let Err(e) = &decoded {
                // Whole (length and end marker intact) with a wrong checksum: damage, not
                // a torn write, whether or not its body decodes. As undecodable it would
                // be cut as a torn tail by `rzk log dump` / `recover`, which accept bad
                // checksums, where start-up refuses it (a break-it review).
                return Ok(Err(RecordFault::BadChecksumUndecodable {
                    stored,
                    computed,
                    error: e.to_string(),
                }));
            }
            self.last_bad_checksum = Some((stored, computed));
        }
        match decoded {
            Ok(record) => Ok(Ok(Some(LogEntry {
                offset: off,
                end_offset: off + RECORD_OVERHEAD as u64 + len as u64,
                record,
            }))),
            Err(e) => Ok(Err(RecordFault::Undecodable(e.to_string()))),
        }
    }

    /// Offset of the last non-zero byte at or after `from`, if any. Reads only the
    /// file's data regions: the holes of a sparse preallocation read as zeros.
    fn last_nonzero(&self, from: u64) -> Result<Option<u64>, LogReadError> {
        let regions = data_regions(&self.file, from, self.len).map_err(|e| self.io(e))?;
        for (start, end) in regions.into_iter().rev() {
            if let Some(at) = self.last_nonzero_in(start, end)? {
                return Ok(Some(at));
            }
        }
        Ok(None)
    }

    /// Offset of the last non-zero byte in `from..end`, if any.
    fn last_nonzero_in(&self, from: u64, mut end: u64) -> Result<Option<u64>, LogReadError> {
        let mut buf = vec![0u8; SCAN_CHUNK.min((end - from) as usize)];
        while end > from {
            let start = end.saturating_sub(SCAN_CHUNK as u64).max(from);
            let n = (end - start) as usize;
            self.file
                .read_exact_at(&mut buf[..n], start)
                .map_err(|e| self.io(e))?;
            if let Some(i) = buf[..n].iter().rposition(|b| *b != 0) {
                return Ok(Some(start + i as u64));
            }
            end = start;
        }
        Ok(None)
    }

    /// Torn tail unless a valid record starts somewhere after `off` in this file, or the
    /// damaged record is whole (its length and end marker intact) and only its checksum
    /// is wrong: a crash does not write that, and ZooKeeper refuses it ("CRC check
    /// failed"), so it is not cut as a torn write (which would drop a committed txn).
    fn classify(&self, off: u64, fault: RecordFault) -> Result<TornTail, LogReadError> {
        match fault {
            RecordFault::BadChecksum { stored, computed } => {
                return Err(LogReadError::BadChecksum {
                    file: self.path.clone(),
                    offset: off,
                    stored,
                    computed,
                    undecodable: None,
                })
            }
            RecordFault::BadChecksumUndecodable {
                stored,
                computed,
                error,
            } => {
                return Err(LogReadError::BadChecksum {
                    file: self.path.clone(),
                    offset: off,
                    stored,
                    computed,
                    undecodable: Some(error),
                })
            }
            _ => {}
        }
        if let RecordFault::BadLength(len) = fault {
            return Err(LogReadError::ImpossibleLength {
                file: self.path.clone(),
                offset: off,
                len,
                max: self.max_record_len,
            });
        }
        let Some(last) = self.last_nonzero(off + 1)? else {
            return Ok(self.torn(off, fault));
        };
        let start = off + 1;
        let region_len = last + 1 - start;
        if region_len > MAX_DAMAGE_SCAN {
            return Err(LogReadError::Corrupt {
                file: self.path.clone(),
                offset: off,
                fault,
                next_valid: start,
            });
        }
        let mut region = vec![0u8; region_len as usize];
        self.file
            .read_exact_at(&mut region, start)
            .map_err(|e| self.io(e))?;
        match find_valid_record(&region) {
            Some(i) => Err(LogReadError::Corrupt {
                file: self.path.clone(),
                offset: off,
                fault,
                next_valid: start + i as u64,
            }),
            None => Ok(self.torn(off, fault)),
        }
    }
}

/// The byte ranges of `f` within `from..len` that may hold data, in file order:
/// everything but its holes (`lseek` `SEEK_DATA` / `SEEK_HOLE`; the file offset, which
/// the reader's duplicate of the handle shares, is put back). A log's preallocation is
/// a hole (it is made by writing its last byte), so a clean end costs a few kilobytes
/// of reading instead of up to `preAllocSize`. Where holes cannot be asked for, the
/// whole range.
fn data_regions(f: &File, from: u64, len: u64) -> io::Result<Vec<(u64, u64)>> {
    #[cfg(target_os = "linux")]
    {
        let was = rustix::fs::seek(f, rustix::fs::SeekFrom::Current(0))?;
        let regions = data_regions_moving_offset(f, from, len);
        rustix::fs::seek(f, rustix::fs::SeekFrom::Start(was))?;
        regions
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = f;
        Ok(if from < len {
            vec![(from, len)]
        } else {
            Vec::new()
        })
    }
}

/// [`data_regions`], leaving the file offset anywhere.
#[cfg(target_os = "linux")]
fn data_regions_moving_offset(f: &File, from: u64, len: u64) -> io::Result<Vec<(u64, u64)>> {
    {
        use rustix::fs::{seek, SeekFrom};
        let mut out = Vec::new();
        let mut pos = from;
        while pos < len {
            let data = match seek(f, SeekFrom::Data(pos)) {
                Ok(d) => d,
                // No data after `pos`.
                Err(rustix::io::Errno::NXIO) => break,
                // The file system cannot say: read it all.
                Err(_) => return Ok(vec![(from, len)]),
            };
            if data >= len {
                break;
            }
            let hole = seek(f, SeekFrom::Hole(data)).map_or(len, |h| h.min(len));
            if hole <= data {
                return Ok(vec![(from, len)]);
            }
            out.push((data, hole));
            pos = hole;
        }
        Ok(out)
    }
}

/// Index of the first offset in `b` where a complete valid record starts.
fn find_valid_record(b: &[u8]) -> Option<usize> {
    let n = b.len();
    let mut i = 0;
    while i + 12 < n {
        let len = i32::from_be_bytes([b[i + 8], b[i + 9], b[i + 10], b[i + 11]]);
        if len > 0 {
            let end = i + 12 + len as usize;
            if end < n && b[end] == END_OF_RECORD {
                let stored = i64::from_be_bytes([
                    b[i],
                    b[i + 1],
                    b[i + 2],
                    b[i + 3],
                    b[i + 4],
                    b[i + 5],
                    b[i + 6],
                    b[i + 7],
                ]);
                let payload = &b[i + 12..end];
                if stored == adler32(payload) as i64 && TxnRecord::decode(payload).is_ok() {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

/// ZooKeeper's choice of log files for reading from `start_zxid`: every log whose start
/// zxid is `>= start_zxid`, plus the newest one starting below it.
pub fn files_from(logs: &[ZxidFile], start_zxid: Zxid) -> Vec<ZxidFile> {
    debug_assert!(
        logs.windows(2).all(|w| w[0].zxid <= w[1].zxid),
        "log files not ascending by zxid (files::list_logs sorts them)"
    );
    let mut out: Vec<ZxidFile> = Vec::new();
    for f in logs.iter().rev() {
        out.push(f.clone());
        if f.zxid < start_zxid {
            break;
        }
    }
    out.reverse();
    out
}

/// Reads the records of a `version-2` log directory with zxid `>= start_zxid`, in file
/// order. Torn tails are collected ([`LogIterator::torn_tails`]) and reading moves on to
/// the next file; corruption is an `Err` item after which the iterator is exhausted.
pub struct LogIterator {
    files: Vec<ZxidFile>,
    next_file: usize,
    cur: Option<LogFileReader>,
    start_zxid: Zxid,
    torn: Vec<TornTail>,
    /// A torn tail of a file that was not the last, with the zxid of that file's last
    /// intact record: an error if a record at or above `start_zxid` follows in a later
    /// file, unless that record is the very next zxid (the damage then held no txn: stray
    /// bytes in the padding after the file's last record, which ZooKeeper reads as the
    /// end of the file) or the first of a later epoch (a tail torn by a crash, before
    /// the restart's new log).
    torn_before: Option<(TornTail, Option<i64>)>,
    /// The zxid of the last record read from the current file.
    last_in_file: Option<i64>,
    failed: bool,
    /// Given to each file's reader ([`LogFileReader::set_max_record_len`]).
    max_record_len: u64,
}

impl LogIterator {
    pub fn open(version_dir: &Path, start_zxid: Zxid) -> Result<LogIterator, LogReadError> {
        let all = files::list_logs(version_dir).map_err(|source| LogReadError::Io {
            file: version_dir.to_path_buf(),
            source,
        })?;
        Ok(LogIterator {
            files: files_from(&all, start_zxid),
            next_file: 0,
            cur: None,
            start_zxid,
            torn: Vec::new(),
            torn_before: None,
            last_in_file: None,
            failed: false,
            max_record_len: default_max_record_len(),
        })
    }

    /// Reads records up to `max` bytes long ([`max_record_len`] of `jute.maxbuffer`).
    pub fn set_max_record_len(&mut self, max: u64) {
        self.max_record_len = max;
    }

    /// The files chosen, ascending.
    pub fn files(&self) -> &[ZxidFile] {
        &self.files
    }

    /// Torn tails met so far (one per damaged file).
    pub fn torn_tails(&self) -> &[TornTail] {
        &self.torn
    }

    /// The file the last returned record came from.
    pub fn current_file(&self) -> Option<&Path> {
        self.cur.as_ref().map(|c| c.path())
    }

    fn step(&mut self) -> Result<Option<LogEntry>, LogReadError> {
        loop {
            if self.cur.is_none() {
                let Some(f) = self.files.get(self.next_file) else {
                    return Ok(None);
                };
                self.next_file += 1;
                let mut r = LogFileReader::open(&f.path)?;
                r.set_max_record_len(self.max_record_len);
                self.cur = Some(r);
                self.last_in_file = None;
            }
            let Some(cur) = self.cur.as_mut() else {
                continue;
            };
            let entry = cur.next_entry()?;
            if let Some(e) = &entry {
                let zxid = e.record.header.zxid;
                if let Some((_, Some(last))) = &self.torn_before {
                    // The next zxid, or the first of a later epoch: a crash tore the
                    // end of that epoch's log, and the server restarted into a new
                    // epoch and a new file (ZooKeeper does not cut the torn tail, and
                    // reads past it; a break-it review in session 51).
                    let next_epoch = zxid & 0xffff_ffff == 1 && (zxid >> 32) > (last >> 32);
                    if last.checked_add(1) == Some(zxid) || next_epoch {
                        // Nothing was lost in the damaged file: its tail is cut as a
                        // torn one (it is in `torn`), and reading goes on.
                        self.torn_before = None;
                    }
                }
                self.last_in_file = Some(zxid);
            }
            match entry {
                Some(e) if e.record.header.zxid < self.start_zxid.0 => continue,
                Some(e) => {
                    if let Some((t, _)) = self.torn_before.take() {
                        return Err(LogReadError::DamagedBeforeLaterRecords {
                            file: t.file,
                            offset: t.offset,
                            fault: t.fault,
                            later: cur.path().to_path_buf(),
                            zxid: Zxid(e.record.header.zxid),
                        });
                    }
                    return Ok(Some(e));
                }
                None => {
                    if let Some(FileEnd::Torn(t)) = cur.end() {
                        self.torn.push(t.clone());
                        if self.torn_before.is_none() {
                            self.torn_before = Some((t.clone(), self.last_in_file));
                        }
                    }
                    if self.next_file >= self.files.len() {
                        return Ok(None);
                    }
                    self.cur = None;
                }
            }
        }
    }
}

impl Iterator for LogIterator {
    type Item = Result<LogEntry, LogReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.step() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log that cannot be read while it is copied (here a file open for writing
    /// only, as a failing device) is reported as the log's read error, not as a
    /// problem with the temporary file in `$TMPDIR`.
    #[test]
    fn a_spooled_logs_read_error_is_the_logs() {
        let named = tempfile::NamedTempFile::new().expect("temp file");
        let mut write_only = std::fs::OpenOptions::new()
            .write(true)
            .open(named.path())
            .expect("open for writing");
        match spool_input(named.path(), &mut write_only) {
            Err(LogReadError::Io { .. }) => {}
            other => panic!("want the log's read error, got {other:?}"),
        }
    }
}
