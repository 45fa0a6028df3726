//! rzk-client lock recipes across a server crash and restart (the server abandoned without
//! shutdown, its sockets closed, then started again on the same port and data directory):
//! the session, its lock node and the waiters' watches must survive, and a release issued
//! while the server is down must still happen.
//!
//! Runs against an in-process rzk server (`rzk_testkit::server`, crashed as a killed
//! process would be); with `RZK_TEST_ORACLE=1` the same tests also run against Debian's
//! Apache ZooKeeper as a process, killed with SIGKILL.
//!
//! Run: `cargo test -p rzk --test recipe_restart` (add `RZK_TEST_ORACLE=1` for the oracle)

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Kind, Server};
use rzk_client::recipes::{LeaderLatch, LostReason, Mutex};
use rzk_client::{Client, Error, SessionState};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(30);
/// Long enough for a restart (the JVM takes seconds), within rzk's default max (40 s).
const SESSION: Duration = Duration::from_secs(30);

async fn connect(addr: &str) -> Client {
    Client::builder(addr)
        .session_timeout(SESSION)
        .connect()
        .await
        .expect("connect")
}

async fn lock_nodes(zk: &Client, lock: &str) -> Vec<String> {
    match zk.get_children(lock).await {
        Ok(c) => c,
        Err(Error::NoNode) => Vec::new(),
        Err(e) => panic!("get_children({lock}): {e}"),
    }
}

async fn wait_connected(zk: &Client) {
    zk.wait_connected(WAIT).await.expect("reconnected");
    assert_eq!(zk.state(), SessionState::Connected);
}

fn kinds() -> Vec<Kind> {
    let mut k = vec![Kind::Rzk];
    if common::oracle_enabled() {
        k.push(Kind::ApacheZk);
    } else {
        eprintln!("oracle skipped: set RZK_TEST_ORACLE=1 to also run against Apache ZooKeeper");
    }
    k
}

async fn held_lock_and_waiter_survive_restart(kind: Kind) {
    let mut server = tokio::task::block_in_place(|| Server::by_kind(kind));
    let addr = server.addr();
    let a = connect(&addr).await;
    let b = connect(&addr).await;
    let (sid_a, sid_b) = (a.session_id(), b.session_id());
    let lock = "/restart/lock";
    let holder = Mutex::new(a.clone(), lock).unwrap();
    holder.acquire().await.unwrap();
    let node = holder.node().await.unwrap();
    let waiter = Arc::new(Mutex::new(b.clone(), lock).unwrap());
    let task = {
        let w = waiter.clone();
        tokio::spawn(async move { w.acquire().await })
    };
    while lock_nodes(&a, lock).await.len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    tokio::task::block_in_place(|| server.restart(Duration::from_millis(500)));
    wait_connected(&a).await;
    wait_connected(&b).await;
    assert_eq!(
        (a.session_id(), b.session_id()),
        (sid_a, sid_b),
        "{kind:?}: sessions resumed"
    );
    // The holder still holds: same node, no loss reported, the waiter still waits.
    assert!(holder.is_acquired().await, "{kind:?}: holder kept the lock");
    assert!(
        timeout(Duration::from_millis(300), holder.lost())
            .await
            .is_err(),
        "{kind:?}: no loss after a restart shorter than the session timeout"
    );
    assert_eq!(lock_nodes(&a, lock).await.len(), 2, "{kind:?}");
    assert_eq!(holder.node().await.as_deref(), Some(node.as_str()));
    assert!(!task.is_finished(), "{kind:?}: waiter must still wait");
    // The waiter's predecessor watch was re-registered: a release wakes it.
    holder.release().await.unwrap();
    timeout(WAIT, task)
        .await
        .unwrap_or_else(|_| panic!("{kind:?}: waiter never got the lock"))
        .unwrap()
        .unwrap();
    assert!(waiter.is_acquired().await);
    waiter.release().await.unwrap();
    assert!(lock_nodes(&a, lock).await.is_empty(), "{kind:?}");
    a.close().await.unwrap();
    b.close().await.unwrap();
}

async fn release_while_server_down_happens_after_restart(kind: Kind) {
    let mut server = tokio::task::block_in_place(|| Server::by_kind(kind));
    let addr = server.addr();
    let a = connect(&addr).await;
    let b = connect(&addr).await;
    let lock = "/down/lock";
    let holder = Arc::new(Mutex::new(a.clone(), lock).unwrap());
    holder.acquire().await.unwrap();
    let waiter = Arc::new(Mutex::new(b.clone(), lock).unwrap());
    let wtask = {
        let w = waiter.clone();
        tokio::spawn(async move { w.acquire().await })
    };
    while lock_nodes(&a, lock).await.len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::task::block_in_place(|| server.kill());
    let mut st = a.state_watcher();
    timeout(WAIT, st.wait_for(|s| *s == SessionState::Disconnected))
        .await
        .unwrap()
        .unwrap();
    // release() while no server is up: it must wait for the reconnect and delete then.
    let rtask = {
        let h = holder.clone();
        tokio::spawn(async move { h.release().await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!holder.is_acquired().await);
    tokio::task::block_in_place(|| server.start());
    timeout(WAIT, rtask)
        .await
        .unwrap_or_else(|_| panic!("{kind:?}: release never returned"))
        .unwrap()
        .unwrap();
    timeout(WAIT, wtask)
        .await
        .unwrap_or_else(|_| panic!("{kind:?}: waiter never got the lock"))
        .unwrap()
        .unwrap();
    assert_eq!(lock_nodes(&a, lock).await.len(), 1, "{kind:?}");
    waiter.release().await.unwrap();
    a.close().await.unwrap();
    b.close().await.unwrap();
}

async fn leader_latch_steps_down_while_disconnected(kind: Kind) {
    let mut server = tokio::task::block_in_place(|| Server::by_kind(kind));
    let addr = server.addr();
    let a = connect(&addr).await;
    let b = connect(&addr).await;
    let la = LeaderLatch::start(a.clone(), "/latch", "a").await.unwrap();
    assert!(la.await_leadership(WAIT).await.unwrap());
    let lb = LeaderLatch::start(b.clone(), "/latch", "b").await.unwrap();
    tokio::task::block_in_place(|| server.kill());
    let mut leader = la.leadership_watcher();
    timeout(WAIT, leader.wait_for(|l| !*l))
        .await
        .unwrap_or_else(|_| panic!("{kind:?}: leadership kept while disconnected"))
        .unwrap();
    tokio::task::block_in_place(|| server.start());
    assert!(
        la.await_leadership(WAIT).await.unwrap(),
        "{kind:?}: leadership back after reconnect"
    );
    assert!(!lb.has_leadership());
    la.close().await.unwrap();
    assert!(lb.await_leadership(WAIT).await.unwrap());
    lb.close().await.unwrap();
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_lock_and_waiter_survive_a_server_restart() {
    for k in kinds() {
        held_lock_and_waiter_survive_restart(k).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_issued_while_the_server_is_down() {
    for k in kinds() {
        release_while_server_down_happens_after_restart(k).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_latch_across_a_restart() {
    for k in kinds() {
        leader_latch_steps_down_while_disconnected(k).await;
    }
}

async fn lock_lost_across_a_long_outage(kind: Kind) {
    // Server down longer than the (short) session timeout: the holder must report the
    // loss. Once the server is back the session is either expired (the node goes with
    // it) or was restored with a fresh timeout (ZooKeeper re-tracks sessions on load);
    // either way the lost lock's node must go so another client can take the lock.
    let mut server = tokio::task::block_in_place(|| Server::by_kind(kind));
    let addr = server.addr();
    let zk = Client::builder(&addr)
        .session_timeout(Duration::from_secs(4))
        .connect()
        .await
        .unwrap();
    let m = Mutex::new(zk.clone(), "/outage/lock").unwrap();
    m.acquire().await.unwrap();
    tokio::task::block_in_place(|| server.kill());
    let reason = timeout(WAIT, m.lost()).await.expect("loss reported");
    assert_eq!(reason, LostReason::DisconnectedTooLong, "{kind:?}");
    assert!(!m.is_acquired().await);
    tokio::task::block_in_place(|| server.start());
    let other = connect(&addr).await;
    let m2 = Mutex::new(other.clone(), "/outage/lock").unwrap();
    assert!(
        m2.try_acquire(WAIT).await.unwrap(),
        "{kind:?}: the lost lock's node still blocks others (session {:?})",
        zk.state()
    );
    // The old holder can take it again only after the new one releases.
    assert!(!m
        .try_acquire(Duration::from_millis(300))
        .await
        .unwrap_or(false));
    m2.release().await.unwrap();
    if zk.state().is_connected() {
        assert!(m.try_acquire(WAIT).await.unwrap(), "{kind:?}");
        m.release().await.unwrap();
    }
    other.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_lost_across_an_outage_longer_than_the_session_timeout() {
    for k in kinds() {
        lock_lost_across_a_long_outage(k).await;
    }
}
