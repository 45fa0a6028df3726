//! Herd benchmark: N contenders each take a lock once, with the predecessor-watching
//! [`Mutex`] and with the naive [`HerdLock`]; reports watch notifications delivered and
//! requests sent per acquisition.
//!
//! Run: `cargo run --release -p rzk-client --example herd -- 127.0.0.1:2181 [2,16,128]`
//! (without hosts: `RZK_TEST_HOSTS`, else an in-process rzk server, see
//! `rzk_testkit::server::hosts_or_start`). Expect Mutex to stay O(1) per acquisition and
//! HerdLock to grow with N.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rzk_client::recipes::{HerdLock, Mutex};
use rzk_client::{open_acl_unsafe, Client, CreateMode, Error};

#[derive(Clone, Copy, Debug)]
enum Kind {
    Mutex,
    HerdLock,
}

struct Outcome {
    notifications: u64,
    requests: u64,
    wall: Duration,
}

fn totals(clients: &[Client]) -> (u64, u64) {
    clients.iter().fold((0, 0), |(n, r), c| {
        let k = c.counters();
        (
            n + k.notifications.load(Ordering::Relaxed),
            r + k.requests_sent.load(Ordering::Relaxed),
        )
    })
}

async fn round(hosts: &str, kind: Kind, n: usize, path: &str) -> Result<Outcome, Error> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(Client::connect(hosts, Duration::from_secs(30)).await?);
    }
    let start = Arc::new(tokio::sync::Barrier::new(n));
    let (n0, r0) = totals(&clients);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in &clients {
        let (c, path, start) = (c.clone(), path.to_owned(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            match kind {
                Kind::Mutex => {
                    let m = Mutex::new(c, &path)?;
                    m.acquire().await?;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    m.release().await
                }
                Kind::HerdLock => {
                    let h = HerdLock::new(c, &path)?;
                    h.acquire().await?;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    h.release().await
                }
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| Error::Recipe(e.to_string()))??;
    }
    let wall = t0.elapsed();
    // Let trailing notifications (e.g. own-node deletions) arrive before counting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (n1, r1) = totals(&clients);
    for c in &clients {
        let _ = c.close().await;
    }
    Ok(Outcome {
        notifications: n1 - n0,
        requests: r1 - r0,
        wall,
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let hosts = args
        .next()
        .unwrap_or_else(rzk_testkit::server::hosts_or_start);
    let ns: Vec<usize> = args
        .next()
        .unwrap_or_else(|| "2,16,128".into())
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    let admin = Client::connect(&hosts, Duration::from_secs(30)).await?;
    let root = format!("/rzk-herd-{}", uuid::Uuid::new_v4().simple());
    admin
        .create(&root, b"", &open_acl_unsafe(), CreateMode::Persistent)
        .await?;
    println!(
        "{:<9} {:>5} {:>18} {:>14} {:>9}",
        "lock", "N", "notifications/acq", "requests/acq", "wall_ms"
    );
    for &n in &ns {
        for kind in [Kind::Mutex, Kind::HerdLock] {
            let path = format!("{root}/{kind:?}-{n}");
            let o = round(&hosts, kind, n, &path).await?;
            println!(
                "{:<9} {:>5} {:>18.2} {:>14.2} {:>9}",
                format!("{kind:?}"),
                n,
                o.notifications as f64 / n as f64,
                o.requests as f64 / n as f64,
                o.wall.as_millis()
            );
            println!(
                "RESULT lock={kind:?} n={n} notifications={} requests={} notifications_per_acq={:.2} requests_per_acq={:.2} wall_ms={}",
                o.notifications,
                o.requests,
                o.notifications as f64 / n as f64,
                o.requests as f64 / n as f64,
                o.wall.as_millis()
            );
        }
    }
    // Best-effort cleanup of the (now empty) lock parents.
    for c in admin.get_children(&root).await.unwrap_or_default() {
        let _ = admin.delete(&format!("{root}/{c}"), None).await;
    }
    let _ = admin.delete(&root, None).await;
    admin.close().await
}
