//! The AdminServer's life cycle with the server (`node::Server`): it answers while the
//! server runs, its port closes on shutdown, a busy port stops a standalone start-up,
//! and idle connections are closed. (Answers are compared with ZooKeeper 3.8 by
//! tests/admin/admin_test.py.)

use rzk_server::admin::settings::AdminSettings;
use rzk_server::node::{Server, ServerError};
use rzk_testkit::server::TestServer;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config_with_admin(port: u16, idle_ms: u64) -> rzk_server::config::Config {
    TestServer::builder()
        .configure(|c| {
            c.admin = AdminSettings {
                enabled: true,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                idle_timeout: Duration::from_millis(idle_ms),
                ..AdminSettings::default()
            };
        })
        .build_config()
}

/// (status code, body) of `GET path` over a fresh HTTP/1.1 connection.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("admin port open");
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("request written");
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out))
        .await
        .expect("answer within 10 s")
        .expect("answer read");
    let code = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (code, body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_while_running_and_closes_with_the_server() {
    let server = Server::start(config_with_admin(0, 30_000))
        .await
        .expect("server starts");
    let admin = server.admin_addr().expect("AdminServer runs");
    let (code, body) = get(admin, "/commands/ruok").await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["command"], "ruok");
    assert!(v["error"].is_null());
    let (_, body) = get(admin, "/commands/srvr").await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["command"], "server_stats");
    assert_eq!(v["server_stats"]["server_state"], "standalone");
    assert_eq!(get(admin, "/elsewhere").await.0, 404);

    server.shutdown().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(admin).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the admin port still accepts after shutdown"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_admin_port_stops_a_standalone_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    match Server::start(config_with_admin(port, 30_000)).await {
        Err(ServerError::Admin(e)) => {
            assert_eq!(e.addr.port(), port);
            assert!(
                e.to_string().contains("Problem starting AdminServer"),
                "{e}"
            );
        }
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("started although the admin port is taken"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let server = Server::start(config_with_admin(0, 300))
        .await
        .expect("server starts");
    let admin = server.admin_addr().expect("AdminServer runs");
    let mut s = TcpStream::connect(admin).await.expect("connect");
    let t0 = Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("closed within 5 s")
        .unwrap_or(0);
    assert_eq!(n, 0, "the server sent something to an idle connection");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "closed after {waited:?}"
    );
    server.shutdown().await;
}

/// A client that trickles its request head a byte at a time, each within the idle
/// timeout, is still closed once the head has taken longer than that timeout (a review
/// in session 59 held 800 such connections open, descriptors and all, for 40 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_trickled_past_the_idle_timeout_is_closed() {
    let server = Server::start(config_with_admin(0, 600))
        .await
        .expect("server starts");
    let admin = server.admin_addr().expect("AdminServer runs");
    let s = TcpStream::connect(admin).await.expect("connect");
    let (mut rd, mut wr) = s.into_split();
    let t0 = Instant::now();
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        let _ = rd.read_to_end(&mut out).await;
        out
    });
    let head = b"GET /commands/ruok HTTP/1.1\r\nHost: test\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for b in head.iter().cycle().take(50) {
        if reader.is_finished() || wr.write_all(&[*b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let out = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("closed while trickling")
        .expect("reader task");
    let waited = t0.elapsed();
    assert!(
        waited < Duration::from_millis(7000),
        "open for {waited:?} while trickling a head"
    );
    assert!(
        !String::from_utf8_lossy(&out).contains("imok"),
        "the command ran: {}",
        String::from_utf8_lossy(&out)
    );
    server.shutdown().await;
}
