//! DataTree unit tests with hand-built txns (replay tolerance, digest, reads).

use super::*;
use bytes::Bytes;
use rzk_proto::opcode::event;
use rzk_proto::txn::*;

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

fn create(path: &str, eph: bool, pcv: i32) -> Txn {
    Txn::Create(
        1,
        CreateTxn {
            path: path.into(),
            data: Bytes::from_static(b"x"),
            acl: Acl::open_unsafe(),
            ephemeral: eph,
            parent_cversion: pcv,
        },
    )
}

#[test]
fn replayed_create_raises_parent_cversion() {
    let mut t = DataTree::new();
    t.apply(&rec(1, 5, create("/a", false, 1)));
    // replaying an older create over the node: NODEEXISTS, parent untouched
    let r = t.apply(&rec(2, 5, create("/a", false, 1)));
    assert_eq!(r.reply, TxnReply::Error(ErrorCode::NodeExists));
    assert_eq!(t.stat_persisted("/").unwrap().cversion, 1);
    // ... but a higher parentCVersion is taken, with the zxid as pzxid
    t.apply(&rec(3, 5, create("/a", false, 4)));
    let s = t.stat_persisted("/").unwrap();
    assert_eq!((s.cversion, s.pzxid), (4, 3));
    // legacy -1 means "increment"
    t.apply(&rec(4, 5, create("/b", false, -1)));
    assert_eq!(t.stat_persisted("/").unwrap().cversion, 5);
}

#[test]
fn delete_keeps_higher_pzxid_and_reports_changes() {
    let mut t = DataTree::new();
    t.apply(&rec(10, 5, create("/a", true, 1)));
    let r = t.apply(&rec(5, 5, Txn::Delete(DeleteTxn { path: "/a".into() })));
    assert_eq!(r.reply, TxnReply::Deleted);
    assert_eq!(t.stat_persisted("/").unwrap().pzxid, 10);
    assert_eq!(t.last_zxid(), 10, "last zxid only grows");
    assert!(t.ephemerals(5).is_empty());
    assert_eq!(r.changes[0].event_type, event::NODE_DELETED);
    assert_eq!(r.changes[1].path, "/");
    assert_eq!(r.changes[1].event_type, event::NODE_CHILDREN_CHANGED);
    let r = t.apply(&rec(11, 5, Txn::Delete(DeleteTxn { path: "/a".into() })));
    assert_eq!(r.reply, TxnReply::Error(ErrorCode::NoNode));
    let r = t.apply(&rec(12, 5, Txn::Delete(DeleteTxn { path: "/".into() })));
    assert_eq!(r.reply, TxnReply::Error(ErrorCode::BadArguments));
    assert!(t.exists("/"));
}

#[test]
fn digest_tracks_changes_and_ignores_system_subtree() {
    let mut t = DataTree::new();
    let d0 = t.digest();
    assert_eq!(d0, t.recompute_digest());
    let r = t.apply(&rec(
        1,
        0,
        Txn::SetData(SetDataTxn {
            path: "/zookeeper/quota".into(),
            data: Bytes::from_static(b"q"),
            version: 1,
        }),
    ));
    assert!(matches!(r.reply, TxnReply::SetData(_)));
    assert_eq!(t.digest(), d0);
    t.apply(&rec(2, 0, create("/a", false, 1)));
    assert_ne!(t.digest(), d0);
    assert_eq!(t.digest(), t.recompute_digest());
    t.apply(&rec(3, 0, Txn::Delete(DeleteTxn { path: "/a".into() })));
    assert_eq!(t.digest(), t.recompute_digest());
    // a wrong digest in a record is counted, not fatal
    let mut r = rec(4, 0, Txn::error(ErrorCode::NoNode));
    r.digest = Some(TxnDigest {
        version: 2,
        tree_digest: 1,
    });
    t.apply(&r);
    assert_eq!(t.digest_mismatches(), 1);
}

#[test]
fn reads_and_counts() {
    let mut t = DataTree::new();
    t.apply(&rec(1, 0, create("/a", false, 1)));
    t.apply(&rec(2, 0, create("/a/b", false, 1)));
    t.apply(&rec(3, 0, create("/a/b/c", false, 1)));
    assert_eq!(t.all_children_number("/a"), Some(2));
    assert_eq!(t.all_children_number("/"), Some(6));
    assert_eq!(t.all_children_number("/nope"), None);
    assert_eq!(t.node_count(), 8);
    let (data, st) = t.get_data("/a/b").unwrap();
    assert_eq!(
        (data.as_ref(), st.num_children, st.cversion),
        (&b"x"[..], 1, 1)
    );
    assert_eq!(t.get_children("/a").unwrap().0, vec!["b"]);
    assert_eq!(t.approximate_data_size(), 44 + 2 + 1 + 4 + 1 + 6 + 1);
}
