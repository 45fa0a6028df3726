//! rzk-client's SASL DIGEST-MD5 login against an in-process rzk server (rzk_testkit) with
//! a JAAS `Server` section: the login gives the session its `sasl` id, a `sasl:` ACL is
//! then readable, a JAAS `Client` section works the same, wrong credentials end the
//! session with AuthFailed, and the login is repeated on every reconnect.
//! (tests/security/test_client_sasl.py runs the same client, through `rzk shell`,
//! against Apache ZooKeeper 3.8 too.)

use std::time::Duration;

use rzk_client::{Acl, Client, CreateMode, Error, SaslOptions, SessionState};
use rzk_server::config::Config;
use rzk_testkit::server::TestServer;

const BOB_PW: &str = "Bob-pw-client-sasl-1e8a";
const ALICE_PW: &str = "Alice-pw-client-sasl-77c2";

/// A JAAS file with the server's users and a client section, in a temp dir.
fn jaas(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let p = dir.path().join("jaas.conf");
    std::fs::write(
        &p,
        format!(
            "Server {{\n org.apache.zookeeper.server.auth.DigestLoginModule required\n \
             user_bob=\"{BOB_PW}\"\n user_alice=\"{ALICE_PW}\";\n}};\n\
             Client {{\n org.apache.zookeeper.server.auth.DigestLoginModule required\n \
             username=\"alice\"\n password=\"{ALICE_PW}\";\n}};\n"
        ),
    )
    .expect("write JAAS file");
    p
}

/// An rzk server with the SASL provider and the JAAS file's server section.
fn server(jaas: &std::path::Path) -> TestServer {
    let mut parsed = Config::from_properties(&format!(
        "dataDir=/unused\nclientPort=2181\n\
         authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n\
         java.security.auth.login.config={}\n",
        jaas.display()
    ))
    .expect("zoo.cfg");
    parsed.load_jaas().expect("JAAS server section");
    TestServer::builder()
        .configure(move |c| {
            c.auth = parsed.auth;
            c.auth_providers = parsed.auth_providers;
        })
        .start()
}

fn builder(hosts: &str) -> rzk_client::ClientBuilder {
    Client::builder(hosts)
        .session_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(10))
}

fn sasl_acl(user: &str) -> Vec<Acl> {
    // 31: every permission (ZooDefs.Perms.ALL).
    vec![Acl::new(31, "sasl", user)]
}

async fn ids(zk: &Client) -> Vec<(String, String)> {
    zk.whoami()
        .await
        .expect("whoami")
        .into_iter()
        .map(|c| (c.auth_scheme, c.user))
        .collect()
}

#[tokio::test]
async fn digest_login_grants_the_sasl_id_and_acl() {
    let dir = tempfile::tempdir().expect("temp dir");
    let srv = server(&jaas(&dir));
    let bob = builder(&srv.hosts())
        .sasl_digest("bob", BOB_PW)
        .connect()
        .await
        .expect("bob logs in");
    assert!(ids(&bob).await.contains(&("sasl".into(), "bob".into())));
    bob.create("/bobs", b"mine", &sasl_acl("bob"), CreateMode::Persistent)
        .await
        .expect("create with a sasl ACL");
    assert_eq!(bob.get_data("/bobs").await.expect("bob reads").0, b"mine");

    // A JAAS Client section (alice) is another user: no access.
    let alice = builder(&srv.hosts())
        .sasl(
            SaslOptions::from_jaas_file(&dir.path().join("jaas.conf"), "Client").expect("section"),
        )
        .connect()
        .await
        .expect("alice logs in");
    assert!(ids(&alice).await.contains(&("sasl".into(), "alice".into())));
    assert_eq!(alice.get_data("/bobs").await.unwrap_err(), Error::NoAuth);
    let anon = builder(&srv.hosts()).connect().await.expect("anonymous");
    assert_eq!(anon.get_data("/bobs").await.unwrap_err(), Error::NoAuth);
}

#[tokio::test]
async fn wrong_credentials_end_the_session_with_auth_failed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let srv = server(&jaas(&dir));
    for (user, pw) in [("bob", "not-the-password"), ("mallory", BOB_PW)] {
        let c = builder(&srv.hosts())
            .sasl_digest(user, pw)
            .start()
            .expect("start");
        let r = c.wait_connected(Duration::from_secs(10)).await;
        assert_eq!(r, Err(Error::AuthFailed), "{user}");
        assert_eq!(c.state(), SessionState::AuthFailed);
        assert_eq!(c.exists("/").await.unwrap_err(), Error::AuthFailed);
    }
}

#[tokio::test]
async fn login_is_repeated_after_a_reconnect() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut srv = server(&jaas(&dir));
    let bob = builder(&srv.hosts())
        .sasl_digest("bob", BOB_PW)
        .connect()
        .await
        .expect("bob logs in");
    bob.create("/again", b"x", &sasl_acl("bob"), CreateMode::Persistent)
        .await
        .expect("create");
    srv.restart();
    let mut st = bob.state_watcher();
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if bob
                .counters()
                .connects
                .load(std::sync::atomic::Ordering::Relaxed)
                >= 2
                && st.borrow().is_connected()
            {
                return;
            }
            let _ = st.changed().await;
        }
    })
    .await
    .expect("reconnected");
    assert!(ids(&bob).await.contains(&("sasl".into(), "bob".into())));
    assert_eq!(
        bob.get_data("/again")
            .await
            .expect("read after reconnect")
            .0,
        b"x"
    );
}

#[tokio::test]
async fn a_server_without_sasl_fails_the_login() {
    let srv = TestServer::start();
    let c = builder(&srv.hosts())
        .sasl_digest("bob", BOB_PW)
        .start()
        .expect("start");
    assert_eq!(
        c.wait_connected(Duration::from_secs(10)).await,
        Err(Error::AuthFailed)
    );
}
