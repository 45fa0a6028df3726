//! rzk-client over TLS against an in-process rzk server (rzk_testkit): a secure client port
//! with mutual TLS, the x509 identity a client certificate gives, a client without a
//! certificate refused, and port unification (TLS and plaintext on one port).
//! Certificates are made with rcgen.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rzk_client::{creator_all_acl, open_acl_unsafe, Client, CreateMode, Error, TlsOptions};
use rzk_testkit::server::TestServer;

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA");
        let ca = rcgen::Issuer::new(ca_params, ca_key);
        let write =
            |name: &str, text: String| std::fs::write(dir.path().join(name), text).expect("write");
        write("ca.pem", ca_cert.pem());
        for (name, cn) in [("server", "localhost"), ("client", "tls client")] {
            let mut p =
                rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                    .expect("params");
            let mut dn = rcgen::DistinguishedName::new();
            dn.push(rcgen::DnType::OrganizationName, "rzk");
            dn.push(rcgen::DnType::CommonName, cn);
            p.distinguished_name = dn;
            let key = rcgen::KeyPair::generate().expect("key");
            let cert = p.signed_by(&key, &ca).expect("sign");
            write(&format!("{name}.pem"), cert.pem());
            write(&format!("{name}.key"), key.serialize_pem());
            write(
                &format!("{name}-keystore.pem"),
                format!("{}{}", key.serialize_pem(), cert.pem()),
            );
        }
        Pki { dir }
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    fn tls(&self, with_cert: bool) -> TlsOptions {
        let (c, k) = (self.path("client.pem"), self.path("client.key"));
        let pair = with_cert.then_some((c.as_path(), k.as_path()));
        TlsOptions::from_pem_files(&self.path("ca.pem"), pair, true).expect("TLS options")
    }

    fn server(&self, extra: &[(&str, String)]) -> TestServer {
        let ks = self.path("server-keystore.pem");
        let ca = self.path("ca.pem");
        let keys: Vec<(String, String)> = [
            ("ssl.keyStore.location", path_str(&ks)),
            ("ssl.trustStore.location", path_str(&ca)),
        ]
        .into_iter()
        .chain(extra.iter().cloned())
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        TestServer::builder()
            .configure(move |c| {
                for (k, v) in keys {
                    c.unknown.insert(k, v);
                }
            })
            .start()
    }
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
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

    let zk = connect(&hosts, Some(pki.tls(true)), Duration::from_secs(10))
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
    let refused = connect(&hosts, Some(pki.tls(false)), Duration::from_secs(2)).await;
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
    let tls = connect(&hosts, Some(pki.tls(false)), Duration::from_secs(10))
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
