//! The server on its data directory: writes survive a clean shutdown and a crash (the
//! process state abandoned without shutdown), the zxid counter continues, recovered
//! sessions come back (their ephemerals survive when the client resumes with id +
//! password, and go when it does not), background snapshots follow snapCount and
//! recovery from snapshot + logs rebuilds the same tree.

mod support;

use bytes::Bytes;
use rzk_proto::multi::{MultiOp, MultiRequest};
use rzk_proto::opcode::perms;
use rzk_proto::records::{Acl, CreateRequest, DeleteRequest, SetDataRequest};
use rzk_proto::Jute;
use rzk_server::config::Config;
use rzk_server::storage::db::SnapshotOptions;
use rzk_server::storage::files;
use rzk_server::storage::{open, Replayed};
use rzk_server::tree::DataTree;
use rzk_testkit::raw::RawClient;
use rzk_testkit::server::TestServer;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const EPHEMERAL: i32 = 1;
const SEQUENTIAL: i32 = 2;
/// Session timeout of the clients whose ephemerals are checked after a restart.
const EPH_TIMEOUT_MS: i32 = 1500;

fn paths(t: &DataTree) -> Vec<String> {
    let mut v = Vec::new();
    t.for_each_snapshot_node(|p, _, _, _| {
        v.push(if p.is_empty() {
            "/".into()
        } else {
            p.to_owned()
        })
    });
    v.sort();
    v
}

fn assert_same_tree(a: &DataTree, b: &DataTree) {
    assert_eq!(paths(a), paths(b));
    for p in paths(a) {
        assert_eq!(a.get_data(&p), b.get_data(&p), "data/stat of {p}");
        assert_eq!(a.get_acl(&p), b.get_acl(&p), "acl of {p}");
        assert_eq!(a.stat_persisted(&p), b.stat_persisted(&p), "stat of {p}");
    }
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.last_zxid(), b.last_zxid());
}

fn create_req(path: &str, data: &[u8], acl: Vec<Acl>, flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Bytes::copy_from_slice(data).into(),
        acl,
        flags,
    }
}

/// What phase one leaves for phase two to check.
struct Written {
    tree: DataTree,
    /// (session, password) of the client that will resume, and of the one that will not.
    resumer: (i64, Bytes),
    deserter: i64,
}

/// Writes persistent, sequential, ephemeral, ACL'd and multi-op data.
async fn write_everything(server: &TestServer) -> Written {
    let addr = server.addr();
    let mut c = RawClient::connect(addr, 10_000).await;
    assert_eq!(c.create("/app", b"root", 0).await.0, 0);
    for i in 0..5 {
        let (err, path) = c
            .create("/app/seq-", format!("{i}").as_bytes(), SEQUENTIAL)
            .await;
        assert_eq!(err, 0);
        assert_eq!(path, format!("/app/seq-{i:010}"));
    }
    assert_eq!(c.delete("/app/seq-0000000002", -1).await, 0);
    c.set_data("/app", b"root-2", 0).await.expect("setData");
    let secret = vec![Acl::new(
        perms::ALL,
        "digest",
        "alice:yTxmg3U9c3XVXQ/mR9lSxVF0dzM=",
    )];
    let (h, _) = c
        .call(1, &create_req("/app/secret", b"s", secret, 0).to_bytes())
        .await;
    assert_eq!(h.err, 0);
    let ro = vec![Acl::new(perms::READ, "world", "anyone")];
    let (h, _) = c
        .call(1, &create_req("/app/readonly", b"r", ro, 0).to_bytes())
        .await;
    assert_eq!(h.err, 0);
    let multi = MultiRequest {
        ops: vec![
            MultiOp::Create(1, create_req("/app/m1", b"m1", Acl::open_unsafe(), 0)),
            MultiOp::Create(1, create_req("/app/m2", b"m2", Acl::open_unsafe(), 0)),
            MultiOp::SetData(SetDataRequest {
                path: "/app/m1".into(),
                data: Bytes::from_static(b"m1-2").into(),
                version: 0,
            }),
            MultiOp::Delete(DeleteRequest {
                path: "/app/m2".into(),
                version: 0,
            }),
        ],
    };
    let (h, _) = c.call(14, &multi.to_bytes()).await;
    assert_eq!(h.err, 0, "multi");

    let mut resumer = RawClient::connect(addr, EPH_TIMEOUT_MS).await;
    assert_eq!(resumer.create("/app/eph-stays", b"1", EPHEMERAL).await.0, 0);
    let mut deserter = RawClient::connect(addr, EPH_TIMEOUT_MS).await;
    assert_eq!(deserter.create("/app/eph-goes", b"2", EPHEMERAL).await.0, 0);
    // A write after both: every earlier reply was sent after its fsync.
    assert_eq!(c.create("/app/last", b"", 0).await.0, 0);
    let tree = server.server().shared().tree().clone();
    Written {
        tree,
        resumer: (resumer.session_id(), resumer.passwd()),
        deserter: deserter.session_id(),
    }
}

/// Restarts on the same dir and port and checks the tree, zxids and sessions.
async fn restart_and_check(server: &mut TestServer, w: Written) {
    server.restart();
    let addr = server.addr();
    {
        let shared = server.server().shared();
        assert_same_tree(&w.tree, &shared.tree());
        let sessions = shared.sessions();
        assert!(
            sessions.contains(rzk_proto::SessionId(w.resumer.0)),
            "resumer's session recovered"
        );
        assert!(
            sessions.contains(rzk_proto::SessionId(w.deserter)),
            "deserter's session recovered"
        );
    }
    let last_before = w.tree.last_zxid().0;

    // The resumer comes back in time with its id and password.
    let mut r = RawClient::resume(addr, EPH_TIMEOUT_MS, w.resumer.0, w.resumer.1.clone())
        .await
        .map_err(|_| "resume refused")
        .expect("session resumes after restart");
    assert_eq!(r.session_id(), w.resumer.0);

    // zxids continue after the recovered ones.
    let mut c = RawClient::connect(addr, 10_000).await;
    assert_eq!(c.create("/after", b"", 0).await.0, 0);
    let st = c.exists("/after", false).await.expect("exists");
    assert!(
        st.czxid > last_before,
        "czxid 0x{:x} continues after 0x{last_before:x}",
        st.czxid
    );
    // (A restart is a new election of the ensemble of one: a new epoch, as every
    // ZooKeeper ensemble member does; see docs/COMPATIBILITY.md.)

    // The deserter's ephemeral goes once its timeout passes; the resumer's stays.
    let deadline = Instant::now() + Duration::from_millis(EPH_TIMEOUT_MS as u64 * 4);
    loop {
        r.ping().await;
        if c.exists("/app/eph-goes", false).await.is_err() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deserter's ephemeral did not expire"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..10 {
        r.ping().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let st = c
        .exists("/app/eph-stays", false)
        .await
        .expect("resumed ephemeral survives");
    assert_eq!(st.ephemeral_owner, w.resumer.0);
    assert!(!server
        .server()
        .shared()
        .sessions()
        .contains(rzk_proto::SessionId(w.deserter)));
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_shutdown_and_restart_keeps_everything() {
    let mut server = TestServer::start();
    let w = write_everything(&server).await;
    server.stop();
    restart_and_check(&mut server, w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_without_shutdown_keeps_every_acknowledged_write() {
    let mut server = TestServer::start();
    let w = write_everything(&server).await;
    // Abandoned without shutdown, as a killed process would be: nothing is flushed or
    // closed, every task of its runtime is dropped. The idle pipeline threads of the dead
    // server write nothing more.
    server.crash();
    restart_and_check(&mut server, w).await;
}

/// Recovers the database in `dir` as a restart would (without starting a server): the
/// one start-up path (`storage::open`), then every logged txn applied in order.
fn reload(dir: &Path) -> Replayed {
    let cfg = Config {
        data_dir: dir.to_path_buf(),
        data_log_dir: dir.to_path_buf(),
        ..Config::default()
    };
    open(&cfg).and_then(|r| r.replay_log()).expect("load")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_follow_snap_count_and_recovery_rebuilds_the_same_tree() {
    let mut server = TestServer::builder()
        .configure(|c| {
            c.snap_count = 20;
            c.pre_alloc_size_kb = 64;
        })
        .start();
    let mut c = RawClient::connect(server.addr(), 10_000).await;
    assert_eq!(c.create("/s", b"", 0).await.0, 0);
    for i in 0..300 {
        let (err, _) = c
            .create("/s/n-", format!("{i}").as_bytes(), SEQUENTIAL)
            .await;
        assert_eq!(err, 0);
        if i % 3 == 0 {
            c.set_data("/s", format!("{i}").as_bytes(), -1)
                .await
                .expect("setData");
        }
    }
    // snapCount 20: a snapshot every 11..20 txns, skipped while one is running.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server
        .server()
        .shared()
        .stats
        .snapshots
        .load(Ordering::Relaxed)
        < 5
    {
        assert!(Instant::now() < deadline, "no background snapshots");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let live = server.server().shared().tree().clone();
    server.stop();
    let d = server.data_dir();
    let v2 = files::version_dir(d);
    let snaps = files::list_snapshots(&v2).expect("list");
    let logs = files::list_logs(&v2).expect("list");
    assert!(snaps.len() >= 5, "snapshots: {}", snaps.len());
    assert!(
        logs.len() >= 5,
        "the log is rolled at each snapshot: {}",
        logs.len()
    );

    // Newest snapshot + the logs after it.
    let db = reload(d);
    assert_same_tree(&live, &db.tree);
    let newest = db.report.snapshot.clone().expect("snapshot used");
    assert!(newest.zxid.0 > 0);

    // Without the newer snapshots, an older one + more log gives the same tree.
    let mut by_zxid: Vec<_> = snaps.iter().map(|(f, _)| f.clone()).collect();
    by_zxid.sort_by_key(|f| f.zxid);
    let keep = &by_zxid[by_zxid.len() / 2];
    for f in by_zxid.iter().filter(|f| f.zxid > keep.zxid) {
        std::fs::remove_file(&f.path).expect("rm");
    }
    let db = reload(d);
    assert_eq!(db.report.snapshot.as_ref().map(|s| s.zxid), Some(keep.zxid));
    assert!(db.report.txns_replayed > 0);
    assert_same_tree(&live, &db.tree);

    // And snapshot.0 + every log.
    for f in by_zxid.iter().filter(|f| f.zxid.0 > 0) {
        let _ = std::fs::remove_file(&f.path);
    }
    let db = reload(d);
    assert_eq!(db.report.snapshot.as_ref().map(|s| s.zxid.0), Some(0));
    assert_same_tree(&live, &db.tree);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_stops_start_up_naming_the_file() {
    let mut server = TestServer::start();
    let mut c = RawClient::connect(server.addr(), 10_000).await;
    for i in 0..20 {
        assert_eq!(c.create(&format!("/n{i}"), b"data", 0).await.0, 0);
    }
    server.stop();
    // Flip a byte inside an early record of the log (not its torn tail).
    let v2 = files::version_dir(server.data_dir());
    let log = files::list_logs(&v2).expect("list").pop().expect("a log");
    let mut bytes = std::fs::read(&log.path).expect("read");
    bytes[16 + 20] ^= 0xff;
    std::fs::write(&log.path, &bytes).expect("write");
    let err = server
        .try_restart_with(|_| {})
        .expect_err("corrupt log refuses to load");
    let msg = err.to_string();
    let name = log.path.file_name().and_then(|n| n.to_str()).expect("name");
    assert!(msg.contains(name), "message names the file: {msg}");
    assert!(msg.contains("offset"), "message names the offset: {msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_ephemerals_are_closed_through_the_write_path() {
    use rzk_server::storage::db::save_snapshot;
    const ORPHAN: i64 = 0x0100_0000_dead_0000;
    let d = tempfile::tempdir().expect("tempdir");
    // A snapshot whose tree holds an ephemeral of a session missing from its table.
    let mut tree = DataTree::new();
    let r = tree.apply(&support::ephemeral_create(ORPHAN, "/orphan"));
    assert_eq!(r.zxid.0, 1);
    assert_eq!(
        tree.stat("/orphan").map(|s| s.ephemeral_owner),
        Some(ORPHAN)
    );
    save_snapshot(tree.clone(), &[], d.path(), SnapshotOptions::default()).expect("snapshot");

    let mut server = TestServer::builder().data_dir(d.path()).start();
    let shared = server.server().shared().clone();
    let deadline = Instant::now() + Duration::from_secs(5);
    while shared.tree().exists("/orphan") {
        assert!(Instant::now() < deadline, "orphan ephemeral not removed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let closed_at = shared.tree().last_zxid().0;
    assert!(closed_at > 1, "closed by a logged txn (0x{closed_at:x})");
    server.stop();
    // The close is durable: a restart does not bring the ephemeral back.
    let db = reload(d.path());
    assert!(!db.tree.exists("/orphan"));
    assert!(db.orphan_sessions.is_empty());
    assert_eq!(db.last_zxid.0, closed_at);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_fsyncs() {
    const CLIENTS: usize = 8;
    const PER_CLIENT: i32 = 50;
    let mut server = TestServer::start();
    let addr = server.addr();
    let shared = server.server().shared().clone();
    let stats = &shared.stats;
    let (fsyncs0, txns0) = (
        stats.fsyncs.load(Ordering::Relaxed),
        stats.txns_logged.load(Ordering::Relaxed),
    );
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        tasks.push(tokio::spawn(async move {
            let mut cl = RawClient::connect(addr, 10_000).await;
            // Pipelined: every request is sent before any reply is read.
            for i in 1..=PER_CLIENT {
                let req = create_req(&format!("/c{c}-{i}"), b"x", Acl::open_unsafe(), 0);
                cl.send(i, 1, &req.to_bytes()).await;
            }
            for i in 1..=PER_CLIENT {
                let (h, _) = cl.reply(i).await;
                assert_eq!(h.err, 0);
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    let fsyncs = stats.fsyncs.load(Ordering::Relaxed) - fsyncs0;
    let txns = stats.txns_logged.load(Ordering::Relaxed) - txns0;
    eprintln!("group commit: {fsyncs} fsyncs for {txns} txns");
    assert!(
        txns >= (CLIENTS * PER_CLIENT as usize) as u64,
        "txns {txns}"
    );
    assert!(
        fsyncs * 2 < txns,
        "group commit: {fsyncs} fsyncs for {txns} txns"
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autopurge_keeps_the_configured_snapshots() {
    let mut server = TestServer::builder()
        .configure(|c| {
            c.snap_count = 10;
            c.pre_alloc_size_kb = 64;
        })
        .start();
    let mut c = RawClient::connect(server.addr(), 10_000).await;
    for i in 0..120 {
        assert_eq!(c.create(&format!("/p{i}"), b"", 0).await.0, 0);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while server
        .server()
        .shared()
        .stats
        .snapshots
        .load(Ordering::Relaxed)
        < 5
    {
        assert!(Instant::now() < deadline, "no background snapshots");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop();
    let v2 = files::version_dir(server.data_dir());
    let count = || files::list_snapshots(&v2).expect("list").len();
    assert!(count() > 5, "snapshots before purge: {}", count());
    server.restart_with(|c| {
        c.autopurge_purge_interval_hours = 1;
        c.autopurge_snap_retain_count = 3;
    });
    // The first purge keeps the 3 newest; the snapshot the server takes once it has
    // applied its recovered log may land after it (as in ZooKeeper, whose purge task
    // starts before the database is loaded), so 3 or 4 remain.
    let deadline = Instant::now() + Duration::from_secs(10);
    while count() > 4 {
        assert!(
            Instant::now() < deadline,
            "autopurge did not run: {}",
            count()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let live = server.server().shared().tree().clone();
    server.stop();
    // What is left still recovers the same tree.
    let db = reload(server.data_dir());
    assert_same_tree(&live, &db.tree);
    assert!((3..=4).contains(&count()), "{} snapshots", count());
}
