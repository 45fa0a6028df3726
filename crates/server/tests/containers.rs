//! The container and TTL reaper's pace (ZooKeeper's `ContainerManager`): a check every
//! `znode.container.checkIntervalMs`, and within a check one deletion per
//! `60000 / znode.container.maxPerMinute` ms. Found by a review (session 42): rzk
//! deleted one per check however low `maxPerMinute` was, ten times ZooKeeper's rate at
//! `maxPerMinute=6` and `checkIntervalMs=1000`.

use bytes::Bytes;
use rzk_proto::opcode::OpCode;
use rzk_proto::records::{Acl, CreateRequest};
use rzk_proto::Jute;
use rzk_testkit::raw::RawClient;
use rzk_testkit::server::TestServer;
use std::time::{Duration, Instant};

const CONTAINER: i32 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_are_reaped_at_most_max_per_minute() {
    // One deletion a second, checks every 200 ms: the old rule deleted one per check.
    let server = TestServer::builder()
        .configure(|c| {
            c.container_check_interval_ms = 200;
            c.container_max_per_minute = 60;
        })
        .start();
    let mut c = RawClient::connect(server.addr(), 10_000).await;
    let paths: Vec<String> = (0..4).map(|i| format!("/reaped-{i}")).collect();
    for p in &paths {
        let req = CreateRequest {
            path: p.clone(),
            data: Bytes::new().into(),
            acl: Acl::open_unsafe(),
            flags: CONTAINER,
        };
        let (h, _) = c
            .call(OpCode::CreateContainer.code(), &req.to_bytes())
            .await;
        assert_eq!(h.err, 0, "createContainer {p}");
        assert_eq!(c.create(&format!("{p}/child"), b"", 0).await.0, 0);
    }
    for p in &paths {
        assert_eq!(c.delete(&format!("{p}/child"), -1).await, 0);
    }
    let emptied = Instant::now();
    let mut gone_at = Vec::new();
    while gone_at.len() < paths.len() {
        assert!(
            emptied.elapsed() < Duration::from_secs(30),
            "not reaped: {gone_at:?}"
        );
        let mut gone = 0;
        for p in &paths {
            if c.exists(p, false).await.is_err() {
                gone += 1;
            }
        }
        while gone_at.len() < gone {
            gone_at.push(emptied.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // However slow the machine, the pace never lets a second deletion out within a
    // second of the first: four take at least three seconds (2 s allows for the
    // polling; one per check would take 0.6 s).
    let span = gone_at[3].saturating_sub(gone_at[0]);
    assert!(
        span >= Duration::from_secs(2),
        "four containers reaped within {span:?} ({gone_at:?}) at maxPerMinute=60"
    );
}
