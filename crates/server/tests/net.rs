//! End-to-end tests of the network layer: an in-process server on an ephemeral port,
//! driven with raw protocol frames.

use bytes::Bytes;
use rzk_proto::records::*;
use rzk_proto::Jute;
use rzk_testkit::raw::{closed_within, frame, RawClient, RawSession, CLIENT_IO_TIMEOUT};
use rzk_testkit::server::{four_letter, TestServer};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const NONODE: i32 = -101;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_and_crud() {
    let mut server = TestServer::start();
    let addr = server.addr();
    let mut c = RawClient::connect(addr, 5000).await;
    assert_ne!(c.session_id(), 0);
    assert_eq!(c.timeout_ms(), 5000);
    assert_eq!(c.passwd().len(), 16);
    assert_eq!(
        &c.passwd()[..],
        &rzk_server::session::password(rzk_proto::SessionId(c.session_id()))
    );

    assert_eq!(c.create("/a", b"x", 0).await, (0, "/a".to_owned()));
    let (data, stat) = c.get_data("/a", false).await.unwrap();
    assert_eq!(&data[..], b"x");
    assert_eq!(stat.version, 0);
    let st = c.set_data("/a", b"yy", 0).await.unwrap();
    assert_eq!(st.version, 1);
    assert_eq!(st.data_length, 2);
    assert_eq!(c.set_data("/a", b"z", 0).await, Err(-103));
    assert_eq!(c.exists("/a", false).await.unwrap().version, 1);
    assert_eq!(c.create("/a/b", b"", 0).await.0, 0);
    assert_eq!(c.children("/a").await.unwrap(), vec!["b".to_owned()]);
    assert_eq!(c.delete("/a", -1).await, -111); // NOTEMPTY
    assert_eq!(c.delete("/a/b", -1).await, 0);
    assert_eq!(c.delete("/a", -1).await, 0);
    assert_eq!(c.get_data("/a", false).await, Err(NONODE));
    // Ping is answered in order with the last zxid.
    let h = c.ping().await;
    assert_eq!((h.xid, h.err), (-2, 0));
    assert!(h.zxid > 0);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let mut server = TestServer::start();
    let mut c = RawClient::connect(server.addr(), 5000).await;
    // Interleave writes and reads without waiting; replies must come back in xid order,
    // and each read must see the writes sent before it.
    let mut expected = Vec::new();
    for i in 0..50 {
        let path = format!("/n{i}");
        let create = CreateRequest {
            path: path.clone(),
            data: Bytes::from(format!("{i}")).into(),
            acl: Acl::open_unsafe(),
            flags: 0,
        };
        c.send(2 * i + 1, 1, &create.to_bytes()).await;
        c.send(
            2 * i + 2,
            4,
            &GetDataRequest { path, watch: false }.to_bytes(),
        )
        .await;
        expected.push(2 * i + 1);
        expected.push(2 * i + 2);
    }
    let mut got = Vec::new();
    for i in 0..100 {
        let (h, body) = c.recv().await.unwrap();
        assert_eq!(h.err, 0, "reply {i}");
        if h.xid % 2 == 0 {
            let r = GetDataResponse::from_bytes(&body).unwrap();
            assert_eq!(r.data.bytes(), Bytes::from(format!("{}", (h.xid - 2) / 2)));
        }
        got.push(h.xid);
    }
    assert_eq!(got, expected);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_fires_before_the_reply_that_reveals_the_change() {
    let mut server = TestServer::start();
    let addr = server.addr();
    let mut a = RawClient::connect(addr, 5000).await;
    let mut b = RawClient::connect(addr, 5000).await;
    assert_eq!(a.create("/w", b"1", 0).await.0, 0);

    // Same connection: the notification precedes the setData reply.
    a.get_data("/w", true).await.unwrap();
    a.arrivals.clear();
    a.set_data("/w", b"2", -1).await.unwrap();
    assert_eq!(a.arrivals, vec![-1, a.xid]);
    assert_eq!(a.events.last().unwrap().event_type, 3);
    assert_eq!(a.events.last().unwrap().path, "/w");

    // Another connection changes it; a read by the watcher must see the event first.
    a.get_data("/w", true).await.unwrap();
    a.arrivals.clear();
    b.set_data("/w", b"3", -1).await.unwrap();
    let (data, _) = a.get_data("/w", false).await.unwrap();
    assert_eq!(&data[..], b"3");
    assert_eq!(a.arrivals, vec![-1, a.xid]);

    // exists watch on a missing node, then create: NodeCreated.
    assert_eq!(a.exists("/w2", true).await, Err(NONODE));
    b.create("/w2", b"", 0).await;
    a.ping().await;
    let ev = a.events.last().unwrap();
    assert_eq!((ev.event_type, ev.path.as_str()), (1, "/w2"));
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_removes_ephemerals_and_closes() {
    let mut server = TestServer::start();
    let addr = server.addr();
    let mut a = RawClient::connect(addr, 300).await;
    assert_eq!(a.timeout_ms(), 300);
    assert_eq!(a.create("/eph", b"", 1).await.0, 0);
    let mut b = RawClient::connect(addr, 5000).await;
    b.exists("/eph", true).await.unwrap();
    // a goes silent; after ~timeout (rounded to tick) the session expires.
    tokio::time::sleep(Duration::from_millis(900)).await;
    b.ping().await;
    assert!(
        b.events
            .iter()
            .any(|e| e.event_type == 2 && e.path == "/eph"),
        "NodeDeleted delivered: {:?}",
        b.events
    );
    assert_eq!(b.exists("/eph", false).await, Err(NONODE));
    assert!(
        a.is_closed().await,
        "expired session's connection is closed"
    );
    // Resuming the expired session: timeout 0 response, then close.
    let (mut s, resp) = RawClient::resume(addr, 5000, a.session_id(), a.passwd())
        .await
        .expect_err("expired");
    assert_eq!((resp.timeout_ms, resp.session_id), (0, 0));
    assert_eq!(&resp.passwd[..], &[0u8; 16]);
    assert!(s.is_closed().await);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_with_password_moves_the_session() {
    let mut server = TestServer::start();
    let addr = server.addr();
    let mut a = RawClient::connect(addr, 4000).await;
    assert_eq!(a.create("/e", b"", 1).await.0, 0);
    let Ok(mut a2) = RawClient::resume(addr, 6000, a.session_id(), a.passwd()).await else {
        panic!("resume refused");
    };
    assert_eq!(a2.session_id(), a.session_id());
    assert_eq!(a2.timeout_ms(), 6000);
    assert!(a.is_closed().await, "old connection closed");
    // Ephemeral still there and owned by the session.
    let st = a2.exists("/e", false).await.unwrap();
    assert_eq!(st.ephemeral_owner, a.session_id());

    // Wrong password: timeout 0 and closed; as in ZooKeeper the connection bound to the
    // session is dropped too, but the session survives.
    let (mut s, resp) = RawClient::resume(addr, 4000, a.session_id(), Bytes::from(vec![1u8; 16]))
        .await
        .expect_err("refused");
    assert_eq!(resp.timeout_ms, 0);
    assert!(s.is_closed().await);
    assert!(a2.is_closed().await);
    let Ok(mut a2) = RawClient::resume(addr, 4000, a.session_id(), a.passwd()).await else {
        panic!("session survives a wrong-password attempt");
    };
    assert!(a2.exists("/e", false).await.is_ok());

    // closeSession: reply, then the socket closes and ephemerals are gone.
    let h = a2.close_session().await;
    assert_eq!(h.err, 0);
    assert!(a2.is_closed().await);
    let mut c = RawClient::connect(addr, 4000).await;
    assert_eq!(c.exists("/e", false).await, Err(NONODE));
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_client_without_read_only_byte() {
    let mut server = TestServer::start();
    let req = ConnectRequest {
        timeout_ms: 5000,
        passwd: Bytes::from(vec![0u8; 16]),
        read_only: None,
        ..Default::default()
    };
    let (_s, resp) = RawSession::handshake(server.addr(), &req, CLIENT_IO_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.read_only, None, "response omits the readOnly byte");
    assert!(resp.session_id != 0);
    let req = ConnectRequest {
        read_only: Some(false),
        ..req
    };
    let (_s, resp) = RawSession::handshake(server.addr(), &req, CLIENT_IO_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.read_only, Some(false));
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ahead_of_server_is_closed_without_reply() {
    let mut server = TestServer::start();
    let req = ConnectRequest {
        timeout_ms: 5000,
        last_zxid_seen: 1 << 40,
        passwd: Bytes::from(vec![0u8; 16]),
        read_only: Some(false),
        ..Default::default()
    };
    let r = RawSession::handshake(server.addr(), &req, CLIENT_IO_TIMEOUT).await;
    assert!(r.is_err(), "no ConnectResponse");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_closes_only_that_connection() {
    let mut server = TestServer::start();
    let addr = server.addr();
    let mut good = RawClient::connect(addr, 5000).await;

    // Oversized frame length.
    let mut c = RawClient::connect(addr, 5000).await;
    c.send_bytes(&0x7fff_ffffi32.to_be_bytes()).await;
    assert!(c.is_closed().await);
    // Negative frame length.
    let mut c = RawClient::connect(addr, 5000).await;
    c.send_bytes(&(-5i32).to_be_bytes()).await;
    assert!(c.is_closed().await);
    // Unknown opcode: UNIMPLEMENTED, then closed.
    let mut c = RawClient::connect(addr, 5000).await;
    c.send(1, 999, &[]).await;
    let (h, _) = c.recv().await.unwrap();
    assert_eq!((h.xid, h.err), (1, -6));
    assert!(c.is_closed().await);
    // Truncated request header.
    let mut c = RawClient::connect(addr, 5000).await;
    c.send_bytes(&frame(&[0, 0, 0])).await;
    assert!(c.is_closed().await);
    // Garbage instead of a ConnectRequest.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&frame(&[1, 2, 3])).await.unwrap();
    assert!(closed_within(&mut s, CLIENT_IO_TIMEOUT).await);
    // Oversized handshake.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&(0x10_0000i32).to_be_bytes()).await.unwrap();
    assert!(closed_within(&mut s, CLIENT_IO_TIMEOUT).await);

    // The well-behaved client is unaffected.
    assert_eq!(good.create("/still-ok", b"", 0).await.0, 0);
    assert!(good.ping().await.err == 0);
    server.stop();
}

/// Requests pipelined before a frame whose length the server refuses are answered, in
/// order, before the connection closes; nothing after that length is read. (They were
/// dropped with the connection; ZooKeeper answers them or not depending on timing.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_before_a_refused_frame_length_are_answered_then_the_connection_closes() {
    let mut server = TestServer::start();
    for bad_len in [0x7fff_ffffi32, 0x10_0000, -1] {
        let mut c = RawClient::connect(server.addr(), 5000).await;
        let path = format!("/before-bad-length-{bad_len}");
        let mut bytes = Vec::new();
        rzk_testkit::raw::request_frame(
            &mut bytes,
            1,
            1,
            &CreateRequest {
                path: path.clone(),
                data: Bytes::from_static(b"x").into(),
                acl: Acl::open_unsafe(),
                flags: 0,
            },
        );
        rzk_testkit::raw::request_frame(
            &mut bytes,
            2,
            4,
            &GetDataRequest {
                path: path.clone(),
                watch: false,
            },
        );
        bytes.extend_from_slice(&bad_len.to_be_bytes());
        // A create after the bad length: never read, never applied.
        rzk_testkit::raw::request_frame(
            &mut bytes,
            3,
            1,
            &CreateRequest {
                path: format!("{path}-after"),
                data: Bytes::new().into(),
                acl: Acl::open_unsafe(),
                flags: 0,
            },
        );
        c.send_bytes(&bytes).await;
        let (h, _) = c.recv().await.expect("the create's reply");
        assert_eq!((h.xid, h.err), (1, 0), "length {bad_len}");
        let (h, body) = c.recv().await.expect("the getData's reply");
        assert_eq!((h.xid, h.err), (2, 0), "length {bad_len}");
        assert_eq!(
            GetDataResponse::from_bytes(&body).unwrap().data.bytes(),
            Bytes::from_static(b"x")
        );
        assert!(c.is_closed().await, "length {bad_len}: still open");
        let mut check = RawClient::connect(server.addr(), 5000).await;
        assert_eq!(check.exists(&path, false).await.map(|_| ()), Ok(()));
        assert_eq!(
            check
                .exists(&format!("{path}-after"), false)
                .await
                .map(|_| ()),
            Err(NONODE)
        );
    }
    server.stop();
}

/// The replies owed before a refused frame length reach a client that reads them
/// slowly and sent more bytes after that length: the server reads and drops those bytes
/// before it closes (a close with unread input resets the connection, and the kernel
/// then drops the replies still queued: a code review in session 59).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_before_a_refused_length_survive_the_close_for_a_slow_reader() {
    use tokio::io::AsyncReadExt;
    let mut server = TestServer::start();
    let mut setup = RawClient::connect(server.addr(), 5000).await;
    let data = vec![b'd'; 900_000];
    assert_eq!(setup.create("/big", &data, 0).await.0, 0);

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(server.addr()).await.unwrap();
    let connect = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 10_000,
        session_id: 0,
        passwd: Bytes::from_static(&[0; 16]),
        read_only: Some(false),
    };
    s.write_all(&frame(&connect.to_bytes())).await.unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.unwrap();
    let mut resp = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut resp).await.unwrap();

    let (mut rd, mut wr) = s.into_split();
    let mut bytes = Vec::new();
    rzk_testkit::raw::request_frame(
        &mut bytes,
        1,
        4,
        &GetDataRequest {
            path: "/big".into(),
            watch: false,
        },
    );
    bytes.extend_from_slice(&0x7fff_ffffi32.to_be_bytes());
    bytes.extend_from_slice(&vec![0u8; 256 * 1024]);
    // The server stops reading at the bad length: write from a task of its own.
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&bytes).await;
        wr
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), rd.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server did not close");
    let _ = writer.await;
    assert!(got.len() >= 4, "nothing read ({read:?})");
    let n = i32::from_be_bytes(got[..4].try_into().unwrap()) as usize;
    assert_eq!(
        got.len(),
        4 + n,
        "the getData reply came cut short: {} of {} bytes ({read:?})",
        got.len(),
        4 + n
    );
    let body = GetDataResponse::from_bytes(&got[4 + 16..]).unwrap();
    assert_eq!(body.data.bytes().len(), data.len());
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_and_sasl() {
    let mut server = TestServer::start();
    let mut c = RawClient::connect(server.addr(), 5000).await;
    let ok = AuthPacket {
        auth_type: 0,
        scheme: "digest".into(),
        auth: Bytes::from_static(b"bob:secret"),
    };
    c.send(-4, 100, &ok.to_bytes()).await;
    let (h, _) = c.reply(-4).await;
    assert_eq!((h.zxid, h.err), (0, 0));
    // Sent with an ordinary xid, auth and setWatches are answered with that xid, as
    // ZooKeeper 3.8 answers them (its reply header echoes the request's xid).
    c.send(5, 100, &ok.to_bytes()).await;
    let (h, _) = c.reply(5).await;
    assert_eq!((h.zxid, h.err), (0, 0));
    let sw = SetWatches {
        relative_zxid: 0,
        data_watches: vec!["/a".into()],
        exist_watches: vec![],
        child_watches: vec![],
    };
    c.send(7, 101, &sw.to_bytes()).await;
    let (h, _) = c.reply(7).await;
    assert_eq!(h.err, 0);
    // SASL without a SASL server: OK with a null token.
    let (h, body) = c
        .call(
            102,
            &GetSaslRequest {
                token: Bytes::new(),
            }
            .to_bytes(),
        )
        .await;
    assert_eq!(h.err, 0);
    assert_eq!(body, (-1i32).to_be_bytes());
    // Unknown scheme: AUTHFAILED and closed.
    let bad = AuthPacket {
        auth_type: 0,
        scheme: "nope".into(),
        auth: Bytes::new(),
    };
    c.send(9, 100, &bad.to_bytes()).await;
    let (h, _) = c.reply(9).await;
    assert_eq!(h.err, -115);
    assert!(c.is_closed().await);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_letter_words() {
    let mut server = TestServer::builder()
        .configure(|c| {
            c.four_letter_whitelist = rzk_server::config::FourLetterWhitelist::parse(
                "ruok,stat,mntr,conf,cons,wchs,dump,envi,isro,dirs",
            )
        })
        .start();
    let addr = server.addr();
    assert_eq!(four_letter(addr, "ruok").unwrap(), "imok");
    assert_eq!(four_letter(addr, "isro").unwrap(), "rw");
    let srvr = four_letter(addr, "srvr").unwrap();
    assert!(srvr.starts_with("Zookeeper version: "), "{srvr}");
    assert!(srvr.contains("\nMode: standalone\n"), "{srvr}");
    assert!(srvr.contains("\nNode count: 5\n"), "{srvr}");
    assert!(srvr.contains("\nZxid: 0x0\n"), "{srvr}");
    let mut c = RawClient::connect(addr, 5000).await;
    c.create("/x", b"", 0).await;
    let stat = four_letter(addr, "stat").unwrap();
    assert!(stat.contains("Clients:\n /127.0.0.1:"), "{stat}");
    assert!(stat.contains("\nNode count: 6\n"), "{stat}");
    let mntr = four_letter(addr, "mntr").unwrap();
    assert!(mntr.contains("zk_server_state\tstandalone\n"), "{mntr}");
    assert!(mntr.contains("zk_znode_count\t6\n"), "{mntr}");
    assert!(mntr.contains("zk_global_sessions\t1\n"), "{mntr}");
    let cons = four_letter(addr, "cons").unwrap();
    assert!(
        cons.contains(&format!("sid=0x{:x}", c.session_id())),
        "{cons}"
    );
    let dump = four_letter(addr, "dump").unwrap();
    assert!(dump.starts_with("SessionTracker dump:\n"), "{dump}");
    assert!(
        dump.contains(&format!("\t0x{:x}\n", c.session_id())),
        "{dump}"
    );
    assert!(four_letter(addr, "conf")
        .unwrap()
        .contains("tickTime=100\n"));
    assert!(four_letter(addr, "envi")
        .unwrap()
        .starts_with("Environment:\nzookeeper.version="));
    assert!(four_letter(addr, "dirs")
        .unwrap()
        .starts_with("datadir_size: "));
    assert_eq!(
        four_letter(addr, "wchc").unwrap(),
        "wchc is not executed because it is not in the whitelist.\n"
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_client_cnxns_per_ip() {
    let mut server = TestServer::builder()
        .configure(|c| c.max_client_cnxns = 2)
        .start();
    let addr = server.addr();
    let _a = RawClient::connect(addr, 5000).await;
    let _b = RawClient::connect(addr, 5000).await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut s, CLIENT_IO_TIMEOUT).await,
        "third connection refused"
    );
    drop(_a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _c = RawClient::connect(addr, 5000).await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_and_group_commit() {
    let mut server = TestServer::start();
    let addr = server.addr();
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(RawClient::connect(addr, 5000).await);
    }
    let mut tasks = Vec::new();
    for (i, mut c) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            for j in 0..25 {
                assert_eq!(c.create(&format!("/g{i}-{j}"), b"", 0).await.0, 0);
            }
            let (h, b) = c
                .call(9, &SyncRequest { path: "/".into() }.to_bytes())
                .await;
            assert_eq!(h.err, 0);
            assert_eq!(SyncResponse::from_bytes(&b).unwrap().path, "/");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut c = RawClient::connect(addr, 5000).await;
    assert_eq!(c.children("/").await.unwrap().len(), 101);
    let st = server
        .server()
        .shared()
        .stats
        .txns_logged
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(st, 5 + 100, "createSession x5 + 100 creates logged");
    server.stop();
}

/// Per-session FIFO (issue: a read between two writes of the same session saw the later
/// write about half the time): setData A, getData with a watch, setData B, pipelined. The
/// read must see A, and its watch must fire for B before B's reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_read_sees_exactly_the_writes_sent_before_it() {
    let mut server = TestServer::start();
    let mut c = RawClient::connect(server.addr(), 5000).await;
    assert_eq!(c.create("/x", b"0", 0).await.0, 0);
    let set = |d: &str| {
        SetDataRequest {
            path: "/x".into(),
            data: Bytes::from(d.to_string()).into(),
            version: -1,
        }
        .to_bytes()
    };
    let get = GetDataRequest {
        path: "/x".into(),
        watch: true,
    }
    .to_bytes();
    for round in 0..1000 {
        let base = 10 + 3 * round;
        // One write for the three frames, so they arrive together, as from a client
        // that pipelines.
        let mut bytes = Vec::new();
        for (xid, op, body) in [
            (base, 5, set("A")),
            (base + 1, 4, get.clone()),
            (base + 2, 5, set("B")),
        ] {
            let mut f = RequestHeader { xid, op }.to_bytes();
            f.extend_from_slice(&body);
            bytes.extend_from_slice(&frame(&f));
        }
        c.send_bytes(&bytes).await;
        let mut frames = Vec::new();
        while frames.last().map(|(x, _, _)| *x) != Some(base + 2) {
            let (h, body) = c.recv().await.unwrap();
            frames.push((h.xid, h.err, body));
        }
        let xids: Vec<i32> = frames.iter().map(|f| f.0).collect();
        assert_eq!(xids, vec![base, base + 1, -1, base + 2], "round {round}");
        let read = GetDataResponse::from_bytes(&frames[1].2).unwrap();
        assert_eq!(
            &read.data[..],
            b"A",
            "round {round}: the read saw a later write"
        );
        let ev = WatcherEvent::from_bytes(&frames[2].2).unwrap();
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (3, "/x"),
            "round {round}"
        );
    }
    server.stop();
}

/// Replies and notifications reach a connection in zxid order when the applier answers
/// a group of commits together (`node/apply.rs` `Answers`): setData /x then setData /w,
/// pipelined on a connection that watches /w. Both are committed in one group, so the
/// reply to the first is still held back when the second fires the watch; it must be
/// handed over before the notification: /x's reply, the event, /w's reply (ZooKeeper
/// answers each txn before it applies the next).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_held_for_its_group_still_comes_before_a_later_txns_notification() {
    let mut server = TestServer::start();
    let mut c = RawClient::connect(server.addr(), 5000).await;
    assert_eq!(c.create("/x", b"0", 0).await.0, 0);
    assert_eq!(c.create("/w", b"0", 0).await.0, 0);
    let set = |path: &str| {
        SetDataRequest {
            path: path.into(),
            data: Bytes::from_static(b"v").into(),
            version: -1,
        }
        .to_bytes()
    };
    for round in 0..300 {
        c.get_data("/w", true).await.unwrap();
        let base = 10_000 + 2 * round;
        let mut bytes = Vec::new();
        for (xid, body) in [(base, set("/x")), (base + 1, set("/w"))] {
            let mut f = RequestHeader { xid, op: 5 }.to_bytes();
            f.extend_from_slice(&body);
            bytes.extend_from_slice(&frame(&f));
        }
        c.send_bytes(&bytes).await;
        let mut xids = Vec::new();
        while xids.last() != Some(&(base + 1)) {
            let (h, _) = c.recv().await.unwrap();
            assert_eq!(h.err, 0, "round {round}");
            xids.push(h.xid);
        }
        assert_eq!(xids, vec![base, -1, base + 1], "round {round}");
    }
    server.stop();
}

/// Per-session order across connections: writes a session pipelined on a connection that
/// then died must not take effect after a read the session makes on its next connection
/// (ZooKeeper orders a session's requests by session). The old connection's creates that
/// reached the server are either all visible to the first read on the new connection or
/// never applied: a second read later sees the same children.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_of_a_dead_connection_do_not_land_after_the_next_connections_read() {
    let mut server = TestServer::start();
    let addr = server.addr();
    for round in 0..5 {
        let mut a = RawClient::connect(addr, 10_000).await;
        let parent = format!("/moved{round}");
        assert_eq!(a.create(&parent, b"", 0).await.0, 0);
        let mut bytes = Vec::new();
        for i in 0..300 {
            let create = CreateRequest {
                path: format!("{parent}/n{i}"),
                data: Bytes::from_static(b"x").into(),
                acl: Acl::open_unsafe(),
                flags: 0,
            };
            let mut payload = RequestHeader {
                xid: 100 + i,
                op: 1,
            }
            .to_bytes();
            payload.extend_from_slice(&create.to_bytes());
            bytes.extend_from_slice(&frame(&payload));
        }
        a.send_bytes(&bytes).await;
        let (sid, passwd) = (a.session_id(), a.passwd());
        drop(a); // the connection dies with its creates in flight
        let mut b = RawClient::resume(addr, 10_000, sid, passwd)
            .await
            .unwrap_or_else(|_| panic!("session resumes"));
        let first = b.children(&parent).await.unwrap().len();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let later = b.children(&parent).await.unwrap().len();
        assert_eq!(
            first, later,
            "round {round}: {} creates of the dead connection landed after the new connection's read",
            later - first
        );
    }
    server.stop();
}

/// The server parses many frames from one read and joins a frame split over many reads:
/// 200 requests in a single write, then 20 more written a few bytes at a time, are all
/// answered in order and each read sees the writes sent before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_batched_in_one_write_or_split_over_many_are_answered_in_order() {
    let mut server = TestServer::start();
    let mut c = RawClient::connect(server.addr(), 5000).await;
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    let mut xid = 0;
    let mut add = |wire: &mut Vec<u8>, i: i32, expected: &mut Vec<i32>| {
        let path = format!("/b{i}");
        let create = CreateRequest {
            path: path.clone(),
            data: Bytes::from(format!("{i}")).into(),
            acl: Acl::open_unsafe(),
            flags: 0,
        };
        xid += 1;
        rzk_testkit::raw::request_frame(wire, xid, 1, &create);
        expected.push(xid);
        xid += 1;
        rzk_testkit::raw::request_frame(wire, xid, 4, &GetDataRequest { path, watch: false });
        expected.push(xid);
    };
    for i in 0..100 {
        add(&mut wire, i, &mut expected);
    }
    c.send_bytes(&wire).await;
    let mut tail = Vec::new();
    for i in 100..110 {
        add(&mut tail, i, &mut expected);
    }
    for chunk in tail.chunks(3) {
        c.send_bytes(chunk).await;
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    for (n, want) in expected.iter().enumerate() {
        let (h, body) = c.recv().await.unwrap();
        assert_eq!((h.xid, h.err), (*want, 0), "reply {n}");
        if h.xid % 2 == 0 {
            let r = GetDataResponse::from_bytes(&body).unwrap();
            assert_eq!(r.data.bytes(), Bytes::from(format!("{}", (h.xid - 2) / 2)));
        }
    }
    server.stop();
}

/// A client that pipelines more writes than a connection admits at once
/// (`MAX_OUTSTANDING_PER_CONN`, 1,000) and then only reads gets every reply, without
/// sending another byte. The requests over the limit wait in the connection's read
/// buffer; once answers lower the count they must be taken from there. rzk instead
/// waited for the socket with the reply lane armed, so nothing woke it: a batch stopped
/// partway until the client's next ping (found by a review in session 51, with batches
/// of 1,500 to 4,000 setData). Rounds of 3,000 setData, each reply awaited for at most
/// `CLIENT_IO_TIMEOUT`, far longer than a round takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_pipelined_over_the_outstanding_limit_are_answered_without_another_byte() {
    let mut server = TestServer::start();
    let mut c = RawClient::connect(server.addr(), 30_000).await;
    let (h, _) = c.create("/pipelined", b"", 0).await;
    assert_eq!(h, 0);
    let (rounds, per_round) = (8, 3_000);
    let mut xid = 10;
    for round in 0..rounds {
        let mut wire = Vec::new();
        let first = xid;
        for _ in 0..per_round {
            let set = SetDataRequest {
                path: "/pipelined".into(),
                data: Bytes::from_static(b"v").into(),
                version: -1,
            };
            rzk_testkit::raw::request_frame(&mut wire, xid, 5, &set);
            xid += 1;
        }
        c.send_bytes(&wire).await;
        for want in first..xid {
            let got = tokio::time::timeout(CLIENT_IO_TIMEOUT, c.recv()).await;
            let Ok(Ok((h, _))) = got else {
                panic!(
                    "round {round}: no reply {} of {per_round} within {CLIENT_IO_TIMEOUT:?}",
                    want - first + 1
                );
            };
            assert_eq!((h.xid, h.err), (want, 0), "round {round}");
        }
    }
    server.stop();
}

/// One txn that fires more watch notifications than a connection's backlog limit
/// (`MAX_QUEUED_NOTIFY_BYTES`, 8 MiB) on a watcher that reads: every one arrives and
/// the connection stays. The closeSession of a session owning 20,000 ephemerals with
/// 1,000-byte names fires ~20 MB of NodeDeleted at once on a persistent recursive
/// watch of their parent (more than the socket buffers take as well). rzk closed that connection and dropped most of the events
/// (found by a review in session 51 with 100,000 ephemerals; ZooKeeper delivers them
/// all). A backlog over the limit still closes the connection at the next txn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_txn_firing_more_than_the_backlog_limit_reaches_a_reading_watcher() {
    use rzk_proto::multi::{MultiOp, MultiRequest};
    let mut server = TestServer::start();
    let mut owner = RawClient::connect(server.addr(), 30_000).await;
    assert_eq!(owner.create("/burst", b"", 0).await.0, 0);
    let mut watcher = RawClient::connect(server.addr(), 30_000).await;
    let add = AddWatchRequest {
        path: "/burst".into(),
        mode: 1, // persistent recursive
    };
    assert_eq!(watcher.call(106, &add.to_bytes()).await.0.err, 0);
    let (multis, per_multi) = (40, 500);
    let name = "n".repeat(1000);
    for m in 0..multis {
        let ops = (0..per_multi)
            .map(|i| {
                MultiOp::Create(
                    1,
                    CreateRequest {
                        path: format!("/burst/{name}{m}-{i}"),
                        data: Bytes::new().into(),
                        acl: Acl::open_unsafe(),
                        flags: 1, // ephemeral
                    },
                )
            })
            .collect();
        let (h, _) = owner.call(14, &MultiRequest { ops }.to_bytes()).await;
        assert_eq!(h.err, 0, "multi {m}");
        // The watcher reads each multi's NodeCreated events as they come, and pings
        // as a client does (the test server's session timeouts are short).
        watcher.send(-2, 11, &[]).await;
        let (mut created, mut pinged) = (0, false);
        while created < per_multi || !pinged {
            let got = tokio::time::timeout(CLIENT_IO_TIMEOUT, watcher.recv()).await;
            let Ok(Ok((h, _))) = got else {
                panic!("multi {m}: NodeCreated {created} did not arrive");
            };
            if h.xid == -2 {
                pinged = true;
                continue;
            }
            assert_eq!(h.xid, -1);
            created += 1;
        }
    }
    let total = multis * per_multi;
    owner.close_session().await;
    let (mut deleted, mut pings, mut sent) = (0, 0, 0);
    while deleted < total {
        if deleted / 1_000 >= sent {
            watcher.send(-2, 11, &[]).await;
            pings += 1;
            sent += 1;
        }
        let got = tokio::time::timeout(CLIENT_IO_TIMEOUT, watcher.recv()).await;
        let Ok(Ok((h, body))) = got else {
            panic!("NodeDeleted {deleted} of {total} did not arrive (connection closed?)");
        };
        if h.xid == -2 {
            pings -= 1;
            continue;
        }
        assert_eq!(h.xid, -1);
        let ev = WatcherEvent::from_bytes(&body).unwrap();
        assert_eq!(ev.event_type, 2, "NodeDeleted");
        deleted += 1;
    }
    // The pings' replies still queued behind the events.
    while pings > 0 {
        let got = tokio::time::timeout(CLIENT_IO_TIMEOUT, watcher.recv()).await;
        assert!(matches!(got, Ok(Ok((ref h, _))) if h.xid == -2), "{got:?}");
        pings -= 1;
    }
    // The connection stayed: a request is answered.
    assert!(watcher.exists("/burst", false).await.is_ok());
    server.stop();
}

/// Write replies the applier writes straight into the socket (`net::lane`) keep the
/// session's order and every byte when the socket fills up: a client with a small
/// receive buffer pipelines multis of 5,000 setData each, whose replies (~4.6 MB in all,
/// three times their requests) are far more than the socket buffers hold, and reads
/// nothing for a while, so replies are cut mid-frame, their rest left to the
/// connection's task, and the later ones queued behind it; a read sent while they are
/// stuck comes after all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_replies_cut_by_a_full_socket_keep_their_order_and_bytes() {
    use rzk_proto::multi::{MultiOp, MultiRequest, MultiResponse, OpResult};
    use rzk_proto::Reader;
    use tokio::io::AsyncReadExt;
    async fn read_reply(rd: &mut (impl tokio::io::AsyncRead + Unpin)) -> (ReplyHeader, Vec<u8>) {
        let len = tokio::time::timeout(Duration::from_secs(30), rd.read_i32())
            .await
            .expect("a reply within 30 s")
            .expect("read");
        let mut f = vec![0u8; usize::try_from(len).expect("length")];
        rd.read_exact(&mut f).await.expect("read");
        let mut r = Reader::new(&f);
        let h: ReplyHeader = r.read().expect("reply header");
        (h, r.rest().to_vec())
    }
    let mut server = TestServer::start();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(server.addr()).await.unwrap();
    let (mut rd, mut wr) = tcp.into_split();
    let connect = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 30_000,
        session_id: 0,
        passwd: Bytes::from_static(&[0; 16]),
        read_only: Some(false),
    };
    wr.write_all(&frame(&connect.to_bytes())).await.unwrap();
    let len = rd.read_i32().await.unwrap();
    let mut resp = vec![0u8; usize::try_from(len).unwrap()];
    rd.read_exact(&mut resp).await.unwrap();
    assert!(ConnectResponse::from_bytes(&resp).unwrap().session_id != 0);

    let (multis, per_multi) = (12, 5_000);
    let mut wire = Vec::new();
    let create = CreateRequest {
        path: "/a".into(),
        data: Bytes::new().into(),
        acl: Acl::open_unsafe(),
        flags: 0,
    };
    rzk_testkit::raw::request_frame(&mut wire, 1, 1, &create);
    let set = MultiOp::SetData(SetDataRequest {
        path: "/a".into(),
        data: Bytes::from_static(b"v").into(),
        version: -1,
    });
    let multi = MultiRequest {
        ops: vec![set; per_multi],
    };
    for k in 0..multis {
        rzk_testkit::raw::request_frame(&mut wire, 2 + k, 14, &multi);
    }
    let mut last = Vec::new();
    let get = GetDataRequest {
        path: "/a".into(),
        watch: false,
    };
    rzk_testkit::raw::request_frame(&mut last, 2 + multis, 4, &get);
    let writer = tokio::spawn(async move {
        wr.write_all(&wire).await.unwrap();
        // The read comes while the multis' replies are stuck.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        wr.write_all(&last).await.unwrap();
        wr
    });
    // Nothing is read meanwhile: the server's writes stall on the full socket.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(read_reply(&mut rd).await.0.xid, 1);
    for k in 0..multis {
        let (h, body) = read_reply(&mut rd).await;
        assert_eq!((h.xid, h.err), (2 + k, 0), "multi {k}");
        let results = MultiResponse::from_bytes(&body).unwrap().results;
        assert_eq!(results.len(), per_multi, "multi {k}");
        for (j, r) in results.iter().enumerate() {
            let want = i32::try_from(k as usize * per_multi + j + 1).unwrap();
            match r {
                OpResult::SetData(stat) => assert_eq!(stat.version, want, "multi {k} op {j}"),
                other => panic!("multi {k} op {j}: {other:?}"),
            }
        }
    }
    let (h, body) = read_reply(&mut rd).await;
    assert_eq!((h.xid, h.err), (2 + multis, 0));
    let got = GetDataResponse::from_bytes(&body).unwrap();
    assert_eq!(got.stat.version, multis * i32::try_from(per_multi).unwrap());
    drop(writer.await.unwrap());
    server.stop();
}

/// A write answered through the reply lane (`net::lane`: the applier writes the reply
/// while the connection's task sleeps) is accounted for when its reply leaves, not when
/// the client next sends something: the server's outstanding count, the connection's
/// queue and its last zxid (ZooKeeper's lzxid is every response's) are up to date while
/// the client sends nothing more (found by a break-it review: `Outstanding: 1` until the
/// next ping).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_answered_through_the_lane_is_accounted_when_its_reply_leaves() {
    let mut server = TestServer::builder()
        .configure(|c| {
            c.four_letter_whitelist = rzk_server::config::FourLetterWhitelist::parse("srvr,cons")
        })
        .start();
    let addr = server.addr();
    let mut c = RawClient::connect(addr, 30_000).await;
    assert_eq!(c.create("/s", b"", 0).await.0, 0);
    let mut last = None;
    for i in 0..5 {
        last = Some(
            c.set_data("/s", format!("{i}").as_bytes(), -1)
                .await
                .unwrap(),
        );
    }
    let mzxid = last.unwrap().mzxid;
    let session = format!("sid=0x{:x},", c.session_id());
    let srvr = four_letter(addr, "srvr").unwrap();
    assert!(srvr.contains("\nOutstanding: 0\n"), "{srvr}");
    let cons = four_letter(addr, "cons").unwrap();
    let line = cons
        .lines()
        .find(|l| l.contains(&session))
        .unwrap_or_else(|| panic!("{cons}"));
    assert!(line.contains("(queued=0,"), "{line}");
    assert!(line.contains(&format!(",lzxid=0x{mzxid:x},")), "{line}");
    server.stop();
}

/// A session re-attaching while its old connection is stuck writing to a client that
/// reads nothing (both socket buffers full) is answered at once, and the old connection
/// is dropped, as ZooKeeper closes it. The old connection's task stayed blocked in its
/// write: the re-attach waited `SUPERSEDED_WAIT` (5 s) for it, long enough for a client
/// that times out its connect as Java's does (session timeout / number of hosts) to
/// give up, and the old connection stayed registered (found by a break-it review).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_reattaches_while_its_old_connection_is_stuck_writing() {
    use rzk_server::net::conn::SUPERSEDED_WAIT;
    let mut server = TestServer::start();
    let addr = server.addr();
    let mut w = RawClient::connect(addr, 10_000).await;
    assert_eq!(w.create("/big", &vec![b'x'; 500_000], 0).await.0, 0);
    let mut a = RawClient::connect(addr, 10_000).await;
    assert_eq!(a.create("/mine", b"", 1).await.0, 0);
    // 300 getData of 500 KB, never read: ~150 MB of replies the server cannot write.
    let body = GetDataRequest {
        path: "/big".into(),
        watch: false,
    }
    .to_bytes();
    for i in 0..300 {
        a.send(1000 + i, rzk_proto::OpCode::GetData.code(), &body)
            .await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = std::time::Instant::now();
    let Ok(mut b) = RawClient::resume(addr, 10_000, a.session_id(), a.passwd()).await else {
        panic!("resume refused");
    };
    let took = started.elapsed();
    assert!(
        took < SUPERSEDED_WAIT,
        "the re-attach waited {took:?} for the stuck connection"
    );
    let st = b.exists("/mine", false).await.unwrap();
    assert_eq!(st.ephemeral_owner, a.session_id());
    // Only w's and b's connections remain registered.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let n = server.server().shared().clients.registry().conns.len();
        if n == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{n} connections registered: the stuck one was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(a);
    server.stop();
}
