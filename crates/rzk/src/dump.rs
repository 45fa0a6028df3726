//! `rzk log dump|chop|recover` and `rzk snapshot dump`: ZooKeeper's TxnLogToolkit
//! (dump, `-c` chop, `-r` recover) and SnapshotFormatter (`-d` data, `-json`), as text or
//! JSON (`json` module).
//!
//! Never modifies the files it reads: chop and recover write a new file next to the
//! original (`<file>.chopped<zxid>`, `<file>.fixed`, as TxnLogToolkit names them) using
//! the storage crate's `log_repair`. Damaged input is an error naming file and offset.

mod json;

use clap::Subcommand;
use rzk_proto::opcode::OpCode;
use rzk_proto::records::Acl;
use rzk_proto::txn::{Txn, TxnRecord};
use rzk_proto::Data;
use rzk_server::storage::files::SNAP_MAGIC;
use rzk_server::storage::log_reader::{FileEnd, LogFileReader};
use rzk_server::storage::log_repair::{self, RepairError};
use rzk_server::storage::snapshot::{NodeBuf, SnapshotReader, SnapshotTrailer};
use rzk_server::tree::digest::{node_digest, DIGEST_VERSION};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Data bytes shown per node / txn before eliding.
const DATA_PREVIEW: usize = 64;

#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// The server's `jute.maxbuffer` in bytes: records up to twice it are read (its
    /// `zookeeper.jute.maxbuffer.extrasize` default), a longer length field is damage.
    #[arg(long, global = true, default_value_t = rzk_server::config::DEFAULT_JUTE_MAX_BUFFER)]
    jute_maxbuffer: usize,
    #[command(subcommand)]
    cmd: LogCmd,
}

#[derive(Debug, Subcommand)]
enum LogCmd {
    /// Print every record of a transaction log file (log.<zxid>).
    Dump {
        /// The transaction log file (`dataLogDir/version-2/log.<zxid>`).
        file: PathBuf,
        /// One JSON object per line: the header, each record, then how the file ends.
        #[arg(long)]
        json: bool,
    },
    /// Write the file's records up to and including ZXID to FILE.chopped<zxid> (or
    /// --output); the original is not changed (TxnLogToolkit -c -z ZXID).
    Chop {
        /// The transaction log file (`dataLogDir/version-2/log.<zxid>`).
        file: PathBuf,
        /// Last zxid to keep (0x-prefixed hex or decimal); a record with it must exist.
        #[arg(short, long, value_parser = parse_zxid)]
        zxid: i64,
        /// Where to write (must not exist).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Write a copy with recomputed checksums for records whose CRC is wrong to
    /// FILE.fixed (or --output); the original is not changed (TxnLogToolkit -r -y).
    Recover {
        /// The transaction log file (`dataLogDir/version-2/log.<zxid>`).
        file: PathBuf,
        /// Where to write (must not exist).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Print every record, not just the fixed ones.
        #[arg(short, long)]
        verbose: bool,
    },
}

/// A zxid as operators write it: `0x1f` or `31`.
fn parse_zxid(s: &str) -> Result<i64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => i64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("'{s}' is not a zxid: write it in hex as 0x1f or in decimal as 31"))
}

#[derive(Debug, clap::Args)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    cmd: SnapshotCmd,
}

#[derive(Debug, Subcommand)]
enum SnapshotCmd {
    /// Print the sessions and nodes of a snapshot file (snapshot.<zxid>[.gz|.snappy]).
    Dump {
        /// The snapshot file (`dataDir/version-2/snapshot.<zxid>`, or `.gz`).
        file: PathBuf,
        /// Also print each node's data, base64 (SnapshotFormatter -d).
        #[arg(short = 'd', long = "data")]
        data: bool,
        /// The node tree as SnapshotFormatter -json prints it.
        #[arg(long, conflicts_with_all = ["data", "digest"])]
        json: bool,
        /// Recompute the tree digest from the nodes and compare it with the stored one.
        #[arg(long)]
        digest: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error(transparent)]
    Log(#[from] rzk_server::storage::log_reader::LogReadError),
    #[error(transparent)]
    Snapshot(#[from] rzk_server::storage::snapshot::SnapshotError),
    #[error(transparent)]
    Repair(#[from] RepairError),
    /// A snapshot that is a pipe or device could not be copied to a temporary file in
    /// $TMPDIR for the dump's several passes (the temporary file failed; a read error
    /// of the input is [`DumpError::Snapshot`]).
    #[error("snapshot {}: copying it to a temporary file in $TMPDIR: {source}", file.display())]
    SnapshotSpool {
        file: std::path::PathBuf,
        source: io::Error,
    },
    /// The snapshot's nodes do not make a tree the server would load (it refuses the
    /// snapshot with the same reason): no root, a node before its parent or without
    /// one, a node twice, an ACL index not in the cache, a bad path.
    #[error("snapshot {}: invalid data tree: {error}", file.display())]
    Tree {
        file: std::path::PathBuf,
        error: rzk_server::tree::BuildError,
    },
    #[error("writing output: {0}")]
    Out(#[from] io::Error),
    #[error("writing JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Records that decode but whose stored checksum is wrong: all were listed (marked
    /// `CRC ERROR`), and the dump fails with the first one's offset.
    #[error("transaction log {} has {count} record(s) with a bad CRC, the first at byte offset {first}; `rzk log recover` writes a copy with the checksums recomputed", file.display())]
    BadChecksums {
        file: std::path::PathBuf,
        count: u64,
        first: u64,
    },
    /// The last record is partial (a crash mid-write; start-up cuts it): listed, then the
    /// dump fails, as TxnLogToolkit's ("Last transaction was partial", status 1).
    #[error("transaction log {} ends in a partial record at byte offset {offset}, after {txns} txns: {fault} (a crash mid-write; the server's start-up cuts it)", file.display())]
    TornTail {
        file: std::path::PathBuf,
        offset: u64,
        txns: u64,
        fault: String,
    },
}

/// [`DumpError::TornTail`] when the log `path` ended torn after `txns` records.
fn torn_tail(path: &Path, end: Option<&FileEnd>, txns: u64) -> Result<(), DumpError> {
    match end {
        Some(FileEnd::Torn(t)) => Err(DumpError::TornTail {
            file: path.to_path_buf(),
            offset: t.offset,
            txns,
            fault: t.fault.to_string(),
        }),
        _ => Ok(()),
    }
}

/// What `rzk snapshot dump` prints besides the default listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotDumpOptions {
    /// Each node's data in base64 (SnapshotFormatter -d).
    pub data: bool,
    /// SnapshotFormatter -json's tree instead of the listing.
    pub json: bool,
    /// Recompute and compare the tree digest.
    pub digest: bool,
}

pub fn run_log(args: LogArgs) -> ExitCode {
    rzk_server::storage::log_reader::set_default_max_record_len(
        rzk_server::storage::log_reader::max_record_len(args.jute_maxbuffer),
    );
    let out = &mut io::stdout().lock();
    match args.cmd {
        LogCmd::Dump { file, json: false } => finish(run_log_dump(&file, out)),
        LogCmd::Dump { file, json: true } => finish(run_log_dump_json(&file, out)),
        LogCmd::Chop { file, zxid, output } => finish(run_log_chop(&file, zxid, output, out)),
        LogCmd::Recover {
            file,
            output,
            verbose,
        } => finish(run_log_recover(&file, output, verbose, out)),
    }
}

pub fn run_snapshot(args: SnapshotArgs) -> ExitCode {
    let SnapshotCmd::Dump {
        file,
        data,
        json,
        digest,
    } = args.cmd;
    let opts = SnapshotDumpOptions { data, json, digest };
    finish(run_snapshot_dump_with(
        &file,
        opts,
        &mut io::stdout().lock(),
    ))
}

fn with_suffix(file: &Path, suffix: &str) -> PathBuf {
    let mut s = file.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// `rzk log chop`: TxnLogToolkit's chop, printing its summary line.
pub fn run_log_chop(
    file: &Path,
    zxid: i64,
    output: Option<PathBuf>,
    out: &mut dyn Write,
) -> Result<(), DumpError> {
    let dst = output.unwrap_or_else(|| with_suffix(file, &format!(".chopped{zxid}")));
    let kept = log_repair::chop_file(file, rzk_proto::Zxid(zxid), &dst)?;
    writeln!(
        out,
        "Chopping at 0x{zxid:x}: new log {} has {kept} records",
        dst.display()
    )?;
    Ok(())
}

/// `rzk log recover`: TxnLogToolkit's recover (non-interactive), listing fixed records.
pub fn run_log_recover(
    file: &Path,
    output: Option<PathBuf>,
    verbose: bool,
    out: &mut dyn Write,
) -> Result<(), DumpError> {
    let dst = output.unwrap_or_else(|| with_suffix(file, ".fixed"));
    let r = log_repair::recover_checksums(file, &dst)?;
    if verbose {
        run_log_dump(&dst, out)?;
    }
    for f in &r.fixed {
        writeln!(
            out,
            "CRC FIXED at byte offset {} zxid 0x{:x}: stored 0x{:x}, now 0x{:x}",
            f.offset, f.zxid, f.stored, f.computed
        )?;
    }
    if let Some(t) = &r.torn {
        writeln!(
            out,
            "Torn tail at byte offset {}: {} (not copied)",
            t.offset, t.fault
        )?;
    }
    writeln!(
        out,
        "Recovery file {} has been written with {} records, {} fixed CRC error(s)",
        dst.display(),
        r.records,
        r.fixed.len()
    )?;
    Ok(())
}

/// `rzk log dump --json`: JSON Lines, `{"header":...}`, one `{"txn":...}` per record,
/// then `{"end":...}` (`eof`, or `torn` with offset and fault).
pub fn run_log_dump_json(path: &Path, out: &mut dyn Write) -> Result<(), DumpError> {
    let mut r = LogFileReader::open_spooled(path)?;
    // A file that ended at offset 0 has no header to show (none is made up).
    if !matches!(r.end(), Some(FileEnd::Torn(t)) if t.offset == 0) {
        let header = serde_json::json!({"header": {
            "file": path.display().to_string(), "magic": "ZKLG",
            "version": r.header.version, "dbid": r.header.dbid,
        }});
        writeln!(out, "{header}")?;
    }
    let mut n = 0u64;
    while let Some(e) = r.next_entry()? {
        let mut v = json::record(&e.record);
        v["offset"] = e.offset.into();
        writeln!(out, "{}", serde_json::json!({ "txn": v }))?;
        n += 1;
    }
    let end = match r.end() {
        Some(FileEnd::Torn(t)) => serde_json::json!({"end": {
            "kind": "torn", "txns": n, "offset": t.offset, "fault": t.fault.to_string(),
        }}),
        _ => serde_json::json!({"end": {"kind": "eof", "txns": n}}),
    };
    writeln!(out, "{end}")?;
    torn_tail(path, r.end(), n)
}

fn finish(r: Result<(), DumpError>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        // `rzk log dump ... | head`: the reader went away; not an error of the dump.
        Err(DumpError::Out(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Lists a log file's records, then how it ends (EOF / zero padding, or a torn tail).
/// A record that decodes but fails its CRC is listed marked `CRC ERROR` (as
/// TxnLogToolkit's dump does) and the dump goes on, then fails naming the first one;
/// other corruption before the end is an error (after the records before it were
/// printed).
pub fn run_log_dump(path: &Path, out: &mut dyn Write) -> Result<(), DumpError> {
    let mut r = LogFileReader::open_spooled(path)?;
    r.accept_bad_checksums();
    let mut bad: Option<(u64, u64)> = None;
    // A file that ended at offset 0 (shorter than a header, or a zeroed header) has no
    // header to show: only its torn tail is reported.
    let headerless = matches!(r.end(), Some(FileEnd::Torn(t)) if t.offset == 0);
    if !headerless {
        writeln!(
            out,
            "ZooKeeper Transactional Log File with dbid {} txnlog format version {}",
            r.header.dbid, r.header.version
        )?;
    }
    let mut n = 0u64;
    while let Some(e) = r.next_entry()? {
        if let Some((stored, computed)) = r.last_bad_checksum() {
            write!(
                out,
                "CRC ERROR at byte offset {} (stored adler32 0x{stored:x}, computed 0x{computed:x}) - ",
                e.offset
            )?;
            let (count, first) = bad.unwrap_or((0, e.offset));
            bad = Some((count + 1, first));
        }
        writeln!(out, "{}", record_line(&e.record))?;
        n += 1;
    }
    match r.end() {
        Some(FileEnd::Torn(t)) => writeln!(
            out,
            "Torn tail at byte offset {} after {n} txns: {} (recovery truncates it)",
            t.offset, t.fault
        )?,
        _ => writeln!(out, "EOF reached after {n} txns.")?,
    }
    match bad {
        Some((count, first)) => Err(DumpError::BadChecksums {
            file: path.to_path_buf(),
            count,
            first,
        }),
        None => torn_tail(path, r.end(), n),
    }
}

/// One TxnLogToolkit-style line.
pub fn record_line(rec: &TxnRecord) -> String {
    let h = &rec.header;
    let mut s = format!(
        "{} session 0x{:x} cxid 0x{:x} zxid 0x{:x} {} {}",
        format_time(h.time),
        h.client_id,
        h.cxid,
        h.zxid,
        type_name(h.txn_type),
        body(&rec.txn)
    );
    if let Some(d) = &rec.digest {
        s.push_str(&format!(" digest v{} {}", d.version, d.tree_digest));
    }
    s
}

pub(crate) fn type_name(t: i32) -> String {
    match OpCode::from_i32(t) {
        Some(OpCode::Create) => "create".into(),
        Some(OpCode::Create2) => "create2".into(),
        Some(OpCode::CreateContainer) => "createContainer".into(),
        Some(OpCode::CreateTtl) => "createTTL".into(),
        Some(OpCode::Delete) => "delete".into(),
        Some(OpCode::DeleteContainer) => "deleteContainer".into(),
        Some(OpCode::SetData) => "setData".into(),
        Some(OpCode::Reconfig) => "reconfig".into(),
        Some(OpCode::SetAcl) => "setACL".into(),
        Some(OpCode::Check) => "check".into(),
        Some(OpCode::Multi) => "multi".into(),
        Some(OpCode::CreateSession) => "createSession".into(),
        Some(OpCode::CloseSession) => "closeSession".into(),
        Some(OpCode::Error) => "error".into(),
        _ => format!("unknown({t})"),
    }
}

/// Quoted, escaped and cut data; null data (length -1) shows as `null`.
fn data(d: &Data) -> String {
    if d.is_null() {
        return "null".into();
    }
    let shown = &d[..d.len().min(DATA_PREVIEW)];
    let mut s = String::from("'");
    for &b in shown {
        if (0x20..0x7f).contains(&b) && b != b'\'' && b != b'\\' {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s.push('\'');
    if d.len() > shown.len() {
        s.push_str(&format!("...({} bytes)", d.len()));
    }
    s
}

fn acls(a: &[Acl]) -> String {
    let v: Vec<String> = a
        .iter()
        .map(|x| format!("{}:{}:{}", x.id.scheme, x.id.id, perms(x.perms)))
        .collect();
    format!("[{}]", v.join(","))
}

pub(crate) fn perms(p: i32) -> String {
    let mut s = String::new();
    for (bit, c) in [(1, 'r'), (2, 'w'), (4, 'c'), (8, 'd'), (16, 'a')] {
        if p & bit != 0 {
            s.push(c);
        }
    }
    s
}

fn body(t: &Txn) -> String {
    match t {
        Txn::Create(_, c) => format!(
            "{} {} acl {} ephemeral {} parentCVersion {}",
            c.path,
            data(&c.data),
            acls(&c.acl),
            c.ephemeral,
            c.parent_cversion
        ),
        Txn::CreateTtl(c) => format!(
            "{} {} acl {} parentCVersion {} ttl {}",
            c.path,
            data(&c.data),
            acls(&c.acl),
            c.parent_cversion,
            c.ttl
        ),
        Txn::CreateContainer(c) => format!(
            "{} {} acl {} parentCVersion {}",
            c.path,
            data(&c.data),
            acls(&c.acl),
            c.parent_cversion
        ),
        Txn::Delete(d) | Txn::DeleteContainer(d) => d.path.clone(),
        Txn::SetData(s) | Txn::Reconfig(s) => {
            format!("{} {} version {}", s.path, data(&s.data), s.version)
        }
        Txn::SetAcl(s) => format!("{} {} version {}", s.path, acls(&s.acl), s.version),
        Txn::Check(c) => format!("{} version {}", c.path, c.version),
        Txn::Multi(subs) => {
            let v: Vec<String> = subs
                .iter()
                .map(|s| format!("{} {}", type_name(s.txn_type()), body(s)))
                .collect();
            format!("[{}]", v.join("; "))
        }
        Txn::CreateSession(c) => format!("timeout {}", c.timeout_ms),
        Txn::CloseSession(Some(c)) => format!("ephemerals {:?}", c.paths_to_delete),
        Txn::CloseSession(None) => String::new(),
        Txn::Error(e) => format!("err {}", e.err),
    }
}

/// `yyyy-mm-ddThh:mm:ss.mmmZ` from epoch milliseconds.
pub fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // civil-from-days (proleptic Gregorian)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// The parent path of a stored node path (`""`, the root's stored path, for `/a`).
fn parent_of(path: &str) -> &str {
    path.rfind('/').map(|j| &path[..j]).unwrap_or("")
}

/// A node's stored path as shown (`/` for the root's `""`).
fn shown_path(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// What the first pass over a snapshot learns: everything the listing prints before or
/// after the nodes, with no node kept.
struct SnapshotScan {
    acl_entries: u64,
    nodes: u64,
    /// Ephemeral nodes per owning session.
    ephemerals: BTreeMap<i64, u64>,
    /// The tree digest recomputed from the nodes (as the server computes it).
    digest: i64,
    /// Every node came right after its parent's subtree began (ZooKeeper's and rzk's
    /// order): the JSON tree can then be written as the nodes come.
    preorder: bool,
    trailer: SnapshotTrailer,
}

/// A snapshot opened once for all of the dump's passes: each reads this same file from
/// its start. Reopening the path could find another file renamed over it meanwhile (the
/// counts of the first pass then describing nodes the second does not print), and a
/// pipe or FIFO has nothing left for a second pass (or, reopened, blocks for a writer).
/// A pipe, FIFO or device is copied to an unlinked temporary file first, as
/// [`LogFileReader::open_spooled`] does for a log.
struct SnapshotInput {
    file: File,
    path: PathBuf,
}

/// `input` (a pipe or device opened from `path`) copied into a temporary file for
/// [`SnapshotInput`]. A read error is the snapshot's (`SnapshotError::Io`); only the
/// temporary file's own is [`DumpError::SnapshotSpool`].
fn spool_snapshot(path: &Path, input: &mut File) -> Result<File, DumpError> {
    use rzk_server::storage::spool::{spool, SpoolError};
    spool(input, SNAP_MAGIC).map_err(|e| match e {
        SpoolError::Input(source) => rzk_server::storage::snapshot::SnapshotError::Io {
            file: path.to_path_buf(),
            source,
        }
        .into(),
        SpoolError::Temp(source) => DumpError::SnapshotSpool {
            file: path.to_path_buf(),
            source,
        },
    })
}

impl SnapshotInput {
    fn open(path: &Path) -> Result<SnapshotInput, DumpError> {
        let io_err = |source| rzk_server::storage::snapshot::SnapshotError::Io {
            file: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() && !meta.is_dir() {
            // Input that is no (uncompressed) snapshot, such as `/dev/zero`, is not
            // copied past its header; the reader then reports its magic.
            file = spool_snapshot(path, &mut file)?;
        }
        Ok(SnapshotInput {
            file,
            path: path.to_path_buf(),
        })
    }

    /// A reader at the start of the snapshot.
    fn reader(&self) -> Result<SnapshotReader, DumpError> {
        let io_err = |source| rzk_server::storage::snapshot::SnapshotError::Io {
            file: self.path.clone(),
            source,
        };
        let mut f = self.file.try_clone().map_err(io_err)?;
        f.seek(SeekFrom::Start(0)).map_err(io_err)?;
        Ok(SnapshotReader::from_file(f, &self.path)?)
    }
}

/// Reads a whole snapshot once, verifying every seal, holding one node at a time.
fn scan_snapshot(input: &SnapshotInput) -> Result<SnapshotScan, DumpError> {
    let mut r = input.reader()?;
    r.sessions_each(|_, _| {})?;
    let mut shape = TreeShape::default();
    let acl_entries = r.acl_cache_each(|idx, _| shape.acl(idx))?;
    let mut scan = SnapshotScan {
        acl_entries,
        nodes: 0,
        ephemerals: BTreeMap::new(),
        digest: 0,
        preorder: true,
        trailer: SnapshotTrailer::default(),
    };
    let mut n = NodeBuf::default();
    // The open ancestors of the node just read (pre-order check).
    let mut open: Vec<String> = Vec::new();
    while r.next_node_into(&mut n)? {
        scan.nodes += 1;
        shape
            .node(n.path(), n.acl)
            .map_err(|error| DumpError::Tree {
                file: input.path.clone(),
                error,
            })?;
        if n.stat.ephemeral_owner > 0 {
            *scan.ephemerals.entry(n.stat.ephemeral_owner).or_default() += 1;
        }
        let data = n.data().unwrap_or(&[]);
        scan.digest = scan
            .digest
            .wrapping_add(node_digest(shown_path(n.path()), data, &n.stat));
        if scan.preorder {
            if n.path().is_empty() {
                open.clear();
            } else {
                let parent = parent_of(n.path());
                while open.last().is_some_and(|p| p != parent) {
                    open.pop();
                }
                scan.preorder = !open.is_empty();
            }
            open.push(n.path().to_owned());
        }
    }
    scan.trailer = r.finish()?;
    shape.finish().map_err(|error| DumpError::Tree {
        file: input.path.clone(),
        error,
    })?;
    Ok(scan)
}

/// The server's checks of a snapshot's tree (`rzk_server::tree::TreeBuilder`: it
/// refuses the snapshot for any of them), made while the dump streams the nodes: the
/// dump must not list as fine, or print as a tree with parts left out, what the server
/// will not load (SnapshotFormatter, which builds the tree, fails on it too). Paths are
/// held as 128-bit hashes, 16 bytes a node, not as the paths themselves.
#[derive(Default)]
struct TreeShape {
    acls: std::collections::HashSet<i64>,
    paths: std::collections::HashSet<u128>,
    saw_root: bool,
}

/// A 128-bit hash of a path (two independent 64-bit SipHashes): two of the paths of a
/// snapshot collide with odds of about n² / 2^129.
fn path_hash(path: &str) -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let half = |seed: u8| {
        let mut h =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .build_hasher();
        h.write_u8(seed);
        h.write(path.as_bytes());
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

impl TreeShape {
    fn acl(&mut self, idx: i64) {
        self.acls.insert(idx);
    }

    /// One node in file order (the root stored as `""`).
    fn node(&mut self, path: &str, acl: i64) -> Result<(), rzk_server::tree::BuildError> {
        use rzk_server::tree::BuildError;
        // The root is stored as `""`; a `/` is the root too for the server.
        let path = if path == "/" { "" } else { path };
        let shown = shown_path(path);
        // A node holds its ACL index in 32 bits (the server's `Node::acl_fits`).
        let fits = i32::try_from(acl).is_ok();
        if !fits || (acl != rzk_server::tree::OPEN_ACL_INDEX && !self.acls.contains(&acl)) {
            return Err(BuildError::UnknownAcl(shown.to_owned(), acl));
        }
        if path.is_empty() {
            self.saw_root = true;
        } else {
            let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
            if !path.starts_with('/') || name.is_empty() {
                return Err(BuildError::BadPath(shown.to_owned()));
            }
            // The server links a node to a parent it has already read.
            if !self.paths.contains(&path_hash(parent)) {
                return Err(BuildError::Orphan(shown.to_owned()));
            }
        }
        if !self.paths.insert(path_hash(path)) {
            return Err(BuildError::Duplicate(shown.to_owned()));
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), rzk_server::tree::BuildError> {
        if self.saw_root {
            Ok(())
        } else {
            Err(rzk_server::tree::BuildError::NoRoot)
        }
    }
}

fn digest_report(computed: i64, trailer: &SnapshotTrailer, out: &mut dyn Write) -> io::Result<()> {
    match trailer.digest {
        Some(d) if d.zxid.0 != 0 && d.version == DIGEST_VERSION => {
            let verdict = if d.digest == computed {
                "matches"
            } else {
                "differs (expected when writes ran while the snapshot was taken: it is fuzzy and the log replay fixes it)"
            };
            writeln!(
                out,
                "Digest check: stored {} at zxid 0x{:x}, computed {computed}: {verdict}",
                d.digest, d.zxid.0
            )
        }
        _ => writeln!(
            out,
            "Digest check: no stored digest to compare; computed {computed}"
        ),
    }
}

/// Opens a snapshot and reads past its sessions and ACL cache to the nodes.
fn open_at_nodes(input: &SnapshotInput) -> Result<SnapshotReader, DumpError> {
    let mut r = input.reader()?;
    r.sessions_each(|_, _| {})?;
    r.acl_cache_each(|_, _| {})?;
    Ok(r)
}

/// Lists a snapshot (SnapshotFormatter): every node with its stat and data length (or
/// data, `-d`), the sessions with their ephemeral counts, the ACL cache and the trailer;
/// or with `json` only SnapshotFormatter -json's tree.
///
/// Streams: the file is read once to verify every seal and count what the listing needs
/// before the nodes (nothing is printed for a damaged file), then again to print, and
/// the text listing reads its start a third time for the sessions and ACL cache, which it
/// prints after the nodes. One node is held at a time, so memory does not grow with the
/// file (SnapshotFormatter holds the whole tree; a 1.2 MB gzip bomb made this dump hold
/// 1.3 GB when it did too).
pub fn run_snapshot_dump_with(
    path: &Path,
    opts: SnapshotDumpOptions,
    out: &mut dyn Write,
) -> Result<(), DumpError> {
    let input = SnapshotInput::open(path)?;
    let scan = scan_snapshot(&input)?;
    if opts.json {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mut r = open_at_nodes(&input)?;
        let mut n = NodeBuf::default();
        if scan.preorder {
            let mut tree = json::TreeWriter::new(&mut *out, now)?;
            while r.next_node_into(&mut n)? {
                tree.node(n.path(), n.data().map_or(0, <[u8]>::len))?;
            }
            tree.finish()?;
        } else {
            // Not in pre-order (no ZooKeeper or rzk writes that): the tree is built from
            // every node's path and data length.
            let mut nodes = Vec::new();
            while r.next_node_into(&mut n)? {
                nodes.push((n.path().to_owned(), n.data().map_or(0, <[u8]>::len)));
            }
            serde_json::to_writer(&mut *out, &json::snapshot_tree(&nodes, now))?;
            writeln!(out)?;
        }
        return Ok(());
    }
    writeln!(out, "ZNode Details (count={}):", scan.nodes)?;
    let mut r = open_at_nodes(&input)?;
    let mut n = NodeBuf::default();
    while r.next_node_into(&mut n)? {
        let s = &n.stat;
        writeln!(out, "----")?;
        writeln!(out, "{}", shown_path(n.path()))?;
        writeln!(out, "  cZxid = 0x{:x}", s.czxid)?;
        writeln!(out, "  ctime = {}", format_time(s.ctime))?;
        writeln!(out, "  mZxid = 0x{:x}", s.mzxid)?;
        writeln!(out, "  mtime = {}", format_time(s.mtime))?;
        writeln!(out, "  pZxid = 0x{:x}", s.pzxid)?;
        writeln!(out, "  cversion = {}", s.cversion)?;
        writeln!(out, "  dataVersion = {}", s.version)?;
        writeln!(out, "  aclVersion = {}", s.aversion)?;
        writeln!(out, "  ephemeralOwner = 0x{:x}", s.ephemeral_owner)?;
        writeln!(out, "  acl = {}", n.acl)?;
        let data = n.data().unwrap_or(&[]);
        if opts.data {
            let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, data);
            writeln!(out, "  data = {b64}")?;
        } else {
            writeln!(out, "  dataLength = {}", data.len())?;
        }
    }
    drop(r);
    // Sessions and the ACL cache come before the nodes in the file but after them in
    // the listing: read again, printed as they come.
    let mut r = input.reader()?;
    let mut res: io::Result<()> = Ok(());
    writeln!(out, "----")?;
    writeln!(out, "Session Details (sid, timeout, ephemeralCount):")?;
    r.sessions_each(|sid, to| {
        if res.is_ok() {
            let eph = scan.ephemerals.get(&sid).copied().unwrap_or(0);
            res = writeln!(out, "0x{sid:x}, {to}, {eph}");
        }
    })?;
    std::mem::replace(&mut res, Ok(()))?;
    writeln!(out, "----")?;
    writeln!(out, "ACL cache ({} entries):", scan.acl_entries)?;
    r.acl_cache_each(|idx, a| {
        if res.is_ok() {
            res = writeln!(out, "{idx}: {}", acls(&a));
        }
    })?;
    res?;
    writeln!(out, "----")?;
    match scan.trailer.digest {
        Some(d) => writeln!(
            out,
            "Digest: zxid 0x{:x} version {} value {}",
            d.zxid.0, d.version, d.digest
        )?,
        None => writeln!(out, "Digest: none")?,
    }
    if let Some(z) = scan.trailer.last_processed_zxid {
        writeln!(out, "Last processed zxid: 0x{:x}", z.0)?;
    }
    if opts.digest {
        digest_report(scan.digest, &scan.trailer, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot that cannot be read while it is copied (here a file open for writing
    /// only, as a failing device) is reported as the snapshot's read error, not as a
    /// problem with the temporary file in `$TMPDIR`.
    #[test]
    fn a_spooled_snapshots_read_error_is_the_snapshots() {
        let named = tempfile::NamedTempFile::new().expect("temp file");
        let mut write_only = std::fs::OpenOptions::new()
            .write(true)
            .open(named.path())
            .expect("open for writing");
        match spool_snapshot(named.path(), &mut write_only) {
            Err(DumpError::Snapshot(rzk_server::storage::snapshot::SnapshotError::Io {
                ..
            })) => {}
            other => panic!("want the snapshot's read error, got {other:?}"),
        }
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../server/tests/fixtures/zk38/version-2")
            .join(name)
    }

    #[test]
    fn time_format() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(format_time(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn dumps_zookeeper_log() {
        let mut out = Vec::new();
        run_log_dump(&fixture("log.f"), &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.starts_with("ZooKeeper Transactional Log File with dbid 0 txnlog format version 2\n")
        );
        assert!(s.contains("zxid 0xf error err -110"), "{s}");
        assert!(
            s.contains("zxid 0x16 closeSession ephemerals [\"/tmp-eph\"]"),
            "{s}"
        );
        assert!(s.contains("multi [create /multi1 'm1'"), "{s}");
        assert!(s.ends_with("EOF reached after 8 txns.\n"), "{s}");
    }

    /// A file too short for its header shows no (made-up) header line, only the torn
    /// tail; a file with a header and nothing else shows the header.
    #[test]
    fn a_log_shorter_than_its_header_reports_only_the_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("log.1");
        std::fs::write(&short, b"ZKLG\0\0\0").unwrap();
        let mut out = Vec::new();
        // Listed, then a failure naming the file (TxnLogToolkit exits 1 on a partial
        // last record).
        let e = run_log_dump(&short, &mut out).unwrap_err();
        assert!(
            matches!(
                e,
                DumpError::TornTail {
                    offset: 0,
                    txns: 0,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("log.1"), "{e}");
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "Torn tail at byte offset 0 after 0 txns: file shorter than its header \
             (recovery truncates it)\n"
        );
        let mut out = Vec::new();
        assert!(run_log_dump_json(&short, &mut out).is_err());
        let s = String::from_utf8(out).unwrap();
        assert!(!s.contains("{\"header\""), "a made-up header: {s}");
        let head_only = dir.path().join("log.2");
        let full = std::fs::read(fixture("log.f")).unwrap();
        std::fs::write(&head_only, &full[..16]).unwrap();
        let mut out = Vec::new();
        run_log_dump(&head_only, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.starts_with("ZooKeeper Transactional Log File with dbid 0"),
            "{s}"
        );
    }

    #[test]
    fn dumps_zookeeper_snapshot() {
        let mut out = Vec::new();
        run_snapshot_dump_with(
            &fixture("snapshot.e"),
            SnapshotDumpOptions::default(),
            &mut out,
        )
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("ZNode Details (count=13):\n"), "{s}");
        assert!(s.contains("/app/eph\n  cZxid = 0x6\n"), "{s}");
        assert!(s.contains("0x1000007d3090000, 30000, 1\n"), "{s}");
        assert!(s.contains("Digest: zxid 0xe version 2"), "{s}");
    }

    /// A snapshot whose nodes the server would refuse to load (a review found the dump
    /// listing them with exit 0, and `--json` printing an empty tree, or leaving out the
    /// children of a missing node) fails every kind of dump with the server's reason.
    #[test]
    fn a_snapshot_the_server_refuses_fails_the_dump_with_its_reason() {
        use rzk_proto::Zxid;
        use rzk_server::storage::files::Compression;
        use rzk_server::storage::snapshot::{read_snapshot, write_snapshot};
        use rzk_server::tree::BuildError;
        let base = read_snapshot(&fixture("snapshot.e")).unwrap();
        let at = |p: &str| base.nodes.iter().position(|n| n.path == p).unwrap();
        // What the server's tree builder says of `c` (the dump must say the same).
        let server_says = |c: &rzk_server::storage::snapshot::SnapshotContents| {
            let mut b = rzk_server::tree::TreeBuilder::new();
            for (i, a) in &c.acls {
                b.add_acl(*i, a.clone());
            }
            let added = c.nodes.iter().try_for_each(|n| {
                b.add_node(rzk_server::tree::SnapshotNode::copied(
                    &n.path,
                    n.data.as_option().map(|d| &d[..]),
                    n.acl,
                    &n.stat,
                ))
            });
            match added {
                Err(e) => e,
                Ok(()) => b.finish(Zxid(0xe)).map(|_| ()).expect_err("a refused tree"),
            }
        };
        let mut cases = Vec::new();
        let mut c = base.clone();
        c.nodes.remove(at(""));
        cases.push(("no root", c, BuildError::Orphan("/app".into())));
        let mut c = base.clone();
        c.nodes.clear();
        cases.push(("no node", c, BuildError::NoRoot));
        let mut c = base.clone();
        c.nodes.remove(at("/app"));
        cases.push((
            "orphan",
            c,
            BuildError::Orphan("/app/seq-0000000002".into()),
        ));
        let mut c = base.clone();
        let dup = c.nodes[at("/app")].clone();
        c.nodes.push(dup);
        cases.push(("twice", c, BuildError::Duplicate("/app".into())));
        let mut c = base.clone();
        let i = at("/app");
        c.nodes[i].acl = 99;
        cases.push(("acl", c, BuildError::UnknownAcl("/app".into(), 99)));
        // In the cache, but no node can hold an index past 32 bits (a review of the
        // first version of this check, which let it through).
        let mut c = base.clone();
        let wide = 1i64 << 31;
        c.acls.push((wide, c.acls[0].1.clone()));
        c.nodes[i].acl = wide;
        cases.push(("wide acl", c, BuildError::UnknownAcl("/app".into(), wide)));
        for (name, contents, want) in cases {
            assert_eq!(server_says(&contents), want, "{name}: the server's reason");
            let dir = tempfile::tempdir().unwrap();
            let file = write_snapshot(dir.path(), Zxid(0xe), Compression::None, &contents).unwrap();
            for json in [false, true] {
                let opts = SnapshotDumpOptions {
                    json,
                    ..SnapshotDumpOptions::default()
                };
                let mut out = Vec::new();
                match run_snapshot_dump_with(&file, opts, &mut out) {
                    Err(DumpError::Tree { file: f, error }) => {
                        assert_eq!((f, error), (file.clone(), want.clone()), "{name}")
                    }
                    other => panic!("{name} (json {json}): want the tree's error, got {other:?}"),
                }
                assert!(out.is_empty(), "{name}: printed before failing");
            }
        }
        // The same nodes out of pre-order (parents still first) are a valid tree.
        let mut c = base.clone();
        let app = c.nodes.remove(at("/app"));
        c.nodes.insert(1, app);
        let dir = tempfile::tempdir().unwrap();
        let file = write_snapshot(dir.path(), Zxid(0xe), Compression::None, &c).unwrap();
        let mut out = Vec::new();
        run_snapshot_dump_with(&file, SnapshotDumpOptions::default(), &mut out).unwrap();
    }
}
