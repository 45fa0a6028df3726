//! Shared helpers for integration tests: server address from `RZK_TEST_HOSTS`, unique
//! test roots, and a skip macro so `cargo test` passes without a server.
#![allow(dead_code)]

pub mod proxy;

use std::time::Duration;

use rzk_client::{open_acl_unsafe, Client, CreateMode};

/// `RZK_TEST_HOSTS`, e.g. `127.0.0.1:2181` (None = skip).
pub fn hosts() -> Option<String> {
    std::env::var("RZK_TEST_HOSTS")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Returns early from a test when no server is configured.
#[macro_export]
macro_rules! require_server {
    () => {
        match common::hosts() {
            Some(h) => h,
            None => {
                eprintln!("skipping: set RZK_TEST_HOSTS=host:port to run against a server");
                return;
            }
        }
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
