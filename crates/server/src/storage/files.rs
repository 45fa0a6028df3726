//! ZooKeeper's data-directory layout: `version-2` folders, file names
//! (`log.<hex zxid>`, `snapshot.<hex zxid>[.gz|.snappy]`), the 16-byte file header and
//! directory listing sorted by zxid.
//!
//! Owns naming and listing only; it must never read or write file contents beyond the
//! header, and never delete anything (purge.rs and recovery.rs decide that).

use rzk_proto::Zxid;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Subdirectory of dataDir / dataLogDir holding the files (storage format version 2).
pub const VERSION_DIR: &str = "version-2";
/// File name prefix of transaction logs.
pub const LOG_PREFIX: &str = "log";
/// File name prefix of snapshots.
pub const SNAPSHOT_PREFIX: &str = "snapshot";
/// `ZKLG`.
pub const TXNLOG_MAGIC: i32 = 0x5A4B_4C47;
/// `ZKSN`.
pub const SNAP_MAGIC: i32 = 0x5A4B_534E;
/// Storage format version written in file headers.
pub const FORMAT_VERSION: i32 = 2;
/// dbid written in log headers.
pub const TXNLOG_DBID: i64 = 0;
/// dbid written in snapshot headers.
pub const SNAP_DBID: i64 = -1;
/// Size of `FileHeader { int magic; int version; long dbid }`.
pub const FILE_HEADER_LEN: usize = 16;
/// Marker file in dataLogDir: "an empty database is legitimate".
pub const INITIALIZE_MARKER: &str = "initialize";

/// `FileHeader`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub magic: i32,
    pub version: i32,
    pub dbid: i64,
}

impl FileHeader {
    pub fn txn_log() -> FileHeader {
        FileHeader {
            magic: TXNLOG_MAGIC,
            version: FORMAT_VERSION,
            dbid: TXNLOG_DBID,
        }
    }

    pub fn snapshot() -> FileHeader {
        FileHeader {
            magic: SNAP_MAGIC,
            version: FORMAT_VERSION,
            dbid: SNAP_DBID,
        }
    }

    pub fn to_bytes(self) -> [u8; FILE_HEADER_LEN] {
        let mut b = [0u8; FILE_HEADER_LEN];
        b[0..4].copy_from_slice(&self.magic.to_be_bytes());
        b[4..8].copy_from_slice(&self.version.to_be_bytes());
        b[8..16].copy_from_slice(&self.dbid.to_be_bytes());
        b
    }

    pub fn from_bytes(b: &[u8; FILE_HEADER_LEN]) -> FileHeader {
        let mut m = [0u8; 4];
        let mut v = [0u8; 4];
        let mut d = [0u8; 8];
        m.copy_from_slice(&b[0..4]);
        v.copy_from_slice(&b[4..8]);
        d.copy_from_slice(&b[8..16]);
        FileHeader {
            magic: i32::from_be_bytes(m),
            version: i32::from_be_bytes(v),
            dbid: i64::from_be_bytes(d),
        }
    }
}

/// `<dir>/version-2`.
pub fn version_dir(dir: &Path) -> PathBuf {
    dir.join(VERSION_DIR)
}

/// `log.<hex>`: lowercase hex, no leading zeros (ZooKeeper's `Long.toHexString`).
pub fn log_name(zxid: Zxid) -> String {
    format!("{LOG_PREFIX}.{:x}", zxid.0)
}

/// `snapshot.<hex>` plus the compression extension, if any.
pub fn snapshot_name(zxid: Zxid, compression: Compression) -> String {
    format!("{SNAPSHOT_PREFIX}.{:x}{}", zxid.0, compression.extension())
}

/// The zxid in a file name `prefix.<hex>[.anything]`, as ZooKeeper parses it (split on
/// `.`, second part as hex). `None` when it does not parse.
pub fn zxid_from_name(name: &str, prefix: &str) -> Option<Zxid> {
    let mut parts = name.split('.');
    if parts.next()? != prefix {
        return None;
    }
    hex_zxid(parts.next()?)
}

/// A name's hex zxid as `Long.parseLong(hex, 16)` reads it: either case, any leading
/// zeros, at most `i64::MAX`; no sign, no blanks.
fn hex_zxid(hex: &str) -> Option<Zxid> {
    if hex.is_empty() || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let digits = hex.trim_start_matches('0');
    if digits.len() > 16 {
        return None;
    }
    let v = u64::from_str_radix(if digits.is_empty() { "0" } else { digits }, 16).ok()?;
    i64::try_from(v).ok().map(Zxid)
}

/// Snapshot stream compression, chosen by file name extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    /// snappy-java's stream format (storage/snappy.rs).
    Snappy,
}

impl Compression {
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Snappy => ".snappy",
        }
    }

    /// From `zookeeper.snapshot.compression.method` (`gz` | `snappy` | anything else = none).
    pub fn from_method(method: &str) -> Compression {
        // Case-insensitive, as ZooKeeper's StreamMode.fromString.
        match method.trim().to_ascii_lowercase().as_str() {
            "gz" => Compression::Gzip,
            "snappy" => Compression::Snappy,
            _ => Compression::None,
        }
    }
}

/// A data file with the zxid from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZxidFile {
    pub path: PathBuf,
    pub zxid: Zxid,
}

/// Log files `log.<hex>` in `version_dir`, ascending by zxid. A missing directory is empty.
pub fn list_logs(version_dir: &Path) -> io::Result<Vec<ZxidFile>> {
    list(version_dir, |name| named_zxid(name, LOG_PREFIX, ""))
}

/// The zxid of a name that is exactly `prefix.<hex><suffix>`, the hex in either case and
/// with any leading zeros (ZooKeeper reads it with `Long.parseLong(hex, 16)`, so
/// `log.11E` and `log.011e` are its log of zxid 0x11e; rzk writes lower case without
/// zeros). Names with anything else after the hex (`log.5.tmp`) are not data files here.
fn named_zxid(name: &str, prefix: &str, suffix: &str) -> Option<Zxid> {
    hex_zxid(
        name.strip_prefix(prefix)?
            .strip_prefix('.')?
            .strip_suffix(suffix)?,
    )
}

/// Snapshot files `snapshot.<hex>[.gz|.snappy]` in `version_dir`, ascending by zxid.
/// Other names (e.g. `snapshot.5.tmp`, an unfinished write) are ignored.
pub fn list_snapshots(version_dir: &Path) -> io::Result<Vec<(ZxidFile, Compression)>> {
    let mut out = Vec::new();
    for f in list(version_dir, |name| zxid_from_name(name, SNAPSHOT_PREFIX))? {
        let name = file_name(&f.path);
        let comp = [Compression::None, Compression::Gzip, Compression::Snappy]
            .into_iter()
            .find(|c| named_zxid(&name, SNAPSHOT_PREFIX, c.extension()) == Some(f.zxid));
        if let Some(c) = comp {
            out.push((f, c));
        }
    }
    Ok(out)
}

/// Every file whose name is `prefix.<hex>[...]` (ZooKeeper's loose rule, used by purge).
pub fn list_prefixed(version_dir: &Path, prefix: &str) -> io::Result<Vec<ZxidFile>> {
    list(version_dir, |name| zxid_from_name(name, prefix))
}

fn list(dir: &Path, parse: impl Fn(&str) -> Option<Zxid>) -> io::Result<Vec<ZxidFile>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(zxid) = parse(name) {
            // Links are followed, as ZooKeeper does. Anything else under a data file's
            // name (a directory, a link to nothing) is refused, naming it: skipping it
            // would serve without the txns it should hold.
            let path = ent.path();
            if ent.file_type()?.is_file() {
                out.push(ZxidFile { path, zxid });
                continue;
            }
            match fs::metadata(&path) {
                Ok(m) if m.is_file() => out.push(ZxidFile { path, zxid }),
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} has a data file's name but is not a regular file",
                            path.display()
                        ),
                    ))
                }
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("{}: {e} (a link to nothing?)", path.display()),
                    ))
                }
            }
        }
    }
    out.sort_by(|a, b| a.zxid.cmp(&b.zxid).then_with(|| a.path.cmp(&b.path)));
    Ok(out)
}

pub(crate) fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Fsyncs a directory so a create/rename/delete in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Creates `<dir>/version-2` if missing (ZooKeeper's `datadir.autocreate`).
pub fn ensure_version_dir(dir: &Path) -> io::Result<PathBuf> {
    let v = version_dir(dir);
    fs::create_dir_all(&v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercase_hex_without_leading_zeros() {
        assert_eq!(log_name(Zxid(0x1_0000_0001)), "log.100000001");
        assert_eq!(snapshot_name(Zxid(0), Compression::None), "snapshot.0");
        assert_eq!(
            snapshot_name(Zxid(0xab), Compression::Gzip),
            "snapshot.ab.gz"
        );
        // The raw bits, as Long.toHexString: a negative value is its two's complement.
        assert_eq!(log_name(Zxid(-1)), "log.ffffffffffffffff");
    }

    /// ZooKeeper reads `log.11E` and `log.011e` as its log of zxid 0x11e; rzk ignored
    /// them, and started without their txns (found by a break-it review).
    #[test]
    fn data_files_named_in_upper_case_or_with_leading_zeros_are_listed() {
        let d = tempfile::tempdir().unwrap();
        for name in [
            "log.1",
            "log.011E",
            "log.5.tmp",
            "log.",
            "log.x1",
            "snapshot.A0",
            "snapshot.0b.gz",
            "snapshot.c.tmp",
        ] {
            fs::write(d.path().join(name), b"").unwrap();
        }
        let logs: Vec<i64> = list_logs(d.path())
            .unwrap()
            .iter()
            .map(|f| f.zxid.0)
            .collect();
        assert_eq!(logs, [0x1, 0x11e]);
        let snaps: Vec<(i64, Compression)> = list_snapshots(d.path())
            .unwrap()
            .iter()
            .map(|(f, c)| (f.zxid.0, *c))
            .collect();
        assert_eq!(snaps, [(0xb, Compression::Gzip), (0xa0, Compression::None)]);
        assert_eq!(
            named_zxid("log.00000000000000000011e", LOG_PREFIX, ""),
            Some(Zxid(0x11e))
        );
    }

    #[test]
    fn zxid_parsing_follows_zookeeper() {
        assert_eq!(
            zxid_from_name("log.100000001", LOG_PREFIX),
            Some(Zxid(0x1_0000_0001))
        );
        assert_eq!(
            zxid_from_name("snapshot.ab.gz", SNAPSHOT_PREFIX),
            Some(Zxid(0xab))
        );
        assert_eq!(
            zxid_from_name("snapshot.ab.tmp", SNAPSHOT_PREFIX),
            Some(Zxid(0xab))
        );
        assert_eq!(zxid_from_name("log.xyz", LOG_PREFIX), None);
        assert_eq!(zxid_from_name("log", LOG_PREFIX), None);
        assert_eq!(zxid_from_name("snapshot.1", LOG_PREFIX), None);
        assert_eq!(zxid_from_name("log.ffffffffffffffff", LOG_PREFIX), None);
    }

    #[test]
    fn listing_sorts_and_filters() {
        let d = tempfile::tempdir().unwrap();
        for n in [
            "log.10",
            "log.2",
            "log.2.bak",
            "snapshot.3",
            "snapshot.4.gz",
            "snapshot.5.tmp",
            "x",
        ] {
            fs::write(d.path().join(n), b"").unwrap();
        }
        let logs: Vec<i64> = list_logs(d.path())
            .unwrap()
            .iter()
            .map(|f| f.zxid.0)
            .collect();
        assert_eq!(logs, vec![2, 0x10]);
        let snaps: Vec<(i64, Compression)> = list_snapshots(d.path())
            .unwrap()
            .into_iter()
            .map(|(f, c)| (f.zxid.0, c))
            .collect();
        assert_eq!(snaps, vec![(3, Compression::None), (4, Compression::Gzip)]);
        assert_eq!(list_prefixed(d.path(), SNAPSHOT_PREFIX).unwrap().len(), 3);
        assert!(list_logs(&d.path().join("missing")).unwrap().is_empty());
    }

    #[test]
    fn header_roundtrip() {
        let h = FileHeader::snapshot();
        assert_eq!(FileHeader::from_bytes(&h.to_bytes()), h);
        assert_eq!(&FileHeader::txn_log().to_bytes()[..4], b"ZKLG");
    }
}
