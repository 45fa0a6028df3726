//! Shared helpers for the client's integration tests: a connection, unique test roots,
//! subtree removal, and a fault-injecting TCP proxy. The server to test against comes from
//! `rzk_testkit::server::hosts_or_start` (`RZK_TEST_HOSTS`, or an in-process rzk server
//! started once per test binary: a plain `cargo test` never skips these tests).
#![allow(dead_code)]

pub mod proxy;

use std::time::Duration;

use rzk_client::{open_acl_unsafe, Client, CreateMode, SessionState};

use proxy::Proxy;

/// Connects to `hosts` (10 s session timeout); panics if it cannot.
pub async fn connect(hosts: &str) -> Client {
    Client::connect(hosts, Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("connect to {hosts}: {e}"))
}

/// Waits up to `within` until the session's state is `want`; panics naming the state it
/// is in otherwise.
pub async fn wait_state(zk: &Client, want: SessionState, within: Duration) {
    let mut rx = zk.state_watcher();
    tokio::time::timeout(within, rx.wait_for(|s| *s == want))
        .await
        .unwrap_or_else(|_| panic!("state never became {want:?}, is {:?}", zk.state()))
        .expect("state channel");
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

/// The first host of a connect string (the proxies front one server).
pub fn first_host(hosts: &str) -> String {
    hosts.split(',').next().unwrap_or(hosts).to_string()
}

/// Whether `needle` occurs in `haystack` (to pick request frames by path).
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A client connected through `proxy` with `session_timeout`; panics if it cannot.
pub async fn via_proxy(proxy: &Proxy, session_timeout: Duration) -> Client {
    Client::builder(&proxy.addr)
        .session_timeout(session_timeout)
        .connect()
        .await
        .expect("connect through proxy")
}

/// The children of `path`; none when it is gone (a reaped container) or unreadable.
pub async fn children(zk: &Client, path: &str) -> Vec<String> {
    zk.get_children(path).await.unwrap_or_default()
}

/// Waits up to 20 s until `path` has `n` children (background deletes of an abandoned
/// operation take a moment); returns them.
pub async fn settle(zk: &Client, path: &str, n: usize) -> Vec<String> {
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let c = children(zk, path).await;
        if c.len() == n || tokio::time::Instant::now() >= until {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `cond` every 20 ms until it holds (`true`) or `wait` passes (`false`).
pub async fn eventually<F, Fut>(wait: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + wait;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Cuts the connection of `proxies[i % n]` again and again until `stop` is set, pausing
/// `base_ms + (i % spread) * step_ms` before the i-th cut (flapping connections);
/// the task answers how many cuts it made.
pub fn spawn_cutter(
    proxies: Vec<std::sync::Arc<Proxy>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    base_ms: u64,
    spread: usize,
    step_ms: u64,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut i = 0usize;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(
                base_ms + (i % spread) as u64 * step_ms,
            ))
            .await;
            proxies[i % proxies.len()].cut();
            i += 1;
        }
        i
    })
}

/// Waits for every task (each within `within`, else panics naming `what`) and sums the
/// failures they counted.
pub async fn sum_failures(
    tasks: Vec<tokio::task::JoinHandle<usize>>,
    within: Duration,
    what: &str,
) -> usize {
    let mut failures = 0;
    for t in tasks {
        failures += tokio::time::timeout(within, t)
            .await
            .unwrap_or_else(|_| panic!("{what} finish"))
            .unwrap();
    }
    failures
}
