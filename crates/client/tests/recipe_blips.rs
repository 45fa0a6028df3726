//! Recipes under short disconnections and flapping connections (found by a break-it
//! review in session 56): double barrier, counter, queue and semaphore. Each fault
//! test fails on the code before its fix.
//!
//! Run: `cargo test -p rzk-client --test recipe_blips` (or with `RZK_TEST_HOSTS=..`).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::proxy::Proxy;
use common::{contains, first_host, via_proxy};
use rzk_client::recipes::*;
use rzk_testkit::server::hosts_or_start;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

fn opcode(b: &[u8]) -> Option<i32> {
    (b.len() >= 12).then(|| i32::from_be_bytes([b[8], b[9], b[10], b[11]]))
}

/// A create / create2 / createContainer request frame.
fn is_create(b: &[u8]) -> bool {
    matches!(opcode(b), Some(1 | 15 | 19))
}

/// The participant that completes a double barrier's group creates `ready`; when that
/// create's answer is lost (applied on the server, CONNECTIONLOSS to the client), the
/// others pass the barrier counting this participant, but its own `enter` fails and
/// removes its node. Curator's `create().forPath(readyPath)` goes through the retry loop
/// (NodeExists then ignored): the participant enters.
#[tokio::test]
async fn double_barrier_lost_ready_create_answer() {
    let hosts = hosts_or_start();
    let other = common::connect(&hosts).await;
    let root = common::test_root(&other, "blipready").await;
    let path = format!("{root}/b");
    let b = Arc::new(DoubleBarrier::new(other.clone(), &path, 2).unwrap());
    let b_enter = {
        let b = b.clone();
        tokio::spawn(async move { b.enter(Some(WAIT)).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let proxy = Proxy::start(&first_host(&hosts)).await;
    let zk = via_proxy(&proxy, Duration::from_millis(6000)).await;
    let a = DoubleBarrier::new(zk.clone(), &path, 2).unwrap();
    proxy.mute_on(|bytes| is_create(bytes) && contains(bytes, b"/ready"));
    let a_enter = tokio::spawn(async move {
        let r = a.enter(Some(WAIT)).await;
        (a, r)
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    proxy.cut();
    proxy.mute(false);
    let rb = timeout(WAIT, b_enter).await.unwrap().unwrap();
    let (a, ra) = timeout(WAIT, a_enter).await.unwrap().unwrap();
    let members = common::children(&other, &path).await;
    eprintln!("B enter: {rb:?}; A enter: {ra:?}; nodes now: {members:?}");
    assert_eq!(rb, Ok(true), "B passes (the group was complete)");
    assert_eq!(
        ra,
        Ok(true),
        "A was counted in B's group, yet its enter failed and its node is gone: {members:?}"
    );
    let _ = a;
    zk.close().await.ok();
    common::delete_all(&other, &root).await;
}

/// A participant whose enter sees a short disconnection while it lists the members
/// (after the group completed through another participant) fails its enter, although
/// the others passed counting it.
#[tokio::test]
async fn double_barrier_blip_while_listing_members() {
    let hosts = hosts_or_start();
    let other = common::connect(&hosts).await;
    let root = common::test_root(&other, "bliplist").await;
    let path = format!("{root}/b");
    let proxy = Proxy::start(&first_host(&hosts)).await;
    let zk = via_proxy(&proxy, Duration::from_millis(6000)).await;
    let a = DoubleBarrier::new(zk.clone(), &path, 2).unwrap();
    let listing = path.clone();
    // A's getChildren of the barrier: its answer is lost.
    proxy.mute_on(move |bytes| {
        matches!(opcode(bytes), Some(8 | 12)) && contains(bytes, listing.as_bytes())
    });
    let a_enter = tokio::spawn(async move { a.enter(Some(WAIT)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // B completes the group meanwhile.
    let b = DoubleBarrier::new(other.clone(), &path, 2).unwrap();
    let rb = b.enter(Some(Duration::from_secs(3))).await;
    proxy.cut();
    proxy.mute(false);
    let ra = timeout(WAIT, a_enter).await.unwrap().unwrap();
    let members = common::children(&other, &path).await;
    eprintln!("B enter: {rb:?}; A enter: {ra:?}; nodes now: {members:?}");
    assert_eq!(rb, Ok(true));
    assert_eq!(ra, Ok(true), "a short disconnection failed A's enter");
    zk.close().await.ok();
    common::delete_all(&other, &root).await;
}

/// Many tasks on several clients add to one counter: no increment lost or doubled.
#[tokio::test]
async fn counter_concurrent_adds() {
    let hosts = hosts_or_start();
    let admin = common::connect(&hosts).await;
    let root = common::test_root(&admin, "blipcount").await;
    let path = format!("{root}/c");
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let zk = common::connect(&hosts).await;
        for _ in 0..4 {
            let (zk, path) = (zk.clone(), path.clone());
            tasks.push(tokio::spawn(async move {
                let c = SharedCounter::new(zk, &path, 0).await.unwrap();
                for _ in 0..40 {
                    c.add(1).await.unwrap();
                }
            }));
        }
    }
    for t in tasks {
        timeout(Duration::from_secs(120), t).await.unwrap().unwrap();
    }
    let c = SharedCounter::new(admin.clone(), &path, 0).await.unwrap();
    assert_eq!(c.get().await.unwrap().value, 480);
    common::delete_all(&admin, &root).await;
}

/// The docs promise CONNECTIONLOSS from the counter (and barrier/queue put) only "when
/// the connection stays away"; a lost answer of a read returns it at once although the
/// connection is back within milliseconds (nothing was changed: a retry is safe).
#[tokio::test]
async fn counter_get_rides_out_a_short_disconnection() {
    let hosts = hosts_or_start();
    let other = common::connect(&hosts).await;
    let root = common::test_root(&other, "blipcget").await;
    let path = format!("{root}/c");
    SharedCounter::new(other.clone(), &path, 7).await.unwrap();
    let proxy = Proxy::start(&first_host(&hosts)).await;
    let zk = via_proxy(&proxy, Duration::from_millis(6000)).await;
    let c = SharedCounter::new(zk.clone(), &path, 0).await.unwrap();
    // getData (4) of the counter: answer lost.
    let p = path.clone();
    proxy.mute_on(move |b| opcode(b) == Some(4) && contains(b, p.as_bytes()));
    let add = tokio::spawn(async move { c.add(1).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.cut();
    proxy.mute(false);
    let r = timeout(WAIT, add).await.unwrap().unwrap();
    let now = SharedCounter::new(other.clone(), &path, 0)
        .await
        .unwrap()
        .get()
        .await
        .unwrap()
        .value;
    eprintln!("add after a lost read answer: {r:?}; counter now {now}");
    assert_eq!(
        r,
        Ok(8),
        "the add's read was lost (nothing applied), add failed"
    );
    zk.close().await.ok();
    common::delete_all(&other, &root).await;
}

/// Semaphore mutex contenders on proxied clients whose connections are cut often (short
/// cuts, far below the session timeout): never two holders at once, no lease or lock node left.
#[tokio::test]
async fn semaphore_exclusion_under_flapping() {
    let hosts = hosts_or_start();
    let admin = common::connect(&hosts).await;
    let root = common::test_root(&admin, "blipsem").await;
    let path = format!("{root}/s");
    let inside = Arc::new(AtomicUsize::new(0));
    let overlap = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut proxies = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..3 {
        let proxy = Arc::new(Proxy::start(&first_host(&hosts)).await);
        let zk = via_proxy(&proxy, Duration::from_secs(20)).await;
        proxies.push(proxy);
        // Two tasks share one value on the first client; the others own theirs.
        let shared = Arc::new(SemaphoreMutex::new(zk.clone(), &path).unwrap());
        for j in 0..2 {
            let s = if i == 0 {
                shared.clone()
            } else {
                Arc::new(SemaphoreMutex::new(zk.clone(), &path).unwrap())
            };
            let (inside, overlap) = (inside.clone(), overlap.clone());
            tasks.push(tokio::spawn(async move {
                let mut done = 0;
                let mut errors = 0;
                while done < 20 {
                    let g = match s.try_lock(WAIT).await {
                        Ok(Some(g)) => g,
                        Ok(None) => panic!("{i}/{j}: timed out"),
                        Err(e) => {
                            errors += 1;
                            assert!(errors < 60, "too many failures: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                        overlap.store(true, Ordering::SeqCst);
                        eprintln!("OVERLAP at {i}/{j} node {}", g.node());
                    }
                    tokio::time::sleep(Duration::from_millis(15)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    let mut tries = 0;
                    let mut g = Some(g);
                    while let Some(guard) = g.take() {
                        match guard.release().await {
                            Ok(()) => {}
                            Err(e) => {
                                tries += 1;
                                eprintln!("release {i}/{j}: {e}");
                                assert!(tries < 5);
                            }
                        }
                    }
                    done += 1;
                }
                errors
            }));
        }
    }
    let cutter = common::spawn_cutter(proxies.clone(), stop.clone(), 60, 7, 13);
    let errors = common::sum_failures(tasks, Duration::from_secs(180), "contenders").await;
    stop.store(true, Ordering::SeqCst);
    let cuts = cutter.await.unwrap();
    eprintln!("semaphore flapping: {cuts} cuts, {errors} failed acquires");
    assert!(!overlap.load(Ordering::SeqCst), "two holders at once");
    let ok = common::eventually(WAIT, || async {
        common::children(&admin, &format!("{path}/leases"))
            .await
            .is_empty()
            && common::children(&admin, &format!("{path}/locks"))
                .await
                .is_empty()
    })
    .await;
    assert!(
        ok,
        "left: leases {:?} locks {:?}",
        common::children(&admin, &format!("{path}/leases")).await,
        common::children(&admin, &format!("{path}/locks")).await
    );
    common::delete_all(&admin, &root).await;
}

/// Consumers on proxied clients (two sharing one client) take items while connections
/// are cut often: every item is processed, none is handed to a second consumer while
/// the first still holds it, and nothing is left behind.
#[tokio::test]
async fn queue_flapping_delivers_each_item_to_one_holder_at_a_time() {
    let hosts = hosts_or_start();
    let admin = common::connect(&hosts).await;
    let root = common::test_root(&admin, "blipq").await;
    let path = format!("{root}/q");
    const ITEMS: usize = 200;
    let producer = DistributedQueue::new(admin.clone(), &path).unwrap();
    for i in 0..ITEMS {
        producer.put(format!("{i}").as_bytes()).await.unwrap();
    }
    let holding: Arc<std::sync::Mutex<HashMap<String, usize>>> = Arc::default();
    let acked: Arc<std::sync::Mutex<HashMap<String, usize>>> = Arc::default();
    let doubled = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut proxies = Vec::new();
    let mut tasks = Vec::new();
    for c in 0..3 {
        let proxy = Arc::new(Proxy::start(&first_host(&hosts)).await);
        let zk = via_proxy(&proxy, Duration::from_secs(20)).await;
        proxies.push(proxy);
        for k in 0..2 {
            let q = DistributedQueue::new(zk.clone(), &path).unwrap();
            let (holding, acked, doubled) = (holding.clone(), acked.clone(), doubled.clone());
            let admin = admin.clone();
            let path = path.clone();
            tasks.push(tokio::spawn(async move {
                let mut errors = 0;
                loop {
                    let item = match timeout(Duration::from_secs(2), q.take()).await {
                        Err(_) => {
                            // Nothing for 2 s: done if the queue is empty.
                            match admin.get_children(&path).await {
                                Ok(c) if c.iter().all(|n| !n.starts_with("queue-")) => break,
                                _ => continue,
                            }
                        }
                        Ok(Ok(item)) => item,
                        Ok(Err(e)) => {
                            errors += 1;
                            assert!(errors < 100, "{c}/{k}: {e}");
                            tokio::time::sleep(Duration::from_millis(30)).await;
                            continue;
                        }
                    };
                    let name = item.path.clone();
                    {
                        let mut h = holding.lock().unwrap();
                        let n = h.entry(name.clone()).or_default();
                        *n += 1;
                        if *n > 1 {
                            doubled.store(true, Ordering::SeqCst);
                            eprintln!("DOUBLE {name} at {c}/{k}");
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    *holding.lock().unwrap().get_mut(&name).unwrap() -= 1;
                    match item.ack().await {
                        Ok(()) => *acked.lock().unwrap().entry(name).or_default() += 1,
                        Err(e) => {
                            errors += 1;
                            eprintln!("ack {name}: {e}");
                        }
                    }
                }
                errors
            }));
        }
    }
    let cutter = common::spawn_cutter(proxies.clone(), stop.clone(), 50, 7, 11);
    let errors = common::sum_failures(tasks, Duration::from_secs(240), "consumers").await;
    stop.store(true, Ordering::SeqCst);
    let cuts = cutter.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    let twice: Vec<_> = acked.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "queue flapping: {cuts} cuts, {errors} errors, {} acked, acked twice: {twice:?}",
        acked.len()
    );
    assert!(
        !doubled.load(Ordering::SeqCst),
        "an item held by two consumers at once"
    );
    let left = common::children(&admin, &path).await;
    assert!(left.iter().all(|n| n == "locks"), "left: {left:?}");
    let ok = common::eventually(WAIT, || async {
        common::children(&admin, &format!("{path}/locks"))
            .await
            .is_empty()
    })
    .await;
    assert!(ok, "claims left");
    common::delete_all(&admin, &root).await;
}

/// Two participants, a second round with the same values. The lowest leaves first (its
/// node was the last) and enters round 2 at once; its round-2 node has the same name as
/// its round-1 node. The other participant, still in round 1's leave, then lists [that
/// node], is not present itself, and waits for it to go (rzk: `members.len() == 1 &&
/// present`), while round 2 waits for it: neither round completes until a timeout.
/// Curator's leave ends on a single remaining child (`children.size() == 1` -> break).
#[tokio::test]
async fn double_barrier_next_round_deadlocks_with_a_late_leaver() {
    let hosts = hosts_or_start();
    let admin = common::connect(&hosts).await;
    let root = common::test_root(&admin, "blipround").await;
    let path = format!("{root}/b");
    let px = Proxy::start(&first_host(&hosts)).await;
    let py = Proxy::start(&first_host(&hosts)).await;
    let zx = via_proxy(&px, Duration::from_secs(10)).await;
    let zy = via_proxy(&py, Duration::from_secs(10)).await;
    let x = Arc::new(DoubleBarrier::new(zx.clone(), &path, 2).unwrap());
    let y = Arc::new(DoubleBarrier::new(zy.clone(), &path, 2).unwrap());
    let ex = {
        let x = x.clone();
        tokio::spawn(async move { x.enter(Some(WAIT)).await })
    };
    assert_eq!(y.enter(Some(WAIT)).await, Ok(true));
    assert_eq!(ex.await.unwrap(), Ok(true));
    let mut members = common::children(&admin, &path).await;
    members.retain(|n| n != "ready");
    members.sort();
    let lowest_owner = admin
        .exists(&format!("{path}/{}", members[0]))
        .await
        .unwrap()
        .unwrap()
        .ephemeral_owner;
    let (low, high, high_proxy) = if lowest_owner == zx.session_id() {
        (x.clone(), y.clone(), &py)
    } else {
        (y.clone(), x.clone(), &px)
    };
    let low_name = members[0].clone();
    // The high participant's look at the lowest node: its answers are held back.
    high_proxy.hold_on(move |b| opcode(b) == Some(3) && contains(b, low_name.as_bytes()));
    let high_leave = {
        let high = high.clone();
        tokio::spawn(async move {
            let t = tokio::time::Instant::now();
            let r = high.leave(Some(Duration::from_secs(15))).await;
            (r, t.elapsed())
        })
    };
    timeout(WAIT, high_proxy.holding()).await.unwrap();
    assert_eq!(low.leave(Some(WAIT)).await, Ok(true), "low leaves");
    let low_round2 = {
        let low = low.clone();
        tokio::spawn(async move { low.enter(Some(Duration::from_secs(6))).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    high_proxy.release();
    let (hr, took) = timeout(WAIT, high_leave).await.unwrap().unwrap();
    eprintln!("high leave: {hr:?} after {took:?}");
    let high_round2 = {
        let high = high.clone();
        tokio::spawn(async move { high.enter(Some(Duration::from_secs(6))).await })
    };
    let lr2 = timeout(WAIT, low_round2).await.unwrap().unwrap();
    let hr2 = timeout(WAIT, high_round2).await.unwrap().unwrap();
    eprintln!("round 2: low {lr2:?}, high {hr2:?}");
    assert!(
        took < Duration::from_secs(3),
        "round 1's leave waited for round 2: {took:?}"
    );
    assert_eq!((lr2, hr2), (Ok(true), Ok(true)), "round 2 did not complete");
    zx.close().await.ok();
    zy.close().await.ok();
    common::delete_all(&admin, &root).await;
}

/// `Barrier::set` and `remove` whose answers are lost (the change applied on the
/// server, CONNECTIONLOSS to the client) end `Ok` once reconnected: NodeExists and NoNode
/// then mean done. `DistributedQueue::len` rides out a lost listing answer. Before
/// session 56 each returned CONNECTIONLOSS at the first lost answer, which their docs
/// promise only when the connection stays away.
#[tokio::test]
async fn barrier_set_remove_and_queue_len_ride_out_lost_answers() {
    let hosts = hosts_or_start();
    let other = common::connect(&hosts).await;
    let root = common::test_root(&other, "blipbar").await;
    let path = format!("{root}/bar");
    let proxy = Proxy::start(&first_host(&hosts)).await;
    let zk = via_proxy(&proxy, Duration::from_millis(6000)).await;
    let bar = Arc::new(Barrier::new(zk.clone(), &path).unwrap());
    // Each step: the answer to the request `mute_on` matches is lost, the connection cut.
    async fn lost_answer<T: Send + 'static>(proxy: &Proxy, step: tokio::task::JoinHandle<T>) -> T {
        tokio::time::sleep(Duration::from_millis(400)).await;
        proxy.cut();
        proxy.mute(false);
        timeout(WAIT, step).await.expect("step ended").unwrap()
    }
    let p = path.clone();
    proxy.mute_on(move |b| is_create(b) && contains(b, p.as_bytes()));
    let set = {
        let bar = bar.clone();
        tokio::spawn(async move { bar.set().await })
    };
    let set = lost_answer(&proxy, set).await;
    let raised = other.exists(&path).await.unwrap().is_some();
    let p = path.clone();
    proxy.mute_on(move |b| opcode(b) == Some(2) && contains(b, p.as_bytes()));
    let remove = {
        let bar = bar.clone();
        tokio::spawn(async move { bar.remove().await })
    };
    let remove = lost_answer(&proxy, remove).await;
    let lowered = other.exists(&path).await.unwrap().is_none();
    let qpath = format!("{root}/q");
    let q = Arc::new(DistributedQueue::new(zk.clone(), &qpath).unwrap());
    q.put(b"x").await.unwrap();
    let p = qpath.clone();
    proxy.mute_on(move |b| matches!(opcode(b), Some(8 | 12)) && contains(b, p.as_bytes()));
    let len = {
        let q = q.clone();
        tokio::spawn(async move { q.len().await })
    };
    let len = lost_answer(&proxy, len).await;
    zk.close().await.ok();
    common::delete_all(&other, &root).await;
    assert_eq!(
        (set, raised, remove, lowered, len),
        (Ok(()), true, Ok(()), true, Ok(1)),
        "set, raised, remove, lowered, len"
    );
}

/// A double barrier of 2 with a third participant that enters while the barrier is open
/// (the ready flag is up: its `enter` returns at once, it is in this round). The lowest
/// participant's leave, begun before the third's node was made, must wait for it too.
/// The first fix of the late-leaver deadlock (`6136242`: wait only for nodes made before
/// the leave began) returned here while the third was inside (found by a review).
#[tokio::test]
async fn double_barrier_leave_waits_for_a_participant_that_entered_while_open() {
    let hosts = hosts_or_start();
    let admin = common::connect(&hosts).await;
    let root = common::test_root(&admin, "blipsame").await;
    let path = format!("{root}/b");
    let z1 = common::connect(&hosts).await;
    let z2 = common::connect(&hosts).await;
    let z3 = common::connect(&hosts).await;
    let p1 = Arc::new(DoubleBarrier::new(z1.clone(), &path, 2).unwrap());
    let p2 = Arc::new(DoubleBarrier::new(z2.clone(), &path, 2).unwrap());
    let p3 = Arc::new(DoubleBarrier::new(z3.clone(), &path, 2).unwrap());
    let e1 = {
        let p1 = p1.clone();
        tokio::spawn(async move { p1.enter(Some(WAIT)).await })
    };
    assert_eq!(p2.enter(Some(WAIT)).await, Ok(true));
    assert_eq!(e1.await.unwrap(), Ok(true));
    // Which of the two has the lowest node.
    let mut members = common::children(&admin, &path).await;
    members.retain(|n| n != "ready");
    members.sort();
    let lowest_owner = admin
        .exists(&format!("{path}/{}", members[0]))
        .await
        .unwrap()
        .unwrap()
        .ephemeral_owner;
    let (low, high) = if lowest_owner == z1.session_id() {
        (p1.clone(), p2.clone())
    } else {
        (p2.clone(), p1.clone())
    };
    // The lowest leaves first: it waits for the highest.
    let low_leave = {
        let low = low.clone();
        tokio::spawn(async move { low.leave(Some(WAIT)).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!low_leave.is_finished(), "low waits for high");
    // A third participant enters: the barrier is open (ready is there), it passes.
    assert_eq!(
        p3.enter(Some(WAIT)).await,
        Ok(true),
        "p3 entered this round"
    );
    // The highest of the first two leaves.
    let high_leave = {
        let high = high.clone();
        tokio::spawn(async move { high.leave(Some(WAIT)).await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let low_done = low_leave.is_finished();
    let inside = common::children(&admin, &path).await;
    eprintln!("low leave finished: {low_done}; nodes now: {inside:?}");
    // Let everything finish.
    let r3 = p3.leave(Some(WAIT)).await;
    let rl = timeout(WAIT, low_leave).await.unwrap().unwrap();
    let rh = timeout(WAIT, high_leave).await.unwrap().unwrap();
    eprintln!("leaves: low {rl:?}, high {rh:?}, p3 {r3:?}");
    for z in [z1, z2, z3] {
        z.close().await.ok();
    }
    common::delete_all(&admin, &root).await;
    assert!(
        !low_done,
        "low's leave returned while p3 (entered, not left) was still inside: {inside:?}"
    );
}
