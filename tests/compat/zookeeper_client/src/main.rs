//! Rust's `zookeeper-client` crate (kezhuw/zookeeper-client-rust 0.9.3, an independent
//! client) against the server at the address given as the first argument: the data
//! model, stats, errors, one-shot and persistent watches, multi, ACLs and auth, chroot,
//! extended node types, pipelined order and its Curator-compatible lock. Run against
//! rzk and Apache ZooKeeper 3.8 (`extendedTypesEnabled=true` on both); every check has
//! to pass on both. Prints one line per check, exits 1 if any failed.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use zookeeper_client as zk;
use zookeeper_client::{Acl, Acls, AddWatchMode, AuthId, CreateMode, EventType, Permission};

type Outcome = Result<(), String>;
type Check = fn(String, String) -> Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// A wait that cannot hang a CI stage: a missing event is a failure after 10 s.
async fn within<T>(what: &str, f: impl Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .map_err(|_| format!("{what}: nothing within 10 s"))
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Outcome {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

fn e<E: std::fmt::Debug>(what: &'static str) -> impl FnOnce(E) -> String {
    move |err| format!("{what}: {err:?}")
}

async fn connect(hosts: &str) -> Result<zk::Client, String> {
    zk::Client::connector()
        .session_timeout(Duration::from_secs(10))
        .connect(hosts)
        .await
        .map_err(e("connect"))
}

fn persistent() -> zk::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

/// create, get, set, delete: data, stat fields and versions, and the errors.
async fn crud(hosts: String, root: String) -> Outcome {
    let c = connect(&hosts).await?;
    let p = format!("{root}/crud");
    let (created, _) = c
        .create(&p, b"one", &persistent())
        .await
        .map_err(e("create"))?;
    let (data, stat) = c.get_data(&p).await.map_err(e("get_data"))?;
    ensure(data == b"one" && stat == created, || {
        format!("{data:?} {stat:?} {created:?}")
    })?;
    ensure(
        stat.version == 0 && stat.data_length == 3 && stat.czxid == stat.mzxid,
        || format!("fresh stat {stat:?}"),
    )?;
    let set = c
        .set_data(&p, b"two!", Some(0))
        .await
        .map_err(e("set_data"))?;
    ensure(
        set.version == 1 && set.data_length == 4 && set.mzxid > set.czxid,
        || format!("stat after set {set:?}"),
    )?;
    let r = c.set_data(&p, b"x", Some(0)).await;
    ensure(r == Err(zk::Error::BadVersion), || {
        format!("stale set: {r:?}")
    })?;
    let r = c.create(&p, b"", &persistent()).await;
    ensure(matches!(r, Err(zk::Error::NodeExists)), || {
        format!("second create: {r:?}")
    })?;
    let r = c
        .create(&format!("{root}/no/such"), b"", &persistent())
        .await;
    ensure(matches!(r, Err(zk::Error::NoNode)), || {
        format!("orphan create: {r:?}")
    })?;
    c.create(&format!("{p}/kid"), b"", &persistent())
        .await
        .map_err(e("child"))?;
    let r = c.delete(&p, None).await;
    ensure(r == Err(zk::Error::NotEmpty), || {
        format!("delete non-empty: {r:?}")
    })?;
    let (kids, parent) = c.get_children(&p).await.map_err(e("get_children"))?;
    ensure(
        kids == ["kid"] && parent.num_children == 1 && parent.cversion == 1,
        || format!("{kids:?} {parent:?}"),
    )?;
    c.delete(&format!("{p}/kid"), Some(0))
        .await
        .map_err(e("delete child"))?;
    c.delete(&p, Some(1)).await.map_err(e("delete"))?;
    let r = c.check_stat(&p).await.map_err(e("exists"))?;
    ensure(r.is_none(), || format!("deleted node still there: {r:?}"))
}

/// Sequential names, ephemeral owners, getEphemerals, getAllChildrenNumber.
async fn sequential_and_ephemeral(hosts: String, root: String) -> Outcome {
    let c = connect(&hosts).await?;
    let dir = format!("{root}/seq");
    c.create(&dir, b"", &persistent()).await.map_err(e("dir"))?;
    let seq = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
    let eph = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
    let mut names = Vec::new();
    for i in 0..3 {
        let opts = if i == 1 { &eph } else { &seq };
        let (_, s) = c
            .create(&format!("{dir}/n-"), b"", opts)
            .await
            .map_err(e("seq"))?;
        names.push(format!("n-{s}"));
    }
    ensure(
        names == ["n-0000000000", "n-0000000001", "n-0000000002"],
        || format!("{names:?}"),
    )?;
    let stat = c
        .check_stat(&format!("{dir}/n-0000000001"))
        .await
        .map_err(e("stat"))?;
    ensure(
        stat.map(|s| s.ephemeral_owner) == Some(c.session_id().0),
        || format!("owner {stat:?} vs {}", c.session_id()),
    )?;
    let ephemerals = c.list_ephemerals(&dir).await.map_err(e("getEphemerals"))?;
    ensure(ephemerals == [format!("{dir}/n-0000000001")], || {
        format!("{ephemerals:?}")
    })?;
    let n = c
        .count_descendants_number(&dir)
        .await
        .map_err(e("getAllChildrenNumber"))?;
    ensure(n == 3, || format!("descendants {n}"))?;
    // Another session's view: the ephemeral goes with its session.
    let other = connect(&hosts).await?;
    drop(c);
    within("ephemeral removed at close", async {
        loop {
            match other.check_stat(&format!("{dir}/n-0000000001")).await {
                Ok(None) => return Ok(()),
                Ok(Some(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(err) => return Err(format!("{err:?}")),
            }
        }
    })
    .await?
}

/// One-shot data, exists and child watches: each fires once, with its type and path.
async fn oneshot_watches(hosts: String, root: String) -> Outcome {
    let c = connect(&hosts).await?;
    let p = format!("{root}/w");
    let (stat, w) = c
        .check_and_watch_stat(&p)
        .await
        .map_err(e("exists watch"))?;
    ensure(stat.is_none(), || "node exists already".into())?;
    c.create(&p, b"a", &persistent())
        .await
        .map_err(e("create"))?;
    let ev = within("NodeCreated", w.changed()).await?;
    ensure(
        ev.event_type == EventType::NodeCreated && ev.path == p,
        || format!("{ev:?}"),
    )?;
    let (_, _, w) = c.get_and_watch_data(&p).await.map_err(e("data watch"))?;
    let (_, _, cw) = c
        .get_and_watch_children(&p)
        .await
        .map_err(e("child watch"))?;
    c.set_data(&p, b"b", None).await.map_err(e("set"))?;
    let ev = within("NodeDataChanged", w.changed()).await?;
    ensure(
        ev.event_type == EventType::NodeDataChanged && ev.path == p,
        || format!("{ev:?}"),
    )?;
    c.create(&format!("{p}/k"), b"", &persistent())
        .await
        .map_err(e("child"))?;
    let ev = within("NodeChildrenChanged", cw.changed()).await?;
    ensure(
        ev.event_type == EventType::NodeChildrenChanged && ev.path == p,
        || format!("{ev:?}"),
    )?;
    // A watch fires before the reply to a later read of the change (the client sees
    // the event first): set, then read with a new watch; the old one has fired.
    let (_, _, w) = c.get_and_watch_data(&p).await.map_err(e("data watch 2"))?;
    let other = connect(&hosts).await?;
    other
        .delete(&format!("{p}/k"), None)
        .await
        .map_err(e("other delete"))?;
    other
        .delete(&p, None)
        .await
        .map_err(e("other delete parent"))?;
    let ev = within("NodeDeleted", w.changed()).await?;
    ensure(
        ev.event_type == EventType::NodeDeleted && ev.path == p,
        || format!("{ev:?}"),
    )
}

/// A persistent recursive watch sees the subtree's changes in order and stays.
async fn persistent_watches(hosts: String, root: String) -> Outcome {
    let c = connect(&hosts).await?;
    let p = format!("{root}/pw");
    c.create(&p, b"", &persistent())
        .await
        .map_err(e("create"))?;
    let mut w = c
        .watch(&p, AddWatchMode::PersistentRecursive)
        .await
        .map_err(e("addWatch"))?;
    let other = connect(&hosts).await?;
    other
        .create(&format!("{p}/a"), b"", &persistent())
        .await
        .map_err(e("a"))?;
    other
        .create(&format!("{p}/a/b"), b"", &persistent())
        .await
        .map_err(e("b"))?;
    other
        .set_data(&format!("{p}/a/b"), b"x", None)
        .await
        .map_err(e("set"))?;
    other
        .delete(&format!("{p}/a/b"), None)
        .await
        .map_err(e("del"))?;
    let want = [
        (EventType::NodeCreated, format!("{p}/a")),
        (EventType::NodeCreated, format!("{p}/a/b")),
        (EventType::NodeDataChanged, format!("{p}/a/b")),
        (EventType::NodeDeleted, format!("{p}/a/b")),
    ];
    for (t, path) in want {
        let ev = within("recursive event", w.changed()).await?;
        ensure(ev.event_type == t && ev.path == path, || {
            format!("want {t:?} {path}, got {ev:?}")
        })?;
    }
    Ok(())
}

/// multi: all or nothing, per-op results, the failing op's index and error.
async fn multi(hosts: String, root: String) -> Outcome {
    let c = connect(&hosts).await?;
    let p = format!("{root}/m");
    let mut w = c.new_multi_writer();
    w.add_create(&p, b"x", &persistent())
        .map_err(e("add_create"))?;
    w.add_set_data(&p, b"y", Some(0)).map_err(e("add_set"))?;
    w.add_check_version(&p, 1).map_err(e("add_check"))?;
    w.add_create(&format!("{p}/c"), b"", &persistent())
        .map_err(e("add_create 2"))?;
    let r = w.commit().await.map_err(e("commit"))?;
    ensure(r.len() == 4, || format!("{r:?}"))?;
    ensure(
        matches!(&r[0], zk::MultiWriteResult::Create { path, .. } if *path == p),
        || format!("{:?}", r[0]),
    )?;
    ensure(matches!(&r[2], zk::MultiWriteResult::Check), || {
        format!("{:?}", r[2])
    })?;
    let mut w = c.new_multi_writer();
    w.add_delete(&format!("{p}/c"), None)
        .map_err(e("add_delete"))?;
    w.add_check_version(&p, 7).map_err(e("add_check"))?;
    let r = w.commit().await;
    ensure(
        matches!(
            r,
            Err(zk::MultiWriteError::OperationFailed {
                index: 1,
                source: zk::Error::BadVersion
            })
        ),
        || format!("failing multi: {r:?}"),
    )?;
    let kids = c.list_children(&p).await.map_err(e("children"))?;
    ensure(kids == ["c"], || {
        format!("the failed multi changed the tree: {kids:?}")
    })?;
    let mut r = c.new_multi_reader();
    r.add_get_data(&p).map_err(e("add_get_data"))?;
    r.add_get_children(&p).map_err(e("add_get_children"))?;
    r.add_get_data(&format!("{p}/none"))
        .map_err(e("add_get_data 2"))?;
    let got = r.commit().await.map_err(e("multiRead"))?;
    let text = format!("{got:?}");
    ensure(got.len() == 3 && text.contains("NoNode"), || text)
}

/// ACLs: a digest-protected node refuses others (NOAUTH), serves its owner; whoAmI.
async fn acl_and_auth(hosts: String, root: String) -> Outcome {
    let owner = connect(&hosts).await?;
    owner
        .auth("digest".into(), b"alice:secret".to_vec())
        .await
        .map_err(e("auth"))?;
    let users = owner.list_auth_users().await.map_err(e("whoAmI"))?;
    ensure(
        users
            .iter()
            .any(|u| u.scheme() == "digest" && u.user() == "alice"),
        || format!("{users:?}"),
    )?;
    let p = format!("{root}/acl");
    let opts = CreateMode::Persistent.with_acls(Acls::creator_all());
    owner
        .create(&p, b"mine", &opts)
        .await
        .map_err(e("create"))?;
    let (acl, _) = owner.get_acl(&p).await.map_err(e("get_acl"))?;
    ensure(acl.len() == 1 && acl[0].scheme() == "digest", || {
        format!("{acl:?}")
    })?;
    let stranger = connect(&hosts).await?;
    let r = stranger.get_data(&p).await;
    ensure(r == Err(zk::Error::NoAuth), || {
        format!("stranger read: {r:?}")
    })?;
    let (data, _) = owner.get_data(&p).await.map_err(e("owner read"))?;
    ensure(data == b"mine", || format!("{data:?}"))?;
    let read_only = [Acl::new(Permission::READ, AuthId::new("world", "anyone"))];
    owner
        .set_acl(&p, &Acls::new(&read_only), None)
        .await
        .map_err(e("set_acl"))?;
    let (data, _) = stranger
        .get_data(&p)
        .await
        .map_err(e("read after setAcl"))?;
    ensure(data == b"mine", || format!("{data:?}"))?;
    let r = stranger.set_data(&p, b"x", None).await;
    ensure(r == Err(zk::Error::NoAuth), || {
        format!("stranger write: {r:?}")
    })
}

/// A chrooted client: paths, watches and sequential names are relative to the chroot.
async fn chroot(hosts: String, root: String) -> Outcome {
    let c = connect(&hosts).await?;
    let base = format!("{root}/chroot");
    c.create(&base, b"", &persistent())
        .await
        .map_err(e("base"))?;
    let rooted = connect(&format!("{hosts}{base}")).await?;
    let seq = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
    let (_, s) = rooted
        .create("/x-", b"in", &seq)
        .await
        .map_err(e("create"))?;
    let name = format!("/x-{s}");
    let (data, _) = c
        .get_data(&format!("{base}{name}"))
        .await
        .map_err(e("outside view"))?;
    ensure(data == b"in", || format!("{data:?}"))?;
    let (_, _, w) = rooted.get_and_watch_data(&name).await.map_err(e("watch"))?;
    c.set_data(&format!("{base}{name}"), b"out", None)
        .await
        .map_err(e("set"))?;
    let ev = within("chrooted event", w.changed()).await?;
    ensure(ev.path == name, || {
        format!("event path {ev:?}, want {name}")
    })?;
    let kids = rooted.list_children("/").await.map_err(e("ls /"))?;
    ensure(kids == [name[1..].to_owned()], || format!("{kids:?}"))
}

/// Container and TTL nodes (the server needs extendedTypesEnabled).
async fn extended_types(hosts: String, root: String) -> Outcome {
    let c = connect(&hosts).await?;
    let container = format!("{root}/container");
    let opts = CreateMode::Container.with_acls(Acls::anyone_all());
    c.create(&container, b"", &opts)
        .await
        .map_err(e("container"))?;
    // Clients see a container's owner field as 0 (the server keeps its mark inside).
    let stat = c.check_stat(&container).await.map_err(e("stat"))?;
    ensure(stat.map(|s| s.ephemeral_owner) == Some(0), || {
        format!("{stat:?}")
    })?;
    c.create(&format!("{container}/k"), b"", &persistent())
        .await
        .map_err(e("child"))?;
    let ttl = format!("{root}/ttl");
    let opts = CreateMode::Persistent
        .with_acls(Acls::anyone_all())
        .with_ttl(Duration::from_secs(3600));
    let (stat, _) = c.create(&ttl, b"t", &opts).await.map_err(e("ttl"))?;
    // As for containers, clients see 0 where the server keeps the TTL.
    ensure(stat.ephemeral_owner == 0 && stat.version == 0, || {
        format!("ttl stat {stat:?}")
    })?;
    let (data, _) = c.get_data(&ttl).await.map_err(e("ttl get"))?;
    ensure(data == b"t", || format!("{data:?}"))?;
    let opts = CreateMode::Persistent
        .with_acls(Acls::anyone_all())
        .with_ttl(Duration::from_millis(0x100_0000_0000));
    let r = c.create(&format!("{root}/ttl-big"), b"", &opts).await;
    ensure(r.is_err(), || {
        format!("a TTL above 2^40-1 ms was taken: {r:?}")
    })
}

/// Per-session order: 300 creates issued without waiting get increasing zxids in issue
/// order, and a sync then a read sees them all.
async fn pipelined_order(hosts: String, root: String) -> Outcome {
    let c = connect(&hosts).await?;
    let dir = format!("{root}/pipe");
    c.create(&dir, b"", &persistent()).await.map_err(e("dir"))?;
    let opts = persistent();
    let paths: Vec<String> = (0..300).map(|i| format!("{dir}/n{i:03}")).collect();
    let futures: Vec<_> = paths.iter().map(|p| c.create(p, b"", &opts)).collect();
    let mut last = 0;
    for (i, f) in futures.into_iter().enumerate() {
        let (stat, _) = f.await.map_err(e("pipelined create"))?;
        ensure(stat.czxid > last, || {
            format!("create {i}: zxid {:#x} after {last:#x}", stat.czxid)
        })?;
        last = stat.czxid;
    }
    c.sync(&dir).await.map_err(e("sync"))?;
    let n = c.list_children(&dir).await.map_err(e("children"))?.len();
    ensure(n == 300, || format!("{n} children"))
}

/// The crate's Curator-compatible lock: one holder at a time, the next gets it after
/// release.
async fn curator_lock(hosts: String, root: String) -> Outcome {
    let (a, b) = (connect(&hosts).await?, connect(&hosts).await?);
    let dir = format!("{root}/lock");
    a.create(&dir, b"", &persistent()).await.map_err(e("dir"))?;
    let prefix = || zk::LockPrefix::new_curator(&dir, "lock-").map_err(e("prefix"));
    let held = a
        .lock(prefix()?, b"a", Acls::anyone_all())
        .await
        .map_err(e("lock a"))?;
    let waiter = b.lock(prefix()?, b"b", Acls::anyone_all());
    tokio::pin!(waiter);
    let early = tokio::time::timeout(Duration::from_millis(500), &mut waiter).await;
    ensure(early.is_err(), || "b took the lock while a held it".into())?;
    let kids = a.list_children(&dir).await.map_err(e("contenders"))?;
    ensure(
        kids.len() == 2 && kids.iter().all(|k| k.starts_with("_c_")),
        || format!("{kids:?}"),
    )?;
    drop(held);
    let got = within("lock after release", &mut waiter)
        .await?
        .map_err(e("lock b"))?;
    ensure(got.lock_path().starts_with(&format!("{dir}/_c_")), || {
        got.lock_path().to_owned()
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let hosts = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    let checks: &[(&str, Check)] = &[
        ("create, get, set, delete and their errors", |h, r| {
            Box::pin(crud(h, r))
        }),
        ("sequential and ephemeral nodes", |h, r| {
            Box::pin(sequential_and_ephemeral(h, r))
        }),
        ("one-shot watches", |h, r| Box::pin(oneshot_watches(h, r))),
        ("persistent recursive watch", |h, r| {
            Box::pin(persistent_watches(h, r))
        }),
        ("multi and multiRead", |h, r| Box::pin(multi(h, r))),
        ("ACLs and digest auth", |h, r| Box::pin(acl_and_auth(h, r))),
        ("chroot", |h, r| Box::pin(chroot(h, r))),
        ("container and TTL nodes", |h, r| {
            Box::pin(extended_types(h, r))
        }),
        ("pipelined creates in order", |h, r| {
            Box::pin(pipelined_order(h, r))
        }),
        ("Curator-compatible lock", |h, r| {
            Box::pin(curator_lock(h, r))
        }),
    ];
    let admin = match connect(&hosts).await {
        Ok(c) => c,
        Err(err) => {
            println!("FAIL  {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let run = format!("/zkc-{}", std::process::id());
    if let Err(err) = admin.create(&run, b"", &persistent()).await {
        println!("FAIL  creating {run}: {err:?}");
        return std::process::ExitCode::FAILURE;
    }
    let mut failed = 0;
    for (i, (name, check)) in checks.iter().enumerate() {
        let root = format!("{run}/{i}");
        let result = match admin.create(&root, b"", &persistent()).await {
            Ok(_) => check(hosts.clone(), root).await,
            Err(err) => Err(format!("test root: {err:?}")),
        };
        match result {
            Ok(()) => println!("ok    {name}"),
            Err(why) => {
                failed += 1;
                println!("FAIL  {name}: {why}");
            }
        }
    }
    println!(
        "zookeeper-client checks: {} passed, {failed} failed",
        checks.len() - failed
    );
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
