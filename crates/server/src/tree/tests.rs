//! DataTree unit tests with hand-built txns (replay tolerance, digest, reads).

use super::*;
use bytes::Bytes;
use rzk_proto::opcode::event;
use rzk_proto::records::Id;
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
            data: Bytes::from_static(b"x").into(),
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
    assert_eq!(t.last_zxid(), Zxid(10), "last zxid only grows");
    assert!(t.ephemerals(SessionId(5)).is_empty());
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
            data: Bytes::from_static(b"q").into(),
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

/// Everything observable about a tree, for comparing a clone before and after writes.
fn observe(t: &DataTree) -> impl PartialEq + std::fmt::Debug {
    (
        t.snapshot_nodes(),
        t.acl_entries(),
        t.digest(),
        t.node_count(),
        t.approximate_data_size(),
        t.ephemeral_sessions(),
        t.ephemerals(SessionId(5)),
        t.reaper_candidates(i64::MAX, true, 0, 100),
        t.get_children("/p0"),
    )
}

fn set_data(path: &str, data: &'static [u8]) -> Txn {
    Txn::SetData(SetDataTxn {
        path: path.into(),
        data: Bytes::from_static(data).into(),
        version: 7,
    })
}

/// A tree big enough for multi-level persistent maps (and child sets of several
/// B-tree nodes), with ephemerals, a container, a TTL node and a second ACL.
fn populated() -> (DataTree, i64) {
    let mut t = DataTree::new();
    t.set_extended_types(true);
    let mut z = 0;
    let mut next = || {
        z += 1;
        z
    };
    for p in 0..4 {
        t.apply(&rec(next(), 0, create(&format!("/p{p}"), false, -1)));
        for c in 0..700 {
            t.apply(&rec(
                next(),
                0,
                create(&format!("/p{p}/c{c:03}"), false, -1),
            ));
        }
    }
    for e in 0..50 {
        t.apply(&rec(next(), 5, create(&format!("/p1/e{e}"), true, -1)));
    }
    let container = Txn::CreateContainer(CreateContainerTxn {
        path: "/box".into(),
        data: Bytes::new().into(),
        acl: Acl::open_unsafe(),
        parent_cversion: -1,
    });
    t.apply(&rec(next(), 0, container));
    t.apply(&rec(next(), 0, create("/box/x", false, -1)));
    t.apply(&rec(
        next(),
        0,
        Txn::Delete(DeleteTxn {
            path: "/box/x".into(),
        }),
    ));
    let ttl = Txn::CreateTtl(CreateTtlTxn {
        path: "/ttl".into(),
        data: Bytes::new().into(),
        acl: Acl::open_unsafe(),
        parent_cversion: -1,
        ttl: 10,
    });
    t.apply(&rec(next(), 0, ttl));
    let acl = Txn::SetAcl(SetAclTxn {
        path: "/p0/c001".into(),
        acl: vec![Acl::new(rzk_proto::opcode::perms::READ, "world", "anyone")],
        version: 1,
    });
    t.apply(&rec(next(), 0, acl));
    (t, z)
}

#[test]
fn clone_is_an_independent_snapshot() {
    let (mut t, mut z) = populated();
    let snap = t.clone();
    let seen = observe(&snap);
    // Write everywhere in the original: data, deletes, creates, ACLs, a session close.
    for c in (0..700).step_by(3) {
        z += 1;
        t.apply(&rec(z, 0, set_data(&format!("/p0/c{c:03}"), b"changed")));
        z += 1;
        t.apply(&rec(
            z,
            0,
            Txn::Delete(DeleteTxn {
                path: format!("/p2/c{c:03}"),
            }),
        ));
        z += 1;
        t.apply(&rec(z, 0, create(&format!("/p3/n{c:03}"), false, -1)));
    }
    z += 1;
    t.apply(&rec(
        z,
        0,
        Txn::Delete(DeleteTxn {
            path: "/box".into(),
        }),
    ));
    z += 1;
    t.apply(&rec(
        z,
        0,
        Txn::Delete(DeleteTxn {
            path: "/p0/c001".into(),
        }),
    ));
    z += 1;
    let close = CloseSessionTxn {
        paths_to_delete: (0..50).map(|e| format!("/p1/e{e}")).collect(),
    };
    t.apply(&rec(z, 5, Txn::CloseSession(Some(close))));
    assert_eq!(observe(&snap), seen, "the clone must not see later writes");
    assert_eq!(snap.digest(), snap.recompute_digest());
    assert_eq!(t.digest(), t.recompute_digest());
    assert!(t.ephemerals(SessionId(5)).is_empty());
    assert_eq!(snap.ephemerals(SessionId(5)).len(), 50);
    assert!(!t.exists("/box") && snap.exists("/box"));
    assert_ne!(t.get_data("/p0/c000"), snap.get_data("/p0/c000"));
    // ... and the other way round: writes to the clone leave the original alone.
    let seen = observe(&t);
    let mut snap = snap;
    z += 1;
    snap.apply(&rec(z, 0, set_data("/p3/c000", b"clone")));
    z += 1;
    snap.apply(&rec(
        z,
        0,
        Txn::Delete(DeleteTxn {
            path: "/ttl".into(),
        }),
    ));
    assert_eq!(observe(&t), seen);
}

#[test]
fn snapshot_walk_rebuilds_an_identical_tree() {
    let (t, _) = populated();
    let mut b = TreeBuilder::new();
    for (i, acl) in t.acl_entries() {
        b.add_acl(i, acl);
    }
    for n in t.snapshot_nodes() {
        b.add_node(n).unwrap();
    }
    let mut u = b.finish(t.last_zxid()).unwrap();
    u.set_extended_types(true);
    assert_eq!(observe(&u), observe(&t));
    assert_eq!(u.digest(), u.recompute_digest());
    // children come out sorted, whatever order they were created in
    let (kids, _) = u.get_children("/p0").unwrap();
    assert!(kids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(kids.len(), 700);
}

#[test]
fn replayed_create_over_an_existing_node_keeps_it_and_installs_the_acl() {
    let mut t = DataTree::new();
    t.apply(&rec(1, 0, create("/a", false, 1)));
    t.apply(&rec(2, 0, set_data("/a", b"kept")));
    let (digest, size, count) = (t.digest(), t.approximate_data_size(), t.node_count());
    let read_only = vec![Acl::new(rzk_proto::opcode::perms::READ, "world", "anyone")];
    let replay = Txn::Create(
        1,
        CreateTxn {
            path: "/a".into(),
            data: Bytes::from_static(b"replayed").into(),
            acl: read_only.clone(),
            ephemeral: true,
            parent_cversion: 1,
        },
    );
    let r = t.apply(&rec(3, 9, replay));
    assert_eq!(r.reply, TxnReply::Error(ErrorCode::NodeExists));
    assert!(r.changes.is_empty());
    assert_eq!(t.get_data("/a").unwrap().0.as_ref(), b"kept");
    assert_eq!(t.get_acl("/a").unwrap().0, read_only);
    assert!(t.ephemerals(SessionId(9)).is_empty());
    assert_eq!(
        (t.digest(), t.approximate_data_size(), t.node_count()),
        (digest, size, count)
    );
    assert_eq!(t.digest(), t.recompute_digest());
    assert_eq!(t.get_children("/").unwrap().0, vec!["a", "zookeeper"]);
}

fn create_with(path: &str, data: Data, pcv: i32) -> Txn {
    Txn::Create(
        1,
        CreateTxn {
            path: path.into(),
            data,
            acl: Acl::open_unsafe(),
            ephemeral: false,
            parent_cversion: pcv,
        },
    )
}

/// Null data (a create or setData without data) stays null through apply, reads and
/// the snapshot walk; it hashes and sizes like empty data, as in ZooKeeper.
#[test]
fn null_data_is_kept_apart_from_empty() {
    let mut t = DataTree::new();
    t.apply(&rec(1, 0, create_with("/n", Data::NULL, 1)));
    t.apply(&rec(2, 0, create_with("/e", Data::empty(), 2)));
    let (n, ns) = t.get_data("/n").unwrap();
    let (e, es) = t.get_data("/e").unwrap();
    assert!(n.is_null());
    assert!(!e.is_null() && e.is_empty());
    assert_eq!((ns.data_length, es.data_length), (0, 0));
    let size = t.approximate_data_size();
    // the digest of a null node equals that of the same node with empty data
    let null_digest = t.digest();
    let mut u = DataTree::new();
    u.apply(&rec(1, 0, create_with("/n", Data::empty(), 1)));
    u.apply(&rec(2, 0, create_with("/e", Data::empty(), 2)));
    assert_eq!(u.digest(), null_digest);

    // setData: null -> bytes -> null, and empty stays non-null
    t.apply(&rec(3, 0, set_data("/n", b"v")));
    assert_eq!(&*t.get_data("/n").unwrap().0, b"v");
    let to_null = Txn::SetData(SetDataTxn {
        path: "/n".into(),
        data: Data::NULL,
        version: 8,
    });
    t.apply(&rec(4, 0, to_null));
    assert!(t.get_data("/n").unwrap().0.is_null());
    assert_eq!(t.approximate_data_size(), size);

    // the snapshot walk carries null through a rebuild
    let mut b = TreeBuilder::new();
    for (i, acl) in t.acl_entries() {
        b.add_acl(i, acl);
    }
    for n in t.snapshot_nodes() {
        b.add_node(n).unwrap();
    }
    let back = b.finish(t.last_zxid()).unwrap();
    assert!(back.get_data("/n").unwrap().0.is_null());
    assert!(!back.get_data("/e").unwrap().0.is_null());
    assert!(!back.get_data("/zookeeper").unwrap().0.is_null());
    assert_eq!(back.digest(), t.digest());
}

#[test]
fn config_node_set_outside_txns() {
    let mut t = DataTree::new();
    let digest = t.digest();
    let size = t.approximate_data_size();
    let text = "server.1=a:1:2:participant\nserver.2=b:1:2:participant\nversion=0";
    let change = t.set_config_node(text, 0x1_0000_0000, 1234);
    assert_eq!(change.path, "/zookeeper/config");
    assert_eq!(&t.config_node_data()[..], text.as_bytes());
    let (data, st) = t.get_data("/zookeeper/config").unwrap();
    assert_eq!(&data[..], text.as_bytes());
    assert_eq!(
        (st.mzxid, st.mtime, st.version, st.aversion),
        (0x1_0000_0000, 1234, -1, -1)
    );
    assert_eq!(
        (st.czxid, st.ctime, st.data_length),
        (0, 0, text.len() as i32)
    );
    // Nodes under /zookeeper/ are outside the digest, as in ZooKeeper.
    assert_eq!(t.digest(), digest);
    assert_eq!(t.approximate_data_size(), size + text.len() as u64);
    // Set again (a learner after its sync): replaces, does not add.
    t.set_config_node("version=0", 0, 99);
    assert_eq!(t.approximate_data_size(), size + 9);
}

/// Slot probing (tree/node.rs): with hashes cut to 3 bits, almost every path collides
/// and removals leave tombstones in long probe runs. Random creates and deletes must leave the
/// same tree (paths, data, stats, children in name order, digest) as a tree whose paths
/// never collide, and a clone taken midway must keep its own contents.
#[test]
fn colliding_path_hashes_keep_the_tree_exact() {
    // 8 home slots at the bottom of the key space, then at the top (runs go on from 0)
    for fill in [0, u64::MAX - 0x7] {
        colliding_path_hashes_keep_the_tree_exact_with(node::NodeMap::with_hash_bits(0x7, fill));
    }
}

fn colliding_path_hashes_keep_the_tree_exact_with(index: node::NodeMap) {
    let mut plain = DataTree::new();
    let mut coll = DataTree::new_in(index);
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut frozen = None;
    for zxid in 1..=3000i64 {
        let r = next();
        let parent = ["/", "/p", "/p/q", "/r"][(r % 4) as usize];
        let name = format!("n{}", (r >> 8) % 40);
        let path = if parent == "/" {
            format!("/{name}")
        } else {
            format!("{parent}/{name}")
        };
        let txn = match (r >> 20) % 5 {
            0 | 1 => create(&path, false, -1),
            2 => create(["/p", "/p/q", "/r"][((r >> 24) % 3) as usize], false, -1),
            3 => Txn::Delete(DeleteTxn { path: path.clone() }),
            _ => Txn::SetData(SetDataTxn {
                path: path.clone(),
                data: Bytes::from(vec![b'd'; ((r >> 28) % 50) as usize]).into(),
                version: 1,
            }),
        };
        let a = plain.apply(&rec(zxid, 5, txn.clone()));
        let b = coll.apply(&rec(zxid, 5, txn));
        assert_eq!(a, b, "zxid {zxid}");
        if zxid == 1500 {
            frozen = Some((coll.clone(), coll.snapshot_nodes()));
        }
    }
    assert_eq!(plain.snapshot_nodes(), coll.snapshot_nodes());
    assert_eq!(plain.digest(), coll.digest());
    assert_eq!(coll.digest(), coll.recompute_digest());
    for p in ["/", "/p", "/p/q", "/r"] {
        assert_eq!(plain.get_children(p), coll.get_children(p), "{p}");
    }
    let (clone, at_clone) = frozen.expect("cloned at 1500");
    assert_eq!(clone.snapshot_nodes(), at_clone, "a clone keeps its nodes");
    // every node is found through its probe run
    for n in coll.snapshot_nodes() {
        let p = if n.path.is_empty() { "/" } else { &n.path };
        assert!(coll.exists(p), "{p}");
    }
}

/// A snapshot load with colliding hashes (a 3-bit index: long probe runs) gives the
/// same tree as the one written, which then changes as the original does.
#[test]
fn a_tree_built_from_a_snapshot_with_colliding_hashes_keeps_working() {
    let mut plain = DataTree::new();
    for (zxid, p) in ["/p", "/p/q", "/r", "/r/s", "/r/s/t"].iter().enumerate() {
        plain.apply(&rec(zxid as i64 + 1, 5, create(p, false, -1)));
    }
    for i in 0..300i64 {
        let parent = ["/", "/p", "/p/q", "/r/s/t"][(i % 4) as usize];
        let path = format!("{}/n{i}", if parent == "/" { "" } else { parent });
        plain.apply(&rec(10 + i, 5, create(&path, false, -1)));
    }
    // (mask, fill): 8 home slots; 1; all; 8 at the top of the key space, so that the
    // probe runs go on from key 0
    for (mask, fill) in [(0x7, 0), (0, 0), (u64::MAX, 0), (0x7, u64::MAX - 0x7)] {
        let mut b = TreeBuilder::with_hash_bits(mask, fill);
        for (idx, acl) in plain.acl_entries() {
            b.add_acl(idx, acl);
        }
        // the walk's order (pre-order, siblings in index order)
        let mut nodes = Vec::new();
        plain.for_each_snapshot_node(|path, data, acl, stat| {
            nodes.push(SnapshotNode::copied(path, data, acl, stat))
        });
        for n in nodes {
            b.add_node(n).expect("node");
        }
        let mut built = b.finish(plain.last_zxid()).expect("tree");
        assert_eq!(
            built.snapshot_nodes(),
            plain.snapshot_nodes(),
            "mask {mask:x} fill {fill:x}"
        );
        assert_eq!(built.digest(), plain.digest());
        assert_eq!(built.node_count(), plain.node_count());
        let mut copy = plain.clone();
        for i in 0..300i64 {
            let parent = ["/", "/p", "/p/q", "/r/s/t"][(i % 4) as usize];
            let path = format!("{}/n{i}", if parent == "/" { "" } else { parent });
            let txn = if i % 3 == 0 {
                Txn::Delete(DeleteTxn { path })
            } else {
                create(&format!("{path}x"), false, -1)
            };
            assert_eq!(
                copy.apply(&rec(1000 + i, 5, txn.clone())),
                built.apply(&rec(1000 + i, 5, txn)),
                "mask {mask:x} fill {fill:x}, {i}"
            );
        }
        assert_eq!(built.snapshot_nodes(), copy.snapshot_nodes());
        for p in ["/", "/p", "/p/q", "/r", "/r/s/t"] {
            assert_eq!(built.get_children(p), copy.get_children(p), "{p}");
        }
        assert_eq!(built.recompute_digest(), copy.digest());
    }
}

/// A replay over a fuzzy snapshot may delete a node that still has children (the
/// snapshot already holds a child the log creates later). Lookups go through parents, so
/// the children leave the tree with it; re-creating the paths then gives the tree and
/// the digest ZooKeeper ends with (its `nodes.put` replaces the orphans).
#[test]
fn deleting_a_node_with_children_drops_them_and_a_recreate_matches_zookeeper() {
    let mut t = DataTree::new();
    t.apply(&rec(1, 5, create("/a", false, -1)));
    t.apply(&rec(2, 5, create("/a/b", false, -1)));
    t.apply(&rec(3, 5, create("/a/b/c", true, -1)));
    let count = t.node_count();
    let r = t.apply(&rec(4, 5, Txn::Delete(DeleteTxn { path: "/a".into() })));
    assert_eq!(r.reply, TxnReply::Deleted);
    assert_eq!(t.node_count(), count - 3);
    assert_eq!(t.digest(), t.recompute_digest());
    assert!(t.ephemerals(SessionId(5)).is_empty(), "owner index follows");
    t.apply(&rec(5, 5, create("/a", false, -1)));
    t.apply(&rec(6, 5, create("/a/b", false, -1)));
    assert_eq!(
        t.get_children("/a").map(|c| c.0),
        Some(vec!["b".to_string()])
    );
    assert_eq!(t.digest(), t.recompute_digest());
    assert_eq!(t.node_count(), count - 1);
    let r = t.apply(&rec(
        7,
        5,
        Txn::Delete(DeleteTxn {
            path: "/a/b".into(),
        }),
    ));
    assert_eq!(r.reply, TxnReply::Deleted);
    assert_eq!(t.digest(), t.recompute_digest());
}

/// A tree loaded from a snapshot without `/zookeeper` gets it (and `/zookeeper/config`)
/// when the membership is written, once: later writes replace the data.
#[test]
fn config_node_on_a_tree_without_zookeeper_node_is_added_once() {
    let mut b = TreeBuilder::new();
    b.add_node(SnapshotNode {
        path: String::new(),
        data: Data::from(Some(Bytes::new())),
        acl: -1,
        stat: StatPersisted::default(),
    })
    .expect("root");
    let mut t = b.finish(Zxid(1)).expect("tree");
    let before = t.node_count();
    t.set_config_node("server.1=a:1:2", 1, 5);
    t.set_config_node("server.1=a:1:3", 2, 6);
    assert_eq!(t.node_count(), before + 2);
    assert_eq!(&*t.config_node_data(), b"server.1=a:1:3");
    assert_eq!(
        t.get_children("/zookeeper").map(|c| c.0),
        Some(vec!["config".to_string()])
    );
    assert_eq!(t.digest(), t.recompute_digest());
}

/// Review (session 13): insert_child with every node in ONE probe run (mask 0), same
/// names under different parents, a node named like its parent, odd paths (empty
/// names, "//", trailing "/", non-ASCII, long), replayed creates over existing nodes
/// and deletes of missing children: the colliding tree answers as the plain one.
#[test]
fn one_probe_run_index_matches_the_plain_tree() {
    for fill in [0, u64::MAX, u64::MAX - 1] {
        let mut plain = DataTree::new();
        let mut coll = DataTree::new_in(node::NodeMap::with_hash_bits(0, fill));
        let mut rng: u64 = 0x1234_5678_9abc_def1 ^ fill;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let long = "L".repeat(3000);
        let parents = ["/", "/a", "/a/a", "/b", "/a/b", "/\u{e9}", "//", "/a/"];
        for zxid in 1..=4000i64 {
            let r = next();
            let parent = parents[(r % parents.len() as u64) as usize];
            let names = ["a", "b", "c", "\u{e9}", "", "x\u{10000}", long.as_str()];
            let name = names[((r >> 8) % names.len() as u64) as usize];
            let path = if parent == "/" {
                format!("/{name}")
            } else {
                format!("{parent}/{name}")
            };
            let txn = match (r >> 20) % 6 {
                0..=2 => create(
                    &path,
                    (r >> 30) % 3 == 0,
                    if (r >> 33) % 2 == 0 { -1 } else { 7 },
                ),
                3 => Txn::Delete(DeleteTxn { path: path.clone() }),
                4 => create(parent, false, -1),
                _ => Txn::SetData(SetDataTxn {
                    path: path.clone(),
                    data: Bytes::from(vec![b'd'; ((r >> 28) % 600) as usize]).into(),
                    version: 1,
                }),
            };
            let a = plain.apply(&rec(zxid, 5, txn.clone()));
            let b = coll.apply(&rec(zxid, 5, txn));
            assert_eq!(a, b, "zxid {zxid} {path:?}");
        }
        assert_eq!(plain.snapshot_nodes(), coll.snapshot_nodes());
        assert_eq!(plain.digest(), coll.digest());
        assert_eq!(coll.digest(), coll.recompute_digest());
        assert_eq!(plain.digest(), plain.recompute_digest());
        for p in ["/", "/a", "/a/a", "/b", "/a/b", "/\u{e9}"] {
            assert_eq!(plain.get_children(p), coll.get_children(p), "{p}");
        }
        for n in coll.snapshot_nodes() {
            let p = if n.path.is_empty() { "/" } else { &n.path };
            assert!(coll.exists(p), "{p}");
        }
    }
}

/// A snapshot walk's visitor that keeps an owned copy of each node it is shown.
fn visit_into(
    v: &mut Vec<SnapshotNode>,
) -> impl FnMut(&str, Option<&[u8]>, i64, &StatPersisted) + '_ {
    |path, data, acl, stat| v.push(SnapshotNode::copied(path, data, acl, stat))
}

/// A snapshot's detached order visits what the tree's walk visits, at the moment it was
/// taken, while the live tree changes; and it leaves the live tree's index unshared (so
/// the writer changes buckets in place instead of copying them for the snapshot).
#[test]
fn a_snapshot_order_keeps_the_nodes_and_releases_the_index() {
    let mut t = DataTree::new();
    let mut zxid = 0;
    let mut next = || {
        zxid += 1;
        zxid
    };
    for p in ["/w", "/d", "/d/e", "/d/e/f", "/d/g"] {
        t.apply(&rec(next(), 5, create(p, false, -1)));
    }
    // more children than NAME_ORDER_MAX: index order; and a null-data node
    for i in 0..(snapshot::NAME_ORDER_MAX as i64 * 3) {
        t.apply(&rec(next(), 5, create(&format!("/w/c{i}"), false, -1)));
    }
    t.apply(&rec(
        next(),
        5,
        Txn::Create(
            1,
            CreateTxn {
                path: "/d/e/f/null".into(),
                data: Data::NULL,
                acl: Acl::open_unsafe(),
                ephemeral: false,
                parent_cversion: -1,
            },
        ),
    ));
    // a node with its own ACL (an ACL cache entry besides the open one)
    let own_acl = vec![Acl {
        perms: 31,
        id: Id::new("digest", "u:x"),
    }];
    t.apply(&rec(
        next(),
        5,
        Txn::Create(
            1,
            CreateTxn {
                path: "/d/own".into(),
                data: Bytes::from_static(b"o").into(),
                acl: own_acl,
                ephemeral: false,
                parent_cversion: -1,
            },
        ),
    ));
    let mut before = Vec::new();
    t.for_each_snapshot_node(visit_into(&mut before));
    let (digest, last, acls) = (t.digest(), t.last_zxid(), t.acl_entries());
    assert!(!acls.is_empty());

    let clone = t.clone();
    assert!(t.nodes.index_is_shared(), "a clone shares the index");
    let order = clone.into_snapshot_order();
    assert!(
        !t.nodes.index_is_shared(),
        "the order holds no part of the index"
    );
    assert_eq!(
        (order.len(), order.digest(), order.last_zxid()),
        (before.len(), digest, last)
    );
    assert_eq!(order.acl_entries(), &acls[..]);

    // the live tree changes: data, a create, a delete
    t.apply(&rec(
        next(),
        5,
        Txn::SetData(SetDataTxn {
            path: "/w/c3".into(),
            data: Bytes::from_static(b"changed").into(),
            version: -1,
        }),
    ));
    t.apply(&rec(next(), 5, create("/w/new", false, -1)));
    t.apply(&rec(
        next(),
        5,
        Txn::Delete(DeleteTxn {
            path: "/d/g".into(),
        }),
    ));
    t.apply(&rec(
        next(),
        5,
        Txn::SetAcl(SetAclTxn {
            path: "/d/own".into(),
            acl: vec![Acl {
                perms: 1,
                id: Id::new("digest", "v:y"),
            }],
            version: -1,
        }),
    ));
    assert_ne!(t.acl_entries(), acls);
    let untouched = |t: &DataTree| t.nodes.get("/w/c5").map(Node::is_unique);
    assert_eq!(untouched(&t), Some(false), "the order holds the node");
    let mut after = Vec::new();
    t.for_each_snapshot_node(visit_into(&mut after));
    assert_ne!(after, before);

    let mut visited = Vec::new();
    order.for_each(visit_into(&mut visited));
    assert_eq!(visited, before, "the order is the tree as it was");
    assert!(visited
        .iter()
        .any(|v| v.path == "/d/e/f/null" && v.data.is_null()));
    assert_eq!(untouched(&t), Some(true), "written nodes are released");
}

/// Checks every children set of `t` against the path index: its keys come strictly
/// ascending (what the sorted cursor needs), each is a live node of the index (no
/// tombstone, nothing missing), the sorted cursor finds the same nodes as `get_key`
/// (also when asked the neighbouring keys, tombstones and other parents' children, in
/// between), and getChildren lists them all.
fn children_sets_match_the_index(t: &DataTree, what: &str) {
    let mut paths = vec!["/".to_owned()];
    while let Some(path) = paths.pop() {
        let n = t.nodes.get(&path).expect("a listed path is found");
        let keys: Vec<u64> = n.child_keys().collect();
        assert_eq!(keys.len(), n.num_children(), "{what}: {path}");
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "{what}: {path}: children keys out of order"
        );
        let by_get: Vec<&Node> = keys
            .iter()
            .map(|&k| t.nodes.get_key(k).expect("a child key is a live node"))
            .collect();
        let mut cursor = t.nodes.sorted_get_key();
        let by_cursor: Vec<&Node> = keys.iter().filter_map(|&k| cursor(k)).collect();
        assert_eq!(
            by_cursor.len(),
            by_get.len(),
            "{what}: {path}: cursor missed a child"
        );
        assert!(by_cursor
            .iter()
            .zip(&by_get)
            .all(|(a, b)| std::ptr::eq(*a, *b)));
        // Neighbours in between (other nodes, tombstones, free keys).
        let mut asked: Vec<u64> = keys
            .iter()
            .flat_map(|&k| [k.wrapping_sub(1), k, k.wrapping_add(1)])
            .collect();
        asked.sort_unstable();
        asked.dedup();
        let mut cursor = t.nodes.sorted_get_key();
        for k in asked {
            let (a, b) = (cursor(k), t.nodes.get_key(k));
            assert!(
                a.map(|n| n as *const Node) == b.map(|n| n as *const Node),
                "{what}: {path}: key {k:#x}"
            );
        }
        let mut names: Vec<String> = by_get.iter().map(|c| c.name().to_owned()).collect();
        names.sort_unstable();
        assert_eq!(
            t.get_children(&path).map(|c| c.0),
            Some(names.clone()),
            "{what}"
        );
        for name in names {
            paths.push(if path == "/" {
                format!("/{name}")
            } else {
                format!("{path}/{name}")
            });
        }
    }
}

/// Index shapes for [`children_cursor_finds_every_child`]: (mask, fill) of the home
/// slots (none; 8 slots at the bottom, at the top (runs wrap to key 0); one slot; one
/// slot at the very top; 16 x 64 slots spread over the directory's buckets).
const HASH_SHAPES: [(u64, u64); 6] = [
    (u64::MAX, 0),
    (0x7, 0),
    (0x7, u64::MAX - 0x7),
    (0, 0),
    (0, u64::MAX),
    (0xf000_0000_0000_003f, 0),
];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Random creates and deletes (large sibling sets whose children sets and index grow
    /// and shrink; colliding hashes: long probe runs with tombstones), then a snapshot
    /// load of the result and more changes to the loaded tree: at each stage every
    /// children set is strictly ascending and the sorted cursor finds every child
    /// (`children_sets_match_the_index`), and the tree (its snapshot walk, which takes
    /// large sets through the cursor) is the one a tree without collisions has.
    #[test]
    fn children_cursor_finds_every_child(
        shape in 0usize..HASH_SHAPES.len(),
        ops in proptest::collection::vec((0u8..5, 0u16..300, 0u8..4), 1..1500),
        more in proptest::collection::vec((0u8..5, 0u16..300, 0u8..4), 1..400),
    ) {
        let (mask, fill) = HASH_SHAPES[shape];
        let txn = |&(parent, name, op): &(u8, u16, u8)| {
            let parent = ["", "/big", "/big/n1", "/p", "/big/n2"][parent as usize];
            let path = format!("{parent}/n{name}");
            match op {
                0 => Txn::Delete(DeleteTxn { path }),
                1 => create(["/big", "/p", "/big/n1", "/big/n2"][name as usize % 4], false, -1),
                _ => create(&path, false, -1),
            }
        };
        let mut plain = DataTree::new();
        let mut coll = DataTree::new_in(node::NodeMap::with_hash_bits(mask, fill));
        let mut zxid = 0i64;
        for op in &ops {
            zxid += 1;
            let t = txn(op);
            proptest::prop_assert_eq!(
                plain.apply(&rec(zxid, 5, t.clone())),
                coll.apply(&rec(zxid, 5, t))
            );
        }
        children_sets_match_the_index(&coll, "changed");
        proptest::prop_assert_eq!(coll.snapshot_nodes(), plain.snapshot_nodes());

        let mut b = TreeBuilder::with_hash_bits(mask, fill);
        for (idx, acl) in coll.acl_entries() {
            b.add_acl(idx, acl);
        }
        let mut nodes = Vec::new();
        coll.for_each_snapshot_node(|path, data, acl, stat| {
            nodes.push(SnapshotNode::copied(path, data, acl, stat))
        });
        for n in nodes {
            b.add_node(n).expect("node");
        }
        let mut built = b.finish(coll.last_zxid()).expect("tree");
        children_sets_match_the_index(&built, "loaded");
        proptest::prop_assert_eq!(built.snapshot_nodes(), plain.snapshot_nodes());
        for op in &more {
            zxid += 1;
            let t = txn(op);
            proptest::prop_assert_eq!(
                plain.apply(&rec(zxid, 5, t.clone())),
                built.apply(&rec(zxid, 5, t))
            );
        }
        children_sets_match_the_index(&built, "loaded, then changed");
        proptest::prop_assert_eq!(built.snapshot_nodes(), plain.snapshot_nodes());
        proptest::prop_assert_eq!(built.digest(), plain.digest());
    }
}

/// A snapshot whose ACL map names an index wider than a node holds (unused, so purged
/// at load) must not leave setACL or create unable to store a new list: in a release
/// build the next index was 2^31, setACL answered OK and left its node pointing at the
/// list it had just freed, i.e. with no ACL (anyone could then write it), and create
/// failed with SYSTEMERROR (a break-it review, session 57).
#[test]
fn acl_changes_after_a_snapshot_with_a_wide_acl_index_keep_their_lists() {
    use rzk_proto::opcode::perms;
    // A create of `path` whose ACL is `id`'s digest.
    let create_with = |path: &str, id: &str, parent_cversion| {
        Txn::Create(
            1,
            CreateTxn {
                path: path.into(),
                data: Bytes::new().into(),
                acl: vec![Acl::new(perms::ALL, "digest", id)],
                ephemeral: false,
                parent_cversion,
            },
        )
    };
    let mut t = DataTree::new();
    t.apply(&rec(1, 0, create_with("/d", "owner:x", 1)));
    let mut b = TreeBuilder::new();
    for (i, acl) in t.acl_entries() {
        b.add_acl(i, acl);
    }
    b.add_acl(
        i64::from(i32::MAX),
        vec![Acl::new(perms::ALL, "digest", "unused:x")],
    );
    for n in t.snapshot_nodes() {
        b.add_node(n).unwrap();
    }
    let mut u = b.finish(t.last_zxid()).unwrap();
    // A list the tree does not hold yet (DataTree::new has world:anyone READ).
    let read_only = vec![Acl::new(perms::READ, "digest", "reader:x")];
    let out = u.apply(&rec(
        2,
        0,
        Txn::SetAcl(SetAclTxn {
            path: "/d".into(),
            acl: read_only.clone(),
            version: 1,
        }),
    ));
    assert!(matches!(out.reply, TxnReply::SetAcl(_)), "setACL: {out:?}");
    assert_eq!(u.get_acl("/d").unwrap().0, read_only);
    let out = u.apply(&rec(3, 0, create_with("/e", "v:y", 2)));
    assert!(
        matches!(out.reply, TxnReply::Created { .. }),
        "create: {out:?}"
    );
    assert_eq!(u.get_acl("/e").unwrap().0.len(), 1);
    assert_eq!(u.get_acl("/d").unwrap().0, read_only);
}
