//! Quorum links as a follower keeps them: a connection to its quorum port never takes the
//! place of its link to its leader. ZooKeeper's followers do not listen on the quorum
//! port at all (only a leader's `LearnerCnxAcceptor` does), so such a connection is
//! refused there. In rzk it once replaced the follower's link to its leader when it
//! named the leader's id: after a reconfig that designates a follower, the old leader
//! connects to it at once, and the designated one lost the COMMITANDACTIVATE that would
//! have made it lead (a break-it review of session 48). Since session 51 a follower
//! does not listen on its quorum port either (`node/quorum_port.rs`): the connection is
//! refused, and the follower keeps its leader.

use rzk_proto::jute::Jute;
use rzk_proto::quorum::payload::LearnerInfo;
use rzk_proto::quorum::{PacketType, QuorumPacket, LEARNER_PROTOCOL_VERSION};
use rzk_proto::ServerId;
use rzk_testkit::raw::RawClient;
use rzk_testkit::server::{four_letter, TestEnsemble};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_connection_to_a_follower_does_not_replace_its_leader_link() {
    let mut e = TestEnsemble::builder(3).start();
    let leader = e.wait_serving();
    let follower = e.ids().into_iter().find(|i| *i != leader).unwrap();
    let f = e.member(follower);
    let quorum_port = f.config().servers[&ServerId(follower as i64)].quorum_port;
    // A session on the follower: a follower that leaves its leader closes it.
    let mut r = RawClient::connect(f.addr(), 5000).await;
    // A FOLLOWERINFO on the follower's quorum port, in the name of its leader (as the
    // old leader sends it right after a reconfig designated this follower).
    let info = LearnerInfo {
        server_id: leader as i64,
        protocol_version: LEARNER_PROTOCOL_VERSION,
        config_version: 0,
    };
    let p = QuorumPacket::with_data(PacketType::FollowerInfo, 0, info.encode());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", quorum_port)).is_err(),
        "a follower listens on its quorum port"
    );
    // The leader's quorum port takes learners; the spoofed FOLLOWERINFO goes there too
    // and must not disturb the follower's own link.
    let leader_quorum = f.config().servers[&ServerId(leader as i64)].quorum_port;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", leader_quorum)).unwrap();
    s.write_all(&p.to_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 64];
    let _ = s.read(&mut buf);
    drop(s);
    // Well past syncLimit (5 ticks of 100 ms): the follower still hears its leader, so
    // it never left the ensemble (its session's connection is still open), and a write
    // through the leader reaches it.
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        let srvr = four_letter(f.addr(), "srvr").unwrap();
        assert!(srvr.contains("Mode: follower"), "{srvr}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut c = RawClient::connect(e.member(leader).addr(), 5000).await;
    assert_eq!(c.create("/after-the-spoof", b"x", 0).await.0, 0);
    let until = Instant::now() + Duration::from_secs(5);
    while r.get_data("/after-the-spoof", false).await.is_err() {
        assert!(
            Instant::now() < until,
            "the write never reached the follower"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    e.stop();
}

/// Waits until `ok()` holds, checking every 20 ms; fails with `what()` after `within`.
async fn wait_until<D: std::fmt::Display>(
    mut ok: impl FnMut() -> bool,
    within: Duration,
    what: impl Fn() -> D,
) {
    let since = Instant::now();
    while !ok() {
        assert!(since.elapsed() < within, "{}", what());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `addr`'s `srvr` names the mode `mode` (`"Mode: follower"`), failing
/// with `what` after `within`.
async fn wait_for_mode(addr: std::net::SocketAddr, mode: &str, within: Duration, what: &str) {
    let ok = || four_letter(addr, "srvr").unwrap_or_default().contains(mode);
    wait_until(ok, within, || what).await;
}

/// A FOLLOWERINFO in server `sid`'s name, accepted epoch `epoch`, as sent on the wire.
fn follower_info(sid: u64, epoch: i64) -> Vec<u8> {
    let info = LearnerInfo {
        server_id: sid as i64,
        protocol_version: LEARNER_PROTOCOL_VERSION,
        config_version: 0,
    };
    QuorumPacket::with_data(PacketType::FollowerInfo, epoch << 32, info.encode()).to_bytes()
}

/// A FOLLOWERINFO in the name of a synced follower, sent to the leader's quorum port by
/// anyone who can reach it, does not cut that follower off. ZooKeeper's leader keeps a
/// `LearnerHandler` per connection, so the real follower never notices; rzk keys links by
/// server id and let the new connection replace the follower's at once: one such packet
/// sent the follower back to an election (its clients disconnected), and one per
/// follower cost the leader its quorum (a break-it review, session 53). The connection
/// now waits until the synced link closes (`node/driver.rs` `WaitingLink`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_info_naming_a_synced_follower_does_not_cut_it_off() {
    let mut e = TestEnsemble::builder(3).start();
    let leader = e.wait_serving();
    let followers: Vec<u64> = e.ids().into_iter().filter(|i| *i != leader).collect();
    let cfg = e.member(leader).config().clone();
    let leader_quorum = cfg.servers[&ServerId(leader as i64)].quorum_port;
    // Both followers synced before the spoofing starts.
    for f in &followers {
        let at = e.member(*f).addr();
        wait_for_mode(at, "Mode: follower", Duration::from_secs(10), "not synced").await;
    }
    // A session on the first follower: a follower that leaves its leader closes it.
    let mut r = RawClient::connect(e.member(followers[0]).addr(), 5000).await;
    let spoof = |sid: u64| async move {
        let mut s = from_elsewhere(leader_quorum).await;
        s.write_all(&follower_info(sid, 0)).unwrap();
        s
    };
    // Two seconds (well past syncLimit and initLimit: 5 and 10 ticks of 100 ms) of
    // FOLLOWERINFOs naming each follower, the connections kept open; every member must
    // keep its role throughout.
    let mut fakes = Vec::new();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        for f in &followers {
            fakes.push(spoof(*f).await);
        }
        for (id, mode) in [
            (leader, "Mode: leader"),
            (followers[0], "Mode: follower"),
            (followers[1], "Mode: follower"),
        ] {
            let srvr = four_letter(e.member(id).addr(), "srvr").unwrap_or_default();
            assert!(
                srvr.contains(mode),
                "member {id} left its role after {} spoofed FOLLOWERINFOs: {srvr}",
                fakes.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(fakes);
    // The follower's session never lost its connection, and writes through it commit.
    assert!(r.exists("/", false).await.is_ok());
    assert_eq!(r.create("/after-the-spoofing", b"x", 0).await.0, 0);
    e.stop();
}

/// A held learner connection (above) takes the place of the synced link once that link
/// closes: the leader answers its FOLLOWERINFO then. And a real follower that comes
/// back replaces a connection in its name that never synced, as before: it rejoins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_learner_connection_takes_over_when_the_synced_link_closes() {
    let mut e = TestEnsemble::builder(3).start();
    let leader = e.wait_serving();
    let follower = e.ids().into_iter().find(|i| *i != leader).unwrap();
    let cfg = e.member(leader).config().clone();
    let leader_quorum = cfg.servers[&ServerId(leader as i64)].quorum_port;
    let f_addr = e.member(follower).addr();
    wait_for_mode(
        f_addr,
        "Mode: follower",
        Duration::from_secs(10),
        "not synced",
    )
    .await;
    let mut s = from_elsewhere(leader_quorum).await;
    s.write_all(&follower_info(follower, 0)).unwrap();
    // Held: no answer while the follower's link is up.
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 256];
    assert!(
        s.read(&mut buf).is_err(),
        "the leader answered a second connection in a synced follower's name"
    );
    // The follower stops: its link closes and the held connection gets LEADERINFO.
    e.member_mut(follower).stop();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    while got.len() < 4 {
        let n = s
            .read(&mut buf)
            .expect("LEADERINFO once the synced link closed");
        assert!(n > 0, "the held connection was closed instead");
        got.extend_from_slice(&buf[..n]);
    }
    // A quorum packet starts with its type (no length prefix).
    let ty = i32::from_be_bytes([got[0], got[1], got[2], got[3]]);
    assert_eq!(ty, PacketType::LeaderInfo.code(), "first packet {got:?}");
    // The real follower comes back while that connection (never synced) is open: it
    // takes its place and follows again.
    e.member_mut(follower).restart();
    let f_addr = e.member(follower).addr();
    let rejoin = Duration::from_secs(15);
    wait_for_mode(
        f_addr,
        "Mode: follower",
        rejoin,
        "the restarted follower did not rejoin",
    )
    .await;
    drop(s);
    e.stop();
}

/// A connection to 127.0.0.1:`port` from 127.0.0.2: not the address the ensemble's
/// configuration gives any member (all are on 127.0.0.1), as a spoofer elsewhere.
async fn from_elsewhere(port: u16) -> std::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let s = socket
        .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap()
        .into_std()
        .unwrap();
    s.set_nonblocking(false).unwrap();
    s
}

/// A FOLLOWERINFO in a synced follower's name from the follower's own address replaces
/// its link at once: the follower reconnecting (its old link dead, maybe half-open, as
/// the leader may not know yet) is not held (a review, session 53: held, it rejoined
/// only after syncLimit ticks, when the leader dropped the half-open link).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_info_from_the_followers_own_address_replaces_its_link() {
    let mut e = TestEnsemble::builder(3).start();
    let leader = e.wait_serving();
    let follower = e.ids().into_iter().find(|i| *i != leader).unwrap();
    let cfg = e.member(leader).config().clone();
    let leader_quorum = cfg.servers[&ServerId(leader as i64)].quorum_port;
    let f_addr = e.member(follower).addr();
    wait_for_mode(
        f_addr,
        "Mode: follower",
        Duration::from_secs(10),
        "not synced",
    )
    .await;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", leader_quorum)).unwrap();
    s.write_all(&follower_info(follower, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf)
        .expect("LEADERINFO for a connection from the follower's own address");
    assert_eq!(i32::from_be_bytes(buf), PacketType::LeaderInfo.code());
    drop(s);
    e.stop();
}

/// Some of `four_letter(addr, "mntr")`'s value for `key`.
fn mntr(addr: std::net::SocketAddr, key: &str) -> Option<String> {
    let text = four_letter(addr, "mntr").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}\t")).map(str::to_owned))
}

/// A learner in `sid`'s name, connecting from 127.0.0.2, that completes the handshake
/// (claiming the leader's own history, so it is sent a DIFF) and then answers every
/// PING and PROPOSAL. Returns once it is synced (UPTODATE received), with the task that
/// keeps it alive and tells, when the leader closes it, how long it lasted.
async fn synced_impostor(
    leader_quorum: std::net::SocketAddr,
    sid: u64,
    last: i64,
) -> tokio::task::JoinHandle<()> {
    use rzk_server::net::peer::wire::read_packet;
    use tokio::io::AsyncWriteExt;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let s = socket.connect(leader_quorum).await.unwrap();
    let (rd, mut wr) = s.into_split();
    let mut rd = tokio::io::BufReader::new(rd);
    let epoch = last >> 32;
    let send = |p: QuorumPacket| p.to_bytes();
    wr.write_all(&follower_info(sid, epoch)).await.unwrap();
    loop {
        let p = read_packet(&mut rd).await.expect("the leader's handshake");
        match p.ty {
            PacketType::LeaderInfo => {
                let ack = QuorumPacket::with_data(
                    PacketType::AckEpoch,
                    last,
                    (epoch as i32).to_be_bytes().to_vec(),
                );
                wr.write_all(&send(ack)).await.unwrap();
            }
            PacketType::NewLeader => {
                let ack = QuorumPacket::new(PacketType::Ack, p.zxid);
                wr.write_all(&send(ack)).await.unwrap();
            }
            PacketType::UpToDate => break,
            _ => {}
        }
    }
    tokio::spawn(async move {
        while let Ok(p) = read_packet(&mut rd).await {
            let answer = match p.ty {
                PacketType::Ping => QuorumPacket::new(PacketType::Ping, p.zxid),
                PacketType::Proposal => QuorumPacket::new(PacketType::Ack, p.zxid),
                _ => continue,
            };
            if wr.write_all(&send(answer)).await.is_err() {
                break;
            }
        }
    })
}

/// A connection in a follower's name from another address that completed the
/// handshake while the follower was down does not keep the follower out: the follower's
/// own connection, from the address the configuration gives it, replaces the
/// impostor's synced link (ZooKeeper keeps both). Before, it was held behind the
/// impostor for as long as the impostor ran (a break-it review, session 53: still out
/// 45 s after its restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synced_impostor_from_another_address_gives_way_to_the_real_follower() {
    let mut e = TestEnsemble::builder(3).start();
    let leader = e.wait_serving();
    let follower = e.ids().into_iter().find(|i| *i != leader).unwrap();
    let cfg = e.member(leader).config().clone();
    let quorum = cfg.servers[&ServerId(leader as i64)].quorum_port;
    let leader_quorum = std::net::SocketAddr::from(([127, 0, 0, 1], quorum));
    let l_addr = e.member(leader).addr();
    let synced = |want: &str| mntr(l_addr, "zk_synced_followers").as_deref() == Some(want);
    wait_until(|| synced("2"), Duration::from_secs(10), || "not synced").await;
    e.member_mut(follower).stop();
    let gone = Duration::from_secs(10);
    wait_until(
        || synced("1"),
        gone,
        || "the stopped follower still counted",
    )
    .await;
    let zxid = four_letter(l_addr, "srvr")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Zxid: 0x").map(str::to_owned))
        .and_then(|z| i64::from_str_radix(z.trim(), 16).ok())
        .expect("the leader's zxid");
    let impostor = synced_impostor(leader_quorum, follower, zxid).await;
    wait_until(
        || synced("2"),
        Duration::from_secs(5),
        || {
            let n = mntr(l_addr, "zk_synced_followers");
            format!("the impostor is not counted as a synced follower: {n:?}")
        },
    )
    .await;
    e.member_mut(follower).restart();
    let f_addr = e.member(follower).addr();
    let within = Duration::from_secs(10);
    let kept_out = "the restarted follower was kept out by the impostor";
    wait_for_mode(f_addr, "Mode: follower", within, kept_out).await;
    // The impostor's link was closed for it.
    tokio::time::timeout(Duration::from_secs(5), impostor)
        .await
        .expect("the impostor's link stays open")
        .unwrap();
    e.stop();
}
