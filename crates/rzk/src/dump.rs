//! `rzk log dump FILE` and `rzk snapshot dump FILE`: human-readable listings of ZooKeeper
//! transaction logs and snapshots (like ZooKeeper's TxnLogToolkit and SnapshotFormatter).
//!
//! Read-only: it never repairs or modifies the files it reads.

use clap::Subcommand;
use rzk_proto::opcode::OpCode;
use rzk_proto::records::Acl;
use rzk_proto::txn::{Txn, TxnRecord};
use rzk_proto::Data;
use rzk_server::storage::log_reader::{FileEnd, LogFileReader};
use rzk_server::storage::snapshot::SnapshotReader;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Data bytes shown per node / txn before eliding.
const DATA_PREVIEW: usize = 64;

#[derive(Debug, clap::Args)]
pub struct LogArgs {
    #[command(subcommand)]
    cmd: LogCmd,
}

#[derive(Debug, Subcommand)]
enum LogCmd {
    /// Print every record of a transaction log file (log.<zxid>).
    Dump { file: PathBuf },
}

#[derive(Debug, clap::Args)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    cmd: SnapshotCmd,
}

#[derive(Debug, Subcommand)]
enum SnapshotCmd {
    /// Print the sessions and nodes of a snapshot file (snapshot.<zxid>[.gz]).
    Dump { file: PathBuf },
}

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error(transparent)]
    Log(#[from] rzk_server::storage::log_reader::LogReadError),
    #[error(transparent)]
    Snapshot(#[from] rzk_server::storage::snapshot::SnapshotError),
    #[error("writing output: {0}")]
    Out(#[from] io::Error),
}

pub fn run_log(args: LogArgs) -> ExitCode {
    let LogCmd::Dump { file } = args.cmd;
    finish(run_log_dump(&file, &mut io::stdout().lock()))
}

pub fn run_snapshot(args: SnapshotArgs) -> ExitCode {
    let SnapshotCmd::Dump { file } = args.cmd;
    finish(run_snapshot_dump(&file, &mut io::stdout().lock()))
}

fn finish(r: Result<(), DumpError>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Lists a log file's records, then how it ends (EOF / zero padding, or a torn tail).
/// Corruption before the end is an error (after the records before it were printed).
pub fn run_log_dump(path: &Path, out: &mut dyn Write) -> Result<(), DumpError> {
    let mut r = LogFileReader::open(path)?;
    writeln!(
        out,
        "ZooKeeper Transactional Log File with dbid {} txnlog format version {}",
        r.header.dbid, r.header.version
    )?;
    let mut n = 0u64;
    while let Some(e) = r.next_entry()? {
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
    Ok(())
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

fn type_name(t: i32) -> String {
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

fn perms(p: i32) -> String {
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

/// Lists a snapshot: every node with its stat and data length, the sessions with their
/// ephemeral counts, the ACL cache and the trailer. Seals are verified.
pub fn run_snapshot_dump(path: &Path, out: &mut dyn Write) -> Result<(), DumpError> {
    let mut r = SnapshotReader::open(path)?;
    let sessions = r.sessions()?;
    let acl_cache = r.acl_cache()?;
    let mut eph: BTreeMap<i64, u64> = BTreeMap::new();
    let mut nodes = Vec::new();
    while let Some(n) = r.next_node()? {
        nodes.push(n);
    }
    let trailer = r.finish()?;
    writeln!(out, "ZNode Details (count={}):", nodes.len())?;
    for n in &nodes {
        let s = &n.stat;
        if s.ephemeral_owner > 0 {
            *eph.entry(s.ephemeral_owner).or_default() += 1;
        }
        writeln!(out, "----")?;
        writeln!(out, "{}", if n.path.is_empty() { "/" } else { &n.path })?;
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
        writeln!(out, "  dataLength = {}", n.data.len())?;
    }
    writeln!(out, "----")?;
    writeln!(out, "Session Details (sid, timeout, ephemeralCount):")?;
    for (sid, to) in &sessions {
        writeln!(
            out,
            "0x{sid:x}, {to}, {}",
            eph.get(sid).copied().unwrap_or(0)
        )?;
    }
    writeln!(out, "----")?;
    writeln!(out, "ACL cache ({} entries):", acl_cache.len())?;
    for (idx, a) in &acl_cache {
        writeln!(out, "{idx}: {}", acls(a))?;
    }
    writeln!(out, "----")?;
    match trailer.digest {
        Some(d) => writeln!(
            out,
            "Digest: zxid 0x{:x} version {} value {}",
            d.zxid, d.version, d.digest
        )?,
        None => writeln!(out, "Digest: none")?,
    }
    if let Some(z) = trailer.last_processed_zxid {
        writeln!(out, "Last processed zxid: 0x{z:x}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn dumps_zookeeper_snapshot() {
        let mut out = Vec::new();
        run_snapshot_dump(&fixture("snapshot.e"), &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("ZNode Details (count=13):\n"), "{s}");
        assert!(s.contains("/app/eph\n  cZxid = 0x6\n"), "{s}");
        assert!(s.contains("0x1000007d3090000, 30000, 1\n"), "{s}");
        assert!(s.contains("Digest: zxid 0xe version 2"), "{s}");
    }
}
