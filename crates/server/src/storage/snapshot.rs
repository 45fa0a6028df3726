//! Snapshot files `<dataDir>/version-2/snapshot.<hex zxid>[.gz|.snappy]` in ZooKeeper's format:
//! header `ZKSN`/2/-1, sessions, ACL cache, nodes in pre-order (root written as ""),
//! the "/" terminator and the running-Adler-32 seals (plus the digest block; the 3.9
//! lastProcessedZxid block is read but not written, as 3.8 does).
//!
//! Streaming on both sides and independent of the data tree: [`SnapshotWriter`] takes
//! sessions, ACL entries and nodes one by one; [`SnapshotReader`] yields them one by one
//! and verifies the seals. Writes go to a `.tmp` file that is fsynced and renamed, so a
//! snapshot name never refers to a partial file. This module never decides which
//! snapshot to load (recovery.rs) nor which to delete (purge.rs).

use super::direct_file::DirectFile;
use super::files::{self, Compression, FileHeader, ZxidFile, FILE_HEADER_LEN, SNAP_MAGIC};
use super::read_ahead::ReadAhead;
use super::snappy::{self, SnappyReader, SnappyWriter};
use bytes::Bytes;
use flate2::bufread::GzDecoder;
use flate2::write::GzEncoder;
use rzk_proto::jute::Jute;
use rzk_proto::records::{Acl, Id, StatPersisted};
use rzk_proto::{Data, Zxid};
use std::fs::{self, File};
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes of the seal string `ustring "/"`.
pub const SEAL_TAIL: [u8; 5] = [0, 0, 0, 1, b'/'];
/// Smallest file the quick validity check accepts.
pub const MIN_SNAPSHOT_LEN: u64 = 10;
/// Digest version written (`digest` stored as a long).
pub const DIGEST_VERSION: i32 = 2;
/// Largest string / buffer accepted when reading (guards against corrupt lengths).
pub const MAX_FIELD_LEN: usize = 256 * 1024 * 1024;
/// Largest trailer (after the node list) accepted when reading.
const MAX_TRAILER_LEN: usize = 4096;
/// Stored size of a `StatPersisted`.
const STAT_PERSISTED_LEN: usize = 60;
/// Snapshots ZooKeeper considers at startup.
pub const MAX_SNAPSHOT_CANDIDATES: usize = 100;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Errors reading or writing a snapshot; each names the file (and, for damage, the
/// offset).
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file could not be opened, read or written.
    #[error("snapshot {}: {source}", file.display())]
    Io { file: PathBuf, source: io::Error },
    /// Reading the file failed (the disk's error, not damaged contents) at `offset`,
    /// a byte offset of the file itself (compressed or not).
    #[error("snapshot {}: read error at byte offset {offset} of the file: {source}", file.display())]
    ReadFailed {
        file: PathBuf,
        offset: u64,
        source: io::Error,
    },
    /// The contents are damaged at `offset`. For a compressed file (`.gz`, `.snappy`)
    /// `offset` counts bytes of the decompressed stream, and `compressed` says how far
    /// into the file itself the decompressor had read.
    #[error("snapshot {} is invalid at byte offset {offset}{}: {what}", file.display(), compressed_note(compressed))]
    Corrupt {
        file: PathBuf,
        offset: u64,
        what: String,
        compressed: Option<CompressedPos>,
    },
    /// The writer or reader was called out of order.
    #[error("snapshot {}: {what}", file.display())]
    Usage { file: PathBuf, what: &'static str },
}

/// Where a decompressor stood in a compressed snapshot file when damage was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressedPos {
    /// `gzip` or `snappy`.
    pub format: &'static str,
    /// Bytes of the file the decompressor had consumed (it reads ahead of the damaged
    /// byte by up to a block).
    pub file_bytes_read: u64,
}

/// The part of [`SnapshotError::Corrupt`]'s message saying which stream the offset
/// counts.
fn compressed_note(c: &Option<CompressedPos>) -> String {
    match c {
        None => String::new(),
        Some(c) => format!(
            " of the decompressed {} stream (the decompressor had read {} bytes of the file)",
            c.format, c.file_bytes_read
        ),
    }
}

/// One node as stored: path ("" for the root), data, ACL cache index, stat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapNode {
    pub path: String,
    /// Null data (length -1) stays null.
    pub data: Data,
    pub acl: i64,
    pub stat: StatPersisted,
}

/// One node read by [`SnapshotReader::next_node_into`]: the fields of a [`SnapNode`]
/// in buffers reused from node to node.
#[derive(Debug, Default)]
pub struct NodeBuf {
    path: String,
    data: Vec<u8>,
    null_data: bool,
    /// ACL cache index.
    pub acl: i64,
    pub stat: StatPersisted,
}

impl NodeBuf {
    /// The path ("" for the root).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The data, `None` when null.
    pub fn data(&self) -> Option<&[u8]> {
        (!self.null_data).then_some(&self.data[..])
    }
}

/// The digest block: tree digest at zxid (`zxid == 0` means "no digest").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZxidDigest {
    pub zxid: Zxid,
    pub version: i32,
    pub digest: i64,
}

impl ZxidDigest {
    /// The block ZooKeeper writes when digests are on but none was computed yet.
    pub const EMPTY: ZxidDigest = ZxidDigest {
        zxid: Zxid::ZERO,
        version: DIGEST_VERSION,
        digest: 0,
    };
}

/// What follows the node list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnapshotTrailer {
    pub digest: Option<ZxidDigest>,
    /// 3.9's lastProcessedZxid block.
    pub last_processed_zxid: Option<Zxid>,
}

/// A snapshot file found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    pub path: PathBuf,
    pub zxid: Zxid,
    pub compression: Compression,
}

// ---------------------------------------------------------------- writing

enum Sink {
    Plain(DirectFile),
    Gz(GzEncoder<DirectFile>),
    /// Boxed: the Snappy encoder's hash table is 2 KiB.
    Snappy(Box<SnappyWriter<DirectFile>>),
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(b),
            Sink::Gz(w) => w.write(b),
            Sink::Snappy(w) => w.write(b),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gz(w) => w.flush(),
            Sink::Snappy(w) => w.flush(),
        }
    }
}

impl Sink {
    /// The file under the buffers.
    fn file(&self) -> &DirectFile {
        match self {
            Sink::Plain(w) => w,
            Sink::Gz(w) => w.get_ref(),
            Sink::Snappy(w) => w.get_ref(),
        }
    }

    /// Writes what is buffered and returns the file, not yet synced.
    fn into_file(self) -> io::Result<File> {
        match self {
            Sink::Plain(w) => w,
            Sink::Gz(w) => w.finish()?,
            Sink::Snappy(w) => w.finish()?,
        }
        .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Sessions,
    Acls,
    Nodes,
}

/// Writes a jute `buffer`: its length and bytes, or length -1 for null.
pub fn write_buffer(data: Option<&[u8]>, out: &mut Vec<u8>) {
    match data {
        Some(b) => {
            (b.len() as i32).write(out);
            out.extend_from_slice(b);
        }
        None => (-1i32).write(out),
    }
}

/// Nodes are gathered in the writer's scratch buffer until it holds this many bytes,
/// then checksummed and handed to the file together (one Adler-32 update and one copy
/// per ~64 KiB instead of per node).
const EMIT_AT: usize = 64 * 1024;

/// Bytes a snapshot writer hands to the file between two starts of background writeback
/// (see [`SnapshotWriter`]).
pub const WRITEBACK_EVERY: u64 = 8 << 20;

#[cfg(test)]
thread_local! {
    /// Tests set this to write through the page cache (the fallback where `O_DIRECT`
    /// is refused) on a file system that allows `O_DIRECT`.
    static BUFFERED_FOR_TEST: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Opens a snapshot's `.tmp` file for writing: `O_DIRECT` where allowed.
fn open_output(tmp: &Path) -> io::Result<DirectFile> {
    #[cfg(test)]
    if BUFFERED_FOR_TEST.get() {
        return Ok(DirectFile::buffered(File::create(tmp)?));
    }
    DirectFile::create(tmp)
}

/// Streaming snapshot writer: `create`, `sessions`, `acl_cache`, `node`..., `finish`.
///
/// The file is written with `O_DIRECT` where the file system allows it
/// ([`DirectFile`]): no page-cache copy, and no more than one write of the snapshot
/// (`direct_file::CHUNK`, 256 KiB) queued in front of a log fsync. Otherwise, every
/// [`WRITEBACK_EVERY`] bytes it asks the kernel to start writing back what it has
/// written so far (`posix_fadvise(DONTNEED)`, which on Linux starts asynchronous
/// writeback of the range and drops its clean pages from the page cache), so the final
/// fsync finds a few MiB dirty instead of the whole file: a 200 MiB flush at the end
/// would queue in front of the transaction log's fsyncs on the same disk and stall
/// writes (RocksDB's `bytes_per_sync` does the same). ZooKeeper writes its snapshot
/// through a buffered stream and fsyncs once at the end.
pub struct SnapshotWriter {
    out: Option<Sink>,
    /// Bytes handed to the file so far (before compression: counted at `emit`).
    emitted: u64,
    /// `emitted` when writeback was last started.
    writeback_mark: u64,
    /// File offset up to which writeback was started.
    writeback_offset: u64,
    adler: simd_adler32::Adler32,
    scratch: Vec<u8>,
    stage: Stage,
    tmp: PathBuf,
    dest: PathBuf,
    nodes: u64,
}

impl SnapshotWriter {
    /// Starts `<version_dir>/snapshot.<hex zxid>[.gz|.snappy]` (written as `<name>.tmp` until
    /// [`SnapshotWriter::finish`]) and writes the file header.
    pub fn create(
        version_dir: &Path,
        zxid: Zxid,
        compression: Compression,
    ) -> Result<SnapshotWriter, SnapshotError> {
        let name = files::snapshot_name(zxid, compression);
        let dest = version_dir.join(&name);
        let tmp = version_dir.join(format!("{name}.tmp"));
        let io_err = |source| SnapshotError::Io {
            file: tmp.clone(),
            source,
        };
        let bw = open_output(&tmp).map_err(io_err)?;
        let out = match compression {
            Compression::Gzip => Sink::Gz(GzEncoder::new(bw, flate2::Compression::default())),
            Compression::Snappy => Sink::Snappy(Box::new(SnappyWriter::new(bw).map_err(io_err)?)),
            Compression::None => Sink::Plain(bw),
        };
        let mut w = SnapshotWriter {
            out: Some(out),
            emitted: 0,
            writeback_mark: 0,
            writeback_offset: 0,
            adler: simd_adler32::Adler32::new(),
            scratch: Vec::with_capacity(4096),
            stage: Stage::Sessions,
            tmp,
            dest,
            nodes: 0,
        };
        w.scratch
            .extend_from_slice(&FileHeader::snapshot().to_bytes());
        w.emit()?;
        Ok(w)
    }

    /// Where the finished snapshot will be.
    pub fn path(&self) -> &Path {
        &self.dest
    }

    /// Nodes written so far.
    pub fn node_count(&self) -> u64 {
        self.nodes
    }

    fn emit(&mut self) -> Result<(), SnapshotError> {
        self.adler.write(&self.scratch);
        let res = match self.out.as_mut() {
            Some(o) => o.write_all(&self.scratch),
            None => Err(io::Error::other("snapshot writer already finished")),
        };
        self.emitted += self.scratch.len() as u64;
        self.scratch.clear();
        if self.emitted - self.writeback_mark >= WRITEBACK_EVERY
            && self.out.as_ref().is_some_and(|o| !o.file().is_direct())
        {
            self.writeback_mark = self.emitted;
            self.start_writeback();
        }
        res.map_err(|source| SnapshotError::Io {
            file: self.tmp.clone(),
            source,
        })
    }

    /// Starts writeback of what reached the file since the last call (see the type's
    /// doc). Advice only: a failure changes nothing but timing, so it is ignored (the
    /// final fsync still decides whether the snapshot is durable).
    fn start_writeback(&mut self) {
        let Some(out) = self.out.as_ref() else {
            return;
        };
        let mut file = out.file().file();
        let Ok(end) = io::Seek::stream_position(&mut file) else {
            return;
        };
        if let Some(len) = std::num::NonZeroU64::new(end.saturating_sub(self.writeback_offset)) {
            let _ = rustix::fs::fadvise(
                file,
                self.writeback_offset,
                Some(len),
                rustix::fs::Advice::DontNeed,
            );
            self.writeback_offset = end;
        }
    }

    fn expect(&mut self, stage: Stage, what: &'static str) -> Result<(), SnapshotError> {
        if self.stage != stage {
            return Err(SnapshotError::Usage {
                file: self.dest.clone(),
                what,
            });
        }
        Ok(())
    }

    /// The session table: (session id, timeout ms). Must come first.
    pub fn sessions(&mut self, sessions: &[(i64, i32)]) -> Result<(), SnapshotError> {
        self.expect(Stage::Sessions, "sessions must be written first, once")?;
        (sessions.len() as i32).write(&mut self.scratch);
        for (id, to) in sessions {
            id.write(&mut self.scratch);
            to.write(&mut self.scratch);
            if self.scratch.len() >= EMIT_AT {
                self.emit()?;
            }
        }
        self.emit()?;
        self.stage = Stage::Acls;
        Ok(())
    }

    /// The ACL cache: (index, list). Must follow the sessions.
    pub fn acl_cache(&mut self, entries: &[(i64, Vec<Acl>)]) -> Result<(), SnapshotError> {
        self.expect(Stage::Acls, "the ACL cache must follow the sessions, once")?;
        (entries.len() as i32).write(&mut self.scratch);
        for (idx, acls) in entries {
            idx.write(&mut self.scratch);
            acls.write(&mut self.scratch);
            if self.scratch.len() >= EMIT_AT {
                self.emit()?;
            }
        }
        self.emit()?;
        self.stage = Stage::Nodes;
        Ok(())
    }

    /// One node, in pre-order (parents before children); the root's path is "".
    pub fn node(
        &mut self,
        path: &str,
        data: &Data,
        acl: i64,
        stat: &StatPersisted,
    ) -> Result<(), SnapshotError> {
        self.node_bytes(path, data.as_option().map(|b| &b[..]), acl, stat)
    }

    /// [`SnapshotWriter::node`] with the data as bytes (`None`: null), as the tree's
    /// snapshot walk hands it out.
    pub fn node_bytes(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: i64,
        stat: &StatPersisted,
    ) -> Result<(), SnapshotError> {
        self.expect(Stage::Nodes, "nodes must follow the ACL cache")?;
        if path == "/" {
            return Err(SnapshotError::Usage {
                file: self.dest.clone(),
                what: "the root must be written with path \"\"",
            });
        }
        (path.len() as i32).write(&mut self.scratch);
        self.scratch.extend_from_slice(path.as_bytes());
        write_buffer(data, &mut self.scratch);
        acl.write(&mut self.scratch);
        stat.write(&mut self.scratch);
        self.nodes += 1;
        if self.scratch.len() >= EMIT_AT {
            self.emit()?;
        }
        Ok(())
    }

    fn seal(&mut self) -> Result<(), SnapshotError> {
        let v = self.adler.finish() as i64;
        v.write(&mut self.scratch);
        self.scratch.extend_from_slice(&SEAL_TAIL);
        self.emit()
    }

    /// Writes the "/" terminator and seal, then (when `digest` is given: digests are
    /// enabled; pass [`ZxidDigest::EMPTY`] if none is known) the digest block and its
    /// seal; fsyncs and renames the file into place. Returns its path.
    pub fn finish(mut self, digest: Option<ZxidDigest>) -> Result<PathBuf, SnapshotError> {
        self.expect(Stage::Nodes, "finish before the ACL cache was written")?;
        self.scratch.extend_from_slice(&SEAL_TAIL);
        self.emit()?;
        self.seal()?;
        if let Some(d) = digest {
            d.zxid.0.write(&mut self.scratch);
            d.version.write(&mut self.scratch);
            if d.version < 2 {
                format!("{:x}", d.digest).write(&mut self.scratch);
            } else {
                d.digest.write(&mut self.scratch);
            }
            self.emit()?;
            self.seal()?;
        }
        let tmp = self.tmp.clone();
        let io_tmp = |source| SnapshotError::Io {
            file: tmp.clone(),
            source,
        };
        let out = self
            .out
            .take()
            .ok_or_else(|| io_tmp(io::Error::other("snapshot writer already finished")))?;
        // Past this point `Drop` no longer sees an unfinished file: a failure here
        // removes the `.tmp` itself (a full disk at the last flush or the fsync left it
        // behind until the next start).
        let placed = out
            .into_file()
            .and_then(|f| f.sync_all())
            .and_then(|()| fs::rename(&self.tmp, &self.dest));
        if let Err(e) = placed {
            let _ = fs::remove_file(&self.tmp);
            return Err(io_tmp(e));
        }
        if let Some(dir) = self.dest.parent() {
            files::sync_dir(dir).map_err(|source| SnapshotError::Io {
                file: dir.to_path_buf(),
                source,
            })?;
        }
        Ok(self.dest.clone())
    }
}

impl Drop for SnapshotWriter {
    /// An unfinished snapshot leaves no file behind.
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

// ---------------------------------------------------------------- reading

/// Buffered reading with the running Adler-32 of everything consumed. The checksum is
/// brought up to date a whole buffer at a time (and before a seal is compared), not per
/// field: per-field updates of a few bytes were a tenth of a snapshot load's time.
struct AdlerRead {
    inner: Box<dyn Read + Send>,
    buf: Box<[u8]>,
    /// Next unread byte of `buf`.
    at: usize,
    /// End of the valid bytes in `buf`.
    end: usize,
    /// `buf[..summed]` is already in `adler`.
    summed: usize,
    adler: simd_adler32::Adler32,
    /// Bytes consumed from the stream.
    pos: u64,
}

impl AdlerRead {
    fn new(inner: Box<dyn Read + Send>) -> AdlerRead {
        AdlerRead {
            inner,
            buf: vec![0u8; 256 * 1024].into_boxed_slice(),
            at: 0,
            end: 0,
            summed: 0,
            adler: simd_adler32::Adler32::new(),
            pos: 0,
        }
    }

    /// Adds the consumed bytes not yet in the checksum.
    fn sum(&mut self) {
        self.adler.write(&self.buf[self.summed..self.at]);
        self.summed = self.at;
    }

    /// The checksum of everything consumed so far.
    fn checksum(&mut self) -> u32 {
        self.sum();
        self.adler.finish()
    }

    /// Reads the next chunk of the stream into the (fully consumed) buffer; `false` at
    /// the end of the stream.
    fn refill(&mut self) -> io::Result<bool> {
        self.sum();
        self.at = 0;
        self.end = 0;
        self.summed = 0;
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(n) => {
                    self.end = n;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn read_exact(&mut self, b: &mut [u8]) -> io::Result<()> {
        let mut done = 0;
        while done < b.len() {
            if self.at == self.end && !self.refill()? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let n = (b.len() - done).min(self.end - self.at);
            b[done..done + n].copy_from_slice(&self.buf[self.at..self.at + n]);
            self.at += n;
            done += n;
            self.pos += n as u64;
        }
        Ok(())
    }

    /// The rest of the stream, NOT added to the checksum (which stays at the current
    /// position); `None` when it is longer than `limit`.
    fn rest(&mut self, limit: usize) -> io::Result<Option<Vec<u8>>> {
        self.sum();
        let mut out = self.buf[self.at..self.end].to_vec();
        self.at = self.end;
        self.summed = self.end;
        let mut chunk = [0u8; 512];
        while out.len() <= limit {
            match self.inner.read(&mut chunk) {
                Ok(0) => return Ok(Some(out)),
                Ok(n) => out.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }
}

/// The file under a decompressor, counting the bytes the decompressor consumes (for
/// error messages: a compressed file's offsets otherwise count decompressed bytes).
struct CountingRead {
    inner: ReadAhead,
    consumed: Arc<AtomicU64>,
}

impl Read for CountingRead {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(b)?;
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl BufRead for CountingRead {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.consumed.fetch_add(n as u64, Ordering::Relaxed);
        self.inner.consume(n);
    }
}

/// Every gzip member of a `.gz` snapshot, one after the other, as
/// java.util.zip.GZIPInputStream (ZooKeeper's SnapStream) reads them: a file made by
/// concatenating gzip files, or by a tool that writes several members, is one stream.
/// After a member, bytes that do not start another (no gzip magic) end the stream and
/// are ignored with a warning, as GZIPInputStream ignores them (flate2's
/// `MultiGzDecoder` fails on them).
///
/// Bytes that start like a gzip header (`0x1f`, or `0x1f 0x8b`) but are no valid one
/// (cut short, a bad method or flags) end the stream the same way: GZIPInputStream's
/// `readTrailer` ignores any IOException reading the next member's header. Damage
/// after a valid header (a member cut short) is an error, as it is there.
struct GzMembers {
    member: Option<GzDecoder<CountingRead>>,
    /// The current member is not the first: a header error ends the stream.
    later: bool,
    path: PathBuf,
}

impl GzMembers {
    fn new(r: CountingRead, path: &Path) -> GzMembers {
        GzMembers {
            member: Some(GzDecoder::new(r)),
            later: false,
            path: path.to_path_buf(),
        }
    }
}

impl Read for GzMembers {
    fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(m) = self.member.as_mut() else {
                return Ok(0);
            };
            let n = match m.read(b) {
                Ok(n) => n,
                Err(e) if self.later && m.header().is_none() => {
                    tracing::warn!(file = %self.path.display(), error = %e, "ignoring bytes after the last gzip member (no valid gzip header), as ZooKeeper does");
                    self.member = None;
                    return Ok(0);
                }
                Err(e) => return Err(e),
            };
            if n > 0 || b.is_empty() {
                return Ok(n);
            }
            // This member ended (its CRC and length checked): another may follow.
            let Some(m) = self.member.take() else {
                return Ok(0);
            };
            let mut r = m.into_inner();
            let next = r.fill_buf()?;
            // The buffer may hold only the first byte of the next header.
            let starts_member = next.first() == Some(&GZIP_MAGIC[0])
                && next.get(1).is_none_or(|b| *b == GZIP_MAGIC[1]);
            if starts_member {
                self.member = Some(GzDecoder::new(r));
                self.later = true;
            } else {
                if !next.is_empty() {
                    tracing::warn!(file = %self.path.display(), at = r.consumed.load(Ordering::Relaxed), "ignoring bytes after the last gzip member (not a gzip header), as ZooKeeper does");
                }
                return Ok(0);
            }
        }
    }
}

/// Streaming snapshot reader: `open`, `sessions`, `acl_cache`, `next_node`... until
/// `None`, then `finish` (verifies the seals).
pub struct SnapshotReader {
    r: AdlerRead,
    /// The file offset just past the bytes read from it ([`ReadAhead::offset`]).
    file_offset: Arc<AtomicU64>,
    /// For a compressed file: its format and the file bytes its decompressor consumed.
    compressed: Option<(&'static str, Arc<AtomicU64>)>,
    path: PathBuf,
    stage: Stage,
    nodes_done: bool,
    /// Nodes read so far: only the first (the root) has the empty path.
    nodes_read: u64,
    pub header: FileHeader,
}

impl SnapshotReader {
    /// Opens a snapshot (gz or snappy by extension) and checks the magic.
    pub fn open(path: &Path) -> Result<SnapshotReader, SnapshotError> {
        let f = File::open(path).map_err(|source| SnapshotError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Self::from_file(f, path)
    }

    /// Reads the snapshot in `f` from its current offset, naming it `path` (whose
    /// extension says the compression), and checks the magic. For a reader that must
    /// read one file several times (`rzk snapshot dump`): reopening the path could find
    /// another file there, or nothing more of a pipe.
    pub fn from_file(f: File, path: &Path) -> Result<SnapshotReader, SnapshotError> {
        let name = files::file_name(path);
        let compression = if name.ends_with(".gz") {
            Compression::Gzip
        } else if name.ends_with(".snappy") {
            Compression::Snappy
        } else {
            Compression::None
        };
        let consumed = Arc::new(AtomicU64::new(0));
        let ahead = ReadAhead::new(f).map_err(|source| SnapshotError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        let file_offset = ahead.offset();
        let counted = CountingRead {
            inner: ahead,
            consumed: consumed.clone(),
        };
        let (inner, compressed): (Box<dyn Read + Send>, _) = match compression {
            Compression::None => (Box::new(counted.inner), None),
            Compression::Gzip => (Box::new(GzMembers::new(counted, path)), Some("gzip")),
            Compression::Snappy => (Box::new(SnappyReader::new(counted)), Some("snappy")),
        };
        let mut s = SnapshotReader {
            r: AdlerRead::new(inner),
            file_offset,
            compressed: compressed.map(|format| (format, consumed)),
            path: path.to_path_buf(),
            stage: Stage::Sessions,
            nodes_done: false,
            nodes_read: 0,
            header: FileHeader::snapshot(),
        };
        let mut h = [0u8; FILE_HEADER_LEN];
        s.fill(&mut h)?;
        s.header = FileHeader::from_bytes(&h);
        if s.header.magic != SNAP_MAGIC {
            return Err(s.corrupt(
                0,
                format!("mismatching magic header 0x{:08x}", s.header.magic),
            ));
        }
        Ok(s)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Offset in the uncompressed stream.
    pub fn position(&self) -> u64 {
        self.r.pos
    }

    /// For a compressed file: how far into the file the decompressor has read.
    fn compressed_pos(&self) -> Option<CompressedPos> {
        self.compressed.as_ref().map(|(format, n)| CompressedPos {
            format,
            file_bytes_read: n.load(Ordering::Relaxed),
        })
    }

    fn corrupt(&self, offset: u64, what: String) -> SnapshotError {
        SnapshotError::Corrupt {
            file: self.path.clone(),
            offset,
            what,
            compressed: self.compressed_pos(),
        }
    }

    fn fill(&mut self, b: &mut [u8]) -> Result<(), SnapshotError> {
        let at = self.r.pos;
        self.r.read_exact(b).map_err(|e| self.read_error(at, e))
    }

    /// What a failed read at `at` (uncompressed offset) means: the end of the file or
    /// damage reported by the decompressor (a bad header, a damaged block, a checksum)
    /// is [`SnapshotError::Corrupt`] with both positions; the system's own errors are
    /// [`SnapshotError::Io`].
    fn read_error(&self, at: u64, e: io::Error) -> SnapshotError {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            // A compressed file's reader says where its own stream ended (offset
            // `at` counts uncompressed bytes).
            let what = match e.get_ref() {
                Some(inner) => format!("unexpected end of file ({inner})"),
                None => "unexpected end of file".into(),
            };
            self.corrupt(at, what)
        } else if self.compressed.is_some() && e.raw_os_error().is_none() {
            self.corrupt(at, format!("damaged compressed data: {e}"))
        } else {
            SnapshotError::ReadFailed {
                file: self.path.clone(),
                offset: self.file_offset.load(Ordering::Relaxed),
                source: e,
            }
        }
    }

    fn i32(&mut self) -> Result<i32, SnapshotError> {
        let mut b = [0u8; 4];
        self.fill(&mut b)?;
        Ok(i32::from_be_bytes(b))
    }

    fn i64(&mut self) -> Result<i64, SnapshotError> {
        let mut b = [0u8; 8];
        self.fill(&mut b)?;
        Ok(i64::from_be_bytes(b))
    }

    /// A length-prefixed field; `None` for null (-1).
    fn bytes(&mut self) -> Result<Option<Vec<u8>>, SnapshotError> {
        let at = self.r.pos;
        let n = self.i32()?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 || n as usize > MAX_FIELD_LEN {
            return Err(self.corrupt(at, format!("bad length {n}")));
        }
        let n = n as usize;
        let mut v = Vec::new();
        self.fill_field(&mut v, n)?;
        Ok(Some(v))
    }

    /// Reads `n` bytes into the empty `v`. A length read from the file sizes nothing by
    /// itself: `v` grows as the bytes arrive, 1 MiB at a time, its capacity doubling but
    /// never past `n`, so a corrupt length costs at most what the file holds plus 1 MiB,
    /// and a whole field no more than its length.
    fn fill_field(&mut self, v: &mut Vec<u8>, n: usize) -> Result<(), SnapshotError> {
        const STEP: usize = 1024 * 1024;
        while v.len() < n {
            let from = v.len();
            let to = from + (n - from).min(STEP);
            if to > v.capacity() {
                let want = v.capacity().saturating_mul(2).clamp(to, n);
                v.reserve_exact(want - from);
            }
            v.resize(to, 0);
            self.fill(&mut v[from..])?;
        }
        Ok(())
    }

    fn string(&mut self) -> Result<Option<String>, SnapshotError> {
        let at = self.r.pos;
        match self.bytes()? {
            None => Ok(None),
            Some(b) => String::from_utf8(b)
                .map(Some)
                .map_err(|_| self.corrupt(at, "string is not utf-8".into())),
        }
    }

    fn count(&mut self, what: &str) -> Result<usize, SnapshotError> {
        let at = self.r.pos;
        let n = self.i32()?;
        if n < 0 {
            return Err(self.corrupt(at, format!("bad {what} count {n}")));
        }
        Ok(n as usize)
    }

    fn expect(&mut self, stage: Stage, what: &'static str) -> Result<(), SnapshotError> {
        if self.stage != stage {
            return Err(SnapshotError::Usage {
                file: self.path.clone(),
                what,
            });
        }
        Ok(())
    }

    /// The session table.
    pub fn sessions(&mut self) -> Result<Vec<(i64, i32)>, SnapshotError> {
        let mut v = Vec::new();
        self.sessions_each(|id, to| v.push((id, to)))?;
        Ok(v)
    }

    /// The session table one `(session id, timeout ms)` at a time, keeping none of it
    /// (a count read from the file sizes nothing). Returns how many there were.
    pub fn sessions_each(&mut self, mut f: impl FnMut(i64, i32)) -> Result<u64, SnapshotError> {
        self.expect(Stage::Sessions, "sessions are read first, once")?;
        let n = self.count("session")?;
        for _ in 0..n {
            let id = self.i64()?;
            let to = self.i32()?;
            f(id, to);
        }
        self.stage = Stage::Acls;
        Ok(n as u64)
    }

    /// The ACL cache.
    pub fn acl_cache(&mut self) -> Result<Vec<(i64, Vec<Acl>)>, SnapshotError> {
        let mut v = Vec::new();
        self.acl_cache_each(|idx, acls| v.push((idx, acls)))?;
        Ok(v)
    }

    /// The ACL cache one `(index, list)` at a time, keeping none of it but the list being
    /// read. Returns how many entries there were.
    pub fn acl_cache_each(
        &mut self,
        mut f: impl FnMut(i64, Vec<Acl>),
    ) -> Result<u64, SnapshotError> {
        self.expect(
            Stage::Acls,
            "the ACL cache is read after the sessions, once",
        )?;
        let n = self.count("ACL cache entry")?;
        for _ in 0..n {
            let idx = self.i64()?;
            let at = self.r.pos;
            let m = self.i32()?;
            if m < 0 {
                return Err(self.corrupt(at, format!("missing ACL list for index {idx}")));
            }
            let mut acls = Vec::with_capacity((m as usize).min(64));
            for _ in 0..m {
                let perms = self.i32()?;
                let scheme = self.string()?.unwrap_or_default();
                let id = self.string()?.unwrap_or_default();
                acls.push(Acl {
                    perms,
                    id: Id { scheme, id },
                });
            }
            f(idx, acls);
        }
        self.stage = Stage::Nodes;
        Ok(n as u64)
    }

    /// The next node in stored (pre-) order, `None` after the "/" terminator.
    pub fn next_node(&mut self) -> Result<Option<SnapNode>, SnapshotError> {
        self.expect(Stage::Nodes, "nodes are read after the ACL cache")?;
        if self.nodes_done {
            return Ok(None);
        }
        let at = self.r.pos;
        let path = self
            .string()?
            .ok_or_else(|| self.corrupt(at, "null node path".into()))?;
        if path == "/" {
            self.nodes_done = true;
            return Ok(None);
        }
        self.check_node_path(at, &path)?;
        let data = Data::from(self.bytes()?.map(Bytes::from));
        let acl = self.i64()?;
        let mut st = [0u8; STAT_PERSISTED_LEN];
        let st_at = self.r.pos;
        self.fill(&mut st)?;
        let stat = StatPersisted::from_bytes(&st)
            .map_err(|e| self.corrupt(st_at, format!("bad stat: {e}")))?;
        Ok(Some(SnapNode {
            path,
            data,
            acl,
            stat,
        }))
    }

    /// Reads a length-prefixed field into `v` (replacing its contents, reusing its
    /// buffer); `false` for null (-1).
    fn bytes_into(&mut self, v: &mut Vec<u8>) -> Result<bool, SnapshotError> {
        let at = self.r.pos;
        let n = self.i32()?;
        v.clear();
        if n == -1 {
            return Ok(false);
        }
        if n < 0 || n as usize > MAX_FIELD_LEN {
            return Err(self.corrupt(at, format!("bad length {n}")));
        }
        let n = n as usize;
        let start = self.r.pos;
        self.fill_field(v, n).map_err(|e| match e {
            // Where the field starts and how long it is: a large one (a znode's data)
            // runs far past that offset (found by a review: a file cut inside a 500 KB
            // value was reported at the value's start, as if the file ended there).
            SnapshotError::Corrupt {
                file,
                what,
                compressed,
                ..
            } if what.starts_with("unexpected end of file") => SnapshotError::Corrupt {
                file,
                offset: start,
                what: format!("{what}: the {n}-byte field that starts here runs past it"),
                compressed,
            },
            other => other,
        })?;
        Ok(true)
    }

    /// [`SnapshotReader::next_node`] without allocating per node: the node is read into
    /// `buf`, whose buffers are reused. `false` after the "/" terminator.
    pub fn next_node_into(&mut self, buf: &mut NodeBuf) -> Result<bool, SnapshotError> {
        self.expect(Stage::Nodes, "nodes are read after the ACL cache")?;
        if self.nodes_done {
            return Ok(false);
        }
        let at = self.r.pos;
        let mut path = std::mem::take(&mut buf.path).into_bytes();
        if !self.bytes_into(&mut path)? {
            return Err(self.corrupt(at, "null node path".into()));
        }
        buf.path =
            String::from_utf8(path).map_err(|_| self.corrupt(at, "string is not utf-8".into()))?;
        if buf.path == "/" {
            self.nodes_done = true;
            return Ok(false);
        }
        self.check_node_path(at, &buf.path)?;
        buf.null_data = !self.bytes_into(&mut buf.data)?;
        buf.acl = self.i64()?;
        let mut st = [0u8; STAT_PERSISTED_LEN];
        let st_at = self.r.pos;
        self.fill(&mut st)?;
        buf.stat = StatPersisted::from_bytes(&st)
            .map_err(|e| self.corrupt(st_at, format!("bad stat: {e}")))?;
        Ok(true)
    }

    /// The root comes first with the empty path; every later node's path starts with
    /// `/` (ZooKeeper fails on another one looking for its parent). Stops a reader of a
    /// zero-filled or garbage file at its second node instead of at its end.
    fn check_node_path(&mut self, at: u64, path: &str) -> Result<(), SnapshotError> {
        let first = self.nodes_read == 0;
        self.nodes_read += 1;
        if first || path.starts_with('/') {
            return Ok(());
        }
        Err(self.corrupt(
            at,
            format!("node path {path:?} is not absolute (only the first node, the root, has an empty path)"),
        ))
    }

    fn check_seal(&mut self) -> Result<(), SnapshotError> {
        let expected = self.r.checksum() as i64;
        let at = self.r.pos;
        let val = self.i64()?;
        let _ = self.string()?;
        if val != expected {
            return Err(self.corrupt(
                at,
                format!("CRC corruption: stored adler32 0x{val:x}, computed 0x{expected:x}"),
            ));
        }
        Ok(())
    }

    /// Reads the rest of the stream (the node list must have been read to its end) and
    /// verifies every seal. Accepts the 3.8 form (digest block or none) and 3.9's extra
    /// lastProcessedZxid block.
    pub fn finish(mut self) -> Result<SnapshotTrailer, SnapshotError> {
        while self.next_node()?.is_some() {}
        self.check_seal()?;
        let start = self.r.pos;
        let rest = self
            .r
            .rest(MAX_TRAILER_LEN)
            .map_err(|e| self.read_error(start, e))?
            .ok_or_else(|| self.corrupt(start, "unexpected data after the node list".into()))?;
        let compressed = self.compressed_pos();
        let mut t = Trailer {
            b: &rest,
            i: 0,
            base: start,
            adler: self.r.adler,
            path: &self.path,
            compressed,
        };
        let mut out = SnapshotTrailer::default();
        if rest.is_empty() {
            return Ok(out);
        }
        // 3.9 with digests off: only `long lastProcessedZxid` + seal (21 bytes).
        if rest.len() != 21 {
            let zxid = Zxid(t.i64()?);
            let version = t.i32()?;
            let digest = if version >= 2 {
                t.i64()?
            } else {
                let at = t.pos();
                let s = t.string()?;
                u64::from_str_radix(s.trim(), 16)
                    .map(|v| v as i64)
                    .map_err(|_| t.err(at, format!("bad hex digest {s:?}")))?
            };
            t.seal()?;
            out.digest = Some(ZxidDigest {
                zxid,
                version,
                digest,
            });
        }
        if t.i < rest.len() {
            out.last_processed_zxid = Some(Zxid(t.i64()?));
            t.seal()?;
        }
        if t.i < rest.len() {
            tracing::warn!(file = %self.path.display(), bytes = rest.len() - t.i, "ignoring data after the snapshot trailer");
        }
        Ok(out)
    }
}

/// Parser of the in-memory trailer, continuing the running checksum.
struct Trailer<'a> {
    b: &'a [u8],
    i: usize,
    base: u64,
    adler: simd_adler32::Adler32,
    path: &'a Path,
    compressed: Option<CompressedPos>,
}

impl Trailer<'_> {
    fn pos(&self) -> u64 {
        self.base + self.i as u64
    }
    fn err(&self, offset: u64, what: String) -> SnapshotError {
        SnapshotError::Corrupt {
            file: self.path.to_path_buf(),
            offset,
            what,
            compressed: self.compressed,
        }
    }
    fn take(&mut self, n: usize) -> Result<&[u8], SnapshotError> {
        if self.b.len() - self.i < n {
            return Err(self.err(self.pos(), "unexpected end of file in trailer".into()));
        }
        let s = &self.b[self.i..self.i + n];
        self.adler.write(s);
        self.i += n;
        Ok(s)
    }
    fn i32(&mut self) -> Result<i32, SnapshotError> {
        let s = self.take(4)?;
        Ok(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn i64(&mut self) -> Result<i64, SnapshotError> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(i64::from_be_bytes(a))
    }
    fn string(&mut self) -> Result<String, SnapshotError> {
        let at = self.pos();
        let n = self.i32()?;
        if n < 0 {
            return Ok(String::new());
        }
        let s = self.take(n as usize)?;
        String::from_utf8(s.to_vec()).map_err(|_| self.err(at, "string is not utf-8".into()))
    }
    fn seal(&mut self) -> Result<(), SnapshotError> {
        let expected = self.adler.finish() as i64;
        let at = self.pos();
        let val = self.i64()?;
        let _ = self.string()?;
        if val != expected {
            return Err(self.err(
                at,
                format!("CRC corruption: stored adler32 0x{val:x}, computed 0x{expected:x}"),
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- choosing

/// ZooKeeper's quick check: plain files at least 10 bytes long ending in `ustring "/"`;
/// gz files starting with the gzip magic; snappy files with the snappy stream magic.
pub fn is_valid_snapshot(path: &Path, compression: Compression) -> io::Result<bool> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    match compression {
        Compression::None => {
            if len < MIN_SNAPSHOT_LEN {
                return Ok(false);
            }
            let mut b = [0u8; 5];
            std::os::unix::fs::FileExt::read_exact_at(&f, &mut b, len - 5)?;
            Ok(b == SEAL_TAIL)
        }
        Compression::Gzip => {
            let mut b = [0u8; 2];
            Ok(f.read_exact(&mut b).is_ok() && b == GZIP_MAGIC)
        }
        Compression::Snappy => {
            let mut b = [0u8; 8];
            Ok(f.read_exact(&mut b).is_ok() && b == snappy::MAGIC)
        }
    }
}

/// Up to `n` snapshots passing the quick check, newest first.
pub fn find_valid_snapshots(version_dir: &Path, n: usize) -> io::Result<Vec<SnapshotFile>> {
    let mut out = Vec::new();
    for (ZxidFile { path, zxid }, compression) in
        files::list_snapshots(version_dir)?.into_iter().rev()
    {
        if out.len() >= n {
            break;
        }
        match is_valid_snapshot(&path, compression) {
            Ok(true) => out.push(SnapshotFile {
                path,
                zxid,
                compression,
            }),
            Ok(false) => {
                tracing::info!(file = %path.display(), "invalid snapshot (quick check failed), skipping")
            }
            // A snapshot that cannot be opened or read (permissions, EIO) is not an
            // invalid one: skipping it could start an older or an empty database.
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot read snapshot {}: {e}", path.display()),
                ))
            }
        }
    }
    Ok(out)
}

/// A whole snapshot in memory (tests, tools; recovery streams instead).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotContents {
    pub sessions: Vec<(i64, i32)>,
    pub acls: Vec<(i64, Vec<Acl>)>,
    pub nodes: Vec<SnapNode>,
    pub trailer: SnapshotTrailer,
}

/// Reads and verifies a whole snapshot.
pub fn read_snapshot(path: &Path) -> Result<SnapshotContents, SnapshotError> {
    let mut r = SnapshotReader::open(path)?;
    let sessions = r.sessions()?;
    let acls = r.acl_cache()?;
    let mut nodes = Vec::new();
    while let Some(n) = r.next_node()? {
        nodes.push(n);
    }
    let trailer = r.finish()?;
    Ok(SnapshotContents {
        sessions,
        acls,
        nodes,
        trailer,
    })
}

/// Writes a whole snapshot from memory; returns the final path.
pub fn write_snapshot(
    version_dir: &Path,
    zxid: Zxid,
    compression: Compression,
    c: &SnapshotContents,
) -> Result<PathBuf, SnapshotError> {
    let mut w = SnapshotWriter::create(version_dir, zxid, compression)?;
    w.sessions(&c.sessions)?;
    w.acl_cache(&c.acls)?;
    for n in &c.nodes {
        w.node(&n.path, &n.data, n.acl, &n.stat)?;
    }
    w.finish(c.trailer.digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot larger than [`WRITEBACK_EVERY`] (so the writer starts writeback several
    /// times while writing) reads back equal, plain, gzipped and in snappy-java's stream.
    #[test]
    fn a_snapshot_written_directly_or_with_background_writeback_reads_back_equal() {
        let dir = std::env::temp_dir().join(format!("rzk-snap-writeback-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let mut nodes = vec![SnapNode {
            path: String::new(),
            data: Data::empty(),
            acl: -1,
            stat: StatPersisted::default(),
        }];
        // 2600 nodes of 4 KiB with varied bytes: ~10.2 MiB, and gzip cannot shrink it
        // below the writeback step either.
        let mut x = 0x9e37_79b9_u32;
        for i in 0..2600u32 {
            let data: Vec<u8> = (0..4096)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            nodes.push(SnapNode {
                path: format!("/n{i:05}"),
                data: Data::from(Bytes::from(data)),
                acl: -1,
                stat: StatPersisted::default(),
            });
        }
        let c = SnapshotContents {
            sessions: vec![(0x100, 30000)],
            acls: vec![],
            nodes,
            trailer: SnapshotTrailer::default(),
        };
        let cases = [
            (1, Compression::None),
            (2, Compression::Gzip),
            (3, Compression::Snappy),
        ];
        for buffered in [false, true] {
            BUFFERED_FOR_TEST.set(buffered);
            for (zxid, compression) in cases {
                let zxid = Zxid(zxid + if buffered { 10 } else { 0 });
                let path = write_snapshot(&dir, zxid, compression, &c).unwrap();
                assert!(fs::metadata(&path).unwrap().len() > WRITEBACK_EVERY);
                let back = read_snapshot(&path).unwrap();
                assert_eq!(back.sessions, c.sessions);
                assert_eq!(back.nodes, c.nodes, "{compression:?}, buffered {buffered}");
            }
        }
        BUFFERED_FOR_TEST.set(false);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A `.gz` snapshot of several gzip members (concatenated gzip files) is one stream,
    /// as java.util.zip.GZIPInputStream reads it for ZooKeeper's SnapStream: it loads
    /// (start-up reads snapshots with this reader too). It was refused at the end of the
    /// first member. Cut after the first member, the error's offset is said to count
    /// decompressed bytes.
    #[test]
    fn a_gzip_snapshot_of_several_members_reads_as_one_stream() {
        let dir = tempfile::tempdir().unwrap();
        let c = SnapshotContents {
            sessions: vec![(0x100, 30000), (0x101, 4000)],
            acls: vec![],
            nodes: (0..50)
                .map(|i| SnapNode {
                    path: if i == 0 {
                        String::new()
                    } else {
                        format!("/n{i}")
                    },
                    data: Data::from(Bytes::from(format!("value {i}").into_bytes())),
                    acl: -1,
                    stat: StatPersisted::default(),
                })
                .collect(),
            trailer: SnapshotTrailer {
                digest: Some(ZxidDigest::EMPTY),
                last_processed_zxid: None,
            },
        };
        let plain =
            fs::read(write_snapshot(dir.path(), Zxid(7), Compression::None, &c).unwrap()).unwrap();
        let member = |b: &[u8]| {
            let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(b).unwrap();
            e.finish().unwrap()
        };
        let gz = dir.path().join("snapshot.8.gz");
        let third = plain.len() / 3;
        let mut bytes = member(&plain[..third]);
        bytes.extend(member(&plain[third..2 * third]));
        bytes.extend(member(&plain[2 * third..]));
        fs::write(&gz, &bytes).unwrap();
        assert!(is_valid_snapshot(&gz, Compression::Gzip).unwrap());
        assert_eq!(read_snapshot(&gz).unwrap(), c);
        // Bytes after the last member that are no gzip header are ignored, as
        // GZIPInputStream ignores them (SnapshotFormatter prints such a file).
        bytes.extend_from_slice(b"not gzip");
        fs::write(&gz, &bytes).unwrap();
        assert_eq!(read_snapshot(&gz).unwrap(), c);
        // So are bytes that begin like a gzip header but are none (GZIPInputStream's
        // readTrailer ignores an IOException reading the next header); they were
        // refused ("invalid gzip header", "unexpected end of file").
        let members = bytes.len() - b"not gzip".len();
        let junk: [&[u8]; 5] = [
            &[0x1f],
            &[0x1f, 0x8b],
            &[0x1f, 0x8b, 0x08, 0x00],
            &[0x1f, 0x8b, 0x07, 0, 0, 0, 0, 0, 0, 0xff, 1, 2, 3],
            &[0x1f, 0x8b, 0x08, 0xe0, 0, 0, 0, 0, 0, 0xff, 1, 2, 3],
        ];
        for j in junk {
            bytes.truncate(members);
            bytes.extend_from_slice(j);
            fs::write(&gz, &bytes).unwrap();
            assert_eq!(
                read_snapshot(&gz).map_err(|e| format!("{j:x?}: {e}")),
                Ok(c.clone())
            );
        }
        // A member whose header is valid but whose deflate data is cut short is damage.
        let mut last = member(b"more");
        last.truncate(last.len() - 9);
        bytes.truncate(members);
        bytes.extend_from_slice(&last);
        fs::write(&gz, &bytes).unwrap();
        assert!(read_snapshot(&gz).is_err());
        let cut = dir.path().join("snapshot.9.gz");
        let first = member(&plain[..third]);
        fs::write(&cut, &first).unwrap();
        let e = read_snapshot(&cut).unwrap_err();
        let SnapshotError::Corrupt {
            offset, compressed, ..
        } = &e
        else {
            panic!("{e}");
        };
        assert_eq!(
            *compressed,
            Some(CompressedPos {
                format: "gzip",
                file_bytes_read: first.len() as u64
            })
        );
        assert!(*offset <= third as u64, "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!(
                "snapshot.9.gz is invalid at byte offset {offset} of the decompressed gzip stream (the decompressor had read {} bytes of the file)",
                first.len()
            )),
            "{msg}"
        );
        // The decompressor's own complaints (a damaged header, deflate block or
        // checksum) name both positions too; they were I/O errors without an offset.
        let whole = member(&plain);
        let mut damaged_at = Vec::new();
        for (i, flip) in [
            (3usize, 0xe0u8),
            (whole.len() / 2, 0xff),
            (whole.len() - 6, 0x01),
        ] {
            let mut b = whole.clone();
            b[i] ^= flip;
            fs::write(&cut, &b).unwrap();
            match read_snapshot(&cut) {
                Err(SnapshotError::Corrupt {
                    compressed: Some(CompressedPos { format: "gzip", .. }),
                    ..
                }) => damaged_at.push(i),
                Err(e @ SnapshotError::Io { .. }) => panic!("byte {i}: no offset: {e}"),
                other => panic!("byte {i}: {other:?}"),
            }
        }
        assert_eq!(damaged_at.len(), 3);
    }

    /// A length field read from the file sizes nothing before its bytes are there: a
    /// field claiming 255 MiB in a file of a few hundred bytes fails at the end of the
    /// file, with a buffer of at most 1 MiB.
    #[test]
    fn a_corrupt_field_length_allocates_only_what_the_file_holds() {
        let dir = tempfile::tempdir().unwrap();
        let c = SnapshotContents {
            nodes: vec![SnapNode {
                path: String::new(),
                data: Data::from(Bytes::from_static(b"abc")),
                acl: -1,
                stat: StatPersisted::default(),
            }],
            ..Default::default()
        };
        let path = write_snapshot(dir.path(), Zxid(1), Compression::None, &c).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        // header 16, sessions 4, ACLs 4, root path length 4: the data length at 28.
        bytes[28..32].copy_from_slice(&(255i32 << 20).to_be_bytes());
        fs::write(&path, &bytes).unwrap();
        let mut r = SnapshotReader::open(&path).unwrap();
        r.sessions().unwrap();
        r.acl_cache().unwrap();
        let mut buf = NodeBuf::default();
        let e = r.next_node_into(&mut buf).unwrap_err().to_string();
        assert!(e.contains("unexpected end of file"), "{e}");
        assert!(
            e.contains("offset 32") && e.contains(&format!("the {}-byte field", 255 << 20)),
            "the field's start and length: {e}"
        );
        assert!(buf.data.capacity() <= 1 << 20, "{}", buf.data.capacity());
    }

    /// A snapshot header followed by zeros (or garbage) stops at its second node, whose
    /// path is empty again, instead of reading every zero "node" to the end of the file
    /// (found by a review: 200 MB of zeros took 537 MB and 1.35 s to refuse).
    #[test]
    fn a_second_node_without_an_absolute_path_is_corrupt() {
        let dir = std::env::temp_dir().join(format!("rzk-snap-zeros-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let root = |path: &str| SnapNode {
            path: path.to_owned(),
            data: Data::empty(),
            acl: -1,
            stat: StatPersisted::default(),
        };
        let c = SnapshotContents {
            sessions: vec![],
            acls: vec![],
            nodes: vec![root(""), root("/a")],
            trailer: SnapshotTrailer::default(),
        };
        let good = write_snapshot(&dir, Zxid(1), Compression::None, &c).unwrap();
        assert_eq!(read_snapshot(&good).unwrap().nodes, c.nodes);
        // The header and empty session and ACL lists, then zeros.
        let mut bytes = fs::read(&good).unwrap()[..FILE_HEADER_LEN + 8].to_vec();
        bytes.resize(bytes.len() + (1 << 20), 0);
        let zeros = dir.join("snapshot.2");
        fs::write(&zeros, &bytes).unwrap();
        let e = read_snapshot(&zeros).unwrap_err().to_string();
        assert!(
            e.contains("is not absolute") && e.contains("offset 100"),
            "{e}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A snapshot whose last flush fails (a full disk) leaves no `.tmp` behind: the
    /// failure comes after the writer handed its file over, where `Drop` no longer sees
    /// an unfinished snapshot (found by a review: a full snapshot disk kept each failed
    /// snapshot's `.tmp` until the next start).
    #[test]
    fn a_snapshot_failing_at_its_last_flush_leaves_no_tmp_file() {
        let dir = std::env::temp_dir().join(format!("rzk-snap-full-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // The `.tmp` opens /dev/full, where every write fails with ENOSPC; the few bytes
        // of this snapshot reach it only when the writer flushes at `finish`.
        let tmp = dir.join("snapshot.5.tmp");
        std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();
        let c = SnapshotContents {
            sessions: vec![],
            acls: vec![],
            nodes: vec![SnapNode {
                path: String::new(),
                data: Data::empty(),
                acl: -1,
                stat: StatPersisted::default(),
            }],
            trailer: SnapshotTrailer::default(),
        };
        BUFFERED_FOR_TEST.set(true);
        let res = write_snapshot(&dir, Zxid(5), Compression::None, &c);
        BUFFERED_FOR_TEST.set(false);
        match res {
            Err(SnapshotError::Io { file, source }) => {
                assert_eq!(file, tmp);
                assert_eq!(source.raw_os_error(), Some(libc::ENOSPC));
            }
            other => panic!("{other:?}"),
        }
        assert!(fs::symlink_metadata(&tmp).is_err(), ".tmp left behind");
        assert!(!dir.join("snapshot.5").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
