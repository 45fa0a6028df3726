//! A connection whose client went silent without closing it is closed once it has been
//! idle for its session's timeout, even while the session lives on elsewhere.
//!
//! A client cut off from a server without a FIN or RST (a partition, a NAT that forgot
//! the connection) re-attaches its session on another server and goes on there. The
//! first server never reads from that connection again. ZooKeeper's NIO connection
//! factory closes it after the session timeout (its connection expiry queue); rzk
//! judged idleness only when the connection next read, so it kept the connection, with
//! its watches, registry entry and per-IP slot, until the session ended: one zombie per
//! such move, for as long as the session lived (a code review, session 52).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::net::SocketAddr;

use rzk_proto::records::{ConnectRequest, ExistsRequest, GetDataRequest, RequestHeader};
use rzk_proto::Jute;
use rzk_proto::OpCode;
use rzk_testkit::pki::Pki;
use rzk_testkit::raw::{frame, request_frame, RawClient};
use rzk_testkit::server::{TestEnsemble, TestServer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT_MS: i32 = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_after_its_session_timeout_while_the_session_lives_elsewhere()
{
    let e = TestEnsemble::start(3);
    let leader = e.wait_serving();
    let followers: Vec<u64> = e.ids().into_iter().filter(|&id| id != leader).collect();
    // Before the connection's last I/O (its handshake): the close must come a whole
    // session timeout after that.
    let start = Instant::now();
    let mut old = RawClient::connect(e.member(followers[0]).addr(), TIMEOUT_MS).await;
    let (session, passwd) = (old.session_id(), old.passwd());
    let mut moved =
        match RawClient::resume(e.member(followers[1]).addr(), TIMEOUT_MS, session, passwd).await {
            Ok(c) => c,
            Err((_, answer)) => panic!("the re-attach was refused: {answer:?}"),
        };
    let timeout = Duration::from_millis(u64::try_from(moved.timeout_ms()).unwrap_or(1_000));

    // The session lives on at the second follower, pinged every third of its timeout,
    // while the first connection stays open and silent: no byte, no FIN.
    let stop = Arc::new(AtomicBool::new(false));
    let pinger = {
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                moved.ping().await;
                tokio::time::sleep(timeout / 3).await;
            }
            moved
        })
    };
    let mut closed = false;
    // Each wait is up to 5 s (`is_closed`): 15 s in all, well past the timeout.
    for _ in 0..3 {
        if old.is_closed().await {
            closed = true;
            break;
        }
    }
    let waited = start.elapsed();
    assert!(
        closed,
        "the silent connection of session 0x{session:x} was still open {waited:?} after \
         its handshake (timeout {timeout:?}; the session re-attached elsewhere)"
    );
    assert!(
        waited >= timeout,
        "closed after {waited:?}, before the session timeout {timeout:?}"
    );

    // The session itself is untouched: it goes on where it moved.
    stop.store(true, Ordering::Relaxed);
    let mut moved = pinger.await.expect("the pinger task ends");
    assert!(moved.exists("/", false).await.is_ok());
    let _ = moved.close_session().await;
}

/// A TCP connection to `addr` with a 4 KiB receive buffer, so that large replies wait
/// for the client to read them.
async fn small_buffer_socket(addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect(addr).await.expect("connect")
}

/// A raw session over [`small_buffer_socket`]: the stream after the handshake.
async fn small_buffer_session(addr: SocketAddr, timeout_ms: i32) -> TcpStream {
    let mut s = small_buffer_socket(addr).await;
    handshake(&mut s, timeout_ms).await;
    s
}

/// A raw session over TLS on [`small_buffer_socket`] (the server's certificate checked
/// against `pki`'s CA): the stream after the handshake.
async fn small_buffer_tls_session(
    addr: SocketAddr,
    pki: &Pki,
    timeout_ms: i32,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let settings = rzk_server::config::Config::from_properties(&format!(
        "dataDir=/tmp/rzk-unused\nssl.trustStore.location={}\n",
        pki.path("ca.pem").display()
    ))
    .expect("a config");
    let client =
        rzk_server::tls::TlsSettings::from_config(&settings, rzk_server::tls::CLIENT_PREFIX)
            .expect("TLS settings")
            .client_config()
            .expect("a client config");
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let mut s = tokio_rustls::TlsConnector::from(client)
        .connect(name, small_buffer_socket(addr).await)
        .await
        .expect("the TLS handshake");
    handshake(&mut s, timeout_ms).await;
    s
}

/// Sends a ConnectRequest for a new session and reads the response.
async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, timeout_ms: i32) {
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms,
        session_id: 0,
        passwd: bytes::Bytes::from_static(&[0; 16]),
        read_only: Some(false),
    };
    s.write_all(&frame(&req.to_bytes()))
        .await
        .expect("ConnectRequest");
    s.flush().await.expect("ConnectRequest sent");
    let n = s.read_i32().await.expect("ConnectResponse length");
    let mut resp = vec![0u8; usize::try_from(n).expect("a length")];
    s.read_exact(&mut resp).await.expect("ConnectResponse");
}

/// getData (`exists`: false) or exists of `path` without a watch, as a frame.
fn path_request(xid: i32, get_data: bool, path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let path = path.to_owned();
    if get_data {
        let body = GetDataRequest { path, watch: false };
        request_frame(&mut out, xid, OpCode::GetData.code(), &body);
    } else {
        let body = ExistsRequest { path, watch: false };
        request_frame(&mut out, xid, OpCode::Exists.code(), &body);
    }
    out
}

fn ping() -> Vec<u8> {
    frame(
        &RequestHeader {
            xid: -2,
            op: OpCode::Ping.code(),
        }
        .to_bytes(),
    )
}

const BIG: usize = 400 * 1024;
const READS: i32 = 8;

/// `server` once it holds `/big` (400 KiB).
async fn with_big_node(server: TestServer) -> TestServer {
    let mut setup = RawClient::connect(server.addr(), 10_000).await;
    let (err, _) = setup.create("/big", &vec![7u8; BIG], 0).await;
    assert_eq!(err, 0);
    let _ = setup.close_session().await;
    server
}

/// A standalone server with a TLS client port (beside its plaintext one), `pki`'s.
fn tls_server(pki: &Pki) -> TestServer {
    let server = pki.server(&Pki::secure_port());
    assert!(server.server().secure_addr().is_some(), "a secure port");
    server
}

/// Reads whole frames from `buf`, returning (xid, err) of each reply that is not a ping's.
fn take_replies(buf: &mut Vec<u8>) -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len =
            usize::try_from(i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]])).unwrap_or(0);
        if buf.len() < 4 + len {
            break;
        }
        let xid = i32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let err = i32::from_be_bytes([buf[16], buf[17], buf[18], buf[19]]);
        if xid > 0 {
            out.push((xid, err));
        }
        buf.drain(..4 + len);
    }
    out
}

/// A client that reads its large replies slowly, pinging meanwhile, keeps its session
/// and its connection, however many session timeouts the replies take: the bytes it
/// takes touch its session (ZooKeeper reads its pings meanwhile). rzk's task waited in
/// the write and read nothing, so the session expired (a break-it review, session 52:
/// kazoo behind a 300 KB/s link lost its session and its ephemeral node).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reading_large_replies_slowly_keeps_its_session() {
    let server = with_big_node(TestServer::start()).await;
    let s = small_buffer_session(server.addr(), TIMEOUT_MS).await;
    reads_large_replies_slowly(s).await;
}

/// The same over TLS: the socket under the TLS session is watched as a plaintext one is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_reading_large_replies_slowly_keeps_its_session() {
    let pki = Pki::new();
    let server = with_big_node(tls_server(&pki)).await;
    let secure = server.server().secure_addr().expect("a secure port");
    let s = small_buffer_tls_session(secure, &pki, TIMEOUT_MS).await;
    reads_large_replies_slowly(s).await;
}

/// Pipelines [`READS`] getData of `/big` on `s` (a session with [`TIMEOUT_MS`]), reads
/// the replies at ~160 KB/s while pinging every 300 ms, then checks the session still
/// answers.
async fn reads_large_replies_slowly<S>(s: S)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(s);
    let mut out = Vec::new();
    for xid in 1..=READS {
        out.extend_from_slice(&path_request(xid, true, "/big"));
    }
    wr.write_all(&out).await.expect("the requests");
    wr.flush().await.expect("the requests sent");
    // A ping every 300 ms, as a client pings every third of its timeout.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let pinger = tokio::spawn(async move {
        let mut stopped = stopped;
        loop {
            tokio::select! {
                _ = &mut stopped => return wr,
                () = tokio::time::sleep(Duration::from_millis(300)) => {
                    let _ = wr.write_all(&ping()).await;
                    let _ = wr.flush().await;
                }
            }
        }
    });
    // ~160 KB/s: 3.2 MB of replies take ~20 s, twenty session timeouts.
    let mut buf = Vec::new();
    let mut answered = Vec::new();
    let mut chunk = [0u8; 4096];
    let start = Instant::now();
    while answered.len() < READS as usize && start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let n = rd.read(&mut chunk).await.unwrap_or(0);
        assert!(
            n > 0,
            "the server closed the connection after {:?}, {} of {READS} replies read",
            start.elapsed(),
            answered.len()
        );
        buf.extend_from_slice(&chunk[..n]);
        answered.extend(take_replies(&mut buf));
    }
    let took = start.elapsed();
    assert_eq!(
        answered,
        (1..=READS).map(|x| (x, 0)).collect::<Vec<_>>(),
        "after {took:?}"
    );
    assert!(
        took > Duration::from_millis(3_000),
        "the replies took only {took:?}"
    );
    // The session lives and the connection serves.
    let _ = stop.send(());
    let mut wr = pinger.await.expect("the pinger");
    wr.write_all(&path_request(100, false, "/big"))
        .await
        .expect("exists");
    wr.flush().await.expect("exists sent");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = Vec::new();
    while last.is_empty() && Instant::now() < deadline {
        let n = tokio::time::timeout(Duration::from_secs(5), rd.read(&mut chunk))
            .await
            .expect("an answer")
            .unwrap_or(0);
        assert!(n > 0, "the connection was closed after the replies");
        buf.extend_from_slice(&chunk[..n]);
        last = take_replies(&mut buf);
    }
    assert_eq!(last, vec![(100, 0)], "the session's exists");
}

/// A client that reads nothing of its replies (it vanished, or stopped) is closed once
/// the server's writes have waited its session timeout, as ZooKeeper closes a
/// connection without I/O for that long. rzk's task waited in the write for good, with
/// the connection's registry entry, watches and `maxClientCnxns` slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_nothing_is_closed_after_its_session_timeout() {
    let server = with_big_node(TestServer::start()).await;
    let addr = server.addr();
    reads_nothing(&server, || small_buffer_session(addr, TIMEOUT_MS)).await;
}

/// The same over TLS: a TLS session's write waits on its socket as a plaintext one does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_that_reads_nothing_is_closed_after_its_session_timeout() {
    let pki = Pki::new();
    let server = with_big_node(tls_server(&pki)).await;
    let secure = server.server().secure_addr().expect("a secure port");
    reads_nothing(&server, || {
        small_buffer_tls_session(secure, &pki, TIMEOUT_MS)
    })
    .await;
}

/// Opens a session with `open` (of [`TIMEOUT_MS`]), pipelines [`READS`] getData of
/// `/big` and reads nothing: `server` (probed on its plaintext port) must close the
/// connection within 15 s, and not before the timeout.
async fn reads_nothing<S, F>(server: &TestServer, open: impl FnOnce() -> F)
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: std::future::Future<Output = S>,
{
    let alive = |addr| {
        let mntr = rzk_testkit::server::four_letter(addr, "mntr").expect("mntr");
        mntr.lines()
            .find_map(|l| l.strip_prefix("zk_num_alive_connections\t"))
            .and_then(|v| v.trim().parse::<u32>().ok())
            .expect("zk_num_alive_connections")
    };
    // Only the probe's own connection (the set-up session's is closing).
    let settled = Instant::now();
    while alive(server.addr()) > 1 {
        assert!(
            settled.elapsed() < Duration::from_secs(10),
            "connections stay open"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let base = 1;
    let mut s = open().await;
    assert_eq!(
        alive(server.addr()),
        base + 1,
        "the client's connection is counted"
    );
    let mut out = Vec::new();
    for xid in 1..=READS {
        out.extend_from_slice(&path_request(xid, true, "/big"));
    }
    s.write_all(&out).await.expect("the requests");
    s.flush().await.expect("the requests sent");
    let start = Instant::now();
    let mut gone = false;
    while start.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if alive(server.addr()) <= base {
            gone = true;
            break;
        }
    }
    assert!(
        gone,
        "the connection of a client that reads nothing was still open {:?} later",
        start.elapsed()
    );
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "closed after {:?}",
        start.elapsed()
    );
    drop(s);
}
