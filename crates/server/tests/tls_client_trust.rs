//! The client port with `ssl.clientAuth` set and no `ssl.trustStore.location`: no client
//! certificate is trusted, even one the system's CA bundle would trust. ZooKeeper's x509
//! provider has no trust manager then and refuses every certificate; rzk once verified
//! client certificates against the system bundle and gave their subjects an
//! `x509:` identity.
//!
//! One test in its own process: it points `SSL_CERT_FILE` (read by the system-bundle
//! loader) at the test CA, which a process-wide variable must not do to other tests.

use rzk_server::config::Config;
use rzk_server::tls::{ClientTlsPlan, TlsSettings, CLIENT_PREFIX};
use rzk_testkit::pki::Pki;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One handshake over an in-memory pipe and one echoed message; the server's view of
/// the client's subject.
async fn handshake(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
) -> std::io::Result<Option<String>> {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let srv = tokio::spawn(async move {
        let mut s = tokio_rustls::TlsAcceptor::from(server).accept(a).await?;
        let who = rzk_server::tls::peer_subject(&s);
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await?;
        s.write_all(&buf).await?;
        s.flush().await?;
        Ok::<_, std::io::Error>(who)
    });
    let name =
        rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into());
    let cli = async {
        let mut c = tokio_rustls::TlsConnector::from(client)
            .connect(name, b)
            .await?;
        c.write_all(b"ping").await?;
        c.flush().await?;
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let (c, s) = tokio::join!(cli, srv);
    let who = s.map_err(std::io::Error::other)??;
    assert_eq!(&c?, b"ping");
    Ok(who)
}

fn cfg(text: &str) -> Config {
    Config::from_properties(&format!("dataDir=/tmp/rzk-unused\n{text}")).unwrap()
}

#[tokio::test]
async fn without_a_trust_store_no_client_certificate_is_trusted() {
    let p = Pki::new();
    // The system bundle now holds the CA that signed the client's certificate.
    std::env::set_var("SSL_CERT_FILE", p.path("ca.pem"));
    let server = |auth: &str| {
        ClientTlsPlan::from_config(&cfg(&format!(
            "secureClientPort=2281\n\
             serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
             ssl.keyStore.location={}\nssl.clientAuth={auth}\n",
            p.path("server-keystore.pem").display()
        )))
        .unwrap()
        .tls
        .unwrap()
        .server
        .get()
    };
    let client = |with_cert: bool| {
        let key = if with_cert {
            format!(
                "ssl.keyStore.location={}\n",
                p.path("client-keystore.pem").display()
            )
        } else {
            String::new()
        };
        TlsSettings::from_config(
            &cfg(&format!(
                "{key}ssl.trustStore.location={}\n",
                p.path("ca.pem").display()
            )),
            CLIENT_PREFIX,
        )
        .unwrap()
        .client_config()
        .unwrap()
    };
    // want: a client without a certificate connects with no identity; one with a
    // certificate is refused, however trusted its CA is elsewhere.
    assert_eq!(
        handshake(server("want"), client(false)).await.unwrap(),
        None
    );
    let r = handshake(server("want"), client(true)).await;
    assert!(r.is_err(), "a client certificate was accepted: {r:?}");
    // need: nobody connects.
    assert!(handshake(server("need"), client(false)).await.is_err());
    let r = handshake(server("need"), client(true)).await;
    assert!(r.is_err(), "a client certificate was accepted: {r:?}");
    // With the trust store set, the same certificate is the client's identity.
    let trusted = ClientTlsPlan::from_config(&cfg(&format!(
        "secureClientPort=2281\n\
         serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
         ssl.keyStore.location={}\nssl.trustStore.location={}\nssl.clientAuth=need\n",
        p.path("server-keystore.pem").display(),
        p.path("ca.pem").display()
    )))
    .unwrap()
    .tls
    .unwrap()
    .server
    .get();
    assert_eq!(
        handshake(trusted, client(true)).await.unwrap().as_deref(),
        Some("CN=tls client,O=rzk")
    );
}
