//! Read path: ACL checks, watch registration rules, bodies.

use super::*;
use crate::auth::digest_id;
use crate::prep::{Prep, WriteRequest};
use bytes::Bytes;
use rzk_proto::opcode::watcher_type;

const S: SessionId = SessionId(0x42);

fn setup() -> DataTree {
    let mut t = DataTree::new();
    let mut p = Prep::new(false);
    let mut bob = AuthInfo::for_ip("127.0.0.1");
    bob.add_auth("digest", b"bob:secret", None).unwrap();
    let reqs = vec![
        ("/pub", 0, Acl::open_unsafe()),
        ("/pub/e", 1, Acl::open_unsafe()),
        (
            "/sec",
            0,
            vec![
                Acl::new(perms::ALL, "auth", ""),
                Acl::new(perms::ADMIN, "world", "anyone"),
            ],
        ),
        (
            "/ro",
            0,
            vec![
                Acl::new(perms::READ, "world", "anyone"),
                Acl::new(perms::ALL, "digest", "alice:h"),
            ],
        ),
    ];
    for (i, (path, flags, acl)) in reqs.into_iter().enumerate() {
        let req = WriteRequest::Create {
            op: 1,
            req: CreateRequest {
                path: path.into(),
                data: Bytes::from_static(b"hi").into(),
                acl,
                flags,
            },
        };
        let rec = p.prepare(&t, S, 1, &req, &bob, rzk_proto::Zxid(i as i64 + 1), 1000);
        t.apply(&rec);
    }
    t
}

fn anon() -> AuthInfo {
    AuthInfo::for_ip("127.0.0.1")
}

#[test]
fn exists_registers_watch_on_missing_node() {
    let t = setup();
    let mut w = WatchManager::new();
    let r = ReadRequest::Exists(ExistsRequest {
        path: "/nope".into(),
        watch: true,
    });
    assert_eq!(read(&t, &mut w, 1, &anon(), S, &r), Err(ErrorCode::NoNode));
    assert_eq!(w.check_watches(1, "/nope", watcher_type::DATA), Ok(()));
    // getData on a missing node registers nothing
    let r = ReadRequest::GetData(GetDataRequest {
        path: "/nope2".into(),
        watch: true,
    });
    assert_eq!(read(&t, &mut w, 1, &anon(), S, &r), Err(ErrorCode::NoNode));
    assert_eq!(
        w.check_watches(1, "/nope2", watcher_type::ANY),
        Err(ErrorCode::NoWatcher)
    );
}

#[test]
fn acl_checks_on_reads() {
    let t = setup();
    let mut w = WatchManager::new();
    let gd = |p: &str| {
        ReadRequest::GetData(GetDataRequest {
            path: p.into(),
            watch: true,
        })
    };
    assert_eq!(
        read(&t, &mut w, 1, &anon(), S, &gd("/sec")),
        Err(ErrorCode::NoAuth)
    );
    assert_eq!(w.watch_count(), 0, "no watch without READ");
    let ex = ReadRequest::Exists(ExistsRequest {
        path: "/sec".into(),
        watch: false,
    });
    let body = read(&t, &mut w, 1, &anon(), S, &ex).expect("exists needs no READ");
    assert_eq!(
        ExistsResponse::from_bytes(&body).unwrap().stat.data_length,
        2
    );
    let mut bob = anon();
    bob.add_auth("digest", b"bob:secret", None).unwrap();
    let body = read(&t, &mut w, 1, &bob, S, &gd("/sec")).unwrap();
    let resp = GetDataResponse::from_bytes(&body).unwrap();
    assert_eq!((resp.data.as_ref(), resp.stat.data_length), (&b"hi"[..], 2));
    // getACL: ADMIN alone suffices; without ADMIN digest ids are redacted
    let ga = |p: &str| ReadRequest::GetAcl(GetAclRequest { path: p.into() });
    let body = read(&t, &mut w, 1, &anon(), S, &ga("/sec")).unwrap();
    let acl = GetAclResponse::from_bytes(&body).unwrap().acl;
    assert_eq!(
        acl[0].id.id,
        digest_id("bob:secret"),
        "ADMIN via world:anyone sees everything"
    );
    let body = read(&t, &mut w, 1, &anon(), S, &ga("/ro")).unwrap();
    let acl = GetAclResponse::from_bytes(&body).unwrap().acl;
    assert_eq!(acl[1].id.id, "alice:x");
    let cnt = ReadRequest::GetAllChildrenNumber(GetAllChildrenNumberRequest { path: "/".into() });
    let body = read(&t, &mut w, 1, &anon(), S, &cnt).unwrap();
    assert_eq!(
        GetAllChildrenNumberResponse::from_bytes(&body)
            .unwrap()
            .total_number,
        7
    );
}

#[test]
fn ephemerals_whoami_multiread_and_watch_ops() {
    let t = setup();
    let mut w = WatchManager::new();
    let ge = |p: &str| {
        ReadRequest::GetEphemerals(GetEphemeralsRequest {
            prefix_path: p.into(),
        })
    };
    for (prefix, n) in [("", 1), ("/", 1), ("/pub", 1), ("/pu", 1), ("/sec", 0)] {
        let body = read(&t, &mut w, 1, &anon(), S, &ge(prefix)).unwrap();
        assert_eq!(
            GetEphemeralsResponse::from_bytes(&body)
                .unwrap()
                .ephemerals
                .len(),
            n,
            "{prefix:?}"
        );
    }
    let body = read(&t, &mut w, 1, &anon(), SessionId(7), &ge("")).unwrap();
    assert!(GetEphemeralsResponse::from_bytes(&body)
        .unwrap()
        .ephemerals
        .is_empty());
    let body = read(&t, &mut w, 1, &anon(), S, &ReadRequest::WhoAmI).unwrap();
    let who = WhoAmIResponse::from_bytes(&body).unwrap().client_info;
    assert_eq!(
        (who[0].auth_scheme.as_str(), who[0].user.as_str()),
        ("ip", "127.0.0.1")
    );
    let mr = ReadRequest::MultiRead(rzk_proto::multi::MultiRequest {
        ops: vec![
            MultiOp::GetChildren(GetChildrenRequest {
                path: "/pub".into(),
                watch: true,
            }),
            MultiOp::GetData(GetDataRequest {
                path: "/nope".into(),
                watch: false,
            }),
            MultiOp::GetData(GetDataRequest {
                path: "/sec".into(),
                watch: false,
            }),
        ],
    });
    let body = read(&t, &mut w, 1, &anon(), S, &mr).unwrap();
    let res = MultiResponse::from_bytes(&body).unwrap().results;
    assert_eq!(res[0], OpResult::GetChildren(vec!["e".into()]));
    assert_eq!(res[1], OpResult::Error(ErrorCode::NoNode.code()));
    assert_eq!(res[2], OpResult::Error(ErrorCode::NoAuth.code()));
    // multiRead sets no watch, whatever the op's flag says
    assert_eq!(w.watch_count(), 0);
    let gc = ReadRequest::GetChildren(GetChildrenRequest {
        path: "/pub".into(),
        watch: true,
    });
    read(&t, &mut w, 1, &anon(), S, &gc).unwrap();
    assert_eq!(w.check_watches(1, "/pub", watcher_type::CHILDREN), Ok(()));
    let aw = ReadRequest::AddWatch(AddWatchRequest {
        path: "/x".into(),
        mode: 1,
    });
    assert_eq!(
        read(&t, &mut w, 1, &anon(), S, &aw).unwrap(),
        vec![0, 0, 0, 0]
    );
    let bad = ReadRequest::AddWatch(AddWatchRequest {
        path: "/x".into(),
        mode: 5,
    });
    assert_eq!(
        read(&t, &mut w, 1, &anon(), S, &bad),
        Err(ErrorCode::MarshallingError)
    );
    let rm = ReadRequest::RemoveWatches(RemoveWatchesRequest {
        path: "/pub".into(),
        watcher_type: watcher_type::CHILDREN,
    });
    assert_eq!(read(&t, &mut w, 1, &anon(), S, &rm), Ok(vec![]));
    assert_eq!(
        read(&t, &mut w, 1, &anon(), S, &rm),
        Err(ErrorCode::NoWatcher)
    );
    let ck = ReadRequest::CheckWatches(CheckWatchesRequest {
        path: "/x".into(),
        watcher_type: watcher_type::ANY,
    });
    assert_eq!(read(&t, &mut w, 1, &anon(), S, &ck), Ok(vec![]));
}

/// The watch flags of getData / getChildren inside multiRead are ignored, as ZooKeeper
/// (3.8 and 3.9) does: the ops are answered, no watch is registered.
#[test]
fn multiread_ignores_watch_flags() {
    let t = setup();
    let mut w = WatchManager::new();
    let mr = ReadRequest::MultiRead(rzk_proto::multi::MultiRequest {
        ops: vec![
            MultiOp::GetData(GetDataRequest {
                path: "/pub".into(),
                watch: true,
            }),
            MultiOp::GetChildren(GetChildrenRequest {
                path: "/pub".into(),
                watch: true,
            }),
            MultiOp::GetData(GetDataRequest {
                path: "/nope".into(),
                watch: true,
            }),
        ],
    });
    let body = read(&t, &mut w, 1, &anon(), S, &mr).unwrap();
    let res = MultiResponse::from_bytes(&body).unwrap().results;
    assert!(matches!(res[0], OpResult::GetData(..)));
    assert_eq!(res[1], OpResult::GetChildren(vec!["e".into()]));
    assert_eq!(res[2], OpResult::Error(ErrorCode::NoNode.code()));
    assert_eq!(w.watch_count(), 0);
    for ty in [
        watcher_type::DATA,
        watcher_type::CHILDREN,
        watcher_type::ANY,
    ] {
        assert_eq!(w.check_watches(1, "/pub", ty), Err(ErrorCode::NoWatcher));
    }
}

/// getData (and multiRead's getData) of a node created without data answers a null
/// buffer (length -1), not an empty one; empty data answers length 0.
#[test]
fn get_data_of_null_node_replies_null_buffer() {
    let mut t = DataTree::new();
    let mut p = Prep::new(false);
    for (i, (path, data)) in [
        ("/null", rzk_proto::Data::NULL),
        ("/empty", Bytes::new().into()),
    ]
    .into_iter()
    .enumerate()
    {
        let req = WriteRequest::Create {
            op: 1,
            req: CreateRequest {
                path: path.into(),
                data,
                acl: Acl::open_unsafe(),
                flags: 0,
            },
        };
        let rec = p.prepare(&t, S, 1, &req, &anon(), rzk_proto::Zxid(i as i64 + 1), 1000);
        t.apply(&rec);
    }
    let mut w = WatchManager::new();
    let gd = |p: &str| {
        ReadRequest::GetData(GetDataRequest {
            path: p.into(),
            watch: false,
        })
    };
    let body = read(&t, &mut w, 1, &anon(), S, &gd("/null")).unwrap();
    assert_eq!(&body[..4], &[0xff, 0xff, 0xff, 0xff]);
    assert!(GetDataResponse::from_bytes(&body).unwrap().data.is_null());
    let body = read(&t, &mut w, 1, &anon(), S, &gd("/empty")).unwrap();
    assert_eq!(&body[..4], &[0, 0, 0, 0]);
    let multi = ReadRequest::MultiRead(rzk_proto::multi::MultiRequest {
        ops: vec![
            MultiOp::GetData(GetDataRequest {
                path: "/null".into(),
                watch: false,
            }),
            MultiOp::GetData(GetDataRequest {
                path: "/empty".into(),
                watch: false,
            }),
        ],
    });
    let body = read(&t, &mut w, 1, &anon(), S, &multi).unwrap();
    let results = MultiResponse::from_bytes(&body).unwrap().results;
    match &results[..] {
        [OpResult::GetData(n, _), OpResult::GetData(e, _)] => {
            assert!(n.is_null());
            assert!(!e.is_null() && e.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

/// `read_frame` (what a connection sends) is the length prefix, the header at the
/// tree's last zxid and `read`'s body, or the header alone with `read`'s error code,
/// for bodies below, at and above the frame's first allocation (the 512-byte start and
/// a value that makes the body reserve more).
#[test]
fn read_frames_are_header_and_body_in_one_buffer() {
    let mut t = setup();
    let mut p = Prep::new(false);
    for (i, len) in [0usize, 1, 400, 420, 512, 5000].into_iter().enumerate() {
        let path = format!("/v{i}");
        let req = WriteRequest::Create {
            op: 1,
            req: CreateRequest {
                path: path.clone(),
                data: Bytes::from(vec![b'x'; len]).into(),
                acl: Acl::open_unsafe(),
                flags: 0,
            },
        };
        let rec = p.prepare(
            &t,
            S,
            1,
            &req,
            &anon(),
            rzk_proto::Zxid(100 + i as i64),
            1000,
        );
        t.apply(&rec);
    }
    let zxid = t.last_zxid();
    let mut requests: Vec<ReadRequest> = (0..6)
        .map(|i| {
            ReadRequest::GetData(GetDataRequest {
                path: format!("/v{i}"),
                watch: false,
            })
        })
        .collect();
    for path in ["/missing", "/sec", "/pub"] {
        requests.push(ReadRequest::GetData(GetDataRequest {
            path: path.into(),
            watch: false,
        }));
        requests.push(ReadRequest::GetChildren2(GetChildren2Request {
            path: path.into(),
            watch: false,
        }));
    }
    for (xid, rq) in requests.iter().enumerate() {
        let xid = xid as i32 + 1;
        let mut w = WatchManager::new();
        let expected = match read(&t, &mut w, 1, &anon(), S, rq) {
            Ok(body) => crate::reply::reply_frame(xid, zxid, 0, &body),
            Err(code) => crate::reply::reply_frame(xid, zxid, code.code(), &[]),
        };
        let frame = read_frame(xid, &t, &mut w, 1, &anon(), S, rq);
        assert_eq!(frame, expected, "{rq:?}");
    }
    // The 5000-byte value's frame: prefix 4 + header 16 + length 4 + data + stat.
    let mut w = WatchManager::new();
    let big = read_frame(9, &t, &mut w, 1, &anon(), S, &requests[5]);
    assert_eq!(big.len(), 4 + 16 + 4 + 5000 + Stat::SIZE);
}

/// A multiRead that repeats a getData of a large node is refused once its reply would
/// pass [`MAX_MULTI_READ_REPLY`], before the reply is built (found by a review: an 80 KB
/// request made an 1.8 GB reply and the server died allocating it).
#[test]
fn a_multiread_reply_is_bounded() {
    let mut t = setup();
    let mut p = Prep::new(false);
    let req = WriteRequest::Create {
        op: 1,
        req: CreateRequest {
            path: "/big".into(),
            data: Bytes::from(vec![b'x'; 1 << 20]).into(),
            acl: Acl::open_unsafe(),
            flags: 0,
        },
    };
    let rec = p.prepare(&t, S, 1, &req, &anon(), rzk_proto::Zxid(100), 1000);
    t.apply(&rec);
    let multi = |n: usize| {
        ReadRequest::MultiRead(rzk_proto::multi::MultiRequest {
            ops: (0..n)
                .map(|_| {
                    MultiOp::GetData(GetDataRequest {
                        path: "/big".into(),
                        watch: false,
                    })
                })
                .collect(),
        })
    };
    let mut w = WatchManager::new();
    let fits = MAX_MULTI_READ_REPLY / ((1 << 20) + 128);
    let body = read(&t, &mut w, 1, &anon(), S, &multi(fits)).unwrap();
    assert!(body.len() > (fits << 20) && body.len() <= MAX_MULTI_READ_REPLY);
    assert_eq!(
        read(&t, &mut w, 1, &anon(), S, &multi(fits + 1)),
        Err(ErrorCode::BadArguments)
    );
    assert_eq!(
        read(&t, &mut w, 1, &anon(), S, &multi(60_000)),
        Err(ErrorCode::BadArguments)
    );
}
