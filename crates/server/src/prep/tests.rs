//! Prep + apply scenarios: every op and error, the overlay with several writes in
//! flight, multi semantics, sessions, TTL/containers, and digest prediction.

use super::*;
use crate::tree::{ApplyResult, TxnReply};
use bytes::Bytes;
use proptest::prelude::*;
use rzk_proto::multi::OpResult;
use rzk_proto::opcode::event;
use rzk_proto::records::Stat;

const S1: SessionId = SessionId(0x100_0000_0001);
const S2: SessionId = SessionId(0x100_0000_0002);

struct H {
    tree: DataTree,
    prep: Prep,
    zxid: i64,
    time: i64,
    auth: AuthInfo,
}

impl H {
    fn new() -> H {
        H::with_ttl(false)
    }
    fn with_ttl(ttl: bool) -> H {
        let mut tree = DataTree::new();
        tree.set_extended_types(ttl);
        H {
            tree,
            prep: Prep::new(ttl),
            zxid: 0x1_0000_0000,
            time: 1_700_000_000_000,
            auth: AuthInfo::for_ip("127.0.0.1"),
        }
    }
    fn prepare(&mut self, session: SessionId, req: WriteRequest) -> TxnRecord {
        self.zxid += 1;
        self.time += 1;
        let auth = self.auth.clone();
        self.prep.prepare(
            &self.tree,
            session,
            1,
            &req,
            &auth,
            rzk_proto::Zxid(self.zxid),
            self.time,
        )
    }
    fn apply(&mut self, rec: &TxnRecord) -> ApplyResult {
        let r = self.tree.apply(rec);
        assert_eq!(
            self.tree.digest_mismatches(),
            0,
            "predicted digest differs after {rec:?}"
        );
        assert_eq!(self.tree.digest(), self.tree.recompute_digest());
        r
    }
    fn write(&mut self, session: SessionId, req: WriteRequest) -> ApplyResult {
        let rec = self.prepare(session, req);
        // Round-trip through the log encoding, as a follower would see it.
        let rec2 = TxnRecord::decode(&rec.encode()).expect("decodes");
        assert_eq!(rec2, rec);
        self.apply(&rec)
    }
    fn create(&mut self, path: &str, flags: i32) -> TxnReply {
        self.create_as(S1, path, flags, Acl::open_unsafe())
    }
    fn create_as(&mut self, s: SessionId, path: &str, flags: i32, acl: Vec<Acl>) -> TxnReply {
        self.write(s, create_req(15, path, flags, acl)).reply
    }
    fn delete(&mut self, path: &str, version: i32) -> TxnReply {
        self.write(S1, delete_req(path, version)).reply
    }
    fn stat(&self, path: &str) -> Stat {
        self.tree.stat(path).expect("node exists")
    }
}

fn create_req(op: i32, path: &str, flags: i32, acl: Vec<Acl>) -> WriteRequest {
    WriteRequest::Create {
        op,
        req: CreateRequest {
            path: path.into(),
            data: Bytes::from_static(b"d").into(),
            acl,
            flags,
        },
    }
}

fn delete_req(path: &str, version: i32) -> WriteRequest {
    WriteRequest::Delete(DeleteRequest {
        path: path.into(),
        version,
    })
}

fn set_data_req(path: &str, data: &'static [u8], version: i32) -> WriteRequest {
    WriteRequest::SetData(SetDataRequest {
        path: path.into(),
        data: Bytes::from_static(data).into(),
        version,
    })
}

fn err(c: ErrorCode) -> TxnReply {
    TxnReply::Error(c)
}

fn created_path(r: &TxnReply) -> String {
    match r {
        TxnReply::Created { path, .. } => path.clone(),
        other => panic!("expected created, got {other:?}"),
    }
}

#[test]
fn fresh_tree_matches_zookeeper() {
    let t = DataTree::new();
    let root = t.stat("/").unwrap();
    assert_eq!((root.cversion, root.num_children, root.pzxid), (-1, 1, 0));
    assert_eq!(t.node_count(), 5);
    assert_eq!(t.all_children_number("/"), Some(3));
    assert_eq!(t.all_children_number("/zookeeper"), Some(2));
    let (acl, st) = t.get_acl("/zookeeper/config").unwrap();
    assert_eq!(acl, vec![Acl::new(perms::READ, "world", "anyone")]);
    assert_eq!(st.aversion, -1);
    assert_eq!(
        t.get_children("/zookeeper").unwrap().0,
        vec!["config", "quota"]
    );
    assert_eq!(t.approximate_data_size(), 1 + 10 + 16 + 17);
}

#[test]
fn create_stat_and_parent_cversion() {
    let mut h = H::new();
    let r = h.create("/a", 0);
    let z = h.zxid;
    match r {
        TxnReply::Created { path, stat } => {
            assert_eq!(path, "/a");
            assert_eq!(
                stat,
                Stat {
                    czxid: z,
                    mzxid: z,
                    ctime: h.time,
                    mtime: h.time,
                    version: 0,
                    cversion: 0,
                    aversion: 0,
                    ephemeral_owner: 0,
                    data_length: 1,
                    num_children: 0,
                    pzxid: z
                }
            );
        }
        other => panic!("{other:?}"),
    }
    let root = h.stat("/");
    assert_eq!((root.cversion, root.num_children, root.pzxid), (0, 2, z));
    assert_eq!(h.delete("/a", 0), TxnReply::Deleted);
    let root = h.stat("/");
    assert_eq!(
        (root.cversion, root.num_children, root.pzxid),
        (1, 1, h.zxid)
    );
    assert_eq!(h.tree.last_zxid(), rzk_proto::Zxid(h.zxid));
}

#[test]
fn sequential_suffix_from_stored_cversion() {
    let mut h = H::new();
    h.create("/q", 0);
    assert_eq!(created_path(&h.create("/q/n-", 2)), "/q/n-0000000000");
    assert_eq!(created_path(&h.create("/q/n-", 3)), "/q/n-0000000001");
    h.delete("/q/n-0000000000", -1);
    assert_eq!(created_path(&h.create("/q/", 2)), "/q/0000000002");
    assert_eq!(h.stat("/q").cversion, 2 * 3 - 2);
}

#[test]
fn ephemerals_and_no_children_for_ephemerals() {
    let mut h = H::new();
    match h.create("/e", 1) {
        TxnReply::Created { stat, .. } => assert_eq!(stat.ephemeral_owner, S1.0),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.create("/e/c", 0), err(ErrorCode::NoChildrenForEphemerals));
    assert_eq!(h.tree.ephemerals(S1), vec!["/e"]);
    assert_eq!(h.tree.ephemeral_sessions(), vec![S1]);
    assert_eq!(h.tree.ephemerals_count(), 1);
}

#[test]
fn error_cases() {
    let mut h = H::new();
    h.create("/a", 0);
    h.create("/a/b", 0);
    let before = h.tree.digest();
    assert_eq!(h.create("/a", 0), err(ErrorCode::NodeExists));
    assert_eq!(h.create("/x/y", 0), err(ErrorCode::NoNode));
    assert_eq!(h.create("/a/", 0), err(ErrorCode::BadArguments));
    assert_eq!(h.create("a", 0), err(ErrorCode::BadArguments));
    assert_eq!(
        h.create("/a/./b", 0),
        err(ErrorCode::NoNode),
        "parent looked up first"
    );
    assert_eq!(h.create("/a/.", 0), err(ErrorCode::BadArguments));
    assert_eq!(h.create("/z", 7), err(ErrorCode::BadArguments));
    assert_eq!(h.create_as(S1, "/z", 0, vec![]), err(ErrorCode::InvalidAcl));
    assert_eq!(
        h.create_as(S1, "/z", 0, vec![Acl::new(31, "auth", "")]),
        err(ErrorCode::InvalidAcl)
    );
    assert_eq!(h.delete("/a", -1), err(ErrorCode::NotEmpty));
    assert_eq!(h.delete("/a/b", 5), err(ErrorCode::BadVersion));
    assert_eq!(h.delete("/nope", -1), err(ErrorCode::NoNode));
    for p in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
        assert_eq!(h.delete(p, -1), err(ErrorCode::BadArguments), "{p}");
    }
    let r = h.write(S1, set_data_req("/a", b"x", 3)).reply;
    assert_eq!(r, err(ErrorCode::BadVersion));
    let r = h.write(S1, set_data_req("/nope", b"x", -1)).reply;
    assert_eq!(r, err(ErrorCode::NoNode));
    let r = h.write(S1, set_data_req("/a/", b"x", -1)).reply;
    assert_eq!(r, err(ErrorCode::BadArguments));
    // Validated only when no node is found (prep looks the node up first): an invalid
    // path never names one, whatever its neighbours.
    for p in ["/a/./b", "/a//b", "/a/b/..", "/a/b/.", "a/b", "/a\u{1}"] {
        let r = h.write(S1, set_data_req(p, b"x", -1)).reply;
        assert_eq!(r, err(ErrorCode::BadArguments), "{p}");
    }
    assert_eq!(h.tree.digest(), before, "errors change nothing");
    // ...but consume a zxid each
    assert_eq!(h.tree.last_zxid(), rzk_proto::Zxid(h.zxid));
    // createTTL without extended types
    let ttl = WriteRequest::CreateTtl(CreateTtlRequest {
        path: "/t".into(),
        acl: Acl::open_unsafe(),
        flags: 5,
        ttl: 100,
        ..Default::default()
    });
    assert_eq!(h.write(S1, ttl).reply, err(ErrorCode::Unimplemented));
}

#[test]
fn set_data_and_set_acl_versions() {
    let mut h = H::new();
    h.create("/a", 0);
    let r = h.write(S1, set_data_req("/a", b"xyz", 0)).reply;
    let TxnReply::SetData(st) = r else {
        panic!("{r:?}")
    };
    assert_eq!((st.version, st.data_length, st.mzxid), (1, 3, h.zxid));
    let r = h.write(S1, set_data_req("/a", b"", -1)).reply;
    let TxnReply::SetData(st) = r else {
        panic!("{r:?}")
    };
    assert_eq!((st.version, st.data_length), (2, 0));
    let acl = vec![Acl::new(perms::READ, "world", "anyone")];
    let req = |v| {
        WriteRequest::SetAcl(SetAclRequest {
            path: "/a".into(),
            acl: acl.clone(),
            version: v,
        })
    };
    assert_eq!(h.write(S1, req(4)).reply, err(ErrorCode::BadVersion));
    let r = h.write(S1, req(0)).reply;
    let TxnReply::SetAcl(st) = r else {
        panic!("{r:?}")
    };
    assert_eq!(st.aversion, 1);
    // Now only READ: setData, setACL and create below it are NOAUTH.
    assert_eq!(
        h.write(S1, set_data_req("/a", b"", -1)).reply,
        err(ErrorCode::NoAuth)
    );
    assert_eq!(h.write(S1, req(-1)).reply, err(ErrorCode::NoAuth));
    assert_eq!(h.create("/a/b", 0), err(ErrorCode::NoAuth));
    assert_eq!(h.tree.get_acl("/a").unwrap().0, acl);
}

#[test]
fn acl_rules_for_create_and_delete() {
    let mut h = H::new();
    let mut bob = AuthInfo::for_ip("127.0.0.1");
    bob.add_auth("digest", b"bob:secret", None).unwrap();
    h.auth = bob.clone();
    // `auth` expands to bob's digest id
    h.create_as(S1, "/p", 0, vec![Acl::new(perms::ALL, "auth", "")]);
    let (acl, _) = h.tree.get_acl("/p").unwrap();
    assert_eq!(
        acl,
        vec![Acl::new(31, "digest", "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=")]
    );
    h.create("/p/c", 0);
    h.auth = AuthInfo::for_ip("127.0.0.1");
    assert_eq!(h.create("/p/d", 0), err(ErrorCode::NoAuth));
    assert_eq!(h.delete("/p/c", -1), err(ErrorCode::NoAuth));
    // ip ACL with a prefix: CREATE|DELETE for 127.0.0.0/8
    h.auth = bob;
    h.create_as(
        S1,
        "/ip",
        0,
        vec![Acl::new(perms::CREATE | perms::DELETE, "ip", "127.0.0.0/8")],
    );
    h.auth = AuthInfo::for_ip("127.1.2.3");
    assert!(matches!(h.create("/ip/x", 0), TxnReply::Created { .. }));
    assert_eq!(h.delete("/ip/x", -1), TxnReply::Deleted);
    h.auth = AuthInfo::for_ip("10.0.0.1");
    assert_eq!(h.create("/ip/x", 0), err(ErrorCode::NoAuth));
    // super passes everything
    h.auth = AuthInfo::superuser();
    assert_eq!(h.delete("/p/c", -1), TxnReply::Deleted);
}

#[test]
fn overlay_two_creates_in_flight() {
    let mut h = H::new();
    let r1 = h.prepare(S1, create_req(1, "/x", 0, Acl::open_unsafe()));
    let r2 = h.prepare(S1, create_req(1, "/x", 0, Acl::open_unsafe()));
    assert!(matches!(r1.txn, Txn::Create(1, _)));
    assert_eq!(r2.txn, Txn::error(ErrorCode::NodeExists));
    // sequence numbers from pending cversions
    let r3 = h.prepare(S1, create_req(15, "/s", 2, Acl::open_unsafe()));
    let r4 = h.prepare(S1, create_req(15, "/s", 2, Acl::open_unsafe()));
    let paths: Vec<String> = [&r3, &r4]
        .iter()
        .map(|r| match &r.txn {
            Txn::Create(_, c) => c.path.clone(),
            t => panic!("{t:?}"),
        })
        .collect();
    assert_eq!(paths, vec!["/s0000000001", "/s0000000002"]);
    // delete of an in-flight node, then create below a deleted parent
    let r5 = h.prepare(S1, delete_req("/x", 0));
    assert!(matches!(r5.txn, Txn::Delete(_)));
    let r6 = h.prepare(S1, create_req(1, "/x/y", 0, Acl::open_unsafe()));
    assert_eq!(r6.txn, Txn::error(ErrorCode::NoNode));
    assert_eq!(h.prep.outstanding(), 4);
    for r in [&r1, &r2, &r3, &r4, &r5, &r6] {
        h.apply(r);
    }
    assert!(!h.tree.exists("/x"));
    assert!(h.tree.exists("/s0000000002"));
    // after applying, the overlay is pruned on next prepare
    let r7 = h.prepare(S1, create_req(1, "/x", 0, Acl::open_unsafe()));
    assert!(matches!(r7.txn, Txn::Create(..)));
    assert_eq!(h.prep.outstanding(), 1);
    h.apply(&r7);
    h.prep.applied(rzk_proto::Zxid(h.zxid));
    assert_eq!(h.prep.outstanding(), 0);
}

#[test]
fn overlay_version_checks_in_flight() {
    let mut h = H::new();
    h.create("/v", 0);
    let a = h.prepare(S1, set_data_req("/v", b"1", 0));
    let b = h.prepare(S1, set_data_req("/v", b"2", 0));
    let c = h.prepare(S1, set_data_req("/v", b"3", 1));
    assert!(matches!(a.txn, Txn::SetData(_)));
    assert_eq!(b.txn, Txn::error(ErrorCode::BadVersion));
    assert!(matches!(&c.txn, Txn::SetData(s) if s.version == 2));
    for r in [&a, &b, &c] {
        h.apply(r);
    }
    assert_eq!(&*h.tree.get_data("/v").unwrap().0, b"3");
}

fn multi(ops: Vec<MultiOp>) -> WriteRequest {
    WriteRequest::Multi(MultiRequest { ops })
}

fn mcreate(path: &str) -> MultiOp {
    MultiOp::Create(
        1,
        CreateRequest {
            path: path.into(),
            acl: Acl::open_unsafe(),
            ..Default::default()
        },
    )
}

fn mdelete(path: &str) -> MultiOp {
    MultiOp::Delete(DeleteRequest {
        path: path.into(),
        version: -1,
    })
}

fn mcheck(path: &str, version: i32) -> MultiOp {
    MultiOp::Check(rzk_proto::records::CheckVersionRequest {
        path: path.into(),
        version,
    })
}

#[test]
fn multi_success_one_zxid_and_nested_semantics() {
    let mut h = H::new();
    let r = h.write(
        S1,
        multi(vec![
            mcreate("/m"),
            mcreate("/m/a"),
            mdelete("/m/a"),
            mcheck("/m", 0),
            MultiOp::SetData(SetDataRequest {
                path: "/m".into(),
                data: Bytes::from_static(b"z").into(),
                version: 0,
            }),
            MultiOp::Create(
                15,
                CreateRequest {
                    path: "/m/b".into(),
                    acl: Acl::open_unsafe(),
                    ..Default::default()
                },
            ),
        ]),
    );
    let TxnReply::Multi(res) = &r.reply else {
        panic!("{r:?}")
    };
    assert_eq!(res[0], OpResult::Create("/m".into()));
    assert_eq!(res[1], OpResult::Create("/m/a".into()));
    assert_eq!(res[2], OpResult::Delete);
    assert_eq!(res[3], OpResult::Check);
    assert!(matches!(&res[4], OpResult::SetData(s) if s.version == 1 && s.mzxid == h.zxid));
    assert!(matches!(&res[5], OpResult::Create2(p, s) if p == "/m/b" && s.czxid == h.zxid));
    let m = h.stat("/m");
    assert_eq!(
        (m.czxid, m.cversion, m.num_children),
        (h.zxid, 2 * 2 - 1, 1)
    );
    let kinds: Vec<i32> = r.changes.iter().map(|c| c.event_type).collect();
    assert_eq!(
        kinds,
        vec![
            event::NODE_CREATED,
            event::NODE_CHILDREN_CHANGED,
            event::NODE_CREATED,
            event::NODE_CHILDREN_CHANGED,
            event::NODE_DELETED,
            event::NODE_CHILDREN_CHANGED,
            event::NODE_DATA_CHANGED,
            event::NODE_CREATED,
            event::NODE_CHILDREN_CHANGED
        ]
    );
}

#[test]
fn multi_failure_shape_and_atomicity() {
    let mut h = H::new();
    h.create("/k", 0);
    let digest = h.tree.digest();
    let rec = h.prepare(
        S1,
        multi(vec![mcreate("/k/1"), mcheck("/k", 7), mcreate("/k/2")]),
    );
    assert_eq!(rec.header.txn_type, OpCode::Multi.code());
    let Txn::Multi(subs) = &rec.txn else { panic!() };
    assert!(matches!(subs[0], Txn::Create(1, _)));
    assert_eq!(subs[1], Txn::error(ErrorCode::BadVersion));
    assert_eq!(subs[2], Txn::error(ErrorCode::RuntimeInconsistency));
    // the overlay was rolled back: /k/1 may be created by a later in-flight request
    let next = h.prepare(S1, create_req(1, "/k/1", 0, Acl::open_unsafe()));
    assert!(matches!(next.txn, Txn::Create(..)));
    let r = h.apply(&rec);
    assert_eq!(
        r.reply,
        TxnReply::Multi(vec![
            OpResult::Error(0),
            OpResult::Error(-103),
            OpResult::Error(-2)
        ])
    );
    assert!(r.changes.is_empty());
    assert_eq!(h.tree.digest(), digest);
    assert!(!h.tree.exists("/k/1"));
    h.apply(&next);
    assert!(h.tree.exists("/k/1"));
}

#[test]
fn multi_delete_then_create_same_path() {
    let mut h = H::new();
    h.create("/r", 0);
    h.write(S1, set_data_req("/r", b"old", -1));
    let r = h.write(S1, multi(vec![mdelete("/r"), mcreate("/r")]));
    assert!(
        matches!(r.reply, TxnReply::Multi(ref v) if v.iter().all(|x| !matches!(x, OpResult::Error(_))))
    );
    assert_eq!(h.stat("/r").version, 0);
}

/// A session whose ephemerals' paths pass jute.maxbuffer is closed by a txn with an
/// empty list, so its log record stays readable; applied, it deletes the same nodes,
/// in-flight ones included, as the listing form does.
#[test]
fn close_session_with_a_list_over_jute_maxbuffer_is_logged_without_paths() {
    let run = |max: usize| {
        let mut h = H::new();
        h.prep = Prep::new(false).with_max_close_paths_bytes(max);
        h.create("/p", 0);
        for i in 0..5 {
            h.create_as(S1, &format!("/p/e{i}"), 1, Acl::open_unsafe());
        }
        h.create_as(S2, "/p/other", 1, Acl::open_unsafe());
        let pending = h.prepare(S1, create_req(1, "/p/late", 1, Acl::open_unsafe()));
        let close = h.prepare(S1, WriteRequest::CloseSession);
        h.apply(&pending);
        let r = h.apply(&close);
        assert_eq!(r.reply, TxnReply::SessionClosed);
        assert_eq!(h.tree.get_children("/p").unwrap().0, vec!["other"]);
        assert!(h.tree.ephemerals(S1).is_empty());
        (close.txn, h.stat("/p"), h.tree.digest())
    };
    // 5 paths of 5 bytes and one of 7: a 4 + 5 x 9 + 11 = 60-byte body.
    let (listed, stat_listed, digest_listed) = run(60);
    assert!(
        matches!(&listed, Txn::CloseSession(Some(t)) if t.paths_to_delete.len() == 6),
        "{listed:?}"
    );
    let (bare, stat_bare, digest_bare) = run(59);
    assert!(
        matches!(&bare, Txn::CloseSession(Some(t)) if t.paths_to_delete.is_empty()),
        "{bare:?}"
    );
    assert_eq!(stat_bare, stat_listed);
    assert_eq!(digest_bare, digest_listed);
}

#[test]
fn close_session_deletes_ephemerals_incl_in_flight() {
    let mut h = H::new();
    h.create("/p", 0);
    h.create_as(S1, "/p/e1", 1, Acl::open_unsafe());
    h.create_as(S2, "/p/other", 1, Acl::open_unsafe());
    let pending = h.prepare(S1, create_req(1, "/p/e2", 1, Acl::open_unsafe()));
    let close = h.prepare(S1, WriteRequest::CloseSession);
    let Txn::CloseSession(Some(body)) = &close.txn else {
        panic!("{close:?}")
    };
    assert_eq!(body.paths_to_delete, vec!["/p/e1", "/p/e2"]);
    h.apply(&pending);
    let r = h.apply(&close);
    assert_eq!(r.reply, TxnReply::SessionClosed);
    assert_eq!(h.tree.get_children("/p").unwrap().0, vec!["other"]);
    assert!(h.tree.ephemerals(S1).is_empty());
    assert_eq!(h.stat("/p").pzxid, h.zxid);
    // Old-format closeSession without a body uses the tree's own list.
    h.zxid += 1;
    let old = TxnRecord {
        header: TxnHeader {
            client_id: S2.0,
            cxid: 0,
            zxid: h.zxid,
            time: h.time,
            txn_type: OpCode::CloseSession.code(),
        },
        txn: Txn::CloseSession(None),
        digest: None,
    };
    h.tree.apply(&old);
    assert!(h.tree.get_children("/p").unwrap().0.is_empty());
}

#[test]
fn create_session_is_a_txn() {
    let mut h = H::new();
    let r = h.write(S1, WriteRequest::CreateSession { timeout_ms: 30000 });
    assert_eq!(r.reply, TxnReply::SessionCreated);
    assert_eq!(h.tree.last_zxid(), rzk_proto::Zxid(h.zxid));
}

#[test]
fn ttl_nodes() {
    let mut h = H::with_ttl(true);
    let ttl_req = |flags, ttl| {
        WriteRequest::CreateTtl(CreateTtlRequest {
            path: "/t".into(),
            acl: Acl::open_unsafe(),
            flags,
            ttl,
            ..Default::default()
        })
    };
    assert_eq!(
        h.write(S1, ttl_req(5, 0)).reply,
        err(ErrorCode::BadArguments)
    );
    assert_eq!(
        h.write(S1, ttl_req(5, 1 << 40)).reply,
        err(ErrorCode::BadArguments)
    );
    assert_eq!(
        h.write(S1, ttl_req(0, 5)).reply,
        err(ErrorCode::BadArguments)
    );
    assert_eq!(
        h.create("/t", 5),
        err(ErrorCode::BadArguments),
        "create with a TTL mode needs a ttl"
    );
    let r = h.write(S1, ttl_req(5, 1000));
    let TxnReply::Created { stat, .. } = r.reply else {
        panic!()
    };
    assert_eq!(stat.ephemeral_owner, 0);
    let stored = h.tree.stat_persisted("/t").unwrap();
    assert_eq!(stored.ephemeral_owner as u64, 0xff00_0000_0000_03e8);
    let mtime = stored.mtime;
    assert!(h
        .tree
        .reaper_candidates(mtime + 1000, true, 0, 10)
        .is_empty());
    assert_eq!(
        h.tree.reaper_candidates(mtime + 1001, true, 0, 10),
        vec!["/t"]
    );
    assert!(h
        .tree
        .reaper_candidates(mtime + 1001, false, 0, 10)
        .is_empty());
    // a TTL node may have children
    assert!(matches!(h.create("/t/c", 0), TxnReply::Created { .. }));
    assert!(h
        .tree
        .reaper_candidates(mtime + 5000, true, 0, 10)
        .is_empty());
    // opcode 21 with a non-TTL mode and negative ttl: a plain create2
    let r = h.write(
        S1,
        WriteRequest::CreateTtl(CreateTtlRequest {
            path: "/plain".into(),
            acl: Acl::open_unsafe(),
            flags: 0,
            ttl: -1,
            ..Default::default()
        }),
    );
    assert!(matches!(r.reply, TxnReply::Created { .. }));
}

#[test]
fn containers() {
    let mut h = H::new();
    let r = h.write(S1, create_req(19, "/c", 4, Acl::open_unsafe()));
    let TxnReply::Created { stat, .. } = r.reply else {
        panic!()
    };
    assert_eq!(stat.ephemeral_owner, 0);
    assert!(
        h.tree.reaper_candidates(i64::MAX, false, 0, 10).is_empty(),
        "never used"
    );
    // znode.container.maxNeverUsedIntervalMs: reaped once unmodified for longer.
    let m = stat.mtime;
    assert!(h
        .tree
        .reaper_candidates(m + 1000, false, 1000, 10)
        .is_empty());
    assert_eq!(
        h.tree.reaper_candidates(m + 1001, false, 1000, 10),
        vec!["/c"]
    );
    h.create("/c/x", 0);
    let dc = |p: &str| WriteRequest::DeleteContainer(p.into());
    assert_eq!(
        h.write(SessionId::NONE, dc("/c")).reply,
        err(ErrorCode::NotEmpty)
    );
    assert_eq!(
        h.write(SessionId::NONE, dc("/nope")).reply,
        err(ErrorCode::NoNode)
    );
    h.create("/e", 1);
    assert_eq!(
        h.write(SessionId::NONE, dc("/e")).reply,
        err(ErrorCode::BadVersion)
    );
    h.delete("/c/x", -1);
    assert_eq!(h.tree.reaper_candidates(0, false, 0, 10), vec!["/c"]);
    let r = h.write(SessionId::NONE, dc("/c"));
    assert_eq!(r.reply, TxnReply::Deleted);
    assert!(h.tree.reaper_candidates(0, false, 0, 10).is_empty());
    // flag 4 on opcode 1/15 gives an ordinary persistent node
    h.create("/notc", 4);
    assert!(h.tree.reaper_candidates(0, false, 0, 10).is_empty());
}

#[test]
fn snapshot_roundtrip() {
    let mut h = H::new();
    h.create("/a", 0);
    h.create_as(
        S1,
        "/a/b",
        1,
        vec![Acl::new(perms::READ, "world", "anyone")],
    );
    h.write(S1, create_req(19, "/c", 4, Acl::open_unsafe()));
    let mut b = crate::tree::TreeBuilder::new();
    for (i, acl) in h.tree.acl_entries() {
        b.add_acl(i, acl);
    }
    let nodes = h.tree.snapshot_nodes();
    assert_eq!(nodes[0].path, "");
    assert_eq!(nodes[0].acl, -1);
    for n in nodes.clone() {
        b.add_node(n).unwrap();
    }
    let t = b.finish(h.tree.last_zxid()).unwrap();
    assert_eq!(t.snapshot_nodes(), nodes);
    assert_eq!(t.digest(), h.tree.digest());
    assert_eq!(t.ephemerals(S1), vec!["/a/b"]);
    assert_eq!(t.node_count(), h.tree.node_count());
    assert_eq!(t.approximate_data_size(), h.tree.approximate_data_size());
    assert_eq!(t.acl_entries(), h.tree.acl_entries());
    let mut bad = crate::tree::TreeBuilder::new();
    assert!(bad.add_node(nodes[1].clone()).is_err(), "orphan");
}

/// A random write for the property tests.
fn arb_req() -> impl Strategy<Value = (SessionId, WriteRequest)> {
    let path = prop::sample::select(vec!["/a", "/b", "/a/x", "/a/y", "/b/z", "/a/x/q"]);
    let session = prop::sample::select(vec![S1, S2]);
    let req = prop_oneof![
        (path.clone(), 0..4i32).prop_map(|(p, f)| create_req(15, p, f, Acl::open_unsafe())),
        path.clone()
            .prop_map(|p| create_req(19, p, 4, Acl::open_unsafe())),
        (path.clone(), -1..2i32).prop_map(|(p, v)| delete_req(p, v)),
        (path.clone(), -1..2i32).prop_map(|(p, v)| set_data_req(p, b"v", v)),
        (path.clone(), path.clone()).prop_map(|(p, q)| multi(vec![mcreate(p), mdelete(q)])),
        (path.clone(), -1..1i32).prop_map(|(p, v)| multi(vec![mcheck(p, v), mcreate(p)])),
        Just(WriteRequest::CloseSession),
        path.prop_map(|p| WriteRequest::DeleteContainer(p.into())),
    ];
    (session, req)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Preparing in random batches (writes in flight) predicts the digest of the
    /// applied tree, and replaying the txns on a second tree gives the same state.
    #[test]
    fn prep_overlay_and_apply_are_consistent(
        reqs in prop::collection::vec(arb_req(), 1..60),
        batch in 1usize..8,
    ) {
        let mut h = H::new();
        let mut log = Vec::new();
        for chunk in reqs.chunks(batch) {
            let recs: Vec<TxnRecord> = chunk.iter().map(|(s, r)| h.prepare(*s, r.clone())).collect();
            for r in &recs {
                h.apply(r);
            }
            log.extend(recs);
        }
        let mut replica = DataTree::new();
        for r in &log {
            replica.apply(r);
        }
        prop_assert_eq!(replica.digest(), h.tree.digest());
        prop_assert_eq!(replica.snapshot_nodes(), h.tree.snapshot_nodes());
        prop_assert_eq!(replica.digest_mismatches(), 0);
        // Same outcome as preparing each write against the fully applied tree.
        let mut serial = H::new();
        for (s, r) in &reqs {
            serial.write(*s, r.clone());
        }
        prop_assert_eq!(serial.tree.snapshot_nodes(), h.tree.snapshot_nodes());
    }
}

/// Creates inside a multi, as ZooKeeper 3.9 (and 3.8.2+, ZOOKEEPER-4026) carries them
/// out: the node type follows the flags when they name a container or TTL mode, else the
/// opcode; create2 answers a create2 result; createTTL without TTL flags is a plain create
/// (its ttl dropped). Top-level requests are unchanged (see `containers`, `ttl_nodes`).
#[test]
fn multi_create_variants_follow_zookeeper_3_9() {
    let mut h = H::with_ttl(true);
    let mc = |op: OpCode, path: &str, flags: i32| {
        MultiOp::Create(
            op.code(),
            CreateRequest {
                path: path.into(),
                acl: Acl::open_unsafe(),
                flags,
                ..Default::default()
            },
        )
    };
    let mttl = |path: &str, flags: i32, ttl: i64| {
        MultiOp::CreateTtl(CreateTtlRequest {
            path: path.into(),
            acl: Acl::open_unsafe(),
            flags,
            ttl,
            ..Default::default()
        })
    };
    let one = |h: &mut H, op: MultiOp| -> (i32, OpResult) {
        let rec = h.prepare(S1, multi(vec![op]));
        let Txn::Multi(subs) = &rec.txn else { panic!() };
        let ty = subs[0].txn_type();
        let r = h.apply(&rec);
        let TxnReply::Multi(mut res) = r.reply else {
            panic!("{:?}", r.reply)
        };
        (ty, res.remove(0))
    };
    let owner = |h: &H, p: &str| h.tree.stat_persisted(p).unwrap().ephemeral_owner;
    let is_create2 = |r: &OpResult, p: &str| matches!(r, OpResult::Create2(q, _) if q == p);
    let container = ephemeral::CONTAINER_OWNER;

    // create2 answers create2, create answers create
    let (ty, r) = one(&mut h, mc(OpCode::Create2, "/c2", 0));
    assert_eq!(ty, OpCode::Create2.code());
    assert!(is_create2(&r, "/c2"), "{r:?}");
    let (_, r) = one(&mut h, mc(OpCode::Create, "/c1", 0));
    assert_eq!(r, OpResult::Create("/c1".into()));
    // createContainer makes a container whatever its flags (not TTL)
    let (ty, r) = one(&mut h, mc(OpCode::CreateContainer, "/k0", 0));
    assert_eq!(ty, OpCode::CreateContainer.code());
    assert!(is_create2(&r, "/k0"), "{r:?}");
    assert_eq!(owner(&h, "/k0"), container);
    // container flags make a container under create / create2 too
    for (op, p) in [(OpCode::Create, "/k1"), (OpCode::Create2, "/k2")] {
        let (ty, r) = one(&mut h, mc(op, p, 4));
        assert_eq!(ty, OpCode::CreateContainer.code());
        assert!(is_create2(&r, p), "{r:?}");
        assert_eq!(owner(&h, p), container);
    }
    // createTTL without TTL flags: a plain create, the ttl dropped
    let (ty, r) = one(&mut h, mttl("/t0", 0, 5000));
    assert_eq!(ty, OpCode::Create.code());
    assert_eq!(r, OpResult::Create("/t0".into()));
    assert_eq!(owner(&h, "/t0"), 0);
    let (_, r) = one(&mut h, mttl("/t1", 1, 5000));
    assert_eq!(r, OpResult::Create("/t1".into()));
    assert_eq!(owner(&h, "/t1"), S1.0, "ephemeral");
    let (_, r) = one(&mut h, mttl("/t-neg", 0, -1));
    assert_eq!(r, OpResult::Create("/t-neg".into()));
    // createTTL with container flags: a container
    let (ty, r) = one(&mut h, mttl("/t4", 4, 5000));
    assert_eq!(ty, OpCode::CreateContainer.code());
    assert!(is_create2(&r, "/t4"), "{r:?}");
    assert_eq!(owner(&h, "/t4"), container);
    // createTTL with TTL flags: a TTL node, create2 result; a bad ttl fails the op
    let (ty, r) = one(&mut h, mttl("/t5", 5, 5000));
    assert_eq!(ty, OpCode::CreateTtl.code());
    assert!(is_create2(&r, "/t5"), "{r:?}");
    assert_eq!(owner(&h, "/t5") as u64, 0xff00_0000_0000_1388);
    let (_, r) = one(&mut h, mttl("/t5-bad", 5, 0));
    assert_eq!(r, OpResult::error(ErrorCode::BadArguments));
    // createTTL with unknown flags: the op fails with BADARGUMENTS (not the whole multi)
    let (_, r) = one(&mut h, mttl("/t7", 7, 5000));
    assert_eq!(r, OpResult::error(ErrorCode::BadArguments));
    assert!(h.tree.stat("/t7").is_none());
    // top-level requests keep the opcode's meaning: create with flag 4 is persistent
    h.create("/top4", 4);
    assert_eq!(owner(&h, "/top4"), 0);
}

/// zkCli's setquota of `/q`, through prep: the quota parent, limits, then stats.
fn setquota(h: &mut H, limits: &'static [u8]) {
    use crate::tree::quota::{limit_path, stat_path};
    h.create("/zookeeper/quota/q", 0);

    h.write(S1, create_req(15, &limit_path("/q"), 0, Acl::open_unsafe()));
    h.write(S1, set_data_req(&limit_path("/q"), limits, -1));
    h.write(S1, create_req(15, &stat_path("/q"), 0, Acl::open_unsafe()));
}

#[test]
fn hard_quota_limits_refuse_writes_only_when_enforced() {
    for enforce in [false, true] {
        let mut h = H::new();
        h.prep = Prep::new(false).with_enforce_quota(enforce);
        h.create("/q", 0);
        // countHardLimit 3 (the root and two children), byteHardLimit 4
        setquota(
            &mut h,
            b"count=-1,bytes=-1=;byteHardLimit=4;countHardLimit=3",
        );
        let stats = |h: &H| {
            let (d, _) = h
                .tree
                .get_data("/zookeeper/quota/q/zookeeper_stats")
                .unwrap();
            String::from_utf8_lossy(&d).into_owned()
        };
        assert_eq!(stats(&h), "count=1,bytes=1");
        assert_eq!(created_path(&h.create("/q/a", 0)), "/q/a");
        assert_eq!(created_path(&h.create("/q/b", 0)), "/q/b");
        assert_eq!(stats(&h), "count=3,bytes=3");
        let over = h.create("/q/c", 0);
        let grow = h.write(S1, set_data_req("/q/a", b"xxx", -1)).reply;
        if enforce {
            assert_eq!(over, err(ErrorCode::QuotaExceeded));
            assert_eq!(grow, err(ErrorCode::QuotaExceeded));
            assert_eq!(stats(&h), "count=3,bytes=3");
            // a write that keeps within the limits still passes
            assert!(matches!(
                h.write(S1, set_data_req("/q/a", b"y", -1)).reply,
                TxnReply::SetData(_)
            ));
        } else {
            assert_eq!(created_path(&over), "/q/c");
            assert!(matches!(grow, TxnReply::SetData(_)));
            assert_eq!(stats(&h), "count=4,bytes=6");
        }
        // outside the quota nothing is checked
        assert_eq!(created_path(&h.create("/free", 0)), "/free");
    }
}

/// With `enforceQuota`, a limits node ZooKeeper cannot parse fails writes under its quota
/// root with MARSHALLINGERROR (its prep's parse throws); without it the write passes.
/// Found by a break-it review (rzk served and counted them).
#[test]
fn unreadable_quota_limits_fail_writes_when_enforced() {
    for enforce in [false, true] {
        let mut h = H::new();
        h.prep = Prep::new(false).with_enforce_quota(enforce);
        h.create("/q", 0);
        setquota(&mut h, b"count= 1,bytes=-1");
        let created = h.create("/q/a", 0);
        let set = h.write(S1, set_data_req("/q", b"xyz", -1)).reply;
        if enforce {
            assert_eq!(created, err(ErrorCode::MarshallingError));
            assert_eq!(set, err(ErrorCode::MarshallingError));
        } else {
            assert_eq!(created_path(&created), "/q/a");
            assert!(matches!(set, TxnReply::SetData(_)));
        }
        assert_eq!(created_path(&h.create("/free", 0)), "/free");
    }
}

/// A txn whose `auth` ACL grows it past the longest log record a server reads back is
/// refused with BADARGUMENTS before it is logged (a break-it review: three `addauth` of
/// 900 KB digest ids and one create with `auth::` made a 2.7 MB record, and neither rzk
/// nor ZooKeeper 3.8 could restart on it). The same ACL within the bound is taken, in
/// a create, a setACL and a multi; a multi whose creates grow it past the bound in sum
/// is refused whole, its overlay changes undone.
#[test]
fn a_txn_grown_by_auth_ids_past_the_log_record_bound_is_refused() {
    let mut h = H::new();
    // jute.maxbuffer 4000: records up to 8000 bytes are read back.
    h.prep = Prep::new(false).with_max_close_paths_bytes(4000);
    let mut big = AuthInfo::for_ip("127.0.0.1");
    // Each digest id is `user:<28 bytes>`: 1,500-byte user names, three of them.
    for i in 0..3 {
        let user = format!("u{i}{}", "x".repeat(1500));
        big.add_auth("digest", format!("{user}:pw").as_bytes(), None)
            .unwrap();
    }
    h.auth = big.clone();
    let auth_acl = vec![Acl::new(perms::ALL, "auth", "")];
    // ~4.6 KB of ACL: fits.
    assert!(matches!(
        h.create_as(S1, "/ok", 0, auth_acl.clone()),
        TxnReply::Created { .. }
    ));
    assert_eq!(h.tree.get_acl("/ok").unwrap().0.len(), 3);
    // Two creates with it in one multi: ~9.2 KB, past 8,000.
    let mcreate_auth = |p: &str| {
        MultiOp::Create(
            1,
            CreateRequest {
                path: p.into(),
                acl: auth_acl.clone(),
                ..Default::default()
            },
        )
    };
    let r = h.write(S1, multi(vec![mcreate_auth("/m1"), mcreate_auth("/m2")]));
    assert_eq!(r.reply, err(ErrorCode::BadArguments));
    assert!(
        h.tree.get_acl("/m1").is_none(),
        "nothing of the multi applied"
    );
    // The prep forgot the refused multi's changes: /m1 can be created now.
    assert!(matches!(
        h.create_as(S1, "/m1", 0, auth_acl.clone()),
        TxnReply::Created { .. }
    ));
    // A fourth id of 4 KB: one ACL past the bound, create and setACL refused.
    big.add_auth(
        "digest",
        format!("v{}:pw", "y".repeat(4000)).as_bytes(),
        None,
    )
    .unwrap();
    h.auth = big;
    let refused = h.prepare(S1, create_req(1, "/big", 0, auth_acl.clone()));
    assert!(matches!(refused.txn, Txn::Error(_)), "{:?}", refused.txn);
    assert_eq!(h.apply(&refused).reply, err(ErrorCode::BadArguments));
    let r = h.write(
        S1,
        WriteRequest::SetAcl(SetAclRequest {
            path: "/ok".into(),
            acl: auth_acl,
            version: -1,
        }),
    );
    assert_eq!(r.reply, err(ErrorCode::BadArguments));
    assert_eq!(h.tree.get_acl("/ok").unwrap().0.len(), 3);
}
