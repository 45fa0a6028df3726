//! Lock, lease and latch handles release when dropped: a `?` between acquire and release
//! must not leave the node behind (it would block every other contender until the
//! session ends), and a waiter on another session gets the lock promptly.
//!
//! Run: `cargo test -p rzk-client --test recipe_guards` (in-process rzk), or against
//! Apache ZooKeeper with `RZK_TEST_HOSTS=127.0.0.1:PORT`.

mod common;

use std::time::Duration;

use rzk_client::recipes::*;
use rzk_client::*;
use rzk_testkit::server::hosts_or_start;

/// How long a waiter may need once the holder's handle is gone. The sessions stay open
/// far longer (their timeout is 10 s or more), so passing within this bound proves the
/// node was deleted by the drop and not by session expiry.
const PROMPT: Duration = Duration::from_secs(3);
/// How long a waiter is given to prove it is still locked out.
const SHORT: Duration = Duration::from_millis(300);

/// Stands for any fallible step inside the critical section.
fn step_that_fails() -> Result<()> {
    Err(Error::Recipe("the work failed".into()))
}

async fn early_return_with_mutex(m: &Mutex) -> Result<()> {
    let _guard = m.lock().await?;
    step_that_fails()?;
    Ok(())
}

#[tokio::test]
async fn mutex_guard_dropped_by_question_mark_releases_the_lock() {
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let b = common::connect(&hosts).await;
    let root = common::test_root(&a, "guard-mutex").await;
    let path = format!("{root}/lock");
    let holder = Mutex::new(a.clone(), &path).unwrap();
    let waiter = Mutex::new(b.clone(), &path).unwrap();

    let started = std::time::Instant::now();
    assert!(early_return_with_mutex(&holder).await.is_err());
    assert!(!holder.is_acquired().await);
    let g = waiter
        .try_lock(PROMPT)
        .await
        .unwrap()
        .expect("waiter gets the lock after the holder's guard was dropped");
    let waited = started.elapsed();
    assert_eq!(
        waiter.participant_nodes().await.unwrap(),
        vec![g.node().to_owned()],
        "only the waiter's node is left"
    );
    g.release().await.unwrap();
    assert!(waiter.participant_nodes().await.unwrap().is_empty());
    eprintln!("mutex: waiter acquired {waited:?} after the early return");
    common::delete_all(&a, &root).await;
}

#[tokio::test]
async fn reentrant_mutex_guards_release_on_the_last_drop() {
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let b = common::connect(&hosts).await;
    let root = common::test_root(&a, "guard-reentrant").await;
    let path = format!("{root}/lock");
    let m = Mutex::new(a.clone(), &path).unwrap();
    let other = Mutex::new(b.clone(), &path).unwrap();

    let outer = m.lock().await.unwrap();
    let inner = m.lock().await.unwrap();
    assert_eq!(
        outer.node(),
        inner.node(),
        "re-entrant: one node, two guards"
    );
    m.acquire().await.unwrap(); // a third acquisition, without a guard
    drop(inner);
    m.release().await.unwrap();
    assert!(m.is_acquired().await, "the outer guard still holds");
    assert!(other.try_lock(SHORT).await.unwrap().is_none());
    drop(outer);
    assert!(
        !m.is_acquired().await,
        "the last guard gave the lock back at once"
    );
    let g = other
        .try_lock(PROMPT)
        .await
        .unwrap()
        .expect("other gets it");

    // A guard whose hold is gone reports it on an explicit release.
    drop(g);
    let g1 = m.lock().await.unwrap();
    m.release().await.unwrap();
    assert!(matches!(g1.release().await, Err(Error::Recipe(_))));
    // Dropping and locking again at once on the same value counts right.
    for _ in 0..3 {
        let g = m.lock().await.unwrap();
        drop(g);
    }
    assert!(other.try_lock(PROMPT).await.unwrap().is_some());
    common::delete_all(&a, &root).await;
}

#[tokio::test]
async fn read_write_lock_guards_release_on_drop() {
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let b = common::connect(&hosts).await;
    let root = common::test_root(&a, "guard-rw").await;
    let path = format!("{root}/rw");
    let rw_a = ReadWriteLock::new(a.clone(), &path).unwrap();
    let rw_b = ReadWriteLock::new(b.clone(), &path).unwrap();

    // Writer leaves by `?`: a reader elsewhere gets in.
    assert!(early_return_with_mutex(rw_a.write_lock()).await.is_err());
    let r = rw_b
        .read_lock()
        .try_lock(PROMPT)
        .await
        .unwrap()
        .expect("reader gets in after the writer's guard was dropped");
    // Reader holds: a writer elsewhere waits; the reader leaves by `?`.
    assert!(rw_a.write_lock().try_lock(SHORT).await.unwrap().is_none());
    drop(r);
    assert!(early_return_with_mutex(rw_b.read_lock()).await.is_err());
    let w = rw_a
        .write_lock()
        .try_lock(PROMPT)
        .await
        .unwrap()
        .expect("writer gets in after the readers' guards were dropped");
    w.release().await.unwrap();
    // Empty, or reaped: the lock's parent is a container (as the semaphore's below).
    assert!(common::children(&a, &path).await.is_empty());
    common::delete_all(&a, &root).await;
}

#[tokio::test]
async fn semaphore_guard_dropped_by_question_mark_releases_the_lease() {
    async fn early_return(s: &SemaphoreMutex) -> Result<()> {
        let _lease = s.lock().await?;
        step_that_fails()?;
        Ok(())
    }
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let b = common::connect(&hosts).await;
    let root = common::test_root(&a, "guard-sem").await;
    let path = format!("{root}/sem");
    let s1 = SemaphoreMutex::new(a.clone(), &path).unwrap();
    let s2 = SemaphoreMutex::new(b.clone(), &path).unwrap();

    assert!(early_return(&s1).await.is_err());
    assert!(!s1.is_acquired().await);
    let lease = s2
        .try_lock(PROMPT)
        .await
        .unwrap()
        .expect("the other gets the lease after the guard was dropped");
    assert!(s1.try_lock(SHORT).await.unwrap().is_none());
    // Not re-entrant, guard or not.
    assert!(matches!(s2.lock().await, Err(Error::Recipe(_))));
    lease.release().await.unwrap();
    let leases = format!("{path}/leases");
    // Empty, or already gone: the leases parent is a container, which the server's
    // reaper may delete once its last lease is released (a CI run saw NoNode here).
    match a.get_children(&leases).await {
        Ok(left) => assert!(left.is_empty(), "{left:?}"),
        Err(Error::NoNode) => {}
        Err(e) => panic!("{e}"),
    }
    let again = s1.try_lock(PROMPT).await.unwrap().expect("free again");
    drop(again);
    let lease = s2
        .try_lock(PROMPT)
        .await
        .unwrap()
        .expect("dropped lease freed");
    lease.release().await.unwrap();
    common::delete_all(&a, &root).await;
}

#[tokio::test]
async fn dropped_leader_latch_and_leadership_hand_over() {
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let b = common::connect(&hosts).await;
    let root = common::test_root(&a, "guard-latch").await;
    let path = format!("{root}/latch");

    async fn lead_then_fail(client: Client, path: &str) -> Result<()> {
        let latch = LeaderLatch::start(client, path, "first").await?;
        if !latch.await_leadership(PROMPT).await? {
            return Err(Error::Recipe("first participant did not lead".into()));
        }
        step_that_fails()?;
        latch.close().await
    }
    assert!(matches!(
        lead_then_fail(a.clone(), &path).await,
        Err(Error::Recipe(m)) if m == "the work failed"
    ));
    let second = LeaderLatch::start(b.clone(), &path, "second")
        .await
        .unwrap();
    assert!(second.await_leadership(PROMPT).await.unwrap());
    assert_eq!(second.participants().await.unwrap(), vec!["second"]);
    second.close().await.unwrap();

    let epath = format!("{root}/election");
    let e1 = LeaderElection::new(a.clone(), &epath, "one").unwrap();
    let e2 = LeaderElection::new(b.clone(), &epath, "two").unwrap();
    let l1 = e1.lead().await.unwrap();
    let next = tokio::spawn(async move {
        let l2 = e2.lead().await?;
        l2.relinquish().await
    });
    tokio::time::sleep(SHORT).await;
    assert!(!next.is_finished(), "two waits while one leads");
    drop(l1);
    tokio::time::timeout(PROMPT, next)
        .await
        .expect("two leads promptly after one's leadership was dropped")
        .unwrap()
        .unwrap();
    assert!(e1.participants().await.unwrap().is_empty());
    common::delete_all(&a, &root).await;
}

/// How many tasks are inside a critical section, and the most ever inside at once.
#[derive(Default)]
struct Occupancy {
    inside: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

impl Occupancy {
    fn enter(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.inside.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
    }

    fn leave(&self) {
        self.inside
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn most(&self) -> usize {
        self.most.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Awaits every task of a turn-taking test (a minute each at most).
async fn all_take_their_turns(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("every task gets its turns")
            .unwrap();
    }
}

/// Tasks sharing one `Arc<Mutex>` exclude each other: re-entrance is per task, as
/// Curator's is per thread (new-user review: three tasks on one value all held it at
/// once). Each task counts itself in and out of the critical section; at most one may
/// be inside, and each still re-enters the hold it took.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_sharing_one_mutex_exclude_each_other() {
    use std::sync::Arc;
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let root = common::test_root(&a, "guard-shared").await;
    let m = Arc::new(Mutex::new(a.clone(), &format!("{root}/lock")).unwrap());
    let occupancy = Arc::new(Occupancy::default());
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let (m, occupancy) = (m.clone(), occupancy.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..3 {
                let g = m.lock().await.unwrap();
                occupancy.enter();
                // re-entrant within the task: same node, a second guard
                let again = m.lock().await.unwrap();
                assert_eq!(again.node(), g.node());
                drop(again);
                tokio::time::sleep(Duration::from_millis(50)).await;
                occupancy.leave();
                g.release().await.unwrap();
            }
        }));
    }
    all_take_their_turns(tasks).await;
    assert_eq!(occupancy.most(), 1, "two tasks held the lock at once");
    assert!(m.participant_nodes().await.unwrap().is_empty());
    // a waiting task gives up at its deadline while another task holds
    let g = m.lock().await.unwrap();
    let m2 = m.clone();
    let waited = tokio::spawn(async move { m2.try_lock(SHORT).await.unwrap().is_none() });
    assert!(waited.await.unwrap(), "try_lock in another task times out");
    g.release().await.unwrap();
    common::delete_all(&a, &root).await;
}

/// A ReadWriteLock value shared by tasks: only the task holding the write lock may read
/// through it (downgrade); another task's read waits for the writer (before session 30
/// any task of the value read at once while the write lock was held).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_read_write_lock_lets_only_the_writer_task_downgrade() {
    use std::sync::Arc;
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let root = common::test_root(&a, "guard-rw-shared").await;
    let rw = Arc::new(ReadWriteLock::new(a.clone(), &format!("{root}/rw")).unwrap());
    let w = rw.write_lock().lock().await.unwrap();
    // the writer's own task downgrades at once
    let r = rw.read_lock().try_lock(PROMPT).await.unwrap();
    assert!(r.is_some(), "the writer task reads");
    drop(r);
    // another task of the same value waits for the writer
    let rw2 = rw.clone();
    let other =
        tokio::spawn(async move { rw2.read_lock().try_lock(SHORT).await.unwrap().is_some() });
    assert!(
        !other.await.unwrap(),
        "another task read while the write lock was held"
    );
    let rw3 = rw.clone();
    let later = tokio::spawn(async move {
        let g = rw3.read_lock().try_lock(PROMPT * 3).await.unwrap();
        g.is_some()
    });
    tokio::time::sleep(SHORT).await;
    w.release().await.unwrap();
    assert!(
        later.await.unwrap(),
        "the reader gets in once the writer released"
    );
    common::delete_all(&a, &root).await;
}

/// Tasks sharing one `Arc<SemaphoreMutex>` exclude each other and wait for each other, as
/// Curator's threads do (break-it review, session 40: another task's `try_lock` failed at
/// once with "not re-entrant" while the first held the lease). The holding task itself
/// still gets an error instead of waiting for itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_sharing_one_semaphore_mutex_wait_for_each_other() {
    use std::sync::Arc;
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let root = common::test_root(&a, "guard-sem-shared").await;
    let s = Arc::new(SemaphoreMutex::new(a.clone(), &format!("{root}/sem")).unwrap());
    let held = s.lock().await.unwrap();
    assert!(matches!(s.try_lock(SHORT).await, Err(Error::Recipe(_))));
    let s2 = s.clone();
    let other = tokio::spawn(async move {
        let g = s2.try_lock(Duration::from_secs(20)).await?;
        Ok::<_, Error>(g.map(|g| g.node().to_owned()))
    });
    tokio::time::sleep(SHORT).await;
    assert!(
        !other.is_finished(),
        "the other task waits while the lease is held"
    );
    // The holder's own second acquire is refused at once, not queued behind the other
    // task's acquire (which waits for this very lease).
    assert!(matches!(
        tokio::time::timeout(PROMPT, s.lock()).await,
        Ok(Err(Error::Recipe(_)))
    ));
    let first = held.node().to_owned();
    held.release().await.unwrap();
    let second = tokio::time::timeout(PROMPT, other)
        .await
        .expect("the other task gets the lease promptly after the release")
        .unwrap()
        .unwrap()
        .expect("acquired");
    assert_ne!(first, second);
    // The guard of the other task's lease was dropped with the task: free again.
    // Three tasks, three turns each: never two inside.
    let occupancy = Arc::new(Occupancy::default());
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let (s, occupancy) = (s.clone(), occupancy.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..3 {
                let g = s.lock().await.unwrap();
                occupancy.enter();
                tokio::time::sleep(Duration::from_millis(30)).await;
                occupancy.leave();
                g.release().await.unwrap();
            }
        }));
    }
    all_take_their_turns(tasks).await;
    assert_eq!(occupancy.most(), 1, "two tasks held the lease at once");
    common::delete_all(&a, &root).await;
}

/// A lease found lost no longer blocks its own value: the next acquire takes a new one
/// (break-it review, session 40: after the lease node was deleted, or the lease was lost
/// to a long disconnection, every acquire answered "already held" until `release`).
#[tokio::test]
async fn a_semaphore_mutex_acquires_again_after_its_lease_was_lost() {
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let b = common::connect(&hosts).await;
    let root = common::test_root(&a, "guard-sem-lost").await;
    let s = SemaphoreMutex::new(a.clone(), &format!("{root}/sem")).unwrap();
    s.acquire().await.unwrap();
    let leases = b.get_children(&format!("{root}/sem/leases")).await.unwrap();
    assert_eq!(leases.len(), 1);
    b.delete(&format!("{root}/sem/leases/{}", leases[0]), None)
        .await
        .unwrap();
    let why = tokio::time::timeout(PROMPT, s.lost())
        .await
        .expect("the loss is seen");
    assert_eq!(why, LostReason::NodeDeleted);
    assert!(!s.is_acquired().await);
    let g = s
        .try_lock(PROMPT)
        .await
        .unwrap()
        .expect("a new lease once the old one was lost");
    assert!(s.is_acquired().await);
    g.release().await.unwrap();
    common::delete_all(&a, &root).await;
}

/// A latch whose node is deleted by someone else joins the election again with a new
/// node, as Curator's `reset()` does: the leader steps down at once (it watches its own
/// node) and the next participant leads; a waiting participant finds out at its
/// predecessor's next change. Either way it leads again once it is first (before
/// session 41 it left the election for good).
#[tokio::test]
async fn a_latch_whose_node_is_deleted_joins_the_election_again() {
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let b = common::connect(&hosts).await;
    let root = common::test_root(&a, "guard-latch-rejoin").await;
    let path = format!("{root}/latch");
    let first = LeaderLatch::start(a.clone(), &path, "first").await.unwrap();
    assert!(first.await_leadership(PROMPT).await.unwrap());
    let second = LeaderLatch::start(b.clone(), &path, "second")
        .await
        .unwrap();
    let old = first.node().expect("a started latch has a node");
    b.delete(&old, None).await.unwrap();
    assert!(
        second.await_leadership(PROMPT).await.unwrap(),
        "the next participant leads once the leader's node is deleted"
    );
    assert!(!first.has_leadership(), "two leaders");
    let rejoined = common::eventually(PROMPT, || async {
        first.participants().await.unwrap() == vec!["second", "first"]
    })
    .await;
    assert!(rejoined, "{:?}", first.participants().await);
    let new = first.node().expect("rejoined with a node");
    assert_ne!(new, old);
    assert!(a.exists(&new).await.unwrap().is_some());
    second.close().await.unwrap();
    assert!(
        first.await_leadership(PROMPT).await.unwrap(),
        "the rejoined participant leads once it is first"
    );

    // A waiting participant's node deleted: it joins again with a new node (at once if
    // its first listing had not run yet, else at its predecessor's next change), and
    // the two left take their turns.
    let waiter = LeaderLatch::start(b.clone(), &path, "waiter")
        .await
        .unwrap();
    let gone = waiter.node().unwrap();
    a.delete(&gone, None).await.unwrap();
    let third = LeaderLatch::start(a.clone(), &path, "third").await.unwrap();
    first.close().await.unwrap();
    let one_leads = common::eventually(PROMPT, || async {
        third.has_leadership() != waiter.has_leadership()
    })
    .await;
    assert!(one_leads, "nobody (or both) lead after first left");
    let rejoined = common::eventually(PROMPT, || async {
        let mut p = third.participants().await.unwrap();
        p.sort();
        p == vec!["third", "waiter"]
    })
    .await;
    assert!(rejoined, "{:?}", third.participants().await);
    assert_ne!(waiter.node().unwrap(), gone);
    let (leader, next) = if third.has_leadership() {
        (third, waiter)
    } else {
        (waiter, third)
    };
    leader.close().await.unwrap();
    assert!(next.await_leadership(PROMPT).await.unwrap());
    next.close().await.unwrap();
    assert!(common::children(&a, &path).await.is_empty());
    common::delete_all(&a, &root).await;
}

/// `await_leadership` ends with `Closed` once the latch has left the election for good
/// instead of waiting out its timeout (break-it review, session 40): here its node is
/// deleted and the election's ACL no longer lets it create a new one, so it cannot join
/// again (NOAUTH); when it may no longer list the election (NOAUTH); and after its
/// session is closed.
#[tokio::test]
async fn await_leadership_ends_when_the_latch_left_the_election() {
    let hosts = hosts_or_start();
    let a = common::connect(&hosts).await;
    let b = common::connect(&hosts).await;
    let root = common::test_root(&a, "guard-latch-gone").await;
    let path = format!("{root}/latch");
    // Persistent, not the container a latch would create: the server's container
    // reaper must not remove it while it is empty, the latch would then create it again.
    let persistent = |p: String| {
        let a = a.clone();
        async move {
            a.create(&p, b"", &open_acl_unsafe(), CreateMode::Persistent)
                .await
                .unwrap();
        }
    };
    persistent(path.clone()).await;
    let first = LeaderLatch::start(a.clone(), &path, "first").await.unwrap();
    assert!(first.await_leadership(PROMPT).await.unwrap());
    b.add_auth("digest", b"owner:pw").await.unwrap();
    let owner_creates = [
        Acl::new(perms::ALL, "digest", &digest_acl_id("owner", "pw")),
        Acl::new(perms::READ, "world", "anyone"),
    ];
    b.set_acl(&path, &owner_creates, None).await.unwrap();
    let node = first.node().unwrap();
    let delete = async {
        tokio::time::sleep(SHORT).await;
        b.delete(&node, None).await.unwrap();
    };
    let (r, ()) = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(
            async {
                // Leads now: the first call returns at once; the wait is the second,
                // once the latch has seen its node go (before that it still leads, and
                // a busy machine may deliver the deletion late).
                assert!(first.await_leadership(PROMPT).await.unwrap());
                let noticed = common::eventually(Duration::from_secs(15), || async {
                    !first.has_leadership()
                })
                .await;
                assert!(noticed, "the latch did not see its node deleted");
                first.await_leadership(Duration::from_secs(60)).await
            },
            delete
        )
    })
    .await
    .expect("the wait ends when the latch leaves the election");
    assert!(matches!(r, Err(Error::Closed)), "{r:?}");
    assert!(!first.has_leadership());
    assert_eq!(first.node(), None);
    // (The election's node is a container: the server may have reaped it by now.)
    assert!(common::children(&b, &path).await.is_empty());
    // Asked afterwards: at once.
    assert!(matches!(
        first.await_leadership(Duration::from_secs(60)).await,
        Err(Error::Closed)
    ));
    b.set_acl(&path, &open_acl_unsafe(), None).await.unwrap();

    // The election no longer readable: its node deleted, the latch cannot list the
    // election to find out where it stands.
    let unreadable = format!("{root}/unreadable");
    persistent(unreadable.clone()).await;
    let lister = LeaderLatch::start(a.clone(), &unreadable, "lister")
        .await
        .unwrap();
    assert!(lister.await_leadership(PROMPT).await.unwrap());
    let owner_only = Acl::new(perms::ALL, "digest", &digest_acl_id("owner", "pw"));
    b.set_acl(&unreadable, &[owner_only], None).await.unwrap();
    b.delete(&lister.node().unwrap(), None).await.unwrap();
    let stepped_down = common::eventually(PROMPT, || async { !lister.has_leadership() }).await;
    assert!(stepped_down, "the leader's node was deleted");
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        lister.await_leadership(Duration::from_secs(60)),
    )
    .await
    .expect("the wait ends when the latch cannot list the election");
    assert!(matches!(r, Err(Error::Closed)), "{r:?}");
    b.set_acl(&unreadable, &open_acl_unsafe(), None)
        .await
        .unwrap();
    drop(lister);

    // The session closed while a participant waits.
    let c = common::connect(&hosts).await;
    let leader = LeaderLatch::start(b.clone(), &path, "leader")
        .await
        .unwrap();
    assert!(leader.await_leadership(PROMPT).await.unwrap());
    let waiter = LeaderLatch::start(c.clone(), &path, "waiter")
        .await
        .unwrap();
    let (r, closed) = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(waiter.await_leadership(Duration::from_secs(60)), async {
            tokio::time::sleep(SHORT).await;
            c.close().await
        })
    })
    .await
    .expect("the waiter's wait ends with its session");
    closed.unwrap();
    assert!(matches!(r, Err(Error::Closed)), "{r:?}");
    assert_eq!(leader.participants().await.unwrap(), vec!["leader"]);
    leader.close().await.unwrap();
    drop(first);
    drop(waiter);
    common::delete_all(&a, &root).await;
}
