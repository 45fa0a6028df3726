//! A tiny TCP proxy for fault injection: cut every live connection, refuse new ones.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub addr: String,
    blocked: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
}

impl Proxy {
    /// Listens on an ephemeral loopback port and forwards to `target`.
    pub async fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr").to_string();
        let blocked = Arc::new(AtomicBool::new(false));
        let (generation, gen_rx) = watch::channel(0u64);
        let target = target.to_string();
        let b = blocked.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if b.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let mut gen_rx = gen_rx.clone();
                gen_rx.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = gen_rx.changed() => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            blocked,
            generation,
        }
    }

    /// Drops every connection currently going through the proxy.
    pub fn cut(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// While blocked, new connections are accepted and closed at once.
    pub fn block(&self, yes: bool) {
        self.blocked.store(yes, Ordering::SeqCst);
    }
}
