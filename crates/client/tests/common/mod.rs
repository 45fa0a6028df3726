//! Shared helpers for integration tests: the server address (`RZK_TEST_HOSTS`, or an
//! in-process rzk server started once per test binary when it is not set — a plain
//! `cargo test` never skips these tests), unique test roots.
#![allow(dead_code)]

pub mod proxy;

use std::time::Duration;

use rzk_client::{open_acl_unsafe, Client, CreateMode};

/// `RZK_TEST_HOSTS`, e.g. `127.0.0.1:2181` (any server: rzk or Apache ZooKeeper); when
/// unset, an in-process rzk server configured as `scripts/test.sh` configures its own.
pub fn hosts() -> Option<String> {
    match std::env::var("RZK_TEST_HOSTS")
        .ok()
        .filter(|s| !s.is_empty())
    {
        Some(h) => Some(h),
        None => Some(local_server()),
    }
}

/// Starts (once per test binary) an rzk server on 127.0.0.1:<free port> in a fresh data
/// directory, on a runtime of its own that outlives every test's runtime.
fn local_server() -> String {
    static LOCAL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LOCAL
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("server runtime");
                rt.block_on(async move {
                    let dir = std::env::temp_dir().join(format!(
                        "rzk-client-tests-{}-{}",
                        std::process::id(),
                        uuid::Uuid::new_v4().simple()
                    ));
                    let cfg = rzk_server::config::Config {
                        client_port: 0,
                        client_port_address: Some([127, 0, 0, 1].into()),
                        data_dir: dir.clone(),
                        data_log_dir: dir,
                        max_client_cnxns: 0,
                        extended_types_enabled: true,
                        container_check_interval_ms: 1000,
                        four_letter_whitelist: rzk_server::config::FourLetterWhitelist::All,
                        ..rzk_server::config::Config::default()
                    };
                    let server = rzk_server::node::Server::start(cfg)
                        .await
                        .expect("in-process rzk server starts");
                    let _ = tx.send(server.local_addr().to_string());
                    std::future::pending::<()>().await;
                });
            });
            rx.recv().expect("in-process rzk server address")
        })
        .clone()
}

/// The server to test against (see [`hosts`]); never skips.
#[macro_export]
macro_rules! require_server {
    () => {
        common::hosts().expect("a server to test against")
    };
}

pub async fn connect(hosts: &str) -> Client {
    Client::connect(hosts, Duration::from_secs(10))
        .await
        .expect("connect to RZK_TEST_HOSTS")
}

/// A fresh persistent node `/rzk-test-<name>-<uuid>` for one test.
pub async fn test_root(zk: &Client, name: &str) -> String {
    let root = format!("/rzk-test-{name}-{}", uuid::Uuid::new_v4().simple());
    zk.create(&root, b"", &open_acl_unsafe(), CreateMode::Persistent)
        .await
        .expect("create test root");
    root
}

/// Deletes a subtree (best effort).
pub async fn delete_all(zk: &Client, path: &str) {
    let mut stack = vec![path.to_string()];
    let mut order = Vec::new();
    while let Some(p) = stack.pop() {
        if let Ok(children) = zk.get_children(&p).await {
            for c in children {
                stack.push(format!("{p}/{c}"));
            }
        }
        order.push(p);
    }
    for p in order.into_iter().rev() {
        let _ = zk.delete(&p, None).await;
    }
}
