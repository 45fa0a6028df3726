//! Digest checks at start-up on a data directory Apache ZooKeeper 3.8 wrote under write
//! load (fixtures/zk38-fuzzy, see its README): its snapshot is fuzzy (txns were applied
//! while it was written, so its trailer digest is at 0x680 while its name is 0x64c) and
//! the log txns 0x64d..=0x680 are replayed on top of it. ZooKeeper reports no digest
//! mismatch there; neither may rzk, on either reading (`Recovered::replay_log`, used by
//! tools and fuzz targets, and the server's start-up `storage::open::open` followed by
//! applying the logged txns one by one as the quorum applier does). Real mismatches are still counted: one per
//! wrong txn digest after the window, one for a changed node.

mod support;

use rzk_proto::txn::{TxnDigest, TxnRecord};
use rzk_proto::Data;
use rzk_server::config::Config;
use rzk_server::storage::db::{save_snapshot, SnapshotOptions};
use rzk_server::storage::files::Compression;
use rzk_server::storage::log_reader::LogIterator;
use rzk_server::storage::recovery::StartState;
use rzk_server::storage::snapshot::{read_snapshot, write_snapshot};
use rzk_server::storage::txnlog::{FileTxnLog, TxnLogConfig};
use rzk_server::storage::{open as recover, Replayed};
use rzk_server::tree::DataTree;
use std::fs;
use std::path::{Path, PathBuf};
use support::load;

/// The fixture snapshot's name zxid.
const SNAP: i64 = 0x64c;
/// The zxid of the digest in the fixture snapshot's trailer (end of the fuzzy window).
const SNAP_DIGEST_ZXID: i64 = 0x680;
/// The last logged txn.
const LAST: i64 = 0x71c;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zk38-fuzzy/version-2")
}

fn copy_fixture(to: &Path) {
    let v2 = to.join("version-2");
    fs::create_dir_all(&v2).unwrap();
    for e in fs::read_dir(fixture()).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), v2.join(e.file_name())).unwrap();
    }
}

/// The fixture's txns after its snapshot, in order.
fn fixture_txns() -> Vec<TxnRecord> {
    LogIterator::open(&fixture(), rzk_proto::Zxid(SNAP + 1))
        .unwrap()
        .map(|e| e.unwrap().record)
        .filter(|r| r.header.zxid > SNAP)
        .collect()
}

/// A data dir with the fixture's snapshot and `txns` as one log.
fn dir_with_txns(to: &Path, txns: &[TxnRecord]) {
    let v2 = to.join("version-2");
    fs::create_dir_all(&v2).unwrap();
    let snap = format!("snapshot.{SNAP:x}");
    fs::copy(fixture().join(&snap), v2.join(&snap)).unwrap();
    let cfg = TxnLogConfig {
        prealloc_size: 0,
        force_sync: false,
        size_limit: None,
    };
    let mut log = FileTxnLog::open(to, cfg).unwrap();
    for r in txns {
        log.append_record(r).unwrap();
    }
    log.close().unwrap();
}

/// The offline reading (`storage::open`, then `Recovered::replay_log`).
fn load_standalone(dir: &Path) -> Replayed {
    let db = load(dir, false).unwrap();
    assert_eq!(db.report.state, StartState::Loaded);
    db
}

/// A quorum member's start-up, then every logged txn applied in order as the quorum
/// applier does once it is committed. Returns the tree and, per txn, the tree's
/// mismatch count after applying it.
fn start_quorum_member(dir: &Path) -> (DataTree, Vec<(i64, u64)>) {
    let cfg = Config {
        data_dir: dir.to_path_buf(),
        data_log_dir: dir.to_path_buf(),
        ..Config::default()
    };
    let rec = recover(&cfg).unwrap();
    assert_eq!(rec.durable.snapshot_zxid.0, SNAP);
    let mut tree = rec.tree;
    let mut counts = Vec::new();
    for t in &rec.durable.log {
        let r = TxnRecord::decode(&t.payload).unwrap();
        tree.apply(&r);
        counts.push((r.header.zxid, tree.digest_mismatches()));
    }
    (tree, counts)
}

#[test]
fn fixture_snapshot_is_fuzzy_and_followed_by_its_window() {
    let s = read_snapshot(&fixture().join(format!("snapshot.{SNAP:x}"))).unwrap();
    let d = s.trailer.digest.expect("the snapshot has a digest");
    assert_eq!(d.zxid.0, SNAP_DIGEST_ZXID);
    assert!(d.zxid.0 > SNAP, "digest zxid past the snapshot's name zxid");
    let zxids: Vec<i64> = fixture_txns().iter().map(|r| r.header.zxid).collect();
    assert_eq!(zxids, (SNAP + 1..=LAST).collect::<Vec<_>>());
    assert!(fixture_txns().iter().all(|r| r.digest.is_some()));
}

#[test]
fn standalone_start_on_fuzzy_zookeeper_snapshot_reports_no_digest_mismatch() {
    let d = tempfile::tempdir().unwrap();
    copy_fixture(d.path());
    let db = load_standalone(d.path());
    assert_eq!(db.last_zxid.0, LAST);
    assert_eq!(db.report.txns_replayed, (LAST - SNAP) as u64);
    assert_eq!(db.tree.digest_mismatches(), 0);
    // the snapshot's digest was compared (and cleared) when the replay reached it
    assert_eq!(db.tree.pending_snapshot_digest(), None);
    // and the tree ends where ZooKeeper's did
    let last = fixture_txns().pop().unwrap();
    assert_eq!(Some(db.tree.digest()), last.digest.map(|x| x.tree_digest));
    assert_eq!(db.tree.digest(), db.tree.recompute_digest());
}

#[test]
fn quorum_start_on_fuzzy_zookeeper_snapshot_reports_no_digest_mismatch() {
    let d = tempfile::tempdir().unwrap();
    copy_fixture(d.path());
    let (tree, counts) = start_quorum_member(d.path());
    assert_eq!(counts.len(), (LAST - SNAP) as usize);
    assert_eq!(tree.digest_mismatches(), 0);
    assert_eq!(tree.pending_snapshot_digest(), None);
    let last = fixture_txns().pop().unwrap();
    assert_eq!(Some(tree.digest()), last.digest.map(|x| x.tree_digest));
}

/// The fixture's txns with `zxid`'s logged tree digest off by one.
fn txns_with_wrong_digest_at(zxid: i64) -> Vec<TxnRecord> {
    let mut txns = fixture_txns();
    let r = txns.iter_mut().find(|r| r.header.zxid == zxid).unwrap();
    let d = r.digest.clone().unwrap();
    r.digest = Some(TxnDigest {
        version: d.version,
        tree_digest: d.tree_digest.wrapping_add(1),
    });
    txns
}

#[test]
fn wrong_txn_digest_after_the_fuzzy_window_is_exactly_one_mismatch() {
    let bad = 0x6a0;
    let d = tempfile::tempdir().unwrap();
    dir_with_txns(d.path(), &txns_with_wrong_digest_at(bad));
    assert_eq!(load_standalone(d.path()).tree.digest_mismatches(), 1);

    let d = tempfile::tempdir().unwrap();
    dir_with_txns(d.path(), &txns_with_wrong_digest_at(bad));
    let (tree, counts) = start_quorum_member(d.path());
    assert_eq!(tree.digest_mismatches(), 1);
    for (zxid, n) in counts {
        assert_eq!(n, u64::from(zxid >= bad), "mismatches after 0x{zxid:x}");
    }
}

#[test]
fn wrong_txn_digest_at_the_snapshot_digest_zxid_is_one_mismatch() {
    // The txn at the snapshot digest's zxid ends the window: its own digest is compared
    // too, right after the snapshot's.
    let d = tempfile::tempdir().unwrap();
    dir_with_txns(d.path(), &txns_with_wrong_digest_at(SNAP_DIGEST_ZXID));
    assert_eq!(load_standalone(d.path()).tree.digest_mismatches(), 1);
}

#[test]
fn txn_digests_inside_the_fuzzy_window_are_not_compared() {
    // As in ZooKeeper: inside the window the tree holds some later txns already, so a
    // txn's digest says nothing about it.
    let d = tempfile::tempdir().unwrap();
    dir_with_txns(d.path(), &txns_with_wrong_digest_at(0x660));
    let db = load_standalone(d.path());
    assert_eq!(db.tree.digest_mismatches(), 0);
    assert_eq!(db.last_zxid.0, LAST);
}

/// Rewrites `snapshot` (same name and trailer) with one more byte in `path`'s data.
fn change_node_data(snapshot: &Path, path: &str) {
    let mut c = read_snapshot(snapshot).unwrap();
    let n = c.nodes.iter_mut().find(|n| n.path == path).unwrap();
    let mut data = n.data.to_vec();
    data.push(b'!');
    n.data = Data::from(data);
    let zxid = i64::from_str_radix(
        snapshot
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_start_matches("snapshot."),
        16,
    )
    .unwrap();
    fs::remove_file(snapshot).unwrap();
    write_snapshot(
        snapshot.parent().unwrap(),
        rzk_proto::Zxid(zxid),
        Compression::None,
        &c,
    )
    .unwrap();
}

#[test]
fn changed_node_in_a_complete_snapshot_is_exactly_one_mismatch() {
    // A snapshot whose digest is at its own zxid (not fuzzy) is checked as it loads.
    let d = tempfile::tempdir().unwrap();
    copy_fixture(d.path());
    let db = load_standalone(d.path());
    let sessions: Vec<(rzk_proto::SessionId, i32)> =
        db.sessions.iter().map(|(k, v)| (*k, *v)).collect();
    let out = tempfile::tempdir().unwrap();
    let snap = save_snapshot(
        db.tree.clone(),
        &sessions,
        out.path(),
        SnapshotOptions::default(),
    )
    .unwrap();
    assert_eq!(
        read_snapshot(&snap).unwrap().trailer.digest.unwrap().zxid.0,
        LAST
    );
    let db = load_standalone(out.path());
    assert_eq!(db.tree.digest_mismatches(), 0);

    change_node_data(&snap, "/rzk-bench");
    let db = load_standalone(out.path());
    assert_eq!(db.tree.digest_mismatches(), 1);
    let cfg = Config {
        data_dir: out.path().to_path_buf(),
        data_log_dir: out.path().to_path_buf(),
        ..Config::default()
    };
    assert_eq!(recover(&cfg).unwrap().tree.digest_mismatches(), 1);
}

#[test]
fn changed_node_in_a_fuzzy_snapshot_is_reported_when_the_window_ends() {
    // Nothing is compared inside the window; at its end the snapshot's digest does not
    // match (one), and as the node stays wrong, neither does any later txn's digest
    // (one each, as ZooKeeper counts them).
    let d = tempfile::tempdir().unwrap();
    copy_fixture(d.path());
    change_node_data(
        &d.path().join(format!("version-2/snapshot.{SNAP:x}")),
        "/rzk-bench",
    );
    let (_, counts) = start_quorum_member(d.path());
    for (zxid, n) in counts {
        let want = if zxid < SNAP_DIGEST_ZXID {
            0
        } else {
            1 + (zxid - SNAP_DIGEST_ZXID + 1) as u64
        };
        assert_eq!(n, want, "mismatches after 0x{zxid:x}");
    }
    let db = load_standalone(d.path());
    assert_eq!(
        db.tree.digest_mismatches(),
        1 + (LAST - SNAP_DIGEST_ZXID + 1) as u64
    );
}
