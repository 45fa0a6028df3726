//! Queue example: a producer puts items into a [`DistributedQueue`] while consumers
//! (separate sessions) take and acknowledge them in order, at least once each.
//!
//! ```text
//! rzk server --port 2181 &            # or any ZooKeeper 3.5+
//! cargo run -p rzk-client --example queue -- 127.0.0.1:2181 [items] [consumers]
//! ```

use std::time::Duration;

use rzk_client::recipes::DistributedQueue;
use rzk_client::Client;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const QUEUE_PATH: &str = "/examples/queue";
/// The item that tells one consumer to stop.
const STOP: &[u8] = b"STOP";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let hosts = args.next().unwrap_or_else(|| "127.0.0.1:2181".into());
    let items: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10);
    let consumers: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2);
    let mut tasks = Vec::new();
    for c in 0..consumers {
        let zk = Client::connect(&hosts, Duration::from_secs(10)).await?;
        tasks.push(tokio::spawn(async move {
            let q = DistributedQueue::new(zk.clone(), QUEUE_PATH)?;
            let mut got = 0usize;
            loop {
                let it = q.take().await?;
                let stop = it.data == STOP;
                if !stop {
                    println!(
                        "consumer {c} got {:?} from {}",
                        String::from_utf8_lossy(&it.data),
                        it.path
                    );
                    got += 1;
                }
                it.ack().await?;
                if stop {
                    break;
                }
            }
            zk.close().await?;
            Ok::<usize, rzk_client::Error>(got)
        }));
    }
    let producer = Client::connect(&hosts, Duration::from_secs(10)).await?;
    let q = DistributedQueue::new(producer.clone(), QUEUE_PATH)?;
    for i in 0..items {
        let node = q.put(format!("item {i}").as_bytes()).await?;
        println!("put item {i} as {node}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Items are handed out in order, so each consumer sees its STOP after the real items.
    for _ in 0..consumers {
        q.put(STOP).await?;
    }
    let mut consumed = 0;
    for t in tasks {
        consumed += t.await??;
    }
    assert_eq!(consumed, items, "every item consumed exactly once here");
    println!(
        "done: {consumed} items consumed, queue empty: {}",
        q.is_empty().await?
    );
    producer.close().await?;
    Ok(())
}
