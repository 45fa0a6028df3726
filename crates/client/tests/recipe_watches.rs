//! Waiters that give up take their one-shot watch off the server (Curator's waiters call
//! `removeWatches`): after a timed-out `try_lock`, barrier wait or double-barrier enter,
//! and after `take` claimed an item, the session holds no watch on the path it watched
//! (asked with checkWatches, which answers for the asking session only), nor soon after
//! a wait whose future was dropped part-way (also while the request setting its watch
//! was in flight: a proxy holds its answer back), unless another
//! waiter of the same client still waits on it, whose watch must stay and still fire.
//! Against `RZK_TEST_HOSTS` when set, otherwise an in-process rzk server.
//!
//! Holders here are plain ephemeral nodes with Curator's names, not recipe holders:
//! ZooKeeper 3.8 answers checkWatches "yes" for a path that any session watches, and a
//! recipe holder's loss monitor watches its own node.
//!
//! Run: `RZK_TEST_HOSTS=127.0.0.1:2181 cargo test -p rzk-client --test recipe_watches`

mod common;

use std::time::Duration;

use common::proxy::Proxy;

use rzk_client::recipes::*;
use rzk_client::*;
use rzk_testkit::server::hosts_or_start;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);
const GIVE_UP: Duration = Duration::from_millis(200);

/// Two clients of the server under test (`a` sets things up, `b` waits and gives up)
/// and a fresh test root named `name`.
async fn two_clients(name: &str) -> (Client, Client, String) {
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let b = common::connect(&hosts).await;
    let root = common::test_root(&a, name).await;
    (a, b, root)
}

/// Deletes the test root and closes both clients.
async fn finish(a: Client, b: Client, root: &str) {
    common::delete_all(&a, root).await;
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// A lock holder of another client that sets no watch: an ephemeral-sequential node
/// named as Curator's (`_c_<uuid>-<name>NNNNNNNNNN`) under `lock`.
async fn plain_holder(zk: &Client, lock: &str, name: &str) -> String {
    zk.create(lock, b"", &open_acl_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    let node = format!("{lock}/_c_{}-{name}", uuid::Uuid::new_v4());
    zk.create(
        &node,
        b"",
        &open_acl_unsafe(),
        CreateMode::EphemeralSequential,
    )
    .await
    .unwrap()
}

/// True if `zk`'s session has a watch of `kind` on `path` on the server.
async fn watched(zk: &Client, path: &str, kind: WatcherType) -> bool {
    match zk.check_watches(path, kind).await {
        Ok(()) => true,
        Err(Error::NoWatcher) => false,
        Err(e) => panic!("check_watches({path}): {e}"),
    }
}

#[tokio::test]
async fn timed_out_try_locks_leave_no_watch_on_the_holder() {
    let (a, b, root) = two_clients("trywatch").await;
    let lock = format!("{root}/lock");
    let holder = plain_holder(&a, &lock, LOCK_NAME).await;
    let m = Mutex::new(b.clone(), &lock).unwrap();
    for _ in 0..3 {
        assert!(m.try_lock(GIVE_UP).await.unwrap().is_none());
    }
    assert!(
        !watched(&b, &holder, WatcherType::Data).await,
        "timed-out try_locks left their watch on the holder's node"
    );
    a.delete(&holder, None).await.unwrap();
    // The lock still works for the client that gave up.
    let g = timeout(WAIT, m.lock()).await.unwrap().unwrap();
    g.release().await.unwrap();
    finish(a, b, &root).await;
}

#[tokio::test]
async fn a_give_up_keeps_the_watch_another_waiter_of_the_client_shares() {
    // Two readers of one client wait on the same writer node: the server holds one watch
    // for both. The one that gives up must not take it from the one still waiting.
    let (a, b, root) = two_clients("sharedwatch").await;
    let lock = format!("{root}/rw");
    let writer = plain_holder(&a, &lock, WRITE_LOCK_NAME).await;
    let patient = ReadWriteLock::new(b.clone(), &lock).unwrap();
    let waiting = tokio::spawn(async move {
        let g = patient.read_lock().lock().await;
        (patient, g)
    });
    // Wait until the patient reader's node is in and its watch set.
    let until = tokio::time::Instant::now() + WAIT;
    while !watched(&b, &writer, WatcherType::Data).await {
        assert!(tokio::time::Instant::now() < until, "reader never watched");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A plain watch of the same client on the same node is not disturbed either (a
    // removeWatches would end it with a DataWatchRemoved event).
    let (_, mut mine) = b.exists_w(&writer).await.unwrap();
    let hasty = ReadWriteLock::new(b.clone(), &lock).unwrap();
    assert!(hasty.read_lock().try_lock(GIVE_UP).await.unwrap().is_none());
    assert!(
        watched(&b, &writer, WatcherType::Data).await,
        "the watch a waiting reader needs was removed"
    );
    if let Ok(ev) = timeout(Duration::from_millis(200), &mut mine).await {
        panic!("another watch of the client on the node ended: {ev:?}");
    }
    a.delete(&writer, None).await.unwrap();
    assert_eq!(
        timeout(WAIT, mine).await.unwrap().event_type,
        EventType::NodeDeleted
    );
    let (_patient, g) = timeout(WAIT, waiting)
        .await
        .expect("the waiting reader was never woken")
        .unwrap();
    g.unwrap().release().await.unwrap();
    finish(a, b, &root).await;
}

/// Polls until `zk`'s session holds no watch of `kind` on `path` (a dropped waiter takes
/// its watch off in the background); false if one is still there after `WAIT`.
async fn watch_goes(zk: &Client, path: &str, kind: WatcherType) -> bool {
    let until = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < until {
        if !watched(zk, path, kind).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn waits_dropped_part_way_leave_no_watch() {
    let (a, b, root) = two_clients("dropwatch").await;
    // A lock() with no deadline, abandoned by a timeout around it.
    let lock = format!("{root}/lock");
    let holder = plain_holder(&a, &lock, LOCK_NAME).await;
    let m = Mutex::new(b.clone(), &lock).unwrap();
    assert!(timeout(GIVE_UP, m.lock()).await.is_err());
    assert!(
        watch_goes(&b, &holder, WatcherType::Data).await,
        "an abandoned lock() left its watch on the holder's node"
    );
    // A Barrier::wait without a deadline, abandoned the same way.
    let path = format!("{root}/barrier");
    Barrier::new(a.clone(), &path).unwrap().set().await.unwrap();
    let waiter = Barrier::new(b.clone(), &path).unwrap();
    assert!(timeout(GIVE_UP, waiter.wait(None)).await.is_err());
    assert!(
        watch_goes(&b, &path, WatcherType::Data).await,
        "an abandoned barrier wait left its watch"
    );
    // The client that abandoned still takes the lock once it is free.
    a.delete(&holder, None).await.unwrap();
    let g = timeout(WAIT, m.lock()).await.unwrap().unwrap();
    g.release().await.unwrap();
    finish(a, b, &root).await;
}

/// True if `bytes` (what the client sent) hold a request with opcode `op` on `path` that
/// sets a watch: `op`, then `path` as a length-prefixed string, then the watch flag 1
/// (the layout of exists, getData and getChildren2 requests).
fn watch_request(bytes: &[u8], op: i32, path: &str) -> bool {
    let mut body = op.to_be_bytes().to_vec();
    body.extend_from_slice(&(path.len() as i32).to_be_bytes());
    body.extend_from_slice(path.as_bytes());
    body.push(1);
    bytes.windows(body.len()).any(|w| w == body.as_slice())
}

/// Runs `wait` until the proxy holds back the answer to the request that `sets`
/// recognises (a watch-setting one, or one sent after it), then drops it (as a
/// `select!` around it would), and lets the answer through: the server has then set the
/// watch for a waiter that is gone.
async fn drop_while_watch_is_set<F: std::future::Future>(
    proxy: &Proxy,
    sets: impl Fn(&[u8]) -> bool + Send + 'static,
    wait: F,
) {
    proxy.hold_on(sets);
    tokio::select! {
        _ = wait => panic!("the wait ended before its watch request was sent"),
        () = proxy.holding() => {}
        () = tokio::time::sleep(WAIT) => panic!("the watch request was never sent"),
    }
    proxy.release();
}

#[tokio::test]
async fn waits_dropped_while_their_watch_request_is_in_flight_leave_no_watch() {
    let hosts = hosts_or_start();
    let proxy = Proxy::start(hosts.split(',').next().unwrap_or(&hosts)).await;
    let a = common::connect(&hosts).await;
    let b = common::connect(&proxy.addr).await;
    let root = common::test_root(&a, "inflightwatch").await;
    // A lock() dropped while its getData(watch) on the holder is unanswered.
    let lock = format!("{root}/lock");
    let holder = plain_holder(&a, &lock, LOCK_NAME).await;
    let m = Mutex::new(b.clone(), &lock).unwrap();
    let h = holder.clone();
    drop_while_watch_is_set(&proxy, move |b| watch_request(b, 4, &h), m.lock()).await;
    assert!(
        watch_goes(&b, &holder, WatcherType::Data).await,
        "a lock() dropped while its watch request was in flight left its watch"
    );
    // A Barrier::wait dropped while its exists(watch) is unanswered.
    let path = format!("{root}/barrier");
    Barrier::new(a.clone(), &path).unwrap().set().await.unwrap();
    let waiter = Barrier::new(b.clone(), &path).unwrap();
    let p = path.clone();
    drop_while_watch_is_set(&proxy, move |b| watch_request(b, 3, &p), waiter.wait(None)).await;
    assert!(
        watch_goes(&b, &path, WatcherType::Data).await,
        "a barrier wait dropped while its watch request was in flight left its watch"
    );
    // A DoubleBarrier::enter dropped while its exists(watch) on the ready flag is
    // unanswered.
    let dpath = format!("{root}/double");
    let ready = format!("{dpath}/ready");
    let d = DoubleBarrier::new(b.clone(), &dpath, 2).unwrap();
    let r = ready.clone();
    drop_while_watch_is_set(&proxy, move |b| watch_request(b, 3, &r), d.enter(None)).await;
    assert!(
        watch_goes(&b, &ready, WatcherType::Data).await,
        "a double barrier enter dropped while its watch request was in flight left its watch"
    );
    // The same enter dropped later: its watch is set, its participant node's create
    // (create2, opcode 15: a uuid name under the barrier) unanswered.
    let d = DoubleBarrier::new(b.clone(), &dpath, 2).unwrap();
    let mut create = 15i32.to_be_bytes().to_vec();
    create.extend_from_slice(&((dpath.len() + 1 + 36) as i32).to_be_bytes());
    create.extend_from_slice(format!("{dpath}/").as_bytes());
    let creates_ours = move |b: &[u8]| b.windows(create.len()).any(|w| w == create.as_slice());
    drop_while_watch_is_set(&proxy, creates_ours, d.enter(None)).await;
    assert!(
        watch_goes(&b, &ready, WatcherType::Data).await,
        "a double barrier enter dropped while creating its node left its watch"
    );
    // The client that abandoned still takes the lock once it is free.
    a.delete(&holder, None).await.unwrap();
    let g = timeout(WAIT, m.lock()).await.unwrap().unwrap();
    g.release().await.unwrap();
    finish(a, b, &root).await;
}

#[tokio::test]
async fn a_closed_waiting_latch_leaves_no_watch_on_its_predecessor() {
    let (a, b, root) = two_clients("latchwatch").await;
    let path = format!("{root}/latch");
    let leader = plain_holder(&a, &path, LATCH_NAME).await;
    let latch = LeaderLatch::start(b.clone(), &path, "b").await.unwrap();
    // The latch's task sets its watch on the leader's node in the background.
    let until = tokio::time::Instant::now() + WAIT;
    while !watched(&b, &leader, WatcherType::Data).await {
        assert!(
            tokio::time::Instant::now() < until,
            "the waiting latch never watched its predecessor"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    latch.close().await.unwrap();
    assert!(
        watch_goes(&b, &leader, WatcherType::Data).await,
        "a closed latch left its watch on its predecessor"
    );
    finish(a, b, &root).await;
}

#[tokio::test]
async fn a_take_that_fails_after_its_listing_leaves_no_watch() {
    let (a, b, root) = two_clients("takefailwatch").await;
    let path = format!("{root}/queue");
    let q = DistributedQueue::new(a.clone(), &path).unwrap();
    let item = q.put(b"secret").await.unwrap();
    // Only a digest user may read the item: b lists and claims it, then its read of the
    // item fails with NOAUTH.
    a.add_auth("digest", b"owner:pw").await.unwrap();
    let owner_only = Acl::new(perms::ALL, "digest", &digest_acl_id("owner", "pw"));
    a.set_acl(&item, &[owner_only], None).await.unwrap();
    let taker = DistributedQueue::new(b.clone(), &path).unwrap();
    assert!(matches!(
        timeout(WAIT, taker.take()).await.unwrap(),
        Err(Error::NoAuth)
    ));
    assert!(
        !watched(&b, &path, WatcherType::Children).await,
        "a take that failed left its children watch on the queue"
    );
    a.set_acl(&item, &open_acl_unsafe(), None).await.unwrap();
    finish(a, b, &root).await;
}

/// A wait on a barrier that is not set (or no longer) returns at once and leaves no
/// exists watch on the absent node: it stayed on the server until a barrier was set there
/// again, one per wait.
#[tokio::test]
async fn a_wait_on_an_absent_barrier_leaves_no_watch() {
    let (a, b, root) = two_clients("absentbarrier").await;
    let path = format!("{root}/barrier");
    let waiter = Barrier::new(b.clone(), &path).unwrap();
    assert!(waiter.wait(None).await.unwrap());
    assert!(
        !watched(&b, &path, WatcherType::Data).await,
        "a wait on an absent barrier left its exists watch"
    );
    // Removed while the wait is under way: the watch fired, nothing is left either.
    Barrier::new(a.clone(), &path).unwrap().set().await.unwrap();
    let wait = tokio::spawn({
        let waiter = Barrier::new(b.clone(), &path).unwrap();
        async move { waiter.wait(None).await }
    });
    until_watched(&b, &path, WatcherType::Data).await;
    Barrier::new(a.clone(), &path)
        .unwrap()
        .remove()
        .await
        .unwrap();
    assert!(wait.await.unwrap().unwrap());
    assert!(!watched(&b, &path, WatcherType::Data).await);
    finish(a, b, &root).await;
}

#[tokio::test]
async fn timed_out_barrier_waits_leave_no_watch() {
    let (a, b, root) = two_clients("barrierwatch").await;
    let path = format!("{root}/barrier");
    Barrier::new(a.clone(), &path).unwrap().set().await.unwrap();
    let waiter = Barrier::new(b.clone(), &path).unwrap();
    assert!(!waiter.wait(Some(GIVE_UP)).await.unwrap());
    assert!(
        !watched(&b, &path, WatcherType::Data).await,
        "a timed-out barrier wait left its watch"
    );

    // A double barrier whose group never completes: the enter that gives up leaves no
    // watch on the ready flag.
    let dpath = format!("{root}/double");
    let d = DoubleBarrier::new(b.clone(), &dpath, 2).unwrap();
    assert!(!d.enter(Some(GIVE_UP)).await.unwrap());
    assert!(
        !watched(&b, &format!("{dpath}/ready"), WatcherType::Data).await,
        "a timed-out double barrier enter left its watch"
    );
    finish(a, b, &root).await;
}

#[tokio::test]
async fn take_leaves_no_children_watch_on_the_queue() {
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let root = common::test_root(&a, "queuewatch").await;
    let path = format!("{root}/queue");
    let q = DistributedQueue::new(a.clone(), &path).unwrap();
    q.put(b"one").await.unwrap();
    let item = timeout(WAIT, q.take()).await.unwrap().unwrap();
    assert!(
        !watched(&a, &path, WatcherType::Children).await,
        "take left its children watch on the queue"
    );
    item.ack().await.unwrap();
    common::delete_all(&a, &root).await;
    a.close().await.unwrap();
}

/// Cuts `proxy`'s connections and waits until `zk` has noticed and connected again.
async fn cut_and_reconnect(proxy: &Proxy, zk: &Client) {
    let mut st = zk.state_watcher();
    st.mark_unchanged();
    proxy.cut();
    timeout(WAIT, st.wait_for(|s| *s == SessionState::Disconnected))
        .await
        .expect("the cut was never noticed")
        .unwrap();
    zk.wait_connected(WAIT).await.unwrap();
}

/// Waits until `zk`'s session watches `path` (kind `kind`): a waiter set its watch.
async fn until_watched(zk: &Client, path: &str, kind: WatcherType) {
    let until = tokio::time::Instant::now() + WAIT;
    while !watched(zk, path, kind).await {
        assert!(tokio::time::Instant::now() < until, "{path} never watched");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two readers of one client wait on the same writer node: the server holds one watch
/// for both. The second one, dropped while its getData(watch) is in flight, must not
/// take the watch from the first, which still wakes when the writer goes; and neither
/// when the connection is then lost (the watch is set again on the new connection for
/// the reader still waiting, and not for the one that is gone).
#[tokio::test]
async fn a_wait_dropped_in_flight_keeps_the_watch_another_waiter_shares() {
    let hosts = hosts_or_start();
    let proxy = Proxy::start(hosts.split(',').next().unwrap_or(&hosts)).await;
    let a = common::connect(&hosts).await;
    let b = common::connect(&proxy.addr).await;
    let root = common::test_root(&a, "inflightshared").await;
    let lock = format!("{root}/rw");
    let writer = plain_holder(&a, &lock, WRITE_LOCK_NAME).await;
    let patient = ReadWriteLock::new(b.clone(), &lock).unwrap();
    let waiting = tokio::spawn(async move {
        let g = patient.read_lock().lock().await;
        (patient, g)
    });
    until_watched(&b, &writer, WatcherType::Data).await;
    // A plain watch of the same client on the node ends (DataWatchRemoved) if the
    // watch is removed; the waiting reader would set its own again when woken so.
    let (_, mut mine) = b.exists_w(&writer).await.unwrap();
    for cut in [false, true] {
        let hasty = ReadWriteLock::new(b.clone(), &lock).unwrap();
        let w = writer.clone();
        drop_while_watch_is_set(
            &proxy,
            move |b| watch_request(b, 4, &w),
            hasty.read_lock().lock(),
        )
        .await;
        if cut {
            // The answer (held, then let through) and the connection lost at once.
            cut_and_reconnect(&proxy, &b).await;
        }
        // The dropped wait's clean-up (a removeWatches unless the watch is in use) has
        // had its time: it waits at most 500 ms.
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(
            watched(&b, &writer, WatcherType::Data).await,
            "the watch a waiting reader needs was removed (cut: {cut})"
        );
        if let Ok(ev) = timeout(Duration::from_millis(100), &mut mine).await {
            panic!("the client's watch on the node ended (cut: {cut}): {ev:?}");
        }
    }
    a.delete(&writer, None).await.unwrap();
    assert_eq!(
        timeout(WAIT, mine).await.unwrap().event_type,
        EventType::NodeDeleted
    );
    let (_patient, g) = timeout(WAIT, waiting)
        .await
        .expect("the waiting reader was never woken")
        .unwrap();
    g.unwrap().release().await.unwrap();
    common::delete_all(&a, &root).await;
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// A lock() dropped while its getData(watch) is in flight, its connection then lost
/// before the answer (or with the answer in): after the reconnect the session holds no
/// watch on the holder, and the client still takes the lock once it is free.
#[tokio::test]
async fn a_wait_dropped_in_flight_leaves_no_watch_across_a_reconnect() {
    let hosts = hosts_or_start();
    let proxy = Proxy::start(hosts.split(',').next().unwrap_or(&hosts)).await;
    let a = common::connect(&hosts).await;
    let b = common::connect(&proxy.addr).await;
    let root = common::test_root(&a, "inflightcut").await;
    let lock = format!("{root}/lock");
    let holder = plain_holder(&a, &lock, LOCK_NAME).await;
    let m = Mutex::new(b.clone(), &lock).unwrap();
    for cut_before_release in [true, false] {
        let h = holder.clone();
        proxy.hold_on(move |b| watch_request(b, 4, &h));
        {
            let mut wait = Box::pin(m.lock());
            tokio::select! {
                _ = &mut wait => panic!("the lock() ended before its watch request was sent"),
                () = proxy.holding() => {}
                () = tokio::time::sleep(WAIT) => panic!("the watch request was never sent"),
            }
            if cut_before_release {
                // Lost with the request in flight, then dropped.
                let mut st = b.state_watcher();
                st.mark_unchanged();
                proxy.cut();
                proxy.release();
                timeout(WAIT, st.wait_for(|s| *s == SessionState::Disconnected))
                    .await
                    .expect("the cut was never noticed")
                    .unwrap();
                drop(wait);
            } else {
                // Dropped, its answer let through, then the connection lost.
                drop(wait);
                proxy.release();
                tokio::time::sleep(Duration::from_millis(50)).await;
                cut_and_reconnect(&proxy, &b).await;
            }
        }
        b.wait_connected(WAIT).await.unwrap();
        assert!(
            watch_goes(&b, &holder, WatcherType::Data).await,
            "a lock() dropped in flight left its watch across a reconnect \
             (cut before release: {cut_before_release})"
        );
    }
    a.delete(&holder, None).await.unwrap();
    let g = timeout(WAIT, m.lock()).await.unwrap().unwrap();
    g.release().await.unwrap();
    common::delete_all(&a, &root).await;
    a.close().await.unwrap();
    b.close().await.unwrap();
}
