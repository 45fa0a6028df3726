//! Session failover probe, driven line by line on stdin by tests/ensemble/ensemble_test.py.
//!
//! ```text
//! cargo run -p rzk-client --example session_failover -- HOSTS SESSION_TIMEOUT_MS BASE
//! ```
//! Connects one session to `HOSTS` (an ensemble's connect string) and prints
//! `CONNECTED <host> <session id hex>`. Every later session state change is printed as
//! `STATE <state> <host> <session id hex>` and every watch event as
//! `EVENT <type> <path>`. Commands (one per line on stdin):
//! * `setup` — creates `BASE`, the ephemeral `BASE/eph`, and leaves three one-shot
//!   watches: data on `BASE/data`, exists on `BASE/later` (absent), children of
//!   `BASE/kids`; prints `READY`;
//! * `check` — a round trip on the session (setData on the ephemeral); prints
//!   `OK <owner of BASE/eph, hex>` or `ERR <error>`;
//! * `close` — closes the session and exits; end of input exits without closing.
//!
//! The probe exists because the one-shot watches of a session moved to another server
//! survive only if the client re-registers them (setWatches), which kazoo does not do.

use std::time::Duration;

use rzk_client::{open_acl_unsafe, Client, CreateMode, Error, OneshotWatch};
use tokio::io::{AsyncBufReadExt, BufReader};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn report(label: &'static str, w: OneshotWatch) {
    tokio::spawn(async move {
        let e = w.await;
        println!("EVENT {:?} {} ({label})", e.event_type, e.path);
    });
}

async fn ensure(zk: &Client, path: &str, mode: CreateMode) -> Result<(), Error> {
    match zk.create(path, b"", &open_acl_unsafe(), mode).await {
        Ok(_) | Err(Error::NodeExists) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn setup(zk: &Client, base: &str) -> Result<(), Error> {
    ensure(zk, base, CreateMode::Persistent).await?;
    ensure(zk, &format!("{base}/data"), CreateMode::Persistent).await?;
    ensure(zk, &format!("{base}/kids"), CreateMode::Persistent).await?;
    zk.create(
        &format!("{base}/eph"),
        b"mine",
        &open_acl_unsafe(),
        CreateMode::Ephemeral,
    )
    .await?;
    let (_, _, w) = zk.get_data_w(&format!("{base}/data")).await?;
    report("data", w);
    let (stat, w) = zk.exists_w(&format!("{base}/later")).await?;
    if stat.is_some() {
        return Err(Error::NodeExists);
    }
    report("exists", w);
    let (_, w) = zk.get_children_w(&format!("{base}/kids")).await?;
    report("child", w);
    Ok(())
}

async fn check(zk: &Client, base: &str) -> Result<i64, Error> {
    let path = format!("{base}/eph");
    zk.set_data(&path, b"still-mine", None).await?;
    let (_, stat) = zk.get_data(&path).await?;
    Ok(stat.ephemeral_owner)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let hosts = args.next().unwrap_or_else(|| "127.0.0.1:2181".into());
    let timeout_ms: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(6000);
    let base = args.next().unwrap_or_else(|| "/failover".into());
    let zk = Client::connect(&hosts, Duration::from_millis(timeout_ms)).await?;
    println!("CONNECTED {} {:x}", zk.connected_host(), zk.session_id());
    let mut states = zk.state_watcher();
    let watcher = zk.clone();
    tokio::spawn(async move {
        while states.changed().await.is_ok() {
            let s = *states.borrow_and_update();
            println!(
                "STATE {s:?} {} {:x}",
                watcher.connected_host(),
                watcher.session_id()
            );
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        match line.trim() {
            "setup" => match setup(&zk, &base).await {
                Ok(()) => println!("READY"),
                Err(e) => println!("ERR {e}"),
            },
            "check" => match check(&zk, &base).await {
                Ok(owner) => println!("OK {owner:x}"),
                Err(e) => println!("ERR {e}"),
            },
            "close" => {
                zk.close().await?;
                println!("CLOSED");
                return Ok(());
            }
            other => println!("ERR unknown command {other:?}"),
        }
    }
    Ok(())
}
