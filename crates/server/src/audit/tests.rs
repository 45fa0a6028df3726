//! Audit lines for applied txns: ZooKeeper's fields and order, failures, multi, session
//! close with ephemerals.

use super::*;
use crate::prep::Prep;
use crate::tree::DataTree;
use bytes::Bytes;
use rzk_proto::multi::MultiRequest;
use rzk_proto::records::{CreateRequest, DeleteRequest, Id, SetAclRequest, SetDataRequest};

const S: SessionId = SessionId(0x1000_0abc_0001);

struct H {
    tree: DataTree,
    prep: Prep,
    zxid: i64,
    auth: AuthInfo,
    audit: Audit,
}

impl H {
    fn new() -> H {
        let mut auth = AuthInfo::for_ip("127.0.0.1");
        auth.add_auth("digest", b"bob:secret", None).unwrap();
        H {
            tree: DataTree::new(),
            prep: Prep::new(false),
            zxid: 0x1_0000_0000,
            auth,
            audit: Audit {
                enabled: true,
                system_user: "zk".into(),
            },
        }
    }
    fn run(&mut self, session: SessionId, req: WriteRequest, client: bool) -> Vec<String> {
        self.zxid += 1;
        let auth = self.auth.clone();
        let rec = self.prep.prepare(
            &self.tree,
            session,
            1,
            &req,
            &auth,
            rzk_proto::Zxid(self.zxid),
            1000,
        );
        let res = self.tree.apply(&rec);
        let who = if client {
            Submitter::Client {
                auth: &auth,
                request: &req,
            }
        } else {
            Submitter::Elsewhere
        };
        self.audit
            .events(who, &rec, &res)
            .iter()
            .map(|e| e.to_string())
            .collect()
    }
    fn client(&mut self, req: WriteRequest) -> Vec<String> {
        self.run(S, req, true)
    }
}

fn create(path: &str, flags: i32) -> WriteRequest {
    WriteRequest::Create {
        op: 1,
        req: CreateRequest {
            path: path.into(),
            data: Bytes::from_static(b"x").into(),
            acl: Acl::open_unsafe(),
            flags,
        },
    }
}

const WHO: &str = "session=0x10000abc0001\tuser=bob,127.0.0.1\tip=127.0.0.1";

#[test]
fn writes_are_logged_in_zookeepers_format() {
    let mut h = H::new();
    assert_eq!(
        h.client(create("/a", 0)),
        [format!(
            "{WHO}\toperation=create\tznode=/a\tznode_type=persistent\tresult=success"
        )]
    );
    assert_eq!(
        h.client(create("/a", 0)),
        [format!(
            "{WHO}\toperation=create\tznode=/a\tznode_type=persistent\tresult=failure"
        )]
    );
    assert_eq!(
        h.client(create("/a/s-", 2)),
        [format!(
            "{WHO}\toperation=create\tznode=/a/s-0000000000\tznode_type=persistent_sequential\tresult=success"
        )]
    );
    let set = WriteRequest::SetData(SetDataRequest {
        path: "/a".into(),
        data: Bytes::from_static(b"y").into(),
        version: 7,
    });
    assert_eq!(
        h.client(set),
        [format!(
            "{WHO}\toperation=setData\tznode=/a\tresult=failure"
        )]
    );
    let acl = vec![
        Acl::new(perms::ALL, "world", "anyone"),
        Acl {
            perms: perms::READ | perms::ADMIN,
            id: Id::new("ip", "10.0.0.1"),
        },
    ];
    let set_acl = WriteRequest::SetAcl(SetAclRequest {
        path: "/a".into(),
        acl,
        version: -1,
    });
    assert_eq!(
        h.client(set_acl),
        [format!(
            "{WHO}\toperation=setAcl\tznode=/a\tacl=world:anyone:cdrwaip:10.0.0.1:ra\tresult=success"
        )]
    );
    let del = WriteRequest::Delete(DeleteRequest {
        path: "/a/s-0000000000".into(),
        version: -1,
    });
    assert_eq!(
        h.client(del),
        [format!(
            "{WHO}\toperation=delete\tznode=/a/s-0000000000\tresult=success"
        )]
    );
    // Another server's client: nothing here.
    assert!(h.run(S, create("/b", 0), false).is_empty());
}

#[test]
fn multi_parts_and_failed_multi() {
    let mut h = H::new();
    let ok = WriteRequest::Multi(MultiRequest {
        ops: vec![
            MultiOp::Create(
                1,
                CreateRequest {
                    path: "/m".into(),
                    data: Bytes::from_static(b"").into(),
                    acl: Acl::open_unsafe(),
                    flags: 0,
                },
            ),
            MultiOp::SetData(SetDataRequest {
                path: "/m".into(),
                data: Bytes::from_static(b"v").into(),
                version: -1,
            }),
        ],
    });
    assert_eq!(
        h.client(ok),
        [
            format!("{WHO}\toperation=create\tznode=/m\tznode_type=persistent\tresult=success"),
            format!("{WHO}\toperation=setData\tznode=/m\tresult=success"),
        ]
    );
    let bad = WriteRequest::Multi(MultiRequest {
        ops: vec![MultiOp::Delete(DeleteRequest {
            path: "/nope".into(),
            version: -1,
        })],
    });
    assert_eq!(
        h.client(bad),
        [format!("{WHO}\toperation=multiOperation\tresult=failure")]
    );
}

#[test]
fn sessions_and_their_ephemerals() {
    let mut h = H::new();
    let s2 = SessionId(0x2a);
    assert_eq!(
        h.run(s2, WriteRequest::CreateSession { timeout_ms: 30000 }, true),
        ["session=0x2a\tuser=bob,127.0.0.1\tip=127.0.0.1\toperation=createSession\tresult=success"]
    );
    h.run(s2, create("/e", 1), true);
    // Every server logs the ephemeral's deletion; the client's server also the close.
    let eph = "session=0x2a\tuser=zk\toperation=ephemeralZNodeDeletionOnSessionCloseOrExpire\tznode=/e\tresult=success";
    assert_eq!(h.run(s2, WriteRequest::CloseSession, false), [eph]);
    h.run(s2, create("/e", 1), true);
    assert_eq!(
        h.run(s2, WriteRequest::CloseSession, true),
        [
            eph.to_string(),
            "session=0x2a\tuser=bob,127.0.0.1\tip=127.0.0.1\toperation=closeSession\tresult=success"
                .to_string()
        ]
    );
}

#[test]
fn users_drop_digest_hashes_and_super() {
    let mut a = AuthInfo::for_ip("10.1.1.1");
    a.add_auth("digest", b"carol:pw", Some("nobody:x")).unwrap();
    a.add_sasl("alice@EXAMPLE", true);
    assert_eq!(users(&a).as_deref(), Some("carol,10.1.1.1,alice@EXAMPLE"));
    assert_eq!(users(&AuthInfo::superuser()), None);
}

#[test]
fn expiry_is_logged_by_the_leader_as_the_server() {
    let mut h = H::new();
    let s3 = SessionId(0x3b);
    h.run(s3, WriteRequest::CreateSession { timeout_ms: 4000 }, true);
    h.run(s3, create("/gone", 1), true);
    h.zxid += 1;
    let auth = h.auth.clone();
    let close = WriteRequest::CloseSession;
    let rec = h
        .prep
        .prepare(&h.tree, s3, 0, &close, &auth, rzk_proto::Zxid(h.zxid), 2000);
    let res = h.tree.apply(&rec);
    let lines: Vec<String> = h
        .audit
        .events(Submitter::Server { request: &close }, &rec, &res)
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        lines,
        [
            "session=0x3b\tuser=zk\toperation=ephemeralZNodeDeletionOnSessionCloseOrExpire\tznode=/gone\tresult=success",
            "session=0x3b\tuser=zk\toperation=closeSession\tresult=success",
        ]
    );
    // The reaper's deletes are not audited (ZooKeeper has no connection to name).
    let del = WriteRequest::DeleteContainer("/nothing".into());
    h.zxid += 1;
    let rec = h.prep.prepare(
        &h.tree,
        SessionId(0),
        0,
        &del,
        &auth,
        rzk_proto::Zxid(h.zxid),
        3000,
    );
    let res = h.tree.apply(&rec);
    assert!(h
        .audit
        .events(Submitter::Server { request: &del }, &rec, &res)
        .is_empty());
}
