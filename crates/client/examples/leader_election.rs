//! Leader election example: participants join a [`LeaderLatch`] (Curator's `LeaderLatch`
//! node layout); the leader works for a while and steps down, the next one takes over.
//!
//! ```text
//! rzk server --port 2181 &            # or any ZooKeeper 3.5+
//! cargo run -p rzk-client --example leader_election -- 127.0.0.1:2181 [participants]
//! ```
//! Prints the participants in line order and each change of leader. Kill the process
//! while one leads and start it again: the latch nodes of the old sessions vanish when
//! those sessions end.

use std::time::Duration;

use rzk_client::recipes::LeaderLatch;
use rzk_client::Client;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const ELECTION_PATH: &str = "/examples/leader";
/// How long each leader keeps the leadership before stepping down.
const TERM: Duration = Duration::from_millis(300);
/// Longest wait for leadership before the example gives up.
const MAX_WAIT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let hosts = args.next().unwrap_or_else(|| "127.0.0.1:2181".into());
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3);
    let mut latches = Vec::new();
    for i in 0..n {
        let zk = Client::connect(&hosts, Duration::from_secs(10)).await?;
        latches.push((
            zk.clone(),
            LeaderLatch::start(zk, ELECTION_PATH, &format!("participant-{i}")).await?,
        ));
    }
    println!("line: {:?}", latches[0].1.participants().await?);
    let mut tasks = Vec::new();
    for (i, (zk, latch)) in latches.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            if !latch.await_leadership(MAX_WAIT).await? {
                return Err(rzk_client::Error::Timeout);
            }
            println!("participant-{i} is the leader");
            tokio::time::sleep(TERM).await;
            println!("participant-{i} steps down");
            latch.close().await?;
            zk.close().await
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}
