//! A session that moves to another learner right after its creation is alive there,
//! even while the leader has committed its createSession and not yet applied it.
//!
//! A follower applies a commit on its own schedule: it may answer the client's
//! ConnectRequest, and the client may move to a second follower (its first server died),
//! before the leader's applier has added the session to the leader's table. The second
//! follower asks the leader (REVALIDATE); ZooKeeper's leader tracks a session from its
//! prep (`trackSession`), so it answers that the session is alive. rzk's leader answered
//! from the applied table only and the client was told its session had expired while it
//! lived on for a whole timeout (a break-it review, session 45: 78 of 4,000 moves between
//! followers of a loaded 3-member ensemble; ZooKeeper 3.8: 0 of 7,000). Here the window
//! is held open: the test holds the leader's tree, so its applier waits while its driver
//! (prep, commits, REVALIDATE) goes on.

use std::sync::mpsc;
use std::time::Duration;

use rzk_testkit::raw::RawClient;
use rzk_testkit::server::TestEnsemble;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_moved_before_the_leader_applied_its_creation_is_alive() {
    let mut e = TestEnsemble::start(3);
    let leader = e.wait_serving();
    let followers: Vec<u64> = e.ids().into_iter().filter(|&id| id != leader).collect();
    let (first, second) = (followers[0], followers[1]);

    let shared = e.member(leader).server().shared().clone();
    let (held_tx, held_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let tree = shared.tree();
        let before = tree.last_zxid();
        held_tx.send(()).expect("the test waits for the hold");
        // Released by the test, or after a bound so that a fault cannot hang the run.
        let _ = release_rx.recv_timeout(Duration::from_secs(20));
        before
    });
    held_rx.recv().expect("the holder thread runs");

    // Created through the first follower: committed by the quorum, applied there and
    // answered, while the leader's applier waits for the tree.
    let created = RawClient::connect(e.member(first).addr(), 10_000).await;
    let (session, passwd) = (created.session_id(), created.passwd());
    drop(created);
    let moved = RawClient::resume(e.member(second).addr(), 10_000, session, passwd).await;
    let _ = release_tx.send(());
    let zxid_while_held = holder.join().expect("the holder thread ends");

    let mut moved = match moved {
        Ok(c) => c,
        Err((_, answer)) => panic!(
            "session 0x{session:x} was refused at the second follower as expired \
             (timeout {}), while its createSession was committed",
            answer.timeout_ms
        ),
    };
    assert!(moved.timeout_ms() > 0);
    // The session works there, and the leader has it now.
    let (err, _) = moved.create("/moved-at-once", b"x", 1).await;
    assert_eq!(err, 0, "an ephemeral create of the moved session");
    let tree = e.member(leader).server().shared().tree();
    assert!(tree.last_zxid() > zxid_while_held);
    drop(tree);
    assert!(e
        .member(leader)
        .server()
        .shared()
        .sessions()
        .contains(rzk_proto::SessionId(session)));
    e.stop();
}
