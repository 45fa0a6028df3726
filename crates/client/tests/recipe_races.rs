//! Recipes when the session moves to a read-only server, and after a lost create answer
//! on a server that lags behind (found by a break-it review in session 55). `Switch`, a
//! TCP front of the server at `RZK_TEST_HOSTS` (first host, or an in-process rzk
//! server), forwards, refuses connections, plays a read-only server (`fake_read_only`:
//! read-only sessions, reads from a fixed listing, NOTREADONLY for writes), or answers
//! the first listing of one path from another until a `sync` (a lagging follower).
//!
//! Run: `cargo test -p rzk-client --test recipe_races`

mod common;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::first_host;
use rzk_client::recipes::*;
use rzk_client::*;
use rzk_proto::records::{ConnectRequest, ConnectResponse, ReplyHeader, RequestHeader};
use rzk_proto::Jute;
use rzk_testkit::server::hosts_or_start;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

/// A listener that forwards to the real server, or (when `ro` is set) plays a read-only
/// server: it accepts any session read-only, answers pings and setWatches, answers
/// exists with a stat, and everything else with NOTREADONLY.
const FORWARD: u8 = 0;
const READ_ONLY: u8 = 1;
const REFUSE: u8 = 2;
/// Forwards, but answers the first getChildren naming `stale.0` from `stale.1` (a
/// server that has not applied the latest writes yet: a lagging follower).
const STALE: u8 = 3;

struct Switch {
    addr: String,
    mode: Arc<AtomicU8>,
    gen: watch::Sender<u64>,
    snapshot: Arc<std::sync::Mutex<Vec<String>>>,
    /// Paths (same length) for STALE mode.
    stale: Arc<std::sync::Mutex<(String, String)>>,
    /// Mutes the server's answers once the client sends a create naming `-lock-`.
    mute_create: Arc<AtomicU8>,
}

/// Forwards a connection frame by frame upward (rewriting / muting as asked).
async fn forward(
    inbound: TcpStream,
    real: String,
    rewrite: Option<(String, String)>,
    mute_create: Arc<AtomicU8>,
) {
    let Ok(out) = TcpStream::connect(&real).await else {
        return;
    };
    let (mut cr, mut cw) = inbound.into_split();
    let (mut sr, mut sw) = out.into_split();
    let muted = Arc::new(AtomicU8::new(0));
    let m2 = muted.clone();
    let down = async move {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if m2.load(Ordering::SeqCst) == 0 && cw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let up = async move {
        let mut rewrite = rewrite;
        let mut first = true;
        loop {
            let mut len = [0u8; 4];
            if cr.read_exact(&mut len).await.is_err() {
                return;
            }
            let mut b = vec![0u8; i32::from_be_bytes(len) as usize];
            if cr.read_exact(&mut b).await.is_err() {
                return;
            }
            if !first && b.len() >= 8 {
                let op = i32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                if (op == 1 || op == 15)
                    && common::contains(&b, b"-lock-")
                    && mute_create.swap(0, Ordering::SeqCst) == 1
                {
                    muted.store(1, Ordering::SeqCst);
                }
                if op == 9 {
                    rewrite = None; // a sync: caught up with the leader
                }
                if op == 8 {
                    if let Some((from, to)) = rewrite.as_ref() {
                        if let Some(i) = b.windows(from.len()).position(|w| w == from.as_bytes()) {
                            b[i..i + to.len()].copy_from_slice(to.as_bytes());
                            rewrite = None;
                        }
                    }
                }
            }
            first = false;
            let mut out = len.to_vec();
            out.extend_from_slice(&b);
            if sw.write_all(&out).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

async fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.ok()?;
    let mut b = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut b).await.ok()?;
    Some(b)
}

async fn write_frame(s: &mut TcpStream, body: &[u8]) -> Option<()> {
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    s.write_all(&out).await.ok()
}

async fn fake_read_only(mut s: TcpStream, snapshot: Vec<String>) {
    let Some(f) = read_frame(&mut s).await else {
        return;
    };
    let req = ConnectRequest::from_bytes(&f).expect("connect request");
    let resp = ConnectResponse {
        protocol_version: 0,
        timeout_ms: req.timeout_ms,
        session_id: req.session_id,
        passwd: req.passwd.clone(),
        read_only: Some(true),
    };
    if write_frame(&mut s, &resp.to_bytes()).await.is_none() {
        return;
    }
    while let Some(f) = read_frame(&mut s).await {
        let hdr = RequestHeader::from_bytes(&f[..8]).expect("request header");
        let (err, body): (i32, Vec<u8>) = match (hdr.xid, hdr.op) {
            (-2, _) | (-8, _) => (0, vec![]),
            (_, 3) => (0, vec![0u8; 68]), // exists: a stat
            (_, 4) => {
                // getData: empty data and a stat
                let mut b = 0i32.to_be_bytes().to_vec();
                b.extend_from_slice(&[0u8; 68]);
                (0, b)
            }
            (_, 8) => {
                // getChildren: the snapshot taken when the switch moved
                let mut b = (snapshot.len() as i32).to_be_bytes().to_vec();
                for c in &snapshot {
                    b.extend_from_slice(&(c.len() as i32).to_be_bytes());
                    b.extend_from_slice(c.as_bytes());
                }
                (0, b)
            }
            _ => (-119, vec![]), // NOTREADONLY
        };
        let mut out = ReplyHeader {
            xid: hdr.xid,
            zxid: 0,
            err,
        }
        .to_bytes();
        out.extend_from_slice(&body);
        if write_frame(&mut s, &out).await.is_none() {
            return;
        }
    }
}

impl Switch {
    async fn start(real: &str) -> Switch {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let mode = Arc::new(AtomicU8::new(FORWARD));
        let (gen, gen_rx) = watch::channel(0u64);
        let (r, real) = (mode.clone(), real.to_owned());
        let snapshot: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let snap = snapshot.clone();
        let stale: Arc<std::sync::Mutex<(String, String)>> = Arc::default();
        let mute_create = Arc::new(AtomicU8::new(0));
        let (st2, mc2) = (stale.clone(), mute_create.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = l.accept().await {
                let mut g = gen_rx.clone();
                g.mark_unchanged();
                let m = r.load(Ordering::SeqCst);
                if m == REFUSE {
                    drop(inbound);
                    continue;
                }
                let real = real.clone();
                let children = snap.lock().unwrap().clone();
                let rewrite = (m == STALE).then(|| st2.lock().unwrap().clone());
                let mc = mc2.clone();
                tokio::spawn(async move {
                    let work = async move {
                        if m == READ_ONLY {
                            fake_read_only(inbound, children).await;
                        } else {
                            forward(inbound, real, rewrite, mc).await;
                        }
                    };
                    tokio::select! {
                        () = work => {}
                        _ = g.changed() => {}
                    }
                });
            }
        });
        Switch {
            addr,
            mode,
            gen,
            snapshot,
            stale,
            mute_create,
        }
    }

    /// From now on new connections meet a read-only server; live ones are cut.
    fn to_read_only_with(&self, children: Vec<String>) {
        *self.snapshot.lock().unwrap() = children;
        self.to_read_only();
    }

    fn to_read_only(&self) {
        self.set(READ_ONLY);
    }

    /// Sets the mode for new connections and cuts the live ones.
    fn set(&self, m: u8) {
        self.mode.store(m, Ordering::SeqCst);
        self.gen.send_modify(|g| *g += 1);
    }
}

/// A client through `sw` that may connect to read-only servers.
async fn read_only_capable(sw: &Switch, session_timeout: Duration) -> Client {
    Client::builder(&sw.addr)
        .session_timeout(session_timeout)
        .can_be_read_only(true)
        .connect()
        .await
        .unwrap()
}

/// An ephemeral node `root/held` of `zk`'s session: what a holder's lock node stands for.
async fn held_node(zk: &Client, root: &str) -> String {
    zk.create(
        &format!("{root}/held"),
        b"",
        &open_acl_unsafe(),
        CreateMode::Ephemeral,
    )
    .await
    .unwrap()
}

/// Control: a monitor already running when the connection moves to a read-only server
/// sees Disconnected first and reports the loss half a session timeout later.
#[tokio::test]
async fn ro_control_monitor_running_before_the_move_reports_the_loss() {
    let hosts = hosts_or_start();
    let other = common::connect(&hosts).await;
    let root = common::test_root(&other, "rocontrol").await;
    let sw = Switch::start(&first_host(&hosts)).await;
    let zk = read_only_capable(&sw, Duration::from_millis(4000)).await;
    let node = held_node(&zk, &root).await;
    let rx = util::spawn_lost_monitor(zk.clone(), node);
    tokio::time::sleep(Duration::from_millis(300)).await;
    sw.to_read_only();
    common::wait_state(&zk, SessionState::ConnectedReadOnly, WAIT).await;
    let reason = timeout(WAIT, util::wait_lost(rx))
        .await
        .expect("loss reported");
    assert_eq!(reason, LostReason::DisconnectedTooLong);
    common::delete_all(&other, &root).await;
}

/// A loss monitor whose first run finds the session on a read-only server (the holder's
/// connection moved there between taking its node and the monitor's first poll) must
/// still report the loss: a read-only server is not the quorum, which expires the
/// session (here: for real, the real server expires it after 4 s).
#[tokio::test]
async fn ro_a_loss_monitor_started_on_a_read_only_server_reports_the_loss() {
    let hosts = hosts_or_start();
    let other = common::connect(&hosts).await;
    let root = common::test_root(&other, "romonitor").await;
    let sw = Switch::start(&first_host(&hosts)).await;
    let zk = read_only_capable(&sw, Duration::from_millis(4000)).await;
    let node = held_node(&zk, &root).await;
    sw.to_read_only();
    common::wait_state(&zk, SessionState::ConnectedReadOnly, WAIT).await;
    let rx = util::spawn_lost_monitor(zk.clone(), node.clone());
    let r = timeout(Duration::from_secs(12), util::wait_lost(rx)).await;
    // The real server has expired the session by now: the node is gone.
    let gone = other.exists(&node).await.unwrap().is_none();
    common::delete_all(&other, &root).await;
    assert!(
        r.is_ok(),
        "no loss reported 12 s after the move to a read-only server (node gone on the quorum: {gone})"
    );
}

/// A leader latch whose connection moves to a read-only server (its session then
/// expires on the quorum, and another participant takes over) must not go on showing
/// leadership: it drops it on Disconnected, then takes it again at once on
/// ConnectedReadOnly (the read-only server still lists its node first).
#[tokio::test]
async fn ro_a_latch_on_a_read_only_server_does_not_lead() {
    let hosts = hosts_or_start();
    let other = common::connect(&hosts).await;
    let root = common::test_root(&other, "rolatch").await;
    let path = format!("{root}/latch");
    let sw = Switch::start(&first_host(&hosts)).await;
    let zk = read_only_capable(&sw, Duration::from_millis(4000)).await;
    let a = LeaderLatch::start(zk.clone(), &path, "a").await.unwrap();
    assert!(a.await_leadership(WAIT).await.unwrap());
    let b = LeaderLatch::start(other.clone(), &path, "b").await.unwrap();
    let children = other.get_children(&path).await.unwrap();
    sw.to_read_only_with(children);
    common::wait_state(&zk, SessionState::ConnectedReadOnly, WAIT).await;
    // The quorum expires a's session (4 s) and b takes over.
    let b_leads = b.await_leadership(Duration::from_secs(15)).await.unwrap();
    let a_shows = *a.leadership_watcher().borrow();
    let a_awaits = a.await_leadership(Duration::from_millis(100)).await;
    drop(b);
    common::delete_all(&other, &root).await;
    assert!(b_leads, "b never took over");
    assert!(
        !a_shows,
        "a still shows leadership on the read-only server while b leads (await_leadership: {a_awaits:?})"
    );
}

/// After a loss reported for a long disconnection (the session still alive), the loss
/// monitor deletes the lock node once reconnected, so it does not block every other
/// contender. If the first reconnect is to a read-only server, the delete fails with
/// NOTREADONLY and is never tried again: the node stays while the session lives.
#[tokio::test]
async fn ro_a_lost_node_is_deleted_even_if_the_first_reconnect_is_read_only() {
    let hosts = hosts_or_start();
    let other = common::connect(&hosts).await;
    let root = common::test_root(&other, "rodelete").await;
    let sw = Switch::start(&first_host(&hosts)).await;
    let zk = read_only_capable(&sw, Duration::from_secs(20)).await;
    assert_eq!(
        zk.session_timeout(),
        Duration::from_secs(20),
        "negotiated timeout"
    );
    let node = held_node(&zk, &root).await;
    let rx = util::spawn_lost_monitor(zk.clone(), node.clone());
    zk.exists("/").await.unwrap(); // heard_at = now
    sw.set(REFUSE);
    let reason = timeout(WAIT, util::wait_lost(rx))
        .await
        .expect("loss reported");
    assert_eq!(reason, LostReason::DisconnectedTooLong);
    // ~10 s after the cut: the first reconnect meets a read-only server...
    sw.to_read_only_with(vec![]);
    common::wait_state(&zk, SessionState::ConnectedReadOnly, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // ...then the quorum again, well within the session timeout (session alive).
    sw.set(FORWARD);
    common::wait_state(&zk, SessionState::Connected, WAIT).await;
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut exists = true;
    while tokio::time::Instant::now() < until {
        exists = other.exists(&node).await.unwrap().is_some();
        if !exists {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let alive = zk.exists("/").await.is_ok();
    zk.close().await.ok();
    common::delete_all(&other, &root).await;
    assert!(
        !exists,
        "the lost lock node is still there 5 s after the session reconnected to the quorum (session alive: {alive})"
    );
}

/// A protected create whose answer was lost is looked for after the reconnect. If the
/// server reconnected to has not applied that create yet (a lagging follower: it
/// accepts the session because the client never saw the create's zxid), the lookup
/// misses it and a second node is created; the first, ours too, then sits ahead of it
/// in the queue for the rest of the session, and the lock is never acquired although
/// nobody else holds it. (The `AbandonGuard` drop path syncs before looking; the
/// create's own recovery does not.)
#[tokio::test]
async fn stale_protected_lookup_after_a_lost_create_answer_leaves_a_node_ahead_of_us() {
    let hosts = hosts_or_start();
    let other = common::connect(&hosts).await;
    let root = common::test_root(&other, "stale").await;
    let lock = format!("{root}/mx");
    let twin = format!("{root}/mY"); // what the lagging server shows for `lock`
    other
        .create(&lock, b"", &open_acl_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    other
        .create(&twin, b"", &open_acl_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    let sw = Switch::start(&first_host(&hosts)).await;
    let zk = Client::builder(&sw.addr)
        .session_timeout(Duration::from_millis(3000))
        .connect()
        .await
        .unwrap();
    *sw.stale.lock().unwrap() = (lock.clone(), twin.clone());
    sw.mode.store(STALE, Ordering::SeqCst); // for the next connection only
    sw.mute_create.store(1, Ordering::SeqCst);
    let m = Mutex::new(zk.clone(), &lock).unwrap();
    let got = m.try_acquire(Duration::from_secs(8)).await;
    let nodes = other.get_children(&lock).await.unwrap();
    if matches!(got, Ok(true)) {
        m.release().await.ok();
    }
    zk.close().await.ok();
    common::delete_all(&other, &root).await;
    assert!(
        matches!(got, Ok(true)) && nodes.len() == 1,
        "acquire: {got:?}; lock nodes: {nodes:?}"
    );
}

/// Recipes count a read-only server as not connected (`recipes` module docs), so an
/// acquire begun there, or retried after a reconnect that landed there, waits for a
/// read-write server instead of failing with NOTREADONLY (it failed at once before
/// session 56; Curator's recipes fail with `NotReadOnlyException`). Once the quorum is
/// back the lock is taken, with exactly one node.
#[tokio::test]
async fn ro_an_acquire_on_a_read_only_server_waits_for_read_write() {
    let hosts = hosts_or_start();
    let other = common::connect(&hosts).await;
    let root = common::test_root(&other, "roacquire").await;
    let lock = format!("{root}/mx");
    let sw = Switch::start(&first_host(&hosts)).await;
    let zk = read_only_capable(&sw, Duration::from_secs(10)).await;
    sw.to_read_only_with(vec![]);
    common::wait_state(&zk, SessionState::ConnectedReadOnly, WAIT).await;
    let m = Arc::new(Mutex::new(zk.clone(), &lock).unwrap());
    let m2 = m.clone();
    let acquire = tokio::spawn(async move { m2.try_acquire(Duration::from_secs(15)).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let early = acquire.is_finished();
    sw.set(FORWARD);
    let got = timeout(WAIT, acquire)
        .await
        .expect("acquire ended")
        .unwrap();
    let nodes = other.get_children(&lock).await.unwrap_or_default();
    if matches!(got, Ok(true)) {
        m.release().await.ok();
    }
    zk.close().await.ok();
    common::delete_all(&other, &root).await;
    assert!(
        !early && matches!(got, Ok(true)) && nodes.len() == 1,
        "ended on the read-only server: {early}; acquire: {got:?}; lock nodes: {nodes:?}"
    );
}

/// The node of a lost lock whose delete is first refused by a read-only server is
/// deleted by `delete_guaranteed` itself once read-write again (not only by the loss
/// monitor's own retry).
#[tokio::test]
async fn ro_a_guaranteed_delete_refused_read_only_is_done_once_read_write() {
    let hosts = hosts_or_start();
    let other = common::connect(&hosts).await;
    let root = common::test_root(&other, "rogdelete").await;
    let sw = Switch::start(&first_host(&hosts)).await;
    let zk = read_only_capable(&sw, Duration::from_secs(10)).await;
    let node = held_node(&zk, &root).await;
    sw.to_read_only_with(vec![]);
    common::wait_state(&zk, SessionState::ConnectedReadOnly, WAIT).await;
    let (zk2, n2) = (zk.clone(), node.clone());
    let del = tokio::spawn(async move { util::delete_guaranteed(&zk2, &n2).await });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let early = del.is_finished();
    sw.set(FORWARD);
    let r = timeout(WAIT, del).await.expect("delete ended").unwrap();
    let left = other.exists(&node).await.unwrap().is_some();
    zk.close().await.ok();
    common::delete_all(&other, &root).await;
    assert!(
        !early && r.is_ok() && !left,
        "ended on the read-only server: {early}; delete: {r:?}; node left: {left}"
    );
}

/// `HerdLock` deletes its node when its wait fails (here: the parent's ACL lets it
/// create and delete but not list, so the listing answers NOAUTH); before session 56
/// the node stayed in every later waiter's way while the session lived.
#[tokio::test]
async fn herd_lock_deletes_its_node_when_its_listing_fails() {
    let hosts = hosts_or_start();
    let other = common::connect(&hosts).await;
    let root = common::test_root(&other, "herdacl").await;
    let path = format!("{root}/herd");
    let no_read = vec![Acl::new(
        perms::CREATE | perms::DELETE | perms::ADMIN,
        "world",
        "anyone",
    )];
    other
        .create(&path, b"", &no_read, CreateMode::Persistent)
        .await
        .unwrap();
    let zk = common::connect(&hosts).await;
    let h = HerdLock::new(zk.clone(), &path).unwrap();
    let got = timeout(WAIT, h.acquire()).await.expect("acquire ended");
    other
        .set_acl(&path, &open_acl_unsafe(), None)
        .await
        .unwrap();
    let left = other.get_children(&path).await.unwrap();
    zk.close().await.ok();
    common::delete_all(&other, &root).await;
    assert!(
        matches!(got, Err(Error::NoAuth)) && left.is_empty(),
        "acquire: {got:?}; nodes left: {left:?}"
    );
}
