//! Lock example: several workers in this process (each with its own session, as if
//! they were separate processes) take a Curator-compatible [`Mutex`] in turn.
//!
//! ```text
//! rzk server --port 2181 &            # or any ZooKeeper 3.5+
//! cargo run -p rzk-client --example lock -- 127.0.0.1:2181 [workers] [rounds]
//! ```
//! Every worker prints when it holds the lock; the lock path is `/examples/lock`, so a
//! Java process using Curator's `InterProcessMutex` on the same path takes turns with them.

use std::time::Duration;

use rzk_client::recipes::Mutex;
use rzk_client::Client;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const LOCK_PATH: &str = "/examples/lock";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let hosts = args.next().unwrap_or_else(|| "127.0.0.1:2181".into());
    let workers: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);
    let rounds: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let zk = Client::connect(&hosts, Duration::from_secs(10)).await?;
        tasks.push(tokio::spawn(async move {
            let lock = Mutex::new(zk.clone(), LOCK_PATH)?;
            for r in 0..rounds {
                // The guard releases the lock when dropped (also on an early return).
                let guard = lock.lock().await?;
                println!(
                    "worker {w} holds the lock (round {r}, node {})",
                    guard.node()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
                guard.release().await?;
            }
            zk.close().await?;
            Ok::<(), rzk_client::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    println!("done: {workers} workers x {rounds} rounds");
    Ok(())
}
