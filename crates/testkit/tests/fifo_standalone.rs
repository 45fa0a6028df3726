//! The pipelined per-session order checker against an in-process standalone rzk server.
//! (`scripts/test.sh` also runs it against a 3-node rzk ensemble — connected to leader
//! and followers, with sessions moving — and against Apache ZooKeeper 3.8.)

use rzk_server::config::Config;
use rzk_server::node::Server;
use rzk_testkit::fifo::{run, FifoConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_sessions_see_their_own_serial_order() {
    let dir = std::env::temp_dir().join(format!("rzk-fifo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = Config {
        data_dir: dir.clone(),
        data_log_dir: dir.clone(),
        client_port: 0,
        client_port_address: Some("127.0.0.1".parse().unwrap()),
        max_client_cnxns: 0,
        ..Config::default()
    };
    let server = Server::start(cfg).await.expect("server starts");
    let report = run(&FifoConfig {
        hosts: vec![server.local_addr()],
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
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
