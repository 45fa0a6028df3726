//! Shared helpers for the client's integration tests: a connection, unique test roots,
//! subtree removal, and a fault-injecting TCP proxy. The server to test against comes from
//! `rzk_testkit::server::hosts_or_start` (`RZK_TEST_HOSTS`, or an in-process rzk server
//! started once per test binary: a plain `cargo test` never skips these tests).
#![allow(dead_code)]

pub mod proxy;

use std::time::Duration;

use rzk_client::{open_acl_unsafe, Client, CreateMode};

/// Connects to `hosts` (10 s session timeout); panics if it cannot.
pub async fn connect(hosts: &str) -> Client {
    Client::connect(hosts, Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("connect to {hosts}: {e}"))
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
