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
