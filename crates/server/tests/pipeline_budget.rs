//! The write pipeline's byte budget (`node::jobs::Admitted`): clients that pipeline more
//! request bytes than the budget wait for room instead of the server queueing them all
//! (session 42: 10 sessions x 200 x 1 MB setData held 3.9 GB), and every request is
//! still answered, in order, with nothing lost — no connection waits forever for bytes
//! its own requests hold.

use rzk_proto::opcode::OpCode;
use rzk_proto::records::SetDataRequest;
use rzk_proto::Jute;
use rzk_testkit::raw::RawClient;
use rzk_testkit::server::TestServer;
use std::time::Duration;

const WRITE: usize = 900 * 1024;
const PER_CLIENT: i32 = 12;
const CLIENTS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_beyond_the_budget_wait_and_all_complete() {
    // Room for four of the writes at once; 36 are sent without reading a reply.
    let server = TestServer::builder()
        .configure(|c| c.pipeline_bytes = Some(4 * WRITE))
        .start();
    let mut setup = RawClient::connect(server.addr(), 30_000).await;
    for i in 0..CLIENTS {
        assert_eq!(setup.create(&format!("/flood-{i}"), b"", 0).await.0, 0);
    }
    let mut floods = Vec::new();
    for i in 0..CLIENTS {
        let addr = server.addr();
        floods.push(tokio::spawn(async move {
            let mut c = RawClient::connect(addr, 30_000).await;
            let path = format!("/flood-{i}");
            for n in 0..PER_CLIENT {
                let req = SetDataRequest {
                    path: path.clone(),
                    data: vec![n as u8; WRITE].into(),
                    version: n,
                };
                c.send(n + 1, OpCode::SetData.code(), &req.to_bytes()).await;
            }
            for n in 0..PER_CLIENT {
                let (h, _) = c.recv().await.expect("a reply");
                assert_eq!((h.xid, h.err), (n + 1, 0), "client {i}: write {n}");
            }
        }));
    }
    // A small write of another session goes through meanwhile.
    let (err, _) = tokio::time::timeout(
        Duration::from_secs(60),
        setup.create("/beside-the-flood", b"x", 0),
    )
    .await
    .expect("a small write waited more than a minute beside the flood");
    assert_eq!(err, 0);
    for f in floods {
        tokio::time::timeout(Duration::from_secs(120), f)
            .await
            .expect("the flooding clients were answered")
            .expect("flood task");
    }
    for i in 0..CLIENTS {
        let (data, stat) = setup
            .get_data(&format!("/flood-{i}"), false)
            .await
            .expect("flood node");
        assert_eq!(stat.version, PER_CLIENT);
        assert!(data.len() == WRITE && data.iter().all(|b| *b == (PER_CLIENT - 1) as u8));
    }
}
