//! The pipelined per-session order checker against an in-process standalone rzk server.
//! (`scripts/test.sh` also runs it against a 3-node rzk ensemble — connected to leader
//! and followers, with sessions moving — and against Apache ZooKeeper 3.8.)

use rzk_testkit::fifo::{run, FifoConfig};
use rzk_testkit::server::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_sessions_see_their_own_serial_order() {
    let mut server = TestServer::start();
    let report = run(&FifoConfig {
        hosts: vec![server.addr()],
        sessions: 16,
        rounds: 125,
        batch: 12,
        seed: 8,
        ..FifoConfig::default()
    })
    .await
    .expect("checker runs");
    for d in &report.differences {
        eprintln!("difference: {d}");
    }
    assert_eq!(report.rounds, 2000);
    assert_eq!(report.wrong, 0, "{report}");
    assert!(
        report.notifications > 100,
        "{report}: the rounds set and fired watches"
    );
    server.stop();
}
