//! Every client operation against a live server (`RZK_TEST_HOSTS`, or an in-process rzk).
//!
//! Run: `RZK_TEST_HOSTS=127.0.0.1:2181 cargo test -p rzk-client --test client_ops`
//! (TTL test needs the server started with `extendedTypesEnabled=true`.)

mod common;

use std::time::Duration;

use rzk_client::*;
use rzk_testkit::server::hosts_or_start;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn crud_and_stats() {
    let hosts = hosts_or_start();
    let zk = common::connect(&hosts).await;
    let root = common::test_root(&zk, "crud").await;
    let p = format!("{root}/a");
    let (path, st) = zk
        .create2(&p, b"one", &open_acl_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(path, p);
    assert_eq!((st.version, st.data_length), (0, 3));
    assert_eq!(
        zk.create(&p, b"", &open_acl_unsafe(), CreateMode::Persistent)
            .await,
        Err(Error::NodeExists)
    );
    let (d, st) = zk.get_data(&p).await.unwrap();
    assert_eq!(d, b"one");
    assert_eq!(zk.set_data(&p, b"x", Some(7)).await, Err(Error::BadVersion));
    let st2 = zk.set_data(&p, b"two", Some(st.version)).await.unwrap();
    assert_eq!(st2.version, 1);
    assert_eq!(zk.exists(&p).await.unwrap().map(|s| s.version), Some(1));
    assert_eq!(zk.exists(&format!("{root}/none")).await.unwrap(), None);
    assert_eq!(
        zk.get_data(&format!("{root}/none")).await,
        Err(Error::NoNode)
    );
    let s1 = zk
        .create(
            &format!("{root}/s-"),
            b"",
            &open_acl_unsafe(),
            CreateMode::PersistentSequential,
        )
        .await
        .unwrap();
    assert!(
        s1.starts_with(&format!("{root}/s-")) && s1.len() == root.len() + 3 + 10,
        "{s1}"
    );
    let (mut kids, pst) = zk.get_children2(&root).await.unwrap();
    kids.sort();
    assert_eq!(kids.len(), 2);
    assert_eq!(pst.num_children, 2);
    assert_eq!(zk.get_all_children_number(&root).await.unwrap(), 2);
    assert_eq!(zk.delete(&root, None).await, Err(Error::NotEmpty));
    assert_eq!(zk.delete(&p, Some(0)).await, Err(Error::BadVersion));
    zk.delete(&p, Some(1)).await.unwrap();
    assert_eq!(zk.sync(&root).await.unwrap(), root);
    assert!(matches!(
        zk.get_data("bad").await,
        Err(Error::InvalidPath(_))
    ));
    common::delete_all(&zk, &root).await;
    zk.close().await.unwrap();
    assert_eq!(zk.state(), SessionState::Closed);
    assert_eq!(zk.get_data("/").await.unwrap_err(), Error::Closed);
}

/// Null data (created or set without data) comes back as `None`, empty data as
/// `Some(empty)`; `get_data` reads both as empty. Same against Apache ZooKeeper.
#[tokio::test]
async fn null_data_is_not_empty_data() {
    let hosts = hosts_or_start();
    let zk = common::connect(&hosts).await;
    let root = common::test_root(&zk, "nulldata").await;
    let (n, e) = (format!("{root}/n"), format!("{root}/e"));
    let acl = open_acl_unsafe();
    let (_, st) = zk
        .create_opt(&n, None, &acl, CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(st.data_length, 0);
    zk.create(&e, b"", &acl, CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(zk.get_data_opt(&n).await.unwrap().0, None);
    assert_eq!(zk.get_data_opt(&e).await.unwrap().0, Some(Vec::new()));
    assert_eq!(zk.get_data(&n).await.unwrap().0, Vec::<u8>::new());
    zk.set_data(&n, b"v", None).await.unwrap();
    assert_eq!(zk.get_data_opt(&n).await.unwrap().0, Some(b"v".to_vec()));
    zk.set_data_opt(&n, None, None).await.unwrap();
    let (d, st, _w) = zk.get_data_opt_w(&n).await.unwrap();
    assert_eq!((d, st.version, st.data_length), (None, 2, 0));
    common::delete_all(&zk, &root).await;
    zk.close().await.unwrap();
}

#[tokio::test]
async fn ephemerals_belong_to_the_session() {
    let hosts = hosts_or_start();
    let zk = common::connect(&hosts).await;
    let root = common::test_root(&zk, "eph").await;
    let other = common::connect(&hosts).await;
    let e = format!("{root}/e");
    zk.create(&e, b"", &open_acl_unsafe(), CreateMode::Ephemeral)
        .await
        .unwrap();
    let st = other.exists(&e).await.unwrap().unwrap();
    assert_eq!(st.ephemeral_owner, zk.session_id());
    assert_eq!(zk.get_ephemerals(&root).await.unwrap(), vec![e.clone()]);
    assert!(other.get_ephemerals("/").await.unwrap().is_empty());
    assert_eq!(
        zk.create(
            &format!("{e}/c"),
            b"",
            &open_acl_unsafe(),
            CreateMode::Persistent
        )
        .await,
        Err(Error::NoChildrenForEphemerals)
    );
    let (_, w) = other.exists_w(&e).await.unwrap();
    zk.close().await.unwrap();
    let ev = timeout(WAIT, w).await.unwrap();
    assert_eq!(ev.event_type, EventType::NodeDeleted);
    assert_eq!(other.exists(&e).await.unwrap(), None);
    common::delete_all(&other, &root).await;
}

#[tokio::test]
async fn container_and_ttl_modes() {
    let hosts = hosts_or_start();
    let zk = common::connect(&hosts).await;
    let root = common::test_root(&zk, "modes").await;
    let c = format!("{root}/c");
    let (_, st) = zk
        .create2(&c, b"", &open_acl_unsafe(), CreateMode::Container)
        .await
        .unwrap();
    assert_eq!(st.ephemeral_owner, 0);
    match zk
        .create_ttl(
            &format!("{root}/t"),
            b"",
            &open_acl_unsafe(),
            CreateMode::PersistentWithTtl,
            Duration::from_secs(60),
        )
        .await
    {
        Ok((p, _)) => {
            assert_eq!(p, format!("{root}/t"));
            // the same in a multi, the TTL given as a Duration too
            let res = zk
                .multi(&[Op::create_ttl(
                    &format!("{root}/t2"),
                    b"m",
                    &open_acl_unsafe(),
                    CreateMode::PersistentSequentialWithTtl,
                    Duration::from_secs(60),
                )])
                .await
                .unwrap();
            let OpResult::Create { path, .. } = &res[0] else {
                panic!("{res:?}")
            };
            assert!(path.starts_with(&format!("{root}/t2")), "{path}");
            assert_eq!(zk.get_data(path).await.unwrap().0, b"m");
        }
        Err(Error::Unimplemented) => eprintln!("server has TTL nodes disabled"),
        Err(e) => panic!("create_ttl: {e}"),
    }
    assert!(matches!(
        zk.create(
            &format!("{root}/x"),
            b"",
            &open_acl_unsafe(),
            CreateMode::PersistentWithTtl
        )
        .await,
        Err(Error::InvalidArgument(_))
    ));
    common::delete_all(&zk, &root).await;
}

#[tokio::test]
async fn transactions() {
    let hosts = hosts_or_start();
    let zk = common::connect(&hosts).await;
    let root = common::test_root(&zk, "multi").await;
    let a = format!("{root}/a");
    let res = zk
        .multi(&[
            Op::create(&a, b"1", &open_acl_unsafe(), CreateMode::Persistent),
            Op::set_data(&a, b"2", Some(0)),
            Op::check(&a, 1),
            Op::create(
                &format!("{root}/q-"),
                b"",
                &open_acl_unsafe(),
                CreateMode::PersistentSequential,
            ),
        ])
        .await
        .unwrap();
    assert_eq!(res.len(), 4);
    assert!(matches!(&res[0], OpResult::Create { path, .. } if *path == a));
    assert!(matches!(&res[1], OpResult::SetData(s) if s.version == 1));
    assert_eq!(res[2], OpResult::Check);
    let err = zk
        .multi(&[
            Op::delete(&a, None),
            Op::create(&a, b"", &open_acl_unsafe(), CreateMode::Persistent),
            Op::create(&a, b"", &open_acl_unsafe(), CreateMode::Persistent),
        ])
        .await
        .unwrap_err();
    match err {
        Error::Multi {
            index,
            error,
            results,
        } => {
            assert_eq!(index, 2);
            assert_eq!(*error, Error::NodeExists);
            assert_eq!(results.len(), 3);
        }
        other => panic!("{other:?}"),
    }
    // Nothing of the failed transaction was applied.
    assert_eq!(zk.get_data(&a).await.unwrap().0, b"2");
    let reads = zk
        .multi_read(&[
            ReadOp::GetData(a.clone()),
            ReadOp::GetChildren(root.clone()),
            ReadOp::GetData(format!("{root}/none")),
        ])
        .await
        .unwrap();
    assert!(matches!(&reads[0], ReadResult::Data(d, _) if d == b"2"));
    assert!(matches!(&reads[1], ReadResult::Children(c) if c.len() == 2));
    assert_eq!(reads[2], ReadResult::Error(Error::NoNode));
    assert!(zk.multi(&[]).await.unwrap().is_empty());
    common::delete_all(&zk, &root).await;
}

#[tokio::test]
async fn oneshot_watches() {
    let hosts = hosts_or_start();
    let zk = common::connect(&hosts).await;
    let other = common::connect(&hosts).await;
    let root = common::test_root(&zk, "watch").await;
    let a = format!("{root}/a");
    let (none, created) = zk.exists_w(&a).await.unwrap();
    assert!(none.is_none());
    let (_, child) = zk.get_children_w(&root).await.unwrap();
    other
        .create(&a, b"", &open_acl_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    let ev = timeout(WAIT, created).await.unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeCreated, a.as_str())
    );
    let ev = timeout(WAIT, child).await.unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeChildrenChanged, root.as_str())
    );
    let (_, _, changed) = zk.get_data_w(&a).await.unwrap();
    other.set_data(&a, b"x", None).await.unwrap();
    assert_eq!(
        timeout(WAIT, changed).await.unwrap().event_type,
        EventType::NodeDataChanged
    );
    let (_, _, deleted) = zk.get_data_w(&a).await.unwrap();
    other.delete(&a, None).await.unwrap();
    assert_eq!(
        timeout(WAIT, deleted).await.unwrap().event_type,
        EventType::NodeDeleted
    );
    assert!(
        zk.counters()
            .notifications
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 4
    );
    common::delete_all(&zk, &root).await;
}

#[tokio::test]
async fn persistent_watches_and_removal() {
    let hosts = hosts_or_start();
    let zk = common::connect(&hosts).await;
    let other = common::connect(&hosts).await;
    let root = common::test_root(&zk, "pwatch").await;
    // One connection holds one watch mode per path on the server (a second addWatch on
    // the same path replaces the mode), so the plain persistent watch uses a third session.
    let third = common::connect(&hosts).await;
    let mut rec = zk
        .add_watch(&root, AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    let mut per = third
        .add_watch(&root, AddWatchMode::Persistent)
        .await
        .unwrap();
    let a = format!("{root}/a");
    let b = format!("{a}/b");
    other
        .create(&a, b"", &open_acl_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    other
        .create(&b, b"", &open_acl_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    other.set_data(&b, b"1", None).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        let ev = timeout(WAIT, rec.next()).await.unwrap().unwrap();
        got.push((ev.event_type, ev.path));
    }
    assert_eq!(
        got,
        vec![
            (EventType::NodeCreated, a.clone()),
            (EventType::NodeCreated, b.clone()),
            (EventType::NodeDataChanged, b.clone()),
        ]
    );
    let ev = timeout(WAIT, per.next()).await.unwrap().unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeChildrenChanged, root.as_str())
    );
    zk.check_watches(&root, WatcherType::Any).await.unwrap();
    zk.remove_watches(&root, WatcherType::Any).await.unwrap();
    let ev = timeout(WAIT, rec.next()).await.unwrap().unwrap();
    assert_eq!(ev.event_type, EventType::PersistentWatchRemoved);
    assert_eq!(timeout(WAIT, rec.next()).await.unwrap(), None);
    assert_eq!(
        zk.check_watches(&b, WatcherType::Data).await,
        Err(Error::NoWatcher)
    );
    assert_eq!(
        zk.remove_watches(&b, WatcherType::Data).await,
        Err(Error::NoWatcher)
    );
    common::delete_all(&zk, &root).await;
}

#[tokio::test]
async fn digest_auth_acl_and_whoami() {
    let hosts = hosts_or_start();
    let zk = common::connect(&hosts).await;
    let root = common::test_root(&zk, "acl").await;
    zk.add_auth("digest", b"bob:secret").await.unwrap();
    let who = zk.whoami().await.unwrap();
    assert!(
        who.iter()
            .any(|c| c.auth_scheme == "digest" && c.user == "bob"),
        "{who:?}"
    );
    let p = format!("{root}/private");
    zk.create(&p, b"s", &creator_all_acl(), CreateMode::Persistent)
        .await
        .unwrap();
    let (acl, _) = zk.get_acl(&p).await.unwrap();
    assert_eq!(acl[0].id.scheme, "digest");
    assert_eq!(acl[0].id.id, "bob:fyVmFCwVbTJYrznoSu1koqYEYF0=");
    // the helper computes the id the server derived from bob's credentials
    assert_eq!(digest_acl_id("bob", "secret"), acl[0].id.id);
    let q = format!("{root}/for-bob");
    let bob_reads = Acl::new(perms::READ, "digest", &digest_acl_id("bob", "secret"));
    zk.create(&q, b"r", &[bob_reads], CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(zk.get_data(&q).await.unwrap().0, b"r");
    assert_eq!(zk.set_data(&q, b"w", None).await, Err(Error::NoAuth));
    let anon = common::connect(&hosts).await;
    assert_eq!(anon.get_data(&p).await, Err(Error::NoAuth));
    anon.add_auth("digest", b"bob:secret").await.unwrap();
    assert_eq!(anon.get_data(&p).await.unwrap().0, b"s");
    zk.set_acl(&p, &open_acl_unsafe(), Some(0)).await.unwrap();
    assert_eq!(
        zk.set_acl(&p, &open_acl_unsafe(), Some(0)).await,
        Err(Error::BadVersion)
    );
    common::delete_all(&zk, &root).await;
}

#[tokio::test]
async fn chroot_is_transparent() {
    let hosts = hosts_or_start();
    let zk = common::connect(&hosts).await;
    let root = common::test_root(&zk, "chroot").await;
    let first = hosts.split(',').next().unwrap_or(&hosts).to_string();
    let ch = common::connect(&format!("{first}{root}")).await;
    let p = ch
        .create(
            "/q-",
            b"",
            &open_acl_unsafe(),
            CreateMode::PersistentSequential,
        )
        .await
        .unwrap();
    assert!(p.starts_with("/q-"), "{p}");
    assert_eq!(ch.get_children("/").await.unwrap().len(), 1);
    let (_, w) = ch.exists_w("/z").await.unwrap();
    zk.create(
        &format!("{root}/z"),
        b"",
        &open_acl_unsafe(),
        CreateMode::Persistent,
    )
    .await
    .unwrap();
    assert_eq!(timeout(WAIT, w).await.unwrap().path, "/z");
    let res = ch
        .multi(&[Op::create(
            "/m",
            b"",
            &open_acl_unsafe(),
            CreateMode::Persistent,
        )])
        .await
        .unwrap();
    assert!(matches!(&res[0], OpResult::Create { path, .. } if path == "/m"));
    common::delete_all(&zk, &root).await;
}

#[tokio::test]
async fn unreachable_server_fails_connect() {
    let r = Client::builder("127.0.0.1:1")
        .connect_timeout(Duration::from_millis(700))
        .connect()
        .await;
    // as documented on connect (it was CONNECTIONLOSS before session 30)
    assert_eq!(r.unwrap_err(), Error::Timeout);
}

#[tokio::test]
async fn pipelined_requests_keep_order() {
    let hosts = hosts_or_start();
    let zk = common::connect(&hosts).await;
    let root = common::test_root(&zk, "pipe").await;
    let p = format!("{root}/n");
    zk.create(&p, b"", &open_acl_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    let futs: Vec<_> = (0..200)
        .map(|i| {
            let zk = zk.clone();
            let p = p.clone();
            async move { zk.set_data(&p, format!("{i}").as_bytes(), None).await }
        })
        .collect();
    let res = futures::future::join_all(futs).await;
    assert!(res.iter().all(|r| r.is_ok()));
    assert_eq!(zk.get_data(&p).await.unwrap().1.version, 200);
    common::delete_all(&zk, &root).await;
}

/// `reconfig` reaches the server and its refusal comes back typed: the CI servers run
/// without `reconfigEnabled` (ZooKeeper and rzk alike answer ReconfigDisabled). Changes
/// that succeed are driven against a 3-node ZooKeeper ensemble by
/// tests/shell_compat/reconfig_test.py.
#[tokio::test]
async fn reconfig_refused_without_reconfig_enabled() {
    let hosts = hosts_or_start();
    let zk = common::connect(&hosts).await;
    assert_eq!(
        zk.reconfig_incremental(&["server.9=127.0.0.1:1:2;3"], &[], None)
            .await,
        Err(Error::ReconfigDisabled)
    );
    assert_eq!(
        zk.reconfig(None, Some("2"), None, Some(0x1_0000_0000))
            .await,
        Err(Error::ReconfigDisabled)
    );
    assert_eq!(
        zk.reconfig_members(&["server.1=127.0.0.1:1:2;3"], None)
            .await,
        Err(Error::ReconfigDisabled)
    );
    // Refused before anything is sent.
    assert!(matches!(
        zk.reconfig_incremental(&[], &[], None).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        zk.reconfig_members(&["server.1=a:1:2,server.2=b:1:2"], None)
            .await,
        Err(Error::InvalidArgument(_))
    ));
    // The session is still usable, and the config node can be read (and watched).
    let (data, stat) = zk.get_config().await.unwrap();
    let (data_w, _, _watch) = zk.get_config_w().await.unwrap();
    assert_eq!(data, data_w);
    assert_eq!(stat.data_length as usize, data.len());
}

/// `Client::notifications`: one copy of each notification that reached a watch, in the
/// server's order, however many watches it fired and whatever order their own futures
/// are polled in (zkCli printed two watches' events reversed: each was a task).
#[tokio::test]
async fn notifications_come_once_each_in_the_servers_order() {
    let hosts = hosts_or_start();
    let zk = common::connect(&hosts).await;
    let root = common::test_root(&zk, "tap").await;
    let mut tap = zk.notifications();
    let p = format!("{root}/p");
    zk.create(&p, b"", &open_acl_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    let mut rec = zk
        .add_watch(&root, AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    // Two one-shot watches on the same node: one notification, one copy in the tap.
    let (_, _, w1) = zk.get_data_w(&p).await.unwrap();
    let (_, w2) = zk.exists_w(&p).await.unwrap();
    let q = format!("{p}/q");
    zk.create(&q, b"", &open_acl_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    zk.set_data(&p, b"x", None).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        let ev = timeout(Duration::from_secs(5), tap.recv())
            .await
            .expect("a notification")
            .expect("the tap is open");
        got.push((ev.event_type, ev.path));
    }
    assert_eq!(
        got,
        vec![
            (EventType::NodeCreated, q.clone()),
            (EventType::NodeDataChanged, p.clone()),
        ]
    );
    assert!(
        timeout(Duration::from_millis(300), tap.recv())
            .await
            .is_err(),
        "a notification copied twice"
    );
    // Every watch still got its own event.
    assert_eq!(w1.await.event_type, EventType::NodeDataChanged);
    assert_eq!(w2.await.event_type, EventType::NodeDataChanged);
    assert_eq!(rec.next().await.unwrap().event_type, EventType::NodeCreated);
    common::delete_all(&zk, &root).await;
}

/// `delete("/")` under a chroot fails as deleting the root does (Java sends `/` without
/// the chroot); it deleted the chroot's node (a review of rzk shell's `delete /`).
#[tokio::test]
async fn deleting_the_root_under_a_chroot_leaves_the_chroot() {
    let hosts = hosts_or_start();
    let zk = common::connect(&hosts).await;
    let root = common::test_root(&zk, "chroot-root").await;
    let chrooted = common::connect(&format!("{hosts}{root}")).await;
    assert!(matches!(
        chrooted.delete("/", None).await,
        Err(Error::BadArguments)
    ));
    assert!(zk.exists(&root).await.unwrap().is_some());
    common::delete_all(&zk, &root).await;
}

/// A state watcher taken while connected has no change pending: its `changed()` waits
/// for the next change, as a receiver from tokio's `Sender::subscribe`. A break-it
/// review (session 50) saw the first `changed()` return at once with the state still
/// Connected (each watcher was a clone of a receiver that had never seen the connect).
#[tokio::test]
async fn a_new_state_watcher_waits_for_the_next_change() {
    let hosts = hosts_or_start();
    let zk = common::connect(&hosts).await;
    zk.wait_connected(WAIT).await.unwrap();
    let st = zk.state_watcher();
    assert_eq!(*st.borrow(), SessionState::Connected);
    assert!(
        !st.has_changed().unwrap(),
        "a change is pending on a new state watcher"
    );
    zk.close().await.unwrap();
}
