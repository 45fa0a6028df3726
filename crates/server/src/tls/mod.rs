//! TLS with ZooKeeper's settings: the `ssl.*` keys for the client port (`ssl.quorum.*`
//! for the quorum and election ports), key and trust stores (`store`), rustls
//! configurations for both sides of a connection, detection of TLS on a unified port,
//! and the `x509` identity of a client certificate (`principal`).
//!
//! Owns the translation of ZooKeeper's keys into rustls settings: anything rzk cannot
//! honour (a protocol or cipher suite rustls lacks, CRL/OCSP checks, a store type it
//! cannot read) is an error naming the key, never silently weakened. Passwords are kept
//! in [`Password`], which never prints. Never opens sockets.

pub mod principal;
pub mod reload;
pub mod store;

use crate::config::Config;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
pub use store::{KeyMaterial, StoreType};

/// Key prefix of the client port's settings.
pub const CLIENT_PREFIX: &str = "ssl.";
/// Key prefix of the quorum and election ports' settings.
pub const QUORUM_PREFIX: &str = "ssl.quorum.";
/// ZooKeeper's default `ssl.protocol`.
pub const DEFAULT_PROTOCOL: &str = "TLSv1.2";
/// ZooKeeper's default `ssl.handshakeDetectionTimeoutMillis`.
pub const DEFAULT_HANDSHAKE_DETECTION_TIMEOUT: Duration = Duration::from_millis(5000);
/// How long a TLS handshake may take once it started.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest an accepting quorum port waits for the `server.N` host names to resolve
/// again when a TLS peer's certificate matched none of the names known
/// ([`QuorumTls::names_for_peer_now`]).
pub const PEER_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// The first byte of a TLS record carrying a handshake message.
pub const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// ZooKeeper's default cipher suites (Java 9+ order: GCM first, then CBC). rustls has
/// no CBC suites; those are left out of the default list, and naming one explicitly in
/// `ssl.ciphersuites` is an error.
const DEFAULT_CIPHERS: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
];

/// A TLS setting rzk cannot honour, or a store it cannot use.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A key's value is invalid or names something rzk cannot do.
    #[error("invalid value {value:?} for key {key}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    /// A key rzk does not support is set.
    #[error("key {key} is not supported by rzk: {reason}")]
    Unsupported { key: String, reason: String },
    /// A required key is missing.
    #[error("key {key} must be set: {reason}")]
    Missing { key: String, reason: String },
    /// A key or trust store could not be loaded.
    #[error("key {key}: {source}")]
    Store {
        key: String,
        source: store::StoreError,
    },
    /// rustls refused the resulting configuration.
    #[error("TLS settings {prefix}*: {reason}")]
    Rustls { prefix: String, reason: String },
}

/// A password read from zoo.cfg or a `passwordPath` file; never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The secret itself (for store decryption only).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "***" })
    }
}

/// `ssl.clientAuth`: whether the server asks for a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Do not ask.
    None,
    /// Ask; a client without one is still served.
    Want,
    /// Require; a client without one is refused (ZooKeeper's default).
    Need,
}

/// One key or trust store setting.
#[derive(Debug, Clone)]
pub struct StoreSpec {
    /// `*.location`.
    pub location: PathBuf,
    /// `*.password` or the contents of `*.passwordPath`.
    pub password: Password,
    /// `*.type`, or inferred from the file name.
    pub ty: StoreType,
    /// The key naming the location (for messages).
    pub key: String,
    /// `*.passwordPath` (with its key, for messages): read again when the stores are
    /// reloaded ([`TlsSettings::refreshed`]), as ZooKeeper's `X509Util` does.
    pub password_path: Option<(PathBuf, String)>,
}

/// The password in `path` (its first line's end stripped), as `*.passwordPath` gives it.
fn read_password_file(path: &std::path::Path, key: &str) -> Result<Password, TlsError> {
    let text = std::fs::read_to_string(path).map_err(|e| TlsError::Invalid {
        key: key.to_owned(),
        value: path.display().to_string(),
        reason: format!("cannot read the password file: {e}"),
    })?;
    Ok(Password(text.trim_end_matches(['\r', '\n']).to_owned()))
}

/// The TLS settings under one prefix (`ssl.` or `ssl.quorum.`).
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// `ssl.` or `ssl.quorum.`.
    pub prefix: &'static str,
    /// `*.keyStore.*`.
    pub key_store: Option<StoreSpec>,
    /// `*.trustStore.*`.
    pub trust_store: Option<StoreSpec>,
    /// Enabled protocol versions (`*.enabledProtocols`, default `*.protocol`).
    pub versions: Vec<&'static rustls::SupportedProtocolVersion>,
    /// Cipher suites in preference order (`*.ciphersuites`).
    pub cipher_suites: Vec<rustls::SupportedCipherSuite>,
    /// `*.clientAuth` (default need).
    pub client_auth: ClientAuth,
    /// `*.hostnameVerification` (default true): a connecting side checks the server's
    /// certificate names the address it dialled.
    pub hostname_verification: bool,
    /// `*.handshakeDetectionTimeoutMillis`: how long a unified port waits for a first
    /// byte before taking the connection as plaintext.
    pub handshake_detection_timeout: Duration,
}

/// ZooKeeper's Netty connection factory, the one that serves TLS (`serverCnxnFactory`).
pub const NETTY_FACTORY: &str = "org.apache.zookeeper.server.NettyServerCnxnFactory";
/// ZooKeeper's default connection factory (NIO), which has no TLS.
pub const NIO_FACTORY: &str = "org.apache.zookeeper.server.NIOServerCnxnFactory";

/// Looks up a property as zoo.cfg may spell it: bare, or with the `zookeeper.` prefix
/// ZooKeeper gives system properties.
pub fn property<'a>(cfg: &'a Config, bare: &str) -> Option<&'a str> {
    cfg.unknown
        .get(bare)
        .or_else(|| cfg.unknown.get(&format!("zookeeper.{bare}")))
        .map(|s| s.as_str())
}

/// The JVM's default trust store, named by the JVM flag `-Djavax.net.ssl.trustStore`
/// (password `-Djavax.net.ssl.trustStorePassword`, default none; type
/// `-Djavax.net.ssl.trustStoreType`, default the JVM's PKCS12, which also reads a JKS
/// file). ZooKeeper's quorum TLS trusts that store when `ssl.quorum.trustStore.location`
/// is unset (`X509Util` gives `SSLContext.init` no trust manager, so JSSE's default one
/// is used). `Ok(None)` without the flag: [`TlsSettings::roots`] then takes the system's
/// CAs, as the JVM falls back to its `cacerts`.
///
/// Errors (start-up stops, naming the key): the location `NONE` (a PKCS#11 token) and a
/// type other than JKS or PKCS12 (the JVM has no PEM key store); an unreadable store
/// fails later, when [`TlsSettings::roots`] loads it.
fn jvm_default_trust_store(cfg: &Config) -> Result<Option<StoreSpec>, TlsError> {
    let [loc_key, password_key, type_key] = crate::config::JVM_TRUST_STORE_PROPERTIES;
    let Some(location) = cfg.jvm_property(loc_key).filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    if location == "NONE" {
        return Err(TlsError::Unsupported {
            key: loc_key.to_owned(),
            reason: "NONE (a PKCS#11 token, not a file) cannot be read by rzk".into(),
        });
    }
    let ty = match cfg.jvm_property(type_key).filter(|t| !t.is_empty()) {
        None => StoreType::Pkcs12,
        Some(t) => match StoreType::from_property(t) {
            Some(ty @ (StoreType::Jks | StoreType::Pkcs12)) => ty,
            _ => {
                return Err(TlsError::Invalid {
                    key: type_key.to_owned(),
                    value: t.to_owned(),
                    reason: "rzk reads JKS and PKCS12 default trust stores".into(),
                })
            }
        },
    };
    tracing::info!(
        location,
        "ssl.quorum.trustStore.location is not set: the quorum trusts the JVM flag's -D{loc_key}, as ZooKeeper's JVM does"
    );
    Ok(Some(StoreSpec {
        location: PathBuf::from(location),
        password: Password(
            cfg.jvm_property(password_key)
                .unwrap_or_default()
                .to_owned(),
        ),
        ty,
        key: loc_key.to_owned(),
        password_path: None,
    }))
}

fn parse_bool(key: &str, v: &str) -> Result<bool, TlsError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(TlsError::Invalid {
            key: key.to_owned(),
            value: v.to_owned(),
            reason: "expected true or false".into(),
        }),
    }
}

/// A boolean key (`true`/`false`, any case), `default` when unset.
pub fn bool_property(cfg: &Config, bare: &str, default: bool) -> Result<bool, TlsError> {
    match property(cfg, bare) {
        None => Ok(default),
        Some(v) => parse_bool(bare, v),
    }
}

fn version_by_name(name: &str) -> Option<Vec<&'static rustls::SupportedProtocolVersion>> {
    match name.trim() {
        "TLSv1.2" => Some(vec![&rustls::version::TLS12]),
        "TLSv1.3" => Some(vec![&rustls::version::TLS13]),
        // SSLContext "TLS": whatever the platform supports.
        "TLS" => Some(vec![&rustls::version::TLS13, &rustls::version::TLS12]),
        _ => None,
    }
}

/// A Java (IANA) cipher suite name to a rustls suite, if rustls has it.
fn suite_by_name(provider: &CryptoProvider, name: &str) -> Option<rustls::SupportedCipherSuite> {
    let name = name.trim();
    provider.cipher_suites.iter().copied().find(|s| {
        let Some(ours) = s.suite().as_str() else {
            return false;
        };
        // rustls prints TLS 1.3 suites as TLS13_*; Java as TLS_*.
        ours == name
            || matches!(
                (ours.strip_prefix("TLS13_"), name.strip_prefix("TLS_")),
                (Some(a), Some(b)) if a == b
            )
    })
}

impl TlsSettings {
    /// Reads the settings under `prefix` from zoo.cfg's properties. `Ok` does not mean
    /// the stores are readable: [`TlsSettings::server_config`] / `client_config` load them.
    pub fn from_config(cfg: &Config, prefix: &'static str) -> Result<TlsSettings, TlsError> {
        let key = |s: &str| format!("{prefix}{s}");
        let get = |s: &str| property(cfg, &key(s)).map(str::to_owned);
        for unsupported in ["crl", "ocsp"] {
            if let Some(v) = get(unsupported) {
                if parse_bool(&key(unsupported), &v)? {
                    return Err(TlsError::Unsupported {
                        key: key(unsupported),
                        reason: "rzk does not check certificate revocation".into(),
                    });
                }
            }
        }
        if get("context.supplier.class").is_some_and(|v| !v.trim().is_empty()) {
            return Err(TlsError::Unsupported {
                key: key("context.supplier.class"),
                reason: "rzk loads no Java classes".into(),
            });
        }
        if let Some(v) = get("authProvider") {
            if v.trim() != "x509" && !v.trim().is_empty() {
                return Err(TlsError::Unsupported {
                    key: key("authProvider"),
                    reason: "only the built-in x509 provider exists in rzk".into(),
                });
            }
        }
        let store = |what: &str| -> Result<Option<StoreSpec>, TlsError> {
            let loc_key = key(&format!("{what}.location"));
            let Some(location) = get(&format!("{what}.location")).filter(|l| !l.is_empty()) else {
                return Ok(None);
            };
            let mut password = Password(get(&format!("{what}.password")).unwrap_or_default());
            let password_path = get(&format!("{what}.passwordPath"))
                .filter(|p| !p.is_empty())
                .map(|p| (PathBuf::from(p), key(&format!("{what}.passwordPath"))));
            if let Some((p, k)) = &password_path {
                password = read_password_file(p, k)?;
            }
            let type_key = key(&format!("{what}.type"));
            let ty = match get(&format!("{what}.type")).filter(|t| !t.is_empty()) {
                Some(t) => StoreType::from_property(&t).ok_or_else(|| TlsError::Invalid {
                    key: type_key.clone(),
                    value: t.clone(),
                    reason: "expected JKS, PEM or PKCS12".into(),
                })?,
                None => StoreType::from_file_name(&location).ok_or_else(|| TlsError::Invalid {
                    key: type_key.clone(),
                    value: String::new(),
                    reason: format!(
                        "unset, and the type cannot be inferred from the file name {location} (.jks, .pem or .p12)"
                    ),
                })?,
            };
            if ty == StoreType::Bcfks {
                return Err(TlsError::Unsupported {
                    key: type_key,
                    reason: "rzk cannot read BCFKS stores".into(),
                });
            }
            Ok(Some(StoreSpec {
                location: PathBuf::from(location),
                password,
                ty,
                key: loc_key,
                password_path,
            }))
        };
        let key_store = store("keyStore")?;
        let trust_store = match store("trustStore")? {
            None if prefix == QUORUM_PREFIX => jvm_default_trust_store(cfg)?,
            set => set,
        };
        let protocol = get("protocol").unwrap_or_else(|| DEFAULT_PROTOCOL.to_owned());
        let mut versions = version_by_name(&protocol).ok_or_else(|| TlsError::Invalid {
            key: key("protocol"),
            value: protocol.clone(),
            reason: "rzk supports TLSv1.2 and TLSv1.3".into(),
        })?;
        if let Some(list) = get("enabledProtocols") {
            versions.clear();
            for p in list.split(',') {
                let v = version_by_name(p).ok_or_else(|| TlsError::Invalid {
                    key: key("enabledProtocols"),
                    value: list.clone(),
                    reason: format!(
                        "protocol {:?} is not supported (TLSv1.2, TLSv1.3)",
                        p.trim()
                    ),
                })?;
                for x in v {
                    if !versions.iter().any(|y| y.version == x.version) {
                        versions.push(x);
                    }
                }
            }
        }
        let provider = rustls::crypto::ring::default_provider();
        let cipher_suites = match get("ciphersuites") {
            Some(list) => {
                let mut out = Vec::new();
                for name in list.split(',').filter(|n| !n.trim().is_empty()) {
                    let s = suite_by_name(&provider, name).ok_or_else(|| TlsError::Invalid {
                        key: key("ciphersuites"),
                        value: list.clone(),
                        reason: format!("cipher suite {:?} is not available in rzk", name.trim()),
                    })?;
                    out.push(s);
                }
                if out.is_empty() {
                    return Err(TlsError::Invalid {
                        key: key("ciphersuites"),
                        value: list.clone(),
                        reason: "names no cipher suite".into(),
                    });
                }
                out
            }
            None => {
                let mut out: Vec<_> = DEFAULT_CIPHERS
                    .iter()
                    .filter_map(|n| suite_by_name(&provider, n))
                    .collect();
                // Java pairs TLSv1.3 with its own suites whatever the TLS 1.2 list says.
                out.extend(
                    provider
                        .cipher_suites
                        .iter()
                        .copied()
                        .filter(|s| s.version().version == rustls::ProtocolVersion::TLSv1_3),
                );
                out
            }
        };
        if !cipher_suites
            .iter()
            .any(|c| versions.iter().any(|v| v.version == c.version().version))
        {
            return Err(TlsError::Invalid {
                key: key("ciphersuites"),
                value: get("ciphersuites").unwrap_or_default(),
                reason: format!(
                    "no suite is usable with the enabled protocols ({}protocol / {}enabledProtocols)",
                    prefix, prefix
                ),
            });
        }
        let client_auth = match get("clientAuth").map(|v| v.trim().to_ascii_lowercase()) {
            None => ClientAuth::Need,
            Some(v) if v.is_empty() || v == "need" => ClientAuth::Need,
            Some(v) if v == "want" => ClientAuth::Want,
            Some(v) if v == "none" => ClientAuth::None,
            Some(v) => {
                return Err(TlsError::Invalid {
                    key: key("clientAuth"),
                    value: v,
                    reason: "expected none, want or need".into(),
                })
            }
        };
        let hostname_verification = match get("hostnameVerification") {
            None => true,
            Some(v) => parse_bool(&key("hostnameVerification"), &v)?,
        };
        let handshake_detection_timeout = match get("handshakeDetectionTimeoutMillis") {
            None => DEFAULT_HANDSHAKE_DETECTION_TIMEOUT,
            Some(v) => {
                let ms: i64 = v.trim().parse().map_err(|_| TlsError::Invalid {
                    key: key("handshakeDetectionTimeoutMillis"),
                    value: v.clone(),
                    reason: "expected a number of milliseconds".into(),
                })?;
                if ms < 1 {
                    DEFAULT_HANDSHAKE_DETECTION_TIMEOUT
                } else {
                    Duration::from_millis(ms as u64)
                }
            }
        };
        Ok(TlsSettings {
            prefix,
            key_store,
            trust_store,
            versions,
            cipher_suites,
            client_auth,
            hostname_verification,
            handshake_detection_timeout,
        })
    }

    fn provider(&self) -> Arc<CryptoProvider> {
        let mut p = rustls::crypto::ring::default_provider();
        p.cipher_suites = self.cipher_suites.clone();
        Arc::new(p)
    }

    fn rustls_err(&self, e: impl std::fmt::Display) -> TlsError {
        TlsError::Rustls {
            prefix: self.prefix.to_owned(),
            reason: e.to_string(),
        }
    }

    /// The files these settings read (the key and trust stores and their password
    /// files, those that are set), for [`reload::watch`].
    pub fn store_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for s in [&self.key_store, &self.trust_store].into_iter().flatten() {
            files.push(s.location.clone());
            if let Some((p, _)) = &s.password_path {
                files.push(p.clone());
            }
        }
        files
    }

    /// The same settings with the passwords of `*.passwordPath` files read again (a
    /// rotated store usually comes with a new password). Errors name the key.
    pub fn refreshed(&self) -> Result<TlsSettings, TlsError> {
        let mut s = self.clone();
        for spec in [&mut s.key_store, &mut s.trust_store].into_iter().flatten() {
            if let Some((p, k)) = &spec.password_path {
                spec.password = read_password_file(p, k)?;
            }
        }
        Ok(s)
    }

    /// The key store's key and chain; an error naming `*.keyStore.location` if unset.
    pub fn key_material(&self) -> Result<KeyMaterial, TlsError> {
        let spec = self.key_store.as_ref().ok_or_else(|| TlsError::Missing {
            key: format!("{}keyStore.location", self.prefix),
            reason: "a TLS server needs a certificate".into(),
        })?;
        store::load_key_store(&spec.location, spec.password.expose(), spec.ty).map_err(|source| {
            TlsError::Store {
                key: spec.key.clone(),
                source,
            }
        })
    }

    /// The trust anchors: the trust store, or the system's certificates when unset (as
    /// ZooKeeper falls back to the JVM's default trust store). Not used for client
    /// certificates on the client port, where no trust store means none is trusted
    /// ([`TlsSettings::server_config`]).
    pub fn roots(&self) -> Result<RootCertStore, TlsError> {
        let mut roots = RootCertStore::empty();
        match &self.trust_store {
            Some(spec) => {
                let certs =
                    store::load_trust_store(&spec.location, spec.password.expose(), spec.ty)
                        .map_err(|source| TlsError::Store {
                            key: spec.key.clone(),
                            source,
                        })?;
                for c in certs {
                    roots.add(c).map_err(|e| TlsError::Store {
                        key: spec.key.clone(),
                        source: store::StoreError::Bad {
                            path: spec.location.clone(),
                            reason: format!("unusable trusted certificate: {e}"),
                        },
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    return Err(TlsError::Missing {
                        key: format!("{}trustStore.location", self.prefix),
                        reason: "no trust store is set and the system has no CA certificates"
                            .into(),
                    });
                }
            }
        }
        Ok(roots)
    }

    /// The server side: the key store's certificate, the trust store for client
    /// certificates per `clientAuth`, the enabled protocols and cipher suites.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = self.provider();
        let km = self.key_material()?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&self.versions)
            .map_err(|e| self.rustls_err(e))?;
        let builder = match self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            // The client port without a trust store: ZooKeeper's x509 provider has no
            // trust manager then and refuses every client certificate ("No trust
            // manager available to authenticate session"), so no certificate becomes an
            // identity. The system's CA bundle must not stand in for it here.
            auth if self.prefix == CLIENT_PREFIX && self.trust_store.is_none() => {
                tracing::warn!(
                    "{}trustStore.location is not set: no client certificate is trusted{}",
                    self.prefix,
                    if auth == ClientAuth::Need {
                        format!(
                            " and {}clientAuth=need refuses every TLS client",
                            self.prefix
                        )
                    } else {
                        String::new()
                    }
                );
                builder.with_client_cert_verifier(Arc::new(NoTrustedClientCerts {
                    mandatory: auth == ClientAuth::Need,
                    provider: provider.clone(),
                }))
            }
            auth => {
                let roots = Arc::new(self.roots()?);
                let mut vb = WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
                if auth == ClientAuth::Want {
                    vb = vb.allow_unauthenticated();
                }
                builder.with_client_cert_verifier(vb.build().map_err(|e| self.rustls_err(e))?)
            }
        };
        let cfg = builder
            .with_single_cert(km.chain, km.key)
            .map_err(|e| TlsError::Store {
                key: format!("{}keyStore.location", self.prefix),
                source: store::StoreError::Bad {
                    path: self
                        .key_store
                        .as_ref()
                        .map(|s| s.location.clone())
                        .unwrap_or_default(),
                    reason: format!("key and certificate unusable: {e}"),
                },
            })?;
        Ok(Arc::new(cfg))
    }

    /// The connecting side: the trust store for the server's certificate (its name
    /// checked when `hostnameVerification` is on), the key store's certificate presented
    /// when the server asks (if a key store is set).
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let provider = self.provider();
        let roots = Arc::new(self.roots()?);
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&self.versions)
            .map_err(|e| self.rustls_err(e))?;
        let builder = if self.hostname_verification {
            builder.with_root_certificates(roots)
        } else {
            let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                roots,
                provider.clone(),
            )
            .build()
            .map_err(|e| self.rustls_err(e))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoHostnameVerifier { inner }))
        };
        let cfg = match &self.key_store {
            Some(_) => {
                let km = self.key_material()?;
                builder
                    .with_client_auth_cert(km.chain, km.key)
                    .map_err(|e| self.rustls_err(e))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(cfg))
    }
}

/// The client port's verifier when no trust store is set: asks for a certificate as
/// `clientAuth` says (required when `mandatory`) and refuses every certificate presented,
/// so a handshake with one fails and one without succeeds only when not `mandatory`.
/// ZooKeeper's equivalent: `X509AuthenticationProvider` without a trust manager, which
/// fails the authentication of every connection that presented a certificate.
#[derive(Debug)]
struct NoTrustedClientCerts {
    mandatory: bool,
    provider: Arc<CryptoProvider>,
}

impl rustls::server::danger::ClientCertVerifier for NoTrustedClientCerts {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Checks the chain against the roots but accepts a certificate that does not name the
/// host (`hostnameVerification=false`).
#[derive(Debug)]
pub struct NoHostnameVerifier {
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
    ) -> Result<ServerCertVerified, rustls::Error> {
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The client port's TLS: what `secureClientPort` and `client.portUnification` need.
#[derive(Debug)]
pub struct ClientTls {
    /// The rustls server configuration built from the `ssl.*` keys (replaced when the
    /// stores change, with `client.certReload`).
    pub server: reload::Live<ServerConfig>,
    /// The settings to build it again from, with `client.certReload=true`.
    reload: Option<TlsSettings>,
    /// `ssl.handshakeDetectionTimeoutMillis`.
    pub detection_timeout: Duration,
    /// `X509AuthenticationProvider.superUser`: the subject that is granted `super`.
    pub super_user: Option<String>,
}

/// The client-facing TLS settings in a configuration.
#[derive(Debug, Clone)]
pub struct ClientTlsPlan {
    /// `secureClientPort` with `secureClientPortAddress` (default all interfaces).
    pub secure_addr: Option<SocketAddr>,
    /// `client.portUnification`: the plain client port also accepts TLS.
    pub port_unification: bool,
    /// Whether `clientPort` is opened ([`Config::has_plain_client_port`]): not when only
    /// `secureClientPort` is set (as in ZooKeeper, a TLS-only server has no plaintext
    /// port), nor when no client port is configured at all.
    pub plain_port: bool,
    /// The TLS context, when either of the above needs one.
    pub tls: Option<Arc<ClientTls>>,
}

impl ClientTlsPlan {
    /// Reads `secureClientPort`, `secureClientPortAddress`, `client.portUnification`,
    /// `serverCnxnFactory` and, when TLS is in use, the `ssl.*` keys (loading the stores
    /// now, so a bad store stops start-up).
    pub fn from_config(cfg: &Config) -> Result<ClientTlsPlan, TlsError> {
        let secure_port = match property(cfg, "secureClientPort") {
            None => None,
            Some(v) => Some(v.trim().parse::<u16>().map_err(|_| TlsError::Invalid {
                key: "secureClientPort".into(),
                value: v.to_owned(),
                reason: "expected a port number".into(),
            })?),
        };
        let secure_ip = match property(cfg, "secureClientPortAddress") {
            None => None,
            Some(v) => Some(
                crate::config::resolve_host("secureClientPortAddress", v.trim()).map_err(|e| {
                    TlsError::Invalid {
                        key: "secureClientPortAddress".into(),
                        value: v.to_owned(),
                        reason: e.to_string(),
                    }
                })?,
            ),
        };
        if secure_ip.is_some() && secure_port.is_none() {
            return Err(TlsError::Missing {
                key: "secureClientPort".into(),
                reason: "secureClientPortAddress is set".into(),
            });
        }
        let secure_addr = secure_port.map(|p| {
            SocketAddr::new(
                secure_ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
                p,
            )
        });
        let port_unification = bool_property(cfg, "client.portUnification", false)?;
        let factory = property(cfg, "serverCnxnFactory").map(str::trim);
        if let Some(f) = factory {
            if f != NETTY_FACTORY && f != NIO_FACTORY {
                return Err(TlsError::Unsupported {
                    key: "serverCnxnFactory".into(),
                    reason: format!("{f} is not one of ZooKeeper's connection factories"),
                });
            }
        }
        // ZooKeeper's default factory is the NIO one, whose TLS setup throws
        // UnsupportedOperationException("SSL isn't supported in NIOServerCnxn") and stops
        // the server: a secure client port needs the Netty factory named.
        if secure_addr.is_some() && factory != Some(NETTY_FACTORY) {
            return Err(TlsError::Missing {
                key: "serverCnxnFactory".into(),
                reason: format!(
                    "secureClientPort needs serverCnxnFactory={NETTY_FACTORY}, as in \
                     ZooKeeper, whose {} has no TLS",
                    factory.unwrap_or("default NIO factory")
                ),
            });
        }
        // Only ZooKeeper's Netty factory reads client.portUnification; its default NIO
        // factory serves the client port in plaintext whatever the key says.
        let port_unification = if port_unification && factory != Some(NETTY_FACTORY) {
            tracing::warn!(
                "client.portUnification=true is ignored without serverCnxnFactory={NETTY_FACTORY} (as ZooKeeper's NIO factory ignores it)"
            );
            false
        } else {
            port_unification
        };
        let tls = if secure_addr.is_some() || port_unification {
            let s = TlsSettings::from_config(cfg, CLIENT_PREFIX)?;
            let server = s.server_config()?;
            // Boolean.getBoolean("zookeeper.client.certReload"), read by ZooKeeper's Netty
            // factory (the only one with TLS).
            let reload =
                property(cfg, "client.certReload").is_some_and(crate::config::keys::java_true);
            Some(Arc::new(ClientTls {
                server: reload::Live::new(server),
                reload: reload.then(|| s.clone()),
                detection_timeout: s.handshake_detection_timeout,
                super_user: property(cfg, "X509AuthenticationProvider.superUser")
                    .map(str::to_owned),
            }))
        } else {
            None
        };
        Ok(ClientTlsPlan {
            plain_port: cfg.has_plain_client_port(),
            secure_addr,
            port_unification,
            tls,
        })
    }
}

/// The quorum and election ports' TLS (`sslQuorum`, `portUnification`, `ssl.quorum.*`).
#[derive(Debug)]
pub struct QuorumTls {
    /// Accepts TLS peers (replaced when the stores change, with
    /// `sslQuorumReloadCertFiles`).
    pub server: reload::Live<ServerConfig>,
    /// Dials peers over TLS (replaced with `server`).
    pub client: reload::Live<ClientConfig>,
    /// The settings to build both again from, with `sslQuorumReloadCertFiles=true`.
    reload: Option<TlsSettings>,
    /// `sslQuorum`: dial peers over TLS.
    pub dial_tls: bool,
    /// `portUnification`: accept plaintext peers as well as TLS ones (detected per
    /// connection), so an ensemble can move to TLS one server at a time.
    pub accept_plain: bool,
    /// `ssl.quorum.handshakeDetectionTimeoutMillis`.
    pub detection_timeout: Duration,
    /// `ssl.quorum.hostnameVerification`: an accepting server also checks that a TLS
    /// peer's certificate names the peer's address (ZooKeeper verifies both ends).
    pub verify_peer_names: bool,
    /// The host names of the `server.N` lines by the addresses they resolved to at
    /// start-up: where a name that no longer resolves is looked for
    /// ([`QuorumTls::names_for_peer_now`]).
    pub peer_hosts: Vec<(IpAddr, String)>,
    /// The `server.N` lines' host names (not addresses) with their quorum ports, looked
    /// up when a peer's certificate does not name its address
    /// ([`QuorumTls::names_for_peer_now`]): a member that came back on a new address is
    /// accepted there (ZooKeeper asks the resolver for the connecting address's name
    /// each time).
    pub peer_host_names: Vec<(String, u16)>,
}

/// Those of `hosts` (host name, port) that resolve to `ip` now, as certificate names:
/// fresh lookups of all of them at once, at most [`PEER_LOOKUP_TIMEOUT`] (a warning when
/// that runs out). A name that resolves elsewhere does not count, even if it resolved to
/// `ip` before; one whose lookup fails or does not finish in time counts when `last`
/// (address, host name: where names resolved before) has it at `ip`, as ZooKeeper keeps
/// a member's last good address.
pub async fn names_resolving_to(
    hosts: &[(String, u16)],
    ip: IpAddr,
    last: &[(IpAddr, String)],
) -> Vec<ServerName<'static>> {
    let mut lookups = tokio::task::JoinSet::new();
    for (host, port) in hosts {
        let (host, port) = (host.clone(), *port);
        lookups.spawn(async move {
            let found = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map(|mut addrs| addrs.any(|a| a.ip() == ip));
            (host, found)
        });
    }
    let mut answered: Vec<(String, bool)> = Vec::new();
    let collect = async {
        while let Some(done) = lookups.join_next().await {
            if let Ok((host, Ok(found))) = done {
                answered.push((host, found));
            }
        }
    };
    if tokio::time::timeout(PEER_LOOKUP_TIMEOUT, collect)
        .await
        .is_err()
    {
        tracing::warn!("looking up the server.N host names for a peer at {ip} timed out");
    }
    hosts
        .iter()
        .filter(|(host, _)| match answered.iter().find(|(h, _)| h == host) {
            Some((_, found)) => *found,
            None => last.iter().any(|(a, h)| *a == ip && h == host),
        })
        .filter_map(|(host, _)| name_for(host))
        .collect()
}

/// The name a certificate is checked against for `host` (an IP address or a DNS name).
pub fn name_for(host: &str) -> Option<ServerName<'static>> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Some(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(h.to_owned()).ok()
}

impl ClientTls {
    /// A tokio acceptor for a new connection (the current configuration).
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server.get())
    }

    /// With `client.certReload=true`, starts watching the `ssl.*` key and trust store
    /// files on the current tokio runtime ([`reload::watch`]); the watcher ends with
    /// the last holder of `self`. Nothing otherwise.
    pub fn start_reloading(self: &Arc<Self>) {
        if let Some(s) = &self.reload {
            let again = s.clone();
            let rebuild = move || again.refreshed()?.server_config();
            let install = |t: &ClientTls, c| t.server.set(c);
            reload::watch(
                CLIENT_PREFIX,
                s.store_files(),
                Arc::downgrade(self),
                rebuild,
                install,
            );
        }
    }
}

impl QuorumTls {
    /// The `server.N` host names a peer connecting from `ip` may carry in its
    /// certificate instead of its address: those that resolve to `ip` now
    /// ([`names_resolving_to`] over `peer_host_names`, falling back to `peer_hosts` for a
    /// name that does not resolve), so a member that came back on a new address is
    /// accepted there and no longer at its old one.
    pub async fn names_for_peer_now(&self, ip: IpAddr) -> Vec<ServerName<'static>> {
        names_resolving_to(&self.peer_host_names, ip, &self.peer_hosts).await
    }

    /// A tokio acceptor for a peer (the current configuration).
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server.get())
    }

    /// A tokio connector for dialling a peer (the current configuration).
    pub fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(self.client.get())
    }

    /// With `sslQuorumReloadCertFiles=true`, starts watching the `ssl.quorum.*` key and
    /// trust store files on the current tokio runtime ([`reload::watch`]); the watcher
    /// ends with the last holder of `self`. Nothing otherwise.
    pub fn start_reloading(self: &Arc<Self>) {
        if let Some(s) = &self.reload {
            let install = |t: &QuorumTls, (server, client)| {
                t.server.set(server);
                t.client.set(client);
            };
            let again = s.clone();
            let rebuild = move || {
                let s = again.refreshed()?;
                Ok((s.server_config()?, s.client_config()?))
            };
            reload::watch(
                QUORUM_PREFIX,
                s.store_files(),
                Arc::downgrade(self),
                rebuild,
                install,
            );
        }
    }

    /// `None` when neither `sslQuorum` nor `portUnification` is on (plaintext peers only).
    pub fn from_config(cfg: &Config) -> Result<Option<QuorumTls>, TlsError> {
        let ssl_quorum = bool_property(cfg, "sslQuorum", false)?;
        let unification = bool_property(cfg, "portUnification", false)?;
        if !ssl_quorum && !unification {
            return Ok(None);
        }
        let s = TlsSettings::from_config(cfg, QUORUM_PREFIX)?;
        let reload = bool_property(cfg, "sslQuorumReloadCertFiles", false)?;
        Ok(Some(QuorumTls {
            server: reload::Live::new(s.server_config()?),
            client: reload::Live::new(s.client_config()?),
            reload: reload.then(|| s.clone()),
            dial_tls: ssl_quorum,
            accept_plain: unification || !ssl_quorum,
            detection_timeout: s.handshake_detection_timeout,
            verify_peer_names: s.hostname_verification,
            peer_hosts: cfg
                .servers
                .values()
                .filter(|q| q.host.parse::<IpAddr>().is_err())
                .flat_map(|q| {
                    use std::net::ToSocketAddrs;
                    (q.host.as_str(), q.quorum_port)
                        .to_socket_addrs()
                        .map(|it| it.map(|a| (a.ip(), q.host.clone())).collect::<Vec<_>>())
                        .unwrap_or_default()
                })
                .collect(),
            peer_host_names: cfg
                .servers
                .values()
                .filter(|q| q.host.parse::<IpAddr>().is_err())
                .map(|q| (q.host.clone(), q.quorum_port))
                .collect(),
        }))
    }
}

/// The AdminServer's TLS (`admin.forceHttps` / `admin.portUnification`), from the
/// `ssl.quorum.*` key store as ZooKeeper's `JettyAdminServer` loads it. Like Jetty's
/// default `SslContextFactory`, it asks for no client certificate and offers TLS 1.2 and
/// 1.3 with rustls's default cipher suites, whatever `ssl.quorum.enabledProtocols` /
/// `ciphersuites` say (those are the peer ports'). A trust store that is set must load
/// (ZooKeeper loads it too, then never uses it). Errors name the key: no key store
/// (`ssl.quorum.keyStore.location`), an unreadable store, a bad password.
pub fn admin_server_config(cfg: &Config) -> Result<Arc<ServerConfig>, TlsError> {
    let mut s = TlsSettings::from_config(cfg, QUORUM_PREFIX)?;
    if s.trust_store.is_some() {
        s.roots()?;
    }
    s.client_auth = ClientAuth::None;
    s.versions = vec![&rustls::version::TLS13, &rustls::version::TLS12];
    s.cipher_suites = rustls::crypto::ring::default_provider().cipher_suites;
    s.server_config()
}

/// Whether the connection's first byte opens a TLS handshake. Waits up to `timeout`
/// for it; a silent peer counts as plaintext. Reads nothing from the socket.
pub async fn starts_with_tls(stream: &tokio::net::TcpStream, timeout: Duration) -> bool {
    let mut b = [0u8; 1];
    matches!(
        tokio::time::timeout(timeout, stream.peek(&mut b)).await,
        Ok(Ok(1)) if b[0] == TLS_HANDSHAKE_RECORD
    )
}

/// The `x509` identity of the peer of a server-side TLS stream: the subject of its
/// certificate, if it sent one.
pub fn peer_subject<IO>(s: &tokio_rustls::server::TlsStream<IO>) -> Option<String> {
    let certs = s.get_ref().1.peer_certificates()?;
    let leaf = certs.first()?;
    match principal::subject_name(leaf) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!("client certificate without a readable subject: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        Config::from_properties(&format!("dataDir=/tmp/x\n{text}")).unwrap()
    }

    /// The accepting side's fresh lookup: a `server.N` host name counts for a peer when
    /// it resolves to the peer's address at the time of the check.
    #[tokio::test]
    async fn names_resolving_to_looks_up_now() {
        let hosts = vec![
            ("localhost".to_owned(), 2888),
            ("127.0.0.3".to_owned(), 2888),
        ];
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let localhost = ServerName::try_from("localhost").unwrap();
        let names = names_resolving_to(&hosts, local, &[]).await;
        assert_eq!(names, vec![localhost.clone()]);
        let elsewhere: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(names_resolving_to(&hosts, elsewhere, &[]).await.is_empty());
        // Where a name resolved before does not count once it resolves elsewhere...
        let before = vec![(elsewhere, "localhost".to_owned())];
        assert!(names_resolving_to(&hosts, elsewhere, &before)
            .await
            .is_empty());
        // ...but does for a name that no longer resolves at all.
        let gone = vec![("no-such-host.invalid".to_owned(), 2888)];
        let before = vec![(elsewhere, "no-such-host.invalid".to_owned())];
        assert_eq!(
            names_resolving_to(&gone, elsewhere, &before).await,
            vec![ServerName::try_from("no-such-host.invalid").unwrap()]
        );
    }

    #[test]
    fn settings_defaults_and_errors() {
        let s = TlsSettings::from_config(&cfg("ssl.keyStore.location=/k.p12\n"), CLIENT_PREFIX)
            .unwrap();
        assert_eq!(s.client_auth, ClientAuth::Need);
        assert!(s.hostname_verification);
        assert_eq!(s.versions.len(), 1);
        assert_eq!(s.key_store.as_ref().unwrap().ty, StoreType::Pkcs12);
        let s = TlsSettings::from_config(
            &cfg("ssl.quorum.clientAuth=WANT\nssl.quorum.keyStore.location=/k\nssl.quorum.keyStore.type=jks\nssl.quorum.keyStore.password=sekrit\n"),
            QUORUM_PREFIX,
        )
        .unwrap();
        assert_eq!(s.client_auth, ClientAuth::Want);
        assert_eq!(s.key_store.as_ref().unwrap().ty, StoreType::Jks);
        assert!(!format!("{s:?}").contains("sekrit"), "password printed");
        for (text, key) in [
            ("ssl.keyStore.location=/k.keystore\n", "ssl.keyStore.type"),
            ("ssl.keyStore.location=/k.bcfks\n", "ssl.keyStore.type"),
            (
                "ssl.trustStore.location=/k\nssl.trustStore.type=pfx\n",
                "ssl.trustStore.type",
            ),
            ("ssl.protocol=TLSv1.1\n", "ssl.protocol"),
            (
                "ssl.enabledProtocols=TLSv1.2,SSLv3\n",
                "ssl.enabledProtocols",
            ),
            (
                "ssl.ciphersuites=TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA\n",
                "ssl.ciphersuites",
            ),
            ("ssl.clientAuth=maybe\n", "ssl.clientAuth"),
            // Names rustls does not have, with or without a TLS_ prefix, and no names.
            ("ssl.ciphersuites=FOO\n", "ssl.ciphersuites"),
            (
                "ssl.ciphersuites=SSL_RSA_WITH_3DES_EDE_CBC_SHA\n",
                "ssl.ciphersuites",
            ),
            ("ssl.ciphersuites=TLS_FOO\n", "ssl.ciphersuites"),
            ("ssl.ciphersuites=\n", "ssl.ciphersuites"),
            ("ssl.ciphersuites= , \n", "ssl.ciphersuites"),
            // Only TLS 1.3 suites for the default TLSv1.2, and the other way round.
            (
                "ssl.ciphersuites=TLS_AES_128_GCM_SHA256\n",
                "ssl.ciphersuites",
            ),
            (
                "ssl.protocol=TLSv1.3\nssl.ciphersuites=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n",
                "ssl.ciphersuites",
            ),
            ("ssl.crl=true\n", "ssl.crl"),
            ("ssl.hostnameVerification=yes\n", "ssl.hostnameVerification"),
        ] {
            let e = TlsSettings::from_config(&cfg(text), CLIENT_PREFIX).unwrap_err();
            assert!(e.to_string().contains(key), "{text}: {e}");
        }
        let s = TlsSettings::from_config(
            &cfg("ssl.ciphersuites=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_AES_128_GCM_SHA256\nssl.enabledProtocols=TLSv1.3,TLSv1.2\n"),
            CLIENT_PREFIX,
        )
        .unwrap();
        assert_eq!(s.cipher_suites.len(), 2);
        assert_eq!(s.versions.len(), 2);
    }

    /// A CA, a server leaf (IP SAN 127.0.0.1) and a client leaf, written as PEM, PKCS12
    /// and JKS files into `dir`.
    struct Pki {
        dir: tempfile::TempDir,
        client_subject: String,
    }

    fn leaf(
        name: &str,
        ca: &rcgen::Issuer<'_, rcgen::KeyPair>,
    ) -> (rcgen::Certificate, rcgen::KeyPair) {
        let mut p = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::OrganizationName, "Example, Inc");
        dn.push(rcgen::DnType::CommonName, name);
        p.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        (p.signed_by(&key, ca).unwrap(), key)
    }

    fn pki() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca = rcgen::Issuer::new(ca_params, ca_key);
        let w = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        w("ca.pem", ca_cert.pem());
        for name in ["server", "client"] {
            let (cert, key) = leaf(name, &ca);
            w(
                &format!("{name}.pem"),
                format!("{}{}", key.serialize_pem(), cert.pem()),
            );
            // PKCS12 and JKS with the same key and chain.
            let chain = p12_keystore::PrivateKeyChain::new(
                name,
                p12_keystore::PrivateKey::from_der(&key.serialize_der()).unwrap(),
                [p12_keystore::Certificate::from_der(cert.der()).unwrap()],
            );
            let mut ks = p12_keystore::KeyStore::new();
            ks.add_entry(name, p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
            let der = ks
                .writer("secret")
                .encryption_iterations(16)
                .mac_iterations(16)
                .write()
                .unwrap();
            std::fs::write(dir.path().join(format!("{name}.p12")), der).unwrap();
            let mut jks = jks::KeyStore::new();
            jks.set_private_key_entry(
                name,
                jks::PrivateKeyEntry {
                    creation_time: std::time::SystemTime::now(),
                    private_key: key.serialize_der(),
                    certificate_chain: vec![jks::Certificate {
                        cert_type: "X509".into(),
                        content: cert.der().to_vec(),
                    }],
                },
                b"secret",
            )
            .unwrap();
            let mut out = Vec::new();
            jks.store(&mut out, b"secret").unwrap();
            std::fs::write(dir.path().join(format!("{name}.jks")), out).unwrap();
        }
        Pki {
            dir,
            client_subject: "CN=client,O=Example\\, Inc".to_owned(),
        }
    }

    impl Pki {
        fn path(&self, f: &str) -> String {
            self.dir.path().join(f).display().to_string()
        }
    }

    /// Runs one handshake over an in-memory pipe; the server side's x509 subject.
    async fn handshake(
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
    ) -> Result<Option<String>, std::io::Error> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (a, b) = tokio::io::duplex(64 * 1024);
        let srv = tokio::spawn(async move {
            let mut s = tokio_rustls::TlsAcceptor::from(server).accept(a).await?;
            let who = peer_subject(&s);
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await?;
            s.write_all(&buf).await?;
            s.flush().await?;
            Ok::<_, std::io::Error>(who)
        });
        let name = ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into());
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

    fn settings(_: &Pki, text: &str) -> TlsSettings {
        TlsSettings::from_config(&cfg(text), CLIENT_PREFIX).unwrap()
    }

    #[tokio::test]
    async fn handshakes_with_every_store_type() {
        let p = pki();
        for (ks, extra) in [
            ("server.pem", ""),
            ("server.p12", "ssl.keyStore.password=secret\n"),
            ("server.jks", "ssl.keyStore.password=secret\n"),
        ] {
            let server = settings(
                &p,
                &format!(
                    "ssl.keyStore.location={}\n{extra}ssl.trustStore.location={}\nssl.clientAuth=need\n",
                    p.path(ks),
                    p.path("ca.pem")
                ),
            )
            .server_config()
            .unwrap();
            let client = settings(
                &p,
                &format!(
                    "ssl.keyStore.location={}\nssl.keyStore.password=secret\nssl.trustStore.location={}\n",
                    p.path("client.p12"),
                    p.path("ca.pem")
                ),
            )
            .client_config()
            .unwrap();
            let who = handshake(server, client).await.unwrap();
            assert_eq!(who.as_deref(), Some(p.client_subject.as_str()), "{ks}");
        }
    }

    #[tokio::test]
    async fn client_auth_need_want_none() {
        let p = pki();
        let server = |auth: &str| {
            settings(
                &p,
                &format!(
                    "ssl.keyStore.location={}\nssl.trustStore.location={}\nssl.clientAuth={auth}\n",
                    p.path("server.pem"),
                    p.path("ca.pem")
                ),
            )
            .server_config()
            .unwrap()
        };
        let anon = settings(
            &p,
            &format!("ssl.trustStore.location={}\n", p.path("ca.pem")),
        )
        .client_config()
        .unwrap();
        let with_cert = settings(
            &p,
            &format!(
                "ssl.keyStore.location={}\nssl.keyStore.type=JKS\nssl.keyStore.password=secret\nssl.trustStore.location={}\n",
                p.path("client.jks"),
                p.path("ca.pem")
            ),
        )
        .client_config()
        .unwrap();
        assert!(handshake(server("need"), anon.clone()).await.is_err());
        assert_eq!(handshake(server("want"), anon.clone()).await.unwrap(), None);
        assert_eq!(
            handshake(server("want"), with_cert.clone()).await.unwrap(),
            Some(p.client_subject.clone())
        );
        assert_eq!(handshake(server("none"), with_cert).await.unwrap(), None);
        // A client that trusts nothing of ours refuses the server.
        let other = rcgen::KeyPair::generate().unwrap();
        let other_ca = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&other)
            .unwrap();
        std::fs::write(p.dir.path().join("other.pem"), other_ca.pem()).unwrap();
        let stranger = settings(
            &p,
            &format!("ssl.trustStore.location={}\n", p.path("other.pem")),
        )
        .client_config()
        .unwrap();
        assert!(handshake(server("none"), stranger).await.is_err());
    }

    /// `ca.pem` of `p` as a JKS and a PKCS12 trust store (`trust.jks`, `trust.p12`,
    /// password `secret`), as keytool -importcert writes them.
    fn trust_stores(p: &Pki) {
        use rustls::pki_types::pem::PemObject;
        let ca = CertificateDer::from_pem_file(p.path("ca.pem")).unwrap();
        let mut jks = jks::KeyStore::new();
        jks.set_trusted_certificate_entry(
            "ca",
            jks::TrustedCertificateEntry {
                creation_time: std::time::SystemTime::now(),
                certificate: jks::Certificate {
                    cert_type: "X509".into(),
                    content: ca.to_vec(),
                },
            },
        )
        .unwrap();
        let mut out = Vec::new();
        jks.store(&mut out, b"secret").unwrap();
        std::fs::write(p.path("trust.jks"), out).unwrap();
        let mut p12 = p12_keystore::KeyStore::new();
        p12.add_entry(
            "ca",
            p12_keystore::KeyStoreEntry::Certificate(
                p12_keystore::Certificate::from_der(&ca).unwrap(),
            ),
        );
        let der = p12
            .writer("secret")
            .encryption_iterations(16)
            .mac_iterations(16)
            .write()
            .unwrap();
        std::fs::write(p.path("trust.p12"), der).unwrap();
    }

    /// Quorum TLS without `ssl.quorum.trustStore.location` trusts the JVM's default
    /// trust store when a `-Djavax.net.ssl.trustStore` flag names one, as ZooKeeper's
    /// quorum does (its SSLContext gets JSSE's default trust manager); rzk once ignored
    /// the flag and trusted only the system's CAs, so such a quorum never formed.
    #[tokio::test]
    async fn quorum_trusts_the_jvm_default_trust_store() {
        let p = pki();
        trust_stores(&p);
        let zoo_cfg = format!(
            "dataDir=/tmp/x\nssl.quorum.keyStore.location={}\nssl.quorum.keyStore.password=secret\n",
            p.path("server.p12")
        );
        let quorum = |flags: &str, extra: &str| {
            let system = crate::config::jvm_flag_properties(flags);
            let c = Config::from_properties_with(&format!("{zoo_cfg}{extra}"), &system).unwrap();
            TlsSettings::from_config(&c, QUORUM_PREFIX)
        };
        let peer_subject = "CN=server,O=Example\\, Inc";
        for flags in [
            format!("-Xmx1g -Djavax.net.ssl.trustStore={} -Djavax.net.ssl.trustStorePassword=secret", p.path("trust.jks")),
            format!("-Djavax.net.ssl.trustStore={} -Djavax.net.ssl.trustStorePassword=secret", p.path("trust.p12")),
            format!("-Djavax.net.ssl.trustStore={} -Djavax.net.ssl.trustStoreType=jks -Djavax.net.ssl.trustStorePassword=secret", p.path("trust.jks")),
        ] {
            let s = quorum(&flags, "").unwrap();
            let who = handshake(s.server_config().unwrap(), s.client_config().unwrap())
                .await
                .unwrap();
            assert_eq!(who.as_deref(), Some(peer_subject), "{flags}");
        }
        // Without the flag the system's CAs stand in, and they do not hold the test CA.
        let s = quorum("-Xmx1g", "").unwrap();
        assert!(
            handshake(s.server_config().unwrap(), s.client_config().unwrap())
                .await
                .is_err()
        );
        // A zoo.cfg line of the same name is not the JVM's property (ZooKeeper makes it
        // zookeeper.javax.net.ssl.trustStore), and does not override the flag.
        let trust = format!("javax.net.ssl.trustStore={}\n", p.path("trust.jks"));
        let s = quorum("", &trust).unwrap();
        assert!(s.trust_store.is_none());
        let s = quorum(
            &format!("-Djavax.net.ssl.trustStore={}", p.path("ca.pem")),
            &trust,
        )
        .unwrap();
        assert_eq!(
            s.trust_store.as_ref().map(|t| t.location.clone()),
            Some(PathBuf::from(p.path("ca.pem")))
        );
        // The client port never uses it.
        let system = crate::config::jvm_flag_properties(&format!(
            "-Djavax.net.ssl.trustStore={}",
            p.path("trust.jks")
        ));
        let c = Config::from_properties_with("dataDir=/tmp/x\n", &system).unwrap();
        assert!(TlsSettings::from_config(&c, CLIENT_PREFIX)
            .unwrap()
            .trust_store
            .is_none());
        // A wrong password stops start-up naming the key, never showing the password.
        let e = quorum(
            &format!(
                "-Djavax.net.ssl.trustStore={} -Djavax.net.ssl.trustStorePassword=hunter2",
                p.path("trust.jks")
            ),
            "",
        )
        .unwrap()
        .client_config()
        .unwrap_err()
        .to_string();
        assert!(e.contains("javax.net.ssl.trustStore"), "{e}");
        assert!(!e.contains("hunter2"), "password in the message: {e}");
        // What the JVM's default trust manager reads and rzk cannot: refused by name.
        for (flags, key) in [
            (
                "-Djavax.net.ssl.trustStore=NONE",
                "javax.net.ssl.trustStore",
            ),
            (
                "-Djavax.net.ssl.trustStore=/x.pem -Djavax.net.ssl.trustStoreType=PEM",
                "javax.net.ssl.trustStoreType",
            ),
        ] {
            let e = quorum(flags, "").unwrap_err().to_string();
            assert!(e.contains(key), "{flags}: {e}");
        }
    }

    #[test]
    fn wrong_store_password_names_the_key() {
        let p = pki();
        let e = settings(
            &p,
            &format!(
                "ssl.keyStore.location={}\nssl.keyStore.password=nope\n",
                p.path("server.p12")
            ),
        )
        .server_config()
        .unwrap_err()
        .to_string();
        assert!(e.contains("ssl.keyStore.location"), "{e}");
        assert!(!e.contains("nope"), "password in the message: {e}");
    }

    #[test]
    fn client_plan() {
        let p = ClientTlsPlan::from_config(&cfg("clientPort=1\n")).unwrap();
        assert!(p.tls.is_none() && p.secure_addr.is_none() && p.plain_port);
        // No client port at all: no listener, as ZooKeeper 3.8.
        let p = ClientTlsPlan::from_config(&cfg("")).unwrap();
        assert!(p.tls.is_none() && p.secure_addr.is_none() && !p.plain_port);
        let netty = format!("serverCnxnFactory={NETTY_FACTORY}\n");
        let e = ClientTlsPlan::from_config(&cfg(&format!("secureClientPort=2281\n{netty}")))
            .unwrap_err();
        assert!(e.to_string().contains("ssl.keyStore.location"), "{e}");
        // ZooKeeper's default (NIO) factory has no TLS: named or not, refused.
        for f in [
            "",
            "serverCnxnFactory=org.apache.zookeeper.server.NIOServerCnxnFactory\n",
        ] {
            let e = ClientTlsPlan::from_config(&cfg(&format!("secureClientPort=2281\n{f}")))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("serverCnxnFactory") && e.contains(NETTY_FACTORY),
                "{e}"
            );
        }
        // Port unification needs it too, or is ignored (ZooKeeper's NIO factory ignores
        // it): no TLS keys are then needed.
        let p = ClientTlsPlan::from_config(&cfg("client.portUnification=true\n")).unwrap();
        assert!(!p.port_unification && p.tls.is_none());
        let e = ClientTlsPlan::from_config(&cfg(&format!("client.portUnification=true\n{netty}")))
            .unwrap_err();
        assert!(e.to_string().contains("ssl.keyStore.location"), "{e}");
        let e = ClientTlsPlan::from_config(&cfg("secureClientPort=x\n")).unwrap_err();
        assert!(e.to_string().contains("secureClientPort"), "{e}");
        // Refused by the configuration's key table, or by the plan.
        let e = match Config::from_properties("dataDir=/tmp/x\nserverCnxnFactory=com.Foo\n") {
            Err(e) => e.to_string(),
            Ok(c) => ClientTlsPlan::from_config(&c).unwrap_err().to_string(),
        };
        assert!(e.contains("serverCnxnFactory"), "{e}");
    }
}
