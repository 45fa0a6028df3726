//! The in-process server harness itself: a server keeps its address and data across a
//! crash and a clean restart; an ensemble with an observer elects, replicates, survives
//! its leader's crash and takes the old leader back; `hosts_or_start` serves.

use rzk_testkit::raw::RawClient;
use rzk_testkit::server::{four_letter, hosts_or_start, TestEnsemble, TestServer};
use std::time::{Duration, Instant};

const NONODE: i32 = -101;

/// Polls `exists(path)` on `addr` until it holds (a follower or observer may lag).
async fn wait_exists(addr: std::net::SocketAddr, path: &str) {
    let mut c = RawClient::connect(addr, 5000).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.exists(path, false).await == Err(NONODE) {
        assert!(Instant::now() < deadline, "{path} never reached {addr}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_keeps_its_address_and_data_across_crash_and_restart() {
    let mut s = TestServer::start();
    let addr = s.addr();
    assert_eq!(s.hosts(), addr.to_string());
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    assert_eq!(four_letter(addr, "ruok").unwrap(), "imok");
    let mut c = RawClient::connect(addr, 5000).await;
    assert_eq!(c.create("/kept", b"1", 0).await.0, 0);

    s.crash();
    assert!(!s.is_running());
    assert!(c.is_closed().await, "a crash closes the server's sockets");
    assert!(four_letter(addr, "ruok").is_err(), "nothing listens");

    s.restart();
    assert_eq!(s.addr(), addr, "same address after a restart");
    let mut c = RawClient::connect(addr, 5000).await;
    assert!(c.exists("/kept", false).await.is_ok());
    assert_eq!(c.create("/after-crash", b"", 0).await.0, 0);

    s.restart(); // clean stop first
    let mut c = RawClient::connect(addr, 5000).await;
    assert!(c.exists("/after-crash", false).await.is_ok());
    let dir = s.data_dir().to_path_buf();
    s.stop();
    assert!(dir.exists(), "a stopped server keeps its data");
    drop(s);
    assert!(
        !dir.exists(),
        "the harness's own data dir goes with the server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builder_changes_the_configuration() {
    let s = TestServer::builder()
        .tick_time_ms(200)
        .configure(|c| c.max_client_cnxns = 7)
        .start();
    assert_eq!(s.config().tick_time_ms, 200);
    assert_eq!(s.config().max_session_timeout_ms, 4000);
    let conf = four_letter(s.addr(), "conf").unwrap();
    assert!(conf.contains("tickTime=200\n"), "{conf}");
    assert!(conf.contains("maxClientCnxns=7\n"), "{conf}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ensemble_elects_replicates_and_survives_its_leader() {
    let mut e = TestEnsemble::builder(3).observers(1).start();
    assert_eq!(e.ids(), vec![1, 2, 3, 4]);
    let leader = e.leader().expect("a leader once started");
    assert_eq!(e.wait_serving(), leader);
    let modes = e.modes();
    assert_eq!(modes.iter().filter(|(_, m)| *m == "follower").count(), 2);
    assert_eq!(modes[3], (4, "observer"));
    assert_eq!(e.hosts().split(',').count(), 4);

    let mut c = RawClient::connect(e.member(leader).addr(), 5000).await;
    assert_eq!(c.create("/replicated", b"x", 0).await.0, 0);
    for id in e.ids() {
        wait_exists(e.member(id).addr(), "/replicated").await;
    }

    e.member_mut(leader).crash();
    let next = e.wait_serving();
    assert_ne!(next, leader);
    assert_eq!(e.hosts().split(',').count(), 3);
    let mut c = RawClient::connect(e.member(next).addr(), 5000).await;
    assert_eq!(c.create("/after-failover", b"", 0).await.0, 0);

    e.member_mut(leader).restart();
    e.wait_serving();
    wait_exists(e.member(leader).addr(), "/after-failover").await;
    e.stop();
    assert!(e.modes().iter().all(|(_, m)| *m == "stopped"));
}

#[test]
fn hosts_or_start_serves() {
    let hosts = hosts_or_start();
    assert_eq!(hosts, hosts_or_start(), "one server per test binary");
    if std::env::var("RZK_TEST_HOSTS").is_ok_and(|h| !h.trim().is_empty()) {
        return;
    }
    let addr = hosts.parse().expect("one host:port");
    assert_eq!(four_letter(addr, "ruok").unwrap(), "imok");
    let srvr = four_letter(addr, "conf").unwrap();
    assert!(srvr.contains("tickTime=2000\n"), "{srvr}");
}
