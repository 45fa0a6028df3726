//! A queue item's claim is released only while it holds the item's token: a release
//! repeated after a lost answer, or from `Drop` after a cancelled `ack`/`abandon`, must
//! never delete the claim of the consumer that took the item next (which would hand the
//! item to a third consumer while the second still holds it). And a take rides out a
//! short disconnection while it reads the item it claimed. Found by a break-it review of
//! the queue (session 37): both happened on rzk and on ZooKeeper 3.8 (client-side).
//!
//! Run: `RZK_TEST_HOSTS=127.0.0.1:2181 cargo test -p rzk-client --test queue_claims`

mod common;

use std::time::Duration;

use common::proxy::Proxy;
use common::{children as kids, contains, first_host, settle, via_proxy};
use rzk_client::recipes::*;
use rzk_client::*;
use rzk_testkit::server::hosts_or_start;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

/// The opcode of a request frame (length, xid, type).
fn opcode(b: &[u8]) -> Option<i32> {
    (b.len() >= 12).then(|| i32::from_be_bytes([b[8], b[9], b[10], b[11]]))
}

/// A claim delete (opcode 2) of a queue item.
fn claim_delete(b: &[u8]) -> bool {
    opcode(b) == Some(2) && contains(b, b"/locks/queue-")
}

/// Two direct sessions (B, C), a queue with one item under a fresh root, and A, a session
/// through a proxy.
struct Scene {
    b: Client,
    c: Client,
    a: Client,
    proxy: Proxy,
    root: String,
    path: String,
}

/// The scene, with the item taken by A.
async fn scene(name: &str) -> (Scene, QueueItem) {
    let hosts = hosts_or_start();
    let b = common::connect(&hosts).await;
    let c = common::connect(&hosts).await;
    let root = common::test_root(&b, name).await;
    let path = format!("{root}/q");
    DistributedQueue::new(b.clone(), &path)
        .unwrap()
        .put(b"x")
        .await
        .unwrap();
    let proxy = Proxy::start(&first_host(&hosts)).await;
    let a = via_proxy(&proxy, Duration::from_secs(10)).await;
    let item_a = DistributedQueue::new(a.clone(), &path)
        .unwrap()
        .take()
        .await
        .unwrap();
    let s = Scene {
        b,
        c,
        a,
        proxy,
        root,
        path,
    };
    (s, item_a)
}

/// B takes the item (A's claim is gone on the server by now).
async fn b_takes(s: &Scene) -> QueueItem {
    timeout(
        WAIT,
        DistributedQueue::new(s.b.clone(), &s.path).unwrap().take(),
    )
    .await
    .expect("B take")
    .unwrap()
}

/// After B took the item A let go of: B's claim is the only one, and a third consumer
/// gets nothing while B holds the item. Cleans up.
async fn only_b_holds(s: Scene, item_b: QueueItem) {
    let claims = kids(&s.b, &format!("{}/locks", s.path)).await;
    let item_c = DistributedQueue::new(s.c.clone(), &s.path)
        .unwrap()
        .try_take()
        .await
        .unwrap();
    let double = item_c.is_some();
    if let Some(i) = item_c {
        i.abandon().await.unwrap();
    }
    item_b.ack().await.unwrap();
    s.a.close().await.ok();
    common::delete_all(&s.b, &s.root).await;
    assert!(
        !double && claims.len() == 1,
        "A's release removed B's claim (claims {claims:?}); C got the item while B held it: {double}"
    );
}

/// A's `abandon` loses the answer of its claim delete (the delete reaches the server);
/// B takes the item; A reconnects and tries again: B's claim must stay.
#[tokio::test]
async fn abandon_with_lost_delete_answer_does_not_delete_the_next_claim() {
    let (s, item_a) = scene("qclaims-lost").await;
    // Lose the answer of A's claim delete (the delete itself reaches the server).
    s.proxy.mute_on(claim_delete);
    let abandon = tokio::spawn(async move { item_a.abandon().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let item_b = b_takes(&s).await;
    // A reconnects; its delete is retried.
    s.proxy.cut();
    s.proxy.mute(false);
    timeout(WAIT, abandon).await.unwrap().unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    only_b_holds(s, item_b).await;
}

/// The same with the item dropped (its release runs in the background).
#[tokio::test]
async fn dropped_item_with_lost_delete_answer_does_not_delete_the_next_claim() {
    let (s, item_a) = scene("qclaims-drop").await;
    s.proxy.mute_on(claim_delete);
    drop(item_a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let item_b = b_takes(&s).await;
    s.proxy.cut();
    s.proxy.mute(false);
    // The background release reconnects and looks again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    only_b_holds(s, item_b).await;
}

/// A's `abandon` is cancelled (a timeout around it) while the answer to its claim delete
/// is held back, after B took the item: `Drop` releases again, and must leave B's claim.
#[tokio::test]
async fn a_cancelled_abandon_leaves_the_next_consumers_claim() {
    let (s, item_a) = scene("qclaims-cancel").await;
    // Hold back (not lose) the answers from the server once A sends its claim delete.
    s.proxy.hold_on(claim_delete);
    let abandon = tokio::spawn(async move { item_a.abandon().await });
    s.proxy.holding().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let item_b = b_takes(&s).await;
    // A's abandon is cancelled before its answer arrives.
    abandon.abort();
    let _ = abandon.await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.proxy.release();
    tokio::time::sleep(Duration::from_millis(500)).await;
    only_b_holds(s, item_b).await;
}

/// The answer to the take's read of the item it claimed is lost (connection muted, then
/// cut): the take reads again after the reconnect and returns the item.
#[tokio::test]
async fn a_take_rides_out_a_lost_item_read() {
    let hosts = hosts_or_start();
    let b = common::connect(&hosts).await;
    let root = common::test_root(&b, "qclaims-read").await;
    let path = format!("{root}/q");
    let locks = format!("{path}/locks");
    let item = DistributedQueue::new(b.clone(), &path)
        .unwrap()
        .put(b"x")
        .await
        .unwrap();
    let proxy = Proxy::start(&first_host(&hosts)).await;
    let a = via_proxy(&proxy, Duration::from_secs(6)).await;
    let qa = DistributedQueue::new(a.clone(), &path).unwrap();
    let ib = item.clone().into_bytes();
    proxy.mute_on(move |bytes| {
        opcode(bytes) == Some(4) && contains(bytes, &ib) && !contains(bytes, b"/locks/")
    });
    let take = tokio::spawn(async move { qa.take().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.cut();
    proxy.mute(false);
    let taken = timeout(WAIT, take).await.unwrap().unwrap();
    let ok = taken.is_ok();
    if let Ok(i) = taken {
        assert_eq!(i.data, b"x");
        i.ack().await.unwrap();
    }
    let left = settle(&b, &locks, 0).await;
    a.close().await.ok();
    common::delete_all(&b, &root).await;
    assert!(left.is_empty(), "claims left {left:?}");
    assert!(ok, "take failed on a short disconnection");
}
