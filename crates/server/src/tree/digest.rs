//! ZooKeeper's per-node digest (storage-format.md §7): CRC32 over path, data and a
//! 60-byte stat block; the tree digest is the wrapping sum. Must never depend on
//! anything but its arguments.

use rzk_proto::records::StatPersisted;

/// Digest version written in `TxnDigest` and snapshots.
pub const DIGEST_VERSION: i32 = 2;

/// The digest of one node. `path` is the client path (`/` is hashed as `""`); nodes
/// under `/zookeeper/` contribute 0.
pub fn node_digest(path: &str, data: &[u8], stat: &StatPersisted) -> i64 {
    if path.starts_with("/zookeeper/") {
        return 0;
    }
    let path = if path == "/" { "" } else { path };
    let mut b = [0u8; 60];
    b[0..8].copy_from_slice(&stat.czxid.to_be_bytes());
    b[8..16].copy_from_slice(&stat.mzxid.to_be_bytes());
    b[16..24].copy_from_slice(&stat.pzxid.to_be_bytes());
    b[24..32].copy_from_slice(&stat.ctime.to_be_bytes());
    b[32..40].copy_from_slice(&stat.mtime.to_be_bytes());
    b[40..44].copy_from_slice(&stat.version.to_be_bytes());
    b[44..48].copy_from_slice(&stat.cversion.to_be_bytes());
    b[48..52].copy_from_slice(&stat.aversion.to_be_bytes());
    b[52..60].copy_from_slice(&stat.ephemeral_owner.to_be_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(path.as_bytes());
    h.update(data);
    h.update(&b);
    h.finalize() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_alias_and_system_subtree() {
        let s = StatPersisted::default();
        assert_eq!(node_digest("/", b"", &s), node_digest("", b"", &s));
        assert_eq!(node_digest("/zookeeper/quota", b"", &s), 0);
        assert_ne!(node_digest("/zookeeper", b"", &s), 0);
        // CRC32 of 60 zero bytes (empty path, empty data).
        let mut h = crc32fast::Hasher::new();
        h.update(&[0u8; 60]);
        assert_eq!(node_digest("/", b"", &s), h.finalize() as i64);
    }
}
