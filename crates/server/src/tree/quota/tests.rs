//! Quota bookkeeping in the tree: ZooKeeper's StatsTrack text, the example,
//! stats following creates / setData / deletes / session close, rebuild on load.

use super::*;
use crate::tree::{SnapshotNode, TreeBuilder};
use bytes::Bytes;
use rzk_proto::records::Acl;
use rzk_proto::txn::*;
use rzk_proto::ErrorCode;

fn rec(zxid: i64, client: i64, txn: Txn) -> TxnRecord {
    TxnRecord {
        header: TxnHeader {
            client_id: client,
            cxid: 1,
            zxid,
            time: 1000 + zxid,
            txn_type: txn.txn_type(),
        },
        txn,
        digest: None,
    }
}

/// Applies creates / sets / deletes with increasing zxids.
struct T {
    tree: DataTree,
    zxid: i64,
}

impl T {
    fn new() -> T {
        T {
            tree: DataTree::new(),
            zxid: 0,
        }
    }
    fn apply(&mut self, client: i64, txn: Txn) -> crate::tree::TxnReply {
        self.zxid += 1;
        self.tree.apply(&rec(self.zxid, client, txn)).reply
    }
    fn create_as(&mut self, client: i64, path: &str, data: &str) {
        let r = self.apply(
            client,
            Txn::Create(
                1,
                CreateTxn {
                    path: path.into(),
                    data: Bytes::copy_from_slice(data.as_bytes()).into(),
                    acl: Acl::open_unsafe(),
                    ephemeral: client != 0,
                    parent_cversion: -1,
                },
            ),
        );
        assert!(
            matches!(r, crate::tree::TxnReply::Created { .. }),
            "{path}: {r:?}"
        );
    }
    fn create(&mut self, path: &str, data: &str) {
        self.create_as(0, path, data)
    }
    fn set(&mut self, path: &str, data: &str) {
        self.apply(
            0,
            Txn::SetData(SetDataTxn {
                path: path.into(),
                data: Bytes::copy_from_slice(data.as_bytes()).into(),
                version: 1,
            }),
        );
    }
    fn delete(&mut self, path: &str) {
        self.apply(0, Txn::Delete(DeleteTxn { path: path.into() }));
    }
    fn data(&self, path: &str) -> String {
        let (d, _) = self.tree.get_data(path).expect(path);
        String::from_utf8_lossy(&d).into_owned()
    }
    /// What zkCli's `setquota` does for a path without a quota yet.
    fn setquota(&mut self, path: &str, limits: &str) {
        let mut q = String::from(QUOTA_ROOT);
        for part in path.split('/').filter(|p| !p.is_empty()) {
            q.push('/');
            q.push_str(part);
            if !self.tree.exists(&q) {
                self.create(&q, "");
            }
        }
        self.create(&limit_path(path), limits);
        self.create(&stat_path(path), "count=0,bytes=0");
    }
}

#[test]
fn stats_track_text_is_zookeepers() {
    let s = StatsTrack::parse("count=2,bytes=15").unwrap();
    assert_eq!((s.count(), s.bytes(), s.count_hard_limit()), (2, 15, -1));
    assert_eq!(s.to_string(), "count=2,bytes=15");
    let mut l = StatsTrack::default();
    l.set(COUNT, 10);
    l.set(BYTES, -1);
    l.set(COUNT_HARD_LIMIT, -1);
    l.set(BYTE_HARD_LIMIT, 100);
    let text = l.to_string();
    assert_eq!(
        text,
        "count=10,bytes=-1=;byteHardLimit=100;countHardLimit=-1"
    );
    assert_eq!(StatsTrack::parse(&text).unwrap(), l);
    assert_eq!(StatsTrack::parse("").unwrap().count(), -1);
    assert_eq!(
        StatsTrack::parse("count=,bytes=3").unwrap_err().entry,
        "count="
    );
    assert_eq!(
        StatsTrack::parse("count==,bytes=3").unwrap_err().entry,
        "count=="
    );
    assert_eq!(StatsTrack::parse("count==5").unwrap().count(), -1);
    assert!(StatsTrack::parse("count=x").is_err());
    assert!(StatsTrack::parse(",count=1").is_err());
    assert_eq!(StatsTrack::parse("count=1;;bytes=2,").unwrap().bytes(), 2);
}

#[test]
fn setquota_counts_the_existing_subtree_and_follows_writes() {
    let mut t = T::new();
    t.create("/app", "12345");
    t.create("/app/x", "0123456789");
    t.create("/other", "abc");
    t.setquota("/app", "count=10,bytes=-1");
    assert_eq!(t.data(&stat_path("/app")), "count=2,bytes=15");
    assert_eq!(t.tree.quota_roots(), vec!["/app".to_string()]);

    t.create("/app/y", "abc");
    assert_eq!(t.data(&stat_path("/app")), "count=3,bytes=18");
    t.set("/app/x", "0");
    assert_eq!(t.data(&stat_path("/app")), "count=3,bytes=9");
    t.delete("/app/y");
    assert_eq!(t.data(&stat_path("/app")), "count=2,bytes=6");
    t.create("/other/z", "zz");
    t.create("/apple", "zz");
    assert_eq!(t.data(&stat_path("/app")), "count=2,bytes=6");

    // Ephemerals deleted at session close count too.
    t.create_as(7, "/app/e1", "eeee");
    t.create_as(7, "/app/x/e2", "e");
    assert_eq!(t.data(&stat_path("/app")), "count=4,bytes=11");
    t.apply(
        7,
        Txn::CloseSession(Some(CloseSessionTxn {
            paths_to_delete: vec!["/app/e1".into(), "/app/x/e2".into()],
        })),
    );
    assert_eq!(t.data(&stat_path("/app")), "count=2,bytes=6");
}

#[test]
fn stats_updates_change_neither_digest_nor_data_size_nor_stat() {
    let mut t = T::new();
    t.create("/app", "12345");
    t.setquota("/app", "count=10,bytes=-1");
    let stat_before = t.tree.stat(&stat_path("/app")).unwrap();
    let (digest, size) = (t.tree.digest(), t.tree.approximate_data_size());
    // the same writes without a quota move the digest and size by the same amounts
    let mut plain = T::new();
    plain.create("/app", "12345");
    plain.setquota("/elsewhere-not-created-but-unused", "count=1");
    let (pd, ps) = (plain.tree.digest(), plain.tree.approximate_data_size());
    t.create("/app/a", "xyz");
    plain.create("/app/a", "xyz");
    assert_eq!(
        t.tree.digest().wrapping_sub(digest),
        plain.tree.digest().wrapping_sub(pd)
    );
    assert_eq!(
        t.tree.approximate_data_size() - size,
        plain.tree.approximate_data_size() - ps
    );
    assert_eq!(t.tree.digest(), t.tree.recompute_digest());
    let stat_after = t.tree.stat(&stat_path("/app")).unwrap();
    assert_eq!(stat_before.mzxid, stat_after.mzxid);
    assert_eq!(stat_before.version, stat_after.version);
    assert_eq!(t.data(&stat_path("/app")), "count=2,bytes=8");
}

#[test]
fn deepest_quota_root_counts_and_delquota_ends_counting() {
    let mut t = T::new();
    t.create("/a", "");
    t.create("/a/b", "");
    t.setquota("/a", "count=100,bytes=-1");
    t.setquota("/a/b", "count=100,bytes=-1");
    assert_eq!(t.data(&stat_path("/a")), "count=2,bytes=0");
    assert_eq!(t.data(&stat_path("/a/b")), "count=1,bytes=0");
    t.create("/a/b/c", "1");
    t.create("/a/d", "22");
    // as ZooKeeper: only the deepest root is updated
    assert_eq!(t.data(&stat_path("/a")), "count=3,bytes=2");
    assert_eq!(t.data(&stat_path("/a/b")), "count=2,bytes=1");
    // delquota /a/b: the limits node goes first
    t.delete(&limit_path("/a/b"));
    t.delete(&stat_path("/a/b"));
    t.create("/a/b/e", "333");
    assert_eq!(t.data(&stat_path("/a")), "count=4,bytes=5");
    assert_eq!(t.tree.quota_root_of("/a/b/e").as_deref(), Some("/a"));
    assert_eq!(t.tree.quota_root_of("/ab"), None);
    assert_eq!(t.tree.quota_root_of("/"), None);
}

#[test]
fn loading_a_tree_rebuilds_roots_and_recounts_stats() {
    let mut t = T::new();
    t.create("/app", "12345");
    t.create("/app/x", "0123456789");
    t.setquota("/app", "count=10,bytes=-1");
    // a stale stats text in the stored tree is replaced on load, as ZooKeeper does
    let mut b = TreeBuilder::new();
    for (idx, acl) in t.tree.acl_entries() {
        b.add_acl(idx, acl);
    }
    let mut paths: Vec<String> = t
        .tree
        .snapshot_nodes()
        .into_iter()
        .map(|n| {
            if n.path.is_empty() {
                "/".to_owned()
            } else {
                n.path
            }
        })
        .collect();
    paths.sort();
    for p in paths {
        let n = t.tree.nodes.get(p.as_str()).unwrap();
        let data = if p == stat_path("/app") {
            Bytes::from_static(b"count=0,bytes=0").into()
        } else {
            n.data_value()
        };
        b.add_node(SnapshotNode {
            path: if p == "/" { String::new() } else { p.clone() },
            data,
            acl: n.acl(),
            stat: n.stat().clone(),
        })
        .unwrap();
    }
    let loaded = b.finish(rzk_proto::Zxid(t.zxid)).unwrap();
    let (d, _) = loaded.get_data(&stat_path("/app")).unwrap();
    assert_eq!(&d[..], b"count=2,bytes=15");
    assert_eq!(loaded.quota_roots(), vec!["/app".to_string()]);
    assert_eq!(loaded.digest(), t.tree.digest());
}

impl DataTree {
    fn check_quota_ok(
        &self,
        path: &str,
        old_len: Option<usize>,
        new_len: usize,
    ) -> Vec<QuotaExcess> {
        match self.check_quota(path, old_len, new_len) {
            Ok(v) => v,
            Err(e) => panic!("quota nodes unreadable: {e:?}"),
        }
    }
}

#[test]
fn check_quota_names_a_quota_node_it_cannot_read() {
    let mut t = T::new();
    t.create("/f", "");
    t.setquota("/f", "count= 1,bytes=-1");
    let e = t.tree.check_quota("/f/a", None, 0).unwrap_err();
    assert_eq!(e.path, limit_path("/f"));
    // a stats node is read only when a limit applies
    let mut t = T::new();
    t.create("/g", "");
    t.setquota("/g", "count=5,bytes=-1");
    t.set(&stat_path("/g"), "garbage");
    assert_eq!(
        t.tree.check_quota("/g/a", None, 0).unwrap_err().path,
        stat_path("/g")
    );
    assert_eq!(t.tree.check_quota("/g", Some(0), 0).map(|v| v.len()), Ok(0));
}

#[test]
fn check_quota_reports_soft_and_hard_limits_as_zookeeper() {
    let mut t = T::new();
    t.create("/q", "1234");
    t.setquota("/q", "count=2,bytes=-1=;byteHardLimit=10;countHardLimit=-1");
    assert_eq!(t.data(&stat_path("/q")), "count=1,bytes=4");
    assert!(t.tree.check_quota_ok("/q/a", None, 3).is_empty());
    t.create("/q/a", "123");
    // a third node crosses the soft count limit only
    let e = t.tree.check_quota_ok("/q/b", None, 0);
    assert_eq!(e.len(), 1);
    assert!(!e[0].hard);
    assert_eq!(
        e[0].to_string(),
        "Quota exceeded: /q [current count=3, softCountLimit=2]"
    );
    // 7 + 4 bytes > hard 10
    let e = t.tree.check_quota_ok("/q/b", None, 4);
    assert_eq!(e.last().map(|x| (x.hard, x.what)), Some((true, BYTES)));
    assert_eq!(
        e.last().unwrap().to_string(),
        "Quota exceeded: /q [current bytes=11, hardByteLimit=10]"
    );
    // setData: only the difference counts
    assert!(t.tree.check_quota_ok("/q/a", Some(3), 6).is_empty());
    assert!(t
        .tree
        .check_quota_ok("/q/a", Some(3), 7)
        .iter()
        .any(|x| x.hard));
    assert!(t.tree.check_quota_ok("/elsewhere", None, 1000).is_empty());
    let _ = ErrorCode::QuotaExceeded;
}

#[test]
fn usage_by_namespace_as_zookeepers_mntr() {
    let mut t = T::new();
    t.create("/app", "12345");
    t.create("/app/x", "0123456789");
    t.create("/app/y", "");
    t.setquota(
        "/app/x",
        "count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=3",
    );
    t.setquota("/app/y", "count=2,bytes=100");
    let m = t.tree.quota_usage_by_namespace();
    assert_eq!(m.len(), 1);
    assert_eq!(
        m["app"],
        QuotaUsage {
            count_limit: 3 + 2,
            bytes_limit: -1 + 100,
            count_usage: 2,
            bytes_usage: 10,
        }
    );
}

/// The stats and limits nodes are znodes any client allowed to write them can set to
/// anything: sums of their values wrap as Java's `long` does (ZooKeeper 3.8 answers a
/// create under `count=9223372036854775807` with OK and stats `count=-9223372036854775808`)
/// instead of panicking the quorum thread (debug builds checked the overflow; a
/// break-it review, session 57).
#[test]
fn quota_sums_of_client_written_values_wrap_as_java() {
    let mut t = T::new();
    t.create("/ov", "");
    t.setquota("/ov", "count=5,bytes=-1");
    t.set(
        &stat_path("/ov"),
        "count=9223372036854775807,bytes=9223372036854775807",
    );
    assert!(t.tree.check_quota_ok("/ov/x", None, 3).is_empty());
    assert!(t.tree.check_quota_ok("/ov", Some(0), 3).is_empty());
    t.create("/ov/x", "abc");
    assert_eq!(
        t.data(&stat_path("/ov")),
        "count=-9223372036854775808,bytes=-9223372036854775806"
    );
    t.create("/ov2", "");
    t.create("/ov2/a", "");
    t.create("/ov2/b", "");
    t.setquota(
        "/ov2/a",
        "count=9223372036854775807,bytes=9223372036854775807",
    );
    t.setquota(
        "/ov2/b",
        "count=9223372036854775807,bytes=9223372036854775807",
    );
    t.set(&stat_path("/ov2/a"), "count=9223372036854775807,bytes=1");
    t.set(&stat_path("/ov2/b"), "count=9223372036854775807,bytes=1");
    let m = t.tree.quota_usage_by_namespace();
    assert_eq!(m["ov2"].count_limit, -2);
    assert_eq!(m["ov2"].count_usage, -2);
}
