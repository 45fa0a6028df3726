//! rzk-client over TLS against an in-process rzk server (rzk_testkit): a secure client port
//! with mutual TLS, the x509 identity a client certificate gives, a client without a
//! certificate refused, and port unification (TLS and plaintext on one port).
//! Certificates are made by `rzk_testkit::pki`.

use std::time::Duration;

use rzk_client::{creator_all_acl, open_acl_unsafe, Client, CreateMode, Error, TlsOptions};
use rzk_testkit::pki::Pki;

/// rzk-client's TLS options from `pki`'s files: trusting `ca.pem`, with the client
/// certificate or without.
fn client_tls(pki: &Pki, with_cert: bool) -> TlsOptions {
    let (c, k) = (pki.path("client.pem"), pki.path("client.key"));
    let pair = with_cert.then_some((c.as_path(), k.as_path()));
    TlsOptions::from_pem_files(&pki.path("ca.pem"), pair, true).expect("TLS options")
}

async fn connect(
    hosts: &str,
    tls: Option<TlsOptions>,
    wait: Duration,
) -> rzk_client::Result<Client> {
    let mut b = Client::builder(hosts)
        .session_timeout(Duration::from_secs(10))
        .connect_timeout(wait);
    if let Some(t) = tls {
        b = b.tls(t);
    }
    b.connect().await
}

#[tokio::test]
async fn mutual_tls_and_the_x509_identity() {
    let pki = Pki::new();
    let server = pki.server(&[
        ("secureClientPort", "0".to_owned()),
        (
            "serverCnxnFactory",
            "org.apache.zookeeper.server.NettyServerCnxnFactory".to_owned(),
        ),
        ("secureClientPortAddress", "127.0.0.1".to_owned()),
        ("ssl.clientAuth", "need".to_owned()),
    ]);
    let secure = server.server().secure_addr().expect("a secure port");
    let hosts = secure.to_string();

    let zk = connect(
        &hosts,
        Some(client_tls(&pki, true)),
        Duration::from_secs(10),
    )
    .await
    .expect("TLS client with a certificate");
    zk.create(
        "/tls-mine",
        b"v",
        &creator_all_acl(),
        CreateMode::Persistent,
    )
    .await
    .expect("create");
    let (acl, _) = zk.get_acl("/tls-mine").await.expect("getACL");
    assert_eq!(acl.len(), 1);
    assert_eq!(acl[0].id.scheme, "x509");
    assert_eq!(acl[0].id.id, "CN=tls client,O=rzk");
    assert_eq!(zk.get_data("/tls-mine").await.expect("get").0, b"v");
    zk.close().await.expect("close");

    // No certificate: clientAuth=need refuses the handshake, so no session.
    let refused = connect(
        &hosts,
        Some(client_tls(&pki, false)),
        Duration::from_secs(2),
    )
    .await;
    assert!(matches!(refused, Err(Error::Timeout)), "{refused:?}");
    // Plaintext on the TLS port: no session either.
    let plain = connect(&hosts, None, Duration::from_secs(2)).await;
    assert!(plain.is_err(), "plaintext served on the TLS port");
    // The plaintext port still serves, without the x509 identity.
    let p = connect(&server.hosts(), None, Duration::from_secs(10))
        .await
        .expect("plain");
    assert!(matches!(p.get_data("/tls-mine").await, Err(Error::NoAuth)));
    p.close().await.expect("close");
}

#[tokio::test]
async fn port_unification_serves_tls_and_plaintext() {
    let pki = Pki::new();
    let server = pki.server(&[
        ("client.portUnification", "true".to_owned()),
        (
            "serverCnxnFactory",
            "org.apache.zookeeper.server.NettyServerCnxnFactory".to_owned(),
        ),
        ("ssl.clientAuth", "want".to_owned()),
    ]);
    let hosts = server.hosts();
    let tls = connect(
        &hosts,
        Some(client_tls(&pki, false)),
        Duration::from_secs(10),
    )
    .await
    .expect("TLS without a certificate (want)");
    tls.create("/unified", b"u", &open_acl_unsafe(), CreateMode::Persistent)
        .await
        .expect("create over TLS");
    let plain = connect(&hosts, None, Duration::from_secs(10))
        .await
        .expect("plaintext");
    assert_eq!(plain.get_data("/unified").await.expect("get").0, b"u");
    tls.close().await.expect("close");
    plain.close().await.expect("close");
}
