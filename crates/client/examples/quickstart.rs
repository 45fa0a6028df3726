//! Quick start: connect, create, watch, lock — the example of the crate's README.
//!
//! ```text
//! cargo run -p rzk-client --example quickstart -- 127.0.0.1:2181
//! ```
//! Works against rzk or any ZooKeeper 3.5+; leaves nothing behind.

use std::time::Duration;

use rzk_client::recipes::Mutex;
use rzk_client::{open_acl_unsafe, Client, CreateMode, EventType};

#[tokio::main]
async fn main() -> rzk_client::Result<()> {
    let hosts = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2181".into());
    // Connect (a chroot may follow the host list: "host1:2181,host2:2181/app").
    let zk = Client::connect(&hosts, Duration::from_secs(10)).await?;

    // Create a node, read it back and leave a one-shot watch on it.
    let path = zk
        .create(
            "/quickstart-",
            b"hello",
            &open_acl_unsafe(),
            CreateMode::EphemeralSequential,
        )
        .await?;
    let (data, stat, watch) = zk.get_data_w(&path).await?;
    println!(
        "{path} holds {:?} (version {})",
        String::from_utf8_lossy(&data),
        stat.version
    );

    // Change it: the watch is a future that resolves with the event.
    zk.set_data(&path, b"world", Some(stat.version)).await?;
    let event = watch.await;
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    println!("watch fired: {:?} on {}", event.event_type, event.path);

    // Take a Curator-compatible lock. The guard releases it when dropped, even if the
    // code in between returns early with `?`.
    let lock = Mutex::new(zk.clone(), "/quickstart-lock")?;
    {
        let guard = lock.lock().await?;
        println!("holding the lock with node {}", guard.node());
        // ... critical section ...
        guard.release().await?; // or just let it drop
    }

    zk.delete(&path, None).await?;
    // The lock's parent is a container node; the server may already have removed it.
    match zk.delete("/quickstart-lock", None).await {
        Ok(()) | Err(rzk_client::Error::NoNode) => {}
        Err(e) => return Err(e),
    }
    zk.close().await?;
    Ok(())
}
