//! A connection whose client went silent without closing it is closed once it has been
//! idle for its session's timeout, even while the session lives on elsewhere.
//!
//! A client cut off from a server without a FIN or RST (a partition, a NAT that forgot
//! the connection) re-attaches its session on another server and goes on there. The
//! first server never reads from that connection again. ZooKeeper's NIO connection
//! factory closes it after the session timeout (its connection expiry queue); rzk
//! judged idleness only when the connection next read, so it kept the connection, with
//! its watches, registry entry and per-IP slot, until the session ended: one zombie per
//! such move, for as long as the session lived (a code review, session 52).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rzk_testkit::raw::RawClient;
use rzk_testkit::server::TestEnsemble;

const TIMEOUT_MS: i32 = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_after_its_session_timeout_while_the_session_lives_elsewhere()
{
    let e = TestEnsemble::start(3);
    let leader = e.wait_serving();
    let followers: Vec<u64> = e.ids().into_iter().filter(|&id| id != leader).collect();
    // Before the connection's last I/O (its handshake): the close must come a whole
    // session timeout after that.
    let start = Instant::now();
    let mut old = RawClient::connect(e.member(followers[0]).addr(), TIMEOUT_MS).await;
    let (session, passwd) = (old.session_id(), old.passwd());
    let mut moved =
        match RawClient::resume(e.member(followers[1]).addr(), TIMEOUT_MS, session, passwd).await {
            Ok(c) => c,
            Err((_, answer)) => panic!("the re-attach was refused: {answer:?}"),
        };
    let timeout = Duration::from_millis(u64::try_from(moved.timeout_ms()).unwrap_or(1_000));

    // The session lives on at the second follower, pinged every third of its timeout,
    // while the first connection stays open and silent: no byte, no FIN.
    let stop = Arc::new(AtomicBool::new(false));
    let pinger = {
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                moved.ping().await;
                tokio::time::sleep(timeout / 3).await;
            }
            moved
        })
    };
    let mut closed = false;
    // Each wait is up to 5 s (`is_closed`): 15 s in all, well past the timeout.
    for _ in 0..3 {
        if old.is_closed().await {
            closed = true;
            break;
        }
    }
    let waited = start.elapsed();
    assert!(
        closed,
        "the silent connection of session 0x{session:x} was still open {waited:?} after \
         its handshake (timeout {timeout:?}; the session re-attached elsewhere)"
    );
    assert!(
        waited >= timeout,
        "closed after {waited:?}, before the session timeout {timeout:?}"
    );

    // The session itself is untouched: it goes on where it moved.
    stop.store(true, Ordering::Relaxed);
    let mut moved = pinger.await.expect("the pinger task ends");
    assert!(moved.exists("/", false).await.is_ok());
    let _ = moved.close_session().await;
}
