//! TLS for client connections (ZooKeeper's secure client port, `zookeeper.client.secure`).
//!
//! [`TlsOptions`] carries a rustls client configuration: the trust anchors that check the
//! server's certificate and, for servers that ask (`ssl.clientAuth=want|need`), the
//! client's own certificate, whose subject is the session's `x509` identity. Build one
//! from PEM files with [`TlsOptions::from_pem_files`] or hand over any rustls
//! configuration with [`TlsOptions::from_config`]. Never reads files after start-up.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, Result};

/// How a session connects over TLS.
#[derive(Clone)]
pub struct TlsOptions {
    pub(crate) config: Arc<ClientConfig>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field(
                "client_certificate",
                &self.config.client_auth_cert_resolver.has_certs(),
            )
            .finish_non_exhaustive()
    }
}

fn tls_err(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Tls(format!("{what} {}: {e}", path.display()))
}

impl TlsOptions {
    /// Trusts the certificates in the PEM file `ca`; presents the certificate chain in
    /// `cert` with the private key in `key` (both PEM) when given. The server's
    /// certificate must name the host of the connect string (`verify_hostname`).
    pub fn from_pem_files(
        ca: &Path,
        cert_and_key: Option<(&Path, &Path)>,
        verify_hostname: bool,
    ) -> Result<TlsOptions> {
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(ca)
            .map_err(|e| tls_err("cannot read CA file", ca, e))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| tls_err("bad CA file", ca, e))?;
        if certs.is_empty() {
            return Err(tls_err("no certificate in", ca, "empty"));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| tls_err("unusable CA certificate in", ca, e))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?;
        let roots = Arc::new(roots);
        let builder = if verify_hostname {
            builder.with_root_certificates(roots)
        } else {
            let inner =
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| Error::Tls(e.to_string()))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoHostnameVerifier { inner }))
        };
        let config = match cert_and_key {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| tls_err("cannot read certificate file", cert, e))?
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| tls_err("bad certificate file", cert, e))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| tls_err("cannot read private key", key, e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| Error::Tls(format!("client certificate: {e}")))?
            }
        };
        Ok(TlsOptions {
            config: Arc::new(config),
        })
    }

    /// Uses a ready rustls configuration as is.
    pub fn from_config(config: Arc<ClientConfig>) -> TlsOptions {
        TlsOptions { config }
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }
}

/// The name the server's certificate is checked against: the connect string's host.
pub(crate) fn server_name(host_port: &str) -> Result<ServerName<'static>> {
    let host = match host_port.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host_port,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(host.to_owned())
        .map_err(|e| Error::Tls(format!("{host} is not a valid server name: {e}")))
}

/// Checks the chain but not that the certificate names the host.
#[derive(Debug)]
struct NoHostnameVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
}

impl ServerCertVerifier for NoHostnameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(matches!(
            server_name("127.0.0.1:2281").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]:2281").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("zk1.example:2281").unwrap(),
            ServerName::DnsName(_)
        ));
    }

    #[test]
    fn missing_files() {
        let e =
            TlsOptions::from_pem_files(Path::new("/nonexistent/ca.pem"), None, true).unwrap_err();
        assert!(e.to_string().contains("ca.pem"), "{e}");
    }
}
