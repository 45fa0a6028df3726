//! ZooKeeper's per-node digest (docs/STORAGE.md §7): CRC32 over path, data and a
//! 60-byte stat block; the tree digest is the wrapping sum. Must never depend on
//! anything but its arguments.

use super::DataTree;
use rzk_proto::records::StatPersisted;
use rzk_proto::txn::TxnDigest;
use rzk_proto::Zxid;

/// Digest version written in `TxnDigest` and snapshots.
pub const DIGEST_VERSION: i32 = 2;
/// Digest mismatches logged one by one before they are thinned out.
const MISMATCHES_LOGGED: u64 = 10;
/// After the first [`MISMATCHES_LOGGED`], one mismatch in this many is logged.
const MISMATCHES_LOGGED_EVERY: u64 = 1000;

/// The digest a snapshot's trailer records: the tree digest at `zxid`, taken after the
/// nodes were written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotDigest {
    pub zxid: Zxid,
    pub version: i32,
    pub digest: i64,
}

/// When the tree's digest is compared, and how often that failed (ZooKeeper's
/// `DataTree.compareSnapshotDigests` / `compareDigest`).
///
/// A snapshot is *fuzzy*: ZooKeeper serializes it while txns keep being applied, so it
/// is named after the last zxid applied when it started, but its nodes may hold any of
/// the txns applied during the writing, and the digest in its trailer is the one at the
/// last zxid applied when the writing ended. Start-up replays every logged txn after
/// the name zxid on top of it; until the replay reaches the trailer's zxid (the *fuzzy
/// window*) the tree is a mix of states that no logged digest describes, so nothing is
/// compared. So:
///
/// * the trailer's digest is *pending* from the load of the snapshot
///   ([`DataTree::expect_snapshot_digest`]); one taken before the name zxid is dropped,
///   one taken at it (a snapshot written while idle) is compared at once;
/// * while it is pending, no txn's `TxnDigest` is compared;
/// * the txn whose zxid is the trailer's compares the tree with it (once) and clears
///   it; then, from that same txn on, every txn's `TxnDigest` is compared after the
///   txn is applied;
/// * a replay that passes the trailer's zxid without hitting it exactly leaves it
///   pending (one warning; no comparisons, as in ZooKeeper).
///
/// Each failed comparison logs one warning and counts one in
/// [`DataTree::digest_mismatches`]. A digest of another version is not compared.
#[derive(Debug, Clone, Default)]
pub(crate) struct DigestCheck {
    /// The loaded snapshot's digest, not yet reached: the tree is fuzzy.
    pending: Option<SnapshotDigest>,
    /// The replay went past `pending`'s zxid without hitting it (warned once).
    passed: bool,
    /// A learner's tree from its leader's SNAP, until the sync ends: the snapshot was
    /// serialized while the leader went on applying txns, so it may already hold some of
    /// the txns the sync then delivers, and their logged digests do not describe this
    /// tree. ZooKeeper's learner applies those txns without their digests
    /// (`Learner.syncWithLeader` → `processTxn`), so compares none of them.
    in_snap_sync: bool,
    mismatches: u64,
}

impl DataTree {
    /// Starts the digest checks of a tree just loaded from a snapshot (its `last_zxid`
    /// is the snapshot's name zxid) whose trailer holds `digest` (see [`DigestCheck`]).
    pub fn expect_snapshot_digest(&mut self, digest: Option<SnapshotDigest>) {
        let snap_zxid = self.last_zxid;
        let check = &mut self.digest_check;
        check.passed = false;
        check.pending = digest.filter(|d| d.zxid > Zxid::ZERO);
        match check.pending {
            None => tracing::debug!("the snapshot has no digest"),
            Some(d) if d.zxid < snap_zxid => {
                // e.g. a new leader's snapshot at <epoch>00000000: not fuzzy, and its
                // digest is of an older zxid, so it cannot be checked.
                tracing::info!(
                    digest_zxid = %d.zxid,
                    snapshot_zxid = %snap_zxid,
                    "the snapshot's digest predates the snapshot; not comparing it"
                );
                check.pending = None;
            }
            Some(d) => {
                tracing::info!(
                    zxid = %d.zxid,
                    version = d.version,
                    digest = d.digest,
                    "snapshot digest"
                );
                // Not fuzzy (digest at the name zxid): compare now.
                self.compare_snapshot_digest(snap_zxid);
            }
        }
    }

    /// The loaded snapshot's digest while the replay has not reached its zxid yet (the
    /// tree is fuzzy and no digest is compared).
    pub fn pending_snapshot_digest(&self) -> Option<SnapshotDigest> {
        self.digest_check.pending
    }

    /// How many digest comparisons failed (snapshot digest and txn digests).
    pub fn digest_mismatches(&self) -> u64 {
        self.digest_check.mismatches
    }

    /// A tree received in a SNAP sync: no txn digest is compared until
    /// [`DataTree::end_snap_sync`] (see `DigestCheck::in_snap_sync`).
    pub fn begin_snap_sync(&mut self) {
        self.digest_check.in_snap_sync = true;
    }

    /// The learner's sync ended: txn digests are compared again.
    pub fn end_snap_sync(&mut self) {
        self.digest_check.in_snap_sync = false;
    }

    /// The checks after applying the txn `zxid` that logged `txn_digest`.
    pub(crate) fn check_digest_after(&mut self, zxid: Zxid, txn_digest: Option<&TxnDigest>) {
        if self.digest_check.in_snap_sync {
            return;
        }
        if self.digest_check.pending.is_some() {
            self.compare_snapshot_digest(zxid);
        }
        let Some(d) = txn_digest else { return };
        if self.digest_check.pending.is_some() || d.version != DIGEST_VERSION {
            return;
        }
        if d.tree_digest != self.digest {
            self.report_digest_mismatch(zxid, d.tree_digest, "txn");
        }
    }

    fn compare_snapshot_digest(&mut self, zxid: Zxid) {
        let Some(d) = self.digest_check.pending else {
            return;
        };
        if zxid == d.zxid {
            self.digest_check.pending = None;
            if d.version != DIGEST_VERSION {
                tracing::info!(
                    version = d.version,
                    ours = DIGEST_VERSION,
                    "the snapshot's digest is of another version; not comparing it"
                );
            } else if d.digest != self.digest {
                self.report_digest_mismatch(zxid, d.digest, "snapshot");
            }
        } else if zxid > d.zxid && !self.digest_check.passed {
            self.digest_check.passed = true;
            tracing::warn!(
                zxid = %d.zxid,
                "the txn of the snapshot's digest is not in the log; digests are not compared"
            );
        }
    }

    /// Logs a mismatch: the first [`MISMATCHES_LOGGED`], then one in
    /// [`MISMATCHES_LOGGED_EVERY`] with the count so far (a history whose digests all
    /// differ, such as two servers' logs in one directory, would otherwise log a line
    /// per txn; ZooKeeper rate-limits its "Digests are not matching" line too). Counted
    /// rather than timed: the tree reads no clock.
    fn report_digest_mismatch(&mut self, zxid: Zxid, expected: i64, of: &'static str) {
        self.digest_check.mismatches += 1;
        let n = self.digest_check.mismatches;
        if mismatch_logged(n) {
            tracing::warn!(
                %zxid,
                expected,
                actual = self.digest,
                of,
                mismatches = n,
                "tree digest mismatch{}",
                if n == MISMATCHES_LOGGED {
                    format!(" (from here on one in {MISMATCHES_LOGGED_EVERY} is logged)")
                } else {
                    String::new()
                }
            );
        }
    }
}

/// Whether the `n`th digest mismatch (from 1) is logged (see
/// `DataTree::report_digest_mismatch`).
fn mismatch_logged(n: u64) -> bool {
    n <= MISMATCHES_LOGGED || n.is_multiple_of(MISMATCHES_LOGGED_EVERY)
}

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
    // One pass over one buffer when it is small (nearly always): CRC-32 over three
    // short pieces cost three times its setup.
    let len = path.len() + data.len() + b.len();
    if len <= DIGEST_STACK {
        let mut buf = [0u8; DIGEST_STACK];
        buf[..path.len()].copy_from_slice(path.as_bytes());
        buf[path.len()..path.len() + data.len()].copy_from_slice(data);
        buf[path.len() + data.len()..len].copy_from_slice(&b);
        return crc32fast::hash(&buf[..len]) as i64;
    }
    let mut h = crc32fast::Hasher::new();
    h.update(path.as_bytes());
    h.update(data);
    h.update(&b);
    h.finalize() as i64
}

/// Bytes of path, data and stat that [`node_digest`] hashes from one stack buffer.
const DIGEST_STACK: usize = 512;

#[cfg(test)]
mod tests {
    use super::*;
    use rzk_proto::records::Acl;
    use rzk_proto::txn::{CreateTxn, Txn, TxnHeader, TxnRecord};

    /// `create /n<zxid>` at `zxid`, logging `digest` (if any) as the tree digest.
    fn create(zxid: i64, digest: Option<i64>) -> TxnRecord {
        let txn = Txn::Create(
            1,
            CreateTxn {
                path: format!("/n{zxid}"),
                data: bytes::Bytes::from_static(b"x").into(),
                acl: Acl::open_unsafe(),
                ephemeral: false,
                parent_cversion: zxid as i32,
            },
        );
        TxnRecord {
            header: TxnHeader {
                client_id: 5,
                cxid: 1,
                zxid,
                time: 1000 + zxid,
                txn_type: txn.txn_type(),
            },
            txn,
            digest: digest.map(|tree_digest| TxnDigest {
                version: DIGEST_VERSION,
                tree_digest,
            }),
        }
    }

    /// The txns 1..=6 as logged (each with the true tree digest after it), and a tree
    /// that applied 1..=`applied` but is named `named` (a snapshot written while 3..=4
    /// were applied: fuzzy).
    fn logged_and_snapshot(named: i64, applied: i64) -> (Vec<TxnRecord>, DataTree) {
        let mut t = DataTree::new();
        let mut log = Vec::new();
        for z in 1..=6 {
            t.apply(&create(z, None));
            log.push(create(z, Some(t.digest())));
        }
        let mut snap = DataTree::new();
        for r in &log[..applied as usize] {
            snap.apply(r);
        }
        snap.set_last_zxid(Zxid(named));
        (log, snap)
    }

    fn digest_at(log: &[TxnRecord], zxid: i64) -> SnapshotDigest {
        SnapshotDigest {
            zxid: Zxid(zxid),
            version: DIGEST_VERSION,
            digest: log[zxid as usize - 1].digest.as_ref().unwrap().tree_digest,
        }
    }

    fn wrong(mut r: TxnRecord) -> TxnRecord {
        r.digest.as_mut().unwrap().tree_digest += 1;
        r
    }

    /// A history whose every txn mismatches (two servers' logs merged in one data
    /// directory, found by a new-operator review) logged one line per txn.
    #[test]
    fn digest_mismatches_are_thinned_out_after_the_first_ten() {
        let logged: Vec<u64> = (1..=5000).filter(|n| mismatch_logged(*n)).collect();
        assert_eq!(logged[..10], (1..=10).collect::<Vec<_>>()[..]);
        assert_eq!(logged[10..], [1000, 2000, 3000, 4000, 5000]);
    }

    #[test]
    fn fuzzy_window_is_not_compared_then_every_txn_is() {
        let (log, mut t) = logged_and_snapshot(2, 4);
        t.expect_snapshot_digest(Some(digest_at(&log, 4)));
        t.apply(&log[2]); // 3: the tree already holds 4, its digest differs from 3's
        assert_eq!(t.pending_snapshot_digest(), Some(digest_at(&log, 4)));
        t.apply(&wrong(log[3].clone())); // 4 ends the window; its own digest is checked
        assert_eq!(t.pending_snapshot_digest(), None);
        assert_eq!(t.digest_mismatches(), 1);
        t.apply(&log[4]);
        t.apply(&wrong(log[5].clone()));
        assert_eq!(t.digest_mismatches(), 2);
    }

    /// A leader's SNAP carries no digest, and its fuzzy window's txns come during the
    /// sync: none is compared until the sync ends (found by a rolling-upgrade review: an
    /// rzk learner warned of mismatches after a ZooKeeper leader's SNAP under load).
    #[test]
    fn txns_of_a_snap_sync_are_not_compared_until_it_ends() {
        let (log, mut t) = logged_and_snapshot(2, 4);
        t.begin_snap_sync();
        t.apply(&log[2]); // 3 and 4 again: the tree already holds them
        t.apply(&log[3]);
        t.apply(&wrong(log[4].clone()));
        assert_eq!(t.digest_mismatches(), 0);
        t.end_snap_sync();
        t.apply(&wrong(log[5].clone()));
        assert_eq!(t.digest_mismatches(), 1);
    }

    #[test]
    fn wrong_snapshot_digest_is_reported_once_where_the_window_ends() {
        let (log, mut t) = logged_and_snapshot(2, 4);
        let mut d = digest_at(&log, 4);
        d.digest += 1; // as if a node had changed
        t.expect_snapshot_digest(Some(d));
        t.apply(&log[2]);
        assert_eq!(t.digest_mismatches(), 0);
        t.apply(&log[3]);
        assert_eq!(t.digest_mismatches(), 1);
        t.apply(&log[4]);
        assert_eq!(t.digest_mismatches(), 1);
    }

    #[test]
    fn digest_at_the_snapshot_zxid_is_compared_on_load() {
        let (log, mut t) = logged_and_snapshot(4, 4);
        t.expect_snapshot_digest(Some(digest_at(&log, 4)));
        assert_eq!(
            (t.pending_snapshot_digest(), t.digest_mismatches()),
            (None, 0)
        );
        let (log, mut t) = logged_and_snapshot(4, 4);
        let mut d = digest_at(&log, 4);
        d.digest += 1;
        t.expect_snapshot_digest(Some(d));
        assert_eq!(
            (t.pending_snapshot_digest(), t.digest_mismatches()),
            (None, 1)
        );
        t.apply(&log[4]);
        assert_eq!(t.digest_mismatches(), 1);
    }

    #[test]
    fn digest_older_than_the_snapshot_or_absent_is_dropped() {
        for d in [Some(1), Some(0), None] {
            let (log, mut t) = logged_and_snapshot(3, 3);
            t.expect_snapshot_digest(d.map(|z| {
                let mut d = digest_at(&log, 3);
                d.zxid = Zxid(z);
                d
            }));
            assert_eq!(t.pending_snapshot_digest(), None);
            t.apply(&wrong(log[3].clone())); // compared at once
            assert_eq!(t.digest_mismatches(), 1, "{d:?}");
        }
    }

    #[test]
    fn replay_passing_the_digest_zxid_leaves_it_pending() {
        let (log, mut t) = logged_and_snapshot(2, 4);
        t.expect_snapshot_digest(Some(digest_at(&log, 4)));
        t.apply(&log[2]);
        // 4 is missing: nothing is compared from here on (ZooKeeper's behaviour)
        t.apply(&wrong(log[4].clone()));
        t.apply(&wrong(log[5].clone()));
        assert_eq!(t.pending_snapshot_digest(), Some(digest_at(&log, 4)));
        assert_eq!(t.digest_mismatches(), 0);
    }

    #[test]
    fn snapshot_digest_of_another_version_is_not_compared() {
        let (log, mut t) = logged_and_snapshot(2, 4);
        let mut d = digest_at(&log, 4);
        d.version += 1;
        d.digest += 1;
        t.expect_snapshot_digest(Some(d));
        t.apply(&log[2]);
        t.apply(&log[3]);
        assert_eq!(
            (t.pending_snapshot_digest(), t.digest_mismatches()),
            (None, 0)
        );
        t.apply(&wrong(log[4].clone()));
        assert_eq!(t.digest_mismatches(), 1);
    }

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

    /// The one-buffer digest equals CRC-32 over path, data and stat fed separately, on
    /// both sides of the stack buffer's size.
    #[test]
    fn digest_is_the_same_above_and_below_the_stack_buffer() {
        let stat = StatPersisted {
            czxid: 0x1_0000_0001,
            mzxid: 0x1_0000_0002,
            pzxid: 0x1_0000_0003,
            ctime: 1_700_000_000_000,
            mtime: 1_700_000_000_001,
            version: 4,
            cversion: 5,
            aversion: 6,
            ephemeral_owner: 0x7777,
        };
        let path = "/a/digest";
        let fixed = DIGEST_STACK - path.len() - 60;
        for n in [0, 1, 100, fixed - 1, fixed, fixed + 1, 5000] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 % 256) as u8).collect();
            let mut h = crc32fast::Hasher::new();
            h.update(path.as_bytes());
            h.update(&data);
            for v in [stat.czxid, stat.mzxid, stat.pzxid, stat.ctime, stat.mtime] {
                h.update(&v.to_be_bytes());
            }
            for v in [stat.version, stat.cversion, stat.aversion] {
                h.update(&v.to_be_bytes());
            }
            h.update(&stat.ephemeral_owner.to_be_bytes());
            assert_eq!(
                node_digest(path, &data, &stat),
                h.finalize() as i64,
                "{n} bytes"
            );
        }
    }
}
