//! Start-up recovery from dataDir / dataLogDir, ZooKeeper's way: the newest snapshot
//! that loads completely (falling back to older ones), then every logged txn after it
//! in zxid order; torn log tails are truncated with a warning, any other corruption
//! stops start-up with an error naming file and byte offset.
//!
//! Owns the choice of files and the order of events; the caller owns the data tree and
//! receives everything through a [`RecoverySink`]. This module never writes snapshots
//! and never deletes anything but torn log bytes and the consumed `initialize` marker.

use super::files::{self, INITIALIZE_MARKER};
use super::log_reader::{LogIterator, LogReadError, TornTail};
use super::log_repair::{self, RepairError};
use super::progress::{mib, percent, Progress};
use super::snapshot::{
    self, NodeBuf, SnapNode, SnapshotError, SnapshotFile, SnapshotReader, SnapshotTrailer,
    MAX_SNAPSHOT_CANDIDATES,
};
use crate::tree::{NodePrep, PreparedNode};
use rzk_proto::records::Acl;
use rzk_proto::txn::TxnRecord;
use rzk_proto::Zxid;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Start-up switches (system properties in ZooKeeper).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryOptions {
    /// `zookeeper.snapshot.trust.empty`: logs without any snapshot are replayed onto an
    /// empty tree instead of failing.
    pub trust_empty_snapshot: bool,
    /// `zookeeper.db.autocreate`: a data directory without snapshots and logs is a
    /// legitimate empty database (else it is untrusted: zxid -1, until a leader syncs
    /// it), unless an `initialize` file says so once.
    pub db_autocreate: bool,
    /// `zookeeper.datadir.autocreate`: a missing `version-2` directory (of dataDir or
    /// dataLogDir) is created; when false, start-up is refused
    /// ([`RecoveryError::MissingDataDir`], ZooKeeper's `DatadirException`).
    pub datadir_autocreate: bool,
    /// `jute.maxbuffer`: log records up to [`super::log_reader::max_record_len`] of it
    /// are read; a longer length field stops start-up.
    pub jute_max_buffer: usize,
}

impl Default for RecoveryOptions {
    fn default() -> Self {
        RecoveryOptions {
            trust_empty_snapshot: false,
            db_autocreate: true,
            datadir_autocreate: true,
            jute_max_buffer: crate::config::DEFAULT_JUTE_MAX_BUFFER,
        }
    }
}

/// Receives the recovered state. A snapshot that fails half-way is followed by
/// [`RecoverySink::reset`] and the next older one. Errors from the snapshot methods make
/// that snapshot invalid (e.g. a node whose parent is missing); errors from
/// [`RecoverySink::txn`] stop recovery.
pub trait RecoverySink {
    /// Forget everything received so far (back to an empty database).
    fn reset(&mut self);
    fn sessions(&mut self, sessions: Vec<(i64, i32)>) -> Result<(), String>;
    fn acl_cache(&mut self, entries: Vec<(i64, Vec<Acl>)>) -> Result<(), String>;
    fn node(&mut self, node: SnapNode) -> Result<(), String>;
    /// A [`NodePrep`] for the snapshot being read (asked after the ACL cache): when
    /// given, the reading thread prepares every node with it (the node's allocation,
    /// digest and hash, off the building thread) and hands it to
    /// [`RecoverySink::prepared_node`] instead of [`RecoverySink::node`].
    fn preparer(&mut self) -> Option<NodePrep> {
        None
    }
    /// One node made by the [`RecoverySink::preparer`]'s `prepare`, in snapshot order.
    fn prepared_node(&mut self, _node: PreparedNode) -> Result<(), String> {
        Err("this sink takes no prepared nodes".into())
    }
    /// The snapshot was read completely and its seals match.
    fn snapshot_loaded(&mut self, zxid: Zxid, trailer: &SnapshotTrailer) -> Result<(), String>;
    /// One logged txn after the snapshot, in log order.
    fn txn(&mut self, rec: &TxnRecord) -> Result<(), String>;
}

/// What the database is after recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartState {
    /// A snapshot (and maybe logs) was loaded, or logs were trusted without one.
    Loaded,
    /// Nothing on disk and empty is legitimate: zxid 0; the caller must write
    /// `snapshot.0` now.
    NewEmpty,
    /// Nothing on disk but empty is not trusted (autocreate off, no `initialize`
    /// marker): zxid -1, the server must not trust its empty database.
    Untrusted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    pub state: StartState,
    /// The snapshot loaded, if any.
    pub snapshot: Option<SnapshotFile>,
    /// Newer snapshots that failed to load, with the reason.
    pub skipped_snapshots: Vec<(PathBuf, String)>,
    pub txns_replayed: u64,
    /// Highest zxid of the database (snapshot name or last replayed txn); -1 / 0 for
    /// [`StartState::Untrusted`] / [`StartState::NewEmpty`].
    pub last_zxid: Zxid,
    /// Torn log tails that were truncated.
    pub torn_tails: Vec<TornTail>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("not able to find a valid snapshot in {} (tried: {})", dir.display(), tried.join("; "))]
    NoValidSnapshot { dir: PathBuf, tried: Vec<String> },
    #[error("no snapshot found in {}, but there are transaction logs in {}: something is broken (set snapshot.trust.empty=true only when upgrading from a version that had no snapshots)", snap_dir.display(), log_dir.display())]
    LogsWithoutSnapshot { snap_dir: PathBuf, log_dir: PathBuf },
    #[error("missing data directory {}, automatic data directory creation is disabled (zookeeper.datadir.autocreate is false): create it by hand", dir.display())]
    MissingDataDir { dir: PathBuf },
    /// A log in the snapshot directory or a snapshot in the log directory while
    /// `dataLogDir` differs from `dataDir` (ZooKeeper refuses the same).
    #[error("{kind} file {} is in the {dir_key} directory, but {other_key} is {}: check that dataDir and dataLogDir are right, and move the {kind} files to where they belong before starting (reading only one of the directories would lose the txns in the other)", found.display(), other.display())]
    MisplacedFiles {
        found: PathBuf,
        kind: &'static str,
        dir_key: &'static str,
        other_key: &'static str,
        other: PathBuf,
    },
    #[error(transparent)]
    Log(#[from] LogReadError),
    #[error(transparent)]
    Repair(#[from] RepairError),
    #[error("applying txn {zxid} from {} at byte offset {offset} failed: {msg}", file.display())]
    Apply {
        zxid: Zxid,
        file: PathBuf,
        offset: u64,
        msg: String,
    },
    /// Txns of one epoch missing between two that were read (a log file removed, or cut
    /// on a record boundary): serving would lose them silently. ZooKeeper 3.8 loads such
    /// a directory and serves without them.
    #[error("transaction log gap: txn {zxid} in {} at byte offset {offset} follows {previous}, so the txns between are missing (a log file removed or cut?): restore them, or move this server's data directory away so that it starts empty and takes the data from the ensemble", file.display())]
    Gap {
        zxid: Zxid,
        previous: Zxid,
        file: PathBuf,
        offset: u64,
    },
    #[error("snapshot {} is invalid and the transaction logs end at {last_zxid}, before its zxid {snapshot_zxid}: recovering from the older snapshot would lose data", skipped.display())]
    LogsDoNotCoverSkipped {
        skipped: PathBuf,
        snapshot_zxid: Zxid,
        last_zxid: Zxid,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> RecoveryError + '_ {
    move |source| RecoveryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Nodes handed from the reading thread to the building one at a time.
const NODE_BATCH: usize = 2048;
/// Batches the reading thread may run ahead of the building one.
const BATCHES_AHEAD: usize = 16;

/// Nodes as the reading thread hands them over.
enum Nodes {
    /// As read ([`RecoverySink::node`]).
    Read(Vec<SnapNode>),
    /// Prepared with the sink's [`NodePrep`] ([`RecoverySink::prepared_node`]).
    Prepared(Vec<PreparedNode>),
}

impl Nodes {
    fn len(&self) -> usize {
        match self {
            Nodes::Read(v) => v.len(),
            Nodes::Prepared(v) => v.len(),
        }
    }
}

/// What the reading thread hands over: a batch of nodes, or why reading stopped.
type NodeBatch = Result<Nodes, String>;

/// Reads up to `NODE_BATCH` nodes; `true` in the second place at the node list's end.
fn read_batch(
    r: &mut SnapshotReader,
    prep: Option<&NodePrep>,
    buf: &mut NodeBuf,
) -> Result<(Nodes, bool), String> {
    let Some(prep) = prep else {
        let mut batch = Vec::with_capacity(NODE_BATCH);
        while batch.len() < NODE_BATCH {
            match r.next_node().map_err(|e| e.to_string())? {
                Some(n) => batch.push(n),
                None => return Ok((Nodes::Read(batch), true)),
            }
        }
        return Ok((Nodes::Read(batch), false));
    };
    let mut batch = Vec::with_capacity(NODE_BATCH);
    while batch.len() < NODE_BATCH {
        if !r.next_node_into(buf).map_err(|e| e.to_string())? {
            return Ok((Nodes::Prepared(batch), true));
        }
        let n = prep
            .prepare(buf.path(), buf.data(), buf.acl, &buf.stat)
            .map_err(|e| format!("invalid data tree: {e}"))?;
        batch.push(n);
    }
    Ok((Nodes::Prepared(batch), false))
}

/// Reads the node list on the current thread (the reading thread of [`load_snapshot`]):
/// parsing and the running Adler-32 here, batches to `tx`, progress every few seconds.
/// Returns the reader positioned after the node list, or `None` when the other side
/// hung up (it failed) or reading failed (the error was sent).
fn read_nodes(
    mut r: SnapshotReader,
    name: &str,
    plain_size: Option<u64>,
    prep: Option<NodePrep>,
    tx: std::sync::mpsc::SyncSender<NodeBatch>,
) -> Option<SnapshotReader> {
    let mut progress = Progress::start(Instant::now());
    let mut buf = NodeBuf::default();
    loop {
        let (batch, end) = match read_batch(&mut r, prep.as_ref(), &mut buf) {
            Ok(b) => b,
            Err(e) => {
                let _ = tx.send(Err(e));
                return None;
            }
        };
        let mut report = false;
        for _ in 0..batch.len() {
            report |= progress.item(Instant::now);
        }
        if report {
            let done = r.position();
            match (percent(done, plain_size), plain_size) {
                (Some(pct), Some(total)) => tracing::info!(
                    "loading snapshot {name}: {pct}% ({} znodes read, {} of {})",
                    progress.items(),
                    mib(done),
                    mib(total)
                ),
                _ => tracing::info!(
                    "loading snapshot {name}: {} znodes read, {} uncompressed",
                    progress.items(),
                    mib(done)
                ),
            }
        }
        if batch.len() > 0 && tx.send(Ok(batch)).is_err() {
            return None;
        }
        if end {
            return Some(r);
        }
    }
}

/// Loads one snapshot into the sink; any error means "invalid, try an older one".
/// Two threads: a reading one (`rzk-snapshot-read`: file, decompression, parsing, the
/// running Adler-32) hands the nodes in batches to this one, which gives them to the
/// sink (builds the tree) meanwhile. Says how far it got every few seconds (percentage
/// of the file when it is not compressed) and what it loaded, in how long, at the end.
fn load_snapshot(f: &SnapshotFile, sink: &mut dyn RecoverySink) -> Result<(), String> {
    let err = |e: SnapshotError| e.to_string();
    let name = files::file_name(&f.path);
    let size = fs::metadata(&f.path).map(|m| m.len()).ok();
    // The reader's position counts uncompressed bytes: a percentage only without
    // compression.
    let plain_size = size.filter(|_| !name.ends_with(".gz") && !name.ends_with(".snappy"));
    let started = Instant::now();
    let mut r = SnapshotReader::open(&f.path).map_err(err)?;
    let sessions = r.sessions().map_err(err)?;
    let session_count = sessions.len();
    sink.sessions(sessions)?;
    sink.acl_cache(r.acl_cache().map_err(err)?)?;
    let prep = sink.preparer();
    let (tx, rx) = std::sync::mpsc::sync_channel::<NodeBatch>(BATCHES_AHEAD);
    let reader_name = name.clone();
    let reader = std::thread::Builder::new()
        .name("rzk-snapshot-read".into())
        .spawn(move || read_nodes(r, &reader_name, plain_size, prep, tx))
        .map_err(|e| format!("cannot start the snapshot reading thread: {e}"))?;
    let mut saw_root = false;
    let mut nodes = 0u64;
    let mut built = Ok(());
    'batches: for batch in rx.iter() {
        match batch {
            Ok(Nodes::Read(batch)) => {
                for n in batch {
                    saw_root |= n.path.is_empty();
                    nodes += 1;
                    if let Err(e) = sink.node(n) {
                        built = Err(e);
                        break 'batches;
                    }
                }
            }
            Ok(Nodes::Prepared(batch)) => {
                for n in batch {
                    saw_root |= n.is_root();
                    nodes += 1;
                    if let Err(e) = sink.prepared_node(n) {
                        built = Err(e);
                        break 'batches;
                    }
                }
            }
            Err(e) => {
                built = Err(e);
                break;
            }
        }
    }
    // Hanging up stops the reading thread at its next batch if building failed.
    drop(rx);
    let r = reader
        .join()
        .map_err(|_| "the snapshot reading thread panicked".to_string())?;
    built?;
    let r = r.ok_or_else(|| format!("reading snapshot {name} stopped"))?;
    if !saw_root {
        return Err(format!("snapshot {} has no root node", f.path.display()));
    }
    let trailer = r.finish().map_err(err)?;
    let read_ms = started.elapsed().as_millis();
    sink.snapshot_loaded(f.zxid, &trailer)?;
    tracing::info!(
        "snapshot {name} loaded: {nodes} znodes, {session_count} sessions, {} in {} ms ({read_ms} ms to read and build, {} ms to finish the tree)",
        mib(size.unwrap_or(0)),
        started.elapsed().as_millis(),
        started.elapsed().as_millis() - read_ms
    );
    Ok(())
}

/// Recovers the database (see the module docs). `data_dir` holds `version-2/snapshot.*`,
/// `data_log_dir` holds `version-2/log.*` (often the same directory).
/// With `dataLogDir` set apart from `dataDir`, the snapshot directory must hold no log
/// files and the log directory no snapshots (ZooKeeper's `FileTxnSnapLog` checks, its
/// `SnapDirContentCheckException` / `LogDirContentCheckException`): logs left in
/// `dataDir` after `dataLogDir` was added would otherwise be ignored and every txn after
/// the newest snapshot lost without a word. The same directory reached by two spellings
/// (a symlink) is one directory and passes.
/// The same check for the parents of the `version-2` directories (`dataDir`,
/// `dataLogDir`), for tools that act on them (`rzk purge`, as ZooKeeper's
/// `PurgeTxnLog` refuses such directories).
pub fn check_data_dirs(data_dir: &Path, data_log_dir: &Path) -> Result<(), RecoveryError> {
    check_dirs_hold_their_own_files(
        &files::version_dir(data_dir),
        &files::version_dir(data_log_dir),
    )
}

fn check_dirs_hold_their_own_files(snap_dir: &Path, log_dir: &Path) -> Result<(), RecoveryError> {
    if snap_dir == log_dir {
        return Ok(());
    }
    if let (Ok(a), Ok(b)) = (snap_dir.canonicalize(), log_dir.canonicalize()) {
        if a == b {
            return Ok(());
        }
    }
    if let Some(f) = files::list_logs(snap_dir)
        .map_err(io_at(snap_dir))?
        .into_iter()
        .next()
    {
        return Err(RecoveryError::MisplacedFiles {
            found: f.path,
            kind: "transaction log",
            dir_key: "dataDir",
            other_key: "dataLogDir",
            other: log_dir.to_path_buf(),
        });
    }
    if let Some((f, _)) = files::list_snapshots(log_dir)
        .map_err(io_at(log_dir))?
        .into_iter()
        .next()
    {
        return Err(RecoveryError::MisplacedFiles {
            found: f.path,
            kind: "snapshot",
            dir_key: "dataLogDir",
            other_key: "dataDir",
            other: snap_dir.to_path_buf(),
        });
    }
    Ok(())
}

pub fn recover(
    data_dir: &Path,
    data_log_dir: &Path,
    opts: &RecoveryOptions,
    sink: &mut dyn RecoverySink,
) -> Result<RecoveryReport, RecoveryError> {
    let snap_dir = files::version_dir(data_dir);
    let log_dir = files::version_dir(data_log_dir);
    if !opts.datadir_autocreate {
        for dir in [&log_dir, &snap_dir] {
            if !dir.is_dir() {
                return Err(RecoveryError::MissingDataDir { dir: dir.clone() });
            }
        }
    }
    check_dirs_hold_their_own_files(&snap_dir, &log_dir)?;
    let candidates = snapshot::find_valid_snapshots(&snap_dir, MAX_SNAPSHOT_CANDIDATES)
        .map_err(io_at(&snap_dir))?;
    let mut report = RecoveryReport {
        state: StartState::Loaded,
        snapshot: None,
        skipped_snapshots: Vec::new(),
        txns_replayed: 0,
        last_zxid: Zxid::ZERO,
        torn_tails: Vec::new(),
    };
    for c in &candidates {
        tracing::info!(file = %c.path.display(), "reading snapshot");
        sink.reset();
        match load_snapshot(c, sink) {
            Ok(()) => {
                report.snapshot = Some(c.clone());
                break;
            }
            Err(e) => {
                tracing::warn!(file = %c.path.display(), error = %e, "problem reading snapshot, trying an older one");
                report.skipped_snapshots.push((c.path.clone(), e));
            }
        }
    }
    let snap_zxid = match &report.snapshot {
        Some(s) => s.zxid,
        None if !candidates.is_empty() => {
            sink.reset();
            return Err(RecoveryError::NoValidSnapshot {
                dir: snap_dir,
                tried: report
                    .skipped_snapshots
                    .iter()
                    .map(|(p, e)| format!("{}: {e}", p.display()))
                    .collect(),
            });
        }
        None => {
            sink.reset();
            let logs = files::list_logs(&log_dir).map_err(io_at(&log_dir))?;
            if !logs.is_empty() {
                if !opts.trust_empty_snapshot {
                    return Err(RecoveryError::LogsWithoutSnapshot { snap_dir, log_dir });
                }
                tracing::warn!("no snapshot found, replaying logs onto an empty tree (snapshot.trust.empty); this should only be allowed when upgrading");
                Zxid::ZERO
            } else {
                let marker = data_log_dir.join(INITIALIZE_MARKER);
                let had_marker = marker.exists();
                if had_marker {
                    fs::remove_file(&marker).map_err(io_at(&marker))?;
                }
                if opts.db_autocreate || had_marker {
                    report.state = StartState::NewEmpty;
                    report.last_zxid = Zxid::ZERO;
                } else {
                    tracing::warn!("unexpected empty data tree, setting zxid to -1");
                    report.state = StartState::Untrusted;
                    report.last_zxid = Zxid(-1);
                }
                return Ok(report);
            }
        }
    };
    report.last_zxid = snap_zxid;
    replay(&log_dir, snap_zxid, opts.jute_max_buffer, sink, &mut report)?;
    // A newer snapshot we could not use must be covered by the logs we replayed.
    let newest_on_disk = files::list_snapshots(&snap_dir)
        .map_err(io_at(&snap_dir))?
        .into_iter()
        .map(|(f, _)| f)
        .filter(|f| f.zxid > snap_zxid)
        .max_by_key(|f| f.zxid);
    if let Some(f) = newest_on_disk {
        if report.last_zxid < f.zxid {
            return Err(RecoveryError::LogsDoNotCoverSkipped {
                skipped: f.path,
                snapshot_zxid: f.zxid,
                last_zxid: report.last_zxid,
            });
        }
    }
    Ok(report)
}

fn replay(
    log_dir: &Path,
    snap_zxid: Zxid,
    jute_max_buffer: usize,
    sink: &mut dyn RecoverySink,
    report: &mut RecoveryReport,
) -> Result<(), RecoveryError> {
    let mut it = LogIterator::open(log_dir, snap_zxid.next())?;
    it.set_max_record_len(super::log_reader::max_record_len(jute_max_buffer));
    let mut prev = snap_zxid;
    let mut first = None;
    if !it.files().is_empty() {
        let bytes: u64 = it
            .files()
            .iter()
            .filter_map(|f| fs::metadata(&f.path).ok())
            .map(|m| m.len())
            .sum();
        let names: Vec<String> = it
            .files()
            .iter()
            .map(|f| files::file_name(&f.path))
            .collect();
        tracing::info!(
            "reading transaction logs after zxid {snap_zxid}: {} ({} on disk)",
            names.join(", "),
            mib(bytes)
        );
    }
    let mut progress = Progress::start(Instant::now());
    while let Some(entry) = it.next() {
        let entry = entry?;
        let zxid = Zxid(entry.record.header.zxid);
        if zxid <= prev && prev != Zxid::ZERO {
            // Not written by ZooKeeper or rzk (each appends rising zxids); ZooKeeper
            // logs it and goes on too. Named by file and offset: a gap reported at a
            // later record of the same file may start here.
            tracing::error!(
                zxid = %zxid,
                highest = %prev,
                file = %it.current_file().map(Path::display).map(|d| d.to_string()).unwrap_or_default(),
                offset = entry.offset,
                "transaction log goes backwards: this record's zxid is not above the previous one's"
            );
        } else if zxid != prev.next() && zxid.counter() != 1 && prev > Zxid::ZERO {
            // Every member logs every committed txn of an epoch, from its counter 1: a
            // hole is lost data. (A new epoch's first txn can follow any txn of an older
            // one: its last txns may have been truncated as never committed.)
            return Err(RecoveryError::Gap {
                zxid,
                previous: prev,
                file: it.current_file().map(Path::to_path_buf).unwrap_or_default(),
                offset: entry.offset,
            });
        }
        sink.txn(&entry.record)
            .map_err(|msg| RecoveryError::Apply {
                zxid,
                file: it.current_file().map(Path::to_path_buf).unwrap_or_default(),
                offset: entry.offset,
                msg,
            })?;
        prev = prev.max(zxid);
        first.get_or_insert(zxid);
        report.txns_replayed += 1;
        if progress.item(Instant::now) {
            tracing::info!(
                "reading transaction logs: {} transactions so far, at zxid {zxid} in {}",
                progress.items(),
                it.current_file().map(files::file_name).unwrap_or_default()
            );
        }
    }
    report.last_zxid = report.last_zxid.max(prev);
    let ms = progress.elapsed(Instant::now()).as_millis();
    match first {
        Some(first) => tracing::info!(
            "read {} transactions logged after the snapshot (zxid {first} to {prev}) from {} log files in {ms} ms",
            progress.items(),
            it.files().len()
        ),
        None => tracing::info!("no transactions logged after the snapshot (zxid {snap_zxid})"),
    }
    for t in it.torn_tails() {
        log_repair::truncate_torn_tail(t)?;
        report.torn_tails.push(t.clone());
    }
    Ok(())
}
