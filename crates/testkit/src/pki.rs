//! Throw-away certificates for TLS tests: a CA and, signed by it, a server and a client
//! certificate, as PEM files in a temporary directory (removed when the [`Pki`] drops),
//! and an in-process server with a TLS client port using them.

use std::path::PathBuf;

use crate::server::TestServer;

/// `serverCnxnFactory` value that ZooKeeper needs for TLS (rzk accepts it alike).
pub const NETTY_FACTORY: &str = "org.apache.zookeeper.server.NettyServerCnxnFactory";

/// A CA and two leaves signed by it, as PEM files in one temporary directory:
///
/// - `ca.pem`: the CA certificate;
/// - `server.pem`, `server.key`, `server-keystore.pem` (key then certificate): subject
///   `CN=localhost,O=rzk`, SANs `127.0.0.1` and `localhost`;
/// - `client.pem`, `client.key`, `client-keystore.pem`: subject `CN=tls client,O=rzk`,
///   the same SANs.
#[derive(Debug)]
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// Makes the CA and both leaves (fresh keys). Panics if the files cannot be written.
    pub fn new() -> Pki {
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

    /// The path of one of the files listed on [`Pki`].
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// A standalone in-process server whose key store is `server-keystore.pem` and
    /// trust store `ca.pem`, with the further zoo.cfg keys of `extra` (e.g.
    /// [`Pki::secure_port`] for a TLS client port).
    pub fn server(&self, extra: &[(&str, String)]) -> TestServer {
        let keys: Vec<(String, String)> = [
            (
                "ssl.keyStore.location",
                self.path("server-keystore.pem").display().to_string(),
            ),
            (
                "ssl.trustStore.location",
                self.path("ca.pem").display().to_string(),
            ),
        ]
        .into_iter()
        .chain(extra.iter().map(|(k, v)| (*k, v.clone())))
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

    /// zoo.cfg keys for a TLS-only client port on 127.0.0.1 (any free port: read it
    /// with `server().secure_addr()`), no client certificate asked for; the `extra`
    /// argument of [`Pki::server`].
    pub fn secure_port() -> Vec<(&'static str, String)> {
        [
            ("secureClientPort", "0"),
            ("secureClientPortAddress", "127.0.0.1"),
            ("serverCnxnFactory", NETTY_FACTORY),
            ("ssl.clientAuth", "none"),
        ]
        .iter()
        .map(|(k, v)| (*k, (*v).to_owned()))
        .collect()
    }
}

impl Default for Pki {
    fn default() -> Self {
        Pki::new()
    }
}
