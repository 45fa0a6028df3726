//! A tiny TCP proxy for fault injection: cut every live connection, refuse new ones,
//! keep connections open but drop what the server sends (a server gone silent), or drop
//! everything both ways (a network partition: no reset, no close), or go silent once the
//! client sends a chosen request (its answer is lost).
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub addr: String,
    blocked: Arc<AtomicBool>,
    muted: Arc<AtomicBool>,
    frozen: Arc<AtomicBool>,
    trigger: Trigger,
    generation: watch::Sender<u64>,
}

/// A one-shot test of what the client sends: when it matches, the proxy mutes.
type Trigger = Arc<Mutex<Option<Box<dyn Fn(&[u8]) -> bool + Send>>>>;

/// Copies `from` to `to` until either side closes, dropping what arrives while
/// `drop_it()` says so.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    drop_it: impl Fn() -> bool,
    inspect: impl Fn(&[u8]),
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        inspect(&buf[..n]);
        if !drop_it() && to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Proxy {
    /// Listens on an ephemeral loopback port and forwards to `target`.
    pub async fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr").to_string();
        let blocked = Arc::new(AtomicBool::new(false));
        let muted = Arc::new(AtomicBool::new(false));
        let frozen = Arc::new(AtomicBool::new(false));
        let trigger: Trigger = Arc::default();
        let (generation, gen_rx) = watch::channel(0u64);
        let target = target.to_string();
        let b = blocked.clone();
        let m = muted.clone();
        let f = frozen.clone();
        let t = trigger.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if b.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let mut gen_rx = gen_rx.clone();
                gen_rx.mark_unchanged();
                let muted = m.clone();
                let frozen = f.clone();
                let trigger = t.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (from_client, to_client) = inbound.into_split();
                    let (from_server, to_server) = outbound.into_split();
                    let up = pump(
                        from_client,
                        to_server,
                        || frozen.load(Ordering::SeqCst),
                        |bytes| {
                            let mut t = trigger.lock().unwrap_or_else(|e| e.into_inner());
                            if t.as_ref().is_some_and(|f| f(bytes)) {
                                *t = None;
                                muted.store(true, Ordering::SeqCst);
                            }
                        },
                    );
                    let down = pump(
                        from_server,
                        to_client,
                        || muted.load(Ordering::SeqCst) || frozen.load(Ordering::SeqCst),
                        |_| {},
                    );
                    // Either side closing (or a cut) ends both directions.
                    tokio::select! {
                        () = up => {}
                        () = down => {}
                        _ = gen_rx.changed() => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            blocked,
            muted,
            frozen,
            trigger,
            generation,
        }
    }

    /// Mutes (as [`Proxy::mute`]) as soon as the client sends bytes for which `matches` is
    /// true (one read's worth: with one request in flight, one request), before the
    /// server can answer them: that request's answer is lost. Once.
    pub fn mute_on(&self, matches: impl Fn(&[u8]) -> bool + Send + 'static) {
        *self.trigger.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(matches));
    }

    /// Drops every connection currently going through the proxy.
    pub fn cut(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// While blocked, new connections are accepted and closed at once.
    pub fn block(&self, yes: bool) {
        self.blocked.store(yes, Ordering::SeqCst);
    }

    /// While muted, live and new connections stay open and what the client sends
    /// still reaches the server, but nothing the server sends reaches the client.
    pub fn mute(&self, yes: bool) {
        self.muted.store(yes, Ordering::SeqCst);
    }

    /// While frozen, live connections stay open but nothing passes either way (a
    /// partition: neither side sees a reset or a close).
    pub fn freeze(&self, yes: bool) {
        self.frozen.store(yes, Ordering::SeqCst);
    }
}
