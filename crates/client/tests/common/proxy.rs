//! A tiny TCP proxy for fault injection: cut every live connection, refuse new ones,
//! keep connections open but drop what the server sends (a server gone silent), or drop
//! everything both ways (a network partition: no reset, no close), or go silent once the
//! client sends a chosen request (its answer is lost), or hold back what the server sends
//! once the client sends a chosen request (its answer is delayed until released).
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub addr: String,
    blocked: Arc<AtomicBool>,
    refused: Arc<AtomicU64>,
    muted: Arc<AtomicBool>,
    frozen: Arc<AtomicBool>,
    trigger: Trigger,
    hold: Arc<watch::Sender<bool>>,
    hold_trigger: Trigger,
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

/// Copies what the server sends to the client as [`pump`], keeping it back while `hold`
/// is true and writing what was kept, in order, once it turns false.
async fn pump_down(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    drop_it: impl Fn() -> bool,
    mut hold: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut kept = Vec::new();
    loop {
        tokio::select! {
            r = from.read(&mut buf) => {
                let n = match r {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if drop_it() {
                    continue;
                }
                if *hold.borrow() {
                    kept.extend_from_slice(&buf[..n]);
                    continue;
                }
                kept.extend_from_slice(&buf[..n]);
                if to.write_all(&kept).await.is_err() {
                    return;
                }
                kept.clear();
            }
            ch = hold.changed() => {
                if ch.is_err() {
                    return;
                }
                if !*hold.borrow_and_update() && !kept.is_empty() {
                    if to.write_all(&kept).await.is_err() {
                        return;
                    }
                    kept.clear();
                }
            }
        }
    }
}

impl Proxy {
    /// Listens on an ephemeral loopback port and forwards to `target`.
    pub async fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr").to_string();
        let blocked = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicU64::new(0));
        let muted = Arc::new(AtomicBool::new(false));
        let frozen = Arc::new(AtomicBool::new(false));
        let trigger: Trigger = Arc::default();
        let hold = Arc::new(watch::channel(false).0);
        let hold_trigger: Trigger = Arc::default();
        let (generation, gen_rx) = watch::channel(0u64);
        let target = target.to_string();
        let b = blocked.clone();
        let r = refused.clone();
        let m = muted.clone();
        let f = frozen.clone();
        let t = trigger.clone();
        let (h, ht) = (hold.clone(), hold_trigger.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if b.load(Ordering::SeqCst) {
                    drop(inbound);
                    r.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                let target = target.clone();
                let mut gen_rx = gen_rx.clone();
                gen_rx.mark_unchanged();
                let muted = m.clone();
                let frozen = f.clone();
                let trigger = t.clone();
                let hold = h.clone();
                let hold_trigger = ht.clone();
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
                            let mut t = hold_trigger.lock().unwrap_or_else(|e| e.into_inner());
                            if t.as_ref().is_some_and(|f| f(bytes)) {
                                *t = None;
                                hold.send_replace(true);
                            }
                        },
                    );
                    let down = pump_down(
                        from_server,
                        to_client,
                        || muted.load(Ordering::SeqCst) || frozen.load(Ordering::SeqCst),
                        hold.subscribe(),
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
            refused,
            muted,
            frozen,
            trigger,
            hold,
            hold_trigger,
            generation,
        }
    }

    /// Holds back what the server sends (kept, not dropped) as soon as the client sends
    /// bytes for which `matches` is true, before the server can answer them: that
    /// request's answer arrives only after [`Proxy::release`]. Once.
    pub fn hold_on(&self, matches: impl Fn(&[u8]) -> bool + Send + 'static) {
        *self.hold_trigger.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(matches));
    }

    /// Resolves once a [`Proxy::hold_on`] matched and the proxy holds back the server.
    pub async fn holding(&self) {
        let mut rx = self.hold.subscribe();
        let _ = rx.wait_for(|h| *h).await;
    }

    /// Lets what was held back through, in order, and stops holding.
    pub fn release(&self) {
        self.hold.send_replace(false);
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

    /// How many connections were refused while blocked.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    /// Resolves once more than `n` connections were refused.
    pub async fn refused_past(&self, n: u64) {
        while self.refused() <= n {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
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
