//! Membership as a member reads it at start-up: another member whose host name does not
//! resolve (yet) is kept and dialled again later, as ZooKeeper keeps an unresolved
//! `QuorumServer`; this server's own host must resolve.

use rzk_proto::ServerId;
use rzk_server::config::{PeerRole, QuorumServer};
use rzk_server::node::peers::{DialTarget, Peers};
use rzk_testkit::raw::RawClient;
use rzk_testkit::server::TestEnsemble;

const UNRESOLVABLE: &str = "no-such-host.invalid";

fn unresolvable(id: i64, role: PeerRole) -> QuorumServer {
    QuorumServer {
        id: ServerId(id),
        host: UNRESOLVABLE.into(),
        quorum_port: 1,
        election_port: 2,
        role,
        client_addr: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_whose_host_does_not_resolve_does_not_stop_the_others() {
    // Four voters, one of them not in DNS: the other three are a quorum and serve.
    let mut e = TestEnsemble::builder(3)
        .configure(|_, cfg| {
            cfg.servers
                .insert(ServerId(4), unresolvable(4, PeerRole::Participant));
        })
        .start();
    let leader = e.wait_serving();
    let mut c = RawClient::connect(e.member(leader).addr(), 5000).await;
    assert_eq!(c.create("/with-an-absent-member", b"x", 0).await.0, 0);
    for id in e.ids() {
        let mut r = RawClient::connect(e.member(id).addr(), 5000).await;
        let (config, _) = r.get_data("/zookeeper/config", false).await.unwrap();
        let text = String::from_utf8_lossy(&config).into_owned();
        assert!(
            text.contains(&format!("server.4={UNRESOLVABLE}:1:2:participant")),
            "{text}"
        );
    }
    e.stop();
}

#[test]
fn only_this_servers_own_host_must_resolve() {
    let mut cfg = rzk_testkit::server::test_config();
    cfg.standalone_enabled = false;
    cfg.init_limit = Some(5);
    cfg.sync_limit = Some(2);
    cfg.servers.insert(
        ServerId(1),
        QuorumServer {
            id: ServerId(1),
            host: "127.0.0.1".into(),
            quorum_port: 3,
            election_port: 4,
            role: PeerRole::Participant,
            client_addr: None,
        },
    );
    cfg.servers
        .insert(ServerId(2), unresolvable(2, PeerRole::Observer));
    cfg.my_id = Some(ServerId(1));
    let peers = Peers::from_config(&cfg).expect("another member's host may not resolve");
    let absent = &peers.members[&ServerId(2)];
    assert!(!absent.resolved);
    assert_eq!(
        absent.election_target(),
        DialTarget::Unresolved(UNRESOLVABLE.into(), 2)
    );
    assert_eq!(
        absent.quorum_target(),
        DialTarget::Unresolved(UNRESOLVABLE.into(), 1)
    );
    let mine = &peers.members[&ServerId(1)];
    assert!(mine.resolved);
    assert_eq!(mine.election_target().to_string(), "127.0.0.1:4");

    cfg.my_id = Some(ServerId(2));
    let e = Peers::from_config(&cfg).expect_err("this server binds its own host");
    assert!(e.to_string().contains(UNRESOLVABLE), "{e}");
}
