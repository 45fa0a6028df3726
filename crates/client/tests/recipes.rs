//! Recipes against a live server (`RZK_TEST_HOSTS`, or an in-process rzk).
//!
//! Run: `RZK_TEST_HOSTS=127.0.0.1:2181 cargo test -p rzk-client --test recipes`

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::proxy::Proxy;
use rzk_client::recipes::*;
use rzk_client::*;
use rzk_testkit::server::hosts_or_start;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn mutex_excludes_is_reentrant_and_uses_curator_names() {
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let b = common::connect(&hosts).await;
    let root = common::test_root(&a, "mutex").await;
    let lock = format!("{root}/lock");
    let m1 = Mutex::new(a.clone(), &lock).unwrap();
    let m2 = Mutex::new(b.clone(), &lock).unwrap();
    m1.acquire().await.unwrap();
    m1.acquire().await.unwrap();
    let node = m1.node().await.unwrap();
    let name = node.rsplit('/').next().unwrap();
    // _c_<36-char uuid>-lock-<10 digits>
    assert!(
        name.starts_with("_c_") && name.len() == 3 + 36 + 1 + 5 + 10,
        "{name}"
    );
    assert_eq!(&name[39..45], "-lock-");
    assert!(!m2.try_acquire(Duration::from_millis(300)).await.unwrap());
    // The timed-out attempt left no node behind.
    assert_eq!(a.get_children(&lock).await.unwrap().len(), 1);
    m1.release().await.unwrap();
    assert!(!m2.try_acquire(Duration::from_millis(300)).await.unwrap());
    m1.release().await.unwrap();
    assert!(m2.try_acquire(Duration::from_secs(5)).await.unwrap());
    assert!(m1.release().await.is_err());
    m2.release().await.unwrap();
    common::delete_all(&a, &root).await;
}

#[tokio::test]
async fn mutex_release_wakes_only_the_next_waiter() {
    let hosts = hosts_or_start();
    let admin = common::connect(&hosts).await;
    let root = common::test_root(&admin, "nextwaiter").await;
    let lock = format!("{root}/lock");
    const N: usize = 6;
    let mut clients = Vec::new();
    for _ in 0..N {
        clients.push(common::connect(&hosts).await);
    }
    let holder = Mutex::new(clients[0].clone(), &lock).unwrap();
    holder.acquire().await.unwrap();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (i, c) in clients.iter().enumerate().skip(1) {
        let (c, lk, order) = (c.clone(), lock.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let m = Mutex::new(c, &lk).unwrap();
            m.acquire().await.unwrap();
            order.lock().unwrap().push(i);
            tokio::time::sleep(Duration::from_millis(20)).await;
            m.release().await.unwrap();
        }));
        // Enter the queue in a known order.
        while admin.get_children(&lock).await.unwrap().len() < i + 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let before: u64 = clients
        .iter()
        .map(|c| c.counters().notifications.load(Ordering::Relaxed))
        .sum();
    holder.release().await.unwrap();
    for t in tasks {
        timeout(WAIT, t).await.unwrap().unwrap();
    }
    let after: u64 = clients
        .iter()
        .map(|c| c.counters().notifications.load(Ordering::Relaxed))
        .sum();
    assert_eq!(
        *order.lock().unwrap(),
        (1..N).collect::<Vec<_>>(),
        "FIFO order"
    );
    // One notification per hand-over (the next waiter's predecessor watch) plus one per
    // release (the holder's own loss monitor sees its node deleted): O(1) per
    // acquisition, the herd is not woken.
    assert_eq!(after - before, (N - 1 + N) as u64);
    common::delete_all(&admin, &root).await;
}

#[tokio::test]
async fn held_mutex_reports_loss_on_session_expiry() {
    let hosts = hosts_or_start();
    let other = common::connect(&hosts).await;
    let root = common::test_root(&other, "lost").await;
    let lock = format!("{root}/lock");
    let proxy = Proxy::start(hosts.split(',').next().unwrap()).await;
    let zk = Client::builder(&proxy.addr)
        .session_timeout(Duration::from_millis(4000))
        .connect()
        .await
        .unwrap();
    let m = Mutex::new(zk.clone(), &lock).unwrap();
    m.acquire().await.unwrap();
    assert!(m.is_acquired().await);
    let contender = Mutex::new(other.clone(), &lock).unwrap();
    assert!(!contender
        .try_acquire(Duration::from_millis(200))
        .await
        .unwrap());
    proxy.block(true);
    proxy.cut();
    let reason = timeout(Duration::from_secs(15), m.lost()).await.unwrap();
    assert_eq!(reason, LostReason::DisconnectedTooLong);
    assert!(!m.is_acquired().await);
    // After the server expires the session, the other process gets the lock.
    assert!(contender
        .try_acquire(Duration::from_secs(15))
        .await
        .unwrap());
    proxy.block(false);
    let mut st = zk.state_watcher();
    timeout(WAIT, st.wait_for(|s| *s == SessionState::Expired))
        .await
        .unwrap()
        .unwrap();
    contender.release().await.unwrap();
    common::delete_all(&other, &root).await;
}

#[tokio::test]
async fn deleting_the_lock_node_is_reported_as_loss() {
    let hosts = hosts_or_start();
    let zk = common::connect(&hosts).await;
    let root = common::test_root(&zk, "lostnode").await;
    let m = Mutex::new(zk.clone(), &format!("{root}/lock")).unwrap();
    m.acquire().await.unwrap();
    zk.delete(&m.node().await.unwrap(), None).await.unwrap();
    assert_eq!(
        timeout(WAIT, m.lost()).await.unwrap(),
        LostReason::NodeDeleted
    );
    common::delete_all(&zk, &root).await;
}

#[tokio::test]
async fn semaphore_mutex_is_not_reentrant() {
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let b = common::connect(&hosts).await;
    let root = common::test_root(&a, "semmutex").await;
    let p = format!("{root}/sem");
    let s1 = SemaphoreMutex::new(a.clone(), &p).unwrap();
    let s2 = SemaphoreMutex::new(b.clone(), &p).unwrap();
    s1.acquire().await.unwrap();
    assert!(matches!(s1.acquire().await, Err(Error::Recipe(_))));
    assert!(!s2.try_acquire(Duration::from_millis(300)).await.unwrap());
    let leases = a.get_children(&format!("{p}/leases")).await.unwrap();
    assert_eq!(leases.len(), 1);
    assert!(leases[0].starts_with("_c_") && leases[0].contains("-lease-"));
    s1.release().await.unwrap();
    assert!(s2.try_acquire(Duration::from_secs(5)).await.unwrap());
    s2.release().await.unwrap();
    common::delete_all(&a, &root).await;
}

#[tokio::test]
async fn read_write_lock_shares_reads_and_does_not_starve_writers() {
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let b = common::connect(&hosts).await;
    let c = common::connect(&hosts).await;
    let root = common::test_root(&a, "rw").await;
    let p = format!("{root}/rw");
    let l1 = ReadWriteLock::new(a.clone(), &p).unwrap();
    let l2 = Arc::new(ReadWriteLock::new(b.clone(), &p).unwrap());
    let l3 = ReadWriteLock::new(c.clone(), &p).unwrap();
    l1.read_lock().acquire().await.unwrap();
    assert!(
        l3.read_lock()
            .try_acquire(Duration::from_secs(2))
            .await
            .unwrap(),
        "readers share"
    );
    l3.read_lock().release().await.unwrap();
    // A writer queues behind the reader...
    // (The writer's task also reads through its write lock once it has it: a downgrade
    // is the holding task's, as in Curator it is the holding thread's.)
    let w = {
        let l2 = l2.clone();
        tokio::spawn(async move {
            l2.write_lock().acquire().await?;
            let downgraded = l2.read_lock().try_acquire(Duration::from_secs(1)).await?;
            if downgraded {
                l2.read_lock().release().await?;
            }
            Ok::<bool, Error>(downgraded)
        })
    };
    while a.get_children(&p).await.unwrap().len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ...and a later reader queues behind the writer.
    assert!(!l3
        .read_lock()
        .try_acquire(Duration::from_millis(300))
        .await
        .unwrap());
    l1.read_lock().release().await.unwrap();
    // The writer may also read (downgrade).
    assert!(timeout(WAIT, w).await.unwrap().unwrap().unwrap());
    l2.write_lock().release().await.unwrap();
    assert!(l3
        .read_lock()
        .try_acquire(Duration::from_secs(5))
        .await
        .unwrap());
    let names = a.get_children(&p).await.unwrap();
    assert!(names.iter().all(|n| n.contains("__READ__")), "{names:?}");
    l3.read_lock().release().await.unwrap();
    common::delete_all(&a, &root).await;
}

#[tokio::test]
async fn leader_latch_and_election() {
    let hosts = hosts_or_start();
    let admin = common::connect(&hosts).await;
    let root = common::test_root(&admin, "leader").await;
    let latch_path = format!("{root}/latch");
    let mut latches = Vec::new();
    for i in 0..3 {
        let c = common::connect(&hosts).await;
        latches.push(
            LeaderLatch::start(c, &latch_path, &format!("p{i}"))
                .await
                .unwrap(),
        );
    }
    assert!(latches[0].await_leadership(WAIT).await.unwrap());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(latches.iter().filter(|l| l.has_leadership()).count(), 1);
    assert_eq!(
        latches[1].participants().await.unwrap(),
        vec!["p0", "p1", "p2"]
    );
    let first = latches.remove(0);
    first.close().await.unwrap();
    assert!(latches[0].await_leadership(WAIT).await.unwrap());
    assert!(!latches[1].has_leadership());

    let e_path = format!("{root}/election");
    let e1 = LeaderElection::new(common::connect(&hosts).await, &e_path, "e1").unwrap();
    let e2 = Arc::new(LeaderElection::new(common::connect(&hosts).await, &e_path, "e2").unwrap());
    let lead1 = e1.lead().await.unwrap();
    let waiter = {
        let e2 = e2.clone();
        tokio::spawn(async move {
            let l = e2.lead().await.unwrap();
            l.relinquish().await.unwrap();
        })
    };
    while e1.participants().await.unwrap().len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(e1.participants().await.unwrap(), vec!["e1", "e2"]);
    assert!(lead1.is_valid().await);
    lead1.relinquish().await.unwrap();
    timeout(WAIT, waiter).await.unwrap().unwrap();
    common::delete_all(&admin, &root).await;
}

/// A latch's leadership watcher wakes only when leadership changes (Curator's
/// `setLeadership` tells its listeners only then). A break-it review (session 50) saw
/// `true` sent again to the leader and `false` to the waiter for every change of the
/// leader's node's data (the leader watches its own node, the waiter its predecessor),
/// and twice at start.
#[tokio::test]
async fn leader_latch_watcher_wakes_only_on_a_change() {
    let hosts = hosts_or_start();
    let admin = common::connect(&hosts).await;
    let root = common::test_root(&admin, "latch-changes").await;
    let path = format!("{root}/latch");
    let a = LeaderLatch::start(common::connect(&hosts).await, &path, "a")
        .await
        .unwrap();
    assert!(a.await_leadership(WAIT).await.unwrap());
    let b = LeaderLatch::start(common::connect(&hosts).await, &path, "b")
        .await
        .unwrap();
    while a.participants().await.unwrap().len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (mut wa, mut wb) = (a.leadership_watcher(), b.leadership_watcher());
    wa.mark_unchanged();
    wb.mark_unchanged();
    let node = a.node().expect("the leader's node");
    for i in 0..3 {
        admin
            .set_data(&node, format!("{i}").as_bytes(), None)
            .await
            .unwrap();
    }
    let quiet = Duration::from_millis(500);
    assert!(
        timeout(quiet, wa.changed()).await.is_err(),
        "the leader was told again it leads: {}",
        *wa.borrow()
    );
    assert!(
        timeout(quiet, wb.changed()).await.is_err(),
        "the waiter was told again it does not lead: {}",
        *wb.borrow()
    );
    assert!(a.has_leadership() && !b.has_leadership());
    // A real change still wakes both.
    a.close().await.unwrap();
    timeout(WAIT, wb.wait_for(|l| *l)).await.unwrap().unwrap();
    b.close().await.unwrap();
    common::delete_all(&admin, &root).await;
}

/// Consumers that share one client (one session) must not take the same item: each
/// claim is told apart by its token, not by its session (a break-it review saw 100
/// items delivered 297 times to 4 tasks on one client).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_consumers_sharing_a_client_take_each_item_once() {
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let root = common::test_root(&a, "queue-shared").await;
    let q = DistributedQueue::new(a.clone(), &format!("{root}/q")).unwrap();
    const ITEMS: usize = 60;
    for i in 0..ITEMS {
        q.put(format!("m{i}").as_bytes()).await.unwrap();
    }
    let mut consumers = Vec::new();
    for _ in 0..4 {
        let q = q.clone();
        consumers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(it) = q.try_take().await.unwrap() {
                got.push(String::from_utf8(it.data.clone()).unwrap());
                // Hold the claim a little, so that the others run into it.
                tokio::time::sleep(Duration::from_millis(2)).await;
                it.ack().await.unwrap();
            }
            got
        }));
    }
    let mut all = Vec::new();
    for c in consumers {
        all.extend(timeout(WAIT * 3, c).await.unwrap().unwrap());
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(n, all.len(), "items delivered more than once");
    assert_eq!(all.len(), ITEMS, "items lost");
    assert!(q.is_empty().await.unwrap());
    common::delete_all(&a, &root).await;
}

/// A claimed item dropped without `ack` or `abandon` (an early return, a panic) is handed
/// back: another consumer gets it at once, not when the first one's session ends.
#[tokio::test]
async fn a_dropped_queue_item_is_handed_back() {
    let hosts = hosts_or_start();
    let (a, b) = (common::connect(&hosts).await, common::connect(&hosts).await);
    let root = common::test_root(&a, "queue-drop").await;
    let p = format!("{root}/q");
    let qa = DistributedQueue::new(a.clone(), &p).unwrap();
    let qb = DistributedQueue::new(b.clone(), &p).unwrap();
    qa.put(b"only").await.unwrap();
    let it = qa.take().await.unwrap();
    assert!(
        qb.try_take().await.unwrap().is_none(),
        "claimed item taken twice"
    );
    drop(it);
    let again = timeout(WAIT, qb.take())
        .await
        .expect("the dropped item stayed claimed")
        .unwrap();
    assert_eq!(again.data, b"only");
    again.ack().await.unwrap();
    assert!(qa.is_empty().await.unwrap());
    common::delete_all(&a, &root).await;
}

#[tokio::test]
async fn queue_is_ordered_and_at_least_once() {
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let root = common::test_root(&a, "queue").await;
    let p = format!("{root}/q");
    let q = DistributedQueue::new(a.clone(), &p).unwrap();
    for i in 0..5 {
        q.put(format!("m{i}").as_bytes()).await.unwrap();
    }
    assert_eq!(q.len().await.unwrap(), 5);
    let it = q.take().await.unwrap();
    assert_eq!(it.data, b"m0");
    it.ack().await.unwrap();
    // A consumer that dies with a claimed item gives it back.
    let dying = common::connect(&hosts).await;
    let dq = DistributedQueue::new(dying.clone(), &p).unwrap();
    let claimed = dq.take().await.unwrap();
    assert_eq!(claimed.data, b"m1");
    let next = q.take().await.unwrap();
    assert_eq!(next.data, b"m2", "claimed item is skipped");
    next.abandon().await.unwrap();
    dying.close().await.unwrap();
    let again = timeout(WAIT, q.take()).await.unwrap().unwrap();
    assert_eq!(
        again.data, b"m1",
        "item of the dead consumer is delivered again"
    );
    again.ack().await.unwrap();
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..4 {
                let it = q.take().await.unwrap();
                got.push(String::from_utf8(it.data.clone()).unwrap());
                it.ack().await.unwrap();
            }
            got
        })
    };
    q.put(b"m5").await.unwrap();
    let got = timeout(WAIT, waiter).await.unwrap().unwrap();
    assert_eq!(got, vec!["m2", "m3", "m4", "m5"]);
    assert!(q.is_empty().await.unwrap());
    common::delete_all(&a, &root).await;
}

#[tokio::test]
async fn barriers_and_counter() {
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let root = common::test_root(&a, "barrier").await;
    let b = Barrier::new(a.clone(), &format!("{root}/b")).unwrap();
    b.set().await.unwrap();
    assert!(!b.wait(Some(Duration::from_millis(200))).await.unwrap());
    let w = {
        let b = b.clone();
        tokio::spawn(async move { b.wait(None).await })
    };
    b.remove().await.unwrap();
    assert!(timeout(WAIT, w).await.unwrap().unwrap().unwrap());

    let dpath = format!("{root}/double");
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let c = common::connect(&hosts).await;
        let dpath = dpath.clone();
        tasks.push(tokio::spawn(async move {
            let d = DoubleBarrier::new(c, &dpath, 3).unwrap();
            assert!(d.enter(Some(WAIT)).await.unwrap());
            assert!(d.leave(Some(WAIT)).await.unwrap());
        }));
    }
    for t in tasks {
        timeout(Duration::from_secs(20), t).await.unwrap().unwrap();
    }
    let lonely = DoubleBarrier::new(a.clone(), &dpath, 2).unwrap();
    assert!(!lonely
        .enter(Some(Duration::from_millis(300)))
        .await
        .unwrap());

    let cpath = format!("{root}/counter");
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let c = common::connect(&hosts).await;
        let cpath = cpath.clone();
        tasks.push(tokio::spawn(async move {
            let ctr = SharedCounter::new(c, &cpath, 0).await.unwrap();
            for _ in 0..10 {
                ctr.add(1).await.unwrap();
            }
        }));
    }
    for t in tasks {
        timeout(Duration::from_secs(30), t).await.unwrap().unwrap();
    }
    let ctr = SharedCounter::new(a.clone(), &cpath, 0).await.unwrap();
    let v = ctr.get().await.unwrap();
    assert_eq!(v.value, 40);
    assert!(!ctr
        .try_set(
            VersionedValue {
                value: 0,
                version: v.version - 1
            },
            7
        )
        .await
        .unwrap());
    assert!(ctr.try_set(v, 7).await.unwrap());
    assert_eq!(a.get_data(&cpath).await.unwrap().0, 7i32.to_be_bytes());
    common::delete_all(&a, &root).await;
}

#[tokio::test]
async fn herd_lock_excludes() {
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let b = common::connect(&hosts).await;
    let root = common::test_root(&a, "herd").await;
    let p = format!("{root}/h");
    let h1 = HerdLock::new(a.clone(), &p).unwrap();
    let h2 = Arc::new(HerdLock::new(b.clone(), &p).unwrap());
    h1.acquire().await.unwrap();
    let t = {
        let h2 = h2.clone();
        tokio::spawn(async move { h2.acquire().await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!t.is_finished());
    h1.release().await.unwrap();
    timeout(WAIT, t).await.unwrap().unwrap().unwrap();
    h2.release().await.unwrap();
    common::delete_all(&a, &root).await;
}

/// The server reaps an empty container at any moment (ZooKeeper's `ContainerManager`),
/// including between a recipe's "ensure the parent exists" and its create beneath it.
/// A reaper task here deletes every recipe's container parent as soon as the server's
/// would be allowed to (empty, and it has had a child: cversion > 0; ZooKeeper's
/// `ContainerManager.getCandidates`), while each recipe runs many rounds; every create
/// beneath a container must recreate the parent and retry instead of failing with
/// NoNode. (A DoubleBarrier entered just after the server reaped its container failed
/// this way in CI against ZooKeeper.) The reaper once deleted fresh containers too, a
/// race no server runs: on two loaded cores it won all five of a create's retries
/// (session 52's CI).
#[tokio::test]
async fn recipes_survive_their_container_being_reaped_between_calls() {
    const ROUNDS: usize = 40;
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let root = common::test_root(&a, "reaped").await;
    let containers: Vec<String> = ["double", "herd", "mutex", "queue", "bar", "ctr"]
        .iter()
        .map(|n| format!("{root}/{n}"))
        .collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reaped = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reaper = {
        let (c, stop, reaped) = (common::connect(&hosts).await, stop.clone(), reaped.clone());
        let containers = containers.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                for p in &containers {
                    let Ok(Some(stat)) = c.exists(p).await else {
                        continue;
                    };
                    if stat.cversion > 0
                        && stat.num_children == 0
                        && c.delete(p, Some(stat.version)).await.is_ok()
                    {
                        reaped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let [double, herd, mutex, queue, bar, ctr] = &containers[..] else {
        unreachable!()
    };
    for round in 0..ROUNDS {
        let d = DoubleBarrier::new(a.clone(), double, 1).unwrap();
        assert!(d.enter(Some(WAIT)).await.unwrap(), "round {round}");
        assert!(d.leave(Some(WAIT)).await.unwrap(), "round {round}");

        let h = HerdLock::new(a.clone(), herd).unwrap();
        h.acquire().await.unwrap();
        h.release().await.unwrap();

        let m = Mutex::new(a.clone(), mutex).unwrap();
        m.acquire().await.unwrap();
        m.release().await.unwrap();

        let q = DistributedQueue::new(a.clone(), queue).unwrap();
        q.put(b"x").await.unwrap();
        q.take().await.unwrap().ack().await.unwrap();

        let b = Barrier::new(a.clone(), &format!("{bar}/b")).unwrap();
        b.set().await.unwrap();
        b.remove().await.unwrap();

        let cpath = format!("{ctr}/c");
        let counter = SharedCounter::new(a.clone(), &cpath, 0).await.unwrap();
        assert_eq!(counter.add(1).await.unwrap(), 1);
        a.delete(&cpath, None).await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    reaper.await.unwrap();
    // The race was really exercised: the parents were deleted under the recipes.
    assert!(reaped.load(Ordering::Relaxed) >= ROUNDS);
    common::delete_all(&a, &root).await;
}

/// `SharedCounter::new` on a node that holds something other than a 4-byte counter fails
/// there, naming the node and the length (it used to succeed, the failure showing only
/// at the first `get`); the node's data is left as it was. A counter node deleted and
/// rewritten with other data later is refused by `get` with the same error.
#[tokio::test]
async fn shared_counter_refuses_a_node_that_is_not_a_counter() {
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let root = common::test_root(&a, "badcounter").await;
    for bad in [&b""[..], b"abc", b"12345678"] {
        let path = format!("{root}/c{}", bad.len());
        a.create(&path, bad, &open_acl_unsafe(), CreateMode::Persistent)
            .await
            .unwrap();
        match SharedCounter::new(a.clone(), &path, 5).await {
            Err(Error::NotACounter { path: p, len }) => {
                assert_eq!((p.as_str(), len), (path.as_str(), bad.len()));
            }
            other => panic!("{} bytes: {other:?}", bad.len()),
        }
        assert_eq!(a.get_data(&path).await.unwrap().0, bad);
    }
    let path = format!("{root}/good");
    let ctr = SharedCounter::new(a.clone(), &path, 5).await.unwrap();
    assert_eq!(ctr.get().await.unwrap().value, 5);
    assert_eq!(
        SharedCounter::new(a.clone(), &path, 9)
            .await
            .unwrap()
            .get()
            .await
            .unwrap()
            .value,
        5
    );
    a.set_data(&path, b"xy", None).await.unwrap();
    assert_eq!(
        ctr.get().await,
        Err(Error::NotACounter {
            path: path.clone(),
            len: 2
        })
    );
    common::delete_all(&a, &root).await;
    a.close().await.unwrap();
}
